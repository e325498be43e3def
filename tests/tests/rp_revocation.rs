//! The RP library's revocation check against a real server over 127.0.0.1, with OCSP made
//! unavailable: the OCSP URL points at a closed port on 127.0.0.1, so the CRL the server
//! publishes at `GET /crl/issuing.crl` decides (response_verification.txt: "If OCSP fails or
//! is unavailable, Certificate Revocation List (CRL) checking should be used as fallback").
//! Good for live certificates, revoked once the server's CRL lists them (an operator's
//! revocation, an account deletion); the good case also through `tandem rp-api cert` (the
//! server no longer hands out a revoked certificate, so the command cannot show that one).
//!
//! The certificates name `http://ca.example.com` (the test servers' public base URL) in their
//! AIA and cRLDistributionPoints, which the test cannot reach, so both URLs are given to the
//! library (`RevocationOptions`) and the command (`--ocsp-url`, `--crl-url`).

#![allow(clippy::unwrap_used)] // tests

use std::process::{Command, Output};

use openssl::x509::X509;
use tandem_client_core::grpc as dev;
use tandem_client_core::types::KeyType;
use tandem_server::rp_client::TrustAnchors;
use tandem_server::rp_client::revocation::{
    CrlReason, NotRevoked, RevocationError, RevocationMethod, RevocationOptions, check_revocation,
    crl,
};
use tandem_tests::*;

/// A URL on 127.0.0.1 where nothing listens (a port just bound and released).
async fn closed_port(path: &str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}{path}")
}

fn anchors(server: &TestServer) -> TrustAnchors {
    let pki = server.data_dir.join("pki");
    let mut a = TrustAnchors::new();
    a.add_roots_pem(&std::fs::read(pki.join("root.pem")).unwrap())
        .unwrap();
    a.add_intermediates_pem(&std::fs::read(pki.join("issuing.pem")).unwrap())
        .unwrap();
    a
}

fn serial_hex(der: &[u8]) -> String {
    hex::encode(
        X509::from_der(der)
            .unwrap()
            .serial_number()
            .to_bn()
            .unwrap()
            .to_vec(),
    )
}

/// `tandem rp-api --trust DATA_DIR --ocsp-url OCSP --crl-url CRL cert --document DOC`: the
/// signing-certificate query, verified; its steps go to standard error.
fn rp_api_cert(server: &TestServer, document: &str, ocsp: &str, crl: &str) -> Output {
    Command::new(tandem_bin())
        .arg("rp-api")
        .args(["--api", &format!("{}/v3", server.rest_url)])
        .arg("--trust")
        .arg(&server.data_dir)
        .args(["--ocsp-url", ocsp, "--crl-url", crl])
        .args(["cert", "--document", document])
        .env("TANDEM_RP_UUID", RP_UUID)
        .env("TANDEM_RP_NAME", RP_NAME)
        .output()
        .unwrap()
}

fn assert_crl_good(r: Result<NotRevoked, RevocationError>, crl_url: &str, closed: &str) {
    let ok = r.unwrap();
    assert_eq!(ok.method, RevocationMethod::Crl, "{ok:?}");
    assert_eq!(ok.url, crl_url);
    let why = ok.ocsp_failure.as_deref().unwrap();
    assert!(
        why.starts_with(closed) && why.contains("unreachable"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crl_decides_when_ocsp_is_unavailable() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let anchors = anchors(&server);
    let auth = state.key_pair(KeyType::Auth).unwrap().certificate.clone();
    let sign = state.key_pair(KeyType::Sign).unwrap().certificate.clone();
    // The distribution point our CA writes into its certificates (the test servers' public
    // base URL is http://ca.example.com).
    for der in [&auth, &sign] {
        assert_eq!(
            crl::distribution_points(der).unwrap(),
            ["http://ca.example.com/crl/issuing.crl"]
        );
    }

    let closed = closed_port("/ocsp").await;
    let crl_url = format!("{}/crl/issuing.crl", server.http_url);
    let ocsp_url = format!("{}/ocsp", server.http_url);
    let crl_only = RevocationOptions {
        ocsp_url: Some(closed.clone()),
        crl_url: Some(crl_url.clone()),
        ..Default::default()
    };

    // Live certificates: OCSP unreachable, the server's CRL does not list them.
    for der in [&auth, &sign] {
        assert_crl_good(
            check_revocation(der, &anchors, &crl_only).await,
            &crl_url,
            &closed,
        );
    }
    // With the server's responder reachable, OCSP answers and the CRL is not needed (its URL
    // is a closed port here).
    let ocsp_only = RevocationOptions {
        ocsp_url: Some(ocsp_url.clone()),
        crl_url: Some(closed_port("/crl").await),
        ..Default::default()
    };
    let ok = check_revocation(&auth, &anchors, &ocsp_only).await.unwrap();
    assert_eq!(
        (ok.method, ok.url.as_str()),
        (RevocationMethod::Ocsp, ocsp_url.as_str())
    );
    // Neither reachable: an error naming both, never a pass.
    let neither = RevocationOptions {
        ocsp_url: Some(closed.clone()),
        crl_url: Some(closed_port("/crl").await),
        ..Default::default()
    };
    let e = check_revocation(&auth, &anchors, &neither)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RevocationError::Unavailable { ocsp, crl }
            if ocsp.contains("unreachable") && crl.contains("unreachable")),
        "{e:?}"
    );

    // The command prints which method answered.
    let out = rp_api_cert(&server, &state.document_number, &closed, &crl_url);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("revocation: OK (CRL: not listed (thisUpdate ")
            && stderr.contains(&format!("from {crl_url}; OCSP gave no answer: {closed}")),
        "{stderr}"
    );

    // The operator revokes the SIGN certificate (keyCompromise): the next CRL lists it.
    let out = server
        .operator(&["revoke", &serial_hex(&sign), "--reason", "1"])
        .unwrap();
    assert!(out.contains("revoked"), "{out}");
    let e = check_revocation(&sign, &anchors, &crl_only)
        .await
        .unwrap_err();
    match &e {
        RevocationError::Revoked {
            method: RevocationMethod::Crl,
            url,
            reason: Some(CrlReason::KeyCompromise),
            ocsp_failure: Some(_),
            ..
        } => assert_eq!(url, &crl_url),
        other => panic!("{other:?}"),
    }
    // AUTH is still good.
    assert_crl_good(
        check_revocation(&auth, &anchors, &crl_only).await,
        &crl_url,
        &closed,
    );
    // The account is deleted: its AUTH certificate is revoked (cessationOfOperation), by the
    // CRL as by OCSP.
    let client = server.device_client().await.unwrap();
    dev::delete_account(&client, &state).await.unwrap();
    let e = check_revocation(&auth, &anchors, &crl_only)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            RevocationError::Revoked {
                method: RevocationMethod::Crl,
                reason: Some(CrlReason::CessationOfOperation),
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("CRL: the certificate is revoked since 20")
            && text.contains("cessationOfOperation")
            && text.contains(&crl_url),
        "{text}"
    );
    let e = check_revocation(&auth, &anchors, &ocsp_only)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            RevocationError::Revoked {
                method: RevocationMethod::Ocsp,
                reason: Some(CrlReason::CessationOfOperation),
                ..
            }
        ),
        "{e:?}"
    );
}
