//! File modes: `tandem server init` makes the data directory and everything secret in it
//! owner-only, and the running server and the device simulator keep it so (SQLite's WAL and
//! shared-memory files included); `tandem server run` refuses to start on a data directory,
//! database, WAL, PIN file or token file that group or others may access, says how to fix
//! it, and changes nothing.

#![allow(clippy::unwrap_used)] // tests

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tandem_tests::*;

/// Files anyone may read: certificates.
const PUBLIC: [&str; 5] = [
    "tls/server.crt",
    "pki/root.pem",
    "pki/issuing.pem",
    "pki/tsa.pem",
    "pki/origin.pem",
];

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every path below `dir` (relative), with its mode, size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, i64)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u32, u64, i64, i64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let size = if m.is_dir() { 0 } else { m.len() };
            out.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                (m.mode() & 0o7777, size, m.mtime(), m.mtime_nsec()),
            );
            if m.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Registers a phone through the `tandem device` command line; returns its document number.
fn register_phone(server: &TestServer, phone: &Path) -> String {
    let ca = server.data_dir.join("tls/server.crt");
    let device = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec![
            "device",
            "--dir",
            phone.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--server",
            &server.url,
        ];
        all.extend_from_slice(args);
        tandem_env(&all, env).unwrap()
    };
    let out = device(&["register-start"], &[]);
    server
        .approve(field(&out, "registration code:"), &MARY)
        .unwrap();
    let out = device(
        &[
            "register-finish",
            "--key-bits",
            "2048",
            "--insecure-fast-kdf",
        ],
        &[("TANDEM_PIN1", "1234"), ("TANDEM_PIN2", "12345")],
    );
    field(&out, "registered: document number").to_owned()
}

/// Asserts the modes of everything below the data directory `dir`: directories 0700,
/// certificates not writable by others, every other file 0600. Returns the files seen.
fn assert_data_dir_private(dir: &Path) -> Vec<PathBuf> {
    assert_eq!(mode(dir), 0o700, "data directory");
    let mut files = Vec::new();
    for (rel, (m, ..)) in snapshot(dir) {
        let path = dir.join(&rel);
        if path.is_dir() {
            assert_eq!(m, 0o700, "directory {}", rel.display());
        } else if PUBLIC.iter().any(|p| rel == Path::new(p)) {
            assert_eq!(m & 0o022, 0, "{} is writable by others", rel.display());
        } else {
            assert_eq!(m, 0o600, "{} has mode {m:04o}", rel.display());
            files.push(rel);
        }
    }
    files
}

fn every_file_is_owner_only(opts: ServerOptions, token_files: &[&str]) {
    let server = TestServer::start(opts).unwrap();
    let phone = server.tmp.path().join("phone");
    let doc = register_phone(&server, &phone);
    // A signature, so the WAL has seen confirmations and clone-token updates.
    let ca = server.data_dir.join("tls/server.crt");
    let file = server.tmp.path().join("contract.txt");
    std::fs::write(&file, "I agree.\n").unwrap();
    let out = tandem(&[
        "rp",
        "--ca",
        ca.to_str().unwrap(),
        "--server",
        &server.url,
        "sign",
        "--document",
        &doc,
        "--file",
        file.to_str().unwrap(),
    ])
    .unwrap();
    let tx = field(&out, "transaction").to_owned();
    let out = tandem_env(
        &[
            "device",
            "--dir",
            phone.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--server",
            &server.url,
            "confirm",
            &tx,
        ],
        &[("TANDEM_PIN", "12345")],
    )
    .unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");

    // While the server runs: the database, its WAL and shared memory, and the rest.
    let files = assert_data_dir_private(&server.data_dir);
    for f in [
        "tandem.db",
        "tandem.db-wal",
        "tandem.db-shm",
        "tandem.toml",
        "tls/server.key",
        "hsm/user-pin",
    ]
    .iter()
    .chain(token_files)
    {
        assert!(
            files.contains(&PathBuf::from(f)),
            "{f} is missing from the checked files {files:?}"
        );
    }
    assert!(
        files.iter().any(|f| f.starts_with("hsm/")
            && f.components().count() > 2
            && !f.ends_with("user-pin")),
        "no token object file among {files:?}"
    );

    // The device simulator's directory.
    assert_eq!(mode(&phone), 0o700, "device directory");
    let device_files = snapshot(&phone);
    for name in ["device-id", "account.json", ".lock"] {
        assert!(device_files.contains_key(Path::new(name)), "{name} missing");
    }
    for (rel, (m, ..)) in device_files {
        assert_eq!(m, 0o600, "device file {} has mode {m:04o}", rel.display());
    }
}

#[test]
fn every_file_of_an_hsm_sim_data_directory_is_owner_only() {
    every_file_is_owner_only(
        ServerOptions {
            hsm_sim: true,
            ..ServerOptions::default()
        },
        &["hsm/so-pin", "hsm/token.meta", "hsm/.lock"],
    );
}

#[test]
fn every_file_of_a_softhsm_data_directory_is_owner_only() {
    every_file_is_owner_only(
        ServerOptions::default(),
        &["hsm/user-pin.so", "hsm/softhsm2.conf"],
    );
}

/// Runs `tandem server run` on `dir`, which must exit (not serve) within 60 s; returns its
/// exit code and standard error.
fn server_run_refused(dir: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(tandem_bin())
        .args([
            "--log",
            "warn",
            "server",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--rest-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server started although the modes are wrong: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn server_run_refuses_files_that_group_or_others_may_access() {
    let mut server = TestServer::start(ServerOptions {
        hsm_sim: true,
        ..ServerOptions::default()
    })
    .unwrap();
    register_phone(&server, &server.tmp.path().join("phone"));
    // SIGKILL leaves the WAL and shared-memory files behind.
    server.kill();
    let dir = server.data_dir.clone();
    assert!(dir.join("tandem.db-wal").exists() && dir.join("tandem.db-shm").exists());
    let d = dir.display().to_string();

    let cases = [
        (
            dir.clone(),
            0o755,
            format!(
                "data directory {d} has mode 0755: it must not be accessible by group or others; run: chmod 700 {d}"
            ),
        ),
        (
            dir.join("tandem.db"),
            0o644,
            format!(
                "database {d}/tandem.db has mode 0644: it must not be accessible by group or others; run: chmod 600 {d}/tandem.db"
            ),
        ),
        (
            dir.join("tandem.db-wal"),
            0o640,
            format!("database WAL {d}/tandem.db-wal has mode 0640"),
        ),
        (
            dir.join("tandem.db-shm"),
            0o604,
            format!("{d}/tandem.db-shm has mode 0604"),
        ),
        (
            dir.join("hsm/user-pin"),
            0o640,
            format!("HSM PIN file {d}/hsm/user-pin has mode 0640"),
        ),
        (
            dir.join("hsm/so-pin"),
            0o644,
            format!("{d}/hsm/so-pin has mode 0644"),
        ),
        (
            dir.join("hsm/token.meta"),
            0o644,
            format!("{d}/hsm/token.meta has mode 0644"),
        ),
        (
            dir.join("tls/server.key"),
            0o644,
            format!("TLS private key {d}/tls/server.key has mode 0644"),
        ),
    ];
    for (path, bad, expected) in cases {
        let good = mode(&path);
        set_mode(&path, bad);
        let before = snapshot(&dir);
        let (code, stderr) = server_run_refused(&dir);
        assert!(
            code.is_some_and(|c| c != 0),
            "exit status {code:?}: {stderr}"
        );
        assert!(
            stderr.contains("refusing to start") && stderr.contains(&expected),
            "{}: expected {expected:?} in {stderr:?}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(
            snapshot(&dir),
            before,
            "the refusal changed the data directory"
        );
        assert_eq!(mode(&path), bad);
        set_mode(&path, good);
    }

    // Two at once: both named, each with its fix.
    set_mode(&dir.join("tandem.db"), 0o666);
    set_mode(&dir.join("hsm/user-pin"), 0o644);
    let (code, stderr) = server_run_refused(&dir);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains(&format!("run: chmod 600 {d}/tandem.db"))
            && stderr.contains(&format!("run: chmod 600 {d}/hsm/user-pin")),
        "{stderr}"
    );
    set_mode(&dir.join("tandem.db"), 0o600);
    set_mode(&dir.join("hsm/user-pin"), 0o600);

    // With the modes right again, the same data directory serves, and the account is there.
    server.restart().unwrap();
    assert!(
        server
            .operator(&["accounts"])
            .unwrap()
            .contains("PNOEE-30303039914")
    );
}

#[test]
fn opening_the_database_makes_it_owner_only_again() {
    // `server init` on a directory that exists with a wide mode narrows it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("srv");
    std::fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o755);
    tandem(&[
        "server",
        "init",
        "--server-key-bits",
        "2048",
        "--ca-key-spec",
        "ec-p384",
        "--data-dir",
        dir.to_str().unwrap(),
    ])
    .unwrap();
    assert_data_dir_private(&dir);
    // An operator command (Store::open) on a database someone widened narrows it again,
    // WAL included, before SQLite writes anything.
    set_mode(&dir.join("tandem.db"), 0o644);
    std::fs::write(dir.join("tandem.db-wal"), b"").unwrap();
    set_mode(&dir.join("tandem.db-wal"), 0o666);
    tandem(&["operator", "--data-dir", dir.to_str().unwrap(), "accounts"]).unwrap();
    assert_eq!(mode(&dir.join("tandem.db")), 0o600);
    if dir.join("tandem.db-wal").exists() {
        assert_eq!(mode(&dir.join("tandem.db-wal")), 0o600);
    }
    // `server init` on an initialised directory is refused and changes nothing.
    set_mode(&dir, 0o750);
    let before = snapshot(&dir);
    assert!(tandem(&["server", "init", "--data-dir", dir.to_str().unwrap()]).is_err());
    assert_eq!(snapshot(&dir), before);
    assert_eq!(mode(&dir), 0o750);
}
