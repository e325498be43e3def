//! The report's texts in German and English, written in our own words with the meaning of
//! the beA "Prüfprotokoll" (seeds/bea-verification-report.de.txt).

use serde::{Deserialize, Serialize};

use super::model::{
    ProofOfOrigin, SignatureLevel, SigningTime, SigningTimeSource, TransmissionPath,
};
use super::rules::SignatureOutcome;
use super::status::{Colour, SubIndication};

/// The language of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// German.
    #[default]
    De,
    /// English.
    En,
}

impl Lang {
    /// The BCP 47 tag (`de`, `en`) for the HTML `lang` attribute.
    pub fn tag(self) -> &'static str {
        match self {
            Self::De => "de",
            Self::En => "en",
        }
    }

    fn pick(self, de: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::De => de,
            Self::En => en,
        }
    }
}

/// The sentence about the signatures (the first row of the seed's summary table).
pub fn signatures_note(outcome: SignatureOutcome, lang: Lang) -> &'static str {
    match outcome {
        SignatureOutcome::AllValid => lang.pick(
            "Jede vorhandene Signatur wurde erfolgreich geprüft und ist gültig.",
            "Every signature present was checked successfully and is valid.",
        ),
        SignatureOutcome::SomeIndeterminate => lang.pick(
            "Mindestens eine Signatur ließ sich zum Zeitpunkt der Prüfung nicht abschließend prüfen.",
            "At least one signature could not be fully checked at the time of the check.",
        ),
        SignatureOutcome::SomeInvalid => lang.pick(
            "Mindestens eine Signatur ist ungültig.",
            "At least one signature is invalid.",
        ),
    }
}

/// The sentence about an effective submission on `path` (the other rows of the table).
pub fn submission_note(outcome: SignatureOutcome, path: TransmissionPath, lang: Lang) -> String {
    match (path, outcome) {
        (TransmissionPath::Secure, _) => secure_path_note(outcome, lang).to_owned(),
        (TransmissionPath::NotSecure, SignatureOutcome::AllValid) => {
            qualified_requirement(outcome, lang).to_owned()
        }
        (TransmissionPath::NotSecure, _) => format!(
            "{} {}",
            lang.pick(
                "Die Nachricht kam nicht über einen sicheren Übermittlungsweg.",
                "The message did not come over a secure transmission path.",
            ),
            qualified_requirement(outcome, lang)
        ),
        (TransmissionPath::NotConfirmed, _) => format!(
            "{} {}",
            lang.pick(
                "Der sichere Übermittlungsweg ließ sich zum Zeitpunkt der Prüfung nicht \
                 bestätigen; bis eine spätere Prüfung ihn bestätigt, ist die Nachricht wie \
                 eine ohne sicheren Übermittlungsweg zu behandeln.",
                "The secure transmission path could not be confirmed at the time of the \
                 check; until a later check confirms it, treat the message as not sent over \
                 one.",
            ),
            qualified_requirement(outcome, lang)
        ),
    }
}

fn secure_path_note(outcome: SignatureOutcome, lang: Lang) -> &'static str {
    match outcome {
        SignatureOutcome::AllValid => lang.pick(
            "Die Nachricht kam über einen sicheren Übermittlungsweg; die Schriftsätze müssen \
             deshalb nicht qualifiziert elektronisch signiert sein.",
            "The message came over a secure transmission path, so the main documents need no \
             qualified electronic signature.",
        ),
        SignatureOutcome::SomeIndeterminate => lang.pick(
            "Die Nachricht kam über einen sicheren Übermittlungsweg: Die Einreichung ist trotz \
             der offenen Signaturprüfung wirksam, wenn jeder Schriftsatz den Namen der \
             verantwortenden Person (Inhaberin oder Inhaber des Kontos) als einfache \
             elektronische Signatur trägt.",
            "The message came over a secure transmission path: the submission is effective \
             despite the open signature check if every main document bears the name of the \
             responsible person (the account holder) as a simple electronic signature.",
        ),
        SignatureOutcome::SomeInvalid => lang.pick(
            "Die Nachricht kam über einen sicheren Übermittlungsweg: Die Einreichung ist trotz \
             der ungültigen Signatur wirksam, wenn jeder Schriftsatz den Namen der \
             verantwortenden Person (Inhaberin oder Inhaber des Kontos) als einfache \
             elektronische Signatur trägt.",
            "The message came over a secure transmission path: the submission is effective \
             despite the invalid signature if every main document bears the name of the \
             responsible person (the account holder) as a simple electronic signature.",
        ),
    }
}

/// What makes the submission effective without a secure transmission path.
fn qualified_requirement(outcome: SignatureOutcome, lang: Lang) -> &'static str {
    match outcome {
        SignatureOutcome::AllValid => lang.pick(
            "Die Einreichung ist wirksam, wenn jeder Schriftsatz eine qualifizierte \
             elektronische Signatur der verantwortenden Person unter ihrem Namen trägt.",
            "The submission is effective if every main document bears a qualified electronic \
             signature of the responsible person in their own name.",
        ),
        SignatureOutcome::SomeIndeterminate | SignatureOutcome::SomeInvalid => lang.pick(
            "Wirksam eingereicht ist die Nachricht nur, wenn jeder Schriftsatz eine gültige \
             qualifizierte elektronische Signatur der verantwortenden Person trägt.",
            "The submission is only effective if every main document bears a valid qualified \
             electronic signature of the responsible person.",
        ),
    }
}

/// The message of part 2 for a proof of origin: what the reader should conclude.
pub fn proof_message(proof: &ProofOfOrigin, lang: Lang) -> &'static str {
    match proof {
        ProofOfOrigin::Checked { status, .. } => match status.colour() {
            Colour::Green => lang.pick(
                "Sicherer Übermittlungsweg: Tandem hat die Absenderin oder den Absender \
                 authentisiert und die Herkunft der Nachricht bestätigt.",
                "Secure transmission path: Tandem authenticated the sender and confirmed \
                 where the message came from.",
            ),
            Colour::Yellow => lang.pick(
                "Ob die Nachricht über einen sicheren Übermittlungsweg kam, ließ sich zum \
                 Zeitpunkt der Prüfung nicht feststellen.",
                "Whether the message came over a secure transmission path could not be \
                 established at the time of the check.",
            ),
            Colour::Red => lang.pick(
                "Kein sicherer Übermittlungsweg: Die Prüfung des Herkunftsnachweises ergab \
                 „ungültig“.",
                "No secure transmission path: checking the proof of origin gave \"invalid\".",
            ),
        },
        ProofOfOrigin::Absent | ProofOfOrigin::UnknownCa { .. } | ProofOfOrigin::Malformed => lang
            .pick(
                "Achtung: Die Absenderin oder der Absender dieser Nachricht ist nicht \
                 identifiziert.",
                "Warning: the sender of this message is not identified.",
            ),
    }
}

/// Why there is no usable proof of origin, for the cases that have no signature check.
pub fn proof_detail(proof: &ProofOfOrigin, lang: Lang) -> Option<&'static str> {
    match proof {
        ProofOfOrigin::Absent => Some(lang.pick(
            "Die Nachricht enthält keinen Herkunftsnachweis.",
            "The message carries no proof of origin.",
        )),
        ProofOfOrigin::UnknownCa { .. } => Some(lang.pick(
            "Der Herkunftsnachweis stammt von einer unbekannten Zertifizierungsstelle; \
             eine Prüfung ist nicht möglich.",
            "The proof of origin comes from an unknown certification authority; it cannot \
             be checked.",
        )),
        ProofOfOrigin::Malformed => Some(lang.pick(
            "Der Herkunftsnachweis hat nicht das erwartete Format; eine Prüfung ist nicht \
             möglich.",
            "The proof of origin is not in the expected format; it cannot be checked.",
        )),
        ProofOfOrigin::Checked { .. } => None,
    }
}

/// A remark under the summary when valid signatures are not all qualified, or when no
/// document is signed at all.
pub fn level_remark(any_signature: bool, all_qualified: bool, lang: Lang) -> Option<&'static str> {
    if !any_signature {
        Some(lang.pick(
            "Keines der Dokumente ist signiert.",
            "None of the documents is signed.",
        ))
    } else if !all_qualified {
        Some(lang.pick(
            "Nicht jede Signatur ist eine qualifizierte elektronische Signatur.",
            "Not every signature is a qualified electronic signature.",
        ))
    } else {
        None
    }
}

/// The plain-language meaning of a sub-indication.
pub fn explain(sub: SubIndication, lang: Lang) -> &'static str {
    use SubIndication as S;
    match sub {
        S::FormatFailure => lang.pick(
            "Die Signatur hat nicht das erwartete Format.",
            "The signature is not in the expected format.",
        ),
        S::HashFailure => lang.pick(
            "Das Dokument wurde nach dem Signieren verändert.",
            "The document was changed after it was signed.",
        ),
        S::SigCryptoFailure => lang.pick(
            "Der Signaturwert passt nicht zum Zertifikat der signierenden Person.",
            "The signature value does not match the signer's certificate.",
        ),
        S::Revoked => lang.pick(
            "Das Zertifikat war zum Signaturzeitpunkt bereits gesperrt.",
            "The certificate had already been revoked when the signature was made.",
        ),
        S::SigConstraintsFailure => lang.pick(
            "Die Signatur erfüllt eine Anforderung der Prüfrichtlinie nicht.",
            "The signature does not meet a requirement of the validation policy.",
        ),
        S::ChainConstraintsFailure => lang.pick(
            "Die Zertifikatskette erfüllt eine Anforderung der Prüfrichtlinie nicht.",
            "The certificate chain does not meet a requirement of the validation policy.",
        ),
        S::CertificateChainGeneralFailure => lang.pick(
            "Die Zertifikatskette ließ sich nicht prüfen.",
            "The certificate chain could not be validated.",
        ),
        S::CryptoConstraintsFailure => lang.pick(
            "Ein verwendetes Verfahren oder eine Schlüssellänge gilt nicht mehr als sicher.",
            "An algorithm or key size used is no longer considered secure.",
        ),
        S::Expired => lang.pick(
            "Das Zertifikat war zum Signaturzeitpunkt abgelaufen.",
            "The certificate had expired when the signature was made.",
        ),
        S::NotYetValid => lang.pick(
            "Das Zertifikat war zum Signaturzeitpunkt noch nicht gültig.",
            "The certificate was not yet valid when the signature was made.",
        ),
        S::PolicyProcessingError => lang.pick(
            "Die Signaturrichtlinie ließ sich nicht verarbeiten.",
            "The signature policy could not be processed.",
        ),
        S::SignaturePolicyNotAvailable => lang.pick(
            "Die genannte Signaturrichtlinie ist nicht verfügbar.",
            "The signature policy named is not available.",
        ),
        S::TimestampOrderFailure => lang.pick(
            "Die Zeitstempel stehen nicht in der richtigen Reihenfolge.",
            "The time-stamps are not in the right order.",
        ),
        S::NoSigningCertificateFound => lang.pick(
            "Das Zertifikat der signierenden Person ließ sich nicht ermitteln.",
            "The signer's certificate could not be identified.",
        ),
        S::NoCertificateChainFound => lang.pick(
            "Das Zertifikat führt zu keiner vertrauenswürdigen Zertifizierungsstelle.",
            "The certificate does not lead to a trusted certification authority.",
        ),
        S::RevokedNoPoe => lang.pick(
            "Das Zertifikat ist gesperrt, und nichts belegt, dass die Signatur vor der \
             Sperrung entstand.",
            "The certificate is revoked and nothing proves the signature was made before.",
        ),
        S::RevokedCaNoPoe => lang.pick(
            "Ein Zertifikat der Kette ist gesperrt, und nichts belegt, dass die Signatur \
             vorher entstand.",
            "A certificate in the chain is revoked and nothing proves the signature was made \
             before.",
        ),
        S::OutOfBoundsNoPoe => lang.pick(
            "Das Zertifikat ist abgelaufen, und nichts belegt, dass die Signatur während \
             seiner Gültigkeit entstand.",
            "The certificate has expired and nothing proves the signature was made while it \
             was valid.",
        ),
        S::OutOfBoundsNotRevoked => lang.pick(
            "Das Zertifikat ist abgelaufen, war aber während seiner Gültigkeit nicht gesperrt.",
            "The certificate has expired but was not revoked while it was valid.",
        ),
        S::CryptoConstraintsFailureNoPoe => lang.pick(
            "Ein Verfahren gilt nicht mehr als sicher, und nichts belegt, dass die Signatur \
             vorher entstand.",
            "An algorithm is no longer considered secure and nothing proves the signature was \
             made before.",
        ),
        S::NoPoe => lang.pick(
            "Es fehlt ein Nachweis, wann die Signatur entstand (z.B. liegt der angegebene \
             Signaturzeitpunkt in der Zukunft).",
            "Proof of when the signature was made is missing (e.g. the claimed signing time \
             lies in the future).",
        ),
        S::TryLater => lang.pick(
            "Der Sperrstatus ließ sich zurzeit nicht abfragen; bitte später erneut prüfen.",
            "The revocation status could not be fetched now; please check again later.",
        ),
        S::SignedDataNotFound => lang.pick(
            "Die signierten Daten wurden nicht gefunden.",
            "The signed data could not be found.",
        ),
    }
}

/// The fixed words of a report: headings, column titles, labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Label {
    /// The page title.
    Title,
    /// Part 1.
    HeaderSection,
    /// Part 2.
    ProofSection,
    /// Part 3.
    DocumentsSection,
    /// "Issued by".
    IssuingSystem,
    /// "Created".
    CreatedAt,
    /// Sender's reference.
    SenderReference,
    /// Recipient's reference.
    RecipientReference,
    /// Message id.
    MessageId,
    /// Sender.
    Sender,
    /// Recipient.
    Recipient,
    /// Identifier of a party.
    Identifier,
    /// CA of the proof.
    ProofCa,
    /// Result of the proof's signature check.
    ProofCheck,
    /// Secure transmission path.
    SecurePath,
    /// Column: document.
    ColDocument,
    /// Column: signature.
    ColSignature,
    /// Column: properties.
    ColProperties,
    /// Column: result.
    ColResult,
    /// Main document.
    MainDocument,
    /// Attachment.
    Attachment,
    /// Not signed.
    NotSigned,
    /// Unknown (a value that is absent).
    Unknown,
    /// Checked at.
    CheckedAt,
    /// Yes.
    Yes,
    /// No.
    No,
    /// Not confirmed.
    NotConfirmed,
    /// No check possible.
    NoCheck,
    /// Claimed signing time.
    Claimed,
    /// Signing time from a time-stamp.
    TimeStamp,
    /// Note at the foot of the page.
    Legend,
}

impl Label {
    /// The label in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        use Label as L;
        let (de, en) = match self {
            L::Title => ("Prüfprotokoll", "Verification report"),
            L::HeaderSection => ("1. Dokumentenkopf", "1. Header"),
            L::ProofSection => (
                "2. Herkunftsnachweis und Übermittlungsweg",
                "2. Proof of origin and transmission path",
            ),
            L::DocumentsSection => ("3. Prüfung der Dokumente", "3. Documents checked"),
            L::IssuingSystem => ("Ausgestellt von", "Issued by"),
            L::CreatedAt => ("Erstellt am", "Created"),
            L::SenderReference => ("Aktenzeichen Absender", "Sender's reference"),
            L::RecipientReference => ("Aktenzeichen Empfänger", "Recipient's reference"),
            L::MessageId => ("Nachrichten-ID", "Message id"),
            L::Sender => ("Absender", "Sender"),
            L::Recipient => ("Empfänger", "Recipient"),
            L::Identifier => ("Kennung", "Identifier"),
            L::ProofCa => ("Zertifizierungsstelle des Nachweises", "CA of the proof"),
            L::ProofCheck => (
                "Prüfung der Signatur des Nachweises",
                "Check of the proof's signature",
            ),
            L::SecurePath => ("Sicherer Übermittlungsweg", "Secure transmission path"),
            L::ColDocument => ("Dokument", "Document"),
            L::ColSignature => ("Signatur", "Signature"),
            L::ColProperties => ("Eigenschaften", "Properties"),
            L::ColResult => ("Prüfergebnis", "Result"),
            L::MainDocument => ("Schriftsatz", "Main document"),
            L::Attachment => ("Anlage", "Attachment"),
            L::NotSigned => ("Nicht signiert", "Not signed"),
            L::Unknown => ("unbekannt", "unknown"),
            L::CheckedAt => ("Geprüft am", "Checked"),
            L::Yes => ("Ja", "Yes"),
            L::No => ("Nein", "No"),
            L::NotConfirmed => ("Nicht bestätigt", "Not confirmed"),
            L::NoCheck => ("Keine Prüfung möglich", "No check possible"),
            L::Claimed => ("angegeben", "claimed"),
            L::TimeStamp => ("Zeitstempel", "time-stamp"),
            L::Legend => (
                "Grün: erfolgreich geprüft. Gelb: Ergebnis unbestimmt (z.B. Sperrdienst nicht \
                 erreichbar). Rot: Prüfung fehlgeschlagen.",
                "Green: checked successfully. Yellow: result undetermined (e.g. the revocation \
                 service could not be reached). Red: the check failed.",
            ),
        };
        lang.pick(de, en)
    }
}

/// The page number at the foot of a printed report: `Seite 2 von 3`, `Page 2 of 3`.
pub fn page_of(page: usize, pages: usize, lang: Lang) -> String {
    match lang {
        Lang::De => format!("Seite {page} von {pages}"),
        Lang::En => format!("Page {page} of {pages}"),
    }
}

/// The word for a colour, shown next to every icon so the result reads without colour.
pub fn colour_label(colour: Colour, lang: Lang) -> &'static str {
    match colour {
        Colour::Green => lang.pick("Gültig", "Valid"),
        Colour::Yellow => lang.pick("Unbestimmt", "Indeterminate"),
        Colour::Red => lang.pick("Ungültig", "Invalid"),
    }
}

/// A signing time with where it comes from, e.g. `07.12.2026 14:03:12 UTC (Zeitstempel)`;
/// "unknown" when there is none.
pub fn signing_time_text(time: Option<&SigningTime>, lang: Lang) -> String {
    match time {
        Some(t) => {
            let source = match t.source {
                SigningTimeSource::Claimed => Label::Claimed,
                SigningTimeSource::TimeStamp => Label::TimeStamp,
            };
            format!("{} ({})", t.time.display(lang), source.text(lang))
        }
        None => Label::Unknown.text(lang).to_owned(),
    }
}

/// The name of a signature level.
pub fn level_name(level: SignatureLevel, lang: Lang) -> &'static str {
    match level {
        SignatureLevel::Qualified => lang.pick(
            "Qualifizierte elektronische Signatur",
            "Qualified electronic signature",
        ),
        SignatureLevel::Advanced => lang.pick(
            "Fortgeschrittene elektronische Signatur",
            "Advanced electronic signature",
        ),
        SignatureLevel::NotDetermined => lang.pick(
            "Signaturniveau nicht ermittelt",
            "Signature level not determined",
        ),
    }
}
