//! Revocation check by OCSP (response_verification.txt, certificate chain step: "verify that
//! the certificate has not been revoked … using OCSP, utilizing the Authority Information
//! Access extension"). This is the one verification step that needs the network, so it is
//! separate from the pure functions of [`super::verify`]; run it after they succeed.
//!
//! ```text
//!  end-entity cert ─┬─ issuer (from our trust anchors) ─▶ CertID (SHA-1) ─▶ OCSPRequest
//!                   └─ AIA id-ad-ocsp URL ──POST application/ocsp-request──▶ responder
//!  OCSPResponse ─▶ successful? ─▶ signed by the issuer or its delegate, chain to our
//!  roots ─▶ our CertID answered ─▶ thisUpdate/nextUpdate current ─▶ good / revoked / unknown
//! ```
//!
//! Not done: CRL fallback, and an OCSP nonce (the `openssl` crate has no binding for it), so
//! a replayed response is accepted while its thisUpdate/nextUpdate window lasts.

use std::time::Duration;

use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509VerifyResult};

use super::verify::{CheckedStep, StepOutcome, TrustAnchors, VerificationError, VerificationStep};

/// Slack for clock differences when checking thisUpdate / nextUpdate (seconds).
const CLOCK_SLACK_SECS: u32 = 300;
/// Time allowed for the whole OCSP exchange.
const OCSP_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest OCSP response we read.
const MAX_RESPONSE: usize = 64 * 1024;

fn fail(reason: impl Into<String>) -> VerificationError {
    VerificationError {
        step: VerificationStep::Revocation,
        reason: reason.into(),
        passed: Default::default(),
    }
}

fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> VerificationError {
    move |e| fail(format!("{what}: {e}"))
}

/// An HTTP error and its causes on one line (the URL is named by the caller).
fn causes(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Asks the certificate's OCSP responder whether `certificate_der` is revoked.
///
/// - `anchors`: the issuer must be among its intermediates or roots; the response must be
///   signed by that issuer (or a responder it delegated to) and chain to its roots;
/// - `responder_url`: overrides the certificate's AIA OCSP URL (e.g. a local mirror).
///
/// Returns the step for the report: passed only for status `good`. The freshness check
/// uses the system clock.
pub async fn check_ocsp(
    certificate_der: &[u8],
    anchors: &TrustAnchors,
    responder_url: Option<&str>,
) -> Result<CheckedStep, VerificationError> {
    let leaf = X509::from_der(certificate_der).map_err(ossl("certificate"))?;
    let issuer = anchors
        .all_certificates()
        .find(|c| {
            c.issued(&leaf) == X509VerifyResult::OK
                && c.public_key()
                    .and_then(|k| leaf.verify(&k))
                    .unwrap_or(false)
        })
        .ok_or_else(|| fail("the certificate's issuer is not among the trust anchors"))?;
    let url = match responder_url {
        Some(u) => u.to_owned(),
        None => leaf
            .ocsp_responders()
            .ok()
            .and_then(|l| {
                l.iter()
                    .map(|s| s.to_string())
                    .find(|s| s.starts_with("http://") || s.starts_with("https://"))
            })
            .ok_or_else(|| fail("the certificate names no OCSP responder (AIA)"))?,
    };

    let id = || OcspCertId::from_cert(MessageDigest::sha1(), &leaf, issuer);
    let mut req = OcspRequest::new().map_err(ossl("OCSP request"))?;
    req.add_id(id().map_err(ossl("OCSP CertID"))?)
        .map_err(ossl("OCSP request"))?;
    let req_der = req.to_der().map_err(ossl("OCSP request"))?;

    let http = reqwest::Client::builder()
        .timeout(OCSP_TIMEOUT)
        .build()
        .map_err(|e| fail(format!("HTTP client: {e}")))?;
    let resp = http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
        .header(reqwest::header::ACCEPT, "application/ocsp-response")
        .body(req_der)
        .send()
        .await
        .map_err(|e| fail(format!("OCSP responder {url} unreachable: {}", causes(e))))?;
    if !resp.status().is_success() {
        return Err(fail(format!(
            "OCSP responder {url} answered HTTP {}",
            resp.status().as_u16()
        )));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| fail(format!("OCSP responder {url}: {}", causes(e))))?;
    if body.len() > MAX_RESPONSE {
        return Err(fail("OCSP response too large"));
    }

    let ocsp = OcspResponse::from_der(&body).map_err(ossl("OCSP response"))?;
    if ocsp.status() != OcspResponseStatus::SUCCESSFUL {
        return Err(fail(format!(
            "OCSP responder answered status {}",
            ocsp.status().as_raw()
        )));
    }
    let basic = ocsp.basic().map_err(ossl("OCSP response"))?;
    let mut store = X509StoreBuilder::new().map_err(ossl("X509 store"))?;
    for r in anchors.roots() {
        store.add_cert(r.clone()).map_err(ossl("X509 store"))?;
    }
    let store = store.build();
    let mut untrusted = Stack::new().map_err(ossl("X509 stack"))?;
    for c in anchors.intermediates() {
        untrusted.push(c.clone()).map_err(ossl("X509 stack"))?;
    }
    basic
        .verify(&untrusted, &store, OcspFlag::empty())
        .map_err(|_| fail("the OCSP response's signature or signer does not verify"))?;
    let id = id().map_err(ossl("OCSP CertID"))?;
    let status = basic
        .find_status(&id)
        .ok_or_else(|| fail("the OCSP response does not answer for this certificate"))?;
    status
        .check_validity(CLOCK_SLACK_SECS, None)
        .map_err(|_| fail("the OCSP response is not current (thisUpdate / nextUpdate)"))?;
    if status.status == OcspCertStatus::GOOD {
        Ok(CheckedStep {
            step: VerificationStep::Revocation,
            outcome: StepOutcome::Passed(format!("good at {}, from {url}", status.this_update)),
        })
    } else if status.status == OcspCertStatus::REVOKED {
        Err(fail(format!(
            "the certificate is revoked{} (reason code {})",
            status
                .revocation_time
                .map(|t| format!(" since {t}"))
                .unwrap_or_default(),
            status.reason.as_raw()
        )))
    } else {
        Err(fail("the OCSP responder does not know the certificate"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    use der::Decode;
    use der::asn1::Any;
    use openssl::pkey::{PKey, Private};
    use openssl::sign::Signer;
    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

    use super::*;
    use crate::pki::{self, CaSigner, OcspStatus, PkiError, RevocationReason};

    /// Our OCSP responder's signing code, with an OpenSSL key standing in for the HSM.
    struct SoftSigner(PKey<Private>);

    impl CaSigner for SoftSigner {
        fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
            AlgorithmIdentifierOwned {
                oid: pki::oids::SHA384_WITH_RSA,
                parameters: Some(Any::null()),
            }
        }
        fn public_key(&self) -> SubjectPublicKeyInfoOwned {
            SubjectPublicKeyInfoOwned::from_der(&self.0.public_key_to_der().unwrap()).unwrap()
        }
        fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError> {
            let mut s = Signer::new(MessageDigest::sha384(), &self.0).unwrap();
            Ok(s.sign_oneshot_to_vec(data).unwrap())
        }
    }

    /// A responder on 127.0.0.1:0 answering every request with `status`, signed by
    /// `signer` as `signer_cert`, built by our own `pki::ocsp_response`.
    async fn responder(
        signer: PKey<Private>,
        signer_cert: &X509,
        status: Arc<Mutex<OcspStatus>>,
    ) -> String {
        let cert = pki::Certificate::from_der(&signer_cert.to_der().unwrap()).unwrap();
        let signer = Arc::new(SoftSigner(signer));
        let app = axum::Router::new().route(
            "/ocsp",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (signer, cert, status) = (signer.clone(), cert.clone(), status.clone());
                async move {
                    let q = pki::parse_ocsp_request(&body).unwrap();
                    let now = SystemTime::now();
                    let st = *status.lock().unwrap();
                    pki::ocsp_response(
                        signer.as_ref(),
                        &cert,
                        &[(q.cert_ids[0].clone(), st)],
                        now,
                        now,
                        Some(now + Duration::from_secs(3600)),
                        q.nonce.as_deref(),
                    )
                    .unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/ocsp")
    }

    #[tokio::test]
    async fn good_revoked_unknown_and_foreign_signer() {
        let p = super::super::verify::tests::pki();
        let anchors = super::super::verify::tests::anchors();
        let leaf = p.auth.to_der().unwrap();
        let status = Arc::new(Mutex::new(OcspStatus::Good));
        let url = responder(p.issuing_key.clone(), &p.issuing, status.clone()).await;

        let step = check_ocsp(&leaf, &anchors, Some(&url)).await.unwrap();
        assert_eq!(step.step, VerificationStep::Revocation);
        assert!(
            step.to_string()
                .starts_with("revocation (OCSP): OK (good at "),
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
}
