//! The certificate page's texts in German and English (the pattern of [`crate::i18n`]).

use tandem_rp::api::rp_certs::{LabelError, MAX_LABEL_CHARS};

use crate::i18n::Lang;

/// The name of a text of `/portal/certificates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum C {
    Title,
    NavLink,
    NoRp,
    Hint,
    Credits,
    CreditsInButton,
    Label,
    State,
    Serial,
    NotAfter,
    Actions,
    Queued,
    Creating,
    Ready,
    Revoked,
    Expired,
    Cancelled,
    Download,
    Revoke,
    Cancel,
    NoCertificates,
    Vouchers,
    Redeem,
    VoucherCode,
    CreateN,
    /// "credit" after the number 1 on the create button.
    CreditInButton,
    AddRow,
    CreateAll,
    Close,
    CancelConfirm,
    CancelYes,
    VoucherShown,
    RevokeConfirm,
    RevokeYes,
    Password,
    PasswordAgain,
    PasswordShort,
    PasswordMismatch,
    Building,
    Saved,
    NoKey,
    NoCredits,
    Redeemed,
    RevokedDone,
    Failed,
    NeedsJs,
    Working,
}

impl C {
    /// The text in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        let (de, en) = self.pair();
        match lang {
            Lang::De => de,
            Lang::En => en,
        }
    }

    fn pair(self) -> (&'static str, &'static str) {
        use C::*;
        match self {
            Title => ("Software-Zertifikate", "Software certificates"),
            NavLink => (
                "Software-Zertifikate der Relying Parties",
                "Relying parties' software certificates",
            ),
            NoRp => (
                "Sie verwalten keine Relying Party.",
                "You administer no relying party.",
            ),
            Hint => (
                "Der Schlüssel wird in diesem Browser erzeugt und bleibt dort bis zum Download. \
                 Laden Sie das Zertifikat auf demselben Computer im selben Browser herunter und \
                 löschen Sie bis dahin nicht die Browserdaten (Cache, Website-Daten).",
                "The key is generated in this browser and stays there until the download. \
                 Download the certificate on the same computer in the same browser, and do not \
                 clear the browser data (cache, site data) until then.",
            ),
            Credits => ("Guthaben", "Credits"),
            CreditsInButton => ("Guthaben", "credits"),
            CreditInButton => ("Guthaben", "credit"),
            Label => ("Bezeichnung", "Label"),
            State => ("Status", "State"),
            Serial => ("Seriennummer", "Serial number"),
            NotAfter => ("Gültig bis", "Valid until"),
            Actions => ("Aktionen", "Actions"),
            Queued => ("In der Warteschlange", "Queued"),
            Creating => ("Wird erstellt", "Being created"),
            Ready => ("Bereit", "Ready"),
            Revoked => ("Widerrufen", "Revoked"),
            Expired => ("Abgelaufen", "Expired"),
            Cancelled => ("Abgebrochen", "Cancelled"),
            Download => ("Herunterladen", "Download"),
            Revoke => ("Widerrufen", "Revoke"),
            Cancel => ("Abbrechen", "Cancel"),
            NoCertificates => ("Noch keine Zertifikate.", "No certificates yet."),
            Vouchers => ("Gutscheine", "Vouchers"),
            Redeem => ("Einlösen", "Redeem"),
            VoucherCode => ("Gutscheincode", "Voucher code"),
            CreateN => ("Zertifikate erstellen", "Create certificates"),
            AddRow => ("Weiteres Zertifikat", "Another certificate"),
            CreateAll => ("Alle erstellen", "Create all"),
            Close => ("Schließen", "Close"),
            CancelConfirm => (
                "Die Erstellung abbrechen? Sie erhalten einen Gutschein über ein Guthaben.",
                "Cancel the creation? You get a voucher for one credit.",
            ),
            CancelYes => ("Ja, abbrechen", "Yes, cancel"),
            VoucherShown => (
                "Abgebrochen. Ihr Gutscheincode:",
                "Cancelled. Your voucher code:",
            ),
            RevokeConfirm => (
                "Das Zertifikat widerrufen? Das kann nicht rückgängig gemacht werden.",
                "Revoke the certificate? This cannot be undone.",
            ),
            RevokeYes => ("Ja, widerrufen", "Yes, revoke"),
            Password => ("Passwort für die .p12-Datei", "Password for the .p12 file"),
            PasswordAgain => ("Passwort wiederholen", "Repeat the password"),
            PasswordShort => (
                "Das Passwort muss mindestens 6 Zeichen haben.",
                "The password must have at least 6 characters.",
            ),
            PasswordMismatch => (
                "Die beiden Passwörter stimmen nicht überein.",
                "The two passwords do not match.",
            ),
            Building => (
                "Die Datei wird erstellt (das dauert einige Sekunden) …",
                "Building the file (this takes a few seconds) …",
            ),
            Saved => ("Die Datei wurde gespeichert.", "The file was saved."),
            NoKey => (
                "Der Schlüssel zu diesem Zertifikat ist in diesem Browser nicht gespeichert. \
                 Er wurde in einem anderen Browser oder auf einem anderen Computer erzeugt, oder \
                 die Browserdaten wurden gelöscht. Ohne ihn kann die Datei nicht erstellt werden; \
                 widerrufen Sie das Zertifikat und erstellen Sie ein neues.",
                "The key of this certificate is not stored in this browser. It was generated \
                 in another browser or on another computer, or the browser data was cleared. \
                 Without it the file cannot be built; revoke the certificate and create a new one.",
            ),
            NoCredits => ("Nicht genug Guthaben.", "Not enough credits."),
            Redeemed => (
                "Gutschein eingelöst. Guthaben:",
                "Voucher redeemed. Credits:",
            ),
            RevokedDone => (
                "Das Zertifikat wurde widerrufen.",
                "The certificate was revoked.",
            ),
            Failed => ("Das hat nicht geklappt:", "That did not work:"),
            NeedsJs => (
                "Zum Erstellen und Herunterladen wird JavaScript benötigt (der Schlüssel entsteht im Browser).",
                "Creating and downloading needs JavaScript (the key is generated in the browser).",
            ),
            Working => ("Schlüssel werden erzeugt …", "Generating keys …"),
        }
    }
}

/// A refused label, localized; the character is named (`TAB` / `Tabulator`).
pub fn label_error(e: &LabelError, lang: Lang) -> String {
    match (e, lang) {
        (LabelError::Empty, Lang::De) => "Bitte eine Bezeichnung eingeben.".into(),
        (LabelError::Empty, Lang::En) => "Please enter a label.".into(),
        (LabelError::TooLong(n), Lang::De) => {
            format!("Die Bezeichnung hat {n} Zeichen; erlaubt sind höchstens {MAX_LABEL_CHARS}.")
        }
        (LabelError::TooLong(n), Lang::En) => {
            format!("The label has {n} characters; at most {MAX_LABEL_CHARS} are allowed.")
        }
        (LabelError::Forbidden(c), Lang::De) => format!(
            "Das Zeichen {} ist in der Bezeichnung nicht erlaubt.",
            if *c == '\t' {
                "Tabulator".to_owned()
            } else {
                c.to_string()
            }
        ),
        (LabelError::Forbidden(c), Lang::En) => format!(
            "The character {} is not allowed in the label.",
            LabelError::char_name(*c)
        ),
        (LabelError::Control, Lang::De) => {
            "Die Bezeichnung enthält ein Steuerzeichen (z. B. einen Zeilenumbruch).".into()
        }
        (LabelError::Control, Lang::En) => {
            "The label contains a control character (such as a line break).".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_messages_name_the_character() {
        let tab = LabelError::Forbidden('\t');
        assert!(label_error(&tab, Lang::De).contains("Tabulator"));
        assert!(label_error(&tab, Lang::En).contains("TAB"));
        assert!(label_error(&LabelError::Forbidden('$'), Lang::En).contains(" $ "));
        assert!(label_error(&LabelError::TooLong(75), Lang::De).contains("75"));
        assert_ne!(C::Hint.text(Lang::De), C::Hint.text(Lang::En));
    }
}
