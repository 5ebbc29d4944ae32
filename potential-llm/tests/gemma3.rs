//! Tests on Gemma 3 270M (base model, Q4_K_M GGUF). Without the model file
//! they are skipped with a line on stderr, unless
//! `POTENTIAL_REQUIRE_MODEL=1` (as `.ci/run` sets after fetching it), under
//! which a missing model fails. Few and sharing one copy of the weights:
//! a 262,144-token vocabulary makes every load and every `logw_next`
//! (1 MB of weights) dear.

use std::path::PathBuf;
use std::sync::OnceLock;

use potential_core::checks::block_on;
use potential_core::{Potential, Symbol};
use potential_llm::fidelity::{ContextFidelity, Fixture, GEMMA3_REFERENCE, median_kl, report};
use potential_llm::testing::model_or_skip;
use potential_llm::{ChatTemplate, Llm, LlmOptions, Precision};

fn model() -> Option<PathBuf> {
    model_or_skip("gemma3", potential_llm::gemma3_path())
}

/// The model at the default precision, loaded once for the tests of this
/// binary; each test takes its own prompt (and cache) with `with_options`.
fn shared(path: &PathBuf) -> &'static Llm {
    static LLM: OnceLock<Llm> = OnceLock::new();
    LLM.get_or_init(|| Llm::open_plain(path, LlmOptions::default()).unwrap())
}

fn with_prompt(path: &PathBuf, prompt: &str) -> Llm {
    shared(path)
        .with_options(LlmOptions {
            prompt: prompt.into(),
            ..LlmOptions::default()
        })
        .unwrap()
}

fn text(t: &[u8]) -> String {
    String::from_utf8_lossy(t).into_owned()
}

/// Greedy decoding answers a factual question (this is the base model, not
/// an instruct one: a question-and-answer prompt, where it answers " The
/// capital of France is Paris."); the plain completion has " Paris" in its
/// top 5 (the model prefers " the").
#[test]
fn gemma_answers_paris() {
    let Some(path) = model() else { return };
    block_on(async {
        let plain = with_prompt(&path, "The capital of France is");
        let next = plain.logw_next(&[]).await.unwrap();
        let top: Vec<String> = next
            .top_k(5)
            .into_iter()
            .filter_map(|(s, _)| s.token().map(|t| text(t)))
            .collect();
        assert!(top.contains(&" Paris".to_string()), "top tokens: {top:?}");
        assert!(next.logsumexp().abs() < 1e-4);

        assert_eq!(ChatTemplate::of_file(&path).unwrap(), ChatTemplate::Gemma);
        let llm = with_prompt(&path, "Q: What is the capital of France?\nA:");
        let mut answer: Vec<Vec<u8>> = Vec::new();
        for _ in 0..8 {
            match llm.logw_next(&answer).await.unwrap().top_k(1)[0].0 {
                Symbol::Eos => break,
                Symbol::Token(t) => answer.push(t.clone()),
            }
        }
        let answer = llm.text(&answer);
        assert!(answer.contains("Paris"), "greedy answer: {answer:?}");
    });
}

/// Batch equals single, a context extended from the cache equals the same
/// context computed fresh, and `<end_of_turn>` is EOS.
#[test]
fn gemma_batch_equals_single_and_cached_equals_fresh() {
    let Some(path) = model() else { return };
    block_on(async {
        let prompt = ChatTemplate::Gemma.prompt("", "Name a colour.");
        let single = with_prompt(&path, &prompt);
        let batched = with_prompt(&path, &prompt);
        let fresh = with_prompt(&path, &prompt);
        let ctxs: Vec<Vec<Vec<u8>>> = ["", "Blue", "The colour is", "Red and green 42"]
            .iter()
            .map(|t| single.tokenize(t).unwrap())
            .collect();
        let batch = batched.batch_logw_next(&ctxs).await.unwrap();
        for (c, b) in ctxs.iter().zip(&batch) {
            // Step by step: every prefix from the cache, one token a pass
            // (one row through each matmul, where the batch ran 10).
            for j in 0..c.len() {
                single.logw_next(&c[..j]).await.unwrap();
            }
            let s = single.logw_next(c).await.unwrap();
            // Each context in one pass from the prompt alone.
            let f = fresh.with_options(fresh.options().clone()).unwrap();
            let f = f.logw_next(c).await.unwrap();
            // Bit for bit: every row goes through the same kernels whatever
            // the batch (see `KERNEL_BY_ROWS` in the model's kernels).
            assert_eq!(b.as_slice(), s.as_slice(), "batch against steps");
            assert_eq!(f.as_slice(), s.as_slice(), "fresh against steps");
        }
        let eos = &[Symbol::Eos][..];
        let mut done: Vec<Symbol<Vec<u8>>> = single
            .tokenize("Blue.")
            .unwrap()
            .into_iter()
            .map(Symbol::Token)
            .collect();
        done.extend_from_slice(eos);
        assert!(single.score(&done).await.unwrap().is_finite());
        assert_eq!(single.eos_model_ids(), &[1, 106]);
    });
}

/// The vocabulary: text tokens (`▁` as a space), user-defined ones (runs of
/// newlines), the bytes without a token of their own; no control token.
#[test]
fn gemma_vocabulary_and_tokenizer() {
    let Some(path) = model() else { return };
    let llm = with_prompt(&path, "");
    assert_eq!(llm.prompt_ids(), &[2], "an empty prompt is <bos>");
    let vocab = llm.vocab();
    assert!(vocab.contains(&b" Paris".to_vec()));
    assert!(vocab.contains(&b"\n\n".to_vec()));
    assert!(vocab.contains(&vec![0xE9]), "byte fallback <0xE9>");
    assert!(!vocab.contains(&b"<end_of_turn>".to_vec()));
    assert!(!vocab.contains(&b"<eos>".to_vec()));
    // 262,144 ids: 255,785 tokens, 110 byte tokens that duplicate one,
    // the rest control tokens (and EOS).
    assert_eq!(vocab.len(), 255_785);
    assert_eq!(llm.duplicate_model_ids().len(), 110);
    for s in [
        "The capital of France is Paris.",
        "  indented\n\n\tcode()  ",
        "naïve café, 東京, emoji 🦀, ❤\u{fe0f}",
        "<h1>Title</h1>",
    ] {
        let tokens = llm.tokenize(s).unwrap();
        assert_eq!(llm.text(&tokens), s);
    }
    let ids = with_prompt(&path, "The capital of France is");
    assert_eq!(ids.prompt_ids(), &[2, 818, 5279, 529, 7001, 563]);
}

fn fidelity(precision: Precision) -> Option<Vec<ContextFidelity>> {
    let path = model()?;
    let fixture = Fixture::parse(GEMMA3_REFERENCE).unwrap();
    let results = block_on(fixture.compare(&path, precision)).unwrap();
    eprint!("{}", report(&format!("gemma3 {precision:?}"), &results));
    Some(results)
}

/// `Precision::Exact` is the reference's own computation: measured KL at
/// most 3.1e-7 (rounding noise, either sign), top-20 log probabilities
/// equal to 2e-5.
#[test]
fn gemma_exact_forward_pass_is_the_references() {
    let Some(results) = fidelity(Precision::Exact) else {
        return;
    };
    for r in results {
        assert!(r.kl.abs() < 1e-5, "{r:?}");
        assert!(r.top1_agrees, "{r:?}");
        assert!(r.max_diff_top20 < 1e-3, "{r:?}");
    }
}

/// The default path against the reference. Measured (AVX2; Q5_0 layers
/// requantized to Q8_0, inputs of Q8_0 matrices in blocks of 32, of the
/// K-quant ones in blocks of 256 as llama.cpp rounds them): median KL
/// 3.8e-3, at most 1.4e-2 (json_5), no top-1 flip, top-20 differences at
/// most 0.79 nats; the thresholds leave a margin for other CPUs' rounding.
#[test]
fn gemma_default_path_stays_close_to_the_reference() {
    let Some(results) = fidelity(Precision::default()) else {
        return;
    };
    let median = median_kl(&results);
    assert!(median <= 0.008, "median KL {median}");
    for r in &results {
        assert!(r.top1_agrees, "{r:?}");
        assert!(r.kl <= 0.03, "{r:?}");
        assert!(r.max_diff_top20 <= 1.2, "{r:?}");
    }
}
