//! Verification against certificates and signatures made with OpenSSL: the test PKI of
//! `tandem-rp-test-pki` (a root CA, an issuing CA and end-entity certificates shaped like
//! ours, 2048-bit keys) and signatures made here with its user key.

use std::time::Duration;

use openssl::sign::Signer;
use tandem_rp_test_pki::{PERSON, pki};

use super::*;
use crate::api::types::{
    AcspV2Signature, AuthCertificateLevel, AuthSignatureProtocol, AuthSignatureProtocolParameters,
    Interaction, NotificationSigningRequest, RawDigestSignature, SessionResult,
    SignSignatureProtocol, SignSignatureProtocolParameters, SignatureAlgorithmParametersInRequest,
    encode_interactions,
};

const DOCUMENT: &str = "PNOEE-30303039914-MOCK-Q";
const SERVER_RANDOM: &str = "MTlop6EXCrQ6FOErcKjxUhbV";
const USER_CHALLENGE_VERIFIER: &str = "XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c";
const CALLBACK: &str = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ";
const SESSION_SECRET: &str = "B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps=";

pub(crate) fn anchors() -> TrustAnchors {
    let p = pki();
    let mut a = TrustAnchors::new();
    a.add_roots_pem(&p.root.to_pem().unwrap()).unwrap();
    a.add_intermediates_pem(&p.issuing.to_pem().unwrap())
        .unwrap();
    a
}

fn cert_b64(c: &X509) -> String {
    STANDARD.encode(c.to_der().unwrap())
}

fn pss_sign(hash: HashAlgorithm, message: &[u8]) -> Vec<u8> {
    let mut s = Signer::new(message_digest(hash), &pki().leaf_key).unwrap();
    s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    s.set_rsa_pss_saltlen(RsaPssSaltlen::custom(hash.output_len() as i32))
        .unwrap();
    s.set_rsa_mgf1_md(message_digest(hash)).unwrap();
    s.sign_oneshot_to_vec(message).unwrap()
}

/// Signs a precomputed digest (the way a RAW_DIGEST_SIGNATURE device does).
fn sign_digest(alg: SignatureAlgorithm, hash: HashAlgorithm, digest: &[u8]) -> Vec<u8> {
    let mut ctx = PkeyCtx::new(&pki().leaf_key).unwrap();
    ctx.sign_init().unwrap();
    if alg == SignatureAlgorithm::RsassaPss {
        ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        ctx.set_signature_md(md(hash)).unwrap();
        ctx.set_rsa_mgf1_md(md(hash)).unwrap();
        ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(hash.output_len() as i32))
            .unwrap();
    } else {
        ctx.set_rsa_padding(Padding::PKCS1).unwrap();
        ctx.set_signature_md(md(hash)).unwrap();
    }
    let mut sig = vec![];
    ctx.sign_to_vec(digest, &mut sig).unwrap();
    sig
}

// ---------------------------------------------------------------- authentication

fn interactions() -> String {
    encode_interactions(&[
        Interaction::DisplayTextAndPin {
            display_text60: "Log in to Demo Bank".into(),
        },
        Interaction::ConfirmationMessage {
            display_text200: "Log in to Demo Bank with a confirmation".into(),
        },
    ])
}

fn auth_request(callback: Option<&str>) -> DeviceLinkAuthenticationRequest {
    DeviceLinkAuthenticationRequest {
        relying_party_uuid: "00000000-0000-4000-8000-000000000000".into(),
        relying_party_name: "DEMO".into(),
        initial_callback_url: callback.map(str::to_owned),
        certificate_level: Some(AuthCertificateLevel::Qualified),
        signature_protocol: AuthSignatureProtocol::AcspV2,
        signature_protocol_parameters: AuthSignatureProtocolParameters {
            rp_challenge: super::super::generate_rp_challenge(&mut rand_core::OsRng),
            signature_algorithm: SignatureAlgorithm::RsassaPss,
            signature_algorithm_parameters: Some(SignatureAlgorithmParametersInRequest {
                hash_algorithm: HashAlgorithm::Sha512,
            }),
        },
        interactions: interactions(),
        request_properties: None,
        capabilities: None,
        nonce: None,
    }
}

/// What the device signs: the ACSP_V2 payload of the request and these response values.
fn device_auth_response(
    req: &DeviceLinkAuthenticationRequest,
    flow: FlowType,
    used: InteractionType,
) -> SessionStatusResponse {
    let callback = match flow {
        FlowType::Web2App | FlowType::App2App => req.initial_callback_url.as_deref(),
        _ => None,
    };
    let user_challenge = crate::api::acsp::user_challenge(USER_CHALLENGE_VERIFIER);
    let payload = acsp_v2_payload(&AcspV2Fields {
        scheme_name: "smart-id",
        server_random: SERVER_RANDOM,
        rp_challenge: &req.signature_protocol_parameters.rp_challenge,
        user_challenge: &user_challenge,
        relying_party_name: &req.relying_party_name,
        brokered_rp_name: None,
        interactions: &req.interactions,
        interaction_type_used: used,
        initial_callback_url: callback,
        flow_type: flow,
    });
    let sig = pss_sign(HashAlgorithm::Sha512, payload.as_bytes());
    SessionStatusResponse {
        state: SessionState::Complete,
        result: Some(SessionResult {
            end_result: EndResult::Ok,
            document_number: Some(DOCUMENT.into()),
            details: None,
        }),
        signature_protocol: Some(SignatureProtocol::AcspV2),
        signature: Some(Signature::AcspV2(AcspV2Signature {
            value: STANDARD.encode(sig),
            server_random: SERVER_RANDOM.into(),
            user_challenge,
            flow_type: flow,
            signature_algorithm: SignatureAlgorithm::RsassaPss,
            signature_algorithm_parameters: Some(
                SignatureAlgorithmParametersInResponse::rsassa_pss(HashAlgorithm::Sha512),
            ),
        })),
        cert: Some(Cert {
            value: cert_b64(&pki().auth),
            certificate_level: "QUALIFIED".into(),
        }),
        interaction_type_used: Some(used),
        device_ip_address: None,
        ignored_properties: None,
    }
}

struct AuthCase {
    status: SessionStatusResponse,
    expected: AuthenticationExpectation,
    anchors: TrustAnchors,
    now: SystemTime,
}

impl AuthCase {
    fn qr() -> Self {
        let req = auth_request(None);
        Self {
            status: device_auth_response(&req, FlowType::Qr, InteractionType::DisplayTextAndPin),
            expected: AuthenticationExpectation::device_link(
                &req,
                "smart-id",
                &AuthTarget::Anonymous,
            )
            .unwrap(),
            anchors: anchors(),
            now: SystemTime::now(),
        }
    }

    fn acsp(&mut self) -> &mut AcspV2Signature {
        match &mut self.status.signature {
            Some(Signature::AcspV2(s)) => s,
            _ => unreachable!(),
        }
    }

    fn run(&self) -> Result<VerifiedAuthentication, VerificationError> {
        verify_authentication(&self.status, &self.expected, &self.anchors, self.now)
    }

    /// Fails, and at `step`.
    fn fails_at(&self, step: VerificationStep) -> String {
        match self.run() {
            Ok(_) => panic!("verified, expected a failure at {step}"),
            Err(e) => {
                assert_eq!(e.step, step, "{e}");
                assert!(e.passed.steps.iter().all(|s| s.step != step));
                e.reason
            }
        }
    }
}

#[test]
fn authentication_verifies_step_by_step() {
    let c = AuthCase::qr();
    let v = c.run().unwrap();
    assert_eq!(v.identity.serial_number, PERSON);
    assert_eq!(v.identity.given_name.as_deref(), Some("QUALIFIED OK1"));
    assert_eq!(v.identity.surname.as_deref(), Some("TESTNUMBER"));
    assert_eq!(v.identity.country, "EE");
    assert_eq!(v.document_number.as_deref(), Some(DOCUMENT));
    assert_eq!(v.level, CertificateLevel::Qualified);
    assert_eq!(v.flow_type, FlowType::Qr);
    assert_eq!(v.interaction_type_used, InteractionType::DisplayTextAndPin);
    let steps: Vec<VerificationStep> = v.report.steps.iter().map(|s| s.step).collect();
    use VerificationStep as S;
    assert_eq!(
        steps,
        [
            S::SessionResult,
            S::SessionSecret,
            S::UserChallenge,
            S::Certificate,
            S::CertificateValidity,
            S::CertificateChain,
            S::CertificatePolicies,
            S::CertificatePurpose,
            S::CertificateLevel,
            S::Identity,
            S::SignatureAlgorithm,
            S::ResponseFields,
            S::Signature,
        ]
    );
    let lines: Vec<String> = v.report.steps.iter().map(|s| s.to_string()).collect();
    assert!(
        lines.contains(&"certificate chain: OK (3 certificates up to a trusted root)".to_owned())
    );
    assert!(lines.contains(&"session secret digest: not applicable (QR flow)".to_owned()));
    assert_eq!(
        v.identity.to_string(),
        "QUALIFIED OK1 TESTNUMBER, PNOEE-30303039914 (EE)"
    );
}

#[test]
fn changed_server_random_fails_the_signature() {
    let mut c = AuthCase::qr();
    c.acsp().server_random = "AAAAAAAAAAAAAAAAAAAAAAAA".into();
    c.fails_at(VerificationStep::Signature);
    // Too short or not Base64: refused before the signature is even tried.
    c.acsp().server_random = "MTlop6EXCrQ6FOErcKjxUhb".into();
    c.fails_at(VerificationStep::ResponseFields);
    c.acsp().server_random = "MTlop6EXCrQ6FOErcKjxUhbV_-".into();
    c.fails_at(VerificationStep::ResponseFields);
}

#[test]
fn changed_user_challenge_fails() {
    let mut c = AuthCase::qr();
    c.acsp().user_challenge = crate::api::acsp::user_challenge("another verifier");
    c.fails_at(VerificationStep::Signature);
    c.acsp().user_challenge = "GnsWXXEjTCKR89fj9uo5u5ReBZ9JR7+pezLAI5jMS00".into();
    c.fails_at(VerificationStep::ResponseFields);
}

#[test]
fn changed_interaction_type_fails() {
    let mut c = AuthCase::qr();
    // Requested, but not the one the device signed.
    c.status.interaction_type_used = Some(InteractionType::ConfirmationMessage);
    c.fails_at(VerificationStep::Signature);
    // Never requested.
    c.status.interaction_type_used =
        Some(InteractionType::ConfirmationMessageAndVerificationCodeChoice);
    let r = c.fails_at(VerificationStep::ResponseFields);
    assert!(r.contains("was not requested"), "{r}");
    c.status.interaction_type_used = None;
    c.fails_at(VerificationStep::ResponseFields);
}

#[test]
fn changed_flow_type_fails() {
    let mut c = AuthCase::qr();
    // Not offered: a QR-only session (no callback URL) cannot end in Web2App.
    c.acsp().flow_type = FlowType::Web2App;
    // (Same-device flows check the callback values first.)
    c.fails_at(VerificationStep::SessionSecret);
    c.acsp().flow_type = FlowType::Notification;
    let r = c.fails_at(VerificationStep::ResponseFields);
    assert!(r.contains("not offered"), "{r}");
    // Offered, but not what the device signed.
    c.expected.allowed_flows.push(FlowType::Notification);
    c.fails_at(VerificationStep::Signature);
}

#[test]
fn changed_signature_byte_fails() {
    let mut c = AuthCase::qr();
    let mut sig = STANDARD.decode(&c.acsp().value).unwrap();
    sig[100] ^= 0x01;
    c.acsp().value = STANDARD.encode(&sig);
    let r = c.fails_at(VerificationStep::Signature);
    assert_eq!(
        r,
        "the signature does not verify with the certificate's key"
    );
    c.acsp().value = "not base64!".into();
    c.fails_at(VerificationStep::Signature);
}

#[test]
fn changed_request_values_fail_the_signature() {
    let mut c = AuthCase::qr();
    c.expected.relying_party_name = "Demo".into();
    c.fails_at(VerificationStep::Signature);
    let mut c = AuthCase::qr();
    c.expected.rp_challenge = super::super::generate_rp_challenge(&mut rand_core::OsRng);
    c.fails_at(VerificationStep::Signature);
    let mut c = AuthCase::qr();
    c.expected.scheme_name = "smart-id-demo".into();
    c.fails_at(VerificationStep::Signature);
    let mut c = AuthCase::qr();
    c.expected.brokered_rp_name = Some("Broker".into());
    c.fails_at(VerificationStep::Signature);
}

#[test]
fn wrong_root_or_missing_intermediate_fails_the_chain() {
    let p = pki();
    let mut c = AuthCase::qr();
    let mut a = TrustAnchors::new();
    a.add_roots_pem(&p.other_root.to_pem().unwrap()).unwrap();
    a.add_intermediates_pem(&p.issuing.to_pem().unwrap())
        .unwrap();
    c.anchors = a;
    c.fails_at(VerificationStep::CertificateChain);

    let mut a = TrustAnchors::new();
    a.add_roots_pem(&p.root.to_pem().unwrap()).unwrap();
    c.anchors = a;
    c.fails_at(VerificationStep::CertificateChain);

    c.anchors = TrustAnchors::new();
    let r = c.fails_at(VerificationStep::CertificateChain);
    assert_eq!(r, "no trust anchors configured");

    // A certificate from another CA with the same subject names.
    let mut c = AuthCase::qr();
    c.status.cert.as_mut().unwrap().value = cert_b64(&p.foreign_auth);
    c.fails_at(VerificationStep::CertificateChain);
    // Trusting the intermediate alone does not make it an anchor.
    let mut a = TrustAnchors::new();
    a.add_intermediates_pem(&p.issuing.to_pem().unwrap())
        .unwrap();
    let mut c = AuthCase::qr();
    c.anchors = a;
    c.fails_at(VerificationStep::CertificateChain);
}

#[test]
fn expired_or_future_certificate_fails() {
    let mut c = AuthCase::qr();
    c.now = SystemTime::now() + Duration::from_secs(400 * 86_400);
    let r = c.fails_at(VerificationStep::CertificateValidity);
    assert!(r.starts_with("expired at"), "{r}");
    c.now = SystemTime::now() - Duration::from_secs(3 * 86_400);
    c.fails_at(VerificationStep::CertificateValidity);
}

#[test]
fn session_result_must_be_complete_ok_acsp() {
    let mut c = AuthCase::qr();
    c.status.result.as_mut().unwrap().end_result = EndResult::UserRefusedInteraction;
    c.status.result.as_mut().unwrap().details = Some(crate::api::types::ResultDetails {
        interaction: Some("displayTextAndPIN".into()),
    });
    let r = c.fails_at(VerificationStep::SessionResult);
    assert_eq!(
        r,
        "endResult is USER_REFUSED_INTERACTION (interaction displayTextAndPIN)"
    );
    let mut c = AuthCase::qr();
    c.status.state = SessionState::Running;
    c.fails_at(VerificationStep::SessionResult);
    let mut c = AuthCase::qr();
    c.status.signature_protocol = Some(SignatureProtocol::RawDigestSignature);
    c.fails_at(VerificationStep::SessionResult);
    let mut c = AuthCase::qr();
    c.status.cert = None;
    c.fails_at(VerificationStep::SessionResult);
}

#[test]
fn algorithm_parameters_must_be_the_requested_ones() {
    let mut c = AuthCase::qr();
    c.acsp()
        .signature_algorithm_parameters
        .as_mut()
        .unwrap()
        .salt_length = Some(32);
    c.fails_at(VerificationStep::SignatureAlgorithm);
    let mut c = AuthCase::qr();
    c.acsp().signature_algorithm_parameters = Some(SignatureAlgorithmParametersInResponse {
        mask_gen_algorithm: SignatureAlgorithmParametersInResponse::rsassa_pss(
            HashAlgorithm::Sha256,
        )
        .mask_gen_algorithm,
        ..SignatureAlgorithmParametersInResponse::rsassa_pss(HashAlgorithm::Sha512)
    });
    let r = c.fails_at(VerificationStep::SignatureAlgorithm);
    assert!(r.contains("MGF1"), "{r}");
    let mut c = AuthCase::qr();
    c.acsp()
        .signature_algorithm_parameters
        .as_mut()
        .unwrap()
        .trailer_field = Some("0x01".into());
    c.fails_at(VerificationStep::SignatureAlgorithm);
    let mut c = AuthCase::qr();
    c.acsp().signature_algorithm = SignatureAlgorithm::Sha512WithRsaEncryption;
    c.fails_at(VerificationStep::SignatureAlgorithm);
    let mut c = AuthCase::qr();
    c.acsp().signature_algorithm_parameters = None;
    c.fails_at(VerificationStep::SignatureAlgorithm);
}

#[test]
fn certificate_level_purpose_policy_and_identity() {
    // ADVANCED below the requested QUALIFIED.
    let mut c = AuthCase::qr();
    c.status.cert.as_mut().unwrap().certificate_level = "ADVANCED".into();
    let r = c.fails_at(VerificationStep::CertificateLevel);
    assert_eq!(r, "ADVANCED is below the requested QUALIFIED");
    c.expected.certificate_level = CertificateLevel::Advanced;
    assert_eq!(c.run().unwrap().level, CertificateLevel::Advanced);

    // A signing certificate is not an authentication certificate.
    let mut c = AuthCase::qr();
    c.status.cert.as_mut().unwrap().value = cert_b64(&pki().sign);
    c.fails_at(VerificationStep::CertificatePurpose);
    // The two authentication profiles of response_verification.txt pass; clientAuth with
    // digitalSignature alone is neither.
    let mut c = AuthCase::qr();
    let step = |c: &AuthCase| {
        c.run()
            .unwrap()
            .report
            .steps
            .iter()
            .find(|s| s.step == VerificationStep::CertificatePurpose)
            .map(|s| format!("{:?}", s.outcome))
            .unwrap()
    };
    assert!(step(&c).contains("Smart-ID authentication EKU"));
    c.status.cert.as_mut().unwrap().value = cert_b64(&pki().auth_legacy);
    assert!(step(&c).contains("keyEncipherment, dataEncipherment, clientAuth"));
    c.status.cert.as_mut().unwrap().value = cert_b64(&pki().auth_client_only);
    let r = c.fails_at(VerificationStep::CertificatePurpose);
    assert!(
        r.contains("needs keyEncipherment and dataEncipherment"),
        "{r}"
    );

    // Scheme policy OIDs, when configured.
    let mut c = AuthCase::qr();
    c.anchors.require_policy("1.3.6.1.4.1.32473.1.1.1").unwrap();
    c.run().unwrap();
    c.anchors.require_policy("1.3.6.1.4.1.32473.1.1.2").unwrap();
    c.fails_at(VerificationStep::CertificatePolicies);

    // Expected person and document.
    let mut c = AuthCase::qr();
    c.expected.expected_identity = Some(ExpectedIdentity::Etsi(PERSON.into()));
    c.run().unwrap();
    c.expected.expected_identity = Some(ExpectedIdentity::Etsi("PNOEE-30303039903".into()));
    c.fails_at(VerificationStep::Identity);
    c.expected.expected_identity = Some(ExpectedIdentity::Document(DOCUMENT.into()));
    c.run().unwrap();
    c.expected.expected_identity = Some(ExpectedIdentity::Document(
        "PNOEE-30303039914-OTHR-Q".into(),
    ));
    c.fails_at(VerificationStep::Identity);
}

#[test]
fn same_device_flow_checks_the_callback_values() {
    let req = auth_request(Some(CALLBACK));
    let mut c = AuthCase {
        status: device_auth_response(
            &req,
            FlowType::Web2App,
            InteractionType::ConfirmationMessage,
        ),
        expected: AuthenticationExpectation::device_link(
            &req,
            "smart-id",
            &AuthTarget::User(UserRef::Etsi(PERSON.into())),
        )
        .unwrap(),
        anchors: anchors(),
        now: SystemTime::now(),
    };
    // No callback values: refused.
    c.fails_at(VerificationStep::SessionSecret);
    let good = SameDeviceCallback {
        session_secret_b64: SESSION_SECRET.into(),
        // callback_urls.txt example value for this secret.
        session_secret_digest: "U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc".into(),
        user_challenge_verifier: Some(USER_CHALLENGE_VERIFIER.into()),
    };
    c.expected.callback = Some(good.clone());
    let v = c.run().unwrap();
    assert_eq!(v.flow_type, FlowType::Web2App);
    c.expected.callback = Some(SameDeviceCallback {
        session_secret_digest: "U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBd".into(),
        ..good.clone()
    });
    c.fails_at(VerificationStep::SessionSecret);
    c.expected.callback = Some(SameDeviceCallback {
        user_challenge_verifier: Some("XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9d".into()),
        ..good.clone()
    });
    c.fails_at(VerificationStep::UserChallenge);
    // The callback URL is part of the payload for same-device flows.
    c.expected.callback = Some(good);
    c.expected.initial_callback_url = Some("https://rp.example.com/other".into());
    c.fails_at(VerificationStep::Signature);
}

// ---------------------------------------------------------------- signing

fn sign_request(
    alg: SignatureAlgorithm,
    hash: HashAlgorithm,
    digest: &[u8],
) -> NotificationSigningRequest {
    NotificationSigningRequest {
        relying_party_uuid: "00000000-0000-4000-8000-000000000000".into(),
        relying_party_name: "DEMO".into(),
        certificate_level: Some(SignCertificateLevel::Qualified),
        signature_protocol: SignSignatureProtocol::RawDigestSignature,
        signature_protocol_parameters: SignSignatureProtocolParameters {
            digest: STANDARD.encode(digest),
            signature_algorithm: alg,
            signature_algorithm_parameters: (alg == SignatureAlgorithm::RsassaPss).then_some(
                SignatureAlgorithmParametersInRequest {
                    hash_algorithm: hash,
                },
            ),
        },
        nonce: None,
        interactions: interactions(),
        request_properties: None,
        capabilities: None,
    }
}

fn sign_response(
    alg: SignatureAlgorithm,
    hash: HashAlgorithm,
    digest: &[u8],
) -> SessionStatusResponse {
    SessionStatusResponse {
        state: SessionState::Complete,
        result: Some(SessionResult {
            end_result: EndResult::Ok,
            document_number: Some(DOCUMENT.into()),
            details: None,
        }),
        signature_protocol: Some(SignatureProtocol::RawDigestSignature),
        signature: Some(Signature::RawDigest(RawDigestSignature {
            value: STANDARD.encode(sign_digest(alg, hash, digest)),
            flow_type: FlowType::Notification,
            signature_algorithm: alg,
            signature_algorithm_parameters: (alg == SignatureAlgorithm::RsassaPss)
                .then(|| SignatureAlgorithmParametersInResponse::rsassa_pss(hash)),
        })),
        cert: Some(Cert {
            value: cert_b64(&pki().sign),
            certificate_level: "QUALIFIED".into(),
        }),
        interaction_type_used: Some(InteractionType::DisplayTextAndPin),
        device_ip_address: None,
        ignored_properties: None,
    }
}

fn sign_case(
    alg: SignatureAlgorithm,
    hash: HashAlgorithm,
) -> (SessionStatusResponse, SignatureExpectation) {
    let digest = super::hash(hash, b"the document").unwrap();
    let req = sign_request(alg, hash, &digest);
    let exp =
        SignatureExpectation::notification(&req, &UserRef::Document(DOCUMENT.into())).unwrap();
    (sign_response(alg, hash, &digest), exp)
}

fn sign_fails_at(
    status: &SessionStatusResponse,
    exp: &SignatureExpectation,
    step: VerificationStep,
) -> String {
    let e = verify_signature(status, exp, &anchors(), SystemTime::now()).unwrap_err();
    assert_eq!(e.step, step, "{e}");
    e.reason
}

#[test]
fn raw_digest_signatures_verify_pss_and_pkcs1() {
    for (alg, hash) in [
        (SignatureAlgorithm::RsassaPss, HashAlgorithm::Sha256),
        (SignatureAlgorithm::RsassaPss, HashAlgorithm::Sha512),
        (SignatureAlgorithm::RsassaPss, HashAlgorithm::Sha3_384),
        (
            SignatureAlgorithm::Sha256WithRsaEncryption,
            HashAlgorithm::Sha256,
        ),
        (
            SignatureAlgorithm::Sha512WithRsaEncryption,
            HashAlgorithm::Sha512,
        ),
    ] {
        let (status, exp) = sign_case(alg, hash);
        let v = verify_signature(&status, &exp, &anchors(), SystemTime::now())
            .unwrap_or_else(|e| panic!("{alg:?} {hash:?}: {e}"));
        assert_eq!(v.level, CertificateLevel::Qscd);
        assert_eq!(v.identity.serial_number, PERSON);
        assert_eq!(v.document_number.as_deref(), Some(DOCUMENT));
    }
}

#[test]
fn raw_digest_failures() {
    let (status, exp) = sign_case(SignatureAlgorithm::RsassaPss, HashAlgorithm::Sha256);
    // Another digest.
    let mut other = exp.clone();
    other.digest[0] ^= 1;
    sign_fails_at(&status, &other, VerificationStep::Signature);
    // A PKCS#1 v1.5 signature does not pass as PSS (and vice versa).
    let (pkcs, _) = sign_case(
        SignatureAlgorithm::Sha256WithRsaEncryption,
        HashAlgorithm::Sha256,
    );
    let mut mixed = status.clone();
    if let (Some(Signature::RawDigest(m)), Some(Signature::RawDigest(p))) =
        (&mut mixed.signature, &pkcs.signature)
    {
        m.value = p.value.clone();
    }
    sign_fails_at(&mixed, &exp, VerificationStep::Signature);
    // Flow not offered.
    let mut dl = exp.clone();
    dl.allowed_flows = vec![FlowType::Qr];
    sign_fails_at(&status, &dl, VerificationStep::ResponseFields);
    // An authentication certificate cannot sign.
    let mut s = status.clone();
    s.cert.as_mut().unwrap().value = cert_b64(&pki().auth);
    sign_fails_at(&s, &exp, VerificationStep::CertificatePurpose);
    // ACSP_V2 status for a signing session.
    let mut s = status.clone();
    s.signature_protocol = Some(SignatureProtocol::AcspV2);
    sign_fails_at(&s, &exp, VerificationStep::SessionResult);
}

#[test]
fn signing_levels_follow_qc_statements() {
    let (status, mut exp) = sign_case(SignatureAlgorithm::RsassaPss, HashAlgorithm::Sha256);
    exp.certificate_level = CertificateLevel::Qscd;
    verify_signature(&status, &exp, &anchors(), SystemTime::now()).unwrap();
    // QUALIFIED claimed, but no QcCompliance in the certificate.
    let mut s = status.clone();
    s.cert.as_mut().unwrap().value = cert_b64(&pki().sign_advanced);
    let r = sign_fails_at(&s, &exp, VerificationStep::CertificateLevel);
    assert!(r.contains("QcCompliance"), "{r}");
    // As ADVANCED it is fine for an ADVANCED request only.
    s.cert.as_mut().unwrap().certificate_level = "ADVANCED".into();
    sign_fails_at(&s, &exp, VerificationStep::CertificateLevel);
    exp.certificate_level = CertificateLevel::Advanced;
    assert_eq!(
        verify_signature(&s, &exp, &anchors(), SystemTime::now())
            .unwrap()
            .level,
        CertificateLevel::Advanced
    );
}

#[test]
fn standalone_certificate_and_pem_classification() {
    let p = pki();
    let mut a = TrustAnchors::new();
    let mut bundle = p.issuing.to_pem().unwrap();
    bundle.extend(p.root.to_pem().unwrap());
    assert_eq!(a.add_pem(&bundle).unwrap(), (1, 1));
    assert_eq!((a.root_count(), a.intermediate_count()), (1, 1));
    let cert = Cert {
        value: cert_b64(&p.sign),
        certificate_level: "QUALIFIED".into(),
    };
    let v = verify_certificate(
        &cert,
        CertificatePurpose::Signing,
        CertificateLevel::Qualified,
        Some(PERSON),
        &a,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(v.level, CertificateLevel::Qscd);
    assert_eq!(v.der, p.sign.to_der().unwrap());
    let e = verify_certificate(
        &cert,
        CertificatePurpose::Signing,
        CertificateLevel::Qualified,
        Some("PNOEE-1"),
        &a,
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(e.step, VerificationStep::Identity);
    assert!(TrustAnchors::new().add_pem(b"nothing").is_err());
}
