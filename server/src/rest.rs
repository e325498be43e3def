//! The relying-party REST API, wire-compatible with the Smart-ID RP API v3.
//!
//! ```text
//!  POST {base}/authentication/{device-link,notification}/…  ─┐ relying party checked
//!  POST {base}/signature/{device-link,notification}/…        ├─▶ (UUID + name + IP, rate
//!  POST {base}/signature/certificate-choice/…, /certificate  ─┘  limit) → validate() →
//!                                                                  transaction + rp_session
//!  GET  {base}/session/{id}?timeoutMs=   long-poll until COMPLETE or the timeout
//! ```
//! Sessions are transactions of the same core as the gRPC relying-party service: the app
//! sees them in its pending list (notification flows) or after presenting the device link
//! (device-link flows), and answers with the same confirm / refuse calls.

// `Problem` is the error answer itself (built once per failed request, sent at once):
// boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::OsRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};
use tandem_client_core::types::KeyType;
use tandem_rp::api::acsp;
use tandem_rp::api::level::CertificateLevel;
use tandem_rp::api::problem::Problem;
use tandem_rp::api::session::{self, SessionParams, TargetOutcome};
use tandem_rp::api::types::{self as t, FlowType, SessionStatusResponse};
use tracing::{info, warn};

use crate::core::SystemClock;
use crate::core::certificate as core_cert;
use crate::core::start::{
    self as core_start, Api, DigestToSign, Flow, IdentifierType, Message, PersonId, RestStart,
    StartRefused, StartRequest, StartSettings, VcRule,
};
use crate::service::rp_device::{core_hash, core_scheme, params_of};
use crate::service::{ApiError, App};
use crate::store::{
    self, AccountState, KeyPairStatus, RelyingParty, RpCheck, RpSession, TxKind, TxState,
};
use crate::test_accounts::TestAccounts;

mod errors;
#[doc(hidden)]
pub mod fuzz_api;
pub mod mtls;
mod origin;
mod portal;
mod rp_certs;

use errors::{JsonBody, ProblemResponse};
use mtls::Client;

/// Largest accepted request body.
const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
struct Rest {
    app: Arc<App>,
    limiter: Arc<RateLimiter>,
    /// `rp_api.test_accounts`: the simulated phones of the test accounts.
    test_accounts: Option<TestAccounts>,
}

/// Token bucket per relying party (in memory, per process).
#[derive(Debug, Default)]
struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes a token; `Err(seconds)` when there is none: the whole seconds until the bucket
    /// holds one again (at least 1), for `Retry-After`.
    fn allow(&self, rp: &str, per_second: u32, burst: u32) -> Result<(), u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = map.entry(rp.to_owned()).or_insert((f64::from(burst), now));
        let refill = now.duration_since(*last).as_secs_f64() * f64::from(per_second);
        *tokens = (*tokens + refill).min(f64::from(burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / f64::from(per_second.max(1));
            // (1 - tokens) / rate: at most 1 s, as the rate is at least 1 per second.
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// The REST router under the configured base path (with the test accounts' device-link
/// endpoint when they are given).
pub fn router(app: Arc<App>, test_accounts: Option<TestAccounts>) -> Router {
    let base = app.config.rp_api.base_path.clone();
    let state = Rest {
        app,
        limiter: Arc::new(RateLimiter::default()),
        test_accounts,
    };
    // Tandem's own endpoints beside the RP API v3 (same listener and relying parties).
    let tandem = Router::new()
        .route(
            tandem_rp::documents::origin::ENDPOINT_PATH,
            post(origin::proof_of_origin),
        )
        .route(
            tandem_rp::api::portal::OVERVIEW_PATH,
            post(portal::overview),
        )
        .route(
            tandem_rp::api::portal::DELETE_ACCOUNT_PATH,
            post(portal::delete_account),
        )
        .route(tandem_rp::api::rp_certs::LIST_PATH, post(rp_certs::list))
        .route(
            tandem_rp::api::rp_certs::CANCEL_PATH,
            post(rp_certs::cancel),
        )
        .route(
            tandem_rp::api::rp_certs::REDEEM_PATH,
            post(rp_certs::redeem),
        )
        .route(
            tandem_rp::api::rp_certs::REVOKE_PATH,
            post(rp_certs::revoke),
        )
        .route(
            tandem_rp::api::rp_certs::CERTIFICATE_PATH,
            post(rp_certs::certificate),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Up to 1000 certificate requests in one body.
        .merge(
            Router::new()
                .route(
                    tandem_rp::api::rp_certs::CREATE_PATH,
                    post(rp_certs::create),
                )
                .layer(DefaultBodyLimit::max(rp_certs::MAX_CREATE_BODY)),
        )
        .with_state(state.clone());
    let api = Router::new()
        .route(
            "/authentication/device-link/anonymous",
            anonymous(Kind::AuthDeviceLink),
        )
        .route(
            "/authentication/device-link/etsi/{id}",
            named(Kind::AuthDeviceLink, false),
        )
        .route(
            "/authentication/device-link/document/{doc}",
            named(Kind::AuthDeviceLink, true),
        )
        .route(
            "/authentication/notification/etsi/{id}",
            named(Kind::AuthNotification, false),
        )
        .route(
            "/authentication/notification/document/{doc}",
            named(Kind::AuthNotification, true),
        )
        .route(
            "/signature/device-link/etsi/{id}",
            named(Kind::SignDeviceLink, false),
        )
        .route(
            "/signature/device-link/document/{doc}",
            named(Kind::SignDeviceLink, true),
        )
        .route(
            "/signature/notification/etsi/{id}",
            named(Kind::SignNotification, false),
        )
        .route(
            "/signature/notification/document/{doc}",
            named(Kind::SignNotification, true),
        )
        .route(
            "/signature/notification/linked/{doc}",
            named(Kind::SignLinked, true),
        )
        .route("/signature/certificate/{doc}", post(signing_certificate))
        .route(
            "/signature/certificate-choice/device-link/anonymous",
            anonymous(Kind::CertDeviceLink),
        )
        .route(
            "/signature/certificate-choice/notification/etsi/{id}",
            named(Kind::CertNotification, false),
        )
        .route("/session/{id}", get(session_status))
        .route("/test-accounts/device-link", post(test_account_scan))
        .fallback(|| async { ProblemResponse(Problem::not_found()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    Router::new()
        .nest(&base, api)
        .merge(tandem)
        .fallback(|| async { ProblemResponse(Problem::not_found()) })
        .layer(axum::middleware::map_response(
            errors::every_error_a_problem,
        ))
}

// ------------------------------------------------------------------ plumbing

/// A handler's answer; `?` turns a [`Problem`] into its HTTP answer.
type Answer = Result<Response, ProblemResponse>;

fn json<T: Serialize>(v: &T) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

/// Parses a body; malformed JSON and wrong types are 400 problems naming the place.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("Invalid request body: {e}")))
}

fn internal(e: impl std::fmt::Display) -> Problem {
    warn!(error = %e, "REST request failed");
    Problem::internal()
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::InvalidArgument(m) | ApiError::FailedPrecondition(m) => {
                Problem::bad_request(m)
            }
            ApiError::NotFound(_) => Problem::not_found(),
            ApiError::Unauthenticated(_) => Problem::unauthorized(),
            ApiError::PermissionDenied(m) => Problem::forbidden(m),
            ApiError::Internal(m) | ApiError::Aborted(m) | ApiError::Unavailable(m) => internal(m),
        }
    }
}

impl From<store::StoreError> for Problem {
    fn from(e: store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

/// Relying party check and its rate limit (429). Returns the relying party's registration.
///
/// api_details.txt: "RP API clients are authenticated based on their originating IP-address
/// and relyingPartyUUID protocol parameter combinations. When authentication fails, server
/// responds with HTTP error 401." An unknown UUID, a name not configured for it and an
/// address it may not call from therefore all get the same 401 problem: the caller learns
/// that the combination is wrong, not which part. The reason is logged here.
///
/// Then mutual TLS ([`crate::core::rp_mtls::check`]): the client certificate the
/// connection presented (if any) must be this relying party's, and the operator may
/// require one. This is the one place RP API requests are authenticated.
fn admit(rest: &Rest, uuid: &str, name: &str, client: &Client) -> Result<RelyingParty, Problem> {
    let from = client.addr.ip();
    let rp = match rest
        .app
        .store
        .authenticate_relying_party(uuid, name, from)?
    {
        RpCheck::Allowed(rp) => rp,
        RpCheck::Unknown => {
            info!(rp_uuid = uuid, %from, "REST request refused (401): unknown relyingPartyUUID or relyingPartyName");
            return Err(Problem::unauthorized());
        }
        RpCheck::AddressNotAllowed => {
            warn!(rp_uuid = uuid, %from, "REST request refused (401): the relying party may not call from this address");
            return Err(Problem::unauthorized());
        }
    };
    check_mtls(&rest.app, &rp.uuid, client)?;
    let cfg = &rest.app.config.rp_api;
    rest.limiter
        .allow(uuid, cfg.rate_limit_per_second, cfg.rate_limit_burst)
        .map_err(Problem::too_many_requests)?;
    Ok(rp)
}

/// The mutual-TLS check of a request for relying party `rp_uuid` (see [`admit`]).
fn check_mtls(app: &App, rp_uuid: &str, client: &Client) -> Result<(), Problem> {
    crate::core::rp_mtls::check(
        &*app.store,
        &app.ca.issuing_serial(),
        rp_uuid,
        client.cert.as_deref(),
        store::unix_now(),
    )
    .map_err(|r| mtls::refusal(rp_uuid, r))
}

/// SHA-256 over the path and the body as sent (the idempotency key).
fn request_hash(path: &str, body: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().to_vec()
}

async fn run<T: Send + 'static>(
    rest: &Rest,
    f: impl FnOnce(&App) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let app = Arc::clone(&rest.app);
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(internal)?
}

// ------------------------------------------------------------------ session start

#[derive(Debug, Clone)]
enum Target {
    Anonymous,
    Document(String),
    Etsi(String),
    Linked { document: String, linked: String },
}

#[derive(Debug)]
struct Start {
    kind: TxKind,
    flow: Flow,
    target: Target,
    rp_uuid: String,
    params: SessionParams,
    /// Raw digest (signing) for the transaction record.
    digest: Vec<u8>,
    request_hash: Vec<u8>,
}

/// The level an account's certificate reaches ([`core_cert::level_reached`]).
fn level_reached(c: &store::CertRecord) -> Result<CertificateLevel, Problem> {
    core_cert::level_reached(c).map_err(internal)
}

/// `PNO<CC>-<id>`, `PAS<CC>-<id>` or `IDC<CC>-<id>` → the person it names (only PNO
/// identifiers have accounts here).
fn parse_etsi(id: &str) -> Result<PersonId, Problem> {
    let bad = || Problem::bad_request("Invalid semantics identifier");
    if id.len() < 7 || id.len() > 64 || !id.is_ascii() {
        return Err(bad());
    }
    let (prefix, rest) = id.split_at(3);
    let (cc, nid) = rest.split_once('-').ok_or_else(bad)?;
    if cc.len() != 2
        || !cc.bytes().all(|b| b.is_ascii_uppercase())
        || nid.is_empty()
        || !nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad());
    }
    let id_type = match prefix {
        "PNO" => IdentifierType::Pno,
        "PAS" => IdentifierType::Pas,
        "IDC" => IdentifierType::Idc,
        _ => return Err(bad()),
    };
    Ok(PersonId {
        id_type,
        country: cc.to_owned(),
        national_id: nid.to_owned(),
    })
}

fn check_document(doc: &str) -> Result<(), Problem> {
    if doc.is_empty()
        || doc.len() > 64
        || !doc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Problem::bad_request("Invalid document number"));
    }
    Ok(())
}

/// The newest certificate of an account's key (`valid_only`: not revoked).
fn latest_certificate(
    app: &App,
    account_id: &str,
    key_type: KeyType,
    valid_only: bool,
) -> Result<Option<store::CertRecord>, Problem> {
    Ok(core_cert::latest_certificate(
        &*app.store,
        account_id,
        key_type,
        valid_only,
    )?)
}

/// The core's start request for a parsed REST request: the path's target checked in form,
/// the interactions' display text and VC choice, the message to sign.
fn core_request(s: &Start) -> Result<StartRequest, Problem> {
    let target = match &s.target {
        Target::Anonymous => core_start::Target::Anonymous,
        Target::Document(doc) => {
            check_document(doc)?;
            core_start::Target::Document(doc.clone())
        }
        Target::Linked { document, linked } => {
            check_document(document)?;
            core_start::Target::Linked {
                document: document.clone(),
                session_id: linked.clone(),
            }
        }
        Target::Etsi(id) => core_start::Target::Person(parse_etsi(id)?),
    };
    let interactions = if s.params.interactions.is_empty() {
        Vec::new()
    } else {
        let flow = match s.flow {
            Flow::DeviceLink => t::InteractionFlow::DeviceLink,
            Flow::Linked => t::InteractionFlow::LinkedNotification,
            Flow::Notification => t::InteractionFlow::Notification,
        };
        t::decode_interactions(&s.params.interactions, flow)?
    };
    let hash = s.params.hash_algorithm.map(core_hash);
    let scheme = s.params.signature_algorithm.map(core_scheme);
    let message = match (s.kind, hash, scheme) {
        (TxKind::Signature, Some(hash), Some(scheme)) => Message::Digest(DigestToSign {
            hash,
            scheme,
            digest: s.digest.clone(),
        }),
        (TxKind::Signature, _, _) => return Err(internal("signing session without digest")),
        (TxKind::Authentication, _, _) => Message::DeviceBuilt {
            hash: hash.unwrap_or(HashAlgorithm::Sha256),
            scheme: scheme.unwrap_or(SignatureScheme::Pss),
        },
        (TxKind::CertificateChoice, _, _) => Message::Nothing,
    };
    Ok(StartRequest {
        kind: s.kind,
        target,
        flow: s.flow,
        message,
        vc: VcRule::rp_api(s.kind, s.flow, s.params.rp_challenge.as_deref()),
        vc_choice: interactions.iter().any(|i| {
            i.interaction_type() == t::InteractionType::ConfirmationMessageAndVerificationCodeChoice
        }),
        relying_party_name: s.params.relying_party_name.clone(),
        display_text: interactions
            .first()
            .map(|i| i.display_text().to_owned())
            .unwrap_or_default(),
        timeout_seconds: None,
        api: Api::RpApiV3(RestStart {
            rp_uuid: s.rp_uuid.clone(),
            request_hash: s.request_hash.clone(),
            certificate_level: s.params.certificate_level,
            params: s.params.to_json(),
        }),
    })
}

/// Starts the session in the core (or finds the identical request's session) and answers
/// with its start response: 404 when no account qualifies, 400 for a bad linked session.
fn start_session(app: &App, s: Start) -> Result<serde_json::Value, Problem> {
    let request = core_request(&s)?;
    let settings = StartSettings::of(&app.config);
    let started = core_start::start(&*app.store, &settings, &request, &SystemClock, &mut OsRng)
        .map_err(|e| match e {
            StartRefused::NoSuchAccount | StartRefused::NoSuitableCertificate => {
                Problem::not_found()
            }
            StartRefused::BadLinkedSession => Problem::bad_request(e.to_string()),
            StartRefused::Store(e) => e.into(),
            other => internal(other),
        })?;
    let session = started
        .session
        .as_ref()
        .ok_or_else(|| internal("REST start without a session"))?;
    if started.repeated {
        info!(session_id = %started.transaction_id, "repeated request, same session");
    } else {
        for a in &started.notify {
            app.notify(a);
        }
        info!(
            session_id = %started.transaction_id,
            session_type = session.session_type,
            flow = session.flow,
            devices = started.notify.len(),
            "REST session started"
        );
    }
    start_response(app, session, &started.verification_code)
}

/// The start response of a stored session (also for a repeated request); `vc` is the
/// session's verification code.
fn start_response(app: &App, s: &RpSession, vc: &str) -> Result<serde_json::Value, Problem> {
    let v = if s.flow == session::FLOW_DEVICE_LINK {
        serde_json::to_value(t::DeviceLinkSessionResponse {
            session_id: s.transaction_id.clone(),
            session_token: s.session_token.clone().unwrap_or_default(),
            session_secret: STANDARD.encode(s.session_secret.as_deref().unwrap_or_default()),
            device_link_base: app.config.rp_api.device_link_base.clone(),
        })
    } else if s.session_type == session::SIGN && s.flow == session::FLOW_NOTIFICATION {
        serde_json::to_value(t::NotificationSigningResponse {
            session_id: s.transaction_id.clone(),
            vc: t::Vc {
                vc_type: t::VerificationCodeType::Numeric4,
                value: vc.to_owned(),
            },
        })
    } else {
        serde_json::to_value(t::SessionIdResponse {
            session_id: s.transaction_id.clone(),
        })
    };
    v.map_err(internal)
}

fn base_params(
    rp_name: &str,
    interactions: &str,
    callback: Option<&String>,
    level: CertificateLevel,
    props: Option<&t::RequestProperties>,
) -> SessionParams {
    SessionParams {
        signature_protocol: None,
        rp_challenge: None,
        server_random: None,
        digest: None,
        signature_algorithm: None,
        hash_algorithm: None,
        relying_party_name: rp_name.to_owned(),
        interactions: interactions.to_owned(),
        initial_callback_url: callback.cloned(),
        certificate_level: level,
        share_ip: props.is_some_and(t::RequestProperties::share_ip),
        ignored_properties: props.map(|p| p.ignored_properties()).unwrap_or_default(),
        linked_session_id: None,
    }
}

/// A request's `certificateLevel` (openapi.yml: `default: QUALIFIED`).
fn requested_level(l: Option<impl Into<CertificateLevel>>) -> CertificateLevel {
    l.map(Into::into).unwrap_or_default()
}

/// The request's hash: every `HashAlgorithm` of the spec (SHA-2 and SHA-3) is supported.
/// A validated request always names one (implied by `sha*WithRSAEncryption`, or in the
/// `signatureAlgorithmParameters` that `rsassa-pss` requires).
fn requested_hash(h: Option<t::HashAlgorithm>) -> Result<t::HashAlgorithm, Problem> {
    h.ok_or_else(|| {
        Problem::bad_request("Invalid signatureAlgorithmParameters: hashAlgorithm is missing")
    })
}

fn auth_params(
    rp_name: &str,
    p: &t::AuthSignatureProtocolParameters,
    interactions: &str,
    callback: Option<&String>,
    level: Option<t::AuthCertificateLevel>,
    props: Option<&t::RequestProperties>,
) -> Result<SessionParams, Problem> {
    let hash = requested_hash(p.hash_algorithm())?;
    Ok(SessionParams {
        signature_protocol: Some("ACSP_V2".into()),
        rp_challenge: Some(p.rp_challenge.clone()),
        server_random: Some(acsp::generate_server_random(&mut OsRng)),
        signature_algorithm: Some(p.signature_algorithm),
        hash_algorithm: Some(hash),
        ..base_params(
            rp_name,
            interactions,
            callback,
            requested_level(level),
            props,
        )
    })
}

fn sign_params(
    rp_name: &str,
    p: &t::SignSignatureProtocolParameters,
    interactions: &str,
    callback: Option<&String>,
    level: Option<t::SignCertificateLevel>,
    props: Option<&t::RequestProperties>,
) -> Result<(SessionParams, Vec<u8>), Problem> {
    let hash = requested_hash(p.hash_algorithm())?;
    let digest = STANDARD
        .decode(&p.digest)
        .map_err(|_| Problem::bad_request("Invalid digest"))?;
    Ok((
        SessionParams {
            signature_protocol: Some("RAW_DIGEST_SIGNATURE".into()),
            digest: Some(p.digest.clone()),
            signature_algorithm: Some(p.signature_algorithm),
            hash_algorithm: Some(hash),
            ..base_params(
                rp_name,
                interactions,
                callback,
                requested_level(level),
                props,
            )
        },
        digest,
    ))
}

/// The session-start endpoints (one request schema and flow each).
#[derive(Debug, Clone, Copy)]
enum Kind {
    AuthDeviceLink,
    AuthNotification,
    SignDeviceLink,
    SignNotification,
    SignLinked,
    CertDeviceLink,
    CertNotification,
}

type Rp = State<Rest>;
/// `(relyingPartyUUID, relyingPartyName, what to start)`.
type Parsed = (String, String, Start);

/// Every session start: parse and validate, check the relying party, then start (or find
/// the identical request's session) on a blocking thread.
async fn start(rest: Rest, client: Client, kind: Kind, target: Target, body: Bytes) -> Answer {
    let hash = request_hash(&format!("{kind:?}:{target:?}"), &body);
    let (uuid, name, start) = parse_start(kind, target, &body, hash)?;
    if start.flow != Flow::DeviceLink {
        tandem_rp::api::callback_url::refuse_in_notification_request(&body)?;
    }
    let rp = admit(&rest, &uuid, &name, &client)?;
    check_device_ip_sharing(&rp, &start.params)?;
    let v = run(&rest, move |app| start_session(app, start)).await?;
    Ok(json(&v))
}

/// changes.txt 3.2.2: "An exception is thrown immediately when IP address sharing is
/// requested by the RP, but sharing is forbidden by RP configuration" (openapi.yml 403:
/// "Relying Party has no permission to request MD client IP-address"). Sharing is forbidden
/// unless the operator allowed it for this relying party.
fn check_device_ip_sharing(rp: &RelyingParty, params: &SessionParams) -> Result<(), Problem> {
    if params.share_ip && !rp.device_ip_sharing {
        info!(
            rp_uuid = %rp.uuid,
            "REST request refused (403): shareMdClientIpAddress without the permission"
        );
        return Err(Problem::device_ip_sharing_forbidden());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn parsed(
    uuid: String,
    name: String,
    kind: TxKind,
    flow: Flow,
    target: Target,
    params: SessionParams,
    digest: Vec<u8>,
    request_hash: Vec<u8>,
) -> Parsed {
    let start = Start {
        kind,
        flow,
        target,
        rp_uuid: uuid.clone(),
        params,
        digest,
        request_hash,
    };
    (uuid, name, start)
}

#[allow(clippy::too_many_lines)]
fn parse_start(kind: Kind, target: Target, body: &Bytes, hash: Vec<u8>) -> Result<Parsed, Problem> {
    const AUTH: TxKind = TxKind::Authentication;
    const SIGN: TxKind = TxKind::Signature;
    const CERT: TxKind = TxKind::CertificateChoice;
    const DL: Flow = Flow::DeviceLink;
    const N: Flow = Flow::Notification;
    const FLOW_LINKED: Flow = Flow::Linked;
    Ok(match kind {
        Kind::AuthDeviceLink => {
            let r: t::DeviceLinkAuthenticationRequest = parse(body)?;
            r.validate()?;
            let p = auth_params(
                &r.relying_party_name,
                &r.signature_protocol_parameters,
                &r.interactions,
                r.initial_callback_url.as_ref(),
                r.certificate_level,
                r.request_properties.as_ref(),
            )?;
            parsed(
                r.relying_party_uuid,
                r.relying_party_name,
                AUTH,
                DL,
                target,
                p,
                Vec::new(),
                hash,
            )
        }
        Kind::AuthNotification => {
            let r: t::NotificationAuthenticationRequest = parse(body)?;
            r.validate()?;
            let p = auth_params(
                &r.relying_party_name,
                &r.signature_protocol_parameters,
                &r.interactions,
                None,
                r.certificate_level,
                r.request_properties.as_ref(),
            )?;
            parsed(
                r.relying_party_uuid,
                r.relying_party_name,
                AUTH,
                N,
                target,
                p,
                Vec::new(),
                hash,
            )
        }
        Kind::SignDeviceLink => {
            let r: t::DeviceLinkSigningRequest = parse(body)?;
            r.validate()?;
            let (p, d) = sign_params(
                &r.relying_party_name,
                &r.signature_protocol_parameters,
                &r.interactions,
                r.initial_callback_url.as_ref(),
                r.certificate_level,
                r.request_properties.as_ref(),
            )?;
            parsed(
                r.relying_party_uuid,
                r.relying_party_name,
                SIGN,
                DL,
                target,
                p,
                d,
                hash,
            )
        }
        Kind::SignNotification => {
            let r: t::NotificationSigningRequest = parse(body)?;
            r.validate()?;
            let (p, d) = sign_params(
                &r.relying_party_name,
                &r.signature_protocol_parameters,
                &r.interactions,
                None,
                r.certificate_level,
                r.request_properties.as_ref(),
            )?;
            parsed(
                r.relying_party_uuid,
                r.relying_party_name,
                SIGN,
                N,
                target,
                p,
                d,
                hash,
            )
        }
        Kind::SignLinked => {
            let r: t::NotificationSigningLinkedRequest = parse(body)?;
            r.validate()?;
            let (mut p, d) = sign_params(
                &r.relying_party_name,
                &r.signature_protocol_parameters,
                &r.interactions,
                None,
                r.certificate_level,
                r.request_properties.as_ref(),
            )?;
            p.linked_session_id = Some(r.linked_session_id.clone());
            let Target::Document(document) = target else {
                return Err(Problem::internal());
            };
            let target = Target::Linked {
                document,
                linked: r.linked_session_id.clone(),
            };
            parsed(
                r.relying_party_uuid,
                r.relying_party_name,
                SIGN,
                FLOW_LINKED,
                target,
                p,
                d,
                hash,
            )
        }
        Kind::CertDeviceLink | Kind::CertNotification => {
            let r: t::CertificateChoiceRequest = parse(body)?;
            r.validate()?;
            let p = base_params(
                &r.relying_party_name,
                "",
                r.initial_callback_url.as_ref(),
                requested_level(r.certificate_level),
                r.request_properties.as_ref(),
            );
            let flow = if matches!(kind, Kind::CertDeviceLink) {
                DL
            } else {
                N
            };
            parsed(
                r.relying_party_uuid,
                r.relying_party_name,
                CERT,
                flow,
                target,
                p,
                Vec::new(),
                hash,
            )
        }
    })
}

/// A start route without a path parameter.
fn anonymous(kind: Kind) -> axum::routing::MethodRouter<Rest> {
    post(move |State(r): Rp, c: Client, JsonBody(b): JsonBody| {
        start(r, c, kind, Target::Anonymous, b)
    })
}

/// A start route for `etsi/{id}` (`document == false`) or `document/{number}`.
fn named(kind: Kind, document: bool) -> axum::routing::MethodRouter<Rest> {
    post(
        move |State(r): Rp, c: Client, Path(p): Path<String>, JsonBody(b): JsonBody| {
            let target = if document {
                Target::Document(p)
            } else {
                Target::Etsi(p)
            };
            start(r, c, kind, target, b)
        },
    )
}

/// POST {base}/signature/certificate/{document-number}: synchronous.
/// Body of `POST {base}/test-accounts/device-link`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TestAccountScan {
    /// The device link as the relying party would show it (QR, Web2App, App2App).
    device_link: String,
    /// Which test account scans it (needed for anonymous sessions).
    document_number: Option<String>,
}

/// Test accounts (`rp_api.test_accounts`): a test account's phone "scans" a device link.
/// 404 when test accounts are off.
async fn test_account_scan(State(rest): Rp, JsonBody(b): JsonBody) -> Answer {
    let Some(accounts) = &rest.test_accounts else {
        return Err(Problem::not_found().into());
    };
    let r: TestAccountScan = parse(&b)?;
    use crate::test_accounts::LinkError;
    match accounts
        .scan(&r.device_link, r.document_number.as_deref())
        .await
    {
        Ok(doc) => Ok(json(&serde_json::json!({ "documentNumber": doc }))),
        Err(LinkError::NotReady) => Err(Problem::new(
            503,
            "Service Unavailable",
            "The test accounts are still being provisioned",
        )
        .into()),
        Err(e) => Err(Problem::bad_request(e.to_string()).into()),
    }
}

async fn signing_certificate(
    State(rest): Rp,
    client: Client,
    Path(doc): Path<String>,
    JsonBody(b): JsonBody,
) -> Answer {
    let r: t::SigningCertificateRequest = parse(&b)?;
    r.validate()?;
    check_document(&doc)?;
    admit(&rest, &r.relying_party_uuid, &r.relying_party_name, &client)?;
    let wanted = requested_level(r.certificate_level);
    let v = run(&rest, move |app| {
        let now = store::unix_now();
        let acc = app
            .store
            .account_by_document(&doc)
            .map_err(|_| Problem::not_found())?;
        if acc.state != AccountState::Active || acc.expires_at <= now {
            return Err(Problem::not_found());
        }
        let kp = app.store.key_pair(&acc.id, KeyType::Sign)?;
        let cert = latest_certificate(app, &acc.id, KeyType::Sign, true)?;
        let Some(cert) = cert else {
            return Err(Problem::not_found());
        };
        if !wanted.is_met_by(level_reached(&cert)?) {
            return Err(Problem::not_found());
        }
        // openapi.yml `CertificateResponse`: `DOCUMENT_UNUSABLE` - "this request cannot be
        // completed", with the example "Signing key currently not usable"
        // (`CertificateTimelockedResponseExample`): a signing key that is locked for now or
        // disabled for good gives no certificate, as a signing session would end
        // DOCUMENT_UNUSABLE.
        let usable = kp.status != KeyPairStatus::Disabled && !kp.is_locked(now);
        Ok(t::CertificateResponse {
            state: if usable {
                t::CertificateState::Ok
            } else {
                t::CertificateState::DocumentUnusable
            },
            cert: usable.then(|| t::Cert {
                value: STANDARD.encode(&cert.der),
                certificate_level: cert.level.clone(),
            }),
        })
    })
    .await?;
    Ok(json(&v))
}

// ------------------------------------------------------------------ session status

#[derive(Debug, serde::Deserialize)]
struct StatusQuery {
    #[serde(rename = "timeoutMs")]
    timeout_ms: Option<String>,
}

fn end_result(r: store::EndResult) -> t::EndResult {
    use store::EndResult as E;
    match r {
        E::Ok => t::EndResult::Ok,
        E::UserRefused => t::EndResult::UserRefused,
        E::Timeout => t::EndResult::Timeout,
        E::WrongVc => t::EndResult::WrongVc,
        E::DocumentUnusable => t::EndResult::DocumentUnusable,
        E::ServerError => t::EndResult::ServerError,
        E::UserRefusedInteraction => t::EndResult::UserRefusedInteraction,
        E::RequiredInteractionNotSupportedByApp => {
            t::EndResult::RequiredInteractionNotSupportedByApp
        }
        E::ProtocolFailure => t::EndResult::ProtocolFailure,
        E::UserRefusedCertChoice => t::EndResult::UserRefusedCertChoice,
        E::ExpectedLinkedSession => t::EndResult::ExpectedLinkedSession,
    }
}

/// `None` while running; the response once complete. A session that never existed, is not
/// a REST session, or whose result retention ran out is 404.
fn status_once(app: &App, id: &str) -> Result<(Option<SessionStatusResponse>, i64), Problem> {
    let now = store::unix_now();
    let s = app
        .store
        .rp_session(id)?
        .ok_or_else(Problem::session_not_found)?;
    let tx = app.store.transaction(id, now)?;
    if tx.state == TxState::Running {
        return Ok((None, tx.expires_at));
    }
    let (detail, completed_at) = app.store.completion(id)?;
    if completed_at.is_some_and(|c| c + app.config.rp_api.result_retention_seconds < now) {
        return Err(Problem::session_not_found());
    }
    let p = params_of(&s)?;
    let result = tx
        .end_result
        .map(end_result)
        .unwrap_or(t::EndResult::ServerError);
    let ignored = (!p.ignored_properties.is_empty()).then(|| p.ignored_properties.clone());
    if result != t::EndResult::Ok {
        let mut r = SessionStatusResponse::failed(
            result,
            detail.map(|d| t::ResultDetails {
                interaction: Some(d),
            }),
        );
        r.ignored_properties = ignored;
        return Ok((Some(r), tx.expires_at));
    }
    let account_id = tx
        .answered_by
        .clone()
        .ok_or_else(|| internal("OK without an answering account"))?;
    let acc = app.store.account(&account_id)?;
    let outcome = TargetOutcome::parse(app.store.target_outcome(id, &account_id)?.as_deref());
    let cert = latest_certificate(app, &account_id, tx.key_type, false)?
        .ok_or_else(|| internal("account without certificate"))?;
    let flow_type = outcome.flow_type.unwrap_or(FlowType::Notification);
    let alg_params = p
        .hash_algorithm
        .map(t::SignatureAlgorithmParametersInResponse::rsassa_pss);
    let value = STANDARD.encode(tx.signature.as_deref().unwrap_or_default());
    let (protocol, signature) = match p.signature_protocol.as_deref() {
        Some("ACSP_V2") => (
            Some(t::SignatureProtocol::AcspV2),
            t::Signature::AcspV2(t::AcspV2Signature {
                value,
                server_random: p.server_random.clone().unwrap_or_default(),
                user_challenge: outcome.user_challenge.clone().unwrap_or_default(),
                flow_type,
                signature_algorithm: p
                    .signature_algorithm
                    .unwrap_or(t::SignatureAlgorithm::RsassaPss),
                signature_algorithm_parameters: alg_params
                    .filter(|_| p.signature_algorithm == Some(t::SignatureAlgorithm::RsassaPss)),
            }),
        ),
        Some(_) => (
            Some(t::SignatureProtocol::RawDigestSignature),
            t::Signature::RawDigest(t::RawDigestSignature {
                value,
                flow_type,
                signature_algorithm: p
                    .signature_algorithm
                    .unwrap_or(t::SignatureAlgorithm::RsassaPss),
                signature_algorithm_parameters: alg_params
                    .filter(|_| p.signature_algorithm == Some(t::SignatureAlgorithm::RsassaPss)),
            }),
        ),
        None => (
            None,
            t::Signature::CertificateChoice(t::CertificateChoiceSignature { flow_type }),
        ),
    };
    Ok((
        Some(SessionStatusResponse {
            state: t::SessionState::Complete,
            result: Some(t::SessionResult {
                end_result: t::EndResult::Ok,
                document_number: Some(acc.document_number),
                details: None,
            }),
            signature_protocol: protocol,
            signature: Some(signature),
            cert: Some(t::Cert {
                value: STANDARD.encode(&cert.der),
                certificate_level: cert.level,
            }),
            interaction_type_used: outcome.interaction_type_used,
            device_ip_address: if p.share_ip {
                outcome.device_ip_address
            } else {
                None
            },
            ignored_properties: ignored,
        }),
        tx.expires_at,
    ))
}

/// The `timeoutMs` of a status query as axum extracted it (1000..=120000, default 60500).
fn status_timeout(
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<u64, Problem> {
    let Query(q) = query.map_err(|_| Problem::bad_request("Invalid query"))?;
    let timeout = match q.timeout_ms.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            Problem::from(t::ValidationError::new(
                "timeoutMs",
                "must be a whole number",
            ))
        })?),
    };
    Ok(t::session_timeout_ms(timeout)?)
}

/// GET {base}/session/{id}?timeoutMs=: waits until the session completes or `timeoutMs`
/// (1000..=120000, default 60500) passes, then answers RUNNING.
async fn session_status(
    State(rest): Rp,
    client: Client,
    Path(id): Path<String>,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let timeout = status_timeout(query)?;
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(Problem::session_not_found().into());
    }
    // The session's relying party: its mutual-TLS rule holds for the status too.
    let id2 = id.clone();
    run(&rest, move |app| match app.store.rp_session(&id2)? {
        Some(s) => check_mtls(app, &s.rp_uuid, &client),
        None => Ok(()),
    })
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout);
    let mut events = rest.app.events.subscribe();
    loop {
        let id2 = id.clone();
        let (done, expires_at) = run(&rest, move |app| status_once(app, &id2)).await?;
        if let Some(r) = done {
            return Ok(json(&r));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(json(&SessionStatusResponse::running()));
        }
        // Wake on any device answer, at the session's expiry, or at the deadline.
        let to_expiry = u64::try_from(expires_at - store::unix_now() + 1)
            .map(Duration::from_secs)
            .unwrap_or(Duration::ZERO);
        let wake = deadline.min(now + to_expiry.max(Duration::from_millis(200)));
        tokio::select! {
            _ = events.recv() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

// ------------------------------------------------------------------ listener

/// The client's address, for the relying-party IP check.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, PlainListener>>
    for PeerAddr
{
    fn connect_info(s: axum::serve::IncomingStream<'_, PlainListener>) -> Self {
        Self(*s.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for PeerAddr
{
    fn connect_info(s: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Self(*s.remote_addr())
    }
}

/// Plain TCP with `TCP_NODELAY`: small responses must not wait for delayed ACKs (Nagle).
#[derive(Debug)]
pub struct PlainListener(tokio::net::TcpListener);

impl PlainListener {
    /// Wraps a bound listener.
    pub fn new(listener: tokio::net::TcpListener) -> Self {
        Self(listener)
    }
}

impl axum::serve::Listener for PlainListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = tcp.set_nodelay(true);
        (tcp, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP listener that completes TLS handshakes before handing out connections. Handshakes
/// run concurrently in their own tasks (bounded by [`HANDSHAKE_TIMEOUT`]), so a client that
/// stalls its handshake delays nobody else.
#[allow(missing_debug_implementations)]
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
    accepter: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepter.abort();
    }
}

/// How long a client may take for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN protocols of the REST listener, in the server's order of preference: HTTP/2, then
/// HTTP/1.1. A client that offers neither (or no ALPN at all) gets HTTP/1.1.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

impl TlsListener {
    /// TLS with the server's certificate chain and key (PEM). Clients are asked for a
    /// certificate chaining to one of `client_anchors` (DER; none: no client certificates
    /// asked for), but need not present one ([`mtls::client_verifier`]). Call inside the
    /// runtime: it starts the accepting task.
    pub fn new(
        inner: tokio::net::TcpListener,
        cert_pem: &[u8],
        key_pem: &[u8],
        client_anchors: &[Vec<u8>],
    ) -> anyhow::Result<Self> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let mut config = if client_anchors.is_empty() {
            builder.with_no_client_auth()
        } else {
            builder.with_client_cert_verifier(mtls::client_verifier(client_anchors, provider)?)
        }
        .with_single_cert(certs, key)?;
        // api_details.txt: "both HTTP/1.1 and HTTP/2 protocols are supported". HTTP/2 over
        // TLS is chosen by ALPN (RFC 9113 §3.2); the connection builder behind `axum::serve`
        // (hyper-util's auto builder) then serves whichever protocol the client speaks.
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let local = inner.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let accepter = tokio::spawn(async move {
            loop {
                let (tcp, addr) = match inner.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small responses must not wait for delayed ACKs (Nagle).
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => info!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => info!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local,
            accepter,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accepting task never ends on its own; only shutdown gets here.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves the REST API on `listener` (HTTPS when `tls` holds the PEM cert and key) until
/// `stop` resolves. Over HTTPS, clients may present a certificate of our CA (root or
/// issuing CA as anchors) for mutual TLS ([`mtls`]).
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    tls: Option<(Vec<u8>, Vec<u8>)>,
    test_accounts: Option<TestAccounts>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use der::Encode as _;
    let anchors = vec![app.ca.root_cert.to_der()?, app.ca.issuing_cert.to_der()?];
    let router = router(app, test_accounts).layer(axum::middleware::from_fn(mtls::attach));
    match tls {
        Some((cert, key)) => {
            let l = TlsListener::new(listener, &cert, &key, &anchors)?;
            axum::serve(
                l,
                router.into_make_service_with_connect_info::<mtls::Connection>(),
            )
            .with_graceful_shutdown(stop)
            .await?;
        }
        None => {
            axum::serve(
                PlainListener(listener),
                router.into_make_service_with_connect_info::<mtls::Connection>(),
            )
            .with_graceful_shutdown(stop)
            .await?;
        }
    }
    Ok(())
}
