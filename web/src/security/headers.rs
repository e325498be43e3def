//! Security headers on every answer (pages, errors, JSON, images, static files).

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// No inline script or style anywhere; images from us or `data:`; forms post only to us;
/// no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// HSTS: one year (HTTPS only).
pub const HSTS: &str = "max-age=31536000";
/// `same-origin`: no Referer to other sites, and `Origin` kept on our own form POSTs (see
/// [`super::origin`]).
pub const REFERRER_POLICY: &str = "same-origin";

/// The middleware. Answers that set no `Cache-Control` get `no-store` (pages carry
/// personal data and per-session tokens); static files set their own.
pub async fn middleware(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, n: HeaderName, v: &'static str| {
        h.insert(n, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    if app.secure() {
        set(h, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, REFERRER_POLICY);
    set(h, header::X_FRAME_OPTIONS, "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}
