//! Same-origin check of every POST: its `Origin` header (or, without one, its `Referer`)
//! must be this service's origin. A browser sends `Origin` on every form POST; the
//! `Referrer-Policy: same-origin` of [`super::headers`] keeps it (under `no-referrer` a
//! browser sends `Origin: null` even for our own forms, which this check would refuse).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::i18n::{Lang, Msg};
use crate::pages;
use crate::state::AppState;

/// Our origin: the configured public URL, else `https://` (or `http://`) + the `Host` header.
pub fn expected_origin(
    public_url: Option<&str>,
    secure: bool,
    headers: &HeaderMap,
) -> Option<String> {
    if let Some(u) = public_url {
        return Some(u.trim_end_matches('/').to_owned());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return None;
    }
    let scheme = if secure { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// Whether `Origin` (or, if absent, `Referer`) names `expected`.
pub fn same_origin(expected: &str, origin: Option<&str>, referer: Option<&str>) -> bool {
    match (origin, referer) {
        (Some(o), _) => o.eq_ignore_ascii_case(expected),
        (None, Some(r)) => {
            r.len() > expected.len()
                && r.is_char_boundary(expected.len())
                && r[..expected.len()].eq_ignore_ascii_case(expected)
                && r[expected.len()..].starts_with('/')
        }
        (None, None) => false,
    }
}

/// The middleware: a POST from elsewhere gets the 403 page.
pub async fn middleware(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    // HTTP/2 has no Host header but the `:authority` (in the URI): give every later step
    // (this check, the Web2App callback URL) a Host header either way.
    if !req.headers().contains_key(header::HOST)
        && let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let h = req.headers();
    let ok = expected_origin(app.cfg.public_url.as_deref(), app.secure(), h).is_some_and(|e| {
        same_origin(
            &e,
            h.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            h.get(header::REFERER).and_then(|v| v.to_str().ok()),
        )
    });
    if !ok {
        tracing::info!(path = %req.uri().path(), "POST refused: not from our origin");
        let lang = Lang::negotiate(None, None, app.cfg.default_lang);
        return pages::forbidden(app.request_lang(h).unwrap_or(lang), Msg::ForbiddenOrigin);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_or_referer_must_be_ours() {
        let e = "https://bank.example";
        assert!(same_origin(e, Some("https://bank.example"), None));
        assert!(!same_origin(
            e,
            Some("https://evil.example"),
            Some("https://bank.example/x")
        ));
        assert!(!same_origin(e, Some("null"), None));
        assert!(same_origin(e, None, Some("https://bank.example/bank/")));
        assert!(!same_origin(e, None, Some("https://bank.example.evil/")));
        assert!(!same_origin(e, None, Some("https://bank.example")));
        assert!(!same_origin(e, None, None));
    }

    #[test]
    fn the_expected_origin_comes_from_config_or_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(
            expected_origin(None, true, &h).as_deref(),
            Some("https://127.0.0.1:8443")
        );
        assert_eq!(
            expected_origin(Some("https://bank.example"), true, &h).as_deref(),
            Some("https://bank.example")
        );
        h.insert(header::HOST, "a/b".parse().unwrap());
        assert_eq!(expected_origin(None, true, &h), None);
    }
}
