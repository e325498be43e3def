//! Software certificates of relying parties: credits, administrators, vouchers and
//! certificate creations (SQLite). Each state change is one `BEGIN IMMEDIATE` transaction
//! with its audit record, so two concurrent redemptions of a voucher are serialised and
//! the second sees it redeemed.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::audit::audit;
use crate::store::*;

/// CRL reason of a certificate signed for a creation cancelled meanwhile
/// (cessationOfOperation: it was never handed out).
const REASON_DISCARDED: i64 = 5;

const COLUMNS: &str = "id, rp_uuid, label, state, queued_at, public_key, admin, serial, der, \
                       not_after, revoked_at, revocation_reason";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RpCertRecord, String)> {
    let state: String = r.get(3)?;
    let revoked_at: Option<i64> = r.get(10)?;
    let reason: Option<i64> = r.get(11)?;
    Ok((
        RpCertRecord {
            id: r.get(0)?,
            rp_uuid: r.get(1)?,
            label: r.get(2)?,
            // Replaced below from `state` (a corrupt name is an error there).
            status: RpCertStatus::Queued,
            queued_at: r.get(4)?,
            public_key: r.get(5)?,
            admin: r.get(6)?,
            serial_hex: r.get(7)?,
            der: r.get(8)?,
            not_after: r.get(9)?,
            revoked: revoked_at.map(|at| (at, reason.unwrap_or(0))),
        },
        state,
    ))
}

fn certs_where(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RpCertRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM rp_certs WHERE {condition} ORDER BY seq DESC"
    ))?;
    let rows = stmt.query_map(params, record)?;
    let mut out = Vec::new();
    for row in rows {
        let (mut rec, state) = row?;
        rec.status = RpCertStatus::from_name(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("rp certificate state {state}")))?;
        out.push(rec);
    }
    Ok(out)
}

fn active(tx: &Connection, rp_uuid: &str) -> Result<()> {
    let active: Option<i64> = tx
        .prepare_cached("SELECT active FROM relying_parties WHERE uuid = ?1")?
        .query_row(params![rp_uuid], |r| r.get(0))
        .optional()?;
    if active != Some(1) {
        return Err(StoreError::Conflict(format!(
            "no active relying party {rp_uuid}"
        )));
    }
    Ok(())
}

fn credits(conn: &Connection, rp_uuid: &str) -> Result<u32> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT credits FROM rp_credits WHERE rp_uuid = ?1")?
        .query_row(params![rp_uuid], |r| r.get(0))
        .optional()?;
    u32::try_from(n.unwrap_or(0)).map_err(|_| StoreError::Corrupt("credits".into()))
}

fn set_credits(tx: &Connection, rp_uuid: &str, n: u32) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO rp_credits (rp_uuid, credits) VALUES (?1, ?2)
         ON CONFLICT (rp_uuid) DO UPDATE SET credits = excluded.credits",
    )?
    .execute(params![rp_uuid, n])?;
    Ok(())
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

impl RpCerts for SqliteStore {
    fn rp_credits(&self, rp_uuid: &str) -> Result<u32> {
        credits(&self.conn(), rp_uuid)
    }

    fn add_rp_credits(&self, rp_uuid: &str, n: u32, now: i64) -> Result<u32> {
        self.write(|tx| {
            active(tx, rp_uuid)?;
            let before = credits(tx, rp_uuid)?;
            let after = before.checked_add(n).ok_or_else(|| {
                StoreError::Conflict(format!("{before} + {n} credits exceed the largest balance"))
            })?;
            set_credits(tx, rp_uuid, after)?;
            let details = serde_json::json!({ "uuid": rp_uuid, "added": n, "credits": after });
            audit(tx, now, "rp_credit_added", None, &details)?;
            Ok(after)
        })
    }

    fn add_rp_admin(&self, rp_uuid: &str, person: &str, now: i64) -> Result<bool> {
        check_admin_identity(person).map_err(StoreError::Conflict)?;
        self.write(|tx| {
            active(tx, rp_uuid)?;
            let n = tx
                .prepare_cached(
                    "INSERT INTO rp_admins (rp_uuid, person, added_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![rp_uuid, person, now])?;
            if n == 1 {
                let details = serde_json::json!({ "uuid": rp_uuid, "person": person });
                audit(tx, now, "rp_admin_added", None, &details)?;
            }
            Ok(n == 1)
        })
    }

    fn remove_rp_admin(&self, rp_uuid: &str, person: &str, now: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM rp_admins WHERE rp_uuid = ?1 AND person = ?2")?
                .execute(params![rp_uuid, person])?;
            if n == 1 {
                let details = serde_json::json!({ "uuid": rp_uuid, "person": person });
                audit(tx, now, "rp_admin_removed", None, &details)?;
            }
            Ok(n == 1)
        })
    }

    fn rp_admins(&self, rp_uuid: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT person FROM rp_admins WHERE rp_uuid = ?1 ORDER BY person")?;
        let rows = stmt.query_map(params![rp_uuid], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn administered_rps(&self, person: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT a.rp_uuid FROM rp_admins a JOIN relying_parties r ON r.uuid = a.rp_uuid
             WHERE a.person = ?1 AND r.active = 1 ORDER BY a.rp_uuid",
        )?;
        let rows = stmt.query_map(params![person], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn queue_rp_certs(
        &self,
        rp_uuid: &str,
        admin: &str,
        certs: &[NewRpCertRecord],
        now: i64,
    ) -> Result<u32> {
        self.write(|tx| {
            active(tx, rp_uuid)?;
            let have = credits(tx, rp_uuid)?;
            let want = u32::try_from(certs.len())
                .map_err(|_| StoreError::Conflict("too many certificates".into()))?;
            if want > have {
                return Err(StoreError::Conflict(format!(
                    "{want} certificates need {want} credits; the relying party has {have}"
                )));
            }
            let mut seq: i64 = tx
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM rp_certs")?
                .query_row([], |r| r.get(0))?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO rp_certs (id, rp_uuid, label, state, queued_at, seq, public_key, admin)
                 VALUES (?1, ?2, ?3, 'QUEUED', ?4, ?5, ?6, ?7)",
            )?;
            for c in certs {
                seq += 1;
                insert.execute(params![
                    c.id,
                    rp_uuid,
                    c.label,
                    now,
                    seq,
                    c.public_key,
                    admin
                ])?;
            }
            let left = have - want;
            set_credits(tx, rp_uuid, left)?;
            let ids: Vec<&str> = certs.iter().map(|c| c.id.as_str()).collect();
            let details = serde_json::json!({
                "uuid": rp_uuid, "by": admin, "ids": ids, "credits": left,
            });
            audit(tx, now, "rp_certs_queued", None, &details)?;
            Ok(left)
        })
    }

    fn cancel_rp_cert(
        &self,
        rp_uuid: &str,
        id: &str,
        voucher: &NewVoucher,
        by: &str,
        now: i64,
    ) -> Result<RpCertRecord> {
        self.write(|tx| {
            let mut rec = certs_where(tx, "id = ?1 AND rp_uuid = ?2", params![id, rp_uuid])?
                .pop()
                .ok_or(StoreError::NotFound("certificate"))?;
            if !matches!(rec.status, RpCertStatus::Queued | RpCertStatus::Creating) {
                return Err(StoreError::Conflict(format!(
                    "the certificate is {}: only a queued or running creation can be cancelled",
                    rec.status.name().to_lowercase()
                )));
            }
            tx.prepare_cached("UPDATE rp_certs SET state = 'CANCELLED' WHERE id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached(
                "INSERT INTO rp_vouchers (code_hash, code, rp_uuid, cert_id, state, issued_at)
                 VALUES (?1, ?2, ?3, ?4, 'ISSUED', ?5)",
            )?
            .execute(params![voucher.code_hash, voucher.code, rp_uuid, id, now])?;
            let details = serde_json::json!({ "uuid": rp_uuid, "id": id, "by": by });
            audit(tx, now, "rp_cert_cancelled", None, &details)?;
            let details = serde_json::json!({
                "uuid": rp_uuid, "id": id, "hint": voucher_hint(&voucher.code),
            });
            audit(tx, now, "rp_voucher_issued", None, &details)?;
            rec.status = RpCertStatus::Cancelled;
            Ok(rec)
        })
    }

    fn redeem_rp_voucher(
        &self,
        rp_uuid: &str,
        code_hash: &[u8],
        by: &str,
        now: i64,
    ) -> Result<u32> {
        self.write(|tx| {
            let found: Option<(String, String)> = tx
                .prepare_cached(
                    "SELECT state, code FROM rp_vouchers WHERE code_hash = ?1 AND rp_uuid = ?2",
                )?
                .query_row(params![code_hash, rp_uuid], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((state, code)) = found else {
                return Err(StoreError::NotFound("voucher"));
            };
            if state != "ISSUED" {
                return Err(StoreError::Conflict(
                    "the voucher was redeemed already".into(),
                ));
            }
            active(tx, rp_uuid)?;
            tx.prepare_cached(
                "UPDATE rp_vouchers SET state = 'REDEEMED', redeemed_at = ?2
                 WHERE code_hash = ?1 AND state = 'ISSUED'",
            )?
            .execute(params![code_hash, now])?;
            let after = credits(tx, rp_uuid)?
                .checked_add(1)
                .ok_or_else(|| StoreError::Conflict("the balance is at its largest".into()))?;
            set_credits(tx, rp_uuid, after)?;
            let details = serde_json::json!({
                "uuid": rp_uuid, "hint": voucher_hint(&code), "by": by, "credits": after,
            });
            audit(tx, now, "rp_voucher_redeemed", None, &details)?;
            Ok(after)
        })
    }

    fn claim_rp_certs(&self, max: usize, _now: i64) -> Result<Vec<RpCertRecord>> {
        self.write(|tx| {
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM rp_certs WHERE state = 'QUEUED' ORDER BY seq LIMIT ?1"
            ))?;
            let rows = stmt.query_map(params![max], record)?;
            let mut out = Vec::new();
            for row in rows {
                let (mut rec, _) = row?;
                rec.status = RpCertStatus::Creating;
                out.push(rec);
            }
            let mut update =
                tx.prepare_cached("UPDATE rp_certs SET state = 'CREATING' WHERE id = ?1")?;
            for rec in &out {
                update.execute(params![rec.id])?;
            }
            Ok(out)
        })
    }

    fn release_rp_certs(&self, ids: &[String]) -> Result<()> {
        self.write(|tx| {
            let mut update = tx.prepare_cached(
                "UPDATE rp_certs SET state = 'QUEUED' WHERE id = ?1 AND state = 'CREATING'",
            )?;
            for id in ids {
                update.execute(params![id])?;
            }
            Ok(())
        })
    }

    fn complete_rp_certs(
        &self,
        done: &[IssuedRpCertRecord],
        now: i64,
    ) -> Result<Vec<RpCertCompletion>> {
        self.write(|tx| {
            let mut out = Vec::with_capacity(done.len());
            let mut issued = Vec::new();
            let mut ready = tx.prepare_cached(
                "UPDATE rp_certs SET state = 'READY', serial = ?2, der = ?3, not_after = ?4
                 WHERE id = ?1 AND state = 'CREATING'",
            )?;
            let mut discard = tx.prepare_cached(
                "UPDATE rp_certs SET serial = ?2, der = ?3, not_after = ?4, revoked_at = ?5,
                 revocation_reason = ?6 WHERE id = ?1 AND serial IS NULL",
            )?;
            for d in done {
                let serial = hex::encode(strip_zeros(&d.serial));
                if ready.execute(params![d.id, serial, d.der, d.not_after])? == 1 {
                    issued.push(serde_json::json!({ "id": d.id, "serial": serial }));
                    out.push(RpCertCompletion::Issued);
                } else {
                    let n = discard.execute(params![
                        d.id,
                        serial,
                        d.der,
                        d.not_after,
                        now,
                        REASON_DISCARDED
                    ])?;
                    if n == 1 {
                        let details = serde_json::json!({ "id": d.id, "serial": serial });
                        audit(tx, now, "rp_cert_discarded", None, &details)?;
                    }
                    out.push(RpCertCompletion::Discarded);
                }
            }
            if !issued.is_empty() {
                let details = serde_json::json!({ "certificates": issued });
                audit(tx, now, "rp_certs_issued", None, &details)?;
            }
            Ok(out)
        })
    }

    fn requeue_creating_rp_certs(&self) -> Result<usize> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached("UPDATE rp_certs SET state = 'QUEUED' WHERE state = 'CREATING'")?
                .execute([])?)
        })
    }

    fn revoke_rp_cert(
        &self,
        rp_uuid: Option<&str>,
        id_or_serial: &str,
        reason: i64,
        by: &str,
        now: i64,
    ) -> Result<(RpCertRecord, bool)> {
        self.write(|tx| {
            let key = id_or_serial.trim().to_ascii_lowercase();
            let serial = hex::decode(&key)
                .map(|b| hex::encode(strip_zeros(&b)))
                .unwrap_or_default();
            let mut found = certs_where(tx, "id = ?1 OR serial = ?2", params![key, serial])?;
            if let Some(rp) = rp_uuid {
                found.retain(|r| r.rp_uuid == rp);
            }
            let mut rec = found.pop().ok_or(StoreError::NotFound("certificate"))?;
            match rec.status {
                RpCertStatus::Revoked => return Ok((rec, false)),
                RpCertStatus::Ready => {}
                other => {
                    return Err(StoreError::Conflict(format!(
                        "the certificate is {}: only an issued certificate can be revoked",
                        other.name().to_lowercase()
                    )));
                }
            }
            tx.prepare_cached(
                "UPDATE rp_certs SET state = 'REVOKED', revoked_at = ?2, revocation_reason = ?3
                 WHERE id = ?1",
            )?
            .execute(params![rec.id, now, reason])?;
            let details = serde_json::json!({
                "uuid": rec.rp_uuid, "id": rec.id, "serial": rec.serial_hex,
                "reason": reason, "by": by,
            });
            audit(tx, now, "rp_cert_revoked", None, &details)?;
            rec.status = RpCertStatus::Revoked;
            rec.revoked = Some((now, reason));
            Ok((rec, true))
        })
    }

    fn rp_cert(&self, rp_uuid: &str, id: &str) -> Result<Option<RpCertRecord>> {
        let conn = self.conn();
        Ok(certs_where(&conn, "id = ?1 AND rp_uuid = ?2", params![id, rp_uuid])?.pop())
    }

    fn rp_cert_by_serial(&self, serial: &[u8]) -> Result<Option<RpCertRecord>> {
        let conn = self.conn();
        let serial = hex::encode(strip_zeros(serial));
        Ok(certs_where(&conn, "serial = ?1", params![serial])?.pop())
    }

    fn rp_certs_of(&self, rp_uuid: Option<&str>) -> Result<Vec<RpCertRecord>> {
        let conn = self.conn();
        match rp_uuid {
            Some(rp) => certs_where(&conn, "rp_uuid = ?1", params![rp]),
            None => certs_where(&conn, "1 = 1", []),
        }
    }

    fn rp_vouchers(&self, rp_uuid: &str) -> Result<Vec<VoucherRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT code, rp_uuid, cert_id, issued_at, redeemed_at FROM rp_vouchers
             WHERE rp_uuid = ?1 ORDER BY issued_at, cert_id",
        )?;
        let rows = stmt.query_map(params![rp_uuid], |r| {
            Ok(VoucherRecord {
                code: r.get(0)?,
                rp_uuid: r.get(1)?,
                cert_id: r.get(2)?,
                issued_at: r.get(3)?,
                redeemed_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn revoked_rp_certs(&self) -> Result<Vec<RpCertRecord>> {
        let conn = self.conn();
        certs_where(&conn, "revoked_at IS NOT NULL AND serial IS NOT NULL", [])
    }
}

/// A voucher code's last group, for the audit log (which keeps no whole code).
fn voucher_hint(code: &str) -> &str {
    code.rsplit('-').next().unwrap_or_default()
}
