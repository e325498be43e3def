//! HSM faults through the running server, on hsm-sim with its fault injection
//! (`TANDEM_HSM_SIM_FAULTS`, hsm-sim/README.md): an HSM error while a confirmation is judged
//! ends the transaction with SERVER_ERROR, the app gets a clear error, no PIN attempt is
//! counted, nothing is lost, and once the HSM works again the next transaction succeeds and
//! verifies with OpenSSL.

#![allow(clippy::unwrap_used)] // tests

use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_proto::v1 as pb;
use tandem_tests::*;

/// Replaces the fault file atomically (hsm-sim re-reads it when it changes).
fn set_faults(path: &std::path::Path, toml: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, toml).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A server on hsm-sim whose fault file (absent at first) is the returned path; the
/// directory lives as long as the returned guard.
fn server_with_faults() -> (TestServer, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.toml");
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        env: vec![("TANDEM_HSM_SIM_FAULTS".into(), faults.display().to_string())],
        ..Default::default()
    })
    .unwrap();
    (server, dir, faults)
}

fn sign_failures(ks: &[pb::KeyPairState]) -> u32 {
    ks.iter()
        .find(|k| k.key_type == pb::KeyType::Sign as i32)
        .unwrap()
        .consecutive_failures
}

#[tokio::test(flavor = "multi_thread")]
async fn hsm_error_during_confirmation_is_a_server_error_and_costs_no_pin_attempt() {
    let (server, _faults_dir, faults) = server_with_faults();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let rp = server.rp().await.unwrap();
    let pin2 = Pin::new("12345").unwrap();
    let doc = state.document_number.clone();
    let sign = |data: &'static [u8]| {
        let (mut rp, doc) = (rp.clone(), doc.clone());
        async move {
            start_tx(
                &mut rp,
                pb::TransactionKind::Signature,
                &doc,
                data,
                pb::SignatureScheme::Pss,
                false,
            )
            .await
            .unwrap()
        }
    };

    // Every C_Sign of the token fails: the in-token share exponentiation cannot run.
    set_faults(
        &faults,
        "[[fail]]\nfunction = \"C_Sign\"\nrv = \"CKR_DEVICE_ERROR\"\n",
    );
    let start = sign(b"contract 1").await;
    let t = pending(&client, &state, &start.transaction_id)
        .await
        .unwrap();
    let e = dev::confirm(&client, &mut state, &t, &pin2, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("SERVER_ERROR"), "{e}");
    let st = status(&mut rp.clone(), &start.transaction_id)
        .await
        .unwrap();
    assert_eq!(st.state, pb::TransactionState::Complete as i32);
    assert_eq!(st.end_result, pb::EndResult::ServerError as i32);
    assert!(st.signature.is_empty());
    assert_eq!(
        sign_failures(&dev::key_state(&client, &state).await.unwrap()),
        0,
        "no PIN attempt counted"
    );
    assert!(server.log().contains("share evaluation failed"));

    // The HSM works again: the next transaction succeeds and verifies.
    set_faults(&faults, "");
    let start = sign(b"contract 2").await;
    let t = pending(&client, &state, &start.transaction_id)
        .await
        .unwrap();
    let r = dev::confirm(&client, &mut state, &t, &pin2, None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let st = status(&mut rp.clone(), &start.transaction_id)
        .await
        .unwrap();
    assert_eq!(st.end_result, pb::EndResult::Ok as i32);
    openssl_verify(
        server.tmp.path(),
        &st.key_pair.unwrap().public_key_der,
        b"contract 2",
        &st.signature,
        true,
    )
    .unwrap();
    assert!(
        server
            .operator(&["audit", "--verify"])
            .unwrap()
            .contains("intact")
    );
}

/// Polls `GET /health` (at most 30 s) until it answers `want`; returns the body.
fn wait_for_health(server: &TestServer, want: u16) -> String {
    let mut last = String::new();
    for _ in 0..60 {
        let (status, body) = http(server, "GET", "/health", b"").unwrap();
        last = String::from_utf8_lossy(&body).into_owned();
        if status == want {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("/health never answered {want}; last: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_token_makes_the_server_unhealthy_until_it_returns() {
    let (server, _faults_dir, faults) = server_with_faults();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let body = wait_for_health(&server, 200);
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    // The token is pulled: /health answers 503 with the reason, promptly.
    set_faults(&faults, "token_removed = true\n");
    let started = std::time::Instant::now();
    let body = wait_for_health(&server, 503);
    assert!(body.contains("unhealthy"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // It comes back: the server logs in again by itself and signs.
    set_faults(&faults, "token_removed = false\n");
    wait_for_health(&server, 200);
    assert!(server.log().contains("logged in again"), "{}", server.log());
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();
    let start = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        b"after the token came back",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &state, &start.transaction_id)
        .await
        .unwrap();
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let st = status(&mut rp, &start.transaction_id).await.unwrap();
    assert_eq!(st.end_result, pb::EndResult::Ok as i32);
    openssl_verify(
        server.tmp.path(),
        &st.key_pair.unwrap().public_key_der,
        b"after the token came back",
        &st.signature,
        true,
    )
    .unwrap();
}
