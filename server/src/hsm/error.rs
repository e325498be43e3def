//! [`HsmError`], the one error type of the HSM layer. Errors from PKCS#11 keep the function
//! that failed and its return value; decryption failures are one opaque variant.

use cryptoki::context::Function;
use cryptoki::error::{Error as CryptokiError, RvError};

use super::CaKeySpec;
#[cfg(doc)]
use super::Hsm;

/// One error type for the HSM layer.
///
/// Decryption and authentication failures (wrong AAD, tampered ciphertext, a wrapped content
/// key that does not decrypt) are one opaque variant, [`HsmError::Decryption`], so that
/// callers cannot turn them into an oracle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// A PKCS#11 function returned an error.
    #[error("PKCS#11 C_{function:?} failed: CKR {rv:?}")]
    Pkcs11 { function: Function, rv: RvError },
    /// Loading the module or converting a value failed outside a PKCS#11 call.
    #[error("PKCS#11 module error: {0}")]
    Module(#[source] CryptokiError),
    /// No initialised token carries the configured label.
    #[error("no PKCS#11 token labelled {label:?}")]
    TokenNotFound { label: String },
    /// A required object is not on the token.
    #[error("HSM object {label:?} ({kind}) is missing; run ensure_objects first")]
    ObjectMissing {
        label: &'static str,
        kind: &'static str,
    },
    /// More than one token or object carries a label that must be unique.
    #[error("more than one HSM {kind} labelled {label:?}")]
    Ambiguous { label: String, kind: &'static str },
    /// A wrapped server key does not belong to the expected modulus.
    #[error("the wrapped server key does not match the expected modulus")]
    WrongKey,
    /// A blob has an unknown version or algorithm or a wrong size.
    #[error("bad blob: {0}")]
    BadBlob(&'static str),
    /// Decryption or authentication failed (deliberately without detail).
    #[error("decryption failed")]
    Decryption,
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The token PIN could not be obtained. Names the source, never the value.
    #[error("token PIN unavailable from {from}: {reason}")]
    Pin { from: String, reason: String },
    /// A value read from the token is not what PKCS#11 promises.
    #[error("unexpected value from the token: {0}")]
    Token(&'static str),
    /// No CA key pair with this label is on the token.
    #[error("CA key {label:?} is not on the token; run ensure_ca_key first")]
    CaKeyMissing { label: String },
    /// A CA key with this label exists but is not of the requested kind.
    #[error("CA key {label:?} on the token is {found}, not {expected}")]
    CaKeySpecMismatch {
        label: String,
        found: String,
        expected: CaKeySpec,
    },
    /// A key with this label exists but is no CA key this module can use.
    #[error("HSM key {label:?} is not a supported CA key ({found})")]
    CaKeyUnsupported { label: String, found: String },
    /// Test hook: `TANDEM_TEST_FAIL_CA_SIGN` is set, so [`Hsm::ca_sign`] fails on purpose.
    #[error("injected test fault: CA signing disabled by TANDEM_TEST_FAIL_CA_SIGN")]
    InjectedFault,
    /// Test hook: the file named by `TANDEM_TEST_FAIL_SIGN_RAW` exists, so
    /// [`Hsm::sign_raw`] fails on purpose.
    #[error("injected test fault: raw RSA operation disabled by TANDEM_TEST_FAIL_SIGN_RAW")]
    InjectedSignRawFault,
    /// The token does not fit `hsm.share_exponentiation` (see
    /// [`Hsm::use_share_exponentiation`]); the message says what to change.
    #[error("{0}")]
    ShareMode(String),
    /// A bounded call ([`Hsm::bounded`]) did not finish in time; it was left running.
    #[error("the HSM did not answer within {after_ms} ms")]
    Timeout { after_ms: u64 },
    /// Too many earlier calls are still running past their deadline: the HSM is stuck, so
    /// no new call is started.
    #[error("the HSM is not answering ({overdue} calls are overdue)")]
    Unresponsive { overdue: usize },
    /// A bounded call's worker thread panicked or could not be started.
    #[error("the HSM call could not run: {0}")]
    Worker(&'static str),
}

impl HsmError {
    /// The PKCS#11 return value, if this error came from a PKCS#11 call.
    pub fn rv(&self) -> Option<RvError> {
        match self {
            HsmError::Pkcs11 { rv, .. } => Some(*rv),
            _ => None,
        }
    }

    /// Refused input (a blob that does not decrypt, the wrong key, a malformed argument),
    /// as opposed to a failure of the module.
    pub fn is_refused_input(&self) -> bool {
        matches!(
            self,
            HsmError::Decryption
                | HsmError::WrongKey
                | HsmError::BadBlob(_)
                | HsmError::InvalidArgument(_)
        )
    }

    /// The PKCS#11 function that failed, if any.
    pub fn function(&self) -> Option<Function> {
        match self {
            HsmError::Pkcs11 { function, .. } => Some(*function),
            _ => None,
        }
    }
}

impl From<CryptokiError> for HsmError {
    fn from(err: CryptokiError) -> Self {
        match err {
            CryptokiError::Pkcs11(rv, function) => HsmError::Pkcs11 { function, rv },
            other => HsmError::Module(other),
        }
    }
}
