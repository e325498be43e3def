//! Format checking (ETSI EN 319 102-1, 5.2.2) of a detached CAdES signature: a ContentInfo
//! holding a CMS SignedData with one SignerInfo, no encapsulated content, and signed
//! attributes with content-type and message-digest. Everything later steps need is read here,
//! once; a structure that does not parse is a [`FormatError`] (FORMAT_FAILURE).

use std::time::SystemTime;

use base64::Engine as _;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::SignerInfo;
use const_oid::ObjectIdentifier as Oid;
use der::asn1::OctetString;
use der::{Decode, Encode, Tagged as _};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use crate::oids;

/// id-aa-signingCertificate (RFC 2634, ESS v1: SHA-1 certificate hash).
pub const ID_AA_SIGNING_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.12");
/// id-aa-signatureTimeStampToken (RFC 3161 appendix A): the B-T time-stamp, unsigned.
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");
/// id-ri-ocsp-response (RFC 5940): an OCSP response among SignedData.crls.
pub const ID_RI_OCSP_RESPONSE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.16.2");

/// SignedData (RFC 5652 5.1) with its `crls` kept as raw RevocationInfoChoice elements.
/// cms 0.3's `OtherRevocationInfoFormat` reads otherRevInfoFormat as an AlgorithmIdentifier
/// (a SEQUENCE) instead of an OBJECT IDENTIFIER, so it can neither read nor write an RFC 5940
/// OCSP entry; [`revocation_entries`] and [`ocsp_revocation_entry`] do it right.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
pub struct SignedDataRaw {
    /// CMSVersion (5 when `crls` holds an "other" entry).
    pub version: cms::content_info::CmsVersion,
    /// DigestAlgorithmIdentifiers.
    pub digest_algorithms: cms::signed_data::DigestAlgorithmIdentifiers,
    /// EncapsulatedContentInfo.
    pub encap_content_info: cms::signed_data::EncapsulatedContentInfo,
    /// CertificateSet.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub certificates: Option<cms::signed_data::CertificateSet>,
    /// RevocationInfoChoices, each element as found (a CertificateList, or `[1]` other).
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub crls: Option<der::asn1::SetOfVec<der::Any>>,
    /// SignerInfos.
    pub signer_infos: cms::signed_data::SignerInfos,
}

/// OtherRevocationInfoFormat (RFC 5652 10.2.1) as the standard defines it.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
pub struct OtherRevocationInfo {
    /// otherRevInfoFormat, e.g. [`ID_RI_OCSP_RESPONSE`].
    pub format: Oid,
    /// otherRevInfo (for id-ri-ocsp-response: an OCSPResponse).
    pub info: der::Any,
}

/// One RevocationInfoChoice.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum RevocationEntry {
    /// A CRL (DER CertificateList).
    Crl(Vec<u8>),
    /// `other [1] IMPLICIT OtherRevocationInfoFormat`.
    Other(OtherRevocationInfo),
}

const OTHER_TAG: der::Tag = der::Tag::ContextSpecific {
    constructed: true,
    number: der::TagNumber(1),
};

/// Reads the elements of SignedData.crls.
pub fn revocation_entries(crls: &[der::Any]) -> Result<Vec<RevocationEntry>, FormatError> {
    crls.iter()
        .map(|a| match a.tag() {
            der::Tag::Sequence => Ok(RevocationEntry::Crl(
                a.to_der().map_err(fmt_err("embedded CRL"))?,
            )),
            t if t == OTHER_TAG => {
                let seq = der::Any::new(der::Tag::Sequence, a.value())
                    .map_err(fmt_err("embedded revocation data"))?;
                Ok(RevocationEntry::Other(
                    seq.decode_as()
                        .map_err(fmt_err("embedded revocation data"))?,
                ))
            }
            t => Err(FormatError(format!(
                "embedded revocation data: unexpected tag {t}"
            ))),
        })
        .collect()
}

/// The RevocationInfoChoice `other [1] { id-ri-ocsp-response, OCSPResponse }` (RFC 5940
/// 4.1) for the DER OCSPResponse `ocsp_response`.
pub fn ocsp_revocation_entry(ocsp_response: &[u8]) -> Result<der::Any, der::Error> {
    let other = OtherRevocationInfo {
        format: ID_RI_OCSP_RESPONSE,
        info: der::Any::from_der(ocsp_response)?,
    };
    der::Any::new(OTHER_TAG, der::Any::encode_from(&other)?.value())
}

/// Largest signature file read (a CAdES signature with certificates, revocation data and a
/// time-stamp is a few KiB to a few hundred KiB).
pub const MAX_SIGNATURE_BYTES: usize = 4 * 1024 * 1024;

/// Why a signature is not in the expected format (FORMAT_FAILURE). The text names the part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

fn fmt_err(what: &str) -> impl Fn(der::Error) -> FormatError + '_ {
    move |e| FormatError(format!("{what}: {e}"))
}

/// An embedded certificate: parsed, with its DER.
#[derive(Clone, Debug)]
pub struct EmbeddedCert {
    /// The parsed certificate.
    pub cert: Certificate,
    /// Its DER encoding as found.
    pub der: Vec<u8>,
}

/// The reference to the signing certificate in the signed attributes (ESS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningCertRef {
    /// The hash algorithm of `cert_hash` (SHA-1 for v1, SHA-256 by default for v2).
    pub hash_oid: Oid,
    /// The certificate's hash.
    pub cert_hash: Vec<u8>,
    /// issuerSerial, DER of (issuer GeneralNames, serial INTEGER), if present.
    pub issuer_serial: Option<(Vec<x509_cert::ext::pkix::name::GeneralName>, Vec<u8>)>,
    /// Whether it came from signing-certificate-v2.
    pub v2: bool,
}

/// A parsed detached CAdES signature.
#[derive(Clone, Debug)]
pub struct ParsedSignature {
    /// The one SignerInfo.
    pub signer_info: SignerInfo,
    /// The certificates embedded in the SignedData.
    pub certificates: Vec<EmbeddedCert>,
    /// Embedded CRLs (DER CertificateList).
    pub crls: Vec<Vec<u8>>,
    /// Embedded OCSP responses (DER OCSPResponse, id-ri-ocsp-response).
    pub ocsp_responses: Vec<Vec<u8>>,
    /// The DER of the signed attributes as a SET OF (what the signature covers).
    pub signed_attrs_der: Vec<u8>,
    /// The message-digest attribute's value.
    pub message_digest: Vec<u8>,
    /// The claimed signing time (signing-time attribute), if present.
    pub signing_time: Option<SystemTime>,
    /// signing-certificate-v2 (or v1) from the signed attributes, if present.
    pub signing_cert_ref: Option<SigningCertRef>,
    /// The DER of the signature time-stamp token (unsigned attribute), if present.
    pub timestamp_token: Option<Vec<u8>>,
}

/// The DER of a CMS file given as DER or as PEM (`-----BEGIN PKCS7-----`, `CMS`, ...).
pub fn der_from_pem_or_der(bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    let trimmed = bytes.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN ") {
        return Ok(bytes.to_vec());
    }
    let text = std::str::from_utf8(trimmed)
        .map_err(|_| FormatError("PEM signature is not ASCII text".into()))?;
    let body: String = text
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| FormatError(format!("PEM signature: bad base64: {e}")))
}

/// The only value of a signed or unsigned attribute; several values are a format error.
fn single_value<'a>(attr: &'a Attribute, name: &str) -> Result<&'a der::Any, FormatError> {
    let mut values = attr.values.iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Ok(v),
        _ => Err(FormatError(format!(
            "the {name} attribute must have exactly one value"
        ))),
    }
}

/// ESSCertIDv2 (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<x509_cert::spki::AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// ESSCertID (RFC 2634): SHA-1.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// IssuerSerial (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct IssuerSerial {
    issuer: Vec<x509_cert::ext::pkix::name::GeneralName>,
    serial_number: x509_cert::serial_number::SerialNumber,
}

/// SigningCertificateV2 / SigningCertificate: the certificate list, policies ignored.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<der::Any>,
}

#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct SigningCertificateV1 {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<der::Any>,
}

fn issuer_serial(
    is: Option<IssuerSerial>,
) -> Option<(Vec<x509_cert::ext::pkix::name::GeneralName>, Vec<u8>)> {
    is.map(|is| (is.issuer, is.serial_number.as_bytes().to_vec()))
}

/// Parses `der_bytes` (a ContentInfo) as a detached CAdES signature.
pub fn parse(der_bytes: &[u8]) -> Result<ParsedSignature, FormatError> {
    if der_bytes.len() > MAX_SIGNATURE_BYTES {
        return Err(FormatError(format!(
            "the signature is larger than {MAX_SIGNATURE_BYTES} bytes"
        )));
    }
    let ci = ContentInfo::from_der(der_bytes).map_err(fmt_err("not a CMS ContentInfo"))?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return Err(FormatError(format!(
            "the CMS content type is {}, not SignedData",
            ci.content_type
        )));
    }
    let sd: SignedDataRaw = ci
        .content
        .decode_as()
        .map_err(fmt_err("not a CMS SignedData"))?;
    if sd.encap_content_info.econtent.is_some() {
        return Err(FormatError(
            "the signature encapsulates its content; a detached signature was expected".into(),
        ));
    }
    let mut infos = sd.signer_infos.0.iter();
    let signer_info = match (infos.next(), infos.next()) {
        (Some(si), None) => si.clone(),
        (None, _) => return Err(FormatError("the SignedData has no SignerInfo".into())),
        _ => {
            return Err(FormatError(
                "the SignedData has more than one SignerInfo".into(),
            ));
        }
    };

    let mut certificates = Vec::new();
    for choice in sd.certificates.iter().flat_map(|s| s.0.iter()) {
        if let CertificateChoices::Certificate(cert) = choice {
            let der = cert.to_der().map_err(fmt_err("embedded certificate"))?;
            certificates.push(EmbeddedCert {
                cert: cert.clone(),
                der,
            });
        }
    }
    let mut crls = Vec::new();
    let mut ocsp_responses = Vec::new();
    let raw: Vec<der::Any> = sd.crls.iter().flat_map(|s| s.iter().cloned()).collect();
    for entry in revocation_entries(&raw)? {
        match entry {
            RevocationEntry::Crl(crl) => crls.push(crl),
            RevocationEntry::Other(other) => {
                if other.format == ID_RI_OCSP_RESPONSE {
                    ocsp_responses.push(other.info.to_der().map_err(fmt_err("embedded OCSP"))?);
                }
            }
        }
    }

    let attrs = signer_info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| FormatError("the SignerInfo has no signed attributes".into()))?;
    let signed_attrs_der = attrs.to_der().map_err(fmt_err("signed attributes"))?;
    let find = |oid: Oid| attrs.iter().filter(move |a| a.oid == oid);
    let one = |oid: Oid, name: &str| -> Result<Option<&Attribute>, FormatError> {
        let mut it = find(oid);
        match (it.next(), it.next()) {
            (a, None) => Ok(a),
            _ => Err(FormatError(format!(
                "the {name} attribute appears more than once"
            ))),
        }
    };

    let content_type = one(oids::ID_CONTENT_TYPE, "content-type")?
        .ok_or_else(|| FormatError("the content-type signed attribute is missing".into()))?;
    let ct: Oid = single_value(content_type, "content-type")?
        .decode_as()
        .map_err(fmt_err("content-type attribute"))?;
    if ct != sd.encap_content_info.econtent_type {
        return Err(FormatError(
            "the content-type attribute differs from the SignedData's content type".into(),
        ));
    }
    let md_attr = one(oids::ID_MESSAGE_DIGEST, "message-digest")?
        .ok_or_else(|| FormatError("the message-digest signed attribute is missing".into()))?;
    let message_digest: OctetString = single_value(md_attr, "message-digest")?
        .decode_as()
        .map_err(fmt_err("message-digest attribute"))?;

    let signing_time = match one(oids::ID_SIGNING_TIME, "signing-time")? {
        None => None,
        Some(a) => {
            let t: Time = single_value(a, "signing-time")?
                .decode_as()
                .map_err(fmt_err("signing-time attribute"))?;
            Some(t.to_system_time())
        }
    };

    let signing_cert_ref =
        if let Some(a) = one(oids::ID_AA_SIGNING_CERTIFICATE_V2, "signing-certificate-v2")? {
            let sc: SigningCertificateV2 = single_value(a, "signing-certificate-v2")?
                .decode_as()
                .map_err(fmt_err("signing-certificate-v2 attribute"))?;
            let first = sc.certs.into_iter().next().ok_or_else(|| {
                FormatError("the signing-certificate-v2 attribute names no certificate".into())
            })?;
            Some(SigningCertRef {
                hash_oid: first.hash_algorithm.map(|a| a.oid).unwrap_or(oids::SHA256),
                cert_hash: first.cert_hash.as_bytes().to_vec(),
                issuer_serial: issuer_serial(first.issuer_serial),
                v2: true,
            })
        } else if let Some(a) = one(ID_AA_SIGNING_CERTIFICATE, "signing-certificate")? {
            let sc: SigningCertificateV1 = single_value(a, "signing-certificate")?
                .decode_as()
                .map_err(fmt_err("signing-certificate attribute"))?;
            let first = sc.certs.into_iter().next().ok_or_else(|| {
                FormatError("the signing-certificate attribute names no certificate".into())
            })?;
            Some(SigningCertRef {
                hash_oid: oids::SHA1,
                cert_hash: first.cert_hash.as_bytes().to_vec(),
                issuer_serial: issuer_serial(first.issuer_serial),
                v2: false,
            })
        } else {
            None
        };

    let mut timestamp_token = None;
    for a in signer_info.unsigned_attrs.iter().flat_map(|u| u.iter()) {
        if a.oid == ID_AA_SIGNATURE_TIME_STAMP_TOKEN {
            // The first time-stamp is the one checked; further ones add nothing at B-T.
            if timestamp_token.is_none() {
                let v = a
                    .values
                    .iter()
                    .next()
                    .ok_or_else(|| FormatError("an empty time-stamp attribute".into()))?;
                timestamp_token = Some(v.to_der().map_err(fmt_err("time-stamp token"))?);
            }
        }
    }

    Ok(ParsedSignature {
        signer_info,
        certificates,
        crls,
        ocsp_responses,
        signed_attrs_der,
        message_digest: message_digest.as_bytes().to_vec(),
        signing_time,
        signing_cert_ref,
        timestamp_token,
    })
}
