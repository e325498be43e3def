//! The key hand-over: which client keys are acceptable, `d1''` opened in the HSM and sealed
//! at rest, a server key per key pair (from the pool, else generated), and the proof
//! challenge the device must sign with each PIN.

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use tandem_client_core::encoding::{self, HashAlgorithm, SignatureScheme};
use tandem_client_core::envelope as device_envelope;
use tandem_client_core::hazmat;
use tandem_client_core::protocol::messages::{KeySubmission, ProofChallenge, SignatureRequest};
use tandem_client_core::types::KeyType;

use super::{AwaitingKeys, RegisterError, Registrar, RegistrationReplies};
use crate::core::Rng;
use crate::core::envelope::{self, ImportedShareKeys};
use crate::hsm::ServerKey;
use crate::signing;
use crate::store::RegistrationKey;

/// The request field that carries `d1''`.
const SHARE_FIELD: &str = "server_share_envelope";

/// Takes the device's AUTH and SIGN keys for an approved registration (see
/// [`super::Authenticated::awaiting_keys`]): checks every key
/// before the HSM is used, opens each `d1''` in the HSM and seals it at rest (or, `token-rsa`,
/// imports it as a token object), takes a server key per key pair and draws a proof
/// challenge per key pair from `rng`. The keys and the reply are stored in one database
/// transaction; a request refused on the way uses up no pooled key and leaves no share key
/// on the token. Returns the challenges, AUTH and SIGN in the order submitted.
pub fn submit_keys(
    ctx: &Registrar<'_>,
    rng: Rng<'_>,
    registration: AwaitingKeys,
    keys: &[KeySubmission],
    replies: &dyn RegistrationReplies,
) -> Result<Vec<ProofChallenge>, RegisterError> {
    let reg = &registration.0.registration;
    // Validate everything before touching the HSM.
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert(k.key_type) {
            return Err(RegisterError::DuplicateKeyType);
        }
        client_modulus_bits(ctx, &k.client_modulus)?;
        if ctx.rules.token_rsa {
            envelope::check_share_key_envelope(SHARE_FIELD, &k.server_share_envelope)?;
        } else {
            envelope::check_envelope(SHARE_FIELD, &k.server_share_envelope)?;
        }
    }
    if seen.len() != 2 {
        return Err(RegisterError::KeySet);
    }
    // Every share is opened and sealed at rest before server keys are taken, so a request
    // that fails here uses up no pooled key.
    let mut sealed = Vec::with_capacity(keys.len());
    // token-rsa: share key token objects made here are destroyed again unless the
    // registration keys are stored (any early return drops the guard).
    let mut imported = ImportedShareKeys::new(ctx.hsm);
    for k in keys {
        let n1 = &k.client_modulus;
        if ctx.rules.token_rsa {
            let blob = envelope::import_share_key(
                ctx.hsm,
                ctx.rules.hsm_call_timeout,
                SHARE_FIELD,
                &k.server_share_envelope,
                n1,
            )?;
            imported.push(blob.clone());
            sealed.push(blob);
            continue;
        }
        let d1pp = envelope::open_envelope(
            ctx.hsm,
            ctx.rules.hsm_call_timeout,
            SHARE_FIELD,
            &k.server_share_envelope,
            &device_envelope::aad_server_share(&reg.id, k.key_type),
        )?;
        if d1pp.len() != n1.len() {
            return Err(RegisterError::ServerShareSize);
        }
        sealed.push(
            ctx.hsm
                .seal_at_rest(&d1pp, &signing::server_share_aad(k.key_type, n1))?,
        );
        drop(d1pp);
    }
    let mut server_keys = server_keys(ctx, keys.len())?.into_iter();
    let mut challenges = Vec::with_capacity(keys.len());
    let mut stored = Vec::with_capacity(keys.len());
    for (k, server_share_blob) in keys.iter().zip(sealed) {
        let server_key = server_keys
            .next()
            .ok_or_else(|| RegisterError::Internal("server key missing".into()))?;
        let composite = hazmat::multiply(&k.client_modulus, &server_key.modulus);
        let bits = hazmat::bit_length(&composite);
        let (digest, x) = proof_request(&mut *rng, &reg.id, k.key_type, bits)?;
        challenges.push(ProofChallenge {
            key_type: k.key_type,
            composite_modulus: composite,
            server_modulus: server_key.modulus.clone(),
            request: SignatureRequest {
                key_type: k.key_type,
                scheme: SignatureScheme::Pkcs1v15,
                hash: HashAlgorithm::Sha256,
                digest: digest.clone(),
                encoded_message: x.clone(),
            },
        });
        stored.push(RegistrationKey {
            key_type: k.key_type,
            client_modulus: k.client_modulus.clone(),
            server_modulus: server_key.modulus,
            server_share_blob,
            server_key_blob: server_key.wrapped_private_key,
            proof_hash: "SHA256".into(),
            proof_scheme: "PKCS1_V15".into(),
            proof_digest: digest,
            proof_message: x,
        });
    }
    ctx.store.submit_registration_keys(
        &reg.id,
        &stored,
        ctx.clock.now(),
        &replies.keys_submitted(&challenges),
    )?;
    imported.keep();
    tracing::info!("keys handed over");
    Ok(challenges)
}

/// `n1` must be odd, of one of the configured sizes, without a leading zero byte.
fn client_modulus_bits(ctx: &Registrar<'_>, n1: &[u8]) -> Result<usize, RegisterError> {
    let bits = hazmat::bit_length(n1);
    if !ctx.rules.client_key_bits.contains(&bits)
        || n1.len() * 8 != bits
        || n1.last().is_none_or(|b| b & 1 == 0)
    {
        return Err(RegisterError::ClientModulus {
            allowed: ctx.rules.client_key_bits.clone(),
        });
    }
    Ok(bits)
}

/// The proof challenge of one key pair: a digest over the registration, the key type and 32
/// bytes from `rng`, encoded (PKCS#1 v1.5, SHA-256) to the composite modulus' length.
fn proof_request(
    rng: Rng<'_>,
    registration_id: &str,
    key_type: KeyType,
    composite_bits: usize,
) -> Result<(Vec<u8>, Vec<u8>), RegisterError> {
    let mut fresh = [0u8; 32];
    rng.fill_bytes(&mut fresh);
    let mut h = Sha256::new();
    h.update(b"tandem-registration-proof-v1\0");
    h.update(registration_id.as_bytes());
    h.update(key_type.to_string().as_bytes());
    h.update(fresh);
    let digest = h.finalize().to_vec();
    let x = encoding::encode_pkcs1v15(HashAlgorithm::Sha256, &digest, composite_bits)
        .map_err(|e| RegisterError::Internal(e.to_string()))?;
    Ok((digest, x))
}

/// `count` server keys for a registration: taken from the pool (in one database
/// transaction), generated in the HSM only for what the pool cannot give.
fn server_keys(ctx: &Registrar<'_>, count: usize) -> Result<Vec<ServerKey>, RegisterError> {
    let bits = ctx.rules.server_key_bits;
    let mut keys: Vec<ServerKey> = ctx
        .store
        .take_pooled_server_keys(bits, count)?
        .into_iter()
        .map(|(modulus, wrapped_private_key)| ServerKey {
            modulus,
            wrapped_private_key,
        })
        .collect();
    tracing::debug!(taken = keys.len(), "server keys taken from the pool");
    while keys.len() < count {
        if ctx.rules.server_key_pool {
            tracing::info!("server key pool empty; generating a key on the request path");
        }
        keys.push(ctx.hsm.generate_server_key(bits)?);
    }
    Ok(keys)
}
