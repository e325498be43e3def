//! The long-lived token objects: the key-encryption key ([`KEK_LABEL`]), the key-transport
//! key pair and the reply key, created by [`Hsm::ensure_objects`], with their handles cached
//! in [`CachedHandles`]. Lookups by label and readers of key attributes are in
//! [`super::attributes`].

use std::collections::HashMap;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};

use super::attributes::{find_unique, read_modulus};
use super::big_endian::bit_length;
use super::der_encoding::Curve;
use super::sessions::PooledSession;
use super::transport::{TRANSPORT_KEY_LABEL, TransportKey};
use super::{CaKeySpec, Hsm, HsmError, TransportKeySpec, lock};

/// Label of the key-encryption key (AES-256 token object).
pub const KEK_LABEL: &str = "tandem-kek";

/// The RSA public exponent of every key this module generates.
pub(super) const PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// Whether [`Hsm::ensure_objects`] created an object or found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectStatus {
    Created,
    Found,
}

/// What [`Hsm::ensure_objects`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectsReport {
    /// The key-encryption key "tandem-kek".
    pub kek: ObjectStatus,
    /// The key-transport key pair "tandem-transport".
    pub transport_key: ObjectStatus,
    /// The reply key "tandem-reply-key" ([`super::REPLY_KEY_LABEL`]).
    pub reply_key: ObjectStatus,
    /// The transport key on the token (may differ from the requested one when the key was
    /// found).
    pub transport_key_spec: TransportKeySpec,
}

/// Handles of the token objects, valid across the sessions of this application; dropped when
/// the module no longer knows one ([`Hsm::classify`]) or the login was lost.
#[derive(Default)]
pub(super) struct CachedHandles {
    pub(super) kek: Option<ObjectHandle>,
    /// The reply key ([`super::reply_key`]).
    pub(super) reply: Option<ObjectHandle>,
    pub(super) transport: Option<TransportKey>,
    /// CA private keys by label, with their kind.
    pub(super) ca: HashMap<String, (ObjectHandle, CaKeySpec)>,
}

impl Hsm {
    /// Creates the KEK and the transport key pair if they are missing. Idempotent.
    ///
    /// Not safe against two *processes* provisioning the same token at the same moment
    /// (duplicates are then reported as [`HsmError::Ambiguous`] by later calls); run it from
    /// one place, e.g. `tandem hsm init`.
    pub fn ensure_objects(&self, transport: TransportKeySpec) -> Result<ObjectsReport, HsmError> {
        let _span = tracing::info_span!("hsm.ensure_objects").entered();
        if let TransportKeySpec::Rsa(bits) = transport
            && (!(2048..=4096).contains(&bits) || !bits.is_multiple_of(8))
        {
            return Err(HsmError::InvalidArgument(
                "transport key bits must be a multiple of 8 in 2048..=4096",
            ));
        }
        let _provisioning = lock(&self.inner.provisioning);
        self.with_session(|s| {
            let kek = match find_unique(s, KEK_LABEL, ObjectClass::SECRET_KEY)? {
                Some(_) => ObjectStatus::Found,
                None => {
                    s.session
                        .generate_key(&Mechanism::AesKeyGen, &kek_template(true))?;
                    tracing::info!(label = KEK_LABEL, "created the key-encryption key");
                    ObjectStatus::Created
                }
            };
            let transport_key = match find_unique(s, TRANSPORT_KEY_LABEL, ObjectClass::PRIVATE_KEY)?
            {
                Some(_) => ObjectStatus::Found,
                None => {
                    let id = TRANSPORT_KEY_LABEL.as_bytes().to_vec();
                    let (mechanism, mut public, private_use) = match transport {
                        TransportKeySpec::Rsa(bits) => (
                            Mechanism::RsaPkcsKeyPairGen,
                            vec![
                                Attribute::ModulusBits(bits.try_into()?),
                                Attribute::PublicExponent(PUBLIC_EXPONENT.to_vec()),
                                Attribute::Encrypt(true),
                                Attribute::Wrap(true),
                            ],
                            [
                                Attribute::Decrypt(true),
                                Attribute::Unwrap(true),
                                Attribute::Derive(false),
                            ],
                        ),
                        TransportKeySpec::EcP256 => (
                            Mechanism::EccKeyPairGen,
                            vec![
                                Attribute::EcParams(Curve::P256.ec_params()?),
                                Attribute::Derive(true),
                            ],
                            [
                                Attribute::Decrypt(false),
                                Attribute::Unwrap(false),
                                Attribute::Derive(true),
                            ],
                        ),
                    };
                    public.extend([
                        Attribute::Token(true),
                        Attribute::Private(false),
                        Attribute::Label(id.clone()),
                        Attribute::Id(id.clone()),
                        Attribute::Verify(false),
                    ]);
                    let mut private = vec![
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Label(id.clone()),
                        Attribute::Id(id),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Modifiable(false),
                        Attribute::Sign(false),
                    ];
                    private.extend(private_use);
                    s.session.generate_key_pair(&mechanism, &public, &private)?;
                    tracing::info!(
                        label = TRANSPORT_KEY_LABEL,
                        spec = %transport,
                        "created the key-transport key pair"
                    );
                    ObjectStatus::Created
                }
            };
            let found = self.transport_private(s)?;
            let transport_key_spec = match found.ec_point {
                Some(_) => TransportKeySpec::EcP256,
                None => TransportKeySpec::Rsa(bit_length(&read_modulus(s, found.handle)?)),
            };
            let reply_key = self.ensure_reply_key_in(s)?;
            Ok(ObjectsReport {
                kek,
                transport_key,
                reply_key,
                transport_key_spec,
            })
        })
    }

    /// The key-encryption key, from the cache or the token.
    pub(super) fn kek(&self, s: &PooledSession) -> Result<ObjectHandle, HsmError> {
        if let Some(handle) = lock(&self.inner.handles).kek {
            return Ok(handle);
        }
        let handle =
            find_unique(s, KEK_LABEL, ObjectClass::SECRET_KEY)?.ok_or(HsmError::ObjectMissing {
                label: KEK_LABEL,
                kind: "AES secret key",
            })?;
        lock(&self.inner.handles).kek = Some(handle);
        Ok(handle)
    }
}

/// The key-encryption key's template: AES-256 in the token, sensitive, never extractable,
/// wrapping and unwrapping. `encrypt_decrypt` also allows CKA_ENCRYPT / CKA_DECRYPT (the
/// default modes seal `d1''` with it); the token-rsa mode creates it without them, so the
/// token PIN alone cannot decrypt a stored share.
pub(super) fn kek_template(encrypt_decrypt: bool) -> [Attribute; 17] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Label(KEK_LABEL.as_bytes().to_vec()),
        Attribute::Id(KEK_LABEL.as_bytes().to_vec()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Encrypt(encrypt_decrypt),
        Attribute::Decrypt(encrypt_decrypt),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
    ]
}
