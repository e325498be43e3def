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
//! The counting itself (durable, before the share is judged) lives in
//! [`crate::store::Store::begin_attempt`]; this module only answers "what does the n-th
//! failure mean".

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

impl LockoutPolicy {
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
