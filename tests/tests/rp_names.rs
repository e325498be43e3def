//! A relying party with several names (api_details.txt: relyingPartyName "is case-insensitive
//! and must match one of the names configured for the calling RP"), changed with the operator
//! commands while the server runs:
//!
//! - a name added with `tandem operator rp-name-add` admits REST sessions at once, in any case;
//!   a name the relying party does not have gets 401, and so does a removed one;
//! - a name that folds like one the relying party has is refused, and so is removing its last
//!   name; `rp-add --name A --name B` registers several at once;
//! - the session keeps the name as the relying party sent it: the phone shows it, and the
//!   authCode and the ACSP_V2 signature `tandem rp-api login` verifies are made over it;
//! - every change is an audit record, and the audit chain stays intact.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tandem_tests::*;

/// The name added to the test relying party.
const ONLINE: &str = "Tandem Bank Online";

/// Starts an anonymous device-link authentication as relying party `uuid` named `name`;
/// returns the HTTP status and the answer.
fn start(server: &TestServer, uuid: &str, name: &str) -> (u16, serde_json::Value) {
    let mut challenge = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut challenge);
    let body = json!({
        "relyingPartyUUID": uuid,
        "relyingPartyName": name,
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": {
            "rpChallenge": STANDARD.encode(challenge),
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": b64_json(r#"[{"type":"displayTextAndPIN","displayText60":"Log in"}]"#),
    });
    rest(
        server,
        "POST",
        "/v3/authentication/device-link/anonymous",
        &body.to_string(),
    )
    .unwrap()
}

fn status(server: &TestServer, uuid: &str, name: &str) -> u16 {
    let (s, b) = start(server, uuid, name);
    if s == 200 {
        assert!(b["sessionID"].is_string(), "{b}");
    }
    s
}

/// `tandem operator ARGS`; the error text when it fails.
fn operator_error(server: &TestServer, args: &[&str]) -> String {
    server.operator(args).unwrap_err().to_string()
}

/// The line of `tandem operator rps` for `uuid`.
fn rps_line(server: &TestServer, uuid: &str) -> String {
    let out = server.operator(&["rps"]).unwrap();
    out.lines()
        .find(|l| l.starts_with(uuid))
        .unwrap_or_else(|| panic!("{uuid} not listed:\n{out}"))
        .to_owned()
}

/// Waits (at most 30 s) until `path` exists and is not empty.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(path).map_or(true, |s| s.trim().is_empty()) {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn names_added_and_removed_on_a_running_server() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    assert!(rps_line(&server, RP_UUID).contains(&format!("{RP_NAME:?}  from")));
    assert_eq!(status(&server, RP_UUID, ONLINE), 401, "not a name yet");

    // Added while the server runs: admitted at once, in any case, beside the first name.
    let out = server
        .operator(&["rp-name-add", RP_UUID, "--name", ONLINE])
        .unwrap();
    assert!(out.contains(ONLINE), "{out}");
    assert!(
        rps_line(&server, RP_UUID).contains(&format!("{RP_NAME:?}, {ONLINE:?}")),
        "{}",
        rps_line(&server, RP_UUID)
    );
    for sent in [ONLINE, "tandem bank online", "TANDEM BANK ONLINE", RP_NAME] {
        assert_eq!(status(&server, RP_UUID, sent), 200, "{sent}");
    }
    for sent in [
        "Tandem Bank Offline",
        "Tandem Bank",
        "Tandem Bank Online Ltd",
    ] {
        let (s, b) = start(&server, RP_UUID, sent);
        assert_eq!(s, 401, "{sent}: {b}");
        assert_eq!(b["status"], json!(401), "{b}");
    }

    // The same name in another case, or the same bytes, is refused and changes nothing.
    for dup in ["tandem bank ONLINE", ONLINE, "tandem test bank"] {
        let e = operator_error(&server, &["rp-name-add", RP_UUID, "--name", dup]);
        assert!(
            e.contains("already has the name") && e.contains("ignoring case"),
            "{dup}: {e}"
        );
    }
    let e = operator_error(&server, &["rp-name-add", RP_UUID, "--name", " "]);
    assert!(e.contains("1 to 100 characters"), "{e}");
    let e = operator_error(
        &server,
        &[
            "rp-name-add",
            "00000000-0000-4000-8000-00000000beef",
            "--name",
            "Bank",
        ],
    );
    assert!(e.contains("no active relying party"), "{e}");
    assert!(rps_line(&server, RP_UUID).contains(&format!("{RP_NAME:?}, {ONLINE:?}  from")));

    // A QR login that names the relying party in yet another spelling: the phone shows that
    // spelling, and `tandem rp-api login` verifies the authCode and the ACSP_V2 signature
    // over it (both fail if the server used a configured spelling instead).
    let sent = "TANDEM bank online";
    let tmp = server.tmp.path();
    let phone = tmp.join("phone");
    let ca = server.data_dir.join("tls/server.crt");
    let device = |args: &[&str]| {
        let mut c = Command::new(tandem_bin());
        c.args(["--log", "warn", "device", "--dir"])
            .arg(&phone)
            .arg("--ca")
            .arg(&ca)
            .args(["--server", &server.url])
            .args(args)
            .env("TANDEM_PIN1", "1234")
            .env("TANDEM_PIN2", "12345")
            .env("TANDEM_PIN", "1234")
            .stdin(Stdio::null());
        let out = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "device {args:?}: {stdout}{stderr}");
        (stdout, stderr)
    };
    let (out, _) = device(&["register-start"]);
    server
        .approve(field(&out, "registration code:"), &MARY)
        .unwrap();
    device(&[
        "register-finish",
        "--key-bits",
        "2048",
        "--insecure-fast-kdf",
    ]);
    let link_file = tmp.join("link.txt");
    let mut login = Command::new(tandem_bin())
        .args(["--log", "warn", "rp-api"])
        .args(["--api", &format!("{}/v3", server.rest_url)])
        .arg("--trust")
        .arg(&server.data_dir)
        .args(["login", "--text", "Log in to Tandem Bank Online"])
        .arg("--link-file")
        .arg(&link_file)
        .env("TANDEM_RP_UUID", RP_UUID)
        .env("TANDEM_RP_NAME", sent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&link_file);
    let (out, shown) = device(&["scan", &format!("@{}", link_file.display())]);
    assert!(out.contains("ACCEPTED"), "{out}");
    assert!(
        shown.contains(&format!("{sent} asks: \"Log in to Tandem Bank Online\"")),
        "the phone shows the name as sent: {shown}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while login.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            login.kill().unwrap();
            panic!(
                "rp-api login did not finish: {:?}",
                login.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = login.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "session result: OK (COMPLETE, OK, ACSP_V2)",
        "signature: OK (RSASSA-PSS SHA-512 over the ACSP_V2 payload)",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in\n{stdout}");
    }

    // Removed (named in any case): refused from then on; the first name still works, and
    // it cannot be removed as the last one.
    let out = server
        .operator(&["rp-name-remove", RP_UUID, "--name", "TANDEM BANK ONLINE"])
        .unwrap();
    assert!(out.contains(&format!("{ONLINE:?}")), "{out}");
    assert_eq!(status(&server, RP_UUID, ONLINE), 401);
    assert_eq!(status(&server, RP_UUID, RP_NAME), 200);
    let e = operator_error(&server, &["rp-name-remove", RP_UUID, "--name", RP_NAME]);
    assert!(e.contains("last name"), "{e}");
    let e = operator_error(&server, &["rp-name-remove", RP_UUID, "--name", ONLINE]);
    assert!(e.contains("has no name"), "{e}");
    assert_eq!(status(&server, RP_UUID, RP_NAME), 200);

    // Several names at creation; two that fold alike are refused and register nothing.
    let multi = "00000000-0000-4000-8000-0000000000e1";
    let e = operator_error(
        &server,
        &[
            "rp-add",
            "--uuid",
            multi,
            "--name",
            "Straße Bank",
            "--name",
            "STRASSE BANK",
        ],
    );
    assert!(e.contains("same name ignoring case"), "{e}");
    assert!(!server.operator(&["rps"]).unwrap().contains(multi));
    server
        .operator(&[
            "rp-add",
            "--uuid",
            multi,
            "--name",
            "Straße Bank",
            "--name",
            "Strasse Online",
        ])
        .unwrap();
    for sent in ["STRASSE BANK", "strasse online"] {
        assert_eq!(status(&server, multi, sent), 200, "{sent}");
    }
    assert_eq!(status(&server, multi, RP_NAME), 401, "another RP's name");

    // Every change is in the audit log, the refusals are not, and the chain holds.
    let audit = server.operator(&["audit"]).unwrap();
    assert_eq!(
        audit.matches("relying_party_name_added").count(),
        1,
        "{audit}"
    );
    assert_eq!(audit.matches("relying_party_name_removed").count(), 1);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("relying_party_added") && l.contains("Strasse Online")),
        "{audit}"
    );
    server.assert_audit_intact();
}
