//! PAdES baseline B-LT (ETSI EN 319 142-1 5.4, ISO 32000-2 12.8.4.3): the validation data
//! of a signed PDF in a document security store, appended in one more incremental update.
//!
//! ```text
//!  signed.pdf (bytes untouched, streamed in 1 MiB chunks) ─────────────────┐
//!  ValidationData (ltv::collect) ─▶ one stream object per certificate,     │
//!     OCSPResponse (full DER) and CRL; /DSS <</Certs [..] /OCSPs [..]      │
//!     /CRLs [..]>>; the catalog with /DSS; xref (table or stream) /Prev ───┴▶ out.pdf
//! ```
//!
//! The earlier revisions, and so every signature's `/ByteRange`, stay as they are. An
//! existing `/DSS` is kept and extended (its entries first); data already in it is not
//! added twice. [`read_dss`] reads the store of a PDF's newest revision back.

use std::fs::File;
use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::ltv::ValidationData;
use super::pades::{PadesError, copy_prefix, part_path, write_objects, write_xref};
use super::pdf::reader::{PdfReader, decode_stream};
use super::pdf::{Dict, Obj, PdfError};

fn io(what: &Path) -> impl Fn(std::io::Error) -> PadesError + '_ {
    move |e| PadesError::Io(format!("{}: {e}", what.display()))
}

/// The three arrays of a `/DSS` and the names of their entries.
const KEYS: [&str; 3] = ["Certs", "OCSPs", "CRLs"];

fn lists(d: &ValidationData) -> [&Vec<Vec<u8>>; 3] {
    [&d.certificates, &d.ocsp_responses, &d.crls]
}

/// The catalog's `/DSS` (resolved; an empty dictionary if there is none).
fn dss_dict<R: Read + Seek>(
    r: &mut PdfReader<R>,
    catalog: &Dict,
) -> Result<(Option<(u32, u16)>, Dict), PdfError> {
    match catalog.get("DSS").cloned() {
        None | Some(Obj::Null) => Ok((None, Dict::default())),
        Some(Obj::Dict(d)) => Ok((None, d)),
        Some(Obj::Ref(n, g)) => match r.object(n)? {
            Obj::Dict(d) => Ok((Some((n, g)), d)),
            Obj::Null => Ok((None, Dict::default())),
            _ => Err(PdfError::Malformed("/DSS is not a dictionary".into())),
        },
        Some(_) => Err(PdfError::Malformed("/DSS is not a dictionary".into())),
    }
}

/// The references in `/DSS` array `key` and the decoded data of each stream.
fn dss_entries<R: Read + Seek>(
    r: &mut PdfReader<R>,
    dss: &Dict,
    key: &str,
) -> Result<(Vec<Obj>, Vec<Vec<u8>>), PdfError> {
    let items = match r.resolve(dss.get(key).unwrap_or(&Obj::Null))? {
        Obj::Array(a) => a,
        Obj::Null => Vec::new(),
        _ => return Err(PdfError::Malformed(format!("/DSS /{key} is not an array"))),
    };
    let mut data = Vec::new();
    for item in &items {
        match r.resolve(item)? {
            Obj::Stream(d, raw) => data.push(decode_stream(&d, raw)?),
            _ => {
                return Err(PdfError::Malformed(format!(
                    "a /DSS /{key} entry is not a stream"
                )));
            }
        }
    }
    Ok((items, data))
}

fn root<R: Read + Seek>(r: &mut PdfReader<R>) -> Result<((u32, u16), Dict), PdfError> {
    let Some(Obj::Ref(n, g)) = r.trailer.get("Root").cloned() else {
        return Err(PdfError::Malformed("the trailer has no /Root".into()));
    };
    match r.object(n)? {
        Obj::Dict(d) => Ok(((n, g), d)),
        _ => Err(PdfError::Malformed(
            "the catalog is not a dictionary".into(),
        )),
    }
}

/// The document security store of the newest revision: its certificates, OCSP responses
/// and CRLs (DER, as stored). A PDF without one gives empty lists.
pub fn read_dss<R: Read + Seek>(r: &mut PdfReader<R>) -> Result<ValidationData, PdfError> {
    let (_, catalog) = root(r)?;
    let (_, dss) = dss_dict(r, &catalog)?;
    let mut out = ValidationData::default();
    let [c, o, l] = KEYS.map(|k| dss_entries(r, &dss, k));
    out.certificates = c?.1;
    out.ocsp_responses = o?.1;
    out.crls = l?.1;
    Ok(out)
}

/// Writes `out`: the bytes of `input` (a signed PDF; copied, never changed) and an
/// incremental update whose catalog has a `/DSS` with `data` (B-B/B-T to B-LT). `out` may
/// be `input`: the result is written to `<out>.part` first and renamed.
pub fn add_dss(input: &Path, out: &Path, data: &ValidationData) -> Result<PathBuf, PadesError> {
    let file = File::open(input).map_err(io(input))?;
    let mut r = PdfReader::open(BufReader::new(file))?;
    let ((root_n, root_g), mut catalog) = root(&mut r)?;
    let (dss_ref, mut dss) = dss_dict(&mut r, &catalog)?;

    let mut next = r.size();
    let mut objects: Vec<(u32, u16, Obj)> = Vec::new();
    for (key, new) in KEYS.into_iter().zip(lists(data)) {
        let (mut refs, have) = dss_entries(&mut r, &dss, key)?;
        for der in new {
            if have.contains(der) {
                continue;
            }
            objects.push((next, 0, Obj::Stream(Dict::default(), der.clone())));
            refs.push(Obj::Ref(next, 0));
            next += 1;
        }
        if !refs.is_empty() {
            dss.set(key, Obj::Array(refs));
        }
    }
    dss.set("Type", Obj::name("DSS"));
    let (dss_n, dss_g) = dss_ref.unwrap_or_else(|| {
        next += 1;
        (next - 1, 0)
    });
    if dss_n == root_n {
        return Err(PadesError::Pdf(PdfError::Malformed(
            "the catalog is its own /DSS".into(),
        )));
    }
    objects.push((dss_n, dss_g, Obj::Dict(dss)));
    catalog.set("DSS", Obj::Ref(dss_n, dss_g));
    objects.push((root_n, root_g, Obj::Dict(catalog)));

    let mut bytes = b"\n".to_vec();
    let mut offsets = Vec::new();
    write_objects(&r, &mut bytes, &mut offsets, &objects);
    write_xref(&r, &mut bytes, offsets, next);
    let len = r.len();
    drop(r);

    let part = part_path(out);
    let result = (|| -> Result<(), PadesError> {
        let mut dst = File::create(&part).map_err(io(&part))?;
        copy_prefix(input, len, &part, &mut dst, |_| {})?;
        dst.write_all(&bytes).map_err(io(&part))?;
        dst.sync_all().map_err(io(&part))?;
        std::fs::rename(&part, out).map_err(io(out))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests;
