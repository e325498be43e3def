//! OpenSC `pkcs11-tool --module <hsm-sim>`: what an operator does by hand (list slots and
//! mechanisms, initialise, log in, generate and sign, wrap and unwrap, self test). Needs
//! `pkcs11-tool` (OpenSC; `scripts/install-deps.sh` installs it), or its path in
//! `PKCS11_TOOL`.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::path::Path;
use std::process::Command;

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Verifier;

fn tool(dir: &Path, args: &[&str]) -> String {
    let program = std::env::var("PKCS11_TOOL").unwrap_or_else(|_| "pkcs11-tool".into());
    let out = Command::new(&program)
        .arg("--module")
        .arg(common::module_path())
        .args(args)
        .env("TANDEM_HSM_SIM_DIR", dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program} (install OpenSC or set PKCS11_TOOL): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pkcs11-tool {args:?} failed:\n{text}");
    text
}

#[test]
fn pkcs11_tool_initialises_generates_signs_and_self_tests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slots = tool(d, &["--list-slots"]);
    assert!(slots.contains("Tandem hsm-sim slot 0"), "{slots}");
    assert!(slots.contains("uninitialized"), "{slots}");
    tool(
        d,
        &["--init-token", "--label", "ops", "--so-pin", "12345678"],
    );
    tool(
        d,
        &[
            "--init-pin",
            "--login",
            "--so-pin",
            "12345678",
            "--pin",
            "4321",
        ],
    );
    let mechs = tool(d, &["--list-mechanisms"]);
    for m in [
        "RSA-X-509",
        "SHA384-RSA-PKCS",
        "RSA-PKCS-OAEP",
        "AES-GCM",
        "ECDSA",
    ] {
        assert!(mechs.contains(m), "{m} missing:\n{mechs}");
    }
    let generated = tool(
        d,
        &[
            "--login",
            "--pin",
            "4321",
            "--keypairgen",
            "--key-type",
            "rsa:2048",
            "--label",
            "op-key",
            "--id",
            "01",
        ],
    );
    assert!(generated.contains("never extractable"), "{generated}");

    // Sign with the tool, verify with OpenSSL against the public key the tool exports.
    std::fs::write(d.join("msg"), b"signed by an operator").unwrap();
    let msg = d.join("msg");
    let sig = d.join("sig");
    let der = d.join("pub.der");
    tool(
        d,
        &[
            "--login",
            "--pin",
            "4321",
            "--sign",
            "--mechanism",
            "SHA256-RSA-PKCS",
            "--id",
            "01",
            "-i",
            msg.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ],
    );
    tool(
        d,
        &[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            "01",
            "-o",
            der.to_str().unwrap(),
        ],
    );
    let pk = PKey::public_key_from_der(&std::fs::read(&der).unwrap()).unwrap();
    let mut v = Verifier::new(MessageDigest::sha256(), &pk).unwrap();
    v.update(b"signed by an operator").unwrap();
    assert!(v.verify(&std::fs::read(&sig).unwrap()).unwrap());

    // Wrap and unwrap: an extractable AES key wrapped under a wrapping AES key with
    // CKM_AES_KEY_WRAP_PAD (0x210A; OpenSC 0.23 has no name for it), unwrapped as a new key,
    // which wraps to the same bytes again (KWP is deterministic).
    let login = ["--login", "--pin", "4321"];
    let with_login = |args: &[&str]| {
        let mut all = login.to_vec();
        all.extend_from_slice(args);
        tool(d, &all)
    };
    #[rustfmt::skip]
    with_login(&["--keygen", "--key-type", "AES:32", "--label", "kek", "--id", "10", "--usage-wrap", "--private"]);
    #[rustfmt::skip]
    with_login(&["--keygen", "--key-type", "AES:32", "--label", "payload", "--id", "11", "--extractable", "--private"]);
    let wrapped = d.join("wrapped.bin");
    let rewrapped = d.join("rewrapped.bin");
    #[rustfmt::skip]
    with_login(&["--wrap", "--mechanism", "0x210A", "--id", "10", "--application-id", "11", "-o", wrapped.to_str().unwrap()]);
    assert_eq!(std::fs::read(&wrapped).unwrap().len(), 32 + 8);
    #[rustfmt::skip]
    with_login(&["--unwrap", "--mechanism", "0x210A", "--id", "10", "-i", wrapped.to_str().unwrap(),
                 "--key-type", "AES:32", "--application-id", "12", "--application-label", "unwrapped",
                 "--private", "--extractable"]);
    #[rustfmt::skip]
    with_login(&["--wrap", "--mechanism", "0x210A", "--id", "10", "--application-id", "12", "-o", rewrapped.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&wrapped).unwrap(),
        std::fs::read(&rewrapped).unwrap(),
        "the unwrapped key is the wrapped one"
    );
    // A tampered wrapped key does not unwrap.
    let mut bad = std::fs::read(&wrapped).unwrap();
    bad[5] ^= 1;
    std::fs::write(&wrapped, &bad).unwrap();
    let program = std::env::var("PKCS11_TOOL").unwrap_or_else(|_| "pkcs11-tool".into());
    let out = Command::new(&program)
        .arg("--module")
        .arg(common::module_path())
        .args(login)
        .args(["--unwrap", "--mechanism", "0x210A", "--id", "10", "-i"])
        .arg(&wrapped)
        .args([
            "--key-type",
            "AES:32",
            "--application-id",
            "14",
            "--private",
        ])
        .env("TANDEM_HSM_SIM_DIR", d)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a tampered wrapped key was unwrapped"
    );

    // A wrong PIN is refused.
    let program = std::env::var("PKCS11_TOOL").unwrap_or_else(|_| "pkcs11-tool".into());
    let out = Command::new(program)
        .arg("--module")
        .arg(common::module_path())
        .args(["--login", "--pin", "9999", "--list-objects"])
        .env("TANDEM_HSM_SIM_DIR", d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CKR_PIN_INCORRECT"));

    // OpenSC's own self test over the token.
    let report = tool(d, &["--test", "--login", "--pin", "4321"]);
    assert!(report.contains("No errors"), "{report}");
    assert!(
        report.contains("all 4 signature functions seem to work"),
        "{report}"
    );
}
