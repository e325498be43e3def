//! ACSP_V2 (authentication signature protocol): the payload built from the session's and
//! the app's fields, its digest, and the server's check of the message `x` the app encoded
//! from it (`encoding::verify_encoding`); the app's `interactionTypeUsed` and the session's
//! `interactions` as the confirmation reads them.
//!
//! Input: `selector bytes (4) || fields separated by 0x00`, the last field being the
//! app's encoded message (raw bytes).
//!
//! Properties: nothing panics; the payload has exactly eleven `|`-separated fields holding
//! the inputs when no input contains `|` (so it is unambiguous); the server accepts the
//! app's own PKCS#1 v1.5 and PSS encodings of the digest, and accepts an arbitrary message
//! under PKCS#1 v1.5 only if it is exactly the canonical encoding; decoded interactions
//! encode back to an equal list.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use tandem_client_core::encoding::{self, HashAlgorithm, SignatureScheme};
use tandem_client_core::rp_api::user_challenge;
use tandem_rp::api::acsp::{AcspV2Fields, acsp_v2_digest, acsp_v2_payload};
use tandem_rp::api::types::{
    self as t, FlowType, InteractionFlow, InteractionType, decode_interactions, encode_interactions,
};

const TYPES: [InteractionType; 3] = [
    InteractionType::DisplayTextAndPin,
    InteractionType::ConfirmationMessage,
    InteractionType::ConfirmationMessageAndVerificationCodeChoice,
];
const FLOWS: [FlowType; 4] = [
    FlowType::Qr,
    FlowType::Web2App,
    FlowType::App2App,
    FlowType::Notification,
];
const HASHES: [(t::HashAlgorithm, HashAlgorithm); 6] = [
    (t::HashAlgorithm::Sha256, HashAlgorithm::Sha256),
    (t::HashAlgorithm::Sha384, HashAlgorithm::Sha384),
    (t::HashAlgorithm::Sha512, HashAlgorithm::Sha512),
    (t::HashAlgorithm::Sha3_256, HashAlgorithm::Sha3_256),
    (t::HashAlgorithm::Sha3_384, HashAlgorithm::Sha3_384),
    (t::HashAlgorithm::Sha3_512, HashAlgorithm::Sha3_512),
];

fuzz_target!(|data: &[u8]| {
    let Some((sel, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let mut fields = rest.splitn(9, |&b| b == 0);
    let mut next = || String::from_utf8_lossy(fields.next().unwrap_or(&[])).into_owned();
    let (server_random, rp_challenge, verifier, rp_name, brokered, interactions, used, callback) = (
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    );
    let encoded = fields.next().unwrap_or(&[]).to_vec();

    // The app's `interactionTypeUsed` as the confirmation reads it, and the session's list.
    let used_parsed: Option<InteractionType> =
        serde_json::from_value(serde_json::Value::String(used.clone())).ok();
    if let Some(u) = used_parsed {
        assert_eq!(u.as_str(), used);
    }
    let flow = [
        InteractionFlow::DeviceLink,
        InteractionFlow::Notification,
        InteractionFlow::LinkedNotification,
    ][usize::from(sel[3]) % 3];
    if let Ok(list) = decode_interactions(&interactions, flow) {
        let again = decode_interactions(&encode_interactions(&list), flow)
            .unwrap_or_else(|e| panic!("re-encoded interactions refused: {e}"));
        assert_eq!(again, list);
    }

    let user_challenge = user_challenge(&verifier);
    assert_eq!(user_challenge.len(), 43);
    let f = AcspV2Fields {
        scheme_name: "smart-id",
        server_random: &server_random,
        rp_challenge: &rp_challenge,
        user_challenge: &user_challenge,
        relying_party_name: &rp_name,
        brokered_rp_name: (!brokered.is_empty()).then_some(brokered.as_str()),
        interactions: &interactions,
        interaction_type_used: used_parsed.unwrap_or(TYPES[usize::from(sel[0]) % 3]),
        initial_callback_url: (!callback.is_empty()).then_some(callback.as_str()),
        flow_type: FLOWS[usize::from(sel[1]) % 4],
    };
    let payload = acsp_v2_payload(&f);
    if ![&server_random, &rp_challenge, &callback]
        .iter()
        .any(|s| s.contains('|'))
    {
        let parts: Vec<&str> = payload.split('|').collect();
        assert_eq!(parts.len(), 11, "ambiguous payload {payload:?}");
        assert_eq!(parts[2], server_random);
        assert_eq!(parts[3], rp_challenge);
        assert_eq!(parts[4], user_challenge);
        assert_eq!(parts[9], callback);
    }

    let (rp_hash, hash) = HASHES[usize::from(sel[2]) % HASHES.len()];
    let digest = acsp_v2_digest(&f, rp_hash);
    assert_eq!(digest, hash.digest(payload.as_bytes()));
    assert_eq!(digest.len(), hash.output_len());
    // A composite modulus of 2048..=8192 bits (any length, odd ones included).
    let bits = 2048 + usize::from(u16::from_le_bytes([sel[0], sel[1]]) % 6145);
    let canonical = encoding::encode_pkcs1v15(hash, &digest, bits).expect("long enough");
    encoding::verify_encoding(SignatureScheme::Pkcs1v15, hash, &digest, &canonical, bits)
        .expect("the app's PKCS#1 v1.5 encoding is refused");
    let mut rng = rand_chacha::ChaCha8Rng::from_seed([sel[3]; 32]);
    let pss = encoding::encode_pss(hash, &digest, bits, &mut rng).expect("long enough");
    encoding::verify_encoding(SignatureScheme::Pss, hash, &digest, &pss, bits)
        .expect("the app's PSS encoding is refused");

    // What the app sent, judged as the server judges it.
    if encoding::verify_encoding(SignatureScheme::Pkcs1v15, hash, &digest, &encoded, bits).is_ok() {
        assert_eq!(
            encoded, canonical,
            "a non-canonical PKCS#1 v1.5 encoding was accepted"
        );
    }
    let _ = encoding::verify_encoding(SignatureScheme::Pss, hash, &digest, &encoded, bits);
    // The app's message padded to the composite length, as a fuzzer would not find it alone.
    if encoded.len() < bits.div_ceil(8) {
        let mut padded = vec![0u8; bits.div_ceil(8) - encoded.len()];
        padded.extend_from_slice(&encoded);
        let _ = encoding::verify_encoding(SignatureScheme::Pss, hash, &digest, &padded, bits);
        if let Some(last) = padded.last_mut() {
            *last = 0xbc;
        }
        let _ = encoding::verify_encoding(SignatureScheme::Pss, hash, &digest, &padded, bits);
    }
});
