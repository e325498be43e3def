//! Registration, first two rounds: start (matching code) and key hand-over.
//!
//! ```text
//!  device                                                       server
//!  start(device_id, rng) ── StartRegistration ────────────────▶
//!                        ◀─ StartRegistrationReply ───────────  id, secret, codes
//!  AwaitingStart::accept   checks the matching code → Registration
//!        (the operator approves the registration code)
//!  Registration::prepare_keys(transport key, PIN1, PIN2, rng)
//!    per key pair: n1, d1' + d1'' split, d1'' sealed (then gone), d1' under the PIN
//!                        ── KeySubmission × 2 ───────────────▶
//!                        ◀─ ProofChallenge × 2 ───────────────  n2, n, request
//!  PreparedKeys::accept    checks n = n1·n2, one challenge per key pair
//!        → Registration::keys (then the proof: [`crate::protocol::proof`])
//! ```

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::ProtocolError;
use super::messages::{
    KeySubmission, ProofChallenge, SignatureRequest, StartRegistration, StartRegistrationReply,
};
use super::transport_key::{ShareForm, TransportKey};
use crate::envelope;
use crate::hazmat::bigint::multiply;
use crate::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use crate::types::{KeyType, RequestNonce};
use crate::{Result, vc};

/// The secret that authenticates a registration's further calls (not a key share). The shell
/// sends it with every registration message.
#[derive(Zeroize, ZeroizeOnDrop, Clone, PartialEq, Eq)]
pub struct RegistrationSecret(Vec<u8>);

impl RegistrationSecret {
    /// Wraps the server's bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes, for the wire (inside TLS) and the saved registration; nothing else should
    /// read them.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for RegistrationSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RegistrationSecret(<redacted>)")
    }
}

/// The device waiting for the server's answer to [`StartRegistration`].
#[derive(Debug)]
pub struct AwaitingStart {
    device_id: [u8; 16],
    device_challenge: [u8; 32],
}

/// Starts a registration: draws the device challenge (it feeds the matching code) and the
/// nonce. Send the message; hand the answer to [`AwaitingStart::accept`].
pub fn start(
    device_id: [u8; 16],
    rng: &mut (impl CryptoRng + RngCore),
) -> (StartRegistration, AwaitingStart) {
    let mut device_challenge = [0u8; 32];
    rng.fill_bytes(&mut device_challenge);
    let message = StartRegistration {
        device_id,
        device_challenge,
        nonce: RequestNonce::generate(rng),
    };
    (
        message,
        AwaitingStart {
            device_id,
            device_challenge,
        },
    )
}

impl AwaitingStart {
    /// Checks the server's matching code against the one the device computes from the
    /// registration id and its own challenge (both sides show it; the operator compares),
    /// and draws the keystore secret. A different code is refused
    /// ([`ProtocolError::MatchingCode`]).
    pub fn accept(
        self,
        reply: StartRegistrationReply,
        rng: &mut (impl CryptoRng + RngCore),
    ) -> Result<Registration> {
        let expected = vc::matching_code(&reply.registration_id, &self.device_challenge);
        if !bool::from(expected.as_bytes().ct_eq(reply.matching_code.as_bytes())) {
            return Err(ProtocolError::MatchingCode.into());
        }
        Ok(Registration {
            device_id: self.device_id,
            registration_id: reply.registration_id,
            registration_secret: RegistrationSecret(reply.registration_secret),
            registration_code: reply.registration_code,
            matching_code: expected,
            expires_at_unix: reply.expires_at_unix,
            keystore_secret: KeystoreSecret::generate(rng),
            keys: Vec::new(),
        })
    }
}

/// A registration in progress on the device: what it keeps between the rounds.
#[derive(Debug)]
pub struct Registration {
    /// Device id.
    pub device_id: [u8; 16],
    /// Registration id.
    pub registration_id: String,
    /// Authenticates the registration calls.
    pub registration_secret: RegistrationSecret,
    /// Code for the operator.
    pub registration_code: String,
    /// Code both sides show (checked).
    pub matching_code: String,
    /// Unix seconds.
    pub expires_at_unix: i64,
    /// Argon2 secret input; stands in for the phone's hardware keystore.
    pub keystore_secret: KeystoreSecret,
    /// The key pairs after the hand-over (empty before).
    pub keys: Vec<RegisteredKey>,
}

/// A key pair handed over, kept until the proof succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredKey {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// `n1`.
    pub client_modulus: Vec<u8>,
    /// `n = n1·n2` (checked).
    pub composite_modulus: Vec<u8>,
    /// `d1'` under the chosen PIN.
    pub protected_share: ProtectedShare,
    /// The proof challenge.
    pub challenge: SignatureRequest,
}

/// How the device makes its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyParams {
    /// The server's share form.
    pub form: ShareForm,
    /// Bits of `n1` (2048, 3072 or 4096).
    pub key_bits: usize,
    /// Argon2id cost of the PIN protection.
    pub kdf: KdfParams,
}

/// The key hand-over, prepared: the messages to send and what the device keeps. Nothing
/// secret is in it: `d1''` is sealed (and destroyed), `d1'` is under the PIN.
#[derive(Debug)]
pub struct PreparedKeys {
    /// One AUTH and one SIGN submission.
    pub submissions: Vec<KeySubmission>,
    /// Retransmission nonce of the `SubmitKeys` message.
    pub nonce: RequestNonce,
    kept: Vec<(KeyType, Vec<u8>, ProtectedShare)>,
}

impl Registration {
    /// Generates the AUTH and SIGN client keys, seals each `d1''` to the server's transport
    /// key in the server's share form (the device no longer holds it afterwards), and
    /// protects each `d1'` under its PIN (`pin1` AUTH, `pin2` SIGN). Nothing is sent.
    pub fn prepare_keys(
        &self,
        transport: &TransportKey,
        params: KeyParams,
        pin1: &Pin,
        pin2: &Pin,
        rng: &mut (impl CryptoRng + RngCore),
    ) -> Result<PreparedKeys> {
        transport.check_share_form(params.form)?;
        let mut submissions = Vec::new();
        let mut kept = Vec::new();
        for (kt, pin) in [(KeyType::Auth, pin1), (KeyType::Sign, pin2)] {
            let (modulus, device_share, sealed) = match params.form {
                ShareForm::Exponent => {
                    let material = crate::keys::generate_client_key(rng, params.key_bits)?;
                    let sealed = envelope::seal_server_share(
                        transport.spki_der(),
                        material.server_share,
                        &envelope::aad_server_share(&self.registration_id, kt),
                        rng,
                    )?;
                    (material.modulus, material.device_share, sealed)
                }
                ShareForm::RsaKey => {
                    let material =
                        crate::keys::generate_client_key_for_token(rng, params.key_bits)?;
                    let sealed = envelope::seal_server_share_key(
                        transport.spki_der(),
                        material.server_share_key,
                        rng,
                    )?;
                    (material.modulus, material.device_share, sealed)
                }
            };
            let share = ProtectedShare::protect(
                &device_share,
                pin,
                &self.keystore_secret,
                params.kdf,
                rng,
            )?;
            drop(device_share);
            submissions.push(KeySubmission {
                key_type: kt,
                client_modulus: modulus.clone(),
                server_share_envelope: sealed,
            });
            kept.push((kt, modulus, share));
        }
        Ok(PreparedKeys {
            submissions,
            nonce: RequestNonce::generate(rng),
            kept,
        })
    }
}

impl PreparedKeys {
    /// No keys (for tests of the shells' `Debug`).
    #[cfg(all(test, feature = "grpc"))]
    pub(crate) fn empty_for_tests() -> Self {
        Self {
            submissions: Vec::new(),
            nonce: RequestNonce::from_slice(&[0; 16]).unwrap(),
            kept: Vec::new(),
        }
    }

    /// Takes the server's proof challenges: one per key pair, each with a composite modulus
    /// that really is `n1·n2` for this device's `n1` (else [`ProtocolError::NoChallenge`] /
    /// [`ProtocolError::CompositeModulus`]). Store the result in [`Registration::keys`].
    pub fn accept(self, challenges: &[ProofChallenge]) -> Result<Vec<RegisteredKey>> {
        let mut keys = Vec::new();
        for (kt, n1, share) in self.kept {
            let ch = challenges
                .iter()
                .find(|c| c.key_type == kt)
                .ok_or(ProtocolError::NoChallenge(kt))?;
            // The composite key must really contain our n1.
            if multiply(&n1, &ch.server_modulus) != ch.composite_modulus {
                return Err(ProtocolError::CompositeModulus.into());
            }
            keys.push(RegisteredKey {
                key_type: kt,
                client_modulus: n1,
                composite_modulus: ch.composite_modulus.clone(),
                protected_share: share,
                challenge: ch.request.clone(),
            });
        }
        Ok(keys)
    }
}
