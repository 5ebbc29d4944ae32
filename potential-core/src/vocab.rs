//! Tokens, end of sequence, and the vocabulary with its index.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::{self, Debug, Write as _};
use std::hash::Hash;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{PotentialError, Result};
use crate::hash::BuildFastHasher;

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

/// A token, a context or a symbol as people read it, in errors and in the
/// `Debug` output of this library: byte-string tokens (`Vec<u8>`,
/// `Box<[u8]>`) as quoted text with the bytes that are not UTF-8 escaped
/// (`"the"`, `"caf\xC3"`), every other token by its own `Debug` form.
///
/// Byte strings are the usual tokens of language models, and their
/// standard `Debug` form (`[116, 104, 101]`) cannot be read; wrapping a
/// token in `Shown` changes how it prints and nothing else. Your own token
/// types print as their `Debug` says.
///
/// ```
/// use potential_core::{Shown, Symbol};
///
/// assert_eq!(format!("{:?}", Shown(&b"the".to_vec())), r#""the""#);
/// let context = [b"caf".to_vec(), b"\xC3".to_vec()];
/// assert_eq!(format!("{:?}", Shown(&context[..])), r#"["caf", "\xC3"]"#);
/// let next = Symbol::Token(b"cat".to_vec());
/// assert_eq!(format!("{:?}", next.as_ref().map(Shown)), r#"Token("cat")"#);
/// assert_eq!(format!("{:?}", Shown(&['a', 'b'][..])), "['a', 'b']");
/// ```
#[derive(Clone, Copy)]
pub struct Shown<'a, T: ?Sized>(pub &'a T);

/// Quoted text, with the bytes that are not UTF-8 as `\xNN`.
fn fmt_bytes(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_char('"')?;
    for chunk in bytes.utf8_chunks() {
        // `str`'s Debug escapes quotes, backslashes and control characters.
        let valid = format!("{:?}", chunk.valid());
        f.write_str(&valid[1..valid.len() - 1])?;
        for b in chunk.invalid() {
            write!(f, "\\x{b:02X}")?;
        }
    }
    f.write_char('"')
}

impl<T: TokenType> Debug for Shown<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token: &dyn Any = self.0;
        if let Some(bytes) = token.downcast_ref::<Vec<u8>>() {
            fmt_bytes(bytes, f)
        } else if let Some(bytes) = token.downcast_ref::<Box<[u8]>>() {
            fmt_bytes(bytes, f)
        } else {
            Debug::fmt(self.0, f)
        }
    }
}

impl<T: TokenType> Debug for Shown<'_, [T]> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(Shown)).finish()
    }
}

/// A token of the vocabulary or the end of sequence.
///
/// End of sequence is a value of its own, never a reserved value of `T`.
/// Its `Debug` form is the token's own; `symbol.as_ref().map(Shown)`
/// prints byte strings as text (see [`Shown`]).
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

    /// Applies `f` to the token; EOS stays EOS.
    ///
    /// ```
    /// use potential_core::Symbol;
    /// assert_eq!(Symbol::Token(2).map(|t| t * 10), Symbol::Token(20));
    /// assert_eq!(Symbol::<u8>::Eos.map(|t| t * 10), Symbol::Eos);
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Symbol<U> {
        match self {
            Symbol::Token(t) => Symbol::Token(f(t)),
            Symbol::Eos => Symbol::Eos,
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
    index: HashMap<T, usize, BuildFastHasher>,
    /// Writes a token as [`Shown`] does. Stored here, where `T` is known to
    /// be a [`TokenType`], so that the `Debug` forms of the vocabulary and
    /// of the weights over it need no more than `T: Debug`.
    show: fn(&T, &mut fmt::Formatter<'_>) -> fmt::Result,
}

/// A token written by its vocabulary's `show`.
struct ShownBy<'a, T>(&'a Vocab<T>, &'a T);

impl<T> Debug for ShownBy<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0.inner.show)(self.1, f)
    }
}

impl<T> Vocab<T> {
    /// `symbol` as [`Shown`] writes it (for the `Debug` forms of the
    /// weights over this vocabulary).
    pub(crate) fn show_symbol<'a>(&'a self, symbol: Symbol<&'a T>) -> impl Debug + 'a {
        symbol.map(|t| ShownBy(self, t))
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
                    token: format!("{:?}", Shown(token)),
                });
            }
        }
        Ok(Vocab {
            inner: Arc::new(VocabInner {
                tokens,
                index,
                show: |t, f| Debug::fmt(&Shown(t), f),
            }),
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

impl<T> Debug for Vocab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 8;
        let tokens = &self.inner.tokens;
        let mut list = f.debug_list();
        list.entries(tokens.iter().take(SHOWN).map(|t| ShownBy(self, t)));
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
            PotentialError::DuplicateToken { token } => assert_eq!(token, r#""ab""#),
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
    fn byte_strings_show_as_text_escaped_where_not_utf8() {
        let v = Vocab::new([
            b"the".to_vec(),
            b" \"cat\"\n".to_vec(),
            vec![0xff, b'a', 0xc3],
        ])
        .unwrap();
        assert_eq!(format!("{v:?}"), r#"["the", " \"cat\"\n", "\xFFa\xC3"]"#);
        let boxed: Box<[u8]> = Box::from(&b"caf\xc3\xa9"[..]);
        assert_eq!(format!("{:?}", Shown(&boxed)), r#""café""#);
        assert_eq!(format!("{:?}", Shown(&vec![1_u32, 2])), "[1, 2]");
        let w = crate::LogWeights::new(v, vec![0.0, -1.0, -2.0, -3.0]).unwrap();
        assert_eq!(
            format!("{w:?}"),
            r#"LogWeights { len: 4, top: [(Token("the"), 0.0), (Token(" \"cat\"\n"), -1.0), (Token("\xFFa\xC3"), -2.0), (Eos, -3.0)] }"#
        );
    }

    #[test]
    fn debug_is_short_for_large_vocabularies() {
        let v = Vocab::new(0_u32..1000).unwrap();
        let text = format!("{v:?}");
        assert!(text.contains("1000 tokens in all"), "{text}");
    }
}
