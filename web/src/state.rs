//! What every handler shares ([`AppState`]) and what the session middleware
//! ([`browser_middleware`]) tells a handler about its browser ([`Current`]).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use tandem_rp::client::{RpApiClient, TrustAnchors};

use crate::bank::BankSession;
use crate::config::WebConfig;
use crate::i18n::{Lang, Msg};
use crate::pages;
use crate::portal::PortalSession;
use crate::security::cookie;
use crate::security::session::{SessionId, Sessions};

/// Per-browser data.
#[derive(Debug, Default)]
pub struct Browser {
    /// The Demo Bank's login and logged-in person.
    pub bank: BankSession,
    /// Uploads, kept reports and document signatures (verification page, signing).
    pub docs: crate::verify::DocsSession,
    /// The portal's login, logged-in person and deletion (separate from the bank's).
    pub portal: PortalSession,
}

/// Shared by all requests. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration.
    pub cfg: Arc<WebConfig>,
    /// Browser sessions.
    pub sessions: Arc<Sessions<Browser>>,
    /// The RP API client (one connection pool).
    pub rp: RpApiClient,
    /// Trust anchors for user certificates.
    pub anchors: Arc<TrustAnchors>,
    /// The private directory of uploads and signed files.
    pub uploads: Arc<crate::upload::UploadDir>,
}

impl AppState {
    /// Whether browsers reach us over HTTPS (the default).
    pub fn secure(&self) -> bool {
        !self.cfg.insecure_http
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure() {
            cookie::SECURE_SESSION_COOKIE
        } else {
            cookie::INSECURE_SESSION_COOKIE
        }
    }

    /// The upload limit as a `usize`.
    pub fn upload_limit(&self) -> usize {
        usize::try_from(self.cfg.upload_limit_bytes).unwrap_or(usize::MAX)
    }

    /// The language of a request without its session (cookie, Accept-Language).
    pub fn request_lang(&self, h: &HeaderMap) -> Option<Lang> {
        Some(Lang::negotiate(
            cookie::read(h, cookie::LANG_COOKIE),
            h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
            self.cfg.default_lang,
        ))
    }
}

/// The browser of a request, in its extensions.
#[derive(Debug, Clone)]
pub struct Current {
    /// Its session id.
    pub id: SessionId,
    /// Its language.
    pub lang: Lang,
    /// The browser presented a session cookie that is no longer valid (expired, or the
    /// process restarted): pages behind a login say so.
    pub expired: bool,
}

/// What a handler did to the session, in its response's extensions: the middleware sets or
/// clears the cookie.
#[derive(Debug, Clone)]
pub enum SessionChange {
    /// A new id (login).
    Rotated(SessionId),
    /// Logged out.
    Ended,
}

/// Resolves the session cookie (creating a session if needed) and the language, and writes
/// `Set-Cookie` for new, rotated and ended sessions.
pub async fn browser_middleware(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let lang = app
        .request_lang(req.headers())
        .unwrap_or(app.cfg.default_lang);
    let presented = cookie::read(req.headers(), app.cookie_name()).and_then(SessionId::from_cookie);
    let presented_any = presented.is_some();
    let begun = match app.sessions.begin(presented, Instant::now()) {
        Ok(b) => b,
        Err(_) => {
            return pages::error(
                lang,
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Msg::BusyHeading,
                Msg::Busy,
            );
        }
    };
    req.extensions_mut().insert(Current {
        id: begun.id.clone(),
        lang,
        expired: presented_any && begun.created,
    });
    let mut resp = next.run(req).await;
    let max_age = app.sessions.lifetime().as_secs();
    let value = match resp.extensions_mut().remove::<SessionChange>() {
        Some(SessionChange::Rotated(id)) => Some(cookie::session(
            app.cookie_name(),
            &id.expose_secret(),
            max_age,
            app.secure(),
        )),
        Some(SessionChange::Ended) => Some(cookie::clear(app.cookie_name(), app.secure())),
        None if begun.created => Some(cookie::session(
            app.cookie_name(),
            &begun.id.expose_secret(),
            max_age,
            app.secure(),
        )),
        None => None,
    };
    if let Some(v) = value {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
