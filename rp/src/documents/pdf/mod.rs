//! A small PDF object reader and writer for signing (PAdES): only what an incremental update
//! needs. [`reader::PdfReader`] reads the trailer and cross-reference sections from the end
//! of the file (classic tables and xref streams, following `/Prev`) and loads single
//! objects on demand (also from object streams); nothing else of the file is read, so a
//! large PDF costs memory for its cross-reference table only. [`Obj`] is a parsed object and
//! [`Obj::write`] serialises it.
//!
//! Parsing is bounded: nesting depth, object sizes and stream sizes have limits, and every
//! malformation is an [`PdfError`], never a panic.

pub mod reader;

use std::fmt::Write as _;

/// Deepest nesting of arrays and dictionaries accepted.
const MAX_DEPTH: usize = 64;

/// Why a PDF could not be read or updated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PdfError {
    /// Reading the file failed.
    #[error("cannot read the PDF: {0}")]
    Io(String),
    /// The file is not a PDF or is damaged at the named place.
    #[error("not a readable PDF: {0}")]
    Malformed(String),
    /// The file ends before the named structure is complete.
    #[error("the PDF is truncated: {0}")]
    Truncated(String),
    /// The PDF is encrypted (`/Encrypt` in the trailer).
    #[error("the PDF is encrypted; encrypted PDFs are neither signed nor checked here")]
    Encrypted,
    /// A structure the signer needs is missing or unsupported.
    #[error("the PDF cannot be signed: {0}")]
    Unsupported(String),
}

pub(crate) fn malformed(what: impl Into<String>) -> PdfError {
    PdfError::Malformed(what.into())
}

/// A PDF object. Strings and names hold their decoded bytes; reals keep their text.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real number, as written.
    Real(String),
    /// A string (literal or hex), decoded.
    Str(Vec<u8>),
    /// A name without the slash, `#xx` decoded.
    Name(Vec<u8>),
    /// An array.
    Array(Vec<Obj>),
    /// A dictionary.
    Dict(Dict),
    /// An indirect reference `n g R`.
    Ref(u32, u16),
    /// A stream: its dictionary and its raw (still encoded) data.
    Stream(Dict, Vec<u8>),
}

/// A dictionary, keys in the order read (keys without the slash).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dict(pub Vec<(Vec<u8>, Obj)>);

impl Dict {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Obj> {
        self.0
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: &str, value: Obj) {
        match self.0.iter_mut().find(|(k, _)| k == key.as_bytes()) {
            Some(e) => e.1 = value,
            None => self.0.push((key.as_bytes().to_vec(), value)),
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key.as_bytes());
    }

    /// The integer value of `key`.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Obj::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// Whether `key` holds the name `name`.
    pub fn is_name(&self, key: &str, name: &str) -> bool {
        matches!(self.get(key), Some(Obj::Name(n)) if n == name.as_bytes())
    }
}

impl Obj {
    /// A name object.
    pub fn name(n: &str) -> Obj {
        Obj::Name(n.as_bytes().to_vec())
    }

    /// The dictionary of a dictionary or stream.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Obj::Dict(d) | Obj::Stream(d, _) => Some(d),
            _ => None,
        }
    }

    /// Serialises the object (streams with their data and a matching `/Length`).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Obj::Null => out.extend_from_slice(b"null"),
            Obj::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Obj::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Obj::Real(r) => out.extend_from_slice(r.as_bytes()),
            Obj::Str(s) => {
                let mut h = String::with_capacity(2 + 2 * s.len());
                h.push('<');
                for b in s {
                    let _ = write!(h, "{b:02X}");
                }
                h.push('>');
                out.extend_from_slice(h.as_bytes());
            }
            Obj::Name(n) => write_name(n, out),
            Obj::Array(a) => {
                out.push(b'[');
                for (i, o) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    o.write(out);
                }
                out.push(b']');
            }
            Obj::Dict(d) => write_dict(d, out),
            Obj::Ref(n, g) => out.extend_from_slice(format!("{n} {g} R").as_bytes()),
            Obj::Stream(d, data) => {
                let mut d = d.clone();
                d.set("Length", Obj::Int(data.len() as i64));
                write_dict(&d, out);
                out.extend_from_slice(b"\nstream\n");
                out.extend_from_slice(data);
                out.extend_from_slice(b"\nendstream");
            }
        }
    }
}

fn write_dict(d: &Dict, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<<");
    for (k, v) in &d.0 {
        write_name(k, out);
        out.push(b' ');
        v.write(out);
        out.push(b'\n');
    }
    out.extend_from_slice(b">>");
}

fn write_name(n: &[u8], out: &mut Vec<u8>) {
    out.push(b'/');
    for &b in n {
        if b.is_ascii_graphic() && !is_delimiter(b) && b != b'#' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("#{b:02X}").as_bytes());
        }
    }
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// Why parsing stopped: the bytes ran out (read more and retry) or they are wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// More bytes are needed.
    Eof,
    /// Malformed at the given position.
    Bad(usize, &'static str),
}

type PResult<T> = Result<T, ParseError>;

/// A parser over a window of the file's bytes.
pub(crate) struct Parser<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Parser { buf, pos: 0 }
    }

    fn peek(&self) -> PResult<u8> {
        self.buf.get(self.pos).copied().ok_or(ParseError::Eof)
    }

    /// Skips whitespace and comments.
    pub(crate) fn skip_ws(&mut self) -> PResult<()> {
        loop {
            let b = self.peek()?;
            if is_whitespace(b) {
                self.pos += 1;
            } else if b == b'%' {
                while !matches!(self.peek()?, b'\r' | b'\n') {
                    self.pos += 1;
                }
            } else {
                return Ok(());
            }
        }
    }

    /// A keyword or number token (regular characters).
    pub(crate) fn token(&mut self) -> PResult<&'a [u8]> {
        self.skip_ws()?;
        let start = self.pos;
        while let Some(&b) = self.buf.get(self.pos) {
            if is_whitespace(b) || is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        if self.pos == self.buf.len() {
            // A token at the end of the window may continue beyond it.
            return Err(ParseError::Eof);
        }
        Ok(&self.buf[start..self.pos])
    }

    /// Expects the keyword `kw`.
    pub(crate) fn keyword(&mut self, kw: &'static str) -> PResult<()> {
        let at = self.pos;
        if self.token()? == kw.as_bytes() {
            Ok(())
        } else {
            Err(ParseError::Bad(at, kw))
        }
    }

    /// An unsigned integer token.
    pub(crate) fn uint(&mut self) -> PResult<u64> {
        let at = self.pos;
        let t = self.token()?;
        std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ParseError::Bad(at, "an unsigned integer"))
    }

    /// One object (a reference `n g R` included).
    pub(crate) fn object(&mut self, depth: usize) -> PResult<Obj> {
        if depth > MAX_DEPTH {
            return Err(ParseError::Bad(self.pos, "nesting too deep"));
        }
        self.skip_ws()?;
        let at = self.pos;
        match self.peek()? {
            b'/' => {
                self.pos += 1;
                Ok(Obj::Name(self.name_body()?))
            }
            b'(' => self.literal_string(),
            b'<' => {
                if self.buf.get(self.pos + 1) == Some(&b'<') {
                    self.pos += 2;
                    Ok(Obj::Dict(self.dict_body(depth)?))
                } else {
                    self.hex_string()
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws()?;
                    if self.peek()? == b']' {
                        self.pos += 1;
                        return Ok(Obj::Array(items));
                    }
                    items.push(self.object(depth + 1)?);
                }
            }
            _ => {
                let t = self.token()?;
                match t {
                    b"null" => Ok(Obj::Null),
                    b"true" => Ok(Obj::Bool(true)),
                    b"false" => Ok(Obj::Bool(false)),
                    _ => self.number_or_ref(t, at),
                }
            }
        }
    }

    fn number_or_ref(&mut self, t: &[u8], at: usize) -> PResult<Obj> {
        let s = std::str::from_utf8(t).map_err(|_| ParseError::Bad(at, "an object"))?;
        if let Ok(i) = s.parse::<i64>() {
            // `n g R`? Running out of bytes while looking ahead is reported, so that a
            // reference cut by the window's end is read again with more bytes.
            let save = self.pos;
            if (0..=i64::from(u32::MAX)).contains(&i) && self.is_ref_tail()? {
                self.pos = save;
                let g = self.uint()?;
                self.keyword("R")?;
                return Ok(Obj::Ref(i as u32, g as u16));
            }
            self.pos = save;
            return Ok(Obj::Int(i));
        }
        let numeric = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+'));
        if numeric && (s.parse::<f64>().is_ok() || s.contains('.')) {
            Ok(Obj::Real(s.to_owned()))
        } else {
            Err(ParseError::Bad(at, "an object"))
        }
    }

    /// Whether the next tokens are `g R` (a generation up to 65535); moves the position.
    fn is_ref_tail(&mut self) -> PResult<bool> {
        self.skip_ws()?;
        if !self.peek()?.is_ascii_digit() {
            return Ok(false);
        }
        let g = self.token()?;
        if !std::str::from_utf8(g).is_ok_and(|g| g.parse::<u16>().is_ok()) {
            return Ok(false);
        }
        self.skip_ws()?;
        if self.peek()? != b'R' {
            return Ok(false);
        }
        Ok(self.token()? == b"R")
    }

    fn name_body(&mut self) -> PResult<Vec<u8>> {
        let mut n = Vec::new();
        loop {
            let b = self.peek()?;
            if is_whitespace(b) || is_delimiter(b) {
                return Ok(n);
            }
            self.pos += 1;
            if b == b'#' {
                let h = self
                    .buf
                    .get(self.pos..self.pos + 2)
                    .ok_or(ParseError::Eof)?;
                let v = std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(ParseError::Bad(self.pos, "a #xx name escape"))?;
                n.push(v);
                self.pos += 2;
            } else {
                n.push(b);
            }
        }
    }

    fn dict_body(&mut self, depth: usize) -> PResult<Dict> {
        let mut d = Dict::default();
        loop {
            self.skip_ws()?;
            match self.peek()? {
                b'>' => {
                    if self.buf.get(self.pos + 1).ok_or(ParseError::Eof)? != &b'>' {
                        return Err(ParseError::Bad(self.pos, ">>"));
                    }
                    self.pos += 2;
                    return Ok(d);
                }
                b'/' => {
                    self.pos += 1;
                    let k = self.name_body()?;
                    let v = self.object(depth + 1)?;
                    d.0.push((k, v));
                }
                _ => return Err(ParseError::Bad(self.pos, "a dictionary key")),
            }
        }
    }

    fn hex_string(&mut self) -> PResult<Obj> {
        self.pos += 1;
        let mut digits = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'>' => break,
                _ if is_whitespace(b) => {}
                _ => digits.push(
                    (b as char)
                        .to_digit(16)
                        .ok_or(ParseError::Bad(self.pos - 1, "a hex digit"))?
                        as u8,
                ),
            }
        }
        if digits.len() % 2 == 1 {
            digits.push(0);
        }
        Ok(Obj::Str(
            digits.chunks(2).map(|c| (c[0] << 4) | c[1]).collect(),
        ))
    }

    fn literal_string(&mut self) -> PResult<Obj> {
        self.pos += 1;
        let mut s = Vec::new();
        let mut depth = 1usize;
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'(' => {
                    depth += 1;
                    s.push(b);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(Obj::Str(s));
                    }
                    s.push(b);
                }
                b'\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'n' => s.push(b'\n'),
                        b'r' => s.push(b'\r'),
                        b't' => s.push(b'\t'),
                        b'b' => s.push(8),
                        b'f' => s.push(12),
                        b'\r' => {
                            if self.peek()? == b'\n' {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek()? {
                                    d @ b'0'..=b'7' => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            s.push((v & 0xff) as u8);
                        }
                        other => s.push(other),
                    }
                }
                _ => s.push(b),
            }
        }
    }
}

/// Parses one object from `bytes` (tests and small buffers).
pub fn parse_object(bytes: &[u8]) -> Result<Obj, PdfError> {
    // A trailing space ends a final token.
    let mut buf = bytes.to_vec();
    buf.push(b' ');
    Parser::new(&buf).object(0).map_err(|e| match e {
        ParseError::Eof => PdfError::Truncated("object".into()),
        ParseError::Bad(at, what) => malformed(format!("expected {what} at byte {at}")),
    })
}

#[cfg(test)]
mod tests;
