//! The lockout through the transport-free core (issue 21's acceptance): register an
//! account, start a signature, confirm with wrong PINs until the key pair locks, see a
//! confirmation refused while it is locked, and sign with the right PIN once the lock is
//! over. No gRPC, no HTTP: `tandem_server::core` with an in-memory store, a fixed clock, a
//! seeded RNG and a real PKCS#11 token (SoftHSM, or hsm-sim with `TANDEM_TEST_HSM=hsm-sim`);
//! the device side is client-core's sans-IO protocol.
//!
//! As in `core_register.rs`, each test runs its body in a child process with a freshly
//! provisioned token, and a marker proves that the body ran.

#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest as _, Sha256};
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::protocol::{
    self, AccountInfo, CompleteRegistrationReply, ConfirmAnswer, KeyParams, PendingTransaction,
    ProofOutcome, ShareForm, SignatureRequest, StartRegistrationReply, TransportKey,
};
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_server::ca::Ca;
use tandem_server::config::Config;
use tandem_server::core::confirm::{
    self, ConfirmOutcome, ConfirmReplies, ConfirmRequest, Confirmed, Confirmer, DeviceAnswer,
};
use tandem_server::core::register::{
    self, Approval, Completed, CompletionOutcome, Registrar, RegistrationReplies,
    RegistrationRules, Started,
};
use tandem_server::core::start::{
    self, Api, DigestToSign, Flow, Message, StartRefused, StartRequest, StartSettings, Target,
    VcRule,
};
use tandem_server::core::{Clock, FixedClock};
use tandem_server::hsm::{CaKeySpec, Hsm, HsmConfig, TokenPin, TransportKeySpec};
use tandem_server::lockout::LockoutPolicy;
use tandem_server::store::prelude::*;
use tandem_server::store::{EndResult, Identity, Reply, ReplyLookup, SqliteStore, TxKind};

const TOKEN_LABEL: &str = "tandem-core-lockout";
const CHILD_DIR_ENV: &str = "TANDEM_CORE_LOCKOUT_CHILD_DIR";
/// 2026-01-01T00:00:00Z in milliseconds.
const T0_MS: i64 = 1_767_225_600_000;
const PIN1: &str = "1234";
const PIN2: &str = "12345";
const WRONG_PIN2: &str = "54321";

fn use_hsm_sim() -> bool {
    std::env::var("TANDEM_TEST_HSM").as_deref() == Ok("hsm-sim")
}

fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TANDEM_TEST_PKCS11_MODULE") {
        return PathBuf::from(path);
    }
    if use_hsm_sim() {
        // target/debug/deps/<this test> → target/debug/libtandem_hsm_sim.so
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .and_then(Path::parent)
            .unwrap()
            .join("libtandem_hsm_sim.so")
    } else {
        PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
    }
}

/// Runs `body` in a child process with a fresh token of its own. `name` is the calling
/// test's name.
fn with_fresh_token(name: &str, body: impl FnOnce(&Path)) {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        let dir = PathBuf::from(dir);
        if use_hsm_sim() {
            tandem_server::hsm::provision_token(
                &module_path(),
                TOKEN_LABEL,
                &TokenPin::from_file(dir.join("so-pin")).unwrap(),
                &TokenPin::from_file(dir.join("user-pin")).unwrap(),
            )
            .unwrap();
        }
        body(&dir);
        std::fs::write(dir.join(format!("ran-{name}")), b"ok").unwrap();
        return;
    }
    let module = module_path();
    assert!(
        module.exists(),
        "PKCS#11 module {} not found (SoftHSM 2, or `cargo build -p tandem-hsm-sim`)",
        module.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let module_env = if use_hsm_sim() {
        for (file, pin) in [("so-pin", "so-pin-1234"), ("user-pin", "user-pin-1234")] {
            let path = dir.path().join(file);
            std::fs::write(&path, pin).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        ("TANDEM_HSM_SIM_DIR", dir.path().join("tokens"))
    } else {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/softhsm-provision.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(dir.path())
            .arg(TOKEN_LABEL)
            .arg(dir.path().join("user-pin"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm-provision.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            "SOFTHSM2_CONF",
            dir.path().canonicalize().unwrap().join("softhsm2.conf"),
        )
    };
    let status = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_DIR_ENV, dir.path())
        .env(module_env.0, &module_env.1)
        .env("TANDEM_TEST_PKCS11_MODULE", &module)
        .status()
        .unwrap();
    assert!(status.success(), "test body failed in the child process");
    assert!(
        dir.path().join(format!("ran-{name}")).exists(),
        "the child process did not run {name}"
    );
}

/// The server's parts, as `run` sets them up, on the child's token.
struct Server {
    store: SqliteStore,
    hsm: Hsm,
    ca: Ca,
    config: Config,
}

impl Server {
    fn new(dir: &Path) -> Self {
        let hsm = Hsm::open(&HsmConfig {
            module_path: module_path(),
            token_label: TOKEN_LABEL.into(),
            user_pin: TokenPin::from_file(dir.join("user-pin")).unwrap(),
        })
        .unwrap();
        hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        let mut config = Config::defaults(module_path(), TOKEN_LABEL.into());
        hsm.use_share_exponentiation(config.hsm.share_exponentiation)
            .unwrap();
        config.pki.key_spec = CaKeySpec::EcP384;
        config.keys.client_key_bits = vec![2048];
        config.keys.server_key_bits = 2048;
        config.keys.server_key_pool = 0;
        assert_eq!(config.lockout, LockoutPolicy::default(), "3 / 6 / 9");
        let data = dir.join("data");
        tandem_server::ca::init(&config, &data, &hsm).unwrap();
        let ca = Ca::load(&config, &data, &hsm).unwrap();
        Self {
            store: SqliteStore::open_in_memory().unwrap(),
            hsm,
            ca,
            config,
        }
    }

    fn transport(&self) -> TransportKey {
        TransportKey::from_spki_der(&self.hsm.transport_public_key_der().unwrap()).unwrap()
    }

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
    let rules = RegistrationRules::from_config(&server.config);
    let ctx = Registrar {
        store: &server.store,
        hsm: &server.hsm,
        ca: &server.ca,
        rules: &rules,
        clock,
    };
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
