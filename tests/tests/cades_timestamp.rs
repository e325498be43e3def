//! CAdES-B-T: `tandem rp-api sign-cades --tsa URL` against a real server (test accounts and
//! its RFC 3161 TSA at `/tsa`). The `.p7s` still passes `openssl cms -verify`, and its
//! signature time-stamp token passes `openssl ts -verify` over the signature value with the
//! server's root as the only trust anchor. An unreachable or failing TSA gives a clear error
//! and no file; answers that do not belong to the request (another nonce, another digest)
//! are refused by the library's check.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;

use tandem_rp::documents::DocumentHash;
use tandem_rp::documents::timestamp::{self, TimeStampError, TimeStampRequest};
use tandem_tests::*;

/// The test account that signs with OK.
const OK: &str = "PNOEE-40504040001-MOCK-Q";

fn ts_verify(server: &TestServer, data: &Path, token: &Path) -> (bool, String) {
    let pki = server.data_dir.join("pki");
    openssl(
        server.tmp.path(),
        &[
            "ts",
            "-verify",
            "-data",
            data.to_str().unwrap(),
            "-in",
            token.to_str().unwrap(),
            "-token_in",
            "-CAfile",
            pki.join("root.pem").to_str().unwrap(),
            "-untrusted",
            pki.join("issuing.pem").to_str().unwrap(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_cades_with_tsa_is_b_t_and_openssl_ts_verifies_the_token() {
    let server = TestServer::start(ServerOptions {
        rp_api: Some(rp_api_table(60, true)),
        ..Default::default()
    })
    .unwrap();
    wait_for_test_accounts(&server);
    let tmp = server.tmp.path();
    let doc = tmp.join("contract.pdf");
    std::fs::write(&doc, b"Schriftsatz vom 7. Dezember\n".repeat(5000)).unwrap();
    let tsa = format!("{}/tsa", server.http_url);

    let p7s = tmp.join("contract.p7s");
    let out = rp_api_cli(
        &server,
        &[
            "sign-cades",
            "--document",
            OK,
            "--file",
            doc.to_str().unwrap(),
            "--hash",
            "SHA-384",
            "--tsa",
            &tsa,
            "--out",
            p7s.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert!(out.contains("time stamp: "), "{out}");
    assert!(
        out.contains("CAdES-B-T signature (RSASSA-PSS, SHA-384) written to"),
        "{out}"
    );
    let (ok, log) = openssl_cms_verify(&server.data_dir.join("pki"), &p7s, &doc);
    assert!(ok && log.contains("Verification successful"), "{log}");

    // The token: over the SignerInfo's signature value, verified by OpenSSL's TSA check.
    let der = std::fs::read(&p7s).unwrap();
    let tokens = timestamp::signature_time_stamp_tokens(&der).unwrap();
    assert_eq!(tokens.len(), 1);
    let token = tmp.join("token.der");
    std::fs::write(&token, &tokens[0]).unwrap();
    let value = tmp.join("signature-value.bin");
    std::fs::write(&value, timestamp::signature_value(&der).unwrap()).unwrap();
    let (ok, log) = ts_verify(&server, &value, &token);
    assert!(ok && log.contains("Verification: OK"), "{log}");
    // ... and not over anything else (the document itself).
    let (ok, log) = ts_verify(&server, &doc, &token);
    assert!(!ok && !log.contains("Verification: OK"), "{log}");

    // No TSA listening, or a path that is no TSA: a clear error and no file.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, message) in [
        (
            format!("http://127.0.0.1:{port}/tsa"),
            "the time-stamp authority is unreachable",
        ),
        (
            format!("{}/no-tsa-here", server.http_url),
            "the time-stamp authority answered HTTP 404",
        ),
    ] {
        let refused = tmp.join("refused.p7s");
        let e = rp_api_cli(
            &server,
            &[
                "sign-cades",
                "--document",
                OK,
                "--file",
                doc.to_str().unwrap(),
                "--tsa",
                &url,
                "--out",
                refused.to_str().unwrap(),
            ],
        )
        .unwrap_err();
        assert!(e.contains(message), "{e}");
        assert!(e.contains("no time stamp, no signature written"), "{e}");
        assert!(!refused.exists());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_to_another_request_are_refused() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let post = |req: &TimeStampRequest| {
        let (status, body) = http_typed(
            &server,
            "POST",
            "/tsa",
            "application/timestamp-query",
            req.der(),
        )
        .unwrap();
        assert_eq!(status, 200);
        body
    };
    let asked = TimeStampRequest::new(DocumentHash::Sha256, b"signature value").unwrap();
    let answer = post(&asked);
    let token = asked.check_response(&answer).unwrap();
    assert!(!token.tsa_certificate_der().is_empty());
    let tsa_pem = std::fs::read(server.data_dir.join("pki/tsa.pem")).unwrap();
    let tsa = openssl::x509::X509::from_pem(&tsa_pem).unwrap();
    assert_eq!(token.tsa_certificate_der(), tsa.to_der().unwrap());

    // The same digest with another nonce; another digest.
    let same_data = TimeStampRequest::new(DocumentHash::Sha256, b"signature value").unwrap();
    assert_eq!(
        same_data.check_response(&answer).unwrap_err(),
        TimeStampError::NonceMismatch
    );
    let other_data = TimeStampRequest::new(DocumentHash::Sha256, b"another value").unwrap();
    assert_eq!(
        other_data.check_response(&answer).unwrap_err(),
        TimeStampError::ImprintMismatch
    );

    // A token whose signed content was changed no longer verifies.
    let mut tampered = answer.clone();
    let at = tampered.len() / 3;
    tampered[at] ^= 0x01;
    assert!(asked.check_response(&tampered).is_err());

    // A token that is not over this CAdES signature's value is not added to it.
    let e = timestamp::add_signature_time_stamp(b"\x30\x00", token.der()).unwrap_err();
    assert!(matches!(e, TimeStampError::Signature(_)), "{e}");
}
