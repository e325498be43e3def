//! Registrations and the server key pool (SQLite).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::accounts::account_where;
use super::audit::audit;
use super::replies::insert_reply;
use crate::store::names::{key_type_from_name, key_type_name};
use crate::store::*;
use tandem_client_core::types::KeyType;

impl Registrations for SqliteStore {
    fn create_registration(&self, r: &NewRegistration, reply: &Reply) -> Result<()> {
        self.write(|tx| {
            insert_reply(tx, reply)?;
            tx.prepare_cached("INSERT INTO registrations (id, secret_hash, code, device_id, matching_code, state, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?.execute(
                params![
                    r.id,
                    r.secret_hash,
                    r.code,
                    r.device_id,
                    r.matching_code,
                    RegistrationState::PendingApproval.as_str(),
                    r.created_at,
                    r.expires_at
                ],
            )?;
            audit(tx, r.created_at, "registration_started", None, &serde_json::json!({
                "registration_id": r.id, "matching_code": r.matching_code }))?;
            Ok(())
        })
    }

    fn registration(&self, id: &str) -> Result<Registration> {
        let conn = self.conn();
        registration_where(&conn, "id = ?1", id)?.ok_or(StoreError::NotFound("registration"))
    }

    fn registration_by_code(&self, code: &str) -> Result<Registration> {
        let conn = self.conn();
        registration_where(&conn, "code = ?1", code)?.ok_or(StoreError::NotFound("registration"))
    }

    fn pending_registrations(&self, now: i64) -> Result<Vec<Registration>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REG_COLS} FROM registrations WHERE state = 'PENDING_APPROVAL' AND expires_at > ?1 ORDER BY created_at"
        ))?;
        let rows = stmt.query_map(params![now], registration_row)?;
        rows.map(|r| r?).collect()
    }

    fn approve_registration_as(
        &self,
        code: &str,
        identity: &Identity,
        document_number: Option<&str>,
        now: i64,
    ) -> Result<Registration> {
        self.write(|tx| {
            if let Some(doc) = document_number
                && account_where(tx, "document_number = ?1", doc)?.is_some()
            {
                return Err(StoreError::Conflict(format!(
                    "document number {doc} is already taken"
                )));
            }
            let reg = registration_where(tx, "code = ?1", code)?.ok_or(StoreError::NotFound("registration"))?;
            if reg.is_expired(now) {
                return Err(StoreError::Conflict("the registration code has expired".into()));
            }
            if reg.state != RegistrationState::PendingApproval {
                return Err(StoreError::Conflict("the registration is not waiting for approval".into()));
            }
            tx.prepare_cached("UPDATE registrations SET state = 'APPROVED', given_name = ?2, surname = ?3, country = ?4, national_id = ?5,
                 document_number = ?6 WHERE id = ?1")?.execute(
                params![reg.id, identity.given_name, identity.surname, identity.country, identity.national_id,
                        document_number],
            )?;
            audit(tx, now, "registration_approved", None, &serde_json::json!({
                "registration_id": reg.id, "country": identity.country }))?;
            registration_where(tx, "id = ?1", &reg.id)?.ok_or(StoreError::NotFound("registration"))
        })
    }

    fn pool_server_key(
        &self,
        bits: usize,
        modulus: &[u8],
        wrapped_private_key: &[u8],
        now: i64,
    ) -> Result<()> {
        let bits = bits_column(bits)?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO server_key_pool (bits, modulus, wrapped_private_key, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![bits, modulus, wrapped_private_key, now])?;
            Ok(())
        })
    }

    fn take_pooled_server_keys(
        &self,
        bits: usize,
        count: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let bits = bits_column(bits)?;
        // Deferred durability: the keys go to a registration whose (synchronous) commit
        // follows and makes this one durable too; lost to a power cut before it, the keys are
        // simply back in the pool, given to nobody.
        self.write_deferred(|tx| {
            let mut taken = Vec::with_capacity(count);
            for _ in 0..count {
                let key = tx
                    .prepare_cached(
                        "DELETE FROM server_key_pool WHERE id =
                            (SELECT id FROM server_key_pool WHERE bits = ?1 ORDER BY id LIMIT 1)
                         RETURNING modulus, wrapped_private_key",
                    )?
                    .query_row(params![bits], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                match key {
                    Some(k) => taken.push(k),
                    None => break,
                }
            }
            Ok(taken)
        })
    }

    fn pooled_server_key_list(&self, bits: usize, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let bits = bits_column(bits)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT modulus, wrapped_private_key FROM server_key_pool WHERE bits = ?1
             ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![bits, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn pooled_server_keys(&self, bits: usize) -> Result<usize> {
        let bits = bits_column(bits)?;
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM server_key_pool WHERE bits = ?1")?
            .query_row(params![bits], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn submit_registration_keys(
        &self,
        registration_id: &str,
        keys: &[RegistrationKey],
        now: i64,
        reply: &Reply,
    ) -> Result<()> {
        self.write(|tx| {
            let reg = registration_where(tx, "id = ?1", registration_id)?
                .ok_or(StoreError::NotFound("registration"))?;
            if reg.is_expired(now) {
                return Err(StoreError::Conflict("the registration has expired".into()));
            }
            if reg.state != RegistrationState::Approved {
                return Err(StoreError::Conflict("the registration is not approved or keys were already submitted".into()));
            }
            for k in keys {
                tx.prepare_cached("INSERT INTO registration_keys (registration_id, key_type, client_modulus, server_modulus,
                        server_share_blob, server_key_blob, proof_hash, proof_scheme, proof_digest, proof_message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?.execute(
                    params![
                        registration_id,
                        key_type_name(k.key_type),
                        k.client_modulus,
                        k.server_modulus,
                        k.server_share_blob,
                        k.server_key_blob,
                        k.proof_hash,
                        k.proof_scheme,
                        k.proof_digest,
                        k.proof_message
                    ],
                )?;
            }
            tx.prepare_cached("UPDATE registrations SET state = 'KEYS_SUBMITTED' WHERE id = ?1")?.execute( params![registration_id])?;
            insert_reply(tx, reply)?;
            audit(tx, now, "registration_keys_submitted", None, &serde_json::json!({
                "registration_id": registration_id }))?;
            Ok(())
        })
    }

    fn registration_keys(&self, registration_id: &str) -> Result<Vec<RegistrationKey>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key_type, client_modulus, server_modulus, server_share_blob, server_key_blob,
                    proof_hash, proof_scheme, proof_digest, proof_message
             FROM registration_keys WHERE registration_id = ?1 ORDER BY key_type",
        )?;
        let rows = stmt.query_map(params![registration_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                RegistrationKey {
                    key_type: KeyType::Auth,
                    client_modulus: r.get(1)?,
                    server_modulus: r.get(2)?,
                    server_share_blob: r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default(),
                    server_key_blob: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                    proof_hash: r.get(5)?,
                    proof_scheme: r.get(6)?,
                    proof_digest: r.get(7)?,
                    proof_message: r.get(8)?,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kt, mut key) = row?;
            key.key_type = key_type_from_name(&kt)?;
            out.push(key);
        }
        Ok(out)
    }

    fn registration_proof_failed(
        &self,
        registration_id: &str,
        seen_attempts: u32,
        max_attempts: u32,
        now: i64,
        reply: &Reply,
    ) -> Result<Option<u32>> {
        self.write(|tx| {
            let reg = registration_where(tx, "id = ?1", registration_id)?
                .ok_or(StoreError::NotFound("registration"))?;
            if reg.proof_attempts != seen_attempts {
                return Ok(None);
            }
            let attempts = reg.proof_attempts + 1;
            let left = max_attempts.saturating_sub(attempts);
            if left == 0 {
                tx.prepare_cached("UPDATE registrations SET proof_attempts = ?2, state = 'FAILED' WHERE id = ?1")?.execute(
                    params![registration_id, attempts],
                )?;
                tx.prepare_cached("UPDATE registration_keys SET server_share_blob = NULL, server_key_blob = NULL WHERE registration_id = ?1")?.execute(
                    params![registration_id],
                )?;
            } else {
                tx.prepare_cached("UPDATE registrations SET proof_attempts = ?2 WHERE id = ?1")?.execute(
                    params![registration_id, attempts],
                )?;
            }
            insert_reply(tx, reply)?;
            audit(tx, now, "registration_proof_failed", None, &serde_json::json!({
                "registration_id": registration_id, "attempts_left": left }))?;
            Ok(Some(left))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn complete_registration(
        &self,
        registration_id: &str,
        account_id: &str,
        document_number: &str,
        device_secret_hash: &[u8],
        expires_at: i64,
        clone_token_hashes: &[(KeyType, Vec<u8>)],
        certificates: &[NewCertificate],
        now: i64,
        reply: &Reply,
    ) -> Result<Account> {
        self.write(|tx| {
            let reg = registration_where(tx, "id = ?1", registration_id)?
                .ok_or(StoreError::NotFound("registration"))?;
            if reg.state != RegistrationState::KeysSubmitted {
                return Err(StoreError::Conflict("the registration is not waiting for its PIN proof".into()));
            }
            if reg.is_expired(now) {
                return Err(StoreError::Conflict("the registration has expired".into()));
            }
            let identity = reg.identity.clone().ok_or_else(|| StoreError::Corrupt("approved registration without identity".into()))?;
            let busy: Option<String> = tx
                .prepare_cached("SELECT id FROM accounts WHERE device_id = ?1 AND state = 'ACTIVE'")?.query_row(
                    params![reg.device_id],
                    |r| r.get(0),
                )
                .optional()?;
            if busy.is_some() {
                return Err(StoreError::Conflict("this device already has an active account; delete it first".into()));
            }
            tx.prepare_cached("INSERT INTO accounts (id, document_number, device_id, device_secret_hash, given_name, surname, country,
                    national_id, created_at, expires_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'ACTIVE')")?.execute(
                params![
                    account_id,
                    document_number,
                    reg.device_id,
                    device_secret_hash,
                    identity.given_name,
                    identity.surname,
                    identity.country,
                    identity.national_id,
                    now,
                    expires_at
                ],
            )?;
            type KeyRow = (String, Vec<u8>, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);
            let keys: Vec<KeyRow> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT key_type, client_modulus, server_modulus, server_share_blob, server_key_blob
                     FROM registration_keys WHERE registration_id = ?1",
                )?;
                let rows = stmt.query_map(params![registration_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                rows.collect::<std::result::Result<_, _>>()?
            };
            for (kt, n1, n2, share, key) in keys {
                let key_type = key_type_from_name(&kt)?;
                let token_hash = clone_token_hashes
                    .iter()
                    .find(|(k, _)| *k == key_type)
                    .map(|(_, h)| h.clone())
                    .ok_or_else(|| StoreError::Conflict(format!("no clone token for {kt}")))?;
                let composite = tandem_client_core::hazmat::multiply(&n1, &n2);
                tx.prepare_cached("INSERT INTO key_pairs (account_id, key_type, client_modulus, server_modulus, composite_modulus,
                        server_share_blob, server_key_blob, status, consecutive_failures, clone_token_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'ACTIVE', 0, ?8)")?.execute(
                    params![account_id, kt, n1, n2, composite, share, key, token_hash],
                )?;
            }
            // The account's copies are the only ones kept.
            tx.prepare_cached("UPDATE registration_keys SET server_share_blob = NULL, server_key_blob = NULL WHERE registration_id = ?1")?.execute(
                params![registration_id],
            )?;
            tx.prepare_cached("UPDATE registrations SET state = 'COMPLETED', account_id = ?2 WHERE id = ?1")?.execute(
                params![registration_id, account_id],
            )?;
            for c in certificates {
                tx.prepare_cached("INSERT INTO certificates (serial, account_id, key_type, level, der, not_before, not_after, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'GOOD')")?.execute(
                    params![
                        hex::encode(&c.serial),
                        account_id,
                        key_type_name(c.key_type),
                        c.level,
                        c.der,
                        c.not_before,
                        c.not_after
                    ],
                )?;
            }
            insert_reply(tx, reply)?;
            audit(tx, now, "registration_completed", Some(account_id), &serde_json::json!({
                "registration_id": registration_id, "document_number": document_number }))?;
            account_where(tx, "id = ?1", account_id)?.ok_or(StoreError::NotFound("account"))
        })
    }
}

pub(super) const REG_COLS: &str = "id, secret_hash, code, device_id, matching_code, state, created_at, expires_at, \
                        given_name, surname, country, national_id, proof_attempts, account_id, document_number";

pub(super) fn registration_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Registration>> {
    let state: String = r.get(5)?;
    let given: Option<String> = r.get(8)?;
    let identity = match given {
        Some(given_name) => Some(Identity {
            given_name,
            surname: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
            country: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
            national_id: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
        }),
        None => None,
    };
    let reg = (|| -> Result<Registration> {
        Ok(Registration {
            id: r.get(0)?,
            secret_hash: r.get(1)?,
            code: r.get(2)?,
            device_id: r.get(3)?,
            matching_code: r.get(4)?,
            state: RegistrationState::parse(&state)?,
            created_at: r.get(6)?,
            expires_at: r.get(7)?,
            identity,
            proof_attempts: r.get(12)?,
            account_id: r.get(13)?,
            document_number: r.get(14)?,
        })
    })();
    Ok(reg)
}

pub(super) fn registration_where(
    conn: &Connection,
    cond: &str,
    value: &str,
) -> Result<Option<Registration>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {REG_COLS} FROM registrations WHERE {cond}"
        ))?
        .query_row(params![value], registration_row)
        .optional()?;
    row.transpose()
}

/// A key size as the `bits` column stores it.
pub(super) fn bits_column(bits: usize) -> Result<i64> {
    i64::try_from(bits).map_err(|_| StoreError::Conflict("key size".into()))
}
