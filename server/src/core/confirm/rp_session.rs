//! The REST (RP API v3) parts of a confirmation: the certificate choice, the interaction the
//! app went through, and the ACSP_V2 payload the app built. Nothing here writes to the store
//! or counts a PIN attempt; [`super::confirm`] acts on the answer.

use std::net::IpAddr;

use tandem_client_core::encoding::{self, HashAlgorithm, SignatureScheme};
use tandem_client_core::hazmat;
use tandem_rp::api::session::{self, SessionParams, TargetOutcome};
use tandem_rp::api::types::{self, FlowType, InteractionType, SignatureAlgorithm};
use tracing::info;

use super::{ConfirmError, DeviceAnswer};
use crate::store::{RpSession, Store, TxForAccount};

/// The client-core hash for an RP API hash (every one of the spec, SHA-2 and SHA-3).
pub(crate) fn core_hash(h: types::HashAlgorithm) -> HashAlgorithm {
    h.into()
}

/// PSS for `rsassa-pss`, PKCS#1 v1.5 for the `sha*WithRSAEncryption` names.
pub(crate) fn core_scheme(a: SignatureAlgorithm) -> SignatureScheme {
    match a {
        SignatureAlgorithm::RsassaPss => SignatureScheme::Pss,
        _ => SignatureScheme::Pkcs1v15,
    }
}

/// The stored parameters of a session.
pub(crate) fn params_of(s: &RpSession) -> Result<SessionParams, String> {
    SessionParams::parse(&s.params).map_err(|e| format!("session params: {e}"))
}

/// The device's address to save with a session: only when the relying party asked for it
/// (openapi.yml `RequestProperties`: "The IP address is saved to the RP session when
/// `person` reacts to the `RpRequest` with one of its mobile devices"; a relying party may
/// ask only with the operator's permission, checked at the start). Nothing is kept for a
/// session that did not ask. IPv4 addresses seen through an IPv6 socket are written as IPv4.
pub(crate) fn shared_device_ip(p: &SessionParams, device_ip: Option<IpAddr>) -> Option<String> {
    device_ip
        .filter(|_| p.share_ip)
        .map(|ip| ip.to_canonical().to_string())
}

/// How a confirmation of a REST session proceeds.
#[derive(Debug)]
pub(super) enum RpConfirm {
    /// Not a REST session: the gRPC path.
    Grpc,
    /// Certificate choice: no share; completes with this account's certificate. `outcome`
    /// is the app's answer to record with the completion, when there is something to add
    /// (the device's address, if the relying party asked for it).
    CertificateChoice { outcome: Option<String> },
    /// Judge the share against this `x` (the app's own for ACSP_V2). `outcome` is the
    /// app's answer (interaction used, user challenge) for the session's result: it is
    /// written with the signature, in the same database transaction, and read only for an
    /// OK result.
    Sign {
        x: Vec<u8>,
        vc_choice: bool,
        outcome: String,
    },
    /// The app's answer contradicts the session: end it with PROTOCOL_FAILURE.
    ProtocolFailure,
}

/// Checks the REST parts of a confirmation and returns the app's answer to be recorded with
/// the signature. `device_ip` (the address the app called from) is part of the answer when
/// the relying party asked for it; `scheme_name` goes into the ACSP_V2 payload.
pub(super) fn check(
    store: &dyn Store,
    scheme_name: &str,
    account_id: &str,
    t: &TxForAccount,
    answer: &DeviceAnswer<'_>,
    composite_modulus: &[u8],
    device_ip: Option<IpAddr>,
) -> Result<RpConfirm, ConfirmError> {
    let Some(s) = store.rp_session(&t.tx.id)? else {
        return Ok(RpConfirm::Grpc);
    };
    let p = params_of(&s).map_err(ConfirmError::Internal)?;
    let device_ip_address = shared_device_ip(&p, device_ip);
    if s.session_type == session::CERT {
        let outcome = match device_ip_address {
            Some(ip) => {
                let mut o =
                    TargetOutcome::parse(store.target_outcome(&t.tx.id, account_id)?.as_deref());
                o.device_ip_address = Some(ip);
                Some(o.to_json())
            }
            None => None,
        };
        return Ok(RpConfirm::CertificateChoice { outcome });
    }
    let used: InteractionType = serde_json::from_value(serde_json::Value::String(
        answer.interaction_type_used.to_owned(),
    ))
    .map_err(|_| ConfirmError::UnknownInteraction)?;
    let flow = match s.flow.as_str() {
        session::FLOW_DEVICE_LINK => types::InteractionFlow::DeviceLink,
        session::FLOW_LINKED => types::InteractionFlow::LinkedNotification,
        _ => types::InteractionFlow::Notification,
    };
    let list = types::decode_interactions(&p.interactions, flow)
        .map_err(|e| ConfirmError::Internal(format!("stored interactions: {e}")))?;
    if !list.iter().any(|i| i.interaction_type() == used) {
        return Err(ConfirmError::InteractionNotAsked);
    }
    let mut outcome = TargetOutcome::parse(store.target_outcome(&t.tx.id, account_id)?.as_deref());
    let flow_type = *outcome.flow_type.get_or_insert(FlowType::Notification);
    outcome.interaction_type_used = Some(used);
    if device_ip_address.is_some() {
        outcome.device_ip_address = device_ip_address;
    }
    let vc_choice = used == InteractionType::ConfirmationMessageAndVerificationCodeChoice;
    let x = if p.signature_protocol.as_deref() == Some("ACSP_V2") {
        let uc = answer.user_challenge;
        if uc.len() != 43
            || !uc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfirmError::UserChallenge);
        }
        outcome.user_challenge = Some(uc.to_owned());
        let (Some(alg), Some(hash)) = (p.signature_algorithm, p.hash_algorithm) else {
            return Err(ConfirmError::Internal(
                "ACSP_V2 session without algorithm".into(),
            ));
        };
        let callback = matches!(flow_type, FlowType::Web2App | FlowType::App2App)
            .then_some(p.initial_callback_url.as_deref())
            .flatten();
        let digest = tandem_rp::api::acsp::acsp_v2_digest(
            &tandem_rp::api::acsp::AcspV2Fields {
                scheme_name,
                server_random: p.server_random.as_deref().unwrap_or_default(),
                rp_challenge: p.rp_challenge.as_deref().unwrap_or_default(),
                user_challenge: uc,
                relying_party_name: &p.relying_party_name,
                brokered_rp_name: None,
                interactions: &p.interactions,
                interaction_type_used: used,
                initial_callback_url: callback,
                flow_type,
            },
            hash,
        );
        let bits = hazmat::bit_length(composite_modulus);
        if encoding::verify_encoding(
            core_scheme(alg),
            core_hash(hash),
            &digest,
            answer.encoded_message,
            bits,
        )
        .is_err()
        {
            info!(session_id = %t.tx.id, "ACSP_V2 message does not encode the derived digest");
            return Ok(RpConfirm::ProtocolFailure);
        }
        answer.encoded_message.to_vec()
    } else {
        t.encoded_message.clone()
    };
    Ok(RpConfirm::Sign {
        x,
        vc_choice,
        outcome: outcome.to_json(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_rp::api::level::CertificateLevel;

    fn params(share_ip: bool) -> SessionParams {
        SessionParams {
            signature_protocol: None,
            rp_challenge: None,
            server_random: None,
            digest: None,
            signature_algorithm: None,
            hash_algorithm: None,
            relying_party_name: "Bank".into(),
            interactions: String::new(),
            initial_callback_url: None,
            certificate_level: CertificateLevel::Qualified,
            share_ip,
            ignored_properties: Vec::new(),
            linked_session_id: None,
        }
    }

    #[test]
    fn the_device_address_is_kept_only_for_a_session_that_asked_for_it() {
        let v4: IpAddr = "203.0.113.34".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.34".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(
            shared_device_ip(&params(true), Some(v4)).as_deref(),
            Some("203.0.113.34")
        );
        // An IPv4 client seen through a dual-stack socket is reported as IPv4.
        assert_eq!(
            shared_device_ip(&params(true), Some(mapped)).as_deref(),
            Some("203.0.113.34")
        );
        assert_eq!(
            shared_device_ip(&params(true), Some(v6)).as_deref(),
            Some("2001:db8::7")
        );
        assert_eq!(shared_device_ip(&params(true), None), None);
        assert_eq!(shared_device_ip(&params(false), Some(v4)), None);
    }
}
