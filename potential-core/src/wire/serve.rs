//! The worker's side: a rebuilt potential that answers encoded calls with
//! encoded replies.

use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::dyn_potential::DynPotential;
use crate::error::{Method, PotentialError, Result};
use crate::potential::check_len;
use crate::vocab::TokenType;

use super::call::{Call, decode_call};
use super::describe::encode_description;
use super::place::PlaceValues;
use super::reply::{encode_error, encode_values, encode_weights};

/// A rebuilt potential that answers encoded calls; what a worker serves.
///
/// Made by [`Built::into_server`](crate::Built::into_server), which knows
/// the token type. `serve` never panics and never fails: a malformed call,
/// the potential's error and a panic inside the potential all become error
/// replies, and the potential stays usable.
pub trait ServePotential: Send + Sync {
    /// Decodes the call `request` at once (so the request's buffer is free
    /// when this returns) and gives the future that appends the reply to
    /// `reply` and hands it back.
    fn serve(&self, request: &[u8], reply: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        self.serve_placing(request, reply, None)
    }

    /// As [`serve`](Self::serve), offering the weights of `logw_next` and
    /// `batch_logw_next` to `place` first: what it takes is not copied
    /// into the reply.
    fn serve_placing(
        &self,
        request: &[u8],
        reply: Vec<u8>,
        place: Option<Arc<dyn PlaceValues>>,
    ) -> BoxFuture<'static, Vec<u8>>;

    /// Appends the [`Description`](super::Description) reply: the answer to the recipe.
    fn describe(&self, reply: &mut Vec<u8>);
}

/// Serves one potential over tokens of type `T`.
pub(crate) struct Server<T> {
    potential: Arc<dyn DynPotential<T>>,
    tokens: PhantomData<fn() -> T>,
}

impl<T: TokenType> Server<T> {
    pub(crate) fn new(potential: Arc<dyn DynPotential<T>>) -> Self {
        Server {
            potential,
            tokens: PhantomData,
        }
    }

    async fn answer(
        p: &dyn DynPotential<T>,
        call: Call<T>,
        reply: &mut Vec<u8>,
        place: Option<&dyn PlaceValues>,
    ) -> Result<()> {
        // No pass of its own here over a batch's megabytes: values that
        // go in the reply are checked as log weights by the pool as it
        // copies them out (`decode_rows`), and those placed in shared
        // memory by the placer before it copies them in, so a NaN is the same
        // error on every path, as `AutoBatched` reports it.
        match call {
            Call::Complete(c) => encode_values(&[p.dyn_complete(&c).await?], reply),
            Call::Prefix(c) => encode_values(&[p.dyn_prefix(&c).await?], reply),
            Call::Score(c) => encode_values(&[p.dyn_score(&c).await?], reply),
            Call::LogwNext(c) => {
                let weights = p.dyn_logw_next(&c).await?;
                encode_weights(&[weights], p.dyn_vocab().len() + 1, reply, place)?;
            }
            Call::BatchComplete(c) => {
                let values = p.dyn_batch_complete(&c).await?;
                encode_values(&values, reply);
            }
            Call::BatchPrefix(c) => {
                let values = p.dyn_batch_prefix(&c).await?;
                encode_values(&values, reply);
            }
            Call::BatchScore(c) => {
                let values = p.dyn_batch_score(&c).await?;
                encode_values(&values, reply);
            }
            Call::BatchLogwNext(c) => {
                let all = p.dyn_batch_logw_next(&c).await?;
                check_len(Method::BatchLogwNext, c.len(), all.len())?;
                encode_weights(&all, p.dyn_vocab().len() + 1, reply, place)?;
            }
        }
        Ok(())
    }
}

impl<T: TokenType> ServePotential for Server<T> {
    fn serve_placing(
        &self,
        request: &[u8],
        mut reply: Vec<u8>,
        place: Option<Arc<dyn PlaceValues>>,
    ) -> BoxFuture<'static, Vec<u8>> {
        let call = decode_call::<T>(request);
        let potential = self.potential.clone();
        Box::pin(async move {
            let start = reply.len();
            let outcome = match call {
                Ok(call) => AssertUnwindSafe(Self::answer(
                    &*potential,
                    call,
                    &mut reply,
                    place.as_deref(),
                ))
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| Err(PotentialError::from_panic(payload))),
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                reply.truncate(start);
                encode_error(&e, &mut reply);
            }
            reply
        })
    }

    fn describe(&self, reply: &mut Vec<u8>) {
        encode_description::<T>(self.potential.dyn_vocab().len(), reply);
    }
}
