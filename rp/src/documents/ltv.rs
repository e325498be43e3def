//! Baseline B-LT (ETSI EN 319 122-1 5.4 for CAdES): the validation data a verifier needs
//! later, embedded in the signature, so that it validates without asking the CAs.
//!
//! ```text
//!  CAdES-B-T ─ signer cert ─┐                     ┌─ OCSP (AIA or override), else CRL
//!            ─ TSA cert ────┼─ chain to anchors ─▶ each cert below the root ─┘
//!                           ▼                                     │ DER as received
//!  ValidationData { certificates, ocsp_responses, crls } ◀────────┘
//!       └─ add_to_cades ─▶ SignedData.certificates (+ chain), SignedData.crls:
//!                           CRLs as CertificateList, OCSP as other/id-ri-ocsp-response
//! ```
//!
//! RFC 5940 (section 4.1) puts an OCSP response among SignedData.crls as
//! `OtherRevocationInfoFormat { id-ri-ocsp-response, OCSPResponse }`: the full OCSPResponse
//! (with its responseStatus), which is what [`crate::validation::cms::parse`] reads and
//! [`crate::validation::revocation::embedded`] checks. With such an entry the SignedData's
//! version is 5 (RFC 5652 5.1). The signature value and signed attributes are not touched, so
//! the signature and its time-stamp stay valid.
//!
//! [`collect`] fetches the data for any certificates (for PAdES the same data goes into the
//! document security store, [`super::pades`]); [`extend_cades`] does both steps for a
//! CAdES-B-T `.p7s`.

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::CertificateSet;
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode, Tagged as _};
use openssl::x509::X509;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

use crate::client::TrustAnchors;
use crate::client::revocation::{
    RevocationEvidence, RevocationOptions, build_chain, revocation_evidence,
};
use crate::oids;
use crate::validation::cms::{
    RevocationEntry, SignedDataRaw, ocsp_revocation_entry, revocation_entries,
};

/// Why B-LT validation data could not be collected or embedded. Messages name the
/// certificate or input at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LtvError {
    /// The signature is not a CAdES signature this module can extend.
    #[error("the signature cannot be extended to B-LT: {0}")]
    Signature(String),
    /// B-LT needs a signature time-stamp (B-T) first.
    #[error("the signature has no signature time-stamp: B-LT needs B-T first (--tsa)")]
    NoTimeStamp,
    /// A certificate does not chain to the trust anchors.
    #[error("no certificate chain for {subject}: {reason}")]
    Chain {
        /// The certificate's subject.
        subject: String,
        /// Why not.
        reason: String,
    },
    /// No revocation data (or a revoked status) for a certificate of a chain.
    #[error("no revocation data for {subject}: {reason}")]
    Revocation {
        /// The certificate's subject.
        subject: String,
        /// What OCSP and CRL said.
        reason: String,
    },
    /// DER encoding or decoding failed.
    #[error("DER: {0}")]
    Encoding(String),
}

fn enc(e: impl std::fmt::Display) -> LtvError {
    LtvError::Encoding(e.to_string())
}

/// Certificates, OCSP responses and CRLs (all DER), each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationData {
    /// Every certificate of the chains, the roots included.
    pub certificates: Vec<Vec<u8>>,
    /// Full OCSPResponses (status successful).
    pub ocsp_responses: Vec<Vec<u8>>,
    /// CertificateLists.
    pub crls: Vec<Vec<u8>>,
}

fn push_once(list: &mut Vec<Vec<u8>>, item: Vec<u8>) {
    if !list.contains(&item) {
        list.push(item);
    }
}

impl ValidationData {
    fn add_certificate(&mut self, der: Vec<u8>) {
        push_once(&mut self.certificates, der);
    }

    fn add_evidence(&mut self, e: RevocationEvidence) {
        match e {
            RevocationEvidence::Ocsp(d) => push_once(&mut self.ocsp_responses, d),
            RevocationEvidence::Crl(d) => push_once(&mut self.crls, d),
        }
    }
}

fn subject(c: &X509) -> String {
    c.to_der()
        .ok()
        .and_then(|d| Certificate::from_der(&d).ok())
        .map(|c| c.tbs_certificate().subject().to_string())
        .unwrap_or_else(|| "(unreadable subject)".into())
}

/// The chains of `end_entities` (DER) to `anchors` and, for every certificate below each
/// self-signed root, the OCSP response or CRL that says it is not revoked (checked as
/// [`crate::client::revocation::check_chain_revocation`] checks: `opts.ocsp_url` and
/// `opts.crl_url` replace the end entities' URLs, `opts.ca_crl_url` the CA certificates'
/// CRL). A revoked certificate, or one without usable data, is an error: a B-LT signature
/// must carry data for its whole chain.
pub async fn collect(
    end_entities: &[Vec<u8>],
    anchors: &TrustAnchors,
    opts: &RevocationOptions,
) -> Result<ValidationData, LtvError> {
    let mut data = ValidationData::default();
    for der in end_entities {
        let leaf = X509::from_der(der).map_err(|e| LtvError::Chain {
            subject: "a certificate".into(),
            reason: e.to_string(),
        })?;
        let chain = build_chain(&leaf, anchors).map_err(|reason| LtvError::Chain {
            subject: subject(&leaf),
            reason,
        })?;
        for (i, cert) in chain.iter().enumerate() {
            data.add_certificate(cert.to_der().map_err(enc)?);
            let Some(issuer) = chain.get(i + 1) else {
                break; // the root: a trust anchor, not checked
            };
            let (ocsp_url, crl_url) = if i == 0 {
                (opts.ocsp_url.as_deref(), opts.crl_url.as_deref())
            } else {
                (None, opts.ca_crl_url.as_deref())
            };
            let cert_der = cert.to_der().map_err(enc)?;
            let (_, evidence) =
                revocation_evidence(&cert_der, issuer, anchors, ocsp_url, crl_url, opts)
                    .await
                    .map_err(|e| LtvError::Revocation {
                        subject: subject(cert),
                        reason: e.to_string(),
                    })?;
            data.add_evidence(evidence);
        }
    }
    Ok(data)
}

fn signed_data(p7s: &[u8]) -> Result<SignedDataRaw, LtvError> {
    let bad = |e: der::Error| LtvError::Signature(e.to_string());
    let ci = ContentInfo::from_der(p7s).map_err(bad)?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return Err(LtvError::Signature("not a CMS SignedData".into()));
    }
    ci.content.decode_as().map_err(bad)
}

/// Adds `data` to the CAdES `.p7s`: the certificates not yet there to SignedData
/// .certificates, the CRLs and OCSP responses (RFC 5940 other/id-ri-ocsp-response) to
/// SignedData.crls, and returns the new DER. The SignerInfos are kept as they are.
pub fn add_to_cades(p7s: &[u8], data: &ValidationData) -> Result<Vec<u8>, LtvError> {
    let mut sd = signed_data(p7s)?;
    let mut certs: Vec<CertificateChoices> = sd
        .certificates
        .take()
        .map(|s| s.0.into_vec())
        .unwrap_or_default();
    for der in &data.certificates {
        let c = Certificate::from_der(der).map_err(enc)?;
        let choice = CertificateChoices::Certificate(c);
        if !certs.contains(&choice) {
            certs.push(choice);
        }
    }
    if !certs.is_empty() {
        sd.certificates = Some(CertificateSet(SetOfVec::try_from(certs).map_err(enc)?));
    }
    let mut revocation: Vec<Any> = sd.crls.take().map(|s| s.into_vec()).unwrap_or_default();
    let new = data
        .crls
        .iter()
        .map(|d| Any::from_der(d).map_err(enc))
        .chain(
            data.ocsp_responses
                .iter()
                .map(|d| ocsp_revocation_entry(d).map_err(enc)),
        );
    for entry in new {
        let entry = entry?;
        if !revocation.contains(&entry) {
            revocation.push(entry);
        }
    }
    // Every element must read back (a CRL that is no CertificateList is refused here).
    for e in revocation_entries(&revocation).map_err(|e| LtvError::Encoding(e.0))? {
        if let RevocationEntry::Crl(d) = e {
            CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&d).map_err(enc)?;
        }
    }
    if revocation.iter().any(|a| a.tag() != der::Tag::Sequence) {
        sd.version = CmsVersion::V5;
    }
    if !revocation.is_empty() {
        sd.crls = Some(SetOfVec::try_from(revocation).map_err(enc)?);
    }
    ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(enc)?,
    }
    .to_der()
    .map_err(enc)
}

/// The signer certificate and the TSA certificates of a CAdES-B-T `.p7s` (DER), the
/// end entities whose chains B-LT covers.
pub fn end_entities(p7s: &[u8]) -> Result<Vec<Vec<u8>>, LtvError> {
    let parsed =
        crate::validation::cms::parse(p7s).map_err(|e| LtvError::Signature(e.to_string()))?;
    let signer = crate::validation::signer::find_signer(&parsed.signer_info, &parsed.certificates)
        .ok_or_else(|| {
            LtvError::Signature("the SignerInfo names no embedded certificate".into())
        })?;
    let tokens = super::timestamp::signature_time_stamp_tokens(p7s)
        .map_err(|e| LtvError::Signature(e.to_string()))?;
    if tokens.is_empty() {
        return Err(LtvError::NoTimeStamp);
    }
    let mut out = vec![signer.der.clone()];
    for t in tokens {
        let tsa = super::timestamp::token_signer_certificate(&t)
            .map_err(|e| LtvError::Signature(format!("time-stamp token: {e}")))?;
        push_once(&mut out, tsa);
    }
    Ok(out)
}

/// CAdES-B-T to B-LT: [`validation_data`], then [`add_to_cades`].
pub async fn extend_cades(
    p7s: &[u8],
    anchors: &TrustAnchors,
    opts: &RevocationOptions,
) -> Result<Vec<u8>, LtvError> {
    let data = validation_data(p7s, anchors, opts).await?;
    add_to_cades(p7s, &data)
}

/// [`collect`] for the signer's and the TSAs' certificates of the CAdES-B-T `.p7s`; the
/// certificates embedded in it serve as intermediates (never as trust anchors).
pub async fn validation_data(
    p7s: &[u8],
    anchors: &TrustAnchors,
    opts: &RevocationOptions,
) -> Result<ValidationData, LtvError> {
    let leaves = end_entities(p7s)?;
    let mut anchors = anchors.clone();
    let parsed =
        crate::validation::cms::parse(p7s).map_err(|e| LtvError::Signature(e.to_string()))?;
    for c in &parsed.certificates {
        if let Ok(x) = X509::from_der(&c.der)
            && let Ok(pem) = x.to_pem()
        {
            // Self-signed ones are not trusted from the signature: only intermediates.
            if x.issued(&x) != openssl::x509::X509VerifyResult::OK {
                let _ = anchors.add_intermediates_pem(&pem);
            }
        }
    }
    collect(&leaves, &anchors, opts).await
}

#[cfg(test)]
mod tests;
