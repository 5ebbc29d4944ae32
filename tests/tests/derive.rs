//! Runtime tests of the code `#[derive(Potential)]` and `#[batched]`
//! generate: the same answers as a hand-written impl, the native-batch
//! flags, the empty-batch errors, and recipes that round-trip.

use potential_core::checks::{assert_respawns, block_on};
use potential_core::{
    LogWeights, Method, NativeBatch, Potential, PotentialError, Registered, Spawnable, Symbol,
    Vocab, batched, registered_tags,
};
use serde::{Deserialize, Serialize};

/// genlm-control's length potential, derived; no native batch form.
#[derive(Debug, Clone, Potential, Serialize, Deserialize)]
struct Length {
    vocab: Vocab<u8>,
    scale: f64,
}

#[batched]
impl Length {
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-self.scale * context.len() as f64)
    }

    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        if context.contains(&b'x') {
            return Ok(f64::NEG_INFINITY);
        }
        Ok(-0.5 * self.scale * context.len() as f64)
    }

    /// Not a potential method: stays inherent.
    fn scale(&self) -> f64 {
        self.scale
    }
}

/// The same potential written by hand.
struct LengthByHand {
    vocab: Vocab<u8>,
    scale: f64,
}

impl Potential for LengthByHand {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.vocab
    }
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(-self.scale * context.len() as f64)
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> {
        if context.contains(&b'x') {
            return Ok(f64::NEG_INFINITY);
        }
        Ok(-0.5 * self.scale * context.len() as f64)
    }
}

/// Every batch form native, over `u32` tokens, in a tuple struct.
#[derive(Potential, Serialize, Deserialize)]
#[potential(tag = "tests::AllNative")]
struct AllNative(u32, Vocab<u32>);

#[batched]
impl AllNative {
    async fn complete(&self, context: &[u32]) -> Result<f64, PotentialError> {
        Ok(context.iter().sum::<u32>() as f64 * self.0 as f64)
    }
    async fn prefix(&self, context: &[u32]) -> Result<f64, PotentialError> {
        Ok(context.len() as f64)
    }
    async fn batch_complete(&self, contexts: &[Vec<u32>]) -> Result<Vec<f64>, PotentialError> {
        let mut out = Vec::with_capacity(contexts.len());
        for c in contexts {
            out.push(self.complete(c).await?);
        }
        Ok(out)
    }
    async fn batch_prefix(&self, contexts: &[Vec<u32>]) -> Result<Vec<f64>, PotentialError> {
        Ok(contexts.iter().map(|c| c.len() as f64).collect())
    }
    async fn batch_score(&self, contexts: &[Vec<Symbol<u32>>]) -> Result<Vec<f64>, PotentialError> {
        let mut out = Vec::with_capacity(contexts.len());
        for c in contexts {
            out.push(self.score(c).await?);
        }
        Ok(out)
    }
    async fn batch_logw_next(
        &self,
        contexts: &[Vec<u32>],
    ) -> Result<Vec<LogWeights<u32>>, PotentialError> {
        let mut out = Vec::with_capacity(contexts.len());
        for c in contexts {
            out.push(self.logw_next(c).await?);
        }
        Ok(out)
    }
}

/// A generic potential, registered per instantiation; `logw_next` and
/// `batch_prefix` written by hand.
///
/// `Vocab<T>` is serde for `T: TokenType`, a bound serde's derive cannot
/// guess: it is given with `#[serde(bound = ...)]`.
#[derive(Clone, Potential, Serialize, Deserialize)]
#[serde(bound = "T: potential_core::TokenType")]
struct Uniform<T> {
    #[potential(vocab)]
    tokens: Vocab<T>,
    other: Vocab<T>,
}

potential_core::register!(Uniform<String>);

#[batched]
impl<T: potential_core::TokenType> Uniform<T> {
    async fn complete(&self, _: &[T]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn prefix(&self, _: &[T]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
    async fn logw_next(&self, _: &[T]) -> Result<LogWeights<T>, PotentialError> {
        let n = self.tokens.len() + 1;
        LogWeights::new(self.tokens.clone(), vec![-(n as f64).ln(); n])
    }
    async fn batch_prefix(&self, contexts: &[Vec<T>]) -> Result<Vec<f64>, PotentialError> {
        Ok(vec![0.0; contexts.len()])
    }
}

fn length() -> Length {
    Length {
        vocab: Vocab::new(*b"abx").unwrap(),
        scale: 2.0,
    }
}

fn by_hand() -> LengthByHand {
    LengthByHand {
        vocab: Vocab::new(*b"abx").unwrap(),
        scale: 2.0,
    }
}

/// Every method of `a` and `b` on the same contexts, compared.
async fn same_answers<A, B>(a: &A, b: &B, contexts: &[Vec<A::Token>])
where
    A: Potential,
    B: Potential<Token = A::Token>,
{
    assert_eq!(a.vocab(), b.vocab());
    let symbols: Vec<Vec<Symbol<A::Token>>> = contexts
        .iter()
        .flat_map(|c| {
            let open: Vec<_> = c.iter().cloned().map(Symbol::Token).collect();
            let mut ended = open.clone();
            ended.push(Symbol::Eos);
            [open, ended]
        })
        .collect();
    for c in contexts {
        assert_eq!(a.complete(c).await.ok(), b.complete(c).await.ok());
        assert_eq!(a.prefix(c).await.ok(), b.prefix(c).await.ok());
        let (wa, wb) = (a.logw_next(c).await, b.logw_next(c).await);
        assert_eq!(wa.map(|w| w.into_vec()).ok(), wb.map(|w| w.into_vec()).ok());
    }
    for s in &symbols {
        assert_eq!(a.score(s).await.ok(), b.score(s).await.ok());
    }
    assert_eq!(
        a.batch_complete(contexts).await.unwrap(),
        b.batch_complete(contexts).await.unwrap()
    );
    assert_eq!(
        a.batch_prefix(contexts).await.unwrap(),
        b.batch_prefix(contexts).await.unwrap()
    );
    assert_eq!(
        a.batch_score(&symbols).await.unwrap(),
        b.batch_score(&symbols).await.unwrap()
    );
    let mut live = Vec::new();
    for c in contexts {
        if a.logw_next(c).await.is_ok() {
            live.push(c.clone());
        }
    }
    let (wa, wb) = (
        a.batch_logw_next(&live).await.unwrap(),
        b.batch_logw_next(&live).await.unwrap(),
    );
    let flat =
        |w: Vec<LogWeights<A::Token>>| w.into_iter().map(|w| w.into_vec()).collect::<Vec<_>>();
    assert_eq!(flat(wa), flat(wb));
}

#[test]
fn the_generated_impl_answers_like_a_hand_written_one() {
    let contexts = vec![vec![], b"a".to_vec(), b"ab".to_vec(), b"ax".to_vec()];
    block_on(same_answers(&length(), &by_hand(), &contexts));
    // An inherent method of the block stays callable.
    assert_eq!(length().scale(), 2.0);
}

#[test]
fn native_batch_flags_follow_the_methods_written() {
    assert_eq!(length().native_batch(), NativeBatch::NONE);
    let all = AllNative(3, Vocab::new([1, 2]).unwrap());
    assert_eq!(all.native_batch(), NativeBatch::ALL);
    let vocab = Vocab::new(["a".to_string()]).unwrap();
    let uniform = Uniform {
        tokens: vocab.clone(),
        other: vocab,
    };
    assert_eq!(
        uniform.native_batch(),
        NativeBatch {
            prefix: true,
            ..NativeBatch::NONE
        }
    );
}

#[test]
fn user_written_batch_forms_reject_empty_batches() {
    block_on(async {
        let all = AllNative(3, Vocab::new([1, 2]).unwrap());
        let empty: &[Vec<u32>] = &[];
        let is_empty_batch = |r: Result<Vec<f64>, PotentialError>, name: Method| {
            assert!(
                matches!(r, Err(PotentialError::EmptyBatch { method }) if method == name),
                "{name}"
            )
        };
        is_empty_batch(all.batch_complete(empty).await, Method::BatchComplete);
        is_empty_batch(all.batch_prefix(empty).await, Method::BatchPrefix);
        is_empty_batch(all.batch_score(&[]).await, Method::BatchScore);
        assert!(matches!(
            all.batch_logw_next(empty).await,
            Err(PotentialError::EmptyBatch {
                method: Method::BatchLogwNext
            })
        ));
        // The defaults reject them too.
        is_empty_batch(length().batch_complete(&[]).await, Method::BatchComplete);
    });
}

#[test]
fn native_forms_answer_like_the_defaults() {
    struct Reference(Vocab<u32>);
    impl Potential for Reference {
        type Token = u32;
        fn vocab(&self) -> &Vocab<u32> {
            &self.0
        }
        async fn complete(&self, context: &[u32]) -> Result<f64, PotentialError> {
            Ok(context.iter().sum::<u32>() as f64 * 3.0)
        }
        async fn prefix(&self, context: &[u32]) -> Result<f64, PotentialError> {
            Ok(context.len() as f64)
        }
    }
    let vocab = Vocab::new([1, 2]).unwrap();
    let contexts = vec![vec![], vec![1], vec![2, 1, 2]];
    block_on(same_answers(
        &AllNative(3, vocab.clone()),
        &Reference(vocab),
        &contexts,
    ));
}

#[test]
fn recipes_round_trip_through_the_registry() {
    block_on(async {
        let original = length();
        let contexts = vec![b"ab".to_vec(), b"x".to_vec()];
        let rebuilt = assert_respawns(&original, &contexts).await.unwrap();
        same_answers(&rebuilt, &original, &contexts).await;
        assert_eq!(rebuilt.native_batch(), NativeBatch::NONE);

        let all = AllNative(5, Vocab::new([7, 8]).unwrap());
        let rebuilt = assert_respawns(&all, &[vec![7, 7]]).await.unwrap();
        same_answers(&rebuilt, &all, &[vec![7, 7]]).await;
        assert_eq!(rebuilt.native_batch(), NativeBatch::ALL);
    });
}

#[test]
fn tags_default_to_the_type_name_and_can_be_overridden() {
    assert_eq!(
        <Length as Registered>::tag(),
        std::any::type_name::<Length>()
    );
    assert_eq!(<AllNative as Registered>::tag(), "tests::AllNative");
    let tags = registered_tags();
    for tag in [<Length as Registered>::tag(), "tests::AllNative"] {
        assert!(tags.contains(&tag), "{tag} missing from {tags:?}");
    }
}

#[test]
fn generic_potentials_round_trip_once_registered() {
    block_on(async {
        let uniform = Uniform {
            tokens: Vocab::new(["a".to_string(), "b".to_string()]).unwrap(),
            other: Vocab::new(["c".to_string()]).unwrap(),
        };
        // The marked field is the vocabulary, not the other `Vocab`.
        assert_eq!(uniform.vocab().len(), 2);
        let rebuilt = assert_respawns(&uniform, &[vec![], vec!["a".to_string()]])
            .await
            .unwrap();
        let weights = rebuilt.logw_next(&[]).await.unwrap();
        assert_eq!(weights.as_slice(), [-(3f64).ln(); 3]);
        assert!(registered_tags().contains(&<Uniform<String> as Registered>::tag()));
        // Without `register!`, another instantiation is not in the registry.
        let unlisted = Uniform {
            tokens: Vocab::new([1u8]).unwrap(),
            other: Vocab::new([2u8]).unwrap(),
        };
        let err = unlisted.recipe().unwrap().build().unwrap_err();
        assert!(err.to_string().contains("register!"), "{err}");
    });
}

/// The derive without `#[batched]`: a hand-written impl stays possible and
/// the type is still spawnable.
#[derive(Potential, Serialize, Deserialize)]
struct HandWritten {
    vocab: Vocab<u8>,
}

impl Potential for HandWritten {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.vocab
    }
    async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> {
        Ok(context.len() as f64)
    }
    async fn prefix(&self, _: &[u8]) -> Result<f64, PotentialError> {
        Ok(0.0)
    }
}

#[test]
fn hand_written_impls_of_derived_structs_are_spawnable() {
    block_on(async {
        let p = HandWritten {
            vocab: Vocab::new([1, 2]).unwrap(),
        };
        let rebuilt = assert_respawns(&p, &[vec![1, 2, 1]]).await.unwrap();
        assert_eq!(rebuilt.complete(&[1, 2, 1]).await.unwrap(), 3.0);
    });
}
