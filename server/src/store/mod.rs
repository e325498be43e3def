//! Durable state in SQLite (rusqlite, bundled): registrations, accounts, key pairs,
//! transactions, stored replies and the audit log.
//!
//! Every state change runs in one SQLite transaction (`BEGIN IMMEDIATE`, so writers are
//! serialised at the database), in WAL mode with `synchronous = FULL`: what a call returned
//! as committed survives a crash or `SIGKILL`, and a power cut.
//!
//! Two kinds of write are committed without their own `fsync` (`synchronous = NORMAL` for
//! that commit): creating a transaction (gRPC `StartSignature`, a REST session start), and
//! taking pooled server keys for a registration. Such a commit is in the WAL when the call
//! returns, so it survives a crash or `SIGKILL` of the server; it becomes safe from a power
//! cut with the next synchronous commit, whichever write that is (WAL frames are made
//! durable in order): at the latest the PIN gate of the transaction's own confirmation, or
//! the registration's own key submission. A power cut in between loses only that new,
//! unanswered transaction, or puts the keys back in the pool: no PIN attempt (those commits
//! are always synchronous), no signature, nothing a device has acted on. This is the
//! "batched commit where durability allows" of the performance work: one `fsync` fewer per
//! signature and per registration (docs/BENCHMARKS.md).
//!
//! The store is synchronous. The async shell calls it from `spawn_blocking` threads; the
//! connection sits behind a `std::sync::Mutex` that is never held across an `.await`.

mod ca_revocations;
pub mod names;
mod rp_sessions;
mod schema;

pub use ca_revocations::CaRevocation;
pub use rp_sessions::{ClaimResult, RpSession};

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};
use tandem_client_core::types::KeyType;
use tandem_rp::api::rp_name;

use crate::lockout::{FailureEffect, LockoutPolicy};

/// Storage errors. Messages never contain secrets or blobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// A record was not found.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The operation does not fit the record's current state.
    #[error("{0}")]
    Conflict(String),
    /// The database holds a value this version cannot read.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database file could not be created or made owner-only.
    #[error("database file: {0}")]
    File(#[from] std::io::Error),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// SHA-256 of a secret, as stored instead of the secret itself.
pub fn secret_hash(secret: &[u8]) -> Vec<u8> {
    Sha256::digest(secret).to_vec()
}

fn key_type_str(k: KeyType) -> &'static str {
    match k {
        KeyType::Auth => "AUTH",
        KeyType::Sign => "SIGN",
    }
}

fn parse_key_type(s: &str) -> Result<KeyType> {
    match s {
        "AUTH" => Ok(KeyType::Auth),
        "SIGN" => Ok(KeyType::Sign),
        other => Err(StoreError::Corrupt(format!("unknown key type {other}"))),
    }
}

/// The identity an operator approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// National identity number.
    pub national_id: String,
}

/// Registration lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// Waiting for the operator / identity proofing.
    PendingApproval,
    /// Identity approved; waiting for the device's keys.
    Approved,
    /// Keys handed over; waiting for the PIN1 + PIN2 proof.
    KeysSubmitted,
    /// Account created.
    Completed,
    /// Aborted (too many failed proofs, or the device already has an account).
    Failed,
}

impl RegistrationState {
    fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "PENDING_APPROVAL",
            Self::Approved => "APPROVED",
            Self::KeysSubmitted => "KEYS_SUBMITTED",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "PENDING_APPROVAL" => Self::PendingApproval,
            "APPROVED" => Self::Approved,
            "KEYS_SUBMITTED" => Self::KeysSubmitted,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            other => return Err(StoreError::Corrupt(format!("registration state {other}"))),
        })
    }
}

/// A registration as stored.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Registration id (UUID).
    pub id: String,
    /// Hash of the registration secret.
    pub secret_hash: Vec<u8>,
    /// Code for the operator.
    pub code: String,
    /// The device's id.
    pub device_id: Vec<u8>,
    /// Code both sides show.
    pub matching_code: String,
    /// Lifecycle state (not counting expiry; see [`Registration::is_expired`]).
    pub state: RegistrationState,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the code is valid until then.
    pub expires_at: i64,
    /// Approved identity.
    pub identity: Option<Identity>,
    /// Failed PIN proofs so far.
    pub proof_attempts: u32,
    /// Account created by this registration.
    pub account_id: Option<String>,
    /// Document number chosen at approval (test accounts); `None`: generated at activation.
    pub document_number: Option<String>,
}

impl Registration {
    /// Whether the registration can no longer progress because its time ran out.
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
            && !matches!(
                self.state,
                RegistrationState::Completed | RegistrationState::Failed
            )
    }
}

/// New registration.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    /// Registration id.
    pub id: String,
    /// Hash of the registration secret.
    pub secret_hash: Vec<u8>,
    /// Operator code.
    pub code: String,
    /// Device id.
    pub device_id: Vec<u8>,
    /// Matching code.
    pub matching_code: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A key pair handed over during registration, before the proof.
#[derive(Debug, Clone)]
pub struct RegistrationKey {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// n1.
    pub client_modulus: Vec<u8>,
    /// n2.
    pub server_modulus: Vec<u8>,
    /// d1'' encrypted by the HSM under the KEK.
    pub server_share_blob: Vec<u8>,
    /// d2 wrapped by the HSM under the KEK.
    pub server_key_blob: Vec<u8>,
    /// Proof challenge: hash algorithm name.
    pub proof_hash: String,
    /// Proof challenge: scheme name.
    pub proof_scheme: String,
    /// Proof challenge digest.
    pub proof_digest: Vec<u8>,
    /// Proof challenge encoded message x.
    pub proof_message: Vec<u8>,
}

/// Account lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    /// In use.
    Active,
    /// Deleted by the user or the operator; secrets destroyed.
    Deleted,
}

/// An account.
#[derive(Debug, Clone)]
pub struct Account {
    /// Account id (UUID).
    pub id: String,
    /// Document number, e.g. `PNOEE-30303039914-AB12-Q`.
    pub document_number: String,
    /// The device's id.
    pub device_id: Vec<u8>,
    /// Hash of the device secret.
    pub device_secret_hash: Vec<u8>,
    /// The person.
    pub identity: Identity,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// State.
    pub state: AccountState,
}

/// Key pair status as stored (a lock is a time, see [`KeyPair::locked_until`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPairStatus {
    /// Usable (possibly temporarily locked).
    Active,
    /// Disabled for good.
    Disabled,
}

/// A key pair of an account.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// Row id.
    pub id: i64,
    /// Owning account.
    pub account_id: String,
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// n1.
    pub client_modulus: Vec<u8>,
    /// n2.
    pub server_modulus: Vec<u8>,
    /// n = n1·n2.
    pub composite_modulus: Vec<u8>,
    /// d1'' under the KEK (None once destroyed).
    pub server_share_blob: Option<Vec<u8>>,
    /// Wrapped d2 (None once destroyed).
    pub server_key_blob: Option<Vec<u8>>,
    /// Status.
    pub status: KeyPairStatus,
    /// Why disabled.
    pub disabled_reason: Option<String>,
    /// Consecutive wrong PINs (counted before judging).
    pub consecutive_failures: u32,
    /// Locked until (unix seconds).
    pub locked_until: Option<i64>,
    /// Hash of the current clone-detection token.
    pub clone_token_hash: Vec<u8>,
}

impl KeyPair {
    /// Whether a lock is in force at `now`.
    pub fn is_locked(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

/// Why a key pair was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableReason {
    /// Too many wrong PINs.
    PinLockout,
    /// A cloned device was detected.
    CloneDetected,
    /// The account was deleted.
    AccountDeleted,
    /// By the operator.
    Operator,
}

impl DisableReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::PinLockout => "PIN_LOCKOUT",
            Self::CloneDetected => "CLONE_DETECTED",
            Self::AccountDeleted => "ACCOUNT_DELETED",
            Self::Operator => "OPERATOR",
        }
    }
}

/// RFC 5280 CRLReason codes used by Tandem.
pub mod reason {
    /// unspecified (0)
    pub const UNSPECIFIED: i64 = 0;
    /// keyCompromise (1): clone detected.
    pub const KEY_COMPROMISE: i64 = 1;
    /// cessationOfOperation (5): permanent PIN lockout, account deleted.
    pub const CESSATION_OF_OPERATION: i64 = 5;
}

impl DisableReason {
    /// The CRL reason code for certificates revoked because of this.
    pub fn crl_reason(self) -> i64 {
        match self {
            Self::CloneDetected => reason::KEY_COMPROMISE,
            Self::PinLockout | Self::AccountDeleted => reason::CESSATION_OF_OPERATION,
            Self::Operator => reason::UNSPECIFIED,
        }
    }
}

/// A certificate to store with a new account.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// Serial number (big-endian, positive).
    pub serial: Vec<u8>,
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// `QUALIFIED` or `ADVANCED`.
    pub level: String,
    /// DER.
    pub der: Vec<u8>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
}

/// A stored certificate.
#[derive(Debug, Clone)]
pub struct CertRecord {
    /// Serial, lower-case hex.
    pub serial_hex: String,
    /// Owning account.
    pub account_id: String,
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// `QUALIFIED` or `ADVANCED`.
    pub level: String,
    /// DER.
    pub der: Vec<u8>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// Revocation time and RFC 5280 reason code, if revoked.
    pub revoked: Option<(i64, i64)>,
}

/// A relying party registered by the operator (Smart-ID RP API: UUID + one or more names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// `relyingPartyUUID`.
    pub uuid: String,
    /// The names a request's `relyingPartyName` may match (ignoring case as
    /// [`tandem_rp::api::rp_name`] says), oldest first; at least one, none two that fold alike.
    pub names: Vec<String>,
    /// Source addresses allowed to call; empty = any.
    pub allowed_ips: Vec<std::net::IpAddr>,
    /// May request the mobile device's IP address (`requestProperties.shareMdClientIpAddress`;
    /// openapi.yml: "default configuration does not allow the IP sharing"). Off unless the
    /// operator allows it.
    pub device_ip_sharing: bool,
}

/// Result of checking a relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpCheck {
    /// Known and allowed.
    Allowed(RelyingParty),
    /// Unknown UUID or a name that does not match (HTTP 401).
    Unknown,
    /// Known, but not from this address (HTTP 401 as well: api_details.txt authenticates
    /// the address and UUID combination; kept apart for the server's log).
    AddressNotAllowed,
}

/// Outcome of the gate in front of a share evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptGate {
    /// The attempt is counted (committed); evaluate the share now.
    Proceed {
        /// Failures including this attempt.
        failures: u32,
    },
    /// Locked until this time; nothing was evaluated or counted.
    Locked {
        /// Unix seconds.
        until: i64,
    },
    /// Disabled; nothing was evaluated or counted.
    Disabled,
}

/// How long stored answers are kept for retries (seconds). Device retries come within
/// seconds; registrations and transactions end well within this window. Answers can hold a
/// fresh device secret or clone token, so they are not kept longer than needed.
pub const REPLY_RETENTION_SECONDS: i64 = 15 * 60;

/// The transaction a successful attempt completes ([`Store::attempt_succeeded`]).
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// The transaction's id.
    pub transaction_id: &'a str,
    /// The composite signature.
    pub signature: &'a [u8],
    /// For a REST session: the app's answer (JSON), kept for the session's result.
    pub target_outcome: Option<&'a str>,
}

/// A stored answer for a retransmission nonce, written in the same database transaction as
/// the state change it answers.
#[derive(Clone)]
pub struct Reply {
    /// Whose nonce space (account or registration id plus method).
    pub scope: String,
    /// The 16-byte nonce.
    pub nonce: Vec<u8>,
    /// Hash of the request, so a reused nonce with a different request is refused.
    pub request_hash: Vec<u8>,
    /// Encoded response.
    pub response: Vec<u8>,
}

// The response may hold a device secret or a clone token: never printed.
impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("scope", &self.scope)
            .field("response_len", &self.response.len())
            .finish_non_exhaustive()
    }
}

/// A stored reply looked up by nonce.
#[derive(Clone, PartialEq, Eq)]
pub enum ReplyLookup {
    /// First time this nonce is seen.
    New,
    /// Seen with the same request: here is the answer.
    Replay(Vec<u8>),
    /// Seen with a different request.
    Mismatch,
}

impl std::fmt::Debug for ReplyLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::New => f.write_str("New"),
            Self::Replay(r) => write!(f, "Replay(<{} bytes>)", r.len()),
            Self::Mismatch => f.write_str("Mismatch"),
        }
    }
}

/// Transaction lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Waiting for a device.
    Running,
    /// Finished; see the end result.
    Complete,
}

/// End results of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndResult {
    /// Signature produced.
    Ok,
    /// The user refused.
    UserRefused,
    /// Nobody answered in time.
    Timeout,
    /// The user chose the wrong verification code.
    WrongVc,
    /// The key pair is locked, disabled or the account is gone.
    DocumentUnusable,
    /// Server-side failure.
    ServerError,
    /// The user refused one interaction of a REST session (`details.interaction`).
    UserRefusedInteraction,
    /// The app supports none of the session's interactions.
    RequiredInteractionNotSupportedByApp,
    /// App and server disagreed on the protocol (for example an ACSP_V2 message that is not
    /// the encoding of the digest the server derives).
    ProtocolFailure,
    /// The user cancelled a certificate choice.
    UserRefusedCertChoice,
    /// The app, waiting for the signing session linked to the device-link certificate choice
    /// it answered, received this one instead.
    ExpectedLinkedSession,
}

impl EndResult {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::UserRefused => "USER_REFUSED",
            Self::Timeout => "TIMEOUT",
            Self::WrongVc => "WRONG_VC",
            Self::DocumentUnusable => "DOCUMENT_UNUSABLE",
            Self::ServerError => "SERVER_ERROR",
            Self::UserRefusedInteraction => "USER_REFUSED_INTERACTION",
            Self::RequiredInteractionNotSupportedByApp => {
                "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP"
            }
            Self::ProtocolFailure => "PROTOCOL_FAILURE",
            Self::UserRefusedCertChoice => "USER_REFUSED_CERT_CHOICE",
            Self::ExpectedLinkedSession => "EXPECTED_LINKED_SESSION",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "OK" => Self::Ok,
            "USER_REFUSED" => Self::UserRefused,
            "TIMEOUT" => Self::Timeout,
            "WRONG_VC" => Self::WrongVc,
            "DOCUMENT_UNUSABLE" => Self::DocumentUnusable,
            "SERVER_ERROR" => Self::ServerError,
            "USER_REFUSED_INTERACTION" => Self::UserRefusedInteraction,
            "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP" => {
                Self::RequiredInteractionNotSupportedByApp
            }
            "PROTOCOL_FAILURE" => Self::ProtocolFailure,
            "USER_REFUSED_CERT_CHOICE" => Self::UserRefusedCertChoice,
            "EXPECTED_LINKED_SESSION" => Self::ExpectedLinkedSession,
            other => return Err(StoreError::Corrupt(format!("end result {other}"))),
        })
    }
}

/// What a transaction asks of the device; stored as `AUTHENTICATION`, `SIGNATURE` or
/// `CERTIFICATE_CHOICE` (the names the `transactions.kind` column has always held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    Authentication,
    Signature,
    CertificateChoice,
}

impl TxKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "AUTHENTICATION",
            Self::Signature => "SIGNATURE",
            Self::CertificateChoice => "CERTIFICATE_CHOICE",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        [
            Self::Authentication,
            Self::Signature,
            Self::CertificateChoice,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("transaction kind {s}")))
    }
}

/// A signing transaction started by a relying party.
#[derive(Debug, Clone)]
pub struct TxRecord {
    /// Transaction id (UUID).
    pub id: String,
    /// What the relying party asked for.
    pub kind: TxKind,
    /// Relying party display name.
    pub relying_party: String,
    /// Key pair used.
    pub key_type: KeyType,
    /// Hash algorithm of the digest.
    pub hash: HashAlgorithm,
    /// Signature scheme.
    pub scheme: SignatureScheme,
    /// Digest to sign.
    pub digest: Vec<u8>,
    /// Text shown on the device.
    pub display_text: String,
    /// Verification code.
    pub verification_code: String,
    /// The three-code choice, empty if not used.
    pub vc_choices: Vec<String>,
    /// State.
    pub state: TxState,
    /// End result when complete.
    pub end_result: Option<EndResult>,
    /// Signature when OK.
    pub signature: Option<Vec<u8>>,
    /// Account that answered.
    pub answered_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A transaction as one device sees it.
#[derive(Debug, Clone)]
pub struct TxForAccount {
    /// The transaction.
    pub tx: TxRecord,
    /// The encoded message x for this account's composite modulus.
    pub encoded_message: Vec<u8>,
}

/// One audit record.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Sequence number.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Event name.
    pub event: String,
    /// Account concerned.
    pub account_id: Option<String>,
    /// JSON details (never secrets).
    pub details: String,
    /// Chain hash.
    pub hash: Vec<u8>,
}

/// The SQLite store.
#[derive(Debug)]
pub struct Store {
    // std Mutex: held only for synchronous rusqlite calls, never across an `.await`.
    conn: Mutex<Connection>,
    /// Set (under the mutex) while the connection may still be at `synchronous = NORMAL`:
    /// a deferred write could not restore `FULL`. The next [`Store::write`] restores it
    /// before it begins, or fails.
    relaxed: AtomicBool,
    /// A time (unix seconds) at which no running transaction was due to expire, as found
    /// by [`Store::expire_transactions`]; it needs no query for a time at or before it.
    /// Creating a transaction lowers it below the new expiry. Transactions that another
    /// process creates already expired (none does) would wait for the sweeper's next,
    /// later time.
    clean_through: AtomicI64,
}

impl Store {
    /// Opens (creating if needed) the database file and applies migrations.
    pub fn open(path: &Path) -> Result<Self> {
        // Owner-only (0600) before SQLite opens it: the WAL and shared-memory files SQLite
        // creates take the database file's mode (`fs_mode`).
        crate::fs_mode::prepare_database(path)?;
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory store for unit tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A page cache of up to 8 MiB (the default is 2 MiB). With the default, lookups on a
        // server that has signed for a while read most pages back from the OS (`pread`);
        // 4, 16 and 64 MiB gave the same CPU per signature on a large database, and a larger
        // cache fills for minutes after a start, which a soak sees as memory growth
        // (docs/BENCHMARKS.md, "Soak").
        conn.pragma_update(None, "cache_size", -8192)?;
        // Prepared statements are reused (`prepare_cached`): parsing SQL cost about 3% of the
        // server's CPU per signature.
        conn.set_prepared_statement_cache_capacity(128);
        // Destroyed secrets (wrapped keys, encrypted shares) are overwritten on disk.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?
            .query_row([], |r| r.get(0))?;
        let known = schema::MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if current > known {
            return Err(StoreError::Conflict(format!(
                "database schema version {current} is newer than this server ({known}); upgrade the server"
            )));
        }
        for (version, description, sql) in schema::MIGRATIONS {
            if *version > current {
                tx.execute_batch(sql)?;
                tx.prepare_cached("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)")?.execute(
                    params![version, description, unix_now()],
                )?;
            }
        }
        tx.commit()?;
        if current < schema::SEALED_REPLIES_MIGRATION && current > 0 {
            // Older WAL frames may still hold answers stored in clear: copy the pages back
            // and truncate the log.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            relaxed: AtomicBool::new(false),
            clean_through: AtomicI64::new(i64::MIN),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (SQLite rolls back
        // the open transaction when it is dropped), so poisoning is ignored.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One synchronous write transaction: committed and `fsync`'ed when it returns.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn();
        if self.relaxed.load(Ordering::SeqCst) {
            conn.pragma_update(None, "synchronous", "FULL")?;
            self.relaxed.store(false, Ordering::SeqCst);
        }
        in_transaction(&conn, f)
    }

    /// A write transaction whose commit is not `fsync`'ed by itself: it survives a crash or
    /// kill of the process, and a power cut once the next synchronous commit is made (see
    /// the module documentation). Only for creating transactions and taking pooled keys;
    /// never for PIN attempts.
    fn write_deferred<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn();
        // The pragma acts when it is prepared (so it cannot be a cached statement) and not
        // inside a transaction.
        self.relaxed.store(true, Ordering::SeqCst);
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let out = in_transaction(&conn, f);
        if conn.pragma_update(None, "synchronous", "FULL").is_ok() {
            self.relaxed.store(false, Ordering::SeqCst);
        }
        out
    }

    // ------------------------------------------------------------------ replies

    /// Looks up a stored reply for `(scope, nonce)`.
    pub fn lookup_reply(
        &self,
        scope: &str,
        nonce: &[u8],
        request_hash: &[u8],
    ) -> Result<ReplyLookup> {
        let conn = self.conn();
        lookup_reply(&conn, scope, nonce, request_hash)
    }

    /// Deletes stored replies older than `before` (unix seconds); `secure_delete` overwrites
    /// them on disk. Returns how many were removed.
    pub fn prune_replies(&self, before: i64) -> Result<usize> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached("DELETE FROM replies WHERE created_at < ?1")?
                .execute(params![before])?)
        })
    }

    /// Stores a reply on its own (for requests whose state change is a single write).
    pub fn store_reply(&self, reply: &Reply) -> Result<()> {
        self.write(|tx| insert_reply(tx, reply))
    }

    // ------------------------------------------------------------------ registrations

    /// Creates a registration.
    pub fn create_registration(&self, r: &NewRegistration, reply: &Reply) -> Result<()> {
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

    /// A registration by id.
    pub fn registration(&self, id: &str) -> Result<Registration> {
        let conn = self.conn();
        registration_where(&conn, "id = ?1", id)?.ok_or(StoreError::NotFound("registration"))
    }

    /// A registration by operator code.
    pub fn registration_by_code(&self, code: &str) -> Result<Registration> {
        let conn = self.conn();
        registration_where(&conn, "code = ?1", code)?.ok_or(StoreError::NotFound("registration"))
    }

    /// Registrations waiting for approval and not expired.
    pub fn pending_registrations(&self, now: i64) -> Result<Vec<Registration>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REG_COLS} FROM registrations WHERE state = 'PENDING_APPROVAL' AND expires_at > ?1 ORDER BY created_at"
        ))?;
        let rows = stmt.query_map(params![now], registration_row)?;
        rows.map(|r| r?).collect()
    }

    /// Approves a registration with the person's identity.
    pub fn approve_registration(
        &self,
        code: &str,
        identity: &Identity,
        now: i64,
    ) -> Result<Registration> {
        self.approve_registration_as(code, identity, None, now)
    }

    /// Approves a registration with the person's identity and, optionally, the document
    /// number the account will get (refused if an account already has it).
    pub fn approve_registration_as(
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

    /// Adds a pre-generated server key (modulus and KEK-wrapped private key) to the pool.
    pub fn pool_server_key(
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

    /// Takes up to `count` pooled server keys of `bits` bits, oldest first, in one database
    /// transaction: each is removed as it is handed out, so no key serves two accounts.
    /// Fewer (or none) when the pool holds fewer.
    pub fn take_pooled_server_keys(
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

    /// Up to `limit` pooled server keys of `bits` bits (modulus, wrapped private key), oldest
    /// first; they stay in the pool.
    pub fn pooled_server_key_list(
        &self,
        bits: usize,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
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

    /// Pooled server keys of `bits` bits.
    pub fn pooled_server_keys(&self, bits: usize) -> Result<usize> {
        let bits = bits_column(bits)?;
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM server_key_pool WHERE bits = ?1")?
            .query_row(params![bits], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Records the handed-over keys and moves the registration to `KEYS_SUBMITTED`.
    pub fn submit_registration_keys(
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
                        key_type_str(k.key_type),
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

    /// The handed-over keys of a registration.
    pub fn registration_keys(&self, registration_id: &str) -> Result<Vec<RegistrationKey>> {
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
            key.key_type = parse_key_type(&kt)?;
            out.push(key);
        }
        Ok(out)
    }

    /// Counts a failed registration proof; after `max_attempts` the registration fails and
    /// its handed-over secrets are destroyed. Returns the attempts left.
    pub fn registration_proof_failed(
        &self,
        registration_id: &str,
        max_attempts: u32,
        now: i64,
        reply_for: impl FnOnce(u32) -> Reply,
    ) -> Result<u32> {
        self.write(|tx| {
            let reg = registration_where(tx, "id = ?1", registration_id)?
                .ok_or(StoreError::NotFound("registration"))?;
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
            insert_reply(tx, &reply_for(left))?;
            audit(tx, now, "registration_proof_failed", None, &serde_json::json!({
                "registration_id": registration_id, "attempts_left": left }))?;
            Ok(left)
        })
    }

    /// Completes a registration: creates the account and its key pairs in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn complete_registration(
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
                let key_type = parse_key_type(&kt)?;
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
                        key_type_str(c.key_type),
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

    // ------------------------------------------------------------------ accounts

    /// An account by id.
    pub fn account(&self, id: &str) -> Result<Account> {
        let conn = self.conn();
        account_where(&conn, "id = ?1", id)?.ok_or(StoreError::NotFound("account"))
    }

    /// An account by document number.
    pub fn account_by_document(&self, document_number: &str) -> Result<Account> {
        let conn = self.conn();
        account_where(&conn, "document_number = ?1", document_number)?
            .ok_or(StoreError::NotFound("account"))
    }

    /// Active accounts of a person.
    pub fn active_accounts_of(&self, country: &str, national_id: &str) -> Result<Vec<Account>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACC_COLS} FROM accounts WHERE country = ?1 AND national_id = ?2 AND state = 'ACTIVE' ORDER BY created_at"
        ))?;
        let rows = stmt.query_map(params![country, national_id], account_row)?;
        rows.map(|r| r?).collect()
    }

    /// All accounts (operator listing).
    pub fn all_accounts(&self) -> Result<Vec<Account>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACC_COLS} FROM accounts ORDER BY created_at"
        ))?;
        let rows = stmt.query_map([], account_row)?;
        rows.map(|r| r?).collect()
    }

    /// Checks a device credential in constant time; only active accounts pass.
    pub fn authenticate_device(
        &self,
        account_id: &str,
        device_secret: &[u8],
    ) -> Result<Option<Account>> {
        let Some(acc) = ({
            let conn = self.conn();
            account_where(&conn, "id = ?1", account_id)?
        }) else {
            return Ok(None);
        };
        let ok: bool = acc
            .device_secret_hash
            .ct_eq(&secret_hash(device_secret))
            .into();
        Ok((ok && acc.state == AccountState::Active).then_some(acc))
    }

    /// Deletes an account: destroys its wrapped secrets, disables its key pairs, cancels
    /// its running transactions.
    pub fn delete_account(
        &self,
        account_id: &str,
        now: i64,
        by: &str,
        reply: Option<&Reply>,
    ) -> Result<()> {
        self.write(|tx| {
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
            audit(tx, now, "account_deleted", Some(account_id), &serde_json::json!({ "by": by }))?;
            Ok(())
        })
    }

    // ------------------------------------------------------------------ key pairs

    /// The key pairs of an account.
    pub fn key_pairs(&self, account_id: &str) -> Result<Vec<KeyPair>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KP_COLS} FROM key_pairs WHERE account_id = ?1 ORDER BY key_type"
        ))?;
        let rows = stmt.query_map(params![account_id], key_pair_row)?;
        rows.map(|r| r?).collect()
    }

    /// One key pair of an account.
    pub fn key_pair(&self, account_id: &str, key_type: KeyType) -> Result<KeyPair> {
        let conn = self.conn();
        key_pair_where(&conn, account_id, key_type)?.ok_or(StoreError::NotFound("key pair"))
    }

    /// The gate in front of every share evaluation: refuses while locked or disabled,
    /// otherwise counts the attempt as a failure **and commits it** before returning.
    /// Only [`Store::attempt_succeeded`] undoes the count, so a crash, kill or timeout
    /// between this call and the verdict never grants an extra guess.
    pub fn begin_attempt(
        &self,
        key_pair_id: i64,
        policy: &LockoutPolicy,
        now: i64,
    ) -> Result<AttemptGate> {
        self.write(|tx| {
            let kp = key_pair_by_id(tx, key_pair_id)?;
            if kp.status == KeyPairStatus::Disabled {
                return Ok(AttemptGate::Disabled);
            }
            if kp.consecutive_failures >= policy.disable_after {
                // A previous final attempt was counted but its verdict never written
                // (crash): it stands as a failure.
                disable(tx, &kp, DisableReason::PinLockout, now)?;
                return Ok(AttemptGate::Disabled);
            }
            if let Some(until) = kp.locked_until.filter(|&t| t > now) {
                return Ok(AttemptGate::Locked { until });
            }
            let failures = kp.consecutive_failures + 1;
            let locked_until = match policy.effect_of(failures) {
                FailureEffect::Lock(secs) => Some(now + secs),
                FailureEffect::None | FailureEffect::Disable => kp.locked_until,
            };
            tx.prepare_cached("UPDATE key_pairs SET consecutive_failures = ?2, locked_until = ?3, last_attempt_at = ?4 WHERE id = ?1")?.execute(
                params![key_pair_id, failures, locked_until, now],
            )?;
            Ok(AttemptGate::Proceed { failures })
        })
    }

    /// The server could not judge a counted attempt (HSM failure): the count goes back to
    /// what it was before [`Store::begin_attempt`] (only if no other attempt has moved it
    /// since), and the transaction ends with `SERVER_ERROR`. One database transaction, so a
    /// crash leaves either the counted attempt or both changes. Returns whether the count
    /// was restored.
    #[allow(clippy::too_many_arguments)]
    pub fn attempt_aborted(
        &self,
        key_pair_id: i64,
        counted_failures: u32,
        restore_failures: u32,
        restore_locked_until: Option<i64>,
        transaction_id: &str,
        account_id: &str,
        now: i64,
    ) -> Result<bool> {
        self.write(|tx| {
            let restored =
                tx.prepare_cached(
                    "UPDATE key_pairs SET consecutive_failures = ?3, locked_until = ?4
                 WHERE id = ?1 AND consecutive_failures = ?2 AND status != 'DISABLED'",
                )?
                .execute(params![
                    key_pair_id,
                    counted_failures,
                    restore_failures,
                    restore_locked_until
                ])? == 1;
            end_transaction(
                tx,
                transaction_id,
                EndResult::ServerError,
                Some(account_id),
                now,
            )?;
            audit(
                tx,
                now,
                "attempt_aborted",
                Some(account_id),
                &serde_json::json!({
                "transaction_id": transaction_id, "count_restored": restored }),
            )?;
            Ok(restored)
        })
    }

    /// The share verified and the clone token matched: resets the count, stores the next
    /// clone token, completes the transaction (if still running; with the app's answer for
    /// a REST session) and stores the reply, in one database transaction. Returns whether
    /// the transaction was still running (i.e. this answer won).
    pub fn attempt_succeeded(
        &self,
        key_pair_id: i64,
        next_clone_token_hash: &[u8],
        completion: Option<Completion<'_>>,
        account_id: &str,
        now: i64,
        reply_for: impl FnOnce(bool) -> Reply,
    ) -> Result<bool> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE key_pairs SET consecutive_failures = 0, locked_until = NULL, clone_token_hash = ?2 WHERE id = ?1")?.execute(
                params![key_pair_id, next_clone_token_hash],
            )?;
            let won = match completion {
                Some(c) => {
                    let id = c.transaction_id;
                    let n = tx.prepare_cached("UPDATE transactions SET state = 'COMPLETE', end_result = 'OK', signature = ?2, answered_by = ?3,
                            completed_at = ?4 WHERE id = ?1 AND state = 'RUNNING' AND expires_at > ?4")?.execute(
                        params![id, c.signature, account_id, now],
                    )?;
                    if n == 1 && let Some(outcome) = c.target_outcome {
                        rp_sessions::set_target_outcome(tx, id, account_id, outcome)?;
                    }
                    if n == 1 {
                        audit(tx, now, "transaction_completed", Some(account_id), &serde_json::json!({
                            "transaction_id": id, "end_result": "OK" }))?;
                    }
                    n == 1
                }
                None => true,
            };
            insert_reply(tx, &reply_for(won))?;
            Ok(won)
        })
    }

    /// The share did not verify (wrong PIN): the counted failure stands; disables the key
    /// pair when the count reached the limit and ends the transaction if the key is now
    /// unusable. Returns the key pair afterwards.
    #[allow(clippy::too_many_arguments)]
    pub fn attempt_failed(
        &self,
        key_pair_id: i64,
        policy: &LockoutPolicy,
        transaction_id: Option<&str>,
        now: i64,
        reply_for: impl FnOnce(&KeyPair) -> Reply,
    ) -> Result<KeyPair> {
        self.write(|tx| {
            let kp = key_pair_by_id(tx, key_pair_id)?;
            audit(tx, now, "pin_failure", Some(&kp.account_id), &serde_json::json!({
                "key_type": key_type_str(kp.key_type), "consecutive_failures": kp.consecutive_failures }))?;
            match policy.effect_of(kp.consecutive_failures) {
                FailureEffect::Disable => disable(tx, &kp, DisableReason::PinLockout, now)?,
                FailureEffect::Lock(_) => {
                    audit(tx, now, "key_locked", Some(&kp.account_id), &serde_json::json!({
                        "key_type": key_type_str(kp.key_type), "locked_until": kp.locked_until }))?;
                }
                FailureEffect::None => {}
            }
            let kp = key_pair_by_id(tx, key_pair_id)?;
            if let Some(id) = transaction_id
                && (kp.status == KeyPairStatus::Disabled || kp.is_locked(now))
            {
                end_transaction(tx, id, EndResult::DocumentUnusable, Some(&kp.account_id), now)?;
            }
            insert_reply(tx, &reply_for(&kp))?;
            Ok(kp)
        })
    }

    /// A valid share came with a stale or unknown clone token: the device was copied.
    /// Disables the key pair and ends the transaction.
    pub fn clone_detected(
        &self,
        key_pair_id: i64,
        transaction_id: Option<&str>,
        now: i64,
        reply_for: impl FnOnce(&KeyPair) -> Reply,
    ) -> Result<KeyPair> {
        self.write(|tx| {
            let kp = key_pair_by_id(tx, key_pair_id)?;
            // The share was right: the PIN count is not the issue here.
            tx.prepare_cached("UPDATE key_pairs SET consecutive_failures = 0 WHERE id = ?1")?
                .execute(params![key_pair_id])?;
            disable(tx, &kp, DisableReason::CloneDetected, now)?;
            if let Some(id) = transaction_id {
                end_transaction(
                    tx,
                    id,
                    EndResult::DocumentUnusable,
                    Some(&kp.account_id),
                    now,
                )?;
            }
            let kp = key_pair_by_id(tx, key_pair_id)?;
            insert_reply(tx, &reply_for(&kp))?;
            Ok(kp)
        })
    }

    /// Replaces the clone token after checking the current one (token refresh).
    /// Returns false (and disables the key pair) when the presented token is stale.
    pub fn refresh_clone_token(
        &self,
        key_pair_id: i64,
        presented_hash: &[u8],
        next_hash: &[u8],
        now: i64,
        reply_for: impl FnOnce(bool) -> Reply,
    ) -> Result<bool> {
        self.write(|tx| {
            let kp = key_pair_by_id(tx, key_pair_id)?;
            if kp.status == KeyPairStatus::Disabled {
                return Err(StoreError::Conflict("the key pair is disabled".into()));
            }
            let ok: bool = kp.clone_token_hash.ct_eq(presented_hash).into();
            if ok {
                tx.prepare_cached("UPDATE key_pairs SET clone_token_hash = ?2 WHERE id = ?1")?
                    .execute(params![key_pair_id, next_hash])?;
            } else {
                disable(tx, &kp, DisableReason::CloneDetected, now)?;
            }
            insert_reply(tx, &reply_for(ok))?;
            Ok(ok)
        })
    }

    /// Operator: lifts a temporary lock and resets the count (not for disabled key pairs).
    pub fn unlock_key_pair(&self, account_id: &str, key_type: KeyType, now: i64) -> Result<()> {
        self.write(|tx| {
            let kp = key_pair_where(tx, account_id, key_type)?
                .ok_or(StoreError::NotFound("key pair"))?;
            if kp.status == KeyPairStatus::Disabled {
                return Err(StoreError::Conflict(
                    "the key pair is disabled for good; the person must register again".into(),
                ));
            }
            tx.prepare_cached(
                "UPDATE key_pairs SET consecutive_failures = 0, locked_until = NULL WHERE id = ?1",
            )?
            .execute(params![kp.id])?;
            audit(
                tx,
                now,
                "key_unlocked",
                Some(account_id),
                &serde_json::json!({
                "key_type": key_type_str(key_type), "by": "operator" }),
            )?;
            Ok(())
        })
    }

    // ------------------------------------------------------------------ transactions

    /// Stores a new transaction and its per-account encoded messages.
    /// Durability deferred to the next synchronous commit (module documentation).
    pub fn create_transaction(&self, t: &TxRecord, targets: &[(String, Vec<u8>)]) -> Result<()> {
        self.write_deferred(|tx| self.insert_new_transaction(tx, t, targets))
    }

    /// A transaction; expired running ones are completed as `TIMEOUT` first.
    pub fn transaction(&self, id: &str, now: i64) -> Result<TxRecord> {
        self.expire_transactions(now)?;
        let conn = self.conn();
        tx_where(&conn, id)?.ok_or(StoreError::NotFound("transaction"))
    }

    /// A running transaction as one account sees it.
    pub fn transaction_for_account(
        &self,
        id: &str,
        account_id: &str,
        now: i64,
    ) -> Result<TxForAccount> {
        self.expire_transactions(now)?;
        self.transaction_target(id, account_id)
    }

    /// A transaction as one account sees it, as stored (no expiry sweep).
    pub fn transaction_target(&self, id: &str, account_id: &str) -> Result<TxForAccount> {
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

    /// Running transactions addressed to an account.
    pub fn pending_for_account(&self, account_id: &str, now: i64) -> Result<Vec<TxForAccount>> {
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

    /// Ends a running transaction with a result other than OK (refusal, wrong VC, ...).
    /// Returns false when it was no longer running.
    pub fn end_transaction(
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

    /// Completes running transactions whose time ran out as `TIMEOUT`.
    ///
    /// Called before most reads of transactions, several times per signature: a second
    /// call for a time at which nothing was found due returns at once (see `clean_through`).
    pub fn expire_transactions(&self, now: i64) -> Result<usize> {
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

    /// Stores a new transaction (under the connection's lock, inside its write) and keeps
    /// `clean_through` below its expiry.
    fn insert_new_transaction(
        &self,
        tx: &Connection,
        t: &TxRecord,
        targets: &[(String, Vec<u8>)],
    ) -> Result<()> {
        self.clean_through
            .fetch_min(t.expires_at.saturating_sub(1), Ordering::SeqCst);
        insert_transaction(tx, t, targets)
    }

    // ------------------------------------------------------------------ certificates

    /// A certificate by serial (big-endian bytes).
    pub fn certificate(&self, serial: &[u8]) -> Result<Option<CertRecord>> {
        let conn = self.conn();
        certs_where(
            &conn,
            "serial = ?1",
            params![hex::encode(strip_zeros(serial))],
        )
        .map(|mut v| v.pop())
    }

    /// The certificates of an account (newest first).
    pub fn certificates_of(&self, account_id: &str) -> Result<Vec<CertRecord>> {
        let conn = self.conn();
        certs_where(&conn, "account_id = ?1", params![account_id])
    }

    /// All certificates (operator listing).
    pub fn all_certificates(&self) -> Result<Vec<CertRecord>> {
        let conn = self.conn();
        certs_where(&conn, "1 = 1", [])
    }

    /// Revoked certificates that have not expired (for the CRL).
    pub fn revoked_certificates(&self) -> Result<Vec<CertRecord>> {
        let conn = self.conn();
        certs_where(&conn, "status = 'REVOKED'", [])
    }

    /// Operator: revokes one certificate. Returns false if it was revoked already.
    pub fn revoke_certificate(&self, serial: &[u8], reason: i64, now: i64) -> Result<bool> {
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

    /// Takes the next CRL number (monotonic, durable).
    pub fn next_crl_number(&self) -> Result<u64> {
        self.write(|tx| {
            let n: i64 = tx
                .prepare_cached("SELECT next_number FROM crl_counter WHERE id = 1")?
                .query_row([], |r| r.get(0))?;
            tx.prepare_cached("UPDATE crl_counter SET next_number = next_number + 1 WHERE id = 1")?
                .execute([])?;
            Ok(n as u64)
        })
    }

    // ------------------------------------------------------------------ relying parties

    /// Registers a relying party with its names (operator). `allowed_ips` empty = any
    /// address. Refused, and nothing stored, when the UUID is taken, there is no name, a name
    /// is not valid ([`tandem_rp::api::rp_name::configured_name`]) or two names fold alike.
    pub fn add_relying_party(&self, rp: &RelyingParty, now: i64) -> Result<()> {
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
            tx.prepare_cached("INSERT INTO relying_parties (uuid, allowed_ips, created_at, active, device_ip_sharing) VALUES (?1, ?2, ?3, 1, ?4)")?.execute(
                params![rp.uuid, ips.join(","), now, rp.device_ip_sharing],
            )?;
            for (position, name) in (1i64..).zip(&rp.names) {
                insert_rp_name(tx, &rp.uuid, position, name, now)?;
            }
            let details = serde_json::json!({
                "uuid": rp.uuid,
                "names": rp.names,
                "allowed_ips": ips,
                "device_ip_sharing": rp.device_ip_sharing,
            });
            audit(tx, now, "relying_party_added", None, &details)?;
            Ok(())
        })
    }

    /// Adds a name to an active relying party (operator). Refused, and nothing changed, when
    /// the relying party is unknown or removed, the name is not valid, or it is one of the
    /// relying party's names already, ignoring case ([`tandem_rp::api::rp_name`]).
    pub fn add_relying_party_name(&self, uuid: &str, name: &str, now: i64) -> Result<()> {
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

    /// Removes a name from an active relying party (operator); `name` may be written in
    /// another case. Returns the name as it was configured. Refused, and nothing changed,
    /// when the relying party is unknown or removed, has no such name, or it is its last one
    /// (a relying party without a name could not be called; remove the relying party
    /// instead).
    pub fn remove_relying_party_name(&self, uuid: &str, name: &str, now: i64) -> Result<String> {
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

    /// Allows or forbids an active relying party to request the mobile device's IP address
    /// (operator). Returns whether the permission changed; a change is an audit record.
    /// Refused, and nothing changed, when the relying party is unknown or removed.
    pub fn set_relying_party_device_ip_sharing(
        &self,
        uuid: &str,
        allowed: bool,
        now: i64,
    ) -> Result<bool> {
        self.write(|tx| {
            let current: Option<bool> = tx
                .prepare_cached(
                    "SELECT device_ip_sharing FROM relying_parties WHERE uuid = ?1 AND active = 1",
                )?
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
            tx.prepare_cached("UPDATE relying_parties SET device_ip_sharing = ?2 WHERE uuid = ?1")?
                .execute(params![uuid, allowed])?;
            let details = serde_json::json!({ "uuid": uuid, "device_ip_sharing": allowed });
            audit(tx, now, "relying_party_device_ip_sharing", None, &details)?;
            Ok(true)
        })
    }

    /// Deactivates a relying party (operator). Returns false if it was unknown or inactive.
    pub fn remove_relying_party(&self, uuid: &str, now: i64) -> Result<bool> {
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

    /// Active relying parties, each with its names (oldest first).
    pub fn relying_parties(&self) -> Result<Vec<RelyingParty>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT r.uuid, n.name, r.allowed_ips, r.device_ip_sharing FROM relying_parties r
             JOIN relying_party_names n ON n.rp_uuid = r.uuid
             WHERE r.active = 1 ORDER BY r.created_at, r.uuid, n.position",
        )?;
        let rows = stmt.query_map([], rp_columns)?;
        relying_parties_from_rows(rows)
    }

    /// The active relying party with this UUID and its names (primary-key lookups: the REST
    /// API checks one on every request, whatever the number of relying parties).
    fn active_relying_party(&self, uuid: &str) -> Result<Option<RelyingParty>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT r.uuid, n.name, r.allowed_ips, r.device_ip_sharing FROM relying_parties r
             JOIN relying_party_names n ON n.rp_uuid = r.uuid
             WHERE r.uuid = ?1 AND r.active = 1 ORDER BY n.position",
        )?;
        let rows = stmt.query_map(params![uuid], rp_columns)?;
        Ok(relying_parties_from_rows(rows)?.pop())
    }

    /// Checks a relying party's UUID, name and source address: `Unknown` and
    /// `AddressNotAllowed` both answer 401 (the log tells them apart).
    pub fn authenticate_relying_party(
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

    // ------------------------------------------------------------------ audit

    /// Appends an audit event in its own transaction.
    pub fn audit(
        &self,
        now: i64,
        event: &str,
        account_id: Option<&str>,
        details: &serde_json::Value,
    ) -> Result<()> {
        self.write(|tx| audit(tx, now, event, account_id, details))
    }

    /// The audit log from `since_seq` on.
    pub fn audit_log(&self, since_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
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

    /// Recomputes the whole hash chain. Returns the number of records checked, or the
    /// first sequence number whose hash does not match.
    pub fn verify_audit_chain(&self) -> Result<std::result::Result<usize, i64>> {
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

// ---------------------------------------------------------------------- row helpers

const REG_COLS: &str = "id, secret_hash, code, device_id, matching_code, state, created_at, expires_at, \
                        given_name, surname, country, national_id, proof_attempts, account_id, document_number";

fn registration_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Registration>> {
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

fn registration_where(conn: &Connection, cond: &str, value: &str) -> Result<Option<Registration>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {REG_COLS} FROM registrations WHERE {cond}"
        ))?
        .query_row(params![value], registration_row)
        .optional()?;
    row.transpose()
}

const ACC_COLS: &str = "id, document_number, device_id, device_secret_hash, given_name, surname, country, \
                        national_id, created_at, expires_at, state";

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Account>> {
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

fn account_where(conn: &Connection, cond: &str, value: &str) -> Result<Option<Account>> {
    let row = conn
        .prepare_cached(&format!("SELECT {ACC_COLS} FROM accounts WHERE {cond}"))?
        .query_row(params![value], account_row)
        .optional()?;
    row.transpose()
}

const KP_COLS: &str = "id, account_id, key_type, client_modulus, server_modulus, composite_modulus, \
                       server_share_blob, server_key_blob, status, disabled_reason, consecutive_failures, \
                       locked_until, clone_token_hash";

fn key_pair_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<KeyPair>> {
    let kt: String = r.get(2)?;
    let status: String = r.get(8)?;
    let kp = (|| -> Result<KeyPair> {
        Ok(KeyPair {
            id: r.get(0)?,
            account_id: r.get(1)?,
            key_type: parse_key_type(&kt)?,
            client_modulus: r.get(3)?,
            server_modulus: r.get(4)?,
            composite_modulus: r.get(5)?,
            server_share_blob: r.get(6)?,
            server_key_blob: r.get(7)?,
            status: match status.as_str() {
                "ACTIVE" => KeyPairStatus::Active,
                "DISABLED" => KeyPairStatus::Disabled,
                other => return Err(StoreError::Corrupt(format!("key pair status {other}"))),
            },
            disabled_reason: r.get(9)?,
            consecutive_failures: r.get(10)?,
            locked_until: r.get(11)?,
            clone_token_hash: r.get(12)?,
        })
    })();
    Ok(kp)
}

fn key_pair_where(
    conn: &Connection,
    account_id: &str,
    key_type: KeyType,
) -> Result<Option<KeyPair>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {KP_COLS} FROM key_pairs WHERE account_id = ?1 AND key_type = ?2"
        ))?
        .query_row(params![account_id, key_type_str(key_type)], key_pair_row)
        .optional()?;
    row.transpose()
}

fn key_pair_by_id(conn: &Connection, id: i64) -> Result<KeyPair> {
    conn.prepare_cached(&format!("SELECT {KP_COLS} FROM key_pairs WHERE id = ?1"))?
        .query_row(params![id], key_pair_row)
        .optional()?
        .ok_or(StoreError::NotFound("key pair"))?
}

const TX_COLS: &str = "id, kind, relying_party, key_type, hash, scheme, digest, display_text, verification_code, \
                       vc_choices, state, end_result, signature, answered_by, created_at, expires_at";

fn insert_transaction(tx: &Connection, t: &TxRecord, targets: &[(String, Vec<u8>)]) -> Result<()> {
    tx.prepare_cached("INSERT INTO transactions (id, kind, relying_party, key_type, hash, scheme, digest, display_text,
            verification_code, vc_choices, state, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'RUNNING', ?11, ?12)")?.execute(
        params![
            t.id,
            t.kind.as_str(),
            t.relying_party,
            key_type_str(t.key_type),
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
        "key_type": key_type_str(t.key_type), "targets": targets.len() }),
    )?;
    Ok(())
}

fn tx_where(conn: &Connection, id: &str) -> Result<Option<TxRecord>> {
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
    t.key_type = parse_key_type(&kt)?;
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

fn end_transaction(
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

fn disable(tx: &Connection, kp: &KeyPair, reason: DisableReason, now: i64) -> Result<()> {
    tx.prepare_cached("UPDATE key_pairs SET status = 'DISABLED', disabled_reason = ?2, locked_until = NULL WHERE id = ?1 AND status = 'ACTIVE'")?.execute(
        params![kp.id, reason.as_str()],
    )?;
    let details =
        serde_json::json!({ "key_type": key_type_str(kp.key_type), "reason": reason.as_str() });
    audit(tx, now, "key_disabled", Some(&kp.account_id), &details)?;
    revoke_where(
        tx,
        "account_id = ?1 AND key_type = ?2",
        &kp.account_id,
        Some(key_type_str(kp.key_type)),
        reason.crl_reason(),
        now,
    )
}

/// Revokes the matching good certificates (same transaction as the cause).
fn revoke_where(
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

fn strip_zeros(serial: &[u8]) -> &[u8] {
    let first = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    &serial[first..]
}

fn certs_where<P: rusqlite::Params>(
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
        rec.key_type = parse_key_type(&kt)?;
        if status == "REVOKED" {
            rec.revoked = Some((at.unwrap_or(0), reason.unwrap_or(0)));
        }
        out.push(rec);
    }
    Ok(out)
}

fn lookup_reply(
    conn: &Connection,
    scope: &str,
    nonce: &[u8],
    request_hash: &[u8],
) -> Result<ReplyLookup> {
    let row: Option<(Vec<u8>, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT request_hash, response FROM replies WHERE scope = ?1 AND nonce = ?2",
        )?
        .query_row(params![scope, nonce], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        None => ReplyLookup::New,
        Some((h, resp)) if h == request_hash => ReplyLookup::Replay(resp),
        Some(_) => ReplyLookup::Mismatch,
    })
}

fn insert_reply(tx: &Connection, reply: &Reply) -> Result<()> {
    match lookup_reply(tx, &reply.scope, &reply.nonce, &reply.request_hash)? {
        ReplyLookup::New => {
            tx.prepare_cached("INSERT INTO replies (scope, nonce, request_hash, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
                params![reply.scope, reply.nonce, reply.request_hash, reply.response, unix_now()],
            )?;
            Ok(())
        }
        ReplyLookup::Replay(_) | ReplyLookup::Mismatch => Err(StoreError::Conflict(
            "this request nonce was already used".into(),
        )),
    }
}

fn chain_hash(
    prev: &[u8],
    seq: i64,
    at: i64,
    event: &str,
    account: Option<&str>,
    details: &str,
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"tandem-audit-v1\0");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at.to_be_bytes());
    for part in [event, account.unwrap_or(""), details] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_vec()
}

fn audit(
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

/// Current unix time in seconds.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Current Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `f` in one write transaction (`BEGIN IMMEDIATE`), committed when it succeeds.
fn in_transaction<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    /// Rolls the transaction back unless it was committed: on an error, and on a panic in
    /// `f` (the connection stays usable for the next caller).
    struct Open<'c> {
        conn: &'c Connection,
        committed: bool,
    }
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            if !self.committed && !self.conn.is_autocommit() {
                // A failed rollback leaves nothing to undo (SQLite has ended it already).
                let _ = self
                    .conn
                    .prepare_cached("ROLLBACK")
                    .and_then(|mut s| s.execute([]));
            }
        }
    }
    // Cached statements, unlike rusqlite's `Transaction`, which parses `BEGIN` and `COMMIT`
    // anew each time (`execute_batch`).
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let mut open = Open {
        conn,
        committed: false,
    };
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    open.committed = true;
    Ok(out)
}

/// A key size as the `bits` column stores it.
fn bits_column(bits: usize) -> Result<i64> {
    i64::try_from(bits).map_err(|_| StoreError::Conflict("key size".into()))
}

/// The columns `uuid, name, allowed_ips, device_ip_sharing` of a `relying_parties` row
/// joined with one of its `relying_party_names`.
type RpRow = (String, String, String, bool);

fn rp_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<RpRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

/// Relying parties from [`rp_columns`] rows, one row per name, ordered by relying party and
/// then name position; `allowed_ips` is a comma-separated list.
fn relying_parties_from_rows(
    rows: impl Iterator<Item = rusqlite::Result<RpRow>>,
) -> Result<Vec<RelyingParty>> {
    let mut out: Vec<RelyingParty> = Vec::new();
    for row in rows {
        let (uuid, name, ips, device_ip_sharing) = row?;
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
                });
            }
        }
    }
    Ok(out)
}

/// Checks a relying-party name as the operator commands give it (already trimmed).
fn check_rp_name(name: &str) -> Result<()> {
    match rp_name::configured_name(name) {
        Ok(n) if n == name => Ok(()),
        Ok(_) => Err(StoreError::Conflict(format!(
            "the relying-party name {name:?} starts or ends with white space"
        ))),
        Err(e) => Err(StoreError::Conflict(e)),
    }
}

/// The names of an active relying party (oldest first), inside a write transaction.
fn active_rp_names(tx: &Connection, uuid: &str) -> Result<Vec<String>> {
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

fn insert_rp_name(tx: &Connection, uuid: &str, position: i64, name: &str, now: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO relying_party_names (rp_uuid, position, name, added_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![uuid, position, name, now])?;
    Ok(())
}

#[cfg(test)]
mod tests;
