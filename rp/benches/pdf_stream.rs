//! Signing and verifying a 200 MB PDF streams the hashing (issue 22): peak memory at most
//! the file size plus 64 MiB, time within 1.3x of `sha256sum` over the same file.
//!
//! `cargo bench -p tandem-rp --bench pdf_stream` builds a PDF of `PDF_BENCH_MB` MB (default
//! 200: one large stream object of incompressible bytes) in a temporary directory, then for
//! three rounds, alternating, times `sha256sum FILE` (and, for information, `openssl dgst
//! -sha256 FILE`), signing (a child process:
//! `pades::prepare` + `finish` with the test PKI's key, SHA-256, RSASSA-PSS: copy and hash of
//! the original, the CMS, the `/Contents` patch) and verifying (a child process:
//! `validation::pdf::examine_pdf`: reading the xref and fields, the `/ByteRange` checks, the
//! streaming hash of the ranges, the CMS, signature and chain checks; revocation is skipped,
//! nothing is fetched). Each child prints its wall time (from just before the operation,
//! after the test PKI is made) and its peak RSS (`VmHWM` from /proc/self/status). Prints the
//! medians and the ratios; exits non-zero if a target is missed.

#![allow(clippy::unwrap_used)] // a benchmark: a failure is a panic with its message

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use openssl::x509::X509;
use tandem_rp::client::revocation::RevocationOptions;
use tandem_rp::documents::DocumentHash;
use tandem_rp::documents::cades::CadesScheme;
use tandem_rp::documents::pades::{Appearance, DEFAULT_CONTENTS_SIZE, PadesInput, prepare};
use tandem_rp::validation::pdf::examine_pdf;
use tandem_rp::validation::{Examination, ValidationContext};
use tandem_rp_test_pki::pki;

const ROUNDS: usize = 3;
/// Time target: at most this factor of `sha256sum`.
const TIME_FACTOR: f64 = 1.3;
/// Memory target: the file size plus this.
const MEMORY_SLACK: u64 = 64 * 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 2 && args[1] == "--child" {
        child(&args[2..]);
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is expected.
    let mb: u64 = std::env::var("PDF_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let input = dir.path().join("big.pdf");
    build_pdf(&input, mb * 1_000_000);
    let size = std::fs::metadata(&input).unwrap().len();
    let signed = dir.path().join("big-signed.pdf");
    let root = dir.path().join("root.pem");
    let exe = std::env::current_exe().unwrap();
    println!("pdf_stream: {} ({size} bytes)", input.display());

    let (mut sha, mut sign, mut verify) = (Vec::new(), Vec::new(), Vec::new());
    let mut ossl = Vec::new();
    for round in 1..=ROUNDS {
        let _ = std::fs::remove_file(&signed);
        let t = Instant::now();
        let ok = Command::new("sha256sum")
            .arg(&input)
            .output()
            .expect("sha256sum (coreutils)")
            .status
            .success();
        assert!(ok, "sha256sum failed");
        let sha_t = t.elapsed();
        // A second, informational reference: OpenSSL's SHA-256 (SHA-NI where the CPU has
        // it; coreutils' sha256sum may not use it).
        let t = Instant::now();
        let ok = Command::new("openssl")
            .args(["dgst", "-sha256"])
            .arg(&input)
            .output()
            .expect("openssl")
            .status
            .success();
        assert!(ok, "openssl dgst failed");
        ossl.push(t.elapsed());
        let s = run_child(&exe, &["sign", path(&input), path(&signed), path(&root)]);
        let v = run_child(&exe, &["verify", path(&signed), path(&root)]);
        println!(
            "round {round}: sha256sum {:.3} s | sign {:.3} s, peak RSS {} MiB | verify {:.3} s, peak RSS {} MiB",
            sha_t.as_secs_f64(),
            s.0.as_secs_f64(),
            s.1 / 1024,
            v.0.as_secs_f64(),
            v.1 / 1024
        );
        sha.push(sha_t);
        sign.push(s);
        verify.push(v);
    }
    let sha = median(sha.clone());
    let mut ok = true;
    let ossl = median(ossl);
    println!(
        "median sha256sum: {:.3} s; openssl dgst -sha256: {:.3} s",
        sha.as_secs_f64(),
        ossl.as_secs_f64()
    );
    for (what, runs) in [("sign", sign), ("verify", verify)] {
        let t = median(runs.iter().map(|r| r.0).collect());
        let peak = runs.iter().map(|r| r.1).max().unwrap_or(0) * 1024;
        let ratio = t.as_secs_f64() / sha.as_secs_f64();
        let limit = size + MEMORY_SLACK;
        println!(
            "{what}: median {:.3} s = {ratio:.2}x sha256sum (target <= {TIME_FACTOR}x), \
             {:.2}x openssl dgst; peak RSS {} MiB (target <= file + 64 MiB = {} MiB)",
            t.as_secs_f64(),
            t.as_secs_f64() / ossl.as_secs_f64(),
            peak >> 20,
            limit >> 20
        );
        if ratio > TIME_FACTOR || peak > limit {
            println!("{what}: TARGET MISSED");
            ok = false;
        }
    }
    if !ok {
        std::process::exit(1);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs this binary as a child; returns its wall time and peak RSS in KiB.
fn run_child(exe: &Path, args: &[&str]) -> (Duration, u64) {
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| -> u64 {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("child printed no {k}: {text}"))
    };
    (Duration::from_micros(field("wall_us=")), field("hwm_kib="))
}

/// A one-page PDF whose page content is one stream of `bytes` incompressible bytes (never
/// all in memory).
fn build_pdf(to: &Path, bytes: u64) {
    let mut f = BufWriter::with_capacity(1 << 20, std::fs::File::create(to).unwrap());
    let mut off = Vec::new();
    let mut pos = 0u64;
    let mut put = |f: &mut BufWriter<std::fs::File>, b: &[u8]| {
        f.write_all(b).unwrap();
        pos += b.len() as u64;
        pos
    };
    let mut at = put(&mut f, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
    for o in [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842] >>",
        "<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
    ] {
        off.push(at);
        at = put(
            &mut f,
            format!("{} 0 obj\n{o}\nendobj\n", off.len()).as_bytes(),
        );
    }
    off.push(at);
    put(
        &mut f,
        format!("4 0 obj\n<< /Length {bytes} >>\nstream\n").as_bytes(),
    );
    // xorshift: fast and incompressible enough.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for w in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        put(&mut f, &chunk[..n]);
        left -= n as u64;
    }
    let xref = put(&mut f, b"\nendstream\nendobj\n");
    let mut tail = String::from("xref\n0 5\n0000000000 65535 f\r\n");
    for o in off {
        tail.push_str(&format!("{o:010} 00000 n\r\n"));
    }
    tail.push_str(&format!(
        "trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ));
    put(&mut f, tail.as_bytes());
    f.flush().unwrap();
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn child(args: &[String]) {
    let pki = pki();
    let wall = match args[0].as_str() {
        "sign" => {
            let (input, out, root) = (Path::new(&args[1]), Path::new(&args[2]), &args[3]);
            std::fs::write(root, pki.root.to_pem().unwrap()).unwrap();
            let (signer, issuer) = (pki.sign.to_der().unwrap(), pki.issuing.to_der().unwrap());
            let t = Instant::now();
            let prepared = prepare(
                input,
                out,
                &PadesInput {
                    signer_certificate_der: &signer,
                    issuer_certificate_der: &issuer,
                    hash: DocumentHash::Sha256,
                    scheme: CadesScheme::RsassaPss,
                    signing_time: SystemTime::now() - Duration::from_secs(60),
                    appearance: Appearance::Invisible,
                    contents_size: DEFAULT_CONTENTS_SIZE,
                },
            )
            .unwrap();
            let md = openssl::md::Md::sha256();
            let mut ctx = PkeyCtx::new(&pki.leaf_key).unwrap();
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
            t.elapsed()
        }
        "verify" => {
            let (pdf, root) = (PathBuf::from(&args[1]), &args[2]);
            let anchors = X509::stack_from_pem(&std::fs::read(root).unwrap()).unwrap();
            let ctx =
                ValidationContext::new(anchors, SystemTime::now(), RevocationOptions::default())
                    .unwrap();
            let t = Instant::now();
            let found = examine_pdf(&pdf, &ctx).unwrap();
            let wall = t.elapsed();
            assert_eq!(found.len(), 1);
            // Everything but revocation passed.
            match &found[0].examination {
                Examination::NeedsRevocation(_) => {}
                Examination::Decided(v) => panic!("verification failed: {v:?}"),
            }
            wall
        }
        other => panic!("unknown child mode {other}"),
    };
    println!("wall_us={} hwm_kib={}", wall.as_micros(), peak_rss_kib());
}
