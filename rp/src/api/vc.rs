//! Verification codes (notification_based_flows.txt).
//!
//! Authentication: the RP and the app both compute
//! `integer(SHA-256(rpChallenge bytes)[-2:]) mod 10000`, zero-padded to 4 digits, from the
//! decoded rpChallenge. Signing: the server generates a random `numeric4` code and returns
//! it in the start response (the RP shows it as received).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRngCore;

/// VC of a notification authentication from the raw rpChallenge bytes.
pub fn authentication_vc(rp_challenge: &[u8]) -> String {
    // The same rule as the device's code (one implementation, in client-core).
    tandem_client_core::vc::verification_code(rp_challenge)
}

/// VC from the Base64 rpChallenge as it appears in the request; `None` if not Base64.
pub fn authentication_vc_b64(rp_challenge_b64: &str) -> Option<String> {
    STANDARD
        .decode(rp_challenge_b64)
        .ok()
        .map(|b| authentication_vc(&b))
}

/// A uniformly random `numeric4` code for a notification signing session.
pub fn generate_numeric4(rng: &mut impl CryptoRngCore) -> String {
    loop {
        let mut b = [0u8; 2];
        rng.fill_bytes(&mut b);
        let n = u16::from_be_bytes(b);
        // 60000 is the largest multiple of 10000 below 65536: reject the rest to stay uniform.
        if n < 60_000 {
            return format!("{:04}", n % 10_000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// notification_based_flows.txt, "Example 1. Verification code": 7180.
    #[test]
    fn spec_example() {
        let rp = "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg==";
        assert_eq!(authentication_vc_b64(rp).as_deref(), Some("7180"));
        assert_eq!(authentication_vc_b64("not base64!"), None);
    }

    #[test]
    fn zero_padded() {
        // Find an input whose code is below 1000 and check the padding.
        let v = (0u32..)
            .map(|i| authentication_vc(&i.to_be_bytes()))
            .find(|v| v.starts_with('0'))
            .unwrap();
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn numeric4_format() {
        let mut rng = rand_core::OsRng;
        for _ in 0..100 {
            let v = generate_numeric4(&mut rng);
            assert_eq!(v.len(), 4);
            assert!(v.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
