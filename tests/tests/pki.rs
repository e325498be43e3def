//! Certificates for the composite keys, checked with OpenSSL and pkilint; OCSP and CRL over
//! HTTP; revocation on permanent lockout; an HSM signing failure issues nothing.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;

use tandem_client_core::grpc::{self as dev, ProofOutcome};
use tandem_client_core::pin::Pin;
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_tests::*;

/// Writes root.pem, issuing.pem, chain.pem, auth.pem, sign.pem into `dir`.
fn write_certs(server: &TestServer, state: &DeviceState, dir: &Path) {
    server
        .operator(&["export-ca", "--out", dir.to_str().unwrap()])
        .unwrap();
    let root = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    let issuing = std::fs::read_to_string(dir.join("issuing.pem")).unwrap();
    std::fs::write(dir.join("chain.pem"), format!("{issuing}{root}")).unwrap();
    for (kt, name) in [(KeyType::Auth, "auth.pem"), (KeyType::Sign, "sign.pem")] {
        let der = &state.key_pair(kt).unwrap().certificate;
        assert!(!der.is_empty(), "{kt} certificate stored on the device");
        std::fs::write(dir.join(name), cert_pem(der)).unwrap();
    }
}

fn ocsp_status(server: &TestServer, dir: &Path, cert: &str) -> String {
    let url = format!("{}/ocsp", server.http_url);
    let (ok, out) = openssl(
        dir,
        &[
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-cert",
            cert,
            "-url",
            &url,
            "-CAfile",
            "chain.pem",
            "-nonce",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_verify_and_revocation_reaches_ocsp_and_crl() {
    let server = TestServer::start(ServerOptions {
        lockout: Some(short_lockout(1, 1)),
        ..Default::default()
    })
    .unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let dir = server.tmp.path().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    write_certs(&server, &state, &dir);

    // The chain verifies for both certificates.
    let (ok, out) = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuing.pem",
            "auth.pem",
            "sign.pem",
        ],
    );
    assert!(
        ok && out.contains("auth.pem: OK") && out.contains("sign.pem: OK"),
        "{out}"
    );
    // Extensions and subject.
    let (_, auth) = openssl(&dir, &["x509", "-in", "auth.pem", "-noout", "-text"]);
    for needle in [
        "Digital Signature",
        "TLS Web Client Authentication",
        "serialNumber = PNOEE-30303039914",
        "CN = \"TESTNUMBER,MARY\"",
        "OCSP - URI:http://ca.example.com/ocsp",
        "CRL Distribution Points",
    ] {
        assert!(auth.contains(needle), "AUTH lacks {needle:?}:\n{auth}");
    }
    let (_, sign) = openssl(&dir, &["x509", "-in", "sign.pem", "-noout", "-text"]);
    for needle in [
        "Non Repudiation",
        "0.4.0.194112.1.2",
        "qcStatements",
        "serialNumber = PNOEE-30303039914",
    ] {
        assert!(sign.contains(needle), "SIGN lacks {needle:?}:\n{sign}");
    }
    assert!(!sign.contains("TLS Web Client Authentication"));

    // A signature verifies under the public key taken from the SIGN certificate.
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();
    let doc = b"signed contract";
    std::fs::write(dir.join("doc.txt"), doc).unwrap();
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        doc,
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &state, &s.transaction_id).await.unwrap();
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let st = status(&mut rp, &s.transaction_id).await.unwrap();
    assert_eq!(
        st.key_pair.as_ref().unwrap().certificate_der,
        state.key_pair(KeyType::Sign).unwrap().certificate
    );
    std::fs::write(dir.join("sig.bin"), &st.signature).unwrap();
    let (_, pubkey) = openssl(&dir, &["x509", "-in", "sign.pem", "-pubkey", "-noout"]);
    std::fs::write(dir.join("pub.pem"), pubkey).unwrap();
    let (ok, out) = openssl(
        &dir,
        &[
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.bin",
            "doc.txt",
        ],
    );
    assert!(ok && out.contains("Verified OK"), "{out}");

    // OCSP: good.
    assert!(ocsp_status(&server, &dir, "sign.pem").contains("sign.pem: good"));
    assert!(ocsp_status(&server, &dir, "auth.pem").contains("auth.pem: good"));

    // Nine wrong PIN2 entries: the SIGN key is disabled and its certificate revoked at once.
    for round in 0..3 {
        let s = start_tx(
            &mut rp,
            pb::TransactionKind::Signature,
            &state.document_number,
            b"x",
            pb::SignatureScheme::Pss,
            false,
        )
        .await
        .unwrap();
        let t = pending(&client, &state, &s.transaction_id).await.unwrap();
        for _ in 0..3 {
            dev::confirm(&client, &mut state, &t, &Pin::new("99999").unwrap(), None)
                .await
                .unwrap();
        }
        if round < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
    }
    let out = ocsp_status(&server, &dir, "sign.pem");
    assert!(
        out.contains("sign.pem: revoked") && out.contains("cessationOfOperation"),
        "{out}"
    );
    assert!(
        ocsp_status(&server, &dir, "auth.pem").contains("auth.pem: good"),
        "AUTH is not affected"
    );

    // The CRL lists the serial and verifies against the issuing CA.
    let (code, crl) = http(&server, "GET", "/crl/issuing.crl", b"").unwrap();
    assert_eq!(code, 200);
    std::fs::write(dir.join("crl.der"), &crl).unwrap();
    let (ok, out) = openssl(
        &dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "crl.der",
            "-CAfile",
            "chain.pem",
            "-noout",
            "-text",
        ],
    );
    assert!(ok && out.contains("verify OK"), "{out}");
    let (_, serial) = openssl(&dir, &["x509", "-in", "sign.pem", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_uppercase();
    assert!(
        out.to_uppercase().contains(&serial),
        "CRL lacks {serial}:\n{out}"
    );
    assert!(out.contains("Cessation Of Operation"), "{out}");

    // The operator revokes the AUTH certificate: OCSP changes at once.
    let (_, auth_serial) = openssl(&dir, &["x509", "-in", "auth.pem", "-noout", "-serial"]);
    server
        .operator(&[
            "revoke",
            auth_serial.trim().trim_start_matches("serial="),
            "--reason",
            "1",
        ])
        .unwrap();
    let out = ocsp_status(&server, &dir, "auth.pem");
    assert!(
        out.contains("auth.pem: revoked") && out.contains("keyCompromise"),
        "{out}"
    );
    assert!(
        server
            .operator(&["certs", &state.document_number])
            .unwrap()
            .matches("REVOKED")
            .count()
            == 2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ocsp_rejects_malformed_requests_and_answers_unknown_serials() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let dir = server.tmp.path().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    write_certs(&server, &state, &dir);

    // Garbage, truncated and empty bodies: a malformedRequest OCSP response.
    let (_, good_req) = openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-cert",
            "sign.pem",
            "-reqout",
            "req.der",
            "-no_nonce",
        ],
    );
    let req = std::fs::read(dir.join("req.der")).unwrap_or_else(|_| panic!("{good_req}"));
    for (name, body) in [
        ("garbage", b"hello".to_vec()),
        ("truncated", req[..req.len() - 3].to_vec()),
        ("empty", Vec::new()),
    ] {
        let (code, resp) = http(&server, "POST", "/ocsp", &body).unwrap();
        assert_eq!(code, 200, "{name}");
        std::fs::write(dir.join("resp.der"), &resp).unwrap();
        let (_, out) = openssl(
            &dir,
            &["ocsp", "-respin", "resp.der", "-resp_text", "-noverify"],
        );
        assert!(
            out.to_lowercase().contains("malformedrequest"),
            "{name}: {out}"
        );
    }
    // GET with the base64 request works like POST.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(&req)
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    let (code, resp) = http(&server, "GET", &format!("/ocsp/{b64}"), b"").unwrap();
    assert_eq!(code, 200);
    std::fs::write(dir.join("resp.der"), &resp).unwrap();
    let (_, out) = openssl(
        &dir,
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-resp_text",
            "-CAfile",
            "chain.pem",
        ],
    );
    assert!(
        out.contains("Cert Status: good") && out.contains("Response verify OK"),
        "{out}"
    );
    // A serial we never issued: unknown.
    let url = format!("{}/ocsp", server.http_url);
    let (ok, out) = openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-serial",
            "0x1234567890",
            "-url",
            &url,
            "-CAfile",
            "chain.pem",
        ],
    );
    assert!(ok && out.contains("unknown"), "{out}");
    // The server is still fine.
    assert!(ocsp_status(&server, &dir, "sign.pem").contains("sign.pem: good"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_hsm_signing_failure_issues_nothing() {
    let mut server = TestServer::start(ServerOptions {
        env: vec![("TANDEM_TEST_FAIL_CA_SIGN".into(), "1".into())],
        ..Default::default()
    })
    .unwrap();
    let (client, reg, p1, p2) = register_until_proof(&server, [5; 16], &OTHER, "1234", "12345")
        .await
        .unwrap();
    let e = dev::prove(&client, &reg, &p1, &p2).await.unwrap_err();
    assert!(e.to_string().contains("internal"), "{e}");
    assert!(
        server.operator(&["accounts"]).unwrap().trim().is_empty(),
        "no account"
    );
    assert!(
        server
            .operator(&["certs"])
            .unwrap()
            .contains("no certificates"),
        "no certificate"
    );
    // With the HSM working again the same registration completes with both certificates.
    server.clear_env();
    server.restart().unwrap();
    let client = server.device_client().await.unwrap();
    match dev::prove(&client, &reg, &p1, &p2).await.unwrap() {
        ProofOutcome::Completed(state) => {
            assert!(
                !state
                    .key_pair(KeyType::Auth)
                    .unwrap()
                    .certificate
                    .is_empty()
            );
            assert!(
                !state
                    .key_pair(KeyType::Sign)
                    .unwrap()
                    .certificate
                    .is_empty()
            );
        }
        ProofOutcome::PinMismatch { .. } => panic!("proof refused"),
    }
    assert_eq!(
        server.operator(&["certs"]).unwrap().matches("GOOD").count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa4096_ca_and_pkilint() {
    let server = TestServer::start(ServerOptions {
        ca_key_spec: Some("rsa4096".into()),
        ..Default::default()
    })
    .unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let dir = server.tmp.path().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    write_certs(&server, &state, &dir);
    let (ok, out) = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuing.pem",
            "auth.pem",
            "sign.pem",
        ],
    );
    assert!(ok, "{out}");
    let (_, root) = openssl(&dir, &["x509", "-in", "root.pem", "-noout", "-text"]);
    assert!(
        root.contains("Public-Key: (4096 bit)") && root.contains("sha384WithRSAEncryption"),
        "{root}"
    );

    // pkilint (installed by scripts/install-deps.sh): no ERROR or FATAL findings.
    // Run as Python modules so no console-script shim is needed on PATH.
    let lint = |args: &[&str]| {
        let out = std::process::Command::new("python3")
            .args(["-m", &format!("pkilint.bin.{}", args[0])])
            .args(&args[1..])
            .current_dir(&dir)
            .output()
            .expect("python3 runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("No module named"),
            "pkilint is not installed (scripts/install-deps.sh installs it): {text}"
        );
        text
    };
    for cert in ["auth.pem", "sign.pem"] {
        for out in [
            lint(&["lint_pkix_cert", "lint", "-s", "WARNING", cert]),
            lint(&["lint_etsi_cert", "lint", "-d", "-s", "WARNING", cert]),
        ] {
            assert!(
                !out.contains("ERROR") && !out.contains("FATAL") && !out.contains("Traceback"),
                "{cert}:\n{out}"
            );
        }
    }
    for cert in ["root.pem", "issuing.pem", "tsa.pem"] {
        let out = lint(&["lint_pkix_cert", "lint", "-s", "WARNING", cert]);
        assert!(
            !out.contains("ERROR") && !out.contains("FATAL") && !out.contains("Traceback"),
            "{cert}:\n{out}"
        );
    }
}
