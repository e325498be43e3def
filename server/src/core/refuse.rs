//! Refusing a transaction: the person declines (or the app cannot show what was asked), and
//! the transaction ends with the result the reason means. Nothing is counted.

use tandem_rp::api::session;
use tandem_rp::api::types;

use super::Clock;
use super::confirm::params_of;
use crate::store::{EndResult, Reply, Store, StoreError};

/// Why the app refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefuseReason {
    /// The person declined.
    User,
    /// REST: the person declined this interaction (RP API name) of the session.
    Interaction(String),
    /// REST: the app supports none of the session's interactions.
    InteractionNotSupported,
    /// REST: the person declined to pick an account in a certificate choice.
    CertChoice,
    /// REST: the app waits for the signing session linked to the device-link certificate
    /// choice it answered, and this is another one.
    ExpectedLinkedSession,
}

/// A refusal by an authenticated account's device.
#[derive(Debug)]
pub struct RefuseRequest<'a> {
    /// The account whose device refuses.
    pub account_id: &'a str,
    /// The transaction refused.
    pub transaction_id: &'a str,
    /// Why; `None` for a reason this server does not know (refused once the transaction is
    /// found).
    pub reason: Option<RefuseReason>,
}

/// Why a refusal was not accepted; nothing was changed. The texts are what the device is told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefuseError {
    /// A reason this server does not know.
    #[error("unknown refuse reason")]
    UnknownReason,
    /// The certificate-choice reason for another kind of session.
    #[error("the certificate-choice refusal reason is only for certificate-choice sessions")]
    NotCertificateChoice,
    /// An interaction the session did not ask for.
    #[error("the refused interaction is not one of the session's")]
    NotSessionInteraction,
    /// `ExpectedLinkedSession` from an app that waits for no linked session (or for this one).
    #[error("this app is not waiting for a linked signing session")]
    NotWaitingForLinkedSession,
    /// The store refused or failed (an unknown transaction, a database error).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not happen (detail for the log only).
    #[error("{0}")]
    Internal(String),
}

/// Ends the transaction with the result `req.reason` means, storing `reply` with the end.
/// `transaction_seconds` is how long a linked signing session may follow its certificate
/// choice. Returns the end result.
pub fn refuse(
    store: &dyn Store,
    clock: &dyn Clock,
    transaction_seconds: u32,
    req: &RefuseRequest<'_>,
    reply: &Reply,
) -> Result<EndResult, RefuseError> {
    let now = clock.now();
    store.transaction_for_account(req.transaction_id, req.account_id, now)?;
    let reason = req.reason.as_ref().ok_or(RefuseError::UnknownReason)?;
    let rest = store.rp_session(req.transaction_id)?;
    // USER_REFUSED_CERT_CHOICE says the person declined to pick an account: only a
    // certificate choice can end that way.
    if *reason == RefuseReason::CertChoice
        && rest
            .as_ref()
            .is_none_or(|s| s.session_type != session::CERT)
    {
        return Err(RefuseError::NotCertificateChoice);
    }
    let params = |s| params_of(s).map_err(RefuseError::Internal);
    let (result, detail) = match (reason, rest) {
        (RefuseReason::User, _) | (_, None) => (EndResult::UserRefused, None),
        (RefuseReason::Interaction(interaction), Some(s)) => {
            let named = types::decode_interactions(
                &params(&s)?.interactions,
                types::InteractionFlow::Notification,
            )
            .map_err(|e| RefuseError::Internal(format!("stored interactions: {e}")))?
            .iter()
            .any(|i| i.interaction_type().as_str() == interaction);
            if !named {
                return Err(RefuseError::NotSessionInteraction);
            }
            (
                EndResult::UserRefusedInteraction,
                Some(interaction.as_str()),
            )
        }
        (RefuseReason::InteractionNotSupported, Some(_)) => {
            (EndResult::RequiredInteractionNotSupportedByApp, None)
        }
        (RefuseReason::CertChoice, Some(_)) => (EndResult::UserRefusedCertChoice, None),
        (RefuseReason::ExpectedLinkedSession, Some(s)) => {
            // Only an app that has just answered a device-link certificate choice waits for a
            // linked session, and the linked session itself is not "another" one.
            let window = i64::from(transaction_seconds);
            let awaited =
                store.recent_device_link_certificate_choice(req.account_id, now - window)?;
            let linked_to_it =
                awaited.is_some() && params(&s)?.linked_session_id.as_deref() == awaited.as_deref();
            if awaited.is_none() || linked_to_it {
                return Err(RefuseError::NotWaitingForLinkedSession);
            }
            (EndResult::ExpectedLinkedSession, None)
        }
    };
    store.end_transaction_with_detail(
        req.transaction_id,
        result,
        detail,
        Some(req.account_id),
        now,
        Some(reply),
    )?;
    Ok(result)
}
