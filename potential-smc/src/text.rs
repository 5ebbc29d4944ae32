//! Reading a run as text when its tokens are byte strings.

use std::collections::HashMap;

use crate::{Run, Sample};

/// A token that is a byte string (the tokens of language models): the
/// particles of a run over such tokens read as text.
pub trait ByteToken {
    /// The token's bytes.
    fn token_bytes(&self) -> &[u8];
}

impl ByteToken for Vec<u8> {
    fn token_bytes(&self) -> &[u8] {
        self
    }
}

impl ByteToken for Box<[u8]> {
    fn token_bytes(&self) -> &[u8] {
        self
    }
}

impl ByteToken for u8 {
    fn token_bytes(&self) -> &[u8] {
        std::slice::from_ref(self)
    }
}

impl<T: ByteToken> Sample<T> {
    /// The particle's bytes: its tokens, concatenated.
    pub fn bytes(&self) -> Vec<u8> {
        self.tokens
            .iter()
            .flat_map(|t| t.token_bytes().iter().copied())
            .collect()
    }

    /// The particle's text: its bytes as UTF-8, each invalid sequence
    /// replaced by U+FFFD (where the last token ends inside a character,
    /// or the tokens are not text at all).
    ///
    /// ```
    /// use potential_smc::Sample;
    ///
    /// let tokens = vec![b"caf".to_vec(), b"\xC3".to_vec(), b"\xA9!".to_vec()];
    /// let sample = Sample { tokens, log_weight: 0.0, finished: true };
    /// assert_eq!(sample.text(), "café!"); // a character split across tokens
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

/// One distinct text of a run and its posterior probability.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPosterior {
    /// The text (see [`Sample::text`]).
    pub text: String,
    /// Its bytes: texts are told apart by their bytes, not by their lossy
    /// decoding.
    pub bytes: Vec<u8>,
    /// The sum of the normalized weights of the particles with this text.
    pub probability: f64,
    /// How many particles have this text (resampling copies particles).
    pub particles: usize,
}

impl<T: ByteToken> Run<T> {
    /// The posterior over texts: the particles of positive weight grouped
    /// by text, each group's normalized weights summed, most probable
    /// first (ties in the order of the particles). Empty when every
    /// particle died.
    ///
    /// ```
    /// use potential_smc::{Calls, Run, Sample};
    ///
    /// let sample = |text: &str, log_weight: f64| Sample {
    ///     tokens: text.bytes().collect::<Vec<u8>>(),
    ///     log_weight,
    ///     finished: log_weight > f64::NEG_INFINITY,
    /// };
    /// let run = Run {
    ///     samples: vec![sample("no", 0.0), sample("yes", 0.0), sample("no", 0.0),
    ///                   sample("maybe", f64::NEG_INFINITY)],
    ///     log_ml: 0.0, ess: vec![], resamples: 0, calls: Calls::default(), draws: 0,
    /// };
    /// let posterior = run.text_posterior();
    /// assert_eq!(posterior.len(), 2);
    /// assert_eq!((posterior[0].text.as_str(), posterior[0].particles), ("no", 2));
    /// assert!((posterior[0].probability - 2.0 / 3.0).abs() < 1e-12);
    /// ```
    pub fn text_posterior(&self) -> Vec<TextPosterior> {
        let mut texts: Vec<TextPosterior> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        for (sample, p) in self.samples.iter().zip(self.posterior()) {
            if p == 0.0 {
                continue;
            }
            let bytes = sample.bytes();
            match index.get(&bytes) {
                Some(&i) => {
                    texts[i].probability += p;
                    texts[i].particles += 1;
                }
                None => {
                    index.insert(bytes.clone(), texts.len());
                    texts.push(TextPosterior {
                        text: String::from_utf8_lossy(&bytes).into_owned(),
                        bytes,
                        probability: p,
                        particles: 1,
                    });
                }
            }
        }
        // A stable sort: equal probabilities stay in the particles' order.
        texts.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        texts
    }
}
