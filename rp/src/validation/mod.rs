//! Validation of detached CAdES signatures and ASiC-E packages after ETSI EN 319 102-1, in
//! its essentials, filling the report model ([`crate::report`]).
//!
//! ```text
//!  .p7s ─ cms::parse ─▶ format (FORMAT_FAILURE)
//!       ─ signer ─▶ signing certificate: sid + signing-certificate-v2 (NO_SIGNING_CERTIFICATE_FOUND)
//!       ─ data ─digest_reader─▶ message-digest (HASH_FAILURE)
//!       ─ signer ─▶ signature over the signed attributes (SIG_CRYPTO_FAILURE)
//!       ─ signer ─▶ algorithms and key size (CRYPTO_CONSTRAINTS_FAILURE_NO_POE)
//!       ─ timestamp ─▶ signature time-stamp, B-T (SIG_CONSTRAINTS_FAILURE when invalid)
//!       ─ chain ─▶ to a trust anchor (NO_CERTIFICATE_CHAIN_FOUND, naming the missing CA)
//!       ─ signing time vs. validity and the clock (NO_POE, NOT_YET_VALID, EXPIRED,
//!         OUT_OF_BOUNDS_NO_POE)
//!       ─ revocation: embedded, else OCSP then CRL (REVOKED, REVOKED_NO_POE,
//!         REVOKED_CA_NO_POE, TRY_LATER)
//!       ─▶ TOTAL_PASSED
//! ```
//!
//! [`examine`] does every step but revocation without the network; [`conclude`] adds the
//! revocation finding; [`validate_detached`] does both. The check time is passed in.
//! [`file::validate_file`] takes a file as a user hands it in (signature and document, PDF
//! or package), detects its kind and builds the whole report.

pub mod chain;
pub mod cms;
pub mod file;
pub mod package;
pub mod pdf;
pub mod revocation;
pub mod signer;
pub mod timestamp;

#[cfg(test)]
mod tests;

use std::io;
use std::time::{Duration, SystemTime};

use openssl::x509::X509;

use crate::client::revocation::RevocationOptions;
use crate::documents::DocumentHash;
use crate::report::{
    BaselineLevel, FormatFamily, SignatureFormat, SignatureLevel, SignatureResult, SignatureStatus,
    SigningTime, SigningTimeSource, SubIndication, UtcTime,
};
pub use revocation::RevocationFinding;

/// A claimed signing time this far after the check time is "in the future".
pub const FUTURE_SLACK: Duration = Duration::from_secs(300);

/// What a validation needs besides the signature and the data.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    /// The trust anchors (root CA certificates); nothing else is trusted.
    pub anchors: Vec<X509>,
    /// Where and how to ask for revocation status when nothing is embedded.
    pub revocation: RevocationOptions,
    now: SystemTime,
    checked_at: UtcTime,
}

impl ValidationContext {
    /// A context checking at `now` (which must lie between 1970 and 9999).
    pub fn new(
        anchors: Vec<X509>,
        now: SystemTime,
        revocation: RevocationOptions,
    ) -> Result<Self, crate::report::time::InvalidTime> {
        Ok(Self {
            anchors,
            revocation,
            now,
            checked_at: UtcTime::from_system_time(now)?,
        })
    }

    /// The check time.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// The check time as the report writes it.
    pub fn checked_at(&self) -> UtcTime {
        self.checked_at
    }
}

/// The result of one signature with the reasons behind it (for the text summary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// What goes into the report.
    pub result: SignatureResult,
    /// The steps' findings in plain English, most important first.
    pub details: Vec<String>,
}

/// The data a detached signature covers: gives its digest with the hash the signature
/// names (read the document through [`crate::documents::digest_reader`]).
pub type DataDigest<'a> = &'a mut dyn FnMut(DocumentHash) -> io::Result<Vec<u8>>;

/// A signature examined up to revocation.
#[derive(Debug, Clone)]
pub enum Examination {
    /// Decided without revocation (a failure, or an earlier indeterminate result).
    Decided(Validation),
    /// Everything else passed; the revocation status of this chain decides.
    NeedsRevocation(Pending),
}

/// A signature waiting for its revocation finding.
#[derive(Debug, Clone)]
pub struct Pending {
    base: Validation,
    /// The chain built (signer first).
    pub chain: chain::Chain,
    /// Embedded OCSP responses and CRLs.
    ocsp: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    anchors: Vec<X509>,
    now: SystemTime,
    claimed: Option<SystemTime>,
    timestamp: Option<SystemTime>,
}

fn status(indeterminate: bool, sub: SubIndication) -> SignatureStatus {
    let s = if indeterminate {
        SignatureStatus::indeterminate(sub)
    } else {
        SignatureStatus::failed(sub)
    };
    // Every (indication, sub) pair used in this module is one ETSI allows.
    s.unwrap_or(SignatureStatus::PASSED)
}

fn utc(t: SystemTime) -> Option<UtcTime> {
    UtcTime::from_system_time(t).ok()
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

impl Validation {
    fn with(mut self, status: SignatureStatus, detail: impl Into<String>) -> Self {
        self.result.status = status;
        self.details.insert(0, detail.into());
        self
    }
}

/// A signature that is not even CMS: red FORMAT_FAILURE.
pub fn format_failure(detail: impl Into<String>, ctx: &ValidationContext) -> Validation {
    Validation {
        result: SignatureResult {
            signer_name: None,
            signing_time: None,
            level: SignatureLevel::NotDetermined,
            format: SignatureFormat {
                family: FormatFamily::Cades,
                baseline: None,
            },
            status: status(false, SubIndication::FormatFailure),
            checked_at: ctx.checked_at,
        },
        details: vec![format!("format: {}", detail.into())],
    }
}

/// How the CMS is embedded, which decides the format family, the baseline rules and where
/// the claimed signing time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A detached CAdES signature: the claimed time is the signing-time attribute.
    Cades,
    /// The CMS of a PDF signature dictionary (EN 319 142-1).
    Pades {
        /// The dictionary's `/M`: the claimed signing time (PAdES has no signing-time
        /// attribute; when `/M` is absent the attribute is used if present).
        claimed: Option<SystemTime>,
        /// Whether the dictionary is baseline (`/SubFilter /ETSI.CAdES.detached`); if not,
        /// the format is PAdES-NOT-BASELINE.
        baseline: bool,
    },
}

/// Every step but revocation, for the detached signature `signature` (DER or PEM) over the
/// data behind `data`.
pub fn examine(signature: &[u8], data: DataDigest<'_>, ctx: &ValidationContext) -> Examination {
    examine_as(signature, data, ctx, Profile::Cades)
}

/// [`examine`] for a CMS embedded as `profile` says.
pub fn examine_as(
    signature: &[u8],
    data: DataDigest<'_>,
    ctx: &ValidationContext,
    profile: Profile,
) -> Examination {
    let now = ctx.now;
    let der = match cms::der_from_pem_or_der(signature) {
        Ok(d) => d,
        Err(e) => return Examination::Decided(format_failure(e.0, ctx)),
    };
    let parsed = match cms::parse(&der) {
        Ok(p) => p,
        Err(e) => return Examination::Decided(format_failure(e.0, ctx)),
    };
    let si = &parsed.signer_info;
    let (family, claimed, baseline_dict) = match profile {
        Profile::Cades => (FormatFamily::Cades, parsed.signing_time, true),
        Profile::Pades { claimed, baseline } => (
            FormatFamily::Pades,
            claimed.or(parsed.signing_time),
            // EN 319 142-1, 5.2: no signing-time attribute in a PAdES baseline signature.
            baseline && parsed.signing_time.is_none(),
        ),
    };
    let baseline = parsed
        .signing_cert_ref
        .as_ref()
        .filter(|_| baseline_dict)
        .map(|_| BaselineLevel::B);
    let mut v = Validation {
        result: SignatureResult {
            signer_name: None,
            signing_time: claimed.and_then(utc).map(|time| SigningTime {
                time,
                source: SigningTimeSource::Claimed,
            }),
            level: SignatureLevel::NotDetermined,
            format: SignatureFormat { family, baseline },
            status: SignatureStatus::PASSED,
            checked_at: ctx.checked_at,
        },
        details: Vec::new(),
    };
    if parsed.signing_cert_ref.is_none() {
        v.details.push(
            "format: no signing-certificate(-v2) attribute: CMS, but not CAdES baseline".into(),
        );
    } else if baseline.is_none() {
        v.details.push(
            "format: not a PAdES baseline signature (/SubFilter other than ETSI.CAdES.detached, or a signing-time attribute)".into(),
        );
    }
    macro_rules! decide {
        ($ind:expr, $sub:ident, $detail:expr) => {
            return Examination::Decided(v.with(status($ind, SubIndication::$sub), $detail))
        };
    }

    // Identification of the signing certificate.
    let Some(signer) = signer::find_signer(si, &parsed.certificates) else {
        decide!(
            true,
            NoSigningCertificateFound,
            "signing certificate: the SignerInfo names no embedded certificate"
        );
    };
    if let Some(r) = &parsed.signing_cert_ref
        && !signer::matches_reference(r, signer)
    {
        decide!(
            true,
            NoSigningCertificateFound,
            "signing certificate: the signing-certificate attribute does not match the signer's certificate"
        );
    }
    v.result.signer_name = Some(signer::signer_name(&signer.cert));
    v.result.level = signer::level(&signer.cert);

    // Algorithms, then the cryptographic verification.
    let hash = match signer::document_hash(si.digest_alg.oid) {
        Ok(h) => h,
        Err(a) => decide!(
            true,
            CryptoConstraintsFailureNoPoe,
            format!("algorithm: {a}")
        ),
    };
    if let Err(a) = signer::check_signature_algorithm(&si.signature_algorithm, hash) {
        decide!(
            true,
            CryptoConstraintsFailureNoPoe,
            format!("algorithm: {a}")
        );
    }
    let key = match signer::public_key(signer) {
        Ok(k) => k,
        Err(e) => decide!(true, NoSigningCertificateFound, e),
    };
    match data(hash) {
        Err(e) => decide!(
            true,
            SignedDataNotFound,
            format!("signed data: cannot read the document: {e}")
        ),
        Ok(d) if d != parsed.message_digest => decide!(
            false,
            HashFailure,
            "message digest: the document's hash differs from the signed message-digest (the document was changed)"
        ),
        Ok(_) => v
            .details
            .push("message digest: matches the document".into()),
    }
    match signer::verify_signature(
        &si.signature_algorithm,
        hash,
        &key,
        &parsed.signed_attrs_der,
        si.signature.as_bytes(),
    ) {
        Ok(true) => v
            .details
            .push("signature value: verifies with the signing certificate's key".into()),
        Ok(false) => decide!(
            false,
            SigCryptoFailure,
            "signature value: does not verify over the signed attributes with the signer's key"
        ),
        Err(a) => decide!(
            true,
            CryptoConstraintsFailureNoPoe,
            format!("algorithm: {a}")
        ),
    }
    if let Err(a) = signer::key_acceptable(&key) {
        decide!(true, CryptoConstraintsFailureNoPoe, format!("key: {a}"));
    }

    // The signature time-stamp.
    let mut timestamp = None;
    if let Some(token) = &parsed.timestamp_token {
        match timestamp::check_with(
            token,
            si.signature.as_bytes(),
            &ctx.anchors,
            &parsed.certificates,
        ) {
            Ok(t) => {
                timestamp = Some(t);
                if let Some(time) = utc(t) {
                    v.result.signing_time = Some(SigningTime {
                        time,
                        source: SigningTimeSource::TimeStamp,
                    });
                }
                if baseline.is_some() {
                    v.result.format.baseline = Some(BaselineLevel::T);
                }
                v.details.push("time-stamp: valid".into());
            }
            Err(why) => decide!(true, SigConstraintsFailure, format!("time-stamp: {why}")),
        }
    }

    // The chain.
    let chain = match chain::build(&signer.der, &parsed.certificates, &ctx.anchors) {
        Ok(c) => c,
        Err(e) => decide!(
            true,
            NoCertificateChainFound,
            format!("certificate chain: {e}")
        ),
    };
    v.details.push(format!(
        "certificate chain: {} certificates to a trust anchor",
        chain.certs.len()
    ));

    // Times: the claimed time against the clock, the best signature time against validity.
    if let Some(c) = claimed
        && c > now + FUTURE_SLACK
    {
        decide!(
            true,
            NoPoe,
            "signing time: the claimed signing time is in the future"
        );
    }
    let best = timestamp.or(claimed).unwrap_or(now);
    let best_t = openssl::asn1::Asn1Time::from_unix(unix(best));
    let now_t = openssl::asn1::Asn1Time::from_unix(unix(now));
    let (Ok(best_t), Ok(now_t)) = (best_t, now_t) else {
        decide!(true, NoPoe, "signing time: cannot be represented");
    };
    for (i, c) in chain.certs.iter().enumerate() {
        let who = if i == 0 {
            "the signing certificate"
        } else {
            "a CA certificate"
        };
        if best_t < *c.not_before() {
            decide!(
                timestamp.is_none(),
                NotYetValid,
                format!("validity: the signing time is before {who} became valid")
            );
        }
        if best_t > *c.not_after() {
            decide!(
                true,
                Expired,
                format!("validity: {who} had expired at the signing time")
            );
        }
        if now_t > *c.not_after() && timestamp.is_none() {
            decide!(
                true,
                OutOfBoundsNoPoe,
                format!(
                    "validity: {who} has expired and no time-stamp proves the signature is older"
                )
            );
        }
    }
    Examination::NeedsRevocation(Pending {
        base: v,
        chain,
        ocsp: parsed.ocsp_responses,
        crls: parsed.crls,
        anchors: ctx.anchors.clone(),
        now,
        claimed,
        timestamp,
    })
}

impl Pending {
    /// The finding from the embedded revocation data, if it covers the whole chain.
    pub fn embedded_revocation(&self) -> Option<RevocationFinding> {
        revocation::embedded(
            &self.chain,
            &self.ocsp,
            &self.crls,
            &self.anchors,
            self.now,
            self.timestamp.or(self.claimed),
        )
    }
}

/// The decision once the revocation status is known. A signing certificate revoked before
/// the signing time (the time-stamp's genTime, else the claimed time) is TOTAL_FAILED/REVOKED;
/// revoked after a time-stamp that proves the signature older passes (the standard's
/// validation with proof of existence); otherwise REVOKED_NO_POE.
pub fn conclude(p: Pending, finding: RevocationFinding) -> Validation {
    let v = p.base;
    match finding {
        RevocationFinding::NotRevoked { source } => {
            let mut v = v;
            v.details
                .push(format!("revocation: not revoked ({source})"));
            v
        }
        RevocationFinding::Unavailable(why) => v.with(
            status(true, SubIndication::TryLater),
            format!("revocation: status not available now: {why}"),
        ),
        RevocationFinding::Revoked {
            signer: false,
            detail,
            ..
        } => v.with(
            status(true, SubIndication::RevokedCaNoPoe),
            format!("revocation: a CA certificate of the chain is revoked: {detail}"),
        ),
        RevocationFinding::Revoked {
            signer: true,
            at,
            detail,
        } => {
            let best = p.timestamp.or(p.claimed);
            match (at, best) {
                (Some(at), Some(best)) if at <= best => v.with(
                    status(false, SubIndication::Revoked),
                    format!("revocation: the signing certificate was revoked before the signing time: {detail}"),
                ),
                (Some(at), _) if p.timestamp.is_some_and(|t| t < at) => {
                    let mut v = v;
                    v.details.push(format!(
                        "revocation: revoked after the time-stamp proves the signature existed: {detail}"
                    ));
                    v
                }
                _ => v.with(
                    status(true, SubIndication::RevokedNoPoe),
                    format!("revocation: the signing certificate is revoked, and nothing proves the signature older: {detail}"),
                ),
            }
        }
    }
}

/// Validates a detached CAdES signature: [`examine`], then the embedded revocation data or
/// the CAs' OCSP responders and CRLs, then [`conclude`].
pub async fn validate_detached(
    signature: &[u8],
    data: DataDigest<'_>,
    ctx: &ValidationContext,
) -> Validation {
    validate_as(signature, data, ctx, Profile::Cades).await
}

/// [`validate_detached`] for a CMS embedded as `profile` says.
pub async fn validate_as(
    signature: &[u8],
    data: DataDigest<'_>,
    ctx: &ValidationContext,
    profile: Profile,
) -> Validation {
    match examine_as(signature, data, ctx, profile) {
        Examination::Decided(v) => v,
        Examination::NeedsRevocation(mut p) => {
            let finding = match p.embedded_revocation() {
                Some(f) => {
                    // A time-stamped signature carrying the validation data of its whole
                    // chain: B-LT (EN 319 122-1 5.4).
                    let format = &mut p.base.result.format;
                    if format.baseline == Some(BaselineLevel::T) {
                        format.baseline = Some(BaselineLevel::Lt);
                    }
                    f
                }
                None => revocation::online(&p.chain, &ctx.revocation).await,
            };
            conclude(p, finding)
        }
    }
}
