//! Reading a PDF from its end: `startxref`, the cross-reference sections (classic tables,
//! xref streams, hybrid `/XRefStm`) along `/Prev`, and single objects on demand.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};

use super::{Dict, Obj, ParseError, Parser, PdfError, malformed};

/// Largest window read to parse one object or xref table, and largest stream decoded.
const MAX_WINDOW: u64 = 64 * 1024 * 1024;
/// Most cross-reference sections followed along `/Prev`.
const MAX_SECTIONS: usize = 10_000;
/// Largest object number accepted.
const MAX_OBJECT_NUMBER: u64 = 50_000_000;

/// Where an object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// At a byte offset, with its generation.
    Offset(u64, u16),
    /// The `index`-th object of object stream `stream`.
    InStream(u32, u32),
    /// A free entry (deleted).
    Free,
}

/// A decoded object stream: its data and each object's number and offset in it.
type ObjectStream = (Vec<u8>, Vec<(u32, usize)>);

/// A PDF opened for reading objects: its newest trailer and all cross-reference entries.
pub struct PdfReader<R> {
    file: R,
    len: u64,
    /// The offset `startxref` names (the newest section).
    pub startxref: u64,
    /// Whether the newest section is an xref stream (else a classic table).
    pub xref_is_stream: bool,
    /// The newest trailer (of an xref stream: its dictionary).
    pub trailer: Dict,
    entries: HashMap<u32, Location>,
    object_streams: HashMap<u32, ObjectStream>,
}

impl<R> std::fmt::Debug for PdfReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfReader")
            .field("len", &self.len)
            .field("startxref", &self.startxref)
            .field("objects", &self.entries.len())
            .finish()
    }
}

fn io(e: std::io::Error) -> PdfError {
    PdfError::Io(e.to_string())
}

impl<R: Read + Seek> PdfReader<R> {
    /// Reads the trailer and the cross-reference sections. Refuses encrypted PDFs.
    pub fn open(mut file: R) -> Result<Self, PdfError> {
        let len = file.seek(SeekFrom::End(0)).map_err(io)?;
        let mut head = [0u8; 5];
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        if len < 5 || file.read_exact(&mut head).is_err() || &head != b"%PDF-" {
            return Err(malformed("the file does not start with %PDF-"));
        }
        let tail_len = len.min(2048);
        let mut tail = vec![0u8; tail_len as usize];
        file.seek(SeekFrom::Start(len - tail_len)).map_err(io)?;
        file.read_exact(&mut tail).map_err(io)?;
        let at = rfind(&tail, b"startxref").ok_or_else(|| {
            PdfError::Truncated("no startxref in the last 2 KiB (no %%EOF)".into())
        })?;
        let mut p = Parser::new(&tail[at + 9..]);
        let startxref = p
            .uint()
            .map_err(|_| PdfError::Truncated("the startxref offset".into()))?;
        if startxref >= len {
            return Err(PdfError::Truncated(format!(
                "startxref {startxref} is beyond the file's {len} bytes"
            )));
        }
        let mut r = PdfReader {
            file,
            len,
            startxref,
            xref_is_stream: false,
            trailer: Dict::default(),
            entries: HashMap::new(),
            object_streams: HashMap::new(),
        };
        let mut next = Some(startxref);
        let mut seen = HashSet::new();
        let mut first = true;
        while let Some(off) = next {
            if !seen.insert(off) || seen.len() > MAX_SECTIONS {
                return Err(malformed(
                    "the /Prev chain of cross-reference sections loops",
                ));
            }
            let (trailer, is_stream) = r.read_section(off)?;
            if let Some(Obj::Int(stm)) = trailer.get("XRefStm") {
                // Hybrid file: the stream's entries come after the table's.
                if *stm >= 0 && seen.insert(*stm as u64) {
                    r.read_section(*stm as u64)?;
                }
            }
            next = match trailer.get("Prev") {
                Some(Obj::Int(p)) if *p >= 0 => Some(*p as u64),
                Some(_) => return Err(malformed("/Prev is not an offset")),
                None => None,
            };
            if first {
                r.trailer = trailer;
                r.xref_is_stream = is_stream;
                first = false;
            }
        }
        if r.trailer.get("Encrypt").is_some() {
            return Err(PdfError::Encrypted);
        }
        if !matches!(r.trailer.get("Root"), Some(Obj::Ref(..))) {
            return Err(malformed("the trailer has no /Root reference"));
        }
        Ok(r)
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty (never, once opened).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest object number in use plus one, at least the trailer's `/Size`.
    pub fn size(&self) -> u32 {
        let max = self.entries.keys().max().map_or(0, |m| m + 1);
        let size = self
            .trailer
            .int("Size")
            .unwrap_or(0)
            .clamp(0, u32::MAX as i64) as u32;
        max.max(size)
    }

    /// Where object `num` lives (the newest entry).
    pub fn location(&self, num: u32) -> Option<Location> {
        self.entries.get(&num).copied()
    }

    /// Runs `f` over a window of the file from `offset`, growing the window while `f` runs
    /// out of bytes.
    fn with_window<T>(
        &mut self,
        offset: u64,
        what: &str,
        mut f: impl FnMut(&[u8]) -> Result<T, ParseError>,
    ) -> Result<T, PdfError> {
        let mut size = 16 * 1024u64;
        loop {
            let n = size.min(self.len.saturating_sub(offset));
            let mut buf = vec![0u8; n as usize];
            self.file.seek(SeekFrom::Start(offset)).map_err(io)?;
            self.file.read_exact(&mut buf).map_err(io)?;
            match f(&buf) {
                Ok(t) => return Ok(t),
                Err(ParseError::Bad(at, expected)) => {
                    return Err(malformed(format!(
                        "{what}: expected {expected} at byte {}",
                        offset + at as u64
                    )));
                }
                Err(ParseError::Eof) => {
                    if offset + n >= self.len {
                        return Err(PdfError::Truncated(format!("{what} at byte {offset}")));
                    }
                    if size >= MAX_WINDOW {
                        return Err(malformed(format!("{what} is larger than 64 MiB")));
                    }
                    size *= 4;
                }
            }
        }
    }

    /// Reads one cross-reference section at `off`; returns its trailer and whether it is a
    /// stream. Entries already known (from newer sections) are kept.
    fn read_section(&mut self, off: u64) -> Result<(Dict, bool), PdfError> {
        let is_table = self.with_window(off, "cross-reference section", |b| {
            let mut p = Parser::new(b);
            p.skip_ws()?;
            Ok(b[p.pos..].starts_with(b"xref"))
        })?;
        if is_table {
            let (entries, trailer) =
                self.with_window(off, "cross-reference table", parse_xref_table)?;
            for (n, l) in entries {
                self.entries.entry(n).or_insert(l);
            }
            Ok((trailer, false))
        } else {
            let (dict, data) = self.stream_at(off, "cross-reference stream")?;
            if !dict.is_name("Type", "XRef") {
                return Err(malformed(format!(
                    "startxref/Prev {off} points to neither a table nor an xref stream"
                )));
            }
            let data = decode_stream(&dict, data)?;
            for (n, l) in parse_xref_stream(&dict, &data)? {
                self.entries.entry(n).or_insert(l);
            }
            Ok((dict, true))
        }
    }

    /// The stream object starting at `off` (`n g obj << >> stream ... endstream`): its
    /// dictionary and raw data.
    fn stream_at(&mut self, off: u64, what: &str) -> Result<(Dict, Vec<u8>), PdfError> {
        let (obj, data_start) = self.with_window(off, what, |b| {
            let mut p = Parser::new(b);
            p.uint()?;
            p.uint()?;
            p.keyword("obj")?;
            let o = p.object(0)?;
            p.keyword("stream")?;
            // `stream` is followed by CRLF or LF.
            if b.get(p.pos) == Some(&b'\r') {
                p.pos += 1;
            }
            if b.get(p.pos) == Some(&b'\n') {
                p.pos += 1;
            }
            Ok((o, p.pos as u64))
        })?;
        let Obj::Dict(dict) = obj else {
            return Err(malformed(format!("{what} at {off} is not a stream")));
        };
        let length = match dict.get("Length") {
            Some(Obj::Int(l)) => *l,
            Some(Obj::Ref(n, _)) => match self.object(*n)? {
                Obj::Int(l) => l,
                _ => return Err(malformed("a stream /Length is not an integer")),
            },
            _ => return Err(malformed(format!("{what} at {off} has no /Length"))),
        };
        let start = off + data_start;
        if length < 0 || length as u64 > MAX_WINDOW {
            return Err(malformed(format!("{what}: /Length {length} out of range")));
        }
        if start + length as u64 > self.len {
            return Err(PdfError::Truncated(format!("{what} at byte {off}")));
        }
        let mut data = vec![0u8; length as usize];
        self.file.seek(SeekFrom::Start(start)).map_err(io)?;
        self.file.read_exact(&mut data).map_err(io)?;
        Ok((dict, data))
    }

    /// Loads object `num` (its newest version). Missing or free objects are `null`, as the
    /// PDF specification says.
    pub fn object(&mut self, num: u32) -> Result<Obj, PdfError> {
        match self.entries.get(&num).copied() {
            None | Some(Location::Free) => Ok(Obj::Null),
            Some(Location::Offset(off, _)) => {
                if off >= self.len {
                    return Err(PdfError::Truncated(format!(
                        "object {num} at byte {off} is beyond the end"
                    )));
                }
                let what = format!("object {num}");
                let (obj, is_stream) = self.with_window(off, &what, |b| {
                    let mut p = Parser::new(b);
                    let n = p.uint()?;
                    p.uint()?;
                    p.keyword("obj")?;
                    if n != u64::from(num) {
                        return Err(ParseError::Bad(0, "the object number of the xref entry"));
                    }
                    let o = p.object(0)?;
                    let is_stream = p.token().map(|t| t == b"stream").unwrap_or(false);
                    Ok((o, is_stream))
                })?;
                if is_stream {
                    let (d, data) = self.stream_at(off, &what)?;
                    Ok(Obj::Stream(d, data))
                } else {
                    Ok(obj)
                }
            }
            Some(Location::InStream(stream, index)) => self.object_in_stream(num, stream, index),
        }
    }

    /// Follows a reference; other objects are returned as they are.
    pub fn resolve(&mut self, obj: &Obj) -> Result<Obj, PdfError> {
        match obj {
            Obj::Ref(n, _) => self.object(*n),
            o => Ok(o.clone()),
        }
    }

    fn object_in_stream(&mut self, num: u32, stream: u32, index: u32) -> Result<Obj, PdfError> {
        if !self.object_streams.contains_key(&stream) {
            let Some(Location::Offset(off, _)) = self.entries.get(&stream).copied() else {
                return Err(malformed(format!("object stream {stream} not found")));
            };
            let (dict, data) = self.stream_at(off, "object stream")?;
            if !dict.is_name("Type", "ObjStm") {
                return Err(malformed(format!(
                    "object {stream} is not an object stream"
                )));
            }
            let data = decode_stream(&dict, data)?;
            let n = dict.int("N").unwrap_or(-1);
            let first = dict.int("First").unwrap_or(-1);
            if n < 0 || first < 0 || first as usize > data.len() {
                return Err(malformed("object stream /N or /First"));
            }
            let mut p = Parser::new(&data[..first as usize]);
            let mut index = Vec::new();
            for _ in 0..n {
                let on = p.uint().map_err(|_| malformed("object stream header"))?;
                let oo = p.uint().map_err(|_| malformed("object stream header"))?;
                index.push((on as u32, first as usize + oo as usize));
            }
            self.object_streams.insert(stream, (data, index));
        }
        let (data, idx) = &self.object_streams[&stream];
        let Some(&(n, at)) = idx.get(index as usize) else {
            return Err(malformed(format!(
                "object {num}: index beyond object stream"
            )));
        };
        if n != num || at > data.len() {
            return Err(malformed(format!("object {num}: object stream index")));
        }
        let mut buf = data[at..].to_vec();
        buf.push(b' ');
        Parser::new(&buf)
            .object(0)
            .map_err(|_| malformed(format!("object {num} in object stream {stream}")))
    }

    /// Reads `len` bytes at `offset` (for copying and hashing).
    pub fn into_inner(self) -> R {
        self.file
    }
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// A classic `xref` table and its `trailer` dictionary.
fn parse_xref_table(b: &[u8]) -> Result<(Vec<(u32, Location)>, Dict), ParseError> {
    let mut p = Parser::new(b);
    p.keyword("xref")?;
    let mut entries = Vec::new();
    loop {
        p.skip_ws()?;
        if b[p.pos..].starts_with(b"trailer") {
            p.keyword("trailer")?;
            let Obj::Dict(d) = p.object(0)? else {
                return Err(ParseError::Bad(p.pos, "a trailer dictionary"));
            };
            return Ok((entries, d));
        }
        let start = p.uint()?;
        let count = p.uint()?;
        if start + count > MAX_OBJECT_NUMBER {
            return Err(ParseError::Bad(p.pos, "an xref subsection in range"));
        }
        for i in 0..count {
            let off = p.uint()?;
            let generation = p.uint()?;
            let at = p.pos;
            let kind = p.token()?;
            let loc = match kind {
                b"n" => Location::Offset(off, generation.min(65535) as u16),
                b"f" => Location::Free,
                _ => return Err(ParseError::Bad(at, "n or f")),
            };
            entries.push(((start + i) as u32, loc));
        }
    }
}

/// Entries of a decoded xref stream.
fn parse_xref_stream(dict: &Dict, data: &[u8]) -> Result<Vec<(u32, Location)>, PdfError> {
    let bad = || malformed("xref stream /W or /Index");
    let w: Vec<usize> = match dict.get("W") {
        Some(Obj::Array(a)) if a.len() == 3 => a
            .iter()
            .map(|o| match o {
                Obj::Int(i) if (0..=8).contains(i) => Ok(*i as usize),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    let index: Vec<u64> = match dict.get("Index") {
        Some(Obj::Array(a)) => a
            .iter()
            .map(|o| match o {
                Obj::Int(i) if *i >= 0 => Ok(*i as u64),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        None => vec![0, dict.int("Size").unwrap_or(0).max(0) as u64],
        _ => return Err(bad()),
    };
    if !index.len().is_multiple_of(2) {
        return Err(bad());
    }
    let row = w.iter().sum::<usize>();
    if row == 0 {
        return Err(bad());
    }
    let field = |r: &[u8], i: usize, default: u64| -> u64 {
        if w[i] == 0 {
            return default;
        }
        let s: usize = w[..i].iter().sum();
        r[s..s + w[i]]
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b))
    };
    let mut rows = data.chunks_exact(row);
    let mut out = Vec::new();
    for pair in index.chunks(2) {
        if pair[0] + pair[1] > MAX_OBJECT_NUMBER {
            return Err(bad());
        }
        for n in pair[0]..pair[0] + pair[1] {
            let r = rows
                .next()
                .ok_or_else(|| PdfError::Truncated("xref stream rows".into()))?;
            let loc = match field(r, 0, 1) {
                0 => Location::Free,
                1 => Location::Offset(field(r, 1, 0), field(r, 2, 0).min(65535) as u16),
                2 => Location::InStream(field(r, 1, 0) as u32, field(r, 2, 0) as u32),
                _ => continue,
            };
            out.push((n as u32, loc));
        }
    }
    Ok(out)
}

/// Decodes a stream's data: no filter or `/FlateDecode`, with PNG predictors.
pub fn decode_stream(dict: &Dict, data: Vec<u8>) -> Result<Vec<u8>, PdfError> {
    let filter = match dict.get("Filter") {
        None => None,
        Some(Obj::Name(n)) => Some(n.clone()),
        Some(Obj::Array(a)) if a.len() == 1 => match &a[0] {
            Obj::Name(n) => Some(n.clone()),
            _ => return Err(malformed("stream /Filter")),
        },
        Some(_) => {
            return Err(PdfError::Unsupported(
                "a stream with several filters".into(),
            ));
        }
    };
    let data = match filter.as_deref() {
        None => return Ok(data),
        Some(b"FlateDecode") => inflate(&data)?,
        Some(f) => {
            return Err(PdfError::Unsupported(format!(
                "stream filter /{}",
                String::from_utf8_lossy(f)
            )));
        }
    };
    let parms = match dict.get("DecodeParms") {
        Some(Obj::Dict(d)) => d.clone(),
        Some(Obj::Array(a)) if a.len() == 1 => a[0].as_dict().cloned().unwrap_or_default(),
        _ => Dict::default(),
    };
    match parms.int("Predictor").unwrap_or(1) {
        1 => Ok(data),
        p if p >= 10 => {
            let columns = parms.int("Columns").unwrap_or(1);
            if !(1..=1 << 20).contains(&columns) {
                return Err(malformed("/Columns out of range"));
            }
            png_unpredict(&data, columns as usize)
        }
        p => Err(PdfError::Unsupported(format!("predictor {p}"))),
    }
}

fn inflate(data: &[u8]) -> Result<Vec<u8>, PdfError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_WINDOW + 1)
        .read_to_end(&mut out)
        .map_err(|e| malformed(format!("FlateDecode: {e}")))?;
    if out.len() as u64 > MAX_WINDOW {
        return Err(malformed("a stream decodes to more than 64 MiB"));
    }
    Ok(out)
}

/// Reverses the PNG row filters (one filter byte per row, 1 byte per pixel).
fn png_unpredict(data: &[u8], columns: usize) -> Result<Vec<u8>, PdfError> {
    let stride = columns + 1;
    let mut out = Vec::with_capacity(data.len() / stride * columns);
    let mut prev = vec![0u8; columns];
    for row in data.chunks(stride) {
        if row.len() != stride {
            return Err(malformed("PNG predictor: a short row"));
        }
        let mut cur = row[1..].to_vec();
        for i in 0..columns {
            let left = if i > 0 { cur[i - 1] } else { 0 };
            let up = prev[i];
            let up_left = if i > 0 { prev[i - 1] } else { 0 };
            cur[i] = match row[0] {
                0 => cur[i],
                1 => cur[i].wrapping_add(left),
                2 => cur[i].wrapping_add(up),
                3 => cur[i].wrapping_add(((u16::from(left) + u16::from(up)) / 2) as u8),
                4 => cur[i].wrapping_add(paeth(left, up, up_left)),
                _ => return Err(malformed("PNG predictor: unknown row filter")),
            };
        }
        out.extend_from_slice(&cur);
        prev = cur;
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
