//! The key-transport key ([`TRANSPORT_KEY_LABEL`]) that devices seal to, and opening their
//! envelopes inside the HSM ([`Hsm::open_envelope`]): ECDH on P-256 (the default) or RSA-OAEP
//! of a content key. Also the public key devices encrypt to
//! ([`Hsm::transport_public_key_der`]).

use std::fmt;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use tandem_client_core::envelope::{self, EnvelopeKey};
use zeroize::Zeroizing;

use super::at_rest::gcm_decrypt;
use super::attributes::{find_unique, read_ec_point, read_rsa_public};
use super::blob::GCM_TAG_LEN;
use super::der_encoding::{Curve, P256_POINT_LEN, rsa_spki_der};
use super::sessions::{PooledSession, SessionObject};
use super::{Hsm, HsmError, lock};

/// Label of the key-transport RSA key pair (token objects).
pub const TRANSPORT_KEY_LABEL: &str = "tandem-transport";

/// The kind of key-transport key (`keys.transport_key` / `keys.transport_key_bits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKeySpec {
    /// EC P-256: envelopes use ECDH (algorithm `0x02`). The default.
    EcP256,
    /// RSA of that many bits: envelopes use RSA-OAEP (algorithm `0x01`).
    Rsa(usize),
}

impl fmt::Display for TransportKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportKeySpec::EcP256 => f.write_str("EC P-256"),
            TransportKeySpec::Rsa(bits) => write!(f, "RSA-{bits}"),
        }
    }
}

/// The transport private key's handle and what is needed to use it.
#[derive(Debug, Clone, Copy)]
pub(super) struct TransportKey {
    pub(super) handle: ObjectHandle,
    /// `None` for RSA; the public point for EC P-256 (the HKDF input needs it).
    pub(super) ec_point: Option<[u8; P256_POINT_LEN]>,
}

impl Hsm {
    /// The transport public key as DER `SubjectPublicKeyInfo`, for devices to encrypt to:
    /// `id-ecPublicKey` on prime256v1, or `rsaEncryption`. RSA is read from the private key
    /// object; EC from the public key object of the same label, whose point the private
    /// key's first use checks by an ECDH ([`Hsm::open_envelope`] binds it into the HKDF).
    pub fn transport_public_key_der(&self) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.transport_public_key_der").entered();
        self.with_session(|s| {
            let key = self.transport_private(s)?;
            if let Some(point) = key.ec_point {
                return Curve::P256.spki_der(&point);
            }
            let (n, e) = read_rsa_public(s, key.handle)?
                .ok_or(HsmError::Token("transport key lacks modulus or exponent"))?;
            rsa_spki_der(&n, &e)
        })
    }

    /// Opens a device envelope (client-core `envelope`); `ciphertext_and_tag` is
    /// AES-256-GCM with `iv` and `aad` and a 16-byte tag. The envelope's algorithm must be
    /// the transport key's.
    ///
    /// - [`EnvelopeKey::EcdhP256`]: `CKM_ECDH1_DERIVE` (`CKD_NULL`) of the device's
    ///   ephemeral point with the transport key gives the shared x coordinate as a
    ///   short-lived session object, read once and destroyed; HKDF-SHA256 and AES-GCM run in
    ///   software. The shared secret opens only this envelope, whose plaintext the server
    ///   receives anyway, so it leaving the HSM exposes nothing more (and SoftHSM 2.6.1 has
    ///   no KDF for ECDH). A point off the curve is refused by the HSM.
    /// - [`EnvelopeKey::RsaOaep`]: an AES-256 content key encrypted with RSA-OAEP (SHA-1,
    ///   MGF1-SHA-1, empty label); the content key exists only as a sensitive,
    ///   non-extractable session object inside the HSM and is destroyed before returning.
    ///
    /// Every failure to derive, unwrap or authenticate is [`HsmError::Decryption`], without
    /// detail.
    pub fn open_envelope(
        &self,
        key: EnvelopeKey<'_>,
        iv: &[u8; 12],
        ciphertext_and_tag: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let _span = tracing::debug_span!("hsm.open_envelope").entered();
        if ciphertext_and_tag.len() < GCM_TAG_LEN {
            return Err(HsmError::Decryption);
        }
        let wrapped_key = match key {
            EnvelopeKey::RsaOaep(wrapped) => wrapped,
            EnvelopeKey::EcdhP256(point) => {
                let (shared, recipient) = self.with_session(|s| {
                    let transport = self.transport_private(s)?;
                    let recipient = transport.ec_point.ok_or(HsmError::Decryption)?;
                    Ok((self.ecdh_derive(s, transport.handle, point)?, recipient))
                })?;
                let cek = envelope::ecdh_content_key(&shared, point, &recipient)
                    .map_err(|_| HsmError::Decryption)?;
                return envelope::decrypt_content(&cek, iv, ciphertext_and_tag, aad)
                    .map_err(|_| HsmError::Decryption);
            }
        };
        self.with_session(|s| {
            let content_key = self.unwrap_content_key(s, wrapped_key, Attribute::Decrypt(true))?;
            let len = s
                .session
                .get_attributes(content_key.handle, &[AttributeType::ValueLen])?;
            // Devices send AES-256 content keys. SoftHSM 2.6.1 leaves CKA_VALUE_LEN at 0 on
            // unwrap (and refuses it in the template), so only a reported length is checked.
            if matches!(len.first(), Some(Attribute::ValueLen(l)) if !matches!(u64::from(*l), 0 | 32))
            {
                return Err(HsmError::Decryption);
            }
            gcm_decrypt(s, content_key.handle, iv, ciphertext_and_tag, aad)
                .map_err(|e| self.classify(e, false))
        })
    }

    /// Unwraps a device's AES content key with the RSA transport key (RSA-OAEP; SoftHSM 2.6.1
    /// implements it only with SHA-1 / MGF1-SHA-1 and no label) into a sensitive,
    /// non-extractable session object whose only use is `usage` (`Decrypt(true)` or
    /// `Unwrap(true)`). An EC transport key is [`HsmError::Decryption`].
    pub(super) fn unwrap_content_key<'s>(
        &self,
        s: &'s PooledSession,
        wrapped_key: &[u8],
        usage: Attribute,
    ) -> Result<SessionObject<'s>, HsmError> {
        let transport = self.transport_private(s)?;
        if transport.ec_point.is_some() {
            return Err(HsmError::Decryption);
        }
        let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            PkcsOaepSource::empty(),
        ));
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
        ];
        template.push(match usage {
            Attribute::Decrypt(true) => Attribute::Unwrap(false),
            _ => Attribute::Decrypt(false),
        });
        template.push(usage);
        let handle = s
            .session
            .unwrap_key(&oaep, transport.handle, wrapped_key, &template)
            .map_err(|e| self.classify(e, true))?;
        Ok(SessionObject::new(s, handle))
    }

    /// The transport private key (and its public point for EC), from the cache or the token.
    pub(super) fn transport_private(&self, s: &PooledSession) -> Result<TransportKey, HsmError> {
        if let Some(key) = lock(&self.inner.handles).transport {
            return Ok(key);
        }
        let handle = find_unique(s, TRANSPORT_KEY_LABEL, ObjectClass::PRIVATE_KEY)?.ok_or(
            HsmError::ObjectMissing {
                label: TRANSPORT_KEY_LABEL,
                kind: "private key",
            },
        )?;
        let key_type = s
            .session
            .get_attributes(handle, &[AttributeType::KeyType])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::KeyType(t) => Some(t),
                _ => None,
            })
            .ok_or(HsmError::Token("transport key without CKA_KEY_TYPE"))?;
        let ec_point = if key_type == KeyType::RSA {
            None
        } else if key_type == KeyType::EC {
            let public = find_unique(s, TRANSPORT_KEY_LABEL, ObjectClass::PUBLIC_KEY)?.ok_or(
                HsmError::ObjectMissing {
                    label: TRANSPORT_KEY_LABEL,
                    kind: "EC public key",
                },
            )?;
            const WRONG: &str = "EC transport key is not a P-256 point";
            let point: [u8; P256_POINT_LEN] = read_ec_point(s, public, Curve::P256, WRONG)?
                .try_into()
                .map_err(|_| HsmError::Token(WRONG))?;
            Some(point)
        } else {
            return Err(HsmError::Token("transport key is neither RSA nor EC"));
        };
        let key = TransportKey { handle, ec_point };
        lock(&self.inner.handles).transport = Some(key);
        Ok(key)
    }

    /// `CKM_ECDH1_DERIVE` of `point` with the EC transport key: the 32-byte shared x
    /// coordinate. The derived session object is destroyed before returning.
    fn ecdh_derive(
        &self,
        s: &PooledSession,
        transport: ObjectHandle,
        point: &[u8; P256_POINT_LEN],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let params = Ecdh1DeriveParams::new(EcKdf::null(), point);
        let derived = s
            .session
            .derive_key(
                &Mechanism::Ecdh1Derive(params),
                transport,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                    Attribute::Encrypt(false),
                    Attribute::Decrypt(false),
                    Attribute::Sign(false),
                    Attribute::Verify(false),
                    Attribute::Wrap(false),
                    Attribute::Unwrap(false),
                    Attribute::Derive(false),
                ],
            )
            // A point off the curve (or of the wrong form) is the sender's fault.
            .map_err(|e| match self.classify(e, true) {
                HsmError::Pkcs11 {
                    rv: RvError::MechanismParamInvalid | RvError::DomainParamsInvalid,
                    ..
                } => HsmError::Decryption,
                other => other,
            })?;
        let derived = SessionObject::new(s, derived);
        let value = s
            .session
            .get_attributes(derived.handle, &[AttributeType::Value])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(Zeroizing::new(v)),
                _ => None,
            })
            .ok_or(HsmError::Token("derived ECDH secret without CKA_VALUE"))?;
        if value.len() != 32 {
            return Err(HsmError::Token("derived ECDH secret of the wrong length"));
        }
        Ok(value)
    }
}
