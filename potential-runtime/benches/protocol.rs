//! Micro-benchmarks of the protocol's hot paths, each beside the plain
//! copy it is measured against (`cargo bench -p potential-runtime`):
//!
//! - encoding and decoding 50,001 weights (a 50,000-token `logw_next`
//!   reply) against copying the same 400 KB;
//! - cutting 2,000 small frames out of one read against copying the bytes;
//! - the shared-memory path (Linux): placing 400 KB of weights in a ring
//!   and reading them back into a row, alone and with the ring's
//!   bookkeeping, against the same copies between private buffers; and
//!   the floor of any transport between two processes: 400 KB written on
//!   one core and read on another (two threads that hand the region over
//!   by spinning, no system call).

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

/// A grammar's mask over 50,000 tokens (about one token in eight allowed)
/// through the wire: `serve` sends it as bits and the pool writes the
/// `f64`s back (see `weights_copy_reference`).
#[divan::bench]
fn mask_encode_then_decode(bencher: Bencher) {
    let mask: Vec<f64> = (0..50_001u32)
        .map(|i| {
            if i.wrapping_mul(2_654_435_761) % 8 == 0 {
                0.0
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    let mut buf = Vec::new();
    bencher.bench_local(|| {
        buf.clear();
        wire::encode_rows(&[black_box(&mask)], &mut buf, None);
        black_box(wire::decode_rows(&buf, Method::LogwNext, 1, mask.len(), None).unwrap())
    });
}

#[divan::bench]
fn weights_encode_then_decode(bencher: Bencher) {
    let values = weights();
    let mut buf = Vec::with_capacity(8 * values.len() + 1);
    bencher.bench_local(|| {
        buf.clear();
        wire::encode_values(black_box(&values), &mut buf);
        black_box(wire::decode_rows(&buf, Method::LogwNext, 1, values.len(), None).unwrap())
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
        .flat_map(|id| encode_frame(id, &[0, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap())
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

/// The bytes of a 50,000-token reply, as a worker's `serve` writes them.
#[cfg(potential_linux)]
fn weight_bytes() -> Vec<u8> {
    weights().iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A ring's two ends over one region, as a worker and its pool hold them.
#[cfg(potential_linux)]
fn ring_pair() -> (
    potential_runtime::shared::RingWriter,
    potential_runtime::shared::RingReader,
) {
    use potential_runtime::shared::{Region, RingReader, RingWriter};
    let region = Region::create(64 << 20).expect("a region");
    let peer = Region::open(region.fd().try_clone_to_owned().expect("a descriptor"))
        .expect("the peer's mapping");
    (RingWriter::new(peer), RingReader::new(region))
}

/// One reply through the ring: the worker's copy in (checking each value
/// as a log weight, as the worker does), the pool's copy out into a new
/// row, the cursor handed back.
#[cfg(potential_linux)]
#[divan::bench]
fn shared_ring_put_then_take(bencher: Bencher) {
    let values = weights();
    let (mut writer, mut reader) = ring_pair();
    bencher.bench_local(|| {
        let placed = writer.put(&[black_box(&values)]).expect("room");
        let mut rows = Vec::with_capacity(1);
        reader
            .take_rows(placed, values.len(), &mut rows)
            .expect("in order");
        black_box(rows)
    });
}

/// A burst of 64 replies of 400 KB after a lone one (what a batch of
/// particles asks right after a quiet moment): all 64 are placed before
/// any is read, then read in order. Panics if the ring refuses one, as it
/// did when the tail skipped after the lone reply counted as used.
#[cfg(target_os = "linux")]
#[divan::bench]
fn shared_ring_burst_after_a_lone_reply(bencher: Bencher) {
    let values = weights();
    let (mut writer, mut reader) = ring_pair();
    bencher.bench_local(|| {
        let lone = writer.put(&[&values]).expect("room");
        reader.release(lone).expect("in order");
        let placed: Vec<_> = (0..64)
            .map(|_| {
                writer
                    .put(&[black_box(&values)])
                    .expect("room for the burst")
            })
            .collect();
        let mut rows = Vec::with_capacity(64);
        for p in placed {
            reader
                .take_rows(p, values.len(), &mut rows)
                .expect("in order");
        }
        black_box(rows)
    });
}

/// The two copies alone, into and out of the region, without the ring.
#[cfg(potential_linux)]
#[divan::bench]
fn shared_region_write_then_read(bencher: Bencher) {
    let bytes = weight_bytes();
    let region = potential_runtime::shared::Region::create(64 << 20).expect("a region");
    bencher.bench_local(|| {
        region.write(0, black_box(&bytes)).expect("in bounds");
        let mut row = Vec::with_capacity(bytes.len() / 8);
        region
            .read_f64s(0, bytes.len() / 8, &mut row)
            .expect("in bounds");
        black_box(row)
    });
}

/// The reference for both: the same two copies between private buffers.
#[cfg(potential_linux)]
#[divan::bench]
fn shared_copy_reference(bencher: Bencher) {
    let bytes = weight_bytes();
    let mut middle = vec![0u8; bytes.len()];
    bencher.bench_local(|| {
        middle.copy_from_slice(black_box(&bytes));
        let row: Vec<f64> = middle
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        black_box(row)
    });
}

/// 400 KB written by one thread and read into a new row by another, the
/// threads handing the region to each other by spinning: what moving the
/// values between cores costs, whatever carries them. On a 2-core VM it
/// was 50 µs, against 16 µs for the same two copies on one core
/// (`shared_copy_reference`): the part of `worker_logw_next_50k` that no
/// transport removes.
#[cfg(potential_linux)]
#[divan::bench]
fn shared_cross_core_handoff(bencher: Bencher) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let bytes = weight_bytes();
    let region = Arc::new(potential_runtime::shared::Region::create(64 << 20).expect("a region"));
    // Odd: the writer's turn; even: the reader's. u64::MAX: stop.
    let turn = Arc::new(AtomicU64::new(0));
    let writer = std::thread::spawn({
        let (region, turn) = (region.clone(), turn.clone());
        move || {
            loop {
                let t = turn.load(Ordering::Acquire);
                if t == u64::MAX {
                    return;
                }
                if t % 2 == 1 {
                    region.write(0, &bytes).expect("in bounds");
                    turn.store(t + 1, Ordering::Release);
                }
                std::hint::spin_loop();
            }
        }
    });
    let width = 50_001;
    bencher.bench_local(|| {
        let asked = turn.fetch_add(1, Ordering::AcqRel) + 1;
        while turn.load(Ordering::Acquire) == asked {
            std::hint::spin_loop();
        }
        let mut row = Vec::with_capacity(width);
        region.read_f64s(0, width, &mut row).expect("in bounds");
        black_box(row)
    });
    turn.store(u64::MAX, Ordering::Release);
    writer.join().expect("the writer thread");
}
