//! HSM faults through the running server, on hsm-sim with its fault injection
//! (`TANDEM_HSM_SIM_FAULTS`, hsm-sim/README.md): an HSM error while a confirmation is judged
//! ends the transaction with SERVER_ERROR, the app gets a clear error, no PIN attempt is
//! counted, nothing is lost, and once the HSM works again the next transaction succeeds and
//! verifies with OpenSSL.

#![allow(clippy::unwrap_used)] // tests

use tandem_client_core::grpc::{self as dev, Client as DeviceClient};
use tandem_client_core::pin::Pin;
use tandem_client_core::state::DeviceState;
use tandem_proto::v1 as pb;
use tandem_proto::v1::relying_party_client::RelyingPartyClient;
use tandem_tests::*;
use tonic::transport::Channel;

type RpClient = RelyingPartyClient<Channel>;

/// Replaces the fault file atomically (hsm-sim re-reads it when it changes).
fn set_faults(path: &std::path::Path, toml: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, toml).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A server on hsm-sim whose fault file (absent at first) is the returned path; the
/// directory lives as long as the returned guard.
fn server_with_faults() -> (TestServer, tempfile::TempDir, std::path::PathBuf) {
    server_with_faults_and(ServerOptions::default())
}

/// [`server_with_faults`] with more options.
fn server_with_faults_and(
    opts: ServerOptions,
) -> (TestServer, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.toml");
    let mut env = opts.env.clone();
    env.push(("TANDEM_HSM_SIM_FAULTS".into(), faults.display().to_string()));
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        env,
        ..opts
    })
    .unwrap();
    (server, dir, faults)
}

/// Starts a signature transaction for `doc` and returns its id.
async fn start_signature(rp: &RpClient, doc: &str, data: &[u8]) -> String {
    start_tx(
        &mut rp.clone(),
        pb::TransactionKind::Signature,
        doc,
        data,
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap()
    .transaction_id
}

/// Asserts that transaction `id` ended with SERVER_ERROR and no signature.
async fn assert_server_error(rp: &RpClient, id: &str) {
    let st = status(&mut rp.clone(), id).await.unwrap();
    assert_eq!(st.state, pb::TransactionState::Complete as i32);
    assert_eq!(st.end_result, pb::EndResult::ServerError as i32);
    assert!(st.signature.is_empty());
}

/// Signs `data` with the right PIN and checks the signature with OpenSSL.
async fn sign_and_verify(
    server: &TestServer,
    client: &DeviceClient,
    state: &mut DeviceState,
    rp: &RpClient,
    data: &'static [u8],
) {
    let id = start_signature(rp, &state.document_number, data).await;
    let t = pending(client, state, &id).await.unwrap();
    let r = dev::confirm(client, state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let st = status(&mut rp.clone(), &id).await.unwrap();
    assert_eq!(st.end_result, pb::EndResult::Ok as i32);
    openssl_verify(
        server.tmp.path(),
        &st.key_pair.unwrap().public_key_der,
        data,
        &st.signature,
        true,
    )
    .unwrap();
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
    server.assert_audit_intact();
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

#[tokio::test(flavor = "multi_thread")]
async fn hsm_timeout_during_confirmation_is_a_server_error_and_costs_no_pin_attempt() {
    let (server, _faults_dir, faults) = server_with_faults_and(ServerOptions {
        hsm_call_timeout_ms: Some(1000),
        ..Default::default()
    });
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let rp = server.rp().await.unwrap();

    // Every C_Sign of the token takes 1.5 s more (cryptoki calls it twice per signature,
    // for the length and the value; the evaluation signs once with the share and, for a
    // right PIN, once with the server key); the server waits 1 s for the whole evaluation. A wrong PIN and then the right one: both end with SERVER_ERROR, promptly, and
    // neither is counted (the answer does not depend on the PIN).
    set_faults(&faults, "[[latency]]\nfunction = \"C_Sign\"\nms = 1500\n");
    for pin in ["99999", "12345"] {
        let id = start_signature(&rp, &state.document_number, b"slow contract").await;
        let t = pending(&client, &state, &id).await.unwrap();
        let started = std::time::Instant::now();
        let e = dev::confirm(&client, &mut state, &t, &Pin::new(pin).unwrap(), None)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(e.to_string().contains("SERVER_ERROR"), "{e}");
        assert!(
            // Less than the 3 s the HSM needs for the share alone.
            took < std::time::Duration::from_millis(2900),
            "the server waited {took:?} for a stuck HSM"
        );
        assert_server_error(&rp, &id).await;
        assert_eq!(
            sign_failures(&dev::key_state(&client, &state).await.unwrap()),
            0,
            "no PIN attempt counted"
        );
    }
    assert!(
        server.log().contains("did not answer within 1000 ms"),
        "{}",
        server.log()
    );

    // The overdue calls end in the background; their verdicts are dropped and change
    // nothing (bounded wait: 30 s).
    for _ in 0..60 {
        if server
            .log()
            .matches("an overdue HSM call has ended")
            .count()
            >= 2
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(
        server
            .log()
            .matches("an overdue HSM call has ended")
            .count(),
        2,
        "{}",
        server.log()
    );
    assert_eq!(
        sign_failures(&dev::key_state(&client, &state).await.unwrap()),
        0
    );

    // The HSM is fast again: the next transaction succeeds and verifies.
    set_faults(&faults, "");
    sign_and_verify(
        &server,
        &client,
        &mut state,
        &rp,
        b"contract after the stall",
    )
    .await;
    server.assert_audit_intact();
}

#[tokio::test(flavor = "multi_thread")]
async fn token_removed_during_confirmation_is_a_server_error_and_recovers() {
    let (server, _faults_dir, faults) = server_with_faults();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let rp = server.rp().await.unwrap();

    // The app has fetched the transaction; then the token is pulled, and the user confirms.
    let id = start_signature(&rp, &state.document_number, b"contract 1").await;
    let t = pending(&client, &state, &id).await.unwrap();
    set_faults(&faults, "token_removed = true\n");
    let e = dev::confirm(&client, &mut state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("SERVER_ERROR"), "{e}");
    assert_server_error(&rp, &id).await;
    assert!(
        server
            .log()
            .contains("the HSM could not open share_envelope")
    );

    // It comes back: the same key signs, nothing was counted, the audit chain holds.
    set_faults(&faults, "token_removed = false\n");
    assert_eq!(
        sign_failures(&dev::key_state(&client, &state).await.unwrap()),
        0
    );
    sign_and_verify(&server, &client, &mut state, &rp, b"contract 2").await;
    server.assert_audit_intact();
}
