//! The token's own state: label, the PIN-protected token key, and who is logged in.
//!
//! Every token has a random 256-bit *token key* that encrypts its private objects on disk.
//! The token key is stored twice, wrapped (AES-256-GCM) under a key derived from the SO PIN
//! and under one derived from the user PIN. A PIN is correct exactly when its wrap opens,
//! so no PIN hash is stored. The token key is in memory only while someone is logged in.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::crypto;
use crate::error::{Result, ck};

/// Shortest and longest PIN accepted.
pub const MIN_PIN_LEN: usize = 4;
/// See [`MIN_PIN_LEN`].
pub const MAX_PIN_LEN: usize = 255;

/// Version byte of a wrapped token key.
const WRAP_VERSION: u8 = 1;

/// The token key. MUST NOT leave the module.
pub struct TokenKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    /// A fresh random token key.
    pub fn generate() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        crypto::random(&mut *k)?;
        Ok(Self(k))
    }

    /// The key bytes, for sealing and opening objects.
    pub(crate) fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A PIN as handed in by the caller. MUST NOT be logged or stored.
pub struct Pin(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

impl Pin {
    /// Checks the length rules and takes the PIN.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Result<Self> {
        if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&bytes.len()) {
            return ck(CKR_PIN_LEN_RANGE);
        }
        Ok(Self(bytes))
    }

    fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

/// Which PIN a wrap belongs to (bound into the AEAD associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Security officer.
    So,
    /// Normal user.
    User,
}

fn aad(role: Role) -> [u8; 29] {
    let mut a = *b"tandem-hsm-sim token key v1 ?";
    a[28] = match role {
        Role::So => b'S',
        Role::User => b'U',
    };
    a
}

/// The token key wrapped under one PIN: `version || salt (16) || sealed key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey(pub Vec<u8>);

impl WrappedKey {
    /// Wraps `key` under `pin`.
    pub fn wrap(key: &TokenKey, pin: &Pin, role: Role) -> Result<Self> {
        let mut salt = [0u8; 16];
        crypto::random(&mut salt)?;
        let kek = crypto::derive_pin_key(pin.expose_secret(), &salt)?;
        let sealed = crypto::seal(&kek, &aad(role), key.expose_secret())?;
        let mut out = vec![WRAP_VERSION];
        out.extend_from_slice(&salt);
        out.extend_from_slice(&sealed);
        Ok(Self(out))
    }

    /// Opens the wrap with `pin`; a wrong PIN is `CKR_PIN_INCORRECT`.
    pub fn unwrap_with(&self, pin: &Pin, role: Role) -> Result<TokenKey> {
        let Some((&WRAP_VERSION, rest)) = self.0.split_first() else {
            return Err(crate::error::Error::Storage(
                "unknown token key wrap version".into(),
            ));
        };
        if rest.len() < 16 {
            return Err(crate::error::Error::Storage(
                "truncated token key wrap".into(),
            ));
        }
        let (salt, sealed) = rest.split_at(16);
        let kek = crypto::derive_pin_key(pin.expose_secret(), salt)?;
        let plain = crypto::open(&kek, &aad(role), sealed)
            .ok_or(crate::error::Error::Ck(CKR_PIN_INCORRECT))?;
        let key: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| crate::error::Error::Storage("bad token key length".into()))?;
        Ok(TokenKey(Zeroizing::new(key)))
    }
}

/// What an initialised token keeps (persisted in `token.meta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMeta {
    /// `CK_TOKEN_INFO.label`, blank padded.
    pub label: [u8; 32],
    /// `CK_TOKEN_INFO.serialNumber`, blank padded.
    pub serial: [u8; 16],
    /// Token key under the SO PIN.
    pub so_wrap: WrappedKey,
    /// Token key under the user PIN, once `C_InitPIN` ran.
    pub user_wrap: Option<WrappedKey>,
}

/// Who is logged in to the token (shared by all sessions of the application).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Nobody: public sessions.
    Public,
    /// The security officer.
    So,
    /// The normal user.
    User,
}
