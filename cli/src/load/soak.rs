//! `tandem load --soak DURATION`: a soak test. After the same preparation as the phases
//! (registrations, one verified signature per account, a full key pool), it
//!
//! 1. measures the peak: the flows' mix (`--flows`, each worker taking them in turn) with
//!    every worker (`--concurrency`'s highest level) signing back to back for `--seconds`;
//! 2. drives the same mix at half of that peak (or `--rate`) for the soak's duration: session
//!    `i` may start no earlier than `i / rate` seconds after the start, at most
//!    `rate × duration` sessions in all, by the same workers (a session that overran delays
//!    the next ones of its worker, and the others take them up); every loop ends at the
//!    deadline by itself, and a session that takes longer than [`SESSION_TIMEOUT`] counts as
//!    an error;
//! 3. reads the server's memory (`VmRSS` and `RssAnon` in `/proc/<pid>/status`) every second
//!    and reports each interval (`--soak-interval`): signatures, errors by kind, latency
//!    p50/p99, the server's RSS and the database's size, as a table row on standard output
//!    when the interval ends (a progress line on standard error meanwhile), and in the JSON;
//! 4. judges: no error (in the peak measurement or the soak), and the RSS flat: the highest
//!    reading in the first `--soak-plateau` of the soak is the plateau, and no later reading
//!    may exceed it by more than [`RSS_TOLERANCE`]. A failed judgement is an error (non-zero
//!    exit status) after the report has been written.

use std::sync::Mutex;

use super::*;

/// A session that has no result after this long counts as an error.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// How far above its plateau the server's RSS may go (0.10 = 10%).
const RSS_TOLERANCE: f64 = 0.10;

/// The reported interval: `--soak-interval`, else 30 s, or a quarter of a shorter soak.
fn interval(opts: &LoadOptions, soak: Duration) -> Duration {
    opts.soak_interval
        .unwrap_or_else(|| Duration::from_secs(30).min(soak / 4))
}

/// The plateau window: `--soak-plateau`, else 60 s, or a quarter of a shorter soak.
fn plateau(opts: &LoadOptions, soak: Duration) -> Duration {
    opts.soak_plateau
        .unwrap_or_else(|| Duration::from_secs(60).min(soak / 4))
}

/// Refuses soak options that cannot work, before anything starts.
pub(super) fn check_options(opts: &LoadOptions, soak: Duration) -> anyhow::Result<()> {
    anyhow::ensure!(
        soak >= Duration::from_secs(4),
        "--soak must be at least 4 s"
    );
    let interval = interval(opts, soak);
    anyhow::ensure!(
        interval >= Duration::from_secs(1),
        "--soak-interval must be at least 1 s"
    );
    anyhow::ensure!(
        interval <= soak,
        "--soak-interval ({} s) must not be longer than --soak ({} s)",
        interval.as_secs_f64(),
        soak.as_secs_f64()
    );
    let plateau = plateau(opts, soak);
    anyhow::ensure!(
        plateau < soak,
        "--soak-plateau ({} s) must be shorter than --soak ({} s): the server's memory after \
         the plateau window is what is judged",
        plateau.as_secs_f64(),
        soak.as_secs_f64()
    );
    if let Some(rate) = opts.rate {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0 && rate <= 100_000.0,
            "--rate must be above 0 and at most 100000 signatures per second"
        );
    }
    Ok(())
}

/// The server's memory, from `/proc/<pid>/status`, in MiB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Memory {
    /// Resident set size (`VmRSS`): anonymous memory, mapped files and shared memory.
    pub rss_mib: f64,
    /// Its anonymous part (`RssAnon`): the heap, thread stacks, SQLite's page cache.
    pub rss_anon_mib: f64,
}

/// Reads process `pid`'s memory. Fails when the process has exited (a zombie has no
/// `VmRSS`).
fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (Linux only)"))?;
    let kib = |key: &str| -> Option<f64> {
        let v = status.lines().find_map(|l| l.strip_prefix(key))?;
        let v = v.trim().strip_suffix("kB")?.trim();
        v.parse::<u64>().ok().map(|k| k as f64 / 1024.0)
    };
    Ok(Memory {
        rss_mib: kib("VmRSS:").context("the server has no VmRSS: it has exited")?,
        rss_anon_mib: kib("RssAnon:").unwrap_or(0.0),
    })
}

/// The size of the server's database with its write-ahead log, in MiB.
fn database_mib(database: &std::path::Path) -> f64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    (size(database) + size(std::path::Path::new(&wal))) as f64 / (1024.0 * 1024.0)
}

/// A session's end: when (since the start of its run) and how.
struct Event {
    at: Duration,
    outcome: Result<Timed, String>,
}

/// What the workers of one run share.
#[derive(Default)]
struct Shared {
    /// Ended sessions not yet counted in an interval.
    events: Mutex<Vec<Event>>,
    done: AtomicU64,
    failed: AtomicU64,
    /// The next session's number (paced runs).
    next: AtomicU64,
}

impl Shared {
    fn events(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        // A worker that panicked cannot leave the vector half-changed.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the events that ended before `end` (all of them without `end`).
    fn take(&self, end: Option<Duration>) -> Vec<Event> {
        let mut events = self.events();
        match end {
            None => std::mem::take(&mut *events),
            Some(end) => {
                let (before, after) = std::mem::take(&mut *events)
                    .into_iter()
                    .partition(|e| e.at < end);
                *events = after;
                before
            }
        }
    }
}

/// A paced run: session `i` starts no earlier than `i / rate` seconds after the start, and
/// there are at most `sessions` of them.
#[derive(Debug, Clone, Copy)]
struct Pace {
    rate: f64,
    sessions: u64,
}

/// The kind of a failed session, for counting: the gRPC status code when there is one, else
/// the message with its numbers (ids, counts) masked, cut to 100 characters.
fn error_kind(flow: Flow, e: &anyhow::Error) -> String {
    let masked = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .take(100)
            .collect()
    };
    for cause in e.chain() {
        if let Some(status) = cause.downcast_ref::<tonic::Status>() {
            return format!(
                "{}: gRPC {:?}: {}",
                flow.name(),
                status.code(),
                masked(status.message())
            );
        }
    }
    format!("{}: {}", flow.name(), masked(&format!("{e:#}")))
}

/// Starts one worker per account: each signs with its own account and connections, taking
/// the flows in turn, until `until` (and, paced, until the sessions run out).
async fn start_workers(
    urls: &Urls<'_>,
    accounts: &[Arc<tokio::sync::Mutex<Account>>],
    transport: &[u8],
    flows: &[Flow],
    (t0, until): (Instant, Instant),
    pace: Option<Pace>,
    shared: &Arc<Shared>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut workers = Vec::with_capacity(accounts.len());
    for (k, a) in accounts.iter().enumerate() {
        let (client, mut rp, rest) = worker_clients(urls).await?;
        let (a, shared) = (Arc::clone(a), Arc::clone(shared));
        let (transport, flows) = (transport.to_vec(), flows.to_vec());
        workers.push(tokio::spawn(async move {
            let mut a = a.lock().await;
            // Worker k starts with flow k: at any time the flows are evenly mixed.
            let mut turn = k;
            loop {
                if let Some(p) = pace {
                    let i = shared.next.fetch_add(1, Ordering::Relaxed);
                    if i >= p.sessions {
                        break;
                    }
                    let at = t0 + Duration::from_secs_f64(i as f64 / p.rate);
                    if at >= until {
                        break;
                    }
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                }
                if Instant::now() >= until {
                    break;
                }
                let flow = flows[turn % flows.len()];
                turn += 1;
                let session = sign_flow(flow, (&client, &mut rp, &rest), &mut a, &transport);
                let outcome = match tokio::time::timeout(SESSION_TIMEOUT, session).await {
                    Ok(Ok(t)) => Ok(t),
                    Ok(Err(e)) => Err(error_kind(flow, &e)),
                    Err(_) => Err(format!(
                        "{}: no result within {} s",
                        flow.name(),
                        SESSION_TIMEOUT.as_secs()
                    )),
                };
                let failed = outcome.is_err();
                let counter = if failed { &shared.failed } else { &shared.done };
                counter.fetch_add(1, Ordering::Relaxed);
                shared.events().push(Event {
                    at: t0.elapsed(),
                    outcome,
                });
                if failed {
                    // Do not spin on a persistent failure.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    Ok(workers)
}

/// The sessions of some events: their latencies and their errors by kind.
#[derive(Default)]
struct Tally {
    confirm: Vec<Duration>,
    session: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, events: Vec<Event>) {
        for e in events {
            match e.outcome {
                Ok(t) => {
                    self.confirm.push(t.confirm);
                    self.session.push(t.session);
                }
                Err(kind) => *self.errors.entry(kind).or_default() += 1,
            }
        }
    }

    fn completed(&self) -> u64 {
        self.session.len() as u64
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The peak measurement before the soak.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Peak {
    pub seconds: f64,
    pub completed: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub per_second: f64,
    pub session_ms: Percentiles,
}

/// The flows' mix, unpaced, with every worker, for `--seconds`.
async fn measure_peak(
    opts: &LoadOptions,
    urls: &Urls<'_>,
    p: &Prepared,
    workers: usize,
) -> anyhow::Result<Peak> {
    let shared = Arc::new(Shared::default());
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(opts.seconds);
    let tasks = start_workers(
        urls,
        &p.accounts[..workers],
        &p.transport,
        &p.flows,
        (t0, until),
        None,
        &shared,
    )
    .await?;
    while !tasks.iter().all(|t| t.is_finished()) {
        let el = t0.elapsed().as_secs_f64();
        let n = shared.done.load(Ordering::Relaxed);
        progress(&format!(
            "peak ({workers} workers, unpaced): {el:.0}/{} s, {n} signatures ({:.1}/s), {} errors",
            opts.seconds,
            n as f64 / el.max(1e-3),
            shared.failed.load(Ordering::Relaxed)
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for t in tasks {
        t.await?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let mut tally = Tally::default();
    tally.add(shared.take(None));
    let peak = Peak {
        seconds,
        completed: tally.completed(),
        errors: tally.error_count(),
        per_second: tally.completed() as f64 / seconds,
        session_ms: Percentiles::of(&mut tally.session),
        errors_by_kind: tally.errors,
    };
    progress(&format!(
        "peak: {} signatures in {:.1} s ({:.1}/s) with {workers} workers, {} errors\n",
        peak.completed, peak.seconds, peak.per_second, peak.errors
    ));
    for (kind, n) in &peak.errors_by_kind {
        eprintln!("  {n} x {kind}");
    }
    Ok(peak)
}

/// One reported interval of the soak.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakInterval {
    /// 1-based.
    pub index: usize,
    /// Seconds since the soak's start.
    pub start_s: f64,
    pub end_s: f64,
    /// Sessions that completed in the interval.
    pub completed: u64,
    pub per_second: f64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Confirm round trip (the server's part), milliseconds.
    pub confirm_ms: Percentiles,
    /// Whole session, milliseconds.
    pub session_ms: Percentiles,
    /// The server's highest RSS read in the interval, MiB.
    pub rss_mib_max: f64,
    /// The server's memory at the interval's last reading.
    pub memory_end: Memory,
    /// The database with its write-ahead log at the interval's end, MiB.
    pub database_mib: f64,
}

/// The soak's judgement.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SoakVerdict {
    /// Failed sessions in the peak measurement and the soak.
    pub errors: u64,
    /// The plateau window: the first this many seconds of the soak.
    pub rss_plateau_window_s: f64,
    /// The highest RSS read in the plateau window, MiB.
    pub rss_plateau_mib: f64,
    /// The highest RSS read after it, MiB (0 without readings).
    pub rss_max_after_plateau_mib: f64,
    /// How far that lies above the plateau, per cent (negative: below).
    pub rss_growth_percent: f64,
    /// The most it may, per cent.
    pub rss_limit_percent: f64,
    /// No reading after the window above the plateau by more than the limit (and at least one
    /// reading in and after the window).
    pub rss_flat: bool,
    /// No error and the RSS flat.
    pub passed: bool,
}

/// Judges a soak from its errors and its RSS readings `(seconds since the start, MiB)`.
fn judge(errors: u64, rss: &[(f64, f64)], window_s: f64) -> SoakVerdict {
    let max = |it: &mut dyn Iterator<Item = f64>| {
        it.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let plateau = max(&mut rss.iter().filter(|(t, _)| *t <= window_s).map(|(_, v)| *v));
    let after = max(&mut rss.iter().filter(|(t, _)| *t > window_s).map(|(_, v)| *v));
    let (rss_flat, growth) = match (plateau, after) {
        (Some(p), Some(a)) if p > 0.0 => (a <= p * (1.0 + RSS_TOLERANCE), (a / p - 1.0) * 100.0),
        _ => (false, 0.0),
    };
    SoakVerdict {
        errors,
        rss_plateau_window_s: window_s,
        rss_plateau_mib: plateau.unwrap_or(0.0),
        rss_max_after_plateau_mib: after.unwrap_or(0.0),
        rss_growth_percent: growth,
        rss_limit_percent: RSS_TOLERANCE * 100.0,
        rss_flat,
        passed: errors == 0 && rss_flat,
    }
}

fn print_header() {
    println!(
        "| interval | until s | signatures | per s | errors | confirm p50 ms | confirm p99 ms | session p50 ms | session p99 ms | server RSS MiB (max) | RSS anon MiB | database MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

fn print_row(i: &SoakInterval) {
    println!(
        "| {} | {:.0} | {} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        i.index,
        i.end_s,
        i.completed,
        i.per_second,
        i.errors,
        i.confirm_ms.p50,
        i.confirm_ms.p99,
        i.session_ms.p50,
        i.session_ms.p99,
        i.rss_mib_max,
        i.memory_end.rss_anon_mib,
        i.database_mib
    );
}

/// Runs the soak (after `run` started the server `pid`).
pub(super) async fn run(
    opts: &LoadOptions,
    soak: Duration,
    cfg: &Config,
    urls: &Urls<'_>,
    pid: u32,
) -> anyhow::Result<()> {
    let prepared = prepare(opts, cfg, urls, pid).await?;
    let workers = opts.concurrency.iter().copied().max().unwrap_or(1);
    let flow_names: Vec<&str> = prepared.flows.iter().map(|f| f.name()).collect();
    let memory_before = memory(pid)?;
    let peak = match opts.rate {
        Some(_) => None,
        None => Some(measure_peak(opts, urls, &prepared, workers).await?),
    };
    let rate = match (&peak, opts.rate) {
        (_, Some(rate)) => rate,
        (Some(peak), None) => peak.per_second / 2.0,
        (None, None) => anyhow::bail!("no peak and no --rate"),
    };
    anyhow::ensure!(
        rate > 0.0,
        "the peak measurement completed no signature: nothing to soak at"
    );
    let sessions = (rate * soak.as_secs_f64()).floor().max(1.0) as u64;
    let interval = interval(opts, soak);
    let plateau = plateau(opts, soak);
    let n_intervals = (soak.as_secs_f64() / interval.as_secs_f64()).ceil() as usize;
    println!(
        "\nsoak: {:.0} s at {rate:.1} signatures/s ({}; at most {sessions} sessions) with {workers} \
         workers, flows {}, {} accounts, {}-bit keys, HSM {}; server RSS before: {:.1} MiB; \
         every {:.0} s:\n",
        soak.as_secs_f64(),
        match &peak {
            Some(p) => format!("half of the measured peak of {:.1}/s", p.per_second),
            None => "--rate".to_owned(),
        },
        flow_names.join(","),
        opts.accounts,
        opts.key_bits,
        if opts.softhsm { "SoftHSM" } else { "hsm-sim" },
        memory_before.rss_mib,
        interval.as_secs_f64()
    );
    print_header();

    let shared = Arc::new(Shared::default());
    let t0 = Instant::now();
    let until = t0 + soak;
    let tasks = start_workers(
        urls,
        &prepared.accounts[..workers],
        &prepared.transport,
        &prepared.flows,
        (t0, until),
        Some(Pace { rate, sessions }),
        &shared,
    )
    .await?;
    let mut readings: Vec<(f64, Memory)> = Vec::new();
    let mut intervals: Vec<SoakInterval> = Vec::new();
    let mut all = Tally::default();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let close = |index: usize,
                 (start, end): (f64, f64),
                 events: Vec<Event>,
                 readings: &[(f64, Memory)],
                 all: &mut Tally|
     -> SoakInterval {
        let mut tally = Tally::default();
        tally.add(events);
        let last = index == n_intervals;
        let inside: Vec<&Memory> = readings
            .iter()
            .filter(|(t, _)| *t >= start && (*t < end || last))
            .map(|(_, m)| m)
            .collect();
        // Without a reading inside (an interval shorter than the readings' second), the
        // latest one.
        let fallback = readings.last().map(|(_, m)| m);
        let memory_end = inside
            .last()
            .copied()
            .or(fallback)
            .copied()
            .unwrap_or(Memory {
                rss_mib: 0.0,
                rss_anon_mib: 0.0,
            });
        let rss_mib_max = inside
            .iter()
            .map(|m| m.rss_mib)
            .fold(memory_end.rss_mib, f64::max);
        let i = SoakInterval {
            index,
            start_s: start,
            end_s: end,
            completed: tally.completed(),
            per_second: tally.completed() as f64 / (end - start).max(1e-3),
            errors: tally.error_count(),
            confirm_ms: Percentiles::of(&mut tally.confirm.clone()),
            session_ms: Percentiles::of(&mut tally.session.clone()),
            errors_by_kind: tally.errors.clone(),
            rss_mib_max,
            memory_end,
            database_mib: database_mib(&cfg.database),
        };
        all.confirm.append(&mut tally.confirm);
        all.session.append(&mut tally.session);
        for (k, n) in tally.errors {
            *all.errors.entry(k).or_default() += n;
        }
        i
    };
    let mut server_gone = None;
    loop {
        ticker.tick().await;
        let now = t0.elapsed();
        match memory(pid) {
            Ok(m) => readings.push((now.as_secs_f64(), m)),
            Err(e) => {
                // The server exited: the workers' sessions fail until the deadline; stop now.
                server_gone = Some(e);
                shared.next.store(u64::MAX / 2, Ordering::Relaxed);
            }
        }
        // Close the intervals that ended (the last one once the workers are done: it takes
        // the sessions still running at the deadline).
        while intervals.len() + 1 < n_intervals {
            let end = interval * (intervals.len() as u32 + 1);
            if now < end {
                break;
            }
            let start = interval * intervals.len() as u32;
            let i = close(
                intervals.len() + 1,
                (start.as_secs_f64(), end.as_secs_f64()),
                shared.take(Some(end)),
                &readings,
                &mut all,
            );
            progress("");
            print_row(&i);
            intervals.push(i);
        }
        let finished = tasks.iter().all(|t| t.is_finished());
        if finished || server_gone.is_some() {
            break;
        }
        let (n, failed) = (
            shared.done.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
        );
        progress(&format!(
            "soak {:.0}/{:.0} s at {rate:.1}/s: {n} signatures, {failed} errors, server RSS {:.1} MiB",
            now.as_secs_f64(),
            soak.as_secs_f64(),
            readings.last().map_or(0.0, |(_, m)| m.rss_mib)
        ));
    }
    for t in tasks {
        t.await?;
    }
    let end = t0.elapsed();
    if let Ok(m) = memory(pid) {
        readings.push((end.as_secs_f64(), m));
    }
    // The last interval (and any not closed because the server went away).
    while intervals.len() < n_intervals {
        let index = intervals.len() + 1;
        let start = interval * intervals.len() as u32;
        let stop = if index == n_intervals {
            // The soak's end, or later when sessions ran past it.
            end.max(soak)
        } else {
            interval * index as u32
        };
        let events = shared.take((index < n_intervals).then_some(stop));
        let i = close(
            index,
            (start.as_secs_f64(), stop.as_secs_f64()),
            events,
            &readings,
            &mut all,
        );
        progress("");
        print_row(&i);
        intervals.push(i);
    }
    if let Some(e) = server_gone {
        return Err(e.context("the server exited during the soak"));
    }
    verify_all(&prepared.accounts[..workers], &prepared.flows, urls).await?;

    let peak_errors = peak.as_ref().map_or(0, |p| p.errors);
    let rss: Vec<(f64, f64)> = readings.iter().map(|(t, m)| (*t, m.rss_mib)).collect();
    let verdict = judge(peak_errors + all.error_count(), &rss, plateau.as_secs_f64());
    let completed = all.completed();
    let errors_by_kind = all.errors.clone();
    let (confirm_ms, session_ms) = (
        Percentiles::of(&mut all.confirm),
        Percentiles::of(&mut all.session),
    );
    println!(
        "\n{completed} signatures in {:.1} s ({:.1}/s, target {rate:.1}/s), {} errors; session \
         p50 {:.1} ms, p99 {:.1} ms; confirm p50 {:.1} ms, p99 {:.1} ms",
        end.as_secs_f64(),
        completed as f64 / end.as_secs_f64(),
        all.error_count(),
        session_ms.p50,
        session_ms.p99,
        confirm_ms.p50,
        confirm_ms.p99
    );
    for (kind, n) in &errors_by_kind {
        println!("  {n} x {kind}");
    }
    println!(
        "server RSS: plateau (highest in the first {:.0} s) {:.1} MiB, highest after it {:.1} MiB \
         ({:+.1}%, limit +{:.0}%)",
        verdict.rss_plateau_window_s,
        verdict.rss_plateau_mib,
        verdict.rss_max_after_plateau_mib,
        verdict.rss_growth_percent,
        verdict.rss_limit_percent
    );
    println!(
        "verdict: {} ({} errors{}; RSS {})",
        if verdict.passed { "PASS" } else { "FAIL" },
        verdict.errors,
        if peak_errors > 0 {
            format!(", {peak_errors} of them in the peak measurement")
        } else {
            String::new()
        },
        if verdict.rss_flat { "flat" } else { "NOT flat" }
    );

    if let Some(path) = &opts.json {
        let doc = serde_json::json!({
            "mode": "soak",
            "key_bits": opts.key_bits,
            "accounts": opts.accounts,
            "workers": workers,
            "flows": flow_names,
            "hsm": if opts.softhsm { "SoftHSM" } else { "hsm-sim" },
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "registration": prepared.registration,
            "peak": peak,
            "rate": rate,
            "rate_from": if opts.rate.is_some() { "--rate" } else { "half of the measured peak" },
            "duration_s": soak.as_secs_f64(),
            "interval_s": interval.as_secs_f64(),
            "plateau_s": plateau.as_secs_f64(),
            "max_sessions": sessions,
            "elapsed_s": end.as_secs_f64(),
            "completed": completed,
            "errors": all.error_count(),
            "errors_by_kind": errors_by_kind,
            "confirm_ms": confirm_ms,
            "session_ms": session_ms,
            "memory_before": memory_before,
            "intervals": intervals,
            "memory": readings
                .iter()
                .map(|(t, m)| serde_json::json!({"t_s": t, "rss_mib": m.rss_mib, "rss_anon_mib": m.rss_anon_mib}))
                .collect::<Vec<_>>(),
            "verdict": verdict,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &opts.svg {
        std::fs::write(path, chart(opts, soak, &intervals, &rss, &verdict))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    anyhow::ensure!(
        verdict.passed,
        "the soak failed: {} errors, server RSS {:+.1}% over its plateau (limit +{:.0}%)",
        verdict.errors,
        verdict.rss_growth_percent,
        verdict.rss_limit_percent
    );
    Ok(())
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v`.
fn nice(v: f64) -> f64 {
    let v = v.max(1e-9);
    let e = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * e)
        .find(|s| *s >= v)
        .unwrap_or(10.0 * e)
}

/// An SVG chart over time: each interval's session and confirm latency p99 (left axis), the
/// server's RSS at every reading and its limit (right axis).
fn chart(
    opts: &LoadOptions,
    soak: Duration,
    intervals: &[SoakInterval],
    rss: &[(f64, f64)],
    verdict: &SoakVerdict,
) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 380.0, 60.0, 60.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let max_t = rss
        .iter()
        .map(|(t, _)| *t)
        .fold(soak.as_secs_f64(), f64::max);
    let limit = verdict.rss_plateau_mib * (1.0 + RSS_TOLERANCE);
    let max_ms = nice(
        intervals
            .iter()
            .map(|i| i.session_ms.p99.max(i.confirm_ms.p99))
            .fold(1.0, f64::max)
            * 1.1,
    );
    let max_mib = nice(rss.iter().map(|(_, v)| *v).fold(limit, f64::max) * 1.1);
    let x = |t: f64| left + t / max_t * pw;
    let y_ms = |v: f64| top + ph - v / max_ms * ph;
    let y_mib = |v: f64| top + ph - v / max_mib * ph;
    let polyline = |pts: &[(f64, f64)], color: &str, dash: &str| -> String {
        let d: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>
"#,
            d.join(" ")
        )
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">tandem load --soak: {} accounts, {}-bit keys, {}; {}</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>
<line x1="{}" y1="{top}" x2="{}" y2="{}" stroke="black"/>
"#,
        w / 2.0,
        opts.accounts,
        opts.key_bits,
        if opts.softhsm { "SoftHSM" } else { "hsm-sim" },
        if verdict.passed { "PASS" } else { "FAIL" },
        top + ph,
        left + pw,
        top + ph,
        top + ph,
        left + pw,
        left + pw,
        top + ph,
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let yy = top + ph - f * ph;
        svg.push_str(&format!(
            r##"<line x1="{left}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" fill="#c0392b">{:.0}</text><text x="{}" y="{:.1}" fill="#1f6fb2">{:.0}</text><text x="{:.1}" y="{}" text-anchor="middle">{:.0}</text>
"##,
            left + pw,
            left - 6.0,
            yy + 4.0,
            f * max_ms,
            left + pw + 6.0,
            yy + 4.0,
            f * max_mib,
            left + f * pw,
            top + ph + 16.0,
            f * max_t
        ));
    }
    // The plateau window and the RSS limit.
    let wx = x(verdict.rss_plateau_window_s);
    svg.push_str(&format!(
        r##"<line x1="{wx:.1}" y1="{top}" x2="{wx:.1}" y2="{}" stroke="#999" stroke-dasharray="2,3"/>
<line x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#1f6fb2" stroke-dasharray="6,4"/>
"##,
        top + ph,
        y_mib(limit),
        left + pw,
        y_mib(limit)
    ));
    let rss_pts: Vec<(f64, f64)> = rss.iter().map(|(t, v)| (x(*t), y_mib(*v))).collect();
    svg.push_str(&polyline(&rss_pts, "#1f6fb2", ""));
    let mid = |i: &SoakInterval| x((i.start_s + i.end_s) / 2.0);
    let session: Vec<(f64, f64)> = intervals
        .iter()
        .map(|i| (mid(i), y_ms(i.session_ms.p99)))
        .collect();
    let confirm: Vec<(f64, f64)> = intervals
        .iter()
        .map(|i| (mid(i), y_ms(i.confirm_ms.p99)))
        .collect();
    svg.push_str(&polyline(&session, "#c0392b", ""));
    svg.push_str(&polyline(&confirm, "#c0392b", "5,4"));
    svg.push_str(&format!(
        r##"<text x="{:.1}" y="{:.1}"><tspan fill="#c0392b">latency p99 per interval (session solid, confirm dashed)</tspan></text>
<text x="{:.1}" y="{:.1}"><tspan fill="#1f6fb2">server RSS every second; dashed: plateau + {:.0}%</tspan></text>
<text x="{}" y="{}" text-anchor="middle">seconds since the soak's start (dotted: end of the plateau window)</text>
<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle" fill="#c0392b">latency p99, ms</text>
<text x="{}" y="{}" transform="rotate(90 {} {})" text-anchor="middle" fill="#1f6fb2">server RSS, MiB</text>
</svg>
"##,
        left + 8.0,
        top + 14.0,
        left + 8.0,
        top + 30.0,
        RSS_TOLERANCE * 100.0,
        left + pw / 2.0,
        h - 12.0,
        top + ph / 2.0,
        top + ph / 2.0,
        w - 14.0,
        top + ph / 2.0,
        w - 14.0,
        top + ph / 2.0
    ));
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["", "m", "10x", "-1m", "0", "nan", "9999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    fn readings(values: &[f64]) -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 * 10.0, *v))
            .collect()
    }

    #[test]
    fn flat_rss_passes_and_growth_beyond_ten_per_cent_fails() {
        // Warming up to a plateau of 100 within the window (0..=60 s), then flat.
        let flat = readings(&[
            50.0, 80.0, 95.0, 100.0, 99.0, 98.0, 100.0, 104.0, 109.9, 101.0,
        ]);
        let v = judge(0, &flat, 60.0);
        assert!(v.rss_flat && v.passed, "{v:?}");
        assert_eq!(v.rss_plateau_mib, 100.0);
        assert_eq!(v.rss_max_after_plateau_mib, 109.9);
        assert!((v.rss_growth_percent - 9.9).abs() < 1e-9, "{v:?}");
        // One reading after the window above plateau + 10%.
        let grows = readings(&[
            50.0, 80.0, 95.0, 100.0, 99.0, 98.0, 100.0, 104.0, 110.5, 101.0,
        ]);
        let v = judge(0, &grows, 60.0);
        assert!(!v.rss_flat && !v.passed, "{v:?}");
        // A high reading inside the window is the plateau, not growth.
        let early = readings(&[50.0, 120.0, 95.0, 100.0, 99.0, 98.0, 100.0, 104.0, 110.5]);
        assert!(judge(0, &early, 60.0).rss_flat);
        // Flat memory but an error: failed.
        let v = judge(1, &flat, 60.0);
        assert!(v.rss_flat && !v.passed, "{v:?}");
        // Nothing after the window: nothing shows it flat.
        assert!(!judge(0, &readings(&[100.0, 100.0]), 60.0).rss_flat);
    }

    #[test]
    fn error_kinds_mask_numbers_and_name_grpc_codes() {
        let e = anyhow::anyhow!("the transaction 123e4567 ended with Some(Timeout)");
        assert_eq!(
            error_kind(Flow::Grpc, &e),
            "grpc: the transaction ###e#### ended with Some(Timeout)"
        );
        let e = anyhow::Error::new(tonic::Status::unavailable("connection 7 reset"));
        assert_eq!(
            error_kind(Flow::Rest, &e),
            "rest: gRPC Unavailable: connection # reset"
        );
    }
}
