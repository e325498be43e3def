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
//! Persisted blobs start with a version and an algorithm byte; anything else is rejected
//! (`blob.rs`, whose golden vectors pin the stored format).
//!
//! Nothing here logs or reports key material or the PIN; spans name operations only.
//!
//! The layer, one concern per module (all private; what other code uses is re-exported
//! here, so `crate::hsm::Hsm` and friends keep their paths):
//!
//! ```text
//!   mod.rs          the Hsm handle and the state its clones share
//!   config          HsmConfig, TokenPin (where the HSM is, how to log in)
//!   error           HsmError
//!   module          loading and initialising the PKCS#11 module, the token, login, health
//!   sessions        the session pool, session objects destroyed on drop, error mapping
//!   objects         token objects by label (KEK, transport key, reply key), cached handles
//!   transport       the key-transport key and device envelopes
//!   at_rest         seal_at_rest / open_at_rest (AES-GCM under the KEK)
//!   vendor_share    hsm-sim's in-token share exponentiation
//!   token_share     the token-rsa share form (share keys as token objects)
//!   server_keys     per-account server keys: generate, wrap, sign_raw
//!   key_cache       unwrapped server keys kept in the token between signatures
//!   reply_key       the HMAC key that seals stored answers to device requests
//!   ca_keys         CA key pairs, their public keys, ca_sign
//!   workers         bounded calls with time-outs on reused "hsm-call" threads
//!   blob            the stored blob format (version and algorithm header)
//!   der_encoding    DER of public keys and ECDSA signatures (the `der` and `spki` crates)
//!   faults          fault hooks for tests
//!   big_endian      big-endian integers as PKCS#11 returns them
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cryptoki::context::Pkcs11;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

mod at_rest;
mod attributes;
mod big_endian;
mod blob;
mod ca_keys;
mod config;
mod der_encoding;
mod error;
mod faults;
mod key_cache;
mod module;
mod objects;
mod reply_key;
mod server_keys;
mod sessions;
mod token_share;
mod transport;
mod vendor_share;
mod workers;

pub use blob::{ALG_TOKEN_RSA_KEY, is_token_share_blob};
pub use ca_keys::CaKeySpec;
pub use config::{HSM_SIM_DIR_ENV, HsmConfig, TokenPin};
pub use error::HsmError;
pub use faults::{TEST_FAIL_CA_SIGN_ENV, TEST_FAIL_SIGN_RAW_ENV};
pub use module::provision_token;
pub use objects::{KEK_LABEL, ObjectStatus, ObjectsReport};
pub use reply_key::REPLY_KEY_LABEL;
pub use server_keys::ServerKey;
pub use token_share::{SHARE_KEY_LABEL_PREFIX, ShareExponentiation};
pub use transport::{TRANSPORT_KEY_LABEL, TransportKeySpec};
pub use vendor_share::{CKK_TANDEM_SHARE, CKM_TANDEM_SHARE_EXP};
pub use workers::HSM_CALL_THREAD;

use blob::SHARE_KEY_ID_LEN;
use key_cache::KeyCache;
use objects::CachedHandles;
use sessions::PooledSession;
use token_share::CachedShareKey;

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

/// What the clones of one [`Hsm`] share. Its fields are used by the submodules.
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
    share_keys: Mutex<HashMap<[u8; SHARE_KEY_ID_LEN], CachedShareKey>>,
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

impl Hsm {
    /// `len` random bytes from the HSM's generator.
    pub fn random(&self, len: usize) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.random", len).entered();
        let mut out = vec![0u8; len];
        if len > 0 {
            self.with_session(|s| Ok(s.session.generate_random_slice(&mut out)?))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn hsm_is_send_and_sync() {
        assert_send_sync::<Hsm>();
    }
}
