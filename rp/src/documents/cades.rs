//! Detached CAdES baseline B-B signatures (ETSI EN 319 122-1), made in two steps around the
//! RP API's RAW_DIGEST_SIGNATURE:
//!
//! ```text
//!  document ─digest_reader─▶ digest ┐
//!  signer certificate, issuing CA ──┼─ prepare() ─▶ PreparedCades
//!  hash, scheme, signing time ──────┘      │ signed_attributes_der()  (kept)
//!                                          │ digest_to_sign() ──▶ RP API: sign this digest
//!  signature over digest_to_sign ◀─────────┘                       (phone, PIN2, VC)
//!       └─ PreparedCades::finish(signature) ─▶ ContentInfo/SignedData DER (.p7s)
//! ```
//!
//! The signed attributes are content-type (id-data), message-digest (the document's digest),
//! signing-time and ESS signing-certificate-v2 (RFC 5035: the signer certificate's hash with
//! the same algorithm as the signature, and its issuer and serial number). The SignedData
//! embeds the signer certificate and the issuing CA certificate and has no content
//! (detached). The SignerInfo names the signer by issuerAndSerialNumber; its
//! signatureAlgorithm is `sha{256,384,512}WithRSAEncryption` for PKCS#1 v1.5 or
//! `id-RSASSA-PSS` with explicit parameters (the same hash, MGF1 with the same hash, salt
//! length = hash length, trailer 1: what the RP API's RSASSA-PSS produces).

use std::time::SystemTime;

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier as Oid;
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode, Sequence};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::x509::X509;
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

use super::DocumentHash;
use crate::oids;

pub use crate::oids::{
    ID_AA_SIGNING_CERTIFICATE_V2, ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA,
    ID_SIGNING_TIME,
};
/// id-RSASSA-PSS (RFC 4055).
pub const ID_RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// id-mgf1 (RFC 4055).
pub const ID_MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
/// sha256WithRSAEncryption (RFC 4055).
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha512WithRSAEncryption (RFC 4055).
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");

/// The RSA signature scheme of a CAdES signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CadesScheme {
    /// RSASSA-PSS: MGF1 with the signature's hash, salt length = hash length, trailer 1.
    RsassaPss,
    /// RSASSA-PKCS1-v1_5.
    Pkcs1v15,
}

/// Why a CAdES signature could not be prepared or finished. Messages name the input at fault
/// and never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CadesError {
    /// A certificate is not a DER X.509 certificate.
    #[error("the {which} certificate is not a DER X.509 certificate: {reason}")]
    Certificate {
        /// "signer" or "issuing CA".
        which: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The issuing CA certificate did not issue the signer certificate.
    #[error("the issuing CA certificate did not issue the signer certificate: {0}")]
    WrongIssuer(String),
    /// The signer certificate's key is not an RSA key.
    #[error("the signer certificate's key is not an RSA key")]
    NotRsa,
    /// The document digest does not have the hash's length.
    #[error("the document digest is {got} bytes, {hash:?} needs {want}")]
    DigestLength {
        /// The hash asked for.
        hash: DocumentHash,
        /// Its output length.
        want: usize,
        /// The digest's length.
        got: usize,
    },
    /// The signature does not have the length of the signer's RSA modulus.
    #[error("the signature is {got} bytes, the signer's key needs {want}")]
    SignatureLength {
        /// The modulus length in bytes.
        want: usize,
        /// The signature's length.
        got: usize,
    },
    /// The signature does not verify over the signed attributes with the signer's key.
    #[error("the signature does not verify over the signed attributes with the signer's key")]
    BadSignature,
    /// The signing time cannot be encoded.
    #[error("the signing time cannot be encoded: {0}")]
    SigningTime(String),
    /// DER encoding failed (an internal error: the inputs were checked).
    #[error("DER encoding failed: {0}")]
    Encoding(String),
}

fn enc(e: impl std::fmt::Display) -> CadesError {
    CadesError::Encoding(e.to_string())
}

/// ESSCertIDv2 (RFC 5035); `hash_algorithm` is absent for SHA-256 (its DEFAULT).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// IssuerSerial (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

/// SigningCertificateV2 (RFC 5035), without policies.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// RSASSA-PSS-params (RFC 4055, explicit tags); the trailer field keeps its DEFAULT (1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct RsaPssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
}

/// The hash's AlgorithmIdentifier, parameters absent (RFC 5754).
fn digest_algorithm(hash: DocumentHash) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: match hash {
            DocumentHash::Sha256 => oids::SHA256,
            DocumentHash::Sha384 => oids::SHA384,
            DocumentHash::Sha512 => oids::SHA512,
        },
        parameters: None,
    }
}

/// The SignerInfo's signatureAlgorithm for `hash` and `scheme`.
fn signature_algorithm(
    hash: DocumentHash,
    scheme: CadesScheme,
) -> Result<AlgorithmIdentifierOwned, CadesError> {
    Ok(match scheme {
        CadesScheme::Pkcs1v15 => AlgorithmIdentifierOwned {
            oid: match hash {
                DocumentHash::Sha256 => SHA256_WITH_RSA,
                DocumentHash::Sha384 => oids::SHA384_WITH_RSA,
                DocumentHash::Sha512 => SHA512_WITH_RSA,
            },
            parameters: Some(Any::null()),
        },
        CadesScheme::RsassaPss => {
            let params = RsaPssParams {
                hash_algorithm: Some(digest_algorithm(hash)),
                mask_gen_algorithm: Some(AlgorithmIdentifierOwned {
                    oid: ID_MGF1,
                    parameters: Some(Any::encode_from(&digest_algorithm(hash)).map_err(enc)?),
                }),
                salt_length: Some(hash.output_len() as u32),
            };
            AlgorithmIdentifierOwned {
                oid: ID_RSASSA_PSS,
                parameters: Some(Any::encode_from(&params).map_err(enc)?),
            }
        }
    })
}

fn md(hash: DocumentHash) -> MessageDigest {
    match hash {
        DocumentHash::Sha256 => MessageDigest::sha256(),
        DocumentHash::Sha384 => MessageDigest::sha384(),
        DocumentHash::Sha512 => MessageDigest::sha512(),
    }
}

fn attribute(oid: Oid, value: Any) -> Result<Attribute, CadesError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(enc)?,
    })
}

/// What [`prepare`] needs: the document's digest and everything else that goes into the
/// signed attributes.
#[derive(Debug, Clone)]
pub struct CadesInput<'a> {
    /// The document's digest with `hash` (see [`super::digest_reader`]).
    pub document_digest: &'a [u8],
    /// The signer's certificate, DER.
    pub signer_certificate_der: &'a [u8],
    /// The certificate of the CA that issued it, DER.
    pub issuer_certificate_der: &'a [u8],
    /// The hash of the document, the signed attributes and the certificate reference.
    pub hash: DocumentHash,
    /// The RSA signature scheme.
    pub scheme: CadesScheme,
    /// The signing time claimed in the signed attributes.
    pub signing_time: SystemTime,
}

/// Step 1 done: the signed attributes and their digest, waiting for the signature over that
/// digest. [`PreparedCades::finish`] consumes it, so one preparation makes one signature.
#[derive(Debug, Clone)]
pub struct PreparedCades {
    hash: DocumentHash,
    scheme: CadesScheme,
    signer: Certificate,
    issuer: Certificate,
    signer_key: PKey<Public>,
    signed_attributes: Attributes,
    signed_attributes_der: Vec<u8>,
    digest_to_sign: Vec<u8>,
}

/// Step 1: checks the inputs and builds the signed attributes (DER `SET OF Attribute`, the
/// form that is hashed and signed) and their digest.
pub fn prepare(input: &CadesInput<'_>) -> Result<PreparedCades, CadesError> {
    prepare_with(input, true)
}

/// [`prepare`] for a PAdES signature (ETSI EN 319 142-1 5.3): the same signed attributes
/// without signing-time, since the claimed signing time is the signature dictionary's `/M`.
/// `input.signing_time` is not used.
pub fn prepare_pades(input: &CadesInput<'_>) -> Result<PreparedCades, CadesError> {
    prepare_with(input, false)
}

fn prepare_with(
    input: &CadesInput<'_>,
    with_signing_time: bool,
) -> Result<PreparedCades, CadesError> {
    let hash = input.hash;
    if input.document_digest.len() != hash.output_len() {
        return Err(CadesError::DigestLength {
            hash,
            want: hash.output_len(),
            got: input.document_digest.len(),
        });
    }
    let cert_err = |which| {
        move |e: der::Error| CadesError::Certificate {
            which,
            reason: e.to_string(),
        }
    };
    let signer = Certificate::from_der(input.signer_certificate_der).map_err(cert_err("signer"))?;
    let issuer =
        Certificate::from_der(input.issuer_certificate_der).map_err(cert_err("issuing CA"))?;
    let ossl_err = |which| {
        move |e: openssl::error::ErrorStack| CadesError::Certificate {
            which,
            reason: e.to_string(),
        }
    };
    let signer_x509 = X509::from_der(input.signer_certificate_der).map_err(ossl_err("signer"))?;
    let issuer_x509 =
        X509::from_der(input.issuer_certificate_der).map_err(ossl_err("issuing CA"))?;
    if signer.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Err(CadesError::WrongIssuer(
            "its subject is not the signer certificate's issuer".into(),
        ));
    }
    let issuer_key = issuer_x509.public_key().map_err(ossl_err("issuing CA"))?;
    if !signer_x509.verify(&issuer_key).unwrap_or(false) {
        return Err(CadesError::WrongIssuer(
            "the signer certificate's signature does not verify with its key".into(),
        ));
    }
    let signer_key = signer_x509.public_key().map_err(ossl_err("signer"))?;
    if signer_key.id() != Id::RSA {
        return Err(CadesError::NotRsa);
    }

    let time =
        Time::try_from(input.signing_time).map_err(|e| CadesError::SigningTime(e.to_string()))?;
    let cert_id = EssCertIdV2 {
        hash_algorithm: (hash != DocumentHash::Sha256).then(|| digest_algorithm(hash)),
        cert_hash: OctetString::new(hash.digest(input.signer_certificate_der)).map_err(enc)?,
        issuer_serial: Some(IssuerSerial {
            issuer: vec![GeneralName::DirectoryName(
                signer.tbs_certificate().issuer().clone(),
            )],
            serial_number: signer.tbs_certificate().serial_number().clone(),
        }),
    };
    let signing_certificate = SigningCertificateV2 {
        certs: vec![cert_id],
    };
    let mut attrs = vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA).map_err(enc)?)?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(input.document_digest).map_err(enc)?)
                .map_err(enc)?,
        )?,
        attribute(
            ID_AA_SIGNING_CERTIFICATE_V2,
            Any::encode_from(&signing_certificate).map_err(enc)?,
        )?,
    ];
    if with_signing_time {
        attrs.push(attribute(
            ID_SIGNING_TIME,
            Any::encode_from(&time).map_err(enc)?,
        )?);
    }
    // A SetOfVec sorts its elements into DER order: the bytes signed here are the bytes the
    // SignerInfo carries under its [0] tag.
    let signed_attributes = Attributes::try_from(attrs).map_err(enc)?;
    let signed_attributes_der = signed_attributes.to_der().map_err(enc)?;
    let digest_to_sign = hash.digest(&signed_attributes_der);
    Ok(PreparedCades {
        hash,
        scheme: input.scheme,
        signer,
        issuer,
        signer_key,
        signed_attributes,
        signed_attributes_der,
        digest_to_sign,
    })
}

impl PreparedCades {
    /// The DER of the signed attributes (`SET OF Attribute`).
    pub fn signed_attributes_der(&self) -> &[u8] {
        &self.signed_attributes_der
    }

    /// The digest of the signed attributes with the signature's hash: what the RP API signs
    /// (RAW_DIGEST_SIGNATURE).
    pub fn digest_to_sign(&self) -> &[u8] {
        &self.digest_to_sign
    }

    /// The hash algorithm.
    pub fn hash(&self) -> DocumentHash {
        self.hash
    }

    /// The signature scheme.
    pub fn scheme(&self) -> CadesScheme {
        self.scheme
    }

    /// Step 2: checks `signature` (its length, and that it verifies over the signed
    /// attributes with the signer certificate's key and the chosen scheme) and returns the
    /// DER of the detached CAdES-B-B signature: a ContentInfo holding the SignedData.
    pub fn finish(self, signature: &[u8]) -> Result<Vec<u8>, CadesError> {
        let want = self.signer_key.size();
        if signature.len() != want {
            return Err(CadesError::SignatureLength {
                want,
                got: signature.len(),
            });
        }
        if !self.verifies(signature) {
            return Err(CadesError::BadSignature);
        }
        let tbs = self.signer.tbs_certificate();
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer().clone(),
                serial_number: tbs.serial_number().clone(),
            }),
            digest_alg: digest_algorithm(self.hash),
            signed_attrs: Some(self.signed_attributes),
            signature_algorithm: signature_algorithm(self.hash, self.scheme)?,
            signature: OctetString::new(signature).map_err(enc)?,
            unsigned_attrs: None,
        };
        let signed_data = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![digest_algorithm(self.hash)])
                .map_err(enc)?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_DATA,
                econtent: None,
            },
            certificates: Some(
                CertificateSet::try_from(vec![
                    cms::cert::CertificateChoices::Certificate(self.signer),
                    cms::cert::CertificateChoices::Certificate(self.issuer),
                ])
                .map_err(enc)?,
            ),
            crls: None,
            signer_infos: SignerInfos::try_from(vec![signer_info]).map_err(enc)?,
        };
        ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&signed_data).map_err(enc)?,
        }
        .to_der()
        .map_err(enc)
    }

    /// Whether `signature` verifies over the signed attributes (OpenSSL, independent of the
    /// code that made it).
    fn verifies(&self, signature: &[u8]) -> bool {
        let check = || -> Result<bool, openssl::error::ErrorStack> {
            let mut v = Verifier::new(md(self.hash), &self.signer_key)?;
            if self.scheme == CadesScheme::RsassaPss {
                v.set_rsa_padding(Padding::PKCS1_PSS)?;
                v.set_rsa_mgf1_md(md(self.hash))?;
                v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(self.hash.output_len() as i32))?;
            }
            v.update(&self.signed_attributes_der)?;
            v.verify(signature)
        };
        check().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests;
