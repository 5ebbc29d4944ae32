//! Length-prefixed frames and their incremental decoder.
//!
//! ```text
//! +----------------+----------------+------------------------+
//! | len: u32 (LE)  | id: u64 (LE)   | payload: len - 8 bytes |
//! +----------------+----------------+------------------------+
//! ```
//!
//! The decoder checks the length before it buffers a byte of the frame, so
//! a peer cannot make it allocate more than the limit, and it keeps its
//! buffer from frame to frame: a 400 KB reply is read into memory that is
//! already mapped (a fresh 400 KB buffer costs about 260 µs of page faults
//! under glibc's trimming on the main thread).

use std::fmt;

use crate::tuning::{READ_CHUNK, SHRINK_ABOVE};

/// Bytes before the payload: the length and the id.
pub const HEADER_LEN: usize = 12;

/// The largest length field accepted after the handshake (id + payload):
/// 1 GiB, room for `batch_logw_next` over a large vocabulary and many
/// contexts, and far from what a garbage length usually reads as.
pub const MAX_FRAME_LEN: usize = 1 << 30;

/// A frame that breaks the protocol; the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The length field exceeds the limit.
    TooLarge {
        /// The length field.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The length field is shorter than the id.
    TooShort {
        /// The length field.
        len: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            FrameError::TooShort { len } => {
                write!(f, "frame of {len} bytes has no room for its id")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// One decoded frame, borrowed from the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The request id.
    pub id: u64,
    /// The payload.
    pub payload: &'a [u8],
}

/// Starts a frame with id `id` at the end of `out`; returns where it
/// starts, for [`finish_frame`]. Append the payload in between.
pub fn begin_frame(out: &mut Vec<u8>, id: u64) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&id.to_le_bytes());
    start
}

/// Writes the length of the frame begun at `start`, checking it against `max`.
pub fn finish_frame(out: &mut [u8], start: usize, max: usize) -> Result<(), FrameError> {
    let len = length_field(out.len() - start - 4, max)?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// The length field of a frame whose id and payload take `len` bytes:
/// an error when `len` exceeds `max` or the field's 32 bits (4 GiB), the
/// one check of every frame written.
fn length_field(len: usize, max: usize) -> Result<u32, FrameError> {
    match u32::try_from(len) {
        Ok(field) if len <= max => Ok(field),
        _ => Err(FrameError::TooLarge {
            len,
            max: max.min(u32::MAX as usize),
        }),
    }
}

/// A whole frame in a new vector; an error ([`FrameError::TooLarge`]) when
/// the payload does not fit the 32-bit length field (4 GiB), checked
/// before anything is copied.
///
/// ```
/// use potential_runtime::protocol::frame::{encode_frame, FrameDecoder, MAX_FRAME_LEN};
/// let bytes = encode_frame(7, b"hi").unwrap();
/// let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
/// decoder.push(&bytes);
/// let frame = decoder.next_frame().unwrap().unwrap();
/// assert_eq!((frame.id, frame.payload), (7, &b"hi"[..]));
/// ```
pub fn encode_frame(id: u64, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let len = length_field(HEADER_LEN - 4 + payload.len(), usize::MAX)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Cuts a byte stream into frames.
///
/// Read into [`spare`](Self::spare), report the count with
/// [`advance`](Self::advance), then take frames with
/// [`next_frame`](Self::next_frame) until it gives `None`.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_len: usize,
    /// The length field of the frame returned last.
    last_len: usize,
}

impl FrameDecoder {
    /// A decoder that refuses length fields above `max_len`.
    pub fn new(max_len: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_len,
            last_len: 0,
        }
    }

    /// Changes the limit (the pool raises it once a hello is accepted).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The length field of the frame at the front, once its 4 bytes are in.
    fn front_len(&self) -> Option<usize> {
        let head = self.buf.get(self.start..self.start + 4)?;
        (self.buffered() >= 4)
            .then(|| u32::from_le_bytes(head.try_into().expect("4 bytes")) as usize)
    }

    /// Free space to read into: at least a read chunk, or one whole frame of
    /// the limit when that is smaller (a decoder for a hello buffers a
    /// hello, not 64 KiB); for a frame announced larger, room that grows
    /// with the bytes that have arrived (at most as much again as is
    /// buffered, up to the rest of the frame), so that a peer that
    /// announces 1 GiB and sends nothing costs a read chunk, not 1 GiB of
    /// zeroed memory.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // The frame returned last no longer borrows the buffer: give
            // back the memory a huge frame took once a small one follows.
            if self.buf.len() > SHRINK_ABOVE && self.last_len < SHRINK_ABOVE {
                self.buf.truncate(READ_CHUNK);
                self.buf.shrink_to_fit();
            }
        }
        let chunk = READ_CHUNK.min(4 + self.max_len);
        let needed = match self.front_len() {
            Some(len) if len <= self.max_len => {
                let rest = (4 + len).saturating_sub(self.buffered());
                rest.min(self.buffered().max(chunk))
            }
            _ => HEADER_LEN,
        }
        .max(chunk);
        if self.buf.len() - self.end < needed {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < needed {
                self.buf.resize(self.end + needed, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`spare`](Self::spare).
    pub fn advance(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies bytes in (for tests and the fuzzer; sockets read into `spare`).
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let spare = self.spare();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            self.advance(n);
            bytes = &bytes[n..];
        }
    }

    /// The next whole frame, `None` when more bytes are needed, or the error
    /// that ends the connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        let Some(len) = self.front_len() else {
            return Ok(None);
        };
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        if len < 8 {
            return Err(FrameError::TooShort { len });
        }
        if self.buffered() < 4 + len {
            return Ok(None);
        }
        let at = self.start;
        self.start += 4 + len;
        // The buffer is reset and shrunk at the next `spare`, not here: the
        // frame returned borrows it until then.
        self.last_len = len;
        let id = u64::from_le_bytes(self.buf[at + 4..at + 12].try_into().expect("8 bytes"));
        Ok(Some(Frame {
            id,
            payload: &self.buf[at + 12..at + 4 + len],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_decoder_for_small_frames_buffers_one_frame_not_a_read_chunk() {
        let hello = crate::protocol::handshake::HELLO_FRAME_LEN;
        let mut decoder = FrameDecoder::new(hello);
        assert_eq!(decoder.spare().len(), 4 + hello);
        let mut large = FrameDecoder::new(MAX_FRAME_LEN);
        assert_eq!(large.spare().len(), READ_CHUNK);
    }

    fn decode_all(decoder: &mut FrameDecoder) -> Result<Vec<(u64, Vec<u8>)>, FrameError> {
        let mut out = Vec::new();
        while let Some(f) = decoder.next_frame()? {
            out.push((f.id, f.payload.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn a_payload_over_the_length_fields_4_gib_is_an_error_not_a_clamp() {
        let most = u32::MAX as usize - (HEADER_LEN - 4);
        assert_eq!(
            length_field(HEADER_LEN - 4 + most, usize::MAX),
            Ok(u32::MAX)
        );
        let over = HEADER_LEN - 4 + most + 1;
        assert_eq!(
            length_field(over, usize::MAX),
            Err(FrameError::TooLarge {
                len: over,
                max: u32::MAX as usize
            })
        );
        assert_eq!(
            length_field(11, 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        // A real payload one byte too large (zeroed pages are only mapped,
        // never touched: the check comes before the copy).
        #[cfg(target_pointer_width = "64")]
        {
            let payload = vec![0u8; most + 1];
            assert_eq!(
                encode_frame(1, &payload),
                Err(FrameError::TooLarge {
                    len: over,
                    max: u32::MAX as usize
                })
            );
        }
    }

    #[test]
    fn frames_round_trip_across_arbitrary_splits() {
        let frames: Vec<(u64, Vec<u8>)> =
            vec![(1, vec![]), (2, vec![9; 100_000]), (u64::MAX, vec![1])];
        let stream: Vec<u8> = frames
            .iter()
            .flat_map(|(id, p)| encode_frame(*id, p).unwrap())
            .collect();
        for chunk in [1, 3, 12, 4096, stream.len()] {
            let mut d = FrameDecoder::new(MAX_FRAME_LEN);
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                got.extend(decode_all(&mut d).unwrap());
            }
            assert_eq!(got, frames);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn oversized_and_short_lengths_are_refused_before_buffering() {
        let mut d = FrameDecoder::new(100);
        d.push(&u32::MAX.to_le_bytes());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                max: 100
            })
        );
        assert!(
            d.spare().len() < 1 << 20,
            "the decoder must not grow to a claimed length"
        );
        let mut d = FrameDecoder::new(100);
        d.push(&3u32.to_le_bytes());
        assert_eq!(d.next_frame(), Err(FrameError::TooShort { len: 3 }));
    }

    #[test]
    fn a_small_frame_after_a_huge_one_decodes_and_the_memory_is_given_back() {
        let mut d = FrameDecoder::new(MAX_FRAME_LEN);
        let huge = vec![0; SHRINK_ABOVE + 1];
        d.push(&encode_frame(1, &huge).unwrap());
        assert_eq!(d.next_frame().unwrap().unwrap().payload.len(), huge.len());
        let small = vec![7; 100_000];
        d.push(&encode_frame(2, &small).unwrap());
        let frame = d.next_frame().unwrap().unwrap();
        assert_eq!((frame.id, frame.payload), (2, &small[..]));
        d.push(&encode_frame(3, b"x").unwrap());
        assert_eq!(d.next_frame().unwrap().unwrap().payload, b"x");
        assert!(
            d.spare().len() <= SHRINK_ABOVE,
            "the buffer of the huge frame is given back once small frames follow"
        );
    }

    #[test]
    fn an_announced_length_is_not_allocated_before_its_bytes_arrive() {
        let mut d = FrameDecoder::new(MAX_FRAME_LEN);
        d.push(&((MAX_FRAME_LEN - 1) as u32).to_le_bytes());
        assert_eq!(d.next_frame(), Ok(None));
        assert!(d.spare().len() <= 2 * READ_CHUNK);
        // As bytes come, the room grows with them (at most doubling).
        d.push(&vec![1; 4 * READ_CHUNK]);
        assert!(d.spare().len() <= 8 * READ_CHUNK);
    }

    #[test]
    fn finish_frame_enforces_the_limit() {
        let mut out = Vec::new();
        let start = begin_frame(&mut out, 1);
        out.extend_from_slice(&[0; 20]);
        assert!(finish_frame(&mut out, start, 27).is_err());
        finish_frame(&mut out, start, 28).unwrap();
        let mut d = FrameDecoder::new(28);
        d.push(&out);
        assert_eq!(d.next_frame().unwrap().unwrap().payload.len(), 20);
    }

    proptest! {
        /// Whatever bytes arrive, in whatever pieces, the decoder returns
        /// frames or an error and never panics; and every frame it returns
        /// is within the limit.
        #[test]
        fn arbitrary_byte_streams_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            cuts in proptest::collection::vec(1usize..512, 1..16),
            max in 8usize..2048,
        ) {
            let mut d = FrameDecoder::new(max);
            let mut rest = &bytes[..];
            let mut cut = cuts.iter().cycle();
            'feed: while !rest.is_empty() {
                let n = (*cut.next().unwrap()).min(rest.len());
                d.push(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match d.next_frame() {
                        Ok(Some(f)) => prop_assert!(f.payload.len() + 8 <= max),
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
        }

        /// Valid frames decode to themselves however the stream is cut.
        #[test]
        fn valid_frames_round_trip(
            frames in proptest::collection::vec((any::<u64>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
            cut in 1usize..700,
        ) {
            let stream: Vec<u8> = frames.iter().flat_map(|(id, p)| encode_frame(*id, p).unwrap()).collect();
            let mut d = FrameDecoder::new(MAX_FRAME_LEN);
            let mut got = Vec::new();
            for piece in stream.chunks(cut) {
                d.push(piece);
                got.extend(decode_all(&mut d).unwrap());
            }
            prop_assert_eq!(got, frames);
        }
    }
}
