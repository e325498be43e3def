//! `tandem verify FILE`: checks a detached CAdES signature (`.p7s`, DER or PEM, with
//! `--data`), the signatures of a PDF (PAdES) or an ASiC-E package (ZIP) against the given
//! trust anchors ([`tandem_rp::validation::file`]), prints a short summary and writes the
//! verification report as JSON, HTML and PDF.
//!
//! Exit status: 0 every signature green, 1 any red, 2 otherwise (yellow, or nothing could be
//! checked), 3 usage errors (a file that cannot be read, `--data` missing for a `.p7s`, no
//! `--trust`, an unknown `--lang`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use openssl::x509::X509;
use tandem_rp::client::revocation::RevocationOptions;
use tandem_rp::report::texts::{self, Label};
use tandem_rp::report::{Document, DocumentRole, Lang, ProofOfOrigin, VerificationReport};
use tandem_rp::validation::file::{FileError, FileKind, NamedFile, validate_file};
use tandem_rp::validation::{Validation, ValidationContext};

/// Exit status for usage errors.
pub const USAGE: u8 = 3;

/// `tandem verify` options.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyOptions {
    /// The signature (`.p7s`, DER or PEM), the signed PDF or the package (ZIP) to check.
    pub file: PathBuf,
    /// The document a detached signature signs.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Trust anchors: a PEM file of root CA certificates, or a server data directory (its
    /// `pki/root.pem`). Repeatable; at least one is required.
    #[arg(long)]
    pub trust: Vec<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as HTML here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write the report as PDF here.
    #[arg(long)]
    pub pdf: Option<PathBuf>,
    /// Language of the summary and the reports: `de` or `en`.
    #[arg(long, default_value = "de")]
    pub lang: String,
    /// Seconds allowed for each OCSP exchange and CRL download.
    #[arg(long, default_value_t = 15)]
    pub revocation_timeout: u64,
    /// OCSP responder to ask for the signing certificate instead of its AIA URL.
    #[arg(long)]
    pub ocsp_url: Option<String>,
    /// CRL to read for the signing certificate instead of its distribution points.
    #[arg(long)]
    pub crl_url: Option<String>,
    /// CRL for the CA certificates of the chain instead of their distribution points.
    #[arg(long)]
    pub ca_crl_url: Option<String>,
}

/// A usage error: printed, exit status 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn usage(msg: impl Into<String>) -> anyhow::Error {
    Usage(msg.into()).into()
}

/// Runs the command; returns the exit status.
pub fn main(opts: VerifyOptions) -> u8 {
    let result = crate::runtime().and_then(|rt| rt.block_on(run(&opts)));
    match result {
        Ok(code) => code,
        // Standard output closed early (`tandem verify ... | head`): as every command does.
        Err(e) if e.downcast_ref::<crate::StdoutClosed>().is_some() => 141,
        Err(e) if e.downcast_ref::<Usage>().is_some() => {
            eprintln!("error: {e:#}");
            USAGE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

fn lang(s: &str) -> anyhow::Result<Lang> {
    match s {
        "de" => Ok(Lang::De),
        "en" => Ok(Lang::En),
        other => Err(usage(format!("--lang {other:?}: expected de or en"))),
    }
}

fn anchors(paths: &[PathBuf]) -> anyhow::Result<Vec<X509>> {
    if paths.is_empty() {
        return Err(usage(
            "no trust anchor: give --trust ROOT.pem (or a server data directory)",
        ));
    }
    let mut out = Vec::new();
    for p in paths {
        let file = if p.is_dir() {
            let f = p.join("pki").join("root.pem");
            if f.is_file() { f } else { p.join("root.pem") }
        } else {
            p.clone()
        };
        let pem =
            std::fs::read(&file).map_err(|e| usage(format!("--trust {}: {e}", file.display())))?;
        let certs = X509::stack_from_pem(&pem)
            .map_err(|e| usage(format!("--trust {}: {e}", file.display())))?;
        if certs.is_empty() {
            return Err(usage(format!(
                "--trust {}: no PEM certificate",
                file.display()
            )));
        }
        out.extend(certs);
    }
    Ok(out)
}

async fn run(opts: &VerifyOptions) -> anyhow::Result<u8> {
    let lang = lang(&opts.lang)?;
    if let Err(e) = FileKind::of_file(&opts.file) {
        return Err(usage(e.to_string()));
    }
    let anchors = anchors(&opts.trust)?;
    let revocation = RevocationOptions {
        ocsp_url: opts.ocsp_url.clone(),
        crl_url: opts.crl_url.clone(),
        ca_crl_url: opts.ca_crl_url.clone(),
        timeout: Duration::from_secs(opts.revocation_timeout.max(1)),
        ..RevocationOptions::default()
    };
    let now = SystemTime::now();
    let ctx = ValidationContext::new(anchors, now, revocation).context("the system clock")?;
    let file = NamedFile::new(&opts.file);
    let data = opts.data.as_deref().map(NamedFile::new);
    let checked = validate_file(&file, data.as_ref(), &ctx)
        .await
        .map_err(|e| usage(cli_text(e, opts.data.as_ref())))?;
    // The reports first: a closed standard output (`| head`) must not lose them.
    write_reports(&checked.report, opts, lang)?;
    print_summary(
        &checked.report,
        &checked.documents,
        &checked.proof_details,
        lang,
    )?;
    Ok(checked.exit_status().code() as u8)
}

/// A [`FileError`] in the words of the command's options.
fn cli_text(e: FileError, data: Option<&PathBuf>) -> String {
    match e {
        FileError::DocumentMissing => {
            "a detached signature needs the signed document: --data FILE".into()
        }
        FileError::DocumentNotExpected { kind: "PDF" } => {
            "--data is for a detached signature; a PDF carries its signatures".into()
        }
        FileError::DocumentNotExpected { .. } => {
            "--data is for a detached signature, not for a package".into()
        }
        FileError::Unreadable { path, reason } if Some(&path) == data => {
            format!("--data {}: {reason}", path.display())
        }
        other => other.to_string(),
    }
}

fn print_summary(
    report: &VerificationReport,
    docs: &[(Document, Vec<Validation>)],
    proof_details: &[String],
    lang: Lang,
) -> anyhow::Result<()> {
    let h = &report.header;
    if let Some(m) = &h.message {
        for (label, value) in [
            (Label::SenderReference, m.sender_reference.as_deref()),
            (Label::RecipientReference, m.recipient_reference.as_deref()),
            (Label::MessageId, Some(m.message_id.as_str())),
        ] {
            outln!("{}: {}", label.text(lang), value.unwrap_or("—"));
        }
    }
    for (label, party) in [(Label::Sender, &h.sender), (Label::Recipient, &h.recipient)] {
        if let Some(p) = party {
            let id = Label::Identifier.text(lang);
            outln!("{}: {} ({id}: {})", label.text(lang), p.name, p.identifier);
        }
    }
    let note = report.summary_note(lang);
    outln!("{} {}", note.signatures, note.submission);
    if let Some(r) = &note.remark {
        outln!("{r}");
    }
    outln!(
        "{}: {}",
        Label::SecurePath.text(lang),
        texts::proof_message(&report.proof_of_origin, lang)
    );
    if let Some(d) = texts::proof_detail(&report.proof_of_origin, lang) {
        outln!("    {d}");
    }
    if let ProofOfOrigin::Checked { ca, status } = &report.proof_of_origin {
        let status = status.etsi_text();
        outln!("    {}: {ca} | {status}", Label::ProofCa.text(lang));
    }
    for line in proof_details {
        outln!("    {line}");
    }
    for (d, validations) in docs {
        let role = match d.role {
            DocumentRole::MainDocument => Label::MainDocument.text(lang),
            DocumentRole::Attachment => Label::Attachment.text(lang),
        };
        if validations.is_empty() {
            outln!("{} ({role}): {}", d.name, Label::NotSigned.text(lang));
        }
        for v in validations {
            let r = &v.result;
            let status = r.status.etsi_text();
            let time = texts::signing_time_text(r.signing_time.as_ref(), lang);
            outln!(
                "{} ({role}): {} {status} | {} | {time} | {} | {}",
                d.name,
                texts::colour_label(r.status.colour(), lang).to_uppercase(),
                r.signer_name
                    .as_deref()
                    .unwrap_or(Label::Unknown.text(lang)),
                texts::level_name(r.level, lang),
                r.format,
            );
            for line in &v.details {
                outln!("    {line}");
            }
        }
    }
    Ok(())
}

fn write_reports(
    report: &VerificationReport,
    opts: &VerifyOptions,
    lang: Lang,
) -> anyhow::Result<()> {
    let write = |p: &PathBuf, bytes: &[u8]| {
        std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))
    };
    if let Some(p) = &opts.json {
        write(p, report.to_json().as_bytes())?;
    }
    if let Some(p) = &opts.html {
        write(p, report.to_html(lang).as_bytes())?;
    }
    if let Some(p) = &opts.pdf {
        write(p, &report.to_pdf(lang))?;
    }
    Ok(())
}
