//! `check_ocsp` against our own OCSP responder code: good, revoked, unknown, signed by a CA
//! that is not the issuer, no issuer among the anchors, no responder.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tandem_rp::client::revocation::check_ocsp;
use tandem_rp::client::{TrustAnchors, VerificationStep};
use tandem_rp_test_pki::pki;
use tandem_server::pki::{OcspStatus, RevocationReason};

use super::{anchors, responder};

#[tokio::test]
async fn good_revoked_unknown_and_foreign_signer() {
    let p = pki();
    let anchors = anchors();
    let leaf = p.auth.to_der().unwrap();
    let status = Arc::new(Mutex::new(OcspStatus::Good));
    let url = responder(p.issuing_key.clone(), &p.issuing, status.clone()).await;

    let step = check_ocsp(&leaf, &anchors, Some(&url)).await.unwrap();
    assert_eq!(step.step, VerificationStep::Revocation);
    assert!(
        step.to_string()
            .starts_with("revocation: OK (OCSP: good at "),
        "{step}"
    );

    *status.lock().unwrap() = OcspStatus::Revoked {
        at: SystemTime::now() - Duration::from_secs(60),
        reason: RevocationReason::KeyCompromise,
    };
    let e = check_ocsp(&leaf, &anchors, Some(&url)).await.unwrap_err();
    assert_eq!(e.step, VerificationStep::Revocation);
    assert!(
        e.reason.contains("revoked") && e.reason.contains("reason code 1"),
        "{e}"
    );

    *status.lock().unwrap() = OcspStatus::Unknown;
    let e = check_ocsp(&leaf, &anchors, Some(&url)).await.unwrap_err();
    assert!(e.reason.contains("does not know"), "{e}");

    // "Good", but signed by a CA that is not the certificate's issuer.
    let foreign = responder(
        p.other_root_key.clone(),
        &p.other_root,
        Arc::new(Mutex::new(OcspStatus::Good)),
    )
    .await;
    let e = check_ocsp(&leaf, &anchors, Some(&foreign))
        .await
        .unwrap_err();
    assert!(e.reason.contains("does not verify"), "{e}");

    // No issuer among the anchors; no responder at all.
    let e = check_ocsp(&leaf, &TrustAnchors::new(), Some(&url))
        .await
        .unwrap_err();
    assert!(e.reason.contains("issuer"), "{e}");
    let e = check_ocsp(&leaf, &anchors, None).await.unwrap_err();
    assert!(e.reason.contains("no OCSP responder"), "{e}");
}
