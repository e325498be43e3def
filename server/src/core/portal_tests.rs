//! The portal's decisions against an in-memory store.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};

use super::*;
use crate::core::FixedClock;
use crate::core::auth_session::AuthSessionRefused;
use crate::lockout::LockoutPolicy;
use crate::store::prelude::*;
use crate::store::{
    Identity, NewCertificate, NewRegistration, RegistrationKey, Reply, RpSession, SqliteStore,
    TxRecord, secret_hash,
};

const NOW: i64 = 1_800_000_000;
const RP: &str = "00000000-0000-4000-8000-0000000000aa";
const OTHER_RP: &str = "00000000-0000-4000-8000-0000000000bb";
/// A self-signed test certificate (P-256, made with openssl for these tests only; its
/// subject is what the portal shows, its key signs nothing).
const CERT_B64: &str = "MIICJDCCAcmgAwIBAgIUbsVrkvUJYwKRH4O2IGKl7DCou7YwCgYIKoZIzj0EAwIwZzELMAkGA1UEBhMCRUUxEzARBgNVBAQMClRFU1ROVU1CRVIxDTALBgNVBCoMBE1BUlkxGjAYBgNVBAUTEVBOT0VFLTMwMzAzMDM5OTE0MRgwFgYDVQQDDA9URVNUTlVNQkVSLE1BUlkwHhcNMjYxMjA3MTkyNzA1WhcNMzYxMjA0MTkyNzA1WjBnMQswCQYDVQQGEwJFRTETMBEGA1UEBAwKVEVTVE5VTUJFUjENMAsGA1UEKgwETUFSWTEaMBgGA1UEBRMRUE5PRUUtMzAzMDMwMzk5MTQxGDAWBgNVBAMMD1RFU1ROVU1CRVIsTUFSWTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABBhejg7qRxqY01xhYc8q89myzmgOORlxRq7J1Cphs15P8lKQYw8ctSyNdeKMFi/sAIiHZK/+SdUV8wtTjhEfbZujUzBRMB0GA1UdDgQWBBTC5vNbHpfov82q3Ncg23JDqYcOgDAfBgNVHSMEGDAWgBTC5vNbHpfov82q3Ncg23JDqYcOgDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQD24d65BZk4ssxg8UoDL8gW73vuFPZncfJt9dnmhzcLFgIhAPIM8VU3//bH+R+V2PwUe0k7hxxblWLejGHdh786/EtG";

fn cert_der() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(CERT_B64)
        .unwrap()
}

fn reply(n: u8) -> Reply {
    Reply {
        scope: format!("s{n}"),
        nonce: vec![n; 16],
        request_hash: vec![n; 32],
        response: vec![n],
    }
}

fn settings() -> PortalSettings {
    PortalSettings {
        portal_session_seconds: 900,
        max_auth_age_seconds: 300,
        lockout: LockoutPolicy::default(),
    }
}

/// Registers account `n` of the person with national identity `national_id`.
fn account(store: &SqliteStore, n: u8, national_id: &str) -> String {
    let reg = format!("reg-{n}");
    store
        .create_registration(
            &NewRegistration {
                id: reg.clone(),
                secret_hash: secret_hash(b"r"),
                code: format!("CODE{n}"),
                device_id: vec![n; 16],
                matching_code: "1234".into(),
                created_at: NOW - 5000,
                expires_at: NOW + 900,
            },
            &reply(n),
        )
        .unwrap();
    let who = Identity {
        given_name: "MARY".into(),
        surname: "TESTNUMBER".into(),
        country: "EE".into(),
        national_id: national_id.into(),
    };
    store
        .approve_registration(&format!("CODE{n}"), &who, NOW - 4999)
        .unwrap();
    let keys: Vec<RegistrationKey> = [KeyType::Auth, KeyType::Sign]
        .into_iter()
        .map(|key_type| RegistrationKey {
            key_type,
            client_modulus: vec![0x0b],
            server_modulus: vec![0x0d],
            server_share_blob: vec![1],
            server_key_blob: vec![2],
            proof_hash: "SHA256".into(),
            proof_scheme: "PKCS1_V15".into(),
            proof_digest: vec![0; 32],
            proof_message: vec![7; 8],
        })
        .collect();
    store
        .submit_registration_keys(&reg, &keys, NOW - 4998, &reply(n + 100))
        .unwrap();
    let id = format!("acc-{n}");
    let cert = |kt, s| NewCertificate {
        serial: vec![n, s],
        key_type: kt,
        level: "QUALIFIED".into(),
        der: cert_der(),
        not_before: NOW - 5000,
        not_after: NOW + 100_000,
    };
    store
        .complete_registration(
            &reg,
            &id,
            &format!("PNOEE-{national_id}-000{n}-Q"),
            &secret_hash(b"d"),
            NOW + 100_000,
            &[(KeyType::Auth, vec![1; 32]), (KeyType::Sign, vec![2; 32])],
            &[cert(KeyType::Auth, 1), cert(KeyType::Sign, 2)],
            NOW - 4997,
            &reply(n + 200),
        )
        .unwrap();
    id
}

/// A session of `rp` (`auth` or `sign`) addressed to `account`, created at `at`.
fn session(store: &SqliteStore, id: &str, rp: &str, kind: &str, account: &str, at: i64) {
    let tx = TxRecord {
        id: id.into(),
        kind: if kind == "auth" {
            TxKind::Authentication
        } else {
            TxKind::Signature
        },
        relying_party: "Portal".into(),
        key_type: KeyType::Auth,
        hash: HashAlgorithm::Sha256,
        scheme: SignatureScheme::Pss,
        digest: vec![1; 32],
        display_text: "Log in".into(),
        verification_code: "1234".into(),
        vc_choices: Vec::new(),
        state: TxState::Running,
        end_result: None,
        signature: None,
        answered_by: None,
        created_at: at,
        expires_at: at + 120,
    };
    let s = RpSession {
        transaction_id: id.into(),
        rp_uuid: rp.into(),
        session_type: kind.into(),
        flow: "NOTIFICATION".into(),
        session_token: None,
        session_secret: None,
        restriction: None,
        params: "{}".into(),
        request_hash: id.as_bytes().to_vec(),
        created_at_ms: at * 1000,
    };
    store
        .create_rp_session(&tx, &[(account.to_owned(), vec![5])], &s)
        .unwrap();
}

fn ok(store: &SqliteStore, id: &str, account: &str, at: i64) {
    assert!(
        store
            .complete_without_signature(
                id,
                account,
                at,
                &Reply {
                    scope: format!("ok-{id}"),
                    ..reply(250)
                },
                None
            )
            .unwrap()
    );
}

fn sessions_id(n: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02}")
}

#[test]
fn the_overview_shows_the_holders_accounts_keys_certificates_and_transactions() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a1 = account(&store, 1, "30303039914");
    let a2 = account(&store, 2, "30303039914");
    let _stranger = account(&store, 3, "49001010000");
    let s = sessions_id(1);
    session(&store, &s, RP, "auth", &a1, NOW - 60);
    ok(&store, &s, &a1, NOW - 50);
    // Two wrong PINs on account 2's SIGN key, then a lock by a third.
    let policy = LockoutPolicy::default();
    let sign2 = store.key_pair(&a2, KeyType::Sign).unwrap();
    for i in 0..3u8 {
        let gate = store.begin_attempt(sign2.id, &policy, NOW - 40).unwrap();
        assert!(matches!(gate, crate::store::AttemptGate::Proceed { .. }));
        store
            .attempt_failed(sign2.id, &policy, None, NOW - 40, &reply(10 + i))
            .unwrap();
    }
    let o = overview(&store, &settings(), RP, &s, &FixedClock(NOW * 1000)).unwrap();
    assert_eq!(o.holder.national_identity_number, "30303039914");
    let docs: Vec<&str> = o
        .accounts
        .iter()
        .map(|a| a.document_number.as_str())
        .collect();
    assert_eq!(
        docs,
        ["PNOEE-30303039914-0001-Q", "PNOEE-30303039914-0002-Q"]
    );
    let first = &o.accounts[0];
    assert!(first.keys.iter().all(|k| k.status == api::KeyStatus::Active
        && k.attempts_left == 3
        && k.wrong_pin_attempts == 0));
    assert_eq!(first.certificates.len(), 2);
    assert!(first.certificates[0].subject.contains("PNOEE-30303039914"));
    assert_eq!(first.certificates[0].level, CertificateLevel::Qualified);
    assert!(first.certificates.iter().all(|c| c.revoked.is_none()));
    assert_eq!(first.device.last_used, None);
    let sign = o.accounts[1]
        .keys
        .iter()
        .find(|k| k.purpose == KeyPurpose::Sign)
        .unwrap();
    assert_eq!(sign.status, api::KeyStatus::Locked);
    assert!(sign.locked_until.unwrap().unix_secs() > u64::try_from(NOW).unwrap());
    assert_eq!(sign.wrong_pin_attempts, 3);
    assert_eq!(
        o.accounts[1].device.last_used.map(|t| t.unix_secs()),
        Some(u64::try_from(NOW - 40).unwrap())
    );
    assert_eq!(o.transactions.len(), 1);
    let t = &o.transactions[0];
    assert_eq!(t.kind, TransactionKind::Authentication);
    assert_eq!(t.api, TransactionApi::RpApiV3);
    assert_eq!(t.result, TransactionResult::Ok);
    assert_eq!(
        t.document_number.as_deref(),
        Some("PNOEE-30303039914-0001-Q")
    );
}

#[test]
fn only_a_completed_ok_auth_session_of_the_same_rp_within_the_limit_counts() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a1 = account(&store, 1, "30303039914");
    let clock = FixedClock(NOW * 1000);
    let st = settings();
    let refused = |id: &str, rp: &str| overview(&store, &st, rp, id, &clock).unwrap_err();
    assert!(matches!(
        refused(&sessions_id(9), RP),
        PortalRefused::Session(AuthSessionRefused::NoSuchSession)
    ));
    let s = sessions_id(1);
    session(&store, &s, RP, "auth", &a1, NOW - 10);
    assert!(matches!(
        refused(&s, RP),
        PortalRefused::Session(AuthSessionRefused::NotComplete)
    ));
    ok(&store, &s, &a1, NOW - 5);
    assert!(matches!(
        refused(&s, OTHER_RP),
        PortalRefused::Session(AuthSessionRefused::ForeignSession)
    ));
    assert!(overview(&store, &st, RP, &s, &clock).is_ok());
    let sign = sessions_id(2);
    session(&store, &sign, RP, "sign", &a1, NOW - 10);
    ok(&store, &sign, &a1, NOW - 5);
    assert!(matches!(
        refused(&sign, RP),
        PortalRefused::Session(AuthSessionRefused::NotAuthentication)
    ));
    let refused_one = sessions_id(3);
    session(&store, &refused_one, RP, "auth", &a1, NOW - 10);
    store
        .end_transaction(
            &refused_one,
            EndResult::UserRefused,
            Some(&a1),
            NOW - 5,
            None,
        )
        .unwrap();
    assert!(matches!(
        refused(&refused_one, RP),
        PortalRefused::Session(AuthSessionRefused::NotSuccessful)
    ));
    // Exactly at the limit still counts; one second more does not.
    let at_limit = FixedClock((NOW - 5 + 900) * 1000);
    assert!(overview(&store, &st, RP, &s, &at_limit).is_ok());
    let late = FixedClock((NOW - 5 + 901) * 1000);
    assert!(matches!(
        overview(&store, &st, RP, &s, &late).unwrap_err(),
        PortalRefused::Session(AuthSessionRefused::TooOld { age: 901, max: 900 })
    ));
}

#[test]
fn a_deletion_needs_a_fresh_unused_session_and_the_holders_own_account() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a1 = account(&store, 1, "30303039914");
    let a2 = account(&store, 2, "30303039914");
    let _stranger = account(&store, 3, "49001010000");
    let s = sessions_id(1);
    session(&store, &s, RP, "auth", &a1, NOW - 400);
    ok(&store, &s, &a1, NOW - 301);
    let st = settings();
    let clock = FixedClock(NOW * 1000);
    let by_store = |id: &str| {
        store.delete_account_for_portal(
            id,
            &crate::store::PortalDeletion {
                auth_session_id: &s,
                rp_uuid: RP,
            },
            NOW,
        )
    };
    let del = |doc: &str| delete_account(&store, &st, RP, &s, doc, &clock, &by_store);
    // Good for the overview (900 s), too old for a deletion (300 s).
    assert!(overview(&store, &st, RP, &s, &clock).is_ok());
    assert!(matches!(
        del("PNOEE-30303039914-0002-Q").unwrap_err(),
        PortalRefused::Session(AuthSessionRefused::TooOld { age: 301, max: 300 })
    ));
    let fresh = sessions_id(2);
    session(&store, &fresh, RP, "auth", &a1, NOW - 20);
    ok(&store, &fresh, &a1, NOW - 10);
    let by_store = |id: &str| {
        store.delete_account_for_portal(
            id,
            &crate::store::PortalDeletion {
                auth_session_id: &fresh,
                rp_uuid: RP,
            },
            NOW,
        )
    };
    let del = |doc: &str| delete_account(&store, &st, RP, &fresh, doc, &clock, &by_store);
    assert!(matches!(
        del("PNOEE-49001010000-0003-Q").unwrap_err(),
        PortalRefused::NoSuchAccount
    ));
    assert!(matches!(
        del("PNOEE-NOBODY").unwrap_err(),
        PortalRefused::NoSuchAccount
    ));
    // The holder may delete another of their accounts than the one that logged in.
    let done = del("PNOEE-30303039914-0002-Q").unwrap();
    assert_eq!(done.deleted, "PNOEE-30303039914-0002-Q");
    let mut revoked = done.revoked_certificates.clone();
    revoked.sort();
    assert_eq!(revoked, ["0201", "0202"]);
    assert!(
        store
            .certificates_of(&a2)
            .unwrap()
            .iter()
            .all(|c| c.revoked.is_some())
    );
    // The same session again: 409, for any account.
    assert!(matches!(
        del("PNOEE-30303039914-0002-Q").unwrap_err(),
        PortalRefused::AlreadyUsed
    ));
    assert!(matches!(
        del("PNOEE-30303039914-0001-Q").unwrap_err(),
        PortalRefused::AlreadyUsed
    ));
    // The deleted account and its transactions are no longer shown.
    let o = overview(&store, &st, RP, &fresh, &clock).unwrap();
    assert_eq!(o.accounts.len(), 1);
    assert_eq!(o.accounts[0].document_number, "PNOEE-30303039914-0001-Q");
}
