//! Matching a request's `relyingPartyName` against the names registered for its UUID.
//!
//! A relying party has one or more names (the operator adds and removes them:
//! `tandem operator rp-add --name A --name B`, `rp-name-add`, `rp-name-remove`). A request is
//! admitted when its name matches any of them under the rule below, and no two names of one
//! relying party may match each other under it ([`clashing_name`]).
//!
//! api_details.txt: "relyingPartyName request field is case-insensitive and must match one of
//! the names configured for the calling RP." The specification does not say which case
//! mapping it means; we apply Unicode **default full case folding** (Unicode 16.0
//! `CaseFolding.txt`, statuses C and F, without the Turkic T mappings; §3.13 D144 "default
//! caseless matching") to both names and compare the results:
//!
//! | registered | sent | match | why |
//! |---|---|---|---|
//! | `DEMO` | `demo`, `Demo` | yes | ASCII letters fold to lower case |
//! | `Straße` | `STRASSE`, `strasse` | yes | `ß` (and capital `ẞ`) fold to `ss` |
//! | `ΟΔΟΣ` | `οδος`, `οδοσ` | yes | final `ς` and `σ` both fold to `σ` |
//! | `İstanbul` | `istanbul` | no | `İ` (U+0130) folds to `i` + U+0307 COMBINING DOT ABOVE |
//! | `ISTANBUL` | `ıstanbul` | no | dotless `ı` (U+0131) has no folding; `I` folds to `i` |
//! | `Café` (é = U+00E9) | `CAFE\u{301}` (E + U+0301) | no | no Unicode normalisation |
//!
//! Why full folding rather than lower-casing: lower-casing is not a caseless match (`ß` has no
//! upper-case single character, so `"STRASSE".to_lowercase() != "straße"`, and final sigma
//! lower-cases differently by position), while full folding is what Unicode defines for
//! caseless matching and what a person reading the name would call "the same name in other
//! letters case". Why not the Turkic mappings: they depend on the language, which a request
//! does not carry, and they would make `I`/`i` differ for every other language. Why no
//! normalisation: the specification asks for case-insensitivity only; NFC and NFD forms of
//! the same text are different byte strings for the authCode and the ACSP_V2 payload anyway,
//! so the relying party has to send one form consistently.
//!
//! The name the relying party *sent* stays the one used in authCodes, ACSP_V2 payloads and
//! what the app shows (the relying party computes its authCode with it); only admission is
//! caseless, and which configured name matched is not recorded in the session.

use subtle::ConstantTimeEq;

/// Unicode default full case folding of `name` (see the module docs).
pub fn fold(name: &str) -> String {
    unicase::UniCase::new(name).to_folded_case()
}

/// Whether `sent` names the relying party registered as `registered`, ignoring case as the
/// module docs describe. The folded forms are compared in constant time for equal lengths.
pub fn relying_party_name_matches(registered: &str, sent: &str) -> bool {
    fold(registered)
        .as_bytes()
        .ct_eq(fold(sent).as_bytes())
        .into()
}

/// Whether `sent` matches one of the names configured for a relying party (api_details.txt:
/// "must match one of the names configured for the calling RP"), each compared as
/// [`relying_party_name_matches`] does. Every configured name is compared, also after a
/// match, so the time taken does not say which one matched.
pub fn matches_any_configured_name<S: AsRef<str>>(configured: &[S], sent: &str) -> bool {
    let sent = fold(sent);
    configured
        .iter()
        .fold(subtle::Choice::from(0), |any, name| {
            any | fold(name.as_ref()).as_bytes().ct_eq(sent.as_bytes())
        })
        .into()
}

/// The configured name that `candidate` would duplicate under the folding rule (so a relying
/// party named `DEMO` cannot also be named `demo`: both would admit the same requests and
/// the operator could not tell which one a request used).
pub fn clashing_name<'a, S: AsRef<str>>(configured: &'a [S], candidate: &str) -> Option<&'a str> {
    let candidate = fold(candidate);
    configured
        .iter()
        .map(AsRef::as_ref)
        .find(|name| fold(name) == candidate)
}

/// Most characters a configured name may have. The specification sets no limit; the name
/// is shown on the top of the consent screen, so it is kept short.
pub const MAX_NAME_CHARS: usize = 100;

/// Checks a name an operator configures for a relying party and returns it without leading
/// and trailing white space: 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub fn configured_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "a relying-party name must be 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("a relying-party name must not contain control characters".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_case_is_ignored() {
        assert!(relying_party_name_matches("DEMO", "demo"));
        assert!(relying_party_name_matches("DEMO", "DeMo"));
        assert!(relying_party_name_matches(
            "Tandem Test Bank",
            "TANDEM TEST BANK"
        ));
        assert!(!relying_party_name_matches("DEMO", "DEMO2"));
        assert!(!relying_party_name_matches("DEMO", "DEM0"));
        assert!(!relying_party_name_matches("DEMO", " DEMO"));
        assert!(!relying_party_name_matches("DEMO", ""));
    }

    #[test]
    fn full_folding_edge_cases() {
        // Sharp s: full folding gives "ss", both for ß and for capital ẞ (U+1E9E).
        assert!(relying_party_name_matches("Straße Bank", "STRASSE BANK"));
        assert!(relying_party_name_matches("STRASSE BANK", "straße bank"));
        assert!(relying_party_name_matches("Straße", "STRAẞE"));
        assert!(!relying_party_name_matches("Straße", "Strase"));
        // Greek sigma in every position form.
        assert!(relying_party_name_matches("ΟΔΟΣ", "οδος"));
        assert!(relying_party_name_matches("ΟΔΟΣ", "οδοσ"));
        // Cyrillic, accented Latin: ordinary one-to-one folds.
        assert!(relying_party_name_matches("ПРИВАТБАНК", "приватбанк"));
        assert!(relying_party_name_matches("ÉCOLE", "école"));
        // Kelvin sign folds to k (it looks the same).
        assert!(relying_party_name_matches("Bank", "BAN\u{212A}"));
    }

    #[test]
    fn any_configured_name_admits() {
        let names = ["Tandem Test Bank", "Straße Bank", "ΟΔΟΣ"];
        for sent in [
            "tandem test bank",
            "STRASSE BANK",
            "οδος",
            "Tandem Test Bank",
        ] {
            assert!(matches_any_configured_name(&names, sent), "{sent}");
        }
        for sent in ["Tandem Test", "Strase Bank", "", "Tandem Test Bank "] {
            assert!(!matches_any_configured_name(&names, sent), "{sent}");
        }
        assert!(!matches_any_configured_name::<&str>(&[], "anything"));
    }

    #[test]
    fn names_that_fold_alike_clash() {
        let names = vec!["DEMO".to_owned(), "Straße Bank".to_owned()];
        assert_eq!(clashing_name(&names, "demo"), Some("DEMO"));
        assert_eq!(clashing_name(&names, "STRASSE BANK"), Some("Straße Bank"));
        assert_eq!(clashing_name(&names, "Demo Bank"), None);
        assert_eq!(clashing_name(&names, "DEMO2"), None);
    }

    #[test]
    fn configured_names_are_trimmed_and_bounded() {
        assert_eq!(configured_name("  Demo Bank \t").unwrap(), "Demo Bank");
        assert_eq!(configured_name(&"ä".repeat(100)).unwrap(), "ä".repeat(100));
        assert!(
            configured_name(&"ä".repeat(101))
                .unwrap_err()
                .contains("1 to 100")
        );
        assert!(configured_name("   ").unwrap_err().contains("1 to 100"));
        assert!(
            configured_name("Demo\nBank")
                .unwrap_err()
                .contains("control")
        );
    }

    #[test]
    fn turkic_and_normalisation_are_not_applied() {
        // Default (non-Turkic) folding: İ is i + combining dot, ı stays ı.
        assert!(!relying_party_name_matches("İSTANBUL", "istanbul"));
        assert!(relying_party_name_matches("İSTANBUL", "i\u{307}stanbul"));
        assert!(!relying_party_name_matches("ISTANBUL", "ıstanbul"));
        assert!(relying_party_name_matches("ISTANBUL", "istanbul"));
        // Precomposed é is not the same as e + combining acute.
        assert!(!relying_party_name_matches("Café", "CAFE\u{301}"));
    }
}
