//! The grammar rows of §7: a JSON-schema [`Grammar`]'s next-token mask
//! over a 50,000-token vocabulary against llguidance's own mask computation
//! for the same parser state, and 64 particles' masks through two worker
//! processes against one after another in this process.
//!
//! The executable's `main` must call [`potential_runtime::init`] first:
//! the workers are this program, started again.

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use potential_builtins::Grammar;
use potential_core::{Potential, PotentialError, Result, Vocab};
use potential_runtime::MultiprocessExt;

use super::stats::median;
use super::{Row, wanted};

/// The size of the vocabulary of the rows.
pub const VOCAB_SIZE: usize = 50_000;

/// A vocabulary of `n` distinct byte strings (`n` at least 256) shaped
/// like a language model's: the 256 single bytes, then pieces of English
/// and of JSON (words with and without a leading space, digits, quotes and
/// punctuation runs), drawn by a fixed pseudo-random sequence so that every
/// run gets the same vocabulary.
///
/// ```
/// use potential_examples::bench::grammar::synthetic_vocab;
/// let v = synthetic_vocab(1000);
/// assert_eq!(v.len(), 1000);
/// assert_eq!(v.tokens(), synthetic_vocab(1000).tokens());
/// assert!(v.contains(&vec![0xff]));
/// ```
pub fn synthetic_vocab(n: usize) -> Vocab<Vec<u8>> {
    const PIECES: &[&[u8]] = &[
        b"the", b"an", b"na", b"me", b"ag", b"e", b"ta", b"gs", b"al", b"ic", b"ce", b"ob", b"er",
        b"in", b"on", b"at", b"st", b"re", b"ing", b"ed", b"is", b"it", b"or", b"ou", b"x", b"q",
        b"\"", b"\":", b"\": ", b", ", b",", b"{", b"}", b"[", b"]", b"{\"", b"\"}", b"0", b"1",
        b"2", b"5", b"7", b"9", b".", b"-", b"\\n", b" ", b"  ", b"\n",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // xorshift64*: deterministic and good enough to spread the pieces.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut tokens: Vec<Vec<u8>> = Vec::with_capacity(n);
    for b in 0..=255u8 {
        seen.insert(vec![b]);
        tokens.push(vec![b]);
    }
    while tokens.len() < n {
        let r = next();
        let mut token = if r % 3 == 0 {
            b" ".to_vec()
        } else {
            Vec::new()
        };
        for k in 0..(1 + (r >> 8) % 4) {
            let piece = PIECES[((r >> (16 + 8 * k)) % PIECES.len() as u64) as usize];
            token.extend_from_slice(piece);
        }
        if token.len() > 1 && seen.insert(token.clone()) {
            tokens.push(token);
        }
    }
    tokens.truncate(n);
    Vocab::new(tokens).expect("distinct tokens")
}

/// The schema of the rows: a person record with nested parts.
pub fn schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "email": {"type": "string", "pattern": "^[a-z]+@[a-z]+\\.[a-z]{2,3}$"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
            "address": {
                "type": "object",
                "properties": {
                    "street": {"type": "string"},
                    "city": {"type": "string"},
                    "zip": {"type": "string", "pattern": "^[0-9]{5}$"}
                },
                "required": ["city"],
                "additionalProperties": false
            },
            "score": {"type": "number"}
        },
        "required": ["name", "age"],
        "additionalProperties": false
    })
}

/// Document `i` of the rows: a valid instance of [`schema`], different for
/// each `i`.
pub fn document(i: usize) -> String {
    const NAMES: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
    const CITIES: &[&str] = &["paris", "lima", "oslo", "quito", "rome"];
    let name = NAMES[i % NAMES.len()];
    format!(
        r#"{{"name": "{name} the {i}th", "age": {}, "email": "{name}@mail.com", "tags": ["a{i}", "in stock"], "address": {{"street": "{} main st", "city": "{}", "zip": "{:05}"}}, "score": {}.5}}"#,
        20 + i % 60,
        i * 7,
        CITIES[i % CITIES.len()],
        10_000 + i * 37,
        i % 10,
    )
}

/// `bytes` cut into the longest tokens of `vocab`, left to right (every
/// single byte is a token of it).
pub fn tokenize(bytes: &[u8], vocab: &Vocab<Vec<u8>>) -> Vec<Vec<u8>> {
    let longest = vocab.tokens().iter().map(Vec::len).max().unwrap_or(1);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = (1..=longest.min(bytes.len() - i))
            .rev()
            .find(|&n| vocab.contains(&bytes[i..i + n].to_vec()))
            .unwrap_or(1);
        out.push(bytes[i..i + len].to_vec());
        i += len;
    }
    out
}

/// `grammar_mask_50k`: `logw_next(ctx + [t])` after `logw_next(ctx)`, at
/// every position of a document, against llguidance's `compute_mask` on
/// its own parser advanced to the same state (the order alternates, since
/// the first of the two warms llguidance's lexer for the second).
fn mask_50k(grammar: &Grammar) -> Result<Row> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(PotentialError::custom)?;
    let mut ours = Vec::new();
    let mut reference = Vec::new();
    // What llguidance itself takes for the whole step that `logw_next(ctx
    // + [t])` makes after a call on `ctx`: copying the kept state of
    // `ctx`, advancing it over `t`, and the mask (the reference is the
    // mask alone).
    let mut step = Vec::new();
    for d in 0..3 {
        let tokens = tokenize(document(d).as_bytes(), grammar.vocab());
        for i in 1..tokens.len() {
            let (ctx, t) = (&tokens[..i], &tokens[i]);
            runtime.block_on(grammar.logw_next(ctx))?;
            let extended = tokens[..=i].to_vec();
            let kept = grammar
                .matcher(ctx)?
                .ok_or_else(|| PotentialError::msg("the document left the grammar"))?;
            let mut parser = kept.clone();
            let id = grammar.vocab().index_of(t).expect("a vocabulary token") as u32;
            parser
                .consume_token(id)
                .map_err(|e| PotentialError::msg(e.to_string()))?;
            let time_ours = || -> Result<f64> {
                let start = Instant::now();
                black_box(runtime.block_on(grammar.logw_next(&extended))?);
                Ok(start.elapsed().as_secs_f64() * 1e6)
            };
            let mut time_reference = || -> Result<f64> {
                let start = Instant::now();
                black_box(
                    parser
                        .compute_mask_or_eos()
                        .map_err(|e| PotentialError::msg(e.to_string()))?,
                );
                Ok(start.elapsed().as_secs_f64() * 1e6)
            };
            let start = Instant::now();
            let mut copy = black_box(&kept).clone();
            copy.consume_token(id)
                .map_err(|e| PotentialError::msg(e.to_string()))?;
            black_box(
                copy.compute_mask_or_eos()
                    .map_err(|e| PotentialError::msg(e.to_string()))?,
            );
            step.push(start.elapsed().as_secs_f64() * 1e6);
            if i % 2 == 0 {
                ours.push(time_ours()?);
                reference.push(time_reference()?);
            } else {
                reference.push(time_reference()?);
                ours.push(time_ours()?);
            }
        }
    }
    let (value, reference) = (median(&ours), median(&reference));
    Ok(Row {
        id: "grammar_mask_50k",
        figure: format!(
            "JSON-schema Grammar logw_next over {VOCAB_SIZE} tokens, a kept context + 1 token (µs, median of {}); reference: llguidance's compute_mask for the same state; llguidance's own step (copy the kept state, advance one token, mask): {:.1} µs",
            ours.len(),
            median(&step)
        ),
        value,
        unit: "µs",
        reference: Some(reference),
        target: "within 2x of the reference".into(),
        met: value <= 2.0 * reference,
    })
}

/// The number of particles of `grammar_worker_gain`.
const PARTICLES: usize = 64;

/// `grammar_worker_gain`: 64 particles step through their documents one
/// token at a time; each step's 64 masks come from two worker processes
/// (concurrent calls) or from this process (one after another), and the
/// speedup is the ratio of the median step times.
async fn worker_gain(grammar: &Grammar) -> Result<Row> {
    const START: usize = 6;
    const STEPS: usize = 8;
    let particles: Vec<Vec<Vec<u8>>> = (0..PARTICLES)
        .map(|p| tokenize(document(p).as_bytes(), grammar.vocab()))
        .collect();
    let at = |step: usize| -> Vec<Vec<Vec<u8>>> {
        particles
            .iter()
            .map(|t| t[..(START + step).min(t.len())].to_vec())
            .collect()
    };
    let local = grammar.clone().with_cache_capacity(4 * PARTICLES);
    // The raw reference: two threads of this process, each with a grammar
    // (kept states and lexer caches) of its own and the same half of the
    // particles at every step, as two workers with perfect affinity: what
    // two cores give this work without a byte of communication.
    let halves = [0, 1].map(|_| grammar.clone().with_cache_capacity(4 * PARTICLES));
    let pool = Arc::new(grammar.clone().to_multiprocess(2).await?);
    let (mut direct, mut pooled, mut threads) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..STEPS {
        let contexts = at(step);
        let start = Instant::now();
        for c in &contexts {
            black_box(local.logw_next(c).await?);
        }
        direct.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            let halves: Vec<_> = (0..2)
                .map(|h| {
                    let (grammar, contexts) = (&halves[h], &contexts);
                    scope.spawn(move || {
                        potential_core::checks::block_on(async {
                            for c in contexts.iter().skip(h).step_by(2) {
                                black_box(grammar.logw_next(c).await?);
                            }
                            Ok(())
                        })
                    })
                })
                .collect();
            halves
                .into_iter()
                .try_for_each(|h| h.join().expect("a bench thread panicked"))
        })?;
        threads.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let calls: Vec<_> = contexts
            .into_iter()
            .map(|c| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.logw_next(&c).await })
            })
            .collect();
        for call in calls {
            black_box(call.await.map_err(PotentialError::custom)??);
        }
        pooled.push(start.elapsed().as_secs_f64());
    }
    pool.shutdown().await;
    // The first step parses every context from the start; the others
    // extend kept states by one token, as a sampler does.
    let (direct, pooled) = (median(&direct[1..]), median(&pooled[1..]));
    let threads = median(&threads[1..]);
    let speedup = direct / pooled;
    Ok(Row {
        id: "grammar_worker_gain",
        figure: format!(
            "{PARTICLES} particles' JSON-schema masks over {VOCAB_SIZE} tokens per step, speedup (x) of 2 workers over one after another in this process (median of {} steps: {:.1} ms here, {:.1} ms through workers); raw reference: two threads of this process, half the particles each, {:.1} ms ({:.2}x)",
            STEPS - 1,
            direct * 1e3,
            pooled * 1e3,
            threads * 1e3,
            direct / threads
        ),
        value: speedup,
        unit: "x",
        reference: None,
        target: "at least 1.6x".into(),
        met: speedup >= 1.6,
    })
}

/// Measures the grammar rows. Needs `main` to have called
/// [`potential_runtime::init`] first.
pub fn rows() -> Vec<Row> {
    if !wanted("grammar_mask_50k") && !wanted("grammar_worker_gain") {
        return Vec::new();
    }
    let measured = (|| -> Result<Vec<Row>> {
        let grammar = Grammar::json_schema_plain(&schema(), synthetic_vocab(VOCAB_SIZE))?;
        let mut rows = Vec::new();
        if wanted("grammar_mask_50k") {
            rows.push(mask_50k(&grammar)?);
        }
        if wanted("grammar_worker_gain") {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(PotentialError::custom)?;
            rows.push(runtime.block_on(worker_gain(&grammar))?);
        }
        Ok(rows)
    })();
    measured.unwrap_or_else(|e| panic!("grammar benchmarks failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use potential_builtins::{NgramConfig, NgramLm};
    use potential_core::checks::{
        Tolerance, assert_autoreg_fact, assert_batch_consistency, assert_logw_next_consistency,
        block_on,
    };
    use potential_core::ops::Product;
    use potential_smc::{LocallyOptimal, SamplerOptions, smc};

    #[test]
    fn the_documents_are_sentences_of_the_schema() {
        block_on(async {
            let vocab = synthetic_vocab(2000);
            let g = Grammar::json_schema_plain(&schema(), vocab.clone()).unwrap();
            for i in [0, 1, 17, 63] {
                let doc = document(i);
                assert_eq!(tokenize(doc.as_bytes(), &vocab).concat(), doc.as_bytes());
                let ctx = tokenize(doc.as_bytes(), &vocab);
                assert_eq!(g.complete(&ctx).await.unwrap(), 0.0, "{doc}");
            }
        });
    }

    #[test]
    fn property_checks_pass_on_a_50k_synthetic_vocabulary() {
        block_on(async {
            let vocab = synthetic_vocab(VOCAB_SIZE);
            let tol = Tolerance::default();
            let json = Grammar::json_schema_plain(&schema(), vocab.clone()).unwrap();
            let doc = tokenize(document(5).as_bytes(), &vocab);
            let mut dead = doc[..4].to_vec();
            dead.push(b"}".to_vec());
            let contexts = vec![vec![], doc[..9].to_vec(), doc.clone(), dead];
            assert_logw_next_consistency(&json, &contexts, tol)
                .await
                .unwrap();
            assert_autoreg_fact(&json, &contexts, tol).await.unwrap();
            assert_batch_consistency(&json, &contexts[..3], tol)
                .await
                .unwrap();
            let lark = Grammar::lark_plain(
                r#"start: WORD (" " WORD)* "."
                   WORD: /[a-z]+/"#,
                vocab.clone(),
            )
            .unwrap();
            let contexts: Vec<Vec<Vec<u8>>> = ["", "the cat", "the cat sat.", "the  cat"]
                .iter()
                .map(|t| tokenize(t.as_bytes(), &vocab))
                .collect();
            // "the  cat" (two spaces) is dead: checked apart from the live ones.
            assert!(lark.logw_next(&contexts[3]).await.is_err());
            assert_logw_next_consistency(&lark, &contexts[..3], tol)
                .await
                .unwrap();
            assert_autoreg_fact(&lark, &contexts[..3], tol)
                .await
                .unwrap();
            assert_batch_consistency(&lark, &contexts[..3], tol)
                .await
                .unwrap();
        });
    }

    #[test]
    fn a_product_with_the_ngram_model_samples_valid_documents() {
        block_on(async {
            let lm = NgramLm::train_plain(
                br#"the name is alice. {"name":"bob"} and {"name":"eve"} are names.

the cat sat on the mat. {"name":"cat"}"#,
                &NgramConfig {
                    order: 3,
                    merges: 60,
                },
            )
            .unwrap();
            let schema = serde_json::json!({
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 8}},
                "required": ["name"],
                "additionalProperties": false,
                "x-guidance": {"whitespace_flexible": false}
            });
            let grammar = Grammar::json_schema(&schema, lm.vocab().clone()).unwrap();
            let product = Product::new(lm, grammar).unwrap();
            let options = SamplerOptions::new(8, 60, 11);
            let proposal = LocallyOptimal::new(&product);
            let run = smc(&proposal, options, |_| {}).await.unwrap();
            let finished: Vec<_> = run.samples.iter().filter(|s| s.finished).collect();
            assert!(!finished.is_empty(), "{:?}", run.samples);
            for s in finished {
                let value: serde_json::Value = serde_json::from_slice(&s.tokens.concat()).unwrap();
                let name = value["name"].as_str().unwrap();
                assert!(name.chars().count() <= 8, "{value}");
                assert!(s.log_weight > f64::NEG_INFINITY);
            }
        });
    }
}
