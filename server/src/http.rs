//! Plain-HTTP publication point: OCSP responder (RFC 6960, GET and POST), CRLs (RFC 5280)
//! and the CA certificates. OCSP answers and the issuing CA's CRL are signed in the HSM by the
//! issuing CA, the root's CRL by the root.
//!
//! | route | answer |
//! |---|---|
//! | `POST /ocsp` (`application/ocsp-request`) | `application/ocsp-response` |
//! | `GET /ocsp/{base64 request}` | `application/ocsp-response` |
//! | `GET /crl/issuing.crl` | `application/pkix-crl` (DER): end-entity certificates |
//! | `GET /crl/root.crl` | `application/pkix-crl` (DER): CA certificates the root issued |
//! | `GET /ca/root.crt`, `GET /ca/issuing.crt` | `application/pkix-cert` (DER) |
//! | `POST /tsa` (`application/timestamp-query`) | `application/timestamp-reply` (RFC 3161) |
//! | `GET /ca/tsa.crt` | `application/pkix-cert` (DER): the TSA certificate |
//! | `GET /ca/origin.crt` | `application/pkix-cert` (DER): the proof-of-origin certificate |
//!
//! `POST /tsa` answers a `TimeStampReq` that decodes with a `TimeStampResp`: granted with a
//! token signed in the HSM by the TSA key, or PKIStatus rejection with badAlg, badDataFormat,
//! unacceptedPolicy or unacceptedExtension (HTTP 200 either way, as RFC 3161 3.4 wants). A
//! body that is not a DER `TimeStampReq` gets HTTP 400, a body over 4 KiB 413, another
//! Content-Type 415, and a server without a usable TSA key 503.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use der::Encode;

use crate::ca::Ca;
use crate::pki::tsp::{self, PkiFailureInfo, TspRequestError};
use crate::pki::{self, OcspResponseStatus, OcspStatus, RevocationReason, RevokedCert};
use crate::store::Store;

/// Largest OCSP request accepted.
const MAX_OCSP_REQUEST: usize = 16 * 1024;

/// State of the publication point.
#[derive(Debug)]
pub struct Publication {
    ca: Ca,
    store: Arc<dyn Store>,
    /// For `GET /health`.
    hsm: crate::hsm::Hsm,
    // std Mutex: only held to read or replace the cached CRL, never across an await.
    crl_cache: Mutex<Option<CachedCrl>>,
    /// The root's CRL, cached the same way.
    root_crl_cache: Mutex<Option<CachedCrl>>,
}

#[derive(Debug)]
struct CachedCrl {
    der: Vec<u8>,
    serials: Vec<String>,
    generated: SystemTime,
}

impl Publication {
    /// Wraps the CA and the store. Logs a warning when the issuing CA certificate is revoked
    /// (the server still issues with it: relying parties refuse what it issued), and when it
    /// names no CRL distribution point (made before the root published a CRL).
    pub fn new(ca: Ca, store: Arc<dyn Store>, hsm: crate::hsm::Hsm) -> Arc<Self> {
        match store.ca_revocation(&ca.issuing_serial()) {
            Ok(Some(r)) => tracing::warn!(
                serial = %r.serial_hex,
                revoked_at = r.revoked_at,
                reason = r.reason,
                "the issuing CA certificate is revoked: the root's CRL lists it, and relying \
                 parties refuse every certificate it issued, new ones included"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the CA revocations"),
        }
        if ca.root.is_none() {
            tracing::warn!(
                "the root CA key is not in the HSM: GET /crl/root.crl answers 503 until it is \
                 (relying parties cannot check the issuing CA certificate without that CRL)"
            );
        }
        if !has_crl_distribution_point(&ca.issuing_cert) {
            tracing::warn!(
                root_crl = %ca.profile.root_crl_url,
                "the issuing CA certificate names no CRL distribution point (it was made \
                 before the root published a CRL): relying parties must be given the root's \
                 CRL URL to check it (`tandem rp-api --ca-crl-url`)"
            );
        }
        Arc::new(Self {
            ca,
            store,
            hsm,
            crl_cache: Mutex::new(None),
            root_crl_cache: Mutex::new(None),
        })
    }
}

fn has_crl_distribution_point(cert: &x509_cert::Certificate) -> bool {
    cert.tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .any(|e| e.extn_id == pki::oids::CE_CRL_DISTRIBUTION_POINTS)
}

/// The router.
pub fn router(state: Arc<Publication>) -> Router {
    Router::new()
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/crl/issuing.crl", get(crl))
        .route("/crl/root.crl", get(root_crl))
        .route("/ca/root.crt", get(root_cert))
        .route("/ca/issuing.crt", get(issuing_cert))
        .route("/ca/tsa.crt", get(tsa_cert))
        .route("/ca/origin.crt", get(origin_cert))
        .route("/tsa", post(tsa_post))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(MAX_OCSP_REQUEST))
        .with_state(state)
}

/// How long `/health` waits for the HSM before it reports it unhealthy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /health`: 200 `{"status":"ok"}` when the HSM answers with the user logged in and the
/// key-encryption key visible; 503 with the reason otherwise (token removed, login lost, no
/// answer within 5 s). Never hangs on a stuck HSM.
async fn health(State(p): State<Arc<Publication>>) -> Response {
    let hsm = p.hsm.clone();
    // Bounded: a stuck HSM leaves at most a few overdue checks behind, not one per poll.
    let check =
        tokio::task::spawn_blocking(move || hsm.bounded(HEALTH_TIMEOUT, |hsm| hsm.health()));
    let problem = match check.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("the health check failed".to_owned()),
    };
    let (status, body) = match problem {
        None => (
            StatusCode::OK,
            serde_json::json!({"status": "ok", "hsm": "ok"}),
        ),
        Some(reason) => {
            tracing::warn!(%reason, "health check: HSM unhealthy");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "unhealthy", "hsm": reason}),
            )
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn der_response(content_type: &'static str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn ocsp_response(body: Vec<u8>) -> Response {
    der_response("application/ocsp-response", body)
}

async fn ocsp_post(State(state): State<Arc<Publication>>, body: Bytes) -> Response {
    answer_ocsp(state, body.to_vec()).await
}

async fn ocsp_get(State(state): State<Arc<Publication>>, Path(request): Path<String>) -> Response {
    match ocsp_get_request(&request) {
        Some(der) => answer_ocsp(state, der).await,
        None => ocsp_response(pki::ocsp_error_response(
            OcspResponseStatus::MalformedRequest,
        )),
    }
}

/// The DER request of `GET /ocsp/{request}`. RFC 6960 A.1: the path is the URL-encoded
/// base64 of the DER request; axum has already percent-decoded it. `None`: not base64 or
/// larger than a POST body may be.
pub fn ocsp_get_request(path: &str) -> Option<Vec<u8>> {
    let text: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text.as_bytes()));
    der.ok().filter(|der| der.len() <= MAX_OCSP_REQUEST)
}

fn reason_of(code: i64) -> RevocationReason {
    RevocationReason::from_code(code).unwrap_or(RevocationReason::Unspecified)
}

fn unix(t: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)
}

async fn answer_ocsp(state: Arc<Publication>, der: Vec<u8>) -> Response {
    let body = tokio::task::spawn_blocking(move || {
        let Ok(query) = pki::parse_ocsp_request(&der) else {
            return pki::ocsp_error_response(OcspResponseStatus::MalformedRequest);
        };
        let mut answers = Vec::with_capacity(query.cert_ids.len());
        for id in query.cert_ids {
            let status = if !pki::cert_id_matches_issuer(&id, &state.ca.issuing_cert) {
                OcspStatus::Unknown
            } else if is_service_serial(&state, &id.serial) {
                // The TSA and proof-of-origin certificates are not an account's: good while
                // the server uses them.
                OcspStatus::Good
            } else {
                // An account's certificate, else a relying party's software certificate.
                let revoked = state
                    .store
                    .certificate(&id.serial)
                    .and_then(|rec| match rec {
                        Some(rec) => Ok(Some(rec.revoked)),
                        None => Ok(state
                            .store
                            .rp_cert_by_serial(&id.serial)?
                            .map(|r| r.revoked)),
                    });
                match revoked {
                    Ok(Some(revoked)) => match revoked {
                        Some((at, reason)) => OcspStatus::Revoked {
                            at: unix(at),
                            reason: reason_of(reason),
                        },
                        None => OcspStatus::Good,
                    },
                    Ok(None) => OcspStatus::Unknown,
                    Err(e) => {
                        tracing::error!(error = %e, "OCSP lookup failed");
                        return pki::ocsp_error_response(OcspResponseStatus::InternalError);
                    }
                }
            };
            answers.push((id, status));
        }
        let now = SystemTime::now();
        match pki::ocsp_response(
            &state.ca.issuing,
            &state.ca.issuing_cert,
            &answers,
            now,
            now,
            Some(now + state.ca.crl_validity),
            query.nonce.as_deref(),
        ) {
            Ok(der) => der,
            Err(e) => {
                tracing::error!(error = %e, "OCSP signing failed");
                pki::ocsp_error_response(OcspResponseStatus::InternalError)
            }
        }
    })
    .await
    .unwrap_or_else(|_| pki::ocsp_error_response(OcspResponseStatus::InternalError));
    ocsp_response(body)
}

/// The CRL in `cache` if it lists exactly `serials` and less than half of `validity` has
/// passed since it was made, else a new one from `make` (given the time), cached.
fn cached_crl(
    cache: &Mutex<Option<CachedCrl>>,
    serials: Vec<String>,
    validity: Duration,
    make: impl FnOnce(SystemTime) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Vec<u8>> {
    let now = SystemTime::now();
    {
        let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref()
            && c.serials == serials
            && now.duration_since(c.generated).unwrap_or_default() < validity / 2
        {
            return Ok(c.der.clone());
        }
    }
    let der = make(now)?;
    *cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(CachedCrl {
        der: der.clone(),
        serials,
        generated: now,
    });
    Ok(der)
}

/// The current CRL of the issuing CA: regenerated when the set of revoked serials changed or
/// half its validity has passed.
fn current_crl(state: &Publication) -> anyhow::Result<Vec<u8>> {
    // Accounts' certificates and relying parties' software certificates: (serial, revoked).
    let mut revoked: Vec<(String, Option<(i64, i64)>)> = state
        .store
        .revoked_certificates()?
        .into_iter()
        .map(|r| (r.serial_hex, r.revoked))
        .collect();
    revoked.extend(
        state
            .store
            .revoked_rp_certs()?
            .into_iter()
            .filter_map(|r| Some((r.serial_hex?, r.revoked))),
    );
    let serials: Vec<String> = revoked.iter().map(|r| r.0.clone()).collect();
    cached_crl(&state.crl_cache, serials, state.ca.crl_validity, |now| {
        let entries: Vec<RevokedCert> = revoked
            .iter()
            .filter_map(|(serial, revoked)| {
                let (at, reason) = (*revoked)?;
                Some(RevokedCert {
                    serial: hex::decode(serial).ok()?,
                    revoked_at: unix(at),
                    reason: reason_of(reason),
                })
            })
            .collect();
        let number = state.store.next_crl_number()?;
        Ok(pki::crl(
            &state.ca.issuing,
            &state.ca.issuing_cert,
            number,
            now,
            now + state.ca.crl_validity,
            &entries,
        )?)
    })
}

/// The current CRL of the root (the CA certificates it issued, i.e. the issuing CA's), signed
/// by the root key: its own cRLNumber sequence, the same validity and caching as the issuing
/// CA's.
fn current_root_crl(state: &Publication) -> anyhow::Result<Vec<u8>> {
    let root = state.ca.root.as_ref().ok_or_else(|| {
        anyhow::anyhow!("the root CA key is not in the HSM (kept offline?): no root CRL to sign")
    })?;
    let revoked = state.store.ca_revocations()?;
    let serials: Vec<String> = revoked.iter().map(|r| r.serial_hex.clone()).collect();
    cached_crl(
        &state.root_crl_cache,
        serials,
        state.ca.crl_validity,
        |now| {
            let entries = revoked
                .iter()
                .map(|r| {
                    Ok(RevokedCert {
                        serial: hex::decode(&r.serial_hex)?,
                        revoked_at: unix(r.revoked_at),
                        reason: reason_of(r.reason),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let number = state.store.next_root_crl_number()?;
            Ok(pki::crl(
                root,
                &state.ca.root_cert,
                number,
                now,
                now + state.ca.crl_validity,
                &entries,
            )?)
        },
    )
}

async fn crl(State(state): State<Arc<Publication>>) -> Response {
    crl_answer(tokio::task::spawn_blocking(move || current_crl(&state)).await)
}

async fn root_crl(State(state): State<Arc<Publication>>) -> Response {
    crl_answer(tokio::task::spawn_blocking(move || current_root_crl(&state)).await)
}

fn crl_answer(made: Result<anyhow::Result<Vec<u8>>, tokio::task::JoinError>) -> Response {
    match made {
        Ok(Ok(der)) => der_response("application/pkix-crl", der),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "CRL generation failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "CRL temporarily unavailable",
            )
                .into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    }
}

async fn root_cert(State(state): State<Arc<Publication>>) -> Response {
    cert_response(&state.ca.root_cert)
}

async fn issuing_cert(State(state): State<Arc<Publication>>) -> Response {
    cert_response(&state.ca.issuing_cert)
}

async fn tsa_cert(State(state): State<Arc<Publication>>) -> Response {
    match &state.ca.tsa {
        Some(tsa) => cert_response(&tsa.cert),
        None => tsa_unavailable(),
    }
}

/// `GET /ca/origin.crt`: the proof-of-origin certificate (503 without one).
async fn origin_cert(State(state): State<Arc<Publication>>) -> Response {
    match &state.ca.origin {
        Some(origin) => cert_response(&origin.cert),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the proof-of-origin key is not available (no usable key or certificate)",
        )
            .into_response(),
    }
}

/// Whether `serial` (big-endian, no leading zeros) is the TSA certificate's or the
/// proof-of-origin certificate's.
fn is_service_serial(state: &Publication, serial: &[u8]) -> bool {
    let is = |cert: &x509_cert::Certificate| {
        let own = cert.tbs_certificate().serial_number().as_bytes();
        let own = &own[own.iter().take_while(|b| **b == 0).count()..];
        own == serial
    };
    state.ca.tsa.as_ref().is_some_and(|t| is(&t.cert))
        || state.ca.origin.as_ref().is_some_and(|o| is(&o.cert))
}

fn tsa_unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the time-stamp authority is not available (no usable TSA key or certificate)",
    )
        .into_response()
}

fn tsa_reply(body: Vec<u8>) -> Response {
    der_response("application/timestamp-reply", body)
}

/// `POST /tsa`: RFC 3161 over HTTP (section 3.4).
async fn tsa_post(
    State(state): State<Arc<Publication>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if content_type.as_deref() != Some("application/timestamp-query") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send an RFC 3161 TimeStampReq as application/timestamp-query",
        )
            .into_response();
    }
    if body.len() > tsp::MAX_TSP_REQUEST_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "a TimeStampReq is at most 4096 bytes",
        )
            .into_response();
    }
    if state.ca.tsa.is_none() {
        return tsa_unavailable();
    }
    let answer = tokio::task::spawn_blocking(move || {
        let tsa = state.ca.tsa.as_ref()?;
        Some(match tsp::parse_time_stamp_request(&body, tsa.policy) {
            Err(TspRequestError::NotATimeStampReq(e)) => Err(e),
            Err(TspRequestError::Rejected { failure, reason }) => {
                tracing::info!(?failure, reason, "time-stamp request rejected");
                Ok(tsp::time_stamp_rejection(failure, reason))
            }
            Ok(query) => {
                let token = tsp::TsaToken {
                    signer: &tsa.signer,
                    certificate: &tsa.cert,
                    policy: tsa.policy,
                    serial: tsa.next_serial(),
                    time: SystemTime::now(),
                };
                Ok(
                    tsp::time_stamp_response(&query, &token).unwrap_or_else(|e| {
                        tracing::error!(error = %e, "time-stamp signing failed");
                        tsp::time_stamp_rejection(
                            PkiFailureInfo::SystemFailure,
                            "the time stamp could not be signed",
                        )
                    }),
                )
            }
        })
    })
    .await;
    match answer {
        Ok(Some(Ok(der))) => tsa_reply(der),
        Ok(Some(Err(e))) => (
            StatusCode::BAD_REQUEST,
            format!("not a DER TimeStampReq: {e}"),
        )
            .into_response(),
        Ok(None) => tsa_unavailable(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    }
}

fn cert_response(cert: &x509_cert::Certificate) -> Response {
    match cert.to_der() {
        Ok(der) => der_response("application/pkix-cert", der),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocsp_get_paths() {
        assert_eq!(ocsp_get_request("MAMCAQA="), Some(vec![0x30, 3, 2, 1, 0]));
        // URL-safe alphabet and line breaks, as some clients send them.
        assert_eq!(ocsp_get_request("-_8=\n"), Some(vec![0xfb, 0xff]));
        assert_eq!(ocsp_get_request("not base64!"), None);
        let big = base64::engine::general_purpose::STANDARD.encode(vec![0; MAX_OCSP_REQUEST + 1]);
        assert_eq!(ocsp_get_request(&big), None);
    }
}
