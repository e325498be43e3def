//! The app's side of REST (RP API v3) sessions: what a pending session shows, presenting a
//! device link, and checking an ACSP_V2 answer before the share is judged.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::OsRng;
use tandem_client_core::encoding::{self, HashAlgorithm, SignatureScheme};
use tandem_client_core::hazmat;
use tandem_proto::v1 as pb;
use tandem_rp::api::device_link::{AuthCodeContext, LinkError, ParsedLink, SessionBinding};
use tandem_rp::api::session::{self, SessionParams, TargetOutcome};
use tandem_rp::api::types::{self, FlowType, InteractionType, SignatureAlgorithm};
use tracing::info;

use super::{ApiError, App, now};
use crate::store::{self, Account, ClaimResult, RpSession};

/// The client-core hash for an RP API hash (every one of the spec, SHA-2 and SHA-3).
pub(crate) fn core_hash(h: types::HashAlgorithm) -> HashAlgorithm {
    h.into()
}

/// PSS for `rsassa-pss`, PKCS#1 v1.5 for the `sha*WithRSAEncryption` names.
pub(crate) fn core_scheme(a: SignatureAlgorithm) -> SignatureScheme {
    match a {
        SignatureAlgorithm::RsassaPss => SignatureScheme::Pss,
        _ => SignatureScheme::Pkcs1v15,
    }
}

/// The stored parameters of a session.
pub(crate) fn params_of(s: &RpSession) -> Result<SessionParams, ApiError> {
    SessionParams::parse(&s.params).map_err(|e| ApiError::Internal(format!("session params: {e}")))
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

/// The device's address to save with a session: only when the relying party asked for it
/// (openapi.yml `RequestProperties`: "The IP address is saved to the RP session when
/// `person` reacts to the `RpRequest` with one of its mobile devices"; a relying party may
/// ask only with the operator's permission, checked at the start). Nothing is kept for a
/// session that did not ask. IPv4 addresses seen through an IPv6 socket are written as IPv4.
fn shared_device_ip(p: &SessionParams, device_ip: Option<IpAddr>) -> Option<String> {
    device_ip
        .filter(|_| p.share_ip)
        .map(|ip| ip.to_canonical().to_string())
}

/// How a confirmation of a REST session proceeds.
pub(crate) enum RpConfirm {
    /// Not a REST session: the gRPC path as before.
    Grpc,
    /// Certificate choice: no share; completes with this account's certificate. `outcome`
    /// is the app's answer to record with the completion, when there is something to add
    /// (the device's address, if the relying party asked for it).
    CertificateChoice { outcome: Option<String> },
    /// Judge the share against this `x` (the app's own for ACSP_V2). `outcome` is the
    /// app's answer (interaction used, user challenge) for the session's result: it is
    /// written with the signature, in the same database transaction, and read only for an
    /// OK result.
    Sign {
        x: Vec<u8>,
        vc_choice: bool,
        outcome: String,
    },
    /// The app's answer contradicts the session: end it with PROTOCOL_FAILURE.
    ProtocolFailure,
}

/// Checks the REST parts of a confirmation and returns the app's answer to be recorded with
/// the signature; nothing here writes to the database or counts a PIN attempt. `device_ip`
/// (the address the app called from) is part of the answer when the relying party asked for
/// it.
pub(crate) fn check_confirm(
    app: &App,
    acc: &Account,
    t: &store::TxForAccount,
    req: &pb::ConfirmRequest,
    composite_modulus: &[u8],
    device_ip: Option<IpAddr>,
) -> Result<RpConfirm, ApiError> {
    let Some(s) = app.store.rp_session(&t.tx.id)? else {
        return Ok(RpConfirm::Grpc);
    };
    let p = params_of(&s)?;
    let device_ip_address = shared_device_ip(&p, device_ip);
    if s.session_type == session::CERT {
        let outcome = match device_ip_address {
            Some(ip) => {
                let mut o =
                    TargetOutcome::parse(app.store.target_outcome(&t.tx.id, &acc.id)?.as_deref());
                o.device_ip_address = Some(ip);
                Some(o.to_json())
            }
            None => None,
        };
        return Ok(RpConfirm::CertificateChoice { outcome });
    }
    let used: InteractionType =
        serde_json::from_value(serde_json::Value::String(req.interaction_type_used.clone()))
            .map_err(|_| ApiError::InvalidArgument("interaction_type_used is unknown".into()))?;
    let flow = match s.flow.as_str() {
        session::FLOW_DEVICE_LINK => types::InteractionFlow::DeviceLink,
        session::FLOW_LINKED => types::InteractionFlow::LinkedNotification,
        _ => types::InteractionFlow::Notification,
    };
    let list = types::decode_interactions(&p.interactions, flow)
        .map_err(|e| ApiError::Internal(format!("stored interactions: {e}")))?;
    if !list.iter().any(|i| i.interaction_type() == used) {
        return Err(ApiError::InvalidArgument(
            "interaction_type_used is not one the relying party asked for".into(),
        ));
    }
    let mut outcome = TargetOutcome::parse(app.store.target_outcome(&t.tx.id, &acc.id)?.as_deref());
    let flow_type = *outcome.flow_type.get_or_insert(FlowType::Notification);
    outcome.interaction_type_used = Some(used);
    if device_ip_address.is_some() {
        outcome.device_ip_address = device_ip_address;
    }
    let vc_choice = used == InteractionType::ConfirmationMessageAndVerificationCodeChoice;
    let x = if p.signature_protocol.as_deref() == Some("ACSP_V2") {
        let uc = &req.user_challenge;
        if uc.len() != 43
            || !uc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ApiError::InvalidArgument(
                "user_challenge must be 43 Base64URL characters".into(),
            ));
        }
        outcome.user_challenge = Some(uc.clone());
        let (Some(alg), Some(hash)) = (p.signature_algorithm, p.hash_algorithm) else {
            return Err(ApiError::Internal(
                "ACSP_V2 session without algorithm".into(),
            ));
        };
        let callback = matches!(flow_type, FlowType::Web2App | FlowType::App2App)
            .then_some(p.initial_callback_url.as_deref())
            .flatten();
        let digest = tandem_rp::api::acsp::acsp_v2_digest(
            &tandem_rp::api::acsp::AcspV2Fields {
                scheme_name: &app.config.rp_api.scheme_name,
                server_random: p.server_random.as_deref().unwrap_or_default(),
                rp_challenge: p.rp_challenge.as_deref().unwrap_or_default(),
                user_challenge: uc,
                relying_party_name: &p.relying_party_name,
                brokered_rp_name: None,
                interactions: &p.interactions,
                interaction_type_used: used,
                initial_callback_url: callback,
                flow_type,
            },
            hash,
        );
        let bits = hazmat::bit_length(composite_modulus);
        if encoding::verify_encoding(
            core_scheme(alg),
            core_hash(hash),
            &digest,
            &req.encoded_message,
            bits,
        )
        .is_err()
        {
            info!(session_id = %t.tx.id, "ACSP_V2 message does not encode the derived digest");
            return Ok(RpConfirm::ProtocolFailure);
        }
        req.encoded_message.clone()
    } else {
        t.encoded_message.clone()
    };
    Ok(RpConfirm::Sign {
        x,
        vc_choice,
        outcome: outcome.to_json(),
    })
}

/// The end result (and refused interaction) of a refusal.
pub(crate) fn refusal(
    app: &App,
    account_id: &str,
    transaction_id: &str,
    req: &pb::RefuseRequest,
) -> Result<(store::EndResult, Option<String>), ApiError> {
    let reason = pb::RefuseReason::try_from(req.reason)
        .map_err(|_| ApiError::InvalidArgument("unknown refuse reason".into()))?;
    let rest = app.store.rp_session(transaction_id)?;
    // USER_REFUSED_CERT_CHOICE says the person declined to pick an account: only a
    // certificate choice can end that way.
    if reason == pb::RefuseReason::CertChoice
        && rest
            .as_ref()
            .is_none_or(|s| s.session_type != session::CERT)
    {
        return Err(ApiError::InvalidArgument(
            "the certificate-choice refusal reason is only for certificate-choice sessions".into(),
        ));
    }
    Ok(match (reason, rest) {
        (pb::RefuseReason::User, _) | (_, None) => (store::EndResult::UserRefused, None),
        (pb::RefuseReason::Interaction, Some(s)) => {
            let p = params_of(&s)?;
            let named = tandem_rp::api::types::decode_interactions(
                &p.interactions,
                types::InteractionFlow::Notification,
            )
            .map_err(|e| ApiError::Internal(format!("stored interactions: {e}")))?
            .iter()
            .any(|i| i.interaction_type().as_str() == req.interaction);
            if !named {
                return Err(ApiError::InvalidArgument(
                    "the refused interaction is not one of the session's".into(),
                ));
            }
            (
                store::EndResult::UserRefusedInteraction,
                Some(req.interaction.clone()),
            )
        }
        (pb::RefuseReason::InteractionNotSupported, Some(_)) => {
            (store::EndResult::RequiredInteractionNotSupportedByApp, None)
        }
        (pb::RefuseReason::CertChoice, Some(_)) => (store::EndResult::UserRefusedCertChoice, None),
        (pb::RefuseReason::ExpectedLinkedSession, Some(s)) => {
            // Only an app that has just answered a device-link certificate choice waits for a
            // linked session, and the linked session itself is not "another" one.
            let window = i64::from(app.config.timeouts.transaction_seconds);
            let awaited = app
                .store
                .recent_device_link_certificate_choice(account_id, now() - window)?;
            let linked_to_it = awaited.is_some()
                && params_of(&s)?.linked_session_id.as_deref() == awaited.as_deref();
            if awaited.is_none() || linked_to_it {
                return Err(ApiError::InvalidArgument(
                    "this app is not waiting for a linked signing session".into(),
                ));
            }
            (store::EndResult::ExpectedLinkedSession, None)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_rp::api::level::CertificateLevel;

    fn params(share_ip: bool) -> SessionParams {
        SessionParams {
            signature_protocol: None,
            rp_challenge: None,
            server_random: None,
            digest: None,
            signature_algorithm: None,
            hash_algorithm: None,
            relying_party_name: "Bank".into(),
            interactions: String::new(),
            initial_callback_url: None,
            certificate_level: CertificateLevel::Qualified,
            share_ip,
            ignored_properties: Vec::new(),
            linked_session_id: None,
        }
    }

    #[test]
    fn the_device_address_is_kept_only_for_a_session_that_asked_for_it() {
        let v4: IpAddr = "203.0.113.34".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.34".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(
            shared_device_ip(&params(true), Some(v4)).as_deref(),
            Some("203.0.113.34")
        );
        // An IPv4 client seen through a dual-stack socket is reported as IPv4.
        assert_eq!(
            shared_device_ip(&params(true), Some(mapped)).as_deref(),
            Some("203.0.113.34")
        );
        assert_eq!(
            shared_device_ip(&params(true), Some(v6)).as_deref(),
            Some("2001:db8::7")
        );
        assert_eq!(shared_device_ip(&params(true), None), None);
        assert_eq!(shared_device_ip(&params(false), Some(v4)), None);
    }
}
