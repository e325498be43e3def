//! PAdES signatures made with the test PKI's key, checked by independent tools: `qpdf
//! --check` (structure), `pdfsig` (poppler: the signature over the byte ranges) and
//! `openssl cms -verify` over the bytes `/ByteRange` names.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use tandem_rp_test_pki::pki;

use super::*;

/// A classic-xref PDF with `pages` pages of text.
pub(crate) fn simple_pdf(pages: usize) -> Vec<u8> {
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
            "<< /Type /Page /Parent 2 0 R /Contents {} 0 R /Resources << /Font << /F1 {font} 0 R >> >> >>",
            4 + 2 * i
        ));
        let text = format!(
            "BT /F1 24 Tf 72 720 Td (Page {} of the contract) Tj ET",
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

fn sign_digest(hash: DocumentHash, digest: &[u8]) -> Vec<u8> {
    let md = match hash {
        DocumentHash::Sha256 => openssl::md::Md::sha256(),
        DocumentHash::Sha384 => openssl::md::Md::sha384(),
        DocumentHash::Sha512 => openssl::md::Md::sha512(),
    };
    let mut ctx = PkeyCtx::new(&pki().leaf_key).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_signature_md(md).unwrap();
    ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    ctx.set_rsa_mgf1_md(md).unwrap();
    ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(hash.output_len() as i32))
        .unwrap();
    let mut sig = Vec::new();
    ctx.sign_to_vec(digest, &mut sig).unwrap();
    sig
}

/// Signs `input` into `out` with the test PKI's signing certificate.
pub(crate) fn sign(input: &Path, out: &Path, appearance: Appearance) -> Result<(), PadesError> {
    let (signer, issuer) = (
        pki().sign.to_der().unwrap(),
        pki().issuing.to_der().unwrap(),
    );
    let prepared = prepare(
        input,
        out,
        &PadesInput {
            signer_certificate_der: &signer,
            issuer_certificate_der: &issuer,
            hash: DocumentHash::Sha256,
            scheme: CadesScheme::RsassaPss,
            signing_time: UNIX_EPOCH + Duration::from_secs(1_796_000_000),
            appearance,
            contents_size: DEFAULT_CONTENTS_SIZE,
        },
    )?;
    let sig = sign_digest(prepared.hash(), prepared.digest_to_sign());
    let cms = prepared.signed_cms(&sig)?;
    prepared.finish(&cms)?;
    Ok(())
}

pub(crate) fn run(cmd: &str, args: &[&str]) -> (bool, String) {
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

/// The n-th (0-based) signature's `/ByteRange` and `/Contents` bytes.
fn signature_parts(pdf: &[u8], n: usize) -> (Vec<u8>, Vec<u8>) {
    let at = pdf
        .windows(11)
        .enumerate()
        .filter(|(_, w)| w == b"/ByteRange ")
        .nth(n)
        .unwrap()
        .0;
    let end = at + pdf[at..].iter().position(|&b| b == b']').unwrap();
    let nums: Vec<usize> = String::from_utf8_lossy(&pdf[at + 11..end])
        .trim_matches(|c| c == '[' || c == ' ')
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 4);
    assert_eq!(nums[0], 0);
    let mut signed = pdf[..nums[1]].to_vec();
    signed.extend_from_slice(&pdf[nums[2]..nums[2] + nums[3]]);
    let hex = &pdf[nums[1] + 1..nums[2] - 1];
    let cms = hex::decode(hex).unwrap();
    // The CMS is DER: its length says where the zero padding starts.
    let len = if cms[1] < 0x80 {
        2 + cms[1] as usize
    } else {
        let n = (cms[1] & 0x7f) as usize;
        2 + n
            + cms[2..2 + n]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | b as usize)
    };
    (signed, cms[..len].to_vec())
}

fn cms_verify(dir: &Path, signed: &[u8], cms: &[u8]) -> (bool, String) {
    let w = |n: &str, d: &[u8]| {
        let p = dir.join(n);
        std::fs::write(&p, d).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let root = w("root.pem", &pki().root.to_pem().unwrap());
    let content = w("signed.bin", signed);
    let p7s = w("sig.p7s", cms);
    run(
        "openssl",
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            &p7s,
            "-content",
            &content,
            "-CAfile",
            &root,
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    )
}

#[test]
fn invisible_signature_appends_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pdf");
    let out = dir.path().join("out.pdf");
    let original = simple_pdf(2);
    std::fs::write(&input, &original).unwrap();
    sign(&input, &out, Appearance::Invisible).unwrap();
    let signed = std::fs::read(&out).unwrap();
    assert!(signed.starts_with(&original), "the original bytes are kept");
    assert!(!dir.path().join("out.pdf.part").exists());

    let (ok, log) = run("qpdf", &["--check", out.to_str().unwrap()]);
    assert!(ok, "{log}");
    let (_, log) = run("pdfsig", &[out.to_str().unwrap()]);
    assert!(log.contains("Signature #1"), "{log}");
    assert!(log.contains("Signature is Valid."), "{log}");
    assert!(log.contains("ETSI.CAdES.detached"), "{log}");

    let (content, cms) = signature_parts(&signed, 0);
    assert_eq!(content.len() + 2 + 2 * DEFAULT_CONTENTS_SIZE, signed.len());
    let (ok, log) = cms_verify(dir.path(), &content, &cms);
    assert!(ok, "{log}");
    // No signing-time in PAdES.
    let (_, print) = run(
        "openssl",
        &[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "DER",
            "-in",
            &dir.path().join("sig.p7s").to_string_lossy(),
        ],
    );
    assert!(!print.contains("signingTime"), "{print}");
    assert!(print.contains("messageDigest"), "{print}");

    // A changed byte in the signed range: pdfsig no longer accepts it.
    let mut tampered = signed.clone();
    let at = original.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let t = dir.path().join("tampered.pdf");
    std::fs::write(&t, &tampered).unwrap();
    let (_, log) = run("pdfsig", &[t.to_str().unwrap()]);
    assert!(!log.contains("Signature is Valid."), "{log}");
}

#[test]
fn visible_second_signature_on_an_xref_stream_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pdf");
    std::fs::write(&plain, simple_pdf(3)).unwrap();
    let input = dir.path().join("in.pdf");
    let (ok, log) = run(
        "qpdf",
        &[
            "--object-streams=generate",
            plain.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    let original = std::fs::read(&input).unwrap();
    assert!(
        original.windows(10).any(|w| w == b"/Type/XRef")
            || original.windows(11).any(|w| w == b"/Type /XRef"),
        "qpdf wrote an xref stream"
    );
    let once = dir.path().join("once.pdf");
    sign(
        &input,
        &once,
        Appearance::Visible {
            page: 2,
            rect: [300.0, 100.0, 200.0, 50.0],
        },
    )
    .unwrap();
    let twice = dir.path().join("twice.pdf");
    sign(&once, &twice, Appearance::Invisible).unwrap();
    let first = std::fs::read(&once).unwrap();
    let second = std::fs::read(&twice).unwrap();
    assert!(first.starts_with(&original));
    assert!(second.starts_with(&first));

    let (ok, log) = run("qpdf", &["--check", twice.to_str().unwrap()]);
    assert!(ok, "{log}");
    let (_, log) = run("pdfsig", &[twice.to_str().unwrap()]);
    assert!(log.contains("Signature #2"), "{log}");
    assert_eq!(log.matches("Signature is Valid.").count(), 2, "{log}");
    // The first signature's ranges end where its revision ended.
    let (content, cms) = signature_parts(&second, 0);
    assert_eq!(content.len() + 2 + 2 * DEFAULT_CONTENTS_SIZE, first.len());
    assert!(cms_verify(dir.path(), &content, &cms).0);
    // The visible one is on page 2 and shows the signer.
    let (ok, text) = run(
        "pdftotext",
        &["-f", "2", "-l", "2", twice.to_str().unwrap(), "-"],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("Signed by TESTNUMBER,QUALIFIED OK1"),
        "{text}"
    );
}

#[test]
fn bad_pdfs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pdf");
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let pdf = simple_pdf(1);
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (
            write("garbage.pdf", b"this is not a PDF at all"),
            "does not start with %PDF-",
        ),
        (write("empty.pdf", b""), "does not start with %PDF-"),
        (write("half.pdf", &pdf[..pdf.len() / 2]), "truncated"),
        (write("noxref.pdf", &pdf[..pdf.len() - 30]), "truncated"),
        (
            write(
                "badxref.pdf",
                &String::from_utf8_lossy(&pdf)
                    .replace("startxref\n", "startxref\n1")
                    .into_bytes(),
            ),
            "",
        ),
    ];
    for (p, want) in cases {
        let e = sign(&p, &out, Appearance::Invisible)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{}: {e}", p.display());
        assert!(!out.exists());
        assert!(!dir.path().join("out.pdf.part").exists());
    }
    let e = sign(
        &write("one.pdf", &pdf),
        &out,
        Appearance::Visible {
            page: 5,
            rect: [0.0, 0.0, 10.0, 10.0],
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "the PDF has no page 5 (it has 1)");

    // Encrypted with qpdf.
    let plain = write("plain.pdf", &pdf);
    let enc = dir.path().join("enc.pdf");
    let (ok, log) = run(
        "qpdf",
        &[
            "--encrypt",
            "u",
            "o",
            "256",
            "--",
            plain.to_str().unwrap(),
            enc.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    let e = sign(&enc, &out, Appearance::Invisible).unwrap_err();
    assert_eq!(e, PadesError::Pdf(PdfError::Encrypted));
    assert!(!out.exists());
}
