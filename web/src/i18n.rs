//! Every text a page shows, in German and English: [`Msg`] names a text, [`Msg::text`] gives
//! it in a [`Lang`]. The language comes from the `lang` cookie (set by the switch in the
//! header), else the first supported language of `Accept-Language`, else the configuration.

use serde::Deserialize;

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    De,
    En,
}

impl Lang {
    /// The code in URLs, cookies and `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Self::De => "de",
            Self::En => "en",
        }
    }

    /// `de` / `en` (exactly; anything else is `None`).
    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "de" => Some(Self::De),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// ISO 639-2 code for device links' fallback page.
    pub fn iso639_2(self) -> &'static str {
        match self {
            Self::De => "deu",
            Self::En => "eng",
        }
    }

    /// The language of a request: `lang` cookie, else `Accept-Language` (in the order the
    /// browser lists them, quality values ignored except `q=0`), else `default`.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>, default: Self) -> Self {
        if let Some(l) = cookie.and_then(Self::from_code) {
            return l;
        }
        for part in accept_language.unwrap_or("").split(',') {
            let mut fields = part.split(';');
            let tag = fields.next().unwrap_or("").trim().to_ascii_lowercase();
            if fields.any(|f| matches!(f.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000")) {
                continue;
            }
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(l) = Self::from_code(primary) {
                return l;
            }
        }
        default
    }
}

/// The name of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Msg {
    SkipToContent,
    AreaBank,
    AreaPortal,
    AreaVerify,
    LanguageSwitch,
    Footer,
    BankTitle,
    LoginHeading,
    QrHeading,
    QrHelp,
    QrAlt,
    QrReload,
    QrNoScript,
    Web2AppButton,
    Web2AppHelp,
    NotifyHeading,
    NotifyHelp,
    Country,
    NationalId,
    NotifyButton,
    InvalidNationalId,
    WaitHeading,
    WaitVcLabel,
    WaitHelp,
    Continue,
    Cancel,
    Waiting,
    LoginDone,
    AccountHeading,
    Welcome,
    Identifier,
    DocumentNumber,
    Logout,
    TryAgain,
    FailedHeading,
    FailUserRefused,
    FailTimeout,
    FailWrongVc,
    FailAccountUnusable,
    FailUnknownPerson,
    FailServerError,
    FailVerification,
    FailUnreachable,
    ForbiddenHeading,
    ForbiddenCsrf,
    ForbiddenOrigin,
    TooLargeHeading,
    TooLarge,
    NotFoundHeading,
    NotFound,
    BusyHeading,
    Busy,
    ComingLater,
    SessionExpired,
}

impl Msg {
    /// The text in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        let (de, en) = self.pair();
        match lang {
            Lang::De => de,
            Lang::En => en,
        }
    }

    fn pair(self) -> (&'static str, &'static str) {
        use Msg::*;
        match self {
            SkipToContent => ("Zum Inhalt springen", "Skip to content"),
            AreaBank => ("Demo Bank", "Demo Bank"),
            AreaPortal => ("Portal", "Portal"),
            AreaVerify => ("Prüfung", "Verification"),
            LanguageSwitch => ("Sprache", "Language"),
            Footer => (
                "Tandem – ein offener Signaturdienst mit geteiltem Schlüssel. Demo, keine echte Bank.",
                "Tandem – an open split-key signing service. A demo, not a real bank.",
            ),
            BankTitle => ("Demo Bank", "Demo Bank"),
            LoginHeading => ("Anmelden mit Tandem", "Log in with Tandem"),
            QrHeading => ("Mit dem Telefon scannen", "Scan with your phone"),
            QrHelp => (
                "Öffnen Sie die Tandem-App und scannen Sie den QR-Code. Er ändert sich jede Sekunde.",
                "Open the Tandem app and scan the QR code. It changes every second.",
            ),
            QrAlt => ("QR-Code zum Anmelden", "QR code to log in"),
            QrReload => ("QR-Code neu laden", "Reload the QR code"),
            QrNoScript => (
                "Ohne JavaScript wird der QR-Code nicht von selbst erneuert: laden Sie ihn neu, kurz bevor Sie scannen, und wählen Sie danach „Weiter“.",
                "Without JavaScript the QR code does not renew itself: reload it just before you scan, then choose “Continue”.",
            ),
            Web2AppButton => (
                "Tandem-App auf diesem Gerät öffnen",
                "Open the Tandem app on this device",
            ),
            Web2AppHelp => (
                "Wenn Sie diese Seite auf Ihrem Telefon geöffnet haben.",
                "If you opened this page on your phone.",
            ),
            NotifyHeading => ("Mit Personenkennzahl", "With your national identity number"),
            NotifyHelp => (
                "Wir senden eine Anfrage an Ihr Telefon. Prüfen Sie dort den Kontrollcode.",
                "We send a request to your phone. Check the verification code there.",
            ),
            Country => ("Land", "Country"),
            NationalId => ("Personenkennzahl", "National identity number"),
            NotifyButton => ("Anfrage senden", "Send request"),
            InvalidNationalId => (
                "Bitte geben Sie ein Land (zwei Buchstaben) und eine Personenkennzahl (Ziffern, Buchstaben, Bindestriche) ein.",
                "Please enter a country (two letters) and a national identity number (digits, letters, hyphens).",
            ),
            WaitHeading => ("Bestätigen Sie auf Ihrem Telefon", "Confirm on your phone"),
            WaitVcLabel => ("Kontrollcode", "Verification code"),
            WaitHelp => (
                "Bestätigen Sie nur, wenn Ihr Telefon denselben Code zeigt.",
                "Confirm only if your phone shows the same code.",
            ),
            Continue => ("Weiter", "Continue"),
            Cancel => ("Abbrechen", "Cancel"),
            Waiting => ("Warte auf Ihr Telefon …", "Waiting for your phone …"),
            LoginDone => ("Angemeldet.", "Logged in."),
            AccountHeading => ("Ihr Konto", "Your account"),
            Welcome => ("Willkommen", "Welcome"),
            Identifier => ("Kennung", "Identifier"),
            DocumentNumber => ("Dokumentnummer", "Document number"),
            Logout => ("Abmelden", "Log out"),
            TryAgain => ("Erneut versuchen", "Try again"),
            FailedHeading => ("Anmeldung nicht möglich", "Login failed"),
            FailUserRefused => (
                "Die Anmeldung wurde auf dem Telefon abgelehnt.",
                "The login was declined on the phone.",
            ),
            FailTimeout => (
                "Die Zeit ist abgelaufen: auf dem Telefon wurde nichts bestätigt.",
                "Time ran out: nothing was confirmed on the phone.",
            ),
            FailWrongVc => (
                "Auf dem Telefon wurde ein falscher Kontrollcode gewählt.",
                "A wrong verification code was chosen on the phone.",
            ),
            FailAccountUnusable => (
                "Ihr Tandem-Konto kann gerade nicht anmelden: der Schlüssel ist gesperrt oder deaktiviert. Im Portal sehen Sie, bis wann.",
                "Your Tandem account cannot log in right now: its key is locked or disabled. The portal shows until when.",
            ),
            FailUnknownPerson => (
                "Für diese Personenkennzahl gibt es kein Tandem-Konto.",
                "There is no Tandem account for this national identity number.",
            ),
            FailServerError => (
                "Der Tandem-Dienst konnte die Anmeldung nicht abschließen.",
                "The Tandem service could not complete the login.",
            ),
            FailVerification => (
                "Die Antwort des Tandem-Dienstes hat die Prüfung nicht bestanden (Signatur oder Zertifikat). Aus Sicherheitsgründen wurden Sie nicht angemeldet.",
                "The Tandem service's answer failed verification (signature or certificate). For your safety you were not logged in.",
            ),
            FailUnreachable => (
                "Der Tandem-Dienst ist gerade nicht erreichbar. Bitte später erneut versuchen.",
                "The Tandem service cannot be reached right now. Please try again later.",
            ),
            ForbiddenHeading => ("Anfrage abgelehnt", "Request refused"),
            ForbiddenCsrf => (
                "Das Formular war veraltet oder stammte nicht von dieser Seite (Schutz vor Cross-Site Request Forgery). Bitte laden Sie die Seite neu.",
                "The form was outdated or did not come from this site (cross-site request forgery protection). Please reload the page.",
            ),
            ForbiddenOrigin => (
                "Die Anfrage kam nicht von dieser Seite.",
                "The request did not come from this site.",
            ),
            TooLargeHeading => ("Datei zu groß", "File too large"),
            TooLarge => (
                "Die hochgeladenen Daten überschreiten die erlaubte Größe von",
                "The uploaded data exceeds the allowed size of",
            ),
            NotFoundHeading => ("Nicht gefunden", "Not found"),
            NotFound => ("Diese Seite gibt es nicht.", "There is no such page."),
            BusyHeading => ("Ausgelastet", "Busy"),
            Busy => (
                "Zu viele gleichzeitige Sitzungen. Bitte später erneut versuchen.",
                "Too many sessions at once. Please try again later.",
            ),
            ComingLater => ("Dieser Bereich folgt.", "This area is coming."),
            SessionExpired => (
                "Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.",
                "Your session has expired. Please log in again.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_beats_accept_language_beats_default() {
        assert_eq!(
            Lang::negotiate(Some("en"), Some("de-DE"), Lang::De),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(None, Some("fr, en-GB;q=0.8, de;q=0.5"), Lang::De),
            Lang::En
        );
        assert_eq!(Lang::negotiate(Some("xx"), Some("fr"), Lang::En), Lang::En);
        assert_eq!(
            Lang::negotiate(None, Some("en;q=0, de"), Lang::En),
            Lang::De
        );
        assert_eq!(Lang::negotiate(None, None, Lang::De), Lang::De);
    }

    #[test]
    fn every_text_differs_by_language_where_it_should() {
        // The two names that are the same in both languages are deliberate.
        for m in [
            Msg::LoginHeading,
            Msg::FailTimeout,
            Msg::ForbiddenCsrf,
            Msg::TooLarge,
        ] {
            assert_ne!(m.text(Lang::De), m.text(Lang::En));
        }
    }
}
