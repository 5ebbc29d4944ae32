//! The forward pass of SmolLM2 and of Gemma 3 at batch sizes 1, 8, 32 and
//! 64: one `batch_logw_next` of that many one-token extensions of a cached
//! 32-token context (each a cache miss that runs one token).
//!
//! ```sh
//! bash potential-llm/fetch-model.sh     # once
//! bash potential-llm/fetch-gemma.sh     # once, for the Gemma benches
//! cargo bench -p potential-llm --bench forward
//! ```
//!
//! A model whose file is missing is skipped with a line saying why.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::executor::block_on;
use potential_core::Potential;
use potential_llm::{Llm, LlmOptions, LoadError};

struct Setup {
    llm: Llm,
    base: Vec<Vec<u8>>,
}

/// The model at `path` opened with a short prompt, and its cached 32-token
/// context.
fn open(name: &str, path: PathBuf) -> Setup {
    let llm = Llm::open_plain(
        &path,
        LlmOptions {
            prompt: "Tell me about cats.".into(),
            ..LlmOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name} opens: {e}"));
    let mut base = Vec::new();
    while base.len() < 32 {
        base.extend(llm.tokenize("Cats are small, quiet animals. ").unwrap());
    }
    base.truncate(32);
    block_on(llm.logw_next(&base)).unwrap();
    Setup { llm, base }
}

/// Each model's benchmark, its name and where its file is.
fn models() -> [(&'static str, &'static str, Result<PathBuf, LoadError>); 2] {
    [
        ("one_token_step", "SmolLM2", potential_llm::smollm2_path()),
        (
            "gemma3_one_token_step",
            "Gemma 3",
            potential_llm::gemma3_path(),
        ),
    ]
}

/// Positions in [`models`].
const SMOLLM2: usize = 0;
const GEMMA3: usize = 1;

/// Model `model` of [`models`], opened on first use (`main` skips the
/// benchmarks whose file is missing).
fn setup(model: usize) -> &'static Setup {
    static SETUPS: [OnceLock<Setup>; 2] = [OnceLock::new(), OnceLock::new()];
    SETUPS[model].get_or_init(|| {
        let (_, name, path) = models()
            .into_iter()
            .nth(model)
            .expect("a model of this file");
        open(name, path.expect("checked by main"))
    })
}

fn main() {
    let mut divan = divan::Divan::from_args();
    for (bench, name, path) in models() {
        if let Err(e) = path {
            eprintln!("forward bench of {name} skipped: {e}");
            divan = divan.skip_regex(format!(r"\b{bench}\b"));
        }
    }
    divan.main();
}

/// Fresh one-token extensions of the base: a token no earlier call used.
fn extensions(s: &Setup, n: usize) -> Vec<Vec<Vec<u8>>> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let tokens = s.llm.vocab().tokens();
    (0..n)
        .map(|_| {
            let i = NEXT.fetch_add(7919, Ordering::Relaxed) % tokens.len();
            let mut c = s.base.clone();
            c.push(tokens[i].clone());
            c
        })
        .collect()
}

fn steps(bencher: divan::Bencher, s: &Setup, batch: usize) {
    bencher
        .with_inputs(|| extensions(s, batch))
        .bench_local_values(|contexts| block_on(s.llm.batch_logw_next(&contexts)).unwrap());
}

#[divan::bench(args = [1, 8, 32, 64], sample_count = 10, sample_size = 1)]
fn one_token_step(bencher: divan::Bencher, batch: usize) {
    steps(bencher, setup(SMOLLM2), batch);
}

#[divan::bench(args = [1, 8, 32, 64], sample_count = 10, sample_size = 1)]
fn gemma3_one_token_step(bencher: divan::Bencher, batch: usize) {
    steps(bencher, setup(GEMMA3), batch);
}
