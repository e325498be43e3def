//! The texts of the verification page and of reports in pages, German and English (the
//! pattern of [`crate::i18n`]).

use crate::i18n::Lang;

/// The name of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum T {
    Title,
    Intro,
    FileLabel,
    FileHint,
    DocumentLabel,
    DocumentHint,
    Check,
    ReportHeading,
    DownloadPdf,
    DownloadJson,
    NoFile,
    UnknownKind,
    DocumentMissing,
    DocumentNotExpected,
    CheckFailed,
    Malformed,
    Expired,
    CheckAnother,
}

impl T {
    /// The text in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        let (de, en) = self.both();
        match lang {
            Lang::De => de,
            Lang::En => en,
        }
    }

    fn both(self) -> (&'static str, &'static str) {
        use T::*;
        match self {
            Title => ("Signaturen prüfen", "Verify signatures"),
            Intro => (
                "Laden Sie eine signierte PDF-Datei, ein ASiC-E-Paket oder eine Signaturdatei (.p7s) mit dem signierten Dokument hoch. Sie erhalten das Prüfprotokoll; Ihre Dateien werden nach der Prüfung gelöscht.",
                "Upload a signed PDF, an ASiC-E package, or a signature file (.p7s) with the signed document. You get the verification report; your files are deleted after the check.",
            ),
            FileLabel => (
                "Signierte Datei (PDF, ASiC-E oder .p7s)",
                "Signed file (PDF, ASiC-E or .p7s)",
            ),
            FileHint => (
                "Eine PDF-Datei und ein Paket enthalten ihre Dokumente selbst.",
                "A PDF and a package carry their documents themselves.",
            ),
            DocumentLabel => (
                "Signiertes Dokument (nur zu einer .p7s-Datei)",
                "Signed document (only with a .p7s file)",
            ),
            DocumentHint => (
                "Die Datei, die die .p7s-Signatur unterschreibt.",
                "The file the .p7s signature signs.",
            ),
            Check => ("Prüfen", "Verify"),
            ReportHeading => ("Prüfprotokoll", "Verification report"),
            DownloadPdf => ("Protokoll als PDF", "Report as PDF"),
            DownloadJson => ("Protokoll als JSON", "Report as JSON"),
            NoFile => ("Bitte wählen Sie eine Datei.", "Please choose a file."),
            UnknownKind => (
                "Diese Datei ist weder eine signierte PDF-Datei noch ein ASiC-E-Paket noch eine Signatur (.p7s).",
                "This file is neither a signed PDF, an ASiC-E package nor a signature (.p7s).",
            ),
            DocumentMissing => (
                "Eine .p7s-Signatur lässt sich nur mit dem signierten Dokument prüfen: bitte wählen Sie es im zweiten Feld.",
                "A .p7s signature can only be checked with the signed document: please choose it in the second field.",
            ),
            DocumentNotExpected => (
                "Ein Dokument gehört nur zu einer .p7s-Signatur; PDF-Dateien und Pakete enthalten ihre Dokumente selbst. Bitte lassen Sie das zweite Feld leer.",
                "A document goes only with a .p7s signature; PDFs and packages carry their documents. Please leave the second field empty.",
            ),
            CheckFailed => (
                "Die Datei konnte nicht geprüft werden. Bitte versuchen Sie es erneut.",
                "The file could not be checked. Please try again.",
            ),
            Malformed => (
                "Das Formular kam unvollständig an. Bitte versuchen Sie es erneut.",
                "The form arrived incomplete. Please try again.",
            ),
            Expired => (
                "Dieses Protokoll ist nicht mehr vorhanden (Sitzung abgelaufen). Bitte prüfen Sie die Datei erneut.",
                "This report is no longer available (session expired). Please check the file again.",
            ),
            CheckAnother => ("Weitere Datei prüfen", "Check another file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_differ_by_language() {
        for t in [T::Title, T::UnknownKind, T::DocumentMissing, T::Expired] {
            assert_ne!(t.text(Lang::De), t.text(Lang::En));
        }
    }
}
