//! Relying parties and their names (SQLite).

use rusqlite::{Connection, OptionalExtension, params};
use tandem_rp::api::rp_name;

use super::SqliteStore;
use super::audit::audit;
use crate::store::*;

impl RelyingParties for SqliteStore {
    fn add_relying_party(&self, rp: &RelyingParty, now: i64) -> Result<()> {
        if rp.names.is_empty() {
            return Err(StoreError::Conflict(
                "a relying party needs at least one name".into(),
            ));
        }
        let mut names: Vec<&str> = Vec::with_capacity(rp.names.len());
        for name in &rp.names {
            check_rp_name(name)?;
            if let Some(other) = rp_name::clashing_name(&names, name) {
                return Err(StoreError::Conflict(format!(
                    "the names {other:?} and {name:?} are the same name ignoring case"
                )));
            }
            names.push(name);
        }
        self.write(|tx| {
            let exists: Option<String> = tx
                .prepare_cached("SELECT uuid FROM relying_parties WHERE uuid = ?1")?.query_row( params![rp.uuid], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!("relying party {} exists already", rp.uuid)));
            }
            let ips: Vec<String> = rp.allowed_ips.iter().map(ToString::to_string).collect();
            tx.prepare_cached("INSERT INTO relying_parties (uuid, allowed_ips, created_at, active, device_ip_sharing, portal, mtls_required) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6)")?.execute(
                params![rp.uuid, ips.join(","), now, rp.device_ip_sharing, rp.portal, rp.mtls_required],
            )?;
            for (position, name) in (1i64..).zip(&rp.names) {
                insert_rp_name(tx, &rp.uuid, position, name, now)?;
            }
            let details = serde_json::json!({
                "uuid": rp.uuid,
                "names": rp.names,
                "allowed_ips": ips,
                "device_ip_sharing": rp.device_ip_sharing,
                "portal": rp.portal,
                "mtls_required": rp.mtls_required,
            });
            audit(tx, now, "relying_party_added", None, &details)?;
            Ok(())
        })
    }

    fn add_relying_party_name(&self, uuid: &str, name: &str, now: i64) -> Result<()> {
        check_rp_name(name)?;
        self.write(|tx| {
            let names = active_rp_names(tx, uuid)?;
            if let Some(existing) = rp_name::clashing_name(&names, name) {
                return Err(StoreError::Conflict(format!(
                    "relying party {uuid} already has the name {existing:?} \
                     ({name:?} is the same name ignoring case)"
                )));
            }
            let position: i64 = tx
                .prepare_cached(
                    "SELECT COALESCE(MAX(position), 0) + 1 FROM relying_party_names WHERE rp_uuid = ?1",
                )?
                .query_row(params![uuid], |r| r.get(0))?;
            insert_rp_name(tx, uuid, position, name, now)?;
            let details = serde_json::json!({ "uuid": uuid, "name": name });
            audit(tx, now, "relying_party_name_added", None, &details)?;
            Ok(())
        })
    }

    fn remove_relying_party_name(&self, uuid: &str, name: &str, now: i64) -> Result<String> {
        self.write(|tx| {
            let names = active_rp_names(tx, uuid)?;
            let Some(configured) = rp_name::clashing_name(&names, name).map(str::to_owned) else {
                return Err(StoreError::Conflict(format!(
                    "relying party {uuid} has no name {name:?} (its names: {names:?})"
                )));
            };
            if names.len() == 1 {
                return Err(StoreError::Conflict(format!(
                    "{configured:?} is the last name of relying party {uuid}; \
                     add another name first, or remove the relying party"
                )));
            }
            tx.prepare_cached("DELETE FROM relying_party_names WHERE rp_uuid = ?1 AND name = ?2")?
                .execute(params![uuid, configured])?;
            let details = serde_json::json!({ "uuid": uuid, "name": configured });
            audit(tx, now, "relying_party_name_removed", None, &details)?;
            Ok(configured)
        })
    }

    fn set_relying_party_device_ip_sharing(
        &self,
        uuid: &str,
        allowed: bool,
        now: i64,
    ) -> Result<bool> {
        self.set_permission(uuid, Permission::DeviceIpSharing, allowed, now)
    }

    fn set_relying_party_portal(&self, uuid: &str, allowed: bool, now: i64) -> Result<bool> {
        self.set_permission(uuid, Permission::Portal, allowed, now)
    }

    fn set_relying_party_mtls(&self, uuid: &str, required: bool, now: i64) -> Result<bool> {
        self.set_permission(uuid, Permission::MtlsRequired, required, now)
    }

    fn remove_relying_party(&self, uuid: &str, now: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE relying_parties SET active = 0 WHERE uuid = ?1 AND active = 1",
                )?
                .execute(params![uuid])?;
            if n == 1 {
                audit(
                    tx,
                    now,
                    "relying_party_removed",
                    None,
                    &serde_json::json!({ "uuid": uuid }),
                )?;
            }
            Ok(n == 1)
        })
    }

    fn relying_parties(&self) -> Result<Vec<RelyingParty>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT r.uuid, n.name, r.allowed_ips, r.device_ip_sharing, r.portal, r.mtls_required FROM relying_parties r
             JOIN relying_party_names n ON n.rp_uuid = r.uuid
             WHERE r.active = 1 ORDER BY r.created_at, r.uuid, n.position",
        )?;
        let rows = stmt.query_map([], rp_columns)?;
        relying_parties_from_rows(rows)
    }

    fn active_relying_party(&self, uuid: &str) -> Result<Option<RelyingParty>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT r.uuid, n.name, r.allowed_ips, r.device_ip_sharing, r.portal, r.mtls_required FROM relying_parties r
             JOIN relying_party_names n ON n.rp_uuid = r.uuid
             WHERE r.uuid = ?1 AND r.active = 1 ORDER BY n.position",
        )?;
        let rows = stmt.query_map(params![uuid], rp_columns)?;
        Ok(relying_parties_from_rows(rows)?.pop())
    }
}

/// A relying party's permission: its column and the audit event of a change.
#[derive(Clone, Copy)]
enum Permission {
    DeviceIpSharing,
    Portal,
    MtlsRequired,
}

impl Permission {
    /// The column (also the audit details' key).
    fn column(self) -> &'static str {
        match self {
            Self::DeviceIpSharing => "device_ip_sharing",
            Self::Portal => "portal",
            Self::MtlsRequired => "mtls_required",
        }
    }
}

impl SqliteStore {
    /// Allows or forbids a permission of an active relying party; a change is audited as
    /// `relying_party_<column>`.
    fn set_permission(&self, uuid: &str, p: Permission, allowed: bool, now: i64) -> Result<bool> {
        let column = p.column();
        self.write(|tx| {
            let current: Option<bool> = tx
                .prepare_cached(&format!(
                    "SELECT {column} FROM relying_parties WHERE uuid = ?1 AND active = 1"
                ))?
                .query_row(params![uuid], |r| r.get(0))
                .optional()?;
            let Some(current) = current else {
                return Err(StoreError::Conflict(format!(
                    "no active relying party {uuid}"
                )));
            };
            if current == allowed {
                return Ok(false);
            }
            tx.prepare_cached(&format!(
                "UPDATE relying_parties SET {column} = ?2 WHERE uuid = ?1"
            ))?
            .execute(params![uuid, allowed])?;
            let details = serde_json::json!({ "uuid": uuid, column: allowed });
            audit(tx, now, &format!("relying_party_{column}"), None, &details)?;
            Ok(true)
        })
    }
}

/// The columns `uuid, name, allowed_ips, device_ip_sharing, portal, mtls_required` of a
/// `relying_parties` row joined with one of its `relying_party_names`.
type RpRow = (String, String, String, bool, bool, bool);

pub(super) fn rp_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<RpRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// Relying parties from [`rp_columns`] rows, one row per name, ordered by relying party and
/// then name position; `allowed_ips` is a comma-separated list.
pub(super) fn relying_parties_from_rows(
    rows: impl Iterator<Item = rusqlite::Result<RpRow>>,
) -> Result<Vec<RelyingParty>> {
    let mut out: Vec<RelyingParty> = Vec::new();
    for row in rows {
        let (uuid, name, ips, device_ip_sharing, portal, mtls_required) = row?;
        match out.last_mut() {
            Some(rp) if rp.uuid == uuid => rp.names.push(name),
            _ => {
                let allowed_ips = ips
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse()
                            .map_err(|_| StoreError::Corrupt(format!("relying party address {s}")))
                    })
                    .collect::<Result<_>>()?;
                out.push(RelyingParty {
                    uuid,
                    names: vec![name],
                    allowed_ips,
                    device_ip_sharing,
                    portal,
                    mtls_required,
                });
            }
        }
    }
    Ok(out)
}

/// Checks a relying-party name as the operator commands give it (already trimmed).
pub(super) fn check_rp_name(name: &str) -> Result<()> {
    match rp_name::configured_name(name) {
        Ok(n) if n == name => Ok(()),
        Ok(_) => Err(StoreError::Conflict(format!(
            "the relying-party name {name:?} starts or ends with white space"
        ))),
        Err(e) => Err(StoreError::Conflict(e)),
    }
}

/// The names of an active relying party (oldest first), inside a write transaction.
pub(super) fn active_rp_names(tx: &Connection, uuid: &str) -> Result<Vec<String>> {
    let active: Option<i64> = tx
        .prepare_cached("SELECT active FROM relying_parties WHERE uuid = ?1")?
        .query_row(params![uuid], |r| r.get(0))
        .optional()?;
    if active != Some(1) {
        return Err(StoreError::Conflict(format!(
            "no active relying party {uuid}"
        )));
    }
    let mut stmt = tx.prepare_cached(
        "SELECT name FROM relying_party_names WHERE rp_uuid = ?1 ORDER BY position",
    )?;
    let names = stmt
        .query_map(params![uuid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

pub(super) fn insert_rp_name(
    tx: &Connection,
    uuid: &str,
    position: i64,
    name: &str,
    now: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO relying_party_names (rp_uuid, position, name, added_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![uuid, position, name, now])?;
    Ok(())
}
