//! The worker's side: a rebuilt potential that answers encoded calls with
//! encoded replies.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::{Method, PotentialError, Result};
use crate::potential::{Potential, check_len};

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

/// Serves one potential: a registered type itself (its methods' futures
/// awaited inside the reply's, with no box of their own), or an erased
/// `dyn DynPotential` (a product, an autobatching wrapper).
pub(crate) struct Server<P: ?Sized> {
    potential: Arc<P>,
}

impl<P: Potential + ?Sized + 'static> Server<P> {
    pub(crate) fn new(potential: Arc<P>) -> Self {
        Server { potential }
    }

    async fn answer(
        p: &P,
        call: Call<P::Token>,
        reply: &mut Vec<u8>,
        place: Option<&dyn PlaceValues>,
    ) -> Result<()> {
        // No pass of its own here over a batch's megabytes: values that
        // go in the reply are checked as log weights by the pool as it
        // copies them out (`decode_rows`), and those placed in shared
        // memory by the placer before it copies them in, so a NaN is the same
        // error on every path, as `AutoBatched` reports it.
        match call {
            Call::Complete(c) => encode_values(&[p.complete(&c).await?], reply),
            Call::Prefix(c) => encode_values(&[p.prefix(&c).await?], reply),
            Call::Score(c) => encode_values(&[p.score(&c).await?], reply),
            Call::LogwNext(c) => {
                let weights = p.logw_next(&c).await?;
                encode_weights(&[weights], p.vocab().len() + 1, reply, place)?;
            }
            Call::BatchComplete(c) => {
                let values = p.batch_complete(&c).await?;
                encode_values(&values, reply);
            }
            Call::BatchPrefix(c) => {
                let values = p.batch_prefix(&c).await?;
                encode_values(&values, reply);
            }
            Call::BatchScore(c) => {
                let values = p.batch_score(&c).await?;
                encode_values(&values, reply);
            }
            Call::BatchLogwNext(c) => {
                let all = p.batch_logw_next(&c).await?;
                check_len(Method::BatchLogwNext, c.len(), all.len())?;
                encode_weights(&all, p.vocab().len() + 1, reply, place)?;
            }
        }
        Ok(())
    }
}

impl<P: Potential + ?Sized + 'static> ServePotential for Server<P> {
    fn serve_placing(
        &self,
        request: &[u8],
        mut reply: Vec<u8>,
        place: Option<Arc<dyn PlaceValues>>,
    ) -> BoxFuture<'static, Vec<u8>> {
        let call = decode_call::<P::Token>(request);
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
        encode_description::<P::Token>(self.potential.vocab().len(), reply);
    }
}
