//! The callback URL the app opens when a same-device flow (Web2App / App2App) ends
//! (callback_urls.txt, "Callback URL examples").
//!
//! ```text
//!  initialCallbackUrl (relying party's, from the session)
//!    https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ
//!  + &sessionSecretDigest=BASE64URL(SHA-256(sessionSecret))        every flow
//!  + &userChallengeVerifier=<the app's verifier>                    authentication with a signature
//! ```
//!
//! The server hands the app `sessionSecretDigest`, never the session secret. The
//! `userChallengeVerifier` is the value whose SHA-256 is the `userChallenge` the app signed in
//! the ACSP_V2 payload; it stays in the app until it goes into this URL, so the relying party
//! learns it only from the browser (or app) the flow returns to.
//!
//! Both values are Base64URL without padding, whose characters (`A-Z a-z 0-9 - _`) are
//! unreserved in a URL query: they are appended as they are and need no percent-encoding.
//! Anything else is refused here rather than encoded, so the relying party compares exactly
//! the bytes it computes itself.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Result};

/// Query parameter name of the session secret digest.
pub const SESSION_SECRET_DIGEST: &str = "sessionSecretDigest";
/// Query parameter name of the user challenge verifier.
pub const USER_CHALLENGE_VERIFIER: &str = "userChallengeVerifier";
/// Longest `initialCallbackUrl` the specification allows (openapi.yml `InitialCallbackUrl`).
pub const INITIAL_CALLBACK_URL_MAX_LEN: usize = 1800;

/// What goes between the `initialCallbackUrl` and the first parameter the app adds: `?` when
/// the URL has no query yet, nothing when it already ends with `?` or `&`, `&` otherwise.
/// The relying party's check uses the same rule.
pub fn query_separator(initial_callback_url: &str) -> &'static str {
    if !initial_callback_url.contains('?') {
        "?"
    } else if initial_callback_url.ends_with('?') || initial_callback_url.ends_with('&') {
        ""
    } else {
        "&"
    }
}

/// True for a non-empty Base64URL string without padding.
pub fn is_base64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The form the specification requires of an `initialCallbackUrl` (openapi.yml:
/// `^https://([^|#]+)$`, at most 1800 characters); also no whitespace or control characters,
/// which no URL the app can open contains.
pub fn check_initial_callback_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .ok_or(Error::Malformed("initialCallbackUrl (not https)"))?;
    if rest.is_empty()
        || url.len() > INITIAL_CALLBACK_URL_MAX_LEN
        || rest
            .bytes()
            .any(|b| b == b'|' || b == b'#' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(Error::Malformed("initialCallbackUrl"));
    }
    Ok(())
}

/// The full callback URL. It carries the `userChallengeVerifier` of an authentication, so it
/// is zeroized on drop and `Debug` prints only the relying party's part; the app hands it to
/// the system to open (browser or the relying party's app) and nowhere else.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CallbackUrl {
    url: String,
    /// Length of the `initialCallbackUrl` prefix (shown by `Debug`).
    initial_len: usize,
}

impl CallbackUrl {
    /// `initialCallbackUrl` + `sessionSecretDigest` (+ `userChallengeVerifier` for an
    /// authentication that ended with the app's signature). Refuses an `initialCallbackUrl`
    /// the specification does not allow and values that are not Base64URL.
    pub fn build(
        initial_callback_url: &str,
        session_secret_digest: &str,
        user_challenge_verifier: Option<&str>,
    ) -> Result<Self> {
        check_initial_callback_url(initial_callback_url)?;
        // SHA-256 in Base64URL without padding: 43 characters.
        if session_secret_digest.len() != 43 || !is_base64url(session_secret_digest) {
            return Err(Error::Malformed("sessionSecretDigest"));
        }
        let mut url = format!(
            "{initial_callback_url}{}{SESSION_SECRET_DIGEST}={session_secret_digest}",
            query_separator(initial_callback_url)
        );
        if let Some(v) = user_challenge_verifier {
            if !is_base64url(v) {
                url.zeroize();
                return Err(Error::Malformed("userChallengeVerifier"));
            }
            url.push('&');
            url.push_str(USER_CHALLENGE_VERIFIER);
            url.push('=');
            url.push_str(v);
        }
        Ok(Self {
            url,
            initial_len: initial_callback_url.len(),
        })
    }

    /// The URL to open.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The relying party's `initialCallbackUrl` this URL starts with.
    pub fn initial_callback_url(&self) -> &str {
        &self.url[..self.initial_len]
    }
}

impl core::fmt::Debug for CallbackUrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "CallbackUrl({}<values redacted>)",
            self.initial_callback_url()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";
    const DIGEST: &str = "U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc";
    const VERIFIER: &str = "XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c";

    /// callback_urls.txt, "Callback URL examples", byte for byte.
    #[test]
    fn spec_examples() {
        let auth = CallbackUrl::build(INITIAL, DIGEST, Some(VERIFIER)).unwrap();
        assert_eq!(
            auth.as_str(),
            "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ&sessionSecretDigest=U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc&userChallengeVerifier=XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c"
        );
        let sign = CallbackUrl::build(INITIAL, DIGEST, None).unwrap();
        assert_eq!(
            sign.as_str(),
            "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ&sessionSecretDigest=U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc"
        );
        assert_eq!(sign.initial_callback_url(), INITIAL);
    }

    #[test]
    fn separator_follows_the_query() {
        assert_eq!(query_separator("https://rp.example/cb"), "?");
        assert_eq!(query_separator("https://rp.example/cb?"), "");
        assert_eq!(query_separator("https://rp.example/cb?a=1&"), "");
        assert_eq!(query_separator("https://rp.example/cb?a=1"), "&");
        assert_eq!(
            CallbackUrl::build("https://rp.example/cb", DIGEST, None)
                .unwrap()
                .as_str(),
            format!("https://rp.example/cb?sessionSecretDigest={DIGEST}")
        );
    }

    #[test]
    fn bad_inputs_are_refused() {
        for bad in [
            "http://rp.example/cb",
            "https://",
            "https://rp.example/cb#frag",
            "https://rp.example/cb?a=b|c",
            "https://rp.example/c b",
            "ftp://rp.example/cb",
        ] {
            assert!(CallbackUrl::build(bad, DIGEST, None).is_err(), "{bad}");
        }
        let long = format!("https://rp.example/{}", "a".repeat(1800));
        assert!(CallbackUrl::build(&long, DIGEST, None).is_err());
        assert!(
            CallbackUrl::build(INITIAL, "U4CKK13H1XFiyBofev9asqrzIrY5+Gszi/nL_zDKkBc", None)
                .is_err()
        );
        assert!(CallbackUrl::build(INITIAL, &DIGEST[..42], None).is_err());
        assert!(CallbackUrl::build(INITIAL, DIGEST, Some("a&b=c")).is_err());
        assert!(CallbackUrl::build(INITIAL, DIGEST, Some("")).is_err());
    }

    #[test]
    fn debug_hides_the_values() {
        let u = CallbackUrl::build(INITIAL, DIGEST, Some(VERIFIER)).unwrap();
        let dbg = format!("{u:?}");
        assert!(dbg.contains(INITIAL), "{dbg}");
        assert!(!dbg.contains(VERIFIER) && !dbg.contains(DIGEST), "{dbg}");
    }
}
