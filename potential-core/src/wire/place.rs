//! Values a reply leaves in memory the worker shares with its pool: where
//! they are ([`Placed`], the body of a [`SHARED`](super::SHARED) reply),
//! and the two hooks through which the runtime's shared memory puts them
//! there ([`PlaceValues`], the worker's side) and takes them back
//! ([`TakeValues`], the pool's side).
//!
//! The format is here, beside the other tags' bodies; the memory is the
//! runtime's (`potential-runtime`'s `shared` module), which this crate
//! cannot name: it reaches it only through the hooks.

/// Where a reply's values were placed in the shared memory: what a
/// [`SHARED`](super::SHARED) reply carries instead of the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// The position of the first byte, in the memory's own terms.
    pub position: u64,
    /// The length in bytes.
    pub len: u64,
}

impl Placed {
    /// The encoded length of a placement.
    pub const ENCODED_LEN: usize = 16;

    /// Appends the position and the length, little-endian.
    pub fn encode(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` unless `body` is
    /// exactly that long.
    pub fn decode(body: &[u8]) -> Option<Placed> {
        let body: &[u8; Self::ENCODED_LEN] = body.try_into().ok()?;
        let (position, len) = body.split_at(8);
        Some(Placed {
            position: u64::from_le_bytes(position.try_into().ok()?),
            len: u64::from_le_bytes(len.try_into().ok()?),
        })
    }
}

/// Where a worker may put the values of a reply instead of in the reply:
/// the runtime's shared memory.
///
/// Offered the rows of a `logw_next` or `batch_logw_next` reply (each of
/// the same width, in order), it either copies them there, little-endian
/// and one row after the other, and says where; or declines (`None`), and
/// the values are encoded in the reply after [`VALUES`](super::VALUES).
///
/// It checks the values before it copies them, while they are in the
/// worker's cache ([`all_log_weights`](crate::all_log_weights)), and
/// declines rows that hold one that is not a log weight, leaving their
/// space free: the pool copies placed values out without a pass of its
/// own, and such rows reach it in the reply, whose decoder reports the
/// value as on every other path.
pub trait PlaceValues: Send + Sync {
    /// Takes `rows`, all of them log weights, or declines them; see the
    /// trait's documentation.
    fn place(&self, rows: &[&[f64]]) -> Option<Placed>;
}

/// What a pool reads the values of a [`SHARED`](super::SHARED) reply
/// from: the pool's end of the shared memory that the worker's
/// [`PlaceValues`] wrote into. [`decode_rows`](super::decode_rows) calls it
/// once it has checked the placement's count against the call's shape.
pub trait TakeValues {
    /// Appends the values `placed` holds to `rows`, `width` to a row (the
    /// placement is a whole number of rows: checked before), and hands
    /// their space back; an error says why the placement cannot be read
    /// (the caller then hands it back with [`hand_back`](Self::hand_back)).
    /// The values are not checked again: the placer checked them.
    fn take(
        &mut self,
        placed: Placed,
        width: usize,
        rows: &mut Vec<Vec<f64>>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

    /// Hands the space of `placed` back without reading it: nobody waits
    /// for its reply any more, or the reply was refused.
    fn hand_back(&mut self, placed: Placed);
}
