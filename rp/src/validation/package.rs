//! ASiC-E packages ([`crate::documents::asic`]): the package is read within its limits
//! (names, sizes, compression ratio, manifest and digests), then each document's detached
//! CAdES signature is validated like a single `.p7s`.
//!
//! The proof of origin is checked by one function, [`check_proof_of_origin`]; a package
//! without one gives [`ProofOfOrigin::Absent`] ("no secure transmission path").

use std::io::{Read, Seek};

use crate::documents::asic::{self, AsicError, PackageLimits, Role};
use crate::documents::{DocumentHash, digest_reader};
use crate::report::{Document, DocumentRole, ProofOfOrigin};

use super::{Validation, ValidationContext, validate_detached};

/// A package's documents, validated, and its proof of origin.
#[derive(Debug, Clone)]
pub struct PackageValidation {
    /// Per document: its name and role, and the validation of its signature.
    pub documents: Vec<(Document, Vec<Validation>)>,
    /// The proof of origin as checked; `None` when the package has a proof that this
    /// build cannot check yet (see [`check_proof_of_origin`]).
    pub proof_of_origin: Option<ProofOfOrigin>,
}

/// Why the proof of origin was not checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the package carries a proof of origin, and checking proofs of origin is not part of this build yet"
)]
pub struct ProofNotCheckable;

/// The proof of origin of a package: the one place where its check plugs in. No proof:
/// [`ProofOfOrigin::Absent`]. A present proof is not checked by this build (the check lives
/// in `documents::origin`, merged separately), and is reported as such rather than guessed.
pub fn check_proof_of_origin(
    proof: Option<&[u8]>,
    _ctx: &ValidationContext,
) -> Result<ProofOfOrigin, ProofNotCheckable> {
    match proof {
        None => Ok(ProofOfOrigin::Absent),
        Some(_) => Err(ProofNotCheckable),
    }
}

/// Reads `input` as a package within `limits` and validates every document's signature.
/// A package that breaks the rules of [`asic::read_package`] is an [`AsicError`] (the
/// caller reports FORMAT_FAILURE).
pub async fn validate_package<R: Read + Seek>(
    mut input: R,
    limits: &PackageLimits,
    ctx: &ValidationContext,
) -> Result<PackageValidation, AsicError> {
    let package = asic::read_package(&mut input, limits)?;
    let mut documents = Vec::with_capacity(package.documents.len());
    for doc in &package.documents {
        let name = doc.entry.name.clone();
        let mut digest = |hash: DocumentHash| -> std::io::Result<Vec<u8>> {
            if hash == DocumentHash::Sha256 {
                return Ok(doc.sha256.clone());
            }
            // Another hash: inflate the entry again (its size passed the limits already).
            input.rewind()?;
            let mut zip = zip::ZipArchive::new(&mut input).map_err(std::io::Error::other)?;
            let entry = zip.by_name(&name).map_err(std::io::Error::other)?;
            digest_reader(hash, entry.take(limits.max_entry_size))
        };
        let validation = validate_detached(&doc.signature, &mut digest, ctx).await;
        let role = match doc.entry.role {
            Role::Main => DocumentRole::MainDocument,
            Role::Attachment => DocumentRole::Attachment,
        };
        documents.push((
            Document {
                name: doc.entry.name.clone(),
                role,
                signatures: vec![validation.result.clone()],
            },
            vec![validation],
        ));
    }
    let proof_of_origin = check_proof_of_origin(package.proof_of_origin.as_deref(), ctx).ok();
    Ok(PackageValidation {
        documents,
        proof_of_origin,
    })
}
