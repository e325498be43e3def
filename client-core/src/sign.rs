//! Partial signatures with the two halves of the client exponent, and their combination.
//!
//! ```text
//!   device:  s1'  = (x mod n1)^d1'  mod n1      partial_sign      (after checking x)
//!   server:  s1'' = (x mod n1)^d1'' mod n1      server_partial
//!   server:  s1   = s1'·s1'' mod n1             combine_client_shares
//!   server:  s1^e ≡ x (mod n1) ?                verify_raw        (wrong PIN ⇔ false)
//! ```

use subtle::ConstantTimeEq;

use crate::encoding::{HashAlgorithm, SignatureScheme, verify_encoding};
use crate::hazmat::bigint::{bit_length, mod_pow_public, mod_pow_secret, mul_mod, reduce};
use crate::keys::{DeviceShare, ServerShare};
use crate::{Error, Result};

/// What the device is asked to sign, already validated at the wire boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningRequest {
    /// Encoding scheme of `encoded_message`.
    pub scheme: SignatureScheme,
    /// Hash algorithm of `digest`.
    pub hash: HashAlgorithm,
    /// The digest the device shows / expects (e.g. hash of what the user approves).
    pub digest: Vec<u8>,
    /// `x`: the encoding of `digest` for the composite modulus, `⌈bits/8⌉` bytes.
    pub encoded_message: Vec<u8>,
    /// Bit length of the composite modulus `n = n1·n2`.
    pub composite_modulus_bits: usize,
}

/// The device's partial signature `s1' = x^d1' mod n1`, padded to the byte length of `n1`.
///
/// Not a secret in itself, but it is produced from the PIN-decrypted share and sent
/// (sealed) to the server only; it should not be logged, so `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PartialSignature(Vec<u8>);

impl PartialSignature {
    /// The big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The big-endian bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl core::fmt::Debug for PartialSignature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PartialSignature(<redacted>)")
    }
}

fn check_share_len(share_len: usize, client_modulus: &[u8]) -> Result<()> {
    let n1_len = bit_length(client_modulus).div_ceil(8);
    if n1_len == 0 || share_len != n1_len {
        return Err(Error::InvalidInteger);
    }
    Ok(())
}

/// Device side: checks that `request.encoded_message` is a valid encoding of
/// `request.digest` (refusing with [`Error::EncodingMismatch`] otherwise) and computes
/// `s1' = (x mod n1)^d1' mod n1` in constant time.
///
/// The share may come from a wrong PIN: the device cannot know, and produces a well-formed
/// value anyway. The result goes to the server (sealed); the share MUST NOT.
pub fn partial_sign(
    share: &DeviceShare,
    client_modulus: &[u8],
    request: &SigningRequest,
) -> Result<PartialSignature> {
    check_request(share, client_modulus, request)?;
    mod_pow_secret(&request.encoded_message, &share.exponent(), client_modulus)
        .map(PartialSignature)
}

/// A caller's constant-time exponentiation `(base, exponent, modulus) ↦ base^exponent mod
/// modulus`, big-endian, padded to the modulus length ([`partial_sign_with`]).
pub type ModExp<'a> = dyn Fn(&[u8], &[u8], &[u8]) -> Result<Vec<u8>> + 'a;

/// [`partial_sign`] with the exponentiation done by the caller:
/// `mod_exp(x mod n1, d1', n1)`, big-endian, the result padded to the length of `n1`. The
/// same checks come first.
///
/// For test harnesses, not for apps: `tandem load` runs its simulated devices beside the
/// server it measures, on the same cores, and exponentiates with OpenSSL's constant-time
/// ladder in half the CPU time of this crate's pure-Rust one. `mod_exp` sees the share: it
/// must be constant time in the exponent and must not keep it.
pub fn partial_sign_with(
    share: &DeviceShare,
    client_modulus: &[u8],
    request: &SigningRequest,
    mod_exp: &ModExp<'_>,
) -> Result<PartialSignature> {
    check_request(share, client_modulus, request)?;
    let x = reduce(&request.encoded_message, client_modulus)?;
    let s = mod_exp(&x, &share.exponent(), client_modulus)?;
    if s.len() != client_modulus.len() {
        return Err(Error::InvalidInteger);
    }
    Ok(PartialSignature(s))
}

/// The checks of [`partial_sign`]: `x` encodes the digest for the composite modulus, `n1`
/// is shorter than it, and the share has `n1`'s length.
fn check_request(
    share: &DeviceShare,
    client_modulus: &[u8],
    request: &SigningRequest,
) -> Result<()> {
    match verify_encoding(
        request.scheme,
        request.hash,
        &request.digest,
        &request.encoded_message,
        request.composite_modulus_bits,
    ) {
        Ok(()) => {}
        Err(Error::DigestLength) => return Err(Error::DigestLength),
        Err(_) => return Err(Error::EncodingMismatch),
    }
    // n1 is a factor of n, so it is shorter; otherwise the request is not for this key.
    if bit_length(client_modulus) >= request.composite_modulus_bits {
        return Err(Error::InvalidModulus);
    }
    check_share_len(share.len(), client_modulus)
}

/// Server side: `s1'' = (x mod n1)^d1'' mod n1`, constant time in `d1''`.
///
/// The caller must have checked that `x` is a valid encoding of the digest it expects.
pub fn server_partial(share: &ServerShare, client_modulus: &[u8], x: &[u8]) -> Result<Vec<u8>> {
    check_share_len(share.len(), client_modulus)?;
    mod_pow_secret(x, share.expose_secret(), client_modulus)
}

/// Server side: `s1 = s1'·s1'' mod n1`.
pub fn combine_client_shares(s1_device: &[u8], s1_server: &[u8], n1: &[u8]) -> Result<Vec<u8>> {
    mul_mod(s1_device, s1_server, n1)
}

/// Checks a raw RSA signature: `signature < modulus` and `signature^e ≡ x (mod modulus)`,
/// the final comparison in constant time. Returns `false` for malformed input.
pub fn verify_raw(signature: &[u8], x: &[u8], modulus: &[u8], e: u32) -> bool {
    let (Ok(s_red), Ok(recovered), Ok(x_red)) = (
        reduce(signature, modulus),
        mod_pow_public(signature, e, modulus),
        reduce(x, modulus),
    ) else {
        return false;
    };
    // Reject an unreduced signature: compare s with s mod n as numbers.
    let s_bits = bit_length(signature);
    let n_len = s_red.len();
    let sig_fixed = if signature.len() >= n_len {
        signature[signature.len() - n_len..].to_vec()
    } else {
        let mut v = vec![0u8; n_len - signature.len()];
        v.extend_from_slice(signature);
        v
    };
    if s_bits > n_len * 8 || sig_fixed != s_red {
        return false;
    }
    bool::from(recovered.ct_eq(&x_red))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn verify_raw_small_values() {
        // n = 3233 = 61·53, e = 17, d = 2753.
        let n = 3233u32.to_be_bytes();
        let x = 65u32.to_be_bytes();
        let s = mod_pow_secret(&x, &2753u32.to_be_bytes(), &n).unwrap();
        assert!(verify_raw(&s, &x, &n, 17));
        assert!(!verify_raw(&s, &66u32.to_be_bytes(), &n, 17));
        // s + n is congruent but unreduced: rejected.
        let s_val = u32::from_be_bytes([0, 0, s[0], s[1]]);
        assert!(!verify_raw(&(s_val + 3233).to_be_bytes(), &x, &n, 17));
        assert!(!verify_raw(&s, &x, &[0], 17));
    }

    #[test]
    fn partial_signature_debug_redacted() {
        let p = PartialSignature(vec![1, 2, 3]);
        assert_eq!(format!("{p:?}"), "PartialSignature(<redacted>)");
        assert_eq!(p.as_bytes(), &[1, 2, 3]);
    }
}
