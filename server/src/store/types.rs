//! The store's domain types and its error, shared by every backend.

use sha2::{Digest, Sha256};
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};
use tandem_client_core::types::KeyType;

use crate::lockout::AttemptCounters;
#[cfg(doc)]
use crate::lockout::LockoutPolicy;

/// Storage errors. Messages never contain secrets or blobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (the backend's error, for the log; never shown to clients).
    #[error("database error: {0}")]
    Db(Box<dyn std::error::Error + Send + Sync>),
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
    /// The last PIN attempt counted by the gate (unix seconds), if any: the device's last use.
    pub last_attempt_at: Option<i64>,
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
    /// May use the self-service portal endpoints (`POST /tandem/v1/portal/*`): read an
    /// authenticated holder's accounts and delete them. Off unless the operator allows it.
    pub portal: bool,
    /// Must present one of its software certificates (mutual TLS) on the RP API
    /// ([`crate::core::rp_mtls`]). Off unless the operator requires it
    /// (`tandem operator rp-mtls UUID require`).
    pub mtls_required: bool,
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

/// The transaction a successful attempt completes ([`super::KeyPairs::attempt_succeeded`]).
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

impl KeyPair {
    /// This key pair with `counters` in place of its own: the state an answer reports
    /// before the store has written it.
    pub fn with_counters(&self, counters: &AttemptCounters) -> KeyPair {
        KeyPair {
            status: if counters.disabled {
                KeyPairStatus::Disabled
            } else {
                self.status
            },
            consecutive_failures: counters.consecutive_failures,
            locked_until: counters.locked_until,
            ..self.clone()
        }
    }

    /// The counters the lockout rule reads ([`LockoutPolicy::gate`]).
    pub fn counters(&self) -> AttemptCounters {
        AttemptCounters {
            disabled: self.status == KeyPairStatus::Disabled,
            consecutive_failures: self.consecutive_failures,
            locked_until: self.locked_until,
        }
    }
}

/// The REST side of one transaction.
#[derive(Clone)]
pub struct RpSession {
    /// The transaction (= `sessionID`).
    pub transaction_id: String,
    /// Relying party that started it.
    pub rp_uuid: String,
    /// `auth`, `sign` or `cert`.
    pub session_type: String,
    /// `DEVICE_LINK`, `NOTIFICATION` or `LINKED`.
    pub flow: String,
    /// Device-link sessions: the `sessionToken` in the link.
    pub session_token: Option<String>,
    /// Device-link sessions: the authCode key (raw bytes). Dropped once the result expires.
    pub session_secret: Option<Vec<u8>>,
    /// `document:<number>` or `person:<CC>:<id>` for non-anonymous device-link sessions.
    pub restriction: Option<String>,
    /// JSON of the request values the app and the status response need.
    pub params: String,
    /// SHA-256 of the canonical request (idempotency window).
    pub request_hash: Vec<u8>,
    /// When the start response was produced (Unix milliseconds; QR `elapsedSeconds` base).
    pub created_at_ms: i64,
}

impl std::fmt::Debug for RpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpSession")
            .field("transaction_id", &self.transaction_id)
            .field("rp_uuid", &self.rp_uuid)
            .field("session_type", &self.session_type)
            .field("flow", &self.flow)
            .field("session_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// What presenting a device link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimResult {
    /// This account now answers the session.
    Claimed,
    /// This account had already claimed it (a repeated scan).
    AlreadyYours,
    /// Another account claimed it first.
    Taken,
    /// The session is no longer running.
    Closed,
}

/// A revoked CA certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRevocation {
    /// Serial number, hex without leading zero bytes.
    pub serial_hex: String,
    /// Subject of the certificate, for people reading the store and the audit log.
    pub subject: String,
    /// When it was revoked (Unix seconds).
    pub revoked_at: i64,
    /// RFC 5280 CRLReason code.
    pub reason: i64,
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

/// A serial number without leading zero bytes (how certificates are keyed).
pub(crate) fn strip_zeros(serial: &[u8]) -> &[u8] {
    let first = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    &serial[first..]
}

/// The hash of one audit record, chained to the previous record's hash. The format of the
/// stored chain: every backend computes it alike, so a log moved between backends verifies.
pub(crate) fn chain_hash(
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

/// A transaction as the self-service portal lists it.
#[derive(Debug, Clone)]
pub struct HolderTransaction {
    /// Transaction id.
    pub id: String,
    /// What the relying party asked for.
    pub kind: TxKind,
    /// Relying party display name.
    pub relying_party: String,
    /// State.
    pub state: TxState,
    /// End result when complete.
    pub end_result: Option<EndResult>,
    /// Account that answered.
    pub answered_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when complete.
    pub completed_at: Option<i64>,
    /// Started over the REST RP API v3 (else gRPC).
    pub rest: bool,
}

/// The portal's deletion of an account with an AUTH session (recorded once per session).
#[derive(Debug, Clone)]
pub struct PortalDeletion<'a> {
    /// The AUTH session that confirmed it.
    pub auth_session_id: &'a str,
    /// The portal relying party.
    pub rp_uuid: &'a str,
}
