//! Relying-party side of the Smart-ID RP API v3 compatible REST API, written against the
//! spec's wire format only (`shared/reference/smart-id-rp-api-v3/`), not against our server.
//!
//! ```text
//!  RP backend                                                 RP API (HTTP/HTTPS)
//!  ──────────                                                 ──────────────────
//!  types::*Request ──validate()──▶ http::RpApiClient ──POST /v3/...──────────▶
//!                                        ◀── DeviceLinkSessionResponse / sessionID ──
//!  link::DeviceLinkSession (sessionSecret, request values, receipt time)
//!     ├─ qr_link(now)  every second ──▶ qr::terminal / qr::png   (cross-device)
//!     └─ same_device_link(Web2App|App2App)                        (same-device)
//!  http::RpApiClient::wait_for_completion ──GET /v3/session/{id}?timeoutMs=N (long poll)──▶
//!                                        ◀── SessionStatusResponse ──
//!  callback::check_callback_url (same-device: the URL the app returned to, checked against
//!     the session's initialCallbackUrl, sessionSecret and signature.userChallenge)
//!  verify::verify_authentication / verify_signature / verify_certificate_choice
//!     (pure: response + what the RP sent + trust anchors + time ─▶ report or failed step)
//!  revocation::check_chain_revocation: for the certificate, then each intermediate CA
//!     certificate of its chain (not the self-signed root), check_revocation:
//!     ──POST OCSP request to the certificate's AIA responder──▶
//!     └─ no usable OCSP answer ──GET the CRL at its cRLDistributionPoints──▶ (fallback)
//! ```
//!
//! Every HTTPS connection of [`http`] is checked in its TLS handshake by [`pinning`]: chain,
//! name and validity against the web PKI's roots plus configured ones, then, if the
//! configuration pins keys, the SHA-256 of the server certificate's public key.
//!
//! Only [`http`], [`revocation`] and [`pinning::presented_certificate_pins`] do I/O. Link building, QR rendering and verification take every input as an
//! argument (the receipt time of the start response, the current time, the trust anchors),
//! so they are unit-tested without a server.

pub mod callback;
pub mod http;
pub mod identity;
pub mod link;
pub mod pinning;
pub mod qr;
pub mod revocation;
pub mod verify;

#[cfg(test)]
mod unknown_fields_tests;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRngCore;

use crate::api::ValidationError;
use crate::api::problem::Problem;

pub use callback::CallbackError;
pub use http::{AuthTarget, ClientConfig, RpApiClient, UserRef};
pub use identity::ClientIdentity;
pub use link::DeviceLinkSession;
pub use pinning::{PinMismatch, SpkiPin};
pub use verify::{
    AuthenticationExpectation, CertificateIdentity, ExpectedIdentity, SameDeviceCallback,
    SignatureExpectation, TrustAnchors, VerificationError, VerificationReport, VerificationStep,
    VerifiedAuthentication, VerifiedCertificate, VerifiedSignature,
};

/// Bytes of randomness in the `rpChallenge` we send (the spec's recommendation, and its
/// maximum).
pub const RP_CHALLENGE_LEN: usize = 64;

/// A fresh `rpChallenge := BASE64-ENCODE(CRYPTO-RANDOM(64))` (signature_protocols.txt).
/// The RP keeps the string: it goes into the authCode and the ACSP_V2 payload as is.
pub fn generate_rp_challenge(rng: &mut impl CryptoRngCore) -> String {
    let mut b = [0u8; RP_CHALLENGE_LEN];
    rng.fill_bytes(&mut b);
    STANDARD.encode(b)
}

/// Everything that can go wrong on the relying-party side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad client configuration (base URL, TLS root).
    #[error("configuration: {0}")]
    Config(String),
    /// Our own request would be refused by the spec's rules (checked before sending).
    #[error("request not sent: {0}")]
    InvalidRequest(#[from] ValidationError),
    /// Connection, TLS or timeout failure (the cause is the error's `source`).
    #[error("cannot reach the RP API at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server's TLS certificate chain was valid but its key is none of the pinned ones
    /// ([`ClientConfig::pins`]): the handshake was aborted, no request was sent.
    #[error("refused the RP API at {url}: {mismatch}")]
    PinMismatch {
        url: String,
        #[source]
        mismatch: PinMismatch,
    },
    /// A TLS connection made without an HTTP request (reading the server's pin) failed.
    #[error("TLS connection to {url} failed: {detail}")]
    Tls { url: String, detail: String },
    /// The server answered with an RFC 9457 problem document.
    #[error("{}", describe_problem(.status, .problem))]
    Problem { status: u16, problem: Box<Problem> },
    /// A non-2xx answer that is not a problem document, or a 2xx body we cannot read.
    #[error("unexpected response from {url}: HTTP {status}: {detail}")]
    UnexpectedResponse {
        url: String,
        status: u16,
        detail: String,
    },
    /// The start response cannot be used to build device links.
    #[error("device link: {0}")]
    DeviceLink(String),
    /// QR encoding or PNG output failed.
    #[error("QR code: {0}")]
    Qr(String),
    /// The session result did not verify.
    #[error(transparent)]
    Verification(#[from] VerificationError),
    /// The callback URL of a same-device flow does not belong to the session.
    #[error(transparent)]
    Callback(#[from] CallbackError),
}

fn describe_problem(status: &u16, p: &Problem) -> String {
    let mut s = format!("HTTP {status} {}: {}", p.title, p.detail);
    for e in p.errors.iter().flatten() {
        let parts: Vec<&str> = [e.code.as_deref(), e.detail.as_deref(), e.pointer.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !parts.is_empty() {
            s.push_str(&format!(" [{}]", parts.join("; ")));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_challenge_is_64_random_bytes_in_base64() {
        let mut rng = rand_core::OsRng;
        let c = generate_rp_challenge(&mut rng);
        assert_eq!(STANDARD.decode(&c).unwrap().len(), RP_CHALLENGE_LEN);
        assert_eq!(c.len(), 88);
        assert_ne!(c, generate_rp_challenge(&mut rng));
    }

    #[test]
    fn problem_error_names_status_detail_and_field() {
        let json = r#"{"type":"about:blank","status":400,"title":"Bad Request","detail":"Invalid request parameters found","errors":[{"detail":"Invalid initialCallbackUrl: The callback URL value is invalid","paramName":"initialCallbackUrl","pointer":"/initialCallbackUrl"}]}"#;
        let problem: Problem = serde_json::from_str(json).unwrap();
        let e = Error::Problem {
            status: 400,
            problem: Box::new(problem),
        };
        assert_eq!(
            e.to_string(),
            "HTTP 400 Bad Request: Invalid request parameters found [Invalid initialCallbackUrl: The callback URL value is invalid; /initialCallbackUrl]"
        );
    }
}
