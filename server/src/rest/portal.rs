//! `POST /tandem/v1/portal/overview` and `POST /tandem/v1/portal/delete-account` on the RP
//! API listener (beside the `/v3` base path): the self-service portal, a relying party with
//! the operator's `portal` permission, identified as in the RP API v3; the decisions in
//! [`crate::core::portal`].
//!
//! | answer | when |
//! |---|---|
//! | 200 | the overview; the deletion `{deleted, revokedCertificates}` |
//! | 400 | malformed body, a field out of bounds, not an AUTH session |
//! | 401 | unknown relyingPartyUUID / relyingPartyName / address (as the RP API v3) |
//! | 403 | the relying party has no `portal` permission |
//! | 404 | no such session, or another relying party's (the same answer); deletion: no such |
//! |     | account of the holder (another person's, unknown, deleted) |
//! | 409 | the session is still running or did not end OK; deletion: session used already |
//! | 410 | the authentication completed too long ago (`rp_api.portal_session_seconds` for |
//! |     | the overview, `rp_api.max_auth_age_seconds` for a deletion) |
//! | 503 | the store is unavailable |

use axum::extract::State;
use tandem_rp::api::portal::{PortalDeleteAccountRequest, PortalOverviewRequest};
use tandem_rp::api::problem::Problem;
use tracing::info;

use super::origin::session_refused;
use super::{Answer, Rest, admit, internal, json, parse, run};
use crate::core::SystemClock;
use crate::core::account;
use crate::core::portal::{self, PortalRefused, PortalSettings};
use crate::service::App;
use crate::store::{PortalDeletion, RelyingParty, StoreError};

fn refused(e: PortalRefused) -> Problem {
    match e {
        PortalRefused::Session(e) => session_refused(e),
        PortalRefused::NoSuchAccount => {
            Problem::new(404, "Not Found", "The holder has no such account")
        }
        PortalRefused::AlreadyUsed => Problem::new(
            409,
            "Authentication already used",
            "This authentication session was used for a deletion already",
        ),
        PortalRefused::Store(StoreError::Db(e)) => {
            internal(&e);
            Problem::new(503, "Service Unavailable", "Try again later")
        }
        PortalRefused::Store(e) => e.into(),
        PortalRefused::Internal(m) => internal(m),
    }
}

/// The relying party may use the portal endpoints.
fn permitted(rp: &RelyingParty) -> Result<(), Problem> {
    if rp.portal {
        return Ok(());
    }
    info!(rp_uuid = %rp.uuid, "portal request refused (403): no portal permission");
    Err(Problem::forbidden(
        "The relying party may not use the portal endpoints",
    ))
}

fn settings(app: &App) -> PortalSettings {
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    PortalSettings {
        portal_session_seconds: secs(app.config.rp_api.portal_session_seconds),
        max_auth_age_seconds: secs(app.config.rp_api.max_auth_age_seconds),
        lockout: app.config.lockout.clone(),
    }
}

/// `POST /tandem/v1/portal/overview`.
pub(super) async fn overview(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    let req: PortalOverviewRequest = parse(&body)?;
    req.validate().map_err(Problem::bad_request)?;
    let rp = admit(
        &rest,
        &req.relying_party_uuid,
        &req.relying_party_name,
        &client,
    )?;
    permitted(&rp)?;
    let session = req.auth_session_id.clone();
    let answer = run(&rest, move |app| {
        portal::overview(
            &*app.store,
            &settings(app),
            &rp.uuid,
            &req.auth_session_id,
            &SystemClock,
        )
        .map_err(refused)
    })
    .await;
    match answer {
        Ok(o) => {
            info!(auth_session_id = %session, accounts = o.accounts.len(), "portal overview");
            Ok(json(&o))
        }
        Err(p) => {
            info!(auth_session_id = %session, status = p.status, title = %p.title, "portal overview refused");
            Err(p.into())
        }
    }
}

/// `POST /tandem/v1/portal/delete-account`.
pub(super) async fn delete_account(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    let req: PortalDeleteAccountRequest = parse(&body)?;
    req.validate().map_err(Problem::bad_request)?;
    let rp = admit(
        &rest,
        &req.relying_party_uuid,
        &req.relying_party_name,
        &client,
    )?;
    permitted(&rp)?;
    let session = req.auth_session_id.clone();
    let answer = run(&rest, move |app| {
        let deletion = PortalDeletion {
            auth_session_id: &req.auth_session_id,
            rp_uuid: &rp.uuid,
        };
        let delete = |account_id: &str| {
            account::delete_for_portal(&*app.store, &app.hsm, account_id, &deletion, &SystemClock)
        };
        portal::delete_account(
            &*app.store,
            &settings(app),
            &rp.uuid,
            &req.auth_session_id,
            &req.document_number,
            &SystemClock,
            &delete,
        )
        .map_err(refused)
    })
    .await;
    match answer {
        Ok(d) => {
            info!(auth_session_id = %session, document_number = %d.deleted, "account deleted by the portal");
            Ok(json(&d))
        }
        Err(p) => {
            info!(auth_session_id = %session, status = p.status, title = %p.title, "portal deletion refused");
            Err(p.into())
        }
    }
}
