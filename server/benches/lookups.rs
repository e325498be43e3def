//! Lookups against the number of registered accounts: the store calls every signature
//! makes (device authentication, account by document number, key pair, pending
//! transactions), timed on a real SQLite file holding 1 000, 10 000, 100 000 and 1 000 000
//! accounts (two key pairs each, moduli of real size). Prints a Markdown table
//! (docs/BENCHMARKS.md).
//!
//! ```text
//! cargo bench -p tandem-server --bench lookups                 # up to 1 000 000 accounts
//! cargo bench -p tandem-server --bench lookups -- 100000       # up to a smaller size
//! ```
//!
//! The accounts are inserted in bulk with plain SQL (one transaction per step) into the
//! schema the server creates (`SqliteStore::open` runs the migrations); the lookups then go
//! through the server's own store functions (`SqliteStore`). About 1.3 GB of disk at 1 000 000 accounts,
//! in a temporary directory.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use rusqlite::params;
use tandem_client_core::types::KeyType;
use tandem_server::store::prelude::*;
use tandem_server::store::{SqliteStore, secret_hash, unix_now};

fn account_id(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn document(i: u64) -> String {
    format!("PNOEE-{:011}-LOAD-Q", 30_000_000_000u64 + i)
}

fn device_secret(i: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&i.to_be_bytes());
    s
}

/// Inserts accounts `from..to` with two key pairs each.
fn insert(conn: &mut rusqlite::Connection, from: u64, to: u64) {
    let tx = conn.transaction().unwrap();
    {
        let mut acc = tx
            .prepare(
                "INSERT INTO accounts (id, document_number, device_id, device_secret_hash,
                    given_name, surname, country, national_id, created_at, expires_at, state)
                 VALUES (?1, ?2, ?3, ?4, 'LOAD', 'TESTNUMBER', 'EE', ?5, ?6, ?7, 'ACTIVE')",
            )
            .unwrap();
        let mut kp = tx
            .prepare(
                "INSERT INTO key_pairs (account_id, key_type, client_modulus, server_modulus,
                    composite_modulus, server_share_blob, server_key_blob, status,
                    clone_token_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'ACTIVE', ?8)",
            )
            .unwrap();
        let now = unix_now();
        let mut n = vec![0u8; 384];
        let mut composite = vec![0u8; 768];
        let share = vec![0x5au8; 414];
        let wrapped = vec![0xa5u8; 1800];
        for i in from..to {
            let id = account_id(i);
            let mut device = [0u8; 16];
            device[..8].copy_from_slice(&i.to_be_bytes());
            acc.execute(params![
                id,
                document(i),
                device.as_slice(),
                secret_hash(&device_secret(i)),
                format!("3{:010}", i),
                now,
                now + 3 * 365 * 86400,
            ])
            .unwrap();
            for kt in ["AUTH", "SIGN"] {
                OsRng.fill_bytes(&mut n);
                OsRng.fill_bytes(&mut composite);
                kp.execute(params![
                    id,
                    kt,
                    n,
                    n,
                    composite,
                    share,
                    wrapped,
                    secret_hash(&n)
                ])
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

/// Median of `n` timed calls of `f`, each on another random account below `accounts`.
fn time(n: usize, accounts: u64, mut f: impl FnMut(u64)) -> Duration {
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let i = OsRng.next_u64() % accounts;
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[n / 2]
}

fn main() {
    let max: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();

    let sizes: Vec<u64> = [1_000u64, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|s| *s <= max)
        .collect();
    let mut have = 0;
    let mut rows: Vec<(u64, [Duration; 4])> = Vec::new();
    let samples = 2000;
    for &size in &sizes {
        let t = Instant::now();
        while have < size {
            let step = (size - have).min(50_000);
            insert(&mut conn, have, have + step);
            have += step;
            eprint!("\r{have} accounts ({:.0} s)", t.elapsed().as_secs_f64());
        }
        eprintln!();
        // Measured as a running server would see it: the WAL checkpointed, the pages warm.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let now = unix_now();
        time(samples, size, |i| {
            store
                .authenticate_device(&account_id(i), &device_secret(i))
                .unwrap();
            store.account_by_document(&document(i)).unwrap();
            store.key_pair(&account_id(i), KeyType::Sign).unwrap();
        });
        let auth = time(samples, size, |i| {
            let a = store
                .authenticate_device(&account_id(i), &device_secret(i))
                .unwrap();
            assert!(a.is_some());
        });
        let by_doc = time(samples, size, |i| {
            store.account_by_document(&document(i)).unwrap();
        });
        let key_pair = time(samples, size, |i| {
            store.key_pair(&account_id(i), KeyType::Sign).unwrap();
        });
        let pending = time(samples, size, |i| {
            store.pending_for_account(&account_id(i), now).unwrap();
        });
        rows.push((size, [auth, by_doc, key_pair, pending]));
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "Median of {samples} lookups of random accounts, µs (ratio to the 1 000-account figure):\n"
    );
    println!(
        "| accounts | authenticate device | account by document number | key pair | pending transactions |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let base = rows[0].1;
    for (size, t) in &rows {
        let cells: Vec<String> = t
            .iter()
            .zip(base.iter())
            .map(|(d, b)| format!("{:.1} ({:.2}x)", us(*d), us(*d) / us(*b)))
            .collect();
        println!("| {size} | {} |", cells.join(" | "));
    }
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "\nDatabase file: {:.0} MB at {have} accounts.",
        bytes as f64 / 1e6
    );

    // One account's history: its pending list (one running transaction) while its completed
    // transactions grow. The pending list reads the partial index of running targets
    // (migration 8), so its cost must not follow the history.
    let owner = account_id(0);
    running_transaction(&mut conn, &owner);
    let mut history_rows = Vec::new();
    let mut done = 0;
    for &h in &[0u64, 1_000, 10_000, 100_000] {
        if h > done {
            completed_history(&mut conn, &owner, done, h);
            done = h;
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let now = unix_now();
        assert_eq!(store.pending_for_account(&owner, now).unwrap().len(), 1);
        let t = time(samples, 1, |_| {
            store.pending_for_account(&owner, now).unwrap();
        });
        history_rows.push((h, t));
    }
    println!(
        "\nPending list of one account against its history (completed transactions), median \
         of {samples}, µs (ratio to no history), {have} accounts:\n"
    );
    println!("| completed transactions of the account | pending list |");
    println!("|---:|---:|");
    let base = history_rows[0].1;
    for (h, t) in &history_rows {
        println!("| {h} | {:.1} ({:.2}x) |", us(*t), us(*t) / us(base));
    }
}

/// Inserts one running transaction for `account` (expiring in an hour).
fn running_transaction(conn: &mut rusqlite::Connection, account: &str) {
    let now = unix_now() as i64;
    let tx = conn.transaction().unwrap();
    insert_tx(&tx, "bench-running", account, now);
    tx.commit().unwrap();
}

/// Inserts transactions `from..to` for `account` as the server leaves them: started (a
/// running target), then completed (the trigger clears the target's `running` flag).
fn completed_history(conn: &mut rusqlite::Connection, account: &str, from: u64, to: u64) {
    let now = unix_now() as i64;
    let tx = conn.transaction().unwrap();
    for i in from..to {
        let id = format!("bench-history-{i:012}");
        insert_tx(&tx, &id, account, now - 3600);
        tx.execute(
            "UPDATE transactions SET state = 'COMPLETE', end_result = 'OK', completed_at = ?2
             WHERE id = ?1",
            params![id, now - 3000],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// One running SIGNATURE transaction with its target row.
fn insert_tx(tx: &rusqlite::Transaction<'_>, id: &str, account: &str, created_at: i64) {
    tx.execute(
        "INSERT INTO transactions (id, kind, relying_party, key_type, hash, scheme, digest,
            display_text, verification_code, vc_choices, state, created_at, expires_at)
         VALUES (?1, 'SIGNATURE', 'Bench', 'SIGN', 'SHA256', 'PKCS1_V15', ?2, 'history',
            '1234', '', 'RUNNING', ?3, ?4)",
        params![id, vec![0u8; 32], created_at, created_at + 7200],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO transaction_targets (transaction_id, account_id, encoded_message)
         VALUES (?1, ?2, ?3)",
        params![id, account, vec![0u8; 768]],
    )
    .unwrap();
}
