//! [`check_revocation`] over HTTP on 127.0.0.1: certificates whose AIA and
//! cRLDistributionPoints name local URLs (a closed port, a responder answering rubbish, our
//! own OCSP responder code, a CRL server), CRLs made by our own `pki::crl`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use der::asn1::Ia5String;
use der::{Decode, Encode};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::x509::X509;
use openssl::x509::{X509Builder, X509Extension};
use tandem_rp::client::revocation::{
    CrlReason, NotRevoked, RevocationError, RevocationMethod, RevocationOptions, check_revocation,
};
use tandem_rp::client::{TrustAnchors, VerificationError, VerificationStep};
use tandem_rp_test_pki::pki;
use tandem_server::pki::{self, OcspStatus, RevocationReason, RevokedCert};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax, CrlDistributionPoints};

use super::{SoftSigner, anchors, responder};

fn uri(u: &str) -> GeneralName {
    GeneralName::UniformResourceIdentifier(Ia5String::new(u).unwrap())
}

fn extension(oid: &str, der: &[u8]) -> X509Extension {
    X509Extension::new_from_der(
        &Asn1Object::from_str(oid).unwrap(),
        false,
        &Asn1OctetString::new_from_bytes(der).unwrap(),
    )
    .unwrap()
}

/// An authentication certificate of the test PKI's issuing CA naming `ocsp` in its AIA and
/// `crl` as its distribution point (DER).
fn leaf_with(ocsp: Option<&str>, crl: Option<&str>) -> Vec<u8> {
    let p = pki();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(72, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    b.set_subject_name(p.auth.subject_name()).unwrap();
    b.set_issuer_name(p.issuing.subject_name()).unwrap();
    b.set_pubkey(&p.leaf_key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    if let Some(u) = ocsp {
        let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
            access_method: pki::oids::AD_OCSP,
            access_location: uri(u),
        }]);
        b.append_extension(extension("1.3.6.1.5.5.7.1.1", &aia.to_der().unwrap()))
            .unwrap();
    }
    if let Some(u) = crl {
        let dp = CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(u)])),
            reasons: None,
            crl_issuer: None,
        }]);
        b.append_extension(extension("2.5.29.31", &dp.to_der().unwrap()))
            .unwrap();
    }
    b.sign(&p.issuing_key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

fn serial_of(der: &[u8]) -> Vec<u8> {
    X509::from_der(der)
        .unwrap()
        .serial_number()
        .to_bn()
        .unwrap()
        .to_vec()
}

/// A CRL of the issuing CA (our `pki::crl`), valid from `this` for `valid`, listing
/// `revoked` with keyCompromise ten minutes ago.
fn issuing_crl(this: SystemTime, valid: Duration, revoked: &[Vec<u8>]) -> Vec<u8> {
    let p = pki();
    let cert = pki::Certificate::from_der(&p.issuing.to_der().unwrap()).unwrap();
    let entries: Vec<RevokedCert> = revoked
        .iter()
        .map(|s| RevokedCert {
            serial: s.clone(),
            revoked_at: SystemTime::now() - Duration::from_secs(600),
            reason: RevocationReason::KeyCompromise,
        })
        .collect();
    pki::crl(
        &SoftSigner(p.issuing_key.clone()),
        &cert,
        7,
        this,
        this + valid,
        &entries,
    )
    .unwrap()
}

fn current_crl(revoked: &[Vec<u8>]) -> Vec<u8> {
    issuing_crl(
        SystemTime::now() - Duration::from_secs(60),
        Duration::from_secs(3600),
        revoked,
    )
}

/// What the local server serves at `/issuing.crl` (`None`: 404), and how often it was asked.
#[derive(Clone, Default)]
struct CrlServer {
    body: Arc<Mutex<Option<Vec<u8>>>>,
    hits: Arc<AtomicUsize>,
}

impl CrlServer {
    fn set(&self, body: Option<Vec<u8>>) {
        *self.body.lock().unwrap() = body;
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Serves `/issuing.crl`, `/big.crl` (1 MiB with Content-Length), `/stream.crl` (1 MiB
/// chunked, no length), `/slow.crl` (answers after a minute), `POST /rubbish` (200 with a
/// body that is no OCSP response) and `POST /big-ocsp` (256 KiB chunked) on 127.0.0.1.
/// Returns the base URL.
async fn serve(crl: CrlServer) -> String {
    let app = axum::Router::new()
        .route(
            "/issuing.crl",
            axum::routing::get(move || {
                let crl = crl.clone();
                async move {
                    crl.hits.fetch_add(1, Ordering::SeqCst);
                    match crl.body.lock().unwrap().clone() {
                        Some(b) => ([("content-type", "application/pkix-crl")], b).into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        )
        .route(
            "/big.crl",
            axum::routing::get(|| async { vec![0x30u8; 1 << 20] }),
        )
        .route(
            "/stream.crl",
            axum::routing::get(|| async {
                let chunks = (0..256).map(|_| Ok::<_, std::io::Error>(vec![0x30u8; 4096]));
                Body::from_stream(tokio_stream::iter(chunks))
            }),
        )
        .route(
            "/slow.crl",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Vec::<u8>::new()
            }),
        )
        .route("/rubbish", axum::routing::post(|| async { "no OCSP here" }))
        .route(
            "/big-ocsp",
            axum::routing::post(|| async {
                let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![0x30u8; 4096]));
                Body::from_stream(tokio_stream::iter(chunks))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A URL on 127.0.0.1 where nothing listens (a port just bound and released).
async fn closed_port() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/ocsp")
}

async fn check(der: &[u8]) -> Result<NotRevoked, RevocationError> {
    check_revocation(der, &anchors(), &RevocationOptions::default()).await
}

fn ocsp_status(s: OcspStatus) -> Arc<Mutex<OcspStatus>> {
    Arc::new(Mutex::new(s))
}

#[tokio::test]
async fn the_crl_decides_when_ocsp_fails_or_is_unavailable() {
    let p = pki();
    let crl = CrlServer::default();
    let base = serve(crl.clone()).await;
    let crl_url = format!("{base}/issuing.crl");
    let closed = closed_port().await;

    // OCSP responder unreachable (AIA names a closed port): the CRL says not listed.
    let leaf = leaf_with(Some(&closed), Some(&crl_url));
    crl.set(Some(current_crl(&[
        vec![0x01, 0x02],
        serial_of(&p.auth.to_der().unwrap()),
    ])));
    let ok = check(&leaf).await.unwrap();
    assert_eq!(ok.method, RevocationMethod::Crl);
    assert_eq!(ok.url, crl_url);
    let why = ok.ocsp_failure.clone().unwrap();
    assert!(
        why.starts_with(&closed) && why.contains("unreachable"),
        "{why}"
    );
    let step = ok.step().to_string();
    assert!(
        step.starts_with("revocation: OK (CRL: not listed (thisUpdate 20"),
        "{step}"
    );
    assert!(step.contains("OCSP gave no answer: "), "{step}");

    // Listed: revoked, by CRL, with date and reason; a failed verification step.
    crl.set(Some(current_crl(&[serial_of(&leaf)])));
    let e = check(&leaf).await.unwrap_err();
    match &e {
        RevocationError::Revoked {
            method: RevocationMethod::Crl,
            url,
            reason: Some(CrlReason::KeyCompromise),
            ocsp_failure: Some(_),
            ..
        } => assert_eq!(url, &crl_url),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.method(), Some(RevocationMethod::Crl));
    let text = e.to_string();
    assert!(
        text.starts_with("CRL: the certificate is revoked since 20")
            && text.contains("(reason code 1, keyCompromise)"),
        "{text}"
    );
    let v = VerificationError::from(e);
    assert_eq!(v.step, VerificationStep::Revocation);
    assert!(
        v.to_string()
            .starts_with("verification failed at revocation: CRL: the certificate is revoked"),
        "{v}"
    );

    // No AIA at all: straight to the CRL.
    let no_aia = leaf_with(None, Some(&crl_url));
    let ok = check(&no_aia).await.unwrap();
    assert_eq!(ok.method, RevocationMethod::Crl);
    assert!(
        ok.ocsp_failure.unwrap().contains("names no OCSP responder"),
        "no AIA"
    );

    // A responder answering something that is no OCSP response.
    let rubbish = leaf_with(Some(&format!("{base}/rubbish")), Some(&crl_url));
    let ok = check(&rubbish).await.unwrap();
    assert_eq!(ok.method, RevocationMethod::Crl);
    assert!(
        ok.ocsp_failure
            .as_deref()
            .unwrap()
            .contains("not an OCSP response"),
        "{ok:?}"
    );

    // A responder sending more than an OCSP response may be (64 KiB), with no length.
    let big = leaf_with(Some(&format!("{base}/big-ocsp")), Some(&crl_url));
    let ok = check(&big).await.unwrap();
    assert_eq!(ok.method, RevocationMethod::Crl);
    assert!(
        ok.ocsp_failure
            .as_deref()
            .unwrap()
            .contains("the OCSP response is larger than 65536 bytes"),
        "{ok:?}"
    );

    // "Good", but signed by a CA that is not the issuer: not usable, so the CRL decides, and
    // it says revoked.
    let foreign = responder(
        p.other_root_key.clone(),
        &p.other_root,
        ocsp_status(OcspStatus::Good),
    )
    .await;
    let leaf = leaf_with(Some(&foreign), Some(&crl_url));
    crl.set(Some(current_crl(&[serial_of(&leaf)])));
    let e = check(&leaf).await.unwrap_err();
    assert!(
        matches!(
            &e,
            RevocationError::Revoked { method: RevocationMethod::Crl, ocsp_failure: Some(w), .. }
                if w.contains("does not verify")
        ),
        "{e:?}"
    );

    // The override URLs are used instead of the certificate's.
    let elsewhere = leaf_with(
        Some("http://ocsp.invalid/"),
        Some("http://crl.invalid/x.crl"),
    );
    crl.set(Some(current_crl(&[])));
    let opts = RevocationOptions {
        ocsp_url: Some(closed.clone()),
        crl_url: Some(crl_url.clone()),
        ..Default::default()
    };
    let ok = check_revocation(&elsewhere, &anchors(), &opts)
        .await
        .unwrap();
    assert_eq!(
        (ok.method, ok.url.as_str()),
        (RevocationMethod::Crl, crl_url.as_str())
    );
}

#[tokio::test]
async fn a_usable_ocsp_answer_is_final() {
    let p = pki();
    let crl = CrlServer::default();
    let base = serve(crl.clone()).await;
    let crl_url = format!("{base}/issuing.crl");
    let status = ocsp_status(OcspStatus::Good);
    let ocsp = responder(p.issuing_key.clone(), &p.issuing, status.clone()).await;
    let leaf = leaf_with(Some(&ocsp), Some(&crl_url));
    // The CRL lists the certificate; OCSP is asked first and its answers stand.
    crl.set(Some(current_crl(&[serial_of(&leaf)])));

    let ok = check(&leaf).await.unwrap();
    assert_eq!(ok.method, RevocationMethod::Ocsp);
    assert_eq!(ok.url, ocsp);
    assert_eq!(ok.ocsp_failure, None);
    assert!(
        ok.step()
            .to_string()
            .starts_with("revocation: OK (OCSP: good at "),
        "{:?}",
        ok.step()
    );

    *status.lock().unwrap() = OcspStatus::Revoked {
        at: SystemTime::now() - Duration::from_secs(60),
        reason: RevocationReason::CessationOfOperation,
    };
    let e = check(&leaf).await.unwrap_err();
    assert!(
        matches!(
            &e,
            RevocationError::Revoked {
                method: RevocationMethod::Ocsp,
                reason: Some(CrlReason::CessationOfOperation),
                ocsp_failure: None,
                ..
            }
        ),
        "{e:?}"
    );

    // "unknown" from the issuer's own responder: no fallback to the CRL.
    *status.lock().unwrap() = OcspStatus::Unknown;
    let e = check(&leaf).await.unwrap_err();
    assert_eq!(e, RevocationError::UnknownToOcsp { url: ocsp.clone() });
    assert_eq!(crl.hits(), 0, "the CRL was never fetched");
}

#[tokio::test]
async fn no_usable_crl_fails_naming_both() {
    let p = pki();
    let crl = CrlServer::default();
    let base = serve(crl.clone()).await;
    let crl_url = format!("{base}/issuing.crl");
    let closed = closed_port().await;
    let leaf = leaf_with(Some(&closed), Some(&crl_url));
    let unavailable = |e: RevocationError, needle: &str| match e {
        RevocationError::Unavailable { ocsp, crl } => {
            assert!(ocsp.contains("unreachable"), "{ocsp}");
            assert!(crl.contains(needle), "{needle:?} not in {crl:?}");
        }
        other => panic!("{other:?}"),
    };

    // 404.
    crl.set(None);
    let e = check(&leaf).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("revocation status unknown: both OCSP and the CRL failed; OCSP: "),
        "{e}"
    );
    assert_eq!(e.method(), None);
    unavailable(e, "answered HTTP 404");

    // Expired (nextUpdate an hour ago).
    crl.set(Some(issuing_crl(
        SystemTime::now() - Duration::from_secs(7200),
        Duration::from_secs(3600),
        &[],
    )));
    unavailable(check(&leaf).await.unwrap_err(), "has expired");

    // Another CA's CRL (signed by it, in its name).
    let other = pki::Certificate::from_der(&p.other_root.to_der().unwrap()).unwrap();
    let now = SystemTime::now();
    crl.set(Some(
        pki::crl(
            &SoftSigner(p.other_root_key.clone()),
            &other,
            1,
            now,
            now + Duration::from_secs(3600),
            &[],
        )
        .unwrap(),
    ));
    unavailable(
        check(&leaf).await.unwrap_err(),
        "is not the certificate's issuer",
    );

    // Not a CRL.
    crl.set(Some(b"<html>maintenance</html>".to_vec()));
    unavailable(check(&leaf).await.unwrap_err(), "not a DER CRL");

    // Too large: refused by Content-Length, and while streaming without one.
    for path in ["big.crl", "stream.crl"] {
        let big = leaf_with(Some(&closed), Some(&format!("{base}/{path}")));
        let opts = RevocationOptions {
            max_crl_bytes: 64 * 1024,
            ..Default::default()
        };
        let e = check_revocation(&big, &anchors(), &opts).await.unwrap_err();
        unavailable(e, "larger than 65536 bytes");
    }

    // Too slow: the timeout bounds the download.
    let slow = leaf_with(Some(&closed), Some(&format!("{base}/slow.crl")));
    let opts = RevocationOptions {
        timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let t = Instant::now();
    let e = check_revocation(&slow, &anchors(), &opts)
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    unavailable(e, "slow.crl: ");

    // No distribution point.
    let no_dp = leaf_with(Some(&closed), None);
    unavailable(
        check(&no_dp).await.unwrap_err(),
        "names no http(s) CRL distribution point",
    );

    // An issuer we do not trust: neither method could be verified.
    let e = check_revocation(&leaf, &TrustAnchors::new(), &RevocationOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RevocationError::Certificate(m) if m.contains("issuer is not among")),
        "{e:?}"
    );
}
