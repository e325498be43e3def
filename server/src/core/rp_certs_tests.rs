//! The decisions of relying parties' software certificates against an in-memory store
//! (the AUTH session part is the portal's, tested there and end to end).

#![allow(clippy::unwrap_used)]

use rand::SeedableRng as _;

use super::*;
use crate::core::FixedClock;
use crate::store::SqliteStore;
use crate::store::prelude::*;

const NOW: i64 = 1_800_000_000;
const A: &str = "00000000-0000-4000-8000-0000000000aa";
const B: &str = "00000000-0000-4000-8000-0000000000bb";
const PERSON: &str = "PNOEE-30303039914";
const SESSION: &str = "11111111-1111-4111-8111-111111111111";

fn store() -> SqliteStore {
    let store = SqliteStore::open_in_memory().unwrap();
    for (uuid, name) in [(A, "Bank"), (B, "Shop")] {
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
    store
}

fn admin(caller: &str, portal: bool) -> Admin {
    Admin {
        person: PERSON.into(),
        caller_is_portal: portal,
        caller_uuid: caller.into(),
    }
}

fn csr_b64() -> String {
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let key = openssl::pkey::PKey::from_rsa(rsa).unwrap();
    let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
    b.set_pubkey(&key).unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    STANDARD.encode(b.build().to_der().unwrap())
}

fn create_req(target: &str, labels: &[&str], csr: &str) -> CreateRequest {
    CreateRequest {
        relying_party_uuid: A.into(),
        relying_party_name: "Bank".into(),
        auth_session_id: SESSION.into(),
        target_relying_party_uuid: target.into(),
        certificates: labels
            .iter()
            .map(|l| api::NewRpCert {
                label: (*l).into(),
                csr: csr.into(),
            })
            .collect(),
    }
}

fn cert_req(target: &str, id: &str) -> CertificateRequest {
    CertificateRequest {
        relying_party_uuid: A.into(),
        relying_party_name: "Bank".into(),
        auth_session_id: SESSION.into(),
        target_relying_party_uuid: target.into(),
        certificate_id: id.into(),
    }
}

#[test]
fn only_administrators_through_their_own_rp_or_the_portal() {
    let store = store();
    // Not an administrator: the same refusal for an existing and an unknown target.
    assert!(matches!(
        authorise(&store, &admin(A, false), A),
        Err(RpCertsRefused::NotAdministrator)
    ));
    assert!(matches!(
        authorise(
            &store,
            &admin(A, true),
            "00000000-0000-4000-8000-0000000000cc"
        ),
        Err(RpCertsRefused::NotAdministrator)
    ));
    store.add_rp_admin(A, PERSON, NOW).unwrap();
    store.add_rp_admin(B, PERSON, NOW).unwrap();
    assert!(authorise(&store, &admin(A, false), A).is_ok());
    // B's certificates through A: only with the portal permission.
    assert!(matches!(
        authorise(&store, &admin(A, false), B),
        Err(RpCertsRefused::ForeignTarget)
    ));
    assert!(authorise(&store, &admin(A, true), B).is_ok());
    // The list: only what the caller may manage.
    let list_req = ListRequest {
        relying_party_uuid: A.into(),
        relying_party_name: "Bank".into(),
        auth_session_id: SESSION.into(),
        target_relying_party_uuid: None,
    };
    let own = list(&store, &admin(A, false), &list_req, &FixedClock(NOW * 1000)).unwrap();
    assert_eq!(own.relying_parties.len(), 1);
    let all = list(&store, &admin(A, true), &list_req, &FixedClock(NOW * 1000)).unwrap();
    assert_eq!(all.relying_parties.len(), 2);
}

#[test]
fn create_checks_every_entry_and_spends_credits_all_or_nothing() {
    let store = store();
    store.add_rp_admin(A, PERSON, NOW).unwrap();
    store.add_rp_credits(A, 2, NOW).unwrap();
    let clock = FixedClock(NOW * 1000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let csr = csr_b64();
    let who = admin(A, false);
    let bad_label = create(
        &store,
        &who,
        &create_req(A, &["ok", "a$b"], &csr),
        &clock,
        &mut rng,
    );
    match bad_label {
        Err(RpCertsRefused::BadRequest(m)) => {
            assert!(m.contains("certificates[2]") && m.contains('$'), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let long = "x".repeat(75);
    match create(
        &store,
        &who,
        &create_req(A, &[&long], &csr),
        &clock,
        &mut rng,
    ) {
        Err(RpCertsRefused::BadRequest(m)) => assert!(m.contains("75 characters"), "{m}"),
        other => panic!("{other:?}"),
    }
    match create(
        &store,
        &who,
        &create_req(A, &["x"], &STANDARD.encode(b"not a request")),
        &clock,
        &mut rng,
    ) {
        Err(RpCertsRefused::BadRequest(m)) => assert!(m.contains("PKCS#10"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        create(
            &store,
            &who,
            &create_req(A, &["1", "2", "3"], &csr),
            &clock,
            &mut rng
        ),
        Err(RpCertsRefused::NoCredit(_))
    ));
    assert_eq!(store.rp_credits(A).unwrap(), 2);
    let made = create(
        &store,
        &who,
        &create_req(A, &["1", "2"], &csr),
        &clock,
        &mut rng,
    )
    .unwrap();
    assert_eq!(made.credits, 0);
    assert_eq!(made.certificates.len(), 2);
    assert!(
        made.certificates
            .iter()
            .all(|c| c.state == RpCertState::Queued)
    );

    // Cancel one: a voucher; redeem it once: the credit is back.
    let id = &made.certificates[0].id;
    let c = cancel(&store, &who, &cert_req(A, id), &clock, &mut rng).unwrap();
    assert!(c.voucher.code.starts_with("TV-") && c.voucher.code.len() == 17);
    assert!(matches!(
        cancel(&store, &who, &cert_req(A, id), &clock, &mut rng),
        Err(RpCertsRefused::WrongState(_))
    ));
    let redeem_req = |code: &str| RedeemRequest {
        relying_party_uuid: A.into(),
        relying_party_name: "Bank".into(),
        auth_session_id: SESSION.into(),
        target_relying_party_uuid: A.into(),
        voucher_code: code.into(),
    };
    assert!(matches!(
        redeem(&store, &who, &redeem_req("TV-0000-0000-0000"), &clock),
        Err(RpCertsRefused::NoSuchVoucher)
    ));
    let lower = c.voucher.code.to_lowercase().replace('-', " ");
    assert_eq!(
        redeem(&store, &who, &redeem_req(&lower), &clock)
            .unwrap()
            .credits,
        1
    );
    assert!(matches!(
        redeem(&store, &who, &redeem_req(&c.voucher.code), &clock),
        Err(RpCertsRefused::VoucherRedeemed)
    ));
    // Not issued yet: no download, no revocation; an unknown id is 404.
    assert!(matches!(
        certificate(
            &store,
            &who,
            &cert_req(A, &made.certificates[1].id),
            &[],
            &clock
        ),
        Err(RpCertsRefused::WrongState(_))
    ));
    assert!(matches!(
        revoke(&store, &who, &cert_req(A, &made.certificates[1].id), &clock),
        Err(RpCertsRefused::WrongState(_))
    ));
    assert!(matches!(
        revoke(
            &store,
            &who,
            &cert_req(A, "22222222-2222-4222-8222-222222222222"),
            &clock
        ),
        Err(RpCertsRefused::NoSuchCertificate)
    ));
    // The cancelled one is not listed; its voucher (redeemed) neither.
    let list_req = ListRequest {
        relying_party_uuid: A.into(),
        relying_party_name: "Bank".into(),
        auth_session_id: SESSION.into(),
        target_relying_party_uuid: Some(A.into()),
    };
    let o = list(&store, &who, &list_req, &clock).unwrap();
    assert_eq!(o.relying_parties[0].certificates.len(), 1);
    assert!(o.relying_parties[0].vouchers.is_empty());
    assert_eq!(o.relying_parties[0].credits, 1);
}

#[test]
fn voucher_codes_come_from_the_rng() {
    let mut a = rand::rngs::StdRng::seed_from_u64(3);
    let mut b = rand::rngs::StdRng::seed_from_u64(3);
    let code = new_voucher_code(&mut a);
    assert_eq!(code, new_voucher_code(&mut b));
    assert_ne!(code, new_voucher_code(&mut a));
    assert!(
        code[3..]
            .chars()
            .all(|c| c == '-' || (c.is_ascii_alphanumeric() && !"ILOU".contains(c)))
    );
}
