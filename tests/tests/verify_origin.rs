//! `tandem verify` on packages with a proof of origin made by a real server
//! (`tandem rp-api package create` with a test account): a valid proof (green, secure
//! path, the header filled from the statement), a corrupted proof ("invalid", red), a
//! proof that is not CMS (malformed), a proof from a CA nobody trusts (unknown CA, made by
//! `openssl cms -sign`) and the server stopped
//! (OCSP and CRL unreachable: "not checkable now", yellow). Each in German and English, on
//! standard output, in the HTML report and in the PDF report (`pdftotext`).

#![allow(clippy::unwrap_used)] // tests

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use tandem_rp::documents::asic::PROOF_OF_ORIGIN;
use tandem_rp::report::html::escape;
use tandem_rp::report::rules::summary_note;
use tandem_rp::report::texts::{self, Label};
use tandem_rp::report::{
    Lang, ProofOfOrigin, SignatureOutcome, TransmissionPath, VerificationReport,
};
use tandem_tests::*;

/// The test account that answers OK.
const OK: &str = "PNOEE-40504040001-MOCK-Q";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// What one `tandem verify` run produced.
struct Run {
    code: i32,
    out: String,
    report: VerificationReport,
    html: String,
    /// The PDF report's text, white space collapsed.
    pdf: String,
}

fn squash(t: &str) -> String {
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `tandem verify PACKAGE` with every report written.
fn verify(server: &TestServer, package: &Path, lang: Lang, extra: &[&str]) -> Run {
    let dir = server.tmp.path();
    let (json, html, pdf) = (dir.join("r.json"), dir.join("r.html"), dir.join("r.pdf"));
    for p in [&json, &html, &pdf] {
        let _ = std::fs::remove_file(p);
    }
    let trust = server.data_dir.join("pki/root.pem");
    // The certificates name the configured public base URL; ask the server's listener.
    let (ocsp, crl, root_crl) = (
        format!("{}/ocsp", server.http_url),
        format!("{}/crl/issuing.crl", server.http_url),
        format!("{}/crl/root.crl", server.http_url),
    );
    let out = Command::new(tandem_bin())
        .args([
            "verify",
            s(package),
            "--trust",
            s(&trust),
            "--lang",
            lang.tag(),
        ])
        .args(["--json", s(&json), "--html", s(&html), "--pdf", s(&pdf)])
        .args([
            "--ocsp-url",
            &ocsp,
            "--crl-url",
            &crl,
            "--ca-crl-url",
            &root_crl,
        ])
        .args(["--revocation-timeout", "3"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let code = out.status.code().expect("exited, not killed");
    let report = VerificationReport::from_json(
        &std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}")),
    )
    .unwrap();
    let text = Command::new("pdftotext")
        .args([s(&pdf), "-"])
        .output()
        .unwrap();
    assert!(text.status.success());
    Run {
        code,
        out: stdout,
        report,
        html: std::fs::read_to_string(&html).unwrap(),
        pdf: squash(&String::from_utf8_lossy(&text.stdout)),
    }
}

impl Run {
    /// The proof's message (and detail, if any), the secure-path row and the summary note
    /// for `outcome` and `path`, in every output.
    fn assert_proof(&self, outcome: SignatureOutcome, path: TransmissionPath, lang: Lang) {
        let proof = &self.report.proof_of_origin;
        assert_eq!(proof.transmission_path(), path, "{}", self.out);
        let message = texts::proof_message(proof, lang);
        let note = summary_note(outcome, path, lang);
        let mut want = vec![message, &note.signatures, &note.submission];
        if let Some(d) = texts::proof_detail(proof, lang) {
            want.push(d);
        }
        for w in want {
            assert!(
                self.out.contains(w),
                "{lang:?} stdout lacks {w:?}: {}",
                self.out
            );
            assert!(self.html.contains(&escape(w)), "{lang:?} HTML lacks {w:?}");
            assert!(
                self.pdf.contains(&squash(w)),
                "{lang:?} PDF lacks {w:?}: {}",
                self.pdf
            );
        }
        let row = match path {
            TransmissionPath::Secure => Label::Yes,
            TransmissionPath::NotConfirmed => Label::NotConfirmed,
            TransmissionPath::NotSecure => Label::No,
        };
        let row = format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            Label::SecurePath.text(lang),
            row.text(lang)
        );
        assert!(self.html.contains(&row), "{lang:?} HTML lacks {row}");
    }

    fn status(&self) -> String {
        match &self.report.proof_of_origin {
            ProofOfOrigin::Checked { status, .. } => match status.sub_indication() {
                Some(s) => format!("{}/{}", status.indication().etsi_name(), s.etsi_name()),
                None => status.indication().etsi_name().to_owned(),
            },
            other => format!("{other:?}"),
        }
    }
}

/// The package with its proof of origin replaced by `proof` (entries in order, stored or
/// deflated as before).
fn with_proof(package: &Path, proof: &[u8], out: &Path) {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(package).unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).unwrap();
        let name = e.name().unwrap().into_owned();
        let o = zip::write::SimpleFileOptions::default().compression_method(e.compression());
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        if name == PROOF_OF_ORIGIN {
            bytes = proof.to_vec();
        }
        w.start_file(name, o).unwrap();
        w.write_all(&bytes).unwrap();
    }
    w.finish().unwrap().flush().unwrap();
}

/// A proof of origin over `statement` made by `openssl cms -sign` under a fresh root that
/// nobody trusts: an EC key (ECDSA with SHA-256), the proof-of-origin key purpose.
fn foreign_proof(dir: &Path, statement: &[u8]) -> Vec<u8> {
    let run = |args: &[&str]| {
        let (ok, log) = openssl(dir, args);
        assert!(ok, "{args:?}: {log}");
    };
    std::fs::write(dir.join("statement.json"), statement).unwrap();
    std::fs::write(
        dir.join("ext.cnf"),
        "[leaf]\nkeyUsage=critical,digitalSignature,nonRepudiation\n\
         extendedKeyUsage=1.3.6.1.4.1.32473.1.3.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut root = vec![
        "req",
        "-x509",
        "-keyout",
        "f-root.key",
        "-out",
        "f-root.pem",
    ];
    root.extend_from_slice(&ec);
    root.extend_from_slice(&["-subj", "/CN=Foreign Proof Root", "-days", "2"]);
    run(&root);
    let mut req = vec!["req", "-new", "-keyout", "f-leaf.key", "-out", "f-leaf.csr"];
    req.extend_from_slice(&ec);
    req.extend_from_slice(&["-subj", "/CN=Foreign proof of origin"]);
    run(&req);
    run(&[
        "x509",
        "-req",
        "-in",
        "f-leaf.csr",
        "-CA",
        "f-root.pem",
        "-CAkey",
        "f-root.key",
        "-CAcreateserial",
        "-out",
        "f-leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-extensions",
        "leaf",
    ]);
    run(&[
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-md",
        "sha256",
        "-in",
        "statement.json",
        "-signer",
        "f-leaf.pem",
        "-inkey",
        "f-leaf.key",
        "-outform",
        "DER",
        "-out",
        "foreign.p7s",
    ]);
    std::fs::read(dir.join("foreign.p7s")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_the_proof_of_origin() {
    let mut server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(60, true)),
        ..Default::default()
    })
    .unwrap();
    wait_for_test_accounts(&server);
    let tmp: PathBuf = server.tmp.path().to_owned();

    let main = tmp.join("Schriftsatz.pdf");
    let attachment = tmp.join("Anlage 1.txt");
    std::fs::write(&main, b"%PDF-1.7 Klageschrift, signed bytes\n").unwrap();
    std::fs::write(&attachment, b"Rechnung Nr. 42\n").unwrap();
    let package = tmp.join("nachricht.asice");
    rp_api_cli(
        &server,
        &[
            "package",
            "create",
            "--document",
            OK,
            "--to",
            "Amtsgericht Berlin:DE.Justiz.AG-Berlin",
            "--main",
            s(&main),
            "--attach",
            s(&attachment),
            "--sender-ref",
            "AZ 17/26",
            "--recipient-ref",
            "12 C 345/26",
            "--message-id",
            "msg-0001",
            "--out",
            s(&package),
        ],
    )
    .unwrap();

    // Valid: green proof, secure path, the header from the statement, exit 0.
    for lang in [Lang::De, Lang::En] {
        let r = verify(&server, &package, lang, &[]);
        assert_eq!(r.code, 0, "{}", r.out);
        assert_eq!(r.status(), "TOTAL_PASSED", "{}", r.out);
        r.assert_proof(SignatureOutcome::AllValid, TransmissionPath::Secure, lang);
        let ProofOfOrigin::Checked { ca, .. } = &r.report.proof_of_origin else {
            unreachable!()
        };
        assert!(ca.contains("Tandem Issuing CA"), "{ca}");
        let h = &r.report.header;
        let m = h.message.as_ref().unwrap();
        assert_eq!(m.message_id, "msg-0001");
        assert_eq!(m.sender_reference.as_deref(), Some("AZ 17/26"));
        assert_eq!(m.recipient_reference.as_deref(), Some("12 C 345/26"));
        let sender = h.sender.as_ref().unwrap();
        assert_eq!(
            (sender.name.as_str(), sender.identifier.as_str()),
            ("OK TESTNUMBER", "PNOEE-40504040001")
        );
        let recipient = h.recipient.as_ref().unwrap();
        assert_eq!(
            (recipient.name.as_str(), recipient.identifier.as_str()),
            ("Amtsgericht Berlin", "DE.Justiz.AG-Berlin")
        );
        for w in [
            "AZ 17/26",
            "12 C 345/26",
            "msg-0001",
            "OK TESTNUMBER",
            "PNOEE-40504040001",
            "DE.Justiz.AG-Berlin",
        ] {
            assert!(r.out.contains(w), "{w}: {}", r.out);
            assert!(r.html.contains(&escape(w)), "{w}: HTML");
            assert!(r.pdf.contains(w), "{w}: {}", r.pdf);
        }
    }

    let proof = {
        let bytes = std::fs::read(&package).unwrap();
        let p = tandem_rp::documents::asic::read_package(
            std::io::Cursor::new(bytes),
            &Default::default(),
        )
        .unwrap();
        p.proof_of_origin.unwrap()
    };

    // A flipped byte of the signature (the SignedData's last field): "invalid", red, no
    // header from the proof.
    let mut bad = proof.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    let corrupted = tmp.join("corrupted.asice");
    with_proof(&package, &bad, &corrupted);
    for lang in [Lang::De, Lang::En] {
        let r = verify(&server, &corrupted, lang, &[]);
        assert_eq!(r.code, 1, "{}", r.out);
        assert_eq!(r.status(), "TOTAL_FAILED/SIG_CRYPTO_FAILURE", "{}", r.out);
        r.assert_proof(
            SignatureOutcome::AllValid,
            TransmissionPath::NotSecure,
            lang,
        );
        assert!(r.report.header.message.is_none());
        assert!(r.report.header.sender.is_none());
        assert!(!r.out.contains("msg-0001"), "{}", r.out);
    }

    // Not CMS at all: malformed, no check possible, no secure path.
    let garbage = tmp.join("garbage-proof.asice");
    with_proof(&package, &[0x30, 0x82, 0xff, 0xff, 0x06], &garbage);
    for lang in [Lang::De, Lang::En] {
        let r = verify(&server, &garbage, lang, &[]);
        assert_eq!(
            r.report.proof_of_origin,
            ProofOfOrigin::Malformed,
            "{}",
            r.out
        );
        r.assert_proof(
            SignatureOutcome::AllValid,
            TransmissionPath::NotSecure,
            lang,
        );
        assert!(r.report.header.message.is_none());
    }

    // The same statement signed under a root nobody trusts: unknown CA, named.
    let (statement, _) = tandem_rp::documents::origin::read_statement_unverified(&proof).unwrap();
    let foreign = foreign_proof(&tmp, &statement.to_json());
    let unknown = tmp.join("unknown-ca.asice");
    with_proof(&package, &foreign, &unknown);
    for lang in [Lang::De, Lang::En] {
        let r = verify(&server, &unknown, lang, &[]);
        match &r.report.proof_of_origin {
            ProofOfOrigin::UnknownCa { ca: Some(ca) } => {
                assert!(ca.contains("Foreign Proof Root"), "{ca}")
            }
            other => panic!("expected an unknown CA, got {other:?}: {}", r.out),
        }
        r.assert_proof(
            SignatureOutcome::AllValid,
            TransmissionPath::NotSecure,
            lang,
        );
        assert!(r.report.header.sender.is_none());
        assert!(r.html.contains("Foreign Proof Root"));
    }

    // The server stopped: OCSP and CRL unreachable, the proof cannot be checked now.
    server.kill();
    for lang in [Lang::De, Lang::En] {
        let r = verify(&server, &package, lang, &[]);
        assert_eq!(r.code, 2, "{}", r.out);
        assert_eq!(r.status(), "INDETERMINATE/TRY_LATER", "{}", r.out);
        // The documents' signatures cannot be checked for revocation either.
        r.assert_proof(
            SignatureOutcome::SomeIndeterminate,
            TransmissionPath::NotConfirmed,
            lang,
        );
        assert_eq!(
            r.report.header.message.as_ref().unwrap().message_id,
            "msg-0001"
        );
    }
}
