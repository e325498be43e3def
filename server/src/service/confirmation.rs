//! The wire side of confirm, refuse and the clone-token refresh: protobuf ↔
//! [`crate::core::confirm`], [`crate::core::refuse`] and [`crate::core::clone_token`] types,
//! the sealed replies the core asks for, and the core's refusals as [`ApiError`]s.

use tandem_client_core::types::CloneToken;
use tandem_proto::v1 as pb;

use super::{ApiError, App, Retransmission, convert};
use crate::core::clone_token::RefreshReplies;
use crate::core::confirm::{
    ConfirmError, ConfirmOutcome, ConfirmReplies, Confirmed, Confirmer, DeviceAnswer,
};
use crate::core::refuse::{RefuseError, RefuseReason};
use crate::store::Reply;

/// What the app is told when its clone token is stale on a refresh.
pub(super) const STALE_TOKEN: &str = "stale clone-detection token: the key pair is disabled";

/// The server's confirmer (its store, HSM and lockout policy, the system clock).
pub(super) fn confirmer(app: &App) -> Confirmer<'_> {
    Confirmer {
        store: &*app.store,
        hsm: &app.hsm,
        hsm_call_timeout: app.config.hsm.call_timeout(),
        policy: &app.config.lockout,
        scheme_name: &app.config.rp_api.scheme_name,
        clock: &crate::core::SystemClock,
    }
}

/// The device's answer in a `Confirm` request.
pub(super) fn answer_of(req: &pb::ConfirmRequest) -> DeviceAnswer<'_> {
    DeviceAnswer {
        clone_token: &req.clone_token,
        share_envelope: &req.share_envelope,
        chosen_vc: &req.chosen_vc,
        interaction_type_used: &req.interaction_type_used,
        user_challenge: &req.user_challenge,
        encoded_message: &req.encoded_message,
    }
}

/// A `Confirm` answer with the key pair's state after it.
pub(super) fn confirmed_to_pb(c: &Confirmed, app: &App) -> pb::ConfirmResponse {
    let (outcome, token) = match &c.outcome {
        ConfirmOutcome::Accepted { next_clone_token } => {
            (pb::ConfirmOutcome::Accepted, next_clone_token.as_ref())
        }
        ConfirmOutcome::TransactionClosed { next_clone_token } => (
            pb::ConfirmOutcome::TransactionClosed,
            next_clone_token.as_ref(),
        ),
        ConfirmOutcome::WrongPin { .. } => (pb::ConfirmOutcome::WrongPin, None),
        ConfirmOutcome::Locked { .. } => (pb::ConfirmOutcome::Locked, None),
        ConfirmOutcome::Disabled => (pb::ConfirmOutcome::Disabled, None),
        ConfirmOutcome::CloneDetected => (pb::ConfirmOutcome::CloneDetected, None),
        ConfirmOutcome::WrongVc => (pb::ConfirmOutcome::WrongVc, None),
    };
    pb::ConfirmResponse {
        outcome: outcome as i32,
        next_clone_token: token.map(|t| t.as_bytes().to_vec()).unwrap_or_default(),
        key_state: Some(convert::key_state(&c.key_pair, &app.config.lockout, c.at)),
    }
}

/// The sealed replies of one `Confirm` request, and the crash-test hook.
pub(super) struct SealedConfirm<'a> {
    pub(super) app: &'a App,
    pub(super) rt: &'a Retransmission,
}

impl ConfirmReplies for SealedConfirm<'_> {
    fn sealed(&self, confirmed: &Confirmed) -> Reply {
        self.rt.ok(&confirmed_to_pb(confirmed, self.app))
    }

    fn attempt_counted(&self) {
        crash_test_pause();
    }
}

/// The sealed replies of one `RefreshCloneToken` request.
pub(super) struct SealedRefresh<'a>(pub(super) &'a Retransmission);

impl RefreshReplies for SealedRefresh<'_> {
    fn renewed(&self, next: &CloneToken) -> Reply {
        self.0.ok(&pb::RefreshCloneTokenResponse {
            next_clone_token: next.as_bytes().to_vec(),
        })
    }

    fn stale(&self) -> Reply {
        self.0.err(tonic::Code::FailedPrecondition, STALE_TOKEN)
    }
}

/// The reason of a `Refuse` request (`None`: unknown to this server).
pub(super) fn refuse_reason(req: &pb::RefuseRequest) -> Option<RefuseReason> {
    Some(match pb::RefuseReason::try_from(req.reason).ok()? {
        pb::RefuseReason::User => RefuseReason::User,
        pb::RefuseReason::Interaction => RefuseReason::Interaction(req.interaction.clone()),
        pb::RefuseReason::InteractionNotSupported => RefuseReason::InteractionNotSupported,
        pb::RefuseReason::CertChoice => RefuseReason::CertChoice,
        pb::RefuseReason::ExpectedLinkedSession => RefuseReason::ExpectedLinkedSession,
    })
}

/// Test hook for the crash tests: `TANDEM_TEST_PAUSE_AFTER_COUNT_MS` makes the server
/// wait between counting an attempt and judging the share, so a test can kill it exactly
/// there. Unset (the default) it does nothing.
fn crash_test_pause() {
    static PAUSE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var("TANDEM_TEST_PAUSE_AFTER_COUNT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(ms) = pause {
        tracing::warn!(ms, "test hook: pausing after the attempt was counted");
        std::thread::sleep(std::time::Duration::from_millis(*ms));
    }
}

impl From<ConfirmError> for ApiError {
    fn from(e: ConfirmError) -> Self {
        use ConfirmError as E;
        match e {
            E::CloneTokenSize(_)
            | E::ShareSize
            | E::UnknownInteraction
            | E::InteractionNotAsked
            | E::UserChallenge => Self::InvalidArgument(e.to_string()),
            E::Envelope(e) => e.into(),
            E::HsmAborted => Self::Aborted(e.to_string()),
            E::Store(e) => e.into(),
            E::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<RefuseError> for ApiError {
    fn from(e: RefuseError) -> Self {
        use RefuseError as E;
        match e {
            E::UnknownReason
            | E::NotCertificateChoice
            | E::NotSessionInteraction
            | E::NotWaitingForLinkedSession => Self::InvalidArgument(e.to_string()),
            E::Store(e) => e.into(),
            E::Internal(detail) => Self::Internal(detail),
        }
    }
}
