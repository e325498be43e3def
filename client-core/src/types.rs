//! Small domain types shared by the device, the server and the wire layer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Error, Result};

/// Which of the account's two key pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum KeyType {
    /// Authentication key pair (PIN1).
    Auth,
    /// Signing key pair (PIN2).
    Sign,
}

impl KeyType {
    /// `"AUTH"` or `"SIGN"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Auth => "AUTH",
            KeyType::Sign => "SIGN",
        }
    }
}

impl core::fmt::Display for KeyType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Clone-detection token: a one-time value the server hands the device after every operation
/// and expects back with the next share. The server stores only its hash.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct CloneToken([u8; 32]);

impl CloneToken {
    /// Draws a fresh token (server side).
    pub fn generate(rng: &mut (impl CryptoRng + RngCore)) -> Self {
        let mut t = [0u8; 32];
        rng.fill_bytes(&mut t);
        Self(t)
    }

    /// Wraps exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(Self(
            bytes
                .try_into()
                .map_err(|_| Error::Malformed("clone token"))?,
        ))
    }

    /// The token bytes (sent to the server with the next share).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl core::fmt::Debug for CloneToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CloneToken(<redacted>)")
    }
}

impl Serialize for CloneToken {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(B64.encode(self.0)))
    }
}

impl<'de> Deserialize<'de> for CloneToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        let bytes = Zeroizing::new(
            B64.decode(s.as_bytes())
                .map_err(|_| serde::de::Error::custom("invalid clone token"))?,
        );
        CloneToken::from_slice(&bytes).map_err(|_| serde::de::Error::custom("invalid clone token"))
    }
}

/// Random retransmission nonce carried by every device request. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestNonce([u8; 16]);

impl RequestNonce {
    /// Draws a fresh nonce.
    pub fn generate(rng: &mut (impl CryptoRng + RngCore)) -> Self {
        let mut n = [0u8; 16];
        rng.fill_bytes(&mut n);
        Self(n)
    }

    /// Wraps exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(Self(
            bytes
                .try_into()
                .map_err(|_| Error::Malformed("request nonce"))?,
        ))
    }

    /// The nonce bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl core::fmt::Debug for RequestNonce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RequestNonce({})", hex::encode(self.0))
    }
}

/// Length of a [`DeviceSecret`].
pub const DEVICE_SECRET_LEN: usize = 32;

/// The secret that authenticates the device to the server (not a key share). Stored in the
/// device state file.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DeviceSecret([u8; DEVICE_SECRET_LEN]);

impl DeviceSecret {
    /// Draws a fresh secret.
    pub fn generate(rng: &mut (impl CryptoRng + RngCore)) -> Self {
        let mut s = [0u8; DEVICE_SECRET_LEN];
        rng.fill_bytes(&mut s);
        Self(s)
    }

    /// Wraps exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        Ok(Self(
            bytes
                .try_into()
                .map_err(|_| Error::Malformed("device secret"))?,
        ))
    }

    /// The raw secret. Public because the wire layer sends it to the server (inside TLS) to
    /// authenticate the device; nothing else should read it.
    pub fn expose_secret(&self) -> &[u8; DEVICE_SECRET_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn key_type_names() {
        assert_eq!(KeyType::Auth.to_string(), "AUTH");
        assert_eq!(serde_json::to_string(&KeyType::Sign).unwrap(), "\"SIGN\"");
        assert_eq!(
            serde_json::from_str::<KeyType>("\"AUTH\"").unwrap(),
            KeyType::Auth
        );
        assert!(serde_json::from_str::<KeyType>("\"auth\"").is_err());
    }

    #[test]
    fn clone_token_serde_and_eq() {
        let mut rng = StdRng::seed_from_u64(1);
        let t = CloneToken::generate(&mut rng);
        let json = serde_json::to_string(&t).unwrap();
        let back: CloneToken = serde_json::from_str(&json).unwrap();
        assert!(t.ct_eq(&back));
        assert!(!t.ct_eq(&CloneToken::generate(&mut rng)));
        assert_eq!(format!("{t:?}"), "CloneToken(<redacted>)");
        assert!(serde_json::from_str::<CloneToken>("\"AAAA\"").is_err());
        assert!(CloneToken::from_slice(&[0; 31]).is_err());
    }

    #[test]
    fn nonce_debug_is_hex() {
        let n = RequestNonce::from_slice(&[0xab; 16]).unwrap();
        assert_eq!(
            format!("{n:?}"),
            format!("RequestNonce({})", "ab".repeat(16))
        );
        assert!(RequestNonce::from_slice(&[0; 15]).is_err());
    }
}
