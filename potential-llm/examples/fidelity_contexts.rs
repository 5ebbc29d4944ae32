//! Writes the contexts of the fidelity fixture as JSON on stdout, for the
//! reference script (`potential-llm/reference/reference.py`), which has no
//! tokenizer of its own: each context's prompt, the prompt's model ids and
//! the context's tokens as indices into the `Llm`'s vocabulary.
//!
//! ```sh
//! cargo run --release -p potential-llm --example fidelity_contexts > /tmp/contexts.json
//! cargo run --release -p potential-llm --example fidelity_contexts -- --model gemma3 > /tmp/gemma-contexts.json
//! ```
//!
//! Beside the contexts it writes the `Llm`'s vocabulary as model ids (and
//! the ids whose probabilities make EOS's and the duplicates' added to a
//! token's), so that the reference restricts its distribution as the `Llm`
//! does.
//!
//! See `potential-llm/reference/README.md` for the whole procedure.

use potential_core::Potential;
use potential_llm::{ChatTemplate, Llm, LlmOptions};

/// The answer the chat-JSON contexts take their first tokens from: a
/// finished JSON object, after which the model should end its turn.
const JSON_ANSWER: &str = r#"{"name": "Whiskers", "age": 3, "colour": "grey", "toys": ["ball", "mouse", "string"], "likes": {"food": "fish", "place": "the sunny windowsill"}, "indoor": true}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gemma = std::env::args().skip(1).collect::<Vec<_>>() == ["--model", "gemma3"];
    let path = if gemma {
        potential_llm::gemma3_path()?
    } else {
        potential_llm::smollm2_path()?
    };
    let chat = ChatTemplate::of_file(&path)?;
    let chat_prompt = |system: &str, user: &str| chat.prompt(system, user);
    let json_prompt = chat_prompt(
        "",
        "Describe a cat as a JSON object with its name, age, colour, toys, likes and whether it lives indoors.",
    );
    // (name, prompt, text of the context, how many of its tokens to keep)
    let specs: Vec<(String, String, &str, Option<usize>)> =
        vec![
        ("france".into(), "The capital of France is".into(), "", None),
        ("json_0".into(), json_prompt.clone(), JSON_ANSWER, Some(0)),
        ("json_5".into(), json_prompt.clone(), JSON_ANSWER, Some(5)),
        ("json_20".into(), json_prompt.clone(), JSON_ANSWER, Some(20)),
        ("json_50".into(), json_prompt.clone(), JSON_ANSWER, Some(50)),
        ("json_done".into(), json_prompt, JSON_ANSWER, None),
        (
            "prose".into(),
            "Once upon a time, in a small village by the sea, there lived".into(),
            "",
            None,
        ),
        (
            "code".into(),
            "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n"
                .into(),
            "",
            None,
        ),
        (
            "french".into(),
            "La tour Eiffel, construite pour l'Exposition universelle de 1889, est située".into(),
            "",
            None,
        ),
        (
            "haiku".into(),
            chat_prompt("You are a helpful assistant.", "Write a haiku about autumn."),
            "Crisp leaves drift and fall,",
            None,
        ),
        ("numbers".into(), "1, 1, 2, 3, 5, 8, 13,".into(), "", None),
    ];
    let mut out = Vec::new();
    let mut ids = serde_json::Value::Null;
    for (name, prompt, text, keep) in specs {
        let llm = Llm::open_plain(
            &path,
            LlmOptions {
                prompt: prompt.clone(),
                ..LlmOptions::default()
            },
        )?;
        let mut tokens = llm.tokenize(text)?;
        if let Some(n) = keep {
            if tokens.len() < n {
                return Err(
                    format!("{name}: the text has {} tokens, not {n}", tokens.len()).into(),
                );
            }
            tokens.truncate(n);
        }
        let context: Vec<usize> = tokens
            .iter()
            .map(|t| {
                llm.vocab()
                    .index_of(t)
                    .ok_or("a token outside the vocabulary")
            })
            .collect::<Result<_, _>>()?;
        if ids.is_null() {
            ids = serde_json::json!({
                "vocab_ids": llm.vocab_model_ids(),
                "eos_ids": llm.eos_model_ids(),
                "duplicates": llm.duplicate_model_ids(),
            });
        }
        out.push(serde_json::json!({
            "name": name,
            "prompt": prompt,
            "prompt_ids": llm.prompt_ids(),
            "context": context,
        }));
    }
    ids["contexts"] = serde_json::Value::Array(out);
    println!("{}", serde_json::to_string(&ids)?);
    Ok(())
}
