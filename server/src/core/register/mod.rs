//! Registration as functions of the domain: start, the operator's approval, the key
//! hand-over and the PIN proof that creates the account.
//!
//! ```text
//!  shell (gRPC)                        core::register                      store / HSM / CA
//!  StartRegistration ──▶ start ── id, secret, codes from the RNG ───────▶ create_registration
//!  operator          ──▶ approve ── identity checked ─────────────────────▶ approve_registration_as
//!  GetRegistration   ──▶ find ─▶ status (expiry from the clock)
//!  SubmitKeys        ──▶ find ─▶ submit_keys ── n1 sizes, envelopes ─────▶ HSM: open d1'', seal at rest
//!                                   server keys (pool, else generated) ─▶ take_pooled_server_keys
//!                                   proof challenge per key pair ────────▶ submit_registration_keys
//!  CompleteRegistration ▶ find ─▶ complete ── both proofs judged ────────▶ HSM: s1'·s1'' verifies?
//!                                   failed: attempts left ───────────────▶ registration_proof_failed
//!                                   else: account, certificates ─────────▶ CA (HSM), complete_registration
//! ```
//!
//! The shell checks and converts the wire request, answers a retransmission from its
//! stored reply, calls these functions and converts the outcome back. Where the state change
//! and its reply must be written in one database transaction, the core asks the shell for the
//! sealed reply of the outcome it decided ([`RegistrationReplies`]) before it calls the store.
//! Secrets (the registration secret, the device secret, clone tokens) come from the RNG
//! parameter and stay secret types in the outcomes.

mod keys;
mod proof;

use tandem_client_core::protocol::messages::ProofChallenge;
use tandem_client_core::protocol::registration::RegistrationSecret;
use tandem_client_core::types::{CloneToken, DeviceSecret, KeyType};
use tandem_client_core::vc;

use super::envelope::EnvelopeError;
use super::{Clock, Rng};
use crate::ca::Ca;
use crate::config::Config;
use crate::hsm::{Hsm, HsmError};
use crate::store::{self, Identity, NewRegistration, RegistrationState, Reply, Store, StoreError};

pub use keys::submit_keys;
pub use proof::{CompletionOutcome, complete};

/// The configured limits registration works within.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRules {
    /// How long a registration (and its code) is valid, in seconds.
    pub registration_seconds: i64,
    /// PIN proofs allowed before the registration fails for good.
    pub proof_attempts: u32,
    /// Validity of the account and its certificates, in days.
    pub account_validity_days: i64,
    /// Accepted sizes of the device's modulus `n1`.
    pub client_key_bits: Vec<usize>,
    /// Size of the server's key `n2`.
    pub server_key_bits: usize,
    /// Whether a pool of pre-generated server keys is kept (only changes a log line when it
    /// runs dry).
    pub server_key_pool: bool,
    /// Whether `d1''` is kept as an RSA key token object (`token-rsa`), so the device sends
    /// share-key envelopes.
    pub token_rsa: bool,
    /// Longest wait for one HSM call before it counts as failed.
    pub hsm_call_timeout: std::time::Duration,
}

impl RegistrationRules {
    /// The rules of a server configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            registration_seconds: config.timeouts.registration_seconds,
            proof_attempts: config.timeouts.registration_proof_attempts,
            account_validity_days: config.timeouts.account_validity_days,
            client_key_bits: config.keys.client_key_bits.clone(),
            server_key_bits: config.keys.server_key_bits,
            server_key_pool: config.keys.server_key_pool > 0,
            token_rsa: config.hsm.share_exponentiation == crate::hsm::ShareExponentiation::TokenRsa,
            hsm_call_timeout: config.hsm.call_timeout(),
        }
    }
}

/// What registration works with: the store, the HSM, the CA (certificates are signed in the
/// HSM), the rules and the clock. The RNG is passed to each step that draws.
#[derive(Clone, Copy)]
pub struct Registrar<'a> {
    /// Durable state.
    pub store: &'a dyn Store,
    /// Opens envelopes, keeps shares at rest, generates server keys, judges proofs.
    pub hsm: &'a Hsm,
    /// Issues the account's certificates.
    pub ca: &'a Ca,
    /// The configured limits.
    pub rules: &'a RegistrationRules,
    /// Where "now" comes from.
    pub clock: &'a dyn Clock,
}

impl std::fmt::Debug for Registrar<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("rules", self.rules)
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

/// The sealed replies of the outcomes the core decides, built by the shell (which knows the
/// wire format and the request's retransmission key). The core asks for one before the
/// store call that must write it in the same database transaction as the state change.
pub trait RegistrationReplies {
    /// The reply for a started registration.
    fn started(&self, started: &Started) -> Reply;
    /// The reply for handed-over keys: the proof challenges.
    fn keys_submitted(&self, challenges: &[ProofChallenge]) -> Reply;
    /// The reply for a proof that failed for `failed`, with `attempts_left`.
    fn proof_failed(&self, failed: &[KeyType], attempts_left: u32) -> Reply;
    /// The reply for a completed registration (it holds the device secret and the clone
    /// tokens: the shell seals it).
    fn completed(&self, completed: &Completed) -> Reply;
}

/// Why a registration step refused or failed. The texts are what the device is told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// No registration with this id, or the secret does not match.
    #[error("unknown registration")]
    UnknownRegistration,
    /// The registration's time ran out.
    #[error("the registration has expired; start again")]
    Expired,
    /// Keys were sent before the approval or a second time.
    #[error("the registration is not approved yet, or its keys were already submitted")]
    NotAwaitingKeys,
    /// A proof was sent before the keys or after the end.
    #[error("the registration is not waiting for its PIN proof")]
    NotAwaitingProof,
    /// Two keys of one key type.
    #[error("each key type may be submitted once")]
    DuplicateKeyType,
    /// Not one AUTH and one SIGN key.
    #[error("submit exactly one AUTH and one SIGN key")]
    KeySet,
    /// Not one AUTH and one SIGN proof.
    #[error("send exactly one AUTH and one SIGN proof")]
    ProofSet,
    /// `n1` of a size this server does not accept, or even.
    #[error("client modulus must be an odd number of {allowed:?} bits")]
    ClientModulus {
        /// The accepted sizes.
        allowed: Vec<usize>,
    },
    /// `d1''` is not as long as `n1`.
    #[error("server share has the wrong size")]
    ServerShareSize,
    /// A proof share `s1'` is not a number below `n1` of `n1`'s length.
    #[error("signature share has the wrong size")]
    ProofShareSize,
    /// An envelope was refused, or the HSM could not open it.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The operator's identity data is not acceptable.
    #[error("{0}")]
    Identity(&'static str),
    /// The store refused or failed (a conflicting state, a database error).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HSM failed.
    #[error("HSM: {0}")]
    Hsm(#[from] HsmError),
    /// Judging a proof failed (the HSM, a worker).
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// Something that should not happen (detail for the log only).
    #[error("{0}")]
    Internal(String),
}

/// A new registration as the device asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    /// The device's id, fixed for its lifetime.
    pub device_id: [u8; 16],
    /// The device's random challenge; feeds the matching code.
    pub device_challenge: [u8; 32],
}

/// A started registration: what the device is told.
#[derive(Debug)]
pub struct Started {
    /// The registration's id (a UUID).
    pub registration_id: String,
    /// Authenticates the device's further registration calls; the store keeps its hash only.
    pub registration_secret: RegistrationSecret,
    /// `XXXX-XXXX`, for the operator / identity proofing.
    pub registration_code: String,
    /// The code both sides show.
    pub matching_code: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Starts a registration: id, secret and code from `rng`, valid for the configured time.
/// Stored with its reply in one database transaction.
pub fn start(
    ctx: &Registrar<'_>,
    rng: Rng<'_>,
    request: &StartRequest,
    replies: &dyn RegistrationReplies,
) -> Result<Started, RegisterError> {
    let now = ctx.clock.now();
    let id = uuid_v4(&mut *rng);
    let mut secret = zeroize::Zeroizing::new(vec![0u8; 32]);
    rng.fill_bytes(&mut secret);
    let started = Started {
        matching_code: vc::matching_code(&id, &request.device_challenge),
        registration_code: registration_code(&mut *rng),
        registration_secret: RegistrationSecret::from_bytes(secret.to_vec()),
        expires_at: now + ctx.rules.registration_seconds,
        registration_id: id,
    };
    ctx.store.create_registration(
        &NewRegistration {
            id: started.registration_id.clone(),
            secret_hash: store::secret_hash(started.registration_secret.expose_secret()),
            code: started.registration_code.clone(),
            device_id: request.device_id.to_vec(),
            matching_code: started.matching_code.clone(),
            created_at: now,
            expires_at: started.expires_at,
        },
        &replies.started(&started),
    )?;
    tracing::info!(registration_id = %started.registration_id, "registration started");
    Ok(started)
}

/// A registration whose secret the device has shown: the further steps take it.
#[derive(Debug, Clone)]
pub struct Authenticated {
    registration: store::Registration,
}

impl Authenticated {
    /// The registration as read.
    pub fn registration(&self) -> &store::Registration {
        &self.registration
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.registration.id
    }

    /// The registration if it is approved, not expired and has no keys yet: the state
    /// [`submit_keys`] takes.
    pub fn awaiting_keys(self, clock: &dyn Clock) -> Result<AwaitingKeys, RegisterError> {
        if self.registration.is_expired(clock.now()) {
            return Err(RegisterError::Expired);
        }
        if self.registration.state != RegistrationState::Approved {
            return Err(RegisterError::NotAwaitingKeys);
        }
        Ok(AwaitingKeys(self))
    }

    /// The registration if its keys were handed over and it is not expired: the state
    /// [`complete`] takes.
    pub fn awaiting_proof(self, clock: &dyn Clock) -> Result<AwaitingProof, RegisterError> {
        if self.registration.is_expired(clock.now()) {
            return Err(RegisterError::Expired);
        }
        if self.registration.state != RegistrationState::KeysSubmitted {
            return Err(RegisterError::NotAwaitingProof);
        }
        Ok(AwaitingProof(self))
    }
}

/// An approved registration waiting for the device's keys (checked when read; the store
/// checks again when it writes).
#[derive(Debug, Clone)]
pub struct AwaitingKeys(Authenticated);

/// A registration waiting for its PIN proof (checked when read; the store checks again when
/// it writes).
#[derive(Debug, Clone)]
pub struct AwaitingProof(Authenticated);

/// Finds a registration and checks its secret (in constant time). Unknown id and wrong
/// secret are the same refusal.
pub fn find(
    store: &dyn Store,
    registration_id: &str,
    secret: &RegistrationSecret,
) -> Result<Authenticated, RegisterError> {
    let registration = store
        .registration(registration_id)
        .map_err(|_| RegisterError::UnknownRegistration)?;
    let ok: bool = subtle::ConstantTimeEq::ct_eq(
        registration.secret_hash.as_slice(),
        store::secret_hash(secret.expose_secret()).as_slice(),
    )
    .into();
    if !ok {
        return Err(RegisterError::UnknownRegistration);
    }
    Ok(Authenticated { registration })
}

/// Where a registration stands, as the device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the operator / identity proofing.
    PendingApproval,
    /// Approved; waiting for the keys.
    Approved,
    /// Keys handed over; waiting for the PIN proof.
    KeysSubmitted,
    /// The account exists.
    Completed,
    /// Failed for good (too many failed proofs).
    Failed,
    /// Its time ran out before it completed.
    Expired,
}

/// A registration's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Where it stands (expiry counted).
    pub phase: Phase,
    /// The approved identity, once approved.
    pub identity: Option<Identity>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The status of a registration at the clock's time.
pub fn status(registration: &Authenticated, clock: &dyn Clock) -> Status {
    let reg = &registration.registration;
    let phase = if reg.is_expired(clock.now()) {
        Phase::Expired
    } else {
        match reg.state {
            RegistrationState::PendingApproval => Phase::PendingApproval,
            RegistrationState::Approved => Phase::Approved,
            RegistrationState::KeysSubmitted => Phase::KeysSubmitted,
            RegistrationState::Completed => Phase::Completed,
            RegistrationState::Failed => Phase::Failed,
        }
    };
    Status {
        phase,
        identity: reg.identity.clone(),
        expires_at: reg.expires_at,
    }
}

/// The operator's (or identity proofing's) approval of a registration code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The code the device shows.
    pub code: String,
    /// Who the person is.
    pub identity: Identity,
    /// The document number the account will get (test accounts); `None`: generated when
    /// the registration completes.
    pub document_number: Option<String>,
}

/// Checks the identity the operator entered: a two-letter upper-case country, a national id
/// of 1-32 letters or digits, names that are not blank.
pub fn check_identity(identity: &Identity) -> Result<(), RegisterError> {
    let Identity {
        given_name,
        surname,
        country,
        national_id,
    } = identity;
    if !(country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase())) {
        return Err(RegisterError::Identity(
            "country must be two upper-case letters (ISO 3166-1 alpha-2)",
        ));
    }
    if national_id.is_empty()
        || national_id.len() > 32
        || !national_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(RegisterError::Identity(
            "national id must be 1-32 letters or digits",
        ));
    }
    if given_name.trim().is_empty() || surname.trim().is_empty() {
        return Err(RegisterError::Identity("names must not be empty"));
    }
    Ok(())
}

/// Approves a registration waiting for approval and not expired (the store decides both in
/// its transaction, and refuses a document number an account already has). A bad identity
/// changes nothing.
pub fn approve(
    store: &dyn Store,
    clock: &dyn Clock,
    approval: &Approval,
) -> Result<store::Registration, RegisterError> {
    check_identity(&approval.identity)?;
    Ok(store.approve_registration_as(
        &approval.code,
        &approval.identity,
        approval.document_number.as_deref(),
        clock.now(),
    )?)
}

/// A completed registration: the account as created, and the device's secrets.
#[derive(Debug)]
pub struct Completed {
    /// The new account.
    pub account: NewAccount,
    /// Authenticates the device from now on; the store keeps its hash only.
    pub device_secret: DeviceSecret,
    /// The first clone-detection token of each key pair; the store keeps their hashes.
    pub clone_tokens: Vec<(KeyType, CloneToken)>,
}

/// An account as registration creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Its id (a UUID).
    pub account_id: String,
    /// `PNO<CC>-<national id>-<4 random>-Q`, or the one chosen at approval.
    pub document_number: String,
    /// The holder.
    pub identity: Identity,
    /// Unix seconds.
    pub expires_at: i64,
    /// The AUTH and SIGN key pairs.
    pub key_pairs: Vec<NewKeyPair>,
}

/// One key pair of a new account: its public half and certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyPair {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// `n = n1·n2`.
    pub composite_modulus: Vec<u8>,
    /// The public key (`n`, e = 65537) as DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// The certificate (DER).
    pub certificate_der: Vec<u8>,
}

/// A version 4 UUID from `rng`.
fn uuid_v4(rng: Rng<'_>) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `XXXX-XXXX` from an alphabet without look-alikes.
fn registration_code(rng: Rng<'_>) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 8];
    rng.fill_bytes(&mut bytes);
    let mut out = String::with_capacity(9);
    for (i, b) in bytes.iter().enumerate() {
        if i == 4 {
            out.push('-');
        }
        out.push(ALPHABET[(*b as usize) % ALPHABET.len()] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn codes_and_ids_come_from_the_rng() {
        let mut a = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = rand::rngs::StdRng::seed_from_u64(7);
        let code = registration_code(&mut a);
        assert_eq!(code, registration_code(&mut b));
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(
            code.chars()
                .filter(|c| *c != '-')
                .all(|c| c.is_ascii_uppercase() || ('2'..='9').contains(&c)),
            "{code}"
        );
        let id = uuid_v4(&mut a);
        assert_eq!(id, uuid_v4(&mut b));
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        assert_ne!(id, uuid_v4(&mut a), "the next draw differs");
    }

    #[test]
    fn identities_are_checked() {
        let good = Identity {
            given_name: "MARY".into(),
            surname: "TESTNUMBER".into(),
            country: "EE".into(),
            national_id: "30303039914".into(),
        };
        assert!(check_identity(&good).is_ok());
        for (bad, text) in [
            (
                Identity {
                    country: "ee".into(),
                    ..good.clone()
                },
                "country must be two upper-case letters (ISO 3166-1 alpha-2)",
            ),
            (
                Identity {
                    national_id: "3030-3039914".into(),
                    ..good.clone()
                },
                "national id must be 1-32 letters or digits",
            ),
            (
                Identity {
                    surname: "  ".into(),
                    ..good.clone()
                },
                "names must not be empty",
            ),
        ] {
            assert_eq!(check_identity(&bad).unwrap_err().to_string(), text);
        }
    }
}
