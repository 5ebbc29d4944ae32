//! The main job on a real language model: SmolLM2-135M-Instruct, prompted
//! to describe a book as JSON, under a grammar built from the JSON schema
//! of the answer. Every finished text is checked against the schema by an
//! independent validator ([`SchemaCheck`], on `boon`), not by the grammar
//! that steered it.

use std::path::Path;

use potential_builtins::Grammar;
use potential_core::{Potential, Result};
use potential_llm::{ChatTemplate, Llm, LlmOptions};
use serde_json::{Value, json};

use crate::main_job::{InWorkers, JobOptions};
pub use potential_cli::constraint::SchemaCheck;
use potential_smc::SamplerOptions;

/// The schema of the answer: a book, with a year in a range and at most
/// three genres from a list.
pub fn book_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": { "type": "string", "minLength": 1, "maxLength": 40 },
            "author": { "type": "string", "minLength": 1, "maxLength": 30 },
            "year": { "type": "integer", "minimum": 1600, "maximum": 2025 },
            "genres": {
                "type": "array",
                "items": {
                    "enum": ["fiction", "romance", "mystery", "fantasy", "science fiction", "history", "poetry", "adventure"]
                },
                "maxItems": 3
            }
        },
        "required": ["title", "author", "year", "genres"],
        "additionalProperties": false
    })
}

/// The prompt: SmolLM2's chat template, asking for the object.
pub fn book_prompt() -> String {
    book_prompt_in(ChatTemplate::ChatMl)
}

/// The prompt in a model's chat template (Gemma's for Gemma 3).
pub fn book_prompt_in(template: ChatTemplate) -> String {
    template.prompt(
        "You are a helpful librarian. You answer with one JSON object and nothing else.",
        "Name a famous novel. Answer as a JSON object with the keys \"title\", \"author\", \"year\" (an integer) and \"genres\" (a list of at most three of: fiction, romance, mystery, fantasy, science fiction, history, poetry, adventure).",
    )
}

/// The job's defaults for a language model: 16 particles of at most 60
/// tokens in one group (the model's batched forward pass gains with every
/// row, and drawing is cheap next to it), and only the grammar in the
/// workers (the model's weights stay in this process).
pub fn job_options() -> JobOptions {
    JobOptions {
        sampler: SamplerOptions {
            groups: 1,
            ..SamplerOptions::new(16, 60, 2026)
        },
        workers: 2,
        in_workers: InWorkers::Constraint,
    }
}

/// Opens the model at `path` behind the book prompt (in the file's chat
/// template), and the grammar of
/// [`book_schema`] over its vocabulary, both plain (the main job wraps
/// them per mode).
pub fn build(path: &Path) -> Result<(Llm, Grammar)> {
    let lm = Llm::open_plain(
        path,
        LlmOptions {
            prompt: book_prompt_in(ChatTemplate::of_file(path)?),
            ..LlmOptions::default()
        },
    )?;
    let grammar = Grammar::json_schema_plain(&book_schema(), lm.vocab().clone())?;
    Ok((lm, grammar))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_schema_accepts_books_and_refuses_others() {
        let check = SchemaCheck::new(&book_schema()).unwrap();
        let good =
            br#"{"title": "Emma", "author": "Jane Austen", "year": 1815, "genres": ["romance"]}"#;
        assert_eq!(check.check(good), Ok(()));
        let late = br#"{"title": "Emma", "author": "Jane Austen", "year": 2815, "genres": []}"#;
        assert!(check.check(late).unwrap_err().contains("not valid"));
        assert!(
            check
                .check(b"{\"title\": ")
                .unwrap_err()
                .starts_with("not JSON")
        );
    }
}
