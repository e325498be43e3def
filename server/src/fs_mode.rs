//! Owner-only files and directories: the modes `tandem server init` and the device simulator
//! create, that every open keeps, and that `tandem server run` insists on before it starts
//! (as ssh does with private keys).
//!
//! | what | mode |
//! |---|---|
//! | the data directory and its subdirectories (`tls/`, `hsm/`, `pki/`) | 0700 |
//! | `tandem.db` and its `-wal` and `-shm`, `tandem.toml`, `tls/server.key` | 0600 |
//! | PIN files (`hsm/user-pin`, `hsm/so-pin`), hsm-sim token files (`hsm/token.meta`, `hsm/objects/*.obj`, `hsm/.lock`) | 0600 |
//! | certificates (`tls/server.crt`, `pki/root.pem`, `pki/issuing.pem`): public | umask (0644) |
//! | the device simulator's directory / its files (`tandem device --dir P`) | 0700 / 0600 |
//!
//! SQLite creates `-wal` and `-shm` with the mode of the database file, so a database made
//! 0600 before SQLite first opens it keeps both private. Files are replaced atomically: a
//! temporary file with a unique name, created 0600 with `O_EXCL`, is renamed over the target,
//! so a reader that had opened the old file never sees the new contents.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a private directory.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of a private file.
pub const PRIVATE_FILE: u32 = 0o600;
/// Permission bits of group and others.
const GROUP_OTHER: u32 = 0o077;

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Creates `dir` with mode 0700 (missing parents as the umask says), or sets an existing
/// `dir` to 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    match fs::DirBuilder::new().mode(PRIVATE_DIR).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        r => r?,
    }
    set_mode(dir, PRIVATE_DIR)
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file with a unique name
/// in the same directory (created with `O_EXCL`, mode 0600), synced, renamed over `path`,
/// and the directory synced. Concurrent writers never share a temporary file; the last
/// rename wins.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy();
    let (tmp, mut f) = loop {
        let mut suffix = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut suffix);
        let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// [`write_private`] with the path in the error: the device state, device-link and QR files
/// of the command line, the test accounts' device states.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    write_private(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Makes the SQLite database `path` owner-only before SQLite opens it: creates it empty with
/// mode 0600 when missing, sets an existing one (and its `-wal`, `-shm` and `-journal`) to
/// 0600. SQLite gives the WAL and shared-memory files it creates later the database's mode.
pub fn prepare_database(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .open(path)?
        .set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))?;
    for companion in database_companions(path) {
        match set_mode(&companion, PRIVATE_FILE) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            r => r?,
        }
    }
    Ok(())
}

/// `<db>-wal`, `<db>-shm`, `<db>-journal`.
fn database_companions(db: &Path) -> [PathBuf; 3] {
    ["-wal", "-shm", "-journal"].map(|suffix| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    })
}

/// A file or directory that group or others may access although it must be its owner's
/// alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooOpen {
    /// What it is ("data directory", "database", ...).
    pub what: &'static str,
    /// The path as configured.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// The mode it should have (0700 or 0600).
    pub fix: u32,
}

impl fmt::Display for TooOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} has mode {:04o}: it must not be accessible by group or others; run: chmod {:o} {}",
            self.what,
            self.path.display(),
            self.mode,
            self.fix,
            shell_quote(&self.path)
        )
    }
}

/// `path` as one shell word.
fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@%".contains(&b))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `Some` when `path` exists and group or others have any permission on it; `None` when it
/// is private or does not exist.
pub fn too_open(what: &'static str, path: &Path) -> io::Result<Option<TooOpen>> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mode = meta.mode() & 0o7777;
    Ok((mode & GROUP_OTHER != 0).then(|| TooOpen {
        what,
        path: path.to_path_buf(),
        mode,
        fix: if meta.is_dir() {
            PRIVATE_DIR
        } else {
            PRIVATE_FILE
        },
    }))
}

/// Everything below `dir` (not following symbolic links) that is too open.
fn too_open_below(
    dir_what: &'static str,
    file_what: &'static str,
    dir: &Path,
    found: &mut Vec<TooOpen>,
) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut entries: Vec<_> = entries.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            found.extend(too_open(dir_what, &path)?);
            too_open_below(dir_what, file_what, &path, found)?;
        } else {
            found.extend(too_open(file_what, &path)?);
        }
    }
    Ok(())
}

/// The secret files of a server besides its data directory, as its configuration names them
/// (`Config::server_files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFiles {
    /// The SQLite database (its `-wal`, `-shm` and `-journal` are checked with it).
    pub database: PathBuf,
    /// The HSM PIN file, if the PIN comes from a file.
    pub pin_file: Option<PathBuf>,
    /// The TLS private key.
    pub tls_key: PathBuf,
    /// hsm-sim's token directory, if hsm-sim is configured.
    pub hsm_sim_dir: Option<PathBuf>,
}

/// The checks of `tandem server run`: the data directory, the database and its WAL and
/// shared-memory files, the HSM PIN file, the TLS private key and the HSM token files
/// (`<data-dir>/hsm`, and hsm-sim's token directory wherever it is) must not be accessible
/// by group or others. Returns one error naming every offending path, its mode and the
/// `chmod` that fixes it; changes nothing.
pub fn check_server_files(files: &ServerFiles, data_dir: &Path) -> anyhow::Result<()> {
    let mut found = Vec::new();
    match too_open("data directory", data_dir)? {
        Some(t) => found.push(t),
        None => anyhow::ensure!(
            data_dir.is_dir(),
            "data directory {} does not exist (run `tandem server init`)",
            data_dir.display()
        ),
    }
    found.extend(too_open("database", &files.database)?);
    let [wal, shm, journal] = database_companions(&files.database);
    found.extend(too_open("database WAL", &wal)?);
    found.extend(too_open("database shared-memory file", &shm)?);
    found.extend(too_open("database journal", &journal)?);
    if let Some(pin_file) = &files.pin_file {
        found.extend(too_open("HSM PIN file", pin_file)?);
    }
    found.extend(too_open("TLS private key", &files.tls_key)?);
    let hsm_dir = data_dir.join("hsm");
    found.extend(too_open("HSM token directory", &hsm_dir)?);
    too_open_below("HSM token directory", "HSM file", &hsm_dir, &mut found)?;
    if let Some(sim_dir) = files.hsm_sim_dir.as_deref() {
        let inside = |d: &Path| {
            d.canonicalize()
                .ok()
                .zip(hsm_dir.canonicalize().ok())
                .is_some_and(|(d, hsm)| d.starts_with(hsm))
        };
        if !inside(sim_dir) {
            found.extend(too_open("hsm-sim token directory", sim_dir)?);
            too_open_below(
                "hsm-sim token directory",
                "hsm-sim token file",
                sim_dir,
                &mut found,
            )?;
        }
    }
    // One path may be reached twice (the PIN file inside `hsm/`).
    let mut seen = std::collections::BTreeSet::new();
    found.retain(|t| seen.insert(t.path.clone()));
    match found.as_slice() {
        [] => Ok(()),
        [one] => anyhow::bail!("refusing to start: {one}"),
        many => anyhow::bail!(
            "refusing to start: files the server keeps secret are accessible by group or others:\n  {}",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ),
    }
}

/// An exclusive lock on a directory (`flock` on `<dir>/.lock`, a 0600 file), held until
/// dropped. Processes that take it one after the other see each other's complete writes.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Blocks until the lock on `dir` is free, then takes it.
    pub fn acquire(dir: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_FILE)
            .open(dir.join(".lock"))?;
        file.lock()?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn private_dir_and_atomic_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a b");
        fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("secret");
        fs::write(&f, "old").unwrap();
        set_mode(&f, 0o644).unwrap();
        write_private(&f, b"new").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(fs::read(&f).unwrap(), b"new");
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"]);
        assert_eq!(too_open("directory", &dir).unwrap(), None);
        set_mode(tmp.path(), 0o751).unwrap();
        let t = too_open("directory", tmp.path()).unwrap().unwrap();
        assert_eq!((t.mode, t.fix), (0o751, 0o700));
        assert_eq!(too_open("missing", &dir.join("nothing")).unwrap(), None);
        set_mode(&f, 0o640).unwrap();
        let t = too_open("secret file", &f).unwrap().unwrap();
        assert_eq!(
            t.to_string(),
            format!(
                "secret file {} has mode 0640: it must not be accessible by group or others; run: chmod 600 '{}'",
                f.display(),
                f.display()
            )
        );
    }

    #[test]
    fn database_and_companions_become_private() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("t.db");
        prepare_database(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = tmp.path().join("t.db-wal");
        fs::write(&wal, "").unwrap();
        set_mode(&wal, 0o644).unwrap();
        set_mode(&db, 0o666).unwrap();
        prepare_database(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
    }

    #[test]
    fn concurrent_writers_do_not_collide() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("state.json");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let f = &f;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_private(f, &[i; 64]).unwrap();
                    }
                });
            }
        });
        let b = fs::read(&f).unwrap();
        assert!(b.len() == 64 && b.iter().all(|x| *x == b[0]));
    }
}
