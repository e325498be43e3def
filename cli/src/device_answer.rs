//! How the device simulator answers a session: `confirm` and `scan` confirm any kind of
//! session (authentication, signature, certificate choice; notification, device link or
//! linked), `refuse` and `scan --refuse` refuse it with a reason, and a same-device flow
//! (Web2App / App2App) ends by printing the callback URL the app would open.

use clap::ValueEnum;
use tandem_client_core::grpc::{self as dev, Client};
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;

use super::{describe_key_state, outcome_name, read_pin};

/// Why the person refused (the end result the relying party sees).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReasonArg {
    /// `USER_REFUSED`.
    User,
    /// `USER_REFUSED_INTERACTION` for the interaction shown (or `--interaction`).
    Interaction,
    /// `REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP`.
    InteractionNotSupported,
    /// `USER_REFUSED_CERT_CHOICE`: the person declines to pick an account (certificate
    /// choices only; the server refuses it for any other session).
    CertChoice,
    /// `EXPECTED_LINKED_SESSION`: the app waits for the signing session linked to the
    /// device-link certificate choice it just answered, and this is another one.
    ExpectedLinkedSession,
}

impl From<RefuseReasonArg> for pb::RefuseReason {
    fn from(r: RefuseReasonArg) -> Self {
        match r {
            RefuseReasonArg::User => Self::User,
            RefuseReasonArg::Interaction => Self::Interaction,
            RefuseReasonArg::InteractionNotSupported => Self::InteractionNotSupported,
            RefuseReasonArg::CertChoice => Self::CertChoice,
            RefuseReasonArg::ExpectedLinkedSession => Self::ExpectedLinkedSession,
        }
    }
}

/// True for a certificate-choice session of the REST API (read from the session itself, so
/// that even a session the app cannot show can be refused).
fn is_certificate_choice(t: &pb::PendingTransaction) -> bool {
    t.rp_api.as_ref().is_some_and(|c| c.session_type == "cert")
}

/// The pending transaction `id` of this device.
pub(super) async fn find_pending(
    client: &Client,
    state: &DeviceState,
    id: &str,
) -> anyhow::Result<pb::PendingTransaction> {
    dev::list_pending(client, state)
        .await?
        .into_iter()
        .find(|t| t.transaction_id == id)
        .ok_or_else(|| anyhow::anyhow!("no pending transaction {id}"))
}

/// One line of `tandem device pending`.
pub(super) fn pending_line(state: &DeviceState, t: &pb::PendingTransaction) -> String {
    let p = match dev::prompt(state, t) {
        Ok(p) => p,
        Err(e) => return format!("{}  cannot be shown: {e}", t.transaction_id),
    };
    let flow = t
        .rp_api
        .as_ref()
        .map(|c| format!("  {}", c.flow_type))
        .unwrap_or_default();
    if p.certificate_choice {
        return format!(
            "{}  {}  CertificateChoice  (choose the signing certificate){flow}",
            t.transaction_id, p.relying_party
        );
    }
    let vc = if p.vc_choices.is_empty() {
        p.verification_code.clone()
    } else {
        format!("choose one of {}", p.vc_choices.join(" / "))
    };
    let linked = p
        .linked_session_id
        .as_deref()
        .map(|l| format!("  linked to {l}"))
        .unwrap_or_default();
    format!(
        "{}  {}  {:?}  {:?}  code {}{flow}{linked}",
        t.transaction_id, p.relying_party, p.key_type, p.display_text, vc
    )
}

/// Shows the session on standard error, asks for the PIN unless it is a certificate choice,
/// and confirms it. Returns the server's answer; save the state afterwards.
pub(super) async fn confirm(
    client: &Client,
    state: &mut DeviceState,
    t: &pb::PendingTransaction,
    vc: Option<&str>,
) -> anyhow::Result<dev::Confirmation> {
    let p = dev::prompt(state, t)?;
    let pin = if p.certificate_choice {
        eprintln!(
            "{} asks which signing certificate to use: this account's",
            p.relying_party
        );
        None
    } else {
        if p.verification_code.is_empty() {
            eprintln!("{} asks: {:?}", p.relying_party, p.display_text);
        } else {
            eprintln!(
                "{} asks: {:?} (code {})",
                p.relying_party, p.display_text, p.verification_code
            );
        }
        Some(read_pin(
            "TANDEM_PIN",
            if p.key_type == KeyType::Auth {
                "PIN1"
            } else {
                "PIN2"
            },
        )?)
    };
    Ok(dev::confirm_session(client, state, t, pin.as_ref(), vc).await?)
}

/// Prints the outcome (and the key state, and the callback URL of a same-device flow) and
/// exits with status 3 unless the server accepted.
pub(super) fn report(c: &dev::Confirmation) -> anyhow::Result<()> {
    outln!("{}", outcome_name(c.response.outcome));
    if let Some(ks) = &c.response.key_state {
        outln!("{}", describe_key_state(ks));
    }
    if let Some(url) = &c.callback {
        outln!("callback: {}", url.as_str());
    }
    if c.response.outcome != pb::ConfirmOutcome::Accepted as i32 {
        std::process::exit(3);
    }
    Ok(())
}

/// Refuses `t`: with `reason`, or by default `cert-choice` for a certificate choice and
/// `user` for anything else. `interaction` names the refused interaction for
/// `--reason interaction` (default: the one the app shows). Prints the callback URL of a
/// same-device flow.
pub(super) async fn refuse(
    client: &Client,
    state: &DeviceState,
    t: &pb::PendingTransaction,
    reason: Option<RefuseReasonArg>,
    interaction: Option<String>,
) -> anyhow::Result<()> {
    let reason = reason.unwrap_or(if is_certificate_choice(t) {
        RefuseReasonArg::CertChoice
    } else {
        RefuseReasonArg::User
    });
    let interaction = match (reason, interaction) {
        (RefuseReasonArg::Interaction, Some(i)) => i,
        (RefuseReasonArg::Interaction, None) => dev::prompt(state, t)?
            .interaction
            .map(|i| i.kind)
            .ok_or_else(|| anyhow::anyhow!("this session shows no interaction to refuse"))?,
        (_, Some(_)) => anyhow::bail!("--interaction goes with --reason interaction"),
        (_, None) => String::new(),
    };
    dev::refuse_with(
        client,
        state,
        &t.transaction_id,
        reason.into(),
        &interaction,
    )
    .await?;
    outln!("refused");
    // The refusal stands even if the callback cannot be built.
    match dev::callback_url(t, None) {
        Ok(Some(url)) => outln!("callback: {}", url.as_str()),
        Ok(None) => {}
        Err(e) => eprintln!("no callback URL: {e}"),
    }
    Ok(())
}
