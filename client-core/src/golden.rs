//! Golden vectors: the encodings other parties depend on, pinned byte for byte against the
//! files in `client-core/tests/vectors/` (see its README). A failure here means a wire or
//! storage format changed: existing phones, servers or relying parties would break.
//!
//! Every input is fixed: values drawn from [`CounterRng`] (SHA-256 of a label and a counter,
//! stable forever, unlike a seeded library RNG), fixed PINs, the small test Argon2 cost
//! (the format records the cost), fixed transport keys. The moduli of the state file are
//! deterministic odd numbers of the right size, not RSA moduli: the vector pins the
//! encoding, the arithmetic is tested elsewhere.
//!
//! `TANDEM_WRITE_VECTORS=1 cargo test -p tandem-client-core golden` writes the files from
//! the code and fails, so that a regenerated vector is never accepted silently: review the
//! diff, and commit it only for a deliberate, versioned format change.

use std::path::PathBuf;

use rand_core::{CryptoRng, RngCore};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::encoding::HashAlgorithm;
use crate::envelope::{
    aad_partial_signature, aad_proof_share, aad_server_share, open_with_ec_private_key,
    open_with_private_key, seal_server_share,
};
use crate::hazmat::bigint::multiply;
use crate::keys::{DeviceShare, ServerShare};
use crate::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use crate::rp_api::{AcspV2Fields, acsp_v2_digest, acsp_v2_payload};
use crate::state::{DeviceState, KeyPairState};
use crate::types::{CloneToken, DeviceSecret, KeyType};

/// A deterministic byte stream: block `i` is `SHA-256(label || u64_be(i))`. For test vectors
/// only; it is no random number generator.
struct CounterRng {
    label: &'static [u8],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl CounterRng {
    fn new(label: &'static str) -> Self {
        Self {
            label: label.as_bytes(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill_bytes(&mut v);
        v
    }
}

impl RngCore for CounterRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == self.block.len() {
                let mut h = Sha256::new();
                h.update(self.label);
                h.update(self.counter.to_be_bytes());
                self.block = h.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// Test vectors only: the stream is public and repeatable.
impl CryptoRng for CounterRng {}

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
        .join(name)
}

/// The committed vector `name`; with `TANDEM_WRITE_VECTORS=1`, writes `produced` there
/// first and fails.
fn committed(name: &str, produced: &[u8]) -> Vec<u8> {
    let path = vector_path(name);
    if std::env::var_os("TANDEM_WRITE_VECTORS").is_some() {
        std::fs::write(&path, produced).unwrap();
        panic!(
            "wrote {}: review and commit it, then run again without TANDEM_WRITE_VECTORS",
            path.display()
        );
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares with a readable message (the first differing byte), not two dumps.
fn assert_same(name: &str, produced: &[u8], expected: &[u8]) {
    if produced != expected {
        let at = produced
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(produced.len().min(expected.len()));
        panic!(
            "{name}: the encoding changed (first difference at byte {at}; {} bytes produced, \
             {} committed). This breaks existing devices or servers; see tests/vectors/README.md",
            produced.len(),
            expected.len()
        );
    }
}

// ----------------------------------------------------------------------- device state

const STATE_VECTOR: &str = "device_state_v1.json";
const STATE_PINS: [(KeyType, &str); 2] = [(KeyType::Auth, "1234"), (KeyType::Sign, "908172")];

/// An odd number of exactly `bits` bits (the top bit set).
fn fake_modulus(rng: &mut CounterRng, bits: usize) -> Vec<u8> {
    let mut m = rng.bytes(bits / 8);
    m[0] |= 0x80;
    if let Some(last) = m.last_mut() {
        *last |= 1;
    }
    m
}

/// Each key pair's device share `d1'` in clear (what its PIN must unlock).
type ClearShares = Vec<(KeyType, Zeroizing<Vec<u8>>)>;

/// The fixed state and, per key pair, the device share `d1'` under its PIN.
fn vector_state() -> (DeviceState, ClearShares) {
    let mut rng = CounterRng::new("tandem/vectors/device-state/v1");
    let device_secret = DeviceSecret::from_slice(&rng.bytes(32)).unwrap();
    let keystore_secret = KeystoreSecret::from_bytes(&rng.bytes(32)).unwrap();
    let mut key_pairs = Vec::new();
    let mut shares = Vec::new();
    for (key_type, pin) in STATE_PINS {
        let n1 = fake_modulus(&mut rng, 2048);
        let n2 = fake_modulus(&mut rng, 2048);
        let d1 = Zeroizing::new(rng.bytes(n1.len()));
        let protected_share = ProtectedShare::protect(
            &DeviceShare::from_vec(d1.to_vec()),
            &Pin::new(pin).unwrap(),
            &keystore_secret,
            KdfParams::testing(),
            &mut rng,
        )
        .unwrap();
        key_pairs.push(KeyPairState {
            key_type,
            composite_modulus: multiply(&n1, &n2),
            client_modulus: n1,
            protected_share,
            clone_token: CloneToken::from_slice(&rng.bytes(32)).unwrap(),
            // SIGN has a certificate, AUTH none (the field is then left out).
            certificate: if key_type == KeyType::Sign {
                rng.bytes(48)
            } else {
                Vec::new()
            },
        });
        shares.push((key_type, d1));
    }
    let state = DeviceState {
        server_url: "https://tandem.example:7443".into(),
        device_id: rng.bytes(16).try_into().unwrap(),
        account_id: "0b6f2f5e-2c1d-4f57-9a7e-3c2d9d7c1a10".into(),
        document_number: "PNOEE-30303039914-MOCK-Q".into(),
        given_name: "MARY ÄNN".into(),
        surname: "O’CONNEŽ-ŠUSLIK TESTNUMBER".into(),
        country: "EE".into(),
        national_id: "30303039914".into(),
        expires_at_unix: 1_900_000_000,
        device_secret,
        keystore_secret,
        key_pairs,
    };
    (state, shares)
}

#[test]
fn device_state_file_is_pinned() {
    let (state, shares) = vector_state();
    let produced = state.to_json_bytes().unwrap();
    let expected = committed(STATE_VECTOR, &produced);
    assert_same(STATE_VECTOR, &produced, &expected);

    // The committed file reads back to the same state, and each share opens with its PIN:
    // that pins the Argon2id + ChaCha20 derivation, which every installed app depends on.
    let back = DeviceState::from_json_bytes(&expected).unwrap();
    assert_same(STATE_VECTOR, &back.to_json_bytes().unwrap(), &expected);
    assert_eq!(back.document_number, "PNOEE-30303039914-MOCK-Q");
    assert_eq!(back.surname, "O’CONNEŽ-ŠUSLIK TESTNUMBER");
    assert_eq!(
        back.device_secret.expose_secret(),
        state.device_secret.expose_secret()
    );
    for ((key_type, pin), (_, d1)) in STATE_PINS.iter().zip(&shares) {
        let kp = back.key_pair(*key_type).unwrap();
        assert_eq!(kp.protected_share.kdf, KdfParams::testing());
        let opened = kp
            .protected_share
            .unlock(&Pin::new(pin).unwrap(), &back.keystore_secret)
            .unwrap();
        assert_eq!(opened.expose_secret(), d1.as_slice(), "{key_type}");
        let other = kp
            .protected_share
            .unlock(&Pin::new("0000").unwrap(), &back.keystore_secret)
            .unwrap();
        assert_ne!(other.expose_secret(), d1.as_slice(), "{key_type}");
    }
}

// ----------------------------------------------------------------------- d1'' envelope

const REGISTRATION_ID: &str = "reg-vector-0001";

/// The transport key of the EC vector: the scalar SHA-256 of a label.
fn transport_p256() -> p256::SecretKey {
    p256::SecretKey::from_slice(&Sha256::digest(b"tandem/vectors/transport-p256")).unwrap()
}

fn transport_rsa() -> RsaPrivateKey {
    let pem = std::fs::read_to_string(vector_path("transport_rsa2048_test_only.pk8.pem")).unwrap();
    RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
}

/// `d1''` of the envelope vectors: 256 fixed bytes.
fn vector_server_share() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(CounterRng::new("tandem/vectors/server-share").bytes(256))
}

/// Seals the vector's `d1''` to `spki` with the counter RNG `label`, compares with the
/// committed hex `name`, and returns the committed envelope.
fn pinned_envelope(name: &str, spki: &[u8], label: &'static str) -> Vec<u8> {
    let sealed = seal_server_share(
        spki,
        ServerShare::from_bytes(vector_server_share()).unwrap(),
        &aad_server_share(REGISTRATION_ID, KeyType::Auth),
        &mut CounterRng::new(label),
    )
    .unwrap();
    let produced = format!("{}\n", hex::encode(&sealed));
    let expected = committed(name, produced.as_bytes());
    assert_same(name, produced.as_bytes(), &expected);
    hex::decode(String::from_utf8(expected).unwrap().trim()).unwrap()
}

#[test]
fn server_share_envelope_ecdh_p256_is_pinned() {
    let key = transport_p256();
    let spki = key.public_key().to_public_key_der().unwrap();
    let blob = pinned_envelope(
        "server_share_envelope_ecdh_p256.hex",
        spki.as_bytes(),
        "tandem/vectors/envelope/ecdh-p256",
    );
    assert_eq!(&blob[..2], &[0x01, 0x02]);
    let aad = aad_server_share(REGISTRATION_ID, KeyType::Auth);
    let opened = open_with_ec_private_key(&key, &blob, &aad).unwrap();
    assert_eq!(opened.as_slice(), vector_server_share().as_slice());
    // Bound to its role, registration and key type.
    for other in [
        aad_server_share(REGISTRATION_ID, KeyType::Sign),
        aad_server_share("reg-vector-0002", KeyType::Auth),
        aad_proof_share(REGISTRATION_ID, KeyType::Auth),
    ] {
        assert!(open_with_ec_private_key(&key, &blob, &other).is_err());
    }
}

#[test]
fn server_share_envelope_rsa_oaep_is_pinned() {
    let key = transport_rsa();
    let spki = key.to_public_key().to_public_key_der().unwrap();
    let blob = pinned_envelope(
        "server_share_envelope_rsa_oaep.hex",
        spki.as_bytes(),
        "tandem/vectors/envelope/rsa-oaep",
    );
    assert_eq!(&blob[..4], &[0x01, 0x01, 0x01, 0x00]);
    let aad = aad_server_share(REGISTRATION_ID, KeyType::Auth);
    let opened = open_with_private_key(&key, &blob, &aad).unwrap();
    assert_eq!(opened.as_slice(), vector_server_share().as_slice());
    assert!(
        open_with_private_key(
            &key,
            &blob,
            &aad_server_share(REGISTRATION_ID, KeyType::Sign)
        )
        .is_err()
    );
}

/// The associated data of every envelope role, which the server rebuilds to open them.
#[test]
fn envelope_aad_is_pinned() {
    let produced = format!(
        "server_share {}\nproof_share {}\npartial_signature {}\n",
        hex::encode(aad_server_share(REGISTRATION_ID, KeyType::Auth)),
        hex::encode(aad_proof_share(REGISTRATION_ID, KeyType::Sign)),
        hex::encode(aad_partial_signature(
            "tx-vector-0001",
            "0b6f2f5e-2c1d-4f57-9a7e-3c2d9d7c1a10",
            KeyType::Sign
        )),
    );
    let name = "envelope_aad.txt";
    assert_same(
        name,
        produced.as_bytes(),
        &committed(name, produced.as_bytes()),
    );
}

// ----------------------------------------------------------------------- ACSP_V2 payload

/// signature_protocols.txt, "ACSP_V2 digest calculation": the specification's example
/// values (relyingPartyName `REVNTw==` is "DEMO", brokeredRpName `RXhhbXBsZSBSUA==` is
/// "Example RP").
const SPEC_INTERACTIONS: &str = "W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2UiLCJkaXNwbGF5VGV4dDIwMCI6IkxvbmdlciBkZXNjcmlwdGlvbiBvZiB0aGUgdHJhbnNhY3Rpb24gY29udGV4dCJ9LHsidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2MCI6IlNob3J0IGRlc2NyaXB0aW9uIG9mIHRoZSB0cmFuc2FjdGlvbiBjb250ZXh0In1d";

fn spec_example() -> AcspV2Fields<'static> {
    AcspV2Fields {
        scheme_name: "smart-id",
        server_random: "MTlop6EXCrQ6FOErcKjxUhbV",
        rp_challenge: "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg==",
        user_challenge: "GnsWXXEjTCKR89fj9uo5u5ReBZ9JR7_pezLAI5jMS00",
        relying_party_name: "DEMO",
        brokered_rp_name: Some("Example RP"),
        interactions: SPEC_INTERACTIONS,
        interaction_type_used: "confirmationMessage",
        initial_callback_url: Some(
            "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ",
        ),
        flow_type: "Web2App",
    }
}

fn pinned_payload(name: &str, fields: &AcspV2Fields<'_>) {
    let produced = acsp_v2_payload(fields);
    assert_same(
        name,
        produced.as_bytes(),
        &committed(name, produced.as_bytes()),
    );
}

#[test]
fn acsp_v2_payload_of_the_specification_example_is_pinned() {
    pinned_payload("acsp_v2_payload_web2app.txt", &spec_example());
}

#[test]
fn acsp_v2_digest_of_the_specification_example_is_pinned() {
    let f = spec_example();
    // The digest the relying party checks (SHA-512, as in the example), cross-checked with
    // the specification's own Python code when the vector was made.
    let name = "acsp_v2_digest_web2app_sha512.b64";
    let produced = format!(
        "{}\n",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            acsp_v2_digest(&f, HashAlgorithm::Sha512)
        )
    );
    assert_same(
        name,
        produced.as_bytes(),
        &committed(name, produced.as_bytes()),
    );
}

/// A notification flow: no callback URL and no broker, whose fields stay empty between
/// their separators (`||`).
#[test]
fn acsp_v2_payload_of_a_notification_is_pinned() {
    let f = AcspV2Fields {
        scheme_name: "smart-id-demo",
        brokered_rp_name: None,
        interaction_type_used: "displayTextAndPIN",
        initial_callback_url: None,
        flow_type: "Notification",
        ..spec_example()
    };
    pinned_payload("acsp_v2_payload_notification.txt", &f);
}
