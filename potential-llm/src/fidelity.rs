//! How far an [`Llm`] is from an independent float32 reference on the same
//! file: the fixture that `reference/reference.py` writes (the reference's
//! top 1,000 next-token log probabilities and the log of the remaining
//! mass, for a few fixed contexts) and the comparison of an `Llm` against
//! it.
//!
//! ```no_run
//! use potential_llm::fidelity::{Fixture, SMOLLM2_REFERENCE};
//! use potential_llm::Precision;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let fixture = Fixture::parse(SMOLLM2_REFERENCE)?;
//! let path = potential_llm::smollm2_path()?;
//! for c in fixture.compare(&path, Precision::Blocks32).await? {
//!     println!("{}: KL {:.2e}", c.name, c.kl);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::path::Path;

use potential_core::{Potential, PotentialError, Result};
use serde::Deserialize;

use crate::{Llm, LlmOptions, Precision};

/// The reference fixture of SmolLM2-135M-Instruct (Q4_1 GGUF), 11
/// contexts.
pub const SMOLLM2_REFERENCE: &str = include_str!("../reference/smollm2.json");

/// The reference fixture of Gemma 3 270M (Q4_K_M GGUF), 11 contexts (the
/// chat ones in Gemma's turn format).
pub const GEMMA3_REFERENCE: &str = include_str!("../reference/gemma3.json");

/// The reference's next-token distributions for a few fixed contexts.
#[derive(Debug, Clone, Deserialize)]
pub struct Fixture {
    /// The file name of the model the reference ran.
    pub model: String,
    /// The contexts, in the order the reference wrote them.
    pub contexts: Vec<ReferenceContext>,
}

/// One context of a [`Fixture`] and the reference's answer to it.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceContext {
    /// A short name for reports.
    pub name: String,
    /// The `Llm`'s prompt.
    pub prompt: String,
    /// The model ids the prompt encodes to, as the reference read them.
    pub prompt_ids: Vec<u32>,
    /// The context after the prompt, as indices into the `Llm`'s vocabulary.
    pub context: Vec<usize>,
    /// The reference's most likely next symbols (indices into the
    /// `Llm`'s next-token weights: the vocabulary, then EOS), most likely
    /// first.
    pub top: Vec<usize>,
    /// Their log probabilities.
    pub logp: Vec<f64>,
    /// The log of the probability of every other symbol together.
    pub tail_logp: f64,
}

/// How an `Llm`'s next-token distribution differs from the reference's on
/// one context.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextFidelity {
    /// The context's name.
    pub name: String,
    /// KL(reference ‖ ours) over the reference's top symbols and one bucket
    /// for all the others (nats).
    pub kl: f64,
    /// Whether both put the same symbol first.
    pub top1_agrees: bool,
    /// The largest difference of log probabilities over the reference's
    /// top 20 symbols (nats).
    pub max_diff_top20: f64,
}

impl Fixture {
    /// Reads a fixture (the JSON that `reference/reference.py` writes).
    pub fn parse(json: &str) -> Result<Fixture> {
        serde_json::from_str(json)
            .map_err(|e| PotentialError::InvalidInput(format!("the reference fixture: {e}")))
    }

    /// Opens the model at `path` with the given precision and compares its
    /// next-token distribution with the reference's on every context.
    ///
    /// A prompt that encodes to other ids than the reference ran, or a
    /// fixture whose indices do not fit the model, is an error: the two
    /// would not be looking at the same context.
    pub async fn compare(&self, path: &Path, precision: Precision) -> Result<Vec<ContextFidelity>> {
        let mut base: Option<Llm> = None;
        let mut out = Vec::with_capacity(self.contexts.len());
        for c in &self.contexts {
            let options = LlmOptions {
                prompt: c.prompt.clone(),
                precision,
                ..LlmOptions::default()
            };
            // One copy of the weights for every prompt.
            let llm = match &base {
                Some(llm) => llm.with_options(options)?,
                None => Llm::open_plain(path, options)?,
            };
            if llm.prompt_ids() != c.prompt_ids.as_slice() {
                return Err(PotentialError::InvalidInput(format!(
                    "{}: the prompt encodes to other ids than the reference ran",
                    c.name
                )));
            }
            let tokens = llm.vocab().tokens();
            let context = c
                .context
                .iter()
                .map(|&i| tokens.get(i).cloned())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    PotentialError::InvalidInput(format!(
                        "{}: a context token is outside the vocabulary",
                        c.name
                    ))
                })?;
            let ours = llm.logw_next(&context).await?;
            out.push(c.against(ours.as_slice())?);
            base = Some(llm);
        }
        Ok(out)
    }
}

impl ReferenceContext {
    /// Compares the next-token log probabilities `ours` (vocabulary order,
    /// EOS last) with the reference's.
    pub fn against(&self, ours: &[f64]) -> Result<ContextFidelity> {
        if self.top.len() != self.logp.len() || self.top.iter().any(|&i| i >= ours.len()) {
            return Err(PotentialError::InvalidInput(format!(
                "{}: the reference's indices do not fit {} symbols",
                self.name,
                ours.len()
            )));
        }
        let mut kl = 0.0;
        let mut our_top_mass = 0.0;
        for (&i, &p) in self.top.iter().zip(&self.logp) {
            kl += p.exp() * (p - ours[i]);
            our_top_mass += ours[i].exp();
        }
        // The bucket of every other symbol: its mass in each distribution.
        let our_tail = (1.0 - our_top_mass).max(f64::MIN_POSITIVE).ln();
        kl += self.tail_logp.exp() * (self.tail_logp - our_tail);
        let our_best = ours
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        let max_diff_top20 = self
            .top
            .iter()
            .zip(&self.logp)
            .take(20)
            .map(|(&i, &p)| (p - ours[i]).abs())
            .fold(0.0, f64::max);
        Ok(ContextFidelity {
            name: self.name.clone(),
            kl,
            top1_agrees: our_best == self.top.first().copied(),
            max_diff_top20,
        })
    }
}

/// The median of the contexts' KL divergences (the `llm_fidelity_kl`
/// figure); `NaN` for none.
pub fn median_kl(results: &[ContextFidelity]) -> f64 {
    let mut kls: Vec<f64> = results.iter().map(|r| r.kl).collect();
    kls.sort_by(f64::total_cmp);
    match kls.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => kls[n / 2],
        n => (kls[n / 2 - 1] + kls[n / 2]) / 2.0,
    }
}

/// The report of a fixture comparison as the fixture tests print it: a
/// line a context (its KL, whether the top token agrees, the largest
/// difference over the top 20), then the median, each line starting with
/// `label`.
///
/// ```
/// use potential_llm::fidelity::{ContextFidelity, report};
/// let results = [ContextFidelity { name: "france".into(), kl: 1e-3, top1_agrees: true, max_diff_top20: 0.3 }];
/// let text = report("SmolLM2 Blocks32", &results);
/// assert!(text.contains("france: KL 1.00e-3, top-1 agrees"));
/// assert!(text.ends_with("SmolLM2 Blocks32 median KL 1.00e-3\n"));
/// ```
pub fn report(label: &str, results: &[ContextFidelity]) -> String {
    let mut out = String::new();
    for r in results {
        out.push_str(&format!(
            "{label} {:>10}: KL {:.2e}, top-1 {}, max |diff| over the top 20 {:.5}\n",
            r.name,
            r.kl,
            if r.top1_agrees { "agrees" } else { "FLIPS" },
            r.max_diff_top20
        ));
    }
    out.push_str(&format!("{label} median KL {:.2e}\n", median_kl(results)));
    out
}
