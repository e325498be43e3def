//! A document signature of the Demo Bank after it was started: one task waits for the phone
//! (`StartedSignature::finish`, long polls), finishes the CAdES or PAdES signature with the
//! time stamp (B-T), validates the result as the verification page does, and publishes the
//! [`SignState`] on a `watch` channel; browsers long-poll `/bank/sign/status` on it.
//! Dropping the [`SignAttempt`] (a new signature, logout, session expiry) aborts the task
//! and deletes its files.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tandem_rp::report::VerificationReport;
use tandem_rp::signing::{ErrorKind, SigningError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::sign_texts::S;
use crate::i18n::Lang;
use crate::login::state::Failure;
use crate::upload::TempUpload;

/// Why a signature did not come about: each has its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignFailure {
    /// Declined on the phone.
    Refused,
    /// Nobody answered in time.
    Timeout,
    /// A wrong verification code was chosen.
    WrongVc,
    /// The signing key is locked or disabled.
    KeyLocked,
    /// The time-stamp authority did not answer (or answered wrongly).
    TsaUnreachable,
    /// No `tsa_url` configured.
    NoTsa,
    /// The file cannot be signed in this form (an encrypted or broken PDF, say).
    Document,
    /// The RP API cannot be reached.
    Unreachable,
    /// The answer failed verification.
    Verification,
    /// The service failed.
    ServiceFailure,
    /// The logged-in person has no document number to sign with.
    NoDocument,
}

impl SignFailure {
    /// The failure of a signing step.
    pub fn of(e: &SigningError) -> Self {
        match e.kind() {
            ErrorKind::Refused => Self::Refused,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::WrongVerificationCode => Self::WrongVc,
            ErrorKind::AccountUnusable => Self::KeyLocked,
            ErrorKind::TimeStampOrValidationData => Self::TsaUnreachable,
            ErrorKind::Document => Self::Document,
            ErrorKind::Api => match e {
                SigningError::Api(a) => match crate::login::state::start_failure(a) {
                    Failure::AccountUnusable => Self::KeyLocked,
                    Failure::Unreachable => Self::Unreachable,
                    _ => Self::ServiceFailure,
                },
                _ => Self::Unreachable,
            },
            ErrorKind::Verification => Self::Verification,
            ErrorKind::NotSupportedByApp | ErrorKind::ServiceFailure | ErrorKind::Configuration => {
                Self::ServiceFailure
            }
        }
    }

    /// Its message.
    pub fn message(self) -> S {
        match self {
            Self::Refused => S::FailRefused,
            Self::Timeout => S::FailTimeout,
            Self::WrongVc => S::FailWrongVc,
            Self::KeyLocked => S::FailKeyLocked,
            Self::TsaUnreachable => S::FailTsa,
            Self::NoTsa => S::NoTsa,
            Self::Document => S::FailDocument,
            Self::Unreachable => S::FailUnreachable,
            Self::Verification => S::FailVerification,
            Self::ServiceFailure => S::FailService,
            Self::NoDocument => S::FailNoDocument,
        }
    }

    /// A stable name for logs, pages and tests.
    pub fn code(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::WrongVc => "wrong-vc",
            Self::KeyLocked => "key-locked",
            Self::TsaUnreachable => "tsa-unreachable",
            Self::NoTsa => "no-tsa",
            Self::Document => "document",
            Self::Unreachable => "unreachable",
            Self::Verification => "verification-failed",
            Self::ServiceFailure => "service-failure",
            Self::NoDocument => "no-document",
        }
    }
}

/// Where a signature stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignState {
    /// Waiting for the phone (or the TSA, or the validation).
    Waiting,
    /// Signed: the result is in [`SignAttempt::take_result`].
    Signed,
    /// Ended without a signature.
    Failed(SignFailure),
}

impl SignState {
    /// Whether it has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Waiting)
    }
}

/// A signed document and its verification report.
#[derive(Debug)]
pub struct Signed {
    /// The signed PDF or the `.p7s`.
    pub file: TempUpload,
    /// `application/pdf` or `application/pkcs7-signature`.
    pub content_type: &'static str,
    /// The report of the web process's own validation of `file`.
    pub report: VerificationReport,
}

/// Shared between the task and the attempt.
pub type Outcome = Arc<Mutex<Option<Signed>>>;

/// A running or ended signature of one browser session.
#[derive(Debug)]
pub struct SignAttempt {
    /// The verification code to show.
    pub vc: String,
    /// The uploaded file's name.
    pub name: String,
    /// Its state.
    pub state: watch::Receiver<SignState>,
    /// The result once taken from the task: the signed file (until downloaded) and the
    /// number of its kept report.
    pub done: Option<(Option<Signed>, u32)>,
    outcome: Outcome,
    _task: AbortOnDrop,
}

impl SignAttempt {
    /// An attempt followed by `task`, which publishes on the sender of `state` and leaves
    /// its result in `outcome`.
    pub fn new(
        vc: String,
        name: String,
        state: watch::Receiver<SignState>,
        outcome: Outcome,
        task: JoinHandle<()>,
    ) -> Self {
        Self {
            vc,
            name,
            state,
            done: None,
            outcome,
            _task: AbortOnDrop(Some(task)),
        }
    }

    /// The current state.
    pub fn current(&self) -> SignState {
        *self.state.borrow()
    }

    /// The task's result, once (the caller keeps it in [`SignAttempt::done`]).
    pub fn take_result(&self) -> Option<Signed> {
        self.outcome.lock().ok()?.take()
    }
}

/// Aborts the task when dropped.
#[derive(Debug)]
struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// What `/bank/sign/status` answers.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct StatusAnswer {
    /// `waiting`, `signed`, `failed` or `none`.
    pub state: &'static str,
    /// A line for the page.
    pub message: String,
    /// Where the page goes now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<&'static str>,
}

/// The done page.
pub const DONE_PATH: &str = "/bank/sign/done";

/// The status answer of `state` in `lang`.
pub fn status_answer(state: Option<SignState>, lang: Lang) -> StatusAnswer {
    match state {
        None => StatusAnswer {
            state: "none",
            message: String::new(),
            next: Some("/bank/account"),
        },
        Some(SignState::Waiting) => StatusAnswer {
            state: "waiting",
            message: S::Waiting.text(lang).into(),
            next: None,
        },
        Some(SignState::Signed) => StatusAnswer {
            state: "signed",
            message: S::SignedHeading.text(lang).into(),
            next: Some(DONE_PATH),
        },
        Some(SignState::Failed(f)) => StatusAnswer {
            state: "failed",
            message: f.message().text(lang).into(),
            next: Some(DONE_PATH),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_rp::api::types::EndResult;
    use tandem_rp::signing::SessionEnd;

    fn ended(r: EndResult) -> SignFailure {
        SignFailure::of(&SigningError::Ended(SessionEnd {
            end_result: r,
            interaction: None,
        }))
    }

    #[test]
    fn every_end_gets_its_own_message() {
        assert_eq!(ended(EndResult::UserRefused), SignFailure::Refused);
        assert_eq!(ended(EndResult::Timeout), SignFailure::Timeout);
        assert_eq!(ended(EndResult::WrongVc), SignFailure::WrongVc);
        assert_eq!(ended(EndResult::DocumentUnusable), SignFailure::KeyLocked);
        assert_eq!(
            SignFailure::of(&SigningError::DocumentUnusable),
            SignFailure::KeyLocked
        );
        assert_eq!(ended(EndResult::ServerError), SignFailure::ServiceFailure);
        let all = [
            SignFailure::Refused,
            SignFailure::Timeout,
            SignFailure::WrongVc,
            SignFailure::KeyLocked,
            SignFailure::TsaUnreachable,
            SignFailure::NoTsa,
            SignFailure::Document,
            SignFailure::Unreachable,
            SignFailure::Verification,
            SignFailure::ServiceFailure,
            SignFailure::NoDocument,
        ];
        let texts: std::collections::HashSet<_> =
            all.iter().map(|f| f.message().text(Lang::En)).collect();
        assert_eq!(texts.len(), all.len());
        for f in all {
            assert_ne!(f.message().text(Lang::De), f.message().text(Lang::En));
        }
    }

    #[test]
    fn the_status_answer_says_where_to_go() {
        let w = status_answer(Some(SignState::Waiting), Lang::En);
        assert_eq!((w.state, w.next), ("waiting", None));
        let f = status_answer(Some(SignState::Failed(SignFailure::Timeout)), Lang::De);
        assert_eq!((f.state, f.next), ("failed", Some(DONE_PATH)));
        assert_eq!(f.message, S::FailTimeout.text(Lang::De));
        let s = status_answer(Some(SignState::Signed), Lang::En);
        assert_eq!(s.next, Some(DONE_PATH));
    }
}
