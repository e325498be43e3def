//! ACSP_V2: the authentication signature protocol (signature_protocols.txt).
//!
//! ```text
//! 'smart-id'|'ACSP_V2'|serverRandom|rpChallenge|userChallenge|BASE64(relyingPartyName)|
//! BASE64(brokeredRpName)|BASE64(SHA-256(interactions))|interactionTypeUsed|
//! initialCallbackUrl|flowType
//! ```
//! Base64 values are used as is (never decoded); an absent brokered name or callback URL is an
//! empty field between two separators; `interactions` is hashed as the exact Base64 string the
//! RP sent. The device signs `HASH(UTF-8(payload))` with the requested hash algorithm.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand_core::CryptoRngCore;
use sha2::{Digest as _, Sha256};

use super::types::{FlowType, HashAlgorithm, InteractionType};

/// Bytes of randomness in a `serverRandom` (spec: more than 18 bytes, at least 24 Base64
/// characters). 24 bytes give 32 Base64 characters.
pub const SERVER_RANDOM_LEN: usize = 24;

/// Everything the ACSP_V2 payload is built from, as the RP and the device see it.
#[derive(Debug, Clone, Copy)]
pub struct AcspV2Fields<'a> {
    /// `smart-id` (production) or `smart-id-demo`; the server's configured scheme name.
    pub scheme_name: &'a str,
    /// Standard Base64, as returned in `signature.serverRandom`.
    pub server_random: &'a str,
    /// Standard Base64, exactly as the RP sent it.
    pub rp_challenge: &'a str,
    /// Base64URL (43 characters), as returned in `signature.userChallenge`.
    pub user_challenge: &'a str,
    /// Exactly as in the RP's request (byte for byte, including case).
    pub relying_party_name: &'a str,
    /// `None` unless the RP acts as a broker.
    pub brokered_rp_name: Option<&'a str>,
    /// The Base64 `interactions` string of the request, as sent.
    pub interactions: &'a str,
    pub interaction_type_used: InteractionType,
    /// `None` for QR and notification flows.
    pub initial_callback_url: Option<&'a str>,
    pub flow_type: FlowType,
}

/// The ACSP_V2 payload string.
pub fn acsp_v2_payload(f: &AcspV2Fields<'_>) -> String {
    // One implementation, shared with the app (client-core).
    tandem_client_core::rp_api::acsp_v2_payload(&tandem_client_core::rp_api::AcspV2Fields {
        scheme_name: f.scheme_name,
        server_random: f.server_random,
        rp_challenge: f.rp_challenge,
        user_challenge: f.user_challenge,
        relying_party_name: f.relying_party_name,
        brokered_rp_name: f.brokered_rp_name,
        interactions: f.interactions,
        interaction_type_used: f.interaction_type_used.as_str(),
        initial_callback_url: f.initial_callback_url,
        flow_type: f.flow_type.as_str(),
    })
}

/// `hash(payload)`: the digest the device signs and the RP verifies against.
pub fn acsp_v2_digest(f: &AcspV2Fields<'_>, hash: HashAlgorithm) -> Vec<u8> {
    digest(hash, acsp_v2_payload(f).as_bytes())
}

/// Hash `data` with any hash algorithm of the spec (SHA-2 or SHA-3), with the device's own
/// implementation (client-core).
pub fn digest(hash: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    tandem_client_core::encoding::HashAlgorithm::from(hash).digest(data)
}

/// A fresh `serverRandom` (server side, one per authentication session).
pub fn generate_server_random(rng: &mut impl CryptoRngCore) -> String {
    let mut b = [0u8; SERVER_RANDOM_LEN];
    rng.fill_bytes(&mut b);
    STANDARD.encode(b)
}

pub use tandem_client_core::rp_api::{generate_user_challenge_verifier, user_challenge};

/// `sessionSecretDigest` of the callback URL: Base64URL(SHA-256(decoded sessionSecret)).
pub fn session_secret_digest(session_secret: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(session_secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERACTIONS: &str = "W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2UiLCJkaXNwbGF5VGV4dDIwMCI6IkxvbmdlciBkZXNjcmlwdGlvbiBvZiB0aGUgdHJhbnNhY3Rpb24gY29udGV4dCJ9LHsidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2MCI6IlNob3J0IGRlc2NyaXB0aW9uIG9mIHRoZSB0cmFuc2FjdGlvbiBjb250ZXh0In1d";

    fn spec_fields() -> AcspV2Fields<'static> {
        AcspV2Fields {
            scheme_name: "smart-id",
            server_random: "MTlop6EXCrQ6FOErcKjxUhbV",
            rp_challenge: "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg==",
            user_challenge: "GnsWXXEjTCKR89fj9uo5u5ReBZ9JR7_pezLAI5jMS00",
            relying_party_name: "DEMO",
            brokered_rp_name: Some("Example RP"),
            interactions: INTERACTIONS,
            interaction_type_used: InteractionType::ConfirmationMessage,
            initial_callback_url: Some(
                "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ",
            ),
            flow_type: FlowType::Web2App,
        }
    }

    /// signature_protocols.txt, "Example 1. ACSP_V2 signature digest (in Base64 format)".
    #[test]
    fn spec_example_digest() {
        let f = spec_fields();
        let p = acsp_v2_payload(&f);
        assert!(p.starts_with("smart-id|ACSP_V2|MTlop6EXCrQ6FOErcKjxUhbV|GYS+"));
        assert!(p.contains("|REVNTw==|RXhhbXBsZSBSUA==|"));
        assert!(p.ends_with("|confirmationMessage|https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ|Web2App"));
        let d = acsp_v2_digest(&f, HashAlgorithm::Sha512);
        assert_eq!(
            STANDARD.encode(d),
            "pKOjbNl/5Fy8NfrFqsj6pSn8W8O+Ik8rM33QSsbyD3J9qDJvEm90SboUciuY4wHGWa0Pnq8BgT3NJKmJiUDfKg=="
        );
    }

    #[test]
    fn empty_fields_keep_separators() {
        let f = AcspV2Fields {
            brokered_rp_name: None,
            initial_callback_url: None,
            flow_type: FlowType::Qr,
            ..spec_fields()
        };
        let p = acsp_v2_payload(&f);
        assert_eq!(p.split('|').count(), 11);
        assert!(p.contains("|REVNTw==||"));
        assert!(p.ends_with("|confirmationMessage||QR"));
        assert_eq!(acsp_v2_digest(&f, HashAlgorithm::Sha256).len(), 32);
        assert_eq!(acsp_v2_digest(&f, HashAlgorithm::Sha384).len(), 48);
    }

    /// The spec's example payload hashed with SHA-3 gives what OpenSSL gives (our RP
    /// client's hash, an independent implementation), for every SHA-3 of the spec.
    #[test]
    fn sha3_digests_of_the_spec_example() {
        let payload = acsp_v2_payload(&spec_fields());
        for h in [
            HashAlgorithm::Sha3_256,
            HashAlgorithm::Sha3_384,
            HashAlgorithm::Sha3_512,
        ] {
            let d = acsp_v2_digest(&spec_fields(), h);
            assert_eq!(d.len(), h.output_len());
            assert_eq!(
                d,
                crate::client::verify::hash(h, payload.as_bytes()).unwrap(),
                "{h:?}"
            );
        }
        assert_ne!(
            acsp_v2_digest(&spec_fields(), HashAlgorithm::Sha3_512),
            acsp_v2_digest(&spec_fields(), HashAlgorithm::Sha512)
        );
    }

    /// callback_urls.txt: verifier XtPf… and secret B98O… give the documented values; the
    /// signature_protocols example userChallenge matches its verifier too.
    #[test]
    fn spec_example_user_challenge_and_secret_digest() {
        assert_eq!(
            user_challenge("XtPfaGa8JnGtYrJjboooUf0KfY9sMEHrWFpSQrsUv9c"),
            "GnsWXXEjTCKR89fj9uo5u5ReBZ9JR7_pezLAI5jMS00"
        );
        let secret = STANDARD
            .decode("B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps=")
            .unwrap();
        assert_eq!(
            session_secret_digest(&secret),
            "U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc"
        );
    }

    #[test]
    fn generators_have_documented_format() {
        let mut rng = rand_core::OsRng;
        let sr = generate_server_random(&mut rng);
        assert!(sr.len() >= 24 && super::super::types::is_base64_pattern(&sr));
        assert_ne!(sr, generate_server_random(&mut rng));
        let v = generate_user_challenge_verifier(&mut rng);
        let uc = user_challenge(&v);
        assert_eq!(uc.len(), 43);
        assert!(
            uc.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
