//! The SQLite backend (rusqlite, bundled): [`SqliteStore`] implements every store trait,
//! one file per area; `schema.rs` holds the migrations.
//!
//! Every state change runs in one SQLite transaction (`BEGIN IMMEDIATE`, so writers are
//! serialised at the database), in WAL mode with `synchronous = FULL`: what a call returned
//! as committed survives a crash or `SIGKILL`, and a power cut.
//!
//! Two kinds of write are committed without their own `fsync` (`synchronous = NORMAL` for
//! that commit): creating a transaction (gRPC `StartSignature`, a REST session start), and
//! taking pooled server keys for a registration. Such a commit is in the WAL when the call
//! returns, so it survives a crash or `SIGKILL` of the server; it becomes safe from a power
//! cut with the next synchronous commit, whichever write that is (WAL frames are made
//! durable in order): at the latest the PIN gate of the transaction's own confirmation, or
//! the registration's own key submission. A power cut in between loses only that new,
//! unanswered transaction, or puts the keys back in the pool: no PIN attempt (those commits
//! are always synchronous), no signature, nothing a device has acted on. This is the
//! "batched commit where durability allows" of the performance work: one `fsync` fewer per
//! signature and per registration (docs/BENCHMARKS.md).
//!
//! The store is synchronous. The async shell calls it from `spawn_blocking` threads; the
//! connection sits behind a `std::sync::Mutex` that is never held across an `.await`.

mod accounts;
mod audit;
mod ca_revocations;
mod certificates;
mod key_pairs;
mod registrations;
mod relying_parties;
mod replies;
mod rp_certs;
mod rp_sessions;
mod schema;
mod transactions;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, TransactionBehavior, params};

#[cfg(doc)]
use super::Transactions;
use super::{Result, StoreError, unix_now};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(Box::new(e))
    }
}

/// The SQLite store: one connection (WAL, `synchronous = FULL`) behind a mutex.
#[derive(Debug)]
pub struct SqliteStore {
    // std Mutex: held only for synchronous rusqlite calls, never across an `.await`.
    conn: Mutex<Connection>,
    /// Set (under the mutex) while the connection may still be at `synchronous = NORMAL`:
    /// a deferred write could not restore `FULL`. The next [`SqliteStore::write`] restores it
    /// before it begins, or fails.
    relaxed: AtomicBool,
    /// A time (unix seconds) at which no running transaction was due to expire, as found
    /// by [`Transactions::expire_transactions`]; it needs no query for a time at or before it.
    /// Creating a transaction lowers it below the new expiry. Transactions that another
    /// process creates already expired (none does) would wait for the sweeper's next,
    /// later time.
    clean_through: AtomicI64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub fn open(path: &Path) -> Result<Self> {
        // Owner-only (0600) before SQLite opens it: the WAL and shared-memory files SQLite
        // creates take the database file's mode (`fs_mode`).
        crate::fs_mode::prepare_database(path)?;
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory store for unit tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A page cache of up to 8 MiB (the default is 2 MiB). With the default, lookups on a
        // server that has signed for a while read most pages back from the OS (`pread`);
        // 4, 16 and 64 MiB gave the same CPU per signature on a large database, and a larger
        // cache fills for minutes after a start, which a soak sees as memory growth
        // (docs/BENCHMARKS.md, "Soak").
        conn.pragma_update(None, "cache_size", -8192)?;
        // Prepared statements are reused (`prepare_cached`): parsing SQL cost about 3% of the
        // server's CPU per signature.
        conn.set_prepared_statement_cache_capacity(128);
        // Destroyed secrets (wrapped keys, encrypted shares) are overwritten on disk.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?
            .query_row([], |r| r.get(0))?;
        let known = schema::MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if current > known {
            return Err(StoreError::Conflict(format!(
                "database schema version {current} is newer than this server ({known}); upgrade the server"
            )));
        }
        for (version, description, sql) in schema::MIGRATIONS {
            if *version > current {
                tx.execute_batch(sql)?;
                tx.prepare_cached("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)")?.execute(
                    params![version, description, unix_now()],
                )?;
            }
        }
        tx.commit()?;
        if current < schema::SEALED_REPLIES_MIGRATION && current > 0 {
            // Older WAL frames may still hold answers stored in clear: copy the pages back
            // and truncate the log.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            relaxed: AtomicBool::new(false),
            clean_through: AtomicI64::new(i64::MIN),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (SQLite rolls back
        // the open transaction when it is dropped), so poisoning is ignored.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One synchronous write transaction: committed and `fsync`'ed when it returns.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn();
        if self.relaxed.load(Ordering::SeqCst) {
            conn.pragma_update(None, "synchronous", "FULL")?;
            self.relaxed.store(false, Ordering::SeqCst);
        }
        in_transaction(&conn, f)
    }

    /// A write transaction whose commit is not `fsync`'ed by itself: it survives a crash or
    /// kill of the process, and a power cut once the next synchronous commit is made (see
    /// the module documentation). Only for creating transactions and taking pooled keys;
    /// never for PIN attempts.
    fn write_deferred<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn();
        // The pragma acts when it is prepared (so it cannot be a cached statement) and not
        // inside a transaction.
        self.relaxed.store(true, Ordering::SeqCst);
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let out = in_transaction(&conn, f);
        if conn.pragma_update(None, "synchronous", "FULL").is_ok() {
            self.relaxed.store(false, Ordering::SeqCst);
        }
        out
    }
}

/// `f` in one write transaction (`BEGIN IMMEDIATE`), committed when it succeeds.
fn in_transaction<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    /// Rolls the transaction back unless it was committed: on an error, and on a panic in
    /// `f` (the connection stays usable for the next caller).
    struct Open<'c> {
        conn: &'c Connection,
        committed: bool,
    }
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            if !self.committed && !self.conn.is_autocommit() {
                // A failed rollback leaves nothing to undo (SQLite has ended it already).
                let _ = self
                    .conn
                    .prepare_cached("ROLLBACK")
                    .and_then(|mut s| s.execute([]));
            }
        }
    }
    // Cached statements, unlike rusqlite's `Transaction`, which parses `BEGIN` and `COMMIT`
    // anew each time (`execute_batch`).
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let mut open = Open {
        conn,
        committed: false,
    };
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    open.committed = true;
    Ok(out)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_portal;
#[cfg(test)]
mod tests_rp_certs;
