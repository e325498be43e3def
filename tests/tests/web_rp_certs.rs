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
use tandem_rp::api::rp_certs::{FORBIDDEN_LABEL_CHARS, LabelError, check_label};
use tandem_tests::browser::{Browser, DESKTOP, PHONE};
use tandem_tests::mtls::{CurlCert, auth_body, curl};
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

    // 5. The page script's label check mirrors check_label (on stand-ins for the page's
    //    elements; the messages come from data attributes as on the real page).
    let forbidden: String = FORBIDDEN_LABEL_CHARS.iter().collect();
    b.run_js(
        "var d = document.createElement('div');\n\
         d.innerHTML = '<div id=\"rpc-texts\" data-max=\"74\" data-char=\"C {c}\" \
           data-tab=\"TAB\" data-long=\"L {n}\" data-empty=\"E\" data-control=\"X\"></div>' +\n\
           '<button id=\"add-row\"></button><form id=\"create-form\"></form>' +\n\
           '<button id=\"cancel-yes\"></button><button id=\"revoke-yes\"></button>' +\n\
           '<form id=\"download-form\"></form>';\n\
         document.body.appendChild(d);\n\
         document.getElementById('rpc-texts').setAttribute('data-forbidden', args[0]);",
        vec![json!(forbidden)],
        t,
    )
    .await
    .unwrap();
    b.load_script("rpcerts.js").await.unwrap();
    let mut labels: Vec<String> = vec![
        String::new(),
        "   ".into(),
        "a".repeat(74),
        "ä".repeat(74),
        "a".repeat(75),
        "ü".repeat(75),
        format!("{}$", "a".repeat(80)),
        "a\nb".into(),
        "a\u{7f}b".into(),
        "Büro/Köln (2) #1 & co. - test@x, ok?".into(),
        "😀".repeat(74),
    ];
    labels.extend(FORBIDDEN_LABEL_CHARS.iter().map(|c| format!("ab{c}cd")));
    for label in &labels {
        let js = b
            .run_js(
                "return window.TandemRpCerts.checkLabel(args[0]);",
                vec![json!(label)],
                t,
            )
            .await
            .unwrap();
        let want = match check_label(label) {
            Ok(()) => String::new(),
            Err(LabelError::Empty) => "E".into(),
            Err(LabelError::Control) => "X".into(),
            Err(LabelError::TooLong(n)) => format!("L {n}"),
            Err(LabelError::Forbidden(c)) => format!("C {}", LabelError::char_name(c)),
        };
        assert_eq!(js, json!(want), "{label:?}");
    }
    b.quit().await.unwrap();
}

/// The relying party whose certificates the person administers.
const TARGET_UUID: &str = "00000000-0000-4000-8000-0000000000c1";
const TARGET_NAME: &str = "Kanzlei Test";
const PORTAL_UUID: &str = "00000000-0000-4000-8000-0000000000a1";
const PORTAL_NAME: &str = "Tandem Portal";
const WAIT: Duration = Duration::from_secs(20);

async fn wait(b: &Browser, css: &str) -> thirtyfour::WebElement {
    match b.wait_for(css, WAIT).await {
        Ok(e) => e,
        Err(e) => panic!("{e}\npage:\n{}", b.body_text().await.unwrap_or_default()),
    }
}

/// Waits until the element matching `css` has a non-empty text; returns it.
async fn text_of(b: &Browser, css: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(e) = b.find(css).await {
            let t = e.text().await.unwrap_or_default();
            if !t.trim().is_empty() {
                return t;
            }
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{css} stayed empty\npage:\n{}",
                b.body_text().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn credits(b: &Browser) -> String {
    text_of(
        b,
        &format!("section.rpc[data-rp=\"{TARGET_UUID}\"] .credits"),
    )
    .await
}

/// Waits until the credits shown are `n` (the page refreshes itself).
async fn wait_credits(b: &Browser, n: &str) {
    for _ in 0..200 {
        if credits(b).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "credits never {n}: {}",
        b.body_text().await.unwrap_or_default()
    );
}

/// Sets row `row`'s label (through the value, so a TAB stays a character), clicks "Create
/// all" and answers the row's message.
async fn refused_label(b: &Browser, row: usize, label: &str) -> String {
    b.run_js(
        "var i = document.getElementById('label-' + args[0]); i.value = args[1];\n\
         i.dispatchEvent(new Event('input'));\n\
         document.getElementById('create-all').click();",
        vec![json!(row), json!(label)],
        WAIT,
    )
    .await
    .unwrap();
    text_of(b, &format!("#label-error-{row}")).await
}

/// Mary logs in to the portal by notification and confirms on the phone.
async fn portal_login(b: &Browser, web_url: &str, server: &TestServer) {
    let phone = tandem_tests::web::Phone::new(server, server.tmp.path().join("phone"));
    b.goto(&format!("{web_url}/portal/")).await.unwrap();
    wait(b, "#national_id").await;
    b.fill("#national_id", MARY.id).await.unwrap();
    b.click("form[action=\"/portal/login/notify\"] button[type=submit]")
        .await
        .unwrap();
    wait(b, "#vc").await;
    let line = phone.pending_auth();
    let tx = line.split_whitespace().next().unwrap().to_owned();
    let out = phone.run(&["confirm", &tx], &[("TANDEM_PIN", "1234")]);
    assert!(out.contains("ACCEPTED"), "{out}");
    wait(b, "#holder-name").await;
}

/// The acceptance flow of issue 24 in the browser.
///
/// Operator: credit 3 and Mary as administrator of the target; Mary logs in to the portal,
/// opens the certificate page from the overview; a 75-character label and each forbidden
/// character (TAB included) are refused with a message naming it, in the page and by the web
/// process; two certificates created at once (two rows, "+"); while the queue is held they
/// stay queued (hourglass), one is cancelled in the dialog (voucher shown), the voucher
/// redeemed (credits back); released, the other becomes ready by itself; a
/// 5-character password and a mismatch are refused, a good one downloads the `.p12`, which
/// `openssl pkcs12 -info` reads.
#[tokio::test(flavor = "multi_thread")]
async fn rp_certificates_in_the_portal() {
    let mut server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    let op = |args: &[&str]| server.operator(args).unwrap();
    op(&[
        "rp-add",
        "--uuid",
        PORTAL_UUID,
        "--name",
        PORTAL_NAME,
        "--portal",
    ]);
    op(&["rp-add", "--uuid", TARGET_UUID, "--name", TARGET_NAME]);
    let out = op(&["rp-credit", "--rp", TARGET_UUID, "--add", "3"]);
    assert!(out.contains("3 credits"), "{out}");
    let admin = format!("PNOEE-{}", MARY.id);
    op(&["rp-admin", "--rp", TARGET_UUID, "add", &admin]);
    let tmp = server.tmp.path().to_owned();
    tandem_tests::web::Phone::new(&server, tmp.join("phone")).register(&MARY, "1234", "12345");
    // The queue is held (the server's test hook) while this file exists: creations stay
    // queued until step 5 releases it.
    let hold = tmp.join("hold-rp-cert-queue");
    std::fs::write(&hold, b"").unwrap();
    server.set_env("TANDEM_TEST_HOLD_RP_CERT_QUEUE", hold.to_str().unwrap());
    server.restart().unwrap();
    let web = start_web(
        &server,
        &tmp,
        &WebOptions {
            extra_toml: format!(
                "[portal]\nrelying_party_uuid = \"{PORTAL_UUID}\"\nrelying_party_name = \"{PORTAL_NAME}\"\n"
            ),
            ..Default::default()
        },
    );
    let b = Browser::start(DESKTOP).await.unwrap();
    portal_login(&b, &web.url, &server).await;

    // 1. From the overview to the certificate page.
    b.click("#nav-rp-certs").await.unwrap();
    wait(&b, &format!("section.rpc[data-rp=\"{TARGET_UUID}\"]")).await;
    assert_eq!(credits(&b).await, "3");
    let text = b.body_text().await.unwrap();
    assert!(text.contains("same browser"), "the seed's hint: {text}");

    // 2. The create dialog: refused labels, named characters.
    b.click("button.create-open").await.unwrap();
    wait(&b, "#label-1").await;
    let long = "a".repeat(75);
    let m = refused_label(&b, 1, &long).await;
    assert!(m.contains("75") && m.contains("74"), "{m}");
    for c in FORBIDDEN_LABEL_CHARS {
        let m = refused_label(&b, 1, &format!("ab{c}cd")).await;
        let name = if c == '\t' {
            "TAB".to_owned()
        } else {
            c.to_string()
        };
        assert!(
            m.contains(&format!("The character {name} is not allowed")),
            "{c:?}: {m}"
        );
    }
    // A typed label is checked while typing.
    b.fill("#label-1", "x$y").await.unwrap();
    assert!(text_of(&b, "#label-error-1").await.contains(" $ "));
    // The web process refuses them too (the script's check is only a convenience).
    for bad in ["ab\tcd", "a$b", long.as_str()] {
        let r = b
            .run_js(
                "var body = new URLSearchParams();\n\
                 body.append('csrf', document.querySelector('input[name=csrf]').value);\n\
                 body.append('rp', args[0]); body.append('label', args[1]);\n\
                 body.append('csr', 'MIIB');\n\
                 return fetch('/portal/certificates/create', {method: 'POST', body: body,\n\
                   headers: {'x-tandem-fetch': '1'}})\n\
                   .then(function (r) { return r.json().then(function (j) {\n\
                     return {status: r.status, error: j.error}; }); });",
                vec![json!(TARGET_UUID), json!(bad)],
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(r["status"], 400, "{r}");
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("TAB") || e.contains(" $ ") || e.contains("75"),
            "{bad:?}: {e}"
        );
    }
    assert_eq!(credits(&b).await, "3", "nothing was queued");

    // 3. Two at once: the first row and a "+" row.
    b.fill("#label-1", "Kanzlei Büro 1").await.unwrap();
    b.click("#add-row").await.unwrap();
    wait(&b, "#label-2").await;
    b.fill("#label-2", "Kanzlei Büro 2").await.unwrap();
    b.doc_screenshot("rp-certs-create").await.unwrap();
    b.click("#create-all").await.unwrap();
    wait_credits(&b, "1").await;
    let rows = b
        .client()
        .find_all(thirtyfour::By::Css("tr[data-cert]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    wait(
        &b,
        "tr[data-state=\"queued\"] .hourglass, tr[data-state=\"creating\"] .hourglass",
    )
    .await;
    b.doc_screenshot("rp-certs-overview").await.unwrap();

    // 4. Cancel one in the dialog: the voucher is shown; redeem it.
    b.click("tr[data-cert] form.cancel button").await.unwrap();
    wait(&b, "#cancel-dialog[open]").await;
    b.click("#cancel-yes").await.unwrap();
    let code = text_of(&b, "#voucher-code").await;
    assert!(code.starts_with("TV-"), "{code}");
    let again = b
        .client()
        .find(thirtyfour::By::Id("cancel-yes"))
        .await
        .unwrap();
    assert!(
        !again.is_displayed().await.unwrap(),
        "no second cancel offered"
    );
    b.doc_screenshot("rp-certs-cancel").await.unwrap();
    b.click("#cancel-dialog .close").await.unwrap();
    wait(&b, &format!("li[data-voucher=\"{code}\"]")).await;
    b.click(&format!("li[data-voucher=\"{code}\"] button.redeem"))
        .await
        .unwrap();
    let note = text_of(&b, "#rpc-note").await;
    assert!(note.contains("Credits: 2"), "{note}");
    assert_eq!(credits(&b).await, "2");

    // 5. The queue is released: the other one becomes ready without a reload.
    std::fs::remove_file(&hold).unwrap();
    let ready = b
        .wait_for(
            "tr[data-state=\"ready\"] button.download",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let rows = b
        .client()
        .find_all(thirtyfour::By::Css("tr[data-cert]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the cancelled one is not listed");
    let serial = text_of(&b, "tr[data-state=\"ready\"] td.serial").await;
    // Phone-sized: no sideways scrolling (the table becomes labelled blocks).
    b.client()
        .set_window_rect(0, 0, PHONE.0, PHONE.1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wide = b
        .run_js(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(wide, json!(false), "horizontal scroll at phone size");
    b.doc_screenshot("rp-certs-ready-phone").await.unwrap();
    b.client()
        .set_window_rect(0, 0, DESKTOP.0, DESKTOP.1)
        .await
        .unwrap();

    // 6. Download: short and mismatching passwords refused, nothing saved; then the file.
    ready.click().await.unwrap();
    wait(&b, "#download-dialog[open]").await;
    b.fill("#pw1", "12345").await.unwrap();
    b.fill("#pw2", "12345").await.unwrap();
    b.click("#download-go").await.unwrap();
    assert!(text_of(&b, "#download-error").await.contains("at least 6"));
    b.fill("#pw1", PASSWORD).await.unwrap();
    b.fill("#pw2", "geheim-124").await.unwrap();
    b.click("#download-go").await.unwrap();
    assert!(
        text_of(&b, "#download-error")
            .await
            .contains("do not match")
    );
    assert_eq!(std::fs::read_dir(b.downloads()).unwrap().count(), 0);
    b.fill("#pw2", PASSWORD).await.unwrap();
    b.doc_screenshot("rp-certs-download").await.unwrap();
    b.click("#download-go").await.unwrap();
    let file = b
        .wait_for_download(".p12", Duration::from_secs(120))
        .await
        .unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("tandem-Kanzlei_B"), "{name}");
    assert!(name.contains(&serial), "{name} vs {serial}");
    std::fs::write(tmp.join("pw"), PASSWORD).unwrap();
    let (ok, out) = openssl(
        &tmp,
        &[
            "pkcs12",
            "-info",
            "-in",
            file.to_str().unwrap(),
            "-passin",
            "file:pw",
            "-noout",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("MAC: sha256, Iteration 600000"), "{out}");
    let (ok, out) = python_load(&file, PASSWORD);
    assert!(ok && out.contains("key-matches-cert True"), "{out}");
    assert!(out.contains("additional 2"), "issuing CA and root: {out}");

    // 7. The browser's .p12 is the relying party's credential for mutual TLS: curl starts a
    // session on the RP API with it, for its own relying party only.
    let admin = format!("PNOEE-{}", MARY.id);
    let path = format!("/v3/authentication/notification/etsi/{admin}");
    let p12 = CurlCert::P12(&file, PASSWORD);
    let a = curl(
        &server,
        p12,
        &path,
        Some(&auth_body(TARGET_UUID, TARGET_NAME)),
    )
    .unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains("sessionID"), "{a:?}");
    let a = curl(
        &server,
        p12,
        &path,
        Some(&auth_body(PORTAL_UUID, PORTAL_NAME)),
    )
    .unwrap();
    assert_eq!(a.status, 403, "another relying party's UUID: {a:?}");

    // 8. Revoked on the page (with its confirmation): the same call is refused at once.
    b.click("#download-dialog button.close").await.unwrap();
    b.click("tr[data-state=\"ready\"] form.revoke button")
        .await
        .unwrap();
    wait(&b, "#revoke-dialog[open]").await;
    b.click("#revoke-yes").await.unwrap();
    wait(&b, "tr[data-state=\"revoked\"]").await;
    let a = curl(
        &server,
        p12,
        &path,
        Some(&auth_body(TARGET_UUID, TARGET_NAME)),
    )
    .unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("revoked"), "{a:?}");
    b.quit().await.unwrap();
}
