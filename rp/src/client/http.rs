//! The async HTTP client: one method per session-start endpoint of openapi.yml, the session
//! status long poll, and problem documents turned into [`Error::Problem`].
//!
//! Base URL is the API root including `/v3`'s parent path as configured, e.g.
//! `http://127.0.0.1:8088/v3` or `https://rp-api.example/v3`; the paths below are appended
//! to it segment by segment (percent-encoded where needed).

use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use super::pinning::{self, SpkiPin};
use crate::api::ValidationError;
use crate::api::problem::Problem;
use crate::api::types::{
    CertificateChoiceRequest, CertificateResponse, DeviceLinkAuthenticationRequest,
    DeviceLinkSessionResponse, DeviceLinkSigningRequest, NotificationAuthenticationRequest,
    NotificationSigningLinkedRequest, NotificationSigningRequest, NotificationSigningResponse,
    SessionIdResponse, SessionState, SessionStatusResponse, SigningCertificateRequest,
    TIMEOUT_MS_MAX, TIMEOUT_MS_MIN,
};

/// Who a non-anonymous session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// ETSI natural person semantics identifier, e.g. `PNOEE-30303039914`
    /// (`…/etsi/{id-etsi-qcs-SemanticsId-Natural}`).
    Etsi(String),
    /// Document number of one account, e.g. `PNOEE-30303039914-MOCK-Q`
    /// (`…/document/{document-number}`).
    Document(String),
}

impl UserRef {
    fn segments(&self) -> [&str; 2] {
        match self {
            Self::Etsi(id) => ["etsi", id],
            Self::Document(n) => ["document", n],
        }
    }
}

/// Who a device-link authentication is for: nobody in particular, or a known user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthTarget {
    Anonymous,
    User(UserRef),
}

/// How to reach the RP API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// E.g. `http://127.0.0.1:8088/v3`.
    pub base_url: String,
    /// Extra trusted roots (PEM) for HTTPS to a server with a self-signed certificate or a
    /// private CA; the web PKI's roots (webpki-roots) stay trusted beside them.
    pub extra_root_pem: Option<Vec<u8>>,
    /// HTTPS key pinning (api_details.txt): when not empty, every TLS connection must present
    /// a certificate whose key has one of these pins (besides a valid chain), or it is
    /// aborted in the handshake with [`Error::PinMismatch`]. Give the current key's pin and
    /// the next one's to change keys without an outage. Needs an `https` base URL.
    pub pins: Vec<SpkiPin>,
    /// Revocation of the server's certificate (api_details.txt: "not revoked"): certificate
    /// revocation lists, each entry the bytes of a CRL file (PEM `X509 CRL` blocks or one DER
    /// CRL). When not empty, the server certificate must be covered by a CRL of its issuer
    /// whose nextUpdate has not passed, and not be listed in it. Keeping the files current
    /// is the caller's job (the issuer's CRL distribution point says where to fetch them).
    pub tls_crls: Vec<Vec<u8>>,
    /// Mutual TLS: the client certificate and key presented to the server (a relying
    /// party's software certificate from `tandem rp-cert download`). Needs an `https` base
    /// URL.
    pub client_identity: Option<super::identity::ClientIdentity>,
    /// TCP + TLS connection timeout.
    pub connect_timeout: Duration,
    /// Time allowed for a session-start request (long polls get `timeoutMs` on top).
    pub request_timeout: Duration,
    /// Check requests with their `validate()` before sending (off only to test a server's
    /// handling of invalid requests).
    pub validate_requests: bool,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            extra_root_pem: None,
            pins: Vec::new(),
            tls_crls: Vec::new(),
            client_identity: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            validate_requests: true,
        }
    }

    /// Adds a trusted root (PEM, one or more certificates) for the server's certificate.
    pub fn with_extra_root_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_root_pem = Some(pem.into());
        self
    }

    /// Adds a CRL file for the server certificate's revocation check (see
    /// [`ClientConfig::tls_crls`]).
    pub fn with_tls_crl(mut self, crl_file: impl Into<Vec<u8>>) -> Self {
        self.tls_crls.push(crl_file.into());
        self
    }

    /// Presents a client certificate for mutual TLS (see
    /// [`ClientConfig::client_identity`]).
    pub fn with_client_identity(mut self, identity: super::identity::ClientIdentity) -> Self {
        self.client_identity = Some(identity);
        self
    }

    /// Pins the server's key (see [`ClientConfig::pins`]); call again for each further pin.
    pub fn with_pin(mut self, pin: SpkiPin) -> Self {
        self.pins.push(pin);
        self
    }
}

/// Extra time beyond `timeoutMs` before we give up on a long poll ourselves.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(15);
/// A RUNNING answer faster than this means the server did not hold the poll: wait a little
/// before asking again instead of spinning.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Client of the RP API. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct RpApiClient {
    http: reqwest::Client,
    base: Url,
    request_timeout: Duration,
    validate: bool,
}

impl RpApiClient {
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let base = Url::parse(&config.base_url)
            .map_err(|e| Error::Config(format!("base URL {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "base URL {:?} must be an http or https URL",
                config.base_url
            )));
        }
        if !config.pins.is_empty() && base.scheme() != "https" {
            return Err(Error::Config(format!(
                "base URL {:?}: key pinning needs https",
                config.base_url
            )));
        }
        if config.client_identity.is_some() && base.scheme() != "https" {
            return Err(Error::Config(format!(
                "base URL {:?}: a client certificate needs https",
                config.base_url
            )));
        }
        // Our own rustls configuration (reqwest's has no hook for the pin check); see
        // `pinning`.
        let tls = pinning::tls_config(
            config.extra_root_pem.as_deref(),
            &config.tls_crls,
            &config.pins,
            config.client_identity.as_ref(),
        )?;
        let builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("tandem-rp-client/", env!("CARGO_PKG_VERSION")))
            .use_preconfigured_tls(tls);
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            request_timeout: config.request_timeout,
            validate: config.validate_requests,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `base` + path segments, each percent-encoded as a single segment.
    fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| Error::Config("base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn check(&self, r: Result<(), ValidationError>) -> Result<(), Error> {
        if self.validate {
            r.map_err(Error::from)
        } else {
            Ok(())
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T, Error> {
        self.post_url(self.url(segments)?, body).await
    }

    async fn post_url<B: Serialize, T: DeserializeOwned>(
        &self,
        url: Url,
        body: &B,
    ) -> Result<T, Error> {
        tracing::debug!(%url, "RP API request");
        let resp = self
            .http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.request_timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| transport(&url, e))?;
        read_response(&url, resp).await
    }

    /// `POST /v3/test-accounts/device-link`: a Tandem server's test account (with
    /// `rp_api.test_accounts` on) "scans" the device link; for anonymous sessions
    /// `document_number` names the account. Not part of the Smart-ID RP API.
    pub async fn test_account_scan(
        &self,
        device_link: &str,
        document_number: Option<&str>,
    ) -> Result<serde_json::Value, Error> {
        let body = serde_json::json!({
            "deviceLink": device_link,
            "documentNumber": document_number,
        });
        self.post(&["test-accounts", "device-link"], &body).await
    }

    /// `POST /tandem/v1/proof-of-origin` on the same host (beside, not under, the base
    /// path): a proof of origin for a completed AUTH session of this relying party. Not
    /// part of the Smart-ID RP API.
    pub async fn proof_of_origin(
        &self,
        req: &crate::documents::origin::ProofOfOriginRequest,
    ) -> Result<crate::documents::origin::ProofOfOriginResponse, Error> {
        req.validate().map_err(Error::Config)?;
        let mut url = self.base.clone();
        url.set_path(crate::documents::origin::ENDPOINT_PATH);
        url.set_query(None);
        self.post_url(url, req).await
    }

    /// `POST /tandem/v1/portal/overview` (a relying party with the `portal` permission):
    /// the holder of a completed AUTH session, their accounts and recent transactions.
    /// Refusals come back as [`Error::Problem`]: 403 no permission, 404 no such session (or
    /// another relying party's), 409 not complete or not OK, 410 completed too long ago.
    pub async fn portal_overview(
        &self,
        req: &crate::api::portal::PortalOverviewRequest,
    ) -> Result<crate::api::portal::PortalOverview, Error> {
        req.validate().map_err(Error::Config)?;
        self.post_tandem(crate::api::portal::OVERVIEW_PATH, req)
            .await
    }

    /// `POST /tandem/v1/portal/delete-account`: deletes one of the holder's accounts with a
    /// fresh AUTH session (certificates revoked, secrets destroyed). Refusals as for
    /// [`RpApiClient::portal_overview`], and 404 for an account of another person, 409 for
    /// a session used for a deletion already, 410 for a session older than
    /// `rp_api.max_auth_age_seconds`.
    pub async fn portal_delete_account(
        &self,
        req: &crate::api::portal::PortalDeleteAccountRequest,
    ) -> Result<crate::api::portal::AccountDeleted, Error> {
        req.validate().map_err(Error::Config)?;
        self.post_tandem(crate::api::portal::DELETE_ACCOUNT_PATH, req)
            .await
    }

    /// `POST /tandem/v1/rp-certs/list`: the relying parties the administrator of the AUTH
    /// session manages, with credits, vouchers and certificates. Refusals come back as
    /// [`Error::Problem`]: 403 not an administrator (or the caller may not manage the
    /// target), 404/409/410 for the session as in [`RpApiClient::portal_overview`].
    pub async fn rp_certs_list(
        &self,
        req: &crate::api::rp_certs::ListRequest,
    ) -> Result<crate::api::rp_certs::RpCertOverview, Error> {
        req.validate().map_err(Error::Config)?;
        self.post_tandem(crate::api::rp_certs::LIST_PATH, req).await
    }

    /// `POST /tandem/v1/rp-certs/create`: queues certificates, one credit each (all or
    /// none). 400 names a bad label or request, 409 too few credits.
    pub async fn rp_certs_create(
        &self,
        req: &crate::api::rp_certs::CreateRequest,
    ) -> Result<crate::api::rp_certs::Created, Error> {
        req.validate().map_err(Error::Config)?;
        self.post_tandem(crate::api::rp_certs::CREATE_PATH, req)
            .await
    }

    /// `POST /tandem/v1/rp-certs/cancel`: cancels a queued or running creation and answers
    /// the voucher; 409 when it is issued already.
    pub async fn rp_certs_cancel(
        &self,
        req: &crate::api::rp_certs::CertificateRequest,
    ) -> Result<crate::api::rp_certs::Cancelled, Error> {
        req.validate().map_err(Error::Config)?;
        self.post_tandem(crate::api::rp_certs::CANCEL_PATH, req)
            .await
    }

    /// `POST /tandem/v1/rp-certs/redeem`: turns a voucher back into a credit, once; 404 for
    /// an unknown code, 409 for one redeemed already.
    pub async fn rp_certs_redeem(
        &self,
        req: &crate::api::rp_certs::RedeemRequest,
    ) -> Result<crate::api::rp_certs::Redeemed, Error> {
        req.validate().map_err(Error::Config)?;
        self.post_tandem(crate::api::rp_certs::REDEEM_PATH, req)
            .await
    }

    /// `POST /tandem/v1/rp-certs/revoke`: revokes a ready certificate (OCSP and CRL say so
    /// at once; mutual TLS with it is refused at once).
    pub async fn rp_certs_revoke(
        &self,
        req: &crate::api::rp_certs::CertificateRequest,
    ) -> Result<crate::api::rp_certs::RpCert, Error> {
        req.validate().map_err(Error::Config)?;
        self.post_tandem(crate::api::rp_certs::REVOKE_PATH, req)
            .await
    }

    /// `POST /tandem/v1/rp-certs/certificate`: an issued certificate with its chain; 409
    /// while it is still queued or being created.
    pub async fn rp_certs_certificate(
        &self,
        req: &crate::api::rp_certs::CertificateRequest,
    ) -> Result<crate::api::rp_certs::IssuedRpCert, Error> {
        req.validate().map_err(Error::Config)?;
        self.post_tandem(crate::api::rp_certs::CERTIFICATE_PATH, req)
            .await
    }

    /// POSTs to one of Tandem's own endpoints beside the base path.
    async fn post_tandem<Q: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        req: &Q,
    ) -> Result<T, Error> {
        let mut url = self.base.clone();
        url.set_path(path);
        url.set_query(None);
        self.post_url(url, req).await
    }

    /// `POST /v3/authentication/device-link/{anonymous | etsi/{id} | document/{number}}`.
    pub async fn device_link_authentication(
        &self,
        target: &AuthTarget,
        req: &DeviceLinkAuthenticationRequest,
    ) -> Result<DeviceLinkSessionResponse, Error> {
        self.check(req.validate())?;
        match target {
            AuthTarget::Anonymous => {
                self.post(&["authentication", "device-link", "anonymous"], req)
                    .await
            }
            AuthTarget::User(u) => {
                let [kind, id] = u.segments();
                self.post(&["authentication", "device-link", kind, id], req)
                    .await
            }
        }
    }

    /// `POST /v3/authentication/notification/{etsi/{id} | document/{number}}`.
    pub async fn notification_authentication(
        &self,
        user: &UserRef,
        req: &NotificationAuthenticationRequest,
    ) -> Result<SessionIdResponse, Error> {
        self.check(req.validate())?;
        let [kind, id] = user.segments();
        self.post(&["authentication", "notification", kind, id], req)
            .await
    }

    /// `POST /v3/signature/device-link/{etsi/{id} | document/{number}}`.
    pub async fn device_link_signature(
        &self,
        user: &UserRef,
        req: &DeviceLinkSigningRequest,
    ) -> Result<DeviceLinkSessionResponse, Error> {
        self.check(req.validate())?;
        let [kind, id] = user.segments();
        self.post(&["signature", "device-link", kind, id], req)
            .await
    }

    /// `POST /v3/signature/notification/{etsi/{id} | document/{number}}`: the answer carries
    /// the verification code to show.
    pub async fn notification_signature(
        &self,
        user: &UserRef,
        req: &NotificationSigningRequest,
    ) -> Result<NotificationSigningResponse, Error> {
        self.check(req.validate())?;
        let [kind, id] = user.segments();
        self.post(&["signature", "notification", kind, id], req)
            .await
    }

    /// `POST /v3/signature/notification/linked/{document-number}` (right after a device-link
    /// certificate choice; `req.linked_session_id` names it).
    pub async fn linked_notification_signature(
        &self,
        document_number: &str,
        req: &NotificationSigningLinkedRequest,
    ) -> Result<SessionIdResponse, Error> {
        self.check(req.validate())?;
        self.post(
            &["signature", "notification", "linked", document_number],
            req,
        )
        .await
    }

    /// `POST /v3/signature/certificate-choice/device-link/anonymous`.
    pub async fn device_link_certificate_choice(
        &self,
        req: &CertificateChoiceRequest,
    ) -> Result<DeviceLinkSessionResponse, Error> {
        self.check(req.validate())?;
        self.post(
            &[
                "signature",
                "certificate-choice",
                "device-link",
                "anonymous",
            ],
            req,
        )
        .await
    }

    /// `POST /v3/signature/certificate-choice/notification/etsi/{id}` (no callback URL).
    pub async fn notification_certificate_choice(
        &self,
        etsi_id: &str,
        req: &CertificateChoiceRequest,
    ) -> Result<SessionIdResponse, Error> {
        self.check(req.validate())?;
        if self.validate && req.initial_callback_url.is_some() {
            return Err(Error::InvalidRequest(ValidationError {
                field: "initialCallbackUrl",
                reason: "not part of a notification certificate choice".into(),
            }));
        }
        self.post(
            &[
                "signature",
                "certificate-choice",
                "notification",
                "etsi",
                etsi_id,
            ],
            req,
        )
        .await
    }

    /// `POST /v3/signature/certificate/{document-number}`: answers at once, no session.
    pub async fn signing_certificate(
        &self,
        document_number: &str,
        req: &SigningCertificateRequest,
    ) -> Result<CertificateResponse, Error> {
        self.check(req.validate())?;
        self.post(&["signature", "certificate", document_number], req)
            .await
    }

    /// One `GET /v3/session/{sessionID}[?timeoutMs=N]`: returns when the session completes or
    /// the server's long-poll timeout passes (then `state` is `RUNNING`).
    pub async fn session_status(
        &self,
        session_id: &str,
        timeout_ms: Option<u64>,
    ) -> Result<SessionStatusResponse, Error> {
        if let Some(t) = timeout_ms
            && self.validate
            && !(TIMEOUT_MS_MIN..=TIMEOUT_MS_MAX).contains(&t)
        {
            return Err(Error::InvalidRequest(ValidationError {
                field: "timeoutMs",
                reason: format!("must be between {TIMEOUT_MS_MIN} and {TIMEOUT_MS_MAX}"),
            }));
        }
        let mut url = self.url(&["session", session_id])?;
        if let Some(t) = timeout_ms {
            url.query_pairs_mut()
                .append_pair("timeoutMs", &t.to_string());
        }
        let wait = Duration::from_millis(timeout_ms.unwrap_or(TIMEOUT_MS_MAX)) + LONG_POLL_MARGIN;
        let resp = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(wait)
            .send()
            .await
            .map_err(|e| transport(&url, e))?;
        read_response(&url, resp).await
    }

    /// Long-polls until the session is `COMPLETE`. `on_running` is called after every
    /// `RUNNING` answer (with the number of polls so far) so a caller can show progress.
    /// Sessions end by themselves (`TIMEOUT` end result), so there is no deadline here.
    pub async fn wait_for_completion(
        &self,
        session_id: &str,
        timeout_ms: Option<u64>,
        mut on_running: impl FnMut(u32),
    ) -> Result<SessionStatusResponse, Error> {
        let mut polls = 0u32;
        loop {
            let started = Instant::now();
            let status = self.session_status(session_id, timeout_ms).await?;
            if status.state == SessionState::Complete {
                return Ok(status);
            }
            polls = polls.saturating_add(1);
            on_running(polls);
            let took = started.elapsed();
            if took < MIN_POLL_INTERVAL {
                tokio::time::sleep(MIN_POLL_INTERVAL - took).await;
            }
        }
    }
}

fn transport(url: &Url, e: reqwest::Error) -> Error {
    if let Some(mismatch) = pinning::find_pin_mismatch(&e) {
        return Error::PinMismatch {
            url: url.to_string(),
            mismatch,
        };
    }
    Error::Transport {
        url: url.to_string(),
        // The URL is in our message already.
        source: e.without_url(),
    }
}

/// 2xx: the JSON body as `T`. Otherwise a problem document if the body is one.
async fn read_response<T: DeserializeOwned>(
    url: &Url,
    resp: reqwest::Response,
) -> Result<T, Error> {
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| transport(url, e))?;
    decode_body(url, status.as_u16(), &body)
}

/// The part of [`read_response`] that needs no socket.
pub(super) fn decode_body<T: DeserializeOwned>(
    url: &Url,
    status: u16,
    body: &[u8],
) -> Result<T, Error> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| Error::UnexpectedResponse {
            url: url.to_string(),
            status,
            detail: format!("cannot read the response body: {e}: {}", excerpt(body)),
        });
    }
    match serde_json::from_slice::<Problem>(body) {
        Ok(problem) => Err(Error::Problem {
            status,
            problem: Box::new(problem),
        }),
        Err(_) => Err(Error::UnexpectedResponse {
            url: url.to_string(),
            status,
            detail: if body.is_empty() {
                "empty body".to_owned()
            } else {
                excerpt(body)
            },
        }),
    }
}

/// The start of a body for an error message, printable.
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let s = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.len() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> RpApiClient {
        RpApiClient::new(ClientConfig::new(base)).unwrap()
    }

    #[test]
    fn urls_append_segments_and_encode_them() {
        let c = client("http://127.0.0.1:8088/v3");
        assert_eq!(
            c.url(&["authentication", "device-link", "anonymous"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8088/v3/authentication/device-link/anonymous"
        );
        // A trailing slash on the base does not double up; odd characters stay in one segment.
        let c = client("https://rp.example/api/v3/");
        assert_eq!(
            c.url(&["signature", "certificate", "PNOEE-1/../x y"])
                .unwrap()
                .as_str(),
            "https://rp.example/api/v3/signature/certificate/PNOEE-1%2F..%2Fx%20y"
        );
    }

    #[test]
    fn bad_base_urls_are_refused() {
        assert!(matches!(
            RpApiClient::new(ClientConfig::new("127.0.0.1:8088")),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            RpApiClient::new(ClientConfig::new("ftp://x/v3")),
            Err(Error::Config(_))
        ));
        let mut cfg = ClientConfig::new("https://x/v3");
        cfg.extra_root_pem = Some(b"not a certificate".to_vec());
        assert!(matches!(RpApiClient::new(cfg), Err(Error::Config(_))));
    }

    /// What the stand-in server saw: method, path and query, JSON body.
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, serde_json::Value)>>>;

    /// A stand-in RP API on 127.0.0.1:0 answering from the spec's examples; the second
    /// session status poll completes.
    async fn stand_in_server(seen: Seen) -> String {
        use axum::body::Bytes;
        use axum::http::{Method, StatusCode, Uri};
        use axum::response::IntoResponse;
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let seen = seen.clone();
            let polls = polls.clone();
            async move {
                let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("").to_owned();
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                seen.lock().unwrap().push((method.to_string(), path.clone(), json));
                let (status, body) = if path == "/api/v3/authentication/device-link/anonymous" {
                    (200, r#"{"sessionID":"fa20fd1e-e320-4c68-8315-f6a507a0b4a9","sessionToken":"wGIrqveE6AuGDATZKmR1mtAZ","sessionSecret":"B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps=","deviceLinkBase":"https://smart-id.com/device-link"}"#)
                } else if path.starts_with("/api/v3/signature/notification/etsi/") {
                    (200, r#"{"sessionID":"56e1c1d0-dc07-4c71-890b-6200856b8c75","vc":{"type":"numeric4","value":"4927"}}"#)
                } else if path.starts_with("/api/v3/session/") {
                    if polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        (200, r#"{"state":"RUNNING"}"#)
                    } else {
                        (200, r#"{"state":"COMPLETE","result":{"endResult":"USER_REFUSED"}}"#)
                    }
                } else {
                    (404, r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"Not Found"}"#)
                };
                (StatusCode::from_u16(status).unwrap(), body).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/api/v3")
    }

    fn auth_request() -> DeviceLinkAuthenticationRequest {
        use crate::api::types::*;
        DeviceLinkAuthenticationRequest {
            relying_party_uuid: "00000000-0000-4000-8000-000000000000".into(),
            relying_party_name: "DEMO".into(),
            initial_callback_url: None,
            certificate_level: Some(AuthCertificateLevel::Qualified),
            signature_protocol: AuthSignatureProtocol::AcspV2,
            signature_protocol_parameters: AuthSignatureProtocolParameters {
                rp_challenge: super::super::generate_rp_challenge(&mut rand_core::OsRng),
                signature_algorithm: SignatureAlgorithm::RsassaPss,
                signature_algorithm_parameters: Some(SignatureAlgorithmParametersInRequest {
                    hash_algorithm: HashAlgorithm::Sha512,
                }),
            },
            interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
                display_text60: "Log in".into(),
            }]),
            request_properties: None,
            capabilities: None,
            nonce: None,
        }
    }

    #[tokio::test]
    async fn talks_the_wire_format() {
        use crate::api::types::*;
        let seen = Seen::default();
        let c = client(&stand_in_server(seen.clone()).await);

        let req = auth_request();
        let r = c
            .device_link_authentication(&AuthTarget::Anonymous, &req)
            .await
            .unwrap();
        assert_eq!(r.session_token, "wGIrqveE6AuGDATZKmR1mtAZ");
        {
            let s = seen.lock().unwrap();
            assert_eq!(s[0].0, "POST");
            assert_eq!(s[0].1, "/api/v3/authentication/device-link/anonymous");
            assert_eq!(s[0].2, serde_json::to_value(&req).unwrap());
            assert_eq!(
                s[0].2["relyingPartyUUID"],
                "00000000-0000-4000-8000-000000000000"
            );
        }

        let sreq = NotificationSigningRequest {
            relying_party_uuid: req.relying_party_uuid.clone(),
            relying_party_name: "DEMO".into(),
            certificate_level: None,
            signature_protocol: SignSignatureProtocol::RawDigestSignature,
            signature_protocol_parameters: SignSignatureProtocolParameters {
                digest: base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    [7u8; 32],
                ),
                signature_algorithm: SignatureAlgorithm::Sha256WithRsaEncryption,
                signature_algorithm_parameters: None,
            },
            nonce: None,
            interactions: req.interactions.clone(),
            request_properties: None,
            capabilities: None,
        };
        let r = c
            .notification_signature(&UserRef::Etsi("PNOEE-30303039914".into()), &sreq)
            .await
            .unwrap();
        assert_eq!(r.vc.value, "4927");
        assert_eq!(
            seen.lock().unwrap()[1].1,
            "/api/v3/signature/notification/etsi/PNOEE-30303039914"
        );

        // A 404 problem document comes back as such.
        let e = c
            .signing_certificate(
                "PNOEE-30303039914-MOCK-Q",
                &SigningCertificateRequest {
                    relying_party_uuid: req.relying_party_uuid.clone(),
                    relying_party_name: "DEMO".into(),
                    certificate_level: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "HTTP 404 Not Found: Not Found");
        assert_eq!(
            seen.lock().unwrap()[2].1,
            "/api/v3/signature/certificate/PNOEE-30303039914-MOCK-Q"
        );

        // Long poll: RUNNING, then COMPLETE; timeoutMs in the query.
        let mut running = 0;
        let st = c
            .wait_for_completion("56e1c1d0-dc07-4c71-890b-6200856b8c75", Some(1000), |_| {
                running += 1
            })
            .await
            .unwrap();
        assert_eq!(running, 1);
        assert_eq!(st.result.unwrap().end_result, EndResult::UserRefused);
        assert_eq!(
            seen.lock().unwrap()[3].1,
            "/api/v3/session/56e1c1d0-dc07-4c71-890b-6200856b8c75?timeoutMs=1000"
        );

        // Invalid requests and timeouts never leave the client.
        let mut bad = req.clone();
        bad.relying_party_uuid = "nope".into();
        assert!(matches!(
            c.device_link_authentication(&AuthTarget::Anonymous, &bad)
                .await,
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            c.session_status("x", Some(999)).await,
            Err(Error::InvalidRequest(_))
        ));
        assert_eq!(seen.lock().unwrap().len(), 5);
    }

    #[test]
    fn problem_bodies_become_problem_errors() {
        let url = Url::parse("http://x/v3/session/abc").unwrap();
        let body = br#"{"type":"about:blank","title":"Not Found","status":404,"detail":"Session not found"}"#;
        match decode_body::<SessionStatusResponse>(&url, 404, body) {
            Err(Error::Problem { status, problem }) => {
                assert_eq!(status, 404);
                assert_eq!(problem.detail, "Session not found");
            }
            other => panic!("{other:?}"),
        }
        match decode_body::<SessionStatusResponse>(&url, 502, b"<html>bad gateway</html>") {
            Err(Error::UnexpectedResponse { status, detail, .. }) => {
                assert_eq!(status, 502);
                assert!(detail.contains("bad gateway"));
            }
            other => panic!("{other:?}"),
        }
        let ok: SessionStatusResponse = decode_body(&url, 200, br#"{"state":"RUNNING"}"#).unwrap();
        assert_eq!(ok.state, SessionState::Running);
        assert!(matches!(
            decode_body::<SessionStatusResponse>(&url, 200, b"{}"),
            Err(Error::UnexpectedResponse { status: 200, .. })
        ));
    }
}
