//! Durable state behind traits: registrations and the server key pool, accounts, key pairs
//! and the PIN attempt gate, transactions, REST RP sessions, certificates, CA revocations,
//! relying parties, the audit log and stored replies.
//!
//! ```text
//!   service/, rest/, http.rs, run.rs ──▶ Arc<dyn Store> ──▶ SqliteStore (store/sqlite/)
//!                                        (traits.rs)       (a later backend: store/postgres/)
//! ```
//!
//! - [`traits`]: one trait per area ([`Replies`], [`Registrations`], [`Accounts`],
//!   [`KeyPairs`], [`Transactions`], [`RpSessions`], [`Certificates`], [`CaRevocations`],
//!   [`RelyingParties`], [`Audit`]) and [`Store`], all of them together (blanket
//!   implementation). The traits are object safe: the server holds an `Arc<dyn Store>`.
//!   `use crate::store::prelude::*` brings the traits into scope for method calls.
//! - The domain types ([`Account`], [`KeyPair`], [`TxRecord`], [`EndResult`], ...) and
//!   [`StoreError`] are backend-neutral; [`names`] holds the stored names of enumerated
//!   values, which every backend writes alike.
//! - [`sqlite`]: the SQLite implementation ([`SqliteStore`]), one file per area.
//!
//! # What every backend promises
//!
//! - **One database transaction per call that changes state.** Each method documents what
//!   it changes; all of it commits together or not at all, and a call that fails (a
//!   conflict, a missing record, bad input) changes nothing. Writers are serialised: a
//!   method that reads and then writes (the attempt gate, a verdict, claiming a device link,
//!   taking pooled keys) sees no other writer in between.
//! - **Audit records and revocations commit with their cause**: disabling a key pair revokes
//!   its certificates and is audited in the same transaction.
//! - **Stored replies commit with the state change they answer.** Methods that take a
//!   [`Reply`] store it in the same transaction; the caller built it before the call (for
//!   each outcome the method can choose between), so the store never calls back into the
//!   service, and the answer the caller returns is exactly the stored one.
//! - **Durability.** A call has committed durably when it returns, except the two writes the
//!   SQLite module documents as deferred (creating a transaction, taking pooled keys), which
//!   survive a crash of the process and become durable with the next synchronous commit. A
//!   PIN attempt is always counted durably before its share is judged ([`KeyPairs`] says
//!   how: read the counters, ask [`crate::lockout::LockoutPolicy::gate`], write the
//!   decision).
//! - **Relying parties' software certificates ([`RpCerts`]) never lose or double a
//!   credit.** Queuing N creations spends N credits or refuses all of them; a cancellation
//!   (only while queued or creating) turns the creation into a voucher in the same
//!   transaction; redeeming a voucher adds one credit exactly once, whatever the number of
//!   concurrent calls; a worker claims queued creations (queued → creating) and completes
//!   them in batches, and a completion counts only for a creation still creating: one
//!   cancelled meanwhile keeps the signed serial as revoked, so that certificate never
//!   works. Creations left creating by a crash are queued again at start. Every change is
//!   audited in its transaction.
//! - **Lockout lives in the policy**, not in the backend: a backend reads counters, asks
//!   the policy and writes what it says.
//!
//! # Adding a backend
//!
//! Add a module tree beside `sqlite/` (e.g. `store/postgres/`) with a type that implements
//! every area trait, keeping the schema's meaning and the stored names of [`names`]; it is
//! then a [`Store`]. Only the place that opens the store (`run.rs`, the operator commands)
//! chooses the backend; the core and the handlers, written against `dyn Store`, stay as they
//! are. `sqlite/tests.rs` is the behaviour a second backend's tests should repeat.

pub mod names;
mod rp_cert_types;
pub mod sqlite;
pub mod traits;
mod types;

pub use rp_cert_types::*;
pub use sqlite::SqliteStore;
pub use traits::{
    Accounts, Audit, CaRevocations, Certificates, KeyPairs, Registrations, RelyingParties, Replies,
    RpCerts, RpSessions, Store, Transactions,
};
pub use types::*;

/// The store traits, for method calls on an `Arc<dyn Store>` or a backend:
/// `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::traits::{
        Accounts, Audit, CaRevocations, Certificates, KeyPairs, Registrations, RelyingParties,
        Replies, RpCerts, RpSessions, Store, Transactions,
    };
}
