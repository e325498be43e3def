//! Constant-time modular exponentiation with a secret exponent on AVX-512 IFMA (52-bit
//! multiply-accumulate), for the server's share exponentiation `s1'' = x^d1'' mod n1` (a
//! non-CRT exponentiation with a secret exponent). Used by the server when a standard
//! PKCS#11 HSM hands it `d1''` (`tandem_server::bn`) and by hsm-sim inside its token
//! (`CKM_TANDEM_SHARE_EXP`).
//!
//! OpenSSL 3.0's `BN_mod_exp_mont_consttime` multiplies 64-bit limbs one at a time (`mulx`).
//! CPUs with IFMA (Intel since Ice Lake, AMD since Zen 4) multiply eight 52-bit limbs per
//! instruction. On the 2-core AMD EPYC (Zen 4) of our benchmarks this crate takes 0.47x
//! OpenSSL's time at 3072 bits and 0.39x at 4096 (docs/BENCHMARKS.md).
//!
//! Callers use [`mod_exp_secret`]: IFMA ([`pow`], [`mod_exp`]) where the CPU has it and the
//! size is handled, else OpenSSL's `BN_mod_exp_mont_consttime` ([`mod_exp_openssl`]), and
//! OpenSSL always with `TANDEM_MODEXP=openssl` ([`enabled`]).
//!
//! # Method
//!
//! - Numbers are held in radix 2^52, `8·NV` limbs (`NV` 512-bit vectors: 8 for 3072 bits,
//!   10 for 4096), with `R = 2^(52·8·NV) > 4n`.
//! - The multiplication is an "almost Montgomery multiplication" (after Gueron and Krasnov,
//!   2016): word by word, the 104-bit products split into their low and high 52 bits. The
//!   lanes accumulate without carries (each stays below 2^61) and are normalised once per
//!   multiplication. Inputs below `2n` give a result below `2n`.
//! - Exponentiation: fixed 5-bit windows over all `8·len(n)` bits of the exponent, so the
//!   sequence of operations depends only on the modulus length, not on the exponent's value
//!   or its leading zeros. Each window's table entry is read by scanning the whole table
//!   with masked moves: no secret-dependent branch or memory address.
//! - The result leaves Montgomery form by a multiplication with 1 and a masked final
//!   subtraction. The table, the exponent's words and the result's limbs are cleared after
//!   use.
//!
//! # Safety
//!
//! `unsafe` is allowed on three items only:
//! - the calls of `#[target_feature(enable = "avx512f,avx512ifma")]` functions, made only
//!   after [`available`] has seen both features on the running CPU;
//! - `transmute_copy` between `__m512i` and `[u64; 8]` (both 64 bytes, every bit pattern
//!   valid), both directions.

use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::error::ErrorStack;
use zeroize::Zeroizing;

#[cfg(target_arch = "x86_64")]
mod ifma;

/// Set to `openssl` to make [`enabled`] false: the server and hsm-sim then compute the share
/// exponentiation with OpenSSL even on a CPU with IFMA (to compare the two). Read once per
/// process.
pub const MODEXP_ENV: &str = "TANDEM_MODEXP";

/// Whether the running CPU has AVX-512F and AVX-512 IFMA (checked once).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return ifma::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether callers should use [`mod_exp`]: the CPU has IFMA ([`available`]) and
/// [`MODEXP_ENV`] does not ask for OpenSSL.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| available() && std::env::var_os(MODEXP_ENV).is_none_or(|v| v != "openssl"))
}

/// The exponent `r` of the Montgomery radix `R = 2^r` used for a modulus of `n_bits` bits,
/// or `None` when this crate does not handle that size (above 4158 bits). The caller supplies
/// `R² mod n` to [`mod_exp`].
pub fn radix_bits(n_bits: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    return ifma::radix_bits(n_bits);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = n_bits;
        None
    }
}

/// `x^d mod n` in constant time with respect to `d`, or `None` when the CPU has no IFMA
/// ([`available`]) or the size is not handled ([`radix_bits`]).
///
/// - `n`: the modulus, odd, big-endian, exactly `k` bytes with a non-zero first byte;
/// - `x`: below `n`, big-endian, at most `k` bytes;
/// - `d`: big-endian, exactly `k` bytes (pad with leading zeros): every one of its bits is
///   processed;
/// - `rr`: `R² mod n` for `R = 2^radix_bits(bits of n)`, big-endian, at most `k` bytes.
///
/// Returns `x^d mod n` as exactly `k` bytes. Violated preconditions give `None` (checked on
/// public values only: the sizes, `n` odd, `x < n`, `rr < n`).
pub fn mod_exp(x: &[u8], d: &[u8], n: &[u8], rr: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    #[cfg(target_arch = "x86_64")]
    return ifma::mod_exp(x, d, n, rr);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, d, n, rr);
        None
    }
}

/// [`mod_exp`] for callers that hold plain values: `x^d mod n` for an odd `n` (big-endian;
/// leading zero bytes of `n` and `x` are ignored), `x < n`, and `d` of at most `n`'s length
/// (left-padded here, so every bit of that length is processed). `R² mod n` is computed with
/// OpenSSL (public: it depends on `n` only). The result has `n`'s length without leading
/// zero bytes. `None` where [`mod_exp`] declines.
pub fn pow(x: &[u8], d: &[u8], n: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let n = strip(n);
    let k = n.len();
    let r = radix_bits(8 * k - n.first()?.leading_zeros() as usize)?;
    if d.len() > k {
        return None;
    }
    let mut padded = Zeroizing::new(vec![0u8; k]);
    padded[k - d.len()..].copy_from_slice(d);
    let modulus = BigNum::from_slice(n).ok()?;
    let mut r2 = BigNum::new().ok()?;
    r2.set_bit(i32::try_from(2 * r).ok()?).ok()?;
    let (mut rr, mut ctx) = (BigNum::new().ok()?, BigNumContext::new().ok()?);
    rr.nnmod(&r2, &modulus, &mut ctx).ok()?;
    mod_exp(strip(x), &padded, n, &rr.to_vec())
}

/// The share exponentiation both users call: `x^d mod n`, constant time in `d`, left-padded
/// to `n.len()` bytes. On [`pow`] when [`enabled`] and the size is handled, else on
/// [`mod_exp_openssl`].
///
/// The callers check the preconditions with their own errors first: `n` odd and at least 3,
/// `x < n`, `d` at most `n`'s length.
pub fn mod_exp_secret(x: &[u8], d: &[u8], n: &[u8]) -> Result<Zeroizing<Vec<u8>>, ErrorStack> {
    if enabled()
        && let Some(r) = pow(x, d, n)
        && r.len() <= n.len()
    {
        let mut out = Zeroizing::new(vec![0u8; n.len()]);
        out[n.len() - r.len()..].copy_from_slice(&r);
        return Ok(out);
    }
    mod_exp_openssl(x, d, n)
}

/// [`mod_exp_secret`] on OpenSSL's `BN_mod_exp_mont_consttime`: the exponent carries
/// `BN_FLG_CONSTTIME` (`set_const_time`), so `BN_mod_exp` takes the fixed-window,
/// cache-line-uniform Montgomery ladder whatever its value. The exponent and the result live
/// in secure-heap numbers that are cleared before they are freed.
pub fn mod_exp_openssl(x: &[u8], d: &[u8], n: &[u8]) -> Result<Zeroizing<Vec<u8>>, ErrorStack> {
    let (x, modulus) = (BigNum::from_slice(x)?, BigNum::from_slice(n)?);
    let mut e = SecretBn(BigNum::new_secure()?);
    e.0.copy_from_slice(d)?;
    e.0.set_const_time();
    let mut ctx = BigNumContext::new_secure()?;
    let mut r = SecretBn(BigNum::new_secure()?);
    r.0.mod_exp(&x, &e.0, &modulus, &mut ctx)?;
    // Padded to the modulus's own length, then to `n.len()` (which may add leading zeros).
    let v = Zeroizing::new(r.0.to_vec_padded(modulus.num_bytes())?);
    let mut out = Zeroizing::new(vec![0u8; n.len()]);
    out[n.len() - v.len()..].copy_from_slice(&v);
    Ok(out)
}

/// A secret big number that is wiped (`BN_clear`) when dropped; `BigNum`'s own drop
/// (`BN_free`) does not clear the digits.
struct SecretBn(BigNum);

impl Drop for SecretBn {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// Without leading zero bytes (public values only).
fn strip(v: &[u8]) -> &[u8] {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    &v[zeros..]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `pow` pads the exponent, ignores leading zero bytes of `n` and `x`, answers like
    /// OpenSSL, and declines what `mod_exp` declines or an exponent longer than `n`.
    #[test]
    fn pow_prepares_its_arguments() {
        let n = openssl::rsa::Rsa::generate(2048)
            .unwrap()
            .n()
            .to_owned()
            .unwrap();
        let nb = n.to_vec();
        let (mut x, mut d) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        n.rand_range(&mut x).unwrap();
        n.rand_range(&mut d).unwrap();
        let mut want = BigNum::new().unwrap();
        want.mod_exp(&x, &d, &n, &mut BigNumContext::new().unwrap())
            .unwrap();
        let want = want.to_vec();
        let Some(got) = pow(&x.to_vec(), &d.to_vec(), &nb) else {
            assert!(!available(), "declined on a CPU with IFMA");
            return;
        };
        assert_eq!(strip(&got), &want[..]);
        assert_eq!(got.len(), nb.len());
        let n0 = [&[0u8, 0][..], &nb].concat();
        let x0 = [&[0u8][..], &x.to_vec()].concat();
        assert_eq!(*pow(&x0, &d.to_vec(), &n0).unwrap(), *got);
        assert!(pow(&x.to_vec(), &[&[0u8][..], &nb].concat(), &nb).is_none());
        assert!(pow(&nb, &d.to_vec(), &nb).is_none());
        let mut even = nb.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert!(pow(&[2], &[3], &even).is_none());
        assert!(pow(&[2], &[3], &[0, 0]).is_none());
    }
}
