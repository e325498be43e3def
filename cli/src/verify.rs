//! `tandem verify FILE`: checks a detached CAdES signature (`.p7s`, DER or PEM, with
//! `--data`), the signatures of a PDF (PAdES) or an ASiC-E package (ZIP) against the given trust anchors, prints a short
//! summary and writes the verification report as JSON, HTML and PDF.
//!
//! Exit status: 0 every signature green, 1 any red, 2 otherwise (yellow, or nothing could be
//! checked), 3 usage errors (a file that cannot be read, `--data` missing for a `.p7s`, no
//! `--trust`, an unknown `--lang`).

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use openssl::x509::X509;
use tandem_rp::client::revocation::RevocationOptions;
use tandem_rp::documents::asic::PackageLimits;
use tandem_rp::documents::origin::OriginStatement;
use tandem_rp::documents::{DocumentHash, digest_reader};
use tandem_rp::report::texts::{self, Label};
use tandem_rp::report::{
    Document, DocumentRole, FormatFamily, Lang, MessageData, Party, ProofOfOrigin, ReportHeader,
    ReportVersion, UtcTime, VerificationReport,
};
use tandem_rp::validation::package::{ProofCheck, validate_package};
use tandem_rp::validation::{self, Validation, ValidationContext};

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

/// What the input is, from its first bytes.
enum Kind {
    Package,
    Pdf,
    Signature,
}

fn kind(path: &Path) -> anyhow::Result<Kind> {
    let mut head = [0u8; 5];
    let mut f = File::open(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let n = f
        .read(&mut head)
        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
    Ok(if head[..n].starts_with(b"PK\x03\x04") {
        Kind::Package
    } else if head[..n].starts_with(b"%PDF-") {
        Kind::Pdf
    } else {
        Kind::Signature
    })
}

async fn run(opts: &VerifyOptions) -> anyhow::Result<u8> {
    let lang = lang(&opts.lang)?;
    let kind = kind(&opts.file)?;
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
    let file_name = opts
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let (documents, proof) = match kind {
        Kind::Pdf => {
            if opts.data.is_some() {
                return Err(usage(
                    "--data is for a detached signature; a PDF carries its signatures",
                ));
            }
            (
                pdf(&opts.file, &file_name, &ctx).await,
                ProofCheck::absent(),
            )
        }
        Kind::Signature => {
            let data = opts.data.as_ref().ok_or_else(|| {
                usage("a detached signature needs the signed document: --data FILE")
            })?;
            if !data.is_file() {
                return Err(usage(format!(
                    "--data {}: not a readable file",
                    data.display()
                )));
            }
            let signature = read_signature(&opts.file)?;
            let mut digest = |h: DocumentHash| -> std::io::Result<Vec<u8>> {
                digest_reader(h, BufReader::new(File::open(data)?))
            };
            let v = validation::validate_detached(&signature, &mut digest, &ctx).await;
            let name = data
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(file_name);
            (
                vec![doc(name, DocumentRole::MainDocument, v)],
                ProofCheck::absent(),
            )
        }
        Kind::Package => {
            if opts.data.is_some() {
                return Err(usage(
                    "--data is for a detached signature, not for a package",
                ));
            }
            let file = File::open(&opts.file)
                .map_err(|e| usage(format!("{}: {e}", opts.file.display())))?;
            package(BufReader::new(file), &file_name, &ctx).await
        }
    };

    let report = VerificationReport {
        version: ReportVersion,
        header: header(proof.statement.as_ref(), ctx.checked_at()),
        proof_of_origin: proof.proof_of_origin.clone(),
        documents: documents.iter().map(|(d, _)| d.clone()).collect(),
    };
    // The reports first: a closed standard output (`| head`) must not lose them.
    write_reports(&report, opts, lang)?;
    print_summary(&report, &documents, &proof.details, lang)?;
    Ok(report.exit_status().code() as u8)
}

fn read_signature(path: &Path) -> anyhow::Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let mut buf = Vec::new();
    f.take(validation::cms::MAX_SIGNATURE_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
    Ok(buf)
}

fn doc(name: String, role: DocumentRole, v: Validation) -> (Document, Vec<Validation>) {
    (
        Document {
            name,
            role,
            signatures: vec![v.result.clone()],
        },
        vec![v],
    )
}

/// The report's header: the message data and the parties only from a statement that
/// [`tandem_rp::validation::package::check_proof_of_origin`] handed out (a proof whose
/// signature verified); an unverified proof's claims are not shown.
fn header(statement: Option<&OriginStatement>, created_at: UtcTime) -> ReportHeader {
    ReportHeader {
        issuing_system: format!("Tandem {}", env!("CARGO_PKG_VERSION")),
        created_at,
        message: statement.map(|s| MessageData {
            sender_reference: s.sender_reference.clone(),
            recipient_reference: s.recipient_reference.clone(),
            message_id: s.message_id.clone(),
        }),
        sender: statement.map(|s| Party {
            name: s.sender.name.clone(),
            identifier: s.sender.identifier.clone(),
        }),
        recipient: statement.map(|s| Party {
            name: s.recipient.name.clone(),
            identifier: s.recipient.identifier.clone(),
        }),
    }
}

type Checked = (Vec<(Document, Vec<Validation>)>, ProofCheck);

/// A signed PDF: one main document with its signatures. A PDF that cannot be read
/// (garbage, truncated, encrypted) is one red FORMAT_FAILURE; a PDF without signatures is a
/// document without signatures (nothing checked: exit status 2).
async fn pdf(path: &Path, name: &str, ctx: &ValidationContext) -> Vec<(Document, Vec<Validation>)> {
    let validations = match validation::pdf::validate_pdf(path, ctx).await {
        Ok(v) => v,
        Err(e) => {
            let mut v = validation::format_failure(format!("PDF: {e}"), ctx);
            v.result.format.family = FormatFamily::Pades;
            vec![v]
        }
    };
    vec![(
        Document {
            name: name.to_owned(),
            role: DocumentRole::MainDocument,
            signatures: validations.iter().map(|v| v.result.clone()).collect(),
        },
        validations,
    )]
}

async fn package<R: Read + Seek>(input: R, name: &str, ctx: &ValidationContext) -> Checked {
    match validate_package(input, &PackageLimits::default(), ctx).await {
        Ok(p) => (p.documents, p.proof),
        Err(e) => {
            let v = validation::format_failure(format!("package: {e}"), ctx);
            (
                vec![doc(name.to_owned(), DocumentRole::MainDocument, v)],
                ProofCheck::absent(),
            )
        }
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
