//! The device gRPC service: registration, pending transactions, confirm / refuse, key
//! state, clone-token refresh, account info and deletion.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use rand_core::{OsRng, RngCore};
use tandem_client_core::types::{CloneToken, KeyType};
use tandem_proto::v1 as pb;
use tandem_proto::v1::device_server::Device;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

use super::confirmation;
use super::convert::{self, exact, ident};
use super::registration::{self, SealedReplies};
use super::{ApiError, App, Retransmission, now};
use crate::core::clone_token::{self, Refreshed};
use crate::core::{SystemClock, account, confirm, refuse, register};
use crate::store::{self, Account};

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

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// Whether this server keeps `d1''` as RSA key token objects (`token-rsa`).
fn token_rsa(app: &App) -> bool {
    app.config.hsm.share_exponentiation == crate::hsm::ShareExponentiation::TokenRsa
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
                let response = pb::RefuseResponse {};
                let refusal = refuse::RefuseRequest {
                    account_id: &acc.id,
                    transaction_id: &req.transaction_id,
                    reason: confirmation::refuse_reason(&req),
                };
                refuse::refuse(
                    &*app.store,
                    &SystemClock,
                    app.config.timeouts.transaction_seconds,
                    &refusal,
                    &rt.ok(&response),
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
                    let states = account::key_states(
                        &*app.store,
                        &app.config.lockout,
                        &acc.id,
                        &SystemClock,
                    )?;
                    Ok(pb::GetKeyStateResponse {
                        key_pairs: states.iter().map(convert::key_state_to_pb).collect(),
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
                let rt = Retransmission::new(
                    &app.reply_master,
                    format!("account:{}", acc.id),
                    &req.nonce,
                    &req,
                )?;
                if let Some(stored) = rt.lookup::<pb::RefreshCloneTokenResponse>(&app.store)? {
                    return Ok(stored);
                }
                let presented = CloneToken::from_slice(&req.clone_token).map_err(internal)?;
                let refreshed = clone_token::refresh(
                    &*app.store,
                    &SystemClock,
                    &mut OsRng,
                    &acc.id,
                    key_type,
                    &presented,
                    &confirmation::SealedRefresh(&rt),
                )?;
                Ok(match refreshed {
                    Refreshed::Renewed(next) => Ok(pb::RefreshCloneTokenResponse {
                        next_clone_token: next.as_bytes().to_vec(),
                    }),
                    Refreshed::Stale => Err(Status::failed_precondition(confirmation::STALE_TOKEN)),
                })
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
                    account::delete(
                        &*app.store,
                        &app.hsm,
                        &acc.id,
                        account::DeletedBy::Device,
                        Some(&rt.ok(&response)),
                        &SystemClock,
                    )?;
                    info!(account_id = %acc.id, "account deleted by its device");
                    Ok(Ok(response))
                })
                .await;
        answer(result)
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
    let request = confirm::ConfirmRequest {
        account_id: &acc.id,
        key_type,
        transaction_id: &req.transaction_id,
        read,
        answer: confirmation::answer_of(req),
        device_ip,
    };
    let replies = confirmation::SealedConfirm { app, rt: &rt };
    match confirm::confirm(&confirmation::confirmer(app), &mut OsRng, request, &replies) {
        Ok(confirmed) => Ok(Ok(confirmation::confirmed_to_pb(&confirmed, app))),
        Err(e) => {
            if matches!(e, confirm::ConfirmError::HsmAborted) {
                app.notify(&acc.id);
            }
            Err(e.into())
        }
    }
}
