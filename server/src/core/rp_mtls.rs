//! Mutual TLS on the RP API: whether a relying party's request may go on with the client
//! certificate its connection presented (or without one).
//!
//! PLACEHOLDER: replaced by srv's core/rp_mtls.rs. This version keeps the API the REST
//! layer calls and only binds a certificate to the relying party by its SAN URI
//! `urn:uuid:<relyingPartyUUID>`; it checks neither "mTLS required", nor revocation, nor
//! the certificate profile beyond that SAN.

use x509_cert::Certificate;
use x509_cert::der::Decode as _;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::store::Store;

/// The end-entity certificate a client presented in the TLS handshake, already verified by
/// the listener against our CA (chain and validity period).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MtlsRefusal {
    /// The operator requires mutual TLS for this relying party and none was presented.
    Required,
    /// The certificate belongs to another relying party.
    WrongRelyingParty,
    /// The certificate is revoked.
    Revoked,
    /// The certificate is not a relying party's client certificate (e.g. a person's).
    NotAnRpCertificate,
    /// The store failed.
    Store(String),
}

// PLACEHOLDER: replaced by srv's core/rp_mtls.rs
/// Checks the presented certificate (if any) against the relying party `rp_uuid` at `now`
/// (Unix seconds).
pub fn check(
    _store: &dyn Store,
    rp_uuid: &str,
    peer: Option<&PeerCertificate>,
    _now: i64,
) -> Result<(), MtlsRefusal> {
    let Some(peer) = peer else {
        return Ok(());
    };
    match rp_uuid_of(&peer.der) {
        Some(u) if u.eq_ignore_ascii_case(rp_uuid) => Ok(()),
        Some(_) => Err(MtlsRefusal::WrongRelyingParty),
        None => Err(MtlsRefusal::NotAnRpCertificate),
    }
}

/// The UUID of the certificate's SAN URI `urn:uuid:…`, if it has one.
fn rp_uuid_of(der: &[u8]) -> Option<String> {
    let cert = Certificate::from_der(der).ok()?;
    let (_, san) = cert
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .ok()??;
    san.0.iter().find_map(|n| match n {
        GeneralName::UniformResourceIdentifier(u) => {
            u.as_str().strip_prefix("urn:uuid:").map(str::to_owned)
        }
        _ => None,
    })
}
