//! Revocation (EN 319 102-1, 5.2.5 and 5.2.6): embedded revocation data first (CAdES B-LT:
//! OCSP responses as id-ri-ocsp-response and CRLs in SignedData.crls), else the CAs'
//! services through [`crate::client::revocation::check_chain_revocation`] (OCSP, then CRL).

use std::time::{Duration, SystemTime};

use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::stack::{Stack, StackRef};
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};

use super::chain::Chain;
use crate::client::revocation::{
    CLOCK_SLACK_SECS, RevocationError, RevocationOptions, check_chain_revocation, check_crl,
};
use crate::client::verify::TrustAnchors;

/// What the revocation check found for the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationFinding {
    /// No certificate of the chain is revoked; `source` says who answered.
    NotRevoked {
        /// E.g. `OCSP http://…` or `embedded OCSP response`.
        source: String,
    },
    /// A certificate is revoked.
    Revoked {
        /// Whether it is the signing certificate (else a CA certificate).
        signer: bool,
        /// The revocation time, if it could be read.
        at: Option<SystemTime>,
        /// What said so.
        detail: String,
    },
    /// The status could not be found (OCSP and CRL unavailable, or unknown to the responder).
    Unavailable(String),
}

/// Reads a revocation time as [`RevocationError::Revoked`] writes it: RFC 3339
/// (`2026-01-02T03:04:05Z`, from a CRL) or OpenSSL's `Jan  2 03:04:05 2026 GMT` (OCSP).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    if let Ok(t) = text.parse::<crate::report::UtcTime>() {
        return Some(SystemTime::UNIX_EPOCH + Duration::from_secs(t.unix_secs()));
    }
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [mon, day, hms, year, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == mon)? as u8 + 1;
    let mut hms = hms.split(':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let dt = der::DateTime::new(year.parse().ok()?, month, day.parse().ok()?, h, m, s).ok()?;
    Some(dt.to_system_time())
}

/// The status of `cert` in one embedded OCSP response, if the response is usable: successful,
/// signed by the issuer or its delegate chaining to `store`, answering for `cert`, and issued
/// no earlier than `signed_at` (less the clock slack): an answer older than the signature says
/// nothing about the certificate at the time of signing.
fn ocsp_status(
    resp_der: &[u8],
    cert: &X509,
    issuer: &X509,
    store: &X509Store,
    untrusted: &StackRef<X509>,
    signed_at: Option<SystemTime>,
) -> Option<Result<(), Option<SystemTime>>> {
    let resp = OcspResponse::from_der(resp_der).ok()?;
    if resp.status() != OcspResponseStatus::SUCCESSFUL {
        return None;
    }
    let basic = resp.basic().ok()?;
    basic.verify(untrusted, store, OcspFlag::empty()).ok()?;
    let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).ok()?;
    let status = basic.find_status(&id)?;
    if let Some(signed_at) = signed_at {
        let this_update = parse_time(&status.this_update.to_string())?;
        if this_update + slack() < signed_at {
            return None;
        }
    }
    if status.status == OcspCertStatus::GOOD {
        Some(Ok(()))
    } else if status.status == OcspCertStatus::REVOKED {
        Some(Err(status
            .revocation_time
            .and_then(|t| parse_time(&t.to_string()))))
    } else {
        None
    }
}

fn slack() -> Duration {
    Duration::from_secs(CLOCK_SLACK_SECS.into())
}

/// The status of every certificate below the root from the embedded data alone, if it
/// covers them all; `None` sends the check online. Only data issued no earlier than
/// `signed_at` (the best signature time: the time-stamp's, else the claimed one; less the
/// clock slack) counts: it must speak for the time of signing.
pub fn embedded(
    chain: &Chain,
    ocsp: &[Vec<u8>],
    crls: &[Vec<u8>],
    anchors: &[X509],
    now: SystemTime,
    signed_at: Option<SystemTime>,
) -> Option<RevocationFinding> {
    if ocsp.is_empty() && crls.is_empty() {
        return None;
    }
    let certs = &chain.certs;
    // One store and one stack for every response (not one per response).
    let mut store = X509StoreBuilder::new().ok()?;
    for a in anchors {
        store.add_cert(a.clone()).ok()?;
    }
    let store = store.build();
    let mut untrusted = Stack::new().ok()?;
    for c in certs {
        untrusted.push(c.clone()).ok()?;
    }
    let recent = |this_update: SystemTime| signed_at.is_none_or(|t| this_update + slack() >= t);
    for (i, cert) in certs.iter().enumerate().take(certs.len().saturating_sub(1)) {
        let issuer = &certs[i + 1];
        let from_ocsp = ocsp
            .iter()
            .find_map(|r| ocsp_status(r, cert, issuer, &store, &untrusted, signed_at));
        let answer = match from_ocsp {
            Some(a) => a,
            None => {
                let der = cert.to_der().ok()?;
                let entry = crls.iter().find_map(|c| {
                    check_crl(&der, issuer, c, now, slack())
                        .ok()
                        .filter(|status| recent(status.this_update))
                })?;
                match entry.entry {
                    None => Ok(()),
                    Some(e) => Err(Some(e.revoked_at)),
                }
            }
        };
        if let Err(at) = answer {
            return Some(RevocationFinding::Revoked {
                signer: i == 0,
                at,
                detail: "embedded revocation data: the certificate is revoked".into(),
            });
        }
    }
    Some(RevocationFinding::NotRevoked {
        source: "embedded revocation data".into(),
    })
}

/// Asks the CAs' OCSP responders, the CRLs as fallback, for every certificate of the chain.
pub async fn online(chain: &Chain, opts: &RevocationOptions) -> RevocationFinding {
    let mut anchors = TrustAnchors::new();
    let pem = |c: &X509| c.to_pem().unwrap_or_default();
    let Some((root, below)) = chain.certs.split_last() else {
        return RevocationFinding::Unavailable("empty chain".into());
    };
    if anchors.add_roots_pem(&pem(root)).is_err() {
        return RevocationFinding::Unavailable("the trust anchor cannot be used".into());
    }
    for c in below.iter().skip(1) {
        let _ = anchors.add_intermediates_pem(&pem(c));
    }
    let leaf = below
        .first()
        .and_then(|c| c.to_der().ok())
        .unwrap_or_default();
    match check_chain_revocation(&leaf, &anchors, opts).await {
        Ok(ok) => RevocationFinding::NotRevoked {
            source: ok
                .certificates
                .iter()
                .map(|c| {
                    format!(
                        "{} ({} {})",
                        c.certificate.subject, c.status.method, c.status.url
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        },
        Err(e) => match &e.error {
            RevocationError::Revoked { at, .. } => RevocationFinding::Revoked {
                signer: e.certificate.as_ref().is_some_and(|c| {
                    c.position == crate::client::revocation::ChainPosition::EndEntity
                }),
                at: parse_time(at),
                detail: e.to_string(),
            },
            _ => RevocationFinding::Unavailable(e.to_string()),
        },
    }
}
