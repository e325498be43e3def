//! The store's part of relying parties' software certificates: credits never negative, a
//! voucher redeemed once under concurrency (two connections), cancel racing a completion,
//! the restart requeue, revocation, the mTLS flag.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::store::*;

const NOW: i64 = 1_800_000_000;
const RP: &str = "00000000-0000-4000-8000-0000000000aa";
const OTHER: &str = "00000000-0000-4000-8000-0000000000bb";
const ADMIN: &str = "PNOEE-30303039914";

fn store_with_rps(store: &SqliteStore) {
    for (uuid, name) in [(RP, "Bank"), (OTHER, "Shop")] {
        let rp = RelyingParty {
            uuid: uuid.into(),
            names: vec![name.into()],
            allowed_ips: vec![],
            device_ip_sharing: false,
            portal: false,
            mtls_required: false,
        };
        store.add_relying_party(&rp, NOW).unwrap();
    }
}

fn new_certs(n: usize) -> Vec<NewRpCertRecord> {
    (0..n)
        .map(|_| NewRpCertRecord {
            id: uuid::Uuid::new_v4().to_string(),
            label: "label".into(),
            public_key: vec![1, 2, 3],
        })
        .collect()
}

fn voucher(code: &str) -> NewVoucher {
    NewVoucher {
        code_hash: voucher_code_hash(code),
        code: code.to_owned(),
    }
}

fn issued(id: &str, serial: u8) -> IssuedRpCertRecord {
    IssuedRpCertRecord {
        id: id.into(),
        serial: vec![serial, 1, 2],
        der: vec![0x30, 0],
        not_after: NOW + 1000,
    }
}

#[test]
fn credits_are_spent_all_or_nothing_and_never_negative() {
    let store = SqliteStore::open_in_memory().unwrap();
    store_with_rps(&store);
    assert_eq!(store.rp_credits(RP).unwrap(), 0);
    assert!(matches!(
        store.queue_rp_certs(RP, ADMIN, &new_certs(1), NOW),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.add_rp_credits(RP, 3, NOW).unwrap(), 3);
    // Four do not fit into three: none is queued.
    assert!(matches!(
        store.queue_rp_certs(RP, ADMIN, &new_certs(4), NOW),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.rp_credits(RP).unwrap(), 3);
    assert!(store.rp_certs_of(Some(RP)).unwrap().is_empty());
    assert_eq!(
        store.queue_rp_certs(RP, ADMIN, &new_certs(3), NOW).unwrap(),
        0
    );
    assert_eq!(store.rp_certs_of(Some(RP)).unwrap().len(), 3);
    assert!(store.rp_certs_of(Some(OTHER)).unwrap().is_empty());
    assert!(matches!(
        store.add_rp_credits(RP, u32::MAX, NOW),
        Ok(_) | Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_rp_credits(RP, u32::MAX, NOW),
        Err(StoreError::Conflict(_))
    ));
    assert!(store.add_rp_credits("unknown", 1, NOW).is_err());
    let events: Vec<String> = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert!(events.contains(&"rp_credit_added".to_string()));
    assert!(events.contains(&"rp_certs_queued".to_string()));
}

#[test]
fn administrators_and_the_mtls_flag() {
    let store = SqliteStore::open_in_memory().unwrap();
    store_with_rps(&store);
    assert!(store.add_rp_admin(RP, ADMIN, NOW).unwrap());
    assert!(!store.add_rp_admin(RP, ADMIN, NOW).unwrap());
    assert!(store.add_rp_admin(RP, "PNOEE-1 x", NOW).is_err());
    assert!(store.add_rp_admin(RP, "EE-30303039914", NOW).is_err());
    assert_eq!(store.administered_rps(ADMIN).unwrap(), vec![RP.to_string()]);
    assert!(store.remove_rp_admin(RP, ADMIN, NOW).unwrap());
    assert!(!store.remove_rp_admin(RP, ADMIN, NOW).unwrap());
    assert!(store.administered_rps(ADMIN).unwrap().is_empty());
    let mtls = |s: &SqliteStore| s.active_relying_party(RP).unwrap().unwrap().mtls_required;
    assert!(!mtls(&store));
    assert!(store.set_relying_party_mtls(RP, true, NOW).unwrap());
    assert!(mtls(&store));
    assert!(!store.set_relying_party_mtls(RP, true, NOW).unwrap());
    let n = store
        .audit_log(0, 100)
        .unwrap()
        .iter()
        .filter(|r| r.event == "relying_party_mtls_required")
        .count();
    assert_eq!(n, 1);
}

#[test]
fn a_voucher_is_redeemed_once_even_by_concurrent_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).unwrap();
    store_with_rps(&store);
    store.add_rp_credits(RP, 1, NOW).unwrap();
    let certs = new_certs(1);
    store.queue_rp_certs(RP, ADMIN, &certs, NOW).unwrap();
    let code = "TV-7KQ2-M9XD-4HPA";
    store
        .cancel_rp_cert(RP, &certs[0].id, &voucher(code), ADMIN, NOW)
        .unwrap();
    // Another relying party cannot redeem it: it looks unknown.
    assert!(matches!(
        store.redeem_rp_voucher(OTHER, &voucher_code_hash(code), ADMIN, NOW),
        Err(StoreError::NotFound(_))
    ));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            // Written in another case and spacing: the same code.
            let code = if i % 2 == 0 {
                "tv 7kq2 m9xd 4hpa"
            } else {
                code
            };
            std::thread::spawn(move || {
                let s = SqliteStore::open(&path).unwrap();
                s.redeem_rp_voucher(RP, &voucher_code_hash(code), ADMIN, NOW)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
        .count();
    assert_eq!((ok, conflicts), (1, 7), "{results:?}");
    assert_eq!(store.rp_credits(RP).unwrap(), 1);
    let v = store.rp_vouchers(RP).unwrap();
    assert_eq!(v.len(), 1);
    assert!(v[0].redeemed_at.is_some());
    assert_eq!(
        store.verify_audit_chain().unwrap(),
        Ok(store.audit_log(0, 1000).unwrap().len())
    );
}

#[test]
fn a_cancel_before_completion_discards_the_certificate_as_revoked() {
    let store = SqliteStore::open_in_memory().unwrap();
    store_with_rps(&store);
    store.add_rp_credits(RP, 3, NOW).unwrap();
    let certs = new_certs(3);
    store.queue_rp_certs(RP, ADMIN, &certs, NOW).unwrap();
    let claimed = store.claim_rp_certs(2, NOW).unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].id, certs[0].id, "oldest first");
    assert!(claimed.iter().all(|c| c.status == RpCertStatus::Creating));
    // The first is cancelled while it is being signed.
    store
        .cancel_rp_cert(RP, &certs[0].id, &voucher("TV-AAAA-BBBB-CCCC"), ADMIN, NOW)
        .unwrap();
    let out = store
        .complete_rp_certs(
            &[issued(&certs[0].id, 0x11), issued(&certs[1].id, 0x22)],
            NOW,
        )
        .unwrap();
    assert_eq!(
        out,
        vec![RpCertCompletion::Discarded, RpCertCompletion::Issued]
    );
    let first = store.rp_cert(RP, &certs[0].id).unwrap().unwrap();
    assert_eq!(first.status, RpCertStatus::Cancelled);
    assert!(first.revoked.is_some(), "the signed serial is revoked");
    let by_serial = store.rp_cert_by_serial(&[0x11, 1, 2]).unwrap().unwrap();
    assert_eq!(by_serial.id, certs[0].id);
    let second = store.rp_cert(RP, &certs[1].id).unwrap().unwrap();
    assert_eq!(second.status, RpCertStatus::Ready);
    assert_eq!(second.serial_hex.as_deref(), Some("220102"));
    // A ready one cannot be cancelled; the cancelled one not twice.
    for id in [&certs[1].id, &certs[0].id] {
        assert!(matches!(
            store.cancel_rp_cert(RP, id, &voucher("TV-DDDD-EEEE-FFFF"), ADMIN, NOW),
            Err(StoreError::Conflict(_))
        ));
    }
    assert!(matches!(
        store.cancel_rp_cert(
            OTHER,
            &certs[2].id,
            &voucher("TV-DDDD-EEEE-FFFF"),
            ADMIN,
            NOW
        ),
        Err(StoreError::NotFound(_))
    ));
    let revoked: Vec<String> = store
        .revoked_rp_certs()
        .unwrap()
        .into_iter()
        .filter_map(|r| r.serial_hex)
        .collect();
    assert_eq!(revoked, vec!["110102".to_string()]);
    // Revocation of the ready one, by serial; a second time changes nothing.
    let (rec, changed) = store
        .revoke_rp_cert(Some(RP), "00220102", 0, ADMIN, NOW + 5)
        .unwrap();
    assert!(changed);
    assert_eq!(rec.revoked, Some((NOW + 5, 0)));
    assert!(
        !store
            .revoke_rp_cert(None, &certs[1].id, 0, ADMIN, NOW)
            .unwrap()
            .1
    );
    assert!(matches!(
        store.revoke_rp_cert(Some(OTHER), &certs[1].id, 0, ADMIN, NOW),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.revoked_rp_certs().unwrap().len(), 2);
}

#[test]
fn creations_left_creating_are_queued_again_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let certs = new_certs(5);
    {
        let store = SqliteStore::open(&path).unwrap();
        store_with_rps(&store);
        store.add_rp_credits(RP, 5, NOW).unwrap();
        store.queue_rp_certs(RP, ADMIN, &certs, NOW).unwrap();
        assert_eq!(store.claim_rp_certs(3, NOW).unwrap().len(), 3);
        // The process dies here.
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.requeue_creating_rp_certs().unwrap(), 3);
    let claimed = store.claim_rp_certs(10, NOW).unwrap();
    assert_eq!(claimed.len(), 5);
    let done: Vec<_> = claimed
        .iter()
        .zip(1u8..)
        .map(|(c, i)| issued(&c.id, i))
        .collect();
    store.complete_rp_certs(&done, NOW).unwrap();
    let all = store.rp_certs_of(Some(RP)).unwrap();
    assert!(all.iter().all(|c| c.status == RpCertStatus::Ready));
    assert_eq!(store.rp_credits(RP).unwrap(), 0);
    // A second completion of the same creations stores nothing (they are not creating).
    let again = store.complete_rp_certs(&done[..1], NOW).unwrap();
    assert_eq!(again, vec![RpCertCompletion::Discarded]);
    assert_eq!(
        store
            .rp_cert(RP, &claimed[0].id)
            .unwrap()
            .unwrap()
            .serial_hex,
        Some(hex::encode(&done[0].serial))
    );
}
