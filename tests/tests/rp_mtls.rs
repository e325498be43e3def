//! Mutual TLS on the RP API against a real server over HTTPS on 127.0.0.1, with curl and
//! with `RpApiClient`: without a client certificate everything works as before; a
//! certificate of a foreign CA is refused in the TLS handshake; certificates of our CA reach
//! the relying-party check: the relying party's own (SAN `urn:uuid:<its UUID>`) is let
//! through, another relying party's is 403, one without a relying party's UUID (as a
//! person's AUTH certificate: clientAuth, no such SAN) is 403.
//!
//! Until the certificate queue (srv) is merged, the certificates of our CA come from
//! `issue_from_test_ca` (TEST ONLY: it signs with the issuing CA key in the test token). The
//! .p12 is written by `tandem rp-cert pack`, as `download` writes it.

#![allow(clippy::unwrap_used)] // tests

use tandem_rp::api::types::{SignCertificateLevel, SigningCertificateRequest};
use tandem_rp::client::{ClientConfig, ClientIdentity, Error, RpApiClient};
use tandem_tests::mtls::{CurlCert, auth_body, curl, foreign_cert, issue_from_test_ca};
use tandem_tests::*;

// TEST ONLY: certificates of the test server's CA, issued by a child of this binary.
tandem_tests::issue_helper!();

/// A second relying party.
const OTHER_UUID: &str = "00000000-0000-4000-8000-0000000000b2";
const OTHER_NAME: &str = "Other Bank";
/// A person without an account: a start for them passes the relying-party check and then
/// answers 404.
const NOBODY: &str = "/v3/authentication/notification/etsi/PNOEE-30303039914";

#[test]
fn client_certificates_reach_the_relying_party_check() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    server
        .operator(&["rp-add", "--uuid", OTHER_UUID, "--name", OTHER_NAME])
        .unwrap();
    let dir = server.tmp.path().join("mtls");
    let ours = auth_body(RP_UUID, RP_NAME);
    let others = auth_body(OTHER_UUID, OTHER_NAME);

    // No client certificate: as before (admitted, then no such person).
    let a = curl(&server, CurlCert::None, NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 404, "{a:?}");
    let bad_rp = auth_body(RP_UUID, "Not Its Name");
    let a = curl(&server, CurlCert::None, NOBODY, Some(&bad_rp)).unwrap();
    assert_eq!(a.status, 401, "{a:?}");

    // A foreign CA: no HTTP answer at all, the server logs the failed handshake.
    let foreign = foreign_cert(&dir.join("foreign")).unwrap();
    let a = curl(&server, CurlCert::Pem(&foreign), NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 0, "{a:?}");
    assert_ne!(a.exit, 0, "{a:?}");
    assert!(
        server.log().contains("TLS handshake failed"),
        "{}",
        server.log()
    );

    // Our CA, the relying party's own certificate: admitted.
    let own = issue_from_test_ca(
        &server,
        &dir.join("own"),
        &[&format!("urn:uuid:{RP_UUID}")],
        true,
    )
    .unwrap();
    let a = curl(&server, CurlCert::Pem(&own), NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 404, "{a:?}");
    // The same certificate with another relying party's UUID in the request: 403.
    let a = curl(&server, CurlCert::Pem(&own), NOBODY, Some(&others)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("another relying party"), "{a:?}");
    // The wrong name still gets the 401 first (the check runs after the RP is known).
    let a = curl(&server, CurlCert::Pem(&own), NOBODY, Some(&bad_rp)).unwrap();
    assert_eq!(a.status, 401, "{a:?}");

    // Our CA, clientAuth but no relying party's UUID (the shape of a person's AUTH
    // certificate): it passes the handshake and is refused by the check.
    let person_like = issue_from_test_ca(&server, &dir.join("person"), &[], true).unwrap();
    let a = curl(&server, CurlCert::Pem(&person_like), NOBODY, Some(&ours)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("not a relying party"), "{a:?}");

    // The Tandem endpoints beside the API are checked the same way (portal overview).
    let overview = serde_json::json!({
        "relyingPartyUUID": OTHER_UUID,
        "relyingPartyName": OTHER_NAME,
        "authSessionId": "11111111-1111-4111-8111-111111111111",
    })
    .to_string();
    let a = curl(
        &server,
        CurlCert::Pem(&own),
        tandem_rp::api::portal::OVERVIEW_PATH,
        Some(&overview),
    )
    .unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("another relying party"), "{a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_p12_works_with_curl_and_the_rp_client() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    server
        .operator(&["rp-add", "--uuid", OTHER_UUID, "--name", OTHER_NAME])
        .unwrap();
    let dir = server.tmp.path().join("p12");
    let own = issue_from_test_ca(&server, &dir, &[&format!("urn:uuid:{RP_UUID}")], true).unwrap();
    let (p12, pw) = (dir.join("own.p12"), dir.join("pw"));
    std::fs::write(&pw, "correct horse\n").unwrap();
    let issuing = server.data_dir.join("pki/issuing.pem");
    let root = server.data_dir.join("pki/root.pem");
    tandem(&[
        "rp-cert",
        "pack",
        "--key",
        own.key.to_str().unwrap(),
        "--cert",
        own.cert.to_str().unwrap(),
        "--chain",
        issuing.to_str().unwrap(),
        "--chain",
        root.to_str().unwrap(),
        "--label",
        "Test Bank 1",
        "--out",
        p12.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .unwrap();

    // curl --cert-type P12 (the acceptance's call).
    let ours = auth_body(RP_UUID, RP_NAME);
    let a = curl(
        &server,
        CurlCert::P12(&p12, "correct horse"),
        NOBODY,
        Some(&ours),
    )
    .unwrap();
    assert_eq!(a.status, 404, "{a:?}");
    let others = auth_body(OTHER_UUID, OTHER_NAME);
    let a = curl(
        &server,
        CurlCert::P12(&p12, "correct horse"),
        NOBODY,
        Some(&others),
    )
    .unwrap();
    assert_eq!(a.status, 403, "{a:?}");

    // RpApiClient with the .p12 as its identity.
    let der = std::fs::read(&p12).unwrap();
    assert!(ClientIdentity::from_pkcs12(&der, "wrong horse").is_err());
    let id = ClientIdentity::from_pkcs12(&der, "correct horse").unwrap();
    let client = |identity: Option<ClientIdentity>| {
        let mut cfg = ClientConfig::new(format!("{}/v3", server.rest_url))
            .with_extra_root_pem(server.ca.clone());
        cfg.client_identity = identity;
        RpApiClient::new(cfg).unwrap()
    };
    let req = |uuid: &str, name: &str| SigningCertificateRequest {
        relying_party_uuid: uuid.into(),
        relying_party_name: name.into(),
        certificate_level: Some(SignCertificateLevel::Qualified),
    };
    let doc = "PNOEE-30303039914-MOCK-Q";
    let status = |r: Result<_, Error>| match r {
        Err(Error::Problem { status, .. }) => status,
        other => panic!("{other:?}"),
    };
    let with = client(Some(id));
    assert_eq!(
        status(with.signing_certificate(doc, &req(RP_UUID, RP_NAME)).await),
        404
    );
    assert_eq!(
        status(
            with.signing_certificate(doc, &req(OTHER_UUID, OTHER_NAME))
                .await
        ),
        403
    );
    let without = client(None);
    assert_eq!(
        status(
            without
                .signing_certificate(doc, &req(OTHER_UUID, OTHER_NAME))
                .await
        ),
        404
    );
    // A PEM identity of the foreign CA: refused in the handshake.
    let foreign = foreign_cert(&dir.join("foreign")).unwrap();
    let pem = |p: &std::path::Path| std::fs::read(p).unwrap();
    let fid = ClientIdentity::from_pem(&pem(&foreign.key), &pem(&foreign.cert)).unwrap();
    let r = client(Some(fid))
        .signing_certificate(doc, &req(RP_UUID, RP_NAME))
        .await;
    assert!(matches!(r, Err(Error::Transport { .. })), "{r:?}");
}
