//! Tandem device core: split-key RSA (SplitKey, Buldas et al., ESORICS 2017, as deployed by
//! Smart-ID) in pure Rust, sans-IO.
//!
//! Functions take bytes, a caller-provided RNG (`rand_core` 0.6 `CryptoRng + RngCore`) and,
//! where needed, time as arguments; nothing here opens files or sockets or reads clocks.
//! Big integers cross the API as unsigned big-endian byte strings.
//!
//! # What lives where
//!
//! ```text
//!                 DEVICE                                          SERVER (+ HSM)
//!  generate_client_key(rng, 3072)
//!    n1 = p1·q1, d1 = e^-1 mod φ(n1)
//!    d1'  uniform in [0, 2^bits)
//!    d1'' = d1 − d1' mod φ(n1)
//!      │          │                 │
//!      │          │ n1 (public) ────┼──────────────────────────▶ n1, n2 (HSM key), n = n1·n2
//!      │          │                 │                              -> certificate for (n, e)
//!      │          │                 └─ seal_server_share(d1'') ─▶ envelope, opened in HSM,
//!      │          │                    (ECDH or RSA-OAEP,            d1'' kept encrypted
//!      │          │                     consumed by value)           under an HSM key
//!      │          └─ p1, q1, d1, φ: zeroized, never stored
//!      ▼
//!  ProtectedShare::protect(d1', PIN, keystore secret)
//!    state file: Argon2id+ChaCha20 ciphertext of d1' (no MAC),
//!    n1, n, clone token, device secret, keystore secret
//!    (never: PIN, d1' in clear, d1'', p1, q1, d1)
//!
//!  signing:                                                      server:
//!    check x encodes the shown digest (verify_encoding)            check x itself
//!    d1' = unlock(PIN)   (any PIN "works")                         s1'' = x^d1'' mod n1
//!    s1' = x^d1' mod n1  ── sealed (aad_partial_signature) ─────▶  s1 = s1'·s1'' mod n1
//!                                                                  s1^e == x mod n1 ? (PIN ok?)
//!                                                                  s2 = x^d2 mod n2 (HSM)
//!                                                                  s = CRT(s1, s2); s^e == x ?
//! ```
//!
//! # The device protocol and its shell
//!
//! ```text
//!   phone app (Kotlin / Swift / Rust)            tandem device simulator, tests
//!          │ its own gRPC stubs                         │
//!          │                                   ┌────────▼─────────────────────────┐
//!          │                                   │ grpc (feature "grpc"): tonic      │
//!          │                                   │  Client, retries with same nonce, │
//!          │                                   │  grpc/convert.rs: protobuf ⇄ types│
//!          │                                   └────────┬─────────────────────────┘
//!          ▼ protocol::messages (own types)             ▼
//!   ┌────────────────────────────────────────────────────────────────────────────┐
//!   │ protocol (sans-IO, no feature needed): every check the app makes           │
//!   │  registration: matching code, keys + d1'' sealed, n = n1·n2                │
//!   │  proof:        proof signatures, completed state                          │
//!   │  confirm:      prompt (x encodes the digest, VC, VC choice), sealed answer │
//!   │  rp_session:   interactions, ACSP_V2 payload, callback URL                │
//!   │  transport_key: the server's key-transport key and share form            │
//!   │  bench (feature "bench-variants"): load-generator confirmations          │
//!   └────────────────────────────────────────────────────────────────────────────┘
//!          ▼ uses
//!   keys · pin · encoding · sign · envelope · vc · rp_api · callback · state · types
//! ```
//!
//! The protocol takes the server's messages as [`protocol::messages`] values and returns the
//! device's messages as values; randomness is an argument. The `grpc` shell only converts
//! and sends: an app that brings its own transport keeps every safety check by calling
//! [`protocol`] itself, and needs neither tonic nor tokio (without features this crate
//! depends on none of tonic, tokio, prost or tandem-proto).
//!
//! # Modules
//!
//! * [`protocol`]: the device protocol without transport (registration, proof,
//!   confirmation, RP API sessions).
//! * `grpc` (feature `grpc`): the tonic shell around [`protocol`].
//! * [`keys`]: client key generation and the exponent split ([`keys::DeviceShare`],
//!   [`keys::ServerShare`]).
//! * [`pin`]: PIN protection of `d1'` without a verifier.
//! * [`encoding`]: EMSA-PKCS1-v1_5 and EMSA-PSS encode / verify.
//! * [`sign`]: partial signatures, combination, raw verification.
//! * [`envelope`]: sealing to the server's HSM key-transport key.
//! * [`vc`]: verification and matching codes.
//! * [`callback`]: the callback URL of a same-device (Web2App / App2App) flow.
//! * [`types`]: key types, clone tokens, nonces, the device secret.
//! * [`state`]: the device state file.
//! * [`hazmat`]: raw modular arithmetic (unpadded RSA) — read its warning first.
//!
//! # Secrets
//!
//! Secret values are newtypes that zeroize on drop, print `<redacted>` in `Debug`, and have
//! neither `Clone` nor `Serialize` nor `Display`. Their bytes are reachable only through a
//! method named `expose_secret()` (crate-private except [`types::DeviceSecret`], which the wire
//! layer must send).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
#[cfg(test)]
mod golden;
mod serde_b64;

pub mod callback;
pub mod encoding;
pub mod envelope;
/// The gRPC shell (tonic client) around the sans-IO core.
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod hazmat;
pub mod keys;
pub mod pin;
pub mod protocol;
pub mod rp_api;
pub mod sign;
pub mod state;
pub mod types;
pub mod vc;

pub use error::{Error, Result};
pub use keys::{
    ClientKeyMaterial, DEFAULT_CLIENT_KEY_BITS, DeviceShare, PUBLIC_EXPONENT, ServerShare,
    generate_client_key,
};
pub use sign::{PartialSignature, SigningRequest};
pub use types::{KeyType, RequestNonce};
