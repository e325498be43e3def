//! The command line under concurrency and closed pipes: several `tandem device confirm` on
//! one phone at once all succeed and leave its clone-detection state right; commands whose
//! standard output is closed early (`| head`) exit quietly instead of panicking.

#![allow(clippy::unwrap_used)] // tests

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tandem_tests::*;

/// A running server and a phone registered through the `tandem device` command line.
struct Phone {
    server: TestServer,
    dir: PathBuf,
    ca: PathBuf,
    doc: String,
}

impl Phone {
    fn register() -> Self {
        let server = TestServer::start(ServerOptions {
            hsm_sim: true,
            ..ServerOptions::default()
        })
        .unwrap();
        let dir = server.tmp.path().join("phone");
        let ca = server.data_dir.join("tls/server.crt");
        let mut phone = Self {
            server,
            dir,
            ca,
            doc: String::new(),
        };
        let out = phone.device(&["register-start"], &[]).unwrap();
        phone
            .server
            .approve(field(&out, "registration code:"), &MARY)
            .unwrap();
        let out = phone
            .device(
                &[
                    "register-finish",
                    "--key-bits",
                    "2048",
                    "--insecure-fast-kdf",
                ],
                &[("TANDEM_PIN1", "1234"), ("TANDEM_PIN2", "12345")],
            )
            .unwrap();
        phone.doc = field(&out, "registered: document number").to_owned();
        phone
    }

    fn device_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec![
            "device",
            "--dir",
            self.dir.to_str().unwrap(),
            "--ca",
            self.ca.to_str().unwrap(),
            "--server",
            &self.server.url,
        ];
        all.extend_from_slice(args);
        all
    }

    fn device(&self, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
        tandem_env(&self.device_args(args), env)
    }

    fn rp_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec![
            "rp",
            "--ca",
            self.ca.to_str().unwrap(),
            "--server",
            &self.server.url,
        ];
        all.extend_from_slice(args);
        all
    }

    /// Starts an authentication (`auth`) or a signature (`sign`); returns the transaction.
    fn start(&self, kind: &str) -> String {
        let file = self.server.tmp.path().join("contract.txt");
        std::fs::write(&file, "I agree.\n").unwrap();
        let mut args = vec![kind, "--document", &self.doc];
        if kind == "sign" {
            args.extend(["--file", file.to_str().unwrap()]);
        }
        let out = tandem(&self.rp_args(&args)).unwrap();
        field(&out, "transaction").to_owned()
    }

    fn status(&self, tx: &str) -> String {
        tandem(&self.rp_args(&["status", tx, "--wait", "10"])).unwrap()
    }
}

fn pin_for(kind: &str) -> &'static str {
    if kind == "auth" { "1234" } else { "12345" }
}

#[test]
fn concurrent_confirms_on_one_phone_all_succeed() {
    let phone = Phone::register();
    // Several transactions on both key pairs, pending at once.
    let kinds = ["sign", "auth", "sign", "auth", "sign", "sign"];
    let txs: Vec<(&str, String)> = kinds.iter().map(|k| (*k, phone.start(k))).collect();
    let listed = phone.device(&["pending"], &[]).unwrap();
    for (_, tx) in &txs {
        assert!(listed.contains(tx.as_str()), "{tx} not pending: {listed}");
    }
    // One `tandem device confirm` process per transaction, all started together. Each
    // spends its key pair's clone-detection token and stores the next one: without the
    // device directory's lock two of them present the same token (the server takes the
    // second for a cloned phone) or write the state over each other.
    let children: Vec<_> = txs
        .iter()
        .map(|(kind, tx)| {
            Command::new(tandem_bin())
                .args(["--log", "warn"])
                .args(phone.device_args(&["confirm", tx]))
                .env("TANDEM_PIN", pin_for(kind))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, (_, tx)) in children.into_iter().zip(&txs) {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && stdout.contains("ACCEPTED"),
            "confirm {tx}: {:?}\n{stdout}\n{stderr}",
            out.status
        );
    }
    for (_, tx) in &txs {
        let st = phone.status(tx);
        assert!(st.contains("result OK"), "{tx}: {st}");
    }
    // No temporary file is left in the device directory.
    let names: Vec<_> = std::fs::read_dir(&phone.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    // The state on the phone is the server's: both keys still sign, and their state is
    // intact (no clone detected, no lock).
    for kind in ["auth", "sign"] {
        let tx = phone.start(kind);
        let out = phone
            .device(&["confirm", &tx], &[("TANDEM_PIN", pin_for(kind))])
            .unwrap();
        assert!(out.contains("ACCEPTED"), "{out}");
        assert!(phone.status(&tx).contains("result OK"));
    }
    let state = phone.device(&["state"], &[]).unwrap();
    assert!(
        state.contains("AUTH: active, 3 wrong PIN(s) left")
            && state.contains("SIGN: active, 3 wrong PIN(s) left"),
        "{state}"
    );
    phone.server.assert_audit_intact();
}

/// Runs `tandem` with standard output a pipe whose reading end is already closed; returns
/// the exit code and standard error.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(tandem_bin())
        .args(["--log", "warn"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn commands_exit_quietly_when_their_output_is_closed() {
    let phone = Phone::register();
    let tx = phone.start("sign");
    let auth = phone.start("auth");
    let out = phone
        .device(&["confirm", &auth], &[("TANDEM_PIN", "1234")])
        .unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    let data_dir = phone.server.data_dir.to_str().unwrap().to_owned();
    let status_args = phone.rp_args(&["status", &auth]);
    let pending_args = phone.device_args(&["pending"]);
    let state_args = phone.device_args(&["state"]);
    let commands: Vec<Vec<&str>> = vec![
        pending_args,
        state_args,
        status_args,
        vec!["operator", "--data-dir", &data_dir, "accounts"],
        vec!["operator", "--data-dir", &data_dir, "audit"],
        vec!["operator", "--data-dir", &data_dir, "certs"],
    ];
    for args in &commands {
        // The same command with an open pipe prints something (so the closed one has to
        // write into the closed pipe).
        let printed = tandem(args).unwrap();
        assert!(!printed.is_empty(), "{args:?} printed nothing");
        let (code, stderr) = with_closed_stdout(args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "{args:?} wrote to stderr: {stderr}"
        );
        assert_eq!(code, Some(141), "{args:?}: {stderr}");
    }
    // The transaction is still pending and can be confirmed: the closed pipe changed nothing.
    let out = phone
        .device(&["confirm", &tx], &[("TANDEM_PIN", "12345")])
        .unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");
    assert!(phone.status(&tx).contains("result OK"));
}

#[test]
fn a_device_command_on_a_missing_directory_creates_nothing() {
    let phone = Phone::register();
    let missing = phone.server.tmp.path().join("no-such-phone");
    let args = [
        "device",
        "--dir",
        missing.to_str().unwrap(),
        "--ca",
        phone.ca.to_str().unwrap(),
        "--server",
        &phone.server.url,
        "confirm",
        "00000000-0000-4000-8000-000000000000",
    ];
    let e = tandem_env(&args, &[("TANDEM_PIN", "12345")]).unwrap_err();
    assert!(e.to_string().contains("no account on this device"), "{e}");
    assert!(!Path::new(&missing).exists());
}
