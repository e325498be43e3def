//! Tests of the report's rules, texts, JSON and HTML.

use super::*;
use crate::report::texts::{proof_message, submission_note};

fn t(s: &str) -> UtcTime {
    s.parse().unwrap()
}

fn sig(name: &str, status: SignatureStatus, level: SignatureLevel) -> SignatureResult {
    SignatureResult {
        signer_name: Some(name.to_owned()),
        signing_time: Some(SigningTime {
            time: t("2026-12-07T09:15:00Z"),
            source: SigningTimeSource::Claimed,
        }),
        level,
        format: "CAdES-B-B".parse().unwrap(),
        status,
        checked_at: t("2026-12-07T14:00:00Z"),
    }
}

fn green() -> SignatureStatus {
    SignatureStatus::PASSED
}
fn yellow() -> SignatureStatus {
    SignatureStatus::indeterminate(SubIndication::TryLater).unwrap()
}
fn red() -> SignatureStatus {
    SignatureStatus::failed(SubIndication::HashFailure).unwrap()
}

fn valid_proof() -> ProofOfOrigin {
    ProofOfOrigin::Checked {
        ca: "Tandem Proof of Origin CA".into(),
        status: green(),
    }
}

/// The example of the docs: a main document and two attachments, green, yellow, red.
pub(crate) fn example() -> VerificationReport {
    let mut main = sig("Mari-Liis Männik", green(), SignatureLevel::Qualified);
    main.format = "PAdES-B-T".parse().unwrap();
    main.signing_time = Some(SigningTime {
        time: t("2026-12-07T09:14:12Z"),
        source: SigningTimeSource::TimeStamp,
    });
    VerificationReport {
        version: ReportVersion,
        header: ReportHeader {
            issuing_system: "Tandem 0.1.0".into(),
            created_at: t("2026-12-07T14:00:05Z"),
            message: Some(MessageData {
                sender_reference: Some("2026/0815-MM".into()),
                recipient_reference: Some("3 O 123/26".into()),
                message_id: "a3f1c2de-5b7a-4e0f-9c61-2d4b8e9f0a17".into(),
            }),
            sender: Some(Party {
                name: "Mari-Liis Männik".into(),
                identifier: "PNOEE-30303039914".into(),
            }),
            recipient: Some(Party {
                name: "Landgericht Musterstadt".into(),
                identifier: "PNODE-LG-MUSTER".into(),
            }),
        },
        proof_of_origin: valid_proof(),
        documents: vec![
            Document {
                name: "Klageschrift.pdf".into(),
                role: DocumentRole::MainDocument,
                signatures: vec![main],
            },
            Document {
                name: "Anlage K1 Vertrag.pdf".into(),
                role: DocumentRole::Attachment,
                signatures: vec![sig("Mari-Liis Männik", yellow(), SignatureLevel::Qualified)],
            },
            Document {
                name: "Anlage K2 Rechnung.pdf".into(),
                role: DocumentRole::Attachment,
                signatures: vec![sig("Mari-Liis Männik", red(), SignatureLevel::Advanced)],
            },
        ],
    }
}

fn report_with(colours: &[SignatureStatus], proof: ProofOfOrigin) -> VerificationReport {
    let mut r = example();
    r.proof_of_origin = proof;
    r.documents = colours
        .iter()
        .map(|s| Document {
            name: "doc.pdf".into(),
            role: DocumentRole::Attachment,
            signatures: vec![sig("A", *s, SignatureLevel::Qualified)],
        })
        .collect();
    r
}

#[test]
fn status_pairs_follow_etsi() {
    assert!(SignatureStatus::new(Indication::TotalPassed, Some(SubIndication::TryLater)).is_err());
    assert!(SignatureStatus::new(Indication::TotalFailed, None).is_err());
    assert!(SignatureStatus::failed(SubIndication::TryLater).is_err());
    assert!(SignatureStatus::indeterminate(SubIndication::HashFailure).is_err());
    assert!(SignatureStatus::failed(SubIndication::Revoked).is_ok());
    assert!(SignatureStatus::indeterminate(SubIndication::FormatFailure).is_ok());
    assert!(SignatureStatus::failed(SubIndication::FormatFailure).is_ok());
    assert_eq!(red().colour(), Colour::Red);
    assert_eq!(yellow().colour(), Colour::Yellow);
    assert_eq!(green().colour(), Colour::Green);
}

/// Every cell of the summary table, both languages: the chosen texts differ where the
/// seed's table differs, and the report picks the cell from its signatures and proof.
#[test]
fn summary_table_every_cell() {
    let yellow_proof = ProofOfOrigin::Checked {
        ca: "X".into(),
        status: yellow(),
    };
    let cases = [
        (vec![green(), green()], SignatureOutcome::AllValid),
        (vec![green(), yellow()], SignatureOutcome::SomeIndeterminate),
        (
            vec![yellow(), red(), green()],
            SignatureOutcome::SomeInvalid,
        ),
    ];
    let proofs = [
        (valid_proof(), TransmissionPath::Secure),
        (yellow_proof, TransmissionPath::NotConfirmed),
        (ProofOfOrigin::Absent, TransmissionPath::NotSecure),
    ];
    for lang in [Lang::De, Lang::En] {
        let mut seen = std::collections::HashSet::new();
        for (statuses, outcome) in &cases {
            for (proof, path) in &proofs {
                let report = report_with(statuses, proof.clone());
                let note = report.summary_note(lang);
                assert_eq!((note.outcome, note.path), (*outcome, *path));
                assert_eq!(note.submission, submission_note(*outcome, *path, lang));
                seen.insert(note.submission.clone());
                let key = match (lang, outcome) {
                    (Lang::De, SignatureOutcome::AllValid) => "gültig",
                    (Lang::De, SignatureOutcome::SomeIndeterminate) => "nicht abschließend",
                    (Lang::De, SignatureOutcome::SomeInvalid) => "ungültig",
                    (Lang::En, SignatureOutcome::AllValid) => "is valid",
                    (Lang::En, SignatureOutcome::SomeIndeterminate) => "could not be fully",
                    (Lang::En, SignatureOutcome::SomeInvalid) => "is invalid",
                };
                assert!(
                    note.signatures.contains(key),
                    "{lang:?} {outcome:?}: {}",
                    note.signatures
                );
                let secure = match lang {
                    Lang::De => "kam über einen sicheren",
                    Lang::En => "came over a secure",
                };
                assert_eq!(
                    note.submission.contains(secure),
                    *path == TransmissionPath::Secure
                );
                let qualified_needed = match lang {
                    Lang::De => "qualifizierte elektronische Signatur der verantwortenden",
                    Lang::En => "qualified electronic signature of the responsible",
                };
                let later = match lang {
                    Lang::De => "spätere Prüfung",
                    Lang::En => "later check",
                };
                assert_eq!(
                    note.submission.contains(later),
                    *path == TransmissionPath::NotConfirmed
                );
                assert_eq!(
                    note.submission.contains(qualified_needed),
                    *path != TransmissionPath::Secure,
                    "{lang:?} {outcome:?} {path:?}"
                );
            }
        }
        // Secure × {indeterminate, invalid} differ in wording only; the no-path cells for
        // indeterminate and invalid share one text, as in the seed: 7 distinct per language.
        assert_eq!(seen.len(), 7, "{lang:?}");
    }
}

/// Every proof-of-origin case the seed distinguishes for our service, both languages.
#[test]
fn proof_of_origin_cases() {
    let cases = [
        (
            valid_proof(),
            TransmissionPath::Secure,
            "Sicherer Übermittlungsweg:",
            "Secure transmission path:",
        ),
        (
            ProofOfOrigin::Checked {
                ca: "X".into(),
                status: yellow(),
            },
            TransmissionPath::NotConfirmed,
            "nicht feststellen",
            "could not be established",
        ),
        (
            ProofOfOrigin::Checked {
                ca: "X".into(),
                status: red(),
            },
            TransmissionPath::NotSecure,
            "„ungültig“",
            "\"invalid\"",
        ),
        (
            ProofOfOrigin::Absent,
            TransmissionPath::NotSecure,
            "nicht identifiziert",
            "not identified",
        ),
        (
            ProofOfOrigin::UnknownCa { ca: None },
            TransmissionPath::NotSecure,
            "nicht identifiziert",
            "not identified",
        ),
        (
            ProofOfOrigin::Malformed,
            TransmissionPath::NotSecure,
            "nicht identifiziert",
            "not identified",
        ),
    ];
    for (proof, path, de, en) in cases {
        assert_eq!(proof.transmission_path(), path, "{proof:?}");
        assert!(proof_message(&proof, Lang::De).contains(de), "{proof:?}");
        assert!(proof_message(&proof, Lang::En).contains(en), "{proof:?}");
        let html = report_with(&[green()], proof.clone()).to_html(Lang::En);
        assert!(html.contains(&html::escape(proof_message(&proof, Lang::En))));
        let details = [Lang::De, Lang::En].map(|l| texts::proof_detail(&proof, l));
        assert_eq!(
            details[0].is_some(),
            matches!(
                proof,
                ProofOfOrigin::Absent | ProofOfOrigin::UnknownCa { .. } | ProofOfOrigin::Malformed
            )
        );
        if details[0].is_some() {
            assert_ne!(details[0], details[1]);
        }
    }
}

#[test]
fn exit_status() {
    assert_eq!(
        report_with(&[green(), green()], valid_proof())
            .exit_status()
            .code(),
        0
    );
    assert_eq!(
        report_with(&[green()], ProofOfOrigin::Absent)
            .exit_status()
            .code(),
        0
    );
    assert_eq!(
        report_with(&[green(), yellow()], valid_proof())
            .exit_status()
            .code(),
        2
    );
    assert_eq!(
        report_with(&[yellow(), red()], valid_proof())
            .exit_status()
            .code(),
        1
    );
    let red_proof = ProofOfOrigin::Checked {
        ca: "X".into(),
        status: red(),
    };
    assert_eq!(report_with(&[green()], red_proof).exit_status().code(), 1);
    let yellow_proof = ProofOfOrigin::Checked {
        ca: "X".into(),
        status: yellow(),
    };
    assert_eq!(
        report_with(&[green()], yellow_proof).exit_status().code(),
        2
    );
    // Nothing checked at all is not "all green".
    assert_eq!(
        report_with(&[], ProofOfOrigin::Absent).exit_status().code(),
        2
    );
    assert_eq!(report_with(&[], valid_proof()).exit_status().code(), 0);
}

#[test]
fn remarks_for_unsigned_and_advanced() {
    let r = report_with(&[], valid_proof());
    assert_eq!(
        r.summary_note(Lang::En).remark.as_deref(),
        Some("None of the documents is signed.")
    );
    assert_eq!(
        report_with(&[green()], valid_proof())
            .summary_note(Lang::De)
            .remark,
        None
    );
    let advanced = example(); // K2 is only advanced
    assert!(
        advanced
            .summary_note(Lang::De)
            .remark
            .unwrap()
            .contains("qualifizierte")
    );
}

#[test]
fn json_round_trip_with_etsi_names() {
    let report = example();
    let json = report.to_json();
    assert!(json.contains("\"indication\": \"TOTAL_FAILED\""), "{json}");
    assert!(json.contains("\"subIndication\": \"HASH_FAILURE\""));
    assert!(json.contains("\"subIndication\": \"TRY_LATER\""));
    assert!(json.contains("\"format\": \"PAdES-B-T\""));
    assert!(json.contains("\"checkedAt\": \"2026-12-07T14:00:00Z\""));
    assert_eq!(VerificationReport::from_json(&json).unwrap(), report);
    for sub in SubIndication::ALL {
        let s = serde_json::to_string(sub).unwrap();
        assert_eq!(s, format!("\"{}\"", sub.etsi_name()));
        assert_eq!(serde_json::from_str::<SubIndication>(&s).unwrap(), *sub);
    }
}

#[test]
fn json_rejects_bad_input() {
    let json = example().to_json();
    for (from, to) in [
        ("\"version\": 1", "\"version\": 2"),
        (
            "\"subIndication\": \"HASH_FAILURE\"",
            "\"subIndication\": \"TRY_AGAIN\"",
        ),
        (
            "\"indication\": \"TOTAL_FAILED\"",
            "\"indication\": \"INDETERMINATE\"",
        ),
        ("\"PAdES-B-T\"", "\"PAdES-B-X\""),
        ("2026-12-07T14:00:00Z", "2026-13-07T14:00:00Z"),
        (
            "\"case\": \"checked\",",
            "\"case\": \"checked\", \"secure\": true,",
        ),
        ("\"case\": \"checked\"", "\"case\": \"trusted\""),
        (
            "\"role\": \"attachment\",",
            "\"role\": \"attachment\", \"size\": 1,",
        ),
    ] {
        assert!(json.contains(from));
        let bad = json.replacen(from, to, 1);
        assert!(VerificationReport::from_json(&bad).is_err(), "{to}");
    }
    assert!(VerificationReport::from_json("").is_err());
    assert!(VerificationReport::from_json("[1,2]").is_err());
}

#[test]
fn html_escapes_attacker_strings_and_is_self_contained() {
    let mut report = example();
    report.documents[0].name = "<script>alert(1)</script>\"'&.pdf".into();
    report.documents[1].signatures[0].signer_name = Some("<img src=x onerror=alert(2)>".into());
    report.header.sender.as_mut().unwrap().name = "</td><script>x</script>".into();
    for lang in [Lang::De, Lang::En] {
        let html = report.to_html(lang);
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;.pdf"));
        assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
        let plain = example().to_html(lang);
        for external in [
            "src=", "href=", "url(", "@import", "http://", "https://", "<script",
        ] {
            assert!(!plain.contains(external), "{external}");
        }
    }
}

#[test]
fn html_has_three_parts_and_labelled_colours() {
    let html = example().to_html(Lang::De);
    for text in [
        "1. Dokumentenkopf",
        "2. Herkunftsnachweis",
        "3. Prüfung der Dokumente",
        "Gültig",
        "Unbestimmt",
        "Ungültig",
        "TOTAL_FAILED / HASH_FAILURE",
        "INDETERMINATE / TRY_LATER",
        "Schriftsatz",
        "Anlage",
        "PAdES-B-T",
        "2026/0815-MM",
        "PNOEE-30303039914",
        "07.12.2026, 09:14:12 UTC (Zeitstempel)",
    ] {
        assert!(html.contains(text), "{text}");
    }
    let en = example().to_html(Lang::En);
    for text in [
        "1. Header",
        "Valid",
        "Indeterminate",
        "Invalid",
        "Main document",
        "Attachment",
    ] {
        assert!(en.contains(text), "{text}");
    }
    if let Some(path) = std::env::var_os("TANDEM_REPORT_EXAMPLE_HTML") {
        std::fs::write(path, en).unwrap();
    }
}
