//! The self-service portal: whether a relying party may see an account holder's data or
//! delete one of their accounts with an AUTH session, and what it sees.
//!
//! ```text
//!  request (RP admitted with the portal permission, body validated)
//!    ─▶ the session: this RP's, AUTH, COMPLETE with OK, completed ≤ limit ago
//!         (overview: rp_api.portal_session_seconds; deletion: rp_api.max_auth_age_seconds)
//!    ─▶ the holder: the person (country + national identity) of the answering account
//!    ─▶ overview: their accounts not deleted, keys, certificates, recent transactions
//!    ─▶ deletion: the account by document number, the same person's ─▶ delete (passed in:
//!         the store records the session's use in the deletion's database transaction)
//! ```
//! Deleted accounts are not shown: their secrets are gone, their certificates revoked, and
//! nothing about them can be changed any more; their transactions go with them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::Decode;
use tandem_client_core::types::KeyType;
use tandem_rp::api::portal::{
    self as api, AccountDeleted, CertificateLevel, Holder, KeyPurpose, PortalAccount,
    PortalCertificate, PortalDevice, PortalKey, PortalOverview, PortalTransaction, Revocation,
    TransactionApi, TransactionKind, TransactionResult,
};
use tandem_rp::report::UtcTime;
use x509_cert::Certificate;

use super::Clock;
use super::account::{KeyStatus, key_state};
use super::auth_session::{AuthSessionRefused, RecentAuthentication, recent_authentication};
use crate::lockout::LockoutPolicy;
use crate::store::{
    Account, AccountState, CertRecord, EndResult, HolderTransaction, Identity, Store, StoreError,
    TxKind, TxState,
};

/// What the decisions need besides the request.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// `rp_api.portal_session_seconds`: how old a session may be for the overview.
    pub portal_session_seconds: i64,
    /// `rp_api.max_auth_age_seconds`: how old a session may be for a deletion.
    pub max_auth_age_seconds: i64,
    /// The lockout rule (the keys' attempts left).
    pub lockout: LockoutPolicy,
}

/// Why the portal gets no answer.
#[derive(Debug, thiserror::Error)]
pub enum PortalRefused {
    /// The session does not vouch for anyone ([`super::auth_session`]).
    #[error(transparent)]
    Session(#[from] AuthSessionRefused),
    /// The session was used for a deletion before.
    #[error("this authentication session was used for a deletion already")]
    AlreadyUsed,
    /// No account with that document number belongs to the holder (or it is deleted).
    #[error("the holder has no such account")]
    NoSuchAccount,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A stored record could not be read.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for PortalRefused {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The holder an AUTH session authenticated.
struct Authenticated {
    identity: Identity,
}

/// Checks the session `id` of relying party `rp_uuid` at `now`: AUTH, COMPLETE with OK, no
/// older than `max_age`; the holder is the person of the account that answered.
fn authenticated(
    store: &dyn Store,
    rp_uuid: &str,
    id: &str,
    max_age: i64,
    now: i64,
) -> Result<Authenticated, PortalRefused> {
    let RecentAuthentication { account_id, .. } =
        recent_authentication(store, rp_uuid, id, max_age, now)?;
    // The account may have been deleted since: its person is still the holder.
    let account = store.account(&account_id)?;
    Ok(Authenticated {
        identity: account.identity,
    })
}

/// The overview for the holder of the AUTH session `auth_session_id` of relying party
/// `rp_uuid` (admitted, with the portal permission) at `clock`'s time.
pub fn overview(
    store: &dyn Store,
    settings: &PortalSettings,
    rp_uuid: &str,
    auth_session_id: &str,
    clock: &dyn Clock,
) -> Result<PortalOverview, PortalRefused> {
    let now = clock.now();
    let holder = authenticated(
        store,
        rp_uuid,
        auth_session_id,
        settings.portal_session_seconds,
        now,
    )?
    .identity;
    let accounts: Vec<Account> = store
        .accounts_of(&holder.country, &holder.national_id)?
        .into_iter()
        .filter(|a| a.state == AccountState::Active)
        .collect();
    let ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
    let transactions = store
        .recent_transactions_of(&ids, api::MAX_TRANSACTIONS)?
        .into_iter()
        .map(|t| transaction(&t, &accounts))
        .collect::<Result<_, _>>()?;
    let accounts = accounts
        .iter()
        .map(|a| account(store, &settings.lockout, a, now))
        .collect::<Result<_, _>>()?;
    Ok(PortalOverview {
        holder: Holder {
            given_name: holder.given_name,
            surname: holder.surname,
            country: holder.country,
            national_identity_number: holder.national_id,
        },
        accounts,
        transactions,
    })
}

/// Deletes the holder's account `document_number` with the fresh AUTH session
/// `auth_session_id`; `delete(account_id)` does it (the store and the HSM in production:
/// [`super::account::delete_for_portal`]) and answers false when the session was used
/// before.
pub fn delete_account(
    store: &dyn Store,
    settings: &PortalSettings,
    rp_uuid: &str,
    auth_session_id: &str,
    document_number: &str,
    clock: &dyn Clock,
    delete: &dyn Fn(&str) -> Result<bool, StoreError>,
) -> Result<AccountDeleted, PortalRefused> {
    let now = clock.now();
    let holder = authenticated(
        store,
        rp_uuid,
        auth_session_id,
        settings.max_auth_age_seconds,
        now,
    )?
    .identity;
    let account = match store.account_by_document(document_number) {
        Ok(a) => a,
        Err(StoreError::NotFound(_)) => return Err(PortalRefused::NoSuchAccount),
        Err(e) => return Err(e.into()),
    };
    if account.identity.country != holder.country
        || account.identity.national_id != holder.national_id
    {
        return Err(PortalRefused::NoSuchAccount);
    }
    let unrevoked: Vec<String> = store
        .certificates_of(&account.id)?
        .into_iter()
        .filter(|c| c.revoked.is_none())
        .map(|c| c.serial_hex)
        .collect();
    // A deleted account still reaches the store: a session used already answers 409 there,
    // before the account's state (404) is looked at.
    match delete(&account.id) {
        Ok(true) => Ok(AccountDeleted {
            deleted: account.document_number,
            revoked_certificates: unrevoked,
        }),
        Ok(false) => Err(PortalRefused::AlreadyUsed),
        Err(StoreError::NotFound(_)) => Err(PortalRefused::NoSuchAccount),
        Err(e) => Err(e.into()),
    }
}

fn time(secs: i64) -> Result<UtcTime, PortalRefused> {
    UtcTime::from_unix_secs(u64::try_from(secs).unwrap_or(0))
        .map_err(|e| PortalRefused::Internal(e.to_string()))
}

fn purpose(kt: KeyType) -> KeyPurpose {
    match kt {
        KeyType::Auth => KeyPurpose::Auth,
        KeyType::Sign => KeyPurpose::Sign,
    }
}

fn account(
    store: &dyn Store,
    lockout: &LockoutPolicy,
    a: &Account,
    now: i64,
) -> Result<PortalAccount, PortalRefused> {
    let key_pairs = store.key_pairs(&a.id)?;
    let last_used = key_pairs.iter().filter_map(|kp| kp.last_attempt_at).max();
    let keys = key_pairs
        .iter()
        .map(|kp| {
            let st = key_state(kp, lockout, now);
            let (status, locked_until) = match st.status {
                KeyStatus::Active => (api::KeyStatus::Active, None),
                KeyStatus::Locked { until } => (api::KeyStatus::Locked, Some(time(until)?)),
                KeyStatus::Disabled => (api::KeyStatus::Disabled, None),
            };
            Ok(PortalKey {
                purpose: purpose(st.key_type),
                status,
                locked_until,
                wrong_pin_attempts: st.consecutive_failures,
                attempts_left: st.attempts_before_lock,
            })
        })
        .collect::<Result<_, PortalRefused>>()?;
    let certificates = store
        .certificates_of(&a.id)?
        .iter()
        .map(certificate)
        .collect::<Result<_, _>>()?;
    Ok(PortalAccount {
        document_number: a.document_number.clone(),
        state: api::AccountState::Active,
        created: time(a.created_at)?,
        expires: time(a.expires_at)?,
        device: PortalDevice {
            registered: time(a.created_at)?,
            last_used: last_used.map(time).transpose()?,
        },
        keys,
        certificates,
    })
}

fn certificate(c: &CertRecord) -> Result<PortalCertificate, PortalRefused> {
    let level = match c.level.as_str() {
        "QUALIFIED" => CertificateLevel::Qualified,
        "ADVANCED" => CertificateLevel::Advanced,
        other => {
            return Err(PortalRefused::Internal(format!(
                "certificate level {other}"
            )));
        }
    };
    let subject = Certificate::from_der(&c.der)
        .map_err(|e| PortalRefused::Internal(format!("certificate {}: {e}", c.serial_hex)))?
        .tbs_certificate()
        .subject()
        .to_string();
    Ok(PortalCertificate {
        serial: c.serial_hex.clone(),
        purpose: purpose(c.key_type),
        level,
        subject,
        not_before: time(c.not_before)?,
        not_after: time(c.not_after)?,
        revoked: c
            .revoked
            .map(|(at, reason)| {
                Ok::<_, PortalRefused>(Revocation {
                    time: time(at)?,
                    reason,
                })
            })
            .transpose()?,
        der: STANDARD.encode(&c.der),
    })
}

fn transaction(
    t: &HolderTransaction,
    accounts: &[Account],
) -> Result<PortalTransaction, PortalRefused> {
    let result = match (t.state, t.end_result) {
        (TxState::Running, _) => TransactionResult::Running,
        (TxState::Complete, None) => {
            return Err(PortalRefused::Internal(format!(
                "transaction {} complete without a result",
                t.id
            )));
        }
        (TxState::Complete, Some(r)) => match r {
            EndResult::Ok => TransactionResult::Ok,
            EndResult::UserRefused => TransactionResult::UserRefused,
            EndResult::Timeout => TransactionResult::Timeout,
            EndResult::WrongVc => TransactionResult::WrongVc,
            EndResult::DocumentUnusable => TransactionResult::DocumentUnusable,
            EndResult::ServerError => TransactionResult::ServerError,
            EndResult::UserRefusedInteraction => TransactionResult::UserRefusedInteraction,
            EndResult::RequiredInteractionNotSupportedByApp => {
                TransactionResult::RequiredInteractionNotSupportedByApp
            }
            EndResult::ProtocolFailure => TransactionResult::ProtocolFailure,
            EndResult::UserRefusedCertChoice => TransactionResult::UserRefusedCertChoice,
            EndResult::ExpectedLinkedSession => TransactionResult::ExpectedLinkedSession,
        },
    };
    Ok(PortalTransaction {
        time: time(t.created_at)?,
        completed: t.completed_at.map(time).transpose()?,
        relying_party_name: t.relying_party.clone(),
        kind: match t.kind {
            TxKind::Authentication => TransactionKind::Authentication,
            TxKind::Signature => TransactionKind::Signature,
            TxKind::CertificateChoice => TransactionKind::CertificateChoice,
        },
        api: if t.rest {
            TransactionApi::RpApiV3
        } else {
            TransactionApi::Grpc
        },
        result,
        document_number: t.answered_by.as_ref().and_then(|id| {
            accounts
                .iter()
                .find(|a| &a.id == id)
                .map(|a| a.document_number.clone())
        }),
    })
}

#[cfg(test)]
#[path = "portal_tests.rs"]
mod tests;
