//! Device links (QR, Web2App, App2App) and their `authCode` (device_link_flows.txt,
//! authcode.txt).
//!
//! ```text
//! unprotectedDeviceLink := deviceLinkBase?deviceLinkType=T[&elapsedSeconds=N (QR only)]
//!                          &sessionToken=..&sessionType=auth|sign|cert&version=1.0&lang=xxx
//! authCodePayload := 'smart-id'|protocol|rpChallenge-or-digest|BASE64(rpName)|
//!                    BASE64(brokeredRpName)|interactions|initialCallbackUrl|unprotectedDeviceLink
//!   (cert choice: protocol, digest and interactions empty; QR: callback URL empty)
//! authCode := BASE64URL-NO-PAD(HMAC-SHA256(BASE64-DECODE(sessionSecret), authCodePayload))
//! deviceLink := unprotectedDeviceLink&authCode=..
//! ```
//! The RP backend builds links with [`build_device_link`]; the server checks a scanned link
//! in two steps: [`ParsedLink::parse`] (gives the `sessionToken` to look the session up) and
//! [`ParsedLink::verify`] (authCode in constant time, link age for QR).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The only device link `version`.
pub const VERSION: &str = "1.0";

/// How far a QR link's `elapsedSeconds` may run ahead of the server's own count (the RP starts
/// counting when it receives our response, so it should never be ahead; allow clock jitter).
pub const QR_FUTURE_TOLERANCE_SECS: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceLinkType {
    Qr,
    Web2App,
    App2App,
}

impl DeviceLinkType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qr => "QR",
            Self::Web2App => "Web2App",
            Self::App2App => "App2App",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "QR" => Some(Self::Qr),
            "Web2App" => Some(Self::Web2App),
            "App2App" => Some(Self::App2App),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionType {
    Auth,
    Sign,
    Cert,
}

impl SessionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Sign => "sign",
            Self::Cert => "cert",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "auth" => Some(Self::Auth),
            "sign" => Some(Self::Sign),
            "cert" => Some(Self::Cert),
            _ => None,
        }
    }
}

/// The session-specific values the authCode binds, as sent in the session start request.
#[derive(Debug, Clone, Copy)]
pub enum SessionBinding<'a> {
    /// ACSP_V2 authentication: the Base64 `rpChallenge` as sent.
    Auth { rp_challenge: &'a str },
    /// RAW_DIGEST_SIGNATURE signing: the Base64 `digest` as sent.
    Sign { digest: &'a str },
    /// Certificate choice: no protocol, digest or interactions.
    Cert,
}

impl SessionBinding<'_> {
    pub fn session_type(&self) -> SessionType {
        match self {
            Self::Auth { .. } => SessionType::Auth,
            Self::Sign { .. } => SessionType::Sign,
            Self::Cert => SessionType::Cert,
        }
    }
}

/// Request values of one device-link session that go into every authCode.
#[derive(Debug, Clone, Copy)]
pub struct AuthCodeContext<'a> {
    /// `smart-id` (production) or `smart-id-demo`; the server's configured scheme name.
    pub scheme_name: &'a str,
    pub binding: SessionBinding<'a>,
    /// Exactly as in the request.
    pub relying_party_name: &'a str,
    pub brokered_rp_name: Option<&'a str>,
    /// The Base64 `interactions` string as sent (ignored for certificate choice).
    pub interactions: &'a str,
    /// As in the request; left out of the payload for QR links.
    pub initial_callback_url: Option<&'a str>,
}

/// The parts of one device link other than the authCode.
#[derive(Debug, Clone, Copy)]
pub struct LinkParams<'a> {
    /// `deviceLinkBase` from the session start response.
    pub device_link_base: &'a str,
    pub link_type: DeviceLinkType,
    pub session_token: &'a str,
    pub session_type: SessionType,
    /// ISO 639-2 three-letter code of the fallback page.
    pub lang: &'a str,
    /// Seconds since the session start response; QR only (ignored for Web2App / App2App).
    pub elapsed_seconds: u64,
}

/// `unprotectedDeviceLink`, parameters in the mandated order, no URL encoding.
pub fn unprotected_device_link(p: &LinkParams<'_>) -> String {
    let elapsed = match p.link_type {
        DeviceLinkType::Qr => format!("&elapsedSeconds={}", p.elapsed_seconds),
        DeviceLinkType::Web2App | DeviceLinkType::App2App => String::new(),
    };
    format!(
        "{}?deviceLinkType={}{}&sessionToken={}&sessionType={}&version={}&lang={}",
        p.device_link_base,
        p.link_type.as_str(),
        elapsed,
        p.session_token,
        p.session_type.as_str(),
        VERSION,
        p.lang
    )
}

/// `authCodePayload` for an unprotected link of type `link_type`.
pub fn auth_code_payload(
    ctx: &AuthCodeContext<'_>,
    link_type: DeviceLinkType,
    unprotected_link: &str,
) -> String {
    let (protocol, challenge, interactions) = match ctx.binding {
        SessionBinding::Auth { rp_challenge } => ("ACSP_V2", rp_challenge, ctx.interactions),
        SessionBinding::Sign { digest } => ("RAW_DIGEST_SIGNATURE", digest, ctx.interactions),
        SessionBinding::Cert => ("", "", ""),
    };
    let callback = match link_type {
        DeviceLinkType::Qr => "",
        DeviceLinkType::Web2App | DeviceLinkType::App2App => ctx.initial_callback_url.unwrap_or(""),
    };
    [
        ctx.scheme_name,
        protocol,
        challenge,
        &STANDARD.encode(ctx.relying_party_name.as_bytes()),
        &STANDARD.encode(ctx.brokered_rp_name.unwrap_or("").as_bytes()),
        interactions,
        callback,
        unprotected_link,
    ]
    .join("|")
}

fn mac(session_secret: &[u8], payload: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(session_secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(payload.as_bytes());
    m
}

/// `authCode` over `payload` with the decoded `sessionSecret` as key.
pub fn auth_code(session_secret: &[u8], payload: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(session_secret, payload).finalize().into_bytes())
}

/// The full device link with authCode (RP side; QR links must be rebuilt every second).
pub fn build_device_link(
    params: &LinkParams<'_>,
    ctx: &AuthCodeContext<'_>,
    session_secret: &[u8],
) -> String {
    let link = unprotected_device_link(params);
    let code = auth_code(
        session_secret,
        &auth_code_payload(ctx, params.link_type, &link),
    );
    format!("{link}&authCode={code}")
}

/// Why a scanned link was refused. `BadAuthCode` says nothing about which value differed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    #[error("malformed device link: {0}")]
    Malformed(&'static str),
    #[error("device link is not for this server or session")]
    WrongSession,
    #[error("device link authCode does not verify")]
    BadAuthCode,
    #[error("QR code is too old")]
    QrExpired,
    #[error("QR code claims a time in the future")]
    QrFromFuture,
    /// device_link_flows.txt: Web2App and App2App links need a session started with an
    /// `initialCallbackUrl`.
    #[error("Web2App and App2App links need a session started with initialCallbackUrl")]
    NoCallbackUrl,
}

/// A syntactically valid device link, not yet authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLink {
    pub device_link_base: String,
    pub link_type: DeviceLinkType,
    pub elapsed_seconds: Option<u64>,
    pub session_token: String,
    pub session_type: SessionType,
    pub lang: String,
    unprotected: String,
    auth_code: Vec<u8>,
}

/// An authenticated, fresh device link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLink {
    pub link_type: DeviceLinkType,
    pub session_token: String,
    pub session_type: SessionType,
    pub lang: String,
    pub elapsed_seconds: Option<u64>,
}

fn take<'a>(
    parts: &mut std::iter::Peekable<std::str::Split<'a, char>>,
    key: &str,
) -> Result<&'a str, LinkError> {
    let part = parts
        .next()
        .ok_or(LinkError::Malformed("missing parameter"))?;
    match part.split_once('=') {
        Some((k, v)) if k == key && !v.is_empty() => Ok(v),
        _ => Err(LinkError::Malformed("unexpected parameter or order")),
    }
}

impl ParsedLink {
    /// Parse a link in the exact form the spec prescribes: parameters in order, each once,
    /// non-empty, no URL encoding or fragment, `elapsedSeconds` present exactly for QR.
    pub fn parse(link: &str) -> Result<Self, LinkError> {
        if link.contains(['#', '%', ' ']) || !link.is_ascii() {
            return Err(LinkError::Malformed("fragment, encoding or non-ASCII"));
        }
        let (unprotected, code) = link
            .rsplit_once("&authCode=")
            .ok_or(LinkError::Malformed("no authCode"))?;
        let (base, query) = unprotected
            .split_once('?')
            .ok_or(LinkError::Malformed("no query"))?;
        let mut parts = query.split('&').peekable();
        let link_type = DeviceLinkType::parse(take(&mut parts, "deviceLinkType")?)
            .ok_or(LinkError::Malformed("deviceLinkType"))?;
        let elapsed_seconds = match link_type {
            DeviceLinkType::Qr => {
                let v = take(&mut parts, "elapsedSeconds")?;
                // TO-STRING form only: digits, no leading zero, no sign.
                if !v.bytes().all(|b| b.is_ascii_digit()) || (v.len() > 1 && v.starts_with('0')) {
                    return Err(LinkError::Malformed("elapsedSeconds"));
                }
                Some(
                    v.parse::<u64>()
                        .map_err(|_| LinkError::Malformed("elapsedSeconds"))?,
                )
            }
            DeviceLinkType::Web2App | DeviceLinkType::App2App => None,
        };
        let session_token = take(&mut parts, "sessionToken")?;
        if !session_token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(LinkError::Malformed("sessionToken"));
        }
        let session_type = SessionType::parse(take(&mut parts, "sessionType")?)
            .ok_or(LinkError::Malformed("sessionType"))?;
        if take(&mut parts, "version")? != VERSION {
            return Err(LinkError::Malformed("version"));
        }
        let lang = take(&mut parts, "lang")?;
        if lang.len() != 3 || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(LinkError::Malformed("lang"));
        }
        if parts.next().is_some() {
            return Err(LinkError::Malformed("extra parameters"));
        }
        if code.len() != 43 {
            return Err(LinkError::Malformed("authCode"));
        }
        let auth_code = URL_SAFE_NO_PAD
            .decode(code)
            .map_err(|_| LinkError::Malformed("authCode"))?;
        Ok(Self {
            device_link_base: base.to_owned(),
            link_type,
            elapsed_seconds,
            session_token: session_token.to_owned(),
            session_type,
            lang: lang.to_owned(),
            unprotected: unprotected.to_owned(),
            auth_code,
        })
    }

    /// Check the link against the session it names.
    ///
    /// - `device_link_base`: the base this server handed out for the session;
    /// - `ctx`: the session's request values; its binding fixes the expected `sessionType`;
    /// - `session_secret`: decoded secret (never leaves the server except to the RP);
    /// - `now_elapsed_secs`: seconds since the server sent the session start response;
    /// - `max_qr_age_secs`: how old a QR link may be when scanned.
    ///
    /// The authCode is compared in constant time; the age check follows it so that an
    /// unauthenticated link learns nothing about timing policy.
    pub fn verify(
        self,
        device_link_base: &str,
        ctx: &AuthCodeContext<'_>,
        session_secret: &[u8],
        now_elapsed_secs: u64,
        max_qr_age_secs: u64,
    ) -> Result<VerifiedLink, LinkError> {
        if self.device_link_base != device_link_base
            || self.session_type != ctx.binding.session_type()
        {
            return Err(LinkError::WrongSession);
        }
        let payload = auth_code_payload(ctx, self.link_type, &self.unprotected);
        mac(session_secret, &payload)
            .verify_slice(&self.auth_code)
            .map_err(|_| LinkError::BadAuthCode)?;
        // Same-device flows end by opening the callback URL; without one they cannot.
        if self.link_type != DeviceLinkType::Qr && ctx.initial_callback_url.is_none() {
            return Err(LinkError::NoCallbackUrl);
        }
        if let Some(e) = self.elapsed_seconds {
            if e > now_elapsed_secs.saturating_add(QR_FUTURE_TOLERANCE_SECS) {
                return Err(LinkError::QrFromFuture);
            }
            if now_elapsed_secs.saturating_sub(e) > max_qr_age_secs {
                return Err(LinkError::QrExpired);
            }
        }
        Ok(VerifiedLink {
            link_type: self.link_type,
            session_token: self.session_token,
            session_type: self.session_type,
            lang: self.lang,
            elapsed_seconds: self.elapsed_seconds,
        })
    }
}

/// One-call server check: parse, then verify, for a caller that already
/// knows the session; otherwise use [`ParsedLink::parse`] first to get the `sessionToken`.
pub fn verify_device_link(
    link: &str,
    device_link_base: &str,
    ctx: &AuthCodeContext<'_>,
    session_secret: &[u8],
    now_elapsed_secs: u64,
    max_qr_age_secs: u64,
) -> Result<VerifiedLink, LinkError> {
    ParsedLink::parse(link)?.verify(
        device_link_base,
        ctx,
        session_secret,
        now_elapsed_secs,
        max_qr_age_secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://smart-id.com/device-link";
    const TOKEN: &str = "wGIrqveE6AuGDATZKmR1mtAZ";
    const SECRET_B64: &str = "B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps=";
    const RP_CHALLENGE: &str =
        "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg==";
    const DIGEST: &str =
        "FNZFFya5wGLv9b27fZngaWrOBqle4tGwxZuDFRBdPl1RQvxJsfoqvTbjafd+8BcehMOQGvak6zlP+F8tga4bfQ==";
    const INTERACTIONS: &str = "W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2UiLCJkaXNwbGF5VGV4dDIwMCI6IkxvbmdlciBkZXNjcmlwdGlvbiBvZiB0aGUgdHJhbnNhY3Rpb24gY29udGV4dCJ9LHsidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2MCI6IlNob3J0IGRlc2NyaXB0aW9uIG9mIHRoZSB0cmFuc2FjdGlvbiBjb250ZXh0In1d";
    const CALLBACK: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";

    fn secret() -> Vec<u8> {
        STANDARD.decode(SECRET_B64).unwrap()
    }

    fn ctx(binding: SessionBinding<'static>) -> AuthCodeContext<'static> {
        AuthCodeContext {
            scheme_name: "smart-id",
            binding,
            relying_party_name: "DEMO",
            brokered_rp_name: Some("Example RP"),
            interactions: INTERACTIONS,
            initial_callback_url: Some(CALLBACK),
        }
    }

    fn params(link_type: DeviceLinkType, session_type: SessionType) -> LinkParams<'static> {
        LinkParams {
            device_link_base: BASE,
            link_type,
            session_token: TOKEN,
            session_type,
            lang: "eng",
            elapsed_seconds: 22,
        }
    }

    /// authcode.txt Examples 1-9 (3 link types x 3 session types), byte for byte. The spec's
    /// own sample code prints the unprotected link of Examples 2/3/5/6/8/9 with
    /// `sessionType=auth`; the published codes are those of the matching session type.
    #[test]
    fn spec_auth_code_examples() {
        use DeviceLinkType::*;
        let cases = [
            (
                Web2App,
                SessionBinding::Auth {
                    rp_challenge: RP_CHALLENGE,
                },
                "aegUh6gCKkXBJhhvtJqSTWB5_2W8TDQt5eZ7db6krv0",
            ),
            (
                Web2App,
                SessionBinding::Sign { digest: DIGEST },
                "R0iNcUp8nK1nqrcVFWerXUfWMSjwDOMC6MAHKrckaH8",
            ),
            (
                Web2App,
                SessionBinding::Cert,
                "PI1qYa9_l6zR-v6Pkre6ycSm7S3BGiOQSe5OQlw4UJg",
            ),
            (
                App2App,
                SessionBinding::Auth {
                    rp_challenge: RP_CHALLENGE,
                },
                "00NRcgi4Jk7WdIwgMPlyM8wRy9KMu4C_oQvd-N6PKoo",
            ),
            (
                App2App,
                SessionBinding::Sign { digest: DIGEST },
                "8QZ16rkBW_ffkq6osT7UH1DbUlF9gEOZevgj-A0VNbM",
            ),
            (
                App2App,
                SessionBinding::Cert,
                "AtayuRPP3N59wXF8Cijwjt3pQ16knW2L-5VLDTRD_KU",
            ),
            (
                Qr,
                SessionBinding::Auth {
                    rp_challenge: RP_CHALLENGE,
                },
                "OY1eHaD4UYedrBwtqUbSkpa0w7ttm4FllPkCD_3wlE0",
            ),
            (
                Qr,
                SessionBinding::Sign { digest: DIGEST },
                "5PZVhiNDTnt1MjLz8_YCjnNtR7p0iGevaL2G1ajfMco",
            ),
            (
                Qr,
                SessionBinding::Cert,
                "T5pDDPAjoMS0byqS-FoaWVjlubODXoCCF4XDB4HeYNo",
            ),
        ];
        for (lt, binding, expected) in cases {
            let c = ctx(binding);
            let link = build_device_link(&params(lt, binding.session_type()), &c, &secret());
            assert!(
                link.ends_with(&format!("&authCode={expected}")),
                "{lt:?} {binding:?}: {link}"
            );
        }
    }

    /// device_link_flows.txt Examples 1, 2, 3 and 4: the complete links.
    #[test]
    fn spec_device_link_examples() {
        let s = secret();
        assert_eq!(
            build_device_link(
                &params(DeviceLinkType::Web2App, SessionType::Auth),
                &ctx(SessionBinding::Auth {
                    rp_challenge: RP_CHALLENGE
                }),
                &s
            ),
            "https://smart-id.com/device-link?deviceLinkType=Web2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng&authCode=aegUh6gCKkXBJhhvtJqSTWB5_2W8TDQt5eZ7db6krv0"
        );
        assert_eq!(
            build_device_link(
                &params(DeviceLinkType::App2App, SessionType::Sign),
                &ctx(SessionBinding::Sign { digest: DIGEST }),
                &s
            ),
            "https://smart-id.com/device-link?deviceLinkType=App2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=sign&version=1.0&lang=eng&authCode=8QZ16rkBW_ffkq6osT7UH1DbUlF9gEOZevgj-A0VNbM"
        );
        assert_eq!(
            build_device_link(
                &params(DeviceLinkType::Web2App, SessionType::Cert),
                &ctx(SessionBinding::Cert),
                &s
            ),
            "https://smart-id.com/device-link?deviceLinkType=Web2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=cert&version=1.0&lang=eng&authCode=PI1qYa9_l6zR-v6Pkre6ycSm7S3BGiOQSe5OQlw4UJg"
        );
        assert_eq!(
            build_device_link(
                &params(DeviceLinkType::Qr, SessionType::Auth),
                &ctx(SessionBinding::Auth {
                    rp_challenge: RP_CHALLENGE
                }),
                &s
            ),
            "https://smart-id.com/device-link?deviceLinkType=QR&elapsedSeconds=22&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng&authCode=OY1eHaD4UYedrBwtqUbSkpa0w7ttm4FllPkCD_3wlE0"
        );
    }

    /// authcode.txt Examples 20 and 26: unprotected links.
    #[test]
    fn spec_unprotected_links() {
        assert_eq!(
            unprotected_device_link(&params(DeviceLinkType::Web2App, SessionType::Auth)),
            "https://smart-id.com/device-link?deviceLinkType=Web2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng"
        );
        assert_eq!(
            unprotected_device_link(&params(DeviceLinkType::Qr, SessionType::Cert)),
            "https://smart-id.com/device-link?deviceLinkType=QR&elapsedSeconds=22&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=cert&version=1.0&lang=eng"
        );
    }

    #[test]
    fn verify_accepts_fresh_links_of_every_type() {
        let s = secret();
        for lt in [
            DeviceLinkType::Qr,
            DeviceLinkType::Web2App,
            DeviceLinkType::App2App,
        ] {
            let c = ctx(SessionBinding::Auth {
                rp_challenge: RP_CHALLENGE,
            });
            let link = build_device_link(&params(lt, SessionType::Auth), &c, &s);
            let parsed = ParsedLink::parse(&link).unwrap();
            assert_eq!(parsed.session_token, TOKEN);
            let v = parsed.verify(BASE, &c, &s, 23, 10).unwrap();
            assert_eq!(v.link_type, lt);
            assert_eq!(v.elapsed_seconds, (lt == DeviceLinkType::Qr).then_some(22));
        }
    }

    #[test]
    fn verify_rejects_tampering() {
        let s = secret();
        let c = ctx(SessionBinding::Auth {
            rp_challenge: RP_CHALLENGE,
        });
        let link = build_device_link(&params(DeviceLinkType::Qr, SessionType::Auth), &c, &s);
        // Changed elapsedSeconds (making an old QR look new) breaks the authCode.
        let forged = link.replace("elapsedSeconds=22", "elapsedSeconds=29");
        assert_eq!(
            verify_device_link(&forged, BASE, &c, &s, 30, 10),
            Err(LinkError::BadAuthCode)
        );
        // A flipped authCode character.
        let mut bad = link.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            verify_device_link(&bad, BASE, &c, &s, 22, 10),
            Err(LinkError::BadAuthCode)
        );
        // Wrong secret, wrong challenge, wrong callback (Web2App), wrong base, wrong type.
        assert_eq!(
            verify_device_link(&link, BASE, &c, b"other", 22, 10),
            Err(LinkError::BadAuthCode)
        );
        let c2 = ctx(SessionBinding::Auth {
            rp_challenge: DIGEST,
        });
        assert_eq!(
            verify_device_link(&link, BASE, &c2, &s, 22, 10),
            Err(LinkError::BadAuthCode)
        );
        let w = build_device_link(&params(DeviceLinkType::Web2App, SessionType::Auth), &c, &s);
        let c3 = AuthCodeContext {
            initial_callback_url: Some("https://evil.example/"),
            ..c
        };
        assert_eq!(
            verify_device_link(&w, BASE, &c3, &s, 0, 10),
            Err(LinkError::BadAuthCode)
        );
        assert_eq!(
            verify_device_link(&link, "https://other/device-link", &c, &s, 22, 10),
            Err(LinkError::WrongSession)
        );
        let cs = ctx(SessionBinding::Sign { digest: DIGEST });
        assert_eq!(
            verify_device_link(&link, BASE, &cs, &s, 22, 10),
            Err(LinkError::WrongSession)
        );
    }

    #[test]
    fn qr_age_is_enforced() {
        let s = secret();
        let c = ctx(SessionBinding::Auth {
            rp_challenge: RP_CHALLENGE,
        });
        let link = build_device_link(&params(DeviceLinkType::Qr, SessionType::Auth), &c, &s);
        assert!(verify_device_link(&link, BASE, &c, &s, 32, 10).is_ok());
        assert_eq!(
            verify_device_link(&link, BASE, &c, &s, 33, 10),
            Err(LinkError::QrExpired)
        );
        assert!(verify_device_link(&link, BASE, &c, &s, 20, 10).is_ok());
        assert_eq!(
            verify_device_link(&link, BASE, &c, &s, 19, 10),
            Err(LinkError::QrFromFuture)
        );
        // Same-device links carry no age.
        let w = build_device_link(&params(DeviceLinkType::Web2App, SessionType::Auth), &c, &s);
        assert!(verify_device_link(&w, BASE, &c, &s, 10_000, 10).is_ok());
    }

    /// device_link_flows.txt: Web2App / App2App need a session with a callback URL; QR
    /// links do not. The authCode is checked first (a forged link learns nothing).
    #[test]
    fn same_device_links_need_a_callback_url() {
        let s = secret();
        for binding in [
            SessionBinding::Auth {
                rp_challenge: RP_CHALLENGE,
            },
            SessionBinding::Cert,
        ] {
            let c = AuthCodeContext {
                initial_callback_url: None,
                ..ctx(binding)
            };
            let st = binding.session_type();
            for lt in [DeviceLinkType::Web2App, DeviceLinkType::App2App] {
                let link = build_device_link(&params(lt, st), &c, &s);
                assert_eq!(
                    verify_device_link(&link, BASE, &c, &s, 22, 10),
                    Err(LinkError::NoCallbackUrl)
                );
                assert_eq!(
                    verify_device_link(&link, BASE, &c, b"other", 22, 10),
                    Err(LinkError::BadAuthCode)
                );
            }
            let qr = build_device_link(&params(DeviceLinkType::Qr, st), &c, &s);
            assert!(verify_device_link(&qr, BASE, &c, &s, 22, 10).is_ok());
        }
    }

    #[test]
    fn parse_rejects_non_canonical_links() {
        let code = "aegUh6gCKkXBJhhvtJqSTWB5_2W8TDQt5eZ7db6krv0";
        let bad = [
            // order swapped
            format!(
                "{BASE}?sessionToken={TOKEN}&deviceLinkType=Web2App&sessionType=auth&version=1.0&lang=eng&authCode={code}"
            ),
            // elapsedSeconds on Web2App
            format!(
                "{BASE}?deviceLinkType=Web2App&elapsedSeconds=1&sessionToken={TOKEN}&sessionType=auth&version=1.0&lang=eng&authCode={code}"
            ),
            // QR without elapsedSeconds
            format!(
                "{BASE}?deviceLinkType=QR&sessionToken={TOKEN}&sessionType=auth&version=1.0&lang=eng&authCode={code}"
            ),
            // leading zero
            format!(
                "{BASE}?deviceLinkType=QR&elapsedSeconds=022&sessionToken={TOKEN}&sessionType=auth&version=1.0&lang=eng&authCode={code}"
            ),
            format!(
                "{BASE}?deviceLinkType=Web2App&sessionToken={TOKEN}&sessionType=auth&version=2.0&lang=eng&authCode={code}"
            ),
            format!(
                "{BASE}?deviceLinkType=Web2App&sessionToken={TOKEN}&sessionType=auth&version=1.0&lang=eng&x=1&authCode={code}"
            ),
            format!(
                "{BASE}?deviceLinkType=Web2App&sessionToken={TOKEN}&sessionType=auth&version=1.0&lang=eng&authCode={code}#f"
            ),
            format!(
                "{BASE}?deviceLinkType=Web2App&sessionToken={TOKEN}&sessionType=auth&version=1.0&lang=eng"
            ),
            format!(
                "{BASE}?deviceLinkType=Web2App&sessionToken={TOKEN}&sessionType=login&version=1.0&lang=eng&authCode={code}"
            ),
            format!(
                "{BASE}?deviceLinkType=Web2App&sessionToken={TOKEN}&sessionType=auth&version=1.0&lang=eng&authCode={code}A"
            ),
        ];
        for l in bad {
            assert!(
                matches!(ParsedLink::parse(&l), Err(LinkError::Malformed(_))),
                "{l}"
            );
        }
    }
}
