//! Matching a request's `relyingPartyName` against the name registered for its UUID.
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
//! caseless.

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
