//! CAdES-B-LT against a real server: `tandem rp-api sign-cades --tsa --lt` embeds the
//! certificates, the OCSP responses of the signer's and the TSA's certificates (from the
//! server's responder) and the root's CRL (for the issuing CA certificate). OpenSSL still
//! verifies the `.p7s`; with the server stopped, `tandem verify` is green from the embedded
//! data alone, while the same check of a B-T signature without it is yellow TRY_LATER.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::process::Command;

use tandem_tests::*;

/// The test account that signs with OK.
const OK: &str = "PNOEE-40504040001-MOCK-Q";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `tandem verify ARGS`: exit code and stdout.
fn verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(tandem_bin())
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn b_lt_validates_offline_and_b_t_does_not() {
    let mut server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(60, true)),
        ..Default::default()
    })
    .unwrap();
    wait_for_test_accounts(&server);
    let tmp = server.tmp.path().to_owned();
    let pki = server.data_dir.join("pki");
    let doc = tmp.join("Schriftsatz.pdf");
    std::fs::write(
        &doc,
        b"%PDF-1.7 Schriftsatz, detached signature\n".repeat(100),
    )
    .unwrap();
    let tsa = format!("{}/tsa", server.http_url);
    // The certificates name ca.example.com; the server's publication listener answers.
    let (ocsp, crl, root_crl) = (
        format!("{}/ocsp", server.http_url),
        format!("{}/crl/issuing.crl", server.http_url),
        format!("{}/crl/root.crl", server.http_url),
    );
    let urls = [
        "--ocsp-url",
        ocsp.as_str(),
        "--crl-url",
        crl.as_str(),
        "--ca-crl-url",
        root_crl.as_str(),
    ];
    let sign = |out: &Path, lt: bool| {
        let mut args = urls.to_vec();
        args.extend_from_slice(&[
            "sign-cades",
            "--document",
            OK,
            "--file",
            s(&doc),
            "--tsa",
            &tsa,
            "--out",
            s(out),
        ]);
        if lt {
            args.push("--lt");
        }
        rp_api_cli(&server, &args)
    };
    let (lt, bt) = (tmp.join("lt.p7s"), tmp.join("bt.p7s"));
    let out = sign(&lt, true).unwrap();
    assert!(
        out.contains("CAdES-B-LT signature (RSASSA-PSS, SHA-512) written to"),
        "{out}"
    );
    assert!(
        out.contains("validation data: 4 certificates, 2 OCSP responses, 1 CRLs"),
        "{out}"
    );
    sign(&bt, false).unwrap();

    // --lt without --tsa is a usage error; no file.
    let refused = tmp.join("refused.p7s");
    let e = rp_api_cli(
        &server,
        &[
            "sign-cades",
            "--document",
            OK,
            "--file",
            s(&doc),
            "--lt",
            "--out",
            s(&refused),
        ],
    )
    .unwrap_err();
    assert!(e.contains("--tsa"), "{e}");
    assert!(!refused.exists());

    // What is embedded, read back by the validation's parser.
    let der = std::fs::read(&lt).unwrap();
    let parsed = tandem_rp::validation::cms::parse(&der).unwrap();
    assert_eq!(parsed.ocsp_responses.len(), 2);
    assert_eq!(parsed.crls.len(), 1);
    let (status, root_crl_der) = http(&server, "GET", "/crl/root.crl", b"").unwrap();
    assert_eq!(status, 200);
    assert!(parsed.crls[0] == root_crl_der, "the root's CRL is embedded");
    let embedded: Vec<Vec<u8>> = parsed.certificates.iter().map(|c| c.der.clone()).collect();
    for name in ["root.pem", "issuing.pem", "tsa.pem"] {
        let pem = std::fs::read(pki.join(name)).unwrap();
        let c = openssl::x509::X509::from_pem(&pem).unwrap();
        assert!(embedded.contains(&c.to_der().unwrap()), "{name} embedded");
    }

    // OpenSSL still accepts the signature.
    let (ok, log) = openssl_cms_verify(&pki, &lt, &doc);
    assert!(ok && log.contains("Verification successful"), "{log}");

    // The server gone: the embedded data decides; B-T has nothing to go on.
    server.kill();
    let trust = pki.join("root.pem");
    let offline = |p7s: &Path| {
        let mut args = vec![
            s(p7s),
            "--data",
            s(&doc),
            "--trust",
            s(&trust),
            "--lang",
            "en",
            "--revocation-timeout",
            "3",
        ];
        args.extend_from_slice(&urls);
        verify(&args)
    };
    let (code, out) = offline(&lt);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("TOTAL_PASSED"), "{out}");
    assert!(out.contains("CAdES-B-LT"), "{out}");
    let (code, out) = offline(&bt);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("INDETERMINATE/TRY_LATER"), "{out}");
    assert!(out.contains("CAdES-B-T"), "{out}");
}
