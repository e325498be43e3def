//! The operations `server/src/hsm/` performs, with its templates, through `cryptoki`:
//! KEK generation, AES-GCM at rest, server keys wrapped with CKM_AES_KEY_WRAP_PAD and used
//! for CKM_RSA_X_509, device envelopes unwrapped with CKM_RSA_PKCS_OAEP (SHA-1).
//! Results are checked against OpenSSL where the key material is available to the test.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType, aead::GcmParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use openssl::bn::{BigNum, BigNumContext};
use openssl::rsa::{Padding, Rsa};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

/// The server's KEK template.
fn kek(s: &Session) -> ObjectHandle {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Label(b"kek".to_vec()),
            Attribute::Id(b"kek".to_vec()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Modifiable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
        ],
    )
    .unwrap()
}

fn gcm(iv: &mut [u8; 12], aad: &[u8]) -> Mechanism<'static> {
    // The parameters borrow `iv` and `aad`; leak them for the test's convenience.
    let iv: &'static mut [u8; 12] = Box::leak(Box::new(*iv));
    let aad: &'static [u8] = Box::leak(aad.to_vec().into_boxed_slice());
    Mechanism::AesGcm(GcmParams::new(iv, aad, 128.into()).unwrap())
}

fn oaep_sha1() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    ))
}

#[test]
fn aes_gcm_matches_openssl_and_authenticates() {
    isolated("aes_gcm_matches_openssl_and_authenticates", || {
        let ctx = load();
        let s = user_session(&ctx);
        // An extractable, non-sensitive key so that OpenSSL can check the token's output.
        let key = s
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::ValueLen(32.into()),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ],
            )
            .unwrap();
        let value = match &s.get_attributes(key, &[AttributeType::Value]).unwrap()[..] {
            [Attribute::Value(v)] => v.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(value.len(), 32);
        let mut iv = [3u8; 12];
        let aad = b"account 42";
        let plaintext = b"d1'' share, encrypted at rest";
        let sealed = s.encrypt(&gcm(&mut iv, aad), key, plaintext).unwrap();
        assert_eq!(sealed.len(), plaintext.len() + 16);
        let (ct, tag) = sealed.split_at(plaintext.len());
        let opened = decrypt_aead(Cipher::aes_256_gcm(), &value, Some(&iv), aad, ct, tag).unwrap();
        assert_eq!(opened, plaintext);
        // And the other way round.
        let mut tag = [0u8; 16];
        let mut ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &value,
            Some(&iv),
            aad,
            plaintext,
            &mut tag,
        )
        .unwrap();
        ct.extend_from_slice(&tag);
        assert_eq!(
            s.decrypt(&gcm(&mut iv, aad), key, &ct).unwrap(),
            plaintext.to_vec()
        );
        // A wrong AAD or a changed byte is refused.
        assert_eq!(
            rv(s.decrypt(&gcm(&mut iv, b"account 43"), key, &ct)
                .unwrap_err()),
            RvError::EncryptedDataInvalid
        );
        ct[0] ^= 1;
        assert_eq!(
            rv(s.decrypt(&gcm(&mut iv, aad), key, &ct).unwrap_err()),
            RvError::EncryptedDataInvalid
        );

        // The server's KEK: non-extractable, seals and opens, CKA_VALUE stays inside.
        let kek = kek(&s);
        let info = s.get_attribute_info(kek, &[AttributeType::Value]).unwrap();
        assert_eq!(format!("{info:?}"), "[Sensitive]");
        let sealed = s.encrypt(&gcm(&mut iv, aad), kek, plaintext).unwrap();
        assert_eq!(
            s.decrypt(&gcm(&mut iv, aad), kek, &sealed).unwrap(),
            plaintext.to_vec()
        );
        assert_eq!(
            rv(
                s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(20.into())])
                    .unwrap_err()
            ),
            RvError::KeySizeRange
        );
    });
}

#[test]
fn server_key_wrapped_under_kek_signs_raw() {
    isolated("server_key_wrapped_under_kek_signs_raw", || {
        let ctx = load();
        let s = user_session(&ctx);
        let kek = kek(&s);
        // generate_server_key: session key pair, private key extractable only for wrapping.
        let (public, private) = s
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::Private(false),
                    Attribute::ModulusBits(Ulong::from(2048u64)),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                    Attribute::Verify(true),
                    Attribute::Encrypt(false),
                    Attribute::Wrap(false),
                ],
                &[
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(true),
                    Attribute::Sign(true),
                    Attribute::Decrypt(false),
                    Attribute::Unwrap(false),
                    Attribute::Derive(false),
                ],
            )
            .unwrap();
        let modulus = match &s.get_attributes(public, &[AttributeType::Modulus]).unwrap()[..] {
            [Attribute::Modulus(n)] => n.clone(),
            other => panic!("{other:?}"),
        };
        let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, kek, private).unwrap();
        assert_eq!(wrapped.len() % 8, 0);
        assert!(wrapped.len() > 1000, "PKCS#8 of RSA-2048 wrapped");
        s.destroy_object(private).unwrap();
        s.destroy_object(public).unwrap();

        // sign_raw: unwrap into a sensitive, non-extractable session key and sign raw.
        let template = [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ];
        let key = s
            .unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &template)
            .unwrap();
        let attrs = s
            .get_attributes(
                key,
                &[
                    AttributeType::Modulus,
                    AttributeType::Local,
                    AttributeType::AlwaysSensitive,
                ],
            )
            .unwrap();
        assert_eq!(
            attrs,
            vec![
                Attribute::Modulus(modulus.clone()),
                Attribute::Local(false),
                Attribute::AlwaysSensitive(false),
            ]
        );
        let mut x = [0u8; 256];
        openssl::rand::rand_bytes(&mut x).unwrap();
        x[0] &= 0x7f;
        let sig = s.sign(&Mechanism::RsaX509, key, &x).unwrap();
        let n = BigNum::from_slice(&modulus).unwrap();
        let mut back = BigNum::new().unwrap();
        back.mod_exp(
            &BigNum::from_slice(&sig).unwrap(),
            &BigNum::from_u32(65537).unwrap(),
            &n,
            &mut BigNumContext::new().unwrap(),
        )
        .unwrap();
        // x < n: the modulus has its top bit set, x does not.
        assert_eq!(back, BigNum::from_slice(&x).unwrap(), "s^e mod n != x");

        // The unwrapped key is not extractable: it cannot be wrapped again.
        assert_eq!(
            rv(s.wrap_key(&Mechanism::AesKeyWrapPad, kek, key).unwrap_err()),
            RvError::KeyUnextractable
        );
        // A modified wrapped key is refused without detail.
        let mut bad = wrapped.clone();
        bad[40] ^= 1;
        assert_eq!(
            rv(
                s.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &bad, &template)
                    .unwrap_err()
            ),
            RvError::WrappedKeyInvalid
        );
        // Another KEK cannot unwrap it.
        let other = kek_like(&s);
        assert_eq!(
            rv(
                s.unwrap_key(&Mechanism::AesKeyWrapPad, other, &wrapped, &template)
                    .unwrap_err()
            ),
            RvError::WrappedKeyInvalid
        );
    });
}

fn kek_like(s: &Session) -> ObjectHandle {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::ValueLen(32.into()),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ],
    )
    .unwrap()
}

#[test]
fn device_envelope_unwrapped_with_oaep_sha1() {
    isolated("device_envelope_unwrapped_with_oaep_sha1", || {
        let ctx = load();
        let s = user_session(&ctx);
        // The key-transport key with the server's templates.
        let (public, private) = s
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Label(b"transport".to_vec()),
                    Attribute::Id(b"transport".to_vec()),
                    Attribute::ModulusBits(Ulong::from(2048u64)),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                    Attribute::Encrypt(true),
                    Attribute::Wrap(true),
                    Attribute::Verify(false),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Label(b"transport".to_vec()),
                    Attribute::Id(b"transport".to_vec()),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Modifiable(false),
                    Attribute::Decrypt(true),
                    Attribute::Unwrap(true),
                    Attribute::Sign(false),
                    Attribute::Derive(false),
                ],
            )
            .unwrap();
        let (n, e) = match &s
            .get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .unwrap()[..]
        {
            [Attribute::Modulus(n), Attribute::PublicExponent(e)] => (n.clone(), e.clone()),
            other => panic!("{other:?}"),
        };
        let device_view = Rsa::from_public_components(
            BigNum::from_slice(&n).unwrap(),
            BigNum::from_slice(&e).unwrap(),
        )
        .unwrap();

        // The device: a random content key, OAEP-SHA1 to the transport key, AES-GCM payload.
        let mut content_key = [0u8; 32];
        openssl::rand::rand_bytes(&mut content_key).unwrap();
        let mut wrapped = vec![0u8; 256];
        let len = device_view
            .public_encrypt(&content_key, &mut wrapped, Padding::PKCS1_OAEP)
            .unwrap();
        assert_eq!(len, 256);
        let iv = [9u8; 12];
        let aad = b"envelope aad";
        let payload = b"device secret share";
        let mut tag = [0u8; 16];
        let mut ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &content_key,
            Some(&iv),
            aad,
            payload,
            &mut tag,
        )
        .unwrap();
        ct.extend_from_slice(&tag);

        // The server: unwrap into a session AES key, then AES-GCM decrypt.
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Decrypt(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
        ];
        let key = s
            .unwrap_key(&oaep_sha1(), private, &wrapped, &template)
            .unwrap();
        assert_eq!(
            s.get_attributes(key, &[AttributeType::ValueLen]).unwrap(),
            vec![Attribute::ValueLen(32.into())]
        );
        let mut iv_m = iv;
        assert_eq!(
            s.decrypt(&gcm(&mut iv_m, aad), key, &ct).unwrap(),
            payload.to_vec()
        );
        // The content key may only decrypt.
        assert_eq!(
            rv(s.encrypt(&gcm(&mut iv_m, aad), key, b"x").unwrap_err()),
            RvError::KeyFunctionNotPermitted
        );

        // C_Decrypt with OAEP gives the same content key (the transport key may decrypt).
        assert_eq!(
            s.decrypt(&oaep_sha1(), private, &wrapped).unwrap(),
            content_key.to_vec()
        );
        // A changed envelope is refused without detail.
        let mut bad = wrapped.clone();
        bad[10] ^= 1;
        assert_eq!(
            rv(s.unwrap_key(&oaep_sha1(), private, &bad, &template)
                .unwrap_err()),
            RvError::WrappedKeyInvalid
        );
        // Other OAEP parameters: a SHA-1 envelope does not open as SHA-256.
        let sha256 = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            PkcsOaepSource::empty(),
        ));
        assert_eq!(
            rv(s.decrypt(&sha256, private, &wrapped).unwrap_err()),
            RvError::EncryptedDataInvalid
        );
        // SHA-256 with a label, encrypted by OpenSSL, opens only with the same label.
        let pkey = openssl::pkey::PKey::from_rsa(device_view.clone()).unwrap();
        let mut ctx_enc = openssl::pkey_ctx::PkeyCtx::new(&pkey).unwrap();
        ctx_enc.encrypt_init().unwrap();
        ctx_enc.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        ctx_enc.set_rsa_oaep_md(openssl::md::Md::sha256()).unwrap();
        ctx_enc.set_rsa_mgf1_md(openssl::md::Md::sha256()).unwrap();
        ctx_enc.set_rsa_oaep_label(b"tandem").unwrap();
        let mut labelled = Vec::new();
        ctx_enc
            .encrypt_to_vec(b"labelled secret", &mut labelled)
            .unwrap();
        let with_label = |label: &'static [u8]| {
            Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                PkcsOaepSource::data_specified(label),
            ))
        };
        assert_eq!(
            s.decrypt(&with_label(b"tandem"), private, &labelled)
                .unwrap(),
            b"labelled secret".to_vec()
        );
        assert_eq!(
            rv(s.decrypt(&with_label(b"other"), private, &labelled)
                .unwrap_err()),
            RvError::EncryptedDataInvalid
        );
        // An unsupported hash is refused up front.
        let sha224 = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA224,
            PkcsMgfType::MGF1_SHA224,
            PkcsOaepSource::empty(),
        ));
        assert_eq!(
            rv(s.decrypt(&sha224, private, &wrapped).unwrap_err()),
            RvError::MechanismParamInvalid
        );
        // The token's OAEP encryption decrypts with the token (and is randomised).
        let c1 = s.encrypt(&oaep_sha1(), public, b"hello").unwrap();
        let c2 = s.encrypt(&oaep_sha1(), public, b"hello").unwrap();
        assert_ne!(c1, c2);
        assert_eq!(s.decrypt(&oaep_sha1(), private, &c1).unwrap(), b"hello");
    });
}

/// A CA key with the server's templates (`CKA_ALLOWED_MECHANISMS` set).
fn ca_key(s: &Session, ec: bool) -> (ObjectHandle, ObjectHandle) {
    let label = if ec {
        b"ca-ec".to_vec()
    } else {
        b"ca-rsa".to_vec()
    };
    let (mechanism, mut public_template, allowed) = if ec {
        (
            Mechanism::EccKeyPairGen,
            vec![
                Attribute::EcParams(vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
                Attribute::Derive(false),
            ],
            MechanismType::ECDSA,
        )
    } else {
        (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits(Ulong::from(2048u64)),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
            ],
            MechanismType::SHA384_RSA_PKCS,
        )
    };
    public_template.extend([
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(label.clone()),
        Attribute::Id(label.clone()),
        Attribute::Modifiable(false),
        Attribute::Verify(true),
    ]);
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(label.clone()),
        Attribute::Id(label),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Sign(true),
        Attribute::SignRecover(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::AllowedMechanisms(vec![allowed]),
    ];
    s.generate_key_pair(&mechanism, &public_template, &private_template)
        .unwrap()
}

#[test]
fn ca_keys_sign_only_with_their_mechanism() {
    isolated("ca_keys_sign_only_with_their_mechanism", || {
        let ctx = load();
        let s = user_session(&ctx);
        let tbs = b"tbsCertificate bytes";

        // P-384: CKM_ECDSA over a SHA-384 digest, checked with OpenSSL.
        let (public, private) = ca_key(&s, true);
        let (params, point) = match &s
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .unwrap()[..]
        {
            [Attribute::EcParams(p), Attribute::EcPoint(q)] => (p.clone(), q.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(params, vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]);
        // A DER OCTET STRING around the 97-byte uncompressed point.
        assert_eq!(
            (point.len(), point[0], point[1], point[2]),
            (99, 0x04, 97, 0x04)
        );
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
        let mut bn_ctx = BigNumContext::new().unwrap();
        let ec_public = openssl::ec::EcKey::from_public_key(
            &group,
            &openssl::ec::EcPoint::from_bytes(&group, &point[2..], &mut bn_ctx).unwrap(),
        )
        .unwrap();
        let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha384(), tbs).unwrap();
        let sig = s.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
        assert_eq!(sig.len(), 96);
        let der_sig = openssl::ecdsa::EcdsaSig::from_private_components(
            BigNum::from_slice(&sig[..48]).unwrap(),
            BigNum::from_slice(&sig[48..]).unwrap(),
        )
        .unwrap();
        assert!(der_sig.verify(&digest, &ec_public).unwrap());
        let other = openssl::hash::hash(openssl::hash::MessageDigest::sha384(), b"x").unwrap();
        assert!(!der_sig.verify(&other, &ec_public).unwrap());
        s.verify(&Mechanism::Ecdsa, public, &digest, &sig).unwrap();
        assert_eq!(
            rv(s.verify(&Mechanism::Ecdsa, public, &other, &sig)
                .unwrap_err()),
            RvError::SignatureInvalid
        );
        let info = s
            .get_attribute_info(private, &[AttributeType::Value])
            .unwrap();
        assert_eq!(format!("{info:?}"), "[Sensitive]");
        // An RSA mechanism on an EC key is refused.
        assert_eq!(
            rv(s.sign(&Mechanism::Sha384RsaPkcs, private, tbs).unwrap_err()),
            RvError::KeyTypeInconsistent
        );

        // RSA CA key: CKM_SHA384_RSA_PKCS only.
        let (rsa_public, rsa_private) = ca_key(&s, false);
        let sig = s.sign(&Mechanism::Sha384RsaPkcs, rsa_private, tbs).unwrap();
        s.verify(&Mechanism::Sha384RsaPkcs, rsa_public, tbs, &sig)
            .unwrap();
        assert_eq!(
            rv(s.sign(&Mechanism::Sha256RsaPkcs, rsa_private, tbs)
                .unwrap_err()),
            RvError::MechanismInvalid
        );
        // Non-modifiable CA keys refuse changes.
        assert_eq!(
            rv(s.update_attributes(rsa_private, &[Attribute::Sign(false)])
                .unwrap_err()),
            RvError::ActionProhibited
        );
        // Unknown curve.
        assert_eq!(
            rv(s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(vec![0x06, 0x03, 0x2b, 0x65, 0x70])],
                &[],
            )
            .unwrap_err()),
            RvError::CurveNotSupported
        );
        // The CA keys are found by label, as the server looks them up.
        assert_eq!(
            s.find_objects(&[
                Attribute::Label(b"ca-ec".to_vec()),
                Attribute::Class(ObjectClass::PRIVATE_KEY)
            ])
            .unwrap(),
            vec![private]
        );
    });
}
