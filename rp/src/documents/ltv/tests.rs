//! B-LT embedding with the test PKI: OCSP responses made by `openssl ocsp` (an independent
//! responder), read back by the validation's parser and revocation check, and accepted by
//! `openssl cms -verify`.

use std::time::SystemTime;

use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use tandem_rp_test_pki::{ocsp_response_cli, pki};

use super::*;
use crate::client::revocation::RevocationOptions;
use crate::documents::DocumentHash;
use crate::documents::cades::{CadesInput, CadesScheme, prepare};
use crate::validation::{
    Examination, RevocationFinding, ValidationContext, cms as vcms, conclude, examine,
};

const DOC: &[u8] = b"Anlage K1: Vertrag vom 1. Dezember\n";

fn sign() -> Vec<u8> {
    sign_at(SystemTime::now())
}

fn sign_at(signing_time: SystemTime) -> Vec<u8> {
    let hash = DocumentHash::Sha256;
    let digest = hash.digest(DOC);
    let (s, i) = (
        pki().sign.to_der().unwrap(),
        pki().issuing.to_der().unwrap(),
    );
    let prepared = prepare(&CadesInput {
        document_digest: &digest,
        signer_certificate_der: &s,
        issuer_certificate_der: &i,
        hash,
        scheme: CadesScheme::RsassaPss,
        signing_time,
    })
    .unwrap();
    let mut ctx = PkeyCtx::new(&pki().leaf_key).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_signature_md(openssl::md::Md::sha256()).unwrap();
    ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    ctx.set_rsa_mgf1_md(openssl::md::Md::sha256()).unwrap();
    ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
    let mut sig = Vec::new();
    ctx.sign_to_vec(prepared.digest_to_sign(), &mut sig)
        .unwrap();
    prepared.finish(&sig).unwrap()
}

/// OCSP for the signer (by the issuing CA) and the issuing CA (by the root).
fn data(dir: &std::path::Path, signer_revoked: Option<&str>) -> ValidationData {
    let p = pki();
    ValidationData {
        certificates: vec![p.root.to_der().unwrap(), p.issuing.to_der().unwrap()],
        ocsp_responses: vec![
            ocsp_response_cli(dir, &p.sign, &p.issuing, &p.issuing_key, signer_revoked),
            ocsp_response_cli(dir, &p.issuing, &p.root, &p.root_key, None),
        ],
        crls: Vec::new(),
    }
}

fn finding(p7s: &[u8]) -> Option<RevocationFinding> {
    finding_at(p7s, SystemTime::now())
}

fn finding_at(p7s: &[u8], now: SystemTime) -> Option<RevocationFinding> {
    let ctx = ValidationContext::new(vec![pki().root.clone()], now, RevocationOptions::default())
        .unwrap();
    let mut digest = |h: DocumentHash| Ok(h.digest(DOC));
    match examine(p7s, &mut digest, &ctx) {
        Examination::NeedsRevocation(p) => {
            let f = p.embedded_revocation();
            if let Some(f) = &f {
                let v = conclude(p, f.clone());
                assert!(!v.details.is_empty());
            }
            f
        }
        Examination::Decided(v) => panic!("decided early: {:?}", v.details),
    }
}

#[test]
fn embedded_ocsp_responses_are_read_back_and_decide_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let b = sign();
    // Without embedded data the check must go online.
    assert_eq!(finding(&b), None);

    let d = data(dir.path(), None);
    let lt = add_to_cades(&b, &d).unwrap();
    let parsed = vcms::parse(&lt).unwrap();
    let (mut got, mut want) = (parsed.ocsp_responses.clone(), d.ocsp_responses.clone());
    got.sort();
    want.sort();
    assert!(
        got == want,
        "the OCSP responses read back are the ones embedded"
    );
    assert!(parsed.crls.is_empty());
    let embedded: Vec<_> = parsed.certificates.iter().map(|c| c.der.clone()).collect();
    for c in &d.certificates {
        assert!(embedded.contains(c));
    }
    assert_eq!(embedded.len(), 3, "signer, issuing CA, root, each once");
    // RFC 5652 5.1: version 5 with an "other" revocation entry; the signature untouched.
    let raw: vcms::SignedDataRaw = cms::content_info::ContentInfo::from_der(&lt)
        .unwrap()
        .content
        .decode_as()
        .unwrap();
    assert_eq!(raw.version, CmsVersion::V5);
    assert_eq!(
        parsed.signer_info,
        vcms::parse(&b).unwrap().signer_info,
        "the SignerInfo is kept"
    );
    assert!(matches!(
        finding(&lt),
        Some(RevocationFinding::NotRevoked { .. })
    ));
    // Adding the same data again changes nothing.
    assert_eq!(add_to_cades(&lt, &d).unwrap(), lt);

    // OpenSSL reads the RevocationInfoChoices and still verifies the signature.
    let p = dir.path();
    std::fs::write(p.join("lt.p7s"), &lt).unwrap();
    std::fs::write(p.join("doc"), DOC).unwrap();
    std::fs::write(p.join("root.pem"), pki().root.to_pem().unwrap()).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "lt.p7s",
            "-content",
            "doc",
            "-CAfile",
            "root.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ])
        .current_dir(p)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && log.contains("Verification successful"),
        "{log}"
    );
    let out = std::process::Command::new("openssl")
        .args([
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", "lt.p7s",
        ])
        .current_dir(p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // OpenSSL reads the entry as otherRevInfoFormat id-ri-ocsp-response + an OCSPResponse.
    assert!(
        text.contains("otherRevInfoFormat: undefined (1.3.6.1.5.5.7.16.2)"),
        "{text}"
    );
    assert_eq!(text.matches("otherRevInfoFormat").count(), 2, "{text}");
}

#[test]
fn an_embedded_revoked_status_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let lt = add_to_cades(&sign(), &data(dir.path(), Some("200101000000Z"))).unwrap();
    match finding(&lt) {
        Some(RevocationFinding::Revoked {
            signer: true, at, ..
        }) => assert!(at.is_some()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn embedded_data_older_than_the_signature_does_not_count() {
    // The responses are made now; the signature claims to be 20 minutes younger (beyond the
    // 5 minutes' clock slack), checked 21 minutes from now: the "good" answers say nothing
    // about the certificate when it signed, so the check must go online.
    let dir = tempfile::tempdir().unwrap();
    let later = SystemTime::now() + std::time::Duration::from_secs(20 * 60);
    let lt = add_to_cades(&sign_at(later), &data(dir.path(), None)).unwrap();
    let check_time = later + std::time::Duration::from_secs(60);
    assert_eq!(finding_at(&lt, check_time), None);
    // The same data for a signature made before it decides.
    let lt = add_to_cades(&sign(), &data(dir.path(), None)).unwrap();
    assert!(matches!(
        finding_at(&lt, check_time),
        Some(RevocationFinding::NotRevoked { .. })
    ));
}

#[test]
fn partial_data_goes_online_and_bad_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = data(dir.path(), None);
    d.ocsp_responses.truncate(1); // the issuing CA's status is missing
    let lt = add_to_cades(&sign(), &d).unwrap();
    assert_eq!(finding(&lt), None);

    let b = sign();
    for bad in [
        ValidationData {
            crls: vec![b"not a CRL".to_vec()],
            ..Default::default()
        },
        ValidationData {
            crls: vec![pki().root.to_der().unwrap()], // a SEQUENCE, but no CRL
            ..Default::default()
        },
        ValidationData {
            ocsp_responses: vec![vec![0x30, 0x80]],
            ..Default::default()
        },
        ValidationData {
            certificates: vec![vec![0x30, 0x03, 0x02, 0x01, 0x01]],
            ..Default::default()
        },
    ] {
        assert!(matches!(add_to_cades(&b, &bad), Err(LtvError::Encoding(_))));
    }
    assert!(matches!(
        add_to_cades(b"\x30\x00", &ValidationData::default()),
        Err(LtvError::Signature(_))
    ));
    assert_eq!(end_entities(&b), Err(LtvError::NoTimeStamp));
}
