//! `tandem rp-api sign-pades` against a real server with test accounts: PDFs (a classic
//! xref table, and an xref-stream/object-stream variant made by qpdf) signed invisibly
//! (PAdES-B-B) and visibly with a time stamp from the server's TSA (PAdES-B-T), then checked
//! by independent tools: pyHanko validates each signature with the server's root as the
//! trust anchor (INTACT, TRUSTED, and the time stamp for B-T), `pdfsig` says the signature
//! is valid, `qpdf --check` passes, and the signed file begins with the input byte for byte.
//! A second signature keeps the first one valid. Bad input gives a clear error and no file.
//! `tandem verify` checks the same files and agrees: green PAdES-B-B and B-T, the tampered
//! file red HASH_FAILURE, garbage and encrypted files red FORMAT_FAILURE.

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

/// `tandem verify PDF --trust ROOT --json R` with the server's OCSP responder and CRLs (the
/// certificates name the configured public base URL): exit code, stdout and the report.
fn tandem_verify(
    server: &TestServer,
    pdf: &Path,
) -> (i32, String, tandem_rp::report::VerificationReport) {
    let json = pdf.with_extension("report.json");
    let _ = std::fs::remove_file(&json);
    let out = Command::new(tandem_bin())
        .arg("verify")
        .arg(pdf)
        .arg("--trust")
        .arg(server.data_dir.join("pki/root.pem"))
        .arg("--json")
        .arg(&json)
        .args(["--lang", "en", "--ocsp-url"])
        .arg(format!("{}/ocsp", server.http_url))
        .arg("--crl-url")
        .arg(format!("{}/crl/issuing.crl", server.http_url))
        .arg("--ca-crl-url")
        .arg(format!("{}/crl/root.crl", server.http_url))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    let report = std::fs::read_to_string(&json)
        .map(|j| tandem_rp::report::VerificationReport::from_json(&j).unwrap())
        .unwrap_or_else(|e| panic!("no report from tandem verify ({e}): {text}"));
    (out.status.code().expect("exited"), text, report)
}

/// The (indication/sub-indication, format) of every signature in the report.
fn results(report: &tandem_rp::report::VerificationReport) -> Vec<(String, String)> {
    assert_eq!(report.documents.len(), 1);
    report.documents[0]
        .signatures
        .iter()
        .map(|s| {
            let status = match s.status.sub_indication() {
                Some(sub) => format!("{}/{}", s.status.indication().etsi_name(), sub.etsi_name()),
                None => s.status.indication().etsi_name().to_owned(),
            };
            (status, s.format.to_string())
        })
        .collect()
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

    // `tandem verify` agrees with pyHanko: green B-B, green B-T, two green signatures (the
    // first followed by a later revision), the tampered file red.
    let pass = || ("TOTAL_PASSED".to_owned(), "PAdES-B-B".to_owned());
    let pass_t = || ("TOTAL_PASSED".to_owned(), "PAdES-B-T".to_owned());
    for (pdf, expected) in [
        (&bb, vec![pass()]),
        (&bt, vec![pass_t()]),
        (&twice, vec![pass_t(), pass()]),
    ] {
        let (code, out, report) = tandem_verify(&server, pdf);
        assert_eq!(code, 0, "{}: {out}", pdf.display());
        assert_eq!(results(&report), expected, "{out}");
        assert_eq!(
            report.documents[0].name,
            pdf.file_name().unwrap().to_str().unwrap()
        );
        assert!(out.contains("revocation: not revoked"), "{out}");
    }
    let (_, out, report) = tandem_verify(&server, &twice);
    assert!(out.contains("bytes of later revisions follow"), "{out}");
    let first = &report.documents[0].signatures[0];
    assert_eq!(
        first.signing_time.unwrap().source,
        tandem_rp::report::SigningTimeSource::TimeStamp
    );
    let (code, out, report) = tandem_verify(&server, &t);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        results(&report),
        vec![(
            "TOTAL_FAILED/HASH_FAILURE".to_owned(),
            "PAdES-B-B".to_owned()
        )],
        "{out}"
    );

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
    for pdf in [&garbage, &enc] {
        let (code, out, report) = tandem_verify(&server, pdf);
        assert_eq!(code, 1, "{out}");
        assert_eq!(
            results(&report),
            vec![(
                "TOTAL_FAILED/FORMAT_FAILURE".to_owned(),
                "PAdES-NOT-BASELINE".to_owned()
            )],
            "{out}"
        );
    }
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

/// PAdES-B-LT: `sign-pades --tsa --lt` with the server's OCSP responder and CRLs adds a
/// `/DSS` after the signature. With the server stopped, pyHanko's AdES validation
/// (`adesverify`: revocation data required, read from the DSS) and `tandem verify` both find
/// the signature valid from the DSS.
#[tokio::test(flavor = "multi_thread")]
async fn sign_pades_b_lt_validates_with_the_server_stopped() {
    let _ = pyhanko();
    let mut server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(60, true)),
        ..Default::default()
    })
    .unwrap();
    wait_for_test_accounts(&server);
    let tmp = server.tmp.path().to_owned();
    let pki = server.data_dir.join("pki");
    let input = tmp.join("in.pdf");
    std::fs::write(&input, simple_pdf(1)).unwrap();
    let tsa = format!("{}/tsa", server.http_url);
    let (ocsp, crl, root_crl) = (
        format!("{}/ocsp", server.http_url),
        format!("{}/crl/issuing.crl", server.http_url),
        format!("{}/crl/root.crl", server.http_url),
    );
    let lt = tmp.join("lt.pdf");
    let mut args = vec![
        "--ocsp-url",
        ocsp.as_str(),
        "--crl-url",
        crl.as_str(),
        "--ca-crl-url",
        root_crl.as_str(),
        "sign-pades",
        "--document",
        OK,
        "--file",
        input.to_str().unwrap(),
        "--out",
        lt.to_str().unwrap(),
        "--tsa",
        &tsa,
    ];
    // --lt without --tsa: a usage error, no file.
    let refused = tmp.join("refused.pdf");
    let mut no_tsa = args[..12].to_vec();
    no_tsa.extend_from_slice(&[refused.to_str().unwrap(), "--lt"]);
    let e = rp_api_cli(&server, &no_tsa).unwrap_err();
    assert!(e.contains("--tsa"), "{e}");
    assert!(!refused.exists());

    args.push("--lt");
    let out = rp_api_cli(&server, &args).unwrap();
    assert!(
        out.contains("PAdES-B-LT signature (RSASSA-PSS, SHA-512) written to"),
        "{out}"
    );
    assert!(
        out.contains("validation data: 4 certificates, 2 OCSP responses, 1 CRLs"),
        "{out}"
    );
    let (ok, log) = run("qpdf", &["--check", lt.to_str().unwrap()]);
    assert!(ok, "{log}");
    let (_, log) = run("pdfsig", &[lt.to_str().unwrap()]);
    assert!(log.contains("Signature is Valid."), "{log}");
    let (ok, log) = run("qpdf", &["--show-object=trailer", lt.to_str().unwrap()]);
    assert!(ok, "{log}");

    server.kill();
    // Point-in-time validation now: without a document time-stamp (B-LTA) pyHanko's default
    // past validation has no proof that the DSS existed before now.
    let (ok, now) = run("date", &["-u", "+%Y-%m-%dT%H:%M:%S+00:00"]);
    assert!(ok, "{now}");
    let (ok, log) = run(
        pyhanko().to_str().unwrap(),
        &[
            "sign",
            "adesverify",
            "--validation-time",
            now.trim(),
            "--trust-replace",
            "--trust",
            pki.join("root.pem").to_str().unwrap(),
            "--other-certs",
            pki.join("issuing.pem").to_str().unwrap(),
            lt.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    assert!(
        log.contains(":INTACT:TRUSTED,TIMESTAMP_TOKEN<INTACT:TRUSTED>"),
        "{log}"
    );

    let (code, text, report) = tandem_verify(&server, &lt);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        results(&report),
        vec![("TOTAL_PASSED".to_owned(), "PAdES-B-LT".to_owned())],
        "{text}"
    );
}
