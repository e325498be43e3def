//! Test accounts for relying-party developers: the counterpart of the anchor's Mock Service
//! (`shared/reference/smart-id-rp-api-v3/mock_service.txt`).
//!
//! With `rp_api.test_accounts = true` the server provisions a fixed set of accounts, one per
//! end result, each with a simulated phone that lives inside the server process. The phones
//! are ordinary devices: they registered through the device service over loopback gRPC (real
//! split keys, real certificates from this server's CA), and they answer every session
//! through the same device API the real app uses, after `test_account_delay_ms`. So an
//! `OK` result carries a signature that verifies like any other.
//!
//! Notification sessions are answered as they arrive. Device-link sessions need the link:
//! the relying party posts it to `POST {base}/test-accounts/device-link` (what a user would
//! scan), naming the test account for anonymous sessions.
//!
//! Results no phone can cause on its own (`TIMEOUT`, `DOCUMENT_UNUSABLE`, and `WRONG_VC` for a
//! session without a code choice) are set on the session directly, after the same delay.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tandem_client_core::grpc::{self as dev, Client, ProofOutcome};
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tracing::{info, warn};

use crate::service::App;
use crate::store::{EndResult, Identity, unix_now};

/// What a test account does with every session it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Confirms with the right PIN (and the right code in a three-code choice).
    Ok,
    /// Refuses.
    UserRefused,
    /// Refuses the interaction it was shown (`details.interaction`).
    UserRefusedInteraction,
    /// Reports that it supports none of the session's interactions.
    RequiredInteractionNotSupportedByApp,
    /// Cancels a certificate choice; refuses other sessions (`USER_REFUSED`).
    UserRefusedCertChoice,
    /// Picks a wrong code in a three-code choice; other sessions end with `WRONG_VC`.
    WrongVc,
    /// Never answers: the session ends with `TIMEOUT` after the delay.
    Timeout,
    /// The session ends with `DOCUMENT_UNUSABLE` after the delay.
    DocumentUnusable,
}

impl Behaviour {
    /// The end result relying parties see.
    pub fn end_result(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::UserRefused => "USER_REFUSED",
            Self::UserRefusedInteraction => "USER_REFUSED_INTERACTION",
            Self::RequiredInteractionNotSupportedByApp => {
                "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP"
            }
            Self::UserRefusedCertChoice => "USER_REFUSED_CERT_CHOICE",
            Self::WrongVc => "WRONG_VC",
            Self::Timeout => "TIMEOUT",
            Self::DocumentUnusable => "DOCUMENT_UNUSABLE",
        }
    }
}

/// One test account.
#[derive(Debug, Clone, Copy)]
pub struct TestAccount {
    /// Estonian national identity number (`PNOEE-<id>` is its ETSI semantics identifier).
    pub national_id: &'static str,
    /// What it does.
    pub behaviour: Behaviour,
}

impl TestAccount {
    /// Its document number, fixed so relying parties can write it into their tests.
    pub fn document_number(&self) -> String {
        format!("PNOEE-{}-MOCK-Q", self.national_id)
    }

    /// Its ETSI semantics identifier.
    pub fn semantics_identifier(&self) -> String {
        format!("PNOEE-{}", self.national_id)
    }

    fn identity(&self) -> Identity {
        Identity {
            given_name: self.behaviour.end_result().to_owned(),
            surname: "TESTNUMBER".to_owned(),
            country: "EE".to_owned(),
            national_id: self.national_id.to_owned(),
        }
    }
}

/// The test accounts (documented in docs/RP_API.md).
pub const ACCOUNTS: &[TestAccount] = &[
    TestAccount {
        national_id: "40504040001",
        behaviour: Behaviour::Ok,
    },
    TestAccount {
        national_id: "30403039917",
        behaviour: Behaviour::UserRefused,
    },
    TestAccount {
        national_id: "30403039928",
        behaviour: Behaviour::UserRefusedInteraction,
    },
    TestAccount {
        national_id: "30403039939",
        behaviour: Behaviour::RequiredInteractionNotSupportedByApp,
    },
    TestAccount {
        national_id: "30403039961",
        behaviour: Behaviour::UserRefusedCertChoice,
    },
    TestAccount {
        national_id: "30403039972",
        behaviour: Behaviour::WrongVc,
    },
    TestAccount {
        national_id: "30403039983",
        behaviour: Behaviour::Timeout,
    },
    TestAccount {
        national_id: "30403039994",
        behaviour: Behaviour::DocumentUnusable,
    },
];

/// The simulated phones' PINs. Test accounts are public by design: anyone who can reach
/// the server can make them sign.
const PIN1: &str = "1234";
const PIN2: &str = "12345";

/// Directory (under the data directory) holding the simulated phones' state files.
pub const STATE_DIR: &str = "test-accounts";

/// Why a device link could not be handed to a test account.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The request names no test account (or a document number that is not one).
    #[error("{0}")]
    Invalid(String),
    /// The test accounts are still being provisioned.
    #[error("the test accounts are not ready yet")]
    NotReady,
    /// The server refused the link (authCode, age, person, session state).
    #[error("{0}")]
    Refused(String),
}

struct Phone {
    account: TestAccount,
    /// One operation at a time per phone (the state file rotates clone tokens).
    state: tokio::sync::Mutex<DeviceState>,
    path: PathBuf,
}

struct Inner {
    app: Arc<App>,
    client: Client,
    delay: Duration,
    /// Account id -> phone.
    phones: HashMap<String, Arc<Phone>>,
    /// Transactions already being answered.
    handled: Mutex<HashSet<String>>,
}

/// The running test accounts. Cloned into the REST API for the device-link endpoint.
#[derive(Clone, Default)]
pub struct TestAccounts {
    inner: Arc<tokio::sync::OnceCell<Arc<Inner>>>,
}

impl std::fmt::Debug for TestAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAccounts")
            .field("ready", &self.inner.get().is_some())
            .finish()
    }
}

impl TestAccounts {
    /// Provisions the test accounts (first start: registration through `grpc_url`) and then
    /// answers their sessions until the process ends. Returns at once; progress is logged.
    pub fn start(app: Arc<App>, data_dir: &Path, grpc_url: String, ca_pem: Vec<u8>) -> Self {
        let this = Self::default();
        let dir = data_dir.join(STATE_DIR);
        let cell = Arc::clone(&this.inner);
        tokio::spawn(async move {
            match provision(Arc::clone(&app), &dir, &grpc_url, &ca_pem).await {
                Ok(inner) => {
                    let inner = Arc::new(inner);
                    let _ = cell.set(Arc::clone(&inner));
                    info!(
                        accounts = inner.phones.len(),
                        "test accounts ready (rp_api.test_accounts is on: never in production)"
                    );
                    answer_loop(inner).await;
                }
                Err(e) => warn!(error = format!("{e:#}"), "test accounts unavailable"),
            }
        });
        this
    }

    /// "Scans" a device link with a test account's phone: the account named by
    /// `document_number`, or for a non-anonymous session the account it names. The server
    /// checks the link as for any phone; the answer follows after the delay.
    pub async fn scan(
        &self,
        link: &str,
        document_number: Option<&str>,
    ) -> Result<String, LinkError> {
        let inner = self.inner.get().ok_or(LinkError::NotReady)?;
        let phone = match document_number {
            Some(doc) => inner
                .phones
                .values()
                .find(|p| p.account.document_number() == doc)
                .cloned()
                .ok_or_else(|| LinkError::Invalid(format!("{doc} is not a test account")))?,
            None => named_phone(inner, link).await?,
        };
        let t = {
            let state = phone.state.lock().await;
            dev::claim_device_link(&inner.client, &state, link)
                .await
                .map_err(|e| LinkError::Refused(e.to_string()))?
        };
        let doc = phone.account.document_number();
        if mark_handled(inner, &t.transaction_id) {
            tokio::spawn(answer(Arc::clone(inner), phone, t));
        }
        Ok(doc)
    }
}

/// The test account a device link's session names (document or person).
async fn named_phone(inner: &Arc<Inner>, link: &str) -> Result<Arc<Phone>, LinkError> {
    let parsed = tandem_rp::api::device_link::ParsedLink::parse(link)
        .map_err(|e| LinkError::Invalid(e.to_string()))?;
    let app = Arc::clone(&inner.app);
    let session = app
        .blocking(move |app| Ok(app.store.rp_session_by_token(&parsed.session_token)?))
        .await
        .map_err(|e| LinkError::Refused(e.to_string()))?
        .ok_or_else(|| LinkError::Refused("no session for this device link".into()))?;
    let restriction = session.restriction.unwrap_or_default();
    let found = inner
        .phones
        .values()
        .find(|p| match restriction.split_once(':') {
            Some(("document", doc)) => doc == p.account.document_number(),
            Some(("person", who)) => who == format!("EE:{}", p.account.national_id),
            _ => false,
        });
    match found {
        Some(p) => Ok(Arc::clone(p)),
        None if restriction.is_empty() => Err(LinkError::Invalid(
            "an anonymous session needs documentNumber: which test account scans the link".into(),
        )),
        None => Err(LinkError::Invalid(
            "the session names no test account".into(),
        )),
    }
}

fn mark_handled(inner: &Inner, transaction_id: &str) -> bool {
    let mut h = inner.handled.lock().unwrap_or_else(|e| e.into_inner());
    h.insert(transaction_id.to_owned())
}

/// Registers the missing test accounts and loads the others.
async fn provision(
    app: Arc<App>,
    dir: &Path,
    grpc_url: &str,
    ca_pem: &[u8],
) -> anyhow::Result<Inner> {
    warn!(
        "rp_api.test_accounts is on: provisioning test accounts (never enable this in production)"
    );
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let client = connect(grpc_url, ca_pem).await?;
    let (key_bits, delay_ms) = (
        app.config.rp_api.test_account_key_bits,
        app.config.rp_api.test_account_delay_ms,
    );
    let mut phones = HashMap::new();
    for (i, account) in ACCOUNTS.iter().enumerate() {
        let doc = account.document_number();
        let path = dir.join(format!("{doc}.json"));
        let state = match load(&client, &path).await {
            Some(state) => state,
            None => {
                info!(
                    document = %doc,
                    progress = format!("{}/{}", i + 1, ACCOUNTS.len()),
                    "registering test account"
                );
                match register(&app, &client, account, key_bits).await {
                    Ok(state) => {
                        save(&path, &state)?;
                        state
                    }
                    Err(e) => {
                        warn!(document = %doc, error = format!("{e:#}"), "test account skipped");
                        continue;
                    }
                }
            }
        };
        phones.insert(
            state.account_id.clone(),
            Arc::new(Phone {
                account: *account,
                state: tokio::sync::Mutex::new(state),
                path,
            }),
        );
    }
    Ok(Inner {
        app,
        client,
        delay: Duration::from_millis(delay_ms),
        phones,
        handled: Mutex::new(HashSet::new()),
    })
}

/// Connects to our own device service; it starts right after the REST API, so wait (at
/// most 30 s) for it.
async fn connect(url: &str, ca_pem: &[u8]) -> anyhow::Result<Client> {
    let mut last = None;
    for _ in 0..60 {
        match Client::connect(url, ca_pem).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(anyhow::anyhow!(
        "cannot reach the device service at {url}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// A saved phone whose account the server still knows.
async fn load(client: &Client, path: &Path) -> Option<DeviceState> {
    let bytes = std::fs::read(path).ok()?;
    let state = DeviceState::from_json_bytes(&bytes).ok()?;
    match dev::account(client, &state).await {
        Ok(_) => Some(state),
        Err(e) => {
            warn!(file = %path.display(), error = %e, "test account state is stale; registering again");
            None
        }
    }
}

fn save(path: &Path, state: &DeviceState) -> anyhow::Result<()> {
    crate::fs_mode::write_atomic(path, &state.to_json_bytes()?)
}

/// Registers one test account as a phone would, with the operator's approval given here.
async fn register(
    app: &Arc<App>,
    client: &Client,
    account: &TestAccount,
    key_bits: usize,
) -> anyhow::Result<DeviceState> {
    let device_id = crate::service::random_bytes::<16>();
    let mut reg = dev::register_start(client, device_id).await?;
    let (code, identity, doc) = (
        reg.registration_code.clone(),
        account.identity(),
        account.document_number(),
    );
    app.blocking(move |app| {
        app.store
            .approve_registration_as(&code, &identity, Some(&doc), unix_now())?;
        Ok(())
    })
    .await?;
    let (p1, p2) = (Pin::new(PIN1)?, Pin::new(PIN2)?);
    dev::submit_keys(client, &mut reg, &p1, &p2, key_bits, KdfParams::testing()).await?;
    match dev::prove(client, &reg, &p1, &p2).await? {
        ProofOutcome::Completed(state) => Ok(*state),
        ProofOutcome::PinMismatch { .. } => anyhow::bail!("the PIN proof failed"),
    }
}

/// Answers new sessions of the test accounts: on every account event, and every 5 s in
/// case an event was missed.
async fn answer_loop(inner: Arc<Inner>) {
    let mut events = inner.app.events.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        let only = tokio::select! {
            ev = events.recv() => match ev {
                Ok(account_id) if inner.phones.contains_key(&account_id) => Some(account_id),
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => None,
        };
        for (id, phone) in &inner.phones {
            if only.as_ref().is_some_and(|o| o != id) {
                continue;
            }
            let list = {
                let state = phone.state.lock().await;
                dev::list_pending(&inner.client, &state).await
            };
            match list {
                Ok(list) => {
                    for t in list {
                        if mark_handled(&inner, &t.transaction_id) {
                            tokio::spawn(answer(Arc::clone(&inner), Arc::clone(phone), t));
                        }
                    }
                }
                Err(e) => {
                    warn!(document = %phone.account.document_number(), error = %e, "test account cannot list its sessions")
                }
            }
        }
    }
}

/// Answers one session after the delay, as the account's behaviour says.
async fn answer(inner: Arc<Inner>, phone: Arc<Phone>, t: pb::PendingTransaction) {
    tokio::time::sleep(inner.delay).await;
    let doc = phone.account.document_number();
    if let Err(e) = act(&inner, &phone, &t).await {
        warn!(document = %doc, transaction = %t.transaction_id, error = format!("{e:#}"), "test account could not answer");
    } else {
        info!(document = %doc, transaction = %t.transaction_id, result = phone.account.behaviour.end_result(), "test account answered");
    }
}

/// What a test account's phone does with one session.
enum Action<'a> {
    /// Confirm with the PIN, choosing this code if the session offers a choice.
    Confirm(Option<String>),
    /// Answer a certificate choice with this account's certificate.
    ChooseCertificate,
    /// Refuse with a reason (and the refused interaction).
    Refuse(pb::RefuseReason, &'a str),
    /// End the session with a result no phone reports by itself.
    End(EndResult),
}

async fn act(inner: &Inner, phone: &Phone, t: &pb::PendingTransaction) -> anyhow::Result<()> {
    let mut state = phone.state.lock().await;
    let p = dev::prompt(&state, t)?;
    let choice = !p.vc_choices.is_empty();
    let shown = p
        .interaction
        .as_ref()
        .map(|i| i.kind.as_str())
        .unwrap_or_default();
    let action = match phone.account.behaviour {
        Behaviour::Ok if p.certificate_choice => Action::ChooseCertificate,
        Behaviour::Ok => Action::Confirm(choice.then(|| p.verification_code.clone())),
        Behaviour::UserRefused => Action::Refuse(pb::RefuseReason::User, ""),
        Behaviour::UserRefusedInteraction => Action::Refuse(pb::RefuseReason::Interaction, shown),
        Behaviour::RequiredInteractionNotSupportedByApp => {
            Action::Refuse(pb::RefuseReason::InteractionNotSupported, "")
        }
        Behaviour::UserRefusedCertChoice if p.certificate_choice => {
            Action::Refuse(pb::RefuseReason::CertChoice, "")
        }
        Behaviour::UserRefusedCertChoice => Action::Refuse(pb::RefuseReason::User, ""),
        Behaviour::WrongVc if choice => Action::Confirm(
            p.vc_choices
                .iter()
                .find(|c| **c != p.verification_code)
                .cloned(),
        ),
        Behaviour::WrongVc => Action::End(EndResult::WrongVc),
        Behaviour::Timeout => Action::End(EndResult::Timeout),
        Behaviour::DocumentUnusable => Action::End(EndResult::DocumentUnusable),
    };
    let client = &inner.client;
    let tx = t.transaction_id.as_str();
    match action {
        Action::Confirm(vc) => {
            let pin = Pin::new(if p.key_type == KeyType::Auth {
                PIN1
            } else {
                PIN2
            })?;
            let resp = dev::confirm(client, &mut state, t, &pin, vc.as_deref()).await?;
            save(&phone.path, &state)?;
            let expected = if phone.account.behaviour == Behaviour::Ok {
                pb::ConfirmOutcome::Accepted
            } else {
                pb::ConfirmOutcome::WrongVc
            };
            anyhow::ensure!(
                resp.outcome == expected as i32,
                "unexpected confirmation outcome {}",
                resp.outcome
            );
        }
        Action::ChooseCertificate => {
            let prepared = dev::prepare_certificate_choice(&state, t)?;
            dev::send_confirm(client, &mut state, &prepared).await?;
            save(&phone.path, &state)?;
        }
        Action::Refuse(reason, interaction) => {
            dev::refuse_with(client, &state, tx, reason, interaction).await?;
        }
        Action::End(result) => end(inner, &state.account_id, tx, result).await?,
    }
    Ok(())
}

/// Ends a session with a result no phone reports by itself.
async fn end(inner: &Inner, account_id: &str, tx: &str, result: EndResult) -> anyhow::Result<()> {
    let (account, tx_id) = (account_id.to_owned(), tx.to_owned());
    inner
        .app
        .blocking(move |app| {
            app.store.end_transaction_with_detail(
                &tx_id,
                result,
                None,
                Some(&account),
                unix_now(),
                None,
            )?;
            app.notify(&account);
            Ok(())
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_has_its_own_identity_and_document_number() {
        let docs: HashSet<String> = ACCOUNTS.iter().map(TestAccount::document_number).collect();
        let ids: HashSet<&str> = ACCOUNTS.iter().map(|a| a.national_id).collect();
        assert_eq!(docs.len(), ACCOUNTS.len());
        assert_eq!(ids.len(), ACCOUNTS.len());
        let results: HashSet<&str> = ACCOUNTS.iter().map(|a| a.behaviour.end_result()).collect();
        assert_eq!(results.len(), ACCOUNTS.len(), "one account per end result");
        assert_eq!(ACCOUNTS[0].document_number(), "PNOEE-40504040001-MOCK-Q");
        assert_eq!(ACCOUNTS[0].semantics_identifier(), "PNOEE-40504040001");
    }
}
