//! Mutual TLS on the RP API: whether the client certificate a relying party's connection
//! presented (or its absence) lets it call as `rp_uuid`. The transport verifies the chain
//! (rustls: to our root, validity, signature, clientAuth EKU) and calls [`check`] with the
//! relying party the request names; the decision is written here, once.
//!
//! ```text
//!  no certificate ──▶ Ok, unless the relying party has mtls_required ──▶ Required
//!  a certificate  ──▶ one of our RP software certificates (serial in the store, same DER)?
//!                        no ──▶ NotAnRpCertificate (e.g. a person's AUTH certificate)
//!                 ──▶ its SAN urn:uuid: equals rp_uuid? no ──▶ WrongRelyingParty
//!                 ──▶ revoked in the store (at once)? ──▶ Revoked
//!                 ──▶ past its notAfter (rustls checks too)? ──▶ Expired
//!                 ──▶ the issuing CA certificate revoked (`revoke-ca`)? ──▶ IssuerRevoked
//!                 ──▶ Ok
//! ```

use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::store::{RpCertStatus, Store};

/// subjectAltName (RFC 5280 4.2.1.6).
const CE_SUBJECT_ALT_NAME: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.5.29.17");

/// A client certificate the TLS layer accepted (chain to our root already verified by
/// rustls: validity, signature, clientAuth EKU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The certificate (DER).
    pub der: Vec<u8>,
}

/// Why a connection may not call as the relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtlsRefusal {
    /// No client certificate, and the relying party requires one.
    Required,
    /// The certificate is another relying party's.
    WrongRelyingParty,
    /// The certificate is revoked.
    Revoked,
    /// The certificate's validity ended (the TLS layer refuses such a certificate in the
    /// handshake already; the store's notAfter is checked here as well).
    Expired,
    /// Not one of our relying parties' software certificates.
    NotAnRpCertificate,
    /// The issuing CA certificate that signs relying parties' certificates is revoked
    /// (`tandem operator revoke-ca`): every certificate it issued is refused.
    IssuerRevoked,
    /// The store failed (the message is for the log).
    Store(String),
}

/// Decides whether a connection with `peer` (or none) may call as relying party `rp_uuid`
/// at `now` (unix seconds). `issuing_ca_serial` is the serial of the issuing CA certificate
/// the server signs relying parties' certificates with (big-endian).
pub fn check(
    store: &dyn Store,
    issuing_ca_serial: &[u8],
    rp_uuid: &str,
    peer: Option<&PeerCertificate>,
    now: i64,
) -> Result<(), MtlsRefusal> {
    let store_error = |e: crate::store::StoreError| MtlsRefusal::Store(e.to_string());
    let Some(peer) = peer else {
        let required = store
            .active_relying_party(rp_uuid)
            .map_err(store_error)?
            .is_some_and(|rp| rp.mtls_required);
        return if required {
            Err(MtlsRefusal::Required)
        } else {
            Ok(())
        };
    };
    let cert = Certificate::from_der(&peer.der).map_err(|_| MtlsRefusal::NotAnRpCertificate)?;
    let serial = cert.tbs_certificate().serial_number().as_bytes();
    let rec = store
        .rp_cert_by_serial(serial)
        .map_err(store_error)?
        .ok_or(MtlsRefusal::NotAnRpCertificate)?;
    if rec.der.as_deref() != Some(peer.der.as_slice()) {
        return Err(MtlsRefusal::NotAnRpCertificate);
    }
    let Some(san_uuid) = san_uuid(&cert) else {
        return Err(MtlsRefusal::NotAnRpCertificate);
    };
    let same = |a: &str, b: &str| matches!((uuid::Uuid::parse_str(a), uuid::Uuid::parse_str(b)), (Ok(a), Ok(b)) if a == b);
    if !same(&san_uuid, rp_uuid) || !same(&rec.rp_uuid, rp_uuid) {
        return Err(MtlsRefusal::WrongRelyingParty);
    }
    // Revoked now (the store's record is read on every check: a revocation acts at once);
    // a certificate signed for a cancelled creation is revoked too.
    if rec.revoked.is_some() || rec.status != RpCertStatus::Ready {
        return Err(MtlsRefusal::Revoked);
    }
    if rec.not_after.is_none_or(|not_after| now > not_after) {
        return Err(MtlsRefusal::Expired);
    }
    if store
        .ca_revocation(issuing_ca_serial)
        .map_err(store_error)?
        .is_some()
    {
        return Err(MtlsRefusal::IssuerRevoked);
    }
    Ok(())
}

/// The UUID of the certificate's SubjectAltName URI `urn:uuid:<uuid>`, if it has one.
fn san_uuid(cert: &Certificate) -> Option<String> {
    let ext = cert
        .tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id == CE_SUBJECT_ALT_NAME)?;
    let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).ok()?;
    san.0.iter().find_map(|name| match name {
        GeneralName::UniformResourceIdentifier(uri) => {
            uri.as_str().strip_prefix("urn:uuid:").map(str::to_owned)
        }
        _ => None,
    })
}

#[cfg(test)]
#[path = "rp_mtls_tests.rs"]
mod tests;
