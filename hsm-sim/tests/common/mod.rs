//! Shared helpers: load the built `libtandem_hsm_sim.so` through `cryptoki`, exactly as the
//! server does, with a token directory private to this test binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

pub const SO_PIN: &str = "so-pin-1234";
pub const USER_PIN: &str = "user-pin-5678";

/// The cdylib next to the test binary (`target/debug/deps/..` or `target/debug/`).
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    for dir in [
        deps.clone(),
        deps.parent().expect("target dir").to_path_buf(),
    ] {
        let candidate = dir.join("libtandem_hsm_sim.so");
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("libtandem_hsm_sim.so not found next to {}", exe.display());
}

static DIR: Once = Once::new();
static DIR_PATH: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Points `TANDEM_HSM_SIM_DIR` at a fresh temporary directory, once per test binary,
/// before the module is first loaded.
pub fn token_dir() -> PathBuf {
    DIR.call_once(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        #[allow(unsafe_code)]
        // SAFETY: runs once, under `Once`, before any module is loaded in this process;
        // the other test threads wait on the same `Once` (through `token_dir`) before they
        // load the module or read the environment.
        unsafe {
            std::env::set_var("TANDEM_HSM_SIM_DIR", &dir)
        };
        *DIR_PATH.lock().expect("dir lock") = Some(dir);
    });
    DIR_PATH.lock().expect("dir lock").clone().expect("dir set")
}

/// The module is process-global: tests of one binary take turns.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Loads and initialises the module (OS locking, as the server does).
pub fn load() -> Pkcs11 {
    token_dir();
    let ctx = Pkcs11::new(module_path()).expect("load module");
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    ctx
}

pub fn slot(ctx: &Pkcs11) -> Slot {
    let slots = ctx.get_all_slots().expect("slots");
    assert_eq!(slots.len(), 1);
    slots[0]
}

pub fn pin(s: &str) -> AuthPin {
    AuthPin::new(s.into())
}

/// A freshly initialised token with the user PIN set.
pub fn fresh_token(ctx: &Pkcs11) -> Slot {
    let slot = slot(ctx);
    ctx.init_token(slot, &pin(SO_PIN), "tandem-test")
        .expect("C_InitToken");
    let s = ctx.open_rw_session(slot).expect("open");
    s.login(cryptoki::session::UserType::So, Some(&pin(SO_PIN)))
        .expect("SO login");
    s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    s.logout().expect("logout");
    slot
}
