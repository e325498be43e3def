//! PIN lockout policy (pure): how many consecutive wrong PINs lock or disable a key pair.
//!
//! Defaults follow DESIGN.md:
//!
//! | consecutive failures | effect |
//! |---|---|
//! | 3 | locked for 3 hours |
//! | 6 | locked for 24 hours |
//! | 9 | disabled for good, certificates revoked |
//!
//! Every lockout decision is a pure function of the policy over a key pair's counters
//! ([`AttemptCounters`]): [`LockoutPolicy::gate`] decides what happens to an attempt before
//! its share is judged, [`LockoutPolicy::failure_effect`] and
//! [`LockoutPolicy::after_failure`] what a share judged wrong does. A store backend only reads
//! the counters, asks the policy and writes the decision in one database transaction
//! ([`crate::store::KeyPairs::begin_attempt`]), so the rule is written once, here, and not in
//! SQL.

use serde::{Deserialize, Serialize};

/// One step of the lockout table: reaching `failures` consecutive failures locks the key
/// pair for `lock_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStep {
    /// Consecutive failures that trigger this lock.
    pub failures: u32,
    /// Lock duration in seconds.
    pub lock_seconds: i64,
}

/// The lockout table of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutPolicy {
    /// Temporary locks, in increasing order of `failures`.
    pub locks: Vec<LockStep>,
    /// Consecutive failures that disable the key pair for good.
    pub disable_after: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            locks: vec![
                LockStep {
                    failures: 3,
                    lock_seconds: 3 * 3600,
                },
                LockStep {
                    failures: 6,
                    lock_seconds: 24 * 3600,
                },
            ],
            disable_after: 9,
        }
    }
}

/// What reaching a failure count means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEffect {
    /// Nothing beyond counting.
    None,
    /// Locked for this many seconds from the failure.
    Lock(i64),
    /// Disabled for good.
    Disable,
}

/// The counters of one key pair that the lockout rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptCounters {
    /// Disabled for good (for any reason).
    pub disabled: bool,
    /// Consecutive wrong PINs, counting an attempt as soon as it begins.
    pub consecutive_failures: u32,
    /// Locked until (Unix seconds); a time in the past is no lock.
    pub locked_until: Option<i64>,
}

impl AttemptCounters {
    /// Whether a lock is in force at `now`.
    pub fn is_locked(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

/// What to do with an attempt before its share is judged ([`LockoutPolicy::gate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateDecision {
    /// Disabled already: nothing is evaluated, nothing written.
    Disabled,
    /// A final attempt was counted but never judged (a crash or kill between count and
    /// verdict): it stands as a failure, so disable the key pair now (PIN lockout). Nothing
    /// is evaluated.
    DisableNow,
    /// Locked until this time: nothing is evaluated, nothing written.
    Locked {
        /// Unix seconds.
        until: i64,
    },
    /// Count the attempt as a failure, with these counters, and commit them before the share
    /// is judged; only a success undoes the count.
    Count {
        /// Consecutive failures including this attempt.
        failures: u32,
        /// The lock this count brings (the lock that reaching `failures` means, starting
        /// now), or the stored value unchanged.
        locked_until: Option<i64>,
    },
}

impl GateDecision {
    /// The counters once a `Count` decision is written (`None` for the other decisions).
    pub fn counted(&self) -> Option<AttemptCounters> {
        match *self {
            Self::Count {
                failures,
                locked_until,
            } => Some(AttemptCounters {
                disabled: false,
                consecutive_failures: failures,
                locked_until,
            }),
            Self::Disabled | Self::DisableNow | Self::Locked { .. } => None,
        }
    }
}

impl LockoutPolicy {
    /// The gate in front of every share evaluation, over the key pair's counters as stored.
    /// Order matters: disabled first, then a counted-but-unjudged final attempt, then a lock
    /// in force; otherwise the attempt is counted (and a lock it reaches starts now, so a
    /// crash before the verdict leaves the key pair locked).
    pub fn gate(&self, counters: &AttemptCounters, now: i64) -> GateDecision {
        if counters.disabled {
            return GateDecision::Disabled;
        }
        if counters.consecutive_failures >= self.disable_after {
            return GateDecision::DisableNow;
        }
        if let Some(until) = counters.locked_until.filter(|&t| t > now) {
            return GateDecision::Locked { until };
        }
        let failures = counters.consecutive_failures + 1;
        let locked_until = match self.effect_of(failures) {
            FailureEffect::Lock(secs) => Some(now + secs),
            FailureEffect::None | FailureEffect::Disable => counters.locked_until,
        };
        GateDecision::Count {
            failures,
            locked_until,
        }
    }

    /// What a share judged wrong does, given the counters with its attempt counted: the
    /// effect of reaching that count (the lock itself was written with the count).
    pub fn failure_effect(&self, counted: &AttemptCounters) -> FailureEffect {
        self.effect_of(counted.consecutive_failures)
    }

    /// The counters after a share judged wrong, given the counters with its attempt counted:
    /// disabled (lock lifted) when the count reached `disable_after`, else as counted. This is
    /// the key state a wrong-PIN answer reports.
    pub fn after_failure(&self, counted: &AttemptCounters) -> AttemptCounters {
        match self.failure_effect(counted) {
            FailureEffect::Disable => AttemptCounters {
                disabled: true,
                locked_until: None,
                ..*counted
            },
            FailureEffect::None | FailureEffect::Lock(_) => *counted,
        }
    }

    /// Checks that the table is usable: increasing thresholds below `disable_after`,
    /// positive durations.
    pub fn validate(&self) -> Result<(), String> {
        if self.disable_after == 0 {
            return Err("lockout.disable_after must be at least 1".into());
        }
        let mut last = 0;
        for step in &self.locks {
            if step.failures <= last || step.failures >= self.disable_after {
                return Err(format!(
                    "lockout steps must have increasing failure counts below disable_after ({})",
                    self.disable_after
                ));
            }
            if step.lock_seconds <= 0 {
                return Err("lockout durations must be positive".into());
            }
            last = step.failures;
        }
        Ok(())
    }

    /// The effect of reaching `failures` consecutive failures.
    pub fn effect_of(&self, failures: u32) -> FailureEffect {
        if failures >= self.disable_after {
            return FailureEffect::Disable;
        }
        match self.locks.iter().find(|s| s.failures == failures) {
            Some(step) => FailureEffect::Lock(step.lock_seconds),
            None => FailureEffect::None,
        }
    }

    /// Wrong PINs left before the next lock or the disable, given the current count.
    pub fn attempts_before_next_lock(&self, failures: u32) -> u32 {
        let next = self
            .locks
            .iter()
            .map(|s| s.failures)
            .find(|&f| f > failures)
            .unwrap_or(self.disable_after);
        next.saturating_sub(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_matches_design() {
        let p = LockoutPolicy::default();
        p.validate().unwrap();
        assert_eq!(p.effect_of(1), FailureEffect::None);
        assert_eq!(p.effect_of(2), FailureEffect::None);
        assert_eq!(p.effect_of(3), FailureEffect::Lock(3 * 3600));
        assert_eq!(p.effect_of(4), FailureEffect::None);
        assert_eq!(p.effect_of(6), FailureEffect::Lock(24 * 3600));
        assert_eq!(p.effect_of(9), FailureEffect::Disable);
        assert_eq!(p.effect_of(12), FailureEffect::Disable);
        assert_eq!(p.attempts_before_next_lock(0), 3);
        assert_eq!(p.attempts_before_next_lock(3), 3);
        assert_eq!(p.attempts_before_next_lock(7), 2);
    }

    const NOW: i64 = 1_800_000_000;

    fn counters(failures: u32, locked_until: Option<i64>) -> AttemptCounters {
        AttemptCounters {
            disabled: false,
            consecutive_failures: failures,
            locked_until,
        }
    }

    #[test]
    fn the_gate_refuses_a_disabled_key_pair_whatever_its_counters() {
        let p = LockoutPolicy::default();
        let c = AttemptCounters {
            disabled: true,
            ..counters(0, None)
        };
        assert_eq!(p.gate(&c, NOW), GateDecision::Disabled);
        let c = AttemptCounters {
            disabled: true,
            ..counters(9, Some(NOW + 100))
        };
        assert_eq!(p.gate(&c, NOW), GateDecision::Disabled);
        assert_eq!(GateDecision::Disabled.counted(), None);
    }

    #[test]
    fn the_gate_disables_for_a_final_attempt_counted_but_never_judged() {
        let p = LockoutPolicy::default();
        assert_eq!(p.gate(&counters(9, None), NOW), GateDecision::DisableNow);
        // Even while a lock is still in force, and beyond the limit.
        assert_eq!(
            p.gate(&counters(9, Some(NOW + 60)), NOW),
            GateDecision::DisableNow
        );
        assert_eq!(p.gate(&counters(10, None), NOW), GateDecision::DisableNow);
        // One below the limit is counted, not disabled.
        assert_eq!(
            p.gate(&counters(8, None), NOW),
            GateDecision::Count {
                failures: 9,
                locked_until: None
            }
        );
    }

    #[test]
    fn the_gate_refuses_while_locked_and_counts_once_the_lock_ran_out() {
        let p = LockoutPolicy::default();
        assert_eq!(
            p.gate(&counters(3, Some(NOW + 1)), NOW),
            GateDecision::Locked { until: NOW + 1 }
        );
        // The lock ends at `until`: at that second the attempt is counted, and the
        // stored (past) time is kept as it is.
        assert_eq!(
            p.gate(&counters(3, Some(NOW)), NOW),
            GateDecision::Count {
                failures: 4,
                locked_until: Some(NOW)
            }
        );
    }

    #[test]
    fn the_gate_starts_the_lock_a_count_reaches_with_the_count() {
        let p = LockoutPolicy::default();
        assert_eq!(
            p.gate(&counters(0, None), NOW),
            GateDecision::Count {
                failures: 1,
                locked_until: None
            }
        );
        let third = p.gate(&counters(2, None), NOW);
        assert_eq!(
            third,
            GateDecision::Count {
                failures: 3,
                locked_until: Some(NOW + 3 * 3600)
            }
        );
        assert_eq!(third.counted(), Some(counters(3, Some(NOW + 3 * 3600))));
        assert_eq!(
            p.gate(&counters(5, Some(NOW - 10)), NOW),
            GateDecision::Count {
                failures: 6,
                locked_until: Some(NOW + 24 * 3600)
            }
        );
    }

    #[test]
    fn a_judged_failure_disables_at_the_limit_and_otherwise_keeps_the_count() {
        let p = LockoutPolicy::default();
        let counted = counters(2, None);
        assert_eq!(p.failure_effect(&counted), FailureEffect::None);
        assert_eq!(p.after_failure(&counted), counted);
        let counted = counters(3, Some(NOW + 3 * 3600));
        assert_eq!(p.failure_effect(&counted), FailureEffect::Lock(3 * 3600));
        assert_eq!(p.after_failure(&counted), counted);
        assert!(p.after_failure(&counted).is_locked(NOW));
        let counted = counters(9, Some(NOW - 1));
        assert_eq!(p.failure_effect(&counted), FailureEffect::Disable);
        assert_eq!(
            p.after_failure(&counted),
            AttemptCounters {
                disabled: true,
                consecutive_failures: 9,
                locked_until: None
            }
        );
    }

    #[test]
    fn rejects_unordered_tables() {
        let mut p = LockoutPolicy::default();
        p.locks.swap(0, 1);
        assert!(p.validate().is_err());
        let p = LockoutPolicy {
            locks: vec![LockStep {
                failures: 9,
                lock_seconds: 5,
            }],
            disable_after: 9,
        };
        assert!(p.validate().is_err());
    }
}
