//! The `Grammar` potential in worker processes: the same answers as in
//! this process (masks as masks), alone and in a product with the n-gram
//! model.
//!
//! `harness = false`: the worker processes re-execute this binary, so
//! `main` calls `potential_runtime::init()` before anything else.

use std::time::Duration;

use potential_builtins::{Grammar, GrammarSource, NgramConfig, NgramLm};
use potential_core::ops::Product;
use potential_core::{Potential, Vocab};
use potential_runtime::MultiprocessExt;

const SCHEMA: &str = r#"{
    "type": "object",
    "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["name"],
    "additionalProperties": false
}"#;

/// The same answers from `a` and `b` on every context (`logw_next` only
/// where the context is live).
async fn same_answers<A, B>(a: &A, b: &B, contexts: &[Vec<Vec<u8>>])
where
    A: Potential<Token = Vec<u8>>,
    B: Potential<Token = Vec<u8>>,
{
    for c in contexts {
        assert_eq!(
            a.prefix(c).await.unwrap(),
            b.prefix(c).await.unwrap(),
            "{c:?}"
        );
        assert_eq!(
            a.complete(c).await.unwrap(),
            b.complete(c).await.unwrap(),
            "{c:?}"
        );
    }
    let mut live = Vec::new();
    for c in contexts {
        if a.prefix(c).await.unwrap() > f64::NEG_INFINITY {
            live.push(c.clone());
        }
    }
    let here = a.batch_logw_next(&live).await.unwrap();
    let there = b.batch_logw_next(&live).await.unwrap();
    for ((c, x), y) in live.iter().zip(&here).zip(&there) {
        // A grammar's masks cross as bits and stay masks.
        assert_eq!(x.as_mask(), y.as_mask(), "{c:?}");
        assert_eq!(x.as_slice(), y.as_slice(), "{c:?}");
        assert_eq!(
            b.logw_next(c).await.unwrap().as_slice(),
            x.as_slice(),
            "{c:?}"
        );
    }
}

async fn grammars_answer_the_same_in_workers() {
    let lm = NgramLm::train_plain(
        br#"the name is "alice" or {"name": "bob", "n": 3} and the cat sat."#,
        &NgramConfig {
            order: 3,
            merges: 40,
        },
    )
    .expect("the model trains");
    let vocab: Vocab<Vec<u8>> = lm.vocab().clone();
    let json = Grammar::new_plain(GrammarSource::JsonSchema(SCHEMA.into()), vocab.clone())
        .expect("the schema compiles");
    let lark = Grammar::lark_plain(
        r#"start: WORD (" " WORD)* "."
           WORD: /[a-z]+/"#,
        vocab,
    )
    .expect("the grammar compiles");
    let contexts: Vec<Vec<Vec<u8>>> = [
        "",
        "{",
        r#"{"name": "al"#,
        r#"{"name": "bob", "n": 3}"#,
        r#"{"n": 3}"#,
        "the cat sat",
        "the cat sat.",
        "the  cat",
    ]
    .iter()
    .map(|t| lm.tokenize(t.as_bytes()))
    .collect();
    for grammar in [json.clone(), lark] {
        let pool = grammar
            .clone()
            .to_multiprocess(2)
            .await
            .expect("workers start");
        same_answers(&grammar, &pool, &contexts).await;
        pool.shutdown().await;
    }
    // A product with the n-gram model, rebuilt in the workers from its recipe.
    let product = Product::new(lm, json).expect("one vocabulary");
    let pool = Product::new(product.first().clone(), product.second().clone())
        .expect("one vocabulary")
        .to_multiprocess(2)
        .await
        .expect("workers start");
    same_answers(&product, &pool, &contexts).await;
    pool.shutdown().await;
}

fn main() {
    potential_runtime::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(300),
            grammars_answer_the_same_in_workers(),
        )
        .await
        .expect("the grammar tests finish in 300 s");
    });
    println!("test grammars_answer_the_same_in_workers ... ok");
}
