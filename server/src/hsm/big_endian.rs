//! Big-endian unsigned integers as PKCS#11 returns them (moduli, signatures): leading zeros,
//! bit lengths, padding to the modulus length.

use super::HsmError;

/// `bytes` without its leading zero bytes.
pub(super) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The number of significant bits of a big-endian unsigned integer.
pub(super) fn bit_length(big_endian: &[u8]) -> usize {
    let bytes = strip_leading_zeros(big_endian);
    match bytes.first() {
        Some(top) => bytes.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// `bytes` left-padded with zeros to `len` (a modulus length); longer input is refused.
pub(super) fn left_pad(bytes: &[u8], len: usize) -> Result<Vec<u8>, HsmError> {
    if bytes.len() > len {
        return Err(HsmError::Token("value longer than the modulus"));
    }
    let mut out = vec![0u8; len - bytes.len()];
    out.extend_from_slice(bytes);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
    }

    #[test]
    fn padding() {
        assert_eq!(strip_leading_zeros(&[0, 0, 5, 0]), &[5, 0]);
        assert_eq!(left_pad(&[5, 0], 4).unwrap(), vec![0, 0, 5, 0]);
        assert!(left_pad(&[1, 2, 3], 2).is_err());
    }
}
