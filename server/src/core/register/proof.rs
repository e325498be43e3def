//! The PIN proof that ends a registration: both proof signatures judged at once; a failure
//! counts against the registration's attempts, success creates the account with its key
//! pairs, certificates, device secret and first clone tokens.

use std::collections::HashSet;

use tandem_client_core::envelope as device_envelope;
use tandem_client_core::hazmat;
use tandem_client_core::protocol::messages::ProofShare;
use tandem_client_core::types::{CloneToken, DeviceSecret, KeyType};
use zeroize::Zeroizing;

use super::{
    AwaitingProof, Completed, NewAccount, NewKeyPair, RegisterError, Registrar,
    RegistrationReplies, uuid_v4,
};
use crate::core::Rng;
use crate::core::envelope;
use crate::hsm::HsmError;
use crate::signing::{self, ServerKeyRef, ShareVerdict};
use crate::store::{self, Identity, RegistrationKey};

/// The request field that carries a proof share `s1'`.
const PROOF_FIELD: &str = "share_envelope";

/// How a proof ended.
#[derive(Debug)]
pub enum CompletionOutcome {
    /// Both proofs verified: the account exists.
    Completed(Box<Completed>),
    /// A proof did not verify (a PIN other than the one chosen, or a broken split).
    ProofFailed {
        /// The key pairs whose proof failed, in the order sent.
        failed: Vec<KeyType>,
        /// Proofs left; 0: the registration has failed for good and its shares are gone.
        attempts_left: u32,
    },
}

/// Judges the device's proof signatures (one AUTH, one SIGN) for a registration whose keys
/// were handed over (see [`super::Authenticated::awaiting_proof`]). A failed proof is counted with its reply in one database transaction;
/// the last allowed failure ends the registration and destroys its shares. If both verify,
/// the certificates are issued first (nothing half-issued if the HSM fails), then the
/// account, its key pairs and the reply are stored in one database transaction. The account
/// id, a generated document number, the device secret and the clone tokens come from `rng`.
pub fn complete(
    ctx: &Registrar<'_>,
    rng: Rng<'_>,
    registration: AwaitingProof,
    shares: &[ProofShare],
    replies: &dyn RegistrationReplies,
) -> Result<CompletionOutcome, RegisterError> {
    let reg = &registration.0.registration;
    let now = ctx.clock.now();
    let keys = ctx.store.registration_keys(&reg.id)?;
    let mut seen = HashSet::new();
    for share in shares {
        seen.insert(share.key_type);
        envelope::check_envelope(PROOF_FIELD, &share.share_envelope)?;
    }
    if seen.len() != 2 || shares.len() != 2 {
        return Err(RegisterError::ProofSet);
    }
    let mut opened = Vec::with_capacity(shares.len());
    for share in shares {
        let key = keys
            .iter()
            .find(|k| k.key_type == share.key_type)
            .ok_or_else(|| RegisterError::Internal("registration key missing".into()))?;
        let s1 = envelope::open_envelope(
            ctx.hsm,
            ctx.rules.hsm_call_timeout,
            PROOF_FIELD,
            &share.share_envelope,
            &device_envelope::aad_proof_share(&reg.id, share.key_type),
        )?;
        check_share(&s1, &key.client_modulus)?;
        opened.push((share.key_type, key, s1));
    }
    let failed = judge(ctx, &opened)?;
    if !failed.is_empty() {
        return proof_failed(ctx, reg, &keys, failed, replies);
    }
    let identity = reg
        .identity
        .clone()
        .ok_or_else(|| RegisterError::Internal("identity missing".into()))?;
    let account_id = uuid_v4(&mut *rng);
    let document_number = match &reg.document_number {
        Some(chosen) => chosen.clone(),
        None => document_number(&mut *rng, &identity),
    };
    let device_secret = DeviceSecret::generate(&mut &mut *rng);
    let clone_tokens: Vec<(KeyType, CloneToken)> = [KeyType::Auth, KeyType::Sign]
        .into_iter()
        .map(|k| (k, CloneToken::generate(&mut &mut *rng)))
        .collect();
    let token_hashes: Vec<(KeyType, Vec<u8>)> = clone_tokens
        .iter()
        .map(|(k, t)| (*k, store::secret_hash(t.as_bytes())))
        .collect();
    let expires_at = now + ctx.rules.account_validity_days * 86_400;
    // Both certificates are issued (signed in the HSM) before anything is stored: if the HSM
    // fails, nothing is half-issued and the device can send its proof again.
    let mut certificates = Vec::new();
    for k in &keys {
        let n = hazmat::multiply(&k.client_modulus, &k.server_modulus);
        let cert = ctx
            .ca
            .issue(k.key_type, &n, &identity, now, expires_at)
            .map_err(|e| RegisterError::Internal(format!("certificate issuance failed: {e:#}")))?;
        certificates.push(cert);
    }
    // The account is described from what will be stored, so the reply can be written in the
    // same database transaction.
    let key_pairs = keys
        .iter()
        .map(|k| {
            let n = hazmat::multiply(&k.client_modulus, &k.server_modulus);
            Ok(NewKeyPair {
                key_type: k.key_type,
                public_key_der: crate::pki::rsa_spki_der(&n)
                    .map_err(|e| RegisterError::Internal(e.to_string()))?,
                composite_modulus: n,
                certificate_der: certificates
                    .iter()
                    .find(|c| c.key_type == k.key_type)
                    .map(|c| c.der.clone())
                    .unwrap_or_default(),
            })
        })
        .collect::<Result<_, RegisterError>>()?;
    let completed = Completed {
        account: NewAccount {
            account_id,
            document_number,
            identity,
            expires_at,
            key_pairs,
        },
        device_secret,
        clone_tokens,
    };
    let account = &completed.account;
    ctx.store.complete_registration(
        &reg.id,
        &account.account_id,
        &account.document_number,
        &store::secret_hash(completed.device_secret.expose_secret()),
        expires_at,
        &token_hashes,
        &certificates,
        now,
        &replies.completed(&completed),
    )?;
    tracing::info!(
        account_id = %account.account_id,
        document_number = %account.document_number,
        "registration completed"
    );
    Ok(CompletionOutcome::Completed(Box::new(completed)))
}

/// A share s1' must be a number below n1 of n1's length.
pub(crate) fn check_share(share: &[u8], n1: &[u8]) -> Result<(), RegisterError> {
    if share.len() != n1.len() || share >= n1 {
        return Err(RegisterError::ProofShareSize);
    }
    Ok(())
}

type Opened<'k> = (KeyType, &'k RegistrationKey, Zeroizing<Vec<u8>>);

/// Judges the proofs at once: the key pairs are independent, so their exponentiations run in
/// parallel (registration latency is about one proof instead of two on two cores). Returns
/// the key types whose proof failed.
fn judge(ctx: &Registrar<'_>, opened: &[Opened<'_>]) -> Result<Vec<KeyType>, RegisterError> {
    let judge_one = |(kt, key, s1): &Opened<'_>| {
        signing::evaluate_share_within(
            ctx.hsm,
            ctx.rules.hsm_call_timeout,
            ServerKeyRef {
                key_type: *kt,
                client_modulus: &key.client_modulus,
                server_modulus: &key.server_modulus,
                server_share_blob: &key.server_share_blob,
                server_key_blob: &key.server_key_blob,
            },
            &key.proof_message,
            s1,
        )
    };
    let span = tracing::Span::current();
    let verdicts: Vec<_> = std::thread::scope(|scope| {
        let running: Vec<_> = opened
            .iter()
            .map(|o| {
                let span = span.clone();
                scope.spawn(move || span.in_scope(|| judge_one(o)))
            })
            .collect();
        running
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(signing::SigningError::Hsm(HsmError::Worker(
                        "the proof check panicked",
                    ))))
            })
            .collect()
    });
    let mut failed = Vec::new();
    for ((kt, _, _), verdict) in opened.iter().zip(verdicts) {
        if matches!(verdict?, ShareVerdict::Invalid) {
            failed.push(*kt);
        }
    }
    Ok(failed)
}

/// Counts a failed proof. The attempts left are decided here, from the registration as it
/// is now, so that the shell can seal the reply before the store writes it with the count.
fn proof_failed(
    ctx: &Registrar<'_>,
    reg: &store::Registration,
    keys: &[RegistrationKey],
    failed: Vec<KeyType>,
    replies: &dyn RegistrationReplies,
) -> Result<CompletionOutcome, RegisterError> {
    let now = ctx.clock.now();
    // Compare and set: the reply is sealed for the count read here; if another proof was
    // counted meanwhile the store writes nothing and we read again. Bounded: each round
    // that loses means another request's failure was counted.
    let mut rounds = 0;
    let (attempts_left, left) = loop {
        let attempts = ctx.store.registration(&reg.id)?.proof_attempts;
        let attempts_left = ctx
            .rules
            .proof_attempts
            .saturating_sub(attempts.saturating_add(1));
        let reply = replies.proof_failed(&failed, attempts_left);
        if let Some(left) = ctx.store.registration_proof_failed(
            &reg.id,
            attempts,
            ctx.rules.proof_attempts,
            now,
            &reply,
        )? {
            break (attempts_left, left);
        }
        rounds += 1;
        if rounds >= 16 {
            return Err(crate::store::StoreError::Conflict(
                "the registration's proof count keeps changing".into(),
            )
            .into());
        }
        tracing::warn!("another proof was counted meanwhile; counting again");
    };
    tracing::info!(attempts_left, "registration proof failed");
    if left == 0 {
        // The registration failed for good; token-rsa share objects go too.
        let share_keys: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| k.server_share_blob.clone())
            .filter(|b| crate::hsm::is_token_share_blob(b))
            .collect();
        envelope::destroy_share_keys(ctx.hsm, &share_keys);
    }
    Ok(CompletionOutcome::ProofFailed {
        failed,
        attempts_left,
    })
}

/// `PNO<CC>-<national id>-<4 random>-Q`.
fn document_number(rng: Rng<'_>, identity: &Identity) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 4];
    rng.fill_bytes(&mut bytes);
    let suffix: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!(
        "PNO{}-{}-{}-Q",
        identity.country, identity.national_id, suffix
    )
}
