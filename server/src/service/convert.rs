//! Wire ↔ domain conversions. The rest of the server never sees raw wire enums.

use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;

use super::ApiError;
use crate::store::{self, KeyPair};

pub(crate) fn key_type(v: i32) -> Result<KeyType, ApiError> {
    match pb::KeyType::try_from(v) {
        Ok(pb::KeyType::Auth) => Ok(KeyType::Auth),
        Ok(pb::KeyType::Sign) => Ok(KeyType::Sign),
        _ => Err(ApiError::InvalidArgument(
            "key_type must be AUTH or SIGN".into(),
        )),
    }
}

pub(crate) fn key_type_to_pb(k: KeyType) -> i32 {
    match k {
        KeyType::Auth => pb::KeyType::Auth as i32,
        KeyType::Sign => pb::KeyType::Sign as i32,
    }
}

pub(crate) fn hash(v: i32) -> Result<HashAlgorithm, ApiError> {
    match pb::HashAlgorithm::try_from(v) {
        Ok(pb::HashAlgorithm::Sha256) => Ok(HashAlgorithm::Sha256),
        Ok(pb::HashAlgorithm::Sha384) => Ok(HashAlgorithm::Sha384),
        Ok(pb::HashAlgorithm::Sha512) => Ok(HashAlgorithm::Sha512),
        Ok(pb::HashAlgorithm::Sha3256) => Ok(HashAlgorithm::Sha3_256),
        Ok(pb::HashAlgorithm::Sha3384) => Ok(HashAlgorithm::Sha3_384),
        Ok(pb::HashAlgorithm::Sha3512) => Ok(HashAlgorithm::Sha3_512),
        _ => Err(ApiError::InvalidArgument(
            "hash must be SHA256, SHA384, SHA512, SHA3_256, SHA3_384 or SHA3_512".into(),
        )),
    }
}

pub(crate) fn hash_to_pb(h: HashAlgorithm) -> i32 {
    match h {
        HashAlgorithm::Sha256 => pb::HashAlgorithm::Sha256 as i32,
        HashAlgorithm::Sha384 => pb::HashAlgorithm::Sha384 as i32,
        HashAlgorithm::Sha512 => pb::HashAlgorithm::Sha512 as i32,
        HashAlgorithm::Sha3_256 => pb::HashAlgorithm::Sha3256 as i32,
        HashAlgorithm::Sha3_384 => pb::HashAlgorithm::Sha3384 as i32,
        HashAlgorithm::Sha3_512 => pb::HashAlgorithm::Sha3512 as i32,
    }
}

pub(crate) fn scheme(v: i32) -> Result<SignatureScheme, ApiError> {
    match pb::SignatureScheme::try_from(v) {
        Ok(pb::SignatureScheme::Pkcs1V15) => Ok(SignatureScheme::Pkcs1v15),
        Ok(pb::SignatureScheme::Pss) => Ok(SignatureScheme::Pss),
        _ => Err(ApiError::InvalidArgument(
            "scheme must be PKCS1_V15 or PSS".into(),
        )),
    }
}

pub(crate) fn scheme_to_pb(s: SignatureScheme) -> i32 {
    match s {
        SignatureScheme::Pkcs1v15 => pb::SignatureScheme::Pkcs1V15 as i32,
        SignatureScheme::Pss => pb::SignatureScheme::Pss as i32,
    }
}

pub(crate) fn identity_to_pb(i: &store::Identity) -> pb::Identity {
    pb::Identity {
        given_name: i.given_name.clone(),
        surname: i.surname.clone(),
        country: i.country.clone(),
        national_id: i.national_id.clone(),
    }
}

/// SubjectPublicKeyInfo (DER) of an RSA public key with a composite modulus.
pub(crate) fn public_key_der(modulus: &[u8]) -> Result<Vec<u8>, ApiError> {
    crate::pki::rsa_spki_der(modulus).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The newest certificate of a key pair (revoked or not: OCSP tells its status), DER.
pub(crate) fn certificate_of(certs: &[store::CertRecord], key_type: KeyType) -> Vec<u8> {
    certs
        .iter()
        .find(|c| c.key_type == key_type)
        .map(|c| c.der.clone())
        .unwrap_or_default()
}

pub(crate) fn key_pair_info(
    kp: &KeyPair,
    certs: &[store::CertRecord],
) -> Result<pb::KeyPairInfo, ApiError> {
    Ok(pb::KeyPairInfo {
        key_type: key_type_to_pb(kp.key_type),
        composite_modulus: kp.composite_modulus.clone(),
        public_exponent: crate::signing::E,
        public_key_der: public_key_der(&kp.composite_modulus)?,
        certificate_der: certificate_of(certs, kp.key_type),
    })
}

pub(crate) fn account_info(
    acc: &store::Account,
    kps: &[KeyPair],
    certs: &[store::CertRecord],
) -> Result<pb::AccountInfo, ApiError> {
    Ok(pb::AccountInfo {
        account_id: acc.id.clone(),
        document_number: acc.document_number.clone(),
        identity: Some(identity_to_pb(&acc.identity)),
        expires_at_unix: acc.expires_at,
        key_pairs: kps
            .iter()
            .map(|kp| key_pair_info(kp, certs))
            .collect::<Result<_, _>>()?,
    })
}

pub(crate) fn key_state(
    kp: &KeyPair,
    policy: &crate::lockout::LockoutPolicy,
    now: i64,
) -> pb::KeyPairState {
    key_state_to_pb(&crate::core::account::key_state(kp, policy, now))
}

/// A key pair's state as the device API carries it.
pub(crate) fn key_state_to_pb(st: &crate::core::account::KeyState) -> pb::KeyPairState {
    use crate::core::account::KeyStatus;
    let (status, locked_until_unix) = match st.status {
        KeyStatus::Active => (pb::KeyStatus::Active, 0),
        KeyStatus::Locked { until } => (pb::KeyStatus::Locked, until),
        KeyStatus::Disabled => (pb::KeyStatus::Disabled, 0),
    };
    pb::KeyPairState {
        key_type: key_type_to_pb(st.key_type),
        status: status as i32,
        locked_until_unix,
        consecutive_failures: st.consecutive_failures,
        attempts_before_lock: st.attempts_before_lock,
    }
}

pub(crate) fn end_result_to_pb(r: store::EndResult) -> i32 {
    use store::EndResult as E;
    (match r {
        E::Ok => pb::EndResult::Ok,
        E::UserRefused => pb::EndResult::UserRefused,
        E::Timeout => pb::EndResult::Timeout,
        E::WrongVc => pb::EndResult::WrongVc,
        E::DocumentUnusable => pb::EndResult::DocumentUnusable,
        E::ServerError | E::ProtocolFailure => pb::EndResult::ServerError,
        E::UserRefusedInteraction
        | E::RequiredInteractionNotSupportedByApp
        | E::UserRefusedCertChoice
        | E::ExpectedLinkedSession => pb::EndResult::UserRefused,
    }) as i32
}

/// Bytes field of an exact length.
pub(crate) fn exact<'a>(field: &str, bytes: &'a [u8], len: usize) -> Result<&'a [u8], ApiError> {
    if bytes.len() != len {
        return Err(ApiError::InvalidArgument(format!(
            "{field} must be {len} bytes, got {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// A non-empty identifier of bounded length.
pub(crate) fn ident<'a>(field: &str, s: &'a str) -> Result<&'a str, ApiError> {
    if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiError::InvalidArgument(format!(
            "{field} is missing or malformed"
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hash survives the wire (protobuf) unchanged (the stored names: store::names).
    #[test]
    fn hash_round_trips_through_the_wire() {
        for h in HashAlgorithm::ALL {
            assert!(matches!(hash(hash_to_pb(h)), Ok(x) if x == h), "{h:?}");
        }
        assert!(hash(pb::HashAlgorithm::Unspecified as i32).is_err());
        assert!(hash(99).is_err());
    }
}
