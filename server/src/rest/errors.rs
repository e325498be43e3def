//! Every error answer of the REST API is an RFC 9457 problem document.
//!
//! ```text
//!  request ─▶ JsonBody (POST bodies) ── not application/json ─▶ 415 problem
//!                 │                    └─ over MAX_BODY ───────▶ 413 problem
//!                 ▼
//!             handler ── Problem ─────────────────────────────▶ 400/401/403/404/429/500…
//!  router: unknown path ─▶ 404 problem; known path, other method ─▶ 405 (axum, plain)
//!                 │
//!  every_error_a_problem (outermost layer): any 4xx/5xx that is not yet
//!  application/problem+json (axum's own rejections, 405) becomes one, headers such as
//!  `Allow` kept.
//! ```
//! A [`Problem`] (tandem-rp's document) becomes an answer through [`ProblemResponse`]: status,
//! `Content-Type: application/problem+json` and, for 429, `Retry-After`.
//!
//! Answers that hyper gives before a request reaches the router (a request that is neither
//! HTTP/1.1 nor HTTP/2, headers too large) are outside the API and stay as hyper sends them.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tandem_rp::api::ValidationError;
use tandem_rp::api::problem::{self, Problem};
use tracing::warn;

use super::MAX_BODY;

/// A problem document as the REST API's answer (a wrapper: `Problem` is tandem-rp's type and
/// axum's trait is foreign too). Handlers return `Result<_, ProblemResponse>`; `?` on a
/// `Result<_, Problem>` converts.
#[derive(Debug)]
pub(super) struct ProblemResponse(pub Problem);

impl From<Problem> for ProblemResponse {
    fn from(p: Problem) -> Self {
        Self(p)
    }
}

impl From<ValidationError> for ProblemResponse {
    fn from(e: ValidationError) -> Self {
        Self(Problem::from(e))
    }
}

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        let p = self.0;
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&p).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(problem::CONTENT_TYPE),
        );
        if let Some(s) = p.retry_after_seconds {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// The body of a POST: `Content-Type` must be `application/json` (415 otherwise, also when
/// it is missing), the body at most [`MAX_BODY`] bytes (413). Parsing is the handler's
/// (400 for malformed JSON and wrong types, naming the place).
#[derive(Debug)]
pub(super) struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ProblemResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, ProblemResponse> {
        if !is_json_content_type(req.headers()) {
            return Err(Problem::unsupported_media_type().into());
        }
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Self(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Problem::content_too_large(MAX_BODY).into())
            }
            Err(e) => Err(Problem::bad_request(format!(
                "Could not read the request body: {}",
                e.body_text()
            ))
            .into()),
        }
    }
}

/// Whether the request's single `Content-Type` is JSON as openapi.yml declares every request
/// body: `application/json` (type and subtype in any letter case, RFC 9110 §8.3.1), with no
/// parameter or a `charset` of `utf-8` (any case, quoted or not; JSON is UTF-8, RFC 8259 §8.1,
/// so another charset would be misread). Other parameters are ignored, as RFC 8259 defines
/// none. `application/*+json` and `text/json` are not accepted: the specification names only
/// `application/json`.
pub(super) fn is_json_content_type(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|p| {
        let p = p.trim();
        if p.is_empty() {
            return true;
        }
        match p.split_once('=') {
            Some((name, v)) if name.trim().eq_ignore_ascii_case("charset") => {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                v.eq_ignore_ascii_case("utf-8")
            }
            Some((name, _)) => !name.trim().is_empty(),
            None => false,
        }
    })
}

/// Longest plain-text body of an axum rejection that is kept as the problem's `detail`.
const MAX_DETAIL: usize = 512;

/// Outermost layer: turns every error answer that is not a problem document yet into one
/// with the same status. 4xx keep axum's short text (it only describes the request) as
/// `detail`; 5xx never say more than the status phrase.
pub(super) async fn every_error_a_problem(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(resp.headers()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let phrase = status.canonical_reason().unwrap_or("Error");
    let problem = match status {
        StatusCode::NOT_FOUND => Problem::not_found(),
        StatusCode::METHOD_NOT_ALLOWED => Problem::method_not_allowed(),
        StatusCode::PAYLOAD_TOO_LARGE => Problem::content_too_large(MAX_BODY),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::unsupported_media_type(),
        s if s.is_client_error() => {
            let text = axum::body::to_bytes(body, MAX_DETAIL)
                .await
                .ok()
                .and_then(|b| String::from_utf8(b.to_vec()).ok())
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty());
            Problem::new(
                s.as_u16(),
                phrase,
                text.unwrap_or_else(|| phrase.to_owned()),
            )
        }
        s => {
            warn!(
                status = s.as_u16(),
                "REST error answer without a problem document"
            );
            Problem::new(s.as_u16(), phrase, phrase)
        }
    };
    let mut out = ProblemResponse(problem).into_response();
    // Keep what the original answer said in its headers (`Allow` of a 405, `Retry-After`).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !out.headers().contains_key(name)
        {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(problem::CONTENT_TYPE))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain answer as axum's own rejections look.
    fn plain(status: StatusCode, text: &'static str) -> Response {
        (status, [(header::ALLOW, "POST")], text).into_response()
    }

    fn headers(content_types: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in content_types {
            h.append(header::CONTENT_TYPE, HeaderValue::from_static(c));
        }
        h
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
            "application/json ; charset = utf-8 ",
            "application/json;",
            "application/json; foo=bar",
        ] {
            assert!(is_json_content_type(&headers(&[ok])), "{ok}");
        }
        for bad in [
            "text/plain",
            "text/json",
            "application/problem+json",
            "application/vnd.api+json",
            "application/jsonx",
            "application/json; charset=iso-8859-1",
            "application/json; charset=utf-16",
            "application/json; charset",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!is_json_content_type(&headers(&[bad])), "{bad}");
        }
        assert!(!is_json_content_type(&HeaderMap::new()), "missing");
        assert!(
            !is_json_content_type(&headers(&["application/json", "text/plain"])),
            "two values"
        );
    }

    async fn body_of(r: Response) -> serde_json::Value {
        let b = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    #[tokio::test]
    async fn plain_errors_become_problems_with_their_headers() {
        let r = every_error_a_problem(plain(StatusCode::METHOD_NOT_ALLOWED, "")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::CONTENT_TYPE], problem::CONTENT_TYPE);
        assert_eq!(r.headers()[header::ALLOW], "POST");
        let b = body_of(r).await;
        assert_eq!(b["status"], 405);
        assert_eq!(b["title"], "Method Not Allowed");

        let r = every_error_a_problem(plain(StatusCode::BAD_REQUEST, "Invalid URL: bad")).await;
        let b = body_of(r).await;
        assert_eq!(
            (b["status"].as_u64(), b["detail"].as_str()),
            (Some(400), Some("Invalid URL: bad"))
        );

        // A server error never passes its text on.
        let r = every_error_a_problem(plain(StatusCode::INTERNAL_SERVER_ERROR, "db at /x")).await;
        let b = body_of(r).await;
        assert_eq!(b["detail"], "Internal Server Error");
    }

    #[tokio::test]
    async fn problems_and_successes_pass_unchanged() {
        let r =
            every_error_a_problem(ProblemResponse(Problem::too_many_requests(2)).into_response())
                .await;
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert_eq!(
            body_of(r).await["detail"],
            "Rate limit exceeded; retry after 2 s"
        );
        let r = every_error_a_problem((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let b = axum::body::to_bytes(r.into_body(), 100).await.unwrap();
        assert_eq!(&b[..], b"fine");
    }

    #[test]
    fn problem_response_sets_status_and_type() {
        for (p, code) in [
            (Problem::bad_request("x"), 400),
            (Problem::unauthorized(), 401),
            (Problem::forbidden("x"), 403),
            (Problem::not_found(), 404),
            (Problem::method_not_allowed(), 405),
            (Problem::content_too_large(10), 413),
            (Problem::unsupported_media_type(), 415),
            (Problem::client_too_old(), 480),
            (Problem::under_maintenance(), 580),
        ] {
            let r = ProblemResponse(p).into_response();
            assert_eq!(r.status().as_u16(), code);
            assert_eq!(r.headers()[header::CONTENT_TYPE], problem::CONTENT_TYPE);
            assert!(r.headers().get(header::RETRY_AFTER).is_none());
        }
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let r = ProblemResponse(Problem::too_many_requests(3)).into_response();
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        // Never 0: a client must wait at least a second.
        let r = ProblemResponse(Problem::too_many_requests(0)).into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
