//! `Regex::logw_next` over the n-gram model's default vocabulary (4,256
//! byte strings), single calls against one native batch of 64 contexts
//! that sit in 8 DFA states.
//!
//! Run with `cargo bench -p potential-builtins --bench regex`.

use std::sync::OnceLock;

use potential_builtins::{NgramConfig, NgramLm, Regex};
use potential_core::Potential;

fn main() {
    divan::main();
}

const PATTERN: &str = "[A-Z][a-z]*( [a-z]+)*(, [a-z]+)*\\.";

fn setup() -> &'static (Regex, Vec<Vec<Vec<u8>>>) {
    static SETUP: OnceLock<(Regex, Vec<Vec<Vec<u8>>>)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let lm = NgramLm::from_bundled_corpus_plain(&NgramConfig::default()).unwrap();
        let re = Regex::new_plain(PATTERN, lm.vocab().clone()).unwrap();
        let texts = [
            "Alice",
            "Alice was",
            "The cat",
            "The cat sat",
            "So she",
            "So she was, then",
            "It",
            "It is",
        ];
        let contexts = texts
            .iter()
            .flat_map(|t| vec![lm.tokenize(t.as_bytes()); 8])
            .collect();
        (re, contexts)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// One `logw_next`: a walk of the DFA over every token of the vocabulary.
#[divan::bench]
fn one_logw_next(bencher: divan::Bencher) {
    let (re, contexts) = setup();
    let rt = runtime();
    bencher.bench_local(|| rt.block_on(re.logw_next(&contexts[9])).unwrap());
}

#[divan::bench]
fn singles_64(bencher: divan::Bencher) {
    let (re, contexts) = setup();
    let rt = runtime();
    bencher.bench_local(|| {
        rt.block_on(async {
            let mut out = Vec::with_capacity(contexts.len());
            for c in contexts {
                out.push(re.logw_next(c).await.unwrap());
            }
            out
        })
    });
}

#[divan::bench]
fn batch_64(bencher: divan::Bencher) {
    let (re, contexts) = setup();
    let rt = runtime();
    bencher.bench_local(|| rt.block_on(re.batch_logw_next(contexts)).unwrap());
}
