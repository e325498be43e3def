//! The DSS update on PDFs signed with the test PKI's key: read back by our reader, checked
//! by `qpdf --check` and `pdfsig` (the signature still valid), on a classic-xref PDF and on
//! one with xref streams, twice (the second update extends the store).

#![allow(clippy::unwrap_used)] // tests

use tandem_rp_test_pki::{ocsp_response_cli, pki};

use super::*;
use crate::documents::pades::Appearance;
use crate::documents::pades::tests::{run, sign, simple_pdf};

fn data(dir: &Path) -> ValidationData {
    let p = pki();
    ValidationData {
        certificates: vec![p.root.to_der().unwrap(), p.issuing.to_der().unwrap()],
        ocsp_responses: vec![
            ocsp_response_cli(dir, &p.sign, &p.issuing, &p.issuing_key, None),
            ocsp_response_cli(dir, &p.issuing, &p.root, &p.root_key, None),
        ],
        crls: Vec::new(),
    }
}

fn read(path: &Path) -> ValidationData {
    let mut r = PdfReader::open(BufReader::new(File::open(path).unwrap())).unwrap();
    read_dss(&mut r).unwrap()
}

fn checked(path: &Path) {
    let (ok, log) = run("qpdf", &["--check", path.to_str().unwrap()]);
    assert!(ok, "{log}");
    let (_, log) = run("pdfsig", &[path.to_str().unwrap()]);
    assert!(log.contains("Signature #1"), "{log}");
    assert!(log.contains("Signature is Valid."), "{log}");
}

#[test]
fn dss_update_reads_back_and_keeps_the_signature() {
    for xref_stream in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.pdf");
        std::fs::write(&input, simple_pdf(1)).unwrap();
        if xref_stream {
            let plain = dir.path().join("plain.pdf");
            std::fs::rename(&input, &plain).unwrap();
            let (ok, log) = run(
                "qpdf",
                &[
                    "--object-streams=generate",
                    plain.to_str().unwrap(),
                    input.to_str().unwrap(),
                ],
            );
            assert!(ok, "{log}");
        }
        let signed = dir.path().join("signed.pdf");
        sign(&input, &signed, Appearance::Invisible).unwrap();
        assert_eq!(read(&signed), ValidationData::default(), "no DSS yet");

        let lt = dir.path().join("lt.pdf");
        let want = data(dir.path());
        add_dss(&signed, &lt, &want).unwrap();
        assert!(!dir.path().join("lt.pdf.part").exists());
        let before = std::fs::read(&signed).unwrap();
        let after = std::fs::read(&lt).unwrap();
        assert!(
            after.starts_with(&before),
            "the signed revision is untouched"
        );
        assert_eq!(read(&lt), want);
        checked(&lt);
        let (_, log) = run("qpdf", &["--show-object=trailer", lt.to_str().unwrap()]);
        assert!(log.contains("/Prev"), "{log}");

        // Again, in place, with one more item and the old ones: the store grows by one.
        let mut more = want.clone();
        more.certificates.push(pki().sign.to_der().unwrap());
        add_dss(&lt, &lt, &more).unwrap();
        assert_eq!(read(&lt), more);
        assert!(std::fs::read(&lt).unwrap().starts_with(&after));
        checked(&lt);
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pdf");
    std::fs::write(&bad, b"%PDF-1.7\nnot really a PDF\n").unwrap();
    let out = dir.path().join("out.pdf");
    let e = add_dss(&bad, &out, &ValidationData::default()).unwrap_err();
    assert!(!e.to_string().is_empty());
    assert!(!out.exists() && !dir.path().join("out.pdf.part").exists());
    let e = add_dss(
        &dir.path().join("missing.pdf"),
        &out,
        &ValidationData::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing.pdf"), "{e}");
}
