//! No secret appears in the server's logs, even at the most verbose level.

#![allow(clippy::unwrap_used)] // tests

use base64::Engine as _;
use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn trace_logs_hold_no_secrets() {
    let server = TestServer::start(ServerOptions {
        log: Some("trace".into()),
        ..Default::default()
    })
    .unwrap();
    let (pin1, pin2) = ("90817263", "71625384");
    let mut state = register(&server, &MARY, pin1, pin2).await.unwrap();
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();
    let mut secrets: Vec<(String, Vec<u8>)> = vec![(
        "device secret".into(),
        state.device_secret.expose_secret().to_vec(),
    )];
    for kt in [KeyType::Auth, KeyType::Sign] {
        secrets.push((
            format!("{kt} clone token"),
            state.key_pair(kt).unwrap().clone_token.as_bytes().to_vec(),
        ));
    }
    // An authentication, a wrong PIN and a signature, so every path logs.
    for (kind, pin) in [
        (pb::TransactionKind::Authentication, pin1),
        (pb::TransactionKind::Signature, "00000000"),
        (pb::TransactionKind::Signature, pin2),
    ] {
        let s = start_tx(
            &mut rp,
            kind,
            &state.document_number,
            b"log test",
            pb::SignatureScheme::Pss,
            false,
        )
        .await
        .unwrap();
        let t = pending(&client, &state, &s.transaction_id).await.unwrap();
        let r = dev::confirm(&client, &mut state, &t, &Pin::new(pin).unwrap(), None)
            .await
            .unwrap();
        for kt in [KeyType::Auth, KeyType::Sign] {
            secrets.push((
                format!("{kt} clone token"),
                state.key_pair(kt).unwrap().clone_token.as_bytes().to_vec(),
            ));
        }
        if !r.next_clone_token.is_empty() {
            secrets.push(("next clone token".into(), r.next_clone_token.clone()));
        }
    }
    let hsm_pin = std::fs::read_to_string(server.data_dir.join("hsm/user-pin")).unwrap();
    let log = server.log();
    assert!(
        log.len() > 10_000,
        "trace logging is really on ({} bytes)",
        log.len()
    );
    assert!(log.contains("TRACE"), "trace level reached");
    assert!(
        log.contains(&state.account_id),
        "request handling is logged (with identifiers)"
    );
    for needle in [pin1, pin2, hsm_pin.trim()] {
        assert!(!log.contains(needle), "a PIN appears in the log");
    }
    for (name, bytes) in &secrets {
        for form in [
            hex::encode(bytes),
            hex::encode_upper(bytes),
            base64::engine::general_purpose::STANDARD.encode(bytes),
            format!("{bytes:?}"),
        ] {
            assert!(!log.contains(&form), "{name} appears in the log");
        }
    }
}
