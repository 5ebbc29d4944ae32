//! Hand-written spawnable potentials for the worker-process tests.

use std::path::PathBuf;

use potential_core::{LogWeights, Potential, PotentialError, Registered, Result, Vocab};
use serde::{Deserialize, Serialize};

/// genlm-control's test potential: `complete` is `-len`, `prefix` `-0.5 len`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Length {
    /// The vocabulary.
    pub vocab: Vocab<char>,
}

impl Length {
    /// Over `a`, `b`, `c`.
    pub fn abc() -> Length {
        Length {
            vocab: Vocab::new(['a', 'b', 'c']).expect("three tokens"),
        }
    }
}

impl Potential for Length {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.vocab
    }
    async fn complete(&self, context: &[char]) -> Result<f64> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[char]) -> Result<f64> {
        Ok(-0.5 * context.len() as f64)
    }
}

impl Registered for Length {}
potential_core::register!(Length);

/// Counts the `b`s: `complete` is `-(number of b)`, `prefix` is
/// `-0.25 (number of b)`; over `a`, `b`, `x`, so that its product with
/// [`Length::abc`] is over `a` and `b`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountB {
    /// The vocabulary.
    pub vocab: Vocab<char>,
}

impl CountB {
    /// Over `a`, `b`, `x`.
    pub fn abx() -> CountB {
        CountB {
            vocab: Vocab::new(['a', 'b', 'x']).expect("three tokens"),
        }
    }

    fn bs(context: &[char]) -> f64 {
        context.iter().filter(|&&c| c == 'b').count() as f64
    }
}

impl Potential for CountB {
    type Token = char;
    fn vocab(&self) -> &Vocab<char> {
        &self.vocab
    }
    async fn complete(&self, context: &[char]) -> Result<f64> {
        Ok(-CountB::bs(context))
    }
    async fn prefix(&self, context: &[char]) -> Result<f64> {
        Ok(-0.25 * CountB::bs(context))
    }
}

impl Registered for CountB {}
potential_core::register!(CountB);

/// Misbehaves on request: `complete([0])` panics, `complete([1])` aborts
/// the process, `prefix([2])` blocks forever, `prefix([3])` is an error,
/// `prefix([1, 1])` is NaN (not a log weight); anything else is `len`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Faulty {
    /// The vocabulary.
    pub vocab: Vocab<u8>,
}

impl Faulty {
    /// Over `0..4`.
    pub fn new() -> Faulty {
        Faulty {
            vocab: Vocab::new(0..4).expect("four tokens"),
        }
    }
}

impl Default for Faulty {
    fn default() -> Self {
        Faulty::new()
    }
}

impl Potential for Faulty {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.vocab
    }
    async fn complete(&self, context: &[u8]) -> Result<f64> {
        match context {
            [0] => panic!("asked to panic"),
            [1] => std::process::abort(),
            _ => Ok(context.len() as f64),
        }
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64> {
        if context == [2] {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        if context == [3] {
            return Err(PotentialError::msg("three is not a prefix"));
        }
        if context == [1, 1] {
            return Ok(f64::NAN);
        }
        Ok(context.len() as f64)
    }
}

impl Registered for Faulty {}
potential_core::register!(Faulty);

/// Calls whose pace a test sets, in the worker process that serves them:
///
/// - `complete([n])` takes `n` milliseconds (a busy worker), then is `n`;
/// - `prefix([0])` waits until the test opens the FIFO `gate` for writing
///   (a blocking open, no polling), then is `0`;
/// - `prefix([1])` never returns in the first worker process that serves
///   it (the one that creates the file `marker`), and is `1` in any other.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Paced {
    /// The vocabulary.
    pub vocab: Vocab<u8>,
    /// A FIFO the test creates.
    pub gate: PathBuf,
    /// A file that does not exist yet.
    pub marker: PathBuf,
}

impl Paced {
    /// Over `0..8`.
    pub fn new(gate: PathBuf, marker: PathBuf) -> Paced {
        Paced {
            vocab: Vocab::new(0..8).expect("eight tokens"),
            gate,
            marker,
        }
    }
}

impl Potential for Paced {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.vocab
    }
    async fn complete(&self, context: &[u8]) -> Result<f64> {
        let n = context.first().copied().unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(u64::from(n)));
        Ok(f64::from(n))
    }
    async fn prefix(&self, context: &[u8]) -> Result<f64> {
        match context {
            [0] => {
                std::fs::File::open(&self.gate).map_err(PotentialError::custom)?;
                Ok(0.0)
            }
            [1] => {
                if std::fs::File::create_new(&self.marker).is_ok() {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(3600));
                    }
                }
                Ok(1.0)
            }
            _ => Ok(context.len() as f64),
        }
    }
}

impl Registered for Paced {}
potential_core::register!(Paced);

/// Registered as a type but never submitted to the registry: workers
/// cannot rebuild it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unlisted {
    /// The vocabulary.
    pub vocab: Vocab<u8>,
}

impl Potential for Unlisted {
    type Token = u8;
    fn vocab(&self) -> &Vocab<u8> {
        &self.vocab
    }
    async fn complete(&self, _: &[u8]) -> Result<f64> {
        Ok(0.0)
    }
    async fn prefix(&self, _: &[u8]) -> Result<f64> {
        Ok(0.0)
    }
}

impl Registered for Unlisted {}

/// A potential over a large vocabulary `0..n` whose next-token weights
/// depend on the token and on the context's length, so that a reply sent
/// to the wrong call, or read from the wrong place, shows: `prefix` is
/// `-Σ (k + 1) t_k / 10⁶` over the context's tokens `t_k`, `complete` is
/// `-len`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wide {
    /// The vocabulary, `0..n`.
    pub vocab: Vocab<u32>,
}

impl Wide {
    /// Over `0..n` (`n` at least 1).
    pub fn new(n: u32) -> Wide {
        Wide {
            vocab: Vocab::new(0..n.max(1)).expect("a non-empty vocabulary"),
        }
    }
}

impl Potential for Wide {
    type Token = u32;
    fn vocab(&self) -> &Vocab<u32> {
        &self.vocab
    }
    async fn complete(&self, context: &[u32]) -> Result<f64> {
        Ok(-(context.len() as f64))
    }
    async fn prefix(&self, context: &[u32]) -> Result<f64> {
        let weighted: f64 = (1..)
            .zip(context)
            .map(|(k, &t)| f64::from(k) * f64::from(t))
            .sum();
        Ok(-weighted / 1e6)
    }
    /// Breaks its contract after the vocabulary's last token: the weight
    /// of the token before it is NaN then, for the tests of the error.
    async fn logw_next(&self, context: &[u32]) -> Result<LogWeights<u32>> {
        let step = (context.len() + 1) as f64 / 1e6;
        let prefix = self.prefix(context).await?;
        let mut weights: Vec<f64> = (0..self.vocab.len())
            .map(|t| -(t as f64) * step)
            .chain([self.complete(context).await? - prefix])
            .collect();
        if context.last() == Some(&(self.vocab.len() as u32 - 1)) {
            let before_last = self.vocab.len().saturating_sub(2);
            weights[before_last] = f64::NAN;
        }
        LogWeights::new(self.vocab.clone(), weights)
    }
}

impl Registered for Wide {}
potential_core::register!(Wide);

/// Answers which process served it: `complete` and `prefix` are the
/// worker's process id, whatever the context (over `0..4`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoServes {
    /// The vocabulary, `0..4`.
    pub vocab: Vocab<u32>,
}

impl WhoServes {
    /// Over `0..4`.
    pub fn new() -> WhoServes {
        WhoServes {
            vocab: Vocab::new(0..4).expect("four tokens"),
        }
    }
}

impl Default for WhoServes {
    fn default() -> Self {
        WhoServes::new()
    }
}

impl Potential for WhoServes {
    type Token = u32;
    fn vocab(&self) -> &Vocab<u32> {
        &self.vocab
    }
    async fn complete(&self, _: &[u32]) -> Result<f64> {
        Ok(f64::from(std::process::id()))
    }
    async fn prefix(&self, _: &[u32]) -> Result<f64> {
        Ok(f64::from(std::process::id()))
    }
}

impl Registered for WhoServes {}
potential_core::register!(WhoServes);
