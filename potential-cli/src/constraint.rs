//! The constraint of a run, read from the flags, and the independent check
//! of its answers.

use std::path::Path;

use potential_builtins::{Grammar, GrammarSource, Regex};
use potential_core::{PotentialError, Vocab};
use serde_json::Value;

use crate::CliError;
use crate::cli::GenerateArgs;

/// What the answers must satisfy: the grammar that steers the sampler,
/// and the check of each finished answer by another engine than the one
/// that steered it.
pub struct Constraint {
    /// What the grammar is compiled from; `None` without a constraint.
    source: Option<GrammarSource>,
    check: Check,
    /// The constraint in words, for messages (`the JSON schema city.json`).
    pub description: String,
    /// The flag that gave it, for messages (`--lark sums.lark`).
    flag: String,
}

/// How finished answers are checked.
enum Check {
    /// By a JSON-schema validator.
    Schema(SchemaCheck),
    /// By a DFA of the pattern (regex-automata, where the grammar is
    /// llguidance's).
    Regex(Regex<u8>),
    /// Nothing checks them but the grammar itself (a Lark grammar has no
    /// second engine here), or there is no constraint.
    Unchecked,
}

impl Constraint {
    /// Reads the constraint the flags name (at most one of them; clap
    /// refuses more) and compiles it, before any model is opened: a schema,
    /// grammar or pattern that does not compile is a usage error that
    /// names the flag, the file and the position, and costs no model load
    /// (nor a model fetch).
    pub fn from_args(args: &GenerateArgs) -> Result<Self, CliError> {
        let (source, check, description, flag) = if let Some(path) = &args.json_schema {
            let text = read(path, "--json-schema")?;
            let at =
                |what: String| CliError::usage(format!("--json-schema {}: {what}", path.display()));
            let schema: Value =
                serde_json::from_str(&text).map_err(|e| at(format!("not JSON: {e}")))?;
            let check = SchemaCheck::new(&schema)
                .map_err(|e| at(format!("not a valid JSON schema: {}", plain(e))))?;
            (
                Some(GrammarSource::JsonSchema(text)),
                Check::Schema(check),
                format!("the JSON schema {}", path.display()),
                format!("--json-schema {}", path.display()),
            )
        } else if let Some(path) = &args.lark {
            (
                Some(GrammarSource::Lark(read(path, "--lark")?)),
                Check::Unchecked,
                format!("the Lark grammar {}", path.display()),
                format!("--lark {}", path.display()),
            )
        } else if let Some(pattern) = &args.regex {
            let check = Regex::new_plain(pattern, bytes())
                .map_err(|e| CliError::usage(format!("--regex {pattern:?}: {}", plain(e))))?;
            (
                Some(GrammarSource::Regex(pattern.clone())),
                Check::Regex(check),
                format!("the regular expression /{pattern}/"),
                format!("--regex {pattern:?}"),
            )
        } else {
            (
                None,
                Check::Unchecked,
                "no constraint".to_string(),
                String::new(),
            )
        };
        let constraint = Constraint {
            source,
            check,
            description,
            flag,
        };
        // Compiled once over the 256 single bytes now, so that its errors
        // come before the model is opened; the grammar the run uses is
        // compiled over the model's vocabulary by `grammar`.
        constraint.grammar(byte_strings())?;
        Ok(constraint)
    }

    /// Whether there is a constraint at all.
    pub fn is_some(&self) -> bool {
        self.source.is_some()
    }

    /// The grammar over a model's vocabulary (`None` without a
    /// constraint); one that does not compile is a usage error naming the
    /// flag.
    pub fn grammar(&self, vocab: Vocab<Vec<u8>>) -> Result<Option<Grammar>, CliError> {
        let Some(source) = &self.source else {
            return Ok(None);
        };
        Grammar::new_plain(source.clone(), vocab)
            .map(Some)
            .map_err(|e| CliError::usage(format!("{}: {}", self.flag, plain(e))))
    }

    /// The independent check of a finished answer: `None` when there is
    /// none (a Lark grammar, or no constraint), else `Ok` or why not.
    pub fn check(&self, text: &[u8]) -> Option<Result<(), String>> {
        match &self.check {
            Check::Schema(schema) => Some(schema.check(text)),
            Check::Regex(regex) => Some(if regex.is_match(text) {
                Ok(())
            } else {
                Err("does not match the regular expression".to_string())
            }),
            Check::Unchecked => None,
        }
    }

    /// What checks the answers independently, in words; `None` when
    /// nothing does.
    pub fn checker(&self) -> Option<&'static str> {
        match self.check {
            Check::Schema(_) => Some("the JSON-schema validator boon"),
            Check::Regex(_) => Some("a DFA of the pattern built by regex-automata"),
            Check::Unchecked => None,
        }
    }
}

/// The 256 bytes, a vocabulary every pattern compiles over.
fn bytes() -> Vocab<u8> {
    Vocab::new(0..=255u8).expect("256 distinct bytes are a vocabulary")
}

/// The 256 bytes as byte strings, the tokens of a grammar.
fn byte_strings() -> Vocab<Vec<u8>> {
    Vocab::new((0..=255u8).map(|b| vec![b])).expect("256 distinct bytes are a vocabulary")
}

/// A file the flag names, as text; a missing or unreadable one is a usage
/// error.
fn read(path: &Path, flag: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("{flag} {}: cannot read it: {e}", path.display())))
}

/// The message of a potential's error, without the kind's prefix when it
/// is the user's input at fault.
fn plain(e: PotentialError) -> String {
    match e {
        PotentialError::InvalidInput(message) => message,
        other => other.to_string(),
    }
}

/// Checks texts against a JSON schema with an independent validator
/// ([`boon`]), not the grammar that steered the sampler.
pub struct SchemaCheck {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl SchemaCheck {
    /// Compiles `schema`; an invalid schema is an
    /// [`PotentialError::InvalidInput`] naming the place (a JSON pointer
    /// into the schema).
    pub fn new(schema: &Value) -> potential_core::Result<Self> {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let invalid = |e: boon::CompileError| PotentialError::InvalidInput(format!("{e:#}"));
        compiler
            .add_resource("urn:potential-rs:schema", schema.clone())
            .map_err(invalid)?;
        let index = compiler
            .compile("urn:potential-rs:schema", &mut schemas)
            .map_err(invalid)?;
        Ok(SchemaCheck { schemas, index })
    }

    /// `Ok` when `text` parses as JSON and satisfies the schema; else why not.
    pub fn check(&self, text: &[u8]) -> Result<(), String> {
        let value: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        self.schemas
            .validate(&value, self.index)
            .map_err(|e| format!("JSON, but not valid under the schema: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_check_accepts_valid_answers_and_names_what_is_wrong() {
        let schema = json!({
            "type": "object",
            "properties": { "year": { "type": "integer", "minimum": 1600, "maximum": 2025 } },
            "required": ["year"]
        });
        let check = SchemaCheck::new(&schema).unwrap();
        assert_eq!(check.check(br#"{"year": 1815}"#), Ok(()));
        assert!(
            check
                .check(br#"{"year": 2815}"#)
                .unwrap_err()
                .contains("not valid")
        );
        assert!(
            check
                .check(b"{\"year\": ")
                .unwrap_err()
                .starts_with("not JSON")
        );
        let Err(err) = SchemaCheck::new(&json!({ "properties": { "x": { "type": 12 } } })) else {
            panic!("a schema with a type of 12 compiled");
        };
        assert!(err.to_string().contains("/properties/x/type"), "{err}");
    }
}
