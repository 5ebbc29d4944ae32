//! A region of memory shared with one peer process: a sealed memfd,
//! mapped once, read and written only by copies and one atomic.
//!
//! Every `unsafe` line of the shared-memory path is in this file. The
//! region is never seen as a Rust slice: the peer may write it at any
//! moment (a bug, or a worker dying mid-write), and a `&[u8]` over bytes
//! that change would break what the compiler assumes of it. Bytes go in and
//! out by `copy_nonoverlapping` between raw pointers, after a bounds check,
//! and the one word both sides update (the ring's cursor) is an
//! [`AtomicU64`] on both sides.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use potential_core::all_log_weights;
use rustix::fs::{MemfdFlags, SealFlags};

/// Bytes at the start of a region before its data: the cursor, alone on
/// its cache line so that the peer's writes of data do not bounce it.
pub const HEADER: usize = 64;

/// The seals a region must carry before it is mapped: nobody, the peer
/// included, can shrink it (an access past the end of a shrunk file is
/// `SIGBUS`, not an error) or grow it, or change the seals.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// A shared mapping: the data bytes after [`HEADER`], and the cursor
/// (a `u64` at offset 0).
///
/// Made by [`create`](Region::create) in the parent and by
/// [`open`](Region::open) in the worker that receives its descriptor.
///
/// ```
/// use potential_runtime::shared::Region;
/// let region = Region::create(1 << 16).unwrap();
/// region.write(0, &1.5f64.to_le_bytes()).unwrap();
/// let mut values = Vec::new();
/// region.read_f64s(0, 1, &mut values).unwrap();
/// assert_eq!(values, [1.5]);
/// ```
pub struct Region {
    map: MmapRaw,
    file: File,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// A copy that would leave the region's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds {
    /// Where the copy starts in the data.
    pub offset: usize,
    /// Its length in bytes.
    pub len: usize,
    /// The data's size.
    pub capacity: usize,
}

impl std::fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes at offset {} leave a shared region of {} bytes",
            self.len, self.offset, self.capacity
        )
    }
}

impl std::error::Error for OutOfBounds {}

impl Region {
    /// A new anonymous region with `capacity` bytes of data, sealed at its
    /// size. Its pages cost memory only once written.
    pub fn create(capacity: usize) -> io::Result<Region> {
        let len = capacity
            .checked_add(HEADER)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "region too large"))?;
        let fd = rustix::fs::memfd_create(
            "potential-replies",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SEALS)?;
        let region = Region::map(fd, len)?;
        // The header's page is made now: its first write could otherwise
        // meet a full memory (a SIGBUS in this process, not an error) at
        // any later call. Data pages are made by the worker's writes.
        region.cursor().store(0, Ordering::Release);
        Ok(region)
    }

    /// Maps a region received from the peer, after checking that it is
    /// sealed at its size: a region that could shrink under the mapping is
    /// refused.
    pub fn open(fd: OwnedFd) -> io::Result<Region> {
        let seals = rustix::fs::fcntl_get_seals(&fd)?;
        if !seals.contains(SEALS) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the shared region is not sealed against resizing",
            ));
        }
        let size = rustix::fs::fstat(&fd)?.st_size;
        let len = usize::try_from(size)
            .ok()
            .filter(|&len| len > HEADER)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a shared region of {size} bytes has no room for data"),
                )
            })?;
        Region::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Region> {
        let file = File::from(fd);
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        Ok(Region { map, file })
    }

    /// The descriptor, to send to the peer.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// The bytes of data.
    pub fn capacity(&self) -> usize {
        self.map.len() - HEADER
    }

    /// The cursor both sides share: how far the reader has consumed.
    pub fn cursor(&self) -> &AtomicU64 {
        // SAFETY: `AtomicU64::from_ptr` needs a pointer aligned for a
        // `u64` and valid for reads and writes as long as the reference
        // lives, and every concurrent access to those bytes to be atomic.
        // The mapping starts on a page boundary and is at least `HEADER`
        // (64) bytes long; it lives as long as `self` (the file cannot
        // shrink: it is sealed, checked in `open`); and neither side
        // touches the first `HEADER` bytes other than through this
        // method (`write` and `read_f64s` start after the header).
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().cast::<u64>()) }
    }

    /// Where `len` bytes at data offset `offset` start in the mapping.
    fn at(&self, offset: usize, len: usize) -> Result<usize, OutOfBounds> {
        let capacity = self.capacity();
        match offset.checked_add(len) {
            Some(end) if end <= capacity => Ok(HEADER + offset),
            _ => Err(OutOfBounds {
                offset,
                len,
                capacity,
            }),
        }
    }

    /// Copies `bytes` into the data at `offset`.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let at = self.at(offset, bytes.len())?;
        // SAFETY: `at` checked that `at..at + len` lies inside the mapping,
        // which is valid for writes for `self`'s life (sealed, see
        // `cursor`). The source is a slice of this process's memory, so
        // the two cannot overlap. No reference to the mapping exists: a
        // peer writing the same bytes meanwhile (which the ring protocol
        // rules out) would leave wrong bytes there, not break an invariant
        // of this process.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(at),
                bytes.len(),
            )
        };
        Ok(())
    }

    /// Copies `values` into the data at `offset` as little-endian `f64`s
    /// and says whether each is a log weight
    /// ([`all_log_weights`]); on `false`
    /// the bytes there are left partly written, for the caller to ignore.
    ///
    /// The values go in pieces of 16 KB, each checked and then copied: the
    /// check brings a piece into this core's first-level cache, where the
    /// copy reads it again (a batch's megabytes are read once from
    /// memory), and the copy is the system's `memcpy`, whose string
    /// instructions do not first read the lines they overwrite (lines the
    /// peer read last, in its own cache): a loop that checked as it
    /// copied, with ordinary stores, took twice as long for one row.
    ///
    /// ```
    /// use potential_runtime::shared::Region;
    /// let region = Region::create(1 << 16).unwrap();
    /// assert_eq!(region.write_log_weights(0, &[0.5, f64::NAN]), Ok(false));
    /// assert_eq!(region.write_log_weights(0, &[-0.5, f64::NEG_INFINITY]), Ok(true));
    /// let mut values = Vec::new();
    /// region.read_f64s(0, 2, &mut values).unwrap();
    /// assert_eq!(values, [-0.5, f64::NEG_INFINITY]);
    /// ```
    pub fn write_log_weights(&self, offset: usize, values: &[f64]) -> Result<bool, OutOfBounds> {
        let len = values.len().checked_mul(8).ok_or(OutOfBounds {
            offset,
            len: usize::MAX,
            capacity: self.capacity(),
        })?;
        self.at(offset, len)?;
        const PIECE: usize = 2048;
        for (i, piece) in values.chunks(PIECE).enumerate() {
            if !all_log_weights(piece) {
                return Ok(false);
            }
            let at = offset + 8 * PIECE * i;
            if cfg!(target_endian = "little") {
                self.write(at, bytemuck::cast_slice(piece))?;
            } else {
                let bytes: Vec<u8> = piece.iter().flat_map(|v| v.to_le_bytes()).collect();
                self.write(at, &bytes)?;
            }
        }
        Ok(true)
    }

    /// Appends `count` little-endian `f64` values read at data offset
    /// `offset` to `out`, copied straight into its memory.
    pub fn read_f64s(
        &self,
        offset: usize,
        count: usize,
        out: &mut Vec<f64>,
    ) -> Result<(), OutOfBounds> {
        let len = count.checked_mul(8).ok_or(OutOfBounds {
            offset,
            len: usize::MAX,
            capacity: self.capacity(),
        })?;
        let at = self.at(offset, len)?;
        out.reserve(count);
        let start = out.len();
        // SAFETY: the source `at..at + len` lies inside the mapping
        // (checked by `at`), valid for reads for `self`'s life; the
        // destination is the spare capacity of `out`, at least `count`
        // values after `reserve`, in this process's own memory, so the two
        // cannot overlap. Every bit pattern is a valid `f64`, so the
        // `count` values are initialized whatever the peer wrote, even
        // bytes it changed during the copy: such a peer breaks the ring
        // protocol and gets wrong values back, never undefined behaviour.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(at),
                out.as_mut_ptr().add(start).cast::<u8>(),
                len,
            );
            out.set_len(start + count);
        }
        #[cfg(target_endian = "big")]
        for v in &mut out[start..] {
            *v = f64::from_bits(u64::from_le(v.to_bits()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_written_are_read_back_and_the_cursor_is_apart() {
        let region = Region::create(4096).unwrap();
        assert_eq!(region.capacity(), 4096);
        let values: Vec<f64> = (0..100).map(|i| i as f64 * 0.5 - 3.0).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        region.write(8, &bytes).unwrap();
        region.cursor().store(u64::MAX, Ordering::Release);
        let mut out = vec![7.0];
        region.read_f64s(8, 100, &mut out).unwrap();
        assert_eq!(out[0], 7.0);
        assert_eq!(&out[1..], &values[..]);
        // The cursor is not data: writing data never touches it.
        region.write(0, &[0; 64]).unwrap();
        assert_eq!(region.cursor().load(Ordering::Acquire), u64::MAX);
    }

    #[test]
    fn copies_that_leave_the_region_are_refused_and_copy_nothing() {
        let region = Region::create(128).unwrap();
        assert_eq!(
            region.write(100, &[1; 29]),
            Err(OutOfBounds {
                offset: 100,
                len: 29,
                capacity: 128
            })
        );
        region.write(100, &[1; 28]).unwrap();
        assert!(region.write(usize::MAX, &[1]).is_err());
        let mut out = Vec::new();
        assert!(region.read_f64s(121, 1, &mut out).is_err());
        assert!(region.read_f64s(0, usize::MAX / 4, &mut out).is_err());
        assert!(region.read_f64s(usize::MAX - 2, 1, &mut out).is_err());
        assert!(out.is_empty());
        region.read_f64s(120, 1, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        // Values, likewise: the last value would cross the end.
        let values = [1.0; 4];
        assert!(region.write_log_weights(97, &values).is_err());
        assert!(region.write_log_weights(usize::MAX - 8, &values).is_err());
        region.write_log_weights(96, &values).unwrap();
    }

    #[test]
    fn values_are_checked_as_log_weights_piece_by_piece() {
        let region = Region::create(1 << 16).unwrap();
        // Lengths around the pieces (of 2,048 values), a refused value in
        // the first, a middle and the last piece, beside a -inf (which
        // +inf would cancel into NaN) or not. (The check's lanes are
        // `all_log_weights`' own tests.)
        for n in [1usize, 9, 2047, 2048, 2049, 4097] {
            let values: Vec<f64> = (0..n).map(|i| -(i as f64)).collect();
            assert_eq!(region.write_log_weights(8, &values), Ok(true));
            let mut out = Vec::new();
            region.read_f64s(8, n, &mut out).unwrap();
            assert_eq!(out, values);
            for bad in [0, n / 2, 2047, 2048, n - 1].into_iter().filter(|&i| i < n) {
                for refused in [f64::NAN, f64::INFINITY] {
                    for minus_infinity in [None, Some((bad + 1) % n)] {
                        let mut with_bad = values.clone();
                        if let Some(at) = minus_infinity.filter(|&at| at != bad) {
                            with_bad[at] = f64::NEG_INFINITY;
                        }
                        with_bad[bad] = refused;
                        let kept = region.write_log_weights(8, &with_bad);
                        assert_eq!(kept, Ok(false), "{n} values, {refused} at {bad}");
                    }
                }
            }
        }
        // Large finite values whose sums overflow are log weights all the
        // same, as is -inf everywhere; nothing to copy, nothing refused.
        assert_eq!(region.write_log_weights(0, &[f64::MAX; 64]), Ok(true));
        assert_eq!(
            region.write_log_weights(0, &[f64::NEG_INFINITY; 9]),
            Ok(true)
        );
        assert_eq!(region.write_log_weights(0, &[]), Ok(true));
    }

    #[test]
    fn the_peer_cannot_resize_a_region() {
        let region = Region::create(4096).unwrap();
        // What the peer receives: the same file, by another descriptor.
        let peer = region.fd().try_clone_to_owned().unwrap();
        assert!(rustix::fs::ftruncate(&peer, 16).is_err(), "shrunk");
        assert!(rustix::fs::ftruncate(&peer, 1 << 20).is_err(), "grown");
        assert!(
            rustix::fs::fcntl_add_seals(&peer, SealFlags::WRITE).is_err(),
            "the seals changed"
        );
        let opened = Region::open(peer).unwrap();
        assert_eq!(opened.capacity(), 4096);
        // Both mappings see the same bytes and the same cursor.
        opened.write(0, &2.0f64.to_le_bytes()).unwrap();
        opened.cursor().store(42, Ordering::Release);
        let mut out = Vec::new();
        region.read_f64s(0, 1, &mut out).unwrap();
        assert_eq!(out, [2.0]);
        assert_eq!(region.cursor().load(Ordering::Acquire), 42);
    }

    #[test]
    fn an_unsealed_or_empty_file_is_refused() {
        let fd = rustix::fs::memfd_create("test", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        let err = Region::open(fd).unwrap_err();
        assert!(err.to_string().contains("not sealed"), "{err}");
        let fd = rustix::fs::memfd_create("test", MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::fcntl_add_seals(&fd, SEALS).unwrap();
        let err = Region::open(fd).unwrap_err();
        assert!(err.to_string().contains("no room"), "{err}");
    }
}
