//! Signature time-stamps (B-T): an RFC 3161 client, and the token added to a CAdES
//! signature as the unsigned attribute id-aa-signatureTimeStampToken (RFC 3161 appendix A,
//! ETSI EN 319 122-1 5.3).
//!
//! ```text
//!  signature value ─H─▶ messageImprint ─┐  random nonce, certReq
//!                                       ▼
//!              TimeStampReq DER ──POST application/timestamp-query──▶ TSA
//!                                                                     │
//!  TimeStampToken ◀─ check_response: status granted, SignedData over TSTInfo,
//!                    nonce and messageImprint as asked, CMS signature verifies
//!                    with the embedded TSA certificate (OpenSSL)
//!       │
//!       └─ add_signature_time_stamp(p7s, token) ─▶ the .p7s with the unsigned attribute
//! ```
//!
//! The check here is the client's: that the answer belongs to the request and is signed by
//! the certificate it carries. Whether that certificate chains to a trusted TSA is the
//! verifier's question (`openssl ts -verify`, pyHanko).

use std::time::{Duration, SystemTime};

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfos};
use const_oid::ObjectIdentifier as Oid;
use der::asn1::{Any, BitString, GeneralizedTime, Int, OctetString, SetOfVec};
use der::{Decode, Encode, Sequence};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::stack::Stack;
use openssl::x509::X509;
use rand_core::RngCore as _;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::DocumentHash;
use crate::oids;

/// id-aa-signatureTimeStampToken (RFC 3161 appendix A): the unsigned attribute holding a
/// time-stamp token over the SignerInfo's signature value.
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// Largest `TimeStampResp` accepted (ours are ~2 KiB with the TSA certificate).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Time allowed for the whole TSA exchange.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Why a time stamp could not be obtained or added. Messages name the step at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeStampError {
    /// The TSA could not be reached or the exchange failed.
    #[error("the time-stamp authority is unreachable: {0}")]
    Unreachable(String),
    /// The TSA answered with an HTTP error.
    #[error("the time-stamp authority answered HTTP {0}")]
    HttpStatus(u16),
    /// The answer is larger than [`MAX_RESPONSE_BYTES`].
    #[error("the time-stamp response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// The answer is not a DER TimeStampResp / token of the expected shape.
    #[error("malformed time-stamp response: {0}")]
    Malformed(String),
    /// The TSA refused the request (PKIStatus other than granted).
    #[error("the time-stamp authority refused the request (status {status}{text})")]
    Rejected {
        /// The PKIStatus (2 = rejection).
        status: u8,
        /// ": " and the statusString and failInfo bits, if any.
        text: String,
    },
    /// The token's nonce is not the request's.
    #[error("the time-stamp token's nonce is not the one sent")]
    NonceMismatch,
    /// The token's messageImprint is not the request's.
    #[error("the time-stamp token is over another digest than the one sent")]
    ImprintMismatch,
    /// The token does not verify with the TSA certificate it carries.
    #[error("the time-stamp token's signature does not verify: {0}")]
    BadSignature(String),
    /// The CAdES signature to stamp is not what was expected.
    #[error("the CAdES signature cannot be time-stamped: {0}")]
    Signature(String),
}

fn malformed(e: impl std::fmt::Display) -> TimeStampError {
    TimeStampError::Malformed(e.to_string())
}

/// MessageImprint (RFC 3161 2.4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct MessageImprint {
    pub(crate) hash_algorithm: AlgorithmIdentifierOwned,
    pub(crate) hashed_message: OctetString,
}

/// TimeStampReq (RFC 3161 2.4.1), without policy and extensions.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(default = "Default::default")]
    cert_req: bool,
}

/// Accuracy (RFC 3161 2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Accuracy {
    #[asn1(optional = "true")]
    seconds: Option<u32>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<u16>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<u16>,
}

/// TSTInfo (RFC 3161 2.4.2), as read here and by the validation
/// ([`crate::validation::timestamp`]).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct TstInfo {
    version: u8,
    policy: Oid,
    pub(crate) message_imprint: MessageImprint,
    serial_number: Int,
    pub(crate) gen_time: GeneralizedTime,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    pub(crate) nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    extensions: Option<Vec<Extension>>,
}

/// PKIStatusInfo (RFC 3161 2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct PkiStatusInfo {
    status: u8,
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

/// A request built by [`TimeStampRequest::new`]: its DER and what the answer must echo.
#[derive(Clone, Debug)]
pub struct TimeStampRequest {
    der: Vec<u8>,
    hash: DocumentHash,
    imprint: Vec<u8>,
    nonce: Vec<u8>,
}

impl TimeStampRequest {
    /// A request for a time stamp over `data` (hashed with `hash`), with certReq and a random
    /// 128-bit nonce.
    pub fn new(hash: DocumentHash, data: &[u8]) -> Result<Self, TimeStampError> {
        let imprint = hash.digest(data);
        let mut nonce = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut nonce);
        // Positive and minimally encoded: the first byte in 0x40..=0x7f.
        nonce[0] = (nonce[0] & 0x3f) | 0x40;
        let req = TimeStampReq {
            version: 1,
            message_imprint: MessageImprint {
                hash_algorithm: hash_algorithm(hash),
                hashed_message: OctetString::new(imprint.clone()).map_err(malformed)?,
            },
            nonce: Some(Int::new(&nonce).map_err(malformed)?),
            cert_req: true,
        };
        Ok(Self {
            der: req.to_der().map_err(malformed)?,
            hash,
            imprint,
            nonce: nonce.to_vec(),
        })
    }

    /// The DER `TimeStampReq`.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Checks a DER `TimeStampResp` against this request: status granted, a SignedData token
    /// over a TSTInfo with this request's nonce and messageImprint, whose CMS signature
    /// verifies with the TSA certificate embedded in it.
    pub fn check_response(&self, resp_der: &[u8]) -> Result<TimeStampToken, TimeStampError> {
        let resp = TimeStampResp::from_der(resp_der).map_err(malformed)?;
        if resp.status.status > 1 {
            let mut text = String::new();
            for s in resp.status.status_string.iter().flatten() {
                text.push_str(": ");
                text.push_str(s);
            }
            if let Some(bits) = &resp.status.fail_info {
                let set: Vec<String> = bits
                    .bits()
                    .enumerate()
                    .filter(|(_, b)| *b)
                    .map(|(i, _)| fail_info_name(i).to_owned())
                    .collect();
                text.push_str(&format!(" (failInfo {})", set.join(", ")));
            }
            return Err(TimeStampError::Rejected {
                status: resp.status.status,
                text,
            });
        }
        let token = resp
            .time_stamp_token
            .ok_or_else(|| malformed("status granted but no token"))?;
        let token_der = token.to_der().map_err(malformed)?;
        let checked = check_token(&token_der)?;
        if checked.imprint_hash != hash_algorithm(self.hash).oid || checked.imprint != self.imprint
        {
            return Err(TimeStampError::ImprintMismatch);
        }
        if checked.nonce.as_deref() != Some(self.nonce.as_slice()) {
            return Err(TimeStampError::NonceMismatch);
        }
        Ok(TimeStampToken {
            der: token_der,
            gen_time: checked.gen_time,
            tsa_certificate_der: checked.tsa_certificate_der,
        })
    }

    /// Sends the request to `url` (HTTP POST, `application/timestamp-query`, at most
    /// [`TIMEOUT`]) and checks the answer ([`Self::check_response`]).
    pub async fn send(&self, url: &str) -> Result<TimeStampToken, TimeStampError> {
        let unreachable = |e: reqwest::Error| TimeStampError::Unreachable(causes(e));
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(unreachable)?;
        let mut resp = http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
            .header(reqwest::header::ACCEPT, "application/timestamp-reply")
            .body(self.der.clone())
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(TimeStampError::HttpStatus(resp.status().as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(TimeStampError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(TimeStampError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        self.check_response(&body)
    }
}

/// An error and its causes on one line, without the URL.
fn causes(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The PKIFailureInfo bit names (RFC 3161 2.4.2).
fn fail_info_name(bit: usize) -> &'static str {
    match bit {
        0 => "badAlg",
        2 => "badRequest",
        5 => "badDataFormat",
        14 => "timeNotAvailable",
        15 => "unacceptedPolicy",
        16 => "unacceptedExtension",
        17 => "addInfoNotAvailable",
        25 => "systemFailure",
        _ => "other",
    }
}

/// The hash's AlgorithmIdentifier, parameters absent.
fn hash_algorithm(hash: DocumentHash) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: match hash {
            DocumentHash::Sha256 => oids::SHA256,
            DocumentHash::Sha384 => oids::SHA384,
            DocumentHash::Sha512 => oids::SHA512,
        },
        parameters: None,
    }
}

/// A checked time-stamp token: a DER ContentInfo holding a SignedData over a TSTInfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeStampToken {
    der: Vec<u8>,
    gen_time: SystemTime,
    tsa_certificate_der: Vec<u8>,
}

impl TimeStampToken {
    /// The token's DER (ContentInfo).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The TSTInfo's genTime.
    pub fn gen_time(&self) -> SystemTime {
        self.gen_time
    }

    /// The genTime as RFC 3339 in UTC (`2026-12-07T16:40:00Z`).
    pub fn gen_time_utc(&self) -> String {
        der::DateTime::from_system_time(self.gen_time)
            .map(|d| d.to_string())
            .unwrap_or_else(|_| format!("{:?}", self.gen_time))
    }

    /// The DER of the TSA certificate that signed it (embedded in the token).
    pub fn tsa_certificate_der(&self) -> &[u8] {
        &self.tsa_certificate_der
    }
}

/// What [`check_token`] reads from a token.
struct CheckedToken {
    imprint_hash: Oid,
    imprint: Vec<u8>,
    nonce: Option<Vec<u8>>,
    gen_time: SystemTime,
    tsa_certificate_der: Vec<u8>,
}

/// Checks that `token_der` is a ContentInfo with a SignedData over a TSTInfo whose signature
/// verifies with the certificate it embeds, and reads the TSTInfo.
fn check_token(token_der: &[u8]) -> Result<CheckedToken, TimeStampError> {
    let ci = ContentInfo::from_der(token_der).map_err(malformed)?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return Err(malformed("the token is not a SignedData"));
    }
    let sd: SignedData = ci.content.decode_as().map_err(malformed)?;
    if sd.encap_content_info.econtent_type != oids::ID_CT_TST_INFO {
        return Err(malformed("the token's content is not a TSTInfo"));
    }
    let certs: Vec<Vec<u8>> = sd
        .certificates
        .iter()
        .flat_map(|s| s.0.iter())
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => c.to_der().ok(),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(malformed("the token carries no TSA certificate"));
    }
    let mut cms = CmsContentInfo::from_der(token_der).map_err(malformed)?;
    let mut tst_der = Vec::new();
    cms.verify(
        None,
        None,
        None,
        Some(&mut tst_der),
        CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY,
    )
    .map_err(|e| TimeStampError::BadSignature(e.to_string()))?;
    // The certificate that verified: the signer's, among the embedded ones.
    let signers = cms_signer(&mut cms, &certs)?;
    let tst = TstInfo::from_der(&tst_der).map_err(malformed)?;
    Ok(CheckedToken {
        imprint_hash: tst.message_imprint.hash_algorithm.oid,
        imprint: tst.message_imprint.hashed_message.as_bytes().to_vec(),
        nonce: tst.nonce.map(|n| n.as_bytes().to_vec()),
        gen_time: tst.gen_time.to_system_time(),
        tsa_certificate_der: signers,
    })
}

/// The DER of the TSA certificate that signed `token_der` (a time-stamp token, e.g. one of
/// [`signature_time_stamp_tokens`]), after checking the token's signature with it.
pub fn token_signer_certificate(token_der: &[u8]) -> Result<Vec<u8>, TimeStampError> {
    check_token(token_der).map(|t| t.tsa_certificate_der)
}

/// The embedded certificate that signed the token: the one with which CMS verification
/// succeeds when it is the only one offered.
fn cms_signer(cms: &mut CmsContentInfo, certs: &[Vec<u8>]) -> Result<Vec<u8>, TimeStampError> {
    for der in certs {
        let Ok(x) = X509::from_der(der) else { continue };
        let mut stack = Stack::new().map_err(malformed)?;
        stack.push(x).map_err(malformed)?;
        if cms
            .verify(
                Some(&stack),
                None,
                None,
                None,
                CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::NOINTERN | CMSOptions::BINARY,
            )
            .is_ok()
        {
            return Ok(der.clone());
        }
    }
    Err(TimeStampError::BadSignature(
        "no embedded certificate is the signer's".into(),
    ))
}

/// The one SignerInfo's signature value in a CAdES `.p7s` (what a signature time-stamp is
/// over).
pub fn signature_value(p7s: &[u8]) -> Result<Vec<u8>, TimeStampError> {
    let sd = signed_data(p7s)?;
    let si = one_signer(&sd.signer_infos)?;
    Ok(si.signature.as_bytes().to_vec())
}

fn signed_data(p7s: &[u8]) -> Result<SignedData, TimeStampError> {
    let bad = |e: der::Error| TimeStampError::Signature(e.to_string());
    let ci = ContentInfo::from_der(p7s).map_err(bad)?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return Err(TimeStampError::Signature("not a SignedData".into()));
    }
    ci.content.decode_as().map_err(bad)
}

fn one_signer(infos: &SignerInfos) -> Result<&cms::signed_data::SignerInfo, TimeStampError> {
    let mut it = infos.0.iter();
    match (it.next(), it.next()) {
        (Some(si), None) => Ok(si),
        _ => Err(TimeStampError::Signature(format!(
            "{} SignerInfos, expected one",
            infos.0.len()
        ))),
    }
}

/// Adds `token` (a DER time-stamp token over the SignerInfo's signature value) to the one
/// SignerInfo of the CAdES `.p7s` as the unsigned attribute id-aa-signatureTimeStampToken,
/// and returns the new DER. The token is checked first: its signature, and that its
/// messageImprint is the hash of the signature value.
pub fn add_signature_time_stamp(p7s: &[u8], token: &[u8]) -> Result<Vec<u8>, TimeStampError> {
    let mut sd = signed_data(p7s)?;
    let si = one_signer(&sd.signer_infos)?.clone();
    let checked = check_token(token)?;
    let hash = match checked.imprint_hash {
        oids::SHA256 => DocumentHash::Sha256,
        oids::SHA384 => DocumentHash::Sha384,
        oids::SHA512 => DocumentHash::Sha512,
        _ => return Err(malformed("the token's messageImprint hash is not SHA-2")),
    };
    if hash.digest(si.signature.as_bytes()) != checked.imprint {
        return Err(TimeStampError::ImprintMismatch);
    }
    let enc = |e: der::Error| TimeStampError::Signature(e.to_string());
    let attribute = Attribute {
        oid: ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
        values: SetOfVec::try_from(vec![Any::from_der(token).map_err(malformed)?]).map_err(enc)?,
    };
    let mut si = si;
    let mut unsigned: Vec<Attribute> = si
        .unsigned_attrs
        .take()
        .map(|a| a.into_vec())
        .unwrap_or_default();
    unsigned.push(attribute);
    si.unsigned_attrs = Some(SetOfVec::try_from(unsigned).map_err(enc)?);
    sd.signer_infos = SignerInfos(SetOfVec::try_from(vec![si]).map_err(enc)?);
    ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(enc)?,
    }
    .to_der()
    .map_err(enc)
}

/// The DER of every signature time-stamp token in the unsigned attributes of the one
/// SignerInfo of a CAdES `.p7s` (none for B-B). The tokens are not checked here.
pub fn signature_time_stamp_tokens(p7s: &[u8]) -> Result<Vec<Vec<u8>>, TimeStampError> {
    let sd = signed_data(p7s)?;
    let si = one_signer(&sd.signer_infos)?;
    let mut tokens = Vec::new();
    for a in si.unsigned_attrs.iter().flat_map(|a| a.iter()) {
        if a.oid == ID_AA_SIGNATURE_TIME_STAMP_TOKEN {
            for v in a.values.iter() {
                tokens.push(v.to_der().map_err(malformed)?);
            }
        }
    }
    Ok(tokens)
}

/// Asks the TSA at `url` for a time stamp over the signature value of the CAdES `.p7s`
/// (messageImprint with `hash`) and returns the `.p7s` with it (CAdES-B-T) and the token.
pub async fn stamp_cades(
    url: &str,
    hash: DocumentHash,
    p7s: &[u8],
) -> Result<(Vec<u8>, TimeStampToken), TimeStampError> {
    let value = signature_value(p7s)?;
    let token = TimeStampRequest::new(hash, &value)?.send(url).await?;
    let stamped = add_signature_time_stamp(p7s, token.der())?;
    Ok((stamped, token))
}

#[cfg(test)]
mod tests;
