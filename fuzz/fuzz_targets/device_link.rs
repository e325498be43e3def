//! Device links (QR, Web2App, App2App): the server's parser and authCode check
//! (`rp_api::device_link`) on arbitrary links, and the relying-party client's link builder
//! (`rp_client::link`) on arbitrary session start responses and request values.
//!
//! Input: `mode byte || fields separated by 0x00`.
//! - mode even: one field, a scanned link. Properties: parsing never panics; an accepted
//!   link is in canonical form (rebuilding it from what was parsed gives the same
//!   unprotected link), and the rebuilt link with the right authCode verifies.
//! - mode odd: a session start response and request values for the RP client. Property:
//!   every link the client builds for a response this server could have sent is accepted
//!   by the server's check, and rejected for another session secret.

#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tandem_rp::api::device_link::{
    AuthCodeContext, DeviceLinkType, LinkParams, ParsedLink, SessionBinding, SessionType,
    build_device_link, verify_device_link,
};
use tandem_rp::api::types::{
    CertificateChoiceRequest, DeviceLinkAuthenticationRequest, DeviceLinkSessionResponse,
    DeviceLinkSigningRequest,
};
use tandem_rp::client::DeviceLinkSession;

const SECRET: &[u8] = b"fuzz session secret, 32 bytes ok";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(link) = std::str::from_utf8(rest) {
            scanned(link);
        }
    } else {
        built(mode / 2, rest);
    }
});

fn ctx(session_type: SessionType) -> AuthCodeContext<'static> {
    AuthCodeContext {
        scheme_name: "smart-id",
        binding: match session_type {
            SessionType::Auth => SessionBinding::Auth {
                rp_challenge: "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg==",
            },
            SessionType::Sign => SessionBinding::Sign {
                digest: "FNZFFya5wGLv9b27fZngaWrOBqle4tGwxZuDFRBdPl0=",
            },
            SessionType::Cert => SessionBinding::Cert,
        },
        relying_party_name: "DEMO",
        brokered_rp_name: None,
        interactions: "W3sidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2MCI6IkxvZyBpbiJ9XQ==",
        initial_callback_url: Some("https://rp.example/cb"),
    }
}

fn scanned(link: &str) {
    let Ok(p) = ParsedLink::parse(link) else {
        return;
    };
    assert!(
        !p.session_token.is_empty() && p.session_token.bytes().all(|b| b.is_ascii_alphanumeric())
    );
    assert!(p.lang.len() == 3 && p.lang.bytes().all(|b| b.is_ascii_lowercase()));
    assert_eq!(
        p.elapsed_seconds.is_some(),
        p.link_type == DeviceLinkType::Qr
    );
    let elapsed = p.elapsed_seconds.unwrap_or(0);
    let params = LinkParams {
        device_link_base: &p.device_link_base,
        link_type: p.link_type,
        session_token: &p.session_token,
        session_type: p.session_type,
        lang: &p.lang,
        elapsed_seconds: elapsed,
    };
    let c = ctx(p.session_type);
    let rebuilt = build_device_link(&params, &c, SECRET);
    let unprotected = |l: &str| l.rsplit_once("&authCode=").map(|(u, _)| u.to_owned());
    assert_eq!(
        unprotected(&rebuilt),
        unprotected(link),
        "accepted link is not in canonical form"
    );
    // The scanned link itself: whatever its authCode, checking it must not panic, and it
    // verifies only if its code is the right one.
    let own = p
        .clone()
        .verify(&p.device_link_base, &c, SECRET, elapsed, 60);
    assert_eq!(
        own.is_ok(),
        link == rebuilt,
        "authCode check disagrees with the builder"
    );
    let v = verify_device_link(&rebuilt, &p.device_link_base, &c, SECRET, elapsed, 60)
        .unwrap_or_else(|e| panic!("rebuilt link refused: {e}"));
    assert_eq!(v.session_token, p.session_token);
    assert!(
        verify_device_link(
            &rebuilt,
            &p.device_link_base,
            &c,
            b"another secret",
            elapsed,
            60
        )
        .is_err()
    );
}

fn built(kind: u8, rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let mut f = text.split('\0');
    let mut next = || f.next().unwrap_or("").to_owned();
    let (token, secret_b64, base, rp_name, interactions, callback, value, lang, elapsed) = (
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    );
    let callback = (!callback.is_empty()).then_some(callback);
    let resp = DeviceLinkSessionResponse {
        session_id: "s".into(),
        session_token: token.clone(),
        session_secret: secret_b64.clone(),
        device_link_base: base.clone(),
    };
    let request = json!({
        "relyingPartyUUID": "00000000-0000-4000-8000-000000000000",
        "relyingPartyName": rp_name,
        "initialCallbackUrl": callback,
        "signatureProtocol": if kind % 3 == 0 { "ACSP_V2" } else { "RAW_DIGEST_SIGNATURE" },
        "signatureProtocolParameters": {
            "rpChallenge": value, "digest": value, "signatureAlgorithm": "rsassa-pss",
        },
        "interactions": interactions,
    });
    let now = Instant::now();
    let (session, binding) = match kind % 3 {
        0 => {
            let Ok(r) = serde_json::from_value::<DeviceLinkAuthenticationRequest>(request) else {
                return;
            };
            (
                DeviceLinkSession::for_authentication(&resp, now, "smart-id", &r),
                SessionType::Auth,
            )
        }
        1 => {
            let Ok(r) = serde_json::from_value::<DeviceLinkSigningRequest>(request) else {
                return;
            };
            (
                DeviceLinkSession::for_signature(&resp, now, "smart-id", &r),
                SessionType::Sign,
            )
        }
        _ => {
            let Ok(r) = serde_json::from_value::<CertificateChoiceRequest>(request) else {
                return;
            };
            (
                DeviceLinkSession::for_certificate_choice(&resp, now, "smart-id", &r),
                SessionType::Cert,
            )
        }
    };
    let Ok(session) = session else {
        return;
    };
    let Ok(session) = session.with_lang(&lang) else {
        return;
    };
    assert_eq!(session.session_type(), binding);
    let elapsed: u64 = elapsed.parse().unwrap_or(0);
    let secret = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &secret_b64)
        .expect("the client accepted the secret, so it is Base64");
    let c = AuthCodeContext {
        scheme_name: "smart-id",
        binding: match binding {
            SessionType::Auth => SessionBinding::Auth {
                rp_challenge: &value,
            },
            SessionType::Sign => SessionBinding::Sign { digest: &value },
            SessionType::Cert => SessionBinding::Cert,
        },
        relying_party_name: &rp_name,
        brokered_rp_name: None,
        interactions: if binding == SessionType::Cert {
            ""
        } else {
            &interactions
        },
        initial_callback_url: callback.as_deref(),
    };
    // What this server hands out: an alphanumeric token and a plain URL as the base.
    let ours = token.bytes().all(|b| b.is_ascii_alphanumeric())
        && base.is_ascii()
        && !base.contains(['?', '#', '%', ' ', '&']);
    let mut links = vec![(session.qr_link_at(elapsed), elapsed)];
    for t in [DeviceLinkType::Web2App, DeviceLinkType::App2App] {
        if let Ok(l) = session.same_device_link(t) {
            links.push((l, 0));
        }
    }
    for (link, at) in links {
        let verdict = verify_device_link(&link, &base, &c, &secret, at, 60);
        if ours {
            verdict.unwrap_or_else(|e| panic!("server refuses the client's link {link:?}: {e}"));
            let mut other = secret.clone();
            other[0] ^= 1;
            assert!(verify_device_link(&link, &base, &c, &other, at, 60).is_err());
        }
    }
}
