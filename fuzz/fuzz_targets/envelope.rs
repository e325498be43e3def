//! The d1'' envelope (`client-core/src/envelope.rs`): the server's opening side (header
//! parsing, the ECDH content key and AES-GCM opening that surround the HSM call, here with a
//! software transport key standing in for the HSM's), the device's sealing to a transport
//! key it received from the server, and the seal/open round trip.
//!
//! Input: `mode byte || aad length byte || aad || rest`.
//! - mode % 3 == 0: `rest` is an envelope from a device: parsed and opened with the EC and
//!   the RSA transport key. Properties: no panic; a parsed envelope is exactly its parts
//!   put together; nothing opens under a transport key of the other algorithm.
//! - mode % 3 == 1: `rest` is a plaintext: sealed (EC, or RSA for odd mode / 3), parsed,
//!   opened. Properties: it opens to the plaintext; with other AAD, or with any one bit
//!   flipped anywhere in the envelope, it does not open.
//! - mode % 3 == 2: `rest` is the transport key's DER SubjectPublicKeyInfo as the server
//!   hands it out: sealing to it never panics, and what it seals parses.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use p256::pkcs8::EncodePublicKey;
use rand_core::SeedableRng;
use tandem_client_core::envelope::{
    self, ALG_ECDH_P256_HKDF_SHA256_AES256_GCM, ALG_RSA_OAEP_SHA1_AES256_GCM, EnvelopeKey,
    EnvelopeParts,
};

struct Keys {
    ec: p256::SecretKey,
    ec_spki: Vec<u8>,
    rsa: rsa::RsaPrivateKey,
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
        // OpenSSL makes the RSA key (the `rsa` crate takes seconds in this build).
        let der = openssl::rsa::Rsa::generate(2048)
            .and_then(|k| k.private_key_to_der())
            .expect("RSA key");
        let rsa = <rsa::RsaPrivateKey as rsa::pkcs1::DecodeRsaPrivateKey>::from_pkcs1_der(&der)
            .expect("RSA key");
        let rsa_spki = rsa
            .to_public_key()
            .to_public_key_der()
            .expect("RSA SPKI")
            .into_vec();
        Keys {
            ec,
            ec_spki,
            rsa,
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
            let ec = envelope::open_with_ec_private_key(&k.ec, rest, aad);
            let rsa = envelope::open_with_private_key(&k.rsa, rest, aad);
            let Ok(parts) = EnvelopeParts::parse(rest) else {
                assert!(ec.is_err() && rsa.is_err(), "an unparsable envelope opened");
                return;
            };
            assert_eq!(
                reassemble(&parts),
                rest,
                "parsed parts are not the envelope"
            );
            match parts.key {
                EnvelopeKey::EcdhP256(_) => assert!(rsa.is_err()),
                EnvelopeKey::RsaOaep(_) => assert!(ec.is_err()),
            }
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
            let open = |blob: &[u8], aad: &[u8]| match parts.key {
                EnvelopeKey::EcdhP256(_) => envelope::open_with_ec_private_key(&k.ec, blob, aad),
                EnvelopeKey::RsaOaep(_) => envelope::open_with_private_key(&k.rsa, blob, aad),
            };
            let opened = open(&sealed, aad).expect("a sealed envelope opens");
            assert_eq!(opened.as_slice(), rest);
            let mut other_aad = aad.to_vec();
            other_aad.push(0);
            assert!(open(&sealed, &other_aad).is_err(), "opened with other AAD");
            // One flipped bit, chosen by the input, anywhere in the envelope.
            let at = usize::from(aad.first().copied().unwrap_or(0)) * 131 % sealed.len();
            let mut tampered = sealed.clone();
            tampered[at] ^= 1 << (at % 8);
            assert!(
                open(&tampered, aad).is_err(),
                "opened after a bit flip at {at}"
            );
        }
        _ => {
            if let Ok(sealed) = envelope::seal(rest, aad, b"context", &mut rng) {
                EnvelopeParts::parse(&sealed).expect("a sealed envelope parses");
            }
        }
    }
});

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
