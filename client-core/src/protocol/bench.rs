//! Confirmation variants for load generators and benchmarks (feature `bench-variants`), not
//! for apps: `tandem load` runs its simulated devices beside the server it measures, so it
//! unlocks each share once, precomputes what repeats, or exponentiates with a faster
//! constant-time routine. Each variant keeps every check of [`super::confirm`].

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

use super::ProtocolError;
use super::confirm::{PreparedConfirm, Signed, key_pair, prepare_signed, prompt, seal_confirm};
use super::messages::PendingTransaction;
use super::transport_key::TransportKey;
use crate::Result;
use crate::keys::DeviceShare;
use crate::pin::Pin;
use crate::sign::{ModExp, PartialSignature, SigningRequest, partial_sign, partial_sign_with};
use crate::state::DeviceState;
use crate::types::KeyType;

/// [`super::prepare_confirm`] with a share unlocked before (so that the PIN unlock,
/// memory-hard by design, does not run beside the server being measured). The share must be
/// the one of the transaction's key type.
pub fn prepare_confirm_with_share(
    state: &DeviceState,
    t: &PendingTransaction,
    share: &DeviceShare,
    chosen_vc: Option<&str>,
    transport: &TransportKey,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<PreparedConfirm> {
    prepare_signed(state, t, chosen_vc, transport, rng, |n1, request| {
        partial_sign(share, n1, request)
    })
}

/// [`prepare_confirm_with_share`] with the share's exponentiation done by `mod_exp`
/// ([`crate::sign::partial_sign_with`]: the same checks come first).
pub fn prepare_confirm_with_share_using(
    state: &DeviceState,
    t: &PendingTransaction,
    share: &DeviceShare,
    chosen_vc: Option<&str>,
    transport: &TransportKey,
    mod_exp: &ModExp<'_>,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<PreparedConfirm> {
    prepare_signed(state, t, chosen_vc, transport, rng, |n1, request| {
        partial_sign_with(share, n1, request, mod_exp)
    })
}

/// Device work done ahead of time: the partial signature of one encoded message, so that
/// confirming a transaction which asks for exactly that message costs only the envelope.
/// Only deterministic encodings (RSASSA-PKCS1-v1_5 over a fixed digest) repeat, so only
/// those are worth precomputing. Holds no PIN and no share.
#[derive(Debug)]
pub struct Precomputed {
    key_type: KeyType,
    encoded_message: Vec<u8>,
    s1: PartialSignature,
}

/// Unlocks the share with `pin` and signs `request` (after the encoding check) for later
/// [`prepare_confirm_precomputed`] calls.
pub fn precompute(
    state: &DeviceState,
    key_type: KeyType,
    pin: &Pin,
    request: &SigningRequest,
) -> Result<Precomputed> {
    let kp = key_pair(state, key_type)?;
    let share = kp.protected_share.unlock(pin, &state.keystore_secret)?;
    let s1 = partial_sign(&share, &kp.client_modulus, request)?;
    Ok(Precomputed {
        key_type,
        encoded_message: request.encoded_message.clone(),
        s1,
    })
}

/// [`super::prepare_confirm`] with the partial signature from [`precompute`]: only for a
/// gRPC-API transaction of that key type whose request passes [`prompt`]'s checks and asks
/// for exactly the precomputed encoded message (anything else is refused here with
/// [`ProtocolError::NotPrecomputed`], so it never costs a PIN attempt).
pub fn prepare_confirm_precomputed(
    state: &DeviceState,
    t: &PendingTransaction,
    pre: &Precomputed,
    transport: &TransportKey,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<PreparedConfirm> {
    let p = prompt(state, t)?;
    if p.key_type != pre.key_type
        || t.rp_api.is_some()
        || !bool::from(
            t.request
                .encoded_message
                .as_slice()
                .ct_eq(pre.encoded_message.as_slice()),
        )
    {
        return Err(ProtocolError::NotPrecomputed.into());
    }
    seal_confirm(
        state,
        &t.transaction_id,
        Signed {
            key_type: p.key_type,
            s1: &pre.s1,
            chosen_vc: None,
            interaction_type_used: None,
            acsp_v2: None,
        },
        transport,
        rng,
    )
}
