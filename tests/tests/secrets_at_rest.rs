//! The database never holds a device secret, a registration secret or a clone token in
//! clear, although the answers that carry them are stored for retransmissions: a device
//! registers, confirms a signature and refreshes a clone token, re-sends each request with
//! its nonce (and gets the identical answer), and then the database file, its WAL and SHM
//! and the server's log are searched for every one of those secrets, raw, as hex and as
//! base64 (at every alignment). The same search finds values that are stored (the
//! composite modulus, the account id), so it does look where the secrets would be.

#![allow(clippy::unwrap_used)] // tests

use std::path::PathBuf;

use base64::Engine as _;
use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_tests::*;

/// The forms a secret could take in a file: raw bytes, hex (lower and upper case), and
/// base64 (standard and URL-safe) at each of the three alignments it could have inside a
/// longer base64 text (the characters that depend on the secret alone).
fn encodings(secret: &[u8]) -> Vec<Vec<u8>> {
    assert!(secret.len() >= 16, "a secret of {} bytes", secret.len());
    let mut out = vec![
        secret.to_vec(),
        hex::encode(secret).into_bytes(),
        hex::encode_upper(secret).into_bytes(),
    ];
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for shift in 0..3usize {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(secret);
            let text = engine.encode(&shifted);
            // Characters covering only prefix bytes, or the last partial group, depend on
            // what stands around the secret: skip them.
            let start = (shift * 8).div_ceil(6);
            let end = (shifted.len() * 8) / 6;
            out.push(text.as_bytes()[start..end].to_vec());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Names of the forms of `secret` found in `files`.
fn found_in(files: &[(String, Vec<u8>)], secret: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, bytes) in files {
        for (i, form) in encodings(secret).iter().enumerate() {
            if contains(bytes, form) {
                found.push(format!("{name} (form {i})"));
            }
        }
    }
    found
}

fn database_files(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    let db = server.data_dir.join("tandem.db");
    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            files.push((path.display().to_string(), bytes));
        }
    }
    assert!(!files.is_empty(), "no database at {}", db.display());
    files.push(("server log".into(), server.log().into_bytes()));
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_answers_keep_no_secret_in_clear_softhsm() {
    stored_answers_keep_no_secret_in_clear(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_answers_keep_no_secret_in_clear_hsm_sim() {
    stored_answers_keep_no_secret_in_clear(true).await;
}

async fn stored_answers_keep_no_secret_in_clear(hsm_sim: bool) {
    // Debug logging: the log is searched too, at its most talkative.
    let server = TestServer::start(ServerOptions {
        log: Some("debug".into()),
        hsm_sim,
        ..ServerOptions::default()
    })
    .unwrap();
    let mut secrets: Vec<(&str, Vec<u8>)> = Vec::new();

    // Registration; CompleteRegistration is sent twice with one nonce.
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
    let (client, reg, p1, p2) = register_until_proof(&server, id, &MARY, "1234", "12345")
        .await
        .unwrap();
    secrets.push(("registration secret", reg.registration_secret.clone()));
    let proof = dev::prepare_proof(&client, &reg, &p1, &p2).await.unwrap();
    let first = client
        .raw()
        .complete_registration(proof.clone())
        .await
        .unwrap()
        .into_inner();
    let again = client
        .raw()
        .complete_registration(proof.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again, "the retry gets the stored answer");
    assert_eq!(first.device_secret.len(), 32);
    secrets.push(("device secret", first.device_secret.clone()));
    for t in &first.clone_tokens {
        secrets.push(("first clone token", t.token.clone()));
    }
    let mut state = match dev::send_proof(&client, &reg, proof).await.unwrap() {
        dev::ProofOutcome::Completed(state) => *state,
        dev::ProofOutcome::PinMismatch { .. } => panic!("the proof failed"),
    };

    // A signature; Confirm is sent twice with one nonce.
    let info = client
        .raw()
        .get_server_info(pb::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut rp = server.rp().await.unwrap();
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        b"contract",
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
    secrets.push((
        "clone token after a signature",
        first.next_clone_token.clone(),
    ));
    dev::send_confirm(&client, &mut state, &prepared)
        .await
        .unwrap();

    // A clone-token refresh (its answer is stored too).
    dev::refresh_clone_token(&client, &mut state, KeyType::Auth)
        .await
        .unwrap();
    secrets.push((
        "refreshed clone token",
        state
            .key_pair(KeyType::Auth)
            .unwrap()
            .clone_token
            .as_bytes()
            .to_vec(),
    ));

    // The device still works with what the retries gave it.
    let s = start_tx(
        &mut rp,
        pb::TransactionKind::Authentication,
        &state.document_number,
        b"login",
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
    secrets.push((
        "clone token after a login",
        state
            .key_pair(KeyType::Auth)
            .unwrap()
            .clone_token
            .as_bytes()
            .to_vec(),
    ));

    let files = database_files(&server);
    // The search finds what is stored: the composite modulus (raw, in the database or its
    // WAL) and the account id (text).
    let modulus = &state.key_pair(KeyType::Sign).unwrap().composite_modulus;
    assert!(
        !found_in(&files, modulus).is_empty(),
        "the composite modulus is stored; the search must find it"
    );
    assert!(
        files
            .iter()
            .any(|(_, b)| contains(b, state.account_id.as_bytes())),
        "the account id is stored; the search must find it"
    );
    for (what, secret) in &secrets {
        let found = found_in(&files, secret);
        // Only the name of the secret and of the file are printed, never the value.
        assert!(found.is_empty(), "the {what} is in clear in: {found:?}");
    }
}
