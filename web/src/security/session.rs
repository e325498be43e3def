//! Browser sessions, in memory: a random 256-bit id in a cookie, a CSRF token, an absolute
//! expiry, and the application's data `T`.
//!
//! The store is bounded ([`Sessions::new`]'s `max`): a new session past the bound first
//! sweeps expired ones, and is refused ([`Full`]) if none expired. A background sweep
//! ([`Sessions::sweep`]) drops expired sessions, and with them anything they own (a running
//! login's follow task stops when its handle drops). A restart of the process logs everyone
//! out: nothing is persisted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore as _};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::csrf::CsrfToken;

/// A session id: 32 random bytes, hex in the cookie. A bearer secret: redacted in `Debug`,
/// zeroized on drop, never logged, never in a URL.
#[derive(Clone, PartialEq, Eq, Hash, Zeroize, ZeroizeOnDrop)]
pub struct SessionId([u8; 32]);

impl SessionId {
    fn random() -> Self {
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut b);
        Self(b)
    }

    /// Parses a cookie value (64 hex digits); anything else is no session.
    pub fn from_cookie(value: &str) -> Option<Self> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(value, &mut b).ok()?;
        Some(Self(b))
    }

    /// The cookie value. Only for `Set-Cookie`.
    pub(crate) fn expose_secret(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// One browser's session.
#[derive(Debug)]
pub struct Session<T> {
    /// The token every form of this session carries.
    pub csrf: CsrfToken,
    expires_at: Instant,
    /// What the application keeps for this browser.
    pub data: T,
}

/// The store is full of live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The outcome of [`Sessions::begin`].
#[derive(Debug)]
pub struct Begun {
    /// The session's id.
    pub id: SessionId,
    /// Whether it was just created (the response must set the cookie).
    pub created: bool,
}

/// All sessions of this process.
#[derive(Debug)]
pub struct Sessions<T> {
    // A std Mutex: held only for map operations, never across an `.await`.
    inner: Mutex<HashMap<SessionId, Session<T>>>,
    lifetime: Duration,
    max: usize,
}

impl<T: Default> Sessions<T> {
    /// An empty store; sessions live `lifetime` from creation (or rotation), at most `max`.
    pub fn new(lifetime: Duration, max: usize) -> Self {
        Self {
            inner: Mutex::new(HashMap::new()),
            lifetime,
            max,
        }
    }

    /// The lifetime (the cookie's Max-Age).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Session<T>>> {
        // A panic while holding the lock leaves a consistent map (single operations).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live session of `presented` (the cookie), or a new one.
    pub fn begin(&self, presented: Option<SessionId>, now: Instant) -> Result<Begun, Full> {
        let mut map = self.lock();
        if let Some(id) = presented {
            match map.get(&id) {
                Some(s) if s.expires_at > now => return Ok(Begun { id, created: false }),
                Some(_) => {
                    map.remove(&id);
                }
                None => {}
            }
        }
        let id = self.insert(&mut map, T::default(), now)?;
        Ok(Begun { id, created: true })
    }

    fn insert(
        &self,
        map: &mut HashMap<SessionId, Session<T>>,
        data: T,
        now: Instant,
    ) -> Result<SessionId, Full> {
        if map.len() >= self.max {
            map.retain(|_, s| s.expires_at > now);
            if map.len() >= self.max {
                return Err(Full);
            }
        }
        let id = SessionId::random();
        map.insert(
            id.clone(),
            Session {
                csrf: CsrfToken::random(),
                expires_at: now + self.lifetime,
                data,
            },
        );
        Ok(id)
    }

    /// Runs `f` on the live session `id`; `None` if there is none.
    pub fn with<R>(
        &self,
        id: &SessionId,
        now: Instant,
        f: impl FnOnce(&mut Session<T>) -> R,
    ) -> Option<R> {
        let mut map = self.lock();
        let s = map.get_mut(id).filter(|s| s.expires_at > now)?;
        Some(f(s))
    }

    /// Moves the session's data to a fresh id with a fresh CSRF token and a new lifetime
    /// (at login, against session fixation). The old id stops working at once.
    pub fn rotate(&self, id: &SessionId, now: Instant) -> Option<SessionId> {
        let mut map = self.lock();
        let old = map.remove(id).filter(|s| s.expires_at > now)?;
        // Removing one made room for one.
        self.insert(&mut map, old.data, now).ok()
    }

    /// Ends the session `id` (logout).
    pub fn end(&self, id: &SessionId) {
        self.lock().remove(id);
    }

    /// Drops every expired session; returns how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, s| s.expires_at > now);
        before - map.len()
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> Sessions<u32> {
        Sessions::new(Duration::from_secs(900), max)
    }

    #[test]
    fn a_presented_live_session_is_kept_an_unknown_one_replaced() {
        let s = store(10);
        let t0 = Instant::now();
        let a = s.begin(None, t0).unwrap();
        assert!(a.created);
        let again = s.begin(Some(a.id.clone()), t0).unwrap();
        assert!(!again.created);
        assert_eq!(again.id, a.id);
        let forged = SessionId::from_cookie(&"ab".repeat(32)).unwrap();
        let b = s.begin(Some(forged.clone()), t0).unwrap();
        assert!(b.created);
        assert_ne!(b.id, forged);
    }

    #[test]
    fn sessions_expire_and_are_swept() {
        let s = store(10);
        let t0 = Instant::now();
        let a = s.begin(None, t0).unwrap();
        s.with(&a.id, t0, |x| x.data = 7).unwrap();
        let later = t0 + Duration::from_secs(901);
        assert!(s.with(&a.id, later, |x| x.data).is_none());
        assert!(s.begin(Some(a.id.clone()), later).unwrap().created);
        assert_eq!(s.sweep(later + Duration::from_secs(901)), 1);
    }

    #[test]
    fn rotation_moves_the_data_and_kills_the_old_id() {
        let s = store(10);
        let t0 = Instant::now();
        let a = s.begin(None, t0).unwrap();
        let old_csrf = s.with(&a.id, t0, |x| {
            x.data = 42;
            x.csrf.expose_secret()
        });
        let b = s.rotate(&a.id, t0).unwrap();
        assert_ne!(a.id, b);
        assert!(s.with(&a.id, t0, |_| ()).is_none());
        assert_eq!(s.with(&b, t0, |x| x.data), Some(42));
        assert_ne!(s.with(&b, t0, |x| x.csrf.expose_secret()), old_csrf);
    }

    #[test]
    fn the_store_is_bounded() {
        let s = store(2);
        let t0 = Instant::now();
        s.begin(None, t0).unwrap();
        s.begin(None, t0).unwrap();
        assert_eq!(s.begin(None, t0).unwrap_err(), Full);
        // Expired ones make room.
        assert!(s.begin(None, t0 + Duration::from_secs(901)).is_ok());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn cookie_values_are_64_hex_digits_and_debug_is_redacted() {
        assert!(SessionId::from_cookie("abc").is_none());
        assert!(SessionId::from_cookie(&"zz".repeat(32)).is_none());
        let id = SessionId::random();
        assert_eq!(id.expose_secret().len(), 64);
        assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
    }
}
