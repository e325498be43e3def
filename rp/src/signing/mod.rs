//! Remote document signing over the RP API, as steps a caller drives: a command line tool
//! prints between them, a web server shows the verification code while the phone confirms
//! (each step is an `async fn` whose future is `Send`; dropping it cancels the wait).
//!
//! ```text
//!  signer::certificate_of_document ─┐ (or signer::start_certificate_choice → finish)
//!                                    ├─▶ Signer (certificate checked, issuing CA found)
//!  signer::Signer::new ──────────────┘
//!  document::prepare_cades / prepare_pades ─▶ digest to sign
//!  session::start ─▶ StartedSignature { session id, verification code }   (show the code)
//!  StartedSignature::finish ─▶ long poll, end result, signature verified (VerifiedSignature)
//!  document::finish_cades / finish_pades ─▶ CMS, time stamp (B-T), validation data (B-LT)
//! ```
//!
//! Errors are [`SigningError`]: English messages, and [`SigningError::kind`] for a front end
//! that shows its own texts.

pub mod document;
pub mod session;
pub mod signer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::api::types::{EndResult, SessionState, SessionStatusResponse};
use crate::client::verify::{VerificationError, end_result_name};
use crate::documents::cades::CadesError;
use crate::documents::ltv::LtvError;
use crate::documents::pades::PadesError;
use crate::documents::timestamp::TimeStampError;

pub use document::{BaselineLevel, Extension, Step};
pub use session::{SessionOptions, StartedSignature};
pub use signer::Signer;

/// The relying party as registered on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// relyingPartyUUID.
    pub uuid: String,
    /// relyingPartyName.
    pub name: String,
}

/// How a session ended when it did not end OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    /// The endResult.
    pub end_result: EndResult,
    /// The refused interaction (`USER_REFUSED_INTERACTION`).
    pub interaction: Option<String>,
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&end_result_name(self.end_result))?;
        if let Some(i) = &self.interaction {
            write!(f, " (interaction {i})")?;
        }
        Ok(())
    }
}

/// What went wrong, coarsely: for texts a front end shows in its own languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The person refused (the signature, the certificate choice or an interaction).
    Refused,
    /// The person did not answer in time.
    Timeout,
    /// The person chose a wrong verification code.
    WrongVerificationCode,
    /// The account or document cannot sign now.
    AccountUnusable,
    /// The app cannot show what was asked.
    NotSupportedByApp,
    /// The server or the app failed (protocol failure, server error, ...).
    ServiceFailure,
    /// The answer did not verify: certificate, signature, chain or revocation.
    Verification,
    /// The RP API could not be reached or answered with an error.
    Api,
    /// The time-stamp authority or the revocation services failed.
    TimeStampOrValidationData,
    /// The document cannot be read or signed in this form (e.g. not a PDF).
    Document,
    /// The caller's configuration (hash, issuing CA, ...).
    Configuration,
}

/// An error of a signing step.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The RP API call failed.
    #[error(transparent)]
    Api(#[from] crate::client::Error),
    /// The signing-certificate endpoint says the document cannot sign now.
    #[error("the document cannot be used for signing now (DOCUMENT_UNUSABLE)")]
    DocumentUnusable,
    /// The signing-certificate endpoint answered OK without a certificate.
    #[error("state OK but no certificate")]
    NoCertificate,
    /// A certificate that is not Base64.
    #[error("cert.value is not Base64")]
    CertificateEncoding,
    /// A certificate that is not DER.
    #[error("the signer's certificate: {0}")]
    CertificateParse(String),
    /// No issuing CA certificate among the candidates.
    #[error("no certificate of the CA that issued the signer's certificate among those given")]
    IssuerNotFound,
    /// The certificate choice named no document.
    #[error("the certificate choice gave no documentNumber")]
    NoDocumentNumber,
    /// The session is still running (the long poll gave up).
    #[error("the session is still running")]
    StillRunning,
    /// The session ended, but not OK.
    #[error("did not succeed: {0}")]
    Ended(SessionEnd),
    /// The answer did not verify.
    #[error("verification failed at {}: {}", .0.step, .0.reason)]
    Verification(Box<VerificationError>),
    /// The signature came from another certificate than the signer's.
    #[error("the signature was made with another certificate than the one asked for first")]
    CertificateMismatch,
    /// A hash that CAdES and PAdES signatures here do not use.
    #[error("CAdES signatures here use SHA-256, SHA-384 or SHA-512, not {0}")]
    UnsupportedHash(&'static str),
    /// B-LT without a time stamp.
    #[error("B-LT needs a time stamp")]
    LongTermNeedsTimeStamp,
    /// The document could not be read.
    #[error("cannot read the document")]
    Read(#[source] std::io::Error),
    /// Building the CMS failed.
    #[error(transparent)]
    Cades(#[from] CadesError),
    /// Preparing the PDF failed (not a PDF, encrypted, ...).
    #[error("cannot sign {}", .path.display())]
    PadesPrepare {
        /// The PDF.
        path: PathBuf,
        /// Why.
        #[source]
        source: PadesError,
    },
    /// Writing the signature into the PDF failed.
    #[error(transparent)]
    Pades(#[from] PadesError),
    /// The document security store (B-LT) could not be added.
    #[error("no /DSS, no signed PDF written")]
    Dss(#[source] PadesError),
    /// No time stamp.
    #[error("no time stamp, no {written} written")]
    TimeStamp {
        /// "signature" or "signed PDF".
        written: &'static str,
        /// Why.
        #[source]
        source: TimeStampError,
    },
    /// No validation data.
    #[error("no validation data, no {written} written")]
    ValidationData {
        /// "signature" or "signed PDF".
        written: &'static str,
        /// Why.
        #[source]
        source: LtvError,
    },
    /// Embedding the validation data failed.
    #[error(transparent)]
    Ltv(#[from] LtvError),
}

impl SigningError {
    /// The coarse kind, for a front end's own texts.
    pub fn kind(&self) -> ErrorKind {
        use SigningError as E;
        match self {
            E::Ended(end) => match end.end_result {
                EndResult::UserRefused
                | EndResult::UserRefusedCertChoice
                | EndResult::UserRefusedInteraction => ErrorKind::Refused,
                EndResult::Timeout => ErrorKind::Timeout,
                EndResult::WrongVc => ErrorKind::WrongVerificationCode,
                EndResult::DocumentUnusable | EndResult::AccountUnusable => {
                    ErrorKind::AccountUnusable
                }
                EndResult::RequiredInteractionNotSupportedByApp => ErrorKind::NotSupportedByApp,
                EndResult::Ok
                | EndResult::ProtocolFailure
                | EndResult::ExpectedLinkedSession
                | EndResult::ServerError => ErrorKind::ServiceFailure,
            },
            E::StillRunning => ErrorKind::Timeout,
            E::DocumentUnusable => ErrorKind::AccountUnusable,
            E::Api(_) => ErrorKind::Api,
            E::NoCertificate | E::CertificateEncoding | E::NoDocumentNumber => {
                ErrorKind::ServiceFailure
            }
            E::CertificateParse(_) | E::Verification(_) | E::CertificateMismatch => {
                ErrorKind::Verification
            }
            E::IssuerNotFound | E::UnsupportedHash(_) | E::LongTermNeedsTimeStamp => {
                ErrorKind::Configuration
            }
            E::Read(_) | E::Cades(_) | E::PadesPrepare { .. } | E::Pades(_) => ErrorKind::Document,
            E::Dss(_) | E::TimeStamp { .. } | E::ValidationData { .. } | E::Ltv(_) => {
                ErrorKind::TimeStampOrValidationData
            }
        }
    }
}

impl From<VerificationError> for SigningError {
    fn from(e: VerificationError) -> Self {
        SigningError::Verification(Box::new(e))
    }
}

/// A session's end result: `Ok` for COMPLETE with OK (or without a result, which the
/// verification then refuses), [`SigningError::StillRunning`] or [`SigningError::Ended`].
pub fn check_end_result(status: &SessionStatusResponse) -> Result<(), SigningError> {
    if status.state != SessionState::Complete {
        return Err(SigningError::StillRunning);
    }
    let Some(result) = &status.result else {
        return Ok(());
    };
    if result.end_result != EndResult::Ok {
        return Err(SigningError::Ended(SessionEnd {
            end_result: result.end_result,
            interaction: result.details.as_ref().and_then(|d| d.interaction.clone()),
        }));
    }
    Ok(())
}
