//! Revoked CA certificates: what the root's CRL (`GET /crl/root.crl`) lists. The root issues
//! only the issuing CA certificate, so in practice this holds at most that one; the operator
//! revokes it with `tandem operator revoke-ca` (schema migration 13).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::audit::audit;
use crate::store::*;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaRevocation> {
    Ok(CaRevocation {
        serial_hex: r.get(0)?,
        subject: r.get(1)?,
        revoked_at: r.get(2)?,
        reason: r.get(3)?,
    })
}

const COLS: &str = "serial, subject, revoked_at, revocation_reason";

impl CaRevocations for SqliteStore {
    fn revoke_ca_certificate(
        &self,
        serial: &[u8],
        subject: &str,
        reason: i64,
        now: i64,
    ) -> Result<(CaRevocation, bool)> {
        let serial_hex = hex::encode(strip_zeros(serial));
        if serial_hex.is_empty() {
            return Err(StoreError::Conflict("a serial number of zero".into()));
        }
        self.write(|tx| {
            let existing = tx
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM ca_revocations WHERE serial = ?1"
                ))?
                .query_row(params![serial_hex], row)
                .optional()?;
            if let Some(r) = existing {
                return Ok((r, false));
            }
            tx.prepare_cached(
                "INSERT INTO ca_revocations (serial, subject, revoked_at, revocation_reason) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![serial_hex, subject, now, reason])?;
            let details = serde_json::json!({
                "serial": serial_hex, "subject": subject, "reason": reason, "by": "operator"
            });
            audit(tx, now, "ca_certificate_revoked", None, &details)?;
            Ok((
                CaRevocation {
                    serial_hex: serial_hex.clone(),
                    subject: subject.to_owned(),
                    revoked_at: now,
                    reason,
                },
                true,
            ))
        })
    }

    fn ca_revocations(&self) -> Result<Vec<CaRevocation>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLS} FROM ca_revocations ORDER BY serial"
        ))?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn ca_revocation(&self, serial: &[u8]) -> Result<Option<CaRevocation>> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {COLS} FROM ca_revocations WHERE serial = ?1"
            ))?
            .query_row(params![hex::encode(strip_zeros(serial))], row)
            .optional()?)
    }

    fn next_root_crl_number(&self) -> Result<u64> {
        self.write(|tx| {
            let n: i64 = tx
                .prepare_cached("SELECT next_number FROM root_crl_counter WHERE id = 1")?
                .query_row([], |r| r.get(0))?;
            tx.prepare_cached(
                "UPDATE root_crl_counter SET next_number = next_number + 1 WHERE id = 1",
            )?
            .execute([])?;
            Ok(n as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_revocation_is_recorded_once_and_audited() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.ca_revocations().unwrap(), vec![]);
        assert_eq!(store.ca_revocation(&[0x5a, 0x01]).unwrap(), None);

        let (first, made) = store
            .revoke_ca_certificate(&[0x00, 0x5a, 0x01], "CN=Tandem Issuing CA", 2, 1_000)
            .unwrap();
        assert!(made);
        assert_eq!(
            first,
            CaRevocation {
                serial_hex: "5a01".into(),
                subject: "CN=Tandem Issuing CA".into(),
                revoked_at: 1_000,
                reason: 2,
            }
        );
        // Again, with another reason and time: nothing changes.
        let (again, made) = store
            .revoke_ca_certificate(&[0x5a, 0x01], "CN=Tandem Issuing CA", 5, 2_000)
            .unwrap();
        assert!(!made);
        assert_eq!(again, first);
        assert_eq!(store.ca_revocations().unwrap(), vec![first.clone()]);
        assert_eq!(store.ca_revocation(&[0x5a, 0x01]).unwrap(), Some(first));
        assert_eq!(store.ca_revocation(&[0x5a, 0x02]).unwrap(), None);

        let audit = store.audit_log(1, 100).unwrap();
        let events: Vec<_> = audit
            .iter()
            .filter(|a| a.event == "ca_certificate_revoked")
            .collect();
        assert_eq!(events.len(), 1, "{audit:?}");
        assert!(events[0].details.contains("\"serial\":\"5a01\""));

        assert!(store.revoke_ca_certificate(&[0, 0], "x", 0, 1).is_err());
    }

    #[test]
    fn the_root_crl_numbers_are_their_own_sequence() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.next_crl_number().unwrap(), 1);
        assert_eq!(store.next_root_crl_number().unwrap(), 1);
        assert_eq!(store.next_root_crl_number().unwrap(), 2);
        assert_eq!(store.next_crl_number().unwrap(), 2);
    }
}
