//! Device envelopes (`d1''`, signature shares) checked and opened inside the HSM, and the
//! `token-rsa` share keys imported into it.
//!
//! What the device sent and the HSM refuses is the sender's fault and is told without
//! detail (no oracle); an HSM that fails or does not answer in time is the server's fault
//! ([`EnvelopeProblem::HsmUnavailable`]), and nothing was changed.

use std::time::Duration;

use tandem_client_core::envelope::{EnvelopeParts, ShareKeyEnvelope};
use zeroize::Zeroizing;

use crate::hsm::{Hsm, HsmError};

/// Largest accepted envelope (a sealed share of a 4096-bit key is about 1 KiB).
pub const MAX_ENVELOPE: usize = 8 * 1024;

/// What is wrong with an envelope; [`EnvelopeError`] names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeProblem {
    /// Empty, or larger than [`MAX_ENVELOPE`].
    MissingOrTooLarge,
    /// Not an envelope of a known version and algorithm.
    Malformed,
    /// Does not open under the transport key with the expected context.
    CannotOpen,
    /// Not a share-key envelope (algorithm 0x03) although this server keeps `d1''` as an
    /// RSA key in its HSM (`token-rsa`).
    NotShareKeyEnvelope,
    /// The share key does not unwrap, or is not a key for the submitted modulus.
    CannotImport,
    /// The HSM failed or did not answer in time (`imported`: while importing a share key,
    /// else while opening).
    HsmUnavailable {
        /// Whether the HSM was importing a share key.
        imported: bool,
    },
}

/// An envelope that was refused, or that the HSM could not handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(self.field, self.problem))]
pub struct EnvelopeError {
    /// The request field that held it (`server_share_envelope`, `share_envelope`).
    pub field: &'static str,
    /// What is wrong.
    pub problem: EnvelopeProblem,
}

impl EnvelopeError {
    fn new(field: &'static str, problem: EnvelopeProblem) -> Self {
        Self { field, problem }
    }

    /// Whether the HSM, not the sender, is at fault (retry later; nothing was changed).
    pub fn is_hsm_unavailable(&self) -> bool {
        matches!(self.problem, EnvelopeProblem::HsmUnavailable { .. })
    }
}

fn describe(field: &str, problem: EnvelopeProblem) -> String {
    match problem {
        EnvelopeProblem::MissingOrTooLarge => format!("{field} is missing or too large"),
        EnvelopeProblem::Malformed => format!("{field} is malformed"),
        EnvelopeProblem::CannotOpen => {
            format!("{field} cannot be opened (wrong key or context)")
        }
        EnvelopeProblem::NotShareKeyEnvelope => format!(
            "{field} is not a share-key envelope (this server keeps d1'' as an RSA key in its \
             HSM: server_share_form RSA_KEY)"
        ),
        EnvelopeProblem::CannotImport => format!(
            "{field} cannot be imported (wrong key, or not a key for the submitted modulus)"
        ),
        EnvelopeProblem::HsmUnavailable { imported } => format!(
            "the server's HSM is unavailable ({field} could not be {}); try again later",
            if imported { "imported" } else { "opened" }
        ),
    }
}

/// Checks the form of an envelope (size, version, algorithm) before anything touches the HSM.
pub fn check_envelope(field: &'static str, bytes: &[u8]) -> Result<(), EnvelopeError> {
    if bytes.is_empty() || bytes.len() > MAX_ENVELOPE {
        return Err(EnvelopeError::new(
            field,
            EnvelopeProblem::MissingOrTooLarge,
        ));
    }
    EnvelopeParts::parse(bytes)
        .map_err(|_| EnvelopeError::new(field, EnvelopeProblem::Malformed))?;
    Ok(())
}

/// Opens a device envelope inside the HSM (within `timeout`), bound to `aad`. The plaintext
/// is a secret share: it stays in zeroized memory and is never logged.
pub fn open_envelope(
    hsm: &Hsm,
    timeout: Duration,
    field: &'static str,
    bytes: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    EnvelopeParts::parse(bytes)
        .map_err(|_| EnvelopeError::new(field, EnvelopeProblem::Malformed))?;
    // Owned copies: the bounded call may outlive this request.
    let (blob, aad) = (bytes.to_vec(), aad.to_vec());
    hsm.bounded(timeout, move |hsm| {
        let parts = EnvelopeParts::parse(&blob).map_err(|_| HsmError::Decryption)?;
        hsm.open_envelope(parts.key, &parts.iv, parts.ciphertext, &aad)
    })
    .map_err(|e| match e {
        // What the device sent does not open: its fault, without detail (no oracle).
        HsmError::Decryption | HsmError::BadBlob(_) | HsmError::InvalidArgument(_) => {
            EnvelopeError::new(field, EnvelopeProblem::CannotOpen)
        }
        // The HSM's fault (removed token, device error, no answer in time).
        other => {
            tracing::error!(error = %other, "the HSM could not open {field}");
            EnvelopeError::new(field, EnvelopeProblem::HsmUnavailable { imported: false })
        }
    })
}

/// Checks the form of a share-key envelope (algorithm 0x03) before anything touches the HSM.
pub fn check_share_key_envelope(field: &'static str, bytes: &[u8]) -> Result<(), EnvelopeError> {
    ShareKeyEnvelope::parse(bytes)
        .map(|_| ())
        .map_err(|_| EnvelopeError::new(field, EnvelopeProblem::NotShareKeyEnvelope))
}

/// Imports the share key of one submitted key pair into the HSM as a token object (within
/// `timeout`); returns the blob to store. A share key that does not unwrap, or whose modulus
/// is not `client_modulus`, is the sender's fault, told without detail.
pub fn import_share_key(
    hsm: &Hsm,
    timeout: Duration,
    field: &'static str,
    envelope: &[u8],
    client_modulus: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    check_share_key_envelope(field, envelope)?;
    // Owned copies: the bounded call may outlive this request.
    let (blob, n1) = (envelope.to_vec(), client_modulus.to_vec());
    hsm.bounded(timeout, move |hsm| {
        let parts = ShareKeyEnvelope::parse(&blob).map_err(|_| HsmError::Decryption)?;
        hsm.import_share_key(parts.wrapped_content_key, parts.wrapped_share_key, &n1)
    })
    .map_err(|e| match e {
        HsmError::Decryption
        | HsmError::WrongKey
        | HsmError::BadBlob(_)
        | HsmError::InvalidArgument(_) => EnvelopeError::new(field, EnvelopeProblem::CannotImport),
        other => {
            tracing::error!(error = %other, "the HSM could not import a share key");
            EnvelopeError::new(field, EnvelopeProblem::HsmUnavailable { imported: true })
        }
    })
}

/// Destroys share key token objects; failures are logged (the objects are then left on the
/// token, unreachable: the database no longer names them).
pub fn destroy_share_keys(hsm: &Hsm, blobs: &[Vec<u8>]) {
    for blob in blobs {
        if let Err(e) = hsm.destroy_share_key(blob) {
            tracing::warn!(error = %e, "could not destroy a share key token object");
        }
    }
}

/// Share key token objects imported by a request that has not stored them yet: dropped
/// before [`ImportedShareKeys::keep`], it destroys them (a later step of the request failed).
pub struct ImportedShareKeys<'a> {
    hsm: &'a Hsm,
    blobs: Vec<Vec<u8>>,
}

impl<'a> ImportedShareKeys<'a> {
    /// None imported yet.
    pub fn new(hsm: &'a Hsm) -> Self {
        Self {
            hsm,
            blobs: Vec::new(),
        }
    }

    /// One more imported object, destroyed unless [`Self::keep`] is called.
    pub fn push(&mut self, blob: Vec<u8>) {
        self.blobs.push(blob);
    }

    /// The blobs are stored: keep the objects.
    pub fn keep(mut self) {
        self.blobs.clear();
    }
}

impl std::fmt::Debug for ImportedShareKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedShareKeys")
            .field("count", &self.blobs.len())
            .finish_non_exhaustive()
    }
}

impl Drop for ImportedShareKeys<'_> {
    fn drop(&mut self) {
        if !self.blobs.is_empty() {
            destroy_share_keys(self.hsm, &self.blobs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_field_and_keep_their_texts() {
        assert!(matches!(
            check_envelope("share_envelope", &[]),
            Err(e) if e.to_string() == "share_envelope is missing or too large"
        ));
        assert!(matches!(
            check_envelope("share_envelope", &vec![1u8; MAX_ENVELOPE + 1]),
            Err(e) if e.problem == EnvelopeProblem::MissingOrTooLarge
        ));
        let e = check_envelope("server_share_envelope", &[0x7f, 0, 0]).unwrap_err();
        assert_eq!(e.to_string(), "server_share_envelope is malformed");
        assert!(!e.is_hsm_unavailable());
        let e = EnvelopeError::new("x", EnvelopeProblem::HsmUnavailable { imported: true });
        assert!(e.is_hsm_unavailable());
        assert_eq!(
            e.to_string(),
            "the server's HSM is unavailable (x could not be imported); try again later"
        );
    }
}
