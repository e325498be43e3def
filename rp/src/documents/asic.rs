//! ASiC-E packages (ETSI EN 319 162-1): a ZIP with `mimetype` first and stored, the documents
//! at the root, our manifest `META-INF/tandem-package.json` (roles and SHA-256 digests), one
//! detached CAdES signature per document as `META-INF/signatures<N>.p7s` and, when given, the
//! proof of origin `META-INF/proof-of-origin.p7s`. docs/DOCUMENTS.md describes the layout.
//!
//! Reading is bounded: entry count, per-entry and total inflated size, compression ratio and
//! metadata size are limited ([`PackageLimits`]); inflated bytes are counted while streamed
//! (header sizes are not trusted) and documents are hashed as they come out of the ZIP.

use std::collections::HashSet;
use std::io::{Read, Seek, Write};

use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::{DocumentHash, digest_reader};

/// The `mimetype` entry's content for ASiC-E.
pub const MIMETYPE: &str = "application/vnd.etsi.asic-e+zip";
/// Our manifest: roles and digests of the documents.
pub const MANIFEST: &str = "META-INF/tandem-package.json";
/// The reserved slot for the proof of origin.
pub const PROOF_OF_ORIGIN: &str = "META-INF/proof-of-origin.p7s";
/// The manifest's format version.
pub const MANIFEST_VERSION: u32 = 1;

/// Inflated sizes below this are not held to the compression ratio (small files of zeros or
/// repeated text compress far better than documents do).
const RATIO_FLOOR: u64 = 1024 * 1024;

/// A document's role in the package (the seed's "Schriftsatz" and "Anlage").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The main document (exactly one per package).
    Main,
    /// An attachment.
    Attachment,
}

/// One document as listed in [`MANIFEST`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestDocument {
    /// The entry name at the root of the ZIP.
    pub name: String,
    /// Main document or attachment.
    pub role: Role,
    /// The document's SHA-256 digest, lower-case hex.
    pub sha256: String,
    /// The media type, e.g. `application/pdf`.
    pub media_type: String,
    /// The entry holding its detached CAdES signature (`META-INF/signatures<N>.p7s`).
    pub signature: String,
}

/// The content of [`MANIFEST`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The documents, main document first.
    pub documents: Vec<ManifestDocument>,
}

/// Limits for reading a package; refusals beyond them are [`AsicError`]s, never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackageLimits {
    /// Entries in the ZIP, directories included.
    pub max_entries: usize,
    /// Inflated bytes of one entry.
    pub max_entry_size: u64,
    /// Inflated bytes of all entries together.
    pub max_total_size: u64,
    /// Inflated bytes per compressed byte, checked once an entry passes 1 MiB.
    pub max_ratio: u64,
    /// Bytes of the manifest, a signature or the proof of origin (these are held in memory).
    pub max_metadata_size: u64,
}

impl Default for PackageLimits {
    fn default() -> Self {
        Self {
            max_entries: 1000,
            max_entry_size: 512 * 1024 * 1024,
            max_total_size: 2 * 1024 * 1024 * 1024,
            max_ratio: 100,
            max_metadata_size: 1024 * 1024,
        }
    }
}

/// Why a package was refused (written or read). The verification maps reading errors to
/// FORMAT_FAILURE.
#[derive(Debug, thiserror::Error)]
pub enum AsicError {
    /// Not a readable ZIP (truncated, random bytes, broken headers).
    #[error("not a readable ZIP archive: {0}")]
    Zip(String),
    /// Reading or writing failed.
    #[error("I/O error in the package: {0}")]
    Io(#[from] std::io::Error),
    /// `mimetype` missing, not first, compressed, with an extra field or wrong content.
    #[error("the package's first entry must be `mimetype`, stored, with `{MIMETYPE}`: {0}")]
    Mimetype(&'static str),
    /// A name that is not a plain relative UTF-8 path.
    #[error("unsafe entry name {0:?}: {1}")]
    UnsafeName(String, &'static str),
    /// Two entries with the same name (also ignoring case).
    #[error("duplicate entry name {0:?}")]
    DuplicateName(String),
    /// More entries than [`PackageLimits::max_entries`].
    #[error("the package has {0} entries, more than the limit of {1}")]
    TooManyEntries(usize, usize),
    /// An entry inflates to more than [`PackageLimits::max_entry_size`] (or the metadata limit).
    #[error("entry {0:?} is larger than the limit of {1} bytes")]
    EntryTooLarge(String, u64),
    /// All entries together inflate to more than [`PackageLimits::max_total_size`].
    #[error("the package is larger than the limit of {0} bytes uncompressed")]
    TotalTooLarge(u64),
    /// An entry inflates beyond [`PackageLimits::max_ratio`] (a decompression bomb).
    #[error("entry {0:?} inflates more than {1} times its compressed size")]
    CompressionRatio(String, u64),
    /// An entry inflates to more bytes than its header declares (a decompression bomb).
    #[error("entry {0:?} inflates to more than its header declares")]
    SizeMismatch(String),
    /// An encrypted entry.
    #[error("entry {0:?} is encrypted")]
    Encrypted(String),
    /// A compression method other than stored or deflate.
    #[error("entry {0:?} uses an unsupported compression method")]
    UnsupportedCompression(String),
    /// The manifest is missing or does not parse.
    #[error("bad package manifest {MANIFEST}: {0}")]
    Manifest(String),
    /// The manifest names an entry the ZIP does not have.
    #[error("the manifest names {0:?}, which is not in the package")]
    MissingFile(String),
    /// An entry the manifest does not name.
    #[error("entry {0:?} is not named by the manifest")]
    UnlistedFile(String),
    /// A document's SHA-256 differs from the manifest's.
    #[error("document {0:?} does not match its digest in the manifest")]
    DigestMismatch(String),
    /// Writing: not exactly one main document.
    #[error("a package needs exactly one main document, not {0}")]
    MainDocuments(usize),
}

fn zip_err(e: zip::result::ZipError) -> AsicError {
    match e {
        zip::result::ZipError::Io(e) => AsicError::Io(e),
        e => AsicError::Zip(e.to_string()),
    }
}

/// Checks an entry name: UTF-8 (the caller has a `str`), not empty, no leading `/`, no `\`,
/// no `..` or empty component, no control characters, no drive letter.
pub fn check_name(name: &str) -> Result<(), AsicError> {
    let bad = |why| Err(AsicError::UnsafeName(name.to_owned(), why));
    if name.is_empty() {
        return bad("empty");
    }
    if name.starts_with('/') {
        return bad("absolute path");
    }
    if name.contains('\\') {
        return bad("backslash");
    }
    if name.chars().any(char::is_control) {
        return bad("control character");
    }
    if name.contains(':') {
        return bad("colon (drive letter or stream)");
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    if body
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("empty, `.` or `..` path component");
    }
    Ok(())
}

/// Writes a package, streaming each document into the ZIP while hashing it.
pub struct PackageWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    manifest: Manifest,
    names: HashSet<String>,
}

impl<W: Write + Seek> PackageWriter<W> {
    /// Starts a package on `out`, writing `mimetype` (stored, no extra field).
    pub fn new(out: W) -> Result<Self, AsicError> {
        let mut zip = ZipWriter::new(out);
        zip.start_file(MIMETYPE_NAME, stored()).map_err(zip_err)?;
        zip.write_all(MIMETYPE.as_bytes())?;
        Ok(Self {
            zip,
            manifest: Manifest {
                version: MANIFEST_VERSION,
                documents: Vec::new(),
            },
            names: HashSet::new(),
        })
    }

    /// Adds a document at the root (`name` without `/`) with its detached CAdES signature
    /// (DER `.p7s`). Returns the document's SHA-256.
    pub fn add_document(
        &mut self,
        name: &str,
        role: Role,
        media_type: &str,
        document: impl Read,
        signature: &[u8],
    ) -> Result<Vec<u8>, AsicError> {
        check_name(name)?;
        if name.contains('/') {
            return Err(AsicError::UnsafeName(
                name.to_owned(),
                "documents go at the root",
            ));
        }
        if name.eq_ignore_ascii_case(MIMETYPE_NAME) {
            return Err(AsicError::UnsafeName(name.to_owned(), "reserved name"));
        }
        if !self.names.insert(name.to_lowercase()) {
            return Err(AsicError::DuplicateName(name.to_owned()));
        }
        let n = self.manifest.documents.len() + 1;
        let sig_name = format!("META-INF/signatures{n}.p7s");
        self.zip.start_file(name, deflated()).map_err(zip_err)?;
        let digest = digest_reader(
            DocumentHash::Sha256,
            Tee {
                inner: document,
                out: &mut self.zip,
            },
        )?;
        self.zip
            .start_file(sig_name.as_str(), deflated())
            .map_err(zip_err)?;
        self.zip.write_all(signature)?;
        self.manifest.documents.push(ManifestDocument {
            name: name.to_owned(),
            role,
            sha256: hex::encode(&digest),
            media_type: media_type.to_owned(),
            signature: sig_name,
        });
        Ok(digest)
    }

    /// Writes the manifest and, when given, the proof of origin; returns the output.
    pub fn finish(mut self, proof_of_origin: Option<&[u8]>) -> Result<W, AsicError> {
        let mains = self
            .manifest
            .documents
            .iter()
            .filter(|d| d.role == Role::Main)
            .count();
        if mains != 1 {
            return Err(AsicError::MainDocuments(mains));
        }
        let json = serde_json::to_vec_pretty(&self.manifest)
            .map_err(|e| AsicError::Manifest(e.to_string()))?;
        self.zip.start_file(MANIFEST, deflated()).map_err(zip_err)?;
        self.zip.write_all(&json)?;
        if let Some(proof) = proof_of_origin {
            self.zip
                .start_file(PROOF_OF_ORIGIN, deflated())
                .map_err(zip_err)?;
            self.zip.write_all(proof)?;
        }
        self.zip.finish().map_err(zip_err)
    }
}

impl<W: Write + Seek> std::fmt::Debug for PackageWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageWriter")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

const MIMETYPE_NAME: &str = "mimetype";

fn stored() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
}

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

/// Copies what is read into `out` as well (the document goes into the ZIP while hashed).
struct Tee<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A document read from a package (its bytes were hashed, not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageDocument {
    /// The manifest's entry: name, role, digest, media type, signature entry.
    pub entry: ManifestDocument,
    /// The SHA-256 computed while streaming the document (equal to the manifest's).
    pub sha256: Vec<u8>,
    /// The detached CAdES signature (DER).
    pub signature: Vec<u8>,
}

/// A package read and checked by [`read_package`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The documents in manifest order, main document first.
    pub documents: Vec<PackageDocument>,
    /// The proof of origin (DER CMS), if the package has one.
    pub proof_of_origin: Option<Vec<u8>>,
}

/// Reads and checks a package within `limits`. The ZIP's central directory is parsed whole
/// (its size is bounded by the input's); documents are hashed as they are inflated.
pub fn read_package<R: Read + Seek>(
    input: R,
    limits: &PackageLimits,
) -> Result<Package, AsicError> {
    let mut zip = ZipArchive::new(input).map_err(zip_err)?;
    if zip.has_duplicate_names() {
        return Err(AsicError::DuplicateName(
            "(same name twice in the central directory)".into(),
        ));
    }
    if zip.len() > limits.max_entries {
        return Err(AsicError::TooManyEntries(zip.len(), limits.max_entries));
    }
    // Names, flags, methods and the case-insensitive duplicate check, from the headers.
    let mut names = Vec::with_capacity(zip.len());
    let mut lower = HashSet::new();
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).map_err(zip_err)?;
        let name = std::str::from_utf8(f.name_raw())
            .map_err(|_| {
                AsicError::UnsafeName(
                    String::from_utf8_lossy(f.name_raw()).into_owned(),
                    "not UTF-8",
                )
            })?
            .to_owned();
        check_name(&name)?;
        if f.encrypted() {
            return Err(AsicError::Encrypted(name));
        }
        if !matches!(
            f.compression(),
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(AsicError::UnsupportedCompression(name));
        }
        if f.size() > limits.max_entry_size {
            return Err(AsicError::EntryTooLarge(name, limits.max_entry_size));
        }
        if !lower.insert(name.to_lowercase()) {
            return Err(AsicError::DuplicateName(name));
        }
        if i == 0 {
            if name != MIMETYPE_NAME || f.header_start() != 0 {
                return Err(AsicError::Mimetype("not the first entry"));
            }
            if f.compression() != CompressionMethod::Stored {
                return Err(AsicError::Mimetype("compressed"));
            }
            if f.extra_data().is_some_and(|e| !e.is_empty()) {
                return Err(AsicError::Mimetype("has an extra field"));
            }
        }
        if f.is_dir() && f.size() > 0 {
            return Err(AsicError::UnlistedFile(name));
        }
        names.push((name, f.is_dir()));
    }
    if names.is_empty() {
        return Err(AsicError::Mimetype("empty archive"));
    }
    let mut budget = Budget { limits, total: 0 };
    let mimetype = budget.read_small(&mut zip, 0, &names[0].0)?;
    if mimetype != MIMETYPE.as_bytes() {
        return Err(AsicError::Mimetype("wrong content"));
    }
    let index = |name: &str| names.iter().position(|(n, _)| n == name);
    let manifest_idx = index(MANIFEST).ok_or_else(|| AsicError::Manifest("missing".into()))?;
    let raw = budget.read_small(&mut zip, manifest_idx, MANIFEST)?;
    let manifest: Manifest =
        serde_json::from_slice(&raw).map_err(|e| AsicError::Manifest(e.to_string()))?;
    check_manifest(&manifest)?;

    // Every file must be the mimetype, the manifest, the proof, or named by the manifest.
    let mut listed: HashSet<&str> = [MIMETYPE_NAME, MANIFEST, PROOF_OF_ORIGIN].into();
    for d in &manifest.documents {
        listed.insert(&d.name);
        listed.insert(&d.signature);
    }
    for (name, is_dir) in &names {
        if !is_dir && !listed.contains(name.as_str()) {
            return Err(AsicError::UnlistedFile(name.clone()));
        }
    }
    let mut documents = Vec::with_capacity(manifest.documents.len());
    for d in &manifest.documents {
        let doc_idx = index(&d.name).ok_or_else(|| AsicError::MissingFile(d.name.clone()))?;
        let sig_idx =
            index(&d.signature).ok_or_else(|| AsicError::MissingFile(d.signature.clone()))?;
        let sha256 = budget.hash(&mut zip, doc_idx, &d.name)?;
        if hex::encode(&sha256) != d.sha256 {
            return Err(AsicError::DigestMismatch(d.name.clone()));
        }
        let signature = budget.read_small(&mut zip, sig_idx, &d.signature)?;
        documents.push(PackageDocument {
            entry: d.clone(),
            sha256,
            signature,
        });
    }
    let proof_of_origin = match index(PROOF_OF_ORIGIN) {
        Some(i) => Some(budget.read_small(&mut zip, i, PROOF_OF_ORIGIN)?),
        None => None,
    };
    Ok(Package {
        documents,
        proof_of_origin,
    })
}

/// Streams the document `name` of a package into `out` (in 64 KiB chunks, within
/// `limits`), hashing it on the way, and checks its SHA-256 against the manifest's.
/// Returns the number of bytes written. On [`AsicError::DigestMismatch`] the bytes were
/// written already: the caller discards them. Checks only the manifest and this entry;
/// [`read_package`] checks the whole package.
pub fn extract_document<R: Read + Seek, W: Write>(
    input: R,
    name: &str,
    mut out: W,
    limits: &PackageLimits,
) -> Result<u64, AsicError> {
    let mut zip = ZipArchive::new(input).map_err(zip_err)?;
    let mut budget = Budget { limits, total: 0 };
    let manifest_idx = zip
        .index_for_name(MANIFEST)
        .ok_or_else(|| AsicError::Manifest("missing".into()))?;
    let raw = budget.read_small(&mut zip, manifest_idx, MANIFEST)?;
    let manifest: Manifest =
        serde_json::from_slice(&raw).map_err(|e| AsicError::Manifest(e.to_string()))?;
    check_manifest(&manifest)?;
    let entry = manifest
        .documents
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| AsicError::MissingFile(name.to_owned()))?;
    let idx = zip
        .index_for_name(name)
        .ok_or_else(|| AsicError::MissingFile(name.to_owned()))?;
    let mut digest = Vec::new();
    let before = budget.total;
    budget.stream(&mut zip, idx, name, limits.max_entry_size, |r| {
        let mut tee = Tee {
            inner: r,
            out: &mut out,
        };
        digest = digest_reader(DocumentHash::Sha256, &mut tee)?;
        Ok(())
    })?;
    out.flush()?;
    if hex::encode(&digest) != entry.sha256 {
        return Err(AsicError::DigestMismatch(name.to_owned()));
    }
    Ok(budget.total - before)
}

fn check_manifest(m: &Manifest) -> Result<(), AsicError> {
    let bad = |s: &str| Err(AsicError::Manifest(s.to_owned()));
    if m.version != MANIFEST_VERSION {
        return bad("unknown version");
    }
    let mains = m.documents.iter().filter(|d| d.role == Role::Main).count();
    if mains != 1 {
        return Err(AsicError::MainDocuments(mains));
    }
    let mut seen = HashSet::new();
    for d in &m.documents {
        for n in [&d.name, &d.signature] {
            if !seen.insert(n.to_lowercase()) {
                return Err(AsicError::DuplicateName(n.clone()));
            }
            if [MIMETYPE_NAME, MANIFEST, PROOF_OF_ORIGIN]
                .iter()
                .any(|r| r.eq_ignore_ascii_case(n))
            {
                return bad("a document or signature takes a reserved name");
            }
        }
        check_name(&d.name)?;
        check_name(&d.signature)?;
        if d.name.contains('/') || !d.signature.starts_with("META-INF/") {
            return bad("documents go at the root, signatures under META-INF/");
        }
        if d.sha256.len() != 64 || hex::decode(&d.sha256).is_err() {
            return bad("sha256 is not 64 hex digits");
        }
    }
    Ok(())
}

/// Counts inflated bytes against the limits while entries are read.
struct Budget<'a> {
    limits: &'a PackageLimits,
    total: u64,
}

impl Budget<'_> {
    fn read_small<R: Read + Seek>(
        &mut self,
        zip: &mut ZipArchive<R>,
        i: usize,
        name: &str,
    ) -> Result<Vec<u8>, AsicError> {
        let max = self
            .limits
            .max_metadata_size
            .min(self.limits.max_entry_size);
        let mut out = Vec::new();
        self.stream(zip, i, name, max, |r| r.read_to_end(&mut out).map(|_| ()))?;
        Ok(out)
    }

    fn hash<R: Read + Seek>(
        &mut self,
        zip: &mut ZipArchive<R>,
        i: usize,
        name: &str,
    ) -> Result<Vec<u8>, AsicError> {
        let mut digest = Vec::new();
        let max = self.limits.max_entry_size;
        self.stream(zip, i, name, max, |r| {
            digest = digest_reader(DocumentHash::Sha256, r)?;
            Ok(())
        })?;
        Ok(digest)
    }

    fn stream<R: Read + Seek>(
        &mut self,
        zip: &mut ZipArchive<R>,
        i: usize,
        name: &str,
        max: u64,
        consume: impl FnOnce(&mut dyn Read) -> std::io::Result<()>,
    ) -> Result<(), AsicError> {
        let f = zip.by_index(i).map_err(zip_err)?;
        let compressed = f.compressed_size();
        let declared = f.size();
        let mut counted = Counted {
            inner: f,
            n: 0,
            max,
            total_before: self.total,
            max_total: self.limits.max_total_size,
            ratio_max: compressed
                .saturating_mul(self.limits.max_ratio)
                .max(RATIO_FLOOR),
            refused: None,
        };
        let result = consume(&mut counted);
        if let Some(why) = counted.refused {
            return Err(match why {
                Refusal::Entry => AsicError::EntryTooLarge(name.to_owned(), max),
                Refusal::Total => AsicError::TotalTooLarge(self.limits.max_total_size),
                Refusal::Ratio => {
                    AsicError::CompressionRatio(name.to_owned(), self.limits.max_ratio)
                }
            });
        }
        if let Err(e) = &result {
            // The zip crate stops an entry that inflates past its declared size with this
            // error (a CRC mismatch is InvalidData too, with another message).
            if e.kind() == std::io::ErrorKind::InvalidData
                && e.to_string().contains("declared uncompressed size")
                && declared < max
            {
                return Err(AsicError::SizeMismatch(name.to_owned()));
            }
        }
        result.map_err(|e| AsicError::Zip(format!("entry {name:?}: {e}")))?;
        self.total += counted.n;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Refusal {
    Entry,
    Total,
    Ratio,
}

/// A reader that stops with an error once the inflated bytes pass a limit.
struct Counted<R> {
    inner: R,
    n: u64,
    max: u64,
    total_before: u64,
    max_total: u64,
    ratio_max: u64,
    refused: Option<Refusal>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        let refusal = if self.n > self.max {
            Some(Refusal::Entry)
        } else if self.total_before + self.n > self.max_total {
            Some(Refusal::Total)
        } else if self.n > self.ratio_max {
            Some(Refusal::Ratio)
        } else {
            None
        };
        if let Some(r) = refusal {
            self.refused = Some(r);
            return Err(std::io::Error::other("limit exceeded"));
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests;
