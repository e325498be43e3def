//! Finding token objects by label and reading the public attributes of keys (modulus, RSA
//! public parts, EC point): the lowest layer above the session pool, used by every module
//! that looks a key up.

use cryptoki::error::Error as CryptokiError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};

use super::HsmError;
use super::der_encoding::{Curve, unwrap_ec_point};
use super::sessions::PooledSession;

/// The one token object of `class` labelled `label`, if any; two are [`HsmError::Ambiguous`].
pub(super) fn find_unique(
    s: &PooledSession,
    label: &str,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>, HsmError> {
    let found = s.session.find_objects(&[
        Attribute::Token(true),
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(HsmError::Ambiguous {
            label: label.to_owned(),
            kind: "object",
        }),
    }
}

/// The modulus of an RSA key object.
pub(super) fn read_modulus(s: &PooledSession, key: ObjectHandle) -> Result<Vec<u8>, HsmError> {
    let attrs = s.session.get_attributes(key, &[AttributeType::Modulus])?;
    match attrs.into_iter().next() {
        Some(Attribute::Modulus(n)) if !n.is_empty() => Ok(n),
        _ => Err(HsmError::Token("RSA key without a modulus")),
    }
}

/// Big-endian modulus and public exponent of an RSA key.
pub(super) type RsaPublicParts = (Vec<u8>, Vec<u8>);

/// Modulus and public exponent of an RSA key object, `None` if one is missing.
pub(super) fn read_rsa_public(
    s: &PooledSession,
    key: ObjectHandle,
) -> Result<Option<RsaPublicParts>, CryptokiError> {
    let attrs = s.session.get_attributes(
        key,
        &[AttributeType::Modulus, AttributeType::PublicExponent],
    )?;
    let mut n = None;
    let mut e = None;
    for attr in attrs {
        match attr {
            Attribute::Modulus(v) if !v.is_empty() => n = Some(v),
            Attribute::PublicExponent(v) if !v.is_empty() => e = Some(v),
            _ => {}
        }
    }
    Ok(n.zip(e))
}

/// The uncompressed point of EC public key object `public`, which must be on `curve`;
/// anything else is `HsmError::Token(wrong)`.
pub(super) fn read_ec_point(
    s: &PooledSession,
    public: ObjectHandle,
    curve: Curve,
    wrong: &'static str,
) -> Result<Vec<u8>, HsmError> {
    let attrs = s
        .session
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])?;
    let mut found_params = None;
    let mut point = None;
    for attr in attrs {
        match attr {
            Attribute::EcParams(v) => found_params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    if !found_params.is_some_and(|p| curve.is_named_by(&p)) {
        return Err(HsmError::Token(wrong));
    }
    let point = point.ok_or(HsmError::Token(wrong))?;
    Ok(unwrap_ec_point(&point, curve.point_len())
        .map_err(|_| HsmError::Token(wrong))?
        .to_vec())
}
