//! The relying party's check of the callback URL a same-device flow (Web2App / App2App)
//! returns to (callback_urls.txt, response_verification.txt steps 1 and 3).
//!
//! ```text
//!  browser / RP app ── callback URL ──▶ RP backend
//!     https://rp.example.com/cb?value=<random>&sessionSecretDigest=…[&userChallengeVerifier=…]
//!                                                 │
//!  DeviceLinkSession (initialCallbackUrl, sessionSecret) ─┤
//!  GET /session/{id} (signature.userChallenge) ───────────┤
//!                                                 ▼
//!  check_callback_url ─▶ SameDeviceCallback (for verify::verify_*) or CallbackError
//! ```
//!
//! What is checked, in this order:
//! 1. the URL is this session's `initialCallbackUrl` (with its random parameter, compared in
//!    constant time) followed by the separator the app uses
//!    ([`tandem_client_core::callback::query_separator`]) and nothing but the parameters the
//!    app adds, each once;
//! 2. `sessionSecretDigest` equals BASE64URL(SHA-256(sessionSecret)) (constant time);
//! 3. for an authentication that ended with a signature: SHA-256 of `userChallengeVerifier`
//!    (as is, not decoded) in Base64URL equals `signature.userChallenge`.
//!
//! An authentication the person refused carries no signature, so there is no
//! `userChallenge` to check a verifier against: our app sends none then, and one that is sent
//! is not checked. What stays with the relying party: matching the random parameter to the
//! browser's session cookie (or the RP app's stored session), and accepting each callback
//! URL once.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tandem_client_core::callback::{
    SESSION_SECRET_DIGEST, USER_CHALLENGE_VERIFIER, is_base64url, query_separator,
};

use super::verify::SameDeviceCallback;
use crate::api::types::{FlowType, SessionState, SessionStatusResponse, Signature};

/// Why a callback URL was not accepted. Deny the authentication or signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The session was started without an `initialCallbackUrl` (QR only): no callback can
    /// belong to it.
    #[error("the session has no initialCallbackUrl, so no callback belongs to it")]
    NoCallbackUrl,
    /// The URL is not this session's `initialCallbackUrl` followed by the app's parameters.
    #[error("the callback URL is not this session's initialCallbackUrl")]
    WrongUrl,
    /// The added query is not a list of `name=value` pairs.
    #[error("the callback URL's added parameters are malformed")]
    Malformed,
    /// A parameter the app must add is missing.
    #[error("the callback URL has no {0}")]
    Missing(&'static str),
    /// A parameter appears more than once.
    #[error("the callback URL has {0} more than once")]
    Duplicate(&'static str),
    /// A parameter the app does not add for this session.
    #[error("the callback URL has an unexpected parameter {0:?}")]
    Unexpected(String),
    /// `sessionSecretDigest` is not the digest of this session's secret.
    #[error("sessionSecretDigest does not match the session secret")]
    SessionSecretDigest,
    /// SHA-256 of `userChallengeVerifier` is not the signed `userChallenge`.
    #[error("userChallengeVerifier does not match signature.userChallenge")]
    UserChallengeVerifier,
    /// The session has not completed yet: poll its status first.
    #[error("the session is still running")]
    NotComplete,
    /// The session ended in a flow that returns through no callback (QR).
    #[error("the session ended in a {0} flow, which has no callback")]
    NotSameDevice(&'static str),
}

/// What the check needs of the session the relying party started.
#[derive(Debug, Clone, Copy)]
pub struct CallbackSession<'a> {
    /// `initialCallbackUrl` exactly as sent in the start request.
    pub initial_callback_url: &'a str,
    /// The decoded `sessionSecret` of the start response.
    pub session_secret: &'a [u8],
    /// An authentication (its callback carries `userChallengeVerifier`).
    pub authentication: bool,
}

/// Checks `callback_url` against the session and its final `status` (module docs). On
/// success returns the callback values for [`super::verify`]'s
/// `AuthenticationExpectation::callback` / `SignatureExpectation::callback`.
///
/// For a linked signing, pass the certificate choice's session (its `initialCallbackUrl`
/// and secret) with the linked signing's status.
pub fn check_callback_url(
    session: &CallbackSession<'_>,
    callback_url: &str,
    status: &SessionStatusResponse,
) -> Result<SameDeviceCallback, CallbackError> {
    if status.state != SessionState::Complete {
        return Err(CallbackError::NotComplete);
    }
    let query = added_query(session.initial_callback_url, callback_url)?;
    let mut digest = None;
    let mut verifier = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').ok_or(CallbackError::Malformed)?;
        let slot = match name {
            SESSION_SECRET_DIGEST => &mut digest,
            USER_CHALLENGE_VERIFIER if session.authentication => &mut verifier,
            other => return Err(CallbackError::Unexpected(other.to_owned())),
        };
        if slot.replace(value).is_some() {
            return Err(CallbackError::Duplicate(if name == SESSION_SECRET_DIGEST {
                SESSION_SECRET_DIGEST
            } else {
                USER_CHALLENGE_VERIFIER
            }));
        }
    }
    let digest = digest.ok_or(CallbackError::Missing(SESSION_SECRET_DIGEST))?;
    let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(session.session_secret));
    if !bool::from(digest.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(CallbackError::SessionSecretDigest);
    }
    let flow = match &status.signature {
        Some(Signature::AcspV2(s)) => Some(s.flow_type),
        Some(Signature::RawDigest(s)) => Some(s.flow_type),
        Some(Signature::CertificateChoice(s)) => Some(s.flow_type),
        None => None,
    };
    // A linked signing (after a same-device certificate choice) ends in a notification flow;
    // only a QR flow never returns through a callback.
    if flow == Some(FlowType::Qr) {
        return Err(CallbackError::NotSameDevice(FlowType::Qr.as_str()));
    }
    if session.authentication
        && let Some(Signature::AcspV2(s)) = &status.signature
    {
        let v = verifier.ok_or(CallbackError::Missing(USER_CHALLENGE_VERIFIER))?;
        if !is_base64url(v) {
            return Err(CallbackError::UserChallengeVerifier);
        }
        let uc = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
        if !bool::from(uc.as_bytes().ct_eq(s.user_challenge.as_bytes())) {
            return Err(CallbackError::UserChallengeVerifier);
        }
    }
    Ok(SameDeviceCallback {
        session_secret_b64: STANDARD.encode(session.session_secret),
        session_secret_digest: digest.to_owned(),
        user_challenge_verifier: verifier.map(str::to_owned),
    })
}

/// The part of `callback_url` the app added to `initial` (after the separator).
fn added_query<'u>(initial: &str, callback_url: &'u str) -> Result<&'u str, CallbackError> {
    let sep = query_separator(initial);
    let prefix_len = initial.len() + sep.len();
    if callback_url.len() <= prefix_len
        || !callback_url.is_char_boundary(initial.len())
        || !callback_url.is_char_boundary(prefix_len)
    {
        return Err(CallbackError::WrongUrl);
    }
    // The random parameter in the initialCallbackUrl is the RP's secret: constant time.
    let same_url = callback_url.as_bytes()[..initial.len()].ct_eq(initial.as_bytes());
    if !bool::from(same_url) || &callback_url[initial.len()..prefix_len] != sep {
        return Err(CallbackError::WrongUrl);
    }
    Ok(&callback_url[prefix_len..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::{
        AcspV2Signature, CertificateChoiceSignature, RawDigestSignature, SignatureAlgorithm,
    };
    use tandem_client_core::callback::CallbackUrl;

    // callback_urls.txt's example values.
    const INITIAL: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";
    const SECRET_B64: &str = "B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps=";
    const VERIFIER: &str = "XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c";
    const USER_CHALLENGE: &str = "GnsWXXEjTCKR89fj9uo5u5ReBZ9JR7_pezLAI5jMS00";
    const AUTH_URL: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ&sessionSecretDigest=U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc&userChallengeVerifier=XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c";
    const SIGN_URL: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ&sessionSecretDigest=U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc";

    fn secret() -> Vec<u8> {
        STANDARD.decode(SECRET_B64).unwrap()
    }

    fn session(secret: &[u8], authentication: bool) -> CallbackSession<'_> {
        CallbackSession {
            initial_callback_url: INITIAL,
            session_secret: secret,
            authentication,
        }
    }

    fn status(signature: Option<Signature>) -> SessionStatusResponse {
        SessionStatusResponse {
            state: SessionState::Complete,
            signature,
            ..SessionStatusResponse::running()
        }
    }

    fn acsp(flow_type: FlowType, user_challenge: &str) -> Option<Signature> {
        Some(Signature::AcspV2(AcspV2Signature {
            value: String::new(),
            server_random: String::new(),
            user_challenge: user_challenge.into(),
            flow_type,
            signature_algorithm: SignatureAlgorithm::RsassaPss,
            signature_algorithm_parameters: None,
        }))
    }

    fn raw(flow_type: FlowType) -> Option<Signature> {
        Some(Signature::RawDigest(RawDigestSignature {
            value: String::new(),
            flow_type,
            signature_algorithm: SignatureAlgorithm::RsassaPss,
            signature_algorithm_parameters: None,
        }))
    }

    /// The specification's example URLs pass, and are exactly what the app builds.
    #[test]
    fn spec_examples_pass() {
        let s = secret();
        let cb = check_callback_url(
            &session(&s, true),
            AUTH_URL,
            &status(acsp(FlowType::Web2App, USER_CHALLENGE)),
        )
        .unwrap();
        assert_eq!(cb.user_challenge_verifier.as_deref(), Some(VERIFIER));
        assert_eq!(cb.session_secret_b64, SECRET_B64);
        check_callback_url(
            &session(&s, false),
            SIGN_URL,
            &status(raw(FlowType::App2App)),
        )
        .unwrap();
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(&s));
        assert_eq!(
            CallbackUrl::build(INITIAL, &digest, Some(VERIFIER))
                .unwrap()
                .as_str(),
            AUTH_URL
        );
        // A refused authentication: no signature, the digest alone.
        check_callback_url(&session(&s, true), SIGN_URL, &status(None)).unwrap();
        // A certificate choice, and a linked signing (notification flow) after one.
        let choice = Some(Signature::CertificateChoice(CertificateChoiceSignature {
            flow_type: FlowType::Web2App,
        }));
        check_callback_url(&session(&s, false), SIGN_URL, &status(choice)).unwrap();
        check_callback_url(
            &session(&s, false),
            SIGN_URL,
            &status(raw(FlowType::Notification)),
        )
        .unwrap();
    }

    #[test]
    fn tampered_urls_fail_with_their_reason() {
        let s = secret();
        let auth = session(&s, true);
        let ok = status(acsp(FlowType::Web2App, USER_CHALLENGE));
        let check = |url: &str| check_callback_url(&auth, url, &ok).map(|_| ());
        // Another random parameter, host, or path.
        for url in [
            AUTH_URL.replace("value=RrKj", "value=SrKj"),
            AUTH_URL.replace("rp.example.com", "rp.example.org"),
            AUTH_URL.replace("callback-url?", "callback-url/?"),
            AUTH_URL.replace("bQ&session", "bQX&session"),
            AUTH_URL.replace("&sessionSecretDigest", "?sessionSecretDigest"),
            INITIAL.to_owned(),
            format!("{INITIAL}&"),
        ] {
            assert_eq!(check(&url), Err(CallbackError::WrongUrl), "{url}");
        }
        // A changed digest or verifier.
        assert_eq!(
            check(&AUTH_URL.replace("Digest=U4CKK", "Digest=U4CKL")),
            Err(CallbackError::SessionSecretDigest)
        );
        assert_eq!(
            check(&AUTH_URL.replace("Verifier=XtPf", "Verifier=YtPf")),
            Err(CallbackError::UserChallengeVerifier)
        );
        assert_eq!(
            check(&AUTH_URL.replace("Verifier=XtPf", "Verifier=X%74Pf")),
            Err(CallbackError::UserChallengeVerifier)
        );
        // Missing, doubled, foreign or malformed parameters.
        assert_eq!(
            check(SIGN_URL),
            Err(CallbackError::Missing(USER_CHALLENGE_VERIFIER))
        );
        assert_eq!(
            check(&format!("{AUTH_URL}&sessionSecretDigest=x")),
            Err(CallbackError::Duplicate(SESSION_SECRET_DIGEST))
        );
        assert_eq!(
            check(&format!("{AUTH_URL}&extra=1")),
            Err(CallbackError::Unexpected("extra".into()))
        );
        assert_eq!(
            check(&format!("{AUTH_URL}&")),
            Err(CallbackError::Malformed)
        );
        assert_eq!(
            check(&format!("{INITIAL}&userChallengeVerifier={VERIFIER}")),
            Err(CallbackError::Missing(SESSION_SECRET_DIGEST))
        );
        // A signature session's callback has no verifier.
        assert_eq!(
            check_callback_url(
                &session(&s, false),
                AUTH_URL,
                &status(raw(FlowType::Web2App))
            )
            .map(|_| ()),
            Err(CallbackError::Unexpected(USER_CHALLENGE_VERIFIER.into()))
        );
        // Another session's secret.
        let other = [7u8; 32];
        assert_eq!(
            check_callback_url(&session(&other, true), AUTH_URL, &ok).map(|_| ()),
            Err(CallbackError::SessionSecretDigest)
        );
        // A QR flow, a running session.
        assert_eq!(
            check_callback_url(&auth, AUTH_URL, &status(acsp(FlowType::Qr, USER_CHALLENGE)))
                .map(|_| ()),
            Err(CallbackError::NotSameDevice("QR"))
        );
        assert_eq!(
            check_callback_url(&auth, AUTH_URL, &SessionStatusResponse::running()).map(|_| ()),
            Err(CallbackError::NotComplete)
        );
    }

    #[test]
    fn separator_rules_match_the_app() {
        let s = secret();
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(&s));
        for initial in [
            "https://rp.example/cb",
            "https://rp.example/cb?",
            "https://rp.example/cb?a=1&",
        ] {
            let url = CallbackUrl::build(initial, &digest, None).unwrap();
            let sess = CallbackSession {
                initial_callback_url: initial,
                session_secret: &s,
                authentication: false,
            };
            check_callback_url(&sess, url.as_str(), &status(raw(FlowType::Web2App))).unwrap();
        }
    }
}
