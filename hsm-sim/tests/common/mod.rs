//! Shared helpers: load the built `libtandem_hsm_sim.so` through `cryptoki`, exactly as the
//! server does, each test in its own child process with its own token directory.
#![allow(dead_code)]

use std::path::PathBuf;

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

/// Set in the child process that runs one test's body.
const CHILD_ENV: &str = "TANDEM_HSM_SIM_TEST_CHILD";

/// Runs `body` in a child process of this test binary (`<exe> <name> --exact`) with its
/// own fresh `TANDEM_HSM_SIM_DIR`.
///
/// The module is process-global and reads the directory at `C_Initialize`; setting an
/// environment variable in-process would need `unsafe` (`std::env::set_var`). A child per
/// test gives each test its own module state and directory, under `cargo test` (threads)
/// and nextest alike. The child leaves a marker file, so a body that silently did not run
/// fails the test.
pub fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        body();
        std::fs::write(token_dir().join(format!("ran-{name}")), b"ok").expect("write marker");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    run_child(name, dir.path(), &[]);
    assert!(
        dir.path().join(format!("ran-{name}")).exists(),
        "test {name} did not run in the child"
    );
}

/// Runs test `name` of this binary in a child process on token directory `dir`, with
/// extra environment variables; panics with the child's output if it fails.
pub fn run_child(name: &str, dir: &std::path::Path, env: &[(&str, &str)]) {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([name, "--exact", "--test-threads=1"])
        .env("TANDEM_HSM_SIM_DIR", dir)
        .env(CHILD_ENV, "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn the test child");
    assert!(
        out.status.success(),
        "test {name} failed in its child process:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The token directory of this (child) process.
pub fn token_dir() -> PathBuf {
    std::env::var_os("TANDEM_HSM_SIM_DIR")
        .map(PathBuf::from)
        .expect("TANDEM_HSM_SIM_DIR is set for test children (use `isolated`)")
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

/// The PKCS#11 return value of a cryptoki error (panics on any other error).
pub fn rv(e: cryptoki::error::Error) -> cryptoki::error::RvError {
    match e {
        cryptoki::error::Error::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other}"),
    }
}

/// A R/W session with the user logged in, on a freshly initialised token.
pub fn user_session(ctx: &Pkcs11) -> cryptoki::session::Session {
    let slot = fresh_token(ctx);
    let s = ctx.open_rw_session(slot).expect("open");
    s.login(cryptoki::session::UserType::User, Some(&pin(USER_PIN)))
        .expect("user login");
    s
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

/// xorshift64*: a tiny deterministic generator, so failures reproduce from the seed.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    /// NULL one time in `one_in`, else `p`.
    pub fn or_null<T>(&mut self, one_in: u64, p: *mut T) -> *mut T {
        if self.chance(one_in) {
            std::ptr::null_mut()
        } else {
            p
        }
    }
    /// One of `items`, or (as often as each of them) a random value.
    pub fn or_random(&mut self, items: &[u64]) -> u64 {
        let i = self.below(items.len() as u64 + 1) as usize;
        items.get(i).copied().unwrap_or_else(|| self.next())
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max as u64 + 1) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
}
