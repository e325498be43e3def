//! The login every area shares (the Demo Bank, the portal): an anonymous device-link QR code
//! renewed every second, a Web2App link with its callback, a notification login by national
//! identity number with the verification code shown, following the session, verifying the
//! answer, a message and a retry for every failure, and the session rotation at login.
//!
//! Each [`LoginArea`] has its own relying party (from the configuration), its own paths and
//! its own state in the browser session: a person logged in to the bank is not thereby
//! logged in to the portal.
//!
//! ```text
//!  GET  /{area}/                 login page (starts a device-link login if none runs)
//!  GET  /{area}/login/qr.png?n=  the current QR code (authCode computed here)
//!  POST /{area}/login/notify     start a notification login ─▶ /{area}/login/wait
//!  GET  /{area}/login/wait       the verification code while the phone confirms
//!  GET  /{area}/login/status     long poll (≤ 25 s): {state, message, next}
//!  GET  /{area}/login/callback   the Web2App / App2App return: check, verify ─▶ done
//!  GET  /{area}/login/done       end of a login: rotate the session ─▶ the area's page,
//!                                or the failure page
//! ```

use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::http::{HeaderMap, Uri};
use axum::routing::{get, post};

use crate::config::RelyingParty;
use crate::layout::Area;
use crate::state::{AppState, Browser, Current};

pub mod callback;
pub mod follow;
pub mod handlers;
pub mod state;
pub mod views;

pub use state::Person;

/// An area with a login of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginArea {
    /// The Demo Bank (`/bank/`).
    Bank,
    /// The self-service portal (`/portal/`).
    Portal,
}

/// What an area keeps of its login in the browser session.
#[derive(Debug)]
pub struct Slot<'a> {
    /// The current or last login.
    pub attempt: &'a mut Option<follow::LoginAttempt>,
    /// The logged-in person.
    pub person: &'a mut Option<Person>,
}

impl LoginArea {
    /// `/bank` or `/portal` (no trailing slash).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Bank => "/bank",
            Self::Portal => "/portal",
        }
    }

    /// The login page, `/{area}/`.
    pub fn home(self) -> &'static str {
        match self {
            Self::Bank => "/bank/",
            Self::Portal => "/portal/",
        }
    }

    /// Where a finished login goes (status poll's `next`), `/{area}/login/done`.
    pub fn done_path(self) -> &'static str {
        match self {
            Self::Bank => "/bank/login/done",
            Self::Portal => "/portal/login/done",
        }
    }

    /// Where a logged-in person goes.
    pub fn after_login(self) -> &'static str {
        match self {
            Self::Bank => "/bank/account",
            Self::Portal => "/portal/overview",
        }
    }

    /// `/{area}/login/{rest}`.
    pub fn path(self, rest: &str) -> String {
        format!("{}/login/{rest}", self.prefix())
    }

    /// The area in the page header.
    pub fn layout_area(self) -> Area {
        match self {
            Self::Bank => Area::Bank,
            Self::Portal => Area::Portal,
        }
    }

    /// The area's relying party; `None` if not configured (the portal's is optional).
    pub fn relying_party(self, app: &AppState) -> Option<&RelyingParty> {
        match self {
            Self::Bank => Some(&app.cfg.bank),
            Self::Portal => app.cfg.portal.as_ref(),
        }
    }

    /// The area's login state in a browser session.
    pub fn slot(self, b: &mut Browser) -> Slot<'_> {
        match self {
            Self::Bank => Slot {
                attempt: &mut b.bank.attempt,
                person: &mut b.bank.person,
            },
            Self::Portal => Slot {
                attempt: &mut b.portal.attempt,
                person: &mut b.portal.person,
            },
        }
    }
}

/// The login routes of `area` (full paths: a nested router would not answer `/{area}/`).
pub fn routes(area: LoginArea) -> Router<AppState> {
    Router::new()
        .route(
            area.home(),
            get(
                move |st: State<AppState>, cur: Extension<Current>, h: HeaderMap| {
                    handlers::index(area, st, cur, h)
                },
            ),
        )
        .route(
            &area.path("qr.png"),
            get(move |st: State<AppState>, cur: Extension<Current>| {
                handlers::qr_png(area, st, cur)
            }),
        )
        .route(
            &area.path("notify"),
            post(
                move |st: State<AppState>,
                      cur: Extension<Current>,
                      f: Form<handlers::NotifyForm>| {
                    handlers::notify(area, st, cur, f)
                },
            ),
        )
        .route(
            &area.path("wait"),
            get(move |st: State<AppState>, cur: Extension<Current>| handlers::wait(area, st, cur)),
        )
        .route(
            &area.path("status"),
            get(move |st: State<AppState>, cur: Extension<Current>| {
                handlers::status(area, st, cur)
            }),
        )
        .route(
            &area.path("callback"),
            get(
                move |st: State<AppState>, cur: Extension<Current>, uri: Uri| {
                    callback::callback(area, st, cur, uri)
                },
            ),
        )
        .route(
            &area.path("done"),
            get(move |st: State<AppState>, cur: Extension<Current>| handlers::done(area, st, cur)),
        )
}
