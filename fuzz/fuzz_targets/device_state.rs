//! The device state file (`DeviceState::from_json_bytes`, docs/DEVICE_STATE.md): what the
//! app reads back from its own storage, which may be corrupted, truncated or replaced.
//!
//! Properties: no panic; an accepted file serialises again (`to_json_bytes`), and that
//! form reads back to a state that serialises to the same bytes (canonical round trip).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_client_core::state::DeviceState;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = DeviceState::from_json_bytes(data) else {
        return;
    };
    let json = state
        .to_json_bytes()
        .unwrap_or_else(|e| panic!("an accepted state does not serialise: {e}"));
    let again = DeviceState::from_json_bytes(&json)
        .unwrap_or_else(|e| panic!("a serialised state does not read back: {e}"));
    let json2 = again.to_json_bytes().expect("serialises");
    assert_eq!(
        json.as_slice(),
        json2.as_slice(),
        "state changed in the round trip"
    );
});
