//! The wire side of registration: protobuf ↔ [`crate::core::register`] types, the sealed
//! replies the core asks for, and the core's refusals as [`ApiError`]s.

use rand_core::OsRng;
use tandem_client_core::protocol::messages::{KeySubmission, ProofChallenge, ProofShare};
use tandem_client_core::protocol::registration::RegistrationSecret;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;

use super::convert;
use super::{ApiError, App, Retransmission};
use crate::core::SystemClock;
use crate::core::envelope::EnvelopeError;
use crate::core::register::{
    self, Completed, CompletionOutcome, Phase, RegisterError, Registrar, RegistrationReplies,
    RegistrationRules, Started, Status,
};
use crate::store::Reply;

/// Runs `step` with the server's registrar (system clock) and the OS's RNG.
pub(super) fn with_registrar<T>(
    app: &App,
    step: impl FnOnce(&Registrar<'_>, crate::core::Rng<'_>) -> T,
) -> T {
    let rules = RegistrationRules::from_config(&app.config);
    let ctx = Registrar {
        store: &*app.store,
        hsm: &app.hsm,
        ca: &app.ca,
        rules: &rules,
        clock: &SystemClock,
    };
    step(&ctx, &mut OsRng)
}

/// The registration a request names, with its secret checked.
pub(super) fn find(
    app: &App,
    registration_id: &str,
    secret: &[u8],
) -> Result<register::Authenticated, ApiError> {
    convert::ident("registration_id", registration_id)?;
    Ok(register::find(
        &*app.store,
        registration_id,
        &RegistrationSecret::from_bytes(secret.to_vec()),
    )?)
}

/// The sealed replies of one request, for the core to store with its state change.
pub(super) struct SealedReplies<'a>(pub(super) &'a Retransmission);

impl RegistrationReplies for SealedReplies<'_> {
    fn started(&self, started: &Started) -> Reply {
        self.0.ok(&started_to_pb(started))
    }

    fn keys_submitted(&self, challenges: &[ProofChallenge]) -> Reply {
        self.0.ok(&challenges_to_pb(challenges))
    }

    fn proof_failed(&self, failed: &[KeyType], attempts_left: u32) -> Reply {
        self.0.ok(&proof_failed_to_pb(failed, attempts_left))
    }

    fn completed(&self, completed: &Completed) -> Reply {
        self.0.ok(&completed_to_pb(completed))
    }
}

pub(super) fn started_to_pb(s: &Started) -> pb::StartRegistrationResponse {
    pb::StartRegistrationResponse {
        registration_id: s.registration_id.clone(),
        registration_secret: s.registration_secret.expose_secret().to_vec(),
        registration_code: s.registration_code.clone(),
        expires_at_unix: s.expires_at,
        matching_code: s.matching_code.clone(),
    }
}

pub(super) fn status_to_pb(s: &Status) -> pb::RegistrationStatus {
    let state = match s.phase {
        Phase::PendingApproval => pb::RegistrationState::PendingApproval,
        Phase::Approved => pb::RegistrationState::Approved,
        Phase::KeysSubmitted => pb::RegistrationState::KeysSubmitted,
        Phase::Completed => pb::RegistrationState::Completed,
        Phase::Failed => pb::RegistrationState::Failed,
        Phase::Expired => pb::RegistrationState::Expired,
    };
    pb::RegistrationStatus {
        state: state as i32,
        identity: s.identity.as_ref().map(convert::identity_to_pb),
        expires_at_unix: s.expires_at,
    }
}

/// The submitted keys; a key type other than AUTH or SIGN is refused.
pub(super) fn key_submissions(keys: &[pb::KeySubmission]) -> Result<Vec<KeySubmission>, ApiError> {
    keys.iter()
        .map(|k| {
            Ok(KeySubmission {
                key_type: convert::key_type(k.key_type)?,
                client_modulus: k.client_modulus.clone(),
                server_share_envelope: k.server_share_envelope.clone(),
            })
        })
        .collect()
}

pub(super) fn challenges_to_pb(challenges: &[ProofChallenge]) -> pb::SubmitKeysResponse {
    pb::SubmitKeysResponse {
        challenges: challenges
            .iter()
            .map(|c| pb::KeyProofChallenge {
                key_type: convert::key_type_to_pb(c.key_type),
                composite_modulus: c.composite_modulus.clone(),
                server_modulus: c.server_modulus.clone(),
                signing_request: Some(pb::SigningRequest {
                    key_type: convert::key_type_to_pb(c.request.key_type),
                    scheme: convert::scheme_to_pb(c.request.scheme),
                    hash: convert::hash_to_pb(c.request.hash),
                    digest: c.request.digest.clone(),
                    encoded_message: c.request.encoded_message.clone(),
                }),
            })
            .collect(),
    }
}

/// The proof shares; a key type other than AUTH or SIGN is refused.
pub(super) fn proof_shares(shares: &[pb::ProofShare]) -> Result<Vec<ProofShare>, ApiError> {
    shares
        .iter()
        .map(|s| {
            Ok(ProofShare {
                key_type: convert::key_type(s.key_type)?,
                share_envelope: s.share_envelope.clone(),
            })
        })
        .collect()
}

pub(super) fn completion_to_pb(outcome: &CompletionOutcome) -> pb::CompleteRegistrationResponse {
    match outcome {
        CompletionOutcome::Completed(completed) => completed_to_pb(completed),
        CompletionOutcome::ProofFailed {
            failed,
            attempts_left,
        } => proof_failed_to_pb(failed, *attempts_left),
    }
}

fn proof_failed_to_pb(failed: &[KeyType], attempts_left: u32) -> pb::CompleteRegistrationResponse {
    pb::CompleteRegistrationResponse {
        failed: failed.iter().map(|&k| convert::key_type_to_pb(k)).collect(),
        attempts_left,
        ..Default::default()
    }
}

fn completed_to_pb(c: &Completed) -> pb::CompleteRegistrationResponse {
    let a = &c.account;
    pb::CompleteRegistrationResponse {
        account: Some(pb::AccountInfo {
            account_id: a.account_id.clone(),
            document_number: a.document_number.clone(),
            identity: Some(convert::identity_to_pb(&a.identity)),
            expires_at_unix: a.expires_at,
            key_pairs: a
                .key_pairs
                .iter()
                .map(|k| pb::KeyPairInfo {
                    key_type: convert::key_type_to_pb(k.key_type),
                    composite_modulus: k.composite_modulus.clone(),
                    public_exponent: crate::signing::E,
                    public_key_der: k.public_key_der.clone(),
                    certificate_der: k.certificate_der.clone(),
                })
                .collect(),
        }),
        device_secret: c.device_secret.expose_secret().to_vec(),
        clone_tokens: c
            .clone_tokens
            .iter()
            .map(|(k, t)| pb::CloneToken {
                key_type: convert::key_type_to_pb(*k),
                token: t.as_bytes().to_vec(),
            })
            .collect(),
        failed: Vec::new(),
        attempts_left: 0,
    }
}

impl From<EnvelopeError> for ApiError {
    fn from(e: EnvelopeError) -> Self {
        if e.is_hsm_unavailable() {
            Self::Unavailable(e.to_string())
        } else {
            Self::InvalidArgument(e.to_string())
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        use RegisterError as E;
        match e {
            E::UnknownRegistration => Self::Unauthenticated(e.to_string()),
            E::Expired | E::NotAwaitingKeys | E::NotAwaitingProof => {
                Self::FailedPrecondition(e.to_string())
            }
            E::DuplicateKeyType
            | E::KeySet
            | E::ProofSet
            | E::ClientModulus { .. }
            | E::ServerShareSize
            | E::ProofShareSize
            | E::Identity(_) => Self::InvalidArgument(e.to_string()),
            E::Envelope(e) => e.into(),
            E::Store(e) => e.into(),
            E::Hsm(e) => e.into(),
            E::Signing(e) => e.into(),
            E::Internal(detail) => Self::Internal(detail),
        }
    }
}
