//! The gRPC shell around the sans-IO core (feature `grpc`): what a phone app does, as
//! library calls. The device simulator of the `tandem` command line is built on it.
//!
//! Every state-changing call carries a fresh [`RequestNonce`]; when the transport fails
//! (lost answer, reset connection) the *same* request with the *same* nonce is sent again,
//! so the server answers from its stored reply instead of judging the share twice.

use std::time::Duration;

use rand_core::{CryptoRng, OsRng, RngCore};
use serde::{Deserialize, Serialize};
use tandem_proto::v1 as pb;
use tandem_proto::v1::device_client::DeviceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use crate::callback::CallbackUrl;
use crate::encoding::{HashAlgorithm, SignatureScheme};
use crate::envelope;
use crate::hazmat::bigint::{bit_length, multiply};
use crate::keys::DeviceShare;
use crate::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use crate::sign::{PartialSignature, SigningRequest, partial_sign};
use crate::state::{DeviceState, KeyPairState};
use crate::types::{CloneToken, DeviceSecret, KeyType, RequestNonce};
use crate::vc;

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

fn key_type_pb(k: KeyType) -> i32 {
    match k {
        KeyType::Auth => pb::KeyType::Auth as i32,
        KeyType::Sign => pb::KeyType::Sign as i32,
    }
}

fn key_type_from_pb(v: i32) -> Result<KeyType> {
    match pb::KeyType::try_from(v) {
        Ok(pb::KeyType::Auth) => Ok(KeyType::Auth),
        Ok(pb::KeyType::Sign) => Ok(KeyType::Sign),
        _ => Err(ClientError::Protocol("unknown key type".into())),
    }
}

/// Converts a wire signing request into the validated domain type.
pub fn signing_request(
    r: &pb::SigningRequest,
    composite_modulus_bits: usize,
) -> Result<SigningRequest> {
    let scheme = match pb::SignatureScheme::try_from(r.scheme) {
        Ok(pb::SignatureScheme::Pkcs1V15) => SignatureScheme::Pkcs1v15,
        Ok(pb::SignatureScheme::Pss) => SignatureScheme::Pss,
        _ => return Err(ClientError::Protocol("unknown signature scheme".into())),
    };
    let hash = match pb::HashAlgorithm::try_from(r.hash) {
        Ok(pb::HashAlgorithm::Sha256) => HashAlgorithm::Sha256,
        Ok(pb::HashAlgorithm::Sha384) => HashAlgorithm::Sha384,
        Ok(pb::HashAlgorithm::Sha512) => HashAlgorithm::Sha512,
        Ok(pb::HashAlgorithm::Sha3256) => HashAlgorithm::Sha3_256,
        Ok(pb::HashAlgorithm::Sha3384) => HashAlgorithm::Sha3_384,
        Ok(pb::HashAlgorithm::Sha3512) => HashAlgorithm::Sha3_512,
        _ => return Err(ClientError::Protocol("unknown hash algorithm".into())),
    };
    Ok(SigningRequest {
        scheme,
        hash,
        digest: r.digest.clone(),
        encoded_message: r.encoded_message.clone(),
        composite_modulus_bits,
    })
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

/// A registration in progress on the device (saved between the steps).
#[derive(Debug, Serialize, Deserialize)]
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

/// Starts a registration. The device shows `matching_code`; the person gives
/// `registration_code` to the operator, who checks the same matching code.
pub async fn register_start(client: &Client, device_id: [u8; 16]) -> Result<PendingRegistration> {
    let mut rng = OsRng;
    let mut challenge = [0u8; 32];
    rng.fill_bytes(&mut challenge);
    let req = pb::StartRegistrationRequest {
        device_id: device_id.to_vec(),
        device_challenge: challenge.to_vec(),
        nonce: nonce(&mut rng),
    };
    let resp = retry!(client, start_registration, req).await?;
    let expected = vc::matching_code(&resp.registration_id, &challenge);
    if expected != resp.matching_code {
        return Err(ClientError::Protocol(
            "the server's matching code differs from the device's".into(),
        ));
    }
    Ok(PendingRegistration {
        server_url: client.url.clone(),
        device_id: hex::encode(device_id),
        registration_id: resp.registration_id,
        registration_secret: resp.registration_secret,
        registration_code: resp.registration_code,
        matching_code: expected,
        expires_at_unix: resp.expires_at_unix,
        keystore_secret: KeystoreSecret::generate(&mut rng).to_base64().to_string(),
        keys: Vec::new(),
    })
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

/// The form in which the server keeps `d1''` (`ServerInfo.server_share_form`), and so what
/// the device sends it at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareForm {
    /// `d1''` itself, sealed to the transport key.
    Exponent,
    /// `d1''` as a non-CRT RSA key for the server's HSM
    /// ([`crate::keys::generate_client_key_for_token`]); needs an RSA transport key.
    RsaKey,
}

/// The form a server asks for; an unknown value is refused (this device cannot produce it).
pub fn share_form(info: &pb::ServerInfo) -> Result<ShareForm> {
    match pb::ServerShareForm::try_from(info.server_share_form) {
        Ok(pb::ServerShareForm::Exponent) => Ok(ShareForm::Exponent),
        Ok(pb::ServerShareForm::RsaKey) => Ok(ShareForm::RsaKey),
        Err(_) => Err(ClientError::Core(crate::Error::UnsupportedShareForm(
            info.server_share_form,
        ))),
    }
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
    protected: Vec<(KeyType, Vec<u8>, ProtectedShare)>,
}

impl std::fmt::Debug for PreparedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedKeys")
            .field("registration_id", &self.request.registration_id)
            .field(
                "keys",
                &self.protected.iter().map(|k| k.0).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PreparedConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedConfirm")
            .field("transaction_id", &self.request.transaction_id)
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
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
            protected: Vec::new(),
        };
        let shown = format!("{keys:?}");
        assert!(
            shown.contains("reg") && !shown.contains("registration_secret"),
            "{shown}"
        );
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
    let mut rng = OsRng;
    let keystore = KeystoreSecret::from_base64(&p.keystore_secret)?;
    let mut submissions = Vec::new();
    let mut protected = Vec::new();
    for (kt, pin) in [(KeyType::Auth, pin1), (KeyType::Sign, pin2)] {
        let (modulus, device_share, sealed) = match form {
            ShareForm::Exponent => {
                let material = crate::keys::generate_client_key(&mut rng, key_bits)?;
                let sealed = envelope::seal_server_share(
                    transport_key_der,
                    material.server_share,
                    &envelope::aad_server_share(&p.registration_id, kt),
                    &mut rng,
                )?;
                (material.modulus, material.device_share, sealed)
            }
            ShareForm::RsaKey => {
                let material = crate::keys::generate_client_key_for_token(&mut rng, key_bits)?;
                let sealed = envelope::seal_server_share_key(
                    transport_key_der,
                    material.server_share_key,
                    &mut rng,
                )?;
                (material.modulus, material.device_share, sealed)
            }
        };
        let share = ProtectedShare::protect(&device_share, pin, &keystore, kdf, &mut rng)?;
        drop(device_share);
        submissions.push(pb::KeySubmission {
            key_type: key_type_pb(kt),
            client_modulus: modulus.clone(),
            server_share_envelope: sealed,
        });
        protected.push((kt, modulus, share));
    }
    Ok(PreparedKeys {
        request: pb::SubmitKeysRequest {
            registration_id: p.registration_id.clone(),
            registration_secret: p.registration_secret.clone(),
            keys: submissions,
            nonce: nonce(&mut rng),
        },
        protected,
    })
}

/// Sends [`prepare_keys`]' result and keeps the server's proof challenges in `p`.
pub async fn send_keys(
    client: &Client,
    p: &mut PendingRegistration,
    prepared: PreparedKeys,
) -> Result<()> {
    let PreparedKeys { request, protected } = prepared;
    let resp = retry!(client, submit_keys, request).await?;
    let mut keys = Vec::new();
    for (kt, n1, share) in protected {
        let ch = resp
            .challenges
            .iter()
            .find(|c| key_type_from_pb(c.key_type).ok() == Some(kt))
            .ok_or_else(|| ClientError::Protocol(format!("no proof challenge for {kt}")))?;
        // The composite key must really contain our n1.
        if multiply(&n1, &ch.server_modulus) != ch.composite_modulus {
            return Err(ClientError::Protocol(
                "composite modulus is not n1·n2".into(),
            ));
        }
        let sr = ch
            .signing_request
            .clone()
            .ok_or_else(|| ClientError::Protocol("challenge without request".into()))?;
        keys.push(PendingKey {
            key_type: kt,
            client_modulus: n1,
            composite_modulus: ch.composite_modulus.clone(),
            protected_share: share,
            challenge: prost::Message::encode_to_vec(&sr),
        });
    }
    p.keys = keys;
    Ok(())
}

/// Result of the registration proof.
#[derive(Debug)]
pub enum ProofOutcome {
    /// The account exists; save this state.
    Completed(Box<DeviceState>),
    /// A PIN did not match the one chosen; try again (same keys).
    PinMismatch {
        /// Which key pairs failed.
        failed: Vec<KeyType>,
        /// Proofs left before the registration is aborted.
        attempts_left: u32,
    },
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

/// The device's half of [`prove`]: both proof signatures, sealed. Nothing is sent.
pub async fn prepare_proof(
    client: &Client,
    p: &PendingRegistration,
    pin1: &Pin,
    pin2: &Pin,
) -> Result<pb::CompleteRegistrationRequest> {
    let mut rng = OsRng;
    let keystore = KeystoreSecret::from_base64(&p.keystore_secret)?;
    let mut shares = Vec::new();
    for k in &p.keys {
        let pin = if k.key_type == KeyType::Auth {
            pin1
        } else {
            pin2
        };
        let sr: pb::SigningRequest = prost::Message::decode(k.challenge.as_slice())
            .map_err(|_| ClientError::Protocol("stored challenge is corrupt".into()))?;
        let request = signing_request(&sr, bit_length(&k.composite_modulus))?;
        let share = k.protected_share.unlock(pin, &keystore)?;
        let s1 = partial_sign(&share, &k.client_modulus, &request)?;
        drop(share);
        let info_key = transport_key(client).await?;
        shares.push(pb::ProofShare {
            key_type: key_type_pb(k.key_type),
            share_envelope: envelope::seal(
                &info_key,
                s1.as_bytes(),
                &envelope::aad_proof_share(&p.registration_id, k.key_type),
                &mut rng,
            )?,
        });
    }
    Ok(pb::CompleteRegistrationRequest {
        registration_id: p.registration_id.clone(),
        registration_secret: p.registration_secret.clone(),
        shares,
        nonce: nonce(&mut rng),
    })
}

/// Sends [`prepare_proof`]'s request and completes the registration.
pub async fn send_proof(
    client: &Client,
    p: &PendingRegistration,
    req: pb::CompleteRegistrationRequest,
) -> Result<ProofOutcome> {
    let keystore = KeystoreSecret::from_base64(&p.keystore_secret)?;
    let resp = retry!(client, complete_registration, req).await?;
    if !resp.failed.is_empty() {
        return Ok(ProofOutcome::PinMismatch {
            failed: resp
                .failed
                .iter()
                .filter_map(|&k| key_type_from_pb(k).ok())
                .collect(),
            attempts_left: resp.attempts_left,
        });
    }
    let account = resp
        .account
        .ok_or_else(|| ClientError::Protocol("no account in the answer".into()))?;
    let identity = account.identity.unwrap_or_default();
    let mut key_pairs = Vec::new();
    for k in &p.keys {
        let token = resp
            .clone_tokens
            .iter()
            .find(|t| key_type_from_pb(t.key_type).ok() == Some(k.key_type))
            .ok_or_else(|| ClientError::Protocol("clone token missing".into()))?;
        let protected_share: ProtectedShare = serde_json::from_value(
            serde_json::to_value(&k.protected_share)
                .map_err(|e| ClientError::Protocol(e.to_string()))?,
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        key_pairs.push(KeyPairState {
            key_type: k.key_type,
            client_modulus: k.client_modulus.clone(),
            composite_modulus: k.composite_modulus.clone(),
            protected_share,
            clone_token: CloneToken::from_slice(&token.token)?,
            certificate: account
                .key_pairs
                .iter()
                .find(|i| key_type_from_pb(i.key_type).ok() == Some(k.key_type))
                .map(|i| i.certificate_der.clone())
                .unwrap_or_default(),
        });
    }
    let device_id: [u8; 16] = hex::decode(&p.device_id)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| ClientError::Protocol("device id".into()))?;
    Ok(ProofOutcome::Completed(Box::new(DeviceState {
        server_url: p.server_url.clone(),
        device_id,
        account_id: account.account_id,
        document_number: account.document_number,
        given_name: identity.given_name,
        surname: identity.surname,
        country: identity.country,
        national_id: identity.national_id,
        expires_at_unix: account.expires_at_unix,
        device_secret: DeviceSecret::from_slice(&resp.device_secret)?,
        keystore_secret: keystore,
        key_pairs,
    })))
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

fn credential(state: &DeviceState) -> Option<pb::DeviceCredential> {
    Some(pb::DeviceCredential {
        account_id: state.account_id.clone(),
        device_secret: state.device_secret.expose_secret().to_vec(),
    })
}

/// Pending transactions for this device.
pub async fn list_pending(
    client: &Client,
    state: &DeviceState,
) -> Result<Vec<pb::PendingTransaction>> {
    let mut c = client.inner.clone();
    let resp = c
        .list_pending(pb::ListPendingRequest {
            credential: credential(state),
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
        credential: credential(state),
    })
    .await?
    .into_inner())
}

/// What the device shows before asking for the PIN.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Relying party.
    pub relying_party: String,
    /// Text to confirm.
    pub display_text: String,
    /// The verification code the device computed from the digest.
    pub verification_code: String,
    /// The three codes to choose from (empty: show `verification_code`).
    pub vc_choices: Vec<String>,
    /// Which key (PIN1 for AUTH, PIN2 for SIGN).
    pub key_type: KeyType,
    /// REST sessions: the interaction shown (the first of the relying party's list this
    /// app supports). `None` for gRPC transactions.
    pub interaction: Option<crate::rp_api::Interaction>,
    /// REST sessions: a certificate choice (no PIN, no signature).
    pub certificate_choice: bool,
    /// REST linked signing: the device-link certificate choice this session follows. After
    /// answering such a choice the app waits for this session; any other one it refuses with
    /// `RefuseReason::ExpectedLinkedSession`.
    pub linked_session_id: Option<String>,
}

/// Checks a pending transaction against the device's own view and builds the prompt.
pub fn prompt(state: &DeviceState, t: &pb::PendingTransaction) -> Result<Prompt> {
    if let Some(ctx) = &t.rp_api {
        return rp_prompt(state, t, ctx);
    }
    let sr = t
        .signing_request
        .as_ref()
        .ok_or_else(|| ClientError::Protocol("transaction without request".into()))?;
    let key_type = key_type_from_pb(sr.key_type)?;
    let kp = state
        .key_pair(key_type)
        .ok_or_else(|| ClientError::Protocol("no such key pair".into()))?;
    // Refuse before any PIN is asked if x does not encode the digest we will show.
    checked_request(sr, &kp.composite_modulus)?;
    let code = vc::verification_code(&sr.digest);
    if !t.vc_choices.is_empty() && (t.vc_choices.len() != 3 || !t.vc_choices.contains(&code)) {
        return Err(ClientError::Protocol(
            "the verification-code choice does not contain this transaction's code".into(),
        ));
    }
    Ok(Prompt {
        relying_party: t.relying_party_name.clone(),
        display_text: t.display_text.clone(),
        verification_code: code,
        vc_choices: t.vc_choices.clone(),
        key_type,
        interaction: None,
        certificate_choice: false,
        linked_session_id: None,
    })
}

/// The server's signing request, refused unless its x encodes the digest it names.
fn checked_request(sr: &pb::SigningRequest, composite_modulus: &[u8]) -> Result<SigningRequest> {
    let request = signing_request(sr, bit_length(composite_modulus))?;
    crate::encoding::verify_encoding(
        request.scheme,
        request.hash,
        &request.digest,
        &request.encoded_message,
        request.composite_modulus_bits,
    )
    .map_err(|_| ClientError::Core(crate::Error::EncodingMismatch))?;
    Ok(request)
}

/// The prompt of a REST (RP API v3) session.
fn rp_prompt(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    ctx: &pb::RpApiContext,
) -> Result<Prompt> {
    let sr = t
        .signing_request
        .as_ref()
        .ok_or_else(|| ClientError::Protocol("transaction without request".into()))?;
    let key_type = key_type_from_pb(sr.key_type)?;
    check_callback_values(ctx)?;
    if ctx.session_type == "cert" {
        return Ok(Prompt {
            relying_party: t.relying_party_name.clone(),
            display_text: String::new(),
            verification_code: String::new(),
            vc_choices: Vec::new(),
            key_type,
            interaction: None,
            certificate_choice: true,
            linked_session_id: None,
        });
    }
    let list = crate::rp_api::decode_interactions(&ctx.interactions)
        .ok_or_else(|| ClientError::Protocol("malformed interactions".into()))?;
    let interaction =
        crate::rp_api::choose_interaction(&list, &crate::rp_api::SUPPORTED_INTERACTIONS)
            .cloned()
            .ok_or_else(|| ClientError::Protocol("no supported interaction".into()))?;
    let kp = state
        .key_pair(key_type)
        .ok_or_else(|| ClientError::Protocol("no such key pair".into()))?;
    let verification_code = match ctx.signature_protocol.as_str() {
        "ACSP_V2" => {
            // Authentication: the code comes from the relying party's challenge, computed
            // here exactly as the relying party computes it.
            let raw = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                &ctx.rp_challenge,
            )
            .map_err(|_| ClientError::Protocol("rpChallenge is not Base64".into()))?;
            vc::verification_code(&raw)
        }
        "RAW_DIGEST_SIGNATURE" => {
            checked_request(sr, &kp.composite_modulus)?;
            ctx.verification_code.clone()
        }
        other => {
            return Err(ClientError::Protocol(format!(
                "unknown signature protocol {other:?}"
            )));
        }
    };
    let vc_choices = if interaction.kind == crate::rp_api::CONFIRMATION_MESSAGE_AND_VC_CHOICE {
        if t.vc_choices.len() != 3 || !t.vc_choices.contains(&verification_code) {
            return Err(ClientError::Protocol(
                "the verification-code choice does not contain this session's code".into(),
            ));
        }
        t.vc_choices.clone()
    } else {
        Vec::new()
    };
    Ok(Prompt {
        relying_party: t.relying_party_name.clone(),
        display_text: interaction.text.clone(),
        verification_code,
        vc_choices,
        key_type,
        interaction: Some(interaction),
        certificate_choice: false,
        linked_session_id: (!ctx.linked_session_id.is_empty())
            .then(|| ctx.linked_session_id.clone()),
    })
}

/// Refuses (before any PIN is asked) a same-device session whose callback values the app
/// could not use: a callback URL the specification does not allow, a digest that is not
/// Base64URL SHA-256, or (outside a linked signing, whose callback is the certificate
/// choice's) a callback URL other than the one the ACSP_V2 payload binds.
fn check_callback_values(ctx: &pb::RpApiContext) -> Result<()> {
    let Some(cb) = &ctx.callback else {
        return Ok(());
    };
    CallbackUrl::build(&cb.initial_callback_url, &cb.session_secret_digest, None)?;
    if ctx.linked_session_id.is_empty() && cb.initial_callback_url != ctx.initial_callback_url {
        return Err(ClientError::Protocol(
            "the callback URL is not the session's initialCallbackUrl".into(),
        ));
    }
    Ok(())
}

/// The URL the app opens when transaction `t` of a same-device flow (Web2App / App2App, or a
/// linked signing after such a certificate choice) ends: after the server accepted its
/// confirmation, or after a refusal (then without `userChallengeVerifier`: no signature holds
/// a `userChallenge` to check it against). `user_challenge_verifier` is the one of an
/// ACSP_V2 authentication the app signed. `None` for QR and notification flows.
pub fn callback_url(
    t: &pb::PendingTransaction,
    user_challenge_verifier: Option<&str>,
) -> Result<Option<CallbackUrl>> {
    let Some(cb) = t.rp_api.as_ref().and_then(|c| c.callback.as_ref()) else {
        return Ok(None);
    };
    Ok(Some(CallbackUrl::build(
        &cb.initial_callback_url,
        &cb.session_secret_digest,
        user_challenge_verifier,
    )?))
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
        credential: credential(state),
        device_link: link.to_owned(),
    })
    .await?
    .into_inner())
}

/// The ACSP_V2 message for a REST authentication: the app picks its user challenge,
/// derives the digest from what it showed and encodes `x` for its composite modulus.
/// Returns the request, the `userChallenge` (sent to the server) and its verifier (kept for
/// the callback URL of a same-device flow).
fn acsp_request(
    t: &pb::PendingTransaction,
    ctx: &pb::RpApiContext,
    interaction: &str,
    composite_modulus_bits: usize,
) -> Result<(SigningRequest, String, zeroize::Zeroizing<String>)> {
    let mut rng = OsRng;
    let hash = crate::rp_api::hash_from_name(&ctx.hash_algorithm)
        .ok_or_else(|| ClientError::Protocol("unsupported hash algorithm".into()))?;
    let verifier =
        zeroize::Zeroizing::new(crate::rp_api::generate_user_challenge_verifier(&mut rng));
    let user_challenge = crate::rp_api::user_challenge(&verifier);
    let callback = (!ctx.initial_callback_url.is_empty()
        && matches!(ctx.flow_type.as_str(), "Web2App" | "App2App"))
    .then_some(ctx.initial_callback_url.as_str());
    let digest = crate::rp_api::acsp_v2_digest(
        &crate::rp_api::AcspV2Fields {
            scheme_name: &ctx.scheme_name,
            server_random: &ctx.server_random,
            rp_challenge: &ctx.rp_challenge,
            user_challenge: &user_challenge,
            relying_party_name: &t.relying_party_name,
            brokered_rp_name: None,
            interactions: &ctx.interactions,
            interaction_type_used: interaction,
            initial_callback_url: callback,
            flow_type: &ctx.flow_type,
        },
        hash,
    );
    let scheme = if ctx.signature_algorithm == "rsassa-pss" {
        SignatureScheme::Pss
    } else {
        SignatureScheme::Pkcs1v15
    };
    let x = match scheme {
        SignatureScheme::Pss => {
            crate::encoding::encode_pss(hash, &digest, composite_modulus_bits, &mut rng)
        }
        SignatureScheme::Pkcs1v15 => {
            crate::encoding::encode_pkcs1v15(hash, &digest, composite_modulus_bits)
        }
    }?;
    Ok((
        SigningRequest {
            scheme,
            hash,
            digest,
            encoded_message: x,
            composite_modulus_bits,
        },
        user_challenge,
        verifier,
    ))
}

/// Answers a certificate choice: no PIN, no signature; the server returns this account's
/// signing certificate to the relying party. Refuses any other kind of session.
///
/// For a choice answered through a Web2App / App2App link the prepared answer carries the
/// callback URL. When the relying party follows the choice with a linked signing session
/// (`Prompt::linked_session_id`), that session carries the same callback values and the
/// app opens the callback after it instead (callback_urls.txt, "Callback URLs in linked
/// notification based flows").
pub fn prepare_certificate_choice(
    state: &DeviceState,
    t: &pb::PendingTransaction,
) -> Result<PreparedConfirm> {
    if !prompt(state, t)?.certificate_choice {
        return Err(ClientError::Protocol(
            "not a certificate choice: confirm it with the PIN".into(),
        ));
    }
    Ok(PreparedConfirm {
        request: pb::ConfirmRequest {
            credential: credential(state),
            transaction_id: t.transaction_id.clone(),
            nonce: nonce(&mut OsRng),
            ..Default::default()
        },
        key_type: KeyType::Sign,
        callback: callback_url(t, None)?,
    })
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

impl PreparedConfirm {
    /// The callback URL to open after the server's answer `resp`: only when it accepted the
    /// confirmation of a same-device flow. (A rejected PIN or code choice opens nothing.)
    pub fn callback_after(&self, resp: &pb::ConfirmResponse) -> Option<&CallbackUrl> {
        (resp.outcome == pb::ConfirmOutcome::Accepted as i32)
            .then_some(self.callback.as_ref())
            .flatten()
    }
}

/// Unlocks the share with `pin`, signs (after checking the encoding) and seals the partial
/// signature. `chosen_vc` is the code the person picked when a choice was shown.
/// A certificate choice needs no PIN and no signature: it is answered as
/// [`prepare_certificate_choice`] does (the PIN is not used).
pub fn prepare_confirm(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    pin: &Pin,
    chosen_vc: Option<&str>,
    transport_key_der: &[u8],
) -> Result<PreparedConfirm> {
    let p = prompt(state, t)?;
    if p.certificate_choice {
        return prepare_certificate_choice(state, t);
    }
    let kp = state
        .key_pair(p.key_type)
        .ok_or_else(|| ClientError::Protocol("no such key pair".into()))?;
    let share = kp.protected_share.unlock(pin, &state.keystore_secret)?;
    prepare_confirm_with_share(state, t, &share, chosen_vc, transport_key_der)
}

/// [`prepare_confirm`] with a share unlocked before (the load generator unlocks each
/// account's share once, so that its PIN unlock, memory-hard by design, does not run beside
/// the server it measures). The share must be the one of the transaction's key type.
pub fn prepare_confirm_with_share(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    share: &DeviceShare,
    chosen_vc: Option<&str>,
    transport_key_der: &[u8],
) -> Result<PreparedConfirm> {
    prepare_confirm_signed(state, t, chosen_vc, transport_key_der, |n1, request| {
        Ok(partial_sign(share, n1, request)?)
    })
}

/// [`prepare_confirm_with_share`] with the share's exponentiation done by `mod_exp`
/// ([`crate::sign::partial_sign_with`]): for test harnesses that run devices beside the
/// server they measure (`tandem load`), not for apps.
pub fn prepare_confirm_with_share_using(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    share: &DeviceShare,
    chosen_vc: Option<&str>,
    transport_key_der: &[u8],
    mod_exp: &crate::sign::ModExp<'_>,
) -> Result<PreparedConfirm> {
    prepare_confirm_signed(state, t, chosen_vc, transport_key_der, |n1, request| {
        Ok(crate::sign::partial_sign_with(share, n1, request, mod_exp)?)
    })
}

/// Builds the signing request of transaction `t` (RSASSA encoding or ACSP_V2), has `sign`
/// compute `s1'` for it, and seals the confirmation. A certificate choice has nothing to
/// sign: it is answered without calling `sign`.
fn prepare_confirm_signed(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    chosen_vc: Option<&str>,
    transport_key_der: &[u8],
    sign: impl FnOnce(&[u8], &SigningRequest) -> Result<PartialSignature>,
) -> Result<PreparedConfirm> {
    let p = prompt(state, t)?;
    if p.certificate_choice {
        return prepare_certificate_choice(state, t);
    }
    let kp = state
        .key_pair(p.key_type)
        .ok_or_else(|| ClientError::Protocol("no such key pair".into()))?;
    let sr = t
        .signing_request
        .as_ref()
        .ok_or_else(|| ClientError::Protocol("transaction without request".into()))?;
    let bits = bit_length(&kp.composite_modulus);
    let interaction_type_used = p
        .interaction
        .as_ref()
        .map(|i| i.kind.clone())
        .unwrap_or_default();
    let (request, user_challenge, callback) = match &t.rp_api {
        Some(ctx) if ctx.signature_protocol == "ACSP_V2" => {
            let (r, uc, verifier) = acsp_request(t, ctx, &interaction_type_used, bits)?;
            (r, uc, callback_url(t, Some(verifier.as_str()))?)
        }
        _ => (
            signing_request(sr, bits)?,
            String::new(),
            callback_url(t, None)?,
        ),
    };
    let s1 = sign(&kp.client_modulus, &request)?;
    let encoded_message = if user_challenge.is_empty() {
        Vec::new()
    } else {
        request.encoded_message.clone()
    };
    seal_confirm(
        state,
        t,
        p.key_type,
        &s1,
        chosen_vc,
        (encoded_message, interaction_type_used, user_challenge),
        transport_key_der,
    )
    .map(|prepared| PreparedConfirm {
        callback,
        ..prepared
    })
}

/// Seals a partial signature for transaction `t` and builds the confirmation. `rp_fields`:
/// the encoded message, interaction and user challenge of an ACSP_V2 request (empty
/// otherwise).
fn seal_confirm(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    key_type: KeyType,
    s1: &PartialSignature,
    chosen_vc: Option<&str>,
    (encoded_message, interaction_type_used, user_challenge): (Vec<u8>, String, String),
    transport_key_der: &[u8],
) -> Result<PreparedConfirm> {
    let mut rng = OsRng;
    let kp = state
        .key_pair(key_type)
        .ok_or_else(|| ClientError::Protocol("no such key pair".into()))?;
    let sealed = envelope::seal(
        transport_key_der,
        s1.as_bytes(),
        &envelope::aad_partial_signature(&t.transaction_id, &state.account_id, key_type),
        &mut rng,
    )?;
    Ok(PreparedConfirm {
        request: pb::ConfirmRequest {
            credential: credential(state),
            transaction_id: t.transaction_id.clone(),
            chosen_vc: chosen_vc.unwrap_or_default().to_owned(),
            share_envelope: sealed,
            clone_token: kp.clone_token.as_bytes().to_vec(),
            nonce: nonce(&mut rng),
            encoded_message,
            interaction_type_used,
            user_challenge,
        },
        key_type,
        callback: None,
    })
}

/// Device work done ahead of time (load tests, `tandem load`): the partial signature of one
/// encoded message, so that confirming a transaction which asks for exactly that message
/// costs only the envelope. Only deterministic encodings (RSASSA-PKCS1-v1_5 over a fixed
/// digest) repeat, so only those are worth precomputing. Holds no PIN and no share.
#[derive(Debug)]
pub struct Precomputed {
    key_type: KeyType,
    encoded_message: Vec<u8>,
    s1: PartialSignature,
}

/// Unlocks the share with `pin` and signs `request` (after the encoding check) for later
/// [`prepare_confirm_precomputed`] calls.
pub fn precompute(
    state: &DeviceState,
    key_type: KeyType,
    pin: &Pin,
    request: &SigningRequest,
) -> Result<Precomputed> {
    let kp = state
        .key_pair(key_type)
        .ok_or_else(|| ClientError::Protocol("no such key pair".into()))?;
    let share = kp.protected_share.unlock(pin, &state.keystore_secret)?;
    let s1 = partial_sign(&share, &kp.client_modulus, request)?;
    Ok(Precomputed {
        key_type,
        encoded_message: request.encoded_message.clone(),
        s1,
    })
}

/// [`prepare_confirm`] with the partial signature from [`precompute`]: only for a
/// transaction of that key type whose request asks for exactly the precomputed encoded
/// message (anything else is refused here, so it never costs a PIN attempt).
pub fn prepare_confirm_precomputed(
    state: &DeviceState,
    t: &pb::PendingTransaction,
    pre: &Precomputed,
    transport_key_der: &[u8],
) -> Result<PreparedConfirm> {
    let p = prompt(state, t)?;
    let sr = t
        .signing_request
        .as_ref()
        .ok_or_else(|| ClientError::Protocol("transaction without request".into()))?;
    if p.key_type != pre.key_type
        || t.rp_api.is_some()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            sr.encoded_message.as_slice(),
            pre.encoded_message.as_slice(),
        ))
    {
        return Err(ClientError::Protocol(
            "the transaction asks for another signature than the precomputed one".into(),
        ));
    }
    seal_confirm(
        state,
        t,
        p.key_type,
        &pre.s1,
        None,
        (Vec::new(), String::new(), String::new()),
        transport_key_der,
    )
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
    if !resp.next_clone_token.is_empty() {
        let token = CloneToken::from_slice(&resp.next_clone_token)?;
        if let Some(kp) = state.key_pair_mut(prepared.key_type) {
            kp.clone_token = token;
        }
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
        let pin = pin.ok_or_else(|| {
            ClientError::Protocol("this session needs the PIN of its key pair".into())
        })?;
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
        credential: credential(state),
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
        credential: credential(state),
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
        .ok_or_else(|| ClientError::Protocol("no such key pair".into()))?;
    let req = pb::RefreshCloneTokenRequest {
        credential: credential(state),
        key_type: key_type_pb(key_type),
        clone_token: kp.clone_token.as_bytes().to_vec(),
        nonce: nonce(&mut OsRng),
    };
    let resp = retry!(client, refresh_clone_token, req).await?;
    let token = CloneToken::from_slice(&resp.next_clone_token)?;
    if let Some(kp) = state.key_pair_mut(key_type) {
        kp.clone_token = token;
    }
    Ok(())
}

/// Account information as the server has it.
pub async fn account(client: &Client, state: &DeviceState) -> Result<pb::AccountInfo> {
    let mut c = client.inner.clone();
    Ok(c.get_account(pb::GetAccountRequest {
        credential: credential(state),
    })
    .await?
    .into_inner())
}

/// Deletes the account on the server (its secrets there are destroyed).
pub async fn delete_account(client: &Client, state: &DeviceState) -> Result<()> {
    let req = pb::DeleteAccountRequest {
        credential: credential(state),
        nonce: nonce(&mut OsRng),
    };
    retry!(client, delete_account, req).await?;
    Ok(())
}
