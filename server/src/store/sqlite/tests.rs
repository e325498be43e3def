#![allow(clippy::unwrap_used)]

use super::transactions::insert_transaction;
use super::*;
use crate::lockout::{LockStep, LockoutPolicy};
use crate::store::*;
use tandem_client_core::types::KeyType;

const NOW: i64 = 1_800_000_000;

fn reply(scope: &str, nonce: u8) -> Reply {
    Reply {
        scope: scope.into(),
        nonce: vec![nonce; 16],
        request_hash: vec![nonce; 32],
        response: vec![nonce],
    }
}

pub(super) fn identity() -> Identity {
    Identity {
        given_name: "MARY ÄNN".into(),
        surname: "O'CONNEŽ-ŠUSLIK TESTNUMBER".into(),
        country: "EE".into(),
        national_id: "30303039914".into(),
    }
}

/// Registers an account with small fake moduli (the store does not check the maths).
pub(super) fn account(store: &SqliteStore, n: u8) -> (String, KeyPair, KeyPair) {
    account_on_device(store, n, n)
}

fn account_on_device(store: &SqliteStore, n: u8, device: u8) -> (String, KeyPair, KeyPair) {
    let reg_id = format!("reg-{n}");
    store
        .create_registration(
            &NewRegistration {
                id: reg_id.clone(),
                secret_hash: secret_hash(b"reg-secret"),
                code: format!("CODE{n}"),
                device_id: vec![device; 16],
                matching_code: "1234".into(),
                created_at: NOW,
                expires_at: NOW + 900,
            },
            &reply(&format!("dev-{n}"), 0),
        )
        .unwrap();
    store
        .approve_registration(&format!("CODE{n}"), &identity(), NOW + 1)
        .unwrap();
    let keys: Vec<RegistrationKey> = [KeyType::Auth, KeyType::Sign]
        .into_iter()
        .map(|key_type| RegistrationKey {
            key_type,
            client_modulus: vec![0x0b],
            server_modulus: vec![0x0d],
            server_share_blob: vec![1, 2, 3],
            server_key_blob: vec![4, 5, 6],
            proof_hash: "SHA256".into(),
            proof_scheme: "PKCS1_V15".into(),
            proof_digest: vec![0; 32],
            proof_message: vec![7; 8],
        })
        .collect();
    store
        .submit_registration_keys(&reg_id, &keys, NOW + 2, &reply(&reg_id, 1))
        .unwrap();
    let acc_id = format!("acc-{n}");
    store
        .complete_registration(
            &reg_id,
            &acc_id,
            &format!("PNOEE-30303039914-AB1{n}-Q"),
            &secret_hash(b"device-secret"),
            NOW + 1000,
            &[(KeyType::Auth, vec![1; 32]), (KeyType::Sign, vec![2; 32])],
            &[
                NewCertificate {
                    serial: vec![n, 1],
                    key_type: KeyType::Auth,
                    level: "QUALIFIED".into(),
                    der: vec![0x30, 0],
                    not_before: NOW,
                    not_after: NOW + 1000,
                },
                NewCertificate {
                    serial: vec![n, 2],
                    key_type: KeyType::Sign,
                    level: "QUALIFIED".into(),
                    der: vec![0x30, 0],
                    not_before: NOW,
                    not_after: NOW + 1000,
                },
            ],
            NOW + 3,
            &reply(&reg_id, 2),
        )
        .unwrap();
    let auth = store.key_pair(&acc_id, KeyType::Auth).unwrap();
    let sign = store.key_pair(&acc_id, KeyType::Sign).unwrap();
    (acc_id, auth, sign)
}

fn fail(
    store: &SqliteStore,
    kp: &KeyPair,
    policy: &LockoutPolicy,
    now: i64,
    nonce: u8,
) -> AttemptGate {
    let gate = store.begin_attempt(kp.id, policy, now).unwrap();
    if let AttemptGate::Proceed { .. } = gate {
        store
            .attempt_failed(kp.id, policy, None, now, &reply("confirm", nonce))
            .unwrap();
    }
    gate
}

#[test]
fn registration_creates_account_with_composite_moduli() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, auth, sign) = account(&store, 1);
    assert_eq!(auth.composite_modulus, vec![0x8f]); // 11 * 13
    assert_eq!(sign.key_type, KeyType::Sign);
    let a = store.account(&acc).unwrap();
    assert_eq!(a.identity, identity());
    assert!(
        store
            .authenticate_device(&acc, b"device-secret")
            .unwrap()
            .is_some()
    );
    assert!(store.authenticate_device(&acc, b"wrong").unwrap().is_none());
    // The registration's copies of the secrets are gone.
    let keys = store.registration_keys("reg-1").unwrap();
    assert!(
        keys.iter()
            .all(|k| k.server_share_blob.is_empty() && k.server_key_blob.is_empty())
    );
}

#[test]
fn expired_registration_code_cannot_be_approved() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .create_registration(
            &NewRegistration {
                id: "r".into(),
                secret_hash: vec![0; 32],
                code: "C".into(),
                device_id: vec![9; 16],
                matching_code: "0000".into(),
                created_at: NOW,
                expires_at: NOW + 900,
            },
            &reply("x", 0),
        )
        .unwrap();
    let err = store
        .approve_registration("C", &identity(), NOW + 900)
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(
        store.registration("r").unwrap().state,
        RegistrationState::PendingApproval
    );
}

#[test]
fn lockout_walks_the_table() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (_, auth, sign) = account(&store, 1);
    let policy = LockoutPolicy::default();
    let mut now = NOW + 10;
    for i in 1..=3 {
        assert_eq!(
            fail(&store, &auth, &policy, now, i),
            AttemptGate::Proceed { failures: i as u32 }
        );
    }
    // Third failure: locked for 3 h, nothing evaluated or counted while locked.
    assert_eq!(
        fail(&store, &auth, &policy, now + 1, 50),
        AttemptGate::Locked {
            until: now + 3 * 3600
        }
    );
    assert_eq!(
        store
            .key_pair("acc-1", KeyType::Auth)
            .unwrap()
            .consecutive_failures,
        3
    );
    // SIGN counts separately.
    assert_eq!(
        store
            .key_pair("acc-1", KeyType::Sign)
            .unwrap()
            .consecutive_failures,
        0
    );
    assert_eq!(
        store.begin_attempt(sign.id, &policy, now).unwrap(),
        AttemptGate::Proceed { failures: 1 }
    );
    now += 3 * 3600;
    for i in 4..=6 {
        assert_eq!(
            fail(&store, &auth, &policy, now, i),
            AttemptGate::Proceed { failures: i as u32 }
        );
    }
    assert_eq!(
        fail(&store, &auth, &policy, now + 1, 51),
        AttemptGate::Locked {
            until: now + 24 * 3600
        }
    );
    now += 24 * 3600;
    for i in 7..=9 {
        assert_eq!(
            fail(&store, &auth, &policy, now, i),
            AttemptGate::Proceed { failures: i as u32 }
        );
    }
    let kp = store.key_pair("acc-1", KeyType::Auth).unwrap();
    assert_eq!(kp.status, KeyPairStatus::Disabled);
    assert_eq!(kp.disabled_reason.as_deref(), Some("PIN_LOCKOUT"));
    assert_eq!(
        fail(&store, &auth, &policy, now + 10 * 86400, 52),
        AttemptGate::Disabled
    );
}

#[test]
fn success_resets_the_count() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, auth, _) = account(&store, 1);
    let policy = LockoutPolicy::default();
    fail(&store, &auth, &policy, NOW, 1);
    fail(&store, &auth, &policy, NOW, 2);
    assert_eq!(
        store.begin_attempt(auth.id, &policy, NOW).unwrap(),
        AttemptGate::Proceed { failures: 3 }
    );
    // Counted (and tentatively locked) before the verdict ...
    assert!(store.key_pair(&acc, KeyType::Auth).unwrap().is_locked(NOW));
    // ... the verdict is success: count and lock are undone.
    store
        .attempt_succeeded(
            auth.id,
            &[9; 32],
            None,
            &acc,
            NOW,
            &reply("c", 3),
            &reply("c", 3),
        )
        .unwrap();
    let kp = store.key_pair(&acc, KeyType::Auth).unwrap();
    assert_eq!(kp.consecutive_failures, 0);
    assert!(!kp.is_locked(NOW));
    assert_eq!(kp.clone_token_hash, vec![9; 32]);
}

#[test]
fn a_counted_attempt_without_verdict_stands_as_failure() {
    // Simulates a crash between the count and the verdict, including on the last attempt.
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, auth, _) = account(&store, 1);
    let policy = LockoutPolicy {
        locks: vec![LockStep {
            failures: 2,
            lock_seconds: 5,
        }],
        disable_after: 3,
    };
    assert_eq!(
        store.begin_attempt(auth.id, &policy, NOW).unwrap(),
        AttemptGate::Proceed { failures: 1 }
    );
    assert_eq!(
        store.begin_attempt(auth.id, &policy, NOW).unwrap(),
        AttemptGate::Proceed { failures: 2 }
    );
    assert_eq!(
        store.begin_attempt(auth.id, &policy, NOW).unwrap(),
        AttemptGate::Locked { until: NOW + 5 }
    );
    assert_eq!(
        store.begin_attempt(auth.id, &policy, NOW + 5).unwrap(),
        AttemptGate::Proceed { failures: 3 }
    );
    // "crash": no verdict. The next request finds the key pair disabled.
    assert_eq!(
        store.begin_attempt(auth.id, &policy, NOW + 6).unwrap(),
        AttemptGate::Disabled
    );
    assert_eq!(
        store.key_pair(&acc, KeyType::Auth).unwrap().status,
        KeyPairStatus::Disabled
    );
}

#[test]
fn clone_detection_disables_and_refresh_checks_the_token() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, auth, sign) = account(&store, 1);
    assert!(
        store
            .refresh_clone_token(
                auth.id,
                &[1; 32],
                &[3; 32],
                NOW,
                &reply("r", 1),
                &reply("r", 1)
            )
            .unwrap()
    );
    assert!(
        !store
            .refresh_clone_token(
                auth.id,
                &[1; 32],
                &[4; 32],
                NOW,
                &reply("r", 2),
                &reply("r", 2)
            )
            .unwrap()
    );
    assert_eq!(
        store
            .key_pair(&acc, KeyType::Auth)
            .unwrap()
            .disabled_reason
            .as_deref(),
        Some("CLONE_DETECTED")
    );
    let kp = store
        .clone_detected(sign.id, None, NOW, &reply("c", 3))
        .unwrap();
    assert_eq!(kp.status, KeyPairStatus::Disabled);
}

#[test]
fn replies_are_stored_once_and_mismatches_detected() {
    let store = SqliteStore::open_in_memory().unwrap();
    let r = reply("scope", 7);
    assert_eq!(
        store
            .lookup_reply("scope", &r.nonce, &r.request_hash)
            .unwrap(),
        ReplyLookup::New
    );
    store.store_reply(&r).unwrap();
    assert_eq!(
        store
            .lookup_reply("scope", &r.nonce, &r.request_hash)
            .unwrap(),
        ReplyLookup::Replay(vec![7])
    );
    assert_eq!(
        store.lookup_reply("scope", &r.nonce, &[0; 32]).unwrap(),
        ReplyLookup::Mismatch
    );
    assert!(store.store_reply(&r).is_err());
    assert_eq!(
        store
            .lookup_reply("other", &r.nonce, &r.request_hash)
            .unwrap(),
        ReplyLookup::New
    );
}

/// A running signature transaction created at `NOW`, expiring a minute later.
pub(super) fn tx_record(id: &str) -> TxRecord {
    TxRecord {
        id: id.into(),
        kind: TxKind::Signature,
        relying_party: "Bank".into(),
        key_type: KeyType::Sign,
        hash: tandem_client_core::encoding::HashAlgorithm::Sha256,
        scheme: tandem_client_core::encoding::SignatureScheme::Pss,
        digest: vec![1; 32],
        display_text: "Pay 10 EUR".into(),
        verification_code: "1234".into(),
        vc_choices: vec!["1234".into(), "5678".into(), "9012".into()],
        state: TxState::Running,
        end_result: None,
        signature: None,
        answered_by: None,
        created_at: NOW,
        expires_at: NOW + 60,
    }
}

#[test]
fn transactions_expire_and_complete_once() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, _, _) = account(&store, 1);
    let mk = tx_record;
    store
        .create_transaction(&mk("t1"), &[(acc.clone(), vec![5; 8])])
        .unwrap();
    store
        .create_transaction(&mk("t2"), &[(acc.clone(), vec![6; 8])])
        .unwrap();
    let pending = store.pending_for_account(&acc, NOW + 1).unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].tx.vc_choices.len(), 3);
    assert!(
        store
            .end_transaction("t1", EndResult::UserRefused, Some(&acc), NOW + 2, None)
            .unwrap()
    );
    // The ended transaction leaves the running index (the trigger of migration 8), the
    // other stays listed.
    let running = |id: &str| -> Option<i64> {
        store
            .conn()
            .query_row(
                "SELECT running FROM transaction_targets WHERE transaction_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!((running("t1"), running("t2")), (None, Some(1)));
    let pending = store.pending_for_account(&acc, NOW + 2).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].tx.id, "t2");
    assert!(
        !store
            .end_transaction("t1", EndResult::WrongVc, Some(&acc), NOW + 3, None)
            .unwrap()
    );
    assert_eq!(
        store.transaction("t1", NOW + 3).unwrap().end_result,
        Some(EndResult::UserRefused)
    );
    let t2 = store.transaction("t2", NOW + 60).unwrap();
    assert_eq!(
        (t2.state, t2.end_result),
        (TxState::Complete, Some(EndResult::Timeout))
    );
    assert!(
        store
            .pending_for_account(&acc, NOW + 61)
            .unwrap()
            .is_empty()
    );
    assert_eq!(running("t2"), None, "expiry clears the running flag too");
}

#[test]
fn delete_destroys_secrets_and_one_account_per_device() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, _, _) = account(&store, 1);
    store.delete_account(&acc, NOW + 5, "device", None).unwrap();
    for kp in store.key_pairs(&acc).unwrap() {
        assert!(kp.server_share_blob.is_none() && kp.server_key_blob.is_none());
        assert_eq!(kp.status, KeyPairStatus::Disabled);
    }
    assert!(
        store
            .authenticate_device(&acc, b"device-secret")
            .unwrap()
            .is_none()
    );
    // After deletion the same device may register again.
    let (acc2, _, _) = account_on_device(&store, 2, 1);
    assert_ne!(acc, acc2);
}

#[test]
fn a_device_with_an_active_account_cannot_complete_another_registration() {
    let store = SqliteStore::open_in_memory().unwrap();
    account_on_device(&store, 1, 7);
    store
        .create_registration(
            &NewRegistration {
                id: "reg-2".into(),
                secret_hash: vec![0; 32],
                code: "CODE2".into(),
                device_id: vec![7; 16],
                matching_code: "0000".into(),
                created_at: NOW,
                expires_at: NOW + 900,
            },
            &reply("dev-2", 0),
        )
        .unwrap();
    store
        .approve_registration("CODE2", &identity(), NOW + 1)
        .unwrap();
    store
        .submit_registration_keys("reg-2", &[], NOW + 2, &reply("reg-2", 1))
        .unwrap();
    let err = store
        .complete_registration(
            "reg-2",
            "acc-2",
            "PNOEE-2",
            &[0; 32],
            NOW + 9,
            &[],
            &[],
            NOW + 3,
            &reply("reg-2", 2),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("already has an active account"),
        "{err}"
    );
    assert!(store.account("acc-2").is_err(), "nothing was created");
}

#[test]
fn audit_log_is_chained_and_append_only() {
    let store = SqliteStore::open_in_memory().unwrap();
    account(&store, 1);
    let n = store.verify_audit_chain().unwrap().unwrap();
    assert!(n >= 4, "{n}");
    let conn = store.conn();
    assert!(
        conn.execute("UPDATE audit_log SET event = 'x' WHERE seq = 1", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
}

#[test]
fn disabling_and_deleting_revoke_certificates_in_the_same_transaction() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, auth, _) = account(&store, 1);
    assert_eq!(store.certificates_of(&acc).unwrap().len(), 2);
    assert!(store.revoked_certificates().unwrap().is_empty());
    // Clone detected on AUTH: its certificate is revoked with keyCompromise.
    store
        .clone_detected(auth.id, None, NOW, &reply("c", 1))
        .unwrap();
    let auth_cert = store.certificate(&[1, 1]).unwrap().unwrap();
    assert_eq!(auth_cert.revoked, Some((NOW, reason::KEY_COMPROMISE)));
    assert!(
        store
            .certificate(&[1, 2])
            .unwrap()
            .unwrap()
            .revoked
            .is_none()
    );
    // Leading zero bytes of a serial do not matter.
    assert!(store.certificate(&[0, 1, 1]).unwrap().is_some());
    assert!(store.certificate(&[9, 9]).unwrap().is_none());
    // Deletion revokes the rest with cessationOfOperation.
    store.delete_account(&acc, NOW + 5, "device", None).unwrap();
    let sign_cert = store.certificate(&[1, 2]).unwrap().unwrap();
    assert_eq!(
        sign_cert.revoked,
        Some((NOW + 5, reason::CESSATION_OF_OPERATION))
    );
    assert_eq!(store.revoked_certificates().unwrap().len(), 2);
    // The operator cannot revoke twice.
    assert!(
        !store
            .revoke_certificate(&[1, 2], reason::UNSPECIFIED, NOW + 6)
            .unwrap()
    );
    assert_eq!(store.next_crl_number().unwrap(), 1);
    assert_eq!(store.next_crl_number().unwrap(), 2);
}

#[test]
fn pin_lockout_revokes_with_cessation_of_operation() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (_, _, sign) = account(&store, 1);
    let policy = LockoutPolicy {
        locks: vec![],
        disable_after: 2,
    };
    fail(&store, &sign, &policy, NOW, 1);
    assert!(
        store
            .certificate(&[1, 2])
            .unwrap()
            .unwrap()
            .revoked
            .is_none()
    );
    fail(&store, &sign, &policy, NOW, 2);
    assert_eq!(
        store.certificate(&[1, 2]).unwrap().unwrap().revoked,
        Some((NOW, reason::CESSATION_OF_OPERATION))
    );
}

#[test]
fn relying_parties_are_checked_by_uuid_name_and_address() {
    let store = SqliteStore::open_in_memory().unwrap();
    let uuid = "00000000-0000-4000-8000-000000000000";
    let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    assert_eq!(
        store
            .authenticate_relying_party(uuid, "DEMO", local)
            .unwrap(),
        RpCheck::Unknown
    );
    let rp = RelyingParty {
        uuid: uuid.into(),
        names: vec!["DEMO".into()],
        allowed_ips: vec![local],
        device_ip_sharing: false,
        portal: false,
        mtls_required: false,
    };
    store.add_relying_party(&rp, NOW).unwrap();
    assert!(store.add_relying_party(&rp, NOW).is_err(), "no duplicates");
    assert_eq!(
        store
            .authenticate_relying_party(uuid, "DEMO", local)
            .unwrap(),
        RpCheck::Allowed(rp.clone())
    );
    // The name is case-insensitive (api_details.txt); another name is not.
    assert_eq!(
        store
            .authenticate_relying_party(uuid, "demo", local)
            .unwrap(),
        RpCheck::Allowed(rp.clone())
    );
    assert_eq!(
        store
            .authenticate_relying_party(uuid, "DEMO2", local)
            .unwrap(),
        RpCheck::Unknown
    );
    assert_eq!(
        store
            .authenticate_relying_party(uuid, "DEMO", other)
            .unwrap(),
        RpCheck::AddressNotAllowed
    );
    let open = RelyingParty {
        uuid: "11111111-1111-4111-8111-111111111111".into(),
        names: vec!["Open".into()],
        allowed_ips: vec![],
        device_ip_sharing: false,
        portal: false,
        mtls_required: false,
    };
    store.add_relying_party(&open, NOW).unwrap();
    assert!(matches!(
        store
            .authenticate_relying_party(&open.uuid, "Open", other)
            .unwrap(),
        RpCheck::Allowed(_)
    ));
    assert_eq!(store.relying_parties().unwrap().len(), 2);
    assert!(store.remove_relying_party(uuid, NOW).unwrap());
    assert!(!store.remove_relying_party(uuid, NOW).unwrap());
    assert_eq!(
        store
            .authenticate_relying_party(uuid, "DEMO", local)
            .unwrap(),
        RpCheck::Unknown
    );
    assert!(store.verify_audit_chain().unwrap().is_ok());
}

/// A database file as a server of schema `version` left it: the migrations up to it applied
/// and recorded, as [`SqliteStore::open`] did then.
fn database_at_schema(path: &std::path::Path, version: i64) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "CREATE TABLE schema_migrations (
            version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .unwrap();
    for (v, description, sql) in schema::MIGRATIONS.iter().filter(|m| m.0 <= version) {
        tx.execute_batch(sql).unwrap();
        tx.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
            params![v, description, NOW],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    conn
}

/// Names of relying party `uuid` as the store lists them.
fn rp_names(store: &SqliteStore, uuid: &str) -> Vec<String> {
    store
        .relying_parties()
        .unwrap()
        .into_iter()
        .find(|rp| rp.uuid == uuid)
        .map(|rp| rp.names)
        .unwrap_or_default()
}

#[test]
fn a_relying_party_is_admitted_by_any_of_its_names_ignoring_case() {
    let store = SqliteStore::open_in_memory().unwrap();
    let uuid = "00000000-0000-4000-8000-0000000000a1";
    let other_uuid = "00000000-0000-4000-8000-0000000000a2";
    let from: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let check =
        |uuid: &str, name: &str| store.authenticate_relying_party(uuid, name, from).unwrap();
    store
        .add_relying_party(
            &RelyingParty {
                uuid: uuid.into(),
                names: vec!["DEMO".into(), "Straße Bank".into()],
                allowed_ips: vec![],
                device_ip_sharing: false,
                portal: false,
                mtls_required: false,
            },
            NOW,
        )
        .unwrap();
    store
        .add_relying_party(
            &RelyingParty {
                uuid: other_uuid.into(),
                names: vec!["Other Bank".into()],
                allowed_ips: vec![],
                device_ip_sharing: false,
                portal: false,
                mtls_required: false,
            },
            NOW,
        )
        .unwrap();
    for sent in [
        "DEMO",
        "demo",
        "Straße Bank",
        "STRASSE BANK",
        "strasse bank",
    ] {
        assert!(matches!(check(uuid, sent), RpCheck::Allowed(_)), "{sent}");
    }
    // Another relying party's name, or a name of none, is not admitted.
    for sent in ["Other Bank", "Demo Bank", "Strase Bank"] {
        assert_eq!(check(uuid, sent), RpCheck::Unknown, "{sent}");
    }
    assert_eq!(check(other_uuid, "DEMO"), RpCheck::Unknown);

    // A name added later admits at once; a removed one no longer does.
    store
        .add_relying_party_name(uuid, "Demo Bank Online", NOW + 1)
        .unwrap();
    assert_eq!(
        rp_names(&store, uuid),
        ["DEMO", "Straße Bank", "Demo Bank Online"]
    );
    assert!(matches!(
        check(uuid, "DEMO BANK ONLINE"),
        RpCheck::Allowed(_)
    ));
    assert_eq!(
        store
            .remove_relying_party_name(uuid, "straße BANK", NOW + 2)
            .unwrap(),
        "Straße Bank",
        "removed by any case of the name, reported as configured"
    );
    assert_eq!(check(uuid, "Straße Bank"), RpCheck::Unknown);
    assert_eq!(rp_names(&store, uuid), ["DEMO", "Demo Bank Online"]);
    // Positions go on after the highest, so the order stays oldest first.
    store
        .add_relying_party_name(uuid, "Straße Bank", NOW + 3)
        .unwrap();
    assert_eq!(
        rp_names(&store, uuid),
        ["DEMO", "Demo Bank Online", "Straße Bank"]
    );
    // Both changes are audited, in the chain.
    let events: Vec<_> = store
        .audit_log(1, 100)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.starts_with("relying_party_name"))
        .map(|r| (r.event, r.details))
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[1].0, "relying_party_name_removed");
    assert!(events[1].1.contains("Straße Bank"), "{events:?}");
    assert!(store.verify_audit_chain().unwrap().is_ok());
}

#[test]
fn relying_party_names_that_fold_alike_and_the_last_name_are_refused() {
    let store = SqliteStore::open_in_memory().unwrap();
    let uuid = "00000000-0000-4000-8000-0000000000b1";
    let rp = |names: &[&str]| RelyingParty {
        uuid: uuid.into(),
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        allowed_ips: vec![],
        device_ip_sharing: false,
        portal: false,
        mtls_required: false,
    };
    let audit_len = |store: &SqliteStore| store.audit_log(1, 1000).unwrap().len();
    // At creation: no name, two names that fold alike, a name with white space around it.
    for (names, why) in [
        (&[][..], "at least one name"),
        (&["DEMO", "demo"][..], "same name ignoring case"),
        (&["Straße", "STRASSE"][..], "same name ignoring case"),
        (&["DEMO", " Bank"][..], "white space"),
        (&["DEMO", "Ba\nnk"][..], "control characters"),
    ] {
        let e = store
            .add_relying_party(&rp(names), NOW)
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{names:?}: {e}");
    }
    assert!(
        store.relying_parties().unwrap().is_empty(),
        "nothing stored"
    );
    assert_eq!(audit_len(&store), 0);

    store.add_relying_party(&rp(&["DEMO"]), NOW).unwrap();
    let before = audit_len(&store);
    // Adding "demo" when "DEMO" exists is refused with a clear error.
    for dup in ["demo", "DEMO", "Demo"] {
        let e = store
            .add_relying_party_name(uuid, dup, NOW)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("already has the name \"DEMO\"") && e.contains("ignoring case"),
            "{e}"
        );
    }
    // The last name stays; unknown names, unknown and removed relying parties are refused.
    let e = store
        .remove_relying_party_name(uuid, "demo", NOW)
        .unwrap_err()
        .to_string();
    assert!(e.contains("last name"), "{e}");
    let e = store
        .remove_relying_party_name(uuid, "Bank", NOW)
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no name \"Bank\""), "{e}");
    let unknown = "00000000-0000-4000-8000-0000000000b2";
    assert!(
        store
            .add_relying_party_name(unknown, "Bank", NOW)
            .unwrap_err()
            .to_string()
            .contains("no active relying party")
    );
    assert_eq!(rp_names(&store, uuid), ["DEMO"]);
    assert_eq!(audit_len(&store), before, "refusals leave no audit record");
    assert!(store.remove_relying_party(uuid, NOW).unwrap());
    assert!(
        store
            .add_relying_party_name(uuid, "Bank", NOW)
            .unwrap_err()
            .to_string()
            .contains("no active relying party")
    );
}

#[test]
fn single_relying_party_names_become_the_first_configured_name_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.db");
    let from: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    {
        // A database of schema 10, one name per relying party, as an earlier server left it.
        let conn = database_at_schema(&path, 10);
        conn.execute(
            "INSERT INTO relying_parties (uuid, name, allowed_ips, created_at, active) VALUES
                ('00000000-0000-4000-8000-0000000000c1', 'DEMO', '127.0.0.1', 10, 1),
                ('00000000-0000-4000-8000-0000000000c2', 'Straße Bank', '', 20, 1),
                ('00000000-0000-4000-8000-0000000000c3', 'Gone Bank', '', 30, 0)",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.relying_parties().unwrap(),
        [
            RelyingParty {
                uuid: "00000000-0000-4000-8000-0000000000c1".into(),
                names: vec!["DEMO".into()],
                allowed_ips: vec![from],
                device_ip_sharing: false,
                portal: false,
                mtls_required: false,
            },
            RelyingParty {
                uuid: "00000000-0000-4000-8000-0000000000c2".into(),
                names: vec!["Straße Bank".into()],
                allowed_ips: vec![],
                device_ip_sharing: false,
                portal: false,
                mtls_required: false,
            },
        ]
    );
    let c1 = "00000000-0000-4000-8000-0000000000c1";
    assert!(matches!(
        store.authenticate_relying_party(c1, "demo", from).unwrap(),
        RpCheck::Allowed(_)
    ));
    assert_eq!(
        store
            .authenticate_relying_party("00000000-0000-4000-8000-0000000000c3", "Gone Bank", from)
            .unwrap(),
        RpCheck::Unknown,
        "a removed relying party stays removed"
    );
    // The migrated name is the first; a new one comes after it and the case rule holds.
    store.add_relying_party_name(c1, "Demo Bank", NOW).unwrap();
    assert!(store.add_relying_party_name(c1, "demo", NOW).is_err());
    assert_eq!(rp_names(&store, c1), ["DEMO", "Demo Bank"]);
    // The single-name column is gone; the upgrade is recorded and not applied twice.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let conn = store.conn();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('relying_parties')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(!columns.iter().any(|c| c == "name"), "{columns:?}");
    let applied: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM schema_migrations WHERE version = 11",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(applied, 1);
    drop(conn);
    assert_eq!(rp_names(&store, c1), ["DEMO", "Demo Bank"]);
}

#[test]
fn stored_replies_are_pruned_and_not_printed() {
    let store = SqliteStore::open_in_memory().unwrap();
    let r = Reply {
        scope: "s".into(),
        nonce: vec![1; 16],
        request_hash: vec![2; 32],
        response: b"device-secret".to_vec(),
    };
    store.store_reply(&r).unwrap();
    assert!(!format!("{r:?}").contains("device-secret") && !format!("{r:?}").contains("100, 101"));
    let found = store.lookup_reply("s", &r.nonce, &r.request_hash).unwrap();
    assert!(!format!("{found:?}").contains("100, 101"), "{found:?}");
    let later = unix_now() + REPLY_RETENTION_SECONDS + 1;
    assert_eq!(
        store
            .prune_replies(later - REPLY_RETENTION_SECONDS - 3600)
            .unwrap(),
        0,
        "recent replies stay"
    );
    assert_eq!(store.prune_replies(later).unwrap(), 1);
    assert_eq!(
        store.lookup_reply("s", &r.nonce, &r.request_hash).unwrap(),
        ReplyLookup::New
    );
}

#[test]
fn device_link_secrets_are_pruned_after_retention_without_walking_history() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, _, _) = account(&store, 1);
    let session = |id: &str, secret: Option<Vec<u8>>| RpSession {
        transaction_id: id.into(),
        rp_uuid: "00000000-0000-4000-8000-000000000000".into(),
        session_type: "sign".into(),
        flow: if secret.is_some() {
            "DEVICE_LINK"
        } else {
            "NOTIFICATION"
        }
        .into(),
        session_token: secret.as_ref().map(|_| format!("token-{id}")),
        session_secret: secret,
        restriction: None,
        params: "{}".into(),
        request_hash: id.as_bytes().to_vec(),
        created_at_ms: NOW * 1000,
    };
    // "done": device link, completed at NOW + 1; "late": device link, completed at NOW + 30;
    // "open": device link, still running; "note": notification (never had a secret).
    for (id, secret) in [
        ("done", true),
        ("late", true),
        ("open", true),
        ("note", false),
    ] {
        store
            .create_rp_session(
                &tx_record(id),
                &[(acc.clone(), vec![5; 8])],
                &session(id, secret.then(|| vec![7; 32])),
            )
            .unwrap();
    }
    for (id, at) in [("done", NOW + 1), ("late", NOW + 30), ("note", NOW + 1)] {
        assert!(
            store
                .end_transaction(id, EndResult::UserRefused, Some(&acc), at, None)
                .unwrap()
        );
    }
    let has_secret = |id: &str| {
        store
            .rp_session(id)
            .unwrap()
            .unwrap()
            .session_secret
            .is_some()
    };

    // Nothing completed before NOW + 1.
    assert_eq!(store.prune_rp_sessions(NOW + 1).unwrap(), 0);
    assert_eq!(store.prune_rp_sessions(NOW + 2).unwrap(), 1);
    assert!(!has_secret("done"));
    assert!(has_secret("late") && has_secret("open"));
    assert_eq!(store.prune_rp_sessions(NOW + 31).unwrap(), 1);
    assert!(!has_secret("late"));
    assert!(has_secret("open"), "a running session keeps its secret");
    assert_eq!(store.prune_rp_sessions(NOW + 31).unwrap(), 0);

    // The pruning reads the partial index of sessions still holding a secret; it does not
    // scan the completed transactions or all sessions.
    let conn = store.conn();
    let mut plan = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            rp_sessions::PRUNE_SECRETS
        ))
        .unwrap();
    let steps: Vec<String> = plan
        .query_map(params![NOW, NOW * 1000], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s.contains("USING INDEX rp_sessions_secret_held")),
        "{steps:?}"
    );
    assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{steps:?}");
}

#[test]
fn deferred_writes_commit_at_normal_and_leave_the_connection_at_full() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    let (acc, _, _) = account(&store, 1);
    let level = |store: &SqliteStore| -> i64 {
        store
            .conn()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    };
    const NORMAL: i64 = 1;
    const FULL: i64 = 2;
    assert_eq!(level(&store), FULL);
    let inside = store
        .write_deferred(|tx| {
            insert_transaction(tx, &tx_record("t1"), &[(acc.clone(), vec![5; 8])])?;
            Ok(tx.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))?)
        })
        .unwrap();
    assert_eq!(inside, NORMAL);
    assert_eq!(level(&store), FULL, "restored after the deferred commit");
    assert_eq!(store.transaction("t1", NOW + 1).unwrap().id, "t1");

    // A failed deferred write (here: a duplicate id) restores FULL too.
    assert!(
        store
            .create_transaction(&tx_record("t1"), &[(acc.clone(), vec![5; 8])])
            .is_err()
    );
    assert_eq!(level(&store), FULL);

    // Left at NORMAL (as if restoring had failed), the next synchronous write restores FULL
    // before it commits.
    store
        .conn()
        .pragma_update(None, "synchronous", "NORMAL")
        .unwrap();
    store
        .relaxed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = store
        .write(|tx| Ok(tx.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))?))
        .unwrap();
    assert_eq!(seen, FULL);
    assert!(!store.relaxed.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn a_failed_or_panicking_write_is_rolled_back_and_the_connection_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    let (acc, _, _) = account(&store, 1);
    let target = || vec![(acc.clone(), vec![5u8; 8])];

    // An error after a successful insert: the insert is undone.
    let failed: Result<()> = store.write(|tx| {
        insert_transaction(tx, &tx_record("t1"), &target())?;
        Err(StoreError::Conflict("stop".into()))
    });
    assert!(matches!(failed, Err(StoreError::Conflict(_))));
    assert!(store.conn().is_autocommit(), "no transaction left open");
    assert!(store.transaction("t1", NOW + 1).is_err());

    // A panic after a successful insert: undone as well, and the next write succeeds.
    let store = std::sync::Arc::new(store);
    let s = std::sync::Arc::clone(&store);
    let panicked = std::thread::spawn(move || {
        let _ = s.write_deferred(|tx| -> Result<()> {
            insert_transaction(tx, &tx_record("t3"), &[])?;
            panic!("inside the transaction");
        });
    })
    .join();
    assert!(panicked.is_err());
    assert!(store.conn().is_autocommit(), "no transaction left open");
    assert!(store.transaction("t3", NOW + 1).is_err());
    store
        .create_transaction(&tx_record("t4"), &target())
        .unwrap();
    assert_eq!(store.transaction("t4", NOW + 1).unwrap().id, "t4");
}

#[test]
fn a_transaction_created_already_due_expires_although_that_time_was_found_clean() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, _, _) = account(&store, 1);
    let target = || vec![(acc.clone(), vec![5u8; 8])];
    store
        .create_transaction(&tx_record("t1"), &target())
        .unwrap();
    // Nothing is due at NOW + 1; asking again for that time needs no query.
    assert_eq!(store.expire_transactions(NOW + 1).unwrap(), 0);
    assert_eq!(store.expire_transactions(NOW + 1).unwrap(), 0);
    assert_eq!(
        store.transaction("t1", NOW + 1).unwrap().state,
        TxState::Running
    );
    // t1 ran out at NOW + 60.
    assert_eq!(store.expire_transactions(NOW + 100).unwrap(), 1);
    assert_eq!(
        store.transaction("t1", NOW + 100).unwrap().state,
        TxState::Complete
    );
    // NOW + 100 is now known clean; a transaction created with an earlier expiry (a clock
    // stepped back) is still found due at that time.
    let mut t2 = tx_record("t2");
    t2.expires_at = NOW + 50;
    store.create_transaction(&t2, &target()).unwrap();
    let t2 = store.transaction("t2", NOW + 100).unwrap();
    assert_eq!(
        (t2.state, t2.end_result),
        (TxState::Complete, Some(EndResult::Timeout))
    );
}

#[test]
fn answers_stored_in_clear_by_an_earlier_version_are_discarded_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.db");
    let secret = b"device-secret-0123456789abcdef!!";
    {
        // A database of schema 9 (before sealing) holding an answer in clear.
        let conn = database_at_schema(&path, schema::SEALED_REPLIES_MIGRATION - 1);
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute(
            "INSERT INTO replies (scope, nonce, request_hash, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params!["account:a", vec![1u8; 16], vec![2u8; 32], secret.to_vec(), unix_now()],
        )
        .unwrap();
        // Killed, as a server can be: the answer stays in the WAL, not checkpointed.
        std::mem::forget(conn);
        let wal = std::fs::read(format!("{}-wal", path.display())).unwrap();
        assert!(wal.windows(secret.len()).any(|w| w == secret));
    }
    // The upgrade empties the answer (the nonce stays known, so a retry is not judged
    // again) and leaves no copy in the database file or its WAL.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.lookup_reply("account:a", &[1; 16], &[2; 32]).unwrap(),
        ReplyLookup::Replay(Vec::new())
    );
    drop(store);
    for suffix in ["", "-wal"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "{} keeps the answer",
            file.display()
        );
    }
}

/// The relying party `uuid` as the store lists it.
fn listed_rp(store: &SqliteStore, uuid: &str) -> Option<RelyingParty> {
    store
        .relying_parties()
        .unwrap()
        .into_iter()
        .find(|rp| rp.uuid == uuid)
}

#[test]
fn device_ip_sharing_is_forbidden_unless_allowed_and_every_change_is_audited() {
    let store = SqliteStore::open_in_memory().unwrap();
    let from: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let plain = "00000000-0000-4000-8000-0000000000d1";
    let sharing = "00000000-0000-4000-8000-0000000000d2";
    let rp = |uuid: &str, device_ip_sharing: bool| RelyingParty {
        uuid: uuid.into(),
        names: vec![format!("Bank {uuid}")],
        allowed_ips: vec![],
        device_ip_sharing,
        portal: false,
        mtls_required: false,
    };
    store.add_relying_party(&rp(plain, false), NOW).unwrap();
    store.add_relying_party(&rp(sharing, true), NOW).unwrap();
    let admitted = |uuid: &str| match store
        .authenticate_relying_party(uuid, &format!("Bank {uuid}"), from)
        .unwrap()
    {
        RpCheck::Allowed(rp) => rp.device_ip_sharing,
        other => panic!("{uuid} not admitted: {other:?}"),
    };
    // The permission travels with the admitted relying party (one lookup per request).
    assert!(!admitted(plain));
    assert!(admitted(sharing));
    let added = store.audit_log(1, 100).unwrap();
    assert!(
        added.iter().any(|r| r.event == "relying_party_added"
            && r.details.contains(sharing)
            && r.details.contains("\"device_ip_sharing\":true")),
        "{added:?}"
    );

    // Allow, allow again (no change, no record), forbid.
    let before = store.audit_log(1, 1000).unwrap().len();
    assert!(
        store
            .set_relying_party_device_ip_sharing(plain, true, NOW + 1)
            .unwrap()
    );
    assert!(admitted(plain));
    assert!(listed_rp(&store, plain).unwrap().device_ip_sharing);
    assert!(
        !store
            .set_relying_party_device_ip_sharing(plain, true, NOW + 2)
            .unwrap(),
        "unchanged"
    );
    assert!(
        store
            .set_relying_party_device_ip_sharing(plain, false, NOW + 3)
            .unwrap()
    );
    assert!(!admitted(plain));
    let events: Vec<_> = store
        .audit_log(1, 1000)
        .unwrap()
        .into_iter()
        .skip(before)
        .map(|r| {
            let details: serde_json::Value = serde_json::from_str(&r.details).unwrap();
            (r.event, details)
        })
        .collect();
    let record = |allowed: bool| {
        (
            "relying_party_device_ip_sharing".to_owned(),
            serde_json::json!({ "uuid": plain, "device_ip_sharing": allowed }),
        )
    };
    assert_eq!(events, [record(true), record(false)]);

    // Unknown and removed relying parties are refused and nothing is recorded.
    let unknown = "00000000-0000-4000-8000-0000000000d3";
    for uuid in [unknown, sharing] {
        if uuid == sharing {
            assert!(store.remove_relying_party(sharing, NOW + 4).unwrap());
        }
        let before = store.audit_log(1, 1000).unwrap().len();
        let e = store
            .set_relying_party_device_ip_sharing(uuid, true, NOW + 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no active relying party"), "{e}");
        assert_eq!(store.audit_log(1, 1000).unwrap().len(), before);
    }
    assert!(store.verify_audit_chain().unwrap().is_ok());
}

#[test]
fn relying_parties_of_an_earlier_schema_may_not_request_the_device_ip_after_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.db");
    let uuid = "00000000-0000-4000-8000-0000000000e1";
    {
        // A database of schema 11 (several names, no permission column), as the server
        // before this permission left it.
        let conn = database_at_schema(&path, 11);
        conn.execute_batch(&format!(
            "INSERT INTO relying_parties (uuid, allowed_ips, created_at, active)
                 VALUES ('{uuid}', '127.0.0.1', 10, 1);
             INSERT INTO relying_party_names (rp_uuid, position, name, added_at)
                 VALUES ('{uuid}', 1, 'DEMO', 10), ('{uuid}', 2, 'Demo Bank', 11);"
        ))
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let from: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    // Names and addresses are kept; the permission starts forbidden (the spec's default).
    assert_eq!(
        listed_rp(&store, uuid),
        Some(RelyingParty {
            uuid: uuid.into(),
            names: vec!["DEMO".into(), "Demo Bank".into()],
            allowed_ips: vec![from],
            device_ip_sharing: false,
            portal: false,
            mtls_required: false,
        })
    );
    assert!(matches!(
        store
            .authenticate_relying_party(uuid, "demo bank", from)
            .unwrap(),
        RpCheck::Allowed(RelyingParty {
            device_ip_sharing: false,
            portal: false,
            mtls_required: false,
            ..
        })
    ));
    // The operator can grant it; the upgraded database is opened again without redoing it.
    assert!(
        store
            .set_relying_party_device_ip_sharing(uuid, true, NOW)
            .unwrap()
    );
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert!(listed_rp(&store, uuid).unwrap().device_ip_sharing);
    let applied: i64 = store
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM schema_migrations WHERE version = 12",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(applied, 1);
}

/// The store keeps the reply for the outcome it decided, and only that one: the won answer
/// for a running transaction, the closed answer once it is complete.
#[test]
fn a_success_stores_the_reply_of_the_outcome_it_decided() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (acc, _, sign) = account(&store, 1);
    store
        .create_transaction(&tx_record("t1"), &[(acc.clone(), vec![5; 8])])
        .unwrap();
    let won = Reply {
        response: b"won".to_vec(),
        ..reply("s", 1)
    };
    let closed = Reply {
        response: b"closed".to_vec(),
        ..reply("s", 1)
    };
    let completion = Completion {
        transaction_id: "t1",
        signature: &[9; 4],
        target_outcome: None,
    };
    assert!(
        store
            .attempt_succeeded(
                sign.id,
                &[7; 32],
                Some(completion),
                &acc,
                NOW,
                &won,
                &closed
            )
            .unwrap()
    );
    assert_eq!(
        store.lookup_reply("s", &[1; 16], &[1; 32]).unwrap(),
        ReplyLookup::Replay(b"won".to_vec())
    );
    // The transaction is complete now: a second success (another nonce) lost.
    let won = Reply {
        response: b"won".to_vec(),
        ..reply("s", 2)
    };
    let closed = Reply {
        response: b"closed".to_vec(),
        ..reply("s", 2)
    };
    assert!(
        !store
            .attempt_succeeded(
                sign.id,
                &[8; 32],
                Some(completion),
                &acc,
                NOW,
                &won,
                &closed
            )
            .unwrap()
    );
    assert_eq!(
        store.lookup_reply("s", &[2; 16], &[2; 32]).unwrap(),
        ReplyLookup::Replay(b"closed".to_vec())
    );
    // A stale token on refresh stores the stale answer and disables.
    let ok = Reply {
        response: b"ok".to_vec(),
        ..reply("r", 3)
    };
    let stale = Reply {
        response: b"stale".to_vec(),
        ..reply("r", 3)
    };
    assert!(
        !store
            .refresh_clone_token(sign.id, &[7; 32], &[1; 32], NOW, &ok, &stale)
            .unwrap()
    );
    assert_eq!(
        store.lookup_reply("r", &[3; 16], &[3; 32]).unwrap(),
        ReplyLookup::Replay(b"stale".to_vec())
    );
    assert_eq!(
        store.key_pair(&acc, KeyType::Sign).unwrap().status,
        KeyPairStatus::Disabled
    );
}

/// A failed registration proof is counted only against the count its answer was built for;
/// a count another request moved meanwhile changes nothing and asks the caller to read again.
#[test]
fn a_registration_proof_failure_is_counted_against_the_count_it_was_built_for() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .create_registration(
            &NewRegistration {
                id: "reg-p".into(),
                secret_hash: secret_hash(b"reg-secret"),
                code: "CODEP".into(),
                device_id: vec![9; 16],
                matching_code: "1234".into(),
                created_at: NOW,
                expires_at: NOW + 900,
            },
            &reply("reg-p", 0),
        )
        .unwrap();
    assert_eq!(
        store
            .registration_proof_failed("reg-p", 0, 3, NOW, &reply("reg-p", 1))
            .unwrap(),
        Some(2)
    );
    // Built for 0 attempts, but there is one now: nothing written, not even the reply.
    assert_eq!(
        store
            .registration_proof_failed("reg-p", 0, 3, NOW, &reply("reg-p", 2))
            .unwrap(),
        None
    );
    assert_eq!(
        store.lookup_reply("reg-p", &[2; 16], &[2; 32]).unwrap(),
        ReplyLookup::New
    );
    assert_eq!(store.registration("reg-p").unwrap().proof_attempts, 1);
    assert_eq!(
        store
            .registration_proof_failed("reg-p", 1, 3, NOW, &reply("reg-p", 2))
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .registration_proof_failed("reg-p", 2, 3, NOW, &reply("reg-p", 3))
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        store.registration("reg-p").unwrap().state,
        RegistrationState::Failed
    );
}

#[test]
fn one_origin_proof_per_auth_session_with_its_audit_record() {
    let store = SqliteStore::open_in_memory().unwrap();
    let audit_len = |store: &SqliteStore| store.audit_log(1, 1000).unwrap().len();
    let details = serde_json::json!({ "messageId": "m-1" });
    let before = audit_len(&store);
    let record = |session: &str, msg: &str| {
        store
            .record_origin_proof(session, "rp-1", msg, NOW, "origin.proof", None, &details)
            .unwrap()
    };
    assert!(record("s-1", "m-1"));
    assert_eq!(audit_len(&store), before + 1);
    // The same session again, even with another message id: refused, nothing written.
    assert!(!record("s-1", "m-2"));
    assert_eq!(audit_len(&store), before + 1);
    assert!(record("s-2", "m-2"));
    assert_eq!(audit_len(&store), before + 2);
    let last = store.audit_log(1, 1000).unwrap().pop().unwrap();
    assert_eq!(last.event, "origin.proof");
    assert_eq!(store.verify_audit_chain().unwrap(), Ok(before + 2));
}
