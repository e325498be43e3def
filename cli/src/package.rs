//! `tandem package inspect`: what a signed package (ASiC-E) holds: its documents and
//! roles, each signature's signer and signing time, and the proof of origin's statement.
//! Nothing is validated here beyond the package's form (`read_package`'s checks): the
//! signers and the statement are shown as written (`tandem verify` judges them).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use tandem_rp::documents::asic::{PackageLimits, Role};
use tandem_rp::documents::inspect::{ListedProof, inspect_package};

/// `tandem package ...`
#[derive(Subcommand, Debug)]
pub enum PackageCommand {
    /// List a package's documents, roles, signatures and proof-of-origin statement (not a
    /// validation).
    Inspect {
        /// The package (`.asice`).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Main => "main document",
        Role::Attachment => "attachment",
    }
}

/// Runs `tandem package ...`.
pub fn run(cmd: PackageCommand) -> anyhow::Result<()> {
    let PackageCommand::Inspect { file, json } = cmd;
    let f =
        std::fs::File::open(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let listing = inspect_package(std::io::BufReader::new(f), &PackageLimits::default())
        .with_context(|| format!("{} is not a readable package", file.display()))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    outln!("package: {}", file.display());
    for d in &listing.documents {
        outln!(
            "document: {} ({}, {})",
            d.name,
            role_name(d.role),
            d.media_type
        );
        outln!("  sha256: {}", d.sha256);
        outln!(
            "  signature: {} by {} at {}",
            d.signature,
            d.signer.as_deref().unwrap_or("(unreadable)"),
            d.signing_time
                .map_or_else(|| "(no signing time)".to_owned(), |t| t.to_string())
        );
    }
    match &listing.proof_of_origin {
        None => outln!("proof of origin: none"),
        Some(ListedProof { error: Some(e), .. }) => outln!("proof of origin: unreadable ({e})"),
        Some(p) => {
            outln!(
                "proof of origin: signed by {} (not verified here)",
                p.signer.as_deref().unwrap_or("(unknown)")
            );
            if let Some(s) = &p.statement {
                let json = String::from_utf8(s.to_json()).unwrap_or_default();
                let pretty: serde_json::Value = serde_json::from_str(&json)?;
                outln!("{}", serde_json::to_string_pretty(&pretty)?);
            }
        }
    }
    Ok(())
}
