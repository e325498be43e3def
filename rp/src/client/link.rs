//! Device links on the RP side (device_link_flows.txt, authcode.txt): what the RP backend keeps
//! from a device-link session start, and the links it derives from it.
//!
//! The `sessionSecret` is held in a [`SessionSecret`] (zeroized on drop, redacted in `Debug`)
//! and never leaves this struct: only the authCodes computed from it do. QR links carry
//! `elapsedSeconds` counted from when the start response was received and must be rebuilt
//! every second; Web2App/App2App links are built once and need a callback URL in the request.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::Error;
use crate::api::device_link::{
    AuthCodeContext, DeviceLinkType, LinkParams, SessionBinding, SessionType, build_device_link,
};
use crate::api::types::{
    CertificateChoiceRequest, DeviceLinkAuthenticationRequest, DeviceLinkSessionResponse,
    DeviceLinkSigningRequest,
};

/// Default `lang` of device links (ISO 639-2).
pub const DEFAULT_LANG: &str = "eng";

/// The decoded `sessionSecret`: the authCode key. It must not reach the RP frontend.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionSecret(Vec<u8>);

impl SessionSecret {
    /// Decodes the Base64 `sessionSecret` of a start response.
    pub fn from_b64(b64: &str) -> Result<Self, Error> {
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| Error::DeviceLink("sessionSecret is not Base64".into()))?;
        if bytes.is_empty() {
            return Err(Error::DeviceLink("sessionSecret is empty".into()));
        }
        Ok(Self(bytes))
    }

    pub(crate) fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

/// The session-specific value bound into every authCode.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    Auth { rp_challenge: String },
    Sign { digest: String },
    Cert,
}

/// A started device-link session as the RP backend keeps it.
#[derive(Debug)]
pub struct DeviceLinkSession {
    pub session_id: String,
    session_token: String,
    secret: SessionSecret,
    device_link_base: String,
    received_at: Instant,
    scheme_name: String,
    binding: Binding,
    relying_party_name: String,
    brokered_rp_name: Option<String>,
    interactions: String,
    initial_callback_url: Option<String>,
    lang: String,
    /// The QR mask, picked on the first [`Self::qr_png`] (see [`super::qr::QrMask`]).
    qr_mask: std::sync::OnceLock<super::qr::QrMask>,
}

impl DeviceLinkSession {
    fn new(
        resp: &DeviceLinkSessionResponse,
        received_at: Instant,
        scheme_name: &str,
        binding: Binding,
        relying_party_name: &str,
        interactions: &str,
        initial_callback_url: Option<&str>,
    ) -> Result<Self, Error> {
        // The token goes into the link as is; the spec calls it URL-safe, so anything else
        // would make a link the app cannot parse.
        if resp.session_token.is_empty()
            || !resp
                .session_token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::DeviceLink(
                "sessionToken is empty or not URL-safe".into(),
            ));
        }
        if !resp.device_link_base.starts_with("https://")
            && !resp.device_link_base.starts_with("http://")
        {
            return Err(Error::DeviceLink(format!(
                "deviceLinkBase {:?} is not an http(s) URL",
                resp.device_link_base
            )));
        }
        Ok(Self {
            session_id: resp.session_id.clone(),
            session_token: resp.session_token.clone(),
            secret: SessionSecret::from_b64(&resp.session_secret)?,
            device_link_base: resp.device_link_base.clone(),
            received_at,
            scheme_name: scheme_name.to_owned(),
            binding,
            relying_party_name: relying_party_name.to_owned(),
            brokered_rp_name: None,
            interactions: interactions.to_owned(),
            initial_callback_url: initial_callback_url.map(str::to_owned),
            lang: DEFAULT_LANG.to_owned(),
            qr_mask: std::sync::OnceLock::new(),
        })
    }

    /// An authentication session. `received_at`: when the start response arrived (the zero
    /// of `elapsedSeconds`); `scheme_name`: the server's scheme name (`smart-id` by default).
    pub fn for_authentication(
        resp: &DeviceLinkSessionResponse,
        received_at: Instant,
        scheme_name: &str,
        req: &DeviceLinkAuthenticationRequest,
    ) -> Result<Self, Error> {
        Self::new(
            resp,
            received_at,
            scheme_name,
            Binding::Auth {
                rp_challenge: req.signature_protocol_parameters.rp_challenge.clone(),
            },
            &req.relying_party_name,
            &req.interactions,
            req.initial_callback_url.as_deref(),
        )
    }

    /// A signature session.
    pub fn for_signature(
        resp: &DeviceLinkSessionResponse,
        received_at: Instant,
        scheme_name: &str,
        req: &DeviceLinkSigningRequest,
    ) -> Result<Self, Error> {
        Self::new(
            resp,
            received_at,
            scheme_name,
            Binding::Sign {
                digest: req.signature_protocol_parameters.digest.clone(),
            },
            &req.relying_party_name,
            &req.interactions,
            req.initial_callback_url.as_deref(),
        )
    }

    /// A certificate-choice session (no protocol, digest or interactions in the authCode).
    pub fn for_certificate_choice(
        resp: &DeviceLinkSessionResponse,
        received_at: Instant,
        scheme_name: &str,
        req: &CertificateChoiceRequest,
    ) -> Result<Self, Error> {
        Self::new(
            resp,
            received_at,
            scheme_name,
            Binding::Cert,
            &req.relying_party_name,
            "",
            req.initial_callback_url.as_deref(),
        )
    }

    /// `lang` of the fallback page (ISO 639-2, three lowercase letters).
    pub fn with_lang(mut self, lang: &str) -> Result<Self, Error> {
        if lang.len() != 3 || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(Error::DeviceLink(format!(
                "lang {lang:?} is not a three-letter ISO 639-2 code"
            )));
        }
        self.lang = lang.to_owned();
        Ok(self)
    }

    /// The brokered RP name when the RP acts as a broker: bound into the authCode (and the
    /// ACSP_V2 payload). The v3 request bodies have no such field, so a broker's name must be
    /// known to the server by other means; `None` otherwise.
    pub fn with_brokered_rp_name(mut self, name: Option<&str>) -> Self {
        self.brokered_rp_name = name.map(str::to_owned);
        self
    }

    pub fn session_type(&self) -> SessionType {
        match self.binding {
            Binding::Auth { .. } => SessionType::Auth,
            Binding::Sign { .. } => SessionType::Sign,
            Binding::Cert => SessionType::Cert,
        }
    }

    /// Checks the callback URL a same-device flow returned to against this session and its
    /// final `status` ([`super::callback`]): this session's `initialCallbackUrl`, the
    /// `sessionSecretDigest` of its secret (constant time), and for an authentication the
    /// `userChallengeVerifier` against `signature.userChallenge`. Returns the values for the
    /// response verification. For a linked signing, call it on the certificate choice's
    /// session with the signing's status. Accept each callback URL once (the RP's session
    /// store must invalidate it).
    pub fn check_callback(
        &self,
        callback_url: &str,
        status: &crate::api::types::SessionStatusResponse,
    ) -> Result<super::SameDeviceCallback, super::CallbackError> {
        let initial = self
            .initial_callback_url
            .as_deref()
            .ok_or(super::CallbackError::NoCallbackUrl)?;
        super::callback::check_callback_url(
            &super::callback::CallbackSession {
                initial_callback_url: initial,
                session_secret: self.secret.expose_secret(),
                authentication: matches!(self.binding, Binding::Auth { .. }),
            },
            callback_url,
            status,
        )
    }

    /// The Base64 `sessionSecret` for the same-device callback check
    /// ([`super::SameDeviceCallback`]); stays in the RP backend.
    pub fn session_secret_b64(&self) -> String {
        STANDARD.encode(self.secret.expose_secret())
    }

    /// Whole seconds since the start response was received.
    pub fn elapsed_seconds(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.received_at).as_secs()
    }

    fn ctx(&self) -> AuthCodeContext<'_> {
        AuthCodeContext {
            scheme_name: &self.scheme_name,
            binding: match &self.binding {
                Binding::Auth { rp_challenge } => SessionBinding::Auth { rp_challenge },
                Binding::Sign { digest } => SessionBinding::Sign { digest },
                Binding::Cert => SessionBinding::Cert,
            },
            relying_party_name: &self.relying_party_name,
            brokered_rp_name: self.brokered_rp_name.as_deref(),
            interactions: &self.interactions,
            initial_callback_url: self.initial_callback_url.as_deref(),
        }
    }

    fn link(&self, link_type: DeviceLinkType, elapsed_seconds: u64) -> String {
        build_device_link(
            &LinkParams {
                device_link_base: &self.device_link_base,
                link_type,
                session_token: &self.session_token,
                session_type: self.session_type(),
                lang: &self.lang,
                elapsed_seconds,
            },
            &self.ctx(),
            self.secret.expose_secret(),
        )
    }

    /// The dynamic QR link for a given `elapsedSeconds`.
    pub fn qr_link_at(&self, elapsed_seconds: u64) -> String {
        self.link(DeviceLinkType::Qr, elapsed_seconds)
    }

    /// The dynamic QR link at `now` (rebuild it every second).
    pub fn qr_link(&self, now: Instant) -> String {
        self.qr_link_at(self.elapsed_seconds(now))
    }

    /// The PNG of the QR code at `now` (`module_pixels` per module, see [`super::qr::png`]).
    /// The mask is picked for the session's first code and kept ([`super::qr::QrMask`]).
    pub fn qr_png(&self, now: Instant, module_pixels: u32) -> Result<Vec<u8>, Error> {
        let link = self.qr_link(now);
        let mask = *self.qr_mask.get_or_init(|| {
            // A link the encoder cannot draw fails below, in png_with_mask.
            super::qr::best_mask(&link).unwrap_or_default()
        });
        super::qr::png_with_mask(&link, module_pixels, mask)
    }

    /// A Web2App or App2App link. The spec allows them only for a session started with an
    /// `initialCallbackUrl`.
    pub fn same_device_link(&self, link_type: DeviceLinkType) -> Result<String, Error> {
        if link_type == DeviceLinkType::Qr {
            return Err(Error::DeviceLink(
                "QR links carry elapsedSeconds: use qr_link".into(),
            ));
        }
        if self.initial_callback_url.is_none() {
            return Err(Error::DeviceLink(format!(
                "a {} link needs a session started with initialCallbackUrl",
                link_type.as_str()
            )));
        }
        Ok(self.link(link_type, 0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::device_link::verify_device_link;
    use crate::api::types::{
        AuthSignatureProtocol, AuthSignatureProtocolParameters, HashAlgorithm,
        SignSignatureProtocol, SignSignatureProtocolParameters, SignatureAlgorithm,
        SignatureAlgorithmParametersInRequest,
    };

    // Values of device_link_flows.txt / authcode.txt.
    const BASE: &str = "https://smart-id.com/device-link";
    const RP_CHALLENGE: &str =
        "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg==";
    const DIGEST: &str =
        "FNZFFya5wGLv9b27fZngaWrOBqle4tGwxZuDFRBdPl1RQvxJsfoqvTbjafd+8BcehMOQGvak6zlP+F8tga4bfQ==";
    const INTERACTIONS: &str = "W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2UiLCJkaXNwbGF5VGV4dDIwMCI6IkxvbmdlciBkZXNjcmlwdGlvbiBvZiB0aGUgdHJhbnNhY3Rpb24gY29udGV4dCJ9LHsidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2MCI6IlNob3J0IGRlc2NyaXB0aW9uIG9mIHRoZSB0cmFuc2FjdGlvbiBjb250ZXh0In1d";
    const CALLBACK: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";

    fn start_response() -> DeviceLinkSessionResponse {
        DeviceLinkSessionResponse {
            session_id: "fa20fd1e-e320-4c68-8315-f6a507a0b4a9".into(),
            session_token: "wGIrqveE6AuGDATZKmR1mtAZ".into(),
            session_secret: "B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps=".into(),
            device_link_base: BASE.into(),
        }
    }

    fn auth_request(callback: Option<&str>) -> DeviceLinkAuthenticationRequest {
        DeviceLinkAuthenticationRequest {
            relying_party_uuid: "00000000-0000-4000-8000-000000000000".into(),
            relying_party_name: "DEMO".into(),
            initial_callback_url: callback.map(str::to_owned),
            certificate_level: None,
            signature_protocol: AuthSignatureProtocol::AcspV2,
            signature_protocol_parameters: AuthSignatureProtocolParameters {
                rp_challenge: RP_CHALLENGE.into(),
                signature_algorithm: SignatureAlgorithm::RsassaPss,
                signature_algorithm_parameters: Some(SignatureAlgorithmParametersInRequest {
                    hash_algorithm: HashAlgorithm::Sha512,
                }),
            },
            interactions: INTERACTIONS.into(),
            request_properties: None,
            capabilities: None,
            nonce: None,
        }
    }

    /// device_link_flows.txt Example 4 (QR, elapsedSeconds 22) and Example 1 (Web2App),
    /// byte for byte, from a start response and the request that produced it.
    #[test]
    fn spec_examples_from_start_response() {
        let t0 = Instant::now();
        let s = DeviceLinkSession::for_authentication(
            &start_response(),
            t0,
            "smart-id",
            &auth_request(Some(CALLBACK)),
        )
        .unwrap()
        .with_brokered_rp_name(Some("Example RP"));
        assert_eq!(
            s.qr_link(t0 + Duration::from_millis(22_900)),
            "https://smart-id.com/device-link?deviceLinkType=QR&elapsedSeconds=22&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng&authCode=OY1eHaD4UYedrBwtqUbSkpa0w7ttm4FllPkCD_3wlE0"
        );
        assert_eq!(
            s.same_device_link(DeviceLinkType::Web2App).unwrap(),
            "https://smart-id.com/device-link?deviceLinkType=Web2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng&authCode=aegUh6gCKkXBJhhvtJqSTWB5_2W8TDQt5eZ7db6krv0"
        );
        assert!(
            s.same_device_link(DeviceLinkType::App2App)
                .unwrap()
                .ends_with("&authCode=00NRcgi4Jk7WdIwgMPlyM8wRy9KMu4C_oQvd-N6PKoo")
        );
    }

    /// authcode.txt Example 8 (QR, signature session) via the signing request.
    #[test]
    fn spec_example_signature_session() {
        let req = DeviceLinkSigningRequest {
            relying_party_uuid: "00000000-0000-4000-8000-000000000000".into(),
            relying_party_name: "DEMO".into(),
            initial_callback_url: Some(CALLBACK.into()),
            certificate_level: None,
            signature_protocol: SignSignatureProtocol::RawDigestSignature,
            signature_protocol_parameters: SignSignatureProtocolParameters {
                digest: DIGEST.into(),
                signature_algorithm: SignatureAlgorithm::Sha512WithRsaEncryption,
                signature_algorithm_parameters: None,
            },
            nonce: None,
            interactions: INTERACTIONS.into(),
            request_properties: None,
            capabilities: None,
        };
        let s =
            DeviceLinkSession::for_signature(&start_response(), Instant::now(), "smart-id", &req)
                .unwrap()
                .with_brokered_rp_name(Some("Example RP"));
        assert!(
            s.qr_link_at(22)
                .ends_with("&sessionType=sign&version=1.0&lang=eng&authCode=5PZVhiNDTnt1MjLz8_YCjnNtR7p0iGevaL2G1ajfMco")
        );
    }

    /// The links the RP builds are the links the server-side check accepts, for the
    /// configured scheme name; elapsedSeconds follows the clock.
    #[test]
    fn links_verify_on_the_server_side_and_age() {
        let t0 = Instant::now();
        let req = auth_request(None);
        let s = DeviceLinkSession::for_authentication(&start_response(), t0, "smart-id-demo", &req)
            .unwrap()
            .with_lang("est")
            .unwrap();
        let secret = STANDARD.decode(start_response().session_secret).unwrap();
        let ctx = AuthCodeContext {
            scheme_name: "smart-id-demo",
            binding: SessionBinding::Auth {
                rp_challenge: RP_CHALLENGE,
            },
            relying_party_name: "DEMO",
            brokered_rp_name: None,
            interactions: INTERACTIONS,
            initial_callback_url: None,
        };
        for secs in [0u64, 1, 5] {
            let link = s.qr_link(t0 + Duration::from_secs(secs) + Duration::from_millis(10));
            assert!(link.contains(&format!("&elapsedSeconds={secs}&")), "{link}");
            assert!(link.contains("&lang=est&"));
            let v = verify_device_link(&link, BASE, &ctx, &secret, secs, 10).unwrap();
            assert_eq!(v.elapsed_seconds, Some(secs));
        }
        // Another scheme name gives another authCode.
        let other = AuthCodeContext {
            scheme_name: "smart-id",
            ..ctx
        };
        assert!(verify_device_link(&s.qr_link_at(0), BASE, &other, &secret, 0, 10).is_err());
        // No callback URL: no same-device links.
        assert!(matches!(
            s.same_device_link(DeviceLinkType::Web2App),
            Err(Error::DeviceLink(_))
        ));
    }

    #[test]
    fn bad_start_responses_and_lang_are_refused() {
        let req = auth_request(None);
        let mut r = start_response();
        r.session_secret = "***".into();
        assert!(
            DeviceLinkSession::for_authentication(&r, Instant::now(), "smart-id", &req).is_err()
        );
        let mut r = start_response();
        r.session_token = "a&b=c".into();
        assert!(
            DeviceLinkSession::for_authentication(&r, Instant::now(), "smart-id", &req).is_err()
        );
        let s = DeviceLinkSession::for_authentication(
            &start_response(),
            Instant::now(),
            "smart-id",
            &req,
        )
        .unwrap();
        assert!(s.with_lang("en").is_err());
        let s = DeviceLinkSession::for_authentication(
            &start_response(),
            Instant::now(),
            "smart-id",
            &req,
        )
        .unwrap();
        // The secret never shows in Debug output, in any encoding.
        let dbg = format!("{s:?}");
        let secret = STANDARD.decode(start_response().session_secret).unwrap();
        assert!(dbg.contains("SessionSecret(<redacted>)"), "{dbg}");
        assert!(!dbg.contains("B98O") && !dbg.contains(&format!("{:?}", &secret[..4])));
    }
}
