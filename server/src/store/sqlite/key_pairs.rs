//! Key pairs: the attempt gate, verdicts, clone tokens, unlock (SQLite).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::audit::audit;
use super::certificates::revoke_where;
use super::replies::insert_reply;
use super::rp_sessions::set_target_outcome;
use super::transactions::end_transaction;
use crate::lockout::{FailureEffect, GateDecision, LockoutPolicy};
use crate::store::names::{key_type_from_name, key_type_name};
use crate::store::*;
use subtle::ConstantTimeEq;
use tandem_client_core::types::KeyType;

impl KeyPairs for SqliteStore {
    fn key_pairs(&self, account_id: &str) -> Result<Vec<KeyPair>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KP_COLS} FROM key_pairs WHERE account_id = ?1 ORDER BY key_type"
        ))?;
        let rows = stmt.query_map(params![account_id], key_pair_row)?;
        rows.map(|r| r?).collect()
    }

    fn key_pair(&self, account_id: &str, key_type: KeyType) -> Result<KeyPair> {
        let conn = self.conn();
        key_pair_where(&conn, account_id, key_type)?.ok_or(StoreError::NotFound("key pair"))
    }

    fn begin_attempt(
        &self,
        key_pair_id: i64,
        policy: &LockoutPolicy,
        now: i64,
    ) -> Result<AttemptGate> {
        // The three steps of every backend (the trait's documentation): read the counters,
        // ask the policy, write its decision; committed before the share is judged.
        self.write(|tx| {
            let kp = key_pair_by_id(tx, key_pair_id)?;
            match policy.gate(&kp.counters(), now) {
                GateDecision::Disabled => Ok(AttemptGate::Disabled),
                GateDecision::DisableNow => {
                    disable(tx, &kp, DisableReason::PinLockout, now)?;
                    Ok(AttemptGate::Disabled)
                }
                GateDecision::Locked { until } => Ok(AttemptGate::Locked { until }),
                GateDecision::Count {
                    failures,
                    locked_until,
                } => {
                    tx.prepare_cached(
                        "UPDATE key_pairs SET consecutive_failures = ?2, locked_until = ?3, \
                         last_attempt_at = ?4 WHERE id = ?1",
                    )?
                    .execute(params![
                        key_pair_id,
                        failures,
                        locked_until,
                        now
                    ])?;
                    Ok(AttemptGate::Proceed { failures })
                }
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn attempt_aborted(
        &self,
        key_pair_id: i64,
        counted_failures: u32,
        restore_failures: u32,
        restore_locked_until: Option<i64>,
        transaction_id: &str,
        account_id: &str,
        now: i64,
    ) -> Result<bool> {
        self.write(|tx| {
            let restored =
                tx.prepare_cached(
                    "UPDATE key_pairs SET consecutive_failures = ?3, locked_until = ?4
                 WHERE id = ?1 AND consecutive_failures = ?2 AND status != 'DISABLED'",
                )?
                .execute(params![
                    key_pair_id,
                    counted_failures,
                    restore_failures,
                    restore_locked_until
                ])? == 1;
            end_transaction(
                tx,
                transaction_id,
                EndResult::ServerError,
                Some(account_id),
                now,
            )?;
            audit(
                tx,
                now,
                "attempt_aborted",
                Some(account_id),
                &serde_json::json!({
                "transaction_id": transaction_id, "count_restored": restored }),
            )?;
            Ok(restored)
        })
    }

    fn attempt_succeeded(
        &self,
        key_pair_id: i64,
        next_clone_token_hash: &[u8],
        completion: Option<Completion<'_>>,
        account_id: &str,
        now: i64,
        reply_if_won: &Reply,
        reply_if_closed: &Reply,
    ) -> Result<bool> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE key_pairs SET consecutive_failures = 0, locked_until = NULL, clone_token_hash = ?2 WHERE id = ?1")?.execute(
                params![key_pair_id, next_clone_token_hash],
            )?;
            let won = match completion {
                Some(c) => {
                    let id = c.transaction_id;
                    let n = tx.prepare_cached("UPDATE transactions SET state = 'COMPLETE', end_result = 'OK', signature = ?2, answered_by = ?3,
                            completed_at = ?4 WHERE id = ?1 AND state = 'RUNNING' AND expires_at > ?4")?.execute(
                        params![id, c.signature, account_id, now],
                    )?;
                    if n == 1 && let Some(outcome) = c.target_outcome {
                        set_target_outcome(tx, id, account_id, outcome)?;
                    }
                    if n == 1 {
                        audit(tx, now, "transaction_completed", Some(account_id), &serde_json::json!({
                            "transaction_id": id, "end_result": "OK" }))?;
                    }
                    n == 1
                }
                None => true,
            };
            insert_reply(tx, if won { reply_if_won } else { reply_if_closed })?;
            Ok(won)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn attempt_failed(
        &self,
        key_pair_id: i64,
        policy: &LockoutPolicy,
        transaction_id: Option<&str>,
        now: i64,
        reply: &Reply,
    ) -> Result<KeyPair> {
        self.write(|tx| {
            let kp = key_pair_by_id(tx, key_pair_id)?;
            audit(tx, now, "pin_failure", Some(&kp.account_id), &serde_json::json!({
                "key_type": key_type_name(kp.key_type), "consecutive_failures": kp.consecutive_failures }))?;
            match policy.failure_effect(&kp.counters()) {
                FailureEffect::Disable => disable(tx, &kp, DisableReason::PinLockout, now)?,
                FailureEffect::Lock(_) => {
                    audit(tx, now, "key_locked", Some(&kp.account_id), &serde_json::json!({
                        "key_type": key_type_name(kp.key_type), "locked_until": kp.locked_until }))?;
                }
                FailureEffect::None => {}
            }
            let kp = key_pair_by_id(tx, key_pair_id)?;
            if let Some(id) = transaction_id
                && (kp.status == KeyPairStatus::Disabled || kp.is_locked(now))
            {
                end_transaction(tx, id, EndResult::DocumentUnusable, Some(&kp.account_id), now)?;
            }
            insert_reply(tx, reply)?;
            Ok(kp)
        })
    }

    fn clone_detected(
        &self,
        key_pair_id: i64,
        transaction_id: Option<&str>,
        now: i64,
        reply: &Reply,
    ) -> Result<KeyPair> {
        self.write(|tx| {
            let kp = key_pair_by_id(tx, key_pair_id)?;
            // The share was right: the PIN count is not the issue here.
            tx.prepare_cached("UPDATE key_pairs SET consecutive_failures = 0 WHERE id = ?1")?
                .execute(params![key_pair_id])?;
            disable(tx, &kp, DisableReason::CloneDetected, now)?;
            if let Some(id) = transaction_id {
                end_transaction(
                    tx,
                    id,
                    EndResult::DocumentUnusable,
                    Some(&kp.account_id),
                    now,
                )?;
            }
            let kp = key_pair_by_id(tx, key_pair_id)?;
            insert_reply(tx, reply)?;
            Ok(kp)
        })
    }

    fn refresh_clone_token(
        &self,
        key_pair_id: i64,
        presented_hash: &[u8],
        next_hash: &[u8],
        now: i64,
        reply_if_ok: &Reply,
        reply_if_stale: &Reply,
    ) -> Result<bool> {
        self.write(|tx| {
            let kp = key_pair_by_id(tx, key_pair_id)?;
            if kp.status == KeyPairStatus::Disabled {
                return Err(StoreError::Conflict("the key pair is disabled".into()));
            }
            let ok: bool = kp.clone_token_hash.ct_eq(presented_hash).into();
            if ok {
                tx.prepare_cached("UPDATE key_pairs SET clone_token_hash = ?2 WHERE id = ?1")?
                    .execute(params![key_pair_id, next_hash])?;
            } else {
                disable(tx, &kp, DisableReason::CloneDetected, now)?;
            }
            insert_reply(tx, if ok { reply_if_ok } else { reply_if_stale })?;
            Ok(ok)
        })
    }

    fn unlock_key_pair(&self, account_id: &str, key_type: KeyType, now: i64) -> Result<()> {
        self.write(|tx| {
            let kp = key_pair_where(tx, account_id, key_type)?
                .ok_or(StoreError::NotFound("key pair"))?;
            if kp.status == KeyPairStatus::Disabled {
                return Err(StoreError::Conflict(
                    "the key pair is disabled for good; the person must register again".into(),
                ));
            }
            tx.prepare_cached(
                "UPDATE key_pairs SET consecutive_failures = 0, locked_until = NULL WHERE id = ?1",
            )?
            .execute(params![kp.id])?;
            audit(
                tx,
                now,
                "key_unlocked",
                Some(account_id),
                &serde_json::json!({
                "key_type": key_type_name(key_type), "by": "operator" }),
            )?;
            Ok(())
        })
    }
}

pub(super) const KP_COLS: &str = "id, account_id, key_type, client_modulus, server_modulus, composite_modulus, \
                       server_share_blob, server_key_blob, status, disabled_reason, consecutive_failures, \
                       locked_until, clone_token_hash, last_attempt_at";

pub(super) fn key_pair_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<KeyPair>> {
    let kt: String = r.get(2)?;
    let status: String = r.get(8)?;
    let kp = (|| -> Result<KeyPair> {
        Ok(KeyPair {
            id: r.get(0)?,
            account_id: r.get(1)?,
            key_type: key_type_from_name(&kt)?,
            client_modulus: r.get(3)?,
            server_modulus: r.get(4)?,
            composite_modulus: r.get(5)?,
            server_share_blob: r.get(6)?,
            server_key_blob: r.get(7)?,
            status: match status.as_str() {
                "ACTIVE" => KeyPairStatus::Active,
                "DISABLED" => KeyPairStatus::Disabled,
                other => return Err(StoreError::Corrupt(format!("key pair status {other}"))),
            },
            disabled_reason: r.get(9)?,
            consecutive_failures: r.get(10)?,
            locked_until: r.get(11)?,
            clone_token_hash: r.get(12)?,
            last_attempt_at: r.get(13)?,
        })
    })();
    Ok(kp)
}

pub(super) fn key_pair_where(
    conn: &Connection,
    account_id: &str,
    key_type: KeyType,
) -> Result<Option<KeyPair>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {KP_COLS} FROM key_pairs WHERE account_id = ?1 AND key_type = ?2"
        ))?
        .query_row(params![account_id, key_type_name(key_type)], key_pair_row)
        .optional()?;
    row.transpose()
}

pub(super) fn key_pair_by_id(conn: &Connection, id: i64) -> Result<KeyPair> {
    conn.prepare_cached(&format!("SELECT {KP_COLS} FROM key_pairs WHERE id = ?1"))?
        .query_row(params![id], key_pair_row)
        .optional()?
        .ok_or(StoreError::NotFound("key pair"))?
}

pub(super) fn disable(
    tx: &Connection,
    kp: &KeyPair,
    reason: DisableReason,
    now: i64,
) -> Result<()> {
    tx.prepare_cached("UPDATE key_pairs SET status = 'DISABLED', disabled_reason = ?2, locked_until = NULL WHERE id = ?1 AND status = 'ACTIVE'")?.execute(
        params![kp.id, reason.as_str()],
    )?;
    let details =
        serde_json::json!({ "key_type": key_type_name(kp.key_type), "reason": reason.as_str() });
    audit(tx, now, "key_disabled", Some(&kp.account_id), &details)?;
    revoke_where(
        tx,
        "account_id = ?1 AND key_type = ?2",
        &kp.account_id,
        Some(key_type_name(kp.key_type)),
        reason.crl_reason(),
        now,
    )
}
