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
use tandem_rp::documents::pades::{self, Appearance, DEFAULT_CONTENTS_SIZE, PadesInput};
use tandem_rp::documents::{dss, ltv, timestamp};

use super::sign_cades::{
    Session, hash_and_scheme, revocation_options, scheme_name, sign_digest, signer,
};
use super::{AlgorithmArgs, RpApiOptions, SignLevelArg, UserArgs};

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
    let (hash, scheme) = hash_and_scheme(&args.alg)?;
    let appearance = match &args.visible {
        Some(v) => parse_visible(v)?,
        None => Appearance::Invisible,
    };
    if args.out == args.file {
        bail!("--out must not be the input file: the original stays untouched");
    }
    let level: SignCertificateLevel = args.level.into();
    let signer = signer(
        opts,
        &args.user,
        level,
        args.issuer.as_deref(),
        args.timeout_ms,
    )
    .await?;

    // The update and the byte ranges' digest, before anyone is asked to sign.
    let prepared = pades::prepare(
        &args.file,
        &args.out,
        &PadesInput {
            signer_certificate_der: &signer.certificate_der,
            issuer_certificate_der: &signer.issuer_der,
            hash,
            scheme,
            signing_time: SystemTime::now(),
            appearance,
            contents_size: DEFAULT_CONTENTS_SIZE,
        },
    )
    .with_context(|| format!("cannot sign {}", args.file.display()))?;

    let session = Session {
        alg: &args.alg,
        level,
        text: args.text,
        vc_choice: args.vc_choice,
        timeout_ms: args.timeout_ms,
    };
    let signature = sign_digest(opts, &signer, session, prepared.digest_to_sign()).await?;
    let mut cms = prepared.signed_cms(&signature)?;
    let pades_level = match &args.tsa {
        None => "B-B",
        Some(url) => {
            eprintln!("asking {url} for a signature time stamp");
            let (stamped, token) = timestamp::stamp_cades(url, hash, &cms)
                .await
                .context("no time stamp, no signed PDF written")?;
            cms = stamped;
            outln!("time stamp: {}", token.gen_time_utc());
            "B-T"
        }
    };
    let data = if args.lt {
        let anchors = super::required_trust(opts)?;
        eprintln!("collecting the validation data (B-LT)");
        let data = ltv::validation_data(&cms, &anchors, &revocation_options(opts))
            .await
            .context("no validation data, no signed PDF written")?;
        outln!(
            "validation data: {} certificates, {} OCSP responses, {} CRLs",
            data.certificates.len(),
            data.ocsp_responses.len(),
            data.crls.len()
        );
        Some(data)
    } else {
        None
    };
    let out = prepared.finish(&cms)?;
    let pades_level = match data {
        None => pades_level,
        Some(data) => {
            if let Err(e) = dss::add_dss(&out, &out, &data) {
                let _ = std::fs::remove_file(&out);
                return Err(anyhow::Error::new(e).context("no /DSS, no signed PDF written"));
            }
            "B-LT"
        }
    };
    outln!(
        "PAdES-{pades_level} signature ({}, {}) written to {}",
        scheme_name(scheme),
        args.alg.hash.as_str(),
        out.display()
    );
    Ok(())
}
