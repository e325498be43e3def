//! `tandem load`: a load generator. It starts a server on a data directory of its own (or
//! the one given), registers simulated devices, then drives composite signatures through
//! the relying-party APIs (gRPC, and the REST API of Smart-ID RP API v3) and the device gRPC
//! API over loopback at each concurrency level asked for,
//! and reports completed signatures per second, latency percentiles of the server's part,
//! errors, and the server process's CPU seconds per completed signature (from
//! `/proc/<pid>/stat`), against the cost of one signature's two exponentiations with
//! OpenSSL measured just before and just after each phase (the lower counts). With
//! `--repeat N` the phases run N rounds; the table shows each level's median round and the
//! range over the rounds (the host's speed moves by several per cent within minutes).
//!
//! The device work is precomputed: every account signs the same digest each time
//! (RSASSA-PKCS1-v1_5, deterministic), so its partial signature `s1'` is computed once
//! (`grpc::precompute`) and a confirmation only seals it for the transaction (one RSA
//! public-key encryption and AES-GCM). The machine's cores then go to the server.
//!
//! ```text
//!   load generator (this process)                  server (child process)
//!   worker k, account k:
//!     t0  RP StartSignature(doc k, digest k) ───────▶ transaction, x = EMSA(digest)
//!         device ListPending ───────────────────────▶
//!     t1  device Confirm(seal(s1'_k)) ──────────────▶ open envelope, s1'', s1, s2, CRT
//!     t2  ◀────────────────────────── accepted (signature stored)
//!   confirm latency = t2 - t1 (the server's part), session latency = t2 - t0
//! ```
//!
//! The REST flow (`--flows rest`) cannot be fully precomputed: the server chooses each
//! RSASSA-PSS encoding (its salt), so the simulated device exponentiates for every session,
//! in this process, with its share unlocked once at registration (the PIN unlock, Argon2id
//! over 19 MiB, would otherwise sweep the shared cache beside the server it measures), and
//! with OpenSSL's constant-time ladder rather than the app's pure-Rust one (half the CPU; the
//! pure-Rust device had raised the server's own CPU per signature by up to a tenth). Server
//! CPU per signature is the server's own process time; throughput is bounded by the two
//! processes sharing the cores.
//!
//! ```text
//!     t0  RP POST /v3/signature/notification/document/{doc} (RAW_DIGEST, PSS) ─▶ session
//!         device ListPending, s1' = x^d1' ─▶
//!     t1  device Confirm ──────────────────────────▶ open envelope, s1'', s1, s2, CRT
//!     t2  ◀── accepted;  RP GET /v3/session/{id} ──▶ COMPLETE, OK, signature + certificate
//!     t3  session latency = t3 - t0; the last signature of every account is verified
//!         (certificate chain and RSASSA-PSS) by the RP client
//! ```
//!
//! The `rest-pkcs1` flow is the same REST API with `sha256WithRSAEncryption` (deterministic,
//! deprecated in the RP API but accepted) over a fixed digest per device: `x` repeats, so the
//! device computes `s1'` once and only checks the request and seals the answer each time,
//! as in the gRPC flow. It measures the REST API's server cost without the device's
//! exponentiation beside it; `rest` shows what that work on the same two cores adds.
//!
//! `--soak 10m` runs a soak test instead of the phases (`soak`): the flows' mix at half of
//! the measured peak (or `--rate`) for that long, reporting errors, latency and the server's
//! memory per interval, and judging at the end that there were no errors and that the
//! server's RSS stayed flat.

mod soak;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme, encode_pkcs1v15};
use tandem_client_core::grpc::{self as dev, Client, Precomputed, ProofOutcome};
use tandem_client_core::hazmat::bit_length;
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::sign::SigningRequest;
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_proto::v1::relying_party_client::RelyingPartyClient;
use tandem_rp::api::types::{
    HashAlgorithm as RestHash, Interaction, NotificationSigningRequest, SessionStatusResponse,
    SignSignatureProtocol, SignSignatureProtocolParameters, SignatureAlgorithm,
    SignatureAlgorithmParametersInRequest, encode_interactions,
};
use tandem_rp::client::{
    ClientConfig, RpApiClient, SignatureExpectation, TrustAnchors, UserRef, verify,
};
use tandem_server::config::Config;
use tandem_server::store::prelude::*;
use tandem_server::store::{Identity, RelyingParty, SqliteStore, unix_now};
use tonic::transport::Channel;

use super::{rp_client, runtime, spawn_server};

const PIN1: &str = "1234";
const PIN2: &str = "12345";
/// Marks a data directory `tandem load` created (and may reuse).
const MARKER: &str = ".tandem-load";
/// The relying party of the REST flow (registered in the load data directory).
const REST_RP_UUID: &str = "4c6f6164-5465-4000-8000-000000000001";
const REST_RP_NAME: &str = "Load Test Bank";

/// What to run (`tandem load` arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// Data directory (initialised when missing; reused by later runs).
    #[arg(long, default_value = "load-data")]
    pub data_dir: PathBuf,
    /// Use a SoftHSM token instead of hsm-sim when initialising.
    #[arg(long)]
    pub softhsm: bool,
    /// Client and server key size.
    #[arg(long, default_value_t = 3072)]
    pub key_bits: usize,
    /// Simulated devices (at least the highest concurrency).
    #[arg(long, default_value_t = 8)]
    pub accounts: usize,
    /// Concurrency levels, one measured phase each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub concurrency: Vec<usize>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Rounds of phases: every API and level is measured this many times, the rounds one
    /// after another, and the table shows each one's median round (with the range of its
    /// CPU / reference). The host's speed moves within minutes; repeats show by how much.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Relying-party APIs to drive, one set of phases each: grpc (device work precomputed),
    /// rest (Smart-ID RP API v3, RSASSA-PSS: the server picks each salt, so the device works
    /// live, beside the server) and rest-pkcs1 (the same API with sha256WithRSAEncryption
    /// over a fixed digest per device: device work precomputed, as for grpc).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "grpc,rest,rest-pkcs1"
    )]
    pub flows: Vec<Flow>,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a chart of throughput and latency against concurrency (SVG); with --soak, of
    /// latency p99 and the server's RSS over time.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Soak test instead of the phases: drive the flows' mix for this long (e.g. 10m, 90s,
    /// 1h) at half of the peak, which is measured first over --seconds at the highest
    /// --concurrency (or at --rate); report each interval's signatures, errors by kind,
    /// latency p50/p99 and the server's RSS; fail unless there was no error and the RSS
    /// stayed within 10% of its plateau.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub soak: Option<Duration>,
    /// Soak: signatures per second to drive, instead of half of the measured peak.
    #[arg(long, requires = "soak")]
    pub rate: Option<f64>,
    /// Soak: the length of each reported interval [default: 30s, or a quarter of a shorter
    /// soak].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "soak")]
    pub soak_interval: Option<Duration>,
    /// Soak: the plateau window. The server's highest RSS in this first part of the soak is
    /// its plateau; no later reading may exceed it by more than 10% [default: 60s, or a
    /// quarter of a shorter soak].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "soak")]
    pub soak_plateau: Option<Duration>,
}

/// A duration on the command line: a number with an optional unit, `s` (the default), `m`
/// or `h`: `600`, `90s`, `10m`, `1.5h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let factor = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit in {s:?}: use s, m or h (e.g. 10m)")),
    };
    let v: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (e.g. 600, 90s, 10m, 1h)"))?;
    if !v.is_finite() || v <= 0.0 || v * factor > 7.0 * 86400.0 {
        return Err(format!("{s:?}: a duration above zero and at most a week"));
    }
    Ok(Duration::from_secs_f64(v * factor))
}

/// The result of one phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phase {
    /// The relying-party API: "grpc" or "rest".
    pub flow: String,
    /// Sessions running at once.
    pub concurrency: usize,
    /// Completed (accepted) signatures.
    pub completed: u64,
    /// Failed sessions.
    pub errors: u64,
    /// Length of the phase.
    pub seconds: f64,
    /// Completed signatures per second.
    pub per_second: f64,
    /// Confirm round trip (the server's part), milliseconds.
    pub confirm_ms: Percentiles,
    /// Whole session (start, pending, confirm; REST: until the RP has the result),
    /// milliseconds.
    pub session_ms: Percentiles,
    /// Server CPU (user + system) per completed signature, milliseconds.
    pub server_cpu_ms_per_signature: f64,
    /// The part of it spent on the server's HSM-call threads (the HSM's work: share
    /// exponentiation and RSA operation, envelope opening, and the checks of their results),
    /// milliseconds. The rest is the requests' own work: TLS, HTTP/2, JSON, SQLite, thread
    /// hand-offs.
    pub hsm_call_cpu_ms_per_signature: f64,
    /// Server CPU use during the phase, in cores.
    pub server_cores: f64,
    /// The round (1-based, `--repeat`).
    pub repeat: usize,
    /// The reference cost of one signature for this phase ([`ReferenceSignature`]): the
    /// lower of the two measurements just before and just after it, with the server idle.
    pub reference_ms: f64,
    /// `server_cpu_ms_per_signature / reference_ms`.
    pub cpu_per_reference: f64,
}

/// One API and concurrency level over all rounds: its median round.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseSummary {
    /// The round with the median CPU / reference (of an even number, the higher of the two
    /// middle ones).
    #[serde(flatten)]
    pub median: Phase,
    /// Rounds measured.
    pub repeats: usize,
    /// The lowest and highest CPU / reference over the rounds.
    pub cpu_per_reference_min: f64,
    pub cpu_per_reference_max: f64,
}

impl PhaseSummary {
    /// One summary per API and level, in the order of their first rounds.
    fn of(phases: &[Phase]) -> Vec<PhaseSummary> {
        let mut keys: Vec<(&str, usize)> = Vec::new();
        for p in phases {
            if !keys.contains(&(p.flow.as_str(), p.concurrency)) {
                keys.push((p.flow.as_str(), p.concurrency));
            }
        }
        keys.into_iter()
            .map(|(flow, c)| {
                let mut rounds: Vec<&Phase> = phases
                    .iter()
                    .filter(|p| p.flow == flow && p.concurrency == c)
                    .collect();
                rounds.sort_by(|a, b| a.cpu_per_reference.total_cmp(&b.cpu_per_reference));
                PhaseSummary {
                    median: rounds[rounds.len() / 2].clone(),
                    repeats: rounds.len(),
                    cpu_per_reference_min: rounds[0].cpu_per_reference,
                    cpu_per_reference_max: rounds[rounds.len() - 1].cpu_per_reference,
                }
            })
            .collect()
    }
}

/// The server's part of the registrations (submit keys + proof, device work excluded).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Registration {
    /// Registrations measured.
    pub count: usize,
    /// Milliseconds.
    pub server_part_ms: Percentiles,
    /// Two proof signatures and two certificate signatures with OpenSSL, milliseconds.
    pub reference_ms: f64,
    /// Server CPU (user + system, all threads but the key pool's) spent in the timed
    /// requests of one registration, in milliseconds, each read to the nanosecond from the
    /// threads' schedstat: the median over the registrations (like the time, p50) ...
    pub server_cpu_ms: f64,
    /// ... and the mean.
    pub server_cpu_mean_ms: f64,
}

/// The floor of one composite signature, computed with OpenSSL: a constant-time
/// exponentiation with a full-size exponent plus an RSA CRT private operation, both of the
/// key size.
struct ReferenceSignature {
    rsa: openssl::rsa::Rsa<openssl::pkey::Private>,
    exponent: openssl::bn::BigNum,
    base: openssl::bn::BigNum,
    /// Below the modulus: a leading zero byte.
    x: Vec<u8>,
    ctx: openssl::bn::BigNumContext,
}

impl ReferenceSignature {
    fn new(bits: usize) -> anyhow::Result<Self> {
        let rsa = openssl::rsa::Rsa::generate(u32::try_from(bits)?)?;
        let mut exponent = openssl::bn::BigNum::from_slice(rsa.d().to_vec().as_slice())?;
        exponent.set_const_time();
        let mut x = vec![0x11u8; rsa.size() as usize];
        x[0] = 0;
        Ok(Self {
            exponent,
            base: openssl::bn::BigNum::from_u32(0x1234_5678)?,
            x,
            ctx: openssl::bn::BigNumContext::new()?,
            rsa,
        })
    }

    fn compute(&mut self) -> anyhow::Result<()> {
        let mut r = openssl::bn::BigNum::new()?;
        r.mod_exp(&self.base, &self.exponent, self.rsa.n(), &mut self.ctx)?;
        let mut out = vec![0u8; self.rsa.size() as usize];
        self.rsa
            .private_encrypt(&self.x, &mut out, openssl::rsa::Padding::NONE)?;
        Ok(())
    }
}

/// The median time of `f` over `n` runs.
fn median_of(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

impl ReferenceSignature {
    /// The reference cost of one composite signature, measured now (median of 50). It is
    /// measured before the first phase and after each one, with the server idle, and each
    /// phase's CPU per signature is reported against the lower (stricter) of the two
    /// measurements next to it: the machine's speed drifts by several per cent over minutes.
    fn measure(&mut self) -> anyhow::Result<Duration> {
        median_of(50, || self.compute())
    }
}

/// What a registration must compute at least, measured now with OpenSSL: two proof
/// signatures ([`ReferenceSignature`]) and two certificate signatures with a key of the CA's
/// kind (median of 10).
fn registration_reference(
    bits: usize,
    ca: tandem_server::hsm::CaKeySpec,
) -> anyhow::Result<Duration> {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    let mut reference = ReferenceSignature::new(bits)?;
    let ca_key = match ca {
        tandem_server::hsm::CaKeySpec::EcP384 => PKey::from_ec_key(openssl::ec::EcKey::generate(
            &*openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1)?,
        )?)?,
        tandem_server::hsm::CaKeySpec::Rsa3072 => {
            PKey::from_rsa(openssl::rsa::Rsa::generate(3072)?)?
        }
        tandem_server::hsm::CaKeySpec::Rsa4096 => {
            PKey::from_rsa(openssl::rsa::Rsa::generate(4096)?)?
        }
    };
    let tbs = [0x5au8; 1200];
    median_of(10, || {
        for _ in 0..2 {
            reference.compute()?;
            let mut signer = openssl::sign::Signer::new(MessageDigest::sha384(), &ca_key)?;
            signer.update(&tbs)?;
            signer.sign_to_vec()?;
        }
        Ok(())
    })
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(samples: &mut [Duration]) -> Self {
        samples.sort();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            // Nearest rank.
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1e3
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// One simulated device with its precomputed partial signature.
struct Account {
    state: DeviceState,
    digest: Vec<u8>,
    pre: Precomputed,
    /// The SIGN share, unlocked once (REST signatures are signed live: the server picks each
    /// RSASSA-PSS salt), so that no memory-hard PIN unlock runs beside the measured server.
    sign_share: tandem_client_core::DeviceShare,
    /// The device's exponentiation of the `rest-pkcs1` flow, `(x mod n1, s1')`: its fixed
    /// digest gives the same `x` every time, so `s1'` is computed once.
    rest_pkcs1_share: Option<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)>,
    /// The status of the last gRPC signature, as its relying party fetched it.
    last_status: Option<pb::TransactionStatus>,
    /// REST sessions started so far (each RSASSA-PSS one signs another digest).
    rest_count: u64,
    /// The last completed session of each REST flow and its request, verified at the end.
    last_rest: BTreeMap<&'static str, (SessionStatusResponse, NotificationSigningRequest)>,
}

/// Runs the load test.
pub fn run(opts: &LoadOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        [2048, 3072, 4096].contains(&opts.key_bits),
        "--key-bits must be 2048, 3072 or 4096"
    );
    anyhow::ensure!(opts.accounts >= 1, "--accounts must be at least 1");
    anyhow::ensure!(
        !opts.concurrency.is_empty() && opts.concurrency.iter().all(|&c| c >= 1),
        "--concurrency needs levels of at least 1"
    );
    let max = opts.concurrency.iter().copied().max().unwrap_or(1);
    anyhow::ensure!(
        opts.accounts >= max,
        "--accounts ({}) must be at least the highest concurrency ({max}): one account signs one \
         session at a time",
        opts.accounts
    );
    anyhow::ensure!(opts.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(opts.repeat >= 1, "--repeat must be at least 1");
    if let Some(soak) = opts.soak {
        soak::check_options(opts, soak)?;
    }
    let server_dir = prepare_data_dir(opts)?;
    let exe = std::env::current_exe()?;
    let mut cfg = Config::load(&server_dir)?;
    // The REST API's per-relying-party rate limit would cap the load; this data directory
    // belongs to the load generator.
    if cfg.rp_api.rate_limit_per_second < 1_000_000 {
        cfg.rp_api.rate_limit_per_second = 1_000_000;
        cfg.rp_api.rate_limit_burst = 1_000_000;
        cfg.save(&server_dir)?;
    }
    let (mut server, url, _) = spawn_server(&exe, &server_dir, "warn")?;
    let rest_url = format!("https://{}/v3", server.next_line("rest listening on ")?);
    let pid = server.id();
    eprintln!("server {pid} listening on {url} (REST API {rest_url})");
    let ca = std::fs::read(&cfg.tls.cert)?;
    let urls = Urls {
        grpc: &url,
        rest: &rest_url,
        ca: &ca,
        pki: server_dir.join("pki"),
    };
    if let Some(soak) = opts.soak {
        let result = runtime()?.block_on(soak::run(opts, soak, &cfg, &urls, pid));
        drop(server);
        return result;
    }
    let (registration, phases) = runtime()?.block_on(drive(opts, &cfg, &urls, pid))?;
    drop(server);
    let summary = PhaseSummary::of(&phases);
    print_table(opts, &summary);
    println!(
        "\nregistration, the server's part (submit keys + proof; warm key pool, its refill idle): \
         p50 {:.1} ms, p95 {:.1} ms over {}; reference (two proof signatures = 2 x (OpenSSL \
         const-time modexp + CRT) and two certificate signatures with the CA's key, same run): \
         {:.1} ms; ratio {:.2}. Server CPU in those requests: median {:.1} ms per registration, \
         ratio {:.2} (mean {:.1} ms, ratio {:.2})",
        registration.server_part_ms.p50,
        registration.server_part_ms.p95,
        registration.count,
        registration.reference_ms,
        registration.server_part_ms.p50 / registration.reference_ms,
        registration.server_cpu_ms,
        registration.server_cpu_ms / registration.reference_ms,
        registration.server_cpu_mean_ms,
        registration.server_cpu_mean_ms / registration.reference_ms
    );
    if let Some(path) = &opts.json {
        let doc = serde_json::json!({
            "key_bits": opts.key_bits,
            "accounts": opts.accounts,
            "hsm": if opts.softhsm { "SoftHSM" } else { "hsm-sim" },
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "registration": registration,
            "repeat": opts.repeat,
            "summary": summary,
            "phases": phases,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &opts.svg {
        let medians: Vec<Phase> = summary.iter().map(|s| s.median.clone()).collect();
        std::fs::write(path, chart(opts, &medians))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Creates and initialises the data directory when it does not exist; returns the server's
/// directory inside it.
/// The server's directory inside `--data-dir`, as an absolute path: the configuration is
/// loaded (relative paths resolved against it) and saved again, so a relative directory would
/// be written into the configuration twice.
fn prepare_data_dir(opts: &LoadOptions) -> anyhow::Result<PathBuf> {
    let dir = &opts.data_dir;
    let server_dir = dir.join("server");
    if server_dir.join(tandem_server::config::CONFIG_FILE).exists() {
        anyhow::ensure!(
            dir.join(MARKER).exists(),
            "{} was not created by `tandem load`; choose another --data-dir",
            dir.display()
        );
        return Ok(server_dir.canonicalize()?);
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(MARKER), "created by `tandem load`\n")?;
    let exe = std::env::current_exe()?;
    eprintln!("initialising {} ...", server_dir.display());
    let status = std::process::Command::new(&exe)
        .args(["server", "init"])
        .args(opts.softhsm.then_some("--softhsm"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&server_dir)
        .args(["--server-key-bits", &opts.key_bits.to_string()])
        .args(["--ca-key-spec", "ec-p384"])
        .status()
        .context("cannot run `tandem server init`")?;
    anyhow::ensure!(status.success(), "server init failed");
    Ok(server_dir.canonicalize()?)
}

/// A progress line on standard error, rewritten in place.
fn progress(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{text}");
    let _ = err.flush();
}

/// Where the server listens, and what its clients trust.
struct Urls<'a> {
    grpc: &'a str,
    rest: &'a str,
    /// The server's TLS certificate (PEM).
    ca: &'a [u8],
    /// The server's PKI directory (root.pem, issuing.pem): the REST client's trust anchors.
    pki: PathBuf,
}

/// The registered, warmed-up simulated devices, shared by the phases and the soak.
struct Prepared {
    registration: Registration,
    accounts: Vec<Arc<tokio::sync::Mutex<Account>>>,
    /// The server's key-transport key.
    transport: Vec<u8>,
    /// The flows asked for, in the order grpc, rest, rest-pkcs1.
    flows: Vec<Flow>,
}

async fn drive(
    opts: &LoadOptions,
    cfg: &Config,
    urls: &Urls<'_>,
    pid: u32,
) -> anyhow::Result<(Registration, Vec<Phase>)> {
    let Prepared {
        registration,
        accounts,
        transport,
        flows,
    } = prepare(opts, cfg, urls, pid).await?;
    // The reference before the first phase and after each one, with the server idle.
    let mut reference_op = ReferenceSignature::new(opts.key_bits)?;
    let mut reference = reference_op.measure()?;
    let mut phases = Vec::new();
    for repeat in 1..=opts.repeat {
        for &flow in &flows {
            for &c in &opts.concurrency {
                let mut p =
                    phase(opts, urls, &accounts[..c], &transport, pid, flow, repeat).await?;
                let after = reference_op.measure()?;
                p.reference_ms = reference.min(after).as_secs_f64() * 1e3;
                p.cpu_per_reference = p.server_cpu_ms_per_signature / p.reference_ms;
                reference = after;
                phases.push(p);
            }
        }
    }
    verify_all(&accounts, &flows, urls).await?;
    Ok((registration, phases))
}

/// Registers the simulated devices, signs once with each (verified with OpenSSL), waits for
/// the server's key pool and registers the REST flows' relying party.
async fn prepare(
    opts: &LoadOptions,
    cfg: &Config,
    urls: &Urls<'_>,
    pid: u32,
) -> anyhow::Result<Prepared> {
    let (url, ca) = (urls.grpc, urls.ca);
    let client = Client::connect(url, ca).await?;
    let info = dev::server_info(&client).await?;
    let form = dev::share_form(&info)?;
    let transport = info.transport_public_key_der;
    let store = SqliteStore::open(&cfg.database)?;
    let mut accounts = Vec::with_capacity(opts.accounts);
    let mut reg_times = Vec::with_capacity(opts.accounts);
    let mut reg_cpu = Vec::with_capacity(opts.accounts);
    let started = Instant::now();
    let (bits, pool) = (cfg.keys.server_key_bits, cfg.keys.server_key_pool);
    for i in 0..opts.accounts {
        progress(&format!(
            "registering simulated devices {i}/{} ({:.0} s; each generates two {}-bit keys)",
            opts.accounts,
            started.elapsed().as_secs_f64(),
            opts.key_bits
        ));
        let (account, times, cpu) = register(
            &client,
            &store,
            i,
            opts.key_bits,
            (&transport, form),
            (bits, pool),
            pid,
        )
        .await?;
        accounts.push(account);
        reg_times.push(times);
        reg_cpu.push(cpu);
    }
    progress(&format!(
        "registered {} simulated devices in {:.1} s\n",
        opts.accounts,
        started.elapsed().as_secs_f64()
    ));
    let registration = Registration {
        count: reg_times.len(),
        server_part_ms: Percentiles::of(&mut reg_times),
        reference_ms: registration_reference(opts.key_bits, cfg.pki.key_spec)?.as_secs_f64() * 1e3,
        server_cpu_ms: Percentiles::of(&mut reg_cpu).p50,
        server_cpu_mean_ms: reg_cpu.iter().sum::<Duration>().as_secs_f64() * 1e3
            / reg_cpu.len().max(1) as f64,
    };

    // Warm-up: one signature per account, verified with OpenSSL.
    let mut rp = rp_client(url, ca).await?;
    for (i, a) in accounts.iter_mut().enumerate() {
        progress(&format!("warm-up {i}/{}", opts.accounts));
        sign_once(&client, &mut rp, a, &transport).await?;
        verify_last(a)?;
    }
    progress("warm-up done; every account's signature verified with OpenSSL\n");

    // The server refills its pool of pre-generated keys after the registrations; that key
    // generation must not run (and cost CPU) during the measured phases.
    pool_full(&store, (bits, pool), true).await?;
    progress(&format!("server key pool full ({pool})\n"));
    let accounts: Vec<Arc<tokio::sync::Mutex<Account>>> = accounts
        .into_iter()
        .map(|a| Arc::new(tokio::sync::Mutex::new(a)))
        .collect();
    // In this order, each once, whatever the command line's order.
    let flows: Vec<Flow> = [Flow::Grpc, Flow::Rest, Flow::RestPkcs1]
        .into_iter()
        .filter(|f| opts.flows.contains(f))
        .collect();
    let any_rest = flows.iter().any(|f| *f != Flow::Grpc);
    if any_rest
        && !store
            .relying_parties()?
            .iter()
            .any(|r| r.uuid == REST_RP_UUID)
    {
        store.add_relying_party(
            &RelyingParty {
                uuid: REST_RP_UUID.into(),
                names: vec![REST_RP_NAME.into()],
                allowed_ips: Vec::new(),
                // The load requests never ask for the device's address.
                device_ip_sharing: false,
                portal: false,
                mtls_required: false,
            },
            unix_now(),
        )?;
    }
    Ok(Prepared {
        registration,
        accounts,
        transport,
        flows,
    })
}

/// Checks every account's last signature of each flow that ran: gRPC with OpenSSL, REST as a
/// relying party checks it.
async fn verify_all(
    accounts: &[Arc<tokio::sync::Mutex<Account>>],
    flows: &[Flow],
    urls: &Urls<'_>,
) -> anyhow::Result<()> {
    let any_rest = flows.iter().any(|f| *f != Flow::Grpc);
    if flows.contains(&Flow::Grpc) {
        // Every account's last signature verifies.
        for a in accounts {
            verify_last(&*a.lock().await)?;
        }
        eprintln!("every account's last gRPC signature verified with OpenSSL");
    }
    if any_rest {
        // Every account's last REST signature of each flow verifies as a relying party checks
        // it: certificate chain to the server's root, RSASSA-PSS or PKCS#1 v1.5 over the
        // digest, identity.
        let mut anchors = TrustAnchors::new();
        anchors.add_roots_pem(&std::fs::read(urls.pki.join("root.pem"))?)?;
        anchors.add_intermediates_pem(&std::fs::read(urls.pki.join("issuing.pem"))?)?;
        for a in accounts {
            let a = a.lock().await;
            for (flow, (status, req)) in &a.last_rest {
                let user = UserRef::Document(a.state.document_number.clone());
                verify::verify_signature(
                    status,
                    &SignatureExpectation::notification(req, &user)?,
                    &anchors,
                    std::time::SystemTime::now(),
                )
                .map_err(|e| {
                    anyhow::anyhow!(
                        "the {flow} signature of {} does not verify: {e:?}",
                        a.state.document_number
                    )
                })?;
            }
        }
        eprintln!(
            "every account's last REST signature of each flow verified (chain, RSASSA-PSS or \
             PKCS#1 v1.5)"
        );
    }
    Ok(())
}

/// Waits until the server's key pool is full again, so that its refill (key generation in
/// the background, after the previous registration) is idle while a registration request
/// is timed: "a warm key pool". On this 2-core machine a refill running beside the request
/// slowed it by about 15% even at the lowest scheduling priority (docs/BENCHMARKS.md).
/// `show`: a progress line while it waits.
async fn pool_full(
    store: &SqliteStore,
    (bits, target): (usize, usize),
    show: bool,
) -> anyhow::Result<()> {
    let waited = Instant::now();
    loop {
        let have = store.pooled_server_keys(bits)?;
        if have >= target {
            return Ok(());
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(300),
            "the server's key pool did not fill ({have}/{target}) within 300 s"
        );
        if show {
            progress(&format!(
                "waiting for the server's key pool to refill: {have}/{target} ({:.0} s)",
                waited.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers simulated device `i` and precomputes its partial signature; returns the
/// account, the server's part of the registration (time) and the server's CPU in it.
async fn register(
    client: &Client,
    store: &SqliteStore,
    i: usize,
    key_bits: usize,
    (transport, form): (&[u8], dev::ShareForm),
    pool: (usize, usize),
    pid: u32,
) -> anyhow::Result<(Account, Duration, Duration)> {
    let mut device_id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut device_id);
    let mut reg = dev::register_start(client, device_id).await?;
    store.approve_registration(
        &reg.registration_code,
        &Identity {
            given_name: format!("LOAD{i}"),
            surname: "TESTNUMBER".into(),
            country: "EE".into(),
            national_id: format!("3{:010}", 1_000_000 + i),
        },
        unix_now(),
    )?;
    let (pin1, pin2) = (Pin::new(PIN1)?, Pin::new(PIN2)?);
    // The device's work is done before each request is timed: only the server's part of
    // the two registration requests is measured.
    let keys = dev::prepare_keys_in_form(
        transport,
        form,
        &reg,
        &pin1,
        &pin2,
        key_bits,
        KdfParams::default(),
    )?;
    pool_full(store, pool, false).await?;
    let cpu0 = ThreadsCpu::requests(pid)?;
    let t0 = Instant::now();
    dev::send_keys(client, &mut reg, keys).await?;
    let submit = t0.elapsed();
    let cpu_submit = ThreadsCpu::requests(pid)?.since(&cpu0);
    let proof = dev::prepare_proof(client, &reg, &pin1, &pin2).await?;
    pool_full(store, pool, false).await?;
    let cpu1 = ThreadsCpu::requests(pid)?;
    let t1 = Instant::now();
    let outcome = dev::send_proof(client, &reg, proof).await?;
    let server_part = submit + t1.elapsed();
    let server_cpu = cpu_submit + ThreadsCpu::requests(pid)?.since(&cpu1);
    let state = match outcome {
        ProofOutcome::Completed(s) => *s,
        ProofOutcome::PinMismatch { .. } => anyhow::bail!("registration proof failed"),
    };
    let kp = state
        .key_pair(KeyType::Sign)
        .context("the account has no SIGN key")?;
    let bits = bit_length(&kp.composite_modulus);
    let digest = Sha256::digest(format!("tandem load {}", state.document_number)).to_vec();
    let x = encode_pkcs1v15(HashAlgorithm::Sha256, &digest, bits)?;
    let pre = dev::precompute(
        &state,
        KeyType::Sign,
        &pin2,
        &SigningRequest {
            scheme: SignatureScheme::Pkcs1v15,
            hash: HashAlgorithm::Sha256,
            digest: digest.clone(),
            encoded_message: x,
            composite_modulus_bits: bits,
        },
    )?;
    let sign_share = state
        .key_pair(KeyType::Sign)
        .context("the account has no SIGN key")?
        .protected_share
        .unlock(&pin2, &state.keystore_secret)?;
    Ok((
        Account {
            state,
            digest,
            pre,
            sign_share,
            rest_pkcs1_share: None,
            last_status: None,
            rest_count: 0,
            last_rest: BTreeMap::new(),
        },
        server_part,
        server_cpu,
    ))
}

/// The times of one session.
struct Timed {
    confirm: Duration,
    session: Duration,
}

/// One signature session: RP start, device pending + confirm with the precomputed share, RP
/// fetches the result.
async fn sign_once(
    client: &Client,
    rp: &mut RelyingPartyClient<Channel>,
    a: &mut Account,
    transport: &[u8],
) -> anyhow::Result<Timed> {
    let t0 = Instant::now();
    let start = rp
        .start_signature(pb::StartTransactionRequest {
            relying_party_name: "Load Test Bank".into(),
            target: Some(pb::start_transaction_request::Target::DocumentNumber(
                a.state.document_number.clone(),
            )),
            hash: pb::HashAlgorithm::Sha256 as i32,
            digest: a.digest.clone(),
            scheme: pb::SignatureScheme::Pkcs1V15 as i32,
            display_text: "Load test".into(),
            vc_choice: false,
            timeout_seconds: 0,
        })
        .await?
        .into_inner();
    let pending = dev::list_pending(client, &a.state).await?;
    let t = pending
        .into_iter()
        .find(|t| t.transaction_id == start.transaction_id)
        .context("the transaction did not reach the device")?;
    let prepared = dev::prepare_confirm_precomputed(&a.state, &t, &a.pre, transport)?;
    let (t1, t2) = confirm_timed(client, a, &prepared).await?;
    // The relying party fetches the result, as the REST flow's does (the signature itself
    // is verified for each account's last one, after the phases: `verify_last`).
    let status = rp
        .get_transaction_status(pb::GetTransactionStatusRequest {
            transaction_id: start.transaction_id.clone(),
        })
        .await?
        .into_inner();
    let t3 = Instant::now();
    anyhow::ensure!(
        status.state == pb::TransactionState::Complete as i32
            && status.end_result == pb::EndResult::Ok as i32
            && !status.signature.is_empty(),
        "the transaction ended with {:?}",
        pb::EndResult::try_from(status.end_result)
    );
    a.last_status = Some(status);
    Ok(Timed {
        confirm: t2 - t1,
        session: t3 - t0,
    })
}

/// Sends a prepared confirmation and checks that it was accepted; returns when it was sent
/// and when the answer came (the server's part lies between).
async fn confirm_timed(
    client: &Client,
    a: &mut Account,
    prepared: &dev::PreparedConfirm,
) -> anyhow::Result<(Instant, Instant)> {
    let t1 = Instant::now();
    let resp = dev::send_confirm(client, &mut a.state, prepared).await?;
    let t2 = Instant::now();
    anyhow::ensure!(
        resp.outcome == pb::ConfirmOutcome::Accepted as i32,
        "the server answered {:?}",
        pb::ConfirmOutcome::try_from(resp.outcome)
    );
    Ok((t1, t2))
}

/// One REST signature session: the relying party starts it over the Smart-ID RP API v3
/// (notification, RAW_DIGEST_SIGNATURE, RSASSA-PSS with SHA-256), the device lists it,
/// signs the encoding the server chose with its unlocked share, confirms, and the relying
/// party long-polls the session until it has the signature.
async fn sign_once_rest(
    client: &Client,
    rest: &RpApiClient,
    a: &mut Account,
    transport: &[u8],
    flow: Flow,
) -> anyhow::Result<Timed> {
    let pss = flow == Flow::Rest;
    a.rest_count += 1;
    let digest = if pss {
        Sha256::digest(format!(
            "tandem load rest {} {}",
            a.state.document_number, a.rest_count
        ))
    } else {
        Sha256::digest(format!("tandem load rest {}", a.state.document_number))
    };
    let (signature_algorithm, signature_algorithm_parameters) = if pss {
        (
            SignatureAlgorithm::RsassaPss,
            Some(SignatureAlgorithmParametersInRequest {
                hash_algorithm: RestHash::Sha256,
            }),
        )
    } else {
        (SignatureAlgorithm::Sha256WithRsaEncryption, None)
    };
    let req = NotificationSigningRequest {
        relying_party_uuid: REST_RP_UUID.into(),
        relying_party_name: REST_RP_NAME.into(),
        certificate_level: None,
        signature_protocol: SignSignatureProtocol::RawDigestSignature,
        signature_protocol_parameters: SignSignatureProtocolParameters {
            digest: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, digest),
            signature_algorithm,
            signature_algorithm_parameters,
        },
        // The same digest each time (rest-pkcs1): the nonce keeps the server from answering
        // with the earlier identical request's session (the RP API's idempotency).
        nonce: (!pss).then(|| format!("load{}", a.rest_count)),
        interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
            display_text60: "Load test".into(),
        }]),
        request_properties: None,
        capabilities: None,
    };
    let user = UserRef::Document(a.state.document_number.clone());
    let t0 = Instant::now();
    let started = rest.notification_signature(&user, &req).await?;
    let pending = dev::list_pending(client, &a.state).await?;
    let t = pending
        .into_iter()
        .next()
        .context("the REST session did not reach the device")?;
    // The device's work (the exponentiation with the share unlocked at registration):
    // CPU-bound, off the async workers. It runs with the server's constant-time
    // exponentiation (`tandem_server::bn`: AVX-512 IFMA where the CPU has it, else OpenSSL's ladder),
    // in a quarter to a half of the CPU time of the app's pure-Rust one: the device shares
    // the cores with the server being measured. rest-pkcs1 computes it once (the same `x`
    // each time); the device's checks of the request run every time.
    let prepared = {
        let memo = std::cell::RefCell::new(a.rest_pkcs1_share.take());
        let device_mod_exp = |x: &[u8], d: &[u8], n: &[u8]| {
            if let Some((cx, s)) = &*memo.borrow()
                && cx.as_slice() == x
            {
                return Ok(s.to_vec());
            }
            let s = tandem_server::bn::mod_exp_secret(x, d, n)
                .map_err(|_| tandem_client_core::Error::InvalidInteger)?;
            if !pss {
                *memo.borrow_mut() = Some((x.to_vec(), zeroize::Zeroizing::new(s.clone())));
            }
            Ok(s)
        };
        let prepared = tokio::task::block_in_place(|| {
            dev::prepare_confirm_with_share_using(
                &a.state,
                &t,
                &a.sign_share,
                None,
                transport,
                &device_mod_exp,
            )
        });
        a.rest_pkcs1_share = memo.into_inner();
        prepared?
    };
    let (t1, t2) = confirm_timed(client, a, &prepared).await?;
    let status = rest
        .wait_for_completion(&started.session_id, Some(5_000), |_| {})
        .await?;
    let t3 = Instant::now();
    let end = status.result.as_ref().map(|r| r.end_result);
    anyhow::ensure!(
        matches!(end, Some(tandem_rp::api::types::EndResult::Ok)),
        "the REST session ended with {end:?}"
    );
    a.last_rest.insert(flow.name(), (status, req));
    Ok(Timed {
        confirm: t2 - t1,
        session: t3 - t0,
    })
}

/// The clients of one worker: the device's, the gRPC relying party's and the REST one's.
type Clients<'a> = (
    &'a Client,
    &'a mut RelyingPartyClient<Channel>,
    &'a RpApiClient,
);

/// One signature session of `flow`.
async fn sign_flow(
    flow: Flow,
    (client, rp, rest): Clients<'_>,
    a: &mut Account,
    transport: &[u8],
) -> anyhow::Result<Timed> {
    match flow {
        Flow::Grpc => sign_once(client, rp, a, transport).await,
        Flow::Rest | Flow::RestPkcs1 => sign_once_rest(client, rest, a, transport, flow).await,
    }
}

/// Checks the account's last signature, as its relying party fetched it, with OpenSSL
/// (RSASSA-PKCS1-v1_5, SHA-256).
fn verify_last(a: &Account) -> anyhow::Result<()> {
    let st = a.last_status.as_ref().context("no signature yet")?;
    let key = st.key_pair.as_ref().context("no key in the status")?;
    let pkey = openssl::pkey::PKey::public_key_from_der(&key.public_key_der)?;
    let mut verifier = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
    verifier.update(format!("tandem load {}", a.state.document_number).as_bytes())?;
    anyhow::ensure!(
        verifier.verify(&st.signature)?,
        "OpenSSL rejects the signature of {}",
        a.state.document_number
    );
    Ok(())
}

/// The CPU time of some of a process' threads, by thread, from
/// `/proc/<pid>/task/<tid>/schedstat` (nanoseconds; `/proc/<pid>/stat` counts in clock ticks
/// of 10 ms, too coarse for one registration).
struct ThreadsCpu(std::collections::HashMap<u32, u64>);

impl ThreadsCpu {
    /// The threads of process `pid` alive now whose name `keep` accepts.
    fn of(pid: u32, keep: impl Fn(&str) -> bool) -> anyhow::Result<Self> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .with_context(|| format!("cannot read /proc/{pid}/task (Linux only)"))?;
        let mut threads = std::collections::HashMap::new();
        for task in tasks {
            let dir = task?.path();
            // A thread that ended meanwhile is skipped.
            let (Ok(name), Ok(stat)) = (
                std::fs::read_to_string(dir.join("comm")),
                std::fs::read_to_string(dir.join("schedstat")),
            ) else {
                continue;
            };
            if !keep(name.trim()) {
                continue;
            }
            let tid = dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
                .context("unexpected /proc/<pid>/task entry")?;
            let ns = stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .context("unexpected /proc/<pid>/task/<tid>/schedstat")?;
            threads.insert(tid, ns);
        }
        Ok(Self(threads))
    }

    /// The threads that serve requests: all but the key pool's, whose work (generating and
    /// warming up keys) is the pool's, done off the request path.
    fn requests(pid: u32) -> anyhow::Result<Self> {
        Self::of(pid, |name| {
            !tandem_server::run::KEY_POOL_THREADS.contains(&name)
        })
    }

    /// The server's HSM-call workers ([`tandem_server::hsm::HSM_CALL_THREAD`]). A worker ends only
    /// after a minute without calls, so over a phase in which signatures are made none of
    /// its time is lost.
    fn hsm_calls(pid: u32) -> anyhow::Result<Self> {
        Self::of(pid, |name| name == tandem_server::hsm::HSM_CALL_THREAD)
    }

    /// CPU time used since `before` by the threads alive now. A thread that ended between
    /// the two readings is missing from the sum; threads end only after seconds of idleness
    /// (blocking pool, HSM-call workers), so what they ran in between is nothing.
    fn since(&self, before: &Self) -> Duration {
        let ns: u64 = self
            .0
            .iter()
            .map(|(tid, now)| now.saturating_sub(before.0.get(tid).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(ns)
    }
}

/// User + system CPU time of process `pid`, from `/proc/<pid>/stat` (clock ticks of
/// `getconf CLK_TCK`, 100 on Linux): over a whole phase, with the threads that ended in it.
fn cpu_time(pid: u32, ticks_per_second: f64) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat (Linux only)"))?;
    // Fields after the command name (which may hold spaces) start with field 3 (state).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/<pid>/stat")?
            .parse::<u64>()? as f64)
    };
    // utime is field 14, stime field 15: indexes 11 and 12 from field 3.
    Ok(Duration::from_secs_f64(
        (ticks(11)? + ticks(12)?) / ticks_per_second,
    ))
}

fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The relying-party API of a phase (`--flows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flow {
    /// The gRPC RelyingParty API, device work precomputed.
    Grpc,
    /// RSASSA-PSS, device work live.
    Rest,
    /// sha256WithRSAEncryption over a fixed digest, device work precomputed.
    RestPkcs1,
}

impl Flow {
    /// As `--flows` spells it, and as the table and the JSON show it.
    fn name(self) -> &'static str {
        match self {
            Flow::Grpc => "grpc",
            Flow::Rest => "rest",
            Flow::RestPkcs1 => "rest-pkcs1",
        }
    }
}

/// A worker's own connections: the device's, the gRPC relying party's and the REST one's.
async fn worker_clients(
    urls: &Urls<'_>,
) -> anyhow::Result<(Client, RelyingPartyClient<Channel>, RpApiClient)> {
    let client = Client::connect(urls.grpc, urls.ca).await?;
    let rp = rp_client(urls.grpc, urls.ca).await?;
    let mut c = ClientConfig::new(urls.rest);
    c.extra_root_pem = Some(urls.ca.to_vec());
    Ok((client, rp, RpApiClient::new(c)?))
}

/// One phase: `accounts.len()` workers sign in a loop for `opts.seconds`.
async fn phase(
    opts: &LoadOptions,
    urls: &Urls<'_>,
    accounts: &[Arc<tokio::sync::Mutex<Account>>],
    transport: &[u8],
    pid: u32,
    flow: Flow,
    repeat: usize,
) -> anyhow::Result<Phase> {
    let c = accounts.len();
    let tps = ticks_per_second();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_time(pid, tps)?;
    let hsm0 = ThreadsCpu::hsm_calls(pid)?;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(opts.seconds);
    let mut tasks = Vec::new();
    for a in accounts {
        let (a, done, failed) = (Arc::clone(a), Arc::clone(&done), Arc::clone(&failed));
        let (client, mut rp, rest) = worker_clients(urls).await?;
        let transport = transport.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut a = a.lock().await;
            while Instant::now() < deadline {
                let r = sign_flow(flow, (&client, &mut rp, &rest), &mut a, &transport).await;
                match r {
                    Ok(t) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        times.push(t);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        *errors.entry(e.to_string()).or_default() += 1;
                        // Do not spin on a persistent failure.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (times, errors)
        }));
    }
    let name = if opts.repeat > 1 {
        format!("round {repeat}/{}: {}", opts.repeat, flow.name())
    } else {
        flow.name().to_owned()
    };
    // Progress once a second until the workers end.
    let reporter = {
        let name = name.clone();
        let (done, failed) = (Arc::clone(&done), Arc::clone(&failed));
        let seconds = opts.seconds;
        tokio::spawn(async move {
            loop {
                let el = t0.elapsed().as_secs_f64();
                let n = done.load(Ordering::Relaxed);
                progress(&format!(
                    "{name} concurrency {c}: {el:.0}/{seconds} s, {n} signatures ({:.1}/s), {} errors",
                    n as f64 / el.max(1e-3),
                    failed.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let mut confirm = Vec::new();
    let mut session = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let (times, errs) = t.await?;
        for x in times {
            confirm.push(x.confirm);
            session.push(x.session);
        }
        for (k, v) in errs {
            *errors.entry(k).or_default() += v;
        }
    }
    let elapsed = t0.elapsed();
    let cpu = cpu_time(pid, tps)?.saturating_sub(cpu0);
    let hsm_cpu = ThreadsCpu::hsm_calls(pid)?.since(&hsm0);
    reporter.abort();
    let completed = done.load(Ordering::Relaxed);
    let phase = Phase {
        flow: flow.name().into(),
        concurrency: c,
        completed,
        errors: failed.load(Ordering::Relaxed),
        seconds: elapsed.as_secs_f64(),
        per_second: completed as f64 / elapsed.as_secs_f64(),
        confirm_ms: Percentiles::of(&mut confirm),
        session_ms: Percentiles::of(&mut session),
        server_cpu_ms_per_signature: per_signature_ms(cpu, completed),
        hsm_call_cpu_ms_per_signature: per_signature_ms(hsm_cpu, completed),
        server_cores: cpu.as_secs_f64() / elapsed.as_secs_f64(),
        repeat,
        // Set by the caller, which measures the reference next to the phase.
        reference_ms: 0.0,
        cpu_per_reference: 0.0,
    };
    progress(&format!(
        "{name} concurrency {c}: {completed} signatures in {:.1} s ({:.1}/s), {} errors\n",
        phase.seconds, phase.per_second, phase.errors
    ));
    for (e, n) in errors {
        eprintln!("  {n} x {e}");
    }
    Ok(phase)
}

/// CPU time per completed signature, in milliseconds (0 without signatures).
fn per_signature_ms(cpu: Duration, completed: u64) -> f64 {
    if completed == 0 {
        0.0
    } else {
        cpu.as_secs_f64() * 1e3 / completed as f64
    }
}

fn print_table(opts: &LoadOptions, summary: &[PhaseSummary]) {
    println!(
        "\n{} accounts, {}-bit keys, {} s per phase, {} round(s), HSM {}; latencies in ms (confirm = the server's part)\n",
        opts.accounts,
        opts.key_bits,
        opts.seconds,
        opts.repeat,
        if opts.softhsm { "SoftHSM" } else { "hsm-sim" }
    );
    println!(
        "| API | concurrency | signatures/s | confirm p50 | p95 | p99 | session p99 | errors | server CPU ms/signature | reference ms | CPU / reference | HSM calls / reference | rest / reference | CPU / reference, all rounds | server cores |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in summary {
        let p = &s.median;
        let (cpu, hsm, reference) = (
            p.server_cpu_ms_per_signature,
            p.hsm_call_cpu_ms_per_signature,
            p.reference_ms,
        );
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} |",
            p.flow,
            p.concurrency,
            p.per_second,
            p.confirm_ms.p50,
            p.confirm_ms.p95,
            p.confirm_ms.p99,
            p.session_ms.p99,
            p.errors,
            cpu,
            reference,
            p.cpu_per_reference,
            hsm / reference,
            (cpu - hsm) / reference,
            if s.repeats == 1 {
                format!("{:.2}", s.cpu_per_reference_min)
            } else {
                format!(
                    "{:.2}–{:.2}",
                    s.cpu_per_reference_min, s.cpu_per_reference_max
                )
            },
            p.server_cores
        );
    }
    println!(
        "\nEach row is the round with the median CPU / reference. Reference = one signature's \
         floor (OpenSSL const-time modexp + RSA CRT private op, {} bits), measured in this run \
         on the idle machine just before and just after each phase; the lower of the two counts. \
         CPU / reference = HSM calls (the server's HSM-call threads: share exponentiation, RSA \
         operation, envelope opening and the checks of their results) + rest (the requests' own \
         work: TLS, HTTP/2, JSON, SQLite, thread hand-offs).",
        opts.key_bits
    );
    println!(
        "\np99 / reference at each level: {}",
        summary
            .iter()
            .map(|s| format!(
                "{} {}: {:.2}",
                s.median.flow,
                s.median.concurrency,
                s.median.confirm_ms.p99 / s.median.reference_ms
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// An SVG chart: signatures per second (left axis) and confirm latency p50/p99 (right axis)
/// against concurrency.
fn chart(opts: &LoadOptions, phases: &[Phase]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 360.0, 60.0, 60.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let max_c = phases.iter().map(|p| p.concurrency).max().unwrap_or(1) as f64;
    let nice = |v: f64| -> f64 {
        let v = v.max(1e-9);
        let e = 10f64.powf(v.log10().floor());
        [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * e)
            .find(|s| *s >= v)
            .unwrap_or(10.0 * e)
    };
    let max_rate = nice(phases.iter().map(|p| p.per_second).fold(0.0, f64::max) * 1.1);
    let max_ms = nice(phases.iter().map(|p| p.confirm_ms.p99).fold(0.0, f64::max) * 1.1);
    let x = |c: f64| {
        left + if max_c <= 1.0 {
            pw / 2.0
        } else {
            (c - 1.0) / (max_c - 1.0) * pw
        }
    };
    let y_rate = |v: f64| top + ph - v / max_rate * ph;
    let y_ms = |v: f64| top + ph - v / max_ms * ph;
    let line = |pts: Vec<(f64, f64)>, color: &str, dash: &str| -> String {
        let d: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let dots: String = pts
            .iter()
            .map(|(a, b)| format!(r#"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="{color}"/>"#))
            .collect();
        format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>{dots}"#,
            d.join(" ")
        )
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">tandem load: {} accounts, {}-bit keys, {}</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>
<line x1="{}" y1="{top}" x2="{}" y2="{}" stroke="black"/>
"#,
        w / 2.0,
        opts.accounts,
        opts.key_bits,
        if opts.softhsm { "SoftHSM" } else { "hsm-sim" },
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
            r##"<line x1="{left}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" fill="#1f6fb2">{:.0}</text><text x="{}" y="{:.1}" fill="#c0392b">{:.0}</text>
"##,
            left + pw,
            left - 6.0,
            yy + 4.0,
            f * max_rate,
            left + pw + 6.0,
            yy + 4.0,
            f * max_ms
        ));
    }
    for p in phases {
        let xx = x(p.concurrency as f64);
        svg.push_str(&format!(
            r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>
"#,
            top + ph + 16.0,
            p.concurrency
        ));
    }
    // One set of lines per relying-party API: gRPC blue/red, REST green/orange, REST with
    // precomputed devices purple/brown.
    let mut legend_y = top + 14.0;
    for (flow, rate_color, ms_color) in [
        ("grpc", "#1f6fb2", "#c0392b"),
        ("rest", "#27ae60", "#e67e22"),
        ("rest-pkcs1", "#8e44ad", "#8d6e63"),
    ] {
        let of: Vec<&Phase> = phases.iter().filter(|p| p.flow == flow).collect();
        if of.is_empty() {
            continue;
        }
        svg.push_str(&line(
            of.iter()
                .map(|p| (x(p.concurrency as f64), y_rate(p.per_second)))
                .collect(),
            rate_color,
            "",
        ));
        svg.push_str(&line(
            of.iter()
                .map(|p| (x(p.concurrency as f64), y_ms(p.confirm_ms.p50)))
                .collect(),
            ms_color,
            "5,4",
        ));
        svg.push_str(&line(
            of.iter()
                .map(|p| (x(p.concurrency as f64), y_ms(p.confirm_ms.p99)))
                .collect(),
            ms_color,
            "",
        ));
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{legend_y:.1}"><tspan fill="{rate_color}">{flow}: signatures/s</tspan> <tspan fill="{ms_color}">confirm latency</tspan></text>
"#,
            left + 8.0
        ));
        legend_y += 16.0;
    }
    svg.push_str(&format!(
        r##"
<text x="{}" y="{}" text-anchor="middle">concurrent sessions</text>
<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle" fill="#1f6fb2">signatures per second</text>
<text x="{}" y="{}" transform="rotate(90 {} {})" text-anchor="middle" fill="#c0392b">confirm latency ms (p50 dashed, p99 solid)</text>
</svg>
"##,
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

    fn phase(flow: &str, concurrency: usize, repeat: usize, ratio: f64) -> Phase {
        let ms = Percentiles {
            p50: 1.0,
            p95: 1.0,
            p99: 1.0,
            max: 1.0,
        };
        Phase {
            flow: flow.into(),
            concurrency,
            completed: 10,
            errors: 0,
            seconds: 1.0,
            per_second: 10.0,
            confirm_ms: ms.clone(),
            session_ms: ms,
            server_cpu_ms_per_signature: ratio * 6.0,
            hsm_call_cpu_ms_per_signature: 6.0,
            server_cores: 0.5,
            repeat,
            reference_ms: 6.0,
            cpu_per_reference: ratio,
        }
    }

    #[test]
    fn flow_names_are_the_command_line_names() {
        use clap::ValueEnum as _;
        for f in Flow::value_variants() {
            let v = f.to_possible_value().unwrap();
            assert_eq!(v.get_name(), f.name());
        }
    }

    #[test]
    fn each_level_is_summarised_by_its_median_round() {
        let phases = [
            phase("grpc", 1, 1, 1.30),
            phase("grpc", 4, 1, 1.10),
            phase("rest", 1, 1, 1.25),
            phase("grpc", 1, 2, 1.20),
            phase("grpc", 4, 2, 1.15),
            phase("rest", 1, 2, 1.40),
            phase("grpc", 1, 3, 1.22),
            phase("grpc", 4, 3, 1.12),
        ];
        let s = PhaseSummary::of(&phases);
        let got: Vec<(&str, usize, usize, usize, f64, f64)> = s
            .iter()
            .map(|s| {
                (
                    s.median.flow.as_str(),
                    s.median.concurrency,
                    s.repeats,
                    s.median.repeat,
                    s.cpu_per_reference_min,
                    s.cpu_per_reference_max,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                // Three rounds: the middle one.
                ("grpc", 1, 3, 3, 1.20, 1.30),
                ("grpc", 4, 3, 3, 1.10, 1.15),
                // Two rounds: the higher one.
                ("rest", 1, 2, 2, 1.25, 1.40),
            ]
        );
    }
}
