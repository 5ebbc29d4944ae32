//! Greedy decoding with the `Llm` potential: the chat prompt of a question,
//! then the most likely token until EOS or 40 tokens, with the cache's
//! counters at the end.
//!
//! ```sh
//! cargo run --release -p potential-llm --example greedy -- "What is the capital of France?"
//! ```
//!
//! Fetches SmolLM2 first when it is not in the cache directory (see
//! `potential_llm::fetch_smollm2`).

use std::time::Instant;

use potential_core::{Potential, Symbol};
use potential_llm::{Llm, LlmOptions, chat_prompt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let question = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "What is the capital of France?".to_string());
    let path = potential_llm::fetch_smollm2()?;
    let start = Instant::now();
    let llm = Llm::open_plain(
        &path,
        LlmOptions {
            prompt: chat_prompt("", &question),
            ..LlmOptions::default()
        },
    )?;
    println!(
        "opened {} in {:.0} ms: {} tokens, prompt of {}",
        path.display(),
        start.elapsed().as_secs_f64() * 1e3,
        llm.vocab().len(),
        llm.prompt_ids().len()
    );
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(async {
        let mut answer: Vec<Vec<u8>> = Vec::new();
        for _ in 0..40 {
            let start = Instant::now();
            let next = llm.logw_next(&answer).await?;
            let (best, logw) = next.top_k(1)[0];
            let took = start.elapsed().as_secs_f64() * 1e3;
            match best {
                Symbol::Eos => {
                    println!("EOS ({logw:.2}, {took:.1} ms)");
                    break;
                }
                Symbol::Token(t) => {
                    println!("{:?} ({logw:.2}, {took:.1} ms)", String::from_utf8_lossy(t));
                    answer.push(t.clone());
                }
            }
        }
        println!("answer: {}", llm.text(&answer));
        println!("log probability: {:.3}", llm.prefix(&answer).await?);
        println!("cache: {:?}", llm.cache_stats());
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
