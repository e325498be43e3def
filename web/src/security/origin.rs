//! Same-origin check of every POST: its `Origin` header (or, without one, its `Referer`)
//! must be this service's origin. A browser sends `Origin` on every form POST; the
//! `Referrer-Policy: same-origin` of [`super::headers`] keeps it (under `no-referrer` a
//! browser sends `Origin: null` even for our own forms, which this check would refuse).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
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

/// An HTTP/2 request names its host in the `:authority` pseudo-header, which hyper puts into
/// the request's URI, not into a `Host` header (browsers speak HTTP/2 to us through ALPN):
/// copy it into `Host`, so that every handler finds the host in one place. A request with a
/// `Host` header keeps it.
fn host_from_authority(req: &mut Request) {
    if req.headers().contains_key(header::HOST) {
        return;
    }
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    if let Some(v) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
        req.headers_mut().insert(header::HOST, v);
    }
}

/// The middleware: a POST from elsewhere gets the 403 page. (Also gives HTTP/2 requests their
/// `Host` header, see [`host_from_authority`].)
pub async fn middleware(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    host_from_authority(&mut req);
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

    /// Chromium talks HTTP/2: no `Host` header, the host is in the URI's authority.
    #[test]
    fn an_http2_authority_becomes_the_host() {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("https://127.0.0.1:8443/bank/login/notify")
            .body(axum::body::Body::empty())
            .unwrap();
        host_from_authority(&mut req);
        assert_eq!(req.headers()[header::HOST], "127.0.0.1:8443");
        assert_eq!(
            expected_origin(None, true, req.headers()).as_deref(),
            Some("https://127.0.0.1:8443")
        );
        // An HTTP/1.1 request's own Host header wins.
        let mut req = Request::builder()
            .uri("/bank/")
            .header(header::HOST, "bank.example")
            .body(axum::body::Body::empty())
            .unwrap();
        host_from_authority(&mut req);
        assert_eq!(req.headers()[header::HOST], "bank.example");
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
