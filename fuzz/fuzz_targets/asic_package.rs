//! ASiC-E packages as `tandem verify` reads them (a ZIP from anyone):
//! `documents::asic::read_package` with small limits.
//!
//! Properties: nothing panics; an accepted package holds at least one document, at most
//! `max_entries` entries, exactly one main document first, and its metadata within
//! `max_metadata_size`.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tandem_rp::documents::asic::{PackageLimits, Role, read_package};

fuzz_target!(|data: &[u8]| {
    let limits = PackageLimits {
        max_entries: 16,
        max_entry_size: 64 * 1024,
        max_total_size: 256 * 1024,
        max_ratio: 100,
        max_metadata_size: 16 * 1024,
    };
    if let Ok(p) = read_package(Cursor::new(data), &limits) {
        assert!(!p.documents.is_empty(), "a package without documents");
        assert!(p.documents.len() <= limits.max_entries);
        assert_eq!(p.documents[0].entry.role, Role::Main, "main document first");
        let mains = p.documents.iter().filter(|d| d.entry.role == Role::Main).count();
        assert_eq!(mains, 1, "one main document");
        for d in &p.documents {
            assert!(d.signature.len() as u64 <= limits.max_metadata_size);
        }
        if let Some(proof) = &p.proof_of_origin {
            assert!(proof.len() as u64 <= limits.max_metadata_size);
        }
    }
});
