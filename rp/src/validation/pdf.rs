//! Validation of the signatures of a PDF (PAdES, ETSI EN 319 142-1) with the CAdES logic of
//! [`super`]:
//!
//! ```text
//!  file.pdf ─PdfReader (xref from the end; trailer, catalog, AcroForm, fields only)─▶
//!    fields of type /Sig with a /V signature dictionary (also among /Kids)
//!    per signature, in the order of the revisions they sign:
//!      /ByteRange [0 a b c]: within the file, the gap [a, b) exactly the /Contents hex
//!        string, else FORMAT_FAILURE
//!      /SubFilter: ETSI.CAdES.detached = PAdES baseline, adbe.pkcs7.detached =
//!        PAdES-NOT-BASELINE, ETSI.RFC3161 (document time-stamp) noted, others FORMAT_FAILURE
//!      the ranges hashed streaming (seek, read in 1 MiB chunks) ─▶ super::validate_as
//!        (the claimed time is /M)
//!      coverage: a range that ends before the end of the file is followed by later
//!        revisions; the finding says so, the signature's own result stays
//!    the catalog's /DSS (PAdES-B-LT, [`crate::documents::dss`]): its OCSP responses and
//!      CRLs join each signature's embedded revocation data; if they cover the whole
//!      chain of a B-T signature, it is PAdES-B-LT and no responder is asked
//! ```
//!
//! A PDF that cannot be read (garbage, truncated, encrypted) is a [`PdfError`]; the caller
//! reports it as a red FORMAT_FAILURE. A PDF without signature fields gives no result: a
//! document without signatures.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::cms::MAX_SIGNATURE_BYTES;
use super::{
    Examination, Pending, Profile, RevocationFinding, Validation, ValidationContext, conclude,
    examine_as,
};
use crate::documents::DocumentHash;
use crate::documents::ltv::ValidationData;
use crate::documents::pdf::reader::PdfReader;
use crate::documents::pdf::{Dict, Obj, PdfError};
use crate::report::{BaselineLevel, FormatFamily};

/// Chunk size of the streaming hash of the byte ranges.
const CHUNK: usize = 1024 * 1024;
/// Deepest field tree walked.
const MAX_FIELD_DEPTH: usize = 32;
/// Most fields visited.
const MAX_FIELDS: usize = 100_000;

/// A signature dictionary as found in the PDF.
#[derive(Debug, Clone, PartialEq)]
pub struct PdfSignature {
    /// The field's full name (`/T` of the field and its parents, joined with `.`).
    pub field: String,
    /// `/ByteRange` as written (checked later).
    pub byte_range: Option<Vec<i64>>,
    /// `/Contents`: the CMS (with its zero padding).
    pub contents: Vec<u8>,
    /// `/SubFilter`.
    pub sub_filter: Option<String>,
    /// `/M`, parsed.
    pub signing_time: Option<SystemTime>,
    /// `/Name` (the signer's name as the signing software wrote it).
    pub name: Option<String>,
}

impl PdfSignature {
    /// The end of the signed revision (`b + c`), if the `/ByteRange` has four integers.
    fn covered_end(&self) -> Option<i64> {
        match self.byte_range.as_deref() {
            Some([_, _, b, c]) => b.checked_add(*c),
            _ => None,
        }
    }
}

/// The signature dictionaries of the AcroForm's signature fields, in the order of the
/// revisions they sign (by the end of their `/ByteRange`).
pub fn find_signatures<R: Read + Seek>(
    r: &mut PdfReader<R>,
) -> Result<Vec<PdfSignature>, PdfError> {
    let bad = |w: &str| PdfError::Malformed(w.into());
    let Some(root) = r.trailer.get("Root").cloned() else {
        return Err(bad("the trailer has no /Root"));
    };
    let catalog = match r.resolve(&root)? {
        Obj::Dict(d) => d,
        _ => return Err(bad("the catalog is not a dictionary")),
    };
    let acroform = match r.resolve(catalog.get("AcroForm").unwrap_or(&Obj::Null))? {
        Obj::Dict(d) => d,
        Obj::Null => return Ok(Vec::new()),
        _ => return Err(bad("/AcroForm is not a dictionary")),
    };
    let fields = match r.resolve(acroform.get("Fields").unwrap_or(&Obj::Null))? {
        Obj::Array(a) => a,
        Obj::Null => Vec::new(),
        _ => return Err(bad("/Fields is not an array")),
    };
    let mut walk = Walk {
        seen_fields: HashSet::new(),
        seen_values: HashSet::new(),
        visited: 0,
        out: Vec::new(),
    };
    for f in &fields {
        walk.field(r, f, None, "", 0)?;
    }
    let mut out = walk.out;
    out.sort_by_key(|s| s.covered_end().unwrap_or(i64::MAX));
    Ok(out)
}

struct Walk {
    seen_fields: HashSet<u32>,
    seen_values: HashSet<u32>,
    visited: usize,
    out: Vec<PdfSignature>,
}

impl Walk {
    fn field<R: Read + Seek>(
        &mut self,
        r: &mut PdfReader<R>,
        field: &Obj,
        inherited_ft: Option<&[u8]>,
        parent_name: &str,
        depth: usize,
    ) -> Result<(), PdfError> {
        if depth > MAX_FIELD_DEPTH {
            return Err(PdfError::Malformed("the field tree is too deep".into()));
        }
        self.visited += 1;
        if self.visited > MAX_FIELDS {
            return Err(PdfError::Malformed("too many form fields".into()));
        }
        if let Obj::Ref(n, _) = field
            && !self.seen_fields.insert(*n)
        {
            return Ok(());
        }
        let Obj::Dict(d) = r.resolve(field)? else {
            // A null or non-dictionary field entry signs nothing.
            return Ok(());
        };
        let ft = match d.get("FT") {
            Some(Obj::Name(n)) => Some(n.clone()),
            _ => inherited_ft.map(<[u8]>::to_vec),
        };
        let name = match d.get("T") {
            Some(Obj::Str(t)) => {
                let t = pdf_text_string(t);
                if parent_name.is_empty() {
                    t
                } else {
                    format!("{parent_name}.{t}")
                }
            }
            _ => parent_name.to_owned(),
        };
        if ft.as_deref() == Some(b"Sig")
            && let Some(v) = d.get("V")
        {
            let fresh = match v {
                Obj::Ref(n, _) => self.seen_values.insert(*n),
                _ => true,
            };
            if fresh && let Obj::Dict(sig) = r.resolve(v)? {
                self.out.push(signature(&sig, &name)?);
            }
        }
        if let Some(kids) = d.get("Kids") {
            let kids = match r.resolve(kids)? {
                Obj::Array(a) => a,
                _ => return Err(PdfError::Malformed("/Kids is not an array".into())),
            };
            for k in &kids {
                self.field(r, k, ft.as_deref(), &name, depth + 1)?;
            }
        }
        Ok(())
    }
}

fn signature(sig: &Dict, field: &str) -> Result<PdfSignature, PdfError> {
    let byte_range = match sig.get("ByteRange") {
        Some(Obj::Array(a)) => Some(
            a.iter()
                .map(|o| match o {
                    Obj::Int(i) => Some(*i),
                    _ => None,
                })
                .collect::<Option<Vec<i64>>>()
                .unwrap_or_default(),
        ),
        _ => None,
    };
    let contents = match sig.get("Contents") {
        Some(Obj::Str(s)) => s.clone(),
        _ => Vec::new(),
    };
    let name_of = |k: &str| match sig.get(k) {
        Some(Obj::Name(n)) => Some(String::from_utf8_lossy(n).into_owned()),
        _ => None,
    };
    let text_of = |k: &str| match sig.get(k) {
        Some(Obj::Str(s)) => Some(pdf_text_string(s)),
        _ => None,
    };
    Ok(PdfSignature {
        field: field.to_owned(),
        byte_range,
        contents,
        sub_filter: name_of("SubFilter"),
        signing_time: text_of("M").and_then(|m| parse_pdf_date(&m)),
        name: text_of("Name"),
    })
}

/// A PDF text string: UTF-16BE with a byte order mark, else PDFDocEncoding (read as
/// Latin-1, which agrees for the printable ASCII and Latin-1 letters).
fn pdf_text_string(s: &[u8]) -> String {
    if let Some(rest) = s.strip_prefix(b"\xfe\xff") {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        s.iter().map(|&b| char::from(b)).collect()
    }
}

/// A PDF date `D:YYYYMMDDHHmmSSOHH'mm'` (everything after the year optional) as a time.
pub fn parse_pdf_date(s: &str) -> Option<SystemTime> {
    let s = s.strip_prefix("D:").unwrap_or(s);
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits < 4 || digits % 2 != 0 || digits > 14 {
        return None;
    }
    let num = |from: usize, default: u16| -> Option<u16> {
        if from + 2 <= digits {
            s.get(from..from + 2)?.parse().ok()
        } else {
            Some(default)
        }
    };
    let year: u16 = s.get(..4)?.parse().ok()?;
    let (month, day) = (num(4, 1)?, num(6, 1)?);
    let (hour, minute, second) = (num(8, 0)?, num(10, 0)?, num(12, 0)?);
    let dt = der::DateTime::new(
        year,
        month as u8,
        day as u8,
        hour as u8,
        minute as u8,
        second as u8,
    )
    .ok()?;
    let local = dt.to_system_time();
    let rest = &s[digits..];
    let offset = match rest.as_bytes().first() {
        None | Some(b'Z') => 0i64,
        Some(&sign @ (b'+' | b'-')) => {
            let tz: String = rest[1..].chars().filter(char::is_ascii_digit).collect();
            let h: i64 = tz.get(..2)?.parse().ok()?;
            let m: i64 = tz.get(2..4).map_or(Some(0), |m| m.parse().ok())?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Local time minus the offset is UTC.
    if offset >= 0 {
        local.checked_sub(Duration::from_secs(offset as u64))
    } else {
        local.checked_add(Duration::from_secs((-offset) as u64))
    }
}

/// A checked `/ByteRange`: `[0, a)` and `[b, b + c)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranges {
    /// End of the first range (the `<` of `/Contents`).
    pub a: u64,
    /// Start of the second range (after the `>`).
    pub b: u64,
    /// Length of the second range.
    pub c: u64,
}

/// Checks the `/ByteRange` of `sig` against the file: four integers, the first range
/// starting at 0, both within the file, the gap exactly a hex string whose value is
/// `/Contents`.
pub fn check_byte_range<F: Read + Seek>(
    sig: &PdfSignature,
    file: &mut F,
    len: u64,
) -> Result<Ranges, String> {
    let Some(br) = sig.byte_range.as_deref() else {
        return Err("the signature dictionary has no /ByteRange of integers".into());
    };
    let &[start, a, b, c] = br else {
        return Err(format!(
            "/ByteRange has {} integers; two ranges (four integers) are required",
            br.len()
        ));
    };
    if start != 0 {
        return Err("/ByteRange does not start at byte 0".into());
    }
    if a <= 0 || b <= a || c < 0 {
        return Err(format!(
            "/ByteRange [0 {a} {b} {c}] is not two ordered ranges"
        ));
    }
    let (a, b, c) = (a as u64, b as u64, c as u64);
    if b.checked_add(c).is_none_or(|end| end > len) {
        return Err(format!(
            "/ByteRange [0 {a} {b} {c}] reaches beyond the end of the file ({len} bytes)"
        ));
    }
    let gap = b - a;
    if gap > 2 * MAX_SIGNATURE_BYTES as u64 + 2 {
        return Err(format!(
            "the /ByteRange gap of {gap} bytes is larger than a signature can be"
        ));
    }
    let mut hex = vec![0u8; gap as usize];
    file.seek(SeekFrom::Start(a))
        .and_then(|_| file.read_exact(&mut hex))
        .map_err(|e| format!("cannot read the /ByteRange gap: {e}"))?;
    let inner = match hex.as_slice() {
        [b'<', inner @ .., b'>'] => inner,
        _ => {
            return Err(
                "the /ByteRange gap is not exactly the /Contents hex string (no <...> there)"
                    .into(),
            );
        }
    };
    match hex::decode(inner) {
        Ok(v) if v == sig.contents => Ok(Ranges { a, b, c }),
        _ => Err("the /ByteRange gap is not exactly the /Contents hex string".into()),
    }
}

/// The CMS at the start of `/Contents`, without the zero padding after it.
pub fn trim_cms(contents: &[u8]) -> Result<&[u8], String> {
    let bad = || "/Contents does not hold a DER SEQUENCE (a CMS ContentInfo)".to_owned();
    if contents.first() != Some(&0x30) {
        return Err(bad());
    }
    let first = *contents.get(1).ok_or_else(bad)?;
    let (header, len) = if first < 0x80 {
        (2usize, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad());
        }
        let bytes = contents.get(2..2 + n).ok_or_else(bad)?;
        (
            2 + n,
            bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)),
        )
    };
    let end = header.checked_add(len).ok_or_else(bad)?;
    if end > contents.len() {
        return Err("the CMS in /Contents is truncated".into());
    }
    Ok(&contents[..end])
}

/// Hashes `[0, a)` and `[b, b + c)` of the file at `path`, reading it in chunks.
pub fn hash_ranges(path: &Path, hash: DocumentHash, r: Ranges) -> std::io::Result<Vec<u8>> {
    match hash {
        DocumentHash::Sha256 => hash_with::<sha2::Sha256>(path, r),
        DocumentHash::Sha384 => hash_with::<sha2::Sha384>(path, r),
        DocumentHash::Sha512 => hash_with::<sha2::Sha512>(path, r),
    }
}

fn hash_with<D: sha2::Digest>(path: &Path, r: Ranges) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; CHUNK];
    for (start, len) in [(0, r.a), (r.b, r.c)] {
        file.seek(SeekFrom::Start(start))?;
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file became shorter while it was read",
                ));
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
    }
    Ok(hasher.finalize().to_vec())
}

/// One signature of a PDF examined up to revocation, with the PDF's own findings.
#[derive(Debug, Clone)]
pub struct PdfExamination {
    /// The CAdES examination of its CMS (or the format failure of its dictionary).
    pub examination: Examination,
    /// Findings about the dictionary and its coverage of the file, appended to the details.
    pub findings: Vec<String>,
}

impl PdfExamination {
    /// The result once the revocation finding is known (ignored when already decided).
    pub fn conclude_with(self, finding: impl FnOnce(&Pending) -> RevocationFinding) -> Validation {
        let v = match self.examination {
            Examination::Decided(v) => v,
            Examination::NeedsRevocation(p) => {
                let f = finding(&p);
                conclude(p, f)
            }
        };
        finish(v, self.findings)
    }
}

fn finish(mut v: Validation, findings: Vec<String>) -> Validation {
    v.result.format.family = FormatFamily::Pades;
    v.details.extend(findings);
    v
}

/// Every step but revocation for every signature of the PDF at `path`, in revision order.
/// An empty result is a PDF without signatures; an error is a PDF that cannot be read
/// (report it as FORMAT_FAILURE).
pub fn examine_pdf(path: &Path, ctx: &ValidationContext) -> Result<Vec<PdfExamination>, PdfError> {
    let io = |e: std::io::Error| PdfError::Io(e.to_string());
    let mut reader = PdfReader::open(BufReader::new(File::open(path).map_err(io)?))?;
    let signatures = find_signatures(&mut reader)?;
    // The document security store (PAdES-B-LT): revocation data for every signature.
    let (dss, dss_finding) = match crate::documents::dss::read_dss(&mut reader) {
        Ok(d) if d == ValidationData::default() => (d, None),
        Ok(d) => {
            let f = format!(
                "document security store: {} certificates, {} OCSP responses, {} CRLs",
                d.certificates.len(),
                d.ocsp_responses.len(),
                d.crls.len()
            );
            (d, Some(f))
        }
        Err(e) => (
            ValidationData::default(),
            Some(format!(
                "document security store: unreadable, not used ({e})"
            )),
        ),
    };
    let len = reader.len();
    let mut file = reader.into_inner();
    let last_end = signatures
        .iter()
        .filter(|s| s.sub_filter.as_deref() != Some(DOC_TIMESTAMP))
        .filter_map(PdfSignature::covered_end)
        .max();
    let mut out: Vec<PdfExamination> = Vec::new();
    for sig in &signatures {
        if sig.sub_filter.as_deref() == Some(DOC_TIMESTAMP) {
            // A document time-stamp (B-LTA) is no one's signature: noted on the others.
            for e in &mut out {
                e.findings.push(format!(
                    "document time-stamp: field {:?} holds one (not checked by this version)",
                    sig.field
                ));
            }
            continue;
        }
        let mut examination = examine_one(sig, path, &mut file, len, ctx);
        if let Examination::NeedsRevocation(p) = &mut examination {
            p.ocsp.extend(dss.ocsp_responses.iter().cloned());
            p.crls.extend(dss.crls.iter().cloned());
        }
        let mut findings = Vec::new();
        let mut place = format!("signature field {:?}", sig.field);
        if let Some(n) = &sig.name {
            place.push_str(&format!(", /Name {n:?}"));
        }
        findings.push(place);
        match sig.covered_end() {
            Some(end) if end >= 0 && (end as u64) < len => {
                let later = len - end as u64;
                findings.push(if Some(end) == last_end {
                    format!(
                        "coverage: the file was changed after the last signature: its last \
                         {later} bytes (a later revision) are covered by no signature"
                    )
                } else {
                    format!(
                        "coverage: this signature covers the revision ending at byte {end}; \
                         {later} bytes of later revisions follow (other signatures or changes)"
                    )
                });
            }
            Some(end) if end as u64 == len => {
                findings.push("coverage: the signature covers the whole file".into());
            }
            _ => {}
        }
        findings.extend(dss_finding.clone());
        out.push(PdfExamination {
            examination,
            findings,
        });
    }
    Ok(out)
}

/// Validates every signature of the PDF at `path` ([`examine_pdf`]), then each one's
/// revocation status: embedded data first, else the CAs' OCSP responders and CRLs.
pub async fn validate_pdf(
    path: &Path,
    ctx: &ValidationContext,
) -> Result<Vec<Validation>, PdfError> {
    let mut out = Vec::new();
    for e in examine_pdf(path, ctx)? {
        let v = match e.examination {
            Examination::Decided(v) => v,
            Examination::NeedsRevocation(mut p) => {
                let finding = match p.embedded_revocation() {
                    Some(f) => {
                        // Time-stamped, with the validation data of the whole chain (in the
                        // DSS or the CMS): B-LT (EN 319 142-1 5.4).
                        let format = &mut p.base.result.format;
                        if format.baseline == Some(BaselineLevel::T) {
                            format.baseline = Some(BaselineLevel::Lt);
                        }
                        f
                    }
                    None => super::revocation::online(&p.chain, &ctx.revocation).await,
                };
                conclude(p, finding)
            }
        };
        out.push(finish(v, e.findings));
    }
    Ok(out)
}

/// `/SubFilter` of a document time-stamp.
const DOC_TIMESTAMP: &str = "ETSI.RFC3161";

fn examine_one(
    sig: &PdfSignature,
    path: &Path,
    file: &mut BufReader<File>,
    len: u64,
    ctx: &ValidationContext,
) -> Examination {
    let fail = |e: String| Examination::Decided(super::format_failure(e, ctx));
    let baseline = match sig.sub_filter.as_deref() {
        Some("ETSI.CAdES.detached") => true,
        Some("adbe.pkcs7.detached") => false,
        Some(other) => {
            return fail(format!(
                "/SubFilter /{other} is not supported (ETSI.CAdES.detached or adbe.pkcs7.detached)"
            ));
        }
        None => return fail("the signature dictionary has no /SubFilter".into()),
    };
    let ranges = match check_byte_range(sig, file, len) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let cms = match trim_cms(&sig.contents) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut digest = |h: DocumentHash| hash_ranges(path, h, ranges);
    examine_as(
        cms,
        &mut digest,
        ctx,
        Profile::Pades {
            claimed: sig.signing_time,
            baseline,
        },
    )
}

#[cfg(test)]
mod tests;
