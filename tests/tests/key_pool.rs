//! The pool of pre-generated server keys: the server fills it in the background (each key
//! warmed up in the HSM), a registration takes its two server keys from it (no RSA key
//! generation or unwrap on the request path), each pooled key is handed out once, the pool
//! refills, and the accounts sign.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, Instant};

use tandem_client_core::hazmat::multiply;
use tandem_client_core::types::KeyType;
use tandem_tests::*;

/// Waits (at most 90 s) until the server log holds `n` lines with `needle`.
fn wait_for_log(server: &TestServer, needle: &str, n: usize) {
    let start = Instant::now();
    while server.log().matches(needle).count() < n {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "waited for {n} x {needle:?}: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The server half n2 of a key pair: composite / client modulus.
fn server_modulus(state: &tandem_client_core::state::DeviceState, kt: KeyType) -> Vec<u8> {
    let kp = state.key_pair(kt).unwrap();
    let n = openssl::bn::BigNum::from_slice(&kp.composite_modulus).unwrap();
    let n1 = openssl::bn::BigNum::from_slice(&kp.client_modulus).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let (mut q, mut r) = (
        openssl::bn::BigNum::new().unwrap(),
        openssl::bn::BigNum::new().unwrap(),
    );
    q.div_rem(&mut r, &n, &n1, &mut ctx).unwrap();
    assert_eq!(r.num_bits(), 0, "n1 divides n");
    let n2 = q.to_vec();
    assert_eq!(multiply(&kp.client_modulus, &n2), kp.composite_modulus);
    n2
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_takes_pooled_server_keys_once_each() {
    let server = TestServer::start(ServerOptions {
        server_key_pool: Some(2),
        log: Some("info,tandem_server=debug".into()),
        ..Default::default()
    })
    .unwrap();
    // The pool fills by itself.
    wait_for_log(&server, "server key pooled", 2);

    let mut a = register(&server, &MARY, "1234", "12345").await.unwrap();
    // Both keys of the registration came from the pool, in one take (and none was generated
    // on the request path, below).
    assert_eq!(
        server
            .log()
            .matches("server keys taken from the pool")
            .count(),
        1,
        "{}",
        server.log()
    );
    assert!(
        !server
            .log()
            .contains("generating a key on the request path")
    );
    // It refills, and the next registration takes the new keys.
    wait_for_log(&server, "server key pooled", 4);
    // Every pooled key was unwrapped into the HSM's key cache (and signed with) once, when it
    // was pooled: the registration's proofs found theirs ready and unwrapped none.
    assert_eq!(
        server
            .log()
            .matches("server key unwrapped into the key cache")
            .count(),
        4,
        "{}",
        server.log()
    );
    let b = register(&server, &OTHER, "2345", "23456").await.unwrap();
    assert_eq!(
        server
            .log()
            .matches("server keys taken from the pool")
            .count(),
        2
    );

    // Four different server keys: none handed out twice.
    let mut moduli = vec![];
    for s in [&a, &b] {
        for kt in [KeyType::Auth, KeyType::Sign] {
            moduli.push(server_modulus(s, kt));
        }
    }
    moduli.sort();
    moduli.dedup();
    assert_eq!(moduli.len(), 4);

    // A pooled key signs like any other: OpenSSL verifies the composite signature.
    let client = server.device_client().await.unwrap();
    let mut rp = server.rp().await.unwrap();
    let start = start_tx(
        &mut rp,
        tandem_proto::v1::TransactionKind::Signature,
        &a.document_number,
        b"signed with a pooled server key",
        tandem_proto::v1::SignatureScheme::Pss,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &a, &start.transaction_id).await.unwrap();
    tandem_client_core::grpc::confirm(
        &client,
        &mut a,
        &t,
        &tandem_client_core::pin::Pin::new("12345").unwrap(),
        None,
    )
    .await
    .unwrap();
    let st = status(&mut rp, &start.transaction_id).await.unwrap();
    openssl_verify(
        server.tmp.path(),
        &st.key_pair.unwrap().public_key_der,
        b"signed with a pooled server key",
        &st.signature,
        true,
    )
    .unwrap();
}
