//! Confirming a transaction: the device's answer judged, the PIN attempt gate, clone
//! detection, and the next clone token.
//!
//! ```text
//!  shell (gRPC Confirm)        core::confirm::confirm                       store / HSM
//!  retransmission? ─▶ stored   transaction running? ── no ─▶ TransactionClosed
//!  pb ─▶ ConfirmRequest ─────▶ REST session: certificate choice ──────────▶ complete_without_signature
//!                                ACSP_V2 x that is not the app's digest ──▶ end PROTOCOL_FAILURE
//!                              clone token, envelope form; VC choice ─ no ▶ end WRONG_VC
//!                              s1' = open(envelope) ──────────────────────▶ HSM (fails: SERVER_ERROR)
//!                              gate (policy): counted, committed ─────────▶ begin_attempt
//!                                locked / disabled ─▶ Locked / Disabled     (nothing counted)
//!                              ── replies.attempt_counted() (crash-test hook)
//!                              verdict s1'·s1'' ─────────────────────────▶ HSM (fails: count restored)
//!                                wrong ─▶ WrongPin / Disabled ───────────▶ attempt_failed
//!                                right, stale token ─▶ CloneDetected ────▶ clone_detected
//!                                right ─▶ Accepted (next token from RNG) ─▶ attempt_succeeded
//!  Confirmed ─▶ pb::ConfirmResponse
//! ```
//!
//! Every outcome is written with its reply in one database transaction: the core asks the
//! shell for the sealed reply of the outcome it decided ([`ConfirmReplies`]) before the store
//! call. The caller serialises confirmations per key pair (the store's gate makes it safe
//! across processes as well).

mod rp_session;

use std::net::IpAddr;
use std::time::Duration;

use tandem_client_core::envelope::aad_partial_signature;
use tandem_client_core::types::{CloneToken, KeyType};
use tracing::info;

use super::envelope::{self, EnvelopeError};
use super::{Clock, Rng};
use crate::hsm::Hsm;
use crate::lockout::{AttemptCounters, LockoutPolicy};
use crate::signing::{self, ServerKeyRef, ShareVerdict, SigningError};
use crate::store::{
    self, AttemptGate, EndResult, KeyPair, KeyPairStatus, Reply, Store, StoreError, TxForAccount,
    secret_hash,
};

pub(crate) use rp_session::{core_hash, core_scheme, params_of, shared_device_ip};

/// What a confirmation works with.
#[derive(Clone, Copy)]
pub struct Confirmer<'a> {
    /// Durable state.
    pub store: &'a dyn Store,
    /// Opens the share envelope and judges the share.
    pub hsm: &'a Hsm,
    /// Longest wait for one HSM call before it counts as failed.
    pub hsm_call_timeout: Duration,
    /// The lockout ladder.
    pub policy: &'a LockoutPolicy,
    /// The RP API scheme name (`smart-id`, `smart-id-demo`): part of the ACSP_V2 payload.
    pub scheme_name: &'a str,
    /// Where "now" comes from.
    pub clock: &'a dyn Clock,
}

impl std::fmt::Debug for Confirmer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmer")
            .field("policy", self.policy)
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

/// The device's answer as sent; the core checks each field where the protocol reads it (a
/// certificate choice carries neither share nor clone token).
#[derive(Clone, Copy)]
pub struct DeviceAnswer<'a> {
    /// The key pair's current clone-detection token (32 bytes).
    pub clone_token: &'a [u8],
    /// `s1'` sealed to the transport key.
    pub share_envelope: &'a [u8],
    /// The code picked from a three-code choice (empty when none was shown).
    pub chosen_vc: &'a str,
    /// REST sessions: the interaction the person went through (RP API name).
    pub interaction_type_used: &'a str,
    /// ACSP_V2: the app's user challenge.
    pub user_challenge: &'a str,
    /// ACSP_V2: the `x` the app encoded.
    pub encoded_message: &'a [u8],
}

impl std::fmt::Debug for DeviceAnswer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAnswer")
            .field("interaction_type_used", &self.interaction_type_used)
            .finish_non_exhaustive()
    }
}

/// A device's confirmation of one transaction, for an authenticated account.
#[derive(Debug)]
pub struct ConfirmRequest<'a> {
    /// The account whose device answers.
    pub account_id: &'a str,
    /// The transaction's key pair.
    pub key_type: KeyType,
    /// The transaction's id.
    pub transaction_id: &'a str,
    /// The transaction as the caller read it just before (under the key pair's lock), or
    /// `None` to read it here.
    pub read: Option<TxForAccount>,
    /// What the device sent.
    pub answer: DeviceAnswer<'a>,
    /// The address the app called from (kept with a REST session that asked for it).
    pub device_ip: Option<IpAddr>,
}

/// How a confirmation was judged.
#[derive(Debug)]
pub enum ConfirmOutcome {
    /// Signed (or a certificate choice answered). `next_clone_token` is the key pair's new
    /// token (`None` for a certificate choice, which uses no key pair).
    Accepted {
        /// The device must present it with its next share.
        next_clone_token: Option<CloneToken>,
    },
    /// The share did not verify; the failure stands (`failures` in a row, a lock when the
    /// count reached one).
    WrongPin {
        /// Consecutive failures, this one included.
        failures: u32,
        /// The lock this failure brought or left in force.
        locked_until: Option<i64>,
    },
    /// The key pair is locked: nothing was judged or counted.
    Locked {
        /// Unix seconds.
        until: i64,
    },
    /// The key pair is disabled (already, or by this failure).
    Disabled,
    /// A valid share with a stale clone token: the key pair is now disabled.
    CloneDetected,
    /// The wrong one of three codes was picked: the transaction ended, nothing counted.
    WrongVc,
    /// The transaction was no longer running (or another device completed it first; a
    /// right share still renews the token, `next_clone_token`).
    TransactionClosed {
        /// Set when the share was right and the token renewed.
        next_clone_token: Option<CloneToken>,
    },
}

/// An outcome with the key pair's state the answer reports.
#[derive(Debug)]
pub struct Confirmed {
    /// How it was judged.
    pub outcome: ConfirmOutcome,
    /// The key pair as the outcome leaves it.
    pub key_pair: KeyPair,
    /// The time of the decision (Unix seconds): whether a lock is in force.
    pub at: i64,
}

/// What the shell does for the core: seal the reply of an outcome (it knows the wire format
/// and the request's retransmission key), and the crash-test hook.
pub trait ConfirmReplies {
    /// The sealed reply for `confirmed`, written with its state change.
    fn sealed(&self, confirmed: &Confirmed) -> Reply;

    /// Called after the attempt was counted and committed, before the share is judged
    /// (the crash tests pause here).
    fn attempt_counted(&self) {}
}

/// Why a confirmation was refused or failed. The texts are what the device is told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfirmError {
    /// The clone token is not 32 bytes.
    #[error("clone_token must be 32 bytes, got {0}")]
    CloneTokenSize(usize),
    /// The share envelope is malformed or does not open.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// `s1'` is not a number below `n1` of `n1`'s length.
    #[error("signature share has the wrong size")]
    ShareSize,
    /// REST: an interaction name the RP API does not know.
    #[error("interaction_type_used is unknown")]
    UnknownInteraction,
    /// REST: an interaction the relying party did not ask for.
    #[error("interaction_type_used is not one the relying party asked for")]
    InteractionNotAsked,
    /// ACSP_V2: a user challenge of the wrong form.
    #[error("user_challenge must be 43 Base64URL characters")]
    UserChallenge,
    /// The HSM failed (or did not answer in time): the transaction ended with
    /// SERVER_ERROR and no PIN attempt was counted. The same whether or not the PIN was
    /// right: no PIN oracle.
    #[error(
        "the server could not complete the signature (HSM failure); the transaction ended with SERVER_ERROR and no PIN attempt was counted"
    )]
    HsmAborted,
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not happen (detail for the log only).
    #[error("{0}")]
    Internal(String),
}

/// Judges a device's confirmation (module documentation). The next clone token comes from
/// `rng`.
pub fn confirm(
    ctx: &Confirmer<'_>,
    rng: Rng<'_>,
    req: ConfirmRequest<'_>,
    replies: &dyn ConfirmReplies,
) -> Result<Confirmed, ConfirmError> {
    let (store, policy) = (ctx.store, ctx.policy);
    let now = ctx.clock.now();
    let (account_id, key_type, answer) = (req.account_id, req.key_type, req.answer);
    let t = match req.read {
        Some(t) => t,
        None => store.transaction_for_account(req.transaction_id, account_id, now)?,
    };
    let kp = store.key_pair(account_id, key_type)?;
    let decided = |outcome, key_pair: &KeyPair| Confirmed {
        outcome,
        key_pair: key_pair.clone(),
        at: now,
    };
    if t.tx.state != store::TxState::Running {
        let closed = decided(
            ConfirmOutcome::TransactionClosed {
                next_clone_token: None,
            },
            &kp,
        );
        store.store_reply(&replies.sealed(&closed))?;
        return Ok(closed);
    }
    // Ends the transaction with `result`; the answer is stored with the end.
    let end_with = |result: EndResult, outcome, kp: &KeyPair| -> Result<Confirmed, ConfirmError> {
        let confirmed = decided(outcome, kp);
        let reply = replies.sealed(&confirmed);
        store.end_transaction(&t.tx.id, result, Some(account_id), now, Some(&reply))?;
        Ok(confirmed)
    };
    // REST sessions: certificate choice needs no share; ACSP_V2 brings the app's own x.
    let checked = rp_session::check(
        store,
        ctx.scheme_name,
        account_id,
        &t,
        &answer,
        &kp.composite_modulus,
        req.device_ip,
    )?;
    let (x, vc_choice, target_outcome) = match checked {
        rp_session::RpConfirm::Grpc => {
            (t.encoded_message.clone(), !t.tx.vc_choices.is_empty(), None)
        }
        rp_session::RpConfirm::Sign {
            x,
            vc_choice,
            outcome,
        } => (x, vc_choice, Some(outcome)),
        rp_session::RpConfirm::CertificateChoice { .. } if kp.status == KeyPairStatus::Disabled => {
            return end_with(EndResult::DocumentUnusable, ConfirmOutcome::Disabled, &kp);
        }
        rp_session::RpConfirm::CertificateChoice { outcome } => {
            let accepted = decided(
                ConfirmOutcome::Accepted {
                    next_clone_token: None,
                },
                &kp,
            );
            // The answer is stored with the completion; a session another device
            // completed first gets TRANSACTION_CLOSED instead.
            let won = store.complete_without_signature(
                &t.tx.id,
                account_id,
                now,
                &replies.sealed(&accepted),
                outcome.as_deref(),
            )?;
            if won {
                return Ok(accepted);
            }
            let closed = decided(
                ConfirmOutcome::TransactionClosed {
                    next_clone_token: None,
                },
                &kp,
            );
            store.store_reply(&replies.sealed(&closed))?;
            return Ok(closed);
        }
        rp_session::RpConfirm::ProtocolFailure => {
            let closed = ConfirmOutcome::TransactionClosed {
                next_clone_token: None,
            };
            return end_with(EndResult::ProtocolFailure, closed, &kp);
        }
    };
    if answer.clone_token.len() != 32 {
        return Err(ConfirmError::CloneTokenSize(answer.clone_token.len()));
    }
    envelope::check_envelope("share_envelope", answer.share_envelope)?;
    // The three-code choice: a wrong pick ends the transaction; no share is judged and
    // no PIN attempt is counted.
    if vc_choice {
        let right: bool = subtle::ConstantTimeEq::ct_eq(
            answer.chosen_vc.as_bytes(),
            t.tx.verification_code.as_bytes(),
        )
        .into();
        if !right {
            let confirmed = end_with(EndResult::WrongVc, ConfirmOutcome::WrongVc, &kp)?;
            info!("wrong verification code chosen");
            return Ok(confirmed);
        }
    }
    // A malformed share is rejected before anything is counted. If the HSM cannot open it
    // (removed, failing, too slow), the transaction ends with SERVER_ERROR; nothing was
    // counted yet.
    let s1 = match envelope::open_envelope(
        ctx.hsm,
        ctx.hsm_call_timeout,
        "share_envelope",
        answer.share_envelope,
        &aad_partial_signature(&t.tx.id, account_id, key_type),
    ) {
        Err(e) if e.is_hsm_unavailable() => {
            store.end_transaction(
                &t.tx.id,
                EndResult::ServerError,
                Some(account_id),
                now,
                None,
            )?;
            return Err(ConfirmError::HsmAborted);
        }
        other => other?,
    };
    if s1.len() != kp.client_modulus.len() || s1.as_slice() >= kp.client_modulus.as_slice() {
        return Err(ConfirmError::ShareSize);
    }
    let counted = gate(ctx, &kp, account_id, now, replies, |outcome, kp| {
        end_with(EndResult::DocumentUnusable, outcome, kp)
    })?;
    let (counted, counted_state) = match counted {
        Gated::Counted(failures, state) => (failures, state),
        Gated::Refused(confirmed) => return Ok(*confirmed),
    };
    let verdict = signing::evaluate_share_within(
        ctx.hsm,
        ctx.hsm_call_timeout,
        ServerKeyRef {
            key_type,
            client_modulus: &kp.client_modulus,
            server_modulus: &kp.server_modulus,
            server_share_blob: kp.server_share_blob.as_deref().unwrap_or_default(),
            server_key_blob: kp.server_key_blob.as_deref().unwrap_or_default(),
        },
        &x,
        &s1,
    );
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => {
            let attempt = (counted, &t.tx.id[..], account_id, now);
            return Err(no_verdict(ctx, &kp, attempt, &e));
        }
    };
    // Each verdict is written with its reply in one database transaction; the answer is
    // built first, for the key pair state the verdict leaves, and that answer is returned.
    let signature = match verdict {
        ShareVerdict::Invalid => {
            let after = policy.after_failure(&counted_state);
            let outcome = if after.disabled {
                ConfirmOutcome::Disabled
            } else {
                ConfirmOutcome::WrongPin {
                    failures: after.consecutive_failures,
                    locked_until: after.locked_until,
                }
            };
            let confirmed = decided(outcome, &kp.with_counters(&after));
            let stored = store.attempt_failed(
                kp.id,
                policy,
                Some(&t.tx.id),
                now,
                &replies.sealed(&confirmed),
            )?;
            info!(failures = stored.consecutive_failures, "wrong PIN");
            return Ok(confirmed);
        }
        ShareVerdict::Valid { signature } => signature,
    };
    // The share is right. Now the clone-detection token decides.
    let token_ok: bool = subtle::ConstantTimeEq::ct_eq(
        kp.clone_token_hash.as_slice(),
        secret_hash(answer.clone_token).as_slice(),
    )
    .into();
    if !token_ok {
        // Disabled, and the share was right: no failures.
        let disabled = kp.with_counters(&AttemptCounters {
            disabled: true,
            consecutive_failures: 0,
            locked_until: None,
        });
        let confirmed = decided(ConfirmOutcome::CloneDetected, &disabled);
        store.clone_detected(kp.id, Some(&t.tx.id), now, &replies.sealed(&confirmed))?;
        tracing::warn!(%account_id, %key_type, "clone detected: valid share with a stale token");
        return Ok(confirmed);
    }
    let next = CloneToken::generate(&mut &mut *rng);
    let next_hash = secret_hash(next.as_bytes());
    let mut kp_after = kp.clone();
    kp_after.consecutive_failures = 0;
    kp_after.locked_until = None;
    // A running transaction is completed (ACCEPTED); one another device completed first,
    // or that expired, gets TRANSACTION_CLOSED. Both answers carry the next token.
    let renewed = || {
        CloneToken::from_slice(next.as_bytes()).map_err(|e| ConfirmError::Internal(e.to_string()))
    };
    let accepted = decided(
        ConfirmOutcome::Accepted {
            next_clone_token: Some(renewed()?),
        },
        &kp_after,
    );
    let closed = decided(
        ConfirmOutcome::TransactionClosed {
            next_clone_token: Some(renewed()?),
        },
        &kp_after,
    );
    let won = store.attempt_succeeded(
        kp.id,
        &next_hash,
        Some(store::Completion {
            transaction_id: &t.tx.id,
            signature: &signature,
            target_outcome: target_outcome.as_deref(),
        }),
        account_id,
        now,
        &replies.sealed(&accepted),
        &replies.sealed(&closed),
    )?;
    info!(won, "signature share accepted");
    Ok(if won { accepted } else { closed })
}

/// Where the gate left an attempt.
enum Gated {
    /// Counted and committed: the failures with it, and the counters as written.
    Counted(u32, AttemptCounters),
    /// Locked or disabled: answered, nothing counted.
    Refused(Box<Confirmed>),
}

/// The gate: the attempt is committed as a failure before the share is judged. The policy
/// over the counters read before says what the store counts (the caller's per-key-pair lock
/// serialises confirmations), so the answers after the verdict are built from it. `refuse`
/// ends the transaction for a locked or disabled key pair.
fn gate(
    ctx: &Confirmer<'_>,
    kp: &KeyPair,
    account_id: &str,
    now: i64,
    replies: &dyn ConfirmReplies,
    refuse: impl FnOnce(ConfirmOutcome, &KeyPair) -> Result<Confirmed, ConfirmError>,
) -> Result<Gated, ConfirmError> {
    let predicted = ctx.policy.gate(&kp.counters(), now).counted();
    let counted = match ctx.store.begin_attempt(kp.id, ctx.policy, now)? {
        AttemptGate::Proceed { failures } => {
            tracing::debug!(failures, "attempt counted before judging the share");
            replies.attempt_counted();
            failures
        }
        AttemptGate::Locked { until } => {
            let kp = ctx.store.key_pair(account_id, kp.key_type)?;
            let refused = refuse(ConfirmOutcome::Locked { until }, &kp)?;
            return Ok(Gated::Refused(Box::new(refused)));
        }
        AttemptGate::Disabled => {
            let kp = ctx.store.key_pair(account_id, kp.key_type)?;
            return Ok(Gated::Refused(Box::new(refuse(
                ConfirmOutcome::Disabled,
                &kp,
            )?)));
        }
    };
    // Something else (the operator) moved the counters meanwhile: read what was counted.
    let state = match predicted {
        Some(c) if c.consecutive_failures == counted => c,
        _ => ctx.store.key_pair(account_id, kp.key_type)?.counters(),
    };
    Ok(Gated::Counted(counted, state))
}

/// No verdict (the HSM failed): the attempt is not held against the user, the transaction
/// ends with SERVER_ERROR. The answer is the same whether or not the share would have
/// verified, so it tells nothing about the PIN. `attempt`: the failures counted with it, the
/// transaction, the account and the time.
fn no_verdict(
    ctx: &Confirmer<'_>,
    kp: &KeyPair,
    (counted, transaction_id, account_id, now): (u32, &str, &str, i64),
    e: &SigningError,
) -> ConfirmError {
    tracing::error!(error = %e, "share evaluation failed; transaction ends with SERVER_ERROR");
    let restored = ctx.store.attempt_aborted(
        kp.id,
        counted,
        kp.consecutive_failures,
        kp.locked_until,
        transaction_id,
        account_id,
        now,
    );
    match restored {
        Ok(true) => ConfirmError::HsmAborted,
        Ok(false) => {
            tracing::warn!("the attempt count moved meanwhile and was left as it is");
            ConfirmError::HsmAborted
        }
        Err(e) => e.into(),
    }
}
