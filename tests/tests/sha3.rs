//! SHA-3 end to end, against one real server process and one simulated phone (client-core
//! over loopback gRPC): for SHA3-256, SHA3-384 and SHA3-512
//!
//! * RAW_DIGEST_SIGNATURE with `rsassa-pss` (MGF1 with the same SHA-3, salt = hash length)
//!   through the REST API (Smart-ID RP API v3), checked by our RP client's verification and
//!   by `openssl dgst -sha3-N -sigopt rsa_padding_mode:pss ...`;
//! * ACSP_V2 notification authentication with `rsassa-pss` and SHA-3, checked by the RP
//!   client and by OpenSSL over the ACSP_V2 payload rebuilt from the response;
//! * PKCS#1 v1.5 with the SHA-3 DigestInfo: the RP API v3 has no name for it (its PKCS#1
//!   v1.5 names, `sha256WithRSAEncryption` and so on, fix a SHA-2 hash by their OIDs), so the
//!   REST API refuses a SHA-3 `hashAlgorithm` beside such a name with 400 and starts
//!   nothing; the combination is signed through the gRPC relying-party API instead (same
//!   server, same phone, same signing path) and checked with `openssl dgst -sha3-N`.
//!
//! Each OpenSSL check is paired with one that must fail (another MGF1 hash, another
//! message), so a verifier that accepted anything would be caught.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_proto::v1 as pb;
use tandem_rp::api::acsp::{AcspV2Fields, acsp_v2_payload};
use tandem_rp::api::types::{
    AuthSignatureProtocol, AuthSignatureProtocolParameters, HashAlgorithm, Interaction,
    NotificationAuthenticationRequest, NotificationSigningRequest, SessionStatusResponse,
    SignSignatureProtocol, SignSignatureProtocolParameters, Signature, SignatureAlgorithm,
    SignatureAlgorithmParametersInRequest, VerificationCodeType, encode_interactions,
};
use tandem_rp::client::verify::{self, hash};
use tandem_rp::client::{
    AuthenticationExpectation, ClientConfig, RpApiClient, SignatureExpectation, TrustAnchors,
    UserRef, generate_rp_challenge,
};
use tandem_tests::*;

const SHA3: [HashAlgorithm; 3] = [
    HashAlgorithm::Sha3_256,
    HashAlgorithm::Sha3_384,
    HashAlgorithm::Sha3_512,
];

/// `sha3-256` and so on, as OpenSSL names the digest.
fn openssl_md(h: HashAlgorithm) -> &'static str {
    match h {
        HashAlgorithm::Sha3_256 => "sha3-256",
        HashAlgorithm::Sha3_384 => "sha3-384",
        HashAlgorithm::Sha3_512 => "sha3-512",
        other => panic!("not a SHA-3: {other:?}"),
    }
}

fn pb_hash(h: HashAlgorithm) -> pb::HashAlgorithm {
    match h {
        HashAlgorithm::Sha3_256 => pb::HashAlgorithm::Sha3256,
        HashAlgorithm::Sha3_384 => pb::HashAlgorithm::Sha3384,
        HashAlgorithm::Sha3_512 => pb::HashAlgorithm::Sha3512,
        other => panic!("not a SHA-3: {other:?}"),
    }
}

/// How OpenSSL is asked to check a signature.
#[derive(Clone, Copy)]
enum Padding<'a> {
    Pkcs1,
    /// PSS with this MGF1 digest and salt length.
    Pss {
        mgf1: &'a str,
        salt: usize,
    },
}

/// `openssl dgst -<md> -verify pub.pem -signature sig data` (with the PSS options); true
/// when OpenSSL says `Verified OK`.
fn openssl_verifies(
    dir: &Path,
    public_key_pem: &Path,
    md: &str,
    padding: Padding<'_>,
    data: &[u8],
    signature: &[u8],
) -> bool {
    std::fs::write(dir.join("data.bin"), data).unwrap();
    std::fs::write(dir.join("sig.bin"), signature).unwrap();
    let digest = format!("-{md}");
    let mut args = vec![digest.as_str(), "-verify"];
    args.push(public_key_pem.to_str().unwrap());
    let (salt, mgf1);
    if let Padding::Pss { mgf1: m, salt: s } = padding {
        salt = format!("rsa_pss_saltlen:{s}");
        mgf1 = format!("rsa_mgf1_md:{m}");
        args.extend([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            &salt,
            "-sigopt",
            &mgf1,
        ]);
    }
    args.extend(["-signature", "sig.bin", "data.bin"]);
    let mut all = vec!["dgst"];
    all.extend(args);
    let (ok, out) = openssl(dir, &all);
    assert_eq!(
        ok,
        out.contains("Verified OK"),
        "openssl's exit status and output disagree: {out}"
    );
    ok
}

/// The public key of a DER certificate as a PEM file, through `openssl x509 -pubkey`.
fn public_key_of_certificate(dir: &Path, name: &str, der: &[u8]) -> std::path::PathBuf {
    let cert = dir.join(format!("{name}.crt"));
    std::fs::write(&cert, cert_pem(der)).unwrap();
    let key = dir.join(format!("{name}.pub.pem"));
    let (ok, out) = openssl(
        dir,
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-noout",
            "-pubkey",
            "-out",
            key.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    key
}

fn trust_anchors(server: &TestServer) -> TrustAnchors {
    let pki = server.data_dir.join("pki");
    let mut a = TrustAnchors::new();
    assert!(
        a.add_roots_pem(&std::fs::read(pki.join("root.pem")).unwrap())
            .unwrap()
            > 0
    );
    let issuing = pki.join("issuing.pem");
    if issuing.is_file() {
        a.add_intermediates_pem(&std::fs::read(issuing).unwrap())
            .unwrap();
    }
    a
}

fn pss_params(h: HashAlgorithm) -> Option<SignatureAlgorithmParametersInRequest> {
    Some(SignatureAlgorithmParametersInRequest { hash_algorithm: h })
}

/// Waits until the phone lists session `id`, then confirms it with `pin`.
async fn phone_confirms(
    client: &dev::Client,
    state: &mut tandem_client_core::state::DeviceState,
    id: &str,
    pin: &str,
) {
    let t = pending_session(client, state, id).await.unwrap();
    dev::confirm(client, state, &t, &Pin::new(pin).unwrap(), None)
        .await
        .unwrap();
}

async fn completed(rp: &RpApiClient, id: &str) -> SessionStatusResponse {
    let status = rp
        .wait_for_completion(id, Some(10_000), |_| {})
        .await
        .unwrap();
    assert_eq!(
        status
            .result
            .as_ref()
            .map(|r| verify::end_result_name(r.end_result)),
        Some("OK".to_owned()),
        "{status:?}"
    );
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn sha3_signatures_and_authentications_verify_with_our_rp_client_and_openssl() {
    let server = TestServer::start(ServerOptions::default()).unwrap();
    let mut state = register(&server, &MARY, "1234", "12345").await.unwrap();
    let doc = state.document_number.clone();
    let client = server.device_client().await.unwrap();
    let rp = RpApiClient::new(ClientConfig::new(format!("{}/v3", server.rest_url))).unwrap();
    let anchors = trust_anchors(&server);
    let user = UserRef::Document(doc.clone());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    for h in SHA3 {
        let md = openssl_md(h);
        let n = h.output_len();

        // RAW_DIGEST_SIGNATURE, rsassa-pss with SHA-3 over the REST API.
        let document = format!("contract signed with RSASSA-PSS and {}", h.as_str());
        let digest = hash(h, document.as_bytes()).unwrap();
        assert_eq!(digest.len(), n);
        let req = NotificationSigningRequest {
            relying_party_uuid: RP_UUID.into(),
            relying_party_name: RP_NAME.into(),
            certificate_level: None,
            signature_protocol: SignSignatureProtocol::RawDigestSignature,
            signature_protocol_parameters: SignSignatureProtocolParameters {
                digest: STANDARD.encode(&digest),
                signature_algorithm: SignatureAlgorithm::RsassaPss,
                signature_algorithm_parameters: pss_params(h),
            },
            nonce: None,
            interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
                display_text60: format!("Sign with {}", h.as_str()),
            }]),
            request_properties: None,
            capabilities: None,
        };
        let id = rp
            .notification_signature(&user, &req)
            .await
            .unwrap()
            .session_id;
        phone_confirms(&client, &mut state, &id, "12345").await;
        let status = completed(&rp, &id).await;
        let expected = SignatureExpectation::notification(&req, &user).unwrap();
        let signed = verify::verify_signature(&status, &expected, &anchors, SystemTime::now())
            .unwrap_or_else(|e| panic!("{}: RP client rejects the PSS signature: {e}", h.as_str()));
        let Some(Signature::RawDigest(raw)) = &status.signature else {
            panic!("{status:?}")
        };
        let p = raw.signature_algorithm_parameters.as_ref().unwrap();
        assert_eq!(p.hash_algorithm, Some(h));
        assert_eq!(
            p.mask_gen_algorithm
                .as_ref()
                .unwrap()
                .parameters
                .as_ref()
                .unwrap()
                .hash_algorithm,
            h
        );
        assert_eq!(p.salt_length, Some(n as u32));
        // Our verifier must also be able to say no: the same answer for another digest.
        let mut other = expected.clone();
        other.digest = hash(h, b"another contract").unwrap();
        assert!(verify::verify_signature(&status, &other, &anchors, SystemTime::now()).is_err());

        let key = public_key_of_certificate(dir, &format!("sign-{md}"), &signed.certificate_der);
        let pss = Padding::Pss { mgf1: md, salt: n };
        assert!(
            openssl_verifies(dir, &key, md, pss, document.as_bytes(), &signed.signature),
            "openssl rejects RSASSA-PSS with {md}"
        );
        let mgf1_sha2 = Padding::Pss {
            mgf1: "sha256",
            salt: n,
        };
        assert!(!openssl_verifies(
            dir,
            &key,
            md,
            mgf1_sha2,
            document.as_bytes(),
            &signed.signature
        ));
        assert!(!openssl_verifies(
            dir,
            &key,
            md,
            pss,
            b"another contract",
            &signed.signature
        ));

        // ACSP_V2 authentication, rsassa-pss with SHA-3, notification flow.
        let areq = NotificationAuthenticationRequest {
            relying_party_uuid: RP_UUID.into(),
            relying_party_name: RP_NAME.into(),
            certificate_level: None,
            signature_protocol: AuthSignatureProtocol::AcspV2,
            signature_protocol_parameters: AuthSignatureProtocolParameters {
                rp_challenge: generate_rp_challenge(&mut rand::rngs::OsRng),
                signature_algorithm: SignatureAlgorithm::RsassaPss,
                signature_algorithm_parameters: pss_params(h),
            },
            interactions: encode_interactions(&[Interaction::DisplayTextAndPin {
                display_text60: format!("Log in with {}", h.as_str()),
            }]),
            request_properties: None,
            capabilities: None,
            vc_type: VerificationCodeType::Numeric4,
            nonce: None,
        };
        let id = rp
            .notification_authentication(&user, &areq)
            .await
            .unwrap()
            .session_id;
        phone_confirms(&client, &mut state, &id, "1234").await;
        let status = completed(&rp, &id).await;
        let aexp = AuthenticationExpectation::notification(&areq, "smart-id", &user).unwrap();
        let auth = verify::verify_authentication(&status, &aexp, &anchors, SystemTime::now())
            .unwrap_or_else(|e| {
                panic!("{}: RP client rejects the ACSP_V2 answer: {e}", h.as_str())
            });
        let Some(Signature::AcspV2(sig)) = &status.signature else {
            panic!("{status:?}")
        };
        assert_eq!(
            sig.signature_algorithm_parameters
                .as_ref()
                .unwrap()
                .hash_algorithm,
            Some(h)
        );
        // The payload an RP rebuilds from what it sent and what came back.
        let payload = acsp_v2_payload(&AcspV2Fields {
            scheme_name: "smart-id",
            server_random: &sig.server_random,
            rp_challenge: &areq.signature_protocol_parameters.rp_challenge,
            user_challenge: &sig.user_challenge,
            relying_party_name: RP_NAME,
            brokered_rp_name: None,
            interactions: &areq.interactions,
            interaction_type_used: auth.interaction_type_used,
            initial_callback_url: None,
            flow_type: auth.flow_type,
        });
        let value = STANDARD.decode(&sig.value).unwrap();
        let key = public_key_of_certificate(dir, &format!("auth-{md}"), &auth.certificate_der);
        assert!(
            openssl_verifies(dir, &key, md, pss, payload.as_bytes(), &value),
            "openssl rejects the ACSP_V2 signature with {md}"
        );
        let other_rp = payload.replacen(
            &STANDARD.encode(RP_NAME),
            &STANDARD.encode("Another Bank"),
            1,
        );
        assert_ne!(other_rp, payload);
        assert!(!openssl_verifies(
            dir,
            &key,
            md,
            pss,
            other_rp.as_bytes(),
            &value
        ));
        // Our verifier refuses the answer for another rpChallenge.
        let mut other = aexp.clone();
        other.rp_challenge = generate_rp_challenge(&mut rand::rngs::OsRng);
        assert!(
            verify::verify_authentication(&status, &other, &anchors, SystemTime::now()).is_err()
        );
    }

    // The relying party's command line: `tandem rp-api sign --hash SHA3-512` (its own
    // verification, then OpenSSL over the file); `--pkcs1` with a SHA-3 is refused up front.
    let contract = dir.join("contract.txt");
    std::fs::write(&contract, "I agree, with SHA3-512.\n").unwrap();
    let rp_api = |args: &[&str]| {
        let mut all = vec!["rp-api", "--api"];
        let api = format!("{}/v3", server.rest_url);
        all.push(&api);
        all.extend(["--trust", server.data_dir.to_str().unwrap()]);
        all.extend(args);
        std::process::Command::new(tandem_bin())
            .args(&all)
            .env("TANDEM_RP_UUID", RP_UUID)
            .env("TANDEM_RP_NAME", RP_NAME)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let sig_file = dir.join("cli.sig");
    let cert_file = dir.join("cli.crt");
    let cli = rp_api(&[
        "sign",
        "--document",
        &doc,
        "--file",
        contract.to_str().unwrap(),
        "--hash",
        "SHA3-512",
        "--signature-out",
        sig_file.to_str().unwrap(),
        "--cert-out",
        cert_file.to_str().unwrap(),
    ]);
    let mut pending_sign = None;
    for _ in 0..100 {
        pending_sign = dev::list_pending(&client, &state).await.unwrap().pop();
        if pending_sign.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let t = pending_sign.expect("the rp-api signature never reached the phone");
    dev::confirm(&client, &mut state, &t, &Pin::new("12345").unwrap(), None)
        .await
        .unwrap();
    let out = cli.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("signature: OK (RSASSA-PSS SHA3-512 over our digest)"),
        "{stdout}"
    );
    let (ok, log) = openssl(
        dir,
        &[
            "x509",
            "-in",
            "cli.crt",
            "-noout",
            "-pubkey",
            "-out",
            "cli.pub.pem",
        ],
    );
    assert!(ok, "{log}");
    let pss = Padding::Pss {
        mgf1: "sha3-512",
        salt: 64,
    };
    let signature = std::fs::read(&sig_file).unwrap();
    let data = std::fs::read(&contract).unwrap();
    let key = dir.join("cli.pub.pem");
    assert!(openssl_verifies(
        dir, &key, "sha3-512", pss, &data, &signature
    ));
    assert!(!openssl_verifies(
        dir, &key, "sha512", pss, &data, &signature
    ));
    let out = rp_api(&[
        "sign",
        "--document",
        &doc,
        "--file",
        contract.to_str().unwrap(),
        "--hash",
        "SHA3-256",
        "--pkcs1",
    ])
    .wait_with_output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--pkcs1 needs a SHA-2 hash, not SHA3-256"),
        "{stderr}"
    );

    // PKCS#1 v1.5 with SHA-3 is not expressible in the RP API v3: a SHA-3 hashAlgorithm beside
    // a PKCS#1 v1.5 name is refused and starts no session.
    let before = server
        .operator(&["audit"])
        .unwrap()
        .matches("transaction_started")
        .count();
    for (alg, h) in [
        ("sha256WithRSAEncryption", HashAlgorithm::Sha3_256),
        ("sha384WithRSAEncryption", HashAlgorithm::Sha3_384),
        ("sha512WithRSAEncryption", HashAlgorithm::Sha3_512),
    ] {
        let body = json!({
            "relyingPartyUUID": RP_UUID,
            "relyingPartyName": RP_NAME,
            "signatureProtocol": "RAW_DIGEST_SIGNATURE",
            "signatureProtocolParameters": {
                "digest": STANDARD.encode(hash(h, b"x").unwrap()),
                "signatureAlgorithm": alg,
                "signatureAlgorithmParameters": {"hashAlgorithm": h.as_str()}
            },
            "interactions": b64_json(SIGN_WITH_PIN)
        });
        let (s, b) = rest(
            &server,
            "POST",
            &format!("/v3/signature/notification/document/{doc}"),
            &body.to_string(),
        )
        .unwrap();
        assert_eq!(s, 400, "{alg} with {}: {b}", h.as_str());
        assert_eq!(
            b["errors"][0]["pointer"],
            json!("/signatureProtocolParameters/signatureAlgorithmParameters/hashAlgorithm"),
            "{b}"
        );
    }
    assert_eq!(
        server
            .operator(&["audit"])
            .unwrap()
            .matches("transaction_started")
            .count(),
        before
    );

    // ... and is signed through the gRPC relying-party API (PKCS#1 v1.5 DigestInfo with the
    // SHA-3 OIDs), checked by OpenSSL.
    let mut grpc = server.rp().await.unwrap();
    for h in SHA3 {
        let md = openssl_md(h);
        let document = format!("contract signed with PKCS#1 v1.5 and {}", h.as_str());
        let started = grpc
            .start_signature(pb::StartTransactionRequest {
                relying_party_name: "Test Bank".into(),
                target: Some(pb::start_transaction_request::Target::DocumentNumber(
                    doc.clone(),
                )),
                hash: pb_hash(h) as i32,
                digest: hash(h, document.as_bytes()).unwrap(),
                scheme: pb::SignatureScheme::Pkcs1V15 as i32,
                display_text: format!("Sign with {}", h.as_str()),
                vc_choice: false,
                timeout_seconds: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let id = started.transaction_id;
        let t = pending(&client, &state, &id).await.unwrap();
        assert_eq!(
            t.signing_request.as_ref().unwrap().hash,
            pb_hash(h) as i32,
            "the phone is asked for {md}"
        );
        dev::confirm(&client, &mut state, &t, &Pin::new("12345").unwrap(), None)
            .await
            .unwrap();
        let st = status(&mut grpc, &id).await.unwrap();
        assert_eq!(st.end_result, pb::EndResult::Ok as i32, "{st:?}");
        assert_eq!(st.hash, pb_hash(h) as i32);
        let kp = st.key_pair.unwrap();
        std::fs::write(dir.join("grpc-sign.der"), &kp.public_key_der).unwrap();
        let (ok, out) = openssl(
            dir,
            &[
                "pkey",
                "-pubin",
                "-inform",
                "DER",
                "-in",
                "grpc-sign.der",
                "-out",
                "grpc-sign.pem",
            ],
        );
        assert!(ok, "{out}");
        let key = dir.join("grpc-sign.pem");
        assert!(
            openssl_verifies(
                dir,
                &key,
                md,
                Padding::Pkcs1,
                document.as_bytes(),
                &st.signature
            ),
            "openssl rejects PKCS#1 v1.5 with {md}"
        );
        // The DigestInfo names SHA-3: the same digest bytes do not verify as another hash.
        assert!(!openssl_verifies(
            dir,
            &key,
            "sha256",
            Padding::Pkcs1,
            document.as_bytes(),
            &st.signature
        ));
        assert!(!openssl_verifies(
            dir,
            &key,
            md,
            Padding::Pkcs1,
            b"another contract",
            &st.signature
        ));
    }
    server.assert_audit_intact();
}
