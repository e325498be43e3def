//! Sessions of the REST relying-party API (Smart-ID RP API v3): the interaction shown, the
//! verification code, the ACSP_V2 payload the app builds and signs, and the callback URL of
//! a same-device flow.
//!
//! ```text
//!  RpApiContext ─▶ rp_prompt: callback values usable and bound (check_callback_values)
//!                             certificate choice: nothing to sign
//!                             interactions decoded, the first supported one shown
//!                             ACSP_V2: VC = code(rpChallenge bytes)
//!                             RAW_DIGEST_SIGNATURE: x encodes the digest; the RP's VC
//!                             VC choice (confirmationMessageAndVerificationCodeChoice)
//!  acsp_request:  userChallengeVerifier (rng) → userChallenge → payload → digest → x
//!  callback_url:  initialCallbackUrl + sessionSecretDigest (+ userChallengeVerifier)
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::ProtocolError;
use super::confirm::{Prompt, check_vc_choices, checked_request, key_pair};
use super::messages::{
    PendingTransaction, RpApiContext, RpSessionType, RpSignatureProtocol, SameDeviceCallback,
};
use crate::callback::CallbackUrl;
use crate::encoding::{SignatureScheme, encode_pkcs1v15, encode_pss};
use crate::rp_api::{self, AcspV2Fields};
use crate::sign::SigningRequest;
use crate::state::DeviceState;
use crate::{Result, vc};

/// The prompt of a REST (RP API v3) session.
pub(crate) fn rp_prompt(
    state: &DeviceState,
    t: &PendingTransaction,
    ctx: &RpApiContext,
) -> Result<Prompt> {
    let key_type = t.request.key_type;
    check_callback_values(ctx)?;
    if ctx.session_type == RpSessionType::CertificateChoice {
        return Ok(Prompt {
            relying_party: t.relying_party_name.clone(),
            display_text: String::new(),
            verification_code: String::new(),
            vc_choices: Vec::new(),
            key_type,
            interaction: None,
            certificate_choice: true,
            linked_session_id: None,
        });
    }
    let list = rp_api::decode_interactions(&ctx.interactions)
        .ok_or(ProtocolError::MalformedInteractions)?;
    let interaction = rp_api::choose_interaction(&list, &rp_api::SUPPORTED_INTERACTIONS)
        .cloned()
        .ok_or(ProtocolError::NoSupportedInteraction)?;
    let kp = key_pair(state, key_type)?;
    let verification_code = match ctx.signature_protocol {
        Some(RpSignatureProtocol::AcspV2) => {
            // Authentication: the code comes from the relying party's challenge, computed
            // here exactly as the relying party computes it.
            let raw = STANDARD
                .decode(&ctx.rp_challenge)
                .map_err(|_| ProtocolError::RpChallenge)?;
            vc::verification_code(&raw)
        }
        Some(RpSignatureProtocol::RawDigestSignature) => {
            checked_request(&t.request, &kp.composite_modulus)?;
            ctx.verification_code.clone()
        }
        None => return Err(ProtocolError::NoSignatureProtocol.into()),
    };
    let vc_choices = if interaction.kind == rp_api::CONFIRMATION_MESSAGE_AND_VC_CHOICE {
        check_vc_choices(&t.vc_choices, &verification_code)?;
        t.vc_choices.clone()
    } else {
        Vec::new()
    };
    Ok(Prompt {
        relying_party: t.relying_party_name.clone(),
        display_text: interaction.text.clone(),
        verification_code,
        vc_choices,
        key_type,
        interaction: Some(interaction),
        certificate_choice: false,
        linked_session_id: ctx.linked_session_id.clone(),
    })
}

/// Refuses (before any PIN is asked) a same-device session whose callback values the app
/// could not use: a callback URL the specification does not allow, a digest that is not
/// Base64URL SHA-256, or (outside a linked signing, whose callback is the certificate
/// choice's) a callback URL other than the one the ACSP_V2 payload binds.
fn check_callback_values(ctx: &RpApiContext) -> Result<()> {
    let Some(cb) = &ctx.callback else {
        return Ok(());
    };
    CallbackUrl::build(&cb.initial_callback_url, &cb.session_secret_digest, None)?;
    if ctx.linked_session_id.is_none()
        && ctx.initial_callback_url.as_deref() != Some(cb.initial_callback_url.as_str())
    {
        return Err(ProtocolError::CallbackUrl.into());
    }
    Ok(())
}

/// The URL the app opens when transaction `t` of a same-device flow (Web2App / App2App, or a
/// linked signing after such a certificate choice) ends: after the server accepted its
/// confirmation, or after a refusal (then without `userChallengeVerifier`: no signature holds
/// a `userChallenge` to check it against). `user_challenge_verifier` is the one of an
/// ACSP_V2 authentication the app signed. `None` for QR and notification flows.
pub fn callback_url(
    t: &PendingTransaction,
    user_challenge_verifier: Option<&str>,
) -> Result<Option<CallbackUrl>> {
    same_device_callback_url(
        t.rp_api.as_ref().and_then(|c| c.callback.as_ref()),
        user_challenge_verifier,
    )
}

/// [`callback_url`] from the session's callback values alone.
pub fn same_device_callback_url(
    callback: Option<&SameDeviceCallback>,
    user_challenge_verifier: Option<&str>,
) -> Result<Option<CallbackUrl>> {
    let Some(cb) = callback else {
        return Ok(None);
    };
    Ok(Some(CallbackUrl::build(
        &cb.initial_callback_url,
        &cb.session_secret_digest,
        user_challenge_verifier,
    )?))
}

/// The ACSP_V2 message of a REST authentication: the app picks its user challenge, derives
/// the digest from what it showed (`interaction`, the one it used) and encodes `x` for its
/// composite modulus. Returns the request, the `userChallenge` (sent to the server) and its
/// verifier (kept for the callback URL of a same-device flow; it MUST NOT be sent otherwise).
pub(crate) fn acsp_request(
    t: &PendingTransaction,
    ctx: &RpApiContext,
    interaction: &str,
    composite_modulus_bits: usize,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<(SigningRequest, String, Zeroizing<String>)> {
    let hash = rp_api::hash_from_name(&ctx.hash_algorithm).ok_or(ProtocolError::UnsupportedHash)?;
    let verifier = Zeroizing::new(rp_api::generate_user_challenge_verifier(rng));
    let user_challenge = rp_api::user_challenge(&verifier);
    let callback = ctx
        .initial_callback_url
        .as_deref()
        .filter(|url| !url.is_empty() && ctx.flow_type.is_same_device());
    let digest = rp_api::acsp_v2_digest(
        &AcspV2Fields {
            scheme_name: &ctx.scheme_name,
            server_random: &ctx.server_random,
            rp_challenge: &ctx.rp_challenge,
            user_challenge: &user_challenge,
            relying_party_name: &t.relying_party_name,
            brokered_rp_name: None,
            interactions: &ctx.interactions,
            interaction_type_used: interaction,
            initial_callback_url: callback,
            flow_type: ctx.flow_type.as_str(),
        },
        hash,
    );
    let scheme = if ctx.signature_algorithm == "rsassa-pss" {
        SignatureScheme::Pss
    } else {
        SignatureScheme::Pkcs1v15
    };
    let x = match scheme {
        SignatureScheme::Pss => encode_pss(hash, &digest, composite_modulus_bits, rng),
        SignatureScheme::Pkcs1v15 => encode_pkcs1v15(hash, &digest, composite_modulus_bits),
    }?;
    Ok((
        SigningRequest {
            scheme,
            hash,
            digest,
            encoded_message: x,
            composite_modulus_bits,
        },
        user_challenge,
        verifier,
    ))
}
