//! `CKM_SHA256_HMAC` and `CKM_GENERIC_SECRET_KEY_GEN` through `cryptoki`: RFC 4231 test
//! vectors, sign and verify, key sizes, and a generated key that cannot be read.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn generic_secret(s: &Session, value: &[u8]) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Value(value.to_vec()),
        Attribute::Token(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
    ])
    .expect("C_CreateObject")
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    isolated("hmac_sha256_matches_rfc_4231", || {
        let ctx = load();
        let s = user_session(&ctx);
        let mechs = ctx.get_mechanism_list(slot(&ctx)).unwrap();
        assert!(mechs.contains(&MechanismType::SHA256_HMAC));
        assert!(mechs.contains(&MechanismType::GENERIC_SECRET_KEY_GEN));

        // RFC 4231, test case 2 ("Jefe") is below our 16-byte key minimum; cases 4 and 6 are
        // not: a 25-byte key, and a 131-byte key (longer than 64 bytes: refused by the
        // generator, but created keys of any length >= 16 work, hashed as HMAC says).
        let key4: Vec<u8> = (1u8..=25).collect();
        let data4 = [0xcdu8; 50];
        let mac4 = unhex("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
        let k = generic_secret(&s, &key4);
        assert_eq!(s.sign(&Mechanism::Sha256Hmac, k, &data4).unwrap(), mac4);
        s.verify(&Mechanism::Sha256Hmac, k, &data4, &mac4).unwrap();
        let mut wrong = mac4.clone();
        wrong[31] ^= 1;
        assert_eq!(
            rv(s.verify(&Mechanism::Sha256Hmac, k, &data4, &wrong)
                .unwrap_err()),
            RvError::SignatureInvalid
        );
        assert_eq!(
            rv(s.verify(&Mechanism::Sha256Hmac, k, &data4, &mac4[..31])
                .unwrap_err()),
            RvError::SignatureInvalid
        );

        let key6 = [0xaau8; 131];
        let data6 = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let mac6 = unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
        let k6 = generic_secret(&s, &key6);
        assert_eq!(s.sign(&Mechanism::Sha256Hmac, k6, data6).unwrap(), mac6);

        // A key shorter than 16 bytes is refused at use.
        let short = generic_secret(&s, b"Jefe");
        assert_eq!(
            rv(s.sign(&Mechanism::Sha256Hmac, short, b"x").unwrap_err()),
            RvError::KeySizeRange
        );
        // An AES key is not an HMAC key.
        let aes = s
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(vec![7u8; 32]),
                Attribute::Token(false),
                Attribute::Sign(true),
            ])
            .unwrap();
        assert_eq!(
            rv(s.sign(&Mechanism::Sha256Hmac, aes, b"x").unwrap_err()),
            RvError::KeyTypeInconsistent
        );
    });
}

#[test]
fn generated_hmac_key_is_secret() {
    isolated("generated_hmac_key_is_secret", || {
        let ctx = load();
        let s = user_session(&ctx);
        let template = |len: u64| {
            vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(len.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Verify(false),
            ]
        };
        let k = s
            .generate_key(&Mechanism::GenericSecretKeyGen, &template(32))
            .unwrap();
        let attrs = s
            .get_attributes(k, &[AttributeType::ValueLen, AttributeType::KeyType])
            .unwrap();
        assert!(attrs.contains(&Attribute::ValueLen(32.into())));
        assert!(attrs.contains(&Attribute::KeyType(KeyType::GENERIC_SECRET)));
        assert!(
            s.get_attributes(k, &[AttributeType::Value])
                .unwrap()
                .is_empty(),
            "the value of a sensitive key is readable"
        );
        let a = s.sign(&Mechanism::Sha256Hmac, k, b"input").unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(a, s.sign(&Mechanism::Sha256Hmac, k, b"input").unwrap());
        assert_ne!(a, s.sign(&Mechanism::Sha256Hmac, k, b"input2").unwrap());
        // Verify was not granted.
        assert_eq!(
            rv(s.verify(&Mechanism::Sha256Hmac, k, b"input", &a)
                .unwrap_err()),
            RvError::KeyFunctionNotPermitted
        );
        // Sizes outside 16..=64 bytes are refused; AES key generation still wants AES sizes.
        for len in [8u64, 65] {
            assert_eq!(
                rv(
                    s.generate_key(&Mechanism::GenericSecretKeyGen, &template(len))
                        .unwrap_err()
                ),
                RvError::KeySizeRange
            );
        }
        let mut aes_with_generic = template(32);
        aes_with_generic[1] = Attribute::KeyType(KeyType::AES);
        assert_eq!(
            rv(
                s.generate_key(&Mechanism::GenericSecretKeyGen, &aes_with_generic)
                    .unwrap_err()
            ),
            RvError::TemplateInconsistent
        );
    });
}
