//! Unit tests of the statement's schema and the request checks; the CMS path is tested end
//! to end against a real server in `tests/tests/origin.rs`.

use super::*;

fn doc(name: &str, role: DocumentRole, len: usize) -> StatementDocument {
    StatementDocument {
        name: name.into(),
        role,
        digest_algorithm: match len {
            32 => DigestAlgorithm::Sha256,
            48 => DigestAlgorithm::Sha384,
            _ => DigestAlgorithm::Sha512,
        },
        digest: STANDARD.encode(vec![7u8; len]),
    }
}

fn statement() -> OriginStatement {
    OriginStatement {
        version: 1,
        message_id: "m-1".into(),
        issued_at: "2026-12-07T14:00:00Z".parse().unwrap(),
        issuer: "Tandem".into(),
        relying_party: StatementRelyingParty {
            uuid: "00000000-0000-4000-8000-000000000000".into(),
            name: "DEMO".into(),
        },
        sender: Sender {
            name: "Mari-Liis Männik".into(),
            identifier: "PNOEE-30303039914".into(),
            authenticated_at: "2026-12-07T13:59:00Z".parse().unwrap(),
            auth_session_id: "11111111-1111-4111-8111-111111111111".into(),
        },
        recipient: Party {
            name: "Amtsgericht".into(),
            identifier: "DE.Justiz.1".into(),
        },
        sender_reference: Some("AZ 1/26".into()),
        recipient_reference: None,
        documents: vec![
            doc("Schriftsatz.pdf", DocumentRole::MainDocument, 32),
            doc("Anlage.pdf", DocumentRole::Attachment, 64),
        ],
    }
}

#[test]
fn statement_round_trips_in_camel_case() {
    let s = statement();
    let json = s.to_json();
    let text = std::str::from_utf8(&json).unwrap();
    for key in [
        "\"version\":1",
        "\"messageId\"",
        "\"issuedAt\":\"2026-12-07T14:00:00Z\"",
        "\"relyingParty\"",
        "\"authenticatedAt\"",
        "\"authSessionId\"",
        "\"senderReference\"",
        "\"role\":\"mainDocument\"",
        "\"digestAlgorithm\":\"SHA-512\"",
    ] {
        assert!(text.contains(key), "{key} missing in {text}");
    }
    assert!(!text.contains("recipientReference"));
    assert_eq!(OriginStatement::from_json(&json).unwrap(), s);
}

#[test]
fn statement_refuses_other_versions_and_unknown_fields() {
    let mut v: serde_json::Value = serde_json::from_slice(&statement().to_json()).unwrap();
    v["version"] = 2.into();
    assert!(OriginStatement::from_json(v.to_string().as_bytes()).is_err());
    v["version"] = 1.into();
    v["extra"] = true.into();
    assert!(OriginStatement::from_json(v.to_string().as_bytes()).is_err());
    assert!(OriginStatement::from_json(b"not json").is_err());
}

#[test]
fn document_lists_are_checked() {
    let main = || doc("a.pdf", DocumentRole::MainDocument, 32);
    assert!(validate_documents(&[main()]).is_ok());
    assert!(validate_documents(&[]).unwrap_err().contains("1 to"));
    let two_mains = [main(), doc("b.pdf", DocumentRole::MainDocument, 32)];
    assert!(
        validate_documents(&two_mains)
            .unwrap_err()
            .contains("exactly one")
    );
    let no_main = [doc("b.pdf", DocumentRole::Attachment, 32)];
    assert!(validate_documents(&no_main).is_err());
    let dup = [main(), doc("A.PDF", DocumentRole::Attachment, 32)];
    assert!(validate_documents(&dup).unwrap_err().contains("twice"));
    for bad in ["../x", "dir/x", "", "a\u{7}"] {
        let mut d = main();
        d.name = bad.into();
        assert!(validate_documents(&[d]).is_err(), "{bad:?}");
    }
    let mut short = main();
    short.digest = STANDARD.encode([1u8; 31]);
    assert!(validate_documents(&[short]).unwrap_err().contains("digest"));
    let mut not_b64 = main();
    not_b64.digest = "***".into();
    assert!(validate_documents(&[not_b64]).is_err());
    let many: Vec<_> = (0..=MAX_DOCUMENTS)
        .map(|i| {
            doc(
                &format!("{i}.pdf"),
                if i == 0 {
                    DocumentRole::MainDocument
                } else {
                    DocumentRole::Attachment
                },
                32,
            )
        })
        .collect();
    assert!(validate_documents(&many).is_err());
}

#[test]
fn request_fields_are_bounded() {
    let mut r = ProofOfOriginRequest {
        relying_party_uuid: "00000000-0000-4000-8000-000000000000".into(),
        relying_party_name: "DEMO".into(),
        auth_session_id: "11111111-1111-4111-8111-111111111111".into(),
        recipient: Party {
            name: "Court".into(),
            identifier: "X".into(),
        },
        sender_reference: None,
        recipient_reference: None,
        message_id: None,
        documents: vec![doc("a.pdf", DocumentRole::MainDocument, 32)],
    };
    assert!(r.validate().is_ok());
    r.message_id = Some("x".repeat(MAX_TEXT_CHARS + 1));
    assert!(r.validate().unwrap_err().starts_with("messageId"));
    r.message_id = None;
    r.recipient.name = " padded".into();
    assert!(r.validate().unwrap_err().starts_with("recipient.name"));
    r.recipient.name = "Court".into();
    r.auth_session_id = "nope".into();
    assert!(r.validate().unwrap_err().starts_with("authSessionId"));
    let json = serde_json::json!({"relyingPartyUUID": "u", "relyingPartyName": "n",
        "authSessionId": "s", "recipient": {"name": "a", "identifier": "b"},
        "documents": [], "unknown": 1});
    assert!(serde_json::from_value::<ProofOfOriginRequest>(json).is_err());
}

#[test]
fn verify_proof_refuses_garbage_without_panicking() {
    let anchors = TrustAnchors::new();
    for input in [
        &b""[..],
        b"\x30\x03\x02\x01\x01",
        b"garbage",
        &[0x30, 0x80, 0, 0],
    ] {
        assert!(matches!(
            verify_proof(input, &anchors, SystemTime::now()),
            Err(ProofError::Malformed(_))
        ));
    }
}

#[test]
fn documents_are_compared_by_name_role_and_digest() {
    let s = statement();
    let docs = || {
        vec![
            DocumentDigest {
                name: "Anlage.pdf".into(),
                role: Role::Attachment,
                hash: DocumentHash::Sha512,
                digest: vec![7; 64],
            },
            DocumentDigest {
                name: "Schriftsatz.pdf".into(),
                role: Role::Main,
                hash: DocumentHash::Sha256,
                digest: vec![7; 32],
            },
        ]
    };
    assert!(check_document_digests(&s, &docs()).is_ok());
    let mut d = docs();
    d[1].digest[0] ^= 1;
    assert!(matches!(
        check_document_digests(&s, &d),
        Err(ProofError::DocumentMismatch(m)) if m.contains("digest")
    ));
    let mut d = docs();
    d[0].role = Role::Main;
    assert!(check_document_digests(&s, &d).is_err());
    let mut d = docs();
    d.pop();
    assert!(check_document_digests(&s, &d).is_err());
}
