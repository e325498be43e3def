//! PIN protection of the device share without a verifier.
//!
//! ```text
//!   key        = Argon2id(password = PIN, salt, secret = keystore secret, 32 bytes)
//!   ciphertext = d1' XOR ChaCha20(key, nonce = 0)        (no MAC, no redundancy)
//! ```
//!
//! `d1'` is uniform in `[0, 2^bits)` and the ciphertext has exactly `bits/8` bytes, so every
//! PIN decrypts to an equally plausible share. Nothing stored on the device can tell a right
//! PIN from a wrong one: only the server can, by checking the combined signature, and it
//! counts failures (lockout). The PIN is never stored.
//!
//! The zero nonce is safe because every [`ProtectedShare::protect`] draws a fresh salt, so
//! the ChaCha20 key is never reused for a second plaintext.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::DeviceShare;
use crate::{Error, Result};

/// Format version of [`ProtectedShare`].
pub const PROTECTED_SHARE_VERSION: u8 = 1;
/// Algorithm identifier of [`ProtectedShare`].
pub const PROTECTED_SHARE_ALGORITHM: &str = "argon2id+chacha20-xor";
/// Algorithm identifier of a [`ProtectedShare`] of the `token-rsa` form: the same encryption;
/// the share's exponent is the decrypted value with its lowest bit cleared (see
/// [`DeviceShare`]).
pub const PROTECTED_SHARE_ALGORITHM_EVEN: &str = "argon2id+chacha20-xor+even-exponent";
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
/// Length of a [`KeystoreSecret`].
pub const KEYSTORE_SECRET_LEN: usize = 32;

/// A PIN: 4 to 12 ASCII digits. Never stored, never sent.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Pin(String);

impl Pin {
    /// Validates and wraps a PIN (4 to 12 ASCII digits).
    pub fn new(pin: &str) -> Result<Self> {
        if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(pin.to_owned()))
        } else {
            Err(Error::InvalidPinFormat)
        }
    }

    /// Like [`Pin::new`], taking (and zeroizing) an owned string.
    pub fn from_string(mut pin: String) -> Result<Self> {
        let result = Self::new(&pin);
        pin.zeroize();
        result
    }

    pub(crate) fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for Pin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// A 32-byte secret the device keeps in its hardware keystore and feeds to Argon2 as the
/// "secret" (pepper) input. Someone who copies the share ciphertext without this secret cannot
/// even start guessing PINs.
///
/// In this implementation the secret is stored in the device state file (base64, see
/// `docs/DEVICE_STATE.md`), standing in for a hardware-backed keystore: the export
/// [`KeystoreSecret::to_base64`] / [`KeystoreSecret::from_base64`] exists only for that.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeystoreSecret([u8; KEYSTORE_SECRET_LEN]);

impl KeystoreSecret {
    /// Draws a fresh secret.
    pub fn generate(rng: &mut (impl CryptoRng + RngCore)) -> Self {
        let mut s = [0u8; KEYSTORE_SECRET_LEN];
        rng.fill_bytes(&mut s);
        Self(s)
    }

    /// Wraps exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEYSTORE_SECRET_LEN] = bytes
            .try_into()
            .map_err(|_| Error::Malformed("keystore secret"))?;
        Ok(Self(arr))
    }

    /// Exports the secret as standard base64 for the device state file (the stand-in for a
    /// hardware keystore). The returned string is zeroized on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.0))
    }

    /// Imports a secret exported with [`KeystoreSecret::to_base64`].
    pub fn from_base64(s: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            B64.decode(s)
                .map_err(|_| Error::Malformed("keystore secret"))?,
        );
        Self::from_bytes(&bytes)
    }

    pub(crate) fn expose_secret(&self) -> &[u8; KEYSTORE_SECRET_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for KeystoreSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeystoreSecret(<redacted>)")
    }
}

/// Argon2id cost parameters, recorded next to the ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Largest accepted memory cost (1 GiB): parameters come from a file and must not be
    /// able to exhaust the device.
    pub const MAX_M_COST_KIB: u32 = 1 << 20;
    /// Largest accepted iteration count.
    pub const MAX_T_COST: u32 = 64;
    /// Largest accepted parallelism.
    pub const MAX_P_COST: u32 = 16;

    /// Tiny parameters **for tests only**: they make PIN guessing cheap.
    pub fn testing() -> Self {
        Self {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn argon2_params(&self) -> Result<Params> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB
            || self.t_cost > Self::MAX_T_COST
            || self.p_cost > Self::MAX_P_COST
        {
            return Err(Error::KdfParams);
        }
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|_| Error::KdfParams)
    }
}

/// The device share encrypted under a PIN-derived key, as stored in the device state file.
///
/// JSON: `{"version":1,"algorithm":"argon2id+chacha20-xor","kdf":{...},"salt":"<b64>",
/// "ciphertext":"<b64>"}`. The ciphertext has exactly the share's length; there is no tag.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProtectedShare {
    /// Format version, 1.
    pub version: u8,
    /// `"argon2id+chacha20-xor"`.
    pub algorithm: String,
    /// Argon2id parameters.
    pub kdf: KdfParams,
    /// 16-byte Argon2 salt.
    #[serde(with = "crate::serde_b64")]
    pub salt: Vec<u8>,
    /// `d1' XOR keystream`, exactly the share length.
    #[serde(with = "crate::serde_b64")]
    pub ciphertext: Vec<u8>,
}

impl core::fmt::Debug for ProtectedShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProtectedShare")
            .field("version", &self.version)
            .field("algorithm", &self.algorithm)
            .field("kdf", &self.kdf)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl ProtectedShare {
    /// Encrypts `share` under `pin` and the keystore secret, with a fresh salt.
    pub fn protect(
        share: &DeviceShare,
        pin: &Pin,
        keystore: &KeystoreSecret,
        params: KdfParams,
        rng: &mut (impl CryptoRng + RngCore),
    ) -> Result<Self> {
        let mut salt = vec![0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut ciphertext = share.expose_secret().to_vec();
        apply_keystream(pin, keystore, &params, &salt, &mut ciphertext)?;
        Ok(Self {
            version: PROTECTED_SHARE_VERSION,
            algorithm: if share.is_even_form() {
                PROTECTED_SHARE_ALGORITHM_EVEN
            } else {
                PROTECTED_SHARE_ALGORITHM
            }
            .to_owned(),
            kdf: params,
            salt,
            ciphertext,
        })
    }

    /// Decrypts the share. For a well-formed blob this succeeds for **every** PIN: a wrong PIN
    /// yields a random-looking share of the right length, and only the server can tell.
    pub fn unlock(&self, pin: &Pin, keystore: &KeystoreSecret) -> Result<DeviceShare> {
        self.validate()?;
        let mut plain = self.ciphertext.clone();
        if let Err(e) = apply_keystream(pin, keystore, &self.kdf, &self.salt, &mut plain) {
            plain.zeroize();
            return Err(e);
        }
        Ok(if self.algorithm == PROTECTED_SHARE_ALGORITHM_EVEN {
            DeviceShare::from_vec_even(plain)
        } else {
            DeviceShare::from_vec(plain)
        })
    }

    /// Checks version, algorithm, parameter ranges and lengths (not the PIN: it cannot).
    pub fn validate(&self) -> Result<()> {
        if self.version != PROTECTED_SHARE_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "protected share",
                version: u32::from(self.version),
            });
        }
        if self.algorithm != PROTECTED_SHARE_ALGORITHM
            && self.algorithm != PROTECTED_SHARE_ALGORITHM_EVEN
        {
            return Err(Error::UnsupportedAlgorithm {
                what: "protected share",
                algorithm: self.algorithm.clone(),
            });
        }
        self.kdf.argon2_params()?;
        if self.salt.len() != SALT_LEN {
            return Err(Error::Malformed("protected share salt"));
        }
        if !(256..=512).contains(&self.ciphertext.len()) {
            return Err(Error::Malformed("protected share ciphertext"));
        }
        Ok(())
    }
}

fn apply_keystream(
    pin: &Pin,
    keystore: &KeystoreSecret,
    params: &KdfParams,
    salt: &[u8],
    data: &mut [u8],
) -> Result<()> {
    let argon = Argon2::new_with_secret(
        keystore.expose_secret(),
        Algorithm::Argon2id,
        Version::V0x13,
        params.argon2_params()?,
    )
    .map_err(|_| Error::KdfParams)?;
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pin.expose_secret().as_bytes(), salt, &mut *key)
        .map_err(|_| Error::KdfParams)?;
    let mut cipher = ChaCha20::new(&(*key).into(), &[0u8; 12].into());
    cipher.apply_keystream(data);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use subtle::ConstantTimeEq;

    fn share(n: usize) -> DeviceShare {
        DeviceShare::from_vec((0..n).map(|i| i as u8).collect())
    }

    /// The even form survives protect/unlock under its own algorithm name; an unknown name is
    /// refused.
    #[test]
    fn even_form_round_trips() {
        let mut rng = StdRng::seed_from_u64(5);
        let ks = KeystoreSecret::generate(&mut rng);
        let pin = Pin::new("2468").unwrap();
        let mut bytes: Vec<u8> = (0..256).map(|i| i as u8).collect();
        bytes[255] = 0x37;
        let share = DeviceShare::from_vec_even(bytes.clone());
        let p = ProtectedShare::protect(&share, &pin, &ks, KdfParams::testing(), &mut rng).unwrap();
        assert_eq!(p.algorithm, PROTECTED_SHARE_ALGORITHM_EVEN);
        let back = p.unlock(&pin, &ks).unwrap();
        assert!(back.is_even_form());
        assert_eq!(
            back.expose_secret(),
            bytes.as_slice(),
            "the stored value is kept whole"
        );
        assert_eq!(back.exponent()[255], 0x36);
        let plain = ProtectedShare::protect(
            &DeviceShare::from_vec(bytes),
            &pin,
            &ks,
            KdfParams::testing(),
            &mut rng,
        )
        .unwrap();
        assert_eq!(plain.algorithm, PROTECTED_SHARE_ALGORITHM);
        assert!(!plain.unlock(&pin, &ks).unwrap().is_even_form());
        let mut unknown = p.clone();
        unknown.algorithm = "argon2id+chacha20-xor+odd".into();
        assert!(matches!(
            unknown.unlock(&pin, &ks),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
    }

    #[test]
    fn pin_format() {
        for ok in ["0000", "123456", "999999999999"] {
            Pin::new(ok).unwrap();
        }
        for bad in ["", "123", "1234567890123", "12a4", "١٢٣٤", "12 34", "+1234"] {
            assert!(
                matches!(Pin::new(bad), Err(Error::InvalidPinFormat)),
                "{bad}"
            );
        }
        assert_eq!(
            format!("{:?}", Pin::new("1234").unwrap()),
            "Pin(<redacted>)"
        );
    }

    #[test]
    fn right_pin_roundtrips_wrong_pin_gives_other_share() {
        let mut rng = StdRng::seed_from_u64(1);
        let ks = KeystoreSecret::generate(&mut rng);
        let s = share(384);
        let ps = ProtectedShare::protect(
            &s,
            &Pin::new("1234").unwrap(),
            &ks,
            KdfParams::testing(),
            &mut rng,
        )
        .unwrap();
        assert_eq!(ps.ciphertext.len(), 384);
        assert_ne!(ps.ciphertext, s.expose_secret());
        let back = ps.unlock(&Pin::new("1234").unwrap(), &ks).unwrap();
        assert!(bool::from(back.ct_eq(&s)));
        let wrong = ps.unlock(&Pin::new("1235").unwrap(), &ks).unwrap();
        assert_eq!(wrong.len(), 384);
        assert!(!bool::from(wrong.ct_eq(&s)));
        // Same PIN, other keystore secret: other share.
        let other_ks = KeystoreSecret::generate(&mut rng);
        let w2 = ps.unlock(&Pin::new("1234").unwrap(), &other_ks).unwrap();
        assert!(!bool::from(w2.ct_eq(&s)));
        // Fresh salt each time.
        let ps2 = ProtectedShare::protect(
            &s,
            &Pin::new("1234").unwrap(),
            &ks,
            KdfParams::testing(),
            &mut rng,
        )
        .unwrap();
        assert_ne!(ps.salt, ps2.salt);
        assert_ne!(ps.ciphertext, ps2.ciphertext);
    }

    #[test]
    fn json_shape_and_unknown_version_or_algorithm() {
        let mut rng = StdRng::seed_from_u64(2);
        let ks = KeystoreSecret::generate(&mut rng);
        let ps = ProtectedShare::protect(
            &share(256),
            &Pin::new("0000").unwrap(),
            &ks,
            KdfParams::testing(),
            &mut rng,
        )
        .unwrap();
        let json = serde_json::to_value(&ps).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["algorithm"], "argon2id+chacha20-xor");
        assert_eq!(json["kdf"]["m_cost_kib"], 64);
        assert!(json["salt"].is_string());
        let back: ProtectedShare = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, ps);

        let mut v2 = json.clone();
        v2["version"] = 2.into();
        let v2: ProtectedShare = serde_json::from_value(v2).unwrap();
        let err = v2.unlock(&Pin::new("0000").unwrap(), &ks).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion { version: 2, .. }));
        assert!(err.to_string().contains("version 2"));

        let mut alg = json.clone();
        alg["algorithm"] = "aes-gcm".into();
        let alg: ProtectedShare = serde_json::from_value(alg).unwrap();
        assert!(matches!(
            alg.unlock(&Pin::new("0000").unwrap(), &ks),
            Err(Error::UnsupportedAlgorithm { .. })
        ));

        let mut huge = json;
        huge["kdf"]["m_cost_kib"] = (KdfParams::MAX_M_COST_KIB + 1).into();
        let huge: ProtectedShare = serde_json::from_value(huge).unwrap();
        assert!(matches!(
            huge.unlock(&Pin::new("0000").unwrap(), &ks),
            Err(Error::KdfParams)
        ));
    }

    #[test]
    fn keystore_secret_export() {
        let mut rng = StdRng::seed_from_u64(3);
        let ks = KeystoreSecret::generate(&mut rng);
        let back = KeystoreSecret::from_base64(&ks.to_base64()).unwrap();
        assert_eq!(back.expose_secret(), ks.expose_secret());
        assert!(KeystoreSecret::from_bytes(&[0u8; 31]).is_err());
        assert_eq!(format!("{ks:?}"), "KeystoreSecret(<redacted>)");
    }
}
