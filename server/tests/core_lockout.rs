//! The lockout through the transport-free core (issue 21's acceptance): register an
//! account, start a signature, confirm with wrong PINs until the key pair locks, see a
//! confirmation refused while it is locked, and sign with the right PIN once the lock is
//! over. No gRPC, no HTTP: `tandem_server::core` with an in-memory store, a fixed clock, a
//! seeded RNG and a real PKCS#11 token (SoftHSM, or hsm-sim with `TANDEM_TEST_HSM=hsm-sim`);
//! the device side is client-core's sans-IO protocol.
//!
//! As in `core_register.rs`, each test runs its body in a child process with a freshly
//! provisioned token (`common::with_fresh_token`), and a marker proves that the body ran.

#![allow(clippy::unwrap_used)]

mod common;

use std::cell::{Cell, RefCell};

use common::{PIN1, PIN2, Server, T0_MS, with_fresh_token};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest as _, Sha256};
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::protocol::{
    self, AccountInfo, CompleteRegistrationReply, ConfirmAnswer, KeyParams, PendingTransaction,
    ProofOutcome, ShareForm, SignatureRequest, StartRegistrationReply,
};
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_server::core::confirm::{
    self, ConfirmOutcome, ConfirmReplies, ConfirmRequest, Confirmed, Confirmer, DeviceAnswer,
};
use tandem_server::core::register::{
    self, Approval, Completed, CompletionOutcome, RegistrationReplies, Started,
};
use tandem_server::core::start::{
    self, Api, DigestToSign, Flow, Message, StartRefused, StartRequest, StartSettings, Target,
    VcRule,
};
use tandem_server::core::{Clock, FixedClock};
use tandem_server::lockout::LockoutPolicy;
use tandem_server::store::prelude::*;
use tandem_server::store::{EndResult, Identity, Reply, ReplyLookup, TxKind};

const WRONG_PIN2: &str = "54321";

impl Server {
    fn confirmer<'a>(&'a self, clock: &'a dyn Clock) -> Confirmer<'a> {
        Confirmer {
            store: &self.store,
            hsm: &self.hsm,
            hsm_call_timeout: self.config.hsm.call_timeout(),
            policy: &self.config.lockout,
            scheme_name: "smart-id-demo",
            clock,
        }
    }
}

/// Replies as a shell would seal them: a label of the outcome under a fresh nonce, so the
/// test can see that each outcome was stored with its state change. Also counts the
/// crash-test hook (attempt counted, share not judged yet).
struct Recorded {
    scope: &'static str,
    asked: RefCell<Vec<(Vec<u8>, String)>>,
    counted: Cell<u32>,
}

impl Recorded {
    fn new(scope: &'static str) -> Self {
        Self {
            scope,
            asked: RefCell::default(),
            counted: Cell::default(),
        }
    }

    fn reply(&self, label: String) -> Reply {
        let mut asked = self.asked.borrow_mut();
        let nonce = (asked.len() as u128).to_be_bytes().to_vec();
        asked.push((nonce.clone(), label.clone()));
        Reply {
            scope: self.scope.into(),
            nonce,
            request_hash: vec![7; 32],
            response: label.into_bytes(),
        }
    }

    /// The labels of the replies the store holds, in the order asked.
    fn stored(&self, store: &dyn Store) -> Vec<String> {
        self.asked
            .borrow()
            .iter()
            .filter(|(nonce, _)| {
                matches!(
                    store.lookup_reply(self.scope, nonce, &[7; 32]).unwrap(),
                    ReplyLookup::Replay(_)
                )
            })
            .map(|(_, label)| label.clone())
            .collect()
    }
}

fn label(c: &Confirmed) -> String {
    let outcome = match &c.outcome {
        ConfirmOutcome::Accepted { .. } => "accepted",
        ConfirmOutcome::WrongPin { .. } => "wrong-pin",
        ConfirmOutcome::Locked { .. } => "locked",
        ConfirmOutcome::Disabled => "disabled",
        ConfirmOutcome::CloneDetected => "clone",
        ConfirmOutcome::WrongVc => "wrong-vc",
        ConfirmOutcome::TransactionClosed { .. } => "closed",
    };
    format!("{outcome} failures={}", c.key_pair.consecutive_failures)
}

impl ConfirmReplies for Recorded {
    fn sealed(&self, confirmed: &Confirmed) -> Reply {
        self.reply(label(confirmed))
    }
    fn attempt_counted(&self) {
        self.counted.set(self.counted.get() + 1);
    }
}

impl RegistrationReplies for Recorded {
    fn started(&self, started: &Started) -> Reply {
        self.reply(format!("started {}", started.registration_id))
    }
    fn keys_submitted(&self, challenges: &[protocol::ProofChallenge]) -> Reply {
        self.reply(format!("challenges {}", challenges.len()))
    }
    fn proof_failed(&self, failed: &[KeyType], attempts_left: u32) -> Reply {
        self.reply(format!("failed {failed:?} left {attempts_left}"))
    }
    fn completed(&self, completed: &Completed) -> Reply {
        self.reply(format!("completed {}", completed.account.account_id))
    }
}

/// Registers a device through the core (start, approval, keys, proof) and returns its state.
fn register_device(server: &Server, clock: &FixedClock, rng: &mut StdRng) -> DeviceState {
    let replies = Recorded::new("registration");
    let ctx = server.registrar(clock);
    let (message, awaiting) = protocol::registration::start([5; 16], rng);
    let started = register::start(
        &ctx,
        rng,
        &register::StartRequest {
            device_id: message.device_id,
            device_challenge: message.device_challenge,
        },
        &replies,
    )
    .unwrap();
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
        .unwrap();
    register::approve(
        &server.store,
        clock,
        &Approval {
            code: device.registration_code.clone(),
            identity: Identity {
                given_name: "MARY".into(),
                surname: "TESTNUMBER".into(),
                country: "EE".into(),
                national_id: "30303039914".into(),
            },
            document_number: None,
        },
    )
    .unwrap();
    let find = || {
        register::find(
            &server.store,
            &device.registration_id,
            &device.registration_secret,
        )
        .unwrap()
    };
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
    let reg = find().awaiting_keys(clock).unwrap();
    let challenges =
        register::submit_keys(&ctx, rng, reg, &prepared.submissions, &replies).unwrap();
    device.keys = prepared.accept(&challenges).unwrap();
    let proof = device
        .prepare_proof(
            &Pin::new(PIN1).unwrap(),
            &Pin::new(PIN2).unwrap(),
            &server.transport(),
            rng,
        )
        .unwrap();
    let reg = find().awaiting_proof(clock).unwrap();
    let outcome = register::complete(&ctx, rng, reg, &proof.shares, &replies).unwrap();
    let CompletionOutcome::Completed(completed) = outcome else {
        panic!("the proof failed: {outcome:?}");
    };
    let account = &completed.account;
    let reply = CompleteRegistrationReply {
        account: Some(AccountInfo {
            account_id: account.account_id.clone(),
            document_number: account.document_number.clone(),
            identity: Default::default(),
            expires_at_unix: account.expires_at,
            certificates: Vec::new(),
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
        ProofOutcome::Completed(state) => *state,
        other => panic!("{other:?}"),
    }
}

fn digest() -> Vec<u8> {
    Sha256::digest(b"the contract the person signs").to_vec()
}

/// A signature for the account's document, started as the gRPC relying-party API does.
fn start_signature(
    server: &Server,
    clock: &FixedClock,
    rng: &mut StdRng,
    document: &str,
) -> Result<String, StartRefused> {
    let started = start::start(
        &server.store,
        &StartSettings::of(&server.config),
        &StartRequest {
            kind: TxKind::Signature,
            target: Target::Document(document.into()),
            flow: Flow::Notification,
            message: Message::Digest(DigestToSign {
                hash: HashAlgorithm::Sha256,
                scheme: SignatureScheme::Pkcs1v15,
                digest: digest(),
            }),
            vc: VcRule::FromDigest,
            vc_choice: false,
            relying_party_name: "DEMO".into(),
            display_text: "Sign the contract".into(),
            timeout_seconds: Some(24 * 3600),
            api: Api::Grpc,
        },
        clock,
        rng,
    )?;
    Ok(started.transaction_id)
}

/// What the device sees of a pending transaction (what `ListPending` carries).
fn pending(
    server: &Server,
    device: &DeviceState,
    id: &str,
    clock: &FixedClock,
) -> PendingTransaction {
    let t = server
        .store
        .transaction_for_account(id, &device.account_id, clock.now())
        .unwrap();
    PendingTransaction {
        transaction_id: t.tx.id.clone(),
        relying_party_name: t.tx.relying_party.clone(),
        display_text: t.tx.display_text.clone(),
        request: SignatureRequest {
            key_type: t.tx.key_type,
            scheme: t.tx.scheme,
            hash: t.tx.hash,
            digest: t.tx.digest.clone(),
            encoded_message: t.encoded_message.clone(),
        },
        vc_choices: t.tx.vc_choices.clone(),
        rp_api: None,
    }
}

/// The device answers transaction `id` with `pin`; the core judges it.
fn confirm_with(
    server: &Server,
    device: &DeviceState,
    id: &str,
    pin: &str,
    clock: &FixedClock,
    rng: &mut StdRng,
    replies: &Recorded,
) -> Confirmed {
    let t = pending(server, device, id, clock);
    let prepared = protocol::prepare_confirm(
        device,
        &t,
        &Pin::new(pin).unwrap(),
        None,
        &server.transport(),
        rng,
    )
    .unwrap();
    let ConfirmAnswer::Signed(signed) = &prepared.message.answer else {
        panic!("a signature was asked for");
    };
    let request = ConfirmRequest {
        account_id: &device.account_id,
        key_type: KeyType::Sign,
        transaction_id: id,
        read: None,
        answer: DeviceAnswer {
            clone_token: signed.clone_token.as_bytes(),
            share_envelope: &signed.share_envelope,
            chosen_vc: signed.chosen_vc.as_deref().unwrap_or_default(),
            interaction_type_used: "",
            user_challenge: "",
            encoded_message: &[],
        },
        device_ip: None,
    };
    confirm::confirm(&server.confirmer(clock), rng, request, replies).unwrap()
}

#[test]
fn wrong_pins_lock_the_key_pair_until_the_lock_is_over() {
    with_fresh_token(
        "wrong_pins_lock_the_key_pair_until_the_lock_is_over",
        |dir| {
            let server = Server::new(dir);
            assert_eq!(server.config.lockout, LockoutPolicy::default(), "3 / 6 / 9");
            let t0 = FixedClock(T0_MS);
            let now = t0.now();
            let mut rng = StdRng::seed_from_u64(21);
            let mut device = register_device(&server, &t0, &mut rng);
            let document = device.document_number.clone();
            let replies = Recorded::new("confirm");
            let sign_failures = || {
                server
                    .store
                    .key_pair(&device.account_id, KeyType::Sign)
                    .unwrap()
                    .consecutive_failures
            };

            // Two signatures are waiting: the first gets the wrong PINs, the second comes
            // after the lock.
            let first = start_signature(&server, &t0, &mut rng, &document).unwrap();
            let second = start_signature(&server, &t0, &mut rng, &document).unwrap();

            // Wrong PIN twice: counted before judging, two and then one attempt left.
            for (failures, left) in [(1, 2), (2, 1)] {
                let c = confirm_with(
                    &server, &device, &first, WRONG_PIN2, &t0, &mut rng, &replies,
                );
                let ConfirmOutcome::WrongPin {
                    failures: f,
                    locked_until,
                } = c.outcome
                else {
                    panic!("{c:?}");
                };
                assert_eq!((f, locked_until), (failures, None));
                assert_eq!(server.config.lockout.attempts_before_next_lock(f), left);
                assert_eq!(sign_failures(), failures);
                assert_eq!(replies.counted.get(), failures, "counted before judging");
            }
            // The third locks the key pair for three hours and ends the transaction.
            let c = confirm_with(
                &server, &device, &first, WRONG_PIN2, &t0, &mut rng, &replies,
            );
            let lock_end = now + 3 * 3600;
            match c.outcome {
                ConfirmOutcome::WrongPin {
                    failures: 3,
                    locked_until,
                } => {
                    assert_eq!(locked_until, Some(lock_end));
                }
                other => panic!("{other:?}"),
            }
            assert!(c.key_pair.is_locked(now));
            let kp = server
                .store
                .key_pair(&device.account_id, KeyType::Sign)
                .unwrap();
            assert_eq!(
                (kp.consecutive_failures, kp.locked_until),
                (3, Some(lock_end))
            );
            let tx = server.store.transaction(&first, now).unwrap();
            assert_eq!(tx.end_result, Some(EndResult::DocumentUnusable));
            // The PIN1 key pair is not touched.
            let auth = server
                .store
                .key_pair(&device.account_id, KeyType::Auth)
                .unwrap();
            assert_eq!(auth.consecutive_failures, 0);

            // While locked: no new signature starts, and the one still waiting is refused as
            // Locked without being judged or counted, even with the right PIN.
            assert!(matches!(
                start_signature(&server, &t0, &mut rng, &document),
                Err(StartRefused::NoUsableKey(KeyType::Sign))
            ));
            let later = FixedClock(T0_MS + 3_600_000);
            let c = confirm_with(&server, &device, &second, PIN2, &later, &mut rng, &replies);
            assert!(
                matches!(c.outcome, ConfirmOutcome::Locked { until } if until == lock_end),
                "{c:?}"
            );
            assert_eq!(sign_failures(), 3, "a locked attempt is not counted");
            assert_eq!(replies.counted.get(), 3);
            assert_eq!(
                server
                    .store
                    .transaction(&second, later.now())
                    .unwrap()
                    .end_result,
                Some(EndResult::DocumentUnusable)
            );
            assert_eq!(
                replies.stored(&server.store),
                [
                    "wrong-pin failures=1",
                    "wrong-pin failures=2",
                    "wrong-pin failures=3",
                    "locked failures=3",
                ],
                "every outcome is stored with its state change"
            );

            // Once the lock is over the right PIN signs, resets the count and renews the clone
            // token.
            let after = FixedClock((lock_end + 1) * 1000);
            let third = start_signature(&server, &after, &mut rng, &document).unwrap();
            let c = confirm_with(&server, &device, &third, PIN2, &after, &mut rng, &replies);
            let ConfirmOutcome::Accepted {
                next_clone_token: Some(token),
            } = c.outcome
            else {
                panic!("{c:?}");
            };
            assert_eq!(replies.counted.get(), 4);
            assert_eq!(sign_failures(), 0);
            assert_eq!(
                replies.stored(&server.store).last().unwrap(),
                "accepted failures=0"
            );
            let tx = server.store.transaction(&third, after.now()).unwrap();
            assert_eq!(tx.end_result, Some(EndResult::Ok));

            // The signature verifies under the account's public key n = n1·n2, e = 65537, as
            // the device holds it (not as the server stored it).
            let n = &device.key_pair(KeyType::Sign).unwrap().composite_modulus;
            let public =
                RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from(65_537u32)).unwrap();
            assert_eq!(public.n().bits(), 4096);
            let signature = tx.signature.unwrap();
            public
                .verify(Pkcs1v15Sign::new::<Sha256>(), &digest(), &signature)
                .expect("the composite signature verifies");
            let mut tampered = signature.clone();
            tampered[10] ^= 1;
            assert!(
                public
                    .verify(Pkcs1v15Sign::new::<Sha256>(), &digest(), &tampered)
                    .is_err()
            );

            // The old clone token is spent: the device keeps the new one, and signs again.
            protocol::confirm::store_next_clone_token(&mut device, KeyType::Sign, token);
            let fourth = start_signature(&server, &after, &mut rng, &document).unwrap();
            let c = confirm_with(&server, &device, &fourth, PIN2, &after, &mut rng, &replies);
            assert!(
                matches!(c.outcome, ConfirmOutcome::Accepted { .. }),
                "{c:?}"
            );
        },
    );
}
