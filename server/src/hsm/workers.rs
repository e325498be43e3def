//! Bounded HSM calls: [`Hsm::bounded`] runs HSM work on a reused "hsm-call" worker thread
//! ([`HSM_CALL_THREAD`]) and waits at most a time-out for it. A PKCS#11 call cannot be
//! cancelled, so one that misses its deadline is left running; while too many are overdue,
//! new calls fail at once.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Hsm, HsmError, lock};

/// Calls left running past their deadline ([`Hsm::bounded`]) before new bounded calls are
/// refused at once: a stuck HSM must not pile up threads without end.
const MAX_OVERDUE_CALLS: usize = 16;

/// The name of the worker threads that make the HSM calls of [`Hsm::bounded`] (`tandem load`
/// reports their CPU time apart from the rest of the server's).
pub const HSM_CALL_THREAD: &str = "hsm-call";

/// A job for an "hsm-call" worker thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle "hsm-call" workers, each waiting on its own channel, by worker number. Workers are
/// kept and reused: starting a thread for every bounded call (two per signature) cost
/// measurable CPU. A worker stuck in an overdue call is simply not idle; a new one is
/// started when none is (the overdue cap of [`Hsm::bounded`] limits how many can be stuck).
/// A worker idle for a minute ends.
static IDLE_WORKERS: Mutex<Vec<(u64, std::sync::mpsc::Sender<Job>)>> = Mutex::new(Vec::new());

impl Hsm {
    /// Runs `f` (HSM work) on a worker thread and waits at most `timeout` for it.
    ///
    /// PKCS#11 calls cannot be cancelled, so a call that misses its deadline is left
    /// running and its result is dropped when it ends; the caller gets
    /// [`HsmError::Timeout`] at once. `f` must therefore not change anything outside the HSM
    /// (the caller records the outcome). While `MAX_OVERDUE_CALLS` calls are overdue,
    /// new ones fail at once with [`HsmError::Unresponsive`].
    pub fn bounded<T, E>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&Hsm) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<HsmError> + Send + 'static,
    {
        const RUNNING: u8 = 0;
        const DONE: u8 = 1;
        const ABANDONED: u8 = 2;
        let overdue = self.inner.overdue.load(Ordering::SeqCst);
        if overdue >= MAX_OVERDUE_CALLS {
            return Err(HsmError::Unresponsive { overdue }.into());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let state = Arc::new(AtomicU8::new(RUNNING));
        let hsm = self.clone();
        let worker_state = Arc::clone(&state);
        let span = tracing::Span::current();
        run_on_worker(Box::new(move || {
            /// Marks the call done when the worker ends it, also by a panic.
            struct Done(Hsm, Arc<AtomicU8>);
            impl Drop for Done {
                fn drop(&mut self) {
                    if self.1.swap(DONE, Ordering::SeqCst) == ABANDONED {
                        self.0.inner.overdue.fetch_sub(1, Ordering::SeqCst);
                        tracing::warn!("an overdue HSM call has ended; its result was dropped");
                    }
                }
            }
            let _entered = span.entered();
            let done = Done(hsm, worker_state);
            let result = f(&done.0);
            // The receiver may be gone (deadline missed): the result is dropped.
            let _ = tx.send(result);
            drop(done);
        }))?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Counted before the state flips, so the worker's decrement never comes first.
                self.inner.overdue.fetch_add(1, Ordering::SeqCst);
                if state.swap(ABANDONED, Ordering::SeqCst) == DONE {
                    // It finished just now.
                    self.inner.overdue.fetch_sub(1, Ordering::SeqCst);
                    return rx
                        .recv()
                        .map_err(|_| HsmError::Worker("the HSM call panicked"))?;
                }
                Err(HsmError::Timeout {
                    after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                }
                .into())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(HsmError::Worker("the HSM call panicked").into())
            }
        }
    }
}

/// Runs `job` on an idle worker, or on a new one.
fn run_on_worker(job: Job) -> Result<(), HsmError> {
    static NEXT_WORKER: AtomicU64 = AtomicU64::new(0);
    let mut job = job;
    while let Some((_, worker)) = lock(&IDLE_WORKERS).pop() {
        match worker.send(job) {
            Ok(()) => return Ok(()),
            // That worker has ended (it cannot, while listed; defensive): try the next one.
            Err(std::sync::mpsc::SendError(returned)) => job = returned,
        }
    }
    let id = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    tx.send(job)
        .map_err(|_| HsmError::Worker("no thread for the HSM call"))?;
    std::thread::Builder::new()
        .name(HSM_CALL_THREAD.into())
        .spawn(move || {
            loop {
                match rx.recv_timeout(Duration::from_secs(60)) {
                    Ok(job) => {
                        // A panic ends the job (its guard marks the call done, its result
                        // channel closes, the caller reports it), not the worker.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        lock(&IDLE_WORKERS).push((id, tx.clone()));
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        let mut idle = lock(&IDLE_WORKERS);
                        if let Some(at) = idle.iter().position(|(i, _)| *i == id) {
                            // Still listed, so nobody holds this worker: it may end.
                            idle.remove(at);
                            break;
                        }
                        // A caller took it from the list just now: its job is on the way.
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        })
        .map_err(|_| HsmError::Worker("no thread for the HSM call"))?;
    Ok(())
}
