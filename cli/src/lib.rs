//! The `tandem` command line (crate `tandem-cli`; the binary is `src/main.rs`): a client of
//! the other crates, which know nothing of it.
//!
//! ```text
//!  tandem server …    ─▶ server()   ─▶ tandem_server::run (init, run, CA, HSM)
//!  tandem operator …  ─▶ operator() ─▶ tandem_server::{store, ca, pki} on a data directory
//!  tandem device …    ─▶ device()   ─▶ tandem_client_core::grpc ──gRPC──▶ device API
//!  tandem rp …        ─▶ rp()       ──gRPC──▶ relying-party service
//!  tandem rp-api …    ─▶ rp_api     ─▶ tandem_rp::client ──REST (RP API v3)──▶
//!  tandem demo        ─▶ demo       (a server, a device and a relying party in one run)
//!  tandem load        ─▶ load, load::soak (load generator)
//!  tandem web         ─▶ web ─▶ tandem_web (Demo Bank; HTTPS; RP API v3 client)
//! ```
//!
//! Secrets (HSM PIN, device PINs) never come from arguments:
//! the HSM PIN from a file or `TANDEM_HSM_PIN`, device PINs from `TANDEM_PIN1` /
//! `TANDEM_PIN2` / `TANDEM_PIN` or standard input.
//!
//! Commands print through [`outln!`] / [`out!`]: when the reader of standard output has gone
//! (`tandem device pending | head -1`), the command stops with [`StdoutClosed`] and `main`
//! exits quietly with status 141 (128 + SIGPIPE, what a shell shows for a process killed by
//! SIGPIPE) instead of panicking as `println!` does.

#![cfg_attr(test, allow(clippy::unwrap_used))]

/// `println!` that returns [`StdoutClosed`] from the enclosing function (which returns an
/// `anyhow::Result`) when standard output is a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` that returns [`StdoutClosed`] as [`outln!`] does.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))?
    };
}

pub mod demo;
mod device_answer;
pub mod load;
mod operator_rp;
pub mod package;
pub mod rp_api;
pub mod rp_cert;
pub mod verify;
pub mod web;

pub use device_answer::RefuseReasonArg;

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use tandem_client_core::grpc::{self as dev, Client, ProofOutcome};
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::state::DeviceState;
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_proto::v1::relying_party_client::RelyingPartyClient;
use tandem_server::config::Config;
use tandem_server::fs_mode::write_atomic;
use tandem_server::run;
use tandem_server::store::prelude::*;
use tandem_server::store::{Identity, SqliteStore, unix_now};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Standard output was closed by its reader (`tandem ... | head`): the command ends quietly.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Writes to standard output; a closed pipe (`EPIPE`) becomes [`StdoutClosed`].
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_fmt(args) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// Sets up `tracing` to stderr. `RUST_LOG` overrides `filter`; `TANDEM_LOG_SPAN_TIMES=1`
/// also logs how long each span was busy when it closes (for profiling a request path).
pub fn init_logging(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_owned());
    let spans = if std::env::var_os("TANDEM_LOG_SPAN_TIMES").is_some_and(|v| v == "1") {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_span_events(spans)
        // Colours only on a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// A `tandem server run` child process, stopped (killed) when dropped, however the command
/// that started it ends.
/// Its standard output stays open (a closed pipe would fail the server's later prints).
#[derive(Debug)]
pub struct ServerProcess {
    child: std::process::Child,
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
}

impl ServerProcess {
    /// The server's process id (for its CPU time in /proc).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The rest of the next line the server prints, which must start with `prefix` (for
    /// example the REST API's address after "rest listening on ").
    pub fn next_line(&mut self, prefix: &str) -> anyhow::Result<String> {
        let mut line = String::new();
        if let Some(reader) = self.stdout.as_mut() {
            reader.read_line(&mut line)?;
        }
        Ok(line
            .trim()
            .strip_prefix(prefix)
            .with_context(|| {
                format!("the server did not start: expected {prefix:?}, got {line:?}")
            })?
            .to_owned())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `exe server run` on the initialised data directory `dir` with free loopback
/// ports for the HTTP and REST listeners; returns the process and its gRPC (https://) and
/// publication (http://) URLs, read from what the server prints when it listens. The
/// server logs to this process's standard error.
pub fn spawn_server(
    exe: &Path,
    dir: &Path,
    log: &str,
) -> anyhow::Result<(ServerProcess, String, String)> {
    spawn_server_logging_to(exe, dir, log, std::process::Stdio::inherit())
}

/// [`spawn_server`] with the server's standard error (its log) going to `stderr`, e.g. a
/// log file.
pub fn spawn_server_logging_to(
    exe: &Path,
    dir: &Path,
    log: &str,
    stderr: std::process::Stdio,
) -> anyhow::Result<(ServerProcess, String, String)> {
    let mut child = std::process::Command::new(exe)
        .args([
            "--log",
            log,
            "server",
            "run",
            "--http-listen",
            "127.0.0.1:0",
            "--rest-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context("cannot start the server")?;
    let stdout = child.stdout.take().context("no server stdout")?;
    let mut server = ServerProcess {
        child,
        stdout: Some(std::io::BufReader::new(stdout)),
    };
    let url = format!("https://{}", server.next_line("listening on ")?);
    let http_url = format!("http://{}", server.next_line("http listening on ")?);
    Ok((server, url, http_url))
}

/// A multi-threaded runtime.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

// ---------------------------------------------------------------------- server

/// `tandem server ...`
#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Creates a data directory: configuration, TLS certificate, database, HSM objects.
    Init {
        /// Data directory to create.
        #[arg(long, default_value = "tandem-data")]
        data_dir: PathBuf,
        /// Provision a SoftHSM token inside the data directory instead of hsm-sim (needs the
        /// softhsm2 package).
        #[arg(long, conflicts_with = "module")]
        softhsm: bool,
        /// Use an existing, initialised token of this PKCS#11 module (e.g. a production HSM)
        /// instead of hsm-sim. Default: hsm-sim, the simulated HSM built with tandem, with
        /// its token inside the data directory.
        #[arg(long)]
        module: Option<PathBuf>,
        /// Token label.
        #[arg(long, default_value = "tandem")]
        token_label: String,
        /// File holding the token user PIN (otherwise $TANDEM_HSM_PIN at run time).
        #[arg(long)]
        pin_file: Option<PathBuf>,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: String,
        /// Size of the per-account server keys n2.
        #[arg(long, default_value_t = 3072)]
        server_key_bits: usize,
        /// Key-transport key devices seal envelopes to: ec-p256 (ECDH) or rsa (RSA-OAEP).
        #[arg(long, default_value = "ec-p256", value_parser = ["ec-p256", "rsa"])]
        transport_key: String,
        /// Size of an RSA key-transport key.
        #[arg(long, default_value_t = 3072)]
        transport_key_bits: usize,
        /// CA key type: rsa4096, rsa3072 or ec-p384.
        #[arg(long, default_value = "rsa4096", value_parser = parse_ca_key_spec)]
        ca_key_spec: tandem_server::hsm::CaKeySpec,
        /// Base URL of the OCSP/CRL publication point written into certificates.
        #[arg(long)]
        public_base_url: Option<String>,
        /// Where x^d1'' mod n1 is computed: auto, software, vendor (hsm-sim) or token-rsa
        /// (d1'' as an RSA key object in a standard HSM; needs --transport-key rsa). Fixed
        /// for the life of the data directory (docs/HSM_MODES.md).
        #[arg(long, default_value = "auto", value_parser = parse_share_exponentiation)]
        share_exponentiation: tandem_server::hsm::ShareExponentiation,
    },
    /// Creates the HSM objects of an initialised data directory (run by `init`).
    HsmInit {
        /// Data directory.
        #[arg(long, default_value = "tandem-data")]
        data_dir: PathBuf,
        /// First initialise the hsm-sim token (PINs from the data directory).
        #[arg(long, hide = true)]
        provision_token: bool,
    },
    /// Runs the server until SIGINT / SIGTERM.
    Run {
        /// Data directory.
        #[arg(long, default_value = "tandem-data")]
        data_dir: PathBuf,
        /// Overrides the configured listen address (e.g. 127.0.0.1:0 for a free port).
        #[arg(long)]
        listen: Option<String>,
        /// Overrides the OCSP/CRL listener address (pki.http_listen).
        #[arg(long)]
        http_listen: Option<String>,
        /// Overrides the REST relying-party API listener address (rp_api.listen).
        #[arg(long)]
        rest_listen: Option<String>,
    },
}

fn parse_share_exponentiation(s: &str) -> Result<tandem_server::hsm::ShareExponentiation, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        format!("unknown share exponentiation {s:?}: use auto, software, vendor or token-rsa")
    })
}

fn parse_ca_key_spec(s: &str) -> Result<tandem_server::hsm::CaKeySpec, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("unknown CA key type {s:?}: use rsa4096, rsa3072 or ec-p384"))
}

/// Runs a `server` subcommand.
pub fn server(cmd: ServerCommand) -> anyhow::Result<()> {
    match cmd {
        ServerCommand::Init {
            data_dir,
            softhsm,
            module,
            token_label,
            pin_file,
            listen,
            server_key_bits,
            transport_key,
            transport_key_bits,
            ca_key_spec,
            public_base_url,
            share_exponentiation,
        } => {
            let hsm = match (softhsm, module) {
                (true, _) => run::HsmChoice::SoftHsm,
                (false, Some(m)) => run::HsmChoice::Module(m),
                (false, None) => run::HsmChoice::Sim,
            };
            let provision_token = matches!(hsm, run::HsmChoice::Sim);
            let opts = run::InitOptions {
                hsm,
                token_label,
                pin_file,
                listen,
                server_key_bits,
                transport_key,
                transport_key_bits,
                ca_key_spec,
                public_base_url,
                share_exponentiation,
            };
            let cfg = run::init(&data_dir, &opts)?;
            // The module reads its environment at load time: create the HSM objects in a
            // child process that has it.
            let status = std::process::Command::new(std::env::current_exe()?)
                .args(["server", "hsm-init", "--data-dir"])
                .arg(&data_dir)
                .args(provision_token.then_some("--provision-token"))
                .envs(&cfg.hsm.env)
                .status()?;
            anyhow::ensure!(status.success(), "creating the HSM objects failed");
            outln!("initialised {}", data_dir.display());
            outln!(
                "TLS certificate for devices and relying parties: {}",
                cfg.tls.cert.display()
            );
            Ok(())
        }
        ServerCommand::HsmInit {
            data_dir,
            provision_token,
        } => {
            let cfg = Config::load(&data_dir)?;
            run::ensure_module_env(&cfg)?;
            if provision_token {
                run::provision_hsm_sim_token(&cfg, &data_dir)?;
            }
            run::init_hsm_objects(&cfg, &data_dir)
        }
        ServerCommand::Run {
            data_dir,
            listen,
            http_listen,
            rest_listen,
        } => {
            let mut cfg = Config::load(&data_dir)?;
            tandem_server::fs_mode::check_server_files(&cfg.server_files(), &data_dir)?;
            run::ensure_module_env(&cfg)?;
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(l) = http_listen {
                cfg.pki.http_listen = l;
            }
            if let Some(l) = rest_listen {
                cfg.rp_api.listen = l;
            }
            runtime()?.block_on(run::serve(cfg, &data_dir, shutdown_signal()))
        }
    }
}

pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

// ---------------------------------------------------------------------- operator

/// Whether a relying party may request the mobile device's IP address.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceIpSharing {
    /// Requests with `shareMdClientIpAddress: true` are served.
    Allow,
    /// Such requests get 403 (the default of every relying party).
    Forbid,
}

/// Whether a relying party may use the self-service portal endpoints.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalPermission {
    /// `POST /tandem/v1/portal/*` are served.
    Allow,
    /// They get 403 (the default of every relying party).
    Forbid,
}

/// Which key pair.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum KeyArg {
    /// AUTH (PIN1).
    Auth,
    /// SIGN (PIN2).
    Sign,
}

impl From<KeyArg> for KeyType {
    fn from(k: KeyArg) -> Self {
        match k {
            KeyArg::Auth => KeyType::Auth,
            KeyArg::Sign => KeyType::Sign,
        }
    }
}

/// `tandem operator ...`
#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Lists registrations waiting for approval (with their matching codes).
    Registrations,
    /// Relying parties' software certificates (`rp-credit`, `rp-admin`, `rp-mtls`,
    /// `rp-certs`, `rp-cert-revoke`, `ca-sign-bench`).
    #[command(flatten)]
    RpCerts(operator_rp::RpCertCommand),
    /// Approves a registration code for a person.
    Approve {
        /// Registration code the person received on the device.
        code: String,
        /// Given name.
        #[arg(long)]
        given_name: String,
        /// Surname.
        #[arg(long)]
        surname: String,
        /// ISO 3166-1 alpha-2 country.
        #[arg(long)]
        country: String,
        /// National identity number.
        #[arg(long)]
        national_id: String,
    },
    /// Lists accounts.
    Accounts,
    /// Shows an account and its key pairs (by document number or account id).
    Show {
        /// Document number or account id.
        account: String,
    },
    /// Lifts a temporary PIN lock.
    Unlock {
        /// Document number or account id.
        account: String,
        /// Which key pair.
        #[arg(long, value_enum)]
        key: KeyArg,
    },
    /// Deletes an account and destroys its secrets.
    Delete {
        /// Document number or account id.
        account: String,
    },
    /// Lists certificates (all, or one account's by document number or id).
    Certs {
        /// Document number or account id.
        account: Option<String>,
    },
    /// Prints one certificate (PEM) and its status.
    Cert {
        /// Serial number, hex.
        serial: String,
    },
    /// Revokes a certificate (OCSP answers `revoked` at once; the next CRL lists it).
    Revoke {
        /// Serial number, hex.
        serial: String,
        /// RFC 5280 reason code: 0 unspecified, 1 keyCompromise, 3 affiliationChanged,
        /// 4 superseded, 5 cessationOfOperation.
        #[arg(long, default_value_t = 0)]
        reason: i64,
    },
    /// Revokes the issuing CA certificate (pki/issuing.pem), recorded in the store and the
    /// audit log: the root's CRL (`GET /crl/root.crl`) lists it from its next request, and
    /// relying parties that check it refuse every certificate this CA issued. Cannot be
    /// undone. Running it again changes nothing.
    RevokeCa {
        /// Why: ca-compromise (2), cessation-of-operation (5), superseded (4),
        /// affiliation-changed (3) or unspecified (0); the name or the RFC 5280 code.
        #[arg(long, value_parser = parse_ca_revocation_reason)]
        reason: tandem_server::pki::RevocationReason,
        /// Confirms the revocation (without it the command only says what it would do).
        #[arg(long)]
        yes: bool,
    },
    /// Copies the root and issuing CA certificates (PEM), and the TSA certificate if there
    /// is one, into a directory.
    ExportCa {
        /// Target directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Registers a relying party (Smart-ID RP API: relyingPartyUUID + relyingPartyName).
    RpAdd {
        /// A name requests may carry as relyingPartyName (case-insensitive, docs/RP_API.md);
        /// repeat for several. The app shows the name a request sent.
        #[arg(long = "name", required = true)]
        name: Vec<String>,
        /// UUID (a random one is generated when absent).
        #[arg(long)]
        uuid: Option<String>,
        /// Allowed source address (repeat for several); none = any address.
        #[arg(long = "allow-ip")]
        allow_ip: Vec<std::net::IpAddr>,
        /// Allows it to request the mobile device's IP address
        /// (`requestProperties.shareMdClientIpAddress`); without this flag such a request
        /// gets 403. `rp-device-ip` changes it later.
        #[arg(long)]
        device_ip_sharing: bool,
        /// Allows it to use the self-service portal endpoints (`POST /tandem/v1/portal/*`:
        /// an authenticated holder's accounts, their deletion); without this flag they get
        /// 403. `rp-portal` changes it later.
        #[arg(long)]
        portal: bool,
    },
    /// Lists the registered relying parties.
    Rps,
    /// Allows or forbids a relying party the self-service portal endpoints
    /// (`POST /tandem/v1/portal/*`, forbidden unless allowed here).
    RpPortal {
        /// UUID.
        uuid: String,
        /// `allow` or `forbid`.
        #[arg(value_enum)]
        permission: PortalPermission,
    },
    /// Allows or forbids a relying party to request the mobile device's IP address
    /// (`requestProperties.shareMdClientIpAddress`, forbidden unless allowed here).
    RpDeviceIp {
        /// UUID.
        uuid: String,
        /// `allow` or `forbid`.
        #[arg(value_enum)]
        sharing: DeviceIpSharing,
    },
    /// Removes (deactivates) a relying party.
    RpRemove {
        /// UUID.
        uuid: String,
    },
    /// Adds a name to a relying party (refused if it has that name already, in any case).
    RpNameAdd {
        /// UUID.
        uuid: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Removes one of a relying party's names (not its last one).
    RpNameRemove {
        /// UUID.
        uuid: String,
        /// The name to remove (case-insensitive).
        #[arg(long)]
        name: String,
    },
    /// Prints the audit log.
    Audit {
        /// First sequence number.
        #[arg(long, default_value_t = 1)]
        since: i64,
        /// Only check the hash chain.
        #[arg(long)]
        verify: bool,
    },
}

/// A CA certificate's revocation reason, by name or RFC 5280 code. keyCompromise (1) is for
/// end-entity certificates; a CA's compromised key is cACompromise (2).
fn parse_ca_revocation_reason(s: &str) -> Result<tandem_server::pki::RevocationReason, String> {
    use tandem_server::pki::RevocationReason as R;
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "0" | "unspecified" => R::Unspecified,
        "2" | "ca-compromise" | "cacompromise" => R::CaCompromise,
        "3" | "affiliation-changed" | "affiliationchanged" => R::AffiliationChanged,
        "4" | "superseded" => R::Superseded,
        "5" | "cessation-of-operation" | "cessationofoperation" => R::CessationOfOperation,
        _ => {
            return Err(format!(
                "unknown reason {s:?}: use ca-compromise, cessation-of-operation, superseded, \
                 affiliation-changed or unspecified (or the codes 2, 5, 4, 3, 0)"
            ));
        }
    })
}

/// `operator revoke-ca`: records the revocation of the data directory's issuing CA
/// certificate (after checking the root issued it); idempotent.
fn revoke_issuing_ca(
    data_dir: &Path,
    cfg: &Config,
    store: &SqliteStore,
    reason: tandem_server::pki::RevocationReason,
    yes: bool,
    now: i64,
) -> anyhow::Result<()> {
    let dir = tandem_server::ca::pki_dir(data_dir);
    let issuing = tandem_server::ca::load_pem(&dir.join("issuing.pem"))?;
    let root = tandem_server::ca::load_pem(&dir.join("root.pem"))?;
    anyhow::ensure!(
        issuing.tbs_certificate().issuer() == root.tbs_certificate().subject(),
        "{} was not issued by the root CA of {} ({})",
        dir.join("issuing.pem").display(),
        dir.join("root.pem").display(),
        root.tbs_certificate().subject()
    );
    let serial = issuing.tbs_certificate().serial_number().as_bytes();
    let subject = issuing.tbs_certificate().subject().to_string();
    let what = format!(
        "the issuing CA certificate {subject} (serial {})",
        hex::encode(serial)
    );
    let root_crl = format!(
        "{}/crl/root.crl",
        cfg.pki.public_base_url.trim_end_matches('/')
    );
    if let Some(r) = store.ca_revocation(serial)? {
        outln!(
            "{what} was already revoked at {} (reason {}); the root's CRL lists it: {root_crl}",
            fmt_time(r.revoked_at),
            r.reason
        );
        return Ok(());
    }
    anyhow::ensure!(
        yes,
        "revoking {what} makes relying parties refuse every certificate it issued, and cannot \
         be undone: run again with --yes to revoke it"
    );
    let (r, _) = store.revoke_ca_certificate(serial, &subject, i64::from(reason.code()), now)?;
    outln!(
        "revoked {what} at {} (reason {} {}); the root's CRL lists it from now: {root_crl}",
        fmt_time(r.revoked_at),
        reason.code(),
        reason.name()
    );
    Ok(())
}

/// A relying party's UUID as the store keeps it (lower-case, hyphenated).
fn rp_uuid_arg(u: &str) -> anyhow::Result<String> {
    Ok(uuid::Uuid::parse_str(u.trim())
        .map_err(|_| anyhow::anyhow!("{u:?} is not a UUID"))?
        .hyphenated()
        .to_string())
}

/// Names, each quoted, comma-separated.
fn quoted_names(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn open_store(data_dir: &Path) -> anyhow::Result<(Config, SqliteStore)> {
    let cfg = Config::load(data_dir)?;
    let store = SqliteStore::open(&cfg.database)
        .with_context(|| format!("cannot open {}", cfg.database.display()))?;
    Ok((cfg, store))
}

fn find_account(store: &SqliteStore, key: &str) -> anyhow::Result<tandem_server::store::Account> {
    store
        .account_by_document(key)
        .or_else(|_| store.account(key))
        .map_err(|_| anyhow::anyhow!("no account with document number or id {key:?}"))
}

/// PEM (RFC 7468) encoding.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn fmt_time(t: i64) -> String {
    format!("{t} (unix)")
}

/// Runs an `operator` subcommand.
pub fn operator(data_dir: &Path, cmd: OperatorCommand) -> anyhow::Result<()> {
    let (cfg, store) = open_store(data_dir)?;
    let now = unix_now();
    match cmd {
        OperatorCommand::RpCerts(c) => operator_rp::run(data_dir, &cfg, &store, c, now)?,
        OperatorCommand::Registrations => {
            let regs = store.pending_registrations(now)?;
            if regs.is_empty() {
                outln!("no registration is waiting for approval");
            }
            for r in regs {
                outln!(
                    "code {}  matching code {}  expires in {} s  (registration {})",
                    r.code,
                    r.matching_code,
                    r.expires_at - now,
                    r.id
                );
            }
        }
        OperatorCommand::Approve {
            code,
            given_name,
            surname,
            country,
            national_id,
        } => {
            let reg = tandem_server::core::register::approve(
                &store,
                &tandem_server::core::SystemClock,
                &tandem_server::core::register::Approval {
                    code,
                    identity: Identity {
                        given_name,
                        surname,
                        country,
                        national_id,
                    },
                    document_number: None,
                },
            )?;
            outln!(
                "approved registration {} (matching code {}: check the device shows it)",
                reg.id,
                reg.matching_code
            );
        }
        OperatorCommand::Accounts => {
            for a in store.all_accounts()? {
                outln!(
                    "{}  {:?}  {} {}  {}-{}  expires {}",
                    a.document_number,
                    a.state,
                    a.identity.given_name,
                    a.identity.surname,
                    a.identity.country,
                    a.identity.national_id,
                    fmt_time(a.expires_at)
                );
            }
        }
        OperatorCommand::Show { account } => {
            let a = find_account(&store, &account)?;
            outln!(
                "account {}\ndocument number {}\nstate {:?}",
                a.id,
                a.document_number,
                a.state
            );
            outln!(
                "person {} {} ({}-{})\ncreated {}\nexpires {}",
                a.identity.given_name,
                a.identity.surname,
                a.identity.country,
                a.identity.national_id,
                fmt_time(a.created_at),
                fmt_time(a.expires_at)
            );
            for kp in store.key_pairs(&a.id)? {
                let st = tandem_server::service::key_state_summary(&kp, &cfg.lockout, now);
                outln!(
                    "{} key: {} bits, {st}, consecutive failures {}{}",
                    kp.key_type,
                    tandem_client_core::hazmat::bigint::bit_length(&kp.composite_modulus),
                    kp.consecutive_failures,
                    kp.disabled_reason
                        .map(|r| format!(", disabled: {r}"))
                        .unwrap_or_default()
                );
            }
        }
        OperatorCommand::Unlock { account, key } => {
            let a = find_account(&store, &account)?;
            store.unlock_key_pair(&a.id, key.into(), now)?;
            outln!(
                "unlocked the {} key of {}",
                KeyType::from(key),
                a.document_number
            );
        }
        OperatorCommand::Delete { account } => {
            let a = find_account(&store, &account)?;
            store.delete_account(&a.id, now, "operator", None)?;
            outln!("deleted {}; its secrets are destroyed", a.document_number);
        }
        OperatorCommand::Certs { account } => {
            let certs = match account {
                Some(a) => store.certificates_of(&find_account(&store, &a)?.id)?,
                None => store.all_certificates()?,
            };
            if certs.is_empty() {
                outln!("no certificates");
            }
            for c in certs {
                let status = match c.revoked {
                    Some((at, reason)) => format!("REVOKED at {at} (reason {reason})"),
                    None => "GOOD".into(),
                };
                outln!(
                    "{}  {}  {}  account {}  valid {}..{}  {status}",
                    c.serial_hex,
                    c.key_type,
                    c.level,
                    c.account_id,
                    c.not_before,
                    c.not_after
                );
            }
        }
        OperatorCommand::Cert { serial } => {
            let bytes = hex::decode(serial.trim()).context("the serial number must be hex")?;
            let c = store
                .certificate(&bytes)?
                .ok_or_else(|| anyhow::anyhow!("no certificate with serial {serial}"))?;
            match c.revoked {
                Some((at, reason)) => outln!("status REVOKED at {at} (reason {reason})"),
                None => outln!("status GOOD"),
            }
            out!("{}", pem_encode("CERTIFICATE", &c.der));
        }
        OperatorCommand::Revoke { serial, reason } => {
            anyhow::ensure!(
                [0, 1, 3, 4, 5].contains(&reason),
                "reason must be 0, 1, 3, 4 or 5"
            );
            let bytes = hex::decode(serial.trim()).context("the serial number must be hex")?;
            if store.revoke_certificate(&bytes, reason, now)? {
                outln!("revoked {serial}");
            } else {
                outln!("{serial} was already revoked");
            }
        }
        OperatorCommand::RevokeCa { reason, yes } => {
            revoke_issuing_ca(data_dir, &cfg, &store, reason, yes, now)?;
        }
        OperatorCommand::ExportCa { out } => {
            std::fs::create_dir_all(&out)?;
            for name in ["root.pem", "issuing.pem"] {
                let from = data_dir.join("pki").join(name);
                std::fs::copy(&from, out.join(name))
                    .with_context(|| format!("cannot copy {}", from.display()))?;
            }
            // The time-stamp authority's and the proof-of-origin certificates, where the
            // server has made them.
            let mut written = vec!["root.pem", "issuing.pem"];
            for name in ["tsa.pem", "origin.pem"] {
                let from = data_dir.join("pki").join(name);
                if from.exists() {
                    std::fs::copy(&from, out.join(name))
                        .with_context(|| format!("cannot copy {}", from.display()))?;
                    written.push(name);
                }
            }
            outln!("wrote {} to {}", written.join(", "), out.display());
        }
        OperatorCommand::RpAdd {
            name,
            uuid,
            allow_ip,
            device_ip_sharing,
            portal,
        } => {
            let names = name
                .iter()
                .map(|n| tandem_rp::api::rp_name::configured_name(n).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let uuid = match uuid {
                Some(u) => rp_uuid_arg(&u)?,
                None => uuid::Uuid::new_v4().to_string(),
            };
            let rp = tandem_server::store::RelyingParty {
                uuid,
                names,
                allowed_ips: allow_ip,
                device_ip_sharing,
                portal,
                mtls_required: false,
            };
            store.add_relying_party(&rp, now)?;
            outln!(
                "relying party {} registered as {}{}{}",
                rp.uuid,
                quoted_names(&rp.names),
                if rp.device_ip_sharing {
                    " (may request the device IP address)"
                } else {
                    ""
                },
                if rp.portal {
                    " (may use the portal endpoints)"
                } else {
                    ""
                }
            );
        }
        OperatorCommand::RpPortal { uuid, permission } => {
            let uuid = rp_uuid_arg(&uuid)?;
            let allowed = permission == PortalPermission::Allow;
            let changed = store.set_relying_party_portal(&uuid, allowed, now)?;
            outln!(
                "relying party {uuid} {} use the portal endpoints{}",
                if allowed { "may" } else { "may not" },
                if changed { " now" } else { " (unchanged)" }
            );
        }
        OperatorCommand::RpDeviceIp { uuid, sharing } => {
            let uuid = rp_uuid_arg(&uuid)?;
            let allowed = sharing == DeviceIpSharing::Allow;
            let changed = store.set_relying_party_device_ip_sharing(&uuid, allowed, now)?;
            outln!(
                "relying party {uuid} {} request the device IP address{}",
                if allowed { "may" } else { "may not" },
                if changed { " now" } else { " (unchanged)" }
            );
        }
        OperatorCommand::RpNameAdd { uuid, name } => {
            let uuid = rp_uuid_arg(&uuid)?;
            let name =
                tandem_rp::api::rp_name::configured_name(&name).map_err(anyhow::Error::msg)?;
            store.add_relying_party_name(&uuid, &name, now)?;
            outln!("relying party {uuid} has the name {name:?} now");
        }
        OperatorCommand::RpNameRemove { uuid, name } => {
            let uuid = rp_uuid_arg(&uuid)?;
            let removed = store.remove_relying_party_name(&uuid, name.trim(), now)?;
            outln!("relying party {uuid} no longer has the name {removed:?}");
        }
        OperatorCommand::Rps => {
            let rps = store.relying_parties()?;
            if rps.is_empty() {
                outln!("no relying parties");
            }
            for rp in rps {
                let ips: Vec<String> = rp.allowed_ips.iter().map(ToString::to_string).collect();
                let from = if ips.is_empty() {
                    "any address".to_owned()
                } else {
                    ips.join(", ")
                };
                let device_ip = if rp.device_ip_sharing {
                    "device IP on request"
                } else {
                    "no device IP"
                };
                let portal = if rp.portal { "  portal" } else { "" };
                outln!(
                    "{}  {}  from {from}  {device_ip}{portal}",
                    rp.uuid,
                    quoted_names(&rp.names)
                );
            }
        }
        OperatorCommand::RpRemove { uuid } => {
            if store.remove_relying_party(&uuid, now)? {
                outln!("removed relying party {uuid}");
            } else {
                anyhow::bail!("no active relying party {uuid}");
            }
        }
        OperatorCommand::Audit { since, verify } => {
            if verify {
                match store.verify_audit_chain()? {
                    Ok(n) => outln!("audit chain intact: {n} records"),
                    Err(seq) => anyhow::bail!("audit chain broken at record {seq}"),
                }
            } else {
                for r in store.audit_log(since, 10_000)? {
                    outln!(
                        "{:>6} {} {:<28} {} {}",
                        r.seq,
                        r.at,
                        r.event,
                        r.account_id.as_deref().unwrap_or("-"),
                        r.details
                    );
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- device simulator

/// Options of the device simulator.
#[derive(Args, Debug, Clone)]
pub struct DeviceOptions {
    /// Directory of the simulated device (device id, registration, account state).
    #[arg(long, default_value = "device")]
    pub dir: PathBuf,
    /// Server URL.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TANDEM_SERVER")]
    pub server: String,
    /// CA certificate (PEM) to trust for the server's TLS.
    #[arg(long, env = "TANDEM_CA")]
    pub ca: PathBuf,
}

/// `tandem device ...`
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Starts a registration; prints the registration code and the matching code.
    RegisterStart,
    /// After approval: generates and hands over the keys, then proves PIN1 and PIN2.
    /// PINs from $TANDEM_PIN1 / $TANDEM_PIN2 or standard input.
    RegisterFinish {
        /// Client key size.
        #[arg(long, default_value_t = 3072)]
        key_bits: usize,
        /// Wait up to this many seconds for the approval.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Fast Argon2 parameters (tests only: weakens the PIN protection).
        #[arg(long)]
        insecure_fast_kdf: bool,
    },
    /// Lists pending transactions.
    Pending {
        /// Wait up to this many seconds for one to arrive (server-streaming watch).
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Confirms a transaction (authentication, signature or certificate choice); PIN from
    /// $TANDEM_PIN or standard input (a certificate choice needs none). A same-device flow
    /// (Web2App / App2App) prints the callback URL the app opens.
    Confirm {
        /// Transaction id.
        transaction: String,
        /// The verification code chosen when three are shown.
        #[arg(long)]
        vc: Option<String>,
    },
    /// "Scans" a device link (QR code, Web2App / App2App link of the REST API): the server
    /// checks its authCode and age; then the session is shown and answered like `confirm`.
    /// PIN from $TANDEM_PIN or standard input.
    Scan {
        /// The link, or `@FILE` to read it from a file (e.g. the one `tandem rp-api login
        /// --link-file` keeps current).
        link: String,
        /// The verification code chosen when three are shown.
        #[arg(long)]
        vc: Option<String>,
        /// Refuse instead of confirming.
        #[arg(long)]
        refuse: bool,
        /// With --refuse: why (default: cert-choice for a certificate choice, user otherwise).
        #[arg(long, value_enum, requires = "refuse")]
        reason: Option<RefuseReasonArg>,
        /// With --reason interaction: the refused interaction type (default: the one shown).
        #[arg(long, requires = "reason")]
        interaction: Option<String>,
    },
    /// Refuses a transaction. A same-device flow prints the callback URL the app opens.
    Refuse {
        /// Transaction id.
        transaction: String,
        /// Why (default: cert-choice for a certificate choice, user otherwise).
        #[arg(long, value_enum)]
        reason: Option<RefuseReasonArg>,
        /// With --reason interaction: the refused interaction type (default: the one shown).
        #[arg(long, requires = "reason")]
        interaction: Option<String>,
    },
    /// Shows lock state and attempts left.
    State,
    /// Shows the account as the server knows it.
    Info,
    /// Replaces a key pair's clone-detection token.
    RefreshToken {
        /// Which key pair.
        #[arg(long, value_enum)]
        key: KeyArg,
    },
    /// Deletes the account on the server and the local state.
    Delete,
}

const REGISTRATION_FILE: &str = "registration.json";
const ACCOUNT_FILE: &str = "account.json";

/// Takes the device directory's lock (created owner-only, 0700, if missing), held while a
/// command reads, uses and writes back the device state: concurrent commands on one
/// device run one after the other, so none presents a clone-detection token another has
/// already spent, and none loses another's update of the state.
/// Only `register-start` creates the directory; other commands on a missing one take no
/// lock (and fail when they read the state).
fn lock_device(
    dir: &Path,
    create: bool,
) -> anyhow::Result<Option<tandem_server::fs_mode::DirLock>> {
    if !dir.exists() {
        if !create {
            return Ok(None);
        }
        tandem_server::fs_mode::create_private_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    tandem_server::fs_mode::DirLock::acquire(dir)
        .map(Some)
        .with_context(|| format!("cannot lock the device directory {}", dir.display()))
}

/// Loads the device state file.
pub fn load_state(dir: &Path) -> anyhow::Result<DeviceState> {
    let path = dir.join(ACCOUNT_FILE);
    let bytes = std::fs::read(&path)
        .with_context(|| format!("no account on this device ({})", path.display()))?;
    Ok(DeviceState::from_json_bytes(&bytes)?)
}

/// Saves the device state file.
pub fn save_state(dir: &Path, state: &DeviceState) -> anyhow::Result<()> {
    write_atomic(&dir.join(ACCOUNT_FILE), &state.to_json_bytes()?)
}

fn read_pin(var: &str, prompt: &str) -> anyhow::Result<Pin> {
    let raw = match std::env::var(var) {
        Ok(v) => v,
        Err(_) => {
            eprint!("{prompt}: ");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end().to_owned()
        }
    };
    Pin::from_string(raw).map_err(|_| anyhow::anyhow!("a PIN is 4 to 12 digits"))
}

fn device_id(dir: &Path) -> anyhow::Result<[u8; 16]> {
    let path = dir.join("device-id");
    if let Ok(hex_id) = std::fs::read_to_string(&path) {
        let v = hex::decode(hex_id.trim()).context("corrupt device-id file")?;
        return v
            .try_into()
            .map_err(|_| anyhow::anyhow!("corrupt device-id file"));
    }
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    write_atomic(&path, hex::encode(id).as_bytes())?;
    Ok(id)
}

fn outcome_name(v: i32) -> &'static str {
    match pb::ConfirmOutcome::try_from(v) {
        Ok(pb::ConfirmOutcome::Accepted) => "ACCEPTED",
        Ok(pb::ConfirmOutcome::WrongPin) => "WRONG_PIN",
        Ok(pb::ConfirmOutcome::Locked) => "LOCKED",
        Ok(pb::ConfirmOutcome::Disabled) => "DISABLED",
        Ok(pb::ConfirmOutcome::WrongVc) => "WRONG_VC",
        Ok(pb::ConfirmOutcome::CloneDetected) => "CLONE_DETECTED",
        Ok(pb::ConfirmOutcome::TransactionClosed) => "TRANSACTION_CLOSED",
        _ => "UNKNOWN",
    }
}

/// One line describing a key pair's state.
pub fn describe_key_state(s: &pb::KeyPairState) -> String {
    let kt = if s.key_type == pb::KeyType::Auth as i32 {
        "AUTH"
    } else {
        "SIGN"
    };
    match pb::KeyStatus::try_from(s.status) {
        Ok(pb::KeyStatus::Active) => format!(
            "{kt}: active, {} wrong PIN(s) left before a lock",
            s.attempts_before_lock
        ),
        Ok(pb::KeyStatus::Locked) => format!(
            "{kt}: LOCKED for {} more seconds after {} wrong PINs",
            (s.locked_until_unix - unix_now()).max(0),
            s.consecutive_failures
        ),
        Ok(pb::KeyStatus::Disabled) => format!("{kt}: DISABLED for good; register again"),
        _ => format!("{kt}: unknown"),
    }
}

/// Runs a `device` subcommand.
pub async fn device(opts: DeviceOptions, cmd: DeviceCommand) -> anyhow::Result<()> {
    let ca = std::fs::read(&opts.ca)
        .with_context(|| format!("cannot read CA certificate {}", opts.ca.display()))?;
    let client = Client::connect(&opts.server, &ca)
        .await
        .with_context(|| format!("cannot connect to {}", opts.server))?;
    let dir = &opts.dir;
    // Commands that write the state hold the lock from reading it to writing it back
    // (across the server's answer: a clone-detection token is spent by the request).
    let _lock = match cmd {
        DeviceCommand::Pending { .. }
        | DeviceCommand::Refuse { .. }
        | DeviceCommand::State
        | DeviceCommand::Info => None,
        DeviceCommand::RegisterStart => lock_device(dir, true)?,
        _ => lock_device(dir, false)?,
    };
    match cmd {
        DeviceCommand::RegisterStart => {
            if dir.join(ACCOUNT_FILE).exists() {
                anyhow::bail!("this device already has an account; delete it first");
            }
            let id = device_id(dir)?;
            let p = dev::register_start(&client, id).await?;
            write_atomic(
                &dir.join(REGISTRATION_FILE),
                serde_json::to_string_pretty(&p)?.as_bytes(),
            )?;
            outln!("registration code: {}", p.registration_code);
            outln!("matching code:     {}", p.matching_code);
            outln!(
                "valid for {} seconds; give the code to the operator and check they see the same matching code",
                p.expires_at_unix - unix_now()
            );
        }
        DeviceCommand::RegisterFinish {
            key_bits,
            wait,
            insecure_fast_kdf,
        } => {
            let path = dir.join(REGISTRATION_FILE);
            let mut p: dev::PendingRegistration = serde_json::from_slice(
                &std::fs::read(&path).context("no registration in progress; run register-start")?,
            )?;
            if p.keys.is_empty() {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
                loop {
                    let st = dev::registration_status(&client, &p).await?;
                    match pb::RegistrationState::try_from(st.state) {
                        Ok(pb::RegistrationState::Approved) => break,
                        Ok(pb::RegistrationState::PendingApproval)
                            if std::time::Instant::now() < deadline =>
                        {
                            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        }
                        Ok(pb::RegistrationState::PendingApproval) => {
                            anyhow::bail!("not approved yet")
                        }
                        Ok(pb::RegistrationState::Expired) => {
                            anyhow::bail!("the registration code expired; start again")
                        }
                        _ => anyhow::bail!("the registration cannot continue (state {})", st.state),
                    }
                }
                let pin1 = read_pin("TANDEM_PIN1", "choose PIN1 (authentication)")?;
                let pin2 = read_pin("TANDEM_PIN2", "choose PIN2 (signing)")?;
                let kdf = if insecure_fast_kdf {
                    KdfParams::testing()
                } else {
                    KdfParams::default()
                };
                eprintln!("generating two {key_bits}-bit client keys ...");
                dev::submit_keys(&client, &mut p, &pin1, &pin2, key_bits, kdf).await?;
                write_atomic(&path, serde_json::to_string_pretty(&p)?.as_bytes())?;
            }
            let pin1 = read_pin("TANDEM_PIN1", "enter PIN1 to confirm")?;
            let pin2 = read_pin("TANDEM_PIN2", "enter PIN2 to confirm")?;
            match dev::prove(&client, &p, &pin1, &pin2).await? {
                ProofOutcome::Completed(state) => {
                    save_state(dir, &state)?;
                    std::fs::remove_file(&path)?;
                    outln!("registered: document number {}", state.document_number);
                }
                ProofOutcome::PinMismatch {
                    failed,
                    attempts_left,
                } => {
                    anyhow::bail!(
                        "PIN confirmation failed for {failed:?}; {attempts_left} attempt(s) left"
                    );
                }
            }
        }
        DeviceCommand::Pending { wait } => {
            let state = load_state(dir)?;
            let mut list = dev::list_pending(&client, &state).await?;
            if list.is_empty() && wait > 0 {
                let mut stream = dev::watch_pending(&client, &state).await?;
                if let Ok(Ok(Some(t))) =
                    tokio::time::timeout(std::time::Duration::from_secs(wait), stream.message())
                        .await
                {
                    list.push(t);
                }
            }
            for t in &list {
                outln!("{}", device_answer::pending_line(&state, t));
            }
            if list.is_empty() {
                outln!("no pending transaction");
            }
        }
        DeviceCommand::Confirm { transaction, vc } => {
            let mut state = load_state(dir)?;
            let t = device_answer::find_pending(&client, &state, &transaction).await?;
            let answer = device_answer::confirm(&client, &mut state, &t, vc.as_deref()).await?;
            save_state(dir, &state)?;
            device_answer::report(&answer)?;
        }
        DeviceCommand::Scan {
            link,
            vc,
            refuse,
            reason,
            interaction,
        } => {
            let mut state = load_state(dir)?;
            let link = match link.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)?.trim().to_owned(),
                None => link,
            };
            let t = dev::claim_device_link(&client, &state, &link).await?;
            if refuse {
                device_answer::refuse(&client, &state, &t, reason, interaction).await?;
                return Ok(());
            }
            let answer = device_answer::confirm(&client, &mut state, &t, vc.as_deref()).await?;
            save_state(dir, &state)?;
            device_answer::report(&answer)?;
        }
        DeviceCommand::Refuse {
            transaction,
            reason,
            interaction,
        } => {
            let state = load_state(dir)?;
            let t = device_answer::find_pending(&client, &state, &transaction).await?;
            device_answer::refuse(&client, &state, &t, reason, interaction).await?;
        }
        DeviceCommand::State => {
            let state = load_state(dir)?;
            for s in dev::key_state(&client, &state).await? {
                outln!("{}", describe_key_state(&s));
            }
        }
        DeviceCommand::Info => {
            let state = load_state(dir)?;
            let a = dev::account(&client, &state).await?;
            let i = a.identity.unwrap_or_default();
            outln!(
                "{} {} ({}-{})",
                i.given_name,
                i.surname,
                i.country,
                i.national_id
            );
            outln!("document number {}", a.document_number);
            outln!("expires {}", fmt_time(a.expires_at_unix));
        }
        DeviceCommand::RefreshToken { key } => {
            let mut state = load_state(dir)?;
            dev::refresh_clone_token(&client, &mut state, key.into()).await?;
            save_state(dir, &state)?;
            outln!("clone-detection token refreshed");
        }
        DeviceCommand::Delete => {
            let state = load_state(dir)?;
            dev::delete_account(&client, &state).await?;
            std::fs::remove_file(dir.join(ACCOUNT_FILE))?;
            outln!("account deleted");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- relying party

/// Options of the relying-party client.
#[derive(Args, Debug, Clone)]
pub struct RpOptions {
    /// Server URL.
    #[arg(long, default_value = "https://127.0.0.1:7443", env = "TANDEM_SERVER")]
    pub server: String,
    /// CA certificate (PEM) to trust for the server's TLS.
    #[arg(long, env = "TANDEM_CA")]
    pub ca: PathBuf,
    /// Relying party name shown on the device.
    #[arg(long, default_value = "Demo Bank")]
    pub name: String,
}

/// Signature scheme argument.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum SchemeArg {
    /// RSASSA-PKCS1-v1_5.
    Pkcs1,
    /// RSASSA-PSS (salt = hash length).
    Pss,
}

/// Who to ask.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// Document number of one account.
    #[arg(long)]
    pub document: Option<String>,
    /// Person (PNOEE-30303039914): every active device of that person.
    #[arg(long)]
    pub person: Option<String>,
}

/// `tandem rp ...`
#[derive(Subcommand, Debug)]
pub enum RpCommand {
    /// Starts an authentication: signs SHA-256 of a fresh random challenge with the AUTH key.
    Auth {
        #[command(flatten)]
        target: TargetArgs,
        /// Signature scheme.
        #[arg(long, value_enum, default_value = "pkcs1")]
        scheme: SchemeArg,
        /// Ask the device for the three-code choice.
        #[arg(long)]
        vc_choice: bool,
        /// Text shown on the device.
        #[arg(long, default_value = "Log in to Demo Bank")]
        text: String,
        /// Where to write the challenge (the signed data).
        #[arg(long)]
        challenge_out: Option<PathBuf>,
    },
    /// Starts a signature over SHA-256 of a file with the SIGN key.
    Sign {
        #[command(flatten)]
        target: TargetArgs,
        /// File to sign.
        #[arg(long)]
        file: PathBuf,
        /// Signature scheme.
        #[arg(long, value_enum, default_value = "pss")]
        scheme: SchemeArg,
        /// Ask the device for the three-code choice.
        #[arg(long)]
        vc_choice: bool,
        /// Text shown on the device.
        #[arg(long, default_value = "Sign the document")]
        text: String,
    },
    /// Shows (and optionally waits for) a transaction's result; writes signature and key.
    Status {
        /// Transaction id.
        transaction: String,
        /// Wait up to this many seconds for completion.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Write the signature here (binary).
        #[arg(long)]
        signature_out: Option<PathBuf>,
        /// Write the public key here (PEM).
        #[arg(long)]
        pubkey_out: Option<PathBuf>,
        /// Write the signer's certificate here (PEM).
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
}

/// Connects a relying-party client.
pub async fn rp_client(server: &str, ca_pem: &[u8]) -> anyhow::Result<RelyingPartyClient<Channel>> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(server.to_owned())?
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(RelyingPartyClient::new(channel))
}

fn target(t: &TargetArgs) -> Option<pb::start_transaction_request::Target> {
    use pb::start_transaction_request::Target;
    t.document
        .clone()
        .map(Target::DocumentNumber)
        .or_else(|| t.person.clone().map(Target::PersonId))
}

fn scheme_pb(s: SchemeArg) -> i32 {
    match s {
        SchemeArg::Pkcs1 => pb::SignatureScheme::Pkcs1V15 as i32,
        SchemeArg::Pss => pb::SignatureScheme::Pss as i32,
    }
}

/// Polls until the transaction completes or `wait` seconds pass.
pub async fn wait_status(
    client: &mut RelyingPartyClient<Channel>,
    id: &str,
    wait: u64,
) -> anyhow::Result<pb::TransactionStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    loop {
        let st = client
            .get_transaction_status(pb::GetTransactionStatusRequest {
                transaction_id: id.to_owned(),
            })
            .await?
            .into_inner();
        if st.state == pb::TransactionState::Complete as i32
            || std::time::Instant::now() >= deadline
        {
            return Ok(st);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Runs an `rp` subcommand.
pub async fn rp(opts: RpOptions, cmd: RpCommand) -> anyhow::Result<()> {
    use sha2::{Digest, Sha256};
    let ca = std::fs::read(&opts.ca)
        .with_context(|| format!("cannot read CA certificate {}", opts.ca.display()))?;
    let mut client = rp_client(&opts.server, &ca)
        .await
        .with_context(|| format!("cannot connect to {}", opts.server))?;
    match cmd {
        RpCommand::Auth {
            target: t,
            scheme,
            vc_choice,
            text,
            challenge_out,
        } => {
            let mut challenge = [0u8; 64];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut challenge);
            if let Some(p) = &challenge_out {
                std::fs::write(p, challenge)?;
            }
            let r = client
                .start_authentication(pb::StartTransactionRequest {
                    relying_party_name: opts.name,
                    target: target(&t),
                    hash: pb::HashAlgorithm::Sha256 as i32,
                    digest: Sha256::digest(challenge).to_vec(),
                    scheme: scheme_pb(scheme),
                    display_text: text,
                    vc_choice,
                    timeout_seconds: 0,
                })
                .await?
                .into_inner();
            outln!(
                "transaction {}\nverification code {}",
                r.transaction_id,
                r.verification_code
            );
        }
        RpCommand::Sign {
            target: t,
            file,
            scheme,
            vc_choice,
            text,
        } => {
            let data =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let r = client
                .start_signature(pb::StartTransactionRequest {
                    relying_party_name: opts.name,
                    target: target(&t),
                    hash: pb::HashAlgorithm::Sha256 as i32,
                    digest: Sha256::digest(&data).to_vec(),
                    scheme: scheme_pb(scheme),
                    display_text: text,
                    vc_choice,
                    timeout_seconds: 0,
                })
                .await?
                .into_inner();
            outln!(
                "transaction {}\nverification code {}",
                r.transaction_id,
                r.verification_code
            );
        }
        RpCommand::Status {
            transaction,
            wait,
            signature_out,
            pubkey_out,
            cert_out,
        } => {
            let st = wait_status(&mut client, &transaction, wait).await?;
            let state = if st.state == pb::TransactionState::Complete as i32 {
                "COMPLETE"
            } else {
                "RUNNING"
            };
            let result = pb::EndResult::try_from(st.end_result)
                .map(|r| r.as_str_name().trim_start_matches("END_RESULT_"))
                .unwrap_or("-");
            outln!("state {state}\nresult {result}");
            if !st.signature.is_empty() {
                outln!("document number {}", st.document_number);
                if let Some(p) = signature_out {
                    std::fs::write(&p, &st.signature)?;
                    outln!("signature written to {}", p.display());
                }
                if let (Some(p), Some(kp)) = (pubkey_out, &st.key_pair) {
                    std::fs::write(&p, tandem_server::pki::rsa_spki_pem(&kp.composite_modulus)?)?;
                    outln!("public key written to {}", p.display());
                }
                if let (Some(p), Some(kp)) = (cert_out, &st.key_pair) {
                    anyhow::ensure!(
                        !kp.certificate_der.is_empty(),
                        "the result carries no certificate"
                    );
                    std::fs::write(&p, pem_encode("CERTIFICATE", &kp.certificate_der))?;
                    outln!("certificate written to {}", p.display());
                }
            }
        }
    }
    Ok(())
}
