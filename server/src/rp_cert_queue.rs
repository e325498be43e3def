//! The pool that signs relying parties' queued software certificates in the HSM.
//!
//! ```text
//!  start: creations left CREATING by a stopped process ──▶ QUEUED again
//!  loop:  claim up to rp_certs.batch QUEUED (one transaction: ──▶ CREATING)
//!         ──▶ rp_certs.workers threads build and sign them (issuing CA key in the HSM)
//!         ──▶ complete all of them (one transaction: ──▶ READY, or discarded-and-revoked
//!             when cancelled meanwhile); what could not be signed ──▶ QUEUED again
//!         nothing queued: wait for [`wake`] (a create) or rp_certs.poll_seconds
//! ```
//! The pool is the server's, not a session's: logging out changes nothing, and a kill -9 at
//! any point loses nothing and spends nothing twice (a claimed creation is claimed again
//! after the restart; a credit was spent when it was queued).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::service::App;
use crate::store::{IssuedRpCertRecord, RpCertRecord, unix_now};

/// Wakes the pool: something was queued. (One per process; in a process with several
/// servers, as some tests have, a wake-up is at worst an early look at the queue.)
static WAKE: Notify = Notify::const_new();

/// Tells the pool that creations were queued.
pub fn wake() {
    WAKE.notify_one();
}

/// Starts the pool on the runtime; it runs until the task is aborted.
pub fn start(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match app
            .blocking(|app| Ok(app.store.requeue_creating_rp_certs()))
            .await
        {
            Ok(Ok(n)) if n > 0 => {
                tracing::info!(
                    count = n,
                    "certificate creations queued again after a restart"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot requeue certificate creations"),
            Err(e) => tracing::error!(error = %e, "cannot requeue certificate creations"),
        }
        let poll = Duration::from_secs(app.config.rp_certs.poll_seconds.max(1));
        loop {
            let round = app.blocking(|app| Ok(round(app))).await;
            let busy = match round {
                Ok(Round::Worked) => true,
                Ok(Round::Idle) => false,
                Ok(Round::Failed) | Err(_) => {
                    // The HSM or the store failed: try again later, not in a hot loop.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    false
                }
            };
            if !busy {
                let _ = tokio::time::timeout(poll, WAKE.notified()).await;
            }
        }
    })
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Claimed and completed some: look again at once.
    Worked,
    /// Nothing queued.
    Idle,
    /// Something failed (logged).
    Failed,
}

/// Test hook: when the environment variable `TANDEM_TEST_HOLD_RP_CERT_QUEUE` names a file
/// and that file exists, the pool claims nothing (creations stay QUEUED); tests hold and
/// release the queue by creating and removing the file. Never set it in production.
pub const TEST_HOLD_QUEUE_ENV: &str = "TANDEM_TEST_HOLD_RP_CERT_QUEUE";

fn queue_held() -> bool {
    static FLAG: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| std::env::var_os(TEST_HOLD_QUEUE_ENV).map(Into::into))
        .as_deref()
        .is_some_and(std::path::Path::exists)
}

/// One round: claim a batch, sign it with the pool's threads, complete it.
fn round(app: &App) -> Round {
    if queue_held() {
        return Round::Idle;
    }
    let cfg = &app.config.rp_certs;
    let claimed = match app.store.claim_rp_certs(cfg.batch, unix_now()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot claim certificate creations");
            return Round::Failed;
        }
    };
    if claimed.is_empty() {
        return Round::Idle;
    }
    let (done, failed) = sign_all(app, &claimed, cfg.workers);
    let mut ok = true;
    if !done.is_empty() {
        match app.store.complete_rp_certs(&done, unix_now()) {
            Ok(out) => tracing::info!(count = out.len(), "relying-party certificates issued"),
            Err(e) => {
                // Left CREATING: released below, signed again later (the signed ones were
                // never handed out).
                tracing::error!(error = %e, "cannot store issued certificates");
                ok = false;
                let ids: Vec<String> = done.iter().map(|d| d.id.clone()).collect();
                if let Err(e) = app.store.release_rp_certs(&ids) {
                    tracing::error!(error = %e, "cannot requeue certificate creations");
                }
            }
        }
    }
    if !failed.is_empty() {
        ok = false;
        if let Err(e) = app.store.release_rp_certs(&failed) {
            tracing::error!(error = %e, "cannot requeue certificate creations");
        }
    }
    if ok { Round::Worked } else { Round::Failed }
}

/// Signs the claimed creations with up to `workers` threads; the signed ones and the ids of
/// those that failed.
fn sign_all(
    app: &App,
    claimed: &[RpCertRecord],
    workers: usize,
) -> (Vec<IssuedRpCertRecord>, Vec<String>) {
    let chunk = claimed.len().div_ceil(workers.max(1)).max(1);
    let validity = i64::from(app.config.pki.rp_cert_validity_days) * 86_400;
    let mut names = std::collections::HashMap::new();
    for c in claimed {
        if !names.contains_key(&c.rp_uuid) {
            let name = app
                .store
                .active_relying_party(&c.rp_uuid)
                .ok()
                .flatten()
                .and_then(|rp| rp.names.first().cloned());
            names.insert(c.rp_uuid.clone(), name);
        }
    }
    let names = &names;
    std::thread::scope(|scope| {
        let parts: Vec<_> = claimed
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut done = Vec::with_capacity(part.len());
                    let mut failed = Vec::new();
                    for c in part {
                        let Some(Some(name)) = names.get(&c.rp_uuid) else {
                            tracing::warn!(id = %c.id, rp_uuid = %c.rp_uuid, "certificate creation of a removed relying party: left queued");
                            failed.push(c.id.clone());
                            continue;
                        };
                        let now = unix_now();
                        match app.ca.issue_rp_client(
                            &c.rp_uuid,
                            name,
                            &c.public_key,
                            now - 60,
                            now + validity,
                        ) {
                            Ok((serial, der)) => done.push(IssuedRpCertRecord {
                                id: c.id.clone(),
                                serial,
                                der,
                                not_after: now + validity,
                            }),
                            Err(e) => {
                                tracing::error!(id = %c.id, error = %e, "cannot sign a relying-party certificate");
                                failed.push(c.id.clone());
                            }
                        }
                    }
                    (done, failed)
                })
            })
            .collect();
        let mut done = Vec::with_capacity(claimed.len());
        let mut failed = Vec::new();
        for p in parts {
            match p.join() {
                Ok((d, f)) => {
                    done.extend(d);
                    failed.extend(f);
                }
                Err(_) => tracing::error!("a signing thread panicked"),
            }
        }
        (done, failed)
    })
}
