//! Acceptance test with an independent relying-party library: the unchanged crates.io
//! Smart-ID RP API v3 client `smart-id-rust-client` 0.3.3 drives a real Tandem server's
//! REST API (device-link and notification authentication, certificate choice, notification
//! signing, the signing-certificate query), a simulated device answers, and every result is
//! then verified a second time, independently of both Tandem and the library, step by step
//! as the RP API's "Response verification" page prescribes (OpenSSL as the verifier).
//!
//! What the library itself concludes is pinned exactly ([`Verdict`]). Two defects of the
//! library version shape it, both shown in the test rather than assumed:
//! - its certificate-chain check cannot fail (it ignores `verify_cert()`'s `Ok(false)`), so
//!   Tandem's certificates pass it although they are not issued by SK ID Solutions
//!   ([`library_chain_check_is_ineffective`]);
//! - it rebuilds the ACSP_V2 payload with `interactionTypeUsed` spelt `displayTextAndPin`,
//!   so it rejects every `displayTextAndPIN` authentication (anyone's, not only Tandem's)
//!   with `InvalidResponseSignature`; with `confirmationMessage` it verifies Tandem's
//!   signatures and accepts them.

#![allow(clippy::unwrap_used)] // tests

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::hash::MessageDigest;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};
use smart_id_rust_client::client::smart_id_client::SmartIdClient;
use smart_id_rust_client::config::SmartIDConfig;
use smart_id_rust_client::error::SmartIdClientError;
use smart_id_rust_client::models::api::authentication_session::{
    AuthenticationCertificateLevel, AuthenticationDeviceLinkRequest,
    AuthenticationNotificationRequest,
};
use smart_id_rust_client::models::api::certificate_choice_session::{
    CertificateChoiceNotificationRequest, SigningCertificateRequest,
};
use smart_id_rust_client::models::api::session_status::SessionStatusResponse;
use smart_id_rust_client::models::api::signature_session::SignatureNotificationRequest;
use smart_id_rust_client::models::common::{CertificateLevel, SchemeName, VCCodeType};
use smart_id_rust_client::models::device_link::DeviceLinkType;
use smart_id_rust_client::models::interaction::{
    Interaction, InteractionFlow, encode_interactions_base_64,
};
use smart_id_rust_client::models::signature::{
    HashingAlgorithm, SignatureAlgorithm, SignatureProtocol, SignatureProtocolParameters,
};
use tandem_client_core::KeyType;
use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_client_core::state::DeviceState;
use tandem_proto::v1 as pb;
use tandem_tests::*;

/// MARY's ETSI semantic identifier.
const MARY_ETSI: &str = "PNOEE-30303039914";

/// The library's configuration for a test server: plain HTTP, base path `/v3`.
fn config(server: &TestServer) -> SmartIDConfig {
    SmartIDConfig {
        root_url: server.rest_url.clone(),
        api_path: "/v3".into(),
        scheme_name: SchemeName::smart_id,
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        client_request_timeout: Some(30_000),
        long_polling_timeout: 10_000,
    }
}

/// One interaction of the given type (`displayTextAndPIN` or `confirmationMessage`).
fn interaction(kind: &str, text: &str) -> Interaction {
    match kind {
        "displayTextAndPIN" => Interaction::DisplayTextAndPIN {
            display_text_60: text.into(),
        },
        "confirmationMessage" => Interaction::ConfirmationMessage {
            display_text_200: text.into(),
        },
        other => panic!("no such interaction {other}"),
    }
}

/// The rpChallenge the library generated for a request.
fn rp_challenge(p: &SignatureProtocolParameters) -> String {
    match p {
        SignatureProtocolParameters::ACSP_V2 { rp_challenge, .. } => rp_challenge.clone(),
        other => panic!("not ACSP_V2: {other:?}"),
    }
}

/// The verification code of a notification authentication, computed here as the
/// "Notification based flows" page says: SHA-256 of the raw rpChallenge bytes, the two
/// rightmost bytes as a big-endian integer, mod 10000, four digits.
fn auth_vc(rp_challenge_b64: &str) -> String {
    let h = Sha256::digest(STANDARD.decode(rp_challenge_b64).unwrap());
    format!("{:04}", u16::from_be_bytes([h[30], h[31]]) % 10000)
}

/// What `smart-id-rust-client` 0.3.3 makes of a completed session, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// `Ok`: the library decoded the status and every check it makes passed (end result,
    /// certificate, level, signature, identity; its chain check cannot fail, see
    /// [`library_chain_check_is_ineffective`]).
    Accepted,
    /// `InvalidResponseSignature`: a library bug for sessions whose interaction was
    /// `displayTextAndPIN`. The library puts `InteractionFlow::as_ref()` into the ACSP_V2
    /// payload, and strum's camelCase spells it `displayTextAndPin` (its serde name, and the
    /// spec's, is `displayTextAndPIN`), so it rebuilds another payload than the one signed.
    /// [`verify_acsp_v2`] shows that the signature fails over exactly that payload.
    PinSpellingBug,
}

/// Calls the library's `get_session_status()` and checks its verdict exactly.
async fn library_status(
    lib: &SmartIdClient,
    what: &str,
    verdict: Verdict,
) -> Option<SessionStatusResponse> {
    let r: Result<SessionStatusResponse, SmartIdClientError> = lib.get_session_status().await;
    match (verdict, r) {
        (Verdict::Accepted, Ok(s)) => {
            eprintln!("{what}: library accepted the session");
            Some(s)
        }
        (Verdict::PinSpellingBug, Err(SmartIdClientError::InvalidResponseSignature(msg)))
            if msg == "Failed to verify signature: verification error" =>
        {
            eprintln!("{what}: library rejected the displayTextAndPIN signature: {msg}");
            None
        }
        (v, other) => panic!("{what}: expected {v:?} from the library, got {other:?}"),
    }
}

/// The library's certificate-chain check accepts any certificate: it calls OpenSSL's
/// `X509StoreContext::verify_cert()` with `?` and ignores the `Ok(false)` OpenSSL returns
/// for a chain it cannot build. Shown twice: through the library's public
/// `verify_certificate` (a Tandem certificate "verified" against SK ID Solutions'
/// production roots) and with the same OpenSSL call on an empty trust store.
fn library_chain_check_is_ineffective(lib: &SmartIdClient, der: &[u8]) {
    let chain = lib
        .verify_certificate(STANDARD.encode(der))
        .expect("the library's chain check accepted a non-SK certificate");
    assert_eq!(chain.first(), Some(&STANDARD.encode(der)), "{chain:?}");
    let leaf = X509::from_der(der).unwrap();
    let store = X509StoreBuilder::new().unwrap().build();
    let mut ctx = X509StoreContext::new().unwrap();
    let verified = ctx
        .init(&store, &leaf, &Stack::new().unwrap(), |c| c.verify_cert())
        .expect("verify_cert reports an untrusted chain as Ok(false), not as an error");
    assert!(!verified);
}

/// The library's decoding of the session status matches the JSON on the wire.
fn same_as_raw(lib: &SessionStatusResponse, raw: &Value) {
    let cert = lib.cert.as_ref().expect("library: cert");
    assert_eq!(json!(cert.value), raw["cert"]["value"]);
    assert_eq!(
        json!(format!("{:?}", cert.certificate_level)),
        raw["cert"]["certificateLevel"]
    );
    let result = lib.result.as_ref().expect("library: result");
    assert_eq!(
        json!(result.document_number),
        raw["result"]["documentNumber"]
    );
    assert_eq!(
        json!(format!("{:?}", result.end_result)),
        raw["result"]["endResult"]
    );
    let sig = lib.signature.as_ref().expect("library: signature");
    assert_eq!(
        json!(format!("{:?}", sig.get_flow_type())),
        raw["signature"]["flowType"]
    );
    if raw["signature"]["value"].is_string() {
        assert_eq!(json!(sig.get_value()), raw["signature"]["value"]);
    }
    assert_eq!(
        serde_json::to_value(&lib.interaction_type_used).unwrap(),
        raw.get("interactionTypeUsed")
            .cloned()
            .unwrap_or(Value::Null)
    );
    assert_eq!(
        serde_json::to_value(&lib.signature_protocol).unwrap(),
        raw.get("signatureProtocol").cloned().unwrap_or(Value::Null)
    );
}

fn level_rank(level: &str) -> u8 {
    match level {
        "ADVANCED" => 1,
        "QUALIFIED" => 2,
        "QSCD" => 3,
        other => panic!("unknown certificate level {other:?}"),
    }
}

/// `openssl x509 -noout -subject -nameopt multiline` as a list of (attribute, value).
fn subject(dir: &Path, leaf: &Path) -> Vec<(String, String)> {
    let (ok, out) = openssl(
        dir,
        &[
            "x509",
            "-in",
            leaf.to_str().unwrap(),
            "-noout",
            "-subject",
            "-nameopt",
            "multiline",
        ],
    );
    assert!(ok, "{out}");
    out.lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn attr<'a>(subject: &'a [(String, String)], name: &str) -> &'a str {
    subject
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in subject {subject:?}"))
}

/// What the relying party asked for.
struct Expected<'a> {
    /// `ACSP_V2` (authentication) or `RAW_DIGEST_SIGNATURE` (signature).
    protocol: &'a str,
    /// `QR` or `Notification`.
    flow_type: &'a str,
    /// The minimum level requested.
    requested_level: &'a str,
    /// The account the session ran on.
    document_number: &'a str,
    /// The certificate the account holds for this purpose (from the device's state).
    certificate: &'a [u8],
}

/// Response verification steps 2 and 4–8 (session response, chain, purpose, level,
/// identity); returns the certificate (DER), the signature value and the leaf PEM's path.
fn verify_response(
    server: &TestServer,
    dir: &Path,
    b: &Value,
    e: &Expected,
) -> (Vec<u8>, Vec<u8>, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    // Step 2: initial session response check.
    assert_eq!(b["state"], json!("COMPLETE"), "{b}");
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert_eq!(
        b["result"]["documentNumber"],
        json!(e.document_number),
        "{b}"
    );
    assert_eq!(b["signatureProtocol"], json!(e.protocol), "{b}");
    for field in ["cert", "signature", "result"] {
        assert!(b[field].is_object(), "{field} missing: {b}");
    }
    let der = STANDARD
        .decode(b["cert"]["value"].as_str().expect("cert.value"))
        .unwrap();
    assert_eq!(
        der, e.certificate,
        "the session returned another certificate than the account's"
    );
    let sig = STANDARD
        .decode(b["signature"]["value"].as_str().expect("signature.value"))
        .unwrap();
    assert_eq!(b["signature"]["flowType"], json!(e.flow_type), "{b}");

    // Step 4: certificate chain, against the server's CA certificates only.
    let leaf = dir.join("leaf.pem");
    std::fs::write(&leaf, cert_pem(&der)).unwrap();
    let root = server.data_dir.join("pki/root.pem");
    let issuing = server.data_dir.join("pki/issuing.pem");
    let (ok, out) = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            issuing.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains(": OK"), "chain verification: {out}");
    // Without the issuing CA there is no chain (the leaf is not signed by the root).
    let (ok, out) = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            root.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ],
    );
    assert!(!ok, "leaf verified without its issuer: {out}");

    // Step 6: purpose (authentication: digitalSignature; signing: nonRepudiation).
    let (ok, text) = openssl(
        dir,
        &["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"],
    );
    assert!(ok, "{text}");
    let key_usage = text
        .split("X509v3 Key Usage")
        .nth(1)
        .and_then(|s| s.lines().nth(1))
        .unwrap_or_default()
        .to_owned();
    if e.protocol == "ACSP_V2" {
        // Tandem's documented AUTH profile (docs/PKI.md): digitalSignature + clientAuth.
        // NB: "Response verification" step 6 accepts digitalSignature + the Smart-ID
        // authentication EKU 1.3.6.1.4.1.62306.5.7.0 (SK's arc), or digitalSignature,
        // keyEncipherment, dataEncipherment + clientAuth (pre-2025 certificates); this
        // profile is neither, so a strictly spec-following relying party rejects it.
        assert_eq!(key_usage.trim(), "Digital Signature", "{text}");
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
    } else {
        assert!(key_usage.contains("Non Repudiation"), "{text}");
    }

    // Step 7: assurance level, at least the requested one.
    let level = b["cert"]["certificateLevel"].as_str().expect("level");
    assert!(
        level_rank(level) >= level_rank(e.requested_level),
        "{level} < {}",
        e.requested_level
    );

    // Step 8: identity, from the certificate's subject.
    let s = subject(dir, &leaf);
    assert_eq!(attr(&s, "serialNumber"), MARY_ETSI, "{s:?}");
    assert_eq!(attr(&s, "givenName"), MARY.given, "{s:?}");
    assert_eq!(attr(&s, "surname"), MARY.surname, "{s:?}");
    assert_eq!(attr(&s, "countryName"), MARY.country, "{s:?}");
    (der, sig, leaf)
}

/// `signature.signatureAlgorithm(Parameters)`: RSASSA-PSS, SHA-512, MGF1-SHA-512, salt 64.
fn check_pss_parameters(b: &Value) {
    assert_eq!(
        b["signature"]["signatureAlgorithm"],
        json!("rsassa-pss"),
        "{b}"
    );
    assert_eq!(
        b["signature"]["signatureAlgorithmParameters"],
        json!({
            "hashAlgorithm": "SHA-512",
            "maskGenAlgorithm": {
                "algorithm": "id-mgf1",
                "parameters": {"hashAlgorithm": "SHA-512"}
            },
            "saltLength": 64,
            "trailerField": "0xbc"
        }),
        "{b}"
    );
}

/// `openssl pkeyutl -verify` of an RSASSA-PSS (SHA-512, MGF1-SHA-512, salt 64) signature
/// over a SHA-512 digest.
fn pkeyutl_verify(dir: &Path, leaf: &Path, digest: &[u8], sig: &[u8]) -> (bool, String) {
    std::fs::write(dir.join("digest.bin"), digest).unwrap();
    std::fs::write(dir.join("sig.bin"), sig).unwrap();
    openssl(
        dir,
        &[
            "pkeyutl",
            "-verify",
            "-certin",
            "-inkey",
            leaf.to_str().unwrap(),
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "rsa_pss_saltlen:64",
            "-pkeyopt",
            "digest:sha512",
            "-pkeyopt",
            "rsa_mgf1_md:sha512",
            "-in",
            "digest.bin",
            "-sigfile",
            "sig.bin",
        ],
    )
}

/// The openssl crate's verifier over a whole message (it hashes with SHA-512 itself).
fn openssl_crate_verify(der: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let key = X509::from_der(der).unwrap().public_key().unwrap();
    let mut v = Verifier::new(MessageDigest::sha512(), &key).unwrap();
    v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(64)).unwrap();
    v.set_rsa_mgf1_md(MessageDigest::sha512()).unwrap();
    v.update(message).unwrap();
    v.verify(sig).unwrap()
}

/// What an authentication request sent, for rebuilding the ACSP_V2 payload.
struct AuthSent<'a> {
    rp_challenge: &'a str,
    /// The interaction the device must have used.
    interaction_type: &'a str,
    relying_party_name: &'a str,
    interactions: &'a str,
}

/// Step 9 for authentication: rebuilds
/// `smart-id|ACSP_V2|serverRandom|rpChallenge|userChallenge|BASE64(rpName)|BASE64(brokeredRpName)|BASE64(SHA-256(interactions))|interactionTypeUsed|initialCallbackUrl|flowType`
/// from the request and the response and verifies the signature over it.
fn verify_acsp_v2(dir: &Path, leaf: &Path, der: &[u8], sig: &[u8], b: &Value, sent: &AuthSent) {
    check_pss_parameters(b);
    let s = &b["signature"];
    let server_random = s["serverRandom"].as_str().expect("serverRandom");
    assert!(server_random.len() >= 24, "{b}");
    STANDARD
        .decode(server_random)
        .expect("serverRandom is Base64");
    let user_challenge = s["userChallenge"].as_str().expect("userChallenge");
    assert_eq!(user_challenge.len(), 43, "{b}");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(user_challenge).unwrap().len(),
        32,
        "{b}"
    );
    let interaction_type_used = b["interactionTypeUsed"]
        .as_str()
        .expect("interactionTypeUsed");
    assert_eq!(interaction_type_used, sent.interaction_type, "{b}");
    let flow_type = s["flowType"].as_str().unwrap();
    let payload = [
        "smart-id",
        "ACSP_V2",
        server_random,
        sent.rp_challenge,
        user_challenge,
        &STANDARD.encode(sent.relying_party_name),
        "",
        &STANDARD.encode(Sha256::digest(sent.interactions.as_bytes())),
        interaction_type_used,
        "",
        flow_type,
    ]
    .join("|");
    let digest = Sha512::digest(payload.as_bytes());
    let (ok, out) = pkeyutl_verify(dir, leaf, &digest, sig);
    assert!(
        ok,
        "ACSP_V2 signature rejected by openssl pkeyutl: {out}\n{payload}"
    );
    assert!(openssl_crate_verify(der, payload.as_bytes(), sig));
    // The verifier is not vacuous: another flow type (one field of the payload) fails.
    let other = payload.replace(&format!("|{flow_type}"), "|Web2App");
    assert!(!openssl_crate_verify(der, other.as_bytes(), sig));
    let (ok, _) = pkeyutl_verify(dir, leaf, &Sha512::digest(other.as_bytes()), sig);
    assert!(!ok);
    // The payload smart-id-rust-client 0.3.3 rebuilds differs only in the spelling of
    // interactionTypeUsed (`InteractionFlow::as_ref()`, strum camelCase); for
    // `displayTextAndPIN` that spelling is `displayTextAndPin` and the signature fails.
    let flow = match interaction_type_used {
        "displayTextAndPIN" => InteractionFlow::DisplayTextAndPIN,
        "confirmationMessage" => InteractionFlow::ConfirmationMessage,
        other => panic!("unexpected interaction {other}"),
    };
    assert_eq!(
        serde_json::to_value(&flow).unwrap(),
        json!(interaction_type_used)
    );
    let library_payload = payload.replace(
        &format!("|{interaction_type_used}|"),
        &format!("|{}|", flow.as_ref()),
    );
    let library_accepts = openssl_crate_verify(der, library_payload.as_bytes(), sig);
    if interaction_type_used == "displayTextAndPIN" {
        assert_eq!(flow.as_ref(), "displayTextAndPin");
        assert!(!library_accepts);
    } else {
        assert_eq!(flow.as_ref(), interaction_type_used);
        assert!(library_accepts);
    }
}

/// A device-link authentication request built from the library's parts.
fn device_link_request(
    cfg: &SmartIDConfig,
    kind: &str,
    text: &str,
) -> AuthenticationDeviceLinkRequest {
    AuthenticationDeviceLinkRequest {
        relying_party_uuid: cfg.relying_party_uuid.clone(),
        relying_party_name: cfg.relying_party_name.clone(),
        initial_callback_url: None,
        certificate_level: AuthenticationCertificateLevel::QUALIFIED,
        signature_protocol: SignatureProtocol::ACSP_V2,
        signature_protocol_parameters: SignatureProtocolParameters::new_acsp_v2(
            SignatureAlgorithm::RsassaPss,
            HashingAlgorithm::sha_512,
        ),
        interactions: encode_interactions_base_64(&vec![interaction(kind, text)]).unwrap(),
        request_properties: None,
        capabilities: None,
    }
}

/// One authentication step: what the relying party asks for and how it ends.
struct AuthStep<'a> {
    /// Directory name and log prefix.
    name: &'a str,
    /// `QR` (device link, anonymous or by document) or `Notification` (by document).
    flow: &'a str,
    /// Device link only: by document number instead of anonymous.
    by_document: bool,
    /// `displayTextAndPIN` or `confirmationMessage`.
    interaction: &'a str,
    /// What the library makes of the result.
    verdict: Verdict,
}

/// Runs one authentication through the library; the device answers with PIN1; then the
/// library's verdict and the independent verification.
async fn authentication(
    server: &TestServer,
    lib: &SmartIdClient,
    device: &dev::Client,
    state: &mut DeviceState,
    step: &AuthStep<'_>,
) {
    let cfg = &lib.cfg;
    let doc = state.document_number.clone();
    let text = format!("Log in to Tandem Test Bank ({})", step.name);
    let (id, t, sent_challenge, sent_name, sent_interactions) = if step.flow == "QR" {
        let req = device_link_request(cfg, step.interaction, &text);
        if step.by_document {
            lib.start_authentication_device_link_document_session(req.clone(), doc.clone())
                .await
                .unwrap();
        } else {
            lib.start_authentication_device_link_anonymous_session(req.clone())
                .await
                .unwrap();
        }
        let id = lib.get_session().unwrap().session_id().clone();
        let link = lib.generate_device_link(DeviceLinkType::QR, "eng").unwrap();
        assert!(
            link.starts_with(&format!(
                "{DEVICE_LINK_BASE}?deviceLinkType=QR&elapsedSeconds="
            )),
            "{link}"
        );
        let t = dev::claim_device_link(device, state, &link).await.unwrap();
        assert_eq!(t.transaction_id, id);
        let challenge = rp_challenge(&req.signature_protocol_parameters);
        (id, t, challenge, req.relying_party_name, req.interactions)
    } else {
        let req = AuthenticationNotificationRequest::new(
            cfg,
            vec![interaction(step.interaction, &text)],
            SignatureAlgorithm::RsassaPss,
            AuthenticationCertificateLevel::QUALIFIED,
            HashingAlgorithm::sha_512,
        )
        .unwrap();
        let vc = lib
            .start_authentication_notification_document_session(req.clone(), doc.clone())
            .await
            .unwrap();
        assert_eq!(vc.vc_type, VCCodeType::numeric4);
        let challenge = rp_challenge(&req.signature_protocol_parameters);
        assert_eq!(vc.value, auth_vc(&challenge));
        let id = lib.get_session().unwrap().session_id().clone();
        let t = pending_session(device, state, &id).await.unwrap();
        // The code the device shows is the library's.
        let p = dev::prompt(state, &t).unwrap();
        assert_eq!(p.verification_code, vc.value);
        assert!(p.vc_choices.is_empty());
        (id, t, challenge, req.relying_party_name, req.interactions)
    };
    assert_eq!(t.rp_api.as_ref().unwrap().flow_type, step.flow);
    let p = dev::prompt(state, &t).unwrap();
    assert_eq!(p.display_text, text);
    assert_eq!(p.relying_party, RP_NAME);
    assert_eq!(p.key_type, KeyType::Auth);
    let r = dev::confirm(device, state, &t, &Pin::new("1234").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32, "{r:?}");

    let from_library = library_status(lib, step.name, step.verdict).await;

    let b = rest_session_result(server, &id).unwrap();
    eprintln!("{}: session status {b}", step.name);
    if let Some(s) = &from_library {
        same_as_raw(s, &b);
    }
    let dir = server.tmp.path().join(step.name);
    let auth_cert = state.key_pair(KeyType::Auth).unwrap().certificate.clone();
    let (der, sig, leaf) = verify_response(
        server,
        &dir,
        &b,
        &Expected {
            protocol: "ACSP_V2",
            flow_type: step.flow,
            requested_level: "QUALIFIED",
            document_number: &doc,
            certificate: &auth_cert,
        },
    );
    verify_acsp_v2(
        &dir,
        &leaf,
        &der,
        &sig,
        &b,
        &AuthSent {
            rp_challenge: &sent_challenge,
            interaction_type: step.interaction,
            relying_party_name: &sent_name,
            interactions: &sent_interactions,
        },
    );
    library_chain_check_is_ineffective(lib, &der);
}

#[tokio::test(flavor = "multi_thread")]
async fn library_authentication_device_link_and_notification() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let device = server.device_client().await.unwrap();
    let lib = SmartIdClient::new(&config(&server), None, vec![], vec![]);
    let steps = [
        // Anonymous device link (QR), displayTextAndPIN.
        AuthStep {
            name: "qr-anonymous",
            flow: "QR",
            by_document: false,
            interaction: "displayTextAndPIN",
            verdict: Verdict::PinSpellingBug,
        },
        // Device link (QR) by document number, displayTextAndPIN.
        AuthStep {
            name: "qr-document",
            flow: "QR",
            by_document: true,
            interaction: "displayTextAndPIN",
            verdict: Verdict::PinSpellingBug,
        },
        // Notification by document number, displayTextAndPIN.
        AuthStep {
            name: "notification-document",
            flow: "Notification",
            by_document: false,
            interaction: "displayTextAndPIN",
            verdict: Verdict::PinSpellingBug,
        },
        // The same with confirmationMessage (spelt alike by strum and serde): the library
        // verifies Tandem's ACSP_V2 signatures itself and accepts both.
        AuthStep {
            name: "qr-anonymous-confirmation",
            flow: "QR",
            by_document: false,
            interaction: "confirmationMessage",
            verdict: Verdict::Accepted,
        },
        AuthStep {
            name: "notification-document-confirmation",
            flow: "Notification",
            by_document: false,
            interaction: "confirmationMessage",
            verdict: Verdict::Accepted,
        },
    ];
    for step in &steps {
        authentication(&server, &lib, &device, &mut state, step).await;
    }
    // The anonymous session the library accepted set its user identity from the
    // certificate; the later one by document was checked against it.
    let who = lib.get_user_identity().unwrap().expect("identity");
    assert_eq!(
        (
            who.given_name.as_str(),
            who.surname.as_str(),
            who.identity_code.as_str()
        ),
        (MARY.given, MARY.surname, MARY_ETSI)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn library_certificate_choice_then_notification_signing() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let doc = state.document_number.clone();
    let device = server.device_client().await.unwrap();
    let cfg = config(&server);
    let lib = SmartIdClient::new(&cfg, None, vec![], vec![]);
    let sign_cert = state.key_pair(KeyType::Sign).unwrap().certificate.clone();
    assert!(!sign_cert.is_empty());

    // 1. Certificate choice by ETSI semantic identifier (notification).
    lib.start_certificate_choice_notification_etsi_session(
        CertificateChoiceNotificationRequest::new(&cfg),
        MARY_ETSI.into(),
    )
    .await
    .unwrap();
    let id = lib.get_session().unwrap().session_id().clone();
    let t = pending_session(&device, &state, &id).await.unwrap();
    assert!(dev::prompt(&state, &t).unwrap().certificate_choice);
    let prepared = dev::prepare_certificate_choice(&state, &t).unwrap();
    let r = dev::send_confirm(&device, &mut state, &prepared)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32, "{r:?}");

    let from_library = library_status(&lib, "certificate-choice", Verdict::Accepted)
        .await
        .unwrap();
    let b = rest_session_result(&server, &id).unwrap();
    eprintln!("certificate-choice: session status {b}");
    same_as_raw(&from_library, &b);
    // A certificate choice carries no signature: only the flow type.
    assert_eq!(b["signature"], json!({"flowType": "Notification"}), "{b}");
    assert_eq!(b["state"], json!("COMPLETE"), "{b}");
    assert_eq!(b["result"]["endResult"], json!("OK"), "{b}");
    assert_eq!(b["result"]["documentNumber"], json!(doc), "{b}");
    assert_eq!(b["cert"]["certificateLevel"], json!("QUALIFIED"), "{b}");
    let chosen = STANDARD
        .decode(b["cert"]["value"].as_str().expect("cert.value"))
        .unwrap();
    assert_eq!(
        chosen, sign_cert,
        "the certificate choice must return the SIGN certificate"
    );
    let dir = server.tmp.path().join("certificate-choice");
    std::fs::create_dir_all(&dir).unwrap();
    let leaf = dir.join("leaf.pem");
    std::fs::write(&leaf, cert_pem(&chosen)).unwrap();
    let (ok, out) = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            server.data_dir.join("pki/root.pem").to_str().unwrap(),
            "-untrusted",
            server.data_dir.join("pki/issuing.pem").to_str().unwrap(),
            leaf.to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains(": OK"), "{out}");
    assert_eq!(attr(&subject(&dir, &leaf), "serialNumber"), MARY_ETSI);
    library_chain_check_is_ineffective(&lib, &chosen);

    // 2. Notification signing by document number: RAW_DIGEST_SIGNATURE over SHA-512 of the
    // document. The library's `new` takes the data (Base64) and sends its SHA-512 digest.
    let document = b"Contract 42: Tandem Test Bank and MARY TESTNUMBER agree.".repeat(20);
    let text = "Sign contract 42";
    let req = SignatureNotificationRequest::new(
        &cfg,
        vec![Interaction::DisplayTextAndPIN {
            display_text_60: text.into(),
        }],
        STANDARD.encode(&document),
        SignatureAlgorithm::RsassaPss,
        HashingAlgorithm::sha_512,
    )
    .unwrap();
    let digest = Sha512::digest(&document).to_vec();
    match &req.signature_protocol_parameters {
        SignatureProtocolParameters::RAW_DIGEST_SIGNATURE { digest: d, .. } => {
            assert_eq!(d, &STANDARD.encode(&digest))
        }
        other => panic!("not RAW_DIGEST_SIGNATURE: {other:?}"),
    }
    assert_eq!(req.certificate_level, CertificateLevel::QUALIFIED);
    let vc = lib
        .start_signature_notification_document_session(req.clone(), doc.clone())
        .await
        .unwrap();
    assert_eq!(vc.vc_type, VCCodeType::numeric4);
    assert!(
        vc.value.len() == 4 && vc.value.bytes().all(|c| c.is_ascii_digit()),
        "{vc:?}"
    );
    let id = lib.get_session().unwrap().session_id().clone();
    let t = pending_session(&device, &state, &id).await.unwrap();
    let p = dev::prompt(&state, &t).unwrap();
    assert_eq!(p.verification_code, vc.value);
    assert_eq!(p.display_text, text);
    assert_eq!(p.key_type, KeyType::Sign);
    let r = dev::confirm(&device, &mut state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32, "{r:?}");

    let from_library = library_status(&lib, "notification-signature", Verdict::Accepted)
        .await
        .unwrap();
    let b = rest_session_result(&server, &id).unwrap();
    eprintln!("notification-signature: session status {b}");
    same_as_raw(&from_library, &b);
    let dir = server.tmp.path().join("notification-signature");
    let (der, sig, leaf) = verify_response(
        &server,
        &dir,
        &b,
        &Expected {
            protocol: "RAW_DIGEST_SIGNATURE",
            flow_type: "Notification",
            requested_level: "QUALIFIED",
            document_number: &doc,
            certificate: &sign_cert,
        },
    );
    assert_eq!(
        der, chosen,
        "signed with another certificate than the chosen one"
    );
    // Step 9 for signatures: over the digest sent (openssl pkeyutl) and over the data
    // itself (the openssl crate hashes it).
    check_pss_parameters(&b);
    let (ok, out) = pkeyutl_verify(&dir, &leaf, &digest, &sig);
    assert!(ok, "signature rejected by openssl pkeyutl: {out}");
    assert!(openssl_crate_verify(&der, &document, &sig));
    let mut tampered = document.clone();
    tampered[0] ^= 1;
    assert!(!openssl_crate_verify(&der, &tampered, &sig));

    // 3. The signing-certificate query returns the same certificate.
    let c = lib
        .get_signing_certificate(
            doc.clone(),
            SigningCertificateRequest {
                relying_party_uuid: cfg.relying_party_uuid.clone(),
                relying_party_name: cfg.relying_party_name.clone(),
                certificate_level: CertificateLevel::QUALIFIED,
            },
        )
        .await
        .unwrap();
    assert_eq!(c.certificate_level, CertificateLevel::QUALIFIED);
    assert_eq!(STANDARD.decode(&c.value).unwrap(), sign_cert);
}
