//! Transactions and their targets (SQLite).

use std::sync::atomic::Ordering;

use rusqlite::{Connection, OptionalExtension, params};
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};

use super::SqliteStore;
use super::audit::audit;
use super::replies::insert_reply;
use crate::store::names::{key_type_from_name, key_type_name};
use crate::store::*;
use tandem_client_core::types::KeyType;

impl Transactions for SqliteStore {
    fn create_transaction(&self, t: &TxRecord, targets: &[(String, Vec<u8>)]) -> Result<()> {
        self.write_deferred(|tx| self.insert_new_transaction(tx, t, targets))
    }

    fn transaction(&self, id: &str, now: i64) -> Result<TxRecord> {
        self.expire_transactions(now)?;
        let conn = self.conn();
        tx_where(&conn, id)?.ok_or(StoreError::NotFound("transaction"))
    }

    fn transaction_target(&self, id: &str, account_id: &str) -> Result<TxForAccount> {
        let conn = self.conn();
        let tx = tx_where(&conn, id)?.ok_or(StoreError::NotFound("transaction"))?;
        let x: Option<Vec<u8>> = conn
            .prepare_cached("SELECT encoded_message FROM transaction_targets WHERE transaction_id = ?1 AND account_id = ?2")?.query_row(
                params![id, account_id],
                |r| r.get(0),
            )
            .optional()?;
        let encoded_message = x.ok_or(StoreError::NotFound("transaction"))?;
        Ok(TxForAccount {
            tx,
            encoded_message,
        })
    }

    fn pending_for_account(&self, account_id: &str, now: i64) -> Result<Vec<TxForAccount>> {
        self.expire_transactions(now)?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT t.id, tt.encoded_message FROM transaction_targets tt INDEXED BY transaction_targets_running
             JOIN transactions t ON t.id = tt.transaction_id
             WHERE tt.account_id = ?1 AND tt.running = 1 AND t.state = 'RUNNING'
             ORDER BY t.created_at",
        )?;
        let rows: Vec<(String, Vec<u8>)> = stmt
            .query_map(params![account_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        let mut out = Vec::new();
        for (id, x) in rows {
            if let Some(tx) = tx_where(&conn, &id)? {
                out.push(TxForAccount {
                    tx,
                    encoded_message: x,
                });
            }
        }
        Ok(out)
    }

    fn end_transaction(
        &self,
        id: &str,
        result: EndResult,
        account_id: Option<&str>,
        now: i64,
        reply: Option<&Reply>,
    ) -> Result<bool> {
        self.write(|tx| {
            let ended = end_transaction(tx, id, result, account_id, now)?;
            if let Some(reply) = reply {
                insert_reply(tx, reply)?;
            }
            Ok(ended)
        })
    }

    fn recent_transactions_of(
        &self,
        account_ids: &[String],
        limit: usize,
    ) -> Result<Vec<HolderTransaction>> {
        if account_ids.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // One placeholder per account; the accounts of one person are few.
        let marks = vec!["?"; account_ids.len()].join(", ");
        let sql = format!(
            "SELECT t.id, t.kind, t.relying_party, t.state, t.end_result, t.answered_by,
                    t.created_at, t.completed_at, s.transaction_id IS NOT NULL
             FROM transactions t LEFT JOIN rp_sessions s ON s.transaction_id = t.id
             WHERE t.id IN (SELECT transaction_id FROM transaction_targets
                            INDEXED BY transaction_targets_account WHERE account_id IN ({marks}))
             ORDER BY t.created_at DESC, t.rowid DESC LIMIT {}",
            i64::try_from(limit).unwrap_or(i64::MAX)
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(account_ids), |r| {
            Ok((
                (
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ),
                HolderTransaction {
                    id: r.get(0)?,
                    kind: TxKind::Authentication,
                    relying_party: r.get(2)?,
                    state: TxState::Running,
                    end_result: None,
                    answered_by: r.get(5)?,
                    created_at: r.get(6)?,
                    completed_at: r.get(7)?,
                    rest: r.get(8)?,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let ((kind, state, end), mut t) = row?;
            t.kind = TxKind::parse(&kind)?;
            t.state = match state.as_str() {
                "RUNNING" => TxState::Running,
                "COMPLETE" => TxState::Complete,
                other => return Err(StoreError::Corrupt(format!("transaction state {other}"))),
            };
            t.end_result = end.as_deref().map(EndResult::parse).transpose()?;
            out.push(t);
        }
        Ok(out)
    }

    fn expire_transactions(&self, now: i64) -> Result<usize> {
        if now <= self.clean_through.load(Ordering::SeqCst) {
            return Ok(0);
        }
        {
            let conn = self.conn();
            let due: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM transactions WHERE state = 'RUNNING' AND expires_at <= ?1",
                )?
                .query_row(params![now], |r| r.get(0))?;
            if due == 0 {
                // Still under the connection's lock: no transaction was created in between.
                self.clean_through.fetch_max(now, Ordering::SeqCst);
                return Ok(0);
            }
        }
        let ended = self.write(|tx| {
            let ids: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id FROM transactions WHERE state = 'RUNNING' AND expires_at <= ?1",
                )?;
                stmt.query_map(params![now], |r| r.get(0))?
                    .collect::<std::result::Result<_, _>>()?
            };
            for id in &ids {
                end_transaction(tx, id, EndResult::Timeout, None, now)?;
            }
            Ok(ids.len())
        })?;
        // Only once they are committed (a failed commit leaves the mark where it was).
        self.clean_through.fetch_max(now, Ordering::SeqCst);
        Ok(ended)
    }
}

impl SqliteStore {
    /// Stores a new transaction (under the connection's lock, inside its write) and keeps
    /// `clean_through` below its expiry.
    pub(super) fn insert_new_transaction(
        &self,
        tx: &Connection,
        t: &TxRecord,
        targets: &[(String, Vec<u8>)],
    ) -> Result<()> {
        self.clean_through
            .fetch_min(t.expires_at.saturating_sub(1), Ordering::SeqCst);
        insert_transaction(tx, t, targets)
    }
}

pub(super) const TX_COLS: &str = "id, kind, relying_party, key_type, hash, scheme, digest, display_text, verification_code, \
                       vc_choices, state, end_result, signature, answered_by, created_at, expires_at";

pub(super) fn insert_transaction(
    tx: &Connection,
    t: &TxRecord,
    targets: &[(String, Vec<u8>)],
) -> Result<()> {
    tx.prepare_cached("INSERT INTO transactions (id, kind, relying_party, key_type, hash, scheme, digest, display_text,
            verification_code, vc_choices, state, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'RUNNING', ?11, ?12)")?.execute(
        params![
            t.id,
            t.kind.as_str(),
            t.relying_party,
            key_type_name(t.key_type),
            names::hash_name(t.hash),
            names::scheme_name(t.scheme),
            t.digest,
            t.display_text,
            t.verification_code,
            t.vc_choices.join(","),
            t.created_at,
            t.expires_at
        ],
    )?;
    for (account_id, x) in targets {
        tx.prepare_cached("INSERT INTO transaction_targets (transaction_id, account_id, encoded_message) VALUES (?1, ?2, ?3)")?.execute(
            params![t.id, account_id, x],
        )?;
    }
    audit(
        tx,
        t.created_at,
        "transaction_started",
        None,
        &serde_json::json!({
        "transaction_id": t.id, "kind": t.kind.as_str(), "relying_party": t.relying_party,
        "key_type": key_type_name(t.key_type), "targets": targets.len() }),
    )?;
    Ok(())
}

pub(super) fn tx_where(conn: &Connection, id: &str) -> Result<Option<TxRecord>> {
    let row = conn
        .prepare_cached(&format!("SELECT {TX_COLS} FROM transactions WHERE id = ?1"))?
        .query_row(params![id], |r| {
            let kt: String = r.get(3)?;
            let kind: String = r.get(1)?;
            let hash: String = r.get(4)?;
            let scheme: String = r.get(5)?;
            let choices: String = r.get(9)?;
            let state: String = r.get(10)?;
            let end: Option<String> = r.get(11)?;
            Ok((
                (kt, kind, hash, scheme),
                state,
                end,
                TxRecord {
                    id: r.get(0)?,
                    kind: TxKind::Authentication,
                    relying_party: r.get(2)?,
                    key_type: KeyType::Auth,
                    hash: HashAlgorithm::Sha256,
                    scheme: SignatureScheme::Pss,
                    digest: r.get(6)?,
                    display_text: r.get(7)?,
                    verification_code: r.get(8)?,
                    vc_choices: if choices.is_empty() {
                        Vec::new()
                    } else {
                        choices.split(',').map(str::to_owned).collect()
                    },
                    state: TxState::Running,
                    end_result: None,
                    signature: r.get(12)?,
                    answered_by: r.get(13)?,
                    created_at: r.get(14)?,
                    expires_at: r.get(15)?,
                },
            ))
        })
        .optional()?;
    let Some(((kt, kind, hash, scheme), state, end, mut t)) = row else {
        return Ok(None);
    };
    t.key_type = key_type_from_name(&kt)?;
    t.kind = TxKind::parse(&kind)?;
    t.hash = names::hash_from_name(&hash)?;
    t.scheme = names::scheme_from_name(&scheme)?;
    t.state = match state.as_str() {
        "RUNNING" => TxState::Running,
        "COMPLETE" => TxState::Complete,
        other => return Err(StoreError::Corrupt(format!("transaction state {other}"))),
    };
    t.end_result = end.as_deref().map(EndResult::parse).transpose()?;
    Ok(Some(t))
}

pub(super) fn end_transaction(
    tx: &Connection,
    id: &str,
    result: EndResult,
    account_id: Option<&str>,
    now: i64,
) -> Result<bool> {
    let n = tx.prepare_cached("UPDATE transactions SET state = 'COMPLETE', end_result = ?2, answered_by = COALESCE(?3, answered_by),
            completed_at = ?4 WHERE id = ?1 AND state = 'RUNNING'")?.execute(
        params![id, result.as_str(), account_id, now],
    )?;
    if n == 1 {
        audit(
            tx,
            now,
            "transaction_completed",
            account_id,
            &serde_json::json!({
            "transaction_id": id, "end_result": result.as_str() }),
        )?;
    }
    Ok(n == 1)
}
