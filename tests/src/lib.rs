//! Harness for the end-to-end tests: real `tandem` server processes on 127.0.0.1 with a
//! SoftHSM token and a SQLite file in a temporary directory, simulated devices built on
//! `client-core`, relying-party calls over gRPC, and OpenSSL as the independent verifier.
//!
//! Keys are 2048 bits and the device's Argon2 parameters are the test ones: these servers
//! are for tests only.

#![allow(clippy::unwrap_used, missing_debug_implementations)]

pub mod browser;
pub mod mtls;
pub mod web;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use tandem_client_core::grpc::{self as dev, Client, PendingRegistration, ProofOutcome};
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::state::DeviceState;
use tandem_proto::v1 as pb;
use tandem_proto::v1::relying_party_client::RelyingPartyClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Key size used by the tests (client and server halves).
pub const TEST_KEY_BITS: usize = 2048;

/// Path of the `tandem` binary, built once per test process if needed.
pub fn tandem_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // scripts/test.sh builds the workspace first and names the binary.
        if let Ok(bin) = std::env::var("TANDEM_BIN") {
            let bin = PathBuf::from(bin);
            assert!(bin.exists(), "TANDEM_BIN={} does not exist", bin.display());
            return bin;
        }
        // target/debug/deps/<test> -> target/debug/tandem
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let bin = dir.join("tandem");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Benchmarks (`cargo bench`) run from target/release: build the release binary.
        let release = dir.ends_with("release").then_some("--release");
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "tandem-cli", "--bin", "tandem"])
            .args(release)
            .status()
            .expect("cannot run cargo to build the tandem binary");
        assert!(status.success(), "building the tandem binary failed");
        assert!(bin.exists(), "tandem binary not found at {}", bin.display());
        bin
    })
    .clone()
}

/// Runs `tandem` with arguments; returns stdout, fails with stderr.
pub fn tandem(args: &[&str]) -> Result<String> {
    tandem_env(args, &[])
}

/// Runs `tandem` with arguments and extra environment; returns stdout, fails with stderr.
pub fn tandem_env(args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    let out = Command::new(tandem_bin())
        .args(["--log", "warn"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "tandem {:?} failed: {}{}",
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A server's data directory and, while running, its process.
pub struct TestServer {
    /// Temporary directory holding everything.
    pub tmp: tempfile::TempDir,
    /// `<tmp>/server`.
    pub data_dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// `http://127.0.0.1:PORT`: OCSP, CRL, CA certificates.
    pub http_url: String,
    /// `http://127.0.0.1:PORT` (or `https://` with [`rp_api_https_table`]): the REST
    /// relying-party API's origin (base path `/v3`).
    pub rest_url: String,
    rest_tls: bool,
    /// TLS certificate (PEM).
    pub ca: Vec<u8>,
    child: Option<Child>,
    log_path: PathBuf,
    log_level: String,
    extra_env: Vec<(String, String)>,
}

/// Edits of the generated `tandem.toml` (TOML text appended / replaced sections).
#[derive(Default, Clone)]
pub struct ServerOptions {
    /// Replaces the `[lockout]` table, e.g. short lock durations.
    pub lockout: Option<String>,
    /// Replaces the `[timeouts]` table.
    pub timeouts: Option<String>,
    /// Log filter for the server process.
    pub log: Option<String>,
    /// Extra environment for the server process (test hooks).
    pub env: Vec<(String, String)>,
    /// CA key type (`ec-p384` by default: fast to generate).
    pub ca_key_spec: Option<String>,
    /// Replaces the `[rp_api]` table (default: [`rp_api_table`] with plain HTTP).
    pub rp_api: Option<String>,
    /// Use hsm-sim (the default of `server init`) instead of a SoftHSM token.
    pub hsm_sim: bool,
    /// Sets `hsm.call_timeout_ms`.
    pub hsm_call_timeout_ms: Option<u64>,
    /// Sets `keys.server_key_pool` (default 0 in tests: no background key generation).
    pub server_key_pool: Option<usize>,
    /// `server init --transport-key rsa --share-exponentiation token-rsa`: d1'' as an RSA
    /// key object in the token (docs/HSM_MODES.md).
    pub token_rsa: bool,
}

/// Relying party registered in every test server (REST API).
pub const RP_UUID: &str = "00000000-0000-4000-8000-000000000001";
/// Its name.
pub const RP_NAME: &str = "Tandem Test Bank";
/// The `deviceLinkBase` of test servers.
pub const DEVICE_LINK_BASE: &str = "https://app.tandem.example/device-link";

/// An `[rp_api]` table: plain HTTP, scheme `smart-id`, test accounts as given (answering
/// after 300 ms, 2048-bit keys).
pub fn rp_api_table(max_qr_age_seconds: u64, test_accounts: bool) -> String {
    format!(
        "[rp_api]\nlisten = \"127.0.0.1:0\"\ntls = false\nbase_path = \"/v3\"\ndevice_link_base = \"{DEVICE_LINK_BASE}\"\nscheme_name = \"smart-id\"\nmax_qr_age_seconds = {max_qr_age_seconds}\nresult_retention_seconds = 300\nidempotency_seconds = 15\nrate_limit_per_second = 50\nrate_limit_burst = 100\ntest_accounts = {test_accounts}\ntest_account_delay_ms = 300\ntest_account_key_bits = 2048\n"
    )
}

/// [`rp_api_table`] served over HTTPS with the server's TLS certificate (`tls/server.crt`).
pub fn rp_api_https_table() -> String {
    rp_api_table(60, false).replace("tls = false", "tls = true")
}

/// A short lockout table: 3 -> `l1` s, 6 -> `l2` s, 9 -> disabled.
pub fn short_lockout(l1: i64, l2: i64) -> String {
    format!(
        "[lockout]\ndisable_after = 9\n\n[[lockout.locks]]\nfailures = 3\nlock_seconds = {l1}\n\n[[lockout.locks]]\nfailures = 6\nlock_seconds = {l2}\n"
    )
}

/// A `[timeouts]` table.
pub fn timeouts(registration_seconds: i64, transaction_seconds: u32) -> String {
    format!(
        "[timeouts]\nregistration_seconds = {registration_seconds}\ntransaction_seconds = {transaction_seconds}\nmax_transaction_seconds = 600\naccount_validity_days = 1095\nregistration_proof_attempts = 3\n"
    )
}

/// Sets `key = value` on the line where the generated configuration has that key.
fn set_value(toml: &str, key: &str, value: &str) -> Result<String> {
    let prefix = format!("{key} = ");
    anyhow::ensure!(
        toml.lines().any(|l| l.starts_with(&prefix)),
        "no {key} in the configuration"
    );
    Ok(toml
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{prefix}{value}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n")
}

fn replace_table(toml: &str, table: &str, replacement: &str) -> String {
    // Drop the existing table (and its sub-tables), then append the replacement.
    let mut out = String::new();
    let mut skipping = false;
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            let name = t.trim_start_matches('[').trim_end_matches(']');
            skipping = name == table || name.starts_with(&format!("{table}."));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(replacement);
    out
}

impl TestServer {
    /// Initialises a data directory (SoftHSM or hsm-sim token included) and starts the
    /// server.
    pub fn start(opts: ServerOptions) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("server");
        let bits = TEST_KEY_BITS.to_string();
        let hsm = if opts.hsm_sim { "" } else { "--softhsm" };
        let init = [
            "server",
            "init",
            hsm,
            "--listen",
            "127.0.0.1:0",
            "--server-key-bits",
            &bits,
            "--transport-key-bits",
            &bits,
            "--ca-key-spec",
            opts.ca_key_spec.as_deref().unwrap_or("ec-p384"),
            "--public-base-url",
            "http://ca.example.com",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ];
        let token_rsa = [
            "--transport-key",
            "rsa",
            "--share-exponentiation",
            "token-rsa",
        ];
        let init: Vec<&str> = init
            .into_iter()
            .chain(token_rsa.into_iter().filter(|_| opts.token_rsa))
            .filter(|a| !a.is_empty())
            .collect();
        tandem(&init)?;
        let cfg_path = data_dir.join("tandem.toml");
        let mut cfg = std::fs::read_to_string(&cfg_path)?;
        if let Some(l) = &opts.lockout {
            cfg = replace_table(&cfg, "lockout", l);
        }
        if let Some(t) = &opts.timeouts {
            cfg = replace_table(&cfg, "timeouts", t);
        }
        let pool = opts.server_key_pool.unwrap_or(0);
        cfg = set_value(&cfg, "server_key_pool", &pool.to_string())?;
        if let Some(ms) = opts.hsm_call_timeout_ms {
            cfg = set_value(&cfg, "call_timeout_ms", &ms.to_string())?;
        }
        let rp_api = opts.rp_api.unwrap_or_else(|| rp_api_table(60, false));
        let rest_tls = rp_api.contains("tls = true");
        cfg = replace_table(&cfg, "rp_api", &rp_api);
        std::fs::write(&cfg_path, cfg)?;
        let ca = std::fs::read(data_dir.join("tls/server.crt"))?;
        let log_path = tmp.path().join("server.log");
        let mut s = Self {
            tmp,
            data_dir,
            url: String::new(),
            http_url: String::new(),
            rest_url: String::new(),
            rest_tls,
            ca,
            child: None,
            log_path,
            log_level: opts.log.unwrap_or_else(|| "info".into()),
            extra_env: opts.env,
        };
        s.spawn()?;
        s.operator(&["rp-add", "--uuid", RP_UUID, "--name", RP_NAME])?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        // Re-use the ports after a restart so devices and OCSP clients reconnect.
        let listen = self
            .url
            .strip_prefix("https://")
            .unwrap_or("127.0.0.1:0")
            .to_owned();
        let http_listen = self
            .http_url
            .strip_prefix("http://")
            .unwrap_or("127.0.0.1:0")
            .to_owned();
        let rest_listen = self
            .rest_url
            .split_once("://")
            .map_or("127.0.0.1:0", |(_, addr)| addr)
            .to_owned();
        let mut child = Command::new(tandem_bin())
            .args([
                "--log",
                &self.log_level,
                "server",
                "run",
                "--listen",
                &listen,
            ])
            .args(["--http-listen", &http_listen, "--rest-listen", &rest_listen])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            for _ in 0..3 {
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let _ = tx.send(line);
            }
        });
        let addr_of = |prefix: &str| -> Result<String> {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .context("server did not start within 60 s")?;
            Ok(line
                .trim()
                .strip_prefix(prefix)
                .with_context(|| format!("unexpected server output {line:?}; log: {}", self.log()))?
                .to_owned())
        };
        let grpc = addr_of("listening on ")?;
        let http = addr_of("http listening on ")?;
        let rest = addr_of("rest listening on ")?;
        self.url = format!("https://{grpc}");
        self.http_url = format!("http://{http}");
        let scheme = if self.rest_tls { "https" } else { "http" };
        self.rest_url = format!("{scheme}://{rest}");
        self.child = Some(child);
        Ok(())
    }

    /// The server process's id while it runs (for CPU figures from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Asserts that `tandem audit --verify` finds the audit chain intact.
    pub fn assert_audit_intact(&self) {
        let out = self.operator(&["audit", "--verify"]).unwrap();
        assert!(out.contains("intact"), "audit chain: {out}");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL: no shutdown handling at all.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart retry: {e}");
                    std::thread::sleep(Duration::from_millis(300));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets an environment variable (a test hook) for the next restart.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.to_owned(), value.to_owned()));
    }

    /// Drops the extra environment (test hooks) for the next restart.
    pub fn clear_env(&mut self) {
        self.extra_env.clear();
    }

    /// `tandem operator approve CODE` for a person.
    pub fn approve(&self, code: &str, person: &Person) -> Result<String> {
        self.operator(&[
            "approve",
            code,
            "--given-name",
            person.given,
            "--surname",
            person.surname,
            "--country",
            person.country,
            "--national-id",
            person.id,
        ])
    }

    /// Runs `tandem operator` on this data directory.
    pub fn operator(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["operator", "--data-dir", self.data_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        tandem(&all)
    }

    /// A device client.
    pub async fn device_client(&self) -> Result<Client> {
        Ok(Client::connect(&self.url, &self.ca).await?)
    }

    /// A relying-party client.
    pub async fn rp(&self) -> Result<RelyingPartyClient<Channel>> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name("localhost");
        let channel = Endpoint::from_shared(self.url.clone())?
            .tls_config(tls)?
            .connect()
            .await?;
        Ok(RelyingPartyClient::new(channel))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A person's identity for approvals.
pub struct Person {
    /// Given name.
    pub given: &'static str,
    /// Surname.
    pub surname: &'static str,
    /// Country.
    pub country: &'static str,
    /// National id.
    pub id: &'static str,
}

/// The default test person.
pub const MARY: Person = Person {
    given: "MARY",
    surname: "TESTNUMBER",
    country: "EE",
    id: "30303039914",
};

/// Another test person.
pub const OTHER: Person = Person {
    given: "A",
    surname: "B",
    country: "EE",
    id: "1",
};

/// Starts a registration for `device_id`, has the operator approve it for `person` (through
/// the `tandem operator` command) and hands the keys over; stops before the PIN proof.
pub async fn register_until_proof(
    server: &TestServer,
    device_id: [u8; 16],
    person: &Person,
    pin1: &str,
    pin2: &str,
) -> Result<(Client, PendingRegistration, Pin, Pin)> {
    let client = server.device_client().await?;
    let mut reg = dev::register_start(&client, device_id).await?;
    let out = server.operator(&["registrations"])?;
    assert!(
        out.contains(&reg.registration_code) && out.contains(&reg.matching_code),
        "{out}"
    );
    server.approve(&reg.registration_code, person)?;
    let (p1, p2) = (Pin::new(pin1)?, Pin::new(pin2)?);
    dev::submit_keys(
        &client,
        &mut reg,
        &p1,
        &p2,
        TEST_KEY_BITS,
        KdfParams::testing(),
    )
    .await?;
    Ok((client, reg, p1, p2))
}

/// Registers a device for `person` with the given PINs: start, operator approval, key
/// hand-over, proof.
pub async fn register(
    server: &TestServer,
    person: &Person,
    pin1: &str,
    pin2: &str,
) -> Result<DeviceState> {
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
    let (client, reg, p1, p2) = register_until_proof(server, id, person, pin1, pin2).await?;
    match dev::prove(&client, &reg, &p1, &p2).await? {
        ProofOutcome::Completed(state) => Ok(*state),
        ProofOutcome::PinMismatch { .. } => bail!("proof failed"),
    }
}

/// Starts a transaction for a document number.
pub async fn start_tx(
    rp: &mut RelyingPartyClient<Channel>,
    kind: pb::TransactionKind,
    document: &str,
    data: &[u8],
    scheme: pb::SignatureScheme,
    vc_choice: bool,
) -> Result<pb::StartTransactionResponse> {
    let req = pb::StartTransactionRequest {
        relying_party_name: "Test Bank".into(),
        target: Some(pb::start_transaction_request::Target::DocumentNumber(
            document.into(),
        )),
        hash: pb::HashAlgorithm::Sha256 as i32,
        digest: Sha256::digest(data).to_vec(),
        scheme: scheme as i32,
        display_text: "Test".into(),
        vc_choice,
        timeout_seconds: 0,
    };
    let r = match kind {
        pb::TransactionKind::Authentication => rp.start_authentication(req).await?,
        _ => rp.start_signature(req).await?,
    };
    Ok(r.into_inner())
}

/// The device's view of one pending transaction.
pub async fn pending(
    client: &Client,
    state: &DeviceState,
    id: &str,
) -> Result<pb::PendingTransaction> {
    let list = dev::list_pending(client, state).await?;
    list.into_iter()
        .find(|t| t.transaction_id == id)
        .context("transaction not pending on the device")
}

/// Polls until complete (at most 10 s).
pub async fn status(
    rp: &mut RelyingPartyClient<Channel>,
    id: &str,
) -> Result<pb::TransactionStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = rp
            .get_transaction_status(pb::GetTransactionStatusRequest {
                transaction_id: id.into(),
            })
            .await?
            .into_inner();
        if st.state == pb::TransactionState::Complete as i32 || Instant::now() > deadline {
            return Ok(st);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Verifies `signature` over `data` with OpenSSL under the SPKI (DER) public key.
pub fn openssl_verify(
    dir: &Path,
    spki_der: &[u8],
    data: &[u8],
    signature: &[u8],
    pss: bool,
) -> Result<()> {
    let key = dir.join("key.der");
    let sig = dir.join("sig.bin");
    let msg = dir.join("data.bin");
    std::fs::write(&key, spki_der)?;
    std::fs::write(&sig, signature)?;
    std::fs::write(&msg, data)?;
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", "-sha256", "-keyform", "DER", "-verify"])
        .arg(&key);
    if pss {
        cmd.args([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
        ]);
    }
    let out = cmd.arg("-signature").arg(&sig).arg(&msg).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("Verified OK") {
        bail!(
            "openssl rejected the signature: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Sends raw bytes as the request message of a unary gRPC method (for malformed-protobuf
/// tests); returns the raw response bytes.
pub async fn raw_unary(
    server: &TestServer,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&server.ca))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(server.url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}

/// A codec that passes bytes through unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let mut out = vec![0u8; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// One HTTP/1.1 request (`Connection: close`) to `addr`; returns status and body.
fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP header end")?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    Ok((status, response[split + 4..].to_vec()))
}

/// A plain HTTP/1.1 request to the server's publication point; returns status and body.
pub fn http(server: &TestServer, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
    let addr = server
        .http_url
        .strip_prefix("http://")
        .context("no http url")?;
    http_request(
        addr,
        method,
        path,
        "application/ocsp-request",
        body,
        Duration::from_secs(20),
    )
}

/// [`http`] with another Content-Type (e.g. `application/timestamp-query` for `POST /tsa`).
pub fn http_typed(
    server: &TestServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>)> {
    let addr = server
        .http_url
        .strip_prefix("http://")
        .context("no http url")?;
    http_request(
        addr,
        method,
        path,
        content_type,
        body,
        Duration::from_secs(20),
    )
}

/// A JSON request to the REST relying-party API (`path` below the origin, e.g.
/// `/v3/session/…`); returns the status and the parsed body (`Null` when empty or not JSON).
pub fn rest(
    server: &TestServer,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, serde_json::Value)> {
    let addr = server
        .rest_url
        .strip_prefix("http://")
        .context("no REST url")?;
    let (status, body) = http_request(
        addr,
        method,
        path,
        "application/json",
        body.as_bytes(),
        Duration::from_secs(150),
    )?;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// Long-polls `GET /v3/session/{id}` until the session is COMPLETE (at most about a minute).
pub fn rest_session_result(server: &TestServer, id: &str) -> Result<serde_json::Value> {
    for _ in 0..30 {
        let (s, b) = rest(
            server,
            "GET",
            &format!("/v3/session/{id}?timeoutMs=2000"),
            "",
        )?;
        anyhow::ensure!(s == 200, "session status answered {s}: {b}");
        if b["state"] == "COMPLETE" {
            return Ok(b);
        }
    }
    anyhow::bail!("session {id} did not complete")
}

/// Waits (at most 5 s) until the device lists the session as pending.
pub async fn pending_session(
    client: &Client,
    state: &DeviceState,
    id: &str,
) -> Result<pb::PendingTransaction> {
    for _ in 0..50 {
        if let Some(t) = dev::list_pending(client, state)
            .await?
            .into_iter()
            .find(|t| t.transaction_id == id)
        {
            return Ok(t);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("session {id} is not pending on the device")
}

/// Interactions for `"Sign contract 42"` with the PIN (Base64 JSON, as the RP API wants).
pub const SIGN_WITH_PIN: &str =
    r#"[{"type":"displayTextAndPIN","displayText60":"Sign contract 42"}]"#;

/// Base64 of a JSON text (the RP API's `interactions`).
pub fn b64_json(json: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// A RAW_DIGEST_SIGNATURE request body (RSASSA-PSS, SHA-512 over a fixed digest) with
/// the given interactions (JSON, Base64-encoded here) and optional `nonce`.
pub fn rest_sign_body(interactions_json: &str, nonce: Option<&str>) -> String {
    use base64::Engine as _;
    let mut v = serde_json::json!({
        "relyingPartyUUID": RP_UUID,
        "relyingPartyName": RP_NAME,
        "signatureProtocol": "RAW_DIGEST_SIGNATURE",
        "signatureProtocolParameters": {
            "digest": base64::engine::general_purpose::STANDARD.encode([7u8; 64]),
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": b64_json(interactions_json)
    });
    if let Some(n) = nonce {
        v["nonce"] = serde_json::json!(n);
    }
    v.to_string()
}

/// The value after `prefix` on the first line of a command's output that starts with it.
pub fn field<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {out}"))
        .trim()
}

/// Runs `openssl` with arguments in `dir`; returns stdout + stderr and whether it succeeded.
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `openssl cms -verify` of the detached DER `p7s` over `content`, trusting only `pki_dir`'s
/// `root.pem`; its `issuing.pem` is offered as `-certfile` (OpenSSL 3.0's `cms` has no
/// `-untrusted`). Returns whether OpenSSL accepted it and what it said.
pub fn openssl_cms_verify(pki_dir: &Path, p7s: &Path, content: &Path) -> (bool, String) {
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    let (p7s, content) = (path(p7s), path(content));
    let (root, issuing) = (
        path(&pki_dir.join("root.pem")),
        path(&pki_dir.join("issuing.pem")),
    );
    openssl(
        pki_dir,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            &p7s,
            "-content",
            &content,
            "-CAfile",
            &root,
            "-certfile",
            &issuing,
            "-out",
            "/dev/null",
        ],
    )
}

/// PEM of a DER certificate.
pub fn cert_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Waits (at most 3 minutes) until the test accounts are provisioned: the endpoint answers
/// 503 until then, and 400 for an unknown document number afterwards.
pub fn wait_for_test_accounts(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (s, b) = rest(
            server,
            "POST",
            "/v3/test-accounts/device-link",
            r#"{"deviceLink":"x","documentNumber":"PNOEE-1-MOCK-Q"}"#,
        )
        .unwrap();
        match s {
            400 => {
                assert!(
                    b["detail"].as_str().unwrap().contains("not a test account"),
                    "{b}"
                );
                return;
            }
            503 => {}
            _ => panic!("unexpected answer {s}: {b}"),
        }
        assert!(
            Instant::now() < deadline,
            "test accounts not ready: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `tandem rp-api --api <server>/v3 --trust <data dir> ARGS` as the test relying party.
pub fn rp_api_cli(server: &TestServer, args: &[&str]) -> Result<String, String> {
    let api = format!("{}/v3", server.rest_url);
    let trust = server.data_dir.to_str().unwrap().to_owned();
    let mut all = vec!["rp-api", "--api", &api, "--trust", &trust];
    all.extend_from_slice(args);
    tandem_env(
        &all,
        &[("TANDEM_RP_UUID", RP_UUID), ("TANDEM_RP_NAME", RP_NAME)],
    )
    .map_err(|e| e.to_string())
}
