//! Objects: a set of attributes, each stored as the bytes PKCS#11 defines for it
//! (`CK_BBOOL` is one byte, `CK_ULONG` is native-endian, arrays are concatenated).
//!
//! Every value is held in a [`Zeroizing`] buffer, because some of them (private exponents,
//! primes, secret key values) are key material; `Debug` never prints values.

use std::collections::BTreeMap;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::error::{Result, ck};
use crate::vendor::{CKK_TANDEM_SHARE, SHARE_MAX_BITS, SHARE_MIN_BITS};

/// `CK_UNAVAILABLE_INFORMATION`: the length reported for an attribute that cannot be read.
pub const CK_UNAVAILABLE_INFORMATION: CK_ULONG = CK_ULONG::MAX;

/// An attribute value as raw PKCS#11 bytes.
pub type Value = Zeroizing<Vec<u8>>;

/// A template handed in by the caller: (type, value) pairs in the caller's order.
pub type Template = Vec<(CK_ATTRIBUTE_TYPE, Value)>;

/// How an attribute's bytes are laid out, used to reject malformed template values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Ulong,
    Bytes,
    UlongArray,
}

const ULONG_LEN: usize = std::mem::size_of::<CK_ULONG>();

fn kind(attr: CK_ATTRIBUTE_TYPE) -> Option<Kind> {
    Some(match attr {
        CKA_TOKEN
        | CKA_PRIVATE
        | CKA_MODIFIABLE
        | CKA_COPYABLE
        | CKA_DESTROYABLE
        | CKA_SENSITIVE
        | CKA_EXTRACTABLE
        | CKA_ALWAYS_SENSITIVE
        | CKA_NEVER_EXTRACTABLE
        | CKA_LOCAL
        | CKA_DERIVE
        | CKA_ENCRYPT
        | CKA_DECRYPT
        | CKA_SIGN
        | CKA_SIGN_RECOVER
        | CKA_VERIFY
        | CKA_VERIFY_RECOVER
        | CKA_WRAP
        | CKA_UNWRAP
        | CKA_TRUSTED
        | CKA_WRAP_WITH_TRUSTED
        | CKA_ALWAYS_AUTHENTICATE => Kind::Bool,
        CKA_CLASS | CKA_KEY_TYPE | CKA_MODULUS_BITS | CKA_VALUE_LEN | CKA_KEY_GEN_MECHANISM => {
            Kind::Ulong
        }
        CKA_ALLOWED_MECHANISMS => Kind::UlongArray,
        CKA_LABEL | CKA_ID | CKA_APPLICATION | CKA_OBJECT_ID | CKA_SUBJECT | CKA_VALUE
        | CKA_MODULUS | CKA_PUBLIC_EXPONENT | CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2
        | CKA_EXPONENT_1 | CKA_EXPONENT_2 | CKA_COEFFICIENT | CKA_EC_PARAMS | CKA_EC_POINT
        | CKA_START_DATE | CKA_END_DATE | CKA_PUBLIC_KEY_INFO => Kind::Bytes,
        _ => return None,
    })
}

/// Attributes that hold secret key material: never revealed while the object is sensitive
/// or not extractable.
pub fn is_secret_attribute(class: CK_OBJECT_CLASS, attr: CK_ATTRIBUTE_TYPE) -> bool {
    match attr {
        CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1 | CKA_EXPONENT_2
        | CKA_COEFFICIENT => true,
        CKA_VALUE => matches!(class, CKO_SECRET_KEY | CKO_PRIVATE_KEY),
        _ => false,
    }
}

/// Checks that every type in `template` is known and its value has the right shape.
pub fn validate_template(template: &Template) -> Result<()> {
    for (attr, value) in template {
        match kind(*attr) {
            None => return ck(CKR_ATTRIBUTE_TYPE_INVALID),
            Some(Kind::Bool) if value.len() != 1 || value[0] > 1 => {
                return ck(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            Some(Kind::Ulong) if value.len() != ULONG_LEN => {
                return ck(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            Some(Kind::UlongArray) if !value.len().is_multiple_of(ULONG_LEN) => {
                return ck(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Encodes a `CK_BBOOL`.
pub fn bool_value(b: bool) -> Value {
    Zeroizing::new(vec![if b { CK_TRUE } else { CK_FALSE }])
}

/// Encodes a `CK_ULONG`.
pub fn ulong_value(v: CK_ULONG) -> Value {
    Zeroizing::new(v.to_ne_bytes().to_vec())
}

/// Decodes a `CK_ULONG` (the template has been validated).
pub fn ulong_of(value: &[u8]) -> Option<CK_ULONG> {
    let bytes: [u8; ULONG_LEN] = value.try_into().ok()?;
    Some(CK_ULONG::from_ne_bytes(bytes))
}

/// Finds the last value for `attr` in a template.
pub fn template_get(template: &Template, attr: CK_ATTRIBUTE_TYPE) -> Option<&Value> {
    template
        .iter()
        .rev()
        .find(|(t, _)| *t == attr)
        .map(|(_, v)| v)
}

/// A boolean from a template, if present.
pub fn template_bool(template: &Template, attr: CK_ATTRIBUTE_TYPE) -> Option<bool> {
    template_get(template, attr).map(|v| v.first() == Some(&CK_TRUE))
}

/// A `CK_ULONG` from a template, if present.
pub fn template_ulong(template: &Template, attr: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
    template_get(template, attr).and_then(|v| ulong_of(v))
}

/// One PKCS#11 object. `Clone` copies its (zeroizing) attribute values: a job that runs
/// with the module unlocked works on a copy of its key.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Object {
    attrs: BTreeMap<CK_ATTRIBUTE_TYPE, Value>,
    /// RSA private keys: a signature or decryption does not convert eight numbers and set up
    /// Montgomery contexts and blinding again each time.
    rsa: KeyCache<openssl::rsa::Rsa<openssl::pkey::Private>>,
    /// EC private keys: building one computes the public point (a scalar multiplication),
    /// which cost as much as the ECDSA signature itself.
    ec: KeyCache<openssl::ec::EcKey<openssl::pkey::Private>>,
}

/// The OpenSSL form of a private key object, built on its first use and shared by the
/// object's copies. Cleared whenever an attribute is set.
#[derive(Clone)]
struct KeyCache<K>(std::sync::Arc<std::sync::OnceLock<K>>);

impl<K> Default for KeyCache<K> {
    fn default() -> Self {
        Self(std::sync::Arc::default())
    }
}

impl<K> PartialEq for KeyCache<K> {
    /// A cache never makes two objects differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<K> Eq for KeyCache<K> {}

impl<K: Clone> KeyCache<K> {
    /// The cached key, or the one `build` makes (kept; a reference-counted handle is
    /// returned).
    fn get_or_build<E>(
        &self,
        build: impl FnOnce() -> std::result::Result<K, E>,
    ) -> std::result::Result<K, E> {
        if let Some(k) = self.0.get() {
            return Ok(k.clone());
        }
        let k = build()?;
        // Another thread may have built it meanwhile; either copy is the same key.
        Ok(self.0.get_or_init(|| k).clone())
    }
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("class", &self.class())
            .field("attributes", &self.attrs.keys().collect::<Vec<_>>())
            .field("values", &"<redacted>")
            .finish()
    }
}

impl Object {
    /// All attributes, for serialisation.
    pub fn attributes(&self) -> impl Iterator<Item = (&CK_ATTRIBUTE_TYPE, &Value)> {
        self.attrs.iter()
    }

    /// Sets an attribute unconditionally (the caller has checked the rules).
    pub fn set(&mut self, attr: CK_ATTRIBUTE_TYPE, value: Value) {
        self.attrs.insert(attr, value);
        self.clear_caches();
    }

    /// Sets an attribute only when it is not there yet.
    pub fn set_default(&mut self, attr: CK_ATTRIBUTE_TYPE, value: Value) {
        self.attrs.entry(attr).or_insert(value);
        self.clear_caches();
    }

    fn clear_caches(&mut self) {
        self.rsa = KeyCache::default();
        self.ec = KeyCache::default();
    }

    /// The object's EC private key in OpenSSL form, built by `build` on first use and kept.
    pub fn ec_private<E>(
        &self,
        build: impl FnOnce(&Self) -> std::result::Result<openssl::ec::EcKey<openssl::pkey::Private>, E>,
    ) -> std::result::Result<openssl::ec::EcKey<openssl::pkey::Private>, E> {
        self.ec.get_or_build(|| build(self))
    }

    /// The object's RSA private key in OpenSSL form, built by `build` on first use and kept.
    pub fn rsa_private<E>(
        &self,
        build: impl FnOnce(&Self) -> std::result::Result<openssl::rsa::Rsa<openssl::pkey::Private>, E>,
    ) -> std::result::Result<openssl::rsa::Rsa<openssl::pkey::Private>, E> {
        self.rsa.get_or_build(|| build(self))
    }

    /// The raw value of an attribute.
    pub fn get(&self, attr: CK_ATTRIBUTE_TYPE) -> Option<&Value> {
        self.attrs.get(&attr)
    }

    /// A boolean attribute; absent means `false`.
    pub fn flag(&self, attr: CK_ATTRIBUTE_TYPE) -> bool {
        self.get(attr).is_some_and(|v| v.first() == Some(&CK_TRUE))
    }

    /// A `CK_ULONG` attribute.
    pub fn ulong(&self, attr: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.get(attr).and_then(|v| ulong_of(v))
    }

    /// `CKA_CLASS`.
    pub fn class(&self) -> Option<CK_OBJECT_CLASS> {
        self.ulong(CKA_CLASS)
    }

    /// `CKA_KEY_TYPE`.
    pub fn key_type(&self) -> Option<CK_KEY_TYPE> {
        self.ulong(CKA_KEY_TYPE)
    }

    /// `CKA_TOKEN`.
    pub fn is_token(&self) -> bool {
        self.flag(CKA_TOKEN)
    }

    /// `CKA_PRIVATE`.
    pub fn is_private(&self) -> bool {
        self.flag(CKA_PRIVATE)
    }

    /// Whether the object matches every (type, value) pair of a search template.
    pub fn matches(&self, template: &Template) -> bool {
        template.iter().all(|(attr, value)| {
            self.get(*attr)
                .is_some_and(|v| v.as_slice() == value.as_slice())
        })
    }

    /// What `C_GetAttributeValue` may reveal about `attr`.
    pub fn read(&self, attr: CK_ATTRIBUTE_TYPE) -> AttributeRead {
        let class = self.class().unwrap_or(CKO_DATA);
        match self.get(attr) {
            None => AttributeRead::Invalid,
            Some(_)
                if is_secret_attribute(class, attr)
                    && (self.flag(CKA_SENSITIVE) || !self.flag(CKA_EXTRACTABLE)) =>
            {
                AttributeRead::Sensitive
            }
            Some(v) => AttributeRead::Value(v.clone()),
        }
    }

    /// Applies one `C_SetAttributeValue` template, all or nothing.
    pub fn modify(&mut self, template: &Template) -> Result<()> {
        validate_template(template)?;
        if !self.flag(CKA_MODIFIABLE) {
            return ck(CKR_ACTION_PROHIBITED);
        }
        for (attr, value) in template {
            let new = value.first() == Some(&CK_TRUE);
            match *attr {
                CKA_LABEL | CKA_ID | CKA_SUBJECT | CKA_APPLICATION | CKA_START_DATE
                | CKA_END_DATE | CKA_ENCRYPT | CKA_DECRYPT | CKA_SIGN | CKA_VERIFY
                | CKA_SIGN_RECOVER | CKA_VERIFY_RECOVER | CKA_WRAP | CKA_UNWRAP | CKA_DERIVE => {}
                // May only become stricter.
                CKA_SENSITIVE if new || !self.flag(CKA_SENSITIVE) => {}
                CKA_EXTRACTABLE if !new || self.flag(CKA_EXTRACTABLE) => {}
                CKA_SENSITIVE | CKA_EXTRACTABLE => return ck(CKR_ATTRIBUTE_READ_ONLY),
                _ => return ck(CKR_ATTRIBUTE_READ_ONLY),
            }
            if matches!(
                *attr,
                CKA_ENCRYPT
                    | CKA_DECRYPT
                    | CKA_SIGN
                    | CKA_VERIFY
                    | CKA_SIGN_RECOVER
                    | CKA_VERIFY_RECOVER
                    | CKA_WRAP
                    | CKA_UNWRAP
                    | CKA_DERIVE
                    | CKA_SENSITIVE
                    | CKA_EXTRACTABLE
            ) && self.get(*attr).is_none()
            {
                return ck(CKR_ATTRIBUTE_TYPE_INVALID);
            }
        }
        for (attr, value) in template {
            self.set(*attr, value.clone());
        }
        Ok(())
    }
}

/// The outcome of reading one attribute. `Debug` does not show values.
pub enum AttributeRead {
    /// The value may be revealed.
    Value(Value),
    /// The value is secret key material of a sensitive or non-extractable key.
    Sensitive,
    /// The object has no such attribute.
    Invalid,
}

impl std::fmt::Debug for AttributeRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttributeRead::Value(v) => write!(f, "Value(<{} bytes redacted>)", v.len()),
            AttributeRead::Sensitive => f.write_str("Sensitive"),
            AttributeRead::Invalid => f.write_str("Invalid"),
        }
    }
}

/// Attributes a caller may never put in a creation or generation template.
const READ_ONLY_ON_CREATE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_LOCAL,
    CKA_ALWAYS_SENSITIVE,
    CKA_NEVER_EXTRACTABLE,
    CKA_KEY_GEN_MECHANISM,
];

/// Builds an object from a caller template plus the defaults of its class.
/// `generated` is `Some(mechanism)` for keys made inside the token.
pub fn build(template: &Template, generated: Option<CK_MECHANISM_TYPE>) -> Result<Object> {
    validate_template(template)?;
    if template
        .iter()
        .any(|(t, _)| READ_ONLY_ON_CREATE.contains(t))
    {
        return ck(CKR_ATTRIBUTE_READ_ONLY);
    }
    let mut obj = Object::default();
    for (attr, value) in template {
        obj.set(*attr, value.clone());
    }
    let class = obj
        .class()
        .ok_or(crate::error::Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
    let is_key = matches!(class, CKO_SECRET_KEY | CKO_PRIVATE_KEY | CKO_PUBLIC_KEY);
    obj.set_default(CKA_TOKEN, bool_value(false));
    obj.set_default(
        CKA_PRIVATE,
        bool_value(matches!(class, CKO_SECRET_KEY | CKO_PRIVATE_KEY)),
    );
    obj.set_default(CKA_MODIFIABLE, bool_value(true));
    obj.set_default(CKA_COPYABLE, bool_value(true));
    obj.set_default(CKA_DESTROYABLE, bool_value(true));
    obj.set_default(CKA_LABEL, Zeroizing::new(Vec::new()));
    match class {
        CKO_DATA => {
            obj.set_default(CKA_APPLICATION, Zeroizing::new(Vec::new()));
            obj.set_default(CKA_VALUE, Zeroizing::new(Vec::new()));
            obj.set_default(CKA_OBJECT_ID, Zeroizing::new(Vec::new()));
        }
        CKO_SECRET_KEY | CKO_PRIVATE_KEY | CKO_PUBLIC_KEY => {}
        _ => return ck(CKR_ATTRIBUTE_VALUE_INVALID),
    }
    if is_key {
        if obj.key_type().is_none() {
            return ck(CKR_TEMPLATE_INCOMPLETE);
        }
        obj.set_default(CKA_ID, Zeroizing::new(Vec::new()));
        obj.set_default(CKA_DERIVE, bool_value(false));
        obj.set(CKA_LOCAL, bool_value(generated.is_some()));
        obj.set(
            CKA_KEY_GEN_MECHANISM,
            ulong_value(generated.unwrap_or(CK_UNAVAILABLE_INFORMATION)),
        );
        obj.set_default(CKA_START_DATE, Zeroizing::new(Vec::new()));
        obj.set_default(CKA_END_DATE, Zeroizing::new(Vec::new()));
    }
    match class {
        CKO_PUBLIC_KEY => {
            for a in [CKA_ENCRYPT, CKA_VERIFY, CKA_VERIFY_RECOVER, CKA_WRAP] {
                obj.set_default(a, bool_value(true));
            }
            obj.set_default(CKA_TRUSTED, bool_value(false));
            obj.set_default(CKA_SUBJECT, Zeroizing::new(Vec::new()));
        }
        CKO_PRIVATE_KEY | CKO_SECRET_KEY => {
            // Safe defaults: secret material stays inside unless the template says otherwise.
            obj.set_default(CKA_SENSITIVE, bool_value(true));
            obj.set_default(CKA_EXTRACTABLE, bool_value(false));
            if obj.key_type() == Some(CKK_TANDEM_SHARE) {
                // A share only signs (CKM_TANDEM_SHARE_EXP); other usages default off.
                for a in [CKA_ENCRYPT, CKA_DECRYPT, CKA_VERIFY, CKA_WRAP, CKA_UNWRAP] {
                    obj.set_default(a, bool_value(false));
                }
            }
            let usage: &[CK_ATTRIBUTE_TYPE] = if class == CKO_PRIVATE_KEY {
                &[CKA_DECRYPT, CKA_SIGN, CKA_SIGN_RECOVER, CKA_UNWRAP]
            } else {
                &[
                    CKA_ENCRYPT,
                    CKA_DECRYPT,
                    CKA_SIGN,
                    CKA_VERIFY,
                    CKA_WRAP,
                    CKA_UNWRAP,
                ]
            };
            for a in usage {
                obj.set_default(*a, bool_value(true));
            }
            obj.set_default(CKA_WRAP_WITH_TRUSTED, bool_value(false));
            obj.set_default(CKA_ALWAYS_AUTHENTICATE, bool_value(false));
            if class == CKO_PRIVATE_KEY {
                obj.set_default(CKA_SUBJECT, Zeroizing::new(Vec::new()));
            } else {
                obj.set_default(CKA_TRUSTED, bool_value(false));
            }
            let sensitive = obj.flag(CKA_SENSITIVE);
            let extractable = obj.flag(CKA_EXTRACTABLE);
            obj.set(
                CKA_ALWAYS_SENSITIVE,
                bool_value(generated.is_some() && sensitive),
            );
            obj.set(
                CKA_NEVER_EXTRACTABLE,
                bool_value(generated.is_some() && !extractable),
            );
        }
        _ => {}
    }
    check_key_material(&mut obj, class)?;
    Ok(obj)
}

/// Checks that a key holds the attributes its type needs, and fills derived ones.
fn check_key_material(obj: &mut Object, class: CK_OBJECT_CLASS) -> Result<()> {
    let need = |o: &Object, attrs: &[CK_ATTRIBUTE_TYPE]| -> Result<()> {
        if attrs
            .iter()
            .all(|a| o.get(*a).is_some_and(|v| !v.is_empty()))
        {
            Ok(())
        } else {
            ck(CKR_TEMPLATE_INCOMPLETE)
        }
    };
    match (class, obj.key_type()) {
        (CKO_DATA, _) => Ok(()),
        (CKO_PUBLIC_KEY, Some(CKK_RSA)) => {
            need(obj, &[CKA_MODULUS, CKA_PUBLIC_EXPONENT])?;
            let bits = obj.get(CKA_MODULUS).map_or(0, |m| bit_len(m));
            obj.set(CKA_MODULUS_BITS, ulong_value(bits as CK_ULONG));
            Ok(())
        }
        (CKO_PRIVATE_KEY, Some(CKK_RSA)) => {
            need(
                obj,
                &[CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT],
            )?;
            // Either every CRT component or none: a non-CRT key (n, e, d) is used with
            // CKM_RSA_X_509 only (crypto::rsa_is_non_crt; the server's token-rsa shares).
            const CRT: [CK_ATTRIBUTE_TYPE; 5] = [
                CKA_PRIME_1,
                CKA_PRIME_2,
                CKA_EXPONENT_1,
                CKA_EXPONENT_2,
                CKA_COEFFICIENT,
            ];
            if CRT.iter().all(|a| obj.get(*a).is_none_or(|v| v.is_empty())) {
                Ok(())
            } else {
                need(obj, &CRT)
            }
        }
        (CKO_PUBLIC_KEY, Some(CKK_EC)) => {
            need(obj, &[CKA_EC_PARAMS, CKA_EC_POINT])?;
            crate::crypto::ec_check_public(obj)
        }
        (CKO_PRIVATE_KEY, Some(CKK_EC)) => {
            need(obj, &[CKA_EC_PARAMS, CKA_VALUE])?;
            crate::crypto::ec_check_private(obj)
        }
        (CKO_SECRET_KEY, Some(CKK_AES)) => {
            need(obj, &[CKA_VALUE])?;
            let len = obj.get(CKA_VALUE).map_or(0, |v| v.len());
            if !matches!(len, 16 | 24 | 32) {
                return ck(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            obj.set(CKA_VALUE_LEN, ulong_value(len as CK_ULONG));
            Ok(())
        }
        (CKO_SECRET_KEY, Some(CKK_GENERIC_SECRET)) => {
            need(obj, &[CKA_VALUE])?;
            let len = obj.get(CKA_VALUE).map_or(0, |v| v.len());
            obj.set(CKA_VALUE_LEN, ulong_value(len as CK_ULONG));
            Ok(())
        }
        (CKO_SECRET_KEY, Some(CKK_TANDEM_SHARE)) => {
            need(obj, &[CKA_VALUE, CKA_MODULUS])?;
            // Always sensitive, never extractable: the share never leaves the token. Always
            // private: it is usable only by the logged-in user.
            if !obj.flag(CKA_SENSITIVE) || obj.flag(CKA_EXTRACTABLE) || !obj.is_private() {
                return ck(CKR_TEMPLATE_INCONSISTENT);
            }
            let n = obj.get(CKA_MODULUS).map_or(&[][..], |v| v.as_slice());
            let bits = bit_len(n);
            if !(SHARE_MIN_BITS..=SHARE_MAX_BITS).contains(&bits)
                || n.last().is_none_or(|b| b & 1 == 0)
            {
                return ck(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            let d = obj.get(CKA_VALUE).map_or(&[][..], |v| v.as_slice());
            if !share_value_valid(d, n) {
                return ck(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            obj.set(CKA_MODULUS_BITS, ulong_value(bits as CK_ULONG));
            Ok(())
        }
        _ => ck(CKR_TEMPLATE_INCONSISTENT),
    }
}

/// Whether `d` (big-endian) is a usable share for modulus `n` (big-endian): non-zero, not
/// longer than the modulus, and below it. Leading zero bytes are allowed.
pub fn share_value_valid(d: &[u8], n: &[u8]) -> bool {
    let strip = |v: &[u8]| -> usize { v.iter().position(|b| *b != 0).unwrap_or(v.len()) };
    let (d_sig, n_sig) = (&d[strip(d)..], &n[strip(n)..]);
    !d_sig.is_empty()
        && d.len() <= n_sig.len()
        && (d_sig.len() < n_sig.len() || (d_sig.len() == n_sig.len() && d_sig < n_sig))
}

/// Bit length of a big-endian unsigned integer.
pub fn bit_len(be: &[u8]) -> usize {
    match be.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
    }
}
