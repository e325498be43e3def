//! The device state file: one JSON document per account (format in `docs/DEVICE_STATE.md`).
//!
//! It holds the PIN-protected device shares, public moduli, clone tokens and identifiers. It
//! never holds `d1'` in clear, the PINs, `d1''`, `p1`, `q1` or `d1`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::hazmat::bigint::bit_length;
use crate::pin::{KeystoreSecret, ProtectedShare};
use crate::types::{CloneToken, DeviceSecret, KeyType};
use crate::{Error, Result};

/// Value of the `"format"` field.
pub const STATE_FORMAT: &str = "tandem-device-state";
/// Value of the `"version"` field.
pub const STATE_VERSION: u32 = 1;

/// Everything the device keeps for one account.
#[derive(Debug, Serialize)]
pub struct DeviceState {
    /// Base URL of the Tandem server.
    pub server_url: String,
    /// Random device identifier (hex in JSON).
    #[serde(with = "hex16")]
    pub device_id: [u8; 16],
    /// Server-assigned account identifier.
    pub account_id: String,
    /// Smart-ID style document number.
    pub document_number: String,
    /// Holder's given name.
    pub given_name: String,
    /// Holder's surname.
    pub surname: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// National identity number.
    pub national_id: String,
    /// Account expiry (Unix seconds).
    pub expires_at_unix: i64,
    /// Authenticates the device to the server; not a key share.
    #[serde(serialize_with = "ser_device_secret")]
    pub device_secret: DeviceSecret,
    /// Argon2 secret input; stands in for the phone's hardware keystore.
    #[serde(serialize_with = "ser_keystore_secret")]
    pub keystore_secret: KeystoreSecret,
    /// The AUTH and SIGN key pairs.
    pub key_pairs: Vec<KeyPairState>,
}

/// What the device keeps for one key pair.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPairState {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// `n1`, big-endian.
    #[serde(with = "crate::serde_b64")]
    pub client_modulus: Vec<u8>,
    /// `n = n1·n2`, big-endian.
    #[serde(with = "crate::serde_b64")]
    pub composite_modulus: Vec<u8>,
    /// `d1'` under the PIN-derived key.
    pub protected_share: ProtectedShare,
    /// Current clone-detection token.
    pub clone_token: CloneToken,
    /// The key pair's X.509 certificate (DER, base64 in JSON), once issued.
    #[serde(
        default,
        with = "crate::serde_b64",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub certificate: Vec<u8>,
}

/// The file as read: same fields plus the format tag and version.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFileIn {
    // Checked beforehand through `Header` (for clear errors); kept here so that
    // `deny_unknown_fields` accepts them.
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: u32,
    server_url: String,
    #[serde(with = "hex16")]
    device_id: [u8; 16],
    account_id: String,
    document_number: String,
    given_name: String,
    surname: String,
    country: String,
    national_id: String,
    expires_at_unix: i64,
    #[serde(deserialize_with = "de_device_secret")]
    device_secret: DeviceSecret,
    #[serde(deserialize_with = "de_keystore_secret")]
    keystore_secret: KeystoreSecret,
    key_pairs: Vec<KeyPairState>,
}

#[derive(Serialize)]
struct StateFileOut<'a> {
    format: &'static str,
    version: u32,
    #[serde(flatten)]
    state: &'a DeviceState,
}

/// Just the header, read first so that a foreign or newer file gets a clear error.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
}

impl DeviceState {
    /// The key pair of the given type.
    pub fn key_pair(&self, key_type: KeyType) -> Option<&KeyPairState> {
        self.key_pairs.iter().find(|k| k.key_type == key_type)
    }

    /// The key pair of the given type, mutably (to store a new clone token).
    pub fn key_pair_mut(&mut self, key_type: KeyType) -> Option<&mut KeyPairState> {
        self.key_pairs.iter_mut().find(|k| k.key_type == key_type)
    }

    /// Serialises the state. The bytes contain the device and keystore secrets, so they are
    /// zeroized on drop; write them only to app-private storage.
    pub fn to_json_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.validate()?;
        let out = StateFileOut {
            format: STATE_FORMAT,
            version: STATE_VERSION,
            state: self,
        };
        Ok(Zeroizing::new(serde_json::to_vec_pretty(&out)?))
    }

    /// Parses and validates a state file. Unknown formats and versions are rejected with
    /// [`Error::InvalidState`] / [`Error::UnsupportedVersion`].
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self> {
        let header: Header =
            serde_json::from_slice(bytes).map_err(|_| Error::InvalidState("not a JSON object"))?;
        if header.format.as_deref() != Some(STATE_FORMAT) {
            return Err(Error::InvalidState("not a tandem-device-state file"));
        }
        match header.version {
            Some(STATE_VERSION) => {}
            Some(version) => {
                return Err(Error::UnsupportedVersion {
                    what: "device state",
                    version,
                });
            }
            None => return Err(Error::InvalidState("missing version")),
        }
        let f: StateFileIn = serde_json::from_slice(bytes)?;
        let state = DeviceState {
            server_url: f.server_url,
            device_id: f.device_id,
            account_id: f.account_id,
            document_number: f.document_number,
            given_name: f.given_name,
            surname: f.surname,
            country: f.country,
            national_id: f.national_id,
            expires_at_unix: f.expires_at_unix,
            device_secret: f.device_secret,
            keystore_secret: f.keystore_secret,
            key_pairs: f.key_pairs,
        };
        state.validate()?;
        Ok(state)
    }

    /// Consistency checks: at most one key pair per type, sane moduli, and protected shares
    /// of a known format whose length matches their modulus.
    pub fn validate(&self) -> Result<()> {
        for (i, kp) in self.key_pairs.iter().enumerate() {
            if self.key_pairs[..i]
                .iter()
                .any(|o| o.key_type == kp.key_type)
            {
                return Err(Error::InvalidState("duplicate key type"));
            }
            let n1_bits = bit_length(&kp.client_modulus);
            if !(2048..=4096).contains(&n1_bits)
                || kp.client_modulus.last().is_none_or(|b| b & 1 == 0)
            {
                return Err(Error::InvalidState("bad client modulus"));
            }
            if bit_length(&kp.composite_modulus) <= n1_bits {
                return Err(Error::InvalidState("bad composite modulus"));
            }
            kp.protected_share.validate()?;
            if kp.protected_share.ciphertext.len() != n1_bits.div_ceil(8) {
                return Err(Error::InvalidState("share length does not match modulus"));
            }
        }
        Ok(())
    }
}

fn ser_device_secret<S: Serializer>(
    v: &DeviceSecret,
    s: S,
) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_str(&Zeroizing::new(B64.encode(v.expose_secret())))
}

fn ser_keystore_secret<S: Serializer>(
    v: &KeystoreSecret,
    s: S,
) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_base64())
}

fn secret_bytes<'de, D: Deserializer<'de>>(
    d: D,
) -> core::result::Result<Zeroizing<Vec<u8>>, D::Error> {
    let s = Zeroizing::new(String::deserialize(d)?);
    B64.decode(s.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| serde::de::Error::custom("invalid base64"))
}

fn de_device_secret<'de, D: Deserializer<'de>>(
    d: D,
) -> core::result::Result<DeviceSecret, D::Error> {
    DeviceSecret::from_slice(&secret_bytes(d)?).map_err(|_| serde::de::Error::custom("bad length"))
}

fn de_keystore_secret<'de, D: Deserializer<'de>>(
    d: D,
) -> core::result::Result<KeystoreSecret, D::Error> {
    KeystoreSecret::from_bytes(&secret_bytes(d)?)
        .map_err(|_| serde::de::Error::custom("bad length"))
}

mod hex16 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 16];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|_| serde::de::Error::custom("expected 32 hex digits"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hazmat::bigint::multiply;
    use crate::keys::generate_with_primes;
    use crate::pin::{KdfParams, Pin};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn sample_state(rng: &mut StdRng, kp: Vec<KeyPairState>) -> DeviceState {
        DeviceState {
            server_url: "https://tandem.example:8443".into(),
            device_id: [7u8; 16],
            account_id: "acc-1".into(),
            document_number: "PNOEE-30303039914-MOCK-Q".into(),
            given_name: "Mari".into(),
            surname: "Maasikas".into(),
            country: "EE".into(),
            national_id: "30303039914".into(),
            expires_at_unix: 1_900_000_000,
            device_secret: DeviceSecret::generate(rng),
            keystore_secret: KeystoreSecret::generate(rng),
            key_pairs: kp,
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    /// Every encoding of `secret` we could plausibly leak: raw bytes, hex, and base64 at
    /// every alignment (a value can sit inside a bigger base64 blob).
    fn leaks(json: &[u8], secret: &[u8]) -> bool {
        let mut forms = vec![
            secret.to_vec(),
            hex::encode(secret).into_bytes(),
            hex::encode_upper(secret).into_bytes(),
        ];
        for off in 0..3 {
            let b = B64.encode(&secret[off..]);
            // Drop the last 4 chars: they depend on padding.
            forms.push(b.as_bytes()[..b.len() - 4].to_vec());
        }
        forms.iter().any(|f| contains(json, f))
    }

    // 2048-bit keys: for tests only.
    #[test]
    fn state_never_contains_key_material_or_pin() {
        let mut rng = StdRng::seed_from_u64(99);
        let (km, p, q) = generate_with_primes(&mut rng, 2048).unwrap();
        let ks = KeystoreSecret::generate(&mut rng);
        let pin = Pin::new("482913").unwrap();
        let ps =
            ProtectedShare::protect(&km.device_share, &pin, &ks, KdfParams::testing(), &mut rng)
                .unwrap();
        let n2 = {
            let k = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
            rsa::traits::PublicKeyParts::n(&k).to_bytes_be()
        };
        let kp = KeyPairState {
            key_type: KeyType::Auth,
            composite_modulus: multiply(&km.modulus, &n2),
            client_modulus: km.modulus.clone(),
            protected_share: ps,
            clone_token: CloneToken::generate(&mut rng),
            certificate: Vec::new(),
        };
        let mut state = sample_state(&mut rng, vec![kp]);
        state.keystore_secret = ks;
        let json = state.to_json_bytes().unwrap();

        // Sanity: the detector finds what is there.
        assert!(leaks(&json, &km.modulus));
        assert!(leaks(&json, state.keystore_secret.expose_secret()));

        assert!(
            !leaks(&json, km.device_share.expose_secret()),
            "d1' in clear"
        );
        assert!(!leaks(&json, km.server_share.expose_secret()), "d1''");
        assert!(!leaks(&json, &p), "p");
        assert!(!leaks(&json, &q), "q");
        assert!(!contains(&json, b"482913"), "PIN");

        // And it round-trips to a state that still unlocks the share.
        let back = DeviceState::from_json_bytes(&json).unwrap();
        let share = back
            .key_pair(KeyType::Auth)
            .unwrap()
            .protected_share
            .unlock(&pin, &back.keystore_secret)
            .unwrap();
        assert_eq!(share.expose_secret(), km.device_share.expose_secret());
        assert_eq!(back.device_id, [7u8; 16]);
        assert_eq!(
            back.device_secret.expose_secret(),
            state.device_secret.expose_secret()
        );
        assert!(back.key_pair(KeyType::Sign).is_none());
        // Debug output does not show the secrets.
        let dbg = format!("{state:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&*state.keystore_secret.to_base64()));
    }

    #[test]
    fn header_checks() {
        let mut rng = StdRng::seed_from_u64(5);
        let state = sample_state(&mut rng, vec![]);
        let json = state.to_json_bytes().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["format"], "tandem-device-state");
        assert_eq!(v["version"], 1);
        assert_eq!(v["device_id"], "07".repeat(16));
        DeviceState::from_json_bytes(&json).unwrap();

        let mut v2 = v.clone();
        v2["version"] = 2.into();
        let err = DeviceState::from_json_bytes(&serde_json::to_vec(&v2).unwrap()).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedVersion { version: 2, .. }),
            "{err}"
        );

        let mut f = v.clone();
        f["format"] = "something-else".into();
        assert!(matches!(
            DeviceState::from_json_bytes(&serde_json::to_vec(&f).unwrap()),
            Err(Error::InvalidState(_))
        ));

        let mut extra = v.clone();
        extra["pin"] = "1234".into();
        assert!(DeviceState::from_json_bytes(&serde_json::to_vec(&extra).unwrap()).is_err());

        assert!(matches!(
            DeviceState::from_json_bytes(b"[1,2]"),
            Err(Error::InvalidState(_))
        ));
        // A malformed secret does not echo its value in the error.
        let mut bad = v;
        bad["device_secret"] = "c2VjcmV0LXZhbHVl".into();
        let err = DeviceState::from_json_bytes(&serde_json::to_vec(&bad).unwrap()).unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0LXZhbHVl"));
    }
}
