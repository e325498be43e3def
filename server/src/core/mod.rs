//! The transport-free core: the protocol's decisions as functions of the domain.
//!
//! Typed requests in, typed outcomes out; the store, the HSM, the clock and the random
//! number generator are passed in. The gRPC and REST handlers ([`crate::service`],
//! [`crate::rest`]) only convert wire types to these requests and map the outcomes to
//! status codes, so a rule such as "which key pairs may answer" or the lockout ladder is
//! written once, here or in [`crate::lockout`].
//!
//! Nothing in this module knows tonic, axum, protobuf or JSON.
//!
//! - [`start`]: start a transaction for either relying-party API.
//! - [`confirm`]: judge a device's confirmation (attempt gate, verdict, clone detection).
//! - [`refuse`]: end a transaction the person declined.
//! - [`clone_token`]: renew a key pair's clone-detection token.
//! - [`register`]: registration, from the first request to the account.
//! - [`envelope`]: device envelopes checked and opened in the HSM.
//! - [`certificate`]: an account's current certificate and the level it reaches.
//! - [`origin`]: a proof of origin for a completed AUTH session.
//! - [`portal`]: the self-service portal: a holder's overview and account deletion.

pub mod account;
pub mod auth_session;
pub mod certificate;
pub mod clone_token;
pub mod confirm;
pub mod origin;
pub mod portal;
pub mod refuse;
pub mod rp_mtls;
pub mod start;

pub mod envelope;
pub mod register;

/// Where the core reads the time. Tests pass a fixed or stepped clock.
pub trait Clock: Send + Sync {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;

    /// Unix time in seconds.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::store::unix_now_ms()
    }
}

/// A clock that always says the same time (tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

/// The random number generator the core draws from (identifiers, verification codes,
/// PSS salts, clone tokens). The server passes `OsRng`; tests may pass a seeded one.
pub type Rng<'a> = &'a mut dyn rand_core::CryptoRngCore;

/// A random (version 4) UUID from the RNG's bytes, hyphenated lower case.
pub fn random_uuid(rng: Rng<'_>) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// `len` characters drawn uniformly from `A-Z a-z 0-9` (tokens that travel unencoded).
pub fn random_alphanumeric(rng: Rng<'_>, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut b = [0u8; 1];
        rng.fill_bytes(&mut b);
        // 248 = 4·62: rejection sampling keeps the choice uniform.
        if b[0] < 248 {
            out.push(char::from(ALPHABET[usize::from(b[0] % 62)]));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_also_before_1970() {
        assert_eq!(FixedClock(1_999).now(), 1);
        assert_eq!(FixedClock(-1).now(), -1);
        assert!(SystemClock.now() > 1_700_000_000);
    }

    #[test]
    fn random_values_come_from_the_rng_passed_in() {
        use rand::SeedableRng as _;
        let draw = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            (random_uuid(&mut rng), random_alphanumeric(&mut rng, 24))
        };
        let (id, token) = draw(7);
        assert_eq!(draw(7), (id.clone(), token.clone()));
        assert_ne!(draw(8).0, id);
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(token.len(), 24);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
