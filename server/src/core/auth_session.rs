//! Whether a relying party's AUTH session vouches for its holder now: the rule that the proof
//! of origin ([`super::origin`]) and the portal ([`super::portal`]) share, written once.
//!
//! The session must be this relying party's own (another one's looks like no session at all
//! to the caller), an authentication, COMPLETE with OK, and completed no longer ago than the
//! caller's limit. What a session may then be used for (once, or for how long) is the
//! caller's decision.

use tandem_rp::api::session as api_session;

use crate::store::{EndResult, Store, StoreError, TxState};

/// Why an AUTH session does not vouch for anyone.
#[derive(Debug, thiserror::Error)]
pub enum AuthSessionRefused {
    /// No session with that id.
    #[error("no such session")]
    NoSuchSession,
    /// Another relying party started the session.
    #[error("the session belongs to another relying party")]
    ForeignSession,
    /// Not an AUTH session (a signature or certificate choice).
    #[error("the session is not an authentication session")]
    NotAuthentication,
    /// Still running.
    #[error("the authentication session is not complete")]
    NotComplete,
    /// Completed without OK.
    #[error("the authentication did not succeed")]
    NotSuccessful,
    /// Completed longer ago than allowed.
    #[error("the authentication completed {age} s ago, more than the {max} s allowed")]
    TooOld {
        /// Seconds since it completed.
        age: i64,
        /// The limit.
        max: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record is inconsistent.
    #[error("{0}")]
    Internal(String),
}

/// A session that vouches for its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentAuthentication {
    /// The account whose device answered.
    pub account_id: String,
    /// When the session completed (Unix seconds).
    pub completed_at: i64,
}

/// Checks the session `id` of relying party `rp_uuid` at `now`: its own, AUTH, COMPLETE with
/// OK, completed no more than `max_age` seconds ago.
pub fn recent_authentication(
    store: &dyn Store,
    rp_uuid: &str,
    id: &str,
    max_age: i64,
    now: i64,
) -> Result<RecentAuthentication, AuthSessionRefused> {
    let session = store
        .rp_session(id)?
        .ok_or(AuthSessionRefused::NoSuchSession)?;
    if session.rp_uuid != rp_uuid {
        return Err(AuthSessionRefused::ForeignSession);
    }
    if session.session_type != api_session::AUTH {
        return Err(AuthSessionRefused::NotAuthentication);
    }
    let tx = store.transaction(id, now)?;
    if tx.state != TxState::Complete {
        return Err(AuthSessionRefused::NotComplete);
    }
    if tx.end_result != Some(EndResult::Ok) {
        return Err(AuthSessionRefused::NotSuccessful);
    }
    let (_, completed_at) = store.completion(id)?;
    let completed_at = completed_at
        .ok_or_else(|| AuthSessionRefused::Internal("completed without a time".into()))?;
    let age = now - completed_at;
    if age > max_age {
        return Err(AuthSessionRefused::TooOld { age, max: max_age });
    }
    let account_id = tx
        .answered_by
        .ok_or_else(|| AuthSessionRefused::Internal("OK without an answering account".into()))?;
    Ok(RecentAuthentication {
        account_id,
        completed_at,
    })
}
