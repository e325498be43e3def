//! Revocation check of a user certificate (response_verification.txt, certificate chain step:
//! "verify that the certificate has not been revoked … using OCSP, utilizing the Authority
//! Information Access extension … If OCSP fails or is unavailable, Certificate Revocation List
//! (CRL) checking should be used as fallback"). This is the one verification step that needs
//! the network, so it is separate from the pure functions of [`super::verify`]; run it after
//! they succeed.
//!
//! ```text
//!  end-entity cert ─┬─ issuer (from our trust anchors) ─▶ CertID (SHA-1) ─▶ OCSPRequest
//!                   └─ AIA id-ad-ocsp URL ──POST application/ocsp-request──▶ responder
//!  OCSPResponse ─▶ successful? ─▶ signed by the issuer or its delegate, chain to our
//!  roots ─▶ our CertID answered ─▶ thisUpdate/nextUpdate current ─▶ good / revoked / unknown
//!        │ no usable answer (see below)
//!        ▼
//!  cRLDistributionPoints URL ──GET──▶ CRL ─▶ crl::check_crl ─▶ not listed / listed
//! ```
//!
//! [`check_revocation`] decides like this:
//!
//! - OCSP answers, and that answer is final: a response that is `successful`, verifies
//!   (signed by the issuer or a responder it delegated to, chaining to our roots), answers for
//!   our CertID and is current (thisUpdate / nextUpdate within [`CLOCK_SLACK_SECS`]) gives
//!   `good` (not revoked, method OCSP), `revoked` ([`RevocationError::Revoked`]) or `unknown`
//!   ([`RevocationError::UnknownToOcsp`]: the issuer's own responder does not know the
//!   certificate; a CRL cannot prove more, since not being listed says nothing about whether a
//!   certificate was issued, so there is no fallback then).
//! - OCSP fails or is unavailable, and the CRL decides: no OCSP URL (no AIA and no override),
//!   the responder unreachable, slower than the timeout, answering an HTTP error, a body over
//!   64 KiB, not an OCSP response, a status other than `successful` (`tryLater`,
//!   `internalError`, `unauthorized`, …), a signature or signer that does not verify, no answer
//!   for our CertID, or an answer that is not current. The CRL comes from the certificate's
//!   cRLDistributionPoints (http/https full names, in order, the first usable one decides; or
//!   an override URL), at most [`MAX_CRL`] bytes within the timeout, and is checked by
//!   [`crl::check_crl`] (the certificate's issuer, its key, current, complete). Not listed:
//!   not revoked, method CRL, with why OCSP gave no answer. Listed:
//!   [`RevocationError::Revoked`] with the date and reason.
//! - No usable CRL either: [`RevocationError::Unavailable`], with both reasons. A failure of
//!   both is never taken for "not revoked".
//!
//! [`check_chain_revocation`] ([`chain`]) applies this to every certificate of the chain
//! below the self-signed root: the end entity, then each intermediate CA certificate with the
//! next certificate up as its issuer ("Intermediate CA certificates can be revoked and must be
//! checked"). Tandem's issuing CA certificate names the root's CRL (`…/crl/root.crl`) as its
//! distribution point and no OCSP responder, so its status comes from that CRL
//! ([`RevocationOptions::ca_crl_url`] replaces the URL, e.g. for an issuing CA certificate
//! made before the root published a CRL, which names none).
//!
//! The checks against Tandem's own OCSP responder and CRL code (over HTTP on 127.0.0.1) are
//! in the end-to-end tests (`tests/tests/rp_revocation_http/`), which may depend on the
//! server; [`crl::check_crl`]'s own tests are here.
//!
//! Not done: an OCSP nonce (the `openssl` crate has no binding for it), so a replayed response
//! is accepted while its thisUpdate/nextUpdate window lasts (as a CRL is until its
//! nextUpdate).

mod chain;
pub mod crl;

use std::fmt;
use std::time::{Duration, SystemTime};

use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509VerifyResult};
pub use x509_cert::ext::pkix::CrlReason;

pub(crate) use chain::build_chain;
pub use chain::{
    ChainNotRevoked, ChainPosition, ChainRevocationError, ChainedCertificate, CheckedCertificate,
    check_chain_revocation,
};
pub use crl::{CrlEntry, CrlStatus, check_crl};

use super::verify::{CheckedStep, StepOutcome, TrustAnchors, VerificationError, VerificationStep};

/// Slack for clock differences when checking thisUpdate / nextUpdate (seconds), for OCSP
/// responses and CRLs alike.
pub const CLOCK_SLACK_SECS: u32 = 300;
/// Time allowed for the whole OCSP exchange, and for each CRL download.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest OCSP response we read.
const MAX_RESPONSE: usize = 64 * 1024;
/// Largest CRL we read by default (10 MiB: large public CAs publish CRLs of a few MB).
pub const MAX_CRL: usize = 10 * 1024 * 1024;

/// Which method gave the revocation answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationMethod {
    /// The certificate's OCSP responder.
    Ocsp,
    /// A CRL from the certificate's distribution point (OCSP gave no usable answer).
    Crl,
}

impl RevocationMethod {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ocsp => "OCSP",
            Self::Crl => "CRL",
        }
    }
}

impl fmt::Display for RevocationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where to ask and what to allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationOptions {
    /// OCSP responder URL instead of the certificate's AIA id-ad-ocsp one (e.g. a mirror).
    pub ocsp_url: Option<String>,
    /// CRL URL instead of the certificate's cRLDistributionPoints.
    pub crl_url: Option<String>,
    /// CRL URL for the intermediate CA certificates of the chain
    /// ([`check_chain_revocation`]) instead of their cRLDistributionPoints: the CRL of the CA
    /// above them (for Tandem, the root's `…/crl/root.crl`). Needed for an issuing CA
    /// certificate that names none (Tandem's, when made before the root published a CRL).
    pub ca_crl_url: Option<String>,
    /// Time allowed for the OCSP exchange, and again for each CRL download.
    pub timeout: Duration,
    /// Largest CRL to download.
    pub max_crl_bytes: usize,
}

impl Default for RevocationOptions {
    fn default() -> Self {
        Self {
            ocsp_url: None,
            crl_url: None,
            ca_crl_url: None,
            timeout: DEFAULT_TIMEOUT,
            max_crl_bytes: MAX_CRL,
        }
    }
}

/// The certificate is not revoked: who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRevoked {
    pub method: RevocationMethod,
    /// The OCSP responder or CRL URL that answered.
    pub url: String,
    /// thisUpdate of the OCSP answer or the CRL.
    pub this_update: String,
    /// nextUpdate of the OCSP answer (if it has one) or the CRL.
    pub next_update: Option<String>,
    /// With [`RevocationMethod::Crl`]: why OCSP gave no usable answer.
    pub ocsp_failure: Option<String>,
}

impl NotRevoked {
    /// The step for a verification report: `revocation: OK (OCSP: good …)` or
    /// `revocation: OK (CRL: not listed …; OCSP gave no answer: …)`.
    pub fn step(&self) -> CheckedStep {
        let detail = match self.method {
            RevocationMethod::Ocsp => {
                format!("OCSP: good at {}, from {}", self.this_update, self.url)
            }
            RevocationMethod::Crl => format!(
                "CRL: not listed (thisUpdate {}, nextUpdate {}), from {}; OCSP gave no answer: {}",
                self.this_update,
                self.next_update.as_deref().unwrap_or("-"),
                self.url,
                self.ocsp_failure.as_deref().unwrap_or("-")
            ),
        };
        CheckedStep {
            step: VerificationStep::Revocation,
            outcome: StepOutcome::Passed(detail),
        }
    }
}

/// The RFC 5280 name of a CRLReason.
pub fn reason_name(r: CrlReason) -> &'static str {
    match r {
        CrlReason::Unspecified => "unspecified",
        CrlReason::KeyCompromise => "keyCompromise",
        CrlReason::CaCompromise => "cACompromise",
        CrlReason::AffiliationChanged => "affiliationChanged",
        CrlReason::Superseded => "superseded",
        CrlReason::CessationOfOperation => "cessationOfOperation",
        CrlReason::CertificateHold => "certificateHold",
        CrlReason::RemoveFromCRL => "removeFromCRL",
        CrlReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        CrlReason::AaCompromise => "aACompromise",
    }
}

fn reason_from_code(code: i32) -> Option<CrlReason> {
    Some(match code {
        0 => CrlReason::Unspecified,
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => return None,
    })
}

fn reason_text(r: &Option<CrlReason>) -> String {
    match r {
        Some(r) => format!(" (reason code {}, {})", *r as u32, reason_name(*r)),
        None => " (no reason given)".into(),
    }
}

/// Why the revocation check did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The certificate cannot be checked: it does not parse, or its issuer is not among the
    /// trust anchors (neither OCSP nor a CRL could be verified without it).
    #[error("{0}")]
    Certificate(String),
    /// The certificate is revoked, according to `method` at `url`.
    #[error("{method}: the certificate is revoked since {at}{} (from {url})", reason_text(.reason))]
    Revoked {
        method: RevocationMethod,
        url: String,
        /// revocationTime (OCSP) or revocationDate (CRL).
        at: String,
        reason: Option<CrlReason>,
        /// With [`RevocationMethod::Crl`]: why OCSP gave no usable answer.
        ocsp_failure: Option<String>,
    },
    /// The issuer's OCSP responder answered, in a valid and current response, that it does
    /// not know the certificate. Final: no CRL fallback (see the module documentation).
    #[error("OCSP: the responder {url} does not know the certificate (status unknown)")]
    UnknownToOcsp { url: String },
    /// OCSP failed or was unavailable, and so was every CRL.
    #[error("revocation status unknown: both OCSP and the CRL failed; OCSP: {ocsp}; CRL: {crl}")]
    Unavailable { ocsp: String, crl: String },
}

impl RevocationError {
    /// The method that gave the answer, for [`Self::Revoked`] and [`Self::UnknownToOcsp`].
    pub fn method(&self) -> Option<RevocationMethod> {
        match self {
            Self::Revoked { method, .. } => Some(*method),
            Self::UnknownToOcsp { .. } => Some(RevocationMethod::Ocsp),
            _ => None,
        }
    }
}

impl From<RevocationError> for VerificationError {
    fn from(e: RevocationError) -> Self {
        fail(e.to_string())
    }
}

fn fail(reason: impl Into<String>) -> VerificationError {
    VerificationError {
        step: VerificationStep::Revocation,
        reason: reason.into(),
        passed: Default::default(),
    }
}

fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> String {
    move |e| format!("{what}: {e}")
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

/// The body of `resp`, refused if its Content-Length, or what arrives, exceeds `max` bytes.
async fn read_bounded(
    mut resp: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, String> {
    let too_large = || format!("the {what} is larger than {max} bytes");
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(causes)? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A time as RFC 3339 (UTC, seconds).
fn rfc3339(t: SystemTime) -> String {
    der::DateTime::from_system_time(t)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| format!("{t:?}"))
}

/// The certificate, and its issuer among the anchors (its signature on it verifies).
fn leaf_and_issuer<'a>(
    certificate_der: &[u8],
    anchors: &'a TrustAnchors,
) -> Result<(X509, &'a X509), String> {
    let leaf = X509::from_der(certificate_der).map_err(ossl("certificate"))?;
    let issuer = anchors
        .all_certificates()
        .find(|c| {
            c.issued(&leaf) == X509VerifyResult::OK
                && c.public_key()
                    .and_then(|k| leaf.verify(&k))
                    .unwrap_or(false)
        })
        .ok_or("the certificate's issuer is not among the trust anchors")?;
    Ok((leaf, issuer))
}

/// The override, else the certificate's first http(s) AIA OCSP URL.
fn ocsp_url(leaf: &X509, responder_url: Option<&str>) -> Result<String, String> {
    match responder_url {
        Some(u) => Ok(u.to_owned()),
        None => leaf
            .ocsp_responders()
            .ok()
            .and_then(|l| {
                l.iter()
                    .map(|s| s.to_string())
                    .find(|s| s.starts_with("http://") || s.starts_with("https://"))
            })
            .ok_or_else(|| "the certificate names no OCSP responder (AIA)".into()),
    }
}

/// A final OCSP answer.
enum OcspAnswer {
    Good {
        this_update: String,
        next_update: Option<String>,
    },
    Revoked {
        at: String,
        reason: Option<CrlReason>,
    },
    Unknown,
}

/// Asks `url` about `leaf`. `Err` means no usable answer (the reasons of the module
/// documentation), without the URL.
async fn ocsp_query(
    leaf: &X509,
    issuer: &X509,
    anchors: &TrustAnchors,
    url: &str,
    timeout: Duration,
) -> Result<OcspAnswer, String> {
    ocsp_query_der(leaf, issuer, anchors, url, timeout)
        .await
        .map(|(answer, _)| answer)
}

/// [`ocsp_query`], with the DER OCSPResponse that gave the answer (what a B-LT signature
/// embeds).
async fn ocsp_query_der(
    leaf: &X509,
    issuer: &X509,
    anchors: &TrustAnchors,
    url: &str,
    timeout: Duration,
) -> Result<(OcspAnswer, Vec<u8>), String> {
    let id = || OcspCertId::from_cert(MessageDigest::sha1(), leaf, issuer);
    let mut req = OcspRequest::new().map_err(ossl("OCSP request"))?;
    req.add_id(id().map_err(ossl("OCSP CertID"))?)
        .map_err(ossl("OCSP request"))?;
    let req_der = req.to_der().map_err(ossl("OCSP request"))?;

    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let resp = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
        .header(reqwest::header::ACCEPT, "application/ocsp-response")
        .body(req_der)
        .send()
        .await
        .map_err(|e| format!("unreachable: {}", causes(e)))?;
    if !resp.status().is_success() {
        return Err(format!("answered HTTP {}", resp.status().as_u16()));
    }
    let body = read_bounded(resp, MAX_RESPONSE, "OCSP response").await?;

    let ocsp = OcspResponse::from_der(&body).map_err(ossl("not an OCSP response"))?;
    if ocsp.status() != OcspResponseStatus::SUCCESSFUL {
        return Err(format!(
            "the OCSP responder answered status {}",
            ocsp.status().as_raw()
        ));
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
        .map_err(|_| "the OCSP response's signature or signer does not verify")?;
    let id = id().map_err(ossl("OCSP CertID"))?;
    let status = basic
        .find_status(&id)
        .ok_or("the OCSP response does not answer for this certificate")?;
    status
        .check_validity(CLOCK_SLACK_SECS, None)
        .map_err(|_| "the OCSP response is not current (thisUpdate / nextUpdate)")?;
    let answer = if status.status == OcspCertStatus::GOOD {
        OcspAnswer::Good {
            this_update: status.this_update.to_string(),
            next_update: status.next_update().map(|t| t.to_string()),
        }
    } else if status.status == OcspCertStatus::REVOKED {
        OcspAnswer::Revoked {
            at: status
                .revocation_time
                .map(|t| t.to_string())
                .unwrap_or_else(|| "an unknown time".into()),
            reason: reason_from_code(status.reason.as_raw()),
        }
    } else {
        OcspAnswer::Unknown
    };
    Ok((answer, body))
}

/// Asks the certificate's OCSP responder whether `certificate_der` is revoked, with no CRL
/// fallback (see [`check_revocation`] for the check with it).
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
    let (leaf, issuer) = leaf_and_issuer(certificate_der, anchors).map_err(fail)?;
    let url = ocsp_url(&leaf, responder_url).map_err(fail)?;
    let answer = ocsp_query(&leaf, issuer, anchors, &url, DEFAULT_TIMEOUT)
        .await
        .map_err(|e| fail(format!("OCSP responder {url}: {e}")))?;
    ocsp_verdict(answer, url)
        .map(|ok| ok.step())
        .map_err(Into::into)
}

/// What a final OCSP answer means.
fn ocsp_verdict(answer: OcspAnswer, url: String) -> Result<NotRevoked, RevocationError> {
    match answer {
        OcspAnswer::Good {
            this_update,
            next_update,
        } => Ok(NotRevoked {
            method: RevocationMethod::Ocsp,
            url,
            this_update,
            next_update,
            ocsp_failure: None,
        }),
        OcspAnswer::Revoked { at, reason } => Err(RevocationError::Revoked {
            method: RevocationMethod::Ocsp,
            url,
            at,
            reason,
            ocsp_failure: None,
        }),
        OcspAnswer::Unknown => Err(RevocationError::UnknownToOcsp { url }),
    }
}

/// Whether `certificate_der` is revoked: OCSP first, the CRL if OCSP gives no usable answer
/// (the rules are in the module documentation). `Ok` only when OCSP or a CRL said the
/// certificate is not revoked; it names which. Uses the system clock.
///
/// This checks one certificate (its issuer found among `anchors`); the specification's check
/// covers the intermediate CA certificates too: [`check_chain_revocation`].
pub async fn check_revocation(
    certificate_der: &[u8],
    anchors: &TrustAnchors,
    opts: &RevocationOptions,
) -> Result<NotRevoked, RevocationError> {
    let (leaf, issuer) =
        leaf_and_issuer(certificate_der, anchors).map_err(RevocationError::Certificate)?;
    let urls = Overrides {
        ocsp_url: opts.ocsp_url.as_deref(),
        crl_url: opts.crl_url.as_deref(),
        no_crl_hint: "",
    };
    check_issued_by(certificate_der, &leaf, issuer, anchors, urls, opts).await
}

/// Which URLs replace the certificate's own, and what to add when it names no CRL.
#[derive(Debug, Clone, Copy)]
struct Overrides<'a> {
    ocsp_url: Option<&'a str>,
    crl_url: Option<&'a str>,
    /// Appended to "the certificate names no http(s) CRL distribution point".
    no_crl_hint: &'a str,
}

/// [`check_revocation`] of `leaf` (DER `certificate_der`) with its issuer already chosen.
async fn check_issued_by(
    certificate_der: &[u8],
    leaf: &X509,
    issuer: &X509,
    anchors: &TrustAnchors,
    urls: Overrides<'_>,
    opts: &RevocationOptions,
) -> Result<NotRevoked, RevocationError> {
    check_issued_by_evidence(certificate_der, leaf, issuer, anchors, urls, opts)
        .await
        .map(|(ok, _)| ok)
}

/// The signed data behind a "not revoked" answer, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationEvidence {
    /// A DER OCSPResponse (status successful, answering `good` for the certificate).
    Ocsp(Vec<u8>),
    /// A DER CertificateList that does not list the certificate.
    Crl(Vec<u8>),
}

/// Whether `certificate_der`, issued by `issuer`, is revoked, as [`check_revocation`]
/// decides (OCSP at `ocsp_url` or the AIA one, else the CRL at `crl_url` or the
/// distribution points), and the OCSP response or CRL that said it is not: what a B-LT
/// signature embeds ([`crate::documents::ltv`]). The OCSP response must verify against
/// `anchors`. Uses the system clock.
pub async fn revocation_evidence(
    certificate_der: &[u8],
    issuer: &X509,
    anchors: &TrustAnchors,
    ocsp_url: Option<&str>,
    crl_url: Option<&str>,
    opts: &RevocationOptions,
) -> Result<(NotRevoked, RevocationEvidence), RevocationError> {
    let leaf = X509::from_der(certificate_der)
        .map_err(|e| RevocationError::Certificate(format!("certificate: {e}")))?;
    let urls = Overrides {
        ocsp_url,
        crl_url,
        no_crl_hint: "",
    };
    check_issued_by_evidence(certificate_der, &leaf, issuer, anchors, urls, opts).await
}

/// [`check_issued_by`], with the OCSP response or CRL that answered.
async fn check_issued_by_evidence(
    certificate_der: &[u8],
    leaf: &X509,
    issuer: &X509,
    anchors: &TrustAnchors,
    urls: Overrides<'_>,
    opts: &RevocationOptions,
) -> Result<(NotRevoked, RevocationEvidence), RevocationError> {
    let ocsp_failure = match ocsp_url(leaf, urls.ocsp_url) {
        Err(why) => why,
        Ok(url) => match ocsp_query_der(leaf, issuer, anchors, &url, opts.timeout).await {
            Ok((answer, der)) => {
                return ocsp_verdict(answer, url).map(|ok| (ok, RevocationEvidence::Ocsp(der)));
            }
            Err(why) => format!("{url}: {why}"),
        },
    };

    let crl_urls = match urls.crl_url {
        Some(u) => vec![u.to_owned()],
        None => crl::distribution_points(certificate_der).map_err(|crl| {
            RevocationError::Unavailable {
                ocsp: ocsp_failure.clone(),
                crl,
            }
        })?,
    };
    if crl_urls.is_empty() {
        return Err(RevocationError::Unavailable {
            ocsp: ocsp_failure,
            crl: format!(
                "the certificate names no http(s) CRL distribution point{}",
                urls.no_crl_hint
            ),
        });
    }
    let slack = Duration::from_secs(CLOCK_SLACK_SECS.into());
    let mut failures = Vec::new();
    for url in crl_urls {
        let (status, body) = match crl::fetch_crl(&url, opts.timeout, opts.max_crl_bytes).await {
            Ok(body) => (
                check_crl(certificate_der, issuer, &body, SystemTime::now(), slack),
                body,
            ),
            Err(e) => (Err(e), Vec::new()),
        };
        match status {
            Ok(CrlStatus {
                entry: None,
                this_update,
                next_update,
                ..
            }) => {
                let ok = NotRevoked {
                    method: RevocationMethod::Crl,
                    url,
                    this_update: rfc3339(this_update),
                    next_update: Some(rfc3339(next_update)),
                    ocsp_failure: Some(ocsp_failure),
                };
                return Ok((ok, RevocationEvidence::Crl(body)));
            }
            Ok(CrlStatus { entry: Some(e), .. }) => {
                return Err(RevocationError::Revoked {
                    method: RevocationMethod::Crl,
                    url,
                    at: rfc3339(e.revoked_at),
                    reason: e.reason,
                    ocsp_failure: Some(ocsp_failure),
                });
            }
            Err(why) => failures.push(format!("{url}: {why}")),
        }
    }
    Err(RevocationError::Unavailable {
        ocsp: ocsp_failure,
        crl: failures.join("; "),
    })
}
