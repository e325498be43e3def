//! Public-key encodings. (Certificates and the CA come with the PKI issue.)

use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{BigUint, RsaPublicKey};

/// Largest composite modulus we encode (two 4096-bit halves).
const MAX_COMPOSITE_BITS: usize = 8192;

fn public_key(modulus: &[u8]) -> anyhow::Result<RsaPublicKey> {
    Ok(RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(modulus),
        BigUint::from(crate::signing::E),
        MAX_COMPOSITE_BITS,
    )?)
}

/// SubjectPublicKeyInfo (DER) for modulus n and e = 65537.
pub fn rsa_spki_der(modulus: &[u8]) -> anyhow::Result<Vec<u8>> {
    Ok(public_key(modulus)?
        .to_public_key_der()?
        .as_bytes()
        .to_vec())
}

/// SubjectPublicKeyInfo (PEM) for modulus n and e = 65537.
pub fn rsa_spki_pem(modulus: &[u8]) -> anyhow::Result<String> {
    Ok(public_key(modulus)?.to_public_key_pem(LineEnding::LF)?)
}
