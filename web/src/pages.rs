//! Error pages (403, 404, 413, 503): a clear message in the browser's language.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse as _, Response};
use maud::html;

use crate::i18n::{Lang, Msg};
use crate::layout::{Area, PageCtx, page};

/// An error page with `heading` and `text`.
pub fn error(lang: Lang, status: StatusCode, heading: Msg, text: Msg) -> Response {
    error_with(lang, status, heading, text.text(lang).to_owned())
}

fn error_with(lang: Lang, status: StatusCode, heading: Msg, text: String) -> Response {
    let ctx = PageCtx {
        lang,
        area: Area::None,
        path: "/",
        script: None,
    };
    let body = page(
        &ctx,
        heading.text(lang),
        html! {
            h1 { (heading.text(lang)) }
            p class="error" role="alert" { (text) }
            p { a class="button" href="/bank/" { (Msg::AreaBank.text(lang)) } }
        },
    );
    (status, Html(body.into_string())).into_response()
}

/// 403 with the reason.
pub fn forbidden(lang: Lang, reason: Msg) -> Response {
    error(lang, StatusCode::FORBIDDEN, Msg::ForbiddenHeading, reason)
}

/// 413 naming the limit.
pub fn too_large(lang: Lang, limit_bytes: u64) -> Response {
    let mib = limit_bytes as f64 / (1024.0 * 1024.0);
    let text = format!("{} {mib:.0} MiB.", Msg::TooLarge.text(lang));
    let mut r = error_with(
        lang,
        StatusCode::PAYLOAD_TOO_LARGE,
        Msg::TooLargeHeading,
        text,
    );
    // The rest of the body is not read: tell the client the connection ends here.
    r.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    r
}

/// 404.
pub fn not_found(lang: Lang) -> Response {
    error(
        lang,
        StatusCode::NOT_FOUND,
        Msg::NotFoundHeading,
        Msg::NotFound,
    )
}
