//! AES key wrap with padding (RFC 5649, `CKM_AES_KEY_WRAP_PAD` in PKCS#11) under AES-256.
//!
//! Used to hand the server's HSM an RSA key object that the HSM unwraps itself
//! ([`crate::envelope::seal_server_share_key`]). Only wrapping lives here: the device never
//! unwraps. The 64-bit integrity check of RFC 5649 is all the authentication this gives; the
//! server binds the unwrapped key to the submitted modulus.

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The alternative initial value of RFC 5649, section 3.
const AIV: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

/// `AES-KWP(kek, plaintext)`: `8 * ceil(len / 8) + 8` bytes. `plaintext` must be 1 to
/// 2^32 − 1 bytes.
pub fn wrap(kek: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mli = u32::try_from(plaintext.len()).map_err(|_| Error::Encryption)?;
    if plaintext.is_empty() {
        return Err(Error::Encryption);
    }
    let cipher = Aes256::new(kek.into());
    let padded_len = plaintext.len().div_ceil(8) * 8;
    // P = plaintext || zeros, as 64-bit blocks; A = AIV || MLI.
    let mut p = Zeroizing::new(vec![0u8; padded_len]);
    p[..plaintext.len()].copy_from_slice(plaintext);
    let mut a = [0u8; 8];
    a[..4].copy_from_slice(&AIV);
    a[4..].copy_from_slice(&mli.to_be_bytes());
    let mut block = Zeroizing::new([0u8; 16]);
    if padded_len == 8 {
        // One block: C = AES(K, A || P).
        block[..8].copy_from_slice(&a);
        block[8..].copy_from_slice(&p);
        cipher.encrypt_block((&mut *block).into());
        return Ok(block.to_vec());
    }
    // RFC 3394 wrapping process (W) over n = padded_len / 8 blocks.
    let n = padded_len / 8;
    for j in 0..6u64 {
        for i in 0..n {
            block[..8].copy_from_slice(&a);
            block[8..].copy_from_slice(&p[i * 8..i * 8 + 8]);
            cipher.encrypt_block((&mut *block).into());
            let t = (n as u64) * j + (i as u64) + 1;
            a.copy_from_slice(&block[..8]);
            for (x, y) in a.iter_mut().zip(t.to_be_bytes()) {
                *x ^= y;
            }
            p[i * 8..i * 8 + 8].copy_from_slice(&block[8..]);
        }
    }
    let mut out = Vec::with_capacity(8 + padded_len);
    out.extend_from_slice(&a);
    out.extend_from_slice(&p);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5649 section 6 has 192-bit KEK vectors only. These AES-256 values come from
    /// OpenSSL's `id-aes256-wrap-pad` (through Python's `cryptography`,
    /// `aes_key_wrap_with_padding`); SoftHSM and hsm-sim unwrap this module's output in the
    /// server's HSM tests as well.
    #[test]
    fn matches_openssl_kwp_values() {
        let kek: [u8; 32] =
            hex::decode("95da2700ca6fd9a52554ee2a8df1386f5b94a1a60ed8a4aef60a8d61ab5f225a")
                .unwrap()
                .try_into()
                .unwrap();
        let p = hex::decode("d1").unwrap();
        assert_eq!(
            hex::encode(wrap(&kek, &p).unwrap()),
            "06ba7ae6f3248cfdcf267507fa001bc4"
        );
        let kek: [u8; 32] =
            hex::decode("3517f0efa7f0c4d74f91af83ece5e7503bcc5ab82907a6e4b7ed34d87b69ab1d")
                .unwrap()
                .try_into()
                .unwrap();
        let p = hex::decode("897e0456b289ad31").unwrap();
        assert_eq!(
            hex::encode(wrap(&kek, &p).unwrap()),
            "0b06a9b635d50cda9d4210cb3a71f990"
        );
        // Several blocks, with padding.
        let kek: [u8; 32] = core::array::from_fn(|i| i as u8);
        let p: Vec<u8> = (1..42).collect();
        assert_eq!(
            hex::encode(wrap(&kek, &p).unwrap()),
            "ed34de7ee0ab2e21878bf88cef15a15f8b74be7356756c8b181c8a4cf609ee9a\
             53a5626f10776036ddbd631cb5a6f9c2c261bc980d730680"
        );
    }

    #[test]
    fn lengths() {
        let kek = [7u8; 32];
        for len in 1..=40 {
            let w = wrap(&kek, &vec![1u8; len]).unwrap();
            assert_eq!(w.len(), len.div_ceil(8) * 8 + 8, "{len}");
        }
        assert!(wrap(&kek, &[]).is_err());
    }
}
