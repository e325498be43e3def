//! `tandem rp-cert`: a relying party's software certificates for scripts, over
//! [`RpApiClient`]'s `rp_certs_*` calls (docs/MTLS.md).
//!
//! ```text
//!  login --admin PNOEE-…   notification AUTH of the administrator ──▶ <dir>/session
//!  create --label L …      RSA-2048 keys here (both cores) ──▶ <dir>/keys/<id>.key.pem
//!                          PKCS#10 (SHA-256) ──▶ one create request ──▶ ids
//!  list / cancel / redeem / revoke
//!  download ID             certificate + chain from the server, key from <dir>/keys
//!                          ──▶ .p12 (PBES2 AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC)
//! ```
//! The private keys never leave this machine. They are written unencrypted (PKCS#8 PEM,
//! mode 0600, in a 0700 directory) and kept after a download until the user deletes them.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::{X509, X509Name, X509Req};
use tandem_rp::api::rp_certs::{
    self, CertificateRequest, CreateRequest, ListRequest, NewRpCert, RedeemRequest, RpCert,
    check_label, p12_file_name,
};
use tandem_rp::client::{RpApiClient, UserRef};
use tandem_server::fs_mode::write_atomic;
use zeroize::Zeroizing;

use crate::rp_api::{self, RpApiOptions};

mod wait;

/// PBKDF2 iterations of the .p12's key and certificate encryption and of its MAC
/// (OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256).
pub const P12_ITERATIONS: i32 = 600_000;
/// Shortest .p12 password, in characters (the seed: "mindestens sechs Zeichen").
pub const MIN_PASSWORD_CHARS: usize = 6;
/// RSA key size of new certificates.
pub const KEY_BITS: u32 = 2048;

/// Options of every `rp-cert` subcommand (besides the `rp-api` ones).
#[derive(Args, Debug, Clone)]
pub struct RpCertOptions {
    /// State directory: the login session and the private keys.
    #[arg(long, global = true, default_value = "tandem-rp-certs")]
    pub dir: PathBuf,
    /// The relying party the certificates are for (default: --rp-uuid itself).
    #[arg(long, global = true, value_name = "UUID")]
    pub target_rp: Option<String>,
}

/// `tandem rp-cert …`.
#[derive(Subcommand, Debug, Clone)]
pub enum RpCertCommand {
    /// Log the administrator in: a notification authentication (confirm it on the phone);
    /// the session is kept in <dir>/session for the other commands.
    Login {
        /// The administrator's ETSI identifier, e.g. PNOEE-30303039914.
        #[arg(long)]
        admin: String,
        /// How long to wait for the confirmation, in milliseconds.
        #[arg(long, default_value_t = 120_000)]
        timeout_ms: u64,
    },
    /// Generate keys here and queue certificates (one credit each), in one request.
    Create {
        /// A label (repeatable): one certificate each.
        #[arg(long)]
        label: Vec<String>,
        /// N certificates labelled <label-prefix>1 … <label-prefix>N.
        #[arg(long, requires = "label_prefix")]
        count: Option<usize>,
        /// Prefix of the labels of --count.
        #[arg(long)]
        label_prefix: Option<String>,
        /// Wait until all are READY (polling the list) and report the times: key
        /// generation, and request sent to all ready.
        #[arg(long)]
        wait: bool,
        /// With --wait: how often to look, in milliseconds.
        #[arg(long, default_value_t = 200, requires = "wait")]
        poll_ms: u64,
    },
    /// The certificates, credits and vouchers.
    List {
        /// Print the server's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running creation; prints the voucher.
    Cancel {
        /// The certificate's id.
        id: String,
    },
    /// Redeem a voucher (one credit again).
    Redeem {
        /// The voucher code.
        code: String,
    },
    /// Revoke a certificate.
    Revoke {
        /// The certificate's id.
        id: String,
    },
    /// Write a ready certificate with its key and chain as a .p12.
    Download {
        /// The certificate's id.
        id: String,
        /// Output file (default: tandem-<label>-<serial>.p12).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The password: the first line of this file (default: the first line of stdin).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Pack a PEM key and certificate (and chain) into a .p12 as `download` does, without
    /// a server.
    Pack {
        /// The private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// The certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// CA certificates (PEM), issuing CA first. Repeatable.
        #[arg(long)]
        chain: Vec<PathBuf>,
        /// Friendly name in the .p12.
        #[arg(long)]
        label: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// The password: the first line of this file (default: the first line of stdin).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

/// Runs an `rp-cert` subcommand.
pub async fn run(api: RpApiOptions, opts: RpCertOptions, cmd: RpCertCommand) -> anyhow::Result<()> {
    match cmd {
        RpCertCommand::Login { admin, timeout_ms } => login(&api, &opts, &admin, timeout_ms).await,
        RpCertCommand::Create {
            label,
            count,
            label_prefix,
            wait,
            poll_ms,
        } => {
            let poll = wait.then(|| std::time::Duration::from_millis(poll_ms.clamp(10, 60_000)));
            create(&api, &opts, labels(label, count, label_prefix)?, poll).await
        }
        RpCertCommand::List { json } => list(&api, &opts, json).await,
        RpCertCommand::Cancel { id } => {
            let c = Ctx::new(&api, &opts)?;
            let v = c.client.rp_certs_cancel(&c.one(&id)).await.map_err(stale)?;
            println!("{}", v.voucher.code);
            eprintln!("cancelled {id}; the voucher above gives the credit back once");
            Ok(())
        }
        RpCertCommand::Redeem { code } => {
            let c = Ctx::new(&api, &opts)?;
            let r = c
                .client
                .rp_certs_redeem(&RedeemRequest {
                    relying_party_uuid: c.rp_uuid.clone(),
                    relying_party_name: c.rp_name.clone(),
                    auth_session_id: c.session.clone(),
                    target_relying_party_uuid: c.target.clone(),
                    voucher_code: code,
                })
                .await
                .map_err(stale)?;
            println!("credits: {}", r.credits);
            Ok(())
        }
        RpCertCommand::Revoke { id } => {
            let c = Ctx::new(&api, &opts)?;
            let r = c.client.rp_certs_revoke(&c.one(&id)).await.map_err(stale)?;
            println!("{} {}", r.id, state_name(&r));
            Ok(())
        }
        RpCertCommand::Download {
            id,
            out,
            password_file,
        } => download(&api, &opts, &id, out, password_file.as_deref()).await,
        RpCertCommand::Pack {
            key,
            cert,
            chain,
            label,
            out,
            password_file,
        } => {
            let password = password(password_file.as_deref())?;
            let key = PKey::private_key_from_pem(&read_secret(&key)?)
                .with_context(|| format!("{}: not a PEM private key", key.display()))?;
            let cert = X509::from_pem(&read(&cert)?)
                .with_context(|| format!("{}: not a PEM certificate", cert.display()))?;
            let mut cas = Vec::new();
            for p in &chain {
                cas.extend(
                    X509::stack_from_pem(&read(p)?)
                        .with_context(|| format!("{}: not PEM certificates", p.display()))?,
                );
            }
            let p12 = build_p12(&key, &cert, &cas, &label, &password)?;
            write_atomic(&out, &p12)?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------- .p12

/// Builds the .p12: the key and the certificate (friendly name `label`) and the CA
/// certificates, encrypted with PBES2 (AES-256-CBC, PBKDF2-HMAC-SHA256,
/// [`P12_ITERATIONS`]) and protected by a SHA-256 MAC with as many iterations. The
/// password must have at least [`MIN_PASSWORD_CHARS`] characters.
pub fn build_p12(
    key: &PKey<Private>,
    cert: &X509,
    chain: &[X509],
    label: &str,
    password: &str,
) -> anyhow::Result<Vec<u8>> {
    check_password(password)?;
    let matches = cert.public_key().is_ok_and(|p| key.public_eq(&p));
    if !matches {
        bail!("the private key does not belong to the certificate");
    }
    let mut cas = Stack::new()?;
    for c in chain {
        cas.push(c.clone())?;
    }
    // With OpenSSL 3, a cipher NID here means PBES2 with PBKDF2 and hmacWithSHA256 as PRF.
    let p12 = Pkcs12::builder()
        .name(label)
        .pkey(key)
        .cert(cert)
        .ca(cas)
        .key_algorithm(Nid::AES_256_CBC)
        .cert_algorithm(Nid::AES_256_CBC)
        .key_iter(P12_ITERATIONS as u32)
        .mac_iter(P12_ITERATIONS as u32)
        .mac_md(MessageDigest::sha256())
        .build2(password)
        .context("cannot build the .p12")?;
    Ok(p12.to_der()?)
}

/// Refuses a password shorter than [`MIN_PASSWORD_CHARS`] characters.
pub fn check_password(password: &str) -> anyhow::Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        bail!(
            "the password has {n} characters; at least {MIN_PASSWORD_CHARS} are required \
             (das Passwort muss mindestens {MIN_PASSWORD_CHARS} Zeichen lang sein)"
        );
    }
    Ok(())
}

/// The first line of a password file (without the line break).
pub fn read_password_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        String::from_utf8(read_secret(path)?.to_vec())
            .map_err(|_| anyhow::anyhow!("{}: the password is not UTF-8", path.display()))?,
    );
    Ok(first_line(&text))
}

fn first_line(text: &str) -> Zeroizing<String> {
    Zeroizing::new(
        text.lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches('\r')
            .to_owned(),
    )
}

/// The password from `--password-file` or the first line of stdin, checked.
fn password(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    let pw = match file {
        Some(p) => read_password_file(p)?,
        None => {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            first_line(&line)
        }
    };
    check_password(&pw)?;
    Ok(pw)
}

// ---------------------------------------------------------------------- state

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

fn read_secret(p: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    read(p).map(Zeroizing::new)
}

fn session_path(opts: &RpCertOptions) -> PathBuf {
    opts.dir.join("session")
}

fn keys_dir(opts: &RpCertOptions) -> PathBuf {
    opts.dir.join("keys")
}

/// Creates a directory owner-only (0700).
fn private_dir(p: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// What every call after `login` needs.
struct Ctx {
    client: RpApiClient,
    rp_uuid: String,
    rp_name: String,
    target: String,
    session: String,
}

impl Ctx {
    fn new(api: &RpApiOptions, opts: &RpCertOptions) -> anyhow::Result<Self> {
        let rp_uuid = api
            .rp_uuid
            .clone()
            .context("--rp-uuid (or TANDEM_RP_UUID) is required")?;
        let rp_name = api
            .rp_name
            .clone()
            .context("--rp-name (or TANDEM_RP_NAME) is required")?;
        let path = session_path(opts);
        let session = std::fs::read_to_string(&path)
            .map(|s| s.trim().to_owned())
            .map_err(|_| {
                anyhow::anyhow!(
                    "no login in {}: run `tandem rp-cert login --admin PNO…` first",
                    opts.dir.display()
                )
            })?;
        Ok(Self {
            client: rp_api::client(api)?,
            target: opts.target_rp.clone().unwrap_or_else(|| rp_uuid.clone()),
            rp_uuid,
            rp_name,
            session,
        })
    }

    fn one(&self, id: &str) -> CertificateRequest {
        CertificateRequest {
            relying_party_uuid: self.rp_uuid.clone(),
            relying_party_name: self.rp_name.clone(),
            auth_session_id: self.session.clone(),
            target_relying_party_uuid: self.target.clone(),
            certificate_id: id.to_owned(),
        }
    }
}

/// A refused call: says what to do when the login is too old.
fn stale(e: tandem_rp::client::Error) -> anyhow::Error {
    let hint = matches!(
        &e,
        tandem_rp::client::Error::Problem { status, .. } if matches!(status, 401 | 403)
    );
    let e = anyhow::Error::from(e);
    if hint {
        e.context(
            "refused: if the login is older than the server allows, run `tandem rp-cert \
             login` again",
        )
    } else {
        e
    }
}

// ---------------------------------------------------------------------- commands

async fn login(
    api: &RpApiOptions,
    opts: &RpCertOptions,
    admin: &str,
    timeout_ms: u64,
) -> anyhow::Result<()> {
    let session = rp_api::notification_login(
        api,
        &UserRef::Etsi(admin.to_owned()),
        rp_api::NotifyLoginArgs {
            timeout_ms,
            text: "Log in to manage the certificates".into(),
            vc_choice: false,
            alg: rp_api::AlgorithmArgs {
                hash: tandem_rp::api::types::HashAlgorithm::Sha512,
                pkcs1: false,
            },
            level: rp_api::AuthLevelArg::Qualified,
        },
        None,
    )
    .await?;
    private_dir(&opts.dir)?;
    write_atomic(&session_path(opts), format!("{session}\n").as_bytes())?;
    eprintln!(
        "logged in; session kept in {}",
        session_path(opts).display()
    );
    Ok(())
}

/// The labels of `create`, each checked.
fn labels(
    mut labels: Vec<String>,
    count: Option<usize>,
    prefix: Option<String>,
) -> anyhow::Result<Vec<String>> {
    if let Some(n) = count {
        let prefix = prefix.unwrap_or_default();
        labels.extend((1..=n).map(|i| format!("{prefix}{i}")));
    }
    if labels.is_empty() {
        bail!("give --label (repeatable) or --count with --label-prefix");
    }
    if labels.len() > rp_certs::MAX_CREATE {
        bail!("at most {} certificates at once", rp_certs::MAX_CREATE);
    }
    for l in &labels {
        check_label(l).map_err(|e| anyhow::anyhow!("label {l:?}: {e}"))?;
    }
    Ok(labels)
}

/// A new private key (PKCS#8 PEM) and its certificate request (PKCS#10 DER).
type NewKey = (Zeroizing<Vec<u8>>, Vec<u8>);

/// A new key pair and its PKCS#10 request (SHA-256; the server sets the subject).
fn new_key(label: &str) -> anyhow::Result<NewKey> {
    let key = PKey::from_rsa(Rsa::generate(KEY_BITS)?)?;
    let mut name = X509Name::builder()?;
    name.append_entry_by_nid(Nid::COMMONNAME, label)?;
    let mut req = X509Req::builder()?;
    req.set_version(0)?;
    req.set_subject_name(&name.build())?;
    req.set_pubkey(&key)?;
    req.sign(&key, MessageDigest::sha256())?;
    Ok((
        Zeroizing::new(key.private_key_to_pem_pkcs8()?),
        req.build().to_der()?,
    ))
}

/// Generates the keys on all cores, with progress on stderr.
fn generate(labels: &[String]) -> anyhow::Result<Vec<NewKey>> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(labels.len());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let mut out: Vec<Option<anyhow::Result<_>>> = (0..labels.len()).map(|_| None).collect();
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= labels.len() {
                            break mine;
                        }
                        mine.push((i, new_key(&labels[i])));
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if d.is_multiple_of(10) || d == labels.len() {
                            eprint!("\rgenerating keys: {d}/{}", labels.len());
                            let _ = std::io::stderr().flush();
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("key generation failed"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    eprintln!();
    for (i, r) in results.into_iter().flatten() {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("key generation failed"))))
        .collect()
}

async fn create(
    api: &RpApiOptions,
    opts: &RpCertOptions,
    labels: Vec<String>,
    wait: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let c = Ctx::new(api, opts)?;
    let started = std::time::Instant::now();
    let keys = generate(&labels)?;
    eprintln!(
        "generated {} keys and requests in {:.3} s",
        keys.len(),
        started.elapsed().as_secs_f64()
    );
    let dir = keys_dir(opts);
    private_dir(&dir)?;
    // Written before the request: a key must not be lost if the answer is.
    let pending: Vec<PathBuf> = keys
        .iter()
        .enumerate()
        .map(|(i, (key, _))| {
            let p = dir.join(format!("new-{}-{i}.key.pem", std::process::id()));
            write_atomic(&p, key).map(|()| p)
        })
        .collect::<anyhow::Result<_>>()?;
    let req = CreateRequest {
        relying_party_uuid: c.rp_uuid.clone(),
        relying_party_name: c.rp_name.clone(),
        auth_session_id: c.session.clone(),
        target_relying_party_uuid: c.target.clone(),
        certificates: labels
            .iter()
            .zip(&keys)
            .map(|(label, (_, csr))| NewRpCert {
                label: label.clone(),
                csr: STANDARD.encode(csr),
            })
            .collect(),
    };
    let sent = std::time::Instant::now();
    let created = match c.client.rp_certs_create(&req).await {
        Ok(c) => c,
        Err(e) => {
            for p in &pending {
                let _ = std::fs::remove_file(p);
            }
            return Err(stale(e));
        }
    };
    if created.certificates.len() != pending.len() {
        bail!(
            "the server answered {} certificates for {} requested",
            created.certificates.len(),
            pending.len()
        );
    }
    for (cert, p) in created.certificates.iter().zip(&pending) {
        uuid_like(&cert.id)?;
        let to = dir.join(format!("{}.key.pem", cert.id));
        std::fs::rename(p, &to).with_context(|| format!("cannot rename {}", p.display()))?;
        println!("{}\t{}", cert.id, cert.label);
    }
    eprintln!(
        "queued {}; credits left: {}; keys in {}",
        created.certificates.len(),
        created.credits,
        dir.display()
    );
    if let Some(poll) = wait {
        let ids: Vec<String> = created.certificates.iter().map(|c| c.id.clone()).collect();
        let ready = wait::all_ready(&c, &ids, poll).await?;
        eprintln!(
            "all {} ready {:.3} s after the request was sent",
            ids.len(),
            ready.duration_since(sent).as_secs_f64()
        );
    }
    Ok(())
}

/// An id used in a file name must be a UUID (no path tricks from a server's answer).
fn uuid_like(id: &str) -> anyhow::Result<()> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| anyhow::anyhow!("the server answered a bad certificate id"))
}

fn state_name(c: &RpCert) -> String {
    serde_json::to_value(c.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn list(api: &RpApiOptions, opts: &RpCertOptions, json: bool) -> anyhow::Result<()> {
    let c = Ctx::new(api, opts)?;
    let o = c
        .client
        .rp_certs_list(&ListRequest {
            relying_party_uuid: c.rp_uuid.clone(),
            relying_party_name: c.rp_name.clone(),
            auth_session_id: c.session.clone(),
            target_relying_party_uuid: Some(c.target.clone()),
        })
        .await
        .map_err(stale)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&o)?);
        return Ok(());
    }
    for rp in &o.relying_parties {
        println!(
            "{} ({}): {} credits, {} vouchers{}",
            rp.relying_party_name,
            rp.relying_party_uuid,
            rp.credits,
            rp.vouchers.len(),
            if rp.mtls_required {
                ", mutual TLS required"
            } else {
                ""
            }
        );
        println!(
            "{:<36}  {:<24}  {:<9}  {:<32}  EXPIRES",
            "ID", "LABEL", "STATE", "SERIAL"
        );
        for cert in &rp.certificates {
            println!(
                "{:<36}  {:<24}  {:<9}  {:<32}  {}",
                cert.id,
                cert.label,
                state_name(cert),
                cert.serial_number.as_deref().unwrap_or("-"),
                cert.not_after
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
    Ok(())
}

/// The local key of certificate `id` whose public key is `cert`'s: `keys/<id>.key.pem`, or
/// any key file of the directory that matches.
fn local_key(opts: &RpCertOptions, id: &str, cert: &X509) -> anyhow::Result<PKey<Private>> {
    let public = cert.public_key()?;
    let dir = keys_dir(opts);
    let named = dir.join(format!("{id}.key.pem"));
    let mut candidates = vec![named];
    if let Ok(entries) = std::fs::read_dir(&dir) {
        candidates.extend(entries.flatten().map(|e| e.path()));
    }
    for p in candidates {
        let Ok(pem) = read_secret(&p) else { continue };
        if let Ok(k) = PKey::private_key_from_pem(&pem)
            && k.public_eq(&public)
        {
            return Ok(k);
        }
    }
    bail!(
        "no private key for certificate {id} in {} (the key is made by `tandem rp-cert create` \
         on this machine and never leaves it)",
        dir.display()
    )
}

async fn download(
    api: &RpApiOptions,
    opts: &RpCertOptions,
    id: &str,
    out: Option<PathBuf>,
    password_file: Option<&Path>,
) -> anyhow::Result<()> {
    let password = password(password_file)?;
    let c = Ctx::new(api, opts)?;
    let issued = c
        .client
        .rp_certs_certificate(&c.one(id))
        .await
        .map_err(stale)?;
    let der = |b64: &str| -> anyhow::Result<X509> {
        let bytes = STANDARD
            .decode(b64)
            .context("the server sent a certificate that is not Base64")?;
        X509::from_der(&bytes).context("the server sent a certificate that is not DER")
    };
    let cert = der(&issued.der)?;
    let chain = issued
        .chain
        .iter()
        .map(|c| der(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = local_key(opts, id, &cert)?;
    let label = &issued.certificate.label;
    let p12 = build_p12(&key, &cert, &chain, label, &password)?;
    let out = out.unwrap_or_else(|| {
        PathBuf::from(p12_file_name(
            label,
            issued
                .certificate
                .serial_number
                .as_deref()
                .unwrap_or_default(),
        ))
    });
    write_atomic(&out, &p12)?;
    println!("{}", out.display());
    eprintln!(
        "wrote {}; the key stays in {} until you delete it",
        out.display(),
        keys_dir(opts).display()
    );
    Ok(())
}
