//! HTTPS key pinning of the RP API connection, and the TLS configuration of the client.
//!
//! api_details.txt, RP API endpoint authentication: "Verify the X.509 certificate of the HTTPS
//! endpoint belongs to the well-known public key of the Smart-ID API. The RP must implement
//! HTTPS key (or certificate) pinning." A pin is what HPKP (RFC 7469) calls `pin-sha256`: the
//! standard Base64 of SHA-256 over the DER `SubjectPublicKeyInfo` of the server's certificate.
//! It names the key, not the certificate, so a certificate renewed for the same key keeps its
//! pin; to change the key, configure the next key's pin beside the current one first.
//!
//! ```text
//!  TCP connect ─▶ ClientHello ─▶ server Certificate ─▶ PinnedVerifier::verify_server_cert
//!                                                        1. chain, name, validity (webpki,
//!                                                           trusted roots: the web PKI's
//!                                                           plus ClientConfig::extra_root_pem;
//!                                                           revocation with ::tls_crls)
//!                                                        2. SHA-256(end-entity SPKI) ∈ pins
//!                                                      ─▶ fails: alert, connection closed,
//!                                                         Error::PinMismatch; no HTTP byte sent
//!                                                      ─▶ passes: handshake ends, request sent
//! ```
//!
//! The check runs inside the handshake, before the client's Finished message, so nothing of a
//! request can leave before it. With pins, TLS session resumption is off: every connection
//! makes a full handshake and so sees the certificate again.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::{Resumption, WebPkiServerVerifier};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, ServerName, UnixTime,
};
use tokio_rustls::rustls::{
    CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme,
};

use super::Error;
use super::http::ClientConfig;

/// `pin-sha256`: SHA-256 of a DER `SubjectPublicKeyInfo`. Parsed from and shown as standard
/// Base64 (44 characters). Public information, not a secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpkiPin([u8; 32]);

impl SpkiPin {
    /// The pin of a DER `SubjectPublicKeyInfo`.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        Self(Sha256::digest(spki_der).into())
    }

    /// The pin of a DER X.509 certificate's public key.
    pub fn of_certificate_der(cert_der: &[u8]) -> Result<Self, PinError> {
        Ok(Self::of_spki_der(&spki_der(cert_der)?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpkiPin({self})")
    }
}

impl FromStr for SpkiPin {
    type Err = PinError;

    /// Standard Base64 of 32 bytes, as HPKP's `pin-sha256` (also accepted with HPKP's quotes
    /// or curl's `sha256//` prefix around it).
    fn from_str(s: &str) -> Result<Self, PinError> {
        let t = s.trim();
        let t = t.strip_prefix("sha256//").unwrap_or(t);
        let t = t.strip_prefix("pin-sha256=").unwrap_or(t).trim_matches('"');
        let bytes = STANDARD
            .decode(t)
            .map_err(|_| PinError::Syntax(format!("{s:?} is not standard Base64")))?;
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            PinError::Syntax(format!(
                "{s:?} decodes to {} bytes, a SHA-256 pin has 32",
                bytes.len()
            ))
        })?;
        Ok(Self(arr))
    }
}

/// A pin that cannot be read or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    #[error("pin-sha256: {0}")]
    Syntax(String),
    #[error("certificate: {0}")]
    Certificate(String),
}

/// The server presented a certificate whose key is not pinned. The TLS handshake was aborted
/// at that point: no request was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server's TLS key has pin-sha256 {presented}, which is none of the pinned {}",
    list(.pinned)
)]
pub struct PinMismatch {
    /// Pin of the key in the certificate the server presented (its chain was valid).
    pub presented: SpkiPin,
    /// The configured pins.
    pub pinned: Vec<SpkiPin>,
}

fn list(pins: &[SpkiPin]) -> String {
    pins.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The DER `SubjectPublicKeyInfo` of a DER certificate.
fn spki_der(cert_der: &[u8]) -> Result<Vec<u8>, PinError> {
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| PinError::Certificate(format!("not a DER X.509 certificate: {e}")))?;
    cert.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| PinError::Certificate(e.to_string()))
}

/// A certificate's pin and subject, for showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePin {
    pub pin: SpkiPin,
    pub subject: String,
}

impl CertificatePin {
    pub fn of_der(der: &[u8]) -> Result<Self, PinError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| PinError::Certificate(format!("not a DER X.509 certificate: {e}")))?;
        Ok(Self {
            pin: SpkiPin::of_certificate_der(der)?,
            subject: cert.tbs_certificate().subject().to_string(),
        })
    }
}

/// The pins of the certificates in a PEM bundle or one DER certificate, in file order.
pub fn certificate_file_pins(bytes: &[u8]) -> Result<Vec<CertificatePin>, PinError> {
    if bytes.starts_with(b"-----") || bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| PinError::Certificate(format!("PEM: {e}")))?;
        if certs.is_empty() {
            return Err(PinError::Certificate("no PEM certificate in it".into()));
        }
        certs.iter().map(|c| CertificatePin::of_der(c)).collect()
    } else {
        Ok(vec![CertificatePin::of_der(bytes)?])
    }
}

// ---------------------------------------------------------------- the verifier

/// Chain validation by webpki, then the pin of the end-entity certificate.
#[derive(Debug)]
struct PinnedVerifier {
    chain: Arc<WebPkiServerVerifier>,
    pins: Vec<SpkiPin>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        // webpki parsed the certificate already; a failure here is a bad encoding all the same.
        let presented = SpkiPin::of_certificate_der(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        // Pins are public values: no need for a constant-time comparison.
        if self.pins.contains(&presented) {
            Ok(verified)
        } else {
            tracing::warn!(%presented, "RP API server key is not pinned; connection refused");
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch {
                    presented,
                    pinned: self.pins.clone(),
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The rustls configuration of the client: the web PKI's roots plus `extra_root_pem`, TLS 1.2
/// and 1.3 with rustls' safe suites (ring), ALPN `http/1.1` (the HTTP layer speaks HTTP/1.1);
/// with `crls` (each a CRL file: PEM blocks or one DER CRL) the revocation check of the server
/// certificate; with `pins` the pin check and no session resumption; with `identity` the
/// client certificate for mutual TLS.
pub(crate) fn tls_config(
    extra_root_pem: Option<&[u8]>,
    crls: &[Vec<u8>],
    pins: &[SpkiPin],
    identity: Option<&super::identity::ClientIdentity>,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_root_pem {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Config(format!("TLS root certificate: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Config(
                "TLS root certificate file holds no PEM certificate".into(),
            ));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| Error::Config(format!("TLS root certificate: {e}")))?;
        }
    }
    let mut chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let crls = crls
        .iter()
        .map(|f| read_crls(f))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    if !crls.is_empty() {
        // The server certificate must be covered by a current CRL of its issuer and not be
        // listed: an unknown status (no CRL of that issuer) or an expired CRL fails too.
        chain = chain
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .enforce_revocation_expiration();
    }
    let chain = chain
        .build()
        .map_err(|e| Error::Config(format!("TLS verifier: {e}")))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let builder = if pins.is_empty() {
        builder.with_webpki_verifier(chain)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                chain,
                pins: pins.to_vec(),
            }))
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let (chain, key) = id.rustls_parts();
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("client certificate: {e}")))?
        }
    };
    if !pins.is_empty() {
        config.resumption = Resumption::disabled();
    }
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The CRLs of one file: PEM `X509 CRL` blocks, or one DER CRL.
fn read_crls(file: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    if file.trim_ascii_start().starts_with(b"-----BEGIN") {
        let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(file)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Config(format!("TLS CRL: {e}")))?;
        if crls.is_empty() {
            return Err(Error::Config("TLS CRL file holds no PEM X509 CRL".into()));
        }
        Ok(crls)
    } else {
        // rustls parses it when the verifier is built and refuses what is not a CRL.
        Ok(vec![CertificateRevocationListDer::from(file.to_vec())])
    }
}

/// The [`PinMismatch`] behind a connection error, if that is what failed. The rustls error
/// sits inside an `io::Error` (tokio-rustls) inside hyper's and reqwest's errors; note that
/// `io::Error::source` skips the error it wraps, so `get_ref` is followed as well.
pub(crate) fn find_pin_mismatch(e: &(dyn std::error::Error + 'static)) -> Option<PinMismatch> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner)))) =
            err.downcast_ref::<rustls::Error>()
            && let Some(m) = inner.downcast_ref::<PinMismatch>()
        {
            return Some(m.clone());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(m) = find_pin_mismatch(inner)
        {
            return Some(m);
        }
        cur = err.source();
    }
    None
}

// ---------------------------------------------------------------- reading a server's pin

/// Connects to the host of `config.base_url` (HTTPS only), completes a TLS handshake that
/// checks the chain against the configured roots (not the pins), and returns the pins of the
/// certificates the server presented, its own first. Nothing but the handshake and a
/// close_notify is sent. Compare the result with the certificate file on the server before
/// trusting it: this only says what this network path presents.
pub async fn presented_certificate_pins(
    config: &ClientConfig,
) -> Result<Vec<CertificatePin>, Error> {
    use tokio::io::AsyncWriteExt as _;

    let url = reqwest::Url::parse(&config.base_url)
        .map_err(|e| Error::Config(format!("base URL {:?}: {e}", config.base_url)))?;
    if url.scheme() != "https" {
        return Err(Error::Config(format!(
            "base URL {:?} is not https: there is no TLS certificate to read",
            config.base_url
        )));
    }
    // host_str keeps an IPv6 address in brackets; ServerName reads addresses and names.
    let host = url
        .host_str()
        .ok_or_else(|| Error::Config("base URL has no host".into()))?
        .trim_matches(['[', ']']);
    let server_name = ServerName::try_from(host.to_owned())
        .map_err(|e| Error::Config(format!("host {host:?}: {e}")))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let fail = |detail: String| Error::Tls {
        url: config.base_url.clone(),
        detail,
    };
    let tls = tls_config(
        config.extra_root_pem.as_deref(),
        &config.tls_crls,
        &[],
        config.client_identity.as_ref(),
    )?;
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| fail(format!("connect to {host}:{port}: {e}")))?;
        tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(server_name, tcp)
            .await
            .map_err(|e| fail(format!("TLS handshake: {e}")))
    };
    let mut stream = tokio::time::timeout(config.connect_timeout, connect)
        .await
        .map_err(|_| {
            fail(format!(
                "no TLS connection within {:?}",
                config.connect_timeout
            ))
        })??;
    let pins = stream
        .get_ref()
        .1
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| CertificatePin::of_der(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let _ = stream.shutdown().await;
    if pins.is_empty() {
        return Err(fail("the server presented no certificate".into()));
    }
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use rcgen::PublicKeyData as _;

    use super::*;

    /// A self-signed certificate for 127.0.0.1 and its key (rcgen; P-256).
    fn self_signed() -> rcgen::CertifiedKey<rcgen::KeyPair> {
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap()
    }

    #[test]
    fn pin_is_sha256_of_the_spki_der() {
        let k = self_signed();
        let pin = SpkiPin::of_certificate_der(k.cert.der()).unwrap();
        // rcgen's own DER encoding of the public key: an independent source of the SPKI.
        assert_eq!(
            pin,
            SpkiPin::of_spki_der(&k.signing_key.subject_public_key_info())
        );
        let text = pin.to_string();
        assert_eq!(text.len(), 44);
        assert_eq!(text.parse::<SpkiPin>().unwrap(), pin);
        assert_eq!(format!("sha256//{text}").parse::<SpkiPin>().unwrap(), pin);
        assert_eq!(
            format!("pin-sha256=\"{text}\"").parse::<SpkiPin>().unwrap(),
            pin
        );
        // Another key, another pin.
        assert_ne!(
            SpkiPin::of_certificate_der(self_signed().cert.der()).unwrap(),
            pin
        );
        // PEM and DER files give the same pin.
        let pem = certificate_file_pins(k.cert.pem().as_bytes()).unwrap();
        let der = certificate_file_pins(k.cert.der()).unwrap();
        assert_eq!(pem, der);
        assert_eq!(pem[0].pin, pin);
    }

    #[test]
    fn bad_pins_are_refused_with_a_reason() {
        for (bad, why) in [
            ("", "decodes to 0 bytes"),
            ("not base64!", "not standard Base64"),
            ("AAAA", "decodes to 3 bytes"),
            (
                "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=AA",
                "not standard Base64",
            ),
        ] {
            let e = bad.parse::<SpkiPin>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(certificate_file_pins(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert!(certificate_file_pins(b"\x30\x03\x02\x01\x00").is_err());
    }

    #[test]
    fn pin_mismatch_is_found_inside_io_and_boxed_errors() {
        let m = PinMismatch {
            presented: SpkiPin([1; 32]),
            pinned: vec![SpkiPin([2; 32])],
        };
        let rustls_err = rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
            Arc::new(m.clone()),
        )));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_err);
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let outer = Outer(io);
        assert_eq!(find_pin_mismatch(&outer), Some(m));
        let other = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(find_pin_mismatch(&Outer(other)), None);
    }
}
