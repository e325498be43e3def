//! The stolen-state-file attack: an attacker with the device's state file (and the
//! keystore secret inside it) tries every PIN offline. Every guess unlocks to a
//! well-formed share that signs without complaint; nothing in the file or the results
//! singles out the right PIN. Only the server's check of the combined signature does.
//!
//! 2048-bit keys and fast Argon2 parameters: for tests only.

#![allow(clippy::unwrap_used)]

use rand::SeedableRng;
use rand::rngs::StdRng;
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme, encode_pss};
use tandem_client_core::hazmat::bigint::{bit_length, multiply};
use tandem_client_core::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use tandem_client_core::sign::{
    SigningRequest, combine_client_shares, partial_sign, server_partial, verify_raw,
};
use tandem_client_core::state::{DeviceState, KeyPairState};
use tandem_client_core::types::{CloneToken, DeviceSecret, KeyType};
use tandem_client_core::{PUBLIC_EXPONENT, generate_client_key};

#[test]
fn a_stolen_state_file_gives_no_offline_pin_test() {
    let mut rng = StdRng::seed_from_u64(2024);
    let km = generate_client_key(&mut rng, 2048).unwrap();
    let n2 = generate_client_key(&mut rng, 2048).unwrap().modulus; // stand-in for the HSM key
    let n = multiply(&km.modulus, &n2);
    let right = Pin::new("4711").unwrap();
    let keystore = KeystoreSecret::generate(&mut rng);
    let protected = ProtectedShare::protect(
        &km.device_share,
        &right,
        &keystore,
        KdfParams::testing(),
        &mut rng,
    )
    .unwrap();
    let state = DeviceState {
        server_url: "https://127.0.0.1:7443".into(),
        device_id: [7; 16],
        account_id: "acc".into(),
        document_number: "PNOEE-1-AAAA-Q".into(),
        given_name: "A".into(),
        surname: "B".into(),
        country: "EE".into(),
        national_id: "1".into(),
        expires_at_unix: 0,
        device_secret: DeviceSecret::generate(&mut rng),
        keystore_secret: keystore,
        key_pairs: vec![KeyPairState {
            key_type: KeyType::Auth,
            client_modulus: km.modulus.clone(),
            composite_modulus: n.clone(),
            protected_share: protected,
            clone_token: CloneToken::generate(&mut rng),
            certificate: Vec::new(),
        }],
    };
    // What the attacker has: the file's bytes.
    let stolen = DeviceState::from_json_bytes(&state.to_json_bytes().unwrap()).unwrap();
    let kp = stolen.key_pair(KeyType::Auth).unwrap();
    let digest = HashAlgorithm::Sha256.digest(b"attacker's message");
    let x = encode_pss(HashAlgorithm::Sha256, &digest, bit_length(&n), &mut rng).unwrap();
    let request = SigningRequest {
        scheme: SignatureScheme::Pss,
        hash: HashAlgorithm::Sha256,
        digest,
        encoded_message: x.clone(),
        composite_modulus_bits: bit_length(&n),
    };
    let x1 = tandem_client_core::hazmat::bigint::reduce(&x, &km.modulus).unwrap();
    let s1_server = server_partial(&km.server_share, &km.modulus, &x1).unwrap();

    // All 10 000 four-digit PINs.
    let mut accepted_by_server = Vec::new();
    let mut top_bytes = std::collections::BTreeSet::new();
    for guess in 0..10_000u32 {
        let pin = Pin::new(&format!("{guess:04}")).unwrap();
        // Offline: every guess unlocks and signs, with output of the same shape.
        let share = kp
            .protected_share
            .unlock(&pin, &stolen.keystore_secret)
            .unwrap();
        assert_eq!(share.len(), km.modulus.len());
        if guess % 50 == 0 || guess == 4711 {
            let s1 = partial_sign(&share, &kp.client_modulus, &request).unwrap();
            assert_eq!(s1.as_bytes().len(), km.modulus.len());
            assert!(s1.as_bytes() < km.modulus.as_slice());
            top_bytes.insert(s1.as_bytes()[0]);
            // Online: only the server's combination tells.
            let s = combine_client_shares(s1.as_bytes(), &s1_server, &km.modulus).unwrap();
            if verify_raw(&s, &x1, &km.modulus, PUBLIC_EXPONENT) {
                accepted_by_server.push(guess);
            }
        }
    }
    assert_eq!(
        accepted_by_server,
        vec![4711],
        "exactly the right PIN passes the server's check"
    );
    assert!(
        top_bytes.len() > 50,
        "partial signatures of wrong PINs look like any other residue"
    );
    // The file holds no check value that a guess could be compared with: the ciphertext is
    // exactly the share's length (no tag, no padding, no hash).
    let json: serde_json::Value = serde_json::from_slice(&state.to_json_bytes().unwrap()).unwrap();
    let share = &json["key_pairs"][0]["protected_share"];
    // Sorted: serde_json keeps the file's order when a build enables its `preserve_order`
    // (the browser tests' WebDriver client does, for the whole workspace build).
    let mut fields: Vec<&String> = share.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["algorithm", "ciphertext", "kdf", "salt", "version"],
        "{share}"
    );
}
