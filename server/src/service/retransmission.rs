//! Retransmission handling: the stored answer for a request nonce, sealed.
//!
//! Every state-changing device request carries a random 16-byte nonce. The first time a
//! nonce is seen the server judges the request and stores its answer with the nonce; a
//! retry with the same nonce and the same request gets that stored answer again (a lost
//! response must not look like a clone), the same nonce with another request is refused.
//!
//! Some answers hold secrets: the registration secret (StartRegistration), the device
//! secret and the first clone tokens (CompleteRegistration), the next clone token (Confirm,
//! RefreshCloneToken). The database must never hold them in clear, so every stored answer
//! is sealed:
//!
//! ```text
//!   master M    = HMAC-SHA-256(reply key in the HSM, "tandem reply master v1")
//!                 (Hsm::reply_mac inside the HSM, once when the server starts; kept in memory)
//!   reply key K = HMAC-SHA-256(M, "tandem reply key v1" || scope || nonce || whole request)
//!   stored      = 0x02 || 0x01 || iv (12) || AES-256-GCM(K, iv, answer, aad) (ciphertext || tag)
//!   aad         = "tandem reply v1" || scope || nonce || SHA-256(request)
//! ```
//!
//! (each variable-length field length-prefixed). K is computed when the request arrives and
//! kept only in memory for that request; neither K nor M is ever stored. To rebuild K one
//! needs M — the HSM's reply key, or the running server's memory — *and* the whole request,
//! and the requests that get secret answers carry a secret that the database keeps only as a
//! hash or not at all (the device secret, the current clone token, the registration secret,
//! the device challenge, the sealed share envelopes). So neither a copy of the database nor
//! the HSM alone opens a stored answer; a retransmission, which is the same request again,
//! does. M is derived once so that the HSM stays out of the request path: a failing or stuck
//! HSM still ends a confirmation with SERVER_ERROR within `hsm.call_timeout_ms`.
//! `docs/THREAT_MODEL.md` lists where each secret lives.

use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Code, Status};
use zeroize::Zeroizing;

use super::ApiError;
use crate::hsm::Hsm;
use crate::store::{Reply, ReplyLookup, Store};

/// Version byte of a sealed stored answer.
const SEALED_VERSION: u8 = 0x02;
/// Algorithm byte: AES-256-GCM under a per-request key from the HSM's reply key.
const ALG_AES_GCM_REQUEST_KEY: u8 = 0x01;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Domain separation of the key derivation and of the associated data.
const KEY_LABEL: &[u8] = b"tandem reply key v1";
const AAD_LABEL: &[u8] = b"tandem reply v1";

/// Domain separation of the master's derivation in the HSM.
const MASTER_LABEL: &[u8] = b"tandem reply master v1";

/// The key from which each request's [`ReplyKey`] is derived; itself derived from the HSM's
/// reply key when the server starts. Only in memory.
pub(crate) struct ReplyMaster(Zeroizing<[u8; 32]>);

impl ReplyMaster {
    /// One HMAC in the HSM.
    pub(crate) fn derive(hsm: &Hsm) -> Result<Self, crate::hsm::HsmError> {
        Ok(Self(hsm.reply_mac(MASTER_LABEL)?))
    }

    /// HMAC-SHA-256 of `input` under the master.
    fn key_for(&self, input: &[u8]) -> ReplyKey {
        use hmac::{Hmac, Mac as _};
        // HMAC takes a key of any length: this cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes keys of any length");
        mac.update(input);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        ReplyKey(key)
    }
}

impl std::fmt::Debug for ReplyMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyMaster(<redacted>)")
    }
}

/// The key that seals the answer to one request. Exists only while the request is handled.
struct ReplyKey(Zeroizing<[u8; 32]>);

impl ReplyKey {
    fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ReplyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyKey(<redacted>)")
    }
}

/// The stored-answer handling of one request.
pub(crate) struct Retransmission {
    scope: String,
    nonce: Vec<u8>,
    request_hash: Vec<u8>,
    key: ReplyKey,
}

impl std::fmt::Debug for Retransmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retransmission")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Retransmission {
    /// `scope` names the nonce space (e.g. account id + method); `request` is the whole
    /// request message: hashed so a reused nonce with other content is refused, and the
    /// input of the key that seals the answer.
    pub(crate) fn new(
        master: &ReplyMaster,
        scope: String,
        nonce: &[u8],
        request: &impl Message,
    ) -> Result<Self, ApiError> {
        if nonce.len() != 16 {
            return Err(ApiError::InvalidArgument(
                "nonce must be 16 random bytes".into(),
            ));
        }
        let request = Zeroizing::new(request.encode_to_vec());
        let mut input = Zeroizing::new(Vec::with_capacity(64 + scope.len() + request.len()));
        push_field(&mut input, KEY_LABEL);
        push_field(&mut input, scope.as_bytes());
        push_field(&mut input, nonce);
        input.extend_from_slice(&request);
        let key = master.key_for(&input);
        Ok(Self {
            scope,
            nonce: nonce.to_vec(),
            request_hash: Sha256::digest(&request).to_vec(),
            key,
        })
    }

    /// A stored answer, if this nonce was seen with the same request.
    pub(crate) fn lookup<T: Message + Default>(
        &self,
        store: &Arc<dyn Store>,
    ) -> Result<Option<Result<T, Status>>, ApiError> {
        match store.lookup_reply(&self.scope, &self.nonce, &self.request_hash)? {
            ReplyLookup::New => Ok(None),
            ReplyLookup::Replay(sealed) => Ok(Some(decode_reply(&self.open(&sealed)?)?)),
            ReplyLookup::Mismatch => Err(ApiError::InvalidArgument(
                "this nonce was already used for a different request".into(),
            )),
        }
    }

    /// The reply record for a successful answer.
    pub(crate) fn ok(&self, response: &impl Message) -> Reply {
        let mut bytes = Zeroizing::new(vec![0u8]);
        bytes.extend(response.encode_to_vec());
        self.record(&bytes)
    }

    /// The reply record for an error answer.
    pub(crate) fn err(&self, code: Code, message: &str) -> Reply {
        let mut bytes = Zeroizing::new(vec![1u8]);
        bytes.extend((code as i32).to_be_bytes());
        bytes.extend(message.as_bytes());
        self.record(&bytes)
    }

    fn record(&self, answer: &[u8]) -> Reply {
        Reply {
            scope: self.scope.clone(),
            nonce: self.nonce.clone(),
            request_hash: self.request_hash.clone(),
            response: self.seal(answer),
        }
    }

    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + self.scope.len());
        push_field(&mut aad, AAD_LABEL);
        push_field(&mut aad, self.scope.as_bytes());
        push_field(&mut aad, &self.nonce);
        push_field(&mut aad, &self.request_hash);
        aad
    }

    fn seal(&self, answer: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        use rand_core::RngCore as _;
        let cipher = aes_gcm::Aes256Gcm::new(self.key.expose_secret().into());
        let mut iv = [0u8; IV_LEN];
        rand_core::OsRng.fill_bytes(&mut iv);
        let aad = self.aad();
        // Encryption with a valid key and nonce of the right sizes cannot fail.
        let sealed = cipher
            .encrypt(
                (&iv).into(),
                Payload {
                    msg: answer,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(2 + IV_LEN + sealed.len());
        out.extend_from_slice(&[SEALED_VERSION, ALG_AES_GCM_REQUEST_KEY]);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        out
    }

    fn open(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        match stored {
            // Answers stored in clear by an earlier version were discarded by the migration
            // that introduced sealing: the request is not judged a second time.
            [] => Err(ApiError::FailedPrecondition(
                "the stored answer to this request was discarded when the server was upgraded; \
                 the request is not repeated"
                    .into(),
            )),
            [SEALED_VERSION, ALG_AES_GCM_REQUEST_KEY, rest @ ..]
                if rest.len() >= IV_LEN + TAG_LEN =>
            {
                let (iv, sealed) = rest.split_at(IV_LEN);
                let cipher = aes_gcm::Aes256Gcm::new(self.key.expose_secret().into());
                let aad = self.aad();
                cipher
                    .decrypt(
                        iv.into(),
                        Payload {
                            msg: sealed,
                            aad: &aad,
                        },
                    )
                    .map(Zeroizing::new)
                    .map_err(|_| ApiError::Internal("stored reply cannot be opened".into()))
            }
            _ => Err(ApiError::Internal(
                "stored reply has an unknown format".into(),
            )),
        }
    }
}

/// Appends `field` with a 4-byte big-endian length prefix.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    // Fields are far below 4 GiB (a request is limited by the gRPC message size).
    out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(field);
}

fn decode_reply<T: Message + Default>(bytes: &[u8]) -> Result<Result<T, Status>, ApiError> {
    let corrupt = || ApiError::Internal("stored reply is corrupt".into());
    match bytes.split_first() {
        Some((0, body)) => Ok(Ok(T::decode(body).map_err(|_| corrupt())?)),
        Some((1, rest)) if rest.len() >= 4 => {
            let code = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let msg = String::from_utf8_lossy(&rest[4..]).into_owned();
            Ok(Err(Status::new(Code::from_i32(code), msg)))
        }
        _ => Err(corrupt()),
    }
}
