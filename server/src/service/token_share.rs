//! Deletion of `token-rsa` shares (d1'' as an RSA key token object in the HSM,
//! docs/HSM_MODES.md) with an account. Their import at registration is
//! [`crate::core::envelope::import_share_key`].

use super::App;

/// Destroys share key token objects; failures are logged (the objects are then left on the
/// token, unreachable: the database no longer names them).
pub(super) fn destroy_share_keys(app: &App, blobs: &[Vec<u8>]) {
    crate::core::envelope::destroy_share_keys(&app.hsm, blobs);
}
