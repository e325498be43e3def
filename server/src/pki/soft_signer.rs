//! Tests only: a CA key in software (RSA-2048, sha384WithRSAEncryption) behind the
//! [`CaSigner`] seam the HSM's keys use, for unit tests of the encoders.

use der::Decode;
use der::asn1::Any;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::{CaSigner, PkiError, oids};

/// A software CA key.
pub(crate) struct Soft(pub PKey<Private>);

/// A new RSA-2048 key (OpenSSL).
pub(crate) fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
}

impl CaSigner for Soft {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oids::SHA384_WITH_RSA,
            parameters: Some(Any::null()),
        }
    }
    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned::from_der(&self.0.public_key_to_der().unwrap()).unwrap()
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut s = openssl::sign::Signer::new(MessageDigest::sha384(), &self.0).unwrap();
        Ok(s.sign_oneshot_to_vec(data).unwrap())
    }
}
