//! The seed's rules as code: the overall signature outcome, the summary note it selects
//! together with the transmission path, and the exit status.

use serde::{Deserialize, Serialize};

use super::model::{SignatureLevel, TransmissionPath, VerificationReport};
use super::status::Colour;
use super::texts::{self, Lang};

/// The column of the seed's summary table: the worst result among all signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignatureOutcome {
    /// Every signature present is valid (also when there is none).
    AllValid,
    /// None is invalid, at least one is indeterminate.
    SomeIndeterminate,
    /// At least one signature is invalid.
    SomeInvalid,
}

impl SignatureOutcome {
    /// The outcome of a set of signature colours: red wins over yellow, yellow over green.
    pub fn of(colours: impl IntoIterator<Item = Colour>) -> Self {
        match colours.into_iter().max() {
            None | Some(Colour::Green) => Self::AllValid,
            Some(Colour::Yellow) => Self::SomeIndeterminate,
            Some(Colour::Red) => Self::SomeInvalid,
        }
    }
}

/// The summary note heading the documents part: one sentence about the signatures and one
/// about what they mean for an effective submission on the package's transmission path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SummaryNote {
    /// The table's column.
    pub outcome: SignatureOutcome,
    /// The table's row (beyond the signature row).
    pub path: TransmissionPath,
    /// About the signatures.
    pub signatures: String,
    /// About the submission on this path.
    pub submission: String,
    /// A remark when no document is signed or not every signature is qualified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

/// The summary note for `outcome` and `path` in `lang`.
pub fn summary_note(outcome: SignatureOutcome, path: TransmissionPath, lang: Lang) -> SummaryNote {
    SummaryNote {
        outcome,
        path,
        signatures: texts::signatures_note(outcome, lang).to_owned(),
        submission: texts::submission_note(outcome, path, lang),
        remark: None,
    }
}

/// How `tandem verify` ends for a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// 0: every check green, and at least one check was made.
    AllGreen = 0,
    /// 1: at least one signature (or the proof of origin) is red.
    AnyRed = 1,
    /// 2: otherwise: something is yellow, or nothing could be checked at all.
    Indeterminate = 2,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl VerificationReport {
    /// The colours of every signature in the report.
    pub fn signature_colours(&self) -> impl Iterator<Item = Colour> + '_ {
        self.documents
            .iter()
            .flat_map(|d| d.signatures.iter())
            .map(|s| s.status.colour())
    }

    /// The column of the summary table.
    pub fn outcome(&self) -> SignatureOutcome {
        SignatureOutcome::of(self.signature_colours())
    }

    /// The summary note for this report in `lang`.
    pub fn summary_note(&self, lang: Lang) -> SummaryNote {
        let mut note = summary_note(
            self.outcome(),
            self.proof_of_origin.transmission_path(),
            lang,
        );
        let mut signatures = self
            .documents
            .iter()
            .flat_map(|d| d.signatures.iter())
            .peekable();
        let any = signatures.peek().is_some();
        let all_qualified = signatures.all(|s| s.level == SignatureLevel::Qualified);
        note.remark = texts::level_remark(any, all_qualified, lang).map(str::to_owned);
        note
    }

    /// The exit status: the signatures' colours and, when a proof of origin was checked, its
    /// colour. A missing proof or one from an unknown CA is no check (a single signed file
    /// has none); a report with no check at all is not "all green".
    pub fn exit_status(&self) -> ExitStatus {
        let colours: Vec<Colour> = self
            .signature_colours()
            .chain(self.proof_of_origin.colour())
            .collect();
        match colours.iter().max() {
            None => ExitStatus::Indeterminate,
            Some(Colour::Green) => ExitStatus::AllGreen,
            Some(Colour::Yellow) => ExitStatus::Indeterminate,
            Some(Colour::Red) => ExitStatus::AnyRed,
        }
    }
}
