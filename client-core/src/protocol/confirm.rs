//! Confirming a pending transaction: what the app shows, the checks before the PIN is asked,
//! and the sealed answer.
//!
//! ```text
//!  PendingTransaction ─▶ prompt(state, t)                      nothing signed yet; refuses:
//!                          gRPC RP API: x encodes the digest,   - x that does not encode the
//!                            VC = code(digest), VC choice         digest shown
//!                          REST RP API: rp_session::rp_prompt   - a VC choice without the code
//!                        ─▶ Prompt (shown; the person enters the PIN)
//!  prepare_confirm(state, t, PIN, chosen VC, transport key, rng)
//!    prompt again, d1' = unlock(PIN), request (server's x, or ACSP_V2 built here),
//!    s1' = x^d1' mod n1 after the encoding check, sealed (aad_partial_signature)
//!                        ─▶ PreparedConfirm { ConfirmMessage, key type, callback URL }
//!  ConfirmReply ─▶ store_next_clone_token, PreparedConfirm::callback_after(outcome)
//! ```

use rand_core::{CryptoRng, RngCore};

use super::ProtocolError;
use super::messages::{
    AcspV2Answer, ConfirmAnswer, ConfirmMessage, ConfirmOutcome, PendingTransaction,
    RpSignatureProtocol, SignatureRequest, SignedAnswer,
};
use super::rp_session;
use super::transport_key::TransportKey;
use crate::callback::CallbackUrl;
use crate::encoding::verify_encoding;
use crate::envelope;
use crate::hazmat::bigint::bit_length;
use crate::pin::Pin;
use crate::sign::{PartialSignature, SigningRequest, partial_sign};
use crate::state::{DeviceState, KeyPairState};
use crate::types::{CloneToken, KeyType, RequestNonce};
use crate::{Error, Result, vc};

/// What the device shows before asking for the PIN.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Relying party.
    pub relying_party: String,
    /// Text to confirm.
    pub display_text: String,
    /// The verification code the device computed from the digest.
    pub verification_code: String,
    /// The three codes to choose from (empty: show `verification_code`).
    pub vc_choices: Vec<String>,
    /// Which key (PIN1 for AUTH, PIN2 for SIGN).
    pub key_type: KeyType,
    /// REST sessions: the interaction shown (the first of the relying party's list this
    /// app supports). `None` for gRPC transactions.
    pub interaction: Option<crate::rp_api::Interaction>,
    /// REST sessions: a certificate choice (no PIN, no signature).
    pub certificate_choice: bool,
    /// REST linked signing: the device-link certificate choice this session follows. After
    /// answering such a choice the app waits for this session; any other one it refuses with
    /// reason `EXPECTED_LINKED_SESSION`.
    pub linked_session_id: Option<String>,
}

/// Checks a pending transaction against the device's own view and builds the prompt. Called
/// before the PIN is asked: a transaction refused here never costs a PIN attempt.
pub fn prompt(state: &DeviceState, t: &PendingTransaction) -> Result<Prompt> {
    if let Some(ctx) = &t.rp_api {
        return rp_session::rp_prompt(state, t, ctx);
    }
    let key_type = t.request.key_type;
    let kp = key_pair(state, key_type)?;
    // Refuse before any PIN is asked if x does not encode the digest we will show.
    checked_request(&t.request, &kp.composite_modulus)?;
    let code = vc::verification_code(&t.request.digest);
    if !t.vc_choices.is_empty() {
        check_vc_choices(&t.vc_choices, &code)?;
    }
    Ok(Prompt {
        relying_party: t.relying_party_name.clone(),
        display_text: t.display_text.clone(),
        verification_code: code,
        vc_choices: t.vc_choices.clone(),
        key_type,
        interaction: None,
        certificate_choice: false,
        linked_session_id: None,
    })
}

/// The server's request for a composite modulus, refused ([`Error::EncodingMismatch`])
/// unless its `x` encodes the digest it names.
pub fn checked_request(
    request: &SignatureRequest,
    composite_modulus: &[u8],
) -> Result<SigningRequest> {
    let request = request.for_modulus_bits(bit_length(composite_modulus));
    verify_encoding(
        request.scheme,
        request.hash,
        &request.digest,
        &request.encoded_message,
        request.composite_modulus_bits,
    )
    .map_err(|_| Error::EncodingMismatch)?;
    Ok(request)
}

/// A three-code choice must hold exactly three codes, one of them `code`.
pub(crate) fn check_vc_choices(choices: &[String], code: &str) -> Result<()> {
    if choices.len() != 3 || !choices.iter().any(|c| c == code) {
        return Err(ProtocolError::VcChoice.into());
    }
    Ok(())
}

pub(crate) fn key_pair(state: &DeviceState, key_type: KeyType) -> Result<&KeyPairState> {
    Ok(state
        .key_pair(key_type)
        .ok_or(ProtocolError::NoSuchKeyPair)?)
}

/// A confirmation prepared for sending: build once, send (and re-send) the same message.
#[derive(Debug)]
pub struct PreparedConfirm {
    /// The message, nonce included.
    pub message: ConfirmMessage,
    /// Which key pair's clone token the answer refreshes.
    pub key_type: KeyType,
    /// Same-device flows: the callback URL to open once the server accepted
    /// ([`PreparedConfirm::callback_after`]); `None` otherwise.
    pub callback: Option<CallbackUrl>,
}

impl PreparedConfirm {
    /// The callback URL to open after the server judged the confirmation `outcome`: only
    /// when it accepted one of a same-device flow. (A rejected PIN or code choice opens
    /// nothing.)
    pub fn callback_after(&self, outcome: ConfirmOutcome) -> Option<&CallbackUrl> {
        callback_after(self.callback.as_ref(), outcome)
    }
}

/// [`PreparedConfirm::callback_after`] for a callback kept elsewhere.
pub fn callback_after(
    callback: Option<&CallbackUrl>,
    outcome: ConfirmOutcome,
) -> Option<&CallbackUrl> {
    (outcome == ConfirmOutcome::Accepted)
        .then_some(callback)
        .flatten()
}

/// Keeps the clone token the server issued with its answer for key pair `key_type`; the
/// next share must carry it. Save the state afterwards.
pub fn store_next_clone_token(state: &mut DeviceState, key_type: KeyType, token: CloneToken) {
    if let Some(kp) = state.key_pair_mut(key_type) {
        kp.clone_token = token;
    }
}

/// Answers a certificate choice: no PIN, no signature; the server returns this account's
/// signing certificate to the relying party. Refuses any other kind of session
/// ([`ProtocolError::NotCertificateChoice`]).
///
/// For a choice answered through a Web2App / App2App link the prepared answer carries the
/// callback URL. When the relying party follows the choice with a linked signing session
/// (`Prompt::linked_session_id`), that session carries the same callback values and the
/// app opens the callback after it instead (callback_urls.txt, "Callback URLs in linked
/// notification based flows").
pub fn prepare_certificate_choice(
    state: &DeviceState,
    t: &PendingTransaction,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<PreparedConfirm> {
    if !prompt(state, t)?.certificate_choice {
        return Err(ProtocolError::NotCertificateChoice.into());
    }
    Ok(PreparedConfirm {
        message: ConfirmMessage {
            transaction_id: t.transaction_id.clone(),
            nonce: RequestNonce::generate(rng),
            answer: ConfirmAnswer::CertificateChoice,
        },
        key_type: KeyType::Sign,
        callback: rp_session::callback_url(t, None)?,
    })
}

/// Unlocks the share with `pin`, signs (after the checks of [`prompt`] and the encoding
/// check) and seals the partial signature to the transport key. `chosen_vc` is the code the
/// person picked when a choice was shown. A certificate choice needs no PIN and no
/// signature: it is answered as [`prepare_certificate_choice`] does (the PIN is not used).
///
/// The PIN and `d1'` stay on the device; only the sealed `s1'` is sent.
pub fn prepare_confirm(
    state: &DeviceState,
    t: &PendingTransaction,
    pin: &Pin,
    chosen_vc: Option<&str>,
    transport: &TransportKey,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<PreparedConfirm> {
    let p = prompt(state, t)?;
    if p.certificate_choice {
        return prepare_certificate_choice(state, t, rng);
    }
    let kp = key_pair(state, p.key_type)?;
    let share = kp.protected_share.unlock(pin, &state.keystore_secret)?;
    prepare_signed(state, t, chosen_vc, transport, rng, |n1, request| {
        partial_sign(&share, n1, request)
    })
}

/// Builds the signing request of transaction `t` (the server's RSASSA encoding, or the
/// ACSP_V2 payload built here), has `sign` compute `s1'` for it, and seals the confirmation.
/// A certificate choice has nothing to sign: it is answered without calling `sign`.
pub(crate) fn prepare_signed(
    state: &DeviceState,
    t: &PendingTransaction,
    chosen_vc: Option<&str>,
    transport: &TransportKey,
    rng: &mut (impl CryptoRng + RngCore),
    sign: impl FnOnce(&[u8], &SigningRequest) -> Result<PartialSignature>,
) -> Result<PreparedConfirm> {
    let p = prompt(state, t)?;
    if p.certificate_choice {
        return prepare_certificate_choice(state, t, rng);
    }
    let kp = key_pair(state, p.key_type)?;
    let bits = bit_length(&kp.composite_modulus);
    let interaction_type_used = p.interaction.as_ref().map(|i| i.kind.clone());
    let (request, user_challenge, callback) = match &t.rp_api {
        Some(ctx) if ctx.signature_protocol == Some(RpSignatureProtocol::AcspV2) => {
            let (r, uc, verifier) = rp_session::acsp_request(
                t,
                ctx,
                interaction_type_used.as_deref().unwrap_or_default(),
                bits,
                rng,
            )?;
            (
                r,
                Some(uc),
                rp_session::callback_url(t, Some(verifier.as_str()))?,
            )
        }
        _ => (
            t.request.for_modulus_bits(bits),
            None,
            rp_session::callback_url(t, None)?,
        ),
    };
    let s1 = sign(&kp.client_modulus, &request)?;
    let acsp_v2 = user_challenge.map(|user_challenge| AcspV2Answer {
        user_challenge,
        encoded_message: request.encoded_message,
    });
    let mut prepared = seal_confirm(
        state,
        &t.transaction_id,
        Signed {
            key_type: p.key_type,
            s1: &s1,
            chosen_vc,
            interaction_type_used,
            acsp_v2,
        },
        transport,
        rng,
    )?;
    prepared.callback = callback;
    Ok(prepared)
}

/// A partial signature and what goes with it in a confirmation.
pub(crate) struct Signed<'a> {
    pub(crate) key_type: KeyType,
    pub(crate) s1: &'a PartialSignature,
    pub(crate) chosen_vc: Option<&'a str>,
    pub(crate) interaction_type_used: Option<String>,
    pub(crate) acsp_v2: Option<AcspV2Answer>,
}

/// Seals a partial signature for transaction `transaction_id` of this account (the AAD binds
/// transaction, account and key type) and builds the confirmation with the key pair's clone
/// token and a fresh nonce. No callback: the caller sets it.
pub(crate) fn seal_confirm(
    state: &DeviceState,
    transaction_id: &str,
    signed: Signed<'_>,
    transport: &TransportKey,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<PreparedConfirm> {
    let kp = key_pair(state, signed.key_type)?;
    let share_envelope = envelope::seal(
        transport.spki_der(),
        signed.s1.as_bytes(),
        &envelope::aad_partial_signature(transaction_id, &state.account_id, signed.key_type),
        rng,
    )?;
    Ok(PreparedConfirm {
        message: ConfirmMessage {
            transaction_id: transaction_id.to_owned(),
            nonce: RequestNonce::generate(rng),
            answer: ConfirmAnswer::Signed(SignedAnswer {
                share_envelope,
                clone_token: CloneToken::from_slice(kp.clone_token.as_bytes())?,
                chosen_vc: signed.chosen_vc.map(str::to_owned),
                interaction_type_used: signed.interaction_type_used,
                acsp_v2: signed.acsp_v2,
            }),
        },
        key_type: signed.key_type,
        callback: None,
    })
}
