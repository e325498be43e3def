//! The proof of origin against a real server with test accounts: `tandem rp-api package
//! create` makes a package (main document and attachment, each with a CAdES signature, and
//! the proof); `openssl cms -verify` accepts the proof (attached statement) and each `.p7s`;
//! the statement's digests are the documents'; `verify_proof` accepts it and tells a
//! corrupted signature, a changed statement and a foreign root apart; `package inspect`
//! lists it. The endpoint refuses a second proof for a session (409), an AUTH session older
//! than `rp_api.max_auth_age_seconds` (410), another relying party's session (404, as an unknown one), a
//! signature session (400) and an unknown relying party (401).

#![allow(clippy::unwrap_used)] // tests

use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::Digest as _;
use tandem_rp::client::TrustAnchors;
use tandem_rp::documents::asic::{self, PackageLimits};
use tandem_rp::documents::origin::{self, ProofError};
use tandem_tests::*;

/// The test account that answers OK.
const OK: &str = "PNOEE-40504040001-MOCK-Q";
/// How old an AUTH session may be here (seconds): enough for `package create` to sign two
/// documents after the authentication on a loaded machine, short enough to wait out.
const MAX_AUTH_AGE: u64 = 5;
/// A second relying party.
const OTHER_RP_UUID: &str = "00000000-0000-4000-8000-0000000000bb";
const OTHER_RP_NAME: &str = "Other Bank";
const ENDPOINT: &str = "/tandem/v1/proof-of-origin";

fn anchors(server: &TestServer) -> TrustAnchors {
    let mut a = TrustAnchors::new();
    let pki = server.data_dir.join("pki");
    a.add_roots_pem(&std::fs::read(pki.join("root.pem")).unwrap())
        .unwrap();
    a.add_intermediates_pem(&std::fs::read(pki.join("issuing.pem")).unwrap())
        .unwrap();
    a
}

/// A completed OK notification authentication of the OK test account; its session id.
fn authenticate(server: &TestServer) -> String {
    let body = json!({
        "relyingPartyUUID": RP_UUID,
        "relyingPartyName": RP_NAME,
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": {
            "rpChallenge": STANDARD.encode([5u8; 64]),
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": b64_json(r#"[{"type":"displayTextAndPIN","displayText60":"Log in"}]"#),
        "vcType": "numeric4"
    });
    let (s, b) = rest(
        server,
        "POST",
        &format!("/v3/authentication/notification/document/{OK}"),
        &body.to_string(),
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    let id = b["sessionID"].as_str().unwrap().to_owned();
    let r = rest_session_result(server, &id).unwrap();
    assert_eq!(r["result"]["endResult"], "OK", "{r}");
    id
}

fn proof_request(session: &str, uuid: &str, name: &str) -> String {
    json!({
        "relyingPartyUUID": uuid,
        "relyingPartyName": name,
        "authSessionId": session,
        "recipient": {"name": "Amtsgericht Berlin", "identifier": "DE.Justiz.AG-Berlin"},
        "documents": [{"name": "Schriftsatz.pdf", "role": "mainDocument",
                       "digestAlgorithm": "SHA-256", "digest": STANDARD.encode([1u8; 32])}]
    })
    .to_string()
}

fn ask(server: &TestServer, body: &str) -> (u16, Value) {
    rest(server, "POST", ENDPOINT, body).unwrap()
}

fn openssl_verify_proof(server: &TestServer, proof: &Path, out: &Path) -> (bool, String) {
    let pki = server.data_dir.join("pki");
    openssl(
        server.tmp.path(),
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            proof.to_str().unwrap(),
            "-CAfile",
            pki.join("root.pem").to_str().unwrap(),
            "-certfile",
            pki.join("issuing.pem").to_str().unwrap(),
            // Our EKU is not S/MIME's emailProtection.
            "-purpose",
            "any",
            "-out",
            out.to_str().unwrap(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn package_with_proof_of_origin_and_the_endpoints_refusals() {
    let table = format!(
        "{}max_auth_age_seconds = {MAX_AUTH_AGE}\n",
        rp_api_table(60, true)
    );
    let server = TestServer::start(ServerOptions {
        rp_api: Some(table),
        ..Default::default()
    })
    .unwrap();
    server
        .operator(&["rp-add", "--uuid", OTHER_RP_UUID, "--name", OTHER_RP_NAME])
        .unwrap();
    wait_for_test_accounts(&server);
    let tmp = server.tmp.path();

    // The certificate is published and carries the proof-of-origin EKU.
    let (s, der) = http(&server, "GET", "/ca/origin.crt", b"").unwrap();
    assert_eq!(s, 200);
    let cert = openssl::x509::X509::from_der(&der).unwrap();
    std::fs::write(tmp.join("origin.pem"), cert.to_pem().unwrap()).unwrap();
    let (ok, text) = openssl(tmp, &["x509", "-in", "origin.pem", "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("CN = Tandem proof of origin"), "{text}");
    assert!(text.contains("1.3.6.1.4.1.32473.1.3.1"), "{text}");
    assert!(
        text.contains("Digital Signature, Non Repudiation"),
        "{text}"
    );

    // A package: main document and one attachment.
    let main = tmp.join("Schriftsatz.pdf");
    let attachment = tmp.join("Anlage 1.txt");
    let main_bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&main, &main_bytes).unwrap();
    std::fs::write(&attachment, b"Rechnung Nr. 42\n").unwrap();
    let package = tmp.join("nachricht.asice");
    let out = rp_api_cli(
        &server,
        &[
            "package",
            "create",
            "--document",
            OK,
            "--to",
            "Amtsgericht Berlin:DE.Justiz.AG-Berlin",
            "--main",
            main.to_str().unwrap(),
            "--attach",
            attachment.to_str().unwrap(),
            "--sender-ref",
            "AZ 17/26",
            "--recipient-ref",
            "12 C 345/26",
            "--message-id",
            "msg-0001",
            "--hash",
            "SHA-256",
            "--out",
            package.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert!(out.contains("authenticated: "), "{out}");
    assert_eq!(out.matches("signed by: ").count(), 2, "{out}");
    assert!(
        out.contains("proof of origin: message msg-0001 from OK TESTNUMBER (PNOEE-40504040001)"),
        "{out}"
    );
    assert!(out.contains("package with 2 document(s)"), "{out}");

    // The package reads; its proof and signatures go to OpenSSL.
    let bytes = std::fs::read(&package).unwrap();
    let read = asic::read_package(Cursor::new(&bytes), &PackageLimits::default()).unwrap();
    assert_eq!(read.documents.len(), 2);
    let proof = read.proof_of_origin.clone().unwrap();
    let proof_file = tmp.join("proof.p7s");
    std::fs::write(&proof_file, &proof).unwrap();
    let statement_file = tmp.join("statement.json");
    let (ok, log) = openssl_verify_proof(&server, &proof_file, &statement_file);
    assert!(ok, "openssl rejected the proof: {log}");
    assert!(log.contains("Verification successful"), "{log}");
    let statement: Value =
        serde_json::from_slice(&std::fs::read(&statement_file).unwrap()).unwrap();
    assert_eq!(statement["version"], 1);
    assert_eq!(statement["messageId"], "msg-0001");
    assert_eq!(statement["issuer"], "Tandem");
    assert_eq!(statement["relyingParty"]["uuid"], RP_UUID);
    assert_eq!(statement["sender"]["identifier"], "PNOEE-40504040001");
    assert_eq!(statement["sender"]["name"], "OK TESTNUMBER");
    assert_eq!(statement["recipient"]["identifier"], "DE.Justiz.AG-Berlin");
    assert_eq!(statement["senderReference"], "AZ 17/26");
    assert_eq!(statement["recipientReference"], "12 C 345/26");
    for (path, name, role) in [
        (&main, "Schriftsatz.pdf", "mainDocument"),
        (&attachment, "Anlage 1.txt", "attachment"),
    ] {
        let d = statement["documents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap();
        assert_eq!(d["role"], role);
        assert_eq!(d["digestAlgorithm"], "SHA-256");
        let want = STANDARD.encode(sha2::Sha256::digest(std::fs::read(path).unwrap()));
        assert_eq!(d["digest"], want.as_str(), "{name}");
        // The document streamed out of the package is the file; its .p7s verifies.
        let extracted = tmp.join(format!("extracted-{name}"));
        let f = std::fs::File::create(&extracted).unwrap();
        asic::extract_document(Cursor::new(&bytes), name, f, &PackageLimits::default()).unwrap();
        assert_eq!(
            std::fs::read(&extracted).unwrap(),
            std::fs::read(path).unwrap()
        );
        let doc = read
            .documents
            .iter()
            .find(|d| d.entry.name == name)
            .unwrap();
        let p7s = tmp.join(format!("{name}.p7s"));
        std::fs::write(&p7s, &doc.signature).unwrap();
        let (ok, log) = openssl_cms_verify(&server.data_dir.join("pki"), &p7s, &extracted);
        assert!(ok, "{name}: openssl rejected the signature: {log}");
    }

    // verify_proof accepts it; the statement matches the package.
    let now = SystemTime::now();
    let v = origin::verify_proof(&proof, &anchors(&server), now).unwrap();
    assert_eq!(v.statement.message_id, "msg-0001");
    assert!(v.ca.contains("Tandem Issuing CA"), "{}", v.ca);
    origin::check_package_documents(&v.statement, &read).unwrap();
    let mut other_docs = read.clone();
    other_docs.documents[1].sha256[0] ^= 1;
    assert!(matches!(
        origin::check_package_documents(&v.statement, &other_docs),
        Err(ProofError::DocumentMismatch(_))
    ));
    // A flipped byte in the signature (the SignedData's last field): invalid signature.
    let mut bad_sig = proof.clone();
    *bad_sig.last_mut().unwrap() ^= 0x01;
    assert!(matches!(
        origin::verify_proof(&bad_sig, &anchors(&server), now),
        Err(ProofError::InvalidSignature(_))
    ));
    // A changed statement: its digest no longer matches.
    let at = proof.windows(9).position(|w| w == b"msg-0001\"").unwrap();
    let mut bad_json = proof.clone();
    bad_json[at + 7] = b'2';
    assert!(matches!(
        origin::verify_proof(&bad_json, &anchors(&server), now),
        Err(ProofError::DigestMismatch)
    ));
    std::fs::write(tmp.join("bad.p7s"), &bad_json).unwrap();
    let (ok, _) = openssl_verify_proof(&server, &tmp.join("bad.p7s"), &tmp.join("bad.json"));
    assert!(!ok, "openssl accepted a changed statement");
    // Another root as the only anchor: unknown CA, named.
    let (ok, log) = openssl(
        tmp,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other-root.pem",
            "-subj",
            "/CN=Other Root",
            "-days",
            "1",
        ],
    );
    assert!(ok, "{log}");
    let mut foreign = TrustAnchors::new();
    foreign
        .add_roots_pem(&std::fs::read(tmp.join("other-root.pem")).unwrap())
        .unwrap();
    match origin::verify_proof(&proof, &foreign, now) {
        Err(ProofError::UnknownCa { issuer, .. }) => {
            assert!(issuer.contains("Tandem Issuing CA"), "{issuer}")
        }
        other => panic!("expected an unknown CA, got {other:?}"),
    }
    // Not CMS at all.
    assert!(matches!(
        origin::verify_proof(b"not a proof", &anchors(&server), now),
        Err(ProofError::Malformed(_))
    ));

    // package inspect lists the documents, the signers and the statement.
    let listing = tandem(&["package", "inspect", package.to_str().unwrap(), "--json"]).unwrap();
    let listing: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listing["documents"][0]["name"], "Schriftsatz.pdf");
    assert_eq!(listing["documents"][0]["role"], "main");
    assert_eq!(listing["documents"][1]["role"], "attachment");
    assert!(
        listing["documents"][1]["signer"]
            .as_str()
            .unwrap()
            .contains("PNOEE-40504040001"),
        "{listing}"
    );
    assert_eq!(
        listing["proofOfOrigin"]["statement"]["messageId"],
        "msg-0001"
    );
    let text = tandem(&["package", "inspect", package.to_str().unwrap()]).unwrap();
    assert!(
        text.contains("document: Schriftsatz.pdf (main document"),
        "{text}"
    );
    assert!(text.contains("not verified here"), "{text}");

    // One proof per session: the second request is 409; the audit log has one record.
    let session = authenticate(&server);
    let (s, b) = ask(&server, &proof_request(&session, RP_UUID, RP_NAME));
    assert_eq!(s, 200, "{b}");
    assert!(b["messageId"].as_str().unwrap().len() == 36, "{b}");
    let server_proof = STANDARD.decode(b["proof"].as_str().unwrap()).unwrap();
    let v = origin::verify_proof(&server_proof, &anchors(&server), SystemTime::now()).unwrap();
    assert_eq!(v.statement.sender.auth_session_id, session);
    let (s, b) = ask(&server, &proof_request(&session, RP_UUID, RP_NAME));
    assert_eq!(
        (s, b["title"].as_str()),
        (409, Some("Proof already issued")),
        "{b}"
    );
    let audit = server.operator(&["audit"]).unwrap();
    assert!(audit.contains(&session), "{audit}");
    assert_eq!(audit.matches("origin.proof").count(), 2, "{audit}");

    // Another relying party's session: 404, as an unknown one; an unknown relying party: 401.
    let session = authenticate(&server);
    let (s, b) = ask(
        &server,
        &proof_request(&session, OTHER_RP_UUID, OTHER_RP_NAME),
    );
    assert_eq!(s, 404, "{b}");
    let foreign_body = b;
    let (s, b) = ask(
        &server,
        &proof_request(&session, "00000000-0000-4000-8000-00000000dead", RP_NAME),
    );
    assert_eq!(s, 401, "{b}");
    // Bad input: no main document, an unknown field: 400.
    let mut no_main: Value =
        serde_json::from_str(&proof_request(&session, RP_UUID, RP_NAME)).unwrap();
    no_main["documents"][0]["role"] = json!("attachment");
    let (s, b) = ask(&server, &no_main.to_string());
    assert_eq!(s, 400, "{b}");
    let mut extra = no_main.clone();
    extra["documents"][0]["role"] = json!("mainDocument");
    extra["sender"] = json!("me");
    let (s, b) = ask(&server, &extra.to_string());
    assert_eq!(s, 400, "{b}");
    // A session nobody started: 404.
    let (s, b) = ask(
        &server,
        &proof_request("11111111-1111-4111-8111-111111111111", RP_UUID, RP_NAME),
    );
    assert_eq!(s, 404, "{b}");
    assert_eq!(
        b, foreign_body,
        "a foreign session must look like no session"
    );

    // A signature session: 400.
    let (s, b) = rest(
        &server,
        "POST",
        &format!("/v3/signature/notification/document/{OK}"),
        &rest_sign_body(SIGN_WITH_PIN, None),
    )
    .unwrap();
    assert_eq!(s, 200, "{b}");
    let sign_session = b["sessionID"].as_str().unwrap().to_owned();
    rest_session_result(&server, &sign_session).unwrap();
    let (s, b) = ask(&server, &proof_request(&sign_session, RP_UUID, RP_NAME));
    assert_eq!(s, 400, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("not an authentication session"),
        "{b}"
    );

    // Older than max_auth_age_seconds: 410, and the session stays unused.
    std::thread::sleep(Duration::from_secs(MAX_AUTH_AGE + 2));
    let (s, b) = ask(&server, &proof_request(&session, RP_UUID, RP_NAME));
    assert_eq!(
        (s, b["title"].as_str()),
        (410, Some("Authentication too old")),
        "{b}"
    );
    assert_eq!(
        server
            .operator(&["audit"])
            .unwrap()
            .matches("origin.proof")
            .count(),
        2
    );
}
