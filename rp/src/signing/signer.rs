//! The signer of a document signature: the signing certificate (by document number from the
//! signing-certificate endpoint, or chosen by the person in a notification certificate
//! choice), checked against the trust anchors before anyone is asked to sign, and the
//! issuing CA certificate that the signed attributes and the CMS need.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::x509::X509;

use super::{RelyingParty, SigningError, check_end_result};
use crate::api::types::{
    CertificateChoiceRequest, CertificateState, FlowType, SignCertificateLevel,
    SigningCertificateRequest,
};
use crate::client::verify::{self, CertificatePurpose, ExpectedIdentity, VerifiedCertificate};
use crate::client::{RpApiClient, TrustAnchors};

/// The signer as the document signature needs it.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The document number to sign with.
    pub document: String,
    /// The signer's signing certificate (DER), verified.
    pub certificate_der: Vec<u8>,
    /// The issuing CA certificate (DER).
    pub issuer_der: Vec<u8>,
}

impl Signer {
    /// The signer of `document` with the verified `certificate_der`, its issuing CA found
    /// among `candidates` (the intermediates the caller knows).
    pub fn new(
        document: String,
        certificate_der: Vec<u8>,
        candidates: &[X509],
    ) -> Result<Signer, SigningError> {
        let issuer_der = issuer_among(&certificate_der, candidates)?;
        Ok(Signer {
            document,
            certificate_der,
            issuer_der,
        })
    }
}

/// The certificate (DER) among `candidates` whose subject is the issuer of
/// `certificate_der`.
pub fn issuer_among(certificate_der: &[u8], candidates: &[X509]) -> Result<Vec<u8>, SigningError> {
    let cert = X509::from_der(certificate_der)
        .map_err(|e| SigningError::CertificateParse(e.to_string()))?;
    let issuer_name = cert
        .issuer_name()
        .to_der()
        .map_err(|e| SigningError::CertificateParse(e.to_string()))?;
    for c in candidates {
        if c.subject_name().to_der().ok().as_deref() == Some(&issuer_name[..])
            && let Ok(der) = c.to_der()
        {
            return Ok(der);
        }
    }
    Err(SigningError::IssuerNotFound)
}

/// The signing certificate (DER) of `document` from the signing-certificate endpoint,
/// verified for signing at `level` against `anchors`.
pub async fn certificate_of_document(
    client: &RpApiClient,
    rp: &RelyingParty,
    document: &str,
    level: SignCertificateLevel,
    anchors: &TrustAnchors,
) -> Result<Vec<u8>, SigningError> {
    let resp = client
        .signing_certificate(
            document,
            &SigningCertificateRequest {
                relying_party_uuid: rp.uuid.clone(),
                relying_party_name: rp.name.clone(),
                certificate_level: Some(level),
            },
        )
        .await?;
    let cert = match (resp.state, resp.cert) {
        (CertificateState::Ok, Some(c)) => c,
        (CertificateState::Ok, None) => return Err(SigningError::NoCertificate),
        (CertificateState::DocumentUnusable, _) => return Err(SigningError::DocumentUnusable),
    };
    let der = STANDARD
        .decode(&cert.value)
        .map_err(|_| SigningError::CertificateEncoding)?;
    verify::verify_certificate(
        &cert,
        CertificatePurpose::Signing,
        level.into(),
        None,
        anchors,
        SystemTime::now(),
    )?;
    Ok(der)
}

/// A running notification certificate choice.
#[derive(Debug, Clone)]
pub struct CertificateChoice {
    /// The session id.
    pub session_id: String,
    etsi: String,
    level: SignCertificateLevel,
}

/// The certificate a person chose.
#[derive(Debug, Clone)]
pub struct ChosenCertificate {
    /// The document number of the chosen account.
    pub document: String,
    /// The verified certificate (its DER, identity and verification report).
    pub certificate: VerifiedCertificate,
}

/// Starts a notification certificate choice for the person `etsi` (their ETSI semantics
/// identifier, e.g. `PNOEE-30303039914`).
pub async fn start_certificate_choice(
    client: &RpApiClient,
    rp: &RelyingParty,
    etsi: &str,
    level: SignCertificateLevel,
) -> Result<CertificateChoice, SigningError> {
    let req = CertificateChoiceRequest {
        relying_party_uuid: rp.uuid.clone(),
        relying_party_name: rp.name.clone(),
        initial_callback_url: None,
        certificate_level: Some(level),
        nonce: None,
        request_properties: None,
        capabilities: None,
    };
    let resp = client.notification_certificate_choice(etsi, &req).await?;
    Ok(CertificateChoice {
        session_id: resp.session_id,
        etsi: etsi.to_owned(),
        level,
    })
}

impl CertificateChoice {
    /// Waits for the choice (long polls of `timeout_ms`, `on_running` after each that found
    /// it still running), checks the end result and verifies the chosen certificate.
    pub async fn finish(
        &self,
        client: &RpApiClient,
        anchors: &TrustAnchors,
        timeout_ms: u64,
        on_running: impl FnMut(u32),
    ) -> Result<ChosenCertificate, SigningError> {
        let status = client
            .wait_for_completion(&self.session_id, Some(timeout_ms), on_running)
            .await?;
        check_end_result(&status)?;
        let certificate = verify::verify_certificate_choice(
            &status,
            self.level,
            &[FlowType::Notification],
            Some(&ExpectedIdentity::Etsi(self.etsi.clone())),
            anchors,
            SystemTime::now(),
        )?;
        let document = status
            .result
            .and_then(|r| r.document_number)
            .ok_or(SigningError::NoDocumentNumber)?;
        Ok(ChosenCertificate {
            document,
            certificate,
        })
    }
}
