//! Verification reports in pages: validating an uploaded file (`validate_file` against the
//! configured trust anchors, revocation online), the report inline (the report module's
//! sections under our stylesheet: no inline style, so the CSP holds), and the reports a
//! browser session keeps for download as PDF or JSON (the last [`MAX_KEPT`]).
//!
//! ```text
//!  GET /verify/report/{n}          the page with report n inline (verify/mod.rs)
//!  GET /verify/report/{n}/pdf      report n as PDF, in the page's language
//!  GET /verify/report/{n}/json     report n as JSON
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use tandem_rp::client::revocation::RevocationOptions;
use tandem_rp::report::{Colour, VerificationReport, html as report_html};
use tandem_rp::validation::ValidationContext;
use tandem_rp::validation::file::{FileError, NamedFile, validate_file};

use crate::i18n::Lang;
use crate::pages;
use crate::state::{AppState, Current};
use crate::upload::{self, TempUpload};
use crate::verify::texts::T;

/// How many reports a browser session keeps.
pub const MAX_KEPT: usize = 5;
/// Timeout of each OCSP / CRL request while validating.
pub const REVOCATION_TIMEOUT: Duration = Duration::from_secs(10);

/// A report kept for download.
#[derive(Debug, Clone)]
pub struct Kept {
    /// Its number in this session.
    pub id: u32,
    /// The report.
    pub report: Arc<VerificationReport>,
    /// The checked file's (sanitised) name.
    pub name: String,
}

/// The reports of one browser session, newest last, at most [`MAX_KEPT`].
#[derive(Debug, Default)]
pub struct KeptReports {
    list: VecDeque<Kept>,
    next: u32,
}

impl KeptReports {
    /// Keeps `report` (dropping the oldest beyond [`MAX_KEPT`]); its number.
    pub fn push(&mut self, report: VerificationReport, name: &str) -> u32 {
        self.next += 1;
        let id = self.next;
        self.list.push_back(Kept {
            id,
            report: Arc::new(report),
            name: upload::display_name(name),
        });
        while self.list.len() > MAX_KEPT {
            self.list.pop_front();
        }
        id
    }

    /// Report `id`, if still kept.
    pub fn get(&self, id: u32) -> Option<Kept> {
        self.list.iter().find(|k| k.id == id).cloned()
    }
}

/// The report module's language for a page's.
pub fn report_lang(lang: Lang) -> tandem_rp::report::Lang {
    match lang {
        Lang::De => tandem_rp::report::Lang::De,
        Lang::En => tandem_rp::report::Lang::En,
    }
}

/// The revocation options of the configuration (`[revocation]` overrides the certificates'
/// own OCSP and CRL addresses).
pub fn revocation_options(app: &AppState) -> RevocationOptions {
    let r = app.cfg.revocation.clone().unwrap_or_default();
    RevocationOptions {
        ocsp_url: r.ocsp_url,
        crl_url: r.crl_url,
        ca_crl_url: r.ca_crl_url,
        timeout: REVOCATION_TIMEOUT,
        ..RevocationOptions::default()
    }
}

/// Why a file could not be checked at all (a message, not a report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFailure {
    /// No file chosen.
    NoFile,
    /// Bytes of no known kind.
    UnknownKind,
    /// A `.p7s` without its document.
    DocumentMissing,
    /// A document with a PDF or package.
    DocumentNotExpected,
    /// Anything else (unreadable, clock).
    Internal,
}

impl CheckFailure {
    /// Its text.
    pub fn text(self) -> T {
        match self {
            Self::NoFile => T::NoFile,
            Self::UnknownKind => T::UnknownKind,
            Self::DocumentMissing => T::DocumentMissing,
            Self::DocumentNotExpected => T::DocumentNotExpected,
            Self::Internal => T::CheckFailed,
        }
    }
}

/// Validates `file` (with `document` for a detached signature) as `validate_file` does for
/// `tandem verify`. (Its future is not `Send`: it runs on a blocking-pool thread.)
pub async fn check(
    app: &AppState,
    file: &TempUpload,
    document: Option<&TempUpload>,
) -> Result<VerificationReport, CheckFailure> {
    let ctx = ValidationContext::new(
        app.anchors.roots().to_vec(),
        SystemTime::now(),
        revocation_options(app),
    )
    .map_err(|_| CheckFailure::Internal)?;
    let f = (file.path().to_owned(), file.name().to_owned());
    let d = document.map(|d| (d.path().to_owned(), d.name().to_owned()));
    let rt = tokio::runtime::Handle::current();
    let run = move || {
        rt.block_on(async move {
            let f = NamedFile {
                path: &f.0,
                name: f.1.clone(),
            };
            let d = d.as_ref().map(|(path, name)| NamedFile {
                path,
                name: name.clone(),
            });
            validate_file(&f, d.as_ref(), &ctx).await
        })
    };
    let validated = tokio::task::spawn_blocking(run)
        .await
        .map_err(|_| CheckFailure::Internal)?;
    match validated {
        Ok(v) => Ok(v.report),
        Err(FileError::UnknownKind { .. }) => Err(CheckFailure::UnknownKind),
        Err(FileError::DocumentMissing) => Err(CheckFailure::DocumentMissing),
        Err(FileError::DocumentNotExpected { .. }) => Err(CheckFailure::DocumentNotExpected),
        Err(e) => {
            tracing::warn!(error = %e, "file not checked");
            Err(CheckFailure::Internal)
        }
    }
}

/// The overall colour of a report: `green`, `yellow`, `red`, or `none` (nothing checked).
pub fn outcome_name(report: &VerificationReport) -> &'static str {
    let colours = report
        .signature_colours()
        .chain(report.proof_of_origin.colour());
    match colours.max() {
        Some(Colour::Green) => "green",
        Some(Colour::Yellow) => "yellow",
        Some(Colour::Red) => "red",
        None => "none",
    }
}

/// Report `k` inline with its download links.
pub fn inline(k: &Kept, lang: Lang) -> Markup {
    let t = |m: T| m.text(lang);
    let base = format!("/verify/report/{}", k.id);
    html! {
        section class="report" id="report" data-outcome=(outcome_name(&k.report))
            aria-labelledby="report-h" {
            h2 id="report-h" { (t(T::ReportHeading)) ": " (k.name) }
            p class="downloads" {
                a class="button secondary" id="report-pdf" href={ (base) "/pdf" } download { (t(T::DownloadPdf)) }
                " "
                a class="button secondary" id="report-json" href={ (base) "/json" } download { (t(T::DownloadJson)) }
            }
            (PreEscaped(report_html::render_sections(&k.report, report_lang(lang))))
        }
    }
}

/// Report `n` of this session, if kept.
pub fn kept(app: &AppState, cur: &Current, n: u32) -> Option<Kept> {
    app.sessions
        .with(&cur.id, Instant::now(), |s| s.data.docs.reports.get(n))
        .flatten()
}

/// `GET /verify/report/{n}/{pdf|json}`.
pub async fn download(
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    Path((n, format)): Path<(u32, String)>,
) -> Response {
    let Some(k) = kept(&app, &cur, n) else {
        return pages::not_found(cur.lang);
    };
    let stem = upload::stem(&k.name).to_owned();
    let (body, ty, name) = match format.as_str() {
        "pdf" => (
            k.report.to_pdf(report_lang(cur.lang)),
            "application/pdf",
            format!("{stem}-report.pdf"),
        ),
        "json" => (
            k.report.to_json().into_bytes(),
            "application/json",
            format!("{stem}-report.json"),
        ),
        _ => return pages::not_found(cur.lang),
    };
    attachment(body, ty, &name)
}

/// A download: the bytes with their type and `Content-Disposition: attachment`.
pub fn attachment(body: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let disposition = HeaderValue::from_str(&upload::content_disposition(name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}
