//! Conformance walk of the Smart-ID RP API v3 specification
//! (`shared/reference/smart-id-rp-api-v3/`, version 3.2.3), page by page and section by
//! section. Every normative requirement (MUST, MUST NOT, REQUIRED, and openapi.yml's required
//! fields, enums, formats and status codes) that binds the server or a relying-party library
//! is checked here, or docs/RP_CONFORMANCE.md says why not (it binds the RP's own UI or
//! business, or is not testable).
//!
//! Names are `page__requirement`. Requirements on pure computations (authCode, device links,
//! ACSP_V2, verification codes, interactions, response parsing) get one test each and no
//! server. Requirements on what a server answers are grouped per section: one test starts one
//! real server (REST over 127.0.0.1, hsm-sim token, SQLite) with simulated phones
//! (client-core over gRPC) and checks each requirement of the section with a [`Checks`]
//! entry named after it, so a failure lists every requirement that does not hold.
//! Cryptographic outputs are checked a second time with the `openssl` command line.

#![allow(clippy::unwrap_used)] // tests
#![allow(non_snake_case)] // `page__requirement` names

#[path = "rp_conformance/support.rs"]
mod support;

use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha384, Sha512};
use support::*;
use tandem_client_core::KeyType;
use tandem_client_core::grpc as dev;
use tandem_proto::v1 as pb;
use tandem_rp::api::acsp::{self, AcspV2Fields};
use tandem_rp::api::device_link::{self, AuthCodeContext, DeviceLinkType, SessionBinding};
use tandem_rp::api::problem::Problem;
use tandem_rp::api::types::{
    self as t, CertificateChoiceRequest, CertificateResponse, DeviceLinkAuthenticationRequest,
    DeviceLinkSessionResponse, DeviceLinkSigningRequest, FlowType, HashAlgorithm, Interaction,
    InteractionFlow, InteractionType, NotificationAuthenticationRequest,
    NotificationSigningLinkedRequest, NotificationSigningRequest, NotificationSigningResponse,
    SessionIdResponse, SessionStatusResponse, SigningCertificateRequest,
};
use tandem_rp::client::{self, DeviceLinkSession};
use tandem_tests::*;

// ------------------------------------------------------------------ the spec's example values

/// device_link_flows.txt / authcode.txt / openapi.yml `DeviceLinkResponseExample`.
const EX_BASE: &str = "https://smart-id.com/device-link";
const EX_TOKEN: &str = "wGIrqveE6AuGDATZKmR1mtAZ";
const EX_SECRET: &str = "B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps=";
const EX_CHALLENGE: &str =
    "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg==";
const EX_DIGEST: &str =
    "FNZFFya5wGLv9b27fZngaWrOBqle4tGwxZuDFRBdPl1RQvxJsfoqvTbjafd+8BcehMOQGvak6zlP+F8tga4bfQ==";
/// interactions.txt Example 1 (also used by authcode.txt and signature_protocols.txt).
const EX_INTERACTIONS: &str = "W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2UiLCJkaXNwbGF5VGV4dDIwMCI6IkxvbmdlciBkZXNjcmlwdGlvbiBvZiB0aGUgdHJhbnNhY3Rpb24gY29udGV4dCJ9LHsidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2MCI6IlNob3J0IGRlc2NyaXB0aW9uIG9mIHRoZSB0cmFuc2FjdGlvbiBjb250ZXh0In1d";
const EX_CALLBACK: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";
/// callback_urls.txt "Callback URL examples".
const EX_SECRET_DIGEST: &str = "U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc";
const EX_VERIFIER: &str = "XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c";
/// signature_protocols.txt ACSP_V2 example (`userChallenge` of [`EX_VERIFIER`]).
const EX_USER_CHALLENGE: &str = "GnsWXXEjTCKR89fj9uo5u5ReBZ9JR7_pezLAI5jMS00";
const EX_SERVER_RANDOM: &str = "MTlop6EXCrQ6FOErcKjxUhbV";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Auth,
    Sign,
    Cert,
}

fn ex_response() -> DeviceLinkSessionResponse {
    serde_json::from_value(json!({
        "sessionID": "fa20fd1e-e320-4c68-8315-f6a507a0b4a9",
        "sessionToken": EX_TOKEN,
        "sessionSecret": EX_SECRET,
        "deviceLinkBase": EX_BASE,
    }))
    .unwrap()
}

fn ex_auth_request(callback: Option<&str>) -> DeviceLinkAuthenticationRequest {
    let mut v = json!({
        "relyingPartyUUID": "00000000-0000-4000-8000-000000000000",
        "relyingPartyName": "DEMO",
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": {
            "rpChallenge": EX_CHALLENGE,
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": EX_INTERACTIONS,
    });
    if let Some(c) = callback {
        v["initialCallbackUrl"] = json!(c);
    }
    serde_json::from_value(v).unwrap()
}

fn ex_sign_request() -> DeviceLinkSigningRequest {
    serde_json::from_value(json!({
        "relyingPartyUUID": "00000000-0000-4000-8000-000000000000",
        "relyingPartyName": "DEMO",
        "initialCallbackUrl": EX_CALLBACK,
        "signatureProtocol": "RAW_DIGEST_SIGNATURE",
        "signatureProtocolParameters": {
            "digest": EX_DIGEST,
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": EX_INTERACTIONS,
    }))
    .unwrap()
}

fn ex_cert_request() -> CertificateChoiceRequest {
    serde_json::from_value(json!({
        "relyingPartyUUID": "00000000-0000-4000-8000-000000000000",
        "relyingPartyName": "DEMO",
        "initialCallbackUrl": EX_CALLBACK,
    }))
    .unwrap()
}

/// The RP library's device-link session for the spec's example values (relying party `DEMO`
/// brokering for `Example RP`, as in authcode.txt).
fn ex_session(kind: Kind, received_at: Instant) -> DeviceLinkSession {
    let r = ex_response();
    match kind {
        Kind::Auth => DeviceLinkSession::for_authentication(
            &r,
            received_at,
            "smart-id",
            &ex_auth_request(Some(EX_CALLBACK)),
        ),
        Kind::Sign => {
            DeviceLinkSession::for_signature(&r, received_at, "smart-id", &ex_sign_request())
        }
        Kind::Cert => DeviceLinkSession::for_certificate_choice(
            &r,
            received_at,
            "smart-id",
            &ex_cert_request(),
        ),
    }
    .unwrap()
    .with_brokered_rp_name(Some("Example RP"))
}

/// The link of `kind` and `link_type` (QR at `elapsedSeconds` 22, as in the spec).
fn ex_link(kind: Kind, link_type: DeviceLinkType) -> String {
    let s = ex_session(kind, Instant::now());
    match link_type {
        DeviceLinkType::Qr => s.qr_link_at(22),
        other => s.same_device_link(other).unwrap(),
    }
}

/// The query parameters of a link, in order.
fn query(link: &str) -> Vec<(String, String)> {
    link.split_once('?')
        .unwrap()
        .1
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn param(link: &str, name: &str) -> String {
    query(link)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

// ================================================================== changes.txt / api_details.txt

/// changes.txt: "RPs must ignore any unknown names (fields) in the JSON response object."
/// api_details.txt: "the RP must ignore unknown names (fields) in JSON response objects at any
/// location within the JSON structure." Our RP library must read every response shape with
/// an added field at every level.
#[test]
fn api_details__rp_library_ignores_unknown_response_fields() {
    let mut c = Checks::new("api_details__rp_library_ignores_unknown_response_fields");
    let x = json!("future value");
    let acsp = json!({
        "state": "COMPLETE", "futureTop": x,
        "result": {"endResult": "OK", "documentNumber": "PNOEE-30303039914-MOCK-Q", "futureResult": x,
                   "details": {"futureDetail": x}},
        "signatureProtocol": "ACSP_V2",
        "signature": {"value": "AAAA", "serverRandom": EX_SERVER_RANDOM, "userChallenge": EX_USER_CHALLENGE,
                      "flowType": "QR", "signatureAlgorithm": "rsassa-pss", "futureSignature": x,
                      "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512", "futureParam": x,
                          "maskGenAlgorithm": {"algorithm": "id-mgf1", "futureMgf": x,
                              "parameters": {"hashAlgorithm": "SHA-512", "futureMgfParam": x}},
                          "saltLength": 64, "trailerField": "0xbc"}},
        "cert": {"value": "AAAA", "certificateLevel": "QUALIFIED", "futureCert": x},
        "interactionTypeUsed": "displayTextAndPIN",
    });
    // Remove the added fields one at a time: the location that breaks parsing is named.
    let locations: [&[&str]; 8] = [
        &["futureTop"],
        &["result", "futureResult"],
        &["result", "details", "futureDetail"],
        &["signature", "futureSignature"],
        &["signature", "signatureAlgorithmParameters", "futureParam"],
        &[
            "signature",
            "signatureAlgorithmParameters",
            "maskGenAlgorithm",
            "futureMgf",
        ],
        &[
            "signature",
            "signatureAlgorithmParameters",
            "maskGenAlgorithm",
            "parameters",
            "futureMgfParam",
        ],
        &["cert", "futureCert"],
    ];
    let strip = |v: &Value, keep: &[&str]| -> Value {
        // Only the field at `keep` stays; every other added field is removed.
        let mut v = v.clone();
        for loc in locations {
            if loc == keep {
                continue;
            }
            let mut node = &mut v;
            for k in &loc[..loc.len() - 1] {
                node = &mut node[*k];
            }
            if let Some(o) = node.as_object_mut() {
                o.remove(loc[loc.len() - 1]);
            }
        }
        v
    };
    for loc in &locations {
        let v = strip(&acsp, loc);
        let r = serde_json::from_value::<SessionStatusResponse>(v);
        c.check(
            &format!(
                "ACSP_V2 session status with an unknown field at /{} parses",
                loc.join("/")
            ),
            r.is_ok(),
            format_args!("{r:?}"),
        );
    }
    for (what, v) in [
        (
            "RAW_DIGEST_SIGNATURE signature",
            json!({"state": "COMPLETE", "result": {"endResult": "OK", "documentNumber": "D"},
                   "signatureProtocol": "RAW_DIGEST_SIGNATURE",
                   "signature": {"value": "AAAA", "flowType": "Notification",
                                 "signatureAlgorithm": "sha512WithRSAEncryption", "futureSignature": 1},
                   "cert": {"value": "AAAA", "certificateLevel": "QUALIFIED"}}),
        ),
        (
            "certificate-choice signature",
            json!({"state": "COMPLETE", "result": {"endResult": "OK", "documentNumber": "D"},
                   "signature": {"flowType": "Web2App", "futureSignature": 1},
                   "cert": {"value": "AAAA", "certificateLevel": "QUALIFIED"}}),
        ),
    ] {
        let r = serde_json::from_value::<SessionStatusResponse>(v);
        c.check(
            &format!("{what} with an unknown field parses"),
            r.is_ok(),
            format_args!("{r:?}"),
        );
    }
    type Parses = fn(Value) -> bool;
    let others: [(&str, Value, Parses); 5] = [
        (
            "device-link start response",
            json!({"sessionID": "fa20fd1e-e320-4c68-8315-f6a507a0b4a9", "sessionToken": EX_TOKEN,
                   "sessionSecret": EX_SECRET, "deviceLinkBase": EX_BASE, "future": 1}),
            |v| serde_json::from_value::<DeviceLinkSessionResponse>(v).is_ok(),
        ),
        (
            "notification signing start response (in vc too)",
            json!({"sessionID": "56e1c1d0-dc07-4c71-890b-6200856b8c75", "future": 1,
                   "vc": {"type": "numeric4", "value": "4927", "future": 1}}),
            |v| serde_json::from_value::<NotificationSigningResponse>(v).is_ok(),
        ),
        (
            "session-ID start response",
            json!({"sessionID": "56e1c1d0-dc07-4c71-890b-6200856b8c75", "future": 1}),
            |v| serde_json::from_value::<SessionIdResponse>(v).is_ok(),
        ),
        (
            "signing-certificate response (in cert too)",
            json!({"state": "OK", "future": 1,
                   "cert": {"value": "AAAA", "certificateLevel": "QUALIFIED", "future": 1}}),
            |v| serde_json::from_value::<CertificateResponse>(v).is_ok(),
        ),
        (
            "problem document (in errors too)",
            json!({"type": "about:blank", "status": 400, "title": "Bad Request", "detail": "d",
                   "future": 1, "errors": [{"detail": "x", "future": 1}]}),
            |v| serde_json::from_value::<Problem>(v).is_ok(),
        ),
    ];
    for (what, v, parses) in others {
        c.check(
            &format!("{what} with an unknown field parses"),
            parses(v),
            "parse error",
        );
    }
    c.finish();
}

// ================================================================== device_link_flows.txt

/// device_link_flows.txt Examples 1-4: Web2App (authentication), App2App (signature), Web2App
/// (certificate choice) and QR (authentication) links, built by the RP library from the
/// spec's session values, match the published links byte for byte ("The resulting
/// deviceLink must match bit by bit with the expected deviceLink").
#[test]
fn device_link_flows__spec_examples_1_to_4_byte_for_byte() {
    assert_eq!(
        ex_link(Kind::Auth, DeviceLinkType::Web2App),
        "https://smart-id.com/device-link?deviceLinkType=Web2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng&authCode=aegUh6gCKkXBJhhvtJqSTWB5_2W8TDQt5eZ7db6krv0"
    );
    assert_eq!(
        ex_link(Kind::Sign, DeviceLinkType::App2App),
        "https://smart-id.com/device-link?deviceLinkType=App2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=sign&version=1.0&lang=eng&authCode=8QZ16rkBW_ffkq6osT7UH1DbUlF9gEOZevgj-A0VNbM"
    );
    assert_eq!(
        ex_link(Kind::Cert, DeviceLinkType::Web2App),
        "https://smart-id.com/device-link?deviceLinkType=Web2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=cert&version=1.0&lang=eng&authCode=PI1qYa9_l6zR-v6Pkre6ycSm7S3BGiOQSe5OQlw4UJg"
    );
    assert_eq!(
        ex_link(Kind::Auth, DeviceLinkType::Qr),
        "https://smart-id.com/device-link?deviceLinkType=QR&elapsedSeconds=22&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng&authCode=OY1eHaD4UYedrBwtqUbSkpa0w7ttm4FllPkCD_3wlE0"
    );
}

/// device_link_flows.txt: "In case of QR codes ... the links must be updated each second";
/// "elapsedSeconds: Seconds since receiving the response from the initial request";
/// "dynamic QR code link must be re-calculated each second because the elapsedSeconds value
/// changes". The library's QR link at `now` carries the whole seconds since the start
/// response and a new authCode every second; each verifies for its own second only.
#[test]
fn device_link_flows__qr_link_rebuilt_every_second() {
    let t0 = Instant::now();
    let s = ex_session(Kind::Auth, t0);
    let secret = STANDARD.decode(EX_SECRET).unwrap();
    let req = ex_auth_request(Some(EX_CALLBACK));
    let ctx = AuthCodeContext {
        scheme_name: "smart-id",
        binding: SessionBinding::Auth {
            rp_challenge: EX_CHALLENGE,
        },
        relying_party_name: "DEMO",
        brokered_rp_name: Some("Example RP"),
        interactions: &req.interactions,
        initial_callback_url: Some(EX_CALLBACK),
    };
    let mut codes = Vec::new();
    for (ms, want) in [
        (0u64, "0"),
        (999, "0"),
        (1000, "1"),
        (2500, "2"),
        (61_000, "61"),
    ] {
        let link = s.qr_link(t0 + Duration::from_millis(ms));
        assert_eq!(param(&link, "elapsedSeconds"), want, "{link}");
        let e: u64 = want.parse().unwrap();
        device_link::verify_device_link(&link, EX_BASE, &ctx, &secret, e, 0).unwrap();
        codes.push(param(&link, "authCode"));
    }
    assert_eq!(codes[0], codes[1], "same second, same link");
    assert!(
        codes[1] != codes[2] && codes[2] != codes[3] && codes[3] != codes[4],
        "a new second must give a new authCode: {codes:?}"
    );
}

/// device_link_flows.txt: "same-device links do not have elapsedSeconds and should not be
/// dynamically regenerated"; "in same-device flows, elapsedSeconds parameter must be missing
/// from unprotectedDeviceLink".
#[test]
fn device_link_flows__same_device_links_are_static_without_elapsed_seconds() {
    let t0 = Instant::now();
    for kind in [Kind::Auth, Kind::Sign, Kind::Cert] {
        let s = ex_session(kind, t0 - Duration::from_secs(30));
        for lt in [DeviceLinkType::Web2App, DeviceLinkType::App2App] {
            let a = s.same_device_link(lt).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            let b = s.same_device_link(lt).unwrap();
            assert_eq!(a, b, "{kind:?} {lt:?}");
            assert!(!a.contains("elapsedSeconds"), "{a}");
        }
    }
}

/// device_link_flows.txt: "There must not be URL encoding in the deviceLink. There must not
/// be URL fragment (#) in the deviceLink. The order of the path parameters in the device link
/// must be the same as specified ... All values are required and must be non-empty";
/// "version ... Currently, only 1.0 is supported. It must be used in string form";
/// "sessionToken ... must be used as is"; deviceLinkType and sessionType "must be used as is".
#[test]
fn device_link_flows__parameters_in_order_non_empty_unencoded() {
    for kind in [Kind::Auth, Kind::Sign, Kind::Cert] {
        let session_type = match kind {
            Kind::Auth => "auth",
            Kind::Sign => "sign",
            Kind::Cert => "cert",
        };
        for lt in [
            DeviceLinkType::Qr,
            DeviceLinkType::Web2App,
            DeviceLinkType::App2App,
        ] {
            let link = ex_link(kind, lt);
            assert!(
                !link.contains('%') && !link.contains('#'),
                "encoded or fragment: {link}"
            );
            assert!(link.starts_with(&format!("{EX_BASE}?")), "{link}");
            let q = query(&link);
            let names: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
            let mut want = vec!["deviceLinkType"];
            if lt == DeviceLinkType::Qr {
                want.push("elapsedSeconds");
            }
            want.extend(["sessionToken", "sessionType", "version", "lang", "authCode"]);
            assert_eq!(names, want, "{link}");
            assert!(q.iter().all(|(_, v)| !v.is_empty()), "{link}");
            assert_eq!(param(&link, "deviceLinkType"), lt.as_str());
            assert_eq!(param(&link, "sessionToken"), EX_TOKEN);
            assert_eq!(param(&link, "sessionType"), session_type);
            assert_eq!(param(&link, "version"), "1.0");
        }
    }
}

/// device_link_flows.txt: "lang: Its format must be ISO 639-2 three-letter language code".
#[test]
fn device_link_flows__lang_is_an_iso_639_2_code() {
    let s = ex_session(Kind::Auth, Instant::now());
    assert_eq!(param(&s.qr_link_at(0), "lang"), "eng", "default");
    for bad in ["en", "english", "", "EN1"] {
        assert!(
            ex_session(Kind::Auth, Instant::now())
                .with_lang(bad)
                .is_err(),
            "{bad:?} accepted"
        );
    }
    let s = ex_session(Kind::Auth, Instant::now())
        .with_lang("est")
        .unwrap();
    assert_eq!(param(&s.qr_link_at(0), "lang"), "est");
}

/// device_link_flows.txt: "If an RP would like to display a Web2App or App2App link without a
/// dynamic QR code, a device link flow with a callback URL must be started"; a session
/// started without `initialCallbackUrl` gets QR links only.
#[test]
fn device_link_flows__same_device_link_needs_initial_callback_url() {
    let s = DeviceLinkSession::for_authentication(
        &ex_response(),
        Instant::now(),
        "smart-id",
        &ex_auth_request(None),
    )
    .unwrap();
    assert!(s.same_device_link(DeviceLinkType::Web2App).is_err());
    assert!(s.same_device_link(DeviceLinkType::App2App).is_err());
    assert!(s.qr_link_at(0).contains("deviceLinkType=QR"));
}

/// device_link_flows.txt: "sessionSecret - Base64 encoded key value that must be kept secret
/// and must not be shared with any other party (including RP frontend)"; parameter
/// visibility: the RP frontend MUST NOT know `sessionSecret`. The library keeps it in the
/// backend object only: never in a link or a `Debug` print.
#[test]
fn device_link_flows__session_secret_never_leaves_the_backend() {
    let s = ex_session(Kind::Auth, Instant::now());
    let raw = STANDARD.decode(EX_SECRET).unwrap();
    let forms = [
        EX_SECRET.to_owned(),
        URL_SAFE_NO_PAD.encode(&raw),
        hex::encode(&raw),
        format!("{raw:?}"),
    ];
    let shown = [
        format!("{s:?}"),
        s.qr_link_at(3),
        s.same_device_link(DeviceLinkType::Web2App).unwrap(),
    ];
    for text in &shown {
        for f in &forms {
            assert!(!text.contains(f.as_str()), "secret visible in {text}");
        }
    }
}

/// The format bits of a QR module matrix (ISO/IEC 18004 §7.9, the copy around the top-left
/// finder), as the EC level: `L`, `M`, `Q` or `H`.
fn qr_error_correction(m: &client::qr::ModuleMatrix, quiet: u32) -> char {
    let dark = |x: u32, y: u32| m.dark[((y + quiet) * m.size + x + quiet) as usize];
    let mut positions: Vec<(u32, u32)> = (0..6).map(|x| (x, 8)).collect();
    positions.extend([(7, 8), (8, 8), (8, 7)]);
    positions.extend((0..6).rev().map(|y| (8, y)));
    let read = |mirror: bool| {
        positions.iter().fold(0u32, |acc, &(x, y)| {
            let (x, y) = if mirror { (y, x) } else { (x, y) };
            (acc << 1) | u32::from(dark(x, y))
        })
    };
    let bch = |d: u32| {
        let mut v = d << 10;
        for i in (10..15).rev() {
            if v & (1 << i) != 0 {
                v ^= 0x537 << (i - 10);
            }
        }
        (d << 10) | v
    };
    for bits in [read(false), read(true)] {
        if let Some(d) = (0..32u32).find(|d| bch(*d) ^ 0x5412 == bits) {
            return ['M', 'L', 'H', 'Q'][(d >> 3) as usize];
        }
    }
    panic!("no valid format information in the QR code");
}

/// device_link_flows.txt, "Device link and QR presentation": "error correction level LOW or
/// MEDIUM should be used. HIGH cannot be used due to the typical device link length. The QR
/// code should have sufficient margins". Read back from the library's QR module matrix.
#[test]
fn device_link_flows__qr_code_error_correction_low_or_medium_with_margin() {
    let link = ex_link(Kind::Auth, DeviceLinkType::Qr);
    let quiet = client::qr::QUIET_ZONE_MODULES;
    let m = client::qr::modules(&link, quiet).unwrap();
    let ec = qr_error_correction(&m, quiet);
    assert!(ec == 'L' || ec == 'M', "error correction {ec}");
    assert!(quiet >= 4, "quiet zone of {quiet} modules");
    for i in 0..m.size {
        for j in 0..quiet {
            assert!(
                !m.dark[(j * m.size + i) as usize] && !m.dark[(i * m.size + j) as usize],
                "the margin is not light"
            );
        }
    }
}

// ================================================================== authcode.txt

/// authcode.txt Examples 1-9: the authCode of every link type (Web2App, App2App, QR) and
/// session type (authentication, signature, certificate choice), byte for byte.
#[test]
fn authcode__spec_examples_1_to_9() {
    use DeviceLinkType::*;
    let cases = [
        (
            Web2App,
            Kind::Auth,
            "aegUh6gCKkXBJhhvtJqSTWB5_2W8TDQt5eZ7db6krv0",
        ),
        (
            Web2App,
            Kind::Sign,
            "R0iNcUp8nK1nqrcVFWerXUfWMSjwDOMC6MAHKrckaH8",
        ),
        (
            Web2App,
            Kind::Cert,
            "PI1qYa9_l6zR-v6Pkre6ycSm7S3BGiOQSe5OQlw4UJg",
        ),
        (
            App2App,
            Kind::Auth,
            "00NRcgi4Jk7WdIwgMPlyM8wRy9KMu4C_oQvd-N6PKoo",
        ),
        (
            App2App,
            Kind::Sign,
            "8QZ16rkBW_ffkq6osT7UH1DbUlF9gEOZevgj-A0VNbM",
        ),
        (
            App2App,
            Kind::Cert,
            "AtayuRPP3N59wXF8Cijwjt3pQ16knW2L-5VLDTRD_KU",
        ),
        (
            Qr,
            Kind::Auth,
            "OY1eHaD4UYedrBwtqUbSkpa0w7ttm4FllPkCD_3wlE0",
        ),
        (
            Qr,
            Kind::Sign,
            "5PZVhiNDTnt1MjLz8_YCjnNtR7p0iGevaL2G1ajfMco",
        ),
        (
            Qr,
            Kind::Cert,
            "T5pDDPAjoMS0byqS-FoaWVjlubODXoCCF4XDB4HeYNo",
        ),
    ];
    for (lt, kind, code) in cases {
        assert_eq!(
            param(&ex_link(kind, lt), "authCode"),
            code,
            "{lt:?} {kind:?}"
        );
    }
}

/// The authCode payload as authcode.txt writes it, assembled here from its formula (not by
/// the library): `'smart-id'|protocol|rpChallenge-or-digest|BASE64(relyingPartyName)|
/// BASE64(brokeredRpName)|interactions|initialCallbackUrl|unprotectedDeviceLink`.
fn spec_payload(kind: Kind, link_type: DeviceLinkType, unprotected: &str) -> String {
    let (protocol, value, interactions) = match kind {
        Kind::Auth => ("ACSP_V2", EX_CHALLENGE, EX_INTERACTIONS),
        Kind::Sign => ("RAW_DIGEST_SIGNATURE", EX_DIGEST, EX_INTERACTIONS),
        Kind::Cert => ("", "", ""),
    };
    let callback = if link_type == DeviceLinkType::Qr {
        ""
    } else {
        EX_CALLBACK
    };
    format!(
        "smart-id|{protocol}|{value}|{}|{}|{interactions}|{callback}|{unprotected}",
        b64("DEMO"),
        b64("Example RP")
    )
}

/// authcode.txt: "authCode := BASE64URL-ENCODE(HMAC-SHA256(sessionSecret, authCodePayload))";
/// "sessionSecret ... Must be Base64 decoded before use"; the payload is the UTF-8 bytes of
/// the fields joined with `|`. Checked with `openssl dgst -sha256 -mac HMAC` over the payload
/// assembled from the spec's formula, for all nine link and session types.
#[test]
fn authcode__hmac_sha256_of_payload_checked_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let key = STANDARD.decode(EX_SECRET).unwrap();
    for kind in [Kind::Auth, Kind::Sign, Kind::Cert] {
        for lt in [
            DeviceLinkType::Qr,
            DeviceLinkType::Web2App,
            DeviceLinkType::App2App,
        ] {
            let link = ex_link(kind, lt);
            let (unprotected, code) = link.rsplit_once("&authCode=").unwrap();
            let payload = spec_payload(kind, lt, unprotected);
            let mac = openssl_hmac_sha256(dir.path(), &key, payload.as_bytes());
            assert_eq!(URL_SAFE_NO_PAD.encode(mac), code, "{kind:?} {lt:?}");
        }
    }
}

/// authcode.txt, Encoding: "Base64URL makes the following two substitutions ... + → - and / →
/// _ and ... all trailing = characters must be omitted".
#[test]
fn authcode__base64url_without_padding() {
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rng, &mut secret);
        let r = DeviceLinkSessionResponse {
            session_secret: STANDARD.encode(secret),
            ..ex_response()
        };
        let s = DeviceLinkSession::for_authentication(
            &r,
            Instant::now(),
            "smart-id",
            &ex_auth_request(None),
        )
        .unwrap();
        let code = param(&s.qr_link_at(1), "authCode");
        assert_eq!(code.len(), 43, "{code}");
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{code}"
        );
    }
}

/// authcode.txt: "The order of the fields in the authCodePayload must be the same as
/// specified"; "in QR flows, initialCallbackUrl must be empty and the separator must still be
/// used, i.e. ||"; "in same-device flows ... elapsedSeconds parameter must be missing from
/// unprotectedDeviceLink"; "in certificate-choice session requests parameters digest,
/// interactions and signatureProtocol must be included as empty fields"; brokeredRpName
/// "Must only be used by RPs that act as a broker ... otherwise must be empty".
#[test]
fn authcode__payload_fields_in_order_with_the_empty_exceptions() {
    let ctx = |binding, broker| AuthCodeContext {
        scheme_name: "smart-id",
        binding,
        relying_party_name: "DEMO",
        brokered_rp_name: broker,
        interactions: EX_INTERACTIONS,
        initial_callback_url: Some(EX_CALLBACK),
    };
    let qr = "https://smart-id.com/device-link?deviceLinkType=QR&elapsedSeconds=22&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=cert&version=1.0&lang=eng";
    let web = "https://smart-id.com/device-link?deviceLinkType=Web2App&sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth&version=1.0&lang=eng";
    assert_eq!(
        device_link::auth_code_payload(
            &ctx(SessionBinding::Cert, Some("Example RP")),
            DeviceLinkType::Qr,
            qr
        ),
        format!("smart-id|||REVNTw==|RXhhbXBsZSBSUA==|||{qr}")
    );
    assert_eq!(
        device_link::auth_code_payload(
            &ctx(
                SessionBinding::Auth {
                    rp_challenge: EX_CHALLENGE
                },
                None
            ),
            DeviceLinkType::Web2App,
            web
        ),
        format!("smart-id|ACSP_V2|{EX_CHALLENGE}|REVNTw==||{EX_INTERACTIONS}|{EX_CALLBACK}|{web}")
    );
    assert_eq!(
        device_link::auth_code_payload(
            &ctx(SessionBinding::Sign { digest: EX_DIGEST }, None),
            DeviceLinkType::Qr,
            qr
        ),
        format!("smart-id|RAW_DIGEST_SIGNATURE|{EX_DIGEST}|REVNTw==||{EX_INTERACTIONS}||{qr}")
    );
    let same_device = ex_link(Kind::Auth, DeviceLinkType::App2App);
    assert!(!same_device.contains("elapsedSeconds"));
}

/// authcode.txt: "The relyingPartyName value in the authCodePayload calculation must match
/// byte for byte with the one submitted in the initial RP API request (a common mistake is to
/// use different capitalization)"; "relyingPartyName := BASE64-ENCODE(UTF8-ENCODE(
/// relyingPartyName))".
#[test]
fn authcode__relying_party_name_is_base64_of_utf8_as_submitted() {
    let name = "Pank Öö & Co";
    let ctx = |n| AuthCodeContext {
        scheme_name: "smart-id",
        binding: SessionBinding::Cert,
        relying_party_name: n,
        brokered_rp_name: None,
        interactions: "",
        initial_callback_url: None,
    };
    let p = device_link::auth_code_payload(&ctx(name), DeviceLinkType::Qr, "L");
    assert_eq!(
        p,
        format!("smart-id|||{}||||L", STANDARD.encode(name.as_bytes()))
    );
    let secret = [7u8; 32];
    let upper = device_link::auth_code(
        &secret,
        &device_link::auth_code_payload(&ctx("DEMO"), DeviceLinkType::Qr, "L"),
    );
    let lower = device_link::auth_code(
        &secret,
        &device_link::auth_code_payload(&ctx("demo"), DeviceLinkType::Qr, "L"),
    );
    assert_ne!(
        upper, lower,
        "the name enters the authCode as sent, case included"
    );
}

// ================================================================== notification_based_flows.txt

/// notification_based_flows.txt: "Calculate SHA-256 from the rpChallenge, extract 2 rightmost
/// bytes from the result, interpret them as a big-endian unsigned integer and take the last 4
/// digits in decimal form for display. SHA-256 must be used"; "the rpChallenge is the real
/// rpChallenge byte value ... not the Base64 encoded form"; Example 1: 7180. The RP library's
/// code and the app's (client-core) against `openssl dgst -sha256`.
#[test]
fn notification_based_flows__auth_vc_is_sha256_of_rp_challenge_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let reference = |bytes: &[u8]| {
        let h = openssl_digest(dir.path(), "sha256", bytes);
        format!("{:04}", u16::from_be_bytes([h[30], h[31]]) % 10000)
    };
    let ex = STANDARD.decode(EX_CHALLENGE).unwrap();
    assert_eq!(reference(&ex), "7180");
    assert_eq!(
        tandem_rp::api::vc::authentication_vc_b64(EX_CHALLENGE).as_deref(),
        Some("7180")
    );
    assert_eq!(tandem_client_core::vc::verification_code(&ex), "7180");
    for _ in 0..5 {
        let c = random_challenge();
        let bytes = STANDARD.decode(&c).unwrap();
        let want = reference(&bytes);
        assert_eq!(tandem_rp::api::vc::authentication_vc_b64(&c).unwrap(), want);
        assert_eq!(tandem_client_core::vc::verification_code(&bytes), want);
    }
    // Four digits, zero-padded: an input whose code is below 1000.
    let small = (0u32..)
        .map(|i| i.to_be_bytes())
        .find(|b| {
            let h = Sha256::digest(b);
            u16::from_be_bytes([h[30], h[31]]) % 10000 < 1000
        })
        .unwrap();
    let code = tandem_client_core::vc::verification_code(&small);
    assert!(code.len() == 4 && code.starts_with('0'), "{code}");
}

// ================================================================== signature_protocols.txt

/// signature_protocols.txt: "rpChallenge := BASE64-ENCODE(CRYPTO-RANDOM(64))"; openapi.yml
/// `rpChallenge`: 32-64 random bytes, Base64, 44-88 characters, "It must be freshly generated
/// for each authentication".
#[test]
fn signature_protocols__rp_challenge_is_fresh_random_64_bytes() {
    let mut rng = rand::rngs::OsRng;
    let a = client::generate_rp_challenge(&mut rng);
    let b = client::generate_rp_challenge(&mut rng);
    assert_ne!(a, b);
    for c in [&a, &b] {
        assert_eq!(STANDARD.decode(c).unwrap().len(), 64);
        assert!((44..=88).contains(&c.len()));
        assert!(
            c.trim_end_matches('=')
                .bytes()
                .all(|x| x.is_ascii_alphanumeric() || x == b'+' || x == b'/')
        );
    }
}

/// The ACSP_V2 example of signature_protocols.txt.
fn ex_acsp_fields() -> AcspV2Fields<'static> {
    AcspV2Fields {
        scheme_name: "smart-id",
        server_random: EX_SERVER_RANDOM,
        rp_challenge: EX_CHALLENGE,
        user_challenge: EX_USER_CHALLENGE,
        relying_party_name: "DEMO",
        brokered_rp_name: Some("Example RP"),
        interactions: EX_INTERACTIONS,
        interaction_type_used: InteractionType::ConfirmationMessage,
        initial_callback_url: Some(EX_CALLBACK),
        flow_type: FlowType::Web2App,
    }
}

/// The ACSP_V2 payload assembled here from the spec's formula (not by the library):
/// `'smart-id'|'ACSP_V2'|serverRandom|rpChallenge|userChallenge|BASE64(relyingPartyName)|
/// BASE64(brokeredRpName)|BASE64(SHA-256(interactions))|interactionTypeUsed|
/// initialCallbackUrl|flowType`.
#[allow(clippy::too_many_arguments)]
fn acsp_payload(
    server_random: &str,
    rp_challenge: &str,
    user_challenge: &str,
    rp_name: &str,
    broker: &str,
    interactions: &str,
    interaction_used: &str,
    callback: &str,
    flow: &str,
) -> String {
    let ih = STANDARD.encode(Sha256::digest(interactions.as_bytes()));
    format!(
        "smart-id|ACSP_V2|{server_random}|{rp_challenge}|{user_challenge}|{}|{}|{ih}|{interaction_used}|{callback}|{flow}",
        b64(rp_name),
        b64(broker)
    )
}

/// signature_protocols.txt, "ACSP_V2 digest calculation", Example 1: the payload of the
/// spec's values hashed with SHA-512 is `pKOjbNl…KfKg==`; the library's payload equals the
/// formula's and `openssl dgst -sha512` gives the published digest. "the digest must be
/// calculated from UTF-8 encoded byte array ... Base64 encoded values ... must be used as is
/// without Base64 decoding".
#[test]
fn signature_protocols__acsp_v2_spec_example_digest() {
    let dir = tempfile::tempdir().unwrap();
    let payload = acsp_payload(
        EX_SERVER_RANDOM,
        EX_CHALLENGE,
        EX_USER_CHALLENGE,
        "DEMO",
        "Example RP",
        EX_INTERACTIONS,
        "confirmationMessage",
        EX_CALLBACK,
        "Web2App",
    );
    assert_eq!(acsp::acsp_v2_payload(&ex_acsp_fields()), payload);
    let want =
        "pKOjbNl/5Fy8NfrFqsj6pSn8W8O+Ik8rM33QSsbyD3J9qDJvEm90SboUciuY4wHGWa0Pnq8BgT3NJKmJiUDfKg==";
    assert_eq!(
        STANDARD.encode(openssl_digest(dir.path(), "sha512", payload.as_bytes())),
        want
    );
    assert_eq!(
        STANDARD.encode(acsp::acsp_v2_digest(
            &ex_acsp_fields(),
            HashAlgorithm::Sha512
        )),
        want
    );
}

/// signature_protocols.txt: "in case initialCallbackUrl does not exist (for QR and
/// Notification flows), this field must be empty and the separator must still be used, i.e.
/// ||; in case the RP is not acting as a broker, the brokeredRpName must be empty and the
/// separator must still be used".
#[test]
fn signature_protocols__acsp_v2_empty_fields_keep_their_separators() {
    for flow in [FlowType::Qr, FlowType::Notification] {
        let f = AcspV2Fields {
            brokered_rp_name: None,
            initial_callback_url: None,
            flow_type: flow,
            ..ex_acsp_fields()
        };
        let p = acsp::acsp_v2_payload(&f);
        assert_eq!(p.split('|').count(), 11, "{p}");
        assert_eq!(
            p,
            acsp_payload(
                EX_SERVER_RANDOM,
                EX_CHALLENGE,
                EX_USER_CHALLENGE,
                "DEMO",
                "",
                EX_INTERACTIONS,
                "confirmationMessage",
                "",
                flow.as_str()
            )
        );
        assert!(p.contains("|REVNTw==||"), "{p}");
        assert!(p.ends_with(&format!("|confirmationMessage||{}", flow.as_str())));
    }
}

/// signature_protocols.txt: "interactions must be the same Base64-encoded byte string value
/// that was used to initiate the session"; the payload carries
/// `BASE64(SHA-256(interactions))` of that string. Two serialisations of the same list give
/// two payloads: the library hashes the string it is given, never a re-serialisation.
#[test]
fn signature_protocols__acsp_v2_hashes_interactions_as_sent() {
    let spaced = b64(
        r#"[ {"type": "confirmationMessage", "displayText200": "Longer description of the transaction context"}, {"type": "displayTextAndPIN", "displayText60": "Short description of the transaction context"} ]"#,
    );
    let a = acsp::acsp_v2_payload(&ex_acsp_fields());
    let b = acsp::acsp_v2_payload(&AcspV2Fields {
        interactions: &spaced,
        ..ex_acsp_fields()
    });
    assert_ne!(a, b);
    assert!(b.contains(&STANDARD.encode(Sha256::digest(spaced.as_bytes()))));
}

/// openapi.yml `HashAlgorithm`: SHA-256, SHA-384, SHA-512, SHA3-256, SHA3-384, SHA3-512 are
/// the hashes of the ACSP_V2 data structure. The library's digests against `openssl dgst`.
#[test]
fn signature_protocols__acsp_v2_digest_for_every_hash_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let payload = acsp::acsp_v2_payload(&ex_acsp_fields());
    for (h, name) in [
        (HashAlgorithm::Sha256, "sha256"),
        (HashAlgorithm::Sha384, "sha384"),
        (HashAlgorithm::Sha512, "sha512"),
    ] {
        assert_eq!(
            acsp::acsp_v2_digest(&ex_acsp_fields(), h),
            openssl_digest(dir.path(), name, payload.as_bytes()),
            "{name}"
        );
    }
    // Same digests from the crates the server does not use for it.
    assert_eq!(
        acsp::acsp_v2_digest(&ex_acsp_fields(), HashAlgorithm::Sha384),
        Sha384::digest(payload.as_bytes()).to_vec()
    );
}

/// openapi.yml `HashAlgorithm` (SHA3-256, SHA3-384, SHA3-512) for the ACSP_V2 data structure,
/// against `openssl dgst -sha3-*`. Gap (A) of issue 20 until SHA-3 lands.
#[test]
fn signature_protocols__acsp_v2_digest_with_sha3() {
    let dir = tempfile::tempdir().unwrap();
    let payload = acsp::acsp_v2_payload(&ex_acsp_fields());
    for (h, name) in [
        (HashAlgorithm::Sha3_256, "sha3-256"),
        (HashAlgorithm::Sha3_384, "sha3-384"),
        (HashAlgorithm::Sha3_512, "sha3-512"),
    ] {
        assert_eq!(
            acsp::acsp_v2_digest(&ex_acsp_fields(), h),
            openssl_digest(dir.path(), name, payload.as_bytes()),
            "{name}"
        );
    }
}

// ================================================================== interactions.txt

/// interactions.txt: "interactions := BASE64-ENCODE(TO-STRING(MINIFY(interactionsJson)))";
/// "The interactions JSON should be minified"; Examples 1-3 byte for byte from the library's
/// encoder; Examples 4 and 5 (with `\u20ac` escapes) decode to the documented lists.
#[test]
fn interactions__spec_examples_encode_and_decode() {
    use Interaction::*;
    let cm = |s: &str| ConfirmationMessage {
        display_text200: s.into(),
    };
    let pin = |s: &str| DisplayTextAndPin {
        display_text60: s.into(),
    };
    assert_eq!(
        t::encode_interactions(&[
            cm("Longer description of the transaction context"),
            pin("Short description of the transaction context")
        ]),
        EX_INTERACTIONS
    );
    assert_eq!(
        t::encode_interactions(&[cm("Logging in to internet banking")]),
        "W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2UiLCJkaXNwbGF5VGV4dDIwMCI6IkxvZ2dpbmcgaW4gdG8gaW50ZXJuZXQgYmFua2luZyJ9XQ=="
    );
    assert_eq!(
        t::encode_interactions(&[pin("Log in to mobile banking app")]),
        "W3sidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2MCI6IkxvZyBpbiB0byBtb2JpbGUgYmFua2luZyBhcHAifV0="
    );
    assert_eq!(
        t::decode_interactions("W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2UiLCJkaXNwbGF5VGV4dDIwMCI6IkFwcGx5aW5nIGZvciBtb3J0Z2FnZSwgMTAwIDAwMFx1MjBhYywgMjAteWVhciBwZXJpb2QsIGludGVyZXN0IHJhdGUgMi41JSArIDYgbW9udGggRXVyaWJvciByYXRlIn0seyJ0eXBlIjoiZGlzcGxheVRleHRBbmRQSU4iLCJkaXNwbGF5VGV4dDYwIjoiQXBwbHlpbmcgZm9yIG1vcnRnYWdlLCAxMDAgMDAwXHUyMGFjIn1d", InteractionFlow::DeviceLink).unwrap(),
        vec![
            cm("Applying for mortgage, 100 000€, 20-year period, interest rate 2.5% + 6 month Euribor rate"),
            pin("Applying for mortgage, 100 000€"),
        ]
    );
    assert_eq!(
        t::decode_interactions("W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2VBbmRWZXJpZmljYXRpb25Db2RlQ2hvaWNlIiwiZGlzcGxheVRleHQyMDAiOiJUcmFuc2ZlciAxMDAwXHUyMGFjIHRvIEphbmUgRG9lIEdCMzNCVUtCMjAyMDE1NTU1NTU1NTUifV0=", InteractionFlow::Notification).unwrap(),
        vec![ConfirmationMessageAndVerificationCodeChoice {
            display_text200: "Transfer 1000€ to Jane Doe GB33BUKB20201555555555".into()
        }]
    );
}

/// interactions.txt, "Requirements for interactions object": "each interaction must include a
/// non-empty displayText60 or displayText200"; "It is forbidden to provide both";
/// "It is not allowed to have more than one interaction with the same type value"; "not
/// allowed to list interaction types not meant for the flow"; the table: displayText60 "max
/// 60 chars", displayText200 "max 200 chars"; `confirmationMessageAndVerificationCodeChoice`
/// only in notification flows (not device link, not linked). The library's check, which the
/// server applies (the server test checks the HTTP 400).
#[test]
fn interactions__object_rules() {
    use InteractionFlow::*;
    let dec = |json: &str, flow| t::decode_interactions(&b64(json), flow);
    let ok = [
        (
            r#"[{"type":"displayTextAndPIN","displayText60":"x"}]"#,
            DeviceLink,
        ),
        (
            &*format!(
                r#"[{{"type":"displayTextAndPIN","displayText60":"{}"}}]"#,
                "€".repeat(60)
            ),
            Notification,
        ),
        (
            &*format!(
                r#"[{{"type":"confirmationMessage","displayText200":"{}"}}]"#,
                "x".repeat(200)
            ),
            LinkedNotification,
        ),
        (
            r#"[{"type":"confirmationMessageAndVerificationCodeChoice","displayText200":"x"}]"#,
            Notification,
        ),
    ];
    for (json, flow) in ok {
        assert!(dec(json, flow).is_ok(), "{json} {flow:?}");
    }
    let bad = [
        (r#"[{"type":"displayTextAndPIN"}]"#, Notification, "no text"),
        (
            r#"[{"type":"displayTextAndPIN","displayText60":""}]"#,
            Notification,
            "empty text",
        ),
        (
            r#"[{"type":"confirmationMessage","displayText60":"x","displayText200":"x"}]"#,
            Notification,
            "both texts",
        ),
        (
            r#"[{"type":"displayTextAndPIN","displayText60":"x","displayText200":"x"}]"#,
            Notification,
            "both texts",
        ),
        (
            r#"[{"type":"displayTextAndPIN","displayText60":"a"},{"type":"displayTextAndPIN","displayText60":"b"}]"#,
            Notification,
            "same type twice",
        ),
        (
            r#"[{"type":"confirmationMessageAndVerificationCodeChoice","displayText200":"x"}]"#,
            DeviceLink,
            "VC choice in a device-link flow",
        ),
        (
            r#"[{"type":"confirmationMessageAndVerificationCodeChoice","displayText200":"x"}]"#,
            LinkedNotification,
            "VC choice in a linked flow",
        ),
        (
            &*format!(
                r#"[{{"type":"displayTextAndPIN","displayText60":"{}"}}]"#,
                "x".repeat(61)
            ),
            Notification,
            "61 characters",
        ),
        (
            &*format!(
                r#"[{{"type":"confirmationMessage","displayText200":"{}"}}]"#,
                "x".repeat(201)
            ),
            Notification,
            "201 characters",
        ),
        (r#"[]"#, Notification, "no interaction"),
    ];
    for (json, flow, why) in bad {
        assert!(dec(json, flow).is_err(), "{why}: accepted");
    }
    assert!(
        t::decode_interactions("not base64!", Notification).is_err(),
        "interactions must be Base64"
    );
}

// ================================================================== callback_urls.txt

/// callback_urls.txt: "sessionSecretDigest which is the Base64URL encoded SHA-256 digest of
/// the sessionSecret"; "verify that after applying the SHA-256 hash algorithm to
/// userChallengeVerifier value (as is, without Base64URL decoding), the result equals to the
/// userChallenge"; the example values (secret `B98O…` → `U4CKK…`, verifier `XtPf…` →
/// `GnsW…`), with the library and with `openssl dgst -sha256`.
#[test]
fn callback_urls__spec_example_digest_and_user_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let secret = STANDARD.decode(EX_SECRET).unwrap();
    assert_eq!(acsp::session_secret_digest(&secret), EX_SECRET_DIGEST);
    assert_eq!(
        URL_SAFE_NO_PAD.encode(openssl_digest(dir.path(), "sha256", &secret)),
        EX_SECRET_DIGEST
    );
    assert_eq!(acsp::user_challenge(EX_VERIFIER), EX_USER_CHALLENGE);
    assert_eq!(
        URL_SAFE_NO_PAD.encode(openssl_digest(dir.path(), "sha256", EX_VERIFIER.as_bytes())),
        EX_USER_CHALLENGE
    );
}

/// callback_urls.txt, "Callback URL examples": from the initial callback URL
/// `https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ` the app builds
/// `…&sessionSecretDigest=U4CKK…&userChallengeVerifier=XtPf…` (authentication) and
/// `…&sessionSecretDigest=U4CKK…` (signature and certificate choice), byte for byte
/// (client-core, the phone's library).
#[test]
fn callback_urls__spec_example_callback_urls() {
    use tandem_client_core::callback::CallbackUrl;
    assert_eq!(
        CallbackUrl::build(EX_CALLBACK, EX_SECRET_DIGEST, Some(EX_VERIFIER))
            .unwrap()
            .as_str(),
        "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ&sessionSecretDigest=U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc&userChallengeVerifier=XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c"
    );
    assert_eq!(
        CallbackUrl::build(EX_CALLBACK, EX_SECRET_DIGEST, None)
            .unwrap()
            .as_str(),
        "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ&sessionSecretDigest=U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc"
    );
}

/// callback_urls.txt, the RP backend's checks of the spec's example callback URL with our RP
/// library (`DeviceLinkSession::check_callback`): the URL must be the session's
/// `initialCallbackUrl` plus the app's parameters, "Verify that the SHA-256 digest of the
/// sessionSecret equals to sessionSecretDigest", "verify that after applying the SHA-256 hash
/// algorithm to userChallengeVerifier ... the result equals to the userChallenge"; "If any of
/// these steps fail to verify, deny the authentication or signature attempt".
#[test]
fn callback_urls__rp_library_checks_the_spec_example_callback_url() {
    use client::CallbackError;
    let s = ex_session(Kind::Auth, Instant::now());
    let status = fake_status("ACSP_V2", "Web2App");
    let good = format!(
        "{EX_CALLBACK}&sessionSecretDigest={EX_SECRET_DIGEST}&userChallengeVerifier={EX_VERIFIER}"
    );
    let cb = s.check_callback(&good, &status).unwrap();
    assert_eq!(cb.session_secret_digest, EX_SECRET_DIGEST);
    assert_eq!(cb.user_challenge_verifier.as_deref(), Some(EX_VERIFIER));
    for (url, why) in [
        (
            good.replace("RrKjjT4aggzu27YBddX1bQ", "RrKjjT4aggzu27YBddX1bR"),
            "another session's random parameter",
        ),
        (
            good.replace("sessionSecretDigest=U4CKK", "sessionSecretDigest=U4CKL"),
            "a wrong sessionSecretDigest",
        ),
        (
            good.replace("userChallengeVerifier=XtPf", "userChallengeVerifier=XtPg"),
            "a wrong userChallengeVerifier",
        ),
        (
            format!("{EX_CALLBACK}&sessionSecretDigest={EX_SECRET_DIGEST}"),
            "no userChallengeVerifier",
        ),
        (
            good.replace("https://rp.example.com/", "https://phish.example/"),
            "another site",
        ),
    ] {
        let r: Result<_, CallbackError> = s.check_callback(&url, &status);
        assert!(r.is_err(), "accepted {why}");
    }
    // A signature's callback has the digest only.
    let sign = ex_session(Kind::Sign, Instant::now());
    let status = fake_status("RAW_DIGEST_SIGNATURE", "App2App");
    assert!(
        sign.check_callback(
            &format!("{EX_CALLBACK}&sessionSecretDigest={EX_SECRET_DIGEST}"),
            &status
        )
        .is_ok()
    );
}

/// A COMPLETE/OK session status of `protocol` with `flow`, a certificate that chains to
/// nothing we trust, and the spec's userChallenge.
fn fake_status(protocol: &str, flow: &str) -> SessionStatusResponse {
    let signature = if protocol == "ACSP_V2" {
        json!({"value": "AAAA", "serverRandom": EX_SERVER_RANDOM, "userChallenge": EX_USER_CHALLENGE,
               "flowType": flow, "signatureAlgorithm": "rsassa-pss",
               "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512",
                   "maskGenAlgorithm": {"algorithm": "id-mgf1", "parameters": {"hashAlgorithm": "SHA-512"}},
                   "saltLength": 64, "trailerField": "0xbc"}})
    } else {
        json!({"value": "AAAA", "flowType": flow, "signatureAlgorithm": "sha512WithRSAEncryption"})
    };
    serde_json::from_value(json!({
        "state": "COMPLETE",
        "result": {"endResult": "OK", "documentNumber": "PNOEE-30303039914-MOCK-Q"},
        "signatureProtocol": protocol,
        "signature": signature,
        "cert": {"value": "MIIB", "certificateLevel": "QUALIFIED"},
        "interactionTypeUsed": "confirmationMessage",
    }))
    .unwrap()
}

/// callback_urls.txt, Web2App and App2App: the RP backend "Verify that the SHA-256 digest of
/// the sessionSecret equals to sessionSecretDigest in the callback URL"; "In authentication
/// flows, verify that ... userChallengeVerifier ... equals to the userChallenge"; "If any of
/// these steps fail to verify, deny the authentication or signature attempt".
/// response_verification.txt: "In App2App and Web2App flows, the response verification step
/// must be performed after the user has returned via the callback URL". The library checks
/// the callback values before anything else and refuses a same-device result without them.
#[test]
fn callback_urls__rp_library_checks_the_callback_values() {
    use client::verify::{
        AuthenticationExpectation, CertificateLevel, SameDeviceCallback, SignatureExpectation,
        VerificationStep, verify_authentication, verify_signature,
    };
    let anchors = client::TrustAnchors::new();
    let now = SystemTime::now();
    let callback = |digest: &str, verifier: Option<&str>| SameDeviceCallback {
        session_secret_b64: EX_SECRET.into(),
        session_secret_digest: digest.into(),
        user_challenge_verifier: verifier.map(str::to_owned),
    };
    let auth = |cb: Option<SameDeviceCallback>| AuthenticationExpectation {
        scheme_name: "smart-id".into(),
        relying_party_name: "DEMO".into(),
        brokered_rp_name: None,
        rp_challenge: EX_CHALLENGE.into(),
        interactions: EX_INTERACTIONS.into(),
        initial_callback_url: Some(EX_CALLBACK.into()),
        signature_algorithm: t::SignatureAlgorithm::RsassaPss,
        hash: HashAlgorithm::Sha512,
        certificate_level: CertificateLevel::Qualified,
        allowed_flows: vec![FlowType::Qr, FlowType::Web2App, FlowType::App2App],
        expected_identity: None,
        callback: cb,
    };
    fn fails_at<T>(r: Result<T, client::VerificationError>) -> VerificationStep {
        r.map(|_| ()).unwrap_err().step
    }
    for flow in ["Web2App", "App2App"] {
        let s = fake_status("ACSP_V2", flow);
        let run = |cb| fails_at(verify_authentication(&s, &auth(cb), &anchors, now));
        assert_eq!(
            run(None),
            VerificationStep::SessionSecret,
            "{flow}: no callback"
        );
        assert_eq!(
            run(Some(callback(
                "U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBd",
                Some(EX_VERIFIER)
            ))),
            VerificationStep::SessionSecret,
            "{flow}: wrong sessionSecretDigest"
        );
        assert_eq!(
            run(Some(callback(EX_SECRET_DIGEST, None))),
            VerificationStep::UserChallenge,
            "{flow}: no userChallengeVerifier"
        );
        assert_eq!(
            run(Some(callback(EX_SECRET_DIGEST, Some(EX_USER_CHALLENGE)))),
            VerificationStep::UserChallenge,
            "{flow}: wrong userChallengeVerifier"
        );
        // Both right: the callback steps pass and the certificate (which we do not trust) is
        // what fails next.
        let step = run(Some(callback(EX_SECRET_DIGEST, Some(EX_VERIFIER))));
        assert!(
            !matches!(
                step,
                VerificationStep::SessionResult
                    | VerificationStep::SessionSecret
                    | VerificationStep::UserChallenge
            ),
            "{flow}: {step:?}"
        );
        // Signatures: the digest only.
        let s = fake_status("RAW_DIGEST_SIGNATURE", flow);
        let sign = |cb| SignatureExpectation {
            digest: vec![1; 64],
            signature_algorithm: t::SignatureAlgorithm::Sha512WithRsaEncryption,
            hash: HashAlgorithm::Sha512,
            certificate_level: CertificateLevel::Qualified,
            interactions: EX_INTERACTIONS.into(),
            allowed_flows: vec![FlowType::Web2App, FlowType::App2App],
            expected_identity: None,
            callback: cb,
        };
        let run = |cb| fails_at(verify_signature(&s, &sign(cb), &anchors, now));
        assert_eq!(run(None), VerificationStep::SessionSecret);
        assert_eq!(
            run(Some(callback(EX_USER_CHALLENGE, None))),
            VerificationStep::SessionSecret
        );
        assert!(!matches!(
            run(Some(callback(EX_SECRET_DIGEST, None))),
            VerificationStep::SessionResult | VerificationStep::SessionSecret
        ));
    }
}

// ================================================================== openapi.yml

/// openapi.yml, the request examples of every request body (RSASSA-PSS and PKCS#1 v1.5
/// variants): they parse into the library's request types and pass its validation (the same
/// the server applies).
#[test]
fn openapi__request_examples_are_valid() {
    let common = json!({
        "relyingPartyUUID": "00000000-0000-4000-8000-000000000000",
        "relyingPartyName": "DEMO",
    });
    let with = |extra: Value| {
        let mut v = common.clone();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let challenge =
        "S480uRoCX4pAb1tWqAy8WGl/AWE1RnqaP2y5iamCDhlCyQrMTVa5d8Dh34sZ+UePHXRNKTwz7QTvsIL1ls05AQ==";
    let digest =
        "VC3jDipMw9TgSQrIm3oYuz2t/GciD3Aw2WTpnaGpo+1sdkkRiCnbRz08uqlgU6q1W2/VP6PDxSQlOy5AIxT5Xw==";
    let pss = json!({"digest": digest, "signatureAlgorithm": "rsassa-pss",
                     "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}});
    let pkcs1 = json!({"digest": digest, "signatureAlgorithm": "sha512WithRSAEncryption"});
    let auth = json!({"rpChallenge": challenge, "signatureAlgorithm": "rsassa-pss",
                      "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}});
    let ip = |b: bool| json!({"shareMdClientIpAddress": b});
    let ok = |what: &str, r: Result<(), t::ValidationError>| {
        assert!(r.is_ok(), "{what}: {r:?}");
    };
    let dl_auth: DeviceLinkAuthenticationRequest = serde_json::from_value(with(json!({
        "initialCallbackUrl": EX_CALLBACK, "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2", "signatureProtocolParameters": auth,
        "interactions": EX_INTERACTIONS, "requestProperties": ip(true)})))
    .unwrap();
    ok(
        "DeviceLinkAuthenticationRequestBodyExample",
        dl_auth.validate(),
    );
    for (name, params, share) in [("RSAPSS", &pss, true), ("PKCS1v15", &pkcs1, false)] {
        let dl_sign: DeviceLinkSigningRequest = serde_json::from_value(with(json!({
            "initialCallbackUrl": EX_CALLBACK, "certificateLevel": "QUALIFIED",
            "signatureProtocol": "RAW_DIGEST_SIGNATURE", "signatureProtocolParameters": params,
            "nonce": "d8XkbEnA0WsE0PvBZZoxGnPI4ml9qk", "interactions": EX_INTERACTIONS,
            "requestProperties": ip(share)})))
        .unwrap();
        ok(
            &format!("DeviceLinkSigningRequestBodyExample{name}"),
            dl_sign.validate(),
        );
        let n_sign: NotificationSigningRequest = serde_json::from_value(with(json!({
            "certificateLevel": "QUALIFIED",
            "signatureProtocol": "RAW_DIGEST_SIGNATURE", "signatureProtocolParameters": params,
            "nonce": "d8XkbEnA0WsE0PvBZZoxGnPI4ml9qk", "interactions": EX_INTERACTIONS,
            "requestProperties": ip(share)})))
        .unwrap();
        ok(
            &format!("NotificationSigningRequestBodyExample{name}"),
            n_sign.validate(),
        );
        let linked: NotificationSigningLinkedRequest = serde_json::from_value(with(json!({
            "certificateLevel": "QUALIFIED",
            "signatureProtocol": "RAW_DIGEST_SIGNATURE", "signatureProtocolParameters": params,
            "linkedSessionID": "0aa27573-5ac2-479e-9c69-00343ff8416f",
            "nonce": "d8XkbEnA0WsE0PvBZZoxGnPI4ml9qk", "interactions": EX_INTERACTIONS,
            "requestProperties": ip(share)})))
        .unwrap();
        ok(
            &format!("NotificationSigningLinkedRequestBodyExample{name}"),
            linked.validate(),
        );
    }
    let cert: CertificateChoiceRequest = serde_json::from_value(with(json!({
        "initialCallbackUrl": EX_CALLBACK, "certificateLevel": "QUALIFIED",
        "nonce": "d8XkbEnA0WsE0PvBZZoxGnPI4ml9qk", "requestProperties": ip(true)})))
    .unwrap();
    ok(
        "DeviceLinkCertificateChoiceRequestBodyExample",
        cert.validate(),
    );
    let n_auth: NotificationAuthenticationRequest = serde_json::from_value(with(json!({
        "certificateLevel": "QUALIFIED", "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": auth, "interactions": EX_INTERACTIONS,
        "requestProperties": ip(true), "vcType": "numeric4"})))
    .unwrap();
    ok(
        "NotificationAuthenticationRequestBodyExample",
        n_auth.validate(),
    );
    let n_cert: CertificateChoiceRequest = serde_json::from_value(with(json!({
        "certificateLevel": "QUALIFIED", "nonce": "d8XkbEnA0WsE0PvBZZoxGnPI4ml9qk",
        "requestProperties": ip(true)})))
    .unwrap();
    ok(
        "NotificationCertificateChoiceRequestBodyExample",
        n_cert.validate(),
    );
    let c: SigningCertificateRequest = serde_json::from_value(common.clone()).unwrap();
    ok("SigningCertificateRequestBodyExample", c.validate());
}

/// openapi.yml response examples (values shortened where they are long Base64): every
/// response shape the library reads, including the RAW_DIGEST_SIGNATURE example with
/// SHA3-512, `deviceIpAddress`, `details.interaction`, `DOCUMENT_UNUSABLE` certificates and
/// the problem documents with `errors`, `instance`, `code`, `paramName` and `pointer`.
#[test]
fn openapi__response_examples_parse() {
    let pss = |h: &str| {
        json!({"hashAlgorithm": h, "maskGenAlgorithm": {"algorithm": "id-mgf1",
               "parameters": {"hashAlgorithm": h}}, "saltLength": 64, "trailerField": "0xbc"})
    };
    let cert =
        json!({"value": "MIIFhTCCBG2gAwIBAgIJAOEfPHPNdSQR", "certificateLevel": "QUALIFIED"});
    let ok = json!({"endResult": "OK", "documentNumber": "PNOEE-30001010004-BVFM-Q"});
    let statuses = [
        json!({"state": "RUNNING"}),
        json!({"state": "COMPLETE", "result": ok, "signatureProtocol": "ACSP_V2",
               "signature": {"value": "Vak2Q0NiFnh6", "serverRandom": "+wVP2U/SMKVkVrggDjNTXFV/",
                   "userChallenge": "TLSjYRH2oYw8tW2bq0it0IUb7WIFkCLgF8NTc7-4Zq4", "flowType": "Notification",
                   "signatureAlgorithm": "rsassa-pss", "signatureAlgorithmParameters": pss("SHA-512")},
               "cert": cert, "interactionTypeUsed": "displayTextAndPIN", "deviceIpAddress": "203.0.113.34"}),
        json!({"state": "COMPLETE", "result": ok, "signatureProtocol": "RAW_DIGEST_SIGNATURE",
               "signature": {"value": "HIL63iGfq1ar", "flowType": "Notification",
                   "signatureAlgorithm": "rsassa-pss", "signatureAlgorithmParameters": pss("SHA3-512")},
               "cert": cert, "interactionTypeUsed": "displayTextAndPIN", "deviceIpAddress": "203.0.113.34"}),
        json!({"state": "COMPLETE", "result": ok, "signatureProtocol": "RAW_DIGEST_SIGNATURE",
               "signature": {"value": "HIL63iGfq1ar", "flowType": "Notification",
                   "signatureAlgorithm": "sha512WithRSAEncryption"},
               "cert": cert, "interactionTypeUsed": "displayTextAndPIN", "deviceIpAddress": "203.0.113.34"}),
        json!({"state": "COMPLETE", "result": ok, "signature": {"flowType": "Web2App"}, "cert": cert,
               "interactionTypeUsed": "confirmationMessage", "deviceIpAddress": "203.0.113.34"}),
        json!({"state": "COMPLETE", "result": {"endResult": "USER_REFUSED_INTERACTION",
               "details": {"interaction": "displayTextAndPIN"}}}),
    ];
    for s in statuses {
        let parsed: SessionStatusResponse =
            serde_json::from_value(s.clone()).unwrap_or_else(|e| panic!("{e}: {s}"));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), s, "round trip");
    }
    for end in [
        "OK",
        "USER_REFUSED",
        "TIMEOUT",
        "DOCUMENT_UNUSABLE",
        "WRONG_VC",
        "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP",
        "USER_REFUSED_CERT_CHOICE",
        "USER_REFUSED_INTERACTION",
        "PROTOCOL_FAILURE",
        "EXPECTED_LINKED_SESSION",
        "SERVER_ERROR",
        "ACCOUNT_UNUSABLE",
    ] {
        serde_json::from_value::<SessionStatusResponse>(
            json!({"state": "COMPLETE", "result": {"endResult": end}}),
        )
        .unwrap_or_else(|e| panic!("{end}: {e}"));
    }
    serde_json::from_value::<DeviceLinkSessionResponse>(json!({
        "sessionID": "fa20fd1e-e320-4c68-8315-f6a507a0b4a9", "sessionToken": EX_TOKEN,
        "sessionSecret": EX_SECRET, "deviceLinkBase": EX_BASE}))
    .unwrap();
    serde_json::from_value::<NotificationSigningResponse>(json!({
        "sessionID": "56e1c1d0-dc07-4c71-890b-6200856b8c75",
        "vc": {"type": "numeric4", "value": "4927"}}))
    .unwrap();
    serde_json::from_value::<CertificateResponse>(json!({"state": "OK", "cert": cert})).unwrap();
    serde_json::from_value::<CertificateResponse>(json!({"state": "DOCUMENT_UNUSABLE"})).unwrap();
    for p in [
        json!({"type": "about:blank", "status": 400, "title": "Bad Request",
               "detail": "Invalid request parameters found",
               "errors": [{"detail": "Invalid initialCallbackUrl: The callback URL value is invalid",
                           "paramName": "initialCallbackUrl", "pointer": "/initialCallbackUrl"}]}),
        json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Not Found",
               "instance": "/task-id/tdgx2dj9cfumh8",
               "errors": [{"code": "NO_SUITABLE_ACCOUNT_FOUND",
                           "detail": "No suitable account of requested type found, but user has some other accounts"}]}),
        json!({"type": "about:blank", "title": "Forbidden", "status": 403, "detail": "Forbidden",
               "instance": "/task-id/wCbZHrqH+7vY6YL9",
               "errors": [{"detail": "Relying Party does not have permissions to request the MD client IP address sharing",
                           "paramName": "shareMdClientIpAddress", "pointer": "/requestProperties/shareMdClientIpAddress"}]}),
    ] {
        serde_json::from_value::<Problem>(p.clone()).unwrap_or_else(|e| panic!("{e}: {p}"));
    }
}

// ================================================================== servers: api_details.txt

/// A relying party that may call only from 192.0.2.1 (TEST-NET-1, never our 127.0.0.1).
const WALLED_RP: &str = "00000000-0000-4000-8000-0000000000a1";
/// A relying party with a non-ASCII name.
const UTF8_RP: &str = "00000000-0000-4000-8000-0000000000a2";
const UTF8_NAME: &str = "Pank Öö Ääriväli";
/// A relying party used up by the rate-limit check.
const BUSY_RP: &str = "00000000-0000-4000-8000-0000000000a3";
/// A relying party the operator allowed to request the mobile device's IP address.
const SHARING_RP: &str = "00000000-0000-4000-8000-0000000000a4";
const AUTH_DL_ANON: &str = "/v3/authentication/device-link/anonymous";
const CERT_DL_ANON: &str = "/v3/signature/certificate-choice/device-link/anonymous";
/// MARY's ETSI natural person semantics identifier.
const MARY_ETSI: &str = "PNOEE-30303039914";

fn cert_choice_body(uuid: &str, name: &str) -> Value {
    json!({"relyingPartyUUID": uuid, "relyingPartyName": name, "nonce": random_nonce()})
}

/// api_details.txt, all of it that binds the server, over HTTPS:
/// - "In RP API v3, both HTTP/1.1 and HTTP/2 protocols are supported."
/// - "Normally, all positive responses are returned with HTTP status code 200."
/// - "Error details are provided in RFC9457 format." (400, 401, 404 here; the other codes in
///   `api_details__error_shapes_rate_limit_and_caseless_names`)
/// - "In cases where the user does not have an account, HTTP status code 404 is returned"
/// - "RP API clients are authenticated based on their originating IP-address and
///   relyingPartyUUID protocol parameter combinations. When authentication fails, server
///   responds with HTTP error 401."
/// - Idempotent behaviour: a repeated POST "can" return the existing session; "the caller ...
///   can override the idempotent behaviour ... using an optional nonce"; openapi `Nonce`:
///   1-30 characters; "Providing nonce parameter is not allowed for authentication requests".
/// - "All messages are encoded using UTF-8."
/// - "RP API endpoint authentication": the RP checks "a secure TLS cipher suite" and that the
///   certificate "is valid (... signed by trusted CA ...)"; the server must offer only such
///   suites, and our RP library must refuse a certificate it does not trust.
/// - changes.txt 3.2.2: "An exception is thrown immediately when IP address sharing is
///   requested by the RP, but sharing is forbidden by RP configuration" (openapi 403: "no
///   permission to request MD client IP-address"; `RequestProperties`: "default
///   configuration does not allow the IP sharing").
#[tokio::test(flavor = "multi_thread")]
async fn api_details__http_tls_errors_authentication_idempotency() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    server
        .operator(&[
            "rp-add",
            "--uuid",
            WALLED_RP,
            "--name",
            "Walled Bank",
            "--allow-ip",
            "192.0.2.1",
        ])
        .unwrap();
    server
        .operator(&["rp-add", "--uuid", UTF8_RP, "--name", UTF8_NAME])
        .unwrap();
    let mut c = Checks::new("api_details__http_tls_errors_authentication_idempotency");

    // HTTP versions and status codes.
    let r = post(&server, CERT_DL_ANON, &cert_choice_body(RP_UUID, RP_NAME));
    c.eq("HTTP/1.1 is served", r.status, 200);
    c.check(
        "HTTP status codes: a positive response is 200 with a JSON object",
        r.status == 200
            && r.header("content-type")
                .is_some_and(|v| v.starts_with("application/json"))
            && r.json().is_object(),
        format_args!("{} {:?}", r.status, r.header("content-type")),
    );
    let alpn = tls_handshake(&server, |b| {
        b.set_alpn_protos(b"\x02h2\x08http/1.1").unwrap();
    })
    .map(|(_, _, a)| a.map(|p| String::from_utf8_lossy(&p).to_string()));
    c.check(
        "HTTP/2 is served: TLS ALPN selects h2 when the client offers it",
        matches!(&alpn, Ok(Some(p)) if p == "h2"),
        format_args!("ALPN {alpn:?}"),
    );
    let frame = http2_first_frame(&server);
    c.check(
        "HTTP/2 is served: the server answers the connection preface with a SETTINGS frame",
        frame.as_ref().is_some_and(|f| f[3] == 4),
        format_args!("{frame:?}"),
    );
    // A whole exchange over HTTP/2 as an HTTPS client makes it (ALPN h2 only): a session
    // start gets its 200 answer, an error its problem document.
    let json_type = [("content-type", "application/json")];
    let h2 = send_h2(
        &server,
        "POST",
        CERT_DL_ANON,
        &json_type,
        cert_choice_body(RP_UUID, RP_NAME).to_string().as_bytes(),
    )
    .await;
    c.check(
        "HTTP/2 is served: a session start over TLS with ALPN h2 gets 200 with a sessionID",
        h2.as_ref().is_ok_and(|(alpn, r)| {
            alpn.as_deref() == Some(b"h2".as_slice())
                && r.status == 200
                && r.header("content-type")
                    .is_some_and(|v| v.starts_with("application/json"))
                && r.json()["sessionID"].is_string()
        }),
        format_args!(
            "{:?}",
            h2.as_ref().map(|(alpn, r)| (
                alpn.as_deref().map(String::from_utf8_lossy),
                r.status,
                String::from_utf8_lossy(&r.body).to_string()
            ))
        ),
    );
    let mut unknown_rp = cert_choice_body(RP_UUID, RP_NAME);
    unknown_rp["relyingPartyUUID"] = json!("00000000-0000-4000-8000-00000000beef");
    match send_h2(
        &server,
        "POST",
        CERT_DL_ANON,
        &json_type,
        unknown_rp.to_string().as_bytes(),
    )
    .await
    {
        Ok((_, r)) => c.problem(
            "HTTP/2 is served: an error over HTTP/2 is a problem document (401)",
            &r,
            401,
        ),
        Err(e) => c.check(
            "HTTP/2 is served: an error over HTTP/2 is a problem document (401)",
            false,
            format_args!("{e:#}"),
        ),
    }

    // TLS.
    let hs = tls_handshake(&server, |_| {});
    c.check(
        "RP API endpoint: TLS 1.2 or 1.3 with an AEAD cipher suite",
        matches!(&hs, Ok((v, s, _)) if (v == "TLSv1.2" || v == "TLSv1.3")
            && (s.contains("GCM") || s.contains("CHACHA20"))),
        format_args!("{hs:?}"),
    );
    let hs = tls_handshake(&server, tls_1_1_only);
    c.check(
        "RP API endpoint: a TLS 1.1 handshake is refused",
        hs.is_err(),
        format_args!("{hs:?}"),
    );
    let hs = tls_handshake(&server, tls_weak_suites_only);
    c.check(
        "RP API endpoint: CBC suites without forward secrecy are refused",
        hs.is_err(),
        format_args!("{hs:?}"),
    );
    let trusting = rp_client(&server);
    let untrusting = tandem_rp::client::RpApiClient::new(tandem_rp::client::ClientConfig::new(
        format!("{}/v3", server.rest_url),
    ))
    .unwrap();
    let req: CertificateChoiceRequest =
        serde_json::from_value(cert_choice_body(RP_UUID, RP_NAME)).unwrap();
    let r = untrusting.device_link_certificate_choice(&req).await;
    c.check(
        "RP API endpoint authentication: the RP library refuses a server certificate not signed by a trusted CA",
        matches!(r, Err(tandem_rp::client::Error::Transport { .. })),
        format_args!("{r:?}"),
    );
    let r = trusting.device_link_certificate_choice(&req).await;
    c.check(
        "RP API endpoint authentication: with the server's CA configured the RP library connects",
        r.is_ok(),
        format_args!("{r:?}"),
    );

    // RFC 9457 error details.
    let auth = auth_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Log in to Tandem Test Bank"),
        &random_challenge(),
        "rsassa-pss",
        "SHA-512",
        false,
    );
    let r = send(
        &server,
        "POST",
        AUTH_DL_ANON,
        &[("Content-Type", "application/json")],
        b"{not json",
    )
    .unwrap();
    c.problem(
        "Error details: malformed JSON gets a 400 problem document",
        &r,
        400,
    );
    let mut b = auth.clone();
    b["relyingPartyUUID"] = json!("00000000-0000-4000-8000-00000000dead");
    let r = post(&server, AUTH_DL_ANON, &b);
    c.check(
        "Interface authentication: an unknown relyingPartyUUID gets 401 (or 403 'Relying Party with given UUID does not exist') as a problem document",
        r.problem_error(401).is_none() || r.problem_error(403).is_none(),
        r.problem_error(401).unwrap_or_default(),
    );
    let mut b = auth.clone();
    b["relyingPartyName"] = json!("Other Bank");
    c.problem(
        "Interface authentication: a relyingPartyName not configured for the UUID gets 401",
        &post(&server, AUTH_DL_ANON, &b),
        401,
    );
    let mut b = auth.clone();
    b["relyingPartyUUID"] = json!(WALLED_RP);
    b["relyingPartyName"] = json!("Walled Bank");
    c.problem(
        "Interface authentication: a known UUID from an address it may not use (IP-address and UUID combination wrong) gets 401",
        &post(&server, AUTH_DL_ANON, &b),
        401,
    );
    let n_auth = |rp_challenge: &str| {
        auth_body(
            RP_UUID,
            RP_NAME,
            &pin_interaction("Log in"),
            rp_challenge,
            "rsassa-pss",
            "SHA-512",
            true,
        )
    };
    c.problem(
        "HTTP status codes: a person without an account gets 404 (etsi)",
        &post(
            &server,
            "/v3/authentication/notification/etsi/PNOEE-49912319999",
            &n_auth(&random_challenge()),
        ),
        404,
    );
    c.problem(
        "HTTP status codes: an unknown document number gets 404",
        &post(
            &server,
            "/v3/signature/certificate/PNOEE-49912319999-ZZZZ-Q",
            &json!({"relyingPartyUUID": RP_UUID, "relyingPartyName": RP_NAME}),
        ),
        404,
    );
    c.problem(
        "HTTP status codes: an unknown session gets 404",
        &get(
            &server,
            "/v3/session/6f9619ff-8b86-4011-b42d-00c04fc964ff?timeoutMs=1000",
        ),
        404,
    );

    // Nonce and idempotency.
    let mut b = auth.clone();
    b["nonce"] = json!("abc");
    c.problem(
        "Idempotent behaviour: a nonce in an authentication request gets 400",
        &post(&server, AUTH_DL_ANON, &b),
        400,
    );
    let fixed = json!({"relyingPartyUUID": RP_UUID, "relyingPartyName": RP_NAME,
                       "nonce": "same-nonce-1"});
    let a = post(&server, CERT_DL_ANON, &fixed).json();
    let again = post(&server, CERT_DL_ANON, &fixed).json();
    c.check(
        "Idempotent behaviour: the same certificate-choice request within 15 s returns the existing session (allowed; we do)",
        a["sessionID"].is_string() && a["sessionID"] == again["sessionID"],
        format_args!("{} / {}", a["sessionID"], again["sessionID"]),
    );
    let mut other = fixed.clone();
    other["nonce"] = json!("same-nonce-2");
    let o = post(&server, CERT_DL_ANON, &other).json();
    c.check(
        "Idempotent behaviour: another nonce overrides it (a new session)",
        o["sessionID"].is_string() && o["sessionID"] != a["sessionID"],
        format_args!("{} / {}", a["sessionID"], o["sessionID"]),
    );
    for (nonce, want) in [("", 400), (&*"n".repeat(31), 400), (&*"n".repeat(30), 200)] {
        let mut b = fixed.clone();
        b["nonce"] = json!(nonce);
        let r = post(&server, CERT_DL_ANON, &b);
        if want == 400 {
            c.problem(
                &format!("Nonce: {} characters get 400", nonce.chars().count()),
                &r,
                400,
            );
        } else {
            c.eq("Nonce: 30 characters are accepted", r.status, 200);
        }
    }
    let id = session_id(&a);
    c.problem(
        "Session endpoint: timeoutMs below 1000 gets 400",
        &get(&server, &format!("/v3/session/{id}?timeoutMs=999")),
        400,
    );
    c.problem(
        "Session endpoint: timeoutMs above 120000 gets 400",
        &get(&server, &format!("/v3/session/{id}?timeoutMs=120001")),
        400,
    );

    // UTF-8.
    let r = post(&server, CERT_DL_ANON, &cert_choice_body(UTF8_RP, UTF8_NAME));
    c.eq(
        "UTF-8: a relying party with a non-ASCII name is served",
        r.status,
        200,
    );
    let mut raw = cert_choice_body(RP_UUID, RP_NAME)
        .to_string()
        .replace(RP_NAME, "Tandem Test Bank\u{1}")
        .into_bytes();
    let at = raw.iter().position(|b| *b == 1).unwrap();
    raw[at] = 0xff;
    let r = send(
        &server,
        "POST",
        CERT_DL_ANON,
        &[("Content-Type", "application/json")],
        &raw,
    )
    .unwrap();
    c.problem("UTF-8: a body that is not UTF-8 gets 400", &r, 400);

    // Mobile device IP sharing is not allowed by default.
    let mut b = cert_choice_body(RP_UUID, RP_NAME);
    b["requestProperties"] = json!({"shareMdClientIpAddress": true});
    let r = post(&server, CERT_DL_ANON, &b);
    c.problem(
        "requestProperties: shareMdClientIpAddress from a relying party without that permission gets 403",
        &r,
        403,
    );
    c.eq(
        "requestProperties: the 403 names the property (as ForbiddenErrorResponseWithErrorsFieldJsonExample)",
        r.json()["errors"][0]["pointer"].as_str(),
        Some("/requestProperties/shareMdClientIpAddress"),
    );
    c.eq(
        "requestProperties: shareMdClientIpAddress false needs no permission",
        post(
            &server,
            CERT_DL_ANON,
            &with(
                &b,
                "requestProperties",
                json!({"shareMdClientIpAddress": false}),
            ),
        )
        .status,
        200,
    );
    // The operator's permission: at registration, or granted and withdrawn later.
    server
        .operator(&[
            "rp-add",
            "--uuid",
            SHARING_RP,
            "--name",
            "Sharing Bank",
            "--device-ip-sharing",
        ])
        .unwrap();
    let mut shared = cert_choice_body(SHARING_RP, "Sharing Bank");
    shared["requestProperties"] = json!({"shareMdClientIpAddress": true});
    c.eq(
        "requestProperties: shareMdClientIpAddress from a relying party registered with the permission starts",
        post(&server, CERT_DL_ANON, &shared).status,
        200,
    );
    server
        .operator(&["rp-device-ip", RP_UUID, "allow"])
        .unwrap();
    c.eq(
        "requestProperties: once the operator allows it (rp-device-ip allow), the refused request starts",
        post(&server, CERT_DL_ANON, &b).status,
        200,
    );
    server
        .operator(&["rp-device-ip", RP_UUID, "forbid"])
        .unwrap();
    c.problem(
        "requestProperties: once the operator forbids it again (rp-device-ip forbid), 403 again",
        &post(&server, CERT_DL_ANON, &b),
        403,
    );
    c.finish();
}

/// api_details.txt "Error details are provided in RFC9457 format" for the answers the
/// server's routing and limits give (unknown path 404, wrong method 405, body too large
/// 413, not JSON 415, rate limit 429 with `Retry-After`), and "relyingPartyName request
/// field is case-insensitive and must match one of the names configured for the calling RP"
/// while authcode.txt / signature_protocols.txt use the name "byte for byte with the one
/// submitted"; openapi `InitialCallbackUrl`: `format: uri`, `maxLength: 1800`,
/// `^https://([^|#]+)$`, "If the callback URL contains vertical bar characters | (U+007C),
/// they must be percent encoded", with the 400 example naming `initialCallbackUrl`.
/// Gaps (B) of issue 20 until they land.
#[tokio::test(flavor = "multi_thread")]
async fn api_details__error_shapes_rate_limit_and_caseless_names() {
    let table = rp_api_table(60, false)
        .replace("rate_limit_per_second = 50", "rate_limit_per_second = 1")
        .replace("rate_limit_burst = 100", "rate_limit_burst = 40");
    let server = TestServer::start(ServerOptions {
        rp_api: Some(table),
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    server
        .operator(&["rp-add", "--uuid", BUSY_RP, "--name", "Busy Bank"])
        .unwrap();
    let mut phone = Phone::register(&server, &MARY).await;
    let mut c = Checks::new("api_details__error_shapes_rate_limit_and_caseless_names");
    let json_ct = [("Content-Type", "application/json")];

    for (m, p) in [
        ("GET", "/v3/nothing-here"),
        ("POST", "/v3/authentication/nowhere"),
        ("POST", "/v3/signature/device-link/anonymous"),
        ("GET", "/elsewhere"),
    ] {
        let r = send(&server, m, p, &json_ct, b"{}").unwrap();
        c.problem(
            &format!("Error details: unknown path {m} {p} gets a 404 problem"),
            &r,
            404,
        );
    }
    let r = send(&server, "GET", AUTH_DL_ANON, &[], b"").unwrap();
    c.problem(
        "Error details: GET on a session-start endpoint gets a 405 problem",
        &r,
        405,
    );
    c.check(
        "HTTP (RFC 9110): the 405 answer names the allowed method",
        r.header("allow").is_some_and(|a| a.contains("POST")),
        format_args!("Allow {:?}", r.header("allow")),
    );
    let r = send(
        &server,
        "POST",
        "/v3/session/6f9619ff-8b86-4011-b42d-00c04fc964ff",
        &json_ct,
        b"{}",
    )
    .unwrap();
    c.problem(
        "Error details: POST on the session endpoint gets a 405 problem",
        &r,
        405,
    );
    let mut big = cert_choice_body(RP_UUID, RP_NAME);
    big["padding"] = json!("x".repeat(70 * 1024));
    c.problem(
        "Error details: a body over the size limit gets a 413 problem",
        &post(&server, CERT_DL_ANON, &big),
        413,
    );
    let body = cert_choice_body(RP_UUID, RP_NAME).to_string();
    c.problem(
        "Error details: Content-Type text/plain gets a 415 problem",
        &send(
            &server,
            "POST",
            CERT_DL_ANON,
            &[("Content-Type", "text/plain")],
            body.as_bytes(),
        )
        .unwrap(),
        415,
    );
    c.problem(
        "Error details: no Content-Type gets a 415 problem",
        &send(&server, "POST", CERT_DL_ANON, &[], body.as_bytes()).unwrap(),
        415,
    );
    let r = send(
        &server,
        "POST",
        CERT_DL_ANON,
        &[("Content-Type", "application/json; charset=utf-8")],
        cert_choice_body(RP_UUID, RP_NAME).to_string().as_bytes(),
    )
    .unwrap();
    c.eq(
        "application/json with charset=utf-8 is accepted",
        r.status,
        200,
    );
    let mut limited = None;
    for _ in 0..80 {
        let r = post(
            &server,
            CERT_DL_ANON,
            &cert_choice_body(BUSY_RP, "Busy Bank"),
        );
        if r.status != 200 {
            limited = Some(r);
            break;
        }
    }
    match limited {
        Some(r) => {
            c.problem("Rate limit: the answer is a 429 problem", &r, 429);
            let ra = r.header("retry-after").map(str::to_owned);
            c.check(
                "Rate limit: 429 carries Retry-After (delay-seconds)",
                ra.as_deref()
                    .is_some_and(|v| v.trim().parse::<u64>().is_ok_and(|s| s >= 1)),
                format_args!("Retry-After {ra:?}"),
            );
        }
        None => c.check(
            "Rate limit: a burst beyond the limit gets 429",
            false,
            "none",
        ),
    }

    // Case-insensitive relyingPartyName.
    for name in ["tandem test bank", "TANDEM TEST BANK", "tAnDeM tEsT bAnK"] {
        let r = post(&server, CERT_DL_ANON, &cert_choice_body(RP_UUID, name));
        c.eq(
            &format!("Interface authentication: relyingPartyName is case-insensitive ({name:?})"),
            r.status,
            200,
        );
    }
    for name in ["Tandem Test Bank ", "Tandem Test Bnak"] {
        c.problem(
            &format!("Interface authentication: another name ({name:?}) still gets 401"),
            &post(&server, CERT_DL_ANON, &cert_choice_body(RP_UUID, name)),
            401,
        );
    }
    // "one of the names configured for the calling RP".
    server
        .operator(&["rp-name-add", RP_UUID, "--name", "Tandem Mobile"])
        .unwrap();
    for name in [RP_NAME, "TANDEM MOBILE"] {
        c.eq(
            &format!(
                "Interface authentication: relyingPartyName matches one of the names configured ({name:?})"
            ),
            post(&server, CERT_DL_ANON, &cert_choice_body(RP_UUID, name)).status,
            200,
        );
    }
    c.problem(
        "Interface authentication: another relying party's name gets 401",
        &post(
            &server,
            CERT_DL_ANON,
            &cert_choice_body(RP_UUID, "Busy Bank"),
        ),
        401,
    );
    // The authCode and the ACSP_V2 payload use the name as submitted.
    let sent = "TANDEM TEST BANK";
    let body = auth_body(
        RP_UUID,
        sent,
        &pin_interaction("Log in to Tandem Test Bank"),
        &random_challenge(),
        "rsassa-pss",
        "SHA-512",
        false,
    );
    let r = post(&server, AUTH_DL_ANON, &body);
    c.eq(
        "Interface authentication: a device-link authentication with the name in other case starts",
        r.status,
        200,
    );
    if r.status == 200 {
        let req: DeviceLinkAuthenticationRequest = serde_json::from_value(body).unwrap();
        let resp: DeviceLinkSessionResponse = serde_json::from_value(r.json()).unwrap();
        let s =
            DeviceLinkSession::for_authentication(&resp, Instant::now(), "smart-id", &req).unwrap();
        let claimed = phone.claim(&s.qr_link(Instant::now())).await;
        c.check(
            "authCode: the server checks it over relyingPartyName as submitted (other case)",
            claimed.is_ok(),
            format_args!("{:?}", claimed.as_ref().err()),
        );
        if let Ok(t) = claimed {
            phone.accept(&t).await;
            let st: SessionStatusResponse =
                serde_json::from_value(result(&server, &resp.session_id)).unwrap();
            let exp = client::AuthenticationExpectation::device_link(
                &req,
                "smart-id",
                &client::http::AuthTarget::Anonymous,
            )
            .unwrap();
            let v = client::verify::verify_authentication(
                &st,
                &exp,
                &trust_anchors(&server),
                SystemTime::now(),
            );
            c.check(
                "ACSP_V2: the signed payload carries relyingPartyName as submitted",
                v.is_ok(),
                format_args!("{:?}", v.err()),
            );
        }
    }

    // initialCallbackUrl.
    let with_callback = |url: &str| {
        let mut b = cert_choice_body(RP_UUID, RP_NAME);
        b["initialCallbackUrl"] = json!(url);
        post(&server, CERT_DL_ANON, &b)
    };
    let long = |n: usize| {
        let head = "https://rp.example.com/cb?v=";
        format!("{head}{}", "a".repeat(n - head.len()))
    };
    for url in [
        "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ".to_owned(),
        "https://rp.example.com/cb?x=a%7Cb".to_owned(),
        long(1800),
    ] {
        c.eq(
            &format!(
                "initialCallbackUrl: a valid https URL ({} characters) is accepted",
                url.len()
            ),
            with_callback(&url).status,
            200,
        );
    }
    for (url, why) in [
        ("http://rp.example.com/cb".to_owned(), "not https"),
        ("https://rp.example.com/cb#top".to_owned(), "a fragment"),
        ("https://rp.example.com/cb?x=a|b".to_owned(), "a raw |"),
        (long(1801), "1801 characters"),
        ("https://".to_owned(), "no host"),
        ("https://rp.example.com/a b".to_owned(), "not a URI (space)"),
        (
            "https://rp.exa\u{7f}mple.com/".to_owned(),
            "not a URI (control)",
        ),
    ] {
        let r = with_callback(&url);
        let names_it = r.json()["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|d| d["paramName"] == "initialCallbackUrl"));
        c.check(
            &format!("initialCallbackUrl: {why} gets a 400 problem naming initialCallbackUrl"),
            r.problem_error(400).is_none() && names_it,
            r.problem_error(400)
                .unwrap_or_else(|| String::from_utf8_lossy(&r.body).to_string()),
        );
    }
    c.finish();
}

// ================================================================== servers: device_link_flows.txt

/// The session values of a device-link start, kept by the RP backend.
struct Started {
    id: String,
    json: Value,
    resp: DeviceLinkSessionResponse,
    session: DeviceLinkSession,
}

/// Starts a device-link session (raw HTTP, to see the JSON) and builds the library's session
/// object from the request that was sent.
fn start_device_link(server: &TestServer, path: &str, body: &Value, kind: Kind) -> Started {
    let json = start(server, path, body);
    let at = Instant::now();
    let resp: DeviceLinkSessionResponse = serde_json::from_value(json.clone()).unwrap();
    let session = match kind {
        Kind::Auth => DeviceLinkSession::for_authentication(
            &resp,
            at,
            "smart-id",
            &serde_json::from_value(body.clone()).unwrap(),
        ),
        Kind::Sign => DeviceLinkSession::for_signature(
            &resp,
            at,
            "smart-id",
            &serde_json::from_value(body.clone()).unwrap(),
        ),
        Kind::Cert => DeviceLinkSession::for_certificate_choice(
            &resp,
            at,
            "smart-id",
            &serde_json::from_value(body.clone()).unwrap(),
        ),
    }
    .unwrap();
    Started {
        id: resp.session_id.clone(),
        json,
        resp,
        session,
    }
}

/// A link with a correct authCode over `unprotected` (whatever it contains): the payload as
/// for `payload_type` (QR: no callback URL), keyed with the session secret.
fn relink(
    unprotected: &str,
    ctx: &AuthCodeContext<'_>,
    payload_type: DeviceLinkType,
    secret: &[u8],
) -> String {
    let p = device_link::auth_code_payload(ctx, payload_type, unprotected);
    format!(
        "{unprotected}&authCode={}",
        device_link::auth_code(secret, &p)
    )
}

/// device_link_flows.txt, what the server (with the app) answers:
/// - the start response: `sessionID` (UUID), `sessionToken` (at least 24 characters,
///   `^[a-zA-Z0-9]+$`), `sessionSecret` (Base64, at least 24 characters), `deviceLinkBase`
///   (URI) for every device-link endpoint (authentication anonymous / etsi / document,
///   signature etsi / document, certificate choice);
/// - "Smart-ID app ... makes a request to the Smart-ID backend to check the integrity,
///   validity and freshness of the device link. If the request was non-anonymous, it is
///   verified that the provided personal identifier agrees with the actual user's identity";
/// - "All values in the deviceLink are case-sensitive. The resulting deviceLink must match bit
///   by bit"; "There must not be URL encoding"; "There must not be URL fragment"; "The order
///   of the path parameters ... must be the same"; "All values are required and must be
///   non-empty"; version "only 1.0"; "in QR flows, initialCallbackUrl must be included as an
///   empty field"; "in same-device flows, elapsedSeconds parameter must be missing"; every
///   refused link carries a correct authCode over what it says, so only the rule refuses it;
/// - FlowType: the result's `flowType` is the `deviceLinkType` the user followed.
#[tokio::test(flavor = "multi_thread")]
async fn device_link_flows__server_checks_links_sessions_and_identity() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(3, false)),
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let mut mary = Phone::register(&server, &MARY).await;
    let mut other = Phone::register(&server, &OTHER).await;
    let doc = mary.document();
    let mut c = Checks::new("device_link_flows__server_checks_links_sessions_and_identity");
    let interactions = pin_interaction("Log in to Tandem Test Bank");
    let sign_interactions = pin_interaction("Sign contract 42");
    let with_cb = |mut b: Value| {
        b["initialCallbackUrl"] = json!(format!(
            "https://rp.example.com/callback?value={}",
            random_nonce()
        ));
        b
    };
    let auth = || {
        with_cb(auth_body(
            RP_UUID,
            RP_NAME,
            &interactions,
            &random_challenge(),
            "rsassa-pss",
            "SHA-512",
            false,
        ))
    };
    let sign = || {
        with_cb(sign_body(
            RP_UUID,
            RP_NAME,
            &sign_interactions,
            &[9u8; 64],
            "rsassa-pss",
            "SHA-512",
        ))
    };
    let cert = || with_cb(cert_choice_body(RP_UUID, RP_NAME));

    // (path, body, kind, link type, who may answer, who may not)
    let etsi_auth = format!("/v3/authentication/device-link/etsi/{MARY_ETSI}");
    let doc_auth = format!("/v3/authentication/device-link/document/{doc}");
    let etsi_sign = format!("/v3/signature/device-link/etsi/{MARY_ETSI}");
    let doc_sign = format!("/v3/signature/device-link/document/{doc}");
    let cases: Vec<(&str, Value, Kind, DeviceLinkType, bool)> = vec![
        (AUTH_DL_ANON, auth(), Kind::Auth, DeviceLinkType::Qr, false),
        (
            AUTH_DL_ANON,
            auth(),
            Kind::Auth,
            DeviceLinkType::Web2App,
            false,
        ),
        (
            AUTH_DL_ANON,
            auth(),
            Kind::Auth,
            DeviceLinkType::App2App,
            false,
        ),
        (
            etsi_auth.as_str(),
            auth(),
            Kind::Auth,
            DeviceLinkType::Qr,
            true,
        ),
        (
            doc_auth.as_str(),
            auth(),
            Kind::Auth,
            DeviceLinkType::Web2App,
            true,
        ),
        (
            etsi_sign.as_str(),
            sign(),
            Kind::Sign,
            DeviceLinkType::Qr,
            true,
        ),
        (
            doc_sign.as_str(),
            sign(),
            Kind::Sign,
            DeviceLinkType::App2App,
            true,
        ),
        (CERT_DL_ANON, cert(), Kind::Cert, DeviceLinkType::Qr, false),
        (
            CERT_DL_ANON,
            cert(),
            Kind::Cert,
            DeviceLinkType::Web2App,
            false,
        ),
    ];
    for (path, body, kind, lt, named) in cases {
        let what = format!("{path} ({})", lt.as_str());
        let s = start_device_link(&server, path, &body, kind);
        let j = &s.json;
        c.check(
            &format!("DeviceLinkResponse: sessionID is a UUID [{what}]"),
            j["sessionID"].as_str().is_some_and(is_uuid),
            &j["sessionID"],
        );
        c.check(
            &format!("DeviceLinkResponse: sessionToken has 24+ characters of [a-zA-Z0-9] [{what}]"),
            j["sessionToken"]
                .as_str()
                .is_some_and(|t| t.len() >= 24 && t.bytes().all(|b| b.is_ascii_alphanumeric())),
            &j["sessionToken"],
        );
        c.check(
            &format!("DeviceLinkResponse: sessionSecret is Base64 of 24+ characters [{what}]"),
            j["sessionSecret"]
                .as_str()
                .is_some_and(|t| t.len() >= 24 && is_b64(t) && STANDARD.decode(t).is_ok()),
            "not shown",
        );
        c.eq(
            &format!("DeviceLinkResponse: deviceLinkBase is the configured https URI [{what}]"),
            j["deviceLinkBase"].as_str(),
            Some(DEVICE_LINK_BASE),
        );
        let link = match lt {
            DeviceLinkType::Qr => s.session.qr_link(Instant::now()),
            other => s.session.same_device_link(other).unwrap(),
        };
        if named {
            let r = other.claim(&link).await;
            c.check(
                &format!(
                    "the app's check: a non-anonymous session is refused to another person [{what}]"
                ),
                r.is_err(),
                "claimed by OTHER",
            );
        }
        let phone = if kind == Kind::Cert && lt == DeviceLinkType::Qr {
            &mut other
        } else {
            &mut mary
        };
        let who = phone.document();
        let claimed = phone.claim(&link).await;
        c.check(
            &format!("the app's check: the RP library's link is accepted [{what}]"),
            claimed.is_ok(),
            format_args!("{:?}", claimed.as_ref().err()),
        );
        let Ok(t) = claimed else { continue };
        c.eq(
            &format!("the app is told the flow type it was reached by [{what}]"),
            t.rp_api.as_ref().map(|r| r.flow_type.clone()),
            Some(lt.as_str().to_owned()),
        );
        phone.accept(&t).await;
        let b = result(&server, &s.id);
        c.eq(
            &format!("the session ends OK [{what}]"),
            b["result"]["endResult"].as_str(),
            Some("OK"),
        );
        c.eq(
            &format!("FlowType: signature.flowType is the device link type used [{what}]"),
            b["signature"]["flowType"].as_str(),
            Some(lt.as_str()),
        );
        c.check(
            &format!("result.documentNumber is the answering account's [{what}]"),
            b["result"]["documentNumber"].as_str() == Some(who.as_str()),
            &b["result"]["documentNumber"],
        );
    }

    // Link rules, on one authentication session: each refused link has a correct authCode
    // over what it says.
    let body = auth();
    let s = start_device_link(&server, AUTH_DL_ANON, &body, Kind::Auth);
    let req: DeviceLinkAuthenticationRequest = serde_json::from_value(body).unwrap();
    let secret = STANDARD.decode(&s.resp.session_secret).unwrap();
    let ctx = AuthCodeContext {
        scheme_name: "smart-id",
        binding: SessionBinding::Auth {
            rp_challenge: &req.signature_protocol_parameters.rp_challenge,
        },
        relying_party_name: RP_NAME,
        brokered_rp_name: None,
        interactions: &req.interactions,
        initial_callback_url: req.initial_callback_url.as_deref(),
    };
    let token = &s.resp.session_token;
    // Current elapsedSeconds, so that no link below is refused for its age.
    let now_e = s.session.elapsed_seconds(Instant::now());
    let qr = |e: u64| {
        format!(
            "{DEVICE_LINK_BASE}?deviceLinkType=QR&elapsedSeconds={e}&sessionToken={token}&sessionType=auth&version=1.0&lang=eng"
        )
    };
    let web = format!(
        "{DEVICE_LINK_BASE}?deviceLinkType=Web2App&sessionToken={token}&sessionType=auth&version=1.0&lang=eng"
    );
    let good = relink(&qr(now_e), &ctx, DeviceLinkType::Qr, &secret);
    assert_eq!(
        good,
        s.session.qr_link_at(now_e),
        "the spec's link is the library's"
    );
    let mut flipped = good.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let refused: Vec<(&str, String)> = vec![
        ("integrity: a changed authCode", flipped),
        (
            "integrity: elapsedSeconds changed under the old authCode",
            good.replace(
                &format!("elapsedSeconds={now_e}"),
                &format!("elapsedSeconds={}", now_e + 1),
            ),
        ),
        (
            "case-sensitive: deviceLinkType=qr",
            relink(
                &qr(now_e).replace("deviceLinkType=QR", "deviceLinkType=qr"),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
        (
            "case-sensitive: sessionType=AUTH",
            relink(
                &qr(now_e).replace("sessionType=auth", "sessionType=AUTH"),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
        (
            "sessionType must be the session's: sign on an authentication",
            relink(
                &qr(now_e).replace("sessionType=auth", "sessionType=sign"),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
        (
            "version: only 1.0 (1.1 refused)",
            relink(
                &qr(now_e).replace("version=1.0", "version=1.1"),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
        (
            "no URL encoding (lang=e%6Eg)",
            relink(
                &qr(now_e).replace("lang=eng", "lang=e%6Eg"),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
        ("no URL fragment", format!("{good}#top")),
        (
            "parameter order: sessionToken before deviceLinkType",
            relink(
                &format!(
                    "{DEVICE_LINK_BASE}?sessionToken={token}&deviceLinkType=QR&elapsedSeconds={now_e}&sessionType=auth&version=1.0&lang=eng"
                ),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
        (
            "values non-empty: lang=",
            relink(
                &qr(now_e).replace("lang=eng", "lang="),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
        (
            "QR links carry elapsedSeconds",
            relink(
                &qr(now_e).replace(&format!("&elapsedSeconds={now_e}"), ""),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
        (
            "same-device links carry no elapsedSeconds",
            relink(
                &web.replace("Web2App&", "Web2App&elapsedSeconds=0&"),
                &ctx,
                DeviceLinkType::Web2App,
                &secret,
            ),
        ),
        (
            "QR authCode: initialCallbackUrl is an empty field",
            relink(&qr(now_e), &ctx, DeviceLinkType::Web2App, &secret),
        ),
        (
            "Web2App authCode: initialCallbackUrl is in it",
            relink(&web, &ctx, DeviceLinkType::Qr, &secret),
        ),
        (
            "deviceLinkBase is the one the server handed out",
            relink(
                &qr(now_e).replace(DEVICE_LINK_BASE, "https://phish.example/device-link"),
                &ctx,
                DeviceLinkType::Qr,
                &secret,
            ),
        ),
    ];
    for (why, link) in refused {
        let r = mary.claim(&link).await;
        let e = r
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        c.check(
            &format!("the app's check refuses the link: {why}"),
            r.is_err() && !e.contains("too old") && !e.contains("future"),
            if r.is_ok() { "accepted".to_owned() } else { e },
        );
    }
    c.eq(
        "refused links leave the session running",
        peek(&server, &s.id)["state"].as_str(),
        Some("RUNNING"),
    );
    // Freshness (the server allows 3 s here).
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let r = mary.claim(&s.session.qr_link_at(0)).await;
    c.check(
        "freshness: a QR link older than the server allows is refused",
        r.as_ref().is_err_and(|e| e.to_string().contains("too old")),
        format_args!("{:?}", r.as_ref().err()),
    );
    let r = mary.claim(&s.session.qr_link_at(40)).await;
    c.check(
        "freshness: a QR link from the future is refused",
        r.as_ref().is_err_and(|e| e.to_string().contains("future")),
        format_args!("{:?}", r.as_ref().err()),
    );
    let r = mary.claim(&s.session.qr_link(Instant::now())).await;
    c.check(
        "freshness: the current QR link is accepted",
        r.is_ok(),
        format_args!("{:?}", r.as_ref().err()),
    );
    if let Ok(t) = r {
        mary.accept(&t).await;
        c.eq(
            "the session ends OK after the refused links",
            result(&server, &s.id)["result"]["endResult"].as_str(),
            Some("OK"),
        );
    }
    c.finish();
}

// ================================================================== servers: notification_based_flows.txt, overview

/// The authentication VC computed here from the rpChallenge bytes (notification_based_flows).
fn expected_auth_vc(rp_challenge_b64: &str) -> String {
    let h = Sha256::digest(STANDARD.decode(rp_challenge_b64).unwrap());
    format!("{:04}", u16::from_be_bytes([h[30], h[31]]) % 10000)
}

const VC_CHOICE: &str = r#"[{"type":"confirmationMessageAndVerificationCodeChoice","displayText200":"Log in to Tandem Test Bank from a new computer?"}]"#;

/// notification_based_flows.txt and overview_of_api_endpoints.txt on what the server and the
/// app do:
/// - authentication: the app shows the VC the RP computes from the rpChallenge; the start
///   answer is `{sessionID}` only (openapi `NotificationAuthenticationResponse`);
/// - "the RP can request the Smart-ID app to display three VCs (one correct code and two
///   random codes) ... In case the user doesn't choose the correct code, the Smart-ID app
///   aborts the request" (`WRONG_VC`);
/// - signature: "verification codes (VC) are not generated by RP based on the DTBS ... but are
///   returned from the server"; "Signing flows: VC is randomly generated" (changes.txt); the
///   answer carries `vc` {`type`: `numeric4`, `value`: `^[0-9]{4}$`}, which the app shows;
/// - certificate choice by notification: `{sessionID}`, the result carries the signing
///   certificate; "USER_REFUSED_CERT_CHOICE - user ... pressed Cancel on device choice screen";
/// - linked signing: "RP must call the notification based linked signature session endpoint
///   and provide the mandatory linkedSessionID parameter"; "Notification based
///   certificate-choice cannot be connected to notification based linked signature session
///   endpoint with linkedSessionID"; `confirmationMessageAndVerificationCodeChoice` "is
///   forbidden for this endpoint"; the answer is `{sessionID}` (no VC is shown).
#[tokio::test(flavor = "multi_thread")]
async fn notification_based_flows__codes_choices_certificate_choice_and_linking() {
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let mut mary = Phone::register(&server, &MARY).await;
    let doc = mary.document();
    let mut c =
        Checks::new("notification_based_flows__codes_choices_certificate_choice_and_linking");
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };

    // Authentication: the code is the RP's.
    let ch = random_challenge();
    let body = auth_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Log in to Tandem Test Bank"),
        &ch,
        "rsassa-pss",
        "SHA-512",
        true,
    );
    let v = start(
        &server,
        &format!("/v3/authentication/notification/document/{doc}"),
        &body,
    );
    c.eq(
        "NotificationAuthenticationResponse: sessionID only",
        keys(&v),
        vec!["sessionID".to_owned()],
    );
    let id = session_id(&v);
    let t = mary.pending(&id).await;
    let p = dev::prompt(&mary.state, &t).unwrap();
    c.eq(
        "Verification codes for authentication: the app shows integer(SHA-256(rpChallenge)[-2:]) mod 10000",
        p.verification_code.clone(),
        expected_auth_vc(&ch),
    );
    c.check(
        "one code unless the choice is requested",
        p.vc_choices.is_empty(),
        format_args!("{:?}", p.vc_choices),
    );
    mary.accept(&t).await;
    c.eq(
        "notification authentication by document ends OK",
        result(&server, &id)["result"]["endResult"].as_str(),
        Some("OK"),
    );

    // Three codes, a wrong pick.
    let ch = random_challenge();
    let body = auth_body(
        RP_UUID,
        RP_NAME,
        &b64(VC_CHOICE),
        &ch,
        "rsassa-pss",
        "SHA-256",
        true,
    );
    let id = session_id(&start(
        &server,
        &format!("/v3/authentication/notification/etsi/{MARY_ETSI}"),
        &body,
    ));
    let t = mary.pending(&id).await;
    let p = dev::prompt(&mary.state, &t).unwrap();
    let want = expected_auth_vc(&ch);
    let mut distinct = p.vc_choices.clone();
    distinct.sort();
    distinct.dedup();
    c.check(
        "VC choice: the app shows three different codes, one of them the RP's",
        p.vc_choices.len() == 3 && distinct.len() == 3 && p.vc_choices.contains(&want),
        format_args!("{:?} (RP's {want})", p.vc_choices),
    );
    let wrong = p.vc_choices.iter().find(|x| **x != want).unwrap().clone();
    let r = dev::confirm(
        &mary.client,
        &mut mary.state,
        &t,
        &tandem_client_core::pin::Pin::new(PIN1).unwrap(),
        Some(&wrong),
    )
    .await
    .unwrap();
    c.eq(
        "VC choice: the app tells a wrong pick",
        r.outcome,
        pb::ConfirmOutcome::WrongVc as i32,
    );
    c.eq(
        "VC choice: a wrong pick aborts the session with WRONG_VC",
        result(&server, &id)["result"]["endResult"].as_str(),
        Some("WRONG_VC"),
    );

    // Signature: the server's random code.
    let digest = Sha256::digest(b"contract 42").to_vec();
    let body = sign_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Sign contract 42"),
        &digest,
        "rsassa-pss",
        "SHA-256",
    );
    let v = start(
        &server,
        &format!("/v3/signature/notification/document/{doc}"),
        &body,
    );
    c.eq(
        "NotificationSigningResponse: sessionID and vc",
        keys(&v),
        vec!["sessionID".to_owned(), "vc".to_owned()],
    );
    c.eq(
        "NotificationSigningResponse: vc.type is numeric4",
        v["vc"]["type"].as_str(),
        Some("numeric4"),
    );
    let code = v["vc"]["value"].as_str().unwrap_or_default().to_owned();
    c.check(
        "NotificationSigningResponse: vc.value matches ^[0-9]{4}$",
        code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()),
        &code,
    );
    let id = session_id(&v);
    let t = mary.pending(&id).await;
    c.eq(
        "Verification codes for signature requests: the app shows the code the server returned",
        dev::prompt(&mary.state, &t).unwrap().verification_code,
        code.clone(),
    );
    mary.accept(&t).await;
    c.eq(
        "notification signature by document ends OK",
        result(&server, &id)["result"]["endResult"].as_str(),
        Some("OK"),
    );
    let mut codes = vec![code];
    for _ in 0..4 {
        let v = start(
            &server,
            &format!("/v3/signature/notification/document/{doc}"),
            &sign_body(
                RP_UUID,
                RP_NAME,
                &pin_interaction("Sign contract 42"),
                &digest,
                "rsassa-pss",
                "SHA-256",
            ),
        );
        codes.push(v["vc"]["value"].as_str().unwrap_or_default().to_owned());
        let t = mary.pending(&session_id(&v)).await;
        dev::refuse(&mary.client, &mary.state, &t.transaction_id)
            .await
            .unwrap();
    }
    codes.dedup();
    c.check(
        "Signing flows: the VC is random (the same digest five times does not give one code)",
        codes.len() > 1,
        format_args!("{codes:?}"),
    );
    let v = start(
        &server,
        &format!("/v3/signature/notification/etsi/{MARY_ETSI}"),
        &sign_body(
            RP_UUID,
            RP_NAME,
            &b64(VC_CHOICE),
            &digest,
            "rsassa-pss",
            "SHA-256",
        ),
    );
    let t = mary.pending(&session_id(&v)).await;
    let p = dev::prompt(&mary.state, &t).unwrap();
    c.check(
        "VC choice in signing: three codes, one of them the returned vc",
        p.vc_choices.len() == 3
            && v["vc"]["value"]
                .as_str()
                .is_some_and(|x| p.vc_choices.iter().any(|y| y == x)),
        format_args!("{:?} / {}", p.vc_choices, v["vc"]),
    );
    mary.accept(&t).await;

    // Certificate choice by notification.
    let v = start(
        &server,
        &format!("/v3/signature/certificate-choice/notification/etsi/{MARY_ETSI}"),
        &cert_choice_body(RP_UUID, RP_NAME),
    );
    c.eq(
        "NotificationCertificateChoiceResponse: sessionID only",
        keys(&v),
        vec!["sessionID".to_owned()],
    );
    let n_cert = session_id(&v);
    let t = mary.pending(&n_cert).await;
    mary.accept(&t).await;
    let b = result(&server, &n_cert);
    c.eq(
        "certificate choice: OK",
        b["result"]["endResult"].as_str(),
        Some("OK"),
    );
    c.eq(
        "certificate choice: the result carries the account's signing certificate",
        b["cert"]["value"]
            .as_str()
            .and_then(|x| STANDARD.decode(x).ok()),
        Some(mary.certificate(KeyType::Sign)),
    );
    c.eq(
        "certificate choice: signature holds the flow type only (CertificateChoiceSignature)",
        b["signature"].clone(),
        json!({"flowType": "Notification"}),
    );
    c.eq(
        "certificate choice: documentNumber is the account's",
        b["result"]["documentNumber"].as_str(),
        Some(doc.as_str()),
    );
    let v = start(
        &server,
        &format!("/v3/signature/certificate-choice/notification/etsi/{MARY_ETSI}"),
        &cert_choice_body(RP_UUID, RP_NAME),
    );
    let id = session_id(&v);
    mary.pending(&id).await;
    dev::refuse_with(
        &mary.client,
        &mary.state,
        &id,
        pb::RefuseReason::CertChoice,
        "",
    )
    .await
    .unwrap();
    c.eq(
        "USER_REFUSED_CERT_CHOICE: a cancelled certificate choice",
        result(&server, &id)["result"]["endResult"].as_str(),
        Some("USER_REFUSED_CERT_CHOICE"),
    );

    // Linked signing after a device-link certificate choice.
    let s = start_device_link(
        &server,
        CERT_DL_ANON,
        &cert_choice_body(RP_UUID, RP_NAME),
        Kind::Cert,
    );
    let t = mary
        .claim(&s.session.qr_link(Instant::now()))
        .await
        .unwrap();
    mary.accept(&t).await;
    c.eq(
        "device-link certificate choice: OK",
        result(&server, &s.id)["result"]["endResult"].as_str(),
        Some("OK"),
    );
    let linked_path = format!("/v3/signature/notification/linked/{doc}");
    let linked = |session: Option<&str>, interactions: &str| {
        let mut b = sign_body(
            RP_UUID,
            RP_NAME,
            interactions,
            &digest,
            "rsassa-pss",
            "SHA-256",
        );
        if let Some(id) = session {
            b["linkedSessionID"] = json!(id);
        }
        b
    };
    let pin = pin_interaction("Sign contract 42");
    c.problem(
        "linked signing: linkedSessionID is mandatory",
        &post(&server, &linked_path, &linked(None, &pin)),
        400,
    );
    c.problem(
        "linked signing: a linkedSessionID that names no certificate choice gets 400",
        &post(
            &server,
            &linked_path,
            &linked(Some("6f9619ff-8b86-4011-b42d-00c04fc964ff"), &pin),
        ),
        400,
    );
    c.problem(
        "linked signing: a notification certificate choice cannot be linked",
        &post(&server, &linked_path, &linked(Some(&n_cert), &pin)),
        400,
    );
    c.problem(
        "linked signing: confirmationMessageAndVerificationCodeChoice is forbidden",
        &post(&server, &linked_path, &linked(Some(&s.id), &b64(VC_CHOICE))),
        400,
    );
    let r = post(&server, &linked_path, &linked(Some(&s.id), &pin));
    c.eq(
        "linked signing after a device-link certificate choice starts",
        r.status,
        200,
    );
    if r.status == 200 {
        let v = r.json();
        c.eq(
            "NotificationSigningLinkedResponse: sessionID only (no VC in the linked flow)",
            keys(&v),
            vec!["sessionID".to_owned()],
        );
        let id = session_id(&v);
        let t = mary.pending(&id).await;
        c.eq(
            "linked signing: the app knows the certificate choice it follows",
            dev::prompt(&mary.state, &t).unwrap().linked_session_id,
            Some(s.id.clone()),
        );
        mary.accept(&t).await;
        let b = result(&server, &id);
        c.check(
            "linked signing ends OK with a signature",
            b["result"]["endResult"] == "OK" && b["signature"]["value"].is_string(),
            &b,
        );
    }
    c.finish();
}

// ================================================================== servers: signature_protocols.txt

/// The RSASSA-PSS parameters the response must carry for `hash` (openapi
/// `SignatureAlgorithmParametersInResponse`: MGF1 "defined to be the same value as the
/// hashAlgorithm", saltLength "equal to the octet length of the hash value", trailerField
/// `0xbc`).
fn pss_params(hash: &str) -> Value {
    json!({"hashAlgorithm": hash,
           "maskGenAlgorithm": {"algorithm": "id-mgf1", "parameters": {"hashAlgorithm": hash}},
           "saltLength": hash_len(hash), "trailerField": "0xbc"})
}

fn hash_len(hash: &str) -> usize {
    match hash.rsplit('-').next().unwrap() {
        "256" => 32,
        "384" => 48,
        _ => 64,
    }
}

/// One notification authentication with `alg`/`hash`, confirmed; returns the request's
/// challenge and interactions and the result.
async fn authenticate(
    server: &TestServer,
    phone: &mut Phone,
    alg: &str,
    hash: &str,
) -> (String, String, Value) {
    let ch = random_challenge();
    let inter = pin_interaction(&format!("Log in ({alg} {hash})"));
    let body = auth_body(RP_UUID, RP_NAME, &inter, &ch, alg, hash, true);
    let r = post(
        server,
        &format!(
            "/v3/authentication/notification/document/{}",
            phone.document()
        ),
        &body,
    );
    if r.status != 200 {
        return (
            ch,
            inter,
            json!({"startStatus": r.status, "body": r.json()}),
        );
    }
    let id = session_id(&r.json());
    let t = phone.pending(&id).await;
    phone.accept(&t).await;
    (ch, inter, result(server, &id))
}

/// One notification signature over `data` (digest with `hash`), confirmed.
async fn sign_data(
    server: &TestServer,
    phone: &mut Phone,
    dir: &std::path::Path,
    data: &[u8],
    alg: &str,
    hash: &str,
) -> Value {
    let digest = openssl_digest(dir, &openssl_hash(hash), data);
    let body = sign_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Sign contract 42"),
        &digest,
        alg,
        hash,
    );
    let r = post(
        server,
        &format!("/v3/signature/notification/document/{}", phone.document()),
        &body,
    );
    if r.status != 200 {
        return json!({"startStatus": r.status, "body": r.json()});
    }
    let id = session_id(&r.json());
    let t = phone.pending(&id).await;
    phone.accept(&t).await;
    result(server, &id)
}

fn decoded(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .unwrap_or_default()
}

/// Checks one ACSP_V2 result with OpenSSL over the payload rebuilt from the spec's formula.
#[allow(clippy::too_many_arguments)]
fn check_acsp(
    c: &mut Checks,
    dir: &std::path::Path,
    what: &str,
    b: &Value,
    rp_challenge: &str,
    interactions: &str,
    callback: &str,
    hash: &str,
    pss: bool,
) {
    let s = &b["signature"];
    c.eq(
        &format!("{what}: signatureProtocol ACSP_V2"),
        b["signatureProtocol"].as_str(),
        Some("ACSP_V2"),
    );
    if pss {
        c.eq(
            &format!(
                "{what}: signatureAlgorithmParameters (MGF1 same hash, salt = hash length, 0xbc)"
            ),
            s["signatureAlgorithmParameters"].clone(),
            pss_params(hash),
        );
    }
    let payload = acsp_payload(
        s["serverRandom"].as_str().unwrap_or_default(),
        rp_challenge,
        s["userChallenge"].as_str().unwrap_or_default(),
        RP_NAME,
        "",
        interactions,
        b["interactionTypeUsed"].as_str().unwrap_or_default(),
        callback,
        s["flowType"].as_str().unwrap_or_default(),
    );
    let r = openssl_verify_signature(
        dir,
        &decoded(&b["cert"]["value"]),
        hash,
        pss.then(|| hash_len(hash)),
        payload.as_bytes(),
        &decoded(&s["value"]),
    );
    c.check(
        &format!(
            "{what}: the signature verifies over HASH(ACSP_V2 payload) (openssl dgst -verify)"
        ),
        r.is_ok(),
        format_args!("{r:?}; result {b}"),
    );
}

/// signature_protocols.txt and openapi.yml `SignatureAlgorithm` / `HashAlgorithm` on real
/// signatures, each verified with `openssl dgst -verify`:
/// - ACSP_V2 with RSASSA-PSS and SHA-256/384/512 and with (legacy) PKCS#1 v1.5: "To verify
///   the signature.value the RP must first reconstruct its input digest ... over the
///   ACSP_V2_payload"; empty callback field for QR and notification flows;
/// - RAW_DIGEST_SIGNATURE: "The signature is directly generated on the digest value and the
///   verification must be done using the data-to-be-signed", RSASSA-PSS and PKCS#1 v1.5
///   (restored as a legacy option in 3.2.1), each SHA-2 hash;
/// - response parameters: MGF1 hash = hash, saltLength = hash length, trailerField `0xbc`;
///   `serverRandom` "of length greater than 18 bytes", Base64, 24+ characters, unique;
///   `userChallenge` Base64URL of 43 characters;
/// - "If a request is made with rsassa-pss, then the signatureAlgorithmParameters must be
///   present in the request body"; "One of the supported hash algorithms must be used" (a
///   digest whose length fits no hash, or not the named one, is refused).
#[tokio::test(flavor = "multi_thread")]
async fn signature_protocols__signatures_verify_with_openssl() {
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let mut mary = Phone::register(&server, &MARY).await;
    let dir = server.tmp.path().join("openssl");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Checks::new("signature_protocols__signatures_verify_with_openssl");
    let mut randoms = Vec::new();
    let data = b"Contract 42: Tandem Test Bank and MARY TESTNUMBER agree.\n".repeat(8);
    for hash in ["SHA-256", "SHA-384", "SHA-512"] {
        let (ch, inter, b) = authenticate(&server, &mut mary, "rsassa-pss", hash).await;
        let what = format!("ACSP_V2 RSASSA-PSS {hash}");
        check_acsp(&mut c, &dir, &what, &b, &ch, &inter, "", hash, true);
        c.eq(
            &format!("{what}: the certificate is the account's AUTH certificate"),
            decoded(&b["cert"]["value"]),
            mary.certificate(KeyType::Auth),
        );
        randoms.push(
            b["signature"]["serverRandom"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        let uc = b["signature"]["userChallenge"].as_str().unwrap_or_default();
        c.check(
            &format!("{what}: userChallenge is Base64URL of 43 characters"),
            uc.len() == 43 && is_b64url(uc),
            uc,
        );
        for alg in [
            "rsassa-pss".to_owned(),
            format!("sha{}WithRSAEncryption", &hash[4..]),
        ] {
            let pss = alg == "rsassa-pss";
            let b = sign_data(&server, &mut mary, &dir, &data, &alg, hash).await;
            let what = format!("RAW_DIGEST_SIGNATURE {alg} {hash}");
            c.eq(
                &format!("{what}: signatureProtocol"),
                b["signatureProtocol"].as_str(),
                Some("RAW_DIGEST_SIGNATURE"),
            );
            c.eq(
                &format!("{what}: signatureAlgorithm as requested"),
                b["signature"]["signatureAlgorithm"].as_str(),
                Some(alg.as_str()),
            );
            if pss {
                c.eq(
                    &format!("{what}: signatureAlgorithmParameters"),
                    b["signature"]["signatureAlgorithmParameters"].clone(),
                    pss_params(hash),
                );
            }
            c.eq(
                &format!("{what}: the certificate is the account's SIGN certificate"),
                decoded(&b["cert"]["value"]),
                mary.certificate(KeyType::Sign),
            );
            let r = openssl_verify_signature(
                &dir,
                &decoded(&b["cert"]["value"]),
                hash,
                pss.then(|| hash_len(hash)),
                &data,
                &decoded(&b["signature"]["value"]),
            );
            c.check(
                &format!("{what}: the signature verifies over the data-to-be-signed (openssl)"),
                r.is_ok(),
                format_args!("{r:?}; result {b}"),
            );
        }
    }
    let (ch, inter, b) =
        authenticate(&server, &mut mary, "sha256WithRSAEncryption", "SHA-256").await;
    check_acsp(
        &mut c,
        &dir,
        "ACSP_V2 PKCS#1 v1.5 SHA-256",
        &b,
        &ch,
        &inter,
        "",
        "SHA-256",
        false,
    );
    randoms.push(
        b["signature"]["serverRandom"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );

    // A QR authentication of a session with a callback URL: the payload's callback field is
    // empty.
    let inter = pin_interaction("Log in to Tandem Test Bank");
    let ch = random_challenge();
    let mut body = auth_body(
        RP_UUID,
        RP_NAME,
        &inter,
        &ch,
        "rsassa-pss",
        "SHA-384",
        false,
    );
    body["initialCallbackUrl"] = json!("https://rp.example.com/callback?value=q1");
    let s = start_device_link(&server, AUTH_DL_ANON, &body, Kind::Auth);
    let t = mary
        .claim(&s.session.qr_link(Instant::now()))
        .await
        .unwrap();
    mary.accept(&t).await;
    let b = result(&server, &s.id);
    check_acsp(
        &mut c,
        &dir,
        "ACSP_V2 QR flow of a session with initialCallbackUrl (empty callback field)",
        &b,
        &ch,
        &inter,
        "",
        "SHA-384",
        true,
    );
    randoms.push(
        b["signature"]["serverRandom"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );

    for r in &randoms {
        c.check(
            "serverRandom: Base64, 24+ characters, more than 18 bytes, canonical encoding",
            r.len() >= 24
                && is_b64(r)
                && STANDARD
                    .decode(r)
                    .is_ok_and(|b| b.len() > 18 && STANDARD.encode(&b) == *r),
            r,
        );
    }
    let mut unique = randoms.clone();
    unique.sort();
    unique.dedup();
    c.eq(
        "serverRandom: a new value for every session",
        unique.len(),
        randoms.len(),
    );

    // Requests the protocols refuse.
    let path = format!("/v3/signature/notification/document/{}", mary.document());
    let mut b = sign_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Sign"),
        &[1u8; 64],
        "rsassa-pss",
        "SHA-512",
    );
    b["signatureProtocolParameters"]
        .as_object_mut()
        .unwrap()
        .remove("signatureAlgorithmParameters");
    c.problem(
        "rsassa-pss without signatureAlgorithmParameters gets 400",
        &post(&server, &path, &b),
        400,
    );
    c.problem(
        "RAW_DIGEST_SIGNATURE: a 32-byte digest named SHA-512 gets 400",
        &post(
            &server,
            &path,
            &sign_body(
                RP_UUID,
                RP_NAME,
                &pin_interaction("Sign"),
                &[1u8; 32],
                "rsassa-pss",
                "SHA-512",
            ),
        ),
        400,
    );
    c.finish();
}

/// openapi.yml `HashAlgorithm` and `MGF1HashAlgorithm` list SHA3-256, SHA3-384 and SHA3-512
/// for the ACSP_V2 digest, the RP's digest and RSASSA-PSS's MGF1, and the
/// `RawDigestSignatureResponseExampleRSAPSS` uses SHA3-512 (changes.txt 3.1: "support for
/// SHA-3 hash algorithms ... with RSASSA-PSS"). Authentications and signatures with each,
/// verified by `openssl dgst -sha3-*` and by our RP library. Gap (A) of issue 20 until SHA-3
/// lands.
#[tokio::test(flavor = "multi_thread")]
async fn signature_protocols__sha3_authentication_and_signing() {
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let mut mary = Phone::register(&server, &MARY).await;
    let dir = server.tmp.path().join("openssl");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Checks::new("signature_protocols__sha3_authentication_and_signing");
    let data = b"Contract 43, signed with SHA-3.\n".repeat(8);
    let anchors = trust_anchors(&server);
    let user = client::UserRef::Document(mary.document());
    for hash in ["SHA3-256", "SHA3-384", "SHA3-512"] {
        let (ch, inter, b) = authenticate(&server, &mut mary, "rsassa-pss", hash).await;
        let what = format!("ACSP_V2 RSASSA-PSS {hash}");
        c.check(
            &format!("{what}: accepted and OK"),
            b["result"]["endResult"] == "OK",
            &b,
        );
        check_acsp(&mut c, &dir, &what, &b, &ch, &inter, "", hash, true);
        if b["result"]["endResult"] == "OK" {
            let req: NotificationAuthenticationRequest = serde_json::from_value(auth_body(
                RP_UUID,
                RP_NAME,
                &inter,
                &ch,
                "rsassa-pss",
                hash,
                true,
            ))
            .unwrap();
            let exp =
                client::AuthenticationExpectation::notification(&req, "smart-id", &user).unwrap();
            let v = client::verify::verify_authentication(
                &serde_json::from_value(b.clone()).unwrap(),
                &exp,
                &anchors,
                SystemTime::now(),
            );
            c.check(
                &format!("{what}: our RP library verifies it"),
                v.is_ok(),
                format_args!("{:?}", v.err()),
            );
        }
        let b = sign_data(&server, &mut mary, &dir, &data, "rsassa-pss", hash).await;
        let what = format!("RAW_DIGEST_SIGNATURE RSASSA-PSS {hash}");
        c.check(
            &format!("{what}: accepted and OK"),
            b["result"]["endResult"] == "OK",
            &b,
        );
        c.eq(
            &format!("{what}: signatureAlgorithmParameters with MGF1-{hash}"),
            b["signature"]["signatureAlgorithmParameters"].clone(),
            pss_params(hash),
        );
        let r = openssl_verify_signature(
            &dir,
            &decoded(&b["cert"]["value"]),
            hash,
            Some(hash_len(hash)),
            &data,
            &decoded(&b["signature"]["value"]),
        );
        c.check(
            &format!("{what}: the signature verifies over the data (openssl)"),
            r.is_ok(),
            format_args!("{r:?}"),
        );
        if b["result"]["endResult"] == "OK" {
            let digest = openssl_digest(&dir, &openssl_hash(hash), &data);
            let req: NotificationSigningRequest = serde_json::from_value(sign_body(
                RP_UUID,
                RP_NAME,
                &pin_interaction("Sign contract 42"),
                &digest,
                "rsassa-pss",
                hash,
            ))
            .unwrap();
            let exp = client::SignatureExpectation::notification(&req, &user).unwrap();
            let v = client::verify::verify_signature(
                &serde_json::from_value(b.clone()).unwrap(),
                &exp,
                &anchors,
                SystemTime::now(),
            );
            c.check(
                &format!("{what}: our RP library verifies it"),
                v.is_ok(),
                format_args!("{:?}", v.err()),
            );
        }
    }
    c.finish();
}

// ================================================================== servers: interactions.txt

/// interactions.txt on the wire and on the phone:
/// - "Failing to meet the first 4 requirements above will result in an error (HTTP 400 Bad
///   Request)": text missing or empty, both texts, a type twice, a type not meant for the
///   flow (the VC choice in device-link and linked flows); the table's 60/200 character
///   limits; openapi: `interactions` is Base64 (`^[a-zA-Z0-9+/]+={0,2}$`);
/// - "The first interaction that is supported by a specific app installation will be used";
///   "The interaction that was used is always reported back to RP with
///   interactionTypeUsed"; "If an app cannot support any interaction requested then the
///   session is cancelled with reason code REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP";
///   `USER_REFUSED_INTERACTION` holds `details.interaction`;
/// - "the Base64-encoded interactions object generated during session initiation must be
///   stored and reused ... ACSP_V2 digest calculation": the server hashes the Base64 string as
///   sent (here a non-minified JSON), so the RP's signature check with that string holds.
#[tokio::test(flavor = "multi_thread")]
async fn interactions__server_rules_and_interaction_used() {
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let mut mary = Phone::register(&server, &MARY).await;
    let doc = mary.document();
    let mut c = Checks::new("interactions__server_rules_and_interaction_used");
    let n_auth = format!("/v3/authentication/notification/document/{doc}");
    let n_body = |inter: &str| {
        auth_body(
            RP_UUID,
            RP_NAME,
            inter,
            &random_challenge(),
            "rsassa-pss",
            "SHA-256",
            true,
        )
    };
    let dl_body = |inter: &str| {
        auth_body(
            RP_UUID,
            RP_NAME,
            inter,
            &random_challenge(),
            "rsassa-pss",
            "SHA-256",
            false,
        )
    };
    let names_interactions = |r: &Reply| {
        r.json()["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|d| d["paramName"] == "interactions"))
    };
    let x = |n: usize| "x".repeat(n);
    let bad: Vec<(String, &str)> = vec![
        (r#"[{"type":"displayTextAndPIN"}]"#.into(), "no displayText60"),
        (r#"[{"type":"confirmationMessage","displayText200":""}]"#.into(), "empty displayText200"),
        (
            r#"[{"type":"confirmationMessage","displayText60":"a","displayText200":"a"}]"#.into(),
            "both displayText60 and displayText200",
        ),
        (
            r#"[{"type":"confirmationMessage","displayText200":"a"},{"type":"confirmationMessage","displayText200":"b"}]"#.into(),
            "the same type twice",
        ),
        (
            format!(r#"[{{"type":"displayTextAndPIN","displayText60":"{}"}}]"#, x(61)),
            "displayText60 of 61 characters",
        ),
        (
            format!(r#"[{{"type":"confirmationMessage","displayText200":"{}"}}]"#, x(201)),
            "displayText200 of 201 characters",
        ),
        ("[]".into(), "an empty list"),
        (r#"{"type":"displayTextAndPIN","displayText60":"a"}"#.into(), "not an array"),
    ];
    for (json, why) in &bad {
        let r = post(&server, &n_auth, &n_body(&b64(json)));
        c.check(
            &format!("400 for {why} (notification flow), naming interactions"),
            r.problem_error(400).is_none() && names_interactions(&r),
            r.problem_error(400)
                .unwrap_or_else(|| String::from_utf8_lossy(&r.body).to_string()),
        );
    }
    let r = post(&server, &n_auth, &n_body("not Base64!"));
    c.problem("400 for interactions that are not Base64", &r, 400);
    let r = post(&server, AUTH_DL_ANON, &dl_body(&b64(VC_CHOICE)));
    c.check(
        "400 for confirmationMessageAndVerificationCodeChoice in a device-link flow",
        r.problem_error(400).is_none() && names_interactions(&r),
        r.problem_error(400).unwrap_or_default(),
    );
    for (json, why) in [
        (
            format!(
                r#"[{{"type":"displayTextAndPIN","displayText60":"{}"}}]"#,
                "€".repeat(60)
            ),
            "60 multi-byte characters in displayText60",
        ),
        (
            format!(
                r#"[{{"type":"confirmationMessage","displayText200":"{}"}}]"#,
                x(200)
            ),
            "200 characters in displayText200",
        ),
    ] {
        let r = post(&server, &n_auth, &n_body(&b64(&json)));
        c.eq(&format!("accepted: {why}"), r.status, 200);
        if r.status == 200 {
            let t = mary.pending(&session_id(&r.json())).await;
            dev::refuse(&mary.client, &mary.state, &t.transaction_id)
                .await
                .unwrap();
        }
    }

    // The first interaction is used and reported.
    for (first, second) in [
        ("confirmationMessage", "displayTextAndPIN"),
        ("displayTextAndPIN", "confirmationMessage"),
    ] {
        let text = |ty: &str| format!("Shown as {ty}");
        let entry = |ty: &str| {
            if ty == "displayTextAndPIN" {
                json!({"type": ty, "displayText60": text(ty)})
            } else {
                json!({"type": ty, "displayText200": text(ty)})
            }
        };
        let inter = b64(&json!([entry(first), entry(second)]).to_string());
        let id = session_id(&start(&server, &n_auth, &n_body(&inter)));
        let t = mary.pending(&id).await;
        c.eq(
            &format!("the app shows the first interaction ({first})"),
            dev::prompt(&mary.state, &t).unwrap().display_text,
            text(first),
        );
        mary.accept(&t).await;
        c.eq(
            &format!("interactionTypeUsed reports the interaction used ({first})"),
            result(&server, &id)["interactionTypeUsed"].as_str(),
            Some(first),
        );
    }
    let pin = pin_interaction("Log in to Tandem Test Bank");
    let id = session_id(&start(&server, &n_auth, &n_body(&pin)));
    mary.pending(&id).await;
    dev::refuse_with(
        &mary.client,
        &mary.state,
        &id,
        pb::RefuseReason::Interaction,
        "displayTextAndPIN",
    )
    .await
    .unwrap();
    let b = result(&server, &id);
    c.check(
        "USER_REFUSED_INTERACTION with details.interaction",
        b["result"]["endResult"] == "USER_REFUSED_INTERACTION"
            && b["result"]["details"]["interaction"] == "displayTextAndPIN",
        &b,
    );
    let id = session_id(&start(&server, &n_auth, &n_body(&pin)));
    mary.pending(&id).await;
    dev::refuse_with(
        &mary.client,
        &mary.state,
        &id,
        pb::RefuseReason::InteractionNotSupported,
        "",
    )
    .await
    .unwrap();
    c.eq(
        "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP when the app supports none",
        result(&server, &id)["result"]["endResult"].as_str(),
        Some("REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP"),
    );

    // Non-minified interactions: hashed as sent.
    let spaced =
        b64("[ { \"type\": \"displayTextAndPIN\", \"displayText60\": \"Log in, spaced\" } ]");
    let ch = random_challenge();
    let body = auth_body(
        RP_UUID,
        RP_NAME,
        &spaced,
        &ch,
        "rsassa-pss",
        "SHA-256",
        true,
    );
    let id = session_id(&start(&server, &n_auth, &body));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    let b = result(&server, &id);
    let dir = server.tmp.path().join("openssl");
    std::fs::create_dir_all(&dir).unwrap();
    check_acsp(
        &mut c,
        &dir,
        "interactions stored as sent (non-minified JSON)",
        &b,
        &ch,
        &spaced,
        "",
        "SHA-256",
        true,
    );
    c.finish();
}

// ================================================================== servers: response_verification.txt

/// response_verification.txt, applied by our RP library to real results of this server, and
/// each step shown to fail when what it checks is wrong:
/// 2. "Verify the state field ... is exactly COMPLETE", "result.endResult ... exactly OK",
///    "signatureProtocol ... exactly ACSP_V2 ... or RAW_DIGEST_SIGNATURE", "Ensure the cert,
///    signature, and result objects are present";
/// 4. chain to the configured anchors only, validity period, revocation by OCSP at the AIA
///    responder ("Verify that the certificate has not been revoked ... using OCSP");
/// 5. scheme policy OIDs ("The certificate must contain all the specific policy OIDs");
/// 6. purpose: authentication needs digitalSignature and the Smart-ID authentication EKU (or
///    the older clientAuth set), signing needs nonRepudiation;
/// 7. level: "Ensure the certificate's level meets or exceeds the required level";
/// 8. identity: "verify that the extracted identifier matches the expected identity";
/// 9. signature: "Ensure the verification uses the algorithm specified ... and correctly
///    applies the parameters"; a changed byte fails; FlowType: "RP must make sure that the
///    flowType that is returned was one of the options provided for the user".
#[tokio::test(flavor = "multi_thread")]
async fn response_verification__rp_library_on_real_results() {
    use client::verify::{
        CertificateLevel, CertificatePurpose, ExpectedIdentity, VerificationStep,
        verify_authentication, verify_certificate, verify_certificate_choice, verify_signature,
    };
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let mut mary = Phone::register(&server, &MARY).await;
    let doc = mary.document();
    let mut c = Checks::new("response_verification__rp_library_on_real_results");
    let anchors = trust_anchors(&server);
    let now = SystemTime::now();
    let user = client::UserRef::Document(doc.clone());

    // Real results: a notification authentication, a QR authentication, a signature and a
    // certificate choice.
    let inter = pin_interaction("Log in to Tandem Test Bank");
    let ch = random_challenge();
    let n_req: NotificationAuthenticationRequest = serde_json::from_value(auth_body(
        RP_UUID,
        RP_NAME,
        &inter,
        &ch,
        "rsassa-pss",
        "SHA-512",
        true,
    ))
    .unwrap();
    let id = session_id(&start(
        &server,
        &format!("/v3/authentication/notification/document/{doc}"),
        &serde_json::to_value(&n_req).unwrap(),
    ));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    let auth_status: SessionStatusResponse = serde_json::from_value(result(&server, &id)).unwrap();
    let auth_exp =
        client::AuthenticationExpectation::notification(&n_req, "smart-id", &user).unwrap();
    let ok = verify_authentication(&auth_status, &auth_exp, &anchors, now);
    c.check(
        "a notification authentication verifies through every step",
        ok.is_ok(),
        format_args!("{:?}", ok.as_ref().err()),
    );
    let level = ok
        .as_ref()
        .map(|v| v.level)
        .unwrap_or(CertificateLevel::Qualified);

    let body = auth_body(
        RP_UUID,
        RP_NAME,
        &inter,
        &random_challenge(),
        "rsassa-pss",
        "SHA-256",
        false,
    );
    let s = start_device_link(&server, AUTH_DL_ANON, &body, Kind::Auth);
    let t = mary
        .claim(&s.session.qr_link(Instant::now()))
        .await
        .unwrap();
    mary.accept(&t).await;
    let qr_status: SessionStatusResponse = serde_json::from_value(result(&server, &s.id)).unwrap();
    let qr_req: DeviceLinkAuthenticationRequest = serde_json::from_value(body).unwrap();
    let qr_exp = client::AuthenticationExpectation::device_link(
        &qr_req,
        "smart-id",
        &client::AuthTarget::Anonymous,
    )
    .unwrap();
    let r = verify_authentication(&qr_status, &qr_exp, &anchors, now);
    c.check(
        "an anonymous QR authentication verifies; the identity comes from the certificate",
        r.as_ref()
            .is_ok_and(|v| v.identity.serial_number == MARY_ETSI),
        format_args!("{:?}", r.as_ref().err()),
    );

    let digest = Sha512::digest(b"contract 44").to_vec();
    let s_req: NotificationSigningRequest = serde_json::from_value(sign_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Sign contract 44"),
        &digest,
        "rsassa-pss",
        "SHA-512",
    ))
    .unwrap();
    let id = session_id(&start(
        &server,
        &format!("/v3/signature/notification/document/{doc}"),
        &serde_json::to_value(&s_req).unwrap(),
    ));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    let sign_status: SessionStatusResponse = serde_json::from_value(result(&server, &id)).unwrap();
    let sign_exp = client::SignatureExpectation::notification(&s_req, &user).unwrap();
    let r = verify_signature(&sign_status, &sign_exp, &anchors, now);
    c.check(
        "a notification signature verifies through every step",
        r.is_ok(),
        format_args!("{:?}", r.as_ref().err()),
    );

    let id = session_id(&start(
        &server,
        &format!("/v3/signature/certificate-choice/notification/etsi/{MARY_ETSI}"),
        &cert_choice_body(RP_UUID, RP_NAME),
    ));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    let cert_status: SessionStatusResponse = serde_json::from_value(result(&server, &id)).unwrap();
    let r = verify_certificate_choice(
        &cert_status,
        t::SignCertificateLevel::Qualified,
        &[FlowType::Notification],
        Some(&ExpectedIdentity::Etsi(MARY_ETSI.into())),
        &anchors,
        now,
    );
    c.check(
        "a certificate choice verifies (signing certificate, level, identity)",
        r.is_ok(),
        format_args!("{:?}", r.as_ref().err()),
    );
    let cert = sign_status.cert.clone().unwrap();
    let r = verify_certificate(
        &cert,
        CertificatePurpose::Signing,
        CertificateLevel::Qualified,
        Some(MARY_ETSI),
        &anchors,
        now,
    );
    c.check(
        "a certificate alone (signing-certificate endpoint) verifies",
        r.is_ok(),
        format_args!("{:?}", r.as_ref().err()),
    );

    // Each step fails when what it checks is wrong.
    let auth_fails = |c: &mut Checks,
                      what: &str,
                      st: &SessionStatusResponse,
                      exp: &client::AuthenticationExpectation,
                      anchors: &client::TrustAnchors,
                      at: SystemTime,
                      step: VerificationStep| {
        let r = verify_authentication(st, exp, anchors, at);
        c.eq(
            &format!("step {step}: {what}"),
            r.map(|_| ()).map_err(|e| e.step),
            Err(step),
        );
    };
    let sign_fails = |c: &mut Checks,
                      what: &str,
                      st: &SessionStatusResponse,
                      exp: &client::SignatureExpectation,
                      anchors: &client::TrustAnchors,
                      at: SystemTime,
                      step: VerificationStep| {
        let r = verify_signature(st, exp, anchors, at);
        c.eq(
            &format!("step {step}: {what}"),
            r.map(|_| ()).map_err(|e| e.step),
            Err(step),
        );
    };
    use VerificationStep as S;
    let mut m = auth_status.clone();
    m.state = t::SessionState::Running;
    auth_fails(
        &mut c,
        "state RUNNING is refused",
        &m,
        &auth_exp,
        &anchors,
        now,
        S::SessionResult,
    );
    let mut m = auth_status.clone();
    m.result.as_mut().unwrap().end_result = t::EndResult::UserRefused;
    auth_fails(
        &mut c,
        "endResult other than OK is refused",
        &m,
        &auth_exp,
        &anchors,
        now,
        S::SessionResult,
    );
    let mut m = auth_status.clone();
    m.signature_protocol = Some(t::SignatureProtocol::RawDigestSignature);
    auth_fails(
        &mut c,
        "signatureProtocol other than ACSP_V2 is refused",
        &m,
        &auth_exp,
        &anchors,
        now,
        S::SessionResult,
    );
    for (what, f) in [
        (
            "no cert",
            (|m: &mut SessionStatusResponse| m.cert = None) as fn(&mut SessionStatusResponse),
        ),
        ("no signature", |m| m.signature = None),
        ("no result", |m| m.result = None),
    ] {
        let mut m = auth_status.clone();
        f(&mut m);
        auth_fails(
            &mut c,
            &format!("{what} is refused"),
            &m,
            &auth_exp,
            &anchors,
            now,
            S::SessionResult,
        );
    }
    let mut m = sign_status.clone();
    m.signature_protocol = Some(t::SignatureProtocol::AcspV2);
    sign_fails(
        &mut c,
        "a signature result with signatureProtocol ACSP_V2 is refused",
        &m,
        &sign_exp,
        &anchors,
        now,
        S::SessionResult,
    );

    let mut root_only = client::TrustAnchors::new();
    root_only
        .add_roots_pem(&std::fs::read(server.data_dir.join("pki/root.pem")).unwrap())
        .unwrap();
    auth_fails(
        &mut c,
        "without the issuing CA there is no chain",
        &auth_status,
        &auth_exp,
        &root_only,
        now,
        S::CertificateChain,
    );
    auth_fails(
        &mut c,
        "no configured anchors, no trust (no system store)",
        &auth_status,
        &auth_exp,
        &client::TrustAnchors::new(),
        now,
        S::CertificateChain,
    );
    auth_fails(
        &mut c,
        "after notAfter the certificate is refused",
        &auth_status,
        &auth_exp,
        &anchors,
        now + Duration::from_secs(20 * 365 * 86_400),
        S::CertificateValidity,
    );
    auth_fails(
        &mut c,
        "before notBefore the certificate is refused",
        &auth_status,
        &auth_exp,
        &anchors,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
        S::CertificateValidity,
    );
    let mut strict = trust_anchors(&server);
    strict.require_policy("1.3.6.1.4.1.99999.1.1").unwrap();
    auth_fails(
        &mut c,
        "a required scheme policy OID missing is refused",
        &auth_status,
        &auth_exp,
        &strict,
        now,
        S::CertificatePolicies,
    );
    let mut m = auth_status.clone();
    m.cert.as_mut().unwrap().value = STANDARD.encode(mary.certificate(KeyType::Sign));
    auth_fails(
        &mut c,
        "a signing certificate cannot authenticate",
        &m,
        &auth_exp,
        &anchors,
        now,
        S::CertificatePurpose,
    );
    let mut m = sign_status.clone();
    m.cert.as_mut().unwrap().value = STANDARD.encode(mary.certificate(KeyType::Auth));
    sign_fails(
        &mut c,
        "an authentication certificate cannot sign (no nonRepudiation)",
        &m,
        &sign_exp,
        &anchors,
        now,
        S::CertificatePurpose,
    );
    // The level step: raise the requirement above what a certificate reaches (QUALIFIED
    // without a QSCD statement < QSCD).
    let sign_level = verify_signature(&sign_status, &sign_exp, &anchors, now)
        .map(|v| v.level)
        .unwrap_or(CertificateLevel::Qscd);
    c.check(
        "a certificate below QSCD exists to test the level step with",
        level < CertificateLevel::Qscd || sign_level < CertificateLevel::Qscd,
        format_args!("AUTH {level:?}, SIGN {sign_level:?}"),
    );
    if level < CertificateLevel::Qscd {
        let mut e = auth_exp.clone();
        e.certificate_level = CertificateLevel::Qscd;
        auth_fails(
            &mut c,
            "a level below the required one is refused (authentication)",
            &auth_status,
            &e,
            &anchors,
            now,
            S::CertificateLevel,
        );
    }
    if sign_level < CertificateLevel::Qscd {
        let mut e = sign_exp.clone();
        e.certificate_level = CertificateLevel::Qscd;
        sign_fails(
            &mut c,
            "a level below the required one is refused (signature)",
            &sign_status,
            &e,
            &anchors,
            now,
            S::CertificateLevel,
        );
    }
    let issuing = openssl::x509::X509::from_pem(
        &std::fs::read(server.data_dir.join("pki/issuing.pem")).unwrap(),
    )
    .unwrap()
    .to_der()
    .unwrap();
    let mut m = sign_status.clone();
    m.cert.as_mut().unwrap().value = STANDARD.encode(&issuing);
    sign_fails(
        &mut c,
        "basic constraints: a CA certificate as the end-entity certificate is refused",
        &m,
        &sign_exp,
        &anchors,
        now,
        S::CertificatePurpose,
    );
    let mut e = auth_exp.clone();
    e.expected_identity = Some(ExpectedIdentity::Etsi("PNOEE-49912319999".into()));
    auth_fails(
        &mut c,
        "another person than expected is refused",
        &auth_status,
        &e,
        &anchors,
        now,
        S::Identity,
    );
    let mut e = sign_exp.clone();
    e.expected_identity = Some(ExpectedIdentity::Document(
        "PNOEE-49912319999-ZZZZ-Q".into(),
    ));
    sign_fails(
        &mut c,
        "another document than expected is refused",
        &sign_status,
        &e,
        &anchors,
        now,
        S::Identity,
    );
    let mut e = auth_exp.clone();
    e.hash = HashAlgorithm::Sha256;
    auth_fails(
        &mut c,
        "a hash other than requested is refused",
        &auth_status,
        &e,
        &anchors,
        now,
        S::SignatureAlgorithm,
    );
    let mut e = qr_exp.clone();
    e.allowed_flows = vec![FlowType::Notification];
    auth_fails(
        &mut c,
        "a flowType not offered to the user is refused",
        &qr_status,
        &e,
        &anchors,
        now,
        S::ResponseFields,
    );
    let flip = |b64: &str| {
        let mut v = STANDARD.decode(b64).unwrap();
        v[10] ^= 1;
        STANDARD.encode(v)
    };
    let mut m = auth_status.clone();
    if let Some(t::Signature::AcspV2(s)) = m.signature.as_mut() {
        s.value = flip(&s.value);
    }
    auth_fails(
        &mut c,
        "a changed signature byte is refused",
        &m,
        &auth_exp,
        &anchors,
        now,
        S::Signature,
    );
    let mut e = auth_exp.clone();
    e.rp_challenge = random_challenge();
    auth_fails(
        &mut c,
        "another rpChallenge than sent is refused",
        &auth_status,
        &e,
        &anchors,
        now,
        S::Signature,
    );
    let mut e = sign_exp.clone();
    e.digest[0] ^= 1;
    sign_fails(
        &mut c,
        "another digest than sent is refused",
        &sign_status,
        &e,
        &anchors,
        now,
        S::Signature,
    );

    // Revocation by OCSP at the certificate's responder (served here under /ocsp).
    let ocsp = format!("{}/ocsp", server.http_url);
    let der = mary.certificate(KeyType::Auth);
    let r = client::revocation::check_ocsp(&der, &anchors, Some(&ocsp)).await;
    c.check(
        "revocation: OCSP says good for a valid certificate",
        r.is_ok(),
        format_args!("{:?}", r.as_ref().err()),
    );
    dev::delete_account(&mary.client, &mary.state)
        .await
        .unwrap();
    let r = client::revocation::check_ocsp(&der, &anchors, Some(&ocsp)).await;
    c.eq(
        "revocation: after the account is deleted OCSP says revoked and the step fails",
        r.map(|_| ()).map_err(|e| e.step),
        Err(VerificationStep::Revocation),
    );
    c.finish();
}

/// response_verification.txt, certificate chain step: "For each certificate in the constructed
/// chain (end-entity certificate and all intermediate CA certificates) … Verify that the
/// certificate has not been revoked"; "Note: Revocation checks (OCSP/CRL) are not performed on
/// self-signed root CA certificates configured as trust anchors. Intermediate CA certificates
/// can be revoked and must be checked." Our RP library against a real server: the issuing CA
/// certificate names the root's CRL, the chain check covers it and not the root, and a revoked
/// issuing CA, or one whose status cannot be had, fails the step naming it.
#[tokio::test(flavor = "multi_thread")]
async fn response_verification__intermediate_ca_certificates_are_checked_for_revocation() {
    use client::revocation::{
        ChainPosition, CrlReason, RevocationError, RevocationMethod, RevocationOptions,
        check_chain_revocation, crl,
    };
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let mary = Phone::register(&server, &MARY).await;
    let mut c = Checks::new(
        "response_verification__intermediate_ca_certificates_are_checked_for_revocation",
    );
    let anchors = trust_anchors(&server);
    let der = mary.certificate(KeyType::Sign);
    let pem_der = |name: &str| {
        openssl::x509::X509::from_pem(
            &std::fs::read(server.data_dir.join("pki").join(name)).unwrap(),
        )
        .unwrap()
        .to_der()
        .unwrap()
    };
    c.eq(
        "the issuing CA certificate names where its revocation status is published (the root's CRL)",
        crl::distribution_points(&pem_der("issuing.pem")),
        Ok(vec!["http://ca.example.com/crl/root.crl".to_owned()]),
    );
    c.eq(
        "the self-signed root names no status of its own (it is a trust anchor)",
        crl::distribution_points(&pem_der("root.pem")),
        Ok(vec![]),
    );

    // The test servers' public base URL is not reachable from here: the URLs are given.
    let root_crl = format!("{}/crl/root.crl", server.http_url);
    let opts = RevocationOptions {
        ocsp_url: Some(format!("{}/ocsp", server.http_url)),
        ca_crl_url: Some(root_crl.clone()),
        ..Default::default()
    };
    let r = check_chain_revocation(&der, &anchors, &opts).await;
    let checked: Vec<_> = r
        .as_ref()
        .map(|ok| {
            ok.certificates
                .iter()
                .map(|c| (c.certificate.position, c.status.method))
                .collect()
        })
        .unwrap_or_default();
    c.eq(
        "each certificate of the chain below the root is checked: the end entity, then the intermediate CA",
        checked,
        vec![
            (ChainPosition::EndEntity, RevocationMethod::Ocsp),
            (ChainPosition::IntermediateCa(1), RevocationMethod::Crl),
        ],
    );
    c.check(
        "the self-signed root configured as trust anchor is not checked (named as the anchor)",
        r.as_ref()
            .is_ok_and(|ok| ok.root == "CN=Tandem Root CA,O=Tandem,C=EE"),
        format_args!("{r:?}"),
    );

    // Status that cannot be determined is no pass: the root's CRL at a path that answers 404.
    let missing = RevocationOptions {
        ca_crl_url: Some(format!("{}/crl/none.crl", server.http_url)),
        ..opts.clone()
    };
    let r = check_chain_revocation(&der, &anchors, &missing).await;
    c.check(
        "an intermediate CA certificate whose status cannot be determined fails the step",
        matches!(&r, Err(e) if e.certificate.as_ref().map(|c| c.position) == Some(ChainPosition::IntermediateCa(1))
            && matches!(e.error, RevocationError::Unavailable { .. })),
        format_args!("{r:?}"),
    );

    // "Intermediate CA certificates can be revoked": the operator revokes the issuing CA.
    let out = server
        .operator(&["revoke-ca", "--reason", "ca-compromise", "--yes"])
        .unwrap();
    c.check(
        "the operator revokes the issuing CA certificate",
        out.starts_with("revoked the issuing CA certificate"),
        &out,
    );
    let r = check_chain_revocation(&der, &anchors, &opts).await;
    c.check(
        "a revoked intermediate CA certificate fails the step, naming it, though the end entity is good",
        matches!(&r, Err(e) if e.certificate.as_ref().is_some_and(|c| c.position == ChainPosition::IntermediateCa(1)
                && c.subject == "CN=Tandem Issuing CA,O=Tandem,C=EE")
            && matches!(e.error, RevocationError::Revoked { reason: Some(CrlReason::CaCompromise), .. })
            && e.checked.len() == 1),
        format_args!("{r:?}"),
    );
    let step = r
        .map_err(|e| client::VerificationError::from(e).step)
        .map(|_| ());
    c.eq(
        "… at the revocation step",
        step,
        Err(client::VerificationStep::Revocation),
    );
    c.finish();
}

// ================================================================== servers: openapi.yml

/// The object's keys, sorted.
fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// `v` without the member at `path` (`a/b`).
fn without(v: &Value, path: &str) -> Value {
    let mut v = v.clone();
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    let mut node = &mut v;
    for k in parent.split('/').filter(|k| !k.is_empty()) {
        node = &mut node[k];
    }
    node.as_object_mut().unwrap().remove(last);
    v
}

/// `v` with the member at `path` set to `x`.
fn with(v: &Value, path: &str, x: Value) -> Value {
    let mut v = v.clone();
    let mut node = &mut v;
    for k in path.split('/') {
        node = &mut node[k];
    }
    *node = x;
    v
}

/// openapi.yml, the schemas as the server applies and answers them:
/// - every request body's `required` members (a missing one gets 400), its enums
///   (`signatureProtocol`, `signatureAlgorithm`, `hashAlgorithm`, `certificateLevel` with no
///   `QSCD` for authentication, `vcType`), formats and patterns (`relyingPartyUUID` and
///   `linkedSessionID` UUIDs, `rpChallenge` 44-88 Base64 characters, `digest`), and the path
///   parameter rule "the country code ... must be in upper case";
/// - `SessionStatusResponse`: `state` RUNNING / COMPLETE; for OK `result.documentNumber`,
///   `cert` {`value`, `certificateLevel`}, `interactionTypeUsed` ("Mandatory if the
///   result.endResult is OK"); `signature` of exactly the protocol's object
///   (`additionalProperties: false`, its required members); `signatureProtocol` only for
///   signatures; `deviceIpAddress` "present only when it has been previously requested"
///   (and then, with the relying party's privilege, the address the phone answered from);
///   `ignoredProperties`: "Any unsupported property is ignored and is listed";
/// - `CertificateResponse`: `state` OK with `cert`; the `404`s of the document endpoints and
///   `404_SessionNotFound`; a locked key gives `DOCUMENT_UNUSABLE` (sessions, and the
///   certificate query as `CertificateTimelockedResponseExample` shows);
/// - `SignCertificateLevel`: "`QSCD` as a certificate level parameter is accepted ... a
///   certificate of `QUALIFIED` level which is also QSCD-capable".
#[tokio::test(flavor = "multi_thread")]
async fn openapi__request_schemas_and_responses() {
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let mut mary = Phone::register(&server, &MARY).await;
    let doc = mary.document();
    let mut c = Checks::new("openapi__request_schemas_and_responses");
    let pin = pin_interaction("Log in to Tandem Test Bank");
    let n_auth = auth_body(
        RP_UUID,
        RP_NAME,
        &pin,
        &random_challenge(),
        "rsassa-pss",
        "SHA-512",
        true,
    );
    let dl_auth = auth_body(
        RP_UUID,
        RP_NAME,
        &pin,
        &random_challenge(),
        "rsassa-pss",
        "SHA-512",
        false,
    );
    let sign = sign_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Sign"),
        &[3u8; 64],
        "rsassa-pss",
        "SHA-512",
    );
    let linked = with(
        &sign,
        "linkedSessionID",
        json!("6f9619ff-8b86-4011-b42d-00c04fc964ff"),
    );
    let cert = json!({"relyingPartyUUID": RP_UUID, "relyingPartyName": RP_NAME});
    let common = ["relyingPartyUUID", "relyingPartyName"];
    let auth_req = [
        "signatureProtocol",
        "signatureProtocolParameters",
        "signatureProtocolParameters/rpChallenge",
        "signatureProtocolParameters/signatureAlgorithm",
        "interactions",
    ];
    let sign_req = [
        "signatureProtocol",
        "signatureProtocolParameters",
        "signatureProtocolParameters/digest",
        "signatureProtocolParameters/signatureAlgorithm",
        "interactions",
    ];
    let n_auth_path = format!("/v3/authentication/notification/document/{doc}");
    let dl_sign_path = format!("/v3/signature/device-link/document/{doc}");
    let n_sign_path = format!("/v3/signature/notification/document/{doc}");
    let linked_path = format!("/v3/signature/notification/linked/{doc}");
    let n_cert_path = format!("/v3/signature/certificate-choice/notification/etsi/{MARY_ETSI}");
    let cert_path = format!("/v3/signature/certificate/{doc}");
    let bodies: Vec<(&str, &str, &Value, Vec<&str>)> = vec![
        (
            "DeviceLinkAuthenticationRequestBody",
            AUTH_DL_ANON,
            &dl_auth,
            [&common[..], &auth_req[..]].concat(),
        ),
        (
            "NotificationAuthenticationRequestBody",
            n_auth_path.as_str(),
            &n_auth,
            [&common[..], &auth_req, &["vcType"]].concat(),
        ),
        (
            "DeviceLinkSigningRequestBody",
            dl_sign_path.as_str(),
            &sign,
            [&common[..], &sign_req[..]].concat(),
        ),
        (
            "NotificationSigningRequestBody",
            n_sign_path.as_str(),
            &sign,
            [&common[..], &sign_req[..]].concat(),
        ),
        (
            "NotificationSigningLinkedRequestBody",
            linked_path.as_str(),
            &linked,
            [&common[..], &sign_req, &["linkedSessionID"]].concat(),
        ),
        (
            "DeviceLinkCertificateChoiceRequestBody",
            CERT_DL_ANON,
            &cert,
            common.to_vec(),
        ),
        (
            "NotificationCertificateChoiceRequestBody",
            n_cert_path.as_str(),
            &cert,
            common.to_vec(),
        ),
        (
            "SigningCertificateRequestBody",
            cert_path.as_str(),
            &cert,
            common.to_vec(),
        ),
    ];
    for (name, path, body, required) in &bodies {
        for field in required {
            c.problem(
                &format!("{name}: {field} is required (400 without it)"),
                &post(&server, path, &without(body, field)),
                400,
            );
        }
    }
    let invalid: Vec<(&str, &str, Value, &str, Value)> = vec![
        (
            "AuthSignatureProtocol enum",
            n_auth_path.as_str(),
            n_auth.clone(),
            "signatureProtocol",
            json!("RAW_DIGEST_SIGNATURE"),
        ),
        (
            "SignSignatureProtocol enum",
            n_sign_path.as_str(),
            sign.clone(),
            "signatureProtocol",
            json!("ACSP_V2"),
        ),
        (
            "SignatureAlgorithm enum",
            n_auth_path.as_str(),
            n_auth.clone(),
            "signatureProtocolParameters/signatureAlgorithm",
            json!("rsa"),
        ),
        (
            "HashAlgorithm enum",
            n_sign_path.as_str(),
            sign.clone(),
            "signatureProtocolParameters/signatureAlgorithmParameters/hashAlgorithm",
            json!("MD5"),
        ),
        (
            "AuthCertificateLevel enum (no QSCD)",
            n_auth_path.as_str(),
            n_auth.clone(),
            "certificateLevel",
            json!("QSCD"),
        ),
        (
            "SignCertificateLevel enum",
            n_sign_path.as_str(),
            sign.clone(),
            "certificateLevel",
            json!("LOW"),
        ),
        (
            "VerificationCodeType enum",
            n_auth_path.as_str(),
            n_auth.clone(),
            "vcType",
            json!("numeric6"),
        ),
        (
            "RelyingPartyUUID format uuid",
            n_auth_path.as_str(),
            n_auth.clone(),
            "relyingPartyUUID",
            json!("not-a-uuid"),
        ),
        (
            "LinkedSessionID format uuid",
            linked_path.as_str(),
            linked.clone(),
            "linkedSessionID",
            json!("not-a-uuid"),
        ),
        (
            "rpChallenge minLength 44",
            n_auth_path.as_str(),
            n_auth.clone(),
            "signatureProtocolParameters/rpChallenge",
            json!(STANDARD.encode([1u8; 30])),
        ),
        (
            "rpChallenge maxLength 88",
            n_auth_path.as_str(),
            n_auth.clone(),
            "signatureProtocolParameters/rpChallenge",
            json!(STANDARD.encode([1u8; 67])),
        ),
        (
            "rpChallenge pattern (Base64)",
            n_auth_path.as_str(),
            n_auth.clone(),
            "signatureProtocolParameters/rpChallenge",
            json!("-".repeat(44)),
        ),
        (
            "digest pattern (Base64)",
            n_sign_path.as_str(),
            sign.clone(),
            "signatureProtocolParameters/digest",
            json!("_".repeat(88)),
        ),
        (
            "interactions pattern (Base64)",
            n_sign_path.as_str(),
            sign.clone(),
            "interactions",
            json!("not base64"),
        ),
    ];
    for (what, path, body, field, value) in invalid {
        c.problem(
            &format!("{what}: an invalid {field} gets 400"),
            &post(&server, path, &with(&body, field, value)),
            400,
        );
    }
    c.problem(
        "id-etsi-qcs-SemanticsId-Natural: the country code must be in upper case (400)",
        &post(
            &server,
            "/v3/authentication/notification/etsi/PNOee-30303039914",
            &n_auth,
        ),
        400,
    );
    let r = get(&server, "/v3/session/not-a-uuid");
    c.check(
        "sessionID format uuid: another value gets a 400 or 404 problem",
        r.problem_error(400).is_none() || r.problem_error(404).is_none(),
        r.problem_error(400).unwrap_or_default(),
    );

    // Responses.
    let acsp_props = [
        "flowType",
        "serverRandom",
        "signatureAlgorithm",
        "signatureAlgorithmParameters",
        "userChallenge",
        "value",
    ];
    let raw_props = [
        "flowType",
        "signatureAlgorithm",
        "signatureAlgorithmParameters",
        "value",
    ];
    let status_props = [
        "cert",
        "deviceIpAddress",
        "ignoredProperties",
        "interactionTypeUsed",
        "result",
        "signature",
        "signatureProtocol",
        "state",
    ];
    let check_ok = |c: &mut Checks,
                    what: &str,
                    b: &Value,
                    sig_props: &[&str],
                    sig_required: &[&str]| {
        let top = keys_of(b);
        c.check(
            &format!("SessionStatusResponse ({what}): only documented members"),
            top.iter().all(|k| status_props.contains(&k.as_str())),
            format_args!("{top:?}"),
        );
        c.eq(
            &format!("SessionStatusResponse ({what}): state COMPLETE"),
            b["state"].as_str(),
            Some("COMPLETE"),
        );
        c.check(
            &format!("SessionStatusResponse ({what}): result.documentNumber present for OK"),
            b["result"]["documentNumber"].is_string(),
            b,
        );
        c.check(
            &format!("SessionStatusResponse ({what}): cert.value (Base64) and cert.certificateLevel present for OK"),
            b["cert"]["value"].as_str().is_some_and(is_b64)
                && matches!(b["cert"]["certificateLevel"].as_str(), Some("ADVANCED" | "QUALIFIED")),
            &b["cert"]["certificateLevel"],
        );
        c.check(
            &format!("SessionStatusResponse ({what}): interactionTypeUsed present for OK"),
            matches!(
                b["interactionTypeUsed"].as_str(),
                Some(
                    "displayTextAndPIN"
                        | "confirmationMessage"
                        | "confirmationMessageAndVerificationCodeChoice"
                )
            ),
            &b["interactionTypeUsed"],
        );
        let sk = keys_of(&b["signature"]);
        c.check(
            &format!(
                "signature ({what}): no member outside its schema (additionalProperties: false)"
            ),
            sk.iter().all(|k| sig_props.contains(&k.as_str())),
            format_args!("{sk:?}"),
        );
        c.check(
            &format!("signature ({what}): its required members are present"),
            sig_required.iter().all(|k| sk.iter().any(|x| x == k)),
            format_args!("{sk:?}"),
        );
        c.check(
            &format!("SessionStatusResponse ({what}): no deviceIpAddress unless requested"),
            b.get("deviceIpAddress").is_none(),
            &b["deviceIpAddress"],
        );
    };
    let id = session_id(&start(&server, &n_auth_path, &n_auth));
    let running = peek(&server, &id);
    c.eq(
        "SessionStatusResponse: a running session is {state: RUNNING}",
        running["state"].as_str(),
        Some("RUNNING"),
    );
    c.check(
        "SessionStatusResponse: a running session has no signature or cert",
        running.get("signature").is_none() && running.get("cert").is_none(),
        &running,
    );
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    let b = result(&server, &id);
    check_ok(
        &mut c,
        "ACSP_V2",
        &b,
        &acsp_props,
        &[
            "value",
            "serverRandom",
            "userChallenge",
            "flowType",
            "signatureAlgorithm",
        ],
    );
    c.eq(
        "signatureProtocol ACSP_V2 for an authentication",
        b["signatureProtocol"].as_str(),
        Some("ACSP_V2"),
    );
    let with_props = with(
        &sign,
        "requestProperties",
        json!({"shareMdClientIpAddress": false, "futureProperty": true}),
    );
    let id = session_id(&start(&server, &n_sign_path, &with_props));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    let b = result(&server, &id);
    check_ok(
        &mut c,
        "RAW_DIGEST_SIGNATURE",
        &b,
        &raw_props,
        &["value", "flowType", "signatureAlgorithm"],
    );
    c.eq(
        "signatureProtocol RAW_DIGEST_SIGNATURE for a signature",
        b["signatureProtocol"].as_str(),
        Some("RAW_DIGEST_SIGNATURE"),
    );
    c.eq(
        "ignoredProperties lists the unsupported requestProperties",
        b["ignoredProperties"].clone(),
        json!(["futureProperty"]),
    );
    let id = session_id(&start(
        &server,
        &n_cert_path,
        &cert_choice_body(RP_UUID, RP_NAME),
    ));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    let b = result(&server, &id);
    let sk = keys_of(&b["signature"]);
    c.eq(
        "CertificateChoiceSignature: flowType only",
        sk,
        vec!["flowType".to_owned()],
    );
    c.check(
        "certificate choice: no signatureProtocol (its enum has no value for it)",
        b.get("signatureProtocol").is_none(),
        &b,
    );
    c.check(
        "certificate choice OK: result.documentNumber and cert present",
        b["result"]["documentNumber"].is_string() && b["cert"]["value"].is_string(),
        &b,
    );

    // RequestProperties: "The IP address is saved to the RP session when `person` reacts to
    // the `RpRequest` with one of its mobile devices", returned when the RP has the privilege,
    // asked for it and the session is complete. The phone calls from 127.0.0.1.
    server
        .operator(&["rp-device-ip", RP_UUID, "allow"])
        .unwrap();
    let share = json!({"shareMdClientIpAddress": true});
    let id = session_id(&start(
        &server,
        &n_sign_path,
        &with(&sign, "requestProperties", share.clone()),
    ));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    c.eq(
        "deviceIpAddress: the phone's address for a notification signing that asked for it",
        result(&server, &id)["deviceIpAddress"].as_str(),
        Some("127.0.0.1"),
    );
    let s = start_device_link(
        &server,
        AUTH_DL_ANON,
        &with(&dl_auth, "requestProperties", share.clone()),
        Kind::Auth,
    );
    let t = mary
        .claim(&s.session.qr_link(Instant::now()))
        .await
        .unwrap();
    mary.accept(&t).await;
    c.eq(
        "deviceIpAddress: the phone's address for a device-link authentication that asked for it",
        result(&server, &s.id)["deviceIpAddress"].as_str(),
        Some("127.0.0.1"),
    );
    let id = session_id(&start(
        &server,
        &n_cert_path,
        &with(
            &cert_choice_body(RP_UUID, RP_NAME),
            "requestProperties",
            share.clone(),
        ),
    ));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    c.eq(
        "deviceIpAddress: the phone's address for a certificate choice that asked for it",
        result(&server, &id)["deviceIpAddress"].as_str(),
        Some("127.0.0.1"),
    );
    let id = session_id(&start(
        &server,
        &n_sign_path,
        &with(
            &sign,
            "requestProperties",
            json!({"shareMdClientIpAddress": false}),
        ),
    ));
    let t = mary.pending(&id).await;
    mary.accept(&t).await;
    let b = result(&server, &id);
    c.check(
        "deviceIpAddress: absent when not asked for, even with the permission",
        b["result"]["endResult"] == "OK" && b.get("deviceIpAddress").is_none(),
        &b,
    );
    server
        .operator(&["rp-device-ip", RP_UUID, "forbid"])
        .unwrap();

    let r = post(&server, &cert_path, &cert);
    let v = r.json();
    c.check(
        "CertificateResponse: state OK with cert {value, certificateLevel}",
        r.status == 200
            && v["state"] == "OK"
            && v["cert"]["value"].as_str().is_some_and(is_b64)
            && v["cert"]["certificateLevel"].is_string(),
        &v,
    );
    c.eq(
        "CertificateResponse: the signing certificate",
        decoded(&v["cert"]["value"]),
        mary.certificate(KeyType::Sign),
    );
    // certificateLevel: QSCD "is accepted" (a QUALIFIED certificate that is QSCD-capable);
    // a lower level than the account's is met by it.
    let sign_cert = t::Cert {
        value: STANDARD.encode(mary.certificate(KeyType::Sign)),
        certificate_level: "QUALIFIED".into(),
    };
    let qscd_capable = client::verify::verify_certificate(
        &sign_cert,
        client::verify::CertificatePurpose::Signing,
        client::verify::CertificateLevel::Qualified,
        None,
        &trust_anchors(&server),
        SystemTime::now(),
    )
    .map(|v| v.level == client::verify::CertificateLevel::Qscd)
    .unwrap();
    let r = post(
        &server,
        &cert_path,
        &with(&cert, "certificateLevel", json!("QSCD")),
    );
    c.eq(
        &format!(
            "SignCertificateLevel QSCD is accepted: {} for this account (QSCD-capable: {qscd_capable})",
            if qscd_capable { "200" } else { "404" }
        ),
        r.status,
        if qscd_capable { 200 } else { 404 },
    );
    let r = post(
        &server,
        &cert_path,
        &with(&cert, "certificateLevel", json!("ADVANCED")),
    );
    c.check(
        "certificateLevel ADVANCED is met by a QUALIFIED certificate (ADVANCED < QUALIFIED)",
        r.status == 200 && r.json()["cert"]["certificateLevel"] == "QUALIFIED",
        String::from_utf8_lossy(&r.body),
    );
    c.problem(
        "404_SessionNotFound for an unknown session",
        &get(
            &server,
            "/v3/session/6f9619ff-8b86-4011-b42d-00c04fc964ff?timeoutMs=1000",
        ),
        404,
    );

    // A locked signing key: new signing sessions end DOCUMENT_UNUSABLE.
    let wrong = tandem_client_core::pin::Pin::new("99999").unwrap();
    for _ in 0..3 {
        let id = session_id(&start(
            &server,
            &n_sign_path,
            &sign_body(
                RP_UUID,
                RP_NAME,
                &pin_interaction("Sign"),
                &[4u8; 64],
                "rsassa-pss",
                "SHA-512",
            ),
        ));
        let t = mary.pending(&id).await;
        let r = dev::confirm(&mary.client, &mut mary.state, &t, &wrong, None)
            .await
            .unwrap();
        assert_ne!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
    }
    let id = session_id(&start(&server, &n_sign_path, &sign));
    c.eq(
        "DOCUMENT_UNUSABLE: a signing session for a locked key",
        result(&server, &id)["result"]["endResult"].as_str(),
        Some("DOCUMENT_UNUSABLE"),
    );
    // CertificateResponse `DOCUMENT_UNUSABLE` ("this request cannot be completed"; example
    // "Signing key currently not usable": CertificateTimelockedResponseExample), and `cert`
    // is "Present if state is OK".
    let r = post(&server, &cert_path, &cert);
    c.check(
        "CertificateResponse: a time-locked signing key gives state DOCUMENT_UNUSABLE and no cert (CertificateTimelockedResponseExample)",
        r.status == 200 && r.json() == json!({"state": "DOCUMENT_UNUSABLE"}),
        format_args!("HTTP {} {}", r.status, String::from_utf8_lossy(&r.body)),
    );
    server.operator(&["unlock", &doc, "--key", "sign"]).unwrap();
    let r = post(&server, &cert_path, &cert);
    c.check(
        "CertificateResponse: once the lock is lifted, state OK with the signing certificate again",
        r.status == 200
            && r.json()["state"] == "OK"
            && decoded(&r.json()["cert"]["value"]) == mary.certificate(KeyType::Sign),
        format_args!("HTTP {} {}", r.status, String::from_utf8_lossy(&r.body)),
    );
    c.finish();
}

// ================================================================== servers: callback_urls.txt (the phone)

/// callback_urls.txt, what the app does at the end of a same-device flow, seen from the
/// simulated phone (`tandem device scan` / `confirm`) and checked by the RP as the page says:
/// - "Once the user has signed (or rejected the transaction), they are redirected to the
///   callback URL"; "The callback URL contains an additional parameter sessionSecretDigest
///   which is the Base64URL encoded SHA-256 digest of the sessionSecret; and in case of
///   authentication flows, it also contains the parameter userChallengeVerifier";
///   "Callback URL examples": `initialCallbackUrl&sessionSecretDigest=…[&userChallengeVerifier=…]`;
/// - the RP's checks: "Verify that the SHA-256 digest of the sessionSecret equals to
///   sessionSecretDigest"; "verify that after applying the SHA-256 hash algorithm to
///   userChallengeVerifier value (as is ...) the result equals to the userChallenge"
///   (OpenSSL here, and our RP library's verification with those values);
/// - "Callback URLs in linked notification based flows": the callback URL of the device-link
///   certificate choice "is only used after the /v3/signature/notification/linked endpoint is
///   called ... and the flow is completed".
///
/// Gap (C) of issue 20 until it lands.
#[tokio::test(flavor = "multi_thread")]
async fn callback_urls__same_device_flows_end_at_the_callback_url() {
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let phone = CliPhone::register(&server, &MARY, "phone").await;
    let doc = phone.document.clone();
    let dir = server.tmp.path().join("openssl");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Checks::new("callback_urls__same_device_flows_end_at_the_callback_url");
    let anchors = trust_anchors(&server);
    let callback = |tag: &str| format!("https://rp.example.com/{tag}?value={}", random_nonce());
    let secret_digest = |s: &Started| {
        URL_SAFE_NO_PAD.encode(openssl_digest(
            &dir,
            "sha256",
            &STANDARD.decode(&s.resp.session_secret).unwrap(),
        ))
    };

    // Web2App authentication.
    let cb = callback("web-login");
    let inter = pin_interaction("Log in to Tandem Test Bank");
    let mut body = auth_body(
        RP_UUID,
        RP_NAME,
        &inter,
        &random_challenge(),
        "rsassa-pss",
        "SHA-512",
        false,
    );
    body["initialCallbackUrl"] = json!(cb);
    let s = start_device_link(&server, AUTH_DL_ANON, &body, Kind::Auth);
    let link = s.session.same_device_link(DeviceLinkType::Web2App).unwrap();
    let out = phone.run(&["scan", &link], Some(PIN1));
    let b = result(&server, &s.id);
    c.eq(
        "Web2App authentication ends OK",
        b["result"]["endResult"].as_str(),
        Some("OK"),
    );
    let url = out.as_deref().ok().and_then(|o| url_starting_with(o, &cb));
    c.check(
        "Web2App authentication: the app opens the initialCallbackUrl with parameters added",
        url.is_some(),
        format_args!("{out:?}"),
    );
    if let Some(url) = &url {
        let added = added_parameters(url, &cb);
        let verifier = added
            .iter()
            .find(|(k, _)| k == "userChallengeVerifier")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        c.eq(
            "Callback URL examples: initialCallbackUrl&sessionSecretDigest=…&userChallengeVerifier=…",
            url.clone(),
            format!("{cb}&sessionSecretDigest={}&userChallengeVerifier={verifier}", secret_digest(&s)),
        );
        c.eq(
            "userChallengeVerifier: BASE64URL(SHA-256(verifier as is)) is signature.userChallenge",
            Some(URL_SAFE_NO_PAD.encode(openssl_digest(&dir, "sha256", verifier.as_bytes()))),
            b["signature"]["userChallenge"].as_str().map(str::to_owned),
        );
        let req: DeviceLinkAuthenticationRequest = serde_json::from_value(body.clone()).unwrap();
        let mut exp = client::AuthenticationExpectation::device_link(
            &req,
            "smart-id",
            &client::AuthTarget::Anonymous,
        )
        .unwrap();
        exp.callback = Some(client::SameDeviceCallback {
            session_secret_b64: s.resp.session_secret.clone(),
            session_secret_digest: secret_digest(&s),
            user_challenge_verifier: Some(verifier.clone()),
        });
        let status: SessionStatusResponse = serde_json::from_value(b.clone()).unwrap();
        let checked = s.session.check_callback(url, &status);
        c.check(
            "the RP library's callback check accepts the phone's callback URL (Web2App authentication)",
            checked.as_ref().is_ok_and(|cb| {
                cb.session_secret_digest == secret_digest(&s)
                    && cb.user_challenge_verifier.as_deref() == Some(verifier.as_str())
            }),
            format_args!("{:?}", checked.as_ref().err()),
        );
        let v = client::verify::verify_authentication(&status, &exp, &anchors, SystemTime::now());
        c.check(
            "the RP library verifies the Web2App authentication with the callback's values",
            v.is_ok(),
            format_args!("{:?}", v.err()),
        );
        exp.callback.as_mut().unwrap().session_secret_b64 = STANDARD.encode([5u8; 32]);
        let v = client::verify::verify_authentication(&status, &exp, &anchors, SystemTime::now());
        c.check(
            "the RP library denies a callback whose sessionSecretDigest is another session's",
            v.is_err(),
            "verified",
        );
    }

    // App2App signature: sessionSecretDigest only.
    let cb = callback("app-sign");
    let digest = Sha512::digest(b"contract 45").to_vec();
    let mut body = sign_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Sign contract 45"),
        &digest,
        "rsassa-pss",
        "SHA-512",
    );
    body["initialCallbackUrl"] = json!(cb);
    let s = start_device_link(
        &server,
        &format!("/v3/signature/device-link/document/{doc}"),
        &body,
        Kind::Sign,
    );
    let link = s.session.same_device_link(DeviceLinkType::App2App).unwrap();
    let out = phone.run(&["scan", &link], Some(PIN2));
    let b = result(&server, &s.id);
    c.eq(
        "App2App signature ends OK",
        b["result"]["endResult"].as_str(),
        Some("OK"),
    );
    let url = out.as_deref().ok().and_then(|o| url_starting_with(o, &cb));
    c.eq(
        "App2App signature: the callback carries sessionSecretDigest only",
        url.clone(),
        Some(format!("{cb}&sessionSecretDigest={}", secret_digest(&s))),
    );
    let sign_status: SessionStatusResponse = serde_json::from_value(b.clone()).unwrap();
    let checked = url
        .as_deref()
        .map(|u| s.session.check_callback(u, &sign_status));
    c.check(
        "the RP library's callback check accepts the phone's callback URL (App2App signature)",
        matches!(checked, Some(Ok(_))),
        format_args!("{checked:?}"),
    );
    let req: DeviceLinkSigningRequest = serde_json::from_value(body).unwrap();
    let mut exp =
        client::SignatureExpectation::device_link(&req, &client::UserRef::Document(doc.clone()))
            .unwrap();
    exp.callback = Some(client::SameDeviceCallback {
        session_secret_b64: s.resp.session_secret.clone(),
        session_secret_digest: secret_digest(&s),
        user_challenge_verifier: None,
    });
    let v = client::verify::verify_signature(
        &serde_json::from_value(b).unwrap(),
        &exp,
        &anchors,
        SystemTime::now(),
    );
    c.check(
        "the RP library verifies the App2App signature with the callback's values",
        v.is_ok(),
        format_args!("{:?}", v.err()),
    );

    // A refused Web2App authentication also returns through the callback.
    let cb = callback("web-refused");
    let mut body = auth_body(
        RP_UUID,
        RP_NAME,
        &inter,
        &random_challenge(),
        "rsassa-pss",
        "SHA-512",
        false,
    );
    body["initialCallbackUrl"] = json!(cb);
    let s = start_device_link(&server, AUTH_DL_ANON, &body, Kind::Auth);
    let link = s.session.same_device_link(DeviceLinkType::Web2App).unwrap();
    let out = phone.run(&["scan", "--refuse", &link], None);
    c.eq(
        "a refused Web2App authentication ends USER_REFUSED",
        result(&server, &s.id)["result"]["endResult"].as_str(),
        Some("USER_REFUSED"),
    );
    let url = out.as_deref().ok().and_then(|o| url_starting_with(o, &cb));
    c.check(
        "a refused same-device flow also returns to the callback URL, with sessionSecretDigest",
        url.as_deref().is_some_and(|u| {
            u.starts_with(&format!("{cb}&sessionSecretDigest={}", secret_digest(&s)))
        }),
        format_args!("{out:?}"),
    );

    // Linked: an App2App certificate choice, then the linked signing; the callback comes at
    // the end with the certificate choice's values.
    let cb = callback("app-linked");
    let mut body = cert_choice_body(RP_UUID, RP_NAME);
    body["initialCallbackUrl"] = json!(cb);
    let s = start_device_link(&server, CERT_DL_ANON, &body, Kind::Cert);
    let link = s.session.same_device_link(DeviceLinkType::App2App).unwrap();
    let out = phone.run(&["scan", &link], None);
    c.eq(
        "App2App certificate choice ends OK",
        result(&server, &s.id)["result"]["endResult"].as_str(),
        Some("OK"),
    );
    c.check(
        "the certificate choice is answered by the simulator",
        out.is_ok(),
        format_args!("{out:?}"),
    );
    let mut linked = sign_body(
        RP_UUID,
        RP_NAME,
        &pin_interaction("Sign contract 46"),
        &digest,
        "rsassa-pss",
        "SHA-512",
    );
    linked["linkedSessionID"] = json!(s.id);
    let id = session_id(&start(
        &server,
        &format!("/v3/signature/notification/linked/{doc}"),
        &linked,
    ));
    let out = phone.run(&["confirm", &id], Some(PIN2));
    c.eq(
        "the linked signing ends OK",
        result(&server, &id)["result"]["endResult"].as_str(),
        Some("OK"),
    );
    let url = out.as_deref().ok().and_then(|o| url_starting_with(o, &cb));
    c.eq(
        "Callback URLs in linked flows: after the linked signing the app opens the certificate choice's callback URL",
        url.clone(),
        Some(format!("{cb}&sessionSecretDigest={}", secret_digest(&s))),
    );
    let linked_status: SessionStatusResponse =
        serde_json::from_value(result(&server, &id)).unwrap();
    let checked = url
        .as_deref()
        .map(|u| s.session.check_callback(u, &linked_status));
    c.check(
        "the RP library checks the linked signing's callback against the certificate choice's session",
        matches!(checked, Some(Ok(_))),
        format_args!("{checked:?}"),
    );
    c.finish();
}

/// The simulated phone answers every session type through `pending` / `confirm` / `refuse`
/// (issue 20 item 3), here the certificate choice by notification of overview_of_api_endpoints
/// ("Notification based certificate-choice session endpoint can also be used") and its
/// refusal: openapi `USER_REFUSED_CERT_CHOICE` "user has multiple accounts and pressed Cancel
/// on device choice screen". Gap (C) of issue 20 until it lands.
#[tokio::test(flavor = "multi_thread")]
async fn notification_based_flows__simulated_phone_answers_certificate_choice() {
    let server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let phone = CliPhone::register(&server, &MARY, "phone").await;
    let mut c = Checks::new("notification_based_flows__simulated_phone_answers_certificate_choice");
    let path = format!("/v3/signature/certificate-choice/notification/etsi/{MARY_ETSI}");
    let id = session_id(&start(&server, &path, &cert_choice_body(RP_UUID, RP_NAME)));
    let listed = phone.run(&["pending", "--wait", "5"], None);
    c.check(
        "tandem device pending lists the certificate choice",
        listed.as_deref().is_ok_and(|o| o.contains(&id)),
        format_args!("{listed:?}"),
    );
    let out = phone.run(&["confirm", &id], None);
    c.check(
        "tandem device confirm answers a certificate choice by notification",
        out.is_ok(),
        format_args!("{out:?}"),
    );
    let b = result(&server, &id);
    c.eq(
        "the certificate choice ends OK",
        b["result"]["endResult"].as_str(),
        Some("OK"),
    );
    c.eq(
        "the result carries the phone's signing certificate",
        b["cert"]["value"]
            .as_str()
            .and_then(|v| STANDARD.decode(v).ok()),
        Some(
            phone
                .state()
                .key_pair(KeyType::Sign)
                .unwrap()
                .certificate
                .clone(),
        ),
    );
    let id = session_id(&start(&server, &path, &cert_choice_body(RP_UUID, RP_NAME)));
    let _ = phone.run(&["pending", "--wait", "5"], None);
    let out = phone.run(&["refuse", &id, "--reason", "cert-choice"], None);
    c.check(
        "tandem device refuse --reason cert-choice refuses the certificate choice",
        out.is_ok(),
        format_args!("{out:?}"),
    );
    c.eq(
        "USER_REFUSED_CERT_CHOICE: the person declined to pick an account",
        result(&server, &id)["result"]["endResult"].as_str(),
        Some("USER_REFUSED_CERT_CHOICE"),
    );
    c.finish();
}
