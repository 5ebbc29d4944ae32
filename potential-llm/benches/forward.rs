//! The forward pass of SmolLM2 at batch sizes 1, 8, 32 and 64: one
//! `batch_logw_next` of that many one-token extensions of a cached
//! 32-token context (each a cache miss that runs one token).
//!
//! ```sh
//! bash potential-llm/fetch-model.sh     # once
//! cargo bench -p potential-llm --bench forward
//! ```
//!
//! Without the model file it prints why and measures nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::executor::block_on;
use potential_core::Potential;
use potential_llm::{Llm, LlmOptions};

struct Setup {
    llm: Llm,
    base: Vec<Vec<u8>>,
}

fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let path = match potential_llm::smollm2_path() {
                Ok(path) => path,
                Err(e) => {
                    eprintln!("forward bench skipped: {e}");
                    return None;
                }
            };
            let llm = Llm::open_plain(
                &path,
                LlmOptions {
                    prompt: potential_llm::chat_prompt("", "Tell me about cats."),
                    ..LlmOptions::default()
                },
            )
            .expect("SmolLM2 opens");
            let mut base = Vec::new();
            while base.len() < 32 {
                base.extend(llm.tokenize("Cats are small, quiet animals. ").unwrap());
            }
            base.truncate(32);
            block_on(llm.logw_next(&base)).unwrap();
            Some(Setup { llm, base })
        })
        .as_ref()
}

fn main() {
    if setup().is_some() {
        divan::main();
    }
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

#[divan::bench(args = [1, 8, 32, 64], sample_count = 10, sample_size = 1)]
fn one_token_step(bencher: divan::Bencher, batch: usize) {
    let Some(s) = setup() else { return };
    bencher
        .with_inputs(|| extensions(s, batch))
        .bench_local_values(|contexts| block_on(s.llm.batch_logw_next(&contexts)).unwrap());
}
