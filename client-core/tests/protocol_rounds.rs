//! The device protocol driven without any transport: registration, proof and confirmation
//! rounds against a fake server written in this test from client-core's message types.
//!
//! The fake server does what the real one does with the device's messages: it opens the
//! envelopes with its transport private key, exponentiates with `d1''`, checks the combined
//! `s1` (a wrong PIN fails there), signs with its own `n2` half and combines. The final
//! signature is verified with the `rsa` crate, independently of client-core. For ACSP_V2 it
//! rebuilds the payload from its own session values plus the app's `userChallenge`.
//!
//! All keys are 2048-bit (composite ~4096): for tests only.
// Tests may unwrap (workspace lint policy).
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::pkcs8::EncodePublicKey;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha512};

use tandem_client_core::encoding::{
    HashAlgorithm, SignatureScheme, encode_pkcs1v15, encode_pss, verify_encoding,
};
use tandem_client_core::envelope::{
    aad_partial_signature, aad_proof_share, aad_server_share, open_with_ec_private_key,
};
use tandem_client_core::hazmat::bigint::{bit_length, crt_combine, mod_pow_secret, multiply};
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::protocol::messages::*;
use tandem_client_core::protocol::registration::{self, Registration};
use tandem_client_core::protocol::{
    self, KeyParams, ProofOutcome, ProtocolError, ShareForm, TransportKey, rp_session,
};
use tandem_client_core::rp_api::{self, AcspV2Fields};
use tandem_client_core::sign::{combine_client_shares, server_partial, verify_raw};
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::{CloneToken, KeyType};
use tandem_client_core::{Error, PUBLIC_EXPONENT, ServerShare, vc};

const BITS: usize = 2048;
const SERVER_URL: &str = "https://tandem.test:7443";
const PIN1: &str = "1234";
const PIN2: &str = "54321";

/// One key pair as the fake server keeps it.
struct ServerKey {
    n1: Vec<u8>,
    d1_server: ServerShare,
    n2_key: RsaPrivateKey,
    composite: Vec<u8>,
    x_proof: Vec<u8>,
}

/// The fake server: a transport key and, after the hand-over, both key pairs.
struct FakeServer {
    rng: StdRng,
    transport_secret: p256::SecretKey,
    transport: TransportKey,
    registration_id: String,
    keys: Vec<(KeyType, ServerKey)>,
}

impl FakeServer {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let transport_secret = p256::SecretKey::random(&mut rng);
        let der = transport_secret
            .public_key()
            .to_public_key_der()
            .unwrap()
            .into_vec();
        Self {
            rng,
            transport: TransportKey::from_spki_der(&der).unwrap(),
            transport_secret,
            registration_id: "reg-protocol-test".into(),
            keys: Vec::new(),
        }
    }

    fn key(&self, kt: KeyType) -> &ServerKey {
        &self.keys.iter().find(|(k, _)| *k == kt).unwrap().1
    }

    fn start_reply(
        &self,
        m: &StartRegistration,
        matching_code: Option<&str>,
    ) -> StartRegistrationReply {
        StartRegistrationReply {
            registration_id: self.registration_id.clone(),
            registration_secret: vec![0x5a; 32],
            registration_code: "R-123456".into(),
            expires_at_unix: 1_900_000_000,
            matching_code: matching_code.map_or_else(
                || vc::matching_code(&self.registration_id, &m.device_challenge),
                str::to_owned,
            ),
        }
    }

    /// Opens each `d1''`, makes `n2` and a proof challenge per key pair.
    fn submit_keys(&mut self, subs: &[KeySubmission]) -> Vec<ProofChallenge> {
        let mut challenges = Vec::new();
        for s in subs {
            let d1_server = open_with_ec_private_key(
                &self.transport_secret,
                &s.server_share_envelope,
                &aad_server_share(&self.registration_id, s.key_type),
            )
            .unwrap();
            let n2_key = RsaPrivateKey::new(&mut self.rng, BITS).unwrap();
            let composite = multiply(&s.client_modulus, &n2_key.n().to_bytes_be());
            let digest = Sha256::digest(b"registration proof").to_vec();
            let x =
                encode_pkcs1v15(HashAlgorithm::Sha256, &digest, bit_length(&composite)).unwrap();
            challenges.push(ProofChallenge {
                key_type: s.key_type,
                composite_modulus: composite.clone(),
                server_modulus: n2_key.n().to_bytes_be(),
                request: SignatureRequest {
                    key_type: s.key_type,
                    scheme: SignatureScheme::Pkcs1v15,
                    hash: HashAlgorithm::Sha256,
                    digest,
                    encoded_message: x.clone(),
                },
            });
            self.keys.push((
                s.key_type,
                ServerKey {
                    n1: s.client_modulus.clone(),
                    d1_server: ServerShare::from_bytes(d1_server).unwrap(),
                    n2_key,
                    composite,
                    x_proof: x,
                },
            ));
        }
        challenges
    }

    /// `s1 = s1'·s1''` verifies against `x` mod n1: the PIN was right.
    fn client_half_verifies(&self, kt: KeyType, sealed: &[u8], aad: &[u8], x: &[u8]) -> bool {
        let k = self.key(kt);
        let s1_device = open_with_ec_private_key(&self.transport_secret, sealed, aad).unwrap();
        let s1_server = server_partial(&k.d1_server, &k.n1, x).unwrap();
        let s1 = combine_client_shares(&s1_device, &s1_server, &k.n1).unwrap();
        verify_raw(&s1, x, &k.n1, PUBLIC_EXPONENT)
    }

    fn complete(&self, m: &CompleteRegistration) -> CompleteRegistrationReply {
        let failed: Vec<KeyType> = m
            .shares
            .iter()
            .filter(|s| {
                let aad = aad_proof_share(&self.registration_id, s.key_type);
                !self.client_half_verifies(
                    s.key_type,
                    &s.share_envelope,
                    &aad,
                    &self.key(s.key_type).x_proof,
                )
            })
            .map(|s| s.key_type)
            .collect();
        if !failed.is_empty() {
            return CompleteRegistrationReply {
                account: None,
                device_secret: Vec::new(),
                clone_tokens: Vec::new(),
                failed,
                attempts_left: 2,
            };
        }
        CompleteRegistrationReply {
            account: Some(AccountInfo {
                account_id: "acc-7".into(),
                document_number: "PNOEE-30303039914-MOCK-Q".into(),
                identity: Identity {
                    given_name: "MARY ÄNN".into(),
                    surname: "O’CONNEŽ-ŠUSLIK TESTNUMBER".into(),
                    country: "EE".into(),
                    national_id: "30303039914".into(),
                },
                expires_at_unix: 1_950_000_000,
                certificates: vec![
                    (KeyType::Auth, b"auth-cert".to_vec()),
                    (KeyType::Sign, b"sign-cert".to_vec()),
                ],
            }),
            device_secret: vec![0xd5; 32],
            clone_tokens: vec![(KeyType::Auth, vec![1; 32]), (KeyType::Sign, vec![2; 32])],
            failed: Vec::new(),
            attempts_left: 0,
        }
    }

    /// Judges a confirmation of `x` for `account_id`: the composite signature, or `None` for
    /// a wrong PIN.
    fn judge(
        &self,
        m: &ConfirmMessage,
        kt: KeyType,
        account_id: &str,
        x: &[u8],
    ) -> Option<Vec<u8>> {
        let ConfirmAnswer::Signed(a) = &m.answer else {
            panic!("expected a signature");
        };
        let aad = aad_partial_signature(&m.transaction_id, account_id, kt);
        if !self.client_half_verifies(kt, &a.share_envelope, &aad, x) {
            return None;
        }
        let k = self.key(kt);
        let s1_device =
            open_with_ec_private_key(&self.transport_secret, &a.share_envelope, &aad).unwrap();
        let s1 = combine_client_shares(
            &s1_device,
            &server_partial(&k.d1_server, &k.n1, x).unwrap(),
            &k.n1,
        )
        .unwrap();
        let n2 = k.n2_key.n().to_bytes_be();
        let s2 = mod_pow_secret(x, &k.n2_key.d().to_bytes_be(), &n2).unwrap();
        Some(crt_combine(&s1, &k.n1, &s2, &n2).unwrap())
    }

    fn composite_public_key(&self, kt: KeyType) -> RsaPublicKey {
        RsaPublicKey::new(
            BigUint::from_bytes_be(&self.key(kt).composite),
            BigUint::from(PUBLIC_EXPONENT),
        )
        .unwrap()
    }
}

/// Registers a device against `server`: start, keys, a proof with a wrong PIN2, the right
/// proof. Returns the device state.
fn register(server: &mut FakeServer, rng: &mut StdRng) -> DeviceState {
    let (start, awaiting) = registration::start([9; 16], rng);
    let mut reg: Registration = awaiting
        .accept(server.start_reply(&start, None), rng)
        .unwrap();
    assert_eq!(
        reg.matching_code,
        vc::matching_code(&server.registration_id, &start.device_challenge)
    );
    let (pin1, pin2) = (Pin::new(PIN1).unwrap(), Pin::new(PIN2).unwrap());
    let params = KeyParams {
        form: ShareForm::Exponent,
        key_bits: BITS,
        kdf: KdfParams::testing(),
    };
    let prepared = reg
        .prepare_keys(&server.transport, params, &pin1, &pin2, rng)
        .unwrap();
    let types: Vec<_> = prepared.submissions.iter().map(|s| s.key_type).collect();
    assert_eq!(types, [KeyType::Auth, KeyType::Sign]);
    let challenges = server.submit_keys(&prepared.submissions);
    reg.keys = prepared.accept(&challenges).unwrap();

    // PIN2 mistyped at the proof: the server tells, the registration is kept for a retry.
    let wrong = reg
        .prepare_proof(&pin1, &Pin::new("99999").unwrap(), &server.transport, rng)
        .unwrap();
    let reply = server.complete(&wrong);
    let keys = reg.keys.clone();
    let keystore =
        tandem_client_core::pin::KeystoreSecret::from_base64(&reg.keystore_secret.to_base64())
            .unwrap();
    match reg.complete(SERVER_URL, reply).unwrap() {
        ProofOutcome::PinMismatch {
            failed,
            attempts_left,
        } => {
            assert_eq!(failed, [KeyType::Sign]);
            assert_eq!(attempts_left, 2);
        }
        other => panic!("{other:?}"),
    }
    // The caller's copy of the registration (as the shell rebuilds it from its saved file).
    let reg = Registration {
        device_id: [9; 16],
        registration_id: server.registration_id.clone(),
        registration_secret: registration::RegistrationSecret::from_bytes(vec![0x5a; 32]),
        registration_code: "R-123456".into(),
        matching_code: vc::matching_code(&server.registration_id, &start.device_challenge),
        expires_at_unix: 1_900_000_000,
        keystore_secret: keystore,
        keys,
    };
    let right = reg
        .prepare_proof(&pin1, &pin2, &server.transport, rng)
        .unwrap();
    assert_ne!(right.nonce, wrong.nonce);
    let ProofOutcome::Completed(state) = reg.complete(SERVER_URL, server.complete(&right)).unwrap()
    else {
        panic!("the right PINs must complete the registration");
    };
    assert_eq!(state.server_url, SERVER_URL);
    assert_eq!(state.account_id, "acc-7");
    assert_eq!(state.surname, "O’CONNEŽ-ŠUSLIK TESTNUMBER");
    assert_eq!(
        state.key_pair(KeyType::Sign).unwrap().certificate,
        b"sign-cert"
    );
    assert!(
        state
            .key_pair(KeyType::Auth)
            .unwrap()
            .clone_token
            .ct_eq(&CloneToken::from_slice(&[1; 32]).unwrap())
    );
    // The state is one the app can save and read back.
    let back = DeviceState::from_json_bytes(&state.to_json_bytes().unwrap()).unwrap();
    assert_eq!(back.key_pairs.len(), 2);
    *state
}

#[test]
fn registration_and_confirmation_rounds_without_transport() {
    let mut rng = StdRng::seed_from_u64(2024);
    let mut server = FakeServer::new(7);
    let mut state = register(&mut server, &mut rng);

    // A signature of the gRPC relying-party API with the three-code choice.
    let digest = Sha256::digest(b"contract.pdf").to_vec();
    let bits = bit_length(&server.key(KeyType::Sign).composite);
    let x = encode_pss(HashAlgorithm::Sha256, &digest, bits, &mut rng).unwrap();
    let code = vc::verification_code(&digest);
    let mut t = PendingTransaction {
        transaction_id: "tx-1".into(),
        relying_party_name: "Bank".into(),
        display_text: "Sign the contract".into(),
        request: SignatureRequest {
            key_type: KeyType::Sign,
            scheme: SignatureScheme::Pss,
            hash: HashAlgorithm::Sha256,
            digest: digest.clone(),
            encoded_message: x.clone(),
        },
        vc_choices: vec!["0000".into(), code.clone(), "9999".into()],
        rp_api: None,
    };
    let p = protocol::prompt(&state, &t).unwrap();
    assert_eq!(
        (
            p.key_type,
            p.verification_code.as_str(),
            p.display_text.as_str()
        ),
        (KeyType::Sign, code.as_str(), "Sign the contract")
    );
    assert_eq!(p.vc_choices.len(), 3);

    let pin2 = Pin::new(PIN2).unwrap();
    let prepared =
        protocol::prepare_confirm(&state, &t, &pin2, Some(&code), &server.transport, &mut rng)
            .unwrap();
    assert_eq!(prepared.key_type, KeyType::Sign);
    assert!(prepared.callback.is_none());
    let ConfirmAnswer::Signed(answer) = &prepared.message.answer else {
        panic!("a signature was asked for");
    };
    assert_eq!(answer.chosen_vc.as_deref(), Some(code.as_str()));
    assert!(answer.acsp_v2.is_none() && answer.interaction_type_used.is_none());
    assert!(
        answer
            .clone_token
            .ct_eq(&CloneToken::from_slice(&[2; 32]).unwrap())
    );
    let s = server
        .judge(&prepared.message, KeyType::Sign, &state.account_id, &x)
        .expect("the right PIN verifies");
    // An ordinary RSASSA-PSS signature for the composite key, checked by the rsa crate.
    server
        .composite_public_key(KeyType::Sign)
        .verify(rsa::Pss::new::<Sha256>(), &digest, &s)
        .unwrap();
    let reply = ConfirmReply {
        outcome: ConfirmOutcome::Accepted,
        next_clone_token: Some(CloneToken::from_slice(&[3; 32]).unwrap()),
    };
    assert!(prepared.callback_after(reply.outcome).is_none());
    protocol::confirm::store_next_clone_token(
        &mut state,
        prepared.key_type,
        reply.next_clone_token.unwrap(),
    );
    assert!(
        state
            .key_pair(KeyType::Sign)
            .unwrap()
            .clone_token
            .ct_eq(&CloneToken::from_slice(&[3; 32]).unwrap())
    );

    // A wrong PIN still produces a well-formed answer; only the server can tell.
    let wrong = protocol::prepare_confirm(
        &state,
        &t,
        &Pin::new("00000").unwrap(),
        Some(&code),
        &server.transport,
        &mut rng,
    )
    .unwrap();
    assert!(
        server
            .judge(&wrong.message, KeyType::Sign, &state.account_id, &x)
            .is_none()
    );

    // What the device refuses before any PIN: x that encodes another digest, a choice
    // without the transaction's code, a key pair it does not have.
    let mut other = t.clone();
    other.request.encoded_message = encode_pss(
        HashAlgorithm::Sha256,
        &Sha256::digest(b"other"),
        bits,
        &mut rng,
    )
    .unwrap();
    assert!(matches!(
        protocol::prompt(&state, &other),
        Err(Error::EncodingMismatch)
    ));
    assert!(matches!(
        protocol::prepare_confirm(&state, &other, &pin2, None, &server.transport, &mut rng),
        Err(Error::EncodingMismatch)
    ));
    for choices in [
        vec!["0000".to_owned(), "1111".into(), "9999".into()],
        vec![code.clone(), "1111".into()],
    ] {
        t.vc_choices = choices;
        assert!(matches!(
            protocol::prompt(&state, &t),
            Err(Error::Protocol(ProtocolError::VcChoice))
        ));
    }
    assert!(matches!(
        protocol::prepare_certificate_choice(&state, &t, &mut rng),
        Err(Error::Protocol(ProtocolError::VcChoice))
    ));
    t.vc_choices.clear();
    assert!(matches!(
        protocol::prepare_certificate_choice(&state, &t, &mut rng),
        Err(Error::Protocol(ProtocolError::NotCertificateChoice))
    ));
    let mut no_auth = DeviceState::from_json_bytes(&state.to_json_bytes().unwrap()).unwrap();
    no_auth.key_pairs.retain(|k| k.key_type == KeyType::Auth);
    assert!(matches!(
        protocol::prompt(&no_auth, &t),
        Err(Error::Protocol(ProtocolError::NoSuchKeyPair))
    ));
}

const INITIAL_CALLBACK: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";

/// An ACSP_V2 authentication of a Web2App flow, as the server shows it to the device.
fn acsp_session(rp_challenge: &str, interactions: &str) -> PendingTransaction {
    PendingTransaction {
        transaction_id: "sess-1".into(),
        relying_party_name: "DEMO".into(),
        display_text: String::new(),
        // The server's own request is not what the app signs for ACSP_V2.
        request: SignatureRequest {
            key_type: KeyType::Auth,
            scheme: SignatureScheme::Pss,
            hash: HashAlgorithm::Sha512,
            digest: Vec::new(),
            encoded_message: Vec::new(),
        },
        vc_choices: Vec::new(),
        rp_api: Some(RpApiContext {
            session_type: RpSessionType::Authentication,
            signature_protocol: Some(RpSignatureProtocol::AcspV2),
            scheme_name: "smart-id-demo".into(),
            server_random: "MTlop6EXCrQ6FOErcKjxUhbV".into(),
            rp_challenge: rp_challenge.into(),
            interactions: interactions.into(),
            initial_callback_url: Some(INITIAL_CALLBACK.into()),
            flow_type: RpFlowType::Web2App,
            signature_algorithm: "rsassa-pss".into(),
            hash_algorithm: "SHA-512".into(),
            verification_code: String::new(),
            linked_session_id: None,
            callback: Some(SameDeviceCallback {
                initial_callback_url: INITIAL_CALLBACK.into(),
                session_secret_digest: URL_SAFE_NO_PAD.encode(Sha256::digest(b"session secret")),
            }),
        }),
    }
}

#[test]
fn acsp_v2_authentication_and_certificate_choice_without_transport() {
    let mut rng = StdRng::seed_from_u64(77);
    let mut server = FakeServer::new(8);
    let state = register(&mut server, &mut rng);
    let rp_challenge = STANDARD.encode([0x42u8; 64]);
    let interactions = STANDARD.encode(
        r#"[{"type":"somethingNew","displayText60":"?"},{"type":"displayTextAndPIN","displayText60":"Log in to DEMO"}]"#,
    );
    let t = acsp_session(&rp_challenge, &interactions);

    let p = protocol::prompt(&state, &t).unwrap();
    assert_eq!(p.key_type, KeyType::Auth);
    assert_eq!(p.display_text, "Log in to DEMO");
    assert_eq!(p.verification_code, vc::verification_code(&[0x42u8; 64]));
    assert_eq!(
        p.interaction.as_ref().unwrap().kind,
        rp_api::DISPLAY_TEXT_AND_PIN
    );

    let prepared = protocol::prepare_confirm(
        &state,
        &t,
        &Pin::new(PIN1).unwrap(),
        None,
        &server.transport,
        &mut rng,
    )
    .unwrap();
    let ConfirmAnswer::Signed(answer) = &prepared.message.answer else {
        panic!("an authentication is signed");
    };
    let acsp = answer.acsp_v2.as_ref().unwrap();
    assert_eq!(
        answer.interaction_type_used.as_deref(),
        Some(rp_api::DISPLAY_TEXT_AND_PIN)
    );
    // The server rebuilds the payload from its own values and the app's userChallenge, and
    // accepts only an x that encodes its digest.
    let digest = rp_api::acsp_v2_digest(
        &AcspV2Fields {
            scheme_name: "smart-id-demo",
            server_random: "MTlop6EXCrQ6FOErcKjxUhbV",
            rp_challenge: &rp_challenge,
            user_challenge: &acsp.user_challenge,
            relying_party_name: "DEMO",
            brokered_rp_name: None,
            interactions: &interactions,
            interaction_type_used: rp_api::DISPLAY_TEXT_AND_PIN,
            initial_callback_url: Some(INITIAL_CALLBACK),
            flow_type: "Web2App",
        },
        HashAlgorithm::Sha512,
    );
    let bits = bit_length(&server.key(KeyType::Auth).composite);
    verify_encoding(
        SignatureScheme::Pss,
        HashAlgorithm::Sha512,
        &digest,
        &acsp.encoded_message,
        bits,
    )
    .unwrap();
    let s = server
        .judge(
            &prepared.message,
            KeyType::Auth,
            &state.account_id,
            &acsp.encoded_message,
        )
        .unwrap();
    server
        .composite_public_key(KeyType::Auth)
        .verify(rsa::Pss::new::<Sha512>(), &digest, &s)
        .unwrap();

    // The callback URL: only after an accepted confirmation, with the verifier of the
    // userChallenge the app signed.
    assert!(prepared.callback_after(ConfirmOutcome::WrongPin).is_none());
    let url = prepared
        .callback_after(ConfirmOutcome::Accepted)
        .unwrap()
        .as_str()
        .to_owned();
    let verifier = url.split("userChallengeVerifier=").nth(1).unwrap();
    assert_eq!(rp_api::user_challenge(verifier), acsp.user_challenge);
    assert!(url.starts_with(&format!("{INITIAL_CALLBACK}&sessionSecretDigest=")));
    // A refusal opens the URL without a verifier.
    let refused = rp_session::callback_url(&t, None).unwrap().unwrap();
    assert!(!refused.as_str().contains("userChallengeVerifier"));

    // Refused before any PIN: a callback URL other than the one the payload binds, an
    // interaction list with nothing this app can show, a challenge that is not Base64.
    let mut moved = t.clone();
    moved
        .rp_api
        .as_mut()
        .unwrap()
        .callback
        .as_mut()
        .unwrap()
        .initial_callback_url = "https://evil.example/cb".into();
    assert!(matches!(
        protocol::prompt(&state, &moved),
        Err(Error::Protocol(ProtocolError::CallbackUrl))
    ));
    let unshowable = acsp_session(
        &rp_challenge,
        &STANDARD.encode(r#"[{"type":"somethingNew","displayText60":"?"}]"#),
    );
    assert!(matches!(
        protocol::prompt(&state, &unshowable),
        Err(Error::Protocol(ProtocolError::NoSupportedInteraction))
    ));
    assert!(matches!(
        protocol::prompt(&state, &acsp_session("not base64!", &interactions)),
        Err(Error::Protocol(ProtocolError::RpChallenge))
    ));
    let mut bad_hash = t.clone();
    bad_hash.rp_api.as_mut().unwrap().hash_algorithm = "MD5".into();
    assert!(matches!(
        protocol::prepare_confirm(
            &state,
            &bad_hash,
            &Pin::new(PIN1).unwrap(),
            None,
            &server.transport,
            &mut rng
        ),
        Err(Error::Protocol(ProtocolError::UnsupportedHash))
    ));

    // A certificate choice: no PIN, no signature, the callback after acceptance.
    let mut choice = t.clone();
    choice.rp_api.as_mut().unwrap().session_type = RpSessionType::CertificateChoice;
    choice.rp_api.as_mut().unwrap().signature_protocol = None;
    assert!(
        protocol::prompt(&state, &choice)
            .unwrap()
            .certificate_choice
    );
    let answered = protocol::prepare_certificate_choice(&state, &choice, &mut rng).unwrap();
    assert!(matches!(
        answered.message.answer,
        ConfirmAnswer::CertificateChoice
    ));
    let url = answered.callback_after(ConfirmOutcome::Accepted).unwrap();
    assert!(!url.as_str().contains("userChallengeVerifier"));
    // The PIN path answers a choice the same way, without using the PIN.
    let via_pin = protocol::prepare_confirm(
        &state,
        &choice,
        &Pin::new("0000").unwrap(),
        None,
        &server.transport,
        &mut rng,
    )
    .unwrap();
    assert!(matches!(
        via_pin.message.answer,
        ConfirmAnswer::CertificateChoice
    ));
}

#[test]
fn registration_refuses_a_wrong_matching_code_or_composite() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut server = FakeServer::new(9);
    let (start, awaiting) = registration::start([1; 16], &mut rng);
    let right = vc::matching_code(&server.registration_id, &start.device_challenge);
    let wrong = format!("{:04}", (right.parse::<u32>().unwrap() + 1) % 10_000);
    assert!(matches!(
        awaiting.accept(server.start_reply(&start, Some(&wrong)), &mut rng),
        Err(Error::Protocol(ProtocolError::MatchingCode))
    ));

    let (start, awaiting) = registration::start([1; 16], &mut rng);
    let reg = awaiting
        .accept(server.start_reply(&start, None), &mut rng)
        .unwrap();
    let (pin1, pin2) = (Pin::new(PIN1).unwrap(), Pin::new(PIN2).unwrap());
    // The token-rsa share form needs an RSA transport key: refused before any key is made.
    let token_rsa = KeyParams {
        form: ShareForm::RsaKey,
        key_bits: BITS,
        kdf: KdfParams::testing(),
    };
    assert!(matches!(
        reg.prepare_keys(&server.transport, token_rsa, &pin1, &pin2, &mut rng),
        Err(Error::TransportKeyNotRsa)
    ));
    let params = KeyParams {
        form: ShareForm::Exponent,
        ..token_rsa
    };
    let prepared = reg
        .prepare_keys(&server.transport, params, &pin1, &pin2, &mut rng)
        .unwrap();
    let mut challenges = server.submit_keys(&prepared.submissions);
    // A composite modulus that is not n1·n2 (another n2 than the one named).
    let other_n2 = challenges[0].server_modulus.clone();
    challenges[1].server_modulus = other_n2;
    assert!(matches!(
        prepared.accept(&challenges),
        Err(Error::Protocol(ProtocolError::CompositeModulus))
    ));
    // A missing challenge.
    let prepared = reg
        .prepare_keys(&server.transport, params, &pin1, &pin2, &mut rng)
        .unwrap();
    let challenges = server.submit_keys(&prepared.submissions);
    assert!(matches!(
        prepared.accept(&challenges[..1]),
        Err(Error::Protocol(ProtocolError::NoChallenge(KeyType::Sign)))
    ));
}

/// The load generator's variants keep the protocol's checks: a precomputed signature only
/// for exactly its message, a caller's exponentiation only after the encoding check.
#[cfg(feature = "bench-variants")]
#[test]
fn load_generator_variants_keep_the_checks() {
    use std::cell::Cell;
    use tandem_client_core::protocol::bench;
    use tandem_client_core::sign::SigningRequest;

    let mut rng = StdRng::seed_from_u64(31);
    let mut server = FakeServer::new(10);
    let state = register(&mut server, &mut rng);
    let pin2 = Pin::new(PIN2).unwrap();
    let bits = bit_length(&server.key(KeyType::Sign).composite);
    let tx = |id: &str, digest: &[u8], x: Vec<u8>| PendingTransaction {
        transaction_id: id.into(),
        relying_party_name: "Load".into(),
        display_text: "Load test".into(),
        request: SignatureRequest {
            key_type: KeyType::Sign,
            scheme: SignatureScheme::Pkcs1v15,
            hash: HashAlgorithm::Sha256,
            digest: digest.to_vec(),
            encoded_message: x,
        },
        vc_choices: Vec::new(),
        rp_api: None,
    };
    let digest = Sha256::digest(b"load").to_vec();
    let x = encode_pkcs1v15(HashAlgorithm::Sha256, &digest, bits).unwrap();
    let pre = bench::precompute(
        &state,
        KeyType::Sign,
        &pin2,
        &SigningRequest {
            scheme: SignatureScheme::Pkcs1v15,
            hash: HashAlgorithm::Sha256,
            digest: digest.clone(),
            encoded_message: x.clone(),
            composite_modulus_bits: bits,
        },
    )
    .unwrap();
    for id in ["load-1", "load-2"] {
        let prepared = bench::prepare_confirm_precomputed(
            &state,
            &tx(id, &digest, x.clone()),
            &pre,
            &server.transport,
            &mut rng,
        )
        .unwrap();
        let s = server
            .judge(&prepared.message, KeyType::Sign, &state.account_id, &x)
            .unwrap();
        server
            .composite_public_key(KeyType::Sign)
            .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &s)
            .unwrap();
    }
    let other = Sha256::digest(b"other").to_vec();
    let other_x = encode_pkcs1v15(HashAlgorithm::Sha256, &other, bits).unwrap();
    assert!(matches!(
        bench::prepare_confirm_precomputed(
            &state,
            &tx("load-3", &other, other_x),
            &pre,
            &server.transport,
            &mut rng
        ),
        Err(Error::Protocol(ProtocolError::NotPrecomputed))
    ));
    // The precomputed x under another digest: refused by the prompt's encoding check.
    assert!(matches!(
        bench::prepare_confirm_precomputed(
            &state,
            &tx("load-4", &other, x.clone()),
            &pre,
            &server.transport,
            &mut rng
        ),
        Err(Error::EncodingMismatch)
    ));

    let share = state
        .key_pair(KeyType::Sign)
        .unwrap()
        .protected_share
        .unlock(&pin2, &state.keystore_secret)
        .unwrap();
    let calls = Cell::new(0);
    let exp = |b: &[u8], e: &[u8], n: &[u8]| {
        calls.set(calls.get() + 1);
        mod_pow_secret(b, e, n)
    };
    let prepared = bench::prepare_confirm_with_share_using(
        &state,
        &tx("load-5", &digest, x.clone()),
        &share,
        None,
        &server.transport,
        &exp,
        &mut rng,
    )
    .unwrap();
    assert_eq!(calls.get(), 1);
    assert!(
        server
            .judge(&prepared.message, KeyType::Sign, &state.account_id, &x)
            .is_some()
    );
    assert!(matches!(
        bench::prepare_confirm_with_share_using(
            &state,
            &tx("load-6", &other, x.clone()),
            &share,
            None,
            &server.transport,
            &exp,
            &mut rng,
        ),
        Err(Error::EncodingMismatch)
    ));
    assert_eq!(calls.get(), 1, "nothing is exponentiated before the checks");
    let with_share = bench::prepare_confirm_with_share(
        &state,
        &tx("load-7", &digest, x.clone()),
        &share,
        None,
        &server.transport,
        &mut rng,
    )
    .unwrap();
    assert!(
        server
            .judge(&with_share.message, KeyType::Sign, &state.account_id, &x)
            .is_some()
    );
}
