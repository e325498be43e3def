//! The format of the blobs this layer hands out for storage (in the database): a version
//! byte, an algorithm byte, then the body. Anything else is refused with
//! [`HsmError::BadBlob`].
//!
//! ```text
//!   version  algorithm               body                                     made by
//!   0x01     0x01 ALG_AES_GCM_KEK    iv (12) || ciphertext || tag (16)        Hsm::seal_at_rest
//!            AES-256-GCM under the KEK, the caller's AAD
//!   0x01     0x02 ALG_AES_KWP_KEK    AES-KW-PAD (RFC 5649) under the KEK of   Hsm::generate_server_key
//!            the PKCS#8 RSA private key                                       (ServerKey)
//!   0x01     0x03 ALG_TOKEN_RSA_KEY  id (16): CKA_ID of a share key token     Hsm::import_share_key
//!            object "tandem-share/<id hex>", no key material                  (token-rsa)
//! ```
//!
//! These bytes are in every data directory: the golden vectors in the tests below (and
//! `server/tests/vectors/hsm_blobs.txt`, opened by a real HSM in `server/tests/hsm_softhsm.rs`)
//! pin them. A change that makes them fail is a storage-format break.

use super::HsmError;

/// Blob format version understood by this module.
pub(super) const BLOB_VERSION: u8 = 0x01;
/// Algorithm id: AES-256-GCM under the KEK, 12-byte IV, 16-byte tag.
pub(super) const ALG_AES_GCM_KEK: u8 = 0x01;
/// Algorithm id: RSA private key, PKCS#8, wrapped with AES-KW-PAD (RFC 5649) under the KEK.
pub(super) const ALG_AES_KWP_KEK: u8 = 0x02;
/// Algorithm id of a share blob that names an RSA key token object (`token-rsa`): the
/// blob is `[0x01, 0x03] || id` (16 bytes), the object's `CKA_ID`.
pub const ALG_TOKEN_RSA_KEY: u8 = 0x03;

/// Length of the AES-GCM IV of a sealed blob.
pub(super) const GCM_IV_LEN: usize = 12;
/// Length of the AES-GCM tag of a sealed blob.
pub(super) const GCM_TAG_LEN: usize = 16;
/// Length of a share key's `CKA_ID`.
pub(super) const SHARE_KEY_ID_LEN: usize = 16;

/// The body of `blob` if its header is `[BLOB_VERSION, alg]`.
pub(super) fn parse_header(blob: &[u8], alg: u8) -> Result<&[u8], HsmError> {
    match blob {
        [BLOB_VERSION, a, body @ ..] if *a == alg => Ok(body),
        [BLOB_VERSION, _, ..] => Err(HsmError::BadBlob("unknown algorithm")),
        [_, _, ..] => Err(HsmError::BadBlob("unknown version")),
        _ => Err(HsmError::BadBlob("too short")),
    }
}

fn with_header(alg: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut blob = Vec::with_capacity(len);
    blob.extend_from_slice(&[BLOB_VERSION, alg]);
    for part in parts {
        blob.extend_from_slice(part);
    }
    blob
}

/// A sealed blob: `[0x01, 0x01] || iv || ciphertext || tag`.
pub(super) fn encode_sealed(iv: &[u8; GCM_IV_LEN], ciphertext_and_tag: &[u8]) -> Vec<u8> {
    with_header(ALG_AES_GCM_KEK, &[iv, ciphertext_and_tag])
}

/// The IV and `ciphertext || tag` of a sealed blob.
pub(super) fn parse_sealed(blob: &[u8]) -> Result<(&[u8; GCM_IV_LEN], &[u8]), HsmError> {
    let body = parse_header(blob, ALG_AES_GCM_KEK)?;
    if body.len() < GCM_IV_LEN + GCM_TAG_LEN {
        return Err(HsmError::BadBlob("sealed blob too short"));
    }
    let (iv, sealed) = body.split_at(GCM_IV_LEN);
    let iv = iv
        .try_into()
        .map_err(|_| HsmError::BadBlob("sealed blob too short"))?;
    Ok((iv, sealed))
}

/// A wrapped server key: `[0x01, 0x02] || AES-KW-PAD(KEK, PKCS#8)`.
pub(super) fn encode_wrapped_key(wrapped: &[u8]) -> Vec<u8> {
    with_header(ALG_AES_KWP_KEK, &[wrapped])
}

/// The AES-KW-PAD ciphertext of a wrapped server key (may be empty; the caller decides).
pub(super) fn parse_wrapped_key(blob: &[u8]) -> Result<&[u8], HsmError> {
    parse_header(blob, ALG_AES_KWP_KEK)
}

/// A reference to a share key token object: `[0x01, 0x03] || id`.
pub(super) fn encode_share_key_ref(id: &[u8; SHARE_KEY_ID_LEN]) -> Vec<u8> {
    with_header(ALG_TOKEN_RSA_KEY, &[id])
}

/// The id in a share key reference.
pub(super) fn parse_share_key_ref(blob: &[u8]) -> Result<[u8; SHARE_KEY_ID_LEN], HsmError> {
    parse_header(blob, ALG_TOKEN_RSA_KEY)?
        .try_into()
        .map_err(|_| HsmError::BadBlob("share key reference of the wrong length"))
}

/// Whether a stored share blob names a share key token object ([`ALG_TOKEN_RSA_KEY`]).
pub fn is_token_share_blob(blob: &[u8]) -> bool {
    matches!(blob, [BLOB_VERSION, ALG_TOKEN_RSA_KEY, ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden vectors of the stored format, written out byte by byte. These blobs are in
    // databases: if one of these tests fails, the change breaks every existing data
    // directory. Do not edit the vectors; add a new version or algorithm byte instead and
    // keep reading the old one.

    /// A sealed blob: version 01, algorithm 01, IV 000102..0b, then ciphertext and tag (a
    /// 4-byte secret here, so 4 + 16 bytes).
    const SEALED: &str = "0101\
                          000102030405060708090a0b\
                          deadbeef\
                          a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
    /// A wrapped server key: version 01, algorithm 02, then the AES-KW-PAD output.
    const WRAPPED_KEY: &str = "0102\
                               b0b1b2b3b4b5b6b7c0c1c2c3c4c5c6c7c8c9cacbcccdcecf";
    /// A share key reference: version 01, algorithm 03, then the 16-byte CKA_ID.
    const SHARE_KEY_REF: &str = "0103\
                                 f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

    fn bytes(hex: &str) -> Vec<u8> {
        hex::decode(hex).unwrap()
    }

    #[test]
    fn sealed_blob_golden_vector() {
        let iv: [u8; 12] = core::array::from_fn(|i| i as u8);
        let ciphertext_and_tag = bytes("deadbeefa0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
        assert_eq!(hex::encode(encode_sealed(&iv, &ciphertext_and_tag)), SEALED);
        let blob = bytes(SEALED);
        let (parsed_iv, parsed) = parse_sealed(&blob).unwrap();
        assert_eq!(parsed_iv, &iv);
        assert_eq!(parsed, ciphertext_and_tag.as_slice());
        // The smallest sealed blob holds an empty secret: header, IV and tag.
        assert!(parse_sealed(&blob[..2 + 12 + 16]).is_ok());
        assert!(matches!(
            parse_sealed(&blob[..2 + 12 + 15]),
            Err(HsmError::BadBlob("sealed blob too short"))
        ));
    }

    #[test]
    fn wrapped_key_golden_vector() {
        let wrapped = bytes("b0b1b2b3b4b5b6b7c0c1c2c3c4c5c6c7c8c9cacbcccdcecf");
        assert_eq!(hex::encode(encode_wrapped_key(&wrapped)), WRAPPED_KEY);
        assert_eq!(
            parse_wrapped_key(&bytes(WRAPPED_KEY)).unwrap(),
            wrapped.as_slice()
        );
    }

    #[test]
    fn share_key_ref_golden_vector() {
        let id: [u8; 16] = core::array::from_fn(|i| 0xf0 + i as u8);
        assert_eq!(hex::encode(encode_share_key_ref(&id)), SHARE_KEY_REF);
        let blob = bytes(SHARE_KEY_REF);
        assert_eq!(parse_share_key_ref(&blob).unwrap(), id);
        assert!(is_token_share_blob(&blob));
        assert!(!is_token_share_blob(&bytes(SEALED)));
        assert!(!is_token_share_blob(&bytes(WRAPPED_KEY)));
        assert!(matches!(
            parse_share_key_ref(&blob[..17]),
            Err(HsmError::BadBlob(_))
        ));
    }

    #[test]
    fn headers_are_checked() {
        // Each kind of blob is refused where another is expected.
        assert!(matches!(
            parse_sealed(&bytes(WRAPPED_KEY)),
            Err(HsmError::BadBlob("unknown algorithm"))
        ));
        assert!(matches!(
            parse_wrapped_key(&bytes(SEALED)),
            Err(HsmError::BadBlob("unknown algorithm"))
        ));
        assert!(matches!(
            parse_share_key_ref(&bytes(SEALED)),
            Err(HsmError::BadBlob("unknown algorithm"))
        ));
        // Another version, too short.
        let mut v2 = bytes(SEALED);
        v2[0] = 0x02;
        assert!(matches!(
            parse_sealed(&v2),
            Err(HsmError::BadBlob("unknown version"))
        ));
        assert!(!is_token_share_blob(&[0x02, 0x03, 0]));
        assert!(matches!(parse_header(&[1, 1, 9], 1), Ok([9])));
        assert!(matches!(
            parse_header(&[1], 1),
            Err(HsmError::BadBlob("too short"))
        ));
        assert!(matches!(parse_header(&[], 1), Err(HsmError::BadBlob(_))));
    }
}
