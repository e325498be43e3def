//! A client certificate for mutual TLS on the RP API: the relying party's key and its
//! certificate chain, from a `.p12` (PKCS#12, as `tandem rp-cert download` writes it) or
//! from PEM.
//!
//! ```text
//!  F.p12 + password ──▶ ClientIdentity { chain: [end entity, issuing CA, root], key }
//!  key.pem + cert.pem ──┘          │
//!                                  ▼ ClientConfig::with_client_identity
//!                 rustls ClientConfig::with_client_auth_cert (every connection)
//! ```
//! The key stays in this process: it signs the handshake and is never sent.

use std::sync::Arc;

use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use zeroize::Zeroizing;

use super::Error;

/// The private key, PKCS#8 DER. Zeroized on drop; `Debug` prints `<redacted>`.
struct ClientKey(Zeroizing<Vec<u8>>);

impl ClientKey {
    /// The key's DER, for the TLS configuration only.
    fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A client certificate chain with its private key (see the module docs). Cloning shares
/// the key (one zeroized copy).
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    /// DER certificates: the end entity first, then the CAs above it.
    chain: Vec<Vec<u8>>,
    key: Arc<ClientKey>,
}

impl ClientIdentity {
    /// From a PKCS#12 file (DER) and its password. The chain is the file's certificate and
    /// its CA certificates.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, Error> {
        let p12 = Pkcs12::from_der(der)
            .map_err(|_| Error::Config("client certificate: not a PKCS#12 file".into()))?;
        // A wrong password and a damaged file fail alike in the MAC check.
        let parsed = p12.parse2(password).map_err(|_| {
            Error::Config(
                "client certificate: cannot open the PKCS#12 file (wrong password?)".into(),
            )
        })?;
        let (Some(key), Some(cert)) = (parsed.pkey, parsed.cert) else {
            return Err(Error::Config(
                "client certificate: the PKCS#12 file holds no key and certificate".into(),
            ));
        };
        let mut chain = vec![cert];
        chain.extend(parsed.ca.into_iter().flatten());
        Self::from_parts(&key, &chain)
    }

    /// From PEM: one private key (PKCS#8 or PKCS#1, unencrypted) and the certificates,
    /// the end entity first. Key and certificates may be in one buffer.
    pub fn from_pem(key_pem: &[u8], certs_pem: &[u8]) -> Result<Self, Error> {
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|_| Error::Config("client certificate: no readable private key".into()))?;
        let chain = X509::stack_from_pem(certs_pem)
            .map_err(|_| Error::Config("client certificate: unreadable certificate".into()))?;
        if chain.is_empty() {
            return Err(Error::Config(
                "client certificate: no PEM certificate".into(),
            ));
        }
        Self::from_parts(&key, &chain)
    }

    fn from_parts(key: &PKey<Private>, chain: &[X509]) -> Result<Self, Error> {
        let matches = chain[0]
            .public_key()
            .map(|p| key.public_eq(&p))
            .unwrap_or(false);
        if !matches {
            return Err(Error::Config(
                "client certificate: the key does not belong to the certificate".into(),
            ));
        }
        let key_der = Zeroizing::new(key.private_key_to_pkcs8().map_err(|_| {
            Error::Config("client certificate: cannot encode the private key".into())
        })?);
        let chain = chain
            .iter()
            .map(|c| {
                c.to_der()
                    .map_err(|_| Error::Config("client certificate: bad certificate".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            chain,
            key: Arc::new(ClientKey(key_der)),
        })
    }

    /// The end-entity certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The chain (DER, end entity first) and the key, as rustls takes them.
    pub(crate) fn rustls_parts(
        &self,
    ) -> (
        Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
        tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
        let chain = self
            .chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        let key = PrivatePkcs8KeyDer::from(self.key.expose_secret().to_vec()).into();
        (chain, key)
    }
}
