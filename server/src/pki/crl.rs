//! Certificate revocation lists (RFC 5280 section 5): v2 CRLs with CRLNumber and
//! AuthorityKeyIdentifier, and a reasonCode entry extension per revoked certificate.

use std::time::SystemTime;

use der::asn1::{OctetString, Uint};
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::certificate::{Rfc5280, Version};
use x509_cert::crl::{CertificateList, RevokedCert as RevokedEntry, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason, KeyUsage};
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
    /// A CA's key is compromised (RFC 5280 cACompromise; for CA certificates on the root's
    /// CRL).
    CaCompromise = 2,
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

    /// The RFC 5280 name (`keyCompromise`, `cACompromise`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
        }
    }

    /// The reason with this RFC 5280 code, if it is one of ours.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
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
            Self::CaCompromise => CrlReason::CaCompromise,
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
///
/// The issuing CA signs the CRL of the end-entity certificates it issued, the root the CRL of
/// the CA certificates it issued (an ARL). Refused when `issuer_cert` has a keyUsage without
/// cRLSign (RFC 5280 4.2.1.3: a relying party would reject that CRL).
pub fn crl(
    issuer: &dyn CaSigner,
    issuer_cert: &Certificate,
    crl_number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
    revoked: &[RevokedCert],
) -> Result<Vec<u8>, PkiError> {
    check_signer_matches(issuer, issuer_cert)?;
    check_crl_sign(issuer_cert)?;
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

/// The certificate may sign CRLs: it has no keyUsage, or one with cRLSign.
fn check_crl_sign(cert: &Certificate) -> Result<(), PkiError> {
    match cert.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(None) => Ok(()),
        Ok(Some((_, ku))) if ku.crl_sign() => Ok(()),
        Ok(Some(_)) => Err(PkiError::Malformed(
            "the CRL issuer's keyUsage does not allow cRLSign",
        )),
        Err(_) => Err(PkiError::Malformed(
            "the CRL issuer's keyUsage does not decode",
        )),
    }
}

#[cfg(test)]
mod tests {
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::x509::extension::{BasicConstraints, KeyUsage as OsslKeyUsage};
    use openssl::x509::{X509Builder, X509NameBuilder};

    use super::*;
    use crate::pki::soft_signer::Soft;

    /// A self-signed CA certificate of `key` with this keyUsage.
    fn ca_cert(key: &PKey<Private>, usage: &mut OsslKeyUsage) -> Certificate {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "Test CA").unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(usage.critical().build().unwrap())
            .unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        let der = b.build().to_der().unwrap();
        Certificate::from_der(&der).unwrap()
    }

    #[test]
    fn only_a_crl_signer_signs_crls_and_ca_compromise_is_listed() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let now = SystemTime::now();
        let day = std::time::Duration::from_secs(86_400);
        let entry = RevokedCert {
            serial: vec![0x5a, 0x01],
            revoked_at: now,
            reason: RevocationReason::CaCompromise,
        };

        let signer = ca_cert(&key, OsslKeyUsage::new().key_cert_sign().crl_sign());
        let der = crl(
            &Soft(key.clone()),
            &signer,
            1,
            now,
            now + day,
            std::slice::from_ref(&entry),
        )
        .unwrap();
        let list = CertificateList::<Rfc5280>::from_der(&der).unwrap();
        let entries = list.tbs_cert_list.revoked_certificates.unwrap();
        let reason = entries[0].crl_entry_extensions.as_ref().unwrap()[0].clone();
        assert_eq!(reason.extn_id, oids::CE_CRL_REASONS);
        assert_eq!(
            CrlReason::from_der(reason.extn_value.as_bytes()).unwrap(),
            CrlReason::CaCompromise
        );
        assert_eq!(
            RevocationReason::from_code(2),
            Some(RevocationReason::CaCompromise)
        );
        assert_eq!(RevocationReason::CaCompromise.name(), "cACompromise");

        // keyCertSign without cRLSign: refused before anything is signed.
        let no_crl_sign = ca_cert(&key, OsslKeyUsage::new().key_cert_sign());
        let e = crl(&Soft(key), &no_crl_sign, 1, now, now + day, &[entry]).unwrap_err();
        assert!(e.to_string().contains("does not allow cRLSign"), "{e}");
    }
}
