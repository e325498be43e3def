//! Every branch of the mutual-TLS decision, with certificates issued by the real profile
//! (`pki::rp_client_certificate`) under a software CA and recorded through the store's
//! queue as the worker records them.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use super::*;
use crate::pki::soft_signer::{Soft, rsa_key as key};
use crate::pki::{self, CaProfile};
use crate::store::prelude::*;
use crate::store::{IssuedRpCertRecord, NewRpCertRecord, NewVoucher, RelyingParty, SqliteStore};

const NOW: i64 = 1_800_000_000;
/// The issuing CA certificate's serial the server passes in.
const ISSUING: &[u8] = &[0x5a, 0x01];
const A: &str = "00000000-0000-4000-8000-0000000000aa";
const B: &str = "00000000-0000-4000-8000-0000000000bb";

/// A software CA: its key and self-signed certificate.
pub(crate) fn soft_ca() -> (Soft, Certificate) {
    let k = key();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "Test CA").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&k).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(10).unwrap())
        .unwrap();
    b.append_extension(
        openssl::x509::extension::BasicConstraints::new()
            .critical()
            .ca()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.append_extension(
        openssl::x509::extension::KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.sign(&k, MessageDigest::sha256()).unwrap();
    let cert = Certificate::from_der(&b.build().to_der().unwrap()).unwrap();
    (Soft(k), cert)
}

pub(crate) fn profile() -> CaProfile {
    CaProfile {
        policy_arc: pki::DEFAULT_POLICY_ARC.parse().unwrap(),
        ocsp_url: "http://ca.example/ocsp".into(),
        ca_issuers_url: "http://ca.example/ca/issuing.crt".into(),
        crl_url: "http://ca.example/crl/issuing.crl".into(),
        root_crl_url: "http://ca.example/crl/root.crl".into(),
    }
}

/// An RP client certificate for `rp_uuid` (DER) with this serial.
pub(crate) fn rp_cert(ca: &(Soft, Certificate), rp_uuid: &str, serial: &[u8]) -> Vec<u8> {
    let spki = key().public_key_to_der().unwrap();
    let now = SystemTime::now();
    let rp = pki::RpClient {
        rp_uuid,
        rp_name: "Bank",
        public_key: SubjectPublicKeyInfoOwned::from_der(&spki).unwrap(),
        serial,
        not_before: now,
        not_after: now + Duration::from_secs(86_400),
    };
    pki::rp_client_certificate(&ca.0, &ca.1, &rp, &profile())
        .unwrap()
        .to_der()
        .unwrap()
}

fn store() -> SqliteStore {
    let store = SqliteStore::open_in_memory().unwrap();
    for uuid in [A, B] {
        let rp = RelyingParty {
            uuid: uuid.into(),
            names: vec![format!("RP {}", &uuid[34..])],
            allowed_ips: vec![],
            device_ip_sharing: false,
            portal: false,
            mtls_required: false,
        };
        store.add_relying_party(&rp, NOW).unwrap();
    }
    store
}

/// Queues, claims and completes one creation of `rp_uuid` with `der`; its id.
fn record(store: &SqliteStore, rp_uuid: &str, serial: &[u8], der: &[u8]) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    store.add_rp_credits(rp_uuid, 1, NOW).unwrap();
    let new = NewRpCertRecord {
        id: id.clone(),
        label: "mtls".into(),
        public_key: vec![1],
    };
    store
        .queue_rp_certs(rp_uuid, "PNOEE-1", &[new], NOW)
        .unwrap();
    store.claim_rp_certs(10, NOW).unwrap();
    let done = IssuedRpCertRecord {
        id: id.clone(),
        serial: serial.to_vec(),
        der: der.to_vec(),
        not_after: NOW + 86_400,
    };
    store.complete_rp_certs(&[done], NOW).unwrap();
    id
}

#[test]
fn without_a_certificate_only_mtls_required_refuses() {
    let store = store();
    assert_eq!(check(&store, ISSUING, A, None, NOW), Ok(()));
    store.set_relying_party_mtls(A, true, NOW).unwrap();
    assert_eq!(
        check(&store, ISSUING, A, None, NOW),
        Err(MtlsRefusal::Required)
    );
    assert_eq!(check(&store, ISSUING, B, None, NOW), Ok(()));
    // An unknown relying party is the transport's 401, not this check's business.
    assert_eq!(check(&store, ISSUING, "unknown", None, NOW), Ok(()));
}

#[test]
fn a_certificate_must_be_ours_of_this_rp_and_not_revoked() {
    let store = store();
    store.set_relying_party_mtls(A, true, NOW).unwrap();
    let ca = soft_ca();
    let serial = [0x42, 1, 2, 3];
    let der = rp_cert(&ca, A, &serial);
    let peer = PeerCertificate { der: der.clone() };
    // Not in the store (yet): e.g. a person's AUTH certificate, or another CA's.
    assert_eq!(
        check(&store, ISSUING, A, Some(&peer), NOW),
        Err(MtlsRefusal::NotAnRpCertificate)
    );
    let id = record(&store, A, &serial, &der);
    assert_eq!(check(&store, ISSUING, A, Some(&peer), NOW), Ok(()));
    // Another relying party presenting it.
    assert_eq!(
        check(&store, ISSUING, B, Some(&peer), NOW),
        Err(MtlsRefusal::WrongRelyingParty)
    );
    // Garbage and a different certificate with a known serial.
    let junk = PeerCertificate {
        der: vec![0x30, 3, 1, 1, 0],
    };
    assert_eq!(
        check(&store, ISSUING, A, Some(&junk), NOW),
        Err(MtlsRefusal::NotAnRpCertificate)
    );
    let twin = PeerCertificate {
        der: rp_cert(&ca, A, &serial),
    };
    assert_eq!(
        check(&store, ISSUING, A, Some(&twin), NOW),
        Err(MtlsRefusal::NotAnRpCertificate)
    );
    // Past the recorded notAfter (a day after NOW).
    assert_eq!(
        check(&store, ISSUING, A, Some(&peer), NOW + 86_401),
        Err(MtlsRefusal::Expired)
    );
    assert_eq!(check(&store, ISSUING, A, Some(&peer), NOW + 86_400), Ok(()));
    // The issuing CA certificate revoked (`revoke-ca`): refused, whatever the certificate.
    let other = self::store();
    let other_id = record(&other, A, &serial, &der);
    assert!(!other_id.is_empty());
    other
        .revoke_ca_certificate(ISSUING, "CN=Tandem Issuing CA", 2, NOW)
        .unwrap();
    assert_eq!(
        check(&other, ISSUING, A, Some(&peer), NOW),
        Err(MtlsRefusal::IssuerRevoked)
    );
    // Revoked: refused at once.
    store
        .revoke_rp_cert(Some(A), &id, 0, "test", NOW + 1)
        .unwrap();
    assert_eq!(
        check(&store, ISSUING, A, Some(&peer), NOW + 1),
        Err(MtlsRefusal::Revoked)
    );
}

#[test]
fn a_certificate_whose_san_names_another_rp_is_refused() {
    let store = store();
    let ca = soft_ca();
    // Recorded for A, but its SAN says B (cannot happen with our worker; the check does not
    // trust either side alone).
    let serial = [0x43, 9];
    let der = rp_cert(&ca, B, &serial);
    record(&store, A, &serial, &der);
    let peer = PeerCertificate { der };
    assert_eq!(
        check(&store, ISSUING, A, Some(&peer), NOW),
        Err(MtlsRefusal::WrongRelyingParty)
    );
    assert_eq!(
        check(&store, ISSUING, B, Some(&peer), NOW),
        Err(MtlsRefusal::WrongRelyingParty)
    );
}

#[test]
fn a_certificate_signed_for_a_cancelled_creation_is_revoked() {
    let store = store();
    let ca = soft_ca();
    store.add_rp_credits(A, 1, NOW).unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let new = NewRpCertRecord {
        id: id.clone(),
        label: "late".into(),
        public_key: vec![1],
    };
    store.queue_rp_certs(A, "PNOEE-1", &[new], NOW).unwrap();
    store.claim_rp_certs(1, NOW).unwrap();
    let voucher = NewVoucher {
        code_hash: vec![7; 32],
        code: "TV-AAAA-AAAA-AAAA".into(),
    };
    store
        .cancel_rp_cert(A, &id, &voucher, "PNOEE-1", NOW)
        .unwrap();
    let serial = [0x44, 4];
    let der = rp_cert(&ca, A, &serial);
    let done = IssuedRpCertRecord {
        id,
        serial: serial.to_vec(),
        der: der.clone(),
        not_after: NOW + 86_400,
    };
    store.complete_rp_certs(&[done], NOW).unwrap();
    assert_eq!(
        check(&store, ISSUING, A, Some(&PeerCertificate { der }), NOW),
        Err(MtlsRefusal::Revoked)
    );
}

#[test]
fn the_profile_is_what_openssl_calls_an_ssl_client_certificate() {
    let ca = soft_ca();
    let der = rp_cert(&ca, A, &[0x45, 1]);
    let cert = openssl::x509::X509::from_der(&der).unwrap();
    let text = String::from_utf8(cert.to_text().unwrap()).unwrap();
    assert!(text.contains(&format!("URI:urn:uuid:{A}")), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(
        text.contains(&format!("{}.1.4", pki::DEFAULT_POLICY_ARC)),
        "{text}"
    );
    assert!(
        text.contains("O = Bank") || text.contains("O=Bank"),
        "{text}"
    );
    // Verified against the CA as an SSL client.
    let mut store = openssl::x509::store::X509StoreBuilder::new().unwrap();
    store
        .add_cert(openssl::x509::X509::from_der(&ca.1.to_der().unwrap()).unwrap())
        .unwrap();
    store
        .set_purpose(openssl::x509::X509PurposeId::SSL_CLIENT)
        .unwrap();
    let store = store.build();
    let chain = openssl::stack::Stack::new().unwrap();
    let mut ctx = openssl::x509::X509StoreContext::new().unwrap();
    let ok = ctx
        .init(&store, &cert, &chain, |c| c.verify_cert())
        .unwrap();
    assert!(ok, "{:?}", ctx.error());
}
