//! The demo needs no system HSM package: `tandem demo` runs on hsm-sim, the simulated PKCS#11
//! module built with tandem, with a PATH that holds nothing but `openssl` and `sh` (no
//! softhsm2-util, no pkcs11-tool). Registration, authentication, signature, PIN lockout and
//! the OpenSSL checks all pass; the configuration names the hsm-sim module and its token
//! directory inside the data directory. The server's log goes to `server.log` in the demo
//! directory, not into the demo's output.

#![allow(clippy::unwrap_used)] // tests

use std::process::Command;

use tandem_tests::*;

#[test]
fn demo_runs_on_hsm_sim_without_softhsm() {
    let tmp = tempfile::tempdir().unwrap();
    // A PATH with only `openssl` and `sh` (the demo shows its OpenSSL commands through sh).
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["openssl", "sh"] {
        let path = ["/usr/bin", "/bin", "/usr/local/bin"]
            .into_iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} is installed"));
        std::os::unix::fs::symlink(path, bin.join(tool)).unwrap();
    }
    let data = tmp.path().join("demo-data");
    let out = Command::new(tandem_bin())
        .args(["demo", "--key-bits", "2048", "--data-dir"])
        .arg(&data)
        .env("PATH", &bin)
        .env_remove("SOFTHSM2_CONF")
        .env_remove("TANDEM_HSM_SIM_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Initialise the server (hsm-sim token"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("Verified OK").count(), 2, "{stdout}");
    // The server processes' messages and log go to a file the demo names, not between the
    // demo's lines.
    let log_file = data.join("server.log");
    assert!(
        stdout.contains(&format!("go to {}", log_file.display())),
        "{stdout}"
    );
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("hsm-sim token \"tandem\" initialised"),
        "{log}"
    );
    assert!(log.contains(" INFO "), "{log}");
    for out in [&stdout, &stderr] {
        assert!(
            !out.contains("hsm-sim token \"tandem\" initialised")
                && !out.contains("hsm-sim token directory")
                && !out.contains("CA certificates in")
                && !out.contains(" INFO ")
                && !out.contains(" WARN "),
            "log lines in the demo's output: {out}"
        );
    }

    let cfg = std::fs::read_to_string(data.join("server/tandem.toml")).unwrap();
    assert!(cfg.contains("libtandem_hsm_sim.so"), "{cfg}");
    assert!(!cfg.contains("softhsm"), "{cfg}");
    // The token lives in the data directory, and the generated PIN files are owner-only.
    let hsm = data.join("server/hsm");
    assert!(hsm.join("user-pin").is_file() && hsm.join("so-pin").is_file());
    use std::os::unix::fs::PermissionsExt as _;
    for f in ["user-pin", "so-pin"] {
        let mode = std::fs::metadata(hsm.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others");
    }
}
