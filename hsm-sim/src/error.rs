//! The one error type of the safe core: a PKCS#11 return value, or a storage failure that
//! the FFI layer reports as `CKR_DEVICE_ERROR`.

use cryptoki_sys::{CK_RV, CKR_DEVICE_ERROR, CKR_GENERAL_ERROR};

/// Why a call into the module failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PKCS#11 return value (`CKR_*`) other than `CKR_OK`.
    #[error("PKCS#11 error {0:#x}")]
    Ck(CK_RV),
    /// Reading or writing the token directory failed.
    #[error("token storage: {0}")]
    Storage(String),
    /// OpenSSL failed where the inputs had already been checked.
    #[error("crypto backend failure")]
    Crypto,
}

impl Error {
    /// The PKCS#11 return value for this error.
    pub fn rv(&self) -> CK_RV {
        match self {
            Error::Ck(rv) => *rv,
            Error::Storage(_) => CKR_DEVICE_ERROR,
            Error::Crypto => CKR_GENERAL_ERROR,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Storage(e.kind().to_string())
    }
}

impl From<openssl::error::ErrorStack> for Error {
    fn from(_: openssl::error::ErrorStack) -> Self {
        Error::Crypto
    }
}

/// Result of the safe core.
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand: fail with a `CKR_*` value.
pub fn ck<T>(rv: CK_RV) -> Result<T> {
    Err(Error::Ck(rv))
}
