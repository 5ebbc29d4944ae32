//! Answering contexts: from the cache, or by one forward pass over the
//! new tokens of all of them (the scheduler of the batch forms), and the
//! next-token weights of a logits row.

use std::collections::HashMap;
use std::sync::Arc;

use potential_core::{LogWeights, Result};

use super::cache::{Node, State};
use super::sum_exp::sum_exp;
use super::{Llm, forward_error, invalid};
use crate::model::{KvRef, SeqInput};

/// A cached prefix of a context: its length in context tokens and its state.
type Base = (usize, State);

/// A forward pass to run: a context past its longest cached prefix.
struct Job {
    key: Vec<u32>,
    /// The cached prefix: its length in context tokens and its state.
    base_len: usize,
    base: State,
}

impl Llm {
    /// The model ids of a context; a token outside the vocabulary or a
    /// context past the context length is an error.
    fn ids(&self, context: &[Vec<u8>]) -> Result<Vec<u32>> {
        let t = &self.model.tokens;
        let room = self.context_length() - self.run.prompt_ids.len();
        if context.len() > room {
            return Err(invalid(format!(
                "a context of {} tokens does not fit: the model takes {} after the prompt",
                context.len(),
                room
            )));
        }
        context
            .iter()
            .map(|token| {
                t.vocab
                    .index_of(token)
                    .map(|p| t.vocab_ids[p])
                    .ok_or_else(|| {
                        invalid(format!(
                            "token {:?} is not in the vocabulary of the model",
                            String::from_utf8_lossy(token)
                        ))
                    })
            })
            .collect()
    }

    /// The state of every context, from the cache or from one forward
    /// pass over the new tokens of all of them.
    pub(super) fn states(&self, contexts: &[&[Vec<u8>]]) -> Result<Vec<State>> {
        let keys = contexts
            .iter()
            .map(|c| self.ids(c))
            .collect::<Result<Vec<_>>>()?;
        let mut found: Vec<Option<State>> = Vec::with_capacity(keys.len());
        // A missed context, with its longest cached prefix if one is.
        let mut pending: Vec<(&[u32], Option<Base>)> = Vec::new();
        {
            let mut s = self.store();
            for key in &keys {
                let kept = s.states.longest(key).map(|(len, e)| (len, e.clone()));
                match kept {
                    Some((len, state)) if len == key.len() => {
                        found.push(Some(state));
                        s.hits += 1;
                        s.touch(key);
                    }
                    base => {
                        found.push(None);
                        s.misses += 1;
                        if pending.iter().all(|(k, _)| k != key) {
                            pending.push((key, base));
                        }
                    }
                }
            }
        }
        if pending.is_empty() {
            return Ok(found.into_iter().flatten().collect());
        }
        // The prompt's state, when a context has no cached prefix.
        let root = if pending.iter().any(|(_, base)| base.is_none()) {
            Some(self.compute_root()?)
        } else {
            None
        };
        let jobs: Vec<Job> = pending
            .into_iter()
            .filter(|(key, _)| !key.is_empty())
            .filter_map(|(key, base)| {
                let (base_len, base) = base.or_else(|| Some((0, root.clone()?)))?;
                Some(Job {
                    key: key.to_vec(),
                    base_len,
                    base,
                })
            })
            .collect();
        let computed = self.run_jobs(&jobs)?;
        let mut done: HashMap<&[u32], State> = HashMap::new();
        if let Some(root) = root {
            done.insert(&[], root);
        }
        {
            let mut s = self.store();
            for (job, state) in jobs.iter().zip(computed) {
                s.insert(&job.key, state.clone());
                done.insert(&job.key, state);
            }
        }
        found
            .into_iter()
            .zip(&keys)
            .map(|(f, key)| match f {
                Some(state) => Ok(state),
                None => done
                    .get(key.as_slice())
                    .cloned()
                    .ok_or_else(|| forward_error("a context was left out of the pass")),
            })
            .collect()
    }

    /// Runs the prompt through the model and caches its state.
    fn compute_root(&self) -> Result<State> {
        let prompt = &self.run.prompt_ids;
        let model = &self.model.model;
        let input = SeqInput {
            past: &[],
            new_ids: prompt,
            logits_from: prompt.len() - 1,
        };
        let mut out = model.forward(&[input]).map_err(forward_error)?;
        let out = out.pop().ok_or_else(|| forward_error("no output"))?;
        let next = self.next_weights(&out.logits);
        let state = State {
            node: Arc::new(Node {
                parent: None,
                chunk: out.kv,
            }),
            prefix: 0.0,
            next: next.into(),
        };
        self.store().insert(&[], state.clone());
        Ok(state)
    }

    /// One forward pass for the new tokens of every job.
    fn run_jobs(&self, jobs: &[Job]) -> Result<Vec<State>> {
        let model = &self.model.model;
        let n_vocab = model.config.n_vocab;
        let pasts: Vec<Vec<KvRef<'_>>> = jobs.iter().map(|j| j.base.node.positions()).collect();
        let inputs: Vec<SeqInput<'_>> = jobs
            .iter()
            .zip(&pasts)
            .map(|(job, past)| SeqInput {
                past,
                new_ids: &job.key[job.base_len..],
                logits_from: 0,
            })
            .collect();
        let outputs = model.forward(&inputs).map_err(forward_error)?;
        let positions = &self.model.tokens.positions;
        let at = |id: u32| positions[id as usize].map(|p| p as usize);
        let mut states = Vec::with_capacity(jobs.len());
        for (job, out) in jobs.iter().zip(outputs) {
            let new = &job.key[job.base_len..];
            let rows: Vec<&[f32]> = out.logits.chunks_exact(n_vocab).collect();
            // The first new token is scored by the base's next-token
            // weights, each later one by the row of the token before it.
            let mut prefix = job.base.prefix;
            for (i, &id) in new.iter().enumerate() {
                let p = at(id).ok_or_else(|| forward_error("a special token in a context"))?;
                prefix += if i == 0 {
                    f64::from(job.base.next[p])
                } else {
                    self.log_prob(rows[i - 1], id)
                };
            }
            let last = rows
                .last()
                .ok_or_else(|| forward_error("no logits for the last token"))?;
            states.push(State {
                node: Arc::new(Node {
                    parent: Some(Arc::clone(&job.base.node)),
                    chunk: out.kv,
                }),
                prefix,
                next: self.next_weights(last).into(),
            });
        }
        Ok(states)
    }

    /// `log Z` of a logits row: the log-sum-exp of the tempered logits of
    /// the vocabulary (duplicates included) and EOS, in `f64`.
    fn log_normalizer(&self, row: &[f32]) -> f64 {
        let t = &self.model.tokens;
        let inv_t = 1.0 / self.run.options.temperature;
        let ids = t
            .vocab_ids
            .iter()
            .chain(&t.eos_ids)
            .chain(t.duplicates.iter().map(|(id, _)| id));
        let max = ids
            .clone()
            .map(|&id| f64::from(row[id as usize]) * inv_t)
            .fold(f64::NEG_INFINITY, f64::max);
        // Gathered once, shifted to at most 0, and summed by an
        // exponential the compiler vectorizes (libm's, one call per entry,
        // was 6.7% of a batched Gemma step's samples; see `sum_exp`).
        let shifted: Vec<f32> = ids
            .map(|&id| (f64::from(row[id as usize]) * inv_t - max) as f32)
            .collect();
        max + sum_exp(&shifted).ln()
    }

    /// The log probability of the vocabulary token of model id `id` (its
    /// duplicates' added).
    fn log_prob(&self, row: &[f32], id: u32) -> f64 {
        let t = &self.model.tokens;
        let inv_t = 1.0 / self.run.options.temperature;
        let mut v = f64::from(row[id as usize]) * inv_t;
        if let Some(p) = t.positions[id as usize] {
            for &(d, q) in &t.duplicates {
                if q == p {
                    v = log_add(v, f64::from(row[d as usize]) * inv_t);
                }
            }
        }
        v - self.log_normalizer(row)
    }

    /// The next-token log probabilities of a logits row, vocabulary order,
    /// EOS last (the end-of-turn tokens' added to it).
    fn next_weights(&self, row: &[f32]) -> Vec<f32> {
        let t = &self.model.tokens;
        let z = self.log_normalizer(row);
        let inv_t = 1.0 / self.run.options.temperature;
        let logit = |id: u32| f64::from(row[id as usize]) * inv_t;
        let mut out: Vec<f64> = t.vocab_ids.iter().map(|&id| logit(id)).collect();
        for &(d, p) in &t.duplicates {
            out[p as usize] = log_add(out[p as usize], logit(d));
        }
        let eos = t.eos_ids[1..]
            .iter()
            .fold(logit(t.eos_ids[0]), |acc, &id| log_add(acc, logit(id)));
        out.push(eos);
        out.into_iter().map(|v| (v - z) as f32).collect()
    }

    pub(super) fn weights(&self, state: &State) -> Result<LogWeights<Vec<u8>>> {
        LogWeights::new(
            self.model.tokens.vocab.clone(),
            state.next.iter().map(|&v| f64::from(v)).collect(),
        )
    }
}

/// `ln(e^a + e^b)`.
fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
}
