//! Validation of one file as a user hands it in: a detached CAdES signature (`.p7s`, DER or
//! PEM) with its document, a signed PDF (PAdES) or an ASiC-E package. The kind is detected
//! from the first bytes ([`FileKind::detect`]); the result is the report model
//! ([`VerificationReport`]) with its exit classification, plus the per-signature details a
//! front end may show below it.
//!
//! ```text
//!  file ─ first bytes ─▶ %PDF-      ─ pdf::validate_pdf ──────────┐
//!                        PK\x03\x04 ─ package::validate_package ──┼─▶ VerificationReport
//!                        DER / PEM  ─ validate_detached (+ doc) ──┘     + ExitStatus
//! ```
//!
//! What cannot be read as the kind it claims to be (a truncated PDF, a hostile ZIP) is a red
//! FORMAT_FAILURE in the report, not an error: errors ([`FileError`]) are for input that
//! cannot be checked at all (an unreadable file, a missing or superfluous document, bytes
//! of no known kind).

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use crate::documents::asic::PackageLimits;
use crate::documents::origin::OriginStatement;
use crate::documents::{DocumentHash, digest_reader};
use crate::report::{
    Document, DocumentRole, ExitStatus, FormatFamily, MessageData, Party, ReportHeader,
    ReportVersion, UtcTime, VerificationReport,
};
use crate::validation::package::{ProofCheck, validate_package};
use crate::validation::{self, Validation, ValidationContext};

/// What a file is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A ZIP (`PK\x03\x04`): an ASiC-E package.
    Package,
    /// `%PDF-`: a PDF with its signatures.
    Pdf,
    /// A DER SEQUENCE (`0x30`) or PEM (`-----BEGIN`): a detached CMS signature.
    Signature,
}

impl FileKind {
    /// The number of first bytes [`FileKind::detect`] looks at.
    pub const HEAD_LEN: usize = 11;

    /// The kind of a file starting with `head` (its first [`FileKind::HEAD_LEN`] bytes, or
    /// all of a shorter file); `None` for bytes of no known kind.
    pub fn detect(head: &[u8]) -> Option<FileKind> {
        if head.starts_with(b"PK\x03\x04") {
            Some(FileKind::Package)
        } else if head.starts_with(b"%PDF-") {
            Some(FileKind::Pdf)
        } else if head.first() == Some(&0x30) || trim_start(head).starts_with(b"-----BEGIN") {
            Some(FileKind::Signature)
        } else {
            None
        }
    }

    /// The kind of the file at `path`.
    pub fn of_file(path: &Path) -> Result<Option<FileKind>, FileError> {
        let mut f = File::open(path).map_err(|e| FileError::unreadable(path, e))?;
        let mut head = Vec::with_capacity(Self::HEAD_LEN);
        (&mut f)
            .take(Self::HEAD_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|e| FileError::unreadable(path, e))?;
        Ok(Self::detect(&head))
    }
}

/// `bytes` without leading ASCII white space (PEM files may start with a blank line).
fn trim_start(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

/// Input that cannot be checked at all. The messages are in English; a front end maps the
/// variant to its own texts.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file (or the document) cannot be opened or read.
    #[error("{}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The bytes are no signature, PDF or package.
    #[error("{}: neither a signature (.p7s), a PDF nor an ASiC-E package", path.display())]
    UnknownKind {
        /// The file.
        path: PathBuf,
    },
    /// A detached signature without the document it signs.
    #[error("a detached signature needs the signed document")]
    DocumentMissing,
    /// A document given with a PDF or a package, which carry their documents.
    #[error("a document is only given with a detached signature, not with a {kind}")]
    DocumentNotExpected {
        /// "PDF" or "package".
        kind: &'static str,
    },
}

impl FileError {
    fn unreadable(path: &Path, e: std::io::Error) -> Self {
        FileError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

/// A file to validate and the name the report gives it (an upload's original name, say).
#[derive(Debug, Clone)]
pub struct NamedFile<'a> {
    /// Where the bytes are.
    pub path: &'a Path,
    /// The name shown in the report.
    pub name: String,
}

impl<'a> NamedFile<'a> {
    /// `path`, named by its file name.
    pub fn new(path: &'a Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        NamedFile { path, name }
    }
}

/// The outcome of [`validate_file`].
#[derive(Debug, Clone)]
pub struct FileValidation {
    /// What the file was taken for.
    pub kind: FileKind,
    /// The verification report (JSON, HTML, PDF).
    pub report: VerificationReport,
    /// Per document, the validations behind the report's signatures (their details).
    pub documents: Vec<(Document, Vec<Validation>)>,
    /// The proof of origin's findings in plain English (a package's; empty otherwise).
    pub proof_details: Vec<String>,
}

impl FileValidation {
    /// All green, any red, or otherwise ([`VerificationReport::exit_status`]).
    pub fn exit_status(&self) -> ExitStatus {
        self.report.exit_status()
    }
}

/// Validates `file` (and, for a detached signature, `document`) against `ctx`'s trust
/// anchors and revocation options. Bytes of no known kind are taken for a (malformed)
/// detached signature when a document is given, so they get a red FORMAT_FAILURE like any
/// broken `.p7s`.
pub async fn validate_file(
    file: &NamedFile<'_>,
    document: Option<&NamedFile<'_>>,
    ctx: &ValidationContext,
) -> Result<FileValidation, FileError> {
    let detected = FileKind::of_file(file.path)?;
    let kind = match (detected, document) {
        (Some(k), _) => k,
        (None, Some(_)) => FileKind::Signature,
        (None, None) => {
            return Err(FileError::UnknownKind {
                path: file.path.to_path_buf(),
            });
        }
    };
    let (documents, proof) = match kind {
        FileKind::Pdf => {
            if document.is_some() {
                return Err(FileError::DocumentNotExpected { kind: "PDF" });
            }
            (pdf(file, ctx).await, ProofCheck::absent())
        }
        FileKind::Signature => {
            let data = document.ok_or(FileError::DocumentMissing)?;
            if !data.path.is_file() {
                return Err(FileError::Unreadable {
                    path: data.path.to_path_buf(),
                    reason: "not a readable file".into(),
                });
            }
            let signature = read_signature(file.path)?;
            let mut digest = |h: DocumentHash| -> std::io::Result<Vec<u8>> {
                digest_reader(h, BufReader::new(File::open(data.path)?))
            };
            let v = validation::validate_detached(&signature, &mut digest, ctx).await;
            (
                vec![doc(data.name.clone(), DocumentRole::MainDocument, v)],
                ProofCheck::absent(),
            )
        }
        FileKind::Package => {
            if document.is_some() {
                return Err(FileError::DocumentNotExpected { kind: "package" });
            }
            let f = File::open(file.path).map_err(|e| FileError::unreadable(file.path, e))?;
            package(BufReader::new(f), &file.name, ctx).await
        }
    };
    let report = VerificationReport {
        version: ReportVersion,
        header: header(proof.statement.as_ref(), ctx.checked_at()),
        proof_of_origin: proof.proof_of_origin.clone(),
        documents: documents.iter().map(|(d, _)| d.clone()).collect(),
    };
    Ok(FileValidation {
        kind,
        report,
        documents,
        proof_details: proof.details,
    })
}

/// At most one byte more than a signature may have (the parser names the excess).
fn read_signature(path: &Path) -> Result<Vec<u8>, FileError> {
    let f = File::open(path).map_err(|e| FileError::unreadable(path, e))?;
    let mut buf = Vec::new();
    f.take(validation::cms::MAX_SIGNATURE_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| FileError::unreadable(path, e))?;
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
/// [`crate::validation::package::check_proof_of_origin`] handed out (a proof whose
/// signature verified); an unverified proof's claims are not shown.
pub fn header(statement: Option<&OriginStatement>, created_at: UtcTime) -> ReportHeader {
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
/// document without signatures (nothing checked: [`ExitStatus::Indeterminate`]).
async fn pdf(file: &NamedFile<'_>, ctx: &ValidationContext) -> Vec<(Document, Vec<Validation>)> {
    let validations = match validation::pdf::validate_pdf(file.path, ctx).await {
        Ok(v) => v,
        Err(e) => {
            let mut v = validation::format_failure(format!("PDF: {e}"), ctx);
            v.result.format.family = FormatFamily::Pades;
            vec![v]
        }
    };
    vec![(
        Document {
            name: file.name.clone(),
            role: DocumentRole::MainDocument,
            signatures: validations.iter().map(|v| v.result.clone()).collect(),
        },
        validations,
    )]
}

/// A package; one that cannot be read is one red FORMAT_FAILURE under its own name.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_the_first_bytes() {
        assert_eq!(FileKind::detect(b"PK\x03\x04rest"), Some(FileKind::Package));
        assert_eq!(FileKind::detect(b"%PDF-1.7\n"), Some(FileKind::Pdf));
        assert_eq!(
            FileKind::detect(&[0x30, 0x82, 0x01]),
            Some(FileKind::Signature)
        );
        assert_eq!(
            FileKind::detect(b"-----BEGIN PKCS7-----"),
            Some(FileKind::Signature)
        );
        assert_eq!(
            FileKind::detect(b"\n-----BEGIN CMS"),
            Some(FileKind::Signature)
        );
        for unknown in [
            &b""[..],
            b"PK\x05\x06",
            b"%PD",
            b"hello",
            b"\x31\x00",
            b"-----",
        ] {
            assert_eq!(FileKind::detect(unknown), None, "{unknown:?}");
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn ctx() -> ValidationContext {
        ValidationContext::new(Vec::new(), std::time::SystemTime::now(), Default::default())
            .unwrap()
    }

    #[tokio::test]
    async fn input_that_cannot_be_checked_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| write(tmp.path(), name, bytes);
        let garbage = write("x.bin", b"hello");
        let sig = write("x.p7s", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        let pdf = write("x.pdf", b"%PDF-1.7\n%%EOF\n");
        let zip = write("x.zip", b"PK\x03\x04 truncated");
        let doc = write("doc.txt", b"doc");
        let missing = tmp.path().join("missing");
        let ctx = ctx();
        let err = async |f: &Path, d: Option<&Path>| {
            let d = d.map(NamedFile::new);
            match validate_file(&NamedFile::new(f), d.as_ref(), &ctx).await {
                Ok(_) => panic!("{} validated", f.display()),
                Err(e) => e.to_string(),
            }
        };

        let e = err(&garbage, None).await;
        assert!(e.contains("neither a signature"), "{e}");
        let e = err(&missing, None).await;
        assert!(e.contains("missing"), "{e}");
        let e = err(&sig, None).await;
        assert!(e.contains("needs the signed document"), "{e}");
        let e = err(&sig, Some(&missing)).await;
        assert!(e.contains("not a readable file"), "{e}");
        let e = err(&pdf, Some(&doc)).await;
        assert!(e.contains("not with a PDF"), "{e}");
        let e = err(&zip, Some(&doc)).await;
        assert!(e.contains("not with a package"), "{e}");
    }

    #[tokio::test]
    async fn unreadable_content_is_a_red_format_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| write(tmp.path(), name, bytes);
        let doc = write("doc.txt", b"doc");
        let ctx = ctx();
        for (name, bytes, kind) in [
            ("garbage.p7s", &b"not DER"[..], FileKind::Signature),
            ("broken.pdf", b"%PDF-1.7\n%%EOF\n", FileKind::Pdf),
            (
                "broken.zip",
                b"PK\x03\x04 and then nothing",
                FileKind::Package,
            ),
        ] {
            let f = write(name, bytes);
            let d = (kind == FileKind::Signature).then(|| NamedFile::new(&doc));
            let v = validate_file(&NamedFile::new(&f), d.as_ref(), &ctx)
                .await
                .unwrap();
            assert_eq!(v.kind, kind, "{name}");
            assert_eq!(v.exit_status(), ExitStatus::AnyRed, "{name}");
            let json = v.report.to_json();
            assert!(json.contains("FORMAT_FAILURE"), "{name}: {json}");
            let shown = if kind == FileKind::Signature {
                "doc.txt"
            } else {
                name
            };
            assert_eq!(v.report.documents[0].name, shown, "{name}");
        }
    }
}
