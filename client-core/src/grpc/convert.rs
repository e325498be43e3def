//! Protobuf ⇄ the protocol's own types ([`crate::protocol::messages`]). Only conversion:
//! a wire value this device does not know (an unknown enum number, a missing message) is
//! refused here; every decision about the values is the protocol's.

use tandem_proto::v1 as pb;

use super::{ClientError, Result};
use crate::encoding::{HashAlgorithm, SignatureScheme};
use crate::protocol::messages::{
    AccountInfo, CompleteRegistrationReply, ConfirmAnswer, ConfirmMessage, ConfirmOutcome,
    Identity, PendingTransaction, ProofChallenge, RpApiContext, RpFlowType, RpSessionType,
    RpSignatureProtocol, SameDeviceCallback, SignatureRequest, StartRegistrationReply,
};
use crate::state::DeviceState;
use crate::types::{CloneToken, KeyType};

fn unexpected(what: &str) -> ClientError {
    ClientError::Protocol(what.to_owned())
}

pub(super) fn key_type_to_pb(k: KeyType) -> i32 {
    match k {
        KeyType::Auth => pb::KeyType::Auth as i32,
        KeyType::Sign => pb::KeyType::Sign as i32,
    }
}

pub(super) fn key_type_from_pb(v: i32) -> Result<KeyType> {
    match pb::KeyType::try_from(v) {
        Ok(pb::KeyType::Auth) => Ok(KeyType::Auth),
        Ok(pb::KeyType::Sign) => Ok(KeyType::Sign),
        _ => Err(unexpected("unknown key type")),
    }
}

fn scheme_from_pb(v: i32) -> Result<SignatureScheme> {
    match pb::SignatureScheme::try_from(v) {
        Ok(pb::SignatureScheme::Pkcs1V15) => Ok(SignatureScheme::Pkcs1v15),
        Ok(pb::SignatureScheme::Pss) => Ok(SignatureScheme::Pss),
        _ => Err(unexpected("unknown signature scheme")),
    }
}

fn scheme_to_pb(s: SignatureScheme) -> i32 {
    match s {
        SignatureScheme::Pkcs1v15 => pb::SignatureScheme::Pkcs1V15 as i32,
        SignatureScheme::Pss => pb::SignatureScheme::Pss as i32,
    }
}

fn hash_from_pb(v: i32) -> Result<HashAlgorithm> {
    match pb::HashAlgorithm::try_from(v) {
        Ok(pb::HashAlgorithm::Sha256) => Ok(HashAlgorithm::Sha256),
        Ok(pb::HashAlgorithm::Sha384) => Ok(HashAlgorithm::Sha384),
        Ok(pb::HashAlgorithm::Sha512) => Ok(HashAlgorithm::Sha512),
        Ok(pb::HashAlgorithm::Sha3256) => Ok(HashAlgorithm::Sha3_256),
        Ok(pb::HashAlgorithm::Sha3384) => Ok(HashAlgorithm::Sha3_384),
        Ok(pb::HashAlgorithm::Sha3512) => Ok(HashAlgorithm::Sha3_512),
        _ => Err(unexpected("unknown hash algorithm")),
    }
}

fn hash_to_pb(h: HashAlgorithm) -> i32 {
    (match h {
        HashAlgorithm::Sha256 => pb::HashAlgorithm::Sha256,
        HashAlgorithm::Sha384 => pb::HashAlgorithm::Sha384,
        HashAlgorithm::Sha512 => pb::HashAlgorithm::Sha512,
        HashAlgorithm::Sha3_256 => pb::HashAlgorithm::Sha3256,
        HashAlgorithm::Sha3_384 => pb::HashAlgorithm::Sha3384,
        HashAlgorithm::Sha3_512 => pb::HashAlgorithm::Sha3512,
    }) as i32
}

pub(super) fn signature_request_from_pb(r: &pb::SigningRequest) -> Result<SignatureRequest> {
    Ok(SignatureRequest {
        key_type: key_type_from_pb(r.key_type)?,
        scheme: scheme_from_pb(r.scheme)?,
        hash: hash_from_pb(r.hash)?,
        digest: r.digest.clone(),
        encoded_message: r.encoded_message.clone(),
    })
}

pub(super) fn signature_request_to_pb(r: &SignatureRequest) -> pb::SigningRequest {
    pb::SigningRequest {
        key_type: key_type_to_pb(r.key_type),
        scheme: scheme_to_pb(r.scheme),
        hash: hash_to_pb(r.hash),
        digest: r.digest.clone(),
        encoded_message: r.encoded_message.clone(),
    }
}

pub(super) fn start_reply_from_pb(r: pb::StartRegistrationResponse) -> StartRegistrationReply {
    StartRegistrationReply {
        registration_id: r.registration_id,
        registration_secret: r.registration_secret,
        registration_code: r.registration_code,
        expires_at_unix: r.expires_at_unix,
        matching_code: r.matching_code,
    }
}

pub(super) fn challenges_from_pb(r: &pb::SubmitKeysResponse) -> Result<Vec<ProofChallenge>> {
    r.challenges
        .iter()
        .filter_map(|c| {
            // A challenge of a key type this device does not know answers nothing it asked.
            let key_type = key_type_from_pb(c.key_type).ok()?;
            Some((key_type, c))
        })
        .map(|(key_type, c)| {
            let request = c
                .signing_request
                .as_ref()
                .ok_or_else(|| unexpected("challenge without request"))?;
            Ok(ProofChallenge {
                key_type,
                composite_modulus: c.composite_modulus.clone(),
                server_modulus: c.server_modulus.clone(),
                request: signature_request_from_pb(request)?,
            })
        })
        .collect()
}

pub(super) fn complete_reply_from_pb(
    r: pb::CompleteRegistrationResponse,
) -> CompleteRegistrationReply {
    // Entries of key types this device does not know are dropped: it asked for none.
    let known = |k: i32| key_type_from_pb(k).ok();
    CompleteRegistrationReply {
        account: r.account.map(|a| {
            let identity = a.identity.unwrap_or_default();
            AccountInfo {
                account_id: a.account_id,
                document_number: a.document_number,
                identity: Identity {
                    given_name: identity.given_name,
                    surname: identity.surname,
                    country: identity.country,
                    national_id: identity.national_id,
                },
                expires_at_unix: a.expires_at_unix,
                certificates: a
                    .key_pairs
                    .into_iter()
                    .filter_map(|k| Some((known(k.key_type)?, k.certificate_der)))
                    .collect(),
            }
        }),
        device_secret: r.device_secret,
        clone_tokens: r
            .clone_tokens
            .into_iter()
            .filter_map(|t| Some((known(t.key_type)?, t.token)))
            .collect(),
        failed: r.failed.into_iter().filter_map(known).collect(),
        attempts_left: r.attempts_left,
    }
}

fn rp_context_from_pb(c: &pb::RpApiContext) -> Result<RpApiContext> {
    let signature_protocol = match c.signature_protocol.as_str() {
        "" => None,
        name => Some(RpSignatureProtocol::from_name(name).ok_or_else(|| {
            ClientError::Protocol(format!("unknown signature protocol {name:?}"))
        })?),
    };
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(RpApiContext {
        session_type: RpSessionType::from_name(&c.session_type)
            .ok_or_else(|| unexpected("unknown session type"))?,
        signature_protocol,
        scheme_name: c.scheme_name.clone(),
        server_random: c.server_random.clone(),
        rp_challenge: c.rp_challenge.clone(),
        interactions: c.interactions.clone(),
        initial_callback_url: non_empty(&c.initial_callback_url),
        flow_type: RpFlowType::from_name(&c.flow_type)
            .ok_or_else(|| unexpected("unknown flow type"))?,
        signature_algorithm: c.signature_algorithm.clone(),
        hash_algorithm: c.hash_algorithm.clone(),
        verification_code: c.verification_code.clone(),
        linked_session_id: non_empty(&c.linked_session_id),
        callback: c.callback.as_ref().map(callback_from_pb),
    })
}

pub(super) fn callback_from_pb(c: &pb::SameDeviceCallback) -> SameDeviceCallback {
    SameDeviceCallback {
        initial_callback_url: c.initial_callback_url.clone(),
        session_secret_digest: c.session_secret_digest.clone(),
    }
}

pub(super) fn pending_from_pb(t: &pb::PendingTransaction) -> Result<PendingTransaction> {
    let request = t
        .signing_request
        .as_ref()
        .ok_or_else(|| unexpected("transaction without request"))?;
    Ok(PendingTransaction {
        transaction_id: t.transaction_id.clone(),
        relying_party_name: t.relying_party_name.clone(),
        display_text: t.display_text.clone(),
        request: signature_request_from_pb(request)?,
        vc_choices: t.vc_choices.clone(),
        rp_api: t.rp_api.as_ref().map(rp_context_from_pb).transpose()?,
    })
}

pub(super) fn credential(state: &DeviceState) -> Option<pb::DeviceCredential> {
    Some(pb::DeviceCredential {
        account_id: state.account_id.clone(),
        device_secret: state.device_secret.expose_secret().to_vec(),
    })
}

pub(super) fn confirm_to_pb(state: &DeviceState, m: &ConfirmMessage) -> pb::ConfirmRequest {
    let mut request = pb::ConfirmRequest {
        credential: credential(state),
        transaction_id: m.transaction_id.clone(),
        nonce: m.nonce.as_bytes().to_vec(),
        ..Default::default()
    };
    if let ConfirmAnswer::Signed(s) = &m.answer {
        request.chosen_vc = s.chosen_vc.clone().unwrap_or_default();
        request.share_envelope = s.share_envelope.clone();
        request.clone_token = s.clone_token.as_bytes().to_vec();
        request.interaction_type_used = s.interaction_type_used.clone().unwrap_or_default();
        if let Some(a) = &s.acsp_v2 {
            request.user_challenge = a.user_challenge.clone();
            request.encoded_message = a.encoded_message.clone();
        }
    }
    request
}

pub(super) fn outcome_from_pb(v: i32) -> ConfirmOutcome {
    match pb::ConfirmOutcome::try_from(v) {
        Ok(pb::ConfirmOutcome::Accepted) => ConfirmOutcome::Accepted,
        Ok(pb::ConfirmOutcome::WrongPin) => ConfirmOutcome::WrongPin,
        Ok(pb::ConfirmOutcome::Locked) => ConfirmOutcome::Locked,
        Ok(pb::ConfirmOutcome::Disabled) => ConfirmOutcome::Disabled,
        Ok(pb::ConfirmOutcome::WrongVc) => ConfirmOutcome::WrongVc,
        Ok(pb::ConfirmOutcome::CloneDetected) => ConfirmOutcome::CloneDetected,
        Ok(pb::ConfirmOutcome::TransactionClosed) => ConfirmOutcome::TransactionClosed,
        Ok(pb::ConfirmOutcome::Unspecified) | Err(_) => ConfirmOutcome::Unknown,
    }
}

/// The next clone token of an answer (`None` when the server issued none); a token that is
/// not 32 bytes is refused.
pub(super) fn next_clone_token(bytes: &[u8]) -> Result<Option<CloneToken>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    Ok(Some(CloneToken::from_slice(bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hash and scheme survives the round trip; unknown numbers are refused.
    #[test]
    fn signature_requests_round_trip_and_unknowns_are_refused() {
        for h in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
            HashAlgorithm::Sha3_256,
            HashAlgorithm::Sha3_384,
            HashAlgorithm::Sha3_512,
        ] {
            for s in [SignatureScheme::Pkcs1v15, SignatureScheme::Pss] {
                let r = SignatureRequest {
                    key_type: KeyType::Sign,
                    scheme: s,
                    hash: h,
                    digest: vec![1, 2],
                    encoded_message: vec![3],
                };
                assert_eq!(
                    signature_request_from_pb(&signature_request_to_pb(&r)).unwrap(),
                    r
                );
            }
        }
        let good = pb::SigningRequest {
            key_type: 1,
            scheme: 1,
            hash: 1,
            ..Default::default()
        };
        signature_request_from_pb(&good).unwrap();
        for bad in [
            pb::SigningRequest {
                key_type: 0,
                ..good.clone()
            },
            pb::SigningRequest {
                scheme: 9,
                ..good.clone()
            },
            pb::SigningRequest {
                hash: 0,
                ..good.clone()
            },
        ] {
            assert!(signature_request_from_pb(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rp_contexts_with_unknown_names_are_refused() {
        let good = pb::RpApiContext {
            session_type: "auth".into(),
            signature_protocol: "ACSP_V2".into(),
            flow_type: "Web2App".into(),
            initial_callback_url: "https://rp.example/cb".into(),
            ..Default::default()
        };
        let c = rp_context_from_pb(&good).unwrap();
        assert_eq!(c.flow_type, RpFlowType::Web2App);
        assert_eq!(c.signature_protocol, Some(RpSignatureProtocol::AcspV2));
        assert_eq!(
            c.initial_callback_url.as_deref(),
            Some("https://rp.example/cb")
        );
        assert_eq!(c.linked_session_id, None);
        let cert = pb::RpApiContext {
            session_type: "cert".into(),
            signature_protocol: String::new(),
            ..good.clone()
        };
        assert_eq!(rp_context_from_pb(&cert).unwrap().signature_protocol, None);
        for bad in [
            pb::RpApiContext {
                session_type: "login".into(),
                ..good.clone()
            },
            pb::RpApiContext {
                signature_protocol: "ACSP_V1".into(),
                ..good.clone()
            },
            pb::RpApiContext {
                flow_type: "web2app".into(),
                ..good.clone()
            },
        ] {
            assert!(rp_context_from_pb(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outcomes_and_clone_tokens() {
        assert_eq!(
            outcome_from_pb(pb::ConfirmOutcome::Accepted as i32),
            ConfirmOutcome::Accepted
        );
        assert_eq!(
            outcome_from_pb(pb::ConfirmOutcome::WrongVc as i32),
            ConfirmOutcome::WrongVc
        );
        assert_eq!(outcome_from_pb(0), ConfirmOutcome::Unknown);
        assert_eq!(outcome_from_pb(99), ConfirmOutcome::Unknown);
        assert!(next_clone_token(&[]).unwrap().is_none());
        assert!(next_clone_token(&[7; 32]).unwrap().is_some());
        assert!(next_clone_token(&[7; 31]).is_err());
    }
}
