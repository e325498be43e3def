//! Test accounts (`rp_api.test_accounts`, the anchor's Mock Service): every account answers
//! with its fixed end result through the real device API, an `OK` verifies like any other
//! result (checked by `tandem rp-api`, which verifies chain, identity and signature with
//! OpenSSL), device links reach a test account through the test-account endpoint, and the
//! accounts survive a restart without being registered again.

#![allow(clippy::unwrap_used)] // tests

use serde_json::{Value, json};
use tandem_tests::*;

const OK: &str = "PNOEE-40504040001-MOCK-Q";

/// Starts a notification signature for `doc` with the interactions (JSON) and returns its
/// final status.
fn sign(server: &TestServer, doc: &str, interactions: &str) -> Value {
    let (s, b) = rest(
        server,
        "POST",
        &format!("/v3/signature/notification/document/{doc}"),
        &rest_sign_body(interactions, None),
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    rest_session_result(server, b["sessionID"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_test_account_answers_with_its_end_result() {
    let mut server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(60, true)),
        ..Default::default()
    })
    .unwrap();
    wait_for_test_accounts(&server);
    let accounts = server.operator(&["accounts"]).unwrap();
    assert_eq!(accounts.matches("-MOCK-Q").count(), 8, "{accounts}");

    // Notification signatures: every account's fixed result.
    for (doc, want) in [
        ("PNOEE-30403039917-MOCK-Q", "USER_REFUSED"),
        ("PNOEE-30403039928-MOCK-Q", "USER_REFUSED_INTERACTION"),
        (
            "PNOEE-30403039939-MOCK-Q",
            "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP",
        ),
        ("PNOEE-30403039961-MOCK-Q", "USER_REFUSED"),
        ("PNOEE-30403039972-MOCK-Q", "WRONG_VC"),
        ("PNOEE-30403039983-MOCK-Q", "TIMEOUT"),
        ("PNOEE-30403039994-MOCK-Q", "DOCUMENT_UNUSABLE"),
    ] {
        let b = sign(&server, doc, SIGN_WITH_PIN);
        assert_eq!(b["result"]["endResult"], json!(want), "{doc}: {b}");
        assert!(b["signature"].is_null(), "{b}");
        if want == "USER_REFUSED_INTERACTION" {
            assert_eq!(
                b["result"]["details"]["interaction"],
                json!("displayTextAndPIN"),
                "{b}"
            );
        }
    }
    // WRONG_VC through the real three-code choice, and the right code from OK.
    let choice = r#"[{"type":"confirmationMessageAndVerificationCodeChoice","displayText200":"Pay 10 EUR?"}]"#;
    let b = sign(&server, "PNOEE-30403039972-MOCK-Q", choice);
    assert_eq!(b["result"]["endResult"], json!("WRONG_VC"), "{b}");
    let b = sign(&server, OK, choice);
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert_eq!(
        b["interactionTypeUsed"],
        json!("confirmationMessageAndVerificationCodeChoice")
    );
    assert_eq!(b["result"]["documentNumber"], json!(OK));

    // Certificate choice: the cancelling account and the OK one.
    let cert_choice = |who: &str| {
        let (s, b) = rest(
            &server,
            "POST",
            &format!("/v3/signature/certificate-choice/notification/etsi/{who}"),
            &json!({"relyingPartyUUID": RP_UUID, "relyingPartyName": RP_NAME}).to_string(),
        )
        .unwrap();
        assert_eq!(s, 200, "{b}");
        rest_session_result(&server, b["sessionID"].as_str().unwrap()).unwrap()
    };
    let b = cert_choice("PNOEE-30403039961");
    assert_eq!(
        b["result"]["endResult"],
        json!("USER_REFUSED_CERT_CHOICE"),
        "{b}"
    );
    let b = cert_choice("PNOEE-40504040001");
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert!(b["cert"]["value"].is_string(), "{b}");

    // OK results verify: a notification signature and QR logins, verified step by step by
    // the relying-party command (chain against our CA, identity, signature).
    let file = server.tmp.path().join("contract.txt");
    std::fs::write(&file, "I agree.\n").unwrap();
    let out = rp_api_cli(
        &server,
        &["sign", "--document", OK, "--file", file.to_str().unwrap()],
    )
    .unwrap();
    assert!(
        out.contains("signature: OK (RSASSA-PSS SHA-512 over our digest)"),
        "{out}"
    );
    assert!(
        out.contains("identity: OK (OK TESTNUMBER, PNOEE-40504040001 (EE)"),
        "{out}"
    );
    for args in [
        vec!["login", "--no-terminal-qr", "--test-account", OK],
        vec![
            "login",
            "--no-terminal-qr",
            "--etsi",
            "PNOEE-40504040001",
            "--test-account",
            "named",
        ],
    ] {
        let out = rp_api_cli(&server, &args).unwrap();
        assert!(
            out.contains("signature: OK (RSASSA-PSS SHA-512 over the ACSP_V2 payload)")
                && out.contains("response fields: OK (flow QR"),
            "{out}"
        );
    }
    // A refusing account through a device link gives the refusal to the relying party.
    let e = rp_api_cli(
        &server,
        &[
            "login",
            "--no-terminal-qr",
            "--test-account",
            "PNOEE-30403039917-MOCK-Q",
        ],
    )
    .unwrap_err();
    assert!(e.contains("USER_REFUSED"), "{e}");
    // An anonymous session without a named account, and a tampered link, are refused.
    let e = rp_api_cli(
        &server,
        &["login", "--no-terminal-qr", "--test-account", "named"],
    )
    .unwrap_err();
    assert!(e.contains("anonymous session needs documentNumber"), "{e}");
    let (s, b) = rest(
        &server,
        "POST",
        "/v3/test-accounts/device-link",
        &json!({
            "deviceLink": format!("{DEVICE_LINK_BASE}?deviceLinkType=QR&elapsedSeconds=1&sessionToken=abcdefghijklmnopqrstuvwx&sessionType=auth&version=1.0&lang=eng&authCode=AAAA"),
            "documentNumber": OK
        })
        .to_string(),
    )
    .unwrap();
    assert_eq!(s, 400, "{b}");

    // After a restart the accounts are loaded, not registered again, and still sign.
    let registered = server.log().matches("registering test account").count();
    assert_eq!(registered, 8);
    server.restart().unwrap();
    wait_for_test_accounts(&server);
    assert_eq!(
        server.log().matches("registering test account").count(),
        registered
    );
    let b = sign(&server, OK, SIGN_WITH_PIN);
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert!(b["signature"]["value"].is_string(), "{b}");
}
