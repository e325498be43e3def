//! The Demo Bank: an ordinary relying party of the REST RP API v3 (tandem-rp), as a bank
//! would be. Login by QR code (anonymous device link, renewed every second), Web2App, or
//! notification by national identity number; the account page; logout.
//!
//! ```text
//!  GET  /bank/                 login page (starts a device-link login if none runs)
//!  GET  /bank/login/qr.png?n=  the current QR code (authCode computed here)
//!  POST /bank/login/notify     start a notification login ─▶ /bank/login/wait
//!  GET  /bank/login/status     long poll (≤ 25 s): {state, message, next}
//!  GET  /bank/login/done       end of a login: rotate the session ─▶ /bank/account, or
//!                              the failure page
//!  GET  /bank/account          "Welcome, NAME"
//!  POST /bank/logout           end the session
//!  POST /bank/sign             sign an uploaded document (sign.rs) ─▶ /bank/sign/wait
//!  GET  /bank/sign/{status,done,file}
//! ```

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod account;
pub mod follow;
pub mod login;
pub mod login_state;
pub mod sign;
pub mod sign_state;
pub mod sign_texts;
pub mod views;

/// What the bank keeps per browser session.
#[derive(Debug, Default)]
pub struct BankSession {
    /// The current or last login.
    pub attempt: Option<follow::LoginAttempt>,
    /// The logged-in person.
    pub person: Option<login_state::Person>,
}

/// The bank's routes (full paths: a nested router would not answer `/bank/`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/bank/", get(login::index))
        .route("/bank/login/qr.png", get(login::qr_png))
        .route("/bank/login/notify", post(login::notify))
        .route("/bank/login/wait", get(login::wait))
        .route("/bank/login/status", get(login::status))
        .route("/bank/login/done", get(login::done))
        .route("/bank/account", get(account::page))
        .route("/bank/logout", post(account::logout))
        .route("/bank/sign", post(sign::start))
        .route("/bank/sign/wait", get(sign::wait))
        .route("/bank/sign/status", get(sign::status))
        .route("/bank/sign/done", get(sign::done))
        .route("/bank/sign/file", get(sign::file))
}
