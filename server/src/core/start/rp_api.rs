//! The RP API v3's own rules of a start: the certificate level, the linked session, the
//! session with its device-link token and secret.

use tandem_client_core::types::KeyType;
use tandem_rp::api::level::CertificateLevel;
use tandem_rp::api::session;

use super::{Flow, RestStart, StartRefused, StartRequest};
use crate::core::certificate::{latest_certificate, level_reached};
use crate::core::{Rng, random_alphanumeric};
use crate::store::{Account, EndResult, RpSession, Store, TxKind};

/// Length of a device-link `sessionToken` (about 143 bits, as in the spec's examples; links
/// carry it without URL encoding).
const SESSION_TOKEN_LEN: usize = 24;
/// Length of a device-link `sessionSecret` (the authCode key), in bytes.
const SESSION_SECRET_LEN: usize = 32;

/// The accounts with a valid (not revoked) certificate of the key that reaches the
/// requested level; only they are asked. None is a refusal.
pub(super) fn suitable_accounts(
    store: &dyn Store,
    accounts: Vec<Account>,
    key_type: KeyType,
    wanted: CertificateLevel,
) -> Result<Vec<Account>, StartRefused> {
    let mut suitable = Vec::with_capacity(accounts.len());
    for a in accounts {
        if let Some(c) = latest_certificate(store, &a.id, key_type, true)?
            && wanted.is_met_by(level_reached(&c).map_err(StartRefused::Certificate)?)
        {
            suitable.push(a);
        }
    }
    if suitable.is_empty() {
        return Err(StartRefused::NoSuitableCertificate);
    }
    Ok(suitable)
}

/// overview_of_api_endpoints.txt: "Notification based certificate-choice cannot be connected
/// to notification based linked signature session endpoint with linkedSessionID"; openapi
/// `LinkedSessionID`: "sessionID of the previous device-link based certificate-choice
/// session". The linked session must be this relying party's device-link certificate choice,
/// completed OK by the account of `document`.
pub(super) fn check_linked(
    store: &dyn Store,
    rest: &RestStart,
    document: &str,
    linked: &str,
    now: i64,
) -> Result<(), StartRefused> {
    let ok = match store.rp_session(linked)? {
        Some(l)
            if l.rp_uuid == rest.rp_uuid
                && l.session_type == session::CERT
                && l.flow == session::FLOW_DEVICE_LINK =>
        {
            let lt = store.transaction(linked, now)?;
            let by = lt
                .answered_by
                .as_deref()
                .map(|a| store.account(a))
                .transpose()?;
            lt.end_result == Some(EndResult::Ok)
                && by.is_some_and(|a| a.document_number == document)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StartRefused::BadLinkedSession)
    }
}

/// The REST session: device-link flows get a `sessionToken` and a `sessionSecret`.
pub(super) fn rest_session(
    req: &StartRequest,
    rest: &RestStart,
    id: &str,
    restriction: Option<String>,
    now_ms: i64,
    rng: Rng<'_>,
) -> RpSession {
    let (token, secret) = if req.flow == Flow::DeviceLink {
        let mut secret = vec![0u8; SESSION_SECRET_LEN];
        rng.fill_bytes(&mut secret);
        (
            Some(random_alphanumeric(rng, SESSION_TOKEN_LEN)),
            Some(secret),
        )
    } else {
        (None, None)
    };
    RpSession {
        transaction_id: id.to_owned(),
        rp_uuid: rest.rp_uuid.clone(),
        session_type: match req.kind {
            TxKind::Authentication => session::AUTH,
            TxKind::Signature => session::SIGN,
            TxKind::CertificateChoice => session::CERT,
        }
        .into(),
        flow: req.flow.stored_name().into(),
        session_token: token,
        session_secret: secret,
        restriction,
        params: rest.params.clone(),
        request_hash: rest.request_hash.clone(),
        created_at_ms: now_ms,
    }
}
