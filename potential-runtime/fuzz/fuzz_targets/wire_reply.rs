//! Arbitrary payloads as replies and as calls: decoding gives values or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use potential_core::wire;

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode_values(data, "batch_complete", data.len() / 8);
    let _ = wire::decode_description::<char>(data);
    let _ = wire::decode_call::<u32>(data);
    let _ = wire::decode_call::<String>(data);
});
