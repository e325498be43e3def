//! `tandem rp-api package create`: a signed package (ASiC-E) with a proof of origin.
//!
//! 1. An AUTH session of the sender (notification, verified as `rp-api notify-login`).
//! 2. Each document signed with CAdES-B-B, or B-T with `--tsa`, B-LT with `--tsa --lt` (as
//!    `rp-api sign-cades`: one notification signature per document).
//! 3. The proof of origin for that AUTH session with the documents' SHA-256 digests
//!    (`POST /tandem/v1/proof-of-origin`), verified against the trust anchors.
//! 4. The package written with [`asic::PackageWriter`], the proof as
//!    `META-INF/proof-of-origin.p7s`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use tandem_rp::client::UserRef;
use tandem_rp::documents::asic::{self, PackageWriter, Role};
use tandem_rp::documents::origin::{
    self, DigestAlgorithm, DocumentRole, Party, ProofOfOriginRequest, StatementDocument,
};
use tandem_rp::documents::{DocumentHash, digest_reader};

use super::sign_cades::{session_options, sign_file, signer};
use super::{
    AlgorithmArgs, AuthLevelArg, NotifyLoginArgs, RpApiOptions, SignLevelArg, UserArgs, client,
    notification_login, required_trust, rp,
};

/// `tandem rp-api package ...`
#[derive(Subcommand, Debug)]
pub enum PackageCommand {
    /// Create a signed package: authenticate the sender, sign each document (CAdES), get
    /// the proof of origin, write the ASiC-E.
    Create(CreateArgs),
}

/// Arguments of `rp-api package create`.
#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// The sender (authenticates, then signs every document).
    #[command(flatten)]
    pub user: UserArgs,
    /// The recipient, as `NAME:IDENTIFIER` (split at the last colon).
    #[arg(long, value_name = "NAME:IDENTIFIER")]
    pub to: String,
    /// The main document.
    #[arg(long)]
    pub main: PathBuf,
    /// An attachment. Repeatable.
    #[arg(long)]
    pub attach: Vec<PathBuf>,
    /// The sender's reference.
    #[arg(long)]
    pub sender_ref: Option<String>,
    /// The recipient's reference.
    #[arg(long)]
    pub recipient_ref: Option<String>,
    /// The message id (default: the server makes a UUID).
    #[arg(long)]
    pub message_id: Option<String>,
    /// Hash and scheme of the CAdES signatures (SHA-256, SHA-384 or SHA-512).
    #[command(flatten)]
    pub alg: AlgorithmArgs,
    /// The issuing CA certificate (PEM or DER); default: from --trust / --intermediate.
    #[arg(long)]
    pub issuer: Option<PathBuf>,
    /// Minimum certificate level of the signatures.
    #[arg(long, value_enum, default_value = "qualified")]
    pub level: SignLevelArg,
    /// Long-poll timeout of each session status request (ms).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// An RFC 3161 time-stamp authority (e.g. a Tandem server's `<public base URL>/tsa`):
    /// each document's signature is time-stamped there (CAdES-B-T); without it, CAdES-B-B.
    #[arg(long, value_name = "URL")]
    pub tsa: Option<String>,
    /// Embed each signature's validation data (CAdES-B-LT, as `rp-api sign-cades --lt`).
    /// Needs --tsa.
    #[arg(long, requires = "tsa")]
    pub lt: bool,
    /// Where the package goes (`.asice`).
    #[arg(long)]
    pub out: PathBuf,
}

/// `NAME:IDENTIFIER`, split at the last colon.
fn recipient(to: &str) -> anyhow::Result<Party> {
    let Some((name, identifier)) = to.rsplit_once(':') else {
        bail!("--to must be NAME:IDENTIFIER");
    };
    Ok(Party {
        name: name.trim().to_owned(),
        identifier: identifier.trim().to_owned(),
    })
}

/// The entry name of a file: its file name.
fn entry_name(p: &Path) -> anyhow::Result<String> {
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: no UTF-8 file name", p.display()))?;
    asic::check_name(name).with_context(|| p.display().to_string())?;
    Ok(name.to_owned())
}

/// A media type by file extension (what the manifest records; not checked by anyone).
fn media_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("xml") => "application/xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Runs `rp-api package ...`.
pub(super) async fn run(opts: &RpApiOptions, cmd: PackageCommand) -> anyhow::Result<()> {
    match cmd {
        PackageCommand::Create(args) => create(opts, args).await,
    }
}

async fn create(opts: &RpApiOptions, args: CreateArgs) -> anyhow::Result<()> {
    let to = recipient(&args.to)?;
    let mut files = vec![(args.main.clone(), Role::Main, DocumentRole::MainDocument)];
    for a in &args.attach {
        files.push((a.clone(), Role::Attachment, DocumentRole::Attachment));
    }
    let mut names = Vec::new();
    let mut documents = Vec::new();
    for (path, _, role) in &files {
        let name = entry_name(path)?;
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let digest = digest_reader(DocumentHash::Sha256, f)
            .with_context(|| format!("cannot read {}", path.display()))?;
        documents.push(StatementDocument {
            name: name.clone(),
            role: *role,
            digest_algorithm: DigestAlgorithm::Sha256,
            digest: STANDARD.encode(digest),
        });
        names.push(name);
    }
    let rp = rp(opts)?;
    let draft = ProofOfOriginRequest {
        relying_party_uuid: rp.uuid.clone(),
        relying_party_name: rp.name.clone(),
        // Replaced by the AUTH session's id below; a valid form for the check now.
        auth_session_id: uuid::Uuid::nil().to_string(),
        recipient: to,
        sender_reference: args.sender_ref.clone(),
        recipient_reference: args.recipient_ref.clone(),
        message_id: args.message_id.clone(),
        documents,
    };
    // Refuse bad input before anyone is asked to confirm anything.
    draft.validate().map_err(anyhow::Error::msg)?;
    let anchors = required_trust(opts)?;

    // 1. The sender authenticates.
    let user = match (&args.user.document, &args.user.etsi) {
        (Some(d), _) => UserRef::Document(d.clone()),
        (None, Some(e)) => UserRef::Etsi(e.clone()),
        (None, None) => bail!("give --document or --etsi"),
    };
    let auth_session_id = notification_login(
        opts,
        &user,
        NotifyLoginArgs {
            timeout_ms: args.timeout_ms,
            text: "Send a signed package".into(),
            vc_choice: false,
            alg: args.alg.clone(),
            level: AuthLevelArg::Qualified,
        },
        None,
    )
    .await?;

    // 2. Each document signed (CAdES-B-B, B-T with --tsa, B-LT with --lt).
    let level = args.level.into();
    let signer = signer(
        opts,
        &args.user,
        level,
        args.issuer.as_deref(),
        args.timeout_ms,
    )
    .await?;
    let options = session_options(
        &args.alg,
        level,
        "Sign the document".into(),
        false,
        args.timeout_ms,
    )?;
    let mut signatures = Vec::new();
    for (path, _, _) in &files {
        let (p7s, _) = sign_file(
            opts,
            &signer,
            path,
            &options,
            SystemTime::now(),
            args.tsa.as_deref(),
            args.lt,
        )
        .await?;
        signatures.push(p7s);
    }

    // 3. The proof of origin for the AUTH session, verified.
    let req = ProofOfOriginRequest {
        auth_session_id: auth_session_id.clone(),
        ..draft
    };
    eprintln!("asking for the proof of origin (AUTH session {auth_session_id})");
    let resp = client(opts)?.proof_of_origin(&req).await?;
    let proof = STANDARD
        .decode(&resp.proof)
        .context("the proof is not Base64")?;
    let verified = origin::verify_proof(&proof, &anchors, SystemTime::now())
        .context("the proof of origin does not verify")?;
    if verified.statement.documents != req.documents
        || verified.statement.sender.auth_session_id != auth_session_id
    {
        bail!("the proof of origin names other documents or another session than asked for");
    }
    outln!(
        "proof of origin: message {} from {} ({}) to {} ({}), signed by {}",
        verified.statement.message_id,
        verified.statement.sender.name,
        verified.statement.sender.identifier,
        verified.statement.recipient.name,
        verified.statement.recipient.identifier,
        verified.signer
    );

    // 4. The package.
    let tmp = args.out.with_extension("asice.part");
    let result = (|| -> anyhow::Result<()> {
        let out = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        let mut w = PackageWriter::new(out)?;
        for (((path, role, _), name), p7s) in files.iter().zip(&names).zip(&signatures) {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let sha256 = w.add_document(name, *role, media_type(name), f, p7s)?;
            let asked = req.documents.iter().find(|d| &d.name == name);
            if asked.and_then(|d| d.digest_bytes()) != Some(sha256) {
                bail!("{} changed while the package was made", path.display());
            }
        }
        w.finish(Some(&proof))?.sync_all()?;
        std::fs::rename(&tmp, &args.out)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    outln!(
        "package with {} document(s) and the proof of origin written to {}",
        files.len(),
        args.out.display()
    );
    Ok(())
}
