//! Signed documents: signatures over whole documents in the standard formats, made through
//! the RP API's RAW_DIGEST_SIGNATURE (the phone confirms them and shows the verification code
//! as for any signature).
//!
//! - [`cades`]: detached CAdES baseline B-B signatures (`.p7s`, ETSI EN 319 122-1), built in
//!   two steps around the RP API call: the signed attributes and their digest first, the CMS
//!   `SignedData` once the signature over that digest has come back.
//!
//! - [`pades`]: PAdES baseline B-B signatures of PDFs, an incremental update appended to
//!   the untouched original, in the same two steps; [`pdf`] reads the few objects needed.
//!
//! - [`timestamp`]: signature time-stamps (B-T) from an RFC 3161 TSA, added to CAdES
//!   signatures as the unsigned attribute id-aa-signatureTimeStampToken.
//!
//! - [`asic`]: ASiC-E packages (ZIP) of signed documents, written and read with limits.
//!
//! - [`inspect`]: what a package holds, as written (not validated).
//!
//! - [`origin`]: the proof of origin of a package: its statement, the endpoint's wire
//!   types, and its verification.
//!
//! Documents are hashed in chunks ([`digest_reader`]): a document is never held in memory
//! whole.

pub mod asic;
pub mod cades;
pub mod dss;
pub mod inspect;
pub mod ltv;
pub mod origin;
pub mod pades;
pub mod pdf;
pub mod timestamp;

use std::io::Read;

use sha2::Digest as _;

use crate::api::types::HashAlgorithm;

/// Size of the chunks [`digest_reader`] hashes at a time.
const CHUNK: usize = 64 * 1024;

/// The hash algorithms document signatures use: SHA-256, SHA-384 and SHA-512.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocumentHash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DocumentHash {
    /// All three, shortest first.
    pub const ALL: [DocumentHash; 3] = [Self::Sha256, Self::Sha384, Self::Sha512];

    /// The digest length in bytes (also the RSASSA-PSS salt length).
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The RP API's name for it (`hashAlgorithm`).
    pub fn api(self) -> HashAlgorithm {
        match self {
            Self::Sha256 => HashAlgorithm::Sha256,
            Self::Sha384 => HashAlgorithm::Sha384,
            Self::Sha512 => HashAlgorithm::Sha512,
        }
    }

    /// From the RP API's hash names; SHA-3 is not offered for documents (CAdES validators
    /// rarely accept it), so it is `None`.
    pub fn from_api(h: HashAlgorithm) -> Option<Self> {
        match h {
            HashAlgorithm::Sha256 => Some(Self::Sha256),
            HashAlgorithm::Sha384 => Some(Self::Sha384),
            HashAlgorithm::Sha512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Hashes `data` (small inputs such as the signed attributes).
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Hashes everything `reader` yields, in chunks of 64 KiB: a document of any size is hashed
/// without being held in memory.
pub fn digest_reader(hash: DocumentHash, reader: impl Read) -> std::io::Result<Vec<u8>> {
    match hash {
        DocumentHash::Sha256 => digest_chunks::<sha2::Sha256>(reader),
        DocumentHash::Sha384 => digest_chunks::<sha2::Sha384>(reader),
        DocumentHash::Sha512 => digest_chunks::<sha2::Sha512>(reader),
    }
}

fn digest_chunks<D: sha2::Digest>(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize().to_vec()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most 1000 bytes per call, so the chunk loop runs many times.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(1000).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streaming_digest_equals_one_shot_digest() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for h in DocumentHash::ALL {
            let streamed = digest_reader(h, Trickle(&data)).unwrap();
            assert_eq!(streamed.len(), h.output_len());
            assert_eq!(streamed, h.digest(&data), "{h:?}");
            let md = match h {
                DocumentHash::Sha256 => openssl::hash::MessageDigest::sha256(),
                DocumentHash::Sha384 => openssl::hash::MessageDigest::sha384(),
                DocumentHash::Sha512 => openssl::hash::MessageDigest::sha512(),
            };
            assert_eq!(streamed, openssl::hash::hash(md, &data).unwrap().to_vec());
        }
    }
}
