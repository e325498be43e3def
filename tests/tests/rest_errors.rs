//! Error answers, relying-party name matching and callback URL checks of the REST API
//! (Smart-ID RP API v3 compatible), against a real server process over 127.0.0.1 with raw
//! HTTP/1.1 requests, so that headers (`Content-Type`, `Retry-After`, `Allow`) are exactly what
//! a relying party's client sees.
//!
//! - every error is an RFC 9457 problem document (`application/problem+json`): 400 (malformed
//!   JSON, wrong types, bad path), 401, 404, 405, 413, 415, 429 with `Retry-After`;
//! - `relyingPartyName` is matched with Unicode default case folding (docs/RP_API.md);
//! - `initialCallbackUrl`: its form, where it may appear, and that a Web2App / App2App link
//!   needs a session that has one.

#![allow(clippy::unwrap_used)] // tests

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tandem_client_core::grpc as dev;
use tandem_rp::api::device_link::{
    self, AuthCodeContext, DeviceLinkType, LinkParams, SessionBinding, SessionType,
};
use tandem_tests::*;

/// The request body limit of the REST API (`MAX_BODY` in server/src/rest.rs).
const MAX_BODY: usize = 64 * 1024;

/// One raw HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 request with exactly the given headers (plus `Host`, `Connection: close` and
/// `Content-Length` when there is a body) to the REST listener.
fn raw(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let addr = server.rest_url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before it has read a large body: a failed write
    // is not the test's verdict, the answer is.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // A reset after the answer (unread request body) ends the answer.
            Err(_) if !response.is_empty() => break,
            Err(e) => panic!("no answer to {method} {path}: {e}"),
        }
    }
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header end");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = response[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + size]);
        b = &b[end + 2 + size + 2..];
    }
    out
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// POST with `Content-Type: application/json`.
fn post(server: &TestServer, path: &str, body: &str) -> Answer {
    raw(server, "POST", path, &[JSON], body.as_bytes())
}

/// Asserts an RFC 9457 problem document with this status; returns it.
fn assert_problem(a: &Answer, status: u16) -> Value {
    let b = a.json();
    assert_eq!(a.status, status, "{a:?} {b}");
    assert_eq!(
        a.header("content-type"),
        Some("application/problem+json"),
        "{a:?}"
    );
    assert_eq!(b["status"], json!(status), "{b}");
    assert_eq!(b["type"], json!("about:blank"), "{b}");
    assert!(b["title"].as_str().is_some_and(|t| !t.is_empty()), "{b}");
    assert!(b["detail"].as_str().is_some_and(|t| !t.is_empty()), "{b}");
    b
}

/// Asserts a 400 problem whose `errors` name `initialCallbackUrl`; returns the detail.
fn assert_callback_problem(a: &Answer) -> String {
    let b = assert_problem(a, 400);
    let e = &b["errors"][0];
    assert_eq!(e["paramName"], json!("initialCallbackUrl"), "{b}");
    assert_eq!(e["pointer"], json!("/initialCallbackUrl"), "{b}");
    let d = e["detail"].as_str().unwrap().to_owned();
    assert!(d.starts_with("Invalid initialCallbackUrl: "), "{d}");
    d
}

fn random_challenge() -> String {
    let mut b = [0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    STANDARD.encode(b)
}

fn interactions() -> String {
    b64_json(r#"[{"type":"displayTextAndPIN","displayText60":"Log in to Tandem Test Bank"}]"#)
}

/// A device-link authentication request (the anonymous one needs no account to start).
fn dl_auth(uuid: &str, name: &str, challenge: &str, callback: Option<&str>) -> Value {
    let mut v = json!({
        "relyingPartyUUID": uuid,
        "relyingPartyName": name,
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": {
            "rpChallenge": challenge,
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": interactions(),
    });
    if let Some(c) = callback {
        v["initialCallbackUrl"] = json!(c);
    }
    v
}

const ANON: &str = "/v3/authentication/device-link/anonymous";
const CALLBACK: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";

fn started_sessions(server: &TestServer) -> usize {
    server
        .operator(&["audit"])
        .unwrap()
        .matches("transaction_started")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_a_problem_document() {
    // Rate limit: 1 per second, bursts of 6, per relying party.
    let rp_api = rp_api_table(60, false)
        .replace("rate_limit_per_second = 50", "rate_limit_per_second = 1")
        .replace("rate_limit_burst = 100", "rate_limit_burst = 6");
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api),
        ..Default::default()
    })
    .unwrap();
    let before = started_sessions(&server);
    let good = dl_auth(RP_UUID, RP_NAME, &random_challenge(), None).to_string();

    // 404: unknown paths inside and outside the base path, any method.
    for (m, p) in [
        ("GET", "/v3/nothing-here"),
        ("POST", "/v3/authentication/device-link/nobody"),
        ("GET", "/elsewhere"),
        ("DELETE", "/"),
    ] {
        let b = assert_problem(&raw(&server, m, p, &[JSON], b"{}"), 404);
        assert_eq!(b["title"], json!("Not Found"));
    }

    // 405: a known path with another method; `Allow` says which.
    let a = raw(&server, "GET", ANON, &[], b"");
    let b = assert_problem(&a, 405);
    assert_eq!(b["title"], json!("Method Not Allowed"));
    assert_eq!(a.header("allow"), Some("POST"), "{a:?}");
    let a = raw(
        &server,
        "PUT",
        "/v3/session/6f9619ff-8b86-4011-b42d-00c04fc964ff",
        &[JSON],
        b"{}",
    );
    assert_problem(&a, 405);
    assert!(a.header("allow").unwrap().contains("GET"), "{a:?}");

    // 415: a POST whose body is not declared as application/json, also when undeclared.
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=iso-8859-1"),
        Some("text/json"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("Content-Type", c)).into_iter().collect();
        let a = raw(&server, "POST", ANON, &headers, good.as_bytes());
        let b = assert_problem(&a, 415);
        assert_eq!(b["title"], json!("Unsupported Media Type"), "{ct:?}");
        assert!(b["detail"].as_str().unwrap().contains("application/json"));
    }
    // ... while JSON with its charset, in any letter case, is accepted.
    for ct in [
        "application/json; charset=utf-8",
        "Application/JSON;charset=\"UTF-8\"",
    ] {
        let body = dl_auth(RP_UUID, RP_NAME, &random_challenge(), None).to_string();
        let a = raw(
            &server,
            "POST",
            ANON,
            &[("Content-Type", ct)],
            body.as_bytes(),
        );
        assert_eq!(a.status, 200, "{ct}: {a:?}");
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert!(a.json()["sessionID"].is_string());
    }
    assert_eq!(started_sessions(&server), before + 2);

    // 413: one byte over the limit; a valid request padded to exactly the limit passes.
    let mut padded = dl_auth(RP_UUID, RP_NAME, &random_challenge(), None).to_string();
    padded.push_str(&" ".repeat(MAX_BODY - padded.len()));
    assert_eq!(padded.len(), MAX_BODY);
    assert_eq!(post(&server, ANON, &padded).status, 200);
    padded.push(' ');
    let b = assert_problem(&post(&server, ANON, &padded), 413);
    assert_eq!(b["title"], json!("Content Too Large"));
    assert!(b["detail"].as_str().unwrap().contains("65536"), "{b}");
    let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(4 * MAX_BODY));
    assert_problem(&post(&server, ANON, &huge), 413);

    // 400: malformed JSON, wrong field types, missing fields, a path that is not UTF-8.
    let b = assert_problem(&post(&server, ANON, "{not json"), 400);
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("Invalid request body"),
        "{b}"
    );
    assert_problem(&post(&server, ANON, ""), 400);
    let wrong_type = good.replace(
        &format!("\"relyingPartyUUID\":\"{RP_UUID}\""),
        "\"relyingPartyUUID\":5",
    );
    assert_ne!(wrong_type, good);
    let b = assert_problem(&post(&server, ANON, &wrong_type), 400);
    assert!(
        b["detail"].as_str().unwrap().contains("invalid type"),
        "{b}"
    );
    assert_problem(&post(&server, ANON, "[]"), 400);
    assert_problem(&post(&server, ANON, r#"{"relyingPartyUUID":"x"}"#), 400);
    assert_problem(
        &post(
            &server,
            "/v3/authentication/notification/document/%FF%FE",
            &good,
        ),
        400,
    );
    let b = assert_problem(
        &raw(
            &server,
            "GET",
            "/v3/session/6f9619ff-8b86-4011-b42d-00c04fc964ff?timeoutMs=x",
            &[],
            b"",
        ),
        400,
    );
    assert_eq!(b["errors"][0]["paramName"], json!("timeoutMs"), "{b}");

    // 401: an unknown relying party.
    let stranger = good.replace(RP_UUID, "00000000-0000-4000-8000-00000000dead");
    assert_problem(&post(&server, ANON, &stranger), 401);
    assert_eq!(
        started_sessions(&server),
        before + 3,
        "a refused request left a session"
    );

    // 429 with Retry-After: a second relying party spends its burst of 6; the answer says to
    // wait 1 s (one token per second), and after that second the next request passes.
    let rate_uuid = "00000000-0000-4000-8000-00000000a429";
    server
        .operator(&["rp-add", "--uuid", rate_uuid, "--name", "Busy Bank"])
        .unwrap();
    let t0 = Instant::now();
    let mut passed = 0;
    let limited = loop {
        let body = dl_auth(rate_uuid, "Busy Bank", &random_challenge(), None).to_string();
        let a = post(&server, ANON, &body);
        if a.status != 200 {
            break a;
        }
        passed += 1;
        assert!(passed <= 12, "no 429 after {passed} requests");
    };
    let b = assert_problem(&limited, 429);
    assert_eq!(b["title"], json!("Too Many Requests"));
    // The bucket started full (6) and gained one token per second meanwhile.
    let elapsed = t0.elapsed().as_secs() as usize;
    assert!(
        (6..=6 + elapsed + 1).contains(&passed),
        "{passed} passed in {elapsed} s"
    );
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(retry, 1, "one token per second: wait at most a second");
    let sessions = started_sessions(&server);
    std::thread::sleep(Duration::from_secs(retry));
    let body = dl_auth(rate_uuid, "Busy Bank", &random_challenge(), None).to_string();
    let a = post(&server, ANON, &body);
    assert_eq!(a.status, 200, "after Retry-After: {a:?}");
    assert_eq!(started_sessions(&server), sessions + 1);
    // Other relying parties are not limited by this one's bucket.
    assert_eq!(
        post(
            &server,
            ANON,
            &dl_auth(RP_UUID, RP_NAME, &random_challenge(), None).to_string()
        )
        .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn relying_party_name_is_matched_without_case() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let rps = [
        ("00000000-0000-4000-8000-0000000000d1", "DEMO"),
        ("00000000-0000-4000-8000-0000000000d2", "Straße Bank"),
        ("00000000-0000-4000-8000-0000000000d3", "İSTANBUL BANK"),
        ("00000000-0000-4000-8000-0000000000d4", "ΟΔΟΣ"),
    ];
    for (uuid, name) in rps {
        server
            .operator(&["rp-add", "--uuid", uuid, "--name", name])
            .unwrap();
    }
    let try_name = |uuid: &str, name: &str| {
        let body = dl_auth(uuid, name, &random_challenge(), None).to_string();
        post(&server, ANON, &body)
    };
    let upper = RP_NAME.to_uppercase();
    for (uuid, sent) in [
        (rps[0].0, "DEMO"),
        (rps[0].0, "demo"),
        (rps[0].0, "Demo"),
        (rps[1].0, "STRASSE BANK"),
        (rps[1].0, "straße bank"),
        (rps[1].0, "STRAẞE BANK"),
        (rps[2].0, "i\u{307}stanbul bank"),
        (rps[3].0, "οδος"),
        (rps[3].0, "οδοσ"),
        (RP_UUID, upper.as_str()),
    ] {
        let a = try_name(uuid, sent);
        assert_eq!(a.status, 200, "{sent}: {a:?}");
        assert!(a.json()["sessionID"].is_string());
    }
    for (uuid, sent) in [
        (rps[0].0, "DEMO2"),
        (rps[0].0, "DEM0"),
        (rps[1].0, "STRASE BANK"),
        // Default (not Turkic) folding: İ is i + combining dot above, ı is not i.
        (rps[2].0, "istanbul bank"),
        (rps[2].0, "ıstanbul bank"),
        // Another relying party's name.
        (rps[1].0, "DEMO"),
    ] {
        let b = assert_problem(&try_name(uuid, sent), 401);
        assert_eq!(b["title"], json!("Unauthorized"), "{sent}");
    }

    // The name as sent is the one in the session: the authCode of a device link is computed
    // with it (the relying party's own spelling), and the app accepts that link.
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let challenge = random_challenge();
    let a = post(
        &server,
        ANON,
        &dl_auth(rps[0].0, "demo", &challenge, None).to_string(),
    );
    assert_eq!(a.status, 200, "{a:?}");
    let start = a.json();
    let ctx_interactions = interactions();
    let ctx = AuthCodeContext {
        scheme_name: "smart-id",
        binding: SessionBinding::Auth {
            rp_challenge: &challenge,
        },
        relying_party_name: "demo",
        brokered_rp_name: None,
        interactions: &ctx_interactions,
        initial_callback_url: None,
    };
    let link = qr_link(&start, &ctx);
    let t = dev::claim_device_link(&client, &state, &link)
        .await
        .unwrap();
    assert_eq!(t.relying_party_name, "demo");
}

/// A QR link for a device-link session start answer.
fn qr_link(start: &Value, ctx: &AuthCodeContext<'_>) -> String {
    link_of(start, ctx, DeviceLinkType::Qr)
}

fn link_of(start: &Value, ctx: &AuthCodeContext<'_>, link_type: DeviceLinkType) -> String {
    let secret = STANDARD
        .decode(start["sessionSecret"].as_str().unwrap())
        .unwrap();
    let session_type = match ctx.binding {
        SessionBinding::Auth { .. } => SessionType::Auth,
        SessionBinding::Sign { .. } => SessionType::Sign,
        SessionBinding::Cert => SessionType::Cert,
    };
    device_link::build_device_link(
        &LinkParams {
            device_link_base: DEVICE_LINK_BASE,
            link_type,
            session_token: start["sessionToken"].as_str().unwrap(),
            session_type,
            lang: "eng",
            elapsed_seconds: 0,
        },
        ctx,
        &secret,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn initial_callback_url_is_checked() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let before = started_sessions(&server);
    let with = |callback: &str| {
        let body = dl_auth(RP_UUID, RP_NAME, &random_challenge(), Some(callback)).to_string();
        post(&server, ANON, &body)
    };

    // Its form (openapi.yml InitialCallbackUrl): https, no fragment, '|' percent-encoded, a
    // URI (RFC 3986), a host and no user information, at most 1800 characters.
    for (bad, why) in [
        ("http://rp.example.com/cb", "https"),
        ("HTTPS://rp.example.com/cb", "https"),
        ("https://rp.example.com/cb#top", "fragment"),
        ("https://rp.example.com/cb?a=1|2", "%7C"),
        ("https://rp.example.com/c b", "URI"),
        ("https://rp.example.com/cb?q=ü", "URI"),
        ("https://rp.example.com/%zz", "percent-encoding"),
        ("https://user@rp.example.com/cb", "user information"),
        ("https:///cb", "host"),
        ("", "https"),
    ] {
        let d = assert_callback_problem(&with(bad));
        assert!(d.contains(why), "{bad}: {d}");
    }
    let too_long = format!("https://rp.example.com/{}", "a".repeat(1800 - 22));
    assert!(assert_callback_problem(&with(&too_long)).contains("1800"));
    let mut longest = too_long.clone();
    longest.pop();
    assert_eq!(with(&longest).status, 200);
    assert_eq!(
        with("https://rp.example.com/cb?a=1%7C2&b=x:y@z/w").status,
        200
    );
    assert_eq!(
        started_sessions(&server),
        before + 2,
        "refused requests left sessions"
    );

    // Device-link signing and certificate choice check it the same way.
    let cert_choice = json!({
        "relyingPartyUUID": RP_UUID,
        "relyingPartyName": RP_NAME,
        "initialCallbackUrl": "https://rp.example.com/cb#x",
    });
    assert_callback_problem(&post(
        &server,
        "/v3/signature/certificate-choice/device-link/anonymous",
        &cert_choice.to_string(),
    ));
    let mut sign: Value = serde_json::from_str(&rest_sign_body(SIGN_WITH_PIN, None)).unwrap();
    sign["initialCallbackUrl"] = json!("http://rp.example.com/cb");
    assert_callback_problem(&post(
        &server,
        "/v3/signature/device-link/document/PNOEE-30303039914-MOCK-Q",
        &sign.to_string(),
    ));

    // Notification requests have no callback (only same-device links call back): 400 naming
    // the field, even for a well-formed URL; `null` is the same as leaving it out.
    let mut notif_auth = dl_auth(RP_UUID, RP_NAME, &random_challenge(), Some(CALLBACK));
    notif_auth["vcType"] = json!("numeric4");
    let d = assert_callback_problem(&post(
        &server,
        "/v3/authentication/notification/etsi/PNOEE-30303039914",
        &notif_auth.to_string(),
    ));
    assert!(d.contains("notification"), "{d}");
    let mut notif_sign = sign.clone();
    notif_sign["initialCallbackUrl"] = json!(CALLBACK);
    assert_callback_problem(&post(
        &server,
        "/v3/signature/notification/document/PNOEE-30303039914-MOCK-Q",
        &notif_sign.to_string(),
    ));
    let mut linked = notif_sign.clone();
    linked["linkedSessionID"] = json!("6f9619ff-8b86-4011-b42d-00c04fc964ff");
    assert_callback_problem(&post(
        &server,
        "/v3/signature/notification/linked/PNOEE-30303039914-MOCK-Q",
        &linked.to_string(),
    ));
    let mut notif_cert = cert_choice.clone();
    notif_cert["initialCallbackUrl"] = json!(CALLBACK);
    assert_callback_problem(&post(
        &server,
        "/v3/signature/certificate-choice/notification/etsi/PNOEE-30303039914",
        &notif_cert.to_string(),
    ));
    notif_cert["initialCallbackUrl"] = Value::Null;
    let a = post(
        &server,
        "/v3/signature/certificate-choice/notification/etsi/PNOEE-30303039914",
        &notif_cert.to_string(),
    );
    assert_problem(&a, 404); // accepted; nobody by that identifier here
    assert_eq!(started_sessions(&server), before + 2);

    // Web2App / App2App links need a session started with a callback URL: the app's claim of
    // such a link for a QR-only session is refused (the session stays running for its QR
    // code); with a callback URL the same kind of link is accepted.
    let state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let client = server.device_client().await.unwrap();
    let ia = interactions();
    for link_type in [DeviceLinkType::Web2App, DeviceLinkType::App2App] {
        let challenge = random_challenge();
        let a = post(
            &server,
            ANON,
            &dl_auth(RP_UUID, RP_NAME, &challenge, None).to_string(),
        );
        assert_eq!(a.status, 200);
        let ctx = AuthCodeContext {
            scheme_name: "smart-id",
            binding: SessionBinding::Auth {
                rp_challenge: &challenge,
            },
            relying_party_name: RP_NAME,
            brokered_rp_name: None,
            interactions: &ia,
            initial_callback_url: None,
        };
        let e = dev::claim_device_link(&client, &state, &link_of(&a.json(), &ctx, link_type))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("initialCallbackUrl"), "{e}");
        let t = dev::claim_device_link(&client, &state, &qr_link(&a.json(), &ctx))
            .await
            .unwrap();
        assert_eq!(t.rp_api.unwrap().flow_type, "QR");

        let challenge = random_challenge();
        let a = post(
            &server,
            ANON,
            &dl_auth(RP_UUID, RP_NAME, &challenge, Some(CALLBACK)).to_string(),
        );
        assert_eq!(a.status, 200);
        let ctx = AuthCodeContext {
            binding: SessionBinding::Auth {
                rp_challenge: &challenge,
            },
            initial_callback_url: Some(CALLBACK),
            ..ctx
        };
        let t = dev::claim_device_link(&client, &state, &link_of(&a.json(), &ctx, link_type))
            .await
            .unwrap();
        let rp = t.rp_api.unwrap();
        assert_eq!(rp.flow_type, link_type.as_str());
        assert_eq!(rp.initial_callback_url, CALLBACK);
    }
}
