//! The cryptography behind the mechanisms, on OpenSSL (its private-key RSA operations use
//! constant-time exponentiation with blinding).
//!
//! Key material arrives as object attributes and is turned into an OpenSSL key only for
//! the duration of one operation; OpenSSL clears the private big numbers when it frees the
//! key (`RSA_free` uses `BN_clear_free`).

use cryptoki_sys::*;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use zeroize::Zeroizing;

use crate::error::{Error, Result, ck};
use crate::object::{Object, Value};

/// Fills `out` with cryptographically strong random bytes.
pub fn random(out: &mut [u8]) -> Result<()> {
    openssl::rand::rand_bytes(out)?;
    Ok(())
}

/// A 256-bit key derived from a PIN: PBKDF2-HMAC-SHA256.
pub fn derive_pin_key(pin: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    /// Iterations of PBKDF2; the token directory is the attacker's target offline.
    const ITERATIONS: usize = 200_000;
    let mut key = Zeroizing::new([0u8; 32]);
    openssl::pkcs5::pbkdf2_hmac(pin, salt, ITERATIONS, MessageDigest::sha256(), &mut *key)?;
    Ok(key)
}

/// AES-256-GCM: returns `nonce (12) || ciphertext || tag (16)`.
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 12];
    random(&mut nonce)?;
    let mut tag = [0u8; 16];
    let ct = encrypt_aead(
        Cipher::aes_256_gcm(),
        key,
        Some(&nonce),
        aad,
        plaintext,
        &mut tag,
    )?;
    let mut out = Vec::with_capacity(12 + ct.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a [`seal`]ed blob; any failure (wrong key, tampering) is one opaque error.
pub fn open(key: &[u8; 32], aad: &[u8], blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if blob.len() < 28 {
        return None;
    }
    let (nonce, rest) = blob.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    decrypt_aead(Cipher::aes_256_gcm(), key, Some(nonce), aad, ct, tag)
        .ok()
        .map(Zeroizing::new)
}

fn bn(obj: &Object, attr: CK_ATTRIBUTE_TYPE) -> Result<BigNum> {
    let v = obj.get(attr).ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?;
    Ok(BigNum::from_slice(v)?)
}

/// The RSA private key of an object.
fn rsa_private(obj: &Object) -> Result<Rsa<Private>> {
    Ok(Rsa::from_private_components(
        bn(obj, CKA_MODULUS)?,
        bn(obj, CKA_PUBLIC_EXPONENT)?,
        bn(obj, CKA_PRIVATE_EXPONENT)?,
        bn(obj, CKA_PRIME_1)?,
        bn(obj, CKA_PRIME_2)?,
        bn(obj, CKA_EXPONENT_1)?,
        bn(obj, CKA_EXPONENT_2)?,
        bn(obj, CKA_COEFFICIENT)?,
    )?)
}

/// The RSA public key of an object (public or private key object).
fn rsa_public(obj: &Object) -> Result<Rsa<Public>> {
    Ok(Rsa::from_public_components(
        bn(obj, CKA_MODULUS)?,
        bn(obj, CKA_PUBLIC_EXPONENT)?,
    )?)
}

/// Modulus length in bytes of an RSA key object.
pub fn rsa_len(obj: &Object) -> Result<usize> {
    let n = obj
        .get(CKA_MODULUS)
        .ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?;
    Ok(crate::object::bit_len(n).div_ceil(8))
}

/// Key material of a fresh RSA key pair: (public attributes, private attributes).
pub type RsaMaterial = (
    Vec<(CK_ATTRIBUTE_TYPE, Value)>,
    Vec<(CK_ATTRIBUTE_TYPE, Value)>,
);

/// Generates an RSA key pair.
pub fn rsa_generate(bits: u32, public_exponent: &[u8]) -> Result<RsaMaterial> {
    let e = BigNum::from_slice(public_exponent)?;
    let rsa = Rsa::generate_with_e(bits, &e)?;
    let v = |b: &openssl::bn::BigNumRef| Zeroizing::new(b.to_vec());
    let public = vec![(CKA_MODULUS, v(rsa.n())), (CKA_PUBLIC_EXPONENT, v(rsa.e()))];
    let missing = || Error::Crypto;
    let private = vec![
        (CKA_MODULUS, v(rsa.n())),
        (CKA_PUBLIC_EXPONENT, v(rsa.e())),
        (CKA_PRIVATE_EXPONENT, v(rsa.d())),
        (CKA_PRIME_1, v(rsa.p().ok_or_else(missing)?)),
        (CKA_PRIME_2, v(rsa.q().ok_or_else(missing)?)),
        (CKA_EXPONENT_1, v(rsa.dmp1().ok_or_else(missing)?)),
        (CKA_EXPONENT_2, v(rsa.dmq1().ok_or_else(missing)?)),
        (CKA_COEFFICIENT, v(rsa.iqmp().ok_or_else(missing)?)),
    ];
    Ok((public, private))
}

/// The DER `DigestInfo` prefix for PKCS#1 v1.5 signatures with a hash.
fn digest_info_prefix(md: MessageDigest) -> Option<&'static [u8]> {
    Some(match md.type_().as_raw() {
        x if x == MessageDigest::sha256().type_().as_raw() => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        x if x == MessageDigest::sha384().type_().as_raw() => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        x if x == MessageDigest::sha512().type_().as_raw() => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => return None,
    })
}

/// The RSA signature mechanisms this token supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaSignMech {
    /// `CKM_RSA_X_509`: raw `m^d mod n`, no padding (hazardous; the caller pads).
    Raw,
    /// `CKM_RSA_PKCS`: PKCS#1 v1.5 type 1 padding of caller-supplied `DigestInfo`.
    Pkcs1,
    /// `CKM_SHA*_RSA_PKCS`: hash, `DigestInfo`, PKCS#1 v1.5.
    HashPkcs1(CK_MECHANISM_TYPE),
}

impl RsaSignMech {
    /// Maps a mechanism type.
    pub fn from_mechanism(mech: CK_MECHANISM_TYPE) -> Option<Self> {
        match mech {
            CKM_RSA_X_509 => Some(Self::Raw),
            CKM_RSA_PKCS => Some(Self::Pkcs1),
            CKM_SHA256_RSA_PKCS | CKM_SHA384_RSA_PKCS | CKM_SHA512_RSA_PKCS => {
                Some(Self::HashPkcs1(mech))
            }
            _ => None,
        }
    }

    /// The bytes that go into the RSA padding step.
    fn encoded(self, data: &[u8], k: usize) -> Result<(Zeroizing<Vec<u8>>, Padding)> {
        match self {
            RsaSignMech::Raw => {
                if data.len() > k {
                    return ck(CKR_DATA_LEN_RANGE);
                }
                // Left-pad to the modulus length (PKCS#11: input shorter than k is zero-padded).
                let mut m = Zeroizing::new(vec![0u8; k - data.len()]);
                m.extend_from_slice(data);
                Ok((m, Padding::NONE))
            }
            RsaSignMech::Pkcs1 => {
                if data.len() + 11 > k {
                    return ck(CKR_DATA_LEN_RANGE);
                }
                Ok((Zeroizing::new(data.to_vec()), Padding::PKCS1))
            }
            RsaSignMech::HashPkcs1(mech) => {
                let md = match mech {
                    CKM_SHA256_RSA_PKCS => MessageDigest::sha256(),
                    CKM_SHA384_RSA_PKCS => MessageDigest::sha384(),
                    _ => MessageDigest::sha512(),
                };
                let prefix = digest_info_prefix(md).ok_or(Error::Crypto)?;
                let digest = openssl::hash::hash(md, data)?;
                let mut di = Zeroizing::new(prefix.to_vec());
                di.extend_from_slice(&digest);
                if di.len() + 11 > k {
                    return ck(CKR_KEY_SIZE_RANGE);
                }
                Ok((di, Padding::PKCS1))
            }
        }
    }
}

/// Signs with an RSA private key object; the result is exactly the modulus length.
pub fn rsa_sign(key: &Object, mech: RsaSignMech, data: &[u8]) -> Result<Vec<u8>> {
    let rsa = rsa_private(key)?;
    let k = rsa.size() as usize;
    let (input, padding) = mech.encoded(data, k)?;
    if padding == Padding::NONE && BigNum::from_slice(&input)? >= *rsa.n() {
        return ck(CKR_DATA_INVALID);
    }
    let mut out = vec![0u8; k];
    let n = rsa
        .private_encrypt(&input, &mut out, padding)
        .map_err(|_| Error::Ck(CKR_DATA_INVALID))?;
    out.truncate(n);
    Ok(out)
}

/// Verifies an RSA signature with a public (or private) key object. `Ok(false)` means the
/// signature is wrong; the reason is not told.
pub fn rsa_verify(key: &Object, mech: RsaSignMech, data: &[u8], signature: &[u8]) -> Result<bool> {
    let rsa = rsa_public(key)?;
    let k = rsa.size() as usize;
    if signature.len() != k {
        return ck(CKR_SIGNATURE_LEN_RANGE);
    }
    let (expected, padding) = mech.encoded(data, k)?;
    if BigNum::from_slice(signature)? >= *rsa.n() {
        return Ok(false);
    }
    let mut out = Zeroizing::new(vec![0u8; k]);
    let Ok(n) = rsa.public_decrypt(signature, &mut out, padding) else {
        return Ok(false);
    };
    let recovered = &out[..n];
    Ok(recovered.len() == expected.len() && openssl::memcmp::eq(recovered, &expected))
}
