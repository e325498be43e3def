//! `/bank/account` (with the "Sign a document" form of [`super::sign`]) and logout.

use std::time::Instant;

use axum::extract::{Extension, State};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::views;
use crate::state::{AppState, Current, SessionChange};

/// `GET /bank/account`: the logged-in person, or back to the login.
pub async fn page(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let found = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            s.data
                .bank
                .person
                .clone()
                .map(|p| (p, s.csrf.expose_secret()))
        })
        .flatten();
    match found {
        Some((p, csrf)) => {
            // The signing form goes at the end of the page's main content (views.rs draws
            // the person; sign.rs the form).
            let page = views::account(cur.lang, &csrf, &p).into_string();
            let form = super::sign::form_section(&app, cur.lang, &csrf).into_string();
            Html(page.replacen("</main>", &format!("{form}</main>"), 1)).into_response()
        }
        None => Redirect::to("/bank/").into_response(),
    }
}

/// `POST /bank/logout` (CSRF checked by the middleware): ends the session and its cookie.
pub async fn logout(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    app.sessions.end(&cur.id);
    let mut r = Redirect::to("/bank/").into_response();
    r.extensions_mut().insert(SessionChange::Ended);
    r
}
