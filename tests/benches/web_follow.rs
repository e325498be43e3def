//! Benchmark of the Demo Bank login page's session following (issue 23, "Performance";
//! results in docs/BENCHMARKS.md).
//!
//! A real server (hsm-sim, REST RP API over HTTPS) and a real `tandem web` on 127.0.0.1, and
//! `WEB_BENCH_BROWSERS` (200) simulated browsers, each with its own session cookie and its own
//! HTTP client (own TLS connections), doing what `/static/login.js` does: fetch
//! `/bank/login/qr.png` every second and keep one `/bank/login/status` long poll open. Three
//! phases:
//!
//! 1. idle with the QR refresh: CPU of the server and the web process (utime + stime from
//!    `/proc/PID/stat`) over `WEB_BENCH_SECONDS` (30) s, as % of one core;
//! 2. idle without the QR refresh (status long polls only), the same window;
//! 3. `WEB_BENCH_CONFIRMATIONS` (100) QR logins, one after another, each on another of the
//!    open logins: the bench fetches that browser's current QR PNG, decodes it (rqrr), and a
//!    simulated phone (`tandem device scan`, three registered phones in turn) confirms; the
//!    latency runs from the moment the phone prints the server's ACCEPTED answer to the moment
//!    that browser's waiting status poll answers "ok". The browser then goes on as the page
//!    does (`/bank/login/done`) and opens a new login, so the count of open logins stays.
//!
//! Run: `cargo build --release -p tandem-cli -p tandem-hsm-sim`, then
//! `TANDEM_BIN=$PWD/target/release/tandem cargo bench -p tandem-tests --bench web_follow`
//! (without `TANDEM_BIN` the bench builds both itself). `WEB_BENCH_JSON=FILE` also writes the
//! figures as JSON. About 3 minutes.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // a benchmark

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::SET_COOKIE;
use tandem_tests::web::{COOKIE, Phone, Web, WebOptions, start_web};
use tandem_tests::{MARY, OTHER, Person, ServerOptions, TestServer, rp_api_table, timeouts};
use tokio::sync::mpsc;

/// The third phone's owner.
const THIRD: Person = Person {
    given: "BENCH",
    surname: "THIRD",
    country: "EE",
    id: "2",
};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} is not a number"))
        })
        .unwrap_or(default)
}

/// Counters shared by all simulated browsers.
#[derive(Default)]
struct Counters {
    qr_ok: AtomicU64,
    qr_failed: AtomicU64,
    status_answers: AtomicU64,
    status_failed: AtomicU64,
    logins_started: AtomicU64,
}

/// One simulated browser.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Mutex<Option<String>>,
    /// Each end of a login seen by the status poll: when, and its `state`.
    ended: tokio::sync::Mutex<mpsc::UnboundedReceiver<(Instant, String)>>,
}

impl Browser {
    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = self.cookie.lock().unwrap().as_deref() {
            r = r.header("cookie", format!("{COOKIE}={c}"));
        }
        r
    }

    /// Opens the login page with a fresh session (as a new tab would).
    async fn open_login(&self, c: &Counters) -> anyhow::Result<()> {
        *self.cookie.lock().unwrap() = None;
        let resp = self.request("/bank/").send().await?;
        anyhow::ensure!(resp.status().is_success(), "GET /bank/: {}", resp.status());
        for v in resp.headers().get_all(SET_COOKIE) {
            if let Some(rest) = v.to_str()?.strip_prefix(&format!("{COOKIE}=")) {
                *self.cookie.lock().unwrap() = rest.split(';').next().map(str::to_owned);
            }
        }
        let page = resp.text().await?;
        anyhow::ensure!(
            page.contains("/bank/login/qr.png"),
            "no QR code on the page"
        );
        c.logins_started.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn qr_png(&self, n: u64) -> anyhow::Result<Vec<u8>> {
        let resp = self
            .request(&format!("/bank/login/qr.png?n={n}"))
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "QR: {}", resp.status());
        Ok(resp.bytes().await?.to_vec())
    }
}

/// login.js's `setInterval`: the QR image every second while `on`.
async fn qr_refresh(b: Arc<Browser>, on: Arc<AtomicBool>, c: Arc<Counters>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 1.. {
        tick.tick().await;
        if !on.load(Ordering::Relaxed) {
            continue;
        }
        match b.qr_png(n).await {
            Ok(_) => c.qr_ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => c.qr_failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// login.js's status long poll; at the end of a login it follows `next` as the page does
/// and opens a new login.
async fn follow(
    b: Arc<Browser>,
    ended: mpsc::UnboundedSender<(Instant, String)>,
    c: Arc<Counters>,
) {
    loop {
        let answer = async {
            let resp = b.request("/bank/login/status").send().await?;
            anyhow::ensure!(resp.status().is_success(), "status: {}", resp.status());
            Ok::<_, anyhow::Error>(resp.json::<serde_json::Value>().await?)
        }
        .await;
        let at = Instant::now();
        let s = match answer {
            Ok(s) => s,
            Err(_) => {
                c.status_failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        c.status_answers.fetch_add(1, Ordering::Relaxed);
        let state = s["state"].as_str().unwrap_or("").to_owned();
        if state == "waiting" {
            continue;
        }
        let _ = ended.send((at, state));
        if let Some(next) = s["next"].as_str() {
            let _ = b.request(next).send().await;
        }
        while b.open_login(&c).await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// CPU time (utime + stime) of a process in seconds.
fn cpu_seconds(pid: u32, tick: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); `after` starts at field 3.
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / tick
}

fn clock_tick() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// CPU of server, web and this process over `window`, as % of one core.
async fn measure(pids: [u32; 3], window: Duration, tick: f64) -> [f64; 3] {
    let before = pids.map(|p| cpu_seconds(p, tick));
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let wall = t0.elapsed().as_secs_f64();
    let after = pids.map(|p| cpu_seconds(p, tick));
    [0, 1, 2].map(|i| 100.0 * (after[i] - before[i]) / wall)
}

/// The phone's `scan` command runs; the moment its ACCEPTED line arrives.
fn scan(mut cmd: Command) -> anyhow::Result<Instant> {
    let mut child = cmd
        .env("TANDEM_PIN", "1234")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut accepted = None;
    let mut first = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        if accepted.is_none() && line.trim() == "ACCEPTED" {
            accepted = Some(Instant::now());
        } else if first.is_empty() {
            first = line;
        }
    }
    child.wait()?;
    accepted.ok_or_else(|| anyhow::anyhow!("the phone's answer was not ACCEPTED: {first}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn lscpu_model() -> String {
    let out = Command::new("lscpu")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown".into())
}

fn build_hsm_sim() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Both together, as `tandem_bin()` will not rebuild them then (same features).
    cmd.args(["build", "-q", "-p", "tandem-cli", "-p", "tandem-hsm-sim"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    assert!(cmd.status().unwrap().success(), "building hsm-sim failed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let browsers = env_or("WEB_BENCH_BROWSERS", 200) as usize;
    let window = Duration::from_secs(env_or("WEB_BENCH_SECONDS", 30));
    let confirmations = env_or("WEB_BENCH_CONFIRMATIONS", 100) as usize;
    if std::env::var_os("TANDEM_BIN").is_none() {
        build_hsm_sim();
    }
    let tick = clock_tick();

    // The server: hsm-sim, REST RP API over HTTPS; logins live 10 min (the bench's length
    // and more), QR codes are accepted as long, and the RP's rate limit lets 200 logins
    // start at once.
    let rp_api = rp_api_table(600, false)
        .replace("tls = false", "tls = true")
        .replace("rate_limit_per_second = 50", "rate_limit_per_second = 1000")
        .replace("rate_limit_burst = 100", "rate_limit_burst = 1000");
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api),
        timeouts: Some(timeouts(600, 600)),
        hsm_sim: true,
        ..Default::default()
    })
    .unwrap();
    let tmp = server.tmp.path();
    let people: [&Person; 3] = [&MARY, &OTHER, &THIRD];
    let phones: Vec<Phone<'_>> = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let phone = Phone::new(&server, tmp.join(format!("phone{i}")));
            phone.register(p, "1234", "12345");
            phone
        })
        .collect();
    let web: Web = start_web(&server, tmp, &WebOptions::default());
    let pids = [server.pid().unwrap(), web.pid(), std::process::id()];
    eprintln!(
        "server pid {}, web pid {}, {browsers} browsers",
        pids[0], pids[1]
    );

    // The browsers: sessions opened 8 at a time, then each follows and refreshes.
    let counters = Arc::new(Counters::default());
    let qr_on = Arc::new(AtomicBool::new(true));
    let mut all = Vec::new();
    let ca = reqwest::Certificate::from_pem(&server.ca).unwrap();
    let started = Instant::now();
    for chunk in (0..browsers).collect::<Vec<_>>().chunks(8) {
        let mut opened = Vec::new();
        for _ in chunk {
            let (tx, rx) = mpsc::unbounded_channel();
            let b = Arc::new(Browser {
                http: reqwest::Client::builder()
                    .add_root_certificate(ca.clone())
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap(),
                base: web.url.clone(),
                cookie: Mutex::new(None),
                ended: tokio::sync::Mutex::new(rx),
            });
            let c = counters.clone();
            let b2 = b.clone();
            opened.push(tokio::spawn(async move {
                b2.open_login(&c).await.unwrap();
                tx
            }));
            all.push(b);
        }
        let base = all.len() - chunk.len();
        for (k, h) in opened.into_iter().enumerate() {
            let tx = h.await.unwrap();
            let b = all[base + k].clone();
            tokio::spawn(follow(b.clone(), tx, counters.clone()));
            tokio::spawn(qr_refresh(b, qr_on.clone(), counters.clone()));
        }
    }
    eprintln!(
        "{browsers} logins open after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Phases 1 and 2: idle-waiting.
    let qr_before = counters.qr_ok.load(Ordering::Relaxed);
    let with_qr = measure(pids, window, tick).await;
    let qr_per_s =
        (counters.qr_ok.load(Ordering::Relaxed) - qr_before) as f64 / window.as_secs_f64();
    qr_on.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let without_qr = measure(pids, window, tick).await;
    qr_on.store(true, Ordering::Relaxed);

    // Phase 3: confirmations, each on the next browser's open login.
    let mut lags = Vec::new();
    let mut early = 0;
    let cpu_before = pids.map(|p| cpu_seconds(p, tick));
    let t_confirm = Instant::now();
    for k in 0..confirmations {
        let b = all[k % all.len()].clone();
        let mut ended = b.ended.lock().await;
        while ended.try_recv().is_ok() {}
        let png = b.qr_png(1_000_000 + k as u64).await.unwrap();
        let mut links = tandem_tests::browser::decode_qr(&png).unwrap();
        assert_eq!(links.len(), 1, "one QR code");
        let link = links.remove(0);
        let phone = &phones[k % phones.len()];
        let cmd = phone.command(&["scan", &link]);
        let accepted = tokio::task::spawn_blocking(move || scan(cmd))
            .await
            .unwrap()
            .unwrap();
        let (at, state) = tokio::time::timeout(Duration::from_secs(10), ended.recv())
            .await
            .expect("no answer on the page within 10 s")
            .unwrap();
        drop(ended);
        assert_eq!(state, "ok", "login {k} ended with {state}");
        if at < accepted {
            early += 1;
        }
        lags.push(at.saturating_duration_since(accepted).as_secs_f64() * 1000.0);
    }
    let confirm_wall = t_confirm.elapsed().as_secs_f64();
    let cpu_confirm =
        [0, 1, 2].map(|i| 100.0 * (cpu_seconds(pids[i], tick) - cpu_before[i]) / confirm_wall);
    lags.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&lags, 50.0),
        percentile(&lags, 99.0),
        lags[lags.len() - 1],
    );

    let model = lscpu_model();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "web_follow: {browsers} open logins, CPU {model}, loadavg {}",
        load.trim()
    );
    println!("| phase | server % of a core | web % of a core | bench (browsers) % |");
    println!("|---|---|---|---|");
    let row = |name: &str, v: [f64; 3]| {
        println!("| {name} | {:.2} | {:.2} | {:.2} |", v[0], v[1], v[2]);
    };
    row(
        &format!(
            "idle, QR refresh ({qr_per_s:.0} PNG/s), {} s",
            window.as_secs()
        ),
        with_qr,
    );
    row(
        &format!("idle, status polls only, {} s", window.as_secs()),
        without_qr,
    );
    row(
        &format!("{confirmations} confirmations, {confirm_wall:.0} s"),
        cpu_confirm,
    );
    println!(
        "confirmation -> page answer over {} logins: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({early} answered before the phone's output line)",
        lags.len()
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let cpu_ok = with_qr[0] < 5.0 && with_qr[1] < 5.0 && without_qr[0] < 5.0 && without_qr[1] < 5.0;
    println!("target idle CPU < 5% of a core each: {}", verdict(cpu_ok));
    println!("target p99 < 1 s: {}", verdict(p99 < 1000.0));
    let c = &counters;
    println!(
        "QR PNGs {} (failed {}), status answers {} (failed {}), logins opened {}",
        c.qr_ok.load(Ordering::Relaxed),
        c.qr_failed.load(Ordering::Relaxed),
        c.status_answers.load(Ordering::Relaxed),
        c.status_failed.load(Ordering::Relaxed),
        c.logins_started.load(Ordering::Relaxed),
    );
    if let Ok(path) = std::env::var("WEB_BENCH_JSON") {
        let json = serde_json::json!({
            "browsers": browsers,
            "window_seconds": window.as_secs(),
            "cpu_model": model,
            "cpu_percent_of_one_core": {
                "idle_with_qr": {"server": with_qr[0], "web": with_qr[1], "bench": with_qr[2], "qr_png_per_second": qr_per_s},
                "idle_without_qr": {"server": without_qr[0], "web": without_qr[1], "bench": without_qr[2]},
                "confirmations": {"server": cpu_confirm[0], "web": cpu_confirm[1], "bench": cpu_confirm[2], "seconds": confirm_wall},
            },
            "latency_ms": {"count": lags.len(), "p50": p50, "p99": p99, "max": max, "answered_before_phone_line": early},
        });
        std::fs::write(Path::new(&path), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    }
    drop(web);
}
