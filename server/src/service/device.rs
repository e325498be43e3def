//! The device gRPC service: registration, pending transactions, confirm / refuse, key
//! state, clone-token refresh, account info and deletion.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use tandem_client_core::encoding::{self, HashAlgorithm};
use tandem_client_core::envelope::{self, EnvelopeParts};
use tandem_client_core::types::KeyType;
use tandem_client_core::{hazmat, vc};
use tandem_proto::v1 as pb;
use tandem_proto::v1::device_server::Device;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};
use tracing::{info, instrument};

use super::convert::{self, exact, ident};
use super::rp_device::RpConfirm;
use super::{ApiError, App, Retransmission, now};
use crate::hsm::HsmError;
use crate::lockout::AttemptCounters;
use crate::signing::{self, ServerKeyRef, ShareVerdict};
use crate::store::{
    self, Account, AttemptGate, KeyPairStatus, NewRegistration, RegistrationKey, RegistrationState,
    secret_hash,
};

/// Largest accepted envelope (a sealed share of a 4096-bit key is about 1 KiB).
const MAX_ENVELOPE: usize = 8 * 1024;

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

/// `XXXX-XXXX` from an alphabet without look-alikes.
fn registration_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(9);
    for (i, b) in random_bytes::<8>().iter().enumerate() {
        if i == 4 {
            out.push('-');
        }
        out.push(ALPHABET[(*b as usize) % ALPHABET.len()] as char);
    }
    out
}

/// `PNO<CC>-<national id>-<4 random>-Q`.
fn document_number(identity: &store::Identity) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let suffix: String = random_bytes::<4>()
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    format!(
        "PNO{}-{}-{}-Q",
        identity.country, identity.national_id, suffix
    )
}

fn parse_envelope(field: &str, bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.is_empty() || bytes.len() > MAX_ENVELOPE {
        return Err(ApiError::InvalidArgument(format!(
            "{field} is missing or too large"
        )));
    }
    EnvelopeParts::parse(bytes)
        .map_err(|_| ApiError::InvalidArgument(format!("{field} is malformed")))?;
    Ok(())
}

/// Whether this server keeps `d1''` as RSA key token objects (`token-rsa`).
fn token_rsa(app: &App) -> bool {
    app.config.hsm.share_exponentiation == crate::hsm::ShareExponentiation::TokenRsa
}

/// Opens a device envelope inside the HSM. A bad envelope is the sender's fault.
fn open_envelope(
    app: &App,
    field: &str,
    bytes: &[u8],
    aad: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, ApiError> {
    EnvelopeParts::parse(bytes)
        .map_err(|_| ApiError::InvalidArgument(format!("{field} is malformed")))?;
    // Owned copies: the bounded call may outlive this request.
    let (blob, aad) = (bytes.to_vec(), aad.to_vec());
    app.hsm
        .bounded(app.config.hsm.call_timeout(), move |hsm| {
            let parts = EnvelopeParts::parse(&blob).map_err(|_| HsmError::Decryption)?;
            hsm.open_envelope(parts.key, &parts.iv, parts.ciphertext, &aad)
        })
        .map_err(|e| match e {
            // What the device sent does not open: its fault, without detail (no oracle).
            HsmError::Decryption | HsmError::BadBlob(_) | HsmError::InvalidArgument(_) => {
                ApiError::InvalidArgument(format!(
                    "{field} cannot be opened (wrong key or context)"
                ))
            }
            // The HSM's fault (removed token, device error, no answer in time).
            other => {
                tracing::error!(error = %other, "the HSM could not open {field}");
                ApiError::Unavailable(format!(
                    "the server's HSM is unavailable ({field} could not be opened); try again later"
                ))
            }
        })
}

/// `count` server keys for a registration: taken from the pool (in one database
/// transaction), generated in the HSM only for what the pool cannot give.
fn server_keys(app: &App, count: usize) -> Result<Vec<crate::hsm::ServerKey>, ApiError> {
    let bits = app.config.keys.server_key_bits;
    let mut keys: Vec<crate::hsm::ServerKey> = app
        .store
        .take_pooled_server_keys(bits, count)?
        .into_iter()
        .map(|(modulus, wrapped_private_key)| crate::hsm::ServerKey {
            modulus,
            wrapped_private_key,
        })
        .collect();
    tracing::debug!(taken = keys.len(), "server keys taken from the pool");
    while keys.len() < count {
        if app.config.keys.server_key_pool > 0 {
            tracing::info!("server key pool empty; generating a key on the request path");
        }
        keys.push(app.hsm.generate_server_key(bits)?);
    }
    Ok(keys)
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

fn registration(app: &App, id: &str, secret: &[u8]) -> Result<store::Registration, ApiError> {
    ident("registration_id", id)?;
    let reg = app
        .store
        .registration(id)
        .map_err(|_| ApiError::Unauthenticated("unknown registration".into()))?;
    let ok: bool =
        subtle::ConstantTimeEq::ct_eq(reg.secret_hash.as_slice(), secret_hash(secret).as_slice())
            .into();
    if !ok {
        return Err(ApiError::Unauthenticated("unknown registration".into()));
    }
    Ok(reg)
}

fn modulus_bits_allowed(app: &App, n1: &[u8]) -> Result<usize, ApiError> {
    let bits = hazmat::bit_length(n1);
    if !app.config.keys.client_key_bits.contains(&bits)
        || n1.len() * 8 != bits
        || n1.last().is_none_or(|b| b & 1 == 0)
    {
        return Err(ApiError::InvalidArgument(format!(
            "client modulus must be an odd number of {:?} bits",
            app.config.keys.client_key_bits
        )));
    }
    Ok(bits)
}

fn proof_request(
    registration_id: &str,
    key_type: KeyType,
    composite_bits: usize,
) -> Result<(Vec<u8>, Vec<u8>), ApiError> {
    let mut h = Sha256::new();
    h.update(b"tandem-registration-proof-v1\0");
    h.update(registration_id.as_bytes());
    h.update(key_type.to_string().as_bytes());
    h.update(random_bytes::<32>());
    let digest = h.finalize().to_vec();
    let x = encoding::encode_pkcs1v15(HashAlgorithm::Sha256, &digest, composite_bits)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((digest, x))
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
                    exact("device_id", &req.device_id, 16)?;
                    exact("device_challenge", &req.device_challenge, 32)?;
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
                    let now = now();
                    let id = uuid::Uuid::new_v4().to_string();
                    let secret = random_bytes::<32>();
                    let code = registration_code();
                    let matching_code = vc::matching_code(&id, &req.device_challenge);
                    let expires_at = now + app.config.timeouts.registration_seconds;
                    let response = pb::StartRegistrationResponse {
                        registration_id: id.clone(),
                        registration_secret: secret.to_vec(),
                        registration_code: code.clone(),
                        expires_at_unix: expires_at,
                        matching_code: matching_code.clone(),
                    };
                    app.store.create_registration(
                        &NewRegistration {
                            id: id.clone(),
                            secret_hash: secret_hash(&secret),
                            code,
                            device_id: req.device_id.clone(),
                            matching_code,
                            created_at: now,
                            expires_at,
                        },
                        &rt.ok(&response),
                    )?;
                    info!(registration_id = %id, "registration started");
                    Ok(response)
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
                    let reg = registration(app, &req.registration_id, &req.registration_secret)?;
                    let state = if reg.is_expired(now()) {
                        pb::RegistrationState::Expired
                    } else {
                        match reg.state {
                            RegistrationState::PendingApproval => {
                                pb::RegistrationState::PendingApproval
                            }
                            RegistrationState::Approved => pb::RegistrationState::Approved,
                            RegistrationState::KeysSubmitted => {
                                pb::RegistrationState::KeysSubmitted
                            }
                            RegistrationState::Completed => pb::RegistrationState::Completed,
                            RegistrationState::Failed => pb::RegistrationState::Failed,
                        }
                    };
                    Ok(pb::RegistrationStatus {
                        state: state as i32,
                        identity: reg.identity.as_ref().map(convert::identity_to_pb),
                        expires_at_unix: reg.expires_at,
                    })
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
                let reg = registration(app, &req.registration_id, &req.registration_secret)?;
                let rt = Retransmission::new(
                    &app.reply_master,
                    format!("registration:{}", reg.id),
                    &req.nonce,
                    &req,
                )?;
                if let Some(stored) = rt.lookup::<pb::SubmitKeysResponse>(&app.store)? {
                    return Ok(stored);
                }
                if reg.is_expired(now()) {
                    return Err(ApiError::FailedPrecondition(
                        "the registration has expired; start again".into(),
                    ));
                }
                if reg.state != RegistrationState::Approved {
                    return Err(ApiError::FailedPrecondition(
                        "the registration is not approved yet, or its keys were already submitted"
                            .into(),
                    ));
                }
                // Validate everything before touching the HSM.
                let mut seen = HashSet::new();
                for k in &req.keys {
                    let kt = convert::key_type(k.key_type)?;
                    if !seen.insert(kt) {
                        return Err(ApiError::InvalidArgument(
                            "each key type may be submitted once".into(),
                        ));
                    }
                    modulus_bits_allowed(app, &k.client_modulus)?;
                    if token_rsa(app) {
                        super::token_share::parse_share_key_envelope(&k.server_share_envelope)?;
                    } else {
                        parse_envelope("server_share_envelope", &k.server_share_envelope)?;
                    }
                }
                if seen.len() != 2 {
                    return Err(ApiError::InvalidArgument(
                        "submit exactly one AUTH and one SIGN key".into(),
                    ));
                }
                let mut keys = Vec::new();
                let mut challenges = Vec::new();
                // Every share is opened and sealed at rest before server keys are taken, so a
                // request that fails here uses up no pooled key.
                let mut sealed = Vec::with_capacity(req.keys.len());
                // token-rsa: share key token objects made here are destroyed again unless the
                // registration keys are stored (any early return drops the guard).
                let mut imported = super::token_share::ImportedShareKeys::new(app);
                for k in &req.keys {
                    let kt = convert::key_type(k.key_type)?;
                    if token_rsa(app) {
                        let blob = super::token_share::import_share_key(
                            app,
                            &k.server_share_envelope,
                            &k.client_modulus,
                        )?;
                        imported.push(blob.clone());
                        sealed.push(blob);
                        continue;
                    }
                    let n1 = &k.client_modulus;
                    let d1pp = open_envelope(
                        app,
                        "server_share_envelope",
                        &k.server_share_envelope,
                        &envelope::aad_server_share(&reg.id, kt),
                    )?;
                    if d1pp.len() != n1.len() {
                        return Err(ApiError::InvalidArgument(
                            "server share has the wrong size".into(),
                        ));
                    }
                    sealed.push(
                        app.hsm
                            .seal_at_rest(&d1pp, &signing::server_share_aad(kt, n1))?,
                    );
                    drop(d1pp);
                }
                let mut server_keys = server_keys(app, req.keys.len())?.into_iter();
                for (k, server_share_blob) in req.keys.iter().zip(sealed) {
                    let kt = convert::key_type(k.key_type)?;
                    let n1 = &k.client_modulus;
                    let server_key = server_keys
                        .next()
                        .ok_or_else(|| ApiError::Internal("server key missing".into()))?;
                    let composite = hazmat::multiply(n1, &server_key.modulus);
                    let bits = hazmat::bit_length(&composite);
                    let (digest, x) = proof_request(&reg.id, kt, bits)?;
                    challenges.push(pb::KeyProofChallenge {
                        key_type: k.key_type,
                        composite_modulus: composite,
                        server_modulus: server_key.modulus.clone(),
                        signing_request: Some(pb::SigningRequest {
                            key_type: k.key_type,
                            scheme: pb::SignatureScheme::Pkcs1V15 as i32,
                            hash: pb::HashAlgorithm::Sha256 as i32,
                            digest: digest.clone(),
                            encoded_message: x.clone(),
                        }),
                    });
                    keys.push(RegistrationKey {
                        key_type: kt,
                        client_modulus: n1.clone(),
                        server_modulus: server_key.modulus,
                        server_share_blob,
                        server_key_blob: server_key.wrapped_private_key,
                        proof_hash: "SHA256".into(),
                        proof_scheme: "PKCS1_V15".into(),
                        proof_digest: digest,
                        proof_message: x,
                    });
                }
                let response = pb::SubmitKeysResponse { challenges };
                app.store
                    .submit_registration_keys(&reg.id, &keys, now(), &rt.ok(&response))?;
                imported.keep();
                info!("keys handed over");
                Ok(Ok(response))
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
                let reg = registration(app, &req.registration_id, &req.registration_secret)?;
                let rt = Retransmission::new(
                    &app.reply_master,
                    format!("registration:{}", reg.id),
                    &req.nonce,
                    &req,
                )?;
                if let Some(stored) = rt.lookup::<pb::CompleteRegistrationResponse>(&app.store)? {
                    return Ok(stored);
                }
                let now = now();
                if reg.is_expired(now) {
                    return Err(ApiError::FailedPrecondition(
                        "the registration has expired; start again".into(),
                    ));
                }
                if reg.state != RegistrationState::KeysSubmitted {
                    return Err(ApiError::FailedPrecondition(
                        "the registration is not waiting for its PIN proof".into(),
                    ));
                }
                let keys = app.store.registration_keys(&reg.id)?;
                let mut seen = HashSet::new();
                for share in &req.shares {
                    let kt = convert::key_type(share.key_type)?;
                    seen.insert(kt);
                    parse_envelope("share_envelope", &share.share_envelope)?;
                }
                if seen.len() != 2 || req.shares.len() != 2 {
                    return Err(ApiError::InvalidArgument(
                        "send exactly one AUTH and one SIGN proof".into(),
                    ));
                }
                // Open the shares, then judge both proofs at once: the two key pairs are
                // independent, so their exponentiations run in parallel (registration latency
                // is about one proof instead of two on a machine with two cores).
                let mut opened = Vec::with_capacity(req.shares.len());
                for share in &req.shares {
                    let kt = convert::key_type(share.key_type)?;
                    let key = keys
                        .iter()
                        .find(|k| k.key_type == kt)
                        .ok_or_else(|| ApiError::Internal("registration key missing".into()))?;
                    let s1 = open_envelope(
                        app,
                        "share_envelope",
                        &share.share_envelope,
                        &envelope::aad_proof_share(&reg.id, kt),
                    )?;
                    check_share(&s1, &key.client_modulus)?;
                    opened.push((kt, key, s1));
                }
                let judge =
                    |(kt, key, s1): &(KeyType, &RegistrationKey, zeroize::Zeroizing<Vec<u8>>)| {
                        signing::evaluate_share_within(
                            &app.hsm,
                            app.config.hsm.call_timeout(),
                            ServerKeyRef {
                                key_type: *kt,
                                client_modulus: &key.client_modulus,
                                server_modulus: &key.server_modulus,
                                server_share_blob: &key.server_share_blob,
                                server_key_blob: &key.server_key_blob,
                            },
                            &key.proof_message,
                            s1,
                        )
                    };
                let span = tracing::Span::current();
                let verdicts: Vec<_> = std::thread::scope(|scope| {
                    let running: Vec<_> = opened
                        .iter()
                        .map(|o| {
                            let span = span.clone();
                            scope.spawn(move || span.in_scope(|| judge(o)))
                        })
                        .collect();
                    running
                        .into_iter()
                        .map(|h| {
                            h.join()
                                .unwrap_or(Err(signing::SigningError::Hsm(HsmError::Worker(
                                    "the proof check panicked",
                                ))))
                        })
                        .collect()
                });
                let mut failed = Vec::new();
                for ((kt, _, _), verdict) in opened.iter().zip(verdicts) {
                    if matches!(verdict?, ShareVerdict::Invalid) {
                        failed.push(*kt);
                    }
                }
                if !failed.is_empty() {
                    let failed_pb: Vec<i32> =
                        failed.iter().map(|&k| convert::key_type_to_pb(k)).collect();
                    let mut response = pb::CompleteRegistrationResponse {
                        failed: failed_pb,
                        ..Default::default()
                    };
                    // The answer is sealed for the count this request read; if another
                    // proof moved the count meanwhile, read it again (the failure is counted
                    // either way, with the answer stored for exactly that count).
                    let max_attempts = app.config.timeouts.registration_proof_attempts;
                    let mut seen = reg.proof_attempts;
                    let left = loop {
                        response.attempts_left = max_attempts.saturating_sub(seen + 1);
                        if let Some(left) = app.store.registration_proof_failed(
                            &reg.id,
                            seen,
                            max_attempts,
                            now,
                            &rt.ok(&response),
                        )? {
                            break left;
                        }
                        seen = app.store.registration(&reg.id)?.proof_attempts;
                    };
                    response.attempts_left = left;
                    info!(attempts_left = left, "registration proof failed");
                    if left == 0 {
                        // The registration failed for good; token-rsa share objects go too.
                        let share_keys: Vec<Vec<u8>> = keys
                            .iter()
                            .map(|k| k.server_share_blob.clone())
                            .filter(|b| crate::hsm::is_token_share_blob(b))
                            .collect();
                        super::token_share::destroy_share_keys(app, &share_keys);
                    }
                    return Ok(Ok(response));
                }
                let identity = reg
                    .identity
                    .clone()
                    .ok_or_else(|| ApiError::Internal("identity missing".into()))?;
                let account_id = uuid::Uuid::new_v4().to_string();
                let document_number = reg
                    .document_number
                    .clone()
                    .unwrap_or_else(|| document_number(&identity));
                let device_secret = random_bytes::<32>();
                let tokens: Vec<(KeyType, [u8; 32])> = [KeyType::Auth, KeyType::Sign]
                    .into_iter()
                    .map(|k| (k, random_bytes::<32>()))
                    .collect();
                let token_hashes: Vec<(KeyType, Vec<u8>)> =
                    tokens.iter().map(|(k, t)| (*k, secret_hash(t))).collect();
                let expires_at = now + app.config.timeouts.account_validity_days * 86_400;
                // Both certificates are issued (signed in the HSM) before anything is
                // stored: if the HSM fails, nothing is half-issued and the device can
                // send its proof again.
                let mut certificates = Vec::new();
                for k in &keys {
                    let n = hazmat::multiply(&k.client_modulus, &k.server_modulus);
                    let cert = app
                        .ca
                        .issue(k.key_type, &n, &identity, now, expires_at)
                        .map_err(|e| {
                            ApiError::Internal(format!("certificate issuance failed: {e:#}"))
                        })?;
                    certificates.push(cert);
                }
                // The account info is built from what will be stored, so the reply can be
                // written in the same database transaction.
                let kps_preview: Vec<pb::KeyPairInfo> = keys
                    .iter()
                    .map(|k| {
                        let n = hazmat::multiply(&k.client_modulus, &k.server_modulus);
                        Ok(pb::KeyPairInfo {
                            key_type: convert::key_type_to_pb(k.key_type),
                            public_key_der: convert::public_key_der(&n)?,
                            composite_modulus: n,
                            public_exponent: signing::E,
                            certificate_der: certificates
                                .iter()
                                .find(|c| c.key_type == k.key_type)
                                .map(|c| c.der.clone())
                                .unwrap_or_default(),
                        })
                    })
                    .collect::<Result<_, ApiError>>()?;
                let response = pb::CompleteRegistrationResponse {
                    account: Some(pb::AccountInfo {
                        account_id: account_id.clone(),
                        document_number: document_number.clone(),
                        identity: Some(convert::identity_to_pb(&identity)),
                        expires_at_unix: expires_at,
                        key_pairs: kps_preview,
                    }),
                    device_secret: device_secret.to_vec(),
                    clone_tokens: tokens
                        .iter()
                        .map(|(k, t)| pb::CloneToken {
                            key_type: convert::key_type_to_pb(*k),
                            token: t.to_vec(),
                        })
                        .collect(),
                    failed: Vec::new(),
                    attempts_left: 0,
                };
                app.store.complete_registration(
                    &reg.id,
                    &account_id,
                    &document_number,
                    &secret_hash(&device_secret),
                    expires_at,
                    &token_hashes,
                    &certificates,
                    now,
                    &rt.ok(&response),
                )?;
                info!(%account_id, %document_number, "registration completed");
                Ok(Ok(response))
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
