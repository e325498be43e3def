//! Raw modular arithmetic on unsigned big-endian byte strings.
//!
//! # Warning
//!
//! Raw, unpadded RSA. See [`crate::hazmat`].
//!
//! Secret exponents go through [`mod_pow_secret`] only, which uses crypto-bigint's
//! constant-time Montgomery exponentiation (`BoxedMontyForm::pow`): its running time depends
//! on the *length* of the exponent byte string, never on its value. All other functions here
//! handle public values (moduli, messages, signatures) and may run in variable time.
//!
//! Residual: crypto-bigint's `pow` allocates internal temporaries (the window table of
//! powers of the base) that it does not zeroize. They are powers of the *base*, which is
//! public (an encoded message), not of the exponent.

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, ConcatenatingMul, NonZero, Odd};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Number of significant bits in an unsigned big-endian integer (0 for zero / empty).
pub fn bit_length(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (bytes.len() - i) * 8 - bytes[i].leading_zeros() as usize,
    }
}

/// Byte length of the minimal encoding of an integer with `bits` bits.
pub(crate) fn byte_len(bits: usize) -> usize {
    bits.div_ceil(8)
}

/// Strips leading zero bytes (variable time: public values only).
fn trim(bytes: &[u8]) -> &[u8] {
    let i = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[i..]
}

/// Precision (in bits) needed for a byte string of `len` bytes, at least one bit.
fn precision_for_len(len: usize) -> Result<u32> {
    let bits = len.max(1).checked_mul(8).ok_or(Error::InvalidInteger)?;
    u32::try_from(bits).map_err(|_| Error::InvalidInteger)
}

/// Parses a public integer with at least `precision` bits of precision.
fn public_uint(bytes: &[u8], precision: u32) -> Result<BoxedUint> {
    BoxedUint::from_be_slice(trim(bytes), precision).map_err(|_| Error::InvalidInteger)
}

/// Left-pads (or strips known-zero leading bytes of) a big-endian encoding to `len` bytes.
/// The value must fit; callers guarantee it by reducing modulo a modulus of `len` bytes.
fn to_fixed_len(value: &BoxedUint, len: usize) -> Result<Vec<u8>> {
    let full = Zeroizing::new(value.to_be_bytes());
    if full.len() >= len {
        let (head, tail) = full.split_at(full.len() - len);
        if head.iter().any(|&b| b != 0) {
            return Err(Error::InvalidInteger);
        }
        Ok(tail.to_vec())
    } else {
        let mut out = vec![0u8; len - full.len()];
        out.extend_from_slice(&full);
        Ok(out)
    }
}

/// A parsed public modulus.
struct Modulus {
    /// Montgomery parameters; precision = modulus bits rounded up to whole limbs.
    params: BoxedMontyParams,
    /// Byte length of the modulus (outputs are padded to this).
    len: usize,
}

impl Modulus {
    fn odd(modulus: &[u8]) -> Result<Self> {
        let bits = bit_length(modulus);
        if bits < 2 {
            return Err(Error::InvalidModulus);
        }
        let precision = u32::try_from(bits).map_err(|_| Error::InvalidModulus)?;
        let m = public_uint(modulus, precision)?;
        let odd = Odd::new(m).into_option().ok_or(Error::InvalidModulus)?;
        Ok(Self {
            // The modulus is public, so the faster variable-time setup is fine.
            params: BoxedMontyParams::new_vartime(odd),
            len: byte_len(bits),
        })
    }

    /// `value mod m` as a Montgomery-form element. `value` may be longer than the modulus.
    fn element(&self, value: &[u8]) -> Result<BoxedMontyForm> {
        let reduced = reduce_uint(value, self.params.modulus().as_nz_ref())?;
        Ok(BoxedMontyForm::new(reduced, &self.params))
    }
}

/// `value mod modulus`, with the result at the modulus' precision.
fn reduce_uint(value: &[u8], modulus: &NonZero<BoxedUint>) -> Result<BoxedUint> {
    let precision = precision_for_len(value.len())?.max(modulus.bits_precision());
    let v = Zeroizing::new(
        BoxedUint::from_be_slice(value, precision).map_err(|_| Error::InvalidInteger)?,
    );
    Ok(v.rem(modulus))
}

fn nonzero_modulus(modulus: &[u8]) -> Result<NonZero<BoxedUint>> {
    let bits = bit_length(modulus);
    let precision = u32::try_from(bits.max(1)).map_err(|_| Error::InvalidModulus)?;
    let m = public_uint(modulus, precision)?;
    NonZero::new(m).into_option().ok_or(Error::InvalidModulus)
}

/// `base^exponent mod modulus`, constant time in the value of `exponent`.
///
/// The exponent is secret; the running time depends only on its byte length and on the
/// modulus size. `base` is reduced modulo `modulus` first and may be longer than it. The
/// modulus must be odd (every RSA modulus is). The result is left-padded to the modulus'
/// byte length.
///
/// # Warning
///
/// Raw, unpadded RSA: see [`crate::hazmat`].
pub fn mod_pow_secret(base: &[u8], exponent: &[u8], modulus: &[u8]) -> Result<Vec<u8>> {
    let m = Modulus::odd(modulus)?;
    let x = m.element(base)?;
    let exp_precision = precision_for_len(exponent.len())?;
    // Not `trim`med: stripping leading zeros would make the timing depend on the value.
    let exp = Zeroizing::new(
        BoxedUint::from_be_slice(exponent, exp_precision).map_err(|_| Error::InvalidInteger)?,
    );
    let y = x.pow(&exp);
    to_fixed_len(&y.retrieve(), m.len)
}

/// `base^e mod modulus` for a small public exponent `e` (variable time).
pub fn mod_pow_public(base: &[u8], e: u32, modulus: &[u8]) -> Result<Vec<u8>> {
    let m = Modulus::odd(modulus)?;
    let x = m.element(base)?;
    let exp = BoxedUint::from(u64::from(e));
    let y = x.pow_bounded_exp(&exp, 32);
    to_fixed_len(&y.retrieve(), m.len)
}

/// `a·b mod modulus`, padded to the modulus' byte length. The modulus need not be odd.
pub fn mul_mod(a: &[u8], b: &[u8], modulus: &[u8]) -> Result<Vec<u8>> {
    let m = nonzero_modulus(modulus)?;
    let a = reduce_uint(a, &m)?;
    let b = reduce_uint(b, &m)?;
    let product = Zeroizing::new(a.concatenating_mul(&b));
    to_fixed_len(&product.rem(&m), byte_len(bit_length(modulus)))
}

/// `a mod modulus`, padded to the modulus' byte length.
pub fn reduce(a: &[u8], modulus: &[u8]) -> Result<Vec<u8>> {
    let m = nonzero_modulus(modulus)?;
    to_fixed_len(&reduce_uint(a, &m)?, byte_len(bit_length(modulus)))
}

/// The product `a·b` in minimal big-endian form (no leading zero bytes; empty for zero).
/// Used for the composite modulus `n = n1·n2`.
pub fn multiply(a: &[u8], b: &[u8]) -> Vec<u8> {
    let a = trim(a);
    let b = trim(b);
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    // Both parse: the precision is chosen from their lengths.
    let pa = BoxedUint::from_be_slice(a, (a.len() * 8) as u32).unwrap_or_default();
    let pb = BoxedUint::from_be_slice(b, (b.len() * 8) as u32).unwrap_or_default();
    let product = pa.concatenating_mul(&pb);
    trim(&product.to_be_bytes()).to_vec()
}

/// Chinese remaindering: the unique `s mod n1·n2` with `s ≡ s1 (mod n1)` and
/// `s ≡ s2 (mod n2)`, padded to the byte length of `n1·n2`.
///
/// `n1` and `n2` must be coprime (distinct RSA moduli are, with overwhelming probability) and
/// `n2` odd. All inputs are public values (moduli and signature halves); this function is not
/// constant time.
pub fn crt_combine(s1: &[u8], n1: &[u8], s2: &[u8], n2: &[u8]) -> Result<Vec<u8>> {
    let n = multiply(n1, n2);
    let n_len = n.len();
    if n_len == 0 {
        return Err(Error::InvalidModulus);
    }
    let precision = precision_for_len(n_len)?;
    let n1_nz = nonzero_modulus(n1)?;
    let n2_nz = nonzero_modulus(n2)?;
    // Everything at the composite precision.
    let widen = |v: &BoxedUint| public_uint(&v.to_be_bytes(), precision);
    let s1 = widen(&reduce_uint(s1, &n1_nz)?)?;
    let s2 = widen(&reduce_uint(s2, &n2_nz)?)?;
    let n1w = public_uint(n1, precision)?;
    let n2w = Odd::new(public_uint(n2, precision)?)
        .into_option()
        .ok_or(Error::InvalidModulus)?;
    let n2nz = n2w.as_nz_ref();
    // h = (s2 - s1) · n1^{-1} mod n2 ;  s = s1 + n1·h  (Garner).
    let n1_mod_n2 = n1w.rem(n2nz);
    let n1_inv = n1_mod_n2
        .invert_odd_mod(&n2w)
        .into_option()
        .ok_or(Error::InvalidModulus)?;
    let s1_mod_n2 = s1.rem(n2nz);
    let diff = s2.sub_mod(&s1_mod_n2, n2nz);
    let h = diff.mul_mod(&n1_inv, n2nz);
    let s = s1.wrapping_add(n1w.wrapping_mul(&h));
    to_fixed_len(&s, n_len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn be(v: u128) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
    fn num(b: &[u8]) -> u128 {
        let mut a = [0u8; 16];
        a[16 - b.len()..].copy_from_slice(b);
        u128::from_be_bytes(a)
    }

    fn pow_ref(mut b: u128, mut e: u128, m: u128) -> u128 {
        let mut r = 1u128 % m;
        b %= m;
        while e > 0 {
            if e & 1 == 1 {
                r = r * b % m;
            }
            b = b * b % m;
            e >>= 1;
        }
        r
    }

    #[test]
    fn bit_length_counts_significant_bits() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0, 1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x7f, 0xff]), 15);
    }

    #[test]
    fn small_values_match_reference() {
        // Moduli below 2^63 so the reference fits in u128.
        let m: u128 = 0x7fff_ffff_ffff_ffe7; // odd
        for (b, e) in [
            (2u128, 10u128),
            (0x1234_5678_9abc, 0xfedc_ba98),
            (m + 5, 65537),
            (0, 5),
            (7, 0),
        ] {
            let got = mod_pow_secret(&be(b), &be(e), &be(m)).unwrap();
            assert_eq!(got.len(), 8, "padded to modulus length");
            assert_eq!(num(&got), pow_ref(b, e, m));
            if e <= u128::from(u32::MAX) {
                let got = mod_pow_public(&be(b), e as u32, &be(m)).unwrap();
                assert_eq!(num(&got), pow_ref(b, e, m));
            }
        }
        assert_eq!(
            num(&mul_mod(&be(123_456_789), &be(987_654_321), &be(1_000_003)).unwrap()),
            123_456_789 * 987_654_321 % 1_000_003
        );
        assert_eq!(
            num(&reduce(&be(1 << 100), &be(1_000_003)).unwrap()),
            (1u128 << 100) % 1_000_003
        );
        assert_eq!(
            num(&multiply(&be(0xffff_ffff), &be(0x1_0000_0001))),
            0xffff_ffffu128 * 0x1_0000_0001
        );
    }

    #[test]
    fn even_or_tiny_modulus_is_rejected() {
        assert!(matches!(
            mod_pow_secret(&[2], &[3], &[10]),
            Err(Error::InvalidModulus)
        ));
        assert!(matches!(
            mod_pow_secret(&[2], &[3], &[0, 1]),
            Err(Error::InvalidModulus)
        ));
        assert!(matches!(reduce(&[2], &[0]), Err(Error::InvalidModulus)));
    }

    #[test]
    fn crt_combine_small() {
        let (n1, n2) = (1_000_003u128, 999_983u128);
        for (s1, s2) in [(5u128, 7u128), (0, 0), (1_000_002, 999_982), (12345, 0)] {
            let s = num(&crt_combine(&be(s1), &be(n1), &be(s2), &be(n2)).unwrap());
            assert!(s < n1 * n2);
            assert_eq!(s % n1, s1);
            assert_eq!(s % n2, s2);
        }
        // Padded to the byte length of n1·n2 (5 bytes here).
        assert_eq!(crt_combine(&[1], &be(n1), &[1], &be(n2)).unwrap().len(), 5);
    }
}
