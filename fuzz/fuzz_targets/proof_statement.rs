//! The proof of origin of a package (from anyone): the first byte chooses the input.
//! `0`: the rest is a statement's JSON for `OriginStatement::from_json`; an accepted
//! statement serialises to JSON that parses to the same statement. Otherwise: the rest is
//! a proof (DER CMS) for `read_statement_unverified`, `signer_issuer_unverified` and
//! `verify_proof` with no trust anchor.
//!
//! Properties: nothing panics; no proof verifies without a trust anchor.

#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tandem_rp::client::TrustAnchors;
use tandem_rp::documents::origin::{self, OriginStatement};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode == 0 {
        if let Ok(s) = OriginStatement::from_json(rest) {
            let again = OriginStatement::from_json(&s.to_json()).expect("our JSON reads back");
            assert_eq!(again, s, "round trip");
        }
        return;
    }
    let _ = origin::read_statement_unverified(rest);
    let _ = origin::signer_issuer_unverified(rest);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    assert!(
        origin::verify_proof(rest, &TrustAnchors::new(), now).is_err(),
        "a proof verified without a trust anchor"
    );
});
