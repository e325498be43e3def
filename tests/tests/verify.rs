//! `tandem verify` against signatures made by a real server (`tandem rp-api sign-cades`
//! with test accounts): green, a changed document (red HASH_FAILURE), an unknown CA (yellow
//! NO_CERTIFICATE_CHAIN_FOUND), a package without proof of origin ("no secure path"), a
//! revoked signer (REVOKED_NO_POE for a signature made before, REVOKED for one made after
//! the revocation if the server still signs), the server stopped (yellow TRY_LATER); and bad
//! input (malformed CMS, hostile ZIPs, usage errors) without a panic; a 500 MB document
//! hashed by a child `tandem verify` whose peak memory stays below 100 MB.

#![allow(clippy::unwrap_used)] // tests

use std::io::Write;
use std::path::Path;
use std::process::Command;

use tandem_rp::documents::asic::{PackageWriter, Role};
use tandem_rp::report::rules::summary_note;
use tandem_rp::report::{Lang, SignatureOutcome, TransmissionPath, VerificationReport};
use tandem_tests::*;

/// The test account that signs with OK.
const OK: &str = "PNOEE-40504040001-MOCK-Q";

/// `tandem verify ARGS`: exit code, stdout, stderr.
fn verify(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tandem_bin())
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().expect("exited, not killed");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (code, stdout, stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts that `out` carries the summary note of the seed's table for this cell.
fn assert_note(out: &str, outcome: SignatureOutcome, path: TransmissionPath, lang: Lang) {
    let note = summary_note(outcome, path, lang);
    assert!(out.contains(&note.signatures), "{lang:?}: {out}");
    assert!(out.contains(&note.submission), "{lang:?}: {out}");
}

fn sign(server: &TestServer, doc: &Path, out: &Path) -> Result<String, String> {
    rp_api_cli(
        server,
        &[
            "sign-cades",
            "--document",
            OK,
            "--file",
            s(doc),
            "--out",
            s(out),
        ],
    )
}

/// A self-signed root nobody else uses.
fn other_root(dir: &Path) -> std::path::PathBuf {
    let (ok, log) = openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other-root.pem",
            "-subj",
            "/CN=Some Other Root",
            "-days",
            "2",
        ],
    );
    assert!(ok, "{log}");
    dir.join("other-root.pem")
}

/// The signing certificate's serial (hex) from a `.p7s`.
fn signer_serial(p7s: &[u8]) -> String {
    let parsed = tandem_rp::validation::cms::parse(p7s).unwrap();
    let si = &parsed.signer_info;
    let cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid else {
        panic!("issuerAndSerialNumber expected");
    };
    let bytes = ias.serial_number.as_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(0);
    hex::encode(&bytes[first..])
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_signatures_made_by_the_server() {
    let mut server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(60, true)),
        ..Default::default()
    })
    .unwrap();
    wait_for_test_accounts(&server);
    let tmp = server.tmp.path().to_owned();
    let trust = server.data_dir.join("pki/root.pem");
    // The certificates name the configured public base URL (ca.example.com); the test
    // asks the server's publication listener instead.
    let (ocsp, crl, root_crl) = (
        format!("{}/ocsp", server.http_url),
        format!("{}/crl/issuing.crl", server.http_url),
        format!("{}/crl/root.crl", server.http_url),
    );
    let verify = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&[
            "--ocsp-url",
            &ocsp,
            "--crl-url",
            &crl,
            "--ca-crl-url",
            &root_crl,
        ]);
        verify(&all)
    };
    let doc = tmp.join("Klage.pdf");
    std::fs::write(&doc, b"%PDF-1.7 not really, but signed bytes\n").unwrap();
    let p7s = tmp.join("Klage.pdf.p7s");
    sign(&server, &doc, &p7s).unwrap();

    // Green, in both languages, with every report written.
    for lang in [Lang::De, Lang::En] {
        let (json, html, pdf) = (tmp.join("r.json"), tmp.join("r.html"), tmp.join("r.pdf"));
        let (code, out, err) = verify(&[
            s(&p7s),
            "--data",
            s(&doc),
            "--trust",
            s(&trust),
            "--lang",
            lang.tag(),
            "--json",
            s(&json),
            "--html",
            s(&html),
            "--pdf",
            s(&pdf),
        ]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("TOTAL_PASSED"), "{out}");
        assert!(out.contains("CAdES-B-B"), "{out}");
        assert_note(
            &out,
            SignatureOutcome::AllValid,
            TransmissionPath::NotSecure,
            lang,
        );
        let report =
            VerificationReport::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report.documents.len(), 1);
        assert_eq!(report.documents[0].name, "Klage.pdf");
        let sig = &report.documents[0].signatures[0];
        assert_eq!(sig.status.indication().etsi_name(), "TOTAL_PASSED");
        assert!(
            sig.signer_name.as_deref().unwrap().contains("TESTNUMBER"),
            "{sig:?}"
        );
        let html = std::fs::read_to_string(&html).unwrap();
        let note = summary_note(
            SignatureOutcome::AllValid,
            TransmissionPath::NotSecure,
            lang,
        );
        assert!(
            html.contains(&tandem_rp::report::html::escape(&note.signatures)),
            "{html}"
        );
        assert!(html.contains("Klage.pdf"), "{html}");
        let text = Command::new("pdftotext")
            .args([s(&pdf), "-"])
            .output()
            .unwrap();
        assert!(text.status.success());
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("Klage.pdf"), "{text}");
    }

    // A changed document: red, HASH_FAILURE.
    let changed = tmp.join("Klage-changed.pdf");
    std::fs::write(&changed, b"%PDF-1.7 not really, but signed bytes!\n").unwrap();
    let (code, out, _) = verify(&[
        s(&p7s),
        "--data",
        s(&changed),
        "--trust",
        s(&trust),
        "--lang",
        "en",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TOTAL_FAILED/HASH_FAILURE"), "{out}");
    assert_note(
        &out,
        SignatureOutcome::SomeInvalid,
        TransmissionPath::NotSecure,
        Lang::En,
    );
    let (code, out, _) = verify(&[
        s(&p7s),
        "--data",
        s(&changed),
        "--trust",
        s(&trust),
        "--lang",
        "de",
    ]);
    assert_eq!(code, 1, "{out}");
    assert_note(
        &out,
        SignatureOutcome::SomeInvalid,
        TransmissionPath::NotSecure,
        Lang::De,
    );

    // Another root as the only anchor: yellow, naming our root as the missing CA.
    let other = other_root(&tmp);
    let (code, out, _) = verify(&[
        s(&p7s),
        "--data",
        s(&doc),
        "--trust",
        s(&other),
        "--lang",
        "en",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("INDETERMINATE/NO_CERTIFICATE_CHAIN_FOUND"),
        "{out}"
    );
    assert!(out.contains("is not among the trust anchors"), "{out}");
    assert_note(
        &out,
        SignatureOutcome::SomeIndeterminate,
        TransmissionPath::NotSecure,
        Lang::En,
    );

    // A package without proof of origin: the signatures are green, the path is not secure.
    let attachment = tmp.join("Anlage.txt");
    std::fs::write(&attachment, b"Anlage K1").unwrap();
    let attachment_p7s = tmp.join("Anlage.txt.p7s");
    sign(&server, &attachment, &attachment_p7s).unwrap();
    let package = tmp.join("message.asice");
    let mut w = PackageWriter::new(std::fs::File::create(&package).unwrap()).unwrap();
    w.add_document(
        "Klage.pdf",
        Role::Main,
        "application/pdf",
        std::fs::File::open(&doc).unwrap(),
        &std::fs::read(&p7s).unwrap(),
    )
    .unwrap();
    w.add_document(
        "Anlage.txt",
        Role::Attachment,
        "text/plain",
        std::fs::File::open(&attachment).unwrap(),
        &std::fs::read(&attachment_p7s).unwrap(),
    )
    .unwrap();
    w.finish(None).unwrap().flush().unwrap();
    for lang in [Lang::De, Lang::En] {
        let json = tmp.join("p.json");
        let (code, out, err) = verify(&[
            s(&package),
            "--trust",
            s(&trust),
            "--lang",
            lang.tag(),
            "--json",
            s(&json),
        ]);
        assert_eq!(code, 0, "{out}{err}");
        assert_note(
            &out,
            SignatureOutcome::AllValid,
            TransmissionPath::NotSecure,
            lang,
        );
        let report =
            VerificationReport::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report.documents.len(), 2);
        assert_eq!(
            report.proof_of_origin.transmission_path(),
            TransmissionPath::NotSecure
        );
        assert!(
            report
                .signature_colours()
                .all(|c| c == tandem_rp::report::Colour::Green)
        );
    }

    // The signer revoked. The server does not sign with a revoked certificate, so the
    // signature claiming a time after the revocation is made first, claiming a time two
    // minutes ahead (within the verifier's slack for clocks): the revocation falls between
    // the two signatures' claimed times.
    let late = tmp.join("late.p7s");
    let ahead = tandem_rp::report::UtcTime::from_system_time(
        std::time::SystemTime::now() + std::time::Duration::from_secs(120),
    )
    .unwrap()
    .to_string();
    rp_api_cli(
        &server,
        &[
            "sign-cades",
            "--document",
            OK,
            "--file",
            s(&doc),
            "--out",
            s(&late),
            "--signing-time",
            &ahead,
        ],
    )
    .unwrap();
    let serial = signer_serial(&std::fs::read(&p7s).unwrap());
    assert_eq!(serial, signer_serial(&std::fs::read(&late).unwrap()));
    server
        .operator(&["revoke", &serial, "--reason", "1"])
        .unwrap();
    for lang in [Lang::De, Lang::En] {
        // Signed before the revocation, nothing proves it: yellow REVOKED_NO_POE.
        let (code, out, _) = verify(&[
            s(&p7s),
            "--data",
            s(&doc),
            "--trust",
            s(&trust),
            "--lang",
            lang.tag(),
        ]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("INDETERMINATE/REVOKED_NO_POE"), "{out}");
        assert_note(
            &out,
            SignatureOutcome::SomeIndeterminate,
            TransmissionPath::NotSecure,
            lang,
        );
        // Claimed after the revocation: red REVOKED.
        let (code, out, _) = verify(&[
            s(&late),
            "--data",
            s(&doc),
            "--trust",
            s(&trust),
            "--lang",
            lang.tag(),
        ]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("TOTAL_FAILED/REVOKED "), "{out}");
        assert_note(
            &out,
            SignatureOutcome::SomeInvalid,
            TransmissionPath::NotSecure,
            lang,
        );
    }
    // Signing with the revoked certificate is refused by the server.
    assert!(sign(&server, &doc, &tmp.join("refused.p7s")).is_err());

    // The server (its OCSP responder and CRLs) gone: yellow TRY_LATER.
    server.kill();
    for lang in [Lang::De, Lang::En] {
        let (code, out, _) = verify(&[
            s(&p7s),
            "--data",
            s(&doc),
            "--trust",
            s(&trust),
            "--lang",
            lang.tag(),
            "--revocation-timeout",
            "3",
        ]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("INDETERMINATE/TRY_LATER"), "{out}");
        assert_note(
            &out,
            SignatureOutcome::SomeIndeterminate,
            TransmissionPath::NotSecure,
            lang,
        );
    }
}

/// A ZIP with the given (name, bytes) entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        // `mimetype` stored, as ASiC requires; everything else deflated.
        let method = if *name == "mimetype" {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let o = zip::write::SimpleFileOptions::default().compression_method(method);
        w.start_file(*name, o).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn bad_input_gives_a_clear_error_or_format_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let trust = other_root(dir);
    let doc = dir.join("doc.txt");
    std::fs::write(&doc, b"hello").unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    // Malformed CMS / DER: red FORMAT_FAILURE.
    for (name, bytes) in [
        ("garbage.p7s", b"this is not DER".to_vec()),
        ("truncated.p7s", vec![0x30, 0x82, 0x10, 0x00, 0x06, 0x09]),
        ("empty.p7s", Vec::new()),
    ] {
        let p = write(name, &bytes);
        let (code, out, _) = verify(&[
            s(&p),
            "--data",
            s(&doc),
            "--trust",
            s(&trust),
            "--lang",
            "en",
        ]);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains("TOTAL_FAILED/FORMAT_FAILURE"), "{name}: {out}");
    }

    // Hostile packages: red FORMAT_FAILURE naming the problem.
    let mut dup = zip_of(&[
        ("mimetype", b"application/vnd.etsi.asic-e+zip"),
        ("a.txt", b"1"),
        ("b.txt", b"2"),
    ]);
    // Rename b.txt to a.txt in the local header and the central directory.
    let pat = b"b.txt";
    let mut i = 0;
    while i + pat.len() <= dup.len() {
        if &dup[i..i + pat.len()] == pat {
            dup[i] = b'a';
        }
        i += 1;
    }
    let manifest_of = |name: &str| {
        let zeros = "0".repeat(64);
        format!(
            r#"{{"version":1,"documents":[{{"name":"{name}","role":"main","sha256":"{zeros}","mediaType":"application/octet-stream","signature":"META-INF/signatures1.p7s"}}]}}"#
        )
    };
    let bomb_manifest = manifest_of("bomb.bin");
    let bomb = zip_of(&[
        ("mimetype", b"application/vnd.etsi.asic-e+zip"),
        ("bomb.bin", &vec![0u8; 16 * 1024 * 1024]),
        ("META-INF/signatures1.p7s", b"0"),
        ("META-INF/tandem-package.json", bomb_manifest.as_bytes()),
    ]);
    let missing_manifest = manifest_of("gone.pdf");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot.zip",
            zip_of(&[
                ("mimetype", b"application/vnd.etsi.asic-e+zip"),
                ("../evil.txt", b"x"),
            ]),
            "../evil.txt",
        ),
        ("dup.zip", dup, "duplicate"),
        ("bomb.zip", bomb, "bomb.bin"),
        (
            "missing.zip",
            zip_of(&[
                ("mimetype", b"application/vnd.etsi.asic-e+zip"),
                ("META-INF/signatures1.p7s", b"0"),
                ("META-INF/tandem-package.json", missing_manifest.as_bytes()),
            ]),
            "gone.pdf",
        ),
        (
            "truncated.zip",
            b"PK\x03\x04 and then nothing".to_vec(),
            "package:",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = write(name, &bytes);
        let (code, out, err) = verify(&[s(&p), "--trust", s(&trust), "--lang", "en"]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(out.contains("TOTAL_FAILED/FORMAT_FAILURE"), "{name}: {out}");
        assert!(out.contains(want), "{name}: {out}");
        println!(
            "{name}: {}",
            out.lines().find(|l| l.contains("package:")).unwrap_or("")
        );
    }

    // Usage errors: exit 3.
    let sig = write("x.p7s", b"0");
    for args in [
        vec![s(&sig), "--trust", s(&trust)], // no --data
        vec![s(&sig), "--data", s(&doc)],    // no --trust
        vec![
            s(&sig),
            "--data",
            s(&doc),
            "--trust",
            s(&trust),
            "--lang",
            "fr",
        ], // unknown lang
        vec![
            "/nonexistent/file.p7s",
            "--data",
            s(&doc),
            "--trust",
            s(&trust),
        ],
        vec![s(&sig), "--data", "/nonexistent/doc", "--trust", s(&trust)],
        vec!["--no-such-option"],
    ] {
        let (code, out, err) = verify(&args);
        assert_eq!(code, 3, "{args:?}: {out}{err}");
        assert!(err.contains("error"), "{args:?}: {err}");
    }

    // A PDF that is no PDF after its header: red FORMAT_FAILURE naming the reason.
    let pdf = write("doc.pdf", b"%PDF-1.7\n%%EOF\n");
    let (code, out, err) = verify(&[s(&pdf), "--trust", s(&trust), "--lang", "en"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("TOTAL_FAILED/FORMAT_FAILURE"), "{out}");
    assert!(out.contains("PDF: the PDF is truncated"), "{out}");
    // A PDF with --data: a usage error.
    let (code, _, err) = verify(&[s(&pdf), "--data", s(&doc), "--trust", s(&trust)]);
    assert_eq!(code, 3, "{err}");
}

/// The peak resident memory (VmHWM, kB) of a running process, if it still runs.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_500_mb_document_is_hashed_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A signer of its own (ECDSA P-256, self-signed, its own trust anchor) over a small
    // document, checked against a 500 MB sparse file: red HASH_FAILURE.
    let (ok, log) = openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-subj",
            "/CN=Big Document Signer",
            "-days",
            "2",
        ],
    );
    assert!(ok, "{log}");
    std::fs::write(dir.join("doc.txt"), b"the signed bytes\n").unwrap();
    let (ok, log) = openssl(
        dir,
        &[
            "cms", "-sign", "-binary", "-md", "sha256", "-in", "doc.txt", "-signer", "c.pem",
            "-inkey", "k.pem", "-outform", "DER", "-out", "s.p7s",
        ],
    );
    assert!(ok, "{log}");
    let big = dir.join("big.bin");
    let size = 500 * 1024 * 1024;
    std::fs::File::create(&big).unwrap().set_len(size).unwrap();

    let mut child = Command::new(tandem_bin())
        .args(["verify", s(&dir.join("s.p7s")), "--data", s(&big)])
        .args(["--trust", s(&dir.join("c.pem")), "--lang", "en"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut peak_kb = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kb) = vm_hwm_kb(child.id()) {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("TOTAL_FAILED/HASH_FAILURE"), "{stdout}");
    // Sampled while it ran: the high-water mark only grows, so the last sample is close to
    // the peak. Streaming keeps it far below the document's size.
    assert!(peak_kb > 0, "no sample of the child's memory");
    assert!(
        peak_kb < 100 * 1024,
        "peak {peak_kb} kB for a {size}-byte document"
    );
    assert!(elapsed < std::time::Duration::from_secs(120), "{elapsed:?}");
    println!("500 MB document: peak {peak_kb} kB, {elapsed:?}");
}
