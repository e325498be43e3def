//! The self-service portal's endpoints against a real server, a phone registered through
//! the gRPC device API and the portal as a relying party using `RpApiClient`: the overview
//! lists the holder's account, keys, certificates (downloadable: OpenSSL reads them) and the
//! AUTH transaction just made; three wrong PIN2 lock the SIGN key and the overview says until
//! when; a relying party without the permission gets 403, another relying party's session
//! 404, a session older than `rp_api.portal_session_seconds` 410; a deletion with a fresh
//! session deletes the account (the operator sees it deleted, OCSP answers revoked), a
//! second one with the same session gets 409, another person's document number 404.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tandem_client_core::grpc::{self as dev, Client};
use tandem_client_core::pin::Pin;
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_rp::api::portal::{
    KeyPurpose, KeyStatus, PortalDeleteAccountRequest, PortalOverview, PortalOverviewRequest,
    TransactionApi, TransactionKind, TransactionResult,
};
use tandem_rp::client::{ClientConfig, Error, RpApiClient};
use tandem_tests::*;

/// The portal: a relying party with the permission.
const PORTAL_UUID: &str = "00000000-0000-4000-8000-0000000000c1";
const PORTAL_NAME: &str = "Tandem Portal";
/// Another relying party with the permission.
const OTHER_UUID: &str = "00000000-0000-4000-8000-0000000000c2";
const OTHER_NAME: &str = "Other Portal";
/// How long a login lasts for the overview here (seconds).
const PORTAL_SESSION_SECONDS: u64 = 8;
/// The first lock (after three wrong PINs) lasts this long here (seconds).
const LOCK_SECONDS: i64 = 600;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An AUTH notification session of `rp` for `doc`, confirmed with PIN1 on the phone; its id.
async fn login(
    server: &TestServer,
    phone: &Client,
    state: &mut DeviceState,
    (uuid, name): (&str, &str),
) -> String {
    // A new challenge each time: an identical request would be the same session.
    let mut challenge = [0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut challenge);
    let body = json!({
        "relyingPartyUUID": uuid,
        "relyingPartyName": name,
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": {
            "rpChallenge": STANDARD.encode(challenge),
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": b64_json(r#"[{"type":"displayTextAndPIN","displayText60":"Log in to the portal"}]"#),
        "vcType": "numeric4",
    });
    let doc = state.document_number.clone();
    let (s, b) = rest(
        server,
        "POST",
        &format!("/v3/authentication/notification/document/{doc}"),
        &body.to_string(),
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    let id = b["sessionID"].as_str().unwrap().to_owned();
    let t = match pending_session(phone, state, &id).await {
        Ok(t) => t,
        Err(e) => {
            let log = server.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!("{e}; server log (newest first):\n{}", tail.join("\n"));
        }
    };
    let r = dev::confirm(phone, state, &t, &Pin::new("1234").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32, "{r:?}");
    let done = rest_session_result(server, &id).unwrap();
    assert_eq!(done["result"]["endResult"], "OK", "{done}");
    id
}

fn overview_req(session: &str, (uuid, name): (&str, &str)) -> PortalOverviewRequest {
    PortalOverviewRequest {
        relying_party_uuid: uuid.into(),
        relying_party_name: name.into(),
        auth_session_id: session.into(),
    }
}

fn delete_req(session: &str, doc: &str) -> PortalDeleteAccountRequest {
    PortalDeleteAccountRequest {
        relying_party_uuid: PORTAL_UUID.into(),
        relying_party_name: PORTAL_NAME.into(),
        auth_session_id: session.into(),
        document_number: doc.into(),
    }
}

/// The HTTP status of a refusal.
fn status_of<T: std::fmt::Debug>(r: Result<T, Error>) -> u16 {
    match r {
        Err(Error::Problem { status, .. }) => status,
        other => panic!("expected a problem answer, got {other:?}"),
    }
}

fn key(o: &PortalOverview, purpose: KeyPurpose) -> &tandem_rp::api::portal::PortalKey {
    o.accounts[0]
        .keys
        .iter()
        .find(|k| k.purpose == purpose)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_overview_lockout_refusals_and_deletion() {
    let table = format!(
        "{}portal_session_seconds = {PORTAL_SESSION_SECONDS}\n",
        rp_api_table(60, false)
    );
    let server = TestServer::start(ServerOptions {
        rp_api: Some(table),
        lockout: Some(short_lockout(LOCK_SECONDS, 2 * LOCK_SECONDS)),
        ..Default::default()
    })
    .unwrap();
    for (uuid, name) in [(PORTAL_UUID, PORTAL_NAME), (OTHER_UUID, OTHER_NAME)] {
        let out = server
            .operator(&["rp-add", "--uuid", uuid, "--name", name, "--portal"])
            .unwrap();
        assert!(out.contains("may use the portal endpoints"), "{out}");
    }
    let rps = server.operator(&["rps"]).unwrap();
    let line = |uuid: &str| {
        rps.lines()
            .find(|l| l.starts_with(uuid))
            .unwrap()
            .to_owned()
    };
    assert!(line(PORTAL_UUID).ends_with("portal"), "{rps}");
    assert!(!line(RP_UUID).ends_with("portal"), "{rps}");

    let mut mary = register(&server, &MARY, "1234", "12345").await.unwrap();
    let other = register(&server, &OTHER, "1234", "12345").await.unwrap();
    let doc = mary.document_number.clone();
    let phone = server.device_client().await.unwrap();
    let portal = RpApiClient::new(ClientConfig::new(format!("{}/v3", server.rest_url))).unwrap();
    let me = (PORTAL_UUID, PORTAL_NAME);

    // The overview after a login: the account, both keys active, the certificates, the login.
    let s1 = login(&server, &phone, &mut mary, me).await;
    let s1_done = Instant::now();
    let o = portal
        .portal_overview(&overview_req(&s1, me))
        .await
        .unwrap();
    assert_eq!(o.holder.national_identity_number, MARY.id);
    assert_eq!(o.holder.given_name, MARY.given);
    assert_eq!(o.accounts.len(), 1, "{o:?}");
    let acc = &o.accounts[0];
    assert_eq!(acc.document_number, doc);
    for purpose in [KeyPurpose::Auth, KeyPurpose::Sign] {
        let k = key(&o, purpose);
        assert_eq!(
            (k.status, k.wrong_pin_attempts, k.attempts_left),
            (KeyStatus::Active, 0, 3)
        );
        assert!(k.locked_until.is_none());
    }
    // The login itself was a PIN1 entry.
    let last = acc.device.last_used.unwrap().unix_secs();
    assert!(now() - last < 60, "last use {last}");
    assert_eq!(acc.certificates.len(), 2);
    let dir = server.tmp.path().join("portal");
    std::fs::create_dir_all(&dir).unwrap();
    server
        .operator(&["export-ca", "--out", dir.to_str().unwrap()])
        .unwrap();
    for c in &acc.certificates {
        let der = STANDARD.decode(&c.der).unwrap();
        let kt = match c.purpose {
            KeyPurpose::Auth => KeyType::Auth,
            KeyPurpose::Sign => KeyType::Sign,
        };
        assert_eq!(
            der,
            mary.key_pair(kt).unwrap().certificate,
            "{:?}",
            c.purpose
        );
        assert!(c.subject.contains("PNOEE-30303039914"), "{}", c.subject);
        assert!(c.revoked.is_none());
        std::fs::write(dir.join(format!("{}.pem", c.serial)), cert_pem(&der)).unwrap();
        let (ok, text) = openssl(
            &dir,
            &[
                "x509",
                "-in",
                &format!("{}.pem", c.serial),
                "-noout",
                "-serial",
            ],
        );
        assert!(ok, "{text}");
        assert!(
            text.to_lowercase().contains(&c.serial),
            "{text} vs {}",
            c.serial
        );
    }
    assert_eq!(o.transactions.len(), 1, "{o:?}");
    let t = &o.transactions[0];
    assert_eq!(
        (t.kind, t.api, t.result),
        (
            TransactionKind::Authentication,
            TransactionApi::RpApiV3,
            TransactionResult::Ok
        )
    );
    assert_eq!(t.relying_party_name, PORTAL_NAME);
    assert_eq!(t.document_number.as_deref(), Some(doc.as_str()));

    // Refusals: no permission (403), another relying party's session (404, as none), an
    // unknown relying party (401), malformed (400).
    let plain = RpApiClient::new(ClientConfig::new(format!("{}/v3", server.rest_url))).unwrap();
    assert_eq!(
        status_of(
            plain
                .portal_overview(&overview_req(&s1, (RP_UUID, RP_NAME)))
                .await
        ),
        403
    );
    assert_eq!(
        status_of(
            portal
                .portal_overview(&overview_req(&s1, (OTHER_UUID, OTHER_NAME)))
                .await
        ),
        404
    );
    assert_eq!(
        status_of(
            portal
                .portal_overview(&overview_req("7d1e5c2a-9a57-4a55-9b1d-3d2f0b5c1a00", me))
                .await
        ),
        404
    );
    assert_eq!(
        status_of(
            portal
                .portal_overview(&overview_req(&s1, (OTHER_UUID, "Nobody")))
                .await
        ),
        401
    );
    let (s, b) = rest(
        &server,
        "POST",
        "/tandem/v1/portal/overview",
        r#"{"relyingPartyUUID":1}"#,
    )
    .unwrap();
    assert_eq!(s, 400, "{b}");
    // The operator allows the plain relying party: its own sessions only, still 404 here.
    server.operator(&["rp-portal", RP_UUID, "allow"]).unwrap();
    assert_eq!(
        status_of(
            plain
                .portal_overview(&overview_req(&s1, (RP_UUID, RP_NAME)))
                .await
        ),
        404
    );
    let out = server.operator(&["rp-portal", RP_UUID, "forbid"]).unwrap();
    assert!(
        out.contains("may not use the portal endpoints now"),
        "{out}"
    );

    // Three wrong PIN2 on a signing session: the SIGN key is locked.
    let (s, b) = rest(
        &server,
        "POST",
        &format!("/v3/signature/notification/document/{doc}"),
        &rest_sign_body(SIGN_WITH_PIN, None),
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    let sign_id = b["sessionID"].as_str().unwrap().to_owned();
    let t = pending_session(&phone, &mary, &sign_id).await.unwrap();
    let wrong = Pin::new("99999").unwrap();
    for n in 1..=3 {
        let r = dev::confirm(&phone, &mut mary, &t, &wrong, None)
            .await
            .unwrap();
        assert_ne!(
            r.outcome,
            pb::ConfirmOutcome::Accepted as i32,
            "attempt {n}: {r:?}"
        );
    }
    let locked_at = now();
    let s2 = login(&server, &phone, &mut mary, me).await;
    let o = portal
        .portal_overview(&overview_req(&s2, me))
        .await
        .unwrap();
    let sign = key(&o, KeyPurpose::Sign);
    assert_eq!(sign.status, KeyStatus::Locked, "{o:?}");
    assert_eq!(sign.wrong_pin_attempts, 3);
    // The next lock comes after three more wrong PINs.
    assert_eq!(sign.attempts_left, 3);
    let until = sign.locked_until.unwrap().unix_secs();
    let expected = locked_at + LOCK_SECONDS as u64;
    assert!(
        until + 30 >= expected && until <= expected + 1,
        "locked until {until}, expected about {expected}"
    );
    assert_eq!(key(&o, KeyPurpose::Auth).status, KeyStatus::Active);
    let kinds: Vec<(TransactionKind, TransactionResult, &str)> = o
        .transactions
        .iter()
        .map(|t| (t.kind, t.result, t.relying_party_name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                TransactionKind::Authentication,
                TransactionResult::Ok,
                PORTAL_NAME
            ),
            (
                TransactionKind::Signature,
                TransactionResult::DocumentUnusable,
                RP_NAME
            ),
            (
                TransactionKind::Authentication,
                TransactionResult::Ok,
                PORTAL_NAME
            ),
        ]
    );

    // The first login is too old for the overview now.
    let wait = (s1_done + Duration::from_secs(PORTAL_SESSION_SECONDS + 2))
        .saturating_duration_since(Instant::now());
    tokio::time::sleep(wait).await;
    assert_eq!(
        status_of(portal.portal_overview(&overview_req(&s1, me)).await),
        410
    );

    // Deletion with a fresh login: not another person's account; then MARY's.
    let s3 = login(&server, &phone, &mut mary, me).await;
    assert_eq!(
        status_of(
            portal
                .portal_delete_account(&delete_req(&s3, &other.document_number))
                .await
        ),
        404
    );
    let serials: Vec<String> = o.accounts[0]
        .certificates
        .iter()
        .map(|c| c.serial.clone())
        .collect();
    let done = portal
        .portal_delete_account(&delete_req(&s3, &doc))
        .await
        .unwrap();
    assert_eq!(done.deleted, doc);
    let mut revoked = done.revoked_certificates.clone();
    revoked.sort();
    let mut expected = serials.clone();
    expected.sort();
    assert_eq!(revoked, expected);
    assert_eq!(
        status_of(portal.portal_delete_account(&delete_req(&s3, &doc)).await),
        409
    );
    let accounts = server.operator(&["accounts"]).unwrap();
    let mary_line = accounts.lines().find(|l| l.starts_with(&doc)).unwrap();
    assert!(mary_line.contains("Deleted"), "{accounts}");
    let other_line = accounts
        .lines()
        .find(|l| l.starts_with(&other.document_number))
        .unwrap();
    assert!(other_line.contains("Active"), "{accounts}");
    // OCSP says revoked, for both certificates the portal listed.
    let root = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    let issuing = std::fs::read_to_string(dir.join("issuing.pem")).unwrap();
    std::fs::write(dir.join("chain.pem"), format!("{issuing}{root}")).unwrap();
    let url = format!("{}/ocsp", server.http_url);
    for serial in &serials {
        let (ok, out) = openssl(
            &dir,
            &[
                "ocsp",
                "-issuer",
                "issuing.pem",
                "-cert",
                &format!("{serial}.pem"),
                "-url",
                &url,
                "-CAfile",
                "chain.pem",
                "-nonce",
            ],
        );
        assert!(ok && out.contains("Response verify OK"), "{out}");
        assert!(out.contains(": revoked"), "{serial}: {out}");
    }
    // The holder has no account left to show.
    let o = portal
        .portal_overview(&overview_req(&s3, me))
        .await
        .unwrap();
    assert!(o.accounts.is_empty() && o.transactions.is_empty(), "{o:?}");
    let audit = server.operator(&["audit"]).unwrap();
    assert!(audit.contains("relying_party_portal"), "{audit}");
    assert!(audit.contains("\"by\":\"portal\""), "{audit}");
    server.assert_audit_intact();
}
