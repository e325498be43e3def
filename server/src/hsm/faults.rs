//! Fault hooks for tests, switched by environment variables (never set in production):
//! [`TEST_FAIL_CA_SIGN_ENV`] makes [`Hsm::ca_sign`] fail, [`TEST_FAIL_SIGN_RAW_ENV`] makes
//! [`Hsm::sign_raw`] fail while a file exists. Neither touches the HSM.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[cfg(doc)]
use super::{Hsm, HsmError};

/// Test hook: when the environment variable `TANDEM_TEST_FAIL_CA_SIGN` is set (to any
/// value) in the process, [`Hsm::ca_sign`] fails with [`HsmError::InjectedFault`] without
/// touching the HSM. Read once per process. For acceptance tests of "the HSM cannot sign";
/// never set it in production.
pub const TEST_FAIL_CA_SIGN_ENV: &str = "TANDEM_TEST_FAIL_CA_SIGN";

pub(super) fn ca_sign_fault_injected() -> bool {
    static FAIL: OnceLock<bool> = OnceLock::new();
    *FAIL.get_or_init(|| std::env::var_os(TEST_FAIL_CA_SIGN_ENV).is_some())
}

/// Test hook: when the environment variable `TANDEM_TEST_FAIL_SIGN_RAW` names a file and
/// that file exists, [`Hsm::sign_raw`] (the server's partial signature) fails with
/// [`HsmError::InjectedSignRawFault`] without touching the HSM; tests switch the fault on and
/// off by creating and removing the file. Never set it in production.
pub const TEST_FAIL_SIGN_RAW_ENV: &str = "TANDEM_TEST_FAIL_SIGN_RAW";

pub(super) fn sign_raw_fault_injected() -> bool {
    static FLAG: OnceLock<Option<PathBuf>> = OnceLock::new();
    FLAG.get_or_init(|| std::env::var_os(TEST_FAIL_SIGN_RAW_ENV).map(PathBuf::from))
        .as_deref()
        .is_some_and(Path::exists)
}
