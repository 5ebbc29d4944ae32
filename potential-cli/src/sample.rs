//! The samplers of the command over a model and a grammar, each with or
//! without autobatching, the grammar in this process or in workers.

use std::sync::Arc;

use potential_builtins::Grammar;
use potential_core::ops::Product;
use potential_core::{Potential, PotentialExt, Result};
use potential_llm::Llm;
use potential_runtime::MultiprocessExt;
use potential_smc::{Awrs, LocallyOptimal, Progress, Run, SamplerOptions, Smc};

use crate::cli::SamplerKind;

/// What a step callback is: it sees the particles after each step.
pub type OnStep<'a> = dyn FnMut(&Progress<'_, Vec<u8>>) + Send + 'a;

/// How to run: the sampler, its options, and where the calls go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct How {
    /// The sampler.
    pub sampler: SamplerKind,
    /// Its options.
    pub options: SamplerOptions,
    /// The grammar in this many worker processes; `None`: in this process.
    pub workers: Option<usize>,
    /// Whether the model's and the grammar's concurrent calls are
    /// gathered into batch calls.
    pub autobatch: bool,
}

/// Runs the sampler `how` names over `lm` and `grammar` (the model alone
/// when there is none: every sampler is then the model's own proposal).
///
/// - [`SamplerKind::Smc`]: [`LocallyOptimal`] over the product of the
///   grammar and the model;
/// - [`SamplerKind::Direct`]: [`LocallyOptimal`] over the model, the
///   grammar as the critic;
/// - [`SamplerKind::Awrs`]: [`Awrs`] over the model and the grammar.
///
/// The wrappers (batching loops, worker pools) are shut down before it
/// returns, also when the run fails.
pub async fn sample(
    lm: Llm,
    grammar: Option<Grammar>,
    how: &How,
    on_step: &mut OnStep<'_>,
) -> Result<Run<Vec<u8>>> {
    if how.autobatch {
        let lm = Arc::new(lm.to_autobatched());
        let run = with_grammar(Arc::clone(&lm), grammar, how, on_step).await;
        lm.shutdown().await;
        run
    } else {
        with_grammar(Arc::new(lm), grammar, how, on_step).await
    }
}

/// The grammar wrapped as `how` says, then the sampler.
async fn with_grammar<L>(
    lm: Arc<L>,
    grammar: Option<Grammar>,
    how: &How,
    on_step: &mut OnStep<'_>,
) -> Result<Run<Vec<u8>>>
where
    L: Potential<Token = Vec<u8>> + 'static,
{
    let Some(grammar) = grammar else {
        return Smc::new(&LocallyOptimal::new(lm.as_ref()), how.options)
            .run(on_step)
            .await;
    };
    match (how.workers, how.autobatch) {
        (None, false) => run_sampler(how, lm, Arc::new(grammar), on_step).await,
        (None, true) => {
            let grammar = Arc::new(grammar.to_autobatched());
            let run = run_sampler(how, lm, Arc::clone(&grammar), on_step).await;
            grammar.shutdown().await;
            run
        }
        (Some(workers), false) => {
            let grammar = Arc::new(grammar.to_multiprocess(workers).await?);
            let run = run_sampler(how, lm, Arc::clone(&grammar), on_step).await;
            grammar.shutdown().await;
            run
        }
        (Some(workers), true) => {
            let grammar = Arc::new(grammar.to_multiprocess(workers).await?.to_autobatched());
            let run = run_sampler(how, lm, Arc::clone(&grammar), on_step).await;
            grammar.shutdown().await;
            grammar.inner().shutdown().await;
            run
        }
    }
}

/// The sampler itself, over a model and a constraint however wrapped.
async fn run_sampler<L, C>(
    how: &How,
    lm: Arc<L>,
    constraint: Arc<C>,
    on_step: &mut OnStep<'_>,
) -> Result<Run<Vec<u8>>>
where
    L: Potential<Token = Vec<u8>> + 'static,
    C: Potential<Token = Vec<u8>> + 'static,
{
    match how.sampler {
        SamplerKind::Smc => {
            // The constraint first: a product asks both factors at once, and
            // a constraint in workers then has its requests on their way
            // before the model takes this thread.
            let product = Product::new(Arc::clone(&constraint), Arc::clone(&lm))?;
            Smc::new(&LocallyOptimal::new(&product), how.options)
                .run(on_step)
                .await
        }
        SamplerKind::Direct => {
            Smc::new(&LocallyOptimal::new(lm.as_ref()), how.options)
                .with_critic(constraint.as_ref())
                .run(on_step)
                .await
        }
        SamplerKind::Awrs => {
            // With the grammar in workers, a particle's draws are checked
            // as many at a time as there are workers (the same draws and
            // weights, see `Awrs::with_lookahead`).
            let awrs = Awrs::new(lm.as_ref(), constraint.as_ref())?
                .with_lookahead(how.workers.unwrap_or(1).max(1))?;
            Smc::new(&awrs, how.options).run(on_step).await
        }
    }
}
