//! The safe core of the module: one process-global [`Module`] behind a mutex, created by
//! `C_Initialize` and dropped by `C_Finalize`.
//!
//! ```text
//!   C entry points (ffi.rs, raw pointers checked)
//!          │ safe values (slices, templates, Option<usize> output capacity)
//!          ▼
//!   MODULE: Mutex<Option<Module>> ── sessions, login state, objects
//!          │                    └── crypto.rs (OpenSSL)
//!          ▼
//!   store.rs: token directory ($TANDEM_HSM_SIM_DIR), only for CKA_TOKEN objects
//! ```
//!
//! Every call holds the mutex while it reads or changes the module's state, so that state
//! is only ever seen consistent (`CKF_OS_LOCKING_OK`). The expensive cryptography (RSA and
//! EC private operations, share exponentiations, key generation, unwrapping) is handed back
//! as a [`Deferred`] job and runs after the mutex is released, on a copy of its key, so
//! calls from several threads compute in parallel; a call that creates objects takes the
//! mutex a second time to add them (`add_unwrapped`, `add_key_pair`).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::crypto::{self, SignMech};
use crate::error::{Error, Result, ck};
use crate::mechanism::{Mechanism, Params};
use crate::object::{self, AttributeRead, Object, Template, ulong_value};
use crate::session::{Cipher, CipherOp, Find, KeyOp, Session};
use crate::store::{self, Store};
use crate::token::{Login, Pin, Role, TokenKey, TokenMeta, WrappedKey};
use crate::vendor::{CKK_TANDEM_SHARE, CKM_TANDEM_SHARE_EXP};

/// The only slot; it always holds the token.
pub const SLOT_ID: CK_SLOT_ID = 0;

/// Library version reported by `C_GetInfo` and the token.
const VERSION: CK_VERSION = CK_VERSION { major: 0, minor: 1 };

const MANUFACTURER: &str = "Tandem";

static MODULE: Mutex<Option<Module>> = Mutex::new(None);

/// Locks the global module. A poisoned lock (a panic was caught at the FFI boundary while
/// it was held) is recovered: every call validates its inputs before it changes state, so
/// the state is still consistent.
fn lock() -> MutexGuard<'static, Option<Module>> {
    MODULE.lock().unwrap_or_else(|poisoned| {
        MODULE.clear_poison();
        poisoned.into_inner()
    })
}

/// Runs `f` on the initialised module.
pub fn with<T>(f: impl FnOnce(&mut Module) -> Result<T>) -> Result<T> {
    match lock().as_mut() {
        None => ck(CKR_CRYPTOKI_NOT_INITIALIZED),
        Some(m) => f(m),
    }
}

/// `C_Initialize`: loads the token directory.
pub fn initialize() -> Result<()> {
    let mut guard = lock();
    if guard.is_some() {
        return ck(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    *guard = Some(Module::load(Store::from_env())?);
    Ok(())
}

/// `C_Finalize`: drops all sessions and the in-memory objects.
pub fn finalize() -> Result<()> {
    match lock().take() {
        None => ck(CKR_CRYPTOKI_NOT_INITIALIZED),
        Some(_) => Ok(()),
    }
}

/// The token was (simulated) removed ([`crate::fault`]): every session ends, session
/// objects die and the login is dropped, as when a real token leaves its slot. Idempotent.
pub fn token_removed() {
    if let Some(m) = lock().as_mut() {
        m.sessions.clear();
        m.objects.retain(|_, e| e.owner.is_none());
        m.drop_login();
    }
}

/// A fault made entry point `function` fail in session `h`: ends the operation that call
/// would have ended (a failed `C_Sign` ends the signature, and so on).
pub fn end_operation(h: CK_SESSION_HANDLE, function: &str) {
    if let Some(s) = lock().as_mut().and_then(|m| m.sessions.get_mut(&h)) {
        match function {
            "C_Sign" | "C_SignUpdate" | "C_SignFinal" => s.sign = None,
            "C_Verify" | "C_VerifyUpdate" | "C_VerifyFinal" => s.verify = None,
            "C_Encrypt" => s.encrypt = None,
            "C_Decrypt" => s.decrypt = None,
            _ => {}
        }
    }
}

/// A variable-length result under PKCS#11's buffer protocol. `Data` may be a decrypted
/// secret: `Debug` shows only its length.
pub enum Output {
    /// The caller only asked for the length, or its buffer was too small (`.1`).
    Len(usize, bool),
    /// The result.
    Data(Zeroizing<Vec<u8>>),
}

/// The expensive cryptography of a call (RSA and EC private operations, share
/// exponentiations, key generation), handed back to the FFI layer to run **after the
/// module lock is released**, so that calls from several threads compute in parallel. The
/// call has been checked and its operation state updated before; the job holds copies of
/// what it needs (the key object, the input) and touches no module state.
pub enum Deferred<T> {
    /// Nothing left to compute.
    Ready(T),
    /// Run this with the lock released.
    Later(Box<dyn FnOnce() -> Result<T> + Send>),
}

impl<T> Deferred<T> {
    fn later(f: impl FnOnce() -> Result<T> + Send + 'static) -> Self {
        Deferred::Later(Box::new(f))
    }

    /// Runs the job (call it without holding the module lock).
    pub fn run(self) -> Result<T> {
        match self {
            Deferred::Ready(v) => Ok(v),
            Deferred::Later(f) => f(),
        }
    }
}

impl<T> std::fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Deferred::Ready(_) => "Deferred::Ready(..)",
            Deferred::Later(_) => "Deferred::Later(..)",
        })
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Len(n, too_small) => write!(f, "Len({n}, too_small: {too_small})"),
            Output::Data(d) => write!(f, "Data(<{} bytes redacted>)", d.len()),
        }
    }
}

/// Decides between a length answer and computing the result.
fn sized(needed: usize, capacity: Option<usize>) -> Option<Output> {
    match capacity {
        None => Some(Output::Len(needed, false)),
        Some(c) if c < needed => Some(Output::Len(needed, true)),
        Some(_) => None,
    }
}

#[derive(Debug)]
struct Entry {
    obj: Object,
    /// The session that created a session object; `None` for token objects.
    owner: Option<CK_SESSION_HANDLE>,
    /// The file id of a token object.
    store_id: Option<String>,
}

/// All state of the module.
#[derive(Debug)]
pub struct Module {
    store: Store,
    meta: Option<TokenMeta>,
    login: Login,
    /// Present while the SO or the user is logged in.
    token_key: Option<TokenKey>,
    objects: BTreeMap<CK_OBJECT_HANDLE, Entry>,
    sessions: BTreeMap<CK_SESSION_HANDLE, Session>,
    next_object: CK_OBJECT_HANDLE,
    next_session: CK_SESSION_HANDLE,
}

fn padded<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [b' '; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s[..n]);
    out
}

/// The mechanisms of the token and their `CK_MECHANISM_INFO`.
///
/// Every mechanism carries `CKF_HW`: it is performed by the (simulated) device, which is
/// what the flag tells a caller; OpenSC's `pkcs11-tool --test` only exercises such ones.
fn mechanisms() -> Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)> {
    let rsa = |flags| CK_MECHANISM_INFO {
        ulMinKeySize: 1024,
        ulMaxKeySize: 8192,
        flags: flags | CKF_HW,
    };
    let ec = |flags| CK_MECHANISM_INFO {
        ulMinKeySize: 256,
        ulMaxKeySize: 384,
        flags: flags | CKF_HW | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS,
    };
    let aes = |flags| CK_MECHANISM_INFO {
        ulMinKeySize: 16,
        ulMaxKeySize: 32,
        flags: flags | CKF_HW,
    };
    let generic = |flags| CK_MECHANISM_INFO {
        ulMinKeySize: crypto::HMAC_MIN_KEY_LEN as CK_ULONG,
        ulMaxKeySize: 64,
        flags: flags | CKF_HW,
    };
    vec![
        (CKM_RSA_PKCS_KEY_PAIR_GEN, rsa(CKF_GENERATE_KEY_PAIR)),
        (CKM_RSA_X_509, rsa(CKF_SIGN | CKF_VERIFY)),
        (CKM_RSA_PKCS, rsa(CKF_SIGN | CKF_VERIFY)),
        (CKM_SHA256_RSA_PKCS, rsa(CKF_SIGN | CKF_VERIFY)),
        (CKM_SHA384_RSA_PKCS, rsa(CKF_SIGN | CKF_VERIFY)),
        (CKM_SHA512_RSA_PKCS, rsa(CKF_SIGN | CKF_VERIFY)),
        (CKM_EC_KEY_PAIR_GEN, ec(CKF_GENERATE_KEY_PAIR)),
        (CKM_ECDSA, ec(CKF_SIGN | CKF_VERIFY)),
        (CKM_ECDH1_DERIVE, ec(CKF_DERIVE)),
        (
            CKM_RSA_PKCS_OAEP,
            rsa(CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP),
        ),
        (CKM_AES_KEY_GEN, aes(CKF_GENERATE)),
        (CKM_AES_GCM, aes(CKF_ENCRYPT | CKF_DECRYPT | CKF_UNWRAP)),
        (CKM_AES_KEY_WRAP_PAD, aes(CKF_WRAP | CKF_UNWRAP)),
        (CKM_GENERIC_SECRET_KEY_GEN, generic(CKF_GENERATE)),
        (CKM_SHA256_HMAC, generic(CKF_SIGN | CKF_VERIFY)),
        (CKM_TANDEM_SHARE_EXP, rsa(CKF_SIGN)),
    ]
}

/// `CKA_ALLOWED_MECHANISMS`, when the key has it, must list the mechanism.
fn check_allowed(obj: &Object, mech: CK_MECHANISM_TYPE) -> Result<()> {
    match obj.get(CKA_ALLOWED_MECHANISMS) {
        Some(allowed)
            if !allowed
                .chunks(std::mem::size_of::<CK_ULONG>())
                .any(|c| object::ulong_of(c) == Some(mech)) =>
        {
            ck(CKR_MECHANISM_INVALID)
        }
        _ => Ok(()),
    }
}

fn check_slot(slot: CK_SLOT_ID) -> Result<()> {
    if slot == SLOT_ID {
        Ok(())
    } else {
        ck(CKR_SLOT_ID_INVALID)
    }
}

/// Attributes that only the token computes for a generated key.
const KEY_MATERIAL: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_MODULUS,
    CKA_EC_POINT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
    CKA_VALUE,
];

impl Module {
    fn load(store: Store) -> Result<Self> {
        let lock = store.lock()?;
        let meta = store.load_meta(&lock)?;
        let mut m = Self {
            store,
            meta,
            login: Login::Public,
            token_key: None,
            objects: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_object: 1,
            next_session: 1,
        };
        if m.meta.is_some() {
            for (id, obj) in m.store.load_objects(&lock, None)? {
                m.insert(obj, None, Some(id));
            }
        }
        drop(lock);
        Ok(m)
    }

    fn insert(
        &mut self,
        obj: Object,
        owner: Option<CK_SESSION_HANDLE>,
        store_id: Option<String>,
    ) -> CK_OBJECT_HANDLE {
        let h = self.next_object;
        self.next_object += 1;
        self.objects.insert(
            h,
            Entry {
                obj,
                owner,
                store_id,
            },
        );
        h
    }

    // ---- general, slot and token ----

    /// `C_GetInfo`.
    pub fn info(&self) -> CK_INFO {
        CK_INFO {
            cryptokiVersion: CK_VERSION {
                major: 2,
                minor: 40,
            },
            manufacturerID: padded(MANUFACTURER.as_bytes()),
            flags: 0,
            libraryDescription: padded(b"Tandem hsm-sim PKCS#11 module"),
            libraryVersion: VERSION,
        }
    }

    /// `C_GetSlotList`: one slot; it holds the token unless a fault removed it.
    pub fn slot_list(&self, token_present: bool) -> Vec<CK_SLOT_ID> {
        if token_present && crate::fault::token_removed() {
            Vec::new()
        } else {
            vec![SLOT_ID]
        }
    }

    /// `C_GetSlotInfo`.
    pub fn slot_info(&self, slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        check_slot(slot)?;
        Ok(CK_SLOT_INFO {
            slotDescription: padded(b"Tandem hsm-sim slot 0"),
            manufacturerID: padded(MANUFACTURER.as_bytes()),
            flags: if crate::fault::token_removed() {
                0
            } else {
                CKF_TOKEN_PRESENT
            },
            hardwareVersion: VERSION,
            firmwareVersion: VERSION,
        })
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        check_slot(slot)?;
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED;
        if let Some(meta) = &self.meta {
            flags |= CKF_TOKEN_INITIALIZED;
            if meta.user_wrap.is_some() {
                flags |= CKF_USER_PIN_INITIALIZED;
            }
        }
        let rw = self.sessions.values().filter(|s| s.rw).count();
        Ok(CK_TOKEN_INFO {
            label: self.meta.as_ref().map_or([b' '; 32], |m| m.label),
            manufacturerID: padded(MANUFACTURER.as_bytes()),
            model: padded(b"hsm-sim"),
            serialNumber: self.meta.as_ref().map_or([b' '; 16], |m| m.serial),
            flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: self.sessions.len() as CK_ULONG,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw as CK_ULONG,
            ulMaxPinLen: crate::token::MAX_PIN_LEN as CK_ULONG,
            ulMinPinLen: crate::token::MIN_PIN_LEN as CK_ULONG,
            ulTotalPublicMemory: object::CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: object::CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: object::CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: object::CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: VERSION,
            firmwareVersion: VERSION,
            utcTime: [b' '; 16],
        })
    }

    /// `C_GetMechanismList`.
    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        check_slot(slot)?;
        Ok(mechanisms().into_iter().map(|(m, _)| m).collect())
    }

    /// `C_GetMechanismInfo`.
    pub fn mechanism_info(
        &self,
        slot: CK_SLOT_ID,
        mech: CK_MECHANISM_TYPE,
    ) -> Result<CK_MECHANISM_INFO> {
        check_slot(slot)?;
        mechanisms()
            .into_iter()
            .find(|(m, _)| *m == mech)
            .map(|(_, i)| i)
            .ok_or(Error::Ck(CKR_MECHANISM_INVALID))
    }

    /// `C_InitToken`: (re)initialises the token, destroying all its objects. On an
    /// initialised token the SO PIN must be the current one.
    pub fn init_token(
        &mut self,
        slot: CK_SLOT_ID,
        so_pin: Zeroizing<Vec<u8>>,
        label: [u8; 32],
    ) -> Result<()> {
        check_slot(slot)?;
        if !self.sessions.is_empty() {
            return ck(CKR_SESSION_EXISTS);
        }
        let so_pin = Pin::new(so_pin)?;
        if let Some(meta) = &self.meta {
            meta.so_wrap.unwrap_with(&so_pin, Role::So)?;
        }
        let key = TokenKey::generate()?;
        let mut serial_bytes = [0u8; 8];
        crypto::random(&mut serial_bytes)?;
        let serial_hex: String = serial_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let meta = TokenMeta {
            label,
            serial: padded(serial_hex.as_bytes()),
            so_wrap: WrappedKey::wrap(&key, &so_pin, Role::So)?,
            user_wrap: None,
        };
        let lock = self.store.lock()?;
        self.store.wipe_objects(&lock)?;
        self.store.save_meta(&lock, &meta)?;
        drop(lock);
        self.objects.clear();
        self.meta = Some(meta);
        self.login = Login::Public;
        self.token_key = None;
        Ok(())
    }

    // ---- sessions ----

    fn session(&self, h: CK_SESSION_HANDLE) -> Result<&Session> {
        self.sessions
            .get(&h)
            .ok_or(Error::Ck(CKR_SESSION_HANDLE_INVALID))
    }

    fn session_mut(&mut self, h: CK_SESSION_HANDLE) -> Result<&mut Session> {
        self.sessions
            .get_mut(&h)
            .ok_or(Error::Ck(CKR_SESSION_HANDLE_INVALID))
    }

    /// `C_OpenSession`.
    pub fn open_session(&mut self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        check_slot(slot)?;
        if flags & CKF_SERIAL_SESSION == 0 {
            return ck(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        if self.meta.is_none() {
            return ck(CKR_TOKEN_NOT_RECOGNIZED);
        }
        let rw = flags & CKF_RW_SESSION != 0;
        if !rw && self.login == Login::So {
            return ck(CKR_SESSION_READ_WRITE_SO_EXISTS);
        }
        let h = self.next_session;
        self.next_session += 1;
        self.sessions.insert(h, Session::new(rw));
        Ok(h)
    }

    /// `C_CloseSession`: destroys the session's objects; closing the last session logs out.
    pub fn close_session(&mut self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.sessions
            .remove(&h)
            .ok_or(Error::Ck(CKR_SESSION_HANDLE_INVALID))?;
        self.objects.retain(|_, e| e.owner != Some(h));
        if self.sessions.is_empty() {
            self.drop_login();
        }
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&mut self, slot: CK_SLOT_ID) -> Result<()> {
        check_slot(slot)?;
        self.sessions.clear();
        self.objects.retain(|_, e| e.owner.is_none());
        self.drop_login();
        Ok(())
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&self, h: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
        let s = self.session(h)?;
        let state = match (self.login, s.rw) {
            (Login::Public, false) => CKS_RO_PUBLIC_SESSION,
            (Login::Public, true) => CKS_RW_PUBLIC_SESSION,
            (Login::User, false) => CKS_RO_USER_FUNCTIONS,
            (Login::User, true) => CKS_RW_USER_FUNCTIONS,
            (Login::So, _) => CKS_RW_SO_FUNCTIONS,
        };
        Ok(CK_SESSION_INFO {
            slotID: SLOT_ID,
            state,
            flags: CKF_SERIAL_SESSION | if s.rw { CKF_RW_SESSION } else { 0 },
            ulDeviceError: 0,
        })
    }

    // ---- login ----

    /// `C_Login`.
    pub fn login(
        &mut self,
        h: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: Zeroizing<Vec<u8>>,
    ) -> Result<()> {
        self.session(h)?;
        let (role, login) = match user_type {
            CKU_SO => (Role::So, Login::So),
            CKU_USER => (Role::User, Login::User),
            CKU_CONTEXT_SPECIFIC => return ck(CKR_OPERATION_NOT_INITIALIZED),
            _ => return ck(CKR_USER_TYPE_INVALID),
        };
        match self.login {
            Login::Public => {}
            l if l == login => return ck(CKR_USER_ALREADY_LOGGED_IN),
            _ => return ck(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
        }
        if role == Role::So && self.sessions.values().any(|s| !s.rw) {
            return ck(CKR_SESSION_READ_ONLY_EXISTS);
        }
        let meta = self
            .meta
            .as_ref()
            .ok_or(Error::Ck(CKR_USER_PIN_NOT_INITIALIZED))?;
        let wrap = match role {
            Role::So => &meta.so_wrap,
            Role::User => meta
                .user_wrap
                .as_ref()
                .ok_or(Error::Ck(CKR_USER_PIN_NOT_INITIALIZED))?,
        };
        // A PIN of impossible length is simply incorrect.
        let pin = Pin::new(pin).map_err(|_| Error::Ck(CKR_PIN_INCORRECT))?;
        let key = wrap.unwrap_with(&pin, role)?;
        if role == Role::User {
            let lock = self.store.lock()?;
            let loaded = self.store.load_objects(&lock, Some(&key))?;
            drop(lock);
            for (id, obj) in loaded {
                if obj.is_private() {
                    self.insert(obj, None, Some(id));
                }
            }
        }
        self.token_key = Some(key);
        self.login = login;
        Ok(())
    }

    /// Forgets the login: private objects leave memory, their handles become invalid.
    fn drop_login(&mut self) {
        if self.login == Login::User {
            self.objects.retain(|_, e| !e.obj.is_private());
        }
        self.login = Login::Public;
        self.token_key = None;
    }

    /// `C_Logout`.
    pub fn logout(&mut self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.session(h)?;
        if self.login == Login::Public {
            return ck(CKR_USER_NOT_LOGGED_IN);
        }
        self.drop_login();
        Ok(())
    }

    /// `C_InitPIN`: the SO sets the user PIN.
    pub fn init_pin(&mut self, h: CK_SESSION_HANDLE, pin: Zeroizing<Vec<u8>>) -> Result<()> {
        let s = self.session(h)?;
        if self.login != Login::So || !s.rw {
            return ck(CKR_USER_NOT_LOGGED_IN);
        }
        let pin = Pin::new(pin)?;
        let key = self
            .token_key
            .as_ref()
            .ok_or(Error::Ck(CKR_USER_NOT_LOGGED_IN))?;
        let mut meta = self
            .meta
            .clone()
            .ok_or(Error::Ck(CKR_TOKEN_NOT_RECOGNIZED))?;
        meta.user_wrap = Some(WrappedKey::wrap(key, &pin, Role::User)?);
        let lock = self.store.lock()?;
        self.store.save_meta(&lock, &meta)?;
        drop(lock);
        self.meta = Some(meta);
        Ok(())
    }

    /// `C_SetPIN`: changes the SO PIN when the SO is logged in, otherwise the user PIN.
    pub fn set_pin(
        &mut self,
        h: CK_SESSION_HANDLE,
        old: Zeroizing<Vec<u8>>,
        new: Zeroizing<Vec<u8>>,
    ) -> Result<()> {
        if !self.session(h)?.rw {
            return ck(CKR_SESSION_READ_ONLY);
        }
        let role = if self.login == Login::So {
            Role::So
        } else {
            Role::User
        };
        let mut meta = self
            .meta
            .clone()
            .ok_or(Error::Ck(CKR_TOKEN_NOT_RECOGNIZED))?;
        let old = Pin::new(old).map_err(|_| Error::Ck(CKR_PIN_INCORRECT))?;
        let new = Pin::new(new)?;
        let wrap = match role {
            Role::So => &mut meta.so_wrap,
            Role::User => meta
                .user_wrap
                .as_mut()
                .ok_or(Error::Ck(CKR_USER_PIN_NOT_INITIALIZED))?,
        };
        let key = wrap.unwrap_with(&old, role)?;
        *wrap = WrappedKey::wrap(&key, &new, role)?;
        let lock = self.store.lock()?;
        self.store.save_meta(&lock, &meta)?;
        drop(lock);
        self.meta = Some(meta);
        Ok(())
    }

    // ---- objects ----

    /// The entry behind a handle, if this application may see it now.
    fn visible(&self, h: CK_OBJECT_HANDLE) -> Result<&Entry> {
        match self.objects.get(&h) {
            Some(e) if !e.obj.is_private() || self.login == Login::User => Ok(e),
            _ => ck(CKR_OBJECT_HANDLE_INVALID),
        }
    }

    /// Whether session `s` may create or change an object with these token/private flags.
    fn may_write(&self, s: &Session, token: bool, private: bool) -> Result<()> {
        if token && !s.rw {
            return ck(CKR_SESSION_READ_ONLY);
        }
        if private && self.login != Login::User {
            return ck(CKR_USER_NOT_LOGGED_IN);
        }
        Ok(())
    }

    /// Stores a new object (and persists it when it is a token object).
    ///
    /// A token object holding key material must be private: only private objects are
    /// encrypted on disk, and key material is never written in clear.
    fn add_object(&mut self, h: CK_SESSION_HANDLE, obj: Object) -> Result<CK_OBJECT_HANDLE> {
        if obj.is_token()
            && !obj.is_private()
            && matches!(obj.class(), Some(CKO_PRIVATE_KEY | CKO_SECRET_KEY))
        {
            return ck(CKR_TEMPLATE_INCONSISTENT);
        }
        if obj.is_token() {
            let id = store::new_object_id()?;
            let lock = self.store.lock()?;
            self.store
                .save_object(&lock, &id, &obj, self.token_key.as_ref())?;
            drop(lock);
            Ok(self.insert(obj, None, Some(id)))
        } else {
            Ok(self.insert(obj, Some(h), None))
        }
    }

    /// `C_CreateObject`.
    pub fn create_object(
        &mut self,
        h: CK_SESSION_HANDLE,
        template: Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let s = self.session(h)?;
        let obj = object::build(&template, None)?;
        self.may_write(s, obj.is_token(), obj.is_private())?;
        // Imported RSA keys must be consistent (generated and unwrapped ones are the
        // token's own; checking them would cost primality tests on every unwrap).
        if obj.class() == Some(CKO_PRIVATE_KEY) && obj.key_type() == Some(CKK_RSA) {
            crypto::rsa_check_private(&obj)?;
        }
        self.add_object(h, obj)
    }

    /// `C_DestroyObject`.
    pub fn destroy_object(&mut self, h: CK_SESSION_HANDLE, oh: CK_OBJECT_HANDLE) -> Result<()> {
        let s = self.session(h)?;
        let e = self.visible(oh)?;
        if e.obj.is_token() && !s.rw {
            return ck(CKR_SESSION_READ_ONLY);
        }
        if e.obj.get(CKA_DESTROYABLE).is_some() && !e.obj.flag(CKA_DESTROYABLE) {
            return ck(CKR_ACTION_PROHIBITED);
        }
        if let Some(id) = &e.store_id {
            let lock = self.store.lock()?;
            self.store.delete_object(&lock, id)?;
        }
        self.objects.remove(&oh);
        Ok(())
    }

    /// `C_GetAttributeValue`: what may be revealed of each requested attribute.
    pub fn get_attributes(
        &self,
        h: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttributeRead>> {
        self.session(h)?;
        let e = self.visible(oh)?;
        Ok(types.iter().map(|t| e.obj.read(*t)).collect())
    }

    /// `C_SetAttributeValue`.
    pub fn set_attributes(
        &mut self,
        h: CK_SESSION_HANDLE,
        oh: CK_OBJECT_HANDLE,
        template: Template,
    ) -> Result<()> {
        let s = self.session(h)?;
        let e = self.visible(oh)?;
        if e.obj.is_token() && !s.rw {
            return ck(CKR_SESSION_READ_ONLY);
        }
        let mut updated = Object::default();
        for (t, v) in e.obj.attributes() {
            updated.set(*t, v.clone());
        }
        updated.modify(&template)?;
        if let Some(id) = &e.store_id {
            let lock = self.store.lock()?;
            self.store
                .save_object(&lock, id, &updated, self.token_key.as_ref())?;
        }
        if let Some(e) = self.objects.get_mut(&oh) {
            e.obj = updated;
        }
        Ok(())
    }

    /// Brings the token objects in memory in line with the token directory, which other
    /// processes may have changed: new objects get handles, changed ones are updated (same
    /// handle), deleted ones disappear. Private objects take part only while the user is
    /// logged in (they are in memory only then).
    fn refresh_token_objects(&mut self) -> Result<()> {
        if self.meta.is_none() {
            return Ok(());
        }
        let key = match self.login {
            Login::User => self.token_key.as_ref(),
            _ => None,
        };
        let lock = self.store.lock()?;
        let mut on_disk: BTreeMap<String, Object> =
            self.store.load_objects(&lock, key)?.into_iter().collect();
        drop(lock);
        self.objects.retain(|_, e| match &e.store_id {
            None => true,
            Some(id) => match on_disk.remove(id) {
                Some(obj) => {
                    e.obj = obj;
                    true
                }
                None => false,
            },
        });
        for (id, obj) in on_disk {
            self.insert(obj, None, Some(id));
        }
        Ok(())
    }

    /// `C_FindObjectsInit`: searches after [`Module::refresh_token_objects`].
    pub fn find_init(&mut self, h: CK_SESSION_HANDLE, template: Template) -> Result<()> {
        if self.session(h)?.find.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        self.refresh_token_objects()?;
        let user = self.login == Login::User;
        let handles = self
            .objects
            .iter()
            .filter(|(_, e)| (user || !e.obj.is_private()) && e.obj.matches(&template))
            .map(|(h, _)| *h)
            .collect();
        self.session_mut(h)?.find = Some(Find { handles, pos: 0 });
        Ok(())
    }

    /// `C_FindObjects`: up to `max` further handles.
    pub fn find(&mut self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let f = self
            .session_mut(h)?
            .find
            .as_mut()
            .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
        let end = f.handles.len().min(f.pos.saturating_add(max));
        let out = f.handles[f.pos..end].to_vec();
        f.pos = end;
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&mut self, h: CK_SESSION_HANDLE) -> Result<()> {
        self.session_mut(h)?
            .find
            .take()
            .map(|_| ())
            .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))
    }

    // ---- random, key generation ----

    /// `C_GenerateRandom`.
    pub fn generate_random(&self, h: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(h)?;
        crypto::random(out)
    }

    /// `C_GenerateKeyPair`: `CKM_RSA_PKCS_KEY_PAIR_GEN` (`CKA_MODULUS_BITS` 1024..=8192,
    /// `CKA_PUBLIC_EXPONENT` odd, default 65537) and `CKM_EC_KEY_PAIR_GEN` (`CKA_EC_PARAMS`
    /// naming P-256 or P-384).
    pub fn generate_key_pair(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        public_template: Template,
        private_template: Template,
    ) -> Result<Deferred<(Object, Object)>> {
        let s = self.session(h)?;
        let key_type = match mech.kind {
            CKM_RSA_PKCS_KEY_PAIR_GEN => CKK_RSA,
            CKM_EC_KEY_PAIR_GEN => CKK_EC,
            _ => return ck(CKR_MECHANISM_INVALID),
        };
        mech.no_params()?;
        object::validate_template(&public_template)?;
        object::validate_template(&private_template)?;
        for (tpl, class) in [
            (&public_template, CKO_PUBLIC_KEY),
            (&private_template, CKO_PRIVATE_KEY),
        ] {
            if tpl.iter().any(|(t, _)| KEY_MATERIAL.contains(t)) {
                return ck(CKR_TEMPLATE_INCONSISTENT);
            }
            if object::template_ulong(tpl, CKA_CLASS).is_some_and(|c| c != class)
                || object::template_ulong(tpl, CKA_KEY_TYPE).is_some_and(|k| k != key_type)
            {
                return ck(CKR_TEMPLATE_INCONSISTENT);
            }
        }
        // Check the permissions before anything is generated.
        let flags = |tpl: &Template, class| {
            let token = object::template_bool(tpl, CKA_TOKEN).unwrap_or(false);
            let private =
                object::template_bool(tpl, CKA_PRIVATE).unwrap_or(class == CKO_PRIVATE_KEY);
            (token, private)
        };
        let (pt, pp) = flags(&public_template, CKO_PUBLIC_KEY);
        let (st, sp) = flags(&private_template, CKO_PRIVATE_KEY);
        self.may_write(s, pt, pp)?;
        self.may_write(s, st, sp)?;

        // What to generate, checked now; the generation itself (and building the objects)
        // runs with the module unlocked ([`Deferred`]), the objects are added by
        // [`Module::add_key_pair`].
        enum Spec {
            Rsa(u32, Vec<u8>),
            Ec(Zeroizing<Vec<u8>>),
        }
        let spec = if key_type == CKK_RSA {
            let bits = object::template_ulong(&public_template, CKA_MODULUS_BITS)
                .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
            if !(1024..=8192).contains(&bits) {
                return ck(CKR_KEY_SIZE_RANGE);
            }
            let exponent = object::template_get(&public_template, CKA_PUBLIC_EXPONENT)
                .map_or_else(|| vec![1, 0, 1], |e| e.to_vec());
            // Even exponents, 1 and huge values are refused before OpenSSL sees them.
            if exponent.len() > 8
                || exponent.last().is_none_or(|b| b & 1 == 0)
                || object::bit_len(&exponent) < 2
            {
                return ck(CKR_TEMPLATE_INCONSISTENT);
            }
            let bits = u32::try_from(bits).map_err(|_| Error::Ck(CKR_KEY_SIZE_RANGE))?;
            Spec::Rsa(bits, exponent)
        } else {
            let params = object::template_get(&public_template, CKA_EC_PARAMS)
                .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?
                .clone();
            if object::template_get(&private_template, CKA_EC_PARAMS).is_some_and(|p| *p != params)
            {
                return ck(CKR_TEMPLATE_INCONSISTENT);
            }
            Spec::Ec(params)
        };
        let kind = mech.kind;
        Ok(Deferred::later(move || {
            let (public_material, private_material, dropped): (Template, Template, &[_]) =
                match spec {
                    Spec::Rsa(bits, exponent) => {
                        let (p, q) = crypto::rsa_generate(bits, &exponent)?;
                        (p, q, &[CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS])
                    }
                    Spec::Ec(params) => {
                        let (mut p, mut q) = crypto::ec_generate(&params)?;
                        p.push((CKA_EC_PARAMS, params.clone()));
                        q.push((CKA_EC_PARAMS, params));
                        (p, q, &[CKA_EC_PARAMS])
                    }
                };
            let with = |tpl: &Template, class: CK_OBJECT_CLASS, material: Template| -> Template {
                let mut t = vec![
                    (CKA_CLASS, ulong_value(class)),
                    (CKA_KEY_TYPE, ulong_value(key_type)),
                ];
                t.extend(
                    tpl.iter()
                        .filter(|(a, _)| !dropped.contains(a))
                        .map(|(a, v)| (*a, v.clone())),
                );
                t.extend(material);
                t
            };
            let public = object::build(
                &with(&public_template, CKO_PUBLIC_KEY, public_material),
                Some(kind),
            )?;
            let private = object::build(
                &with(&private_template, CKO_PRIVATE_KEY, private_material),
                Some(kind),
            )?;
            Ok((public, private))
        }))
    }

    /// Second half of `C_GenerateKeyPair`: adds the objects [`Module::generate_key_pair`]'s
    /// job built (both or neither), if the session may still create them.
    pub fn add_key_pair(
        &mut self,
        h: CK_SESSION_HANDLE,
        (public, private): (Object, Object),
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let s = self.session(h)?;
        self.may_write(s, public.is_token(), public.is_private())?;
        self.may_write(s, private.is_token(), private.is_private())?;
        let ph = self.add_object(h, public)?;
        match self.add_object(h, private) {
            Ok(sh) => Ok((ph, sh)),
            Err(e) => {
                // Do not leave half a key pair behind.
                let _ = self.destroy_object(h, ph);
                Err(e)
            }
        }
    }

    // ---- sign and verify ----

    fn key_op(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
        class: CK_OBJECT_CLASS,
        usage: CK_ATTRIBUTE_TYPE,
    ) -> Result<KeyOp> {
        self.session(h)?;
        let m = SignMech::from_mechanism(mech.kind).ok_or(Error::Ck(CKR_MECHANISM_INVALID))?;
        mech.no_params()?;
        let class = match (m, usage) {
            // A share only signs.
            (SignMech::TandemShare, CKA_SIGN) => m.signing_class(),
            (SignMech::TandemShare, _) => return ck(CKR_MECHANISM_INVALID),
            // HMAC signs and verifies with the same secret key.
            (SignMech::HmacSha256, _) => m.signing_class(),
            _ => class,
        };
        let e = self
            .visible(key)
            .map_err(|_| Error::Ck(CKR_KEY_HANDLE_INVALID))?;
        if e.obj.class() != Some(class) || e.obj.key_type() != Some(m.key_type()) {
            return ck(CKR_KEY_TYPE_INCONSISTENT);
        }
        if !e.obj.flag(usage) {
            return ck(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        check_allowed(&e.obj, mech.kind)?;
        Ok(KeyOp {
            mech: m,
            key,
            pending: Zeroizing::new(Vec::new()),
            multipart: false,
        })
    }

    /// `C_SignInit`.
    pub fn sign_init(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        if self.session(h)?.sign.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let op = self.key_op(h, mech, key, CKO_PRIVATE_KEY, CKA_SIGN)?;
        self.session_mut(h)?.sign = Some(op);
        Ok(())
    }

    /// `C_Sign`. A length query or a too-small buffer keeps the operation active; anything
    /// else ends it.
    pub fn sign(
        &mut self,
        h: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Deferred<Output>> {
        self.finish_sign(h, Some(data), capacity)
    }

    /// `C_SignUpdate`: collects data; an error ends the operation.
    /// `part` is `Err` when the FFI layer refused the caller's buffer: that error, like any
    /// other, ends the operation.
    pub fn sign_update(
        &mut self,
        h: CK_SESSION_HANDLE,
        part: std::result::Result<&[u8], CK_RV>,
    ) -> Result<()> {
        collect(&mut self.session_mut(h)?.sign, part)
    }

    /// `C_SignFinal`: signs the collected data (buffer protocol as `C_Sign`).
    pub fn sign_final(
        &mut self,
        h: CK_SESSION_HANDLE,
        capacity: Option<usize>,
    ) -> Result<Deferred<Output>> {
        self.finish_sign(h, None, capacity)
    }

    fn finish_sign(
        &mut self,
        h: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        capacity: Option<usize>,
    ) -> Result<Deferred<Output>> {
        let op = self
            .session(h)?
            .sign
            .clone()
            .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
        let result = (|| {
            // C_Sign after C_SignUpdate is a caller error; it ends the operation.
            if data.is_some() && op.multipart {
                return ck(CKR_OPERATION_ACTIVE);
            }
            let data = data.unwrap_or(&op.pending);
            let e = self
                .visible(op.key)
                .map_err(|_| Error::Ck(CKR_KEY_HANDLE_INVALID))?;
            let k = crypto::signature_len(&e.obj, op.mech)?;
            if let Some(out) = sized(k, capacity) {
                return Ok(Deferred::Ready(out));
            }
            let (key, mech, data) = (e.obj.clone(), op.mech, Zeroizing::new(data.to_vec()));
            Ok(Deferred::later(move || {
                Ok(Output::Data(Zeroizing::new(crypto::sign(
                    &key, mech, &data,
                )?)))
            }))
        })();
        if !matches!(result, Ok(Deferred::Ready(Output::Len(..)))) {
            self.session_mut(h)?.sign = None;
        }
        result
    }

    /// `C_VerifyInit`.
    pub fn verify_init(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        if self.session(h)?.verify.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let op = self.key_op(h, mech, key, CKO_PUBLIC_KEY, CKA_VERIFY)?;
        self.session_mut(h)?.verify = Some(op);
        Ok(())
    }

    /// `C_Verify`: ends the operation; a wrong signature is `CKR_SIGNATURE_INVALID`.
    pub fn verify(&mut self, h: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
        self.finish_verify(h, Some(data), signature)
    }

    /// `C_VerifyUpdate`: collects data.
    /// `part` is `Err` when the FFI layer refused the caller's buffer: that error, like any
    /// other, ends the operation.
    pub fn verify_update(
        &mut self,
        h: CK_SESSION_HANDLE,
        part: std::result::Result<&[u8], CK_RV>,
    ) -> Result<()> {
        collect(&mut self.session_mut(h)?.verify, part)
    }

    /// `C_VerifyFinal`: verifies the collected data.
    pub fn verify_final(&mut self, h: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
        self.finish_verify(h, None, signature)
    }

    fn finish_verify(
        &mut self,
        h: CK_SESSION_HANDLE,
        data: Option<&[u8]>,
        signature: &[u8],
    ) -> Result<()> {
        let op = self
            .session_mut(h)?
            .verify
            .take()
            .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
        if data.is_some() && op.multipart {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let data = data.unwrap_or(&op.pending);
        let e = self
            .visible(op.key)
            .map_err(|_| Error::Ck(CKR_KEY_HANDLE_INVALID))?;
        if crypto::verify(&e.obj, op.mech, data, signature)? {
            Ok(())
        } else {
            ck(CKR_SIGNATURE_INVALID)
        }
    }

    // ---- secret keys, encryption, wrapping ----

    /// `C_GenerateKey`: `CKM_AES_KEY_GEN` (`CKA_VALUE_LEN` of 16, 24 or 32) and
    /// `CKM_GENERIC_SECRET_KEY_GEN` (a `CKK_GENERIC_SECRET` key for HMAC, `CKA_VALUE_LEN` of
    /// 16 to 64).
    pub fn generate_key(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        template: Template,
    ) -> Result<CK_OBJECT_HANDLE> {
        let s = self.session(h)?;
        let key_type = match mech.kind {
            CKM_AES_KEY_GEN => CKK_AES,
            CKM_GENERIC_SECRET_KEY_GEN => CKK_GENERIC_SECRET,
            _ => return ck(CKR_MECHANISM_INVALID),
        };
        mech.no_params()?;
        object::validate_template(&template)?;
        if template.iter().any(|(t, _)| KEY_MATERIAL.contains(t))
            || object::template_ulong(&template, CKA_CLASS).is_some_and(|c| c != CKO_SECRET_KEY)
            || object::template_ulong(&template, CKA_KEY_TYPE).is_some_and(|k| k != key_type)
        {
            return ck(CKR_TEMPLATE_INCONSISTENT);
        }
        let len = object::template_ulong(&template, CKA_VALUE_LEN)
            .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
        let len_ok = match key_type {
            CKK_AES => matches!(len, 16 | 24 | 32),
            _ => (crypto::HMAC_MIN_KEY_LEN as CK_ULONG..=64).contains(&len),
        };
        if !len_ok {
            return ck(CKR_KEY_SIZE_RANGE);
        }
        let mut t = vec![
            (CKA_CLASS, ulong_value(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ulong_value(key_type)),
        ];
        t.extend(template.into_iter().filter(|(a, _)| *a != CKA_VALUE_LEN));
        t.push((CKA_VALUE, crypto::secret_key_value(len as usize)?));
        let obj = object::build(&t, Some(mech.kind))?;
        self.may_write(s, obj.is_token(), obj.is_private())?;
        self.add_object(h, obj)
    }

    fn cipher_op(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
        encrypting: bool,
    ) -> Result<CipherOp> {
        self.session(h)?;
        let obj = &self
            .visible(key)
            .map_err(|_| Error::Ck(CKR_KEY_HANDLE_INVALID))?
            .obj;
        let cipher = match (mech.kind, &mech.params) {
            (CKM_AES_GCM, Params::Gcm(g)) => {
                crypto::aes_key(obj)?;
                Cipher::AesGcm {
                    iv: g.iv.clone(),
                    aad: g.aad.clone(),
                    tag_len: crypto::gcm_tag_len(&g.iv, g.tag_bits)?,
                }
            }
            (CKM_RSA_PKCS_OAEP, _) => {
                let params = mech.oaep()?.clone();
                crypto::oaep_check(&params)?;
                let class = if encrypting {
                    CKO_PUBLIC_KEY
                } else {
                    CKO_PRIVATE_KEY
                };
                if obj.class() != Some(class) || obj.key_type() != Some(CKK_RSA) {
                    return ck(CKR_KEY_TYPE_INCONSISTENT);
                }
                Cipher::RsaOaep(params)
            }
            (CKM_AES_GCM, _) => return ck(CKR_MECHANISM_PARAM_INVALID),
            _ => return ck(CKR_MECHANISM_INVALID),
        };
        if !obj.flag(if encrypting { CKA_ENCRYPT } else { CKA_DECRYPT }) {
            return ck(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        check_allowed(obj, mech.kind)?;
        Ok(CipherOp { cipher, key })
    }

    /// `C_EncryptInit` (`CKM_AES_GCM`, `CKM_RSA_PKCS_OAEP`).
    pub fn encrypt_init(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        if self.session(h)?.encrypt.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let op = self.cipher_op(h, mech, key, true)?;
        self.session_mut(h)?.encrypt = Some(op);
        Ok(())
    }

    /// `C_Encrypt` (single part). Length queries keep the operation.
    pub fn encrypt(
        &mut self,
        h: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        let op = self
            .session(h)?
            .encrypt
            .clone()
            .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
        let result = (|| {
            let obj = &self
                .visible(op.key)
                .map_err(|_| Error::Ck(CKR_KEY_HANDLE_INVALID))?
                .obj;
            match &op.cipher {
                Cipher::AesGcm { iv, aad, tag_len } => {
                    if let Some(out) = sized(data.len() + tag_len, capacity) {
                        return Ok(out);
                    }
                    let key = crypto::aes_key(obj)?;
                    Ok(Output::Data(Zeroizing::new(crypto::aes_gcm_encrypt(
                        key, iv, aad, *tag_len, data,
                    )?)))
                }
                Cipher::RsaOaep(params) => {
                    if let Some(out) = sized(crypto::rsa_len(obj)?, capacity) {
                        return Ok(out);
                    }
                    Ok(Output::Data(Zeroizing::new(crypto::rsa_oaep_encrypt(
                        obj, params, data,
                    )?)))
                }
            }
        })();
        if !matches!(result, Ok(Output::Len(..))) {
            self.session_mut(h)?.encrypt = None;
        }
        result
    }

    /// `C_DecryptInit` (`CKM_AES_GCM`, `CKM_RSA_PKCS_OAEP`).
    pub fn decrypt_init(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        if self.session(h)?.decrypt.is_some() {
            return ck(CKR_OPERATION_ACTIVE);
        }
        let op = self.cipher_op(h, mech, key, false)?;
        self.session_mut(h)?.decrypt = Some(op);
        Ok(())
    }

    /// `C_Decrypt` (single part). For OAEP the length answer is the modulus length (an
    /// upper bound, as PKCS#11 allows).
    pub fn decrypt(
        &mut self,
        h: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Deferred<Output>> {
        let op = self
            .session(h)?
            .decrypt
            .clone()
            .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
        let result = (|| {
            let obj = &self
                .visible(op.key)
                .map_err(|_| Error::Ck(CKR_KEY_HANDLE_INVALID))?
                .obj;
            match &op.cipher {
                Cipher::AesGcm { iv, aad, tag_len } => {
                    let plain_len = data
                        .len()
                        .checked_sub(*tag_len)
                        .ok_or(Error::Ck(CKR_ENCRYPTED_DATA_LEN_RANGE))?;
                    if let Some(out) = sized(plain_len, capacity) {
                        return Ok(Deferred::Ready(out));
                    }
                    let key = crypto::aes_key(obj)?;
                    Ok(Deferred::Ready(Output::Data(crypto::aes_gcm_decrypt(
                        key, iv, aad, *tag_len, data,
                    )?)))
                }
                Cipher::RsaOaep(params) => {
                    if let Some(out) = sized(crypto::rsa_len(obj)?, capacity) {
                        return Ok(Deferred::Ready(out));
                    }
                    // The RSA private operation runs with the module unlocked.
                    let (key, params, data) = (obj.clone(), params.clone(), data.to_vec());
                    Ok(Deferred::later(move || {
                        Ok(Output::Data(crypto::rsa_oaep_decrypt(
                            &key, &params, &data,
                        )?))
                    }))
                }
            }
        })();
        if !matches!(result, Ok(Deferred::Ready(Output::Len(..)))) {
            self.session_mut(h)?.decrypt = None;
        }
        result
    }

    /// `C_WrapKey`: `CKM_AES_KEY_WRAP_PAD` (secret keys as their value, RSA private keys as
    /// PKCS#8 `PrivateKeyInfo`) and `CKM_RSA_PKCS_OAEP` (secret keys).
    pub fn wrap_key(
        &self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        wrapping: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        capacity: Option<usize>,
    ) -> Result<Output> {
        self.session(h)?;
        let wrapping = &self
            .visible(wrapping)
            .map_err(|_| Error::Ck(CKR_WRAPPING_KEY_HANDLE_INVALID))?
            .obj;
        let key = &self
            .visible(key)
            .map_err(|_| Error::Ck(CKR_KEY_HANDLE_INVALID))?
            .obj;
        if !matches!(mech.kind, CKM_AES_KEY_WRAP_PAD | CKM_RSA_PKCS_OAEP) {
            return ck(CKR_MECHANISM_INVALID);
        }
        if !wrapping.flag(CKA_WRAP) {
            return ck(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        check_allowed(wrapping, mech.kind)?;
        // A share never leaves the token (it is never extractable either).
        if !key.flag(CKA_EXTRACTABLE) || key.key_type() == Some(CKK_TANDEM_SHARE) {
            return ck(CKR_KEY_UNEXTRACTABLE);
        }
        if key.flag(CKA_WRAP_WITH_TRUSTED) && !wrapping.flag(CKA_TRUSTED) {
            return ck(CKR_KEY_NOT_WRAPPABLE);
        }
        let encoded = match (key.class(), key.key_type()) {
            (Some(CKO_SECRET_KEY), Some(CKK_TANDEM_SHARE)) => return ck(CKR_KEY_NOT_WRAPPABLE),
            (Some(CKO_SECRET_KEY), _) => key
                .get(CKA_VALUE)
                .cloned()
                .ok_or(Error::Ck(CKR_KEY_NOT_WRAPPABLE))?,
            (Some(CKO_PRIVATE_KEY), Some(CKK_RSA)) if mech.kind == CKM_AES_KEY_WRAP_PAD => {
                crypto::rsa_private_to_pkcs8(key)?
            }
            _ => return ck(CKR_KEY_NOT_WRAPPABLE),
        };
        let wrapped = if mech.kind == CKM_AES_KEY_WRAP_PAD {
            mech.no_params()?;
            let kek = crypto::aes_key(wrapping)
                .map_err(|_| Error::Ck(CKR_WRAPPING_KEY_TYPE_INCONSISTENT))?;
            crypto::aes_kwp_wrap(kek, &encoded)?
        } else {
            let params = mech.oaep()?;
            crypto::oaep_check(params)?;
            if wrapping.class() != Some(CKO_PUBLIC_KEY) || wrapping.key_type() != Some(CKK_RSA) {
                return ck(CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
            }
            crypto::rsa_oaep_encrypt(wrapping, params, &encoded).map_err(|e| match e.rv() {
                CKR_DATA_LEN_RANGE => Error::Ck(CKR_KEY_SIZE_RANGE),
                _ => e,
            })?
        };
        Ok(sized(wrapped.len(), capacity).unwrap_or(Output::Data(Zeroizing::new(wrapped))))
    }

    /// `C_UnwrapKey`: the inverse of [`Module::wrap_key`]; the template must name the class
    /// and key type. Unwrapped keys are not `CKA_LOCAL`, never "always sensitive".
    pub fn unwrap_key(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        unwrapping: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: Template,
    ) -> Result<Deferred<Object>> {
        self.session(h)?;
        let unwrapping = &self
            .visible(unwrapping)
            .map_err(|_| Error::Ck(CKR_UNWRAPPING_KEY_HANDLE_INVALID))?
            .obj;
        if !matches!(
            mech.kind,
            CKM_AES_KEY_WRAP_PAD | CKM_RSA_PKCS_OAEP | CKM_AES_GCM
        ) {
            return ck(CKR_MECHANISM_INVALID);
        }
        if !unwrapping.flag(CKA_UNWRAP) {
            return ck(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        check_allowed(unwrapping, mech.kind)?;
        object::validate_template(&template)?;
        let class = object::template_ulong(&template, CKA_CLASS)
            .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
        let key_type = object::template_ulong(&template, CKA_KEY_TYPE)
            .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
        // A share's template names its modulus (public); no other key material may be given.
        let share = class == CKO_SECRET_KEY && key_type == CKK_TANDEM_SHARE;
        if template
            .iter()
            .any(|(t, _)| KEY_MATERIAL.contains(t) && !(share && *t == CKA_MODULUS))
        {
            return ck(CKR_TEMPLATE_INCONSISTENT);
        }
        if share {
            let modulus = object::template_get(&template, CKA_MODULUS)
                .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
            // Checked before anything is decrypted.
            if object::template_bool(&template, CKA_EXTRACTABLE) == Some(true)
                || object::template_bool(&template, CKA_SENSITIVE) == Some(false)
                || object::template_bool(&template, CKA_PRIVATE) == Some(false)
            {
                return ck(CKR_TEMPLATE_INCONSISTENT);
            }
            if modulus.is_empty() {
                return ck(CKR_ATTRIBUTE_VALUE_INVALID);
            }
        }
        // The decryption (an RSA private operation for OAEP), the key's parsing and the
        // object's construction run with the module unlocked ([`Deferred`]); the object is
        // added by [`Module::add_unwrapped`].
        let (mech, unwrapping, wrapped) = (mech.clone(), unwrapping.clone(), wrapped.to_vec());
        Ok(Deferred::later(move || {
            let plain = if mech.kind == CKM_AES_GCM {
                let Params::Gcm(g) = &mech.params else {
                    return ck(CKR_MECHANISM_PARAM_INVALID);
                };
                let tag_len = crypto::gcm_tag_len(&g.iv, g.tag_bits)?;
                let kek = crypto::aes_key(&unwrapping)
                    .map_err(|_| Error::Ck(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT))?;
                // Any authentication failure (wrong key, IV, AAD, tampering) is one code.
                crypto::aes_gcm_decrypt(kek, &g.iv, &g.aad, tag_len, &wrapped).map_err(
                    |e| match e.rv() {
                        CKR_ENCRYPTED_DATA_LEN_RANGE => Error::Ck(CKR_WRAPPED_KEY_LEN_RANGE),
                        CKR_ENCRYPTED_DATA_INVALID => Error::Ck(CKR_WRAPPED_KEY_INVALID),
                        _ => e,
                    },
                )?
            } else if mech.kind == CKM_AES_KEY_WRAP_PAD {
                mech.no_params()?;
                let kek = crypto::aes_key(&unwrapping)
                    .map_err(|_| Error::Ck(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT))?;
                crypto::aes_kwp_unwrap(kek, &wrapped)?
            } else {
                let params = mech.oaep()?;
                crypto::oaep_check(params)?;
                if unwrapping.class() != Some(CKO_PRIVATE_KEY)
                    || unwrapping.key_type() != Some(CKK_RSA)
                {
                    return ck(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
                }
                crypto::rsa_oaep_decrypt(&unwrapping, params, &wrapped).map_err(|e| {
                    match e.rv() {
                        CKR_ENCRYPTED_DATA_LEN_RANGE => Error::Ck(CKR_WRAPPED_KEY_LEN_RANGE),
                        CKR_ENCRYPTED_DATA_INVALID => Error::Ck(CKR_WRAPPED_KEY_INVALID),
                        _ => e,
                    }
                })?
            };
            let material = match (class, key_type) {
                (CKO_SECRET_KEY, CKK_AES | CKK_GENERIC_SECRET) => {
                    if object::template_ulong(&template, CKA_VALUE_LEN)
                        .is_some_and(|l| l as usize != plain.len())
                    {
                        return ck(CKR_TEMPLATE_INCONSISTENT);
                    }
                    if key_type == CKK_AES && !matches!(plain.len(), 16 | 24 | 32) {
                        return ck(CKR_WRAPPED_KEY_INVALID);
                    }
                    vec![(CKA_VALUE, plain)]
                }
                (CKO_SECRET_KEY, CKK_TANDEM_SHARE) => {
                    let modulus = object::template_get(&template, CKA_MODULUS)
                        .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
                    if !object::share_value_valid(&plain, modulus) {
                        return ck(CKR_WRAPPED_KEY_INVALID);
                    }
                    vec![(CKA_VALUE, plain)]
                }
                (CKO_PRIVATE_KEY, CKK_RSA) if mech.kind == CKM_AES_KEY_WRAP_PAD => {
                    crypto::rsa_private_from_pkcs8(&plain)?
                }
                _ => return ck(CKR_TEMPLATE_INCONSISTENT),
            };
            let mut t: Template = template
                .into_iter()
                .filter(|(a, _)| *a != CKA_VALUE_LEN)
                .collect();
            t.extend(material);
            object::build(&t, None)
        }))
    }

    /// `C_DeriveKey` with `CKM_ECDH1_DERIVE` (`CKD_NULL`, no shared data, as SoftHSM): the
    /// x coordinate of `d·Q` for the base EC private key (`CKA_DERIVE` true) and the peer's
    /// point `Q` (raw or DER OCTET STRING; it must lie on the base key's curve). The result
    /// is a `CKK_GENERIC_SECRET` (or `CKK_AES`) secret key; `CKA_VALUE_LEN`, when given,
    /// takes that many leading bytes. Derived keys are not `CKA_LOCAL`, never "always
    /// sensitive".
    pub fn derive_key(
        &mut self,
        h: CK_SESSION_HANDLE,
        mech: &Mechanism,
        base: CK_OBJECT_HANDLE,
        template: Template,
    ) -> Result<Deferred<Object>> {
        self.session(h)?;
        let base = &self
            .visible(base)
            .map_err(|_| Error::Ck(CKR_KEY_HANDLE_INVALID))?
            .obj;
        if mech.kind != CKM_ECDH1_DERIVE {
            return ck(CKR_MECHANISM_INVALID);
        }
        let Params::Ecdh(params) = &mech.params else {
            return ck(CKR_MECHANISM_PARAM_INVALID);
        };
        if params.kdf != CKD_NULL || !params.shared_data.is_empty() {
            return ck(CKR_MECHANISM_PARAM_INVALID);
        }
        if base.class() != Some(CKO_PRIVATE_KEY) || base.key_type() != Some(CKK_EC) {
            return ck(CKR_KEY_TYPE_INCONSISTENT);
        }
        if !base.flag(CKA_DERIVE) {
            return ck(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        check_allowed(base, mech.kind)?;
        object::validate_template(&template)?;
        let class = object::template_ulong(&template, CKA_CLASS)
            .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
        let key_type = object::template_ulong(&template, CKA_KEY_TYPE)
            .ok_or(Error::Ck(CKR_TEMPLATE_INCOMPLETE))?;
        if class != CKO_SECRET_KEY || !matches!(key_type, CKK_GENERIC_SECRET | CKK_AES) {
            return ck(CKR_TEMPLATE_INCONSISTENT);
        }
        if template.iter().any(|(t, _)| KEY_MATERIAL.contains(t)) {
            return ck(CKR_TEMPLATE_INCONSISTENT);
        }
        let len = object::template_ulong(&template, CKA_VALUE_LEN).map(|l| l as usize);
        let (base, peer) = (base.clone(), params.public_data.clone());
        Ok(Deferred::later(move || {
            let mut secret = crypto::ecdh(&base, &peer)?;
            match (key_type, len) {
                (_, Some(l)) if l == 0 || l > secret.len() => return ck(CKR_TEMPLATE_INCONSISTENT),
                (CKK_AES, Some(l)) if !matches!(l, 16 | 24 | 32) => {
                    return ck(CKR_TEMPLATE_INCONSISTENT);
                }
                (CKK_AES, None) if !matches!(secret.len(), 16 | 24 | 32) => {
                    return ck(CKR_TEMPLATE_INCOMPLETE);
                }
                (_, Some(l)) => secret.truncate(l),
                _ => {}
            }
            let mut t: Template = template
                .into_iter()
                .filter(|(a, _)| *a != CKA_VALUE_LEN)
                .collect();
            t.push((CKA_VALUE, secret));
            object::build(&t, None)
        }))
    }

    /// Second half of `C_UnwrapKey` and `C_DeriveKey`: adds the object [`Module::unwrap_key`]'s job built,
    /// if the session may still create it.
    pub fn add_unwrapped(&mut self, h: CK_SESSION_HANDLE, obj: Object) -> Result<CK_OBJECT_HANDLE> {
        let s = self.session(h)?;
        self.may_write(s, obj.is_token(), obj.is_private())?;
        self.add_object(h, obj)
    }
}

/// `C_SignUpdate` / `C_VerifyUpdate`: adds `part` to the active operation in `slot`; an
/// error (also one the FFI layer found in the caller's buffer) ends the operation.
fn collect(slot: &mut Option<KeyOp>, part: std::result::Result<&[u8], CK_RV>) -> Result<()> {
    let op = slot
        .as_mut()
        .ok_or(Error::Ck(CKR_OPERATION_NOT_INITIALIZED))?;
    match part {
        Ok(part) => {
            op.pending.extend_from_slice(part);
            op.multipart = true;
            Ok(())
        }
        Err(rv) => {
            *slot = None;
            ck(rv)
        }
    }
}
