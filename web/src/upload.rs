//! Uploads: `multipart/form-data` bodies streamed part by part into files of a private
//! temporary directory, never held whole in memory.
//!
//! ```text
//!  body (limit::middleware: Limited) ─▶ csrf::middleware (first part must be `csrf`,
//!                                        checked before any file part is read)
//!                                     ─▶ receive: text parts (≤ 4 KiB) in memory,
//!                                        file parts chunk by chunk ─▶ TempUpload (0600)
//! ```
//!
//! [`UploadDir`] is a directory only this process can enter (0700), removed when the process
//! ends normally. A [`TempUpload`] is deleted when dropped: the verification page drops its
//! uploads once validated; the signing pages keep theirs in the browser's session until the
//! signed file is downloaded or the session ends (logout, expiry: the sweep drops it).
//! Reading past the upload limit fails while streaming ([`UploadError::TooLarge`]), with or
//! without `Content-Length`.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use axum::body::Body;
use bytes::Bytes;
use http_body_util::LengthLimitError;
use tokio::io::AsyncWriteExt as _;

/// The longest text field kept (the CSRF token is 64 characters).
pub const MAX_TEXT_FIELD: usize = 4096;
/// At most this many parts in one form.
pub const MAX_PARTS: usize = 8;

/// The private directory uploads go to: mode 0700, removed on drop.
#[derive(Debug)]
pub struct UploadDir {
    dir: tempfile::TempDir,
}

impl UploadDir {
    /// A fresh directory `tandem-web-*` under the system's temporary directory.
    pub fn new() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tandem-web-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()?;
        Ok(Self { dir })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new empty file (0600) in it, deleted when the returned path drops.
    pub fn new_file(&self, prefix: &str) -> std::io::Result<(std::fs::File, tempfile::TempPath)> {
        let f = tempfile::Builder::new()
            .prefix(prefix)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(self.dir.path())?;
        Ok(f.into_parts())
    }
}

/// A received (or produced) file: its bytes in the upload directory, the name the person
/// gave it (sanitised for display). Deleted when dropped.
#[derive(Debug)]
pub struct TempUpload {
    path: tempfile::TempPath,
    name: String,
    size: u64,
}

impl TempUpload {
    /// A file at `path` (in the upload directory) named `name` (sanitised here).
    pub fn new(path: tempfile::TempPath, name: &str, size: u64) -> Self {
        Self {
            path,
            name: display_name(name),
            size,
        }
    }

    /// Where the bytes are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sanitised original name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// A received form: its text fields and its files, by field name.
#[derive(Debug, Default)]
pub struct UploadForm {
    /// Text fields (the `csrf` field included).
    pub fields: Vec<(String, String)>,
    /// File fields that carried a file (an empty file input sends none).
    pub files: Vec<(String, TempUpload)>,
}

impl UploadForm {
    /// The file of field `name`, taken out of the form.
    pub fn take_file(&mut self, name: &str) -> Option<TempUpload> {
        let i = self.files.iter().position(|(n, _)| n == name)?;
        Some(self.files.swap_remove(i).1)
    }
}

/// Why a form could not be received.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body exceeded the upload limit while streaming.
    #[error("the upload exceeds the limit")]
    TooLarge,
    /// Not a multipart form, or a broken one.
    #[error("not a readable multipart/form-data body: {0}")]
    Malformed(String),
    /// Writing the temporary file failed.
    #[error("cannot store the upload: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether an error (or one of its sources) is the upload limit's.
pub fn is_limit_error(e: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.is::<LengthLimitError>() {
            return true;
        }
        cur = c.source();
    }
    false
}

fn multer_error(e: multer::Error) -> UploadError {
    if is_limit_error(&e) {
        UploadError::TooLarge
    } else {
        UploadError::Malformed(e.to_string())
    }
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?;
    let media = ct.split(';').next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    multer::parse_boundary(ct).ok()
}

/// Receives a multipart form: text parts into memory (at most [`MAX_TEXT_FIELD`] bytes
/// each), file parts streamed into new files of `dir`.
pub async fn receive(
    dir: &UploadDir,
    body: Body,
    boundary: &str,
) -> Result<UploadForm, UploadError> {
    let mut mp = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut form = UploadForm::default();
    let mut parts = 0;
    while let Some(mut field) = mp.next_field().await.map_err(multer_error)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(UploadError::Malformed("too many parts".into()));
        }
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                let (file, path) = dir.new_file("up-")?;
                let mut out = tokio::fs::File::from_std(file);
                let mut size = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
                    size += chunk.len() as u64;
                    out.write_all(&chunk).await?;
                }
                out.flush().await?;
                // No file chosen: the browser sends an empty part without a name.
                if size > 0 || !file_name.is_empty() {
                    form.files
                        .push((name, TempUpload::new(path, &file_name, size)));
                }
            }
            None => {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
                    if text.len() + chunk.len() > MAX_TEXT_FIELD {
                        return Err(UploadError::Malformed(format!("field {name} too long")));
                    }
                    text.extend_from_slice(&chunk);
                }
                let text = String::from_utf8(text)
                    .map_err(|_| UploadError::Malformed(format!("field {name} not UTF-8")))?;
                form.fields.push((name, text));
            }
        }
    }
    Ok(form)
}

/// How many bytes of a multipart body are read at most to find its first part.
pub const FIRST_PART_MAX: usize = 8192;

/// Reads the start of a multipart body up to the end of its first part (at most
/// [`FIRST_PART_MAX`] bytes): that part's name and text value, and the whole body again
/// (the bytes read followed by the rest, still streaming).
pub async fn first_field(
    body: Body,
    boundary: &str,
) -> Result<(Option<(String, String)>, Body), UploadError> {
    use futures_util::StreamExt as _;
    let mut rest = body.into_data_stream();
    let mut prefix = Vec::new();
    let delimiter = format!("--{boundary}");
    while prefix.len() < FIRST_PART_MAX
        && count(&prefix, delimiter.as_bytes()) < 2
        && let Some(chunk) = rest.next().await
    {
        let chunk = chunk.map_err(|e| {
            if is_limit_error(&e) {
                UploadError::TooLarge
            } else {
                UploadError::Malformed(e.to_string())
            }
        })?;
        prefix.extend_from_slice(&chunk);
    }
    let prefix = Bytes::from(prefix);
    let found = first_text_part(prefix.clone(), boundary).await;
    let head = futures_util::stream::once(async move { Ok::<Bytes, axum::Error>(prefix) });
    Ok((found, Body::from_stream(head.chain(rest))))
}

/// The first part of `bytes` if it is a complete text part.
async fn first_text_part(bytes: Bytes, boundary: &str) -> Option<(String, String)> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let field = mp.next_field().await.ok()??;
    if field.file_name().is_some() {
        return None;
    }
    let name = field.name()?.to_owned();
    let value = field.text().await.ok()?;
    Some((name, value))
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// A file name as shown: the last path component, without control characters, at most 120
/// characters; `upload` if nothing is left.
pub fn display_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .take(120)
        .collect();
    let clean = clean.trim().trim_start_matches('.').trim().to_owned();
    if clean.is_empty() {
        "upload".into()
    } else {
        clean
    }
}

/// `Content-Disposition: attachment` for a download named `name`: an ASCII fallback
/// (`filename`) and the UTF-8 name (`filename*`, RFC 6266 / RFC 8187).
pub fn content_disposition(name: &str) -> String {
    let name = display_name(name);
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `name` without its last extension (for derived names like `x-signed.pdf`).
pub fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => name,
    }
}

/// A path for an output file in the upload directory (not created).
pub fn output_path(dir: &UploadDir, ext: &str) -> PathBuf {
    let mut b = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    dir.path().join(format!("out-{}.{ext}", hex::encode(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Limited;

    const B: &str = "XyZ";

    fn body(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, file, data) in parts {
            out.extend_from_slice(format!("--{B}\r\n").as_bytes());
            match file {
                Some(f) => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
                ),
                None => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{B}--\r\n").as_bytes());
        out
    }

    /// A body delivered in small chunks without a length (like a chunked upload).
    fn chunked(bytes: Vec<u8>, limit: usize) -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(100)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let inner = Body::from_stream(futures_util::stream::iter(chunks));
        Body::new(Limited::new(inner, limit))
    }

    #[tokio::test]
    async fn files_are_streamed_to_private_files_and_deleted_on_drop() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = UploadDir::new().unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let data = vec![7u8; 5000];
        let raw = body(&[
            ("csrf", None, b"abc"),
            ("file", Some("../../etc/Bericht \u{202e}fdp.exe"), &data),
            ("document", Some(""), b""),
        ]);
        let (first, whole) = first_field(chunked(raw, 1 << 20), B).await.unwrap();
        assert_eq!(first, Some(("csrf".into(), "abc".into())));
        let mut form = receive(&dir, whole, B).await.unwrap();
        assert_eq!(form.fields, vec![("csrf".to_owned(), "abc".to_owned())]);
        assert!(form.take_file("document").is_none(), "no file chosen");
        let f = form.take_file("file").unwrap();
        assert_eq!(f.name(), "Bericht fdp.exe");
        assert_eq!(f.size(), 5000);
        assert_eq!(std::fs::read(f.path()).unwrap(), data);
        let mode = std::fs::metadata(f.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let p = f.path().to_owned();
        drop(f);
        assert!(!p.exists());
    }

    #[tokio::test]
    async fn the_limit_holds_without_content_length() {
        let dir = UploadDir::new().unwrap();
        let raw = body(&[
            ("csrf", None, b"abc"),
            ("file", Some("a.bin"), &[1u8; 4000]),
        ]);
        let (_, whole) = first_field(chunked(raw, 1000), B).await.unwrap();
        let e = receive(&dir, whole, B).await.unwrap_err();
        assert!(matches!(e, UploadError::TooLarge), "{e}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left"
        );
    }

    #[tokio::test]
    async fn a_file_first_or_garbage_has_no_first_text_field() {
        let raw = body(&[("file", Some("a.pdf"), b"%PDF-"), ("csrf", None, b"abc")]);
        let (first, _) = first_field(chunked(raw, 1 << 20), B).await.unwrap();
        assert_eq!(first, None);
        let (first, _) = first_field(chunked(b"garbage".to_vec(), 1 << 20), B)
            .await
            .unwrap();
        assert_eq!(first, None);
        let dir = UploadDir::new().unwrap();
        assert!(receive(&dir, Body::from("garbage"), B).await.is_err());
    }

    #[test]
    fn names_are_sanitised_for_display_and_headers() {
        assert_eq!(display_name("C:\\Users\\x\\Vertrag.pdf"), "Vertrag.pdf");
        assert_eq!(display_name("../.."), "upload");
        assert_eq!(display_name("a\r\nb"), "ab");
        assert_eq!(
            content_disposition("Prüf \"x\".pdf"),
            "attachment; filename=\"Pr_f _x_.pdf\"; filename*=UTF-8''Pr%C3%BCf%20%22x%22.pdf"
        );
        assert_eq!(stem("a.b.pdf"), "a.b");
        assert_eq!(stem(".pdf"), ".pdf");
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(boundary(Some("text/plain; boundary=abc")), None);
    }
}
