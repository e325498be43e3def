//! The names the `transactions` table stores for hash algorithms and signature schemes.
//! They are a storage format: existing databases hold them, so they never change.

use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme};

use super::{Result, StoreError};

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
