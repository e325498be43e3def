//! The PKI encoding layer checked by an independent implementation: the `openssl` command
//! verifies our certificate chains, reads our extensions, verifies our CRLs, and builds OCSP
//! requests that we parse and answers that it verifies.
//!
//! CA keys here are software keys made for the test only (RSA-2048 with the `rsa` crate,
//! ECDSA P-384 with OpenSSL); in the service they live in the HSM.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{SignatureEncoding, Signer};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use tandem_server::pki::*;

// --- software CA signers ------------------------------------------------------------------

/// RSA-2048 CA key (test only; production CA keys are RSA-4096 or P-384 in the HSM).
struct RsaSigner {
    key: rsa::pkcs1v15::SigningKey<sha2::Sha384>,
    spki: SubjectPublicKeyInfoOwned,
    fail: AtomicBool,
}

impl RsaSigner {
    fn new() -> Self {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let spki_der = private.to_public_key().to_public_key_der().unwrap();
        Self {
            key: rsa::pkcs1v15::SigningKey::new(private),
            spki: SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes()).unwrap(),
            fail: AtomicBool::new(false),
        }
    }
}

impl CaSigner for RsaSigner {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oids::SHA384_WITH_RSA,
            parameters: Some(der::asn1::Null.into()),
        }
    }
    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        self.spki.clone()
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(PkiError::Signing("CKR_DEVICE_ERROR (simulated)".into()));
        }
        Ok(self.key.sign(data).to_vec())
    }
}

/// ECDSA P-384 CA key through OpenSSL (test only).
struct EcSigner {
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    spki: SubjectPublicKeyInfoOwned,
}

impl EcSigner {
    fn new() -> Self {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap()).unwrap();
        Self { key, spki }
    }
}

impl CaSigner for EcSigner {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oids::ECDSA_WITH_SHA384,
            parameters: None,
        }
    }
    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        self.spki.clone()
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha384(), &self.key).unwrap();
        Ok(signer.sign_oneshot_to_vec(data).unwrap())
    }
}

// --- fixture ----------------------------------------------------------------------------

const DAY: Duration = Duration::from_secs(86_400);

/// A composite modulus n = n1·n2 of two independent RSA-2048 moduli (4096 bits).
fn composite_modulus() -> Vec<u8> {
    let n1 = openssl::rsa::Rsa::generate(2048)
        .unwrap()
        .n()
        .to_owned()
        .unwrap();
    let n2 = openssl::rsa::Rsa::generate(2048)
        .unwrap()
        .n()
        .to_owned()
        .unwrap();
    let mut n = openssl::bn::BigNum::new().unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    n.checked_mul(&n1, &n2, &mut ctx).unwrap();
    n.to_vec()
}

fn profile() -> CaProfile {
    CaProfile {
        policy_arc: DEFAULT_POLICY_ARC.parse().unwrap(),
        ocsp_url: "http://ca.example.com/ocsp".into(),
        ca_issuers_url: "http://ca.example.com/ca/issuing.crt".into(),
        crl_url: "http://ca.example.com/crl/issuing.crl".into(),
        root_crl_url: "http://ca.example.com/crl/root.crl".into(),
    }
}

fn serial(first: u8) -> Vec<u8> {
    let mut s = vec![0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut s);
    s[0] = first;
    s
}

fn person(purpose: KeyPurpose, level: CertificateLevel, modulus: &[u8]) -> EndEntity {
    let now = SystemTime::now();
    EndEntity {
        purpose,
        level,
        composite_modulus: modulus.to_vec(),
        given_name: "MARY ÄNN".into(),
        surname: "O’CONNEŽ-ŠUSLIK TESTNUMBER".into(),
        country: "EE".into(),
        national_id: "30303039914".into(),
        serial: serial(0x42),
        not_before: now - Duration::from_secs(60),
        not_after: now + 365 * DAY,
    }
}

struct Pki<S: CaSigner> {
    dir: tempfile::TempDir,
    root: S,
    issuing: S,
    root_cert: Certificate,
    issuing_cert: Certificate,
}

impl<S: CaSigner> Pki<S> {
    fn new(root: S, issuing: S) -> Self {
        let now = SystemTime::now();
        let root_cert = root_ca_certificate(
            &root,
            "Tandem Test Root CA",
            &serial(0x11),
            now - DAY,
            now + 3650 * DAY,
        )
        .unwrap();
        let issuing_cert = issuing_ca_certificate(
            &root,
            &root_cert,
            issuing.public_key(),
            "Tandem Test Issuing CA",
            &serial(0x22),
            now - DAY,
            now + 1825 * DAY,
            &profile(),
        )
        .unwrap();
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
            root,
            issuing,
            root_cert,
            issuing_cert,
        };
        pki.write("root.pem", certificate_pem(&pki.root_cert).as_bytes());
        pki.write("issuing.pem", certificate_pem(&pki.issuing_cert).as_bytes());
        let chain = format!(
            "{}{}",
            certificate_pem(&pki.root_cert),
            certificate_pem(&pki.issuing_cert)
        );
        pki.write("chain.pem", chain.as_bytes());
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn issue(&self, ee: &EndEntity, file: &str) -> Certificate {
        let cert =
            end_entity_certificate(&self.issuing, &self.issuing_cert, ee, &profile()).unwrap();
        self.write(file, certificate_pem(&cert).as_bytes());
        cert
    }
}

/// Runs `openssl` in `dir`; returns (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn verify_chain<S: CaSigner>(pki: &Pki<S>, user: &str) {
    let (ok, text) = openssl(
        pki.dir.path(),
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuing.pem",
            user,
        ],
    );
    assert!(
        ok && text.contains(&format!("{user}: OK")),
        "openssl verify {user}: {text}"
    );
}

fn x509_text(dir: &Path, file: &str) -> String {
    let (ok, text) = openssl(dir, &["x509", "-in", file, "-noout", "-text"]);
    assert!(ok, "{text}");
    text
}

// --- certificates ---------------------------------------------------------------------------

/// Copies the certificates to `$TANDEM_PKI_DUMP` (when set) for external linters (pkilint).
fn dump<S: CaSigner>(pki: &Pki<S>, prefix: &str, files: &[&str]) {
    let Some(dir) = std::env::var_os("TANDEM_PKI_DUMP") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    for f in files {
        std::fs::copy(pki.path(f), Path::new(&dir).join(format!("{prefix}-{f}"))).unwrap();
    }
}

fn check_certificates<S: CaSigner>(pki: Pki<S>, prefix: &str) {
    let n = composite_modulus();
    pki.issue(
        &person(KeyPurpose::Authentication, CertificateLevel::Qualified, &n),
        "auth.pem",
    );
    pki.issue(
        &person(KeyPurpose::Signature, CertificateLevel::Qualified, &n),
        "sign.pem",
    );
    pki.issue(
        &person(KeyPurpose::Signature, CertificateLevel::Advanced, &n),
        "sign-adv.pem",
    );
    for user in ["auth.pem", "sign.pem", "sign-adv.pem"] {
        verify_chain(&pki, user);
    }
    let (ok, text) = openssl(
        pki.dir.path(),
        &["verify", "-CAfile", "root.pem", "issuing.pem"],
    );
    assert!(ok, "issuing CA: {text}");
    dump(
        &pki,
        prefix,
        &[
            "root.pem",
            "issuing.pem",
            "auth.pem",
            "sign.pem",
            "sign-adv.pem",
        ],
    );

    let arc = DEFAULT_POLICY_ARC;
    let auth = x509_text(pki.dir.path(), "auth.pem");
    for expected in [
        "Subject: C = EE, SN = O\\E2\\80\\99CONNE\\C5\\BD-\\C5\\A0USLIK TESTNUMBER",
        "serialNumber = PNOEE-30303039914",
        "Public-Key: (409", // 4095 or 4096 bits
        "X509v3 Key Usage: critical\n                Digital Signature\n",
        "TLS Web Client Authentication",
        &format!("Policy: {arc}.1.1"),
        "Policy: 0.4.0.2042.1.2",
        "OCSP - URI:http://ca.example.com/ocsp",
        "CA Issuers - URI:http://ca.example.com/ca/issuing.crt",
        "URI:http://ca.example.com/crl/issuing.crl",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
        "CA:FALSE",
        "qcStatements",
        "Signature Algorithm:",
    ] {
        assert!(
            auth.contains(expected),
            "AUTH certificate lacks {expected:?}:\n{auth}"
        );
    }
    assert!(!auth.contains("Non Repudiation"), "{auth}");

    let sign = x509_text(pki.dir.path(), "sign.pem");
    for expected in [
        "X509v3 Key Usage: critical\n                Non Repudiation\n",
        &format!("Policy: {arc}.1.2"),
        "Policy: 0.4.0.194112.1.2",
        "qcStatements",
    ] {
        assert!(
            sign.contains(expected),
            "SIGN certificate lacks {expected:?}:\n{sign}"
        );
    }
    assert!(!sign.contains("Extended Key Usage"), "{sign}");
    let adv = x509_text(pki.dir.path(), "sign-adv.pem");
    assert!(adv.contains(&format!("Policy: {arc}.1.3")), "{adv}");
    assert!(!adv.contains("0.4.0.194112.1.2"), "{adv}");

    // QC statements, read with asn1parse: qualified SIGN has all four, AUTH and ADVANCED only
    // the natural-person semantics identifier.
    let qc = |file: &str| {
        let pem = std::fs::read(pki.path(file)).unwrap();
        let cert = <Certificate as der::DecodePem>::from_pem(&pem).unwrap();
        let ext = cert
            .tbs_certificate()
            .extensions()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == oids::PE_QC_STATEMENTS)
            .unwrap()
            .extn_value
            .as_bytes()
            .to_vec();
        let p = pki.write(&format!("{file}.qc.der"), &ext);
        let (ok, text) = openssl(
            pki.dir.path(),
            &["asn1parse", "-inform", "DER", "-in", p.to_str().unwrap()],
        );
        assert!(ok, "{text}");
        text
    };
    let sign_qc = qc("sign.pem");
    for oid in [
        "1.3.6.1.5.5.7.11.2",
        "0.4.0.194121.1.1",
        "0.4.0.1862.1.1",
        "0.4.0.1862.1.4",
        "0.4.0.1862.1.6",
        "0.4.0.1862.1.6.1",
    ] {
        assert!(
            sign_qc.contains(oid),
            "qualified SIGN qcStatements lack {oid}:\n{sign_qc}"
        );
    }
    for file in ["auth.pem", "sign-adv.pem"] {
        let text = qc(file);
        assert!(
            text.contains("0.4.0.194121.1.1") && !text.contains("0.4.0.1862.1.1"),
            "{file}:\n{text}"
        );
    }

    let root = x509_text(pki.dir.path(), "root.pem");
    assert!(
        root.contains("CA:TRUE") && root.contains("Certificate Sign, CRL Sign"),
        "{root}"
    );
    let issuing = x509_text(pki.dir.path(), "issuing.pem");
    assert!(
        issuing.contains("CA:TRUE, pathlen:0") && issuing.contains("Policy: X509v3 Any Policy"),
        "{issuing}"
    );
    // Where a relying party finds whether the issuing CA certificate is revoked: the root's
    // CRL.
    assert!(
        issuing.contains("X509v3 CRL Distribution Points")
            && issuing.contains("URI:http://ca.example.com/crl/root.crl"),
        "{issuing}"
    );
}

#[test]
fn rsa_ca_certificates_verify_and_show_the_profile() {
    check_certificates(Pki::new(RsaSigner::new(), RsaSigner::new()), "rsa");
}

#[test]
fn ecdsa_p384_ca_certificates_verify_and_show_the_profile() {
    check_certificates(Pki::new(EcSigner::new(), EcSigner::new()), "ec");
}

#[test]
fn der_and_pem_agree_and_the_composite_key_is_in_the_certificate() {
    let pki = Pki::new(EcSigner::new(), EcSigner::new());
    let n = composite_modulus();
    let cert = pki.issue(
        &person(KeyPurpose::Signature, CertificateLevel::Qualified, &n),
        "sign.pem",
    );
    let der = certificate_der(&cert);
    assert_eq!(
        <Certificate as der::DecodePem>::from_pem(certificate_pem(&cert).as_bytes()).unwrap(),
        cert
    );
    assert_eq!(Certificate::from_der(&der).unwrap().to_der().unwrap(), der);
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    assert_eq!(spki, rsa_spki_der(&n).unwrap());
}

/// openapi.yml `SignCertificateLevel`: `QSCD` is "a certificate of `QUALIFIED` level which is
/// also QSCD-capable"; the certificate says so with its QcSSCD statement. Only a qualified
/// SIGN certificate carries it.
#[test]
fn qscd_capability_is_read_from_the_certificate() {
    let pki = Pki::new(EcSigner::new(), EcSigner::new());
    let n = composite_modulus();
    let capable = |purpose, level, file| {
        let cert = pki.issue(&person(purpose, level, &n), file);
        qscd_capable(&certificate_der(&cert)).unwrap()
    };
    assert!(capable(
        KeyPurpose::Signature,
        CertificateLevel::Qualified,
        "sign-q.pem"
    ));
    assert!(!capable(
        KeyPurpose::Signature,
        CertificateLevel::Advanced,
        "sign-a.pem"
    ));
    assert!(!capable(
        KeyPurpose::Authentication,
        CertificateLevel::Qualified,
        "auth-q.pem"
    ));
    // No QC statements at all (a CA certificate), and bytes that are no certificate.
    assert!(!qscd_capable(&certificate_der(&pki.root_cert)).unwrap());
    let mut broken = certificate_der(&pki.issuing_cert);
    broken.truncate(broken.len() / 2);
    assert!(qscd_capable(&broken).is_err());
    assert!(qscd_capable(b"not a certificate").is_err());
}

#[test]
fn bad_end_entity_input_is_rejected_before_signing() {
    let pki = Pki::new(EcSigner::new(), EcSigner::new());
    let n = composite_modulus();
    let good = person(KeyPurpose::Authentication, CertificateLevel::Qualified, &n);
    let cases: Vec<(&str, EndEntity)> = vec![
        (
            "lower-case country",
            EndEntity {
                country: "ee".into(),
                ..good.clone()
            },
        ),
        (
            "empty given name",
            EndEntity {
                given_name: String::new(),
                ..good.clone()
            },
        ),
        (
            "national id with space",
            EndEntity {
                national_id: "3030 303".into(),
                ..good.clone()
            },
        ),
        (
            "leading zero serial",
            EndEntity {
                serial: vec![0, 1, 2],
                ..good.clone()
            },
        ),
        (
            "21-byte serial",
            EndEntity {
                serial: vec![1; 21],
                ..good.clone()
            },
        ),
        (
            "short modulus",
            EndEntity {
                composite_modulus: vec![0xc5; 128],
                ..good.clone()
            },
        ),
        (
            "validity reversed",
            EndEntity {
                not_after: good.not_before,
                ..good.clone()
            },
        ),
        (
            "CN longer than 64",
            EndEntity {
                surname: "X".repeat(60),
                ..good.clone()
            },
        ),
    ];
    for (what, ee) in cases {
        let r = end_entity_certificate(&pki.issuing, &pki.issuing_cert, &ee, &profile());
        assert!(matches!(r, Err(PkiError::Malformed(_))), "{what}: {r:?}");
    }
}

#[test]
fn signer_failure_and_wrong_signer_give_errors_not_certificates() {
    let pki = Pki::new(RsaSigner::new(), RsaSigner::new());
    let n = composite_modulus();
    let ee = person(KeyPurpose::Signature, CertificateLevel::Qualified, &n);
    pki.issuing.fail.store(true, Ordering::SeqCst);
    let r = end_entity_certificate(&pki.issuing, &pki.issuing_cert, &ee, &profile());
    assert!(matches!(r, Err(PkiError::Signing(_))), "{r:?}");
    let now = SystemTime::now();
    assert!(matches!(
        crl(&pki.issuing, &pki.issuing_cert, 1, now, now + DAY, &[]),
        Err(PkiError::Signing(_))
    ));
    pki.issuing.fail.store(false, Ordering::SeqCst);
    // A key that is not the issuing CA's cannot issue under its name.
    let other = RsaSigner::new();
    let r = end_entity_certificate(&other, &pki.issuing_cert, &ee, &profile());
    assert!(matches!(r, Err(PkiError::Malformed(_))), "{r:?}");
}

// --- CRL --------------------------------------------------------------------------------------

fn check_crl<S: CaSigner>(pki: Pki<S>, prefix: &str) {
    let now = SystemTime::now();
    let revoked = [
        RevokedCert {
            serial: vec![0x42, 0x01, 0x02],
            revoked_at: now - DAY,
            reason: RevocationReason::KeyCompromise,
        },
        RevokedCert {
            serial: vec![0x7f; 16],
            revoked_at: now,
            reason: RevocationReason::CessationOfOperation,
        },
        RevokedCert {
            serial: vec![0x99, 0x01],
            revoked_at: now,
            reason: RevocationReason::Unspecified,
        },
    ];
    let der = crl(&pki.issuing, &pki.issuing_cert, 7, now, now + DAY, &revoked).unwrap();
    pki.write("crl.der", &der);
    let (ok, text) = openssl(
        pki.dir.path(),
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "crl.der",
            "-CAfile",
            "chain.pem",
            "-noout",
            "-text",
        ],
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    for expected in [
        "Serial Number: 420102",
        "Key Compromise",
        "Serial Number: 7F7F7F7F7F7F7F7F7F7F7F7F7F7F7F7F",
        "Cessation Of Operation",
        "Serial Number: 9901",
        "Version 2 (0x1)",
        "X509v3 CRL Number: \n                7",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(text.contains(expected), "CRL lacks {expected:?}:\n{text}");
    }
    dump(&pki, prefix, &["crl.der"]);
    // RFC 5280: reason `unspecified` is not encoded.
    assert_eq!(text.matches("CRL Reason Code").count(), 2, "{text}");

    let empty = crl(&pki.issuing, &pki.issuing_cert, 8, now, now + DAY, &[]).unwrap();
    pki.write("empty.der", &empty);
    let (ok, text) = openssl(
        pki.dir.path(),
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "empty.der",
            "-CAfile",
            "chain.pem",
            "-noout",
            "-text",
        ],
    );
    assert!(
        ok && text.contains("verify OK") && text.contains("No Revoked Certificates"),
        "{text}"
    );
}

/// The root's CRL of the CA certificates it issued: signed by the root, verified by OpenSSL
/// against the root alone, listing the issuing CA certificate with cACompromise.
fn check_root_crl<S: CaSigner>(pki: Pki<S>) {
    let now = SystemTime::now();
    let issuing_serial = pki
        .issuing_cert
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .to_vec();
    let der = crl(
        &pki.root,
        &pki.root_cert,
        1,
        now,
        now + DAY,
        &[RevokedCert {
            serial: issuing_serial.clone(),
            revoked_at: now,
            reason: RevocationReason::CaCompromise,
        }],
    )
    .unwrap();
    pki.write("root.crl", &der);
    let (ok, text) = openssl(
        pki.dir.path(),
        &[
            "crl", "-inform", "DER", "-in", "root.crl", "-CAfile", "root.pem", "-noout", "-text",
        ],
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    let serial = hex::encode_upper(&issuing_serial);
    for expected in [
        "Issuer: C = EE, O = Tandem, CN = Tandem Test Root CA",
        &format!("Serial Number: {serial}"),
        "CA Compromise",
        "X509v3 CRL Number: \n                1",
    ] {
        assert!(
            text.contains(expected),
            "root CRL lacks {expected:?}:\n{text}"
        );
    }
    // The issuing CA cannot sign in the root's name.
    assert!(crl(&pki.issuing, &pki.root_cert, 2, now, now + DAY, &[]).is_err());
}

#[test]
fn root_crl_lists_the_issuing_ca_rsa() {
    check_root_crl(Pki::new(RsaSigner::new(), RsaSigner::new()));
}

#[test]
fn root_crl_lists_the_issuing_ca_ecdsa() {
    check_root_crl(Pki::new(EcSigner::new(), EcSigner::new()));
}

#[test]
fn crl_verifies_and_lists_serials_and_reasons_rsa() {
    check_crl(Pki::new(RsaSigner::new(), RsaSigner::new()), "rsa");
}

#[test]
fn crl_verifies_and_lists_serials_and_reasons_ecdsa() {
    check_crl(Pki::new(EcSigner::new(), EcSigner::new()), "ec");
}

// --- OCSP -------------------------------------------------------------------------------------

/// Asks openssl for a request about `user.pem`, answers it with `status`, and returns what
/// `openssl ocsp -respin` says about the answer.
fn ocsp_round_trip<S: CaSigner>(
    pki: &Pki<S>,
    extra: &[&str],
    status: impl Fn(&CertId) -> OcspStatus,
) -> String {
    // Options such as the digest must come before `-cert`.
    let mut args = vec!["ocsp"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-issuer",
        "issuing.pem",
        "-cert",
        "user.pem",
        "-reqout",
        "req.der",
    ]);
    let (ok, text) = openssl(pki.dir.path(), &args);
    assert!(ok, "{text}");
    let req = std::fs::read(pki.path("req.der")).unwrap();
    let query = parse_ocsp_request(&req).unwrap();
    assert_eq!(query.cert_ids.len(), 1);
    let answers: Vec<(CertId, OcspStatus)> = query
        .cert_ids
        .iter()
        .map(|id| (id.clone(), status(id)))
        .collect();
    let now = SystemTime::now();
    let resp = ocsp_response(
        &pki.issuing,
        &pki.issuing_cert,
        &answers,
        now,
        now,
        Some(now + DAY),
        query.nonce.as_deref(),
    )
    .unwrap();
    pki.write("resp.der", &resp);
    let (_, text) = openssl(
        pki.dir.path(),
        // No `-cert` here: with it openssl would build a fresh request with a fresh nonce
        // instead of checking ours against `req.der`.
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "issuing.pem",
            "-CAfile",
            "chain.pem",
            "-reqin",
            "req.der",
            "-resp_text",
        ],
    );
    text
}

fn check_ocsp<S: CaSigner>(pki: Pki<S>, prefix: &str) {
    let n = composite_modulus();
    let user = pki.issue(
        &person(KeyPurpose::Authentication, CertificateLevel::Qualified, &n),
        "user.pem",
    );
    let serial = user.tbs_certificate().serial_number().as_bytes().to_vec();

    // good, with a nonce, SHA-1 CertID (openssl's default)
    let text = ocsp_round_trip(&pki, &["-nonce"], |id| {
        assert!(cert_id_matches_issuer(id, &pki.issuing_cert));
        assert!(!cert_id_matches_issuer(id, &pki.root_cert));
        assert_eq!(id.serial, serial);
        OcspStatus::Good
    });
    assert!(
        text.contains("Response verify OK") && text.contains("Cert Status: good"),
        "{text}"
    );
    assert!(
        !text.contains("WARNING: no nonce") && !text.contains("Nonce Verify error"),
        "{text}"
    );
    assert!(
        text.contains("OCSP Nonce") && text.contains("Responder Id: "),
        "{text}"
    );
    // openssl's own CertID for user.pem finds our answer (the CertID is echoed exactly).
    let (_, text) = openssl(
        pki.dir.path(),
        &[
            "ocsp",
            "-respin",
            "resp.der",
            "-issuer",
            "issuing.pem",
            "-CAfile",
            "chain.pem",
            "-no_nonce",
            "-cert",
            "user.pem",
        ],
    );
    assert!(
        text.contains("Response verify OK") && text.contains("user.pem: good"),
        "{text}"
    );
    dump(&pki, prefix, &["resp.der"]);

    // revoked, SHA-256 CertID
    let text = ocsp_round_trip(&pki, &["-nonce", "-sha256"], |id| {
        assert!(cert_id_matches_issuer(id, &pki.issuing_cert));
        assert_eq!(id.hash_algorithm.oid, oids::SHA256);
        OcspStatus::Revoked {
            at: SystemTime::now() - DAY,
            reason: RevocationReason::KeyCompromise,
        }
    });
    assert!(
        text.contains("Response verify OK")
            && text.contains("Cert Status: revoked")
            && text.contains("Revocation Reason: keyCompromise"),
        "{text}"
    );

    // unknown (not one of ours), no nonce asked
    let text = ocsp_round_trip(&pki, &["-no_nonce"], |_| OcspStatus::Unknown);
    assert!(
        text.contains("Response verify OK") && text.contains("Cert Status: unknown"),
        "{text}"
    );
}

#[test]
fn ocsp_good_revoked_unknown_with_nonce_rsa() {
    check_ocsp(Pki::new(RsaSigner::new(), RsaSigner::new()), "rsa");
}

#[test]
fn ocsp_good_revoked_unknown_with_nonce_ecdsa() {
    check_ocsp(Pki::new(EcSigner::new(), EcSigner::new()), "ec");
}

#[test]
fn ocsp_malformed_requests_are_rejected() {
    let pki = Pki::new(EcSigner::new(), EcSigner::new());
    let n = composite_modulus();
    pki.issue(
        &person(KeyPurpose::Signature, CertificateLevel::Qualified, &n),
        "user.pem",
    );
    let (ok, text) = openssl(
        pki.dir.path(),
        &[
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-cert",
            "user.pem",
            "-reqout",
            "req.der",
            "-nonce",
        ],
    );
    assert!(ok, "{text}");
    let req = std::fs::read(pki.path("req.der")).unwrap();
    let query = parse_ocsp_request(&req).unwrap();
    assert_eq!(query.nonce.as_ref().map(Vec::len), Some(16));

    assert!(
        parse_ocsp_request(&req[..req.len() - 1]).is_err(),
        "truncated"
    );
    assert!(parse_ocsp_request(&req[..req.len() / 2]).is_err(), "half");
    let mut trailing = req.clone();
    trailing.push(0);
    assert!(parse_ocsp_request(&trailing).is_err(), "trailing byte");
    assert!(
        parse_ocsp_request(b"GET /ocsp HTTP/1.1\r\n").is_err(),
        "garbage"
    );
    assert!(parse_ocsp_request(&[]).is_err(), "empty");
    assert!(
        parse_ocsp_request(&vec![0u8; 70 * 1024]).is_err(),
        "oversized"
    );

    // 17 CertIDs: over the limit; 16 are fine.
    let many = |count: usize| {
        let mut args = vec![
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-reqout",
            "many.der",
            "-no_nonce",
        ];
        let serials: Vec<String> = (1..=count).map(|i| format!("0x{i:02X}")).collect();
        for s in &serials {
            args.extend_from_slice(&["-serial", s]);
        }
        let (ok, text) = openssl(pki.dir.path(), &args);
        assert!(ok, "{text}");
        std::fs::read(pki.path("many.der")).unwrap()
    };
    assert_eq!(parse_ocsp_request(&many(16)).unwrap().cert_ids.len(), 16);
    assert!(parse_ocsp_request(&many(17)).is_err());

    // The error responses are what openssl expects.
    for (status, word) in [
        (OcspResponseStatus::MalformedRequest, "malformedrequest"),
        (OcspResponseStatus::InternalError, "internalerror"),
        (OcspResponseStatus::TryLater, "trylater"),
        (OcspResponseStatus::Unauthorized, "unauthorized"),
    ] {
        pki.write("err.der", &ocsp_error_response(status));
        let (_, text) = openssl(
            pki.dir.path(),
            &["ocsp", "-respin", "err.der", "-resp_text", "-noverify"],
        );
        assert!(text.to_lowercase().contains(word), "{word}: {text}");
    }
}

#[test]
fn ocsp_response_rejects_a_wrong_signer_and_bad_nonce() {
    let pki = Pki::new(EcSigner::new(), EcSigner::new());
    let id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: oids::SHA1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: vec![0; 20],
        issuer_key_hash: vec![0; 20],
        serial: vec![0x42],
    };
    assert!(!cert_id_matches_issuer(&id, &pki.issuing_cert));
    let now = SystemTime::now();
    let answers = [(id, OcspStatus::Unknown)];
    let other = EcSigner::new();
    assert!(ocsp_response(&other, &pki.issuing_cert, &answers, now, now, None, None).is_err());
    assert!(
        ocsp_response(
            &pki.issuing,
            &pki.issuing_cert,
            &answers,
            now,
            now,
            None,
            Some(&[0; 33])
        )
        .is_err()
    );
    assert!(ocsp_response(&pki.issuing, &pki.issuing_cert, &[], now, now, None, None).is_err());
    assert!(
        ocsp_response(
            &pki.issuing,
            &pki.issuing_cert,
            &answers,
            now,
            now,
            None,
            Some(&[7; 32])
        )
        .is_ok()
    );
}
