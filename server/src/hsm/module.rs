//! Loading the PKCS#11 module (once per process, `C_Initialize` with OS locking), finding
//! the token by label, logging in ([`Hsm::open`], and again in [`Hsm::open_session`] after
//! the token came back), provisioning a fresh token ([`provision_token`]) and the health
//! check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, SessionState, UserType};

use super::{
    CKM_TANDEM_SHARE_EXP, CachedHandles, Hsm, HsmConfig, HsmError, Inner, KeyCache, TokenPin, lock,
};

/// Loaded and initialised modules, one per canonical path, for the whole process.
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

fn module_context(path: &Path) -> Result<Pkcs11, HsmError> {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(ctx) = modules.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&key)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        // Someone else in this process initialised it; that is fine, it stays initialised.
        Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(e.into()),
    }
    modules.insert(key, ctx.clone());
    Ok(ctx)
}

/// Initialises a fresh token (the first slot without one) with `label`, the SO PIN and the
/// user PIN, for modules the server provisions itself (hsm-sim). Does nothing when a token
/// with this label exists already. Returns whether it initialised one.
pub fn provision_token(
    module: &Path,
    label: &str,
    so_pin: &TokenPin,
    user_pin: &TokenPin,
) -> Result<bool, HsmError> {
    let ctx = module_context(module)?;
    for slot in ctx.get_slots_with_initialized_token()? {
        if ctx.get_token_info(slot)?.label().trim_end() == label {
            return Ok(false);
        }
    }
    let slot = ctx
        .get_slots_with_token()?
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|i| !i.token_initialized()))
        .ok_or_else(|| HsmError::TokenNotFound {
            label: format!("{label} (no uninitialised token to provision)"),
        })?;
    ctx.init_token(slot, &so_pin.to_auth_pin(), label)?;
    let session = ctx.open_rw_session(slot)?;
    session.login(UserType::So, Some(&so_pin.to_auth_pin()))?;
    session.init_pin(&user_pin.to_auth_pin())?;
    session.logout()?;
    Ok(true)
}

impl Hsm {
    /// Loads the module (once per process), finds the token by label and logs in as user.
    ///
    /// The login belongs to the whole process (PKCS#11 application). If this process is
    /// already logged in to the token (another `Hsm` for it is open), the module answers
    /// `CKR_USER_ALREADY_LOGGED_IN` without checking the PIN again; that is accepted.
    pub fn open(config: &HsmConfig) -> Result<Hsm, HsmError> {
        let _span = tracing::info_span!("hsm.open", token = %config.token_label).entered();
        let ctx = module_context(&config.module_path)?;

        let mut found = None;
        for slot in ctx.get_slots_with_initialized_token()? {
            let info = ctx.get_token_info(slot)?;
            if info.label().trim_end() == config.token_label {
                if found.is_some() {
                    return Err(HsmError::Ambiguous {
                        label: config.token_label.clone(),
                        kind: "token",
                    });
                }
                found = Some(slot);
            }
        }
        let slot = found.ok_or_else(|| HsmError::TokenNotFound {
            label: config.token_label.clone(),
        })?;

        let login_session = ctx.open_rw_session(slot)?;
        let pin = config.user_pin.to_auth_pin();
        match login_session.login(UserType::User, Some(&pin)) {
            Ok(()) => {}
            // Another `Hsm` on this token in this process logged in already.
            Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(e.into()),
        }
        drop(pin);
        let pin = TokenPin::new(config.user_pin.expose_secret().to_owned());

        let share_mechanism = MechanismType::new_vendor_defined(CKM_TANDEM_SHARE_EXP)
            .is_ok_and(|m| ctx.get_mechanism_info(slot, m).is_ok());
        if share_mechanism {
            tracing::info!("the HSM computes split-share exponentiations in the token");
        }
        Ok(Hsm {
            inner: Arc::new(Inner {
                ctx,
                slot,
                share_mechanism,
                vendor_share_off: AtomicBool::new(false),
                share_keys: Mutex::new(HashMap::new()),
                pin,
                token_label: config.token_label.clone(),
                idle: Mutex::new(Vec::new()),
                handles: Mutex::new(CachedHandles::default()),
                provisioning: Mutex::new(()),
                _login_session: Mutex::new(login_session),
                overdue: AtomicUsize::new(0),
                server_keys: RwLock::new(KeyCache::default()),
                keeper: Mutex::new(None),
            }),
        })
    }

    /// A new session, logged in: after the token was removed and returned, the module has
    /// forgotten the login (and the sessions), so the user logs in again here and the cached
    /// object handles are dropped.
    pub(super) fn open_session(&self) -> Result<Session, HsmError> {
        let session = self.inner.ctx.open_rw_session(self.inner.slot)?;
        let state = session.get_session_info()?.session_state();
        if !matches!(state, SessionState::RoUser | SessionState::RwUser) {
            match session.login(UserType::User, Some(&self.inner.pin.to_auth_pin())) {
                Ok(()) | Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(e.into()),
            }
            *lock(&self.inner.handles) = CachedHandles::default();
            tracing::warn!("the HSM login was lost (token removed?); logged in again");
        }
        Ok(session)
    }

    /// Health check: a session with the user logged in can see the key-encryption key.
    /// Errors say what is wrong (token not present, device removed, login failed, ...).
    pub fn health(&self) -> Result<(), HsmError> {
        self.with_session(|s| {
            let info = s.session.get_session_info()?;
            if !matches!(
                info.session_state(),
                SessionState::RoUser | SessionState::RwUser
            ) {
                s.discard.set(true);
                return Err(HsmError::Token("not logged in"));
            }
            self.kek(s).map(|_| ())
        })
    }
}
