//! The server's half of a composite signature.
//!
//! ```text
//!  device share s1' ──┐
//!                     ├─ s1 = s1'·s1'' mod n1 ── s1^e ≡ x (mod n1)? ── no ──▶ WrongPin
//!  d1'' (HSM-decrypted│                                  │ yes
//!   into zeroized     │                                  ▼
//!   memory) ─ s1'' ───┘             s2 = x^d2 mod n2 inside the HSM (CKM_RSA_X_509)
//!                                                        │
//!                          s = CRT(s1, s2) mod n, s^e ≡ x (mod n)? ──▶ Valid(s)
//! ```
//!
//! `d1''` is used only with constant-time exponentiation (in the token with hsm-sim, else
//! OpenSSL's `BN_mod_exp_mont_consttime`, [`crate::bn`]) and dropped (zeroized) right after.
//! With `hsm.share_exponentiation = "token-rsa"` it never leaves the HSM: it is an RSA key
//! token object there, and `s1''` comes from `CKM_RSA_X_509` (docs/HSM_MODES.md).

use sha2::{Digest, Sha256};
use tandem_client_core::types::KeyType;

use crate::hsm::{Hsm, HsmError};
use std::time::Duration;
use zeroize::Zeroizing;

/// Public exponent of every key.
pub const E: u32 = 65537;

/// Failures that are not a wrong PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The HSM failed.
    #[error("HSM: {0}")]
    Hsm(#[from] HsmError),
    /// Arithmetic or stored-data failure.
    #[error("signing core: {0}")]
    Core(String),
    /// The key pair's secrets were destroyed.
    #[error("the key pair's secrets were destroyed")]
    Destroyed,
}

/// The verdict on a device share.
#[derive(Debug)]
pub enum ShareVerdict {
    /// The share combines to a valid signature under the composite key.
    Valid {
        /// s, |n| bytes.
        signature: Vec<u8>,
    },
    /// The share does not verify: the PIN was wrong (or the share was garbage).
    Invalid,
}

/// What the server holds for one key pair.
#[derive(Debug, Clone, Copy)]
pub struct ServerKeyRef<'a> {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// n1.
    pub client_modulus: &'a [u8],
    /// n2.
    pub server_modulus: &'a [u8],
    /// d1'' encrypted under the KEK.
    pub server_share_blob: &'a [u8],
    /// d2 wrapped under the KEK.
    pub server_key_blob: &'a [u8],
}

/// AAD binding an at-rest `d1''` blob to its key type and client modulus.
pub fn server_share_aad(key_type: KeyType, client_modulus: &[u8]) -> Vec<u8> {
    let mut aad = b"tandem/v1/server-share-at-rest\0".to_vec();
    aad.extend_from_slice(key_type.to_string().as_bytes());
    aad.push(0);
    aad.extend_from_slice(&Sha256::digest(client_modulus));
    aad
}

/// [`evaluate_share`] on a worker thread, waiting at most `timeout` ([`Hsm::bounded`]): a
/// stuck HSM gives [`SigningError::Hsm`] with [`HsmError::Timeout`] instead of a hang. The
/// evaluation changes nothing outside the HSM, so dropping a late verdict loses nothing.
pub fn evaluate_share_within(
    hsm: &Hsm,
    timeout: Duration,
    key: ServerKeyRef<'_>,
    x: &[u8],
    device_share: &[u8],
) -> Result<ShareVerdict, SigningError> {
    let key_type = key.key_type;
    let client_modulus = key.client_modulus.to_vec();
    let server_modulus = key.server_modulus.to_vec();
    let server_share_blob = key.server_share_blob.to_vec();
    let server_key_blob = key.server_key_blob.to_vec();
    let x = x.to_vec();
    let device_share = Zeroizing::new(device_share.to_vec());
    hsm.bounded(timeout, move |hsm| {
        let key = ServerKeyRef {
            key_type,
            client_modulus: &client_modulus,
            server_modulus: &server_modulus,
            server_share_blob: &server_share_blob,
            server_key_blob: &server_key_blob,
        };
        evaluate_share(hsm, key, &x, &device_share)
    })
}

/// Judges a device share for the encoded message `x` and, if it is right, completes the
/// composite signature. Runs HSM calls: call it from a blocking thread.
pub fn evaluate_share(
    hsm: &Hsm,
    key: ServerKeyRef<'_>,
    x: &[u8],
    device_share: &[u8],
) -> Result<ShareVerdict, SigningError> {
    if key.server_share_blob.is_empty() || key.server_key_blob.is_empty() {
        return Err(SigningError::Destroyed);
    }
    let bn = |e: crate::bn::BnError| SigningError::Core(e.to_string());
    let n1 = key.client_modulus;
    let n2 = key.server_modulus;
    let x1 = crate::bn::reduce(x, n1).map_err(bn)?;
    let aad = server_share_aad(key.key_type, n1);
    let s1pp = if crate::hsm::is_token_share_blob(key.server_share_blob) {
        // token-rsa: d1'' is a non-CRT RSA key object in a standard HSM (CKM_RSA_X_509).
        hsm.share_exp_token(key.server_share_blob, n1, &x1)?
    } else if hsm.has_share_mechanism() {
        // hsm-sim: d1'' stays in the token.
        hsm.share_exp(key.server_share_blob, &aad, n1, &x1)?
    } else {
        // A standard PKCS#11 HSM: the HSM decrypts d1'' into zeroized memory for the
        // constant-time exponentiation here (DESIGN.md), with OpenSSL's constant-time
        // Montgomery ladder (crate::bn).
        let d1pp = hsm.open_at_rest(key.server_share_blob, &aad)?;
        crate::bn::mod_exp_secret(&x1, &d1pp, n1).map_err(bn)?
    };
    // The public arithmetic is OpenSSL's (crate::bn), several times faster than the device
    // core's pure-Rust big integers.
    let s1 = crate::bn::mul_mod(device_share, &s1pp, n1).map_err(bn)?;
    if !crate::bn::verify_raw(&s1, &x1, n1, E) {
        return Ok(ShareVerdict::Invalid);
    }
    let x2 = crate::bn::reduce(x, n2).map_err(bn)?;
    let s2 = hsm.sign_raw(key.server_key_blob, n2, &x2)?;
    if !crate::bn::verify_raw(&s2, &x2, n2, E) {
        return Err(SigningError::Core(
            "the HSM returned a wrong partial signature".into(),
        ));
    }
    // `s ≡ s1 (mod n1)` and `s ≡ s2 (mod n2)`, both checked by `crt_combine`; with the two
    // halves verified above, `s^e ≡ x (mod n)` follows, so no public-key operation on the
    // full 6144-bit modulus is needed (it cost about 1.5% of the server's CPU per signature).
    let signature = crate::bn::crt_combine(&s1, n1, &s2, n2).map_err(|e| match e {
        crate::bn::BnError::Combination => {
            SigningError::Core("the combined signature does not verify".into())
        }
        e => bn(e),
    })?;
    Ok(ShareVerdict::Valid { signature })
}
