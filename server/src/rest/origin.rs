//! `POST /tandem/v1/proof-of-origin` on the RP API listener (beside the `/v3` base path):
//! the relying party identified as in the RP API v3, the body checked, the decision in
//! [`crate::core::origin`], the statement signed by the proof-of-origin key in the HSM.
//!
//! | answer | when |
//! |---|---|
//! | 200 `{messageId, proof}` | issued |
//! | 400 | malformed body, a field out of bounds, not an AUTH session |
//! | 401 | unknown relyingPartyUUID / relyingPartyName / address (as the RP API v3) |
//! | 404 | no such session, or one started by another relying party (the same answer, as
//! |     | `GET /v3/session/{id}` gives: a relying party cannot learn that a session id exists) |
//! | 409 | the session is still running, did not end OK, or already gave a proof |
//! | 410 | the authentication completed more than `rp_api.max_auth_age_seconds` ago |
//! | 503 | no usable proof-of-origin key or certificate |

use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::OsRng;
use tandem_rp::api::problem::Problem;
use tandem_rp::documents::origin::{ProofOfOriginRequest, ProofOfOriginResponse};
use tracing::info;

use super::{Answer, Rest, admit, internal, json, parse, run};
use crate::core::SystemClock;
use crate::core::auth_session::AuthSessionRefused;
use crate::core::origin::{self, OriginRefused, OriginSettings};

/// The statement's `issuer`.
pub const SERVICE_NAME: &str = "Tandem";

/// The answer to a session that does not vouch for its holder, for the proof of origin and
/// the portal alike: another relying party's session looks like no session at all (as
/// `GET /v3/session/{id}` answers), a session of another kind is a bad request, one still
/// running or not OK a conflict, one too old gone.
pub(super) fn session_refused(e: AuthSessionRefused) -> Problem {
    match e {
        AuthSessionRefused::NoSuchSession | AuthSessionRefused::ForeignSession => {
            Problem::session_not_found()
        }
        AuthSessionRefused::NotAuthentication => {
            Problem::bad_request("authSessionId is not an authentication session")
        }
        AuthSessionRefused::NotComplete => Problem::new(
            409,
            "Authentication not complete",
            "The authentication session is still running",
        ),
        AuthSessionRefused::NotSuccessful => Problem::new(
            409,
            "Authentication not successful",
            "The authentication session did not end with OK",
        ),
        e @ AuthSessionRefused::TooOld { .. } => {
            Problem::new(410, "Authentication too old", e.to_string())
        }
        AuthSessionRefused::Store(e) => e.into(),
        AuthSessionRefused::Internal(m) => internal(m),
    }
}

fn refused(e: OriginRefused) -> Problem {
    match e {
        OriginRefused::Session(e) => session_refused(e),
        OriginRefused::AlreadyUsed => Problem::new(
            409,
            "Proof already issued",
            "A proof of origin was already issued for this authentication session",
        ),
        OriginRefused::Store(e) => e.into(),
        OriginRefused::Internal(m) => internal(m),
    }
}

/// `POST /tandem/v1/proof-of-origin`.
pub(super) async fn proof_of_origin(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    let req: ProofOfOriginRequest = parse(&body)?;
    req.validate().map_err(Problem::bad_request)?;
    let rp = admit(
        &rest,
        &req.relying_party_uuid,
        &req.relying_party_name,
        &client,
    )?;
    let issued = run(&rest, move |app| {
        let Some(signer) = app.ca.origin.as_ref() else {
            return Err(Problem::new(
                503,
                "Service Unavailable",
                "The proof-of-origin key is not available",
            ));
        };
        let settings = OriginSettings {
            max_auth_age_seconds: i64::try_from(app.config.rp_api.max_auth_age_seconds)
                .unwrap_or(i64::MAX),
            issuer: SERVICE_NAME.to_owned(),
        };
        let sign = |statement: &[u8]| {
            crate::pki::origin::proof_of_origin(
                statement,
                &signer.signer,
                &signer.cert,
                &app.ca.issuing_cert,
                std::time::SystemTime::now(),
            )
            .map_err(|e| e.to_string())
        };
        origin::issue(
            &*app.store,
            &settings,
            &rp.uuid,
            &req,
            &SystemClock,
            &mut OsRng,
            &sign,
        )
        .map_err(refused)
        .map(|issued| (issued, req.auth_session_id.clone()))
    })
    .await;
    let (issued, session) = match issued {
        Ok(v) => v,
        Err(p) => {
            info!(status = p.status, title = %p.title, "proof of origin refused");
            return Err(p.into());
        }
    };
    info!(auth_session_id = %session, message_id = %issued.message_id, "proof of origin issued");
    Ok(json(&ProofOfOriginResponse {
        message_id: issued.message_id,
        proof: STANDARD.encode(&issued.proof),
    }))
}
