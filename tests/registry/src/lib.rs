//! A library that registers an instantiation of a generic potential, as
//! `potential-builtins` registers `Regex<u8>`: the other half of
//! `tests/registry.rs`, which registers the same instantiation again.
#![forbid(unsafe_code)]

use std::marker::PhantomData;

use potential_core::{Potential, Registered, Result, TokenType, Vocab};
use serde::{Deserialize, Serialize};

/// Every context weighs `-len`: a generic potential, so that this crate
/// and its test each instantiate `Length<u8>`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "T: TokenType")]
pub struct Length<T> {
    vocab: Vocab<T>,
    tokens: PhantomData<fn() -> T>,
}

impl<T: TokenType> Length<T> {
    /// Over `vocab`.
    pub fn new(vocab: Vocab<T>) -> Self {
        Length {
            vocab,
            tokens: PhantomData,
        }
    }
}

impl<T: TokenType> Potential for Length<T> {
    type Token = T;

    fn vocab(&self) -> &Vocab<T> {
        &self.vocab
    }

    async fn complete(&self, context: &[T]) -> Result<f64> {
        Ok(-(context.len() as f64))
    }

    async fn prefix(&self, context: &[T]) -> Result<f64> {
        Ok(-(context.len() as f64))
    }
}

impl<T: TokenType> Registered for Length<T> {}
potential_core::register!(Length<u8>);
