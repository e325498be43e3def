//! Validation of CAdES signatures made locally with the test PKI's keys.

use std::time::{Duration, SystemTime};

use ::cms::content_info::ContentInfo;
use ::cms::signed_data::SignedData;
use der::asn1::OctetString;
use der::{Decode, Encode};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use openssl::x509::X509;
use tandem_rp_test_pki::pki;

use super::*;
use crate::documents::cades::{CadesInput, CadesScheme, prepare};
use crate::documents::digest_reader;
use crate::report::{Indication, SignatureLevel};

const DOC: &[u8] = b"Schriftsatz: Klage wegen ...\n";

fn mdref(hash: DocumentHash) -> &'static openssl::md::MdRef {
    match hash {
        DocumentHash::Sha256 => openssl::md::Md::sha256(),
        DocumentHash::Sha384 => openssl::md::Md::sha384(),
        DocumentHash::Sha512 => openssl::md::Md::sha512(),
    }
}

fn sign(
    signer: &X509,
    document: &[u8],
    hash: DocumentHash,
    scheme: CadesScheme,
    at: SystemTime,
) -> Vec<u8> {
    let digest = digest_reader(hash, document).unwrap();
    let (s, i) = (signer.to_der().unwrap(), pki().issuing.to_der().unwrap());
    let prepared = prepare(&CadesInput {
        document_digest: &digest,
        signer_certificate_der: &s,
        issuer_certificate_der: &i,
        hash,
        scheme,
        signing_time: at,
    })
    .unwrap();
    let mut ctx = PkeyCtx::new(&pki().leaf_key).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_signature_md(mdref(hash)).unwrap();
    if scheme == CadesScheme::RsassaPss {
        ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        ctx.set_rsa_mgf1_md(mdref(hash)).unwrap();
        ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(hash.output_len() as i32))
            .unwrap();
    } else {
        ctx.set_rsa_padding(Padding::PKCS1).unwrap();
    }
    let mut sig = Vec::new();
    ctx.sign_to_vec(prepared.digest_to_sign(), &mut sig)
        .unwrap();
    prepared.finish(&sig).unwrap()
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn ctx_with(anchors: Vec<X509>) -> ValidationContext {
    ValidationContext::new(anchors, now(), RevocationOptions::default()).unwrap()
}

fn ctx() -> ValidationContext {
    ctx_with(vec![pki().root.clone()])
}

fn examine_doc(p7s: &[u8], document: &[u8], ctx: &ValidationContext) -> Examination {
    let mut data = |h: DocumentHash| digest_reader(h, document);
    examine(p7s, &mut data, ctx)
}

fn decided(e: Examination) -> Validation {
    match e {
        Examination::Decided(v) => v,
        Examination::NeedsRevocation(p) => panic!("expected a decision, got pending {:?}", p.base),
    }
}

fn pending(e: Examination) -> Pending {
    match e {
        Examination::NeedsRevocation(p) => p,
        Examination::Decided(v) => panic!("expected pending, got {v:?}"),
    }
}

fn not_revoked() -> RevocationFinding {
    RevocationFinding::NotRevoked {
        source: "test".into(),
    }
}

fn assert_status(v: &Validation, ind: Indication, sub: Option<SubIndication>) {
    assert_eq!(v.result.status.indication(), ind, "{v:#?}");
    assert_eq!(v.result.status.sub_indication(), sub, "{v:#?}");
}

#[test]
fn valid_signatures_pass_with_every_hash_and_scheme() {
    let ctx = ctx();
    for hash in DocumentHash::ALL {
        for scheme in [CadesScheme::RsassaPss, CadesScheme::Pkcs1v15] {
            let p7s = sign(&pki().sign, DOC, hash, scheme, now());
            let v = conclude(pending(examine_doc(&p7s, DOC, &ctx)), not_revoked());
            assert_status(&v, Indication::TotalPassed, None);
            assert_eq!(v.result.level, SignatureLevel::Qualified);
            assert_eq!(v.result.format.to_string(), "CAdES-B-B");
            assert_eq!(
                v.result.signer_name.as_deref(),
                Some("TESTNUMBER,QUALIFIED OK1")
            );
            let st = v.result.signing_time.unwrap();
            assert_eq!(st.source, SigningTimeSource::Claimed);
        }
    }
}

#[test]
fn pem_signature_is_read_and_advanced_level_without_qc_statements() {
    let p7s = sign(
        &pki().sign_advanced,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::Pkcs1v15,
        now(),
    );
    let pem = format!(
        "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &p7s)
    );
    let v = conclude(
        pending(examine_doc(pem.as_bytes(), DOC, &ctx())),
        not_revoked(),
    );
    assert_status(&v, Indication::TotalPassed, None);
    assert_eq!(v.result.level, SignatureLevel::Advanced);
}

#[test]
fn tampered_document_is_hash_failure() {
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::RsassaPss,
        now(),
    );
    let v = decided(examine_doc(&p7s, b"Schriftsatz: Klage wegen !!!\n", &ctx()));
    assert_status(
        &v,
        Indication::TotalFailed,
        Some(SubIndication::HashFailure),
    );
}

/// The signature with its SignerInfo changed by `f`.
fn edit(p7s: &[u8], f: impl FnOnce(&mut SignedData)) -> Vec<u8> {
    let mut ci = ContentInfo::from_der(p7s).unwrap();
    let mut sd: SignedData = ci.content.decode_as().unwrap();
    f(&mut sd);
    ci.content = der::Any::encode_from(&sd).unwrap();
    ci.to_der().unwrap()
}

#[test]
fn corrupted_signature_value_is_sig_crypto_failure() {
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha384,
        CadesScheme::RsassaPss,
        now(),
    );
    let bad = edit(&p7s, |sd| {
        let mut infos: Vec<_> = sd.signer_infos.0.iter().cloned().collect();
        let mut sig = infos[0].signature.as_bytes().to_vec();
        sig[10] ^= 0x01;
        infos[0].signature = OctetString::new(sig).unwrap();
        sd.signer_infos = ::cms::signed_data::SignerInfos::try_from(infos).unwrap();
    });
    let v = decided(examine_doc(&bad, DOC, &ctx()));
    assert_status(
        &v,
        Indication::TotalFailed,
        Some(SubIndication::SigCryptoFailure),
    );
}

#[test]
fn garbage_and_truncated_input_is_format_failure() {
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::Pkcs1v15,
        now(),
    );
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not a signature at all".to_vec(),
        vec![0x30, 0x82, 0xff, 0xff, 0x06],
        p7s[..p7s.len() / 2].to_vec(),
        b"-----BEGIN PKCS7-----\n!!!\n-----END PKCS7-----\n".to_vec(),
        // A DER certificate is DER, but not a ContentInfo.
        pki().root.to_der().unwrap(),
    ];
    for input in inputs {
        let v = decided(examine_doc(&input, DOC, &ctx()));
        assert_status(
            &v,
            Indication::TotalFailed,
            Some(SubIndication::FormatFailure),
        );
    }
    // Every truncation of a real signature: never a panic, always a decision or a result.
    for n in (0..p7s.len()).step_by(7) {
        let _ = examine_doc(&p7s[..n], DOC, &ctx());
    }
}

#[test]
fn unknown_ca_is_no_certificate_chain_found_and_names_the_ca() {
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::RsassaPss,
        now(),
    );
    let v = decided(examine_doc(
        &p7s,
        DOC,
        &ctx_with(vec![pki().other_root.clone()]),
    ));
    assert_status(
        &v,
        Indication::Indeterminate,
        Some(SubIndication::NoCertificateChainFound),
    );
    assert!(v.details[0].contains("Test Root"), "{:?}", v.details);
}

#[test]
fn missing_signer_certificate_is_no_signing_certificate_found() {
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::RsassaPss,
        now(),
    );
    let bad = edit(&p7s, |sd| {
        let issuing = ::cms::cert::CertificateChoices::Certificate(
            x509_cert::Certificate::from_der(&pki().issuing.to_der().unwrap()).unwrap(),
        );
        sd.certificates =
            Some(::cms::signed_data::CertificateSet::try_from(vec![issuing]).unwrap());
    });
    let v = decided(examine_doc(&bad, DOC, &ctx()));
    assert_status(
        &v,
        Indication::Indeterminate,
        Some(SubIndication::NoSigningCertificateFound),
    );
}

#[test]
fn future_signing_time_is_indeterminate() {
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::RsassaPss,
        now() + Duration::from_secs(86_400),
    );
    let v = decided(examine_doc(&p7s, DOC, &ctx()));
    assert_status(&v, Indication::Indeterminate, Some(SubIndication::NoPoe));
}

#[test]
fn signing_time_before_the_certificate_is_not_yet_valid() {
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::RsassaPss,
        now() - Duration::from_secs(10 * 86_400),
    );
    let v = decided(examine_doc(&p7s, DOC, &ctx()));
    assert_status(
        &v,
        Indication::Indeterminate,
        Some(SubIndication::NotYetValid),
    );
}

#[test]
fn revocation_before_and_after_signing_and_unavailable() {
    let signed_at = now() - Duration::from_secs(3600);
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::RsassaPss,
        signed_at,
    );
    let ctx = ctx();
    let revoked = |at: SystemTime| RevocationFinding::Revoked {
        signer: true,
        at: Some(at),
        detail: "test".into(),
    };
    let before = conclude(
        pending(examine_doc(&p7s, DOC, &ctx)),
        revoked(signed_at - Duration::from_secs(60)),
    );
    assert_status(
        &before,
        Indication::TotalFailed,
        Some(SubIndication::Revoked),
    );
    let after = conclude(
        pending(examine_doc(&p7s, DOC, &ctx)),
        revoked(signed_at + Duration::from_secs(60)),
    );
    assert_status(
        &after,
        Indication::Indeterminate,
        Some(SubIndication::RevokedNoPoe),
    );
    let ca = conclude(
        pending(examine_doc(&p7s, DOC, &ctx)),
        RevocationFinding::Revoked {
            signer: false,
            at: None,
            detail: "t".into(),
        },
    );
    assert_status(
        &ca,
        Indication::Indeterminate,
        Some(SubIndication::RevokedCaNoPoe),
    );
    let unavailable = conclude(
        pending(examine_doc(&p7s, DOC, &ctx)),
        RevocationFinding::Unavailable("down".into()),
    );
    assert_status(
        &unavailable,
        Indication::Indeterminate,
        Some(SubIndication::TryLater),
    );
}

/// The test PKI's certificates name no OCSP responder and no CRL: the real online path
/// finds no revocation information and says TRY_LATER.
#[tokio::test]
async fn online_revocation_without_any_service_is_try_later() {
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha512,
        CadesScheme::Pkcs1v15,
        now(),
    );
    let mut data = |h: DocumentHash| digest_reader(h, DOC);
    let v = validate_detached(&p7s, &mut data, &ctx()).await;
    assert_status(&v, Indication::Indeterminate, Some(SubIndication::TryLater));
}

#[test]
fn revocation_times_of_crl_and_ocsp_are_read() {
    let a = revocation::parse_time("2026-01-02T03:04:05Z").unwrap();
    let b = revocation::parse_time("Jan  2 03:04:05 2026 GMT").unwrap();
    assert_eq!(a, b);
    assert!(revocation::parse_time("yesterday").is_none());
}

/// A TSA certificate (timeStamping EKU, critical) under the test root, and its key.
fn tsa() -> (X509, openssl::pkey::PKey<openssl::pkey::Private>) {
    use openssl::nid::Nid;
    use openssl::x509::extension::ExtendedKeyUsage;
    let key = tandem_rp_test_pki::new_key();
    let cert = tandem_rp_test_pki::build_cert(
        &tandem_rp_test_pki::name(&[(Nid::COMMONNAME, "Test TSA")]),
        &key,
        Some((&pki().root, &pki().root_key)),
        vec![
            ExtendedKeyUsage::new()
                .critical()
                .time_stamping()
                .build()
                .unwrap(),
        ],
    );
    (cert, key)
}

/// A time-stamp token over `data` from `openssl ts -reply` (an independent TSA).
fn openssl_token(dir: &std::path::Path, data: &[u8]) -> Vec<u8> {
    let (cert, key) = tsa();
    std::fs::write(dir.join("tsa.pem"), cert.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("tsa.key"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(dir.join("data.bin"), data).unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    std::fs::write(
        dir.join("ts.cnf"),
        "[ tsa ]\ndefault_tsa = t\n[ t ]\nserial = ./serial\nsigner_digest = sha256\n\
         default_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\naccuracy = secs:1\n\
         ess_cert_id_alg = sha256\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "ts", "-query", "-data", "data.bin", "-sha256", "-cert", "-out", "q.tsq",
    ]);
    run(&[
        "ts",
        "-reply",
        "-config",
        "ts.cnf",
        "-queryfile",
        "q.tsq",
        "-signer",
        "tsa.pem",
        "-inkey",
        "tsa.key",
        "-token_out",
        "-out",
        "token.der",
    ]);
    std::fs::read(dir.join("token.der")).unwrap()
}

/// The signature with `token` as its signature time-stamp (unsigned attribute).
fn with_token(p7s: &[u8], token: &[u8]) -> Vec<u8> {
    edit(p7s, |sd| {
        let mut infos: Vec<_> = sd.signer_infos.0.iter().cloned().collect();
        let attr = x509_cert::attr::Attribute {
            oid: cms::ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
            values: der::asn1::SetOfVec::try_from(vec![der::Any::from_der(token).unwrap()])
                .unwrap(),
        };
        infos[0].unsigned_attrs = Some(x509_cert::attr::Attributes::try_from(vec![attr]).unwrap());
        sd.signer_infos = ::cms::signed_data::SignerInfos::try_from(infos).unwrap();
    })
}

fn signature_value(p7s: &[u8]) -> Vec<u8> {
    cms::parse(p7s)
        .unwrap()
        .signer_info
        .signature
        .as_bytes()
        .to_vec()
}

#[test]
fn openssl_time_stamp_makes_b_t_and_a_wrong_one_is_indeterminate() {
    let dir = tempfile::tempdir().unwrap();
    let p7s = sign(
        &pki().sign,
        DOC,
        DocumentHash::Sha256,
        CadesScheme::RsassaPss,
        now(),
    );
    let token = openssl_token(dir.path(), &signature_value(&p7s));
    let stamped = with_token(&p7s, &token);
    let v = conclude(pending(examine_doc(&stamped, DOC, &ctx())), not_revoked());
    assert_status(&v, Indication::TotalPassed, None);
    assert_eq!(v.result.format.to_string(), "CAdES-B-T");
    assert_eq!(
        v.result.signing_time.unwrap().source,
        SigningTimeSource::TimeStamp
    );

    // A token over other bytes: its imprint does not match the signature value.
    let wrong = openssl_token(dir.path(), b"something else");
    let v = decided(examine_doc(&with_token(&p7s, &wrong), DOC, &ctx()));
    assert_status(
        &v,
        Indication::Indeterminate,
        Some(SubIndication::SigConstraintsFailure),
    );
    assert!(v.details[0].contains("imprint"), "{:?}", v.details);
}
