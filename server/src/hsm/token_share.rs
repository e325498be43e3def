//! The `token-rsa` share form: `d1''` inside a standard PKCS#11 HSM as a non-CRT RSA private
//! key object (docs/HSM_MODES.md).
//!
//! ```text
//!   registration (device envelope algorithm 0x03)
//!     C_UnwrapKey(CKM_RSA_PKCS_OAEP, transport key, wrapped content key)
//!         -> content key: AES-256 session object, sensitive, non-extractable, CKA_UNWRAP only
//!     C_UnwrapKey(CKM_AES_KEY_WRAP_PAD, content key, AES-KWP(PKCS#8 {n1, e_obj, d1'', 0...}))
//!         -> "tandem-share/<id>": RSA private key TOKEN object, sensitive, not extractable,
//!            CKA_SIGN only; its modulus must be the n1 submitted with it
//!     database <- [0x01, 0x03] || id     (a reference, no key material)
//!
//!   signature
//!     C_Sign(CKM_RSA_X_509, "tandem-share/<id>", x) = x^d1'' mod n1
//! ```
//!
//! Why a token object and not a wrapped blob (as the server key `d2`): SoftHSM 2.6.1 cannot
//! wrap an RSA key without its primes (OpenSSL's PKCS#8 encoder needs them; `C_WrapKey`
//! answers `CKR_KEY_NOT_WRAPPABLE`), and a content key re-wrapped under the KEK would let
//! anyone holding the token PIN unwrap the share again as a non-sensitive object, read
//! `d1''` and `e_obj` and factor `n1`. A token object that is never extractable has no such
//! path. Its cost: two objects per account on the token, which the token's backup must
//! cover, and which are destroyed with the account ([`Hsm::destroy_share_key`]).
//!
//! Why `e_obj = d1''⁻¹ mod λ(n1)`: SoftHSM (OpenSSL) refuses an RSA private key without a
//! public exponent and blinds with it; with e = 65537 the blinded result is wrong. hsm-sim
//! computes non-CRT keys without blinding, in constant time.

use std::fmt;
use std::sync::atomic::Ordering;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use rsa::BigUint;

#[cfg(doc)]
use super::CKM_TANDEM_SHARE_EXP;
use super::attributes::{find_unique, read_modulus, read_rsa_public};
use super::big_endian::{bit_length, left_pad, strip_leading_zeros};
use super::blob::{self, SHARE_KEY_ID_LEN};
use super::objects::{KEK_LABEL, kek_template};
use super::{Hsm, HsmError, ObjectStatus, lock};

/// `CKA_LABEL` prefix of share key token objects (followed by the id in hex).
pub const SHARE_KEY_LABEL_PREFIX: &str = "tandem-share/";

/// Where the server's share exponentiation `x^d1'' mod n1` happens (`hsm.share_exponentiation`,
/// chosen at `server init`; see docs/HSM_MODES.md).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ShareExponentiation {
    /// `vendor` when the module offers [`CKM_TANDEM_SHARE_EXP`] (hsm-sim), else `software`.
    /// The default, and what every data directory did before this option existed.
    #[default]
    Auto,
    /// The HSM decrypts `d1''` (AES-GCM under the KEK, which has `CKA_DECRYPT`) into
    /// zeroized server memory for each exponentiation.
    Software,
    /// The module's vendor mechanism [`CKM_TANDEM_SHARE_EXP`] (hsm-sim) computes it inside
    /// the token; `run` refuses to start on a module without it.
    Vendor,
    /// `d1''` is a non-CRT RSA key token object, used with `CKM_RSA_X_509`; the KEK has no
    /// `CKA_DECRYPT`. Needs an RSA key-transport key.
    TokenRsa,
}

impl ShareExponentiation {
    /// Whether the KEK of a token set up for this mode has `CKA_DECRYPT` (and `CKA_ENCRYPT`).
    pub fn kek_decrypts(self) -> bool {
        self != ShareExponentiation::TokenRsa
    }
}

impl fmt::Display for ShareExponentiation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShareExponentiation::Auto => "auto",
            ShareExponentiation::Software => "software",
            ShareExponentiation::Vendor => "vendor",
            ShareExponentiation::TokenRsa => "token-rsa",
        })
    }
}

fn share_key_label(id: &[u8; SHARE_KEY_ID_LEN]) -> Vec<u8> {
    format!("{SHARE_KEY_LABEL_PREFIX}{}", hex::encode(id)).into_bytes()
}

/// A cached share key handle with its modulus (a handle may be reused by the module after
/// the token was removed, so the modulus is compared on use).
#[derive(Debug, Clone)]
pub(super) struct CachedShareKey {
    handle: ObjectHandle,
    modulus: Vec<u8>,
}

impl Hsm {
    /// Checks that the token was set up for `mode` and makes this handle use it: `run`
    /// calls this before serving.
    ///
    /// - `token-rsa` needs a KEK without `CKA_DECRYPT` and an RSA transport key;
    /// - the other modes need a KEK with `CKA_DECRYPT` (their shares are AES-GCM blobs);
    /// - `vendor` needs [`CKM_TANDEM_SHARE_EXP`]; `software` stops using it.
    ///
    /// A data directory therefore cannot switch between `token-rsa` and the others: its
    /// stored shares exist in one form only.
    pub fn use_share_exponentiation(&self, mode: ShareExponentiation) -> Result<(), HsmError> {
        let kek_decrypts = self.kek_allows_decrypt()?;
        if kek_decrypts != mode.kek_decrypts() {
            return Err(HsmError::ShareMode(if kek_decrypts {
                format!(
                    "hsm.share_exponentiation is {mode}, but this token's key-encryption key \
                     was created for the software/vendor forms (it has CKA_DECRYPT) and the \
                     stored shares are in that form; set share_exponentiation back, or \
                     initialise a new data directory and token for {mode}"
                )
            } else {
                format!(
                    "hsm.share_exponentiation is {mode}, but this token was initialised for \
                     token-rsa (its key-encryption key has no CKA_DECRYPT and the shares are \
                     RSA key objects on the token); set share_exponentiation = \"token-rsa\""
                )
            }));
        }
        match mode {
            ShareExponentiation::Vendor if !self.inner.share_mechanism => {
                return Err(HsmError::ShareMode(
                    "hsm.share_exponentiation is vendor, but the PKCS#11 module does not offer \
                     CKM_TANDEM_SHARE_EXP (only hsm-sim does); use auto or software"
                        .into(),
                ));
            }
            ShareExponentiation::TokenRsa => {
                let rsa =
                    self.with_session(|s| Ok(self.transport_private(s)?.ec_point.is_none()))?;
                if !rsa {
                    return Err(HsmError::ShareMode(
                        "hsm.share_exponentiation is token-rsa, but the token's key-transport \
                         key is EC P-256: token-rsa needs an RSA transport key (keys.transport_key \
                         = \"rsa\"), so that the content key of a share is unwrapped inside the \
                         HSM"
                        .into(),
                    ));
                }
            }
            _ => {}
        }
        self.inner.vendor_share_off.store(
            matches!(
                mode,
                ShareExponentiation::Software | ShareExponentiation::TokenRsa
            ),
            Ordering::SeqCst,
        );
        Ok(())
    }

    /// Creates the key-encryption key for `token-rsa` if it is missing: the same key as
    /// [`Hsm::ensure_objects`] creates, without `CKA_ENCRYPT` and `CKA_DECRYPT` (it only wraps
    /// and unwraps server keys `d2`). Call it before [`Hsm::ensure_objects`], which then finds
    /// it. An existing KEK is left as it is ([`Hsm::use_share_exponentiation`] checks it).
    pub fn ensure_kek_without_decrypt(&self) -> Result<ObjectStatus, HsmError> {
        let _span = tracing::info_span!("hsm.ensure_kek_without_decrypt").entered();
        let _provisioning = lock(&self.inner.provisioning);
        self.with_session(|s| {
            if find_unique(s, KEK_LABEL, ObjectClass::SECRET_KEY)?.is_some() {
                return Ok(ObjectStatus::Found);
            }
            s.session
                .generate_key(&Mechanism::AesKeyGen, &kek_template(false))?;
            tracing::info!(
                label = KEK_LABEL,
                "created the key-encryption key without CKA_DECRYPT (token-rsa)"
            );
            Ok(ObjectStatus::Created)
        })
    }

    /// Whether the key-encryption key has `CKA_DECRYPT` (a token set up for `token-rsa` has
    /// not).
    pub fn kek_allows_decrypt(&self) -> Result<bool, HsmError> {
        self.with_session(|s| {
            let kek = self.kek(s)?;
            let attrs = s.session.get_attributes(kek, &[AttributeType::Decrypt])?;
            match attrs.first() {
                Some(Attribute::Decrypt(d)) => Ok(*d),
                _ => Err(HsmError::Token("key-encryption key without CKA_DECRYPT")),
            }
        })
    }

    /// Imports a device's share key (envelope algorithm `0x03`, client-core
    /// `envelope::seal_server_share_key`) as a token object and returns the blob to store:
    /// `[0x01, 0x03] || id`.
    ///
    /// The content key is unwrapped with RSA-OAEP (SHA-1) by the transport key into a
    /// sensitive, non-extractable session object that may only unwrap, which unwraps the
    /// PKCS#8 key (AES-KWP) into a token object: private, sensitive, never extractable,
    /// `CKA_SIGN` only, labelled `tandem-share/<id hex>`. Its modulus must equal
    /// `client_modulus`, else it is destroyed and [`HsmError::WrongKey`] returned. Anything
    /// that does not unwrap is [`HsmError::Decryption`], without detail. `d1''` exists in clear
    /// only inside the HSM.
    pub fn import_share_key(
        &self,
        wrapped_content_key: &[u8],
        wrapped_share_key: &[u8],
        client_modulus: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.import_share_key").entered();
        let n1 = strip_leading_zeros(client_modulus);
        if bit_length(n1) < 2048 {
            return Err(HsmError::InvalidArgument("client modulus too small"));
        }
        let mut id = [0u8; SHARE_KEY_ID_LEN];
        id.copy_from_slice(&self.random(SHARE_KEY_ID_LEN)?);
        self.with_session(|s| {
            let content_key =
                self.unwrap_content_key(s, wrapped_content_key, Attribute::Unwrap(true))?;
            let handle = s
                .session
                .unwrap_key(
                    &Mechanism::AesKeyWrapPad,
                    content_key.handle,
                    wrapped_share_key,
                    &[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::KeyType(KeyType::RSA),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        // Not CKA_MODIFIABLE = false: SoftHSM 2.6.1 then refuses the unwrap
                        // itself (CKR_ATTRIBUTE_READ_ONLY). CKA_SENSITIVE cannot be cleared and
                        // CKA_EXTRACTABLE not set afterwards anyway (PKCS#11 4.9).
                        Attribute::Label(share_key_label(&id)),
                        Attribute::Id(id.to_vec()),
                        Attribute::Sign(true),
                        Attribute::Decrypt(false),
                        Attribute::Unwrap(false),
                        Attribute::Derive(false),
                    ],
                )
                .map_err(|e| self.classify(e, true))?;
            drop(content_key);
            let modulus = read_modulus(s, handle);
            let has_exponent = read_rsa_public(s, handle)
                .map(|p| p.is_some())
                .map_err(HsmError::from);
            if !matches!(&modulus, Ok(n) if strip_leading_zeros(n) == n1)
                || !matches!(has_exponent, Ok(true))
            {
                if let Err(e) = s.session.destroy_object(handle) {
                    tracing::warn!(error = %HsmError::from(e), "could not destroy a refused share key");
                }
                return Err(match (modulus, has_exponent) {
                    (Err(e), _) | (_, Err(e)) => e,
                    _ => HsmError::WrongKey,
                });
            }
            lock(&self.inner.share_keys).insert(
                id,
                CachedShareKey {
                    handle,
                    modulus: n1.to_vec(),
                },
            );
            tracing::debug!("share key imported into the token");
            Ok(blob::encode_share_key_ref(&id))
        })
    }

    /// `x^d1'' mod n1` with the share key token object a [`Hsm::import_share_key`] blob
    /// names (`CKM_RSA_X_509`). The object's modulus must be `client_modulus` (else
    /// [`HsmError::WrongKey`]); `x` must be below it. Returns the result left-padded to the
    /// modulus length.
    pub fn share_exp_token(
        &self,
        blob: &[u8],
        client_modulus: &[u8],
        x: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.share_exp_token").entered();
        let id = blob::parse_share_key_ref(blob)?;
        let n1 = strip_leading_zeros(client_modulus);
        let k = n1.len();
        let n = BigUint::from_bytes_be(n1);
        if BigUint::from_bytes_be(x) >= n {
            return Err(HsmError::InvalidArgument("x is not below the modulus"));
        }
        let x = left_pad(strip_leading_zeros(x), k)?;
        self.with_session(|s| {
            let cached = lock(&self.inner.share_keys).get(&id).cloned();
            let key = match cached {
                Some(c)
                    if read_modulus(s, c.handle)
                        .is_ok_and(|m| strip_leading_zeros(&m) == c.modulus) =>
                {
                    c
                }
                _ => {
                    let found = s.session.find_objects(&[
                        Attribute::Token(true),
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Id(id.to_vec()),
                    ])?;
                    let handle = match found.as_slice() {
                        [one] => *one,
                        [] => {
                            return Err(HsmError::ObjectMissing {
                                label: "tandem-share/<id>",
                                kind: "share key (token-rsa)",
                            });
                        }
                        _ => {
                            return Err(HsmError::Ambiguous {
                                label: String::from_utf8_lossy(&share_key_label(&id)).into_owned(),
                                kind: "share key",
                            });
                        }
                    };
                    let modulus = strip_leading_zeros(&read_modulus(s, handle)?).to_vec();
                    let c = CachedShareKey { handle, modulus };
                    lock(&self.inner.share_keys).insert(id, c.clone());
                    c
                }
            };
            if key.modulus != n1 {
                return Err(HsmError::WrongKey);
            }
            let y = s.session.sign(&Mechanism::RsaX509, key.handle, &x)?;
            left_pad(strip_leading_zeros(&y), k)
        })
    }

    /// Destroys the share key token object a [`Hsm::import_share_key`] blob names (account
    /// deleted, registration abandoned). Returns whether there was one.
    pub fn destroy_share_key(&self, blob: &[u8]) -> Result<bool, HsmError> {
        let _span = tracing::debug_span!("hsm.destroy_share_key").entered();
        let id = blob::parse_share_key_ref(blob)?;
        lock(&self.inner.share_keys).remove(&id);
        self.with_session(|s| {
            let found = s.session.find_objects(&[
                Attribute::Token(true),
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id.to_vec()),
            ])?;
            for handle in &found {
                s.session.destroy_object(*handle)?;
            }
            Ok(!found.is_empty())
        })
    }
}
