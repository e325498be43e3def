//! The RFC 3161 time-stamp authority on the publication point (`POST /tsa`), checked with
//! the OpenSSL command line: `openssl ts -query` makes the requests, `openssl ts -verify`
//! verifies the replies against our root (another document must fail), `openssl ts -reply
//! -text` shows the echoed nonce and the rejections; the TSA certificate chains to the root,
//! carries the critical timeStamping EKU and is good at our OCSP responder. Runs on SoftHSM
//! (RSA-3072 CA keys) and hsm-sim (P-384).

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;

use tandem_tests::*;

/// Posts the file `query` in `dir` as a time-stamp query; writes the reply to `reply`.
fn post_query(server: &TestServer, dir: &Path, query: &str, reply: &str) {
    let body = std::fs::read(dir.join(query)).unwrap();
    let (status, der) =
        http_typed(server, "POST", "/tsa", "application/timestamp-query", &body).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&der));
    std::fs::write(dir.join(reply), der).unwrap();
}

fn reply_text(dir: &Path, reply: &str) -> String {
    let (ok, out) = openssl(dir, &["ts", "-reply", "-in", reply, "-text"]);
    assert!(ok, "{out}");
    out
}

/// The value after `label` on its line in OpenSSL's text output.
fn text_field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {out}"))
        .trim()
        .to_owned()
}

fn verify(dir: &Path, data: &str, reply: &str, untrusted: &str) -> (bool, String) {
    openssl(
        dir,
        &[
            "ts",
            "-verify",
            "-data",
            data,
            "-in",
            reply,
            "-CAfile",
            "root.pem",
            "-untrusted",
            untrusted,
        ],
    )
}

fn time_stamps_verify_with_openssl(opts: ServerOptions) {
    let mut server = TestServer::start(opts).unwrap();
    let dir = server.tmp.path().join("tsa");
    std::fs::create_dir_all(&dir).unwrap();
    server
        .operator(&["export-ca", "--out", dir.to_str().unwrap()])
        .unwrap();
    // export-ca includes the TSA certificate.
    let tsa_pem = server.data_dir.join("pki/tsa.pem");
    assert_eq!(
        std::fs::read(dir.join("tsa.pem")).unwrap(),
        std::fs::read(&tsa_pem).unwrap()
    );
    std::fs::write(dir.join("doc.txt"), b"Schriftsatz vom 7. Dezember\n").unwrap();
    std::fs::write(dir.join("other.txt"), b"Schriftsatz vom 8. Dezember\n").unwrap();

    // The TSA certificate: issued by our issuing CA, timeStamping only and critical.
    let (ok, out) = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "issuing.pem",
            "-purpose",
            "timestampsign",
            "tsa.pem",
        ],
    );
    assert!(ok && out.contains("tsa.pem: OK"), "{out}");
    let (ok, text) = openssl(&dir, &["x509", "-in", "tsa.pem", "-noout", "-text"]);
    assert!(ok, "{text}");
    let eku = text
        .split("X509v3 Extended Key Usage: critical")
        .nth(1)
        .unwrap_or_else(|| panic!("no critical EKU in {text}"));
    assert_eq!(
        eku.lines().nth(1).unwrap().trim(),
        "Time Stamping",
        "{text}"
    );
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("http://ca.example.com/ocsp"), "{text}");
    assert!(
        text.contains("http://ca.example.com/crl/issuing.crl"),
        "{text}"
    );

    // A query with -cert: granted, verifies for the document and not for another one.
    let (ok, out) = openssl(
        &dir,
        &[
            "ts", "-query", "-data", "doc.txt", "-sha256", "-cert", "-out", "q.tsq",
        ],
    );
    assert!(ok, "{out}");
    post_query(&server, &dir, "q.tsq", "r.tsr");
    let (ok, out) = verify(&dir, "doc.txt", "r.tsr", "issuing.pem");
    assert!(ok && out.contains("Verification: OK"), "{out}");
    let (ok, out) = verify(&dir, "other.txt", "r.tsr", "issuing.pem");
    assert!(!ok && !out.contains("Verification: OK"), "{out}");

    // The nonce is echoed, the policy is ours, the serial numbers increase.
    let (ok, query) = openssl(&dir, &["ts", "-query", "-in", "q.tsq", "-text"]);
    assert!(ok, "{query}");
    let reply = reply_text(&dir, "r.tsr");
    assert_eq!(text_field(&reply, "Status:"), "Granted.", "{reply}");
    let nonce = text_field(&query, "Nonce:");
    assert_ne!(nonce, "unspecified");
    assert_eq!(text_field(&reply, "Nonce:"), nonce, "{reply}");
    assert_eq!(
        text_field(&reply, "Policy OID:"),
        "1.3.6.1.4.1.32473.1.2.1",
        "{reply}"
    );
    assert!(reply.contains("Accuracy: 0x01 seconds"), "{reply}");

    // Without -cert the token has no certificate: the verifier is given tsa.pem.
    let (ok, out) = openssl(
        &dir,
        &[
            "ts", "-query", "-data", "doc.txt", "-sha512", "-out", "q2.tsq",
        ],
    );
    assert!(ok, "{out}");
    post_query(&server, &dir, "q2.tsq", "r2.tsr");
    let untrusted = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("tsa.pem")).unwrap(),
        std::fs::read_to_string(dir.join("issuing.pem")).unwrap()
    );
    std::fs::write(dir.join("untrusted.pem"), untrusted).unwrap();
    let (ok, out) = verify(&dir, "doc.txt", "r2.tsr", "untrusted.pem");
    assert!(ok && out.contains("Verification: OK"), "{out}");
    let (ok, out) = verify(&dir, "doc.txt", "r2.tsr", "issuing.pem");
    assert!(!ok, "no TSA certificate anywhere, yet: {out}");
    let serial = |reply: &str| {
        let text = reply_text(&dir, reply);
        u128::from_str_radix(
            text_field(&text, "Serial number:").trim_start_matches("0x"),
            16,
        )
        .unwrap()
    };
    assert!(serial("r2.tsr") > serial("r.tsr"));

    // Refusals as RFC 3161 rejections.
    for (args, failure) in [
        (
            vec!["-sha1"],
            "unrecognized or unsupported algorithm identifier",
        ),
        (
            vec!["-sha256", "-tspolicy", "1.2.3.4"],
            "the requested TSA policy is not supported by the TSA",
        ),
    ] {
        let mut cmd = vec!["ts", "-query", "-data", "doc.txt", "-out", "bad.tsq"];
        cmd.extend(args);
        let (ok, out) = openssl(&dir, &cmd);
        assert!(ok, "{out}");
        post_query(&server, &dir, "bad.tsq", "bad.tsr");
        let reply = reply_text(&dir, "bad.tsr");
        assert_eq!(text_field(&reply, "Status:"), "Rejected.", "{reply}");
        assert_eq!(text_field(&reply, "Failure info:"), failure, "{reply}");
    }

    // Not a request, too large, the wrong type: HTTP errors.
    let query = std::fs::read(dir.join("q.tsq")).unwrap();
    for (content_type, body, expected) in [
        ("application/timestamp-query", b"not DER".to_vec(), 400),
        (
            "application/timestamp-query",
            query[..query.len() - 2].to_vec(),
            400,
        ),
        ("application/timestamp-query", vec![0x30; 5000], 413),
        ("application/ocsp-request", query.clone(), 415),
    ] {
        let (status, _) = http_typed(&server, "POST", "/tsa", content_type, &body).unwrap();
        assert_eq!(status, expected, "{content_type} {} bytes", body.len());
    }

    // The TSA certificate is good at our OCSP responder.
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("issuing.pem")).unwrap(),
        std::fs::read_to_string(dir.join("root.pem")).unwrap()
    );
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    let url = format!("{}/ocsp", server.http_url);
    let (ok, out) = openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-cert",
            "tsa.pem",
            "-url",
            &url,
            "-CAfile",
            "chain.pem",
        ],
    );
    assert!(ok && out.contains("tsa.pem: good"), "{out}");

    // A data directory without a TSA certificate gets one on the next run (no manual step).
    server.kill();
    std::fs::remove_file(&tsa_pem).unwrap();
    server.restart().unwrap();
    assert!(
        server.log().contains("issued the TSA certificate"),
        "{}",
        server.log()
    );
    std::fs::copy(&tsa_pem, dir.join("tsa.pem")).unwrap();
    let (status, der) = http(&server, "GET", "/ca/tsa.crt", b"").unwrap();
    assert_eq!(status, 200);
    let pem = std::fs::read(&tsa_pem).unwrap();
    assert_eq!(
        der,
        openssl::x509::X509::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap()
    );
    post_query(&server, &dir, "q.tsq", "r3.tsr");
    let (ok, out) = verify(&dir, "doc.txt", "r3.tsr", "issuing.pem");
    assert!(ok && out.contains("Verification: OK"), "{out}");
}

#[test]
fn time_stamps_on_softhsm() {
    time_stamps_verify_with_openssl(ServerOptions {
        ca_key_spec: Some("rsa3072".into()),
        ..Default::default()
    });
}

#[test]
fn time_stamps_on_hsm_sim() {
    time_stamps_verify_with_openssl(ServerOptions {
        hsm_sim: true,
        ..Default::default()
    });
}
