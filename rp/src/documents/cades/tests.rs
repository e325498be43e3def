//! CAdES signatures made with a local OpenSSL key (the test PKI's signing certificate) and
//! checked by the `openssl cms -verify` command, an independent verifier.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use tandem_rp_test_pki::pki;

use super::*;
use crate::documents::digest_reader;

fn mdref(hash: DocumentHash) -> &'static openssl::md::MdRef {
    match hash {
        DocumentHash::Sha256 => openssl::md::Md::sha256(),
        DocumentHash::Sha384 => openssl::md::Md::sha384(),
        DocumentHash::Sha512 => openssl::md::Md::sha512(),
    }
}

/// Signs `digest` (already hashed with `hash`) like the RP API's RAW_DIGEST_SIGNATURE does.
fn sign_digest(hash: DocumentHash, scheme: CadesScheme, digest: &[u8]) -> Vec<u8> {
    let mut ctx = PkeyCtx::new(&pki().leaf_key).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_signature_md(mdref(hash)).unwrap();
    match scheme {
        CadesScheme::Pkcs1v15 => ctx.set_rsa_padding(Padding::PKCS1).unwrap(),
        CadesScheme::RsassaPss => {
            ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
            ctx.set_rsa_mgf1_md(mdref(hash)).unwrap();
            ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(hash.output_len() as i32))
                .unwrap();
        }
    }
    let mut sig = Vec::new();
    ctx.sign_to_vec(digest, &mut sig).unwrap();
    sig
}

fn der(c: &X509) -> Vec<u8> {
    c.to_der().unwrap()
}

fn input<'a>(
    digest: &'a [u8],
    signer: &'a [u8],
    issuer: &'a [u8],
    hash: DocumentHash,
    scheme: CadesScheme,
) -> CadesInput<'a> {
    CadesInput {
        document_digest: digest,
        signer_certificate_der: signer,
        issuer_certificate_der: issuer,
        hash,
        scheme,
        signing_time: UNIX_EPOCH + Duration::from_secs(1_796_000_000),
    }
}

/// Makes a CAdES signature of `document` through both steps.
fn cades(document: &[u8], hash: DocumentHash, scheme: CadesScheme) -> Vec<u8> {
    let digest = digest_reader(hash, document).unwrap();
    let (signer, issuer) = (der(&pki().sign), der(&pki().issuing));
    let prepared = prepare(&input(&digest, &signer, &issuer, hash, scheme)).unwrap();
    assert_eq!(
        prepared.digest_to_sign(),
        hash.digest(prepared.signed_attributes_der())
    );
    let sig = sign_digest(hash, scheme, prepared.digest_to_sign());
    prepared.finish(&sig).unwrap()
}

/// Runs `openssl cms -verify` on `p7s` with `content` and the test root as the only trust
/// anchor; returns whether it accepted, and its output. The issuing CA certificate is passed
/// as `-certfile` (OpenSSL 3.0's `cms` has no `-untrusted`; 3.2 and later take either).
fn openssl_cms_verify(dir: &Path, p7s: &[u8], content: &[u8]) -> (bool, String) {
    let write = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let root = write("root.pem", &pki().root.to_pem().unwrap());
    let issuing = write("issuing.pem", &pki().issuing.to_pem().unwrap());
    let sig = write("doc.p7s", p7s);
    let doc = write("doc.bin", content);
    let out = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-out",
            "/dev/null",
        ])
        .arg("-content")
        .arg(&doc)
        .arg("-in")
        .arg(&sig)
        .arg("-CAfile")
        .arg(&root)
        .arg("-certfile")
        .arg(&issuing)
        .output()
        .expect("the openssl command must be installed (scripts/install-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `openssl cms -cmsout -print` of `p7s`.
fn openssl_print(dir: &Path, p7s: &[u8]) -> String {
    let p = dir.join("print.p7s");
    std::fs::write(&p, p7s).unwrap();
    let out = Command::new("openssl")
        .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn openssl_accepts_both_schemes_with_three_hashes_and_rejects_a_changed_document() {
    let dir = tempfile::tempdir().unwrap();
    let document: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
    let mut tampered = document.clone();
    tampered[77_777] ^= 1;
    for scheme in [CadesScheme::RsassaPss, CadesScheme::Pkcs1v15] {
        for hash in DocumentHash::ALL {
            let p7s = cades(&document, hash, scheme);
            let (ok, out) = openssl_cms_verify(dir.path(), &p7s, &document);
            assert!(ok, "{scheme:?} {hash:?}: openssl rejected it: {out}");
            assert!(out.contains("Verification successful"), "{out}");
            let (ok, out) = openssl_cms_verify(dir.path(), &p7s, &tampered);
            assert!(
                !ok,
                "{scheme:?} {hash:?}: openssl accepted a changed document"
            );
            // The content check failed, not the chain.
            assert!(out.contains("content verify error"), "{out}");
        }
    }
}

#[test]
fn the_structure_carries_the_baseline_b_attributes_and_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    for (scheme, hash, alg) in [
        (CadesScheme::RsassaPss, DocumentHash::Sha384, "rsassaPss"),
        (
            CadesScheme::Pkcs1v15,
            DocumentHash::Sha512,
            "sha512WithRSAEncryption",
        ),
    ] {
        let printed = openssl_print(dir.path(), &cades(b"hello", hash, scheme));
        for needle in [
            "contentType: pkcs7-signedData",
            "eContentType: pkcs7-data",
            "eContent: <ABSENT>",
            "object: contentType",
            "object: messageDigest",
            "object: signingTime",
            "object: id-smime-aa-signingCertificateV2",
            "d.issuerAndSerialNumber:",
            "CN=Test Issuing CA",
            "CN=TESTNUMBER,QUALIFIED OK1",
            alg,
        ] {
            assert!(printed.contains(needle), "{needle:?} missing:\n{printed}");
        }
        if scheme == CadesScheme::RsassaPss {
            // The SignerInfo's signatureAlgorithm parameters: hash [0] SHA-384, MGF1 [1] with
            // SHA-384, salt length [2] 48 (0x30).
            let params = printed
                .split("signatureAlgorithm:")
                .last()
                .and_then(|p| p.split("signature:").next())
                .unwrap();
            let compact: String = params.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(compact.matches("OBJECT :sha384").count(), 2, "{params}");
            for needle in [
                "cont [ 0 ]",
                "cont [ 1 ]",
                "OBJECT :mgf1",
                "cont [ 2 ]",
                "INTEGER :30",
            ] {
                assert!(compact.contains(needle), "{needle:?} missing:\n{params}");
            }
        }
    }
}

#[test]
fn signing_certificate_v2_names_the_signer_certificate() {
    let hash = DocumentHash::Sha512;
    let digest = hash.digest(b"doc");
    let (signer, issuer) = (der(&pki().sign), der(&pki().issuing));
    let p = prepare(&input(
        &digest,
        &signer,
        &issuer,
        hash,
        CadesScheme::Pkcs1v15,
    ))
    .unwrap();
    let attr = p
        .signed_attributes
        .iter()
        .find(|a| a.oid == ID_AA_SIGNING_CERTIFICATE_V2)
        .unwrap();
    let sc: SigningCertificateV2 = attr.values.get(0).unwrap().decode_as().unwrap();
    let id = &sc.certs[0];
    // The hash is written with its AlgorithmIdentifier unless it is SHA-256, the DEFAULT.
    assert_eq!(id.hash_algorithm.as_ref().unwrap().oid, oids::SHA512);
    let expected = openssl::hash::hash(MessageDigest::sha512(), &signer).unwrap();
    assert_eq!(id.cert_hash.as_bytes(), &expected[..]);
    let serial = pki().sign.serial_number().to_bn().unwrap().to_vec();
    let is = id.issuer_serial.as_ref().unwrap();
    assert_eq!(
        is.serial_number
            .as_bytes()
            .iter()
            .skip_while(|b| **b == 0)
            .collect::<Vec<_>>(),
        serial.iter().collect::<Vec<_>>()
    );
    let digest256 = DocumentHash::Sha256.digest(b"doc");
    let p = prepare(&input(
        &digest256,
        &signer,
        &issuer,
        DocumentHash::Sha256,
        CadesScheme::Pkcs1v15,
    ))
    .unwrap();
    let attr = p
        .signed_attributes
        .iter()
        .find(|a| a.oid == ID_AA_SIGNING_CERTIFICATE_V2)
        .unwrap();
    let sc: SigningCertificateV2 = attr.values.get(0).unwrap().decode_as().unwrap();
    assert!(sc.certs[0].hash_algorithm.is_none());
}

#[test]
fn bad_inputs_are_errors() {
    let hash = DocumentHash::Sha256;
    let digest = hash.digest(b"doc");
    let (signer, issuer) = (der(&pki().sign), der(&pki().issuing));
    let pem = pki().sign.to_pem().unwrap();
    let pss = CadesScheme::RsassaPss;

    let e = prepare(&input(&digest, &pem, &issuer, hash, pss)).unwrap_err();
    assert!(
        matches!(
            e,
            CadesError::Certificate {
                which: "signer",
                ..
            }
        ),
        "{e}"
    );
    let e = prepare(&input(&digest, &signer, b"\x30\x03\x02\x01", hash, pss)).unwrap_err();
    assert!(
        matches!(
            e,
            CadesError::Certificate {
                which: "issuing CA",
                ..
            }
        ),
        "{e}"
    );
    let e = prepare(&input(
        &digest,
        &signer,
        &signer[..signer.len() - 1],
        hash,
        pss,
    ))
    .unwrap_err();
    assert!(matches!(e, CadesError::Certificate { .. }), "{e}");
    // The root did not issue the signer certificate; another root with the issuing CA's
    // subject would not verify.
    let root = der(&pki().root);
    let e = prepare(&input(&digest, &signer, &root, hash, pss)).unwrap_err();
    assert!(matches!(e, CadesError::WrongIssuer(_)), "{e}");
    let e = prepare(&input(&digest[..31], &signer, &issuer, hash, pss)).unwrap_err();
    assert_eq!(
        e,
        CadesError::DigestLength {
            hash,
            want: 32,
            got: 31
        }
    );

    let p = prepare(&input(&digest, &signer, &issuer, hash, pss)).unwrap();
    let good = sign_digest(hash, pss, p.digest_to_sign());
    let e = p.clone().finish(&good[1..]).unwrap_err();
    assert_eq!(
        e,
        CadesError::SignatureLength {
            want: 256,
            got: 255
        }
    );
    let e = p.clone().finish(&[]).unwrap_err();
    assert_eq!(e, CadesError::SignatureLength { want: 256, got: 0 });
    let mut flipped = good.clone();
    flipped[100] ^= 0x40;
    assert_eq!(
        p.clone().finish(&flipped).unwrap_err(),
        CadesError::BadSignature
    );
    // PKCS#1 v1.5 where PSS was prepared: wrong scheme, no signature.
    let v15 = sign_digest(hash, CadesScheme::Pkcs1v15, p.digest_to_sign());
    assert_eq!(
        p.clone().finish(&v15).unwrap_err(),
        CadesError::BadSignature
    );
    assert!(p.finish(&good).is_ok());
}

#[test]
fn damaged_certificates_are_errors_not_panics() {
    let hash = DocumentHash::Sha256;
    let digest = hash.digest(b"doc");
    let (signer, issuer) = (der(&pki().sign), der(&pki().issuing));
    let pss = CadesScheme::RsassaPss;
    for len in 0..signer.len() {
        assert!(prepare(&input(&digest, &signer[..len], &issuer, hash, pss)).is_err());
    }
    for len in 0..issuer.len() {
        assert!(prepare(&input(&digest, &signer, &issuer[..len], hash, pss)).is_err());
    }
    // Any changed byte breaks the DER, the issuer's signature or the name match.
    for i in (0..signer.len()).step_by(3) {
        let mut bad = signer.clone();
        bad[i] ^= 0x5a;
        assert!(
            prepare(&input(&digest, &bad, &issuer, hash, pss)).is_err(),
            "byte {i} changed and still accepted"
        );
    }
    let mut long = signer.clone();
    long.push(0);
    assert!(prepare(&input(&digest, &long, &issuer, hash, pss)).is_err());
}
