//! The app's side of REST (RP API v3) sessions: what a pending session shows and presenting
//! a device link. The checks of a confirmation or refusal of a session are in the core
//! ([`crate::core::confirm`], [`crate::core::refuse`]).

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::OsRng;
use tandem_proto::v1 as pb;
use tandem_rp::api::device_link::{AuthCodeContext, LinkError, ParsedLink, SessionBinding};
use tandem_rp::api::session::{self, SessionParams, TargetOutcome};
use tandem_rp::api::types::FlowType;
use tracing::info;

use super::{ApiError, App, now};
use crate::store::{self, Account, ClaimResult, RpSession};

use crate::core::confirm::shared_device_ip;
pub(crate) use crate::core::confirm::{core_hash, core_scheme};

/// The stored parameters of a session.
pub(crate) fn params_of(s: &RpSession) -> Result<SessionParams, ApiError> {
    crate::core::confirm::params_of(s).map_err(ApiError::Internal)
}

/// The encoded message `x` of a RAW_DIGEST_SIGNATURE session for one composite modulus.
pub(crate) fn raw_digest_message(
    p: &SessionParams,
    composite_modulus: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let (Some(digest), Some(alg), Some(hash)) =
        (&p.digest, p.signature_algorithm, p.hash_algorithm)
    else {
        return Err(ApiError::Internal("signing session without digest".into()));
    };
    let digest = STANDARD
        .decode(digest)
        .map_err(|_| ApiError::Internal("stored digest is not Base64".into()))?;
    let d = crate::core::start::DigestToSign {
        hash: core_hash(hash),
        scheme: core_scheme(alg),
        digest,
    };
    crate::core::start::encode_message(&d, composite_modulus, &mut OsRng)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// What the app needs to show and sign a REST session.
pub(crate) fn context(
    app: &App,
    t: &store::TxForAccount,
    account_id: &str,
) -> Result<Option<pb::RpApiContext>, ApiError> {
    let Some(s) = app.store.rp_session(&t.tx.id)? else {
        return Ok(None);
    };
    let p = params_of(&s)?;
    let outcome = TargetOutcome::parse(app.store.target_outcome(&t.tx.id, account_id)?.as_deref());
    let flow_type = outcome.flow_type.unwrap_or(FlowType::Notification);
    Ok(Some(pb::RpApiContext {
        session_type: s.session_type.clone(),
        signature_protocol: p.signature_protocol.clone().unwrap_or_default(),
        scheme_name: app.config.rp_api.scheme_name.clone(),
        server_random: p.server_random.clone().unwrap_or_default(),
        rp_challenge: p.rp_challenge.clone().unwrap_or_default(),
        interactions: p.interactions.clone(),
        initial_callback_url: p.initial_callback_url.clone().unwrap_or_default(),
        flow_type: flow_type.as_str().to_owned(),
        signature_algorithm: p
            .signature_algorithm
            .map(|a| {
                serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .unwrap_or_default(),
        hash_algorithm: p
            .hash_algorithm
            .map(|h| h.as_str().to_owned())
            .unwrap_or_default(),
        verification_code: if s.flow == session::FLOW_DEVICE_LINK {
            String::new()
        } else {
            t.tx.verification_code.clone()
        },
        linked_session_id: p.linked_session_id.clone().unwrap_or_default(),
        callback: same_device_callback(app, &s, &p, flow_type, account_id)?,
    }))
}

/// The callback values the app needs at the end of a same-device flow (callback_urls.txt):
/// a Web2App / App2App session's own `initialCallbackUrl` and `sessionSecretDigest`; for a
/// linked signing, those of the certificate choice it follows when that choice was answered
/// through a Web2App / App2App link ("Callback URLs in linked notification based flows").
/// `None` for QR and notification flows, and once the session secret is erased.
fn same_device_callback(
    app: &App,
    s: &RpSession,
    p: &SessionParams,
    flow_type: FlowType,
    account_id: &str,
) -> Result<Option<pb::SameDeviceCallback>, ApiError> {
    let linked;
    let (session, params, flow) = match &p.linked_session_id {
        Some(id) => {
            let Some(choice) = app.store.rp_session(id)? else {
                return Ok(None);
            };
            let choice_params = params_of(&choice)?;
            let choice_flow =
                TargetOutcome::parse(app.store.target_outcome(id, account_id)?.as_deref())
                    .flow_type;
            linked = (choice, choice_params);
            (&linked.0, &linked.1, choice_flow)
        }
        None => (s, p, Some(flow_type)),
    };
    if !matches!(flow, Some(FlowType::Web2App | FlowType::App2App)) {
        return Ok(None);
    }
    let (Some(url), Some(secret)) = (&params.initial_callback_url, &session.session_secret) else {
        return Ok(None);
    };
    Ok(Some(pb::SameDeviceCallback {
        initial_callback_url: url.clone(),
        session_secret_digest: tandem_rp::api::acsp::session_secret_digest(secret),
    }))
}

fn link_error(e: LinkError) -> ApiError {
    match e {
        LinkError::Malformed(_) => ApiError::InvalidArgument(e.to_string()),
        LinkError::QrExpired | LinkError::QrFromFuture => {
            ApiError::FailedPrecondition(e.to_string())
        }
        _ => ApiError::PermissionDenied(e.to_string()),
    }
}

/// `ClaimDeviceLink`: check the link (authCode, age, session type), the person the session
/// is meant for, and bind the session to this account. Returns the transaction id.
///
/// `device_ip` is the address the app called from: saved with the session when the relying
/// party asked for it (`shareMdClientIpAddress`, see [`shared_device_ip`]).
pub(crate) fn claim(
    app: &App,
    acc: &Account,
    link: &str,
    device_ip: Option<IpAddr>,
) -> Result<String, ApiError> {
    if link.len() > 4096 {
        return Err(ApiError::InvalidArgument("device link is too long".into()));
    }
    let parsed = ParsedLink::parse(link).map_err(link_error)?;
    let s = app
        .store
        .rp_session_by_token(&parsed.session_token)?
        .ok_or_else(|| ApiError::NotFound("no session for this device link".into()))?;
    let secret = s
        .session_secret
        .clone()
        .ok_or_else(|| ApiError::FailedPrecondition("session is no longer running".into()))?;
    let p = params_of(&s)?;
    let binding = match s.session_type.as_str() {
        session::AUTH => SessionBinding::Auth {
            rp_challenge: p.rp_challenge.as_deref().unwrap_or_default(),
        },
        session::SIGN => SessionBinding::Sign {
            digest: p.digest.as_deref().unwrap_or_default(),
        },
        _ => SessionBinding::Cert,
    };
    let ctx = AuthCodeContext {
        scheme_name: &app.config.rp_api.scheme_name,
        binding,
        relying_party_name: &p.relying_party_name,
        brokered_rp_name: None,
        interactions: &p.interactions,
        initial_callback_url: p.initial_callback_url.as_deref(),
    };
    let now_ms = store::unix_now_ms();
    let elapsed = u64::try_from((now_ms - s.created_at_ms).max(0) / 1000).unwrap_or(0);
    let verified = parsed
        .verify(
            &app.config.rp_api.device_link_base,
            &ctx,
            &secret,
            elapsed,
            app.config.rp_api.max_qr_age_seconds,
        )
        .map_err(|e| {
            info!(session_id = %s.transaction_id, error = %e, "device link refused");
            link_error(e)
        })?;
    // A non-anonymous session may only be answered by the person it names.
    if let Some(r) = &s.restriction {
        let ok = match r.split_once(':') {
            Some(("document", doc)) => doc == acc.document_number,
            Some(("person", who)) => {
                who == format!("{}:{}", acc.identity.country, acc.identity.national_id)
            }
            _ => false,
        };
        if !ok {
            return Err(ApiError::PermissionDenied(
                "this session is meant for another person".into(),
            ));
        }
    }
    let t = app.store.transaction(&s.transaction_id, now())?;
    let x = if s.session_type == session::SIGN {
        let kp = app.store.key_pair(&acc.id, t.key_type)?;
        raw_digest_message(&p, &kp.composite_modulus)?
    } else {
        Vec::new()
    };
    let flow_type = match verified.link_type {
        tandem_rp::api::device_link::DeviceLinkType::Qr => FlowType::Qr,
        tandem_rp::api::device_link::DeviceLinkType::Web2App => FlowType::Web2App,
        tandem_rp::api::device_link::DeviceLinkType::App2App => FlowType::App2App,
    };
    let outcome = TargetOutcome {
        flow_type: Some(flow_type),
        device_ip_address: shared_device_ip(&p, device_ip),
        ..Default::default()
    };
    match app
        .store
        .claim_device_link(&s.transaction_id, &acc.id, &x, &outcome.to_json(), now())?
    {
        ClaimResult::Claimed | ClaimResult::AlreadyYours => Ok(s.transaction_id),
        ClaimResult::Taken => Err(ApiError::FailedPrecondition(
            "another device already answers this session".into(),
        )),
        ClaimResult::Closed => Err(ApiError::FailedPrecondition(
            "session is no longer running".into(),
        )),
    }
}
