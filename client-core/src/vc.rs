//! Verification codes shown to the user.

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// Label for [`matching_code`].
const MATCH_LABEL: &[u8] = b"tandem-registration-match-v1";

/// `integer(SHA-256(bytes)[-2:]) mod 10000`, zero-padded to four digits.
fn four_digits(hash: &[u8]) -> String {
    let n = u16::from_be_bytes([hash[30], hash[31]]) % 10_000;
    format!("{n:04}")
}

/// The Smart-ID verification code of `digest` (the raw `rpChallenge` bytes, or the hash being
/// signed): `integer(SHA-256(digest)[-2:]) mod 10000`, four digits.
pub fn verification_code(digest: &[u8]) -> String {
    four_digits(&Sha256::digest(digest))
}

/// Uniform integer in `[0, bound)` by rejection sampling (`bound > 0`).
fn uniform_below(rng: &mut (impl CryptoRng + RngCore), bound: u32) -> u32 {
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let v = rng.next_u32();
        if v < zone {
            return v % bound;
        }
    }
}

/// Three distinct four-digit codes for the "choose the right code" screen: `correct` at a
/// uniformly random position, two uniformly random distinct decoys.
pub fn vc_choices(correct: &str, rng: &mut (impl CryptoRng + RngCore)) -> Vec<String> {
    let mut codes = vec![correct.to_owned()];
    while codes.len() < 3 {
        let c = format!("{:04}", uniform_below(rng, 10_000));
        if !codes.contains(&c) {
            codes.push(c);
        }
    }
    let pos = uniform_below(rng, 3) as usize;
    codes.swap(0, pos);
    codes
}

/// Code the user compares between the registration portal and the device:
/// `integer(SHA-256("tandem-registration-match-v1" || registration_id || device_challenge)[-2:])
/// mod 10000`, four digits.
pub fn matching_code(registration_id: &str, device_challenge: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(MATCH_LABEL);
    h.update(registration_id.as_bytes());
    h.update(device_challenge);
    four_digits(&h.finalize())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn known_values_from_sha256sum() {
        // printf 'abc' | sha256sum  -> ...0015ad ; 0x15ad = 5549
        assert_eq!(verification_code(b"abc"), "5549");
        // printf '' | sha256sum -> ...52b855 ; 0xb855 = 47189 -> 7189
        assert_eq!(verification_code(b""), "7189");
        // printf 'tandem-registration-match-v1reg-1\x01\x02\x03' | sha256sum -> ...15b81d
        // 0xb81d = 47133 -> 7133
        assert_eq!(matching_code("reg-1", &[1, 2, 3]), "7133");
    }

    #[test]
    fn zero_padded() {
        // Find an input whose code is below 1000 and check the padding.
        let c = (0u32..)
            .map(|i| verification_code(&i.to_be_bytes()))
            .find(|c| c.starts_with('0'))
            .unwrap();
        assert_eq!(c.len(), 4);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn choices_are_distinct_and_contain_correct_everywhere() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut seen = [false; 3];
        for _ in 0..200 {
            let v = vc_choices("0420", &mut rng);
            assert_eq!(v.len(), 3);
            assert!(
                v.iter()
                    .all(|c| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()))
            );
            assert!(v[0] != v[1] && v[1] != v[2] && v[0] != v[2]);
            let pos = v.iter().position(|c| c == "0420").unwrap();
            seen[pos] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
