//! hsm-sim through `cryptoki` (the server's code path): token, PINs, RSA keys, signatures
//! checked independently with OpenSSL.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::Ulong;
use openssl::bn::{BigNum, BigNumContext};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::sign::Verifier;

fn gen_rsa(s: &Session, bits: u64, token: bool) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::Token(token),
            Attribute::Private(false),
            Attribute::ModulusBits(Ulong::from(bits)),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::Verify(true),
            Attribute::Label(b"test-key".to_vec()),
        ],
        &[
            Attribute::Token(token),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(b"test-key".to_vec()),
        ],
    )
    .expect("C_GenerateKeyPair")
}

fn openssl_public(s: &Session, public: ObjectHandle) -> Rsa<openssl::pkey::Public> {
    let attrs = s
        .get_attributes(
            public,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .expect("public attributes");
    let (mut n, mut e) = (None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    Rsa::from_public_components(
        BigNum::from_slice(&n.expect("modulus")).unwrap(),
        BigNum::from_slice(&e.expect("exponent")).unwrap(),
    )
    .unwrap()
}

#[test]
fn library_slot_and_mechanism_info() {
    isolated("library_slot_and_mechanism_info", || {
        let ctx = load();
        let info = ctx.get_library_info().unwrap();
        assert_eq!(
            (
                info.cryptoki_version().major(),
                info.cryptoki_version().minor()
            ),
            (2, 40)
        );
        assert_eq!(info.manufacturer_id(), "Tandem");
        let slot = slot(&ctx);
        assert_eq!(slot.id(), 0);
        let mechs = ctx.get_mechanism_list(slot).unwrap();
        for m in [
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::RSA_X_509,
            MechanismType::RSA_PKCS,
            MechanismType::SHA256_RSA_PKCS,
            MechanismType::SHA384_RSA_PKCS,
            MechanismType::SHA512_RSA_PKCS,
        ] {
            assert!(mechs.contains(&m), "{m} missing");
        }
        let mi = ctx
            .get_mechanism_info(slot, MechanismType::RSA_PKCS)
            .unwrap();
        assert!(mi.sign() && mi.verify());
        assert_eq!(mi.max_key_size(), 8192);
        assert_eq!(
            rv(ctx
                .get_mechanism_info(slot, MechanismType::SHA1_RSA_PKCS)
                .unwrap_err()),
            RvError::MechanismInvalid
        );
    });
}

#[test]
fn token_init_pins_and_login_rules() {
    isolated("token_init_pins_and_login_rules", || {
        let ctx = load();
        let slot = slot(&ctx);
        ctx.init_token(slot, &pin(SO_PIN), "tandem-test").unwrap();
        let ti = ctx.get_token_info(slot).unwrap();
        assert!(ti.token_initialized() && ti.rng() && ti.login_required());
        assert!(!ti.user_pin_initialized());
        assert_eq!(ti.label(), "tandem-test");

        // Re-initialising needs the current SO PIN.
        assert_eq!(
            rv(ctx.init_token(slot, &pin("wrong-so-pin"), "x").unwrap_err()),
            RvError::PinIncorrect
        );

        let s = ctx.open_rw_session(slot).unwrap();
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
            RvError::UserPinNotInitialized
        );
        assert_eq!(
            rv(s.login(UserType::So, Some(&pin("wrong-so-pin")))
                .unwrap_err()),
            RvError::PinIncorrect
        );
        s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        assert_eq!(
            rv(s.login(UserType::So, Some(&pin(SO_PIN))).unwrap_err()),
            RvError::UserAlreadyLoggedIn
        );
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
            RvError::UserAnotherAlreadyLoggedIn
        );
        s.init_pin(&pin(USER_PIN)).unwrap();
        s.logout().unwrap();
        assert_eq!(rv(s.logout().unwrap_err()), RvError::UserNotLoggedIn);
        assert!(ctx.get_token_info(slot).unwrap().user_pin_initialized());

        assert_eq!(
            rv(s.login(UserType::User, Some(&pin("not-the-pin")))
                .unwrap_err()),
            RvError::PinIncorrect
        );
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        // The user changes the PIN; the old one stops working.
        s.set_pin(&pin(USER_PIN), &pin("new-user-pin")).unwrap();
        s.logout().unwrap();
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
            RvError::PinIncorrect
        );
        s.login(UserType::User, Some(&pin("new-user-pin"))).unwrap();

        // No re-initialisation while sessions are open.
        assert_eq!(
            rv(ctx.init_token(slot, &pin(SO_PIN), "x").unwrap_err()),
            RvError::SessionExists
        );
    });
}

#[test]
fn rsa_pkcs_signatures_verify_with_openssl() {
    isolated("rsa_pkcs_signatures_verify_with_openssl", || {
        let ctx = load();
        let s = user_session(&ctx);
        let (public, private) = gen_rsa(&s, 2048, false);
        let pk = PKey::from_rsa(openssl_public(&s, public)).unwrap();
        assert_eq!(pk.bits(), 2048);
        let msg = b"Tandem signs this";

        // CKM_SHA{256,384,512}_RSA_PKCS: the token hashes.
        for (mech, md) in [
            (Mechanism::Sha256RsaPkcs, MessageDigest::sha256()),
            (Mechanism::Sha384RsaPkcs, MessageDigest::sha384()),
            (Mechanism::Sha512RsaPkcs, MessageDigest::sha512()),
        ] {
            let sig = s.sign(&mech, private, msg).unwrap();
            assert_eq!(sig.len(), 256);
            let mut v = Verifier::new(md, &pk).unwrap();
            v.update(msg).unwrap();
            assert!(
                v.verify(&sig).unwrap(),
                "{mech:?} signature rejected by OpenSSL"
            );
            let mut v = Verifier::new(md, &pk).unwrap();
            v.update(b"another message").unwrap();
            assert!(!v.verify(&sig).unwrap());
            // The token's own verification agrees, and rejects a changed signature.
            s.verify(&mech, public, msg, &sig).unwrap();
            let mut bad = sig.clone();
            bad[100] ^= 1;
            assert_eq!(
                rv(s.verify(&mech, public, msg, &bad).unwrap_err()),
                RvError::SignatureInvalid
            );
        }

        // CKM_RSA_PKCS: the caller supplies the DigestInfo.
        let digest = openssl::hash::hash(MessageDigest::sha256(), msg).unwrap();
        let mut digest_info = vec![
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        digest_info.extend_from_slice(&digest);
        let sig = s.sign(&Mechanism::RsaPkcs, private, &digest_info).unwrap();
        let mut v = Verifier::new(MessageDigest::sha256(), &pk).unwrap();
        v.update(msg).unwrap();
        assert!(v.verify(&sig).unwrap(), "CKM_RSA_PKCS signature rejected");
        s.verify(&Mechanism::RsaPkcs, public, &digest_info, &sig)
            .unwrap();
        // PKCS#1 v1.5 leaves at least 11 bytes for padding.
        assert_eq!(
            rv(s.sign(&Mechanism::RsaPkcs, private, &[7u8; 246])
                .unwrap_err()),
            RvError::DataLenRange
        );
    });
}

#[test]
fn rsa_x509_is_raw_exponentiation() {
    isolated("rsa_x509_is_raw_exponentiation", || {
        let ctx = load();
        let s = user_session(&ctx);
        let (public, private) = gen_rsa(&s, 2048, false);
        let rsa = openssl_public(&s, public);
        let mut m = [0u8; 256];
        openssl::rand::rand_bytes(&mut m).unwrap();
        m[0] &= 0x3f; // below n
        let sig = s.sign(&Mechanism::RsaX509, private, &m).unwrap();
        assert_eq!(sig.len(), 256);
        let mut ctx_bn = BigNumContext::new().unwrap();
        let mut back = BigNum::new().unwrap();
        back.mod_exp(
            &BigNum::from_slice(&sig).unwrap(),
            rsa.e(),
            rsa.n(),
            &mut ctx_bn,
        )
        .unwrap();
        assert_eq!(back, BigNum::from_slice(&m).unwrap(), "s^e mod n != m");
        s.verify(&Mechanism::RsaX509, public, &m, &sig).unwrap();

        // A short input is a number too (left-padded with zeros).
        let sig_small = s.sign(&Mechanism::RsaX509, private, &[2]).unwrap();
        let mut back = BigNum::new().unwrap();
        back.mod_exp(
            &BigNum::from_slice(&sig_small).unwrap(),
            rsa.e(),
            rsa.n(),
            &mut ctx_bn,
        )
        .unwrap();
        assert_eq!(back, BigNum::from_u32(2).unwrap());

        // m >= n is refused, and so is input longer than the modulus.
        let n = rsa.n().to_vec();
        assert_eq!(
            rv(s.sign(&Mechanism::RsaX509, private, &n).unwrap_err()),
            RvError::DataInvalid
        );
        assert_eq!(
            rv(s.sign(&Mechanism::RsaX509, private, &[1u8; 257])
                .unwrap_err()),
            RvError::DataLenRange
        );
    });
}

#[test]
fn secret_attributes_are_sensitive_and_public_ones_readable() {
    isolated(
        "secret_attributes_are_sensitive_and_public_ones_readable",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let (public, private) = gen_rsa(&s, 1024, false);
            let info = s
                .get_attribute_info(
                    private,
                    &[
                        AttributeType::PrivateExponent,
                        AttributeType::Prime1,
                        AttributeType::Coefficient,
                        AttributeType::Modulus,
                        AttributeType::EcPoint,
                    ],
                )
                .unwrap();
            assert_eq!(
                format!("{info:?}"),
                format!(
                    "{:?}",
                    [
                        AttributeInfo::Sensitive,
                        AttributeInfo::Sensitive,
                        AttributeInfo::Sensitive,
                        AttributeInfo::Available(128),
                        AttributeInfo::TypeInvalid,
                    ]
                )
            );
            let attrs = s
                .get_attributes(
                    private,
                    &[
                        AttributeType::Class,
                        AttributeType::Sensitive,
                        AttributeType::AlwaysSensitive,
                        AttributeType::NeverExtractable,
                        AttributeType::Local,
                    ],
                )
                .unwrap();
            assert_eq!(
                attrs,
                vec![
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Sensitive(true),
                    Attribute::AlwaysSensitive(true),
                    Attribute::NeverExtractable(true),
                    Attribute::Local(true),
                ]
            );
            let bits = s
                .get_attributes(public, &[AttributeType::ModulusBits])
                .unwrap();
            assert_eq!(bits, vec![Attribute::ModulusBits(Ulong::from(1024u64))]);

            // Sensitive can only be switched on, extractable only off.
            assert_eq!(
                rv(s.update_attributes(private, &[Attribute::Sensitive(false)])
                    .unwrap_err()),
                RvError::AttributeReadOnly
            );
            assert_eq!(
                rv(
                    s.update_attributes(private, &[Attribute::Extractable(true)])
                        .unwrap_err()
                ),
                RvError::AttributeReadOnly
            );
            s.update_attributes(private, &[Attribute::Label(b"renamed".to_vec())])
                .unwrap();
            assert_eq!(
                s.get_attributes(private, &[AttributeType::Label]).unwrap(),
                vec![Attribute::Label(b"renamed".to_vec())]
            );
            assert_eq!(
                rv(
                    s.update_attributes(private, &[Attribute::Modulus(vec![1, 2, 3])])
                        .unwrap_err()
                ),
                RvError::AttributeReadOnly
            );
            // A non-modifiable object refuses every change.
            let data = s
                .create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Modifiable(false),
                    Attribute::Value(b"fixed".to_vec()),
                ])
                .unwrap();
            assert_eq!(
                rv(
                    s.update_attributes(data, &[Attribute::Label(b"x".to_vec())])
                        .unwrap_err()
                ),
                RvError::ActionProhibited
            );
        },
    );
}

#[test]
fn private_objects_need_user_login() {
    isolated("private_objects_need_user_login", || {
        let ctx = load();
        let slot = fresh_token(&ctx);
        let s = ctx.open_rw_session(slot).unwrap();
        let public = s
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Private(false),
                Attribute::Label(b"shared".to_vec()),
                Attribute::Value(b"public value".to_vec()),
            ])
            .unwrap();
        // Creating a private object needs the user.
        assert_eq!(
            rv(s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Private(true),
                Attribute::Label(b"shared".to_vec()),
            ])
            .unwrap_err()),
            RvError::UserNotLoggedIn
        );
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let private = s
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Private(true),
                Attribute::Label(b"shared".to_vec()),
                Attribute::Value(b"private value".to_vec()),
            ])
            .unwrap();
        let label = [Attribute::Label(b"shared".to_vec())];
        let mut found = s.find_objects(&label).unwrap();
        found.sort_by_key(|h| h.handle());
        assert_eq!(found, vec![public, private]);
        s.logout().unwrap();
        assert_eq!(s.find_objects(&label).unwrap(), vec![public]);
        // The private session object is gone after logout, as PKCS#11 says.
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(s.find_objects(&label).unwrap(), vec![public]);
        s.destroy_object(public).unwrap();
        assert!(s.find_objects(&label).unwrap().is_empty());
        assert_eq!(
            rv(s.destroy_object(public).unwrap_err()),
            RvError::ObjectHandleInvalid
        );
    });
}

#[test]
fn unsupported_functions_and_mechanisms_are_reported() {
    isolated("unsupported_functions_and_mechanisms_are_reported", || {
        let ctx = load();
        let s = user_session(&ctx);
        assert_eq!(
            rv(s.digest(&Mechanism::Sha256, b"x").unwrap_err()),
            RvError::FunctionNotSupported
        );
        let (_, private) = gen_rsa(&s, 1024, false);
        assert_eq!(
            rv(s.sign(&Mechanism::Sha1RsaPkcs, private, b"x").unwrap_err()),
            RvError::MechanismInvalid
        );
        assert_eq!(
            rv(
                s.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &[], &[])
                    .unwrap_err()
            ),
            RvError::MechanismInvalid
        );
        // A key without CKA_SIGN cannot sign.
        let (_, no_sign) = s
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[Attribute::ModulusBits(Ulong::from(1024u64))],
                &[Attribute::Sign(false)],
            )
            .unwrap();
        assert_eq!(
            rv(s.sign(&Mechanism::RsaPkcs, no_sign, b"x").unwrap_err()),
            RvError::KeyFunctionNotPermitted
        );
        // Too small a key is refused.
        assert_eq!(
            rv(s.generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[Attribute::ModulusBits(Ulong::from(512u64))],
                &[],
            )
            .unwrap_err()),
            RvError::KeySizeRange
        );
        let random = s.generate_random_vec(64).unwrap();
        assert_eq!(random.len(), 64);
        assert_ne!(random, s.generate_random_vec(64).unwrap());
    });
}

#[test]
fn sessions_in_parallel_threads() {
    isolated("sessions_in_parallel_threads", || {
        let ctx = load();
        let s = user_session(&ctx);
        let (public, private) = gen_rsa(&s, 1024, false);
        let pk = PKey::from_rsa(openssl_public(&s, public)).unwrap();
        let slot = slot(&ctx);
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let ctx = ctx.clone();
                let pk = pk.clone();
                scope.spawn(move || {
                    // One session per thread, as the server does; the user login is shared.
                    let session = ctx.open_ro_session(slot).unwrap();
                    for i in 0..8u8 {
                        let msg = [t, i, 42];
                        let sig = session
                            .sign(&Mechanism::Sha256RsaPkcs, private, &msg)
                            .unwrap();
                        let mut v = Verifier::new(MessageDigest::sha256(), &pk).unwrap();
                        v.update(&msg).unwrap();
                        assert!(v.verify(&sig).unwrap());
                        let random = session.generate_random_vec(16).unwrap();
                        assert_eq!(random.len(), 16);
                    }
                });
            }
        });
        assert_eq!(
            ctx.get_token_info(slot).unwrap().session_count(),
            Some(1),
            "thread sessions closed"
        );
    });
}

#[test]
fn key_material_is_never_a_public_token_object() {
    isolated("key_material_is_never_a_public_token_object", || {
        let ctx = load();
        let s = user_session(&ctx);
        assert_eq!(
            rv(s.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(false),
                ],
            )
            .unwrap_err()),
            RvError::TemplateInconsistent
        );
        // As a session object it is fine (it never reaches the disk).
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Private(false),
            ],
        )
        .unwrap();
    });
}

#[test]
fn imported_rsa_key_signs_and_inconsistent_one_is_refused() {
    isolated(
        "imported_rsa_key_signs_and_inconsistent_one_is_refused",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let key = Rsa::generate(1024).unwrap();
            let v = |b: &openssl::bn::BigNumRef| b.to_vec();
            let template = |q: Vec<u8>| {
                vec![
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(cryptoki::object::KeyType::RSA),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sign(true),
                    Attribute::Modulus(v(key.n())),
                    Attribute::PublicExponent(v(key.e())),
                    Attribute::PrivateExponent(v(key.d())),
                    Attribute::Prime1(v(key.p().unwrap())),
                    Attribute::Prime2(q),
                    Attribute::Exponent1(v(key.dmp1().unwrap())),
                    Attribute::Exponent2(v(key.dmq1().unwrap())),
                    Attribute::Coefficient(v(key.iqmp().unwrap())),
                ]
            };
            let imported = s.create_object(&template(v(key.q().unwrap()))).unwrap();
            let sig = s
                .sign(&Mechanism::Sha256RsaPkcs, imported, b"imported")
                .unwrap();
            let pk = PKey::from_rsa(key.clone()).unwrap();
            let mut verifier = Verifier::new(MessageDigest::sha256(), &pk).unwrap();
            verifier.update(b"imported").unwrap();
            assert!(verifier.verify(&sig).unwrap());
            // Imported keys default to sensitive and non-extractable.
            let info = s
                .get_attribute_info(imported, &[AttributeType::PrivateExponent])
                .unwrap();
            assert_eq!(format!("{info:?}"), "[Sensitive]");
            // A wrong prime makes the key inconsistent.
            let mut q = v(key.q().unwrap());
            *q.last_mut().unwrap() ^= 2;
            assert_eq!(
                rv(s.create_object(&template(q)).unwrap_err()),
                RvError::AttributeValueInvalid
            );
            // Some CRT components but not all are refused.
            let mut partial = template(v(key.q().unwrap()));
            partial.truncate(9);
            assert_eq!(
                rv(s.create_object(&partial).unwrap_err()),
                RvError::TemplateIncomplete
            );
            // None at all is a non-CRT key (n, e, d): raw RSA only (tests/non_crt_rsa.rs).
            let mut non_crt = template(v(key.q().unwrap()));
            non_crt.truncate(8);
            let h = s.create_object(&non_crt).unwrap();
            assert_eq!(
                rv(s.sign(&Mechanism::Sha256RsaPkcs, h, b"imported")
                    .unwrap_err()),
                RvError::KeyFunctionNotPermitted
            );
        },
    );
}
