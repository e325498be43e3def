//! The PDF report read by independent tools (installed by scripts/install-deps.sh):
//! poppler's `pdftotext` and `pdfinfo` extract its text and page count, `qpdf --check`
//! checks the file's structure (cross-reference offsets, streams, fonts).

// A test: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tandem_rp::report::{
    Document, DocumentRole, Lang, MessageData, Party, ProofOfOrigin, ReportHeader, ReportVersion,
    SignatureLevel, SignatureResult, SignatureStatus, SigningTime, SigningTimeSource,
    SubIndication, UtcTime, VerificationReport,
};

fn at(s: &str) -> UtcTime {
    s.parse().unwrap()
}

fn signature(name: &str, status: SignatureStatus) -> SignatureResult {
    SignatureResult {
        signer_name: Some(name.to_owned()),
        signing_time: Some(SigningTime {
            time: at("2026-12-07T09:14:12Z"),
            source: SigningTimeSource::TimeStamp,
        }),
        level: SignatureLevel::Qualified,
        format: "PAdES-B-T".parse().unwrap(),
        status,
        checked_at: at("2026-12-07T14:00:00Z"),
    }
}

fn report(documents: Vec<Document>) -> VerificationReport {
    VerificationReport {
        version: ReportVersion,
        header: ReportHeader {
            issuing_system: "Tandem 0.1.0".into(),
            created_at: at("2026-12-07T14:00:05Z"),
            message: Some(MessageData {
                sender_reference: Some("2026/0815-MM".into()),
                recipient_reference: None,
                message_id: "a3f1c2de-5b7a-4e0f-9c61-2d4b8e9f0a17".into(),
            }),
            sender: Some(Party {
                name: "Jürgen Weiß".into(),
                identifier: "PNODE-30303039914".into(),
            }),
            recipient: Some(Party {
                name: "Landgericht Musterstadt".into(),
                identifier: "PNODE-LG-MUSTER".into(),
            }),
        },
        proof_of_origin: ProofOfOrigin::Checked {
            ca: "Tandem Proof of Origin CA".into(),
            status: SignatureStatus::PASSED,
        },
        documents,
    }
}

/// A main document and attachments in green, yellow (long ETSI name), red and unsigned.
fn example() -> VerificationReport {
    let indeterminate = |s| SignatureStatus::indeterminate(s).unwrap();
    report(vec![
        Document {
            name: "Klageschrift.pdf".into(),
            role: DocumentRole::MainDocument,
            signatures: vec![signature("Mari-Liis Männik", SignatureStatus::PASSED)],
        },
        Document {
            name: "Anlage K1 Vertrag.pdf".into(),
            role: DocumentRole::Attachment,
            signatures: vec![
                signature("Jürgen Weiß", indeterminate(SubIndication::TryLater)),
                signature(
                    "Zoë Straße",
                    indeterminate(SubIndication::CryptoConstraintsFailureNoPoe),
                ),
            ],
        },
        Document {
            name: "Anlage K2 Rechnung.pdf".into(),
            role: DocumentRole::Attachment,
            signatures: vec![signature(
                "Mari-Liis Männik",
                SignatureStatus::failed(SubIndication::HashFailure).unwrap(),
            )],
        },
        Document {
            name: "Anlage K3 Foto.jpg".into(),
            role: DocumentRole::Attachment,
            signatures: vec![],
        },
    ])
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-pdf-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(program: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .args(if program == "pdftotext" {
            &["-"][..]
        } else {
            &[][..]
        })
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/install-deps.sh): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes the PDF, checks it with qpdf, and returns pdftotext's text with whitespace runs
/// made single spaces (wrapped sentences read as one) and the page count.
fn check(pdf: &[u8], dir: &Path, name: &str) -> (String, u32) {
    let file = dir.join(name);
    std::fs::write(&file, pdf).unwrap();
    let qpdf = run("qpdf", &["--check"], &file);
    assert!(
        qpdf.contains("No syntax or stream encoding errors"),
        "{qpdf}"
    );
    let info = run("pdfinfo", &[], &file);
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(info.contains("A4"), "{info}");
    let text = run("pdftotext", &["-enc", "UTF-8"], &file);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (flat, pages)
}

/// No page ends with the documents table's head alone: something follows the head on every
/// page that shows it (besides the page footer).
fn assert_no_lonely_head(file: &Path, pages: u32, head: &str, footer: &str) {
    for n in 1..=pages {
        let page = n.to_string();
        let text = run(
            "pdftotext",
            &["-enc", "UTF-8", "-f", &page, "-l", &page],
            file,
        );
        if let Some((_, after)) = text.rsplit_once(head) {
            let rest = after.replace(&format!("{footer} {n} "), "");
            let rest: String = rest.split_whitespace().collect();
            assert!(rest.len() > 20, "page {n} ends with the table head: {text}");
        }
    }
}

fn assert_contains(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "{w:?} not in {text}");
    }
}

#[test]
fn pdf_texts_in_both_languages() {
    let dir = scratch("lang");
    if let Ok(path) = std::env::var("TANDEM_REPORT_EXAMPLE_PDF") {
        std::fs::write(path, example().to_pdf(Lang::De)).unwrap();
    }
    let (de, pages) = check(&example().to_pdf(Lang::De), &dir, "de.pdf");
    assert!((1..=2).contains(&pages), "{pages}");
    assert_contains(
        &de,
        &[
            "Prüfprotokoll",
            "1. Dokumentenkopf",
            "2. Herkunftsnachweis und Übermittlungsweg",
            "3. Prüfung der Dokumente",
            "Aktenzeichen Empfänger —",
            "Jürgen Weiß (Kennung: PNODE-30303039914)",
            "Mari-Liis Männik",
            "Zoë Straße",
            "Gültig",
            "Unbestimmt",
            "Ungültig",
            "Nicht signiert",
            "TOTAL_PASSED",
            "TOTAL_FAILED",
            "HASH_FAILURE",
            "TRY_LATER",
            "CRYPTO_CONSTRAINTS_FAILURE_NO_POE",
            "Das Dokument wurde nach dem Signieren verändert.",
            "Mindestens eine Signatur ist ungültig.",
            "Sicherer Übermittlungsweg: Tandem hat die Absenderin oder den Absender \
             authentisiert und die Herkunft der Nachricht bestätigt.",
            "Qualifizierte elektronische Signatur",
            "07.12.2026, 09:14:12 UTC (Zeitstempel)",
            &*format!("Seite 1 von {pages}"),
        ],
    );
    let (en, pages) = check(&example().to_pdf(Lang::En), &dir, "en.pdf");
    assert_contains(
        &en,
        &[
            "Verification report",
            "1. Header",
            "2. Proof of origin and transmission path",
            "3. Documents checked",
            "Mari-Liis Männik",
            "Valid",
            "Indeterminate",
            "Invalid",
            "Not signed",
            "HASH_FAILURE",
            "CRYPTO_CONSTRAINTS_FAILURE_NO_POE",
            "The document was changed after it was signed.",
            "At least one signature is invalid.",
            "2026-12-07 09:14:12 UTC (time-stamp)",
            &*format!("Page 1 of {pages}"),
        ],
    );
    assert!(!en.contains("Prüfprotokoll"), "{en}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn long_report_continues_on_more_pages_and_loses_nothing() {
    let dir = scratch("long");
    let documents = (1..=60)
        .map(|i| Document {
            name: format!("Anlage-{i:02}.pdf"),
            role: DocumentRole::Attachment,
            signatures: vec![signature(
                &format!("Signer Nr{i:02}"),
                SignatureStatus::failed(SubIndication::SigCryptoFailure).unwrap(),
            )],
        })
        .collect();
    let (text, pages) = check(&report(documents).to_pdf(Lang::En), &dir, "long.pdf");
    assert_no_lonely_head(&dir.join("long.pdf"), pages, "Result", "Page");
    assert!(pages >= 3, "60 documents on {pages} pages");
    for i in 1..=60 {
        assert_eq!(
            text.matches(&format!("Anlage-{i:02}.pdf")).count(),
            1,
            "{i}"
        );
        assert_eq!(text.matches(&format!("Signer Nr{i:02}")).count(), 1, "{i}");
    }
    assert_eq!(text.matches("SIG_CRYPTO_FAILURE").count(), 60);
    // The table head is repeated on every page the table runs over.
    assert_eq!(text.matches("Properties").count() as u32, pages);
    for n in 1..=pages {
        assert!(text.contains(&format!("Page {n} of {pages}")), "{n}");
    }
    // The legend at the end is there too.
    assert_contains(&text, &["Green: checked successfully."]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn special_characters_and_long_words_stay_inside_the_page() {
    let dir = scratch("special");
    let nasty = r"Eve (Test\) \\ ))((";
    let long_word = "X".repeat(300);
    let mut r = report(vec![Document {
        name: format!("a(b)c\\d {long_word}.pdf"),
        role: DocumentRole::MainDocument,
        signatures: vec![signature(nasty, SignatureStatus::PASSED)],
    }]);
    r.header.issuing_system = "Tandem\r\n(x)\u{7}".into();
    r.header.sender.as_mut().unwrap().name = "Иван ) Петров".into();
    let pdf = r.to_pdf(Lang::De);
    let (text, pages) = check(&pdf, &dir, "special.pdf");
    assert_no_lonely_head(&dir.join("special.pdf"), pages, "Prüfergebnis", "Seite");
    assert_contains(&text, &[nasty, "a(b)c\\d", "Tandem (x)", "???? ) ??????"]);
    assert_eq!(text.matches('X').count(), 300);
    // poppler's own word boxes (its Helvetica metrics, not ours): nothing crosses the right
    // margin, so wrapping measured the text right.
    let file = dir.join("special.pdf");
    let bbox = run("pdftotext", &["-bbox"], &file);
    let mut words = 0;
    for line in bbox.lines().filter(|l| l.trim_start().starts_with("<word")) {
        let x_max: f32 = line
            .split("xMax=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(x_max <= 595.28 - 50.0 + 0.5, "{line}");
        words += 1;
    }
    assert!(words > 50, "{bbox}");
    std::fs::remove_dir_all(&dir).unwrap();
}
