//! `tandem rp-api sign-cades`: a detached CAdES-B-B signature (`.p7s`) of a file through a
//! RAW_DIGEST_SIGNATURE notification session ([`tandem_rp::documents::cades`]).
//!
//! 1. The signer's signing certificate, checked against the trust anchors: it goes into the
//!    signed attributes. For `--document` the certificate endpoint answers at once
//!    (`/v3/signature/certificate/{documentNumber}`); for `--etsi` the person chooses it in
//!    a notification certificate choice session, which also gives the document number.
//! 2. The issuing CA certificate: `--issuer`, else the intermediate of the trust options
//!    whose subject is the signer certificate's issuer (a server data directory's
//!    `pki/issuing.pem`).
//! 3. The file's digest (read in chunks), the signed attributes and their digest.
//! 4. A notification signature of that digest: the phone shows the verification code as
//!    for any signature; the result is verified like `rp-api sign`'s, and must come from the
//!    certificate of step 1.
//! 5. The SignedData; with `--tsa`, a time stamp over its signature value added as the
//!    unsigned attribute id-aa-signatureTimeStampToken (B-T). With `--lt` (needs `--tsa`), the
//!    validation data of the signer's and the TSA's chains embedded (B-LT,
//!    [`tandem_rp::documents::ltv`]): the certificates, the OCSP responses (`--ocsp-url`
//!    replaces the end entities' responder) and the CA certificates' CRLs (`--ca-crl-url`).
//!    Written to `--out` only when everything succeeded.
//!
//! The steps are [`tandem_rp::signing`]'s; this module adds the options and the output.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::Args;
use openssl::x509::X509;
use tandem_rp::api::types::SignCertificateLevel;
use tandem_rp::client::TrustAnchors;
use tandem_rp::client::revocation::RevocationOptions;
use tandem_rp::signing::document::{self, Extension, Step, hash_and_scheme, scheme_name};
use tandem_rp::signing::session::{self, SessionOptions};
use tandem_rp::signing::signer::{self as signing_signer, Signer};
use tandem_rp::signing::{RelyingParty, SigningError};
use tandem_server::fs_mode::write_atomic;

use super::{AlgorithmArgs, announce_wait};
use super::{
    RpApiOptions, SignLevelArg, UserArgs, client, print_failure, print_report, read,
    required_trust, revocation, rp, signing_failure, to_stdout, wait_progress,
};

/// Arguments of `rp-api sign-cades`.
#[derive(Args, Debug, Clone)]
pub struct SignCadesArgs {
    /// The signer: its signing certificate is fetched first, since the signed attributes name
    /// it (`--etsi`: by a certificate choice on the phone).
    #[command(flatten)]
    pub user: UserArgs,
    /// The file to sign (hashed in chunks; not embedded: the signature is detached).
    #[arg(long)]
    pub file: PathBuf,
    #[command(flatten)]
    pub alg: AlgorithmArgs,
    /// The issuing CA certificate (PEM or DER); default: the intermediate of --trust /
    /// --intermediate that issued the signer's certificate.
    #[arg(long)]
    pub issuer: Option<PathBuf>,
    /// Long-poll timeout of each session status request (ms).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// Text shown in the app.
    #[arg(long, default_value = "Sign the document")]
    pub text: String,
    /// Make the user pick the code among three.
    #[arg(long)]
    pub vc_choice: bool,
    /// Minimum certificate level.
    #[arg(long, value_enum, default_value = "qualified")]
    pub level: SignLevelArg,
    /// Where the detached signature goes (DER, usually FILE.p7s).
    #[arg(long)]
    pub out: PathBuf,
    /// An RFC 3161 time-stamp authority (e.g. a Tandem server's `<public base URL>/tsa`):
    /// the signature value is time-stamped there, making the signature CAdES-B-T. Without
    /// it: CAdES-B-B.
    #[arg(long, value_name = "URL")]
    pub tsa: Option<String>,
    /// Embed the validation data (CAdES-B-LT): the certificates of the signer's and the
    /// TSA's chains, an OCSP response or CRL for each certificate below the root (from the
    /// certificates' URLs, or --ocsp-url / --crl-url / --ca-crl-url). Needs --tsa.
    #[arg(long, requires = "tsa")]
    pub lt: bool,
    /// The signing time claimed in the signature (`YYYY-MM-DDTHH:MM:SSZ`); default: now.
    /// A claim only: verifiers trust a time-stamp, not this.
    #[arg(long)]
    pub signing_time: Option<tandem_rp::report::UtcTime>,
}

/// Certificates in `bytes`: every one of a PEM file, or one DER certificate.
fn certificates(bytes: &[u8], what: &Path) -> anyhow::Result<Vec<X509>> {
    let parsed = if bytes.starts_with(b"-----") || bytes.starts_with(b"\n-----") {
        X509::stack_from_pem(bytes)
    } else {
        X509::from_der(bytes).map(|c| vec![c])
    };
    match parsed {
        Ok(c) if !c.is_empty() => Ok(c),
        _ => bail!("{}: not a PEM or DER certificate", what.display()),
    }
}

/// The files that may hold the issuing CA certificate: the trust options' intermediates.
fn issuer_candidates(opts: &RpApiOptions) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in &opts.trust {
        if p.is_dir() {
            files.push(p.join("pki").join("issuing.pem"));
            files.push(p.join("issuing.pem"));
        } else {
            files.push(p.clone());
        }
    }
    files.extend(opts.intermediate.iter().cloned());
    files.into_iter().filter(|f| f.is_file()).collect()
}

/// The signer of `document` with its verified certificate: the issuing CA certificate from
/// `given` (`--issuer`), else from the trust options' intermediates.
fn signer_with_issuer(
    opts: &RpApiOptions,
    given: Option<&Path>,
    document: String,
    certificate_der: Vec<u8>,
) -> anyhow::Result<Signer> {
    let files = match given {
        Some(p) => vec![p.to_path_buf()],
        None => issuer_candidates(opts),
    };
    let mut candidates = Vec::new();
    for f in &files {
        candidates.extend(certificates(&read(f)?, f)?);
    }
    match Signer::new(document, certificate_der, &candidates) {
        Ok(s) => Ok(s),
        Err(SigningError::IssuerNotFound) => match given {
            Some(p) => bail!(
                "{} is not the certificate of the CA that issued the signer's certificate",
                p.display()
            ),
            None => bail!(
                "no issuing CA certificate of the signer's certificate in --trust / \
                 --intermediate: give --issuer FILE"
            ),
        },
        Err(e) => Err(signing_failure(e, "signing")),
    }
}

/// Steps 1 and 2: the signer's certificate, checked before anyone is asked to sign, and its
/// issuing CA certificate.
pub(super) async fn signer(
    opts: &RpApiOptions,
    user: &UserArgs,
    level: SignCertificateLevel,
    issuer: Option<&Path>,
    timeout_ms: u64,
) -> anyhow::Result<Signer> {
    let rp = relying_party(opts)?;
    let anchors = required_trust(opts)?;
    let client = client(opts)?;
    let (document, certificate_der) = match (&user.document, &user.etsi) {
        (Some(document), _) => {
            eprintln!("asking for the signing certificate of document {document}");
            let der =
                signing_signer::certificate_of_document(&client, &rp, document, level, &anchors)
                    .await
                    .map_err(|e| match e {
                        SigningError::Verification(v) => {
                            print_failure(&v).context("the signer's certificate")
                        }
                        e => signing_failure(e, "signing certificate"),
                    })?;
            (document.clone(), der)
        }
        (None, Some(etsi)) => {
            eprintln!("starting a notification certificate choice ({etsi})");
            let choice = signing_signer::start_certificate_choice(&client, &rp, etsi, level)
                .await
                .map_err(|e| signing_failure(e, "certificate choice"))?;
            let waiting = "waiting for the user to choose the signing certificate";
            announce_wait(waiting, &choice.session_id);
            let chosen = choice
                .finish(&client, &anchors, timeout_ms, wait_progress(waiting))
                .await
                .map_err(|e| signing_failure(e, "certificate choice"))?;
            print_report(&chosen.certificate.report)?;
            outln!("chosen: document {}", chosen.document);
            (chosen.document, chosen.certificate.der)
        }
        (None, None) => bail!("give --document or --etsi"),
    };
    signer_with_issuer(opts, issuer, document, certificate_der)
}

/// The relying party of `--rp-uuid` and `--rp-name`.
pub(super) fn relying_party(opts: &RpApiOptions) -> anyhow::Result<RelyingParty> {
    let rp = rp(opts)?;
    Ok(RelyingParty {
        uuid: rp.uuid,
        name: rp.name,
    })
}

/// The session options of the algorithm options and the texts.
pub(super) fn session_options(
    alg: &AlgorithmArgs,
    level: SignCertificateLevel,
    text: String,
    vc_choice: bool,
    timeout_ms: u64,
) -> anyhow::Result<SessionOptions> {
    let (hash, scheme) = hash_and_scheme(alg.hash, alg.pkcs1)?;
    Ok(SessionOptions {
        level,
        hash,
        scheme,
        text,
        vc_choice,
        timeout_ms,
    })
}

/// Step 4: a notification RAW_DIGEST_SIGNATURE of `digest` by `signer`, verified like
/// `rp-api sign`'s, from the certificate of step 1. Returns the signature.
pub(super) async fn sign_digest(
    opts: &RpApiOptions,
    signer: &Signer,
    options: &SessionOptions,
    digest: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let rp = relying_party(opts)?;
    let anchors = required_trust(opts)?;
    let client = client(opts)?;
    eprintln!(
        "starting a notification signature (document {}) at {}",
        signer.document,
        client.base_url()
    );
    let started = session::start(&client, &rp, signer, options, digest)
        .await
        .map_err(|e| signing_failure(e, "signing"))?;
    outln!("verification code: {}", started.verification_code);
    let waiting = format!(
        "waiting for the user to check code {} and sign",
        started.verification_code
    );
    announce_wait(&waiting, &started.session_id);
    let v = started
        .finish(&client, &anchors, wait_progress(&waiting))
        .await
        .map_err(|e| signing_failure(e, "signing"))?;
    print_report(&v.report)?;
    revocation(opts, &v.certificate_der, &anchors, to_stdout).await?;
    outln!("signed by: {}", v.identity);
    Ok(v.signature)
}

/// Prints a step after the signature (time stamp, validation data).
fn print_step(step: Step<'_>) -> anyhow::Result<()> {
    match step {
        Step::AskingTimeStamp(url) => eprintln!("asking {url} for a signature time stamp"),
        Step::TimeStamped(token) => outln!("time stamp: {}", token.gen_time_utc()),
        Step::CollectingValidationData => eprintln!("collecting the validation data (B-LT)"),
        Step::ValidationData(data) => outln!(
            "validation data: {} certificates, {} OCSP responses, {} CRLs",
            data.certificates.len(),
            data.ocsp_responses.len(),
            data.crls.len()
        ),
    }
    Ok(())
}

/// What [`document::finish_cades`] and [`document::finish_pades`] need from the options,
/// and the first failure to print a step (a closed standard output).
pub(super) struct Finishing {
    anchors: TrustAnchors,
    revocation: RevocationOptions,
    closed: Mutex<Option<anyhow::Error>>,
}

impl Finishing {
    /// The trust anchors and the revocation options of `opts`.
    pub(super) fn new(opts: &RpApiOptions) -> anyhow::Result<Self> {
        Ok(Finishing {
            anchors: required_trust(opts)?,
            revocation: revocation_options(opts),
            closed: Mutex::new(None),
        })
    }

    /// The extension of `--tsa` and `--lt`.
    pub(super) fn extension<'a>(&'a self, tsa: Option<&'a str>, lt: bool) -> Extension<'a> {
        Extension {
            tsa,
            long_term: lt.then_some((&self.anchors, &self.revocation)),
        }
    }

    /// Prints each step; keeps the first failure.
    pub(super) fn printer(&self) -> impl FnMut(Step<'_>) + Send + '_ {
        move |step| {
            if let Ok(mut closed) = self.closed.lock()
                && closed.is_none()
                && let Err(e) = print_step(step)
            {
                *closed = Some(e);
            }
        }
    }

    /// The finish's result, or the failure to print.
    pub(super) fn result<T>(self, r: Result<T, SigningError>) -> anyhow::Result<T> {
        if let Ok(Some(e)) = self.closed.into_inner() {
            return Err(e);
        }
        r.map_err(|e| signing_failure(e, "signing"))
    }
}

/// Steps 3 to 5 for one file: its digest (read in chunks), the signed attributes claiming
/// `signing_time`, their signature by `signer` through the RP API, the SignedData, and with
/// `tsa` a signature time-stamp, and with `lt` the validation data. Returns the `.p7s` (DER)
/// and its level ("B-B", "B-T" or "B-LT").
pub(super) async fn sign_file(
    opts: &RpApiOptions,
    signer: &Signer,
    file: &Path,
    options: &SessionOptions,
    signing_time: SystemTime,
    tsa: Option<&str>,
    lt: bool,
) -> anyhow::Result<(Vec<u8>, &'static str)> {
    let cannot_read = || format!("cannot read {}", file.display());
    let f = std::fs::File::open(file).with_context(cannot_read)?;
    let signing = document::prepare_cades(signer, f, options.hash, options.scheme, signing_time)
        .map_err(|e| match e {
            SigningError::Read(io) => anyhow::Error::new(io).context(cannot_read()),
            e => signing_failure(e, "signing"),
        })?;
    let signature = sign_digest(opts, signer, options, signing.digest_to_sign()).await?;
    let finishing = Finishing::new(opts)?;
    let ext = finishing.extension(tsa, lt);
    let result = document::finish_cades(signing, &signature, &ext, &mut finishing.printer()).await;
    let (p7s, level) = finishing.result(result)?;
    Ok((p7s, level.as_str()))
}

/// The revocation options of `--ocsp-url`, `--crl-url` and `--ca-crl-url`.
pub(super) fn revocation_options(opts: &RpApiOptions) -> RevocationOptions {
    RevocationOptions {
        ocsp_url: opts.ocsp_url.clone(),
        crl_url: opts.crl_url.clone(),
        ca_crl_url: opts.ca_crl_url.clone(),
        ..Default::default()
    }
}

/// Runs `rp-api sign-cades`.
pub(super) async fn run(opts: &RpApiOptions, args: SignCadesArgs) -> anyhow::Result<()> {
    let level: SignCertificateLevel = args.level.into();
    let options = session_options(&args.alg, level, args.text, args.vc_choice, args.timeout_ms)?;
    let signer = signer(
        opts,
        &args.user,
        level,
        args.issuer.as_deref(),
        args.timeout_ms,
    )
    .await?;

    // 3.–5. The digest, the signed attributes, their signature, the SignedData.
    let signing_time = args
        .signing_time
        .map(|t| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t.unix_secs()))
        .unwrap_or_else(SystemTime::now);
    let (p7s, level) = sign_file(
        opts,
        &signer,
        &args.file,
        &options,
        signing_time,
        args.tsa.as_deref(),
        args.lt,
    )
    .await?;
    write_atomic(&args.out, &p7s)?;
    outln!(
        "CAdES-{level} signature ({}, {}) written to {}",
        scheme_name(options.scheme),
        args.alg.hash.as_str(),
        args.out.display()
    );
    Ok(())
}
