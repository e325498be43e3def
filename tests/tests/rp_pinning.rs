//! HTTPS key pinning of the RP library and `tandem rp-api` (api_details.txt: "The RP must
//! implement HTTPS key (or certificate) pinning"), against a real server whose REST API is
//! served over TLS on 127.0.0.1 with its self-signed certificate (`tls/server.crt`).
//!
//! The pin is computed three ways that must agree: `tandem rp-api pin --cert` (the file),
//! `tandem rp-api pin` (the certificate the running server presents) and OpenSSL. Then:
//! the right pin starts a session; a wrong pin fails with the typed error before any request
//! (the server logs a failed TLS handshake and no session start); several pins work if one
//! matches; a pin does not replace chain validation; pins need HTTPS.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, Instant};

use tandem_server::rp_api::types::{
    AuthCertificateLevel, AuthSignatureProtocol, AuthSignatureProtocolParameters,
    DeviceLinkAuthenticationRequest, HashAlgorithm, Interaction, SignatureAlgorithm,
    SignatureAlgorithmParametersInRequest, encode_interactions,
};
use tandem_server::rp_client::{
    self, AuthTarget, ClientConfig, RpApiClient, SpkiPin, generate_rp_challenge,
};
use tandem_tests::*;

const SESSION_STARTED: &str = "REST session started";
const HANDSHAKE_FAILED: &str = "TLS handshake failed";

/// A pin of a key nobody has (SHA-256 of the empty string).
const OTHER_PIN: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

fn auth_request() -> DeviceLinkAuthenticationRequest {
    DeviceLinkAuthenticationRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        initial_callback_url: None,
        certificate_level: Some(AuthCertificateLevel::Qualified),
        signature_protocol: AuthSignatureProtocol::AcspV2,
        signature_protocol_parameters: AuthSignatureProtocolParameters {
            rp_challenge: generate_rp_challenge(&mut rand::rngs::OsRng),
            signature_algorithm: SignatureAlgorithm::RsassaPss,
            signature_algorithm_parameters: Some(SignatureAlgorithmParametersInRequest {
                hash_algorithm: HashAlgorithm::Sha512,
            }),
        },
        interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
            display_text60: "Log in to Tandem Test Bank".into(),
        }]),
        request_properties: None,
        capabilities: None,
        nonce: None,
    }
}

fn count(server: &TestServer, what: &str) -> usize {
    server.log().matches(what).count()
}

/// Waits (at most 10 s) until the server has logged `what` more than `before` times.
fn wait_for_log(server: &TestServer, what: &str, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(server, what) <= before {
        assert!(
            Instant::now() < deadline,
            "the server never logged {what:?}: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client(server: &TestServer, pins: &[&str]) -> RpApiClient {
    let mut cfg =
        ClientConfig::new(format!("{}/v3", server.rest_url)).with_extra_root_pem(server.ca.clone());
    for p in pins {
        cfg = cfg.with_pin(p.parse().unwrap());
    }
    RpApiClient::new(cfg).unwrap()
}

/// `tandem rp-api` against the server, trusting its certificate; (success, stdout, stderr).
fn rp_api(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(tandem_bin())
        .arg("rp-api")
        .args(["--api", &format!("{}/v3", server.rest_url)])
        .arg("--tls-ca")
        .arg(server.data_dir.join("tls/server.crt"))
        .args(args)
        .env("TANDEM_RP_UUID", RP_UUID)
        .env("TANDEM_RP_NAME", RP_NAME)
        .env_remove("TANDEM_RP_API_PIN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rp_client_pins_the_server_key() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    assert!(server.rest_url.starts_with("https://127.0.0.1:"));
    let cert = server.data_dir.join("tls/server.crt");

    // The pin, three ways.
    let from_file = tandem(&["rp-api", "pin", "--cert", cert.to_str().unwrap()]).unwrap();
    let pin = from_file.trim().to_owned();
    let (ok, presented, err) = rp_api(&server, &["pin"]);
    assert!(ok, "{err}");
    assert_eq!(
        presented.trim(),
        pin,
        "the running server presents the file's key"
    );
    assert!(err.contains("server certificate"), "{err}");
    let dir = server.tmp.path();
    let (ok, pubkey) = openssl(
        dir,
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-noout",
            "-pubkey",
            "-out",
            "pub.pem",
        ],
    );
    assert!(ok, "{pubkey}");
    let (ok, out) = openssl(
        dir,
        &[
            "pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "spki.der",
        ],
    );
    assert!(ok, "{out}");
    let spki = std::fs::read(dir.join("spki.der")).unwrap();
    assert_eq!(
        SpkiPin::of_spki_der(&spki).to_string(),
        pin,
        "OpenSSL agrees"
    );
    assert_ne!(pin, OTHER_PIN);

    // The right pin: the session starts.
    let started = count(&server, SESSION_STARTED);
    let r = client(&server, &[&pin])
        .device_link_authentication(&AuthTarget::Anonymous, &auth_request())
        .await
        .unwrap();
    assert!(!r.session_id.is_empty());
    wait_for_log(&server, SESSION_STARTED, started);

    // A wrong pin: the typed error naming the presented key, raised in the handshake. The
    // server sees the handshake fail and no request.
    let started = count(&server, SESSION_STARTED);
    let failed = count(&server, HANDSHAKE_FAILED);
    let e = client(&server, &[OTHER_PIN])
        .device_link_authentication(&AuthTarget::Anonymous, &auth_request())
        .await
        .unwrap_err();
    match &e {
        rp_client::Error::PinMismatch { mismatch, .. } => {
            assert_eq!(mismatch.presented.to_string(), pin);
            assert_eq!(mismatch.pinned, vec![OTHER_PIN.parse().unwrap()]);
        }
        other => panic!("not a pin mismatch: {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&pin) && msg.contains("none of the pinned"),
        "{msg}"
    );
    wait_for_log(&server, HANDSHAKE_FAILED, failed);
    // Every request the server reads starts a session here; give a stray one time to show.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count(&server, SESSION_STARTED),
        started,
        "a request reached the server: {}",
        server.log()
    );

    // Several pins, one of them right (the key rotation case): works.
    let r = client(&server, &[OTHER_PIN, &pin])
        .device_link_authentication(&AuthTarget::Anonymous, &auth_request())
        .await
        .unwrap();
    assert!(!r.session_id.is_empty());
    wait_for_log(&server, SESSION_STARTED, started);

    // A matching pin does not stand in for the chain: without the server's certificate as a
    // root the connection fails on the chain (not as a pin mismatch), before any request.
    let started = count(&server, SESSION_STARTED);
    let no_root = RpApiClient::new(
        ClientConfig::new(format!("{}/v3", server.rest_url)).with_pin(pin.parse().unwrap()),
    )
    .unwrap();
    let e = no_root
        .device_link_authentication(&AuthTarget::Anonymous, &auth_request())
        .await
        .unwrap_err();
    assert!(matches!(e, rp_client::Error::Transport { .. }), "{e:?}");
    assert_eq!(count(&server, SESSION_STARTED), started);

    // Pins need HTTPS.
    let e =
        RpApiClient::new(ClientConfig::new("http://127.0.0.1:1/v3").with_pin(pin.parse().unwrap()))
            .unwrap_err();
    assert!(e.to_string().contains("pinning needs https"), "{e}");

    // The command line: a status request for an unknown session reaches the server (404)
    // with the right pin or a list holding it, and is refused before sending with a wrong one.
    let unknown = "6f9619ff-8b86-4011-b42d-00c04fc964ff";
    for pins in [pin.clone(), format!("{OTHER_PIN},{pin}")] {
        let (ok, _, err) = rp_api(&server, &["--pin-sha256", &pins, "status", unknown]);
        assert!(!ok && err.contains("HTTP 404"), "{pins}: {err}");
    }
    let failed = count(&server, HANDSHAKE_FAILED);
    let (ok, _, err) = rp_api(&server, &["--pin-sha256", OTHER_PIN, "status", unknown]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("none of the pinned") && err.contains(&pin) && err.contains("hint:"),
        "{err}"
    );
    assert!(!err.contains("HTTP 404"), "{err}");
    wait_for_log(&server, HANDSHAKE_FAILED, failed);
    // The same through the environment, as a deployment would set it.
    let out = std::process::Command::new(tandem_bin())
        .args(["rp-api", "--api", &format!("{}/v3", server.rest_url)])
        .arg("--tls-ca")
        .arg(&cert)
        .args(["status", unknown])
        .env("TANDEM_RP_API_PIN", OTHER_PIN)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("none of the pinned"),
        "{err}"
    );
    // A malformed pin is refused before anything is done.
    let (ok, _, err) = rp_api(&server, &["--pin-sha256", "AAAA", "status", unknown]);
    assert!(!ok && err.contains("decodes to 3 bytes"), "{err}");
}
