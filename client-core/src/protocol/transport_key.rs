//! The server's key-transport key and the form in which it keeps `d1''`: checked once, before
//! the device generates keys or seals anything to it.

use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;

use crate::envelope::{MAX_WRAPPED_LEN, MIN_WRAPPED_LEN};
use crate::{Error, Result};

/// The kind of a [`TransportKey`], which decides the envelope algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKeyKind {
    /// EC P-256: envelopes of algorithm `0x02` (ECDH).
    EcP256,
    /// RSA of `bits` bits (2048 to 8192): envelopes of algorithm `0x01` (RSA-OAEP), and the
    /// share-key envelope `0x03`.
    Rsa {
        /// Modulus length.
        bits: usize,
    },
}

/// The server's key-transport public key (`ServerInfo.transport_public_key_der`), checked: an
/// EC P-256 key or an RSA key of 2048 to 8192 bits, as DER `SubjectPublicKeyInfo`. Anything
/// else is refused with [`Error::InvalidTransportKey`] before it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct TransportKey {
    der: Vec<u8>,
    kind: TransportKeyKind,
}

impl TransportKey {
    /// Parses and checks a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let kind = if p256::PublicKey::from_public_key_der(der).is_ok() {
            TransportKeyKind::EcP256
        } else {
            let key =
                RsaPublicKey::from_public_key_der(der).map_err(|_| Error::InvalidTransportKey)?;
            if !(MIN_WRAPPED_LEN..=MAX_WRAPPED_LEN).contains(&key.size()) {
                return Err(Error::InvalidTransportKey);
            }
            TransportKeyKind::Rsa {
                bits: key.n().bits(),
            }
        };
        Ok(Self {
            der: der.to_vec(),
            kind,
        })
    }

    /// The key as DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.der
    }

    /// EC or RSA.
    pub fn kind(&self) -> TransportKeyKind {
        self.kind
    }

    /// Refuses a share form this key cannot carry: [`ShareForm::RsaKey`] needs an RSA key
    /// (the HSM unwraps the content key with RSA-OAEP), else [`Error::TransportKeyNotRsa`].
    pub fn check_share_form(&self, form: ShareForm) -> Result<()> {
        match (form, self.kind) {
            (ShareForm::RsaKey, TransportKeyKind::EcP256) => Err(Error::TransportKeyNotRsa),
            _ => Ok(()),
        }
    }
}

impl core::fmt::Debug for TransportKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TransportKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The form in which the server keeps `d1''` (`ServerInfo.server_share_form`), and so what
/// the device sends it at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareForm {
    /// `d1''` itself, sealed to the transport key.
    Exponent,
    /// `d1''` as a non-CRT RSA key for the server's HSM
    /// ([`crate::keys::generate_client_key_for_token`]); needs an RSA transport key.
    RsaKey,
}

impl ShareForm {
    /// The wire number (`ServerShareForm`): 0 or 1; another is refused with
    /// [`Error::UnsupportedShareForm`] (this device cannot produce it).
    pub fn from_number(n: i32) -> Result<Self> {
        match n {
            0 => Ok(Self::Exponent),
            1 => Ok(Self::RsaKey),
            other => Err(Error::UnsupportedShareForm(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rsa::pkcs8::EncodePublicKey;

    // 2048-bit RSA: for tests only.
    #[test]
    fn accepts_p256_and_rsa_in_range_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let ec = p256::SecretKey::random(&mut rng)
            .public_key()
            .to_public_key_der()
            .unwrap();
        let k = TransportKey::from_spki_der(ec.as_bytes()).unwrap();
        assert_eq!(k.kind(), TransportKeyKind::EcP256);
        assert_eq!(k.spki_der(), ec.as_bytes());
        assert!(matches!(
            k.check_share_form(ShareForm::RsaKey),
            Err(Error::TransportKeyNotRsa)
        ));
        k.check_share_form(ShareForm::Exponent).unwrap();

        let rsa = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let der = rsa.to_public_key().to_public_key_der().unwrap();
        let k = TransportKey::from_spki_der(der.as_bytes()).unwrap();
        assert_eq!(k.kind(), TransportKeyKind::Rsa { bits: 2048 });
        k.check_share_form(ShareForm::RsaKey).unwrap();

        let weak = rsa::RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let der = weak.to_public_key().to_public_key_der().unwrap();
        assert!(matches!(
            TransportKey::from_spki_der(der.as_bytes()),
            Err(Error::InvalidTransportKey)
        ));
        assert!(matches!(
            TransportKey::from_spki_der(b"not a key"),
            Err(Error::InvalidTransportKey)
        ));
        assert!(format!("{k:?}").contains("Rsa"));
    }

    #[test]
    fn share_forms_by_number() {
        assert_eq!(ShareForm::from_number(0).unwrap(), ShareForm::Exponent);
        assert_eq!(ShareForm::from_number(1).unwrap(), ShareForm::RsaKey);
        assert!(matches!(
            ShareForm::from_number(7),
            Err(Error::UnsupportedShareForm(7))
        ));
    }
}
