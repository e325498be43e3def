//! Fault injection, off by default: `TANDEM_HSM_SIM_FAULTS` names a TOML or JSON file
//! (JSON when the name ends in `.json`) describing failures, latency and token removal.
//!
//! ```toml
//! token_removed = false      # true: the slot is empty, sessions are lost
//! latency_ms = 0             # added to every call
//! keygen_latency_ms = 0      # added to C_GenerateKey and C_GenerateKeyPair
//!
//! [[fail]]                   # the first matching rule decides
//! function = "C_Sign"        # a PKCS#11 function name, or "*" for all
//! calls = 2                  # the 2nd call; "2..4" (inclusive), "3..", "*" (default: every)
//! rv = "CKR_DEVICE_ERROR"    # a CKR_ name or a number (0x30, "0x30", 48)
//!
//! [[latency]]
//! function = "C_Decrypt"     # or "*"
//! ms = 200
//! ```
//!
//! The file is checked (one `stat`) at the start of every call (of every function but
//! `C_GetFunctionList`) and re-read when its modification time, size or inode changed; calls of each
//! function are counted from 1 since the file was last (re)read. A file that cannot be
//! parsed is reported once on stderr and ignored (no faults) until it changes; a missing
//! file means no faults. Writers should replace the file atomically (write, then rename).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use cryptoki_sys::*;
use serde::Deserialize;

/// The environment variable naming the fault file.
pub const FAULTS_ENV: &str = "TANDEM_HSM_SIM_FAULTS";

/// What the fault configuration asks of one call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Action {
    /// Sleep this long before the call runs.
    pub latency: Duration,
    /// Fail the call with this value instead of running it.
    pub fail: Option<CK_RV>,
    /// The token is (simulated) removed.
    pub removed: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    token_removed: bool,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    keygen_latency_ms: u64,
    #[serde(default)]
    fail: Vec<FailRule>,
    #[serde(default)]
    latency: Vec<LatencyRule>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailRule {
    function: String,
    #[serde(default)]
    calls: Option<Number>,
    rv: Number,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyRule {
    function: String,
    ms: u64,
}

/// Which calls of a function a rule hits (inclusive bounds, counted from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Calls {
    from: u64,
    to: u64,
}

#[derive(Debug)]
struct Fail {
    function: String,
    calls: Calls,
    rv: CK_RV,
}

/// A checked configuration.
#[derive(Debug, Default)]
struct Faults {
    token_removed: bool,
    latency: Duration,
    keygen_latency: Duration,
    fail: Vec<Fail>,
    per_function_latency: Vec<(String, Duration)>,
}

/// Identity of a version of the fault file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    ino: u64,
}

#[derive(Debug, Default)]
struct State {
    path: Option<PathBuf>,
    stamp: Option<Stamp>,
    faults: Faults,
    counters: BTreeMap<&'static str, u64>,
}

static STATE: Mutex<State> = Mutex::new(State {
    path: None,
    stamp: None,
    faults: Faults {
        token_removed: false,
        latency: Duration::ZERO,
        keygen_latency: Duration::ZERO,
        fail: Vec::new(),
        per_function_latency: Vec::new(),
    },
    counters: BTreeMap::new(),
});

/// Whether the last call saw the token removed (read by `C_GetSlotInfo` and
/// `C_GetSlotList`).
static REMOVED: AtomicBool = AtomicBool::new(false);

fn lock() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|poisoned| {
        STATE.clear_poison();
        poisoned.into_inner()
    })
}

/// Whether the token is currently (simulated) removed.
pub fn token_removed() -> bool {
    REMOVED.load(Ordering::Relaxed)
}

/// Called at the start of entry point `function`: re-reads the fault file if it changed,
/// counts the call and says what to inject.
pub fn before(function: &'static str) -> Action {
    let Some(path) = std::env::var_os(FAULTS_ENV).map(PathBuf::from) else {
        REMOVED.store(false, Ordering::Relaxed);
        return Action::default();
    };
    let mut st = lock();
    refresh(&mut st, path);
    let n = {
        let c = st.counters.entry(function).or_insert(0);
        *c = c.saturating_add(1);
        *c
    };
    let f = &st.faults;
    REMOVED.store(f.token_removed, Ordering::Relaxed);
    let mut latency = f.latency;
    for (name, d) in &f.per_function_latency {
        if name == "*" || name == function {
            latency += *d;
        }
    }
    if matches!(function, "C_GenerateKey" | "C_GenerateKeyPair") {
        latency += f.keygen_latency;
    }
    let fail = f
        .fail
        .iter()
        .find(|r| {
            (r.function == "*" || r.function == function)
                && (r.calls.from..=r.calls.to).contains(&n)
        })
        .map(|r| r.rv);
    Action {
        latency,
        fail,
        removed: f.token_removed,
    }
}

/// Re-reads the file when its stamp changed (one `stat` per call).
fn refresh(st: &mut State, path: PathBuf) {
    let stamp = std::fs::metadata(&path).ok().map(|m| Stamp {
        mtime: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    });
    if st.path.as_ref() == Some(&path) && st.stamp == stamp {
        return;
    }
    st.counters.clear();
    st.faults = match stamp {
        None => Faults::default(),
        Some(_) => match load(&path) {
            Ok(f) => f,
            Err(e) => {
                // Once per file version (the stamp is remembered below), on one line.
                let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
                eprintln!(
                    "hsm-sim: ignoring fault file {} ({FAULTS_ENV}): {e}",
                    path.display()
                );
                Faults::default()
            }
        },
    };
    st.path = Some(path);
    st.stamp = stamp;
}

fn load(path: &std::path::Path) -> Result<Faults, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.kind().to_string())?;
    let config: Config = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())?
    };
    check(config)
}

fn check(c: Config) -> Result<Faults, String> {
    let function = |name: &str| -> Result<String, String> {
        if name == "*" || FUNCTIONS.contains(&name) {
            Ok(name.to_owned())
        } else {
            Err(format!("unknown function {name:?}"))
        }
    };
    let mut fail = Vec::new();
    for r in c.fail {
        fail.push(Fail {
            function: function(&r.function)?,
            calls: parse_calls(r.calls.as_ref())?,
            rv: parse_rv(&r.rv)?,
        });
    }
    let mut per_function_latency = Vec::new();
    for r in c.latency {
        per_function_latency.push((function(&r.function)?, Duration::from_millis(r.ms)));
    }
    Ok(Faults {
        token_removed: c.token_removed,
        latency: Duration::from_millis(c.latency_ms),
        keygen_latency: Duration::from_millis(c.keygen_latency_ms),
        fail,
        per_function_latency,
    })
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not a number: {s:?}"))
}

fn parse_calls(calls: Option<&Number>) -> Result<Calls, String> {
    let all = Calls {
        from: 1,
        to: u64::MAX,
    };
    let c = match calls {
        None => all,
        Some(Number::Int(n)) => Calls { from: *n, to: *n },
        Some(Number::Text(t)) if t.trim() == "*" => all,
        Some(Number::Text(t)) => match t.split_once("..") {
            Some((a, "")) => Calls {
                from: parse_u64(a)?,
                to: u64::MAX,
            },
            Some((a, b)) => Calls {
                from: parse_u64(a)?,
                to: parse_u64(b.trim_start_matches('='))?,
            },
            None => {
                let n = parse_u64(t)?;
                Calls { from: n, to: n }
            }
        },
    };
    if c.from == 0 || c.from > c.to {
        return Err(format!("bad call range {c:?} (calls count from 1)"));
    }
    Ok(c)
}

fn parse_rv(rv: &Number) -> Result<CK_RV, String> {
    let number = |n: u64| CK_RV::try_from(n).map_err(|_| format!("return value {n} out of range"));
    let v = match rv {
        Number::Int(n) => number(*n)?,
        Number::Text(t) => match RV_NAMES.iter().find(|(name, _)| *name == t.trim()) {
            Some((_, v)) => *v,
            None => number(parse_u64(t).map_err(|_| format!("unknown return value {t:?}"))?)?,
        },
    };
    if v == CKR_OK {
        return Err("rv = CKR_OK is not a fault".into());
    }
    Ok(v)
}

/// What a call returns while the token is removed: `None` lets it run (library and slot
/// functions, which see the empty slot), otherwise the error.
pub fn removed_rv(function: &str) -> Option<CK_RV> {
    match function {
        "C_Initialize" | "C_Finalize" | "C_GetInfo" | "C_GetSlotList" | "C_GetSlotInfo"
        | "C_WaitForSlotEvent" => None,
        "C_GetTokenInfo" | "C_GetMechanismList" | "C_GetMechanismInfo" | "C_InitToken"
        | "C_OpenSession" | "C_CloseAllSessions" => Some(CKR_TOKEN_NOT_PRESENT),
        _ => Some(CKR_DEVICE_REMOVED),
    }
}

/// The PKCS#11 v2.40 functions, except `C_GetFunctionList` (never faulted).
pub const FUNCTIONS: &[&str] = &[
    "C_Initialize",
    "C_Finalize",
    "C_GetInfo",
    "C_GetSlotList",
    "C_GetSlotInfo",
    "C_GetTokenInfo",
    "C_GetMechanismList",
    "C_GetMechanismInfo",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_OpenSession",
    "C_CloseSession",
    "C_CloseAllSessions",
    "C_GetSessionInfo",
    "C_GetOperationState",
    "C_SetOperationState",
    "C_Login",
    "C_Logout",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_GetObjectSize",
    "C_GetAttributeValue",
    "C_SetAttributeValue",
    "C_FindObjectsInit",
    "C_FindObjects",
    "C_FindObjectsFinal",
    "C_EncryptInit",
    "C_Encrypt",
    "C_EncryptUpdate",
    "C_EncryptFinal",
    "C_DecryptInit",
    "C_Decrypt",
    "C_DecryptUpdate",
    "C_DecryptFinal",
    "C_DigestInit",
    "C_Digest",
    "C_DigestUpdate",
    "C_DigestKey",
    "C_DigestFinal",
    "C_SignInit",
    "C_Sign",
    "C_SignUpdate",
    "C_SignFinal",
    "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyInit",
    "C_Verify",
    "C_VerifyUpdate",
    "C_VerifyFinal",
    "C_VerifyRecoverInit",
    "C_VerifyRecover",
    "C_DigestEncryptUpdate",
    "C_DecryptDigestUpdate",
    "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_SeedRandom",
    "C_GenerateRandom",
    "C_GetFunctionStatus",
    "C_CancelFunction",
    "C_WaitForSlotEvent",
];

macro_rules! rv_names {
    ($($name:ident),* $(,)?) => {
        /// `CKR_*` names accepted in the fault file.
        const RV_NAMES: &[(&str, CK_RV)] = &[$((stringify!($name), $name)),*];
    };
}

rv_names!(
    CKR_CANCEL,
    CKR_HOST_MEMORY,
    CKR_SLOT_ID_INVALID,
    CKR_GENERAL_ERROR,
    CKR_FUNCTION_FAILED,
    CKR_ARGUMENTS_BAD,
    CKR_NO_EVENT,
    CKR_NEED_TO_CREATE_THREADS,
    CKR_CANT_LOCK,
    CKR_ATTRIBUTE_READ_ONLY,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_ACTION_PROHIBITED,
    CKR_DATA_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_MEMORY,
    CKR_DEVICE_REMOVED,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_FUNCTION_CANCELED,
    CKR_FUNCTION_NOT_PARALLEL,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_KEY_NOT_WRAPPABLE,
    CKR_KEY_UNEXTRACTABLE,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_PIN_INCORRECT,
    CKR_PIN_INVALID,
    CKR_PIN_LEN_RANGE,
    CKR_PIN_EXPIRED,
    CKR_PIN_LOCKED,
    CKR_SESSION_CLOSED,
    CKR_SESSION_COUNT,
    CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_READ_ONLY,
    CKR_SESSION_EXISTS,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_TOKEN_NOT_PRESENT,
    CKR_TOKEN_NOT_RECOGNIZED,
    CKR_TOKEN_WRITE_PROTECTED,
    CKR_UNWRAPPING_KEY_HANDLE_INVALID,
    CKR_USER_ALREADY_LOGGED_IN,
    CKR_USER_NOT_LOGGED_IN,
    CKR_USER_PIN_NOT_INITIALIZED,
    CKR_USER_TYPE_INVALID,
    CKR_WRAPPED_KEY_INVALID,
    CKR_WRAPPED_KEY_LEN_RANGE,
    CKR_WRAPPING_KEY_HANDLE_INVALID,
    CKR_RANDOM_NO_RNG,
    CKR_BUFFER_TOO_SMALL,
    CKR_CRYPTOKI_NOT_INITIALIZED,
    CKR_CRYPTOKI_ALREADY_INITIALIZED,
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse_toml(s: &str) -> Result<Faults, String> {
        check(toml::from_str(s).map_err(|e| e.to_string())?)
    }

    #[test]
    fn parses_rules_names_numbers_and_ranges() {
        let f = parse_toml(
            r#"
            token_removed = true
            latency_ms = 5
            keygen_latency_ms = 7
            [[fail]]
            function = "C_Sign"
            calls = 2
            rv = "CKR_DEVICE_ERROR"
            [[fail]]
            function = "*"
            calls = "3..5"
            rv = 0x32
            [[fail]]
            function = "C_Login"
            rv = "0xA0"
            [[latency]]
            function = "C_Decrypt"
            ms = 200
            "#,
        )
        .unwrap();
        assert!(f.token_removed);
        assert_eq!(f.latency, Duration::from_millis(5));
        assert_eq!(f.keygen_latency, Duration::from_millis(7));
        assert_eq!(f.fail[0].calls, Calls { from: 2, to: 2 });
        assert_eq!(f.fail[0].rv, CKR_DEVICE_ERROR);
        assert_eq!(f.fail[1].calls, Calls { from: 3, to: 5 });
        assert_eq!(f.fail[1].rv, CKR_DEVICE_REMOVED);
        assert_eq!(
            f.fail[2].calls,
            Calls {
                from: 1,
                to: u64::MAX
            }
        );
        assert_eq!(f.fail[2].rv, CKR_PIN_INCORRECT);
        assert_eq!(
            f.per_function_latency,
            vec![("C_Decrypt".to_owned(), Duration::from_millis(200))]
        );
        let j: Config =
            serde_json::from_str(r#"{"fail":[{"function":"C_Sign","calls":"4..","rv":48}]}"#)
                .unwrap();
        let f = check(j).unwrap();
        assert_eq!(
            f.fail[0].calls,
            Calls {
                from: 4,
                to: u64::MAX
            }
        );
        assert_eq!(f.fail[0].rv, CKR_DEVICE_ERROR);
    }

    #[test]
    fn rejects_malformed_rules() {
        for bad in [
            "token_removed = 3",
            "unknown = 1",
            "[[fail]]\nfunction = \"C_Sgn\"\nrv = 48",
            "[[fail]]\nfunction = \"C_Sign\"\nrv = \"CKR_NOPE\"",
            "[[fail]]\nfunction = \"C_Sign\"\nrv = 0",
            "[[fail]]\nfunction = \"C_Sign\"\ncalls = 0\nrv = 48",
            "[[fail]]\nfunction = \"C_Sign\"\ncalls = \"5..2\"\nrv = 48",
            "[[fail]]\nfunction = \"C_Sign\"",
            "[[latency]]\nfunction = \"C_Sign\"",
            "not toml at all [",
        ] {
            assert!(parse_toml(bad).is_err(), "{bad}");
        }
    }
}
