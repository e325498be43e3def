//! The server's constant-time modular exponentiation with a secret exponent: OpenSSL's
//! `BN_mod_exp_mont_consttime`, reached through `BN_mod_exp` with `BN_FLG_CONSTTIME` set on
//! the exponent (OpenSSL then takes the fixed-window, cache-line-uniform Montgomery ladder
//! whatever the exponent's value). The secret lives only in `BN_secure_new` numbers, which
//! OpenSSL clears when they are freed (and which this module clears before that as well).
//!
//! Used for `s1'' = x^d1'' mod n1` when the HSM cannot do it in the token (SoftHSM and other
//! standard PKCS#11 modules, DESIGN.md); about 2x faster than the pure-Rust crypto-bigint
//! ladder the device uses (docs/BENCHMARKS.md).

use openssl::bn::{BigNum, BigNumContext};

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
    /// OpenSSL failed (allocation).
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A big number holding a secret: secure-heap allocated, cleared on drop.
struct Secret(BigNum);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// `base^exponent mod modulus`, constant time in the exponent, big-endian in and out; the
/// result is left-padded to the modulus length. `base` must be below `modulus`, which must
/// be odd (an RSA modulus).
pub fn mod_exp_secret(base: &[u8], exponent: &[u8], modulus: &[u8]) -> Result<Vec<u8>, BnError> {
    let n = BigNum::from_slice(modulus)?;
    if n.num_bits() < 2 || !n.is_bit_set(0) {
        return Err(BnError::Modulus);
    }
    let x = BigNum::from_slice(base)?;
    if x >= n {
        return Err(BnError::Base);
    }
    let mut d = Secret(BigNum::new_secure()?);
    d.0.copy_from_slice(exponent)?;
    d.0.set_const_time();
    let mut ctx = BigNumContext::new_secure()?;
    let mut r = Secret(BigNum::new_secure()?);
    r.0.mod_exp(&x, &d.0, &n, &mut ctx)?;
    // The modulus is public; its byte length fits an i32 for any RSA size.
    let len = i32::try_from(modulus.len()).map_err(|_| BnError::Modulus)?;
    Ok(r.0.to_vec_padded(len)?)
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
            let mut want = BigNum::new().unwrap();
            want.mod_exp(
                &BigNum::from_slice(&x).unwrap(),
                &BigNum::from_slice(&d).unwrap(),
                key.n(),
                &mut ctx,
            )
            .unwrap();
            assert_eq!(got, want.to_vec_padded(n.len() as i32).unwrap());
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
}
