//! `tandem rp-api sign-cades` against a real server with test accounts: the signed
//! attributes' digest goes through a RAW_DIGEST_SIGNATURE notification session, and the
//! `.p7s` it writes is checked by `openssl cms -verify` with the server's root
//! (`pki/root.pem`) as the only trust anchor, for both RSA schemes, with the signer given by
//! document number or by person (certificate choice). A changed document fails
//! that check; a wrong issuing CA certificate or a SHA-3 hash is refused before signing.

#![allow(clippy::unwrap_used)] // tests

use tandem_tests::*;

/// The test account that signs with OK.
const OK: &str = "PNOEE-40504040001-MOCK-Q";
/// Its person.
const OK_PERSON: &str = "PNOEE-40504040001";

#[tokio::test(flavor = "multi_thread")]
async fn sign_cades_writes_a_p7s_that_openssl_verifies() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(60, true)),
        ..Default::default()
    })
    .unwrap();
    wait_for_test_accounts(&server);
    let tmp = server.tmp.path();
    let doc = tmp.join("contract.pdf");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&doc, &content).unwrap();
    let mut changed = content.clone();
    changed[123_456] ^= 0x01;
    let changed_doc = tmp.join("contract-changed.pdf");
    std::fs::write(&changed_doc, &changed).unwrap();

    // By document number (the certificate endpoint), and by person (a certificate choice).
    for (user, hash, pkcs1, label) in [
        (["--document", OK], "SHA-256", false, "RSASSA-PSS, SHA-256"),
        (
            ["--etsi", OK_PERSON],
            "SHA-512",
            true,
            "PKCS#1 v1.5, SHA-512",
        ),
    ] {
        let p7s = tmp.join(format!("contract-{hash}-{pkcs1}.p7s"));
        let mut args = vec![
            "sign-cades",
            user[0],
            user[1],
            "--file",
            doc.to_str().unwrap(),
            "--hash",
            hash,
            "--out",
            p7s.to_str().unwrap(),
        ];
        if pkcs1 {
            args.push("--pkcs1");
        }
        let out = rp_api_cli(&server, &args).unwrap();
        assert!(out.contains("verification code: "), "{out}");
        if user[0] == "--etsi" {
            assert!(out.contains(&format!("chosen: document {OK}")), "{out}");
        }
        assert!(out.contains("certificate chain: OK"), "{out}");
        assert!(
            out.contains("identity: OK (OK TESTNUMBER, PNOEE-40504040001 (EE)"),
            "{out}"
        );
        assert!(
            out.contains(&format!("CAdES-B-B signature ({label}) written to")),
            "{out}"
        );

        let (ok, log) = openssl_cms_verify(&server.data_dir.join("pki"), &p7s, &doc);
        assert!(ok, "{label}: openssl rejected the signature: {log}");
        assert!(log.contains("Verification successful"), "{log}");
        let (ok, log) = openssl_cms_verify(&server.data_dir.join("pki"), &p7s, &changed_doc);
        assert!(!ok, "{label}: openssl accepted a changed document: {log}");
        assert!(log.contains("content verify error"), "{log}");
    }

    // Refused before anyone is asked to sign: the root as the issuing CA, a SHA-3 hash.
    let p7s = tmp.join("refused.p7s");
    let root = server.data_dir.join("pki/root.pem");
    let e = rp_api_cli(
        &server,
        &[
            "sign-cades",
            "--document",
            OK,
            "--file",
            doc.to_str().unwrap(),
            "--issuer",
            root.to_str().unwrap(),
            "--out",
            p7s.to_str().unwrap(),
        ],
    )
    .unwrap_err();
    assert!(
        e.contains("is not the certificate of the CA that issued the signer's certificate"),
        "{e}"
    );
    assert!(!e.contains("verification code:"), "{e}");
    let e = rp_api_cli(
        &server,
        &[
            "sign-cades",
            "--document",
            OK,
            "--file",
            doc.to_str().unwrap(),
            "--hash",
            "SHA3-256",
            "--out",
            p7s.to_str().unwrap(),
        ],
    )
    .unwrap_err();
    assert!(
        e.contains("SHA-256, SHA-384 or SHA-512, not SHA3-256"),
        "{e}"
    );
    assert!(!p7s.exists());
}
