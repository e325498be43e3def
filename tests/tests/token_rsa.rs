//! `hsm.share_exponentiation = "token-rsa"` (docs/HSM_MODES.md) through real server
//! processes on SoftHSM and on hsm-sim: registration hands d1'' to the token as an RSA key,
//! authentication and signatures verify with OpenSSL, a wrong PIN is still caught, the token
//! holds the shares as sensitive, never-extractable objects and a KEK without CKA_DECRYPT,
//! deleting the account destroys them, and the data directory refuses to switch modes.

#![allow(clippy::unwrap_used)] // tests

use std::process::Command;

use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_proto::v1 as pb;
use tandem_tests::*;

/// `pkcs11-tool --list-objects` on the server's token (the server is stopped first: hsm-sim
/// keeps its token files to one process). One block per object: its first line and the
/// indented lines under it.
fn token_objects(server: &TestServer, hsm_sim: bool) -> Vec<String> {
    let dir = &server.data_dir;
    let pin = std::fs::read_to_string(dir.join("hsm/user-pin")).unwrap();
    let (module, env) = if hsm_sim {
        let exe = tandem_bin();
        (
            exe.parent().unwrap().join("libtandem_hsm_sim.so"),
            ("TANDEM_HSM_SIM_DIR", dir.join("hsm")),
        )
    } else {
        (
            "/usr/lib/softhsm/libsofthsm2.so".into(),
            ("SOFTHSM2_CONF", dir.join("hsm/softhsm2.conf")),
        )
    };
    let out = Command::new(std::env::var("PKCS11_TOOL").unwrap_or_else(|_| "pkcs11-tool".into()))
        .arg("--module")
        .arg(&module)
        .args([
            "--token-label",
            "tandem",
            "--login",
            "--pin",
            pin.trim(),
            "--list-objects",
        ])
        .env(env.0, &env.1)
        .output()
        .expect("run pkcs11-tool (scripts/install-deps.sh installs opensc)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pkcs11-tool failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(b) = blocks.last_mut() {
                b.push('\n');
                b.push_str(line);
            }
        } else if !line.trim().is_empty() {
            blocks.push(line.to_owned());
        }
    }
    blocks
}

fn with_label<'a>(blocks: &'a [String], prefix: &str) -> Vec<&'a String> {
    blocks
        .iter()
        .filter(|b| {
            b.lines()
                .any(|l| l.trim_start().starts_with("label:") && l.contains(prefix))
        })
        .collect()
}

fn usage(block: &str) -> String {
    block
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Usage:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn access(block: &str) -> String {
    block
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Access:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

async fn register_sign_and_inspect(hsm_sim: bool) {
    let mut server = TestServer::start(ServerOptions {
        token_rsa: true,
        hsm_sim,
        ..Default::default()
    })
    .unwrap();
    let cfg = std::fs::read_to_string(server.data_dir.join("tandem.toml")).unwrap();
    assert!(
        cfg.contains("share_exponentiation = \"token-rsa\""),
        "{cfg}"
    );
    let client = server.device_client().await.unwrap();
    let info = dev::server_info(&client).await.unwrap();
    assert_eq!(
        info.server_share_form,
        pb::ServerShareForm::RsaKey as i32,
        "the server tells devices the form"
    );
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    // The device shares are stored in the even-exponent form (no parity leak).
    for kp in &state.key_pairs {
        assert_eq!(
            kp.protected_share.algorithm,
            "argon2id+chacha20-xor+even-exponent"
        );
    }
    let mut rp = server.rp().await.unwrap();
    for (kind, scheme, pin) in [
        (
            pb::TransactionKind::Authentication,
            pb::SignatureScheme::Pkcs1V15,
            "1234",
        ),
        (
            pb::TransactionKind::Signature,
            pb::SignatureScheme::Pss,
            "12345",
        ),
    ] {
        let data = format!("token-rsa {kind:?} {scheme:?}").into_bytes();
        let start = start_tx(&mut rp, kind, &state.document_number, &data, scheme, false)
            .await
            .unwrap();
        let t = pending(&client, &state, &start.transaction_id)
            .await
            .unwrap();
        let r = dev::confirm(&client, &mut state, &t, &Pin::new(pin).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32);
        let st = status(&mut rp, &start.transaction_id).await.unwrap();
        assert_eq!(st.end_result, pb::EndResult::Ok as i32);
        let kp = st.key_pair.unwrap();
        openssl_verify(
            server.tmp.path(),
            &kp.public_key_der,
            &data,
            &st.signature,
            scheme == pb::SignatureScheme::Pss,
        )
        .unwrap();
        let mut other = data.clone();
        other.push(b'!');
        assert!(
            openssl_verify(
                server.tmp.path(),
                &kp.public_key_der,
                &other,
                &st.signature,
                scheme == pb::SignatureScheme::Pss
            )
            .is_err()
        );
    }
    // A wrong PIN is caught by the server as in the other forms.
    let start = start_tx(
        &mut rp,
        pb::TransactionKind::Signature,
        &state.document_number,
        b"wrong pin",
        pb::SignatureScheme::Pkcs1V15,
        false,
    )
    .await
    .unwrap();
    let t = pending(&client, &state, &start.transaction_id)
        .await
        .unwrap();
    let r = dev::confirm(&client, &mut state, &t, &Pin::new("99999").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, pb::ConfirmOutcome::WrongPin as i32, "{r:?}");

    // The token: a KEK that cannot decrypt, and the two shares as sensitive RSA key
    // objects that never leave it.
    server.kill();
    let objects = token_objects(&server, hsm_sim);
    let kek = with_label(&objects, "tandem-kek");
    assert_eq!(kek.len(), 1, "{objects:#?}");
    let kek_usage = usage(kek[0]);
    assert!(kek_usage.contains("wrap"), "{}", kek[0]);
    assert!(
        !kek_usage.contains("decrypt") && !kek_usage.contains("encrypt"),
        "the KEK must not decrypt in token-rsa: {}",
        kek[0]
    );
    let shares = with_label(&objects, "tandem-share/");
    assert_eq!(shares.len(), 2, "AUTH and SIGN: {objects:#?}");
    for share in &shares {
        assert!(share.starts_with("Private Key Object; RSA"), "{share}");
        assert_eq!(usage(share), "sign", "{share}");
        let access = access(share);
        assert!(access.contains("sensitive"), "{share}");
        assert!(
            !access.contains("extractable")
                || access.contains("never extractable")
                || access.contains("unextractable"),
            "{share}"
        );
    }

    // The data directory cannot switch to the software form: its shares are token objects.
    let cfg_path = server.data_dir.join("tandem.toml");
    let switched = cfg.replace(
        "share_exponentiation = \"token-rsa\"",
        "share_exponentiation = \"software\"",
    );
    std::fs::write(&cfg_path, &switched).unwrap();
    let e = tandem(&[
        "server",
        "run",
        "--data-dir",
        server.data_dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--rest-listen",
        "127.0.0.1:0",
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("initialised for token-rsa"), "{e}");
    std::fs::write(&cfg_path, &cfg).unwrap();

    // Deleting the account destroys its share objects on the token.
    server.restart().unwrap();
    let client = server.device_client().await.unwrap();
    dev::delete_account(&client, &state).await.unwrap();
    server.kill();
    let objects = token_objects(&server, hsm_sim);
    assert!(
        with_label(&objects, "tandem-share/").is_empty(),
        "{objects:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_rsa_on_softhsm() {
    register_sign_and_inspect(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_rsa_on_hsm_sim() {
    register_sign_and_inspect(true).await;
}

/// `server init` refuses token-rsa with an EC transport key, saying what to change.
#[test]
fn token_rsa_needs_an_rsa_transport_key() {
    let tmp = tempfile::tempdir().unwrap();
    let e = tandem(&[
        "server",
        "init",
        "--share-exponentiation",
        "token-rsa",
        "--data-dir",
        tmp.path().join("d").to_str().unwrap(),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs keys.transport_key = \"rsa\""), "{e}");
    assert!(!tmp.path().join("d/tandem.toml").exists());
}
