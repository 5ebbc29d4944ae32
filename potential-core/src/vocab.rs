//! Tokens, end of sequence, and the vocabulary with its index.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{PotentialError, Result};

/// What a token type must be: cloneable, hashable, printable, shareable
/// across threads and serializable (so that it can travel to a worker).
///
/// Implemented for every type that has these traits: `u8`, `u32`, `char`,
/// `String`, `Vec<u8>` and your own types alike.
pub trait TokenType:
    Clone + Eq + Hash + Debug + Send + Sync + Serialize + DeserializeOwned + 'static
{
}

impl<T> TokenType for T where
    T: Clone + Eq + Hash + Debug + Send + Sync + Serialize + DeserializeOwned + 'static
{
}

/// A token of the vocabulary or the end of sequence.
///
/// End of sequence is a value of its own, never a reserved value of `T`.
///
/// ```
/// use potential_core::Symbol;
/// let ctx = [Symbol::Token(b'a'), Symbol::Eos];
/// assert!(ctx[1].is_eos());
/// assert_eq!(ctx[0].token(), Some(&b'a'));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Symbol<T> {
    /// A token of the vocabulary.
    Token(T),
    /// The end of sequence.
    Eos,
}

impl<T> Symbol<T> {
    /// Whether this is the end of sequence.
    pub fn is_eos(&self) -> bool {
        matches!(self, Symbol::Eos)
    }

    /// The token, or `None` for the end of sequence.
    pub fn token(&self) -> Option<&T> {
        match self {
            Symbol::Token(t) => Some(t),
            Symbol::Eos => None,
        }
    }

    /// Borrows the token.
    pub fn as_ref(&self) -> Symbol<&T> {
        match self {
            Symbol::Token(t) => Symbol::Token(t),
            Symbol::Eos => Symbol::Eos,
        }
    }
}

impl<T: Clone> Symbol<&T> {
    /// Clones the borrowed token.
    pub fn cloned(self) -> Symbol<T> {
        match self {
            Symbol::Token(t) => Symbol::Token(t.clone()),
            Symbol::Eos => Symbol::Eos,
        }
    }
}

impl<T> From<T> for Symbol<T> {
    fn from(token: T) -> Self {
        Symbol::Token(token)
    }
}

/// Splits a context of symbols into its tokens and whether it ends with EOS.
///
/// An end of sequence anywhere but in the last position is an error.
///
/// ```
/// use potential_core::{split_eos, Symbol};
/// let (tokens, ended) = split_eos(&[Symbol::Token(1_u32), Symbol::Token(2), Symbol::Eos]).unwrap();
/// assert_eq!((tokens, ended), (vec![1, 2], true));
/// assert!(split_eos(&[Symbol::Eos, Symbol::Token(1_u32)]).is_err());
/// ```
pub fn split_eos<T: Clone + Debug>(context: &[Symbol<T>]) -> Result<(Vec<T>, bool)> {
    let mut tokens = Vec::with_capacity(context.len());
    for (i, symbol) in context.iter().enumerate() {
        match symbol {
            Symbol::Token(t) => tokens.push(t.clone()),
            Symbol::Eos if i + 1 == context.len() => return Ok((tokens, true)),
            Symbol::Eos => {
                return Err(PotentialError::InvalidInput(format!(
                    "end of sequence at position {i} of a context of length {}",
                    context.len()
                )));
            }
        }
    }
    Ok((tokens, false))
}

/// A vocabulary: an ordered set of distinct tokens with an index from token
/// to position.
///
/// Cheap to clone: the tokens and the index are shared. Position
/// `vocab.len()` stands for the end of sequence in weight vectors.
///
/// ```
/// use potential_core::{PotentialError, Vocab};
///
/// let vocab = Vocab::new(vec!["a".to_string(), "b".to_string()])?;
/// assert_eq!(vocab.len(), 2);
/// assert_eq!(vocab.index_of(&"b".to_string()), Some(1));
/// assert_eq!(vocab.eos_index(), 2);
/// assert!(matches!(Vocab::<u8>::new(vec![]), Err(PotentialError::EmptyVocabulary)));
/// # Ok::<(), PotentialError>(())
/// ```
pub struct Vocab<T> {
    inner: Arc<VocabInner<T>>,
}

struct VocabInner<T> {
    tokens: Vec<T>,
    index: HashMap<T, usize, BuildHasherDefault<TokenHasher>>,
}

/// The hasher of the token index: FxHash (as rustc's own maps use), a
/// rotate, xor and multiply per word. Looking tokens up is on the per-call
/// path (the autobatching wrapper checks every token of every context) and
/// SipHash, std's default, costs several times more for a small token;
/// its resistance to collision floods buys nothing here, as the tokens are
/// the vocabulary's author's, not an attacker's.
#[derive(Default, Clone, Copy)]
struct TokenHasher(u64);

impl TokenHasher {
    fn add(&mut self, word: u64) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl<T: TokenType> Vocab<T> {
    /// Builds a vocabulary; errors on no tokens and on a repeated token.
    pub fn new(tokens: impl IntoIterator<Item = T>) -> Result<Self> {
        let tokens: Vec<T> = tokens.into_iter().collect();
        if tokens.is_empty() {
            return Err(PotentialError::EmptyVocabulary);
        }
        let mut index = HashMap::with_capacity_and_hasher(tokens.len(), Default::default());
        for (i, token) in tokens.iter().enumerate() {
            if index.insert(token.clone(), i).is_some() {
                return Err(PotentialError::DuplicateToken {
                    token: format!("{token:?}"),
                });
            }
        }
        Ok(Vocab {
            inner: Arc::new(VocabInner { tokens, index }),
        })
    }

    /// The position of a token, or `None` when it is not in the vocabulary.
    pub fn index_of(&self, token: &T) -> Option<usize> {
        self.inner.index.get(token).copied()
    }

    /// The position of a symbol: the token's, or [`Vocab::eos_index`] for EOS.
    pub fn symbol_index(&self, symbol: Symbol<&T>) -> Option<usize> {
        match symbol {
            Symbol::Token(t) => self.index_of(t),
            Symbol::Eos => Some(self.eos_index()),
        }
    }

    /// Whether the token is in the vocabulary.
    pub fn contains(&self, token: &T) -> bool {
        self.inner.index.contains_key(token)
    }
}

impl<T> Vocab<T> {
    /// The number of tokens (EOS not counted).
    pub fn len(&self) -> usize {
        self.inner.tokens.len()
    }

    /// Always `false`: an empty vocabulary cannot be built. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.inner.tokens.is_empty()
    }

    /// The position that stands for the end of sequence: one past the last token.
    pub fn eos_index(&self) -> usize {
        self.inner.tokens.len()
    }

    /// The tokens in order.
    pub fn tokens(&self) -> &[T] {
        &self.inner.tokens
    }

    /// The token at a position, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.inner.tokens.get(index)
    }

    /// The symbol at a position of a weight vector: a token, EOS at
    /// `len()`, or `None` past that.
    pub fn symbol(&self, index: usize) -> Option<Symbol<&T>> {
        match self.inner.tokens.get(index) {
            Some(t) => Some(Symbol::Token(t)),
            None if index == self.len() => Some(Symbol::Eos),
            None => None,
        }
    }

    /// The tokens followed by EOS, in weight-vector order.
    pub fn symbols(&self) -> impl Iterator<Item = Symbol<&T>> + '_ {
        self.inner
            .tokens
            .iter()
            .map(Symbol::Token)
            .chain(std::iter::once(Symbol::Eos))
    }

    /// Whether both handles share the same storage (a cheap equality test).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Clone for Vocab<T> {
    fn clone(&self) -> Self {
        Vocab {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: PartialEq> PartialEq for Vocab<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.tokens == other.inner.tokens
    }
}

impl<T: Eq> Eq for Vocab<T> {}

impl<T: Debug> Debug for Vocab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 8;
        let tokens = &self.inner.tokens;
        let mut list = f.debug_list();
        list.entries(tokens.iter().take(SHOWN));
        if tokens.len() > SHOWN {
            list.entry(&format_args!("… {} tokens in all", tokens.len()));
        }
        list.finish()
    }
}

impl<T: Serialize> Serialize for Vocab<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.inner.tokens.serialize(serializer)
    }
}

impl<'de, T: TokenType> Deserialize<'de> for Vocab<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let tokens = Vec::<T>::deserialize(deserializer)?;
        Vocab::new(tokens).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_indexes() {
        let v = Vocab::new(vec![3_u32, 1, 2]).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v.index_of(&1), Some(1));
        assert_eq!(v.index_of(&9), None);
        assert_eq!(v.get(2), Some(&2));
        assert_eq!(v.symbol(3), Some(Symbol::Eos));
        assert_eq!(v.symbol(4), None);
        assert_eq!(v.symbol_index(Symbol::Eos), Some(3));
        assert_eq!(v.symbols().count(), 4);
    }

    #[test]
    fn rejects_empty_and_duplicates_naming_the_token() {
        assert!(matches!(
            Vocab::<String>::new(Vec::new()),
            Err(PotentialError::EmptyVocabulary)
        ));
        let err = Vocab::new(vec![b"ab".to_vec(), b"c".to_vec(), b"ab".to_vec()]).unwrap_err();
        match err {
            PotentialError::DuplicateToken { token } => assert_eq!(token, "[97, 98]"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn works_for_every_token_type() {
        assert_eq!(Vocab::new(0_u8..=255).unwrap().len(), 256);
        assert_eq!(Vocab::new(vec!['x', 'y']).unwrap().len(), 2);
        assert_eq!(
            Vocab::new(vec!["a".to_string()]).unwrap().tokens(),
            ["a".to_string()]
        );
        assert_eq!(Vocab::new(vec![vec![1_u8, 2]]).unwrap().len(), 1);
    }

    #[test]
    fn clones_share_storage() {
        let v = Vocab::new(vec![1_u8, 2]).unwrap();
        let w = v.clone();
        assert!(v.ptr_eq(&w));
        assert_eq!(v, Vocab::new(vec![1_u8, 2]).unwrap());
    }

    #[test]
    fn serde_round_trip_revalidates() {
        let v = Vocab::new(vec![1_u32, 2]).unwrap();
        let bytes = postcard::to_stdvec(&v).unwrap();
        let back: Vocab<u32> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, v);
        let dup = postcard::to_stdvec(&vec![1_u32, 1]).unwrap();
        assert!(postcard::from_bytes::<Vocab<u32>>(&dup).is_err());
    }

    #[test]
    fn split_eos_rejects_eos_in_the_middle() {
        assert_eq!(split_eos::<u8>(&[]).unwrap(), (vec![], false));
        assert_eq!(split_eos(&[Symbol::<u8>::Eos]).unwrap(), (vec![], true));
        let err = split_eos(&[Symbol::Token(1_u8), Symbol::Eos, Symbol::Token(2)]).unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)));
    }

    #[test]
    fn debug_is_short_for_large_vocabularies() {
        let v = Vocab::new(0_u32..1000).unwrap();
        let text = format!("{v:?}");
        assert!(text.contains("1000 tokens in all"), "{text}");
    }
}
