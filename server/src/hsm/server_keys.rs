//! Per-account server keys `d2`: generated in the HSM and handed out only wrapped under the
//! KEK ([`ServerKey`], [`Hsm::generate_server_key`]), and the raw RSA operation with one
//! ([`Hsm::sign_raw`]), which unwraps the key into the [`super::key_cache`] once and reuses it.

use std::fmt;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use rsa::BigUint;
use sha2::{Digest, Sha256};

use super::attributes::read_modulus;
use super::big_endian::{bit_length, left_pad, strip_leading_zeros};
use super::blob;
use super::faults::{TEST_FAIL_SIGN_RAW_ENV, sign_raw_fault_injected};
use super::objects::PUBLIC_EXPONENT;
use super::sessions::SessionObject;
use super::{Hsm, HsmError, read};

/// A per-account server RSA key as stored in the database. `wrapped_private_key` is only
/// usable inside this HSM (sealed by the KEK); `modulus` is public.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey {
    /// Big-endian modulus `n2`, without leading zeros.
    pub modulus: Vec<u8>,
    /// `[0x01, 0x02] || AES-KW-PAD(KEK, PKCS#8 private key)`.
    pub wrapped_private_key: Vec<u8>,
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKey")
            .field("modulus_bits", &bit_length(&self.modulus))
            .field("wrapped_private_key_len", &self.wrapped_private_key.len())
            .finish()
    }
}

impl Hsm {
    /// Generates a server RSA key pair (e = 65537) in the HSM as session objects, wraps the
    /// private key under the KEK (AES-KW-PAD) and destroys both objects. The private key
    /// never leaves the HSM unwrapped.
    pub fn generate_server_key(&self, bits: usize) -> Result<ServerKey, HsmError> {
        let _span = tracing::debug_span!("hsm.generate_server_key", bits).entered();
        if !(2048..=8192).contains(&bits) || !bits.is_multiple_of(8) {
            return Err(HsmError::InvalidArgument(
                "server key bits must be a multiple of 8 in 2048..=8192",
            ));
        }
        self.with_session(|s| {
            let kek = self.kek(s)?;
            let (public, private) = s.session.generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[
                    Attribute::Token(false),
                    Attribute::Private(false),
                    Attribute::ModulusBits(bits.try_into()?),
                    Attribute::PublicExponent(PUBLIC_EXPONENT.to_vec()),
                    Attribute::Verify(true),
                    Attribute::Encrypt(false),
                    Attribute::Wrap(false),
                ],
                &[
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    // Extractable only so that it can be wrapped under the KEK right away.
                    Attribute::Extractable(true),
                    Attribute::Sign(true),
                    Attribute::Decrypt(false),
                    Attribute::Unwrap(false),
                    Attribute::Derive(false),
                ],
            )?;
            let public = SessionObject::new(s, public);
            let private = SessionObject::new(s, private);
            let modulus = strip_leading_zeros(&read_modulus(s, private.handle)?).to_vec();
            if bit_length(&modulus) != bits {
                return Err(HsmError::Token("generated modulus has the wrong size"));
            }
            let wrapped = s
                .session
                .wrap_key(&Mechanism::AesKeyWrapPad, kek, private.handle)
                .map_err(|e| self.classify(e, false))?;
            drop(private);
            drop(public);
            Ok(ServerKey {
                modulus,
                wrapped_private_key: blob::encode_wrapped_key(&wrapped),
            })
        })
    }

    /// Raw RSA private-key operation `x^d2 mod n2` with a wrapped server key.
    ///
    /// **Hazardous:** no padding is applied; the caller must encode `x` (EMSA-PKCS1-v1_5 or
    /// PSS) before. `x` is reduced modulo `n2` and left-padded to the modulus length. The
    /// key is unwrapped into a sensitive, non-extractable session object whose modulus must
    /// equal `expected_modulus` (else [`HsmError::WrongKey`]), used once and destroyed.
    /// Returns `s2`, left-padded to the modulus length.
    pub fn sign_raw(
        &self,
        wrapped_private_key: &[u8],
        expected_modulus: &[u8],
        x: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.sign_raw").entered();
        if sign_raw_fault_injected() {
            tracing::warn!(
                "raw RSA operation refused: {TEST_FAIL_SIGN_RAW_ENV} (test fault injection)"
            );
            return Err(HsmError::InjectedSignRawFault);
        }
        let wrapped = blob::parse_wrapped_key(wrapped_private_key)?;
        if wrapped.is_empty() {
            return Err(HsmError::BadBlob("wrapped key is empty"));
        }
        let expected_modulus = strip_leading_zeros(expected_modulus);
        if bit_length(expected_modulus) < 1024 {
            return Err(HsmError::InvalidArgument("modulus too small"));
        }
        let k = expected_modulus.len();
        let n = BigUint::from_bytes_be(expected_modulus);
        let x = left_pad(&(BigUint::from_bytes_be(x) % &n).to_bytes_be(), k)?;

        let id: [u8; 32] = Sha256::digest(wrapped).into();
        self.with_session(|s| {
            // At most: a stale entry dropped, the key unwrapped, then used.
            for _ in 0..3 {
                {
                    let cache = read(&self.inner.server_keys);
                    if let Some(e) = cache.get(&id)
                        // The handle must still name an object with the key's modulus (after
                        // the keeper session died, the module may reuse the handle).
                        && read_modulus(s, e.handle)
                            .is_ok_and(|n| strip_leading_zeros(&n) == e.modulus)
                    {
                        if e.modulus != expected_modulus {
                            return Err(HsmError::WrongKey);
                        }
                        // Under the read lock: nobody destroys the key meanwhile.
                        let signature = s.session.sign(&Mechanism::RsaX509, e.handle, &x)?;
                        return left_pad(strip_leading_zeros(&signature), k);
                    }
                }
                self.unwrap_server_key(id, wrapped, expected_modulus)?;
            }
            Err(HsmError::Token("the unwrapped server key vanished"))
        })
    }
}
