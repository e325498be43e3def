//! Sealing secrets to the server's HSM key-transport key.
//!
//! Wire format (all integers big-endian). Two algorithms share a two-byte header; which one a
//! device uses follows from the transport key the server hands out (its DER
//! `SubjectPublicKeyInfo`: an EC P-256 key or an RSA key).
//!
//! ```text
//! alg 0x02 (ECDH P-256, the default since the performance work):
//! +--------+--------+------------------------+--------+------------------------+
//! | 0x01   | 0x02   | ephemeral public point | iv     | AES-256-GCM ct || tag  |
//! | version| alg    | SEC1 uncompressed 65 B | 12 B   | plaintext_len + 16 B   |
//! +--------+--------+------------------------+--------+------------------------+
//!
//! alg 0x01 (RSA-OAEP, transport keys created before; still accepted):
//! +--------+--------+-------------+-------------+--------+------------------------+
//! | 0x01   | 0x01   | wrapped_len | wrapped_key | iv     | AES-256-GCM ct || tag  |
//! | version| alg    | u16         | wrapped_len | 12 B   | plaintext_len + 16 B   |
//! +--------+--------+-------------+-------------+--------+------------------------+
//! ```
//!
//! Algorithm `0x02`: the device makes a fresh P-256 key pair for every envelope; the content
//! key is `HKDF-SHA256(salt = "tandem/v1/envelope/ecdh-p256", IKM = x(ECDH),
//! info = ephemeral point || transport point)`, so it is bound to both public keys. The server
//! computes the ECDH inside its HSM (`CKM_ECDH1_DERIVE`); the transport private key never
//! leaves it. One ECDH costs a small fraction of an RSA-3072 private operation, which is why
//! it replaced OAEP as the default (docs/BENCHMARKS.md).
//!
//! Algorithm `0x01`: a fresh random AES-256 key is wrapped with RSA-OAEP using SHA-1 and
//! MGF1-SHA-1 (empty label) under the transport key. SHA-1 is used because it is the only OAEP
//! variant SoftHSM 2.6.1 supports for `CKM_RSA_PKCS_OAEP`; OAEP's security does not rest on
//! SHA-1's collision resistance.
//!
//! In both, the content is AES-256-GCM with the caller's context bytes as AAD (see the `aad_*`
//! builders), so an envelope cannot be replayed in another role, for another registration,
//! transaction or key type.
//!
//! Envelopes are at most [`MAX_ENVELOPE_LEN`] bytes; an RSA transport key must have 2048 to
//! 8192 bits.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::{CryptoRng, RngCore};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::ServerShare;
use crate::types::KeyType;
use crate::{Error, Result};

/// Envelope format version.
pub const ENVELOPE_VERSION: u8 = 0x01;
/// Algorithm: RSA-OAEP(SHA-1, MGF1-SHA-1) key wrap + AES-256-GCM.
pub const ALG_RSA_OAEP_SHA1_AES256_GCM: u8 = 0x01;
/// Algorithm: ephemeral-static ECDH on P-256, HKDF-SHA256, AES-256-GCM.
pub const ALG_ECDH_P256_HKDF_SHA256_AES256_GCM: u8 = 0x02;
/// Length of an uncompressed SEC1 P-256 point (`0x04 || x || y`).
pub const P256_POINT_LEN: usize = 65;
/// HKDF salt of algorithm `0x02`.
const ECDH_SALT: &[u8] = b"tandem/v1/envelope/ecdh-p256";
/// Largest envelope accepted or produced.
pub const MAX_ENVELOPE_LEN: usize = 64 * 1024;
/// GCM IV length.
pub const IV_LEN: usize = 12;
/// GCM tag length.
pub const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 4;
/// Byte lengths of the RSA transport keys accepted (2048 to 8192 bits).
pub(crate) const MIN_WRAPPED_LEN: usize = 2048 / 8;
pub(crate) const MAX_WRAPPED_LEN: usize = 8192 / 8;

/// Seals `plaintext` to the transport key given as a DER `SubjectPublicKeyInfo` (EC P-256:
/// algorithm `0x02`; RSA: algorithm `0x01`), binding `aad` (use one of the `aad_*` builders).
pub fn seal(
    transport_public_key_spki_der: &[u8],
    plaintext: &[u8],
    aad: &[u8],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<Vec<u8>> {
    if let Ok(ec) = p256::PublicKey::from_public_key_der(transport_public_key_spki_der) {
        return seal_ecdh(&ec, plaintext, aad, rng);
    }
    let key = RsaPublicKey::from_public_key_der(transport_public_key_spki_der)
        .map_err(|_| Error::InvalidTransportKey)?;
    if !(MIN_WRAPPED_LEN..=MAX_WRAPPED_LEN).contains(&key.size()) {
        return Err(Error::InvalidTransportKey);
    }
    let total = HEADER_LEN + key.size() + IV_LEN + plaintext.len() + TAG_LEN;
    if total > MAX_ENVELOPE_LEN {
        return Err(Error::Encryption);
    }
    let mut cek = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut *cek);
    let wrapped = key
        .encrypt(rng, Oaep::new::<sha1::Sha1>(), &*cek)
        .map_err(|_| Error::Encryption)?;
    let wrapped_len = u16::try_from(wrapped.len()).map_err(|_| Error::Encryption)?;
    let mut out = Vec::with_capacity(total);
    out.push(ENVELOPE_VERSION);
    out.push(ALG_RSA_OAEP_SHA1_AES256_GCM);
    out.extend_from_slice(&wrapped_len.to_be_bytes());
    out.extend_from_slice(&wrapped);
    encrypt_content(&cek, plaintext, aad, rng, &mut out)?;
    Ok(out)
}

/// Algorithm `0x02`: a fresh ephemeral key per envelope, ECDH with the transport key.
fn seal_ecdh(
    transport: &p256::PublicKey,
    plaintext: &[u8],
    aad: &[u8],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<Vec<u8>> {
    let total = 2 + P256_POINT_LEN + IV_LEN + plaintext.len() + TAG_LEN;
    if total > MAX_ENVELOPE_LEN {
        return Err(Error::Encryption);
    }
    let ephemeral = p256::ecdh::EphemeralSecret::random(rng);
    let ephemeral_point = point_bytes(&ephemeral.public_key())?;
    let recipient_point = point_bytes(transport)?;
    let shared = ephemeral.diffie_hellman(transport);
    let cek = ecdh_content_key(
        shared.raw_secret_bytes().as_slice(),
        &ephemeral_point,
        &recipient_point,
    )?;
    let mut out = Vec::with_capacity(total);
    out.push(ENVELOPE_VERSION);
    out.push(ALG_ECDH_P256_HKDF_SHA256_AES256_GCM);
    out.extend_from_slice(&ephemeral_point);
    encrypt_content(&cek, plaintext, aad, rng, &mut out)?;
    Ok(out)
}

/// The uncompressed SEC1 encoding of a P-256 public key.
fn point_bytes(key: &p256::PublicKey) -> Result<[u8; P256_POINT_LEN]> {
    key.to_encoded_point(false)
        .as_bytes()
        .try_into()
        .map_err(|_| Error::InvalidTransportKey)
}

/// Appends `iv || AES-256-GCM(cek, iv, plaintext, aad) || tag` to `out`.
fn encrypt_content(
    cek: &[u8; 32],
    plaintext: &[u8],
    aad: &[u8],
    rng: &mut (impl CryptoRng + RngCore),
    out: &mut Vec<u8>,
) -> Result<()> {
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    let cipher = Aes256Gcm::new(cek.into());
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::Encryption)?;
    out.extend_from_slice(&iv);
    out.extend_from_slice(&ct);
    Ok(())
}

/// The content key of algorithm `0x02`: `HKDF-SHA256(salt, IKM = shared_x,
/// info = ephemeral_point || recipient_point)`. The server calls this with the x coordinate
/// its HSM derived. `shared_x` must be the 32-byte x coordinate.
pub fn ecdh_content_key(
    shared_x: &[u8],
    ephemeral_point: &[u8; P256_POINT_LEN],
    recipient_point: &[u8; P256_POINT_LEN],
) -> Result<Zeroizing<[u8; 32]>> {
    if shared_x.len() != 32 {
        return Err(Error::EnvelopeOpen);
    }
    let hk = Hkdf::<Sha256>::new(Some(ECDH_SALT), shared_x);
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand_multi_info(&[ephemeral_point, recipient_point], &mut *key)
        .map_err(|_| Error::EnvelopeOpen)?;
    Ok(key)
}

/// Decrypts the AES-256-GCM content of an envelope with its content key. Every failure is
/// the coarse [`Error::EnvelopeOpen`].
pub fn decrypt_content(
    cek: &[u8; 32],
    iv: &[u8; IV_LEN],
    ciphertext_and_tag: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new(cek.into());
    let pt = cipher
        .decrypt(
            Nonce::from_slice(iv),
            Payload {
                msg: ciphertext_and_tag,
                aad,
            },
        )
        .map_err(|_| Error::EnvelopeOpen)?;
    Ok(Zeroizing::new(pt))
}

/// Seals the server share `d1''` for the server. Takes the share **by value**: after this
/// call the device no longer holds it (it is zeroized when the function returns).
pub fn seal_server_share(
    transport_public_key_spki_der: &[u8],
    share: ServerShare,
    aad: &[u8],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<Vec<u8>> {
    seal(
        transport_public_key_spki_der,
        share.expose_secret(),
        aad,
        rng,
    )
    // `share` dropped (and zeroized) here.
}

/// Algorithm of a share-key envelope ([`seal_server_share_key`]): an AES-256 content key
/// under RSA-OAEP (SHA-1, MGF1-SHA-1, empty label), and the server share as an RSA private
/// key (PKCS#8) under AES-256 key wrap with padding (RFC 5649) with that content key.
pub const ALG_RSA_OAEP_SHA1_AES256_KWP: u8 = 0x03;
/// Smallest and largest AES-KWP ciphertext of a share key (a PKCS#8 `RSAPrivateKey` with a
/// 2048- to 4096-bit modulus, e and d, and zero CRT values).
const MIN_WRAPPED_SHARE_KEY: usize = 256 * 3;
const MAX_WRAPPED_SHARE_KEY: usize = 512 * 3 + 128;

/// Seals the server share in the `token-rsa` form (an RSA key for the server's HSM, see
/// [`crate::keys::generate_client_key_for_token`]) to an RSA transport key. Takes the key
/// **by value**: the device no longer holds it afterwards.
///
/// ```text
/// +--------+--------+-------------+-------------+-----------------------------------+
/// | 0x01   | 0x03   | wrapped_len | wrapped_key | AES-256-KWP(content key, PKCS#8)  |
/// | version| alg    | u16         | wrapped_len | 8·ceil(len/8) + 8 B               |
/// +--------+--------+-------------+-------------+-----------------------------------+
/// ```
///
/// The HSM unwraps the content key with its transport key and then the RSA key with the
/// content key (`C_UnwrapKey` twice): neither exists in clear outside it. Key wrap has no
/// associated data; the server binds the key to the registration by checking that its
/// modulus is the `n1` submitted with it (and `n1` is fresh per key pair). EC transport
/// keys are refused ([`Error::TransportKeyNotRsa`]): with ECDH the content key would be
/// derived in software (SoftHSM 2.6.1 has no KDF for ECDH).
pub fn seal_server_share_key(
    transport_public_key_spki_der: &[u8],
    key: crate::keys::ServerShareKey,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<Vec<u8>> {
    if p256::PublicKey::from_public_key_der(transport_public_key_spki_der).is_ok() {
        return Err(Error::TransportKeyNotRsa);
    }
    let transport = RsaPublicKey::from_public_key_der(transport_public_key_spki_der)
        .map_err(|_| Error::InvalidTransportKey)?;
    if !(MIN_WRAPPED_LEN..=MAX_WRAPPED_LEN).contains(&transport.size()) {
        return Err(Error::InvalidTransportKey);
    }
    let mut cek = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut *cek);
    let wrapped_key = transport
        .encrypt(rng, Oaep::new::<sha1::Sha1>(), &*cek)
        .map_err(|_| Error::Encryption)?;
    let wrapped_len = u16::try_from(wrapped_key.len()).map_err(|_| Error::Encryption)?;
    let wrapped_share = crate::hazmat::kwp::wrap(&cek, key.expose_secret())?;
    if !(MIN_WRAPPED_SHARE_KEY..=MAX_WRAPPED_SHARE_KEY).contains(&wrapped_share.len()) {
        return Err(Error::Encryption);
    }
    let mut out = Vec::with_capacity(4 + wrapped_key.len() + wrapped_share.len());
    out.push(ENVELOPE_VERSION);
    out.push(ALG_RSA_OAEP_SHA1_AES256_KWP);
    out.extend_from_slice(&wrapped_len.to_be_bytes());
    out.extend_from_slice(&wrapped_key);
    out.extend_from_slice(&wrapped_share);
    Ok(out)
    // `key` dropped (and zeroized) here.
}

/// The fields of a share-key envelope ([`seal_server_share_key`]), borrowed from the blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareKeyEnvelope<'a> {
    /// RSA-OAEP ciphertext of the AES-256 content key.
    pub wrapped_content_key: &'a [u8],
    /// AES-KWP ciphertext of the PKCS#8 RSA private key.
    pub wrapped_share_key: &'a [u8],
}

impl<'a> ShareKeyEnvelope<'a> {
    /// Parses a share-key envelope, rejecting other versions and algorithms, wrapped
    /// content keys outside 2048..=8192 bits and key-wrap ciphertexts of a wrong size.
    pub fn parse(blob: &'a [u8]) -> Result<Self> {
        const WHAT: &str = "share-key envelope";
        if blob.len() > MAX_ENVELOPE_LEN {
            return Err(Error::Malformed(WHAT));
        }
        let [version, alg, l0, l1, rest @ ..] = blob else {
            return Err(Error::Malformed(WHAT));
        };
        if *version != ENVELOPE_VERSION {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version: u32::from(*version),
            });
        }
        if *alg != ALG_RSA_OAEP_SHA1_AES256_KWP {
            return Err(Error::UnsupportedAlgorithm {
                what: WHAT,
                algorithm: format!("0x{alg:02x}"),
            });
        }
        let wrapped_len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if !(MIN_WRAPPED_LEN..=MAX_WRAPPED_LEN).contains(&wrapped_len) || rest.len() < wrapped_len {
            return Err(Error::Malformed(WHAT));
        }
        let (wrapped_content_key, wrapped_share_key) = rest.split_at(wrapped_len);
        if !(MIN_WRAPPED_SHARE_KEY..=MAX_WRAPPED_SHARE_KEY).contains(&wrapped_share_key.len())
            || !wrapped_share_key.len().is_multiple_of(8)
        {
            return Err(Error::Malformed(WHAT));
        }
        Ok(Self {
            wrapped_content_key,
            wrapped_share_key,
        })
    }
}

/// How the content key of an envelope reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKey<'a> {
    /// Algorithm `0x01`: RSA-OAEP ciphertext of the content key (transport-key length).
    RsaOaep(&'a [u8]),
    /// Algorithm `0x02`: the device's ephemeral P-256 point (uncompressed SEC1). Not yet
    /// checked to be on the curve: the ECDH does that.
    EcdhP256(&'a [u8; P256_POINT_LEN]),
}

/// The fields of a parsed envelope, borrowed from the blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeParts<'a> {
    /// The content key's transport.
    pub key: EnvelopeKey<'a>,
    /// GCM IV.
    pub iv: [u8; IV_LEN],
    /// AES-GCM ciphertext followed by its 16-byte tag.
    pub ciphertext: &'a [u8],
}

impl<'a> EnvelopeParts<'a> {
    /// Parses an envelope, rejecting unknown versions and algorithms, oversize blobs, wrapped
    /// keys outside 2048..=8192 bits, points that are not uncompressed and ciphertexts
    /// without a tag.
    pub fn parse(blob: &'a [u8]) -> Result<Self> {
        const WHAT: &str = "envelope";
        if blob.len() > MAX_ENVELOPE_LEN {
            return Err(Error::Malformed(WHAT));
        }
        let [version, alg, rest @ ..] = blob else {
            return Err(Error::Malformed(WHAT));
        };
        if *version != ENVELOPE_VERSION {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version: u32::from(*version),
            });
        }
        let (key, rest) = match *alg {
            ALG_RSA_OAEP_SHA1_AES256_GCM => {
                let [l0, l1, rest @ ..] = rest else {
                    return Err(Error::Malformed(WHAT));
                };
                let wrapped_len = usize::from(u16::from_be_bytes([*l0, *l1]));
                if !(MIN_WRAPPED_LEN..=MAX_WRAPPED_LEN).contains(&wrapped_len)
                    || rest.len() < wrapped_len
                {
                    return Err(Error::Malformed(WHAT));
                }
                let (wrapped_key, rest) = rest.split_at(wrapped_len);
                (EnvelopeKey::RsaOaep(wrapped_key), rest)
            }
            ALG_ECDH_P256_HKDF_SHA256_AES256_GCM => {
                let (point, rest) = rest
                    .split_first_chunk::<P256_POINT_LEN>()
                    .ok_or(Error::Malformed(WHAT))?;
                if point[0] != 0x04 {
                    return Err(Error::Malformed(WHAT));
                }
                (EnvelopeKey::EcdhP256(point), rest)
            }
            other => {
                return Err(Error::UnsupportedAlgorithm {
                    what: WHAT,
                    algorithm: format!("0x{other:02x}"),
                });
            }
        };
        if rest.len() < IV_LEN + TAG_LEN {
            return Err(Error::Malformed(WHAT));
        }
        let (iv, ciphertext) = rest.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| Error::Malformed(WHAT))?;
        Ok(Self {
            key,
            iv,
            ciphertext,
        })
    }
}

/// Opens an envelope with a software private key. **Tests and tooling only**: the server
/// opens envelopes inside its HSM, where the transport private key lives. Every failure is
/// the coarse [`Error::EnvelopeOpen`] (except unknown version/algorithm and malformed blobs).
pub fn open_with_private_key(
    private_key: &RsaPrivateKey,
    blob: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let parts = EnvelopeParts::parse(blob)?;
    let EnvelopeKey::RsaOaep(wrapped_key) = parts.key else {
        return Err(Error::EnvelopeOpen);
    };
    let cek = Zeroizing::new(
        private_key
            .decrypt(Oaep::new::<sha1::Sha1>(), wrapped_key)
            .map_err(|_| Error::EnvelopeOpen)?,
    );
    let cek: &[u8; 32] = cek.as_slice().try_into().map_err(|_| Error::EnvelopeOpen)?;
    decrypt_content(cek, &parts.iv, parts.ciphertext, aad)
}

/// Opens an algorithm-`0x02` envelope with a software P-256 key. **Tests and tooling only**
/// (the server's transport key lives in its HSM).
pub fn open_with_ec_private_key(
    private_key: &p256::SecretKey,
    blob: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let parts = EnvelopeParts::parse(blob)?;
    let EnvelopeKey::EcdhP256(point) = parts.key else {
        return Err(Error::EnvelopeOpen);
    };
    let ephemeral = p256::PublicKey::from_sec1_bytes(point).map_err(|_| Error::EnvelopeOpen)?;
    let shared = p256::ecdh::diffie_hellman(private_key.to_nonzero_scalar(), ephemeral.as_affine());
    let recipient = point_bytes(&private_key.public_key())?;
    let cek = ecdh_content_key(shared.raw_secret_bytes().as_slice(), point, &recipient)?;
    decrypt_content(&cek, &parts.iv, parts.ciphertext, aad)
}

/// `label || u16(len(field)) || field || ... || key type`.
fn aad(label: &[u8], fields: &[&str], key_type: KeyType) -> Vec<u8> {
    let mut out = label.to_vec();
    for f in fields {
        // Identifiers are short; a longer one is truncated in the length field only if it
        // exceeds 64 KiB, which the wire layer never accepts.
        let len = u16::try_from(f.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out.extend_from_slice(key_type.as_str().as_bytes());
    out
}

/// AAD for the sealed server share `d1''` of a registration.
pub fn aad_server_share(registration_id: &str, key_type: KeyType) -> Vec<u8> {
    aad(b"tandem/v1/server-share\0", &[registration_id], key_type)
}

/// AAD for the sealed partial signature that proves a registration (registration end).
pub fn aad_proof_share(registration_id: &str, key_type: KeyType) -> Vec<u8> {
    aad(b"tandem/v1/proof-share\0", &[registration_id], key_type)
}

/// AAD for a sealed partial signature `s1'` in a transaction.
pub fn aad_partial_signature(transaction_id: &str, account_id: &str, key_type: KeyType) -> Vec<u8> {
    aad(
        b"tandem/v1/partial-signature\0",
        &[transaction_id, account_id],
        key_type,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn aad_labels_are_distinct_and_unambiguous() {
        let a = aad_server_share("r1", KeyType::Auth);
        let b = aad_proof_share("r1", KeyType::Auth);
        let c = aad_partial_signature("r1", "", KeyType::Auth);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with(b"tandem/v1/server-share\0"));
        assert_ne!(
            aad_server_share("r1", KeyType::Auth),
            aad_server_share("r1", KeyType::Sign)
        );
        assert_ne!(
            aad_partial_signature("ab", "c", KeyType::Sign),
            aad_partial_signature("a", "bc", KeyType::Sign)
        );
    }

    /// Share-key envelopes (algorithm 0x03): RSA transport keys only; the parser rejects other
    /// versions and algorithms and key-wrap ciphertexts of a wrong size, and the ordinary
    /// envelope parser does not take them.
    #[test]
    fn share_key_envelopes() {
        use rand::SeedableRng;
        use rsa::pkcs8::EncodePublicKey;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let km = crate::keys::generate_client_key_for_token(&mut rng, 2048).unwrap();
        let ec = p256::SecretKey::random(&mut rng)
            .public_key()
            .to_public_key_der()
            .unwrap();
        assert!(matches!(
            seal_server_share_key(ec.as_bytes(), km.server_share_key, &mut rng),
            Err(Error::TransportKeyNotRsa)
        ));
        let km = crate::keys::generate_client_key_for_token(&mut rng, 2048).unwrap();
        let transport = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let spki = transport.to_public_key().to_public_key_der().unwrap();
        let blob = seal_server_share_key(spki.as_bytes(), km.server_share_key, &mut rng).unwrap();
        assert_eq!(
            &blob[..2],
            &[ENVELOPE_VERSION, ALG_RSA_OAEP_SHA1_AES256_KWP]
        );
        let parts = ShareKeyEnvelope::parse(&blob).unwrap();
        assert_eq!(parts.wrapped_content_key.len(), 256);
        assert!(parts.wrapped_share_key.len().is_multiple_of(8));
        // The content key opens with the transport key; the key material is not in the blob.
        let cek = transport
            .decrypt(Oaep::new::<sha1::Sha1>(), parts.wrapped_content_key)
            .unwrap();
        assert_eq!(cek.len(), 32);
        assert!(EnvelopeParts::parse(&blob).is_err());
        let mut v = blob.clone();
        v[0] = 2;
        assert!(matches!(
            ShareKeyEnvelope::parse(&v),
            Err(Error::UnsupportedVersion { version: 2, .. })
        ));
        let mut a = blob.clone();
        a[1] = ALG_RSA_OAEP_SHA1_AES256_GCM;
        assert!(matches!(
            ShareKeyEnvelope::parse(&a),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        assert!(ShareKeyEnvelope::parse(&blob[..blob.len() - 1]).is_err());
        assert!(ShareKeyEnvelope::parse(&blob[..4 + 256 + 64]).is_err());
    }

    #[test]
    fn parse_rejects_bad_headers() {
        let mut blob = vec![1u8, 1, 1, 0];
        blob.extend_from_slice(&[0u8; 256 + 12 + 16]);
        EnvelopeParts::parse(&blob).unwrap();
        let mut v = blob.clone();
        v[0] = 2;
        assert!(matches!(
            EnvelopeParts::parse(&v),
            Err(Error::UnsupportedVersion { version: 2, .. })
        ));
        let mut a = blob.clone();
        a[1] = 7;
        assert!(matches!(
            EnvelopeParts::parse(&a),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        // No room for the tag.
        assert!(EnvelopeParts::parse(&blob[..blob.len() - 1]).is_err());
        // Wrapped key too short.
        let mut s = blob.clone();
        s[2] = 0;
        s[3] = 16;
        assert!(EnvelopeParts::parse(&s).is_err());
        assert!(EnvelopeParts::parse(&[1, 1, 1]).is_err());
        // Algorithm 0x02: the point must be uncompressed and complete.
        let mut ec = vec![1u8, 2, 4];
        ec.extend_from_slice(&[0u8; 64 + 12 + 16]);
        assert!(matches!(
            EnvelopeParts::parse(&ec).unwrap().key,
            EnvelopeKey::EcdhP256(_)
        ));
        let mut compressed = ec.clone();
        compressed[2] = 2;
        assert!(EnvelopeParts::parse(&compressed).is_err());
        assert!(EnvelopeParts::parse(&ec[..ec.len() - 1]).is_err());
        assert!(EnvelopeParts::parse(&ec[..40]).is_err());
        let big = vec![1u8; MAX_ENVELOPE_LEN + 1];
        assert!(EnvelopeParts::parse(&big).is_err());
    }
}
