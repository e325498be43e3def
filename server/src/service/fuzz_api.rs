//! Entry points for the coverage-guided fuzz targets in `fuzz/` (docs/FUZZING.md). Not an
//! API: a request message of the gRPC services is decoded from untrusted bytes with prost, as
//! tonic does, and the handlers' own conversions to domain values run on it, in the order
//! the handlers run them, up to the first database or HSM access.

use prost::Message;
use tandem_client_core::envelope::EnvelopeParts;
use tandem_proto::v1 as pb;

use super::ApiError;
use super::convert::{self, exact, ident};
use super::rp::{StartTarget, check_start, parse_person_id};
use crate::config::Timeouts;

/// The request messages the services accept, in the order [`request`] numbers them.
pub const MESSAGES: [&str; 16] = [
    "StartRegistrationRequest",
    "GetRegistrationRequest",
    "SubmitKeysRequest",
    "CompleteRegistrationRequest",
    "ListPendingRequest",
    "ConfirmRequest",
    "ClaimDeviceLinkRequest",
    "RefuseRequest",
    "GetKeyStateRequest",
    "RefreshCloneTokenRequest",
    "GetAccountRequest",
    "DeleteAccountRequest",
    "StartTransactionRequest",
    "GetTransactionStatusRequest",
    "GetServerInfoRequest",
    "PersonId",
];

/// Decodes message `which % MESSAGES.len()` from `bytes` and runs the handler's checks.
/// `Ok` means the request got past every check that needs no lookup.
///
/// # Panics
/// When a property does not hold: a decoded message must re-encode to bytes that decode to
/// the same message and encode again to the same bytes (prost's canonical form), and
/// accepted values must have the shape the checks promise.
pub fn request(which: usize, bytes: &[u8]) -> Result<(), ApiError> {
    match which % MESSAGES.len() {
        0 => {
            let r: pb::StartRegistrationRequest = decode(bytes)?;
            exact("device_id", &r.device_id, 16)?;
            exact("device_challenge", &r.device_challenge, 32)?;
        }
        1 => {
            let r: pb::GetRegistrationRequest = decode(bytes)?;
            ident("registration_id", &r.registration_id)?;
        }
        2 => {
            let r: pb::SubmitKeysRequest = decode(bytes)?;
            ident("registration_id", &r.registration_id)?;
            let mut seen = Vec::new();
            for k in &r.keys {
                let kt = convert::key_type(k.key_type)?;
                if seen.contains(&kt) {
                    return Err(ApiError::InvalidArgument("duplicate key type".into()));
                }
                seen.push(kt);
                envelope(&k.server_share_envelope)?;
            }
        }
        3 => {
            let r: pb::CompleteRegistrationRequest = decode(bytes)?;
            ident("registration_id", &r.registration_id)?;
            for s in &r.shares {
                convert::key_type(s.key_type)?;
                envelope(&s.share_envelope)?;
            }
        }
        4 => credential(decode::<pb::ListPendingRequest>(bytes)?.credential.as_ref())?,
        5 => {
            let r: pb::ConfirmRequest = decode(bytes)?;
            credential(r.credential.as_ref())?;
            ident("transaction_id", &r.transaction_id)?;
            envelope(&r.share_envelope)?;
        }
        6 => {
            let r: pb::ClaimDeviceLinkRequest = decode(bytes)?;
            credential(r.credential.as_ref())?;
            tandem_rp::api::device_link::ParsedLink::parse(&r.device_link)
                .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        }
        7 => {
            let r: pb::RefuseRequest = decode(bytes)?;
            credential(r.credential.as_ref())?;
            ident("transaction_id", &r.transaction_id)?;
            pb::RefuseReason::try_from(r.reason)
                .map_err(|_| ApiError::InvalidArgument("unknown refuse reason".into()))?;
        }
        8 => credential(decode::<pb::GetKeyStateRequest>(bytes)?.credential.as_ref())?,
        9 => {
            let r: pb::RefreshCloneTokenRequest = decode(bytes)?;
            convert::key_type(r.key_type)?;
            credential(r.credential.as_ref())?;
            exact("clone_token", &r.clone_token, 32)?;
        }
        10 => credential(decode::<pb::GetAccountRequest>(bytes)?.credential.as_ref())?,
        11 => credential(
            decode::<pb::DeleteAccountRequest>(bytes)?
                .credential
                .as_ref(),
        )?,
        12 => {
            let r: pb::StartTransactionRequest = decode(bytes)?;
            let timeouts = Timeouts::default();
            let c = check_start(&r, &timeouts)?;
            assert_eq!(r.digest.len(), c.hash.output_len());
            assert!(c.timeout > 0 && c.timeout <= timeouts.max_transaction_seconds);
            match c.target {
                StartTarget::Document(d) => assert!(!d.is_empty() && d.len() <= 64),
                StartTarget::Person {
                    country,
                    national_id,
                } => {
                    assert_eq!(country.len(), 2);
                    assert!(!national_id.is_empty() && national_id.len() <= 32);
                }
            }
            // The hash and scheme are stored by name and read back for the status.
            assert_eq!(
                crate::store::names::hash_from_name(crate::store::names::hash_name(c.hash)).ok(),
                Some(c.hash)
            );
            assert_eq!(
                crate::store::names::scheme_from_name(crate::store::names::scheme_name(c.scheme))
                    .ok(),
                Some(c.scheme)
            );
        }
        13 => {
            let r: pb::GetTransactionStatusRequest = decode(bytes)?;
            ident("transaction_id", &r.transaction_id)?;
        }
        14 => {
            let _: pb::GetServerInfoRequest = decode(bytes)?;
        }
        _ => {
            // The person id of a start request, on its own (the string is what varies).
            let s = String::from_utf8_lossy(bytes);
            let (cc, id) = parse_person_id(&s)?;
            assert_eq!(format!("PNO{cc}-{id}"), s, "person id does not read back");
        }
    }
    Ok(())
}

/// prost's decoding (what tonic runs on a request body) and the canonical-form round trip.
fn decode<M: Message + Default + PartialEq>(bytes: &[u8]) -> Result<M, ApiError> {
    let m = M::decode(bytes).map_err(|_| ApiError::InvalidArgument("not decodable".into()))?;
    let canonical = m.encode_to_vec();
    let again = M::decode(canonical.as_slice())
        .unwrap_or_else(|e| panic!("re-encoded message does not decode: {e}"));
    assert!(again == m, "re-encoded message decodes differently");
    assert_eq!(
        again.encode_to_vec(),
        canonical,
        "encoding is not canonical"
    );
    Ok(m)
}

/// The device credential's form, as `authenticate` checks it before the lookup.
fn credential(cred: Option<&pb::DeviceCredential>) -> Result<(), ApiError> {
    let cred = cred.ok_or_else(|| ApiError::Unauthenticated("device credential missing".into()))?;
    ident("account_id", &cred.account_id)
        .map_err(|_| ApiError::Unauthenticated("unknown device".into()))?;
    Ok(())
}

/// An envelope field as the handlers parse it before the HSM opens it.
fn envelope(bytes: &[u8]) -> Result<(), ApiError> {
    let parts = EnvelopeParts::parse(bytes)
        .map_err(|_| ApiError::InvalidArgument("envelope is malformed".into()))?;
    assert!(parts.ciphertext.len() >= 16 && parts.ciphertext.len() < bytes.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_transaction_checks() {
        let ok = pb::StartTransactionRequest {
            relying_party_name: "Bank".into(),
            target: Some(pb::start_transaction_request::Target::PersonId(
                "PNOEE-30303039914".into(),
            )),
            hash: pb::HashAlgorithm::Sha256 as i32,
            digest: vec![0; 32],
            scheme: pb::SignatureScheme::Pss as i32,
            ..Default::default()
        };
        assert!(request(12, &ok.encode_to_vec()).is_ok());
        let short = pb::StartTransactionRequest {
            digest: vec![0; 31],
            ..ok.clone()
        };
        assert!(request(12, &short.encode_to_vec()).is_err());
        let no_target = pb::StartTransactionRequest {
            target: None,
            ..ok.clone()
        };
        assert!(request(12, &no_target.encode_to_vec()).is_err());
        let too_long = pb::StartTransactionRequest {
            timeout_seconds: Timeouts::default().max_transaction_seconds + 1,
            ..ok
        };
        assert!(request(12, &too_long.encode_to_vec()).is_err());
    }

    #[test]
    fn undecodable_and_malformed_requests_are_refused() {
        // A truncated length-delimited field.
        assert!(request(0, &[0x0a, 0x10, 1]).is_err());
        let r = pb::RefreshCloneTokenRequest {
            credential: Some(pb::DeviceCredential {
                account_id: "acc-1".into(),
                device_secret: vec![0; 32],
            }),
            key_type: pb::KeyType::Sign as i32,
            clone_token: vec![0; 31],
            nonce: vec![0; 16],
        };
        assert!(request(9, &r.encode_to_vec()).is_err());
        assert!(
            request(
                9,
                &pb::RefreshCloneTokenRequest {
                    clone_token: vec![0; 32],
                    ..r
                }
                .encode_to_vec()
            )
            .is_ok()
        );
    }
}
