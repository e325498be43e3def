//! The signer: identification of the signing certificate (EN 319 102-1, 5.2.3), the
//! cryptographic verification (5.2.7) and the algorithm constraints (5.2.8), and the
//! signature level the certificate supports.

use cms::signed_data::{SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier as Oid;
use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::cms::{EmbeddedCert, SigningCertRef};
use crate::documents::DocumentHash;
use crate::oids;
use crate::report::SignatureLevel;

/// Smallest RSA modulus accepted (bits).
pub const MIN_RSA_BITS: u32 = 2048;
/// Smallest EC key accepted (bits).
pub const MIN_EC_BITS: u32 = 256;

const RSA_ENCRYPTION: Oid = oids::RSA_ENCRYPTION;
const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
const MD5_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.4");
const MD5: Oid = Oid::new_unwrap("1.2.840.113549.2.5");
const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
/// ETSI EN 319 411-2 qualified policies: QCP-n, QCP-l, QCP-n-qscd, QCP-l-qscd.
const QUALIFIED_POLICIES: [Oid; 4] = [
    Oid::new_unwrap("0.4.0.194112.1.0"),
    Oid::new_unwrap("0.4.0.194112.1.1"),
    oids::ETSI_QCP_N_QSCD,
    Oid::new_unwrap("0.4.0.194112.1.3"),
];

/// An algorithm problem: not accepted (weak) or not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AlgorithmError(pub String);

/// The hash of a digest AlgorithmIdentifier: SHA-2 is accepted, SHA-1 and MD5 are not.
pub fn document_hash(oid: Oid) -> Result<DocumentHash, AlgorithmError> {
    match oid {
        o if o == oids::SHA256 => Ok(DocumentHash::Sha256),
        o if o == oids::SHA384 => Ok(DocumentHash::Sha384),
        o if o == oids::SHA512 => Ok(DocumentHash::Sha512),
        o if o == oids::SHA1 => Err(AlgorithmError("SHA-1 is no longer accepted".into())),
        o if o == MD5 => Err(AlgorithmError("MD5 is no longer accepted".into())),
        o => Err(AlgorithmError(format!(
            "the digest algorithm {o} is not supported"
        ))),
    }
}

fn md(hash: DocumentHash) -> MessageDigest {
    match hash {
        DocumentHash::Sha256 => MessageDigest::sha256(),
        DocumentHash::Sha384 => MessageDigest::sha384(),
        DocumentHash::Sha512 => MessageDigest::sha512(),
    }
}

/// The certificate the SignerInfo's sid names among the embedded ones.
pub fn find_signer<'a>(si: &SignerInfo, certs: &'a [EmbeddedCert]) -> Option<&'a EmbeddedCert> {
    certs.iter().find(|c| {
        let tbs = c.cert.tbs_certificate();
        match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
                .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, k)| k.0 == ski.0),
        }
    })
}

/// Whether the ESS reference (hash, and issuerSerial if present) names `cert`.
pub fn matches_reference(r: &SigningCertRef, cert: &EmbeddedCert) -> bool {
    let digest = if r.hash_oid == oids::SHA1 {
        openssl::hash::hash(MessageDigest::sha1(), &cert.der).map(|d| d.to_vec())
    } else {
        match document_hash(r.hash_oid) {
            Ok(h) => Ok(h.digest(&cert.der)),
            Err(_) => return false,
        }
    };
    if digest.ok().as_deref() != Some(r.cert_hash.as_slice()) {
        return false;
    }
    match &r.issuer_serial {
        None => true,
        Some((names, serial)) => {
            let tbs = cert.cert.tbs_certificate();
            serial.as_slice() == tbs.serial_number().as_bytes()
                && names
                    .iter()
                    .any(|n| matches!(n, GeneralName::DirectoryName(d) if d == tbs.issuer()))
        }
    }
}

/// The public key of a certificate (OpenSSL).
pub fn public_key(cert: &EmbeddedCert) -> Result<PKey<Public>, String> {
    openssl::x509::X509::from_der(&cert.der)
        .and_then(|c| c.public_key())
        .map_err(|e| format!("the signing certificate's key cannot be read: {e}"))
}

/// Whether the key is strong enough: RSA >= 2048 bits, EC >= 256 bits.
pub fn key_acceptable(key: &PKey<Public>) -> Result<(), AlgorithmError> {
    let bits = key.bits();
    match key.id() {
        Id::RSA | Id::RSA_PSS if bits < MIN_RSA_BITS => Err(AlgorithmError(format!(
            "an RSA key of {bits} bits is below the accepted {MIN_RSA_BITS}"
        ))),
        Id::EC if bits < MIN_EC_BITS => Err(AlgorithmError(format!(
            "an EC key of {bits} bits is below the accepted {MIN_EC_BITS}"
        ))),
        Id::RSA | Id::RSA_PSS | Id::EC => Ok(()),
        _ => Err(AlgorithmError(
            "the signing key's type is not supported".into(),
        )),
    }
}

/// RSASSA-PSS-params (RFC 4055).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// How the signature value is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Pkcs1(DocumentHash),
    Pss {
        hash: DocumentHash,
        mgf: DocumentHash,
        salt: i32,
    },
    Ecdsa(DocumentHash),
}

fn scheme(alg: &AlgorithmIdentifierOwned, digest: DocumentHash) -> Result<Scheme, AlgorithmError> {
    let weak = || {
        AlgorithmError(format!(
            "the signature algorithm {} is no longer accepted",
            alg.oid
        ))
    };
    Ok(match alg.oid {
        o if o == RSA_ENCRYPTION => Scheme::Pkcs1(digest),
        o if o == SHA256_WITH_RSA => Scheme::Pkcs1(DocumentHash::Sha256),
        o if o == oids::SHA384_WITH_RSA => Scheme::Pkcs1(DocumentHash::Sha384),
        o if o == SHA512_WITH_RSA => Scheme::Pkcs1(DocumentHash::Sha512),
        o if o == ECDSA_WITH_SHA256 => Scheme::Ecdsa(DocumentHash::Sha256),
        o if o == oids::ECDSA_WITH_SHA384 => Scheme::Ecdsa(DocumentHash::Sha384),
        o if o == ECDSA_WITH_SHA512 => Scheme::Ecdsa(DocumentHash::Sha512),
        o if o == SHA1_WITH_RSA || o == MD5_WITH_RSA || o == ECDSA_WITH_SHA1 => return Err(weak()),
        o if o == RSASSA_PSS => {
            let params: RsaPssParams = alg
                .parameters
                .as_ref()
                .ok_or_else(|| AlgorithmError("RSASSA-PSS without parameters".into()))?
                .decode_as()
                .map_err(|e| AlgorithmError(format!("RSASSA-PSS parameters: {e}")))?;
            // Absent hash means SHA-1 (RFC 4055's default): not accepted.
            let hash = document_hash(params.hash_algorithm.map(|a| a.oid).unwrap_or(oids::SHA1))?;
            let mgf = match params.mask_gen_algorithm {
                None => return Err(weak()),
                Some(m) => {
                    let inner: AlgorithmIdentifierOwned = m
                        .parameters
                        .as_ref()
                        .ok_or_else(|| AlgorithmError("MGF1 without a hash".into()))?
                        .decode_as()
                        .map_err(|e| AlgorithmError(format!("MGF1 parameters: {e}")))?;
                    document_hash(inner.oid)?
                }
            };
            if params.trailer_field.is_some_and(|t| t != 1) {
                return Err(AlgorithmError(
                    "RSASSA-PSS trailer field other than 1".into(),
                ));
            }
            Scheme::Pss {
                hash,
                mgf,
                salt: params.salt_length.unwrap_or(20).min(i32::MAX as u32) as i32,
            }
        }
        o => {
            return Err(AlgorithmError(format!(
                "the signature algorithm {o} is not supported"
            )));
        }
    })
}

/// The signature algorithm is acceptable; `Ok` carries nothing, the check is done by
/// [`verify_signature`].
pub fn check_signature_algorithm(
    alg: &AlgorithmIdentifierOwned,
    digest: DocumentHash,
) -> Result<(), AlgorithmError> {
    scheme(alg, digest).map(|_| ())
}

/// Whether `signature` verifies over `signed_attrs_der` with `key` under `alg`. Errors are
/// algorithm problems (checked before by [`check_signature_algorithm`]); a bad signature is
/// `Ok(false)`.
pub fn verify_signature(
    alg: &AlgorithmIdentifierOwned,
    digest: DocumentHash,
    key: &PKey<Public>,
    signed_attrs_der: &[u8],
    signature: &[u8],
) -> Result<bool, AlgorithmError> {
    let scheme = scheme(alg, digest)?;
    let check = || -> Result<bool, openssl::error::ErrorStack> {
        let mut v = match scheme {
            Scheme::Pkcs1(h) | Scheme::Ecdsa(h) => Verifier::new(md(h), key)?,
            Scheme::Pss { hash, mgf, salt } => {
                let mut v = Verifier::new(md(hash), key)?;
                v.set_rsa_padding(Padding::PKCS1_PSS)?;
                v.set_rsa_mgf1_md(md(mgf))?;
                v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))?;
                v
            }
        };
        v.update(signed_attrs_der)?;
        v.verify(signature)
    };
    Ok(check().unwrap_or(false))
}

/// QCStatement (RFC 3739): only the statement's id is read.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct QcStatement {
    statement_id: Oid,
    #[asn1(optional = "true")]
    statement_info: Option<der::Any>,
}

/// Qualified when the certificate has the QcCompliance statement and a qualified policy of
/// ETSI EN 319 411-2; advanced otherwise.
pub fn level(cert: &Certificate) -> SignatureLevel {
    let exts = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or(&[]);
    let qc_compliance = exts
        .iter()
        .filter(|e| e.extn_id == oids::PE_QC_STATEMENTS)
        .filter_map(|e| Vec::<QcStatement>::from_der(e.extn_value.as_bytes()).ok())
        .flatten()
        .any(|s| s.statement_id == oids::ETSI_QCS_QC_COMPLIANCE);
    let qualified_policy = cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::CertificatePolicies>()
        .ok()
        .flatten()
        .is_some_and(|(_, p)| {
            p.0.iter()
                .any(|pi| QUALIFIED_POLICIES.contains(&pi.policy_identifier))
        });
    if qc_compliance && qualified_policy {
        SignatureLevel::Qualified
    } else {
        SignatureLevel::Advanced
    }
}

/// The signer's name: the subject's commonName, else the whole subject.
pub fn signer_name(cert: &Certificate) -> String {
    let subject = cert.tbs_certificate().subject();
    for atv in subject.iter() {
        if atv.oid == oids::AT_COMMON_NAME {
            if let Ok(s) = der::asn1::Utf8StringRef::try_from(&atv.value) {
                return s.as_str().to_owned();
            }
            if let Ok(s) = der::asn1::PrintableStringRef::try_from(&atv.value) {
                return s.as_str().to_owned();
            }
        }
    }
    subject.to_string()
}

/// DER of a certificate (for OpenSSL); empty on failure.
pub fn cert_der(cert: &Certificate) -> Vec<u8> {
    cert.to_der().unwrap_or_default()
}
