//! The upload limit: a request whose `Content-Length` exceeds it gets the 413 page before
//! its body is read; any other body is wrapped so that reading past the limit fails while
//! streaming (nothing buffers more than the limit), which [`is_too_large`] recognises.

use std::error::Error as _;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::pages;
use crate::state::AppState;

/// Whether a body error is the limit's.
pub fn is_too_large(e: &axum::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// How long a refused body is drained at most.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Reads and discards `body` (at most `max` bytes, at most [`DRAIN_TIME`]); nothing is kept.
async fn drain(mut body: Body, max: u64) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                seen += d.len() as u64;
                if seen > max {
                    break;
                }
            }
        }
    })
    .await;
}

/// The middleware.
pub async fn middleware(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limit = app.cfg.upload_limit_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        let lang = app
            .request_lang(req.headers())
            .unwrap_or(app.cfg.default_lang);
        drain(req.into_body(), limit.saturating_mul(2)).await;
        return pages::too_large(lang, limit);
    }
    let (parts, body) = req.into_parts();
    let body = Body::new(Limited::new(body, app.upload_limit()));
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_streamed_body_over_the_limit_is_recognised() {
        let body = Body::new(Limited::new(Body::from(vec![0u8; 100]), 10));
        let e = axum::body::to_bytes(body, usize::MAX).await.unwrap_err();
        assert!(is_too_large(&e));
        let fine = Body::new(Limited::new(Body::from(vec![0u8; 10]), 10));
        assert_eq!(
            axum::body::to_bytes(fine, usize::MAX).await.unwrap().len(),
            10
        );
    }
}
