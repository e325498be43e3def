//! The store's traits, one per area. The core and the handlers are written against these
//! (through [`super::Store`], usually as `Arc<dyn Store>`); a backend implements all of them.
//! What each method promises to do atomically is said on the method; the module
//! documentation of [`crate::store`] gives the rules every backend follows.

use tandem_client_core::types::KeyType;

use subtle::ConstantTimeEq;
use tandem_rp::api::rp_name;

use super::{
    Account, AccountState, AttemptGate, AuditRecord, CaRevocation, CertRecord, ClaimResult,
    Completion, EndResult, HolderTransaction, Identity, KeyPair, NewCertificate, NewRegistration,
    PortalDeletion, Registration, RegistrationKey, RelyingParty, Reply, ReplyLookup, Result,
    RpCheck, RpSession, StoreError, TxForAccount, TxRecord, secret_hash,
};
use super::{
    IssuedRpCertRecord, NewRpCertRecord, NewVoucher, RpCertCompletion, RpCertRecord, VoucherRecord,
};
use crate::lockout::LockoutPolicy;

/// Stored answers for retransmission nonces (see `service::retransmission`).
pub trait Replies {
    /// Looks up a stored reply for `(scope, nonce)`.
    fn lookup_reply(&self, scope: &str, nonce: &[u8], request_hash: &[u8]) -> Result<ReplyLookup>;

    /// Deletes stored replies older than `before` (unix seconds); `secure_delete` overwrites
    /// them on disk. Returns how many were removed.
    fn prune_replies(&self, before: i64) -> Result<usize>;

    /// Stores a reply on its own (for requests whose state change is a single write).
    fn store_reply(&self, reply: &Reply) -> Result<()>;
}

/// Registrations (start, approval, key hand-over, PIN proof, completion) and the pool of
/// pre-generated server keys.
pub trait Registrations {
    /// Creates a registration.
    fn create_registration(&self, r: &NewRegistration, reply: &Reply) -> Result<()>;

    /// A registration by id.
    fn registration(&self, id: &str) -> Result<Registration>;

    /// A registration by operator code.
    fn registration_by_code(&self, code: &str) -> Result<Registration>;

    /// Registrations waiting for approval and not expired.
    fn pending_registrations(&self, now: i64) -> Result<Vec<Registration>>;

    /// Approves a registration with the person's identity.
    fn approve_registration(
        &self,
        code: &str,
        identity: &Identity,
        now: i64,
    ) -> Result<Registration> {
        self.approve_registration_as(code, identity, None, now)
    }

    /// Approves a registration with the person's identity and, optionally, the document
    /// number the account will get (refused if an account already has it).
    fn approve_registration_as(
        &self,
        code: &str,
        identity: &Identity,
        document_number: Option<&str>,
        now: i64,
    ) -> Result<Registration>;

    /// Adds a pre-generated server key (modulus and KEK-wrapped private key) to the pool.
    fn pool_server_key(
        &self,
        bits: usize,
        modulus: &[u8],
        wrapped_private_key: &[u8],
        now: i64,
    ) -> Result<()>;

    /// Takes up to `count` pooled server keys of `bits` bits, oldest first, in one database
    /// transaction: each is removed as it is handed out, so no key serves two accounts.
    /// Fewer (or none) when the pool holds fewer.
    fn take_pooled_server_keys(&self, bits: usize, count: usize)
    -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Up to `limit` pooled server keys of `bits` bits (modulus, wrapped private key), oldest
    /// first; they stay in the pool.
    fn pooled_server_key_list(&self, bits: usize, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Pooled server keys of `bits` bits.
    fn pooled_server_keys(&self, bits: usize) -> Result<usize>;

    /// Records the handed-over keys and moves the registration to `KEYS_SUBMITTED`.
    fn submit_registration_keys(
        &self,
        registration_id: &str,
        keys: &[RegistrationKey],
        now: i64,
        reply: &Reply,
    ) -> Result<()>;

    /// The handed-over keys of a registration.
    fn registration_keys(&self, registration_id: &str) -> Result<Vec<RegistrationKey>>;

    /// Counts a failed registration proof; once `max_attempts` are used up the registration
    /// fails and its handed-over secrets are destroyed. `seen_attempts` is the count the
    /// caller read and built `reply` for (attempts left: `max_attempts - seen_attempts - 1`).
    /// In one database transaction: if the stored count is still `seen_attempts`, it is
    /// raised, the reply and an audit record are written, and the attempts left are
    /// returned; if another request moved it meanwhile, nothing is written and `None` comes
    /// back (read the registration again and call again: the failure must be counted).
    fn registration_proof_failed(
        &self,
        registration_id: &str,
        seen_attempts: u32,
        max_attempts: u32,
        now: i64,
        reply: &Reply,
    ) -> Result<Option<u32>>;

    /// Completes a registration: creates the account and its key pairs in one transaction.
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
    ) -> Result<Account>;
}

/// Accounts: lookups, the device credential, deletion.
pub trait Accounts {
    /// An account by id.
    fn account(&self, id: &str) -> Result<Account>;

    /// An account by document number.
    fn account_by_document(&self, document_number: &str) -> Result<Account>;

    /// Active accounts of a person.
    fn active_accounts_of(&self, country: &str, national_id: &str) -> Result<Vec<Account>>;

    /// All accounts (operator listing).
    fn all_accounts(&self) -> Result<Vec<Account>>;

    /// Checks a device credential in constant time; only active accounts pass.
    fn authenticate_device(
        &self,
        account_id: &str,
        device_secret: &[u8],
    ) -> Result<Option<Account>> {
        let acc = match self.account(account_id) {
            Ok(acc) => acc,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let ok: bool = acc
            .device_secret_hash
            .ct_eq(&secret_hash(device_secret))
            .into();
        Ok((ok && acc.state == AccountState::Active).then_some(acc))
    }

    /// Every account of a person (any state), oldest first.
    fn accounts_of(&self, country: &str, national_id: &str) -> Result<Vec<Account>>;

    /// The portal's deletion: as [`Accounts::delete_account`] (audited `by: "portal"`, with
    /// the relying party and the session), and in the same database transaction the record
    /// that `deletion.auth_session_id` was used. `Ok(false)`, changing nothing, when that
    /// session was used for a deletion before.
    fn delete_account_for_portal(
        &self,
        account_id: &str,
        deletion: &PortalDeletion<'_>,
        now: i64,
    ) -> Result<bool>;

    /// Deletes an account: destroys its wrapped secrets, disables its key pairs, cancels
    /// its running transactions.
    fn delete_account(
        &self,
        account_id: &str,
        now: i64,
        by: &str,
        reply: Option<&Reply>,
    ) -> Result<()>;
}

/// Key pairs: the PIN attempt gate and verdicts, clone-detection tokens, the operator's unlock.
///
/// # The attempt gate, in every backend
///
/// The lockout rule lives in [`LockoutPolicy`] (pure functions over
/// [`crate::lockout::AttemptCounters`]), never in the backend. [`KeyPairs::begin_attempt`]
/// takes three steps inside **one write transaction** that is committed (durably) before it
/// returns, and so before the share is judged:
///
/// 1. read the key pair's counters (status, consecutive failures, lock);
/// 2. ask [`LockoutPolicy::gate`];
/// 3. write its decision: nothing for `Disabled` and `Locked`, the PIN-lockout disable for
///    `DisableNow`, the new counters for `Count`.
///
/// Concurrent attempts on one key pair are serialised (the write transaction, and the
/// service's per-key-pair lock). Only [`KeyPairs::attempt_succeeded`] undoes a count, and
/// [`KeyPairs::attempt_aborted`] when the server itself could not judge; so a crash, a kill,
/// a timeout or a parallel request never yields an extra guess.
///
/// # Verdicts and their replies
///
/// A verdict ([`KeyPairs::attempt_succeeded`], [`KeyPairs::attempt_failed`],
/// [`KeyPairs::clone_detected`], [`KeyPairs::refresh_clone_token`]) writes its state change
/// and the stored reply for the request's nonce in one database transaction. The caller seals
/// the reply before the call (for each outcome the verdict can have, when the store decides
/// between them); the store never calls back into the service.
pub trait KeyPairs {
    /// The key pairs of an account.
    fn key_pairs(&self, account_id: &str) -> Result<Vec<KeyPair>>;

    /// One key pair of an account.
    fn key_pair(&self, account_id: &str, key_type: KeyType) -> Result<KeyPair>;

    /// The gate in front of every share evaluation: refuses while locked or disabled,
    /// otherwise counts the attempt as a failure **and commits it** before returning (the
    /// three steps in the trait's documentation). Only [`KeyPairs::attempt_succeeded`] undoes
    /// the count, so a crash, kill or timeout between this call and the verdict never grants
    /// an extra guess.
    fn begin_attempt(
        &self,
        key_pair_id: i64,
        policy: &LockoutPolicy,
        now: i64,
    ) -> Result<AttemptGate>;

    /// The server could not judge a counted attempt (HSM failure): the count goes back to
    /// what it was before [`KeyPairs::begin_attempt`] (only if no other attempt has moved it
    /// since), and the transaction ends with `SERVER_ERROR`. One database transaction, so a
    /// crash leaves either the counted attempt or both changes. Returns whether the count
    /// was restored.
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
    ) -> Result<bool>;

    /// The share verified and the clone token matched: resets the count, stores the next
    /// clone token, completes the transaction (if still running and not expired; with the
    /// app's answer for a REST session) and stores the reply, in one database transaction:
    /// `reply_if_won` when this answer completed the transaction (or there was none),
    /// `reply_if_closed` when it was no longer running. Returns whether this answer won.
    #[allow(clippy::too_many_arguments)]
    fn attempt_succeeded(
        &self,
        key_pair_id: i64,
        next_clone_token_hash: &[u8],
        completion: Option<Completion<'_>>,
        account_id: &str,
        now: i64,
        reply_if_won: &Reply,
        reply_if_closed: &Reply,
    ) -> Result<bool>;

    /// The share did not verify (wrong PIN): the counted failure stands. In one database
    /// transaction: audits it, applies [`LockoutPolicy::failure_effect`] of the stored
    /// counters (disables the key pair at the limit), ends the transaction if the key pair is
    /// now unusable (disabled or locked), and stores `reply`. The caller builds `reply` for
    /// the state [`LockoutPolicy::after_failure`] gives for the counters its gate counted.
    /// Returns the key pair afterwards.
    fn attempt_failed(
        &self,
        key_pair_id: i64,
        policy: &LockoutPolicy,
        transaction_id: Option<&str>,
        now: i64,
        reply: &Reply,
    ) -> Result<KeyPair>;

    /// A valid share came with a stale or unknown clone token: the device was copied. In one
    /// database transaction: resets the count, disables the key pair (certificates revoked),
    /// ends the transaction and stores `reply` (built by the caller for a disabled key pair
    /// without failures). Returns the key pair afterwards.
    fn clone_detected(
        &self,
        key_pair_id: i64,
        transaction_id: Option<&str>,
        now: i64,
        reply: &Reply,
    ) -> Result<KeyPair>;

    /// Replaces the clone token after checking the current one (token refresh), storing
    /// `reply_if_ok`; when the presented token is stale, disables the key pair instead and
    /// stores `reply_if_stale`. One database transaction. Returns whether the token was
    /// current. Refused (nothing changed) for a disabled key pair.
    fn refresh_clone_token(
        &self,
        key_pair_id: i64,
        presented_hash: &[u8],
        next_hash: &[u8],
        now: i64,
        reply_if_ok: &Reply,
        reply_if_stale: &Reply,
    ) -> Result<bool>;

    /// Operator: lifts a temporary lock and resets the count (not for disabled key pairs).
    fn unlock_key_pair(&self, account_id: &str, key_type: KeyType, now: i64) -> Result<()>;
}

/// Transactions (signing, authentication and certificate-choice requests) and their
/// per-account targets.
pub trait Transactions {
    /// Stores a new transaction and its per-account encoded messages.
    /// Durability deferred to the next synchronous commit (module documentation).
    fn create_transaction(&self, t: &TxRecord, targets: &[(String, Vec<u8>)]) -> Result<()>;

    /// A transaction; expired running ones are completed as `TIMEOUT` first.
    fn transaction(&self, id: &str, now: i64) -> Result<TxRecord>;

    /// A running transaction as one account sees it.
    fn transaction_for_account(
        &self,
        id: &str,
        account_id: &str,
        now: i64,
    ) -> Result<TxForAccount> {
        self.expire_transactions(now)?;
        self.transaction_target(id, account_id)
    }

    /// A transaction as one account sees it, as stored (no expiry sweep).
    fn transaction_target(&self, id: &str, account_id: &str) -> Result<TxForAccount>;

    /// Running transactions addressed to an account.
    fn pending_for_account(&self, account_id: &str, now: i64) -> Result<Vec<TxForAccount>>;

    /// Ends a running transaction with a result other than OK (refusal, wrong VC, ...).
    /// Returns false when it was no longer running.
    fn end_transaction(
        &self,
        id: &str,
        result: EndResult,
        account_id: Option<&str>,
        now: i64,
        reply: Option<&Reply>,
    ) -> Result<bool>;

    /// Transactions addressed to any of `account_ids`, newest first (by creation time in
    /// seconds, then the order they were stored), at most `limit`; each once, however many of the accounts it was addressed to.
    fn recent_transactions_of(
        &self,
        account_ids: &[String],
        limit: usize,
    ) -> Result<Vec<HolderTransaction>>;

    /// Completes running transactions whose time ran out as `TIMEOUT`.
    ///
    /// Called before most reads of transactions, several times per signature: a second
    /// call for a time at which nothing was found due returns at once (see `clean_through`).
    fn expire_transactions(&self, now: i64) -> Result<usize>;
}

/// The REST side of transactions: sessions of the relying-party API v3, device links.
pub trait RpSessions {
    /// Stores a transaction, its targets and its REST session in one database transaction.
    /// Durability deferred to the next synchronous commit, like
    /// [`Transactions::create_transaction`].
    fn create_rp_session(
        &self,
        t: &TxRecord,
        targets: &[(String, Vec<u8>)],
        s: &RpSession,
    ) -> Result<()>;

    /// The REST session of a transaction.
    fn rp_session(&self, id: &str) -> Result<Option<RpSession>>;

    /// The REST session a device link's `sessionToken` names.
    fn rp_session_by_token(&self, token: &str) -> Result<Option<RpSession>>;

    /// A session the same relying party started with the same request since `since_ms`.
    fn idempotent_session(
        &self,
        rp_uuid: &str,
        request_hash: &[u8],
        since_ms: i64,
    ) -> Result<Option<RpSession>>;

    /// Binds a running device-link session to the account whose app presented the link.
    /// `x` is the encoded message for that account (empty for ACSP_V2 and certificate
    /// choice), `outcome` the JSON the app's answer starts from (its flow type).
    fn claim_device_link(
        &self,
        id: &str,
        account_id: &str,
        x: &[u8],
        outcome: &str,
        now: i64,
    ) -> Result<ClaimResult>;

    /// The app's answer recorded with a signature ([`KeyPairs::attempt_succeeded`]) or at claim
    /// time.
    fn target_outcome(&self, id: &str, account_id: &str) -> Result<Option<String>>;

    /// The latest device-link certificate choice this account answered (OK) since `since`
    /// (Unix seconds): the session a linked signing session would follow.
    fn recent_device_link_certificate_choice(
        &self,
        account_id: &str,
        since: i64,
    ) -> Result<Option<String>>;

    /// Ends a running transaction with a result and a detail (the refused interaction).
    fn end_transaction_with_detail(
        &self,
        id: &str,
        result: EndResult,
        detail: Option<&str>,
        account_id: Option<&str>,
        now: i64,
        reply: Option<&Reply>,
    ) -> Result<bool>;

    /// Completes a certificate choice as OK for the account that answered it, recording the
    /// app's answer (`target_outcome`, when given) in the same database transaction.
    fn complete_without_signature(
        &self,
        id: &str,
        account_id: &str,
        now: i64,
        reply: &Reply,
        target_outcome: Option<&str>,
    ) -> Result<bool>;

    /// `(end_detail, completed_at)` of a transaction.
    fn completion(&self, id: &str) -> Result<(Option<String>, Option<i64>)>;

    /// Forgets the device-link secrets of sessions completed before `before` (Unix seconds);
    /// their results are no longer served either.
    ///
    /// Only sessions that still hold a secret and were created before `before` are visited
    /// (the partial index `rp_sessions_secret_held`): the cost follows the device-link
    /// sessions of the last minutes, not the history.
    fn prune_rp_sessions(&self, before: i64) -> Result<usize>;

    /// Records that a proof of origin was issued with the AUTH session `auth_session_id`
    /// for relying party `rp_uuid`, and appends its audit record (`event`, `account_id`,
    /// `details`), in one database transaction. `Ok(false)`, changing nothing, when a proof
    /// was already recorded for that session (one proof per session).
    #[allow(clippy::too_many_arguments)] // the proof's record and its audit record
    fn record_origin_proof(
        &self,
        auth_session_id: &str,
        rp_uuid: &str,
        message_id: &str,
        now: i64,
        event: &str,
        account_id: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<bool>;
}

/// End-entity certificates and the issuing CA's CRL numbers.
pub trait Certificates {
    /// A certificate by serial (big-endian bytes).
    fn certificate(&self, serial: &[u8]) -> Result<Option<CertRecord>>;

    /// The certificates of an account (newest first).
    fn certificates_of(&self, account_id: &str) -> Result<Vec<CertRecord>>;

    /// All certificates (operator listing).
    fn all_certificates(&self) -> Result<Vec<CertRecord>>;

    /// Revoked certificates that have not expired (for the CRL).
    fn revoked_certificates(&self) -> Result<Vec<CertRecord>>;

    /// Operator: revokes one certificate. Returns false if it was revoked already.
    fn revoke_certificate(&self, serial: &[u8], reason: i64, now: i64) -> Result<bool>;

    /// Takes the next CRL number (monotonic, durable).
    fn next_crl_number(&self) -> Result<u64>;
}

/// Revoked CA certificates and the root CRL's numbers.
pub trait CaRevocations {
    /// Operator: records the revocation of a CA certificate (serial big-endian, as issued).
    /// Returns the revocation now on record and whether this call made it: a second call
    /// changes nothing and returns the first revocation (its time and reason stay). Audited
    /// as `ca_certificate_revoked`.
    fn revoke_ca_certificate(
        &self,
        serial: &[u8],
        subject: &str,
        reason: i64,
        now: i64,
    ) -> Result<(CaRevocation, bool)>;

    /// Every revoked CA certificate (for the root's CRL), by serial.
    fn ca_revocations(&self) -> Result<Vec<CaRevocation>>;

    /// The revocation of the CA certificate with this serial, if it is revoked.
    fn ca_revocation(&self, serial: &[u8]) -> Result<Option<CaRevocation>>;

    /// Takes the next cRLNumber of the root's CRL (monotonic, durable; a sequence of its
    /// own, apart from the issuing CA's).
    fn next_root_crl_number(&self) -> Result<u64>;
}

/// Relying parties registered by the operator.
pub trait RelyingParties {
    /// Registers a relying party with its names (operator). `allowed_ips` empty = any
    /// address. Refused, and nothing stored, when the UUID is taken, there is no name, a name
    /// is not valid ([`tandem_rp::api::rp_name::configured_name`]) or two names fold alike.
    fn add_relying_party(&self, rp: &RelyingParty, now: i64) -> Result<()>;

    /// Adds a name to an active relying party (operator). Refused, and nothing changed, when
    /// the relying party is unknown or removed, the name is not valid, or it is one of the
    /// relying party's names already, ignoring case ([`tandem_rp::api::rp_name`]).
    fn add_relying_party_name(&self, uuid: &str, name: &str, now: i64) -> Result<()>;

    /// Removes a name from an active relying party (operator); `name` may be written in
    /// another case. Returns the name as it was configured. Refused, and nothing changed,
    /// when the relying party is unknown or removed, has no such name, or it is its last one
    /// (a relying party without a name could not be called; remove the relying party
    /// instead).
    fn remove_relying_party_name(&self, uuid: &str, name: &str, now: i64) -> Result<String>;

    /// Allows or forbids an active relying party to request the mobile device's IP address
    /// (operator). Returns whether the permission changed; a change is an audit record.
    /// Refused, and nothing changed, when the relying party is unknown or removed.
    fn set_relying_party_device_ip_sharing(
        &self,
        uuid: &str,
        allowed: bool,
        now: i64,
    ) -> Result<bool>;

    /// Allows or forbids an active relying party to use the self-service portal endpoints
    /// (operator). Returns whether the permission changed; a change is audited as
    /// `relying_party_portal`. Refused, and nothing changed, when the relying party is
    /// unknown or removed.
    fn set_relying_party_portal(&self, uuid: &str, allowed: bool, now: i64) -> Result<bool>;

    /// Requires or stops requiring mutual TLS on the RP API for an active relying party
    /// (operator). Returns whether the setting changed; a change is audited as
    /// `relying_party_mtls_required`. Refused, and nothing changed, when the relying party is
    /// unknown or removed.
    fn set_relying_party_mtls(&self, uuid: &str, required: bool, now: i64) -> Result<bool>;

    /// Deactivates a relying party (operator). Returns false if it was unknown or inactive.
    fn remove_relying_party(&self, uuid: &str, now: i64) -> Result<bool>;

    /// Active relying parties, each with its names (oldest first).
    fn relying_parties(&self) -> Result<Vec<RelyingParty>>;

    /// The active relying party with this UUID and its names (primary-key lookups: the REST
    /// API checks one on every request, whatever the number of relying parties).
    fn active_relying_party(&self, uuid: &str) -> Result<Option<RelyingParty>>;

    /// Checks a relying party's UUID, name and source address: `Unknown` and
    /// `AddressNotAllowed` both answer 401 (the log tells them apart).
    fn authenticate_relying_party(
        &self,
        uuid: &str,
        name: &str,
        from: std::net::IpAddr,
    ) -> Result<RpCheck> {
        let Some(rp) = self.active_relying_party(uuid)? else {
            return Ok(RpCheck::Unknown);
        };
        // api_details.txt: the name is case-insensitive (Unicode default case folding) and
        // must match one of the names configured for the relying party.
        if !rp_name::matches_any_configured_name(&rp.names, name) {
            return Ok(RpCheck::Unknown);
        }
        if !rp.allowed_ips.is_empty() && !rp.allowed_ips.contains(&from) {
            return Ok(RpCheck::AddressNotAllowed);
        }
        Ok(RpCheck::Allowed(rp))
    }
}

/// Software certificates of relying parties: credits, administrators, vouchers and
/// certificate creations. Every method that changes state runs in one database
/// transaction with its audit record; see the module documentation of [`crate::store`].
pub trait RpCerts {
    /// The credits of a relying party (0 when it never had any).
    fn rp_credits(&self, rp_uuid: &str) -> Result<u32>;

    /// Operator: adds `n` credits to an active relying party; returns the new balance.
    /// Refused (nothing changed) for an unknown or removed relying party, or when the
    /// balance would exceed `u32::MAX`. Audited as `rp_credit_added`.
    fn add_rp_credits(&self, rp_uuid: &str, n: u32, now: i64) -> Result<u32>;

    /// Operator: makes a person (`PNO<CC>-<id>`) an administrator of an active relying
    /// party. Returns false if they were one already. Audited as `rp_admin_added`.
    fn add_rp_admin(&self, rp_uuid: &str, person: &str, now: i64) -> Result<bool>;

    /// Operator: removes an administrator. Returns false if they were none. Audited as
    /// `rp_admin_removed`.
    fn remove_rp_admin(&self, rp_uuid: &str, person: &str, now: i64) -> Result<bool>;

    /// The administrators of a relying party, sorted.
    fn rp_admins(&self, rp_uuid: &str) -> Result<Vec<String>>;

    /// The relying parties (UUIDs, sorted) a person administers.
    fn administered_rps(&self, person: &str) -> Result<Vec<String>>;

    /// Queues creations for `rp_uuid` by administrator `admin`, spending one credit each:
    /// all of them, or none when the credits do not suffice ([`StoreError::Conflict`]).
    /// Returns the credits left. Audited as `rp_certs_queued`.
    fn queue_rp_certs(
        &self,
        rp_uuid: &str,
        admin: &str,
        certs: &[NewRpCertRecord],
        now: i64,
    ) -> Result<u32>;

    /// Cancels a queued or creating creation of `rp_uuid` and issues the voucher that
    /// replaces its credit. [`StoreError::NotFound`] for no such creation of that relying
    /// party, [`StoreError::Conflict`] in another state. Audited as `rp_cert_cancelled` and
    /// `rp_voucher_issued`.
    fn cancel_rp_cert(
        &self,
        rp_uuid: &str,
        id: &str,
        voucher: &NewVoucher,
        by: &str,
        now: i64,
    ) -> Result<RpCertRecord>;

    /// Redeems a voucher of `rp_uuid` (by its code's hash): issued → redeemed and one credit
    /// more, exactly once. Returns the new balance. [`StoreError::NotFound`] for an unknown
    /// code (or another relying party's), [`StoreError::Conflict`] for a redeemed one.
    /// Audited as `rp_voucher_redeemed`.
    fn redeem_rp_voucher(&self, rp_uuid: &str, code_hash: &[u8], by: &str, now: i64)
    -> Result<u32>;

    /// The worker: claims up to `max` queued creations, oldest first (queued → creating).
    fn claim_rp_certs(&self, max: usize, now: i64) -> Result<Vec<RpCertRecord>>;

    /// The worker: puts claimed creations it could not sign back in the queue (creating →
    /// queued; others are left alone).
    fn release_rp_certs(&self, ids: &[String]) -> Result<()>;

    /// The worker: stores signed certificates, one transaction for all. A creation still
    /// creating becomes READY; one cancelled meanwhile keeps the serial as revoked
    /// (cessationOfOperation) and the certificate is discarded. One answer per entry, in
    /// order. Audited as `rp_certs_issued` (and `rp_cert_discarded`).
    fn complete_rp_certs(
        &self,
        done: &[IssuedRpCertRecord],
        now: i64,
    ) -> Result<Vec<RpCertCompletion>>;

    /// At start: creations left creating by a stopped process go back to the queue.
    /// Returns how many.
    fn requeue_creating_rp_certs(&self) -> Result<usize>;

    /// Revokes a READY certificate of `rp_uuid` (any relying party's when `None`), by
    /// creation id or serial (hex). Returns the record and whether this call revoked it
    /// (false: it was revoked already). [`StoreError::NotFound`] for no such certificate,
    /// [`StoreError::Conflict`] for one not issued. Audited as `rp_cert_revoked`.
    fn revoke_rp_cert(
        &self,
        rp_uuid: Option<&str>,
        id_or_serial: &str,
        reason: i64,
        by: &str,
        now: i64,
    ) -> Result<(RpCertRecord, bool)>;

    /// A creation of `rp_uuid` by id.
    fn rp_cert(&self, rp_uuid: &str, id: &str) -> Result<Option<RpCertRecord>>;

    /// The certificate with this serial (big-endian bytes), if we issued one to a relying
    /// party (also a discarded one, revoked).
    fn rp_cert_by_serial(&self, serial: &[u8]) -> Result<Option<RpCertRecord>>;

    /// The creations of a relying party, or of all when `None`, newest first.
    fn rp_certs_of(&self, rp_uuid: Option<&str>) -> Result<Vec<RpCertRecord>>;

    /// The vouchers of a relying party, oldest first (redeemed ones included).
    fn rp_vouchers(&self, rp_uuid: &str) -> Result<Vec<VoucherRecord>>;

    /// Revoked relying-party certificates (for the CRL).
    fn revoked_rp_certs(&self) -> Result<Vec<RpCertRecord>>;
}

/// The append-only, hash-chained audit log.
pub trait Audit {
    /// Appends an audit event in its own transaction.
    fn audit(
        &self,
        now: i64,
        event: &str,
        account_id: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<()>;

    /// The audit log from `since_seq` on.
    fn audit_log(&self, since_seq: i64, limit: i64) -> Result<Vec<AuditRecord>>;

    /// Recomputes the whole hash chain. Returns the number of records checked, or the
    /// first sequence number whose hash does not match.
    fn verify_audit_chain(&self) -> Result<std::result::Result<usize, i64>>;
}

/// The whole store: every area. `App.store` is an `Arc<dyn Store>`; any type implementing
/// all the area traits is a `Store` (blanket implementation).
pub trait Store:
    std::fmt::Debug
    + Replies
    + Registrations
    + Accounts
    + KeyPairs
    + Transactions
    + RpSessions
    + Certificates
    + CaRevocations
    + RelyingParties
    + RpCerts
    + Audit
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: std::fmt::Debug
        + Replies
        + Registrations
        + Accounts
        + KeyPairs
        + Transactions
        + RpSessions
        + Certificates
        + CaRevocations
        + RelyingParties
        + RpCerts
        + Audit
        + Send
        + Sync
{
}
