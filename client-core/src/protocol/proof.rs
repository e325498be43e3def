//! Registration, last round: one signature per key pair proves the split and the PINs, and
//! the completed registration becomes the device state.
//!
//! ```text
//!  device                                                       server
//!  Registration::prepare_proof(PIN1, PIN2, transport key, rng)
//!    per key pair: x checked against the challenge's digest,
//!    s1' = x^d1' mod n1, sealed (aad_proof_share)
//!                        ── CompleteRegistration ─────────────▶  s1'·s1'' verifies?
//!                        ◀─ CompleteRegistrationReply ────────  account, device secret,
//!                                                                clone tokens | failed
//!  Registration::complete → ProofOutcome::Completed(DeviceState) | PinMismatch
//! ```

use rand_core::{CryptoRng, RngCore};

use super::ProtocolError;
use super::messages::{CompleteRegistration, CompleteRegistrationReply, ProofShare};
use super::registration::Registration;
use super::transport_key::TransportKey;
use crate::Result;
use crate::envelope;
use crate::hazmat::bigint::bit_length;
use crate::pin::Pin;
use crate::sign::partial_sign;
use crate::state::{DeviceState, KeyPairState};
use crate::types::{CloneToken, DeviceSecret, KeyType, RequestNonce};

/// Result of the registration proof.
#[derive(Debug)]
pub enum ProofOutcome {
    /// The account exists; save this state.
    Completed(Box<DeviceState>),
    /// A PIN did not match the one chosen; try again (same keys).
    PinMismatch {
        /// Which key pairs failed.
        failed: Vec<KeyType>,
        /// Proofs left before the registration is aborted.
        attempts_left: u32,
    },
}

impl Registration {
    /// Signs each key pair's proof challenge with its PIN (`pin1` AUTH, `pin2` SIGN), after
    /// checking that the challenge's `x` encodes its digest, and seals each partial signature
    /// to the transport key. Nothing is sent.
    pub fn prepare_proof(
        &self,
        pin1: &Pin,
        pin2: &Pin,
        transport: &TransportKey,
        rng: &mut (impl CryptoRng + RngCore),
    ) -> Result<CompleteRegistration> {
        let mut shares = Vec::new();
        for k in &self.keys {
            let pin = if k.key_type == KeyType::Auth {
                pin1
            } else {
                pin2
            };
            let request = k
                .challenge
                .for_modulus_bits(bit_length(&k.composite_modulus));
            let share = k.protected_share.unlock(pin, &self.keystore_secret)?;
            let s1 = partial_sign(&share, &k.client_modulus, &request)?;
            drop(share);
            shares.push(ProofShare {
                key_type: k.key_type,
                share_envelope: envelope::seal(
                    transport.spki_der(),
                    s1.as_bytes(),
                    &envelope::aad_proof_share(&self.registration_id, k.key_type),
                    rng,
                )?,
            });
        }
        Ok(CompleteRegistration {
            shares,
            nonce: RequestNonce::generate(rng),
        })
    }

    /// Takes the server's answer to the proof. Every proof verified: the registration becomes
    /// the device state for the account at `server_url` (the certificates, the device secret
    /// and one clone token per key pair from the answer); the registration is consumed. A
    /// proof failed: [`ProofOutcome::PinMismatch`], and the caller keeps its copy of the
    /// registration to try again.
    pub fn complete(
        self,
        server_url: &str,
        reply: CompleteRegistrationReply,
    ) -> Result<ProofOutcome> {
        if !reply.failed.is_empty() {
            return Ok(ProofOutcome::PinMismatch {
                failed: reply.failed,
                attempts_left: reply.attempts_left,
            });
        }
        let account = reply.account.ok_or(ProtocolError::NoAccount)?;
        let mut key_pairs = Vec::new();
        for k in self.keys {
            let (_, token) = reply
                .clone_tokens
                .iter()
                .find(|(kt, _)| *kt == k.key_type)
                .ok_or(ProtocolError::CloneTokenMissing)?;
            key_pairs.push(KeyPairState {
                key_type: k.key_type,
                clone_token: CloneToken::from_slice(token)?,
                certificate: account
                    .certificates
                    .iter()
                    .find(|(kt, _)| *kt == k.key_type)
                    .map(|(_, der)| der.clone())
                    .unwrap_or_default(),
                client_modulus: k.client_modulus,
                composite_modulus: k.composite_modulus,
                protected_share: k.protected_share,
            });
        }
        let identity = account.identity;
        let state = DeviceState {
            server_url: server_url.to_owned(),
            device_id: self.device_id,
            account_id: account.account_id,
            document_number: account.document_number,
            given_name: identity.given_name,
            surname: identity.surname,
            country: identity.country,
            national_id: identity.national_id,
            expires_at_unix: account.expires_at_unix,
            device_secret: DeviceSecret::from_slice(&reply.device_secret)?,
            keystore_secret: self.keystore_secret,
            key_pairs,
        };
        // A state that could not be saved and read back is refused now, not at the next start.
        state.validate()?;
        Ok(ProofOutcome::Completed(Box::new(state)))
    }
}
