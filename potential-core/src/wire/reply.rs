//! Replies: a tag byte and a body, written by the worker's server and
//! read by [`decode_reply`], the one place that dispatches on the tag.

use crate::error::{Method, PotentialError, Result};
use crate::mask::Mask;
use crate::potential::{check_weight, check_weights};
use crate::vocab::{TokenType, Vocab};
use crate::weights::LogWeights;

use super::error::WireError;
use super::mask;
use super::place::{PlaceValues, Placed, TakeValues};
use super::tag::{ERROR, MASK, SHARED, Tag, VALUES};

/// Appends a values reply.
pub fn encode_values(values: &[f64], out: &mut Vec<u8>) {
    out.push(VALUES);
    append_le(values, out);
}

/// Appends `f64`s as little-endian bytes: one bulk copy on little-endian
/// targets (no zeroing first: for a 400 KB reply, zeroing cost as much as
/// the copy).
fn append_le(values: &[f64], out: &mut Vec<u8>) {
    if cfg!(target_endian = "little") {
        out.extend_from_slice(bytemuck::cast_slice(values));
    } else {
        out.reserve(8 * values.len());
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
}

/// Appends an error reply.
pub fn encode_error(error: &PotentialError, out: &mut Vec<u8>) {
    out.push(ERROR);
    // Invariant: a `WireError` is strings, integers and unit variants, and
    // writing to a `Vec` cannot fail, so postcard has no error to return here.
    postcard::to_io(&WireError::from(error), &mut *out)
        .expect("postcard writes strings and integers to a Vec without failing");
}

/// Appends a reply of `rows` of values (each of the same width): as a
/// [`MASK`] when they are one, else as [`SHARED`] when `place` takes them
/// (it declines rows that hold a value that is not a log weight), else
/// after [`VALUES`]. What a worker answers `logw_next` and
/// `batch_logw_next` with.
pub fn encode_rows(rows: &[&[f64]], reply: &mut Vec<u8>, place: Option<&dyn PlaceValues>) {
    reply.push(MASK);
    if mask::encode_values(rows, reply) {
        return;
    }
    reply.pop();
    if let Some(placed) = place.and_then(|place| place.place(rows)) {
        reply.push(SHARED);
        placed.encode(reply);
        return;
    }
    reply.reserve(1 + rows.iter().map(|r| 8 * r.len()).sum::<usize>());
    reply.push(VALUES);
    for row in rows {
        append_le(row, reply);
    }
}

/// Appends a [`MASK`] reply of `masks` (each of the same length; else
/// `false`, and `reply` is left as it was): the bits as they are, 6 KB for
/// 50,000 tokens. What a worker answers a constraint's weights with.
pub fn encode_masks(masks: &[&Mask], reply: &mut Vec<u8>) -> bool {
    reply.push(MASK);
    if mask::encode(masks, reply) {
        return true;
    }
    reply.pop();
    false
}

/// The reply to `logw_next` or `batch_logw_next` of `weights` of `width`
/// values each: [`encode_masks`] when every one is a mask, else
/// [`encode_rows`]. A weight vector of another width is an error.
pub fn encode_weights<T>(
    weights: &[LogWeights<T>],
    width: usize,
    reply: &mut Vec<u8>,
    place: Option<&dyn PlaceValues>,
) -> Result<()> {
    if let Some(w) = weights.iter().find(|w| w.len() != width) {
        return Err(PotentialError::InvalidInput(format!(
            "logw_next returned {} weights for a vocabulary of {} plus EOS",
            w.len(),
            width - 1
        )));
    }
    let masks: Option<Vec<&Mask>> = weights.iter().map(LogWeights::as_mask).collect();
    if !masks.is_some_and(|masks| encode_masks(&masks, reply)) {
        let rows: Vec<&[f64]> = weights.iter().map(LogWeights::as_slice).collect();
        encode_rows(&rows, reply, place);
    }
    Ok(())
}

/// A decoded reply: its body, or the error it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply<'a> {
    /// Raw little-endian `f64` values (a multiple of 8 bytes).
    Values(&'a [u8]),
    /// A postcard [`Description`](super::Description); see
    /// [`check_description`](super::check_description).
    Description(&'a [u8]),
    /// A [`MASK`] body: rows of `0` and `-∞`, a bit each.
    Mask(&'a [u8]),
    /// Values in the memory the worker shares with its pool.
    Shared(Placed),
}

/// The error of a reply that breaks the protocol.
pub(super) fn malformed(what: impl std::fmt::Display) -> PotentialError {
    PotentialError::WorkerFailure(format!("malformed reply from a worker: {what}"))
}

/// Splits a reply into its tag and body; an error reply becomes `Err` with
/// the worker's error, a malformed one a [`PotentialError::WorkerFailure`].
pub fn decode_reply(bytes: &[u8]) -> Result<Reply<'_>> {
    let (&tag, body) = bytes.split_first().ok_or_else(|| malformed("empty"))?;
    match Tag::of(tag) {
        Some(Tag::Values) if body.len() % 8 == 0 => Ok(Reply::Values(body)),
        Some(Tag::Values) => Err(malformed(format!("{} bytes of f64 values", body.len()))),
        Some(Tag::Description) => Ok(Reply::Description(body)),
        Some(Tag::Mask) => Ok(Reply::Mask(body)),
        Some(Tag::Shared) => Placed::decode(body)
            .map(Reply::Shared)
            .ok_or_else(|| malformed(format!("{} bytes of placement", body.len()))),
        Some(Tag::Error) => Err(postcard::from_bytes::<WireError>(body)
            .map_err(malformed)?
            .into()),
        None => Err(malformed(format!("unknown tag {tag}"))),
    }
}

/// A decoded values reply: a single call's one value needs no allocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The one value of a reply that holds one.
    One(f64),
    /// The values, cut into rows.
    Rows(Vec<Vec<f64>>),
    /// Rows of `0` and `-∞`, as bits (a [`MASK`] reply).
    Masks(Vec<Mask>),
}

impl Answer {
    /// The answer made of `rows`: [`Answer::One`] when they hold one value.
    pub fn from_rows(rows: Vec<Vec<f64>>) -> Answer {
        match rows.as_slice() {
            [row] if row.len() == 1 => Answer::One(row[0]),
            _ => Answer::Rows(rows),
        }
    }

    /// The values as rows (one row of one value for [`Answer::One`]; a
    /// mask's values written out).
    pub fn into_rows(self) -> Vec<Vec<f64>> {
        match self {
            Answer::One(value) => vec![vec![value]],
            Answer::Rows(rows) => rows,
            Answer::Masks(masks) => masks.iter().map(Mask::to_values).collect(),
        }
    }

    /// The rows as weights over `vocab`, masks kept as bits; a row of
    /// another length than `vocab.len() + 1` is an error.
    pub fn into_weights<T: TokenType>(self, vocab: &Vocab<T>) -> Result<Vec<LogWeights<T>>> {
        match self {
            Answer::Masks(masks) => masks
                .into_iter()
                .map(|mask| LogWeights::from_mask(vocab.clone(), mask))
                .collect(),
            other => other
                .into_rows()
                .into_iter()
                .map(|row| LogWeights::new(vocab.clone(), row))
                .collect(),
        }
    }
}

/// Decodes the reply to a call of `method` that answers `rows` rows of
/// `width` values each (one row for a scalar or a batch of scalars, one per
/// context for `batch_logw_next`): the one reply decoder, used by the pool,
/// the fuzz target and the benchmark alike. `take` reads the values of a
/// [`SHARED`] reply (the pool's end of the shared memory, where the
/// connection has one).
///
/// A reply of another length is [`PotentialError::BatchSizeMismatch`]; an
/// error reply is the worker's error. The values are copied once, out of
/// the read buffer (or the shared memory) into the rows the caller keeps:
/// no flat vector to cut again, whose megabytes would be fresh memory
/// (page faults) at every batch.
pub fn decode_rows(
    bytes: &[u8],
    method: Method,
    rows: usize,
    width: usize,
    take: Option<&mut dyn TakeValues>,
) -> Result<Answer> {
    let raw = match decode_reply(bytes)? {
        Reply::Values(raw) => raw,
        Reply::Mask(body) => return decode_mask(body, method, rows, width),
        Reply::Shared(placed) => return decode_shared(placed, method, rows, width, take),
        Reply::Description(_) => {
            return Err(malformed("a description where values were expected"));
        }
    };
    check_count(method, rows, width, raw.len() / 8)?;
    if let Ok(one) = <[u8; 8]>::try_from(raw) {
        return Ok(Answer::One(check_weight(method, f64::from_le_bytes(one))?));
    }
    let mut checked = Checked::new(method);
    let rows = raw
        .chunks_exact(8 * width)
        .map(|row| {
            let row: Vec<f64> = row
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")))
                .collect();
            checked.row(&row);
            row
        })
        .collect();
    checked.result()?;
    Ok(Answer::Rows(rows))
}

/// The weights of a reply's rows, checked as log weights row by row as
/// they are copied out (while each row is in cache), as `AutoBatched`
/// checks an answer: a NaN or `+inf` is the same error whether the
/// potential runs here or in a worker. (Values in shared memory were
/// checked by the worker before it copied them there: see
/// [`PlaceValues`]; the worker does not check what it puts in a reply,
/// which this checks.)
struct Checked {
    method: Method,
    result: Result<()>,
}

impl Checked {
    fn new(method: Method) -> Self {
        Checked {
            method,
            result: Ok(()),
        }
    }

    /// Checks one row, unless an earlier one failed.
    fn row(&mut self, row: &[f64]) {
        if self.result.is_ok() {
            self.result = check_weights(self.method, row);
        }
    }

    /// The first failure, if any.
    fn result(self) -> Result<()> {
        self.result
    }
}

/// The rows of a [`MASK`] reply, checked against the call's shape.
fn decode_mask(body: &[u8], method: Method, rows: usize, width: usize) -> Result<Answer> {
    let (got_rows, got_width) =
        mask::shape(body).ok_or_else(|| malformed("a mask without its shape"))?;
    check_count(method, rows, width, got_rows.saturating_mul(got_width))?;
    if got_width != width {
        return Err(malformed(format!(
            "a mask of rows of {got_width} values for rows of {width}"
        )));
    }
    mask::decode(body, rows, width)
        .map(Answer::Masks)
        .map_err(malformed)
}

/// The rows of a [`SHARED`] reply, checked against the call's shape and
/// read through `take`; the placement's space is handed back either way.
fn decode_shared(
    placed: Placed,
    method: Method,
    rows: usize,
    width: usize,
    take: Option<&mut dyn TakeValues>,
) -> Result<Answer> {
    let Some(take) = take else {
        return Err(malformed(
            "values in shared memory the connection does not have",
        ));
    };
    let answer = read_shared(placed, method, rows, width, take);
    // Taken rows handed their space back; anything else hands it back here.
    if answer.is_err() {
        take.hand_back(placed);
    }
    answer
}

/// [`decode_shared`]'s checks of the shape, and its copy (the values were
/// checked as they were placed).
fn read_shared(
    placed: Placed,
    method: Method,
    rows: usize,
    width: usize,
    take: &mut dyn TakeValues,
) -> Result<Answer> {
    if !placed.len.is_multiple_of(8) {
        return Err(malformed(format!("{} bytes of f64 values", placed.len)));
    }
    let count = usize::try_from(placed.len / 8).unwrap_or(usize::MAX);
    check_count(method, rows, width, count)?;
    let mut out = Vec::with_capacity(rows);
    take.take(placed, width, &mut out).map_err(malformed)?;
    Ok(Answer::from_rows(out))
}

/// Whether a reply's values are in shared memory (a [`SHARED`] reply):
/// the pool reads those outside its locks, and counts them.
pub fn is_shared(bytes: &[u8]) -> bool {
    bytes.first() == Some(&SHARED)
}

/// Drops a reply nobody waits for: a [`SHARED`] one hands its space back
/// through `take`, so that the worker may reuse it.
pub fn discard_reply(bytes: &[u8], take: Option<&mut dyn TakeValues>) {
    if let (Some(take), Ok(Reply::Shared(placed))) = (take, decode_reply(bytes)) {
        take.hand_back(placed);
    }
}

/// Checks that a reply to `method` of `rows` rows of `width` values holds
/// `got` values: a worker that answers another count broke the call's contract.
fn check_count(method: Method, rows: usize, width: usize, got: usize) -> Result<()> {
    let expected = rows * width;
    if got != expected || width == 0 {
        return Err(PotentialError::BatchSizeMismatch {
            method,
            expected,
            got,
        });
    }
    Ok(())
}
