//! Client key generation and the split of its private exponent.
//!
//! ```text
//!   n1 = p1·q1,  e = 65537,  d1 = e⁻¹ mod φ(n1)
//!   d1'  uniform in [0, 2^bits)            -> DeviceShare (PIN-protected, stays on device)
//!   d1'' = (d1 − d1') mod φ(n1)            -> ServerShare (sealed to the server, then dropped)
//!   x^d1' · x^d1'' ≡ x^d1 (mod n1)
//! ```

use crypto_bigint::{BoxedUint, NonZero};
use rand_core::{CryptoRng, RngCore};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::hazmat::bigint::bit_length;
use crate::{Error, Result};

/// The public exponent of every Tandem key.
pub const PUBLIC_EXPONENT: u32 = 65537;

/// Default client key size.
pub const DEFAULT_CLIENT_KEY_BITS: usize = 3072;

/// Key sizes [`generate_client_key`] accepts.
pub const SUPPORTED_CLIENT_KEY_BITS: [usize; 3] = [2048, 3072, 4096];

/// The device's exponent share `d1'`: big-endian, exactly the byte length of `n1`.
///
/// This value MUST NOT leave the device. On the device it exists in clear only between
/// [`crate::pin::ProtectedShare::unlock`] and the end of [`crate::sign::partial_sign`]; at rest
/// it is stored as a [`crate::pin::ProtectedShare`]. (`tandem load`'s simulated devices keep
/// their shares unlocked for the length of a run.)
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DeviceShare(Vec<u8>);

impl DeviceShare {
    pub(crate) fn from_vec(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The raw share. Crate-private so that every use can be found with grep.
    pub(crate) fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length of the share in bytes (the byte length of `n1`).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the share is empty (never true for a generated or unlocked share).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ConstantTimeEq for DeviceShare {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl core::fmt::Debug for DeviceShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceShare(<redacted>)")
    }
}

/// The server's exponent share `d1''`: big-endian, exactly the byte length of `n1`.
///
/// On the device this value exists only between [`generate_client_key`] and
/// [`crate::envelope::seal_server_share`], which consumes it: the device cannot keep it.
/// On the server it exists in clear only after the HSM has opened its envelope
/// ([`ServerShare::from_bytes`]) and until [`crate::sign::server_partial`] returns.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ServerShare(Vec<u8>);

impl ServerShare {
    /// Rebuilds a share from bytes the HSM decrypted (server side).
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Result<Self> {
        if bytes.is_empty() {
            return Err(Error::InvalidInteger);
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The raw share. Crate-private: the server only uses it through
    /// [`crate::sign::server_partial`], the device only through sealing.
    pub(crate) fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length of the share in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the share is empty (never true for a valid share).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl core::fmt::Debug for ServerShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ServerShare(<redacted>)")
    }
}

/// The result of client key generation.
///
/// `modulus` is public and is sent to the server. `device_share` is PIN-protected and kept.
/// `server_share` must be moved into [`crate::envelope::seal_server_share`].
#[derive(Debug)]
pub struct ClientKeyMaterial {
    /// `n1`, big-endian, minimal (exactly `bits/8` bytes).
    pub modulus: Vec<u8>,
    /// `d1'`.
    pub device_share: DeviceShare,
    /// `d1''`.
    pub server_share: ServerShare,
}

/// Generates the client key `n1` and splits its private exponent.
///
/// `bits` must be 2048, 3072 or 4096. The primes come from the `rsa` crate's generator (with
/// e = 65537); candidates with `|p − q| ≤ 2^(bits/2 − 100)` are rejected (FIPS 186-4, B.3.1).
/// `d1 = e⁻¹ mod φ(n1)` is computed here with crypto-bigint, `d1'` is drawn uniformly from
/// `[0, 2^bits)` and `d1'' = (d1 − d1') mod φ(n1)`.
///
/// `p1`, `q1`, `φ`, `d1` and every temporary are zeroized before returning.
/// Residual: the `rsa` crate's prime search allocates `BigUint` temporaries (rejected
/// candidates, `p−1`, ...) that it does not zeroize; the key object itself is zeroized on drop.
pub fn generate_client_key(
    rng: &mut (impl CryptoRng + RngCore),
    bits: usize,
) -> Result<ClientKeyMaterial> {
    generate_with_primes(rng, bits).map(|(material, _p, _q)| material)
}

/// A prime factor, big-endian, zeroized on drop.
pub(crate) type PrimeBytes = Zeroizing<Vec<u8>>;

/// [`generate_client_key`], also returning `p` and `q` (zeroized on drop) so that tests can
/// check that they never reach the state file.
pub(crate) fn generate_with_primes(
    rng: &mut (impl CryptoRng + RngCore),
    bits: usize,
) -> Result<(ClientKeyMaterial, PrimeBytes, PrimeBytes)> {
    if !SUPPORTED_CLIENT_KEY_BITS.contains(&bits) {
        return Err(Error::UnsupportedKeySize(bits));
    }
    let k = bits / 8;
    let precision = u32::try_from(bits).map_err(|_| Error::UnsupportedKeySize(bits))?;
    let exp = rsa::BigUint::from(PUBLIC_EXPONENT);
    loop {
        let (modulus, p_bytes, q_bytes) = {
            // `RsaPrivateKey` zeroizes d and the primes on drop (end of this block).
            let key = rsa::RsaPrivateKey::new_with_exp(rng, bits, &exp)
                .map_err(|_| Error::KeyGeneration)?;
            let primes = key.primes();
            if primes.len() != 2 {
                return Err(Error::KeyGeneration);
            }
            (
                key.n().to_bytes_be(),
                Zeroizing::new(primes[0].to_bytes_be()),
                Zeroizing::new(primes[1].to_bytes_be()),
            )
        };
        if bit_length(&modulus) != bits || modulus.len() != k {
            return Err(Error::KeyGeneration);
        }
        let p = Zeroizing::new(uint(&p_bytes, precision)?);
        let q = Zeroizing::new(uint(&q_bytes, precision)?);

        // FIPS 186-4 B.3.1 (2)(d): |p − q| > 2^(nlen/2 − 100).
        let diff = Zeroizing::new(if *p > *q {
            p.wrapping_sub(&*q)
        } else {
            q.wrapping_sub(&*p)
        });
        let bound = BoxedUint::one_with_precision(precision).shl(precision / 2 - 100);
        if *diff <= bound {
            continue;
        }

        let one = BoxedUint::one_with_precision(precision);
        let p_minus_1 = Zeroizing::new(p.wrapping_sub(&one));
        let q_minus_1 = Zeroizing::new(q.wrapping_sub(&one));
        let phi = Zeroizing::new(p_minus_1.wrapping_mul(&*q_minus_1));
        let phi_nz = Zeroizing::new(
            NonZero::new((*phi).clone())
                .into_option()
                .ok_or(Error::KeyGeneration)?,
        );
        let e = BoxedUint::from(u64::from(PUBLIC_EXPONENT)).resize_to(precision);
        let d1 = Zeroizing::new(
            e.invert_mod(&phi_nz)
                .into_option()
                .ok_or(Error::KeyGeneration)?,
        );

        // d1' uniform in [0, 2^bits): exactly `bits` random bits in k bytes.
        let mut d1_dev = Zeroizing::new(vec![0u8; k]);
        rng.fill_bytes(&mut d1_dev);
        let d1_dev_int = Zeroizing::new(uint(&d1_dev, precision)?);
        let d1_dev_red = Zeroizing::new(d1_dev_int.rem(&phi_nz));
        let d1_srv = Zeroizing::new(d1.sub_mod(&d1_dev_red, &phi_nz));
        let d1_srv_bytes = Zeroizing::new(d1_srv.to_be_bytes());
        let srv = d1_srv_bytes[d1_srv_bytes.len() - k..].to_vec();
        let material = ClientKeyMaterial {
            modulus,
            device_share: DeviceShare(core::mem::take(&mut *d1_dev)),
            server_share: ServerShare(srv),
        };
        return Ok((material, p_bytes, q_bytes));
    }
}

/// Parses a big-endian value of at most `precision` bits (constant time in the value).
fn uint(bytes: &[u8], precision: u32) -> Result<BoxedUint> {
    BoxedUint::from_be_slice(bytes, precision).map_err(|_| Error::InvalidInteger)
}

trait ResizeTo {
    fn resize_to(self, precision: u32) -> BoxedUint;
}

impl ResizeTo for BoxedUint {
    fn resize_to(self, precision: u32) -> BoxedUint {
        let bytes = self.to_be_bytes();
        let i = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        BoxedUint::from_be_slice(&bytes[i..], precision)
            .unwrap_or_else(|_| BoxedUint::zero_with_precision(precision))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hazmat::bigint::{mod_pow_public, mod_pow_secret, mul_mod};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn rejects_unsupported_sizes() {
        let mut rng = StdRng::seed_from_u64(0);
        for bits in [0usize, 1024, 2047, 8192] {
            assert!(
                matches!(generate_client_key(&mut rng, bits), Err(Error::UnsupportedKeySize(b)) if b == bits)
            );
        }
    }

    // 2048-bit keys in tests only: they are faster to generate.
    #[test]
    fn shares_recombine_to_a_valid_private_exponent() {
        let mut rng = StdRng::seed_from_u64(7);
        let (km, p, q) = generate_with_primes(&mut rng, 2048).unwrap();
        assert_eq!(km.modulus.len(), 256);
        assert_eq!(km.device_share.len(), 256);
        assert_eq!(km.server_share.len(), 256);
        assert_eq!(crate::hazmat::bigint::multiply(&p, &q), km.modulus);
        let x = [0x42u8; 200];
        let a = mod_pow_secret(&x, km.device_share.expose_secret(), &km.modulus).unwrap();
        let b = mod_pow_secret(&x, km.server_share.expose_secret(), &km.modulus).unwrap();
        let s = mul_mod(&a, &b, &km.modulus).unwrap();
        let back = mod_pow_public(&s, PUBLIC_EXPONENT, &km.modulus).unwrap();
        assert_eq!(&back[56..], &x[..]);
        assert!(back[..56].iter().all(|&b| b == 0));
        // A single share alone is not a signing key.
        let back_a = mod_pow_public(&a, PUBLIC_EXPONENT, &km.modulus).unwrap();
        assert_ne!(&back_a[56..], &x[..]);
    }

    #[test]
    fn debug_is_redacted() {
        let s = DeviceShare(vec![0xab; 4]);
        assert_eq!(format!("{s:?}"), "DeviceShare(<redacted>)");
        let t = ServerShare::from_bytes(Zeroizing::new(vec![0xab; 4])).unwrap();
        assert!(!format!("{t:?}").contains("ab"));
        assert!(ServerShare::from_bytes(Zeroizing::new(vec![])).is_err());
    }
}
