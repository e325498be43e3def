//! CA key pairs in the HSM: [`CaKeySpec`], creating one ([`Hsm::ensure_ca_key`]), its public
//! key ([`Hsm::ca_public_key_der`]) and signing with it ([`Hsm::ca_sign`]: certificates, CRLs,
//! OCSP responses). ECDSA signatures become DER in [`super::der_encoding`].

use std::fmt;

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use sha2::{Digest, Sha384};

use super::attributes::{find_unique, read_ec_point, read_modulus, read_rsa_public};
use super::big_endian::{bit_length, left_pad, strip_leading_zeros};
use super::der_encoding::{Curve, ecdsa_raw_to_der, rsa_spki_der};
use super::faults::{TEST_FAIL_CA_SIGN_ENV, ca_sign_fault_injected};
use super::objects::{KEK_LABEL, PUBLIC_EXPONENT};
use super::sessions::PooledSession;
use super::transport::TRANSPORT_KEY_LABEL;
use super::{Hsm, HsmError, ObjectStatus, lock};

/// Key type and size of a CA key pair in the HSM.
///
/// Signatures made by [`Hsm::ca_sign`]: `sha384WithRSAEncryption` (PKCS#1 v1.5) for the
/// RSA kinds, `ecdsa-with-SHA384` (DER `Ecdsa-Sig-Value`) for P-384.
///
/// Serde names: `rsa4096`, `rsa3072`, `ec-p384` (`rsa-4096` and `rsa-3072` are accepted
/// as well).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CaKeySpec {
    /// RSA, 4096-bit modulus, e = 65537. The production default.
    #[default]
    #[serde(alias = "rsa-4096")]
    Rsa4096,
    /// RSA, 3072-bit modulus, e = 65537. Faster to generate; used by tests.
    #[serde(alias = "rsa-3072")]
    Rsa3072,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
}

impl CaKeySpec {
    /// The RSA modulus size, or `None` for EC.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            CaKeySpec::Rsa4096 => Some(4096),
            CaKeySpec::Rsa3072 => Some(3072),
            CaKeySpec::EcP384 => None,
        }
    }
}

impl fmt::Display for CaKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CaKeySpec::Rsa4096 => "RSA-4096",
            CaKeySpec::Rsa3072 => "RSA-3072",
            CaKeySpec::EcP384 => "EC P-384",
        })
    }
}

impl Hsm {
    /// Creates the CA key pair `label` as token objects if it is missing. Idempotent:
    /// returns [`ObjectStatus::Found`] when a key pair of kind `spec` is there already.
    ///
    /// The private key is private, sensitive, non-extractable, non-modifiable and may only
    /// sign (CKA_ALLOWED_MECHANISMS: CKM_SHA384_RSA_PKCS for RSA, CKM_ECDSA for EC); the
    /// public key may only verify. Both carry `label` as CKA_LABEL and CKA_ID. An existing
    /// key of another kind is never replaced: [`HsmError::CaKeySpecMismatch`]. As with
    /// [`Hsm::ensure_objects`], run it from one process at a time.
    pub fn ensure_ca_key(&self, label: &str, spec: CaKeySpec) -> Result<ObjectStatus, HsmError> {
        let _span = tracing::info_span!("hsm.ensure_ca_key", label, spec = %spec).entered();
        check_ca_label(label)?;
        let _provisioning = lock(&self.inner.provisioning);
        self.with_session(|s| {
            if let Some(private) = find_unique(s, label, ObjectClass::PRIVATE_KEY)? {
                let found = describe_ca_key(s, private)?;
                if found != Ok(spec) {
                    return Err(HsmError::CaKeySpecMismatch {
                        label: label.to_owned(),
                        found: found.map_or_else(|other| other, |found| found.to_string()),
                        expected: spec,
                    });
                }
                if find_unique(s, label, ObjectClass::PUBLIC_KEY)?.is_none() {
                    return Err(HsmError::Token("CA private key without its public key"));
                }
                lock(&self.inner.handles)
                    .ca
                    .insert(label.to_owned(), (private, spec));
                return Ok(ObjectStatus::Found);
            }
            if find_unique(s, label, ObjectClass::PUBLIC_KEY)?.is_some() {
                return Err(HsmError::Token("CA public key without its private key"));
            }

            let id = label.as_bytes().to_vec();
            let (mechanism, mut public_template, allowed) = match spec.rsa_bits() {
                Some(bits) => (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits(bits.try_into()?),
                        Attribute::PublicExponent(PUBLIC_EXPONENT.to_vec()),
                        Attribute::Encrypt(false),
                        Attribute::Wrap(false),
                    ],
                    MechanismType::SHA384_RSA_PKCS,
                ),
                None => (
                    Mechanism::EccKeyPairGen,
                    vec![
                        Attribute::EcParams(Curve::P384.ec_params()?),
                        Attribute::Derive(false),
                    ],
                    MechanismType::ECDSA,
                ),
            };
            public_template.extend([
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(id.clone()),
                Attribute::Id(id.clone()),
                Attribute::Modifiable(false),
                Attribute::Verify(true),
            ]);
            let private_template = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(id.clone()),
                Attribute::Id(id),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Modifiable(false),
                Attribute::Sign(true),
                Attribute::SignRecover(false),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
                Attribute::AllowedMechanisms(vec![allowed]),
            ];
            let (_public, private) =
                s.session
                    .generate_key_pair(&mechanism, &public_template, &private_template)?;
            if describe_ca_key(s, private)? != Ok(spec) {
                return Err(HsmError::Token(
                    "generated CA key is not of the requested kind",
                ));
            }
            lock(&self.inner.handles)
                .ca
                .insert(label.to_owned(), (private, spec));
            tracing::info!(label, spec = %spec, "created a CA key pair");
            Ok(ObjectStatus::Created)
        })
    }

    /// The kind of the existing CA key `label`: RSA by modulus size, EC by CKA_EC_PARAMS.
    /// [`HsmError::CaKeyMissing`] if there is none, [`HsmError::CaKeyUnsupported`] for
    /// other sizes and curves.
    pub fn ca_key_spec(&self, label: &str) -> Result<CaKeySpec, HsmError> {
        let _span = tracing::debug_span!("hsm.ca_key_spec", label).entered();
        check_ca_label(label)?;
        self.with_session(|s| Ok(self.ca_private(s, label)?.1))
    }

    /// The DER `SubjectPublicKeyInfo` of the CA key `label`: `rsaEncryption` (NULL
    /// parameters) from the modulus and exponent of the private key object, or
    /// `id-ecPublicKey` with `namedCurve secp384r1` and the uncompressed point from the
    /// public key object (CKA_EC_POINT, a DER OCTET STRING, unwrapped).
    pub fn ca_public_key_der(&self, label: &str) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.ca_public_key_der", label).entered();
        check_ca_label(label)?;
        self.with_session(|s| {
            let (private, spec) = self.ca_private(s, label)?;
            if spec.rsa_bits().is_some() {
                let (n, e) = read_rsa_public(s, private)
                    .map_err(|e| self.classify(e, false))?
                    .ok_or(HsmError::Token("CA key lacks modulus or exponent"))?;
                return rsa_spki_der(&n, &e);
            }
            let public = find_unique(s, label, ObjectClass::PUBLIC_KEY)?
                .ok_or(HsmError::Token("CA private key without its public key"))?;
            let point =
                read_ec_point(s, public, Curve::P384, "CA public key is not a P-384 point")?;
            Curve::P384.spki_der(&point)
        })
    }

    /// Signs `data` with the CA key `label`, inside the HSM.
    ///
    /// - RSA: CKM_SHA384_RSA_PKCS; returns the PKCS#1 v1.5 signature (modulus length), the
    ///   BIT STRING content of `sha384WithRSAEncryption`.
    /// - EC P-384: SHA-384 of `data` in software, then CKM_ECDSA (SoftHSM 2.6.1 has no
    ///   CKM_ECDSA_SHA384); the raw `r || s` becomes a DER `Ecdsa-Sig-Value`, the BIT
    ///   STRING content of `ecdsa-with-SHA384`.
    ///
    /// Test hook: fails with [`HsmError::InjectedFault`] when `TANDEM_TEST_FAIL_CA_SIGN` is
    /// set (see [`TEST_FAIL_CA_SIGN_ENV`]).
    pub fn ca_sign(&self, label: &str, data: &[u8]) -> Result<Vec<u8>, HsmError> {
        let _span = tracing::debug_span!("hsm.ca_sign", label).entered();
        check_ca_label(label)?;
        if ca_sign_fault_injected() {
            tracing::warn!(
                label,
                "CA signing refused: {TEST_FAIL_CA_SIGN_ENV} is set (test fault injection)"
            );
            return Err(HsmError::InjectedFault);
        }
        self.with_session(|s| {
            let (key, spec) = self.ca_private(s, label)?;
            match spec.rsa_bits() {
                Some(bits) => {
                    let signature = s
                        .session
                        .sign(&Mechanism::Sha384RsaPkcs, key, data)
                        .map_err(|e| self.classify(e, false))?;
                    left_pad(strip_leading_zeros(&signature), bits / 8)
                }
                None => {
                    let digest = Sha384::digest(data);
                    let raw = s
                        .session
                        .sign(&Mechanism::Ecdsa, key, &digest)
                        .map_err(|e| self.classify(e, false))?;
                    ecdsa_raw_to_der(&raw)
                }
            }
        })
    }

    /// The private key of CA key pair `label` and its kind, from the cache or the token.
    pub(super) fn ca_private(
        &self,
        s: &PooledSession,
        label: &str,
    ) -> Result<(ObjectHandle, CaKeySpec), HsmError> {
        if let Some(cached) = lock(&self.inner.handles).ca.get(label) {
            return Ok(*cached);
        }
        let handle = find_unique(s, label, ObjectClass::PRIVATE_KEY)?.ok_or_else(|| {
            HsmError::CaKeyMissing {
                label: label.to_owned(),
            }
        })?;
        let spec = describe_ca_key(s, handle)?.map_err(|found| HsmError::CaKeyUnsupported {
            label: label.to_owned(),
            found,
        })?;
        lock(&self.inner.handles)
            .ca
            .insert(label.to_owned(), (handle, spec));
        Ok((handle, spec))
    }
}

/// CA key labels must be non-empty and must not name the KEK or the transport key.
fn check_ca_label(label: &str) -> Result<(), HsmError> {
    if label.is_empty() || label == KEK_LABEL || label == TRANSPORT_KEY_LABEL {
        return Err(HsmError::InvalidArgument(
            "CA key label must be non-empty and not a reserved label",
        ));
    }
    Ok(())
}

/// The [`CaKeySpec`] of a private key object, or a description of what it is instead.
fn describe_ca_key(
    s: &PooledSession,
    key: ObjectHandle,
) -> Result<Result<CaKeySpec, String>, HsmError> {
    let key_type = match s
        .session
        .get_attributes(key, &[AttributeType::KeyType])?
        .into_iter()
        .next()
    {
        Some(Attribute::KeyType(key_type)) => key_type,
        _ => return Err(HsmError::Token("key without CKA_KEY_TYPE")),
    };
    if key_type == KeyType::RSA {
        return Ok(match bit_length(&read_modulus(s, key)?) {
            4096 => Ok(CaKeySpec::Rsa4096),
            3072 => Ok(CaKeySpec::Rsa3072),
            bits => Err(format!("RSA-{bits}")),
        });
    }
    if key_type == KeyType::EC {
        let params = s
            .session
            .get_attributes(key, &[AttributeType::EcParams])?
            .into_iter()
            .find_map(|attr| match attr {
                Attribute::EcParams(v) => Some(v),
                _ => None,
            });
        return Ok(match params {
            Some(p) if Curve::P384.is_named_by(&p) => Ok(CaKeySpec::EcP384),
            _ => Err("EC on another curve".to_owned()),
        });
    }
    Ok(Err(format!("key type {key_type}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_key_spec_names() {
        assert_eq!(CaKeySpec::default(), CaKeySpec::Rsa4096);
        assert_eq!(
            serde_json::to_string(&CaKeySpec::EcP384).unwrap(),
            "\"ec-p384\""
        );
        assert_eq!(
            serde_json::to_string(&CaKeySpec::Rsa4096).unwrap(),
            "\"rsa4096\""
        );
        for name in ["\"rsa3072\"", "\"rsa-3072\""] {
            assert_eq!(
                serde_json::from_str::<CaKeySpec>(name).unwrap(),
                CaKeySpec::Rsa3072
            );
        }
        assert_eq!(CaKeySpec::Rsa4096.to_string(), "RSA-4096");
        assert!(check_ca_label(KEK_LABEL).is_err());
        assert!(check_ca_label("").is_err());
        assert!(check_ca_label("tandem-root-ca").is_ok());
    }
}
