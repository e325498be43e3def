//! The session pool. A PKCS#11 session is `Send` but not `Sync`: each call checks one out
//! ([`Hsm::with_session`]), uses it on the calling thread only and returns it, or closes it
//! when the module failed. Session objects are destroyed when their guard
//! ([`SessionObject`]) drops. [`Hsm::classify`] maps cryptoki errors, making failures to
//! decrypt or unwrap opaque.

use std::cell::Cell;

use cryptoki::context::Function;
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

use super::{CachedHandles, Hsm, HsmError, lock};

/// Sessions kept open in the pool when idle; more are opened on demand and closed on return.
const MAX_IDLE_SESSIONS: usize = 8;

/// A session checked out of the pool. Closed instead of returned when `discard` is set.
pub(super) struct PooledSession {
    pub(super) session: Session,
    pub(super) discard: Cell<bool>,
}

/// Destroys a session object when dropped (also on error paths). If destroying fails, the
/// session is discarded, which destroys its session objects.
pub(super) struct SessionObject<'s> {
    session: &'s PooledSession,
    pub(super) handle: ObjectHandle,
}

impl<'s> SessionObject<'s> {
    pub(super) fn new(session: &'s PooledSession, handle: ObjectHandle) -> Self {
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
    /// Runs `f` with a session used by this thread only. The session goes back to the pool
    /// on success or refused input, and is closed on other failures (which also destroys
    /// any session object left).
    pub(super) fn with_session<T>(
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
            discard: Cell::new(false),
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

    /// Maps a cryptoki error: forgets cached handles the module no longer knows, and turns
    /// ciphertext and wrapped-key failures into the opaque [`HsmError::Decryption`] (for
    /// `unwrap`, also wrapped-key errors: device-supplied OAEP input must not be an oracle).
    pub(super) fn classify(&self, err: CryptokiError, unwrap: bool) -> HsmError {
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
