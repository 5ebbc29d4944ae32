//! Arbitrary payloads as replies and as calls: decoding gives values or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use potential_core::{Method, wire};

fuzz_target!(|data: &[u8]| {
    // The pool's own decoder, with shapes drawn from the input.
    let width = data.first().map_or(1, |&b| usize::from(b % 8) + 1);
    let _ = wire::decode_rows(data, Method::BatchLogwNext, data.len() / 8 / width, width);
    let _ = wire::decode_rows(data, Method::Complete, 1, 1);
    let _ = wire::check_description::<char>(data, data.len());
    let _ = wire::decode_call::<u32>(data);
    let _ = wire::decode_call::<String>(data);
});
