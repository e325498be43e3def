//! The protobuf request messages of the gRPC services (device and relying party): decoded
//! with prost as tonic does, re-encoded (canonical form round trip), then converted and
//! checked by the handlers' own functions up to the first lookup.
//!
//! Input: `message selector byte || protobuf bytes`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_server::service::fuzz_api;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let _ = fuzz_api::request(usize::from(which), bytes);
});
