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
//! - The worker maps it and places each reply of values larger than
//!   [`SHARED_ABOVE`](crate::tuning::SHARED_ABOVE) in it as a ring
//!   ([`RingWriter`]); the reply frame is then the tag
//!   [`wire::SHARED`](potential_core::wire::SHARED) and a [`Placed`].
//! - The pool reads placements in the order their frames arrive
//!   ([`RingReader`]) and hands the space back through the region's cursor.
//!
//! Nothing waits on the ring: a reply that does not fit goes through the
//! socket, as every reply does where memfd is missing (other systems, old
//! kernels) or the pool's options turn the region off. A worker that dies
//! mid-copy never sends the frame that would name the bytes.

#[cfg(target_os = "linux")]
mod pass;
#[cfg(target_os = "linux")]
mod region;
#[cfg(target_os = "linux")]
mod ring;

#[cfg(target_os = "linux")]
pub use region::{HEADER, OutOfBounds, Region};
#[cfg(target_os = "linux")]
pub use ring::{ALIGN, BadPlacement, Placed, RingReader, RingWriter};

#[cfg(not(target_os = "linux"))]
pub(crate) use elsewhere::{RingReader, RingWriter, divert, offer, read_recipe};
#[cfg(target_os = "linux")]
pub(crate) use linux::{divert, offer, read_recipe};

#[cfg(target_os = "linux")]
mod linux {
    use potential_core::wire;

    use super::{Region, RingReader, RingWriter, pass};
    use crate::protocol::frame::{
        FrameDecoder, HEADER_LEN, MAX_FRAME_LEN, begin_frame, encode_frame, finish_frame,
    };
    use crate::protocol::message::REGION_ID;
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
        pass::send_with_fd(half, &encode_frame(REGION_ID, &[]), region.fd()).await?;
        Ok(Some(RingReader::new(region)))
    }

    /// The worker's side: reads frames up to the first that is not the
    /// region's (the recipe), mapping the region when one came with a
    /// descriptor that can be mapped.
    pub(crate) async fn read_recipe(
        half: &Half,
        decoder: &mut FrameDecoder,
    ) -> Result<((u64, Vec<u8>), Option<RingWriter>), ReadEnd> {
        let mut ring = None;
        loop {
            let mut fd = None;
            let frame = pass::read_one_with_fd(half, decoder, &mut fd).await?;
            if frame.0 != REGION_ID {
                return Ok((frame, ring));
            }
            match fd.map(Region::open) {
                Some(Ok(region)) => ring = Some(RingWriter::new(region)),
                Some(Err(e)) => eprintln!("potential worker: cannot map the shared region: {e}"),
                None => eprintln!("potential worker: the shared region came without a descriptor"),
            }
        }
    }

    /// Moves the values of the finished reply frame at `start` of `reply`
    /// into the ring, when they are many and fit, and leaves in their
    /// place the frame that says where they are.
    pub(crate) fn divert(ring: &mut RingWriter, reply: &mut Vec<u8>, start: usize) {
        let tag = start + HEADER_LEN;
        if reply.len() <= tag + SHARED_ABOVE || reply[tag] != wire::VALUES {
            return;
        }
        let Some(placed) = ring.put(&reply[tag + 1..]) else {
            return;
        };
        let id = u64::from_le_bytes(reply[start + 4..tag].try_into().expect("8 bytes"));
        reply.truncate(start);
        let start = begin_frame(reply, id);
        reply.push(wire::SHARED);
        placed.encode(reply);
        finish_frame(reply, start, MAX_FRAME_LEN).expect("a placement is a small frame");
    }
}

/// Where there is no memfd, there is no region: every reply goes through
/// the socket.
#[cfg(not(target_os = "linux"))]
mod elsewhere {
    use crate::protocol::frame::FrameDecoder;
    use crate::transport::{Half, ReadEnd, read_one};

    /// No ring can exist here.
    #[derive(Debug)]
    pub(crate) enum RingReader {}

    /// No ring can exist here.
    #[derive(Debug)]
    pub(crate) enum RingWriter {}

    pub(crate) async fn offer(_: &Half, _: usize) -> std::io::Result<Option<RingReader>> {
        Ok(None)
    }

    pub(crate) async fn read_recipe(
        half: &Half,
        decoder: &mut FrameDecoder,
    ) -> Result<((u64, Vec<u8>), Option<RingWriter>), ReadEnd> {
        read_one(&mut half.clone(), decoder)
            .await
            .map(|frame| (frame, None))
    }

    pub(crate) fn divert(ring: &mut RingWriter, _: &mut Vec<u8>, _: usize) {
        match *ring {}
    }
}
