//! Registration and deletion of `token-rsa` shares (d1'' as an RSA key token object in the
//! HSM, docs/HSM_MODES.md): the device handlers call these; the HSM work is
//! `crate::hsm::Hsm::import_share_key` and friends.

use tandem_client_core::envelope::ShareKeyEnvelope;

use super::{ApiError, App};
use crate::hsm::HsmError;

const FIELD: &str = "server_share_envelope";

/// Checks the form of a share-key envelope (algorithm 0x03) before anything touches the HSM.
pub(super) fn parse_share_key_envelope(bytes: &[u8]) -> Result<(), ApiError> {
    ShareKeyEnvelope::parse(bytes).map(|_| ()).map_err(|_| {
        ApiError::InvalidArgument(format!(
            "{FIELD} is not a share-key envelope (this server keeps d1'' as an RSA key in its \
             HSM: server_share_form RSA_KEY)"
        ))
    })
}

/// Imports the share key of one submitted key pair into the HSM as a token object; returns
/// the blob to store. A share key that does not unwrap, or whose modulus is not
/// `client_modulus`, is the sender's fault, told without detail.
pub(super) fn import_share_key(
    app: &App,
    envelope: &[u8],
    client_modulus: &[u8],
) -> Result<Vec<u8>, ApiError> {
    parse_share_key_envelope(envelope)?;
    // Owned copies: the bounded call may outlive this request.
    let (blob, n1) = (envelope.to_vec(), client_modulus.to_vec());
    app.hsm
        .bounded(app.config.hsm.call_timeout(), move |hsm| {
            let parts = ShareKeyEnvelope::parse(&blob).map_err(|_| HsmError::Decryption)?;
            hsm.import_share_key(parts.wrapped_content_key, parts.wrapped_share_key, &n1)
        })
        .map_err(|e| match e {
            HsmError::Decryption
            | HsmError::WrongKey
            | HsmError::BadBlob(_)
            | HsmError::InvalidArgument(_) => ApiError::InvalidArgument(format!(
                "{FIELD} cannot be imported (wrong key, or not a key for the submitted modulus)"
            )),
            other => {
                tracing::error!(error = %other, "the HSM could not import a share key");
                ApiError::Unavailable(format!(
                    "the server's HSM is unavailable ({FIELD} could not be imported); try again later"
                ))
            }
        })
}

/// Destroys share key token objects; failures are logged (the objects are then left on the
/// token, unreachable: the database no longer names them).
pub(super) fn destroy_share_keys(app: &App, blobs: &[Vec<u8>]) {
    for blob in blobs {
        if let Err(e) = app.hsm.destroy_share_key(blob) {
            tracing::warn!(error = %e, "could not destroy a share key token object");
        }
    }
}

/// Share key token objects imported by a request that has not stored them yet: dropped
/// before [`ImportedShareKeys::keep`], it destroys them (a later step of the request failed).
pub(super) struct ImportedShareKeys<'a> {
    app: &'a App,
    blobs: Vec<Vec<u8>>,
}

impl<'a> ImportedShareKeys<'a> {
    pub(super) fn new(app: &'a App) -> Self {
        Self {
            app,
            blobs: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, blob: Vec<u8>) {
        self.blobs.push(blob);
    }

    /// The blobs are stored: keep the objects.
    pub(super) fn keep(mut self) {
        self.blobs.clear();
    }
}

impl Drop for ImportedShareKeys<'_> {
    fn drop(&mut self) {
        if !self.blobs.is_empty() {
            destroy_share_keys(self.app, &self.blobs);
        }
    }
}
