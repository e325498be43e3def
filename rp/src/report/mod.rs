//! The verification report (the beA "Prüfprotokoll" of `seeds/bea-verification-report.de.txt`):
//! a typed result, the seed's rules, German and English texts, JSON, HTML and PDF.
//!
//! The model does not check signatures: the CAdES, PAdES and package verification fill it,
//! this module only decides the summary, the messages and the exit status, and renders.
//!
//! ```text
//!  signature checks (elsewhere) ──▶ model::VerificationReport
//!                                     ├ header: issuing system, time, message data, parties
//!                                     ├ proof_of_origin ──▶ TransmissionPath (secure / not
//!                                     │                      confirmed / not secure)
//!                                     └ documents[] ─ signatures[] ─ status::SignatureStatus
//!                                                                   (ETSI indication, colour)
//!  rules: SignatureOutcome (all valid / some indeterminate / some invalid)
//!         × TransmissionPath ──▶ SummaryNote (texts::Lang::De | En); ExitStatus 0 / 1 / 2
//!  render: to_json / from_json (ETSI names) · html::render (self-contained page)
//!          · pdf::render (A4, standard fonts, several pages)
//! ```

pub mod html;
pub mod model;
pub mod pdf;
pub mod rules;
pub mod status;
pub mod texts;
pub mod time;

#[cfg(test)]
mod tests;

pub use model::{
    BaselineLevel, Document, DocumentRole, FormatFamily, MessageData, Party, ProofOfOrigin,
    ReportHeader, ReportVersion, SignatureFormat, SignatureLevel, SignatureResult, SigningTime,
    SigningTimeSource, TransmissionPath, VerificationReport,
};
pub use rules::{ExitStatus, SignatureOutcome, SummaryNote};
pub use status::{Colour, Indication, SignatureStatus, SubIndication};
pub use texts::Lang;
pub use time::UtcTime;

/// A report that could not be read from JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Not JSON of the report's schema (wrong version, unknown names, a sub-indication that
    /// does not go with its indication, ...).
    #[error("not a verification report: {0}")]
    Json(#[from] serde_json::Error),
}

impl VerificationReport {
    /// The report as pretty-printed JSON, indications by their ETSI names.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a report written by [`Self::to_json`].
    pub fn from_json(json: &str) -> Result<Self, ReportError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The report as a self-contained HTML page in `lang`.
    pub fn to_html(&self, lang: Lang) -> String {
        html::render(self, lang)
    }

    /// The report as a PDF file (A4) in `lang`.
    pub fn to_pdf(&self, lang: Lang) -> Vec<u8> {
        pdf::render(self, lang)
    }
}
