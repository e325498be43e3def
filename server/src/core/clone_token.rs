//! Renewing a key pair's clone-detection token outside a confirmation (the app asks after
//! restoring from a backup or on a schedule). A stale token means the device state was
//! copied: the key pair is disabled, as a confirmation with a stale token would do.

use tandem_client_core::types::{CloneToken, KeyType};

use super::{Clock, Rng};
use crate::store::{Reply, Store, StoreError, secret_hash};

/// The sealed replies of a refresh, built by the shell (the next token travels in one).
pub trait RefreshReplies {
    /// The reply that hands the device its next token.
    fn renewed(&self, next: &CloneToken) -> Reply;
    /// The reply for a stale token (the key pair is disabled).
    fn stale(&self) -> Reply;
}

/// How a refresh ended.
#[derive(Debug)]
pub enum Refreshed {
    /// The token was current; the device must present this one from now on.
    Renewed(CloneToken),
    /// The token was stale: the key pair is now disabled.
    Stale,
}

/// Checks `presented` against the key pair's current token and replaces it with one drawn
/// from `rng`; a stale token disables the key pair. One database transaction with its reply.
/// The caller serialises this with the key pair's confirmations.
pub fn refresh(
    store: &dyn Store,
    clock: &dyn Clock,
    rng: Rng<'_>,
    account_id: &str,
    key_type: KeyType,
    presented: &CloneToken,
    replies: &dyn RefreshReplies,
) -> Result<Refreshed, StoreError> {
    let kp = store.key_pair(account_id, key_type)?;
    let next = CloneToken::generate(&mut &mut *rng);
    let current = store.refresh_clone_token(
        kp.id,
        &secret_hash(presented.as_bytes()),
        &secret_hash(next.as_bytes()),
        clock.now(),
        &replies.renewed(&next),
        &replies.stale(),
    )?;
    if current {
        Ok(Refreshed::Renewed(next))
    } else {
        tracing::warn!(%account_id, %key_type, "clone detected on token refresh");
        Ok(Refreshed::Stale)
    }
}
