//! The README's QR login walk-through over the REST API, through the `tandem` binary only:
//! `tandem rp-api login` (relying party, HTTPS, QR link file and PNG) and `tandem device scan`
//! (the phone); then a notification signature verified with an OCSP check (against the test
//! server's responder on loopback, not the certificate's AIA host); then a relying party that
//! trusts another CA, whose verification must fail at the chain step.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tandem_tests::*;

/// `tandem rp-api ARGS` as a child process with the relying party's identity in the
/// environment (as the README shows).
fn spawn_rp_api(server: &TestServer, trust: &Path, args: &[&str]) -> Child {
    Command::new(tandem_bin())
        .arg("rp-api")
        .args(["--api", &format!("{}/v3", server.rest_url)])
        .arg("--tls-ca")
        .arg(server.data_dir.join("tls/server.crt"))
        .arg("--trust")
        .arg(trust)
        .args(args)
        .env("TANDEM_RP_UUID", RP_UUID)
        .env("TANDEM_RP_NAME", RP_NAME)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 60 s) for the child to exit and returns its output.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("rp-api did not finish: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// Waits (at most 30 s) until `path` exists and is not empty.
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.trim().is_empty()
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_login_and_signature_with_the_rp_api_command() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    assert!(server.rest_url.starts_with("https://127.0.0.1:"));
    let tmp = server.tmp.path();
    let ca = server.data_dir.join("tls/server.crt");
    let phone = tmp.join("phone");
    let device = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec![
            "device",
            "--dir",
            phone.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--server",
            &server.url,
        ];
        all.extend_from_slice(args);
        tandem_env(&all, env)
    };

    // A phone registered for Mary.
    let out = device(&["register-start"], &[]).unwrap();
    server
        .approve(field(&out, "registration code:"), &MARY)
        .unwrap();
    let out = device(
        &[
            "register-finish",
            "--key-bits",
            "2048",
            "--insecure-fast-kdf",
        ],
        &[("TANDEM_PIN1", "1234"), ("TANDEM_PIN2", "12345")],
    )
    .unwrap();
    let doc = field(&out, "registered: document number").to_owned();

    // 1. The relying party starts an anonymous QR login; the QR link is refreshed every
    //    second in a file and as PNG.
    let link_file = tmp.join("link.txt");
    let png = tmp.join("qr.png");
    let login = spawn_rp_api(
        &server,
        &server.data_dir,
        &[
            "login",
            "--link-file",
            link_file.to_str().unwrap(),
            "--qr-png",
            png.to_str().unwrap(),
            "--text",
            "Log in to Tandem Test Bank",
        ],
    );
    let link = wait_for_file(&link_file);
    assert!(
        link.starts_with(&format!(
            "{DEVICE_LINK_BASE}?deviceLinkType=QR&elapsedSeconds="
        )),
        "{link}"
    );
    assert!(link.contains("sessionType=auth") && link.contains("&authCode="));
    let image = std::fs::read(&png).unwrap();
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

    // 2. The phone scans the code, shows the text (on standard error) and confirms with PIN1.
    let out = device(
        &["scan", &format!("@{}", link_file.display())],
        &[("TANDEM_PIN", "1234")],
    )
    .unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");

    // 3. The relying party gets the result and verifies it step by step.
    let out = finish(login);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in [
        "session result: OK (COMPLETE, OK, ACSP_V2)",
        "certificate chain: OK",
        "certificate level: OK",
        "identity: OK (MARY TESTNUMBER, PNOEE-30303039914 (EE))",
        "response fields: OK (flow QR, interaction displayTextAndPIN)",
        "signature: OK (RSASSA-PSS SHA-512 over the ACSP_V2 payload)",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in\n{stdout}");
    }
    assert_eq!(field(&stdout, "document number:"), doc);

    // A notification signature of a file, with the OCSP check of the signing certificate and
    // the CRL check of its issuing CA (the root's CRL; the certificate names the test servers'
    // unreachable public base URL).
    let contract = tmp.join("contract.txt");
    std::fs::write(&contract, "I agree.\n").unwrap();
    let sign = spawn_rp_api(
        &server,
        &server.data_dir,
        &[
            "sign",
            "--document",
            &doc,
            "--file",
            contract.to_str().unwrap(),
            "--hash",
            "SHA-256",
            "--ocsp-url",
            &format!("{}/ocsp", server.http_url),
            "--ca-crl-url",
            &format!("{}/crl/root.crl", server.http_url),
        ],
    );
    let pending = (0..100)
        .find_map(|_| {
            let out = device(&["pending"], &[]).unwrap();
            let line = out
                .lines()
                .find(|l| l.contains("  Sign  "))
                .map(str::to_owned);
            if line.is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            line
        })
        .expect("no pending signature within 10 s");
    let tx = pending.split_whitespace().next().unwrap().to_owned();
    let out = device(&["confirm", &tx], &[("TANDEM_PIN", "12345")]).unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    let out = finish(sign);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("signature: OK (RSASSA-PSS SHA-256 over our digest)"),
        "{stdout}"
    );
    assert!(stdout.contains("revocation: OK (OCSP: good"), "{stdout}");
    assert!(
        stdout.contains(
            "revocation of intermediate CA certificate CN=Tandem Issuing CA,O=Tandem,C=EE (serial "
        ) && stdout.contains("): OK (CRL: not listed"),
        "{stdout}"
    );
    // The code the relying party showed is the one the phone showed.
    let vc = field(&stdout, "verification code:");
    assert!(
        pending.contains(&format!("code {vc}")),
        "{pending}\n{stdout}"
    );

    // A relying party trusting another CA: the session completes, the verification fails
    // at the chain step and the command exits non-zero.
    let other = tmp.join("other-ca.pem");
    let key = tmp.join("other-ca.key");
    let (ok, log) = openssl(
        tmp,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=Some Other Root",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            other.to_str().unwrap(),
        ],
    );
    assert!(ok, "{log}");
    let link_file = tmp.join("link2.txt");
    let login = spawn_rp_api(
        &server,
        &other,
        &[
            "login",
            "--document",
            &doc,
            "--link-file",
            link_file.to_str().unwrap(),
        ],
    );
    wait_for_file(&link_file);
    let out = device(
        &["scan", &format!("@{}", link_file.display())],
        &[("TANDEM_PIN", "1234")],
    )
    .unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    let out = finish(login);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("session result: OK"), "{all}");
    assert!(all.contains("certificate chain: FAILED"), "{all}");
    assert!(!all.contains("authenticated:"), "{all}");
}
