//! `tandem rp-cert`: the .p12 writer on its own (a certificate and key made with OpenSSL →
//! `rp-cert pack` → `openssl pkcs12 -info` and Python's `cryptography` read it with the
//! password; a wrong password fails in both; a 5-character password is refused; the PBES2 /
//! PBKDF2 / SHA-256 / iteration parameters as `openssl pkcs12 -info` reports them), and the
//! whole flow against the server's certificate queue (login, create, create --wait returning
//! only when READY, list, download, curl with the .p12 starts a session, revoke → refused),
//! which needs srv's endpoints.

#![allow(clippy::unwrap_used)] // tests

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_proto::v1 as pb;
use tandem_rp::api::rp_certs::{RpCertOverview, RpCertState, p12_file_name};
use tandem_tests::mtls::{CurlCert, auth_body, curl, rp_cert_cli};
use tandem_tests::*;

/// Runs a command; (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A CA and a client certificate it issued, with OpenSSL: (key, cert, ca).
fn openssl_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let ok = |args: &[&str]| {
        let (ok, out) = run(Command::new("openssl").args(args));
        assert!(ok, "openssl {args:?}: {out}");
    };
    ok(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-keyout",
        &s(&p("ca.key")),
        "-out",
        &s(&p("ca.pem")),
    ]);
    ok(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=client",
        "-keyout",
        &s(&p("key.pem")),
        "-out",
        &s(&p("req.pem")),
    ]);
    ok(&[
        "x509",
        "-req",
        "-in",
        &s(&p("req.pem")),
        "-CA",
        &s(&p("ca.pem")),
        "-CAkey",
        &s(&p("ca.key")),
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        &s(&p("cert.pem")),
    ]);
    (p("key.pem"), p("cert.pem"), p("ca.pem"))
}

/// `tandem rp-cert pack`; stdin is the password when `password_file` is `None`.
fn pack(
    key: &Path,
    cert: &Path,
    chain: &Path,
    label: &str,
    out: &Path,
    password_file: Option<&Path>,
    stdin: &str,
) -> (bool, String) {
    use std::io::Write as _;
    let mut cmd = Command::new(tandem_bin());
    cmd.args(["rp-cert", "pack", "--label", label])
        .arg("--key")
        .arg(key)
        .arg("--cert")
        .arg(cert)
        .arg("--chain")
        .arg(chain)
        .arg("--out")
        .arg(out);
    if let Some(f) = password_file {
        cmd.arg("--password-file").arg(f);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Python's `cryptography` opens the .p12: prints key size, subject, number of CA
/// certificates and the certificate's friendly name.
fn python_read(p12: &Path, password: &str) -> (bool, String) {
    let script = r#"
import sys
from cryptography.hazmat.primitives.serialization import pkcs12
data = open(sys.argv[1], 'rb').read()
p = pkcs12.load_pkcs12(data, sys.argv[2].encode())
k, c, cas = pkcs12.load_key_and_certificates(data, sys.argv[2].encode())
assert k.public_key().public_numbers() == c.public_key().public_numbers()
print(k.key_size, c.subject.rfc4514_string(), len(cas), p.cert.friendly_name.decode())
"#;
    run(Command::new("python3")
        .args(["-c", script])
        .arg(p12)
        .arg(password))
}

/// The iteration counts of `openssl pkcs12 -info` lines containing `what`.
fn iterations(info: &str, what: &str) -> Vec<u64> {
    info.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split("Iteration ").nth(1))
        .map(|n| n.split([',', ' ']).next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn the_p12_writer_follows_the_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (key, cert, ca) = openssl_pki(dir);
    let pw = dir.join("pw");
    std::fs::write(&pw, "Geheim1\n").unwrap();
    let p12 = dir.join("a.p12");
    let label = "Kanzlei Müller 1";
    let (ok, out) = pack(&key, &cert, &ca, label, &p12, Some(&pw), "");
    assert!(ok, "{out}");

    // OpenSSL reads it with the password, and reports the parameters.
    let (ok, info) = run(Command::new("openssl")
        .args(["pkcs12", "-info", "-noout", "-in"])
        .arg(&p12)
        .arg("-passin")
        .arg(format!("file:{}", pw.display())));
    assert!(ok, "{info}");
    assert!(info.contains("MAC: sha256, Iteration 600000"), "{info}");
    let key_bag = "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration";
    let cert_bag = "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration";
    for what in [key_bag, cert_bag] {
        let its = iterations(&info, what);
        assert!(
            !its.is_empty() && its.iter().all(|n| *n >= 600_000),
            "{what}: {info}"
        );
        assert!(
            info.lines()
                .filter(|l| l.contains(what))
                .all(|l| l.contains("PRF hmacWithSHA256")),
            "{info}"
        );
    }
    assert!(
        iterations(&info, "MAC:").iter().all(|n| *n >= 600_000),
        "{info}"
    );
    // The certificates, with the label as friendly name and the CA in the chain.
    let (ok, certs) = run(Command::new("openssl")
        .args(["pkcs12", "-nokeys", "-in"])
        .arg(&p12)
        .arg("-passin")
        .arg(format!("file:{}", pw.display())));
    assert!(ok, "{certs}");
    // (OpenSSL 3.0 prints the BMPString's "ü" as a replacement character; Python below
    // compares the whole label.)
    assert!(
        certs.contains("friendlyName: Kanzlei M") && certs.contains("ller 1\n"),
        "{certs}"
    );
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 2, "{certs}");

    // Python's cryptography reads it with the password.
    let (ok, out) = python_read(&p12, "Geheim1");
    assert!(ok, "{out}");
    assert_eq!(out.trim(), format!("2048 CN=client 1 {label}"), "{out}");

    // A wrong password fails in both.
    let (ok, out) = run(Command::new("openssl")
        .args([
            "pkcs12",
            "-info",
            "-noout",
            "-passin",
            "pass:Geheim2",
            "-in",
        ])
        .arg(&p12));
    assert!(!ok, "{out}");
    let (ok, out) = python_read(&p12, "Geheim2");
    assert!(!ok, "{out}");

    // Five characters are refused, nothing is written; six from stdin work.
    let short = dir.join("short.p12");
    let (ok, out) = pack(&key, &cert, &ca, label, &short, None, "12345\n");
    assert!(!ok, "{out}");
    assert!(out.contains("at least 6"), "{out}");
    assert!(!short.exists());
    let (ok, out) = pack(&key, &cert, &ca, label, &short, None, "123456\n");
    assert!(ok, "{out}");
    assert!(python_read(&short, "123456").0);

    // A key that is not the certificate's is refused.
    let (ok, out) = pack(
        &dir.join("ca.key"),
        &cert,
        &ca,
        label,
        &dir.join("x.p12"),
        Some(&pw),
        "",
    );
    assert!(!ok && out.contains("does not belong"), "{out}");
    // Labels become safe file names.
    assert_eq!(p12_file_name("Büro/1", "0a"), "tandem-Büro_1-0a.p12");
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

/// The whole flow of `tandem rp-cert` against a real server: login, create, cancel and
/// redeem, list, download, a session started with the .p12 by curl, revoke, refused.
#[tokio::test(flavor = "multi_thread")]
async fn login_create_download_use_and_revoke() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_https_table()),
        ..Default::default()
    })
    .unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let phone = server.device_client().await.unwrap();
    let admin = format!("PNO{}-{}", MARY.country, MARY.id);
    server
        .operator(&["rp-credit", "--rp", RP_UUID, "--add", "3"])
        .unwrap();
    server
        .operator(&["rp-admin", "--rp", RP_UUID, "add", &admin])
        .unwrap();
    let state_dir = server.tmp.path().join("rp-certs");
    let d = state_dir.to_str().unwrap().to_owned();

    // login: the CLI waits for the phone.
    let login = {
        let (rest_url, data_dir, ca, admin, d) = (
            server.rest_url.clone(),
            server.data_dir.clone(),
            server.tmp.path().join("server-ca.pem"),
            admin.clone(),
            d.clone(),
        );
        std::fs::write(&ca, &server.ca).unwrap();
        std::thread::spawn(move || {
            run(Command::new(tandem_bin())
                .args(["rp-cert", "--api", &format!("{rest_url}/v3"), "--dir", &d])
                .arg("--trust")
                .arg(&data_dir)
                .arg("--tls-ca")
                .arg(&ca)
                .args(["--rp-uuid", RP_UUID, "--rp-name", RP_NAME])
                .args(["login", "--admin", &admin]))
        })
    };
    confirm_next(&phone, &mut state).await;
    let (ok, out) = login.join().unwrap();
    assert!(ok, "{out}");
    let session = state_dir.join("session");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&session).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    // create two, cancel one (voucher), redeem it.
    let out = rp_cert_cli(
        &server,
        &[
            "--dir", &d, "create", "--label", "Server A", "--label", "Server B",
        ],
        None,
    )
    .unwrap();
    let ids: Vec<String> = out
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{out}");
    for id in &ids {
        assert!(state_dir.join(format!("keys/{id}.key.pem")).is_file());
    }
    let bad = rp_cert_cli(&server, &["--dir", &d, "create", "--label", "a$b"], None);
    assert!(bad.unwrap_err().to_string().contains("character $"));
    let voucher = rp_cert_cli(&server, &["--dir", &d, "cancel", &ids[1]], None);
    if let Ok(v) = voucher {
        let out = rp_cert_cli(&server, &["--dir", &d, "redeem", v.trim()], None).unwrap();
        assert!(out.contains("credits:"), "{out}");
    }

    // Wait until the first is READY.
    let deadline = Instant::now() + Duration::from_secs(60);
    let serial = loop {
        let json = rp_cert_cli(&server, &["--dir", &d, "list", "--json"], None).unwrap();
        let o: RpCertOverview = serde_json::from_str(&json).unwrap();
        let c = o.relying_parties[0]
            .certificates
            .iter()
            .find(|c| c.id == ids[0])
            .unwrap()
            .clone();
        if c.state == RpCertState::Ready {
            break c.serial_number.unwrap();
        }
        assert!(Instant::now() < deadline, "not ready: {json}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // create --wait returns only once the new one is READY (the list says so at once).
    let out = rp_cert_cli(
        &server,
        &["--dir", &d, "create", "--label", "Server C", "--wait"],
        None,
    )
    .unwrap();
    let id_c = out.split('\t').next().unwrap().to_owned();
    let json = rp_cert_cli(&server, &["--dir", &d, "list", "--json"], None).unwrap();
    let o: RpCertOverview = serde_json::from_str(&json).unwrap();
    let c = o.relying_parties[0]
        .certificates
        .iter()
        .find(|c| c.id == id_c)
        .unwrap_or_else(|| panic!("{out}\n{json}"));
    assert_eq!(c.state, RpCertState::Ready, "{json}");
    let table = rp_cert_cli(&server, &["--dir", &d, "list"], None).unwrap();
    assert!(
        table.contains("Server A") && table.contains(&serial),
        "{table}"
    );

    // download: 5 characters refused, then a good password from stdin.
    let p12 = server.tmp.path().join(p12_file_name("Server A", &serial));
    let p = p12.to_str().unwrap();
    assert!(
        rp_cert_cli(
            &server,
            &["--dir", &d, "download", &ids[0], "--out", p],
            Some("12345\n")
        )
        .is_err()
    );
    rp_cert_cli(
        &server,
        &["--dir", &d, "download", &ids[0], "--out", p],
        Some("Geheim1\n"),
    )
    .unwrap();
    let (ok, info) = run(Command::new("openssl")
        .args([
            "pkcs12",
            "-info",
            "-noout",
            "-passin",
            "pass:Geheim1",
            "-in",
        ])
        .arg(&p12));
    assert!(ok, "{info}");

    // curl with the .p12 starts a session for the administrator.
    let path = format!("/v3/authentication/notification/etsi/{admin}");
    let body = auth_body(RP_UUID, RP_NAME);
    let a = curl(&server, CurlCert::P12(&p12, "Geheim1"), &path, Some(&body)).unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains("sessionID"), "{a:?}");

    // revoke → the same call is refused.
    rp_cert_cli(&server, &["--dir", &d, "revoke", &ids[0]], None).unwrap();
    let a = curl(&server, CurlCert::P12(&p12, "Geheim1"), &path, Some(&body)).unwrap();
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("revoked"), "{a:?}");
}
