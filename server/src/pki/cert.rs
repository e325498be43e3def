//! X.509 v3 certificates: the self-signed root CA, the issuing CA, and the end-entity AUTH
//! and SIGN certificates over the composite public keys (n = n1·n2, e = 65537).

use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, Ia5String, OctetString};
use der::{Decode, Encode, EncodePem, Sequence, Tag};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use super::{
    CA_COUNTRY, CaProfile, CaSigner, PkiError, check_signer_matches, extension,
    issuer_key_identifier, key_identifier, oids, policy_oid, rsa_spki_der, sign_der,
    signature_algorithm, x509_time,
};

/// Which key pair of an account a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// AUTH key (PIN1): digitalSignature, Smart-ID authentication EKU and clientAuth.
    Authentication,
    /// SIGN key (PIN2): nonRepudiation.
    Signature,
}

/// Assurance level of a SIGN certificate (AUTH certificates carry the same level name but
/// no QC statements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateLevel {
    /// Qualified: ETSI QC statements and the QCP-n-qscd policy on the SIGN certificate.
    Qualified,
    /// Advanced: no QC statements.
    Advanced,
}

/// What an end-entity certificate certifies.
#[derive(Debug, Clone)]
pub struct EndEntity {
    /// AUTH or SIGN.
    pub purpose: KeyPurpose,
    /// QUALIFIED or ADVANCED.
    pub level: CertificateLevel,
    /// The composite RSA modulus n (big-endian); e = 65537.
    pub composite_modulus: Vec<u8>,
    /// Given name(s), as on the identity document.
    pub given_name: String,
    /// Surname(s).
    pub surname: String,
    /// ISO 3166-1 alpha-2 country code of the national identifier, e.g. `EE`.
    pub country: String,
    /// National identity code, e.g. `30001010004`.
    pub national_id: String,
    /// Certificate serial number: big-endian, 1 to 20 bytes, first byte non-zero.
    pub serial: Vec<u8>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity (the account's expiry).
    pub not_after: SystemTime,
}

/// TBSCertificate (RFC 5280 4.1), always v3 with extensions.
#[derive(Sequence)]
struct TbsCertificateOut {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

/// Certificate (RFC 5280 4.1).
#[derive(Sequence)]
struct CertificateOut {
    tbs_certificate: TbsCertificateOut,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// PolicyInformation without qualifiers.
#[derive(Sequence)]
struct PolicyInformationOut {
    policy_identifier: ObjectIdentifier,
}

/// QCStatement (RFC 3739).
#[derive(Sequence)]
struct QcStatement {
    statement_id: ObjectIdentifier,
    #[asn1(optional = "true")]
    statement_info: Option<Any>,
}

/// SemanticsInformation (RFC 3739), with only the semantics identifier.
#[derive(Sequence)]
struct SemanticsInformation {
    semantics_identifier: ObjectIdentifier,
}

/// Whether a certificate (DER) is QSCD-capable: it carries the ETSI QcSSCD statement
/// (EN 319 412-5, `0.4.0.1862.1.4`) in its QC statements extension (RFC 3739). Our qualified
/// SIGN certificates do ([`qc_statements`]); AUTH and advanced certificates do not. An error
/// when the certificate or its QC statements do not decode.
pub fn qscd_capable(certificate_der: &[u8]) -> Result<bool, PkiError> {
    let cert = Certificate::from_der(certificate_der)?;
    for e in cert.tbs_certificate().extensions().into_iter().flatten() {
        if e.extn_id == oids::PE_QC_STATEMENTS {
            let statements = Vec::<QcStatement>::from_der(e.extn_value.as_bytes())?;
            if statements
                .iter()
                .any(|s| s.statement_id == oids::ETSI_QCS_QC_SSCD)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// DER bytes of a certificate.
pub fn certificate_der(cert: &Certificate) -> Vec<u8> {
    // A decoded certificate always re-encodes; `build` checked it round-trips exactly.
    cert.to_der().unwrap_or_default()
}

/// PEM text (`-----BEGIN CERTIFICATE-----`) of a certificate, LF line endings.
pub fn certificate_pem(cert: &Certificate) -> String {
    cert.to_pem(der::pem::LineEnding::LF).unwrap_or_default()
}

/// Self-signed root CA certificate: C=[`CA_COUNTRY`], O=Tandem, CN=`common_name`; basicConstraints cA
/// (critical), keyUsage keyCertSign + cRLSign (critical), subjectKeyIdentifier.
pub fn root_ca_certificate(
    signer: &dyn CaSigner,
    common_name: &str,
    serial: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<Certificate, PkiError> {
    let subject = ca_name(common_name)?;
    let spki = signer.public_key();
    let extensions = vec![
        extension(
            oids::CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
        )?,
        extension(
            oids::CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        )?,
        extension(
            oids::CE_SUBJECT_KEY_IDENTIFIER,
            false,
            &OctetString::new(key_identifier(&spki))?,
        )?,
    ];
    build(
        signer,
        serial,
        subject.clone(),
        subject,
        not_before,
        not_after,
        spki,
        extensions,
    )
}

/// Issuing CA certificate, signed by the root: basicConstraints cA pathLen 0 (critical),
/// keyUsage digitalSignature + keyCertSign + cRLSign (critical; digitalSignature because
/// this CA signs its OCSP responses itself), SKI, AKI, certificatePolicies anyPolicy, and
/// cRLDistributionPoints naming the root's CRL (`profile.root_crl_url`), where a relying
/// party checks whether this CA certificate is revoked (response_verification.txt:
/// "Intermediate CA certificates can be revoked and must be checked").
#[allow(clippy::too_many_arguments)] // mirrors the certificate's fields one to one
pub fn issuing_ca_certificate(
    root: &dyn CaSigner,
    root_cert: &Certificate,
    issuing_public_key: SubjectPublicKeyInfoOwned,
    common_name: &str,
    serial: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
    profile: &CaProfile,
) -> Result<Certificate, PkiError> {
    check_signer_matches(root, root_cert)?;
    let subject = ca_name(common_name)?;
    let extensions = vec![
        extension(
            oids::CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
        )?,
        extension(
            oids::CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        )?,
        extension(
            oids::CE_SUBJECT_KEY_IDENTIFIER,
            false,
            &OctetString::new(key_identifier(&issuing_public_key))?,
        )?,
        authority_key_identifier(root_cert)?,
        extension(
            oids::CE_CERTIFICATE_POLICIES,
            false,
            &vec![PolicyInformationOut {
                policy_identifier: oids::ANY_POLICY,
            }],
        )?,
        crl_distribution_point(&profile.root_crl_url)?,
    ];
    build(
        root,
        serial,
        root_cert.tbs_certificate().subject().clone(),
        subject,
        not_before,
        not_after,
        issuing_public_key,
        extensions,
    )
}

/// End-entity AUTH or SIGN certificate over a composite key, signed by the issuing CA.
///
/// Subject: C, SN, GN, CN `SURNAME,GIVENNAME`, serialNumber `PNO<CC>-<id>` (ETSI EN 319
/// 412-1 semantics identifier). Extensions: basicConstraints cA=false, keyUsage (critical;
/// AUTH digitalSignature, SIGN nonRepudiation), extKeyUsage Smart-ID authentication and
/// clientAuth (AUTH only),
/// certificatePolicies, qcStatements, authorityInfoAccess (OCSP, caIssuers),
/// cRLDistributionPoints, AKI, SKI.
pub fn end_entity_certificate(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    ee: &EndEntity,
    profile: &CaProfile,
) -> Result<Certificate, PkiError> {
    check_signer_matches(issuer, issuer_cert)?;
    let subject = person_name(ee)?;
    let spki_der = rsa_spki_der(&ee.composite_modulus)
        .map_err(|_| PkiError::Malformed("composite modulus is not a usable RSA modulus"))?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der)?;
    if spki.subject_public_key.raw_bytes().len() < 256 {
        return Err(PkiError::Malformed(
            "composite modulus is shorter than 2048 bits",
        ));
    }

    let arc = profile.policy_arc;
    let (key_usage, policies) = match (ee.purpose, ee.level) {
        (KeyPurpose::Authentication, _) => (
            KeyUsages::DigitalSignature,
            vec![policy_oid(arc, 1)?, oids::ETSI_NCP_PLUS],
        ),
        (KeyPurpose::Signature, CertificateLevel::Qualified) => (
            KeyUsages::NonRepudiation,
            vec![policy_oid(arc, 2)?, oids::ETSI_QCP_N_QSCD],
        ),
        (KeyPurpose::Signature, CertificateLevel::Advanced) => {
            (KeyUsages::NonRepudiation, vec![policy_oid(arc, 3)?])
        }
    };
    let policies: Vec<PolicyInformationOut> = policies
        .into_iter()
        .map(|policy_identifier| PolicyInformationOut { policy_identifier })
        .collect();

    let mut extensions = vec![
        extension(
            oids::CE_BASIC_CONSTRAINTS,
            false,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?,
        extension(oids::CE_KEY_USAGE, true, &KeyUsage(key_usage.into()))?,
    ];
    if ee.purpose == KeyPurpose::Authentication {
        extensions.push(extension(
            oids::CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![oids::KP_SMART_ID_AUTH, oids::KP_CLIENT_AUTH]),
        )?);
    }
    extensions.push(extension(oids::CE_CERTIFICATE_POLICIES, false, &policies)?);
    extensions.push(extension(
        oids::PE_QC_STATEMENTS,
        false,
        &qc_statements(ee)?,
    )?);
    extensions.extend(pointers(profile, issuer_cert, &spki)?);

    build(
        issuer,
        &ee.serial,
        issuer_cert.tbs_certificate().subject().clone(),
        subject,
        ee.not_before,
        ee.not_after,
        spki,
        extensions,
    )
}

/// The certificate of our time-stamp authority (RFC 3161 2.3), signed by the issuing CA.
///
/// Subject C=[`CA_COUNTRY`], O=Tandem, CN=`common_name`. Extensions: basicConstraints
/// cA=false, keyUsage digitalSignature (critical), extendedKeyUsage id-kp-timeStamping only
/// (critical, as RFC 3161 requires), certificatePolicies `tsa_policy`, authorityInfoAccess
/// (OCSP, caIssuers), cRLDistributionPoints, AKI, SKI: the same pointers as the end-entity
/// certificates.
#[allow(clippy::too_many_arguments)] // mirrors the certificate's fields one to one
pub fn tsa_certificate(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    tsa_public_key: SubjectPublicKeyInfoOwned,
    common_name: &str,
    serial: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
    tsa_policy: ObjectIdentifier,
    profile: &CaProfile,
) -> Result<Certificate, PkiError> {
    service_certificate(
        issuer,
        issuer_cert,
        &ServiceKey {
            public_key: tsa_public_key,
            common_name,
            serial,
            not_before,
            not_after,
            key_usage: KeyUsages::DigitalSignature.into(),
            purpose: super::oids::KP_TIME_STAMPING,
            policy: Some(tsa_policy),
        },
        profile,
    )
}

/// The certificate of the proof-of-origin key, signed by the issuing CA.
///
/// Subject C=[`CA_COUNTRY`], O=Tandem, CN=`common_name`. Extensions as the TSA's, except
/// keyUsage digitalSignature and nonRepudiation (critical), extendedKeyUsage
/// [`oids::KP_TANDEM_PROOF_OF_ORIGIN`] only (critical: the key signs nothing else) and no
/// certificate policy.
#[allow(clippy::too_many_arguments)] // mirrors the certificate's fields one to one
pub fn origin_certificate(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    public_key: SubjectPublicKeyInfoOwned,
    common_name: &str,
    serial: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
    profile: &CaProfile,
) -> Result<Certificate, PkiError> {
    service_certificate(
        issuer,
        issuer_cert,
        &ServiceKey {
            public_key,
            common_name,
            serial,
            not_before,
            not_after,
            key_usage: KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
            purpose: oids::KP_TANDEM_PROOF_OF_ORIGIN,
            policy: None,
        },
        profile,
    )
}

/// The pointers every certificate the issuing CA signs carries: authorityInfoAccess (OCSP,
/// caIssuers), cRLDistributionPoints, the authority key identifier and the subject key
/// identifier of `public_key`.
fn pointers(
    profile: &CaProfile,
    issuer_cert: &Certificate,
    public_key: &SubjectPublicKeyInfoOwned,
) -> Result<[Extension; 4], PkiError> {
    Ok([
        extension(
            oids::PE_AUTHORITY_INFO_ACCESS,
            false,
            &AuthorityInfoAccessSyntax(vec![
                AccessDescription {
                    access_method: oids::AD_OCSP,
                    access_location: uri(&profile.ocsp_url)?,
                },
                AccessDescription {
                    access_method: oids::AD_CA_ISSUERS,
                    access_location: uri(&profile.ca_issuers_url)?,
                },
            ]),
        )?,
        crl_distribution_point(&profile.crl_url)?,
        authority_key_identifier(issuer_cert)?,
        extension(
            oids::CE_SUBJECT_KEY_IDENTIFIER,
            false,
            &OctetString::new(key_identifier(public_key))?,
        )?,
    ])
}

/// What differs between the certificates of the service's own keys (TSA, proof of origin).
struct ServiceKey<'a> {
    public_key: SubjectPublicKeyInfoOwned,
    common_name: &'a str,
    serial: &'a [u8],
    not_before: SystemTime,
    not_after: SystemTime,
    key_usage: der::flagset::FlagSet<KeyUsages>,
    purpose: ObjectIdentifier,
    policy: Option<ObjectIdentifier>,
}

fn service_certificate(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    key: &ServiceKey<'_>,
    profile: &CaProfile,
) -> Result<Certificate, PkiError> {
    check_signer_matches(issuer, issuer_cert)?;
    let mut extensions = vec![
        extension(
            oids::CE_BASIC_CONSTRAINTS,
            false,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?,
        extension(oids::CE_KEY_USAGE, true, &KeyUsage(key.key_usage))?,
        extension(
            oids::CE_EXT_KEY_USAGE,
            true,
            &ExtendedKeyUsage(vec![key.purpose]),
        )?,
    ];
    if let Some(policy) = key.policy {
        extensions.push(extension(
            oids::CE_CERTIFICATE_POLICIES,
            false,
            &vec![PolicyInformationOut {
                policy_identifier: policy,
            }],
        )?);
    }
    extensions.extend(pointers(profile, issuer_cert, &key.public_key)?);
    build(
        issuer,
        key.serial,
        issuer_cert.tbs_certificate().subject().clone(),
        ca_name(key.common_name)?,
        key.not_before,
        key.not_after,
        key.public_key.clone(),
        extensions,
    )
}

/// QC statements: the natural-person semantics identifier always (it defines the meaning
/// of the `PNO…` serialNumber), plus QcCompliance, QcSSCD and QcType esign for a qualified
/// SIGN certificate.
fn qc_statements(ee: &EndEntity) -> Result<Vec<QcStatement>, PkiError> {
    let semantics = SemanticsInformation {
        semantics_identifier: oids::ETSI_SEMANTICS_ID_NATURAL,
    };
    let mut statements = vec![QcStatement {
        statement_id: oids::QCS_PKIX_QC_SYNTAX_V2,
        statement_info: Some(Any::from_der(&semantics.to_der()?)?),
    }];
    if ee.purpose == KeyPurpose::Signature && ee.level == CertificateLevel::Qualified {
        statements.push(QcStatement {
            statement_id: oids::ETSI_QCS_QC_COMPLIANCE,
            statement_info: None,
        });
        statements.push(QcStatement {
            statement_id: oids::ETSI_QCS_QC_SSCD,
            statement_info: None,
        });
        let types = vec![oids::ETSI_QCT_ESIGN];
        statements.push(QcStatement {
            statement_id: oids::ETSI_QCS_QC_TYPE,
            statement_info: Some(Any::from_der(&types.to_der()?)?),
        });
    }
    Ok(statements)
}

#[allow(clippy::too_many_arguments)] // private: the fields of a TBSCertificate
fn build(
    signer: &dyn CaSigner,
    serial: &[u8],
    issuer: Name,
    subject: Name,
    not_before: SystemTime,
    not_after: SystemTime,
    spki: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
) -> Result<Certificate, PkiError> {
    let (tbs, algorithm) = tbs_certificate(
        signer, serial, issuer, subject, not_before, not_after, spki, extensions,
    )?;
    sign_tbs(signer, tbs, algorithm)
}

/// The TBSCertificate after the checks of serial and validity, with the signer's
/// algorithm.
#[allow(clippy::too_many_arguments)] // private: the fields of a TBSCertificate
fn tbs_certificate(
    signer: &dyn CaSigner,
    serial: &[u8],
    issuer: Name,
    subject: Name,
    not_before: SystemTime,
    not_after: SystemTime,
    spki: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
) -> Result<(TbsCertificateOut, AlgorithmIdentifierOwned), PkiError> {
    if serial.is_empty() || serial.len() > 20 || serial[0] == 0 {
        return Err(PkiError::Malformed(
            "serial must be 1 to 20 bytes without a leading zero byte",
        ));
    }
    if not_before >= not_after {
        return Err(PkiError::Malformed("validity ends before it starts"));
    }
    let algorithm = signature_algorithm(signer)?;
    let tbs = TbsCertificateOut {
        version: 2,
        serial_number: SerialNumber::new(serial)?,
        signature: algorithm.clone(),
        issuer,
        validity: Validity::new(x509_time(not_before)?, x509_time(not_after)?),
        subject,
        subject_public_key_info: spki,
        extensions,
    };
    Ok((tbs, algorithm))
}

/// Signs a TBSCertificate and checks the result re-encodes to the signed bytes.
fn sign_tbs(
    signer: &dyn CaSigner,
    tbs: TbsCertificateOut,
    algorithm: AlgorithmIdentifierOwned,
) -> Result<Certificate, PkiError> {
    let tbs_der = tbs.to_der()?;
    let signature = sign_der(signer, &tbs_der)?;
    let der = CertificateOut {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature,
    }
    .to_der()?;
    let cert = Certificate::from_der(&der)?;
    // The typed certificate must give back exactly the signed bytes.
    if cert.to_der()? != der {
        return Err(PkiError::Encoding(
            "certificate does not re-encode identically".into(),
        ));
    }
    Ok(cert)
}

fn authority_key_identifier(issuer_cert: &Certificate) -> Result<Extension, PkiError> {
    extension(
        oids::CE_AUTHORITY_KEY_IDENTIFIER,
        false,
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(issuer_key_identifier(issuer_cert))?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
    )
}

/// cRLDistributionPoints with one distribution point: the full name `url`.
fn crl_distribution_point(url: &str) -> Result<Extension, PkiError> {
    extension(
        oids::CE_CRL_DISTRIBUTION_POINTS,
        false,
        &CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
            reasons: None,
            crl_issuer: None,
        }]),
    )
}

fn uri(url: &str) -> Result<GeneralName, PkiError> {
    if url.is_empty() {
        return Err(PkiError::Malformed("empty URL in the CA profile"));
    }
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(url).map_err(|_| PkiError::Malformed("URL is not ASCII"))?,
    ))
}

/// An attribute value as UTF8String (names) after basic checks.
fn utf8(value: &str, max_chars: usize, what: &'static str) -> Result<Any, PkiError> {
    let count = value.chars().count();
    if count == 0
        || count > max_chars
        || value.chars().any(char::is_control)
        || value.trim() != value
    {
        return Err(PkiError::Malformed(what));
    }
    Ok(Any::new(Tag::Utf8String, value.as_bytes())?)
}

/// An attribute value as PrintableString.
fn printable(value: &str, max_chars: usize, what: &'static str) -> Result<Any, PkiError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c);
    if value.is_empty() || value.len() > max_chars || !value.chars().all(ok) {
        return Err(PkiError::Malformed(what));
    }
    Ok(Any::new(Tag::PrintableString, value.as_bytes())?)
}

fn name(attributes: Vec<(ObjectIdentifier, Any)>) -> Result<Name, PkiError> {
    let mut rdns = RdnSequence::default();
    for (oid, value) in attributes {
        let mut rdn = RelativeDistinguishedName::default();
        rdn.insert(AttributeTypeAndValue { oid, value })?;
        rdns.push(rdn);
    }
    Ok(Name::from_der(&rdns.to_der()?)?)
}

/// C=[`CA_COUNTRY`], O=Tandem, CN=`common_name`.
fn ca_name(common_name: &str) -> Result<Name, PkiError> {
    name(vec![
        (
            oids::AT_COUNTRY_NAME,
            printable(CA_COUNTRY, 2, "CA country")?,
        ),
        (
            oids::AT_ORGANIZATION_NAME,
            utf8("Tandem", 64, "organization name")?,
        ),
        (
            oids::AT_COMMON_NAME,
            utf8(common_name, 64, "CA common name must be 1 to 64 characters")?,
        ),
    ])
}

/// C, SN, GN, CN `SURNAME,GIVENNAME`, serialNumber `PNO<CC>-<id>`.
fn person_name(ee: &EndEntity) -> Result<Name, PkiError> {
    let country = &ee.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(PkiError::Malformed(
            "country must be two upper-case letters (ISO 3166-1)",
        ));
    }
    let national_id_ok = !ee.national_id.is_empty()
        && ee
            .national_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !national_id_ok {
        return Err(PkiError::Malformed(
            "national id must be letters, digits, '-' or '.'",
        ));
    }
    let common_name = format!("{},{}", ee.surname, ee.given_name);
    name(vec![
        (oids::AT_COUNTRY_NAME, printable(country, 2, "country")?),
        (
            oids::AT_SURNAME,
            utf8(&ee.surname, 64, "surname must be 1 to 64 characters")?,
        ),
        (
            oids::AT_GIVEN_NAME,
            utf8(&ee.given_name, 64, "given name must be 1 to 64 characters")?,
        ),
        (
            oids::AT_COMMON_NAME,
            utf8(
                &common_name,
                64,
                "SURNAME,GIVENNAME is longer than 64 characters",
            )?,
        ),
        (
            oids::AT_SERIAL_NUMBER,
            printable(
                &format!("PNO{country}-{}", ee.national_id),
                64,
                "national id is too long",
            )?,
        ),
    ])
}

/// subjectAltName (RFC 5280 4.2.1.6).
const CE_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// The leaf of the "RP client certificate" policy: `<arc>.1.4` (after authentication 1,
/// qualified signature 2, advanced signature 3).
pub const RP_CLIENT_POLICY_LEAF: u32 = 4;

/// What a relying party's software certificate certifies.
#[derive(Debug, Clone)]
pub struct RpClient<'a> {
    /// The relying party's UUID: the SubjectAltName `urn:uuid:<uuid>` that mutual TLS binds
    /// to.
    pub rp_uuid: &'a str,
    /// The relying party's (first) name: O and CN.
    pub rp_name: &'a str,
    /// The key from the relying party's CSR (checked: [`super::csr::public_key_of_csr`]).
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Serial (1 to 20 bytes, no leading zero byte).
    pub serial: &'a [u8],
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

/// The subject alternative name of an RP client certificate: `urn:uuid:<uuid>` (lower case).
pub fn rp_client_san(rp_uuid: &str) -> String {
    format!("urn:uuid:{}", rp_uuid.to_ascii_lowercase())
}

/// The TBSCertificate (DER) of a relying party's TLS client certificate, to be signed by
/// the issuing CA: [`rp_client_certificate`] without the signature (the CA benchmark signs
/// these).
pub fn rp_client_tbs(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    rp: &RpClient<'_>,
    profile: &CaProfile,
) -> Result<Vec<u8>, PkiError> {
    let (tbs, _) = rp_client_parts(issuer, issuer_cert, rp, profile)?;
    Ok(tbs.to_der()?)
}

/// A relying party's TLS client certificate (its software certificate), signed by the
/// issuing CA.
///
/// Subject C=[`CA_COUNTRY`], O and CN the relying party's name; SubjectAltName URI
/// `urn:uuid:<rp uuid>`. Extensions: basicConstraints cA=false, keyUsage digitalSignature
/// (critical), extendedKeyUsage clientAuth only, certificatePolicies `<arc>.1.4` ("RP
/// client certificate"), authorityInfoAccess (OCSP, caIssuers), cRLDistributionPoints,
/// AKI, SKI.
pub fn rp_client_certificate(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    rp: &RpClient<'_>,
    profile: &CaProfile,
) -> Result<Certificate, PkiError> {
    let (tbs, algorithm) = rp_client_parts(issuer, issuer_cert, rp, profile)?;
    sign_tbs(issuer, tbs, algorithm)
}

fn rp_client_parts(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    rp: &RpClient<'_>,
    profile: &CaProfile,
) -> Result<(TbsCertificateOut, AlgorithmIdentifierOwned), PkiError> {
    check_signer_matches(issuer, issuer_cert)?;
    if uuid::Uuid::parse_str(rp.rp_uuid).is_err() {
        return Err(PkiError::Malformed("relying party UUID"));
    }
    if rp.public_key.algorithm.oid != oids::RSA_ENCRYPTION {
        return Err(PkiError::Malformed("the key is not an RSA key"));
    }
    let subject = name(vec![
        (
            oids::AT_COUNTRY_NAME,
            printable(CA_COUNTRY, 2, "CA country")?,
        ),
        (
            oids::AT_ORGANIZATION_NAME,
            utf8(
                rp.rp_name,
                64,
                "relying party name must be 1 to 64 characters",
            )?,
        ),
        (
            oids::AT_COMMON_NAME,
            utf8(
                rp.rp_name,
                64,
                "relying party name must be 1 to 64 characters",
            )?,
        ),
    ])?;
    let san = vec![uri(&rp_client_san(rp.rp_uuid))?];
    let mut extensions = vec![
        extension(
            oids::CE_BASIC_CONSTRAINTS,
            false,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?,
        extension(
            oids::CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::DigitalSignature.into()),
        )?,
        extension(
            oids::CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![oids::KP_CLIENT_AUTH]),
        )?,
        extension(CE_SUBJECT_ALT_NAME, false, &san)?,
        extension(
            oids::CE_CERTIFICATE_POLICIES,
            false,
            &vec![PolicyInformationOut {
                policy_identifier: policy_oid(profile.policy_arc, RP_CLIENT_POLICY_LEAF)?,
            }],
        )?,
    ];
    extensions.extend(pointers(profile, issuer_cert, &rp.public_key)?);
    tbs_certificate(
        issuer,
        rp.serial,
        issuer_cert.tbs_certificate().subject().clone(),
        subject,
        rp.not_before,
        rp.not_after,
        rp.public_key.clone(),
        extensions,
    )
}
