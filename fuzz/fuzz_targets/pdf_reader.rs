//! PDFs as `tandem verify` and `tandem rp-api sign-pades` receive them: anyone's file, read
//! by `documents::pdf::reader::PdfReader` (trailer and cross-reference sections from the
//! end, objects on demand, object streams), then `validation::pdf::find_signatures`
//! (AcroForm fields and their signature dictionaries), `check_byte_range` and `trim_cms`.
//!
//! Properties: nothing panics and nothing loops; an accepted `/ByteRange` lies within the
//! file with the first range starting at 0 and the gap after it; a trimmed CMS is a prefix of
//! `/Contents` starting with a SEQUENCE tag.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use tandem_rp::documents::pdf::reader::PdfReader;
use tandem_rp::validation::pdf::{check_byte_range, find_signatures, trim_cms};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = PdfReader::open(Cursor::new(data)) else {
        return;
    };
    // Loading every object the cross-reference sections name exercises the object parser,
    // object streams and stream decoding.
    for n in 0..reader.size().min(64) {
        let _ = reader.object(n);
    }
    let Ok(signatures) = find_signatures(&mut reader) else {
        return;
    };
    let len = reader.len();
    let mut file = reader.into_inner();
    for sig in &signatures {
        if let Ok(r) = check_byte_range(sig, &mut file, len) {
            assert!(r.a < r.b, "the gap follows the first range");
            assert!(r.b + r.c <= len, "the second range lies within the file");
        }
        if let Ok(cms) = trim_cms(&sig.contents) {
            assert!(sig.contents.starts_with(cms));
            assert_eq!(cms.first(), Some(&0x30));
        }
    }
});
