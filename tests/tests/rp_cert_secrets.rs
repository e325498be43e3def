//! The server's database and logs never contain a relying party's private key.
//!
//! Two certificates are made against a real server: one through `tandem rp-cert` (login
//! confirmed on a phone, `create` generates the key locally, `download` writes the .p12),
//! one through `RpApiClient::rp_certs_*` with a CSR of a key the test made with OpenSSL.
//! Once both are READY and downloaded, their private keys (PKCS#8 DER, the primes p and q,
//! the exponents d, dP, dQ and qInv as big-endian bytes) are searched for in every file
//! under the server's data directory (database, WAL, SHM, pki, the HSM token's files) and
//! in the server's log (debug level): raw, hex (lower and upper case, also with colons),
//! base64 (standard and URL-safe, at every alignment, also across line breaks) and the PEM
//! body lines. Nothing may be found. The search proves it can fail: it finds the
//! certificates' modulus, which the data directory holds in the stored certificates, and
//! it finds every private value in the CLI's key directory and the test's own key files.

#![allow(clippy::unwrap_used)] // tests

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_proto::v1 as pb;
use tandem_rp::api::rp_certs::{RpCertOverview, RpCertState, p12_file_name};
use tandem_tests::mtls::{CertAdmin, admin_login, new_csr, rp_cert_cli, rp_client};
use tandem_tests::*;

/// Mary as an administrator.
const MARY_ID: &str = "PNOEE-30303039914";

/// One secret value and the forms it is searched in.
struct Needle {
    what: String,
    forms: Vec<(String, Vec<u8>)>,
}

/// Base64 (with `engine`) of `bytes` as it appears inside any longer encoding in which
/// `bytes` starts at byte offset `shift` (0..3) of a 3-byte group: the characters that
/// depend on `bytes` alone.
fn base64_at<E: base64::Engine>(engine: &E, bytes: &[u8], shift: usize) -> Vec<u8> {
    let mut padded = vec![0u8; shift];
    padded.extend_from_slice(bytes);
    let enc = engine.encode(&padded);
    let enc = enc.as_bytes();
    // Drop the first group when it mixes in the padding, and the last (partial) group.
    let start = if shift == 0 { 0 } else { 4 };
    enc[start..enc.len() - 4].to_vec()
}

impl Needle {
    /// `bytes` raw, in hex and in base64.
    fn of(what: impl Into<String>, bytes: &[u8]) -> Self {
        let hex_lower: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let colons: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let colons = colons.join(":");
        let mut forms = vec![
            ("raw".to_owned(), bytes.to_vec()),
            ("hex".to_owned(), hex_lower.clone().into_bytes()),
            ("HEX".to_owned(), hex_lower.to_uppercase().into_bytes()),
            ("hex:".to_owned(), colons.clone().into_bytes()),
            ("HEX:".to_owned(), colons.to_uppercase().into_bytes()),
        ];
        for shift in 0..3 {
            forms.push((
                format!("base64@{shift}"),
                base64_at(&STANDARD, bytes, shift),
            ));
            forms.push((
                format!("base64url@{shift}"),
                base64_at(&URL_SAFE, bytes, shift),
            ));
        }
        Self {
            what: what.into(),
            forms,
        }
    }

    /// The forms of this needle found in `hay`.
    fn found_in(&self, hay: &[u8]) -> Vec<String> {
        self.forms
            .iter()
            .filter(|(_, n)| !n.is_empty() && memchr::memmem::find(hay, n).is_some())
            .map(|(form, _)| form.clone())
            .collect()
    }
}

/// The needles of a private key in PEM: its PKCS#8 DER, the private numbers, and each line
/// of its PEM body.
fn key_needles(name: &str, pem: &[u8]) -> Vec<Needle> {
    let rsa = openssl::rsa::Rsa::private_key_from_pem(pem).unwrap();
    let pkey = openssl::pkey::PKey::from_rsa(rsa.clone()).unwrap();
    let mut out = vec![Needle::of(
        format!("{name}: PKCS#8 DER"),
        &pkey.private_key_to_pkcs8().unwrap(),
    )];
    let numbers = [
        ("p", rsa.p()),
        ("q", rsa.q()),
        ("d", Some(rsa.d())),
        ("dP", rsa.dmp1()),
        ("dQ", rsa.dmq1()),
        ("qInv", rsa.iqmp()),
    ];
    for (n, v) in numbers {
        let v = v.unwrap().to_vec();
        assert!(v.len() >= 100, "{name} {n}: {} bytes", v.len());
        out.push(Needle::of(format!("{name}: {n}"), &v));
    }
    let text = String::from_utf8(pem.to_vec()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        .collect();
    assert!(lines.len() >= 20, "{name}: {} PEM lines", lines.len());
    for (i, l) in lines.into_iter().enumerate() {
        out.push(Needle {
            what: format!("{name}: PEM line {i}"),
            forms: vec![("pem".to_owned(), l.as_bytes().to_vec())],
        });
    }
    out
}

/// Every file below `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// `hay` without line breaks, also escaped ones (`\n` in JSON or log fields): base64 and
/// hex wrapped into lines (PEM) become one string.
fn unwrapped(hay: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        match hay[i] {
            b'\r' | b'\n' => i += 1,
            b'\\' if matches!(hay.get(i + 1), Some(b'n' | b'r')) => i += 2,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `(file, needle, forms)` for every needle found in one of `files` (as it is, or with
/// its line breaks removed).
fn search(files: &[PathBuf], needles: &[Needle]) -> Vec<(PathBuf, String, Vec<String>)> {
    let mut hits = Vec::new();
    for f in files {
        let raw = std::fs::read(f).unwrap();
        let mut hay = unwrapped(&raw);
        hay.push(0);
        hay.extend_from_slice(&raw);
        for n in needles {
            let forms = n.found_in(&hay);
            if !forms.is_empty() {
                hits.push((f.clone(), n.what.clone(), forms));
            }
        }
    }
    hits
}

/// Confirms the next transaction pending on the phone with PIN1.
async fn confirm_next(phone: &dev::Client, state: &mut tandem_client_core::state::DeviceState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending = dev::list_pending(phone, state).await.unwrap();
        if let Some(t) = pending.into_iter().next() {
            let r = dev::confirm(phone, state, &t, &Pin::new("1234").unwrap(), None)
                .await
                .unwrap();
            assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32, "{r:?}");
            return;
        }
        assert!(Instant::now() < deadline, "nothing pending on the phone");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The modulus of the certificate in PEM file `cert` (big-endian bytes).
fn modulus(cert: &[u8]) -> Vec<u8> {
    let x = openssl::x509::X509::from_pem(cert).unwrap();
    x.public_key().unwrap().rsa().unwrap().n().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_files_and_log_never_hold_the_private_keys() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        log: Some("debug".into()),
        ..Default::default()
    })
    .unwrap();
    let mut mary = register(&server, &MARY, "1234", "12345").await.unwrap();
    let phone = server.device_client().await.unwrap();
    server
        .operator(&["rp-credit", "--rp", RP_UUID, "--add", "2"])
        .unwrap();
    server
        .operator(&["rp-admin", "--rp", RP_UUID, "add", MARY_ID])
        .unwrap();
    // Outside the server's data directory: the CLI's state and the test's own key.
    let work = tempfile::tempdir().unwrap();
    let state_dir = work.path().join("rp-certs");
    let d = state_dir.to_str().unwrap().to_owned();
    let mine = work.path().join("mine");

    // 1. `tandem rp-cert login` (confirmed on the phone), `create`: the CLI makes the key.
    let login = {
        let (rest_url, data_dir, ca, d) = (
            server.rest_url.clone(),
            server.data_dir.clone(),
            work.path().join("server-ca.pem"),
            d.clone(),
        );
        std::fs::write(&ca, &server.ca).unwrap();
        std::thread::spawn(move || {
            let out = Command::new(tandem_bin())
                .args(["rp-cert", "--api", &format!("{rest_url}/v3"), "--dir", &d])
                .arg("--trust")
                .arg(&data_dir)
                .arg("--tls-ca")
                .arg(&ca)
                .args(["--rp-uuid", RP_UUID, "--rp-name", RP_NAME])
                .args(["login", "--admin", MARY_ID])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
    };
    confirm_next(&phone, &mut mary).await;
    login.join().unwrap();
    let out = rp_cert_cli(&server, &["--dir", &d, "create", "--label", "cli"], None).unwrap();
    let cli_id = out.split('\t').next().unwrap().trim().to_owned();
    let cli_key = state_dir.join(format!("keys/{cli_id}.key.pem"));
    assert!(cli_key.is_file(), "{out}");

    // 2. Through the API with a CSR of a key the test made.
    let plain = rp_client(&server, None).unwrap();
    let admin = CertAdmin {
        uuid: RP_UUID.into(),
        name: RP_NAME.into(),
        session: admin_login(&plain, &phone, &mut mary, RP_UUID, RP_NAME)
            .await
            .unwrap(),
    };
    let csr = new_csr(&mine, "api").unwrap();
    let made = plain
        .rp_certs_create(&admin.create(&[("api", &csr)]))
        .await
        .unwrap();
    let api_id = made.certificates[0].id.clone();

    // Both READY, both downloaded.
    let c = admin
        .wait_ready(&plain, &cli_id, Duration::from_secs(60))
        .await
        .unwrap();
    admin
        .wait_ready(&plain, &api_id, Duration::from_secs(60))
        .await
        .unwrap();
    let api_cert = admin
        .download_pem(&plain, &api_id, &mine, "api")
        .await
        .unwrap();
    let serial = c.serial_number.unwrap();
    let p12 = work.path().join(p12_file_name("cli", &serial));
    rp_cert_cli(
        &server,
        &[
            "--dir",
            &d,
            "download",
            &cli_id,
            "--out",
            p12.to_str().unwrap(),
        ],
        Some("Geheim1\n"),
    )
    .unwrap();
    let json = rp_cert_cli(&server, &["--dir", &d, "list", "--json"], None).unwrap();
    let o: RpCertOverview = serde_json::from_str(&json).unwrap();
    let listed: Vec<_> = o.relying_parties[0].certificates.iter().collect();
    assert_eq!(listed.len(), 2, "{json}");
    assert!(
        listed.iter().all(|c| c.state == RpCertState::Ready),
        "{json}"
    );
    // The CLI's certificate, out of the .p12 (with OpenSSL).
    let (ok, cli_cert) = openssl(
        work.path(),
        &[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            "pass:Geheim1",
            "-nokeys",
            "-clcerts",
        ],
    );
    assert!(ok, "{cli_cert}");

    // The needles: both private keys; the controls: both moduli.
    let cli_pem = std::fs::read(&cli_key).unwrap();
    let api_pem = std::fs::read(&api_cert.key).unwrap();
    let mut needles = key_needles("CLI key", &cli_pem);
    needles.extend(key_needles("API key", &api_pem));
    let cli_n = modulus(cli_cert.as_bytes());
    let api_n = modulus(&std::fs::read(&api_cert.cert).unwrap());
    assert_eq!(
        cli_n,
        openssl::rsa::Rsa::private_key_from_pem(&cli_pem)
            .unwrap()
            .n()
            .to_vec(),
        "the .p12's certificate is not the CLI key's"
    );
    let controls = [
        Needle::of("CLI modulus", &cli_n),
        Needle::of("API modulus", &api_n),
    ];

    let mut files = files_under(&server.data_dir);
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    for part in ["-wal", "pki/", "tandem.toml"] {
        assert!(
            names.iter().any(|n| n.contains(part)),
            "no {part} file: {names:#?}"
        );
    }
    let log = server.tmp.path().join("server.log");
    assert!(std::fs::metadata(&log).unwrap().len() > 0);
    files.push(log);

    // The search can fail: it finds the moduli in the stored certificates, and every
    // private value where the keys are kept.
    let hits = search(&files, &controls);
    for c in &controls {
        assert!(
            hits.iter().any(|(_, what, _)| *what == c.what),
            "{} not found: the search is blind ({names:#?})",
            c.what
        );
    }
    let mut key_files = files_under(&state_dir.join("keys"));
    key_files.push(api_cert.key.clone());
    let own = search(&key_files, &needles);
    for n in &needles {
        assert!(
            own.iter().any(|(_, what, _)| *what == n.what),
            "{} not found in the key files: the search is blind",
            n.what
        );
    }

    // None of it in the server's data directory or log.
    let leaks = search(&files, &needles);
    assert!(
        leaks.is_empty(),
        "private key material on the server: {:?}",
        leaks
            .iter()
            .map(|(f, what, forms)| format!("{what} as {forms:?} in {}", f.display()))
            .collect::<Vec<_>>()
    );
    println!(
        "searched {} files for {} private values in {} forms each",
        files.len(),
        needles.len(),
        needles[0].forms.len()
    );
}
