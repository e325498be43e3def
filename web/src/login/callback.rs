//! The Web2App / App2App return: `GET /{area}/login/callback?value=…&sessionSecretDigest=…
//! &userChallengeVerifier=…`, the URL the Tandem app opens after the person confirmed on
//! the same device (callback_urls.txt).
//!
//! ```text
//!  browser ── callback URL (with the session cookie) ──▶ callback()
//!     the session's device-link login (its initialCallbackUrl, its secret)
//!     wait (bounded) until the follow task has the final status
//!     LoginState::Callback(pending) taken once ──▶ check() = DeviceLinkSession::check_callback
//!        ──▶ AuthenticationExpectation.callback = the values ──▶ follow::finish (verify,
//!            revocation) ──▶ LoggedIn | Failed(Verification), published
//!  ──▶ /{area}/login/done (rotates the session, as every login)
//! ```
//!
//! The `value` parameter binds the URL to this browser's session: `check_callback` compares
//! the whole `initialCallbackUrl` (with its random value) in constant time. A callback is
//! accepted once: the pending answer is taken off the channel before it is checked.

use std::time::{Duration, Instant};

use axum::extract::{Extension, State};
use axum::http::Uri;
use axum::response::{Html, IntoResponse, Redirect, Response};
use tandem_rp::client::verify::SameDeviceCallback;
use tandem_rp::client::{CallbackError, DeviceLinkSession};

use super::follow::{self, AttemptKind};
use super::state::{Failure, LoginState, PendingCallback};
use super::{LoginArea, views};
use crate::state::{AppState, Current};

/// How long the callback waits for the login's final status (the app opens the callback
/// right after confirming; the follow task's long poll sees the end at once).
pub const CALLBACK_WAIT: Duration = Duration::from_secs(30);

/// The URL the browser came back on: the `initialCallbackUrl`'s scheme, host and path (this
/// service's own origin as sent to the RP API, not the request's `Host`) with the query the
/// browser brought. `None` without a query.
pub fn returned_url(initial_callback_url: &str, query: Option<&str>) -> Option<String> {
    let base = initial_callback_url.split('?').next()?;
    Some(format!("{base}?{}", query.filter(|q| !q.is_empty())?))
}

/// Checks the returned URL against the session and its final status.
pub fn check(
    session: &DeviceLinkSession,
    initial_callback_url: &str,
    query: Option<&str>,
    pending: &PendingCallback,
) -> Result<SameDeviceCallback, CallbackError> {
    let url = returned_url(initial_callback_url, query).ok_or(CallbackError::WrongUrl)?;
    session.check_callback(&url, &pending.status)
}

/// `GET /{area}/login/callback`.
pub async fn callback(
    area: LoginArea,
    State(app): State<AppState>,
    Extension(cur): Extension<Current>,
    uri: Uri,
) -> Response {
    let found = app
        .sessions
        .with(&cur.id, Instant::now(), |s| {
            let a = area.slot(&mut s.data).attempt.as_ref()?;
            match &a.kind {
                AttemptKind::DeviceLink {
                    session,
                    callback_url: Some(initial),
                    ..
                } => Some((
                    session.clone(),
                    initial.clone(),
                    a.state.clone(),
                    a.publish.clone(),
                )),
                _ => None,
            }
        })
        .flatten();
    let Some((session, initial, mut rx, publish)) = found else {
        // Used already (the person is logged in): their page. Another browser, an expired
        // session, or no same-device login: nothing to log in.
        let logged_in = app
            .sessions
            .with(&cur.id, Instant::now(), |s| {
                area.slot(&mut s.data).person.is_some()
            })
            .unwrap_or(false);
        if logged_in {
            return Redirect::to(area.after_login()).into_response();
        }
        tracing::warn!(area = area.prefix(), "callback without a matching login");
        let page = views::failed(area, cur.lang, Failure::Verification);
        return Html(page.into_string()).into_response();
    };
    let _ = tokio::time::timeout(CALLBACK_WAIT, rx.wait_for(LoginState::session_ended)).await;
    // Take the pending answer: a second callback finds none.
    let mut pending = None;
    publish.send_if_modified(|s| match s {
        LoginState::Callback(p) => {
            pending = Some(p.clone());
            *s = LoginState::Waiting;
            true
        }
        _ => false,
    });
    if let Some(p) = pending {
        let end = match check(&session, &initial, uri.query(), &p) {
            Ok(values) => {
                let mut expected = (*p.expected).clone();
                expected.callback = Some(values);
                follow::finish(&p.status, &p.session_id, &expected, &p.verifier).await
            }
            Err(e) => {
                tracing::warn!(session = %p.session_id, reason = %e, "callback refused");
                LoginState::Failed(Failure::Verification)
            }
        };
        follow::log_end(&end);
        publish.send_replace(end);
    }
    Redirect::to(area.done_path()).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use sha2::{Digest as _, Sha256};
    use tandem_rp::api::types::{
        AcspV2Signature, AuthCertificateLevel, AuthSignatureProtocol,
        DeviceLinkAuthenticationRequest, DeviceLinkSessionResponse, EndResult, FlowType,
        Interaction, SessionResult, SessionState, SessionStatusResponse, Signature,
        SignatureAlgorithm, encode_interactions,
    };
    use tandem_rp::client::TrustAnchors;
    use tandem_rp::client::verify::AuthenticationExpectation;

    use super::*;
    use crate::login::follow::Verifier;
    use crate::login::handlers::protocol_parameters;

    const INITIAL: &str =
        "https://web.example/portal/login/callback?value=00112233445566778899aabbccddeeff";
    const VERIFIER: &str = "XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c";

    fn b64url_sha256(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(b))
    }

    fn fixture() -> (DeviceLinkSession, PendingCallback, Vec<u8>) {
        let secret = [7u8; 32];
        let req = DeviceLinkAuthenticationRequest {
            relying_party_uuid: "00000000-0000-4000-8000-000000000002".into(),
            relying_party_name: "Tandem Portal".into(),
            initial_callback_url: Some(INITIAL.into()),
            certificate_level: Some(AuthCertificateLevel::Qualified),
            signature_protocol: AuthSignatureProtocol::AcspV2,
            signature_protocol_parameters: protocol_parameters(),
            interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
                display_text60: "Log in".into(),
            }]),
            request_properties: None,
            capabilities: None,
            nonce: None,
        };
        let resp = DeviceLinkSessionResponse {
            session_id: "9b5a1c3e-0f4e-4b8e-8c1a-2f2d9d1e7a10".into(),
            session_token: "token".into(),
            session_secret: STANDARD.encode(secret),
            device_link_base: "https://smart-id.example/device-link".into(),
        };
        let session =
            DeviceLinkSession::for_authentication(&resp, Instant::now(), "smart-id", &req).unwrap();
        let status = SessionStatusResponse {
            state: SessionState::Complete,
            signature: Some(Signature::AcspV2(AcspV2Signature {
                value: String::new(),
                server_random: String::new(),
                user_challenge: b64url_sha256(VERIFIER.as_bytes()),
                flow_type: FlowType::Web2App,
                signature_algorithm: SignatureAlgorithm::RsassaPss,
                signature_algorithm_parameters: None,
            })),
            result: Some(SessionResult {
                end_result: EndResult::Ok,
                document_number: Some("PNOEE-30303039914-AAAA-Q".into()),
                details: None,
            }),
            ..SessionStatusResponse::running()
        };
        let pending = PendingCallback {
            session_id: resp.session_id.clone(),
            status: Arc::new(status),
            expected: Arc::new(
                AuthenticationExpectation::device_link(
                    &req,
                    "smart-id",
                    &tandem_rp::client::AuthTarget::Anonymous,
                )
                .unwrap(),
            ),
            verifier: Verifier {
                anchors: Arc::new(TrustAnchors::new()),
                revocation: None,
            },
        };
        (session, pending, secret.to_vec())
    }

    #[test]
    fn the_returned_url_keeps_our_origin_and_takes_the_query() {
        assert_eq!(
            returned_url(INITIAL, Some("value=1&sessionSecretDigest=x")).as_deref(),
            Some("https://web.example/portal/login/callback?value=1&sessionSecretDigest=x")
        );
        assert_eq!(returned_url(INITIAL, None), None);
        assert_eq!(returned_url(INITIAL, Some("")), None);
    }

    #[test]
    fn only_the_sessions_own_callback_passes() {
        let (session, pending, secret) = fixture();
        let value = INITIAL.split_once('?').unwrap().1;
        let digest = b64url_sha256(&secret);
        let good = format!("{value}&sessionSecretDigest={digest}&userChallengeVerifier={VERIFIER}");
        let cb = check(&session, INITIAL, Some(&good), &pending).unwrap();
        assert_eq!(cb.session_secret_digest, digest);
        assert_eq!(cb.user_challenge_verifier.as_deref(), Some(VERIFIER));
        assert_eq!(cb.session_secret_b64, STANDARD.encode(&secret));

        // Another browser's value, a wrong digest, a wrong verifier, nothing at all.
        let other_value = good.replace("value=0011", "value=ff11");
        assert_eq!(
            check(&session, INITIAL, Some(&other_value), &pending).unwrap_err(),
            CallbackError::WrongUrl
        );
        let wrong_digest = good.replace(&digest, &b64url_sha256(b"another secret"));
        assert_eq!(
            check(&session, INITIAL, Some(&wrong_digest), &pending).unwrap_err(),
            CallbackError::SessionSecretDigest
        );
        let wrong_verifier = good.replace(VERIFIER, "AAAAGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c");
        assert_eq!(
            check(&session, INITIAL, Some(&wrong_verifier), &pending).unwrap_err(),
            CallbackError::UserChallengeVerifier
        );
        assert_eq!(
            check(&session, INITIAL, None, &pending).unwrap_err(),
            CallbackError::WrongUrl
        );
    }

    #[tokio::test]
    async fn a_checked_callback_still_needs_a_valid_signature() {
        // The callback's values only complete the expectation: an answer whose signature
        // does not verify (here: none, no anchors) is no login.
        let (session, pending, secret) = fixture();
        let value = INITIAL.split_once('?').unwrap().1;
        let q = format!(
            "{value}&sessionSecretDigest={}&userChallengeVerifier={VERIFIER}",
            b64url_sha256(&secret)
        );
        let values = check(&session, INITIAL, Some(&q), &pending).unwrap();
        let mut expected = (*pending.expected).clone();
        expected.callback = Some(values);
        let end = follow::finish(
            &pending.status,
            &pending.session_id,
            &expected,
            &pending.verifier,
        )
        .await;
        assert_eq!(end, LoginState::Failed(Failure::Verification));
    }
}
