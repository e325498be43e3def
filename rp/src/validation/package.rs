//! ASiC-E packages ([`crate::documents::asic`]): the package is read within its limits
//! (names, sizes, compression ratio, manifest and digests), then each document's detached
//! CAdES signature is validated like a single `.p7s`.
//!
//! The proof of origin is checked by one function, [`check_proof_of_origin`]:
//!
//! | finding                                                  | report                               |
//! |----------------------------------------------------------|--------------------------------------|
//! | no proof                                                 | `Absent`                             |
//! | not CMS / not our statement ([`ProofError::Malformed`])  | `Malformed`                          |
//! | chains to no trust anchor ([`ProofError::UnknownCa`])    | `UnknownCa { ca }`                   |
//! | signature, ESS reference wrong (`InvalidSignature`)      | `Checked`, TOTAL_FAILED/SIG_CRYPTO_FAILURE |
//! | statement changed (`DigestMismatch`), documents differ   | `Checked`, TOTAL_FAILED/HASH_FAILURE |
//! | certificate not acceptable (no proof purpose, expired)   | `Checked`, TOTAL_FAILED/CHAIN_CONSTRAINTS_FAILURE |
//! | valid, certificate revoked (OCSP/CRL)                    | `Checked`, TOTAL_FAILED/REVOKED      |
//! | valid, OCSP and CRL unreachable                          | `Checked`, INDETERMINATE/TRY_LATER   |
//! | valid, not revoked                                       | `Checked`, TOTAL_PASSED              |
//!
//! The statement (sender, recipient, references, message id) is handed out for the report's
//! header only when the proof's signature verified, its chain reached an anchor, its
//! documents are the package's and its certificate is not revoked (green or yellow); the
//! header of any other proof stays empty.

use std::io::{Read, Seek};

use der::Decode;

use crate::client::TrustAnchors;
use crate::documents::asic::{self, AsicError, Package, PackageLimits, Role};
use crate::documents::origin::{self, OriginStatement, ProofError};
use crate::documents::{DocumentHash, digest_reader};
use crate::report::{Document, DocumentRole, ProofOfOrigin, SignatureStatus, SubIndication};

use super::cms::EmbeddedCert;
use super::revocation::{self, RevocationFinding};
use super::{Validation, ValidationContext, validate_detached};

/// A package's documents, validated, and its proof of origin.
#[derive(Debug, Clone)]
pub struct PackageValidation {
    /// Per document: its name and role, and the validation of its signature.
    pub documents: Vec<(Document, Vec<Validation>)>,
    /// The proof of origin as checked.
    pub proof: ProofCheck,
}

/// The check of a package's proof of origin.
#[derive(Debug, Clone)]
pub struct ProofCheck {
    /// What the report shows in part 2.
    pub proof_of_origin: ProofOfOrigin,
    /// The verified statement, for the report's header: only for a proof whose signature
    /// verified, whose documents are the package's and whose certificate is not revoked.
    pub statement: Option<OriginStatement>,
    /// The findings in plain English, most important first.
    pub details: Vec<String>,
}

impl ProofCheck {
    /// No proof at all (a single signed file, or a package that could not be read).
    pub fn absent() -> Self {
        Self {
            proof_of_origin: ProofOfOrigin::Absent,
            statement: None,
            details: Vec::new(),
        }
    }

    fn uncheckable(proof_of_origin: ProofOfOrigin, detail: String) -> Self {
        Self {
            proof_of_origin,
            statement: None,
            details: vec![detail],
        }
    }

    fn checked(ca: String, status: SignatureStatus, detail: String) -> Self {
        Self {
            proof_of_origin: ProofOfOrigin::Checked { ca, status },
            statement: None,
            details: vec![detail],
        }
    }
}

fn failed(sub: SubIndication) -> SignatureStatus {
    // HASH_FAILURE, SIG_CRYPTO_FAILURE, REVOKED and CHAIN_CONSTRAINTS_FAILURE may be
    // TOTAL_FAILED (EN 319 102-1, table 5); the fallback stays red.
    SignatureStatus::failed(sub).unwrap_or(SignatureStatus::FORMAT_FAILED)
}

fn anchors_of(ctx: &ValidationContext) -> TrustAnchors {
    let mut anchors = TrustAnchors::new();
    for a in &ctx.anchors {
        if let Ok(pem) = a.to_pem() {
            let _ = anchors.add_roots_pem(&pem);
        }
    }
    anchors
}

/// Checks the proof of origin of `package` at the context's time against its anchors:
/// [`origin::verify_proof`], the statement's documents against the package's, then the
/// revocation status of the proof's certificate (the context's revocation options, as for
/// the signatures). See the module documentation for the mapping.
pub async fn check_proof_of_origin(package: &Package, ctx: &ValidationContext) -> ProofCheck {
    let Some(proof) = package.proof_of_origin.as_deref() else {
        return ProofCheck::uncheckable(
            ProofOfOrigin::Absent,
            "proof of origin: none in the package".into(),
        );
    };
    let ca_unverified =
        || origin::signer_issuer_unverified(proof).unwrap_or_else(|| "(unreadable name)".into());
    let verified = match origin::verify_proof(proof, &anchors_of(ctx), ctx.now()) {
        Ok(v) => v,
        Err(e) => {
            let detail = format!("proof of origin: {e}");
            return match e {
                ProofError::Malformed(_) => {
                    ProofCheck::uncheckable(ProofOfOrigin::Malformed, detail)
                }
                ProofError::UnknownCa { issuer, .. } => {
                    ProofCheck::uncheckable(ProofOfOrigin::UnknownCa { ca: Some(issuer) }, detail)
                }
                ProofError::InvalidSignature(_) => ProofCheck::checked(
                    ca_unverified(),
                    failed(SubIndication::SigCryptoFailure),
                    detail,
                ),
                ProofError::DigestMismatch | ProofError::DocumentMismatch(_) => {
                    ProofCheck::checked(ca_unverified(), failed(SubIndication::HashFailure), detail)
                }
                ProofError::Certificate(_) => ProofCheck::checked(
                    ca_unverified(),
                    failed(SubIndication::ChainConstraintsFailure),
                    detail,
                ),
            };
        }
    };
    let ca = verified.ca.clone();
    if let Err(e) = origin::check_package_documents(&verified.statement, package) {
        return ProofCheck::checked(
            ca,
            failed(SubIndication::HashFailure),
            format!("proof of origin: {e}"),
        );
    }
    let embedded: Vec<EmbeddedCert> = verified
        .certificates_der
        .iter()
        .filter_map(|der| {
            Some(EmbeddedCert {
                cert: x509_cert::Certificate::from_der(der).ok()?,
                der: der.clone(),
            })
        })
        .collect();
    let finding =
        match super::chain::build(&verified.signer_certificate_der, &embedded, &ctx.anchors) {
            Ok(chain) => revocation::online(&chain, &ctx.revocation).await,
            // verify_proof built this chain already; not finding it again is no reason to trust.
            Err(e) => RevocationFinding::Unavailable(e.to_string()),
        };
    let mut details = vec![
        "proof of origin: signature, statement and certificate chain verified".to_owned(),
        "proof of origin: the statement names exactly the package's documents".to_owned(),
    ];
    let status = match finding {
        RevocationFinding::NotRevoked { source } => {
            details.push(format!("proof of origin: not revoked ({source})"));
            SignatureStatus::PASSED
        }
        RevocationFinding::Unavailable(why) => {
            details.insert(
                0,
                format!("proof of origin: revocation status not available now: {why}"),
            );
            SignatureStatus::indeterminate(SubIndication::TryLater)
                .unwrap_or(SignatureStatus::FORMAT_FAILED)
        }
        RevocationFinding::Revoked { detail, .. } => {
            return ProofCheck::checked(
                ca,
                failed(SubIndication::Revoked),
                format!("proof of origin: a certificate of its chain is revoked: {detail}"),
            );
        }
    };
    ProofCheck {
        proof_of_origin: ProofOfOrigin::Checked { ca, status },
        statement: Some(verified.statement),
        details,
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
    let proof = check_proof_of_origin(&package, ctx).await;
    Ok(PackageValidation { documents, proof })
}
