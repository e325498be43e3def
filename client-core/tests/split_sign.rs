//! End-to-end tests of the split-key scheme, checked against the `rsa` crate.
//!
//! All keys here are 2048-bit (and the composite ~4096-bit) because key generation is slow;
//! such sizes are for tests only.
// Tests may unwrap (workspace lint policy).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::signature::Verifier;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use tandem_client_core::encoding::{
    HashAlgorithm, SignatureScheme, encode_pkcs1v15, encode_pss, verify_encoding,
};
use tandem_client_core::envelope::{
    EnvelopeKey, EnvelopeParts, aad_partial_signature, aad_server_share, open_with_ec_private_key,
    open_with_private_key, seal, seal_server_share,
};
use tandem_client_core::hazmat::bigint::{
    bit_length, crt_combine, mod_pow_public, mod_pow_secret, multiply,
};
use tandem_client_core::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use tandem_client_core::sign::{
    combine_client_shares, partial_sign, partial_sign_with, server_partial, verify_raw,
};
use tandem_client_core::{
    Error, KeyType, PUBLIC_EXPONENT, ServerShare, SigningRequest, generate_client_key,
};

const TEST_BITS: usize = 2048;

fn request(
    scheme: SignatureScheme,
    hash: HashAlgorithm,
    msg: &[u8],
    n_bits: usize,
    rng: &mut StdRng,
) -> SigningRequest {
    let digest = hash.digest(msg);
    let encoded_message = match scheme {
        SignatureScheme::Pkcs1v15 => encode_pkcs1v15(hash, &digest, n_bits).unwrap(),
        SignatureScheme::Pss => encode_pss(hash, &digest, n_bits, rng).unwrap(),
    };
    SigningRequest {
        scheme,
        hash,
        digest,
        encoded_message,
        composite_modulus_bits: n_bits,
    }
}

/// The server's side of the client half: s1 = s1'·x^d1'' mod n1, checked.
fn server_client_half(
    server_share: &ServerShare,
    n1: &[u8],
    x: &[u8],
    s1_dev: &[u8],
) -> (Vec<u8>, bool) {
    let s1_srv = server_partial(server_share, n1, x).unwrap();
    let s1 = combine_client_shares(s1_dev, &s1_srv, n1).unwrap();
    let ok = verify_raw(&s1, x, n1, PUBLIC_EXPONENT);
    (s1, ok)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, .. ProptestConfig::default() })]

    /// split → protect → unlock(right PIN) → partial_sign → server_partial → combine → verify.
    #[test]
    fn split_protect_unlock_sign_combine_verify(
        seed in any::<u64>(),
        pin in "[0-9]{4,12}",
        msg in proptest::collection::vec(any::<u8>(), 0..64),
        pss in any::<bool>(),
        hash_idx in 0usize..6,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let km = generate_client_key(&mut rng, TEST_BITS).unwrap();
        let ks = KeystoreSecret::generate(&mut rng);
        let pin = Pin::new(&pin).unwrap();
        let protected = ProtectedShare::protect(&km.device_share, &pin, &ks, KdfParams::testing(), &mut rng).unwrap();
        let share = protected.unlock(&pin, &ks).unwrap();
        prop_assert!(bool::from(share.ct_eq(&km.device_share)));

        let hash = HashAlgorithm::ALL[hash_idx];
        let scheme = if pss { SignatureScheme::Pss } else { SignatureScheme::Pkcs1v15 };
        // Pretend composite of 4096 bits: the client half only needs x mod n1.
        let req = request(scheme, hash, &msg, 2 * TEST_BITS, &mut rng);
        let s1_dev = partial_sign(&share, &km.modulus, &req).unwrap();
        prop_assert_eq!(s1_dev.as_bytes().len(), km.modulus.len());
        let (_, ok) = server_client_half(&km.server_share, &km.modulus, &req.encoded_message, s1_dev.as_bytes());
        prop_assert!(ok);
    }
}

#[test]
fn composite_signature_verifies_with_rsa_crate() {
    let mut rng = StdRng::seed_from_u64(2024);
    let km = generate_client_key(&mut rng, TEST_BITS).unwrap();
    // Stand-in for the HSM key n2.
    let hsm = RsaPrivateKey::new(&mut rng, TEST_BITS).unwrap();
    let n2 = hsm.n().to_bytes_be();
    let d2 = Zeroizing::new(hsm.d().to_bytes_be());
    let n = multiply(&km.modulus, &n2);
    let n_bits = bit_length(&n);
    assert!(n_bits == 4095 || n_bits == 4096);
    let pk = RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(&n),
        BigUint::from(PUBLIC_EXPONENT),
        8192,
    )
    .unwrap();

    let ks = KeystoreSecret::generate(&mut rng);
    let pin = Pin::new("2468").unwrap();
    let protected =
        ProtectedShare::protect(&km.device_share, &pin, &ks, KdfParams::testing(), &mut rng)
            .unwrap();

    for scheme in [SignatureScheme::Pkcs1v15, SignatureScheme::Pss] {
        for hash in HashAlgorithm::ALL {
            let msg = format!("document {scheme:?} {hash:?}");
            let req = request(scheme, hash, msg.as_bytes(), n_bits, &mut rng);
            let x = &req.encoded_message;
            assert_eq!(x.len(), n_bits.div_ceil(8));

            let share = protected.unlock(&pin, &ks).unwrap();
            let s1_dev = partial_sign(&share, &km.modulus, &req).unwrap();
            let (s1, ok) = server_client_half(&km.server_share, &km.modulus, x, s1_dev.as_bytes());
            assert!(ok, "client half must verify mod n1");
            let s2 = mod_pow_secret(x, &d2, &n2).unwrap();
            assert!(verify_raw(&s2, x, &n2, PUBLIC_EXPONENT));
            let s = crt_combine(&s1, &km.modulus, &s2, &n2).unwrap();
            assert_eq!(s.len(), n.len());
            assert!(verify_raw(&s, x, &n, PUBLIC_EXPONENT));

            let ok = match (scheme, hash) {
                (SignatureScheme::Pkcs1v15, HashAlgorithm::Sha256) => {
                    verify_pkcs1::<sha2::Sha256>(&pk, &msg, &s)
                }
                (SignatureScheme::Pkcs1v15, HashAlgorithm::Sha384) => {
                    verify_pkcs1::<sha2::Sha384>(&pk, &msg, &s)
                }
                (SignatureScheme::Pkcs1v15, HashAlgorithm::Sha512) => {
                    verify_pkcs1::<sha2::Sha512>(&pk, &msg, &s)
                }
                (SignatureScheme::Pss, HashAlgorithm::Sha256) => {
                    verify_pss::<sha2::Sha256>(&pk, &msg, &s)
                }
                (SignatureScheme::Pss, HashAlgorithm::Sha384) => {
                    verify_pss::<sha2::Sha384>(&pk, &msg, &s)
                }
                (SignatureScheme::Pss, HashAlgorithm::Sha512) => {
                    verify_pss::<sha2::Sha512>(&pk, &msg, &s)
                }
                (SignatureScheme::Pkcs1v15, HashAlgorithm::Sha3_256) => {
                    verify_pkcs1::<sha3::Sha3_256>(&pk, &msg, &s)
                }
                (SignatureScheme::Pkcs1v15, HashAlgorithm::Sha3_384) => {
                    verify_pkcs1::<sha3::Sha3_384>(&pk, &msg, &s)
                }
                (SignatureScheme::Pkcs1v15, HashAlgorithm::Sha3_512) => {
                    verify_pkcs1::<sha3::Sha3_512>(&pk, &msg, &s)
                }
                (SignatureScheme::Pss, HashAlgorithm::Sha3_256) => {
                    verify_pss::<sha3::Sha3_256>(&pk, &msg, &s)
                }
                (SignatureScheme::Pss, HashAlgorithm::Sha3_384) => {
                    verify_pss::<sha3::Sha3_384>(&pk, &msg, &s)
                }
                (SignatureScheme::Pss, HashAlgorithm::Sha3_512) => {
                    verify_pss::<sha3::Sha3_512>(&pk, &msg, &s)
                }
            };
            assert!(ok, "rsa crate rejects {scheme:?}/{hash:?}");
        }
    }
}

fn verify_pkcs1<D>(pk: &RsaPublicKey, msg: &str, sig: &[u8]) -> bool
where
    D: sha2::Digest + rsa::pkcs8::AssociatedOid,
{
    let vk = rsa::pkcs1v15::VerifyingKey::<D>::new(pk.clone());
    let sig = rsa::pkcs1v15::Signature::try_from(sig).unwrap();
    vk.verify(msg.as_bytes(), &sig).is_ok()
}

fn verify_pss<D>(pk: &RsaPublicKey, msg: &str, sig: &[u8]) -> bool
where
    D: sha2::Digest + sha2::digest::FixedOutputReset,
{
    let vk = rsa::pss::VerifyingKey::<D>::new(pk.clone());
    let sig = rsa::pss::Signature::try_from(sig).unwrap();
    vk.verify(msg.as_bytes(), &sig).is_ok()
}

/// Encodings made by the rsa crate (recovered as s^e mod n) pass our verify_encoding,
/// including an odd modulus bit length.
#[test]
fn verify_encoding_accepts_rsa_crate_signatures() {
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    let mut rng = StdRng::seed_from_u64(77);
    for bits in [2047usize, 2048] {
        let key = RsaPrivateKey::new(&mut rng, bits).unwrap();
        let n = key.n().to_bytes_be();
        let n_bits = bit_length(&n);
        assert_eq!(n_bits, bits);
        let msg = b"hello tandem";
        let digest = HashAlgorithm::Sha256.digest(msg);

        let sig = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
            .sign(msg)
            .to_vec();
        let em = mod_pow_public(&sig, PUBLIC_EXPONENT, &n).unwrap();
        verify_encoding(
            SignatureScheme::Pkcs1v15,
            HashAlgorithm::Sha256,
            &digest,
            &em,
            n_bits,
        )
        .unwrap();

        let sig = rsa::pss::SigningKey::<sha2::Sha256>::new(key.clone())
            .sign_with_rng(&mut rng, msg)
            .to_vec();
        let em = mod_pow_public(&sig, PUBLIC_EXPONENT, &n).unwrap();
        verify_encoding(
            SignatureScheme::Pss,
            HashAlgorithm::Sha256,
            &digest,
            &em,
            n_bits,
        )
        .unwrap();
        let other = HashAlgorithm::Sha256.digest(b"other");
        assert!(
            verify_encoding(
                SignatureScheme::Pss,
                HashAlgorithm::Sha256,
                &other,
                &em,
                n_bits
            )
            .is_err()
        );

        // And our encodings, exponentiated with the plain key, verify with the rsa crate.
        let d = Zeroizing::new(key.d().to_bytes_be());
        let pk = key.to_public_key();
        let x = encode_pss(HashAlgorithm::Sha256, &digest, n_bits, &mut rng).unwrap();
        let s = mod_pow_secret(&x, &d, &n).unwrap();
        assert!(verify_pss::<sha2::Sha256>(&pk, "hello tandem", &s));
        let x = encode_pkcs1v15(HashAlgorithm::Sha256, &digest, n_bits).unwrap();
        let s = mod_pow_secret(&x, &d, &n).unwrap();
        assert!(verify_pkcs1::<sha2::Sha256>(&pk, "hello tandem", &s));
    }
}

/// There is no offline PIN test: every wrong PIN yields a plausible share that the device
/// happily uses; only the server's check of the combined value tells them apart.
#[test]
fn no_offline_pin_test() {
    let mut rng = StdRng::seed_from_u64(31337);
    let km = generate_client_key(&mut rng, TEST_BITS).unwrap();
    let ks = KeystoreSecret::generate(&mut rng);
    let right = Pin::new("135790").unwrap();
    let protected = ProtectedShare::protect(
        &km.device_share,
        &right,
        &ks,
        KdfParams::testing(),
        &mut rng,
    )
    .unwrap();
    let req = request(
        SignatureScheme::Pss,
        HashAlgorithm::Sha256,
        b"pay 10 EUR",
        2 * TEST_BITS,
        &mut rng,
    );

    let share = protected.unlock(&right, &ks).unwrap();
    let s1_dev = partial_sign(&share, &km.modulus, &req).unwrap();
    let (_, ok) = server_client_half(
        &km.server_share,
        &km.modulus,
        &req.encoded_message,
        s1_dev.as_bytes(),
    );
    assert!(ok, "right PIN verifies");

    for i in 0..20u32 {
        let wrong = Pin::new(&format!("{:06}", 100_000 + i * 7919)).unwrap();
        let share = protected.unlock(&wrong, &ks).unwrap();
        assert_eq!(share.len(), km.device_share.len());
        assert!(!bool::from(share.ct_eq(&km.device_share)));
        let s1_dev = partial_sign(&share, &km.modulus, &req).unwrap();
        let s = s1_dev.as_bytes();
        assert_eq!(s.len(), km.modulus.len());
        assert!(s < km.modulus.as_slice(), "a reduced residue mod n1");
        let (_, ok) = server_client_half(&km.server_share, &km.modulus, &req.encoded_message, s);
        assert!(!ok, "wrong PIN {i} must not verify");
    }
}

#[test]
fn partial_sign_refuses_encoding_of_another_digest() {
    let mut rng = StdRng::seed_from_u64(5);
    let km = generate_client_key(&mut rng, TEST_BITS).unwrap();
    for scheme in [SignatureScheme::Pkcs1v15, SignatureScheme::Pss] {
        let shown = request(
            scheme,
            HashAlgorithm::Sha256,
            b"what the user sees",
            4095,
            &mut rng,
        );
        let evil = request(
            scheme,
            HashAlgorithm::Sha256,
            b"what the attacker wants",
            4095,
            &mut rng,
        );
        let mut req = shown.clone();
        req.encoded_message = evil.encoded_message.clone();
        assert!(matches!(
            partial_sign(&km.device_share, &km.modulus, &req),
            Err(Error::EncodingMismatch)
        ));
        // Raw value (not an encoding at all).
        let mut raw = shown.clone();
        raw.encoded_message = vec![0x42; shown.encoded_message.len()];
        assert!(matches!(
            partial_sign(&km.device_share, &km.modulus, &raw),
            Err(Error::EncodingMismatch)
        ));
        // Wrong length for the composite modulus.
        let mut short = shown.clone();
        short.encoded_message.remove(0);
        assert!(matches!(
            partial_sign(&km.device_share, &km.modulus, &short),
            Err(Error::EncodingMismatch)
        ));
        // The honest request works.
        partial_sign(&km.device_share, &km.modulus, &shown).unwrap();
    }
    let mut bad_len = request(
        SignatureScheme::Pkcs1v15,
        HashAlgorithm::Sha256,
        b"m",
        4096,
        &mut rng,
    );
    bad_len.digest.pop();
    assert!(matches!(
        partial_sign(&km.device_share, &km.modulus, &bad_len),
        Err(Error::DigestLength)
    ));
}

/// The caller-supplied exponentiation (the load generator's OpenSSL path) gets `x mod n1`,
/// the share and `n1`, gives the same `s1'` as the built-in one, runs only after the same
/// checks, and a result of the wrong length is refused.
#[test]
fn partial_sign_with_a_caller_exponentiation_matches_and_checks_first() {
    let mut rng = StdRng::seed_from_u64(6);
    let km = generate_client_key(&mut rng, TEST_BITS).unwrap();
    let req = request(
        SignatureScheme::Pss,
        HashAlgorithm::Sha256,
        b"pay 10 EUR",
        4095,
        &mut rng,
    );
    let calls = std::cell::Cell::new(0);
    let n1_bits = bit_length(&km.modulus);
    let ours = |x: &[u8], d: &[u8], n: &[u8]| {
        calls.set(calls.get() + 1);
        assert!(
            bit_length(x) <= n1_bits && x.len() == n.len(),
            "x is reduced mod n1"
        );
        assert_eq!(n, km.modulus.as_slice());
        mod_pow_secret(x, d, n)
    };
    let built_in = partial_sign(&km.device_share, &km.modulus, &req).unwrap();
    let with = partial_sign_with(&km.device_share, &km.modulus, &req, &ours).unwrap();
    assert_eq!(with.as_bytes(), built_in.as_bytes());
    assert_eq!(calls.get(), 1);

    let mut evil = req.clone();
    evil.encoded_message = vec![0x42; req.encoded_message.len()];
    assert!(matches!(
        partial_sign_with(&km.device_share, &km.modulus, &evil, &ours),
        Err(Error::EncodingMismatch)
    ));
    assert_eq!(calls.get(), 1, "no exponentiation for a refused request");

    let short = |x: &[u8], d: &[u8], n: &[u8]| {
        let mut s = mod_pow_secret(x, d, n)?;
        s.remove(0);
        Ok(s)
    };
    assert!(matches!(
        partial_sign_with(&km.device_share, &km.modulus, &req, &short),
        Err(Error::InvalidInteger)
    ));
}

#[test]
fn envelope_round_trip_and_tampering() {
    use rsa::pkcs8::EncodePublicKey;
    let mut rng = StdRng::seed_from_u64(11);
    let transport = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let spki = transport.to_public_key().to_public_key_der().unwrap();
    let aad = aad_partial_signature("tx-1", "acc-1", KeyType::Sign);

    let blob = seal(spki.as_bytes(), b"partial signature bytes", &aad, &mut rng).unwrap();
    let parts = EnvelopeParts::parse(&blob).unwrap();
    assert!(matches!(parts.key, EnvelopeKey::RsaOaep(w) if w.len() == 256));
    assert_eq!(parts.ciphertext.len(), 23 + 16);
    let pt = open_with_private_key(&transport, &blob, &aad).unwrap();
    assert_eq!(&pt[..], b"partial signature bytes");

    let other_aad = aad_partial_signature("tx-2", "acc-1", KeyType::Sign);
    assert!(matches!(
        open_with_private_key(&transport, &blob, &other_aad),
        Err(Error::EnvelopeOpen)
    ));
    let mut t = blob.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    assert!(matches!(
        open_with_private_key(&transport, &t, &aad),
        Err(Error::EnvelopeOpen)
    ));
    let mut t = blob.clone();
    t[10] ^= 1; // inside the wrapped key
    assert!(matches!(
        open_with_private_key(&transport, &t, &aad),
        Err(Error::EnvelopeOpen)
    ));
    let mut v = blob.clone();
    v[0] = 0x02;
    assert!(matches!(
        open_with_private_key(&transport, &v, &aad),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));
    let mut a = blob.clone();
    a[1] = 0x07;
    assert!(matches!(
        EnvelopeParts::parse(&a),
        Err(Error::UnsupportedAlgorithm { .. })
    ));
    let other_key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    assert!(matches!(
        open_with_private_key(&other_key, &blob, &aad),
        Err(Error::EnvelopeOpen)
    ));

    // A 1024-bit transport key is refused.
    let weak = RsaPrivateKey::new(&mut rng, 1024).unwrap();
    let weak_spki = weak.to_public_key().to_public_key_der().unwrap();
    assert!(matches!(
        seal(weak_spki.as_bytes(), b"x", &aad, &mut rng),
        Err(Error::InvalidTransportKey)
    ));
    assert!(matches!(
        seal(b"not der", b"x", &aad, &mut rng),
        Err(Error::InvalidTransportKey)
    ));
}

/// Algorithm 0x02: an EC P-256 transport key gets ECDH envelopes; they open only with that
/// key and that AAD, and any flipped bit is refused.
#[test]
fn ecdh_envelope_round_trip_and_tampering() {
    use p256::pkcs8::EncodePublicKey;
    let mut rng = StdRng::seed_from_u64(21);
    let transport = p256::SecretKey::random(&mut rng);
    let spki = transport.public_key().to_public_key_der().unwrap();
    let aad = aad_partial_signature("tx-1", "acc-1", KeyType::Sign);
    let blob = seal(spki.as_bytes(), b"partial signature bytes", &aad, &mut rng).unwrap();
    assert_eq!(blob[..2], [0x01, 0x02]);
    assert_eq!(blob.len(), 2 + 65 + 12 + 23 + 16);
    let parts = EnvelopeParts::parse(&blob).unwrap();
    assert!(matches!(parts.key, EnvelopeKey::EcdhP256(p) if p[0] == 0x04));
    let pt = open_with_ec_private_key(&transport, &blob, &aad).unwrap();
    assert_eq!(&pt[..], b"partial signature bytes");
    // Two envelopes of the same plaintext share nothing (fresh ephemeral key and IV).
    let again = seal(spki.as_bytes(), b"partial signature bytes", &aad, &mut rng).unwrap();
    assert_ne!(blob[2..67], again[2..67]);

    let other_aad = aad_partial_signature("tx-2", "acc-1", KeyType::Sign);
    assert!(matches!(
        open_with_ec_private_key(&transport, &blob, &other_aad),
        Err(Error::EnvelopeOpen)
    ));
    for i in [3, 40, 66, 67, 75, blob.len() - 1] {
        let mut t = blob.clone();
        t[i] ^= 1;
        assert!(
            open_with_ec_private_key(&transport, &t, &aad).is_err(),
            "flipped byte {i} accepted"
        );
    }
    let other = p256::SecretKey::random(&mut rng);
    assert!(matches!(
        open_with_ec_private_key(&other, &blob, &aad),
        Err(Error::EnvelopeOpen)
    ));
}

/// The sealed server share, opened "in the HSM", still completes the device's partial.
#[test]
fn sealed_server_share_works_after_opening() {
    use rsa::pkcs8::EncodePublicKey;
    let mut rng = StdRng::seed_from_u64(12);
    let transport = RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let spki = transport.to_public_key().to_public_key_der().unwrap();
    let km = generate_client_key(&mut rng, TEST_BITS).unwrap();
    let n1 = km.modulus.clone();
    let aad = aad_server_share("reg-42", KeyType::Auth);
    // The share is moved into the envelope: `km.server_share` is gone afterwards.
    let blob = seal_server_share(spki.as_bytes(), km.server_share, &aad, &mut rng).unwrap();
    let opened = open_with_private_key(&transport, &blob, &aad).unwrap();
    assert_eq!(opened.len(), n1.len());
    let server_share = ServerShare::from_bytes(opened).unwrap();

    let req = request(
        SignatureScheme::Pkcs1v15,
        HashAlgorithm::Sha256,
        b"m",
        4096,
        &mut rng,
    );
    let s1_dev = partial_sign(&km.device_share, &n1, &req).unwrap();
    let (_, ok) = server_client_half(&server_share, &n1, &req.encoded_message, s1_dev.as_bytes());
    assert!(ok);
    assert!(
        open_with_private_key(
            &transport,
            &blob,
            &aad_server_share("reg-42", KeyType::Sign)
        )
        .is_err()
    );
}
