//! Where the HSM is and how to log in: [`HsmConfig`] and the token's user PIN,
//! [`TokenPin`] (zeroized, redacted in `Debug`, read from a file or the environment).

use std::fmt;
use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::HsmError;

/// Environment variable naming hsm-sim's token directory (set in `[hsm] env`).
pub const HSM_SIM_DIR_ENV: &str = "TANDEM_HSM_SIM_DIR";

/// The user PIN of the token. Read from a file or an environment variable, never from a
/// command-line argument.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TokenPin(String);

impl TokenPin {
    /// Wraps a PIN the caller already holds.
    pub fn new(pin: String) -> Self {
        TokenPin(pin)
    }

    /// Reads the PIN from a file. One trailing newline (`\n` or `\r\n`) is removed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, HsmError> {
        let path = path.as_ref();
        let from = || format!("file {}", path.display());
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| HsmError::Pin {
            from: from(),
            reason: e.kind().to_string(),
        })?);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    "the token PIN file is readable by group or others; use mode 0600"
                );
            }
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| HsmError::Pin {
            from: from(),
            reason: "not UTF-8".into(),
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        Self::checked(text, from)
    }

    /// Reads the PIN from an environment variable.
    pub fn from_env(var: &str) -> Result<Self, HsmError> {
        let from = || format!("environment variable {var}");
        let value = Zeroizing::new(std::env::var(var).map_err(|e| HsmError::Pin {
            from: from(),
            reason: match e {
                std::env::VarError::NotPresent => "not set".into(),
                std::env::VarError::NotUnicode(_) => "not UTF-8".into(),
            },
        })?);
        Self::checked(&value, from)
    }

    fn checked(text: &str, from: impl Fn() -> String) -> Result<Self, HsmError> {
        if text.is_empty() {
            return Err(HsmError::Pin {
                from: from(),
                reason: "empty".into(),
            });
        }
        // Exact capacity, so that the later conversion into a boxed str does not reallocate
        // and leave an unzeroized copy behind.
        let mut pin = String::with_capacity(text.len());
        pin.push_str(text);
        Ok(TokenPin(pin))
    }

    /// The only way to read the PIN.
    pub(crate) fn expose_secret(&self) -> &str {
        &self.0
    }

    pub(super) fn to_auth_pin(&self) -> AuthPin {
        let mut copy = String::with_capacity(self.expose_secret().len());
        copy.push_str(self.expose_secret());
        // `AuthPin` (secrecy) zeroizes its own copy on drop.
        AuthPin::from(copy)
    }
}

impl fmt::Debug for TokenPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenPin(<redacted>)")
    }
}

/// Where the HSM is and how to log in.
#[derive(Debug)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module (`.so`).
    pub module_path: PathBuf,
    /// Label of the token to use.
    pub token_label: String,
    /// User PIN of that token.
    pub user_pin: TokenPin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_debug_is_redacted() {
        let pin = TokenPin::new("123456".into());
        assert_eq!(format!("{pin:?}"), "TokenPin(<redacted>)");
    }
}
