//! `tandem rp-api`: a relying party of the REST API (Smart-ID RP API v3 wire format), built on
//! [`tandem_rp::client`]. Progress goes to stderr, results to stdout; a session that does not
//! end with a verified OK result exits non-zero.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand, ValueEnum};
use tandem_rp::api::device_link::DeviceLinkType;
use tandem_rp::api::types::{
    AuthCertificateLevel, AuthSignatureProtocol, AuthSignatureProtocolParameters, CertificateState,
    DeviceLinkAuthenticationRequest, DeviceLinkSigningRequest, HashAlgorithm, Interaction,
    NotificationAuthenticationRequest, NotificationSigningRequest, SessionStatusResponse,
    SignCertificateLevel, SignSignatureProtocol, SignSignatureProtocolParameters,
    SignatureAlgorithm, SignatureAlgorithmParametersInRequest, SigningCertificateRequest,
    VerificationCodeType, encode_interactions,
};
use tandem_rp::api::vc::authentication_vc_b64;
use tandem_rp::client::pinning::{certificate_file_pins, presented_certificate_pins};
use tandem_rp::client::revocation::{RevocationOptions, check_chain_revocation};
use tandem_rp::client::verify::{
    self, CertificateLevel, CertificatePurpose, VerificationError, VerificationReport,
};
use tandem_rp::client::{
    AuthTarget, AuthenticationExpectation, ClientConfig, ClientIdentity, DeviceLinkSession,
    RpApiClient, SignatureExpectation, SpkiPin, TrustAnchors, UserRef, generate_rp_challenge, qr,
};
use tandem_rp::signing::session::notification_interaction;
use tandem_rp::signing::{self, SigningError};

use tandem_server::fs_mode::write_atomic;

use super::pem_encode;

pub mod package;
mod sign_cades;
mod sign_pades;

/// Options shared by every `rp-api` subcommand (accepted before or after it).
#[derive(Args, Debug, Clone)]
pub struct RpApiOptions {
    /// Base URL of the RP API.
    #[arg(
        long,
        global = true,
        default_value = "https://127.0.0.1:8088/v3",
        env = "TANDEM_RP_API"
    )]
    pub api: String,
    /// relyingPartyUUID, as registered on the server (`tandem operator rp-add`).
    #[arg(long, global = true, env = "TANDEM_RP_UUID")]
    pub rp_uuid: Option<String>,
    /// relyingPartyName, exactly as registered.
    #[arg(long, global = true, env = "TANDEM_RP_NAME")]
    pub rp_name: Option<String>,
    /// Trust anchors for user certificates: a server data directory (uses its pki/root.pem
    /// and pki/issuing.pem), a directory holding root.pem and issuing.pem, or PEM files
    /// (self-signed certificates become roots, the others intermediates). Repeatable or
    /// comma-separated.
    #[arg(long, global = true, value_delimiter = ',')]
    pub trust: Vec<PathBuf>,
    /// Root CA certificate (PEM) to trust for user certificates. Repeatable.
    #[arg(long, global = true)]
    pub root: Vec<PathBuf>,
    /// Intermediate CA certificate (PEM) for building chains. Repeatable.
    #[arg(long, global = true)]
    pub intermediate: Vec<PathBuf>,
    /// Policy OID every user certificate must carry (scheme identification). Repeatable.
    #[arg(long, global = true)]
    pub require_policy: Vec<String>,
    /// After verification, check whether the certificate and each intermediate CA certificate
    /// of its chain are revoked: each one's OCSP responder (AIA), and if OCSP fails or is
    /// unavailable its CRL (cRLDistributionPoints). The self-signed root is not checked.
    #[arg(long, global = true)]
    pub ocsp: bool,
    /// OCSP responder URL to use instead of the certificate's AIA (implies --ocsp).
    #[arg(long, global = true)]
    pub ocsp_url: Option<String>,
    /// CRL URL to use instead of the certificate's cRLDistributionPoints when OCSP gives no
    /// usable answer (implies --ocsp).
    #[arg(long, global = true)]
    pub crl_url: Option<String>,
    /// CRL URL for the intermediate CA certificates instead of their cRLDistributionPoints:
    /// the CRL of the CA above them, for Tandem the root's `<public base URL>/crl/root.crl`
    /// (needed for an issuing CA certificate made before the root published a CRL, which
    /// names none). Implies --ocsp.
    #[arg(long, global = true)]
    pub ca_crl_url: Option<String>,
    /// Extra root certificate (PEM) to trust for the server's HTTPS certificate.
    #[arg(long, global = true, env = "TANDEM_RP_API_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Certificate revocation list (PEM or DER) of the CA that issued the server's HTTPS
    /// certificate: the certificate must be covered by a current CRL and not listed. Repeatable.
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_crl: Vec<PathBuf>,
    /// Pin the server's TLS key: the standard Base64 SHA-256 of its certificate's
    /// SubjectPublicKeyInfo (HPKP's pin-sha256; `tandem rp-api pin` prints it). Repeatable or
    /// comma-separated (the current key and the next one): a server whose key matches none is
    /// refused during the TLS handshake, before any request is sent. Needs an https --api.
    #[arg(
        long = "pin-sha256",
        global = true,
        value_name = "BASE64",
        env = "TANDEM_RP_API_PIN",
        value_delimiter = ','
    )]
    pub pin_sha256: Vec<SpkiPin>,
    /// Mutual TLS: present this client certificate to the RP API: a `.p12` (PKCS#12, as
    /// `tandem rp-cert download` writes it; give --client-cert-password-file) or a PEM
    /// file with the certificate chain (and the key, or give --client-key). Needs an https
    /// --api.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "TANDEM_RP_CLIENT_CERT"
    )]
    pub client_cert: Option<PathBuf>,
    /// The .p12's password: the first line of this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub client_cert_password_file: Option<PathBuf>,
    /// The client certificate's private key (PEM) when --client-cert is a PEM file without
    /// it.
    #[arg(long, global = true, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// Scheme name in authCodes and ACSP_V2 payloads (the server's configured one).
    #[arg(long, global = true, default_value = "smart-id")]
    pub scheme_name: String,
    /// Language of the device link fallback page (ISO 639-2).
    #[arg(long, global = true, default_value = "eng")]
    pub lang: String,
}

/// A known user (exactly one of the two).
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct UserArgs {
    /// Document number of one account (…/document/{number}).
    #[arg(long)]
    pub document: Option<String>,
    /// ETSI semantics identifier of a person, e.g. PNOEE-30303039914 (…/etsi/{id}).
    #[arg(long)]
    pub etsi: Option<String>,
}

/// A known user, or nobody (anonymous).
#[derive(Args, Debug, Clone)]
#[group(required = false, multiple = false)]
pub struct OptionalUserArgs {
    /// Document number of one account (…/document/{number}); default: anonymous.
    #[arg(long)]
    pub document: Option<String>,
    /// ETSI semantics identifier, e.g. PNOEE-30303039914 (…/etsi/{id}); default: anonymous.
    #[arg(long)]
    pub etsi: Option<String>,
}

fn user_ref(document: Option<String>, etsi: Option<String>) -> Option<UserRef> {
    document.map(UserRef::Document).or(etsi.map(UserRef::Etsi))
}

/// What to sign: a file (hashed here) or a ready digest.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct DigestSource {
    /// File whose hash (--hash) is signed.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Base64 digest to sign (its length must fit --hash).
    #[arg(long)]
    pub digest: Option<String>,
}

/// How the signature is made.
#[derive(Args, Debug, Clone)]
pub struct AlgorithmArgs {
    /// Hash algorithm: SHA-256, SHA-384, SHA-512 (or SHA3-256, SHA3-384, SHA3-512 with PSS).
    #[arg(long, value_parser = parse_hash, default_value = "SHA-512")]
    pub hash: HashAlgorithm,
    /// Ask for PKCS#1 v1.5 (shaXXXWithRSAEncryption, deprecated) instead of RSASSA-PSS.
    #[arg(long)]
    pub pkcs1: bool,
}

impl AlgorithmArgs {
    fn algorithm(&self) -> anyhow::Result<SignatureAlgorithm> {
        if !self.pkcs1 {
            return Ok(SignatureAlgorithm::RsassaPss);
        }
        Ok(match self.hash {
            HashAlgorithm::Sha256 => SignatureAlgorithm::Sha256WithRsaEncryption,
            HashAlgorithm::Sha384 => SignatureAlgorithm::Sha384WithRsaEncryption,
            HashAlgorithm::Sha512 => SignatureAlgorithm::Sha512WithRsaEncryption,
            other => bail!("--pkcs1 needs a SHA-2 hash, not {}", other.as_str()),
        })
    }

    fn parameters(&self) -> Option<SignatureAlgorithmParametersInRequest> {
        (!self.pkcs1).then_some(SignatureAlgorithmParametersInRequest {
            hash_algorithm: self.hash,
        })
    }
}

fn parse_hash(s: &str) -> Result<HashAlgorithm, String> {
    match s.to_ascii_uppercase().replace('_', "-").as_str() {
        "SHA-256" | "SHA256" => Ok(HashAlgorithm::Sha256),
        "SHA-384" | "SHA384" => Ok(HashAlgorithm::Sha384),
        "SHA-512" | "SHA512" => Ok(HashAlgorithm::Sha512),
        "SHA3-256" => Ok(HashAlgorithm::Sha3_256),
        "SHA3-384" => Ok(HashAlgorithm::Sha3_384),
        "SHA3-512" => Ok(HashAlgorithm::Sha3_512),
        _ => Err(format!(
            "unknown hash {s:?}: use SHA-256, SHA-384, SHA-512, SHA3-256, SHA3-384 or SHA3-512"
        )),
    }
}

/// Certificate level for authentication.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum AuthLevelArg {
    Advanced,
    Qualified,
}

impl From<AuthLevelArg> for AuthCertificateLevel {
    fn from(l: AuthLevelArg) -> Self {
        match l {
            AuthLevelArg::Advanced => Self::Advanced,
            AuthLevelArg::Qualified => Self::Qualified,
        }
    }
}

/// Certificate level for signing (QSCD: qualified, key on a QSCD).
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum SignLevelArg {
    Advanced,
    Qualified,
    Qscd,
}

impl From<SignLevelArg> for SignCertificateLevel {
    fn from(l: SignLevelArg) -> Self {
        match l {
            SignLevelArg::Advanced => Self::Advanced,
            SignLevelArg::Qualified => Self::Qualified,
            SignLevelArg::Qscd => Self::Qscd,
        }
    }
}

/// Where a device-link QR code goes.
#[derive(Args, Debug, Clone)]
pub struct QrArgs {
    /// Also write the QR code as PNG here (rewritten every second).
    #[arg(long)]
    pub qr_png: Option<PathBuf>,
    /// Write the current QR device link here, atomically, every second.
    #[arg(long)]
    pub link_file: Option<PathBuf>,
    /// Pixels per QR module in the PNG.
    #[arg(long, default_value_t = qr::DEFAULT_MODULE_PIXELS)]
    pub qr_module_px: u32,
    /// Do not draw the QR code in the terminal.
    #[arg(long)]
    pub no_terminal_qr: bool,
    /// Let a test account "scan" the QR code instead of a phone (a server with
    /// `rp_api.test_accounts`; docs/RP_API.md): its document number, or `named` for a session
    /// that already names a test account.
    #[arg(long, value_name = "DOC|named")]
    pub test_account: Option<String>,
}

/// `tandem rp-api ...`
#[derive(Subcommand, Debug)]
pub enum RpApiCommand {
    /// Device-link (QR) authentication with ACSP_V2; verifies the result step by step.
    Login {
        #[command(flatten)]
        user: OptionalUserArgs,
        #[command(flatten)]
        qr: QrArgs,
        /// Long-poll timeout of each session status request (ms, 1000..=120000).
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
        /// Text shown in the app (displayTextAndPIN, at most 60 characters).
        #[arg(long, default_value = "Log in with Tandem")]
        text: String,
        #[command(flatten)]
        alg: AlgorithmArgs,
        /// Minimum certificate level.
        #[arg(long, value_enum, default_value = "qualified")]
        level: AuthLevelArg,
        /// Start the session with this initialCallbackUrl and print Web2App/App2App links
        /// (their result cannot be verified here: the callback values never reach us).
        #[arg(long)]
        callback_url: Option<String>,
        /// Write the authentication certificate here (PEM).
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
    /// Notification authentication: prints the verification code, then waits and verifies.
    NotifyLogin {
        #[command(flatten)]
        user: UserArgs,
        /// Long-poll timeout of each session status request (ms).
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
        /// Text shown in the app.
        #[arg(long, default_value = "Log in with Tandem")]
        text: String,
        /// Make the user pick the code among three (confirmationMessageAndVerificationCodeChoice).
        #[arg(long)]
        vc_choice: bool,
        #[command(flatten)]
        alg: AlgorithmArgs,
        /// Minimum certificate level.
        #[arg(long, value_enum, default_value = "qualified")]
        level: AuthLevelArg,
        /// Write the authentication certificate here (PEM).
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
    /// RAW_DIGEST_SIGNATURE signing, by notification (default) or device link (--qr).
    Sign {
        #[command(flatten)]
        user: UserArgs,
        #[command(flatten)]
        source: DigestSource,
        #[command(flatten)]
        alg: AlgorithmArgs,
        /// Device-link flow with a QR code instead of a notification.
        #[arg(long)]
        qr: bool,
        #[command(flatten)]
        qr_out: QrArgs,
        /// Long-poll timeout of each session status request (ms).
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
        /// Text shown in the app.
        #[arg(long, default_value = "Sign the document")]
        text: String,
        /// Make the user pick the code among three (notification only).
        #[arg(long)]
        vc_choice: bool,
        /// Minimum certificate level.
        #[arg(long, value_enum, default_value = "qualified")]
        level: SignLevelArg,
        /// Write the signature here (raw bytes).
        #[arg(long)]
        signature_out: Option<PathBuf>,
        /// Write the signing certificate here (PEM).
        #[arg(long)]
        cert_out: Option<PathBuf>,
    },
    /// Detached CAdES-B-B signature (.p7s) of a file: the signed attributes' digest is signed
    /// by notification (RAW_DIGEST_SIGNATURE), the signer's certificate fetched first.
    SignCades(sign_cades::SignCadesArgs),
    /// PAdES-B-B signature of a PDF (B-T with --tsa): an incremental update appended to the
    /// original, its byte ranges signed by notification (RAW_DIGEST_SIGNATURE).
    SignPades(sign_pades::SignPadesArgs),
    /// Signed packages (ASiC-E) with a proof of origin.
    #[command(subcommand)]
    Package(package::PackageCommand),
    /// Signing certificate of a document (no user interaction).
    Cert {
        /// Document number.
        #[arg(long)]
        document: String,
        /// Minimum certificate level.
        #[arg(long, value_enum, default_value = "qualified")]
        level: SignLevelArg,
        /// Write the certificate here (PEM) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the pin-sha256 of the server's TLS key, for --pin-sha256: from its certificate
    /// file (`--cert DATA_DIR/tls/server.crt` on the server's machine), or else as presented
    /// by the server at --api (chain checked against --tls-ca and the web PKI; compare it with
    /// the file before relying on it). The pin goes to standard output, details to stderr.
    Pin {
        /// The server's TLS certificate (PEM or DER); the first certificate of a PEM bundle is
        /// the server's own.
        #[arg(long)]
        cert: Option<PathBuf>,
    },
    /// One session status request; prints the JSON response.
    Status {
        /// sessionID.
        session_id: String,
        /// Long-poll timeout (ms); without it the server's default applies.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
}

// ---------------------------------------------------------------------- setup

struct Rp {
    uuid: String,
    name: String,
}

fn rp(opts: &RpApiOptions) -> anyhow::Result<Rp> {
    let uuid = opts
        .rp_uuid
        .clone()
        .context("--rp-uuid (or TANDEM_RP_UUID) is required")?;
    let name = opts
        .rp_name
        .clone()
        .context("--rp-name (or TANDEM_RP_NAME) is required")?;
    Ok(Rp { uuid, name })
}

fn client_config(opts: &RpApiOptions) -> anyhow::Result<ClientConfig> {
    let mut cfg = ClientConfig::new(&opts.api);
    if let Some(p) = &opts.tls_ca {
        cfg.extra_root_pem =
            Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?);
    }
    for p in &opts.tls_crl {
        cfg.tls_crls.push(read(p)?);
    }
    cfg.pins = opts.pin_sha256.clone();
    cfg.client_identity = client_identity(opts)?;
    Ok(cfg)
}

/// The client certificate of `--client-cert` (with its password or key), if given.
fn client_identity(opts: &RpApiOptions) -> anyhow::Result<Option<ClientIdentity>> {
    let Some(path) = &opts.client_cert else {
        if opts.client_key.is_some() || opts.client_cert_password_file.is_some() {
            bail!("--client-key and --client-cert-password-file need --client-cert");
        }
        return Ok(None);
    };
    let file = zeroize::Zeroizing::new(read(path)?);
    let id = if file.trim_ascii_start().starts_with(b"-----BEGIN") {
        let key = match &opts.client_key {
            Some(k) => zeroize::Zeroizing::new(read(k)?),
            None => file.clone(),
        };
        ClientIdentity::from_pem(&key, &file)
    } else {
        let pw = opts
            .client_cert_password_file
            .as_deref()
            .context("--client-cert is a .p12: give --client-cert-password-file")?;
        let pw = crate::rp_cert::read_password_file(pw)?;
        ClientIdentity::from_pkcs12(&file, &pw)
    };
    Ok(Some(id.with_context(|| {
        format!("--client-cert {}", path.display())
    })?))
}

pub(crate) fn client(opts: &RpApiOptions) -> anyhow::Result<RpApiClient> {
    Ok(RpApiClient::new(client_config(opts)?)?)
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

/// The trust anchors of the options (empty if none given).
fn trust(opts: &RpApiOptions) -> anyhow::Result<TrustAnchors> {
    let mut a = TrustAnchors::new();
    for p in &opts.trust {
        if p.is_dir() {
            let dir = if p.join("pki").join("root.pem").is_file() {
                p.join("pki")
            } else {
                p.clone()
            };
            let root = dir.join("root.pem");
            if !root.is_file() {
                bail!(
                    "--trust {}: no root.pem in it or in its pki/ directory",
                    p.display()
                );
            }
            a.add_roots_pem(&read(&root)?)
                .with_context(|| root.display().to_string())?;
            let issuing = dir.join("issuing.pem");
            if issuing.is_file() {
                a.add_intermediates_pem(&read(&issuing)?)
                    .with_context(|| issuing.display().to_string())?;
            }
        } else {
            a.add_pem(&read(p)?)
                .with_context(|| p.display().to_string())?;
        }
    }
    for p in &opts.root {
        a.add_roots_pem(&read(p)?)
            .with_context(|| p.display().to_string())?;
    }
    for p in &opts.intermediate {
        a.add_intermediates_pem(&read(p)?)
            .with_context(|| p.display().to_string())?;
    }
    for oid in &opts.require_policy {
        a.require_policy(oid)?;
    }
    Ok(a)
}

/// Trust anchors that verification needs: refuse to start a session without them.
fn required_trust(opts: &RpApiOptions) -> anyhow::Result<TrustAnchors> {
    let a = trust(opts)?;
    if a.root_count() == 0 {
        bail!(
            "no trust anchors to verify the result with: give --trust DATA_DIR (or --root FILE \
             [--intermediate FILE])"
        );
    }
    Ok(a)
}

fn describe_user(u: Option<&UserRef>) -> String {
    match u {
        None => "anonymous".to_owned(),
        Some(UserRef::Document(d)) => format!("document {d}"),
        Some(UserRef::Etsi(e)) => format!("person {e}"),
    }
}

// ---------------------------------------------------------------------- QR display

/// Shows the current QR link: terminal drawing (redrawn in place), link file, PNG.
struct QrDisplay {
    terminal: bool,
    png: Option<PathBuf>,
    link_file: Option<PathBuf>,
    module_px: u32,
    drawn_lines: usize,
}

impl QrDisplay {
    fn new(args: &QrArgs) -> Self {
        let terminal = !args.no_terminal_qr && std::io::stderr().is_terminal();
        if !terminal && !args.no_terminal_qr {
            eprintln!(
                "(standard error is not a terminal: the QR code is not drawn; use --link-file or --qr-png)"
            );
        }
        Self {
            terminal,
            png: args.qr_png.clone(),
            link_file: args.link_file.clone(),
            module_px: args.qr_module_px,
            drawn_lines: 0,
        }
    }

    fn show(&mut self, link: &str, elapsed: u64, waiting_for: &str) -> anyhow::Result<()> {
        if let Some(p) = &self.link_file {
            write_atomic(p, link.as_bytes())
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        if let Some(p) = &self.png {
            write_atomic(p, &qr::png(link, self.module_px)?)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        if self.terminal {
            let text = qr::terminal(link)?;
            let mut out = String::new();
            if self.drawn_lines > 0 {
                // Back to the top of the previous drawing.
                out.push_str(&format!("\x1b[{}A", self.drawn_lines));
            }
            out.push_str(&text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!(
                "\x1b[2K{waiting_for} (QR code refreshed every second, {elapsed} s)\n"
            ));
            eprint!("{out}");
            self.drawn_lines = text.lines().count() + 1;
        }
        Ok(())
    }
}

/// Shows the QR link every second until the session completes, long-polling meanwhile.
async fn show_qr_until_complete(
    client: &RpApiClient,
    session: &DeviceLinkSession,
    received_at: Instant,
    qr_args: &QrArgs,
    timeout_ms: u64,
    waiting_for: &str,
) -> anyhow::Result<SessionStatusResponse> {
    let mut display = QrDisplay::new(qr_args);
    if !display.terminal {
        eprintln!("{waiting_for} (session {})…", session.session_id);
    }
    let quiet = display.terminal;
    let started = Instant::now();
    let poll = client.wait_for_completion(&session.session_id, Some(timeout_ms), |_| {
        if !quiet {
            eprintln!("  still {waiting_for} ({} s)", started.elapsed().as_secs());
        }
    });
    tokio::pin!(poll);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(received_at),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut test_account = qr_args.test_account.as_deref();
    loop {
        tokio::select! {
            status = &mut poll => return Ok(status?),
            _ = tick.tick() => {
                let now = Instant::now();
                let link = session.qr_link(now);
                display.show(&link, session.elapsed_seconds(now), waiting_for)?;
                if let Some(doc) = test_account.take() {
                    let doc = (doc != "named").then_some(doc);
                    let r = client.test_account_scan(&link, doc).await?;
                    eprintln!("test account {} scanned the QR code", r["documentNumber"].as_str().unwrap_or("?"));
                }
            }
        }
    }
}

async fn wait_plain(
    client: &RpApiClient,
    session_id: &str,
    timeout_ms: u64,
    waiting_for: &str,
) -> anyhow::Result<SessionStatusResponse> {
    announce_wait(waiting_for, session_id);
    Ok(client
        .wait_for_completion(session_id, Some(timeout_ms), wait_progress(waiting_for))
        .await?)
}

/// The line before a long poll.
fn announce_wait(waiting_for: &str, session_id: &str) {
    eprintln!("{waiting_for} (session {session_id})…");
}

/// The progress lines while a long poll finds the session running.
fn wait_progress(waiting_for: &str) -> impl FnMut(u32) + '_ {
    let started = Instant::now();
    move |_| eprintln!("  still {waiting_for} ({} s)", started.elapsed().as_secs())
}

// ---------------------------------------------------------------------- results

/// A COMPLETE session that did not end OK: print it and fail.
fn check_end_result(status: &SessionStatusResponse, what: &str) -> anyhow::Result<()> {
    signing::check_end_result(status).map_err(|e| signing_failure(e, what))
}

/// A [`SigningError`] as the commands report it: a session that did not end OK printed as
/// `result: …`, a failed verification with its steps, an RP API error as itself (the
/// transport hint of [`run`] looks for it).
fn signing_failure(e: SigningError, what: &str) -> anyhow::Error {
    match e {
        SigningError::Api(e) => e.into(),
        SigningError::StillRunning => anyhow::anyhow!("{what}: the session is still running"),
        SigningError::Ended(end) => {
            let printed = (|| -> anyhow::Result<()> {
                outln!("result: {end}");
                Ok(())
            })();
            match printed {
                Ok(()) => anyhow::anyhow!("{what} did not succeed: {end}"),
                Err(closed) => closed,
            }
        }
        SigningError::Verification(v) => print_failure(&v),
        e => e.into(),
    }
}

fn print_report(report: &VerificationReport) -> anyhow::Result<()> {
    for s in &report.steps {
        outln!("{s}");
    }
    Ok(())
}

/// Prints the steps passed and the failed one; the error to return (or the closed output).
fn print_failure(e: &VerificationError) -> anyhow::Error {
    let printed = (|| -> anyhow::Result<()> {
        print_report(&e.passed)?;
        outln!("{}: FAILED ({})", e.step, e.reason);
        Ok(())
    })();
    match printed {
        Ok(()) => anyhow::anyhow!("verification failed at {}: {}", e.step, e.reason),
        Err(closed) => closed,
    }
}

fn write_cert(path: &Path, der: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, pem_encode("CERTIFICATE", der))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("certificate written to {}", path.display());
    Ok(())
}

fn print_identity(
    id: &verify::CertificateIdentity,
    doc: Option<&str>,
    level: CertificateLevel,
) -> anyhow::Result<()> {
    outln!("identity: {}", id.serial_number);
    if let Some(g) = &id.given_name {
        outln!("given name: {g}");
    }
    if let Some(s) = &id.surname {
        outln!("surname: {s}");
    }
    outln!("country: {}", id.country);
    if let Some(d) = doc {
        outln!("document number: {d}");
    }
    outln!("certificate level: {}", level.as_str());
    Ok(())
}

/// The revocation step (OCSP, CRL as fallback) of the certificate and of each intermediate CA
/// certificate of its chain if asked for, else a note that it was not done. A line per
/// certificate, naming the method that answered: `revocation: OK (OCSP: good …)` for the
/// user's certificate, `revocation of intermediate CA certificate CN=… (serial …): OK (CRL:
/// not listed …; OCSP gave no answer: …)`; a failure as `… FAILED (CRL: the certificate is
/// revoked …)` after the lines of the certificates that passed.
async fn revocation(
    opts: &RpApiOptions,
    certificate_der: &[u8],
    anchors: &TrustAnchors,
    out: fn(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if !opts.ocsp && opts.ocsp_url.is_none() && opts.crl_url.is_none() && opts.ca_crl_url.is_none()
    {
        return out("revocation: not checked (use --ocsp)");
    }
    let ro = RevocationOptions {
        ocsp_url: opts.ocsp_url.clone(),
        crl_url: opts.crl_url.clone(),
        ca_crl_url: opts.ca_crl_url.clone(),
        ..Default::default()
    };
    match check_chain_revocation(certificate_der, anchors, &ro).await {
        Ok(chain) => {
            for c in &chain.certificates {
                out(&c.report_line())?;
            }
            Ok(())
        }
        Err(e) => {
            for c in &e.checked {
                out(&c.report_line())?;
            }
            out(&e.report_line())?;
            let e = VerificationError::from(e);
            bail!("verification failed at {}: {}", e.step, e.reason)
        }
    }
}

fn to_stdout(s: &str) -> anyhow::Result<()> {
    outln!("{s}");
    Ok(())
}

fn to_stderr(s: &str) -> anyhow::Result<()> {
    eprintln!("{s}");
    Ok(())
}

async fn finish_authentication(
    opts: &RpApiOptions,
    status: &SessionStatusResponse,
    expected: &AuthenticationExpectation,
    anchors: &TrustAnchors,
    cert_out: Option<&Path>,
) -> anyhow::Result<()> {
    check_end_result(status, "authentication")?;
    let v = verify::verify_authentication(status, expected, anchors, SystemTime::now())
        .map_err(|e| print_failure(&e))?;
    print_report(&v.report)?;
    revocation(opts, &v.certificate_der, anchors, to_stdout).await?;
    outln!("authenticated: {}", v.identity);
    print_identity(&v.identity, v.document_number.as_deref(), v.level)?;
    outln!("flow: {}", v.flow_type.as_str());
    outln!("interaction: {}", v.interaction_type_used.as_str());
    if let Some(p) = cert_out {
        write_cert(p, &v.certificate_der)?;
    }
    Ok(())
}

/// How `notification_login` asks.
pub(crate) struct NotifyLoginArgs {
    pub(crate) timeout_ms: u64,
    pub(crate) text: String,
    pub(crate) vc_choice: bool,
    pub(crate) alg: AlgorithmArgs,
    pub(crate) level: AuthLevelArg,
}

/// A notification authentication of `user` (ACSP_V2), verified as `rp-api notify-login`
/// does; returns the session id.
pub(crate) async fn notification_login(
    opts: &RpApiOptions,
    user: &UserRef,
    args: NotifyLoginArgs,
    cert_out: Option<&Path>,
) -> anyhow::Result<String> {
    let rp = rp(opts)?;
    let anchors = required_trust(opts)?;
    let client = client(opts)?;
    let rp_challenge = generate_rp_challenge(&mut rand_core::OsRng);
    let interaction = notification_interaction(args.text, args.vc_choice);
    let req = NotificationAuthenticationRequest {
        relying_party_uuid: rp.uuid,
        relying_party_name: rp.name,
        certificate_level: Some(args.level.into()),
        signature_protocol: AuthSignatureProtocol::AcspV2,
        signature_protocol_parameters: AuthSignatureProtocolParameters {
            rp_challenge,
            signature_algorithm: args.alg.algorithm()?,
            signature_algorithm_parameters: args.alg.parameters(),
        },
        interactions: encode_interactions(&[interaction]),
        request_properties: None,
        capabilities: None,
        vc_type: VerificationCodeType::Numeric4,
        nonce: None,
    };
    let vc = authentication_vc_b64(&req.signature_protocol_parameters.rp_challenge)
        .context("rpChallenge is not Base64")?;
    // Shown before the push arrives (notification_based_flows.txt).
    outln!("verification code: {vc}");
    eprintln!(
        "starting a notification authentication ({}) at {}",
        describe_user(Some(user)),
        client.base_url()
    );
    let resp = client.notification_authentication(user, &req).await?;
    let status = wait_plain(
        &client,
        &resp.session_id,
        args.timeout_ms,
        &format!("waiting for the user to check code {vc} and confirm"),
    )
    .await?;
    let expected = AuthenticationExpectation::notification(&req, &opts.scheme_name, user)?;
    finish_authentication(opts, &status, &expected, &anchors, cert_out).await?;
    Ok(resp.session_id)
}

// ---------------------------------------------------------------------- commands

/// Runs an `rp-api` subcommand.
pub async fn run(opts: RpApiOptions, cmd: RpApiCommand) -> anyhow::Result<()> {
    let https_without_root = opts.api.starts_with("https://") && opts.tls_ca.is_none();
    run_command(opts, cmd).await.inspect_err(|e| {
        let transport = matches!(
            e.downcast_ref::<tandem_rp::client::Error>(),
            Some(tandem_rp::client::Error::Transport { .. })
        );
        if transport && https_without_root {
            eprintln!("hint: for a server with a self-signed certificate, give --tls-ca FILE");
        }
        if matches!(
            e.downcast_ref::<tandem_rp::client::Error>(),
            Some(tandem_rp::client::Error::PinMismatch { .. })
        ) {
            eprintln!(
                "hint: if the server's key was changed on purpose, compare `tandem rp-api pin \
                 --cert DATA_DIR/tls/server.crt` on the server with --pin-sha256"
            );
        }
    })
}

async fn run_command(opts: RpApiOptions, cmd: RpApiCommand) -> anyhow::Result<()> {
    match cmd {
        RpApiCommand::Login {
            user,
            qr,
            timeout_ms,
            text,
            alg,
            level,
            callback_url,
            cert_out,
        } => {
            let user = user_ref(user.document, user.etsi);
            let target = user.clone().map_or(AuthTarget::Anonymous, AuthTarget::User);
            let rp = rp(&opts)?;
            let anchors = required_trust(&opts)?;
            let client = client(&opts)?;
            let req = DeviceLinkAuthenticationRequest {
                relying_party_uuid: rp.uuid,
                relying_party_name: rp.name,
                initial_callback_url: callback_url,
                certificate_level: Some(level.into()),
                signature_protocol: AuthSignatureProtocol::AcspV2,
                signature_protocol_parameters: AuthSignatureProtocolParameters {
                    rp_challenge: generate_rp_challenge(&mut rand_core::OsRng),
                    signature_algorithm: alg.algorithm()?,
                    signature_algorithm_parameters: alg.parameters(),
                },
                interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
                    display_text60: text,
                }]),
                request_properties: None,
                capabilities: None,
                nonce: None,
            };
            eprintln!(
                "starting a device-link authentication ({}) at {}",
                describe_user(user.as_ref()),
                client.base_url()
            );
            let resp = client.device_link_authentication(&target, &req).await?;
            let received_at = Instant::now();
            let session =
                DeviceLinkSession::for_authentication(&resp, received_at, &opts.scheme_name, &req)?
                    .with_lang(&opts.lang)?;
            eprintln!("session {}", resp.session_id);
            if req.initial_callback_url.is_some() {
                outln!(
                    "Web2App link: {}",
                    session.same_device_link(DeviceLinkType::Web2App)?
                );
                outln!(
                    "App2App link: {}",
                    session.same_device_link(DeviceLinkType::App2App)?
                );
            }
            let status = show_qr_until_complete(
                &client,
                &session,
                received_at,
                &qr,
                timeout_ms,
                "waiting for the user to scan the QR code and confirm",
            )
            .await?;
            let expected =
                AuthenticationExpectation::device_link(&req, &opts.scheme_name, &target)?;
            finish_authentication(&opts, &status, &expected, &anchors, cert_out.as_deref()).await
        }

        RpApiCommand::NotifyLogin {
            user,
            timeout_ms,
            text,
            vc_choice,
            alg,
            level,
            cert_out,
        } => {
            let Some(user) = user_ref(user.document, user.etsi) else {
                bail!("give --document or --etsi");
            };
            notification_login(
                &opts,
                &user,
                NotifyLoginArgs {
                    timeout_ms,
                    text,
                    vc_choice,
                    alg,
                    level,
                },
                cert_out.as_deref(),
            )
            .await
            .map(|_| ())
        }

        RpApiCommand::Sign {
            user,
            source,
            alg,
            qr,
            qr_out,
            timeout_ms,
            text,
            vc_choice,
            level,
            signature_out,
            cert_out,
        } => {
            let Some(user) = user_ref(user.document, user.etsi) else {
                bail!("give --document or --etsi");
            };
            let rp = rp(&opts)?;
            let anchors = required_trust(&opts)?;
            let client = client(&opts)?;
            let digest = match (source.file, source.digest) {
                (Some(f), _) => verify::hash(alg.hash, &read(&f)?).map_err(anyhow::Error::msg)?,
                (None, Some(d)) => {
                    let d = STANDARD
                        .decode(d.trim())
                        .context("--digest is not Base64")?;
                    if d.len() != alg.hash.output_len() {
                        bail!(
                            "--digest is {} bytes, {} needs {}",
                            d.len(),
                            alg.hash.as_str(),
                            alg.hash.output_len()
                        );
                    }
                    d
                }
                (None, None) => bail!("give --file or --digest"),
            };
            let params = SignSignatureProtocolParameters {
                digest: STANDARD.encode(&digest),
                signature_algorithm: alg.algorithm()?,
                signature_algorithm_parameters: alg.parameters(),
            };
            let (status, expected) = if qr {
                if vc_choice {
                    bail!("--vc-choice is for notifications only");
                }
                let req = DeviceLinkSigningRequest {
                    relying_party_uuid: rp.uuid,
                    relying_party_name: rp.name,
                    initial_callback_url: None,
                    certificate_level: Some(level.into()),
                    signature_protocol: SignSignatureProtocol::RawDigestSignature,
                    signature_protocol_parameters: params,
                    nonce: None,
                    interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
                        display_text60: text,
                    }]),
                    request_properties: None,
                    capabilities: None,
                };
                eprintln!(
                    "starting a device-link signature ({}) at {}",
                    describe_user(Some(&user)),
                    client.base_url()
                );
                let resp = client.device_link_signature(&user, &req).await?;
                let received_at = Instant::now();
                let session =
                    DeviceLinkSession::for_signature(&resp, received_at, &opts.scheme_name, &req)?
                        .with_lang(&opts.lang)?;
                let status = show_qr_until_complete(
                    &client,
                    &session,
                    received_at,
                    &qr_out,
                    timeout_ms,
                    "waiting for the user to scan the QR code and sign",
                )
                .await?;
                (status, SignatureExpectation::device_link(&req, &user)?)
            } else {
                let interaction = notification_interaction(text, vc_choice);
                let req = NotificationSigningRequest {
                    relying_party_uuid: rp.uuid,
                    relying_party_name: rp.name,
                    certificate_level: Some(level.into()),
                    signature_protocol: SignSignatureProtocol::RawDigestSignature,
                    signature_protocol_parameters: params,
                    nonce: None,
                    interactions: encode_interactions(&[interaction]),
                    request_properties: None,
                    capabilities: None,
                };
                eprintln!(
                    "starting a notification signature ({}) at {}",
                    describe_user(Some(&user)),
                    client.base_url()
                );
                let resp = client.notification_signature(&user, &req).await?;
                outln!("verification code: {}", resp.vc.value);
                let status = wait_plain(
                    &client,
                    &resp.session_id,
                    timeout_ms,
                    &format!(
                        "waiting for the user to check code {} and sign",
                        resp.vc.value
                    ),
                )
                .await?;
                (status, SignatureExpectation::notification(&req, &user)?)
            };
            check_end_result(&status, "signing")?;
            let v = verify::verify_signature(&status, &expected, &anchors, SystemTime::now())
                .map_err(|e| print_failure(&e))?;
            print_report(&v.report)?;
            revocation(&opts, &v.certificate_der, &anchors, to_stdout).await?;
            outln!("signed by: {}", v.identity);
            print_identity(&v.identity, v.document_number.as_deref(), v.level)?;
            outln!("flow: {}", v.flow_type.as_str());
            outln!("digest: {}", STANDARD.encode(&digest));
            outln!("signature: {}", STANDARD.encode(&v.signature));
            if let Some(p) = signature_out {
                std::fs::write(&p, &v.signature)
                    .with_context(|| format!("cannot write {}", p.display()))?;
                eprintln!("signature written to {}", p.display());
            }
            if let Some(p) = cert_out {
                write_cert(&p, &v.certificate_der)?;
            }
            Ok(())
        }

        RpApiCommand::SignCades(args) => sign_cades::run(&opts, args).await,
        RpApiCommand::SignPades(args) => sign_pades::run(&opts, args).await,
        RpApiCommand::Package(cmd) => package::run(&opts, cmd).await,

        RpApiCommand::Cert {
            document,
            level,
            out,
        } => {
            let rp = rp(&opts)?;
            let anchors = trust(&opts)?;
            let client = client(&opts)?;
            let level: SignCertificateLevel = level.into();
            eprintln!("asking for the signing certificate of document {document}");
            let resp = client
                .signing_certificate(
                    &document,
                    &SigningCertificateRequest {
                        relying_party_uuid: rp.uuid,
                        relying_party_name: rp.name,
                        certificate_level: Some(level),
                    },
                )
                .await?;
            let cert = match (resp.state, resp.cert) {
                (CertificateState::Ok, Some(c)) => c,
                (CertificateState::Ok, None) => bail!("state OK but no certificate"),
                (CertificateState::DocumentUnusable, _) => {
                    outln!("state: DOCUMENT_UNUSABLE");
                    bail!("the document cannot be used for signing now");
                }
            };
            let der = STANDARD
                .decode(&cert.value)
                .context("cert.value is not Base64")?;
            // The PEM may go to stdout: verification steps go to stderr here.
            if anchors.root_count() == 0 {
                eprintln!("certificate chain: not checked (no --trust / --root given)");
            } else {
                match verify::verify_certificate(
                    &cert,
                    CertificatePurpose::Signing,
                    level.into(),
                    None,
                    &anchors,
                    SystemTime::now(),
                ) {
                    Ok(v) => {
                        for s in &v.report.steps {
                            eprintln!("{s}");
                        }
                        revocation(&opts, &der, &anchors, to_stderr).await?;
                    }
                    Err(e) => {
                        for s in &e.passed.steps {
                            eprintln!("{s}");
                        }
                        eprintln!("{}: FAILED ({})", e.step, e.reason);
                        bail!("verification failed at {}: {}", e.step, e.reason);
                    }
                }
            }
            eprintln!("certificate level (reported): {}", cert.certificate_level);
            match out {
                Some(p) => write_cert(&p, &der)?,
                None => out!("{}", pem_encode("CERTIFICATE", &der)),
            }
            Ok(())
        }

        RpApiCommand::Pin { cert } => {
            let (pins, source) = match &cert {
                Some(p) => (
                    certificate_file_pins(&read(p)?).with_context(|| p.display().to_string())?,
                    p.display().to_string(),
                ),
                None => (
                    presented_certificate_pins(&client_config(&opts)?).await?,
                    format!("presented by {}", opts.api),
                ),
            };
            for (i, c) in pins.iter().enumerate() {
                let role = if i == 0 { "server" } else { "chain" };
                eprintln!("{role} certificate {}: pin-sha256 {}", c.subject, c.pin);
            }
            eprintln!("source: {source}");
            // Non-empty: both readers refuse a file or handshake without a certificate.
            if let Some(own) = pins.first() {
                outln!("{}", own.pin);
            }
            Ok(())
        }

        RpApiCommand::Status {
            session_id,
            timeout_ms,
        } => {
            let client = client(&opts)?;
            let status = client.session_status(&session_id, timeout_ms).await?;
            outln!("{}", serde_json::to_string_pretty(&status)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        opts: RpApiOptions,
        #[command(subcommand)]
        cmd: RpApiCommand,
    }

    #[test]
    fn command_line_parses() {
        let c = Cli::try_parse_from([
            "rp-api",
            "--api",
            "https://127.0.0.1:8443/v3",
            "login",
            "--rp-uuid",
            "00000000-0000-4000-8000-000000000000",
            "--trust",
            "a.pem,b.pem",
            "--link-file",
            "/tmp/link",
            "--hash",
            "sha-256",
        ])
        .unwrap();
        assert_eq!(c.opts.api, "https://127.0.0.1:8443/v3");
        assert_eq!(c.opts.trust.len(), 2);
        assert_eq!(c.opts.scheme_name, "smart-id");
        let RpApiCommand::Login { user, qr, alg, .. } = c.cmd else {
            panic!()
        };
        assert!(user.document.is_none() && user.etsi.is_none());
        assert_eq!(qr.link_file.as_deref(), Some(Path::new("/tmp/link")));
        assert_eq!(alg.hash, HashAlgorithm::Sha256);
        assert_eq!(alg.algorithm().unwrap(), SignatureAlgorithm::RsassaPss);

        // Exactly one of --document / --etsi, and one of --file / --digest.
        assert!(Cli::try_parse_from(["rp-api", "notify-login"]).is_err());
        assert!(
            Cli::try_parse_from(["rp-api", "notify-login", "--document", "a", "--etsi", "b"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["rp-api", "sign", "--document", "a"]).is_err());
        let c = Cli::try_parse_from([
            "rp-api", "sign", "--etsi", "PNOEE-1", "--digest", "AA==", "--pkcs1", "--hash",
            "SHA-384",
        ])
        .unwrap();
        let RpApiCommand::Sign { alg, .. } = c.cmd else {
            panic!()
        };
        assert_eq!(
            alg.algorithm().unwrap(),
            SignatureAlgorithm::Sha384WithRsaEncryption
        );
        assert!(alg.parameters().is_none());
        assert!(
            Cli::try_parse_from([
                "rp-api", "sign", "--etsi", "x", "--file", "f", "--hash", "MD5"
            ])
            .is_err()
        );

        // --pin-sha256: repeatable or comma-separated, before or after the subcommand;
        // anything but 32 bytes of Base64 is refused.
        let a = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let b = "E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g=";
        let pins = |args: &[&str]| -> Vec<String> {
            let c = Cli::try_parse_from(args).unwrap();
            c.opts.pin_sha256.iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            pins(&[
                "rp-api",
                "--pin-sha256",
                a,
                "--pin-sha256",
                b,
                "status",
                "x"
            ]),
            [a, b]
        );
        assert_eq!(
            pins(&["rp-api", "status", "x", "--pin-sha256", &format!("{b},{a}")]),
            [b, a]
        );
        let e = Cli::try_parse_from(["rp-api", "--pin-sha256", "AAAA", "status", "x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("decodes to 3 bytes"), "{e}");
        let c = Cli::try_parse_from(["rp-api", "pin", "--cert", "server.crt"]).unwrap();
        assert!(matches!(c.cmd, RpApiCommand::Pin { cert: Some(_) }));
    }
}
