//! Secrets at rest: [`Hsm::seal_at_rest`] encrypts a secret (such as `d1''`) with AES-256-GCM
//! under the KEK inside the HSM, [`Hsm::open_at_rest`] decrypts it into zeroized memory. The
//! blob layout is in [`super::blob`].

use cryptoki::error::Error as CryptokiError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::ObjectHandle;
use zeroize::Zeroizing;

use super::blob::{self, GCM_IV_LEN, GCM_TAG_LEN};
use super::sessions::PooledSession;
use super::{Hsm, HsmError};

/// Length of the AES-GCM tag in bits.
pub(super) const GCM_TAG_BITS: u64 = 128;

impl Hsm {
    /// Encrypts a secret for storage: AES-256-GCM under the KEK inside the HSM with a random
    /// 12-byte IV from the HSM. Output: `[0x01, 0x01] || iv || ciphertext || tag`.
    pub fn seal_at_rest(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.seal_at_rest").entered();
        self.with_session(|s| {
            let kek = self.kek(s)?;
            let mut iv = [0u8; GCM_IV_LEN];
            s.session.generate_random_slice(&mut iv)?;
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, aad, GCM_TAG_BITS.into())?;
            let sealed = s
                .session
                .encrypt(&Mechanism::AesGcm(params), kek, plaintext)
                .map_err(|e| self.classify(e, false))?;
            if sealed.len() != plaintext.len() + GCM_TAG_LEN {
                return Err(HsmError::Token("unexpected AES-GCM output length"));
            }
            Ok(blob::encode_sealed(&iv, &sealed))
        })
    }

    /// Inverse of [`Hsm::seal_at_rest`]. Unknown versions, algorithms and short blobs are
    /// [`HsmError::BadBlob`]; a wrong AAD or a modified blob is [`HsmError::Decryption`].
    pub fn open_at_rest(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let _span = tracing::debug_span!("hsm.open_at_rest").entered();
        let (iv, sealed) = blob::parse_sealed(blob)?;
        self.with_session(|s| {
            let kek = self.kek(s)?;
            gcm_decrypt(s, kek, iv, sealed, aad).map_err(|e| self.classify(e, false))
        })
    }
}

pub(super) fn gcm_decrypt(
    s: &PooledSession,
    key: ObjectHandle,
    iv: &[u8; GCM_IV_LEN],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptokiError> {
    let mut iv = *iv;
    let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())?;
    // cryptoki returns a plain Vec; it moves into zeroizing memory at once. (cryptoki may
    // truncate it to the plaintext length; the tail it cuts off was never written.)
    let plaintext = Zeroizing::new(s.session.decrypt(&Mechanism::AesGcm(params), key, sealed)?);
    Ok(plaintext)
}
