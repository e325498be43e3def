//! `/portal/certificates`: software certificates of the relying parties the logged-in person
//! administers (issue 24). The web process asks the server with the portal's relying party
//! and the portal login's AUTH session (`RpApiClient::rp_certs_*`); keys and `.p12` files are
//! made in the browser (`/static/rpcert-pki.js`), only certificate requests come here.
//!
//! ```text
//!  GET  /portal/certificates            overview, vouchers, dialogs (markup: rp_cert_views)
//!  GET  /portal/certificates/state      {sig, pending} for the page's poll (rpcerts.js)
//!  POST /portal/certificates/create     rp, (label, csr)+  ─▶ JSON {ok} / {error}
//!  POST /portal/certificates/cancel     rp, id ─▶ JSON {voucher} (fetch) or 303 + note
//!  POST /portal/certificates/revoke     rp, id ─▶ 303 + note
//!  POST /portal/certificates/redeem     rp, code ─▶ 303 + note
//!  GET  /portal/certificates/download?rp=&id=  JSON {fileName, der, chain}
//! ```
//!
//! Every POST passed the CSRF and Origin middleware before it gets here. Labels are checked
//! here with [`check_label`] (the script's check is only for immediate feedback).

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tandem_rp::api::rp_certs::{
    CertificateRequest, CreateRequest, ListRequest, NewRpCert, RedeemRequest, RpCertOverview,
    RpCertState, check_label, p12_file_name,
};
use tandem_rp::client::Error as RpError;

use super::overview::{expired, holder};
use super::rp_cert_texts::{C, label_error};
use super::rp_cert_views;
use crate::config::RelyingParty;
use crate::i18n::Lang;
use crate::login::Person;
use crate::state::{AppState, Current};

/// The header the page's script sends with its `fetch` POSTs (answers are then JSON).
pub const FETCH_HEADER: &str = "x-tandem-fetch";

/// A note for the next rendering of the page (after a plain form POST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpCertNote {
    /// An error (`role=alert`) or a success (`role=status`).
    pub error: bool,
    /// The text.
    pub text: String,
}

/// The portal's relying party and the logged-in person with the CSRF token, or the page to
/// show instead.
fn who(app: &AppState, cur: &Current) -> Result<(RelyingParty, Person, String), Box<Response>> {
    let Some(rp) = app.cfg.portal.clone() else {
        return Err(Box::new(super::views::not_configured(cur.lang)));
    };
    match holder(app, cur) {
        Some((p, csrf)) => Ok((rp, p, csrf)),
        None if cur.expired => Err(Box::new(expired(app, cur))),
        None => Err(Box::new(Redirect::to("/portal/").into_response())),
    }
}

async fn list(app: &AppState, rp: &RelyingParty, p: &Person) -> Result<RpCertOverview, RpError> {
    app.rp
        .rp_certs_list(&ListRequest {
            relying_party_uuid: rp.relying_party_uuid.clone(),
            relying_party_name: rp.relying_party_name.clone(),
            auth_session_id: p.auth_session_id.clone(),
            target_relying_party_uuid: None,
        })
        .await
}

/// What an RP API failure means for the person, localized.
fn failure(e: &RpError, lang: Lang) -> String {
    match e {
        RpError::Problem {
            status: 400..=499, ..
        } => format!("{} {e}", C::Failed.text(lang)),
        _ => {
            tracing::warn!(error = %e, "rp-certs call failed");
            super::texts::T::PortalUnavailable.text(lang).to_owned()
        }
    }
}

/// Whether the list says the login is over (404: its AUTH session is gone; 410: older than
/// the server's portal session lifetime), as the overview treats them.
fn login_over(e: &RpError) -> bool {
    matches!(
        e,
        RpError::Problem {
            status: 404 | 410,
            ..
        }
    )
}

/// `GET /portal/certificates`.
pub async fn page(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let (rp, person, csrf) = match who(&app, &cur) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let note = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            s.data.portal.rp_cert_note.take()
        })
        .flatten();
    match list(&app, &rp, &person).await {
        Ok(o) => Html(rp_cert_views::page(cur.lang, &csrf, &o, note.as_ref()).into_string())
            .into_response(),
        Err(e) if login_over(&e) => expired(&app, &cur),
        Err(e) => super::views::error(cur.lang, StatusCode::BAD_GATEWAY, &failure(&e, cur.lang)),
    }
}

/// A short fingerprint of what the page shows: the script reloads its part when it changes.
pub fn signature(o: &RpCertOverview) -> String {
    let mut s = String::new();
    for rp in &o.relying_parties {
        s.push_str(&format!(
            "{}:{}:{};",
            rp.relying_party_uuid,
            rp.credits,
            rp.vouchers.len()
        ));
        for c in &rp.certificates {
            s.push_str(&format!("{}={:?},", c.id, c.state));
        }
    }
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Whether a creation is still queued or running.
pub fn pending(o: &RpCertOverview) -> bool {
    o.relying_parties.iter().any(|rp| {
        rp.certificates
            .iter()
            .any(|c| matches!(c.state, RpCertState::Queued | RpCertState::Creating))
    })
}

/// `GET /portal/certificates/state`: `{sig, pending}`; 401 when not logged in.
pub async fn state(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let Ok((rp, person, _)) = who(&app, &cur) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "login"}))).into_response();
    };
    match list(&app, &rp, &person).await {
        Ok(o) => Json(json!({"sig": signature(&o), "pending": pending(&o)})).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": failure(&e, cur.lang)})),
        )
            .into_response(),
    }
}

/// The fields of a URL-encoded body (repeated names kept in order).
fn fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn json_error(status: StatusCode, text: String) -> Response {
    (status, Json(json!({"error": text}))).into_response()
}

/// `POST /portal/certificates/create` (the script): `rp`, then `label` and `csr` in pairs.
pub async fn create(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    body: Bytes,
) -> Response {
    let lang = cur.lang;
    let Ok((rp, person, _)) = who(&app, &cur) else {
        return json_error(StatusCode::UNAUTHORIZED, C::Failed.text(lang).into());
    };
    let f = fields(&body);
    let target = field(&f, "rp").unwrap_or_default().to_owned();
    let labels: Vec<&str> = f
        .iter()
        .filter(|(k, _)| k == "label")
        .map(|(_, v)| v.as_str())
        .collect();
    let csrs: Vec<&str> = f
        .iter()
        .filter(|(k, _)| k == "csr")
        .map(|(_, v)| v.as_str())
        .collect();
    if labels.is_empty() || labels.len() != csrs.len() {
        return json_error(StatusCode::BAD_REQUEST, C::Failed.text(lang).into());
    }
    for (i, l) in labels.iter().enumerate() {
        if let Err(e) = check_label(l) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": label_error(&e, lang), "row": i})),
            )
                .into_response();
        }
    }
    let req = CreateRequest {
        relying_party_uuid: rp.relying_party_uuid.clone(),
        relying_party_name: rp.relying_party_name.clone(),
        auth_session_id: person.auth_session_id.clone(),
        target_relying_party_uuid: target,
        certificates: labels
            .iter()
            .zip(&csrs)
            .map(|(l, c)| NewRpCert {
                label: (*l).to_owned(),
                csr: (*c).to_owned(),
            })
            .collect(),
    };
    match app.rp.rp_certs_create(&req).await {
        Ok(c) => Json(json!({"ok": true, "credits": c.credits})).into_response(),
        Err(RpError::Problem { status: 409, .. }) => {
            json_error(StatusCode::CONFLICT, C::NoCredits.text(lang).into())
        }
        Err(e) => json_error(StatusCode::BAD_GATEWAY, failure(&e, lang)),
    }
}

/// Sets the note for the page and goes back to it.
fn back(app: &AppState, cur: &Current, error: bool, text: String) -> Response {
    app.sessions.with(&cur.id, Instant::now(), |s| {
        s.data.portal.rp_cert_note = Some(RpCertNote { error, text });
    });
    Redirect::to("/portal/certificates").into_response()
}

fn one(rp: &RelyingParty, p: &Person, f: &[(String, String)]) -> CertificateRequest {
    CertificateRequest {
        relying_party_uuid: rp.relying_party_uuid.clone(),
        relying_party_name: rp.relying_party_name.clone(),
        auth_session_id: p.auth_session_id.clone(),
        target_relying_party_uuid: field(f, "rp").unwrap_or_default().to_owned(),
        certificate_id: field(f, "id").unwrap_or_default().to_owned(),
    }
}

/// `POST /portal/certificates/cancel`: the voucher as JSON (script) or in the page's note.
pub async fn cancel(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = cur.lang;
    let by_script = headers.contains_key(FETCH_HEADER);
    let (rp, person, _) = match who(&app, &cur) {
        Ok(w) => w,
        Err(_) if by_script => {
            return json_error(StatusCode::UNAUTHORIZED, C::Failed.text(lang).into());
        }
        Err(r) => return *r,
    };
    let f = fields(&body);
    match app.rp.rp_certs_cancel(&one(&rp, &person, &f)).await {
        Ok(c) if by_script => Json(json!({"voucher": c.voucher.code})).into_response(),
        Ok(c) => back(
            &app,
            &cur,
            false,
            format!("{} {}", C::VoucherShown.text(lang), c.voucher.code),
        ),
        Err(e) if by_script => json_error(StatusCode::BAD_GATEWAY, failure(&e, lang)),
        Err(e) => back(&app, &cur, true, failure(&e, lang)),
    }
}

/// `POST /portal/certificates/revoke`.
pub async fn revoke(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    body: Bytes,
) -> Response {
    let (rp, person, _) = match who(&app, &cur) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let f = fields(&body);
    match app.rp.rp_certs_revoke(&one(&rp, &person, &f)).await {
        Ok(_) => back(&app, &cur, false, C::RevokedDone.text(cur.lang).into()),
        Err(e) => back(&app, &cur, true, failure(&e, cur.lang)),
    }
}

/// `POST /portal/certificates/redeem` (a plain form; works without JavaScript).
pub async fn redeem(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    body: Bytes,
) -> Response {
    let (rp, person, _) = match who(&app, &cur) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let f = fields(&body);
    let req = RedeemRequest {
        relying_party_uuid: rp.relying_party_uuid.clone(),
        relying_party_name: rp.relying_party_name.clone(),
        auth_session_id: person.auth_session_id.clone(),
        target_relying_party_uuid: field(&f, "rp").unwrap_or_default().to_owned(),
        voucher_code: field(&f, "code").unwrap_or_default().trim().to_owned(),
    };
    match app.rp.rp_certs_redeem(&req).await {
        Ok(r) => back(
            &app,
            &cur,
            false,
            format!("{} {}", C::Redeemed.text(cur.lang), r.credits),
        ),
        Err(e) => back(&app, &cur, true, failure(&e, cur.lang)),
    }
}

/// The query of the download.
#[derive(Debug, Deserialize)]
pub struct Which {
    rp: String,
    id: String,
}

/// `GET /portal/certificates/download?rp=&id=`: the certificate, its chain and the file
/// name, as JSON for the script that builds the `.p12`.
pub async fn download(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    Query(w): Query<Which>,
) -> Response {
    let Ok((rp, person, _)) = who(&app, &cur) else {
        return json_error(StatusCode::UNAUTHORIZED, C::Failed.text(cur.lang).into());
    };
    let f = vec![("rp".to_owned(), w.rp), ("id".to_owned(), w.id)];
    match app.rp.rp_certs_certificate(&one(&rp, &person, &f)).await {
        Ok(c) => {
            let serial = c.certificate.serial_number.clone().unwrap_or_default();
            Json(json!({
                "fileName": p12_file_name(&c.certificate.label, &serial),
                "label": c.certificate.label,
                "der": c.der,
                "chain": c.chain,
            }))
            .into_response()
        }
        Err(e) => json_error(StatusCode::BAD_GATEWAY, failure(&e, cur.lang)),
    }
}
