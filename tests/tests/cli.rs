//! The README's step-by-step walk-through, through the `tandem` binary itself: device
//! simulator, operator, relying-party client, then OpenSSL.

#![allow(clippy::unwrap_used)] // tests

use tandem_client_core::grpc::{self as dev, ProofOutcome};
use tandem_client_core::pin::Pin;
use tandem_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn command_line_walk_through() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let ca = server.data_dir.join("tls/server.crt");
    let phone = server.tmp.path().join("phone");
    let (ca, phone) = (ca.to_str().unwrap(), phone.to_str().unwrap());
    let device = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec![
            "device",
            "--dir",
            phone,
            "--ca",
            ca,
            "--server",
            &server.url,
        ];
        all.extend_from_slice(args);
        tandem_env(&all, env)
    };
    let rp = |args: &[&str]| {
        let mut all = vec!["rp", "--ca", ca, "--server", &server.url];
        all.extend_from_slice(args);
        tandem(&all)
    };

    let out = device(&["register-start"], &[]).unwrap();
    let code = field(&out, "registration code:").to_owned();
    let matching = field(&out, "matching code:").to_owned();
    let pending_regs = server.operator(&["registrations"]).unwrap();
    assert!(
        pending_regs.contains(&code) && pending_regs.contains(&matching),
        "{pending_regs}"
    );
    // Finishing before approval is refused.
    assert!(
        device(
            &[
                "register-finish",
                "--key-bits",
                "2048",
                "--insecure-fast-kdf"
            ],
            &[]
        )
        .is_err()
    );
    server.approve(&code, &MARY).unwrap();
    let pins = [("TANDEM_PIN1", "1234"), ("TANDEM_PIN2", "12345")];
    let out = device(
        &[
            "register-finish",
            "--key-bits",
            "2048",
            "--insecure-fast-kdf",
        ],
        &pins,
    )
    .unwrap();
    let doc = field(&out, "registered: document number").to_owned();
    assert!(device(&["info"], &[]).unwrap().contains(&doc));
    assert!(
        device(&["register-start"], &[]).is_err(),
        "one account per device"
    );

    let contract = server.tmp.path().join("contract.txt");
    std::fs::write(&contract, "I agree.\n").unwrap();
    let out = rp(&[
        "sign",
        "--person",
        "PNOEE-30303039914",
        "--file",
        contract.to_str().unwrap(),
    ])
    .unwrap();
    let tx = field(&out, "transaction").to_owned();
    let vc = field(&out, "verification code").to_owned();
    let listed = device(&["pending"], &[]).unwrap();
    assert!(listed.contains(&tx) && listed.contains(&vc), "{listed}");
    // A wrong PIN first: reported, counted, exit status non-zero.
    let e = device(&["confirm", &tx], &[("TANDEM_PIN", "55555")]).unwrap_err();
    assert!(e.to_string().contains("WRONG_PIN"), "{e}");
    assert!(
        device(&["state"], &[])
            .unwrap()
            .contains("SIGN: active, 2 wrong PIN(s) left")
    );
    let out = device(&["confirm", &tx], &[("TANDEM_PIN", "12345")]).unwrap();
    assert!(out.contains("ACCEPTED"), "{out}");

    let sig = server.tmp.path().join("sig.bin");
    let key = server.tmp.path().join("key.pem");
    let cert = server.tmp.path().join("cert.pem");
    let out = rp(&[
        "status",
        &tx,
        "--wait",
        "10",
        "--signature-out",
        sig.to_str().unwrap(),
        "--pubkey-out",
        key.to_str().unwrap(),
        "--cert-out",
        cert.to_str().unwrap(),
    ])
    .unwrap();
    assert!(out.contains("result OK") && out.contains(&doc), "{out}");
    let verify = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-verify",
        ])
        .arg(&key)
        .arg("-signature")
        .arg(&sig)
        .arg(&contract)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("Verified OK"),
        "{verify:?}"
    );

    // The certificate the relying party got carries exactly that public key.
    let from_cert = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&from_cert.stdout),
        std::fs::read_to_string(&key).unwrap()
    );

    // Operator views and the audit chain.
    let shown = server.operator(&["show", &doc]).unwrap();
    assert!(
        shown.contains("SIGN key") && shown.contains("consecutive failures 0"),
        "{shown}"
    );
    server.assert_audit_intact();
    device(&["delete"], &[]).unwrap();
    assert!(server.operator(&["accounts"]).unwrap().contains("Deleted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_pin_is_caught_before_the_account_is_active() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let (client, reg, p1, p2) = register_until_proof(&server, [3; 16], &OTHER, "1234", "12345")
        .await
        .unwrap();
    // PIN2 mistyped at the confirmation step.
    match dev::prove(&client, &reg, &p1, &Pin::new("12346").unwrap())
        .await
        .unwrap()
    {
        ProofOutcome::PinMismatch {
            failed,
            attempts_left,
        } => {
            assert_eq!(failed, vec![tandem_client_core::types::KeyType::Sign]);
            assert_eq!(attempts_left, 2);
        }
        ProofOutcome::Completed(_) => panic!("a wrong PIN completed the registration"),
    }
    assert!(
        server.operator(&["accounts"]).unwrap().trim().is_empty(),
        "no account yet"
    );
    match dev::prove(&client, &reg, &p1, &p2).await.unwrap() {
        ProofOutcome::Completed(state) => assert!(state.document_number.starts_with("PNOEE-1-")),
        ProofOutcome::PinMismatch { .. } => panic!("the right PINs were refused"),
    }
}
