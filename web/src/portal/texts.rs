//! The portal's texts in German and English (the same pattern as [`crate::i18n`]).

use crate::i18n::Lang;

/// The name of a portal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum T {
    Title,
    LoginHeading,
    NotConfigured,
    OverviewHeading,
    Holder,
    Name,
    Identity,
    Accounts,
    NoAccounts,
    AccountState,
    StateActive,
    Created,
    Expires,
    Device,
    Registered,
    LastUsed,
    Never,
    Keys,
    KeyAuth,
    KeySign,
    KeyActive,
    KeyLockedUntil,
    KeyDisabled,
    WrongPinsLeft,
    Certificates,
    Purpose,
    Level,
    Subject,
    Validity,
    Serial,
    OcspStatus,
    OcspGood,
    OcspGoodCrl,
    OcspRevoked,
    OcspUnknown,
    OcspUnreachable,
    Download,
    Transactions,
    NoTransactions,
    Time,
    RelyingParty,
    Kind,
    Result,
    KindAuth,
    KindSign,
    KindCertChoice,
    DeleteAccount,
    DeleteHeading,
    DeleteWhat,
    DeleteEffects,
    DeleteUnderstand,
    DeleteButton,
    DeleteNeedsCheckbox,
    DeletePhoneText,
    DeleteWaitLead,
    DeletedHeading,
    Deleted,
    RevokedSerials,
    BackToOverview,
    DeleteFailedHeading,
    DeleteRefused,
    PortalUnavailable,
    Logout,
    LoggedOut,
}

impl T {
    /// The text in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        let (de, en) = self.pair();
        match lang {
            Lang::De => de,
            Lang::En => en,
        }
    }

    fn pair(self) -> (&'static str, &'static str) {
        use T::*;
        match self {
            Title => ("Tandem-Portal", "Tandem portal"),
            LoginHeading => ("Anmeldung im Tandem-Portal", "Log in to the Tandem portal"),
            NotConfigured => (
                "Das Portal ist auf diesem Server nicht eingerichtet (in web.toml fehlt [portal]).",
                "The portal is not configured on this server (web.toml has no [portal]).",
            ),
            OverviewHeading => ("Ihre Tandem-Konten", "Your Tandem accounts"),
            Holder => ("Inhaber", "Holder"),
            Name => ("Name", "Name"),
            Identity => ("Personenkennung", "Identity"),
            Accounts => ("Konten", "Accounts"),
            NoAccounts => ("Keine Konten.", "No accounts."),
            AccountState => ("Zustand", "State"),
            StateActive => ("aktiv", "active"),
            Created => ("Angelegt", "Created"),
            Expires => ("Läuft ab", "Expires"),
            Device => ("Gerät", "Device"),
            Registered => ("registriert", "registered"),
            LastUsed => ("zuletzt benutzt", "last used"),
            Never => ("nie", "never"),
            Keys => ("Schlüssel", "Keys"),
            KeyAuth => ("Anmeldung (AUTH, PIN1)", "Authentication (AUTH, PIN1)"),
            KeySign => ("Signatur (SIGN, PIN2)", "Signing (SIGN, PIN2)"),
            KeyActive => ("aktiv", "active"),
            KeyLockedUntil => ("gesperrt bis", "locked until"),
            KeyDisabled => ("deaktiviert", "disabled"),
            WrongPinsLeft => ("verbleibende PIN-Versuche", "wrong PINs left"),
            Certificates => ("Zertifikate", "Certificates"),
            Purpose => ("Zweck", "Purpose"),
            Level => ("Stufe", "Level"),
            Subject => ("Inhaber (Subject)", "Subject"),
            Validity => ("Gültigkeit", "Validity"),
            Serial => ("Seriennummer", "Serial number"),
            OcspStatus => ("OCSP-Status", "OCSP status"),
            OcspGood => ("gültig (good)", "good"),
            OcspGoodCrl => (
                "nicht gesperrt laut Sperrliste (OCSP nicht erreichbar)",
                "not revoked according to the CRL (OCSP not reachable)",
            ),
            OcspRevoked => ("gesperrt (revoked)", "revoked"),
            OcspUnknown => ("unbekannt (unknown)", "unknown"),
            OcspUnreachable => ("nicht erreichbar", "not reachable"),
            Download => ("Herunterladen (PEM)", "Download (PEM)"),
            Transactions => ("Letzte Vorgänge", "Recent transactions"),
            NoTransactions => ("Keine Vorgänge.", "No transactions."),
            Time => ("Zeit", "Time"),
            RelyingParty => ("Dienst", "Relying party"),
            Kind => ("Art", "Kind"),
            Result => ("Ergebnis", "Result"),
            KindAuth => ("Anmeldung", "Login"),
            KindSign => ("Signatur", "Signature"),
            KindCertChoice => ("Zertifikatsauswahl", "Certificate choice"),
            DeleteAccount => ("Konto löschen …", "Delete account …"),
            DeleteHeading => ("Konto löschen", "Delete account"),
            DeleteWhat => ("Sie löschen das Konto", "You are deleting the account"),
            DeleteEffects => (
                "Alle Zertifikate dieses Kontos werden gesperrt, die Schlüssel auf dem Server und die Geheimnisse des Telefons vernichtet. Mit diesem Konto kann niemand mehr anmelden oder signieren. Das kann nicht rückgängig gemacht werden.",
                "All certificates of this account are revoked, the keys on the server and the phone's secrets destroyed. Nobody can log in or sign with this account any more. This cannot be undone.",
            ),
            DeleteUnderstand => (
                "Ich habe verstanden: das Konto wird endgültig gelöscht.",
                "I understand: the account is deleted for good.",
            ),
            DeleteButton => (
                "Löschen und auf dem Telefon bestätigen",
                "Delete and confirm on the phone",
            ),
            DeleteNeedsCheckbox => (
                "Bitte bestätigen Sie zuerst, dass Sie verstanden haben.",
                "Please confirm first that you understand.",
            ),
            DeletePhoneText => ("Delete account", "Delete account"),
            DeleteWaitLead => (
                "Bestätigen Sie die Löschung auf Ihrem Telefon mit PIN1. Das Konto:",
                "Confirm the deletion on your phone with PIN1. The account:",
            ),
            DeletedHeading => ("Konto gelöscht", "Account deleted"),
            Deleted => ("Das Konto wurde gelöscht:", "The account was deleted:"),
            RevokedSerials => (
                "Gesperrte Zertifikate (Seriennummern):",
                "Revoked certificates (serial numbers):",
            ),
            BackToOverview => ("Zur Übersicht", "Back to the overview"),
            DeleteFailedHeading => ("Löschen nicht möglich", "Deletion failed"),
            DeleteRefused => (
                "Der Tandem-Dienst hat die Löschung abgelehnt.",
                "The Tandem service refused the deletion.",
            ),
            PortalUnavailable => (
                "Der Tandem-Dienst konnte Ihre Daten nicht liefern. Bitte später erneut versuchen.",
                "The Tandem service could not provide your data. Please try again later.",
            ),
            Logout => ("Abmelden", "Log out"),
            LoggedOut => ("Sie sind abgemeldet.", "You are logged out."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_exist_in_both_languages() {
        for t in [
            T::Title,
            T::DeleteEffects,
            T::OcspUnreachable,
            T::KeyLockedUntil,
        ] {
            assert!(!t.text(Lang::De).is_empty());
            assert_ne!(t.text(Lang::De), t.text(Lang::En));
        }
    }
}
