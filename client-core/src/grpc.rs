//! The gRPC shell around the sans-IO device protocol (feature `grpc`): what a phone app
//! does, as library calls. The device simulator of the `tandem` command line is built on it.
//!
//! Each call converts protobuf into the protocol's own types ([`crate::protocol`], in
//! `convert`), calls the protocol function that makes every check and builds the answer,
//! converts the answer back and sends it. No safety decision is made here.
//!
//! Every state-changing call carries a fresh [`RequestNonce`]; when the transport fails
//! (lost answer, reset connection) the *same* request with the *same* nonce is sent again,
//! so the server answers from its stored reply instead of judging the share twice.

mod convert;

use std::time::Duration;

use rand_core::{CryptoRng, OsRng, RngCore};
use serde::{Deserialize, Serialize};
use tandem_proto::v1 as pb;
use tandem_proto::v1::device_client::DeviceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use crate::callback::CallbackUrl;
use crate::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use crate::protocol::registration::{self, RegisteredKey, Registration, RegistrationSecret};
use crate::protocol::{self, KeyParams, ProtocolError, TransportKey, confirm, rp_session};
use crate::sign::SigningRequest;
use crate::state::DeviceState;
use crate::types::{KeyType, RequestNonce};

#[cfg(feature = "bench-variants")]
pub use crate::protocol::bench::Precomputed;
pub use crate::protocol::{Prompt, ProofOutcome, ShareForm};

/// Errors of the device shell.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("server: {}: {}", .0.code(), .0.message())]
    Status(#[from] Status),
    /// Could not connect.
    #[error("connection: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The core refused (e.g. the value to sign does not encode the digest shown).
    #[error("{0}")]
    Core(#[from] crate::Error),
    /// The server's answer does not make sense.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ClientError>;

/// A connection to the device service.
#[derive(Debug, Clone)]
pub struct Client {
    inner: DeviceClient<Channel>,
    url: String,
}

impl Client {
    /// Connects to `url` (`https://127.0.0.1:7443`), trusting `ca_pem` for TLS.
    pub async fn connect(url: &str, ca_pem: &[u8]) -> Result<Self> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        let channel = Endpoint::from_shared(url.to_owned())?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .connect()
            .await?;
        Ok(Self {
            inner: DeviceClient::new(channel),
            url: url.to_owned(),
        })
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The raw generated client, for tests that send malformed requests on purpose.
    pub fn raw(&self) -> DeviceClient<Channel> {
        self.inner.clone()
    }
}

/// Sends `req` and, on a transport-level failure, the same request again (same nonce),
/// at most three times.
async fn with_retries<Req: Clone, Resp, F, Fut>(mut call: F, req: Req) -> Result<Resp>
where
    F: FnMut(Req) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<tonic::Response<Resp>, Status>>,
{
    let mut last = None;
    for attempt in 0..3u64 {
        match call(req.clone()).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s)
                if matches!(
                    s.code(),
                    Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled
                ) =>
            {
                last = Some(s);
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
            Err(s) => return Err(s.into()),
        }
    }
    Err(last
        .map(ClientError::Status)
        .unwrap_or_else(|| ClientError::Protocol("no attempt made".into())))
}

/// `with_retries` for one method of the generated client.
macro_rules! retry {
    ($client:expr, $method:ident, $req:expr) => {
        with_retries(
            |r| {
                let mut c = $client.inner.clone();
                async move { c.$method(r).await }
            },
            $req,
        )
    };
}

fn nonce(rng: &mut (impl CryptoRng + RngCore)) -> Vec<u8> {
    RequestNonce::generate(rng).as_bytes().to_vec()
}

/// Converts a wire signing request into the domain type for a composite modulus of
/// `composite_modulus_bits` (unchecked: the signing functions check the encoding first).
pub fn signing_request(
    r: &pb::SigningRequest,
    composite_modulus_bits: usize,
) -> Result<SigningRequest> {
    Ok(convert::signature_request_from_pb(r)?.for_modulus_bits(composite_modulus_bits))
}

// ---------------------------------------------------------------------- registration

/// A key pair generated during registration, kept until the proof succeeds.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingKey {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// n1 (base64).
    #[serde(with = "crate::serde_b64")]
    pub client_modulus: Vec<u8>,
    /// n = n1·n2 (base64), from the server's challenge.
    #[serde(with = "crate::serde_b64")]
    pub composite_modulus: Vec<u8>,
    /// d1' under the chosen PIN.
    pub protected_share: ProtectedShare,
    /// The proof challenge: scheme, hash, digest, x (protobuf, base64).
    #[serde(with = "crate::serde_b64")]
    pub challenge: Vec<u8>,
}

impl PendingKey {
    fn from_protocol(k: RegisteredKey) -> Self {
        Self {
            key_type: k.key_type,
            challenge: prost::Message::encode_to_vec(&convert::signature_request_to_pb(
                &k.challenge,
            )),
            client_modulus: k.client_modulus,
            composite_modulus: k.composite_modulus,
            protected_share: k.protected_share,
        }
    }

    fn to_protocol(&self) -> Result<RegisteredKey> {
        let sr: pb::SigningRequest = prost::Message::decode(self.challenge.as_slice())
            .map_err(|_| ClientError::Protocol("stored challenge is corrupt".into()))?;
        Ok(RegisteredKey {
            key_type: self.key_type,
            client_modulus: self.client_modulus.clone(),
            composite_modulus: self.composite_modulus.clone(),
            protected_share: self.protected_share.clone(),
            challenge: convert::signature_request_from_pb(&sr)?,
        })
    }
}

/// A registration in progress on the device, as the command line saves it between the
/// steps (the protocol's [`Registration`] plus the server URL, in a JSON file).
#[derive(Serialize, Deserialize)]
pub struct PendingRegistration {
    /// Server URL.
    pub server_url: String,
    /// Device id (hex).
    pub device_id: String,
    /// Registration id.
    pub registration_id: String,
    /// Authenticates the registration calls (base64). Not a key share.
    #[serde(with = "crate::serde_b64")]
    pub registration_secret: Vec<u8>,
    /// Code for the operator.
    pub registration_code: String,
    /// Code both sides show.
    pub matching_code: String,
    /// Unix seconds.
    pub expires_at_unix: i64,
    /// Keystore secret (base64); stands in for the phone's hardware keystore.
    pub keystore_secret: String,
    /// Keys after hand-over.
    #[serde(default)]
    pub keys: Vec<PendingKey>,
}

impl std::fmt::Debug for PendingRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRegistration")
            .field("server_url", &self.server_url)
            .field("registration_id", &self.registration_id)
            .field("matching_code", &self.matching_code)
            .field("expires_at_unix", &self.expires_at_unix)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl PendingRegistration {
    fn from_protocol(server_url: &str, r: Registration) -> Self {
        Self {
            server_url: server_url.to_owned(),
            device_id: hex::encode(r.device_id),
            registration_id: r.registration_id.clone(),
            registration_secret: r.registration_secret.expose_secret().to_vec(),
            registration_code: r.registration_code.clone(),
            matching_code: r.matching_code.clone(),
            expires_at_unix: r.expires_at_unix,
            keystore_secret: r.keystore_secret.to_base64().to_string(),
            keys: r.keys.into_iter().map(PendingKey::from_protocol).collect(),
        }
    }

    /// The protocol's view of this registration.
    fn to_protocol(&self) -> Result<Registration> {
        let device_id: [u8; 16] = hex::decode(&self.device_id)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| ClientError::Protocol("device id".into()))?;
        Ok(Registration {
            device_id,
            registration_id: self.registration_id.clone(),
            registration_secret: RegistrationSecret::from_bytes(self.registration_secret.clone()),
            registration_code: self.registration_code.clone(),
            matching_code: self.matching_code.clone(),
            expires_at_unix: self.expires_at_unix,
            keystore_secret: KeystoreSecret::from_base64(&self.keystore_secret)?,
            keys: self
                .keys
                .iter()
                .map(PendingKey::to_protocol)
                .collect::<Result<_>>()?,
        })
    }
}

/// Starts a registration. The device shows `matching_code` (checked against its own); the
/// person gives `registration_code` to the operator, who checks the same matching code.
pub async fn register_start(client: &Client, device_id: [u8; 16]) -> Result<PendingRegistration> {
    let mut rng = OsRng;
    let (message, awaiting) = registration::start(device_id, &mut rng);
    let req = pb::StartRegistrationRequest {
        device_id: message.device_id.to_vec(),
        device_challenge: message.device_challenge.to_vec(),
        nonce: message.nonce.as_bytes().to_vec(),
    };
    let resp = retry!(client, start_registration, req).await?;
    let registration = awaiting.accept(convert::start_reply_from_pb(resp), &mut rng)?;
    Ok(PendingRegistration::from_protocol(
        &client.url,
        registration,
    ))
}

/// The registration's state on the server.
pub async fn registration_status(
    client: &Client,
    p: &PendingRegistration,
) -> Result<pb::RegistrationStatus> {
    let mut c = client.inner.clone();
    let req = pb::GetRegistrationRequest {
        registration_id: p.registration_id.clone(),
        registration_secret: p.registration_secret.clone(),
    };
    Ok(c.get_registration(req).await?.into_inner())
}

/// After approval: generates the AUTH and SIGN client keys, seals each `d1''` to the
/// server's transport key, protects each `d1'` under its PIN, and hands the keys over.
pub async fn submit_keys(
    client: &Client,
    p: &mut PendingRegistration,
    pin1: &Pin,
    pin2: &Pin,
    key_bits: usize,
    kdf: KdfParams,
) -> Result<()> {
    let info = server_info(client).await?;
    let form = share_form(&info)?;
    let prepared = prepare_keys_in_form(
        &info.transport_public_key_der,
        form,
        p,
        pin1,
        pin2,
        key_bits,
        kdf,
    )?;
    send_keys(client, p, prepared).await
}

/// The form a server asks for; an unknown value is refused (this device cannot produce it).
pub fn share_form(info: &pb::ServerInfo) -> Result<ShareForm> {
    Ok(ShareForm::from_number(info.server_share_form)?)
}

/// The server's parameters (`GetServerInfo`).
pub async fn server_info(client: &Client) -> Result<pb::ServerInfo> {
    let mut c = client.inner.clone();
    Ok(c.get_server_info(pb::GetServerInfoRequest {})
        .await?
        .into_inner())
}

/// The device's half of [`submit_keys`]: two client keys generated and split, `d1''` sealed
/// to the transport key, the device shares protected by the PINs. Nothing is sent. `Debug`
/// shows no secret (the request carries the registration secret).
pub struct PreparedKeys {
    request: pb::SubmitKeysRequest,
    keys: registration::PreparedKeys,
}

impl std::fmt::Debug for PreparedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedKeys")
            .field("registration_id", &self.request.registration_id)
            .field(
                "keys",
                &self
                    .keys
                    .submissions
                    .iter()
                    .map(|k| k.key_type)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Generates and splits the two client keys for [`send_keys`], for a server that keeps
/// `d1''` as an exponent ([`ShareForm::Exponent`]).
pub fn prepare_keys(
    transport_key_der: &[u8],
    p: &PendingRegistration,
    pin1: &Pin,
    pin2: &Pin,
    key_bits: usize,
    kdf: KdfParams,
) -> Result<PreparedKeys> {
    prepare_keys_in_form(
        transport_key_der,
        ShareForm::Exponent,
        p,
        pin1,
        pin2,
        key_bits,
        kdf,
    )
}

/// [`prepare_keys`] for the server's share form ([`share_form`]).
pub fn prepare_keys_in_form(
    transport_key_der: &[u8],
    form: ShareForm,
    p: &PendingRegistration,
    pin1: &Pin,
    pin2: &Pin,
    key_bits: usize,
    kdf: KdfParams,
) -> Result<PreparedKeys> {
    let transport = TransportKey::from_spki_der(transport_key_der)?;
    let params = KeyParams {
        form,
        key_bits,
        kdf,
    };
    let keys = p
        .to_protocol()?
        .prepare_keys(&transport, params, pin1, pin2, &mut OsRng)?;
    Ok(PreparedKeys {
        request: pb::SubmitKeysRequest {
            registration_id: p.registration_id.clone(),
            registration_secret: p.registration_secret.clone(),
            keys: keys
                .submissions
                .iter()
                .map(|k| pb::KeySubmission {
                    key_type: convert::key_type_to_pb(k.key_type),
                    client_modulus: k.client_modulus.clone(),
                    server_share_envelope: k.server_share_envelope.clone(),
                })
                .collect(),
            nonce: keys.nonce.as_bytes().to_vec(),
        },
        keys,
    })
}

/// Sends [`prepare_keys`]' result and keeps the server's proof challenges in `p` (after the
/// protocol's checks: one per key pair, `n = n1·n2`).
pub async fn send_keys(
    client: &Client,
    p: &mut PendingRegistration,
    prepared: PreparedKeys,
) -> Result<()> {
    let PreparedKeys { request, keys } = prepared;
    let resp = retry!(client, submit_keys, request).await?;
    let registered = keys.accept(&convert::challenges_from_pb(&resp)?)?;
    p.keys = registered
        .into_iter()
        .map(PendingKey::from_protocol)
        .collect();
    Ok(())
}

/// Signs the proof challenges with PIN1 and PIN2 and completes the registration.
pub async fn prove(
    client: &Client,
    p: &PendingRegistration,
    pin1: &Pin,
    pin2: &Pin,
) -> Result<ProofOutcome> {
    let req = prepare_proof(client, p, pin1, pin2).await?;
    send_proof(client, p, req).await
}

/// The device's half of [`prove`]: both proof signatures, sealed to the server's transport
/// key (fetched here). Nothing is sent.
pub async fn prepare_proof(
    client: &Client,
    p: &PendingRegistration,
    pin1: &Pin,
    pin2: &Pin,
) -> Result<pb::CompleteRegistrationRequest> {
    let registration = p.to_protocol()?;
    let transport = TransportKey::from_spki_der(&transport_key(client).await?)?;
    let message = registration.prepare_proof(pin1, pin2, &transport, &mut OsRng)?;
    Ok(pb::CompleteRegistrationRequest {
        registration_id: p.registration_id.clone(),
        registration_secret: p.registration_secret.clone(),
        shares: message
            .shares
            .into_iter()
            .map(|s| pb::ProofShare {
                key_type: convert::key_type_to_pb(s.key_type),
                share_envelope: s.share_envelope,
            })
            .collect(),
        nonce: message.nonce.as_bytes().to_vec(),
    })
}

/// Sends [`prepare_proof`]'s request and completes the registration.
pub async fn send_proof(
    client: &Client,
    p: &PendingRegistration,
    req: pb::CompleteRegistrationRequest,
) -> Result<ProofOutcome> {
    let registration = p.to_protocol()?;
    let resp = retry!(client, complete_registration, req).await?;
    Ok(registration.complete(&p.server_url, convert::complete_reply_from_pb(resp))?)
}

/// The server's key-transport public key (SPKI DER).
pub async fn transport_key(client: &Client) -> Result<Vec<u8>> {
    let mut c = client.inner.clone();
    Ok(c.get_server_info(pb::GetServerInfoRequest {})
        .await?
        .into_inner()
        .transport_public_key_der)
}

// ---------------------------------------------------------------------- transactions

/// Pending transactions for this device.
pub async fn list_pending(
    client: &Client,
    state: &DeviceState,
) -> Result<Vec<pb::PendingTransaction>> {
    let mut c = client.inner.clone();
    let resp = c
        .list_pending(pb::ListPendingRequest {
            credential: convert::credential(state),
        })
        .await?;
    Ok(resp.into_inner().transactions)
}

/// Opens the server-streaming watch for pending transactions.
pub async fn watch_pending(
    client: &Client,
    state: &DeviceState,
) -> Result<tonic::Streaming<pb::PendingTransaction>> {
    let mut c = client.inner.clone();
    Ok(c.watch_pending(pb::ListPendingRequest {
        credential: convert::credential(state),
    })
    .await?
    .into_inner())
}

/// Checks a pending transaction against the device's own view and builds the prompt
/// ([`protocol::prompt`]).
pub fn prompt(state: &DeviceState, t: &pb::PendingTransaction) -> Result<Prompt> {
    Ok(protocol::prompt(state, &convert::pending_from_pb(t)?)?)
}

/// The URL the app opens when transaction `t` of a same-device flow ends
/// ([`rp_session::callback_url`]): after the server accepted its confirmation, or after a
/// refusal (then without `userChallengeVerifier`). `None` for QR and notification flows.
pub fn callback_url(
    t: &pb::PendingTransaction,
    user_challenge_verifier: Option<&str>,
) -> Result<Option<CallbackUrl>> {
    let callback = t
        .rp_api
        .as_ref()
        .and_then(|c| c.callback.as_ref())
        .map(convert::callback_from_pb);
    Ok(rp_session::same_device_callback_url(
        callback.as_ref(),
        user_challenge_verifier,
    )?)
}

/// Presents a device link (a scanned QR code, a followed Web2App / App2App link) to the
/// server, which checks it and returns the session it names.
pub async fn claim_device_link(
    client: &Client,
    state: &DeviceState,
    link: &str,
) -> Result<pb::PendingTransaction> {
    let mut c = client.inner.clone();
    Ok(c.claim_device_link(pb::ClaimDeviceLinkRequest {
        credential: convert::credential(state),
        device_link: link.to_owned(),
    })
    .await?
    .into_inner())
}

/// Answers a certificate choice ([`protocol::prepare_certificate_choice`]): no PIN, no
/// signature. Refuses any other kind of session.
pub fn prepare_certificate_choice(
    state: &DeviceState,
    t: &pb::PendingTransaction,
) -> Result<PreparedConfirm> {
    let t = convert::pending_from_pb(t)?;
    let prepared = protocol::prepare_certificate_choice(state, &t, &mut OsRng)?;
    Ok(PreparedConfirm::from_protocol(state, prepared))
}

/// A confirmation prepared for sending: build once, send (and re-send) with the same nonce.
/// `Debug` shows no credential (the request carries the device secret).
#[derive(Clone)]
pub struct PreparedConfirm {
    /// The request, nonce included.
    pub request: pb::ConfirmRequest,
    /// Which key pair's clone token the answer refreshes.
    pub key_type: KeyType,
    /// Same-device flows: the callback URL to open once the server accepted
    /// ([`PreparedConfirm::callback_after`]); `None` otherwise.
    pub callback: Option<CallbackUrl>,
}

impl std::fmt::Debug for PreparedConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedConfirm")
            .field("transaction_id", &self.request.transaction_id)
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl PreparedConfirm {
    fn from_protocol(state: &DeviceState, p: protocol::PreparedConfirm) -> Self {
        Self {
            request: convert::confirm_to_pb(state, &p.message),
            key_type: p.key_type,
            callback: p.callback,
        }
    }

    /// The callback URL to open after the server's answer `resp`: only when it accepted the
    /// confirmation of a same-device flow. (A rejected PIN or code choice opens nothing.)
    pub fn callback_after(&self, resp: &pb::ConfirmResponse) -> Option<&CallbackUrl> {
        confirm::callback_after(
            self.callback.as_ref(),
            convert::outcome_from_pb(resp.outcome),
        )
    }
}

/// Unlocks the share with `pin`, signs (after the protocol's checks) and seals the partial
/// signature ([`protocol::prepare_confirm`]). `chosen_vc` is the code the person picked when
/// a choice was shown. A certificate choice needs no PIN and no signature: it is answered as
/// [`prepare_certificate_choice`] does (the PIN is not used).
pub fn prepare_confirm(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    pin: &Pin,
    chosen_vc: Option<&str>,
    transport_key_der: &[u8],
) -> Result<PreparedConfirm> {
    let t = convert::pending_from_pb(t)?;
    let transport = TransportKey::from_spki_der(transport_key_der)?;
    let prepared = protocol::prepare_confirm(state, &t, pin, chosen_vc, &transport, &mut OsRng)?;
    Ok(PreparedConfirm::from_protocol(state, prepared))
}

/// [`prepare_confirm`] with a share unlocked before ([`protocol::bench`]; load generators
/// only). The share must be the one of the transaction's key type.
#[cfg(feature = "bench-variants")]
pub fn prepare_confirm_with_share(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    share: &crate::keys::DeviceShare,
    chosen_vc: Option<&str>,
    transport_key_der: &[u8],
) -> Result<PreparedConfirm> {
    let t = convert::pending_from_pb(t)?;
    let transport = TransportKey::from_spki_der(transport_key_der)?;
    let prepared = protocol::bench::prepare_confirm_with_share(
        state, &t, share, chosen_vc, &transport, &mut OsRng,
    )?;
    Ok(PreparedConfirm::from_protocol(state, prepared))
}

/// [`prepare_confirm_with_share`] with the share's exponentiation done by `mod_exp`
/// ([`crate::sign::partial_sign_with`]): for test harnesses that run devices beside the
/// server they measure (`tandem load`), not for apps.
#[cfg(feature = "bench-variants")]
pub fn prepare_confirm_with_share_using(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    share: &crate::keys::DeviceShare,
    chosen_vc: Option<&str>,
    transport_key_der: &[u8],
    mod_exp: &crate::sign::ModExp<'_>,
) -> Result<PreparedConfirm> {
    let t = convert::pending_from_pb(t)?;
    let transport = TransportKey::from_spki_der(transport_key_der)?;
    let prepared = protocol::bench::prepare_confirm_with_share_using(
        state, &t, share, chosen_vc, &transport, mod_exp, &mut OsRng,
    )?;
    Ok(PreparedConfirm::from_protocol(state, prepared))
}

/// Unlocks the share with `pin` and signs `request` (after the encoding check) for later
/// [`prepare_confirm_precomputed`] calls (load generators only).
#[cfg(feature = "bench-variants")]
pub fn precompute(
    state: &DeviceState,
    key_type: KeyType,
    pin: &Pin,
    request: &SigningRequest,
) -> Result<Precomputed> {
    Ok(protocol::bench::precompute(state, key_type, pin, request)?)
}

/// [`prepare_confirm`] with the partial signature from [`precompute`]: only for a
/// transaction of that key type whose request asks for exactly the precomputed encoded
/// message (anything else is refused here, so it never costs a PIN attempt).
#[cfg(feature = "bench-variants")]
pub fn prepare_confirm_precomputed(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    pre: &Precomputed,
    transport_key_der: &[u8],
) -> Result<PreparedConfirm> {
    let t = convert::pending_from_pb(t)?;
    let transport = TransportKey::from_spki_der(transport_key_der)?;
    let prepared =
        protocol::bench::prepare_confirm_precomputed(state, &t, pre, &transport, &mut OsRng)?;
    Ok(PreparedConfirm::from_protocol(state, prepared))
}

/// Sends a prepared confirmation (retrying with the same nonce on transport failures) and
/// stores the next clone token in `state` when the server issued one. Save the state
/// afterwards.
pub async fn send_confirm(
    client: &Client,
    state: &mut DeviceState,
    prepared: &PreparedConfirm,
) -> Result<pb::ConfirmResponse> {
    let resp = retry!(client, confirm, prepared.request.clone()).await?;
    if let Some(token) = convert::next_clone_token(&resp.next_clone_token)? {
        confirm::store_next_clone_token(state, prepared.key_type, token);
    }
    Ok(resp)
}

/// Confirms a transaction: [`prepare_confirm`] + [`send_confirm`].
pub async fn confirm(
    client: &Client,
    state: &mut DeviceState,
    t: &pb::PendingTransaction,
    pin: &Pin,
    chosen_vc: Option<&str>,
) -> Result<pb::ConfirmResponse> {
    Ok(confirm_session(client, state, t, Some(pin), chosen_vc)
        .await?
        .response)
}

/// The server's answer to a confirmation, and the callback URL to open when it accepted one
/// of a same-device flow.
#[derive(Debug)]
pub struct Confirmation {
    /// The server's answer.
    pub response: pb::ConfirmResponse,
    /// Set when the server accepted the confirmation of a Web2App / App2App flow (or of a
    /// linked signing after such a certificate choice): open it.
    pub callback: Option<CallbackUrl>,
}

/// Answers any kind of session the app can confirm: a certificate choice (no PIN: `pin` may
/// be `None`), an authentication or a signature (`pin` required). Saves nothing: save the
/// state afterwards (it holds the next clone-detection token).
pub async fn confirm_session(
    client: &Client,
    state: &mut DeviceState,
    t: &pb::PendingTransaction,
    pin: Option<&Pin>,
    chosen_vc: Option<&str>,
) -> Result<Confirmation> {
    let prepared = if prompt(state, t)?.certificate_choice {
        prepare_certificate_choice(state, t)?
    } else {
        let pin = pin.ok_or(crate::Error::Protocol(ProtocolError::PinRequired))?;
        let key = transport_key(client).await?;
        prepare_confirm(state, t, pin, chosen_vc, &key)?
    };
    let response = send_confirm(client, state, &prepared).await?;
    let callback = prepared.callback_after(&response).cloned();
    Ok(Confirmation { response, callback })
}

/// Refuses a transaction.
pub async fn refuse(client: &Client, state: &DeviceState, transaction_id: &str) -> Result<()> {
    refuse_with(client, state, transaction_id, pb::RefuseReason::User, "").await
}

/// Refuses with a reason: a refused interaction (`interaction` names it), an interaction
/// the app cannot show, or a certificate choice the person declined (`CertChoice`, which the
/// server accepts only for a certificate choice). A same-device flow then opens
/// [`callback_url`]`(t, None)`.
pub async fn refuse_with(
    client: &Client,
    state: &DeviceState,
    transaction_id: &str,
    reason: pb::RefuseReason,
    interaction: &str,
) -> Result<()> {
    let req = pb::RefuseRequest {
        credential: convert::credential(state),
        transaction_id: transaction_id.to_owned(),
        nonce: nonce(&mut OsRng),
        reason: reason as i32,
        interaction: interaction.to_owned(),
    };
    retry!(client, refuse, req).await?;
    Ok(())
}

/// Lock state of both key pairs.
pub async fn key_state(client: &Client, state: &DeviceState) -> Result<Vec<pb::KeyPairState>> {
    let mut c = client.inner.clone();
    Ok(c.get_key_state(pb::GetKeyStateRequest {
        credential: convert::credential(state),
    })
    .await?
    .into_inner()
    .key_pairs)
}

/// Replaces a key pair's clone token (e.g. after restoring from a backup the server
/// knows about). Save the state afterwards.
pub async fn refresh_clone_token(
    client: &Client,
    state: &mut DeviceState,
    key_type: KeyType,
) -> Result<()> {
    let kp = state
        .key_pair(key_type)
        .ok_or(crate::Error::Protocol(ProtocolError::NoSuchKeyPair))?;
    let req = pb::RefreshCloneTokenRequest {
        credential: convert::credential(state),
        key_type: convert::key_type_to_pb(key_type),
        clone_token: kp.clone_token.as_bytes().to_vec(),
        nonce: nonce(&mut OsRng),
    };
    let resp = retry!(client, refresh_clone_token, req).await?;
    let token = crate::types::CloneToken::from_slice(&resp.next_clone_token)?;
    confirm::store_next_clone_token(state, key_type, token);
    Ok(())
}

/// Account information as the server has it.
pub async fn account(client: &Client, state: &DeviceState) -> Result<pb::AccountInfo> {
    let mut c = client.inner.clone();
    Ok(c.get_account(pb::GetAccountRequest {
        credential: convert::credential(state),
    })
    .await?
    .into_inner())
}

/// Deletes the account on the server (its secrets there are destroyed).
pub async fn delete_account(client: &Client, state: &DeviceState) -> Result<()> {
    let req = pb::DeleteAccountRequest {
        credential: convert::credential(state),
        nonce: nonce(&mut OsRng),
    };
    retry!(client, delete_account, req).await?;
    Ok(())
}

#[cfg(test)]
mod debug_redaction_tests {
    use super::*;

    #[test]
    fn share_forms_and_unknown_ones() {
        let info = |f: i32| pb::ServerInfo {
            server_share_form: f,
            ..Default::default()
        };
        assert_eq!(share_form(&info(0)).unwrap(), ShareForm::Exponent);
        assert_eq!(share_form(&info(1)).unwrap(), ShareForm::RsaKey);
        assert!(matches!(
            share_form(&info(7)),
            Err(ClientError::Core(crate::Error::UnsupportedShareForm(7)))
        ));
    }

    #[test]
    fn prepared_requests_do_not_show_their_secrets() {
        let confirm = PreparedConfirm {
            request: pb::ConfirmRequest {
                credential: Some(pb::DeviceCredential {
                    account_id: "acc".into(),
                    device_secret: b"device-secret-bytes".to_vec(),
                }),
                transaction_id: "tx".into(),
                ..Default::default()
            },
            key_type: KeyType::Sign,
            callback: None,
        };
        let shown = format!("{confirm:?}");
        assert!(shown.contains("tx"), "{shown}");
        assert!(!shown.contains("100, 101, 118"), "{shown}");
        assert!(!shown.contains("device_secret"), "{shown}");
        let keys = PreparedKeys {
            request: pb::SubmitKeysRequest {
                registration_id: "reg".into(),
                registration_secret: b"registration-secret".to_vec(),
                ..Default::default()
            },
            keys: registration::PreparedKeys::empty_for_tests(),
        };
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("reg") && !shown.contains("registration_secret"),
            "{shown}"
        );
        let pending = PendingRegistration {
            server_url: "https://127.0.0.1:1".into(),
            device_id: "00".repeat(16),
            registration_id: "reg".into(),
            registration_secret: b"registration-secret".to_vec(),
            registration_code: "code".into(),
            matching_code: "1234".into(),
            expires_at_unix: 0,
            keystore_secret: "a2V5c3RvcmUtc2VjcmV0LWtleXN0b3JlLXNlY3JldCE=".into(),
            keys: Vec::new(),
        };
        let shown = format!("{pending:?}");
        assert!(shown.contains("reg") && shown.contains("1234"), "{shown}");
        assert!(
            !shown.contains("a2V5c3RvcmUt") && !shown.contains("114, 101, 103"),
            "{shown}"
        );
    }
}
