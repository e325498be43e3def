//! Document level: a detached CAdES signature of a file or a PAdES signature of a PDF around
//! the signing session ([`super::session`]), with a signature time stamp (B-T) and the
//! validation data (B-LT).
//!
//! CAdES: [`prepare_cades`] → session → [`finish_cades`] gives the `.p7s` bytes; the caller
//! writes them. PAdES: [`prepare_pades`] writes `<out>.part` → session → [`finish_pades`]
//! fills in the CMS, adds the `/DSS` for B-LT and renames it to `out`; on any error nothing
//! is left (neither `out` nor `<out>.part`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Signer, SigningError};
use crate::api::types::HashAlgorithm;
use crate::client::TrustAnchors;
use crate::client::revocation::RevocationOptions;
use crate::documents::cades::{self, CadesInput, CadesScheme, PreparedCades};
use crate::documents::ltv::{self, ValidationData};
use crate::documents::pades::{self, Appearance, DEFAULT_CONTENTS_SIZE, PadesInput, PreparedPades};
use crate::documents::timestamp::{self, TimeStampToken};
use crate::documents::{DocumentHash, digest_reader, dss};

/// The document hash and RSA scheme for the RP API's `hash` and PKCS#1 v1.5 (`pkcs1`) or
/// RSASSA-PSS.
pub fn hash_and_scheme(
    hash: HashAlgorithm,
    pkcs1: bool,
) -> Result<(DocumentHash, CadesScheme), SigningError> {
    let Some(h) = DocumentHash::from_api(hash) else {
        return Err(SigningError::UnsupportedHash(hash.as_str()));
    };
    let scheme = if pkcs1 {
        CadesScheme::Pkcs1v15
    } else {
        CadesScheme::RsassaPss
    };
    Ok((h, scheme))
}

/// "RSASSA-PSS" or "PKCS#1 v1.5".
pub fn scheme_name(scheme: CadesScheme) -> &'static str {
    match scheme {
        CadesScheme::RsassaPss => "RSASSA-PSS",
        CadesScheme::Pkcs1v15 => "PKCS#1 v1.5",
    }
}

/// The baseline level reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineLevel {
    /// B-B: the signature alone.
    B,
    /// B-T: with a signature time stamp.
    T,
    /// B-LT: with the validation data.
    Lt,
}

impl BaselineLevel {
    /// "B-B", "B-T" or "B-LT".
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineLevel::B => "B-B",
            BaselineLevel::T => "B-T",
            BaselineLevel::Lt => "B-LT",
        }
    }
}

/// What comes after the signature: a time stamp (B-T), and the validation data (B-LT).
#[derive(Debug, Clone, Default)]
pub struct Extension<'a> {
    /// An RFC 3161 time-stamp authority: B-T.
    pub tsa: Option<&'a str>,
    /// The trust anchors and revocation options for the validation data: B-LT (needs
    /// `tsa`).
    pub long_term: Option<(&'a TrustAnchors, &'a RevocationOptions)>,
}

impl Extension<'_> {
    /// B-LT needs a time stamp.
    fn check(&self) -> Result<(), SigningError> {
        if self.long_term.is_some() && self.tsa.is_none() {
            return Err(SigningError::LongTermNeedsTimeStamp);
        }
        Ok(())
    }
}

/// Progress after the signature, for a caller that reports it.
#[derive(Debug)]
pub enum Step<'a> {
    /// Asking the TSA at this URL.
    AskingTimeStamp(&'a str),
    /// The time stamp came.
    TimeStamped(&'a TimeStampToken),
    /// Collecting the validation data (OCSP, CRLs).
    CollectingValidationData,
    /// The validation data came.
    ValidationData(&'a ValidationData),
}

/// The CAdES signature of a document being made: what the RP API signs.
#[derive(Debug)]
pub struct CadesSigning {
    prepared: PreparedCades,
}

impl CadesSigning {
    /// The digest the RP API session signs (of the signed attributes).
    pub fn digest_to_sign(&self) -> &[u8] {
        self.prepared.digest_to_sign()
    }
}

/// Hashes `document` (read in chunks) and prepares the signed attributes naming `signer`,
/// claiming `signing_time`.
pub fn prepare_cades(
    signer: &Signer,
    document: impl Read,
    hash: DocumentHash,
    scheme: CadesScheme,
    signing_time: SystemTime,
) -> Result<CadesSigning, SigningError> {
    let document_digest = digest_reader(hash, document).map_err(SigningError::Read)?;
    let prepared = cades::prepare(&CadesInput {
        document_digest: &document_digest,
        signer_certificate_der: &signer.certificate_der,
        issuer_certificate_der: &signer.issuer_der,
        hash,
        scheme,
        signing_time,
    })?;
    Ok(CadesSigning { prepared })
}

/// The `.p7s` (DER) with the session's `signature`, extended as `ext` says, and its level.
pub async fn finish_cades(
    signing: CadesSigning,
    signature: &[u8],
    ext: &Extension<'_>,
    on_step: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<(Vec<u8>, BaselineLevel), SigningError> {
    ext.check()?;
    let hash = signing.prepared.hash();
    let p7s = signing.prepared.finish(signature)?;
    let Some(url) = ext.tsa else {
        return Ok((p7s, BaselineLevel::B));
    };
    let stamped = time_stamp(url, hash, &p7s, "signature", on_step).await?;
    let Some((anchors, revocation)) = ext.long_term else {
        return Ok((stamped, BaselineLevel::T));
    };
    let data = validation_data(&stamped, anchors, revocation, "signature", on_step).await?;
    Ok((ltv::add_to_cades(&stamped, &data)?, BaselineLevel::Lt))
}

/// The CMS time-stamped over its signature value.
async fn time_stamp(
    url: &str,
    hash: DocumentHash,
    cms: &[u8],
    written: &'static str,
    on_step: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<Vec<u8>, SigningError> {
    on_step(Step::AskingTimeStamp(url));
    let (stamped, token) = timestamp::stamp_cades(url, hash, cms)
        .await
        .map_err(|source| SigningError::TimeStamp { written, source })?;
    on_step(Step::TimeStamped(&token));
    Ok(stamped)
}

/// The validation data of the signer's and the TSA's chains of a time-stamped CMS.
async fn validation_data(
    cms: &[u8],
    anchors: &TrustAnchors,
    revocation: &RevocationOptions,
    written: &'static str,
    on_step: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<ValidationData, SigningError> {
    on_step(Step::CollectingValidationData);
    let data = ltv::validation_data(cms, anchors, revocation)
        .await
        .map_err(|source| SigningError::ValidationData { written, source })?;
    on_step(Step::ValidationData(&data));
    Ok(data)
}

/// The PAdES signature of a PDF being made: `<out>.part` written, the byte ranges hashed.
/// Dropped unfinished, it removes `<out>.part`.
#[derive(Debug)]
pub struct PadesSigning {
    prepared: PreparedPades,
}

impl PadesSigning {
    /// The digest the RP API session signs (of the signed attributes).
    pub fn digest_to_sign(&self) -> &[u8] {
        self.prepared.digest_to_sign()
    }
}

/// What a PAdES signature looks like.
#[derive(Debug, Clone)]
pub struct PadesOptions {
    /// The hash of the byte ranges and the signed attributes.
    pub hash: DocumentHash,
    /// The RSA signature scheme.
    pub scheme: CadesScheme,
    /// The claimed signing time.
    pub signing_time: SystemTime,
    /// Invisible or visible.
    pub appearance: Appearance,
}

/// Writes `<out>.part` (the PDF `input` with an incremental update holding an empty
/// signature for `signer`) and hashes its byte ranges.
pub fn prepare_pades(
    signer: &Signer,
    input: &Path,
    out: &Path,
    options: &PadesOptions,
) -> Result<PadesSigning, SigningError> {
    let prepared = pades::prepare(
        input,
        out,
        &PadesInput {
            signer_certificate_der: &signer.certificate_der,
            issuer_certificate_der: &signer.issuer_der,
            hash: options.hash,
            scheme: options.scheme,
            signing_time: options.signing_time,
            appearance: options.appearance.clone(),
            contents_size: DEFAULT_CONTENTS_SIZE,
        },
    )
    .map_err(|source| SigningError::PadesPrepare {
        path: input.to_path_buf(),
        source,
    })?;
    Ok(PadesSigning { prepared })
}

/// Writes the CMS with the session's `signature` (time-stamped and with a `/DSS` as `ext`
/// says) into the PDF and moves it to its name; returns that and the level. The validation
/// data are collected before anything is written.
pub async fn finish_pades(
    signing: PadesSigning,
    signature: &[u8],
    ext: &Extension<'_>,
    on_step: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<(PathBuf, BaselineLevel), SigningError> {
    ext.check()?;
    let prepared = signing.prepared;
    let mut cms = prepared.signed_cms(signature)?;
    let mut level = BaselineLevel::B;
    if let Some(url) = ext.tsa {
        cms = time_stamp(url, prepared.hash(), &cms, "signed PDF", on_step).await?;
        level = BaselineLevel::T;
    }
    let data = match ext.long_term {
        Some((anchors, revocation)) => {
            Some(validation_data(&cms, anchors, revocation, "signed PDF", on_step).await?)
        }
        None => None,
    };
    let out = prepared.finish(&cms)?;
    let Some(data) = data else {
        return Ok((out, level));
    };
    if let Err(e) = dss::add_dss(&out, &out, &data) {
        let _ = std::fs::remove_file(&out);
        return Err(SigningError::Dss(e));
    }
    Ok((out, BaselineLevel::Lt))
}
