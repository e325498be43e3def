//! The names the store writes for enumerated values: key types, registration states, why a
//! key pair was disabled, end results, hash algorithms and signature schemes. They are a
//! storage format shared by every backend: existing databases hold them, so they never change.

use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};
use tandem_client_core::types::KeyType;

use super::{DisableReason, EndResult, RegistrationState, Result, StoreError};

/// The stored name of a key type (`AUTH`, `SIGN`).
pub fn key_type_name(k: KeyType) -> &'static str {
    match k {
        KeyType::Auth => "AUTH",
        KeyType::Sign => "SIGN",
    }
}

/// The key type of a stored name.
pub fn key_type_from_name(s: &str) -> Result<KeyType> {
    match s {
        "AUTH" => Ok(KeyType::Auth),
        "SIGN" => Ok(KeyType::Sign),
        other => Err(StoreError::Corrupt(format!("unknown key type {other}"))),
    }
}

/// The stored name of a hash algorithm (`transactions.hash`).
pub fn hash_name(h: HashAlgorithm) -> &'static str {
    match h {
        HashAlgorithm::Sha256 => "SHA256",
        HashAlgorithm::Sha384 => "SHA384",
        HashAlgorithm::Sha512 => "SHA512",
        HashAlgorithm::Sha3_256 => "SHA3_256",
        HashAlgorithm::Sha3_384 => "SHA3_384",
        HashAlgorithm::Sha3_512 => "SHA3_512",
    }
}

/// The hash algorithm of a stored name.
pub fn hash_from_name(s: &str) -> Result<HashAlgorithm> {
    HashAlgorithm::ALL
        .into_iter()
        .find(|&h| hash_name(h) == s)
        .ok_or_else(|| StoreError::Corrupt(format!("stored hash {s}")))
}

/// The stored name of a signature scheme (`transactions.scheme`).
pub fn scheme_name(s: SignatureScheme) -> &'static str {
    match s {
        SignatureScheme::Pkcs1v15 => "PKCS1_V15",
        SignatureScheme::Pss => "PSS",
    }
}

/// The signature scheme of a stored name.
pub fn scheme_from_name(s: &str) -> Result<SignatureScheme> {
    match s {
        "PKCS1_V15" => Ok(SignatureScheme::Pkcs1v15),
        "PSS" => Ok(SignatureScheme::Pss),
        other => Err(StoreError::Corrupt(format!("stored scheme {other}"))),
    }
}

impl RegistrationState {
    /// The stored name (`registrations.state`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "PENDING_APPROVAL",
            Self::Approved => "APPROVED",
            Self::KeysSubmitted => "KEYS_SUBMITTED",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    /// The registration state of a stored name.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "PENDING_APPROVAL" => Self::PendingApproval,
            "APPROVED" => Self::Approved,
            "KEYS_SUBMITTED" => Self::KeysSubmitted,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            other => return Err(StoreError::Corrupt(format!("registration state {other}"))),
        })
    }
}

impl DisableReason {
    /// The stored name (`key_pairs.disabled_reason`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::PinLockout => "PIN_LOCKOUT",
            Self::CloneDetected => "CLONE_DETECTED",
            Self::AccountDeleted => "ACCOUNT_DELETED",
            Self::Operator => "OPERATOR",
        }
    }
}

impl EndResult {
    /// The end result of a stored name.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "OK" => Self::Ok,
            "USER_REFUSED" => Self::UserRefused,
            "TIMEOUT" => Self::Timeout,
            "WRONG_VC" => Self::WrongVc,
            "DOCUMENT_UNUSABLE" => Self::DocumentUnusable,
            "SERVER_ERROR" => Self::ServerError,
            "USER_REFUSED_INTERACTION" => Self::UserRefusedInteraction,
            "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP" => {
                Self::RequiredInteractionNotSupportedByApp
            }
            "PROTOCOL_FAILURE" => Self::ProtocolFailure,
            "USER_REFUSED_CERT_CHOICE" => Self::UserRefusedCertChoice,
            "EXPECTED_LINKED_SESSION" => Self::ExpectedLinkedSession,
            other => return Err(StoreError::Corrupt(format!("end result {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored names are fixed: a change would strand existing databases.
    #[test]
    fn stored_names_are_fixed_and_round_trip() {
        let names: Vec<&str> = HashAlgorithm::ALL.into_iter().map(hash_name).collect();
        assert_eq!(
            names,
            [
                "SHA256", "SHA384", "SHA512", "SHA3_256", "SHA3_384", "SHA3_512"
            ]
        );
        for h in HashAlgorithm::ALL {
            assert_eq!(hash_from_name(hash_name(h)).unwrap(), h);
        }
        for s in [SignatureScheme::Pkcs1v15, SignatureScheme::Pss] {
            assert_eq!(scheme_from_name(scheme_name(s)).unwrap(), s);
        }
        assert!(hash_from_name("SHA3-256").is_err());
        assert!(scheme_from_name("pss").is_err());
    }
}
