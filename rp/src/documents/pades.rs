//! PAdES baseline B-B (ETSI EN 319 142-1) signatures of PDFs, made in two steps around the
//! RP API's RAW_DIGEST_SIGNATURE like [`super::cades`]:
//!
//! ```text
//!  in.pdf ─PdfReader (trailer, xref, catalog, page, AcroForm only)─┐
//!  signer, issuing CA, hash, scheme, /M time, appearance ──────────┼─ prepare()
//!    out.pdf.part = in.pdf bytes (copied, hashed on the way)       │
//!                 + incremental update: signature dictionary with  │
//!                   /Contents <00…> reserved, widget, catalog,     │
//!                   page, xref (table or stream), trailer /Prev    ▼
//!  PreparedPades: digest_to_sign() = H(signed attributes), message-digest = H(/ByteRange)
//!    signed_cms(signature) ─▶ CMS (CAdES without signing-time) [+ time stamp: B-T]
//!    finish(cms) ─▶ writes the hex into /Contents, renames .part to out.pdf
//! ```
//!
//! The original bytes are never changed, so earlier signatures' `/ByteRange`s stay valid.
//! The file is read twice at most in 1 MiB chunks (the copy, which also hashes it); only the
//! few objects the update needs are parsed.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use openssl::nid::Nid;
use openssl::x509::X509;
use sha2::Digest as _;

use super::DocumentHash;
use super::cades::{self, CadesError, CadesInput, CadesScheme, PreparedCades};
use super::pdf::reader::PdfReader;
use super::pdf::{Dict, Obj, PdfError};

/// Bytes reserved for the CMS in `/Contents` by default (hex: twice as many characters):
/// enough for a 4096-bit signature, two certificates and a time-stamp token.
pub const DEFAULT_CONTENTS_SIZE: usize = 24 * 1024;
/// Chunk size of the copy that hashes the original.
const CHUNK: usize = 1024 * 1024;
/// Width reserved for the `/ByteRange` array.
const BYTE_RANGE_WIDTH: usize = 48;
/// Deepest page tree walked.
const MAX_PAGE_TREE_DEPTH: usize = 64;

/// Why a PDF could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PadesError {
    /// The input PDF cannot be read or updated.
    #[error(transparent)]
    Pdf(#[from] PdfError),
    /// The CMS could not be built.
    #[error(transparent)]
    Cades(#[from] CadesError),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
    /// The page asked for does not exist.
    #[error("the PDF has no page {page} (it has {pages})")]
    NoSuchPage {
        /// The page asked for (1-based).
        page: u32,
        /// The number of pages found.
        pages: u32,
    },
    /// The CMS is larger than the space reserved in `/Contents`.
    #[error("the signature is {got} bytes, only {reserved} are reserved in /Contents")]
    ContentsTooSmall {
        /// The CMS's size.
        got: usize,
        /// The reserved size.
        reserved: usize,
    },
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> PadesError + '_ {
    move |e| PadesError::Io(format!("{}: {e}", what.display()))
}

/// Where the signature shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Appearance {
    /// A widget with `/Rect [0 0 0 0]` on the first page.
    Invisible,
    /// A box on a page with the signer's name and the signing time.
    Visible {
        /// The page, 1-based.
        page: u32,
        /// Lower-left x, lower-left y, width, height in PDF points.
        rect: [f64; 4],
    },
}

/// What [`prepare`] needs besides the files.
#[derive(Debug, Clone)]
pub struct PadesInput<'a> {
    /// The signer's certificate, DER.
    pub signer_certificate_der: &'a [u8],
    /// The certificate of the CA that issued it, DER.
    pub issuer_certificate_der: &'a [u8],
    /// The hash of the byte ranges and the signed attributes.
    pub hash: DocumentHash,
    /// The RSA signature scheme.
    pub scheme: CadesScheme,
    /// The claimed signing time (`/M`; no signing-time attribute in PAdES).
    pub signing_time: SystemTime,
    /// Invisible or visible.
    pub appearance: Appearance,
    /// Bytes reserved for the CMS ([`DEFAULT_CONTENTS_SIZE`]).
    pub contents_size: usize,
}

/// Step 1 done: `<out>.part` holds the PDF with the update and an empty `/Contents`.
/// Dropped without [`PreparedPades::finish`], it removes `<out>.part`.
#[derive(Debug)]
pub struct PreparedPades {
    cades: PreparedCades,
    part: PathBuf,
    out: PathBuf,
    /// Offset of the first hex digit of `/Contents`.
    contents_offset: u64,
    contents_size: usize,
    finished: bool,
}

impl Drop for PreparedPades {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

impl PreparedPades {
    /// What the RP API signs: the digest of the signed attributes.
    pub fn digest_to_sign(&self) -> &[u8] {
        self.cades.digest_to_sign()
    }

    /// The hash algorithm.
    pub fn hash(&self) -> DocumentHash {
        self.cades.hash()
    }

    /// Step 2: checks the signature and builds the CMS (the `/Contents` of a PAdES-B-B
    /// signature; a time stamp over its signature value may be added before
    /// [`Self::finish`], see [`super::timestamp::stamp_cades`]).
    pub fn signed_cms(&self, signature: &[u8]) -> Result<Vec<u8>, PadesError> {
        Ok(self.cades.clone().finish(signature)?)
    }

    /// Step 3: writes `cms` into `/Contents` and moves the file to its name.
    pub fn finish(mut self, cms: &[u8]) -> Result<PathBuf, PadesError> {
        if cms.len() > self.contents_size {
            return Err(PadesError::ContentsTooSmall {
                got: cms.len(),
                reserved: self.contents_size,
            });
        }
        let hex = hex::encode_upper(cms);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.part)
            .map_err(io(&self.part))?;
        f.seek(SeekFrom::Start(self.contents_offset))
            .map_err(io(&self.part))?;
        f.write_all(hex.as_bytes()).map_err(io(&self.part))?;
        f.sync_all().map_err(io(&self.part))?;
        std::fs::rename(&self.part, &self.out).map_err(io(&self.out))?;
        self.finished = true;
        Ok(self.out.clone())
    }
}

/// An incremental hasher for the three document hashes.
enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(h: DocumentHash) -> Self {
        match h {
            DocumentHash::Sha256 => Self::Sha256(sha2::Sha256::new()),
            DocumentHash::Sha384 => Self::Sha384(sha2::Sha384::new()),
            DocumentHash::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }
    fn update(&mut self, d: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(d),
            Self::Sha384(h) => h.update(d),
            Self::Sha512(h) => h.update(d),
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// Step 1: reads what the update needs from `input`, writes `<out>.part` (the original
/// bytes and the update), hashes the `/ByteRange`, and prepares the CMS's signed
/// attributes.
pub fn prepare(input: &Path, out: &Path, p: &PadesInput<'_>) -> Result<PreparedPades, PadesError> {
    let file = File::open(input).map_err(io(input))?;
    let mut reader = PdfReader::open(BufReader::new(file))?;
    let signer = X509::from_der(p.signer_certificate_der).map_err(|e| CadesError::Certificate {
        which: "signer",
        reason: e.to_string(),
    })?;
    let update = build_update(&mut reader, p, &signer_name(&signer))?;
    let orig_len = reader.len();
    drop(reader);

    // Absolute positions: the update follows the original bytes.
    let contents_start = orig_len + update.contents_lt as u64; // the '<'
    let contents_end = contents_start + 2 + 2 * p.contents_size as u64; // after '>'
    let total = orig_len + update.bytes.len() as u64;
    let mut bytes = update.bytes;
    let range = format!(
        "[0 {contents_start} {contents_end} {}]",
        total - contents_end
    );
    let slot = &mut bytes[update.byte_range_at..update.byte_range_at + BYTE_RANGE_WIDTH];
    slot.fill(b' ');
    slot[..range.len()].copy_from_slice(range.as_bytes());

    // Copy the original while hashing it, then the update.
    let part = part_path(out);
    let mut hasher = Hasher::new(p.hash);
    let result = (|| -> Result<(), PadesError> {
        let mut dst = File::create(&part).map_err(io(&part))?;
        copy_prefix(input, orig_len, &part, &mut dst, |c| hasher.update(c))?;
        let lt = update.contents_lt;
        let gt = lt + 2 + 2 * p.contents_size;
        hasher.update(&bytes[..lt]);
        hasher.update(&bytes[gt..]);
        dst.write_all(&bytes).map_err(io(&part))?;
        dst.sync_all().map_err(io(&part))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    let digest = hasher.finish();
    let cades = cades::prepare_pades(&CadesInput {
        document_digest: &digest,
        signer_certificate_der: p.signer_certificate_der,
        issuer_certificate_der: p.issuer_certificate_der,
        hash: p.hash,
        scheme: p.scheme,
        signing_time: p.signing_time,
    });
    let cades = match cades {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e.into());
        }
    };
    Ok(PreparedPades {
        cades,
        part,
        out: out.to_path_buf(),
        contents_offset: contents_start + 1,
        contents_size: p.contents_size,
        finished: false,
    })
}

/// Copies the first `len` bytes of `input` to `dst` (the file `part`) in [`CHUNK`]s, each
/// also given to `on_chunk`; an input shorter than `len` is an error.
pub(super) fn copy_prefix(
    input: &Path,
    len: u64,
    part: &Path,
    dst: &mut File,
    mut on_chunk: impl FnMut(&[u8]),
) -> Result<(), PadesError> {
    let mut src = File::open(input).map_err(io(input))?;
    let mut buf = vec![0u8; CHUNK];
    let mut copied = 0u64;
    while copied < len {
        let n = src.read(&mut buf).map_err(io(input))?;
        if n == 0 {
            return Err(PadesError::Io(format!(
                "{}: changed while updating it",
                input.display()
            )));
        }
        let n = n.min((len - copied) as usize);
        on_chunk(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(io(part))?;
        copied += n as u64;
    }
    Ok(())
}

pub(super) fn part_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// The signer's name for the visible appearance: the certificate's CN.
fn signer_name(cert: &X509) -> String {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_else(|| "unknown signer".into())
}

/// The update's bytes (to append after the original), with the positions to patch.
struct Update {
    bytes: Vec<u8>,
    /// Offset in `bytes` of the `<` of `/Contents`.
    contents_lt: usize,
    /// Offset in `bytes` of the `/ByteRange` slot.
    byte_range_at: usize,
}

/// `D:YYYYMMDDHHmmSSZ`.
fn pdf_date(t: SystemTime) -> Result<String, PadesError> {
    let d =
        der::DateTime::from_system_time(t).map_err(|e| CadesError::SigningTime(e.to_string()))?;
    Ok(format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minutes(),
        d.seconds()
    ))
}

/// The page object (reference and dictionary) with 0-based `index`.
fn find_page<R: Read + Seek>(
    r: &mut PdfReader<R>,
    catalog: &Dict,
    index: u32,
) -> Result<((u32, u16), Dict), PadesError> {
    let bad = |w: &str| PadesError::Pdf(PdfError::Malformed(w.into()));
    let Some(Obj::Ref(mut n, mut g)) = catalog.get("Pages").cloned() else {
        return Err(bad("the catalog has no /Pages reference"));
    };
    let mut left = index;
    let mut total = None;
    for _ in 0..MAX_PAGE_TREE_DEPTH {
        let node = r.object(n)?;
        let Some(d) = node.as_dict().cloned() else {
            return Err(bad("a page tree node is not a dictionary"));
        };
        if total.is_none() {
            total = d.int("Count");
        }
        if d.is_name("Type", "Page") || d.get("Kids").is_none() {
            if left == 0 {
                return Ok(((n, g), d));
            }
            break;
        }
        let kids = match r.resolve(d.get("Kids").unwrap_or(&Obj::Null))? {
            Obj::Array(a) => a,
            _ => return Err(bad("/Kids is not an array")),
        };
        let mut next = None;
        for kid in kids {
            let Obj::Ref(kn, kg) = kid else {
                return Err(bad("a /Kids entry is not a reference"));
            };
            let k = r.object(kn)?;
            let kd = k
                .as_dict()
                .ok_or_else(|| bad("a page is not a dictionary"))?;
            let count = if kd.get("Kids").is_some() && !kd.is_name("Type", "Page") {
                kd.int("Count").unwrap_or(0).max(0) as u32
            } else {
                1
            };
            if left < count {
                next = Some((kn, kg));
                break;
            }
            left -= count;
        }
        match next {
            Some((kn, kg)) => (n, g) = (kn, kg),
            None => break,
        }
    }
    Err(PadesError::NoSuchPage {
        page: index + 1,
        pages: total.unwrap_or(0).max(0) as u32,
    })
}

/// PDF text for a literal string in WinAnsi (Latin-1 here; others as `?`).
fn pdf_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if (c as u32) >= 0xa0 && (c as u32) <= 0xff => {
                out.push_str(&format!("\\{:03o}", c as u32));
            }
            _ => out.push('?'),
        }
    }
    out
}

fn real(x: f64) -> Obj {
    Obj::Real(format!("{x:.2}"))
}

/// The appearance stream of a visible signature: a framed box with two lines of text.
fn appearance_stream(w: f64, h: f64, name: &str, date: &str, font: u32) -> Obj {
    let size = ((h - 8.0) / 2.6).clamp(4.0, 12.0);
    let content = format!(
        "q 0.94 0.96 1 rg 0 0 {w:.2} {h:.2} re f Q\n\
         q 0.2 0.3 0.6 RG 1 w 0.5 0.5 {:.2} {:.2} re S Q\n\
         BT 0 0 0 rg /F1 {size:.2} Tf 4 {:.2} Td ({}) Tj 0 {:.2} Td ({}) Tj ET\n",
        w - 1.0,
        h - 1.0,
        h - size - 3.0,
        pdf_text(&format!("Signed by {name}")),
        -(size + 2.0),
        pdf_text(&format!("Date: {date}")),
    );
    let mut d = Dict::default();
    d.set("Type", Obj::name("XObject"));
    d.set("Subtype", Obj::name("Form"));
    d.set(
        "BBox",
        Obj::Array(vec![Obj::Int(0), Obj::Int(0), real(w), real(h)]),
    );
    let mut fonts = Dict::default();
    fonts.set("F1", Obj::Ref(font, 0));
    let mut res = Dict::default();
    res.set("Font", Obj::Dict(fonts));
    d.set("Resources", Obj::Dict(res));
    Obj::Stream(d, content.into_bytes())
}

/// Builds the incremental update.
fn build_update<R: Read + Seek>(
    r: &mut PdfReader<R>,
    p: &PadesInput<'_>,
    name: &str,
) -> Result<Update, PadesError> {
    let bad = |w: &str| PadesError::Pdf(PdfError::Malformed(w.into()));
    let Some(Obj::Ref(root_n, root_g)) = r.trailer.get("Root").cloned() else {
        return Err(bad("the trailer has no /Root"));
    };
    let mut catalog = match r.object(root_n)? {
        Obj::Dict(d) => d,
        _ => return Err(bad("the catalog is not a dictionary")),
    };
    let page_index = match &p.appearance {
        Appearance::Invisible => 0,
        Appearance::Visible { page, .. } => page
            .checked_sub(1)
            .ok_or(PadesError::NoSuchPage { page: 0, pages: 0 })?,
    };
    let ((page_n, page_g), mut page) = find_page(r, &catalog, page_index)?;

    // The AcroForm: its own object, or inline in the catalog.
    let acro = catalog.get("AcroForm").cloned();
    let (acro_ref, mut acroform) = match acro {
        Some(Obj::Ref(n, g)) => match r.object(n)? {
            Obj::Dict(d) => (Some((n, g)), d),
            Obj::Null => (None, Dict::default()),
            _ => return Err(bad("/AcroForm is not a dictionary")),
        },
        Some(Obj::Dict(d)) => (None, d),
        _ => (None, Dict::default()),
    };
    let mut fields = match r.resolve(acroform.get("Fields").unwrap_or(&Obj::Null))? {
        Obj::Array(a) => a,
        Obj::Null => Vec::new(),
        _ => return Err(bad("/Fields is not an array")),
    };
    let mut names = Vec::new();
    for f in &fields {
        if let Some(Obj::Str(t)) = r.resolve(f)?.as_dict().and_then(|d| d.get("T")).cloned() {
            names.push(t);
        }
    }
    let field_name = (1..)
        .map(|i| format!("Signature{i}").into_bytes())
        .find(|n| !names.contains(n))
        .unwrap_or_default();

    let first = r.size();
    let (sig_n, widget_n, ap_n, font_n) = (first, first + 1, first + 2, first + 3);
    // The first number not used by the update.
    let next_free = match p.appearance {
        Appearance::Invisible => first + 2,
        Appearance::Visible { .. } => first + 4,
    };
    let date = pdf_date(p.signing_time)?;

    let mut widget = Dict::default();
    widget.set("Type", Obj::name("Annot"));
    widget.set("Subtype", Obj::name("Widget"));
    widget.set("FT", Obj::name("Sig"));
    widget.set("T", Obj::Str(field_name));
    widget.set("V", Obj::Ref(sig_n, 0));
    widget.set("P", Obj::Ref(page_n, page_g));
    // Print (4) and Locked (128).
    widget.set("F", Obj::Int(132));
    let mut objects: Vec<(u32, u16, Obj)> = Vec::new();
    match &p.appearance {
        Appearance::Invisible => {
            widget.set("Rect", Obj::Array(vec![Obj::Int(0); 4]));
        }
        Appearance::Visible { rect, .. } => {
            let [x, y, w, h] = *rect;
            if !(w > 0.0
                && h > 0.0
                && x.is_finite()
                && y.is_finite()
                && w.is_finite()
                && h.is_finite())
            {
                return Err(PadesError::Pdf(PdfError::Unsupported(
                    "the visible signature's width and height must be positive".into(),
                )));
            }
            widget.set(
                "Rect",
                Obj::Array(vec![real(x), real(y), real(x + w), real(y + h)]),
            );
            let mut ap = Dict::default();
            ap.set("N", Obj::Ref(ap_n, 0));
            widget.set("AP", Obj::Dict(ap));
            let shown = format!(
                "{}-{}-{} {}:{}:{} UTC",
                &date[2..6],
                &date[6..8],
                &date[8..10],
                &date[10..12],
                &date[12..14],
                &date[14..16]
            );
            objects.push((ap_n, 0, appearance_stream(w, h, name, &shown, font_n)));
            let mut font = Dict::default();
            font.set("Type", Obj::name("Font"));
            font.set("Subtype", Obj::name("Type1"));
            font.set("BaseFont", Obj::name("Helvetica"));
            font.set("Encoding", Obj::name("WinAnsiEncoding"));
            objects.push((font_n, 0, Obj::Dict(font)));
        }
    }
    objects.push((widget_n, 0, Obj::Dict(widget)));

    fields.push(Obj::Ref(widget_n, 0));
    acroform.set("Fields", Obj::Array(fields));
    acroform.set("SigFlags", Obj::Int(3));
    match acro_ref {
        Some((n, g)) => objects.push((n, g, Obj::Dict(acroform))),
        None => catalog.set("AcroForm", Obj::Dict(acroform)),
    }
    let mut annots = match r.resolve(page.get("Annots").unwrap_or(&Obj::Null))? {
        Obj::Array(a) => a,
        Obj::Null => Vec::new(),
        _ => return Err(bad("/Annots is not an array")),
    };
    annots.push(Obj::Ref(widget_n, 0));
    page.set("Annots", Obj::Array(annots));
    objects.push((page_n, page_g, Obj::Dict(page)));
    if page_n != root_n {
        objects.push((root_n, root_g, Obj::Dict(catalog)));
    } else {
        return Err(bad("the catalog is its own page"));
    }

    // Serialise: a newline, the signature dictionary (hand-written for its placeholders),
    // the other objects, the cross-reference section and the trailer.
    let orig_len = r.len();
    let mut bytes = b"\n".to_vec();
    let mut offsets: Vec<(u32, u16, u64)> = Vec::new();
    offsets.push((sig_n, 0, orig_len + bytes.len() as u64));
    bytes.extend_from_slice(format!("{sig_n} 0 obj\n<</Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached\n/ByteRange ").as_bytes());
    let byte_range_at = bytes.len();
    bytes.extend(std::iter::repeat_n(b' ', BYTE_RANGE_WIDTH));
    bytes.extend_from_slice(b"\n/Contents ");
    let contents_lt = bytes.len();
    bytes.push(b'<');
    bytes.extend(std::iter::repeat_n(b'0', 2 * p.contents_size));
    bytes.push(b'>');
    bytes.extend_from_slice(format!("\n/M ({date})>>\nendobj\n").as_bytes());
    write_objects(r, &mut bytes, &mut offsets, &objects);
    write_xref(r, &mut bytes, offsets, next_free);
    Ok(Update {
        bytes,
        contents_lt,
        byte_range_at,
    })
}

/// Appends `objects` to `bytes` (an update that follows `r`'s file), recording each one's
/// absolute offset in `offsets`.
pub(super) fn write_objects<R: Read + Seek>(
    r: &PdfReader<R>,
    bytes: &mut Vec<u8>,
    offsets: &mut Vec<(u32, u16, u64)>,
    objects: &[(u32, u16, Obj)],
) {
    for (n, g, o) in objects {
        offsets.push((*n, *g, r.len() + bytes.len() as u64));
        bytes.extend_from_slice(format!("{n} {g} obj\n").as_bytes());
        o.write(bytes);
        bytes.extend_from_slice(b"\nendobj\n");
    }
}

/// Appends the update's cross-reference section for `offsets` (a table, or a stream with
/// number `next_free` if `r`'s file uses one), the trailer with `/Prev`, `startxref` and
/// `%%EOF`. `next_free` is the first object number the update does not use.
pub(super) fn write_xref<R: Read + Seek>(
    r: &PdfReader<R>,
    bytes: &mut Vec<u8>,
    mut offsets: Vec<(u32, u16, u64)>,
    next_free: u32,
) {
    let mut trailer = r.trailer.clone();
    for k in [
        "Prev",
        "XRefStm",
        "Type",
        "W",
        "Index",
        "Filter",
        "DecodeParms",
        "Length",
        "Size",
    ] {
        trailer.remove(k);
    }
    trailer.set("Prev", Obj::Int(r.startxref as i64));
    let xref_at = r.len() + bytes.len() as u64;
    if r.xref_is_stream {
        let xref_n = next_free;
        offsets.push((xref_n, 0, xref_at));
        offsets.sort();
        let mut data = Vec::new();
        let mut index = Vec::new();
        for run in runs(&offsets) {
            index.push(Obj::Int(i64::from(run[0].0)));
            index.push(Obj::Int(run.len() as i64));
            for (_, g, off) in run {
                data.push(1u8);
                data.extend_from_slice(&off.to_be_bytes());
                data.extend_from_slice(&g.to_be_bytes());
            }
        }
        let mut d = Dict::default();
        d.set("Type", Obj::name("XRef"));
        d.set("Size", Obj::Int(i64::from(xref_n + 1)));
        d.set("W", Obj::Array(vec![Obj::Int(1), Obj::Int(8), Obj::Int(2)]));
        d.set("Index", Obj::Array(index));
        for (k, v) in trailer.0 {
            d.0.push((k, v));
        }
        bytes.extend_from_slice(format!("{xref_n} 0 obj\n").as_bytes());
        Obj::Stream(d, data).write(bytes);
        bytes.extend_from_slice(b"\nendobj\n");
    } else {
        offsets.sort();
        bytes.extend_from_slice(b"xref\n");
        for run in runs(&offsets) {
            bytes.extend_from_slice(format!("{} {}\n", run[0].0, run.len()).as_bytes());
            for (_, g, off) in run {
                bytes.extend_from_slice(format!("{off:010} {g:05} n\r\n").as_bytes());
            }
        }
        trailer.set("Size", Obj::Int(i64::from(next_free)));
        bytes.extend_from_slice(b"trailer\n");
        Obj::Dict(trailer).write(bytes);
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
}

/// Runs of consecutive object numbers in sorted `offsets`.
fn runs(offsets: &[(u32, u16, u64)]) -> Vec<&[(u32, u16, u64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=offsets.len() {
        if i == offsets.len() || offsets[i].0 != offsets[i - 1].0 + 1 {
            out.push(&offsets[start..i]);
            start = i;
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
