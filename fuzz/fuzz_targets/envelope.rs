//! The d1'' envelope (`client-core/src/envelope.rs`): the server's opening side (header
//! parsing, then what surrounds the HSM call in `Hsm::open_envelope`: the ECDH content key
//! and the AES-GCM opening, here with a software P-256 ECDH standing in for the HSM's
//! `CKM_ECDH1_DERIVE`; RSA-OAEP through `open_with_private_key`), the device's sealing to a
//! transport key it received from the server, and the seal/open round trip.
//!
//! Input: `mode byte || aad length byte || aad || rest`.
//! - mode % 3 == 0: `rest` is an envelope from a device (or a share-key envelope of the
//!   token-rsa share form): parsed and opened as the server does. Properties: no panic; a
//!   parsed envelope of either kind is exactly its parts put together and no blob is both;
//!   what does not parse does not open with the library's opening functions either.
//! - mode % 3 == 1: `rest` is a plaintext: sealed (EC, or RSA for odd mode / 3), parsed,
//!   opened. Properties: it opens to the plaintext; with other AAD, or with any one bit
//!   flipped anywhere in the envelope, it does not open.
//! - mode % 3 == 2: `rest` is the transport key's DER SubjectPublicKeyInfo as the server
//!   hands it out: sealing to it never panics, and what it seals parses.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePublicKey;
use rand_core::SeedableRng;
use tandem_client_core::envelope::{
    self, ALG_ECDH_P256_HKDF_SHA256_AES256_GCM, ALG_RSA_OAEP_SHA1_AES256_GCM, EnvelopeKey,
    EnvelopeParts,
};

struct Keys {
    ec: p256::SecretKey,
    /// The transport key's point (uncompressed SEC1), as the HSM reports `CKA_EC_POINT`.
    ec_point: [u8; envelope::P256_POINT_LEN],
    ec_spki: Vec<u8>,
    rsa: rsa::RsaPrivateKey,
    /// The same RSA key in OpenSSL, standing in for the HSM's RSA-OAEP unwrap (the `rsa`
    /// crate's private operation is far slower under coverage instrumentation).
    rsa_hsm: openssl::rsa::Rsa<openssl::pkey::Private>,
    rsa_spki: Vec<u8>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha8Rng::from_seed([7; 32]);
        let ec = p256::SecretKey::random(&mut rng);
        let ec_spki = ec
            .public_key()
            .to_public_key_der()
            .expect("EC SPKI")
            .into_vec();
        let ec_point = ec
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .try_into()
            .expect("65 bytes");
        // OpenSSL makes the RSA key (the `rsa` crate takes seconds in this build).
        let rsa_hsm = openssl::rsa::Rsa::generate(2048).expect("RSA key");
        let der = rsa_hsm.private_key_to_der().expect("RSA key");
        let rsa = <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_der(&der)
            .expect("RSA key");
        let rsa_spki = rsa
            .to_public_key()
            .to_public_key_der()
            .expect("RSA SPKI")
            .into_vec();
        Keys {
            ec,
            ec_point,
            ec_spki,
            rsa,
            rsa_hsm,
            rsa_spki,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let [mode, aad_len, rest @ ..] = data else {
        return;
    };
    let aad_len = usize::from(*aad_len).min(rest.len());
    let (aad, rest) = rest.split_at(aad_len);
    let k = keys();
    let mut rng = rand_chacha::ChaCha8Rng::from_seed([*mode; 32]);
    match mode % 3 {
        0 => {
            // The token-rsa share form's envelope (`seal_server_share_key`), parsed by the
            // server before the HSM unwraps it: exactly its parts put together.
            if let Ok(e) = envelope::ShareKeyEnvelope::parse(rest) {
                let mut out = vec![
                    envelope::ENVELOPE_VERSION,
                    envelope::ALG_RSA_OAEP_SHA1_AES256_KWP,
                ];
                let len = u16::try_from(e.wrapped_content_key.len()).expect("short");
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(e.wrapped_content_key);
                out.extend_from_slice(e.wrapped_share_key);
                assert_eq!(out, rest, "share-key envelope parts are not the envelope");
                assert!(
                    EnvelopeParts::parse(rest).is_err(),
                    "one blob, two envelope kinds"
                );
            }
            let Ok(parts) = EnvelopeParts::parse(rest) else {
                assert!(
                    envelope::open_with_ec_private_key(&k.ec, rest, aad).is_err()
                        && envelope::open_with_private_key(&k.rsa, rest, aad).is_err(),
                    "an unparsable envelope opened"
                );
                return;
            };
            assert_eq!(
                reassemble(&parts),
                rest,
                "parsed parts are not the envelope"
            );
            let _ = server_open(k, &parts, aad);
        }
        1 => {
            let spki = if (mode / 3) % 2 == 1 {
                &k.rsa_spki
            } else {
                &k.ec_spki
            };
            let Ok(sealed) = envelope::seal(spki, rest, aad, &mut rng) else {
                // Only a plaintext too large for one envelope is refused.
                assert!(rest.len() + 16 + 12 + 4 + 65 > envelope::MAX_ENVELOPE_LEN - 256);
                return;
            };
            let parts = EnvelopeParts::parse(&sealed).expect("a sealed envelope parses");
            assert_eq!(reassemble(&parts), sealed);
            let cek = server_content_key(k, &parts).expect("the content key of a sealed envelope");
            let opened = envelope::decrypt_content(&cek, &parts.iv, parts.ciphertext, aad)
                .expect("a sealed envelope opens");
            assert_eq!(opened.as_slice(), rest);
            let mut other_aad = aad.to_vec();
            other_aad.push(0);
            assert!(
                envelope::decrypt_content(&cek, &parts.iv, parts.ciphertext, &other_aad).is_err(),
                "opened with other AAD"
            );
            // One flipped bit, chosen by the input, anywhere in the envelope.
            let at = usize::from(aad.first().copied().unwrap_or(0)) * 131 % sealed.len();
            let mut tampered = sealed.clone();
            tampered[at] ^= 1 << (at % 8);
            let opened = EnvelopeParts::parse(&tampered)
                .ok()
                .and_then(|p| server_open(k, &p, aad));
            assert!(opened.is_none(), "opened after a bit flip at {at}");
        }
        _ => {
            if let Ok(sealed) = envelope::seal(rest, aad, b"context", &mut rng) {
                EnvelopeParts::parse(&sealed).expect("a sealed envelope parses");
            }
        }
    }
});

/// The content key as the server gets it: for algorithm 2 the ECDH with the transport key
/// (the HSM's part) and `ecdh_content_key`; for algorithm 1 RSA-OAEP.
fn server_content_key(k: &Keys, parts: &EnvelopeParts<'_>) -> Option<[u8; 32]> {
    match parts.key {
        EnvelopeKey::EcdhP256(point) => {
            // The HSM refuses a point that is not on the curve.
            let ephemeral = p256::PublicKey::from_sec1_bytes(point).ok()?;
            let shared =
                p256::ecdh::diffie_hellman(k.ec.to_nonzero_scalar(), ephemeral.as_affine());
            let cek = envelope::ecdh_content_key(
                shared.raw_secret_bytes().as_slice(),
                point,
                &k.ec_point,
            )
            .ok()?;
            Some(*cek)
        }
        EnvelopeKey::RsaOaep(wrapped) => {
            // RSA-OAEP with SHA-1 and MGF1-SHA-1, as the server asks the HSM for.
            let mut out = vec![0u8; k.rsa_hsm.size() as usize];
            let n = k
                .rsa_hsm
                .private_decrypt(wrapped, &mut out, openssl::rsa::Padding::PKCS1_OAEP)
                .ok()?;
            out.get(..n)?.try_into().ok()
        }
    }
}

/// The server's opening of a parsed envelope.
fn server_open(k: &Keys, parts: &EnvelopeParts<'_>, aad: &[u8]) -> Option<Vec<u8>> {
    let cek = server_content_key(k, parts)?;
    envelope::decrypt_content(&cek, &parts.iv, parts.ciphertext, aad)
        .ok()
        .map(|p| p.to_vec())
}

/// The wire form of parsed parts (the format in the module docs).
fn reassemble(p: &EnvelopeParts<'_>) -> Vec<u8> {
    let mut out = vec![envelope::ENVELOPE_VERSION];
    match p.key {
        EnvelopeKey::RsaOaep(w) => {
            out.push(ALG_RSA_OAEP_SHA1_AES256_GCM);
            out.extend_from_slice(&u16::try_from(w.len()).expect("short").to_be_bytes());
            out.extend_from_slice(w);
        }
        EnvelopeKey::EcdhP256(point) => {
            out.push(ALG_ECDH_P256_HKDF_SHA256_AES256_GCM);
            out.extend_from_slice(point);
        }
    }
    out.extend_from_slice(&p.iv);
    out.extend_from_slice(p.ciphertext);
    out
}
