//! Arbitrary payloads as replies and as calls: decoding gives values or an
//! error, never a panic; a SHARED reply goes through the same decoder, to
//! a stand-in for the shared memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use potential_core::wire::{self, Placed, TakeValues};
use potential_core::Method;

/// Shared memory of 4 KiB of zeros: what a placement inside it holds, and
/// an error for one outside.
struct Memory;

impl TakeValues for Memory {
    fn take(
        &mut self,
        placed: Placed,
        width: usize,
        rows: &mut Vec<Vec<f64>>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if placed.position.saturating_add(placed.len) > 4096 {
            return Err("out of bounds".into());
        }
        let count = placed.len as usize / 8 / width.max(1);
        rows.extend((0..count).map(|_| vec![0.0; width]));
        Ok(())
    }

    fn hand_back(&mut self, _: Placed) {}
}

fuzz_target!(|data: &[u8]| {
    // The pool's own decoder, with shapes drawn from the input.
    let width = data.first().map_or(1, |&b| usize::from(b % 8) + 1);
    let rows = data.len() / 8 / width;
    let _ = wire::decode_rows(data, Method::BatchLogwNext, rows, width, None);
    let _ = wire::decode_rows(data, Method::BatchLogwNext, rows, width, Some(&mut Memory));
    let _ = wire::decode_rows(data, Method::Complete, 1, 1, Some(&mut Memory));
    wire::discard_reply(data, Some(&mut Memory));
    let _ = wire::check_description::<char>(data, data.len());
    let _ = wire::decode_call::<u32>(data);
    let _ = wire::decode_call::<String>(data);
});
