//! Accounts (SQLite).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::audit::audit;
use super::certificates::revoke_where;
use super::replies::insert_reply;
use crate::store::*;

impl Accounts for SqliteStore {
    fn account(&self, id: &str) -> Result<Account> {
        let conn = self.conn();
        account_where(&conn, "id = ?1", id)?.ok_or(StoreError::NotFound("account"))
    }

    fn account_by_document(&self, document_number: &str) -> Result<Account> {
        let conn = self.conn();
        account_where(&conn, "document_number = ?1", document_number)?
            .ok_or(StoreError::NotFound("account"))
    }

    fn active_accounts_of(&self, country: &str, national_id: &str) -> Result<Vec<Account>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACC_COLS} FROM accounts WHERE country = ?1 AND national_id = ?2 AND state = 'ACTIVE' ORDER BY created_at"
        ))?;
        let rows = stmt.query_map(params![country, national_id], account_row)?;
        rows.map(|r| r?).collect()
    }

    fn all_accounts(&self) -> Result<Vec<Account>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACC_COLS} FROM accounts ORDER BY created_at"
        ))?;
        let rows = stmt.query_map([], account_row)?;
        rows.map(|r| r?).collect()
    }

    fn accounts_of(&self, country: &str, national_id: &str) -> Result<Vec<Account>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACC_COLS} FROM accounts WHERE country = ?1 AND national_id = ?2 ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map(params![country, national_id], account_row)?;
        rows.map(|r| r?).collect()
    }

    fn delete_account(
        &self,
        account_id: &str,
        now: i64,
        by: &str,
        reply: Option<&Reply>,
    ) -> Result<()> {
        let details = serde_json::json!({ "by": by });
        self.write(|tx| delete_in(tx, account_id, now, reply, &details))
    }

    fn delete_account_for_portal(
        &self,
        account_id: &str,
        deletion: &PortalDeletion<'_>,
        now: i64,
    ) -> Result<bool> {
        let details = serde_json::json!({
            "by": "portal",
            "rp_uuid": deletion.rp_uuid,
            "auth_session_id": deletion.auth_session_id,
        });
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "INSERT INTO portal_deletions (auth_session_id, rp_uuid, account_id, deleted_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (auth_session_id) DO NOTHING",
                )?
                .execute(params![deletion.auth_session_id, deletion.rp_uuid, account_id, now])?;
            if n == 0 {
                return Ok(false);
            }
            delete_in(tx, account_id, now, None, &details)?;
            Ok(true)
        })
    }
}

/// Deletes an account inside a write transaction (see [`Accounts::delete_account`]); the
/// audit record carries `details`.
fn delete_in(
    tx: &Connection,
    account_id: &str,
    now: i64,
    reply: Option<&Reply>,
    details: &serde_json::Value,
) -> Result<()> {
    let n = tx.prepare_cached("UPDATE accounts SET state = 'DELETED', deleted_at = ?2 WHERE id = ?1 AND state = 'ACTIVE'")?.execute(
                params![account_id, now],
            )?;
    if n == 0 {
        return Err(StoreError::NotFound("active account"));
    }
    tx.prepare_cached("UPDATE key_pairs SET server_share_blob = NULL, server_key_blob = NULL, status = 'DISABLED',
                    disabled_reason = COALESCE(disabled_reason, ?2) WHERE account_id = ?1")?.execute(
                params![account_id, DisableReason::AccountDeleted.as_str()],
            )?;
    revoke_where(
        tx,
        "account_id = ?1",
        account_id,
        None,
        DisableReason::AccountDeleted.crl_reason(),
        now,
    )?;
    if let Some(reply) = reply {
        insert_reply(tx, reply)?;
    }
    audit(tx, now, "account_deleted", Some(account_id), details)?;
    Ok(())
}

pub(super) const ACC_COLS: &str = "id, document_number, device_id, device_secret_hash, given_name, surname, country, \
                        national_id, created_at, expires_at, state";

pub(super) fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Account>> {
    let state: String = r.get(10)?;
    let state = match state.as_str() {
        "ACTIVE" => Ok(AccountState::Active),
        "DELETED" => Ok(AccountState::Deleted),
        other => Err(StoreError::Corrupt(format!("account state {other}"))),
    };
    let acc = Account {
        id: r.get(0)?,
        document_number: r.get(1)?,
        device_id: r.get(2)?,
        device_secret_hash: r.get(3)?,
        identity: Identity {
            given_name: r.get(4)?,
            surname: r.get(5)?,
            country: r.get(6)?,
            national_id: r.get(7)?,
        },
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
        state: AccountState::Active,
    };
    Ok(state.map(|state| Account { state, ..acc }))
}

pub(super) fn account_where(conn: &Connection, cond: &str, value: &str) -> Result<Option<Account>> {
    let row = conn
        .prepare_cached(&format!("SELECT {ACC_COLS} FROM accounts WHERE {cond}"))?
        .query_row(params![value], account_row)
        .optional()?;
    row.transpose()
}
