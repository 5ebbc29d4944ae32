//! The reply tags, and the version of the protocol that knows them.
//!
//! The version sits beside the tags it versions: adding a tag (or a call)
//! and raising [`VERSION`] happen in this file, and the test below fails
//! when one comes without the other.

/// The version of the protocol between a pool and its workers; a worker's
/// hello carries it and the pool refuses any other, so that two builds
/// that would not understand each other's payloads never exchange one.
///
/// - 1: the description sent the vocabulary back.
/// - 2: the description carries the vocabulary's length; calls have no
///   `Describe` variant.
/// - 3: the shared region (its frame before the recipe, and [`SHARED`]
///   replies).
/// - 4: [`MASK`] replies; errors name their method and wrapper by variant,
///   not by name.
/// - 5: the pool checks that the values are log weights as it decodes
///   them; the worker no longer does.
/// - 6: values in shared memory are checked by the worker before it
///   places them, and not again by the pool;
///   values in the reply are still checked by the pool.
pub const VERSION: u16 = 6;

/// Reply tag: raw little-endian `f64` values follow.
pub const VALUES: u8 = 0;
/// Reply tag: a postcard [`Description`](super::Description) follows.
pub const DESCRIPTION: u8 = 1;
/// Reply tag: a postcard [`WireError`](super::WireError) follows.
pub const ERROR: u8 = 2;
/// Reply tag: the values, as after [`VALUES`], are in memory the worker
/// shares with its pool; a [`Placed`](super::Placed) says where.
pub const SHARED: u8 = 3;
/// Reply tag: rows whose values are all `0` or `-∞`: the number of rows
/// and their width as `u64` LE, then each row's bits (1 for `0`), least
/// significant first, padded to whole bytes.
pub const MASK: u8 = 4;

/// A reply's tag: what [`decode_reply`](super::decode_reply), the one
/// decoder, dispatches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    Values,
    Description,
    Error,
    Shared,
    Mask,
}

impl Tag {
    /// The tag of this byte, if this version knows one.
    pub(super) fn of(byte: u8) -> Option<Tag> {
        match byte {
            VALUES => Some(Tag::Values),
            DESCRIPTION => Some(Tag::Description),
            ERROR => Some(Tag::Error),
            SHARED => Some(Tag::Shared),
            MASK => Some(Tag::Mask),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::decode_call;

    /// What the peers of each version understand, oldest first: the reply
    /// tags they decode and how many call variants. A new tag or call makes
    /// the decoders disagree with the last line until a line for a new
    /// version is added here and [`VERSION`] raised to it.
    const HISTORY: &[(u16, &[u8], usize)] = &[
        (3, &[VALUES, DESCRIPTION, ERROR, SHARED], 8),
        (4, &[VALUES, DESCRIPTION, ERROR, SHARED, MASK], 8),
        // The same payloads; the pool, not the worker, checks that values
        // are log weights (as it copies them out), so a pool of version 4
        // would let a newer worker's NaN through.
        (5, &[VALUES, DESCRIPTION, ERROR, SHARED, MASK], 8),
        // The same payloads; values in shared memory are checked by the
        // worker as it places them, and the pool no longer checks them, so
        // a worker of version 5 would get its NaN through a newer pool.
        (6, &[VALUES, DESCRIPTION, ERROR, SHARED, MASK], 8),
    ];

    #[test]
    fn a_tag_or_a_call_added_raises_the_version() {
        let tags: Vec<u8> = (0..=u8::MAX).filter(|&b| Tag::of(b).is_some()).collect();
        // A call of each variant with an empty context decodes; the first
        // index past the last variant does not.
        let calls = (0..=u8::MAX)
            .take_while(|&i| decode_call::<u8>(&[i, 0]).is_ok())
            .count();
        let &(version, known, known_calls) = HISTORY.last().expect("a history");
        assert_eq!(
            (tags.as_slice(), calls),
            (known, known_calls),
            "the payloads changed: add a line to HISTORY and raise VERSION"
        );
        assert_eq!(VERSION, version, "VERSION is the last line of HISTORY");
        assert!(
            HISTORY.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "versions only grow"
        );
    }
}
