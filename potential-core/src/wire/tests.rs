use super::serve::Server;
use super::*;
use crate::checks::block_on;
use crate::error::{Method, PotentialError, Result, Wrapper};
use crate::mask::Mask;
use crate::potential::{Potential, all_log_weights};
use crate::testing::Length;
use crate::vocab::Symbol;
use crate::vocab::Vocab;
use crate::weights::LogWeights;
use std::sync::Arc;

fn server() -> Server<Length> {
    Server::new(Arc::new(Length::abc()))
}

fn ask(call: CallRef<'_, char>) -> Vec<u8> {
    let mut request = Vec::new();
    encode_call(&call, &mut request).unwrap();
    block_on(server().serve(&request, Vec::new()))
}

/// The values of a reply that holds `n` of them, in one row.
fn values(reply: &[u8], method: Method, n: usize) -> Result<Vec<f64>> {
    Ok(decode_rows(reply, method, 1, n, None)?.into_rows().concat())
}

#[test]
fn values_travel_as_raw_little_endian_bytes() {
    let reply = ask(CallRef::BatchComplete(&[vec!['a'], vec!['a', 'b']]));
    assert_eq!(reply.len(), 1 + 16);
    assert_eq!(reply[0], VALUES);
    assert_eq!(
        values(&reply, Method::BatchComplete, 2).unwrap(),
        [-1.0, -2.0]
    );
    let err = values(&reply, Method::BatchComplete, 3).unwrap_err();
    assert!(matches!(
        err,
        PotentialError::BatchSizeMismatch {
            method: Method::BatchComplete,
            got: 2,
            ..
        }
    ));
}

#[test]
fn a_reply_is_cut_into_rows_of_its_shape() {
    let mut reply = Vec::new();
    let all: Vec<f64> = (0..6).map(f64::from).collect();
    encode_values(&all, &mut reply);
    assert_eq!(
        decode_rows(&reply, Method::BatchLogwNext, 3, 2, None)
            .unwrap()
            .into_rows(),
        [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    );
    assert!(matches!(
        decode_rows(&reply, Method::BatchLogwNext, 2, 4, None),
        Err(PotentialError::BatchSizeMismatch {
            method: Method::BatchLogwNext,
            expected: 8,
            got: 6
        })
    ));
    let mut one = Vec::new();
    encode_values(&[2.5], &mut one);
    assert_eq!(
        decode_rows(&one, Method::Complete, 1, 1, None).unwrap(),
        Answer::One(2.5)
    );
    let mut description = Vec::new();
    encode_description::<char>(3, &mut description);
    assert!(matches!(
        decode_rows(&description, Method::Complete, 1, 1, None),
        Err(PotentialError::WorkerFailure(_))
    ));
}

#[test]
fn a_call_is_measured_as_it_is_encoded() {
    let contexts = [vec!['a'; 300], vec!['é'; 5]];
    let call = CallRef::BatchComplete(&contexts);
    let mut out = Vec::new();
    encode_call(&call, &mut out).unwrap();
    assert_eq!(encoded_call_len(&call).unwrap(), out.len());
}

#[test]
fn logw_next_equals_the_in_process_weights() {
    let reply = ask(CallRef::LogwNext(&['a']));
    let want = block_on(Length::abc().logw_next(&['a'])).unwrap();
    assert_eq!(
        values(&reply, Method::LogwNext, 4).unwrap(),
        want.as_slice()
    );
    let reply = ask(CallRef::BatchLogwNext(&[vec![], vec!['a']]));
    let rows = decode_rows(&reply, Method::BatchLogwNext, 2, 4, None)
        .unwrap()
        .into_rows();
    assert_eq!(rows[1], want.as_slice());
}

#[test]
fn masks_travel_as_bits_and_other_weights_as_values() {
    let ninf = f64::NEG_INFINITY;
    let mask = [vec![0.0, ninf, ninf, 0.0, 0.0], vec![ninf; 5]];
    let refs: Vec<&[f64]> = mask.iter().map(Vec::as_slice).collect();
    let mut reply = Vec::new();
    encode_rows(&refs, &mut reply, None);
    assert_eq!(reply[0], MASK);
    assert_eq!(reply.len(), 1 + 16 + 2);
    let answer = decode_rows(&reply, Method::BatchLogwNext, 2, 5, None).unwrap();
    assert!(matches!(&answer, Answer::Masks(m) if m.len() == 2));
    assert_eq!(answer.into_rows(), mask);
    // The call's shape is checked against the mask's.
    assert!(decode_rows(&reply, Method::BatchLogwNext, 2, 4, None).is_err());
    assert!(decode_rows(&reply, Method::BatchLogwNext, 1, 10, None).is_err());
    // One value that is neither 0 nor -inf: the values themselves.
    let mixed = [0.0, ninf, -0.5];
    let mut reply = Vec::new();
    encode_rows(&[&mixed], &mut reply, None);
    assert_eq!(reply[0], VALUES);
    let rows = decode_rows(&reply, Method::LogwNext, 1, 3, None).unwrap();
    assert_eq!(rows.into_rows(), [mixed.to_vec()]);
}

/// Weights made from a mask leave a worker as its bits and come back as a
/// mask, never written out as values on the way.
#[test]
fn mask_weights_travel_as_bits_and_come_back_as_masks() {
    let vocab = Vocab::new(vec!['a', 'b', 'c', 'd']).unwrap();
    let masks = [Mask::from_words(5, vec![0b10110]).unwrap(), Mask::none(5)];
    let weights: Vec<LogWeights<char>> = masks
        .iter()
        .map(|m| LogWeights::from_mask(vocab.clone(), m.clone()).unwrap())
        .collect();
    let mut reply = Vec::new();
    encode_weights(&weights, 5, &mut reply, None).unwrap();
    assert_eq!((reply[0], reply.len()), (MASK, 1 + 16 + 2));
    let back = decode_rows(&reply, Method::BatchLogwNext, 2, 5, None)
        .unwrap()
        .into_weights(&vocab)
        .unwrap();
    assert_eq!(back, weights);
    assert!(back.iter().zip(&masks).all(|(w, m)| w.as_mask() == Some(m)));
    // Dense weights that are all 0 and -inf travel as bits too.
    let dense: Vec<LogWeights<char>> = masks
        .iter()
        .map(|m| LogWeights::new(vocab.clone(), m.to_values()).unwrap())
        .collect();
    let mut again = Vec::new();
    encode_weights(&dense, 5, &mut again, None).unwrap();
    assert_eq!(again, reply);
    // Weights of another width are the potential's error, not a reply.
    let mut refused = Vec::new();
    assert!(encode_weights(&weights, 6, &mut refused, None).is_err());
    assert!(refused.is_empty());
}

#[test]
fn errors_map_back_to_their_variants() {
    let reply = ask(CallRef::BatchPrefix(&[]));
    let err = values(&reply, Method::BatchPrefix, 0).unwrap_err();
    assert!(matches!(
        err,
        PotentialError::EmptyBatch {
            method: Method::BatchPrefix
        }
    ));
    let reply = ask(CallRef::Score(&[Symbol::Eos, Symbol::Token('a')]));
    let err = values(&reply, Method::Score, 1).unwrap_err();
    assert!(matches!(err, PotentialError::InvalidInput(_)), "{err:?}");
    for e in [
        PotentialError::msg("model missing"),
        PotentialError::Panicked("boom".into()),
        Wrapper::WorkerPool.closed(),
        Wrapper::AutoBatched.closed(),
        PotentialError::BatchSizeMismatch {
            method: Method::BatchScore,
            expected: 3,
            got: 1,
        },
        PotentialError::UnknownToken {
            token: "'z'".into(),
            position: 4,
        },
        PotentialError::InvalidWeight {
            method: Method::LogwNext,
            value: f64::INFINITY,
        },
        PotentialError::Timeout {
            method: Method::BatchPrefix,
            after: std::time::Duration::from_millis(3),
        },
    ] {
        let mut reply = Vec::new();
        encode_error(&e, &mut reply);
        let back = decode_reply(&reply).unwrap_err();
        assert_eq!(back.to_string(), e.to_string());
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&e));
    }
}

#[test]
fn a_description_carries_the_token_type_and_the_vocabulary_length() {
    let mut reply = Vec::new();
    server().describe(&mut reply);
    assert!(check_description::<char>(&reply, 3).is_ok());
    let err = check_description::<u32>(&reply, 3).unwrap_err();
    assert!(err.to_string().contains("char"), "{err}");
    let err = check_description::<char>(&reply, 4).unwrap_err();
    assert!(err.to_string().contains("of 3 tokens"), "{err}");
}

#[test]
fn malformed_calls_and_replies_are_errors() {
    let reply = block_on(server().serve(&[0xff, 0xff, 0xff], Vec::new()));
    assert!(matches!(
        decode_reply(&reply).unwrap_err(),
        PotentialError::InvalidInput(_)
    ));
    for bad in [&[][..], &[VALUES, 1, 2], &[9], &[ERROR, 0xff]] {
        assert!(matches!(
            decode_reply(bad),
            Err(PotentialError::WorkerFailure(_))
        ));
    }
}

struct Panics(Vocab<char>);
impl Potential for Panics {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.0
    }
    async fn complete(&self, _: &[char]) -> Result<f64> {
        panic!("boom")
    }
    async fn prefix(&self, _: &[char]) -> Result<f64> {
        Ok(0.0)
    }
}

#[test]
fn a_panic_becomes_an_error_reply() {
    let server = Server::new(Arc::new(Panics(Vocab::new(['a']).unwrap())));
    let mut request = Vec::new();
    encode_call(&CallRef::<char>::Complete(&[]), &mut request).unwrap();
    let reply = block_on(server.serve(&request, Vec::new()));
    let err = decode_reply(&reply).unwrap_err();
    assert!(
        matches!(&err, PotentialError::Panicked(m) if m == "boom"),
        "{err:?}"
    );
}

/// Shared memory as a vector: what a worker's `PlaceValues` and a pool's
/// `TakeValues` do to the runtime's ring, without the ring.
#[derive(Default)]
struct Memory {
    values: std::sync::Mutex<Vec<f64>>,
    handed_back: Vec<Placed>,
}

impl PlaceValues for Memory {
    fn place(&self, rows: &[&[f64]]) -> Option<Placed> {
        if !rows.iter().all(|row| all_log_weights(row)) {
            return None;
        }
        let mut values = self.values.lock().unwrap();
        let position = 8 * values.len() as u64;
        values.extend(rows.concat());
        Some(Placed {
            position,
            len: 8 * rows.iter().map(|r| r.len() as u64).sum::<u64>(),
        })
    }
}

impl TakeValues for Memory {
    fn take(
        &mut self,
        placed: Placed,
        width: usize,
        rows: &mut Vec<Vec<f64>>,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let values = self.values.lock().unwrap();
        let start = usize::try_from(placed.position / 8)?;
        let end = start + usize::try_from(placed.len / 8)?;
        let placed_values = values.get(start..end).ok_or("out of bounds")?;
        rows.extend(placed_values.chunks(width).map(<[f64]>::to_vec));
        Ok(())
    }

    fn hand_back(&mut self, placed: Placed) {
        self.handed_back.push(placed);
    }
}

#[test]
fn shared_replies_are_decoded_by_the_one_decoder() {
    let mut memory = Memory::default();
    let rows = [[0.5, -1.0, 0.0], [-2.0, 0.0, -0.25]];
    let refs: Vec<&[f64]> = rows.iter().map(|r| r.as_slice()).collect();
    let mut reply = Vec::new();
    encode_rows(&refs, &mut reply, Some(&memory));
    assert_eq!(reply.len(), 1 + Placed::ENCODED_LEN);
    assert!(is_shared(&reply));
    let back = decode_rows(&reply, Method::BatchLogwNext, 2, 3, Some(&mut memory)).unwrap();
    assert_eq!(back.into_rows(), rows);
    assert!(
        memory.handed_back.is_empty(),
        "taken rows hand their space back"
    );
    // Another shape: refused, and the space is handed back.
    let err = decode_rows(&reply, Method::BatchLogwNext, 3, 3, Some(&mut memory)).unwrap_err();
    assert!(matches!(err, PotentialError::BatchSizeMismatch { .. }));
    // A placement the memory cannot read: malformed, and handed back.
    let mut bad = vec![SHARED];
    Placed {
        position: 800,
        len: 16,
    }
    .encode(&mut bad);
    let err = decode_rows(&bad, Method::LogwNext, 1, 2, Some(&mut memory)).unwrap_err();
    assert!(matches!(err, PotentialError::WorkerFailure(m) if m.contains("malformed")));
    assert_eq!(memory.handed_back.len(), 2);
    // Nobody waits: the space goes back too.
    discard_reply(&reply, Some(&mut memory));
    assert_eq!(memory.handed_back.len(), 3);
    // A connection without shared memory, or a body of the wrong length.
    assert!(decode_rows(&reply, Method::BatchLogwNext, 2, 3, None).is_err());
    assert!(matches!(
        decode_reply(&reply[..reply.len() - 1]),
        Err(PotentialError::WorkerFailure(_))
    ));
}

#[test]
fn placements_travel_as_sixteen_bytes() {
    let placed = Placed {
        position: 1 << 40,
        len: 400_008,
    };
    let mut out = vec![9];
    placed.encode(&mut out);
    assert_eq!(Placed::decode(&out[1..]), Some(placed));
    assert_eq!(Placed::decode(&out[2..]), None);
    assert_eq!(Placed::decode(&[out.as_slice(), &[0]].concat()[1..]), None);
}

#[test]
fn weights_that_are_not_log_weights_fail_as_they_are_decoded_on_every_path() {
    let bad_rows = [[0.5, -1.0, 0.0], [-2.0, f64::NAN, -0.25]];
    let refs: Vec<&[f64]> = bad_rows.iter().map(|r| r.as_slice()).collect();
    let is_nan_of = |err: &PotentialError, want: Method| matches!(err, PotentialError::InvalidWeight { method, value } if *method == want && value.is_nan());
    // In the reply itself.
    let mut reply = Vec::new();
    encode_rows(&refs, &mut reply, None);
    let err = decode_rows(&reply, Method::BatchLogwNext, 2, 3, None).unwrap_err();
    assert!(is_nan_of(&err, Method::BatchLogwNext), "{err:?}");
    // Where there is shared memory: its placer declines them (nothing is
    // placed), and they go in the reply, whose decoder reports them.
    let mut memory = Memory::default();
    let mut reply = Vec::new();
    encode_rows(&refs, &mut reply, Some(&memory));
    assert!(!is_shared(&reply));
    assert!(memory.values.lock().unwrap().is_empty());
    let err = decode_rows(&reply, Method::BatchLogwNext, 2, 3, Some(&mut memory)).unwrap_err();
    assert!(is_nan_of(&err, Method::BatchLogwNext), "{err:?}");
    // A scalar: +inf is not a log weight either.
    let mut reply = Vec::new();
    encode_values(&[f64::INFINITY], &mut reply);
    let err = decode_rows(&reply, Method::Complete, 1, 1, None).unwrap_err();
    assert!(
        matches!(err, PotentialError::InvalidWeight { method: Method::Complete, value } if value == f64::INFINITY),
        "{err:?}"
    );
    // -inf is one.
    let mut reply = Vec::new();
    encode_values(&[f64::NEG_INFINITY], &mut reply);
    assert!(decode_rows(&reply, Method::Complete, 1, 1, None).is_ok());
}

#[test]
fn a_potential_and_its_erased_form_answer_the_same_bytes() {
    // A registered type is served as itself, a product or a wrapper as a
    // `dyn DynPotential`: both must answer every call alike.
    use crate::dyn_potential::DynPotential;
    let erased: Server<dyn DynPotential<char>> =
        Server::new(Arc::new(Length::abc()) as Arc<dyn DynPotential<char>>);
    let contexts = vec![vec!['a'], vec!['a', 'b'], vec![]];
    let symbols = vec![vec![Symbol::Token('a'), Symbol::Eos]];
    let calls = [
        CallRef::Complete(&['a', 'b'][..]),
        CallRef::Prefix(&['a'][..]),
        CallRef::Score(&symbols[0][..]),
        CallRef::LogwNext(&['a'][..]),
        CallRef::BatchComplete(&contexts),
        CallRef::BatchPrefix(&contexts),
        CallRef::BatchScore(&symbols),
        CallRef::BatchLogwNext(&contexts),
        // A token outside the vocabulary (the pool checks tokens before
        // it sends, the worker does not): whatever the answer, the same.
        CallRef::Complete(&['z'][..]),
    ];
    for call in calls {
        let mut request = Vec::new();
        encode_call(&call, &mut request).unwrap();
        assert_eq!(
            block_on(server().serve(&request, Vec::new())),
            block_on(erased.serve(&request, Vec::new())),
            "{call:?}"
        );
    }
    let (mut concrete, mut dynamic) = (Vec::new(), Vec::new());
    server().describe(&mut concrete);
    erased.describe(&mut dynamic);
    assert_eq!(concrete, dynamic);
}
