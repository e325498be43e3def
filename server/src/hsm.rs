//! HSM access over PKCS#11 (`cryptoki`).
//!
//! What the HSM holds (see DESIGN.md, "What the HSM holds"):
//!
//! ```text
//!   token objects (created once by `Hsm::ensure_objects`)
//!     "tandem-kek"        AES-256 secret key, sensitive, non-extractable
//!                         -> seals d1'' at rest (AES-GCM), wraps server keys (AES-KW-PAD)
//!     "tandem-transport"  EC P-256 key pair (default) or RSA key pair; private half
//!                         sensitive, non-extractable -> devices seal envelopes to it
//!                         (ECDH + HKDF + AES-GCM, or RSA-OAEP of a content key)
//!
//!   CA key pairs (token objects, created by `Hsm::ensure_ca_key`, one label each)
//!     <label>             RSA-4096 / RSA-3072 / EC P-384; private half sensitive,
//!                         non-extractable, CKA_SIGN only -> certificates, CRLs, OCSP
//!                         responses (`Hsm::ca_sign`)
//!
//!   session objects (live for one call, destroyed before it returns)
//!     unwrapped content keys (open_envelope, RSA), ECDH secrets (open_envelope, EC)
//!     server key pairs being generated and wrapped (generate_server_key)
//!     unwrapped server private keys (sign_raw)
//!
//!   database <- ServerKey { modulus, wrapped_private_key }   (sealed by the KEK)
//!            <- seal_at_rest blobs                            (sealed by the KEK)
//! ```
//!
//! Threading: the PKCS#11 module is loaded and `C_Initialize`d once per process (with
//! `CKF_OS_LOCKING_OK`), whatever the number of [`Hsm`] values. A PKCS#11 session is
//! `Send` but not `Sync`, so each call checks a session out of a small pool, uses it on
//! the calling thread only, and returns it. One extra session stays open for the life of
//! the [`Hsm`] because the user login of an application ends when its last session closes.
//! All methods block: call them from `spawn_blocking`, never on the async executor.
//!
//! Persisted blobs start with a version and an algorithm byte; anything else is rejected.
//!
//! Nothing here logs or reports key material or the PIN; spans name operations only.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rsa::BigUint;
use rsa::pkcs8::EncodePublicKey;
use sha2::{Digest, Sha256, Sha384};
use tandem_client_core::envelope::{self, EnvelopeKey};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

mod reply_key;
pub use reply_key::REPLY_KEY_LABEL;
mod token_share;
pub use token_share::{
    ALG_TOKEN_RSA_KEY, SHARE_KEY_LABEL_PREFIX, ShareExponentiation, is_token_share_blob,
};

/// hsm-sim's vendor key type for a split-key share `d1''` (hsm-sim/README.md): a secret key
/// object with `CKA_MODULUS` = n1 whose value never leaves the token.
pub const CKK_TANDEM_SHARE: u64 = 0x8000_0000 | 0x5444_0001;
/// hsm-sim's vendor mechanism: `C_Sign(x)` with a share key returns `x^d1'' mod n1`
/// (constant time), left-padded to the modulus length.
pub const CKM_TANDEM_SHARE_EXP: u64 = 0x8000_0000 | 0x5444_0001;

/// Label of the key-encryption key (AES-256 token object).
pub const KEK_LABEL: &str = "tandem-kek";
/// Label of the key-transport RSA key pair (token objects).
pub const TRANSPORT_KEY_LABEL: &str = "tandem-transport";

/// Blob format version understood by this module.
const BLOB_VERSION: u8 = 0x01;
/// Algorithm id: AES-256-GCM under the KEK, 12-byte IV, 16-byte tag.
const ALG_AES_GCM_KEK: u8 = 0x01;
/// Algorithm id: RSA private key, PKCS#8, wrapped with AES-KW-PAD (RFC 5649) under the KEK.
const ALG_AES_KWP_KEK: u8 = 0x02;

const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const GCM_TAG_BITS: u64 = 128;
/// The RSA public exponent of every key this module generates.
const PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];
/// Sessions kept open in the pool when idle; more are opened on demand and closed on return.
const MAX_IDLE_SESSIONS: usize = 8;
/// Unwrapped server keys kept in the HSM between signatures (objects in its memory).
const SERVER_KEY_CACHE: usize = 1024;
/// Calls left running past their deadline ([`Hsm::bounded`]) before new bounded calls are
/// refused at once: a stuck HSM must not pile up threads without end.
const MAX_OVERDUE_CALLS: usize = 16;

/// One error type for the HSM layer.
///
/// Decryption and authentication failures (wrong AAD, tampered ciphertext, a wrapped content
/// key that does not decrypt) are one opaque variant, [`HsmError::Decryption`], so that
/// callers cannot turn them into an oracle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// A PKCS#11 function returned an error.
    #[error("PKCS#11 C_{function:?} failed: CKR {rv:?}")]
    Pkcs11 { function: Function, rv: RvError },
    /// Loading the module or converting a value failed outside a PKCS#11 call.
    #[error("PKCS#11 module error: {0}")]
    Module(#[source] CryptokiError),
    /// No initialised token carries the configured label.
    #[error("no PKCS#11 token labelled {label:?}")]
    TokenNotFound { label: String },
    /// A required object is not on the token.
    #[error("HSM object {label:?} ({kind}) is missing; run ensure_objects first")]
    ObjectMissing {
        label: &'static str,
        kind: &'static str,
    },
    /// More than one token or object carries a label that must be unique.
    #[error("more than one HSM {kind} labelled {label:?}")]
    Ambiguous { label: String, kind: &'static str },
    /// A wrapped server key does not belong to the expected modulus.
    #[error("the wrapped server key does not match the expected modulus")]
    WrongKey,
    /// A blob has an unknown version or algorithm or a wrong size.
    #[error("bad blob: {0}")]
    BadBlob(&'static str),
    /// Decryption or authentication failed (deliberately without detail).
    #[error("decryption failed")]
    Decryption,
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The token PIN could not be obtained. Names the source, never the value.
    #[error("token PIN unavailable from {from}: {reason}")]
    Pin { from: String, reason: String },
    /// A value read from the token is not what PKCS#11 promises.
    #[error("unexpected value from the token: {0}")]
    Token(&'static str),
    /// No CA key pair with this label is on the token.
    #[error("CA key {label:?} is not on the token; run ensure_ca_key first")]
    CaKeyMissing { label: String },
    /// A CA key with this label exists but is not of the requested kind.
    #[error("CA key {label:?} on the token is {found}, not {expected}")]
    CaKeySpecMismatch {
        label: String,
        found: String,
        expected: CaKeySpec,
    },
    /// A key with this label exists but is no CA key this module can use.
    #[error("HSM key {label:?} is not a supported CA key ({found})")]
    CaKeyUnsupported { label: String, found: String },
    /// Test hook: `TANDEM_TEST_FAIL_CA_SIGN` is set, so [`Hsm::ca_sign`] fails on purpose.
    #[error("injected test fault: CA signing disabled by TANDEM_TEST_FAIL_CA_SIGN")]
    InjectedFault,
    /// Test hook: the file named by `TANDEM_TEST_FAIL_SIGN_RAW` exists, so
    /// [`Hsm::sign_raw`] fails on purpose.
    #[error("injected test fault: raw RSA operation disabled by TANDEM_TEST_FAIL_SIGN_RAW")]
    InjectedSignRawFault,
    /// The token does not fit `hsm.share_exponentiation` (see
    /// [`Hsm::use_share_exponentiation`]); the message says what to change.
    #[error("{0}")]
    ShareMode(String),
    /// A bounded call ([`Hsm::bounded`]) did not finish in time; it was left running.
    #[error("the HSM did not answer within {after_ms} ms")]
    Timeout { after_ms: u64 },
    /// Too many earlier calls are still running past their deadline: the HSM is stuck, so
    /// no new call is started.
    #[error("the HSM is not answering ({overdue} calls are overdue)")]
    Unresponsive { overdue: usize },
    /// A bounded call's worker thread panicked or could not be started.
    #[error("the HSM call could not run: {0}")]
    Worker(&'static str),
}

impl HsmError {
    /// The PKCS#11 return value, if this error came from a PKCS#11 call.
    pub fn rv(&self) -> Option<RvError> {
        match self {
            HsmError::Pkcs11 { rv, .. } => Some(*rv),
            _ => None,
        }
    }

    /// Refused input (a blob that does not decrypt, the wrong key, a malformed argument),
    /// as opposed to a failure of the module.
    pub fn is_refused_input(&self) -> bool {
        matches!(
            self,
            HsmError::Decryption
                | HsmError::WrongKey
                | HsmError::BadBlob(_)
                | HsmError::InvalidArgument(_)
        )
    }

    /// The PKCS#11 function that failed, if any.
    pub fn function(&self) -> Option<Function> {
        match self {
            HsmError::Pkcs11 { function, .. } => Some(*function),
            _ => None,
        }
    }
}

impl From<CryptokiError> for HsmError {
    fn from(err: CryptokiError) -> Self {
        match err {
            CryptokiError::Pkcs11(rv, function) => HsmError::Pkcs11 { function, rv },
            other => HsmError::Module(other),
        }
    }
}

/// The user PIN of the token. Read from a file or an environment variable, never from a
/// command-line argument.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TokenPin(String);

impl TokenPin {
    /// Wraps a PIN the caller already holds.
    pub fn new(pin: String) -> Self {
        TokenPin(pin)
    }

    /// Reads the PIN from a file. One trailing newline (`\n` or `\r\n`) is removed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, HsmError> {
        let path = path.as_ref();
        let from = || format!("file {}", path.display());
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| HsmError::Pin {
            from: from(),
            reason: e.kind().to_string(),
        })?);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    "the token PIN file is readable by group or others; use mode 0600"
                );
            }
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| HsmError::Pin {
            from: from(),
            reason: "not UTF-8".into(),
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        Self::checked(text, from)
    }

    /// Reads the PIN from an environment variable.
    pub fn from_env(var: &str) -> Result<Self, HsmError> {
        let from = || format!("environment variable {var}");
        let value = Zeroizing::new(std::env::var(var).map_err(|e| HsmError::Pin {
            from: from(),
            reason: match e {
                std::env::VarError::NotPresent => "not set".into(),
                std::env::VarError::NotUnicode(_) => "not UTF-8".into(),
            },
        })?);
        Self::checked(&value, from)
    }

    fn checked(text: &str, from: impl Fn() -> String) -> Result<Self, HsmError> {
        if text.is_empty() {
            return Err(HsmError::Pin {
                from: from(),
                reason: "empty".into(),
            });
        }
        // Exact capacity, so that the later conversion into a boxed str does not reallocate
        // and leave an unzeroized copy behind.
        let mut pin = String::with_capacity(text.len());
        pin.push_str(text);
        Ok(TokenPin(pin))
    }

    /// The only way to read the PIN.
    pub(crate) fn expose_secret(&self) -> &str {
        &self.0
    }

    fn to_auth_pin(&self) -> AuthPin {
        let mut copy = String::with_capacity(self.expose_secret().len());
        copy.push_str(self.expose_secret());
        // `AuthPin` (secrecy) zeroizes its own copy on drop.
        AuthPin::from(copy)
    }
}

impl fmt::Debug for TokenPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenPin(<redacted>)")
    }
}

/// Where the HSM is and how to log in.
#[derive(Debug)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module (`.so`).
    pub module_path: PathBuf,
    /// Label of the token to use.
    pub token_label: String,
    /// User PIN of that token.
    pub user_pin: TokenPin,
}

/// Whether [`Hsm::ensure_objects`] created an object or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectStatus {
    Created,
    Found,
}

/// Key type and size of a CA key pair in the HSM.
///
/// Signatures made by [`Hsm::ca_sign`]: `sha384WithRSAEncryption` (PKCS#1 v1.5) for the
/// RSA kinds, `ecdsa-with-SHA384` (DER `Ecdsa-Sig-Value`) for P-384.
///
/// Serde names: `rsa4096`, `rsa3072`, `ec-p384` (`rsa-4096` and `rsa-3072` are accepted
/// as well).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CaKeySpec {
    /// RSA, 4096-bit modulus, e = 65537. The production default.
    #[default]
    #[serde(alias = "rsa-4096")]
    Rsa4096,
    /// RSA, 3072-bit modulus, e = 65537. Faster to generate; used by tests.
    #[serde(alias = "rsa-3072")]
    Rsa3072,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
}

impl CaKeySpec {
    /// The RSA modulus size, or `None` for EC.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            CaKeySpec::Rsa4096 => Some(4096),
            CaKeySpec::Rsa3072 => Some(3072),
            CaKeySpec::EcP384 => None,
        }
    }
}

impl fmt::Display for CaKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaKeySpec::Rsa4096 => "RSA-4096",
            CaKeySpec::Rsa3072 => "RSA-3072",
            CaKeySpec::EcP384 => "EC P-384",
        })
    }
}

/// DER of the OID prime256v1 (1.2.840.10045.3.1.7): the CKA_EC_PARAMS of a P-256 key.
const PRIME256V1_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// Length of an uncompressed P-256 point.
const P256_POINT_LEN: usize = 65;
/// DER of `SubjectPublicKeyInfo` for P-256 up to the point: SEQUENCE (89 bytes) {
/// SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, BIT STRING (66 bytes, no unused bits) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER of the OID secp384r1 (1.3.132.0.34): the CKA_EC_PARAMS of a P-384 key.
const SECP384R1_PARAMS: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// Length of an uncompressed P-384 point, `0x04 || X || Y`.
const P384_POINT_LEN: usize = 97;
/// Length of one P-384 scalar (r or s).
const P384_SCALAR_LEN: usize = 48;
/// DER of `SubjectPublicKeyInfo` for P-384 up to the point: SEQUENCE (118 bytes) {
/// SEQUENCE { OID id-ecPublicKey 1.2.840.10045.2.1, OID secp384r1 }, BIT STRING (98 bytes,
/// no unused bits) }. The 97-byte uncompressed point follows.
const P384_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// Test hook: when the environment variable `TANDEM_TEST_FAIL_CA_SIGN` is set (to any
/// value) in the process, [`Hsm::ca_sign`] fails with [`HsmError::InjectedFault`] without
/// touching the HSM. Read once per process. For acceptance tests of "the HSM cannot sign";
/// never set it in production.
pub const TEST_FAIL_CA_SIGN_ENV: &str = "TANDEM_TEST_FAIL_CA_SIGN";

fn ca_sign_fault_injected() -> bool {
    static FAIL: OnceLock<bool> = OnceLock::new();
    *FAIL.get_or_init(|| std::env::var_os(TEST_FAIL_CA_SIGN_ENV).is_some())
}

/// Test hook: when the environment variable `TANDEM_TEST_FAIL_SIGN_RAW` names a file and
/// that file exists, [`Hsm::sign_raw`] (the server's partial signature) fails with
/// [`HsmError::InjectedSignRawFault`] without touching the HSM; tests switch the fault on and
/// off by creating and removing the file. Never set it in production.
pub const TEST_FAIL_SIGN_RAW_ENV: &str = "TANDEM_TEST_FAIL_SIGN_RAW";

fn sign_raw_fault_injected() -> bool {
    static FLAG: OnceLock<Option<PathBuf>> = OnceLock::new();
    FLAG.get_or_init(|| std::env::var_os(TEST_FAIL_SIGN_RAW_ENV).map(PathBuf::from))
        .as_deref()
        .is_some_and(Path::exists)
}

/// What [`Hsm::ensure_objects`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectsReport {
    /// The key-encryption key "tandem-kek".
    pub kek: ObjectStatus,
    /// The key-transport key pair "tandem-transport".
    pub transport_key: ObjectStatus,
    /// The reply key "tandem-reply-key" ([`reply_key`]).
    pub reply_key: ObjectStatus,
    /// The transport key on the token (may differ from the requested one when the key was
    /// found).
    pub transport_key_spec: TransportKeySpec,
}

/// The kind of key-transport key (`keys.transport_key` / `keys.transport_key_bits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKeySpec {
    /// EC P-256: envelopes use ECDH (algorithm `0x02`). The default.
    EcP256,
    /// RSA of that many bits: envelopes use RSA-OAEP (algorithm `0x01`).
    Rsa(usize),
}

impl fmt::Display for TransportKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportKeySpec::EcP256 => f.write_str("EC P-256"),
            TransportKeySpec::Rsa(bits) => write!(f, "RSA-{bits}"),
        }
    }
}

/// The transport private key's handle and what is needed to use it.
#[derive(Debug, Clone, Copy)]
struct TransportKey {
    handle: ObjectHandle,
    /// `None` for RSA; the public point for EC P-256 (the HKDF input needs it).
    ec_point: Option<[u8; P256_POINT_LEN]>,
}

/// A per-account server RSA key as stored in the database. `wrapped_private_key` is only
/// usable inside this HSM (sealed by the KEK); `modulus` is public.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey {
    /// Big-endian modulus `n2`, without leading zeros.
    pub modulus: Vec<u8>,
    /// `[0x01, 0x02] || AES-KW-PAD(KEK, PKCS#8 private key)`.
    pub wrapped_private_key: Vec<u8>,
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKey")
            .field("modulus_bits", &bit_length(&self.modulus))
            .field("wrapped_private_key_len", &self.wrapped_private_key.len())
            .finish()
    }
}

/// Handle on one token of one PKCS#11 module. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Hsm {
    inner: Arc<Inner>,
}

impl fmt::Debug for Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hsm")
            .field("token_label", &self.inner.token_label)
            .finish_non_exhaustive()
    }
}

struct Inner {
    ctx: Pkcs11,
    slot: Slot,
    token_label: String,
    /// The module offers [`CKM_TANDEM_SHARE_EXP`] (hsm-sim): d1'' is used inside the token.
    share_mechanism: bool,
    /// `hsm.share_exponentiation` is `software` or `token-rsa`: the vendor mechanism is not
    /// used ([`Hsm::use_share_exponentiation`]).
    vendor_share_off: std::sync::atomic::AtomicBool,
    /// Handles of `token-rsa` share key token objects by id (token_share.rs).
    share_keys: Mutex<HashMap<[u8; 16], token_share::CachedShareKey>>,
    /// The user PIN, to log in again after the token was removed and came back.
    pin: TokenPin,
    /// Idle sessions. A `std::sync::Mutex`: held only to push or pop, never across a call
    /// into the module (and there is no `.await` in this module at all).
    idle: Mutex<Vec<Session>>,
    /// Cached handles of the token objects (valid across sessions of this application).
    handles: Mutex<CachedHandles>,
    /// Serialises `ensure_objects` within this process.
    provisioning: Mutex<()>,
    /// Bounded calls still running past their deadline.
    overdue: AtomicUsize,
    /// Unwrapped server keys kept in the HSM (`sign_raw`).
    server_keys: RwLock<KeyCache>,
    /// The session that holds the cached server keys; used for nothing else, so no failure
    /// of another operation closes it.
    keeper: Mutex<Option<PooledSession>>,
    /// Keeps the user logged in: the login ends when the application's last session closes.
    /// Declared last so it is closed after the pooled sessions. Never used for operations.
    _login_session: Mutex<Session>,
}

/// Handles of unwrapped server keys (sensitive, non-extractable session objects of the
/// keeper session) with their moduli, by the SHA-256 of their wrapped blob, least recently
/// used first out. Behind an `RwLock`: a signature holds the read lock while it uses a
/// handle, and an object is only destroyed under the write lock, so no key is destroyed
/// while a signature uses it. A handle may still have died with the keeper session (the
/// token was removed), and the module may then reuse it: users check the modulus first.
#[derive(Default)]
struct KeyCache {
    entries: HashMap<[u8; 32], CachedKey>,
    clock: AtomicU64,
}

/// A cached key.
struct CachedKey {
    handle: ObjectHandle,
    modulus: Vec<u8>,
    used: AtomicU64,
}

impl KeyCache {
    /// The entry for `id`, marked as used now (under the read lock).
    fn get(&self, id: &[u8; 32]) -> Option<&CachedKey> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let e = self.entries.get(id)?;
        e.used.store(now, Ordering::Relaxed);
        Some(e)
    }

    /// Inserts; returns the entry evicted to make room, if any.
    fn insert(
        &mut self,
        id: [u8; 32],
        handle: ObjectHandle,
        modulus: Vec<u8>,
    ) -> Option<CachedKey> {
        let mut evicted = None;
        if self.entries.len() >= SERVER_KEY_CACHE
            && !self.entries.contains_key(&id)
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used.load(Ordering::Relaxed))
                .map(|(k, _)| *k)
        {
            evicted = self.entries.remove(&oldest);
        }
        let used = AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed));
        if let Some(old) = self.entries.insert(
            id,
            CachedKey {
                handle,
                modulus,
                used,
            },
        ) && old.handle != handle
        {
            evicted = evicted.or(Some(old));
        }
        evicted
    }
}

#[derive(Default)]
struct CachedHandles {
    kek: Option<ObjectHandle>,
    /// The reply key ([`reply_key`]).
    reply: Option<ObjectHandle>,
    transport: Option<TransportKey>,
    /// CA private keys by label, with their kind.
    ca: HashMap<String, (ObjectHandle, CaKeySpec)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data (a list of sessions, cached handles) stays consistent even if a
    // holder panicked, so poisoning is ignored.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // As for `lock`: the cache stays consistent (every change is one map operation).
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Loaded and initialised modules, one per canonical path, for the whole process.
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

fn module_context(path: &Path) -> Result<Pkcs11, HsmError> {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(ctx) = modules.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&key)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        // Someone else in this process initialised it; that is fine, it stays initialised.
        Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(e.into()),
    }
    modules.insert(key, ctx.clone());
    Ok(ctx)
}

/// Initialises a fresh token (the first slot without one) with `label`, the SO PIN and the
/// user PIN, for modules the server provisions itself (hsm-sim). Does nothing when a token
/// with this label exists already. Returns whether it initialised one.
pub fn provision_token(
    module: &Path,
    label: &str,
    so_pin: &TokenPin,
    user_pin: &TokenPin,
) -> Result<bool, HsmError> {
    let ctx = module_context(module)?;
    for slot in ctx.get_slots_with_initialized_token()? {
        if ctx.get_token_info(slot)?.label().trim_end() == label {
            return Ok(false);
        }
    }
    let slot = ctx
        .get_slots_with_token()?
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|i| !i.token_initialized()))
        .ok_or_else(|| HsmError::TokenNotFound {
            label: format!("{label} (no uninitialised token to provision)"),
        })?;
    ctx.init_token(slot, &so_pin.to_auth_pin(), label)?;
    let session = ctx.open_rw_session(slot)?;
    session.login(UserType::So, Some(&so_pin.to_auth_pin()))?;
    session.init_pin(&user_pin.to_auth_pin())?;
    session.logout()?;
    Ok(true)
}

/// A session checked out of the pool. Closed instead of returned when `discard` is set.
struct PooledSession {
    session: Session,
    discard: std::cell::Cell<bool>,
}

/// Destroys a session object when dropped (also on error paths). If destroying fails, the
/// session is discarded, which destroys its session objects.
struct SessionObject<'s> {
    session: &'s PooledSession,
    handle: ObjectHandle,
}

impl<'s> SessionObject<'s> {
    fn new(session: &'s PooledSession, handle: ObjectHandle) -> Self {
        SessionObject { session, handle }
    }
}

impl Drop for SessionObject<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.session.session.destroy_object(self.handle) {
            tracing::warn!(error = %HsmError::from(err), "could not destroy a session object; closing its session");
            self.session.discard.set(true);
        }
    }
}

impl Hsm {
    /// Loads the module (once per process), finds the token by label and logs in as user.
    ///
    /// The login belongs to the whole process (PKCS#11 application). If this process is
    /// already logged in to the token (another `Hsm` for it is open), the module answers
    /// `CKR_USER_ALREADY_LOGGED_IN` without checking the PIN again; that is accepted.
    pub fn open(config: &HsmConfig) -> Result<Hsm, HsmError> {
        let _span = tracing::info_span!("hsm.open", token = %config.token_label).entered();
        let ctx = module_context(&config.module_path)?;

        let mut found = None;
        for slot in ctx.get_slots_with_initialized_token()? {
            let info = ctx.get_token_info(slot)?;
            if info.label().trim_end() == config.token_label {
                if found.is_some() {
                    return Err(HsmError::Ambiguous {
                        label: config.token_label.clone(),
                        kind: "token",
                    });
                }
                found = Some(slot);
            }
        }
        let slot = found.ok_or_else(|| HsmError::TokenNotFound {
            label: config.token_label.clone(),
        })?;

        let login_session = ctx.open_rw_session(slot)?;
        let pin = config.user_pin.to_auth_pin();
        match login_session.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            // Another `Hsm` on this token in this process logged in already.
            Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(e.into()),
        }
        drop(pin);
        let pin = TokenPin::new(config.user_pin.expose_secret().to_owned());

        let share_mechanism = MechanismType::new_vendor_defined(CKM_TANDEM_SHARE_EXP)
            .is_ok_and(|m| ctx.get_mechanism_info(slot, m).is_ok());
        if share_mechanism {
            tracing::info!("the HSM computes split-share exponentiations in the token");
        }
        Ok(Hsm {
            inner: Arc::new(Inner {
                ctx,
                slot,
                share_mechanism,
                vendor_share_off: std::sync::atomic::AtomicBool::new(false),
                share_keys: Mutex::new(HashMap::new()),
                pin,
                token_label: config.token_label.clone(),
                idle: Mutex::new(Vec::new()),
                handles: Mutex::new(CachedHandles::default()),
                provisioning: Mutex::new(()),
                _login_session: Mutex::new(login_session),
                overdue: AtomicUsize::new(0),
                server_keys: RwLock::new(KeyCache::default()),
                keeper: Mutex::new(None),
            }),
        })
    }

    /// Creates the KEK and the transport key pair if they are missing. Idempotent.
    ///
    /// Not safe against two *processes* provisioning the same token at the same moment
    /// (duplicates are then reported as [`HsmError::Ambiguous`] by later calls); run it from
    /// one place, e.g. `tandem hsm init`.
    pub fn ensure_objects(&self, transport: TransportKeySpec) -> Result<ObjectsReport, HsmError> {
        let _span = tracing::info_span!("hsm.ensure_objects").entered();
        if let TransportKeySpec::Rsa(bits) = transport
            && (!(2048..=4096).contains(&bits) || !bits.is_multiple_of(8))
        {
            return Err(HsmError::InvalidArgument(
                "transport key bits must be a multiple of 8 in 2048..=4096",
            ));
        }
        let _provisioning = lock(&self.inner.provisioning);
        self.with_session(|s| {
            let kek = match find_unique(s, KEK_LABEL, ObjectClass::SECRET_KEY)? {
                Some(_) => ObjectStatus::Found,
                None => {
                    s.session.generate_key(
                        &Mechanism::AesKeyGen,
                        &[
                            Attribute::Class(ObjectClass::SECRET_KEY),
                            Attribute::KeyType(KeyType::AES),
                            Attribute::ValueLen(32.into()),
                            Attribute::Label(KEK_LABEL.as_bytes().to_vec()),
                            Attribute::Id(KEK_LABEL.as_bytes().to_vec()),
                            Attribute::Token(true),
                            Attribute::Private(true),
                            Attribute::Sensitive(true),
                            Attribute::Extractable(false),
                            Attribute::Modifiable(false),
                            Attribute::Encrypt(true),
                            Attribute::Decrypt(true),
                            Attribute::Wrap(true),
                            Attribute::Unwrap(true),
                            Attribute::Sign(false),
                            Attribute::Verify(false),
                            Attribute::Derive(false),
                        ],
                    )?;
                    tracing::info!(label = KEK_LABEL, "created the key-encryption key");
                    ObjectStatus::Created
                }
            };
            let transport_key = match find_unique(s, TRANSPORT_KEY_LABEL, ObjectClass::PRIVATE_KEY)?
            {
                Some(_) => ObjectStatus::Found,
                None => {
                    let id = TRANSPORT_KEY_LABEL.as_bytes().to_vec();
                    let (mechanism, mut public, private_use) = match transport {
                        TransportKeySpec::Rsa(bits) => (
                            Mechanism::RsaPkcsKeyPairGen,
                            vec![
                                Attribute::ModulusBits(bits.try_into()?),
                                Attribute::PublicExponent(PUBLIC_EXPONENT.to_vec()),
                                Attribute::Encrypt(true),
                                Attribute::Wrap(true),
                            ],
                            [
                                Attribute::Decrypt(true),
                                Attribute::Unwrap(true),
                                Attribute::Derive(false),
                            ],
                        ),
                        TransportKeySpec::EcP256 => (
                            Mechanism::EccKeyPairGen,
                            vec![
                                Attribute::EcParams(PRIME256V1_PARAMS.to_vec()),
                                Attribute::Derive(true),
                            ],
                            [
                                Attribute::Decrypt(false),
                                Attribute::Unwrap(false),
                                Attribute::Derive(true),
                            ],
                        ),
                    };
                    public.extend([
                        Attribute::Token(true),
                        Attribute::Private(false),
                        Attribute::Label(id.clone()),
                        Attribute::Id(id.clone()),
                        Attribute::Verify(false),
                    ]);
                    let mut private = vec![
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Label(id.clone()),
                        Attribute::Id(id),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Modifiable(false),
                        Attribute::Sign(false),
                    ];
                    private.extend(private_use);
                    s.session.generate_key_pair(&mechanism, &public, &private)?;
                    tracing::info!(
                        label = TRANSPORT_KEY_LABEL,
                        spec = %transport,
                        "created the key-transport key pair"
                    );
                    ObjectStatus::Created
                }
            };
            let found = self.transport_private(s)?;
            let transport_key_spec = match found.ec_point {
                Some(_) => TransportKeySpec::EcP256,
                None => TransportKeySpec::Rsa(bit_length(&read_modulus(s, found.handle)?)),
            };
            let reply_key = self.ensure_reply_key_in(s)?;
            Ok(ObjectsReport {
                kek,
                transport_key,
                reply_key,
                transport_key_spec,
            })
        })
    }

    /// The transport public key as DER `SubjectPublicKeyInfo`, for devices to encrypt to:
    /// `id-ecPublicKey` on prime256v1, or `rsaEncryption`. RSA is read from the private key
    /// object; EC from the public key object of the same label, whose point the private
    /// key's first use checks by an ECDH ([`Hsm::open_envelope`] binds it into the HKDF).
    pub fn transport_public_key_der(&self) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.transport_public_key_der").entered();
        self.with_session(|s| {
            let key = self.transport_private(s)?;
            if let Some(point) = key.ec_point {
                let mut der = Vec::with_capacity(P256_SPKI_PREFIX.len() + point.len());
                der.extend_from_slice(&P256_SPKI_PREFIX);
                der.extend_from_slice(&point);
                return Ok(der);
            }
            let (n, e) = read_rsa_public(s, key.handle)?
                .ok_or(HsmError::Token("transport key lacks modulus or exponent"))?;
            rsa_spki_der(&n, &e)
        })
    }

    /// Opens a device envelope (client-core `envelope`); `ciphertext_and_tag` is
    /// AES-256-GCM with `iv` and `aad` and a 16-byte tag. The envelope's algorithm must be
    /// the transport key's.
    ///
    /// - [`EnvelopeKey::EcdhP256`]: `CKM_ECDH1_DERIVE` (`CKD_NULL`) of the device's
    ///   ephemeral point with the transport key gives the shared x coordinate as a
    ///   short-lived session object, read once and destroyed; HKDF-SHA256 and AES-GCM run in
    ///   software. The shared secret opens only this envelope, whose plaintext the server
    ///   receives anyway, so it leaving the HSM exposes nothing more (and SoftHSM 2.6.1 has
    ///   no KDF for ECDH). A point off the curve is refused by the HSM.
    /// - [`EnvelopeKey::RsaOaep`]: an AES-256 content key encrypted with RSA-OAEP (SHA-1,
    ///   MGF1-SHA-1, empty label); the content key exists only as a sensitive,
    ///   non-extractable session object inside the HSM and is destroyed before returning.
    ///
    /// Every failure to derive, unwrap or authenticate is [`HsmError::Decryption`], without
    /// detail.
    pub fn open_envelope(
        &self,
        key: EnvelopeKey<'_>,
        iv: &[u8; 12],
        ciphertext_and_tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let _span = tracing::debug_span!("hsm.open_envelope").entered();
        if ciphertext_and_tag.len() < GCM_TAG_LEN {
            return Err(HsmError::Decryption);
        }
        let wrapped_key = match key {
            EnvelopeKey::RsaOaep(wrapped) => wrapped,
            EnvelopeKey::EcdhP256(point) => {
                let (shared, recipient) = self.with_session(|s| {
                    let transport = self.transport_private(s)?;
                    let recipient = transport.ec_point.ok_or(HsmError::Decryption)?;
                    Ok((self.ecdh_derive(s, transport.handle, point)?, recipient))
                })?;
                let cek = envelope::ecdh_content_key(&shared, point, &recipient)
                    .map_err(|_| HsmError::Decryption)?;
                return envelope::decrypt_content(&cek, iv, ciphertext_and_tag, aad)
                    .map_err(|_| HsmError::Decryption);
            }
        };
        self.with_session(|s| {
            let content_key = self.unwrap_content_key(s, wrapped_key, Attribute::Decrypt(true))?;
            let len = s
                .session
                .get_attributes(content_key.handle, &[AttributeType::ValueLen])?;
            // Devices send AES-256 content keys. SoftHSM 2.6.1 leaves CKA_VALUE_LEN at 0 on
            // unwrap (and refuses it in the template), so only a reported length is checked.
            if matches!(len.first(), Some(Attribute::ValueLen(l)) if !matches!(u64::from(*l), 0 | 32))
            {
                return Err(HsmError::Decryption);
            }
            gcm_decrypt(s, content_key.handle, iv, ciphertext_and_tag, aad)
                .map_err(|e| self.classify(e, false))
        })
    }

    /// Encrypts a secret for storage: AES-256-GCM under the KEK inside the HSM with a random
    /// 12-byte IV from the HSM. Output: `[0x01, 0x01] || iv || ciphertext || tag`.
    pub fn seal_at_rest(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.seal_at_rest").entered();
        self.with_session(|s| {
            let kek = self.kek(s)?;
            let mut iv = [0u8; GCM_IV_LEN];
            s.session.generate_random_slice(&mut iv)?;
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, aad, GCM_TAG_BITS.into())?;
            let sealed = s
                .session
                .encrypt(&Mechanism::AesGcm(params), kek, plaintext)
                .map_err(|e| self.classify(e, false))?;
            if sealed.len() != plaintext.len() + GCM_TAG_LEN {
                return Err(HsmError::Token("unexpected AES-GCM output length"));
            }
            let mut blob = Vec::with_capacity(2 + GCM_IV_LEN + sealed.len());
            blob.extend_from_slice(&[BLOB_VERSION, ALG_AES_GCM_KEK]);
            blob.extend_from_slice(&iv);
            blob.extend_from_slice(&sealed);
            Ok(blob)
        })
    }

    /// Whether the module computes `x^d1'' mod n1` inside the token
    /// ([`CKM_TANDEM_SHARE_EXP`], offered by hsm-sim). Then [`Hsm::share_exp`] is used and
    /// `d1''` never exists in plaintext outside the token.
    pub fn has_share_mechanism(&self) -> bool {
        self.inner.share_mechanism && !self.inner.vendor_share_off.load(Ordering::SeqCst)
    }

    /// `x^d1'' mod n1` inside the token: the sealed share (a [`Hsm::seal_at_rest`] blob with
    /// its AAD) is unwrapped under the KEK with AES-GCM into a sensitive, non-extractable
    /// session object of type [`CKK_TANDEM_SHARE`] bound to `modulus`, used once with
    /// [`CKM_TANDEM_SHARE_EXP`] and destroyed. `x` must be reduced (`x < n1`). Only for
    /// modules that offer the mechanism ([`Hsm::has_share_mechanism`]).
    pub fn share_exp(
        &self,
        blob: &[u8],
        aad: &[u8],
        modulus: &[u8],
        x: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.share_exp").entered();
        let body = parse_header(blob, ALG_AES_GCM_KEK)?;
        if body.len() < GCM_IV_LEN + GCM_TAG_LEN {
            return Err(HsmError::BadBlob("sealed blob too short"));
        }
        let (iv, sealed) = body.split_at(GCM_IV_LEN);
        let mut iv: [u8; GCM_IV_LEN] = iv
            .try_into()
            .map_err(|_| HsmError::BadBlob("sealed blob too short"))?;
        let key_type = KeyType::new_vendor_defined(CKK_TANDEM_SHARE)?;
        let mechanism = MechanismType::new_vendor_defined(CKM_TANDEM_SHARE_EXP)?;
        self.with_session(|s| {
            let kek = self.kek(s)?;
            let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())?;
            let share = s
                .session
                .unwrap_key(
                    &Mechanism::AesGcm(params),
                    kek,
                    sealed,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(key_type),
                        Attribute::Modulus(strip_leading_zeros(modulus).to_vec()),
                        Attribute::Token(false),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Sign(true),
                    ],
                )
                .map_err(|e| self.classify(e, true))?;
            let share = SessionObject::new(s, share);
            let exp = Mechanism::VendorDefined(
                cryptoki::mechanism::vendor_defined::VendorDefinedMechanism::new::<()>(
                    mechanism, None,
                ),
            );
            Ok(s.session.sign(&exp, share.handle, x)?)
        })
    }

    /// Inverse of [`Hsm::seal_at_rest`]. Unknown versions, algorithms and short blobs are
    /// [`HsmError::BadBlob`]; a wrong AAD or a modified blob is [`HsmError::Decryption`].
    pub fn open_at_rest(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let _span = tracing::debug_span!("hsm.open_at_rest").entered();
        let body = parse_header(blob, ALG_AES_GCM_KEK)?;
        if body.len() < GCM_IV_LEN + GCM_TAG_LEN {
            return Err(HsmError::BadBlob("sealed blob too short"));
        }
        let (iv, sealed) = body.split_at(GCM_IV_LEN);
        let iv: &[u8; GCM_IV_LEN] = iv
            .try_into()
            .map_err(|_| HsmError::BadBlob("sealed blob too short"))?;
        self.with_session(|s| {
            let kek = self.kek(s)?;
            gcm_decrypt(s, kek, iv, sealed, aad).map_err(|e| self.classify(e, false))
        })
    }

    /// Generates a server RSA key pair (e = 65537) in the HSM as session objects, wraps the
    /// private key under the KEK (AES-KW-PAD) and destroys both objects. The private key
    /// never leaves the HSM unwrapped.
    pub fn generate_server_key(&self, bits: usize) -> Result<ServerKey, HsmError> {
        let _span = tracing::debug_span!("hsm.generate_server_key", bits).entered();
        if !(2048..=8192).contains(&bits) || !bits.is_multiple_of(8) {
            return Err(HsmError::InvalidArgument(
                "server key bits must be a multiple of 8 in 2048..=8192",
            ));
        }
        self.with_session(|s| {
            let kek = self.kek(s)?;
            let (public, private) = s.session.generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::Private(false),
                    Attribute::ModulusBits(bits.try_into()?),
                    Attribute::PublicExponent(PUBLIC_EXPONENT.to_vec()),
                    Attribute::Verify(true),
                    Attribute::Encrypt(false),
                    Attribute::Wrap(false),
                ],
                &[
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    // Extractable only so that it can be wrapped under the KEK right away.
                    Attribute::Extractable(true),
                    Attribute::Sign(true),
                    Attribute::Decrypt(false),
                    Attribute::Unwrap(false),
                    Attribute::Derive(false),
                ],
            )?;
            let public = SessionObject::new(s, public);
            let private = SessionObject::new(s, private);
            let modulus = strip_leading_zeros(&read_modulus(s, private.handle)?).to_vec();
            if bit_length(&modulus) != bits {
                return Err(HsmError::Token("generated modulus has the wrong size"));
            }
            let wrapped = s
                .session
                .wrap_key(&Mechanism::AesKeyWrapPad, kek, private.handle)
                .map_err(|e| self.classify(e, false))?;
            drop(private);
            drop(public);
            let mut wrapped_private_key = Vec::with_capacity(2 + wrapped.len());
            wrapped_private_key.extend_from_slice(&[BLOB_VERSION, ALG_AES_KWP_KEK]);
            wrapped_private_key.extend_from_slice(&wrapped);
            Ok(ServerKey {
                modulus,
                wrapped_private_key,
            })
        })
    }

    /// Raw RSA private-key operation `x^d2 mod n2` with a wrapped server key.
    ///
    /// **Hazardous:** no padding is applied; the caller must encode `x` (EMSA-PKCS1-v1_5 or
    /// PSS) before. `x` is reduced modulo `n2` and left-padded to the modulus length. The
    /// key is unwrapped into a sensitive, non-extractable session object whose modulus must
    /// equal `expected_modulus` (else [`HsmError::WrongKey`]), used once and destroyed.
    /// Returns `s2`, left-padded to the modulus length.
    pub fn sign_raw(
        &self,
        wrapped_private_key: &[u8],
        expected_modulus: &[u8],
        x: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.sign_raw").entered();
        if sign_raw_fault_injected() {
            tracing::warn!(
                "raw RSA operation refused: {TEST_FAIL_SIGN_RAW_ENV} (test fault injection)"
            );
            return Err(HsmError::InjectedSignRawFault);
        }
        let wrapped = parse_header(wrapped_private_key, ALG_AES_KWP_KEK)?;
        if wrapped.is_empty() {
            return Err(HsmError::BadBlob("wrapped key is empty"));
        }
        let expected_modulus = strip_leading_zeros(expected_modulus);
        if bit_length(expected_modulus) < 1024 {
            return Err(HsmError::InvalidArgument("modulus too small"));
        }
        let k = expected_modulus.len();
        let n = BigUint::from_bytes_be(expected_modulus);
        let x = left_pad(&(BigUint::from_bytes_be(x) % &n).to_bytes_be(), k)?;

        let id: [u8; 32] = Sha256::digest(wrapped).into();
        self.with_session(|s| {
            // At most: a stale entry dropped, the key unwrapped, then used.
            for _ in 0..3 {
                {
                    let cache = read(&self.inner.server_keys);
                    if let Some(e) = cache.get(&id)
                        // The handle must still name an object with the key's modulus (after
                        // the keeper session died, the module may reuse the handle).
                        && read_modulus(s, e.handle)
                            .is_ok_and(|n| strip_leading_zeros(&n) == e.modulus)
                    {
                        if e.modulus != expected_modulus {
                            return Err(HsmError::WrongKey);
                        }
                        // Under the read lock: nobody destroys the key meanwhile.
                        let signature = s.session.sign(&Mechanism::RsaX509, e.handle, &x)?;
                        return left_pad(strip_leading_zeros(&signature), k);
                    }
                }
                self.unwrap_server_key(id, wrapped, expected_modulus)?;
            }
            Err(HsmError::Token("the unwrapped server key vanished"))
        })
    }

    /// Unwraps a server key into the keeper session, where it stays (a session object of
    /// this application, usable from every session, sensitive and non-extractable) until it
    /// is evicted, forgotten, or the keeper session ends; caches its handle. The least
    /// recently used key makes room when the cache is full.
    fn unwrap_server_key(
        &self,
        id: [u8; 32],
        wrapped: &[u8],
        expected_modulus: &[u8],
    ) -> Result<(), HsmError> {
        let mut keeper = lock(&self.inner.keeper);
        // A keeper session that broke (the token was removed, ...) is replaced once.
        let mut attempt = 0;
        loop {
            attempt += 1;
            if keeper.as_ref().is_none_or(|k| k.discard.get()) {
                // A new keeper session: the old one's objects go with it, under the write
                // lock, so no signature is using one of them.
                {
                    let mut cache = write(&self.inner.server_keys);
                    *keeper = None;
                    cache.entries.clear();
                }
                *keeper = Some(PooledSession {
                    session: self.open_session()?,
                    discard: std::cell::Cell::new(false),
                });
            }
            let Some(k) = keeper.as_ref() else {
                return Err(HsmError::Token("no keeper session"));
            };
            let mut cache = write(&self.inner.server_keys);
            // Another thread may have unwrapped it meanwhile; or its entry is stale.
            if let Some(e) = cache.entries.get(&id) {
                if read_modulus(k, e.handle).is_ok_and(|n| strip_leading_zeros(&n) == e.modulus) {
                    return Ok(());
                }
                cache.entries.remove(&id);
            }
            match self.unwrap_into(k, wrapped, expected_modulus) {
                Ok(handle) => {
                    tracing::debug!("server key unwrapped into the key cache");
                    let evicted = cache.insert(id, handle, expected_modulus.to_vec());
                    // Under the write lock: no signature uses it.
                    if let Some(old) = evicted
                        && read_modulus(k, old.handle)
                            .is_ok_and(|n| strip_leading_zeros(&n) == old.modulus)
                    {
                        let _ = k.session.destroy_object(old.handle);
                    }
                    return Ok(());
                }
                Err(e) if e.is_refused_input() => return Err(e),
                Err(e) => {
                    k.discard.set(true);
                    if attempt >= 2 {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, "the keeper session failed; opening another");
                }
            }
        }
    }

    /// Unwraps a server key into session `k` and checks its modulus; the object is kept.
    fn unwrap_into(
        &self,
        k: &PooledSession,
        wrapped: &[u8],
        expected_modulus: &[u8],
    ) -> Result<ObjectHandle, HsmError> {
        let kek = self.kek(k)?;
        let handle = k
            .session
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                kek,
                wrapped,
                &[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Decrypt(false),
                    Attribute::Unwrap(false),
                    Attribute::Derive(false),
                ],
            )
            .map_err(|e| self.classify(e, true))?;
        let key = SessionObject::new(k, handle);
        let modulus = read_modulus(k, key.handle)?;
        if strip_leading_zeros(&modulus) != expected_modulus {
            return Err(HsmError::WrongKey);
        }
        // Kept (not destroyed on drop).
        std::mem::forget(key);
        Ok(handle)
    }

    /// Destroys the cached unwrapped copy of a server key (`sign_raw`), for example when the
    /// key pair is destroyed. Nothing happens when none is cached.
    pub fn forget_server_key(&self, wrapped_private_key: &[u8]) {
        let Ok(wrapped) = parse_header(wrapped_private_key, ALG_AES_KWP_KEK) else {
            return;
        };
        let id: [u8; 32] = Sha256::digest(wrapped).into();
        let keeper = lock(&self.inner.keeper);
        let mut cache = write(&self.inner.server_keys);
        if let Some(e) = cache.entries.remove(&id)
            && let Some(k) = keeper.as_ref()
            && read_modulus(k, e.handle).is_ok_and(|n| strip_leading_zeros(&n) == e.modulus)
        {
            let _ = k.session.destroy_object(e.handle);
        }
    }

    /// `len` random bytes from the HSM's generator.
    pub fn random(&self, len: usize) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.random", len).entered();
        let mut out = vec![0u8; len];
        if len > 0 {
            self.with_session(|s| Ok(s.session.generate_random_slice(&mut out)?))?;
        }
        Ok(out)
    }

    // ---- CA keys ----

    /// Creates the CA key pair `label` as token objects if it is missing. Idempotent:
    /// returns [`ObjectStatus::Found`] when a key pair of kind `spec` is there already.
    ///
    /// The private key is private, sensitive, non-extractable, non-modifiable and may only
    /// sign (CKA_ALLOWED_MECHANISMS: CKM_SHA384_RSA_PKCS for RSA, CKM_ECDSA for EC); the
    /// public key may only verify. Both carry `label` as CKA_LABEL and CKA_ID. An existing
    /// key of another kind is never replaced: [`HsmError::CaKeySpecMismatch`]. As with
    /// [`Hsm::ensure_objects`], run it from one process at a time.
    pub fn ensure_ca_key(&self, label: &str, spec: CaKeySpec) -> Result<ObjectStatus, HsmError> {
        let _span = tracing::info_span!("hsm.ensure_ca_key", label, spec = %spec).entered();
        check_ca_label(label)?;
        let _provisioning = lock(&self.inner.provisioning);
        self.with_session(|s| {
            if let Some(private) = find_unique(s, label, ObjectClass::PRIVATE_KEY)? {
                let found = describe_ca_key(s, private)?;
                if found != Ok(spec) {
                    return Err(HsmError::CaKeySpecMismatch {
                        label: label.to_owned(),
                        found: found.map_or_else(|other| other, |found| found.to_string()),
                        expected: spec,
                    });
                }
                if find_unique(s, label, ObjectClass::PUBLIC_KEY)?.is_none() {
                    return Err(HsmError::Token("CA private key without its public key"));
                }
                lock(&self.inner.handles)
                    .ca
                    .insert(label.to_owned(), (private, spec));
                return Ok(ObjectStatus::Found);
            }
            if find_unique(s, label, ObjectClass::PUBLIC_KEY)?.is_some() {
                return Err(HsmError::Token("CA public key without its private key"));
            }

            let id = label.as_bytes().to_vec();
            let (mechanism, mut public_template, allowed) = match spec.rsa_bits() {
                Some(bits) => (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits(bits.try_into()?),
                        Attribute::PublicExponent(PUBLIC_EXPONENT.to_vec()),
                        Attribute::Encrypt(false),
                        Attribute::Wrap(false),
                    ],
                    MechanismType::SHA384_RSA_PKCS,
                ),
                None => (
                    Mechanism::EccKeyPairGen,
                    vec![
                        Attribute::EcParams(SECP384R1_PARAMS.to_vec()),
                        Attribute::Derive(false),
                    ],
                    MechanismType::ECDSA,
                ),
            };
            public_template.extend([
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(id.clone()),
                Attribute::Id(id.clone()),
                Attribute::Modifiable(false),
                Attribute::Verify(true),
            ]);
            let private_template = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(id.clone()),
                Attribute::Id(id),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Modifiable(false),
                Attribute::Sign(true),
                Attribute::SignRecover(false),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
                Attribute::AllowedMechanisms(vec![allowed]),
            ];
            let (_public, private) =
                s.session
                    .generate_key_pair(&mechanism, &public_template, &private_template)?;
            if describe_ca_key(s, private)? != Ok(spec) {
                return Err(HsmError::Token(
                    "generated CA key is not of the requested kind",
                ));
            }
            lock(&self.inner.handles)
                .ca
                .insert(label.to_owned(), (private, spec));
            tracing::info!(label, spec = %spec, "created a CA key pair");
            Ok(ObjectStatus::Created)
        })
    }

    /// The kind of the existing CA key `label`: RSA by modulus size, EC by CKA_EC_PARAMS.
    /// [`HsmError::CaKeyMissing`] if there is none, [`HsmError::CaKeyUnsupported`] for
    /// other sizes and curves.
    pub fn ca_key_spec(&self, label: &str) -> Result<CaKeySpec, HsmError> {
        let _span = tracing::debug_span!("hsm.ca_key_spec", label).entered();
        check_ca_label(label)?;
        self.with_session(|s| Ok(self.ca_private(s, label)?.1))
    }

    /// The DER `SubjectPublicKeyInfo` of the CA key `label`: `rsaEncryption` (NULL
    /// parameters) from the modulus and exponent of the private key object, or
    /// `id-ecPublicKey` with `namedCurve secp384r1` and the uncompressed point from the
    /// public key object (CKA_EC_POINT, a DER OCTET STRING, unwrapped).
    pub fn ca_public_key_der(&self, label: &str) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.ca_public_key_der", label).entered();
        check_ca_label(label)?;
        self.with_session(|s| {
            let (private, spec) = self.ca_private(s, label)?;
            if spec.rsa_bits().is_some() {
                let (n, e) = read_rsa_public(s, private)
                    .map_err(|e| self.classify(e, false))?
                    .ok_or(HsmError::Token("CA key lacks modulus or exponent"))?;
                return rsa_spki_der(&n, &e);
            }
            let public = find_unique(s, label, ObjectClass::PUBLIC_KEY)?
                .ok_or(HsmError::Token("CA private key without its public key"))?;
            let point = read_ec_point(
                s,
                public,
                &SECP384R1_PARAMS,
                P384_POINT_LEN,
                "CA public key is not a P-384 point",
            )?;
            let point = point.as_slice();
            let mut der = Vec::with_capacity(P384_SPKI_PREFIX.len() + point.len());
            der.extend_from_slice(&P384_SPKI_PREFIX);
            der.extend_from_slice(point);
            Ok(der)
        })
    }

    /// Signs `data` with the CA key `label`, inside the HSM.
    ///
    /// - RSA: CKM_SHA384_RSA_PKCS; returns the PKCS#1 v1.5 signature (modulus length), the
    ///   BIT STRING content of `sha384WithRSAEncryption`.
    /// - EC P-384: SHA-384 of `data` in software, then CKM_ECDSA (SoftHSM 2.6.1 has no
    ///   CKM_ECDSA_SHA384); the raw `r || s` becomes a DER `Ecdsa-Sig-Value`, the BIT
    ///   STRING content of `ecdsa-with-SHA384`.
    ///
    /// Test hook: fails with [`HsmError::InjectedFault`] when `TANDEM_TEST_FAIL_CA_SIGN` is
    /// set (see [`TEST_FAIL_CA_SIGN_ENV`]).
    pub fn ca_sign(&self, label: &str, data: &[u8]) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.ca_sign", label).entered();
        check_ca_label(label)?;
        if ca_sign_fault_injected() {
            tracing::warn!(
                label,
                "CA signing refused: {TEST_FAIL_CA_SIGN_ENV} is set (test fault injection)"
            );
            return Err(HsmError::InjectedFault);
        }
        self.with_session(|s| {
            let (key, spec) = self.ca_private(s, label)?;
            match spec.rsa_bits() {
                Some(bits) => {
                    let signature = s
                        .session
                        .sign(&Mechanism::Sha384RsaPkcs, key, data)
                        .map_err(|e| self.classify(e, false))?;
                    left_pad(strip_leading_zeros(&signature), bits / 8)
                }
                None => {
                    let digest = Sha384::digest(data);
                    let raw = s
                        .session
                        .sign(&Mechanism::Ecdsa, key, &digest)
                        .map_err(|e| self.classify(e, false))?;
                    ecdsa_raw_to_der(&raw)
                }
            }
        })
    }

    /// Runs `f` (HSM work) on a worker thread and waits at most `timeout` for it.
    ///
    /// PKCS#11 calls cannot be cancelled, so a call that misses its deadline is left
    /// running and its result is dropped when it ends; the caller gets
    /// [`HsmError::Timeout`] at once. `f` must therefore not change anything outside the HSM
    /// (the caller records the outcome). While [`MAX_OVERDUE_CALLS`] calls are overdue,
    /// new ones fail at once with [`HsmError::Unresponsive`].
    pub fn bounded<T, E>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&Hsm) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<HsmError> + Send + 'static,
    {
        const RUNNING: u8 = 0;
        const DONE: u8 = 1;
        const ABANDONED: u8 = 2;
        let overdue = self.inner.overdue.load(Ordering::SeqCst);
        if overdue >= MAX_OVERDUE_CALLS {
            return Err(HsmError::Unresponsive { overdue }.into());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let state = Arc::new(AtomicU8::new(RUNNING));
        let hsm = self.clone();
        let worker_state = Arc::clone(&state);
        let span = tracing::Span::current();
        run_on_worker(Box::new(move || {
            /// Marks the call done when the worker ends it, also by a panic.
            struct Done(Hsm, Arc<AtomicU8>);
            impl Drop for Done {
                fn drop(&mut self) {
                    if self.1.swap(DONE, Ordering::SeqCst) == ABANDONED {
                        self.0.inner.overdue.fetch_sub(1, Ordering::SeqCst);
                        tracing::warn!("an overdue HSM call has ended; its result was dropped");
                    }
                }
            }
            let _entered = span.entered();
            let done = Done(hsm, worker_state);
            let result = f(&done.0);
            // The receiver may be gone (deadline missed): the result is dropped.
            let _ = tx.send(result);
            drop(done);
        }))?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Counted before the state flips, so the worker's decrement never comes first.
                self.inner.overdue.fetch_add(1, Ordering::SeqCst);
                if state.swap(ABANDONED, Ordering::SeqCst) == DONE {
                    // It finished just now.
                    self.inner.overdue.fetch_sub(1, Ordering::SeqCst);
                    return rx
                        .recv()
                        .map_err(|_| HsmError::Worker("the HSM call panicked"))?;
                }
                Err(HsmError::Timeout {
                    after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                }
                .into())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(HsmError::Worker("the HSM call panicked").into())
            }
        }
    }

    // ---- sessions and object handles ----

    /// Runs `f` with a session used by this thread only. The session goes back to the pool
    /// on success or refused input, and is closed on other failures (which also destroys
    /// any session object left).
    fn with_session<T>(
        &self,
        f: impl FnOnce(&PooledSession) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let popped = lock(&self.inner.idle).pop();
        let session = match popped {
            Some(session) => session,
            None => self.open_session()?,
        };
        let pooled = PooledSession {
            session,
            discard: std::cell::Cell::new(false),
        };
        let result = f(&pooled);
        // A failure of the module may have left the session unusable: it is closed (which
        // also destroys its session objects). Refused input (a blob that does not decrypt,
        // the wrong key) leaves it as it was, with the unwrapped keys it caches.
        let healthy = result
            .as_ref()
            .map_or_else(HsmError::is_refused_input, |_| true);
        // The token went away (or the module lost every session): the other idle sessions
        // are dead too. Dropping them now means only this request fails, not one request per
        // stale session after the token is back.
        if let Err(e) = &result
            && matches!(
                e.rv(),
                Some(
                    RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                )
            )
        {
            lock(&self.inner.idle).clear();
        }
        if healthy && !pooled.discard.get() {
            let mut idle = lock(&self.inner.idle);
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(pooled.session);
            }
        }
        result
    }

    /// A new session, logged in: after the token was removed and returned, the module has
    /// forgotten the login (and the sessions), so the user logs in again here and the cached
    /// object handles are dropped.
    fn open_session(&self) -> Result<Session, HsmError> {
        let session = self.inner.ctx.open_rw_session(self.inner.slot)?;
        let state = session.get_session_info()?.session_state();
        if !matches!(
            state,
            cryptoki::session::SessionState::RoUser | cryptoki::session::SessionState::RwUser
        ) {
            match session.login(UserType::User, Some(&self.inner.pin.to_auth_pin())) {
                Ok(()) | Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(e.into()),
            }
            *lock(&self.inner.handles) = CachedHandles::default();
            tracing::warn!("the HSM login was lost (token removed?); logged in again");
        }
        Ok(session)
    }

    /// Health check: a session with the user logged in can see the key-encryption key.
    /// Errors say what is wrong (token not present, device removed, login failed, ...).
    pub fn health(&self) -> Result<(), HsmError> {
        self.with_session(|s| {
            let info = s.session.get_session_info()?;
            if !matches!(
                info.session_state(),
                cryptoki::session::SessionState::RoUser | cryptoki::session::SessionState::RwUser
            ) {
                s.discard.set(true);
                return Err(HsmError::Token("not logged in"));
            }
            self.kek(s).map(|_| ())
        })
    }

    /// Unwraps a device's AES content key with the RSA transport key (RSA-OAEP; SoftHSM 2.6.1
    /// implements it only with SHA-1 / MGF1-SHA-1 and no label) into a sensitive,
    /// non-extractable session object whose only use is `usage` (`Decrypt(true)` or
    /// `Unwrap(true)`). An EC transport key is [`HsmError::Decryption`].
    fn unwrap_content_key<'s>(
        &self,
        s: &'s PooledSession,
        wrapped_key: &[u8],
        usage: Attribute,
    ) -> Result<SessionObject<'s>, HsmError> {
        let transport = self.transport_private(s)?;
        if transport.ec_point.is_some() {
            return Err(HsmError::Decryption);
        }
        let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            PkcsOaepSource::empty(),
        ));
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
        ];
        template.push(match usage {
            Attribute::Decrypt(true) => Attribute::Unwrap(false),
            _ => Attribute::Decrypt(false),
        });
        template.push(usage);
        let handle = s
            .session
            .unwrap_key(&oaep, transport.handle, wrapped_key, &template)
            .map_err(|e| self.classify(e, true))?;
        Ok(SessionObject::new(s, handle))
    }

    fn kek(&self, s: &PooledSession) -> Result<ObjectHandle, HsmError> {
        if let Some(handle) = lock(&self.inner.handles).kek {
            return Ok(handle);
        }
        let handle =
            find_unique(s, KEK_LABEL, ObjectClass::SECRET_KEY)?.ok_or(HsmError::ObjectMissing {
                label: KEK_LABEL,
                kind: "AES secret key",
            })?;
        lock(&self.inner.handles).kek = Some(handle);
        Ok(handle)
    }

    fn transport_private(&self, s: &PooledSession) -> Result<TransportKey, HsmError> {
        if let Some(key) = lock(&self.inner.handles).transport {
            return Ok(key);
        }
        let handle = find_unique(s, TRANSPORT_KEY_LABEL, ObjectClass::PRIVATE_KEY)?.ok_or(
            HsmError::ObjectMissing {
                label: TRANSPORT_KEY_LABEL,
                kind: "private key",
            },
        )?;
        let key_type = s
            .session
            .get_attributes(handle, &[AttributeType::KeyType])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::KeyType(t) => Some(t),
                _ => None,
            })
            .ok_or(HsmError::Token("transport key without CKA_KEY_TYPE"))?;
        let ec_point = if key_type == KeyType::RSA {
            None
        } else if key_type == KeyType::EC {
            let public = find_unique(s, TRANSPORT_KEY_LABEL, ObjectClass::PUBLIC_KEY)?.ok_or(
                HsmError::ObjectMissing {
                    label: TRANSPORT_KEY_LABEL,
                    kind: "EC public key",
                },
            )?;
            const WRONG: &str = "EC transport key is not a P-256 point";
            let point: [u8; P256_POINT_LEN] =
                read_ec_point(s, public, &PRIME256V1_PARAMS, P256_POINT_LEN, WRONG)?
                    .try_into()
                    .map_err(|_| HsmError::Token(WRONG))?;
            Some(point)
        } else {
            return Err(HsmError::Token("transport key is neither RSA nor EC"));
        };
        let key = TransportKey { handle, ec_point };
        lock(&self.inner.handles).transport = Some(key);
        Ok(key)
    }

    /// `CKM_ECDH1_DERIVE` of `point` with the EC transport key: the 32-byte shared x
    /// coordinate. The derived session object is destroyed before returning.
    fn ecdh_derive(
        &self,
        s: &PooledSession,
        transport: ObjectHandle,
        point: &[u8; P256_POINT_LEN],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let params = Ecdh1DeriveParams::new(EcKdf::null(), point);
        let derived = s
            .session
            .derive_key(
                &Mechanism::Ecdh1Derive(params),
                transport,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                    Attribute::Encrypt(false),
                    Attribute::Decrypt(false),
                    Attribute::Sign(false),
                    Attribute::Verify(false),
                    Attribute::Wrap(false),
                    Attribute::Unwrap(false),
                    Attribute::Derive(false),
                ],
            )
            // A point off the curve (or of the wrong form) is the sender's fault.
            .map_err(|e| match self.classify(e, true) {
                HsmError::Pkcs11 {
                    rv: RvError::MechanismParamInvalid | RvError::DomainParamsInvalid,
                    ..
                } => HsmError::Decryption,
                other => other,
            })?;
        let derived = SessionObject::new(s, derived);
        let value = s
            .session
            .get_attributes(derived.handle, &[AttributeType::Value])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(Zeroizing::new(v)),
                _ => None,
            })
            .ok_or(HsmError::Token("derived ECDH secret without CKA_VALUE"))?;
        if value.len() != 32 {
            return Err(HsmError::Token("derived ECDH secret of the wrong length"));
        }
        Ok(value)
    }

    /// The private key of CA key pair `label` and its kind, from the cache or the token.
    fn ca_private(
        &self,
        s: &PooledSession,
        label: &str,
    ) -> Result<(ObjectHandle, CaKeySpec), HsmError> {
        if let Some(cached) = lock(&self.inner.handles).ca.get(label) {
            return Ok(*cached);
        }
        let handle = find_unique(s, label, ObjectClass::PRIVATE_KEY)?.ok_or_else(|| {
            HsmError::CaKeyMissing {
                label: label.to_owned(),
            }
        })?;
        let spec = describe_ca_key(s, handle)?.map_err(|found| HsmError::CaKeyUnsupported {
            label: label.to_owned(),
            found,
        })?;
        lock(&self.inner.handles)
            .ca
            .insert(label.to_owned(), (handle, spec));
        Ok((handle, spec))
    }

    /// Maps a cryptoki error: forgets cached handles the module no longer knows, and turns
    /// ciphertext and wrapped-key failures into the opaque [`HsmError::Decryption`] (for
    /// `unwrap`, also wrapped-key errors: device-supplied OAEP input must not be an oracle).
    fn classify(&self, err: CryptokiError, unwrap: bool) -> HsmError {
        let err = HsmError::from(err);
        match err.rv() {
            Some(
                RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::WrappingKeyHandleInvalid
                | RvError::UnwrappingKeyHandleInvalid,
            ) => {
                *lock(&self.inner.handles) = CachedHandles::default();
                err
            }
            Some(RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange) => {
                tracing::debug!(error = %err, "decryption failed");
                HsmError::Decryption
            }
            // SoftHSM 2.6.1 reports an AES-GCM tag mismatch as CKR_GENERAL_ERROR from C_Decrypt.
            Some(RvError::GeneralError) if matches!(err.function(), Some(Function::Decrypt)) => {
                tracing::debug!(error = %err, "decryption failed");
                HsmError::Decryption
            }
            // SoftHSM 2.6.1 reports an OAEP decoding failure as CKR_GENERAL_ERROR.
            Some(
                RvError::WrappedKeyInvalid
                | RvError::WrappedKeyLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange
                | RvError::GeneralError,
            ) if unwrap => {
                tracing::debug!(error = %err, "unwrapping failed");
                HsmError::Decryption
            }
            _ => err,
        }
    }
}

/// The name of the worker threads that make the HSM calls of [`Hsm::bounded`] (`tandem load`
/// reports their CPU time apart from the rest of the server's).
pub const HSM_CALL_THREAD: &str = "hsm-call";

/// A job for an "hsm-call" worker thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle "hsm-call" workers, each waiting on its own channel, by worker number. Workers are
/// kept and reused: starting a thread for every bounded call (two per signature) cost
/// measurable CPU. A worker stuck in an overdue call is simply not idle; a new one is
/// started when none is (the overdue cap of [`Hsm::bounded`] limits how many can be stuck).
/// A worker idle for a minute ends.
static IDLE_WORKERS: Mutex<Vec<(u64, std::sync::mpsc::Sender<Job>)>> = Mutex::new(Vec::new());

/// Runs `job` on an idle worker, or on a new one.
fn run_on_worker(job: Job) -> Result<(), HsmError> {
    static NEXT_WORKER: AtomicU64 = AtomicU64::new(0);
    let mut job = job;
    while let Some((_, worker)) = lock(&IDLE_WORKERS).pop() {
        match worker.send(job) {
            Ok(()) => return Ok(()),
            // That worker has ended (it cannot, while listed; defensive): try the next one.
            Err(std::sync::mpsc::SendError(returned)) => job = returned,
        }
    }
    let id = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    tx.send(job)
        .map_err(|_| HsmError::Worker("no thread for the HSM call"))?;
    std::thread::Builder::new()
        .name(HSM_CALL_THREAD.into())
        .spawn(move || {
            loop {
                match rx.recv_timeout(Duration::from_secs(60)) {
                    Ok(job) => {
                        // A panic ends the job (its guard marks the call done, its result
                        // channel closes, the caller reports it), not the worker.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        lock(&IDLE_WORKERS).push((id, tx.clone()));
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        let mut idle = lock(&IDLE_WORKERS);
                        if let Some(at) = idle.iter().position(|(i, _)| *i == id) {
                            // Still listed, so nobody holds this worker: it may end.
                            idle.remove(at);
                            break;
                        }
                        // A caller took it from the list just now: its job is on the way.
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        })
        .map_err(|_| HsmError::Worker("no thread for the HSM call"))?;
    Ok(())
}

fn find_unique(
    s: &PooledSession,
    label: &str,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>, HsmError> {
    let found = s.session.find_objects(&[
        Attribute::Token(true),
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(HsmError::Ambiguous {
            label: label.to_owned(),
            kind: "object",
        }),
    }
}

fn read_modulus(s: &PooledSession, key: ObjectHandle) -> Result<Vec<u8>, HsmError> {
    let attrs = s.session.get_attributes(key, &[AttributeType::Modulus])?;
    match attrs.into_iter().next() {
        Some(Attribute::Modulus(n)) if !n.is_empty() => Ok(n),
        _ => Err(HsmError::Token("RSA key without a modulus")),
    }
}

/// Big-endian modulus and public exponent of an RSA key.
type RsaPublicParts = (Vec<u8>, Vec<u8>);

/// Modulus and public exponent of an RSA key object, `None` if one is missing.
fn read_rsa_public(
    s: &PooledSession,
    key: ObjectHandle,
) -> Result<Option<RsaPublicParts>, CryptokiError> {
    let attrs = s.session.get_attributes(
        key,
        &[AttributeType::Modulus, AttributeType::PublicExponent],
    )?;
    let mut n = None;
    let mut e = None;
    for attr in attrs {
        match attr {
            Attribute::Modulus(v) if !v.is_empty() => n = Some(v),
            Attribute::PublicExponent(v) if !v.is_empty() => e = Some(v),
            _ => {}
        }
    }
    Ok(n.zip(e))
}

/// DER `SubjectPublicKeyInfo` (rsaEncryption, NULL parameters) of an RSA public key.
fn rsa_spki_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>, HsmError> {
    let public = rsa::RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
        .map_err(|_| HsmError::Token("not a usable RSA public key"))?;
    let der = public
        .to_public_key_der()
        .map_err(|_| HsmError::Token("RSA public key cannot be DER-encoded"))?;
    Ok(der.into_vec())
}

/// CA key labels must be non-empty and must not name the KEK or the transport key.
fn check_ca_label(label: &str) -> Result<(), HsmError> {
    if label.is_empty() || label == KEK_LABEL || label == TRANSPORT_KEY_LABEL {
        return Err(HsmError::InvalidArgument(
            "CA key label must be non-empty and not a reserved label",
        ));
    }
    Ok(())
}

/// The [`CaKeySpec`] of a private key object, or a description of what it is instead.
fn describe_ca_key(
    s: &PooledSession,
    key: ObjectHandle,
) -> Result<Result<CaKeySpec, String>, HsmError> {
    let key_type = match s
        .session
        .get_attributes(key, &[AttributeType::KeyType])?
        .into_iter()
        .next()
    {
        Some(Attribute::KeyType(key_type)) => key_type,
        _ => return Err(HsmError::Token("key without CKA_KEY_TYPE")),
    };
    if key_type == KeyType::RSA {
        return Ok(match bit_length(&read_modulus(s, key)?) {
            4096 => Ok(CaKeySpec::Rsa4096),
            3072 => Ok(CaKeySpec::Rsa3072),
            bits => Err(format!("RSA-{bits}")),
        });
    }
    if key_type == KeyType::EC {
        let params = s
            .session
            .get_attributes(key, &[AttributeType::EcParams])?
            .into_iter()
            .find_map(|attr| match attr {
                Attribute::EcParams(v) => Some(v),
                _ => None,
            });
        return Ok(match params {
            Some(p) if p == SECP384R1_PARAMS => Ok(CaKeySpec::EcP384),
            _ => Err("EC on another curve".to_owned()),
        });
    }
    Ok(Err(format!("key type {key_type}")))
}

/// The uncompressed point of EC public key object `public`, which must be on the curve
/// named by `params` (DER OID) with points of `len` bytes; anything else is
/// `HsmError::Token(wrong)`.
fn read_ec_point(
    s: &PooledSession,
    public: ObjectHandle,
    params: &[u8],
    len: usize,
    wrong: &'static str,
) -> Result<Vec<u8>, HsmError> {
    let attrs = s
        .session
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])?;
    let mut found_params = None;
    let mut point = None;
    for attr in attrs {
        match attr {
            Attribute::EcParams(v) => found_params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    if found_params.as_deref() != Some(params) {
        return Err(HsmError::Token(wrong));
    }
    let point = point.ok_or(HsmError::Token(wrong))?;
    Ok(unwrap_ec_point(&point, len)
        .map_err(|_| HsmError::Token(wrong))?
        .to_vec())
}

/// The uncompressed point from CKA_EC_POINT: a DER OCTET STRING around the point
/// (PKCS#11 2.40), or the bare point as some modules return it.
fn unwrap_ec_point(value: &[u8], len: usize) -> Result<&[u8], HsmError> {
    let point = match value {
        [0x04, l, point @ ..] if usize::from(*l) == point.len() => point,
        _ => value,
    };
    match point {
        [0x04, ..] if point.len() == len => Ok(point),
        _ => Err(HsmError::Token(
            "CKA_EC_POINT is not an uncompressed point of the key's curve",
        )),
    }
}

/// Raw ECDSA P-384 output `r || s` (48 bytes each) as DER
/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` with minimal positive integers.
fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, HsmError> {
    if raw.len() != 2 * P384_SCALAR_LEN {
        return Err(HsmError::Token("ECDSA signature of the wrong length"));
    }
    let (r, s) = raw.split_at(P384_SCALAR_LEN);
    let mut body = Vec::with_capacity(2 * (3 + P384_SCALAR_LEN));
    for value in [r, s] {
        let value = strip_leading_zeros(value);
        let Some(&top) = value.first() else {
            return Err(HsmError::Token("ECDSA signature with a zero component"));
        };
        let pad = usize::from(top & 0x80 != 0);
        body.push(0x02);
        push_der_len(&mut body, value.len() + pad);
        if pad == 1 {
            body.push(0x00);
        }
        body.extend_from_slice(value);
    }
    let mut der = Vec::with_capacity(body.len() + 4);
    der.push(0x30);
    push_der_len(&mut der, body.len());
    der.extend_from_slice(&body);
    Ok(der)
}

/// A DER definite length (short form below 128, else long form).
fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let bytes = strip_leading_zeros(&bytes);
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
}

fn gcm_decrypt(
    s: &PooledSession,
    key: ObjectHandle,
    iv: &[u8; GCM_IV_LEN],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptokiError> {
    let mut iv = *iv;
    let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())?;
    // cryptoki returns a plain Vec; it moves into zeroizing memory at once. (cryptoki may
    // truncate it to the plaintext length; the tail it cuts off was never written.)
    let plaintext = Zeroizing::new(s.session.decrypt(&Mechanism::AesGcm(params), key, sealed)?);
    Ok(plaintext)
}

fn parse_header(blob: &[u8], alg: u8) -> Result<&[u8], HsmError> {
    match blob {
        [BLOB_VERSION, a, body @ ..] if *a == alg => Ok(body),
        [BLOB_VERSION, _, ..] => Err(HsmError::BadBlob("unknown algorithm")),
        [_, _, ..] => Err(HsmError::BadBlob("unknown version")),
        _ => Err(HsmError::BadBlob("too short")),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_length(big_endian: &[u8]) -> usize {
    let bytes = strip_leading_zeros(big_endian);
    match bytes.first() {
        Some(top) => bytes.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

fn left_pad(bytes: &[u8], len: usize) -> Result<Vec<u8>, HsmError> {
    if bytes.len() > len {
        return Err(HsmError::Token("value longer than the modulus"));
    }
    let mut out = vec![0u8; len - bytes.len()];
    out.extend_from_slice(bytes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn hsm_is_send_and_sync() {
        assert_send_sync::<Hsm>();
    }

    #[test]
    fn pin_debug_is_redacted() {
        let pin = TokenPin::new("123456".into());
        assert_eq!(format!("{pin:?}"), "TokenPin(<redacted>)");
    }

    #[test]
    fn blob_headers() {
        assert!(matches!(parse_header(&[1, 1, 9], 1), Ok([9])));
        assert!(matches!(
            parse_header(&[1, 2, 9], 1),
            Err(HsmError::BadBlob(_))
        ));
        assert!(matches!(
            parse_header(&[2, 1, 9], 1),
            Err(HsmError::BadBlob(_))
        ));
        assert!(matches!(parse_header(&[1], 1), Err(HsmError::BadBlob(_))));
    }

    #[test]
    fn ecdsa_signature_der() {
        // Top bit set: a 0x00 is prepended.
        let mut raw = vec![0x80u8; 48];
        raw.extend_from_slice(&[0x01; 48]);
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 2 + 49 + 2 + 48, 0x02, 49, 0x00]);
        assert_eq!(&der[5..53], &[0x80; 48]);
        assert_eq!(&der[53..55], &[0x02, 48]);
        assert_eq!(der.len(), 2 + 2 + 49 + 2 + 48);
        // Leading zeros are removed, down to the minimal encoding.
        let mut raw = vec![0u8; 96];
        raw[47] = 0x05;
        raw[48] = 0x00;
        raw[49] = 0x7f;
        raw[95] = 0x01;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        let mut expected = vec![0x30, 3 + 2 + 47, 0x02, 0x01, 0x05, 0x02, 47, 0x7f];
        expected.extend_from_slice(&raw[50..]);
        assert_eq!(der, expected);
        // r = 0 or a wrong length is refused.
        let mut zero_r = vec![0u8; 96];
        zero_r[95] = 1;
        assert!(ecdsa_raw_to_der(&zero_r).is_err());
        assert!(ecdsa_raw_to_der(&[1u8; 64]).is_err());
    }

    #[test]
    fn der_lengths() {
        for (len, expected) in [
            (0usize, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x81, 0x80]),
            (256, vec![0x82, 0x01, 0x00]),
        ] {
            let mut out = Vec::new();
            push_der_len(&mut out, len);
            assert_eq!(out, expected, "{len}");
        }
    }

    #[test]
    fn ec_points() {
        let mut point = vec![0x04u8];
        point.extend_from_slice(&[0xab; 96]);
        let mut wrapped = vec![0x04, 97];
        wrapped.extend_from_slice(&point);
        assert_eq!(
            unwrap_ec_point(&wrapped, P384_POINT_LEN).unwrap(),
            point.as_slice()
        );
        assert_eq!(
            unwrap_ec_point(&point, P384_POINT_LEN).unwrap(),
            point.as_slice()
        );
        let mut compressed = vec![0x04, 49, 0x02];
        compressed.extend_from_slice(&[0xab; 48]);
        assert!(unwrap_ec_point(&compressed, P384_POINT_LEN).is_err());
        assert!(unwrap_ec_point(&[], P384_POINT_LEN).is_err());
        // The P-256 SPKI prefix announces exactly the 65-byte point.
        assert_eq!(
            usize::from(P256_SPKI_PREFIX[1]),
            P256_SPKI_PREFIX.len() - 2 + P256_POINT_LEN
        );
        // The SPKI prefix announces exactly the 97-byte point.
        assert_eq!(
            usize::from(P384_SPKI_PREFIX[1]),
            P384_SPKI_PREFIX.len() - 2 + P384_POINT_LEN
        );
        assert_eq!(usize::from(P384_SPKI_PREFIX[21]), 1 + P384_POINT_LEN);
    }

    #[test]
    fn ca_key_spec_names() {
        assert_eq!(CaKeySpec::default(), CaKeySpec::Rsa4096);
        assert_eq!(
            serde_json::to_string(&CaKeySpec::EcP384).unwrap(),
            "\"ec-p384\""
        );
        assert_eq!(
            serde_json::to_string(&CaKeySpec::Rsa4096).unwrap(),
            "\"rsa4096\""
        );
        for name in ["\"rsa3072\"", "\"rsa-3072\""] {
            assert_eq!(
                serde_json::from_str::<CaKeySpec>(name).unwrap(),
                CaKeySpec::Rsa3072
            );
        }
        assert_eq!(CaKeySpec::Rsa4096.to_string(), "RSA-4096");
        assert!(check_ca_label(KEK_LABEL).is_err());
        assert!(check_ca_label("").is_err());
        assert!(check_ca_label("tandem-root-ca").is_ok());
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
    }
}
