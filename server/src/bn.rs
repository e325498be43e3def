//! The server's big-integer arithmetic on OpenSSL: the share exponentiation with a secret
//! exponent, and the public reductions, products and checks around it.
//!
//! [`mod_exp_secret`] computes `s1'' = x^d1'' mod n1` when the HSM cannot do it in the token
//! (SoftHSM and other standard PKCS#11 modules, DESIGN.md). It checks its input and hands the
//! exponentiation to `tandem_modexp::mod_exp_secret`, which hsm-sim uses in its token too:
//! constant time in the exponent, on AVX-512 IFMA where the CPU has it (about twice as fast
//! as OpenSSL), else OpenSSL's `BN_mod_exp_mont_consttime` with the secret in cleared
//! secure-heap numbers (unless `TANDEM_MODEXP=openssl`). Either is several times faster than
//! the pure-Rust crypto-bigint ladder the device uses (docs/BENCHMARKS.md).

use openssl::bn::{BigNum, BigNumContext, BigNumRef};

/// Why an exponentiation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BnError {
    /// The modulus is even or below 3.
    #[error("the modulus must be odd and at least 3")]
    Modulus,
    /// The base is not below the modulus.
    #[error("the base is not below the modulus")]
    Base,
    /// A Chinese-remainder combination did not reduce to its two halves (an arithmetic
    /// fault; the result is withheld).
    #[error("the combined value does not match its halves")]
    Combination,
    /// OpenSSL failed (allocation).
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// `base^exponent mod modulus`, constant time in the exponent, big-endian in and out; the
/// result is left-padded to the modulus length. `base` must be below `modulus`, which must
/// be odd (an RSA modulus).
pub fn mod_exp_secret(base: &[u8], exponent: &[u8], modulus: &[u8]) -> Result<Vec<u8>, BnError> {
    let n = odd_modulus(modulus)?;
    let x = BigNum::from_slice(base)?;
    if x >= n {
        return Err(BnError::Base);
    }
    Ok(tandem_modexp::mod_exp_secret(base, exponent, modulus)?.to_vec())
}

/// `a·b mod modulus`, padded to the modulus length (public values: the halves of a partial
/// signature).
pub fn mul_mod(a: &[u8], b: &[u8], modulus: &[u8]) -> Result<Vec<u8>, BnError> {
    let n = odd_modulus(modulus)?;
    let mut ctx = BigNumContext::new()?;
    let mut r = BigNum::new()?;
    r.mod_mul(
        &*BigNum::from_slice(a)?,
        &*BigNum::from_slice(b)?,
        &n,
        &mut ctx,
    )?;
    padded(&r, modulus.len())
}

/// Checks a raw RSA signature: `signature < modulus` and `signature^e ≡ x (mod modulus)`,
/// the last comparison in constant time. `false` for malformed input. The same answers as
/// `tandem_client_core::sign::verify_raw`, with OpenSSL's arithmetic.
pub fn verify_raw(signature: &[u8], x: &[u8], modulus: &[u8], e: u32) -> bool {
    let check = || -> Result<bool, BnError> {
        let n = odd_modulus(modulus)?;
        let s = BigNum::from_slice(signature)?;
        if s >= n {
            return Ok(false);
        }
        let mut ctx = BigNumContext::new()?;
        let mut recovered = BigNum::new()?;
        recovered.mod_exp(&s, &*BigNum::from_u32(e)?, &n, &mut ctx)?;
        let mut x_red = BigNum::new()?;
        x_red.nnmod(&*BigNum::from_slice(x)?, &n, &mut ctx)?;
        let len = modulus.len();
        Ok(subtle::ConstantTimeEq::ct_eq(
            padded(&recovered, len)?.as_slice(),
            padded(&x_red, len)?.as_slice(),
        )
        .into())
    };
    check().unwrap_or(false)
}

/// The product `a·b` in minimal big-endian form (the composite modulus `n = n1·n2`).
pub fn multiply(a: &[u8], b: &[u8]) -> Result<Vec<u8>, BnError> {
    let mut ctx = BigNumContext::new()?;
    let mut r = BigNum::new()?;
    r.checked_mul(&*BigNum::from_slice(a)?, &*BigNum::from_slice(b)?, &mut ctx)?;
    Ok(r.to_vec())
}

/// Chinese remaindering (Garner): the unique `s mod n1·n2` with `s ≡ s1 (mod n1)` and
/// `s ≡ s2 (mod n2)`, padded to the byte length of `n1·n2`. Public values only.
pub fn crt_combine(s1: &[u8], n1: &[u8], s2: &[u8], n2: &[u8]) -> Result<Vec<u8>, BnError> {
    let mut ctx = BigNumContext::new()?;
    let n1b = odd_modulus(n1)?;
    let n2b = odd_modulus(n2)?;
    let mut a = BigNum::new()?;
    a.nnmod(&*BigNum::from_slice(s1)?, &n1b, &mut ctx)?;
    let mut b = BigNum::new()?;
    b.nnmod(&*BigNum::from_slice(s2)?, &n2b, &mut ctx)?;
    // h = (s2 - s1) · n1^{-1} mod n2 ;  s = s1 + n1·h
    let n1_inv = crt_inverse(n1, n2, &n1b, &n2b, &mut ctx)?;
    let mut diff = BigNum::new()?;
    diff.mod_sub(&b, &a, &n2b, &mut ctx)?;
    let mut h = BigNum::new()?;
    h.mod_mul(&diff, &n1_inv, &n2b, &mut ctx)?;
    let mut t = BigNum::new()?;
    t.checked_mul(&n1b, &h, &mut ctx)?;
    let mut s = BigNum::new()?;
    s.checked_add(&t, &a)?;
    let mut n = BigNum::new()?;
    n.checked_mul(&n1b, &n2b, &mut ctx)?;
    // The result is checked against both halves: with `s1` and `s2` verified as signatures
    // modulo `n1` and `n2`, this is what makes `s` a signature modulo `n` (the moduli are
    // coprime, or the inverse above would not exist), without a public-key operation on the
    // full-size modulus.
    let mut back = BigNum::new()?;
    back.nnmod(&s, &n1b, &mut ctx)?;
    let mut ok = back == a;
    back.nnmod(&s, &n2b, &mut ctx)?;
    ok &= back == b;
    if !ok || s >= n {
        return Err(BnError::Combination);
    }
    padded(&s, n.num_bytes() as usize)
}

/// `a mod modulus`, padded to the modulus' byte length (public values).
pub fn reduce(a: &[u8], modulus: &[u8]) -> Result<Vec<u8>, BnError> {
    let n = BigNum::from_slice(modulus)?;
    if n.num_bits() == 0 {
        return Err(BnError::Modulus);
    }
    let mut ctx = BigNumContext::new()?;
    let mut r = BigNum::new()?;
    r.nnmod(&*BigNum::from_slice(a)?, &n, &mut ctx)?;
    padded(&r, n.num_bytes() as usize)
}

/// Key pairs whose `n1^{-1} mod n2` is kept (public values, about 400 bytes each).
const CRT_CACHE_ENTRIES: usize = 4096;

/// `n1^{-1} mod n2`, from a cache keyed by SHA-256(n1 || n2). The inverse depends only on the
/// two public moduli; computing it (OpenSSL's general Euclid above 2048 bits) cost about 5% of
/// the server's CPU per signature. The cache is emptied when full.
fn crt_inverse(
    n1: &[u8],
    n2: &[u8],
    n1b: &BigNum,
    n2b: &BigNum,
    ctx: &mut BigNumContext,
) -> Result<BigNum, BnError> {
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut hasher = Sha256::new();
    hasher.update((n1.len() as u64).to_be_bytes());
    hasher.update(n1);
    hasher.update(n2);
    let key: [u8; 32] = hasher.finalize().into();
    let lock = || {
        cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    if let Some(inv) = lock().get(&key) {
        return Ok(BigNum::from_slice(inv)?);
    }
    let mut inv = BigNum::new()?;
    inv.mod_inverse(n1b, n2b, ctx)?;
    let mut cache = lock();
    if cache.len() >= CRT_CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(key, inv.to_vec());
    Ok(inv)
}

fn odd_modulus(modulus: &[u8]) -> Result<BigNum, BnError> {
    let n = BigNum::from_slice(modulus)?;
    if n.num_bits() < 2 || !n.is_bit_set(0) {
        return Err(BnError::Modulus);
    }
    Ok(n)
}

fn padded(v: &BigNumRef, len: usize) -> Result<Vec<u8>, BnError> {
    let len = i32::try_from(len).map_err(|_| BnError::Modulus)?;
    Ok(v.to_vec_padded(len)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn agrees_with_plain_mod_exp_and_refuses_bad_input() {
        let key = openssl::rsa::Rsa::generate(1024).unwrap();
        let n = key.n().to_vec();
        let mut ctx = BigNumContext::new().unwrap();
        for (x, d) in [
            (vec![2u8], vec![3u8]),
            (vec![0u8], vec![5u8]),
            (vec![1u8], vec![0xffu8; 128]),
            (vec![0x5a; 100], vec![0u8]),
            (vec![0x7f; 128], key.d().to_vec()),
        ] {
            let got = mod_exp_secret(&x, &d, &n).unwrap();
            let xb = BigNum::from_slice(&x).unwrap();
            let mut want = BigNum::new().unwrap();
            want.mod_exp(&xb, &BigNum::from_slice(&d).unwrap(), key.n(), &mut ctx)
                .unwrap();
            let want = want.to_vec_padded(n.len() as i32).unwrap();
            // Whichever path this CPU takes (IFMA or OpenSSL), and OpenSSL's directly.
            assert_eq!(got, want);
            assert_eq!(*tandem_modexp::mod_exp_openssl(&x, &d, &n).unwrap(), want);
            // A modulus given with a leading zero byte: the result keeps that length.
            let n0 = [&[0u8][..], &n].concat();
            assert_eq!(mod_exp_secret(&x, &d, &n0).unwrap()[1..], want[..]);
        }
        assert!(matches!(mod_exp_secret(&n, &[3], &n), Err(BnError::Base)));
        let mut even = n.clone();
        *even.last_mut().unwrap() &= 0xfe;
        assert!(matches!(
            mod_exp_secret(&[2], &[3], &even),
            Err(BnError::Modulus)
        ));
        assert!(matches!(
            mod_exp_secret(&[0], &[3], &[1]),
            Err(BnError::Modulus)
        ));
    }

    /// The OpenSSL versions answer exactly as the device core's (crypto-bigint) ones.
    #[test]
    fn public_arithmetic_agrees_with_the_client_core() {
        use tandem_client_core::hazmat;
        use tandem_client_core::sign::{combine_client_shares, verify_raw as core_verify};
        let k1 = openssl::rsa::Rsa::generate(1024).unwrap();
        let k2 = openssl::rsa::Rsa::generate(1024).unwrap();
        let (n1, n2) = (k1.n().to_vec(), k2.n().to_vec());
        let rnd = |len: usize| {
            let mut v = vec![0u8; len];
            openssl::rand::rand_bytes(&mut v).unwrap();
            v[0] &= 0x7f;
            v
        };
        for _ in 0..20 {
            let (a, b) = (rnd(128), rnd(128));
            assert_eq!(
                mul_mod(&a, &b, &n1).unwrap(),
                combine_client_shares(&a, &b, &n1).unwrap()
            );
            let (s1, s2) = (rnd(128), rnd(128));
            // The first pass computes n1^{-1} mod n2, later ones take it from the cache; the
            // swapped pair has its own entry.
            assert_eq!(
                crt_combine(&s1, &n1, &s2, &n2).unwrap(),
                hazmat::crt_combine(&s1, &n1, &s2, &n2).unwrap()
            );
            assert_eq!(
                crt_combine(&s2, &n2, &s1, &n1).unwrap(),
                hazmat::crt_combine(&s2, &n2, &s1, &n1).unwrap()
            );
            assert_eq!(multiply(&n1, &n2).unwrap(), hazmat::multiply(&n1, &n2));
            // Reduction of a full-size value by either half, as the signing path does.
            let wide = rnd(256);
            assert_eq!(
                reduce(&wide, &n1).unwrap(),
                hazmat::reduce(&wide, &n1).unwrap()
            );
            assert_eq!(
                reduce(&wide, &n2).unwrap(),
                hazmat::reduce(&wide, &n2).unwrap()
            );
            // The combination is a signature under n1·n2 when its halves are: the check
            // inside crt_combine replaces a public-key operation on the full modulus.
            let x = rnd(256);
            let (x1, x2) = (reduce(&x, &n1).unwrap(), reduce(&x, &n2).unwrap());
            let mut h1 = vec![0u8; 128];
            k1.private_encrypt(&x1, &mut h1, openssl::rsa::Padding::NONE)
                .unwrap();
            let mut h2 = vec![0u8; 128];
            k2.private_encrypt(&x2, &mut h2, openssl::rsa::Padding::NONE)
                .unwrap();
            let s = crt_combine(&h1, &n1, &h2, &n2).unwrap();
            assert!(verify_raw(&s, &x, &multiply(&n1, &n2).unwrap(), 65537));
            // A real signature verifies, a changed one does not, in both.
            let x = rnd(128);
            let mut sig = vec![0u8; 128];
            k1.private_encrypt(&x, &mut sig, openssl::rsa::Padding::NONE)
                .unwrap();
            assert!(verify_raw(&sig, &x, &n1, 65537));
            assert!(core_verify(&sig, &x, &n1, 65537));
            let mut bad = sig.clone();
            bad[100] ^= 1;
            assert!(!verify_raw(&bad, &x, &n1, 65537));
            assert!(!core_verify(&bad, &x, &n1, 65537));
            // An unreduced signature (s + n) is refused by both.
            let mut unreduced = BigNum::new().unwrap();
            unreduced
                .checked_add(
                    &BigNum::from_slice(&sig).unwrap(),
                    &BigNum::from_slice(&n1).unwrap(),
                )
                .unwrap();
            let unreduced = unreduced.to_vec();
            assert!(!verify_raw(&unreduced, &x, &n1, 65537));
            assert!(!core_verify(&unreduced, &x, &n1, 65537));
        }
        assert!(!verify_raw(&[1], &[1], &[2], 65537), "even modulus");
    }
}
