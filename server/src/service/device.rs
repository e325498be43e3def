//! The device gRPC service: registration, pending transactions, confirm / refuse, key
//! state, clone-token refresh, account info and deletion.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use rand_core::{OsRng, RngCore};
use tandem_client_core::envelope;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_proto::v1::device_server::Device;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};
use tracing::{info, instrument};

use super::convert::{self, exact, ident};
use super::registration::{self, SealedReplies};
use super::rp_device::RpConfirm;
use super::{ApiError, App, Retransmission, now};
use crate::core::SystemClock;
use crate::core::register;
use crate::lockout::AttemptCounters;
use crate::signing::{self, ServerKeyRef, ShareVerdict};
use crate::store::{self, Account, AttemptGate, KeyPairStatus, secret_hash};

/// A conversion that cannot fail after the length check before it.
fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The device service.
#[derive(Debug, Clone)]
pub struct DeviceService {
    app: Arc<App>,
}

impl DeviceService {
    /// Wraps the shared state.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

type Res<T> = Result<Response<T>, Status>;

fn respond<T>(r: Result<T, ApiError>) -> Res<T> {
    r.map(Response::new).map_err(ApiError::into_status)
}

/// For handlers whose answer may come from a stored reply (which can be an error status).
fn answer<T>(r: Result<Result<T, Status>, ApiError>) -> Res<T> {
    match r {
        Ok(Ok(r)) => Ok(Response::new(r)),
        Ok(Err(status)) => Err(status),
        Err(e) => Err(e.into_status()),
    }
}

/// A `Confirm` answer with the key pair's state after it.
fn confirm_response(
    outcome: pb::ConfirmOutcome,
    next_clone_token: Vec<u8>,
    kp: &store::KeyPair,
    policy: &crate::lockout::LockoutPolicy,
    now: i64,
) -> pb::ConfirmResponse {
    pb::ConfirmResponse {
        outcome: outcome as i32,
        next_clone_token,
        key_state: Some(convert::key_state(kp, policy, now)),
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// Checks the form of a device envelope before anything touches the HSM
/// ([`crate::core::envelope::check_envelope`]).
fn parse_envelope(field: &'static str, bytes: &[u8]) -> Result<(), ApiError> {
    Ok(crate::core::envelope::check_envelope(field, bytes)?)
}

/// Whether this server keeps `d1''` as RSA key token objects (`token-rsa`).
fn token_rsa(app: &App) -> bool {
    app.config.hsm.share_exponentiation == crate::hsm::ShareExponentiation::TokenRsa
}

/// Opens a device envelope inside the HSM. A bad envelope is the sender's fault.
fn open_envelope(
    app: &App,
    field: &'static str,
    bytes: &[u8],
    aad: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, ApiError> {
    Ok(crate::core::envelope::open_envelope(
        &app.hsm,
        app.config.hsm.call_timeout(),
        field,
        bytes,
        aad,
    )?)
}

/// What the app is told when the HSM fails (or does not answer in time) during a
/// confirmation. The same whether or not the PIN was right: no PIN oracle.
const HSM_ABORT_MESSAGE: &str = "the server could not complete the signature (HSM failure); the transaction ended with SERVER_ERROR and no PIN attempt was counted";

/// A share s1' must be a number below n1 of n1's length.
fn check_share(share: &[u8], n1: &[u8]) -> Result<(), ApiError> {
    if share.len() != n1.len() || share >= n1 {
        return Err(ApiError::InvalidArgument(
            "signature share has the wrong size".into(),
        ));
    }
    Ok(())
}

/// Authenticates a device credential.
fn authenticate(app: &App, cred: Option<&pb::DeviceCredential>) -> Result<Account, ApiError> {
    let cred = cred.ok_or_else(|| ApiError::Unauthenticated("device credential missing".into()))?;
    ident("account_id", &cred.account_id)
        .map_err(|_| ApiError::Unauthenticated("unknown device".into()))?;
    app.store
        .authenticate_device(&cred.account_id, &cred.device_secret)?
        .ok_or_else(|| ApiError::Unauthenticated("unknown device or account deleted".into()))
}

fn pending_to_pb(
    app: &App,
    t: &store::TxForAccount,
    account_id: &str,
) -> Result<pb::PendingTransaction, ApiError> {
    let rp_api = super::rp_device::context(app, t, account_id)?;
    let (hash, scheme) = (t.tx.hash, t.tx.scheme);
    Ok(pb::PendingTransaction {
        transaction_id: t.tx.id.clone(),
        kind: if t.tx.kind == store::TxKind::Authentication {
            pb::TransactionKind::Authentication as i32
        } else {
            pb::TransactionKind::Signature as i32
        },
        relying_party_name: t.tx.relying_party.clone(),
        display_text: t.tx.display_text.clone(),
        signing_request: Some(pb::SigningRequest {
            key_type: convert::key_type_to_pb(t.tx.key_type),
            scheme: convert::scheme_to_pb(scheme),
            hash: convert::hash_to_pb(hash),
            digest: t.tx.digest.clone(),
            encoded_message: t.encoded_message.clone(),
        }),
        vc_choices: t.tx.vc_choices.clone(),
        expires_at_unix: t.tx.expires_at,
        rp_api,
    })
}

#[tonic::async_trait]
impl Device for DeviceService {
    async fn get_server_info(
        &self,
        _request: Request<pb::GetServerInfoRequest>,
    ) -> Res<pb::ServerInfo> {
        Ok(Response::new(pb::ServerInfo {
            transport_public_key_der: self.app.transport_key_der.clone(),
            transport_key_id: 1,
            client_key_bits: self
                .app
                .config
                .keys
                .client_key_bits
                .iter()
                .map(|&b| b as u32)
                .collect(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            server_share_form: if token_rsa(&self.app) {
                pb::ServerShareForm::RsaKey
            } else {
                pb::ServerShareForm::Exponent
            } as i32,
        }))
    }

    #[instrument(skip_all)]
    async fn start_registration(
        &self,
        request: Request<pb::StartRegistrationRequest>,
    ) -> Res<pb::StartRegistrationResponse> {
        let req = request.into_inner();
        respond(
            self.app
                .blocking(move |app| {
                    let device_id = exact("device_id", &req.device_id, 16)?;
                    let device_challenge = exact("device_challenge", &req.device_challenge, 32)?;
                    let rt = Retransmission::new(
                        &app.reply_master,
                        format!("start-registration:{}", hex::encode(&req.device_id)),
                        &req.nonce,
                        &req,
                    )?;
                    if let Some(stored) = rt.lookup::<pb::StartRegistrationResponse>(&app.store)? {
                        return stored
                            .map_err(|s| ApiError::FailedPrecondition(s.message().into()));
                    }
                    let start = register::StartRequest {
                        device_id: device_id.try_into().map_err(internal)?,
                        device_challenge: device_challenge.try_into().map_err(internal)?,
                    };
                    let started = registration::with_registrar(app, |ctx, rng| {
                        register::start(ctx, rng, &start, &SealedReplies(&rt))
                    })?;
                    Ok(registration::started_to_pb(&started))
                })
                .await,
        )
    }

    async fn get_registration(
        &self,
        request: Request<pb::GetRegistrationRequest>,
    ) -> Res<pb::RegistrationStatus> {
        let req = request.into_inner();
        respond(
            self.app
                .blocking(move |app| {
                    let reg =
                        registration::find(app, &req.registration_id, &req.registration_secret)?;
                    let status = register::status(&reg, &SystemClock);
                    Ok(registration::status_to_pb(&status))
                })
                .await,
        )
    }

    #[instrument(skip_all, fields(registration_id = %request.get_ref().registration_id))]
    async fn submit_keys(
        &self,
        request: Request<pb::SubmitKeysRequest>,
    ) -> Res<pb::SubmitKeysResponse> {
        let req = request.into_inner();
        let result = self
            .app
            .blocking(move |app| {
                let reg = registration::find(app, &req.registration_id, &req.registration_secret)?;
                let rt = Retransmission::new(
                    &app.reply_master,
                    format!("registration:{}", reg.id()),
                    &req.nonce,
                    &req,
                )?;
                if let Some(stored) = rt.lookup::<pb::SubmitKeysResponse>(&app.store)? {
                    return Ok(stored);
                }
                let reg = reg.awaiting_keys(&SystemClock)?;
                let keys = registration::key_submissions(&req.keys)?;
                let challenges = registration::with_registrar(app, |ctx, rng| {
                    register::submit_keys(ctx, rng, reg, &keys, &SealedReplies(&rt))
                })?;
                Ok(Ok(registration::challenges_to_pb(&challenges)))
            })
            .await;
        answer(result)
    }

    #[instrument(skip_all, fields(registration_id = %request.get_ref().registration_id))]
    async fn complete_registration(
        &self,
        request: Request<pb::CompleteRegistrationRequest>,
    ) -> Res<pb::CompleteRegistrationResponse> {
        let req = request.into_inner();
        let result = self
            .app
            .blocking(move |app| {
                let reg = registration::find(app, &req.registration_id, &req.registration_secret)?;
                let rt = Retransmission::new(
                    &app.reply_master,
                    format!("registration:{}", reg.id()),
                    &req.nonce,
                    &req,
                )?;
                if let Some(stored) = rt.lookup::<pb::CompleteRegistrationResponse>(&app.store)? {
                    return Ok(stored);
                }
                let reg = reg.awaiting_proof(&SystemClock)?;
                let shares = registration::proof_shares(&req.shares)?;
                let outcome = registration::with_registrar(app, |ctx, rng| {
                    register::complete(ctx, rng, reg, &shares, &SealedReplies(&rt))
                })?;
                Ok(Ok(registration::completion_to_pb(&outcome)))
            })
            .await;
        answer(result)
    }

    async fn list_pending(
        &self,
        request: Request<pb::ListPendingRequest>,
    ) -> Res<pb::ListPendingResponse> {
        let req = request.into_inner();
        respond(
            self.app
                .blocking(move |app| {
                    let acc = authenticate(app, req.credential.as_ref())?;
                    let pending = app.store.pending_for_account(&acc.id, now())?;
                    Ok(pb::ListPendingResponse {
                        transactions: pending
                            .iter()
                            .map(|t| pending_to_pb(app, t, &acc.id))
                            .collect::<Result<_, _>>()?,
                    })
                })
                .await,
        )
    }

    type WatchPendingStream =
        Pin<Box<dyn Stream<Item = Result<pb::PendingTransaction, Status>> + Send + 'static>>;

    async fn watch_pending(
        &self,
        request: Request<pb::ListPendingRequest>,
    ) -> Res<Self::WatchPendingStream> {
        let req = request.into_inner();
        let acc = self
            .app
            .blocking(move |app| authenticate(app, req.credential.as_ref()))
            .await
            .map_err(ApiError::into_status)?;
        let app = Arc::clone(&self.app);
        let mut events = app.events.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut sent = HashSet::new();
            loop {
                let account_id = acc.id.clone();
                let pending = app
                    .blocking(move |app| Ok(app.store.pending_for_account(&account_id, now())?))
                    .await;
                let pending = match pending {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e.into_status())).await;
                        return;
                    }
                };
                for t in pending {
                    if sent.insert(t.tx.id.clone()) {
                        let account_id = acc.id.clone();
                        let item = app
                            .blocking(move |app| pending_to_pb(app, &t, &account_id))
                            .await
                            .map_err(ApiError::into_status);
                        if tx.send(item).await.is_err() {
                            return; // the device went away
                        }
                    }
                }
                // Wake on news for this account, or re-check once a second (other
                // replicas, expiry), until the device disconnects.
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    ev = events.recv() => {
                        if let Ok(id) = ev && id != acc.id { continue; }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    #[instrument(skip_all, fields(transaction_id = %request.get_ref().transaction_id))]
    async fn confirm(&self, request: Request<pb::ConfirmRequest>) -> Res<pb::ConfirmResponse> {
        // Saved with a REST session whose relying party asked for it (shareMdClientIpAddress).
        let device_ip = request.remote_addr().map(|a| a.ip());
        let req = request.into_inner();
        let app = Arc::clone(&self.app);
        // Authenticate, find the key pair and serialise per key pair. The usual case, a key
        // pair nobody else is confirming for, is one trip to a blocking thread; a busy one
        // waits for its lock here, off the blocking threads, and then goes again.
        let first = app
            .blocking(move |app| {
                let acc = authenticate(app, req.credential.as_ref())?;
                ident("transaction_id", &req.transaction_id)?;
                let t = app
                    .store
                    .transaction_for_account(&req.transaction_id, &acc.id, now())?;
                let key_type = t.tx.key_type;
                let lock = app.key_locks.get(&format!("{}:{}", acc.id, key_type));
                let done = match lock.try_lock() {
                    // Read just now, and nothing else confirms for this key pair.
                    Ok(_guard) => Some(confirm_locked(
                        app,
                        &acc,
                        key_type,
                        &req,
                        Some(t),
                        device_ip,
                    )),
                    Err(_) => None,
                };
                Ok(match done {
                    Some(result) => {
                        app.notify(&acc.id);
                        Confirm::Done(result)
                    }
                    None => Confirm::Busy(Box::new(BusyConfirm {
                        acc,
                        key_type,
                        lock,
                        req,
                    })),
                })
            })
            .await
            .map_err(ApiError::into_status)?;
        let result = match first {
            Confirm::Done(result) => result,
            Confirm::Busy(busy) => {
                let BusyConfirm {
                    acc,
                    key_type,
                    lock,
                    req,
                } = *busy;
                // The guard moves into the blocking closure: it is held until the
                // confirmation has run, even if this request is cancelled meanwhile.
                let guard = lock.lock_owned().await;
                let account_id = acc.id.clone();
                let result = app
                    .blocking(move |app| {
                        let _guard = guard;
                        confirm_locked(app, &acc, key_type, &req, None, device_ip)
                    })
                    .await;
                app.notify(&account_id);
                result
            }
        };
        answer(result)
    }

    #[instrument(skip_all)]
    async fn claim_device_link(
        &self,
        request: Request<pb::ClaimDeviceLinkRequest>,
    ) -> Res<pb::PendingTransaction> {
        let device_ip = request.remote_addr().map(|a| a.ip());
        let req = request.into_inner();
        let result = self
            .app
            .blocking(move |app| {
                let acc = authenticate(app, req.credential.as_ref())?;
                let id = super::rp_device::claim(app, &acc, &req.device_link, device_ip)?;
                let t = app.store.transaction_for_account(&id, &acc.id, now())?;
                let pending = pending_to_pb(app, &t, &acc.id)?;
                app.notify(&acc.id);
                Ok(pending)
            })
            .await;
        respond(result)
    }

    async fn refuse(&self, request: Request<pb::RefuseRequest>) -> Res<pb::RefuseResponse> {
        let req = request.into_inner();
        let result = self
            .app
            .blocking(move |app| {
                let acc = authenticate(app, req.credential.as_ref())?;
                ident("transaction_id", &req.transaction_id)?;
                let rt = Retransmission::new(
                    &app.reply_master,
                    format!("account:{}", acc.id),
                    &req.nonce,
                    &req,
                )?;
                if let Some(stored) = rt.lookup::<pb::RefuseResponse>(&app.store)? {
                    return Ok(stored);
                }
                app.store
                    .transaction_for_account(&req.transaction_id, &acc.id, now())?;
                let (result, detail) =
                    super::rp_device::refusal(app, &acc.id, &req.transaction_id, &req)?;
                let response = pb::RefuseResponse {};
                app.store.end_transaction_with_detail(
                    &req.transaction_id,
                    result,
                    detail.as_deref(),
                    Some(&acc.id),
                    now(),
                    Some(&rt.ok(&response)),
                )?;
                app.notify(&acc.id);
                Ok(Ok(response))
            })
            .await;
        answer(result)
    }

    async fn get_key_state(
        &self,
        request: Request<pb::GetKeyStateRequest>,
    ) -> Res<pb::GetKeyStateResponse> {
        let req = request.into_inner();
        respond(
            self.app
                .blocking(move |app| {
                    let acc = authenticate(app, req.credential.as_ref())?;
                    let now = now();
                    let kps = app.store.key_pairs(&acc.id)?;
                    Ok(pb::GetKeyStateResponse {
                        key_pairs: kps
                            .iter()
                            .map(|kp| convert::key_state(kp, &app.config.lockout, now))
                            .collect(),
                    })
                })
                .await,
        )
    }

    async fn refresh_clone_token(
        &self,
        request: Request<pb::RefreshCloneTokenRequest>,
    ) -> Res<pb::RefreshCloneTokenResponse> {
        let req = request.into_inner();
        let app = Arc::clone(&self.app);
        let acc = {
            let cred = req.credential.clone();
            app.blocking(move |app| authenticate(app, cred.as_ref()))
                .await
                .map_err(ApiError::into_status)?
        };
        let key_type = convert::key_type(req.key_type).map_err(ApiError::into_status)?;
        let lock = app.key_locks.get(&format!("{}:{}", acc.id, key_type));
        // Held until the refresh has run, even if this request is cancelled meanwhile.
        let guard = lock.lock_owned().await;
        let result = app
            .blocking(move |app| {
                let _guard = guard;
                exact("clone_token", &req.clone_token, 32)?;
                let rt = Retransmission::new(&app.reply_master, format!("account:{}", acc.id), &req.nonce, &req)?;
                if let Some(stored) = rt.lookup::<pb::RefreshCloneTokenResponse>(&app.store)? {
                    return Ok(stored);
                }
                let kp = app.store.key_pair(&acc.id, key_type)?;
                let next = random_bytes::<32>();
                let response = pb::RefreshCloneTokenResponse { next_clone_token: next.to_vec() };
                let stale_msg = "stale clone-detection token: the key pair is disabled";
                let ok = app.store.refresh_clone_token(
                    kp.id,
                    &secret_hash(&req.clone_token),
                    &secret_hash(&next),
                    now(),
                    &rt.ok(&response),
                    &rt.err(Code::FailedPrecondition, stale_msg),
                )?;
                if ok {
                    Ok(Ok(response))
                } else {
                    tracing::warn!(account_id = %acc.id, %key_type, "clone detected on token refresh");
                    Ok(Err(Status::failed_precondition(stale_msg)))
                }
            })
            .await;
        answer(result)
    }

    async fn get_account(&self, request: Request<pb::GetAccountRequest>) -> Res<pb::AccountInfo> {
        let req = request.into_inner();
        respond(
            self.app
                .blocking(move |app| {
                    let acc = authenticate(app, req.credential.as_ref())?;
                    let kps = app.store.key_pairs(&acc.id)?;
                    let certs = app.store.certificates_of(&acc.id)?;
                    convert::account_info(&acc, &kps, &certs)
                })
                .await,
        )
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Res<pb::DeleteAccountResponse> {
        let req = request.into_inner();
        let result =
            self.app
                .blocking(move |app| {
                    let cred = req.credential.as_ref().ok_or_else(|| {
                        ApiError::Unauthenticated("device credential missing".into())
                    })?;
                    ident("account_id", &cred.account_id)
                        .map_err(|_| ApiError::Unauthenticated("unknown device".into()))?;
                    let rt = Retransmission::new(
                        &app.reply_master,
                        format!("account:{}", cred.account_id),
                        &req.nonce,
                        &req,
                    )?;
                    // A retry after a lost answer finds the account already deleted: answer
                    // from the stored reply (the request hash covers the device secret).
                    if let Some(stored) = rt.lookup::<pb::DeleteAccountResponse>(&app.store)? {
                        return Ok(stored);
                    }
                    let acc = authenticate(app, req.credential.as_ref())?;
                    let response = pb::DeleteAccountResponse {};
                    let key_pairs: Vec<_> = [KeyType::Auth, KeyType::Sign]
                        .into_iter()
                        .filter_map(|kt| app.store.key_pair(&acc.id, kt).ok())
                        .collect();
                    let share_keys: Vec<Vec<u8>> = key_pairs
                        .iter()
                        .filter_map(|kp| kp.server_share_blob.clone())
                        .filter(|b| crate::hsm::is_token_share_blob(b))
                        .collect();
                    let server_keys: Vec<Vec<u8>> = key_pairs
                        .into_iter()
                        .filter_map(|kp| kp.server_key_blob)
                        .collect();
                    app.store
                        .delete_account(&acc.id, now(), "device", Some(&rt.ok(&response)))?;
                    // The blobs are gone from the database; their unwrapped copies go too.
                    for blob in server_keys {
                        app.hsm.forget_server_key(&blob);
                    }
                    // token-rsa: d1'' lives on the token; it goes with the account.
                    super::token_share::destroy_share_keys(app, &share_keys);
                    info!(account_id = %acc.id, "account deleted by its device");
                    Ok(Ok(response))
                })
                .await;
        answer(result)
    }
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

/// Where `Confirm`'s first trip to a blocking thread left it.
enum Confirm {
    /// Confirmed under the key pair's lock.
    Done(Result<Result<pb::ConfirmResponse, Status>, ApiError>),
    /// Authenticated, but another confirmation holds the key pair's lock.
    Busy(Box<BusyConfirm>),
}

/// A `Confirm` waiting for its key pair's lock.
struct BusyConfirm {
    acc: Account,
    key_type: KeyType,
    lock: Arc<tokio::sync::Mutex<()>>,
    req: pb::ConfirmRequest,
}

/// The body of `Confirm`, run with the key pair's lock held, on a blocking thread. `read`
/// is the transaction as read in the same blocking call before the lock was taken without
/// waiting; after a wait it is `None` and the transaction is read again. `device_ip` is the
/// address the app called from.
fn confirm_locked(
    app: &App,
    acc: &Account,
    key_type: KeyType,
    req: &pb::ConfirmRequest,
    read: Option<store::TxForAccount>,
    device_ip: Option<std::net::IpAddr>,
) -> Result<Result<pb::ConfirmResponse, Status>, ApiError> {
    let rt = Retransmission::new(
        &app.reply_master,
        format!("account:{}", acc.id),
        &req.nonce,
        req,
    )?;
    if let Some(stored) = rt.lookup::<pb::ConfirmResponse>(&app.store)? {
        return Ok(stored);
    }
    let now = now();
    let policy = &app.config.lockout;
    let t = match read {
        Some(t) => t,
        None => app
            .store
            .transaction_for_account(&req.transaction_id, &acc.id, now)?,
    };
    let kp = app.store.key_pair(&acc.id, key_type)?;
    if t.tx.state != store::TxState::Running {
        let response = confirm_response(
            pb::ConfirmOutcome::TransactionClosed,
            Vec::new(),
            &kp,
            policy,
            now,
        );
        app.store.store_reply(&rt.ok(&response))?;
        return Ok(Ok(response));
    }
    // Ends the transaction with `result`; the answer is stored with the end.
    let end_with = |result: store::EndResult,
                    outcome: pb::ConfirmOutcome,
                    kp: &store::KeyPair|
     -> Result<pb::ConfirmResponse, ApiError> {
        let response = confirm_response(outcome, Vec::new(), kp, policy, now);
        let reply = rt.ok(&response);
        app.store
            .end_transaction(&t.tx.id, result, Some(&acc.id), now, Some(&reply))?;
        Ok(response)
    };
    // REST sessions: certificate choice needs no share; ACSP_V2 brings the app's own x.
    let (x, vc_choice, target_outcome) =
        match super::rp_device::check_confirm(app, acc, &t, req, &kp.composite_modulus, device_ip)?
        {
            RpConfirm::Grpc => (t.encoded_message.clone(), !t.tx.vc_choices.is_empty(), None),
            RpConfirm::Sign {
                x,
                vc_choice,
                outcome,
            } => (x, vc_choice, Some(outcome)),
            RpConfirm::CertificateChoice { .. } if kp.status == KeyPairStatus::Disabled => {
                let outcome = pb::ConfirmOutcome::Disabled;
                return Ok(Ok(end_with(
                    store::EndResult::DocumentUnusable,
                    outcome,
                    &kp,
                )?));
            }
            RpConfirm::CertificateChoice { outcome } => {
                let answer = |o| confirm_response(o, Vec::new(), &kp, policy, now);
                let accepted = answer(pb::ConfirmOutcome::Accepted);
                // The answer is stored with the completion; a session another device
                // completed first gets TRANSACTION_CLOSED instead.
                let won = app.store.complete_without_signature(
                    &t.tx.id,
                    &acc.id,
                    now,
                    &rt.ok(&accepted),
                    outcome.as_deref(),
                )?;
                if won {
                    return Ok(Ok(accepted));
                }
                let closed = answer(pb::ConfirmOutcome::TransactionClosed);
                app.store.store_reply(&rt.ok(&closed))?;
                return Ok(Ok(closed));
            }
            RpConfirm::ProtocolFailure => {
                let outcome = pb::ConfirmOutcome::TransactionClosed;
                return Ok(Ok(end_with(
                    store::EndResult::ProtocolFailure,
                    outcome,
                    &kp,
                )?));
            }
        };
    exact("clone_token", &req.clone_token, 32)?;
    parse_envelope("share_envelope", &req.share_envelope)?;
    // The three-code choice: a wrong pick ends the transaction; no share is judged and
    // no PIN attempt is counted.
    if vc_choice {
        let right: bool = subtle::ConstantTimeEq::ct_eq(
            req.chosen_vc.as_bytes(),
            t.tx.verification_code.as_bytes(),
        )
        .into();
        if !right {
            let response = end_with(store::EndResult::WrongVc, pb::ConfirmOutcome::WrongVc, &kp)?;
            info!("wrong verification code chosen");
            return Ok(Ok(response));
        }
    }
    // A malformed share is rejected before anything is counted. If the HSM cannot open it
    // (removed, failing, too slow), the transaction ends with SERVER_ERROR; nothing was
    // counted yet.
    let s1 = match open_envelope(
        app,
        "share_envelope",
        &req.share_envelope,
        &envelope::aad_partial_signature(&t.tx.id, &acc.id, key_type),
    ) {
        Err(ApiError::Unavailable(_)) => {
            app.store.end_transaction(
                &t.tx.id,
                store::EndResult::ServerError,
                Some(&acc.id),
                now,
                None,
            )?;
            app.notify(&acc.id);
            return Err(ApiError::Aborted(HSM_ABORT_MESSAGE.into()));
        }
        other => other?,
    };
    check_share(&s1, &kp.client_modulus)?;

    // The gate: the attempt is committed as a failure before the share is judged. The
    // policy over the counters read above says what the store counts (this key pair's lock
    // serialises confirmations), so the answers below are built from it before each verdict.
    let predicted = policy.gate(&kp.counters(), now).counted();
    let counted = match app.store.begin_attempt(kp.id, policy, now)? {
        AttemptGate::Proceed { failures } => {
            tracing::debug!(failures, "attempt counted before judging the share");
            crash_test_pause();
            failures
        }
        gate @ (AttemptGate::Locked { .. } | AttemptGate::Disabled) => {
            let kp = app.store.key_pair(&acc.id, key_type)?;
            let outcome = if gate == AttemptGate::Disabled {
                pb::ConfirmOutcome::Disabled
            } else {
                pb::ConfirmOutcome::Locked
            };
            return Ok(Ok(end_with(
                store::EndResult::DocumentUnusable,
                outcome,
                &kp,
            )?));
        }
    };
    // Something else (the operator) moved the counters meanwhile: read what was counted.
    let counted_state = match predicted {
        Some(c) if c.consecutive_failures == counted => c,
        _ => app.store.key_pair(&acc.id, key_type)?.counters(),
    };
    let verdict = signing::evaluate_share_within(
        &app.hsm,
        app.config.hsm.call_timeout(),
        ServerKeyRef {
            key_type,
            client_modulus: &kp.client_modulus,
            server_modulus: &kp.server_modulus,
            server_share_blob: kp.server_share_blob.as_deref().unwrap_or_default(),
            server_key_blob: kp.server_key_blob.as_deref().unwrap_or_default(),
        },
        &x,
        &s1,
    );
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => {
            // No verdict (the HSM failed): the attempt is not held against the user, the
            // transaction ends with SERVER_ERROR. The answer is the same whether or not the
            // share would have verified, so it tells nothing about the PIN.
            tracing::error!(error = %e, "share evaluation failed; transaction ends with SERVER_ERROR");
            let restored = app.store.attempt_aborted(
                kp.id,
                counted,
                kp.consecutive_failures,
                kp.locked_until,
                &t.tx.id,
                &acc.id,
                now,
            )?;
            app.notify(&acc.id);
            if !restored {
                tracing::warn!("the attempt count moved meanwhile and was left as it is");
            }
            return Err(ApiError::Aborted(HSM_ABORT_MESSAGE.into()));
        }
    };
    // Each verdict is written with its reply in one database transaction; the answer is
    // built first, for the key pair state the verdict leaves, and that answer is returned.
    let signature = match verdict {
        ShareVerdict::Invalid => {
            let after = policy.after_failure(&counted_state);
            let outcome = if after.disabled {
                pb::ConfirmOutcome::Disabled
            } else {
                pb::ConfirmOutcome::WrongPin
            };
            let answer =
                confirm_response(outcome, Vec::new(), &kp.with_counters(&after), policy, now);
            let kp =
                app.store
                    .attempt_failed(kp.id, policy, Some(&t.tx.id), now, &rt.ok(&answer))?;
            info!(failures = kp.consecutive_failures, "wrong PIN");
            return Ok(Ok(answer));
        }
        ShareVerdict::Valid { signature } => signature,
    };
    // The share is right. Now the clone-detection token decides.
    let token_ok: bool = subtle::ConstantTimeEq::ct_eq(
        kp.clone_token_hash.as_slice(),
        secret_hash(&req.clone_token).as_slice(),
    )
    .into();
    if !token_ok {
        // Disabled, and the share was right: no failures.
        let disabled = kp.with_counters(&AttemptCounters {
            disabled: true,
            consecutive_failures: 0,
            locked_until: None,
        });
        let answer = confirm_response(
            pb::ConfirmOutcome::CloneDetected,
            Vec::new(),
            &disabled,
            policy,
            now,
        );
        app.store
            .clone_detected(kp.id, Some(&t.tx.id), now, &rt.ok(&answer))?;
        tracing::warn!(account_id = %acc.id, %key_type, "clone detected: valid share with a stale token");
        return Ok(Ok(answer));
    }
    let next = random_bytes::<32>();
    let mut kp_after = kp.clone();
    kp_after.consecutive_failures = 0;
    kp_after.locked_until = None;
    // A running transaction is completed (ACCEPTED); one another device completed first,
    // or that expired, gets TRANSACTION_CLOSED.
    let answer = |o| confirm_response(o, next.to_vec(), &kp_after, policy, now);
    let accepted = answer(pb::ConfirmOutcome::Accepted);
    let closed = answer(pb::ConfirmOutcome::TransactionClosed);
    let won = app.store.attempt_succeeded(
        kp.id,
        &secret_hash(&next),
        Some(store::Completion {
            transaction_id: &t.tx.id,
            signature: &signature,
            target_outcome: target_outcome.as_deref(),
        }),
        &acc.id,
        now,
        &rt.ok(&accepted),
        &rt.ok(&closed),
    )?;
    info!(won, "signature share accepted");
    Ok(Ok(if won { accepted } else { closed }))
}
