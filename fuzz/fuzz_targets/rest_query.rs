//! The query string (and session id) of `GET {base}/session/{id}?timeoutMs=`, as axum
//! extracts it and the handler checks it.
//!
//! Input: `session id || 0x00 || query string` (without the `?`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_server::rest::fuzz_api;

fuzz_target!(|data: &[u8]| {
    let (id, query) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"0193e4c4-8a30-7000-8000-000000000000"[..], data),
    };
    let (Ok(id), Ok(query)) = (std::str::from_utf8(id), std::str::from_utf8(query)) else {
        return;
    };
    if let Ok(t) = fuzz_api::status_query(id, query) {
        // An accepted query names no timeout outside the spec's range.
        assert!((1000..=120_000).contains(&t));
    }
});
