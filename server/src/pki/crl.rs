//! Certificate revocation lists (RFC 5280 section 5): v2 CRLs with CRLNumber and
//! AuthorityKeyIdentifier, and a reasonCode entry extension per revoked certificate.

use std::time::SystemTime;

use der::asn1::{OctetString, Uint};
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::certificate::{Rfc5280, Version};
use x509_cert::crl::{CertificateList, RevokedCert as RevokedEntry, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::serial_number::SerialNumber;

use super::{
    CaSigner, PkiError, check_signer_matches, extension, issuer_key_identifier, oids, sign_der,
    signature_algorithm, x509_time,
};

/// Why a certificate was revoked (RFC 5280 CRLReason codes we use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RevocationReason {
    /// No reason given (operator revocation without a reason).
    Unspecified = 0,
    /// The key is compromised (clone detected, permanent lockout after wrong PINs).
    KeyCompromise = 1,
    /// The subject's details changed.
    AffiliationChanged = 3,
    /// Replaced by a new certificate.
    Superseded = 4,
    /// The account was deleted.
    CessationOfOperation = 5,
    /// Temporarily suspended.
    CertificateHold = 6,
}

impl RevocationReason {
    /// The RFC 5280 CRLReason code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason with this RFC 5280 code, if it is one of ours.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            _ => return None,
        })
    }

    pub(super) fn crl_reason(self) -> CrlReason {
        match self {
            Self::Unspecified => CrlReason::Unspecified,
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
            Self::CertificateHold => CrlReason::CertificateHold,
        }
    }
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    /// Serial number of the revoked certificate (big-endian, as issued).
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: SystemTime,
    /// Why.
    pub reason: RevocationReason,
}

/// A signed v2 CRL (DER) of `issuer_cert`, listing `revoked`. Extensions: cRLNumber and
/// authorityKeyIdentifier; each entry has a reasonCode unless the reason is `Unspecified`
/// (RFC 5280 5.3.1: the code unspecified SHOULD be absent).
pub fn crl(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    crl_number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
    revoked: &[RevokedCert],
) -> Result<Vec<u8>, PkiError> {
    check_signer_matches(issuer, issuer_cert)?;
    if next_update <= this_update {
        return Err(PkiError::Malformed("nextUpdate must be after thisUpdate"));
    }
    let entries = revoked
        .iter()
        .map(|r| {
            if r.serial.is_empty() || r.serial.len() > 20 {
                return Err(PkiError::Malformed("serial must be 1 to 20 bytes"));
            }
            let crl_entry_extensions = match r.reason {
                RevocationReason::Unspecified => None,
                reason => Some(vec![extension(
                    oids::CE_CRL_REASONS,
                    false,
                    &reason.crl_reason(),
                )?]),
            };
            Ok(RevokedEntry {
                serial_number: SerialNumber::<Rfc5280>::new(&r.serial)?,
                revocation_date: x509_time(r.revoked_at)?,
                crl_entry_extensions,
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    let algorithm = signature_algorithm(issuer)?;
    let tbs = TbsCertList {
        version: Version::V2,
        signature: algorithm.clone(),
        issuer: issuer_cert.tbs_certificate().subject().clone(),
        this_update: x509_time(this_update)?,
        next_update: Some(x509_time(next_update)?),
        // RFC 5280: an empty list is absent, not an empty SEQUENCE.
        revoked_certificates: if entries.is_empty() {
            None
        } else {
            Some(entries)
        },
        crl_extensions: Some(vec![
            extension(
                oids::CE_AUTHORITY_KEY_IDENTIFIER,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(issuer_key_identifier(issuer_cert))?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            )?,
            extension(
                oids::CE_CRL_NUMBER,
                false,
                &Uint::new(&crl_number.to_be_bytes())?,
            )?,
        ]),
    };
    let signature = sign_der(issuer, &tbs.to_der()?)?;
    let der = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm,
        signature,
    }
    .to_der()?;
    // Sanity: what we publish parses back.
    CertificateList::<Rfc5280>::from_der(&der)?;
    Ok(der)
}
