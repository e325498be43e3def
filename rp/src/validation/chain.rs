//! The certificate chain (EN 319 102-1, 5.2.6): from the signing certificate through the
//! embedded certificates to one of the trust anchors. Validity periods are not checked here
//! (the signing time decides them, [`super::decide`]); OpenSSL builds the chain and checks
//! its signatures and CA constraints.

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509StoreContext};

use super::cms::EmbeddedCert;

/// Most certificates in a chain (signer, intermediates, root).
const MAX_DEPTH: usize = 8;

/// Why no chain was found: the text names the CA that is missing where it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChainError(pub String);

/// A chain, signer first, root (a trust anchor) last.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The certificates, leaf first.
    pub certs: Vec<X509>,
}

fn subject(c: &X509) -> String {
    c.to_der()
        .ok()
        .and_then(|d| <x509_cert::Certificate as der::Decode>::from_der(&d).ok())
        .map(|c| c.tbs_certificate().subject().to_string())
        .unwrap_or_else(|| "(unreadable name)".into())
}

fn issuer(c: &X509) -> String {
    c.to_der()
        .ok()
        .and_then(|d| <x509_cert::Certificate as der::Decode>::from_der(&d).ok())
        .map(|c| c.tbs_certificate().issuer().to_string())
        .unwrap_or_else(|| "(unreadable name)".into())
}

/// Builds the chain of `signer` with `embedded` certificates as untrusted intermediates and
/// `anchors` as the only trust anchors (no system store).
pub fn build(
    signer: &[u8],
    embedded: &[EmbeddedCert],
    anchors: &[X509],
) -> Result<Chain, ChainError> {
    let e = |e: openssl::error::ErrorStack| ChainError(format!("OpenSSL: {e}"));
    let leaf = X509::from_der(signer).map_err(e)?;
    let mut untrusted = Stack::new().map_err(e)?;
    let mut pool = Vec::new();
    for c in embedded {
        if let Ok(x) = X509::from_der(&c.der) {
            untrusted.push(x.clone()).map_err(e)?;
            pool.push(x);
        }
    }
    if anchors.is_empty() {
        return Err(missing(&leaf, &pool, "no trust anchor was given"));
    }
    let mut store = X509StoreBuilder::new().map_err(e)?;
    for a in anchors {
        store.add_cert(a.clone()).map_err(e)?;
    }
    store.set_flags(X509VerifyFlags::NO_CHECK_TIME).map_err(e)?;
    let store = store.build();
    let mut ctx = X509StoreContext::new().map_err(e)?;
    let built = ctx
        .init(&store, &leaf, &untrusted, |c| {
            if !c.verify_cert()? {
                return Ok(Err(c.error().error_string().to_owned()));
            }
            Ok(Ok(c
                .chain()
                .map(|s| s.iter().map(|c| c.to_owned()).collect::<Vec<_>>())
                .unwrap_or_default()))
        })
        .map_err(e)?;
    match built {
        Ok(certs) if !certs.is_empty() && certs.len() <= MAX_DEPTH => Ok(Chain { certs }),
        Ok(_) => Err(ChainError(
            "the certificate chain is empty or too long".into(),
        )),
        Err(why) => Err(missing(&leaf, &pool, &why)),
    }
}

/// Names the CA above the highest certificate reachable from `leaf` through `pool`.
fn missing(leaf: &X509, pool: &[X509], why: &str) -> ChainError {
    let mut top = leaf.clone();
    for _ in 0..MAX_DEPTH {
        let next = pool.iter().find(|c| {
            c.issued(&top) == openssl::x509::X509VerifyResult::OK
                && c.to_der().ok() != top.to_der().ok()
        });
        match next {
            Some(n) => top = n.clone(),
            None => break,
        }
    }
    let self_signed = top.issued(&top) == openssl::x509::X509VerifyResult::OK;
    let ca = if self_signed {
        subject(&top)
    } else {
        issuer(&top)
    };
    ChainError(format!(
        "no chain to a trust anchor: the CA \"{ca}\" is not among the trust anchors ({why})"
    ))
}
