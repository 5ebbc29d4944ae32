//! Greedy decoding with the `Llm` potential: the chat prompt of a question,
//! then the most likely token until EOS or 40 tokens, with the cache's
//! counters at the end.
//!
//! ```sh
//! cargo run --release -p potential-llm --example greedy -- "What is the capital of France?"
//! cargo run --release -p potential-llm --example greedy -- --model gemma3 "The capital of France is"
//! ```
//!
//! Fetches the model first when it is not in the cache directory (see
//! `potential_llm::fetch_smollm2`, `potential_llm::fetch_gemma3`). With
//! `--raw` the text is the prompt as it is, without the chat template.

use std::time::Instant;

use potential_core::{Potential, Symbol};
use potential_llm::{ChatTemplate, Llm, LlmOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let mut model = "smollm2".to_string();
    let mut raw = false;
    let mut question = "What is the capital of France?".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().ok_or("--model needs a name")?,
            "--raw" => raw = true,
            _ => question = a,
        }
    }
    let path = match model.as_str() {
        "smollm2" => potential_llm::fetch_smollm2()?,
        "gemma3" => potential_llm::fetch_gemma3()?,
        other => return Err(format!("unknown model {other}: smollm2 or gemma3").into()),
    };
    let prompt = if raw {
        question
    } else {
        ChatTemplate::of_file(&path)?.prompt("", &question)
    };
    let start = Instant::now();
    let llm = Llm::open_plain(
        &path,
        LlmOptions {
            prompt,
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
