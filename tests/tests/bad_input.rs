//! Bad input gets a clear gRPC status and changes nothing.

#![allow(clippy::unwrap_used)] // tests

use rand::RngCore;
use tandem_client_core::envelope;
use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_tests::*;
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_confirmations_are_rejected_without_counting() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Authentication,
        &state.document_number,
        b"m",
        pb::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &state, &s.transaction_id).await.unwrap();
    let info = client
        .raw()
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let good = dev::prepare_confirm(
        &state,
        &t,
        &Pin::new("9999").unwrap(),
        None,
        &info.transport_public_key_der,
    )
    .unwrap()
    .request;

    // Truncated protobuf on the wire.
    for body in [
        vec![0x0a, 0xff, 0x01],
        vec![0x12, 0x05, b'a'],
        vec![0xff; 7],
    ] {
        let e = raw_unary(&server, "/tandem.v1.Device/Confirm", body)
            .await
            .unwrap_err();
        assert_ne!(e.code(), Code::Ok);
        assert!(e.message().to_lowercase().contains("decod"), "{e:?}");
    }

    let mut rng = rand::thread_rng();
    let sealed = |plain: &[u8], aad: &[u8]| {
        envelope::seal(
            &info.transport_public_key_der,
            plain,
            aad,
            &mut rand::thread_rng(),
        )
        .unwrap()
    };
    let right_aad =
        envelope::aad_partial_signature(&t.transaction_id, &state.account_id, KeyType::Auth);
    let mut huge = vec![0u8; 100 * 1024];
    rng.fill_bytes(&mut huge);
    let mut truncated = good.share_envelope.clone();
    truncated.truncate(truncated.len() - 20);
    let n1_len = state.key_pair(KeyType::Auth).unwrap().client_modulus.len();
    let cases: Vec<(&str, pb::ConfirmRequest, Code)> = vec![
        (
            "short nonce",
            pb::ConfirmRequest {
                nonce: vec![1; 15],
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "long nonce",
            pb::ConfirmRequest {
                nonce: vec![1; 17],
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "short clone token",
            pb::ConfirmRequest {
                clone_token: vec![1; 31],
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "empty envelope",
            pb::ConfirmRequest {
                share_envelope: vec![],
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "oversized envelope",
            pb::ConfirmRequest {
                share_envelope: huge,
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "truncated envelope",
            pb::ConfirmRequest {
                share_envelope: truncated,
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "envelope for another transaction",
            pb::ConfirmRequest {
                share_envelope: sealed(
                    &vec![1; n1_len],
                    &envelope::aad_partial_signature("other", &state.account_id, KeyType::Auth),
                ),
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "share of the wrong size",
            pb::ConfirmRequest {
                share_envelope: sealed(&[1; 10], &right_aad),
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "share not below n1",
            pb::ConfirmRequest {
                share_envelope: sealed(&vec![0xff; n1_len], &right_aad),
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "unknown transaction",
            pb::ConfirmRequest {
                transaction_id: "no-such-tx".into(),
                ..good.clone()
            },
            Code::NotFound,
        ),
        (
            "wrong device secret",
            pb::ConfirmRequest {
                credential: Some(pb::DeviceCredential {
                    account_id: state.account_id.clone(),
                    device_secret: vec![0; 32],
                }),
                ..good.clone()
            },
            Code::Unauthenticated,
        ),
    ];
    for (name, mut req, code) in cases {
        req.nonce = if req.nonce.len() == 16 {
            let mut n = vec![0u8; 16];
            rng.fill_bytes(&mut n);
            n
        } else {
            req.nonce
        };
        let e = client.raw().confirm(req).await.unwrap_err();
        assert_eq!(e.code(), code, "{name}: {e:?}");
        assert!(!e.message().is_empty(), "{name}: a clear message");
    }
    // A message beyond the server's size limit is refused before it is decoded.
    let mut too_big = vec![0u8; 1 << 20];
    rng.fill_bytes(&mut too_big);
    let e = client
        .raw()
        .confirm(pb::ConfirmRequest {
            share_envelope: too_big,
            ..good.clone()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{e:?}"
    );
    // Nothing changed: no attempt counted, the transaction still waits.
    let ks = dev::key_state(&client, &state).await.unwrap();
    assert!(ks.iter().all(|k| k.consecutive_failures == 0), "{ks:?}");
    let t = pending(&client, &state, &s.transaction_id).await.unwrap();
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("1234").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
}

#[tokio::test(flavor = "multi_thread")]
async fn relying_party_errors_leave_no_transaction() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();
    use pb::start_transaction_request::Target;
    let base = pb::StartTransactionRequest {
        relying_party_name: "Bank".into(),
        target: Some(Target::DocumentNumber(state.document_number.clone())),
        hash: pb::HashAlgorithm::Sha256 as i32,
        digest: vec![1; 32],
        scheme: pb::SignatureScheme::Pss as i32,
        display_text: "ok".into(),
        vc_choice: false,
        timeout_seconds: 0,
    };
    let cases: Vec<(&str, pb::StartTransactionRequest, Code)> = vec![
        (
            "unknown document",
            pb::StartTransactionRequest {
                target: Some(Target::DocumentNumber("PNOEE-1-XXXX-Q".into())),
                ..base.clone()
            },
            Code::NotFound,
        ),
        (
            "unknown person",
            pb::StartTransactionRequest {
                target: Some(Target::PersonId("PNOLV-123".into())),
                ..base.clone()
            },
            Code::NotFound,
        ),
        (
            "malformed person",
            pb::StartTransactionRequest {
                target: Some(Target::PersonId("EE;1".into())),
                ..base.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "no target",
            pb::StartTransactionRequest {
                target: None,
                ..base.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "short digest",
            pb::StartTransactionRequest {
                digest: vec![1; 31],
                ..base.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "no hash",
            pb::StartTransactionRequest {
                hash: 0,
                ..base.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "unknown scheme",
            pb::StartTransactionRequest {
                scheme: 99,
                ..base.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "long text",
            pb::StartTransactionRequest {
                display_text: "x".repeat(201),
                ..base.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "long timeout",
            pb::StartTransactionRequest {
                timeout_seconds: 100_000,
                ..base.clone()
            },
            Code::InvalidArgument,
        ),
        (
            "no name",
            pb::StartTransactionRequest {
                relying_party_name: " ".into(),
                ..base.clone()
            },
            Code::InvalidArgument,
        ),
    ];
    for (name, req, code) in cases {
        let e = rp.start_signature(req).await.unwrap_err();
        assert_eq!(e.code(), code, "{name}: {e:?}");
    }
    let e = raw_unary(
        &server,
        "/tandem.v1.RelyingParty/StartSignature",
        vec![0x2a, 0x40, 1, 2],
    )
    .await
    .unwrap_err();
    assert_ne!(e.code(), Code::Ok);
    let e = rp
        .get_transaction_status(pb::GetTransactionStatusRequest {
            transaction_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        dev::list_pending(&client, &state).await.unwrap().is_empty(),
        "no session left behind"
    );
    let audit = server.operator(&["audit"]).unwrap();
    assert!(!audit.contains("transaction_started"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_rejects_bad_keys_and_expired_codes() {
    let server = TestServer::start(ServerOptions {
        timeouts: Some(timeouts(3, 120)),
        ..Default::default()
    })
    .unwrap();
    let client = server.device_client().await.unwrap();
    let mut id = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut id);
    let reg = dev::register_start(&client, id).await.unwrap();
    let submit = |keys: Vec<pb::KeySubmission>| pb::SubmitKeysRequest {
        registration_id: reg.registration_id.clone(),
        registration_secret: reg.registration_secret.clone(),
        keys,
        nonce: {
            let mut n = vec![0u8; 16];
            rand::thread_rng().fill_bytes(&mut n);
            n
        },
    };
    let key = |kt: pb::KeyType, n: Vec<u8>| pb::KeySubmission {
        key_type: kt as i32,
        client_modulus: n,
        server_share_envelope: vec![1, 1, 0, 0],
    };
    // Not approved yet.
    let e = client.raw().submit_keys(submit(vec![])).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    server.approve(&reg.registration_code, &OTHER).unwrap();
    let odd = |bytes: usize| {
        let mut n = vec![0xc5u8; bytes];
        *n.last_mut().unwrap() |= 1;
        n
    };
    let mut even = odd(256);
    *even.last_mut().unwrap() &= 0xfe;
    for (name, keys) in [
        (
            "1024-bit modulus",
            vec![
                key(pb::KeyType::Auth, odd(128)),
                key(pb::KeyType::Sign, odd(128)),
            ],
        ),
        (
            "even modulus",
            vec![
                key(pb::KeyType::Auth, even.clone()),
                key(pb::KeyType::Sign, odd(256)),
            ],
        ),
        ("one key only", vec![key(pb::KeyType::Auth, odd(256))]),
        (
            "same key twice",
            vec![
                key(pb::KeyType::Auth, odd(256)),
                key(pb::KeyType::Auth, odd(256)),
            ],
        ),
        (
            "unknown key type",
            vec![
                key(pb::KeyType::Unspecified, odd(256)),
                key(pb::KeyType::Sign, odd(256)),
            ],
        ),
        (
            "garbage envelope",
            vec![
                key(pb::KeyType::Auth, odd(256)),
                key(pb::KeyType::Sign, odd(256)),
            ],
        ),
    ] {
        let e = client.raw().submit_keys(submit(keys)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{name}: {e:?}");
    }
    let st = dev::registration_status(&client, &reg).await.unwrap();
    assert_eq!(
        st.state,
        pb::RegistrationState::Approved as i32,
        "bad submissions changed nothing"
    );

    // A code that has expired can no longer be approved or used.
    let reg2 = dev::register_start(&client, [9; 16]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let e = server.approve(&reg2.registration_code, &OTHER).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    let st = dev::registration_status(&client, &reg2).await.unwrap();
    assert_eq!(st.state, pb::RegistrationState::Expired as i32);
    let e = client.raw().submit_keys(submit(vec![])).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("expired"), "{e:?}");
}
