//! The command line.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Constrained generation with a language model, from the shell.
#[derive(Debug, Parser)]
#[command(name = "potential", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate texts from a language model under a constraint, and print
    /// the distinct texts with their posterior probabilities.
    Generate(GenerateArgs),
}

/// The flags of `potential generate`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("constraint").args(["json_schema", "lark", "regex"])))]
pub struct GenerateArgs {
    /// The language model: `smollm2` (SmolLM2-135M-Instruct), `gemma3`
    /// (Gemma 3 270M, under the Gemma Terms of Use), both fetched on first
    /// use, or the path of a llama- or gemma3-architecture GGUF file.
    #[arg(
        long,
        default_value = "smollm2",
        value_name = "smollm2|gemma3|PATH.gguf"
    )]
    pub model: String,
    /// The user's message (or, with --raw, the whole prompt).
    #[arg(long, value_name = "TEXT")]
    pub prompt: String,
    /// A system message before the user's.
    #[arg(long, value_name = "TEXT", conflicts_with = "raw")]
    pub system: Option<String>,
    /// Give the model the prompt as it is, without the chat template.
    #[arg(long)]
    pub raw: bool,
    /// Constrain the answer to the JSON documents valid under this JSON
    /// schema (each answer is also checked by an independent validator).
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
    /// Constrain the answer to the sentences of this grammar (llguidance's
    /// Lark syntax).
    #[arg(long, value_name = "FILE")]
    pub lark: Option<PathBuf>,
    /// Constrain the answer to the texts that match this regular
    /// expression as a whole (each answer is also checked by an
    /// independent engine).
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,
    /// The sampler (see the README's "which sampler when").
    #[arg(long, value_enum, default_value_t = SamplerKind::Smc)]
    pub sampler: SamplerKind,
    /// The number of particles.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = positive)]
    pub particles: usize,
    /// The most tokens of an answer.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = positive)]
    pub max_tokens: usize,
    /// Resample when the effective sample size falls under this fraction
    /// of the particles; 0 never resamples (importance sampling).
    #[arg(long, default_value_t = 0.5, value_name = "X", value_parser = fraction)]
    pub ess_threshold: f64,
    /// Run the constraint in N worker processes (default: in this
    /// process). With `--sampler awrs`, each particle's draws are then
    /// checked N at a time (the same texts, a few more checks).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub workers: Option<usize>,
    /// Call the model and the constraint one context at a time rather
    /// than gathering the particles' concurrent calls into batches.
    #[arg(long)]
    pub no_autobatch: bool,
    /// The seed of the sampler: the same seed gives the same texts.
    #[arg(long, default_value_t = 2026, value_name = "S")]
    pub seed: u64,
    /// `text`: the distinct texts with their posterior; `json`: one JSON
    /// object a particle (`text`, `weight`, `finished`, `valid`) a line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Which sampler drives the particles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SamplerKind {
    /// Sequential Monte Carlo with the locally optimal proposal over the
    /// product of the model and the constraint: every token is scored by
    /// both.
    Smc,
    /// Adaptive weighted rejection sampling: tokens drawn from the model,
    /// the constraint asked about the drawn tokens only.
    Awrs,
    /// Tokens drawn from the model alone, the constraint as a critic that
    /// reweights (and kills) the particles after each step.
    Direct,
}

/// How the results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: the distinct texts, most probable first, and a summary.
    Text,
    /// For scripts: one JSON object a particle, a line, and nothing else.
    Json,
}

/// A count of at least one: 0 particles, tokens or workers is an error,
/// not a value to clamp.
pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A fraction in [0, 1].
pub fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Ok(_) => Err("must be between 0 and 1".to_string()),
        Err(e) => Err(e.to_string()),
    }
}
