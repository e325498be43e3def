//! The store's part of the self-service portal: the permission, a holder's transactions,
//! the deletion that uses its AUTH session once.

#![allow(clippy::unwrap_used)]

use super::tests::{account, identity, tx_record};
use super::*;
use crate::store::*;

const NOW: i64 = 1_800_000_000;
const RP: &str = "00000000-0000-4000-8000-0000000000aa";

fn rp_session(id: &str) -> RpSession {
    RpSession {
        transaction_id: id.into(),
        rp_uuid: RP.into(),
        session_type: "auth".into(),
        flow: "NOTIFICATION".into(),
        session_token: None,
        session_secret: None,
        restriction: None,
        params: "{}".into(),
        request_hash: id.as_bytes().to_vec(),
        created_at_ms: NOW * 1000,
    }
}

#[test]
fn the_portal_permission_is_off_by_default_and_every_change_is_audited() {
    let store = SqliteStore::open_in_memory().unwrap();
    let rp = RelyingParty {
        uuid: RP.into(),
        names: vec!["Portal".into()],
        allowed_ips: vec![],
        device_ip_sharing: false,
        portal: false,
        mtls_required: false,
    };
    store.add_relying_party(&rp, NOW).unwrap();
    let portal = |s: &SqliteStore| s.active_relying_party(RP).unwrap().unwrap().portal;
    assert!(!portal(&store));
    assert!(store.set_relying_party_portal(RP, true, NOW + 1).unwrap());
    assert!(portal(&store));
    // Unchanged: no second audit record.
    assert!(!store.set_relying_party_portal(RP, true, NOW + 2).unwrap());
    assert!(store.set_relying_party_portal(RP, false, NOW + 3).unwrap());
    assert!(!portal(&store));
    assert!(store.relying_parties().unwrap().iter().all(|r| !r.portal));
    let changes: Vec<(i64, String)> = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .filter(|r| r.event == "relying_party_portal")
        .map(|r| (r.at, r.details))
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0].0, NOW + 1);
    assert!(changes[0].1.contains("\"portal\":true"));
    assert!(changes[1].1.contains("\"portal\":false"));
    // The device-IP permission is a column of its own.
    assert!(
        !store
            .active_relying_party(RP)
            .unwrap()
            .unwrap()
            .device_ip_sharing
    );
    assert!(
        store
            .set_relying_party_portal("00000000-0000-4000-8000-0000000000bb", true, NOW)
            .is_err()
    );
}

#[test]
fn a_holders_transactions_come_newest_first_once_each_with_their_api() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (a1, _, _) = account(&store, 1);
    let (a2, _, _) = account(&store, 2);
    let (other, _, _) = account(&store, 3);
    let at = |id: &str, t: i64| TxRecord {
        created_at: t,
        expires_at: t + 60,
        ..tx_record(id)
    };
    // "both": addressed to both accounts (a notification by national identity).
    store
        .create_transaction(
            &at("both", NOW),
            &[(a1.clone(), vec![1]), (a2.clone(), vec![2])],
        )
        .unwrap();
    store
        .create_rp_session(
            &at("rest", NOW + 5),
            &[(a2.clone(), vec![3])],
            &rp_session("rest"),
        )
        .unwrap();
    store
        .create_transaction(&at("foreign", NOW + 9), &[(other.clone(), vec![4])])
        .unwrap();
    for i in 0..3 {
        store
            .create_transaction(
                &at(&format!("old{i}"), NOW - 100 + i),
                &[(a1.clone(), vec![5])],
            )
            .unwrap();
    }
    assert!(
        store
            .end_transaction("both", EndResult::WrongVc, Some(&a1), NOW + 2, None)
            .unwrap()
    );
    let ids = [a1.clone(), a2.clone()];
    let list = store.recent_transactions_of(&ids, 50).unwrap();
    let names: Vec<&str> = list.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(names, ["rest", "both", "old2", "old1", "old0"]);
    assert!(list[0].rest);
    assert_eq!(list[0].state, TxState::Running);
    assert!(!list[1].rest);
    assert_eq!(list[1].end_result, Some(EndResult::WrongVc));
    assert_eq!(list[1].answered_by.as_deref(), Some(a1.as_str()));
    assert_eq!(list[1].completed_at, Some(NOW + 2));
    assert_eq!(list[1].kind, TxKind::Signature);
    // The limit keeps the newest.
    let two = store.recent_transactions_of(&ids, 2).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].id, "both");
    assert!(store.recent_transactions_of(&[], 50).unwrap().is_empty());
    // Within one second, the one stored last comes first (ids are random).
    for id in ["b-first", "a-second"] {
        store
            .create_transaction(&at(id, NOW + 20), &[(a1.clone(), vec![6])])
            .unwrap();
    }
    let two = store.recent_transactions_of(&ids, 2).unwrap();
    assert_eq!(
        [two[0].id.as_str(), two[1].id.as_str()],
        ["a-second", "b-first"]
    );
}

#[test]
fn a_portal_deletion_uses_its_session_once_and_revokes_like_any_deletion() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (a1, _, _) = account(&store, 1);
    let (a2, _, _) = account(&store, 2);
    let id = identity();
    assert_eq!(
        store
            .accounts_of(&id.country, &id.national_id)
            .unwrap()
            .len(),
        2
    );
    let deletion = PortalDeletion {
        auth_session_id: "s-1",
        rp_uuid: RP,
    };
    assert!(
        store
            .delete_account_for_portal(&a1, &deletion, NOW)
            .unwrap()
    );
    let acc = store.account(&a1).unwrap();
    assert_eq!(acc.state, AccountState::Deleted);
    let certs = store.certificates_of(&a1).unwrap();
    assert!(!certs.is_empty());
    assert!(
        certs
            .iter()
            .all(|c| c.revoked.map(|(at, _)| at) == Some(NOW))
    );
    assert!(
        store
            .key_pairs(&a1)
            .unwrap()
            .iter()
            .all(|kp| kp.server_share_blob.is_none() && kp.server_key_blob.is_none())
    );
    // The same session once more, even for another account: refused, nothing changed.
    assert!(
        !store
            .delete_account_for_portal(&a2, &deletion, NOW + 1)
            .unwrap()
    );
    assert_eq!(store.account(&a2).unwrap().state, AccountState::Active);
    // Deleted accounts stay in the person's list (the caller decides what to show).
    let all = store.accounts_of(&id.country, &id.national_id).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        store
            .active_accounts_of(&id.country, &id.national_id)
            .unwrap()
            .len(),
        1
    );
    let audit = store.audit_log(0, 1000).unwrap();
    let deleted: Vec<_> = audit
        .iter()
        .filter(|r| r.event == "account_deleted")
        .collect();
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].details.contains("\"by\":\"portal\""));
    assert!(deleted[0].details.contains(RP));
    assert!(deleted[0].details.contains("s-1"));
    // A deleted account cannot be deleted again with a new session, and that session
    // stays unused.
    let again = PortalDeletion {
        auth_session_id: "s-2",
        rp_uuid: RP,
    };
    assert!(matches!(
        store.delete_account_for_portal(&a1, &again, NOW + 2),
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .delete_account_for_portal(&a2, &again, NOW + 3)
            .unwrap()
    );
}
