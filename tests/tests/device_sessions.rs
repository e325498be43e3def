//! The device simulator (`tandem device`) answers every kind of REST (RP API v3) session,
//! driven by our relying-party client (`tandem_rp::client`) against a real server
//! process:
//! - a certificate choice by notification is confirmed with `confirm` (no PIN) and the
//!   relying party gets the signing certificate; refusing one gives
//!   `USER_REFUSED_CERT_CHOICE`, while the server turns the certificate-choice reason down for
//!   a signature or an authentication (which a plain refusal ends with `USER_REFUSED`);
//! - same-device flows (Web2App authentication, App2App signature, a refused Web2App
//!   authentication, a Web2App certificate choice followed by a linked signing) end with the
//!   callback URL the phone prints, which the relying party's check accepts and which then
//!   completes the response verification; tampered copies of it are rejected.

#![allow(clippy::unwrap_used)] // tests

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_rp::api::device_link::DeviceLinkType;
use tandem_rp::api::types::{
    AuthSignatureProtocol, AuthSignatureProtocolParameters, CertificateChoiceRequest,
    DeviceLinkAuthenticationRequest, DeviceLinkSigningRequest, EndResult, FlowType, HashAlgorithm,
    Interaction, NotificationAuthenticationRequest, NotificationSigningLinkedRequest,
    NotificationSigningRequest, SessionStatusResponse, SignCertificateLevel, SignSignatureProtocol,
    SignSignatureProtocolParameters, SignatureAlgorithm, SignatureAlgorithmParametersInRequest,
    VerificationCodeType, encode_interactions,
};
use tandem_rp::client::verify::{
    ExpectedIdentity, verify_authentication, verify_certificate_choice, verify_signature,
};
use tandem_rp::client::{
    AuthTarget, AuthenticationExpectation, CallbackError, ClientConfig, DeviceLinkSession,
    RpApiClient, SignatureExpectation, TrustAnchors, UserRef, generate_rp_challenge,
};
use tandem_tests::*;

/// MARY's ETSI semantics identifier.
const MARY_ETSI: &str = "PNOEE-30303039914";

/// A server with the REST API and a phone registered for MARY through the command line.
struct Setup {
    server: TestServer,
    phone: PathBuf,
    ca: PathBuf,
    doc: String,
    rp: RpApiClient,
    anchors: TrustAnchors,
}

impl Setup {
    fn start() -> Self {
        let server = TestServer::start(ServerOptions {
            hsm_sim: true,
            ..ServerOptions::default()
        })
        .unwrap();
        let phone = server.tmp.path().join("phone");
        let ca = server.data_dir.join("tls/server.crt");
        let rp = RpApiClient::new(ClientConfig::new(format!("{}/v3", server.rest_url))).unwrap();
        let mut anchors = TrustAnchors::new();
        anchors
            .add_roots_pem(&std::fs::read(server.data_dir.join("pki/root.pem")).unwrap())
            .unwrap();
        anchors
            .add_intermediates_pem(&std::fs::read(server.data_dir.join("pki/issuing.pem")).unwrap())
            .unwrap();
        let mut s = Self {
            server,
            phone,
            ca,
            doc: String::new(),
            rp,
            anchors,
        };
        let out = s.device(&["register-start"], &[]).unwrap();
        s.server
            .approve(field(&out, "registration code:"), &MARY)
            .unwrap();
        let out = s
            .device(
                &[
                    "register-finish",
                    "--key-bits",
                    "2048",
                    "--insecure-fast-kdf",
                ],
                &[("TANDEM_PIN1", "1234"), ("TANDEM_PIN2", "12345")],
            )
            .unwrap();
        s.doc = field(&out, "registered: document number").to_owned();
        s
    }

    /// `tandem device --dir phone ... ARGS` (standard input closed: a PIN must come from
    /// the environment).
    fn device(&self, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut all = vec![
            "device",
            "--dir",
            self.phone.to_str().unwrap(),
            "--ca",
            self.ca.to_str().unwrap(),
            "--server",
            &self.server.url,
        ];
        all.extend_from_slice(args);
        tandem_env(&all, env)
    }

    /// Waits (at most 30 s) until `device pending` lists session `id`; returns its line.
    fn pending_line(&self, id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.device(&["pending"], &[]).unwrap();
            if let Some(l) = out.lines().find(|l| l.starts_with(id)) {
                return l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{id} never pending: {out}\nserver log:\n{}",
                self.server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    async fn result(&self, id: &str) -> SessionStatusResponse {
        tokio::time::timeout(
            Duration::from_secs(60),
            self.rp.wait_for_completion(id, Some(5_000), |_| {}),
        )
        .await
        .expect("the session did not complete within 60 s")
        .unwrap()
    }

    fn signing_certificate(&self) -> Vec<u8> {
        let state =
            DeviceState::from_json_bytes(&std::fs::read(self.phone.join("account.json")).unwrap())
                .unwrap();
        state.key_pair(KeyType::Sign).unwrap().certificate.clone()
    }
}

fn end_result(s: &SessionStatusResponse) -> EndResult {
    s.result.as_ref().expect("result").end_result
}

/// A certificate-choice request; a fresh `nonce` each time, so that the server's
/// idempotency (same body within 15 s, same session) does not hand back an earlier session.
fn cert_choice_request(callback: Option<&str>) -> CertificateChoiceRequest {
    let mut n = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut n);
    CertificateChoiceRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        initial_callback_url: callback.map(str::to_owned),
        certificate_level: None,
        nonce: Some(URL_SAFE_NO_PAD.encode(n)),
        request_properties: None,
        capabilities: None,
    }
}

fn sign_parameters(data: &[u8]) -> SignSignatureProtocolParameters {
    use sha2::Digest as _;
    SignSignatureProtocolParameters {
        digest: STANDARD.encode(sha2::Sha256::digest(data)),
        signature_algorithm: SignatureAlgorithm::RsassaPss,
        signature_algorithm_parameters: Some(SignatureAlgorithmParametersInRequest {
            hash_algorithm: HashAlgorithm::Sha256,
        }),
    }
}

fn auth_parameters() -> AuthSignatureProtocolParameters {
    AuthSignatureProtocolParameters {
        rp_challenge: generate_rp_challenge(&mut rand::rngs::OsRng),
        signature_algorithm: SignatureAlgorithm::RsassaPss,
        signature_algorithm_parameters: Some(SignatureAlgorithmParametersInRequest {
            hash_algorithm: HashAlgorithm::Sha512,
        }),
    }
}

fn pin_text(text: &str) -> String {
    encode_interactions(&[Interaction::DisplayTextAndPin {
        display_text60: text.into(),
    }])
}

/// A fresh `initialCallbackUrl` with an unpredictable parameter, as callback_urls.txt asks.
fn fresh_callback(path: &str) -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    format!(
        "https://rp.example.com/{path}?value={}",
        URL_SAFE_NO_PAD.encode(b)
    )
}

/// The `callback:` line of a device command's output.
fn printed_callback(out: &str) -> String {
    field(out, "callback:").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_choice_by_notification_and_refusal_reasons() {
    let s = Setup::start();
    let mary = UserRef::Document(s.doc.clone());

    // 1. A certificate choice by notification: `confirm` answers it without a PIN (standard
    //    input is closed and TANDEM_PIN unset) and the relying party gets the SIGN
    //    certificate, which verifies against the CA.
    let id =
        s.rp.notification_certificate_choice(MARY_ETSI, &cert_choice_request(None))
            .await
            .unwrap()
            .session_id;
    let line = s.pending_line(&id);
    assert!(line.contains("CertificateChoice"), "{line}");
    let out = s.device(&["confirm", &id], &[]).unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    assert!(
        !out.contains("callback:"),
        "a notification flow has no callback: {out}"
    );
    let status = s.result(&id).await;
    assert_eq!(end_result(&status), EndResult::Ok);
    let verified = verify_certificate_choice(
        &status,
        SignCertificateLevel::Qualified,
        &[FlowType::Notification],
        Some(&ExpectedIdentity::Etsi(MARY_ETSI.into())),
        &s.anchors,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(verified.der, s.signing_certificate());
    assert_eq!(verified.identity.serial_number, MARY_ETSI);

    // The library calls an app makes for "confirm" (client-core's `prepare_confirm`, given
    // the PIN it asked for, then `send_confirm`) answer a certificate choice too, instead of
    // failing on its empty digest.
    let id =
        s.rp.notification_certificate_choice(MARY_ETSI, &cert_choice_request(None))
            .await
            .unwrap()
            .session_id;
    s.pending_line(&id);
    {
        let client = s.server.device_client().await.unwrap();
        let mut state = tandem_cli::load_state(&s.phone).unwrap();
        let t = tandem_client_core::grpc::list_pending(&client, &state)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.transaction_id == id)
            .unwrap();
        let pin = tandem_client_core::pin::Pin::new("12345").unwrap();
        let key = tandem_client_core::grpc::transport_key(&client)
            .await
            .unwrap();
        let prepared =
            tandem_client_core::grpc::prepare_confirm(&state, &t, &pin, None, &key).unwrap();
        let r = tandem_client_core::grpc::send_confirm(&client, &mut state, &prepared)
            .await
            .unwrap();
        assert_eq!(r.outcome, tandem_proto::v1::ConfirmOutcome::Accepted as i32);
        tandem_cli::save_state(&s.phone, &state).unwrap();
    }
    let status = s.result(&id).await;
    assert_eq!(end_result(&status), EndResult::Ok);
    assert_eq!(
        STANDARD.decode(&status.cert.unwrap().value).unwrap(),
        s.signing_certificate()
    );

    // 2. Refused with --reason cert-choice: USER_REFUSED_CERT_CHOICE; a plain refusal of a
    //    certificate choice means the same; --reason user gives USER_REFUSED.
    for (args, want) in [
        (
            &["--reason", "cert-choice"][..],
            EndResult::UserRefusedCertChoice,
        ),
        (&[][..], EndResult::UserRefusedCertChoice),
        (&["--reason", "user"][..], EndResult::UserRefused),
    ] {
        let id =
            s.rp.notification_certificate_choice(MARY_ETSI, &cert_choice_request(None))
                .await
                .unwrap()
                .session_id;
        s.pending_line(&id);
        let mut cmd = vec!["refuse", id.as_str()];
        cmd.extend_from_slice(args);
        let out = s.device(&cmd, &[]).unwrap();
        assert!(out.contains("refused"), "{out}");
        assert_eq!(end_result(&s.result(&id).await), want, "{args:?}");
    }

    // 3. The certificate-choice reason on a signature and on an authentication: the server
    //    refuses it clearly and the session keeps running; a plain refusal then ends it with
    //    USER_REFUSED.
    let sign = NotificationSigningRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        certificate_level: None,
        signature_protocol: SignSignatureProtocol::RawDigestSignature,
        signature_protocol_parameters: sign_parameters(b"contract 42"),
        nonce: None,
        interactions: pin_text("Sign contract 42"),
        request_properties: None,
        capabilities: None,
    };
    let sign_id =
        s.rp.notification_signature(&mary, &sign)
            .await
            .unwrap()
            .session_id;
    let auth = NotificationAuthenticationRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        certificate_level: None,
        signature_protocol: AuthSignatureProtocol::AcspV2,
        signature_protocol_parameters: auth_parameters(),
        interactions: pin_text("Log in"),
        request_properties: None,
        capabilities: None,
        vc_type: VerificationCodeType::Numeric4,
        nonce: None,
    };
    let auth_id =
        s.rp.notification_authentication(&mary, &auth)
            .await
            .unwrap()
            .session_id;
    for id in [&sign_id, &auth_id] {
        s.pending_line(id);
        let err = s
            .device(&["refuse", id, "--reason", "cert-choice"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("only for certificate-choice sessions"),
            "{err}"
        );
        // (A long poll of one second: the session must still be running after it.)
        let running = s.rp.session_status(id, Some(1_000)).await.unwrap();
        assert!(running.result.is_none(), "{running:?}");
        s.pending_line(id);
        s.device(&["refuse", id], &[]).unwrap();
        assert_eq!(end_result(&s.result(id).await), EndResult::UserRefused);
    }

    // 4. The same for a transaction of the gRPC relying-party service.
    let out = tandem(&[
        "rp",
        "--ca",
        s.ca.to_str().unwrap(),
        "--server",
        &s.server.url,
        "auth",
        "--document",
        &s.doc,
    ])
    .unwrap();
    let tx = field(&out, "transaction").to_owned();
    s.pending_line(&tx);
    let err = s
        .device(&["refuse", &tx, "--reason", "cert-choice"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("only for certificate-choice sessions"),
        "{err}"
    );
    s.pending_line(&tx);
}

#[tokio::test(flavor = "multi_thread")]
async fn same_device_flows_end_with_a_callback_the_relying_party_accepts() {
    let s = Setup::start();
    let mary = UserRef::Document(s.doc.clone());

    // 1. Web2App authentication: the phone prints the callback URL with sessionSecretDigest
    //    and userChallengeVerifier; the relying party's check accepts it and the response
    //    verification (ACSP_V2 over the payload with the callback URL) passes with it.
    let initial = fresh_callback("login/web");
    let req = DeviceLinkAuthenticationRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        initial_callback_url: Some(initial.clone()),
        certificate_level: None,
        signature_protocol: AuthSignatureProtocol::AcspV2,
        signature_protocol_parameters: auth_parameters(),
        interactions: pin_text("Log in to Tandem Test Bank"),
        request_properties: None,
        capabilities: None,
        nonce: None,
    };
    let resp =
        s.rp.device_link_authentication(&AuthTarget::Anonymous, &req)
            .await
            .unwrap();
    let login =
        DeviceLinkSession::for_authentication(&resp, Instant::now(), "smart-id", &req).unwrap();
    let link = login.same_device_link(DeviceLinkType::Web2App).unwrap();
    let out = s
        .device(&["scan", &link], &[("TANDEM_PIN", "1234")])
        .unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    let url = printed_callback(&out);
    assert!(
        url.starts_with(&format!("{initial}&sessionSecretDigest=")),
        "{url}"
    );
    assert!(url.contains("&userChallengeVerifier="), "{url}");
    let status = s.result(&resp.session_id).await;
    let callback = login.check_callback(&url, &status).unwrap();
    let mut expected =
        AuthenticationExpectation::device_link(&req, "smart-id", &AuthTarget::Anonymous).unwrap();
    expected.callback = Some(callback);
    let verified =
        verify_authentication(&status, &expected, &s.anchors, SystemTime::now()).unwrap();
    assert_eq!(verified.flow_type, FlowType::Web2App);
    assert_eq!(verified.identity.serial_number, MARY_ETSI);
    // Without the callback values the verification refuses a Web2App result.
    expected.callback = None;
    assert!(verify_authentication(&status, &expected, &s.anchors, SystemTime::now()).is_err());

    // Tampered copies are rejected, each with its reason.
    let digest_at = url.find("sessionSecretDigest=").unwrap() + "sessionSecretDigest=".len();
    let verifier_at = url.find("userChallengeVerifier=").unwrap() + "userChallengeVerifier=".len();
    let flip = |url: &str, at: usize| {
        let mut b = url.as_bytes().to_vec();
        b[at] = if b[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let value_at = url.find("value=").unwrap() + "value=".len();
    for (tampered, want) in [
        (flip(&url, digest_at), CallbackError::SessionSecretDigest),
        (
            flip(&url, verifier_at),
            CallbackError::UserChallengeVerifier,
        ),
        (flip(&url, value_at), CallbackError::WrongUrl),
        (
            url.replace("https://rp.example.com/", "https://evil.example.com/"),
            CallbackError::WrongUrl,
        ),
        (
            url.replace("login/web", "login/app"),
            CallbackError::WrongUrl,
        ),
        (
            url[..verifier_at - "&userChallengeVerifier=".len()].to_owned(),
            CallbackError::Missing("userChallengeVerifier"),
        ),
        (
            format!("{url}&next=/admin"),
            CallbackError::Unexpected("next".into()),
        ),
    ] {
        assert_eq!(
            login.check_callback(&tampered, &status).err(),
            Some(want),
            "{tampered}"
        );
    }

    // 2. App2App signature: the callback carries sessionSecretDigest only; accepted, and the
    //    signature verifies with it. The login's callback URL does not fit this session.
    let initial = fresh_callback("sign/app");
    let data = b"Contract 42: Tandem Test Bank and MARY TESTNUMBER agree.";
    let req = DeviceLinkSigningRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        initial_callback_url: Some(initial.clone()),
        certificate_level: None,
        signature_protocol: SignSignatureProtocol::RawDigestSignature,
        signature_protocol_parameters: sign_parameters(data),
        nonce: None,
        interactions: pin_text("Sign contract 42"),
        request_properties: None,
        capabilities: None,
    };
    let resp = s.rp.device_link_signature(&mary, &req).await.unwrap();
    let signing =
        DeviceLinkSession::for_signature(&resp, Instant::now(), "smart-id", &req).unwrap();
    let link = signing.same_device_link(DeviceLinkType::App2App).unwrap();
    let out = s
        .device(&["scan", &link], &[("TANDEM_PIN", "12345")])
        .unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    let sign_url = printed_callback(&out);
    assert!(
        sign_url.starts_with(&format!("{initial}&sessionSecretDigest=")),
        "{sign_url}"
    );
    assert!(!sign_url.contains("userChallengeVerifier"), "{sign_url}");
    let status = s.result(&resp.session_id).await;
    let callback = signing.check_callback(&sign_url, &status).unwrap();
    let mut expected = SignatureExpectation::device_link(&req, &mary).unwrap();
    expected.callback = Some(callback);
    let verified = verify_signature(&status, &expected, &s.anchors, SystemTime::now()).unwrap();
    assert_eq!(verified.flow_type, FlowType::App2App);
    assert_eq!(
        signing.check_callback(&url, &status).err(),
        Some(CallbackError::WrongUrl)
    );
    let digest_at = sign_url.find("Digest=").unwrap() + "Digest=".len();
    assert_eq!(
        signing
            .check_callback(&flip(&sign_url, digest_at), &status)
            .err(),
        Some(CallbackError::SessionSecretDigest)
    );

    // 3. A refused Web2App authentication returns through the callback too (digest only,
    //    no signature to check a verifier against); USER_REFUSED.
    let req = DeviceLinkAuthenticationRequest {
        initial_callback_url: Some(fresh_callback("login/web")),
        signature_protocol_parameters: auth_parameters(),
        ..req_auth_template()
    };
    let resp =
        s.rp.device_link_authentication(&AuthTarget::Anonymous, &req)
            .await
            .unwrap();
    let refused =
        DeviceLinkSession::for_authentication(&resp, Instant::now(), "smart-id", &req).unwrap();
    let link = refused.same_device_link(DeviceLinkType::Web2App).unwrap();
    let out = s.device(&["scan", &link, "--refuse"], &[]).unwrap();
    assert!(out.contains("refused"), "{out}");
    let refused_url = printed_callback(&out);
    assert!(
        !refused_url.contains("userChallengeVerifier"),
        "{refused_url}"
    );
    let status = s.result(&resp.session_id).await;
    assert_eq!(end_result(&status), EndResult::UserRefused);
    refused.check_callback(&refused_url, &status).unwrap();

    // 4. A QR login (same session kind, no same-device link): no callback.
    let req = DeviceLinkAuthenticationRequest {
        initial_callback_url: None,
        signature_protocol_parameters: auth_parameters(),
        ..req_auth_template()
    };
    let resp =
        s.rp.device_link_authentication(&AuthTarget::Anonymous, &req)
            .await
            .unwrap();
    let qr =
        DeviceLinkSession::for_authentication(&resp, Instant::now(), "smart-id", &req).unwrap();
    let out = s
        .device(
            &["scan", &qr.qr_link(Instant::now())],
            &[("TANDEM_PIN", "1234")],
        )
        .unwrap();
    assert!(
        out.contains("ACCEPTED") && !out.contains("callback:"),
        "{out}"
    );
    let status = s.result(&resp.session_id).await;
    assert_eq!(
        qr.check_callback(&url, &status).err(),
        Some(CallbackError::NoCallbackUrl)
    );

    // 5. Web2App certificate choice, then a linked signing: the phone answers the choice
    //    (callback printed) and, for the linked signing, opens the certificate choice's
    //    callback again; the relying party checks it against the choice's session.
    let initial = fresh_callback("choose/web");
    let req = cert_choice_request(Some(&initial));
    let resp = s.rp.device_link_certificate_choice(&req).await.unwrap();
    let choice =
        DeviceLinkSession::for_certificate_choice(&resp, Instant::now(), "smart-id", &req).unwrap();
    let link = choice.same_device_link(DeviceLinkType::Web2App).unwrap();
    let out = s.device(&["scan", &link], &[]).unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    let choice_url = printed_callback(&out);
    let status = s.result(&resp.session_id).await;
    choice.check_callback(&choice_url, &status).unwrap();
    let chosen = verify_certificate_choice(
        &status,
        SignCertificateLevel::Qualified,
        &[FlowType::Web2App],
        None,
        &s.anchors,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(chosen.der, s.signing_certificate());
    let linked = NotificationSigningLinkedRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        certificate_level: None,
        signature_protocol: SignSignatureProtocol::RawDigestSignature,
        signature_protocol_parameters: sign_parameters(data),
        linked_session_id: resp.session_id.clone(),
        nonce: None,
        interactions: pin_text("Sign contract 42"),
        request_properties: None,
        capabilities: None,
    };
    let linked_id =
        s.rp.linked_notification_signature(&s.doc, &linked)
            .await
            .unwrap()
            .session_id;
    let line = s.pending_line(&linked_id);
    assert!(
        line.contains(&format!("linked to {}", resp.session_id)),
        "{line}"
    );
    let out = s
        .device(&["confirm", &linked_id], &[("TANDEM_PIN", "12345")])
        .unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    let linked_url = printed_callback(&out);
    assert!(linked_url.starts_with(&initial), "{linked_url}");
    let status = s.result(&linked_id).await;
    let callback = choice.check_callback(&linked_url, &status).unwrap();
    let mut expected = SignatureExpectation::linked(&linked, &s.doc).unwrap();
    expected.callback = Some(callback);
    verify_signature(&status, &expected, &s.anchors, SystemTime::now()).unwrap();
    // The linked signing's callback names the choice's session, not the login's.
    assert_eq!(
        login.check_callback(&linked_url, &status).err(),
        Some(CallbackError::WrongUrl)
    );
}

/// A device-link authentication request without a callback URL or challenge yet.
fn req_auth_template() -> DeviceLinkAuthenticationRequest {
    DeviceLinkAuthenticationRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        initial_callback_url: None,
        certificate_level: None,
        signature_protocol: AuthSignatureProtocol::AcspV2,
        signature_protocol_parameters: auth_parameters(),
        interactions: pin_text("Log in to Tandem Test Bank"),
        request_properties: None,
        capabilities: None,
        nonce: None,
    }
}
