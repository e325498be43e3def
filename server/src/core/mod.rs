//! The transport-free core: the protocol's decisions as functions of the domain.
//!
//! Typed requests in, typed outcomes out; the store, the HSM, the clock and the random
//! number generator are passed in. The gRPC and REST handlers ([`crate::service`],
//! [`crate::rest`]) only convert wire types to these requests and map the outcomes to
//! status codes, so a rule such as "which key pairs may answer" or the lockout ladder is
//! written once, here or in [`crate::lockout`].
//!
//! Nothing in this module knows tonic, axum, protobuf or JSON.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_also_before_1970() {
        assert_eq!(FixedClock(1_999).now(), 1);
        assert_eq!(FixedClock(-1).now(), -1);
        assert!(SystemClock.now() > 1_700_000_000);
    }
}
