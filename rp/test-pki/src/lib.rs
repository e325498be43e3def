//! The relying-party library's test PKI, made with OpenSSL: a root CA, an issuing CA and
//! end-entity certificates shaped like Tandem's (2048-bit keys: tests only), plus a root
//! nobody trusts. A crate of its own so that tandem-rp's unit tests and the end-to-end tests
//! (which check the library against the server's OCSP and CRL encoders) share one fixture
//! without tandem-rp depending on the server.
//!
//! The OIDs are written out here, not taken from `tandem_rp::oids`: a wrong constant there
//! then fails a test instead of agreeing with itself.

// Test support: a fixture that cannot be built is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::{Encode, Sequence};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints as OsslBasicConstraints, ExtendedKeyUsage as OsslEku, KeyUsage as OsslKeyUsage,
};
use openssl::x509::{X509, X509Builder, X509Extension, X509Name, X509NameBuilder};
use x509_cert::ext::pkix::CertificatePolicies;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;

/// The test person's ETSI semantics identifier (the certificates' subject serialNumber).
pub const PERSON: &str = "PNOEE-30303039914";

/// ETSI EN 319 411-1 NCP+.
const ETSI_NCP_PLUS: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.2042.1.2");
/// ETSI EN 319 411-2 QCP-n-qscd.
const ETSI_QCP_N_QSCD: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.194112.1.2");
/// id-qcs-pkixQCSyntax-v2 (RFC 3739).
const QCS_PKIX_QC_SYNTAX_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.11.2");
/// id-etsi-qcs-QcCompliance (EN 319 412-5).
const ETSI_QCS_QC_COMPLIANCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.1");
/// id-etsi-qcs-QcSSCD (EN 319 412-5).
const ETSI_QCS_QC_SSCD: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.4");

/// QCStatement (RFC 3739).
#[derive(Sequence)]
struct QcStatement {
    statement_id: ObjectIdentifier,
    #[asn1(optional = "true")]
    statement_info: Option<Any>,
}

/// A fresh 2048-bit RSA key.
pub fn new_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

/// An X.509 name of `(NID, value)` entries, in order.
pub fn name(entries: &[(Nid, &str)]) -> X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    for (nid, v) in entries {
        b.append_entry_by_nid(*nid, v).unwrap();
    }
    b.build()
}

/// A non-critical extension: `oid` (dotted) with the DER value `der`.
pub fn der_extension(oid: &str, der: &[u8]) -> X509Extension {
    X509Extension::new_from_der(
        &Asn1Object::from_str(oid).unwrap(),
        false,
        &Asn1OctetString::new_from_bytes(der).unwrap(),
    )
    .unwrap()
}

fn policies(oids: &[ObjectIdentifier]) -> X509Extension {
    let p = CertificatePolicies(
        oids.iter()
            .map(|o| PolicyInformation {
                policy_identifier: *o,
                policy_qualifiers: None,
            })
            .collect(),
    );
    der_extension("2.5.29.32", &p.to_der().unwrap())
}

fn qc_statements(ids: &[ObjectIdentifier]) -> X509Extension {
    let list: Vec<QcStatement> = ids
        .iter()
        .map(|i| QcStatement {
            statement_id: *i,
            statement_info: None,
        })
        .collect();
    der_extension("1.3.6.1.5.5.7.1.3", &list.to_der().unwrap())
}

/// A v3 certificate of `subject` for `key` with `exts`, signed by `issuer` (self-signed
/// without one) with SHA-256, valid from a day ago for a year, with a random 64-bit serial.
pub fn build_cert(
    subject: &X509Name,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    exts: Vec<X509Extension>,
) -> X509 {
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial
        .rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&serial).unwrap())
        .unwrap();
    b.set_subject_name(subject).unwrap();
    b.set_issuer_name(issuer.map(|(c, _)| c.subject_name()).unwrap_or(subject))
        .unwrap();
    b.set_pubkey(key).unwrap();
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    b.set_not_before(&Asn1Time::from_unix(now - 86_400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    for e in exts {
        b.append_extension(e).unwrap();
    }
    b.sign(
        issuer.map(|(_, k)| k).unwrap_or(key),
        MessageDigest::sha256(),
    )
    .unwrap();
    b.build()
}

/// A CA's extensions: basicConstraints cA and keyUsage keyCertSign + cRLSign, both critical.
pub fn ca_exts() -> Vec<X509Extension> {
    vec![
        OsslBasicConstraints::new().critical().ca().build().unwrap(),
        OsslKeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    ]
}

/// The test person's subject (serialNumber [`PERSON`]).
pub fn person() -> X509Name {
    name(&[
        (Nid::COUNTRYNAME, "EE"),
        (Nid::SURNAME, "TESTNUMBER"),
        (Nid::GIVENNAME, "QUALIFIED OK1"),
        (Nid::COMMONNAME, "TESTNUMBER,QUALIFIED OK1"),
        (Nid::SERIALNUMBER, PERSON),
    ])
}

/// The test PKI: keys and certificates.
#[derive(Debug)]
pub struct Pki {
    pub root: X509,
    pub root_key: PKey<Private>,
    pub issuing: X509,
    pub issuing_key: PKey<Private>,
    pub leaf_key: PKey<Private>,
    /// digitalSignature + Smart-ID authentication EKU + clientAuth, NCP+ (Tandem's profile).
    pub auth: X509,
    /// digitalSignature, keyEncipherment, dataEncipherment + clientAuth (the older profile).
    pub auth_legacy: X509,
    /// digitalSignature + clientAuth only: neither profile.
    pub auth_client_only: X509,
    /// nonRepudiation, QcCompliance + QcSSCD.
    pub sign: X509,
    /// nonRepudiation, no QC statements.
    pub sign_advanced: X509,
    /// A root nobody trusts, and a leaf under it with the same subject.
    pub other_root: X509,
    pub other_root_key: PKey<Private>,
    pub foreign_auth: X509,
}

/// Keys take a moment to generate: one PKI for all tests.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root_key = new_key();
        let root = build_cert(
            &name(&[(Nid::COUNTRYNAME, "EE"), (Nid::COMMONNAME, "Test Root")]),
            &root_key,
            None,
            ca_exts(),
        );
        let issuing_key = new_key();
        let issuing = build_cert(
            &name(&[
                (Nid::COUNTRYNAME, "EE"),
                (Nid::COMMONNAME, "Test Issuing CA"),
            ]),
            &issuing_key,
            Some((&root, &root_key)),
            ca_exts(),
        );
        let leaf_key = new_key();
        let auth_exts_with = |legacy_ku: bool, smart_id_eku: bool| {
            let mut ku = OsslKeyUsage::new();
            ku.critical().digital_signature();
            if legacy_ku {
                ku.key_encipherment().data_encipherment();
            }
            let mut eku = OsslEku::new();
            if smart_id_eku {
                eku.other("1.3.6.1.4.1.62306.5.7.0");
            }
            vec![
                OsslBasicConstraints::new().build().unwrap(),
                ku.build().unwrap(),
                eku.client_auth().build().unwrap(),
                policies(&["1.3.6.1.4.1.32473.1.1.1".parse().unwrap(), ETSI_NCP_PLUS]),
                qc_statements(&[QCS_PKIX_QC_SYNTAX_V2]),
            ]
        };
        let auth_exts = || auth_exts_with(false, true);
        let sign_exts = |qc: &[ObjectIdentifier]| {
            vec![
                OsslBasicConstraints::new().build().unwrap(),
                OsslKeyUsage::new()
                    .critical()
                    .non_repudiation()
                    .build()
                    .unwrap(),
                policies(&[ETSI_QCP_N_QSCD]),
                qc_statements(qc),
            ]
        };
        let issuer = Some((&issuing, &issuing_key));
        let auth = build_cert(&person(), &leaf_key, issuer, auth_exts());
        let auth_legacy = build_cert(&person(), &leaf_key, issuer, auth_exts_with(true, false));
        let auth_client_only =
            build_cert(&person(), &leaf_key, issuer, auth_exts_with(false, false));
        let sign = build_cert(
            &person(),
            &leaf_key,
            issuer,
            sign_exts(&[
                QCS_PKIX_QC_SYNTAX_V2,
                ETSI_QCS_QC_COMPLIANCE,
                ETSI_QCS_QC_SSCD,
            ]),
        );
        let sign_advanced = build_cert(
            &person(),
            &leaf_key,
            issuer,
            sign_exts(&[QCS_PKIX_QC_SYNTAX_V2]),
        );
        let other_key = new_key();
        let other_root = build_cert(
            &name(&[(Nid::COUNTRYNAME, "EE"), (Nid::COMMONNAME, "Test Root")]),
            &other_key,
            None,
            ca_exts(),
        );
        let foreign_auth = build_cert(
            &person(),
            &leaf_key,
            Some((&other_root, &other_key)),
            auth_exts(),
        );
        Pki {
            root,
            root_key,
            issuing,
            issuing_key,
            leaf_key,
            auth,
            auth_legacy,
            auth_client_only,
            sign,
            sign_advanced,
            other_root,
            other_root_key: other_key,
            foreign_auth,
        }
    })
}

/// A DER OCSPResponse for `cert`, signed by its issuer `issuer` with `issuer_key`, made by
/// the `openssl ocsp` command line tool acting as responder over an index file in `dir` (the
/// `openssl` crate cannot build OCSP responses): status good, or revoked at `revoked_at`
/// (`YYMMDDHHMMSSZ`). Valid for a day. Panics if the tool fails (a test fixture).
pub fn ocsp_response_cli(
    dir: &std::path::Path,
    cert: &X509,
    issuer: &X509,
    issuer_key: &PKey<Private>,
    revoked_at: Option<&str>,
) -> Vec<u8> {
    let write = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write an OCSP fixture file");
        p
    };
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .expect("serial number");
    let subject = "/CN=unused";
    let line = match revoked_at {
        None => format!("V\t991231235959Z\t\t{serial}\tunknown\t{subject}\n"),
        Some(at) => format!("R\t991231235959Z\t{at}\t{serial}\tunknown\t{subject}\n"),
    };
    let index = write("ocsp-index.txt", line.into_bytes());
    let c = write("ocsp-cert.pem", cert.to_pem().expect("PEM"));
    let i = write("ocsp-issuer.pem", issuer.to_pem().expect("PEM"));
    let k = write(
        "ocsp-issuer.key",
        issuer_key.private_key_to_pem_pkcs8().expect("PEM"),
    );
    let out = dir.join("ocsp-response.der");
    let status = std::process::Command::new("openssl")
        .arg("ocsp")
        .arg("-index")
        .arg(&index)
        .arg("-rsigner")
        .arg(&i)
        .arg("-rkey")
        .arg(&k)
        .arg("-CA")
        .arg(&i)
        .arg("-issuer")
        .arg(&i)
        .arg("-cert")
        .arg(&c)
        .arg("-respout")
        .arg(&out)
        .args(["-ndays", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl ocsp");
    assert!(status.success(), "openssl ocsp failed");
    std::fs::read(&out).expect("read the OCSP response")
}
