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

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use openssl::x509::X509;
use tandem_rp::api::types::{
    CertificateChoiceRequest, CertificateState, FlowType, NotificationSigningRequest,
    SignCertificateLevel, SignSignatureProtocol, SignSignatureProtocolParameters,
    SigningCertificateRequest, encode_interactions,
};
use tandem_rp::client::revocation::RevocationOptions;
use tandem_rp::client::verify::{self, CertificatePurpose, ExpectedIdentity};
use tandem_rp::client::{RpApiClient, TrustAnchors};
use tandem_rp::client::{SignatureExpectation, UserRef};
use tandem_rp::documents::cades::{self, CadesInput, CadesScheme};
use tandem_rp::documents::{DocumentHash, digest_reader};
use tandem_rp::documents::{ltv, timestamp};
use tandem_server::fs_mode::write_atomic;

use super::{
    AlgorithmArgs, RpApiOptions, SignLevelArg, UserArgs, check_end_result, client,
    notification_interaction, print_failure, print_report, read, required_trust, revocation, rp,
    to_stdout, wait_plain,
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

/// The issuing CA certificate (DER) of `signer`.
fn issuer_der(opts: &RpApiOptions, given: Option<&Path>, signer: &X509) -> anyhow::Result<Vec<u8>> {
    let issuer_name = signer.issuer_name().to_der()?;
    let files = match given {
        Some(p) => vec![p.to_path_buf()],
        None => issuer_candidates(opts),
    };
    for f in &files {
        for c in certificates(&read(f)?, f)? {
            if c.subject_name().to_der()? == issuer_name {
                return Ok(c.to_der()?);
            }
        }
    }
    match given {
        Some(p) => bail!(
            "{} is not the certificate of the CA that issued the signer's certificate",
            p.display()
        ),
        None => bail!(
            "no issuing CA certificate of the signer's certificate in --trust / \
             --intermediate: give --issuer FILE"
        ),
    }
}

/// The signing certificate (DER) of `document`, from the certificate endpoint, verified.
async fn certificate_of_document(
    client: &RpApiClient,
    (relying_party_uuid, relying_party_name): (String, String),
    document: &str,
    level: SignCertificateLevel,
    anchors: &TrustAnchors,
) -> anyhow::Result<Vec<u8>> {
    eprintln!("asking for the signing certificate of document {document}");
    let resp = client
        .signing_certificate(
            document,
            &SigningCertificateRequest {
                relying_party_uuid,
                relying_party_name,
                certificate_level: Some(level),
            },
        )
        .await?;
    let cert = match (resp.state, resp.cert) {
        (CertificateState::Ok, Some(c)) => c,
        (CertificateState::Ok, None) => bail!("state OK but no certificate"),
        (CertificateState::DocumentUnusable, _) => {
            bail!("the document cannot be used for signing now (DOCUMENT_UNUSABLE)")
        }
    };
    let der = STANDARD
        .decode(&cert.value)
        .context("cert.value is not Base64")?;
    if let Err(e) = verify::verify_certificate(
        &cert,
        CertificatePurpose::Signing,
        level.into(),
        None,
        anchors,
        SystemTime::now(),
    ) {
        return Err(print_failure(&e).context("the signer's certificate"));
    }
    Ok(der)
}

/// The document number and signing certificate (DER) the person `etsi` chooses in a
/// notification certificate choice session, verified.
async fn choose_certificate(
    client: &RpApiClient,
    (relying_party_uuid, relying_party_name): (String, String),
    etsi: &str,
    level: SignCertificateLevel,
    anchors: &TrustAnchors,
    timeout_ms: u64,
) -> anyhow::Result<(String, Vec<u8>)> {
    eprintln!("starting a notification certificate choice ({etsi})");
    let req = CertificateChoiceRequest {
        relying_party_uuid,
        relying_party_name,
        initial_callback_url: None,
        certificate_level: Some(level),
        nonce: None,
        request_properties: None,
        capabilities: None,
    };
    let resp = client.notification_certificate_choice(etsi, &req).await?;
    let status = wait_plain(
        client,
        &resp.session_id,
        timeout_ms,
        "waiting for the user to choose the signing certificate",
    )
    .await?;
    check_end_result(&status, "certificate choice")?;
    let v = verify::verify_certificate_choice(
        &status,
        level,
        &[FlowType::Notification],
        Some(&ExpectedIdentity::Etsi(etsi.to_owned())),
        anchors,
        SystemTime::now(),
    )
    .map_err(|e| print_failure(&e))?;
    print_report(&v.report)?;
    let Some(document) = status.result.and_then(|r| r.document_number) else {
        bail!("the certificate choice gave no documentNumber");
    };
    outln!("chosen: document {document}");
    Ok((document, v.der))
}

/// The signer (step 1) and the issuing CA (step 2), as the document signature commands
/// need them before the signing session.
pub(super) struct Signer {
    /// The document number to sign with.
    pub document: String,
    /// The signer's signing certificate (DER), verified.
    pub certificate_der: Vec<u8>,
    /// The issuing CA certificate (DER).
    pub issuer_der: Vec<u8>,
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
    let rp = rp(opts)?;
    let anchors = required_trust(opts)?;
    let client = client(opts)?;
    let rp_ids = (rp.uuid, rp.name);
    let (document, certificate_der) = match (&user.document, &user.etsi) {
        (Some(document), _) => {
            let der = certificate_of_document(&client, rp_ids, document, level, &anchors).await?;
            (document.clone(), der)
        }
        (None, Some(etsi)) => {
            choose_certificate(&client, rp_ids, etsi, level, &anchors, timeout_ms).await?
        }
        (None, None) => bail!("give --document or --etsi"),
    };
    let cert = X509::from_der(&certificate_der).context("the signer's certificate")?;
    let issuer_der = issuer_der(opts, issuer, &cert)?;
    Ok(Signer {
        document,
        certificate_der,
        issuer_der,
    })
}

/// What the signing session shows and how it runs.
pub(super) struct Session<'a> {
    /// The algorithm options (hash, PSS or PKCS#1 v1.5).
    pub alg: &'a AlgorithmArgs,
    /// The certificate level.
    pub level: SignCertificateLevel,
    /// The text shown in the app.
    pub text: String,
    /// Make the user pick the code among three.
    pub vc_choice: bool,
    /// Long-poll timeout (ms).
    pub timeout_ms: u64,
}

/// Step 4: a notification RAW_DIGEST_SIGNATURE of `digest` by `signer`, verified like
/// `rp-api sign`'s, from the certificate of step 1. Returns the signature.
pub(super) async fn sign_digest(
    opts: &RpApiOptions,
    signer: &Signer,
    session: Session<'_>,
    digest: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let rp = rp(opts)?;
    let anchors = required_trust(opts)?;
    let client = client(opts)?;
    let user = UserRef::Document(signer.document.clone());
    let req = NotificationSigningRequest {
        relying_party_uuid: rp.uuid,
        relying_party_name: rp.name,
        certificate_level: Some(session.level),
        signature_protocol: SignSignatureProtocol::RawDigestSignature,
        signature_protocol_parameters: SignSignatureProtocolParameters {
            digest: STANDARD.encode(digest),
            signature_algorithm: session.alg.algorithm()?,
            signature_algorithm_parameters: session.alg.parameters(),
        },
        nonce: None,
        interactions: encode_interactions(&[notification_interaction(
            session.text,
            session.vc_choice,
        )]),
        request_properties: None,
        capabilities: None,
    };
    eprintln!(
        "starting a notification signature (document {}) at {}",
        signer.document,
        client.base_url()
    );
    let resp = client.notification_signature(&user, &req).await?;
    outln!("verification code: {}", resp.vc.value);
    let status = wait_plain(
        &client,
        &resp.session_id,
        session.timeout_ms,
        &format!(
            "waiting for the user to check code {} and sign",
            resp.vc.value
        ),
    )
    .await?;
    check_end_result(&status, "signing")?;
    let expected = SignatureExpectation::notification(&req, &user)?;
    let v = verify::verify_signature(&status, &expected, &anchors, SystemTime::now())
        .map_err(|e| print_failure(&e))?;
    print_report(&v.report)?;
    revocation(opts, &v.certificate_der, &anchors, to_stdout).await?;
    if v.certificate_der != signer.certificate_der {
        bail!("the signature was made with another certificate than the one asked for first");
    }
    outln!("signed by: {}", v.identity);
    Ok(v.signature)
}

/// The document hash and RSA scheme of the algorithm options.
pub(super) fn hash_and_scheme(alg: &AlgorithmArgs) -> anyhow::Result<(DocumentHash, CadesScheme)> {
    let Some(hash) = DocumentHash::from_api(alg.hash) else {
        bail!(
            "CAdES signatures here use SHA-256, SHA-384 or SHA-512, not {}",
            alg.hash.as_str()
        );
    };
    let scheme = if alg.pkcs1 {
        CadesScheme::Pkcs1v15
    } else {
        CadesScheme::RsassaPss
    };
    Ok((hash, scheme))
}

/// "RSASSA-PSS" or "PKCS#1 v1.5".
pub(super) fn scheme_name(scheme: CadesScheme) -> &'static str {
    match scheme {
        CadesScheme::RsassaPss => "RSASSA-PSS",
        CadesScheme::Pkcs1v15 => "PKCS#1 v1.5",
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
    session: Session<'_>,
    signing_time: SystemTime,
    tsa: Option<&str>,
    lt: bool,
) -> anyhow::Result<(Vec<u8>, &'static str)> {
    let (hash, scheme) = hash_and_scheme(session.alg)?;
    let f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let document_digest =
        digest_reader(hash, f).with_context(|| format!("cannot read {}", file.display()))?;
    let prepared = cades::prepare(&CadesInput {
        document_digest: &document_digest,
        signer_certificate_der: &signer.certificate_der,
        issuer_certificate_der: &signer.issuer_der,
        hash,
        scheme,
        signing_time,
    })?;
    let signature = sign_digest(opts, signer, session, prepared.digest_to_sign()).await?;
    let p7s = prepared.finish(&signature)?;
    match tsa {
        None if lt => bail!("B-LT needs a time stamp: give --tsa"),
        None => Ok((p7s, "B-B")),
        Some(url) => {
            eprintln!("asking {url} for a signature time stamp");
            let (stamped, token) = timestamp::stamp_cades(url, hash, &p7s)
                .await
                .context("no time stamp, no signature written")?;
            outln!("time stamp: {}", token.gen_time_utc());
            if !lt {
                return Ok((stamped, "B-T"));
            }
            Ok((long_term(opts, &stamped).await?, "B-LT"))
        }
    }
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

/// CAdES-B-T to B-LT: the signer's and the TSA's validation data embedded.
async fn long_term(opts: &RpApiOptions, p7s: &[u8]) -> anyhow::Result<Vec<u8>> {
    let anchors = required_trust(opts)?;
    eprintln!("collecting the validation data (B-LT)");
    let data = ltv::validation_data(p7s, &anchors, &revocation_options(opts))
        .await
        .context("no validation data, no signature written")?;
    outln!(
        "validation data: {} certificates, {} OCSP responses, {} CRLs",
        data.certificates.len(),
        data.ocsp_responses.len(),
        data.crls.len()
    );
    Ok(ltv::add_to_cades(p7s, &data)?)
}

/// Runs `rp-api sign-cades`.
pub(super) async fn run(opts: &RpApiOptions, args: SignCadesArgs) -> anyhow::Result<()> {
    let (_, scheme) = hash_and_scheme(&args.alg)?;
    let level: SignCertificateLevel = args.level.into();
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
    let session = Session {
        alg: &args.alg,
        level,
        text: args.text,
        vc_choice: args.vc_choice,
        timeout_ms: args.timeout_ms,
    };
    let (p7s, level) = sign_file(
        opts,
        &signer,
        &args.file,
        session,
        signing_time,
        args.tsa.as_deref(),
        args.lt,
    )
    .await?;
    write_atomic(&args.out, &p7s)?;
    outln!(
        "CAdES-{level} signature ({}, {}) written to {}",
        scheme_name(scheme),
        args.alg.hash.as_str(),
        args.out.display()
    );
    Ok(())
}
