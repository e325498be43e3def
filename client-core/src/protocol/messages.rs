//! The device API's messages as this crate's own types: what the server sends the device
//! and what the device answers, without any wire encoding.
//!
//! A transport shell fills these from its wire messages (and refuses a value it cannot map,
//! such as an unknown enum number) and turns the device's messages back into wire messages.
//! Credentials (registration secret, device credential) are not part of them: the shell adds
//! them. Values the RP API defines as strings stay the exact strings the relying party sent,
//! because the ACSP_V2 payload is built from them byte for byte.

use crate::encoding::{HashAlgorithm, SignatureScheme};
use crate::sign::SigningRequest;
use crate::types::{CloneToken, KeyType, RequestNonce};

// ------------------------------------------------------------------------ registration

/// The device's first registration message (`StartRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRegistration {
    /// 16 random bytes, fixed for the device's lifetime.
    pub device_id: [u8; 16],
    /// 32 random bytes; feeds the matching code.
    pub device_challenge: [u8; 32],
    /// Retransmission nonce.
    pub nonce: RequestNonce,
}

/// The server's answer to [`StartRegistration`].
pub struct StartRegistrationReply {
    /// The registration's id.
    pub registration_id: String,
    /// Authenticates the further registration calls (32 bytes). Not a key share.
    pub registration_secret: Vec<u8>,
    /// Given to the operator / identity proofing; valid 15 minutes.
    pub registration_code: String,
    /// Unix seconds.
    pub expires_at_unix: i64,
    /// The 4-digit code both sides show.
    pub matching_code: String,
}

impl core::fmt::Debug for StartRegistrationReply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StartRegistrationReply")
            .field("registration_id", &self.registration_id)
            .field("matching_code", &self.matching_code)
            .finish_non_exhaustive()
    }
}

/// One key pair handed over at registration (`KeySubmission`).
#[derive(Clone, PartialEq, Eq)]
pub struct KeySubmission {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// `n1`, big-endian.
    pub client_modulus: Vec<u8>,
    /// `d1''` sealed to the transport key, in the server's share form.
    pub server_share_envelope: Vec<u8>,
}

impl core::fmt::Debug for KeySubmission {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeySubmission")
            .field("key_type", &self.key_type)
            .field("envelope_len", &self.server_share_envelope.len())
            .finish_non_exhaustive()
    }
}

/// What the server asks the device to sign (`SigningRequest`), as it asked it: nothing is
/// checked yet. [`crate::protocol::confirm::checked_request`] turns it into a
/// [`SigningRequest`] once `x` is known to encode the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRequest {
    /// Which key pair signs.
    pub key_type: KeyType,
    /// Encoding scheme of `encoded_message`.
    pub scheme: SignatureScheme,
    /// Hash algorithm of `digest`.
    pub hash: HashAlgorithm,
    /// The digest the device shows.
    pub digest: Vec<u8>,
    /// `x`, as many bytes as the composite modulus.
    pub encoded_message: Vec<u8>,
}

impl SignatureRequest {
    /// The request for a composite modulus of `composite_modulus_bits`, **unchecked**: the
    /// signing functions check the encoding before they exponentiate.
    pub fn for_modulus_bits(&self, composite_modulus_bits: usize) -> SigningRequest {
        SigningRequest {
            scheme: self.scheme,
            hash: self.hash,
            digest: self.digest.clone(),
            encoded_message: self.encoded_message.clone(),
            composite_modulus_bits,
        }
    }
}

/// The server's proof challenge for one key pair (`KeyProofChallenge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofChallenge {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// `n = n1·n2`.
    pub composite_modulus: Vec<u8>,
    /// `n2`.
    pub server_modulus: Vec<u8>,
    /// What to sign to prove the key pair.
    pub request: SignatureRequest,
}

/// One proof signature, sealed (`ProofShare`).
#[derive(Clone, PartialEq, Eq)]
pub struct ProofShare {
    /// AUTH or SIGN.
    pub key_type: KeyType,
    /// `s1'` sealed to the transport key.
    pub share_envelope: Vec<u8>,
}

impl core::fmt::Debug for ProofShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProofShare")
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

/// The device's last registration message (`CompleteRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteRegistration {
    /// One proof per key pair.
    pub shares: Vec<ProofShare>,
    /// Retransmission nonce.
    pub nonce: RequestNonce,
}

/// The holder as the server registered them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// National identity number.
    pub national_id: String,
}

/// The account as the server has it (`AccountInfo`), as far as the device keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// Server-assigned account id.
    pub account_id: String,
    /// Smart-ID style document number.
    pub document_number: String,
    /// The holder (default when the server sent none).
    pub identity: Identity,
    /// Account expiry (Unix seconds).
    pub expires_at_unix: i64,
    /// Each key pair's certificate (DER), when issued.
    pub certificates: Vec<(KeyType, Vec<u8>)>,
}

/// The server's answer to [`CompleteRegistration`].
pub struct CompleteRegistrationReply {
    /// Set when every proof verified.
    pub account: Option<AccountInfo>,
    /// Authenticates the device from now on (32 bytes).
    pub device_secret: Vec<u8>,
    /// One clone-detection token per key pair.
    pub clone_tokens: Vec<(KeyType, Vec<u8>)>,
    /// Key pairs whose proof did not verify (a PIN other than the one chosen).
    pub failed: Vec<KeyType>,
    /// Proof attempts left for this registration.
    pub attempts_left: u32,
}

impl core::fmt::Debug for CompleteRegistrationReply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CompleteRegistrationReply")
            .field("account", &self.account)
            .field("failed", &self.failed)
            .field("attempts_left", &self.attempts_left)
            .finish_non_exhaustive()
    }
}

// ------------------------------------------------------------------------ transactions

/// A session waiting for this device (`PendingTransaction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTransaction {
    /// The transaction (or RP API session) id.
    pub transaction_id: String,
    /// Who asks.
    pub relying_party_name: String,
    /// Text to confirm (gRPC relying-party API).
    pub display_text: String,
    /// What to sign, as the server encoded it.
    pub request: SignatureRequest,
    /// Empty, or the three-code choice (exactly one is right).
    pub vc_choices: Vec<String>,
    /// Set for sessions of the REST relying-party API (Smart-ID RP API v3).
    pub rp_api: Option<RpApiContext>,
}

/// The kind of an RP API session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpSessionType {
    /// `auth`.
    Authentication,
    /// `sign`.
    Signature,
    /// `cert`: a certificate choice (no PIN, no signature).
    CertificateChoice,
}

impl RpSessionType {
    /// The wire name (`auth`, `sign`, `cert`), or `None` for another one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auth" => Some(Self::Authentication),
            "sign" => Some(Self::Signature),
            "cert" => Some(Self::CertificateChoice),
            _ => None,
        }
    }
}

/// The signature protocol of an RP API session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpSignatureProtocol {
    /// `ACSP_V2`: authentication; the app builds and signs the payload.
    AcspV2,
    /// `RAW_DIGEST_SIGNATURE`: signing of the relying party's digest, encoded by the server.
    RawDigestSignature,
}

impl RpSignatureProtocol {
    /// The wire name, or `None` for another one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ACSP_V2" => Some(Self::AcspV2),
            "RAW_DIGEST_SIGNATURE" => Some(Self::RawDigestSignature),
            _ => None,
        }
    }
}

/// How an RP API session reached the device (`flowType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpFlowType {
    /// `QR`.
    Qr,
    /// `Web2App`.
    Web2App,
    /// `App2App`.
    App2App,
    /// `Notification`.
    Notification,
}

impl RpFlowType {
    /// The wire name, exactly as the ACSP_V2 payload carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qr => "QR",
            Self::Web2App => "Web2App",
            Self::App2App => "App2App",
            Self::Notification => "Notification",
        }
    }

    /// The wire name, or `None` for another one.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Qr, Self::Web2App, Self::App2App, Self::Notification]
            .into_iter()
            .find(|f| f.as_str() == name)
    }

    /// Web2App and App2App: the flow ends with a callback URL the app opens.
    pub fn is_same_device(self) -> bool {
        matches!(self, Self::Web2App | Self::App2App)
    }
}

/// What an RP API session asks of the app (`RpApiContext`). The strings are exactly as the
/// relying party (or the server, for `serverRandom`) sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpApiContext {
    /// auth, sign or cert.
    pub session_type: RpSessionType,
    /// `None` only for a certificate choice.
    pub signature_protocol: Option<RpSignatureProtocol>,
    /// `smart-id` or `smart-id-demo`.
    pub scheme_name: String,
    /// ACSP_V2: the server's random value (Base64).
    pub server_random: String,
    /// ACSP_V2: the relying party's challenge (Base64, as sent).
    pub rp_challenge: String,
    /// The Base64 JSON interaction list, as sent.
    pub interactions: String,
    /// The relying party's `initialCallbackUrl`, if it sent one.
    pub initial_callback_url: Option<String>,
    /// How the session reached the device.
    pub flow_type: RpFlowType,
    /// `rsassa-pss`, `sha256WithRSAEncryption`, ...
    pub signature_algorithm: String,
    /// `SHA-256`, ... (RP API spelling).
    pub hash_algorithm: String,
    /// Notification signing: the code the relying party shows.
    pub verification_code: String,
    /// Linked signing: the certificate choice it follows.
    pub linked_session_id: Option<String>,
    /// Same-device flows: the values of the callback URL the app opens at the end.
    pub callback: Option<SameDeviceCallback>,
}

/// The values of a same-device flow's callback URL (`SameDeviceCallback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameDeviceCallback {
    /// Exactly as the relying party sent it.
    pub initial_callback_url: String,
    /// `BASE64URL(SHA-256(sessionSecret))`; never the secret itself.
    pub session_secret_digest: String,
}

/// The device's answer to a pending transaction (`Confirm`), without the device credential.
pub struct ConfirmMessage {
    /// The transaction answered.
    pub transaction_id: String,
    /// Retransmission nonce.
    pub nonce: RequestNonce,
    /// A certificate choice or a sealed signature.
    pub answer: ConfirmAnswer,
}

impl core::fmt::Debug for ConfirmMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConfirmMessage")
            .field("transaction_id", &self.transaction_id)
            .field("nonce", &self.nonce)
            .field("answer", &self.answer)
            .finish()
    }
}

/// What the device answers.
#[derive(Debug)]
pub enum ConfirmAnswer {
    /// A certificate choice: this account's signing certificate; no PIN, no signature.
    CertificateChoice,
    /// A partial signature sealed to the transport key.
    Signed(SignedAnswer),
}

/// A confirmation with a partial signature.
pub struct SignedAnswer {
    /// `s1'` sealed to the transport key, bound to the transaction, account and key type.
    pub share_envelope: Vec<u8>,
    /// The key pair's current clone-detection token.
    pub clone_token: CloneToken,
    /// The code the person picked from a three-code choice.
    pub chosen_vc: Option<String>,
    /// RP API sessions: the interaction the person went through.
    pub interaction_type_used: Option<String>,
    /// ACSP_V2: what the server needs to rebuild the payload the app signed.
    pub acsp_v2: Option<AcspV2Answer>,
}

impl core::fmt::Debug for SignedAnswer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SignedAnswer")
            .field("chosen_vc", &self.chosen_vc)
            .field("interaction_type_used", &self.interaction_type_used)
            .field("acsp_v2", &self.acsp_v2.is_some())
            .finish_non_exhaustive()
    }
}

/// The app's part of an ACSP_V2 authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcspV2Answer {
    /// `BASE64URL(SHA-256(userChallengeVerifier))`, chosen by the app.
    pub user_challenge: String,
    /// `x`, encoded by the app from the digest of the payload it built.
    pub encoded_message: Vec<u8>,
}

/// How the server judged a confirmation (`ConfirmOutcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// Signature produced.
    Accepted,
    /// The combined signature did not verify.
    WrongPin,
    /// Key pair locked; the share was not evaluated.
    Locked,
    /// Key pair disabled for good.
    Disabled,
    /// Wrong code chosen; not a PIN failure.
    WrongVc,
    /// Stale clone token with a valid share; key pair disabled.
    CloneDetected,
    /// Expired, refused, or answered by another device.
    TransactionClosed,
    /// A value this device does not know.
    Unknown,
}

/// The server's answer to a [`ConfirmMessage`].
#[derive(Debug)]
pub struct ConfirmReply {
    /// How the server judged it.
    pub outcome: ConfirmOutcome,
    /// The key pair's next clone token, when the server issued one.
    pub next_clone_token: Option<CloneToken>,
}
