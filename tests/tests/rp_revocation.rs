//! The RP library's revocation check against a real server over 127.0.0.1, with OCSP made
//! unavailable: the OCSP URL points at a closed port on 127.0.0.1, so the CRL the server
//! publishes at `GET /crl/issuing.crl` decides (response_verification.txt: "If OCSP fails or
//! is unavailable, Certificate Revocation List (CRL) checking should be used as fallback").
//! Good for live certificates, revoked once the server's CRL lists them (an operator's
//! revocation, an account deletion); the good case also through `tandem rp-api cert` (the
//! server no longer hands out a revoked certificate, so the command cannot show that one).
//!
//! The issuing CA certificate is checked too (response_verification.txt: "Intermediate CA
//! certificates can be revoked and must be checked"): the root's CRL at `GET /crl/root.crl`
//! says it is not revoked, until the operator revokes it (`tandem operator revoke-ca`); then
//! the library and the command refuse the user's certificates because their issuing CA is
//! revoked, and OpenSSL verifies the root's CRL and finds the issuing CA's serial in it.
//!
//! The certificates name `http://ca.example.com` (the test servers' public base URL) in their
//! AIA and cRLDistributionPoints, which the test cannot reach, so the URLs are given to the
//! library (`RevocationOptions`) and the command (`--ocsp-url`, `--crl-url`, `--ca-crl-url`).

#![allow(clippy::unwrap_used)] // tests

use std::process::{Command, Output};

use openssl::x509::X509;
use tandem_client_core::grpc as dev;
use tandem_client_core::types::KeyType;
use tandem_rp::client::TrustAnchors;
use tandem_rp::client::revocation::{
    ChainPosition, CrlReason, NotRevoked, RevocationError, RevocationMethod, RevocationOptions,
    check_chain_revocation, check_revocation, crl,
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

/// `tandem rp-api --trust DATA_DIR --ocsp-url OCSP --crl-url CRL --ca-crl-url ROOT_CRL cert
/// --document DOC`: the signing-certificate query, verified; its steps go to standard error.
/// The issuing CA certificate is checked against the server's root CRL.
fn rp_api_cert(server: &TestServer, document: &str, ocsp: &str, crl: &str) -> Output {
    Command::new(tandem_bin())
        .arg("rp-api")
        .args(["--api", &format!("{}/v3", server.rest_url)])
        .arg("--trust")
        .arg(&server.data_dir)
        .args(["--ocsp-url", ocsp, "--crl-url", crl])
        .args(["--ca-crl-url", &format!("{}/crl/root.crl", server.http_url)])
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

/// The serial of a PEM certificate file, upper-case hex as `openssl crl -text` prints it.
fn pem_serial_upper(path: &std::path::Path) -> String {
    hex::encode_upper(
        X509::from_pem(&std::fs::read(path).unwrap())
            .unwrap()
            .serial_number()
            .to_bn()
            .unwrap()
            .to_vec(),
    )
}

/// `GET /crl/root.crl`, written to `dir/name`, checked by `openssl crl -CAfile root.pem`:
/// returns OpenSSL's text of it.
fn root_crl_checked_by_openssl(server: &TestServer, dir: &std::path::Path, name: &str) -> String {
    let (code, der) = http(server, "GET", "/crl/root.crl", b"").unwrap();
    assert_eq!(code, 200);
    std::fs::write(dir.join(name), &der).unwrap();
    let root = server.data_dir.join("pki").join("root.pem");
    // The brief's check first: `-noout` prints only the verification result.
    let (ok, text) = openssl(
        dir,
        &[
            "crl",
            "-in",
            name,
            "-inform",
            "DER",
            "-CAfile",
            root.to_str().unwrap(),
            "-noout",
        ],
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    let (ok, text) = openssl(
        dir,
        &[
            "crl",
            "-in",
            name,
            "-inform",
            "DER",
            "-CAfile",
            root.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    assert!(
        text.contains("Issuer: C = EE, O = Tandem, CN = Tandem Root CA"),
        "{text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_issuing_ca_fails_the_chain_through_the_root_crl() {
    let mut server = TestServer::start(ServerOptions::default()).unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let anchors = anchors(&server);
    let sign = state.key_pair(KeyType::Sign).unwrap().certificate.clone();
    let pki = server.data_dir.join("pki");
    let tmp = tempfile::tempdir().unwrap();

    // The issuing CA certificate names the root's CRL (at the test servers' public base URL).
    let issuing_pem = std::fs::read(pki.join("issuing.pem")).unwrap();
    let issuing_der = X509::from_pem(&issuing_pem).unwrap().to_der().unwrap();
    assert_eq!(
        crl::distribution_points(&issuing_der).unwrap(),
        ["http://ca.example.com/crl/root.crl"]
    );
    let issuing_serial = pem_serial_upper(&pki.join("issuing.pem"));

    // The root's CRL lists nothing yet, and verifies with the root alone.
    let text = root_crl_checked_by_openssl(&server, tmp.path(), "root-1.crl");
    assert!(text.contains("No Revoked Certificates"), "{text}");

    // A live chain: the user's certificate by OCSP, the issuing CA by the root's CRL.
    let root_crl = format!("{}/crl/root.crl", server.http_url);
    let ocsp_url = format!("{}/ocsp", server.http_url);
    let opts = RevocationOptions {
        ocsp_url: Some(ocsp_url.clone()),
        ca_crl_url: Some(root_crl.clone()),
        ..Default::default()
    };
    let ok = check_chain_revocation(&sign, &anchors, &opts)
        .await
        .unwrap();
    assert_eq!(ok.certificates.len(), 2, "{ok:?}");
    let (ee, ca) = (&ok.certificates[0], &ok.certificates[1]);
    assert_eq!(
        (
            ee.certificate.position,
            ee.status.method,
            ee.status.url.as_str()
        ),
        (
            ChainPosition::EndEntity,
            RevocationMethod::Ocsp,
            ocsp_url.as_str()
        )
    );
    assert_eq!(
        (
            ca.certificate.position,
            ca.status.method,
            ca.status.url.as_str()
        ),
        (
            ChainPosition::IntermediateCa(1),
            RevocationMethod::Crl,
            root_crl.as_str()
        )
    );
    assert_eq!(ca.certificate.serial_hex.to_uppercase(), issuing_serial);
    assert_eq!(ok.root, "CN=Tandem Root CA,O=Tandem,C=EE");

    // Both checks reported by the command.
    let out = rp_api_cert(&server, &state.document_number, &ocsp_url, &root_crl);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("revocation: OK (OCSP: good at "),
        "{stderr}"
    );
    let ca_line = format!(
        "revocation of intermediate CA certificate CN=Tandem Issuing CA,O=Tandem,C=EE (serial {}): OK (CRL: not listed (thisUpdate ",
        issuing_serial.to_lowercase()
    );
    assert!(stderr.contains(&ca_line), "{ca_line:?} not in\n{stderr}");
    assert!(stderr.contains(&format!("from {root_crl}; ")), "{stderr}");

    // Without --yes the operator is told what would happen, and nothing changes.
    let e = server
        .operator(&["revoke-ca", "--reason", "ca-compromise"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("run again with --yes"), "{e}");
    assert!(
        check_chain_revocation(&sign, &anchors, &opts).await.is_ok(),
        "not revoked without --yes"
    );
    // A reason for end-entity certificates is refused.
    let e = server
        .operator(&["revoke-ca", "--reason", "1", "--yes"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown reason"), "{e}");

    // The operator revokes the issuing CA (cACompromise); again changes nothing.
    let out = server
        .operator(&["revoke-ca", "--reason", "ca-compromise", "--yes"])
        .unwrap();
    assert!(
        out.starts_with("revoked the issuing CA certificate CN=Tandem Issuing CA,O=Tandem,C=EE")
            && out.contains("reason 2 cACompromise")
            && out.contains("http://ca.example.com/crl/root.crl"),
        "{out}"
    );
    let out = server
        .operator(&["revoke-ca", "--reason", "superseded", "--yes"])
        .unwrap();
    assert!(
        out.contains("was already revoked") && out.contains("(reason 2)"),
        "{out}"
    );
    let audit = server.operator(&["audit"]).unwrap();
    assert_eq!(
        audit.matches("ca_certificate_revoked").count(),
        1,
        "{audit}"
    );
    server.assert_audit_intact();

    // The root's CRL lists the issuing CA's serial, with the reason, under the next number.
    let text = root_crl_checked_by_openssl(&server, tmp.path(), "root-2.crl");
    assert!(
        text.contains(&format!("Serial Number: {issuing_serial}"))
            && text.contains("CA Compromise"),
        "{issuing_serial} not listed:\n{text}"
    );
    assert!(
        text.contains("X509v3 CRL Number: \n                2"),
        "{text}"
    );

    // The library refuses the user's certificate: its issuing CA is revoked. The user's
    // certificate itself is still good (OCSP), and was checked first.
    let e = check_chain_revocation(&sign, &anchors, &opts)
        .await
        .unwrap_err();
    assert_eq!(
        e.certificate.as_ref().map(|c| c.position),
        Some(ChainPosition::IntermediateCa(1))
    );
    match &e.error {
        RevocationError::Revoked {
            method: RevocationMethod::Crl,
            url,
            reason: Some(CrlReason::CaCompromise),
            ..
        } => assert_eq!(url, &root_crl),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.checked.len(), 1);
    assert_eq!(e.checked[0].status.method, RevocationMethod::Ocsp);
    let text = e.to_string();
    assert!(
        text.starts_with("intermediate CA certificate CN=Tandem Issuing CA,O=Tandem,C=EE")
            && text.contains("CRL: the certificate is revoked since 20")
            && text.contains("(reason code 2, cACompromise)"),
        "{text}"
    );
    // The single-certificate check of the user's certificate still passes: the intermediate
    // is what the chain check adds.
    assert!(check_revocation(&sign, &anchors, &opts).await.is_ok());

    // So does the command, naming the issuing CA, and exits non-zero.
    let out = rp_api_cert(&server, &state.document_number, &ocsp_url, &root_crl);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("revocation: OK (OCSP: good at ")
            && stderr.contains(
                "revocation of intermediate CA certificate CN=Tandem Issuing CA,O=Tandem,C=EE"
            )
            && stderr.contains("FAILED (CRL: the certificate is revoked since ")
            && stderr.contains("cACompromise"),
        "{stderr}"
    );

    // The server warns at its next start that it issues under a revoked CA.
    server.restart().unwrap();
    let log = server.log();
    assert!(
        log.contains("the issuing CA certificate is revoked"),
        "no warning in the log:\n{log}"
    );
}
