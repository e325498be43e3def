//! The proof of origin of a package (the seed's "VHN"): a statement signed by the Tandem
//! service that names the sender as authenticated by a Tandem AUTH session, the recipient,
//! the references, a message id, the time and the digest of every document.
//!
//! - The wire types, defined once here and used by the server (which signs) and by clients
//!   (which ask for a proof and verify it): [`ProofOfOriginRequest`] for
//!   `POST /tandem/v1/proof-of-origin`, [`ProofOfOriginResponse`], and the signed
//!   [`OriginStatement`] (UTF-8 JSON, camelCase, `"version": 1`, unknown fields refused).
//! - [`verify_proof`]: checks the CMS `SignedData` (attached statement, signature, message
//!   digest, the signer certificate's proof-of-origin key purpose and its chain to the
//!   anchors) and parses the statement; [`ProofError`] tells malformed, unknown CA, invalid
//!   signature and digest mismatch apart.
//! - [`check_package_documents`], [`check_document_digests`]: the statement's documents
//!   against a package's.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::ObjectIdentifier as Oid;
use der::asn1::OctetString;
use der::{Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509StoreContext, X509VerifyResult};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;

use super::DocumentHash;
use super::asic::{Package, Role};
use crate::client::TrustAnchors;
use crate::oids;
use crate::report::UtcTime;

/// The statement's format version.
pub const STATEMENT_VERSION: u32 = 1;
/// Most documents one proof may name.
pub const MAX_DOCUMENTS: usize = 100;
/// Longest document name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest party name, identifier, reference or message id, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Largest proof [`verify_proof`] reads.
pub const MAX_PROOF_BYTES: usize = 1024 * 1024;
/// Path of the endpoint on the RP API listener (beside, not under, the `/v3` base path).
pub const ENDPOINT_PATH: &str = "/tandem/v1/proof-of-origin";

/// A document's role as the statement names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentRole {
    /// The main document (exactly one).
    #[serde(rename = "mainDocument")]
    MainDocument,
    /// An attachment.
    #[serde(rename = "attachment")]
    Attachment,
}

impl DocumentRole {
    /// The package role it stands for.
    pub fn package_role(self) -> Role {
        match self {
            Self::MainDocument => Role::Main,
            Self::Attachment => Role::Attachment,
        }
    }
}

/// A document's digest algorithm by its statement name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DigestAlgorithm {
    /// SHA-256.
    #[serde(rename = "SHA-256")]
    Sha256,
    /// SHA-384.
    #[serde(rename = "SHA-384")]
    Sha384,
    /// SHA-512.
    #[serde(rename = "SHA-512")]
    Sha512,
}

impl DigestAlgorithm {
    /// The document hash it names.
    pub fn hash(self) -> DocumentHash {
        match self {
            Self::Sha256 => DocumentHash::Sha256,
            Self::Sha384 => DocumentHash::Sha384,
            Self::Sha512 => DocumentHash::Sha512,
        }
    }

    /// The name for a document hash.
    pub fn of(hash: DocumentHash) -> Self {
        match hash {
            DocumentHash::Sha256 => Self::Sha256,
            DocumentHash::Sha384 => Self::Sha384,
            DocumentHash::Sha512 => Self::Sha512,
        }
    }
}

/// One document of a request or a statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatementDocument {
    /// The document's name (its entry name in the package).
    pub name: String,
    /// Main document or attachment.
    pub role: DocumentRole,
    /// The hash of `digest`.
    pub digest_algorithm: DigestAlgorithm,
    /// The document's digest, standard Base64.
    pub digest: String,
}

impl StatementDocument {
    /// The decoded digest (checked to have its algorithm's length by [`validate_documents`]).
    pub fn digest_bytes(&self) -> Option<Vec<u8>> {
        STANDARD.decode(&self.digest).ok()
    }
}

/// The recipient (or any named party): a name and an identifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Party {
    /// The party's name.
    pub name: String,
    /// The party's identifier (e.g. a court's or a lawyer's mailbox id).
    pub identifier: String,
}

/// The relying party that asked for the proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatementRelyingParty {
    /// relyingPartyUUID.
    pub uuid: String,
    /// relyingPartyName as sent.
    pub name: String,
}

/// The sender as its AUTH session authenticated it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sender {
    /// Full name from the authentication certificate's subject (given name and surname).
    pub name: String,
    /// The subject's serialNumber, e.g. `PNOEE-30303039914`.
    pub identifier: String,
    /// When the AUTH session completed.
    pub authenticated_at: UtcTime,
    /// The AUTH session's id.
    pub auth_session_id: String,
}

/// The signed statement (UTF-8 JSON inside the proof's CMS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OriginStatement {
    /// [`STATEMENT_VERSION`].
    pub version: u32,
    /// The message id (the relying party's, or a UUID the server made).
    pub message_id: String,
    /// When the proof was issued.
    pub issued_at: UtcTime,
    /// The service that issued it.
    pub issuer: String,
    /// Who asked for it.
    pub relying_party: StatementRelyingParty,
    /// Who sends the message.
    pub sender: Sender,
    /// Who receives it.
    pub recipient: Party,
    /// The sender's reference ("Aktenzeichen des Absenders").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_reference: Option<String>,
    /// The recipient's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_reference: Option<String>,
    /// The documents, main document first.
    pub documents: Vec<StatementDocument>,
}

impl OriginStatement {
    /// The statement as signed: compact UTF-8 JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings, numbers and vectors cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a statement: our schema, version 1, documents as [`validate_documents`] wants.
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        let s: Self = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if s.version != STATEMENT_VERSION {
            return Err(format!("unknown statement version {}", s.version));
        }
        validate_documents(&s.documents)?;
        Ok(s)
    }
}

/// The body of `POST /tandem/v1/proof-of-origin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofOfOriginRequest {
    /// relyingPartyUUID (as in the RP API v3).
    #[serde(rename = "relyingPartyUUID")]
    pub relying_party_uuid: String,
    /// relyingPartyName (as in the RP API v3).
    pub relying_party_name: String,
    /// A completed AUTH session this relying party started.
    pub auth_session_id: String,
    /// The recipient.
    pub recipient: Party,
    /// The sender's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_reference: Option<String>,
    /// The recipient's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_reference: Option<String>,
    /// The message id; the server makes a UUID when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The documents: at least one, exactly one main document.
    pub documents: Vec<StatementDocument>,
}

impl ProofOfOriginRequest {
    /// Checks sizes and forms (not the session: that is the server's decision). The error
    /// names the field.
    pub fn validate(&self) -> Result<(), String> {
        text("recipient.name", &self.recipient.name)?;
        text("recipient.identifier", &self.recipient.identifier)?;
        for (field, v) in [
            ("senderReference", &self.sender_reference),
            ("recipientReference", &self.recipient_reference),
            ("messageId", &self.message_id),
        ] {
            if let Some(v) = v {
                text(field, v)?;
            }
        }
        if uuid::Uuid::parse_str(&self.auth_session_id).is_err() {
            return Err("authSessionId: not a session id".into());
        }
        validate_documents(&self.documents)
    }
}

/// The answer of `POST /tandem/v1/proof-of-origin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofOfOriginResponse {
    /// The statement's message id.
    pub message_id: String,
    /// The proof: DER CMS `SignedData` in a `ContentInfo`, standard Base64.
    pub proof: String,
}

/// A text field: 1 to [`MAX_TEXT_CHARS`] characters, no control characters, no surrounding
/// white space.
fn text(field: &str, v: &str) -> Result<(), String> {
    let n = v.chars().count();
    if n == 0 || n > MAX_TEXT_CHARS {
        return Err(format!("{field}: 1 to {MAX_TEXT_CHARS} characters"));
    }
    if v.chars().any(char::is_control) || v.trim() != v {
        return Err(format!(
            "{field}: no control characters or surrounding spaces"
        ));
    }
    Ok(())
}

/// Checks a document list: 1 to [`MAX_DOCUMENTS`], exactly one main document, names safe
/// as package entries and distinct ignoring case, digests Base64 of their algorithm's length.
pub fn validate_documents(docs: &[StatementDocument]) -> Result<(), String> {
    if docs.is_empty() || docs.len() > MAX_DOCUMENTS {
        return Err(format!("documents: 1 to {MAX_DOCUMENTS} documents"));
    }
    let mains = docs
        .iter()
        .filter(|d| d.role == DocumentRole::MainDocument)
        .count();
    if mains != 1 {
        return Err(format!("documents: exactly one mainDocument, not {mains}"));
    }
    let mut names = HashSet::new();
    for (i, d) in docs.iter().enumerate() {
        if d.name.chars().count() > MAX_NAME_CHARS
            || d.name.contains('/')
            || super::asic::check_name(&d.name).is_err()
        {
            return Err(format!(
                "documents[{i}].name: not a safe file name of at most {MAX_NAME_CHARS} characters"
            ));
        }
        if !names.insert(d.name.to_lowercase()) {
            return Err(format!("documents[{i}].name: named twice"));
        }
        match d.digest_bytes() {
            Some(b) if b.len() == d.digest_algorithm.hash().output_len() => {}
            _ => {
                return Err(format!(
                    "documents[{i}].digest: not the Base64 of a {} digest",
                    d.digest_algorithm.hash().output_len() * 8
                ));
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ verification

/// Why a proof was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Not a CMS SignedData with one signer and an attached statement, or the statement is
    /// not our schema.
    #[error("malformed proof of origin: {0}")]
    Malformed(String),
    /// The signer certificate chains to none of the trust anchors.
    #[error("the proof of origin comes from an unknown CA ({issuer}): {reason}")]
    UnknownCa {
        /// The signer certificate's issuer (RFC 4514 form).
        issuer: String,
        /// What OpenSSL said.
        reason: String,
    },
    /// The signer certificate chains to an anchor but is not valid now (expired, bad
    /// extension), or lacks the proof-of-origin key purpose.
    #[error("the proof of origin's certificate is not acceptable: {0}")]
    Certificate(String),
    /// The signature over the signed attributes does not verify.
    #[error("the proof of origin's signature is invalid: {0}")]
    InvalidSignature(String),
    /// The message-digest attribute is not the statement's digest (the statement changed).
    #[error("the proof of origin's statement does not match its signed digest")]
    DigestMismatch,
    /// The statement's documents are not the package's (a name, role or digest differs).
    #[error("the proof of origin does not match the documents: {0}")]
    DocumentMismatch(String),
}

/// A proof that passed [`verify_proof`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The statement.
    pub statement: OriginStatement,
    /// The statement's bytes as signed.
    pub statement_json: Vec<u8>,
    /// The signer certificate (DER).
    pub signer_certificate_der: Vec<u8>,
    /// The signer certificate's subject (RFC 4514).
    pub signer: String,
    /// The CA that issued the signer certificate (RFC 4514).
    pub ca: String,
    /// The signing-time attribute, if present.
    pub signing_time: Option<UtcTime>,
    /// Every certificate embedded in the proof (DER), the signer's among them: the
    /// untrusted intermediates for building the chain of the revocation check.
    pub certificates_der: Vec<Vec<u8>>,
}

fn malformed(e: impl std::fmt::Display) -> ProofError {
    ProofError::Malformed(e.to_string())
}

/// The hash of a digest or signature algorithm OID.
fn hash_of_digest_oid(oid: &Oid) -> Option<MessageDigest> {
    match *oid {
        oids::SHA256 => Some(MessageDigest::sha256()),
        oids::SHA384 => Some(MessageDigest::sha384()),
        oids::SHA512 => Some(MessageDigest::sha512()),
        _ => None,
    }
}

fn hash_of_signature_oid(oid: &Oid) -> Option<MessageDigest> {
    const SHA256_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    const SHA512_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
    const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
    const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
    match *oid {
        SHA256_RSA | ECDSA_SHA256 => Some(MessageDigest::sha256()),
        oids::SHA384_WITH_RSA | oids::ECDSA_WITH_SHA384 => Some(MessageDigest::sha384()),
        SHA512_RSA | ECDSA_SHA512 => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// The single value of a signed attribute.
fn attribute_value<'a>(
    attrs: &'a x509_cert::attr::Attributes,
    oid: Oid,
    name: &str,
) -> Result<&'a der::asn1::Any, ProofError> {
    let a = attrs
        .iter()
        .find(|a| a.oid == oid)
        .ok_or_else(|| malformed(format!("no {name} signed attribute")))?;
    if a.values.len() != 1 {
        return Err(malformed(format!("{name} must have one value")));
    }
    a.values
        .get(0)
        .ok_or_else(|| malformed(format!("{name} has no value")))
}

/// The SignedData of a proof and its attached statement's bytes (nothing verified).
fn signed_statement(proof_der: &[u8]) -> Result<(SignedData, Vec<u8>), ProofError> {
    if proof_der.len() > MAX_PROOF_BYTES {
        return Err(malformed("larger than 1 MiB"));
    }
    let ci = ContentInfo::from_der(proof_der).map_err(|e| malformed(format!("not CMS: {e}")))?;
    if ci.content_type != oids::ID_SIGNED_DATA {
        return Err(malformed("not a SignedData"));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| malformed(format!("SignedData: {e}")))?;
    if sd.encap_content_info.econtent_type != oids::ID_DATA {
        return Err(malformed("the content type is not id-data"));
    }
    let statement_json = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("the statement is not attached"))?
        .decode_as::<OctetString>()
        .map_err(|e| malformed(format!("eContent: {e}")))?
        .as_bytes()
        .to_vec();
    Ok((sd, statement_json))
}

/// What a proof says, without checking anything but its form: the statement (parsed as
/// [`OriginStatement::from_json`]) and the subject of the embedded certificates' first
/// one (RFC 4514). For listing a package's content; [`verify_proof`] decides whether to
/// believe it.
pub fn read_statement_unverified(
    proof_der: &[u8],
) -> Result<(OriginStatement, Option<String>), ProofError> {
    let (sd, json) = signed_statement(proof_der)?;
    let statement =
        OriginStatement::from_json(&json).map_err(|e| malformed(format!("statement: {e}")))?;
    let signer = sd.certificates.as_ref().and_then(|s| {
        s.0.iter().find_map(|c| match c {
            CertificateChoices::Certificate(c) => X509::from_der(&c.to_der().ok()?)
                .ok()
                .map(|x| name_string(x.subject_name())),
            _ => None,
        })
    });
    Ok((statement, signer))
}

/// The issuer (RFC 4514) of the proof's signer certificate, read without checking anything:
/// names the CA in a report when the proof could not be verified.
pub fn signer_issuer_unverified(proof_der: &[u8]) -> Option<String> {
    let (sd, _) = signed_statement(proof_der).ok()?;
    let si = sd.signer_infos.0.get(0)?;
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &si.sid else {
        return None;
    };
    let der = sid.issuer.to_der().ok()?;
    let name = openssl::x509::X509Name::from_der(&der).ok()?;
    Some(name_string(&name))
}

/// Verifies a proof of origin (DER `ContentInfo`) at `now`: a SignedData with one
/// SignerInfo over an attached id-data statement; the signed attributes content-type,
/// message-digest (the statement's digest), signing-certificate-v2 (naming the signer
/// certificate, when present); the signature with the signer certificate's key; the signer
/// certificate embedded, carrying [`oids::KP_TANDEM_PROOF_OF_ORIGIN`], and chaining to a
/// root of `anchors` (with the embedded certificates and the anchors' intermediates) at
/// `now`; then the statement's schema.
pub fn verify_proof(
    proof_der: &[u8],
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<VerifiedProof, ProofError> {
    let (sd, statement_json) = signed_statement(proof_der)?;
    if sd.signer_infos.0.len() != 1 {
        return Err(malformed("not exactly one SignerInfo"));
    }
    let si = sd
        .signer_infos
        .0
        .get(0)
        .ok_or_else(|| malformed("no SignerInfo"))?;
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &si.sid else {
        return Err(malformed("the signer is not named by issuer and serial"));
    };
    let certs: Vec<&Certificate> = sd
        .certificates
        .as_ref()
        .map(|s| {
            s.0.iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let signer_cert = certs
        .iter()
        .find(|c| {
            c.tbs_certificate().issuer() == &sid.issuer
                && c.tbs_certificate().serial_number() == &sid.serial_number
        })
        .ok_or_else(|| malformed("the signer certificate is not embedded"))?;
    let signer_der = signer_cert.to_der().map_err(malformed)?;
    let signer_x509 = X509::from_der(&signer_der).map_err(malformed)?;

    // Signed attributes: content-type, message-digest, signing-certificate-v2.
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| malformed("no signed attributes"))?;
    let content_type: Oid = attribute_value(attrs, oids::ID_CONTENT_TYPE, "content-type")?
        .decode_as()
        .map_err(malformed)?;
    if content_type != oids::ID_DATA {
        return Err(malformed("content-type attribute is not id-data"));
    }
    let md = hash_of_digest_oid(&si.digest_alg.oid)
        .ok_or_else(|| malformed("digest algorithm other than SHA-256/384/512"))?;
    let message_digest: OctetString =
        attribute_value(attrs, oids::ID_MESSAGE_DIGEST, "message-digest")?
            .decode_as()
            .map_err(malformed)?;
    let signing_time = match attrs.iter().find(|a| a.oid == oids::ID_SIGNING_TIME) {
        Some(_) => {
            let t: x509_cert::time::Time =
                attribute_value(attrs, oids::ID_SIGNING_TIME, "signing-time")?
                    .decode_as()
                    .map_err(malformed)?;
            UtcTime::from_system_time(t.to_system_time()).ok()
        }
        None => None,
    };
    if attrs
        .iter()
        .any(|a| a.oid == oids::ID_AA_SIGNING_CERTIFICATE_V2)
    {
        let v = attribute_value(
            attrs,
            oids::ID_AA_SIGNING_CERTIFICATE_V2,
            "signing-certificate-v2",
        )?;
        check_signing_certificate(&v.to_der().map_err(malformed)?, &signer_der)?;
    }
    let content_digest = openssl::hash::hash(md, &statement_json).map_err(malformed)?;
    if message_digest.as_bytes() != &content_digest[..] {
        return Err(ProofError::DigestMismatch);
    }

    // The signature over the DER SET OF the attributes.
    let sig_md = hash_of_signature_oid(&si.signature_algorithm.oid).ok_or_else(|| {
        malformed(format!(
            "signature algorithm {} is not supported",
            si.signature_algorithm.oid
        ))
    })?;
    let signed = attrs.to_der().map_err(malformed)?;
    let key = signer_x509.public_key().map_err(malformed)?;
    let ok = openssl::sign::Verifier::new(sig_md, &key)
        .and_then(|mut v| v.verify_oneshot(si.signature.as_bytes(), &signed))
        .unwrap_or(false);
    if !ok {
        return Err(ProofError::InvalidSignature(
            "the signature does not verify with the signer certificate's key".into(),
        ));
    }

    // The signer certificate: chain to an anchor, then its purpose.
    let ca = name_string(signer_x509.issuer_name());
    verify_chain(&signer_x509, &certs, anchors, now, &ca)?;
    let eku = signer_cert
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|e| ProofError::Certificate(format!("extendedKeyUsage: {e}")))?;
    if !eku.is_some_and(|(_, e)| e.0.contains(&oids::KP_TANDEM_PROOF_OF_ORIGIN)) {
        return Err(ProofError::Certificate(
            "the signer certificate lacks the proof-of-origin key purpose".into(),
        ));
    }

    let statement = OriginStatement::from_json(&statement_json)
        .map_err(|e| malformed(format!("statement: {e}")))?;
    Ok(VerifiedProof {
        statement,
        statement_json,
        signer: name_string(signer_x509.subject_name()),
        ca,
        signer_certificate_der: signer_der,
        signing_time,
        certificates_der: certs.iter().filter_map(|c| c.to_der().ok()).collect(),
    })
}

/// ESSCertIDv2 (RFC 5035), as read.
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<x509_cert::spki::AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<der::asn1::Any>,
}

/// SigningCertificateV2 (RFC 5035), as read (policies ignored).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<der::asn1::Any>,
}

/// The first ESSCertIDv2 must be the signer certificate's hash.
fn check_signing_certificate(value_der: &[u8], signer_der: &[u8]) -> Result<(), ProofError> {
    let v = SigningCertificateV2::from_der(value_der)
        .map_err(|e| malformed(format!("signing-certificate-v2: {e}")))?;
    let first = v
        .certs
        .first()
        .ok_or_else(|| malformed("signing-certificate-v2 names no certificate"))?;
    // hashAlgorithm DEFAULT id-sha256.
    let oid = first
        .hash_algorithm
        .as_ref()
        .map_or(oids::SHA256, |a| a.oid);
    let md = hash_of_digest_oid(&oid)
        .ok_or_else(|| malformed("signing-certificate-v2: unsupported hash"))?;
    let h = openssl::hash::hash(md, signer_der).map_err(malformed)?;
    if first.cert_hash.as_bytes() != &h[..] {
        return Err(ProofError::InvalidSignature(
            "signing-certificate-v2 names another certificate than the signer's".into(),
        ));
    }
    Ok(())
}

fn name_string(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = String::from_utf8_lossy(e.data().as_slice()).into_owned();
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn verify_chain(
    leaf: &X509,
    embedded: &[&Certificate],
    anchors: &TrustAnchors,
    now: SystemTime,
    issuer: &str,
) -> Result<(), ProofError> {
    let e = |e: openssl::error::ErrorStack| ProofError::Certificate(format!("OpenSSL: {e}"));
    let unknown = |reason: String| ProofError::UnknownCa {
        issuer: issuer.to_owned(),
        reason,
    };
    if anchors.roots().is_empty() {
        return Err(unknown("no trust anchors given".into()));
    }
    let mut store = X509StoreBuilder::new().map_err(e)?;
    for r in anchors.roots() {
        store.add_cert(r.clone()).map_err(e)?;
    }
    let secs = now
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(|| ProofError::Certificate("the time is out of range".into()))?;
    let mut param = X509VerifyParam::new().map_err(e)?;
    // time_t is i64 on our targets; a narrower one is refused rather than cut.
    #[allow(clippy::useless_conversion)]
    let secs = secs
        .try_into()
        .map_err(|_| ProofError::Certificate("the time is out of range".into()))?;
    param.set_time(secs);
    store.set_param(&param).map_err(e)?;
    let store = store.build();
    let mut chain = Stack::new().map_err(e)?;
    for i in anchors.intermediates() {
        chain.push(i.clone()).map_err(e)?;
    }
    for c in embedded {
        if let Ok(x) = c
            .to_der()
            .map_err(|_| ())
            .and_then(|d| X509::from_der(&d).map_err(|_| ()))
        {
            chain.push(x).map_err(e)?;
        }
    }
    let mut ctx = X509StoreContext::new().map_err(e)?;
    let (ok, error) = ctx
        .init(&store, leaf, &chain, |c| Ok((c.verify_cert()?, c.error())))
        .map_err(e)?;
    if ok {
        return Ok(());
    }
    // The codes of "no path to a trusted root" (x509_vfy.h).
    const UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
    const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
    const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
    const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
    const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
    let reason = error.error_string().to_owned();
    if matches!(
        error.as_raw(),
        UNABLE_TO_GET_ISSUER_CERT
            | DEPTH_ZERO_SELF_SIGNED_CERT
            | SELF_SIGNED_CERT_IN_CHAIN
            | UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | UNABLE_TO_VERIFY_LEAF_SIGNATURE
    ) || error == X509VerifyResult::OK
    {
        return Err(unknown(reason));
    }
    Err(ProofError::Certificate(reason))
}

// ------------------------------------------------------------------ documents

/// A document's digest as the checker gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentDigest {
    /// The document's name.
    pub name: String,
    /// Main document or attachment.
    pub role: Role,
    /// The hash of `digest`.
    pub hash: DocumentHash,
    /// The digest.
    pub digest: Vec<u8>,
}

/// Checks that the statement names exactly `documents` (by name, ignoring order), each with
/// the same role and digest. A statement digest with another hash than the document's given
/// one is a mismatch: compute the documents' digests with the statement's hashes.
pub fn check_document_digests(
    statement: &OriginStatement,
    documents: &[DocumentDigest],
) -> Result<(), ProofError> {
    let mismatch = ProofError::DocumentMismatch;
    if statement.documents.len() != documents.len() {
        return Err(mismatch(format!(
            "the proof names {} documents, the package holds {}",
            statement.documents.len(),
            documents.len()
        )));
    }
    for d in documents {
        let s = statement
            .documents
            .iter()
            .find(|s| s.name == d.name)
            .ok_or_else(|| mismatch(format!("{} is not named by the proof", d.name)))?;
        if s.role.package_role() != d.role {
            return Err(mismatch(format!("{}: the role differs", d.name)));
        }
        if s.digest_algorithm.hash() != d.hash || s.digest_bytes().as_deref() != Some(&d.digest) {
            return Err(mismatch(format!("{}: the digest differs", d.name)));
        }
    }
    Ok(())
}

/// [`check_document_digests`] against a package read by [`super::asic::read_package`] (which
/// hashed each document with SHA-256): the statement's digests must be SHA-256.
pub fn check_package_documents(
    statement: &OriginStatement,
    package: &Package,
) -> Result<(), ProofError> {
    let docs: Vec<DocumentDigest> = package
        .documents
        .iter()
        .map(|d| DocumentDigest {
            name: d.entry.name.clone(),
            role: d.entry.role,
            hash: DocumentHash::Sha256,
            digest: d.sha256.clone(),
        })
        .collect();
    check_document_digests(statement, &docs)
}

#[cfg(test)]
#[path = "origin/tests.rs"]
mod tests;
