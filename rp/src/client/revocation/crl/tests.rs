//! [`check_crl`] against CRLs made here (x509-cert structures signed with OpenSSL keys) for
//! the certificates of the test PKI (`tandem_rp_test_pki::pki()`): each refusal is shown
//! against a CRL that differs from an accepted one in that one respect.

use der::asn1::{Any, BitString, OctetString};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use spki::AlgorithmIdentifierOwned;
use tandem_rp_test_pki::pki;
use x509_cert::certificate::Version;
use x509_cert::crl::{RevokedCert, TbsCertList};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use super::*;

const HOUR: Duration = Duration::from_secs(3600);
const SLACK: Duration = Duration::from_secs(300);
/// sha256WithRSAEncryption.
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

fn subject(c: &X509) -> Name {
    Certificate::from_der(&c.to_der().unwrap())
        .unwrap()
        .tbs_certificate()
        .subject()
        .clone()
}

fn serial(c: &X509) -> Vec<u8> {
    Certificate::from_der(&c.to_der().unwrap())
        .unwrap()
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .to_vec()
}

fn time(t: SystemTime) -> Time {
    Time::try_from(t).unwrap()
}

fn ext(oid: ObjectIdentifier, critical: bool, value: &impl Encode) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
    }
}

/// One entry: serial, revocation date, entry extensions.
type Entry = (Vec<u8>, SystemTime, Vec<Extension>);

/// A CRL to make: by default the issuing CA's, current, empty, signed with its key.
struct MakeCrl {
    issuer: Name,
    key: PKey<Private>,
    this_update: SystemTime,
    next_update: Option<SystemTime>,
    entries: Vec<Entry>,
    extensions: Vec<Extension>,
    /// Algorithm inside tbsCertList (normally the outer one).
    inner_algorithm: Option<ObjectIdentifier>,
}

impl MakeCrl {
    fn new() -> Self {
        let p = pki();
        let now = SystemTime::now();
        Self {
            issuer: subject(&p.issuing),
            key: p.issuing_key.clone(),
            this_update: now - HOUR,
            next_update: Some(now + HOUR),
            entries: Vec::new(),
            extensions: vec![ext(
                oids::CE_CRL_NUMBER,
                false,
                &der::asn1::Uint::new(&[0x2a]).unwrap(),
            )],
            inner_algorithm: None,
        }
    }

    /// Lists `serial`, with a reasonCode if given.
    fn listing(mut self, serial: Vec<u8>, reason: Option<CrlReason>) -> Self {
        let exts = reason
            .map(|r| vec![ext(oids::CE_CRL_REASONS, false, &r)])
            .unwrap_or_default();
        self.entries
            .push((serial, SystemTime::now() - Duration::from_secs(600), exts));
        self
    }

    fn der(&self) -> Vec<u8> {
        let alg = |oid| AlgorithmIdentifierOwned {
            oid,
            parameters: Some(Any::null()),
        };
        let entries: Vec<RevokedCert> = self
            .entries
            .iter()
            .map(|(s, at, exts)| RevokedCert {
                serial_number: SerialNumber::new(s).unwrap(),
                revocation_date: time(*at),
                crl_entry_extensions: (!exts.is_empty()).then(|| exts.clone()),
            })
            .collect();
        let tbs = TbsCertList {
            version: Version::V2,
            signature: alg(self.inner_algorithm.unwrap_or(SHA256_WITH_RSA)),
            issuer: self.issuer.clone(),
            this_update: time(self.this_update),
            next_update: self.next_update.map(time),
            revoked_certificates: (!entries.is_empty()).then_some(entries),
            crl_extensions: (!self.extensions.is_empty()).then(|| self.extensions.clone()),
        };
        let tbs_der = tbs.to_der().unwrap();
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        let sig = signer.sign_oneshot_to_vec(&tbs_der).unwrap();
        CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: alg(SHA256_WITH_RSA),
            signature: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }
}

fn check(crl: &[u8]) -> Result<CrlStatus, String> {
    let p = pki();
    check_crl(
        &p.auth.to_der().unwrap(),
        &p.issuing,
        crl,
        SystemTime::now(),
        SLACK,
    )
}

fn refused(crl: &[u8], needle: &str) {
    let e = check(crl).expect_err("the CRL must be refused");
    assert!(e.contains(needle), "{needle:?} not in {e:?}");
}

#[test]
fn not_listed_is_good() {
    let p = pki();
    // Other serials listed, ours not.
    let crl = MakeCrl::new()
        .listing(vec![0x01, 0x02, 0x03], Some(CrlReason::KeyCompromise))
        .listing(serial(&p.issuing), None)
        .der();
    let st = check(&crl).unwrap();
    assert_eq!(st.entry, None);
    assert_eq!(st.crl_number.as_deref(), Some("2a"));
    assert!(st.this_update < SystemTime::now() && st.next_update > SystemTime::now());
    // An empty CRL (no revokedCertificates at all).
    assert_eq!(check(&MakeCrl::new().der()).unwrap().entry, None);
}

#[test]
fn listed_is_revoked_with_date_and_reason() {
    let p = pki();
    let before = SystemTime::now() - Duration::from_secs(601);
    let crl = MakeCrl::new()
        .listing(vec![0x07], None)
        .listing(serial(&p.auth), Some(CrlReason::KeyCompromise))
        .der();
    let entry = check(&crl).unwrap().entry.expect("listed");
    assert_eq!(entry.reason, Some(CrlReason::KeyCompromise));
    assert!(
        entry.revoked_at >= before && entry.revoked_at < SystemTime::now(),
        "{entry:?}"
    );
    // Listed without a reasonCode (RFC 5280: `unspecified` is left out).
    let crl = MakeCrl::new().listing(serial(&p.auth), None).der();
    let entry = check(&crl).unwrap().entry.expect("listed");
    assert_eq!(entry.reason, None);
}

#[test]
fn expired_or_future_or_open_ended_crl_is_refused() {
    let now = SystemTime::now();
    let mut m = MakeCrl::new();
    m.this_update = now - 3 * HOUR;
    m.next_update = Some(now - HOUR);
    refused(&m.der(), "expired");
    // Within the clock slack it is still accepted ...
    m.next_update = Some(now - SLACK / 2);
    assert!(check(&m.der()).is_ok());
    // ... beyond it not.
    m.next_update = Some(now - SLACK * 2);
    refused(&m.der(), "expired");

    let mut m = MakeCrl::new();
    m.this_update = now + HOUR;
    m.next_update = Some(now + 2 * HOUR);
    refused(&m.der(), "in the future");

    let mut m = MakeCrl::new();
    m.next_update = None;
    refused(&m.der(), "no nextUpdate");
}

#[test]
fn wrong_signer_is_refused() {
    let p = pki();
    // The issuing CA's name, another CA's key: listing or not, it says nothing.
    let mut m = MakeCrl::new();
    m.key = p.other_root_key.clone();
    refused(&m.der(), "signature does not verify");
    let m = m.listing(serial(&p.auth), Some(CrlReason::KeyCompromise));
    refused(&m.der(), "signature does not verify");
    // A changed byte in a signed CRL.
    let mut der = MakeCrl::new().listing(vec![0x09, 0x09], None).der();
    let at = der
        .windows(4)
        .position(|w| w == [0x02, 0x02, 0x09, 0x09])
        .unwrap();
    der[at + 2] = 0x08;
    refused(&der, "signature does not verify");
}

#[test]
fn wrong_issuer_name_is_refused() {
    let p = pki();
    // Signed with the right key, but issued in another CA's name.
    let mut m = MakeCrl::new();
    m.issuer = subject(&p.other_root);
    refused(&m.der(), "is not the certificate's issuer");
    // And the right CRL checked against an issuer that did not issue the certificate.
    let e = check_crl(
        &p.auth.to_der().unwrap(),
        &p.other_root,
        &MakeCrl::new().der(),
        SystemTime::now(),
        SLACK,
    )
    .unwrap_err();
    assert!(e.contains("did not issue"), "{e}");
}

#[test]
fn incomplete_or_unknown_crls_are_refused() {
    // A delta CRL.
    let mut m = MakeCrl::new();
    m.extensions.push(ext(
        CE_DELTA_CRL_INDICATOR,
        true,
        &der::asn1::Uint::new(&[1]).unwrap(),
    ));
    refused(&m.der(), "delta CRL");
    // A CRL of CA certificates only.
    let mut m = MakeCrl::new();
    let idp = IssuingDistributionPoint {
        distribution_point: None,
        only_contains_user_certs: false,
        only_contains_ca_certs: true,
        only_some_reasons: None,
        indirect_crl: false,
        only_contains_attribute_certs: false,
    };
    m.extensions
        .push(ext(CE_ISSUING_DISTRIBUTION_POINT, true, &idp));
    refused(&m.der(), "does not cover");
    // End-entity certificates only is fine.
    let mut m = MakeCrl::new();
    let idp = IssuingDistributionPoint {
        only_contains_user_certs: true,
        only_contains_ca_certs: false,
        ..idp
    };
    m.extensions
        .push(ext(CE_ISSUING_DISTRIBUTION_POINT, true, &idp));
    assert!(check(&m.der()).is_ok());
    // An unknown critical CRL extension, and an unknown critical entry extension.
    let unknown = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.99");
    let mut m = MakeCrl::new();
    m.extensions.push(ext(unknown, true, &der::asn1::Null));
    refused(&m.der(), "unknown critical extension 1.3.6.1.4.1.32473.99");
    let mut m = MakeCrl::new();
    m.extensions.push(ext(unknown, false, &der::asn1::Null));
    assert!(check(&m.der()).is_ok(), "non-critical: ignored");
    let mut m = MakeCrl::new().listing(vec![0x05], None);
    m.entries[0].2.push(ext(unknown, true, &der::asn1::Null));
    refused(&m.der(), "entry has an unknown critical extension");
}

#[test]
fn malformed_crls_are_refused() {
    refused(b"not a CRL at all", "not a DER CRL");
    let good = MakeCrl::new().der();
    refused(&good[..good.len() - 1], "not a DER CRL");
    let mut trailing = good.clone();
    trailing.push(0);
    refused(&trailing, "not a DER CRL");
    // Inner and outer algorithm differ (sha384WithRSAEncryption inside).
    let mut m = MakeCrl::new();
    m.inner_algorithm = Some(oids::SHA384_WITH_RSA);
    refused(&m.der(), "differs inside and outside");
}

#[test]
fn a_ca_certificate_needs_a_crl_covering_ca_certificates() {
    // The root's CRL, for the issuing CA certificate (cA=TRUE) of the chain.
    let p = pki();
    let root_crl = || {
        let mut m = MakeCrl::new();
        m.issuer = subject(&p.root);
        m.key = p.root_key.clone();
        m
    };
    let check_ca = |crl: &[u8]| {
        check_crl(
            &p.issuing.to_der().unwrap(),
            &p.root,
            crl,
            SystemTime::now(),
            SLACK,
        )
    };
    let st = check_ca(&root_crl().der()).unwrap();
    assert_eq!(st.entry, None);
    let listed = root_crl()
        .listing(serial(&p.issuing), Some(CrlReason::CaCompromise))
        .der();
    assert_eq!(
        check_ca(&listed).unwrap().entry.unwrap().reason,
        Some(CrlReason::CaCompromise)
    );
    // The issuing CA's own CRL does not speak for its certificate.
    let e = check_ca(&MakeCrl::new().der()).unwrap_err();
    assert!(e.contains("is not the certificate's issuer"), "{e}");

    let idp = |user: bool, ca: bool| {
        let mut m = root_crl();
        m.extensions.push(ext(
            CE_ISSUING_DISTRIBUTION_POINT,
            true,
            &IssuingDistributionPoint {
                distribution_point: None,
                only_contains_user_certs: user,
                only_contains_ca_certs: ca,
                only_some_reasons: None,
                indirect_crl: false,
                only_contains_attribute_certs: false,
            },
        ));
        m.der()
    };
    // An ARL (CA certificates only) covers it; a CRL of end-entity certificates only does not.
    assert!(check_ca(&idp(false, true)).is_ok());
    let e = check_ca(&idp(true, false)).unwrap_err();
    assert!(
        e.contains("does not cover every CA certificate of its issuer"),
        "{e}"
    );
}
