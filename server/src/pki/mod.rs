//! Public-key encodings and the pure X.509 / CRL / OCSP encoding layer of our CA.
//!
//! Nothing here touches a socket, a file, a clock or a key: times come in as arguments and
//! every signature is made by a [`CaSigner`] (in production the HSM, in tests a software
//! key). Functions return DER bytes or typed certificates, or a [`PkiError`].
//!
//! ```text
//!   CaSigner (HSM) ──sign(tbs DER)──▶ cert::{root_ca_certificate, issuing_ca_certificate,
//!        ▲                                    end_entity_certificate} ──▶ Certificate
//!        │                            crl::crl ───────────────────────▶ CertificateList DER
//!        └────────────────────────── ocsp::ocsp_response ─────────────▶ OCSPResponse DER
//!   OCSP request DER ──▶ ocsp::parse_ocsp_request ──▶ OcspQuery (validated CertIDs, nonce)
//! ```

mod cert;
mod crl;
pub mod csr;
pub mod ocsp;
pub mod origin;
#[cfg(test)]
pub(crate) mod soft_signer;
pub mod tsp;
/// The object identifiers, shared with the relying-party library.
pub use tandem_rp::oids;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use const_oid::ObjectIdentifier;
use der::Encode;
use der::asn1::{BitString, GeneralizedTime, UtcTime};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{BigUint, RsaPublicKey};
use sha1::{Digest, Sha1};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::Extension;
use x509_cert::time::Time;

pub use cert::{
    CertificateLevel, EndEntity, KeyPurpose, RP_CLIENT_POLICY_LEAF, RpClient, certificate_der,
    certificate_pem, end_entity_certificate, issuing_ca_certificate, origin_certificate,
    qscd_capable, root_ca_certificate, rp_client_certificate, rp_client_san, rp_client_tbs,
    tsa_certificate,
};
pub use crl::{RevocationReason, RevokedCert, crl};
pub use ocsp::{
    CertId, MAX_OCSP_CERT_IDS, MAX_OCSP_REQUEST_BYTES, OcspQuery, OcspResponseStatus, OcspStatus,
    cert_id_matches_issuer, ocsp_error_response, ocsp_response, parse_ocsp_request,
};
pub use x509_cert::Certificate;

/// Largest composite modulus we encode (two 4096-bit halves).
const MAX_COMPOSITE_BITS: usize = 8192;

fn public_key(modulus: &[u8]) -> anyhow::Result<RsaPublicKey> {
    Ok(RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(modulus),
        BigUint::from(crate::signing::E),
        MAX_COMPOSITE_BITS,
    )?)
}

/// SubjectPublicKeyInfo (DER) for modulus n and e = 65537.
pub fn rsa_spki_der(modulus: &[u8]) -> anyhow::Result<Vec<u8>> {
    Ok(public_key(modulus)?
        .to_public_key_der()?
        .as_bytes()
        .to_vec())
}

/// SubjectPublicKeyInfo (PEM) for modulus n and e = 65537.
pub fn rsa_spki_pem(modulus: &[u8]) -> anyhow::Result<String> {
    Ok(public_key(modulus)?.to_public_key_pem(LineEnding::LF)?)
}

/// Errors of the PKI encoding layer. Never carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A structure could not be DER-encoded (or a decoded structure did not re-encode).
    #[error("encoding failed: {0}")]
    Encoding(String),
    /// The CA signer failed (HSM error, unsupported key).
    #[error("signing failed: {0}")]
    Signing(String),
    /// Input that is not what it should be (a request, a name, a key, a certificate).
    #[error("malformed input: {0}")]
    Malformed(&'static str),
}

impl From<der::Error> for PkiError {
    fn from(e: der::Error) -> Self {
        Self::Encoding(e.to_string())
    }
}

/// A CA private key that can sign: in production a key inside the HSM.
pub trait CaSigner {
    /// AlgorithmIdentifier of this key's signatures: sha384WithRSAEncryption (NULL
    /// parameters) or ecdsa-with-SHA384 (no parameters).
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// SubjectPublicKeyInfo of the key.
    fn public_key(&self) -> SubjectPublicKeyInfoOwned;
    /// Signs the bytes (hashing with SHA-384 inside): an RSA PKCS#1 v1.5 signature, or a
    /// DER `Ecdsa-Sig-Value` for ECDSA.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError>;
}

/// The default policy arc: `1.3.6.1.4.1.32473` is the IANA enterprise number reserved for
/// documentation (RFC 5612), so it is no one else's, but it is not ours either: a production
/// deployment configures its own enterprise arc (`1.3.6.1.4.1.<PEN>.…`).
///
/// Why not a `2.25.<UUID>` arc (ITU-T X.667), which needs no registration: its 128-bit arc
/// cannot be represented by `const-oid` (arcs are 32-bit), so our own X.509 stack could not
/// read the policies back, and pkilint rejects it as FATAL ("OID contains arc which is larger
/// than 32-bits"), as do older Go releases.
pub const DEFAULT_POLICY_ARC: &str = "1.3.6.1.4.1.32473.1";

/// Country of the CA's own subject (EN 319 412-2 requires C in the issuer's name).
pub const CA_COUNTRY: &str = "EE";

/// `<arc>.1.<leaf>`: 1 authentication, 2 qualified signature, 3 advanced signature, 4 a
/// relying party's TLS client certificate ([`RP_CLIENT_POLICY_LEAF`]).
pub fn policy_oid(arc: ObjectIdentifier, leaf: u32) -> Result<ObjectIdentifier, PkiError> {
    arc.push_arc(1)
        .and_then(|o| o.push_arc(leaf))
        .map_err(|_| PkiError::Malformed("policy arc too long"))
}

/// What our certificates point to and which policies they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaProfile {
    /// Arc of our certificate policies: authentication `<arc>.1.1`, qualified signature
    /// `<arc>.1.2`, advanced signature `<arc>.1.3`.
    pub policy_arc: ObjectIdentifier,
    /// OCSP responder URL (authorityInfoAccess id-ad-ocsp).
    pub ocsp_url: String,
    /// Where the issuing CA certificate is published (authorityInfoAccess id-ad-caIssuers).
    pub ca_issuers_url: String,
    /// Where the issuing CA's CRL is published (cRLDistributionPoints of end-entity
    /// certificates).
    pub crl_url: String,
    /// Where the root's CRL of the CA certificates it issued is published
    /// (cRLDistributionPoints of the issuing CA certificate).
    pub root_crl_url: String,
}

// --- helpers shared by cert, crl and ocsp -------------------------------------------------

/// Whole seconds since the epoch (DER times carry no fractions here).
fn whole_seconds(t: SystemTime) -> Result<Duration, PkiError> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PkiError::Malformed("time before 1970"))?;
    Ok(Duration::from_secs(d.as_secs()))
}

/// RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050.
fn x509_time(t: SystemTime) -> Result<Time, PkiError> {
    let d = whole_seconds(t)?;
    Ok(match UtcTime::from_unix_duration(d) {
        Ok(utc) => Time::UtcTime(utc),
        Err(_) => Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?),
    })
}

/// GeneralizedTime without fractions (RFC 6960 / RFC 5280 style).
fn generalized_time(t: SystemTime) -> Result<GeneralizedTime, PkiError> {
    Ok(GeneralizedTime::from_unix_duration(whole_seconds(t)?)?)
}

/// Key identifier (RFC 5280 4.2.1.2 method 1): SHA-1 over the subjectPublicKey BIT STRING
/// value. Also the OCSP responder key hash (RFC 6960 byKey).
fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// The issuer's key identifier: its own SKI if it has one, else computed.
fn issuer_key_identifier(issuer_cert: &Certificate) -> Vec<u8> {
    let tbs = issuer_cert.tbs_certificate();
    if let Some(ext) = tbs.extensions().and_then(|exts| {
        exts.iter()
            .find(|e| e.extn_id == oids::CE_SUBJECT_KEY_IDENTIFIER)
    }) && let Ok(ski) =
        <der::asn1::OctetString as der::Decode>::from_der(ext.extn_value.as_bytes())
    {
        return ski.as_bytes().to_vec();
    }
    key_identifier(tbs.subject_public_key_info())
}

/// Checks that the signer's key is the key certified by `signer_cert`, so a misconfigured
/// HSM label cannot issue under the wrong name.
fn check_signer_matches(signer: &dyn CaSigner, signer_cert: &Certificate) -> Result<(), PkiError> {
    if &signer.public_key() != signer_cert.tbs_certificate().subject_public_key_info() {
        return Err(PkiError::Malformed(
            "signer key does not match the signer certificate",
        ));
    }
    Ok(())
}

/// Checks the signer's algorithm is one we issue with.
fn signature_algorithm(signer: &dyn CaSigner) -> Result<AlgorithmIdentifierOwned, PkiError> {
    let alg = signer.signature_algorithm();
    if alg.oid != oids::SHA384_WITH_RSA && alg.oid != oids::ECDSA_WITH_SHA384 {
        return Err(PkiError::Signing("unsupported signature algorithm".into()));
    }
    Ok(alg)
}

/// Signs DER bytes, returning the signature as a BIT STRING.
fn sign_der(signer: &dyn CaSigner, tbs_der: &[u8]) -> Result<BitString, PkiError> {
    let sig = signer.sign(tbs_der)?;
    if sig.is_empty() {
        return Err(PkiError::Signing("empty signature".into()));
    }
    Ok(BitString::from_bytes(&sig)?)
}

/// An extension with its value DER-encoded.
fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: der::asn1::OctetString::new(value.to_der()?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_arc_parses_and_extends() {
        let arc: ObjectIdentifier = DEFAULT_POLICY_ARC.parse().unwrap();
        assert_eq!(
            policy_oid(arc, 2).unwrap().to_string(),
            format!("{DEFAULT_POLICY_ARC}.1.2")
        );
    }
}
