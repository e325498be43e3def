//! RFC 3161 time stamps: parsing a `TimeStampReq`, building the `TSTInfo` and the
//! `TimeStampResp` with its CMS `SignedData` token (RFC 5652, RFC 5816 signing-certificate-v2),
//! and rejections as `PKIStatusInfo` with a `PKIFailureInfo`.
//!
//! Pure encoding: the time, the serial number and the signer come in as arguments; the
//! signature is made by a [`CaSigner`] (in production the TSA key in the HSM).
//!
//! ```text
//!   TimeStampReq DER ──▶ parse_time_stamp_request ──▶ TimeStampQuery ─┐
//!                               │ (parsed, but refused)               ▼
//!                               └──▶ TspRequestError::Rejected   time_stamp_response
//!                                        │                           │ (CaSigner signs the
//!                                        ▼                           ▼  signed attributes)
//!                          time_stamp_rejection ──▶ TimeStampResp DER (granted / rejection)
//! ```

use std::time::SystemTime;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, GeneralizedTime, Int, OctetString, SetOfVec};
use der::{Decode, Encode, Sequence, Tagged};
use sha2::{Digest, Sha256, Sha384};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;

use super::{CaSigner, PkiError, check_signer_matches, oids, whole_seconds};

/// Largest `TimeStampReq` accepted (a SHA-512 request with a policy and a nonce is ~120 bytes).
pub const MAX_TSP_REQUEST_BYTES: usize = 4 * 1024;
/// Largest nonce accepted, in bytes of its INTEGER encoding (OpenSSL sends 8).
const MAX_NONCE_BYTES: usize = 32;
/// The accuracy of `genTime` we claim: the clock is NTP-synchronised and genTime is whole
/// seconds, truncated.
pub const ACCURACY_SECONDS: u32 = 1;

use super::oids::{
    ID_AA_SIGNING_CERTIFICATE_V2, ID_CONTENT_TYPE, ID_CT_TST_INFO, ID_MESSAGE_DIGEST,
    ID_SIGNED_DATA,
};

/// Our time-stamp policy: `<arc>.2.1` under the configured policy arc (certificate policies
/// are `<arc>.1.*`).
pub fn tsa_policy_oid(arc: ObjectIdentifier) -> Result<ObjectIdentifier, PkiError> {
    arc.push_arc(2)
        .and_then(|o| o.push_arc(1))
        .map_err(|_| PkiError::Malformed("policy arc too long"))
}

/// Hash algorithms accepted in a request's messageImprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TspHash {
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl TspHash {
    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            oids::SHA256 => Some(Self::Sha256),
            oids::SHA384 => Some(Self::Sha384),
            oids::SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// PKIFailureInfo bits (RFC 3161 2.4.2) we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkiFailureInfo {
    /// Unrecognized or unsupported algorithm identifier.
    BadAlg = 0,
    /// Transaction not permitted or supported.
    BadRequest = 2,
    /// The data submitted has the wrong format.
    BadDataFormat = 5,
    /// The requested TSA policy is not supported.
    UnacceptedPolicy = 15,
    /// The requested extension is not supported.
    UnacceptedExtension = 16,
    /// The request cannot be handled due to a system failure.
    SystemFailure = 25,
}

impl PkiFailureInfo {
    /// The DER BIT STRING of this single named bit (trailing zero bits removed).
    fn bit_string(self) -> Result<BitString, der::Error> {
        let bit = self as usize;
        let mut bytes = vec![0u8; bit / 8 + 1];
        bytes[bit / 8] = 0x80 >> (bit % 8);
        BitString::new(7 - (bit % 8) as u8, bytes)
    }
}

/// A request that decoded as a `TimeStampReq` and that we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampQuery {
    /// The hash algorithm of the imprint.
    pub hash: TspHash,
    /// The imprint's AlgorithmIdentifier exactly as sent (echoed in the TSTInfo).
    pub imprint_algorithm: AlgorithmIdentifierOwned,
    /// The hashed message.
    pub imprint: Vec<u8>,
    /// The requested policy (ours, if present).
    pub policy: Option<ObjectIdentifier>,
    /// The nonce's INTEGER content bytes, echoed in the TSTInfo.
    pub nonce: Option<Vec<u8>>,
    /// Whether the TSA certificate must be included in the token.
    pub cert_req: bool,
}

/// Why a request is not answered with a time stamp.
#[derive(Debug, thiserror::Error)]
pub enum TspRequestError {
    /// Not a DER `TimeStampReq`, or larger than [`MAX_TSP_REQUEST_BYTES`]: an HTTP 400/413,
    /// not an RFC 3161 answer.
    #[error("not a DER TimeStampReq: {0}")]
    NotATimeStampReq(String),
    /// A `TimeStampReq` we refuse: answered with PKIStatus rejection and this failure info.
    #[error("time-stamp request rejected ({failure:?}): {reason}")]
    Rejected {
        /// The PKIFailureInfo bit.
        failure: PkiFailureInfo,
        /// Why, in English (sent as the statusString).
        reason: &'static str,
    },
}

fn rejected(failure: PkiFailureInfo, reason: &'static str) -> TspRequestError {
    TspRequestError::Rejected { failure, reason }
}

/// MessageImprint (RFC 3161 2.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

/// TimeStampReq (RFC 3161 2.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    req_policy: Option<ObjectIdentifier>,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(default = "Default::default")]
    cert_req: bool,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    extensions: Option<Vec<Extension>>,
}

/// Accuracy (RFC 3161 2.4.2), seconds only.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Accuracy {
    #[asn1(optional = "true")]
    seconds: Option<u32>,
}

/// TSTInfo (RFC 3161 2.4.2); `ordering` is always FALSE (the default, so absent) and there
/// are no extensions.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TstInfo {
    version: u8,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: u64,
    gen_time: GeneralizedTime,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
}

/// PKIStatusInfo (RFC 3161 2.4.2 / RFC 4210).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct PkiStatusInfo {
    status: u8,
    /// PKIFreeText: SEQUENCE OF UTF8String.
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// TimeStampResp (RFC 3161 2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    time_stamp_token: Option<ContentInfo>,
}

/// ESSCertIDv2 (RFC 5035) with the default hash algorithm SHA-256 (so absent).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(super) struct EssCertIdV2 {
    pub(super) cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub(super) issuer_serial: Option<IssuerSerial>,
}

/// IssuerSerial (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(super) struct IssuerSerial {
    pub(super) issuer: Vec<GeneralName>,
    pub(super) serial_number: x509_cert::serial_number::SerialNumber,
}

/// SigningCertificateV2 (RFC 5035), without policies.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(super) struct SigningCertificateV2 {
    pub(super) certs: Vec<EssCertIdV2>,
}

/// PKIStatus granted.
const STATUS_GRANTED: u8 = 0;
/// PKIStatus rejection.
const STATUS_REJECTION: u8 = 2;

/// Parses and checks a `TimeStampReq`: version 1, SHA-256/384/512 with a digest of that
/// length, no policy or `our_policy`, a nonce of at most 32 bytes, no extensions.
pub fn parse_time_stamp_request(
    der: &[u8],
    our_policy: ObjectIdentifier,
) -> Result<TimeStampQuery, TspRequestError> {
    if der.len() > MAX_TSP_REQUEST_BYTES {
        return Err(TspRequestError::NotATimeStampReq(format!(
            "larger than {MAX_TSP_REQUEST_BYTES} bytes"
        )));
    }
    let req = TimeStampReq::from_der(der)
        .map_err(|e| TspRequestError::NotATimeStampReq(e.to_string()))?;
    if req.version != 1 {
        return Err(rejected(
            PkiFailureInfo::BadDataFormat,
            "only TimeStampReq version 1 is supported",
        ));
    }
    let alg = &req.message_imprint.hash_algorithm;
    let hash = TspHash::from_oid(&alg.oid).ok_or(rejected(
        PkiFailureInfo::BadAlg,
        "the message imprint must be SHA-256, SHA-384 or SHA-512",
    ))?;
    if alg
        .parameters
        .as_ref()
        .is_some_and(|p| p.tag() != der::Tag::Null || !p.value().is_empty())
    {
        return Err(rejected(
            PkiFailureInfo::BadAlg,
            "hash algorithm parameters must be absent or NULL",
        ));
    }
    let imprint = req.message_imprint.hashed_message.as_bytes().to_vec();
    if imprint.len() != hash.digest_len() {
        return Err(rejected(
            PkiFailureInfo::BadDataFormat,
            "the hashed message does not have the length of its hash algorithm",
        ));
    }
    if req.req_policy.is_some_and(|p| p != our_policy) {
        return Err(rejected(
            PkiFailureInfo::UnacceptedPolicy,
            "this TSA only issues time stamps under its own policy",
        ));
    }
    if req
        .nonce
        .as_ref()
        .is_some_and(|n| n.as_bytes().len() > MAX_NONCE_BYTES)
    {
        return Err(rejected(
            PkiFailureInfo::BadDataFormat,
            "the nonce is longer than 32 bytes",
        ));
    }
    if req.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(rejected(
            PkiFailureInfo::UnacceptedExtension,
            "this TSA supports no request extensions",
        ));
    }
    Ok(TimeStampQuery {
        hash,
        imprint_algorithm: alg.clone(),
        imprint,
        policy: req.req_policy,
        nonce: req.nonce.map(|n| n.as_bytes().to_vec()),
        cert_req: req.cert_req,
    })
}

/// A `TimeStampResp` with PKIStatus rejection, `reason` as statusString and the failure bit.
pub fn time_stamp_rejection(failure: PkiFailureInfo, reason: &str) -> Vec<u8> {
    let resp = (|| -> Result<Vec<u8>, der::Error> {
        TimeStampResp {
            status: PkiStatusInfo {
                status: STATUS_REJECTION,
                status_string: Some(vec![reason.to_owned()]),
                fail_info: Some(failure.bit_string()?),
            },
            time_stamp_token: None,
        }
        .to_der()
    })();
    // SEQUENCE { SEQUENCE { INTEGER 2 } }: the bare rejection if the text does not encode.
    resp.unwrap_or_else(|_| vec![0x30, 0x05, 0x30, 0x03, 0x02, 0x01, STATUS_REJECTION])
}

/// Everything a granted time stamp is made from, besides the request.
pub struct TsaToken<'a> {
    /// The TSA key (the HSM in production).
    pub signer: &'a dyn CaSigner,
    /// The TSA certificate (extendedKeyUsage id-kp-timeStamping, critical).
    pub certificate: &'a Certificate,
    /// The policy of the TSTInfo.
    pub policy: ObjectIdentifier,
    /// The TSTInfo serial number: unique per TSA and increasing.
    pub serial: u64,
    /// genTime (whole seconds are used).
    pub time: SystemTime,
}

impl std::fmt::Debug for TsaToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsaToken")
            .field("policy", &self.policy)
            .field("serial", &self.serial)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

/// A granted `TimeStampResp`: a TSTInfo (policy, the request's imprint, serial, genTime,
/// accuracy, the nonce echoed, the TSA's name) in a SignedData signed by `token.signer`
/// (SHA-384; signed attributes content-type, message-digest, signing-certificate-v2), with
/// the TSA certificate included when the request asked for it.
pub fn time_stamp_response(
    query: &TimeStampQuery,
    token: &TsaToken<'_>,
) -> Result<Vec<u8>, PkiError> {
    check_signer_matches(token.signer, token.certificate)?;
    if token.serial == 0 {
        return Err(PkiError::Malformed(
            "TSTInfo serial number must be positive",
        ));
    }
    let cert = token.certificate;
    let tbs = cert.tbs_certificate();
    let tst = TstInfo {
        version: 1,
        policy: token.policy,
        message_imprint: MessageImprint {
            hash_algorithm: query.imprint_algorithm.clone(),
            hashed_message: OctetString::new(query.imprint.clone())?,
        },
        serial_number: token.serial,
        gen_time: GeneralizedTime::from_unix_duration(whole_seconds(token.time)?)?,
        accuracy: Some(Accuracy {
            seconds: Some(ACCURACY_SECONDS),
        }),
        nonce: query.nonce.as_deref().map(Int::new).transpose()?,
        tsa: Some(GeneralName::DirectoryName(tbs.subject().clone())),
    };
    let tst_der = tst.to_der()?;

    let sha384 = AlgorithmIdentifierOwned {
        oid: oids::SHA384,
        parameters: None,
    };
    let cert_der = cert.to_der()?;
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(Sha256::digest(&cert_der).to_vec())?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                serial_number: tbs.serial_number().clone(),
            }),
        }],
    };
    let signed_attrs = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, &ID_CT_TST_INFO)?,
        attribute(
            ID_MESSAGE_DIGEST,
            &OctetString::new(Sha384::digest(&tst_der).to_vec())?,
        )?,
        attribute(ID_AA_SIGNING_CERTIFICATE_V2, &signing_certificate)?,
    ])?;
    // The signature covers the DER of the attributes as a SET (RFC 5652 5.4).
    let signature = token.signer.sign(&signed_attrs.to_der()?)?;
    if signature.is_empty() {
        return Err(PkiError::Signing("empty signature".into()));
    }
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: sha384.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: super::signature_algorithm(token.signer)?,
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let certificates = if query.cert_req {
        Some(CertificateSet::try_from(vec![
            CertificateChoices::Certificate(cert.clone()),
        ])?)
    } else {
        None
    };
    let signed_data = SignedData {
        version: CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![sha384])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_CT_TST_INFO,
            econtent: Some(Any::from_der(&OctetString::new(tst_der)?.to_der()?)?),
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer_info])?,
    };
    let token = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::from_der(&signed_data.to_der()?)?,
    };
    Ok(TimeStampResp {
        status: PkiStatusInfo {
            status: STATUS_GRANTED,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(token),
    }
    .to_der()?)
}

/// A signed attribute with one value.
pub(super) fn attribute(oid: ObjectIdentifier, value: &impl Encode) -> Result<Attribute, PkiError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![Any::from_der(&value.to_der()?)?])?,
    })
}

#[cfg(test)]
#[path = "tsp_tests.rs"]
mod tests;
