//! Certificate revocation lists, the fallback of [`super::check_revocation`] when OCSP gives no
//! answer (response_verification.txt: "If OCSP fails or is unavailable, Certificate Revocation
//! List (CRL) checking should be used as fallback").
//!
//! ```text
//!  certificate (end entity or intermediate CA) ─ cRLDistributionPoints (http/https fullName
//!  URIs) ─GET─▶ CRL (DER)
//!  CRL ─▶ strict DER (x509-cert) ─▶ issuer name = the certificate's issuer ─▶ signed with the
//!  issuer's key (OpenSSL), outer = inner algorithm, issuer may sign CRLs ─▶ thisUpdate not in
//!  the future, nextUpdate present and not passed ─▶ complete CRL for the certificate's kind
//!  (no delta, no indirect, no partition, no unknown critical extension) ─▶ serial listed?
//!  revoked : good
//! ```
//!
//! [`check_crl`] is pure (certificate, issuer, CRL bytes and the time in, verdict out);
//! [`fetch_crl`] and [`distribution_points`] are the I/O and the URL lookup around it.

use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use openssl::x509::{X509, X509Crl, X509VerifyResult};
use x509_cert::Certificate;
use x509_cert::certificate::Rfc5280;
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{BasicConstraints, CrlDistributionPoints, CrlReason, KeyUsage};

use crate::oids;

/// id-ce-deltaCRLIndicator (RFC 5280 5.2.4): a delta CRL, not a complete one.
const CE_DELTA_CRL_INDICATOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.27");
/// id-ce-issuingDistributionPoint (RFC 5280 5.2.5). (x509-cert 0.3 associates the wrong OID
/// with its `IssuingDistributionPoint`, so it is matched by this one.)
const CE_ISSUING_DISTRIBUTION_POINT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.28");
/// id-ce-freshestCRL (RFC 5280 5.2.6): where delta CRLs are; we use complete CRLs only.
const CE_FRESHEST_CRL: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.46");
/// id-ce-invalidityDate (RFC 5280 5.3.2), an entry extension we read past.
const CE_INVALIDITY_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.24");
/// id-ce-certificateIssuer (RFC 5280 5.3.3): entries of indirect CRLs.
const CE_CERTIFICATE_ISSUER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.29");

/// A CRL's answer for one certificate, after every check of [`check_crl`] passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlStatus {
    /// thisUpdate of the CRL.
    pub this_update: SystemTime,
    /// nextUpdate of the CRL (required).
    pub next_update: SystemTime,
    /// cRLNumber, hex, if the CRL has one.
    pub crl_number: Option<String>,
    /// The certificate's entry: `None` if it is not listed.
    pub entry: Option<CrlEntry>,
}

/// A listed certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlEntry {
    /// revocationDate.
    pub revoked_at: SystemTime,
    /// reasonCode, if the entry has one (RFC 5280 omits `unspecified`).
    pub reason: Option<CrlReason>,
}

fn decode_ext<'a, T: Decode<'a>>(e: &'a Extension, what: &str) -> Result<T, String> {
    T::from_der(e.extn_value.as_bytes()).map_err(|err| format!("{what} does not decode: {err}"))
}

/// Checks `crl_der` as a CRL of `issuer` for `certificate_der` at `now`, with `slack` for
/// clock differences (thisUpdate may be up to `slack` ahead of `now`, nextUpdate up to
/// `slack` behind it).
///
/// The CRL is used only if it is strict DER, names the certificate's issuer (byte-equal
/// DER Name), verifies with the issuer's public key (OpenSSL), has the same algorithm inside
/// and outside its signature, is current, carries a nextUpdate, and is a complete CRL that
/// covers the certificates of this issuer of the certificate's kind: a delta CRL, an indirect
/// or partitioned one (issuingDistributionPoint with indirectCRL, onlySomeReasons or
/// onlyContainsAttributeCerts; onlyContainsCACerts for an end-entity certificate,
/// onlyContainsUserCerts for a CA certificate: RFC 5280 6.3.3 (b)(2)), or one with a critical
/// extension we do not know is refused,
/// as is an entry with an unknown critical extension. `issuer` must have issued the
/// certificate and, if it has a keyUsage, allow cRLSign. Any refusal is an `Err` naming it;
/// `Ok` holds the verdict, listed or not.
pub fn check_crl(
    certificate_der: &[u8],
    issuer: &X509,
    crl_der: &[u8],
    now: SystemTime,
    slack: Duration,
) -> Result<CrlStatus, String> {
    let leaf = Certificate::from_der(certificate_der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let leaf_ossl = X509::from_der(certificate_der).map_err(|e| format!("the certificate: {e}"))?;
    let issuer_key = issuer
        .public_key()
        .map_err(|e| format!("the issuer's public key: {e}"))?;
    if issuer.issued(&leaf_ossl) != X509VerifyResult::OK
        || !leaf_ossl.verify(&issuer_key).unwrap_or(false)
    {
        return Err("the given issuer did not issue the certificate".into());
    }
    // A CA certificate (an intermediate of the chain) or an end-entity one: which
    // issuingDistributionPoint scopes cover it.
    let is_ca = leaf
        .tbs_certificate()
        .get_extension::<BasicConstraints>()
        .map_err(|e| format!("the certificate's basicConstraints: {e}"))?
        .is_some_and(|(_, bc)| bc.ca);
    let issuer_der = issuer.to_der().map_err(|e| format!("the issuer: {e}"))?;
    let issuer_cert = Certificate::from_der(&issuer_der)
        .map_err(|e| format!("the issuer does not parse: {e}"))?;
    if let Some((_, ku)) = issuer_cert
        .tbs_certificate()
        .get_extension::<KeyUsage>()
        .map_err(|e| format!("the issuer's keyUsage: {e}"))?
        && !ku.crl_sign()
    {
        return Err("the issuer's keyUsage does not allow cRLSign".into());
    }

    let crl =
        CertificateList::<Rfc5280>::from_der(crl_der).map_err(|e| format!("not a DER CRL: {e}"))?;
    // DER is canonical: what we read must be exactly what OpenSSL checks the signature of.
    if crl.to_der().ok().as_deref() != Some(crl_der) {
        return Err("the CRL is not canonical DER".into());
    }
    let tbs = &crl.tbs_cert_list;
    if tbs.signature != crl.signature_algorithm {
        return Err(
            "the CRL's signature algorithm differs inside and outside the signature".into(),
        );
    }
    let crl_issuer = tbs.issuer.to_der().map_err(|e| e.to_string())?;
    let cert_issuer = leaf
        .tbs_certificate()
        .issuer()
        .to_der()
        .map_err(|e| e.to_string())?;
    if crl_issuer != cert_issuer {
        return Err(format!(
            "the CRL's issuer ({}) is not the certificate's issuer ({})",
            tbs.issuer,
            leaf.tbs_certificate().issuer()
        ));
    }
    let signed = X509Crl::from_der(crl_der)
        .and_then(|c| c.verify(&issuer_key))
        .unwrap_or(false);
    if !signed {
        return Err("the CRL's signature does not verify with the issuer's key".into());
    }

    let this_update = tbs.this_update.to_system_time();
    if this_update > now + slack {
        return Err(format!(
            "the CRL's thisUpdate ({}) is in the future",
            tbs.this_update
        ));
    }
    let next = tbs
        .next_update
        .as_ref()
        .ok_or("the CRL has no nextUpdate, so its freshness cannot be judged")?;
    let next_update = next.to_system_time();
    if next_update + slack < now {
        return Err(format!("the CRL has expired (nextUpdate {next})"));
    }

    let mut crl_number = None;
    for e in tbs.crl_extensions.iter().flatten() {
        match e.extn_id {
            CE_DELTA_CRL_INDICATOR => return Err("a delta CRL, not a complete one".into()),
            CE_ISSUING_DISTRIBUTION_POINT => {
                let idp: IssuingDistributionPoint = decode_ext(e, "issuingDistributionPoint")?;
                if idp.indirect_crl
                    || idp.only_some_reasons.is_some()
                    || idp.only_contains_attribute_certs
                    || (idp.only_contains_ca_certs && !is_ca)
                    || (idp.only_contains_user_certs && is_ca)
                {
                    let kind = if is_ca { "CA" } else { "end-entity" };
                    return Err(format!(
                        "the CRL does not cover every {kind} certificate of its issuer \
                         (issuingDistributionPoint scope)"
                    ));
                }
            }
            oids::CE_CRL_NUMBER => {
                let n: der::asn1::Uint = decode_ext(e, "cRLNumber")?;
                crl_number = Some(hex::encode(n.as_bytes()));
            }
            oids::CE_AUTHORITY_KEY_IDENTIFIER | CE_FRESHEST_CRL => {}
            other if e.critical => {
                return Err(format!("the CRL has an unknown critical extension {other}"));
            }
            _ => {}
        }
    }

    let serial = leaf.tbs_certificate().serial_number().as_bytes();
    let mut entry = None;
    for r in tbs.revoked_certificates.iter().flatten() {
        let mut reason = None;
        for e in r.crl_entry_extensions.iter().flatten() {
            match e.extn_id {
                oids::CE_CRL_REASONS => reason = Some(decode_ext::<CrlReason>(e, "reasonCode")?),
                CE_CERTIFICATE_ISSUER => {
                    return Err("an indirect CRL (certificateIssuer entry extension)".into());
                }
                CE_INVALIDITY_DATE => {}
                other if e.critical => {
                    return Err(format!(
                        "a CRL entry has an unknown critical extension {other}"
                    ));
                }
                _ => {}
            }
        }
        if r.serial_number.as_bytes() == serial {
            entry = Some(CrlEntry {
                revoked_at: r.revocation_date.to_system_time(),
                reason,
            });
        }
    }
    Ok(CrlStatus {
        this_update,
        next_update,
        crl_number,
        entry,
    })
}

/// The http(s) URLs of the certificate's cRLDistributionPoints, in order. Distribution
/// points with `reasons` (a partitioned CRL) or `cRLIssuer` (an indirect CRL) are skipped.
pub fn distribution_points(certificate_der: &[u8]) -> Result<Vec<String>, String> {
    let leaf = Certificate::from_der(certificate_der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let Some((_, dps)) = leaf
        .tbs_certificate()
        .get_extension::<CrlDistributionPoints>()
        .map_err(|e| format!("cRLDistributionPoints: {e}"))?
    else {
        return Ok(Vec::new());
    };
    Ok(dps
        .0
        .iter()
        .filter(|dp| dp.reasons.is_none() && dp.crl_issuer.is_none())
        .filter_map(|dp| match &dp.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .filter_map(|n| match n {
            GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
            _ => None,
        })
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .collect())
}

/// Downloads a CRL with GET: at most `max_bytes` (refused by Content-Length before reading,
/// or as soon as the body grows past it) within `timeout` for the whole exchange, at most
/// three redirects. Errors do not repeat the URL.
pub async fn fetch_crl(url: &str, timeout: Duration, max_bytes: usize) -> Result<Vec<u8>, String> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let resp = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/pkix-crl")
        .send()
        .await
        .map_err(|e| format!("unreachable: {}", super::causes(e)))?;
    if !resp.status().is_success() {
        return Err(format!("answered HTTP {}", resp.status().as_u16()));
    }
    super::read_bounded(resp, max_bytes, "CRL").await
}

#[cfg(test)]
mod tests;
