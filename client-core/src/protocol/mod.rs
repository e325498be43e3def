//! The device protocol without transport: the registration and confirmation rounds and every
//! safety check the app makes, over this crate's own types.
//!
//! Nothing here knows protobuf, gRPC, sockets or an async runtime. Each round is a function
//! (or a state that a function consumes) from typed server answers to typed device messages;
//! randomness comes in as an argument. The gRPC shell (`crate::grpc`, feature `grpc`) only
//! converts protobuf to these types and back and moves the bytes; an app that speaks gRPC
//! natively (Kotlin, Swift) does the same with its own stubs and keeps every check below.
//!
//! ```text
//!   server message (wire)                                     device message (wire)
//!        │                                                          ▲
//!        ▼  shell: protobuf → messages::*                           │  shell: messages::* → protobuf
//!   ┌───────────────────────────────────────────────────────────────┴──────────────┐
//!   │ protocol (this module, sans-IO)                                              │
//!   │  registration  start ─▶ AwaitingStart::accept (matching code)                │
//!   │                Registration::prepare_keys (keys, d1'' sealed, d1' under PIN) │
//!   │                PreparedKeys::accept (n = n1·n2, one challenge per key pair)  │
//!   │  proof         Registration::prepare_proof ─▶ Registration::complete         │
//!   │  confirm       prompt (x encodes the digest, VC, VC choice)                  │
//!   │                prepare_confirm / prepare_certificate_choice                  │
//!   │  rp_session    RP API sessions: interactions, ACSP_V2 payload, callback URL  │
//!   │  transport_key the server's key-transport key and share form                │
//!   └──────────────────────────────────────────────────────────────────────────────┘
//!        uses: keys, pin, encoding, sign, envelope, vc, rp_api, callback, state
//! ```
//!
//! What the device keeps between rounds is a value the caller holds ([`Registration`],
//! [`crate::state::DeviceState`]); what it sends is a message value that the caller sends as
//! it is, and sends again unchanged (same nonce) when the transport fails, so that the server
//! answers a retry from its stored reply instead of judging a share twice.
//!
//! Messages do not carry the caller's credentials: the shell adds the registration id and
//! secret ([`Registration::registration_secret`]) or the device credential (the account id
//! and [`crate::types::DeviceSecret`] of the [`crate::state::DeviceState`]).

pub mod confirm;
pub mod messages;
pub mod proof;
pub mod registration;
pub mod rp_session;
pub mod transport_key;

#[cfg(feature = "bench-variants")]
pub mod bench;

pub use confirm::{PreparedConfirm, Prompt, prepare_certificate_choice, prepare_confirm, prompt};
pub use messages::*;
pub use proof::ProofOutcome;
pub use registration::{AwaitingStart, KeyParams, PreparedKeys, Registration, RegistrationSecret};
pub use transport_key::{ShareForm, TransportKey, TransportKeyKind};

use crate::types::KeyType;

/// A server message the device refuses. Nothing was signed and no PIN was used when one of
/// these comes back from a `prompt` or `prepare_*` function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A field the device needs is missing or holds a value this device does not know.
    #[error("{0}")]
    Unexpected(&'static str),
    /// The server's matching code is not the one the device computed.
    #[error("the server's matching code differs from the device's")]
    MatchingCode,
    /// The server sent no proof challenge for a key pair.
    #[error("no proof challenge for {0}")]
    NoChallenge(KeyType),
    /// The server's composite modulus is not `n1·n2` for the device's `n1`.
    #[error("composite modulus is not n1·n2")]
    CompositeModulus,
    /// The completed registration carries no account.
    #[error("no account in the answer")]
    NoAccount,
    /// The completed registration carries no clone token for a key pair.
    #[error("clone token missing")]
    CloneTokenMissing,
    /// The device has no key pair of the type asked for.
    #[error("no such key pair")]
    NoSuchKeyPair,
    /// A three-code choice without exactly three codes, one of them the transaction's.
    #[error("the verification-code choice does not contain this transaction's code")]
    VcChoice,
    /// A PIN-less answer was asked for a session that is not a certificate choice.
    #[error("not a certificate choice: confirm it with the PIN")]
    NotCertificateChoice,
    /// A session that needs a signature was answered without a PIN.
    #[error("this session needs the PIN of its key pair")]
    PinRequired,
    /// The relying party's `interactions` are not Base64 JSON of interactions.
    #[error("malformed interactions")]
    MalformedInteractions,
    /// None of the relying party's interactions is one this app can show.
    #[error("no supported interaction")]
    NoSupportedInteraction,
    /// The ACSP_V2 `rpChallenge` is not Base64.
    #[error("rpChallenge is not Base64")]
    RpChallenge,
    /// An authentication or signing session without a signature protocol.
    #[error("no signature protocol")]
    NoSignatureProtocol,
    /// The ACSP_V2 hash algorithm is not one of the RP API's.
    #[error("unsupported hash algorithm")]
    UnsupportedHash,
    /// The callback URL of a same-device session is not the `initialCallbackUrl` the
    /// ACSP_V2 payload binds.
    #[error("the callback URL is not the session's initialCallbackUrl")]
    CallbackUrl,
    /// Load generator only: the transaction asks for another value than the precomputed one.
    #[error("the transaction asks for another signature than the precomputed one")]
    NotPrecomputed,
}
