//! The web front end (`tandem web`) as a real process for the end-to-end and browser tests:
//! [`start_web`] writes its configuration against a [`TestServer`] (its data directory gives
//! the HTTPS certificate, the RP API's trust and the trust anchors) and waits for its
//! address; [`Phone`] is the simulated phone (`tandem device --dir`) that registers, scans
//! and confirms.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Person, RP_NAME, RP_UUID, TestServer, field, tandem_bin, tandem_env};

/// The Content-Security-Policy every answer carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The session cookie's name over HTTPS.
pub const COOKIE: &str = "__Host-tandem";

/// How to start the web process.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `upload_limit_bytes`.
    pub upload_limit: u64,
    /// More TOML appended to the configuration (e.g. a `[portal]` table).
    pub extra_toml: String,
    /// Top-level keys (e.g. `tsa_url = "..."`), put before the first table.
    pub top_toml: String,
}

impl WebOptions {
    /// The defaults with this upload limit.
    pub fn with_upload_limit(upload_limit: u64) -> Self {
        Self {
            upload_limit,
            extra_toml: String::new(),
            top_toml: String::new(),
        }
    }
}

impl Default for WebOptions {
    fn default() -> Self {
        Self::with_upload_limit(25 * 1024 * 1024)
    }
}

/// A running `tandem web`, killed on drop.
pub struct Web {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// Its log file.
    pub log: PathBuf,
}

impl Web {
    /// The process id (for CPU figures from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_web(server: &TestServer, dir: &Path, opts: &WebOptions) -> Web {
    let upload_limit = opts.upload_limit;
    let config = dir.join("web.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ntandem_data_dir = \"{}\"\ndefault_lang = \"en\"\n\
             upload_limit_bytes = {upload_limit}\n{}\n\n[rp_api]\nbase_url = \"{}/v3\"\n\n\
             [revocation]\nocsp_url = \"{}/ocsp\"\nca_crl_url = \"{}/crl/root.crl\"\n\n\
             [bank]\nrelying_party_uuid = \"{RP_UUID}\"\nrelying_party_name = \"{RP_NAME}\"\n\n{}",
            server.data_dir.display(),
            opts.top_toml,
            server.rest_url,
            server.http_url,
            server.http_url,
            opts.extra_toml,
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("web.log")).unwrap();
    let mut child = Command::new(tandem_bin())
        .args(["web", "--config"])
        .arg(&config)
        .env("TANDEM_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("web: listening on ")
        .unwrap_or_else(|| {
            panic!(
                "no address from tandem web: {line:?}\n{}",
                std::fs::read_to_string(dir.join("web.log")).unwrap_or_default()
            )
        })
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    Web {
        child,
        url,
        log: dir.join("web.log"),
    }
}

/// The simulated phone: `tandem device --dir DIR` against the server.
pub struct Phone<'a> {
    server: &'a TestServer,
    /// The device's directory.
    pub dir: PathBuf,
}

impl<'a> Phone<'a> {
    /// A phone keeping its state in `dir`.
    pub fn new(server: &'a TestServer, dir: PathBuf) -> Self {
        Self { server, dir }
    }

    /// Registers for `person` (approved by the operator; 2048-bit keys, fast test KDF) and
    /// returns the document number.
    pub fn register(&self, person: &Person, pin1: &str, pin2: &str) -> String {
        let out = self.run(&["register-start"], &[]);
        self.server
            .approve(field(&out, "registration code:"), person)
            .unwrap();
        let out = self.run(
            &[
                "register-finish",
                "--key-bits",
                "2048",
                "--insecure-fast-kdf",
            ],
            &[("TANDEM_PIN1", pin1), ("TANDEM_PIN2", pin2)],
        );
        field(&out, "registered: document number").to_owned()
    }

    /// `tandem device ARGS` against the server, with its options (dir, CA, server).
    fn args<'b>(&'b self, ca: &'b Path, args: &[&'b str]) -> Vec<&'b str> {
        let mut all = vec![
            "device",
            "--dir",
            self.dir.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--server",
            &self.server.url,
        ];
        all.extend_from_slice(args);
        all
    }

    /// Runs `tandem device ARGS` with `env`; its output (panics if the command fails).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        self.try_run(args, env).unwrap()
    }

    /// Runs `tandem device ARGS` with `env`; its output, or the failure with the output.
    pub fn try_run(&self, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
        let ca = self.server.data_dir.join("tls/server.crt");
        tandem_env(&self.args(&ca, args), env)
    }

    /// `tandem --log warn device ARGS` as a command to spawn (e.g. to read its output as it
    /// comes); stdin is closed.
    pub fn command(&self, args: &[&str]) -> Command {
        let ca = self.server.data_dir.join("tls/server.crt");
        let mut c = Command::new(tandem_bin());
        c.args(["--log", "warn"])
            .args(self.args(&ca, args))
            .stdin(Stdio::null());
        c
    }

    /// The pending authentication line, waiting up to 10 s.
    pub fn pending_auth(&self) -> String {
        for _ in 0..100 {
            let out = self.run(&["pending"], &[]);
            if let Some(l) = out.lines().find(|l| l.contains("  Auth  ")) {
                return l.to_owned();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no pending authentication within 10 s");
    }

    /// Whether anything waits for the phone.
    pub fn has_pending(&self) -> bool {
        !self
            .run(&["pending"], &[])
            .contains("no pending transaction")
    }
}
