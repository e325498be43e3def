//! Clone detection and retransmission: a stale clone token with a valid share disables the
//! key pair; the same request re-sent with the same nonce gets the same answer.

#![allow(clippy::unwrap_used)] // tests

use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_client_core::state::DeviceState;
use tandem_proto::v1 as pb;
use tandem_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn replayed_clone_token_disables_but_nonce_retry_does_not() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    // The attacker copies the device's state file (and knows the PIN).
    let copy = DeviceState::from_json_bytes(&state.to_json_bytes().unwrap()).unwrap();
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();
    let info = client
        .raw()
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();

    // SIGN: a lost answer re-sent with the same nonce is answered from the stored reply.
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        b"doc",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &state, &s.transaction_id).await.unwrap();
    let prepared = dev::prepare_confirm(
        &state,
        &t,
        &Pin::new("12345").unwrap(),
        None,
        &info.transport_public_key_der,
    )
    .unwrap();
    let first = client
        .raw()
        .confirm(prepared.request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = client
        .raw()
        .confirm(prepared.request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.outcome, pb::ConfirmOutcome::Accepted as i32);
    assert_eq!(first, again, "the retry gets the stored answer");
    // The same nonce with a different request is refused.
    let mut tampered = prepared.request.clone();
    tampered.chosen_vc = "0000".into();
    let e = client.raw().confirm(tampered).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    // The device takes the new token from the answer and keeps signing.
    dev::send_confirm(&client, &mut state, &prepared)
        .await
        .unwrap();
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        b"doc2",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &state, &s.transaction_id).await.unwrap();
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        pb::ConfirmOutcome::Accepted as i32,
        "retries did not look like a clone"
    );

    // AUTH: the real device signs once (token advances), then the copy presents the old
    // token with a valid share: clone detected, key pair disabled.
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Authentication,
        &state.document_number,
        b"a1",
        pb::SignatureScheme::Pkcs1V15,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &state, &s.transaction_id).await.unwrap();
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("1234").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Authentication,
        &state.document_number,
        b"a2",
        pb::SignatureScheme::Pkcs1V15,
        false,
    )
    .await
    .unwrap();
    let mut copy = copy;
    let t = pending(&client, &copy, &s.transaction_id).await.unwrap();
    let r = dev::confirm(&client, &mut copy, &t, &Pin::new("1234").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::CloneDetected as i32);
    let st = status(&mut rp, &s.transaction_id).await.unwrap();
    assert_eq!(st.end_result, pb::EndResult::DocumentUnusable as i32);
    assert!(
        st.signature.is_empty(),
        "no signature is released to a clone"
    );
    let ks = dev::key_state(&client, &state).await.unwrap();
    let auth = ks
        .iter()
        .find(|k| k.key_type == pb::KeyType::Auth as i32)
        .unwrap();
    assert_eq!(auth.status, pb::KeyStatus::Disabled as i32);
    let shown = server.operator(&["show", &state.document_number]).unwrap();
    assert!(shown.contains("CLONE_DETECTED"), "{shown}");
    // The AUTH certificate is revoked for key compromise; SIGN stays good.
    let certs = server.operator(&["certs", &state.document_number]).unwrap();
    let auth_line = certs.lines().find(|l| l.contains(" AUTH ")).unwrap();
    let sign_line = certs.lines().find(|l| l.contains(" SIGN ")).unwrap();
    assert!(
        auth_line.contains("REVOKED") && auth_line.contains("reason 1"),
        "{certs}"
    );
    assert!(sign_line.contains("GOOD"), "{certs}");
    // The real device can no longer authenticate either.
    let e = start_tx(
        &mut rp,
        pb::TransactionKind::Authentication,
        &state.document_number,
        b"a3",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.downcast_ref::<tonic::Status>().unwrap().code(),
        tonic::Code::FailedPrecondition
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_refresh_checks_the_current_token() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let stale = DeviceState::from_json_bytes(&state.to_json_bytes().unwrap()).unwrap();
    let client = server.device_client().await.unwrap();
    dev::refresh_clone_token(
        &client,
        &mut state,
        tandem_client_core::types::KeyType::Sign,
    )
    .await
    .unwrap();
    // The refreshed token works for signing.
    let mut rp = server.rp().await.unwrap();
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        b"x",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &state, &s.transaction_id).await.unwrap();
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    // A refresh with the stale token is a clone.
    let mut stale = stale;
    let e = dev::refresh_clone_token(
        &client,
        &mut stale,
        tandem_client_core::types::KeyType::Sign,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("stale"), "{e}");
    let ks = dev::key_state(&client, &state).await.unwrap();
    assert!(
        ks.iter().any(|k| k.key_type == pb::KeyType::Sign as i32
            && k.status == pb::KeyStatus::Disabled as i32)
    );
}
