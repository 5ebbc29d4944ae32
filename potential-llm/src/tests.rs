//! Tests on a tiny model written by [`crate::testing`]: they need no
//! download and run the same code path as SmolLM2.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use potential_core::checks::{
    Tolerance, assert_autoreg_fact, assert_batch_consistency, assert_logw_next_consistency,
};
use potential_core::{Potential, PotentialError, Spawnable};

use crate::testing::TinyModel;
use crate::{Llm, LlmOptions, LoadError};
use potential_core::checks::block_on;

/// A directory of this test process for the model files it writes. The
/// tests share it and no test knows it is the last, so it outlives the
/// process; the next run removes the directories of processes that are
/// gone (Linux: `/proc/PID`), so they never pile up.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        const PREFIX: &str = "potential-llm-tests-";
        let tmp = std::env::temp_dir();
        let proc_fs = Path::new("/proc/self").exists();
        if let Some(entries) = std::fs::read_dir(&tmp).ok().filter(|_| proc_fs) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let pid = name.to_str().and_then(|n| n.strip_prefix(PREFIX));
                if let Some(pid) = pid.filter(|p| p.parse::<u32>().is_ok())
                    && !Path::new("/proc").join(pid).exists()
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn write(name: &str, model: &TinyModel) -> PathBuf {
    let path = scratch().join(name);
    model.write(&path).unwrap();
    path
}

fn tiny_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| write("tiny.gguf", &TinyModel::default()))
}

fn tiny(prompt: &str) -> Llm {
    tiny_with(LlmOptions {
        prompt: prompt.into(),
        ..LlmOptions::default()
    })
}

fn tiny_with(options: LlmOptions) -> Llm {
    Llm::open_plain(tiny_path(), options).unwrap()
}

fn contexts(llm: &Llm, texts: &[&str]) -> Vec<Vec<Vec<u8>>> {
    texts.iter().map(|t| llm.tokenize(t).unwrap()).collect()
}

const TEXTS: &[&str] = &["", "the", " the cat", " the cat sat on the mat", "dog 12"];

fn close(a: f64, b: f64, rtol: f64) -> bool {
    a == b || (a - b).abs() <= rtol * a.abs().max(b.abs()) + 1e-9
}

fn assert_all_close(a: &[f64], b: &[f64], rtol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(close(*x, *y, rtol), "item {i}: {x} vs {y}");
    }
}

fn load_error(err: PotentialError) -> String {
    match &err {
        PotentialError::Potential(inner) => {
            assert!(inner.downcast_ref::<LoadError>().is_some(), "{err:?}");
        }
        other => panic!("expected a load error, got {other:?}"),
    }
    err.to_string()
}

#[test]
fn the_vocabulary_is_the_bytes_and_merges_without_special_tokens() {
    let llm = tiny("");
    let vocab = llm.vocab();
    assert_eq!(vocab.len(), TinyModel::VOCAB_LEN);
    assert!(vocab.contains(&b" cat".to_vec()));
    assert!(vocab.contains(&vec![0xff]));
    assert!(!vocab.contains(&b"<|im_end|>".to_vec()));
    // An empty prompt stands for the beginning-of-sequence token.
    assert_eq!(llm.prompt_ids(), [1]);
}

#[test]
fn the_tokenizer_round_trips_text_and_reads_special_tokens_in_prompts() {
    let llm = tiny("");
    for text in [
        "the cat sat on the mat",
        " hello\n\tworld 42!",
        "żółw ☃ €",
        "",
    ] {
        let tokens = llm.tokenize(text).unwrap();
        assert_eq!(llm.text(&tokens), text);
    }
    // Merges apply and digits split one by one, as SmolLM2's tokenizer does.
    assert_eq!(
        llm.tokenize(" the cat").unwrap(),
        [b" the".to_vec(), b" cat".to_vec()]
    );
    assert_eq!(llm.tokenize("12").unwrap(), [b"1".to_vec(), b"2".to_vec()]);
    let chat = tiny(&crate::chat_prompt("", "hi"));
    assert_eq!(chat.prompt_ids()[0], 1, "<|im_start|> is one special token");
    assert!(matches!(
        llm.tokenize("<|im_end|>"),
        Err(PotentialError::InvalidInput(_))
    ));
}

#[test]
fn next_token_weights_normalize() {
    block_on(async {
        for temperature in [1.0, 0.5, 2.0] {
            let llm = tiny_with(LlmOptions {
                prompt: "the".into(),
                temperature,
                ..LlmOptions::default()
            });
            for ctx in contexts(&llm, TEXTS) {
                let w = llm.logw_next(&ctx).await.unwrap();
                assert!(w.logsumexp().abs() < 1e-5, "{}", w.logsumexp());
                assert!(w.as_slice().iter().all(|v| v.is_finite() && *v <= 0.0));
            }
        }
    });
}

#[test]
fn a_lower_temperature_sharpens_the_distribution() {
    block_on(async {
        let top = |t: f64| {
            let llm = tiny_with(LlmOptions {
                prompt: "the cat".into(),
                temperature: t,
                ..LlmOptions::default()
            });
            async move { llm.logw_next(&[]).await.unwrap().top_k(1)[0].1 }
        };
        let (cold, warm) = (top(0.5).await, top(2.0).await);
        assert!(cold > warm, "{cold} vs {warm}");
    });
}

#[test]
fn batch_forms_equal_single_forms() {
    block_on(async {
        let single = tiny("the");
        let batched = tiny("the");
        let ctxs = contexts(&single, TEXTS);
        let mut prefix = Vec::new();
        let mut complete = Vec::new();
        let mut next = Vec::new();
        for c in &ctxs {
            prefix.push(single.prefix(c).await.unwrap());
            complete.push(single.complete(c).await.unwrap());
            next.push(single.logw_next(c).await.unwrap());
        }
        let batch_next = batched.batch_logw_next(&ctxs).await.unwrap();
        assert_all_close(&batched.batch_prefix(&ctxs).await.unwrap(), &prefix, 1e-5);
        assert_all_close(
            &batched.batch_complete(&ctxs).await.unwrap(),
            &complete,
            1e-5,
        );
        for (b, s) in batch_next.iter().zip(&next) {
            assert_all_close(b.as_slice(), s.as_slice(), 1e-5);
        }
    });
}

#[test]
fn contexts_of_different_lengths_batched_together_equal_each_alone() {
    block_on(async {
        let llm = tiny("the");
        let ctxs = contexts(&llm, &["", " cat", " the cat sat", "xyz xyz xyz xyz 1234"]);
        let together = llm.batch_logw_next(&ctxs).await.unwrap();
        for (c, t) in ctxs.iter().zip(&together) {
            let alone = tiny("the").logw_next(c).await.unwrap();
            assert_all_close(t.as_slice(), alone.as_slice(), 1e-5);
        }
    });
}

#[test]
fn a_cached_step_equals_a_fresh_computation() {
    block_on(async {
        let cached = tiny("the");
        let ctx = cached.tokenize(" the cat sat on").unwrap();
        let mut longer = ctx.clone();
        longer.push(b" the".to_vec());
        cached.logw_next(&ctx).await.unwrap();
        let misses = cached.cache_stats().misses;
        let stepped = cached.logw_next(&longer).await.unwrap();
        let stepped_prefix = cached.prefix(&longer).await.unwrap();
        let stats = cached.cache_stats();
        assert_eq!(stats.misses, misses + 1, "one new context");
        assert!(stats.hits >= 1, "the prefix call is a hit");

        let fresh = tiny_with(LlmOptions {
            prompt: "the".into(),
            cache_bytes: 0,
            ..LlmOptions::default()
        });
        assert_all_close(
            stepped.as_slice(),
            fresh.logw_next(&longer).await.unwrap().as_slice(),
            1e-5,
        );
        assert!(close(
            stepped_prefix,
            fresh.prefix(&longer).await.unwrap(),
            1e-5
        ));
        assert_eq!(
            fresh.cache_stats().entries,
            0,
            "a zero budget keeps nothing"
        );
    });
}

#[test]
fn the_property_checks_of_potential_core_pass() {
    block_on(async {
        let llm = tiny("the");
        let ctxs = contexts(&llm, &["", " cat", " the cat sat"]);
        // Next-token weights are kept as f32: a few ulps of f32 apart.
        let tol = Tolerance {
            rtol: 1e-5,
            atol: 1e-6,
        };
        assert_logw_next_consistency(&llm, &ctxs, tol)
            .await
            .unwrap();
        assert_autoreg_fact(&llm, &ctxs, tol).await.unwrap();
        assert_batch_consistency(&llm, &ctxs, tol).await.unwrap();
    });
}

#[test]
fn the_cache_counts_and_stays_under_its_budget() {
    block_on(async {
        let llm = tiny("the");
        let ctxs = contexts(&llm, TEXTS);
        for c in &ctxs {
            llm.logw_next(c).await.unwrap();
        }
        let first = llm.cache_stats();
        assert_eq!(first.misses as usize, ctxs.len());
        assert!(first.bytes > 0 && first.bytes <= first.budget);
        for c in &ctxs {
            llm.logw_next(c).await.unwrap();
        }
        let second = llm.cache_stats();
        assert_eq!(second.hits as usize, first.hits as usize + ctxs.len());
        assert_eq!(second.misses, first.misses);

        // A budget of about two entries evicts the older ones, and answers
        // stay the same.
        let small = tiny_with(LlmOptions {
            prompt: "the".into(),
            cache_bytes: 2 * first.bytes / (first.entries.max(1)),
            ..LlmOptions::default()
        });
        let mut expected = Vec::new();
        for c in &ctxs {
            expected.push(llm.logw_next(c).await.unwrap());
        }
        for (c, expected) in ctxs.iter().zip(&expected) {
            let got = small.logw_next(c).await.unwrap();
            assert_all_close(got.as_slice(), expected.as_slice(), 1e-5);
            let s = small.cache_stats();
            assert!(s.bytes <= s.budget, "{s:?}");
        }
        assert!(small.cache_stats().entries < ctxs.len());
        llm.clear_cache();
        assert_eq!(llm.cache_stats().bytes, 0);
    });
}

#[test]
fn bad_calls_are_clear_errors() {
    block_on(async {
        let llm = tiny("the");
        let err = llm.logw_next(&[b"not a token".to_vec()]).await.unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        assert!(err.to_string().contains("not in the vocabulary"), "{err}");
        let long = vec![b"a".to_vec(); llm.context_length()];
        let err = llm.prefix(&long).await.unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        let err = llm.batch_prefix(&[]).await.unwrap_err();
        assert!(matches!(err, PotentialError::EmptyBatch { .. }));
        for temperature in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let options = LlmOptions {
                temperature,
                ..LlmOptions::default()
            };
            let err = Llm::open_plain(tiny_path(), options).unwrap_err();
            assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        }
    });
}

#[test]
fn truncated_and_corrupt_files_are_clear_errors() {
    let bytes = std::fs::read(tiny_path()).unwrap();
    let truncated = scratch().join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(Llm::open_plain(&truncated, LlmOptions::default()).unwrap_err());
    assert!(err.contains("invalid model file"), "{err}");

    let header_only = scratch().join("header.gguf");
    std::fs::write(&header_only, &bytes[..100]).unwrap();
    let err = load_error(Llm::open_plain(&header_only, LlmOptions::default()).unwrap_err());
    assert!(err.contains("invalid model file"), "{err}");

    let mut corrupt = bytes.clone();
    corrupt[..4].copy_from_slice(b"NOPE");
    let corrupt_path = scratch().join("corrupt.gguf");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    let err = load_error(Llm::open_plain(&corrupt_path, LlmOptions::default()).unwrap_err());
    assert!(err.contains("not a readable GGUF file"), "{err}");

    let err = load_error(
        Llm::open_plain(scratch().join("absent.gguf"), LlmOptions::default()).unwrap_err(),
    );
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn another_architecture_and_a_missing_tensor_are_clear_errors() {
    let gpt = write(
        "gpt.gguf",
        &TinyModel {
            architecture: "gpt2".into(),
            ..TinyModel::default()
        },
    );
    let err = load_error(Llm::open_plain(&gpt, LlmOptions::default()).unwrap_err());
    assert!(err.contains("unsupported architecture `gpt2`"), "{err}");

    let holed = write(
        "holed.gguf",
        &TinyModel {
            omit_tensor: Some("blk.1.ffn_up.weight".into()),
            ..TinyModel::default()
        },
    );
    let err = load_error(Llm::open_plain(&holed, LlmOptions::default()).unwrap_err());
    assert!(
        err.contains("tensor `blk.1.ffn_up.weight` is missing"),
        "{err}"
    );
}

#[test]
fn the_recipe_rebuilds_the_same_potential() {
    block_on(async {
        let llm = tiny("the cat");
        let ctx = llm.tokenize(" sat").unwrap();
        let rebuilt = llm.recipe().unwrap().build().unwrap();
        let rebuilt = rebuilt.downcast::<Vec<u8>>().ok().unwrap();
        assert_eq!(
            rebuilt.logw_next(&ctx).await.unwrap().as_slice(),
            llm.logw_next(&ctx).await.unwrap().as_slice()
        );
    });
}

#[test]
fn the_autobatched_form_answers_concurrent_calls_like_the_plain_one() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let auto = Llm::open(
            tiny_path(),
            LlmOptions {
                prompt: "the".into(),
                ..LlmOptions::default()
            },
        )
        .unwrap();
        let plain = tiny("the");
        let ctxs = contexts(&plain, TEXTS);
        let answers = futures::future::try_join_all(ctxs.iter().map(|c| auto.logw_next(c)))
            .await
            .unwrap();
        for (c, a) in ctxs.iter().zip(&answers) {
            let p = plain.logw_next(c).await.unwrap();
            assert_all_close(a.as_slice(), p.as_slice(), 1e-5);
        }
        assert!(auto.inner().cache_stats().misses >= 1);
    });
}
