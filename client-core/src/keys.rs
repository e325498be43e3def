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
///
/// A share of the `token-rsa` form ([`generate_client_key_for_token`]) is stored as `m` and
/// used as the exponent `d1' = m` with its lowest bit cleared (`even`): `d1''` must be odd
/// there, so every working `d1'` is even, and storing it as it is would let a copied state
/// file tell half of the wrong PINs apart. The stored `m` is uniform, as for the plain form.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DeviceShare(Vec<u8>, bool);

impl DeviceShare {
    pub(crate) fn from_vec(bytes: Vec<u8>) -> Self {
        Self(bytes, false)
    }

    /// A share whose exponent is `bytes` with the lowest bit cleared.
    pub(crate) fn from_vec_even(bytes: Vec<u8>) -> Self {
        Self(bytes, true)
    }

    /// The stored value (for PIN protection). Crate-private so that every use can be found
    /// with grep.
    pub(crate) fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Whether the exponent is the stored value with its lowest bit cleared.
    pub(crate) fn is_even_form(&self) -> bool {
        self.1
    }

    /// The exponent `d1'` to raise `x` to (zeroized on drop).
    pub(crate) fn exponent(&self) -> Zeroizing<Vec<u8>> {
        let mut d = Zeroizing::new(self.0.clone());
        if self.1
            && let Some(last) = d.last_mut()
        {
            *last &= 0xfe;
        }
        d
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
        self.0.ct_eq(&other.0) & subtle::Choice::from(u8::from(self.1 == other.1))
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
    let key = generate_rsa(rng, bits)?;
    // d1' uniform in [0, 2^bits): exactly `bits` random bits in k bytes.
    let mut d1_dev = Zeroizing::new(vec![0u8; key.k]);
    rng.fill_bytes(&mut d1_dev);
    let d1_dev_int = Zeroizing::new(uint(&d1_dev, key.precision)?);
    let d1_dev_red = Zeroizing::new(d1_dev_int.rem(&key.phi));
    let d1_srv = Zeroizing::new(key.d1.sub_mod(&d1_dev_red, &key.phi));
    let srv = fixed_len(&d1_srv, key.k);
    let material = ClientKeyMaterial {
        modulus: key.modulus,
        device_share: DeviceShare::from_vec(core::mem::take(&mut *d1_dev)),
        server_share: ServerShare(srv.to_vec()),
    };
    Ok((material, key.p, key.q))
}

/// A fresh client RSA key: what both split forms start from. Zeroized on drop.
struct ClientRsaKey {
    modulus: Vec<u8>,
    p: PrimeBytes,
    q: PrimeBytes,
    /// φ(n1) (non-zero).
    phi: Zeroizing<NonZero<BoxedUint>>,
    /// d1 = e⁻¹ mod φ(n1).
    d1: Zeroizing<BoxedUint>,
    precision: u32,
    k: usize,
}

/// Generates n1 = p1·q1 with FIPS 186-4 style primes and d1 = e⁻¹ mod φ(n1).
fn generate_rsa(rng: &mut (impl CryptoRng + RngCore), bits: usize) -> Result<ClientRsaKey> {
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
        return Ok(ClientRsaKey {
            modulus,
            p: p_bytes,
            q: q_bytes,
            phi: phi_nz,
            d1,
            precision,
            k,
        });
    }
}

/// The last `k` bytes of a value's big-endian form (zeroized on drop).
fn fixed_len(v: &BoxedUint, k: usize) -> Zeroizing<Vec<u8>> {
    let bytes = Zeroizing::new(v.to_be_bytes());
    Zeroizing::new(bytes[bytes.len() - k..].to_vec())
}

/// The server's share as an RSA private key for the server's HSM (`token-rsa`): PKCS#8
/// `PrivateKeyInfo` (DER) of `RSAPrivateKey { 0, n1, e_obj, d1'', 0, 0, 0, 0, 0 }` with
/// `e_obj = d1''⁻¹ mod φ(n1)`, no primes and no CRT values. The HSM computes `x^d1'' mod n1`
/// with it (`CKM_RSA_X_509`); `e_obj` is there because OpenSSL's RSA blinding (SoftHSM)
/// needs `e·d ≡ 1`.
///
/// On the device this value exists only between [`generate_client_key_for_token`] and
/// [`crate::envelope::seal_server_share_key`], which consumes it. **Whoever holds it and
/// `n1` can factor `n1`** (`e_obj·d1'' − 1` is a multiple of λ(n1)): it must reach the HSM
/// only wrapped, and never software in clear.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ServerShareKey(Vec<u8>);

impl ServerShareKey {
    /// The DER. Crate-private: only sealing uses it.
    pub(crate) fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for ServerShareKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ServerShareKey(<redacted>)")
    }
}

/// The result of [`generate_client_key_for_token`].
#[derive(Debug)]
pub struct TokenClientKeyMaterial {
    /// `n1`, big-endian, exactly `bits/8` bytes.
    pub modulus: Vec<u8>,
    /// `d1'` in the even form (see [`DeviceShare`]).
    pub device_share: DeviceShare,
    /// `d1''` as an RSA key for the HSM; must be moved into
    /// [`crate::envelope::seal_server_share_key`].
    pub server_share_key: ServerShareKey,
}

/// Generates the client key `n1` and splits its private exponent for a server that keeps
/// `d1''` inside a standard HSM as a non-CRT RSA key object (`token-rsa`, docs/HSM_MODES.md).
///
/// ```text
///   m uniform in [0, 2^bits)            -> stored (PIN-protected) as the device share
///   d1'  = m with bit 0 cleared          (even)
///   d1'' = (d1 − d1') mod φ(n1)          (odd, as d1 is odd)
///   e_obj = d1''⁻¹ mod φ(n1)             (m is drawn again while d1'' is not invertible)
/// ```
///
/// Residual bias: redrawing `m` until `d1''` is invertible makes `d1' mod r` avoid
/// `d1 mod r` for each odd prime `r` dividing λ(n1); whether `r` divides λ(n1) is not known
/// to whoever holds a copied state file, so that leaks a small fraction of a bit about the
/// PIN (docs/HSM_MODES.md quantifies it). The parity, which would leak a full bit, is
/// masked by the even form.
pub fn generate_client_key_for_token(
    rng: &mut (impl CryptoRng + RngCore),
    bits: usize,
) -> Result<TokenClientKeyMaterial> {
    let key = generate_rsa(rng, bits)?;
    // φ and λ have the same prime factors, so d1'' is invertible mod λ(n1) (which is what
    // the HSM's blinding needs) exactly when it is invertible mod φ(n1).
    for _ in 0..256 {
        let mut m = Zeroizing::new(vec![0u8; key.k]);
        rng.fill_bytes(&mut m);
        let share = DeviceShare::from_vec_even(core::mem::take(&mut *m));
        let d1_dev = Zeroizing::new(uint(&share.exponent(), key.precision)?);
        let d1_dev_red = Zeroizing::new(d1_dev.rem(&key.phi));
        let d1_srv = Zeroizing::new(key.d1.sub_mod(&d1_dev_red, &key.phi));
        let Some(e_obj) = d1_srv.invert_mod(&key.phi).into_option() else {
            continue;
        };
        let e_obj = Zeroizing::new(e_obj);
        let der = rsa_private_key_pkcs8(
            &key.modulus,
            &fixed_len(&e_obj, key.k),
            &fixed_len(&d1_srv, key.k),
        );
        return Ok(TokenClientKeyMaterial {
            modulus: key.modulus.clone(),
            device_share: share,
            server_share_key: ServerShareKey(der),
        });
    }
    Err(Error::KeyGeneration)
}

/// DER `PrivateKeyInfo { 0, rsaEncryption, RSAPrivateKey { 0, n, e, d, 0, 0, 0, 0, 0 } }`.
fn rsa_private_key_pkcs8(n: &[u8], e: &[u8], d: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, len: usize) {
        // Lengths here stay below 65536.
        match len {
            0..0x80 => out.push(len as u8),
            0x80..0x100 => out.extend_from_slice(&[0x81, len as u8]),
            _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        }
    }
    fn integer(out: &mut Vec<u8>, v: &[u8]) {
        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
        let v = &v[start..];
        let pad = v.first().is_none_or(|&b| b & 0x80 != 0);
        out.push(0x02);
        len(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        len(&mut out, body.len());
        out.extend_from_slice(body);
        out
    }
    let mut rsa = Zeroizing::new(Vec::new());
    integer(&mut rsa, &[0]);
    integer(&mut rsa, n);
    integer(&mut rsa, e);
    integer(&mut rsa, d);
    for _ in 0..5 {
        integer(&mut rsa, &[0]);
    }
    let rsa = Zeroizing::new(tlv(0x30, &rsa));
    let mut info = Zeroizing::new(Vec::new());
    integer(&mut info, &[0]);
    // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
    info.extend_from_slice(&[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ]);
    info.extend_from_slice(&Zeroizing::new(tlv(0x04, &rsa)));
    tlv(0x30, &info)
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

    /// The token-rsa form: an even device exponent, an odd d1'' in a PKCS#8 with zero CRT
    /// values and e_obj = d1''^-1, and the shares still recombine to d1.
    #[test]
    fn token_form_recombines_and_encodes_a_non_crt_key() {
        use rsa::pkcs1::RsaPrivateKey as Pkcs1;
        use rsa::pkcs8::PrivateKeyInfo;
        let mut rng = StdRng::seed_from_u64(11);
        let km = generate_client_key_for_token(&mut rng, 2048).unwrap();
        assert_eq!(km.modulus.len(), 256);
        assert!(km.device_share.is_even_form());
        assert_eq!(km.device_share.len(), 256);
        let d_dev = km.device_share.exponent();
        assert_eq!(d_dev[255] & 1, 0, "the device exponent is even");
        let info = PrivateKeyInfo::try_from(km.server_share_key.expose_secret()).unwrap();
        assert_eq!(
            info.algorithm.oid.to_string(),
            "1.2.840.113549.1.1.1",
            "rsaEncryption"
        );
        let key = Pkcs1::try_from(info.private_key).unwrap();
        assert_eq!(key.modulus.as_bytes(), km.modulus.as_slice());
        for crt in [
            key.prime1,
            key.prime2,
            key.exponent1,
            key.exponent2,
            key.coefficient,
        ] {
            assert!(crt.as_bytes().iter().all(|&b| b == 0), "CRT values are 0");
        }
        let d_srv = key.private_exponent.as_bytes();
        let e_obj = key.public_exponent.as_bytes();
        assert_eq!(d_srv.last().unwrap() & 1, 1, "d1'' is odd");
        let x = [0x42u8; 200];
        let a = mod_pow_secret(&x, &d_dev, &km.modulus).unwrap();
        let b = mod_pow_secret(&x, d_srv, &km.modulus).unwrap();
        let s = mul_mod(&a, &b, &km.modulus).unwrap();
        let back = mod_pow_public(&s, PUBLIC_EXPONENT, &km.modulus).unwrap();
        assert_eq!(&back[56..], &x[..]);
        // e_obj inverts d1'': what OpenSSL's blinding in the HSM relies on.
        let back = mod_pow_secret(&b, e_obj, &km.modulus).unwrap();
        assert_eq!(&back[56..], &x[..]);
        // The stored value's low bit does not matter: both values give the same exponent.
        let mut flipped = km.device_share.expose_secret().to_vec();
        flipped[255] ^= 1;
        assert_eq!(
            *DeviceShare::from_vec_even(flipped).exponent(),
            *km.device_share.exponent()
        );
        assert!(!format!("{:?}", km.server_share_key).contains("30"));
    }

    #[test]
    fn debug_is_redacted() {
        let s = DeviceShare::from_vec(vec![0xab; 4]);
        assert_eq!(format!("{s:?}"), "DeviceShare(<redacted>)");
        let t = ServerShare::from_bytes(Zeroizing::new(vec![0xab; 4])).unwrap();
        assert!(!format!("{t:?}").contains("ab"));
        assert!(ServerShare::from_bytes(Zeroizing::new(vec![])).is_err());
    }
}
