//! Arbitrary bytes, cut into arbitrary pieces, through the frame decoder:
//! it must never panic, never return a frame over its limit, and every frame
//! it returns must re-encode to exactly the bytes it consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use potential_runtime::protocol::frame::{FrameDecoder, encode_frame};

fuzz_target!(|data: &[u8]| {
    let Some((&shape, bytes)) = data.split_first() else {
        return;
    };
    let max = 8 + usize::from(shape & 0x3f) * 64;
    let cut = usize::from(shape >> 6) * 97 + 1;
    let mut decoder = FrameDecoder::new(max);
    let mut consumed = Vec::new();
    'feed: for piece in bytes.chunks(cut) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.payload.len() + 8 <= max);
                    consumed.extend(encode_frame(frame.id, frame.payload).unwrap());
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    assert_eq!(&consumed[..], &bytes[..consumed.len()]);
});
