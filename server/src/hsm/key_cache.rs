//! Unwrapped server keys kept in the HSM between signatures: [`KeyCache`] holds the handles
//! of sensitive, non-extractable session objects of one "keeper" session, by the SHA-256 of
//! their wrapped blob, least recently used out first. [`Hsm::unwrap_server_key`] fills it,
//! [`Hsm::forget_server_key`] empties an entry; [`Hsm::sign_raw`] reads it.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use sha2::{Digest, Sha256};

use super::attributes::read_modulus;
use super::big_endian::strip_leading_zeros;
use super::blob;
use super::sessions::{PooledSession, SessionObject};
use super::{Hsm, HsmError, lock, write};

/// Unwrapped server keys kept in the HSM between signatures (objects in its memory).
const SERVER_KEY_CACHE: usize = 1024;

/// Handles of unwrapped server keys (sensitive, non-extractable session objects of the
/// keeper session) with their moduli, by the SHA-256 of their wrapped blob, least recently
/// used first out. Behind an `RwLock`: a signature holds the read lock while it uses a
/// handle, and an object is only destroyed under the write lock, so no key is destroyed
/// while a signature uses it. A handle may still have died with the keeper session (the
/// token was removed), and the module may then reuse it: users check the modulus first.
#[derive(Default)]
pub(super) struct KeyCache {
    entries: HashMap<[u8; 32], CachedKey>,
    clock: AtomicU64,
}

/// A cached key.
pub(super) struct CachedKey {
    pub(super) handle: ObjectHandle,
    pub(super) modulus: Vec<u8>,
    used: AtomicU64,
}

impl KeyCache {
    /// The entry for `id`, marked as used now (under the read lock).
    pub(super) fn get(&self, id: &[u8; 32]) -> Option<&CachedKey> {
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

impl Hsm {
    /// Unwraps a server key into the keeper session, where it stays (a session object of
    /// this application, usable from every session, sensitive and non-extractable) until it
    /// is evicted, forgotten, or the keeper session ends; caches its handle. The least
    /// recently used key makes room when the cache is full.
    pub(super) fn unwrap_server_key(
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
                    discard: Cell::new(false),
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
        let Ok(wrapped) = blob::parse_wrapped_key(wrapped_private_key) else {
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
}
