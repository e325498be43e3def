//! An account's own affairs outside a transaction: the state of its keys as the lockout rule
//! sees it, and its deletion with every secret it holds.

use tandem_client_core::types::KeyType;

use super::Clock;
use super::envelope;
use crate::hsm::{Hsm, is_token_share_blob};
use crate::lockout::LockoutPolicy;
use crate::store::{KeyPair, KeyPairStatus, PortalDeletion, Reply, Store, StoreError};

/// Whether a key pair can sign now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Locked after wrong PINs until this time (Unix seconds).
    Locked {
        /// End of the lock.
        until: i64,
    },
    /// Disabled for good (PIN lockout, a clone, the operator).
    Disabled,
}

/// A key pair's state for its device or the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyState {
    /// Which key.
    pub key_type: KeyType,
    /// Usable, locked or disabled.
    pub status: KeyStatus,
    /// Wrong PINs in a row so far.
    pub consecutive_failures: u32,
    /// Wrong PINs left before the next lock or the disable (0 when disabled).
    pub attempts_before_lock: u32,
}

/// The state of `kp` at `now` under `policy`.
pub fn key_state(kp: &KeyPair, policy: &LockoutPolicy, now: i64) -> KeyState {
    let status = match kp.locked_until {
        _ if kp.status == KeyPairStatus::Disabled => KeyStatus::Disabled,
        Some(until) if kp.is_locked(now) => KeyStatus::Locked { until },
        _ => KeyStatus::Active,
    };
    KeyState {
        key_type: kp.key_type,
        status,
        consecutive_failures: kp.consecutive_failures,
        attempts_before_lock: if status == KeyStatus::Disabled {
            0
        } else {
            policy.attempts_before_next_lock(kp.consecutive_failures)
        },
    }
}

/// The state of every key pair of an account.
pub fn key_states(
    store: &dyn Store,
    policy: &LockoutPolicy,
    account_id: &str,
    clock: &dyn Clock,
) -> Result<Vec<KeyState>, StoreError> {
    let now = clock.now();
    Ok(store
        .key_pairs(account_id)?
        .iter()
        .map(|kp| key_state(kp, policy, now))
        .collect())
}

/// Who deletes an account (written to the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletedBy {
    /// The account's own device.
    Device,
    /// An operator.
    Operator,
}

impl DeletedBy {
    /// The audit log's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Operator => "operator",
        }
    }
}

/// Deletes an account: in one database transaction the store revokes its certificates,
/// destroys the stored shares and secrets and writes `reply` (the device's answer, for a
/// retransmission); then the HSM forgets the unwrapped server keys and, in token-rsa mode,
/// destroys the `d1''` key objects. The HSM cleanup runs after the commit: a crash between
/// the two leaves a token-rsa key object that no stored share names any more (unusable
/// without its account), never an account whose secrets are half gone.
pub fn delete(
    store: &dyn Store,
    hsm: &Hsm,
    account_id: &str,
    by: DeletedBy,
    reply: Option<&Reply>,
    clock: &dyn Clock,
) -> Result<(), StoreError> {
    with_secrets_destroyed(store, hsm, account_id, || {
        store
            .delete_account(account_id, clock.now(), by.as_str(), reply)
            .map(|()| true)
    })
    .map(|_| ())
}

/// The self-service portal's deletion, confirmed by the AUTH session in `deletion`: as
/// [`delete`], and the store records in the same database transaction that the session was
/// used (audited `by: "portal"` with the relying party and the session). `Ok(false)`, and
/// nothing deleted, when the session was used for a deletion before.
pub fn delete_for_portal(
    store: &dyn Store,
    hsm: &Hsm,
    account_id: &str,
    deletion: &PortalDeletion<'_>,
    clock: &dyn Clock,
) -> Result<bool, StoreError> {
    with_secrets_destroyed(store, hsm, account_id, || {
        store.delete_account_for_portal(account_id, deletion, clock.now())
    })
}

/// Runs the store's deletion `remove` (true: the account was deleted) and then, if it
/// deleted, makes the HSM forget the account's server keys and destroy its token-rsa share
/// keys.
fn with_secrets_destroyed(
    store: &dyn Store,
    hsm: &Hsm,
    account_id: &str,
    remove: impl FnOnce() -> Result<bool, StoreError>,
) -> Result<bool, StoreError> {
    let key_pairs: Vec<KeyPair> = [KeyType::Auth, KeyType::Sign]
        .into_iter()
        .filter_map(|kt| store.key_pair(account_id, kt).ok())
        .collect();
    let share_keys: Vec<Vec<u8>> = key_pairs
        .iter()
        .filter_map(|kp| kp.server_share_blob.clone())
        .filter(|b| is_token_share_blob(b))
        .collect();
    let server_keys: Vec<Vec<u8>> = key_pairs
        .into_iter()
        .filter_map(|kp| kp.server_key_blob)
        .collect();
    if !remove()? {
        return Ok(false);
    }
    // The blobs are gone from the database; their unwrapped copies go too.
    for blob in server_keys {
        hsm.forget_server_key(&blob);
    }
    // token-rsa: d1'' lives on the token; it goes with the account.
    envelope::destroy_share_keys(hsm, &share_keys);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(status: KeyPairStatus, failures: u32, locked_until: Option<i64>) -> KeyPair {
        KeyPair {
            id: 1,
            account_id: "a".into(),
            key_type: KeyType::Sign,
            client_modulus: Vec::new(),
            server_modulus: Vec::new(),
            composite_modulus: Vec::new(),
            server_share_blob: None,
            server_key_blob: None,
            status,
            disabled_reason: None,
            consecutive_failures: failures,
            locked_until,
            clone_token_hash: Vec::new(),
            last_attempt_at: None,
        }
    }

    #[test]
    fn the_state_follows_the_lockout_rule() {
        let p = LockoutPolicy::default();
        let now = 1_000_000;
        let st = key_state(&kp(KeyPairStatus::Active, 1, None), &p, now);
        assert_eq!(st.status, KeyStatus::Active);
        assert_eq!(st.attempts_before_lock, 2);
        // Locked by the third failure; the lock still runs.
        let st = key_state(&kp(KeyPairStatus::Active, 3, Some(now + 10)), &p, now);
        assert_eq!(st.status, KeyStatus::Locked { until: now + 10 });
        assert_eq!(st.attempts_before_lock, 3);
        // The lock is over: active again, the count stays.
        let st = key_state(&kp(KeyPairStatus::Active, 3, Some(now)), &p, now);
        assert_eq!(st.status, KeyStatus::Active);
        assert_eq!(st.consecutive_failures, 3);
        // Disabled wins over a running lock and leaves no attempts.
        let st = key_state(&kp(KeyPairStatus::Disabled, 9, Some(now + 10)), &p, now);
        assert_eq!(st.status, KeyStatus::Disabled);
        assert_eq!(st.attempts_before_lock, 0);
    }
}
