//! Revocation of every certificate of the chain (response_verification.txt: "For each
//! certificate in the constructed chain (end-entity certificate and all intermediate CA
//! certificates) … Verify that the certificate has not been revoked"; "Revocation checks
//! (OCSP/CRL) are not performed on self-signed root CA certificates configured as trust
//! anchors. Intermediate CA certificates can be revoked and must be checked.").
//!
//! ```text
//!  end-entity cert ─▶ OpenSSL builds the chain from our anchors only (as the chain step)
//!   [0] end entity ──── check_revocation, issuer [1] (OCSP at its AIA, else its CRL) ─┐
//!   [1] intermediate ── check_revocation, issuer [2] (the same; CRL override ca_crl_url) │ all
//!   …                                                                                    │ must
//!   [n] self-signed root (trust anchor): not checked                                    ─┘ pass
//! ```
//!
//! Each certificate gets the whole decision of [`super::check_revocation`]: a final OCSP
//! answer, else a CRL, else an error; a certificate whose status cannot be determined fails
//! the chain, as a revoked one does, and the error names the certificate.

use std::fmt;

use der::Decode;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use x509_cert::Certificate;

use super::{NotRevoked, Overrides, RevocationError, RevocationOptions, check_issued_by, fail};
use crate::client::verify::{
    CheckedStep, StepOutcome, TrustAnchors, VerificationError, VerificationStep,
};

/// Most certificates below the root we check (a chain longer than this is refused).
const MAX_CHAIN: usize = 8;

/// Where a certificate sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainPosition {
    /// The user's certificate.
    EndEntity,
    /// A CA certificate between it and the root (1 = the end entity's issuer).
    IntermediateCa(usize),
}

/// A certificate of the chain, as reports name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedCertificate {
    pub position: ChainPosition,
    /// Subject (RFC 4514).
    pub subject: String,
    /// Serial number, hex.
    pub serial_hex: String,
}

impl fmt::Display for ChainedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.position {
            ChainPosition::EndEntity => "end-entity certificate",
            ChainPosition::IntermediateCa(_) => "intermediate CA certificate",
        };
        write!(f, "{what} {} (serial {})", self.subject, self.serial_hex)
    }
}

/// One certificate of the chain that is not revoked, and who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCertificate {
    pub certificate: ChainedCertificate,
    pub status: NotRevoked,
}

impl CheckedCertificate {
    /// The report line: the end entity's is the revocation step (`revocation: OK (OCSP: good
    /// …)`), an intermediate's names it: `revocation of intermediate CA certificate CN=… (serial
    /// …): OK (CRL: not listed …)`.
    pub fn report_line(&self) -> String {
        match self.certificate.position {
            ChainPosition::EndEntity => self.status.step().to_string(),
            ChainPosition::IntermediateCa(_) => match self.status.step().outcome {
                StepOutcome::Passed(d) | StepOutcome::NotApplicable(d) => {
                    format!("revocation of {}: OK ({d})", self.certificate)
                }
            },
        }
    }
}

/// Every certificate of the chain below the root is not revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainNotRevoked {
    /// The end entity first, then each CA certificate up to (not including) the root.
    pub certificates: Vec<CheckedCertificate>,
    /// Subject of the self-signed root the chain ends in (not checked).
    pub root: String,
}

impl ChainNotRevoked {
    /// The end entity's answer.
    pub fn end_entity(&self) -> &NotRevoked {
        &self.certificates[0].status
    }

    /// The revocation step of the verification report, covering the whole chain.
    pub fn step(&self) -> CheckedStep {
        let detail = self
            .certificates
            .iter()
            .map(|c| match c.certificate.position {
                ChainPosition::EndEntity => format!("end entity by {}", c.status.method),
                ChainPosition::IntermediateCa(_) => {
                    format!("{} by {}", c.certificate.subject, c.status.method)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        CheckedStep {
            step: VerificationStep::Revocation,
            outcome: StepOutcome::Passed(format!(
                "not revoked: {detail}; root {} is a trust anchor",
                self.root
            )),
        }
    }
}

/// The chain revocation check failed at `certificate` (`None`: no chain could be built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRevocationError {
    pub certificate: Option<ChainedCertificate>,
    pub error: RevocationError,
    /// The certificates checked before (not revoked).
    pub checked: Vec<CheckedCertificate>,
}

impl fmt::Display for ChainRevocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.certificate {
            Some(
                c @ ChainedCertificate {
                    position: ChainPosition::IntermediateCa(_),
                    ..
                },
            ) => write!(f, "{c}: {}", self.error),
            _ => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for ChainRevocationError {}

impl ChainRevocationError {
    /// The report line: `revocation: FAILED (…)` for the end entity or the chain,
    /// `revocation of intermediate CA certificate CN=… (serial …): FAILED (…)` for a CA.
    pub fn report_line(&self) -> String {
        match &self.certificate {
            Some(
                c @ ChainedCertificate {
                    position: ChainPosition::IntermediateCa(_),
                    ..
                },
            ) => format!("revocation of {c}: FAILED ({})", self.error),
            _ => format!("{}: FAILED ({})", VerificationStep::Revocation, self.error),
        }
    }
}

impl From<ChainRevocationError> for VerificationError {
    fn from(e: ChainRevocationError) -> Self {
        fail(e.to_string())
    }
}

fn parsed(cert: &X509) -> Option<Certificate> {
    cert.to_der()
        .ok()
        .and_then(|d| Certificate::from_der(&d).ok())
}

fn subject(cert: &X509) -> String {
    parsed(cert)
        .map(|c| c.tbs_certificate().subject().to_string())
        .unwrap_or_else(|| "(unreadable subject)".into())
}

fn describe(cert: &X509, position: ChainPosition) -> ChainedCertificate {
    ChainedCertificate {
        position,
        subject: subject(cert),
        serial_hex: parsed(cert)
            .map(|c| serial_hex(c.tbs_certificate().serial_number().as_bytes()))
            .unwrap_or_default(),
    }
}

/// The serial number's value in hex, as OpenSSL prints it: the DER content octets without
/// the leading zero byte that keeps a serial with its top bit set positive.
fn serial_hex(der_content: &[u8]) -> String {
    let first = der_content
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(der_content.len().saturating_sub(1));
    hex::encode(&der_content[first..])
}

/// The chain OpenSSL builds from `leaf` to a root among `anchors` (intermediates only from
/// `anchors`, no system store), leaf first, at the current time.
pub(crate) fn build_chain(leaf: &X509, anchors: &TrustAnchors) -> Result<Vec<X509>, String> {
    let e = |e: openssl::error::ErrorStack| format!("OpenSSL: {e}");
    if anchors.roots().is_empty() {
        return Err("no trust anchors configured".into());
    }
    let mut store = X509StoreBuilder::new().map_err(e)?;
    for r in anchors.roots() {
        store.add_cert(r.clone()).map_err(e)?;
    }
    let store = store.build();
    let mut untrusted = Stack::new().map_err(e)?;
    for i in anchors.intermediates() {
        untrusted.push(i.clone()).map_err(e)?;
    }
    let mut ctx = X509StoreContext::new().map_err(e)?;
    ctx.init(&store, leaf, &untrusted, |c| {
        if !c.verify_cert()? {
            return Ok(Err(format!(
                "no valid chain to the trust anchors: {} (at depth {})",
                c.error().error_string(),
                c.error_depth()
            )));
        }
        Ok(Ok(c
            .chain()
            .map(|s| s.iter().map(|c| c.to_owned()).collect())
            .unwrap_or_default()))
    })
    .map_err(e)?
}

fn is_self_signed(c: &X509) -> bool {
    c.issued(c) == openssl::x509::X509VerifyResult::OK
        && c.public_key().and_then(|k| c.verify(&k)).unwrap_or(false)
}

/// Whether the end-entity certificate `certificate_der` and every intermediate CA certificate
/// of its chain to `anchors` are not revoked. The chain is the one OpenSSL builds (the
/// certificate chain step's); the self-signed root it ends in is a trust anchor and is not
/// checked. Each certificate is checked as [`super::check_revocation`] does, with its issuer
/// the next certificate up: the end entity with `opts.ocsp_url` / `opts.crl_url` as
/// overrides, the CA certificates with their own AIA OCSP responder and `opts.ca_crl_url` (or
/// their cRLDistributionPoints) for the CRL. The first certificate that is revoked or whose
/// status cannot be determined ends the check with an error naming it. Uses the system clock.
pub async fn check_chain_revocation(
    certificate_der: &[u8],
    anchors: &TrustAnchors,
    opts: &RevocationOptions,
) -> Result<ChainNotRevoked, ChainRevocationError> {
    let chain_error = |error: String| ChainRevocationError {
        certificate: None,
        error: RevocationError::Certificate(error),
        checked: Vec::new(),
    };
    let leaf =
        X509::from_der(certificate_der).map_err(|e| chain_error(format!("certificate: {e}")))?;
    let chain = build_chain(&leaf, anchors).map_err(chain_error)?;
    let Some((root, below)) = chain.split_last() else {
        return Err(chain_error("OpenSSL built an empty chain".into()));
    };
    if below.is_empty() || !is_self_signed(root) {
        return Err(chain_error(
            "the chain does not end in a self-signed root below the end-entity certificate".into(),
        ));
    }
    if below.len() > MAX_CHAIN {
        return Err(chain_error(format!(
            "the chain has more than {MAX_CHAIN} certificates below the root"
        )));
    }
    let ca_hint = if opts.ca_crl_url.is_none() {
        " (give the CRL of the CA above it: RevocationOptions::ca_crl_url, \
         `tandem rp-api --ca-crl-url`)"
    } else {
        ""
    };
    let mut checked: Vec<CheckedCertificate> = Vec::with_capacity(below.len());
    for (i, cert) in below.iter().enumerate() {
        let issuer = &chain[i + 1];
        let (position, urls) = if i == 0 {
            (
                ChainPosition::EndEntity,
                Overrides {
                    ocsp_url: opts.ocsp_url.as_deref(),
                    crl_url: opts.crl_url.as_deref(),
                    no_crl_hint: "",
                },
            )
        } else {
            (
                ChainPosition::IntermediateCa(i),
                Overrides {
                    ocsp_url: None,
                    crl_url: opts.ca_crl_url.as_deref(),
                    no_crl_hint: ca_hint,
                },
            )
        };
        let described = describe(cert, position);
        let der = match cert.to_der() {
            Ok(d) => d,
            Err(e) => {
                return Err(ChainRevocationError {
                    certificate: Some(described),
                    error: RevocationError::Certificate(format!("certificate: {e}")),
                    checked,
                });
            }
        };
        match check_issued_by(&der, cert, issuer, anchors, urls, opts).await {
            Ok(status) => checked.push(CheckedCertificate {
                certificate: described,
                status,
            }),
            Err(error) => {
                return Err(ChainRevocationError {
                    certificate: Some(described),
                    error,
                    checked,
                });
            }
        }
    }
    Ok(ChainNotRevoked {
        certificates: checked,
        root: subject(root),
    })
}

#[cfg(test)]
mod tests {
    use super::serial_hex;

    #[test]
    fn serial_hex_is_the_value_without_the_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x80, 0xac, 0x0a]), "80ac0a");
        assert_eq!(serial_hex(&[0x7f, 0x01]), "7f01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[]), "");
    }
}
