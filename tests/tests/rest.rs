//! The REST relying-party API (Smart-ID RP API v3 compatible) against a real server
//! process: bad input, relying-party checks, long-poll bounds, idempotency, device links
//! (tampered authCode, stale QR codes) and every end result the app can cause.

#![allow(clippy::unwrap_used)] // tests

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_proto::v1 as pb;
use tandem_rp::api::device_link::{
    self, AuthCodeContext, DeviceLinkType, LinkParams, SessionBinding, SessionType,
};
use tandem_tests::*;

const CHALLENGE: &str =
    "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg==";

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn pin_interactions() -> String {
    b64(r#"[{"type":"displayTextAndPIN","displayText60":"Log in to Tandem Test Bank"}]"#)
}

fn random_challenge() -> String {
    let mut b = [0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    STANDARD.encode(b)
}

fn auth_body(interactions: &str, challenge: &str) -> String {
    json!({
        "relyingPartyUUID": RP_UUID,
        "relyingPartyName": RP_NAME,
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": {
            "rpChallenge": challenge,
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": interactions,
        "vcType": "numeric4"
    })
    .to_string()
}

fn sign_body(nonce: Option<&str>) -> String {
    rest_sign_body(SIGN_WITH_PIN, nonce)
}

fn started_sessions(server: &TestServer) -> usize {
    server
        .operator(&["audit"])
        .unwrap()
        .matches("transaction_started")
        .count()
}

fn assert_problem(status: u16, body: &Value, want: u16) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["status"], json!(want), "{body}");
    assert!(
        body["title"].is_string() && body["type"].is_string(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_relying_parties_long_poll_bounds_and_idempotency() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let doc = state.document_number.clone();
    let auth_path = format!("/v3/authentication/notification/document/{doc}");
    let before = started_sessions(&server);

    // Malformed JSON, wrong types, oversized texts, forbidden nonce: 400, nothing started.
    let (s, b) = rest(&server, "POST", &auth_path, "{not json").unwrap();
    assert_problem(s, &b, 400);
    let wrong_type = auth_body(&pin_interactions(), CHALLENGE).replace(
        &format!("\"relyingPartyUUID\":\"{RP_UUID}\""),
        "\"relyingPartyUUID\":5",
    );
    let (s, b) = rest(&server, "POST", &auth_path, &wrong_type).unwrap();
    assert_problem(s, &b, 400);
    let long = format!(
        r#"[{{"type":"displayTextAndPIN","displayText60":"{}"}}]"#,
        "x".repeat(61)
    );
    let (s, b) = rest(
        &server,
        "POST",
        &auth_path,
        &auth_body(&b64(&long), CHALLENGE),
    )
    .unwrap();
    assert_problem(s, &b, 400);
    let mut with_nonce: Value =
        serde_json::from_str(&auth_body(&pin_interactions(), CHALLENGE)).unwrap();
    with_nonce["nonce"] = json!("abc");
    let (s, b) = rest(&server, "POST", &auth_path, &with_nonce.to_string()).unwrap();
    assert_problem(s, &b, 400);

    // Unknown relying party (UUID, or the right UUID with another name): 401.
    let stranger = auth_body(&pin_interactions(), CHALLENGE)
        .replace(RP_UUID, "00000000-0000-4000-8000-00000000dead");
    let (s, b) = rest(&server, "POST", &auth_path, &stranger).unwrap();
    assert_problem(s, &b, 401);
    let renamed = auth_body(&pin_interactions(), CHALLENGE).replace(RP_NAME, "Other Bank");
    let (s, b) = rest(&server, "POST", &auth_path, &renamed).unwrap();
    assert_problem(s, &b, 401);

    // Unknown document number and person: 404.
    let (s, b) = rest(
        &server,
        "POST",
        "/v3/authentication/notification/document/PNOEE-00000000000-ZZZZ-Q",
        &auth_body(&pin_interactions(), CHALLENGE),
    )
    .unwrap();
    assert_problem(s, &b, 404);
    let (s, b) = rest(
        &server,
        "POST",
        "/v3/authentication/notification/etsi/PNOLV-12345678901",
        &auth_body(&pin_interactions(), CHALLENGE),
    )
    .unwrap();
    assert_problem(s, &b, 404);
    assert_eq!(
        started_sessions(&server),
        before,
        "a refused request left a session"
    );

    // Long-poll bounds.
    let (s, b) = rest(
        &server,
        "POST",
        &auth_path,
        &auth_body(&pin_interactions(), CHALLENGE),
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    let id = b["sessionID"].as_str().unwrap().to_owned();
    assert_eq!(
        started_sessions(&server),
        before + 1,
        "the audit log counts sessions"
    );
    for bad in ["999", "120001", "abc", "-5"] {
        let (s, b) = rest(
            &server,
            "GET",
            &format!("/v3/session/{id}?timeoutMs={bad}"),
            "",
        )
        .unwrap();
        assert_problem(s, &b, 400);
    }
    let (s, b) = rest(
        &server,
        "GET",
        "/v3/session/6f9619ff-8b86-4011-b42d-00c04fc964ff?timeoutMs=1000",
        "",
    )
    .unwrap();
    assert_problem(s, &b, 404);
    let t0 = std::time::Instant::now();
    let (s, b) = rest(
        &server,
        "GET",
        &format!("/v3/session/{id}?timeoutMs=1000"),
        "",
    )
    .unwrap();
    assert_eq!((s, b["state"].as_str()), (200, Some("RUNNING")), "{b}");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(950));
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));

    // Idempotency: the same signing request gets the same session and code; another nonce
    // makes a new one.
    let sign_path = format!("/v3/signature/notification/document/{doc}");
    let (s1, a) = rest(&server, "POST", &sign_path, &sign_body(None)).unwrap();
    let (s2, b) = rest(&server, "POST", &sign_path, &sign_body(None)).unwrap();
    assert_eq!((s1, s2), (200, 200), "{a} {b}");
    assert_eq!(a["sessionID"], b["sessionID"]);
    assert_eq!(a["vc"], b["vc"]);
    assert_eq!(a["vc"]["type"], json!("numeric4"));
    let (s3, c) = rest(&server, "POST", &sign_path, &sign_body(Some("nonce-1"))).unwrap();
    assert_eq!(s3, 200, "{c}");
    assert_ne!(a["sessionID"], c["sessionID"]);
    // Unknown paths are problems too.
    let (s, b) = rest(&server, "GET", "/v3/nothing-here", "").unwrap();
    assert_problem(s, &b, 404);
    // Test accounts are off by default: their endpoint does not exist and none was made.
    let (s, b) = rest(
        &server,
        "POST",
        "/v3/test-accounts/device-link",
        r#"{"deviceLink":"x","documentNumber":"PNOEE-40504040001-MOCK-Q"}"#,
    )
    .unwrap();
    assert_problem(s, &b, 404);
    assert!(!server.operator(&["accounts"]).unwrap().contains("MOCK"));
}

/// Refuses a session as an app waiting for another one (the linked signing session).
async fn expect_linked(
    client: &dev::Client,
    state: &tandem_client_core::state::DeviceState,
    id: &str,
) -> dev::Result<()> {
    dev::refuse_with(
        client,
        state,
        id,
        pb::RefuseReason::ExpectedLinkedSession,
        "",
    )
    .await
}

async fn start_auth(server: &TestServer, doc: &str, interactions: &str) -> String {
    let (s, b) = rest(
        server,
        "POST",
        &format!("/v3/authentication/notification/document/{doc}"),
        &auth_body(interactions, &random_challenge()),
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    b["sessionID"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_end_result_and_device_link_checks() {
    // While this file exists the HSM's raw RSA operation fails (server test hook).
    let faults = tempfile::tempdir().unwrap();
    let hsm_fault = faults.path().join("fail-sign-raw");
    let server = TestServer::start(ServerOptions {
        lockout: Some(short_lockout(600, 600)),
        timeouts: Some(timeouts(900, 10)),
        rp_api: Some(rp_api_table(2, false)),
        env: vec![(
            "TANDEM_TEST_FAIL_SIGN_RAW".into(),
            hsm_fault.display().to_string(),
        )],
        ..Default::default()
    })
    .unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let doc = state.document_number.clone();
    let client = server.device_client().await.unwrap();
    let pin1 = Pin::new("1234").unwrap();

    // USER_REFUSED.
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    let t = pending_session(&client, &state, &id).await.unwrap();
    assert_eq!(
        dev::prompt(&state, &t).unwrap().display_text,
        "Log in to Tandem Test Bank"
    );
    dev::refuse(&client, &state, &id).await.unwrap();
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("USER_REFUSED")
    );

    // USER_REFUSED_INTERACTION names the interaction; an interaction not in the session's
    // list is refused and ends nothing.
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    pending_session(&client, &state, &id).await.unwrap();
    assert!(
        dev::refuse_with(
            &client,
            &state,
            &id,
            pb::RefuseReason::Interaction,
            "confirmationMessage"
        )
        .await
        .is_err()
    );
    dev::refuse_with(
        &client,
        &state,
        &id,
        pb::RefuseReason::Interaction,
        "displayTextAndPIN",
    )
    .await
    .unwrap();
    let b = rest_session_result(&server, &id).unwrap();
    assert_eq!(b["result"]["endResult"], json!("USER_REFUSED_INTERACTION"));
    assert_eq!(
        b["result"]["details"]["interaction"],
        json!("displayTextAndPIN")
    );

    // REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP.
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    pending_session(&client, &state, &id).await.unwrap();
    dev::refuse_with(
        &client,
        &state,
        &id,
        pb::RefuseReason::InteractionNotSupported,
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP")
    );

    // WRONG_VC: the three-code choice, wrong pick; no PIN attempt counted.
    let vc_choice = b64(
        r#"[{"type":"confirmationMessageAndVerificationCodeChoice","displayText200":"Log in to Tandem Test Bank from a new computer?"}]"#,
    );
    let id = start_auth(&server, &doc, &vc_choice).await;
    let t = pending_session(&client, &state, &id).await.unwrap();
    let p = dev::prompt(&state, &t).unwrap();
    assert_eq!(p.vc_choices.len(), 3);
    let wrong = p
        .vc_choices
        .iter()
        .find(|c| **c != p.verification_code)
        .unwrap()
        .clone();
    let r = dev::confirm(&client, &mut state, &t, &pin1, Some(&wrong))
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::WrongVc as i32);
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("WRONG_VC")
    );

    // The right pick with the right PIN: OK, with the interaction used reported.
    let id = start_auth(&server, &doc, &vc_choice).await;
    let t = pending_session(&client, &state, &id).await.unwrap();
    let p = dev::prompt(&state, &t).unwrap();
    let r = dev::confirm(&client, &mut state, &t, &pin1, Some(&p.verification_code))
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let b = rest_session_result(&server, &id).unwrap();
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert_eq!(
        b["interactionTypeUsed"],
        json!("confirmationMessageAndVerificationCodeChoice")
    );
    assert_eq!(b["signature"]["flowType"], json!("Notification"));
    assert_eq!(b["signatureProtocol"], json!("ACSP_V2"));
    assert_eq!(b["result"]["documentNumber"], json!(doc));

    // PROTOCOL_FAILURE: the app's x does not encode the digest the server derives (here
    // the user challenge was changed after signing). No PIN attempt is counted.
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    let t = pending_session(&client, &state, &id).await.unwrap();
    let key = dev::transport_key(&client).await.unwrap();
    let mut prepared = dev::prepare_confirm(&state, &t, &pin1, None, &key).unwrap();
    prepared.request.user_challenge = "A".repeat(43);
    let r = dev::send_confirm(&client, &mut state, &prepared)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::TransactionClosed as i32);
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("PROTOCOL_FAILURE")
    );

    // SERVER_ERROR: the HSM fails during a confirmation. The app gets a clear error, the
    // session ends with SERVER_ERROR, the PIN attempt is not counted (the count stays at the
    // one wrong PIN before), and once the HSM works again the next session succeeds.
    let auth_failures = |ks: Vec<pb::KeyPairState>| {
        ks.iter()
            .find(|k| k.key_type == pb::KeyType::Auth as i32)
            .unwrap()
            .consecutive_failures
    };
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    let t = pending_session(&client, &state, &id).await.unwrap();
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("9999").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::WrongPin as i32);
    assert_eq!(
        auth_failures(dev::key_state(&client, &state).await.unwrap()),
        1
    );
    std::fs::write(&hsm_fault, b"").unwrap();
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    let t = pending_session(&client, &state, &id).await.unwrap();
    let e = dev::confirm(&client, &mut state, &t, &pin1, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("SERVER_ERROR"), "{e}");
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("SERVER_ERROR")
    );
    assert_eq!(
        auth_failures(dev::key_state(&client, &state).await.unwrap()),
        1
    );
    std::fs::remove_file(&hsm_fault).unwrap();
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    let t = pending_session(&client, &state, &id).await.unwrap();
    let r = dev::confirm(&client, &mut state, &t, &pin1, None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("OK")
    );
    assert_eq!(
        auth_failures(dev::key_state(&client, &state).await.unwrap()),
        0
    );
    assert!(server.log().contains("share evaluation failed"));

    // TIMEOUT: nobody answers within the session's 10 s.
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("TIMEOUT")
    );

    // Device links: a correct QR link is accepted; a tampered authCode, a link for another
    // session type and a stale QR code are refused and leave the session running.
    let challenge = random_challenge();
    let body = auth_body(&pin_interactions(), &challenge).replace(",\"vcType\":\"numeric4\"", "");
    let (s, start) = rest(
        &server,
        "POST",
        "/v3/authentication/device-link/anonymous",
        &body,
    )
    .unwrap();
    assert_eq!(s, 200, "{start}");
    let id = start["sessionID"].as_str().unwrap().to_owned();
    assert_eq!(start["deviceLinkBase"], json!(DEVICE_LINK_BASE));
    let secret = STANDARD
        .decode(start["sessionSecret"].as_str().unwrap())
        .unwrap();
    let token = start["sessionToken"].as_str().unwrap().to_owned();
    let interactions = pin_interactions();
    let ctx = AuthCodeContext {
        scheme_name: "smart-id",
        binding: SessionBinding::Auth {
            rp_challenge: &challenge,
        },
        relying_party_name: RP_NAME,
        brokered_rp_name: None,
        interactions: &interactions,
        initial_callback_url: None,
    };
    let link = |elapsed: u64| {
        device_link::build_device_link(
            &LinkParams {
                device_link_base: DEVICE_LINK_BASE,
                link_type: DeviceLinkType::Qr,
                session_token: &token,
                session_type: SessionType::Auth,
                lang: "eng",
                elapsed_seconds: elapsed,
            },
            &ctx,
            &secret,
        )
    };
    let good = link(0);
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let e = dev::claim_device_link(&client, &state, &tampered)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("authCode"), "{e}");
    let forged_type = good.replace("sessionType=auth", "sessionType=sign");
    assert!(
        dev::claim_device_link(&client, &state, &forged_type)
            .await
            .is_err()
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // 3 s later (QR codes may be 2 s old here): the code built at 0 s is too old, one
    // claiming 40 s comes from the future, the current one is accepted.
    let e = dev::claim_device_link(&client, &state, &link(0))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("too old"), "{e}");
    let from_future = link(40);
    let e = dev::claim_device_link(&client, &state, &from_future)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("future"), "{e}");
    let (_, b) = rest(
        &server,
        "GET",
        &format!("/v3/session/{id}?timeoutMs=1000"),
        "",
    )
    .unwrap();
    assert_eq!(
        b["state"],
        json!("RUNNING"),
        "refused links must not end the session"
    );
    let t = dev::claim_device_link(&client, &state, &link(3))
        .await
        .unwrap();
    assert_eq!(t.transaction_id, id);
    assert_eq!(t.rp_api.as_ref().unwrap().flow_type, "QR");
    let r = dev::confirm(&client, &mut state, &t, &pin1, None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let b = rest_session_result(&server, &id).unwrap();
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert_eq!(b["signature"]["flowType"], json!("QR"));
    assert_eq!(b["signature"]["userChallenge"].as_str().unwrap().len(), 43);
    assert!(b["signature"]["serverRandom"].as_str().unwrap().len() >= 24);
    assert_eq!(
        b["signature"]["signatureAlgorithmParameters"]["saltLength"],
        json!(64)
    );
    assert_eq!(b["cert"]["certificateLevel"], json!("QUALIFIED"));

    // Certificate choice over a device link, cancelled: USER_REFUSED_CERT_CHOICE.
    // (A fresh nonce each time: an identical request would return the same session.)
    let start_cert_choice = || {
        let body = json!({"relyingPartyUUID": RP_UUID, "relyingPartyName": RP_NAME,
                          "nonce": &random_challenge()[..20]})
        .to_string();
        let (s, start) = rest(
            &server,
            "POST",
            "/v3/signature/certificate-choice/device-link/anonymous",
            &body,
        )
        .unwrap();
        assert_eq!(s, 200, "{start}");
        let id = start["sessionID"].as_str().unwrap().to_owned();
        let secret = STANDARD
            .decode(start["sessionSecret"].as_str().unwrap())
            .unwrap();
        let token = start["sessionToken"].as_str().unwrap().to_owned();
        let link = device_link::build_device_link(
            &LinkParams {
                device_link_base: DEVICE_LINK_BASE,
                link_type: DeviceLinkType::Qr,
                session_token: &token,
                session_type: SessionType::Cert,
                lang: "eng",
                elapsed_seconds: 0,
            },
            &AuthCodeContext {
                binding: SessionBinding::Cert,
                ..ctx
            },
            &secret,
        );
        (id, link)
    };
    let (id, cert_link) = start_cert_choice();
    let t = dev::claim_device_link(&client, &state, &cert_link)
        .await
        .unwrap();
    assert!(dev::prompt(&state, &t).unwrap().certificate_choice);
    dev::refuse_with(&client, &state, &id, pb::RefuseReason::CertChoice, "")
        .await
        .unwrap();
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("USER_REFUSED_CERT_CHOICE")
    );

    // EXPECTED_LINKED_SESSION: after answering a device-link certificate choice the app
    // waits for the linked signing session; a different session that arrives is refused with
    // that result. An app that waits for nothing cannot use this reason, nor refuse the
    // linked session with it; the linked session then signs.
    let other = start_auth(&server, &doc, &pin_interactions()).await;
    pending_session(&client, &state, &other).await.unwrap();
    assert!(expect_linked(&client, &state, &other).await.is_err());
    let (cert_id, cert_link) = start_cert_choice();
    let t = dev::claim_device_link(&client, &state, &cert_link)
        .await
        .unwrap();
    let prepared = dev::prepare_certificate_choice(&state, &t).unwrap();
    let r = dev::send_confirm(&client, &mut state, &prepared)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let b = rest_session_result(&server, &cert_id).unwrap();
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert_eq!(b["result"]["documentNumber"], json!(doc));
    expect_linked(&client, &state, &other).await.unwrap();
    assert_eq!(
        rest_session_result(&server, &other).unwrap()["result"]["endResult"],
        json!("EXPECTED_LINKED_SESSION")
    );
    let mut linked: Value = serde_json::from_str(&sign_body(None)).unwrap();
    linked["linkedSessionID"] = json!(cert_id);
    let (s, b) = rest(
        &server,
        "POST",
        &format!("/v3/signature/notification/linked/{doc}"),
        &linked.to_string(),
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    let linked_id = b["sessionID"].as_str().unwrap().to_owned();
    let t = pending_session(&client, &state, &linked_id).await.unwrap();
    assert_eq!(
        dev::prompt(&state, &t).unwrap().linked_session_id,
        Some(cert_id.clone())
    );
    assert!(expect_linked(&client, &state, &linked_id).await.is_err());
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let b = rest_session_result(&server, &linked_id).unwrap();
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert!(b["signature"]["value"].is_string(), "{b}");

    // DOCUMENT_UNUSABLE: three wrong PINs lock the AUTH key; a new session ends at once.
    let wrong_pin = Pin::new("9999").unwrap();
    for _ in 0..3 {
        let id = start_auth(&server, &doc, &pin_interactions()).await;
        let t = pending_session(&client, &state, &id).await.unwrap();
        let r = dev::confirm(&client, &mut state, &t, &wrong_pin, None)
            .await
            .unwrap();
        assert_ne!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    }
    let id = start_auth(&server, &doc, &pin_interactions()).await;
    assert_eq!(
        rest_session_result(&server, &id).unwrap()["result"]["endResult"],
        json!("DOCUMENT_UNUSABLE")
    );
}
