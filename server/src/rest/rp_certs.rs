//! `POST /tandem/v1/rp-certs/{list,create,cancel,redeem,revoke,certificate}` on the RP API
//! listener: relying parties' software certificates. The caller is identified as in the RP
//! API v3; the administrator by the caller's AUTH session; the decisions are in
//! [`crate::core::rp_certs`], the signing in [`crate::rp_cert_queue`].
//!
//! | answer | when |
//! |---|---|
//! | 200 | the answer of [`tandem_rp::api::rp_certs`] |
//! | 400 | malformed body, a bad label (named with its character), a bad CSR, not an AUTH session |
//! | 401 | unknown relyingPartyUUID / relyingPartyName / address (as the RP API v3) |
//! | 403 | the person does not administer the target (whether it exists or not), or the |
//! |     | target is another relying party and the caller has no `portal` permission |
//! | 404 | no such session (or another relying party's), certificate or voucher |
//! | 409 | too few credits, wrong state (cancel an issued one, download a queued one), a |
//! |     | redeemed voucher, a session still running or not OK |
//! | 410 | the authentication completed more than `rp_api.portal_session_seconds` ago |
//! | 503 | the store is unavailable |

use axum::extract::State;
use der::Encode;
use rand_core::OsRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tandem_rp::api::problem::Problem;
use tandem_rp::api::rp_certs::{CertificateRequest, CreateRequest, ListRequest, RedeemRequest};
use tracing::info;

use super::origin::session_refused;
use super::{Answer, Rest, admit, internal, json, parse, run};
use crate::core::SystemClock;
use crate::core::rp_certs::{self, Admin, RpCertSettings, RpCertsRefused};
use crate::service::App;
use crate::store::{RelyingParty, StoreError};

/// Largest body of `create`: [`tandem_rp::api::rp_certs::MAX_CREATE`] requests of up to
/// [`tandem_rp::api::rp_certs::MAX_CSR_BYTES`] bytes (base64) with their labels.
pub(super) const MAX_CREATE_BODY: usize = tandem_rp::api::rp_certs::MAX_CREATE
    * (tandem_rp::api::rp_certs::MAX_CSR_BYTES * 4 / 3 + 512)
    + 4096;

fn refused(e: RpCertsRefused) -> Problem {
    match e {
        RpCertsRefused::Session(e) => session_refused(e),
        e @ (RpCertsRefused::NotAdministrator | RpCertsRefused::ForeignTarget) => {
            Problem::forbidden(e.to_string())
        }
        RpCertsRefused::BadRequest(m) => Problem::bad_request(m),
        RpCertsRefused::NoCredit(m) => Problem::new(409, "Not enough credits", m),
        RpCertsRefused::WrongState(m) => Problem::new(409, "Wrong state", m),
        RpCertsRefused::NoSuchCertificate => Problem::new(404, "Not Found", "No such certificate"),
        RpCertsRefused::NoSuchVoucher => Problem::new(404, "Not Found", "No such voucher"),
        RpCertsRefused::VoucherRedeemed => {
            Problem::new(409, "Voucher redeemed", "The voucher was redeemed already")
        }
        RpCertsRefused::Store(StoreError::Db(e)) => {
            internal(&e);
            Problem::new(503, "Service Unavailable", "Try again later")
        }
        RpCertsRefused::Store(e) => e.into(),
        RpCertsRefused::Internal(m) => internal(m),
    }
}

fn settings(app: &App) -> RpCertSettings {
    RpCertSettings {
        session_seconds: i64::try_from(app.config.rp_api.portal_session_seconds)
            .unwrap_or(i64::MAX),
    }
}

/// The request's caller fields, for [`handle`].
trait Called: DeserializeOwned + Send + 'static {
    fn caller(&self) -> (&str, &str, &str);
    fn check(&self) -> Result<(), String>;
}

macro_rules! called {
    ($($t:ty),*) => {$(
        impl Called for $t {
            fn caller(&self) -> (&str, &str, &str) {
                (&self.relying_party_uuid, &self.relying_party_name, &self.auth_session_id)
            }
            fn check(&self) -> Result<(), String> {
                self.validate()
            }
        }
    )*};
}
called!(
    ListRequest,
    CreateRequest,
    CertificateRequest,
    RedeemRequest
);

/// Parses, admits the caller, authenticates the administrator and runs `op` in a blocking
/// thread; logs the outcome under `what`.
async fn handle<Q: Called, T: Serialize + Send + 'static>(
    rest: &Rest,
    client: &super::mtls::Client,
    body: &axum::body::Bytes,
    what: &'static str,
    op: impl FnOnce(&App, &RelyingParty, &Admin, &Q) -> Result<T, RpCertsRefused> + Send + 'static,
) -> Answer {
    let req: Q = parse(body)?;
    req.check().map_err(Problem::bad_request)?;
    let (uuid, name, session) = req.caller();
    let session = session.to_owned();
    let rp = admit(rest, uuid, name, client)?;
    let answer = run(rest, move |app| {
        let now = crate::core::Clock::now(&SystemClock);
        let admin = rp_certs::authenticate(&*app.store, &settings(app), &rp, &session, now)
            .map_err(refused)?;
        op(app, &rp, &admin, &req).map_err(refused)
    })
    .await;
    match answer {
        Ok(v) => {
            info!(what, "rp-certs request answered");
            Ok(json(&v))
        }
        Err(p) => {
            info!(what, status = p.status, title = %p.title, "rp-certs request refused");
            Err(p.into())
        }
    }
}

/// `POST /tandem/v1/rp-certs/list`.
pub(super) async fn list(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    handle(
        &rest,
        &client,
        &body,
        "list",
        |app, _, admin, req: &ListRequest| rp_certs::list(&*app.store, admin, req, &SystemClock),
    )
    .await
}

/// `POST /tandem/v1/rp-certs/create`: queues, then wakes the pool.
pub(super) async fn create(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    handle(
        &rest,
        &client,
        &body,
        "create",
        |app, _, admin, req: &CreateRequest| {
            let created = rp_certs::create(&*app.store, admin, req, &SystemClock, &mut OsRng)?;
            crate::rp_cert_queue::wake();
            Ok(created)
        },
    )
    .await
}

/// `POST /tandem/v1/rp-certs/cancel`.
pub(super) async fn cancel(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    handle(
        &rest,
        &client,
        &body,
        "cancel",
        |app, _, admin, req: &CertificateRequest| {
            rp_certs::cancel(&*app.store, admin, req, &SystemClock, &mut OsRng)
        },
    )
    .await
}

/// `POST /tandem/v1/rp-certs/redeem`.
pub(super) async fn redeem(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    handle(
        &rest,
        &client,
        &body,
        "redeem",
        |app, _, admin, req: &RedeemRequest| {
            rp_certs::redeem(&*app.store, admin, req, &SystemClock)
        },
    )
    .await
}

/// `POST /tandem/v1/rp-certs/revoke`.
pub(super) async fn revoke(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    handle(
        &rest,
        &client,
        &body,
        "revoke",
        |app, _, admin, req: &CertificateRequest| {
            rp_certs::revoke(&*app.store, admin, req, &SystemClock)
        },
    )
    .await
}

/// `POST /tandem/v1/rp-certs/certificate`.
pub(super) async fn certificate(
    State(rest): State<Rest>,
    client: super::mtls::Client,
    super::errors::JsonBody(body): super::errors::JsonBody,
) -> Answer {
    handle(
        &rest,
        &client,
        &body,
        "certificate",
        |app, _, admin, req: &CertificateRequest| {
            let chain = [&app.ca.issuing_cert, &app.ca.root_cert]
                .iter()
                .map(|c| c.to_der())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| RpCertsRefused::Internal(e.to_string()))?;
            rp_certs::certificate(&*app.store, admin, req, &chain, &SystemClock)
        },
    )
    .await
}
