//! The start decisions, driven through [`start`] with an in-memory store, a fixed clock and
//! a seeded RNG: no gRPC, no HTTP.

#![allow(clippy::unwrap_used)]

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tandem_client_core::encoding::verify_encoding;

use super::*;
use crate::core::FixedClock;
use crate::lockout::LockoutPolicy;
use crate::store::prelude::*;
use crate::store::{
    Identity, NewCertificate, NewRegistration, RegistrationKey, Reply, SqliteStore, TxForAccount,
};

const NOW: i64 = 1_800_000_000;
const RP: &str = "00000000-0000-4000-8000-000000000001";
const SETTINGS: StartSettings = StartSettings {
    transaction_seconds: 120,
    idempotency_seconds: 15,
};

fn reply(scope: &str, nonce: u8) -> Reply {
    Reply {
        scope: scope.into(),
        nonce: vec![nonce; 16],
        request_hash: vec![nonce; 32],
        response: vec![nonce],
    }
}

/// DER of a certificate (only its QC statements matter here): with the ETSI QcSSCD
/// statement when `qscd`.
fn certificate_der(qscd: bool) -> Vec<u8> {
    use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
    use openssl::x509::{X509Builder, X509Extension, X509NameBuilder};
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "TEST").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(NOW - 10).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(NOW + 10_000).unwrap())
        .unwrap();
    if qscd {
        // QCStatements ::= SEQUENCE { QCStatement { id-etsi-qcs-QcSSCD (0.4.0.1862.1.4) } }
        let statements = [
            0x30, 0x0a, 0x30, 0x08, 0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x04,
        ];
        let oid = Asn1Object::from_str("1.3.6.1.5.5.7.1.3").unwrap();
        let value = Asn1OctetString::new_from_bytes(&statements).unwrap();
        b.append_extension(X509Extension::new_from_der(&oid, false, &value).unwrap())
            .unwrap();
    }
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    b.build().to_der().unwrap()
}

/// One registered account of the person `EE-<national_id>`.
struct Acc {
    id: String,
    document: String,
}

/// Registers account `n` (its own device) with small fake moduli of about 2048 bits
/// together (the store does not check the maths) and a SIGN certificate of `sign_level`.
fn account(store: &dyn Store, n: u8, national_id: &str, expires_at: i64, sign_level: &str) -> Acc {
    account_with(store, n, national_id, expires_at, sign_level, false)
}

fn account_with(
    store: &dyn Store,
    n: u8,
    national_id: &str,
    expires_at: i64,
    sign_level: &str,
    qscd: bool,
) -> Acc {
    let reg_id = format!("reg-{n}");
    let t0 = NOW - 1000;
    store
        .create_registration(
            &NewRegistration {
                id: reg_id.clone(),
                secret_hash: crate::store::secret_hash(b"reg-secret"),
                code: format!("CODE{n}"),
                device_id: vec![n; 16],
                matching_code: "1234".into(),
                created_at: t0,
                expires_at: t0 + 900,
            },
            &reply(&format!("dev-{n}"), 0),
        )
        .unwrap();
    let identity = Identity {
        given_name: "MARY".into(),
        surname: "TESTNUMBER".into(),
        country: "EE".into(),
        national_id: national_id.into(),
    };
    store
        .approve_registration(&format!("CODE{n}"), &identity, t0 + 1)
        .unwrap();
    let keys: Vec<RegistrationKey> = [KeyType::Auth, KeyType::Sign]
        .into_iter()
        .map(|key_type| RegistrationKey {
            key_type,
            client_modulus: vec![0xc3; 128],
            server_modulus: vec![0xc5; 128],
            server_share_blob: vec![1, 2, 3],
            server_key_blob: vec![4, 5, 6],
            proof_hash: "SHA256".into(),
            proof_scheme: "PKCS1_V15".into(),
            proof_digest: vec![0; 32],
            proof_message: vec![7; 8],
        })
        .collect();
    store
        .submit_registration_keys(&reg_id, &keys, t0 + 2, &reply(&reg_id, 1))
        .unwrap();
    let id = format!("acc-{n}");
    let document = format!("PNOEE-{national_id}-AB1{n}-Q");
    let cert = |serial: u8, key_type, level: &str, qscd| NewCertificate {
        serial: vec![n, serial],
        key_type,
        level: level.into(),
        der: certificate_der(qscd),
        not_before: t0,
        not_after: expires_at,
    };
    store
        .complete_registration(
            &reg_id,
            &id,
            &document,
            &crate::store::secret_hash(b"device-secret"),
            expires_at,
            &[(KeyType::Auth, vec![1; 32]), (KeyType::Sign, vec![2; 32])],
            &[
                cert(1, KeyType::Auth, "QUALIFIED", false),
                cert(2, KeyType::Sign, sign_level, qscd),
            ],
            t0 + 3,
            &reply(&reg_id, 2),
        )
        .unwrap();
    Acc { id, document }
}

/// Three wrong PINs: the key pair is locked for three hours from `NOW`.
fn lock(store: &dyn Store, acc: &Acc, key_type: KeyType) {
    let policy = LockoutPolicy::default();
    let kp = store.key_pair(&acc.id, key_type).unwrap();
    for i in 0..3 {
        store.begin_attempt(kp.id, &policy, NOW).unwrap();
        store
            .attempt_failed(kp.id, &policy, None, NOW, &reply("confirm", i))
            .unwrap();
    }
    assert!(store.key_pair(&acc.id, key_type).unwrap().is_locked(NOW));
}

fn disable(store: &dyn Store, acc: &Acc, key_type: KeyType) {
    let kp = store.key_pair(&acc.id, key_type).unwrap();
    store
        .clone_detected(kp.id, None, NOW, &reply("confirm", 9))
        .unwrap();
}

fn digest() -> DigestToSign {
    DigestToSign {
        hash: HashAlgorithm::Sha256,
        scheme: SignatureScheme::Pkcs1v15,
        digest: (0u8..32).collect(),
    }
}

/// A gRPC start as `service/rp.rs` builds it.
fn grpc(kind: TxKind, target: Target) -> StartRequest {
    StartRequest {
        kind,
        target,
        flow: Flow::Notification,
        message: Message::Digest(digest()),
        vc: VcRule::FromDigest,
        vc_choice: false,
        relying_party_name: "DEMO".into(),
        display_text: "Sign it".into(),
        timeout_seconds: Some(60),
        api: Api::Grpc,
    }
}

/// A REST start as `rest.rs` builds it (VC by the RP API rule). Its request hash depends on
/// what it asks, as the handler's hash of path and body does.
fn rest(kind: TxKind, flow: Flow, target: Target, level: CertificateLevel) -> StartRequest {
    use sha2::Digest as _;
    let request_hash =
        sha2::Sha256::digest(format!("{kind:?}{flow:?}{target:?}{level:?}")).to_vec();
    let message = match kind {
        TxKind::Signature => Message::Digest(DigestToSign {
            scheme: SignatureScheme::Pss,
            ..digest()
        }),
        TxKind::Authentication => Message::DeviceBuilt {
            hash: HashAlgorithm::Sha512,
            scheme: SignatureScheme::Pss,
        },
        TxKind::CertificateChoice => Message::Nothing,
    };
    StartRequest {
        kind,
        vc: VcRule::rp_api(kind, flow, Some("AAECAwQFBgcICQoLDA0ODw==")),
        target,
        flow,
        message,
        vc_choice: false,
        relying_party_name: "DEMO".into(),
        display_text: "Log in".into(),
        timeout_seconds: None,
        api: Api::RpApiV3(RestStart {
            rp_uuid: RP.into(),
            request_hash,
            certificate_level: level,
            params: "{\"p\":1}".into(),
        }),
    }
}

/// Starts at `NOW` with the next seed (each start draws other ids, as from the OS).
fn run(store: &dyn Store, req: &StartRequest) -> Result<Started, StartRefused> {
    static SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);
    let seed = SEED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    run_at(store, req, NOW * 1000, seed)
}

fn run_at(
    store: &dyn Store,
    req: &StartRequest,
    now_ms: i64,
    seed: u64,
) -> Result<Started, StartRefused> {
    let mut rng = StdRng::seed_from_u64(seed);
    start(store, &SETTINGS, req, &FixedClock(now_ms), &mut rng)
}

fn doc(a: &Acc) -> Target {
    Target::Document(a.document.clone())
}

fn person(national_id: &str) -> Target {
    Target::Person(PersonId::pno("EE", national_id))
}

fn pending(store: &dyn Store, a: &Acc) -> Vec<TxForAccount> {
    store.pending_for_account(&a.id, NOW).unwrap()
}

#[test]
fn a_document_target_gets_the_digest_encoded_and_the_code_from_the_digest() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let s = run_at(&store, &grpc(TxKind::Signature, doc(&a)), NOW * 1000, 1).unwrap();
    assert_eq!(s.notify, vec![a.id.clone()]);
    assert_eq!(
        s.verification_code,
        core_vc::verification_code(&digest().digest)
    );
    assert!(s.session.is_none() && !s.repeated && s.ended.is_none());
    // The id comes from the RNG passed in: the same seed, the same id.
    let again = SqliteStore::open_in_memory().unwrap();
    let b = account(&again, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let same = run_at(&again, &grpc(TxKind::Signature, doc(&b)), NOW * 1000, 1).unwrap();
    assert_eq!(same.transaction_id, s.transaction_id);
    assert!(uuid::Uuid::parse_str(&s.transaction_id).is_ok());

    let [t] = pending(&store, &a).try_into().unwrap();
    assert_eq!(t.tx.id, s.transaction_id);
    assert_eq!(
        (t.tx.kind, t.tx.key_type),
        (TxKind::Signature, KeyType::Sign)
    );
    assert_eq!(t.tx.expires_at, NOW + 60);
    assert_eq!(t.tx.display_text, "Sign it");
    let n = store
        .key_pair(&a.id, KeyType::Sign)
        .unwrap()
        .composite_modulus;
    let bits = hazmat::bit_length(&n);
    assert_eq!(t.encoded_message.len(), bits.div_ceil(8));
    verify_encoding(
        SignatureScheme::Pkcs1v15,
        HashAlgorithm::Sha256,
        &digest().digest,
        &t.encoded_message,
        bits,
    )
    .unwrap();

    let auth = run(&store, &grpc(TxKind::Authentication, doc(&a))).unwrap();
    let t = store.transaction(&auth.transaction_id, NOW).unwrap();
    assert_eq!(t.key_type, KeyType::Auth);
}

#[test]
fn a_person_target_reaches_every_account_whose_key_is_usable() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let b = account(&store, 2, "30303039914", NOW + 1000, "QUALIFIED");
    let c = account(&store, 3, "30303039914", NOW + 1000, "QUALIFIED");
    let expired = account(&store, 4, "30303039914", NOW, "QUALIFIED");
    account(&store, 5, "49002124277", NOW + 1000, "QUALIFIED");
    lock(&store, &b, KeyType::Sign);
    disable(&store, &c, KeyType::Sign);
    for req in [
        grpc(TxKind::Signature, person("30303039914")),
        rest(
            TxKind::Signature,
            Flow::Notification,
            person("30303039914"),
            CertificateLevel::Qualified,
        ),
    ] {
        let s = run(&store, &req).unwrap();
        assert_eq!(s.notify, vec![a.id.clone()], "{:?}", req.api);
    }
    assert!(pending(&store, &b).is_empty() && pending(&store, &expired).is_empty());
    // The AUTH keys of b and c are untouched: b answers an authentication.
    let s = run(&store, &grpc(TxKind::Authentication, person("30303039914"))).unwrap();
    assert_eq!(s.notify, vec![a.id.clone(), b.id.clone(), c.id.clone()]);
}

#[test]
fn a_rest_person_target_asks_only_accounts_whose_certificate_reaches_the_level() {
    let store = SqliteStore::open_in_memory().unwrap();
    let qualified = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let advanced = account(&store, 2, "30303039914", NOW + 1000, "ADVANCED");
    let start = |level| {
        rest(
            TxKind::Signature,
            Flow::Notification,
            person("30303039914"),
            level,
        )
    };
    let s = run(&store, &start(CertificateLevel::Qualified)).unwrap();
    assert_eq!(s.notify, vec![qualified.id.clone()]);
    assert!(pending(&store, &advanced).is_empty());
    let s = run(&store, &start(CertificateLevel::Advanced)).unwrap();
    assert_eq!(s.notify, vec![qualified.id.clone(), advanced.id.clone()]);
}

#[test]
fn unknown_deleted_and_foreign_targets_are_no_such_account() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    store.delete_account(&a.id, NOW, "operator", None).unwrap();
    let q = CertificateLevel::Qualified;
    let pas = Target::Person(PersonId {
        id_type: IdentifierType::Pas,
        ..PersonId::pno("EE", "30303039914")
    });
    let cases = [
        grpc(TxKind::Signature, Target::Document("PNOEE-1-NONE-Q".into())),
        grpc(TxKind::Signature, doc(&a)),
        grpc(TxKind::Signature, person("30303039914")),
        rest(TxKind::Signature, Flow::Notification, doc(&a), q),
        rest(
            TxKind::Authentication,
            Flow::DeviceLink,
            person("30303039914"),
            q,
        ),
        rest(TxKind::Authentication, Flow::DeviceLink, pas, q),
    ];
    for req in cases {
        let e = run(&store, &req).unwrap_err();
        assert!(matches!(e, StartRefused::NoSuchAccount), "{req:?}: {e}");
    }
}

#[test]
fn no_usable_key_refuses_grpc_and_ends_a_rest_notification_document_unusable() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    lock(&store, &a, KeyType::Sign);
    let e = run(&store, &grpc(TxKind::Signature, doc(&a))).unwrap_err();
    assert!(matches!(e, StartRefused::NoUsableKey(KeyType::Sign)), "{e}");
    assert_eq!(e.to_string(), "the SIGN key is locked, disabled or expired");
    assert!(pending(&store, &a).is_empty());

    let q = CertificateLevel::Qualified;
    let s = run(
        &store,
        &rest(TxKind::Signature, Flow::Notification, doc(&a), q),
    )
    .unwrap();
    assert_eq!(s.ended, Some(EndResult::DocumentUnusable));
    assert!(s.notify.is_empty());
    assert_eq!(s.verification_code.len(), 4, "the code is still returned");
    let t = store.transaction(&s.transaction_id, NOW).unwrap();
    assert_eq!(
        (t.state, t.end_result),
        (TxState::Complete, Some(EndResult::DocumentUnusable))
    );
    // A device link is claimed later: nothing is judged at the start.
    let s = run(
        &store,
        &rest(TxKind::Signature, Flow::DeviceLink, doc(&a), q),
    )
    .unwrap();
    assert_eq!(s.ended, None);
    let t = store.transaction(&s.transaction_id, NOW).unwrap();
    assert_eq!(t.state, TxState::Running);

    // Disabled for good is the same refusal.
    let b = account(&store, 2, "49002124277", NOW + 1000, "QUALIFIED");
    disable(&store, &b, KeyType::Sign);
    let e = run(&store, &grpc(TxKind::Signature, doc(&b))).unwrap_err();
    assert!(matches!(e, StartRefused::NoUsableKey(KeyType::Sign)), "{e}");
}

#[test]
fn an_expired_account_has_no_usable_key_in_grpc_and_is_not_found_in_rest() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW, "QUALIFIED");
    let e = run(&store, &grpc(TxKind::Authentication, doc(&a))).unwrap_err();
    assert!(matches!(e, StartRefused::NoUsableKey(KeyType::Auth)), "{e}");
    let e = run(&store, &grpc(TxKind::Authentication, person("30303039914"))).unwrap_err();
    assert!(matches!(e, StartRefused::NoUsableKey(KeyType::Auth)), "{e}");
    let q = CertificateLevel::Qualified;
    for target in [doc(&a), person("30303039914")] {
        let e = run(
            &store,
            &rest(TxKind::Authentication, Flow::Notification, target, q),
        )
        .unwrap_err();
        assert!(matches!(e, StartRefused::NoSuchAccount), "{e}");
    }
    // One second earlier the account is still valid.
    run_at(
        &store,
        &grpc(TxKind::Authentication, doc(&a)),
        (NOW - 1) * 1000,
        1,
    )
    .unwrap();
}

#[test]
fn rest_needs_a_valid_certificate_of_the_requested_level() {
    let store = SqliteStore::open_in_memory().unwrap();
    let qualified = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let advanced = account(&store, 2, "49002124277", NOW + 1000, "ADVANCED");
    let qscd = account_with(&store, 3, "38001085718", NOW + 1000, "QUALIFIED", true);
    let sign = |t, l| rest(TxKind::Signature, Flow::Notification, t, l);
    use CertificateLevel::{Advanced, Qscd, Qualified};
    for (acc, level, ok) in [
        (&qualified, Advanced, true),
        (&qualified, Qualified, true),
        (&qualified, Qscd, false),
        (&advanced, Advanced, true),
        (&advanced, Qualified, false),
        (&qscd, Qscd, true),
    ] {
        let r = run(&store, &sign(doc(acc), level));
        match r {
            Ok(_) => assert!(ok, "{} {level:?}", acc.document),
            Err(StartRefused::NoSuitableCertificate) => assert!(!ok, "{} {level:?}", acc.document),
            Err(e) => panic!("{e}"),
        }
    }
    // A revoked certificate does not count.
    store.revoke_certificate(&[1, 2], 1, NOW).unwrap();
    let mut r = sign(doc(&qualified), Advanced);
    r.api = rest_with_hash(&r, 1);
    let e = run(&store, &r).unwrap_err();
    assert!(matches!(e, StartRefused::NoSuitableCertificate), "{e}");
    // The gRPC API has no certificate levels.
    run(&store, &grpc(TxKind::Signature, doc(&qualified))).unwrap();
}

#[test]
fn the_verification_code_follows_the_rule_of_the_request() {
    use TxKind::{Authentication as A, CertificateChoice as C, Signature as S};
    let challenge_b64 = "AAECAwQFBgcICQoLDA0ODw==";
    let ch = Some(challenge_b64);
    assert_eq!(
        VcRule::rp_api(A, Flow::Notification, ch),
        VcRule::FromRpChallenge(challenge_b64.into())
    );
    assert_eq!(VcRule::rp_api(A, Flow::Notification, None), VcRule::None);
    assert_eq!(VcRule::rp_api(A, Flow::DeviceLink, ch), VcRule::None);
    assert_eq!(
        VcRule::rp_api(S, Flow::Notification, None),
        VcRule::RandomNumeric4
    );
    assert_eq!(VcRule::rp_api(S, Flow::DeviceLink, None), VcRule::None);
    assert_eq!(VcRule::rp_api(S, Flow::Linked, None), VcRule::None);
    assert_eq!(VcRule::rp_api(C, Flow::Notification, None), VcRule::None);

    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let q = CertificateLevel::Qualified;
    let auth = run(&store, &rest(A, Flow::Notification, doc(&a), q)).unwrap();
    let challenge: Vec<u8> = (0u8..16).collect();
    assert_eq!(auth.verification_code, vc::authentication_vc(&challenge));
    let mut bad = rest(A, Flow::Notification, doc(&a), q);
    bad.vc = VcRule::FromRpChallenge("not base64!".into());
    bad.api = rest_with_hash(&bad, 2);
    assert_eq!(run(&store, &bad).unwrap().verification_code, "");

    let mut sign = rest(S, Flow::Notification, doc(&a), q);
    let codes: Vec<String> = (0..8u8)
        .map(|i| {
            sign.api = rest_with_hash(&sign, 10 + i);
            run_at(&store, &sign, NOW * 1000, u64::from(i))
                .unwrap()
                .verification_code
        })
        .collect();
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()))
    );
    assert!(
        codes.iter().any(|c| c != &codes[0]),
        "drawn, not fixed: {codes:?}"
    );

    for (kind, flow) in [
        (A, Flow::DeviceLink),
        (S, Flow::DeviceLink),
        (C, Flow::Notification),
    ] {
        let r = rest(kind, flow, doc(&a), q);
        assert_eq!(
            run(&store, &r).unwrap().verification_code,
            "",
            "{kind:?} {flow:?}"
        );
    }
}

/// The same REST request with another request hash (a different request).
fn rest_with_hash(req: &StartRequest, h: u8) -> Api {
    let Api::RpApiV3(r) = &req.api else { panic!() };
    Api::RpApiV3(RestStart {
        request_hash: vec![h; 32],
        ..r.clone()
    })
}

#[test]
fn a_choice_of_three_codes_holds_the_right_one_and_needs_a_code() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let mut req = grpc(TxKind::Signature, doc(&a));
    req.vc_choice = true;
    let s = run(&store, &req).unwrap();
    let t = store.transaction(&s.transaction_id, NOW).unwrap();
    assert_eq!(t.vc_choices.len(), 3);
    assert!(t.vc_choices.contains(&s.verification_code));
    let mut req = rest(
        TxKind::Signature,
        Flow::DeviceLink,
        doc(&a),
        CertificateLevel::Qualified,
    );
    req.vc_choice = true;
    let s = run(&store, &req).unwrap();
    assert!(
        store
            .transaction(&s.transaction_id, NOW)
            .unwrap()
            .vc_choices
            .is_empty()
    );
}

#[test]
fn an_identical_rest_request_inside_the_window_gets_the_same_session() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let req = rest(
        TxKind::Signature,
        Flow::Notification,
        doc(&a),
        CertificateLevel::Qualified,
    );
    let first = run_at(&store, &req, NOW * 1000, 1).unwrap();
    assert!(!first.repeated);
    let again = run_at(&store, &req, (NOW + 15) * 1000, 2).unwrap();
    assert!(again.repeated && again.notify.is_empty());
    assert_eq!(again.transaction_id, first.transaction_id);
    assert_eq!(again.verification_code, first.verification_code);
    assert_eq!(pending(&store, &a).len(), 1, "nothing new stored");
    // Past the window, or another request: a new session.
    let later = run_at(&store, &req, (NOW + 15) * 1000 + 1, 3).unwrap();
    assert!(!later.repeated);
    assert_ne!(later.transaction_id, first.transaction_id);
    let mut other = req.clone();
    other.api = rest_with_hash(&req, 7);
    assert!(!run_at(&store, &other, NOW * 1000, 4).unwrap().repeated);
    // gRPC has no idempotency: every start is new.
    let g = grpc(TxKind::Signature, doc(&a));
    assert_ne!(
        run_at(&store, &g, NOW * 1000, 5).unwrap().transaction_id,
        run_at(&store, &g, NOW * 1000, 6).unwrap().transaction_id
    );
}

#[test]
fn a_device_link_session_gets_a_token_and_a_secret_and_notifies_no_one() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let q = CertificateLevel::Qualified;
    let s = run(
        &store,
        &rest(
            TxKind::Authentication,
            Flow::DeviceLink,
            Target::Anonymous,
            q,
        ),
    )
    .unwrap();
    assert!(s.notify.is_empty());
    let rs = s.session.unwrap();
    let token = rs.session_token.clone().unwrap();
    assert_eq!(token.len(), 24);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(rs.session_secret.as_ref().unwrap().len(), 32);
    assert_eq!(
        (rs.session_type.as_str(), rs.flow.as_str()),
        ("auth", "DEVICE_LINK")
    );
    assert_eq!((rs.restriction, rs.created_at_ms), (None, NOW * 1000));
    let stored = store.rp_session_by_token(&token).unwrap().unwrap();
    assert_eq!(
        (stored.transaction_id, stored.params),
        (s.transaction_id.clone(), "{\"p\":1}".to_owned())
    );
    let t = store.transaction(&s.transaction_id, NOW).unwrap();
    assert_eq!(
        (t.hash, t.scheme, t.expires_at),
        (HashAlgorithm::Sha512, SignatureScheme::Pss, NOW + 120)
    );

    let s = run(
        &store,
        &rest(TxKind::Signature, Flow::Notification, doc(&a), q),
    )
    .unwrap();
    let rs = s.session.unwrap();
    assert_eq!((rs.session_token, rs.session_secret), (None, None));
    assert_eq!(
        rs.restriction.as_deref(),
        Some(format!("document:{}", a.document).as_str())
    );
}

#[test]
fn a_linked_signature_needs_this_partys_completed_device_link_certificate_choice() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = account(&store, 1, "30303039914", NOW + 1000, "QUALIFIED");
    let b = account(&store, 2, "49002124277", NOW + 1000, "QUALIFIED");
    let q = CertificateLevel::Qualified;
    let choice = |flow, hash, answer: Option<&Acc>| {
        let mut r = rest(TxKind::CertificateChoice, flow, Target::Anonymous, q);
        if flow == Flow::Notification {
            r.target = doc(answer.unwrap());
        }
        r.api = rest_with_hash(&r, hash);
        let id = run(&store, &r).unwrap().transaction_id;
        if let Some(acc) = answer {
            if flow == Flow::DeviceLink {
                store
                    .claim_device_link(&id, &acc.id, &[], "{}", NOW)
                    .unwrap();
            }
            assert!(
                store
                    .complete_without_signature(&id, &acc.id, NOW, &reply(&id, hash), None)
                    .unwrap()
            );
        }
        id
    };
    let by_a = choice(Flow::DeviceLink, 20, Some(&a));
    let linked = |session_id: &str, hash| {
        let mut r = rest(
            TxKind::Signature,
            Flow::Linked,
            Target::Linked {
                document: a.document.clone(),
                session_id: session_id.into(),
            },
            q,
        );
        r.api = rest_with_hash(&r, hash);
        r
    };
    let s = run(&store, &linked(&by_a, 30)).unwrap();
    assert_eq!(s.notify, vec![a.id.clone()]);
    assert_eq!(s.verification_code, "");

    let open = choice(Flow::DeviceLink, 21, None);
    let by_b = choice(Flow::DeviceLink, 22, Some(&b));
    let notification = choice(Flow::Notification, 23, Some(&a));
    let mut other_rp = linked(&by_a, 31);
    if let Api::RpApiV3(r) = &mut other_rp.api {
        r.rp_uuid = "00000000-0000-4000-8000-000000000002".into();
    }
    for req in [
        linked("no-such-session", 32),
        linked(&open, 33),
        linked(&by_b, 34),
        linked(&notification, 35),
        other_rp,
    ] {
        let e = run(&store, &req).unwrap_err();
        assert!(matches!(e, StartRefused::BadLinkedSession), "{e}");
    }
}

#[test]
fn inconsistent_requests_are_refused_before_anything_is_read() {
    let store = SqliteStore::open_in_memory().unwrap();
    let q = CertificateLevel::Qualified;
    let mut anonymous_grpc = grpc(TxKind::Signature, Target::Anonymous);
    anonymous_grpc.flow = Flow::DeviceLink;
    let mut code_without_digest = rest(
        TxKind::CertificateChoice,
        Flow::Notification,
        person("1"),
        q,
    );
    code_without_digest.vc = VcRule::FromDigest;
    for req in [
        anonymous_grpc,
        rest(TxKind::Signature, Flow::Notification, Target::Anonymous, q),
        rest(TxKind::Signature, Flow::Linked, person("1"), q),
        code_without_digest,
    ] {
        let e = run(&store, &req).unwrap_err();
        assert!(matches!(e, StartRefused::Inconsistent(_)), "{req:?}: {e}");
    }
}
