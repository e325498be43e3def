//! The crate's single error type.

/// Everything that can go wrong in the device core.
///
/// Verification and decryption failures are deliberately coarse: they never say *why* a
/// share, an encoding or an envelope was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A modulus was zero, even, too small or otherwise unusable.
    #[error("invalid modulus")]
    InvalidModulus,
    /// An integer argument was empty or did not fit where it must (e.g. a share of the
    /// wrong length for its modulus).
    #[error("invalid integer argument")]
    InvalidInteger,
    /// The requested RSA key size is not one of the supported sizes.
    #[error("unsupported key size: {0} bits (supported: 2048, 3072, 4096)")]
    UnsupportedKeySize(usize),
    /// The RSA key generator failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// A digest does not have the length of its hash algorithm.
    #[error("digest length does not match the hash algorithm")]
    DigestLength,
    /// The modulus is too short for the requested encoding.
    #[error("modulus too short for the encoding")]
    ModulusTooShort,
    /// The encoded message is not a valid encoding of the expected digest. Deliberately
    /// does not say what is wrong with it.
    #[error("encoded message does not match the expected digest")]
    EncodingMismatch,
    /// A PIN is not 4 to 12 ASCII digits.
    #[error("a PIN must be 4 to 12 digits")]
    InvalidPinFormat,
    /// Argon2 parameters out of the accepted range, or the KDF failed.
    #[error("invalid key derivation parameters")]
    KdfParams,
    /// A persisted or transmitted blob names a format version this build does not know.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// Which blob.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A persisted or transmitted blob names an algorithm this build does not know.
    #[error("unsupported {what} algorithm {algorithm:?}")]
    UnsupportedAlgorithm {
        /// Which blob.
        what: &'static str,
        /// The algorithm identifier found.
        algorithm: String,
    },
    /// A persisted or transmitted blob is structurally malformed.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The key-transport public key could not be parsed or is too weak.
    #[error("invalid key-transport public key")]
    InvalidTransportKey,
    /// The server keeps `d1''` as an RSA key object in its HSM (`token-rsa`), which needs an
    /// RSA key-transport key (RSA-OAEP unwraps the content key inside the HSM); the server
    /// offered another kind.
    #[error("the server's share form needs an RSA key-transport key")]
    TransportKeyNotRsa,
    /// The server asked for a share form this device does not know.
    #[error("unsupported server share form {0}")]
    UnsupportedShareForm(i32),
    /// Encryption to the key-transport key failed.
    #[error("encryption failed")]
    Encryption,
    /// An envelope could not be opened (wrong key, wrong context or tampered). Coarse.
    #[error("envelope could not be opened")]
    EnvelopeOpen,
    /// The device state file is not a Tandem device state file, or is inconsistent.
    #[error("invalid device state: {0}")]
    InvalidState(&'static str),
    /// The server's message breaks the device protocol (see [`crate::protocol`]): the app
    /// refuses it before any PIN is asked or anything is signed.
    #[error("protocol: {0}")]
    Protocol(#[from] crate::protocol::ProtocolError),
    /// JSON (de)serialisation failed. Only the position is kept: serde's messages can quote
    /// input values, and the input may hold secrets.
    #[error("malformed JSON at line {line}, column {column}")]
    Json {
        /// Line of the error (1-based, 0 if unknown).
        line: usize,
        /// Column of the error.
        column: usize,
    },
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json {
            line: e.line(),
            column: e.column(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
