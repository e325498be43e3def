//! PAdES validation of PDFs signed locally with the test PKI's key (documents::pades), and of
//! PDFs that are damaged, changed after signing or not signed at all.

#![allow(clippy::unwrap_used)] // tests

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use tandem_rp_test_pki::pki;

use super::*;
use crate::client::revocation::RevocationOptions;
use crate::documents::cades::CadesScheme;
use crate::documents::pades::{Appearance, DEFAULT_CONTENTS_SIZE, PadesInput, prepare};
use crate::report::{Indication, SigningTimeSource, SubIndication, UtcTime};

/// The `/M` time the test signatures claim.
fn signed_at() -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(now - 60)
}

/// A classic-xref PDF with one page of text.
fn simple_pdf(trailer_extra: &str) -> Vec<u8> {
    let text = "BT /F1 24 Tf 72 720 Td (The contract) Tj ET";
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842] >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>".to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{text}\nendstream",
            text.len() + 1
        ),
    ];
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(b"xref\n0 5\n0000000000 65535 f\r\n");
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size 5 /Root 1 0 R {trailer_extra}>>\nstartxref\n{xref}\n%%EOF\n")
            .as_bytes(),
    );
    out
}

/// Signs `input` into `out` with the test PKI's qualified signing certificate.
fn sign(input: &Path, out: &Path) {
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
            signing_time: signed_at(),
            appearance: Appearance::Invisible,
            contents_size: DEFAULT_CONTENTS_SIZE,
        },
    )
    .unwrap();
    let md = openssl::md::Md::sha256();
    let mut ctx = PkeyCtx::new(&pki().leaf_key).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_signature_md(md).unwrap();
    ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    ctx.set_rsa_mgf1_md(md).unwrap();
    ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
    let mut sig = Vec::new();
    ctx.sign_to_vec(prepared.digest_to_sign(), &mut sig)
        .unwrap();
    let cms = prepared.signed_cms(&sig).unwrap();
    prepared.finish(&cms).unwrap();
}

fn ctx() -> ValidationContext {
    ValidationContext::new(
        vec![pki().root.clone()],
        SystemTime::now(),
        RevocationOptions::default(),
    )
    .unwrap()
}

/// Examines and concludes every signature as not revoked.
fn check(path: &Path) -> Result<Vec<Validation>, PdfError> {
    Ok(examine_pdf(path, &ctx())?
        .into_iter()
        .map(|e| {
            e.conclude_with(|_| RevocationFinding::NotRevoked {
                source: "test".into(),
            })
        })
        .collect())
}

fn assert_status(v: &Validation, ind: Indication, sub: Option<SubIndication>) {
    assert_eq!(v.result.status.indication(), ind, "{v:#?}");
    assert_eq!(v.result.status.sub_indication(), sub, "{v:#?}");
}

fn has(v: &Validation, needle: &str) -> bool {
    v.details.iter().any(|d| d.contains(needle))
}

/// A signed one-page PDF in `dir`: (unsigned, signed).
fn signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (input, out) = (dir.join("in.pdf"), dir.join("signed.pdf"));
    std::fs::write(&input, simple_pdf("")).unwrap();
    sign(&input, &out);
    (input, out)
}

#[test]
fn signed_pdf_is_green_pades_b_b_with_the_claimed_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = signed(dir.path());
    let v = check(&out).unwrap();
    assert_eq!(v.len(), 1);
    assert_status(&v[0], Indication::TotalPassed, None);
    assert_eq!(v[0].result.format.to_string(), "PAdES-B-B");
    let t = v[0].result.signing_time.unwrap();
    assert_eq!(t.source, SigningTimeSource::Claimed);
    assert_eq!(t.time, UtcTime::from_system_time(signed_at()).unwrap());
    assert!(has(&v[0], "covers the whole file"), "{v:#?}");
    assert!(has(&v[0], "message digest: matches"), "{v:#?}");
}

#[test]
fn a_byte_changed_in_a_signed_range_is_hash_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = signed(dir.path());
    let mut bytes = std::fs::read(&out).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"The contract")
        .unwrap();
    bytes[at + 4] = b'K';
    std::fs::write(&out, &bytes).unwrap();
    let v = check(&out).unwrap();
    assert_eq!(v.len(), 1);
    assert_status(
        &v[0],
        Indication::TotalFailed,
        Some(SubIndication::HashFailure),
    );
    assert_eq!(v[0].result.format.to_string(), "PAdES-B-B");
}

#[test]
fn two_signatures_give_two_results_and_the_first_notes_the_later_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (_, once) = signed(dir.path());
    let twice = dir.path().join("twice.pdf");
    sign(&once, &twice);
    let v = check(&twice).unwrap();
    assert_eq!(v.len(), 2, "{v:#?}");
    for s in &v {
        assert_status(s, Indication::TotalPassed, None);
    }
    assert!(has(&v[0], "of later revisions follow"), "{v:#?}");
    assert!(has(&v[0], "\"Signature1\""), "{v:#?}");
    assert!(has(&v[1], "covers the whole file"), "{v:#?}");
    assert!(has(&v[1], "\"Signature2\""), "{v:#?}");
}

#[test]
fn bytes_appended_after_the_last_signature_are_a_finding_and_keep_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = signed(dir.path());
    let mut bytes = std::fs::read(&out).unwrap();
    bytes.extend_from_slice(b"% appended later\n");
    std::fs::write(&out, &bytes).unwrap();
    let v = check(&out).unwrap();
    assert_eq!(v.len(), 1);
    assert_status(&v[0], Indication::TotalPassed, None);
    assert!(
        has(&v[0], "changed after the last signature: its last 17 bytes"),
        "{v:#?}"
    );
}

/// Rewrites the first `/ByteRange [...]` of `bytes` in place (same width).
fn set_byte_range(bytes: &mut [u8], f: impl FnOnce(i64, i64, i64) -> String) {
    let at = bytes
        .windows(12)
        .position(|w| w == b"/ByteRange [")
        .unwrap()
        + 11;
    let end = at + bytes[at..].iter().position(|&b| b == b']').unwrap() + 1;
    let nums: Vec<i64> = String::from_utf8_lossy(&bytes[at + 1..end - 1])
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let new = f(nums[1], nums[2], nums[3]);
    assert!(new.len() <= end - at);
    bytes[at..end].fill(b' ');
    bytes[at..at + new.len()].copy_from_slice(new.as_bytes());
}

/// A new `/ByteRange` text from the old `a b c`.
type Rewrite = fn(i64, i64, i64) -> String;

#[test]
fn a_byte_range_that_misses_contents_or_leaves_the_file_is_format_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = signed(dir.path());
    let orig = std::fs::read(&out).unwrap();
    let cases: [(&str, Rewrite); 4] = [
        ("not exactly the /Contents", |a, b, c| {
            format!("[0 {} {} {}]", a - 2, b, c)
        }),
        ("beyond the end", |a, b, c| {
            format!("[0 {a} {b} {}]", c + 100)
        }),
        ("does not start at byte 0", |a, b, c| {
            format!("[1 {a} {b} {c}]")
        }),
        ("four integers", |a, b, _| format!("[0 {a} {b}]")),
    ];
    for (expected, f) in cases {
        let mut bytes = orig.clone();
        set_byte_range(&mut bytes, f);
        std::fs::write(&out, &bytes).unwrap();
        let v = check(&out).unwrap();
        assert_eq!(v.len(), 1);
        assert_status(
            &v[0],
            Indication::TotalFailed,
            Some(SubIndication::FormatFailure),
        );
        assert_eq!(v[0].result.format.family, FormatFamily::Pades);
        assert!(has(&v[0], expected), "{expected}: {v:#?}");
    }
}

#[test]
fn unsigned_pdf_has_no_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plain.pdf");
    std::fs::write(&p, simple_pdf("")).unwrap();
    assert!(check(&p).unwrap().is_empty());
}

/// Whether the error is the expected kind.
type Expect = fn(&PdfError) -> bool;

#[test]
fn garbage_truncated_and_encrypted_pdfs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = signed(dir.path());
    let signed = std::fs::read(&out).unwrap();
    let p = dir.path().join("bad.pdf");
    let encrypted = simple_pdf("/Encrypt << /Filter /Standard /V 2 >> ");
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        (b"%PDF-1.7\nthis is not a PDF at all".to_vec(), |e| {
            matches!(e, PdfError::Truncated(_))
        }),
        (signed[..signed.len() / 2].to_vec(), |e| {
            matches!(e, PdfError::Truncated(_) | PdfError::Malformed(_))
        }),
        (encrypted, |e| matches!(e, PdfError::Encrypted)),
        (Vec::new(), |e| matches!(e, PdfError::Malformed(_))),
    ];
    for (bytes, ok) in cases {
        std::fs::write(&p, &bytes).unwrap();
        let e = check(&p).unwrap_err();
        assert!(ok(&e), "{e:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn contents_that_is_not_a_cms_is_format_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = signed(dir.path());
    let mut bytes = std::fs::read(&out).unwrap();
    // The first hex digits of /Contents: the CMS SEQUENCE tag becomes garbage.
    let at = bytes.windows(11).position(|w| w == b"/Contents <").unwrap() + 11;
    bytes[at..at + 4].copy_from_slice(b"FFFF");
    std::fs::write(&out, &bytes).unwrap();
    let v = check(&out).unwrap();
    assert_status(
        &v[0],
        Indication::TotalFailed,
        Some(SubIndication::FormatFailure),
    );
}

#[test]
fn pdf_dates_are_read_with_their_offsets() {
    let base = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
    let d = |s: &str| parse_pdf_date(s);
    // 1_796_000_000 = 2026-11-30T00:53:20Z
    assert_eq!(d("D:20261130005320Z"), Some(base));
    assert_eq!(d("D:20261130015320+01'00'"), Some(base));
    assert_eq!(d("D:20261129195320-05'00"), Some(base));
    assert_eq!(
        d("D:2026"),
        Some(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    );
    for bad in [
        "",
        "D:",
        "D:20261",
        "D:20261330000000Z",
        "D:20261130085320+99'00'",
        "x",
    ] {
        assert_eq!(d(bad), None, "{bad}");
    }
}

/// The revocation finding [`examine_pdf`] gets from the embedded data (the DSS here).
fn embedded_finding(path: &Path) -> Option<RevocationFinding> {
    let mut found = examine_pdf(path, &ctx()).unwrap();
    assert_eq!(found.len(), 1);
    match found.remove(0).examination {
        Examination::NeedsRevocation(p) => p.embedded_revocation(),
        Examination::Decided(v) => panic!("decided early: {:?}", v.details),
    }
}

#[test]
fn the_dss_is_embedded_revocation_data() {
    use crate::documents::dss::add_dss;
    use crate::documents::ltv::ValidationData;
    use tandem_rp_test_pki::ocsp_response_cli;

    let dir = tempfile::tempdir().unwrap();
    let (_, signed) = signed(dir.path());
    assert_eq!(embedded_finding(&signed), None, "nothing embedded yet");
    let p = pki();
    let data = |revoked: Option<&str>| ValidationData {
        certificates: vec![p.root.to_der().unwrap(), p.issuing.to_der().unwrap()],
        ocsp_responses: vec![
            ocsp_response_cli(dir.path(), &p.sign, &p.issuing, &p.issuing_key, revoked),
            ocsp_response_cli(dir.path(), &p.issuing, &p.root, &p.root_key, None),
        ],
        crls: Vec::new(),
    };
    let good = dir.path().join("good.pdf");
    add_dss(&signed, &good, &data(None)).unwrap();
    assert!(
        matches!(
            embedded_finding(&good),
            Some(RevocationFinding::NotRevoked { .. })
        ),
        "{:?}",
        embedded_finding(&good)
    );
    let v = check(&good).unwrap();
    assert!(has(
        &v[0],
        "document security store: 2 certificates, 2 OCSP responses"
    ));

    let revoked = dir.path().join("revoked.pdf");
    add_dss(&signed, &revoked, &data(Some("260101000000Z"))).unwrap();
    assert!(
        matches!(
            embedded_finding(&revoked),
            Some(RevocationFinding::Revoked { signer: true, .. })
        ),
        "{:?}",
        embedded_finding(&revoked)
    );
}
