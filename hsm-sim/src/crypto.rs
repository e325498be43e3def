//! The cryptography behind the mechanisms, on OpenSSL (its private-key RSA operations use
//! constant-time exponentiation with blinding).
//!
//! Key material arrives as object attributes and is turned into an OpenSSL key only for
//! the duration of one operation; OpenSSL clears the private big numbers when it frees the
//! key (`RSA_free` uses `BN_clear_free`).

use std::sync::OnceLock;

use cryptoki_sys::*;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcGroupRef, EcKey, EcPoint, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::md::{Md, MdRef};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::pkey::{Private, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use zeroize::Zeroizing;

use crate::error::{Error, Result, ck};
use crate::mechanism::OaepParams;
use crate::object::{Object, Value};
use crate::vendor::{CKK_TANDEM_SHARE, CKM_TANDEM_SHARE_EXP};

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
    obj.rsa_private(rsa_private_uncached)
}

fn rsa_private_uncached(obj: &Object) -> Result<Rsa<Private>> {
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

/// Checks that an RSA private key object is consistent (`n = p q`, `e d = 1`, CRT values).
pub fn rsa_check_private(obj: &Object) -> Result<()> {
    if rsa_is_non_crt(obj) {
        // Without the primes only the form can be checked: odd n of at least 1024 bits,
        // 1 < e, 0 < d < n.
        let (n, e, d) = (
            bn(obj, CKA_MODULUS)?,
            bn(obj, CKA_PUBLIC_EXPONENT)?,
            bn(obj, CKA_PRIVATE_EXPONENT)?,
        );
        if n.num_bits() < 1024
            || !n.is_bit_set(0)
            || e.num_bits() < 2
            || d.num_bits() == 0
            || d >= n
        {
            return ck(CKR_ATTRIBUTE_VALUE_INVALID);
        }
        return Ok(());
    }
    match rsa_private_uncached(obj).map(|k| k.check_key()) {
        Ok(Ok(true)) => Ok(()),
        _ => ck(CKR_ATTRIBUTE_VALUE_INVALID),
    }
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

/// Key material of a fresh key pair: (public attributes, private attributes).
pub type KeyPairMaterial = (
    Vec<(CK_ATTRIBUTE_TYPE, Value)>,
    Vec<(CK_ATTRIBUTE_TYPE, Value)>,
);

/// Generates an RSA key pair.
pub fn rsa_generate(bits: u32, public_exponent: &[u8]) -> Result<KeyPairMaterial> {
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

/// The signature mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMech {
    /// An RSA mechanism.
    Rsa(RsaSignMech),
    /// `CKM_ECDSA`: the caller hashes; the signature is `r || s`.
    Ecdsa,
    /// [`CKM_TANDEM_SHARE_EXP`]: `x^d mod n` with a [`CKK_TANDEM_SHARE`] key.
    TandemShare,
    /// `CKM_SHA256_HMAC`: HMAC-SHA-256 with a `CKK_GENERIC_SECRET` key (sign and verify).
    HmacSha256,
}

impl SignMech {
    /// Maps a mechanism type.
    pub fn from_mechanism(mech: CK_MECHANISM_TYPE) -> Option<Self> {
        match mech {
            CKM_ECDSA => Some(Self::Ecdsa),
            CKM_TANDEM_SHARE_EXP => Some(Self::TandemShare),
            CKM_SHA256_HMAC => Some(Self::HmacSha256),
            _ => RsaSignMech::from_mechanism(mech).map(Self::Rsa),
        }
    }

    /// The key type the mechanism needs.
    pub fn key_type(self) -> CK_KEY_TYPE {
        match self {
            Self::Rsa(_) => CKK_RSA,
            Self::Ecdsa => CKK_EC,
            Self::TandemShare => CKK_TANDEM_SHARE,
            Self::HmacSha256 => CKK_GENERIC_SECRET,
        }
    }

    /// The object class of the signing key.
    pub fn signing_class(self) -> CK_OBJECT_CLASS {
        match self {
            Self::TandemShare | Self::HmacSha256 => CKO_SECRET_KEY,
            _ => CKO_PRIVATE_KEY,
        }
    }
}

/// Length of a signature by `key`.
pub fn signature_len(key: &Object, mech: SignMech) -> Result<usize> {
    match mech {
        SignMech::Rsa(_) => rsa_len(key),
        SignMech::Ecdsa => Ok(2 * ec_curve(key)?.1),
        SignMech::TandemShare => rsa_len(key),
        SignMech::HmacSha256 => Ok(HMAC_SHA256_LEN),
    }
}

/// Signs with a private key object.
pub fn sign(key: &Object, mech: SignMech, data: &[u8]) -> Result<Vec<u8>> {
    match mech {
        SignMech::Rsa(m) => rsa_sign(key, m, data),
        SignMech::Ecdsa => ecdsa_sign(key, data),
        SignMech::TandemShare => share_exp(key, data),
        SignMech::HmacSha256 => Ok(hmac_sha256(key, data)?.to_vec()),
    }
}

/// Verifies with a public key object; `Ok(false)` for a wrong signature.
pub fn verify(key: &Object, mech: SignMech, data: &[u8], signature: &[u8]) -> Result<bool> {
    match mech {
        SignMech::Rsa(m) => rsa_verify(key, m, data, signature),
        SignMech::Ecdsa => ecdsa_verify(key, data, signature),
        SignMech::TandemShare => ck(CKR_MECHANISM_INVALID),
        SignMech::HmacSha256 => Ok(signature.len() == HMAC_SHA256_LEN
            && openssl::memcmp::eq(&hmac_sha256(key, data)?, signature)),
    }
}

/// Length of an HMAC-SHA-256 value.
const HMAC_SHA256_LEN: usize = 32;

/// Shortest `CKK_GENERIC_SECRET` key accepted for HMAC-SHA-256 (PKCS#11 leaves the minimum
/// to the token; below the hash's length the key is weaker than the MAC).
pub const HMAC_MIN_KEY_LEN: usize = 16;

/// `CKM_SHA256_HMAC` with a `CKK_GENERIC_SECRET` key.
fn hmac_sha256(key: &Object, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if key.class() != Some(CKO_SECRET_KEY) || key.key_type() != Some(CKK_GENERIC_SECRET) {
        return ck(CKR_KEY_TYPE_INCONSISTENT);
    }
    let value = key
        .get(CKA_VALUE)
        .ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?;
    if value.len() < HMAC_MIN_KEY_LEN {
        return ck(CKR_KEY_SIZE_RANGE);
    }
    let pkey = PKey::hmac(value)?;
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &pkey)?;
    signer.update(data)?;
    Ok(Zeroizing::new(signer.sign_to_vec()?))
}

/// [`CKM_TANDEM_SHARE_EXP`]: `x^d mod n` for a [`CKK_TANDEM_SHARE`] key, left-padded to the
/// modulus length. `x` may be at most the modulus length (`CKR_DATA_LEN_RANGE`) and must be
/// below `n` (`CKR_DATA_INVALID`).
///
/// Constant time in the exponent: [`tandem_modexp::mod_exp_secret`], the server's own share
/// exponentiation, on AVX-512 IFMA where the CPU has it (about twice as fast; fixed windows
/// over every bit of the modulus length, masked table reads), else OpenSSL's
/// `BN_mod_exp_mont_consttime` (or with `TANDEM_MODEXP=openssl`). The copies of `d` are
/// cleared before they are freed.
pub fn share_exp(key: &Object, data: &[u8]) -> Result<Vec<u8>> {
    if key.class() != Some(CKO_SECRET_KEY) || key.key_type() != Some(CKK_TANDEM_SHARE) {
        return ck(CKR_KEY_TYPE_INCONSISTENT);
    }
    let k = rsa_len(key)?;
    if data.len() > k {
        return ck(CKR_DATA_LEN_RANGE);
    }
    let n = bn(key, CKA_MODULUS)?;
    if n.num_bits() < 2 || !n.is_bit_set(0) {
        return ck(CKR_KEY_TYPE_INCONSISTENT);
    }
    let x = BigNum::from_slice(data)?;
    if x >= n {
        return ck(CKR_DATA_INVALID);
    }
    let d = key
        .get(CKA_VALUE)
        .ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?;
    // The modulus attribute's own length is `k` (`rsa_len`).
    Ok(tandem_modexp::mod_exp_secret(data, d, &n.to_vec())?.to_vec())
}

/// Whether an RSA private key object holds no CRT values (no `CKA_PRIME_1`): a "non-CRT"
/// key of only `n`, `e` and `d`, such as the server's split-key share `d1''` in the
/// `token-rsa` mode (docs/HSM_MODES.md), whose `e` is `d⁻¹ mod λ(n)` and whose factors
/// nobody here knows.
pub fn rsa_is_non_crt(key: &Object) -> bool {
    key.get(CKA_PRIME_1)
        .is_none_or(|p| p.iter().all(|&b| b == 0))
}

/// `CKM_RSA_X_509` with a non-CRT key: `x^d mod n`, constant time in `d`
/// ([`tandem_modexp::mod_exp_secret`]), exactly the modulus length. Other mechanisms are
/// refused with `CKR_KEY_FUNCTION_NOT_PERMITTED`: only the raw operation is needed, and a
/// CRT-less key cannot be checked at import, so it gets no padding oracle either.
fn rsa_sign_non_crt(key: &Object, mech: RsaSignMech, data: &[u8]) -> Result<Vec<u8>> {
    if mech != RsaSignMech::Raw {
        return ck(CKR_KEY_FUNCTION_NOT_PERMITTED);
    }
    let k = rsa_len(key)?;
    let (input, _) = mech.encoded(data, k)?;
    let n = bn(key, CKA_MODULUS)?;
    if n.num_bits() < 2 || !n.is_bit_set(0) {
        return ck(CKR_KEY_TYPE_INCONSISTENT);
    }
    if BigNum::from_slice(&input)? >= n {
        return ck(CKR_DATA_INVALID);
    }
    let d = key
        .get(CKA_PRIVATE_EXPONENT)
        .ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?;
    Ok(tandem_modexp::mod_exp_secret(&input, d, &n.to_vec())?.to_vec())
}

/// Signs with an RSA private key object; the result is exactly the modulus length.
fn rsa_sign(key: &Object, mech: RsaSignMech, data: &[u8]) -> Result<Vec<u8>> {
    if rsa_is_non_crt(key) {
        return rsa_sign_non_crt(key, mech, data);
    }
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
fn rsa_verify(key: &Object, mech: RsaSignMech, data: &[u8], signature: &[u8]) -> Result<bool> {
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

// ---- AES ----

fn aes_ecb(key: &[u8]) -> Result<Cipher> {
    match key.len() {
        16 => Ok(Cipher::aes_128_ecb()),
        24 => Ok(Cipher::aes_192_ecb()),
        32 => Ok(Cipher::aes_256_ecb()),
        _ => ck(CKR_KEY_TYPE_INCONSISTENT),
    }
}

fn aes_gcm(key: &[u8]) -> Result<Cipher> {
    match key.len() {
        16 => Ok(Cipher::aes_128_gcm()),
        24 => Ok(Cipher::aes_192_gcm()),
        32 => Ok(Cipher::aes_256_gcm()),
        _ => ck(CKR_KEY_TYPE_INCONSISTENT),
    }
}

/// The AES value of a secret key object.
pub fn aes_key(obj: &Object) -> Result<&[u8]> {
    if obj.class() != Some(CKO_SECRET_KEY) || obj.key_type() != Some(CKK_AES) {
        return ck(CKR_KEY_TYPE_INCONSISTENT);
    }
    obj.get(CKA_VALUE)
        .map(|v| v.as_slice())
        .ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))
}

/// Checks GCM parameters: a non-empty IV of at most 256 bytes, a tag of 96..=128 bits in
/// steps of 8. Returns the tag length in bytes.
pub fn gcm_tag_len(iv: &[u8], tag_bits: CK_ULONG) -> Result<usize> {
    if iv.is_empty()
        || iv.len() > 256
        || !(96..=128).contains(&tag_bits)
        || !tag_bits.is_multiple_of(8)
    {
        return ck(CKR_MECHANISM_PARAM_INVALID);
    }
    Ok((tag_bits / 8) as usize)
}

/// AES-GCM encryption: `ciphertext || tag`.
pub fn aes_gcm_encrypt(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    tag_len: usize,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut tag = vec![0u8; tag_len];
    let mut out = encrypt_aead(aes_gcm(key)?, key, Some(iv), aad, plaintext, &mut tag)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// AES-GCM decryption of `ciphertext || tag`; any failure is `CKR_ENCRYPTED_DATA_INVALID`.
pub fn aes_gcm_decrypt(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    tag_len: usize,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if data.len() < tag_len {
        return ck(CKR_ENCRYPTED_DATA_LEN_RANGE);
    }
    let (ct, tag) = data.split_at(data.len() - tag_len);
    decrypt_aead(aes_gcm(key)?, key, Some(iv), aad, ct, tag)
        .map(Zeroizing::new)
        .map_err(|_| Error::Ck(CKR_ENCRYPTED_DATA_INVALID))
}

/// One AES block operation (ECB on a single block).
struct AesBlock(openssl::symm::Crypter);

impl AesBlock {
    fn new(key: &[u8], mode: openssl::symm::Mode) -> Result<Self> {
        let mut c = openssl::symm::Crypter::new(aes_ecb(key)?, mode, key, None)?;
        c.pad(false);
        Ok(Self(c))
    }

    fn apply(&mut self, block: &[u8; 16]) -> Result<Zeroizing<[u8; 16]>> {
        let mut out = Zeroizing::new([0u8; 32]);
        let n = self.0.update(block, &mut *out)?;
        if n != 16 {
            return Err(Error::Crypto);
        }
        let mut b = Zeroizing::new([0u8; 16]);
        b.copy_from_slice(&out[..16]);
        Ok(b)
    }
}

/// The alternative initial value of RFC 5649 (its first half).
const KWP_AIV: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

/// `CKM_AES_KEY_WRAP_PAD`: AES Key Wrap with Padding (RFC 5649).
pub fn aes_kwp_wrap(kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mli = u32::try_from(plaintext.len()).map_err(|_| Error::Ck(CKR_KEY_SIZE_RANGE))?;
    if plaintext.is_empty() {
        return ck(CKR_KEY_SIZE_RANGE);
    }
    let mut a = [0u8; 8];
    a[..4].copy_from_slice(&KWP_AIV);
    a[4..].copy_from_slice(&mli.to_be_bytes());
    let mut r = Zeroizing::new(plaintext.to_vec());
    r.resize(plaintext.len().div_ceil(8) * 8, 0);
    let mut aes = AesBlock::new(kek, openssl::symm::Mode::Encrypt)?;
    let mut block = Zeroizing::new([0u8; 16]);
    if r.len() == 8 {
        block[..8].copy_from_slice(&a);
        block[8..].copy_from_slice(&r);
        return Ok(aes.apply(&block)?.to_vec());
    }
    let n = r.len() / 8;
    for j in 0..6u64 {
        for i in 0..n {
            block[..8].copy_from_slice(&a);
            block[8..].copy_from_slice(&r[i * 8..i * 8 + 8]);
            let b = aes.apply(&block)?;
            let t = (n as u64) * j + (i as u64) + 1;
            for (k, x) in a.iter_mut().enumerate() {
                *x = b[k] ^ t.to_be_bytes()[k];
            }
            r[i * 8..i * 8 + 8].copy_from_slice(&b[8..]);
        }
    }
    let mut out = a.to_vec();
    out.extend_from_slice(&r);
    Ok(out)
}

/// Inverse of [`aes_kwp_wrap`]; any failure is `CKR_WRAPPED_KEY_INVALID`, without detail.
pub fn aes_kwp_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let invalid = || Error::Ck(CKR_WRAPPED_KEY_INVALID);
    if wrapped.len() < 16 || !wrapped.len().is_multiple_of(8) {
        return ck(CKR_WRAPPED_KEY_LEN_RANGE);
    }
    let mut aes = AesBlock::new(kek, openssl::symm::Mode::Decrypt)?;
    let mut a = [0u8; 8];
    let mut r;
    if wrapped.len() == 16 {
        let mut block = Zeroizing::new([0u8; 16]);
        block.copy_from_slice(wrapped);
        let b = aes.apply(&block)?;
        a.copy_from_slice(&b[..8]);
        r = Zeroizing::new(b[8..].to_vec());
    } else {
        a.copy_from_slice(&wrapped[..8]);
        r = Zeroizing::new(wrapped[8..].to_vec());
        let n = r.len() / 8;
        let mut block = Zeroizing::new([0u8; 16]);
        for j in (0..6u64).rev() {
            for i in (0..n).rev() {
                let t = (n as u64) * j + (i as u64) + 1;
                for (k, x) in a.iter().enumerate() {
                    block[k] = x ^ t.to_be_bytes()[k];
                }
                block[8..].copy_from_slice(&r[i * 8..i * 8 + 8]);
                let b = aes.apply(&block)?;
                a.copy_from_slice(&b[..8]);
                r[i * 8..i * 8 + 8].copy_from_slice(&b[8..]);
            }
        }
    }
    let mli = u32::from_be_bytes([a[4], a[5], a[6], a[7]]) as usize;
    let padded = r.len();
    let aiv_ok = openssl::memcmp::eq(&a[..4], &KWP_AIV);
    let len_ok = mli > padded.saturating_sub(8) && mli <= padded;
    if !aiv_ok || !len_ok || r[mli..].iter().any(|b| *b != 0) {
        return Err(invalid());
    }
    r.truncate(mli);
    Ok(r)
}

/// A fresh secret key value (AES or generic secret) of `len` random bytes.
pub fn secret_key_value(len: usize) -> Result<Value> {
    let mut v = Zeroizing::new(vec![0u8; len]);
    random(&mut v)?;
    Ok(v)
}

// ---- RSA OAEP, PKCS#8 ----

/// The digests of OAEP parameters: SHA-1, SHA-256, SHA-384 or SHA-512 for the hash and
/// for MGF1 (independently); a label only with `CKZ_DATA_SPECIFIED`.
fn oaep_digests(p: &OaepParams) -> Result<(&'static MdRef, &'static MdRef)> {
    let hash = match p.hash {
        CKM_SHA_1 => Md::sha1(),
        CKM_SHA256 => Md::sha256(),
        CKM_SHA384 => Md::sha384(),
        CKM_SHA512 => Md::sha512(),
        _ => return ck(CKR_MECHANISM_PARAM_INVALID),
    };
    let mgf = match p.mgf {
        CKG_MGF1_SHA1 => Md::sha1(),
        CKG_MGF1_SHA256 => Md::sha256(),
        CKG_MGF1_SHA384 => Md::sha384(),
        CKG_MGF1_SHA512 => Md::sha512(),
        _ => return ck(CKR_MECHANISM_PARAM_INVALID),
    };
    let label_ok = p.source == CKZ_DATA_SPECIFIED || (p.source == 0 && p.label.is_empty());
    if !label_ok {
        return ck(CKR_MECHANISM_PARAM_INVALID);
    }
    Ok((hash, mgf))
}

/// Checks that the OAEP parameters are supported.
pub fn oaep_check(p: &OaepParams) -> Result<()> {
    oaep_digests(p).map(|_| ())
}

fn oaep_ctx<T>(ctx: &mut PkeyCtx<T>, p: &OaepParams) -> Result<()> {
    let (hash, mgf) = oaep_digests(p)?;
    ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
    ctx.set_rsa_oaep_md(hash)?;
    ctx.set_rsa_mgf1_md(mgf)?;
    if !p.label.is_empty() {
        ctx.set_rsa_oaep_label(&p.label)?;
    }
    Ok(())
}

/// `CKM_RSA_PKCS_OAEP` encryption with an RSA public key object.
pub fn rsa_oaep_encrypt(key: &Object, p: &OaepParams, plaintext: &[u8]) -> Result<Vec<u8>> {
    let (hash, _) = oaep_digests(p)?;
    let pkey = PKey::from_rsa(rsa_public(key)?)?;
    let k = pkey.size();
    if plaintext.len() + 2 * hash.size() + 2 > k {
        return ck(CKR_DATA_LEN_RANGE);
    }
    let mut ctx = PkeyCtx::new(&pkey)?;
    ctx.encrypt_init()?;
    oaep_ctx(&mut ctx, p)?;
    let mut out = Vec::with_capacity(k);
    ctx.encrypt_to_vec(plaintext, &mut out)?;
    Ok(out)
}

/// `CKM_RSA_PKCS_OAEP` decryption with an RSA private key object; a failure is
/// `CKR_ENCRYPTED_DATA_INVALID`, without detail.
pub fn rsa_oaep_decrypt(
    key: &Object,
    p: &OaepParams,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let pkey = PKey::from_rsa(rsa_private(key)?)?;
    if ciphertext.len() != pkey.size() {
        return ck(CKR_ENCRYPTED_DATA_LEN_RANGE);
    }
    let mut ctx = PkeyCtx::new(&pkey)?;
    ctx.decrypt_init()?;
    oaep_ctx(&mut ctx, p)?;
    let mut out = Zeroizing::new(Vec::with_capacity(pkey.size()));
    ctx.decrypt_to_vec(ciphertext, &mut out)
        .map_err(|_| Error::Ck(CKR_ENCRYPTED_DATA_INVALID))?;
    Ok(out)
}

/// The PKCS#8 `PrivateKeyInfo` (DER) of an RSA private key object, for wrapping.
pub fn rsa_private_to_pkcs8(key: &Object) -> Result<Zeroizing<Vec<u8>>> {
    // As SoftHSM 2.6.1 (OpenSSL cannot encode a key without its primes).
    if rsa_is_non_crt(key) {
        return ck(CKR_KEY_NOT_WRAPPABLE);
    }
    let pkey = PKey::from_rsa(rsa_private(key)?)?;
    Ok(Zeroizing::new(pkey.private_key_to_pkcs8()?))
}

/// The attributes of an RSA private key from a PKCS#8 `PrivateKeyInfo` (DER).
pub fn rsa_private_from_pkcs8(der: &[u8]) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Value)>> {
    let invalid = || Error::Ck(CKR_WRAPPED_KEY_INVALID);
    let pkey = openssl::pkey::PKey::private_key_from_pkcs8(der).map_err(|_| invalid())?;
    let rsa = pkey.rsa().map_err(|_| invalid())?;
    let v = |b: &openssl::bn::BigNumRef| Zeroizing::new(b.to_vec());
    // A non-CRT key (n, e, d, every CRT value 0), as the `token-rsa` share: kept without
    // CRT attributes, used only with `CKM_RSA_X_509` ([`rsa_is_non_crt`]).
    let crt = [rsa.p(), rsa.q(), rsa.dmp1(), rsa.dmq1(), rsa.iqmp()];
    if crt.iter().all(|c| c.is_none_or(|c| c.num_bits() == 0)) {
        if rsa.n().num_bits() < 1024
            || !rsa.n().is_bit_set(0)
            || rsa.e().num_bits() < 2
            || rsa.d().num_bits() == 0
            || rsa.d() >= rsa.n()
        {
            return Err(invalid());
        }
        return Ok(vec![
            (CKA_MODULUS, v(rsa.n())),
            (CKA_PUBLIC_EXPONENT, v(rsa.e())),
            (CKA_PRIVATE_EXPONENT, v(rsa.d())),
        ]);
    }
    // A CRT key: every value present and non-zero, and n = p·q (cheap; the primes
    // themselves are not tested, see `Module::create_object`).
    if crt.iter().any(|c| c.is_none_or(|c| c.num_bits() == 0)) {
        return Err(invalid());
    }
    if let (Some(p), Some(q)) = (rsa.p(), rsa.q()) {
        let mut pq = BigNum::new()?;
        let mut ctx = BigNumContext::new()?;
        pq.checked_mul(p, q, &mut ctx)?;
        if pq != *rsa.n() {
            return Err(invalid());
        }
    }
    Ok(vec![
        (CKA_MODULUS, v(rsa.n())),
        (CKA_PUBLIC_EXPONENT, v(rsa.e())),
        (CKA_PRIVATE_EXPONENT, v(rsa.d())),
        (CKA_PRIME_1, v(rsa.p().ok_or_else(invalid)?)),
        (CKA_PRIME_2, v(rsa.q().ok_or_else(invalid)?)),
        (CKA_EXPONENT_1, v(rsa.dmp1().ok_or_else(invalid)?)),
        (CKA_EXPONENT_2, v(rsa.dmq1().ok_or_else(invalid)?)),
        (CKA_COEFFICIENT, v(rsa.iqmp().ok_or_else(invalid)?)),
    ])
}

// ---- EC (P-256, P-384) ----

/// DER OIDs accepted in `CKA_EC_PARAMS`.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// The curve named by `CKA_EC_PARAMS` and its field (and order) length in bytes.
fn curve(params: &[u8]) -> Result<(&'static EcGroup, usize)> {
    // Built once per process: building a group costs about as much as the ECDH itself.
    static P256: OnceLock<EcGroup> = OnceLock::new();
    static P384: OnceLock<EcGroup> = OnceLock::new();
    let (cell, nid, len) = match params {
        P256_PARAMS => (&P256, Nid::X9_62_PRIME256V1, 32),
        P384_PARAMS => (&P384, Nid::SECP384R1, 48),
        _ => return ck(CKR_CURVE_NOT_SUPPORTED),
    };
    if let Some(group) = cell.get() {
        return Ok((group, len));
    }
    let group = EcGroup::from_curve_name(nid)?;
    Ok((cell.get_or_init(|| group), len))
}

fn ec_curve(obj: &Object) -> Result<(&'static EcGroup, usize)> {
    curve(
        obj.get(CKA_EC_PARAMS)
            .ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?,
    )
}

/// `CKA_EC_POINT` as PKCS#11 and SoftHSM write it: a DER OCTET STRING around the
/// uncompressed point.
fn der_octet_string(point: &[u8]) -> Result<Value> {
    let len = u8::try_from(point.len()).map_err(|_| Error::Crypto)?;
    if len >= 0x80 {
        return Err(Error::Crypto);
    }
    let mut v = Zeroizing::new(vec![0x04, len]);
    v.extend_from_slice(point);
    Ok(v)
}

/// The public point of an EC public key object (DER-wrapped or raw).
fn ec_point(obj: &Object, group: &EcGroupRef) -> Result<EcPoint> {
    let v = obj
        .get(CKA_EC_POINT)
        .ok_or(Error::Ck(CKR_KEY_TYPE_INCONSISTENT))?;
    let mut ctx = BigNumContext::new()?;
    if let [0x04, len, inner @ ..] = v.as_slice()
        && usize::from(*len) == inner.len()
        && let Ok(p) = EcPoint::from_bytes(group, inner, &mut ctx)
    {
        return Ok(p);
    }
    EcPoint::from_bytes(group, v, &mut ctx).map_err(|_| Error::Ck(CKR_ATTRIBUTE_VALUE_INVALID))
}

fn ec_private(obj: &Object) -> Result<EcKey<Private>> {
    obj.ec_private(ec_private_uncached)
}

fn ec_private_uncached(obj: &Object) -> Result<EcKey<Private>> {
    let (group, _) = ec_curve(obj)?;
    let mut d = bn(obj, CKA_VALUE)?;
    let key = (|| {
        let mut ctx = BigNumContext::new()?;
        let mut public = EcPoint::new(group)?;
        public.mul_generator2(group, &d, &mut ctx)?;
        EcKey::from_private_components(group, &d, &public)
    })();
    // `BigNum` is freed with BN_free, which does not clear: wipe the scalar first (the
    // EC_KEY holds its own copy and clears it when freed).
    d.clear();
    Ok(key?)
}

fn ec_public(obj: &Object) -> Result<EcKey<Public>> {
    let (group, _) = ec_curve(obj)?;
    let point = ec_point(obj, group)?;
    Ok(EcKey::from_public_key(group, &point)?)
}

/// Checks an EC public key object: known curve, point on the curve.
pub fn ec_check_public(obj: &Object) -> Result<()> {
    ec_public(obj)
        .and_then(|k| Ok(k.check_key()?))
        .map_err(|e| match e {
            Error::Ck(CKR_CURVE_NOT_SUPPORTED) => e,
            _ => Error::Ck(CKR_ATTRIBUTE_VALUE_INVALID),
        })
}

/// Checks an EC private key object: known curve, scalar in range.
pub fn ec_check_private(obj: &Object) -> Result<()> {
    ec_private_uncached(obj)
        .and_then(|k| Ok(k.check_key()?))
        .map_err(|e| match e {
            Error::Ck(CKR_CURVE_NOT_SUPPORTED) => e,
            _ => Error::Ck(CKR_ATTRIBUTE_VALUE_INVALID),
        })
}

/// Key material of a fresh EC key pair: (`CKA_EC_POINT`), (`CKA_VALUE`).
pub fn ec_generate(params: &[u8]) -> Result<KeyPairMaterial> {
    let (group, len) = curve(params)?;
    let key = EcKey::generate(group)?;
    let mut ctx = BigNumContext::new()?;
    let point = key
        .public_key()
        .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)?;
    let d = Zeroizing::new(key.private_key().to_vec_padded(len as i32)?);
    Ok((
        vec![(CKA_EC_POINT, der_octet_string(&point)?)],
        vec![(CKA_VALUE, d)],
    ))
}

/// `CKM_ECDH1_DERIVE` with `CKD_NULL`: the x coordinate of `d·Q`, where `peer` is `Q`, raw
/// or as a DER OCTET STRING, on the key's curve (checked; anything else is
/// `CKR_MECHANISM_PARAM_INVALID`).
///
/// Both curves (P-256, P-384) have cofactor 1, so a point on the curve other than the point
/// at infinity is a fully valid public key (NIST SP 800-56A rev. 3, 5.6.2.3.4): no
/// multiplication by the group order is needed. `d·Q` is `EC_POINT_mul` with the key's
/// scalar, which OpenSSL flags constant-time, as `ECDH_compute_key` does. Going through
/// `EVP_PKEY_derive` instead cost three scalar multiplications (two peer-key checks) and
/// three group constructions per envelope.
pub fn ecdh(key: &Object, peer: &[u8]) -> Result<Value> {
    let (group, len) = ec_curve(key)?;
    let invalid = || Error::Ck(CKR_MECHANISM_PARAM_INVALID);
    let mut ctx = BigNumContext::new()?;
    let parse = |bytes: &[u8], ctx: &mut BigNumContext| EcPoint::from_bytes(group, bytes, ctx);
    let point = match peer {
        [0x04, l, inner @ ..] if usize::from(*l) == inner.len() => {
            parse(inner, &mut ctx).or_else(|_| parse(peer, &mut ctx))
        }
        _ => parse(peer, &mut ctx),
    }
    .map_err(|_| invalid())?;
    if point.is_infinity(group) || !point.is_on_curve(group, &mut ctx).map_err(|_| invalid())? {
        return Err(invalid());
    }
    let private = ec_private(key)?;
    let scalar = private.private_key();
    let mut shared = EcPoint::new(group)?;
    shared.mul2(group, &point, scalar, &mut ctx)?;
    if shared.is_infinity(group) {
        return Err(Error::Crypto);
    }
    let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
    let coordinates = shared.affine_coordinates(group, &mut x, &mut y, &mut ctx);
    let secret = coordinates
        .and_then(|()| x.to_vec_padded(len as i32))
        .map(Zeroizing::new);
    // `BigNum` is freed with BN_free, which does not clear.
    x.clear();
    y.clear();
    let secret = secret?;
    if secret.len() != len {
        return Err(Error::Crypto);
    }
    Ok(secret)
}

/// `CKM_ECDSA`: signs `data` (the caller's hash) and returns `r || s`.
fn ecdsa_sign(key: &Object, data: &[u8]) -> Result<Vec<u8>> {
    let (_, len) = ec_curve(key)?;
    let private = ec_private(key)?;
    let sig = EcdsaSig::sign(data, &private)?;
    let mut out = sig.r().to_vec_padded(len as i32)?;
    out.extend_from_slice(&sig.s().to_vec_padded(len as i32)?);
    Ok(out)
}

fn ecdsa_verify(key: &Object, data: &[u8], signature: &[u8]) -> Result<bool> {
    let (_, len) = ec_curve(key)?;
    if signature.len() != 2 * len {
        return ck(CKR_SIGNATURE_LEN_RANGE);
    }
    let sig = EcdsaSig::from_private_components(
        BigNum::from_slice(&signature[..len])?,
        BigNum::from_slice(&signature[len..])?,
    )?;
    let public = ec_public(key)?;
    Ok(sig.verify(data, &public).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use openssl::bn::BigNumRef;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn share(n: &BigNum, d: &[u8]) -> Object {
        crate::object::build(
            &vec![
                (CKA_CLASS, crate::object::ulong_value(CKO_SECRET_KEY)),
                (CKA_KEY_TYPE, crate::object::ulong_value(CKK_TANDEM_SHARE)),
                (CKA_MODULUS, Zeroizing::new(n.to_vec())),
                (CKA_VALUE, Zeroizing::new(d.to_vec())),
            ],
            None,
        )
        .unwrap()
    }

    /// Both constant-time paths (IFMA where the CPU has it, OpenSSL) agree with plain
    /// `BN_mod_exp` on edge and random values, including a share with leading zero bytes and
    /// results that need left padding.
    #[test]
    fn share_exp_matches_plain_mod_exp() {
        let n = Rsa::generate(1024).unwrap().n().to_owned().unwrap();
        let k = n.num_bytes();
        let mut ctx = BigNumContext::new().unwrap();
        let mut ds = vec![vec![1u8], vec![0, 0, 2]];
        for _ in 0..4 {
            let mut d = BigNum::new().unwrap();
            n.rand_range(&mut d).unwrap();
            ds.push(d.to_vec());
        }
        for d in &ds {
            let key = share(&n, d);
            let mut xs = vec![vec![], vec![0], vec![1], vec![2]];
            let mut x = BigNum::new().unwrap();
            n.rand_range(&mut x).unwrap();
            xs.push(x.to_vec_padded(k).unwrap());
            for x in xs {
                let mut want = BigNum::new().unwrap();
                want.mod_exp(
                    &BigNum::from_slice(&x).unwrap(),
                    &BigNum::from_slice(d).unwrap(),
                    &n,
                    &mut ctx,
                )
                .unwrap();
                let want = want.to_vec_padded(k).unwrap();
                // Whichever path this CPU takes (IFMA or OpenSSL), and OpenSSL's directly.
                assert_eq!(share_exp(&key, &x).unwrap(), want);
                assert_eq!(
                    *tandem_modexp::mod_exp_openssl(&x, d, &n.to_vec()).unwrap(),
                    want
                );
            }
        }
        // Input checks.
        let key = share(&n, &[5]);
        assert_eq!(
            share_exp(&key, &n.to_vec()).unwrap_err().rv(),
            CKR_DATA_INVALID
        );
        assert_eq!(
            share_exp(&key, &vec![0u8; k as usize + 1])
                .unwrap_err()
                .rv(),
            CKR_DATA_LEN_RANGE
        );
    }

    fn ec_object(params: &[u8], scalar: &BigNumRef) -> Object {
        crate::object::build(
            &vec![
                (CKA_CLASS, crate::object::ulong_value(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, crate::object::ulong_value(CKK_EC)),
                (CKA_EC_PARAMS, Zeroizing::new(params.to_vec())),
                (CKA_VALUE, Zeroizing::new(scalar.to_vec())),
            ],
            None,
        )
        .unwrap()
    }

    /// The derived secret equals OpenSSL's `EVP_PKEY_derive` on both curves, for the raw
    /// and the DER-wrapped point; the point at infinity, a point off the curve and a point
    /// of the other curve are refused.
    #[test]
    fn ecdh_matches_openssl_derive_and_refuses_invalid_points() {
        for (params, nid) in [
            (P256_PARAMS, Nid::X9_62_PRIME256V1),
            (P384_PARAMS, Nid::SECP384R1),
        ] {
            let group = EcGroup::from_curve_name(nid).unwrap();
            let mut ctx = BigNumContext::new().unwrap();
            let ours = EcKey::generate(&group).unwrap();
            let key = ec_object(params, ours.private_key());
            for _ in 0..3 {
                let peer = EcKey::generate(&group).unwrap();
                let raw = peer
                    .public_key()
                    .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
                    .unwrap();
                let our_pkey = PKey::from_ec_key(ours.clone()).unwrap();
                let peer_pkey =
                    PKey::from_ec_key(EcKey::from_public_key(&group, peer.public_key()).unwrap())
                        .unwrap();
                let mut deriver = openssl::derive::Deriver::new(&our_pkey).unwrap();
                deriver.set_peer(&peer_pkey).unwrap();
                let want = deriver.derive_to_vec().unwrap();
                assert_eq!(ecdh(&key, &raw).unwrap().as_slice(), want.as_slice());
                let wrapped = der_octet_string(&raw).unwrap();
                assert_eq!(ecdh(&key, &wrapped).unwrap().as_slice(), want.as_slice());
            }
            let invalid = |peer: &[u8]| ecdh(&key, peer).unwrap_err().rv();
            assert_eq!(invalid(&[0x00]), CKR_MECHANISM_PARAM_INVALID, "infinity");
            let mut off = ours
                .public_key()
                .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
                .unwrap();
            let last = off.len() - 1;
            off[last] ^= 1;
            assert_eq!(invalid(&off), CKR_MECHANISM_PARAM_INVALID, "off the curve");
            let other = if nid == Nid::SECP384R1 {
                Nid::X9_62_PRIME256V1
            } else {
                Nid::SECP384R1
            };
            let other = EcGroup::from_curve_name(other).unwrap();
            let foreign = EcKey::generate(&other)
                .unwrap()
                .public_key()
                .to_bytes(&other, PointConversionForm::UNCOMPRESSED, &mut ctx)
                .unwrap();
            assert_eq!(
                invalid(&foreign),
                CKR_MECHANISM_PARAM_INVALID,
                "other curve"
            );
        }
    }

    /// RFC 5649 section 6, both examples (192-bit KEK).
    #[test]
    fn kwp_matches_rfc5649_vectors() {
        let kek = hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
        let p20 = hex("c37b7e6492584340bed12207808941155068f738");
        let c20 = hex("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
        assert_eq!(aes_kwp_wrap(&kek, &p20).unwrap(), c20);
        assert_eq!(
            aes_kwp_unwrap(&kek, &c20).unwrap().as_slice(),
            p20.as_slice()
        );
        let p7 = hex("466f7250617369");
        let c7 = hex("afbeb0f07dfbf5419200f2ccb50bb24f");
        assert_eq!(aes_kwp_wrap(&kek, &p7).unwrap(), c7);
        assert_eq!(aes_kwp_unwrap(&kek, &c7).unwrap().as_slice(), p7.as_slice());
        // Any changed bit is detected.
        for i in 0..c20.len() {
            let mut bad = c20.clone();
            bad[i] ^= 1;
            assert!(aes_kwp_unwrap(&kek, &bad).is_err(), "byte {i}");
        }
        let other = hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a9");
        assert!(aes_kwp_unwrap(&other, &c20).is_err());
    }

    #[test]
    fn kwp_round_trips_every_length_up_to_40() {
        let kek = [7u8; 32];
        for len in 1usize..=40 {
            let p: Vec<u8> = (0..len as u8).collect();
            let c = aes_kwp_wrap(&kek, &p).unwrap();
            assert_eq!(c.len(), len.div_ceil(8) * 8 + 8);
            assert_eq!(aes_kwp_unwrap(&kek, &c).unwrap().as_slice(), p.as_slice());
        }
    }
}
