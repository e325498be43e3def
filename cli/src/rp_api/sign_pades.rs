//! `tandem rp-api sign-pades`: a PAdES-B-B (or, with `--tsa`, B-T) signature of a PDF
//! through a RAW_DIGEST_SIGNATURE notification session ([`tandem_rp::documents::pades`]).
//!
//! The signer and issuing CA come first as for `sign-cades`; then `<out>.part` is written
//! (the original bytes and an incremental update with an empty `/Contents`), the byte
//! ranges hashed, the signed attributes' digest signed by the RP API, the CMS (with a time
//! stamp over its signature value for `--tsa`) written into `/Contents`, and `<out>.part`
//! renamed to `--out`. With `--lt` (needs `--tsa`), the validation data of the signer's and
//! the TSA's chains ([`tandem_rp::documents::ltv`], collected before anything is written) go
//! into a document security store in one more incremental update
//! ([`tandem_rp::documents::dss`]): PAdES-B-LT. On any error no `--out` is written and
//! `<out>.part` is removed.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::Args;
use tandem_rp::api::types::SignCertificateLevel;
use tandem_rp::documents::pades::Appearance;
use tandem_rp::signing::document::{self, PadesOptions, scheme_name};

use super::AlgorithmArgs;
use super::sign_cades::{Finishing, session_options, sign_digest, signer};
use super::{RpApiOptions, SignLevelArg, UserArgs, signing_failure};

/// Arguments of `rp-api sign-pades`.
#[derive(Args, Debug, Clone)]
pub struct SignPadesArgs {
    /// The signer: its signing certificate is fetched first, since the signed attributes name
    /// it (`--etsi`: by a certificate choice on the phone).
    #[command(flatten)]
    pub user: UserArgs,
    /// The PDF to sign (not changed).
    #[arg(long)]
    pub file: PathBuf,
    /// Where the signed PDF goes (the original bytes followed by the signature's update).
    #[arg(long)]
    pub out: PathBuf,
    /// A visible signature: page (1-based), x, y, width, height in PDF points
    /// (e.g. `1,350,50,200,60`). Default: invisible.
    #[arg(long, value_name = "PAGE,X,Y,W,H")]
    pub visible: Option<String>,
    #[command(flatten)]
    pub alg: AlgorithmArgs,
    /// The issuing CA certificate (PEM or DER); default: the intermediate of --trust /
    /// --intermediate that issued the signer's certificate.
    #[arg(long)]
    pub issuer: Option<PathBuf>,
    /// An RFC 3161 time-stamp authority (e.g. a Tandem server's `<public base URL>/tsa`):
    /// the signature value is time-stamped there (PAdES-B-T). Without it: PAdES-B-B.
    #[arg(long, value_name = "URL")]
    pub tsa: Option<String>,
    /// Add the validation data (PAdES-B-LT) in a `/DSS` after the signature's revision: the
    /// certificates of the signer's and the TSA's chains, an OCSP response or CRL for each
    /// certificate below the root (from the certificates' URLs, or --ocsp-url / --crl-url /
    /// --ca-crl-url). Needs --tsa.
    #[arg(long, requires = "tsa")]
    pub lt: bool,
    /// Long-poll timeout of each session status request (ms).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// Text shown in the app.
    #[arg(long, default_value = "Sign the PDF")]
    pub text: String,
    /// Make the user pick the code among three.
    #[arg(long)]
    pub vc_choice: bool,
    /// Minimum certificate level.
    #[arg(long, value_enum, default_value = "qualified")]
    pub level: SignLevelArg,
}

/// `PAGE,X,Y,W,H`.
fn parse_visible(s: &str) -> anyhow::Result<Appearance> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let usage = || format!("--visible {s}: expected PAGE,X,Y,W,H (e.g. 1,350,50,200,60)");
    if parts.len() != 5 {
        bail!(usage());
    }
    let page: u32 = parts[0]
        .parse()
        .ok()
        .filter(|p| *p >= 1)
        .with_context(usage)?;
    let mut rect = [0f64; 4];
    for (r, p) in rect.iter_mut().zip(&parts[1..]) {
        *r = p
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .with_context(usage)?;
    }
    if rect[2] <= 0.0 || rect[3] <= 0.0 {
        bail!("{}: width and height must be positive", usage());
    }
    Ok(Appearance::Visible { page, rect })
}

/// Runs `rp-api sign-pades`.
pub(super) async fn run(opts: &RpApiOptions, args: SignPadesArgs) -> anyhow::Result<()> {
    let level: SignCertificateLevel = args.level.into();
    let options = session_options(
        &args.alg,
        level,
        args.text.clone(),
        args.vc_choice,
        args.timeout_ms,
    )?;
    let appearance = match &args.visible {
        Some(v) => parse_visible(v)?,
        None => Appearance::Invisible,
    };
    if args.out == args.file {
        bail!("--out must not be the input file: the original stays untouched");
    }
    let signer = signer(
        opts,
        &args.user,
        level,
        args.issuer.as_deref(),
        args.timeout_ms,
    )
    .await?;

    // The update and the byte ranges' digest, before anyone is asked to sign.
    let prepared = document::prepare_pades(
        &signer,
        &args.file,
        &args.out,
        &PadesOptions {
            hash: options.hash,
            scheme: options.scheme,
            signing_time: SystemTime::now(),
            appearance,
        },
    )
    .map_err(|e| signing_failure(e, "signing"))?;
    let signature = sign_digest(opts, &signer, &options, prepared.digest_to_sign()).await?;
    let finishing = Finishing::new(opts)?;
    let ext = finishing.extension(args.tsa.as_deref(), args.lt);
    let result = document::finish_pades(prepared, &signature, &ext, &mut finishing.printer()).await;
    let (out, pades_level) = finishing.result(result)?;
    outln!(
        "PAdES-{} signature ({}, {}) written to {}",
        pades_level.as_str(),
        scheme_name(options.scheme),
        args.alg.hash.as_str(),
        out.display()
    );
    Ok(())
}
