//! Signing a document in the Demo Bank (after login): the upload, the signer (the logged-in
//! person's document number), the prepared PAdES (PDF) or CAdES (anything else) signature,
//! the notification session whose verification code the page shows; then
//! [`super::sign_state`] follows it to the signed file and its report.
//!
//! ```text
//!  POST /bank/sign          multipart: csrf (first), file ─▶ /bank/sign/wait (the code)
//!  GET  /bank/sign/status   long poll (≤ 25 s): {state, message, next}
//!  GET  /bank/sign/done     signed: download + report inline; failed: message + try again
//!  GET  /bank/sign/file     the signed PDF or .p7s (deleted here after the download)
//! ```

use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use maud::{Markup, html};
use tandem_rp::api::types::{HashAlgorithm, SignCertificateLevel};
use tandem_rp::documents::pades::Appearance;
use tandem_rp::signing::document::{self, Extension as SignExtension, PadesOptions};
use tandem_rp::signing::session::{self, SessionOptions, StartedSignature};
use tandem_rp::signing::{RelyingParty, Signer, SigningError, signer};
use tandem_rp::validation::file::FileKind;
use tokio::sync::watch;

use super::sign_state::{Outcome, SignAttempt, SignFailure, SignState, Signed, status_answer};
use super::sign_texts::S;
use crate::i18n::Lang;
use crate::layout::{Area, PageCtx, csrf_field, page};
use crate::login::handlers::STATUS_WAIT;
use crate::pages;
use crate::report_view;
use crate::state::{AppState, Current};
use crate::upload::{self, TempUpload, UploadError};

/// `timeoutMs` of each RP API long poll.
const POLL_TIMEOUT_MS: u64 = 30_000;

fn ctx<'a>(lang: Lang, path: &'a str, script: bool) -> PageCtx<'a> {
    PageCtx {
        lang,
        area: Area::Bank,
        path,
        script: script.then_some("/static/sign.js"),
    }
}

/// The "Sign a document" section of the account page.
pub fn form_section(app: &AppState, lang: Lang, csrf: &str) -> Markup {
    let t = |m: S| m.text(lang);
    html! {
        section class="card" id="sign" aria-labelledby="sign-h" {
            h2 id="sign-h" { (t(S::SignHeading)) }
            p { (t(S::SignHelp)) }
            @if app.cfg.tsa_url.is_none() {
                p class="error" role="alert" id="no-tsa" { (t(S::NoTsa)) }
            } @else {
                form method="post" action="/bank/sign" enctype="multipart/form-data" id="sign-form" {
                    (csrf_field(csrf))
                    label for="sign-file" { (t(S::SignFileLabel)) }
                    input type="file" id="sign-file" name="file" required;
                    div { button type="submit" id="sign-submit" { (t(S::SignButton)) } }
                }
            }
        }
    }
}

fn failed_page(lang: Lang, f: SignFailure) -> Response {
    let t = |m: S| m.text(lang);
    let body = page(
        &ctx(lang, "/bank/account", false),
        t(S::FailedHeading),
        html! {
            h1 { (t(S::FailedHeading)) }
            p class="error" role="alert" data-failure=(f.code()) { (f.message().text(lang)) }
            a class="button" href="/bank/account#sign" { (t(S::TryAgain)) }
        },
    );
    Html(body.into_string()).into_response()
}

/// The logged-in person's document number (`Err(None)`: not logged in).
fn document_of(app: &AppState, cur: &Current) -> Result<String, Option<SignFailure>> {
    let p = app
        .sessions
        .with(&cur.id, Instant::now(), |s| s.data.bank.person.clone())
        .flatten()
        .ok_or(None)?;
    p.document_number.ok_or(Some(SignFailure::NoDocument))
}

/// `POST /bank/sign` (CSRF checked by the middleware before the file is read).
pub async fn start(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let document = match document_of(&app, &cur) {
        Ok(d) => d,
        Err(None) => return Redirect::to("/bank/").into_response(),
        Err(Some(f)) => return failed_page(cur.lang, f),
    };
    let Some(tsa) = app.cfg.tsa_url.clone() else {
        return failed_page(cur.lang, SignFailure::NoTsa);
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(boundary) = upload::boundary(ct) else {
        return failed_page(cur.lang, SignFailure::Document);
    };
    let mut form = match upload::receive(&app.uploads, body, &boundary).await {
        Ok(f) => f,
        Err(UploadError::TooLarge) => {
            return pages::too_large(cur.lang, app.cfg.upload_limit_bytes);
        }
        Err(e) => {
            tracing::info!(error = %e, "signing upload refused");
            return failed_page(cur.lang, SignFailure::Document);
        }
    };
    let Some(input) = form.take_file("file").filter(|f| f.size() > 0) else {
        return failed_page(cur.lang, SignFailure::Document);
    };
    let attempt = match begin(&app, document, input, tsa).await {
        Ok(a) => a,
        Err(e) => {
            tracing::info!(error = %e, "signature not started");
            return failed_page(cur.lang, SignFailure::of(&e));
        }
    };
    app.sessions.with(&cur.id, Instant::now(), |s| {
        s.data.docs.signing = Some(attempt)
    });
    Redirect::to("/bank/sign/wait").into_response()
}

/// What the finishing task needs of the prepared signature.
enum Prepared {
    Pades(document::PadesSigning),
    Cades(document::CadesSigning),
}

fn is_pdf(path: &std::path::Path) -> bool {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(FileKind::HEAD_LEN as u64).read_to_end(&mut head))
        .is_ok()
        && FileKind::detect(&head) == Some(FileKind::Pdf)
}

/// The signer, the prepared signature, the started session and the task that follows it.
async fn begin(
    app: &AppState,
    document: String,
    input: TempUpload,
    tsa: String,
) -> Result<SignAttempt, SigningError> {
    let rp = RelyingParty {
        uuid: app.cfg.bank.relying_party_uuid.clone(),
        name: app.cfg.bank.relying_party_name.clone(),
    };
    let level = SignCertificateLevel::Qualified;
    let der = signer::certificate_of_document(&app.rp, &rp, &document, level, &app.anchors).await?;
    let signer = Signer::new(document, der, app.anchors.intermediates())?;
    let (hash, scheme) = document::hash_and_scheme(HashAlgorithm::Sha256, false)?;
    let now = SystemTime::now();
    // Reading and hashing the file (up to the upload limit) is blocking work.
    let path = input.path().to_owned();
    let out = upload::output_path(&app.uploads, "pdf");
    let prepare = {
        let signer = signer.clone();
        move || -> Result<Prepared, SigningError> {
            if is_pdf(&path) {
                let options = PadesOptions {
                    hash,
                    scheme,
                    signing_time: now,
                    appearance: Appearance::Invisible,
                };
                let p = document::prepare_pades(&signer, &path, &out, &options)?;
                Ok(Prepared::Pades(p))
            } else {
                let f = std::fs::File::open(&path).map_err(SigningError::Read)?;
                let c = document::prepare_cades(&signer, f, hash, scheme, now)?;
                Ok(Prepared::Cades(c))
            }
        }
    };
    let prepared = tokio::task::spawn_blocking(prepare)
        .await
        .map_err(|e| SigningError::Read(std::io::Error::other(e.to_string())))??;
    let digest = match &prepared {
        Prepared::Pades(p) => p.digest_to_sign().to_vec(),
        Prepared::Cades(c) => c.digest_to_sign().to_vec(),
    };
    let text: String = format!("Sign {}", input.name()).chars().take(60).collect();
    let options = SessionOptions {
        level,
        hash,
        scheme,
        text,
        vc_choice: false,
        timeout_ms: POLL_TIMEOUT_MS,
    };
    let started = session::start(&app.rp, &rp, &signer, &options, &digest).await?;
    let (tx, rx) = watch::channel(SignState::Waiting);
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let vc = started.verification_code.clone();
    let name = input.name().to_owned();
    let task = {
        let (app, outcome) = (app.clone(), outcome.clone());
        tokio::spawn(async move {
            let end = match finish(&app, started, prepared, input, &tsa).await {
                Ok(signed) => {
                    if let Ok(mut o) = outcome.lock() {
                        *o = Some(signed);
                    }
                    SignState::Signed
                }
                Err(f) => SignState::Failed(f),
            };
            tracing::info!(result = ?end, "document signature ended");
            let _ = tx.send(end);
        })
    };
    Ok(SignAttempt::new(vc, name, rx, outcome, task))
}

/// Waits for the phone, finishes the signature with its time stamp, validates the result.
async fn finish(
    app: &AppState,
    started: StartedSignature,
    prepared: Prepared,
    input: TempUpload,
    tsa: &str,
) -> Result<Signed, SignFailure> {
    let fail = |e: SigningError| {
        tracing::info!(error = %e, "document signature failed");
        SignFailure::of(&e)
    };
    let verified = started
        .finish(&app.rp, &app.anchors, |_| {})
        .await
        .map_err(fail)?;
    let ext = SignExtension {
        tsa: Some(tsa),
        long_term: None,
    };
    let mut quiet = |_: document::Step<'_>| {};
    let stem = upload::stem(input.name()).to_owned();
    let (file, content_type, document) = match prepared {
        Prepared::Pades(p) => {
            let (path, _) = document::finish_pades(p, &verified.signature, &ext, &mut quiet)
                .await
                .map_err(fail)?;
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let name = format!("{stem}-signed.pdf");
            let path = tempfile::TempPath::try_from_path(path).map_err(|e| {
                tracing::warn!(error = %e, "signed PDF path");
                SignFailure::ServiceFailure
            })?;
            let signed = TempUpload::new(path, &name, size);
            (signed, "application/pdf", None)
        }
        Prepared::Cades(c) => {
            let (p7s, _) = document::finish_cades(c, &verified.signature, &ext, &mut quiet)
                .await
                .map_err(fail)?;
            let (mut f, path) = app.uploads.new_file("out-").map_err(|e| {
                tracing::warn!(error = %e, "cannot store the signature");
                SignFailure::ServiceFailure
            })?;
            std::io::Write::write_all(&mut f, &p7s).map_err(|_| SignFailure::ServiceFailure)?;
            let name = format!("{}.p7s", input.name());
            let signed = TempUpload::new(path, &name, p7s.len() as u64);
            (signed, "application/pkcs7-signature", Some(input))
        }
    };
    let report = report_view::check(app, &file, document.as_ref())
        .await
        .map_err(|_| SignFailure::ServiceFailure)?;
    Ok(Signed {
        file,
        content_type,
        report,
    })
}

/// `GET /bank/sign/wait`: the verification code while the phone confirms.
pub async fn wait(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let vc = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            s.data
                .docs
                .signing
                .as_ref()
                .map(|a| (a.vc.clone(), a.name.clone()))
        })
        .flatten();
    let Some((vc, name)) = vc else {
        return Redirect::to("/bank/account").into_response();
    };
    let t = |m: S| m.text(cur.lang);
    let body = page(
        &ctx(cur.lang, "/bank/sign/wait", true),
        t(S::WaitHeading),
        html! {
            h1 { (t(S::WaitHeading)) }
            section class="card" id="signing" {
                p { (name) }
                p { (t(S::WaitVcLabel)) ":" }
                p class="vc" id="vc" { (vc) }
                p { (t(S::WaitHelp)) }
                p id="status" class="status" role="status" aria-live="polite" { (t(S::Waiting)) }
                a class="button secondary" href="/bank/sign/done" { (crate::i18n::Msg::Continue.text(cur.lang)) }
            }
        },
    );
    Html(body.into_string()).into_response()
}

/// `GET /bank/sign/status`: answers when the signature ends, or after [`STATUS_WAIT`].
pub async fn status(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let rx = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            s.data.docs.signing.as_ref().map(|a| a.state.clone())
        })
        .flatten();
    let Some(mut rx) = rx else {
        return Json(status_answer(None, cur.lang)).into_response();
    };
    let _ = tokio::time::timeout(STATUS_WAIT, rx.wait_for(|s| s.is_final())).await;
    let state = *rx.borrow();
    Json(status_answer(Some(state), cur.lang)).into_response()
}

/// `GET /bank/sign/done`.
pub async fn done(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let now = Instant::now();
    let seen = app
        .sessions
        .with(&cur.id, now, |s| {
            let docs = &mut s.data.docs;
            let a = docs.signing.as_mut()?;
            let state = a.current();
            if state == SignState::Signed && a.done.is_none() {
                let signed = a.take_result()?;
                let id = docs.reports.push(signed.report.clone(), signed.file.name());
                a.done = Some((Some(signed), id));
            }
            let a = docs.signing.as_ref()?;
            let downloaded = matches!(a.done, Some((None, _)));
            Some((
                state,
                a.done.as_ref().map(|d| d.1),
                downloaded,
                a.name.clone(),
            ))
        })
        .flatten();
    let Some((state, report, downloaded, name)) = seen else {
        return Redirect::to("/bank/account").into_response();
    };
    match (state, report) {
        (SignState::Failed(f), _) => failed_page(cur.lang, f),
        (SignState::Signed, Some(id)) => {
            let kept = report_view::kept(&app, &cur, id);
            let t = |m: S| m.text(cur.lang);
            let body = page(
                &ctx(cur.lang, "/bank/sign/done", false),
                t(S::SignedHeading),
                html! {
                    h1 { (t(S::SignedHeading)) ": " (name) }
                    section class="card" {
                        p { (t(S::SignedHelp)) }
                        @if downloaded {
                            p class="hint" { (t(S::Downloaded)) }
                        } @else {
                            a class="button" id="download-signed" href="/bank/sign/file" download { (t(S::DownloadSigned)) }
                        }
                        " "
                        a class="button secondary" href="/bank/account" { (t(S::BackToAccount)) }
                    }
                    @if let Some(k) = kept { (report_view::inline(&k, cur.lang)) }
                },
            );
            Html(body.into_string()).into_response()
        }
        _ => Redirect::to("/bank/sign/wait").into_response(),
    }
}

/// `GET /bank/sign/file`: the signed file; deleted here once handed out.
pub async fn file(State(app): State<AppState>, Extension(cur): Extension<Current>) -> Response {
    let signed = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            let done = s.data.docs.signing.as_mut()?.done.as_mut()?;
            done.0.take()
        })
        .flatten();
    let Some(signed) = signed else {
        return pages::not_found(cur.lang);
    };
    match tokio::fs::read(signed.file.path()).await {
        Ok(bytes) => report_view::attachment(bytes, signed.content_type, signed.file.name()),
        Err(e) => {
            tracing::warn!(error = %e, "signed file unreadable");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
