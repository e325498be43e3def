//! `tandem server init` and `tandem server run`.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tandem_proto::v1::device_server::DeviceServer;
use tandem_proto::v1::relying_party_server::RelyingPartyServer;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::config::{CONFIG_FILE, Config};
use crate::hsm::{Hsm, HsmConfig, TokenPin};
use crate::service::{App, DeviceService, RelyingPartyService};
use crate::store::SqliteStore;

/// The provisioning script, embedded so `server init --softhsm` works from any directory.
const SOFTHSM_PROVISION: &str = include_str!("../../deploy/softhsm-provision.sh");

/// Largest request message accepted (the biggest legitimate one, the key hand-over with
/// two 4096-bit keys, is about 3 KiB).
const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Default SoftHSM module path on Debian/Ubuntu.
pub const DEFAULT_SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// File name of the hsm-sim PKCS#11 module (`cargo build -p tandem-hsm-sim`).
pub const HSM_SIM_MODULE_FILE: &str = "libtandem_hsm_sim.so";

/// Names of the key pool's threads: the refill (key generation at idle priority) and the
/// warm-up of each new key. `tandem load` leaves them out of a registration's CPU.
pub const KEY_POOL_THREADS: [&str; 2] = ["tandem-key-pool", "tandem-key-warm"];

pub use crate::hsm::HSM_SIM_DIR_ENV;

/// The hsm-sim module built with this binary: next to it (`target/debug/tandem` and
/// `target/debug/libtandem_hsm_sim.so`), or one directory up (test binaries in `deps/`).
pub fn hsm_sim_module() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the program has no directory")?;
    let candidates = [
        Some(dir.join(HSM_SIM_MODULE_FILE)),
        dir.parent().map(|p| p.join(HSM_SIM_MODULE_FILE)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "the hsm-sim PKCS#11 module ({HSM_SIM_MODULE_FILE}) is not next to {}: build it with \
                 `cargo build -p tandem-hsm-sim` (scripts/demo.sh does), or use --softhsm or --module",
                exe.display()
            )
        })
}

/// Which HSM `server init` sets up.
#[derive(Debug, Clone)]
pub enum HsmChoice {
    /// hsm-sim, with its token directory inside the data directory (the default: no system
    /// package needed).
    Sim,
    /// A SoftHSM token inside the data directory (development and tests).
    SoftHsm,
    /// An existing, initialised token of this PKCS#11 module.
    Module(PathBuf),
}

/// Options of `server init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The HSM.
    pub hsm: HsmChoice,
    /// Token label.
    pub token_label: String,
    /// File with the token user PIN (when not provisioning SoftHSM).
    pub pin_file: Option<PathBuf>,
    /// Listen address.
    pub listen: String,
    /// Key sizes: server key n2 (bits).
    pub server_key_bits: usize,
    /// Transport key: "ec-p256" or "rsa".
    pub transport_key: String,
    /// Transport key size (bits) when it is RSA.
    pub transport_key_bits: usize,
    /// CA key type.
    pub ca_key_spec: crate::hsm::CaKeySpec,
    /// Base URL of the OCSP/CRL/CA publication point written into certificates.
    pub public_base_url: Option<String>,
    /// Where the share exponentiation happens (`hsm.share_exponentiation`).
    pub share_exponentiation: crate::hsm::ShareExponentiation,
}

/// Creates a data directory: configuration, TLS certificate, database, HSM objects.
/// Refuses to overwrite an existing configuration.
pub fn init(dir: &Path, opts: &InitOptions) -> anyhow::Result<Config> {
    if dir.join(CONFIG_FILE).exists() {
        anyhow::bail!(
            "{} already holds a configuration; refusing to overwrite it",
            dir.display()
        );
    }
    // Owner-only, as are its subdirectories and every secret file in it (`fs_mode`).
    crate::fs_mode::create_private_dir(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let module = match &opts.hsm {
        HsmChoice::Sim => hsm_sim_module()?,
        HsmChoice::SoftHsm => PathBuf::from(DEFAULT_SOFTHSM_MODULE),
        HsmChoice::Module(m) => m.clone(),
    };
    let mut cfg = Config::defaults(module, opts.token_label.clone());
    cfg.listen = opts.listen.clone();
    cfg.keys.server_key_bits = opts.server_key_bits;
    cfg.keys.transport_key = opts.transport_key.clone();
    cfg.keys.transport_key_bits = opts.transport_key_bits;
    cfg.keys.transport_spec()?;
    cfg.hsm.share_exponentiation = opts.share_exponentiation;
    cfg.hsm.pin_file = opts.pin_file.clone();
    cfg.pki.key_spec = opts.ca_key_spec;
    if let Some(url) = &opts.public_base_url {
        cfg.pki.public_base_url = url.clone();
    }
    if let HsmChoice::Sim = opts.hsm {
        // The token is created by `server hsm-init --provision-token` (the module reads
        // TANDEM_HSM_SIM_DIR when it loads). Random PINs, owner-only files.
        let hsm_dir = dir.join("hsm");
        crate::fs_mode::create_private_dir(&hsm_dir)?;
        for name in ["user-pin", "so-pin"] {
            crate::tls::write_private(&hsm_dir.join(name), random_pin().as_bytes())?;
        }
        cfg.hsm.pin_file = Some(PathBuf::from("hsm/user-pin"));
        cfg.hsm
            .env
            .insert(HSM_SIM_DIR_ENV.into(), hsm_dir.display().to_string());
        eprintln!("hsm-sim token directory {}", hsm_dir.display());
    }
    if let HsmChoice::SoftHsm = opts.hsm {
        eprintln!(
            "provisioning a SoftHSM token in {}",
            dir.join("hsm").display()
        );
        let hsm_dir = dir.join("hsm");
        let pin_file = hsm_dir.join("user-pin");
        crate::fs_mode::create_private_dir(&hsm_dir)?;
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(SOFTHSM_PROVISION)
            .arg("softhsm-provision.sh")
            .arg(&hsm_dir)
            .arg(&opts.token_label)
            .arg(&pin_file)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("cannot run bash for the SoftHSM provisioning")?;
        anyhow::ensure!(
            out.status.success(),
            "SoftHSM provisioning failed (is softhsm2 installed? run scripts/install-deps.sh)"
        );
        cfg.hsm.pin_file = Some(PathBuf::from("hsm/user-pin"));
        cfg.hsm.env.insert(
            "SOFTHSM2_CONF".into(),
            hsm_dir.join("softhsm2.conf").display().to_string(),
        );
    }
    cfg.validate()?;
    cfg.save(&dir)?;
    let cfg = Config::load(&dir)?;
    for sub in [cfg.tls.cert.parent(), cfg.tls.key.parent()]
        .into_iter()
        .flatten()
    {
        if sub.starts_with(&dir) {
            crate::fs_mode::create_private_dir(sub)?;
        }
    }
    crate::fs_mode::create_private_dir(&crate::ca::pki_dir(&dir))?;
    crate::tls::generate_self_signed(&cfg.tls.cert, &cfg.tls.key)?;
    SqliteStore::open(&cfg.database).context("cannot create the database")?;
    Ok(cfg)
}

/// 24 random alphanumerics (a token PIN written to a 0600 file).
fn random_pin() -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(crate::service::random_alphanumeric(24))
}

/// Initialises the hsm-sim token of a data directory made by `init` (PINs from `hsm/so-pin`
/// and the user PIN file). Needs the module's environment. Idempotent.
pub fn provision_hsm_sim_token(cfg: &Config, data_dir: &Path) -> anyhow::Result<()> {
    let so = TokenPin::from_file(data_dir.join("hsm/so-pin"))?;
    let user_file = cfg
        .hsm
        .pin_file
        .as_ref()
        .context("hsm.pin_file is not set")?;
    let user = TokenPin::from_file(user_file)?;
    if crate::hsm::provision_token(&cfg.hsm.module, &cfg.hsm.token_label, &so, &user)? {
        eprintln!("hsm-sim token {:?} initialised", cfg.hsm.token_label);
    }
    Ok(())
}

/// Creates the HSM objects (KEK, transport key). Needs the module's environment (see
/// [`ensure_module_env`]).
pub fn init_hsm_objects(cfg: &Config, data_dir: &Path) -> anyhow::Result<()> {
    let hsm = open_hsm(cfg)?;
    if cfg.hsm.share_exponentiation == crate::hsm::ShareExponentiation::TokenRsa {
        // Before ensure_objects, which would otherwise create a KEK with CKA_DECRYPT.
        hsm.ensure_kek_without_decrypt()?;
    }
    let report = hsm.ensure_objects(cfg.keys.transport_spec()?)?;
    hsm.use_share_exponentiation(cfg.hsm.share_exponentiation)?;
    eprintln!(
        "HSM objects: key-encryption key {:?}, key-transport key {:?} ({}), reply key {:?}",
        report.kek, report.transport_key, report.transport_key_spec, report.reply_key
    );
    crate::ca::init(cfg, data_dir, &hsm)
}

/// Opens the configured HSM with the PIN from the file or the environment.
pub fn open_hsm(cfg: &Config) -> anyhow::Result<Hsm> {
    let pin = match &cfg.hsm.pin_file {
        Some(path) => TokenPin::from_file(path)
            .with_context(|| format!("cannot read the HSM PIN file {}", path.display()))?,
        None => TokenPin::from_env(&cfg.hsm.pin_env)
            .with_context(|| format!("set the HSM PIN in ${} or hsm.pin_file", cfg.hsm.pin_env))?,
    };
    let hsm = Hsm::open(&HsmConfig {
        module_path: cfg.hsm.module.clone(),
        token_label: cfg.hsm.token_label.clone(),
        user_pin: pin,
    })
    .with_context(|| {
        format!(
            "cannot open the HSM token {:?} via {}",
            cfg.hsm.token_label,
            cfg.hsm.module.display()
        )
    })?;
    Ok(hsm)
}

/// PKCS#11 modules read their configuration from the environment at load time (SoftHSM:
/// `SOFTHSM2_CONF`). If the configured environment differs from ours, re-execute this
/// program with it set (changing the environment of a running multi-threaded process is
/// unsound). Returns only when the environment is already right.
pub fn ensure_module_env(cfg: &Config) -> anyhow::Result<()> {
    let missing: Vec<_> = cfg
        .hsm
        .env
        .iter()
        .filter(|(k, v)| std::env::var(k).ok().as_deref() != Some(v.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1));
    for (k, v) in &cfg.hsm.env {
        cmd.env(k, v);
    }
    let err = cmd.exec();
    Err(anyhow::anyhow!(
        "cannot re-execute with the HSM environment: {err}"
    ))
}

/// Prints one line to standard output (where a listener is, read by tests, `tandem demo` and
/// `tandem load`). A closed standard output (`tandem server run | head -1`) neither panics
/// nor stops the server.
fn announce(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Runs the server until `shutdown` resolves. Prints `listening on ADDR` once bound.
pub async fn serve(
    cfg: Config,
    data_dir: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = SqliteStore::open(&cfg.database)
        .with_context(|| format!("cannot open {}", cfg.database.display()))?;
    let hsm = tokio::task::spawn_blocking({
        let (cfg, dir) = (cfg.clone(), data_dir.to_path_buf());
        move || -> anyhow::Result<Hsm> {
            let hsm = open_hsm(&cfg)?;
            hsm.use_share_exponentiation(cfg.hsm.share_exponentiation)?;
            // Data directories made before stored answers were sealed have no reply key yet.
            if hsm.ensure_reply_key()? == crate::hsm::ObjectStatus::Created {
                eprintln!(
                    "created the HSM's reply key ({})",
                    crate::hsm::REPLY_KEY_LABEL
                );
            }
            // Data directories made before the time-stamp authority have no TSA key yet.
            crate::ca::ensure_tsa(&cfg, &dir, &hsm)?;
            // ... and those made before the proof of origin no proof-of-origin key.
            crate::ca::ensure_origin(&cfg, &dir, &hsm)?;
            Ok(hsm)
        }
    })
    .await??;
    let cert = std::fs::read(&cfg.tls.cert)
        .with_context(|| format!("cannot read {}", cfg.tls.cert.display()))?;
    let key = std::fs::read(&cfg.tls.key)
        .with_context(|| format!("cannot read {}", cfg.tls.key.display()))?;
    let addr: SocketAddr = cfg
        .listen
        .parse()
        .with_context(|| format!("invalid listen address {}", cfg.listen))?;
    let ca = tokio::task::spawn_blocking({
        let (cfg, hsm, dir) = (cfg.clone(), hsm.clone(), data_dir.to_path_buf());
        move || crate::ca::Ca::load(&cfg, &dir, &hsm)
    })
    .await??;
    let http_addr: SocketAddr = cfg
        .pki
        .http_listen
        .parse()
        .with_context(|| format!("invalid pki.http_listen address {}", cfg.pki.http_listen))?;
    let rest_addr: Option<SocketAddr> = if cfg.rp_api.listen.is_empty() {
        None
    } else {
        Some(
            cfg.rp_api
                .listen
                .parse()
                .with_context(|| format!("invalid rp_api.listen address {}", cfg.rp_api.listen))?,
        )
    };
    let rest_tls = cfg.rp_api.tls.then(|| (cert.clone(), key.clone()));
    let app = App::new(cfg, Arc::new(store), hsm, ca.clone())?;
    let publication = crate::http::Publication::new(ca, Arc::clone(&app.store), app.hsm.clone());

    // Expire unanswered transactions even when nobody asks.
    let sweeper = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let r = app
                    .blocking(|app| {
                        let now = crate::store::unix_now();
                        app.store.expire_transactions(now)?;
                        app.store
                            .prune_replies(now - crate::store::REPLY_RETENTION_SECONDS)?;
                        app.store
                            .prune_rp_sessions(now - app.config.rp_api.result_retention_seconds)?;
                        Ok(())
                    })
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "expiry sweep failed");
                }
            }
        })
    };

    // Keep the pool of pre-generated server keys full (registration takes from it).
    let key_pool = KeyPoolRefill::start(Arc::clone(&app));
    // Sign relying parties' queued software certificates.
    let rp_cert_pool = crate::rp_cert_queue::start(Arc::clone(&app));

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot listen on {http_addr} (pki.http_listen)"))?;
    let local = listener.local_addr()?;
    let http_local = http_listener.local_addr()?;
    announce(format_args!("listening on {local}"));
    announce(format_args!("http listening on {http_local}"));
    let rest_listener = match rest_addr {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (rp_api.listen)"))?;
            announce(format_args!("rest listening on {}", l.local_addr()?));
            Some(l)
        }
        None => None,
    };
    tracing::info!(%local, %http_local, "server started");

    // One shutdown signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let http = tokio::spawn(
        axum::serve(
            crate::rest::PlainListener::new(http_listener),
            crate::http::router(publication),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()))
        .into_future(),
    );
    let test_accounts = (rest_listener.is_some() && app.config.rp_api.test_accounts).then(|| {
        let host = if local.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            local.ip()
        };
        crate::test_accounts::TestAccounts::start(
            Arc::clone(&app),
            data_dir,
            format!("https://{}", SocketAddr::new(host, local.port())),
            cert.clone(),
        )
    });
    let rest = rest_listener.map(|l| {
        tokio::spawn(crate::rest::serve(
            Arc::clone(&app),
            l,
            rest_tls,
            test_accounts,
            stopped(stop_rx.clone()),
        ))
    });
    // TCP_NODELAY: small gRPC frames (a start, a pending list) must not wait for delayed
    // ACKs (Nagle), which added ~40 ms to every round trip.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |s| s.and_then(|s| s.set_nodelay(true).map(|()| s)),
    );
    let result = Server::builder()
        .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))?
        .concurrency_limit_per_connection(64)
        .add_service(
            DeviceServer::new(DeviceService::new(Arc::clone(&app)))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            RelyingPartyServer::new(RelyingPartyService::new(Arc::clone(&app)))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, stopped(stop_rx))
        .await;
    sweeper.abort();
    rp_cert_pool.abort();
    key_pool.stop();
    result?;
    http.await??;
    if let Some(rest) = rest {
        rest.await??;
    }
    tracing::info!("server stopped");
    Ok(())
}

/// The background thread that keeps the pool of pre-generated server keys full. It runs
/// under `SCHED_IDLE` (the lowest priority, settable without privileges), so key generation
/// uses only CPU time requests leave unused: a registration or a signature never waits for
/// it (docs/BENCHMARKS.md, registration).
struct KeyPoolRefill {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl KeyPoolRefill {
    fn start(app: Arc<App>) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let target = app.config.keys.server_key_pool;
        if target == 0 {
            return Self { stop };
        }
        let stopped = Arc::clone(&stop);
        // The warm-up of each new key runs on a thread of normal priority: it takes the HSM
        // key cache's write lock, which a thread at idle priority must not hold while
        // signatures wait for it. This thread is started from a normal one (a thread's
        // scheduling policy is inherited).
        let (warm, warm_requests) = std::sync::mpsc::sync_channel::<WarmUp>(0);
        let warm_app = Arc::clone(&app);
        if let Err(e) = std::thread::Builder::new()
            .name(KEY_POOL_THREADS[1].into())
            .spawn(move || {
                for (modulus, wrapped, done) in warm_requests {
                    let _ = done.send(warm_up(&warm_app, &modulus, &wrapped));
                }
            })
        {
            tracing::error!(error = %e, "cannot start the server key warm-up thread");
            return Self { stop };
        }
        let spawned = std::thread::Builder::new()
            .name(KEY_POOL_THREADS[0].into())
            .spawn(move || {
                use thread_priority::{
                    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
                    set_thread_priority_and_policy, thread_native_id,
                };
                if let Err(e) = set_thread_priority_and_policy(
                    thread_native_id(),
                    ThreadPriority::Min,
                    ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
                ) {
                    tracing::warn!(error = ?e, "the key pool runs at normal priority");
                }
                let bits = app.config.keys.server_key_bits;
                let warm_up = |modulus: Vec<u8>, wrapped: Vec<u8>| -> anyhow::Result<()> {
                    let (done, result) = std::sync::mpsc::sync_channel(1);
                    warm.send((modulus, wrapped, done))
                        .map_err(|_| anyhow::anyhow!("the warm-up thread has ended"))?;
                    result
                        .recv()
                        .map_err(|_| anyhow::anyhow!("the warm-up thread has ended"))?
                };
                // Keys pooled by an earlier run are warmed up once.
                match app.store.pooled_server_key_list(bits, target) {
                    Ok(keys) => {
                        for (modulus, wrapped) in keys {
                            if let Err(e) = warm_up(modulus, wrapped) {
                                tracing::warn!(error = %e, "a pooled server key could not be warmed up");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list the pooled server keys"),
                }
                let pause = |d: std::time::Duration| {
                    // In steps, so that a stop is seen within 50 ms.
                    let until = std::time::Instant::now() + d;
                    while std::time::Instant::now() < until
                        && !stopped.load(std::sync::atomic::Ordering::Relaxed)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                };
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    match refill_one(&app, bits, target, &warm_up) {
                        // Another one at once while the pool is short.
                        Ok(true) => {}
                        Ok(false) => pause(std::time::Duration::from_millis(500)),
                        Err(e) => {
                            tracing::warn!(error = %e, "server key pool refill failed");
                            pause(std::time::Duration::from_secs(5));
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the server key pool thread");
        }
        Self { stop }
    }

    /// Asks the thread to end (it finishes a key it is generating, then stops).
    fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for KeyPoolRefill {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A key (modulus, wrapped private key) to warm up, and where the result goes.
type WarmUp = (
    Vec<u8>,
    Vec<u8>,
    std::sync::mpsc::SyncSender<anyhow::Result<()>>,
);

/// Unwraps a pooled key into the HSM's key cache and signs with it, checking the
/// signatures. The registration that takes the key then does not pay for its first use on
/// the request path (the unwrap, and in hsm-sim OpenSSL's blinding and Montgomery set-up:
/// about 1 ms per key, docs/BENCHMARKS.md); and a key that does not sign is never pooled.
///
/// It signs twice, from two threads: OpenSSL sets up an RSA key's blinding (a modular
/// inverse) once for the first thread that uses the key and once more, shared, for all other
/// threads; the requests' HSM-call threads use the second.
fn warm_up(app: &App, modulus: &[u8], wrapped: &[u8]) -> anyhow::Result<()> {
    let sign = || -> anyhow::Result<()> {
        let x = [2u8];
        let s = app.hsm.sign_raw(wrapped, modulus, &x)?;
        anyhow::ensure!(
            crate::bn::verify_raw(&s, &x, modulus, crate::signing::E),
            "a generated server key does not sign correctly"
        );
        Ok(())
    };
    sign()?;
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(KEY_POOL_THREADS[1].into())
            .spawn_scoped(scope, sign)
            .map_err(|e| anyhow::anyhow!("cannot start a warm-up thread: {e}"))?
            .join()
            .map_err(|_| anyhow::anyhow!("the warm-up signature panicked"))?
    })
}

/// Adds one key to the pool if it holds fewer than `target`; whether it did. `warm_up`
/// runs [`warm_up`] on the warm-up thread.
fn refill_one(
    app: &App,
    bits: usize,
    target: usize,
    warm_up: &dyn Fn(Vec<u8>, Vec<u8>) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let have = app.store.pooled_server_keys(bits)?;
    if have >= target {
        return Ok(false);
    }
    let key = app.hsm.generate_server_key(bits)?;
    warm_up(key.modulus.clone(), key.wrapped_private_key.clone())?;
    app.store.pool_server_key(
        bits,
        &key.modulus,
        &key.wrapped_private_key,
        crate::store::unix_now(),
    )?;
    tracing::debug!(pooled = have + 1, target, "server key pooled");
    Ok(true)
}
