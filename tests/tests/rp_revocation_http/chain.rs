//! [`check_chain_revocation`] over HTTP on 127.0.0.1: the test PKI's root, an issuing CA
//! certificate naming a local root CRL (and, in one test, a local OCSP responder signed by the
//! root), and an end-entity certificate naming a local CRL of the issuing CA; CRLs made by our
//! own `pki::crl`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use der::asn1::Ia5String;
use der::{Decode, Encode};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tandem_rp::client::revocation::{
    ChainPosition, CrlReason, RevocationError, RevocationMethod, RevocationOptions,
    check_chain_revocation,
};
use tandem_rp::client::{TrustAnchors, VerificationError, VerificationStep};
use tandem_rp_test_pki::{build_cert, ca_exts, der_extension, pki};
use tandem_server::pki::{self, OcspStatus, RevocationReason, RevokedCert};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax, CrlDistributionPoints};

use super::{SoftSigner, responder};

fn uri(u: &str) -> GeneralName {
    GeneralName::UniformResourceIdentifier(Ia5String::new(u).unwrap())
}

fn cdp(url: &str) -> openssl::x509::X509Extension {
    let dp = CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)])),
        reasons: None,
        crl_issuer: None,
    }]);
    der_extension("2.5.29.31", &dp.to_der().unwrap())
}

fn aia_ocsp(url: &str) -> openssl::x509::X509Extension {
    let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: pki::oids::AD_OCSP,
        access_location: uri(url),
    }]);
    der_extension("1.3.6.1.5.5.7.1.1", &aia.to_der().unwrap())
}

/// The test PKI's issuing CA (same key and name), re-certified by the root with a
/// distribution point `crl` and, if given, an OCSP responder.
fn issuing_ca(crl: &str, ocsp: Option<&str>) -> X509 {
    let p = pki();
    let mut exts = ca_exts();
    exts.push(cdp(crl));
    if let Some(o) = ocsp {
        exts.push(aia_ocsp(o));
    }
    build_cert(
        &p.issuing.subject_name().to_owned().unwrap(),
        &p.issuing_key,
        Some((&p.root, &p.root_key)),
        exts,
    )
}

/// An end-entity certificate of the issuing CA naming `crl` (no OCSP responder).
fn leaf(crl: &str) -> Vec<u8> {
    let p = pki();
    build_cert(
        &p.auth.subject_name().to_owned().unwrap(),
        &p.leaf_key,
        Some((&p.issuing, &p.issuing_key)),
        vec![cdp(crl)],
    )
    .to_der()
    .unwrap()
}

fn anchors_with(issuing: &X509) -> TrustAnchors {
    let mut a = TrustAnchors::new();
    a.add_roots_pem(&pki().root.to_pem().unwrap()).unwrap();
    a.add_intermediates_pem(&issuing.to_pem().unwrap()).unwrap();
    a
}

fn serial_of(c: &X509) -> Vec<u8> {
    c.serial_number().to_bn().unwrap().to_vec()
}

/// A current CRL of `issuer` (key `key`), listing `revoked` with `reason`.
fn crl_of(
    issuer: &X509,
    key: &PKey<Private>,
    revoked: &[Vec<u8>],
    reason: RevocationReason,
) -> Vec<u8> {
    let cert = pki::Certificate::from_der(&issuer.to_der().unwrap()).unwrap();
    let now = SystemTime::now();
    let entries: Vec<RevokedCert> = revoked
        .iter()
        .map(|s| RevokedCert {
            serial: s.clone(),
            revoked_at: now - Duration::from_secs(600),
            reason,
        })
        .collect();
    pki::crl(
        &SoftSigner(key.clone()),
        &cert,
        3,
        now - Duration::from_secs(60),
        now + Duration::from_secs(3600),
        &entries,
    )
    .unwrap()
}

/// A CRL served at a path (`None`: 404), and how often it was asked for.
#[derive(Clone, Default)]
struct Served {
    body: Arc<Mutex<Option<Vec<u8>>>>,
    hits: Arc<AtomicUsize>,
}

impl Served {
    fn set(&self, body: Option<Vec<u8>>) {
        *self.body.lock().unwrap() = body;
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    fn route(&self) -> axum::routing::MethodRouter {
        let me = self.clone();
        axum::routing::get(move || {
            let me = me.clone();
            async move {
                me.hits.fetch_add(1, Ordering::SeqCst);
                match me.body.lock().unwrap().clone() {
                    Some(b) => ([("content-type", "application/pkix-crl")], b).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        })
    }
}

/// Serves `/root.crl` and `/issuing.crl` on 127.0.0.1; returns the base URL.
async fn serve(root: &Served, issuing: &Served) -> String {
    let app = axum::Router::new()
        .route("/root.crl", root.route())
        .route("/issuing.crl", issuing.route());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

struct Setup {
    base: String,
    root_crl: Served,
    issuing_crl: Served,
    issuing: X509,
    leaf: Vec<u8>,
}

/// Both CRLs current and empty.
async fn setup() -> Setup {
    let p = pki();
    let (root_crl, issuing_crl) = (Served::default(), Served::default());
    let base = serve(&root_crl, &issuing_crl).await;
    let issuing = issuing_ca(&format!("{base}/root.crl"), None);
    root_crl.set(Some(crl_of(
        &p.root,
        &p.root_key,
        &[],
        RevocationReason::Unspecified,
    )));
    issuing_crl.set(Some(crl_of(
        &issuing,
        &p.issuing_key,
        &[],
        RevocationReason::Unspecified,
    )));
    let leaf = leaf(&format!("{base}/issuing.crl"));
    Setup {
        base,
        root_crl,
        issuing_crl,
        issuing,
        leaf,
    }
}

#[tokio::test]
async fn a_live_chain_passes_and_each_certificate_below_the_root_is_reported() {
    let s = setup().await;
    let ok = check_chain_revocation(
        &s.leaf,
        &anchors_with(&s.issuing),
        &RevocationOptions::default(),
    )
    .await
    .unwrap();
    // The end entity and the issuing CA; the self-signed root (which names no OCSP responder
    // and no CRL) is not checked.
    assert_eq!(ok.certificates.len(), 2, "{ok:?}");
    let (ee, ca) = (&ok.certificates[0], &ok.certificates[1]);
    assert_eq!(ee.certificate.position, ChainPosition::EndEntity);
    assert_eq!(ee.status.method, RevocationMethod::Crl);
    assert_eq!(ee.status.url, format!("{}/issuing.crl", s.base));
    assert_eq!(ok.end_entity(), &ee.status);
    assert_eq!(ca.certificate.position, ChainPosition::IntermediateCa(1));
    assert_eq!(ca.status.method, RevocationMethod::Crl);
    assert_eq!(ca.status.url, format!("{}/root.crl", s.base));
    assert!(
        ca.status
            .ocsp_failure
            .as_deref()
            .unwrap()
            .contains("names no OCSP responder"),
        "{ca:?}"
    );
    assert_eq!(
        ca.certificate.serial_hex,
        hex::encode(serial_of(&s.issuing))
    );
    assert!(ok.root.contains("CN=Test Root"), "{}", ok.root);
    assert_eq!((s.root_crl.hits(), s.issuing_crl.hits()), (1, 1));

    let line = ee.report_line();
    assert!(
        line.starts_with("revocation: OK (CRL: not listed"),
        "{line}"
    );
    let line = ca.report_line();
    assert!(
        line.starts_with(
            "revocation of intermediate CA certificate CN=Test Issuing CA,C=EE (serial "
        ) && line.contains("): OK (CRL: not listed (thisUpdate 20")
            && line.contains(&format!("from {}/root.crl;", s.base)),
        "{line}"
    );
    let step = ok.step().to_string();
    assert!(
        step.starts_with("revocation: OK (not revoked: end entity by CRL, CN=Test Issuing CA")
            && step.contains("root CN=Test Root"),
        "{step}"
    );
}

#[tokio::test]
async fn a_revoked_intermediate_fails_naming_it() {
    let p = pki();
    let s = setup().await;
    let anchors = anchors_with(&s.issuing);
    s.root_crl.set(Some(crl_of(
        &p.root,
        &p.root_key,
        &[serial_of(&s.issuing)],
        RevocationReason::CaCompromise,
    )));
    let e = check_chain_revocation(&s.leaf, &anchors, &RevocationOptions::default())
        .await
        .unwrap_err();
    let ca = e.certificate.clone().unwrap();
    assert_eq!(ca.position, ChainPosition::IntermediateCa(1));
    assert!(ca.subject.contains("CN=Test Issuing CA"), "{ca:?}");
    match &e.error {
        RevocationError::Revoked {
            method: RevocationMethod::Crl,
            url,
            reason: Some(CrlReason::CaCompromise),
            ..
        } => assert_eq!(url, &format!("{}/root.crl", s.base)),
        other => panic!("{other:?}"),
    }
    // The end entity was checked first and passed.
    assert_eq!(e.checked.len(), 1);
    assert_eq!(e.checked[0].certificate.position, ChainPosition::EndEntity);
    let text = e.to_string();
    assert!(
        text.starts_with("intermediate CA certificate CN=Test Issuing CA,C=EE (serial ")
            && text.contains("): CRL: the certificate is revoked since 20")
            && text.contains("(reason code 2, cACompromise)"),
        "{text}"
    );
    assert!(
        e.report_line()
            .starts_with("revocation of intermediate CA certificate CN=Test Issuing CA"),
        "{}",
        e.report_line()
    );
    let v = VerificationError::from(e);
    assert_eq!(v.step, VerificationStep::Revocation);
    assert!(v.reason.contains("intermediate CA certificate"), "{v}");

    // The end entity revoked: it fails first, naming no CA, and the root's CRL is not asked.
    let hits = s.root_crl.hits();
    let leaf_serial = X509::from_der(&s.leaf).unwrap();
    s.issuing_crl.set(Some(crl_of(
        &s.issuing,
        &p.issuing_key,
        &[serial_of(&leaf_serial)],
        RevocationReason::KeyCompromise,
    )));
    let e = check_chain_revocation(&s.leaf, &anchors, &RevocationOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.certificate.as_ref().map(|c| c.position),
        Some(ChainPosition::EndEntity)
    );
    assert!(e.checked.is_empty());
    assert!(
        e.to_string()
            .starts_with("CRL: the certificate is revoked since"),
        "{e}"
    );
    assert!(e.report_line().starts_with("revocation: FAILED (CRL: "));
    assert_eq!(s.root_crl.hits(), hits);
}

#[tokio::test]
async fn an_intermediate_whose_status_is_unknown_fails() {
    let p = pki();
    let s = setup().await;

    // The root's CRL is missing (404): not taken for "not revoked".
    s.root_crl.set(None);
    let e = check_chain_revocation(
        &s.leaf,
        &anchors_with(&s.issuing),
        &RevocationOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.certificate.as_ref().map(|c| c.position),
        Some(ChainPosition::IntermediateCa(1))
    );
    assert!(
        matches!(&e.error, RevocationError::Unavailable { crl, .. } if crl.contains("answered HTTP 404")),
        "{e:?}"
    );

    // An issuing CA certificate naming no CRL and no responder (the test PKI's own, like
    // Tandem's issuing CA certificates made before the root published a CRL): a clear error
    // saying what to give, unless the CA CRL URL is given.
    s.root_crl.set(Some(crl_of(
        &p.root,
        &p.root_key,
        &[],
        RevocationReason::Unspecified,
    )));
    let old = anchors_with(&p.issuing);
    let e = check_chain_revocation(&s.leaf, &old, &RevocationOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e.error, RevocationError::Unavailable { ocsp, crl }
            if ocsp.contains("names no OCSP responder")
                && crl.contains("names no http(s) CRL distribution point")
                && crl.contains("ca_crl_url")),
        "{e:?}"
    );
    let root_crl = format!("{}/root.crl", s.base);
    let opts = RevocationOptions {
        ca_crl_url: Some(root_crl.clone()),
        ..Default::default()
    };
    let ok = check_chain_revocation(&s.leaf, &old, &opts).await.unwrap();
    assert_eq!(ok.certificates[1].status.url, root_crl);
    // The override is for CA certificates only: the end entity still uses its own CRL.
    assert_eq!(
        ok.certificates[0].status.url,
        format!("{}/issuing.crl", s.base)
    );
    // ... and lists the revocation once the root's CRL has it.
    s.root_crl.set(Some(crl_of(
        &p.root,
        &p.root_key,
        &[serial_of(&p.issuing)],
        RevocationReason::CessationOfOperation,
    )));
    let e = check_chain_revocation(&s.leaf, &old, &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e.error,
            RevocationError::Revoked {
                reason: Some(CrlReason::CessationOfOperation),
                ..
            }
        ),
        "{e:?}"
    );

    // No chain to the anchors: an error naming no certificate.
    let e = check_chain_revocation(&s.leaf, &TrustAnchors::new(), &opts)
        .await
        .unwrap_err();
    assert_eq!(e.certificate, None);
    assert!(e.to_string().contains("no trust anchors"), "{e}");
    let mut only_root = TrustAnchors::new();
    only_root.add_roots_pem(&p.root.to_pem().unwrap()).unwrap();
    let e = check_chain_revocation(&s.leaf, &only_root, &opts)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no valid chain"), "{e}");
}

#[tokio::test]
async fn an_intermediate_with_an_ocsp_responder_is_asked_first() {
    let p = pki();
    let s = setup().await;
    let status = Arc::new(Mutex::new(OcspStatus::Good));
    // The root answers for the certificates it issued.
    let ocsp = responder(p.root_key.clone(), &p.root, status.clone()).await;
    let issuing = issuing_ca(&format!("{}/root.crl", s.base), Some(&ocsp));
    let anchors = anchors_with(&issuing);
    let ok = check_chain_revocation(&s.leaf, &anchors, &RevocationOptions::default())
        .await
        .unwrap();
    assert_eq!(ok.certificates[1].status.method, RevocationMethod::Ocsp);
    assert_eq!(ok.certificates[1].status.url, ocsp);
    assert_eq!(s.root_crl.hits(), 0);

    *status.lock().unwrap() = OcspStatus::Revoked {
        at: SystemTime::now() - Duration::from_secs(60),
        reason: RevocationReason::CaCompromise,
    };
    let e = check_chain_revocation(&s.leaf, &anchors, &RevocationOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e.error,
            RevocationError::Revoked {
                method: RevocationMethod::Ocsp,
                reason: Some(CrlReason::CaCompromise),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.certificate.map(|c| c.position),
        Some(ChainPosition::IntermediateCa(1))
    );
}
