//! The verification page (`/verify/`, no login): one form for a signed PDF, an ASiC-E
//! package, or a `.p7s` with its document; the report inline in the page's language with
//! PDF and JSON downloads ([`crate::report_view`]).
//!
//! ```text
//!  GET  /verify/                  the form
//!  POST /verify/                  multipart: csrf (first), file, document (only for .p7s)
//!                                 ─▶ validate ─▶ 303 /verify/report/{n}
//!  GET  /verify/report/{n}        the form and report n
//!  GET  /verify/report/{n}/{pdf|json}
//! ```

pub mod texts;

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};

use crate::layout::{Area, PageCtx, csrf_field, page};
use crate::pages;
use crate::report_view::{self, CheckFailure, KeptReports};
use crate::state::{AppState, Current};
use crate::upload::{self, UploadError};
use texts::T;

/// What the document pages keep per browser session.
#[derive(Debug, Default)]
pub struct DocsSession {
    /// Reports for download (verification page and signing).
    pub reports: KeptReports,
    /// The current or last document signature of the Demo Bank.
    pub signing: Option<crate::bank::sign_state::SignAttempt>,
}

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/verify/", get(form).post(submit))
        .route("/verify/report/{n}", get(result))
        .route("/verify/report/{n}/{format}", get(report_view::download))
}

fn csrf_of(app: &AppState, cur: &Current) -> Option<String> {
    app.sessions
        .with(&cur.id, Instant::now(), |s| s.csrf.expose_secret())
}

fn render(
    lang: crate::i18n::Lang,
    path: &str,
    csrf: &str,
    error: Option<T>,
    report: Option<Markup>,
) -> String {
    let t = |m: T| m.text(lang);
    let ctx = PageCtx {
        lang,
        area: Area::Verify,
        path,
        script: None,
    };
    page(
        &ctx,
        t(T::Title),
        html! {
            h1 { (t(T::Title)) }
            @if let Some(r) = report { (r) }
            section class="card" aria-labelledby="verify-form-h" {
                h2 id="verify-form-h" { @if path == "/verify/" { (t(T::Title)) } @else { (t(T::CheckAnother)) } }
                p { (t(T::Intro)) }
                @if let Some(e) = error {
                    p class="error" role="alert" id="verify-error" { (t(e)) }
                }
                (upload_form(lang, csrf))
            }
        },
    )
    .into_string()
}

/// The form; the CSRF field comes first (the middleware reads only the first part).
fn upload_form(lang: crate::i18n::Lang, csrf: &str) -> Markup {
    let t = |m: T| m.text(lang);
    html! {
        form method="post" action="/verify/" enctype="multipart/form-data" id="verify-form" {
            (csrf_field(csrf))
            label for="file" { (t(T::FileLabel)) }
            input type="file" id="file" name="file" required aria-describedby="file-hint";
            p class="hint" id="file-hint" { (t(T::FileHint)) }
            label for="document" { (t(T::DocumentLabel)) }
            input type="file" id="document" name="document" aria-describedby="document-hint";
            p class="hint" id="document-hint" { (t(T::DocumentHint)) }
            div { button type="submit" id="verify-submit" { (t(T::Check)) } }
        }
    }
}

/// `GET /verify/`.
async fn form(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let csrf = csrf_of(&app, &cur).unwrap_or_default();
    Html(render(cur.lang, "/verify/", &csrf, None, None)).into_response()
}

/// `GET /verify/report/{n}`.
async fn result(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    Path(n): Path<u32>,
) -> Response {
    let csrf = csrf_of(&app, &cur).unwrap_or_default();
    let path = format!("/verify/report/{n}");
    match report_view::kept(&app, &cur, n) {
        Some(k) => Html(render(
            cur.lang,
            &path,
            &csrf,
            None,
            Some(report_view::inline(&k, cur.lang)),
        ))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(render(cur.lang, "/verify/", &csrf, Some(T::Expired), None)),
        )
            .into_response(),
    }
}

/// `POST /verify/` (CSRF checked by the middleware, before any file byte is stored).
async fn submit(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let csrf = csrf_of(&app, &cur).unwrap_or_default();
    let fail = |code: StatusCode, e: T| {
        (
            code,
            Html(render(cur.lang, "/verify/", &csrf, Some(e), None)),
        )
            .into_response()
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(boundary) = upload::boundary(ct) else {
        return fail(StatusCode::BAD_REQUEST, T::Malformed);
    };
    let mut form = match upload::receive(&app.uploads, body, &boundary).await {
        Ok(f) => f,
        Err(UploadError::TooLarge) => {
            return pages::too_large(cur.lang, app.cfg.upload_limit_bytes);
        }
        Err(e) => {
            tracing::info!(error = %e, "verification upload refused");
            return fail(StatusCode::BAD_REQUEST, T::Malformed);
        }
    };
    let Some(file) = form.take_file("file") else {
        return fail(StatusCode::BAD_REQUEST, CheckFailure::NoFile.text());
    };
    let document = form.take_file("document");
    let report = match report_view::check(&app, &file, document.as_ref()).await {
        Ok(r) => r,
        Err(f) => return fail(StatusCode::UNPROCESSABLE_ENTITY, f.text()),
    };
    // The uploads are no longer needed.
    let name = file.name().to_owned();
    drop((file, document));
    let n = app.sessions.with(&cur.id, Instant::now(), |s| {
        s.data.docs.reports.push(report, &name)
    });
    match n {
        Some(n) => Redirect::to(&format!("/verify/report/{n}")).into_response(),
        None => Redirect::to("/verify/").into_response(),
    }
}
