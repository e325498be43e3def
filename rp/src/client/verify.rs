//! Response verification (response_verification.txt), as pure functions: the session status
//! response, what the RP sent, its trust anchors and the current time go in; a report of every
//! step comes out, or an error naming the step that failed.
//!
//! ```text
//!  session result ─▶ session secret ─▶ user challenge ─▶ certificate ─▶ certificate validity
//!  (COMPLETE, OK,    (Web2App/App2App  (ACSP_V2,         (parses)       (notBefore..notAfter)
//!   protocol, cert,   only)             Web2App/App2App)
//!   signature)
//!  ─▶ certificate chain ─▶ certificate policies ─▶ certificate purpose ─▶ certificate level
//!     (only our anchors)   (scheme OIDs, if set)    (key usage, EKU, cA)   (>= requested)
//!  ─▶ identity ─▶ signature algorithm ─▶ response fields ─▶ signature
//!     (subject,    (as requested; PSS:    (flowType,          (RSASSA-PSS / PKCS#1 v1.5 with
//!      expected)    MGF1, salt, 0xbc)      interaction, ...)   the certificate's key)
//! ```
//!
//! Certificates are read with `x509-cert` (extensions) and checked with OpenSSL (chain, time,
//! signatures), an implementation independent of the one our server signs with. Revocation
//! (OCSP, CRL as fallback) needs the network and is not part of these functions: see
//! [`super::revocation`].

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::{Decode, Sequence};
use openssl::hash::MessageDigest;
use openssl::md::{Md, MdRef};
use openssl::nid::Nid;
use openssl::pkey::{Id as PkeyId, PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext};
use sha2::{Digest as _, Sha256};
use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage};

use super::Error;
use super::http::{AuthTarget, UserRef};
use crate::api::acsp::{AcspV2Fields, acsp_v2_payload};
// The level type of the expectations and results (the API's own, one definition).
pub use crate::api::level::CertificateLevel;
use crate::api::types::{
    AcspV2Signature, Cert, DeviceLinkAuthenticationRequest, DeviceLinkSigningRequest, EndResult,
    FlowType, HashAlgorithm, InteractionFlow, InteractionType, NotificationAuthenticationRequest,
    NotificationSigningLinkedRequest, NotificationSigningRequest, SessionState,
    SessionStatusResponse, SignCertificateLevel, Signature, SignatureAlgorithm,
    SignatureAlgorithmParametersInResponse, SignatureProtocol, decode_interactions,
    is_base64_pattern,
};
use crate::oids;

/// Smart-ID authentication extended key usage (certificates issued from April 2025).
pub const SMART_ID_AUTH_EKU: ObjectIdentifier = oids::KP_SMART_ID_AUTH;

// ---------------------------------------------------------------- report

/// A step of the verification algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerificationStep {
    /// COMPLETE, endResult OK, signatureProtocol, result/cert/signature present.
    SessionResult,
    /// `sessionSecretDigest` of the callback URL (Web2App/App2App).
    SessionSecret,
    /// `userChallengeVerifier` of the callback URL (authentication, Web2App/App2App).
    UserChallenge,
    /// `cert.value` is a DER X.509 certificate.
    Certificate,
    /// The end-entity certificate is valid now.
    CertificateValidity,
    /// The chain to one of our trust anchors verifies (signatures, validity, CA constraints).
    CertificateChain,
    /// The certificate carries the scheme's policy OIDs.
    CertificatePolicies,
    /// Key usage / extended key usage / basic constraints fit the purpose.
    CertificatePurpose,
    /// The certificate level meets the requested level.
    CertificateLevel,
    /// Subject identity, and the expected person or document.
    Identity,
    /// The signature algorithm and parameters are the requested ones.
    SignatureAlgorithm,
    /// flowType offered, interactionTypeUsed requested; for ACSP_V2 also the format of
    /// serverRandom and userChallenge.
    ResponseFields,
    /// The signature verifies with the certificate's key.
    Signature,
    /// The certificate is not revoked (OCSP, CRL as fallback; [`super::revocation`], needs
    /// the network).
    Revocation,
}

impl VerificationStep {
    pub fn name(self) -> &'static str {
        match self {
            Self::SessionResult => "session result",
            Self::SessionSecret => "session secret digest",
            Self::UserChallenge => "user challenge",
            Self::Certificate => "certificate",
            Self::CertificateValidity => "certificate validity",
            Self::CertificateChain => "certificate chain",
            Self::CertificatePolicies => "certificate policies",
            Self::CertificatePurpose => "certificate purpose",
            Self::CertificateLevel => "certificate level",
            Self::Identity => "identity",
            Self::SignatureAlgorithm => "signature algorithm",
            Self::ResponseFields => "response fields",
            Self::Signature => "signature",
            Self::Revocation => "revocation",
        }
    }
}

impl fmt::Display for VerificationStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Passed(String),
    /// The step does not apply to this flow (e.g. callback checks for a QR flow).
    NotApplicable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedStep {
    pub step: VerificationStep,
    pub outcome: StepOutcome,
}

impl fmt::Display for CheckedStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            StepOutcome::Passed(d) if d.is_empty() => write!(f, "{}: OK", self.step),
            StepOutcome::Passed(d) => write!(f, "{}: OK ({d})", self.step),
            StepOutcome::NotApplicable(d) => write!(f, "{}: not applicable ({d})", self.step),
        }
    }
}

/// The steps run so far, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerificationReport {
    pub steps: Vec<CheckedStep>,
}

/// Verification failed at `step`; `passed` holds the steps before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verification failed at {step}: {reason}")]
pub struct VerificationError {
    pub step: VerificationStep,
    pub reason: String,
    pub passed: VerificationReport,
}

/// Runs steps in order, collecting the report.
struct Run {
    report: VerificationReport,
}

impl Run {
    fn new() -> Self {
        Self {
            report: VerificationReport::default(),
        }
    }

    fn step<T>(
        &mut self,
        step: VerificationStep,
        f: impl FnOnce() -> Result<(T, StepOutcome), String>,
    ) -> Result<T, VerificationError> {
        match f() {
            Ok((v, outcome)) => {
                self.report.steps.push(CheckedStep { step, outcome });
                Ok(v)
            }
            Err(reason) => Err(VerificationError {
                step,
                reason,
                passed: self.report.clone(),
            }),
        }
    }

    fn check(
        &mut self,
        step: VerificationStep,
        f: impl FnOnce() -> Result<StepOutcome, String>,
    ) -> Result<(), VerificationError> {
        self.step(step, || f().map(|o| ((), o)))
    }
}

fn passed(s: impl Into<String>) -> StepOutcome {
    StepOutcome::Passed(s.into())
}

// ---------------------------------------------------------------- trust anchors

/// The RP's own trust configuration: root CAs (trust anchors), intermediate CAs (to build
/// the chain; not trusted by themselves) and, optionally, the policy OIDs every end-entity
/// certificate of the scheme must carry. The system certificate store is never used.
#[derive(Debug, Default, Clone)]
pub struct TrustAnchors {
    roots: Vec<X509>,
    intermediates: Vec<X509>,
    scheme_policies: Vec<ObjectIdentifier>,
}

fn parse_pem_certs(pem: &[u8]) -> Result<Vec<X509>, Error> {
    let certs = X509::stack_from_pem(pem)
        .map_err(|e| Error::Config(format!("cannot read PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config("no PEM certificate found".into()));
    }
    Ok(certs)
}

fn is_self_signed(c: &X509) -> bool {
    c.issued(c) == openssl::x509::X509VerifyResult::OK
        && c.public_key().and_then(|k| c.verify(&k)).unwrap_or(false)
}

impl TrustAnchors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds trust anchors (PEM, one or more certificates). Returns how many.
    pub fn add_roots_pem(&mut self, pem: &[u8]) -> Result<usize, Error> {
        let certs = parse_pem_certs(pem)?;
        let n = certs.len();
        self.roots.extend(certs);
        Ok(n)
    }

    /// Adds intermediate CA certificates (PEM). Returns how many.
    pub fn add_intermediates_pem(&mut self, pem: &[u8]) -> Result<usize, Error> {
        let certs = parse_pem_certs(pem)?;
        let n = certs.len();
        self.intermediates.extend(certs);
        Ok(n)
    }

    /// Adds certificates from PEM, self-signed ones as roots and the others as
    /// intermediates. Returns (roots, intermediates) added.
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<(usize, usize), Error> {
        let (mut r, mut i) = (0, 0);
        for c in parse_pem_certs(pem)? {
            if is_self_signed(&c) {
                self.roots.push(c);
                r += 1;
            } else {
                self.intermediates.push(c);
                i += 1;
            }
        }
        Ok((r, i))
    }

    /// Requires this policy OID in every end-entity certificate ("Smart-ID scheme
    /// identification"; for our CA, the policy arc's OIDs).
    pub fn require_policy(&mut self, oid: &str) -> Result<(), Error> {
        let oid = oid
            .parse::<ObjectIdentifier>()
            .map_err(|e| Error::Config(format!("policy OID {oid:?}: {e}")))?;
        self.scheme_policies.push(oid);
        Ok(())
    }

    pub fn roots(&self) -> &[X509] {
        &self.roots
    }

    pub fn intermediates(&self) -> &[X509] {
        &self.intermediates
    }

    /// Intermediates, then roots.
    pub fn all_certificates(&self) -> impl Iterator<Item = &X509> {
        self.intermediates.iter().chain(&self.roots)
    }

    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    pub fn intermediate_count(&self) -> usize {
        self.intermediates.len()
    }
}

// ---------------------------------------------------------------- expectations

/// Who the RP expected to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedIdentity {
    /// The certificate's subject serialNumber must equal this semantics identifier.
    Etsi(String),
    /// `result.documentNumber` must equal this document number.
    Document(String),
}

impl From<&UserRef> for ExpectedIdentity {
    fn from(u: &UserRef) -> Self {
        match u {
            UserRef::Etsi(id) => Self::Etsi(id.clone()),
            UserRef::Document(n) => Self::Document(n.clone()),
        }
    }
}

/// What the user's browser brought back on the callback URL of a same-device flow
/// (callback_urls.txt), plus the start response's `sessionSecret`.
#[derive(Debug, Clone)]
pub struct SameDeviceCallback {
    /// Base64 `sessionSecret` of the start response.
    pub session_secret_b64: String,
    /// `sessionSecretDigest` query parameter of the callback URL.
    pub session_secret_digest: String,
    /// `userChallengeVerifier` query parameter (authentication only).
    pub user_challenge_verifier: Option<String>,
}

/// What a certificate is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePurpose {
    Authentication,
    Signing,
}

/// The request values an authentication result is checked against.
#[derive(Debug, Clone)]
pub struct AuthenticationExpectation {
    /// `smart-id` unless the server is configured otherwise.
    pub scheme_name: String,
    /// Exactly as sent.
    pub relying_party_name: String,
    pub brokered_rp_name: Option<String>,
    /// Base64, exactly as sent.
    pub rp_challenge: String,
    /// Base64 `interactions`, exactly as sent.
    pub interactions: String,
    pub initial_callback_url: Option<String>,
    pub signature_algorithm: SignatureAlgorithm,
    pub hash: HashAlgorithm,
    pub certificate_level: CertificateLevel,
    /// Flow types offered to the user.
    pub allowed_flows: Vec<FlowType>,
    pub expected_identity: Option<ExpectedIdentity>,
    /// Required when the result's flowType is Web2App or App2App.
    pub callback: Option<SameDeviceCallback>,
}

fn missing_hash() -> Error {
    Error::InvalidRequest(crate::api::ValidationError {
        field: "signatureProtocolParameters.signatureAlgorithmParameters",
        reason: "rsassa-pss needs a hashAlgorithm".into(),
    })
}

impl AuthenticationExpectation {
    /// For a device-link authentication request: QR is offered always, Web2App and App2App
    /// when the request has a callback URL.
    pub fn device_link(
        req: &DeviceLinkAuthenticationRequest,
        scheme_name: &str,
        target: &AuthTarget,
    ) -> Result<Self, Error> {
        let p = &req.signature_protocol_parameters;
        let mut allowed_flows = vec![FlowType::Qr];
        if req.initial_callback_url.is_some() {
            allowed_flows.extend([FlowType::Web2App, FlowType::App2App]);
        }
        Ok(Self {
            scheme_name: scheme_name.to_owned(),
            relying_party_name: req.relying_party_name.clone(),
            brokered_rp_name: None,
            rp_challenge: p.rp_challenge.clone(),
            interactions: req.interactions.clone(),
            initial_callback_url: req.initial_callback_url.clone(),
            signature_algorithm: p.signature_algorithm,
            hash: p.hash_algorithm().ok_or_else(missing_hash)?,
            certificate_level: req.certificate_level.unwrap_or_default().into(),
            allowed_flows,
            expected_identity: match target {
                AuthTarget::Anonymous => None,
                AuthTarget::User(u) => Some(u.into()),
            },
            callback: None,
        })
    }

    /// For a notification authentication request (flowType `Notification` only).
    pub fn notification(
        req: &NotificationAuthenticationRequest,
        scheme_name: &str,
        user: &UserRef,
    ) -> Result<Self, Error> {
        let p = &req.signature_protocol_parameters;
        Ok(Self {
            scheme_name: scheme_name.to_owned(),
            relying_party_name: req.relying_party_name.clone(),
            brokered_rp_name: None,
            rp_challenge: p.rp_challenge.clone(),
            interactions: req.interactions.clone(),
            initial_callback_url: None,
            signature_algorithm: p.signature_algorithm,
            hash: p.hash_algorithm().ok_or_else(missing_hash)?,
            certificate_level: req.certificate_level.unwrap_or_default().into(),
            allowed_flows: vec![FlowType::Notification],
            expected_identity: Some(user.into()),
            callback: None,
        })
    }
}

/// The request values a signature result is checked against.
#[derive(Debug, Clone)]
pub struct SignatureExpectation {
    /// The digest the RP sent (decoded).
    pub digest: Vec<u8>,
    pub signature_algorithm: SignatureAlgorithm,
    pub hash: HashAlgorithm,
    pub certificate_level: CertificateLevel,
    /// Base64 `interactions` as sent (to check `interactionTypeUsed`).
    pub interactions: String,
    pub allowed_flows: Vec<FlowType>,
    pub expected_identity: Option<ExpectedIdentity>,
    /// Required when the result's flowType is Web2App or App2App.
    pub callback: Option<SameDeviceCallback>,
}

fn decode_digest(b64: &str) -> Result<Vec<u8>, Error> {
    STANDARD.decode(b64).map_err(|_| {
        Error::InvalidRequest(crate::api::ValidationError {
            field: "signatureProtocolParameters.digest",
            reason: "not Base64".into(),
        })
    })
}

impl SignatureExpectation {
    /// For a device-link signing request.
    pub fn device_link(req: &DeviceLinkSigningRequest, user: &UserRef) -> Result<Self, Error> {
        let p = &req.signature_protocol_parameters;
        let mut allowed_flows = vec![FlowType::Qr];
        if req.initial_callback_url.is_some() {
            allowed_flows.extend([FlowType::Web2App, FlowType::App2App]);
        }
        Ok(Self {
            digest: decode_digest(&p.digest)?,
            signature_algorithm: p.signature_algorithm,
            hash: p.hash_algorithm().ok_or_else(missing_hash)?,
            certificate_level: req.certificate_level.unwrap_or_default().into(),
            interactions: req.interactions.clone(),
            allowed_flows,
            expected_identity: Some(user.into()),
            callback: None,
        })
    }

    /// For a notification signing request.
    pub fn notification(req: &NotificationSigningRequest, user: &UserRef) -> Result<Self, Error> {
        let p = &req.signature_protocol_parameters;
        Ok(Self {
            digest: decode_digest(&p.digest)?,
            signature_algorithm: p.signature_algorithm,
            hash: p.hash_algorithm().ok_or_else(missing_hash)?,
            certificate_level: req.certificate_level.unwrap_or_default().into(),
            interactions: req.interactions.clone(),
            allowed_flows: vec![FlowType::Notification],
            expected_identity: Some(user.into()),
            callback: None,
        })
    }

    /// For a linked notification signing request. The spec does not say which flowType a
    /// linked session reports; we expect `Notification` (extend `allowed_flows` if needed).
    pub fn linked(
        req: &NotificationSigningLinkedRequest,
        document_number: &str,
    ) -> Result<Self, Error> {
        let p = &req.signature_protocol_parameters;
        Ok(Self {
            digest: decode_digest(&p.digest)?,
            signature_algorithm: p.signature_algorithm,
            hash: p.hash_algorithm().ok_or_else(missing_hash)?,
            certificate_level: req.certificate_level.unwrap_or_default().into(),
            interactions: req.interactions.clone(),
            allowed_flows: vec![FlowType::Notification],
            expected_identity: Some(ExpectedIdentity::Document(document_number.to_owned())),
            callback: None,
        })
    }
}

// ---------------------------------------------------------------- results

/// The person a certificate names (subject DN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// Subject serialNumber: the ETSI semantics identifier, e.g. `PNOEE-30303039914`.
    pub serial_number: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// Subject C.
    pub country: String,
    pub common_name: Option<String>,
}

impl fmt::Display for CertificateIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = [self.given_name.as_deref(), self.surname.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if name.is_empty() {
            write!(f, "{} ({})", self.serial_number, self.country)
        } else {
            write!(f, "{name}, {} ({})", self.serial_number, self.country)
        }
    }
}

/// A certificate that passed the certificate steps.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    pub identity: CertificateIdentity,
    /// The level reached: QSCD if QUALIFIED and the certificate has a QcSSCD statement.
    pub level: CertificateLevel,
    pub der: Vec<u8>,
    pub report: VerificationReport,
}

/// A verified authentication.
#[derive(Debug, Clone)]
pub struct VerifiedAuthentication {
    pub identity: CertificateIdentity,
    pub document_number: Option<String>,
    pub level: CertificateLevel,
    pub flow_type: FlowType,
    pub interaction_type_used: InteractionType,
    pub certificate_der: Vec<u8>,
    pub report: VerificationReport,
}

/// A verified signature.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    pub identity: CertificateIdentity,
    pub document_number: Option<String>,
    pub level: CertificateLevel,
    pub flow_type: FlowType,
    pub signature: Vec<u8>,
    pub certificate_der: Vec<u8>,
    pub report: VerificationReport,
}

// ---------------------------------------------------------------- entry points

/// Verifies an ACSP_V2 authentication result.
pub fn verify_authentication(
    status: &SessionStatusResponse,
    expected: &AuthenticationExpectation,
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<VerifiedAuthentication, VerificationError> {
    let mut run = Run::new();
    let (sig, cert, document_number) = run.step(VerificationStep::SessionResult, || {
        let (cert, doc) = check_complete_ok(status, SignatureProtocol::AcspV2)?;
        match &status.signature {
            Some(Signature::AcspV2(s)) => Ok(((s, cert, doc), passed("COMPLETE, OK, ACSP_V2"))),
            _ => Err("signature is not an ACSP_V2 signature object".into()),
        }
    })?;
    let flow = sig.flow_type;
    run.check(VerificationStep::SessionSecret, || {
        check_session_secret(flow, expected.callback.as_ref())
    })?;
    run.check(VerificationStep::UserChallenge, || {
        check_user_challenge(flow, expected.callback.as_ref(), &sig.user_challenge)
    })?;
    let cert = check_certificate(
        &mut run,
        cert,
        CertificatePurpose::Authentication,
        expected.certificate_level,
        expected.expected_identity.as_ref(),
        document_number.as_deref(),
        anchors,
        now,
    )?;
    run.check(VerificationStep::SignatureAlgorithm, || {
        check_algorithm(
            expected.signature_algorithm,
            expected.hash,
            sig.signature_algorithm,
            sig.signature_algorithm_parameters.as_ref(),
        )
    })?;
    let interaction = run.step(VerificationStep::ResponseFields, || {
        check_acsp_fields(status, sig, expected)
    })?;
    let callback_url = match flow {
        FlowType::Web2App | FlowType::App2App => expected.initial_callback_url.as_deref(),
        FlowType::Qr | FlowType::Notification => None,
    };
    let payload = acsp_v2_payload(&AcspV2Fields {
        scheme_name: &expected.scheme_name,
        server_random: &sig.server_random,
        rp_challenge: &expected.rp_challenge,
        user_challenge: &sig.user_challenge,
        relying_party_name: &expected.relying_party_name,
        brokered_rp_name: expected.brokered_rp_name.as_deref(),
        interactions: &expected.interactions,
        interaction_type_used: interaction,
        initial_callback_url: callback_url,
        flow_type: flow,
    });
    run.check(VerificationStep::Signature, || {
        let digest = hash(expected.hash, payload.as_bytes())?;
        let value = decode_b64("signature.value", &sig.value)?;
        verify_rsa(
            &cert.public_key,
            expected.signature_algorithm,
            expected.hash,
            &digest,
            &value,
        )?;
        Ok(passed(format!(
            "{} over the ACSP_V2 payload",
            algorithm_name(expected.signature_algorithm, expected.hash)
        )))
    })?;
    Ok(VerifiedAuthentication {
        identity: cert.identity,
        document_number,
        level: cert.level,
        flow_type: flow,
        interaction_type_used: interaction,
        certificate_der: cert.der,
        report: run.report,
    })
}

/// Verifies a RAW_DIGEST_SIGNATURE signing result.
pub fn verify_signature(
    status: &SessionStatusResponse,
    expected: &SignatureExpectation,
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<VerifiedSignature, VerificationError> {
    let mut run = Run::new();
    let (sig, cert, document_number) = run.step(VerificationStep::SessionResult, || {
        let (cert, doc) = check_complete_ok(status, SignatureProtocol::RawDigestSignature)?;
        match &status.signature {
            Some(Signature::RawDigest(s)) => {
                Ok(((s, cert, doc), passed("COMPLETE, OK, RAW_DIGEST_SIGNATURE")))
            }
            _ => Err("signature is not a RAW_DIGEST_SIGNATURE signature object".into()),
        }
    })?;
    let flow = sig.flow_type;
    run.check(VerificationStep::SessionSecret, || {
        check_session_secret(flow, expected.callback.as_ref())
    })?;
    let cert = check_certificate(
        &mut run,
        cert,
        CertificatePurpose::Signing,
        expected.certificate_level,
        expected.expected_identity.as_ref(),
        document_number.as_deref(),
        anchors,
        now,
    )?;
    run.check(VerificationStep::SignatureAlgorithm, || {
        check_algorithm(
            expected.signature_algorithm,
            expected.hash,
            sig.signature_algorithm,
            sig.signature_algorithm_parameters.as_ref(),
        )
    })?;
    run.check(VerificationStep::ResponseFields, || {
        if !expected.allowed_flows.contains(&flow) {
            return Err(format!(
                "flowType {} was not offered to the user",
                flow.as_str()
            ));
        }
        let mut detail = format!("flow {}", flow.as_str());
        if let Some(used) = status.interaction_type_used {
            let requested = requested_interactions(&expected.interactions)?;
            if !requested.contains(&used) {
                return Err(format!(
                    "interactionTypeUsed {} was not requested",
                    used.as_str()
                ));
            }
            detail.push_str(&format!(", interaction {}", used.as_str()));
        }
        Ok(passed(detail))
    })?;
    let value = run.step(VerificationStep::Signature, || {
        if expected.digest.len() != expected.hash.output_len() {
            return Err(format!(
                "our digest is {} bytes, {} needs {}",
                expected.digest.len(),
                expected.hash.as_str(),
                expected.hash.output_len()
            ));
        }
        let value = decode_b64("signature.value", &sig.value)?;
        verify_rsa(
            &cert.public_key,
            expected.signature_algorithm,
            expected.hash,
            &expected.digest,
            &value,
        )?;
        Ok((
            value,
            passed(format!(
                "{} over our digest",
                algorithm_name(expected.signature_algorithm, expected.hash)
            )),
        ))
    })?;
    Ok(VerifiedSignature {
        identity: cert.identity,
        document_number,
        level: cert.level,
        flow_type: flow,
        signature: value,
        certificate_der: cert.der,
        report: run.report,
    })
}

/// Verifies a certificate-choice result: the signing certificate the user chose.
pub fn verify_certificate_choice(
    status: &SessionStatusResponse,
    required_level: SignCertificateLevel,
    allowed_flows: &[FlowType],
    expected_identity: Option<&ExpectedIdentity>,
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<VerifiedCertificate, VerificationError> {
    let mut run = Run::new();
    let (cert, doc) = run.step(VerificationStep::SessionResult, || {
        if status.state != SessionState::Complete {
            return Err("state is RUNNING, not COMPLETE".into());
        }
        let result = status.result.as_ref().ok_or("result is missing")?;
        if result.end_result != EndResult::Ok {
            return Err(format!(
                "endResult is {}",
                end_result_name(result.end_result)
            ));
        }
        let flow = match &status.signature {
            Some(Signature::CertificateChoice(s)) => s.flow_type,
            _ => return Err("signature is not a certificate-choice object".into()),
        };
        if !allowed_flows.contains(&flow) {
            return Err(format!("flowType {} was not offered", flow.as_str()));
        }
        let cert = status.cert.as_ref().ok_or("cert is missing")?;
        Ok((
            (cert, result.document_number.clone()),
            passed(format!("COMPLETE, OK, flow {}", flow.as_str())),
        ))
    })?;
    let c = check_certificate(
        &mut run,
        cert,
        CertificatePurpose::Signing,
        required_level.into(),
        expected_identity,
        doc.as_deref(),
        anchors,
        now,
    )?;
    Ok(VerifiedCertificate {
        identity: c.identity,
        level: c.level,
        der: c.der,
        report: run.report,
    })
}

/// Verifies a certificate on its own (e.g. from `POST /v3/signature/certificate/{doc}`):
/// the certificate steps only. `expected_etsi`: the subject serialNumber the RP expects.
pub fn verify_certificate(
    cert: &Cert,
    purpose: CertificatePurpose,
    required_level: CertificateLevel,
    expected_etsi: Option<&str>,
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<VerifiedCertificate, VerificationError> {
    let mut run = Run::new();
    let expected = expected_etsi.map(|e| ExpectedIdentity::Etsi(e.to_owned()));
    let c = check_certificate(
        &mut run,
        cert,
        purpose,
        required_level,
        expected.as_ref(),
        None,
        anchors,
        now,
    )?;
    Ok(VerifiedCertificate {
        identity: c.identity,
        level: c.level,
        der: c.der,
        report: run.report,
    })
}

// ---------------------------------------------------------------- steps

pub fn end_result_name(r: EndResult) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{r:?}"))
}

/// State COMPLETE, endResult OK, the protocol, and result/cert/signature present.
fn check_complete_ok(
    status: &SessionStatusResponse,
    protocol: SignatureProtocol,
) -> Result<(&Cert, Option<String>), String> {
    if status.state != SessionState::Complete {
        return Err("state is RUNNING, not COMPLETE".into());
    }
    let result = status.result.as_ref().ok_or("result is missing")?;
    if result.end_result != EndResult::Ok {
        let mut s = format!("endResult is {}", end_result_name(result.end_result));
        if let Some(i) = result
            .details
            .as_ref()
            .and_then(|d| d.interaction.as_deref())
        {
            s.push_str(&format!(" (interaction {i})"));
        }
        return Err(s);
    }
    let name = |p: SignatureProtocol| match p {
        SignatureProtocol::AcspV2 => "ACSP_V2",
        SignatureProtocol::RawDigestSignature => "RAW_DIGEST_SIGNATURE",
    };
    match status.signature_protocol {
        Some(p) if p == protocol => {}
        Some(p) => {
            return Err(format!(
                "signatureProtocol is {}, expected {}",
                name(p),
                name(protocol)
            ));
        }
        None => {
            return Err(format!(
                "signatureProtocol is missing, expected {}",
                name(protocol)
            ));
        }
    }
    if status.signature.is_none() {
        return Err("signature is missing".into());
    }
    let cert = status.cert.as_ref().ok_or("cert is missing")?;
    Ok((cert, result.document_number.clone()))
}

fn same_device(flow: FlowType) -> bool {
    matches!(flow, FlowType::Web2App | FlowType::App2App)
}

fn check_session_secret(
    flow: FlowType,
    callback: Option<&SameDeviceCallback>,
) -> Result<StepOutcome, String> {
    if !same_device(flow) {
        return Ok(StepOutcome::NotApplicable(format!(
            "{} flow",
            flow.as_str()
        )));
    }
    let cb = callback.ok_or_else(|| {
        format!(
            "{} flow, but no callback values to check (sessionSecretDigest)",
            flow.as_str()
        )
    })?;
    let secret = STANDARD
        .decode(&cb.session_secret_b64)
        .map_err(|_| "sessionSecret is not Base64".to_owned())?;
    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(&secret));
    if digest != cb.session_secret_digest {
        return Err("sessionSecretDigest of the callback does not match sessionSecret".into());
    }
    Ok(passed("matches the callback URL"))
}

fn check_user_challenge(
    flow: FlowType,
    callback: Option<&SameDeviceCallback>,
    user_challenge: &str,
) -> Result<StepOutcome, String> {
    if !same_device(flow) {
        return Ok(StepOutcome::NotApplicable(format!(
            "{} flow",
            flow.as_str()
        )));
    }
    let verifier = callback
        .and_then(|c| c.user_challenge_verifier.as_deref())
        .ok_or_else(|| {
            format!(
                "{} flow, but no userChallengeVerifier from the callback URL",
                flow.as_str()
            )
        })?;
    if crate::api::acsp::user_challenge(verifier) != user_challenge {
        return Err(
            "SHA-256 of userChallengeVerifier does not match signature.userChallenge".into(),
        );
    }
    Ok(passed("matches userChallengeVerifier"))
}

/// A certificate after the certificate steps.
struct CheckedCert {
    public_key: PKey<Public>,
    identity: CertificateIdentity,
    level: CertificateLevel,
    der: Vec<u8>,
}

/// QCStatement (RFC 3739), for reading the qcStatements extension.
#[derive(Sequence)]
struct QcStatementIn {
    statement_id: ObjectIdentifier,
    #[asn1(optional = "true")]
    statement_info: Option<Any>,
}

fn unix_secs(t: SystemTime) -> Result<i64, String> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970".to_owned())?;
    i64::try_from(d.as_secs()).map_err(|_| "time out of range".to_owned())
}

/// Seconds as the platform's `time_t` (i64 on our targets; generic so that other widths
/// convert with a range check instead of a cast).
fn time_t<T: TryFrom<i64>>(secs: i64) -> Result<T, String> {
    T::try_from(secs).map_err(|_| "time out of range".to_owned())
}

/// The certificate steps, shared by every result type.
#[allow(clippy::too_many_arguments)] // private: the inputs of the certificate steps
fn check_certificate(
    run: &mut Run,
    cert: &Cert,
    purpose: CertificatePurpose,
    required: CertificateLevel,
    expected: Option<&ExpectedIdentity>,
    document_number: Option<&str>,
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<CheckedCert, VerificationError> {
    use VerificationStep as S;
    let (der, x509, parsed) = run.step(S::Certificate, || {
        let der = decode_b64("cert.value", &cert.value)?;
        let x509 = X509::from_der(&der).map_err(|_| "cert.value is not an X.509 certificate")?;
        let parsed = x509_cert::Certificate::from_der(&der)
            .map_err(|e| format!("cert.value is not a DER certificate: {e}"))?;
        let detail = format!("subject {}", one_line_name(x509.subject_name()));
        Ok(((der, x509, parsed), passed(detail)))
    })?;

    run.check(S::CertificateValidity, || {
        let now_t = openssl::asn1::Asn1Time::from_unix(time_t(unix_secs(now)?)?)
            .map_err(|e| format!("time: {e}"))?;
        let nb = x509.not_before();
        let na = x509.not_after();
        let cmp = |a: &openssl::asn1::Asn1TimeRef, b: &openssl::asn1::Asn1TimeRef| {
            a.compare(b).map_err(|e| format!("time comparison: {e}"))
        };
        if cmp(nb, &now_t)? == std::cmp::Ordering::Greater {
            return Err(format!("not valid before {nb}"));
        }
        if cmp(na, &now_t)? == std::cmp::Ordering::Less {
            return Err(format!("expired at {na}"));
        }
        Ok(passed(format!("{nb} .. {na}")))
    })?;

    run.check(S::CertificateChain, || verify_chain(&x509, anchors, now))?;

    let tbs = parsed.tbs_certificate();
    // An unreadable policies extension counts as no policies: the steps needing one fail.
    let policies: Vec<ObjectIdentifier> = tbs
        .get_extension::<CertificatePolicies>()
        .ok()
        .flatten()
        .map(|(_, p)| p.0.iter().map(|i| i.policy_identifier).collect())
        .unwrap_or_default();
    run.check(S::CertificatePolicies, || {
        if anchors.scheme_policies.is_empty() {
            return Ok(StepOutcome::NotApplicable(
                "no scheme policy OIDs configured".into(),
            ));
        }
        let missing: Vec<String> = anchors
            .scheme_policies
            .iter()
            .filter(|o| !policies.contains(o))
            .map(|o| o.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "not a certificate of the scheme: policy {} missing",
                missing.join(", ")
            ));
        }
        Ok(passed(format!(
            "{} scheme policies present",
            anchors.scheme_policies.len()
        )))
    })?;

    run.check(S::CertificatePurpose, || check_purpose(tbs, purpose))?;

    let qc = qc_statement_ids(tbs);
    let level = run.step(S::CertificateLevel, || {
        let returned = match cert.certificate_level.as_str() {
            "ADVANCED" => CertificateLevel::Advanced,
            "QUALIFIED" => CertificateLevel::Qualified,
            other => return Err(format!("unknown cert.certificateLevel {other:?}")),
        };
        let mut level = returned;
        if returned == CertificateLevel::Qualified {
            match purpose {
                CertificatePurpose::Signing => {
                    if !qc.contains(&oids::ETSI_QCS_QC_COMPLIANCE) {
                        return Err(
                            "QUALIFIED, but the certificate has no QcCompliance statement".into(),
                        );
                    }
                    if qc.contains(&oids::ETSI_QCS_QC_SSCD) {
                        level = CertificateLevel::Qscd;
                    }
                }
                CertificatePurpose::Authentication => {
                    if !policies.contains(&oids::ETSI_NCP_PLUS) {
                        return Err(
                            "QUALIFIED, but the certificate lacks the NCP+ policy (0.4.0.2042.1.2)"
                                .into(),
                        );
                    }
                }
            }
        }
        if level < required {
            return Err(format!(
                "{} is below the requested {}",
                level.as_str(),
                required.as_str()
            ));
        }
        Ok((
            level,
            passed(format!("{} >= {}", level.as_str(), required.as_str())),
        ))
    })?;

    let identity = run.step(S::Identity, || {
        let id = identity_of(&x509)?;
        match expected {
            Some(ExpectedIdentity::Etsi(e)) if *e != id.serial_number => {
                return Err(format!(
                    "certificate is for {}, expected {e}",
                    id.serial_number
                ));
            }
            Some(ExpectedIdentity::Document(d)) if document_number != Some(d.as_str()) => {
                return Err(format!(
                    "result.documentNumber is {}, expected {d}",
                    document_number.unwrap_or("missing")
                ));
            }
            _ => {}
        }
        let detail = match expected {
            Some(ExpectedIdentity::Etsi(_)) => format!("{id}, as expected"),
            Some(ExpectedIdentity::Document(d)) => format!("{id}, document {d} as expected"),
            None => id.to_string(),
        };
        Ok((id, passed(detail)))
    })?;

    let public_key = x509.public_key().map_err(|e| VerificationError {
        step: S::Certificate,
        reason: format!("public key: {e}"),
        passed: run.report.clone(),
    })?;
    Ok(CheckedCert {
        public_key,
        identity,
        level,
        der,
    })
}

/// The statement ids of the qcStatements extension. Unreadable statements count as absent:
/// the level step then fails if it needs them.
fn qc_statement_ids(tbs: &x509_cert::TbsCertificate) -> Vec<ObjectIdentifier> {
    tbs.extensions()
        .into_iter()
        .flatten()
        .filter(|e| e.extn_id == oids::PE_QC_STATEMENTS)
        .filter_map(|e| Vec::<QcStatementIn>::from_der(e.extn_value.as_bytes()).ok())
        .flatten()
        .map(|s| s.statement_id)
        .collect()
}

fn verify_chain(
    leaf: &X509,
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<StepOutcome, String> {
    if anchors.roots.is_empty() {
        return Err("no trust anchors configured".into());
    }
    let e = |e: openssl::error::ErrorStack| format!("OpenSSL: {e}");
    let mut store = X509StoreBuilder::new().map_err(e)?;
    for r in &anchors.roots {
        store.add_cert(r.clone()).map_err(e)?;
    }
    let mut param = X509VerifyParam::new().map_err(e)?;
    param.set_time(time_t(unix_secs(now)?)?);
    store.set_param(&param).map_err(e)?;
    let store = store.build();
    let mut chain = Stack::new().map_err(e)?;
    for i in &anchors.intermediates {
        chain.push(i.clone()).map_err(e)?;
    }
    let mut ctx = X509StoreContext::new().map_err(e)?;
    let (ok, error, depth, len) = ctx
        .init(&store, leaf, &chain, |c| {
            let ok = c.verify_cert()?;
            let len = c.chain().map(|s| s.len()).unwrap_or(0);
            Ok((ok, c.error(), c.error_depth(), len))
        })
        .map_err(e)?;
    if !ok {
        return Err(format!("{} (at depth {depth})", error.error_string()));
    }
    Ok(passed(format!("{len} certificates up to a trusted root")))
}

fn check_purpose(
    tbs: &x509_cert::TbsCertificate,
    purpose: CertificatePurpose,
) -> Result<StepOutcome, String> {
    let bc = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| format!("basicConstraints: {e}"))?;
    if let Some((_, bc)) = bc
        && bc.ca
    {
        return Err("end-entity certificate is a CA certificate (cA=TRUE)".into());
    }
    let ku = tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| format!("keyUsage: {e}"))?
        .map(|(_, k)| k)
        .ok_or("keyUsage extension is missing")?;
    match purpose {
        CertificatePurpose::Authentication => {
            if !ku.digital_signature() {
                return Err("keyUsage lacks digitalSignature".into());
            }
            let eku = tbs
                .get_extension::<ExtendedKeyUsage>()
                .map_err(|e| format!("extKeyUsage: {e}"))?
                .map(|(_, e)| e.0)
                .unwrap_or_default();
            // response_verification.txt: digitalSignature with the Smart-ID authentication
            // EKU, or (older certificates) digitalSignature, keyEncipherment,
            // dataEncipherment with clientAuth.
            if eku.contains(&SMART_ID_AUTH_EKU) {
                Ok(passed("digitalSignature, Smart-ID authentication EKU"))
            } else if eku.contains(&oids::KP_CLIENT_AUTH) {
                if ku.key_encipherment() && ku.data_encipherment() {
                    Ok(passed(
                        "digitalSignature, keyEncipherment, dataEncipherment, clientAuth",
                    ))
                } else {
                    Err("clientAuth without the Smart-ID authentication EKU needs keyEncipherment and dataEncipherment".into())
                }
            } else {
                Err("extKeyUsage has neither Smart-ID authentication nor clientAuth".into())
            }
        }
        CertificatePurpose::Signing => {
            if !ku.non_repudiation() {
                return Err("keyUsage lacks nonRepudiation".into());
            }
            Ok(passed("nonRepudiation"))
        }
    }
}

fn name_entry(name: &openssl::x509::X509NameRef, nid: Nid) -> Option<String> {
    name.entries_by_nid(nid)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

fn one_line_name(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let val = e.data().to_string().unwrap_or_default();
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `serialNumber` must be an ETSI EN 319 412-1 natural person semantics identifier:
/// three letters (PNO, IDC, PAS, …), a two-letter country, `-`, the identifier.
fn is_semantics_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 6
        && b[..5].iter().all(u8::is_ascii_uppercase)
        && b[5] == b'-'
        && s[6..].chars().all(|c| !c.is_control() && c != ' ')
}

fn identity_of(x509: &X509) -> Result<CertificateIdentity, String> {
    let subject = x509.subject_name();
    let serial_number =
        name_entry(subject, Nid::SERIALNUMBER).ok_or("subject has no serialNumber")?;
    if !is_semantics_identifier(&serial_number) {
        return Err(format!(
            "subject serialNumber {serial_number:?} is not a semantics identifier like PNOEE-…"
        ));
    }
    let country = name_entry(subject, Nid::COUNTRYNAME).ok_or("subject has no country (C)")?;
    Ok(CertificateIdentity {
        serial_number,
        given_name: name_entry(subject, Nid::GIVENNAME),
        surname: name_entry(subject, Nid::SURNAME),
        country,
        common_name: name_entry(subject, Nid::COMMONNAME),
    })
}

fn requested_interactions(b64: &str) -> Result<Vec<InteractionType>, String> {
    // Notification is the most permissive flow: we only need the listed types here.
    decode_interactions(b64, InteractionFlow::Notification)
        .map(|l| l.iter().map(|i| i.interaction_type()).collect())
        .map_err(|e| format!("cannot read the interactions we sent: {e}"))
}

fn check_acsp_fields(
    status: &SessionStatusResponse,
    sig: &AcspV2Signature,
    expected: &AuthenticationExpectation,
) -> Result<(InteractionType, StepOutcome), String> {
    if !expected.allowed_flows.contains(&sig.flow_type) {
        return Err(format!(
            "flowType {} was not offered to the user",
            sig.flow_type.as_str()
        ));
    }
    let used = status
        .interaction_type_used
        .ok_or("interactionTypeUsed is missing")?;
    if !requested_interactions(&expected.interactions)?.contains(&used) {
        return Err(format!(
            "interactionTypeUsed {} was not requested",
            used.as_str()
        ));
    }
    let sr = &sig.server_random;
    if sr.len() < 24 || !is_base64_pattern(sr) || STANDARD.decode(sr).is_err() {
        return Err("serverRandom is not Base64 of at least 24 characters".into());
    }
    let uc = &sig.user_challenge;
    if uc.len() != 43
        || !uc
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("userChallenge is not 43 Base64URL characters".into());
    }
    Ok((
        used,
        passed(format!(
            "flow {}, interaction {}",
            sig.flow_type.as_str(),
            used.as_str()
        )),
    ))
}

fn algorithm_name(alg: SignatureAlgorithm, hash: HashAlgorithm) -> String {
    match alg {
        SignatureAlgorithm::RsassaPss => format!("RSASSA-PSS {}", hash.as_str()),
        SignatureAlgorithm::Sha256WithRsaEncryption => "sha256WithRSAEncryption".into(),
        SignatureAlgorithm::Sha384WithRsaEncryption => "sha384WithRSAEncryption".into(),
        SignatureAlgorithm::Sha512WithRsaEncryption => "sha512WithRSAEncryption".into(),
    }
}

/// The returned algorithm and parameters must be exactly the requested ones.
fn check_algorithm(
    requested: SignatureAlgorithm,
    hash: HashAlgorithm,
    returned: SignatureAlgorithm,
    params: Option<&SignatureAlgorithmParametersInResponse>,
) -> Result<StepOutcome, String> {
    if returned != requested {
        return Err(format!(
            "signatureAlgorithm is {}, requested {}",
            algorithm_name(returned, hash),
            algorithm_name(requested, hash)
        ));
    }
    match requested {
        SignatureAlgorithm::RsassaPss => {
            let p = params.ok_or("signatureAlgorithmParameters are missing")?;
            if p.hash_algorithm != Some(hash) {
                return Err(format!(
                    "hashAlgorithm is {}, requested {}",
                    p.hash_algorithm.map(|h| h.as_str()).unwrap_or("missing"),
                    hash.as_str()
                ));
            }
            let mgf = p
                .mask_gen_algorithm
                .as_ref()
                .ok_or("maskGenAlgorithm is missing")?;
            if mgf.algorithm != "id-mgf1" {
                return Err(format!(
                    "maskGenAlgorithm is {:?}, not id-mgf1",
                    mgf.algorithm
                ));
            }
            if mgf.parameters.as_ref().map(|m| m.hash_algorithm) != Some(hash) {
                return Err(format!("MGF1 hash is not {}", hash.as_str()));
            }
            if p.salt_length != Some(hash.output_len() as u32) {
                return Err(format!(
                    "saltLength is {}, must be {}",
                    p.salt_length
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "missing".into()),
                    hash.output_len()
                ));
            }
            if p.trailer_field.as_deref() != Some("0xbc") {
                return Err(format!(
                    "trailerField is {:?}, must be 0xbc",
                    p.trailer_field.as_deref().unwrap_or("missing")
                ));
            }
            Ok(passed(format!(
                "rsassa-pss, {h}, MGF1 {h}, salt {}, trailer 0xbc",
                hash.output_len(),
                h = hash.as_str()
            )))
        }
        pkcs1 => {
            if let Some(p) = params {
                let pss_fields = p.mask_gen_algorithm.is_some()
                    || p.salt_length.is_some()
                    || p.trailer_field.is_some();
                if pss_fields
                    || p.hash_algorithm
                        .is_some_and(|h| Some(h) != pkcs1.implied_hash())
                {
                    return Err(format!(
                        "{} takes no RSASSA-PSS parameters",
                        algorithm_name(pkcs1, hash)
                    ));
                }
            }
            Ok(passed(algorithm_name(pkcs1, hash)))
        }
    }
}

fn decode_b64(field: &str, s: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(s)
        .map_err(|_| format!("{field} is not Base64"))
}

fn message_digest(h: HashAlgorithm) -> MessageDigest {
    match h {
        HashAlgorithm::Sha256 => MessageDigest::sha256(),
        HashAlgorithm::Sha384 => MessageDigest::sha384(),
        HashAlgorithm::Sha512 => MessageDigest::sha512(),
        HashAlgorithm::Sha3_256 => MessageDigest::sha3_256(),
        HashAlgorithm::Sha3_384 => MessageDigest::sha3_384(),
        HashAlgorithm::Sha3_512 => MessageDigest::sha3_512(),
    }
}

fn md(h: HashAlgorithm) -> &'static MdRef {
    match h {
        HashAlgorithm::Sha256 => Md::sha256(),
        HashAlgorithm::Sha384 => Md::sha384(),
        HashAlgorithm::Sha512 => Md::sha512(),
        HashAlgorithm::Sha3_256 => Md::sha3_256(),
        HashAlgorithm::Sha3_384 => Md::sha3_384(),
        HashAlgorithm::Sha3_512 => Md::sha3_512(),
    }
}

/// `HASH(data)` with any hash of the spec (SHA-2 and SHA3).
pub fn hash(h: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, String> {
    openssl::hash::hash(message_digest(h), data)
        .map(|d| d.to_vec())
        .map_err(|e| format!("{}: {e}", h.as_str()))
}

/// Verifies an RSA signature over a precomputed digest. Any failure is one opaque message.
fn verify_rsa(
    key: &PKey<Public>,
    alg: SignatureAlgorithm,
    hash: HashAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    const BAD: &str = "the signature does not verify with the certificate's key";
    if key.id() != PkeyId::RSA {
        return Err("the certificate's key is not an RSA key".into());
    }
    let hash = alg.implied_hash().unwrap_or(hash);
    let ok = (|| -> Result<bool, openssl::error::ErrorStack> {
        let mut ctx = PkeyCtx::new(key)?;
        ctx.verify_init()?;
        match alg {
            SignatureAlgorithm::RsassaPss => {
                ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
                ctx.set_signature_md(md(hash))?;
                ctx.set_rsa_mgf1_md(md(hash))?;
                ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(hash.output_len() as i32))?;
            }
            _ => {
                ctx.set_rsa_padding(Padding::PKCS1)?;
                ctx.set_signature_md(md(hash))?;
            }
        }
        ctx.verify(digest, signature)
    })();
    match ok {
        Ok(true) => Ok(()),
        _ => Err(BAD.into()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
