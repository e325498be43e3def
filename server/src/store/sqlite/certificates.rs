//! Certificates and the issuing CA's CRL numbers (SQLite).

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::audit::audit;
use crate::store::names::key_type_from_name;
use crate::store::*;
use tandem_client_core::types::KeyType;

impl Certificates for SqliteStore {
    fn certificate(&self, serial: &[u8]) -> Result<Option<CertRecord>> {
        let conn = self.conn();
        certs_where(
            &conn,
            "serial = ?1",
            params![hex::encode(strip_zeros(serial))],
        )
        .map(|mut v| v.pop())
    }

    fn certificates_of(&self, account_id: &str) -> Result<Vec<CertRecord>> {
        let conn = self.conn();
        certs_where(&conn, "account_id = ?1", params![account_id])
    }

    fn all_certificates(&self) -> Result<Vec<CertRecord>> {
        let conn = self.conn();
        certs_where(&conn, "1 = 1", [])
    }

    fn revoked_certificates(&self) -> Result<Vec<CertRecord>> {
        let conn = self.conn();
        certs_where(&conn, "status = 'REVOKED'", [])
    }

    fn revoke_certificate(&self, serial: &[u8], reason: i64, now: i64) -> Result<bool> {
        self.write(|tx| {
            let serial_hex = hex::encode(strip_zeros(serial));
            let rec = certs_where(tx, "serial = ?1", params![serial_hex])?
                .pop()
                .ok_or(StoreError::NotFound("certificate"))?;
            if rec.revoked.is_some() {
                return Ok(false);
            }
            tx.prepare_cached("UPDATE certificates SET status = 'REVOKED', revoked_at = ?2, revocation_reason = ?3 WHERE serial = ?1")?.execute(
                params![serial_hex, now, reason],
            )?;
            let details = serde_json::json!({ "serial": serial_hex, "reason": reason, "by": "operator" });
            audit(tx, now, "certificate_revoked", Some(&rec.account_id), &details)?;
            Ok(true)
        })
    }

    fn next_crl_number(&self) -> Result<u64> {
        self.write(|tx| {
            let n: i64 = tx
                .prepare_cached("SELECT next_number FROM crl_counter WHERE id = 1")?
                .query_row([], |r| r.get(0))?;
            tx.prepare_cached("UPDATE crl_counter SET next_number = next_number + 1 WHERE id = 1")?
                .execute([])?;
            Ok(n as u64)
        })
    }
}

/// Revokes the matching good certificates (same transaction as the cause).
pub(super) fn revoke_where(
    tx: &Connection,
    cond: &str,
    account_id: &str,
    key_type: Option<&str>,
    reason: i64,
    now: i64,
) -> Result<()> {
    let serials: Vec<String> = {
        let sql = format!("SELECT serial FROM certificates WHERE {cond} AND status = 'GOOD'");
        let mut stmt = tx.prepare_cached(&sql)?;
        match key_type {
            Some(kt) => stmt
                .query_map(params![account_id, kt], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?,
            None => stmt
                .query_map(params![account_id], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?,
        }
    };
    for serial in serials {
        tx.prepare_cached("UPDATE certificates SET status = 'REVOKED', revoked_at = ?2, revocation_reason = ?3 WHERE serial = ?1")?.execute(
            params![serial, now, reason],
        )?;
        let details = serde_json::json!({ "serial": serial, "reason": reason });
        audit(tx, now, "certificate_revoked", Some(account_id), &details)?;
    }
    Ok(())
}

pub(super) fn certs_where<P: rusqlite::Params>(
    conn: &Connection,
    cond: &str,
    values: P,
) -> Result<Vec<CertRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT serial, account_id, key_type, level, der, not_before, not_after, status, revoked_at, revocation_reason
         FROM certificates WHERE {cond} ORDER BY not_before DESC, serial"
    ))?;
    let rows = stmt.query_map(values, |r| {
        Ok((
            r.get::<_, String>(2)?,
            r.get::<_, String>(7)?,
            r.get::<_, Option<i64>>(8)?,
            r.get::<_, Option<i64>>(9)?,
            CertRecord {
                serial_hex: r.get(0)?,
                account_id: r.get(1)?,
                key_type: KeyType::Auth,
                level: r.get(3)?,
                der: r.get(4)?,
                not_before: r.get(5)?,
                not_after: r.get(6)?,
                revoked: None,
            },
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kt, status, at, reason, mut rec) = row?;
        rec.key_type = key_type_from_name(&kt)?;
        if status == "REVOKED" {
            rec.revoked = Some((at.unwrap_or(0), reason.unwrap_or(0)));
        }
        out.push(rec);
    }
    Ok(out)
}
