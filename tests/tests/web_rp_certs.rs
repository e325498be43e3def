//! Software certificates for relying parties in the portal (issue 24), in a real browser
//! (headless Chromium through chromedriver) against a real `tandem web`.
//!
//! - `browser_crypto_csr_and_p12`: the page's own JavaScript (`/static/rpcert-pki.js`) called
//!   directly: SHA-256 in plain JS against WebCrypto; a key pair from WebCrypto stored in
//!   IndexedDB; its PKCS#10 request, which `openssl req -verify` accepts; a certificate made
//!   by an OpenSSL test CA for that request finds its key in IndexedDB by its public key; the
//!   `.p12` built from it, which `openssl pkcs12 -info` reads with the password (PBES2,
//!   PBKDF2, hmacWithSHA256, AES-256-CBC, 600000 iterations, MAC sha256) and refuses with a
//!   wrong one, and which Python's `cryptography` loads (key matching the certificate,
//!   friendly name, the chain), refusing a wrong password.
//! - `rp_certificates_in_the_portal` (the whole flow; needs the server part of issue 24):
//!   see its doc comment.
//!
//! Screenshots for docs/WEB.md with `TANDEM_WEB_SCREENSHOTS=docs/web`.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tandem_tests::browser::{Browser, DESKTOP};
use tandem_tests::web::{WebOptions, start_web};
use tandem_tests::*;

const LABEL: &str = "Kanzlei Müller 2026";
const PASSWORD: &str = "geheim-123";

/// The Python with `cryptography` (the pyHanko venv of scripts/install-deps.sh, which
/// brings it), else `python3`.
fn python() -> String {
    if let Ok(p) = std::env::var("TANDEM_PYTHON") {
        return p;
    }
    let venv = std::env::var("TANDEM_VENV").unwrap_or_else(|_| "/opt/tandem-venv".into());
    let p = format!("{venv}/bin/python");
    if Path::new(&p).exists() {
        p
    } else {
        "python3".into()
    }
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

/// Python's `cryptography` loads `p12` with `password`; prints what it found or the error.
fn python_load(p12: &Path, password: &str) -> (bool, String) {
    let script = r#"
import sys
from cryptography.hazmat.primitives.serialization import pkcs12
data = open(sys.argv[1], "rb").read()
try:
    p = pkcs12.load_pkcs12(data, sys.argv[2].encode())
except Exception as e:
    print("ERROR", type(e).__name__, e)
    sys.exit(2)
key, cert = p.key, p.cert.certificate
same = key.public_key().public_numbers() == cert.public_key().public_numbers()
print("key-matches-cert", same)
print("key-bits", key.key_size)
print("friendly-name", p.cert.friendly_name.decode())
print("additional", len(p.additional_certs))
print("subject", cert.subject.rfc4514_string())
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(p12)
        .arg(password)
        .output()
        .expect("python runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_crypto_csr_and_p12() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    let tmp = server.tmp.path();
    let web = start_web(&server, tmp, &WebOptions::default());
    let b = Browser::start(DESKTOP).await.unwrap();
    b.goto(&format!("{}/verify/", web.url)).await.unwrap();
    b.load_script("rpcert-pki.js").await.unwrap();
    let t = Duration::from_secs(120);

    // 1. SHA-256 in plain JS agrees with WebCrypto, at the padding's edges, and repeated.
    let v = b
        .run_js(
            "var P = window.TandemPki, lens = [0, 1, 55, 56, 63, 64, 65, 119, 1000];\n\
             var bad = [];\n\
             return Promise.all(lens.map(function (n) {\n\
               var m = crypto.getRandomValues(new Uint8Array(n));\n\
               return crypto.subtle.digest('SHA-256', m).then(function (d) {\n\
                 if (P.hex(new Uint8Array(d)) !== P.hex(P.sha256(m))) { bad.push(n); }\n\
               });\n\
             })).then(function () {\n\
               var d = P.sha256(new Uint8Array([1, 2, 3])), x = d;\n\
               for (var i = 0; i < 5; i += 1) { x = P.sha256(x); }\n\
               return { bad: bad, repeat: P.hex(P.sha256Repeat(d, 5)) === P.hex(x),\n\
                        abc: P.hex(P.sha256(new TextEncoder().encode('abc'))) };\n\
             });",
            vec![],
            t,
        )
        .await
        .unwrap();
    assert_eq!(v["bad"], json!([]), "{v}");
    assert_eq!(v["repeat"], json!(true), "{v}");
    assert_eq!(
        v["abc"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );

    // 2. A key pair, stored in IndexedDB, and its request.
    let csr = b
        .run_js(
            "return window.TandemPki.newRequest(args[0]).then(window.TandemPki.b64);",
            vec![json!(LABEL)],
            t,
        )
        .await
        .unwrap();
    let csr_der = b64(&csr);
    std::fs::write(tmp.join("req.der"), &csr_der).unwrap();
    let (ok, out) = openssl(
        tmp,
        &[
            "req", "-inform", "DER", "-in", "req.der", "-verify", "-noout", "-text",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("verify OK"), "{out}");
    assert!(out.contains("Public-Key: (2048 bit)"), "{out}");
    assert!(out.contains("sha256WithRSAEncryption"), "{out}");
    // A request with one flipped signature bit is refused (the check can fail).
    let mut broken = csr_der.clone();
    let last = broken.len() - 1;
    broken[last] ^= 1;
    std::fs::write(tmp.join("broken.der"), &broken).unwrap();
    let (ok, out) = openssl(
        tmp,
        &[
            "req",
            "-inform",
            "DER",
            "-in",
            "broken.der",
            "-verify",
            "-noout",
        ],
    );
    assert!(!ok || !out.contains("verify OK"), "{out}");

    // 3. A test CA signs it; the certificate finds its key in IndexedDB by its public key.
    for args in [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Test CA",
            "-days",
            "2",
        ][..],
        &["req", "-inform", "DER", "-in", "req.der", "-out", "req.pem"],
        &[
            "x509",
            "-req",
            "-in",
            "req.pem",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0x1234",
            "-days",
            "2",
            "-out",
            "cert.pem",
        ],
        &[
            "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
        ],
        &["x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"],
    ] {
        let (ok, out) = openssl(tmp, args);
        assert!(ok, "{args:?}: {out}");
    }
    let cert = STANDARD.encode(std::fs::read(tmp.join("cert.der")).unwrap());
    let ca = STANDARD.encode(std::fs::read(tmp.join("ca.der")).unwrap());
    let found = b
        .run_js(
            "var P = window.TandemPki;\n\
             return Promise.all([P.findKeys(P.unb64(args[0])), P.findKeys(P.unb64(args[1]))])\n\
               .then(function (r) { return [r[0] !== null, r[1] !== null]; });",
            vec![json!(cert), json!(ca)],
            t,
        )
        .await
        .unwrap();
    assert_eq!(
        found,
        json!([true, false]),
        "own key found, none for the CA's"
    );
    let not_a_cert = b
        .run_js(
            "return window.TandemPki.findKeys(new Uint8Array([0x30, 0x05, 1]));",
            vec![],
            t,
        )
        .await;
    assert!(
        not_a_cert.unwrap_err().to_string().contains("DER"),
        "malformed DER is a clear error"
    );

    // 4. The .p12, with the progress steps.
    let p12 = b
        .run_js(
            "var P = window.TandemPki, steps = [];\n\
             return P.findKeys(P.unb64(args[0])).then(function (k) {\n\
               return P.buildP12(k, P.unb64(args[0]), [P.unb64(args[1])], args[2], args[3],\n\
                 function (s) { steps.push(s); });\n\
             }).then(function (p) { return { p12: P.b64(p), steps: steps }; });",
            vec![json!(cert), json!(ca), json!(LABEL), json!(PASSWORD)],
            t,
        )
        .await
        .unwrap();
    assert_eq!(p12["steps"], json!(["key", "mac", "done"]));
    let file = tmp.join("cert.p12");
    std::fs::write(&file, b64(&p12["p12"])).unwrap();
    std::fs::write(tmp.join("pw"), PASSWORD).unwrap();
    std::fs::write(tmp.join("wrong"), "geheim-124").unwrap();
    let (ok, out) = openssl(
        tmp,
        &[
            "pkcs12", "-info", "-in", "cert.p12", "-passin", "file:pw", "-noout",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("MAC: sha256, Iteration 600000"), "{out}");
    assert!(
        out.contains("PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"),
        "{out}"
    );
    let (ok, out) = openssl(
        tmp,
        &[
            "pkcs12", "-in", "cert.p12", "-passin", "file:pw", "-nodes", "-out", "all.pem",
        ],
    );
    assert!(ok, "{out}");
    let all = String::from_utf8_lossy(&std::fs::read(tmp.join("all.pem")).unwrap()).into_owned();
    assert_eq!(all.matches("BEGIN CERTIFICATE").count(), 2, "{all}");
    assert!(all.contains("BEGIN PRIVATE KEY"));
    assert!(all.contains("localKeyID:"), "{all}");
    let (ok, out) = openssl(
        tmp,
        &[
            "pkcs12",
            "-info",
            "-in",
            "cert.p12",
            "-passin",
            "file:wrong",
            "-noout",
        ],
    );
    assert!(!ok, "a wrong password must fail: {out}");
    assert!(out.to_lowercase().contains("mac verify"), "{out}");

    let (ok, out) = python_load(&file, PASSWORD);
    assert!(ok, "{out}");
    assert!(out.contains("key-matches-cert True"), "{out}");
    assert!(out.contains("key-bits 2048"), "{out}");
    assert!(out.contains(&format!("friendly-name {LABEL}")), "{out}");
    assert!(out.contains("additional 1"), "{out}");
    assert!(out.contains(&format!("subject CN={LABEL}")), "{out}");
    let (ok, out) = python_load(&file, "geheim-124");
    assert!(!ok && out.contains("ERROR"), "{out}");
    b.quit().await.unwrap();
}
