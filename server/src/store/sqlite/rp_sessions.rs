//! Sessions of the relying-party REST API (SQLite). A session is a transaction (same state machine,
//! lockout and signing path as the gRPC relying-party service) plus the REST request's
//! values: protocol parameters, device-link token and secret, the target restriction.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::audit::audit;
use super::replies::insert_reply;
use super::transactions::end_transaction;
use crate::store::*;

const COLS: &str = "transaction_id, rp_uuid, session_type, flow, session_token, session_secret, \
                    restriction, params, request_hash, created_at_ms";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RpSession> {
    Ok(RpSession {
        transaction_id: r.get(0)?,
        rp_uuid: r.get(1)?,
        session_type: r.get(2)?,
        flow: r.get(3)?,
        session_token: r.get(4)?,
        session_secret: r.get(5)?,
        restriction: r.get(6)?,
        params: r.get(7)?,
        request_hash: r.get(8)?,
        created_at_ms: r.get(9)?,
    })
}

impl RpSessions for SqliteStore {
    fn create_rp_session(
        &self,
        t: &TxRecord,
        targets: &[(String, Vec<u8>)],
        s: &RpSession,
    ) -> Result<()> {
        self.write_deferred(|tx| {
            self.insert_new_transaction(tx, t, targets)?;
            tx.prepare_cached(&format!(
                "INSERT INTO rp_sessions ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?
            .execute(params![
                s.transaction_id,
                s.rp_uuid,
                s.session_type,
                s.flow,
                s.session_token,
                s.session_secret,
                s.restriction,
                s.params,
                s.request_hash,
                s.created_at_ms
            ])?;
            Ok(())
        })
    }

    fn rp_session(&self, id: &str) -> Result<Option<RpSession>> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM rp_sessions WHERE transaction_id = ?1"
            ))?
            .query_row(params![id], row)
            .optional()?)
    }

    fn rp_session_by_token(&self, token: &str) -> Result<Option<RpSession>> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM rp_sessions WHERE session_token = ?1"
            ))?
            .query_row(params![token], row)
            .optional()?)
    }

    fn idempotent_session(
        &self,
        rp_uuid: &str,
        request_hash: &[u8],
        since_ms: i64,
    ) -> Result<Option<RpSession>> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM rp_sessions WHERE rp_uuid = ?1 AND request_hash = ?2
                     AND created_at_ms >= ?3 ORDER BY created_at_ms DESC LIMIT 1"
            ))?
            .query_row(params![rp_uuid, request_hash, since_ms], row)
            .optional()?)
    }

    fn claim_device_link(
        &self,
        id: &str,
        account_id: &str,
        x: &[u8],
        outcome: &str,
        now: i64,
    ) -> Result<ClaimResult> {
        self.write(|tx| {
            let state: Option<(String, i64)> = tx
                .prepare_cached("SELECT state, expires_at FROM transactions WHERE id = ?1")?.query_row(
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match state {
                Some((s, exp)) if s == "RUNNING" && exp > now => {}
                _ => return Ok(ClaimResult::Closed),
            }
            let holder: Option<String> = tx
                .prepare_cached("SELECT account_id FROM transaction_targets WHERE transaction_id = ?1")?.query_row(
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            match holder {
                Some(a) if a == account_id => return Ok(ClaimResult::AlreadyYours),
                Some(_) => return Ok(ClaimResult::Taken),
                None => {}
            }
            tx.prepare_cached("INSERT INTO transaction_targets (transaction_id, account_id, encoded_message, outcome)
                 VALUES (?1, ?2, ?3, ?4)")?.execute(
                params![id, account_id, x, outcome],
            )?;
            audit(
                tx,
                now,
                "device_link_claimed",
                Some(account_id),
                &serde_json::json!({ "transaction_id": id }),
            )?;
            Ok(ClaimResult::Claimed)
        })
    }

    fn target_outcome(&self, id: &str, account_id: &str) -> Result<Option<String>> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached("SELECT outcome FROM transaction_targets WHERE transaction_id = ?1 AND account_id = ?2")?.query_row(
                params![id, account_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    fn recent_device_link_certificate_choice(
        &self,
        account_id: &str,
        since: i64,
    ) -> Result<Option<String>> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(
                "SELECT t.id FROM transactions t JOIN rp_sessions r ON r.transaction_id = t.id
                 WHERE r.session_type = 'cert' AND r.flow = 'DEVICE_LINK' AND t.answered_by = ?1
                   AND t.end_result = 'OK' AND t.completed_at >= ?2
                 ORDER BY t.completed_at DESC LIMIT 1",
            )?
            .query_row(params![account_id, since], |r| r.get(0))
            .optional()?)
    }

    fn end_transaction_with_detail(
        &self,
        id: &str,
        result: EndResult,
        detail: Option<&str>,
        account_id: Option<&str>,
        now: i64,
        reply: Option<&Reply>,
    ) -> Result<bool> {
        self.write(|tx| {
            let ended = end_transaction(tx, id, result, account_id, now)?;
            if ended && detail.is_some() {
                tx.prepare_cached("UPDATE transactions SET end_detail = ?2 WHERE id = ?1")?
                    .execute(params![id, detail])?;
            }
            if let Some(reply) = reply {
                insert_reply(tx, reply)?;
            }
            Ok(ended)
        })
    }

    fn complete_without_signature(
        &self,
        id: &str,
        account_id: &str,
        now: i64,
        reply: &Reply,
        target_outcome: Option<&str>,
    ) -> Result<bool> {
        self.write(|tx| {
            let n = tx.prepare_cached("UPDATE transactions SET state = 'COMPLETE', end_result = 'OK', answered_by = ?2,
                    completed_at = ?3 WHERE id = ?1 AND state = 'RUNNING' AND expires_at > ?3")?.execute(
                params![id, account_id, now],
            )?;
            if n == 1 {
                if let Some(outcome) = target_outcome {
                    set_target_outcome(tx, id, account_id, outcome)?;
                }
                audit(
                    tx,
                    now,
                    "transaction_completed",
                    Some(account_id),
                    &serde_json::json!({
                    "transaction_id": id, "end_result": "OK" }),
                )?;
            }
            insert_reply(tx, reply)?;
            Ok(n == 1)
        })
    }

    fn completion(&self, id: &str) -> Result<(Option<String>, Option<i64>)> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached("SELECT end_detail, completed_at FROM transactions WHERE id = ?1")?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((None, None)))
    }

    fn prune_rp_sessions(&self, before: i64) -> Result<usize> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached(PRUNE_SECRETS)?
                .execute(params![before, before.saturating_mul(1000)])?)
        })
    }

    fn record_origin_proof(
        &self,
        auth_session_id: &str,
        rp_uuid: &str,
        message_id: &str,
        now: i64,
        event: &str,
        account_id: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<bool> {
        self.write(|tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO origin_proofs (auth_session_id, rp_uuid, message_id, issued_at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (auth_session_id) DO NOTHING",
                )?
                .execute(params![auth_session_id, rp_uuid, message_id, now])?;
            if inserted == 0 {
                return Ok(false);
            }
            audit(tx, now, event, account_id, details)?;
            Ok(true)
        })
    }
}

/// Drops the secrets of sessions completed before `?1` (Unix seconds); `?2` is `?1` in
/// milliseconds (no session completed before `?1` was created after it).
pub(super) const PRUNE_SECRETS: &str = "UPDATE rp_sessions SET session_secret = NULL
     WHERE session_secret IS NOT NULL AND created_at_ms < ?2
     AND EXISTS (SELECT 1 FROM transactions t WHERE t.id = rp_sessions.transaction_id
                 AND t.state = 'COMPLETE' AND t.completed_at < ?1)";

/// Records what one account's app answered (user challenge, interaction, flow type), inside
/// the caller's database transaction.
pub(super) fn set_target_outcome(
    tx: &rusqlite::Connection,
    id: &str,
    account_id: &str,
    outcome: &str,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE transaction_targets SET outcome = ?3 WHERE transaction_id = ?1 AND account_id = ?2",
    )?
    .execute(params![id, account_id, outcome])?;
    Ok(())
}
