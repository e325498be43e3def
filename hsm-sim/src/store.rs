//! The token directory: where token objects (`CKA_TOKEN = true`) live between processes.
//!
//! ```text
//! $TANDEM_HSM_SIM_DIR/            (default ./hsm-sim-tokens)
//!   .lock                         flock'ed while any file below is read or written
//!   token.meta                    v1 | label | serial | SO wrap | user wrap
//!   objects/<32 hex>.obj          v1 | 0 | attributes            (public object, in clear)
//!                                 v1 | 1 | AES-256-GCM(token key, attributes)  (private object)
//! ```
//!
//! Every blob starts with a version byte; an unknown version or kind is rejected.
//! Files are replaced atomically (write to a temporary file with a unique name, then rename).
//! The directories are owner-only (0700) and the files 0600, set when they are created and
//! again the first time a process takes the lock (the module's first access).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use cryptoki_sys::CK_ATTRIBUTE_TYPE;
use zeroize::Zeroizing;

use crate::crypto;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::token::{TokenKey, TokenMeta, WrappedKey};

/// Environment variable naming the token directory.
pub const DIR_ENV: &str = "TANDEM_HSM_SIM_DIR";
/// Token directory when [`DIR_ENV`] is not set.
pub const DEFAULT_DIR: &str = "hsm-sim-tokens";

const VERSION: u8 = 1;
const KIND_PUBLIC: u8 = 0;
const KIND_PRIVATE: u8 = 1;

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("rejected {what}"))
}

/// The token directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// Whether this process has made the existing files owner-only.
    restricted: std::sync::atomic::AtomicBool,
}

/// Holds the directory lock; released when dropped (the file is closed).
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] File);

impl Store {
    /// The directory from [`DIR_ENV`], or [`DEFAULT_DIR`].
    pub fn from_env() -> Self {
        let dir = std::env::var_os(DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
        Self {
            dir,
            restricted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn objects_dir(&self) -> PathBuf {
        self.dir.join("objects")
    }

    /// Takes the exclusive directory lock (blocks while another process holds it).
    /// Creates the directory (owner-only) on first use; the first time in a process, makes
    /// the directories 0700 and the files 0600 again.
    pub fn lock(&self) -> Result<DirLock> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(self.objects_dir())?;
        let f = owner_only(OpenOptions::new().create(true).truncate(false).write(true))
            .open(self.dir.join(".lock"))?;
        f.lock()?;
        let lock = DirLock(f);
        if !self.restricted.load(std::sync::atomic::Ordering::Relaxed) {
            self.restrict(&lock)?;
            self.restricted
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(lock)
    }

    /// Directories 0700, files 0600 (a token directory copied or unpacked with wider modes).
    #[cfg(unix)]
    fn restrict(&self, _lock: &DirLock) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode: u32| fs::set_permissions(p, fs::Permissions::from_mode(mode));
        set(&self.dir, 0o700)?;
        set(&self.objects_dir(), 0o700)?;
        for entry in fs::read_dir(&self.dir)?.chain(fs::read_dir(self.objects_dir())?) {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                set(&entry.path(), 0o600)?;
            }
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn restrict(&self, _lock: &DirLock) -> Result<()> {
        Ok(())
    }

    /// Writes `path` through a temporary file with a unique name (created exclusively,
    /// owner-only), so that no two writers ever share one, then renames it over `path`.
    fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::Storage("no file name".into()))?
            .to_string_lossy();
        let (tmp, mut f) = loop {
            let mut suffix = [0u8; 8];
            crypto::random(&mut suffix)?;
            let hex: String = suffix.iter().map(|x| format!("{x:02x}")).collect();
            let tmp = path.with_file_name(format!(".{name}.{hex}.tmp"));
            match owner_only(OpenOptions::new().create_new(true).write(true)).open(&tmp) {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        };
        if let Err(e) = f
            .write_all(bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| fs::rename(&tmp, path))
        {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        drop(f);
        // The rename itself must survive a crash too.
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    /// Reads `token.meta`; `None` when the token was never initialised.
    pub fn load_meta(&self, _lock: &DirLock) -> Result<Option<TokenMeta>> {
        let bytes = match fs::read(self.dir.join("token.meta")) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut r = Reader(&bytes);
        if r.u8()? != VERSION {
            return Err(corrupt("token.meta version"));
        }
        let label = r.take(32)?.try_into().map_err(|_| corrupt("label"))?;
        let serial = r.take(16)?.try_into().map_err(|_| corrupt("serial"))?;
        let so_len = r.u32()? as usize;
        let so_wrap = WrappedKey(r.take(so_len)?.to_vec());
        let user_wrap = match r.u8()? {
            0 => None,
            1 => {
                let len = r.u32()? as usize;
                Some(WrappedKey(r.take(len)?.to_vec()))
            }
            _ => return Err(corrupt("token.meta user wrap")),
        };
        if !r.0.is_empty() {
            return Err(corrupt("token.meta trailing bytes"));
        }
        Ok(Some(TokenMeta {
            label,
            serial,
            so_wrap,
            user_wrap,
        }))
    }

    /// Writes `token.meta`.
    pub fn save_meta(&self, _lock: &DirLock, meta: &TokenMeta) -> Result<()> {
        let mut b = vec![VERSION];
        b.extend_from_slice(&meta.label);
        b.extend_from_slice(&meta.serial);
        push_bytes(&mut b, &meta.so_wrap.0)?;
        match &meta.user_wrap {
            None => b.push(0),
            Some(w) => {
                b.push(1);
                push_bytes(&mut b, &w.0)?;
            }
        }
        Self::write_atomic(&self.dir.join("token.meta"), &b)
    }

    /// Removes every token object (`C_InitToken`).
    pub fn wipe_objects(&self, _lock: &DirLock) -> Result<()> {
        for entry in fs::read_dir(self.objects_dir())? {
            fs::remove_file(entry?.path())?;
        }
        Ok(())
    }

    /// Loads the token objects: public ones always, private ones only with the token key.
    pub fn load_objects(
        &self,
        _lock: &DirLock,
        key: Option<&TokenKey>,
    ) -> Result<Vec<(String, Object)>> {
        let mut out = Vec::new();
        let mut entries: Vec<_> =
            fs::read_dir(self.objects_dir())?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".obj")) else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            let bytes = fs::read(entry.path())?;
            let (&version, rest) = bytes.split_first().ok_or_else(|| corrupt("empty object"))?;
            if version != VERSION {
                return Err(corrupt("object version"));
            }
            let (&kind, payload) = rest.split_first().ok_or_else(|| corrupt("object kind"))?;
            let obj = match (kind, key) {
                (KIND_PUBLIC, _) => decode_object(payload)?,
                (KIND_PRIVATE, None) => continue,
                (KIND_PRIVATE, Some(key)) => {
                    let plain = crypto::open(key.expose_secret(), &object_aad(id), payload)
                        .ok_or_else(|| corrupt("private object (authentication failed)"))?;
                    decode_object(&plain)?
                }
                _ => return Err(corrupt("object kind")),
            };
            out.push((id.to_owned(), obj));
        }
        Ok(out)
    }

    /// Writes one token object; a private object needs the token key.
    pub fn save_object(
        &self,
        _lock: &DirLock,
        id: &str,
        obj: &Object,
        key: Option<&TokenKey>,
    ) -> Result<()> {
        let plain = encode_object(obj)?;
        let mut b = vec![VERSION];
        if obj.is_private() {
            let key =
                key.ok_or_else(|| Error::Storage("private object without token key".into()))?;
            b.push(KIND_PRIVATE);
            b.extend_from_slice(&crypto::seal(key.expose_secret(), &object_aad(id), &plain)?);
        } else {
            b.push(KIND_PUBLIC);
            b.extend_from_slice(&plain);
        }
        Self::write_atomic(&self.objects_dir().join(format!("{id}.obj")), &b)
    }

    /// Deletes one token object.
    pub fn delete_object(&self, _lock: &DirLock, id: &str) -> Result<()> {
        match fs::remove_file(self.objects_dir().join(format!("{id}.obj"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(File::open(self.objects_dir())?.sync_all()?),
        }
    }
}

/// Files of the token directory are readable by their owner only.
fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// A fresh random object file id (32 hex digits).
pub fn new_object_id() -> Result<String> {
    let mut b = [0u8; 16];
    crypto::random(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit())
}

fn object_aad(id: &str) -> Vec<u8> {
    let mut a = b"tandem-hsm-sim object v1 ".to_vec();
    a.extend_from_slice(id.as_bytes());
    a
}

fn push_bytes(b: &mut Vec<u8>, v: &[u8]) -> Result<()> {
    let len = u32::try_from(v.len()).map_err(|_| Error::Storage("value too long".into()))?;
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(v);
    Ok(())
}

/// `count (u32) || (type (u64) || len (u32) || value)*`, little-endian.
fn encode_object(obj: &Object) -> Result<Zeroizing<Vec<u8>>> {
    let attrs: Vec<_> = obj.attributes().collect();
    let mut b = Zeroizing::new(Vec::new());
    let count =
        u32::try_from(attrs.len()).map_err(|_| Error::Storage("too many attributes".into()))?;
    b.extend_from_slice(&count.to_le_bytes());
    for (t, v) in attrs {
        #[allow(clippy::unnecessary_cast)] // CK_ULONG is 32-bit on some targets
        let t = *t as u64;
        b.extend_from_slice(&t.to_le_bytes());
        push_bytes(&mut b, v)?;
    }
    Ok(b)
}

fn decode_object(bytes: &[u8]) -> Result<Object> {
    let mut r = Reader(bytes);
    let count = r.u32()?;
    let mut obj = Object::default();
    for _ in 0..count {
        let t = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| corrupt("attribute"))?);
        let t = CK_ATTRIBUTE_TYPE::try_from(t).map_err(|_| corrupt("attribute type"))?;
        let len = r.u32()? as usize;
        obj.set(t, Zeroizing::new(r.take(len)?.to_vec()));
    }
    if !r.0.is_empty() {
        return Err(corrupt("object trailing bytes"));
    }
    Ok(obj)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("truncated blob"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| corrupt("length"))?,
        ))
    }
}
