//! Following a started login: one task per login long-polls the RP API
//! (`GET /session/{id}?timeoutMs=…`, via `RpApiClient::wait_for_completion`), verifies the
//! answer as a bank must and publishes the [`LoginState`] on a `watch` channel. Browsers wait
//! on the channel (`/{area}/login/status`); nothing spins while the phone is idle. An OK
//! answer of a same-device flow is published as [`LoginState::Callback`]: the callback
//! handler ([`super::callback`]) verifies it and publishes the end on the same channel.
//!
//! The task ends when the login ends, or when its [`LoginAttempt`] is dropped (a new login,
//! logout, the session expiring): the [`FollowTask`] handle aborts it.

use std::sync::Arc;
use std::time::SystemTime;

use tandem_rp::api::types::SessionStatusResponse;
use tandem_rp::client::revocation::{RevocationOptions, check_chain_revocation};
use tandem_rp::client::verify::{self, AuthenticationExpectation};
use tandem_rp::client::{DeviceLinkSession, RpApiClient, TrustAnchors};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::state::{self as login_state, Failure, LoginState, PendingCallback, Person};
use crate::config::RevocationConfig;

/// `timeoutMs` of each RP API long poll.
pub const POLL_TIMEOUT_MS: u64 = 30_000;

/// How a login was started (what its pages show).
#[derive(Debug)]
pub enum AttemptKind {
    /// An anonymous device-link login: the QR code (and Web2App link) come from it.
    DeviceLink {
        /// The session; its secret never leaves this process.
        session: Arc<DeviceLinkSession>,
        /// The Web2App link, if the session has a callback URL.
        web2app: Option<String>,
        /// The session's `initialCallbackUrl`, if any.
        callback_url: Option<String>,
    },
    /// A device-link login the RP API refused to start (the page shows why).
    DeviceLinkRefused,
    /// A notification login: the code to show.
    Notification {
        /// The verification code.
        vc: String,
    },
}

/// A running (or ended) login of one browser session.
#[derive(Debug)]
pub struct LoginAttempt {
    /// How it was started.
    pub kind: AttemptKind,
    /// Its state.
    pub state: watch::Receiver<LoginState>,
    /// Publishes the state (the follow task, and the callback handler after it).
    pub publish: Arc<watch::Sender<LoginState>>,
    _task: FollowTask,
}

impl LoginAttempt {
    /// A login that ended before it began (a refused start).
    pub fn failed(kind: AttemptKind, f: Failure) -> Self {
        let (tx, state) = watch::channel(LoginState::Failed(f));
        Self {
            kind,
            state,
            publish: Arc::new(tx),
            _task: FollowTask(None),
        }
    }

    /// The current state.
    pub fn current(&self) -> LoginState {
        self.state.borrow().clone()
    }
}

/// Aborts the follow task when dropped.
#[derive(Debug)]
struct FollowTask(Option<JoinHandle<()>>);

impl Drop for FollowTask {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// What verifying an answer needs.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Trust anchors for the certificate chain.
    pub anchors: Arc<TrustAnchors>,
    /// Revocation check, if configured.
    pub revocation: Option<RevocationConfig>,
}

/// Starts following RP API session `session_id`; the login's answer is checked against
/// `expected`.
pub fn follow(
    kind: AttemptKind,
    client: RpApiClient,
    session_id: String,
    expected: AuthenticationExpectation,
    verifier: Verifier,
) -> LoginAttempt {
    let (tx, state) = watch::channel(LoginState::Waiting);
    let publish = Arc::new(tx);
    let tx = publish.clone();
    let task = tokio::spawn(async move {
        let end = run(&client, session_id, expected, verifier).await;
        log_end(&end);
        let _ = tx.send(end);
    });
    LoginAttempt {
        kind,
        state,
        publish,
        _task: FollowTask(Some(task)),
    }
}

/// Logs how a login ended (no personal data beyond the result).
pub fn log_end(end: &LoginState) {
    let result = match end {
        LoginState::LoggedIn(_) => "ok",
        LoginState::Failed(f) => f.code(),
        LoginState::Callback(_) => "waiting-for-callback",
        LoginState::Waiting => "waiting",
    };
    tracing::info!(result, "login ended");
}

async fn run(
    client: &RpApiClient,
    session_id: String,
    expected: AuthenticationExpectation,
    verifier: Verifier,
) -> LoginState {
    let status = match client
        .wait_for_completion(&session_id, Some(POLL_TIMEOUT_MS), |_| {})
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(session = %session_id, error = %e, "following the login failed");
            return LoginState::Failed(login_state::poll_failure(&e));
        }
    };
    let ok = status
        .result
        .as_ref()
        .is_some_and(|r| login_state::end_result_failure(r.end_result).is_none());
    if ok && login_state::is_same_device(&status) {
        return LoginState::Callback(PendingCallback {
            session_id,
            status: Arc::new(status),
            expected: Arc::new(expected),
            verifier,
        });
    }
    finish(&status, &session_id, &expected, &verifier).await
}

/// Verifies a final status as a bank must (signature, chain, level, identity, flow, and the
/// callback values in `expected` for a same-device flow), then the revocation check.
pub async fn finish(
    status: &SessionStatusResponse,
    session_id: &str,
    expected: &AuthenticationExpectation,
    verifier: &Verifier,
) -> LoginState {
    let mut verified = None;
    let state = login_state::completed(status, |s| {
        verify::verify_authentication(s, expected, &verifier.anchors, SystemTime::now())
            .map(|v| {
                let p = Person::from_verified(&v, session_id);
                verified = Some(v.certificate_der);
                p
            })
            .inspect_err(|e| {
                tracing::warn!(session = %session_id, step = %e.step, reason = %e.reason, "login answer failed verification");
            })
    });
    if let (LoginState::LoggedIn(_), Some(r), Some(cert)) = (&state, &verifier.revocation, verified)
    {
        let opts = RevocationOptions {
            ocsp_url: r.ocsp_url.clone(),
            crl_url: r.crl_url.clone(),
            ca_crl_url: r.ca_crl_url.clone(),
            ..Default::default()
        };
        if let Err(e) = check_chain_revocation(&cert, &verifier.anchors, &opts).await {
            tracing::warn!(session = %session_id, reason = %e.report_line(), "login certificate failed the revocation check");
            return LoginState::Failed(Failure::Verification);
        }
    }
    state
}
