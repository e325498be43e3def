//! The app's side of sessions started through the Smart-ID RP API v3 compatible REST API:
//! the interactions to show, the ACSP_V2 payload the app signs, and the user challenge.
//!
//! The app computes the ACSP_V2 digest itself from what it shows and what it chose (its
//! own `userChallenge`, the interaction it used, how the session reached it), encodes `x`
//! from that digest and signs `x`. The server re-derives the digest from the same values
//! and refuses an `x` that does not encode it; so the signature covers exactly what the
//! app checked.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand_core::CryptoRngCore;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::encoding::HashAlgorithm;

/// Interaction type names of the RP API.
pub const DISPLAY_TEXT_AND_PIN: &str = "displayTextAndPIN";
/// A confirmation screen before the PIN.
pub const CONFIRMATION_MESSAGE: &str = "confirmationMessage";
/// A confirmation screen with the three-code choice before the PIN.
pub const CONFIRMATION_MESSAGE_AND_VC_CHOICE: &str = "confirmationMessageAndVerificationCodeChoice";

/// One interaction the relying party asked for, as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    /// `displayTextAndPIN`, `confirmationMessage`, ...
    pub kind: String,
    /// `displayText60` or `displayText200`.
    pub text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    display_text60: Option<String>,
    display_text200: Option<String>,
}

/// Decodes the Base64 JSON `interactions` list, in the relying party's order of preference.
pub fn decode_interactions(b64: &str) -> Option<Vec<Interaction>> {
    let json = STANDARD.decode(b64).ok()?;
    let raw: Vec<RawInteraction> = serde_json::from_slice(&json).ok()?;
    raw.into_iter()
        .map(|r| {
            let text = r.display_text60.or(r.display_text200)?;
            Some(Interaction { kind: r.kind, text })
        })
        .collect()
}

/// The first interaction of the list this app supports (`supported` lists type names).
pub fn choose_interaction<'a>(
    list: &'a [Interaction],
    supported: &[&str],
) -> Option<&'a Interaction> {
    list.iter().find(|i| supported.contains(&i.kind.as_str()))
}

/// Every interaction type this implementation can show.
pub const SUPPORTED_INTERACTIONS: [&str; 3] = [
    DISPLAY_TEXT_AND_PIN,
    CONFIRMATION_MESSAGE,
    CONFIRMATION_MESSAGE_AND_VC_CHOICE,
];

/// A fresh `userChallengeVerifier`: Base64URL of 32 random bytes. It stays in the app until
/// it goes into the callback URL of a same-device flow.
pub fn generate_user_challenge_verifier(rng: &mut impl CryptoRngCore) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// `userChallenge := BASE64URL(SHA-256(userChallengeVerifier))` (43 characters).
pub fn user_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Everything the ACSP_V2 payload is built from (signature_protocols.txt), as strings
/// exactly as they travel on the wire.
#[derive(Debug, Clone, Copy)]
pub struct AcspV2Fields<'a> {
    /// `smart-id` or `smart-id-demo`.
    pub scheme_name: &'a str,
    /// Standard Base64, from the server.
    pub server_random: &'a str,
    /// Standard Base64, exactly as the relying party sent it.
    pub rp_challenge: &'a str,
    /// Base64URL, chosen by the app.
    pub user_challenge: &'a str,
    /// Exactly as in the relying party's request.
    pub relying_party_name: &'a str,
    /// `None` unless the relying party acts as a broker.
    pub brokered_rp_name: Option<&'a str>,
    /// The Base64 `interactions` string as sent.
    pub interactions: &'a str,
    /// The interaction the user went through.
    pub interaction_type_used: &'a str,
    /// `None` for QR and notification flows.
    pub initial_callback_url: Option<&'a str>,
    /// `QR`, `Web2App`, `App2App` or `Notification`.
    pub flow_type: &'a str,
}

/// The ACSP_V2 payload string:
/// `scheme|ACSP_V2|serverRandom|rpChallenge|userChallenge|B64(rpName)|B64(brokeredRpName)|`
/// `B64(SHA-256(interactions))|interactionTypeUsed|initialCallbackUrl|flowType`.
pub fn acsp_v2_payload(f: &AcspV2Fields<'_>) -> String {
    let interactions_digest = STANDARD.encode(Sha256::digest(f.interactions.as_bytes()));
    [
        f.scheme_name,
        "ACSP_V2",
        f.server_random,
        f.rp_challenge,
        f.user_challenge,
        &STANDARD.encode(f.relying_party_name.as_bytes()),
        &STANDARD.encode(f.brokered_rp_name.unwrap_or("").as_bytes()),
        &interactions_digest,
        f.interaction_type_used,
        f.initial_callback_url.unwrap_or(""),
        f.flow_type,
    ]
    .join("|")
}

/// `hash(payload)`: the digest the app signs.
pub fn acsp_v2_digest(f: &AcspV2Fields<'_>, hash: HashAlgorithm) -> Vec<u8> {
    hash.digest(acsp_v2_payload(f).as_bytes())
}

/// The hash named in the RP API (`HashAlgorithm`: `SHA-256`, `SHA-384`, `SHA-512`,
/// `SHA3-256`, `SHA3-384`, `SHA3-512`), exactly as spelled there.
pub fn hash_from_name(name: &str) -> Option<HashAlgorithm> {
    match name {
        "SHA-256" => Some(HashAlgorithm::Sha256),
        "SHA-384" => Some(HashAlgorithm::Sha384),
        "SHA-512" => Some(HashAlgorithm::Sha512),
        "SHA3-256" => Some(HashAlgorithm::Sha3_256),
        "SHA3-384" => Some(HashAlgorithm::Sha3_384),
        "SHA3-512" => Some(HashAlgorithm::Sha3_512),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactions_round_trip_in_order() {
        let b64 = STANDARD.encode(
            r#"[{"type":"confirmationMessage","displayText200":"Long"},{"type":"displayTextAndPIN","displayText60":"Short"}]"#,
        );
        let list = decode_interactions(&b64).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].kind, CONFIRMATION_MESSAGE);
        assert_eq!(list[1].text, "Short");
        let only_pin = choose_interaction(&list, &[DISPLAY_TEXT_AND_PIN]).unwrap();
        assert_eq!(only_pin.text, "Short");
        assert!(choose_interaction(&list, &["somethingElse"]).is_none());
        assert!(decode_interactions("not base64!").is_none());
        assert!(decode_interactions(&STANDARD.encode(r#"[{"type":"x"}]"#)).is_none());
    }

    #[test]
    fn hash_names_of_the_rp_api() {
        let names = [
            ("SHA-256", HashAlgorithm::Sha256),
            ("SHA-384", HashAlgorithm::Sha384),
            ("SHA-512", HashAlgorithm::Sha512),
            ("SHA3-256", HashAlgorithm::Sha3_256),
            ("SHA3-384", HashAlgorithm::Sha3_384),
            ("SHA3-512", HashAlgorithm::Sha3_512),
        ];
        for (name, h) in names {
            assert_eq!(hash_from_name(name), Some(h));
        }
        for bad in ["sha3-256", "SHA3_256", "SHA-3-256", "SHA256", ""] {
            assert_eq!(hash_from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn user_challenge_is_43_chars() {
        let v = generate_user_challenge_verifier(&mut rand_core::OsRng);
        assert_eq!(v.len(), 43);
        let c = user_challenge(&v);
        assert_eq!(c.len(), 43);
        assert_ne!(c, v);
    }
}
