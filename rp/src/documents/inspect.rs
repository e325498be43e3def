//! What a package holds, as written: documents, roles, each signature's signer and signing
//! time, and the proof of origin's statement. Nothing is validated beyond the package's
//! form ([`asic::read_package`]'s checks): for listing (`tandem package inspect`), not for
//! deciding whether to believe it.

use std::io::{Read, Seek};

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::Decode;
use serde::Serialize;

use super::asic::{self, AsicError, PackageLimits, Role};
use super::origin::{OriginStatement, read_statement_unverified};
use crate::oids;
use crate::report::UtcTime;

/// One document as listed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedDocument {
    /// The entry name.
    pub name: String,
    /// Main document or attachment.
    pub role: Role,
    /// The manifest's media type.
    pub media_type: String,
    /// SHA-256, lower-case hex (checked against the bytes while reading).
    pub sha256: String,
    /// The signature's entry name.
    pub signature: String,
    /// The signer certificate's subject as the signature names it (not verified).
    pub signer: Option<String>,
    /// The signing-time attribute (not verified).
    pub signing_time: Option<UtcTime>,
}

/// The proof of origin as listed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedProof {
    /// The subject of the first embedded certificate (the signer's, for our proofs).
    pub signer: Option<String>,
    /// The statement, if it reads.
    pub statement: Option<OriginStatement>,
    /// Why it does not read.
    pub error: Option<String>,
}

/// A package's listing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageListing {
    /// The documents in manifest order.
    pub documents: Vec<ListedDocument>,
    /// The proof of origin, if the package has one.
    pub proof_of_origin: Option<ListedProof>,
}

/// The signer's subject and the signing time of a CMS signature, as written.
pub fn signature_summary(p7s: &[u8]) -> (Option<String>, Option<UtcTime>) {
    let Ok(ci) = ContentInfo::from_der(p7s) else {
        return (None, None);
    };
    let Ok(sd) = ci.content.decode_as::<SignedData>() else {
        return (None, None);
    };
    let Some(si) = sd.signer_infos.0.get(0) else {
        return (None, None);
    };
    let subject = match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(sid) => sd.certificates.as_ref().and_then(|set| {
            set.0.iter().find_map(|c| match c {
                CertificateChoices::Certificate(c)
                    if c.tbs_certificate().issuer() == &sid.issuer
                        && c.tbs_certificate().serial_number() == &sid.serial_number =>
                {
                    Some(c.tbs_certificate().subject().to_string())
                }
                _ => None,
            })
        }),
        SignerIdentifier::SubjectKeyIdentifier(_) => None,
    };
    let time = si.signed_attrs.as_ref().and_then(|attrs| {
        let a = attrs.iter().find(|a| a.oid == oids::ID_SIGNING_TIME)?;
        let t: x509_cert::time::Time = a.values.get(0)?.decode_as().ok()?;
        UtcTime::from_system_time(t.to_system_time()).ok()
    });
    (subject, time)
}

/// Reads a package within `limits` and lists what it holds.
pub fn inspect_package<R: Read + Seek>(
    input: R,
    limits: &PackageLimits,
) -> Result<PackageListing, AsicError> {
    let package = asic::read_package(input, limits)?;
    let documents = package
        .documents
        .iter()
        .map(|d| {
            let (signer, signing_time) = signature_summary(&d.signature);
            ListedDocument {
                name: d.entry.name.clone(),
                role: d.entry.role,
                media_type: d.entry.media_type.clone(),
                sha256: d.entry.sha256.clone(),
                signature: d.entry.signature.clone(),
                signer,
                signing_time,
            }
        })
        .collect();
    let proof_of_origin =
        package
            .proof_of_origin
            .as_deref()
            .map(|p| match read_statement_unverified(p) {
                Ok((statement, signer)) => ListedProof {
                    signer,
                    statement: Some(statement),
                    error: None,
                },
                Err(e) => ListedProof {
                    signer: None,
                    statement: None,
                    error: Some(e.to_string()),
                },
            });
    Ok(PackageListing {
        documents,
        proof_of_origin,
    })
}
