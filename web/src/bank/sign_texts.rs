//! The texts of the Demo Bank's signing pages, German and English (the pattern of
//! [`crate::i18n`]).

use crate::i18n::Lang;

/// The name of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum S {
    SignHeading,
    SignHelp,
    SignFileLabel,
    SignButton,
    NoTsa,
    WaitHeading,
    WaitVcLabel,
    WaitHelp,
    Waiting,
    SignedHeading,
    SignedHelp,
    DownloadSigned,
    Downloaded,
    FailedHeading,
    TryAgain,
    BackToAccount,
    FailRefused,
    FailTimeout,
    FailWrongVc,
    FailKeyLocked,
    FailTsa,
    FailDocument,
    FailUnreachable,
    FailVerification,
    FailService,
    FailNoDocument,
    NoFile,
}

impl S {
    /// The text in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        let (de, en) = self.both();
        match lang {
            Lang::De => de,
            Lang::En => en,
        }
    }

    fn both(self) -> (&'static str, &'static str) {
        use S::*;
        match self {
            SignHeading => ("Dokument signieren", "Sign a document"),
            SignHelp => (
                "Eine PDF-Datei erhält eine PAdES-Signatur (unsichtbar, in der Datei); jede andere Datei eine CAdES-Signatur als eigene .p7s-Datei. Beide mit Zeitstempel (B-T). Sie bestätigen auf Ihrem Telefon mit PIN2.",
                "A PDF gets a PAdES signature (invisible, inside the file); any other file a CAdES signature as a separate .p7s file. Both with a time stamp (B-T). You confirm on your phone with PIN2.",
            ),
            SignFileLabel => ("Datei", "File"),
            SignButton => ("Signieren", "Sign"),
            NoTsa => (
                "Signieren ist nicht eingerichtet: in der Konfiguration fehlt der Zeitstempeldienst (tsa_url).",
                "Signing is not set up: the configuration names no time-stamp authority (tsa_url).",
            ),
            WaitHeading => ("Auf dem Telefon bestätigen", "Confirm on your phone"),
            WaitVcLabel => ("Kontrollcode", "Verification code"),
            WaitHelp => (
                "Prüfen Sie, dass Ihr Telefon denselben Code zeigt, und bestätigen Sie die Signatur mit PIN2. Diese Seite geht danach von selbst weiter.",
                "Check that your phone shows the same code and confirm the signature with PIN2. This page then moves on by itself.",
            ),
            Waiting => ("Warte auf Ihr Telefon …", "Waiting for your phone …"),
            SignedHeading => ("Dokument signiert", "Document signed"),
            SignedHelp => (
                "Die signierte Datei und ihr Prüfprotokoll (von diesem Dienst geprüft):",
                "The signed file and its verification report (checked by this service):",
            ),
            DownloadSigned => ("Signierte Datei herunterladen", "Download signed file"),
            Downloaded => (
                "Die signierte Datei wurde heruntergeladen und hier gelöscht.",
                "The signed file was downloaded and deleted here.",
            ),
            FailedHeading => ("Nicht signiert", "Not signed"),
            TryAgain => ("Erneut versuchen", "Try again"),
            BackToAccount => ("Zurück zum Konto", "Back to the account"),
            FailRefused => (
                "Die Signatur wurde auf dem Telefon abgelehnt.",
                "The signature was declined on the phone.",
            ),
            FailTimeout => (
                "Die Zeit ist abgelaufen: auf dem Telefon wurde nichts bestätigt.",
                "Time ran out: nothing was confirmed on the phone.",
            ),
            FailWrongVc => (
                "Auf dem Telefon wurde ein falscher Kontrollcode gewählt.",
                "A wrong verification code was chosen on the phone.",
            ),
            FailKeyLocked => (
                "Ihr Signaturschlüssel ist gesperrt oder deaktiviert. Im Portal sehen Sie, bis wann.",
                "Your signing key is locked or disabled. The portal shows until when.",
            ),
            FailTsa => (
                "Der Zeitstempeldienst ist nicht erreichbar; es wurde keine signierte Datei erstellt.",
                "The time-stamp authority cannot be reached; no signed file was made.",
            ),
            FailDocument => (
                "Diese Datei lässt sich so nicht signieren (z. B. eine verschlüsselte oder beschädigte PDF-Datei).",
                "This file cannot be signed as it is (an encrypted or damaged PDF, for example).",
            ),
            FailUnreachable => (
                "Der Tandem-Dienst ist gerade nicht erreichbar. Bitte später erneut versuchen.",
                "The Tandem service cannot be reached right now. Please try again later.",
            ),
            FailVerification => (
                "Die Antwort des Tandem-Dienstes hat die Prüfung nicht bestanden (Signatur oder Zertifikat); die Signatur wurde verworfen.",
                "The Tandem service's answer failed verification (signature or certificate); the signature was discarded.",
            ),
            FailService => (
                "Der Tandem-Dienst konnte die Signatur nicht abschließen.",
                "The Tandem service could not complete the signature.",
            ),
            FailNoDocument => (
                "Zu Ihrer Anmeldung ist keine Dokumentnummer bekannt; bitte melden Sie sich erneut an.",
                "No document number is known for your login; please log in again.",
            ),
            NoFile => ("Bitte wählen Sie eine Datei.", "Please choose a file."),
        }
    }
}
