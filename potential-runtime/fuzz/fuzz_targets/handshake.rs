//! Arbitrary first bytes on a pool's socket: the hello check must refuse
//! them without panicking; only the right secret is ever accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use potential_runtime::protocol::frame::FrameDecoder;
use potential_runtime::protocol::handshake::{HELLO_FRAME_LEN, SECRET_LEN, Secret, check_hello};

const SECRET: [u8; SECRET_LEN] = [0x5a; SECRET_LEN];

fuzz_target!(|data: &[u8]| {
    let secret = Secret::from_bytes(SECRET);
    let mut decoder = FrameDecoder::new(HELLO_FRAME_LEN);
    decoder.push(data);
    if let Ok(Some(frame)) = decoder.next_frame() {
        if check_hello(frame, &secret).is_ok() {
            assert_eq!(&frame.payload[6..6 + SECRET_LEN], &SECRET);
        }
    }
});
