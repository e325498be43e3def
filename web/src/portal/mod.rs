//! The self-service portal for account holders: login with Tandem itself (the shared
//! login, [`crate::login`], with the portal's own relying party), the overview of the
//! holder's accounts, keys, certificates (live OCSP status, PEM download) and recent
//! transactions, account deletion with a fresh confirmation on the phone, logout.
//!
//! The data comes from the server's portal endpoints (docs/RP_API.md "Portal endpoints"),
//! bound to the RP API session of the login; the relying party needs the `portal`
//! permission (`tandem operator rp-add ... --portal`).
//!
//! ```text
//!  GET  /portal/, /portal/login/…   the login (crate::login, LoginArea::Portal)
//!  GET  /portal/overview            holder, accounts, keys, certificates, transactions
//!  GET  /portal/certificate/{serial} the certificate as PEM (attachment)
//!  GET  /portal/delete?account=DOC  what deleting means; checkbox + button (CSRF)
//!  POST /portal/delete              notification "Delete account DOC" ─▶ /portal/delete/wait
//!  GET  /portal/delete/wait         the verification code while the phone confirms
//!  GET  /portal/delete/status       long poll (≤ 25 s)
//!  GET  /portal/delete/done         delete with the fresh session ─▶ result page
//!  POST /portal/logout              leave the portal (the bank's login stays)
//!  GET  /portal/certificates, …     relying parties' software certificates (rp_certs.rs)
//! ```

use axum::Router;
use axum::routing::{get, post};

use crate::i18n::{Lang, Msg};
use crate::login::follow::LoginAttempt;
use crate::login::{self, LoginArea, Person};
use crate::state::AppState;

pub mod delete;
pub mod overview;
pub mod rp_cert_texts;
pub mod rp_cert_views;
pub mod rp_certs;
pub mod texts;
pub mod views;

/// What the portal keeps per browser session (apart from the bank's).
#[derive(Debug, Default)]
pub struct PortalSession {
    /// The current or last login.
    pub attempt: Option<LoginAttempt>,
    /// The logged-in holder.
    pub person: Option<Person>,
    /// A running or ended deletion.
    pub deletion: Option<Deletion>,
    /// A note for the next login page.
    pub notice: Option<Notice>,
    /// A note for the next certificate page (after a plain form POST).
    pub rp_cert_note: Option<rp_certs::RpCertNote>,
}

/// A deletion waiting for (or done with) the phone's fresh confirmation.
#[derive(Debug)]
pub struct Deletion {
    /// The account to delete.
    pub document_number: String,
    /// The fresh notification authentication.
    pub attempt: LoginAttempt,
}

/// Why the login page is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The portal session is over (15 min, or the server's 410).
    Expired,
    /// The holder logged out.
    LoggedOut,
}

impl Notice {
    /// The line shown.
    pub fn text(self, lang: Lang) -> &'static str {
        match self {
            Self::Expired => Msg::SessionExpired.text(lang),
            Self::LoggedOut => texts::T::LoggedOut.text(lang),
        }
    }
}

/// The portal's routes.
pub fn routes() -> Router<AppState> {
    login::routes(LoginArea::Portal)
        .route(
            "/portal",
            get(|| async { axum::response::Redirect::to("/portal/") }),
        )
        .route("/portal/overview", get(overview::page))
        .route("/portal/certificate/{serial}", get(overview::certificate))
        .route("/portal/delete", get(delete::confirm).post(delete::start))
        .route("/portal/delete/wait", get(delete::wait))
        .route("/portal/delete/status", get(delete::status))
        .route("/portal/delete/done", get(delete::done))
        .route("/portal/logout", axum::routing::post(overview::logout))
        .route("/portal/certificates", get(rp_certs::page))
        .route("/portal/certificates/state", get(rp_certs::state))
        .route("/portal/certificates/download", get(rp_certs::download))
        .route("/portal/certificates/create", post(rp_certs::create))
        .route("/portal/certificates/cancel", post(rp_certs::cancel))
        .route("/portal/certificates/revoke", post(rp_certs::revoke))
        .route("/portal/certificates/redeem", post(rp_certs::redeem))
}
