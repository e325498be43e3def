//! Task A: split-key exponent shares inside the token, through `cryptoki` as the server
//! would call them: a share `d` sealed exactly like `server/src/hsm/at_rest.rs` `seal_at_rest`
//! (`[0x01, 0x01] || iv(12) || ciphertext || tag(16)`, AES-256-GCM under the KEK) is
//! unwrapped with `CKM_AES_GCM` into a `CKK_TANDEM_SHARE` key and used with
//! `CKM_TANDEM_SHARE_EXP`; results are checked with OpenSSL `BigNum` in the test.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType, aead::GcmParams};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use openssl::bn::{BigNum, BigNumContext};
use openssl::rsa::{Padding, Rsa};
use openssl::symm::{Cipher, encrypt_aead};
use tandem_hsm_sim::vendor::{CKK_TANDEM_SHARE, CKM_TANDEM_SHARE_EXP};

const KEK_VALUE: [u8; 32] = [0x5a; 32];

/// A KEK with a value the test knows (the server's KEK template, imported).
fn known_kek(s: &Session) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(KEK_VALUE.to_vec()),
        Attribute::Label(b"tandem-kek".to_vec()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
    ])
    .unwrap()
}

/// `seal_at_rest`'s blob: `[0x01, 0x01] || iv || ciphertext || tag`.
fn seal(plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut iv).unwrap();
    let mut tag = [0u8; 16];
    let ct = encrypt_aead(
        Cipher::aes_256_gcm(),
        &KEK_VALUE,
        Some(&iv),
        aad,
        plain,
        &mut tag,
    )
    .unwrap();
    let mut blob = vec![0x01, 0x01];
    blob.extend_from_slice(&iv);
    blob.extend_from_slice(&ct);
    blob.extend_from_slice(&tag);
    blob
}

fn share_key_type() -> KeyType {
    KeyType::new_vendor_defined(CKK_TANDEM_SHARE).unwrap()
}

fn share_exp() -> Mechanism<'static> {
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(CKM_TANDEM_SHARE_EXP).unwrap(),
        None,
    ))
}

/// The template the server uses to unwrap a share.
fn share_template(n: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(share_key_type()),
        Attribute::Modulus(n.to_vec()),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ]
}

/// Unwraps a sealed blob: the GCM IV is `blob[2..14]`, the wrapped key `blob[14..]`.
fn unwrap_share(
    s: &Session,
    kek: ObjectHandle,
    blob: &[u8],
    aad: &[u8],
    template: &[Attribute],
) -> cryptoki::error::Result<ObjectHandle> {
    let mut iv: [u8; 12] = blob[2..14].try_into().unwrap();
    let params = GcmParams::new(&mut iv, aad, 128.into()).unwrap();
    s.unwrap_key(&Mechanism::AesGcm(params), kek, &blob[14..], template)
}

fn shares(s: &Session) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::KeyType(share_key_type())])
        .unwrap()
}

fn expected(x: &[u8], d: &BigNum, n: &BigNum) -> Vec<u8> {
    let mut r = BigNum::new().unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    r.mod_exp(&BigNum::from_slice(x).unwrap(), d, n, &mut ctx)
        .unwrap();
    r.to_vec_padded(n.num_bytes()).unwrap()
}

#[test]
fn share_exponentiation_matches_openssl_for_2048_3072_4096() {
    isolated(
        "share_exponentiation_matches_openssl_for_2048_3072_4096",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let kek = known_kek(&s);
            for bits in [2048u32, 3072, 4096] {
                let rsa = Rsa::generate(bits).unwrap();
                let n = rsa.n().to_owned().unwrap();
                let k = n.num_bytes() as usize;
                // A random share below n (not an RSA exponent).
                let mut d = BigNum::new().unwrap();
                n.rand_range(&mut d).unwrap();
                let aad = format!("tandem/share/{bits}").into_bytes();
                let blob = seal(&d.to_vec(), &aad);
                let h = unwrap_share(&s, kek, &blob, &aad, &share_template(&n.to_vec())).unwrap();
                let attrs = s
                    .get_attributes(
                        h,
                        &[
                            AttributeType::Class,
                            AttributeType::Modulus,
                            AttributeType::ModulusBits,
                            AttributeType::Sensitive,
                            AttributeType::Extractable,
                        ],
                    )
                    .unwrap();
                assert_eq!(
                    attrs,
                    vec![
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::Modulus(n.to_vec()),
                        Attribute::ModulusBits(u64::from(bits).into()),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                    ]
                );
                for round in 0..3 {
                    let mut x = BigNum::new().unwrap();
                    n.rand_range(&mut x).unwrap();
                    // Full length (left-padded) and a short input.
                    let xb = if round == 2 {
                        vec![0x02, 0x03]
                    } else {
                        x.to_vec_padded(k as i32).unwrap()
                    };
                    let out = s.sign(&share_exp(), h, &xb).unwrap();
                    assert_eq!(out.len(), k);
                    assert_eq!(out, expected(&xb, &d, &n), "{bits} bits, round {round}");
                }
                // With the real private exponent as the "share", the result is raw RSA.
                let blob = seal(&rsa.d().to_vec(), &aad);
                let h2 = unwrap_share(&s, kek, &blob, &aad, &share_template(&n.to_vec())).unwrap();
                let x = vec![0x42u8; k - 1];
                let mut raw = vec![0u8; k];
                let mut padded = vec![0u8; 1];
                padded.extend_from_slice(&x);
                rsa.private_encrypt(&padded, &mut raw, Padding::NONE)
                    .unwrap();
                assert_eq!(s.sign(&share_exp(), h2, &x).unwrap(), raw);
                s.destroy_object(h).unwrap();
                s.destroy_object(h2).unwrap();
            }
        },
    );
}

#[test]
fn share_unwrap_authenticates_and_leaves_nothing_on_failure() {
    isolated(
        "share_unwrap_authenticates_and_leaves_nothing_on_failure",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let kek = known_kek(&s);
            let rsa = Rsa::generate(2048).unwrap();
            let n = rsa.n().to_vec();
            let d = rsa.d().to_vec();
            let blob = seal(&d, b"aad-1");
            let t = share_template(&n);
            // Wrong AAD.
            assert_eq!(
                rv(unwrap_share(&s, kek, &blob, b"aad-2", &t).unwrap_err()),
                RvError::WrappedKeyInvalid
            );
            // Tampered tag, tampered ciphertext, truncated.
            let mut bad = blob.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(
                rv(unwrap_share(&s, kek, &bad, b"aad-1", &t).unwrap_err()),
                RvError::WrappedKeyInvalid
            );
            let mut bad = blob.clone();
            bad[20] ^= 0x80;
            assert_eq!(
                rv(unwrap_share(&s, kek, &bad, b"aad-1", &t).unwrap_err()),
                RvError::WrappedKeyInvalid
            );
            assert!(shares(&s).is_empty());
            // The right AAD works.
            let h = unwrap_share(&s, kek, &blob, b"aad-1", &t).unwrap();
            assert_eq!(shares(&s), vec![h]);
            // Values that are not shares of n: zero, n itself, n + 1 bytes long.
            for value in [
                vec![0u8; 4],
                n.clone(),
                [vec![0u8], d.clone()]
                    .concat()
                    .into_iter()
                    .chain([0])
                    .collect(),
            ] {
                let blob = seal(&value, b"aad-1");
                assert_eq!(
                    rv(unwrap_share(&s, kek, &blob, b"aad-1", &t).unwrap_err()),
                    RvError::WrappedKeyInvalid
                );
            }
            assert_eq!(shares(&s), vec![h]);
        },
    );
}

#[test]
fn share_is_sensitive_unwrappable_and_checks_its_input() {
    isolated(
        "share_is_sensitive_unwrappable_and_checks_its_input",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let kek = known_kek(&s);
            let rsa = Rsa::generate(2048).unwrap();
            let n = rsa.n().to_vec();
            let blob = seal(&rsa.d().to_vec(), b"a");
            // Templates that would let the share out, or lack the modulus.
            for (attr, want) in [
                (Attribute::Extractable(true), RvError::TemplateInconsistent),
                (Attribute::Sensitive(false), RvError::TemplateInconsistent),
                (Attribute::Private(false), RvError::TemplateInconsistent),
            ] {
                let mut t = share_template(&n);
                t.push(attr);
                assert_eq!(
                    rv(unwrap_share(&s, kek, &blob, b"a", &t).unwrap_err()),
                    want
                );
            }
            let t: Vec<_> = share_template(&n)
                .into_iter()
                .filter(|a| a.attribute_type() != AttributeType::Modulus)
                .collect();
            assert_eq!(
                rv(unwrap_share(&s, kek, &blob, b"a", &t).unwrap_err()),
                RvError::TemplateIncomplete
            );
            assert!(shares(&s).is_empty());

            let h = unwrap_share(&s, kek, &blob, b"a", &share_template(&n)).unwrap();
            // CKA_VALUE is never readable.
            let info = s.get_attribute_info(h, &[AttributeType::Value]).unwrap();
            assert_eq!(
                format!("{info:?}"),
                format!("{:?}", [AttributeInfo::Sensitive])
            );
            // Neither can it become extractable or non-sensitive.
            assert_eq!(
                rv(s.update_attributes(h, &[Attribute::Sensitive(false)])
                    .unwrap_err()),
                RvError::AttributeReadOnly
            );
            // It cannot be wrapped.
            assert_eq!(
                rv(s.wrap_key(&Mechanism::AesKeyWrapPad, kek, h).unwrap_err()),
                RvError::KeyUnextractable
            );
            // x >= n, and x longer than the modulus.
            assert_eq!(
                rv(s.sign(&share_exp(), h, &n).unwrap_err()),
                RvError::DataInvalid
            );
            assert_eq!(
                rv(s.sign(&share_exp(), h, &[0xff; 256]).unwrap_err()),
                RvError::DataInvalid
            );
            let mut long = vec![0u8];
            long.extend_from_slice(&[1; 256]);
            assert_eq!(
                rv(s.sign(&share_exp(), h, &long).unwrap_err()),
                RvError::DataLenRange
            );
            // Only signing: no verification, no other mechanism with a share.
            assert_eq!(
                rv(s.verify(&share_exp(), h, &[1], &[1; 256]).unwrap_err()),
                RvError::MechanismInvalid
            );
            assert_eq!(
                rv(s.sign(&Mechanism::RsaX509, h, &[1]).unwrap_err()),
                RvError::KeyTypeInconsistent
            );
            // The share mechanism does not work with an RSA key.
            let (_, private) = s
                .generate_key_pair(
                    &Mechanism::RsaPkcsKeyPairGen,
                    &[Attribute::ModulusBits(1024.into())],
                    &[Attribute::Sign(true)],
                )
                .unwrap();
            assert_eq!(
                rv(s.sign(&share_exp(), private, &[1]).unwrap_err()),
                RvError::KeyTypeInconsistent
            );
            // C_CreateObject of a share follows the same rules.
            let mut t = share_template(&n);
            t.push(Attribute::Value(n.clone()));
            assert_eq!(
                rv(s.create_object(&t).unwrap_err()),
                RvError::AttributeValueInvalid
            );
            let mut t = share_template(&n);
            t.push(Attribute::Value(vec![3]));
            t.push(Attribute::Extractable(true));
            assert_eq!(
                rv(s.create_object(&t).unwrap_err()),
                RvError::TemplateInconsistent
            );
            let mut t = share_template(&n);
            t.push(Attribute::Value(vec![3]));
            let cube = s.create_object(&t).unwrap();
            let out = s.sign(&share_exp(), cube, &[2]).unwrap();
            assert_eq!(out.len(), 256);
            assert_eq!(out[255], 8);
            assert!(out[..255].iter().all(|b| *b == 0));
        },
    );
}

#[test]
fn share_mechanism_is_listed_and_gcm_unwraps_ordinary_secrets() {
    isolated(
        "share_mechanism_is_listed_and_gcm_unwraps_ordinary_secrets",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let slot = s.get_session_info().unwrap().slot_id();
            let mech = MechanismType::new_vendor_defined(CKM_TANDEM_SHARE_EXP).unwrap();
            // (cryptoki drops vendor-defined types from C_GetMechanismList; the raw list is
            // checked in tests/raw_ffi.rs.)
            let mi = ctx.get_mechanism_info(slot, mech).unwrap();
            assert!(mi.sign() && mi.hardware());
            assert!(!mi.verify() && !mi.encrypt() && !mi.decrypt());
            assert_eq!((mi.min_key_size(), mi.max_key_size()), (1024, 8192));
            assert!(
                ctx.get_mechanism_info(slot, MechanismType::AES_GCM)
                    .unwrap()
                    .unwrap()
            );

            // An AES key sealed like a share, unwrapped with CKM_AES_GCM, then used.
            let kek = known_kek(&s);
            let value = [0x11u8; 32];
            let blob = seal(&value, b"k");
            let aes = unwrap_share(
                &s,
                kek,
                &blob,
                b"k",
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Encrypt(true),
                ],
            )
            .unwrap();
            let mut iv = [7u8; 12];
            let ct = s
                .encrypt(
                    &Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap()),
                    aes,
                    b"hello",
                )
                .unwrap();
            let mut tag = [0u8; 16];
            let want = encrypt_aead(
                Cipher::aes_256_gcm(),
                &value,
                Some(&[7u8; 12]),
                b"",
                b"hello",
                &mut tag,
            )
            .unwrap();
            assert_eq!(ct, [want, tag.to_vec()].concat());
            // A generic secret too, with its length checked.
            let blob = seal(&[0x22u8; 20], b"g");
            let g = unwrap_share(
                &s,
                kek,
                &blob,
                b"g",
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                ],
            )
            .unwrap();
            assert_eq!(
                s.get_attributes(g, &[AttributeType::ValueLen]).unwrap(),
                vec![Attribute::ValueLen(20.into())]
            );
        },
    );
}

#[test]
fn token_share_persists_encrypted_and_still_signs_after_reload() {
    isolated(
        "token_share_persists_encrypted_and_still_signs_after_reload",
        || {
            let rsa = Rsa::generate(2048).unwrap();
            let n = rsa.n().to_owned().unwrap();
            let mut d = BigNum::new().unwrap();
            n.rand_range(&mut d).unwrap();
            let x = vec![0x33u8; 100];
            let first = {
                let ctx = load();
                let s = user_session(&ctx);
                let kek = known_kek(&s);
                let blob = seal(&d.to_vec(), b"t");
                let mut t = share_template(&n.to_vec());
                t.push(Attribute::Token(true));
                t.push(Attribute::Label(b"share".to_vec()));
                let h = unwrap_share(&s, kek, &blob, b"t", &t).unwrap();
                let out = s.sign(&share_exp(), h, &x).unwrap();
                drop(s);
                ctx.finalize().unwrap();
                out
            };
            assert_eq!(first, expected(&x, &d, &n));
            // The share is not on disk in clear.
            let needle = d.to_vec();
            for f in std::fs::read_dir(token_dir().join("objects")).unwrap() {
                let bytes = std::fs::read(f.unwrap().path()).unwrap();
                assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()));
            }
            let ctx = load();
            let s = ctx.open_rw_session(slot(&ctx)).unwrap();
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            let found = s
                .find_objects(&[Attribute::Label(b"share".to_vec())])
                .unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(s.sign(&share_exp(), found[0], &x).unwrap(), first);
        },
    );
}
