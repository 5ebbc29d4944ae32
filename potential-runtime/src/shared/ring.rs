//! The reply ring: a worker places the values of its large replies one
//! after the other in a [`Region`], and its pool reads them in the same
//! order and hands the space back.
//!
//! Positions only grow (a `u64` of bytes never wraps in practice); a
//! position's place in the data is `position % capacity`. A reply is
//! never cut at the end of the data: when it does not fit there, the
//! writer skips to the start, and the skipped bytes count as used until
//! the reader passes them. The reader publishes how far it has read in
//! the region's cursor; the writer reuses space only behind it.
//!
//! The order is the protocol: the writer sends the frame that names a
//! placement before the frame of any later one, and the reader takes
//! them in the order their frames arrive, so the cursor moves past a
//! reply only once that reply has been read. A reader that sees a
//! placement behind its cursor, or out of bounds, reports it and copies
//! nothing. A writer that dies mid-copy never sends the frame, so the
//! reader never looks at those bytes.

use std::fmt;
use std::sync::atomic::Ordering;

use potential_core::wire::Placed;

use super::region::Region;

/// Placements start on this boundary (a cache line): replies do not share lines.
pub const ALIGN: u64 = 64;

/// The bytes a placement uses: its length, rounded up to [`ALIGN`].
fn footprint(len: u64) -> u64 {
    len.div_ceil(ALIGN) * ALIGN
}

/// The ring's size in bytes: the region's data, in whole [`ALIGN`]
/// units, so that a placement that fits never crosses the end.
fn ring_capacity(region: &Region) -> u64 {
    region.capacity() as u64 / ALIGN * ALIGN
}

/// The worker's end: places reply bytes in the ring.
#[derive(Debug)]
pub struct RingWriter {
    region: Region,
    capacity: u64,
    /// Where the next placement may start.
    head: u64,
    /// Where the ring last started over while empty: the bytes skipped
    /// then, between the reader's cursor and this position, held nothing
    /// unread, so they are free even before the reader passes them.
    floor: u64,
}

impl RingWriter {
    /// Writes into `region`, from its start.
    pub fn new(region: Region) -> RingWriter {
        RingWriter {
            capacity: ring_capacity(&region),
            region,
            head: 0,
            floor: 0,
        }
    }

    /// Copies `rows`, one after the other, into the ring as little-endian
    /// `f64`s, each row checked as log weights first
    /// ([`Region::write_log_weights`]), and gives where; `None` when they
    /// do not fit in the space the reader has handed back (the caller sends
    /// them some other way: the writer never waits for the reader), or when
    /// one is not a log weight (the space stays free).
    ///
    /// The frame naming the placement must be sent before the frame of any
    /// later placement (see the module's documentation).
    pub fn put(&mut self, rows: &[&[f64]]) -> Option<Placed> {
        let len = rows.iter().map(|row| 8 * row.len() as u64).sum::<u64>();
        if len == 0 || len > self.capacity {
            return None;
        }
        let read = self.region.cursor().load(Ordering::Acquire);
        // A cursor ahead of what was written is the reader's bug: place nothing.
        if read > self.head {
            return None;
        }
        // In use: everything from the reader's cursor to `head` (skipped
        // tails included), except a tail skipped while the ring was empty.
        let used = self.head - read.max(self.floor);
        let at = self.head % self.capacity;
        // A placement that would cross the end starts over at the
        // beginning; so does one into an empty ring, so that calls one at
        // a time reuse the same pages (a page touched for the first time
        // costs a fault in both processes: 100 of them for 400 KB).
        let skip = if at + len > self.capacity || (used == 0 && at != 0) {
            self.capacity - at
        } else {
            0
        };
        // With nothing in use, any placement that fits the ring may follow
        // a skip, and the skipped tail is free for the placements after it
        // (a burst after a quiet moment gets the whole ring, not just what
        // was in use before the ring emptied).
        if used > 0 && used + skip + footprint(len) > self.capacity {
            return None;
        }
        let position = self.head + skip;
        let mut offset = (position % self.capacity) as usize;
        for row in rows {
            if !self.region.write_log_weights(offset, row).ok()? {
                return None;
            }
            offset += 8 * row.len();
        }
        // Placed: only now is the space taken.
        if used == 0 {
            self.floor = position;
        }
        self.head = position + footprint(len);
        Some(Placed { position, len })
    }
}

/// A placement the reader refuses: the writer broke the ring's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPlacement {
    /// The placement.
    pub placed: Placed,
    /// How far the reader had read.
    pub read: u64,
    /// The ring's size.
    pub capacity: u64,
}

impl fmt::Display for BadPlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a reply of {} bytes at position {} does not follow position {} in a ring of {} bytes",
            self.placed.len, self.placed.position, self.read, self.capacity
        )
    }
}

impl std::error::Error for BadPlacement {}

/// The pool's end: reads placements in order and hands their space back.
#[derive(Debug)]
pub struct RingReader {
    region: Region,
    capacity: u64,
    /// How far this reader has read: what the cursor says.
    read: u64,
}

impl RingReader {
    /// Reads from `region`, from its start.
    pub fn new(region: Region) -> RingReader {
        RingReader {
            capacity: ring_capacity(&region),
            region,
            read: 0,
        }
    }

    /// The region, whose descriptor goes to the writer.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Checks that `placed` can be the next placement: at or after what
    /// was read (the frames came in order), not across the end of the
    /// data. Where it lands is the writer's promise (behind the cursor,
    /// see [`RingWriter::put`]); whatever it promises, the copy stays
    /// inside the region.
    fn check(&self, placed: Placed) -> Result<u64, BadPlacement> {
        let at = placed.position % self.capacity.max(1);
        // Bounded by the capacity first, so that the footprint cannot overflow.
        let contiguous = at
            .checked_add(placed.len)
            .is_some_and(|end| end <= self.capacity);
        let in_order = contiguous
            && placed.position >= self.read
            && placed.position.checked_add(footprint(placed.len)).is_some();
        if in_order {
            Ok(at)
        } else {
            Err(BadPlacement {
                placed,
                read: self.read,
                capacity: self.capacity,
            })
        }
    }

    /// Appends the placement's values to `rows`, `width` to a row (the
    /// placement's length must be a whole number of rows: check it
    /// before), then hands its space back.
    pub fn take_rows(
        &mut self,
        placed: Placed,
        width: usize,
        rows: &mut Vec<Vec<f64>>,
    ) -> Result<(), BadPlacement> {
        let at = self.check(placed)? as usize;
        let row_bytes = 8 * width.max(1);
        let count = placed.len as usize / row_bytes;
        rows.reserve(count);
        for i in 0..count {
            let mut row = Vec::with_capacity(width);
            self.region
                .read_f64s(at + i * row_bytes, width, &mut row)
                .map_err(|_| BadPlacement {
                    placed,
                    read: self.read,
                    capacity: self.capacity,
                })?;
            rows.push(row);
        }
        self.release(placed)
    }

    /// Hands the placement's space back without reading it (nobody waits
    /// for its reply any more).
    pub fn release(&mut self, placed: Placed) -> Result<(), BadPlacement> {
        self.check(placed)?;
        self.read = placed.position + footprint(placed.len);
        self.region.cursor().store(self.read, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A writer and a reader over one region, as a worker and its pool have.
    fn pair(capacity: usize) -> (RingWriter, RingReader) {
        let region = Region::create(capacity).unwrap();
        let peer = Region::open(region.fd().try_clone_to_owned().unwrap()).unwrap();
        (RingWriter::new(peer), RingReader::new(region))
    }

    #[test]
    fn a_full_ring_refuses_until_the_reader_hands_space_back() {
        let (mut writer, mut reader) = pair(1024);
        let row = vec![1.0; 48]; // 384 bytes
        let a = writer.put(&[&row]).unwrap();
        let b = writer.put(&[&row]).unwrap();
        assert_eq!((a.position, b.position), (0, 384));
        // 768 used; 384 more would need 1152.
        assert_eq!(writer.put(&[&row]), None);
        let mut rows = Vec::new();
        reader.take_rows(a, 48, &mut rows).unwrap();
        assert_eq!(rows, vec![vec![1.0; 48]]);
        // The tail (256 bytes) is too short: the placement skips to the start.
        let c = writer.put(&[&[2.0; 48]]).unwrap();
        assert_eq!(c.position, 1024);
        reader.release(b).unwrap();
        reader.take_rows(c, 24, &mut rows).unwrap();
        assert_eq!(rows[1..], [vec![2.0; 24], vec![2.0; 24]]);
    }

    #[test]
    fn pieces_placed_together_are_read_back_as_rows() {
        let (mut writer, mut reader) = pair(1024);
        let (a, b) = (vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]);
        let placed = writer.put(&[&a, &b]).unwrap();
        assert_eq!(placed.len, 48);
        let mut rows = Vec::new();
        reader.take_rows(placed, 3, &mut rows).unwrap();
        assert_eq!(rows, [vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
    }

    #[test]
    fn placements_into_an_empty_ring_reuse_its_start() {
        let (mut writer, mut reader) = pair(1024);
        for round in 0..3u64 {
            let placed = writer.put(&[&[1.0; 20]]).unwrap();
            assert_eq!(placed.position, 1024 * round);
            reader.release(placed).unwrap();
        }
    }

    #[test]
    fn a_burst_after_a_lone_reply_gets_the_whole_ring() {
        let (mut writer, mut reader) = pair(4096);
        let row = vec![1.0; 64]; // 512 bytes: 8 fit the ring
        let lone = writer.put(&[&row]).unwrap();
        reader.release(lone).unwrap();
        let burst: Vec<Placed> = (0..8).map_while(|_| writer.put(&[&row])).collect();
        assert_eq!(burst.len(), 8, "{burst:?}");
        assert_eq!(writer.put(&[&row]), None, "the ring is full");
        let mut rows = Vec::new();
        for placed in burst {
            reader.take_rows(placed, 64, &mut rows).unwrap();
        }
        assert!(rows.iter().all(|r| r == &vec![1.0; 64]));
    }

    #[test]
    fn rows_with_a_refused_value_take_no_space() {
        let (mut writer, mut reader) = pair(1024);
        let good = [0.0, -1.0, f64::NEG_INFINITY];
        let first = writer.put(&[&good]).unwrap();
        for bad in [f64::NAN, f64::INFINITY] {
            // Refused in the second row, after the first was copied.
            let rows: [&[f64]; 2] = [&good, &[0.0, bad, 0.0]];
            assert_eq!(writer.put(&rows), None);
        }
        // The next placement follows the first, as if nothing had been tried.
        let second = writer.put(&[&good]).unwrap();
        assert_eq!(second.position, first.position + ALIGN);
        let mut rows = Vec::new();
        reader.take_rows(first, 3, &mut rows).unwrap();
        reader.take_rows(second, 3, &mut rows).unwrap();
        assert_eq!(rows, [good, good]);
        // Refused into an empty ring: a burst still gets all of it.
        assert_eq!(writer.put(&[&[f64::NAN; 8]]), None);
        let burst = (0..16).map_while(|_| writer.put(&[&[0.5; 8]])).count();
        assert_eq!(burst, 16);
    }

    #[test]
    fn placements_out_of_order_or_bounds_are_refused_and_read_nothing() {
        let (mut writer, mut reader) = pair(1024);
        let a = writer.put(&[&[1.0; 8]]).unwrap();
        let b = writer.put(&[&[2.0; 8]]).unwrap();
        reader.release(b).unwrap();
        let mut rows = Vec::new();
        assert!(
            reader.take_rows(a, 8, &mut rows).is_err(),
            "behind the cursor"
        );
        for placed in [
            Placed {
                position: 768,
                len: 1025,
            },
            Placed {
                position: 1000,
                len: 64,
            },
            Placed {
                position: u64::MAX - 8,
                len: 64,
            },
        ] {
            assert!(
                reader.take_rows(placed, 8, &mut rows).is_err(),
                "{placed:?}"
            );
        }
        assert!(rows.is_empty());
    }

    proptest! {
        /// After any history of placements and reads, once the reader has
        /// caught up, a burst gets the whole ring: as many placements of a
        /// size as the ring holds.
        #[test]
        fn a_burst_after_any_history_gets_the_whole_free_room(
            history in proptest::collection::vec((1usize..200, 0usize..4), 0..40),
            size in 1usize..300,
        ) {
            let (mut writer, mut reader) = pair(4096);
            let mut unread = std::collections::VecDeque::new();
            for (len, lag) in history {
                if let Some(placed) = writer.put(&[&vec![0.5; len]]) {
                    unread.push_back(placed);
                }
                while unread.len() > lag {
                    reader.release(unread.pop_front().unwrap()).unwrap();
                }
            }
            for placed in unread.drain(..) {
                reader.release(placed).unwrap();
            }
            let row = vec![2.0; size];
            let fit = 4096 / footprint(8 * row.len() as u64);
            let placed: Vec<Placed> = (0..fit).map_while(|_| writer.put(&[&row])).collect();
            prop_assert_eq!(placed.len() as u64, fit);
            let mut rows = Vec::new();
            for p in placed {
                reader.take_rows(p, size, &mut rows).unwrap();
            }
            prop_assert!(rows.iter().all(|r| r == &vec![2.0; size]));
        }

        /// Whatever a worker claims (any position, any length, any width),
        /// the reader refuses or reads inside the region, and never panics.
        #[test]
        fn arbitrary_placements_never_panic(
            claims in proptest::collection::vec((any::<u64>(), any::<u64>(), 0usize..300), 1..40),
        ) {
            let (_, mut reader) = pair(4096);
            for (position, len, width) in claims {
                let placed = Placed { position, len };
                let mut rows = Vec::new();
                if reader.take_rows(placed, width, &mut rows).is_ok() {
                    prop_assert!(rows.iter().all(|row| row.len() == width));
                }
                let _ = reader.release(placed);
            }
        }

        /// Whatever the sizes, and however far the reader lags, every
        /// value placed is read back intact and in order, and a placement
        /// is refused only when the space handed back is too small.
        #[test]
        fn the_ring_delivers_every_placement_intact(
            sizes in proptest::collection::vec(1usize..200, 1..60),
            lag in 0usize..6,
        ) {
            let (mut writer, mut reader) = pair(2048);
            let mut in_flight = std::collections::VecDeque::new();
            for (n, &size) in sizes.iter().enumerate() {
                let values: Vec<f64> = (0..size).map(|i| (n * 1000 + i) as f64).collect();
                let placed = loop {
                    if let Some(placed) = writer.put(&[&values]) {
                        break placed;
                    }
                    // Refused: only when something is still unread.
                    let (placed, expected): (Placed, Vec<f64>) =
                        in_flight.pop_front().expect("refused with nothing in flight");
                    let mut rows = Vec::new();
                    reader.take_rows(placed, expected.len(), &mut rows).unwrap();
                    prop_assert_eq!(&rows[0], &expected);
                };
                in_flight.push_back((placed, values));
                while in_flight.len() > lag {
                    let (placed, expected) = in_flight.pop_front().unwrap();
                    let mut rows = Vec::new();
                    reader.take_rows(placed, expected.len(), &mut rows).unwrap();
                    prop_assert_eq!(&rows[0], &expected);
                }
            }
        }
    }
}
