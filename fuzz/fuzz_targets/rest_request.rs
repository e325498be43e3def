//! REST request bodies of the Smart-ID RP API v3 session starts (and the two other POST
//! routes) with their path parameter, through the handlers' parsing and validation.
//!
//! Input: `route byte || path parameter || 0x00 || JSON body`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_server::rest::fuzz_api;

fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let (path, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    // axum hands a path parameter over as a (percent-decoded) UTF-8 string.
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let _ = fuzz_api::start_request(usize::from(route), path, body);
});
