//! Mutual TLS on the RP API against a real server over HTTPS on 127.0.0.1, with curl and
//! with `RpApiClient`, the relying parties' certificates coming from the real path: the
//! operator gives the bank credits and an administrator (`tandem operator rp-credit`,
//! `rp-admin`), the administrator logs in with an AUTH session confirmed on a phone and
//! creates, downloads, cancels and revokes certificates through `RpApiClient::rp_certs_*`;
//! the `.p12` is written by `tandem rp-cert pack` (as `tandem rp-cert download` writes it).
//!
//! Covered: no certificate works as before; a foreign CA's and an expired certificate are
//! refused in the TLS handshake; the bank's own certificate starts a session (curl
//! `--cert-type P12`, `RpApiClient` with a `ClientIdentity` from the .p12 and from PEM);
//! the bank's certificate in the name of another relying party is 403 (session start,
//! `/tandem/v1/*`, `GET /v3/session/{id}` of the other's session); a certificate of our CA
//! that the store does not know is 403; `tandem operator rp-mtls require` / `optional`;
//! after the operator's and after the administrator's revocation the same call is 403 at
//! once; a cancelled creation cannot be downloaded.

#![allow(clippy::unwrap_used)] // tests

use std::time::Duration;

use tandem_rp::api::portal::OVERVIEW_PATH;
use tandem_rp::api::types::NotificationAuthenticationRequest;
use tandem_rp::client::{ClientIdentity, Error, RpApiClient, UserRef};
use tandem_tests::mtls::{
    CertAdmin, CurlCert, admin_login, auth_body, curl, foreign_cert, new_csr, rp_client,
    sign_unregistered_with_test_ca,
};
use tandem_tests::*;

// TEST ONLY: certificates of the test server's CA the store does not know (see
// `sign_unregistered_with_test_ca`), issued by a child of this binary.
tandem_tests::issue_helper!();

/// A second relying party.
const OTHER_UUID: &str = "00000000-0000-4000-8000-0000000000b2";
const OTHER_NAME: &str = "Other Bank";
/// Mary as an administrator and as a user of the sessions started here.
const MARY_ID: &str = "PNOEE-30303039914";
/// A person without an account (OTHER, never registered here): a start for them passes the
/// relying-party check and then answers 404.
const NOBODY: &str = "/v3/authentication/notification/etsi/PNOEE-1";
/// How long the queue may take to issue a certificate.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP status of a problem answer (panics on anything else).
fn status_of<T: std::fmt::Debug>(r: Result<T, Error>) -> (u16, String) {
    match r {
        Err(Error::Problem {
            status, problem, ..
        }) => (status, format!("{problem:?}")),
        other => panic!("expected a problem answer, got {other:?}"),
    }
}

/// A notification authentication of `uuid`/`name` for Mary through `client`.
async fn start_for_mary(client: &RpApiClient, uuid: &str, name: &str) -> Result<String, Error> {
    let req: NotificationAuthenticationRequest =
        serde_json::from_str(&auth_body(uuid, name)).unwrap();
    client
        .notification_authentication(&UserRef::Etsi(MARY_ID.into()), &req)
        .await
        .map(|r| r.session_id)
}

#[test]
fn without_a_certificate_or_with_a_foreign_one() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    let dir = server.tmp.path().join("mtls");
    let ours = auth_body(RP_UUID, RP_NAME);

    // No client certificate: as before (admitted, then no such person; wrong name 401).
    let a = curl(&server, CurlCert::None, NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 404, "{a:?}");
    let bad_rp = auth_body(RP_UUID, "Not Its Name");
    let a = curl(&server, CurlCert::None, NOBODY, Some(&bad_rp)).unwrap();
    assert_eq!(a.status, 401, "{a:?}");

    // A foreign CA (with the bank's UUID in its SAN): no HTTP answer at all, the server
    // logs the failed handshake.
    let foreign = foreign_cert(&dir.join("foreign")).unwrap();
    let a = curl(&server, CurlCert::Pem(&foreign), NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 0, "{a:?}");
    assert_ne!(a.exit, 0, "{a:?}");
    assert!(
        server.log().contains("TLS handshake failed"),
        "{}",
        server.log()
    );
}

/// The whole decision with certificates from the queue.
#[tokio::test(flavor = "multi_thread")]
async fn certificates_from_the_queue() {
    let work = tempfile::tempdir().unwrap();
    let hold = work.path().join("hold-queue");
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        env: vec![(
            "TANDEM_TEST_HOLD_RP_CERT_QUEUE".into(),
            hold.to_str().unwrap().into(),
        )],
        ..Default::default()
    })
    .unwrap();
    server
        .operator(&["rp-add", "--uuid", OTHER_UUID, "--name", OTHER_NAME])
        .unwrap();
    let mut mary = register(&server, &MARY, "1234", "12345").await.unwrap();
    let phone = server.device_client().await.unwrap();
    server
        .operator(&["rp-credit", "--rp", RP_UUID, "--add", "3"])
        .unwrap();
    server
        .operator(&["rp-admin", "--rp", RP_UUID, "add", MARY_ID])
        .unwrap();
    let dir = work.path().join("certs");
    let plain = rp_client(&server, None).unwrap();

    // The administrator logs in and creates two certificates; both are issued.
    let admin = CertAdmin {
        uuid: RP_UUID.into(),
        name: RP_NAME.into(),
        session: admin_login(&plain, &phone, &mut mary, RP_UUID, RP_NAME)
            .await
            .unwrap(),
    };
    let (csr1, csr2) = (new_csr(&dir, "one").unwrap(), new_csr(&dir, "two").unwrap());
    let made = plain
        .rp_certs_create(&admin.create(&[("one", &csr1), ("two", &csr2)]))
        .await
        .unwrap();
    let (id1, id2) = (&made.certificates[0].id, &made.certificates[1].id);
    let c1 = admin.wait_ready(&plain, id1, ISSUE_TIMEOUT).await.unwrap();
    admin.wait_ready(&plain, id2, ISSUE_TIMEOUT).await.unwrap();
    let one = admin.download_pem(&plain, id1, &dir, "one").await.unwrap();
    let two = admin.download_pem(&plain, id2, &dir, "two").await.unwrap();

    // A cancelled creation cannot be had: 409 while queued, cancelled (a voucher), then
    // 404, also after the queue runs again.
    std::fs::write(&hold, b"").unwrap();
    let csr3 = new_csr(&dir, "three").unwrap();
    let held = plain
        .rp_certs_create(&admin.create(&[("three", &csr3)]))
        .await
        .unwrap();
    let id3 = &held.certificates[0].id;
    let (s, p) = status_of(plain.rp_certs_certificate(&admin.cert(id3)).await);
    assert_eq!(s, 409, "{p}");
    let cancelled = plain.rp_certs_cancel(&admin.cert(id3)).await.unwrap();
    assert!(cancelled.voucher.code.starts_with("TV-"), "no voucher code");
    std::fs::remove_file(&hold).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s, p) = status_of(plain.rp_certs_certificate(&admin.cert(id3)).await);
    assert_eq!(s, 404, "{p}");

    // The .p12 of the first, as `tandem rp-cert download` writes it.
    let p12 = dir.join("one.p12");
    let pw = dir.join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    tandem(&[
        "rp-cert",
        "pack",
        "--key",
        one.key.to_str().unwrap(),
        "--cert",
        one.cert.to_str().unwrap(),
        "--label",
        "one",
        "--out",
        p12.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .unwrap();
    let p12_cert = CurlCert::P12(&p12, "correct horse");
    let (ours, others) = (
        auth_body(RP_UUID, RP_NAME),
        auth_body(OTHER_UUID, OTHER_NAME),
    );
    let start_mary = format!("/v3/authentication/notification/etsi/{MARY_ID}");

    // The bank's own certificate with the bank's UUID: the session starts (curl with the
    // .p12, RpApiClient with the .p12 and with PEM).
    let a = curl(&server, p12_cert, &start_mary, Some(&ours)).unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains("sessionID"), "{a:?}");
    let der = std::fs::read(&p12).unwrap();
    assert!(ClientIdentity::from_pkcs12(&der, "wrong horse").is_err());
    let with_one = rp_client(
        &server,
        Some(ClientIdentity::from_pkcs12(&der, "correct horse").unwrap()),
    )
    .unwrap();
    start_for_mary(&with_one, RP_UUID, RP_NAME).await.unwrap();
    let pem = |p: &std::path::Path| std::fs::read(p).unwrap();
    let with_two = rp_client(
        &server,
        Some(ClientIdentity::from_pem(&pem(&two.key), &pem(&two.cert)).unwrap()),
    )
    .unwrap();
    start_for_mary(&with_two, RP_UUID, RP_NAME).await.unwrap();
    // The wrong name still gets the 401 first (the check runs after the RP is known).
    let bad_rp = auth_body(RP_UUID, "Not Its Name");
    let a = curl(&server, p12_cert, NOBODY, Some(&bad_rp)).unwrap();
    assert_eq!(a.status, 401, "{a:?}");

    // The bank's certificate in the other relying party's name: 403 on a session start,
    // on Tandem's own endpoints and on the status of the other's session.
    let a = curl(&server, p12_cert, &start_mary, Some(&others)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("another relying party"), "{a:?}");
    let (s, p) = status_of(start_for_mary(&with_one, OTHER_UUID, OTHER_NAME).await);
    assert!(s == 403 && p.contains("another relying party"), "{s} {p}");
    let overview = serde_json::json!({
        "relyingPartyUUID": OTHER_UUID,
        "relyingPartyName": OTHER_NAME,
        "authSessionId": "11111111-1111-4111-8111-111111111111",
    })
    .to_string();
    let a = curl(&server, p12_cert, OVERVIEW_PATH, Some(&overview)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("another relying party"), "{a:?}");
    let theirs = start_for_mary(&plain, OTHER_UUID, OTHER_NAME)
        .await
        .unwrap();
    let status_path = format!("/v3/session/{theirs}?timeoutMs=1000");
    let a = curl(&server, p12_cert, &status_path, None).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("another relying party"), "{a:?}");
    let (s, _) = status_of(with_two.session_status(&theirs, Some(1000)).await);
    assert_eq!(s, 403);
    // Without a certificate the other's session is theirs to ask about (mTLS optional).
    let a = curl(&server, CurlCert::None, &status_path, None).unwrap();
    assert_eq!(a.status, 200, "{a:?}");

    // A certificate of our CA with the bank's SAN that the store does not know: 403; an
    // expired one: refused in the handshake.
    let san = format!("urn:uuid:{RP_UUID}");
    let unknown =
        sign_unregistered_with_test_ca(&server, &work.path().join("unknown"), &[&san], true, false)
            .unwrap();
    let a = curl(&server, CurlCert::Pem(&unknown), NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(
        a.body.contains("not a relying party's client certificate"),
        "{a:?}"
    );
    let expired =
        sign_unregistered_with_test_ca(&server, &work.path().join("expired"), &[&san], true, true)
            .unwrap();
    let a = curl(&server, CurlCert::Pem(&expired), NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 0, "{a:?}");
    assert_ne!(a.exit, 0, "{a:?}");

    // mTLS required: without a certificate 401 naming the rule, with it admitted; optional
    // again: admitted without.
    let out = server.operator(&["rp-mtls", RP_UUID, "require"]).unwrap();
    assert!(out.contains("required"), "{out}");
    let a = curl(&server, CurlCert::None, NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 401, "{a:?}");
    assert!(
        a.body
            .contains("mutual TLS required for this relying party"),
        "{a:?}"
    );
    let (s, p) = status_of(start_for_mary(&plain, RP_UUID, RP_NAME).await);
    assert!(s == 401 && p.contains("mutual TLS required"), "{s} {p}");
    let a = curl(&server, p12_cert, NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 404, "{a:?}");
    start_for_mary(&with_two, RP_UUID, RP_NAME).await.unwrap();
    server.operator(&["rp-mtls", RP_UUID, "optional"]).unwrap();
    let a = curl(&server, CurlCert::None, NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 404, "{a:?}");

    // The operator revokes the issuing CA certificate (`revoke-ca`): every certificate it
    // issued is refused at once, these two included.
    server
        .operator(&["revoke-ca", "--reason", "ca-compromise", "--yes"])
        .unwrap();
    let a = curl(&server, p12_cert, &start_mary, Some(&ours)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(
        a.body.contains("issued the client certificate is revoked"),
        "{a:?}"
    );
    let (s, p) = status_of(start_for_mary(&with_two, RP_UUID, RP_NAME).await);
    assert!(s == 403 && p.contains("is revoked"), "{s} {p}");

    // The operator revokes the first (by serial): the same call is 403 at once.
    let serial = c1.serial_number.clone().unwrap();
    let out = server
        .operator(&["rp-cert-revoke", "--rp", RP_UUID, &serial])
        .unwrap();
    assert!(out.contains("revoked"), "{out}");
    let a = curl(&server, p12_cert, &start_mary, Some(&ours)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("client certificate revoked"), "{a:?}");
    let (s, p) = status_of(start_for_mary(&with_one, RP_UUID, RP_NAME).await);
    assert!(s == 403 && p.contains("revoked"), "{s} {p}");
    // The administrator revokes the second: the same.
    plain.rp_certs_revoke(&admin.cert(id2)).await.unwrap();
    let (s, p) = status_of(start_for_mary(&with_two, RP_UUID, RP_NAME).await);
    assert!(s == 403 && p.contains("revoked"), "{s} {p}");
    let a = curl(&server, CurlCert::Pem(&two), &start_mary, Some(&ours)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    // Without a certificate the bank still works (mTLS optional).
    start_for_mary(&plain, RP_UUID, RP_NAME).await.unwrap();
}
