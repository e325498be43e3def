//! Registration, authentication and signature through real server processes; every
//! signature is checked by OpenSSL under the composite public key n = n1·n2.

#![allow(clippy::unwrap_used)] // tests

use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_proto::v1 as pb;
use tandem_tests::*;

fn bits(n: &[u8]) -> usize {
    n.len() * 8 - n[0].leading_zeros() as usize
}

#[tokio::test(flavor = "multi_thread")]
async fn register_authenticate_and_sign_verify_with_openssl() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    assert!(
        state.document_number.starts_with("PNOEE-30303039914-"),
        "{}",
        state.document_number
    );
    assert!(state.document_number.ends_with("-Q"));
    // Account info and the composite key: n = n1·n2 with both halves of the test size.
    let client = server.device_client().await.unwrap();
    let info = dev::account(&client, &state).await.unwrap();
    assert_eq!(info.document_number, state.document_number);
    assert_eq!(info.identity.as_ref().unwrap().surname, "TESTNUMBER");
    let three_years = 3 * 365 * 86_400;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((info.expires_at_unix - now - three_years).abs() < 120);
    for kp in &info.key_pairs {
        assert!(bits(&kp.composite_modulus) >= 2 * TEST_KEY_BITS - 1);
    }
    let mut rp = server.rp().await.unwrap();

    for (kind, scheme, pin) in [
        (
            pb::TransactionKind::Authentication,
            pb::SignatureScheme::Pkcs1V15,
            "1234",
        ),
        (
            pb::TransactionKind::Authentication,
            pb::SignatureScheme::Pss,
            "1234",
        ),
        (
            pb::TransactionKind::Signature,
            pb::SignatureScheme::Pkcs1V15,
            "12345",
        ),
        (
            pb::TransactionKind::Signature,
            pb::SignatureScheme::Pss,
            "12345",
        ),
    ] {
        let data = format!("{kind:?} with {scheme:?}").into_bytes();
        let start = start_tx(&mut rp, kind, &state.document_number, &data, scheme, false)
            .await
            .unwrap();
        let t = pending(&client, &state, &start.transaction_id)
            .await
            .unwrap();
        let prompt = dev::prompt(&state, &t).unwrap();
        assert_eq!(
            prompt.verification_code, start.verification_code,
            "device and RP show the same code"
        );
        let r = dev::confirm(&client, &mut state, &t, &Pin::new(pin).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
        let st = status(&mut rp, &start.transaction_id).await.unwrap();
        assert_eq!(st.end_result, pb::EndResult::Ok as i32);
        assert_eq!(st.document_number, state.document_number);
        let kp = st.key_pair.unwrap();
        let expected_key = info
            .key_pairs
            .iter()
            .find(|k| {
                k.key_type
                    == if kind == pb::TransactionKind::Authentication {
                        1
                    } else {
                        2
                    }
            })
            .unwrap();
        assert_eq!(
            kp.composite_modulus, expected_key.composite_modulus,
            "signed with the right key pair"
        );
        openssl_verify(
            server.tmp.path(),
            &kp.public_key_der,
            &data,
            &st.signature,
            scheme == pb::SignatureScheme::Pss,
        )
        .unwrap();
        // A tampered message must not verify (the verifier really checks).
        let mut other = data.clone();
        other.push(b'!');
        assert!(
            openssl_verify(
                server.tmp.path(),
                &kp.public_key_der,
                &other,
                &st.signature,
                false
            )
            .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refuse_wrong_vc_timeout_and_person_fan_out() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut a = register(&server, &MARY, "1234", "12345").await.unwrap();
    let mut b = register(&server, &MARY, "4321", "54321").await.unwrap();
    assert_ne!(
        a.document_number, b.document_number,
        "one account per device"
    );
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();

    // Refusal.
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &a.document_number,
        b"x",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    dev::refuse(&client, &a, &s.transaction_id).await.unwrap();
    assert_eq!(
        status(&mut rp, &s.transaction_id).await.unwrap().end_result,
        pb::EndResult::UserRefused as i32
    );

    // Wrong verification code: ends the transaction, not a PIN failure.
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &a.document_number,
        b"y",
        pb::SignatureScheme::Pss,
        true,
    )
    .await
    .unwrap();
    let t = pending(&client, &a, &s.transaction_id).await.unwrap();
    assert_eq!(t.vc_choices.len(), 3);
    assert!(t.vc_choices.contains(&s.verification_code));
    let wrong = t
        .vc_choices
        .iter()
        .find(|c| **c != s.verification_code)
        .unwrap()
        .clone();
    let r = dev::confirm(
        &client,
        &mut a,
        &t,
        &Pin::new("12345").unwrap(),
        Some(&wrong),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::WrongVc as i32);
    assert_eq!(
        status(&mut rp, &s.transaction_id).await.unwrap().end_result,
        pb::EndResult::WrongVc as i32
    );
    let ks = dev::key_state(&client, &a).await.unwrap();
    assert!(
        ks.iter().all(|k| k.consecutive_failures == 0),
        "a wrong VC is not a PIN failure"
    );

    // Timeout.
    let mut req = pb::StartTransactionRequest {
        relying_party_name: "Test Bank".into(),
        target: Some(pb::start_transaction_request::Target::DocumentNumber(
            a.document_number.clone(),
        )),
        hash: pb::HashAlgorithm::Sha256 as i32,
        digest: vec![7; 32],
        scheme: pb::SignatureScheme::Pkcs1V15 as i32,
        display_text: "t".into(),
        vc_choice: false,
        timeout_seconds: 1,
    };
    let s = rp.start_signature(req.clone()).await.unwrap().into_inner();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        status(&mut rp, &s.transaction_id).await.unwrap().end_result,
        pb::EndResult::Timeout as i32
    );
    let t = dev::list_pending(&client, &a).await.unwrap();
    assert!(
        t.iter().all(|t| t.transaction_id != s.transaction_id),
        "expired transactions are not pending"
    );

    // By person: both devices see it; the first answer wins, the second is told it's closed.
    req.target = Some(pb::start_transaction_request::Target::PersonId(
        "PNOEE-30303039914".into(),
    ));
    req.timeout_seconds = 0;
    let s = rp.start_authentication(req).await.unwrap().into_inner();
    let ta = pending(&client, &a, &s.transaction_id).await.unwrap();
    let tb = pending(&client, &b, &s.transaction_id).await.unwrap();
    let r = dev::confirm(&client, &mut b, &tb, &Pin::new("4321").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    let st = status(&mut rp, &s.transaction_id).await.unwrap();
    assert_eq!(st.end_result, pb::EndResult::Ok as i32);
    assert_eq!(st.document_number, b.document_number);
    let r = dev::confirm(&client, &mut a, &ta, &Pin::new("1234").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::TransactionClosed as i32);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_streams_new_transactions_and_delete_destroys_the_account() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();
    let mut stream = dev::watch_pending(&client, &state).await.unwrap();
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Authentication,
        &state.document_number,
        b"w",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.transaction_id, s.transaction_id);

    dev::delete_account(&client, &state).await.unwrap();
    let err = dev::list_pending(&client, &state).await.unwrap_err();
    assert!(
        err.to_string().contains("Unauthenticated")
            || err.to_string().contains("unauthenticated")
            || err.to_string().contains("deleted"),
        "{err}"
    );
    let e = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        b"z",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("no account"), "{e}");
    let shown = server.operator(&["show", &state.document_number]).unwrap();
    assert!(shown.contains("Deleted"), "{shown}");
    // Deletion revokes both certificates (cessationOfOperation).
    let certs = server.operator(&["certs", &state.document_number]).unwrap();
    assert_eq!(certs.matches("REVOKED").count(), 2, "{certs}");
    assert_eq!(certs.matches("reason 5").count(), 2, "{certs}");
}
