//! Non-CRT RSA private keys (n, e, d; every CRT value 0 in the PKCS#8), as the server's
//! `token-rsa` share form imports them (docs/HSM_MODES.md): unwrapped with
//! `CKM_AES_KEY_WRAP_PAD` (into a token object), used with `CKM_RSA_X_509` only, never
//! wrapped out again. Results are checked with OpenSSL `BigNum`; the PKCS#8 is built by hand
//! here, the key-wrap is OpenSSL's `id-aes256-wrap-pad`.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use openssl::bn::{BigNum, BigNumContext};
use openssl::rsa::Rsa;

const CONTENT_KEY: [u8; 32] = [0x3c; 32];

fn der_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..0x80 => out.push(len as u8),
        0x80..0x100 => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

fn der_int(out: &mut Vec<u8>, v: &[u8]) {
    let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    let pad = v.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_len(out, v.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(&v);
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// PKCS#8 `PrivateKeyInfo` of `RSAPrivateKey { 0, n, e, d, crt... }`.
fn pkcs8(n: &[u8], e: &[u8], d: &[u8], crt: [&[u8]; 5]) -> Vec<u8> {
    let mut rsa = Vec::new();
    for v in [&[0u8][..], n, e, d].into_iter().chain(crt) {
        der_int(&mut rsa, v);
    }
    let mut info = Vec::new();
    der_int(&mut info, &[0]);
    info.extend_from_slice(&[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ]);
    info.extend_from_slice(&tlv(0x04, &tlv(0x30, &rsa)));
    tlv(0x30, &info)
}

fn kwp(data: &[u8]) -> Vec<u8> {
    use openssl::cipher::{Cipher, CipherRef};
    use openssl::cipher_ctx::CipherCtx;
    let cipher = Cipher::fetch(None, "id-aes256-wrap-pad", None).unwrap();
    let mut ctx = CipherCtx::new().unwrap();
    ctx.encrypt_init(Some(&cipher as &CipherRef), Some(&CONTENT_KEY), None)
        .unwrap();
    let mut out = Vec::new();
    ctx.cipher_update_vec(data, &mut out).unwrap();
    ctx.cipher_final_vec(&mut out).unwrap();
    out
}

fn content_key(s: &Session) -> ObjectHandle {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Value(CONTENT_KEY.to_vec()),
        Attribute::Token(false),
        Attribute::Unwrap(true),
        Attribute::Wrap(true),
    ])
    .unwrap()
}

/// The server's template (hsm/token_share.rs).
fn share_template(id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Id(id.to_vec()),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
    ]
}

/// An RSA key and a split share d'' with e_obj = d''⁻¹ mod φ(n).
struct Split {
    n: BigNum,
    d: BigNum,
    e_obj: BigNum,
}

fn split(bits: u32) -> Split {
    let mut ctx = BigNumContext::new().unwrap();
    let rsa = Rsa::generate(bits).unwrap();
    let one = BigNum::from_u32(1).unwrap();
    let mut p1 = BigNum::new().unwrap();
    p1.checked_sub(rsa.p().unwrap(), &one).unwrap();
    let mut q1 = BigNum::new().unwrap();
    q1.checked_sub(rsa.q().unwrap(), &one).unwrap();
    let mut phi = BigNum::new().unwrap();
    phi.checked_mul(&p1, &q1, &mut ctx).unwrap();
    loop {
        let mut d = BigNum::new().unwrap();
        phi.rand_range(&mut d).unwrap();
        let mut e_obj = BigNum::new().unwrap();
        if e_obj.mod_inverse(&d, &phi, &mut ctx).is_ok() {
            return Split {
                n: rsa.n().to_owned().unwrap(),
                d,
                e_obj,
            };
        }
    }
}

fn pow(x: &[u8], d: &BigNum, n: &BigNum) -> Vec<u8> {
    let mut r = BigNum::new().unwrap();
    r.mod_exp(
        &BigNum::from_slice(x).unwrap(),
        d,
        n,
        &mut BigNumContext::new().unwrap(),
    )
    .unwrap();
    r.to_vec_padded(n.num_bytes()).unwrap()
}

#[test]
fn non_crt_key_unwraps_and_computes_raw_rsa_only() {
    isolated("non_crt_key_unwraps_and_computes_raw_rsa_only", || {
        let ctx = load();
        let s = user_session(&ctx);
        let cek = content_key(&s);
        for bits in [2048u32, 3072] {
            let k = bits as usize / 8;
            let sp = split(bits);
            let der = pkcs8(
                &sp.n.to_vec(),
                &sp.e_obj.to_vec(),
                &sp.d.to_vec(),
                [&[0]; 5],
            );
            let id = format!("share-{bits}").into_bytes();
            let h = s
                .unwrap_key(
                    &Mechanism::AesKeyWrapPad,
                    cek,
                    &kwp(&der),
                    &share_template(&id),
                )
                .unwrap();
            let attrs = s
                .get_attributes(
                    h,
                    &[
                        AttributeType::Modulus,
                        AttributeType::PublicExponent,
                        AttributeType::Token,
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                    ],
                )
                .unwrap();
            assert_eq!(
                attrs,
                vec![
                    Attribute::Modulus(sp.n.to_vec()),
                    Attribute::PublicExponent(sp.e_obj.to_vec()),
                    Attribute::Token(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                ]
            );
            // No CRT value was invented, and the private exponent stays inside.
            for ty in [AttributeType::Prime1, AttributeType::PrivateExponent] {
                let got = s.get_attributes(h, &[ty]).unwrap();
                assert!(
                    got.iter()
                        .all(|a| !matches!(a, Attribute::Prime1(v) | Attribute::PrivateExponent(v) if !v.is_empty())),
                    "{ty:?} readable: {got:?}"
                );
            }
            for round in 0..3 {
                let mut x = BigNum::new().unwrap();
                sp.n.rand_range(&mut x).unwrap();
                let xb = if round == 2 {
                    vec![0x02, 0x03]
                } else {
                    x.to_vec_padded(k as i32).unwrap()
                };
                let out = s.sign(&Mechanism::RsaX509, h, &xb).unwrap();
                assert_eq!(out.len(), k);
                assert_eq!(out, pow(&xb, &sp.d, &sp.n), "{bits} bits, round {round}");
            }
            // x >= n is refused; padded mechanisms are not offered for such a key.
            assert_eq!(
                rv(s.sign(&Mechanism::RsaX509, h, &sp.n.to_vec()).unwrap_err()),
                RvError::DataInvalid
            );
            assert_eq!(
                rv(s.sign(&Mechanism::RsaPkcs, h, &[1, 2, 3]).unwrap_err()),
                RvError::KeyFunctionNotPermitted
            );
            // Found again by CKA_ID as a token object.
            let found = s
                .find_objects(&[
                    Attribute::Token(true),
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Id(id.clone()),
                ])
                .unwrap();
            assert_eq!(found, vec![h]);
        }
    });
}

#[test]
fn non_crt_key_cannot_be_wrapped_and_bad_forms_are_refused() {
    isolated(
        "non_crt_key_cannot_be_wrapped_and_bad_forms_are_refused",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let cek = content_key(&s);
            let sp = split(2048);
            let (n, e, d) = (sp.n.to_vec(), sp.e_obj.to_vec(), sp.d.to_vec());
            let mut extractable = share_template(b"x");
            extractable.retain(|a| !matches!(a, Attribute::Extractable(_)));
            extractable.push(Attribute::Extractable(true));
            extractable.retain(|a| !matches!(a, Attribute::Token(_)));
            extractable.push(Attribute::Token(false));
            let h = s
                .unwrap_key(
                    &Mechanism::AesKeyWrapPad,
                    cek,
                    &kwp(&pkcs8(&n, &e, &d, [&[0]; 5])),
                    &extractable,
                )
                .unwrap();
            // As SoftHSM 2.6.1: a key without primes has no PKCS#8 to wrap.
            assert_eq!(
                rv(s.wrap_key(&Mechanism::AesKeyWrapPad, cek, h).unwrap_err()),
                RvError::KeyNotWrappable
            );
            // Some CRT values but not all: not a key this token can use.
            let half = pkcs8(&n, &e, &d, [&[3], &[5], &[0], &[0], &[0]]);
            assert!(
                s.unwrap_key(
                    &Mechanism::AesKeyWrapPad,
                    cek,
                    &kwp(&half),
                    &share_template(b"y")
                )
                .is_err()
            );
            // d >= n, or no public exponent: refused at unwrap.
            let big_d = pkcs8(&n, &e, &[&n[..], &[1]].concat(), [&[0]; 5]);
            let no_e = pkcs8(&n, &[0], &d, [&[0]; 5]);
            for bad in [big_d, no_e] {
                assert_eq!(
                    rv(s.unwrap_key(
                        &Mechanism::AesKeyWrapPad,
                        cek,
                        &kwp(&bad),
                        &share_template(b"z")
                    )
                    .unwrap_err()),
                    RvError::WrappedKeyInvalid
                );
            }
            // A tampered key-wrap ciphertext does not unwrap.
            let mut tampered = kwp(&pkcs8(&n, &e, &d, [&[0]; 5]));
            tampered[20] ^= 1;
            assert!(
                s.unwrap_key(
                    &Mechanism::AesKeyWrapPad,
                    cek,
                    &tampered,
                    &share_template(b"w")
                )
                .is_err()
            );
            assert!(
                s.find_objects(&[
                    Attribute::Token(true),
                    Attribute::Class(ObjectClass::PRIVATE_KEY)
                ])
                .unwrap()
                .is_empty()
            );
        },
    );
}
