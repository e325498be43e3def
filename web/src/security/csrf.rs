//! CSRF protection: a per-session random token in a hidden field of every form, compared in
//! constant time on every POST. A POST without the session's token gets the 403 page and
//! never reaches a handler. (The cookie's `SameSite=Strict` and the Origin check of
//! [`super::origin`] come on top.)
//!
//! POST bodies must be `application/x-www-form-urlencoded` or `multipart/form-data`; any
//! other POST is refused here. In a multipart form (an upload) the token must be the
//! **first** part (every upload form puts the hidden field first; browsers send the parts in
//! document order): the middleware reads only up to the end of that part (at most
//! [`crate::upload::FIRST_PART_MAX`] bytes), checks it, and hands the handler the whole body,
//! still streaming. So no byte of a file is stored before the token is checked, and the token
//! never goes into a URL.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use rand_core::{OsRng, RngCore as _};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::limit;
use super::session::SessionId;
use crate::i18n::Msg;
use crate::pages;
use crate::state::{AppState, Current};
use crate::upload;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// A session's CSRF token: 32 random bytes, hex in forms.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct CsrfToken([u8; 32]);

impl CsrfToken {
    /// A fresh token.
    pub fn random() -> Self {
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut b);
        Self(b)
    }

    /// The hidden field's value (pages of this session only).
    pub(crate) fn expose_secret(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `presented` (hex from a form) is this token; constant time in the content.
    pub fn matches(&self, presented: &str) -> bool {
        let mut b = [0u8; 32];
        if hex::decode_to_slice(presented, &mut b).is_err() {
            return false;
        }
        bool::from(self.0.ct_eq(&b))
    }
}

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(<redacted>)")
    }
}

/// The `csrf` field of a URL-encoded form body (the first one).
pub fn form_token(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned())
}

/// Whether the session `id` has the token `presented`.
fn session_has(app: &AppState, id: &SessionId, presented: &str) -> bool {
    app.sessions
        .with(id, std::time::Instant::now(), |s| s.csrf.matches(presented))
        .unwrap_or(false)
}

/// The middleware: checks every POST's token, then hands the body on unchanged.
pub async fn middleware(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    let Some(current) = req.extensions().get::<Current>().cloned() else {
        return pages::forbidden(app.cfg.default_lang, Msg::ForbiddenCsrf);
    };
    let urlencoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !urlencoded {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let Some(boundary) = upload::boundary(ct) else {
            return pages::forbidden(current.lang, Msg::ForbiddenCsrf);
        };
        let (parts, body) = req.into_parts();
        let (first, body) = match upload::first_field(body, &boundary).await {
            Ok(x) => x,
            Err(upload::UploadError::TooLarge) => {
                return pages::too_large(current.lang, app.cfg.upload_limit_bytes);
            }
            Err(_) => return pages::forbidden(current.lang, Msg::ForbiddenCsrf),
        };
        let ok = first.is_some_and(|(name, t)| name == FIELD && session_has(&app, &current.id, &t));
        if !ok {
            tracing::info!(path = %parts.uri.path(), "upload refused: CSRF token not the first part or wrong");
            return pages::forbidden(current.lang, Msg::ForbiddenCsrf);
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, app.upload_limit()).await {
        Ok(b) => b,
        Err(e) if limit::is_too_large(&e) => {
            return pages::too_large(current.lang, app.cfg.upload_limit_bytes);
        }
        Err(_) => return pages::forbidden(current.lang, Msg::ForbiddenCsrf),
    };
    let ok = form_token(&bytes).is_some_and(|t| session_has(&app, &current.id, &t));
    if !ok {
        tracing::info!(path = %parts.uri.path(), "POST refused: missing or wrong CSRF token");
        return pages::forbidden(current.lang, Msg::ForbiddenCsrf);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        let t = CsrfToken::random();
        let hex = t.expose_secret();
        assert!(t.matches(&hex));
        assert!(!t.matches(&CsrfToken::random().expose_secret()));
        assert!(!t.matches(""));
        assert!(!t.matches(&hex[..62]));
        assert!(!t.matches("not hex"));
        assert_eq!(format!("{t:?}"), "CsrfToken(<redacted>)");
    }

    #[test]
    fn the_token_is_found_in_a_form_body() {
        assert_eq!(
            form_token(b"a=1&csrf=ab%20c&csrf=x").as_deref(),
            Some("ab c")
        );
        assert_eq!(form_token(b"a=1"), None);
    }
}
