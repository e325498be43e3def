//! Detached CAdES signatures as `tandem verify` reads them (a `.p7s` from anyone): the
//! validation's CMS parser `validation::cms::der_from_pem_or_der` and `cms::parse`, then
//! `validation::examine` (every step but revocation) with no trust anchor and a fixed
//! document digest.
//!
//! Properties: nothing panics; with no trust anchor no signature ever reaches the
//! revocation step or passes.

#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tandem_rp::client::revocation::RevocationOptions;
use tandem_rp::documents::DocumentHash;
use tandem_rp::report::Indication;
use tandem_rp::validation::{self, Examination, ValidationContext};

fuzz_target!(|data: &[u8]| {
    if let Ok(der) = validation::cms::der_from_pem_or_der(data) {
        let _ = validation::cms::parse(&der);
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let Ok(ctx) = ValidationContext::new(Vec::new(), now, RevocationOptions::default()) else {
        return;
    };
    let mut digest = |h: DocumentHash| Ok(vec![0x5a; h.output_len()]);
    match validation::examine(data, &mut digest, &ctx) {
        Examination::Decided(v) => assert_ne!(
            v.result.status.indication(),
            Indication::TotalPassed,
            "passed without a trust anchor"
        ),
        Examination::NeedsRevocation(_) => panic!("a chain without a trust anchor"),
    }
});
