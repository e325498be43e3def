//! `tandem rp-api sign-pades` against a real server with test accounts: PDFs (a classic
//! xref table, and an xref-stream/object-stream variant made by qpdf) signed invisibly
//! (PAdES-B-B) and visibly with a time stamp from the server's TSA (PAdES-B-T), then checked
//! by independent tools: pyHanko validates each signature with the server's root as the
//! trust anchor (INTACT, TRUSTED, and the time stamp for B-T), `pdfsig` says the signature
//! is valid, `qpdf --check` passes, and the signed file begins with the input byte for byte.
//! A second signature keeps the first one valid. Bad input gives a clear error and no file.

#![allow(clippy::unwrap_used)] // tests

use std::path::{Path, PathBuf};
use std::process::Command;

use tandem_tests::*;

/// The test account that signs with OK.
const OK: &str = "PNOEE-40504040001-MOCK-Q";

/// A classic-xref PDF with `pages` pages of text.
fn simple_pdf(pages: usize) -> Vec<u8> {
    let mut objs: Vec<String> = Vec::new();
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 3 + 2 * i)).collect();
    objs.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objs.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {pages} /MediaBox [0 0 595 842] >>",
        kids.join(" ")
    ));
    let font = 3 + 2 * pages;
    for i in 0..pages {
        objs.push(format!(
            "<< /Type /Page /Parent 2 0 R /Contents {} 0 R \
             /Resources << /Font << /F1 {font} 0 R >> >> >>",
            4 + 2 * i
        ));
        let text = format!(
            "BT /F1 24 Tf 72 720 Td (Schriftsatz, Seite {}) Tj ET",
            i + 1
        );
        objs.push(format!(
            "<< /Length {} >>\nstream\n{text}\nendstream",
            text.len() + 1
        ));
    }
    objs.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into());
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

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/install-deps.sh): {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// pyHanko from the venv scripts/install-deps.sh makes (or `$TANDEM_PYHANKO`). Missing, the
/// test fails: it never skips.
fn pyhanko() -> PathBuf {
    let p = std::env::var_os("TANDEM_PYHANKO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/tandem-venv/bin/pyhanko"));
    assert!(
        p.is_file(),
        "pyHanko is missing at {}: run scripts/install-deps.sh (or set TANDEM_PYHANKO)",
        p.display()
    );
    p
}

/// `pyhanko sign validate --pretty-print` with the server's root as the only trust anchor
/// (`--trust-replace`: not the system's). The certificates name OCSP and CRL URLs under the
/// test server's public base URL (`http://ca.example.com`), which does not resolve, and
/// B-B/B-T embed no revocation data: `--no-revocation-check`.
fn pyhanko_validate(server: &TestServer, pdf: &Path, pretty: bool) -> (bool, String) {
    let pki = server.data_dir.join("pki");
    run(
        pyhanko().to_str().unwrap(),
        &[
            "sign",
            "validate",
            if pretty {
                "--pretty-print"
            } else {
                "--no-diff-analysis"
            },
            "--no-revocation-check",
            "--trust-replace",
            "--trust",
            pki.join("root.pem").to_str().unwrap(),
            "--other-certs",
            pki.join("issuing.pem").to_str().unwrap(),
            pdf.to_str().unwrap(),
        ],
    )
}

fn sign_pades(
    server: &TestServer,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> Result<String, String> {
    let mut args = vec![
        "sign-pades",
        "--document",
        OK,
        "--file",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    rp_api_cli(server, &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_pades_b_b_and_b_t_validate_in_pyhanko_pdfsig_and_qpdf() {
    let _ = pyhanko();
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(60, true)),
        ..Default::default()
    })
    .unwrap();
    wait_for_test_accounts(&server);
    let tmp = server.tmp.path();
    let classic = tmp.join("classic.pdf");
    std::fs::write(&classic, simple_pdf(2)).unwrap();
    let streams = tmp.join("streams.pdf");
    let (ok, log) = run(
        "qpdf",
        &[
            "--object-streams=generate",
            classic.to_str().unwrap(),
            streams.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    let tsa = format!("{}/tsa", server.http_url);

    // B-B, invisible, on the classic file.
    let bb = tmp.join("classic-signed.pdf");
    let out = sign_pades(&server, &classic, &bb, &[]).unwrap();
    assert!(out.contains("verification code: "), "{out}");
    assert!(
        out.contains("PAdES-B-B signature (RSASSA-PSS, SHA-512) written to"),
        "{out}"
    );
    // B-T, visible on page 2, on the xref-stream file; then a second (B-B) signature.
    let bt = tmp.join("streams-signed.pdf");
    let out = sign_pades(
        &server,
        &streams,
        &bt,
        &[
            "--visible",
            "2,300,80,220,60",
            "--tsa",
            &tsa,
            "--hash",
            "SHA-384",
        ],
    )
    .unwrap();
    assert!(out.contains("time stamp: "), "{out}");
    assert!(
        out.contains("PAdES-B-T signature (RSASSA-PSS, SHA-384)"),
        "{out}"
    );
    let twice = tmp.join("streams-signed-twice.pdf");
    sign_pades(&server, &bt, &twice, &["--pkcs1"]).unwrap();

    for (input, signed, signatures) in [(&classic, &bb, 1), (&streams, &bt, 1), (&bt, &twice, 2)] {
        let name = signed.display();
        let original = std::fs::read(input).unwrap();
        let bytes = std::fs::read(signed).unwrap();
        assert!(
            bytes.starts_with(&original),
            "{name}: the input bytes are kept"
        );
        let (ok, log) = run("qpdf", &["--check", signed.to_str().unwrap()]);
        assert!(ok, "{name}: {log}");
        let (_, log) = run("pdfsig", &[signed.to_str().unwrap()]);
        assert_eq!(
            log.matches("Signature is Valid.").count(),
            signatures,
            "{name}: {log}"
        );
        let (ok, log) = pyhanko_validate(&server, signed, true);
        assert!(ok, "{name}: pyHanko: {log}");
        assert!(
            log.contains("The signature is cryptographically sound."),
            "{name}: {log}"
        );
        assert!(
            log.contains("The signer's certificate is trusted."),
            "{name}: {log}"
        );
        assert!(
            log.contains("The signature is judged VALID."),
            "{name}: {log}"
        );
        eprintln!("pyHanko on {name}:\n{log}");
        let (ok, log) = pyhanko_validate(&server, signed, false);
        assert!(ok, "{name}: pyHanko: {log}");
        assert_eq!(
            log.matches(":INTACT:TRUSTED,").count(),
            signatures,
            "{name}: {log}"
        );
    }
    // B-T: pyHanko checks the signature time-stamp token too.
    let (ok, log) = pyhanko_validate(&server, &bt, false);
    assert!(ok, "{log}");
    assert!(log.contains(",TIMESTAMP_TOKEN<INTACT:TRUSTED>"), "{log}");
    let (ok, text) = run(
        "pdftotext",
        &["-f", "2", "-l", "2", bt.to_str().unwrap(), "-"],
    );
    assert!(ok && text.contains("Signed by"), "{text}");

    // A changed byte in the signed part: pdfsig and pyHanko object.
    let mut tampered = std::fs::read(&bb).unwrap();
    tampered[200] ^= 0x20;
    let t = tmp.join("tampered.pdf");
    std::fs::write(&t, &tampered).unwrap();
    let (_, log) = run("pdfsig", &[t.to_str().unwrap()]);
    assert!(!log.contains("Signature is Valid."), "{log}");
    let (ok, log) = pyhanko_validate(&server, &t, false);
    assert!(!ok && !log.contains("INTACT:TRUSTED"), "{log}");

    // Bad input: refused before anyone is asked to sign, nothing written.
    let garbage = tmp.join("garbage.pdf");
    std::fs::write(&garbage, b"%PDF-1.7\nnot really\n").unwrap();
    let enc = tmp.join("encrypted.pdf");
    let (ok, log) = run(
        "qpdf",
        &[
            "--encrypt",
            "u",
            "o",
            "256",
            "--",
            classic.to_str().unwrap(),
            enc.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    for (input, message) in [(&garbage, "truncated"), (&enc, "the PDF is encrypted")] {
        let out = tmp.join("refused.pdf");
        let e = sign_pades(&server, input, &out, &[]).unwrap_err();
        assert!(e.contains(message), "{e}");
        assert!(!e.contains("verification code:"), "{e}");
        assert!(!out.exists());
    }
    let out = tmp.join("refused.pdf");
    let e = sign_pades(&server, &classic, &out, &["--visible", "3,0,0,100,40"]).unwrap_err();
    assert!(e.contains("the PDF has no page 3 (it has 2)"), "{e}");
    let e = sign_pades(
        &server,
        &classic,
        &out,
        &["--tsa", "http://127.0.0.1:9/tsa"],
    )
    .unwrap_err();
    assert!(e.contains("no time stamp, no signed PDF written"), "{e}");
    assert!(!out.exists());
    assert!(!tmp.join("refused.pdf.part").exists());
}
