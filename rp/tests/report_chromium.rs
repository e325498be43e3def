//! The HTML report opened in a real browser: headless Chromium (installed by
//! scripts/install-deps.sh) parses the page, and its DOM shows the three parts, the labelled
//! results and attacker-controlled names as text, never as elements.

// A test: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use tandem_rp::report::{
    Document, DocumentRole, Lang, ProofOfOrigin, ReportHeader, ReportVersion, SignatureLevel,
    SignatureResult, SignatureStatus, SubIndication, UtcTime, VerificationReport,
};

fn report() -> VerificationReport {
    let at: UtcTime = "2026-12-07T14:00:00Z".parse().unwrap();
    let signature = |name: &str, status| SignatureResult {
        signer_name: Some(name.to_owned()),
        signing_time: None,
        level: SignatureLevel::Qualified,
        format: "CAdES-B-B".parse().unwrap(),
        status,
        checked_at: at,
    };
    VerificationReport {
        version: ReportVersion,
        header: ReportHeader {
            issuing_system: "Tandem test".into(),
            created_at: at,
            message: None,
            sender: None,
            recipient: None,
        },
        proof_of_origin: ProofOfOrigin::Absent,
        documents: vec![
            Document {
                name: "<script>document.title='pwned'</script>.pdf".into(),
                role: DocumentRole::MainDocument,
                signatures: vec![signature(
                    "<b id=\"injected\">Eve</b>",
                    SignatureStatus::PASSED,
                )],
            },
            Document {
                name: "K1.pdf".into(),
                role: DocumentRole::Attachment,
                signatures: vec![signature(
                    "Bob",
                    SignatureStatus::failed(SubIndication::HashFailure).unwrap(),
                )],
            },
        ],
    }
}

#[test]
fn chromium_renders_report_and_keeps_names_as_text() {
    let dir = std::env::temp_dir().join(format!("tandem-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, report().to_html(Lang::En)).unwrap();
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium must be installed (scripts/install-deps.sh)");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8(out.stdout).unwrap();
    // The browser's DOM: the title is ours (no script ran), no injected element exists.
    assert!(dom.contains("<title>Verification report</title>"), "{dom}");
    assert!(!dom.contains("<script"), "{dom}");
    assert!(!dom.contains("<b id="), "{dom}");
    for text in [
        "1. Header",
        "2. Proof of origin and transmission path",
        "3. Documents checked",
        "&lt;script&gt;document.title='pwned'&lt;/script&gt;.pdf",
        "&lt;b id=\"injected\"&gt;Eve&lt;/b&gt;",
        "Valid",
        "Invalid",
        "TOTAL_FAILED / HASH_FAILURE",
        "At least one signature is invalid.",
        "Warning: the sender of this message is not identified.",
    ] {
        assert!(dom.contains(text), "{text} not in {dom}");
    }
}
