//! The async shell: tonic services over the store, the HSM and the signing core.
//!
//! All HSM and SQLite work runs on blocking threads (`spawn_blocking`); the async executor
//! only moves data. Wire structs are converted to domain values in `convert`, and every
//! error becomes a `tonic::Status` in [`ApiError::into_status`] without internal detail.

mod confirmation;
mod convert;
mod device;
#[doc(hidden)]
pub mod fuzz_api;
mod registration;
mod retransmission;
mod rp;
pub(crate) mod rp_device;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tonic::Status;

use crate::config::Config;
use crate::hsm::Hsm;
use crate::store::{Store, StoreError};

pub(crate) use retransmission::Retransmission;

pub use device::DeviceService;
pub(crate) use device::random_bytes;

/// `len` random characters of `[A-Za-z0-9]`, uniformly (session tokens, generated PINs).
pub(crate) fn random_alphanumeric(len: usize) -> String {
    crate::core::random_alphanumeric(&mut rand_core::OsRng, len)
}
pub use rp::RelyingPartyService;

/// Shared state of the running server.
#[derive(Debug)]
pub struct App {
    /// Configuration.
    pub config: Config,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// The HSM.
    pub hsm: Hsm,
    /// Key-transport public key (SPKI DER), handed to devices.
    pub transport_key_der: Vec<u8>,
    /// Tells watchers which account has news.
    pub events: broadcast::Sender<String>,
    /// The certificate authority (issuing key in the HSM).
    pub ca: crate::ca::Ca,
    /// Derives the keys that seal stored answers (from the HSM's reply key, at start).
    reply_master: retransmission::ReplyMaster,
    key_locks: KeyLocks,
}

impl App {
    /// Builds the shared state.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        hsm: Hsm,
        ca: crate::ca::Ca,
    ) -> anyhow::Result<Arc<Self>> {
        let transport_key_der = hsm.transport_public_key_der()?;
        let reply_master = retransmission::ReplyMaster::derive(&hsm)?;
        let (events, _) = broadcast::channel(1024);
        Ok(Arc::new(Self {
            config,
            store,
            hsm,
            transport_key_der,
            events,
            ca,
            reply_master,
            key_locks: KeyLocks::default(),
        }))
    }

    /// Runs blocking work (SQLite, HSM) off the async executor.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&app))
            .await
            .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
    }

    pub(crate) fn notify(&self, account_id: &str) {
        // No receivers is fine.
        let _ = self.events.send(account_id.to_owned());
    }
}

/// Serialises share evaluations per key pair inside this process (the database gate makes
/// it safe across processes as well; this keeps the order fair and the HSM load bounded).
#[derive(Debug, Default)]
struct KeyLocks {
    // std Mutex: only held to look up the per-key async mutex, never across an await.
    map: Mutex<LockMap>,
}

/// The per-key mutexes, and the size at which unused ones are dropped.
#[derive(Debug, Default)]
struct LockMap {
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    prune_at: usize,
}

/// The map is pruned when it reaches this many entries (or twice what survived the last
/// pruning): one mutex per key pair ever confirmed would otherwise stay for the life of the
/// process (two million with a million accounts).
const KEY_LOCKS_PRUNE_AT: usize = 4096;

impl KeyLocks {
    fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.locks.len() >= map.prune_at.max(KEY_LOCKS_PRUNE_AT) {
            // A mutex only the map holds is neither held nor awaited, and nobody can take
            // a handle to it except through this (locked) map: dropping it is safe, a later
            // request for the key gets a new one.
            map.locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            map.prune_at = map.locks.len() * 2;
        }
        map.locks.entry(key.to_owned()).or_default().clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .locks
            .len()
    }
}

#[cfg(test)]
mod key_lock_tests {
    use super::*;

    #[test]
    fn unused_key_locks_are_dropped_and_held_ones_kept() {
        let locks = KeyLocks::default();
        // One key pair is being confirmed (its handle is held) while many others come and go.
        let held = locks.get("held:SIGN");
        let guard = held.try_lock().expect("free");
        for i in 0..3 * KEY_LOCKS_PRUNE_AT {
            drop(locks.get(&format!("account-{i}:AUTH")));
        }
        assert!(
            locks.len() <= KEY_LOCKS_PRUNE_AT,
            "the map was pruned: {}",
            locks.len()
        );
        // The held mutex is the same one a second request for its key gets: still locked.
        let again = locks.get("held:SIGN");
        assert!(Arc::ptr_eq(&held, &again));
        assert!(again.try_lock().is_err());
        drop(guard);
        assert!(again.try_lock().is_ok());
    }
}

/// Errors of the API layer, mapped to gRPC codes in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or out-of-range input.
    #[error("{0}")]
    InvalidArgument(String),
    /// Unknown credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// Not found.
    #[error("{0}")]
    NotFound(String),
    /// Wrong state for the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Authenticated, but not allowed (a device link for another person, a bad authCode).
    #[error("{0}")]
    PermissionDenied(String),
    /// The server could not finish and has ended the operation (an HSM failure during a
    /// confirmation: the transaction ended with SERVER_ERROR). The message is for the user.
    #[error("{0}")]
    Aborted(String),
    /// The HSM failed or did not answer in time; nothing was changed, the request may be
    /// retried later.
    #[error("{0}")]
    Unavailable(String),
    /// Internal failure (details go to the log only).
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The gRPC status; internal details are logged, not sent.
    pub fn into_status(self) -> Status {
        match self {
            Self::InvalidArgument(m) => Status::invalid_argument(m),
            Self::Unauthenticated(m) => Status::unauthenticated(m),
            Self::NotFound(m) => Status::not_found(m),
            Self::FailedPrecondition(m) => Status::failed_precondition(m),
            Self::PermissionDenied(m) => Status::permission_denied(m),
            Self::Aborted(m) => Status::aborted(m),
            Self::Unavailable(m) => Status::unavailable(m),
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal("internal server error")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            StoreError::Conflict(m) => Self::FailedPrecondition(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::hsm::HsmError> for ApiError {
    fn from(e: crate::hsm::HsmError) -> Self {
        Self::Internal(format!("HSM: {e}"))
    }
}

impl From<crate::signing::SigningError> for ApiError {
    fn from(e: crate::signing::SigningError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// A short human description of a key pair's lock state (operator output).
pub fn key_state_summary(
    kp: &crate::store::KeyPair,
    policy: &crate::lockout::LockoutPolicy,
    now: i64,
) -> String {
    use crate::core::account::{KeyStatus, key_state};
    let st = key_state(kp, policy, now);
    match st.status {
        KeyStatus::Locked { until } => format!("locked for {} more seconds", until - now),
        KeyStatus::Disabled => "disabled".into(),
        KeyStatus::Active => format!(
            "active, {} attempts before the next lock",
            st.attempts_before_lock
        ),
    }
}

/// Current unix time.
pub(crate) fn now() -> i64 {
    crate::store::unix_now()
}
