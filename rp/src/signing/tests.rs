//! The pieces of the signing steps that need no server (the end-to-end tests in tests/ run
//! them against a real one).

use std::time::SystemTime;

use tandem_rp_test_pki::pki;

use super::document::{self, CadesSigning, Extension, hash_and_scheme, prepare_cades};
use super::session;
use super::signer::{self, issuer_among};
use super::*;
use crate::api::types::{HashAlgorithm, ResultDetails, SessionResult};
use crate::client::TrustAnchors;
use crate::client::revocation::RevocationOptions;
use crate::documents::DocumentHash;
use crate::documents::cades::CadesScheme;

fn status(
    state: SessionState,
    end: Option<EndResult>,
    interaction: Option<&str>,
) -> SessionStatusResponse {
    SessionStatusResponse {
        state,
        result: end.map(|end_result| SessionResult {
            end_result,
            document_number: None,
            details: interaction.map(|i| ResultDetails {
                interaction: Some(i.to_owned()),
            }),
        }),
        signature_protocol: None,
        signature: None,
        cert: None,
        interaction_type_used: None,
        device_ip_address: None,
        ignored_properties: None,
    }
}

#[test]
fn end_results_map_to_typed_errors_and_kinds() {
    assert!(check_end_result(&status(SessionState::Complete, Some(EndResult::Ok), None)).is_ok());
    let e = check_end_result(&status(SessionState::Running, None, None)).unwrap_err();
    assert!(matches!(e, SigningError::StillRunning), "{e}");
    assert_eq!(e.kind(), ErrorKind::Timeout);
    for (end, kind, name) in [
        (EndResult::UserRefused, ErrorKind::Refused, "USER_REFUSED"),
        (EndResult::Timeout, ErrorKind::Timeout, "TIMEOUT"),
        (
            EndResult::WrongVc,
            ErrorKind::WrongVerificationCode,
            "WRONG_VC",
        ),
        (
            EndResult::UserRefusedCertChoice,
            ErrorKind::Refused,
            "USER_REFUSED_CERT_CHOICE",
        ),
        (
            EndResult::AccountUnusable,
            ErrorKind::AccountUnusable,
            "ACCOUNT_UNUSABLE",
        ),
        (
            EndResult::DocumentUnusable,
            ErrorKind::AccountUnusable,
            "DOCUMENT_UNUSABLE",
        ),
        (
            EndResult::RequiredInteractionNotSupportedByApp,
            ErrorKind::NotSupportedByApp,
            "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP",
        ),
        (
            EndResult::ProtocolFailure,
            ErrorKind::ServiceFailure,
            "PROTOCOL_FAILURE",
        ),
        (
            EndResult::ServerError,
            ErrorKind::ServiceFailure,
            "SERVER_ERROR",
        ),
    ] {
        let e = check_end_result(&status(SessionState::Complete, Some(end), None)).unwrap_err();
        assert_eq!(e.kind(), kind, "{end:?}");
        assert_eq!(e.to_string(), format!("did not succeed: {name}"));
    }
    let e = check_end_result(&status(
        SessionState::Complete,
        Some(EndResult::UserRefusedInteraction),
        Some("displayTextAndPIN"),
    ))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert_eq!(
        e.to_string(),
        "did not succeed: USER_REFUSED_INTERACTION (interaction displayTextAndPIN)"
    );
}

#[test]
fn only_sha2_hashes_sign_documents() {
    let (h, s) = hash_and_scheme(HashAlgorithm::Sha384, false).unwrap();
    assert_eq!((h, s), (DocumentHash::Sha384, CadesScheme::RsassaPss));
    let (h, s) = hash_and_scheme(HashAlgorithm::Sha256, true).unwrap();
    assert_eq!((h, s), (DocumentHash::Sha256, CadesScheme::Pkcs1v15));
    let e = hash_and_scheme(HashAlgorithm::Sha3_256, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Configuration);
    assert!(e.to_string().contains("SHA3-256"), "{e}");
}

#[test]
fn the_issuer_is_found_by_name_or_refused() {
    let p = pki();
    let leaf = p.sign.to_der().unwrap();
    let found = issuer_among(&leaf, &[p.other_root.clone(), p.issuing.clone()]).unwrap();
    assert_eq!(found, p.issuing.to_der().unwrap());
    let e = issuer_among(&leaf, &[p.other_root.clone(), p.root.clone()]).unwrap_err();
    assert!(matches!(e, SigningError::IssuerNotFound), "{e}");
    let e = issuer_among(b"not DER", std::slice::from_ref(&p.issuing)).unwrap_err();
    assert!(matches!(e, SigningError::CertificateParse(_)), "{e}");
    let s = Signer::new(
        "PNOEE-1-MOCK-Q".into(),
        leaf.clone(),
        std::slice::from_ref(&p.issuing),
    )
    .unwrap();
    assert_eq!(s.issuer_der, p.issuing.to_der().unwrap());
}

fn cades_signing() -> CadesSigning {
    let p = pki();
    let signer = Signer::new(
        "PNOEE-1-MOCK-Q".into(),
        p.sign.to_der().unwrap(),
        std::slice::from_ref(&p.issuing),
    )
    .unwrap();
    prepare_cades(
        &signer,
        &b"the document"[..],
        DocumentHash::Sha256,
        CadesScheme::RsassaPss,
        SystemTime::now(),
    )
    .unwrap()
}

#[tokio::test]
async fn b_lt_without_a_time_stamp_and_a_bad_signature_are_refused() {
    let signing = cades_signing();
    assert_eq!(signing.digest_to_sign().len(), 32);
    let anchors = TrustAnchors::new();
    let revocation = RevocationOptions::default();
    let ext = Extension {
        tsa: None,
        long_term: Some((&anchors, &revocation)),
    };
    let mut steps = 0;
    let e = document::finish_cades(signing, &[0; 256], &ext, &mut |_| steps += 1)
        .await
        .unwrap_err();
    assert!(matches!(e, SigningError::LongTermNeedsTimeStamp), "{e}");
    // A signature that is not the signer's: the CMS is not built.
    let e = document::finish_cades(
        cades_signing(),
        &[0; 256],
        &Extension::default(),
        &mut |_| steps += 1,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SigningError::Cades(_)), "{e}");
    assert_eq!(e.kind(), ErrorKind::Document);
    assert_eq!(steps, 0);
}

#[tokio::test]
async fn an_unreachable_tsa_is_a_typed_error() {
    use openssl::pkey_ctx::PkeyCtx;
    use openssl::rsa::Padding;
    use openssl::sign::RsaPssSaltlen;
    let signing = cades_signing();
    let mut ctx = PkeyCtx::new(&pki().leaf_key).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_signature_md(openssl::md::Md::sha256()).unwrap();
    ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    ctx.set_rsa_mgf1_md(openssl::md::Md::sha256()).unwrap();
    ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
    let mut sig = Vec::new();
    ctx.sign_to_vec(signing.digest_to_sign(), &mut sig).unwrap();
    // Nothing listens on port 9 of 127.0.0.1 here.
    let ext = Extension {
        tsa: Some("http://127.0.0.1:9/tsa"),
        long_term: None,
    };
    let mut asked = Vec::new();
    let e = document::finish_cades(signing, &sig, &ext, &mut |s| asked.push(format!("{s:?}")))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("no time stamp, no signature written"),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::TimeStampOrValidationData);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].contains("AskingTimeStamp"), "{asked:?}");
}

/// A web server runs the steps in tokio tasks: their futures must be `Send` (a compile-time
/// check; never called).
#[allow(dead_code)]
fn the_steps_can_run_in_a_tokio_task(
    client: &crate::client::RpApiClient,
    rp: &RelyingParty,
    signer: &Signer,
    options: &SessionOptions,
    started: &StartedSignature,
    anchors: &TrustAnchors,
) {
    fn send<T: Send>(_: T) {}
    send(signer::certificate_of_document(
        client,
        rp,
        "d",
        crate::api::types::SignCertificateLevel::Qualified,
        anchors,
    ));
    send(session::start(client, rp, signer, options, &[]));
    send(started.finish(client, anchors, |_| {}));
    send(document::finish_cades(
        cades_signing(),
        &[],
        &Extension::default(),
        &mut |_| {},
    ));
}
