//! The Demo Bank: an ordinary relying party of the REST RP API v3 (tandem-rp), as a bank
//! would be. Login by QR code (anonymous device link, renewed every second), Web2App, or
//! notification by national identity number (the shared login, [`crate::login`]); the
//! account page; logout.
//!
//! ```text
//!  GET  /bank/, /bank/login/…  the login (crate::login, LoginArea::Bank)
//!  GET  /bank/account          "Welcome, NAME"
//!  POST /bank/logout           end the session
//!  POST /bank/sign             sign an uploaded document (sign.rs) ─▶ /bank/sign/wait
//!  GET  /bank/sign/{status,done,file}
//! ```

use axum::Router;
use axum::routing::{get, post};

use crate::login::{self, LoginArea};
use crate::state::AppState;

pub mod account;
pub mod sign;
pub mod sign_state;
pub mod sign_texts;
pub mod views;

/// What the bank keeps per browser session.
#[derive(Debug, Default)]
pub struct BankSession {
    /// The current or last login.
    pub attempt: Option<login::follow::LoginAttempt>,
    /// The logged-in person.
    pub person: Option<login::Person>,
}

/// The bank's routes (full paths: a nested router would not answer `/bank/`).
pub fn routes() -> Router<AppState> {
    login::routes(LoginArea::Bank)
        .route("/bank/account", get(account::page))
        .route("/bank/logout", post(account::logout))
        .route("/bank/sign", post(sign::start))
        .route("/bank/sign/wait", get(sign::wait))
        .route("/bank/sign/status", get(sign::status))
        .route("/bank/sign/done", get(sign::done))
        .route("/bank/sign/file", get(sign::file))
}
