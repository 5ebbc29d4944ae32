//! Micro-benchmarks of the protocol's hot paths, each beside the plain
//! copy it is measured against (`cargo bench -p potential-runtime`):
//!
//! - encoding and decoding 50,001 weights (a 50,000-token `logw_next`
//!   reply) against copying the same 400 KB;
//! - cutting 2,000 small frames out of one read against copying the bytes.

use std::hint::black_box;

use divan::Bencher;
use potential_core::{Method, wire};
use potential_runtime::protocol::frame::{FrameDecoder, MAX_FRAME_LEN, encode_frame};

fn main() {
    // Not needed by these benchmarks, but the rule for every binary that
    // may start workers: first line of main.
    potential_runtime::init();
    divan::main();
}

fn weights() -> Vec<f64> {
    (0..50_001).map(|i| -f64::from(i % 7)).collect()
}

#[divan::bench]
fn weights_encode_then_decode(bencher: Bencher) {
    let values = weights();
    let mut buf = Vec::with_capacity(8 * values.len() + 1);
    bencher.bench_local(|| {
        buf.clear();
        wire::encode_values(black_box(&values), &mut buf);
        black_box(wire::decode_rows(&buf, Method::LogwNext, 1, values.len()).unwrap())
    });
}

/// The reference: copy the 400 KB into a reused buffer and into a new vector.
#[divan::bench]
fn weights_copy_reference(bencher: Bencher) {
    let values = weights();
    let mut buf: Vec<f64> = Vec::with_capacity(values.len());
    bencher.bench_local(|| {
        buf.clear();
        buf.extend_from_slice(black_box(&values));
        black_box(buf.to_vec())
    });
}

fn small_frames() -> Vec<u8> {
    (0..2000u64)
        .flat_map(|id| encode_frame(id, &[0, 1, 2, 3, 4, 5, 6, 7, 8]))
        .collect()
}

#[divan::bench]
fn frames_decode_2000(bencher: Bencher) {
    let stream = small_frames();
    let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
    bencher.bench_local(|| {
        decoder.push(black_box(&stream));
        let mut sum = 0u64;
        while let Some(frame) = decoder.next_frame().unwrap() {
            sum += frame.id + frame.payload.len() as u64;
        }
        black_box(sum)
    });
}

/// The reference: copy the same bytes once.
#[divan::bench]
fn frames_copy_reference(bencher: Bencher) {
    let stream = small_frames();
    let mut buf = Vec::with_capacity(stream.len());
    bencher.bench_local(|| {
        buf.clear();
        buf.extend_from_slice(black_box(&stream));
        black_box(buf.len())
    });
}
