//! PIN lockout through real server processes: the table (3, 6, 9), resets, PIN1 and PIN2
//! counting separately, concurrent wrong PINs, and a SIGKILL between counting and judging.

#![allow(clippy::unwrap_used)] // tests

use std::time::Duration;

use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_client_core::state::DeviceState;
use tandem_proto::v1 as pb;
use tandem_tests::*;

async fn key_state(client: &dev::Client, state: &DeviceState, kt: pb::KeyType) -> pb::KeyPairState {
    dev::key_state(client, state)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.key_type == kt as i32)
        .unwrap()
}

fn outcome(r: &pb::ConfirmResponse) -> pb::ConfirmOutcome {
    pb::ConfirmOutcome::try_from(r.outcome).unwrap()
}

async fn auth_tx(server: &TestServer, state: &DeviceState, tag: &str) -> pb::PendingTransaction {
    let mut rp = server.rp().await.unwrap();
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Authentication,
        &state.document_number,
        tag.as_bytes(),
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    pending(
        &server.device_client().await.unwrap(),
        state,
        &s.transaction_id,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn walks_the_lockout_table() {
    let server = TestServer::start(ServerOptions {
        lockout: Some(short_lockout(2, 3)),
        ..Default::default()
    })
    .unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let wrong = Pin::new("9999").unwrap();
    let pin1 = Pin::new("1234").unwrap();

    // Two failures, then a success: the count resets.
    let t = auth_tx(&server, &state, "a").await;
    for n in 1..=2 {
        let r = dev::confirm(&client, &mut state, &t, &wrong, None)
            .await
            .unwrap();
        assert_eq!(outcome(&r), pb::ConfirmOutcome::WrongPin);
        assert_eq!(r.key_state.unwrap().consecutive_failures, n);
    }
    let r = dev::confirm(&client, &mut state, &t, &pin1, None)
        .await
        .unwrap();
    assert_eq!(outcome(&r), pb::ConfirmOutcome::Accepted);
    assert_eq!(
        key_state(&client, &state, pb::KeyType::Auth)
            .await
            .consecutive_failures,
        0
    );

    // PIN2 counts separately.
    let mut rp = server.rp().await.unwrap();
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        b"s",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let ts = pending(&client, &state, &s.transaction_id).await.unwrap();
    let r = dev::confirm(&client, &mut state, &ts, &wrong, None)
        .await
        .unwrap();
    assert_eq!(outcome(&r), pb::ConfirmOutcome::WrongPin);
    assert_eq!(
        key_state(&client, &state, pb::KeyType::Sign)
            .await
            .consecutive_failures,
        1
    );
    assert_eq!(
        key_state(&client, &state, pb::KeyType::Auth)
            .await
            .consecutive_failures,
        0
    );

    // 3 failures: locked (2 s). A transaction that was already waiting is not evaluated,
    // even with the right PIN.
    let t1 = auth_tx(&server, &state, "b").await;
    let t2 = auth_tx(&server, &state, "c").await;
    for n in 1..=3u32 {
        let r = dev::confirm(&client, &mut state, &t1, &wrong, None)
            .await
            .unwrap();
        assert_eq!(outcome(&r), pb::ConfirmOutcome::WrongPin, "failure {n}");
    }
    let ks = key_state(&client, &state, pb::KeyType::Auth).await;
    assert_eq!(ks.status, pb::KeyStatus::Locked as i32);
    assert_eq!(ks.consecutive_failures, 3);
    let r = dev::confirm(&client, &mut state, &t2, &pin1, None)
        .await
        .unwrap();
    assert_eq!(outcome(&r), pb::ConfirmOutcome::Locked);
    assert_eq!(
        key_state(&client, &state, pb::KeyType::Auth)
            .await
            .consecutive_failures,
        3,
        "not counted while locked"
    );
    let e = start_tx(
        &mut rp,
        pb::TransactionKind::Authentication,
        &state.document_number,
        b"d",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("locked"), "{e}");

    // After the lock: failures 4..6 lock again (3 s).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let t = auth_tx(&server, &state, "e").await;
    for _ in 4..=6 {
        let r = dev::confirm(&client, &mut state, &t, &wrong, None)
            .await
            .unwrap();
        assert_eq!(outcome(&r), pb::ConfirmOutcome::WrongPin);
    }
    let ks = key_state(&client, &state, pb::KeyType::Auth).await;
    assert_eq!(
        (ks.status, ks.consecutive_failures),
        (pb::KeyStatus::Locked as i32, 6)
    );
    assert!(ks.locked_until_unix > 0);

    // 7..9: disabled for good; the operator cannot unlock it.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let t = auth_tx(&server, &state, "f").await;
    for n in 7..=9 {
        let r = dev::confirm(&client, &mut state, &t, &wrong, None)
            .await
            .unwrap();
        let expected = if n == 9 {
            pb::ConfirmOutcome::Disabled
        } else {
            pb::ConfirmOutcome::WrongPin
        };
        assert_eq!(outcome(&r), expected, "failure {n}");
    }
    assert_eq!(
        key_state(&client, &state, pb::KeyType::Auth).await.status,
        pb::KeyStatus::Disabled as i32
    );
    let shown = server.operator(&["show", &state.document_number]).unwrap();
    assert!(shown.contains("PIN_LOCKOUT"), "{shown}");
    assert!(
        server
            .operator(&["unlock", &state.document_number, "--key", "auth"])
            .is_err()
    );
    // The SIGN key is unaffected.
    assert_eq!(
        key_state(&client, &state, pb::KeyType::Sign).await.status,
        pb::KeyStatus::Active as i32
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_unlocks_a_temporary_lock() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let t = auth_tx(&server, &state, "a").await;
    for _ in 0..3 {
        dev::confirm(&client, &mut state, &t, &Pin::new("0000").unwrap(), None)
            .await
            .unwrap();
    }
    assert_eq!(
        key_state(&client, &state, pb::KeyType::Auth).await.status,
        pb::KeyStatus::Locked as i32
    );
    server
        .operator(&["unlock", &state.document_number, "--key", "auth"])
        .unwrap();
    let t = auth_tx(&server, &state, "b").await;
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("1234").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(outcome(&r), pb::ConfirmOutcome::Accepted);
    let audit = server.operator(&["audit"]).unwrap();
    assert!(
        audit.contains("key_unlocked") && audit.contains("key_locked"),
        "{audit}"
    );
    server.assert_audit_intact();
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_wrong_pins_give_at_most_three_evaluations() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let t = auth_tx(&server, &state, "x").await;
    let info = client
        .raw()
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let wrong = Pin::new(&format!("{:04}", 5000 + i)).unwrap();
        let prepared =
            dev::prepare_confirm(&state, &t, &wrong, None, &info.transport_public_key_der).unwrap();
        let mut raw = client.raw();
        tasks.push(tokio::spawn(
            async move { raw.confirm(prepared.request).await },
        ));
    }
    let mut wrong_pin = 0;
    for task in tasks {
        let r = task.await.unwrap().unwrap().into_inner();
        match outcome(&r) {
            pb::ConfirmOutcome::WrongPin => wrong_pin += 1,
            pb::ConfirmOutcome::Locked | pb::ConfirmOutcome::TransactionClosed => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(wrong_pin, 3, "exactly three shares were judged");
    let ks = key_state(&client, &state, pb::KeyType::Auth).await;
    assert_eq!(ks.consecutive_failures, 3);
    assert_eq!(ks.status, pb::KeyStatus::Locked as i32);
    let audit = server.operator(&["audit"]).unwrap();
    assert_eq!(audit.matches("pin_failure").count(), 3, "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_between_count_and_verdict_keeps_the_attempt() {
    let mut server = TestServer::start(ServerOptions {
        env: vec![("TANDEM_TEST_PAUSE_AFTER_COUNT_MS".into(), "4000".into())],
        ..Default::default()
    })
    .unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let t = auth_tx(&server, &state, "k").await;
    let info = client
        .raw()
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    // Two wrong PINs and then the RIGHT one, killed after counting, before judging.
    for (i, pin) in ["0001", "0002", "1234"].iter().enumerate() {
        let prepared = dev::prepare_confirm(
            &state,
            &t,
            &Pin::new(pin).unwrap(),
            None,
            &info.transport_public_key_der,
        )
        .unwrap();
        let mut raw = dev::Client::connect(&server.url, &server.ca)
            .await
            .unwrap()
            .raw();
        let call = tokio::spawn(async move { raw.confirm(prepared.request).await });
        // Wait until the attempt is committed (bounded), then kill.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let shown = server.operator(&["show", &state.document_number]).unwrap();
            let auth_line = shown
                .lines()
                .find(|l| l.starts_with("AUTH key:"))
                .unwrap_or_default();
            if auth_line.ends_with(&format!("consecutive failures {}", i + 1)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "attempt never counted: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.kill();
        assert!(
            call.await.unwrap().is_err(),
            "the answer was lost with the process"
        );
        server.restart().unwrap();
    }
    let client = server.device_client().await.unwrap();
    let ks = key_state(&client, &state, pb::KeyType::Auth).await;
    assert_eq!(
        ks.consecutive_failures, 3,
        "all three counted attempts survived the kills"
    );
    assert_eq!(
        ks.status,
        pb::KeyStatus::Locked as i32,
        "the third counted attempt locked the key"
    );
}
