//! Large replies through shared memory.
//!
//! A `logw_next` over a vocabulary of 50,000 is a 400 KB reply, and a
//! batch of them megabytes. Through the socket, each byte is copied into
//! the kernel by the worker and out of it by the pool, in pieces the size
//! of the socket's buffer. Through a shared region, the worker copies the
//! values once into memory the pool has mapped, and the pool copies them
//! once, straight into the rows its caller receives; the socket carries a
//! frame of 29 bytes that says where they are.
//!
//! - The pool creates one [`Region`] per connection (a memfd, sealed at its
//!   size, so that the worker cannot shrink it under the pool's mapping) and
//!   sends its descriptor before the recipe, in a frame of id
//!   [`REGION_ID`](crate::protocol::message::REGION_ID).
//! - The worker maps it, and its potential's server writes the weights of
//!   each `logw_next` or `batch_logw_next` reply larger than 32 KB (that
//!   are not a mask, which travels as bits) straight into it, once they
//!   are checked as log weights, as a
//!   ring ([`RingWriter`], through
//!   [`PlaceValues`](potential_core::wire::PlaceValues)); the reply frame is
//!   then the tag [`wire::SHARED`](potential_core::wire::SHARED) and a
//!   [`Placed`](potential_core::wire::Placed).
//! - The pool reads placements in the order their frames arrive
//!   ([`RingReader`], through
//!   [`TakeValues`](potential_core::wire::TakeValues), when
//!   [`wire::decode_rows`](potential_core::wire::decode_rows) meets such a
//!   reply) and hands the space back through the region's cursor.
//!
//! Nothing waits on the ring: a reply that does not fit goes through the
//! socket, as every reply does where memfd is missing (other systems, old
//! kernels) or the pool's options turn the region off. A worker that dies
//! mid-copy never sends the frame that would name the bytes.

#[cfg(potential_linux)]
mod pass;
#[cfg(potential_linux)]
mod region;
#[cfg(potential_linux)]
mod ring;

#[cfg(potential_linux)]
pub use region::{HEADER, OutOfBounds, Region};
#[cfg(potential_linux)]
pub use ring::{ALIGN, BadPlacement, RingReader, RingWriter};

#[cfg(not(potential_linux))]
pub(crate) use elsewhere::{RingReader, offer, read_recipe};
#[cfg(potential_linux)]
pub(crate) use linux::{offer, read_recipe};

#[cfg(potential_linux)]
mod linux {
    use std::sync::{Arc, Mutex};

    use potential_core::wire::{PlaceValues, Placed, TakeValues};

    use super::{Region, RingReader, RingWriter, pass};
    use crate::protocol::frame::{FrameDecoder, encode_frame};
    use crate::protocol::message::REGION_ID;
    use crate::sync::lock;
    use crate::transport::{Half, ReadEnd};
    use crate::tuning::SHARED_ABOVE;

    /// The pool's side: creates a region of `capacity` bytes and sends it
    /// to the worker. `None` (replies through the socket) when `capacity`
    /// is 0 or the system cannot make one; an error only when the socket
    /// fails, which the recipe's write would meet anyway.
    pub(crate) async fn offer(half: &Half, capacity: usize) -> std::io::Result<Option<RingReader>> {
        if capacity == 0 {
            return Ok(None);
        }
        let region = match Region::create(capacity) {
            Ok(region) => region,
            Err(e) => {
                tracing::debug!(error = %e, "no shared region: replies go through the socket");
                return Ok(None);
            }
        };
        let frame = encode_frame(REGION_ID, &[]).expect("an empty frame");
        pass::send_with_fd(half, &frame, region.fd()).await?;
        Ok(Some(RingReader::new(region)))
    }

    /// The worker's side: reads frames up to the first that is not the
    /// region's (the recipe), mapping the region when one came with a
    /// descriptor that can be mapped.
    pub(crate) async fn read_recipe(
        half: &Half,
        decoder: &mut FrameDecoder,
    ) -> Result<((u64, Vec<u8>), Option<Arc<dyn PlaceValues>>), ReadEnd> {
        let mut placer: Option<Arc<dyn PlaceValues>> = None;
        loop {
            let mut fd = None;
            let frame = pass::read_one_with_fd(half, decoder, &mut fd).await?;
            if frame.0 != REGION_ID {
                return Ok((frame, placer));
            }
            match fd.map(Region::open) {
                Some(Ok(region)) => {
                    placer = Some(Arc::new(Placer(Mutex::new(RingWriter::new(region)))));
                }
                Some(Err(e)) => eprintln!("potential worker: cannot map the shared region: {e}"),
                None => eprintln!("potential worker: the shared region came without a descriptor"),
            }
        }
    }

    /// The worker's end of the ring, offered every reply of weights.
    ///
    /// A placement happens as the reply's future completes, and the
    /// worker queues the reply's frame in the same poll, with no `.await`
    /// between (it runs on one thread): frames leave in the order of their
    /// placements, as the ring's reader needs.
    struct Placer(Mutex<RingWriter>);

    impl PlaceValues for Placer {
        fn place(&self, rows: &[&[f64]]) -> Option<Placed> {
            let bytes: usize = rows.iter().map(|row| 8 * row.len()).sum();
            // The ring holds little-endian values: elsewhere, the socket.
            if bytes <= SHARED_ABOVE || cfg!(target_endian = "big") {
                return None;
            }
            lock(&self.0).put(rows)
        }
    }

    /// The pool's end of the ring, which the one reply decoder reads
    /// placements through.
    impl TakeValues for RingReader {
        fn take(
            &mut self,
            placed: Placed,
            width: usize,
            rows: &mut Vec<Vec<f64>>,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Ok(self.take_rows(placed, width, rows)?)
        }

        fn hand_back(&mut self, placed: Placed) {
            if let Err(e) = self.release(placed) {
                tracing::debug!(error = %e, "a shared-memory reply out of place");
            }
        }
    }
}

/// Where there is no memfd, there is no region: every reply goes through
/// the socket.
#[cfg(not(potential_linux))]
mod elsewhere {
    use std::sync::Arc;

    use potential_core::wire::{PlaceValues, Placed, TakeValues};

    use crate::protocol::frame::FrameDecoder;
    use crate::transport::{Half, ReadEnd, read_one};

    /// No ring can exist here.
    #[derive(Debug)]
    pub(crate) enum RingReader {}

    impl TakeValues for RingReader {
        fn take(
            &mut self,
            _: Placed,
            _: usize,
            _: &mut Vec<Vec<f64>>,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            match *self {}
        }

        fn hand_back(&mut self, _: Placed) {
            match *self {}
        }
    }

    /// The pool's side: no region to offer.
    pub(crate) async fn offer(_: &Half, _: usize) -> std::io::Result<Option<RingReader>> {
        Ok(None)
    }

    /// The worker's side: the recipe is the first frame, and nothing
    /// places values.
    pub(crate) async fn read_recipe(
        half: &Half,
        decoder: &mut FrameDecoder,
    ) -> Result<((u64, Vec<u8>), Option<Arc<dyn PlaceValues>>), ReadEnd> {
        read_one(&mut half.clone(), decoder)
            .await
            .map(|frame| (frame, None))
    }
}
