//! OCSP (RFC 6960) requests and responses, with the nonce extension (RFC 8954).
//!
//! The issuing CA answers for its own certificates and signs the BasicOCSPResponse with its
//! own key (no delegated responder), identifying itself by key hash.

use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, GeneralizedTime, Int, Null, OctetString, Uint};
use der::{Choice, Decode, Encode, Sequence, Tagged};
use sha2::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::name::Name;

use super::crl::RevocationReason;
use super::{
    CaSigner, PkiError, check_signer_matches, extension, generalized_time, key_identifier, oids,
    sign_der, signature_algorithm,
};

/// Largest OCSP request we parse (bytes).
pub const MAX_OCSP_REQUEST_BYTES: usize = 64 * 1024;
/// Most certificates asked about in one request.
pub const MAX_OCSP_CERT_IDS: usize = 16;
/// Nonce lengths we echo (RFC 8954: 1 to 32 octets).
const MAX_NONCE_BYTES: usize = 32;

// --- ASN.1 (RFC 6960 section 4) ----------------------------------------------------------

/// `OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }`
#[derive(Clone, Debug, Sequence)]
pub struct OcspRequestAsn1 {
    /// The request.
    pub tbs_request: TbsRequestAsn1,
    /// A requester signature: accepted and ignored (we answer anyone).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub optional_signature: Option<Any>,
}

/// `TBSRequest`.
#[derive(Clone, Debug, Sequence)]
pub struct TbsRequestAsn1 {
    /// `[0] EXPLICIT Version DEFAULT v1`; tolerated when present, must be v1 (0).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub version: Option<u8>,
    /// `[1] EXPLICIT GeneralName OPTIONAL`; ignored.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub requestor_name: Option<Any>,
    /// `SEQUENCE OF Request`.
    pub request_list: Vec<RequestAsn1>,
    /// `[2] EXPLICIT Extensions OPTIONAL` (the nonce lives here).
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    pub request_extensions: Option<Vec<Extension>>,
}

/// `Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }`
#[derive(Clone, Debug, Sequence)]
pub struct RequestAsn1 {
    /// Which certificate.
    pub req_cert: CertIdAsn1,
    /// Ignored.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub single_request_extensions: Option<Vec<Extension>>,
}

/// `CertID`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertIdAsn1 {
    /// Hash algorithm of the two hashes.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash of the issuer's subject Name (DER).
    pub issuer_name_hash: OctetString,
    /// Hash of the issuer's subjectPublicKey BIT STRING value.
    pub issuer_key_hash: OctetString,
    /// Serial number of the certificate.
    pub serial_number: Int,
}

/// `OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }`
/// (successful responses; error responses are encoded by [`ocsp_error_response`]).
#[derive(Clone, Debug, Sequence)]
pub struct OcspResponseAsn1 {
    /// `successful (0)`.
    pub response_status: SuccessfulStatus,
    /// The BasicOCSPResponse.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub response_bytes: Option<ResponseBytesAsn1>,
}

/// The only responseStatus a response with responseBytes can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, der::Enumerated)]
#[repr(u32)]
pub enum SuccessfulStatus {
    /// `successful (0)`.
    Successful = 0,
}

/// `ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }`
#[derive(Clone, Debug, Sequence)]
pub struct ResponseBytesAsn1 {
    /// id-pkix-ocsp-basic.
    pub response_type: ObjectIdentifier,
    /// DER of the BasicOCSPResponse.
    pub response: OctetString,
}

/// `BasicOCSPResponse`.
#[derive(Clone, Debug, Sequence)]
pub struct BasicOcspResponseAsn1 {
    /// The signed data.
    pub tbs_response_data: ResponseDataAsn1,
    /// Signature algorithm.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// Signature over the DER of `tbs_response_data`.
    pub signature: BitString,
    /// `[0] EXPLICIT SEQUENCE OF Certificate OPTIONAL`: the signer's certificate.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<Certificate>>,
}

/// `ResponseData` (version v1 is the DEFAULT and so never encoded).
#[derive(Clone, Debug, Sequence)]
pub struct ResponseDataAsn1 {
    /// Who signed.
    pub responder_id: ResponderIdAsn1,
    /// When the response was produced.
    pub produced_at: GeneralizedTime,
    /// One answer per CertID asked about.
    pub responses: Vec<SingleResponseAsn1>,
    /// `[1] EXPLICIT Extensions OPTIONAL` (the echoed nonce).
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub response_extensions: Option<Vec<Extension>>,
}

/// `ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }`
#[derive(Clone, Debug, Choice)]
pub enum ResponderIdAsn1 {
    /// By subject name.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    /// By SHA-1 of the responder's subjectPublicKey (what we send).
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// `SingleResponse`.
#[derive(Clone, Debug, Sequence)]
pub struct SingleResponseAsn1 {
    /// The CertID as asked.
    pub cert_id: CertIdAsn1,
    /// good / revoked / unknown.
    pub cert_status: CertStatusAsn1,
    /// Time the status is known to be correct.
    pub this_update: GeneralizedTime,
    /// `[0] EXPLICIT GeneralizedTime OPTIONAL`.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub next_update: Option<GeneralizedTime>,
}

/// `CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }`
#[derive(Clone, Debug, Choice)]
pub enum CertStatusAsn1 {
    /// good.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    /// revoked.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfoAsn1),
    /// unknown.
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// `RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }`
#[derive(Clone, Debug, Sequence)]
pub struct RevokedInfoAsn1 {
    /// When.
    pub revocation_time: GeneralizedTime,
    /// Why.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub revocation_reason: Option<CrlReason>,
}

// --- Domain types -----------------------------------------------------------------------

/// One certificate asked about, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    /// Hash algorithm of the two hashes, as sent (echoed in the response).
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash of the issuer's Name.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's public key.
    pub issuer_key_hash: Vec<u8>,
    /// Serial number: big-endian magnitude without leading zero bytes (as we issue them).
    pub serial: Vec<u8>,
}

/// A parsed OCSP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspQuery {
    /// 1 to [`MAX_OCSP_CERT_IDS`] certificates.
    pub cert_ids: Vec<CertId>,
    /// The request nonce (the OCTET STRING's content, 1 to 32 bytes), to echo.
    pub nonce: Option<Vec<u8>>,
}

/// What the CA knows about a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    /// Issued by us and not revoked.
    Good,
    /// Revoked at this time for this reason.
    Revoked {
        /// Revocation time.
        at: SystemTime,
        /// Reason code.
        reason: RevocationReason,
    },
    /// Not issued by us (or not by this CA).
    Unknown,
}

/// OCSP error statuses (RFC 6960 OCSPResponseStatus without `successful`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OcspResponseStatus {
    /// Illegal confirmation request.
    MalformedRequest = 1,
    /// Internal error in issuer.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// Request unauthorized.
    Unauthorized = 6,
}

/// Parses a DER OCSPRequest. Rejects requests over [`MAX_OCSP_REQUEST_BYTES`], trailing
/// data, no or more than [`MAX_OCSP_CERT_IDS`] CertIDs, negative serials, a nonce that is
/// not an OCTET STRING and duplicated nonces. A nonce outside 1..=32 bytes is not echoed
/// (RFC 8954 allows that).
pub fn parse_ocsp_request(der: &[u8]) -> Result<OcspQuery, PkiError> {
    const BAD: PkiError = PkiError::Malformed("not a valid OCSP request");
    if der.len() > MAX_OCSP_REQUEST_BYTES {
        return Err(PkiError::Malformed("OCSP request too large"));
    }
    // `from_der` fails on trailing bytes as well as on bad encodings.
    let request = OcspRequestAsn1::from_der(der).map_err(|_| BAD)?;
    let tbs = request.tbs_request;
    if tbs.version.is_some_and(|v| v != 0) {
        return Err(PkiError::Malformed("unsupported OCSP request version"));
    }
    if tbs.request_list.is_empty() || tbs.request_list.len() > MAX_OCSP_CERT_IDS {
        return Err(PkiError::Malformed(
            "OCSP request must ask about 1 to 16 certificates",
        ));
    }
    let cert_ids = tbs
        .request_list
        .into_iter()
        .map(|r| {
            let id = r.req_cert;
            let serial = id.serial_number.as_bytes();
            if serial.first().is_some_and(|b| b & 0x80 != 0) {
                return Err(PkiError::Malformed("negative serial number"));
            }
            // Strip the sign octet: what remains is the magnitude we issued.
            let serial = match serial {
                [0, rest @ ..] if !rest.is_empty() => rest,
                s => s,
            };
            if serial.len() > 20
                || id.issuer_name_hash.as_bytes().len() > 64
                || id.issuer_key_hash.as_bytes().len() > 64
            {
                return Err(BAD);
            }
            Ok(CertId {
                hash_algorithm: id.hash_algorithm,
                issuer_name_hash: id.issuer_name_hash.as_bytes().to_vec(),
                issuer_key_hash: id.issuer_key_hash.as_bytes().to_vec(),
                serial: serial.to_vec(),
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    let mut nonce = None;
    let mut seen_nonce = false;
    for ext in tbs.request_extensions.iter().flatten() {
        if ext.extn_id != oids::PKIX_OCSP_NONCE {
            continue;
        }
        if seen_nonce {
            return Err(PkiError::Malformed("duplicate OCSP nonce"));
        }
        seen_nonce = true;
        let value = OctetString::from_der(ext.extn_value.as_bytes())
            .map_err(|_| PkiError::Malformed("OCSP nonce is not an OCTET STRING"))?;
        let value = value.as_bytes();
        if !value.is_empty() && value.len() <= MAX_NONCE_BYTES {
            nonce = Some(value.to_vec());
        }
    }
    Ok(OcspQuery { cert_ids, nonce })
}

/// Whether `id` names `issuer_cert` as the issuer: issuerNameHash over the DER of the
/// issuer's subject Name and issuerKeyHash over its subjectPublicKey BIT STRING value, with
/// the id's hash algorithm (SHA-1, SHA-256, SHA-384 or SHA-512; parameters absent or NULL).
pub fn cert_id_matches_issuer(id: &CertId, issuer_cert: &Certificate) -> bool {
    let tbs = issuer_cert.tbs_certificate();
    let Ok(name_der) = tbs.subject().to_der() else {
        return false;
    };
    let key = tbs.subject_public_key_info().subject_public_key.raw_bytes();
    let params_ok = match &id.hash_algorithm.parameters {
        None => true,
        Some(p) => p.tag() == der::Tag::Null && p.value().is_empty(),
    };
    if !params_ok {
        return false;
    }
    let hash = |data: &[u8]| -> Option<Vec<u8>> {
        let oid = id.hash_algorithm.oid;
        Some(if oid == oids::SHA1 {
            sha1::Sha1::digest(data).to_vec()
        } else if oid == oids::SHA256 {
            sha2::Sha256::digest(data).to_vec()
        } else if oid == oids::SHA384 {
            sha2::Sha384::digest(data).to_vec()
        } else if oid == oids::SHA512 {
            sha2::Sha512::digest(data).to_vec()
        } else {
            return None;
        })
    };
    match (hash(&name_der), hash(key)) {
        (Some(name_hash), Some(key_hash)) => {
            name_hash == id.issuer_name_hash && key_hash == id.issuer_key_hash
        }
        _ => false,
    }
}

/// A successful OCSP response (DER): a BasicOCSPResponse signed by `signer` (the issuing
/// CA itself), responderID byKey, `signer_cert` in `certs`, one SingleResponse per answer
/// with the CertID echoed as asked, and the nonce echoed when given.
pub fn ocsp_response(
    signer: &dyn CaSigner,
    signer_cert: &Certificate,
    answers: &[(CertId, OcspStatus)],
    produced_at: SystemTime,
    this_update: SystemTime,
    next_update: Option<SystemTime>,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, PkiError> {
    check_signer_matches(signer, signer_cert)?;
    if answers.is_empty() || answers.len() > MAX_OCSP_CERT_IDS {
        return Err(PkiError::Malformed(
            "an OCSP response answers 1 to 16 certificates",
        ));
    }
    if next_update.is_some_and(|n| n <= this_update) {
        return Err(PkiError::Malformed("nextUpdate must be after thisUpdate"));
    }
    let this_update = generalized_time(this_update)?;
    let next_update = next_update.map(generalized_time).transpose()?;
    let responses = answers
        .iter()
        .map(|(id, status)| {
            Ok(SingleResponseAsn1 {
                cert_id: CertIdAsn1 {
                    hash_algorithm: id.hash_algorithm.clone(),
                    issuer_name_hash: OctetString::new(id.issuer_name_hash.clone())?,
                    issuer_key_hash: OctetString::new(id.issuer_key_hash.clone())?,
                    serial_number: Uint::new(&id.serial)?.into(),
                },
                cert_status: match status {
                    OcspStatus::Good => CertStatusAsn1::Good(Null),
                    OcspStatus::Unknown => CertStatusAsn1::Unknown(Null),
                    OcspStatus::Revoked { at, reason } => {
                        CertStatusAsn1::Revoked(RevokedInfoAsn1 {
                            revocation_time: generalized_time(*at)?,
                            revocation_reason: match reason {
                                RevocationReason::Unspecified => None,
                                r => Some(r.crl_reason()),
                            },
                        })
                    }
                },
                this_update,
                next_update,
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    let response_extensions = match nonce {
        None => None,
        Some(n) if !n.is_empty() && n.len() <= MAX_NONCE_BYTES => Some(vec![extension(
            oids::PKIX_OCSP_NONCE,
            false,
            &OctetString::new(n)?,
        )?]),
        Some(_) => return Err(PkiError::Malformed("OCSP nonce must be 1 to 32 bytes")),
    };
    let data = ResponseDataAsn1 {
        responder_id: ResponderIdAsn1::ByKey(OctetString::new(key_identifier(
            signer_cert.tbs_certificate().subject_public_key_info(),
        ))?),
        produced_at: generalized_time(produced_at)?,
        responses,
        response_extensions,
    };
    let algorithm = signature_algorithm(signer)?;
    let signature = sign_der(signer, &data.to_der()?)?;
    let basic = BasicOcspResponseAsn1 {
        tbs_response_data: data,
        signature_algorithm: algorithm,
        signature,
        certs: Some(vec![signer_cert.clone()]),
    };
    Ok(OcspResponseAsn1 {
        response_status: SuccessfulStatus::Successful,
        response_bytes: Some(ResponseBytesAsn1 {
            response_type: oids::PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der()?)?,
        }),
    }
    .to_der()?)
}

/// An unsuccessful OCSP response (DER): only the status, no responseBytes, unsigned.
pub fn ocsp_error_response(status: OcspResponseStatus) -> Vec<u8> {
    // SEQUENCE { ENUMERATED status }
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_is_a_bare_status() {
        let der = ocsp_error_response(OcspResponseStatus::Unauthorized);
        let parsed = OcspResponseAsn1::from_der(&der);
        // `successful` is the only status our decoder types accept: 6 must not parse as it.
        assert!(parsed.is_err());
        assert_eq!(der, [0x30, 0x03, 0x0a, 0x01, 0x06]);
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse_ocsp_request(&[]).is_err());
        assert!(parse_ocsp_request(&[0x30, 0x00]).is_err());
        assert!(parse_ocsp_request(&[0xff; 10]).is_err());
        assert!(parse_ocsp_request(&vec![0x30; MAX_OCSP_REQUEST_BYTES + 1]).is_err());
    }
}
