//! Benchmark of the relying parties' certificate queue (issue 24, "Performance"; results in
//! docs/BENCHMARKS.md): creating `RP_CERTS_BENCH_COUNT` (1000) certificates at once through
//! `tandem rp-cert create --count N --wait`, as a ratio to the CA's bare signing of as many
//! certificates in the HSM (`tandem operator ca-sign-bench --threads <rp_certs.workers>`)
//! measured in the same run, and the overview's latency meanwhile.
//!
//! A real server from `tandem server init` defaults (hsm-sim, SQLite, the default CA key
//! type RSA-4096; `RP_CERTS_BENCH_SOFTHSM=1` uses a SoftHSM token instead) with the REST RP
//! API over HTTPS, and a real `tandem web` with the portal. The operator credits the relying
//! party and makes Mary its administrator; Mary logs in to the portal (cookie client, the
//! phone confirms) and `tandem rp-cert login` (the phone confirms). Then:
//!
//! 1. reference: `tandem operator ca-sign-bench --count N --threads W`, before and again
//!    after the creation; the ratio is to their mean;
//! 2. `tandem rp-cert create --count N --wait`: the CLI generates keys and requests first
//!    (their time is reported on its own), then measures from sending the create request to
//!    the list showing all N READY (polled every 200 ms);
//! 3. meanwhile two tasks request the overview every 100 ms: the server's
//!    `/tandem/v1/rp-certs/list` for the relying party (as the CLI does) and the portal page's
//!    `/portal/certificates/state` (as its script does); p50/p99/max of the requests sent
//!    between the create request and the last READY.
//!
//! Run: `cargo build --release -p tandem-cli -p tandem-hsm-sim`, then
//! `TANDEM_BIN=$PWD/target/release/tandem cargo bench -p tandem-tests --bench rp_certs`
//! (without `TANDEM_BIN` the bench builds both itself). `RP_CERTS_BENCH_JSON=FILE` also
//! writes the figures as JSON.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)] // a benchmark

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::SET_COOKIE;
use tandem_rp::api::rp_certs::{LIST_PATH, ListRequest, RpCertOverview};
use tandem_tests::web::{COOKIE, Phone, WebOptions, start_web};
use tandem_tests::*;

/// The portal relying party of `tandem web`.
const PORTAL_UUID: &str = "00000000-0000-4000-8000-0000000000c1";
const PORTAL_NAME: &str = "Tandem Portal";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} is not a number"))
        })
        .unwrap_or(default)
}

/// A browser-like HTTP client of the web process: one session cookie, kept by hand.
struct CookieClient {
    http: reqwest::Client,
    base: String,
    cookie: Mutex<Option<String>>,
}

impl CookieClient {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = self.cookie.lock().unwrap().as_deref() {
            r = r.header("cookie", format!("{COOKIE}={c}"));
        }
        r
    }

    /// Sends, keeps a new session cookie; status and body.
    async fn send(&self, r: reqwest::RequestBuilder) -> anyhow::Result<(u16, String)> {
        let resp = r.send().await?;
        for v in resp.headers().get_all(SET_COOKIE) {
            if let Some(rest) = v.to_str()?.strip_prefix(&format!("{COOKIE}=")) {
                let value = rest.split(';').next().unwrap_or_default();
                *self.cookie.lock().unwrap() = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }
}

/// The page's CSRF token.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("no CSRF field") + 19;
    page[at..at + 64].to_owned()
}

/// Mary logs in to the portal by notification, as the login page does.
async fn portal_login(c: &CookieClient, phone: &Phone<'_>) {
    let (s, page) = c
        .send(c.request(reqwest::Method::GET, "/portal/"))
        .await
        .unwrap();
    assert_eq!(s, 200, "{page}");
    let token = csrf(&page);
    let form = [
        ("country", "EE"),
        ("national_id", MARY.id),
        ("csrf", &token),
    ];
    let (s, page) = c
        .send(
            c.request(reqwest::Method::POST, "/portal/login/notify")
                .header("origin", &c.base)
                .form(&form),
        )
        .await
        .unwrap();
    assert!(s == 200 || s == 303, "notify: {s} {page}");
    let line = phone.pending_auth();
    let tx = line.split_whitespace().next().unwrap().to_owned();
    let out = phone.run(&["confirm", &tx], &[("TANDEM_PIN", "1234")]);
    assert!(out.contains("ACCEPTED"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let next = loop {
        let (_, body) = c
            .send(c.request(reqwest::Method::GET, "/portal/login/status"))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        match v["state"].as_str() {
            Some("waiting") => {}
            Some("ok") => break v["next"].as_str().unwrap().to_owned(),
            _ => panic!("portal login: {v}"),
        }
        assert!(Instant::now() < deadline, "portal login: no answer");
    };
    c.send(c.request(reqwest::Method::GET, &next))
        .await
        .unwrap();
    let (s, body) = c
        .send(c.request(reqwest::Method::GET, "/portal/certificates/state"))
        .await
        .unwrap();
    assert_eq!(s, 200, "not logged in to the portal: {body}");
}

/// One overview request: when it was sent, how long it took (ms), whether it answered 200.
type Sample = (Instant, f64, bool);

/// Requests the overview every 100 ms until `stop`.
async fn sample<F, Fut>(stop: Arc<AtomicBool>, f: F) -> Vec<Sample>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut out = Vec::new();
    let mut reported = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let t = Instant::now();
        let r = f().await;
        out.push((t, t.elapsed().as_secs_f64() * 1000.0, r.is_ok()));
        if let Err(e) = r
            && !reported
        {
            eprintln!("overview request failed: {e:#}");
            reported = true;
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// p50, p99, max, count and failures of the samples sent in `[from, to]`.
fn stats(samples: &[Sample], from: Instant, to: Instant) -> serde_json::Value {
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|(t, _, _)| *t >= from && *t <= to)
        .collect();
    let failed = inside.iter().filter(|s| !s.2).count();
    let mut ms: Vec<f64> = inside.iter().map(|s| s.1).collect();
    ms.sort_by(f64::total_cmp);
    assert!(!ms.is_empty(), "no overview request during the creation");
    serde_json::json!({
        "count": ms.len(),
        "failed": failed,
        "p50": percentile(&ms, 50.0),
        "p99": percentile(&ms, 99.0),
        "max": ms[ms.len() - 1],
    })
}

/// The number after `marker` in `text` (e.g. `" in "` → `1.234` of "... in 1.234 s").
fn number_after(text: &str, marker: &str) -> Option<f64> {
    text.split(marker)
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn lscpu() -> (String, bool) {
    let out = Command::new("lscpu")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    let model = text
        .lines()
        .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown".into());
    (model, text.contains("avx512ifma"))
}

fn build_tandem() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "tandem-cli", "-p", "tandem-hsm-sim"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    assert!(cmd.status().unwrap().success(), "building tandem failed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_or("RP_CERTS_BENCH_COUNT", 1000);
    let softhsm = env_or("RP_CERTS_BENCH_SOFTHSM", 0) == 1;
    if std::env::var_os("TANDEM_BIN").is_none() {
        build_tandem();
    }

    // The server: `server init` defaults (hsm-sim unless SoftHSM is asked for, RSA-4096 CA
    // key), the REST RP API over HTTPS with room for the pollers in its rate limit.
    let rp_api = rp_api_https_table()
        .replace("rate_limit_per_second = 50", "rate_limit_per_second = 1000")
        .replace("rate_limit_burst = 100", "rate_limit_burst = 1000");
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api),
        hsm_sim: !softhsm,
        ca_key_spec: Some("rsa4096".into()),
        ..Default::default()
    })
    .unwrap();
    let tmp = server.tmp.path().to_owned();
    let cfg = tandem_server::config::Config::load(&server.data_dir).unwrap();
    let workers = cfg.rp_certs.workers;
    let key_spec = format!("{:?}", cfg.pki.key_spec);
    let admin = format!("PNO{}-{}", MARY.country, MARY.id);
    let op = |args: &[&str]| server.operator(args).unwrap();
    op(&[
        "rp-add",
        "--uuid",
        PORTAL_UUID,
        "--name",
        PORTAL_NAME,
        "--portal",
    ]);
    op(&["rp-credit", "--rp", RP_UUID, "--add", &n.to_string()]);
    op(&["rp-admin", "--rp", RP_UUID, "add", &admin]);
    let phone = Phone::new(&server, tmp.join("phone"));
    phone.register(&MARY, "1234", "12345");

    // The portal, Mary logged in.
    let web = start_web(
        &server,
        &tmp,
        &WebOptions {
            extra_toml: format!(
                "[portal]\nrelying_party_uuid = \"{PORTAL_UUID}\"\nrelying_party_name = \"{PORTAL_NAME}\"\n"
            ),
            ..Default::default()
        },
    );
    let ca = reqwest::Certificate::from_pem(&server.ca).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let portal = Arc::new(CookieClient {
        http: http.clone(),
        base: web.url.clone(),
        cookie: Mutex::new(None),
    });
    portal_login(&portal, &phone).await;

    // `tandem rp-cert login`, confirmed on the phone.
    let dir = tmp.join("rp-certs");
    let d = dir.to_str().unwrap().to_owned();
    let login = {
        let (server_ref, d, admin) = (&server, d.clone(), admin.clone());
        std::thread::scope(|s| {
            let h = s.spawn(move || {
                mtls::rp_cert_cli(server_ref, &["--dir", &d, "login", "--admin", &admin], None)
            });
            let line = phone.pending_auth();
            let tx = line.split_whitespace().next().unwrap().to_owned();
            let out = phone.run(&["confirm", &tx], &[("TANDEM_PIN", "1234")]);
            assert!(out.contains("ACCEPTED"), "{out}");
            h.join().unwrap()
        })
    };
    login.unwrap();
    let session = std::fs::read_to_string(dir.join("session"))
        .unwrap()
        .trim()
        .to_owned();

    // 1. The reference: the CA's bare signing in the HSM, with the queue's thread count;
    //    once before and once after the creation (the machine's load changes meanwhile).
    let reference = || {
        let out = op(&[
            "ca-sign-bench",
            "--count",
            &n.to_string(),
            "--threads",
            &workers.to_string(),
        ]);
        eprintln!("reference: {}", out.trim());
        number_after(&out, " in ").unwrap_or_else(|| panic!("{out}"))
    };
    let bare_before = reference();

    // 3. The pollers.
    let stop = Arc::new(AtomicBool::new(false));
    // (The tandem paths sit at the API's origin, beside /v3.)
    let list_url = format!("{}{LIST_PATH}", server.rest_url);
    let list_body = serde_json::to_string(&ListRequest {
        relying_party_uuid: RP_UUID.into(),
        relying_party_name: RP_NAME.into(),
        auth_session_id: session,
        target_relying_party_uuid: Some(RP_UUID.into()),
    })
    .unwrap();
    let server_poller = {
        let (stop, http) = (stop.clone(), http.clone());
        tokio::spawn(async move {
            sample(stop, || {
                let r = http
                    .post(&list_url)
                    .header("content-type", "application/json")
                    .body(list_body.clone());
                async move {
                    let resp = r.send().await?;
                    anyhow::ensure!(resp.status() == 200, "list: {}", resp.status());
                    let o: RpCertOverview = resp.json().await?;
                    anyhow::ensure!(!o.relying_parties.is_empty(), "empty overview");
                    Ok(())
                }
            })
            .await
        })
    };
    let portal_poller = {
        let (stop, portal) = (stop.clone(), portal.clone());
        tokio::spawn(async move {
            sample(stop, || {
                let r = portal.request(reqwest::Method::GET, "/portal/certificates/state");
                async move {
                    let resp = r.send().await?;
                    anyhow::ensure!(resp.status() == 200, "state: {}", resp.status());
                    let v: serde_json::Value = resp.json().await?;
                    anyhow::ensure!(v.get("pending").is_some(), "state: {v}");
                    Ok(())
                }
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 2. The creation, through the CLI.
    let mut cmd = Command::new(tandem_bin());
    cmd.args(["--log", "warn", "rp-cert", "--api"])
        .arg(format!("{}/v3", server.rest_url))
        .arg("--trust")
        .arg(&server.data_dir)
        .arg("--tls-ca")
        .arg(tmp.join("server-ca.pem"))
        .args(["--rp-uuid", RP_UUID, "--rp-name", RP_NAME, "--dir", &d])
        .args(["create", "--count", &n.to_string()])
        .args(["--label-prefix", "bench-", "--wait"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (cli_out, sent_at, done_at) = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut text = String::new();
        let (mut sent_at, mut done_at) = (None, None);
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            let line = line.rsplit('\r').next().unwrap_or_default().to_owned();
            if line.starts_with("generated ") {
                sent_at = Some(Instant::now());
            } else if line.starts_with("all ") {
                done_at = Some(Instant::now());
            }
            text.push_str(&line);
            text.push('\n');
        }
        assert!(child.wait().unwrap().success(), "rp-cert create: {text}");
        (text, sent_at.unwrap(), done_at.unwrap())
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let server_samples = server_poller.await.unwrap();
    let portal_samples = portal_poller.await.unwrap();
    let keygen_secs =
        number_after(&cli_out, " requests in ").unwrap_or_else(|| panic!("{cli_out}"));
    let queue_secs = number_after(&cli_out, " ready ").unwrap_or_else(|| panic!("{cli_out}"));
    let bare_after = reference();
    let bare_secs = (bare_before + bare_after) / 2.0;
    let ratio = queue_secs / bare_secs;
    let server_stats = stats(&server_samples, sent_at, done_at);
    let portal_stats = stats(&portal_samples, sent_at, done_at);

    let (model, ifma) = lscpu();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let hsm = if softhsm { "SoftHSM" } else { "hsm-sim" };
    println!(
        "rp_certs: {n} certificates, {hsm}, CA key {key_spec}, rp_certs.workers {workers}, batch {}",
        cfg.rp_certs.batch
    );
    println!(
        "CPU {model} (avx512ifma: {}), loadavg {}",
        if ifma { "yes" } else { "no" },
        load.trim()
    );
    println!("keys and requests generated by the CLI: {keygen_secs:.3} s (not counted)");
    println!(
        "bare signing (ca-sign-bench, {workers} threads): {bare_before:.3} s before, {bare_after:.3} s after, mean {bare_secs:.3} s"
    );
    println!("create request sent -> all READY: {queue_secs:.3} s");
    println!(
        "ratio to the mean: {ratio:.2} (to before {:.2}, to after {:.2}; target <= 1.5: {})",
        queue_secs / bare_before,
        queue_secs / bare_after,
        verdict(ratio <= 1.5)
    );
    let row = |name: &str, s: &serde_json::Value| {
        println!(
            "{name}: {} requests ({} failed), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 100 ms: {})",
            s["count"],
            s["failed"],
            s["p50"].as_f64().unwrap(),
            s["p99"].as_f64().unwrap(),
            s["max"].as_f64().unwrap(),
            verdict(s["p99"].as_f64().unwrap() < 100.0 && s["failed"] == 0)
        );
    };
    row("server list during creation", &server_stats);
    row("portal state during creation", &portal_stats);
    if let Ok(path) = std::env::var("RP_CERTS_BENCH_JSON") {
        let json = serde_json::json!({
            "count": n,
            "hsm": hsm,
            "ca_key": key_spec,
            "workers": workers,
            "batch": cfg.rp_certs.batch,
            "cpu_model": model,
            "avx512ifma": ifma,
            "keygen_seconds": keygen_secs,
            "bare_signing_seconds": {"before": bare_before, "after": bare_after, "mean": bare_secs},
            "queue_seconds": queue_secs,
            "ratio": ratio,
            "server_list_ms": server_stats,
            "portal_state_ms": portal_stats,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    }
    drop(web);
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}
