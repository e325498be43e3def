//! Account deletion: a page naming the account and what happens, a checkbox and a button
//! (CSRF), then a FRESH confirmation on the phone (a notification authentication of that
//! account, "Delete account DOC", with the code shown), then `portal_delete_account` with
//! that fresh session (the server demands one at most `max_auth_age_seconds` old) and the
//! result page. Failures of the confirmation get the login's messages.

use std::time::Instant;

use axum::extract::{Extension, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use serde::Deserialize;
use tandem_rp::api::portal::PortalDeleteAccountRequest;
use tandem_rp::client::{Error as RpError, UserRef};

use super::overview::{Fetched, fetch};
use super::{Deletion, texts::T, views};
use crate::login::handlers::{STATUS_WAIT, start_notification};
use crate::login::state::{Failure, LoginState, StatusAnswer};
use crate::login::views::{WaitView, wait_page};
use crate::login::{LoginArea, Person};
use crate::state::{AppState, Current};

const WAIT: &str = "/portal/delete/wait";
const STATUS: &str = "/portal/delete/status";
const DONE: &str = "/portal/delete/done";
const OVERVIEW: &str = "/portal/overview";

/// `?account=DOC`.
#[derive(Debug, Deserialize)]
pub struct Which {
    #[serde(default)]
    account: String,
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    account: String,
    /// The checkbox: `yes` when ticked.
    #[serde(default)]
    understand: Option<String>,
}

/// The phone's text: `Delete account DOC` (at most 60 characters).
pub fn phone_text(document_number: &str) -> String {
    format!(
        "{} {document_number}",
        T::DeletePhoneText.text(crate::i18n::Lang::En)
    )
    .chars()
    .take(60)
    .collect()
}

/// `GET /portal/delete?account=DOC`: what deleting this account means.
pub async fn confirm(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    Query(w): Query<Which>,
) -> Response {
    show_confirm(&app, &cur, &w.account, false).await
}

async fn show_confirm(app: &AppState, cur: &Current, account: &str, missing: bool) -> Response {
    let (o, _, csrf) = match fetch(app, cur).await {
        Fetched::Ok(o, p, c) => (o, p, c),
        Fetched::Page(r) => return r,
    };
    let Some(acc) = o.accounts.iter().find(|a| a.document_number == account) else {
        return crate::pages::not_found(cur.lang);
    };
    let code = if missing {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = views::delete_confirm(cur.lang, &csrf, &o.holder, acc, missing);
    (code, Html(page.into_string())).into_response()
}

/// `POST /portal/delete` (CSRF checked by the middleware): starts the phone's confirmation.
pub async fn start(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    Form(f): Form<DeleteForm>,
) -> Response {
    if f.understand.as_deref() != Some("yes") {
        return show_confirm(&app, &cur, &f.account, true).await;
    }
    let (o, _, _) = match fetch(&app, &cur).await {
        Fetched::Ok(o, p, c) => (o, p, c),
        Fetched::Page(r) => return r,
    };
    if !o.accounts.iter().any(|a| a.document_number == f.account) {
        return crate::pages::not_found(cur.lang);
    }
    let Some(rp) = app.cfg.portal.clone() else {
        return views::not_configured(cur.lang);
    };
    let user = UserRef::Document(f.account.clone());
    let attempt = start_notification(&app, &rp, &user, phone_text(&f.account)).await;
    let failed = attempt.current().is_final();
    app.sessions.with(&cur.id, Instant::now(), |s| {
        s.data.portal.deletion = Some(Deletion {
            document_number: f.account.clone(),
            attempt,
        })
    });
    Redirect::to(if failed { DONE } else { WAIT }).into_response()
}

/// `GET /portal/delete/wait`: the code while the phone confirms.
pub async fn wait(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let found = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            let d = s.data.portal.deletion.as_ref()?;
            match &d.attempt.kind {
                crate::login::follow::AttemptKind::Notification { vc } => {
                    Some((vc.clone(), d.document_number.clone()))
                }
                _ => None,
            }
        })
        .flatten();
    let Some((vc, doc)) = found else {
        return Redirect::to(OVERVIEW).into_response();
    };
    let lead = format!("{} {doc}", T::DeleteWaitLead.text(cur.lang));
    let page = wait_page(
        cur.lang,
        &WaitView {
            area: LoginArea::Portal,
            path: WAIT,
            status: STATUS,
            vc: &vc,
            done: DONE,
            cancel: OVERVIEW,
            lead: Some(&lead),
        },
    );
    Html(page.into_string()).into_response()
}

/// `GET /portal/delete/status`: answers when the confirmation ends, or after 25 s.
pub async fn status(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let rx = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            s.data
                .portal
                .deletion
                .as_ref()
                .map(|d| d.attempt.state.clone())
        })
        .flatten();
    let Some(mut rx) = rx else {
        return Json(StatusAnswer {
            state: "none",
            message: String::new(),
            next: Some(OVERVIEW),
        })
        .into_response();
    };
    let _ = tokio::time::timeout(STATUS_WAIT, rx.wait_for(LoginState::is_final)).await;
    let state = rx.borrow().clone();
    let mut answer = crate::login::state::status_answer(LoginArea::Portal, Some(&state), cur.lang);
    if answer.next.is_some() {
        answer.next = Some(DONE);
    }
    Json(answer).into_response()
}

/// Whether the fresh confirmation came from the holder who is logged in.
pub fn same_holder(logged_in: &Person, confirmed: &Person) -> bool {
    logged_in.semantics_identifier == confirmed.semantics_identifier
}

/// `GET /portal/delete/done`: deletes with the fresh session and shows the result, or the
/// confirmation's failure.
pub async fn done(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let found = app.sessions.with(&cur.id, Instant::now(), |s| {
        let state = s.data.portal.deletion.as_ref().map(|d| d.attempt.current());
        let doc = s
            .data
            .portal
            .deletion
            .as_ref()
            .map(|d| d.document_number.clone());
        if state.as_ref().is_some_and(LoginState::is_final) {
            // Each confirmation is used once.
            s.data.portal.deletion = None;
        }
        (state, doc, s.data.portal.person.clone())
    });
    let Some((Some(state), Some(doc), Some(holder))) = found else {
        return Redirect::to(OVERVIEW).into_response();
    };
    let lang = cur.lang;
    let confirmed = match state {
        LoginState::Waiting | LoginState::Callback(_) => return Redirect::to(WAIT).into_response(),
        LoginState::Failed(f) => {
            let page = views::delete_failed(lang, f.message().text(lang), f.code());
            return Html(page.into_string()).into_response();
        }
        LoginState::LoggedIn(p) => p,
    };
    if !same_holder(&holder, &confirmed) {
        tracing::warn!("deletion confirmed by another person: refused");
        let f = Failure::Verification;
        let page = views::delete_failed(lang, f.message().text(lang), f.code());
        return Html(page.into_string()).into_response();
    }
    let Some(rp) = app.cfg.portal.clone() else {
        return views::not_configured(lang);
    };
    let req = PortalDeleteAccountRequest {
        relying_party_uuid: rp.relying_party_uuid,
        relying_party_name: rp.relying_party_name,
        auth_session_id: confirmed.auth_session_id.clone(),
        document_number: doc,
    };
    match app.rp.portal_delete_account(&req).await {
        Ok(d) => {
            tracing::info!(revoked = d.revoked_certificates.len(), "account deleted");
            Html(views::deleted(lang, &d).into_string()).into_response()
        }
        Err(RpError::Problem { status: 410, .. }) => {
            // The holder's fresh confirmation is too old: show the timeout message.
            let f = Failure::Timeout;
            let page = views::delete_failed(lang, f.message().text(lang), f.code());
            Html(page.into_string()).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "deletion refused");
            let page = views::delete_failed(lang, T::DeleteRefused.text(lang), "refused");
            (StatusCode::BAD_GATEWAY, Html(page.into_string())).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phone_text_names_the_account_and_fits() {
        assert_eq!(
            phone_text("PNOEE-30303039914-P3XN-Q"),
            "Delete account PNOEE-30303039914-P3XN-Q"
        );
        assert_eq!(phone_text(&"X".repeat(100)).chars().count(), 60);
    }

    #[test]
    fn only_the_logged_in_holder_may_confirm() {
        let p = |id: &str| Person {
            name: "N".into(),
            semantics_identifier: id.into(),
            document_number: None,
            auth_session_id: "s".into(),
        };
        assert!(same_holder(&p("PNOEE-1"), &p("PNOEE-1")));
        assert!(!same_holder(&p("PNOEE-1"), &p("PNOEE-2")));
    }
}
