//! Registration through the transport-free core (`tandem_server::core::register`): no gRPC,
//! no HTTP. The device side is client-core's sans-IO protocol; the server side runs on an
//! in-memory store, a fixed clock, a seeded RNG and a real PKCS#11 token (SoftHSM, or hsm-sim
//! with `TANDEM_TEST_HSM=hsm-sim`).
//!
//! Each test runs its body in a child process with a freshly provisioned token
//! (`common::with_fresh_token`).

#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;

use common::{PIN1, PIN2, Server, T0_MS, with_fresh_token};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::protocol::{
    self, AccountInfo, CompleteRegistrationReply, Identity as DeviceIdentity, KeyParams,
    ProofChallenge, ProofOutcome, ShareForm, StartRegistrationReply,
};
use tandem_client_core::types::KeyType;
use tandem_server::core::FixedClock;
use tandem_server::core::register::{
    self, Approval, Completed, CompletionOutcome, Phase, RegisterError, RegistrationReplies,
    Started,
};
use tandem_server::store::prelude::*;
use tandem_server::store::{Identity, Reply, ReplyLookup};

/// Replies as a shell would seal them: here a label of the outcome, under a fresh nonce, so
/// the test can find each in the store and see what the core decided before it stored it.
#[derive(Default)]
struct RecordedReplies {
    asked: RefCell<Vec<(Vec<u8>, String)>>,
}

impl RecordedReplies {
    fn reply(&self, label: String) -> Reply {
        let mut asked = self.asked.borrow_mut();
        let nonce = (asked.len() as u128).to_be_bytes().to_vec();
        asked.push((nonce.clone(), label.clone()));
        Reply {
            scope: "core-test".into(),
            nonce,
            request_hash: vec![7; 32],
            response: label.into_bytes(),
        }
    }

    /// The last reply asked for, as the store has it.
    fn last_stored(&self, store: &dyn Store) -> Option<String> {
        let asked = self.asked.borrow();
        let (nonce, label) = asked.last()?;
        match store.lookup_reply("core-test", nonce, &[7; 32]).unwrap() {
            ReplyLookup::Replay(bytes) => {
                assert_eq!(&String::from_utf8(bytes).unwrap(), label);
                Some(label.clone())
            }
            _ => None,
        }
    }
}

impl RegistrationReplies for RecordedReplies {
    fn started(&self, started: &Started) -> Reply {
        self.reply(format!("started {}", started.registration_id))
    }
    fn keys_submitted(&self, challenges: &[ProofChallenge]) -> Reply {
        self.reply(format!("challenges {}", challenges.len()))
    }
    fn proof_failed(&self, failed: &[KeyType], attempts_left: u32) -> Reply {
        self.reply(format!("failed {failed:?} left {attempts_left}"))
    }
    fn completed(&self, completed: &Completed) -> Reply {
        self.reply(format!("completed {}", completed.account.account_id))
    }
}

fn identity() -> Identity {
    Identity {
        given_name: "MARY".into(),
        surname: "TESTNUMBER".into(),
        country: "EE".into(),
        national_id: "30303039914".into(),
    }
}

/// A device registered up to the key hand-over: start, approval, keys, challenges accepted.
fn register_keys(
    server: &Server,
    clock: &FixedClock,
    rng: &mut StdRng,
    replies: &RecordedReplies,
) -> protocol::Registration {
    let ctx = server.registrar(clock);
    let (message, awaiting) = protocol::registration::start([5; 16], rng);
    let started = register::start(
        &ctx,
        rng,
        &register::StartRequest {
            device_id: message.device_id,
            device_challenge: message.device_challenge,
        },
        replies,
    )
    .unwrap();
    assert_eq!(
        replies.last_stored(&server.store).unwrap(),
        format!("started {}", started.registration_id),
        "the reply is stored with the registration"
    );
    let mut device = awaiting
        .accept(
            StartRegistrationReply {
                registration_id: started.registration_id.clone(),
                registration_secret: started.registration_secret.expose_secret().to_vec(),
                registration_code: started.registration_code.clone(),
                expires_at_unix: started.expires_at,
                matching_code: started.matching_code.clone(),
            },
            rng,
        )
        .expect("the device computes the same matching code");
    assert_eq!(started.expires_at, clock.0 / 1000 + 15 * 60);
    let find = || {
        register::find(
            &server.store,
            &device.registration_id,
            &device.registration_secret,
        )
        .unwrap()
    };
    assert_eq!(
        register::status(&find(), clock).phase,
        Phase::PendingApproval
    );
    // Keys before the approval are refused.
    assert!(matches!(
        find().awaiting_keys(clock),
        Err(RegisterError::NotAwaitingKeys)
    ));
    // A bad identity is refused and changes nothing; then the operator approves.
    let mut approval = Approval {
        code: device.registration_code.clone(),
        identity: Identity {
            country: "Estonia".into(),
            ..identity()
        },
        document_number: None,
    };
    assert!(matches!(
        register::approve(&server.store, clock, &approval),
        Err(RegisterError::Identity(_))
    ));
    assert_eq!(
        register::status(&find(), clock).phase,
        Phase::PendingApproval
    );
    approval.identity = identity();
    register::approve(&server.store, clock, &approval).unwrap();
    let status = register::status(&find(), clock);
    assert_eq!(status.phase, Phase::Approved);
    assert_eq!(status.identity, Some(identity()));

    let prepared = device
        .prepare_keys(
            &server.transport(),
            KeyParams {
                form: ShareForm::Exponent,
                key_bits: 2048,
                kdf: KdfParams::testing(),
            },
            &Pin::new(PIN1).unwrap(),
            &Pin::new(PIN2).unwrap(),
            rng,
        )
        .unwrap();
    // One key only: refused before the HSM is used.
    assert!(matches!(
        register::submit_keys(
            &ctx,
            rng,
            find().awaiting_keys(clock).unwrap(),
            &prepared.submissions[..1],
            replies,
        ),
        Err(RegisterError::KeySet)
    ));
    let challenges = register::submit_keys(
        &ctx,
        rng,
        find().awaiting_keys(clock).unwrap(),
        &prepared.submissions,
        replies,
    )
    .unwrap();
    assert_eq!(challenges.len(), 2);
    assert_eq!(replies.last_stored(&server.store).unwrap(), "challenges 2");
    assert_eq!(register::status(&find(), clock).phase, Phase::KeysSubmitted);
    // A second hand-over is refused.
    assert!(matches!(
        find().awaiting_keys(clock),
        Err(RegisterError::NotAwaitingKeys)
    ));
    device.keys = prepared
        .accept(&challenges)
        .expect("n = n1·n2 for each key pair");
    device
}

#[test]
fn full_registration_through_the_core() {
    with_fresh_token("full_registration_through_the_core", |dir| {
        let server = Server::new(dir);
        let clock = FixedClock(T0_MS);
        let mut rng = StdRng::seed_from_u64(21);
        let replies = RecordedReplies::default();
        let device = register_keys(&server, &clock, &mut rng, &replies);
        let ctx = server.registrar(&clock);
        let proof = device
            .prepare_proof(
                &Pin::new(PIN1).unwrap(),
                &Pin::new(PIN2).unwrap(),
                &server.transport(),
                &mut rng,
            )
            .unwrap();
        let reg = register::find(
            &server.store,
            &device.registration_id,
            &device.registration_secret,
        )
        .unwrap();
        let outcome = register::complete(
            &ctx,
            &mut rng,
            reg.clone().awaiting_proof(&clock).unwrap(),
            &proof.shares,
            &replies,
        )
        .unwrap();
        let CompletionOutcome::Completed(completed) = outcome else {
            panic!("the proof failed: {outcome:?}");
        };
        let account = &completed.account;
        assert_eq!(
            replies.last_stored(&server.store).unwrap(),
            format!("completed {}", account.account_id)
        );
        assert!(account.document_number.starts_with("PNOEE-30303039914-"));
        assert_eq!(account.expires_at, T0_MS / 1000 + 3 * 365 * 86_400);

        // The account is stored as the outcome says, and the device secret opens it.
        let stored = server
            .store
            .authenticate_device(&account.account_id, completed.device_secret.expose_secret())
            .unwrap()
            .expect("the device secret authenticates");
        assert_eq!(stored.document_number, account.document_number);
        let key_pairs = server.store.key_pairs(&account.account_id).unwrap();
        assert_eq!(key_pairs.len(), 2);
        for kp in &key_pairs {
            let new = account
                .key_pairs
                .iter()
                .find(|k| k.key_type == kp.key_type)
                .unwrap();
            assert_eq!(new.composite_modulus, kp.composite_modulus);
            assert_eq!(kp.consecutive_failures, 0);
        }
        let certs = server.store.certificates_of(&account.account_id).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(
            register::status(&reg, &clock).phase,
            Phase::KeysSubmitted,
            "status is of the registration as read"
        );
        let again = register::find(
            &server.store,
            &device.registration_id,
            &device.registration_secret,
        )
        .unwrap();
        assert_eq!(register::status(&again, &clock).phase, Phase::Completed);
        assert!(matches!(
            again.awaiting_proof(&clock),
            Err(RegisterError::NotAwaitingProof)
        ));

        // The device takes the answer and becomes a registered device.
        let reply = CompleteRegistrationReply {
            account: Some(AccountInfo {
                account_id: account.account_id.clone(),
                document_number: account.document_number.clone(),
                identity: DeviceIdentity {
                    given_name: account.identity.given_name.clone(),
                    surname: account.identity.surname.clone(),
                    country: account.identity.country.clone(),
                    national_id: account.identity.national_id.clone(),
                },
                expires_at_unix: account.expires_at,
                certificates: account
                    .key_pairs
                    .iter()
                    .map(|k| (k.key_type, k.certificate_der.clone()))
                    .collect(),
            }),
            device_secret: completed.device_secret.expose_secret().to_vec(),
            clone_tokens: completed
                .clone_tokens
                .iter()
                .map(|(k, t)| (*k, t.as_bytes().to_vec()))
                .collect(),
            failed: Vec::new(),
            attempts_left: 0,
        };
        match device.complete("https://127.0.0.1:1", reply).unwrap() {
            ProofOutcome::Completed(state) => {
                assert_eq!(state.account_id, account.account_id);
                assert_eq!(state.key_pairs.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        // Secrets stay redacted in the outcome's Debug.
        let debug = format!("{completed:?}");
        assert!(
            !debug.contains(&hex(completed.device_secret.expose_secret())),
            "{debug}"
        );
    });
}

#[test]
fn failed_proofs_use_up_the_attempts() {
    with_fresh_token("failed_proofs_use_up_the_attempts", |dir| {
        let server = Server::new(dir);
        let clock = FixedClock(T0_MS);
        let mut rng = StdRng::seed_from_u64(9);
        let replies = RecordedReplies::default();
        let device = register_keys(&server, &clock, &mut rng, &replies);
        let ctx = server.registrar(&clock);
        let find = || {
            register::find(
                &server.store,
                &device.registration_id,
                &device.registration_secret,
            )
            .unwrap()
        };
        // PIN2 mistyped: the SIGN proof fails, three times.
        for left in [2, 1, 0] {
            let proof = device
                .prepare_proof(
                    &Pin::new(PIN1).unwrap(),
                    &Pin::new("99999").unwrap(),
                    &server.transport(),
                    &mut rng,
                )
                .unwrap();
            let outcome = register::complete(
                &ctx,
                &mut rng,
                find().awaiting_proof(&clock).unwrap(),
                &proof.shares,
                &replies,
            )
            .unwrap();
            match outcome {
                CompletionOutcome::ProofFailed {
                    failed,
                    attempts_left,
                } => {
                    assert_eq!(failed, vec![KeyType::Sign]);
                    assert_eq!(attempts_left, left);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                replies.last_stored(&server.store).unwrap(),
                format!("failed [Sign] left {left}"),
                "the reply is stored with the count"
            );
            assert_eq!(find().registration().proof_attempts, 3 - left);
        }
        // The registration has failed for good; its shares are gone; the right PINs no
        // longer help.
        assert_eq!(register::status(&find(), &clock).phase, Phase::Failed);
        assert!(matches!(
            find().awaiting_proof(&clock),
            Err(RegisterError::NotAwaitingProof)
        ));
        for key in server
            .store
            .registration_keys(&device.registration_id)
            .unwrap()
        {
            assert!(key.server_share_blob.is_empty() && key.server_key_blob.is_empty());
        }
        assert!(server.store.all_accounts().unwrap().is_empty());
    });
}

#[test]
fn expiry_and_unknown_secrets_are_refused() {
    with_fresh_token("expiry_and_unknown_secrets_are_refused", |dir| {
        let server = Server::new(dir);
        let clock = FixedClock(T0_MS);
        let mut rng = StdRng::seed_from_u64(3);
        let replies = RecordedReplies::default();
        let device = register_keys(&server, &clock, &mut rng, &replies);
        // A wrong secret is the same refusal as an unknown id.
        let wrong = protocol::RegistrationSecret::from_bytes(vec![0; 32]);
        assert!(matches!(
            register::find(&server.store, &device.registration_id, &wrong),
            Err(RegisterError::UnknownRegistration)
        ));
        assert!(matches!(
            register::find(&server.store, "no-such-id", &device.registration_secret),
            Err(RegisterError::UnknownRegistration)
        ));
        // Fifteen minutes later the proof is refused and the registration shows as expired.
        let later = FixedClock(T0_MS + 15 * 60 * 1000);
        let reg = register::find(
            &server.store,
            &device.registration_id,
            &device.registration_secret,
        )
        .unwrap();
        assert_eq!(register::status(&reg, &later).phase, Phase::Expired);
        let e = reg.awaiting_proof(&later).unwrap_err();
        assert_eq!(e.to_string(), "the registration has expired; start again");
        // A code that expired cannot be approved.
        let (message, _) = protocol::registration::start([6; 16], &mut rng);
        let started = register::start(
            &server.registrar(&clock),
            &mut rng,
            &register::StartRequest {
                device_id: message.device_id,
                device_challenge: message.device_challenge,
            },
            &replies,
        )
        .unwrap();
        let e = register::approve(
            &server.store,
            &later,
            &Approval {
                code: started.registration_code,
                identity: identity(),
                document_number: None,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
    });
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
