//! `NgramLm::batch_logw_next` against the same contexts answered by single
//! `logw_next` calls, at the default settings (order 4, 4,256 tokens).
//!
//! Two batches of 64 contexts cut from the training text:
//! - `distinct`: 64 different histories (the last 3 tokens), the batch's
//!   worst case: only lower-order work is shared;
//! - `particles`: 16 histories, each 4 times, as a sampler's particles are
//!   after resampling.
//!
//! Run with `cargo bench -p potential-builtins --bench ngram`; the ratio is
//! the median of `singles` over the median of `batch` for one workload.

use std::collections::HashSet;
use std::sync::OnceLock;

use potential_builtins::{NgramConfig, NgramLm};
use potential_core::{Potential, Spawnable};

fn main() {
    divan::main();
}

fn lm() -> &'static NgramLm {
    static LM: OnceLock<NgramLm> = OnceLock::new();
    LM.get_or_init(|| NgramLm::from_bundled_corpus_plain(&NgramConfig::default()).unwrap())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// `n` contexts with different histories, cut from the training text.
fn distinct(n: usize) -> Vec<Vec<Vec<u8>>> {
    let lm = lm();
    let keep = lm.order() - 1;
    let tokens = lm.tokenize(NgramLm::BUNDLED_CORPUS[0]);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for end in (keep..tokens.len()).step_by(97) {
        let ctx = tokens[end - keep..end].to_vec();
        if seen.insert(ctx.clone()) {
            out.push(ctx);
        }
        if out.len() == n {
            break;
        }
    }
    out
}

fn workload(name: &str) -> Vec<Vec<Vec<u8>>> {
    match name {
        "distinct" => distinct(64),
        _ => distinct(16).into_iter().flat_map(|c| vec![c; 4]).collect(),
    }
}

const WORKLOADS: &[&str] = &["distinct", "particles"];

#[divan::bench(args = WORKLOADS)]
fn singles(bencher: divan::Bencher, name: &str) {
    let contexts = workload(name);
    let rt = runtime();
    let lm = lm();
    bencher.bench_local(|| {
        rt.block_on(async {
            let mut out = Vec::with_capacity(contexts.len());
            for c in &contexts {
                out.push(lm.logw_next(c).await.unwrap());
            }
            out
        })
    });
}

#[divan::bench(args = WORKLOADS)]
fn batch(bencher: divan::Bencher, name: &str) {
    let contexts = workload(name);
    let rt = runtime();
    let lm = lm();
    bencher.bench_local(|| rt.block_on(lm.batch_logw_next(&contexts)).unwrap());
}

/// One `logw_next` call, the cost a worker process takes off the caller,
/// by vocabulary size (4,000 merges is the default).
#[divan::bench(args = [2000, 4000, 8000])]
fn one_logw_next(bencher: divan::Bencher, merges: usize) {
    let lm = NgramLm::from_bundled_corpus_plain(&NgramConfig { order: 4, merges }).unwrap();
    let tokens = lm.tokenize(NgramLm::BUNDLED_CORPUS[0]);
    let context = tokens[..200].to_vec();
    let rt = runtime();
    bencher.bench_local(|| rt.block_on(lm.logw_next(&context)).unwrap());
}

/// Training on the bundled corpus at the default settings, for the
/// trade-off between shipping the model and retraining it in each worker.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn train_default() -> NgramLm {
    NgramLm::from_bundled_corpus_plain(&NgramConfig::default()).unwrap()
}

/// Rebuilding the default model from its spawn recipe, as a worker does.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn rebuild_from_recipe(bencher: divan::Bencher) {
    let recipe = lm().recipe().unwrap();
    bencher.bench_local(|| recipe.build().unwrap());
}
