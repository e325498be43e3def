//! PKCS#10 certificate requests (RFC 2986) of relying parties' software certificates: the
//! request's signature is verified (proof of possession) and only its public key is kept;
//! its subject and attributes are ignored (the CA sets the subject itself).

use der::{Decode, Encode};
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::request::CertReq;

use super::oids;

/// sha256WithRSAEncryption (RFC 4055).
const SHA256_WITH_RSA: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// Smallest accepted RSA modulus (bits).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest accepted RSA modulus (bits).
pub const MAX_RSA_BITS: usize = 4096;
/// Largest accepted request (DER bytes).
pub const MAX_CSR_BYTES: usize = 8192;

/// Why a certificate request is refused (the message is for the requester).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// Longer than [`MAX_CSR_BYTES`].
    #[error("the certificate request has {0} bytes; at most {MAX_CSR_BYTES} are accepted")]
    TooLarge(usize),
    /// Not a DER PKCS#10 request.
    #[error("the certificate request is not a DER PKCS#10 request")]
    Malformed,
    /// The key is not RSA.
    #[error("the certificate request's key is not an RSA key")]
    NotRsa,
    /// The RSA key's size is outside 2048..=4096 bits.
    #[error("the RSA key has {0} bits; 2048 to 4096 are accepted")]
    KeySize(usize),
    /// Signed with another algorithm than sha256WithRSAEncryption.
    #[error("the certificate request must be signed with sha256WithRSAEncryption")]
    SignatureAlgorithm,
    /// The signature does not verify with the request's own key.
    #[error("the certificate request's signature does not match its key")]
    BadSignature,
}

/// Parses a DER PKCS#10 request, checks its RSA key (2048 to 4096 bits, e odd and > 1) and
/// its sha256WithRSAEncryption signature; returns the public key (SPKI DER).
pub fn public_key_of_csr(der: &[u8]) -> Result<Vec<u8>, CsrError> {
    if der.len() > MAX_CSR_BYTES {
        return Err(CsrError::TooLarge(der.len()));
    }
    let req = CertReq::from_der(der).map_err(|_| CsrError::Malformed)?;
    let spki: &SubjectPublicKeyInfoOwned = &req.info.public_key;
    if spki.algorithm.oid != oids::RSA_ENCRYPTION {
        return Err(CsrError::NotRsa);
    }
    let key = RsaPublicKey::from_pkcs1_der(spki.subject_public_key.raw_bytes())
        .map_err(|_| CsrError::NotRsa)?;
    let bits = key.n().bits();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(CsrError::KeySize(bits));
    }
    if req.algorithm.oid != SHA256_WITH_RSA {
        return Err(CsrError::SignatureAlgorithm);
    }
    let info = req.info.to_der().map_err(|_| CsrError::Malformed)?;
    let signature = req.signature.as_bytes().ok_or(CsrError::Malformed)?;
    let digest = Sha256::digest(&info);
    key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
        .map_err(|_| CsrError::BadSignature)?;
    spki.to_der().map_err(|_| CsrError::Malformed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn csr(bits: u32, digest: openssl::hash::MessageDigest) -> Vec<u8> {
        let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
        let key = openssl::pkey::PKey::from_rsa(rsa).unwrap();
        let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "ignored").unwrap();
        b.set_subject_name(&name.build()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.sign(&key, digest).unwrap();
        b.build().to_der().unwrap()
    }

    #[test]
    fn a_good_request_gives_its_key_and_bad_ones_a_reason() {
        let good = csr(2048, openssl::hash::MessageDigest::sha256());
        let spki = public_key_of_csr(&good).unwrap();
        assert!(SubjectPublicKeyInfoOwned::from_der(&spki).is_ok());
        // A flipped bit in the signed part: the signature no longer matches.
        let mut bad = good.clone();
        let at = bad.len() / 3;
        bad[at] ^= 0x01;
        assert!(public_key_of_csr(&bad).is_err());
        let mut tail = good.clone();
        let last = tail.len() - 1;
        tail[last] ^= 0x01;
        assert_eq!(public_key_of_csr(&tail), Err(CsrError::BadSignature));
        assert_eq!(public_key_of_csr(b"junk"), Err(CsrError::Malformed));
        assert_eq!(public_key_of_csr(&[]), Err(CsrError::Malformed));
        assert_eq!(
            public_key_of_csr(&vec![0x30; MAX_CSR_BYTES + 1]),
            Err(CsrError::TooLarge(MAX_CSR_BYTES + 1))
        );
        assert_eq!(
            public_key_of_csr(&csr(1024, openssl::hash::MessageDigest::sha256())),
            Err(CsrError::KeySize(1024))
        );
        assert_eq!(
            public_key_of_csr(&csr(2048, openssl::hash::MessageDigest::sha384())),
            Err(CsrError::SignatureAlgorithm)
        );
    }
}
