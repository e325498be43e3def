//! Documents in the web front end, in a real Chromium against a real server, a real
//! `tandem web` and the simulated phone: the Demo Bank signs an uploaded PDF (PAdES B-T,
//! the code shown while the phone confirms with PIN2), the downloaded file validates in
//! pyHanko and shows green in our report; the verification page shows that PDF green, a
//! tampered copy red, and yellow once the server's OCSP responder is gone (in English and
//! German); a signature declined on the phone and one whose TSA does not answer get their
//! messages; an upload without the CSRF token gets the 403 page, an oversized one the 413
//! page; no page has inline style.

#![allow(clippy::unwrap_used)] // tests

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tandem_rp::report::SignatureOutcome;
use tandem_rp::report::texts::{Lang, signatures_note};
use tandem_tests::browser::{Browser, DESKTOP, PHONE};
use tandem_tests::web::{Phone, WebOptions, start_web};
use tandem_tests::*;

const WAIT: Duration = Duration::from_secs(30);

/// A one-page PDF (classic xref), as tests/pades.rs makes them.
fn simple_pdf() -> Vec<u8> {
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842] >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        {
            let text = "BT /F1 24 Tf 72 720 Td (Vertrag Demo Bank) Tj ET";
            format!(
                "<< /Length {} >>\nstream\n{text}\nendstream",
                text.len() + 1
            )
        },
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f\r\n", objs.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn pyhanko() -> PathBuf {
    let p = std::env::var_os("TANDEM_PYHANKO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/tandem-venv/bin/pyhanko"));
    assert!(
        p.is_file(),
        "pyHanko is missing at {}: run scripts/install-deps.sh",
        p.display()
    );
    p
}

/// pyHanko with the server's root as the only anchor (the certificates' own OCSP URLs do
/// not resolve: no revocation check, as in tests/pades.rs).
fn pyhanko_validate(server: &TestServer, pdf: &Path) -> (bool, String) {
    let pki = server.data_dir.join("pki");
    let out = Command::new(pyhanko())
        .args([
            "sign",
            "validate",
            "--no-diff-analysis",
            "--no-revocation-check",
            "--trust-replace",
            "--trust",
        ])
        .arg(pki.join("root.pem"))
        .arg("--other-certs")
        .arg(pki.join("issuing.pem"))
        .arg(pdf)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Waits for `css`; on failure the page's text is in the message.
async fn wait_for(b: &Browser, css: &str, timeout: Duration) -> thirtyfour::WebElement {
    match b.wait_for(css, timeout).await {
        Ok(e) => e,
        Err(e) => panic!("{e}\n{}", b.body_text().await.unwrap_or_default()),
    }
}

/// A screenshot for docs/WEB.md with the report's summary and documents table in view.
async fn report_screenshot(b: &Browser, name: &str) {
    b.client()
        .execute(
            "const t = [...document.querySelectorAll('#report table')].pop(); \
             if (t) { t.scrollIntoView({block: 'end'}); }",
            vec![],
        )
        .await
        .unwrap();
    b.doc_screenshot(name).await.unwrap();
}

/// Confirms the phone's pending transaction showing `vc` with `pin`.
fn confirm(phone: &Phone<'_>, vc: &str, pin: &str) {
    for _ in 0..100 {
        let out = phone.run(&["pending"], &[]);
        if let Some(l) = out.lines().find(|l| l.contains(&format!("code {vc}"))) {
            let tx = l.split_whitespace().next().unwrap();
            let out = phone.run(&["confirm", tx], &[("TANDEM_PIN", pin)]);
            assert!(out.contains("ACCEPTED"), "{out}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing pending with code {vc}");
}

/// Answers the phone's pending transaction showing `vc`: refuses it.
fn refuse(phone: &Phone<'_>, vc: &str) {
    for _ in 0..100 {
        let out = phone.run(&["pending"], &[]);
        if let Some(l) = out.lines().find(|l| l.contains(&format!("code {vc}"))) {
            let tx = l.split_whitespace().next().unwrap();
            let out = phone.run(&["refuse", tx], &[]);
            assert!(out.contains("refused"), "{out}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing pending with code {vc}");
}

/// Logs in at `web` by notification (the phone confirms with PIN1); on the account page.
async fn login(b: &Browser, web: &str, phone: &Phone<'_>) {
    b.goto(&format!("{web}/bank/")).await.unwrap();
    b.fill("#national_id", MARY.id).await.unwrap();
    b.click("#notify-h ~ form button[type=submit]")
        .await
        .unwrap();
    let vc = wait_for(b, "#vc", WAIT).await.text().await.unwrap();
    confirm(phone, &vc, "1234");
    wait_for(b, "#sign", WAIT).await;
}

/// Uploads `file` in the account page's signing form; the verification code shown.
async fn start_signing(b: &Browser, file: &Path) -> String {
    b.upload("#sign-file", file).await.unwrap();
    b.click("#sign-submit").await.unwrap();
    let vc = wait_for(b, "#signing #vc", WAIT)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(vc.len(), 4, "{vc}");
    vc
}

/// The failure page's code, and its message.
async fn failure(b: &Browser) -> (String, String) {
    let e = wait_for(b, "p.error[data-failure]", Duration::from_secs(60)).await;
    (
        e.attr("data-failure").await.unwrap().unwrap(),
        e.text().await.unwrap(),
    )
}

/// Uploads `file` on the verification page; the report's outcome.
async fn verify(b: &Browser, web: &str, file: &Path) -> String {
    verify_with(b, web, file, None).await
}

/// Uploads `file` (and `document`) on the verification page; the report's outcome.
async fn verify_with(b: &Browser, web: &str, file: &Path, document: Option<&Path>) -> String {
    b.goto(&format!("{web}/verify/")).await.unwrap();
    b.upload("#file", file).await.unwrap();
    if let Some(d) = document {
        b.upload("#document", d).await.unwrap();
    }
    b.click("#verify-submit").await.unwrap();
    let r = wait_for(b, "#report", Duration::from_secs(60)).await;
    r.attr("data-outcome").await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_a_pdf_in_the_bank_and_verify_it() {
    let _ = pyhanko();
    let mut server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    let tmp = server.tmp.path().to_owned();
    let phone = Phone::new(&server, tmp.join("phone"));
    phone.register(&MARY, "1234", "12345");
    let opts = WebOptions {
        top_toml: format!("tsa_url = \"{}/tsa\"", server.http_url),
        ..WebOptions::default()
    };
    let web = start_web(&server, &tmp, &opts);
    let small_dir = tmp.join("small");
    std::fs::create_dir_all(&small_dir).unwrap();
    // A small upload limit, and a time-stamp authority nobody answers at.
    let small = start_web(
        &server,
        &small_dir,
        &WebOptions {
            top_toml: "tsa_url = \"http://127.0.0.1:9/tsa\"".into(),
            ..WebOptions::with_upload_limit(64 * 1024)
        },
    );
    let input = tmp.join("Vertrag.pdf");
    std::fs::write(&input, simple_pdf()).unwrap();
    let green_text = signatures_note(SignatureOutcome::AllValid, Lang::En);

    for (size, tag) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        let b = Browser::start(size).await.unwrap();
        // Log in by notification; no inline style or script on the pages.
        login(&b, &web.url, &phone).await;
        let source = b.client().source().await.unwrap();
        assert!(
            !source.contains("style=") && !source.contains("<style"),
            "{source}"
        );

        // Sign the PDF: the code shows, the phone confirms with PIN2.
        let vc = start_signing(&b, &input).await;
        b.doc_screenshot(&format!("bank-sign-vc-{tag}"))
            .await
            .unwrap();
        confirm(&phone, &vc, "12345");
        wait_for(&b, "#download-signed", Duration::from_secs(60)).await;
        let report = b.find("#report").await.unwrap();
        assert_eq!(
            report.attr("data-outcome").await.unwrap().as_deref(),
            Some("green")
        );
        assert!(b.body_text().await.unwrap().contains(green_text));
        report_screenshot(&b, &format!("bank-signed-{tag}")).await;
        b.click("#download-signed").await.unwrap();
        let signed = b.wait_for_download(".pdf", WAIT).await.unwrap();
        let bytes = std::fs::read(&signed).unwrap();
        assert!(
            bytes.starts_with(&simple_pdf()),
            "an incremental update of the input"
        );
        let (ok, log) = pyhanko_validate(&server, &signed);
        assert!(ok && log.contains(":INTACT:TRUSTED,"), "{log}");
        assert!(
            log.contains(",TIMESTAMP_TOKEN<INTACT:TRUSTED>"),
            "B-T: {log}"
        );

        // The verification page: green, and a changed byte in the signed range is red.
        assert_eq!(verify(&b, &web.url, &signed).await, "green");
        assert!(b.body_text().await.unwrap().contains(green_text));
        report_screenshot(&b, &format!("verify-green-{tag}")).await;
        let mut tampered = bytes.clone();
        tampered[200] ^= 0x20;
        let t = tmp.join(format!("tampered-{tag}.pdf"));
        std::fs::write(&t, &tampered).unwrap();
        assert_eq!(verify(&b, &web.url, &t).await, "red");
        report_screenshot(&b, &format!("verify-red-{tag}")).await;

        // A form without its CSRF token: the 403 page.
        b.goto(&format!("{}/verify/", web.url)).await.unwrap();
        b.client()
            .execute(
                "document.querySelector('input[name=csrf]').remove();",
                vec![],
            )
            .await
            .unwrap();
        b.upload("#file", &signed).await.unwrap();
        b.click("#verify-submit").await.unwrap();
        wait_for(&b, "p.error", WAIT).await;
        assert!(
            b.body_text()
                .await
                .unwrap()
                .contains("cross-site request forgery")
        );

        let source = b.client().source().await.unwrap();
        assert!(
            !source.contains("style=") && !source.contains("<style"),
            "{source}"
        );

        // Declined on the phone: its message, and "Try again" leads back to the form.
        if tag == "desktop" {
            b.goto(&format!("{}/bank/account", web.url)).await.unwrap();
            let vc = start_signing(&b, &input).await;
            refuse(&phone, &vc);
            let (code, text) = failure(&b).await;
            assert_eq!(code, "refused");
            assert!(text.contains("declined on the phone"), "{text}");
            b.click("a.button").await.unwrap();
            wait_for(&b, "#sign-file", WAIT).await;

            // Any other file: a detached CAdES-B-T .p7s; OpenSSL verifies it, and the
            // verification page with the document shows it green.
            let note = tmp.join("Notiz.txt");
            std::fs::write(&note, "Überweisung an die Demo Bank\n".repeat(100)).unwrap();
            let vc = start_signing(&b, &note).await;
            confirm(&phone, &vc, "12345");
            wait_for(&b, "#download-signed", Duration::from_secs(60)).await;
            let report = b.find("#report").await.unwrap();
            assert_eq!(
                report.attr("data-outcome").await.unwrap().as_deref(),
                Some("green")
            );
            b.click("#download-signed").await.unwrap();
            let p7s = b.wait_for_download(".p7s", WAIT).await.unwrap();
            assert!(p7s.ends_with("Notiz.txt.p7s"), "{}", p7s.display());
            let (ok, log) = openssl_cms_verify(&server.data_dir.join("pki"), &p7s, &note);
            assert!(ok, "{log}");
            assert_eq!(verify_with(&b, &web.url, &p7s, Some(&note)).await, "green");
            // Without its document: the message, no report.
            b.goto(&format!("{}/verify/", web.url)).await.unwrap();
            b.upload("#file", &p7s).await.unwrap();
            b.click("#verify-submit").await.unwrap();
            let e = wait_for(&b, "#verify-error", WAIT)
                .await
                .text()
                .await
                .unwrap();
            assert!(
                e.contains("can only be checked with the signed document"),
                "{e}"
            );
        }
        // An upload over the limit: the 413 page. (Last: cookies do not tell ports apart,
        // so the other web process's session cookie replaces this one's.)
        let big = tmp.join("big.bin");
        std::fs::write(&big, vec![b'x'; 200 * 1024]).unwrap();
        b.goto(&format!("{}/verify/", small.url)).await.unwrap();
        b.upload("#file", &big).await.unwrap();
        b.click("#verify-submit").await.unwrap();
        wait_for(&b, "p.error", WAIT).await;
        assert!(b.body_text().await.unwrap().contains("File too large"));

        std::fs::copy(&signed, tmp.join("signed.pdf")).unwrap();
        b.quit().await.unwrap();
    }

    // The phone confirms, but the TSA does not answer: no signed file, its message.
    let b = Browser::start(DESKTOP).await.unwrap();
    login(&b, &small.url, &phone).await;
    let vc = start_signing(&b, &input).await;
    confirm(&phone, &vc, "12345");
    let (code, text) = failure(&b).await;
    assert_eq!(code, "tsa-unreachable");
    assert!(
        text.contains("time-stamp authority cannot be reached"),
        "{text}"
    );
    b.quit().await.unwrap();

    // The OCSP responder gone (the server killed; the web process runs on): yellow.
    drop(phone);
    server.kill();
    let b = Browser::start(DESKTOP).await.unwrap();
    assert_eq!(
        verify(&b, &web.url, &tmp.join("signed.pdf")).await,
        "yellow"
    );
    // The same in German: the seed's German sentence.
    b.goto(&format!("{}/lang/de?back=/verify/", web.url))
        .await
        .unwrap();
    assert_eq!(
        verify(&b, &web.url, &tmp.join("signed.pdf")).await,
        "yellow"
    );
    let de = signatures_note(SignatureOutcome::SomeIndeterminate, Lang::De);
    assert!(b.body_text().await.unwrap().contains(de));
    b.quit().await.unwrap();
}
