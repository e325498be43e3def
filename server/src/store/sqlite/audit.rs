//! The hash-chained audit log (SQLite).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::*;

impl Audit for SqliteStore {
    fn audit(
        &self,
        now: i64,
        event: &str,
        account_id: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<()> {
        self.write(|tx| audit(tx, now, event, account_id, details))
    }

    fn audit_log(&self, since_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, event, account_id, details, hash FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![since_seq, limit], |r| {
            Ok(AuditRecord {
                seq: r.get(0)?,
                at: r.get(1)?,
                event: r.get(2)?,
                account_id: r.get(3)?,
                details: r.get(4)?,
                hash: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn verify_audit_chain(&self) -> Result<std::result::Result<usize, i64>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT seq, at, event, account_id, details, prev_hash, hash FROM audit_log ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        let mut prev = vec![0u8; 32];
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let at: i64 = r.get(1)?;
            let event: String = r.get(2)?;
            let account: Option<String> = r.get(3)?;
            let details: String = r.get(4)?;
            let prev_hash: Vec<u8> = r.get(5)?;
            let hash: Vec<u8> = r.get(6)?;
            if prev_hash != prev
                || hash != chain_hash(&prev, seq, at, &event, account.as_deref(), &details)
            {
                return Ok(Err(seq));
            }
            prev = hash;
            n += 1;
        }
        Ok(Ok(n))
    }
}

pub(super) fn audit(
    tx: &Connection,
    now: i64,
    event: &str,
    account_id: Option<&str>,
    details: &serde_json::Value,
) -> Result<()> {
    let (seq, prev): (i64, Vec<u8>) = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .map(|(s, h): (i64, Vec<u8>)| (s + 1, h))
        .unwrap_or((1, vec![0u8; 32]));
    let details = details.to_string();
    let hash = chain_hash(&prev, seq, now, event, account_id, &details);
    tx.prepare_cached("INSERT INTO audit_log (seq, at, event, account_id, details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(
        params![seq, now, event, account_id, details, prev, hash],
    )?;
    tracing::info!(target: "tandem::audit", event, account_id, %details, "audit");
    Ok(())
}
