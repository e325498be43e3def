//! The RAW_DIGEST_SIGNATURE notification session of a document signature, in two steps:
//! [`start`] gives the verification code to show, [`StartedSignature::finish`] waits for the
//! phone and verifies the signature against the signer's certificate.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{RelyingParty, Signer, SigningError, check_end_result};
use crate::api::types::{
    Interaction, NotificationSigningRequest, SignCertificateLevel, SignSignatureProtocol,
    SignSignatureProtocolParameters, SignatureAlgorithm, SignatureAlgorithmParametersInRequest,
    encode_interactions,
};
use crate::client::verify::{self, VerifiedSignature};
use crate::client::{RpApiClient, SignatureExpectation, TrustAnchors, UserRef};
use crate::documents::DocumentHash;
use crate::documents::cades::CadesScheme;

/// What the signing session asks for and shows.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The minimum certificate level.
    pub level: SignCertificateLevel,
    /// The hash of the digest.
    pub hash: DocumentHash,
    /// RSASSA-PSS or PKCS#1 v1.5.
    pub scheme: CadesScheme,
    /// The text shown in the app.
    pub text: String,
    /// Make the person pick the code among three.
    pub vc_choice: bool,
    /// Long-poll timeout of each session status request (ms).
    pub timeout_ms: u64,
}

impl SessionOptions {
    /// The signatureAlgorithm and its parameters for the request.
    fn algorithm(
        &self,
    ) -> (
        SignatureAlgorithm,
        Option<SignatureAlgorithmParametersInRequest>,
    ) {
        match self.scheme {
            CadesScheme::RsassaPss => (
                SignatureAlgorithm::RsassaPss,
                Some(SignatureAlgorithmParametersInRequest {
                    hash_algorithm: self.hash.api(),
                }),
            ),
            CadesScheme::Pkcs1v15 => (
                match self.hash {
                    DocumentHash::Sha256 => SignatureAlgorithm::Sha256WithRsaEncryption,
                    DocumentHash::Sha384 => SignatureAlgorithm::Sha384WithRsaEncryption,
                    DocumentHash::Sha512 => SignatureAlgorithm::Sha512WithRsaEncryption,
                },
                None,
            ),
        }
    }
}

/// The interaction of a notification session: the three-code choice or the text with the
/// PIN.
pub fn notification_interaction(text: String, vc_choice: bool) -> Interaction {
    if vc_choice {
        Interaction::ConfirmationMessageAndVerificationCodeChoice {
            display_text200: text,
        }
    } else {
        Interaction::DisplayTextAndPin {
            display_text60: text,
        }
    }
}

/// A started signing session: show [`StartedSignature::verification_code`], then
/// [`StartedSignature::finish`].
#[derive(Debug, Clone)]
pub struct StartedSignature {
    /// The session id.
    pub session_id: String,
    /// The verification code the person compares with (or picks among three) on the phone.
    pub verification_code: String,
    /// Whether the person picks the code among three.
    pub vc_choice: bool,
    req: NotificationSigningRequest,
    user: UserRef,
    certificate_der: Vec<u8>,
    timeout_ms: u64,
}

/// Starts a notification RAW_DIGEST_SIGNATURE session of `digest` for `signer`'s document.
pub async fn start(
    client: &RpApiClient,
    rp: &RelyingParty,
    signer: &Signer,
    options: &SessionOptions,
    digest: &[u8],
) -> Result<StartedSignature, SigningError> {
    let user = UserRef::Document(signer.document.clone());
    let (signature_algorithm, signature_algorithm_parameters) = options.algorithm();
    let req = NotificationSigningRequest {
        relying_party_uuid: rp.uuid.clone(),
        relying_party_name: rp.name.clone(),
        certificate_level: Some(options.level),
        signature_protocol: SignSignatureProtocol::RawDigestSignature,
        signature_protocol_parameters: SignSignatureProtocolParameters {
            digest: STANDARD.encode(digest),
            signature_algorithm,
            signature_algorithm_parameters,
        },
        nonce: None,
        interactions: encode_interactions(&[notification_interaction(
            options.text.clone(),
            options.vc_choice,
        )]),
        request_properties: None,
        capabilities: None,
    };
    let resp = client.notification_signature(&user, &req).await?;
    Ok(StartedSignature {
        session_id: resp.session_id,
        verification_code: resp.vc.value,
        vc_choice: options.vc_choice,
        req,
        user,
        certificate_der: signer.certificate_der.clone(),
        timeout_ms: options.timeout_ms,
    })
}

impl StartedSignature {
    /// Waits for the phone (long polls; `on_running` after each that found the session
    /// still running; dropping the future stops waiting), checks the end result, verifies
    /// the signature against the request and the trust anchors, and that it comes from the
    /// signer's certificate.
    pub async fn finish(
        &self,
        client: &RpApiClient,
        anchors: &TrustAnchors,
        on_running: impl FnMut(u32),
    ) -> Result<VerifiedSignature, SigningError> {
        let status = client
            .wait_for_completion(&self.session_id, Some(self.timeout_ms), on_running)
            .await?;
        check_end_result(&status)?;
        let expected = SignatureExpectation::notification(&self.req, &self.user)?;
        let v = verify::verify_signature(&status, &expected, anchors, SystemTime::now())?;
        if v.certificate_der != self.certificate_der {
            return Err(SigningError::CertificateMismatch);
        }
        Ok(v)
    }
}
