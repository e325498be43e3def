//! What the core tests (`core_register.rs`, `core_lockout.rs`) share: a fresh PKCS#11 token
//! per test in a child process, and the server's parts as `run` sets them up on it.
//!
//! SoftHSM and hsm-sim read their token directory from the environment when the module
//! loads, so each test runs its body in a child process of the test binary with a freshly
//! provisioned token (as `hsm_softhsm.rs` does); the child leaves a marker so that a body
//! that silently did not run fails the test.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tandem_client_core::protocol::TransportKey;
use tandem_server::ca::Ca;
use tandem_server::config::Config;
use tandem_server::core::FixedClock;
use tandem_server::core::register::{Registrar, RegistrationRules};
use tandem_server::hsm::{CaKeySpec, Hsm, HsmConfig, TokenPin, TransportKeySpec};
use tandem_server::store::SqliteStore;

/// The token every core test provisions.
pub const TOKEN_LABEL: &str = "tandem-core-test";
const CHILD_DIR_ENV: &str = "TANDEM_CORE_TEST_CHILD_DIR";
/// 2026-01-01T00:00:00Z in milliseconds.
pub const T0_MS: i64 = 1_767_225_600_000;
/// The device's AUTH PIN.
pub const PIN1: &str = "1234";
/// The device's SIGN PIN.
pub const PIN2: &str = "12345";

/// `TANDEM_TEST_HSM=hsm-sim` selects hsm-sim instead of SoftHSM.
pub fn use_hsm_sim() -> bool {
    std::env::var("TANDEM_TEST_HSM").as_deref() == Ok("hsm-sim")
}

/// The PKCS#11 module under test.
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TANDEM_TEST_PKCS11_MODULE") {
        return PathBuf::from(path);
    }
    if use_hsm_sim() {
        // target/debug/deps/<this test> → target/debug/libtandem_hsm_sim.so
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .and_then(Path::parent)
            .unwrap()
            .join("libtandem_hsm_sim.so")
    } else {
        PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
    }
}

/// Runs `body` in a child process with a fresh token of its own. `name` is the calling
/// test's name.
pub fn with_fresh_token(name: &str, body: impl FnOnce(&Path)) {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        let dir = PathBuf::from(dir);
        if use_hsm_sim() {
            tandem_server::hsm::provision_token(
                &module_path(),
                TOKEN_LABEL,
                &TokenPin::from_file(dir.join("so-pin")).unwrap(),
                &TokenPin::from_file(dir.join("user-pin")).unwrap(),
            )
            .unwrap();
        }
        body(&dir);
        std::fs::write(dir.join(format!("ran-{name}")), b"ok").unwrap();
        return;
    }
    let module = module_path();
    assert!(
        module.exists(),
        "PKCS#11 module {} not found (SoftHSM 2, or `cargo build -p tandem-hsm-sim`)",
        module.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let module_env = if use_hsm_sim() {
        for (file, pin) in [("so-pin", "so-pin-1234"), ("user-pin", "user-pin-1234")] {
            let path = dir.path().join(file);
            std::fs::write(&path, pin).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        ("TANDEM_HSM_SIM_DIR", dir.path().join("tokens"))
    } else {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/softhsm-provision.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(dir.path())
            .arg(TOKEN_LABEL)
            .arg(dir.path().join("user-pin"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm-provision.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            "SOFTHSM2_CONF",
            dir.path().canonicalize().unwrap().join("softhsm2.conf"),
        )
    };
    let status = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_DIR_ENV, dir.path())
        .env(module_env.0, &module_env.1)
        .env("TANDEM_TEST_PKCS11_MODULE", &module)
        .status()
        .unwrap();
    assert!(status.success(), "test body failed in the child process");
    assert!(
        dir.path().join(format!("ran-{name}")).exists(),
        "the child process did not run {name}"
    );
}

/// The server's parts, as `run` sets them up, on the child's token: an in-memory store,
/// the HSM with its objects, the CA, and a configuration with 2048-bit keys and no key pool.
pub struct Server {
    pub store: SqliteStore,
    pub hsm: Hsm,
    pub ca: Ca,
    pub config: Config,
    pub rules: RegistrationRules,
}

impl Server {
    pub fn new(dir: &Path) -> Self {
        let hsm = Hsm::open(&HsmConfig {
            module_path: module_path(),
            token_label: TOKEN_LABEL.into(),
            user_pin: TokenPin::from_file(dir.join("user-pin")).unwrap(),
        })
        .unwrap();
        hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        let mut config = Config::defaults(module_path(), TOKEN_LABEL.into());
        hsm.use_share_exponentiation(config.hsm.share_exponentiation)
            .unwrap();
        config.pki.key_spec = CaKeySpec::EcP384;
        config.keys.client_key_bits = vec![2048];
        config.keys.server_key_bits = 2048;
        config.keys.server_key_pool = 0;
        let data = dir.join("data");
        tandem_server::ca::init(&config, &data, &hsm).unwrap();
        let ca = Ca::load(&config, &data, &hsm).unwrap();
        Self {
            store: SqliteStore::open_in_memory().unwrap(),
            hsm,
            ca,
            rules: RegistrationRules::from_config(&config),
            config,
        }
    }

    /// Registration's context at `clock`.
    pub fn registrar<'a>(&'a self, clock: &'a FixedClock) -> Registrar<'a> {
        Registrar {
            store: &self.store,
            hsm: &self.hsm,
            ca: &self.ca,
            rules: &self.rules,
            clock,
        }
    }

    /// The key-transport key as the device gets it.
    pub fn transport(&self) -> TransportKey {
        TransportKey::from_spki_der(&self.hsm.transport_public_key_der().unwrap()).unwrap()
    }
}
