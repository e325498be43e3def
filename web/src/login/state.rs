//! The login's decisions, transport-free: typed RP API outcomes in, a typed [`LoginState`]
//! out, and what the browser's status poll says about it ([`StatusAnswer`]).
//!
//! ```text
//!  start error (client::Error) ──▶ start_failure ──▶ Failure
//!  poll error  (client::Error) ──▶ poll_failure  ──▶ Failure
//!  COMPLETE status ──▶ completed(status, verify) ──▶ LoggedIn(Person) | Failed(Failure)
//!  LoginState ──▶ StatusAnswer { state, message, next }
//! ```

use std::sync::Arc;

use serde::Serialize;
use tandem_rp::api::types::{EndResult, FlowType, SessionState, SessionStatusResponse, Signature};
use tandem_rp::client::Error as RpError;
use tandem_rp::client::verify::{AuthenticationExpectation, VerifiedAuthentication};

use super::LoginArea;
use super::follow::Verifier;
use crate::i18n::{Lang, Msg};

/// Why a login did not succeed: each has its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// USER_REFUSED and its `*_REFUSED*` variants.
    UserRefused,
    /// TIMEOUT.
    Timeout,
    /// WRONG_VC.
    WrongVc,
    /// DOCUMENT_UNUSABLE / ACCOUNT_UNUSABLE: every key locked or disabled.
    AccountUnusable,
    /// The RP API knows nobody by that identifier (404 at the start).
    UnknownPerson,
    /// SERVER_ERROR, PROTOCOL_FAILURE and other answers we cannot use.
    ServerError,
    /// An OK answer that failed our verification (signature, chain, level, identity).
    Verification,
    /// The RP API did not answer (connection, TLS, pin, maintenance).
    Unreachable,
}

impl Failure {
    /// The message shown.
    pub fn message(self) -> Msg {
        match self {
            Self::UserRefused => Msg::FailUserRefused,
            Self::Timeout => Msg::FailTimeout,
            Self::WrongVc => Msg::FailWrongVc,
            Self::AccountUnusable => Msg::FailAccountUnusable,
            Self::UnknownPerson => Msg::FailUnknownPerson,
            Self::ServerError => Msg::FailServerError,
            Self::Verification => Msg::FailVerification,
            Self::Unreachable => Msg::FailUnreachable,
        }
    }

    /// A stable name for logs and tests.
    pub fn code(self) -> &'static str {
        match self {
            Self::UserRefused => "user-refused",
            Self::Timeout => "timeout",
            Self::WrongVc => "wrong-vc",
            Self::AccountUnusable => "account-unusable",
            Self::UnknownPerson => "unknown-person",
            Self::ServerError => "server-error",
            Self::Verification => "verification-failed",
            Self::Unreachable => "unreachable",
        }
    }
}

/// The person a verified login names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Given name and surname (or the certificate's CN).
    pub name: String,
    /// The ETSI semantics identifier, e.g. `PNOEE-30303039914`.
    pub semantics_identifier: String,
    /// The account's document number.
    pub document_number: Option<String>,
    /// The RP API session that logged the person in (the portal's endpoints are bound to
    /// it).
    pub auth_session_id: String,
}

impl Person {
    /// The person of a verified authentication of RP API session `auth_session_id`.
    pub fn from_verified(v: &VerifiedAuthentication, auth_session_id: &str) -> Self {
        let id = &v.identity;
        let name = [id.given_name.as_deref(), id.surname.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let name = if name.is_empty() {
            id.common_name
                .clone()
                .unwrap_or_else(|| id.serial_number.clone())
        } else {
            name
        };
        Self {
            name,
            semantics_identifier: id.serial_number.clone(),
            document_number: v.document_number.clone(),
            auth_session_id: auth_session_id.to_owned(),
        }
    }
}

/// An OK answer of a same-device flow: it is verified only with the values the browser
/// brings back on the callback URL (`sessionSecretDigest`, `userChallengeVerifier`).
#[derive(Debug, Clone)]
pub struct PendingCallback {
    /// The RP API session.
    pub session_id: String,
    /// Its final status.
    pub status: Arc<SessionStatusResponse>,
    /// The request values the answer is checked against.
    pub expected: Arc<AuthenticationExpectation>,
    /// Anchors and revocation check.
    pub verifier: Verifier,
}

impl PartialEq for PendingCallback {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.status, &other.status)
    }
}

impl Eq for PendingCallback {}

/// Whether an OK status ended in a same-device flow (its callback must be checked).
pub fn is_same_device(status: &SessionStatusResponse) -> bool {
    let flow = match &status.signature {
        Some(Signature::AcspV2(s)) => Some(s.flow_type),
        Some(Signature::RawDigest(s)) => Some(s.flow_type),
        Some(Signature::CertificateChoice(s)) => Some(s.flow_type),
        None => None,
    };
    matches!(flow, Some(FlowType::Web2App | FlowType::App2App))
}

/// Where a login stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginState {
    /// The phone has not answered yet.
    Waiting,
    /// The phone confirmed in a same-device flow; waiting for the browser's return through
    /// the callback URL.
    Callback(PendingCallback),
    /// Verified: this person.
    LoggedIn(Person),
    /// Ended without a login.
    Failed(Failure),
}

impl LoginState {
    /// Whether the login has ended.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Waiting | Self::Callback(_))
    }

    /// Whether the RP API session has ended (final, or waiting only for the callback).
    pub fn session_ended(&self) -> bool {
        !matches!(self, Self::Waiting)
    }
}

/// The failure of a non-OK end result; `None` for OK.
pub fn end_result_failure(r: EndResult) -> Option<Failure> {
    Some(match r {
        EndResult::Ok => return None,
        EndResult::UserRefused
        | EndResult::UserRefusedCertChoice
        | EndResult::UserRefusedInteraction => Failure::UserRefused,
        EndResult::Timeout => Failure::Timeout,
        EndResult::WrongVc => Failure::WrongVc,
        EndResult::DocumentUnusable | EndResult::AccountUnusable => Failure::AccountUnusable,
        EndResult::RequiredInteractionNotSupportedByApp
        | EndResult::ProtocolFailure
        | EndResult::ExpectedLinkedSession
        | EndResult::ServerError => Failure::ServerError,
    })
}

fn unreachable_or_server(e: &RpError) -> Failure {
    match e {
        RpError::Transport { .. } | RpError::PinMismatch { .. } | RpError::Tls { .. } => {
            Failure::Unreachable
        }
        // 580: under maintenance.
        RpError::Problem { status: 580, .. } => Failure::Unreachable,
        _ => Failure::ServerError,
    }
}

/// A refused session start.
pub fn start_failure(e: &RpError) -> Failure {
    match e {
        RpError::Problem { status: 404, .. } => Failure::UnknownPerson,
        // Smart-ID's 471/472: no suitable account / look at the app or the portal.
        RpError::Problem {
            status: 471 | 472, ..
        } => Failure::AccountUnusable,
        _ => unreachable_or_server(e),
    }
}

/// A failed status poll.
pub fn poll_failure(e: &RpError) -> Failure {
    unreachable_or_server(e)
}

/// The state after a status answer. `verify` checks an OK answer as a bank must.
pub fn completed<E>(
    status: &SessionStatusResponse,
    verify: impl FnOnce(&SessionStatusResponse) -> Result<Person, E>,
) -> LoginState {
    if status.state != SessionState::Complete {
        return LoginState::Waiting;
    }
    let Some(result) = &status.result else {
        return LoginState::Failed(Failure::ServerError);
    };
    match end_result_failure(result.end_result) {
        Some(f) => LoginState::Failed(f),
        None => match verify(status) {
            Ok(p) => LoginState::LoggedIn(p),
            Err(_) => LoginState::Failed(Failure::Verification),
        },
    }
}

/// The JSON answer of `GET /{area}/login/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusAnswer {
    /// `waiting`, `ok`, `failed` or `none` (no login in this session).
    pub state: &'static str,
    /// A line for the page.
    pub message: String,
    /// Where the page goes next; `null` while waiting.
    pub next: Option<&'static str>,
}

/// What the status poll of `area` answers for `state` (`None`: no login running).
pub fn status_answer(area: LoginArea, state: Option<&LoginState>, lang: Lang) -> StatusAnswer {
    match state {
        None => StatusAnswer {
            state: "none",
            message: String::new(),
            next: Some(area.home()),
        },
        Some(LoginState::Waiting | LoginState::Callback(_)) => StatusAnswer {
            state: "waiting",
            message: Msg::Waiting.text(lang).to_owned(),
            next: None,
        },
        Some(LoginState::LoggedIn(_)) => StatusAnswer {
            state: "ok",
            message: Msg::LoginDone.text(lang).to_owned(),
            next: Some(area.done_path()),
        },
        Some(LoginState::Failed(f)) => StatusAnswer {
            state: "failed",
            message: f.message().text(lang).to_owned(),
            next: Some(area.done_path()),
        },
    }
}

/// The semantics identifier of a notification login: `PNO{CC}-{id}`; `None` if the country
/// is not two letters or the number is not 1–32 letters, digits or hyphens.
pub fn semantics_identifier(country: &str, national_id: &str) -> Option<String> {
    let cc = country.trim().to_ascii_uppercase();
    let id = national_id.trim();
    let cc_ok = cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase());
    let id_ok =
        (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (cc_ok && id_ok).then(|| format!("PNO{cc}-{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_rp::api::types::SessionResult;

    fn status(state: SessionState, end: Option<EndResult>) -> SessionStatusResponse {
        let mut v = serde_json::json!({ "state": match state {
            SessionState::Running => "RUNNING",
            SessionState::Complete => "COMPLETE",
        }});
        if let Some(e) = end {
            v["result"] = serde_json::to_value(SessionResult {
                end_result: e,
                document_number: None,
                details: None,
            })
            .unwrap();
        }
        serde_json::from_value(v).unwrap()
    }

    fn person() -> Person {
        Person {
            name: "MARY TESTNUMBER".into(),
            semantics_identifier: "PNOEE-30303039914".into(),
            document_number: Some("PNOEE-30303039914-AAAA-Q".into()),
            auth_session_id: "9b5a1c3e-0f4e-4b8e-8c1a-2f2d9d1e7a10".into(),
        }
    }

    #[test]
    fn every_end_result_has_its_outcome() {
        let cases = [
            (EndResult::UserRefused, Failure::UserRefused),
            (EndResult::UserRefusedInteraction, Failure::UserRefused),
            (EndResult::UserRefusedCertChoice, Failure::UserRefused),
            (EndResult::Timeout, Failure::Timeout),
            (EndResult::WrongVc, Failure::WrongVc),
            (EndResult::DocumentUnusable, Failure::AccountUnusable),
            (EndResult::AccountUnusable, Failure::AccountUnusable),
            (EndResult::ServerError, Failure::ServerError),
            (EndResult::ProtocolFailure, Failure::ServerError),
        ];
        for (end, want) in cases {
            let s = status(SessionState::Complete, Some(end));
            let got = completed(&s, |_| -> Result<Person, ()> { panic!("not verified") });
            assert_eq!(got, LoginState::Failed(want), "{end:?}");
        }
    }

    #[test]
    fn ok_is_only_a_login_if_it_verifies() {
        let s = status(SessionState::Complete, Some(EndResult::Ok));
        assert_eq!(
            completed(&s, |_| Ok::<_, ()>(person())),
            LoginState::LoggedIn(person())
        );
        assert_eq!(
            completed(&s, |_| Err::<Person, _>("bad signature")),
            LoginState::Failed(Failure::Verification)
        );
        let running = status(SessionState::Running, None);
        assert_eq!(
            completed(&running, |_| Ok::<_, ()>(person())),
            LoginState::Waiting
        );
        let no_result = status(SessionState::Complete, None);
        assert_eq!(
            completed(&no_result, |_| Ok::<_, ()>(person())),
            LoginState::Failed(Failure::ServerError)
        );
    }

    #[test]
    fn status_answers_say_where_to_go() {
        let bank = LoginArea::Bank;
        let w = status_answer(bank, Some(&LoginState::Waiting), Lang::En);
        assert_eq!((w.state, w.next), ("waiting", None));
        let ok = status_answer(bank, Some(&LoginState::LoggedIn(person())), Lang::De);
        assert_eq!((ok.state, ok.next), ("ok", Some("/bank/login/done")));
        let f = status_answer(bank, Some(&LoginState::Failed(Failure::Timeout)), Lang::En);
        assert_eq!(f.state, "failed");
        assert_eq!(f.message, Msg::FailTimeout.text(Lang::En));
        assert_eq!(status_answer(bank, None, Lang::En).next, Some("/bank/"));
        let portal = LoginArea::Portal;
        let ok = status_answer(portal, Some(&LoginState::LoggedIn(person())), Lang::En);
        assert_eq!(ok.next, Some("/portal/login/done"));
        assert_eq!(status_answer(portal, None, Lang::En).next, Some("/portal/"));
    }

    #[test]
    fn semantics_identifiers_are_checked() {
        assert_eq!(
            semantics_identifier("ee", " 30303039914 ").as_deref(),
            Some("PNOEE-30303039914")
        );
        assert_eq!(semantics_identifier("EST", "1"), None);
        assert_eq!(semantics_identifier("EE", ""), None);
        assert_eq!(semantics_identifier("EE", "1/2"), None);
        assert_eq!(semantics_identifier("E1", "1"), None);
    }

    #[test]
    fn start_errors_are_told_apart() {
        let p = |status: u16| RpError::Problem {
            status,
            problem: Box::new(
                serde_json::from_value(serde_json::json!({
                    "type": "about:blank", "title": "t", "status": status, "detail": "d"
                }))
                .unwrap(),
            ),
        };
        assert_eq!(start_failure(&p(404)), Failure::UnknownPerson);
        assert_eq!(start_failure(&p(471)), Failure::AccountUnusable);
        assert_eq!(start_failure(&p(580)), Failure::Unreachable);
        assert_eq!(start_failure(&p(500)), Failure::ServerError);
        assert_eq!(poll_failure(&p(404)), Failure::ServerError);
    }
}
