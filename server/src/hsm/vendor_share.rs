//! hsm-sim's vendor mechanism for the server's share: `x^d1'' mod n1` computed inside the
//! token ([`Hsm::share_exp`]), so that `d1''` never exists in plaintext outside it
//! (`hsm.share_exponentiation` = `vendor`, or `auto` on hsm-sim; docs/HSM_MODES.md).

use std::sync::atomic::Ordering;

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass};

use super::at_rest::GCM_TAG_BITS;
use super::big_endian::strip_leading_zeros;
use super::blob;
use super::sessions::SessionObject;
use super::{Hsm, HsmError};

/// hsm-sim's vendor key type for a split-key share `d1''` (hsm-sim/README.md): a secret key
/// object with `CKA_MODULUS` = n1 whose value never leaves the token.
pub const CKK_TANDEM_SHARE: u64 = 0x8000_0000 | 0x5444_0001;

/// hsm-sim's vendor mechanism: `C_Sign(x)` with a share key returns `x^d1'' mod n1`
/// (constant time), left-padded to the modulus length.
pub const CKM_TANDEM_SHARE_EXP: u64 = 0x8000_0000 | 0x5444_0001;

impl Hsm {
    /// Whether the module computes `x^d1'' mod n1` inside the token
    /// ([`CKM_TANDEM_SHARE_EXP`], offered by hsm-sim). Then [`Hsm::share_exp`] is used and
    /// `d1''` never exists in plaintext outside the token.
    pub fn has_share_mechanism(&self) -> bool {
        self.inner.share_mechanism && !self.inner.vendor_share_off.load(Ordering::SeqCst)
    }

    /// `x^d1'' mod n1` inside the token: the sealed share (a [`Hsm::seal_at_rest`] blob with
    /// its AAD) is unwrapped under the KEK with AES-GCM into a sensitive, non-extractable
    /// session object of type [`CKK_TANDEM_SHARE`] bound to `modulus`, used once with
    /// [`CKM_TANDEM_SHARE_EXP`] and destroyed. `x` must be reduced (`x < n1`). Only for
    /// modules that offer the mechanism ([`Hsm::has_share_mechanism`]).
    pub fn share_exp(
        &self,
        blob: &[u8],
        aad: &[u8],
        modulus: &[u8],
        x: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.share_exp").entered();
        let (iv, sealed) = blob::parse_sealed(blob)?;
        let mut iv = *iv;
        let key_type = KeyType::new_vendor_defined(CKK_TANDEM_SHARE)?;
        let mechanism = MechanismType::new_vendor_defined(CKM_TANDEM_SHARE_EXP)?;
        self.with_session(|s| {
            let kek = self.kek(s)?;
            let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into())?;
            let share = s
                .session
                .unwrap_key(
                    &Mechanism::AesGcm(params),
                    kek,
                    sealed,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(key_type),
                        Attribute::Modulus(strip_leading_zeros(modulus).to_vec()),
                        Attribute::Token(false),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Sign(true),
                    ],
                )
                .map_err(|e| self.classify(e, true))?;
            let share = SessionObject::new(s, share);
            let exp = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(mechanism, None));
            Ok(s.session.sign(&exp, share.handle, x)?)
        })
    }
}
