//! Relying parties' software certificates against a real server, through
//! `RpApiClient::rp_certs_*`, with an administrator who logs in with an AUTH session of the
//! calling relying party (a phone registered through the gRPC device API confirms it):
//! two certificates created and issued (listed with serial and expiry, `openssl verify
//! -purpose sslclient` accepts them, OCSP says good, then revoked after a revocation, the
//! CRL lists it); a creation cancelled while the CA cannot sign gives a voucher, redeemed
//! once for the credit (a second time 409); 403 for a person who administers nothing and
//! for another relying party's certificates; 400 naming a 75-character label and a `$`,
//! and for a malformed CSR; 409 without credit; and a kill -9 of the server with 300
//! creations queued: after the restart all of them are issued, and credits, certificates
//! and vouchers add up (nothing lost, nothing twice).

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tandem_client_core::grpc::Client;
use tandem_client_core::state::DeviceState;
use tandem_rp::api::rp_certs::{
    CertificateRequest, CreateRequest, ListRequest, NewRpCert, RedeemRequest, RpCertState,
};
use tandem_rp::client::{ClientConfig, Error, RpApiClient};
use tandem_tests::mtls;
use tandem_tests::*;

/// Another relying party (a target the caller may not manage).
const SHOP_UUID: &str = "00000000-0000-4000-8000-0000000000d1";
const SHOP_NAME: &str = "Tandem Test Shop";
/// Mary's identity as an administrator.
const MARY_ADMIN: &str = "PNOEE-30303039914";

/// The administrator's login: an AUTH session of the test bank for the phone's account,
/// confirmed with PIN1 (the shared helper); its id.
async fn login(client: &RpApiClient, phone: &Client, state: &mut DeviceState) -> String {
    mtls::admin_login(client, phone, state, RP_UUID, RP_NAME)
        .await
        .unwrap()
}

/// A PKCS#10 request of a new 2048-bit RSA key (the key stays in `dir`), base64 of its DER.
fn csr(dir: &Path, name: &str) -> String {
    mtls::new_csr(dir, name).unwrap()
}

fn status_of<T: std::fmt::Debug>(r: Result<T, Error>) -> (u16, String) {
    match r {
        Err(Error::Problem {
            status, problem, ..
        }) => (status, format!("{problem:?}")),
        other => panic!("expected a problem answer, got {other:?}"),
    }
}

struct Admin {
    client: RpApiClient,
    session: String,
}

impl Admin {
    fn list(&self, target: Option<&str>) -> ListRequest {
        ListRequest {
            relying_party_uuid: RP_UUID.into(),
            relying_party_name: RP_NAME.into(),
            auth_session_id: self.session.clone(),
            target_relying_party_uuid: target.map(Into::into),
        }
    }
    fn create(&self, target: &str, certs: Vec<(String, String)>) -> CreateRequest {
        CreateRequest {
            relying_party_uuid: RP_UUID.into(),
            relying_party_name: RP_NAME.into(),
            auth_session_id: self.session.clone(),
            target_relying_party_uuid: target.into(),
            certificates: certs
                .into_iter()
                .map(|(label, csr)| NewRpCert { label, csr })
                .collect(),
        }
    }
    fn cert(&self, id: &str) -> CertificateRequest {
        CertificateRequest {
            relying_party_uuid: RP_UUID.into(),
            relying_party_name: RP_NAME.into(),
            auth_session_id: self.session.clone(),
            target_relying_party_uuid: RP_UUID.into(),
            certificate_id: id.into(),
        }
    }
    fn redeem(&self, code: &str) -> RedeemRequest {
        RedeemRequest {
            relying_party_uuid: RP_UUID.into(),
            relying_party_name: RP_NAME.into(),
            auth_session_id: self.session.clone(),
            target_relying_party_uuid: RP_UUID.into(),
            voucher_code: code.into(),
        }
    }
    /// Waits until no certificate of the bank is queued or creating; the overview then.
    async fn settled(&self, timeout: Duration) -> tandem_rp::api::rp_certs::AdministeredRp {
        let deadline = Instant::now() + timeout;
        loop {
            let o = self
                .client
                .rp_certs_list(&self.list(Some(RP_UUID)))
                .await
                .unwrap();
            let rp = o.relying_parties.into_iter().next().unwrap();
            let busy = rp
                .certificates
                .iter()
                .filter(|c| matches!(c.state, RpCertState::Queued | RpCertState::Creating))
                .count();
            if busy == 0 {
                return rp;
            }
            assert!(Instant::now() < deadline, "{busy} still queued");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn ocsp(dir: &Path, server: &TestServer, cert: &str) -> String {
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
    assert!(ok && out.contains("Response verify OK"), "{out}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn rp_certificates_end_to_end() {
    let mut server = TestServer::start(ServerOptions::default()).unwrap();
    server
        .operator(&["rp-add", "--uuid", SHOP_UUID, "--name", SHOP_NAME])
        .unwrap();
    let mut mary = register(&server, &MARY, "1234", "12345").await.unwrap();
    let mut other = register(&server, &OTHER, "1234", "12345").await.unwrap();
    let phone = server.device_client().await.unwrap();
    let client = RpApiClient::new(ClientConfig::new(format!("{}/v3", server.rest_url))).unwrap();
    let dir = server.tmp.path().join("rp-certs");
    std::fs::create_dir_all(&dir).unwrap();

    // A person who administers nothing: 403 (for an existing and an unknown target alike).
    let stranger = Admin {
        client: client.clone(),
        session: login(&client, &phone, &mut other).await,
    };
    let out = server
        .operator(&["rp-credit", "--rp", RP_UUID, "--add", "2"])
        .unwrap();
    assert!(out.contains("has 2 credits"), "{out}");
    let (s, _) = status_of(client.rp_certs_list(&stranger.list(Some(RP_UUID))).await);
    assert_eq!(s, 403);
    let (s, _) = status_of(
        client
            .rp_certs_list(&stranger.list(Some("00000000-0000-4000-8000-00000000dead")))
            .await,
    );
    assert_eq!(s, 403);

    let out = server
        .operator(&["rp-admin", "--rp", RP_UUID, "add", MARY_ADMIN])
        .unwrap();
    assert!(out.contains("administers"), "{out}");
    server
        .operator(&["rp-admin", "--rp", SHOP_UUID, "add", MARY_ADMIN])
        .unwrap();
    let admin = Admin {
        client: client.clone(),
        session: login(&client, &phone, &mut mary).await,
    };
    // The shop's certificates through the bank (no portal permission): 403.
    let (s, _) = status_of(client.rp_certs_list(&admin.list(Some(SHOP_UUID))).await);
    assert_eq!(s, 403);
    let good = csr(&dir, "a");
    let (s, _) = status_of(
        client
            .rp_certs_create(&admin.create(SHOP_UUID, vec![("x".into(), good.clone())]))
            .await,
    );
    assert_eq!(s, 403);
    // Without a target: only the bank (the caller), though Mary administers the shop too.
    let o = client.rp_certs_list(&admin.list(None)).await.unwrap();
    assert_eq!(o.relying_parties.len(), 1);
    assert_eq!(o.relying_parties[0].credits, 2);

    // Bad labels and a bad CSR: 400 naming them. The client checks labels itself, so these
    // go to the server raw.
    let raw = |label: &str, csr: &str| {
        let body = json!({
            "relyingPartyUUID": RP_UUID, "relyingPartyName": RP_NAME,
            "authSessionId": admin.session, "targetRelyingPartyUUID": RP_UUID,
            "certificates": [{"label": label, "csr": csr}],
        });
        let (s, b) = rest(
            &server,
            "POST",
            tandem_rp::api::rp_certs::CREATE_PATH,
            &body.to_string(),
        )
        .unwrap();
        (s, b.to_string())
    };
    let (s, b) = raw(&"x".repeat(75), &good);
    assert!(s == 400 && b.contains("75 characters"), "{s} {b}");
    let (s, b) = raw("a$b", &good);
    assert!(s == 400 && b.contains("character $"), "{s} {b}");
    let (s, b) = raw("ok", &STANDARD.encode(b"not a certificate request"));
    assert!(s == 400 && b.contains("PKCS#10"), "{s} {b}");
    // Three do not fit into two credits: 409, nothing queued.
    let three = (0..3).map(|i| (format!("c{i}"), good.clone())).collect();
    let (s, _) = status_of(client.rp_certs_create(&admin.create(RP_UUID, three)).await);
    assert_eq!(s, 409);

    // Two certificates: queued, then issued.
    let second = csr(&dir, "b");
    let made = client
        .rp_certs_create(&admin.create(
            RP_UUID,
            vec![
                ("Büro Köln".into(), good.clone()),
                ("backup".into(), second),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(made.credits, 0);
    assert_eq!(made.certificates.len(), 2);
    let rp = admin.settled(Duration::from_secs(60)).await;
    assert_eq!(rp.credits, 0);
    assert_eq!(rp.certificates.len(), 2);
    for c in &rp.certificates {
        assert_eq!(c.state, RpCertState::Ready, "{c:?}");
        assert!(c.serial_number.is_some() && c.not_after.is_some(), "{c:?}");
        let days = (c.not_after.unwrap().unix_secs() - c.queued.unix_secs()) / 86_400;
        assert!((364..=366).contains(&days), "{days}");
    }
    // Download: the certificate and its chain; OpenSSL accepts it as an SSL client.
    let id = &made.certificates[0].id;
    let issued = client.rp_certs_certificate(&admin.cert(id)).await.unwrap();
    assert_eq!(issued.chain.len(), 2);
    let der = STANDARD.decode(&issued.der).unwrap();
    std::fs::write(dir.join("cert.pem"), cert_pem(&der)).unwrap();
    std::fs::write(
        dir.join("issuing.pem"),
        cert_pem(&STANDARD.decode(&issued.chain[0]).unwrap()),
    )
    .unwrap();
    std::fs::write(
        dir.join("root.pem"),
        cert_pem(&STANDARD.decode(&issued.chain[1]).unwrap()),
    )
    .unwrap();
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("issuing.pem")).unwrap(),
        std::fs::read_to_string(dir.join("root.pem")).unwrap()
    );
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    let (ok, out) = openssl(
        &dir,
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuing.pem",
            "cert.pem",
        ],
    );
    assert!(ok && out.contains("cert.pem: OK"), "{out}");
    // The key in the certificate is the key of the CSR; the subject is the bank.
    let (_, text) = openssl(&dir, &["x509", "-in", "cert.pem", "-noout", "-text"]);
    assert!(text.contains(&format!("URI:urn:uuid:{RP_UUID}")), "{text}");
    assert!(text.contains(RP_NAME), "{text}");
    let (_, cert_key) = openssl(&dir, &["x509", "-in", "cert.pem", "-noout", "-pubkey"]);
    let (_, csr_key) = openssl(
        &dir,
        &["req", "-inform", "DER", "-in", "a.csr", "-noout", "-pubkey"],
    );
    assert_eq!(cert_key, csr_key);
    assert!(ocsp(&dir, &server, "cert.pem").contains("cert.pem: good"));
    // A ready certificate cannot be cancelled.
    let (s, _) = status_of(client.rp_certs_cancel(&admin.cert(id)).await);
    assert_eq!(s, 409);
    // Revoked: OCSP says so at once, and the CRL lists it.
    let r = client.rp_certs_revoke(&admin.cert(id)).await.unwrap();
    assert_eq!(r.state, RpCertState::Revoked);
    assert!(ocsp(&dir, &server, "cert.pem").contains("cert.pem: revoked"));
    let serial = r.serial_number.clone().unwrap();
    let (s, crl) = http(&server, "GET", "/crl/issuing.crl", b"").unwrap();
    assert_eq!(s, 200);
    std::fs::write(dir.join("issuing.crl"), &crl).unwrap();
    let (ok, crl_text) = openssl(
        &dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "issuing.crl",
            "-noout",
            "-text",
        ],
    );
    assert!(
        ok && crl_text.to_lowercase().replace(':', "").contains(&serial),
        "{serial}: {crl_text}"
    );

    // Cancel while the CA cannot sign: a voucher; redeemed once for the credit.
    server
        .operator(&["rp-credit", "--rp", RP_UUID, "--add", "1"])
        .unwrap();
    server.kill();
    server.set_env("TANDEM_TEST_FAIL_CA_SIGN", "1");
    server.restart().unwrap();
    let made = client
        .rp_certs_create(&admin.create(RP_UUID, vec![("late".into(), good.clone())]))
        .await
        .unwrap();
    assert_eq!(made.credits, 0);
    let cancelled = client
        .rp_certs_cancel(&admin.cert(&made.certificates[0].id))
        .await
        .unwrap();
    let code = cancelled.voucher.code.clone();
    let o = admin.settled(Duration::from_secs(10)).await;
    assert_eq!(o.vouchers.len(), 1);
    assert!(o.vouchers[0].code.ends_with(&code[code.len() - 4..]));
    let (s, _) = status_of(
        client
            .rp_certs_redeem(&admin.redeem("TV-0000-0000-0000"))
            .await,
    );
    assert_eq!(s, 404);
    let r = client
        .rp_certs_redeem(&admin.redeem(&code.to_lowercase()))
        .await
        .unwrap();
    assert_eq!(r.credits, 1);
    let (s, _) = status_of(client.rp_certs_redeem(&admin.redeem(&code)).await);
    assert_eq!(s, 409);

    // kill -9 with 300 queued (the CA still cannot sign), restart with the CA working: all
    // issued, nothing twice.
    server
        .operator(&["rp-credit", "--rp", RP_UUID, "--add", "299"])
        .unwrap();
    let many: Vec<(String, String)> = (0..300)
        .map(|i| (format!("bulk {i}"), good.clone()))
        .collect();
    let made = client
        .rp_certs_create(&admin.create(RP_UUID, many))
        .await
        .unwrap();
    assert_eq!(made.credits, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    let before = server.operator(&["rp-certs", "--rp", RP_UUID]).unwrap();
    let busy = before
        .lines()
        .filter(|l| l.contains("QUEUED") || l.contains("CREATING"))
        .count();
    assert_eq!(busy, 300, "{before}");
    server.clear_env();
    server.restart().unwrap();
    // Killed again while it signs; then it finishes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill();
    server.restart().unwrap();
    let rp = admin.settled(Duration::from_secs(180)).await;
    let ready: Vec<_> = rp
        .certificates
        .iter()
        .filter(|c| c.state == RpCertState::Ready)
        .collect();
    assert_eq!(ready.len(), 301, "1 earlier + 300");
    let mut serials: Vec<&str> = rp
        .certificates
        .iter()
        .filter_map(|c| c.serial_number.as_deref())
        .collect();
    serials.sort_unstable();
    serials.dedup();
    assert_eq!(serials.len(), 302, "distinct serials: 2 earlier + 300");
    assert_eq!(rp.credits, 0);
    assert!(rp.vouchers.is_empty());
    let listed = server.operator(&["rp-certs", "--rp", RP_UUID]).unwrap();
    assert!(listed.contains("0 credits, 0 open vouchers"), "{listed}");
    assert_eq!(
        listed.lines().filter(|l| l.contains("READY")).count(),
        301,
        "{listed}"
    );
    assert_eq!(
        listed.lines().filter(|l| l.contains("CANCELLED")).count(),
        1,
        "{listed}"
    );
    server.assert_audit_intact();
    let audit = server.operator(&["audit"]).unwrap();
    for event in [
        "rp_credit_added",
        "rp_admin_added",
        "rp_certs_queued",
        "rp_certs_issued",
        "rp_cert_cancelled",
        "rp_voucher_issued",
        "rp_voucher_redeemed",
        "rp_cert_revoked",
    ] {
        assert!(audit.contains(event), "{event} missing");
    }
}
