//! Which certificate an account shows for a key, and the level it reaches.

use tandem_client_core::types::KeyType;
use tandem_rp::api::level::CertificateLevel;

use crate::store::{CertRecord, Store, StoreError};

/// The newest certificate of an account's key (`valid_only`: not revoked).
pub fn latest_certificate(
    store: &dyn Store,
    account_id: &str,
    key_type: KeyType,
    valid_only: bool,
) -> Result<Option<CertRecord>, StoreError> {
    Ok(store
        .certificates_of(account_id)?
        .into_iter()
        .rfind(|c| c.key_type == key_type && (!valid_only || c.revoked.is_none())))
}

/// The level a stored certificate reaches (openapi.yml: `QSCD` is a `QUALIFIED` certificate
/// that is QSCD-capable, which the certificate itself says). The error says what could not
/// be read.
pub fn level_reached(c: &CertRecord) -> Result<CertificateLevel, String> {
    let reported = CertificateLevel::from_reported(&c.level)
        .ok_or_else(|| format!("stored certificate level {:?}", c.level))?;
    let qscd = crate::pki::qscd_capable(&c.der).map_err(|e| e.to_string())?;
    Ok(CertificateLevel::of_certificate(reported, qscd))
}
