//! tandem-rp's revocation checks against Tandem's own OCSP responder and CRL code
//! (`tandem_server::pki`: `ocsp_response`, `crl`) over HTTP on 127.0.0.1, with the OpenSSL
//! test PKI of `tandem-rp-test-pki` and an OpenSSL key standing in for the HSM. No server
//! process: small axum servers answer what each test sets.
//!
//! - [`ocsp`]: `check_ocsp` against good, revoked, unknown and foreign-signed answers;
//! - [`fallback`]: `check_revocation`, OCSP first and the CRL when OCSP gives no answer;
//! - [`chain`]: `check_chain_revocation`, the end entity and the intermediate CA certificates.
//!
//! These were unit tests of the RP client while it lived in the server crate; the library
//! must not depend on the server, so they live here, where both are at hand.

#![allow(clippy::unwrap_used)] // tests

#[path = "rp_revocation_http/chain.rs"]
mod chain;
#[path = "rp_revocation_http/fallback.rs"]
mod fallback;
#[path = "rp_revocation_http/ocsp.rs"]
mod ocsp;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use der::Decode;
use der::asn1::Any;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use openssl::x509::X509;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use tandem_rp::client::TrustAnchors;
use tandem_rp_test_pki::pki;
use tandem_server::pki::{self, CaSigner, OcspStatus, PkiError};

/// Our OCSP responder's and CRL's signing code, with an OpenSSL key standing in for the
/// HSM.
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

/// The test PKI's root and issuing CA as trust anchors.
fn anchors() -> TrustAnchors {
    let p = pki();
    let mut a = TrustAnchors::new();
    a.add_roots_pem(&p.root.to_pem().unwrap()).unwrap();
    a.add_intermediates_pem(&p.issuing.to_pem().unwrap())
        .unwrap();
    a
}
