//! The reply key: an HMAC-SHA-256 key (`CKK_GENERIC_SECRET`, 32 bytes) in the token,
//! sensitive and not extractable, used only to derive the key that seals one stored answer
//! to a device request (`service::retransmission`). Created by [`Hsm::ensure_objects`] and,
//! for data directories made before it existed, by [`Hsm::ensure_reply_key`] when the
//! server starts.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use zeroize::Zeroizing;

use super::attributes::find_unique;
use super::sessions::PooledSession;
use super::{Hsm, HsmError, ObjectStatus, lock};

/// Label (and id) of the reply key.
pub const REPLY_KEY_LABEL: &str = "tandem-reply-key";

/// Length of the reply key and of its HMAC output.
const REPLY_KEY_LEN: usize = 32;

impl Hsm {
    /// Creates the reply key if the token has none. Like [`Hsm::ensure_objects`], not safe
    /// against two processes creating it at the same moment.
    pub fn ensure_reply_key(&self) -> Result<ObjectStatus, HsmError> {
        let _provisioning = lock(&self.inner.provisioning);
        self.with_session(|s| self.ensure_reply_key_in(s))
    }

    /// [`Hsm::ensure_reply_key`] in an open session (the caller holds the provisioning lock).
    pub(super) fn ensure_reply_key_in(&self, s: &PooledSession) -> Result<ObjectStatus, HsmError> {
        if find_unique(s, REPLY_KEY_LABEL, ObjectClass::SECRET_KEY)?.is_some() {
            return Ok(ObjectStatus::Found);
        }
        s.session.generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(cryptoki::object::KeyType::GENERIC_SECRET),
                Attribute::ValueLen((REPLY_KEY_LEN as u64).into()),
                Attribute::Label(REPLY_KEY_LABEL.as_bytes().to_vec()),
                Attribute::Id(REPLY_KEY_LABEL.as_bytes().to_vec()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Modifiable(false),
                Attribute::Sign(true),
                Attribute::Verify(false),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
            ],
        )?;
        tracing::info!(label = REPLY_KEY_LABEL, "created the reply key");
        Ok(ObjectStatus::Created)
    }

    /// HMAC-SHA-256 of `input` under the reply key, computed inside the HSM. The result is a
    /// secret key: the caller keeps it only in memory.
    pub fn reply_mac(&self, input: &[u8]) -> Result<Zeroizing<[u8; REPLY_KEY_LEN]>, HsmError> {
        let _span = tracing::debug_span!("hsm.reply_mac").entered();
        self.with_session(|s| {
            let key = self.reply_key(s)?;
            let mac = Zeroizing::new(s.session.sign(&Mechanism::Sha256Hmac, key, input)?);
            let mut out = Zeroizing::new([0u8; REPLY_KEY_LEN]);
            if mac.len() != REPLY_KEY_LEN {
                return Err(HsmError::Token("unexpected HMAC-SHA-256 output length"));
            }
            out.copy_from_slice(&mac);
            Ok(out)
        })
    }

    fn reply_key(&self, s: &PooledSession) -> Result<ObjectHandle, HsmError> {
        if let Some(handle) = lock(&self.inner.handles).reply {
            return Ok(handle);
        }
        let handle = find_unique(s, REPLY_KEY_LABEL, ObjectClass::SECRET_KEY)?.ok_or(
            HsmError::ObjectMissing {
                label: REPLY_KEY_LABEL,
                kind: "HMAC secret key",
            },
        )?;
        lock(&self.inner.handles).reply = Some(handle);
        Ok(handle)
    }
}
