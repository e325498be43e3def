//! Tandem's web front end (`tandem web --config web.toml`, its own process): the Demo Bank,
//! an ordinary relying party of the REST RP API v3 built on `tandem-rp` exactly as a bank
//! would use it (login, document signing); the self-service portal for account holders; the
//! verification page. Server-rendered HTML (maud, escaped), German and English, one static
//! CSS and three small scripts. Uploads are streamed to private temporary files
//! (`upload.rs`).
//!
//! ```text
//!  browser ──HTTPS──▶ server.rs (tls.rs listener, router)
//!                       │ security/: headers ▸ limit ▸ origin ▸ session ▸ csrf
//!                       ▼
//!                     bank/ (account.rs, sign.rs), portal/, verify/ ─ report_view.rs
//!                     login/ (shared by the areas: handlers.rs, callback.rs)
//!                       │ state.rs: RP API outcomes ─▶ page state (no I/O)
//!                       │ follow.rs: one task per login, long-polls, watch channel
//!                       ▼
//!                     tandem_rp::client ──HTTPS (RP API v3)──▶ Tandem server
//! ```
//!
//! See docs/WEB.md for running it and for the security measures.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bank;
pub mod config;
pub mod error;
pub mod i18n;
pub mod layout;
pub mod login;
pub mod pages;
pub mod portal;
pub mod report_view;
pub mod security;
pub mod server;
pub mod state;
pub mod tls;
pub mod upload;
pub mod verify;

pub use config::WebConfig;
pub use error::WebError;

/// Runs the web front end until `stop` resolves; `on_listening` gets the bound address and
/// whether it serves HTTPS.
pub async fn run(
    cfg: WebConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(std::net::SocketAddr, bool),
) -> Result<(), WebError> {
    let app = server::state(cfg)?;
    server::run(app, stop, on_listening).await
}
