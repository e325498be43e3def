//! The RP library's and `tandem rp-api`'s checks of the RP API's HTTPS endpoint
//! (api_details.txt, RP API endpoint authentication), against a real server whose REST API
//! is served over TLS on 127.0.0.1.
//!
//! Pinning ("The RP must implement HTTPS key (or certificate) pinning"), with the server's
//! self-signed certificate (`tls/server.crt`): the pin is computed three ways that must agree,
//! `tandem rp-api pin --cert` (the file), `tandem rp-api pin` (the certificate the running
//! server presents) and OpenSSL. Then: the right pin starts a session; a wrong pin fails with
//! the typed error before any request (the server logs a failed TLS handshake and no session
//! start); several pins work if one matches; a pin does not replace chain validation; pins
//! need HTTPS.
//!
//! Revocation ("valid (not expired, signed by trusted CA and not revoked)"), with a server
//! certificate issued by a test CA (rcgen) and CRLs of that CA: a CRL listing the certificate,
//! an expired CRL and a CRL of another CA fail the handshake; a current CRL without it passes.

#![allow(clippy::unwrap_used)] // tests

use std::time::{Duration, Instant};

use tandem_rp::api::types::{
    AuthCertificateLevel, AuthSignatureProtocol, AuthSignatureProtocolParameters,
    DeviceLinkAuthenticationRequest, HashAlgorithm, Interaction, SignatureAlgorithm,
    SignatureAlgorithmParametersInRequest, encode_interactions,
};
use tandem_rp::client::{
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
    rp_api_trusting(server, &server.data_dir.join("tls/server.crt"), args)
}

/// `tandem rp-api` against the server, trusting `tls_ca`; (success, stdout, stderr).
fn rp_api_trusting(
    server: &TestServer,
    tls_ca: &std::path::Path,
    args: &[&str],
) -> (bool, String, String) {
    let out = std::process::Command::new(tandem_bin())
        .arg("rp-api")
        .args(["--api", &format!("{}/v3", server.rest_url)])
        .arg("--tls-ca")
        .arg(tls_ca)
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
        client::Error::PinMismatch { mismatch, .. } => {
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
    assert!(matches!(e, client::Error::Transport { .. }), "{e:?}");
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

/// A CA (rcgen, P-256) that issues the server's TLS certificate and CRLs.
struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self { params, key, pem }
    }

    fn issuer(&self) -> rcgen::Issuer<'_, &rcgen::KeyPair> {
        rcgen::Issuer::from_params(&self.params, &self.key)
    }

    /// A TLS server certificate for 127.0.0.1 with `serial`; (certificate PEM, key PEM).
    fn server_certificate(&self, serial: u64) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Tandem RP API (CA-issued)");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer()).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A CRL valid until `next_update` (year) listing `revoked` serials.
    fn crl(&self, next_update_year: i32, revoked: &[u64]) -> rcgen::CertificateRevocationList {
        rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(next_update_year, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2020, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer())
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rp_client_checks_the_server_certificate_against_crls() {
    use std::os::unix::fs::PermissionsExt as _;

    let mut server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    // The server gets a certificate from a CA (serial 42) instead of its self-signed one.
    let ca = TestCa::new("Tandem Test TLS CA");
    let (cert_pem, key_pem) = ca.server_certificate(42);
    let tls = server.data_dir.join("tls");
    std::fs::write(tls.join("server.crt"), &cert_pem).unwrap();
    std::fs::write(tls.join("server.key"), &key_pem).unwrap();
    std::fs::set_permissions(
        tls.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    server.restart().unwrap();
    let dir = server.tmp.path().to_owned();
    let ca_file = dir.join("tls-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();

    let revoking = ca.crl(2099, &[7, 42]);
    let current = ca.crl(2099, &[7]);
    let expired = ca.crl(2021, &[]);
    let foreign = TestCa::new("Another CA").crl(2099, &[]);
    let client = |crls: Vec<Vec<u8>>| {
        let mut cfg = ClientConfig::new(format!("{}/v3", server.rest_url))
            .with_extra_root_pem(ca.pem.clone());
        for c in crls {
            cfg = cfg.with_tls_crl(c);
        }
        RpApiClient::new(cfg).unwrap()
    };
    let start = |c: RpApiClient| async move {
        c.device_link_authentication(&AuthTarget::Anonymous, &auth_request())
            .await
    };

    // Without CRLs, and with a current CRL that does not list it: the session starts.
    let started = count(&server, SESSION_STARTED);
    start(client(vec![])).await.unwrap();
    start(client(vec![current.pem().unwrap().into_bytes()]))
        .await
        .unwrap();
    // The server key's pin works with the CRL check together.
    let pin = client::pinning::certificate_file_pins(cert_pem.as_bytes()).unwrap()[0].pin;
    let c = RpApiClient::new(
        ClientConfig::new(format!("{}/v3", server.rest_url))
            .with_extra_root_pem(ca.pem.clone())
            .with_tls_crl(current.der().to_vec())
            .with_pin(pin),
    )
    .unwrap();
    start(c).await.unwrap();
    wait_for_log(&server, SESSION_STARTED, started + 2);

    // Revoked (PEM or DER CRL), an expired CRL, only another CA's CRL: the handshake fails,
    // no session starts.
    let started = count(&server, SESSION_STARTED);
    for (what, crls, reason) in [
        (
            "a PEM CRL listing the certificate",
            vec![revoking.pem().unwrap().into_bytes()],
            "Revoked",
        ),
        (
            "a DER CRL listing the certificate (beside another CA's)",
            vec![foreign.der().to_vec(), revoking.der().to_vec()],
            "Revoked",
        ),
        (
            "an expired CRL",
            vec![expired.pem().unwrap().into_bytes()],
            "ExpiredRevocationList",
        ),
        (
            "only another CA's CRL",
            vec![foreign.pem().unwrap().into_bytes()],
            "UnknownRevocationStatus",
        ),
    ] {
        let failed = count(&server, HANDSHAKE_FAILED);
        let e = start(client(crls)).await.unwrap_err();
        let debug = format!("{e:?}");
        assert!(
            matches!(e, client::Error::Transport { .. }) && debug.contains(reason),
            "{what}: {debug}"
        );
        wait_for_log(&server, HANDSHAKE_FAILED, failed);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&server, SESSION_STARTED), started, "{}", server.log());

    // A file that is not a CRL is a configuration error.
    let e = RpApiClient::new(
        ClientConfig::new(format!("{}/v3", server.rest_url)).with_tls_crl(b"not a CRL".to_vec()),
    )
    .unwrap_err();
    assert!(matches!(e, client::Error::Config(_)), "{e:?}");

    // The command line: --tls-crl FILE.
    let revoking_file = dir.join("revoking.crl");
    std::fs::write(&revoking_file, revoking.der()).unwrap();
    let current_file = dir.join("current.crl.pem");
    std::fs::write(&current_file, current.pem().unwrap()).unwrap();
    let unknown = "6f9619ff-8b86-4011-b42d-00c04fc964ff";
    let (ok, _, err) = rp_api_trusting(
        &server,
        &ca_file,
        &[
            "--tls-crl",
            current_file.to_str().unwrap(),
            "status",
            unknown,
        ],
    );
    assert!(!ok && err.contains("HTTP 404"), "{err}");
    let (ok, _, err) = rp_api_trusting(
        &server,
        &ca_file,
        &[
            "--tls-crl",
            revoking_file.to_str().unwrap(),
            "status",
            unknown,
        ],
    );
    assert!(
        !ok && err.to_lowercase().contains("revoked") && !err.contains("HTTP 404"),
        "{err}"
    );
}
