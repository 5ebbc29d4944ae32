use super::*;
use crate::{NgramConfig, NgramLm};
use potential_core::Mask;
use potential_core::checks::{
    Tolerance, assert_autoreg_fact, assert_batch_consistency, assert_logw_next_consistency,
    assert_respawns, block_on,
};
use proptest::prelude::*;

const INF: f64 = f64::NEG_INFINITY;

fn vocab(tokens: &[&str]) -> Vocab<Vec<u8>> {
    Vocab::new(tokens.iter().map(|t| t.as_bytes().to_vec())).unwrap()
}

fn toks(tokens: &[&str]) -> Vec<Vec<u8>> {
    tokens.iter().map(|t| t.as_bytes().to_vec()).collect()
}

/// One single-byte token per byte of `text`.
fn bytes_of(text: &[u8]) -> Vec<Vec<u8>> {
    text.iter().map(|&b| vec![b]).collect()
}

/// Every string over `alphabet` of at most `max_len` bytes, shortest first.
fn all_strings(alphabet: &[u8], max_len: usize) -> Vec<Vec<u8>> {
    let mut out = vec![vec![]];
    let mut start = 0;
    for _ in 0..max_len {
        let end = out.len();
        for i in start..end {
            for &b in alphabet {
                let mut s = out[i].clone();
                s.push(b);
                out.push(s);
            }
        }
        start = end;
    }
    out
}

// ---- A small Lark grammar against a hand-built recognizer ----

/// Sums of numbers and parenthesized sums.
const SUMS: &str = r#"
start: expr
expr: term ("+" term)*
term: NUM | "(" expr ")"
NUM: /[0-9]+/
"#;

/// The hand-built recognizer of [`SUMS`]: `Some(complete)` while `bytes`
/// is a prefix of a sentence (any such prefix closes with a digit and
/// `)`s), `None` once it is not.
fn sums_oracle(bytes: &[u8]) -> Option<bool> {
    let mut depth = 0usize;
    let mut prev: Option<u8> = None;
    for &b in bytes {
        let operand_done = matches!(prev, Some(b'0'..=b'9' | b')'));
        let ok = match b {
            b'0'..=b'9' => prev != Some(b')'),
            b'(' => !operand_done,
            b')' => operand_done && depth > 0,
            b'+' => operand_done,
            _ => false,
        };
        if !ok {
            return None;
        }
        match b {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ => {}
        }
        prev = Some(b);
    }
    Some(matches!(prev, Some(b'0'..=b'9' | b')')) && depth == 0)
}

fn sums_vocab() -> Vocab<Vec<u8>> {
    vocab(&["0", "1", "+", "(", ")", "x", "(1", "1+", "))", "+(", "10"])
}

#[test]
fn lark_agrees_with_a_hand_built_recognizer_on_every_short_string() {
    block_on(async {
        let g = Grammar::lark_plain(SUMS, sums_vocab()).unwrap();
        let strings = all_strings(b"01+()x", 6);
        for s in &strings {
            let ctx = bytes_of(s);
            let oracle = sums_oracle(s);
            let text = String::from_utf8_lossy(s);
            assert_eq!(
                g.prefix(&ctx).await.unwrap(),
                log_indicator(oracle.is_some()),
                "prefix {text:?}"
            );
            assert_eq!(
                g.complete(&ctx).await.unwrap(),
                log_indicator(oracle == Some(true)),
                "complete {text:?}"
            );
            // The mask against the recognizer, on the shorter live strings.
            if oracle.is_some() && s.len() <= 3 {
                let next = g.logw_next(&ctx).await.unwrap();
                for token in g.vocab().tokens() {
                    let extended = [s.as_slice(), token].concat();
                    assert_eq!(
                        next.get(token),
                        log_indicator(sums_oracle(&extended).is_some()),
                        "{text:?} + {:?}",
                        String::from_utf8_lossy(token)
                    );
                }
                assert_eq!(next.eos(), log_indicator(oracle == Some(true)));
            }
        }
    });
}

// ---- A small JSON schema against serde_json and a schema validator ----

fn small_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "array",
        "items": {"type": "integer", "minimum": 0},
        "maxItems": 3
    })
}

/// serde_json's parse plus boon's validation.
struct JsonOracle {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl JsonOracle {
    fn new(schema: serde_json::Value) -> Self {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.add_resource("schema.json", schema).unwrap();
        let index = compiler.compile("schema.json", &mut schemas).unwrap();
        JsonOracle { schemas, index }
    }

    /// A document as llguidance writes JSON: from its first byte to its
    /// last (serde_json also skips white space around it).
    fn accepts(&self, bytes: &[u8]) -> bool {
        !bytes.first().is_some_and(u8::is_ascii_whitespace)
            && !bytes.last().is_some_and(u8::is_ascii_whitespace)
            && serde_json::from_slice::<serde_json::Value>(bytes)
                .is_ok_and(|v| self.schemas.validate(&v, self.index).is_ok())
    }
}

#[test]
fn json_schema_agrees_with_serde_json_and_a_validator() {
    block_on(async {
        const ALPHABET: &[u8] = b"[],01 ";
        let oracle = JsonOracle::new(small_schema());
        let g = Grammar::json_schema_plain(
            &small_schema(),
            vocab(&["[", "]", ",", "0", "1", " ", "[1", "1]", ", "]),
        )
        .unwrap();
        // Every prefix of a valid document of this schema closes within
        // three more bytes (`1]`, `]`, `[]`, ...), so "some completion
        // exists" is decided by trying the completions that short.
        let completions = all_strings(ALPHABET, 3);
        let mut sentences = 0;
        for s in all_strings(ALPHABET, 5) {
            let ctx = bytes_of(&s);
            let text = String::from_utf8_lossy(&s);
            let complete = oracle.accepts(&s);
            sentences += usize::from(complete);
            assert_eq!(
                g.complete(&ctx).await.unwrap(),
                log_indicator(complete),
                "complete {text:?}"
            );
            let live = completions
                .iter()
                .any(|e| oracle.accepts(&[s.as_slice(), e].concat()));
            assert_eq!(
                g.prefix(&ctx).await.unwrap(),
                log_indicator(live),
                "prefix {text:?}"
            );
        }
        assert!(sentences > 10, "{sentences}");
    });
}

// ---- Tokenization independence ----

const OBJECT_SCHEMA: &str = r#"{
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 6},
        "tags": {"type": "array", "items": {"enum": ["a", "bc"]}},
        "n": {"type": "number"}
    },
    "required": ["name"],
    "additionalProperties": false
}"#;

/// Single bytes of JSON text and longer tokens that cut across its pieces.
fn json_vocab() -> Vocab<Vec<u8>> {
    let mut tokens: Vec<Vec<u8>> = b"{}[]\":, -.0123456789abcenmstgx\\"
        .iter()
        .map(|&b| vec![b])
        .collect();
    for t in [
        "{\"",
        "\":",
        "name",
        "\"name\"",
        "tags",
        "\"tags\": [",
        "\"a\"",
        "bc\"",
        ", ",
        "\",",
        "\"n\":",
        "12",
        ".5",
        "e-",
        "]}",
        "\"}",
        "\\n",
        "\\\"",
    ] {
        tokens.push(t.as_bytes().to_vec());
    }
    Vocab::new(tokens).unwrap()
}

/// `bytes` cut greedily into the longest tokens of `vocab` (every byte of
/// `bytes` is a token of it).
fn cut_longest(bytes: &[u8], vocab: &Vocab<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = (1..=bytes.len() - i)
            .rev()
            .find(|&n| vocab.contains(&bytes[i..i + n].to_vec()))
            .expect("single bytes are tokens");
        out.push(bytes[i..i + len].to_vec());
        i += len;
    }
    out
}

/// A context drawn through the grammar's own masks: `choices` pick among
/// the allowed tokens step by step.
fn walk(g: &Grammar, choices: &[usize]) -> Vec<Vec<u8>> {
    let mut ctx = Vec::new();
    for &c in choices {
        let next = block_on(g.logw_next(&ctx)).unwrap();
        let allowed: Vec<&Vec<u8>> = g
            .vocab()
            .tokens()
            .iter()
            .filter(|t| next.get(t) == 0.0)
            .collect();
        if allowed.is_empty() {
            break;
        }
        ctx.push(allowed[c % allowed.len()].clone());
    }
    ctx
}

fn same_answers(
    g: &Grammar,
    a: &[Vec<u8>],
    b: &[Vec<u8>],
) -> std::result::Result<(), TestCaseError> {
    prop_assert_eq!(
        block_on(g.prefix(a)).unwrap(),
        block_on(g.prefix(b)).unwrap()
    );
    prop_assert_eq!(
        block_on(g.complete(a)).unwrap(),
        block_on(g.complete(b)).unwrap()
    );
    match (block_on(g.logw_next(a)), block_on(g.logw_next(b))) {
        (Ok(x), Ok(y)) => prop_assert_eq!(x.as_slice(), y.as_slice()),
        (Err(_), Err(_)) => {}
        (x, y) => prop_assert!(false, "{:?} vs {:?}", x.map(|_| ()), y.map(|_| ())),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn answers_depend_on_the_bytes_not_the_tokens(
        choices in proptest::collection::vec(any::<usize>(), 0..24),
        junk in proptest::collection::vec(any::<usize>(), 0..3),
    ) {
        let json = Grammar::new_plain(GrammarSource::JsonSchema(OBJECT_SCHEMA.into()), json_vocab()).unwrap();
        let sums = Grammar::lark_plain(SUMS, sums_vocab()).unwrap();
        for g in [&json, &sums] {
            let mut ctx = walk(g, &choices);
            // A few arbitrary tokens after: often out of the language.
            for &j in &junk {
                ctx.push(g.vocab().tokens()[j % g.vocab().len()].clone());
            }
            let bytes = ctx.concat();
            same_answers(g, &ctx, &bytes_of(&bytes))?;
            same_answers(g, &ctx, &cut_longest(&bytes, g.vocab()))?;
        }
    }
}

// ---- The property checks ----

async fn run_checks(g: &Grammar, contexts: &[Vec<Vec<u8>>]) {
    let tol = Tolerance::default();
    // Every check reports a dead context (prefix weight -inf, so no
    // next-token weights) as a failure, as genlm's do: they get the live
    // ones, and the dead ones must fail `logw_next` on their own.
    let mut live = Vec::new();
    for c in contexts {
        if g.prefix(c).await.unwrap() == 0.0 {
            live.push(c.clone());
        } else {
            assert!(
                g.logw_next(c).await.is_err(),
                "{c:?} is dead yet has next-token weights"
            );
        }
    }
    assert!(!live.is_empty());
    assert_autoreg_fact(g, &live, tol).await.unwrap();
    assert_logw_next_consistency(g, &live, tol).await.unwrap();
    assert_batch_consistency(g, &live, tol).await.unwrap();
}

/// Contexts cut from `texts` by `tokenize`: each text and its prefixes of
/// one and of all but one token.
fn contexts_of(texts: &[&str], tokenize: impl Fn(&[u8]) -> Vec<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    let mut out = vec![vec![]];
    for t in texts {
        let ctx = tokenize(t.as_bytes());
        for n in [1, ctx.len().saturating_sub(1), ctx.len()] {
            out.push(ctx[..n.min(ctx.len())].to_vec());
        }
    }
    out
}

#[test]
fn property_checks_pass_on_the_ngram_vocabulary() {
    block_on(async {
        // The vocabulary of the main job's n-gram model (8,256 tokens).
        let lm = NgramLm::from_bundled_corpus_plain(&NgramConfig {
            order: 2,
            merges: 8000,
        })
        .unwrap();
        assert_eq!(lm.vocab().len(), 8256);
        let json = Grammar::new_plain(
            GrammarSource::JsonSchema(OBJECT_SCHEMA.into()),
            lm.vocab().clone(),
        )
        .unwrap();
        let contexts = contexts_of(
            &[
                r#"{"name": "alice", "tags": ["a", "bc"], "n": 1.5e3}"#,
                r#"{"name":"the king"}"#,
                r#"{"name": "x", "n": -0.25"#,
                r#"{"tags": []}"#,
            ],
            |b| lm.tokenize(b),
        );
        run_checks(&json, &contexts).await;
        let lark = Grammar::lark_plain(
            r#"start: sentence+
               sentence: WORD (" " WORD)* "."
               WORD: /[a-z]+/"#,
            lm.vocab().clone(),
        )
        .unwrap();
        let contexts = contexts_of(
            &["the cat sat.the king said.", "alice was", "Alice", "a b"],
            |b| lm.tokenize(b),
        );
        run_checks(&lark, &contexts).await;
    });
}

#[test]
fn property_checks_pass_on_small_vocabularies() {
    block_on(async {
        let g = Grammar::lark_plain(SUMS, sums_vocab()).unwrap();
        let contexts: Vec<Vec<Vec<u8>>> = ["", "(1", "1+(10", "1+", "(1))", "x", "10+1"]
            .iter()
            .map(|s| cut_longest(s.as_bytes(), g.vocab()))
            .collect();
        run_checks(&g, &contexts).await;
        let re =
            Grammar::regex_plain("(ab)+c?", vocab(&["a", "b", "ab", "abc", "c", "ca"])).unwrap();
        let contexts = vec![
            toks(&[]),
            toks(&["ab"]),
            toks(&["a", "b", "c"]),
            toks(&["a"]),
            toks(&["ca"]),
        ];
        run_checks(&re, &contexts).await;
    });
}

// ---- The state cache ----

#[test]
fn one_more_token_costs_one_advance_and_hits_are_counted() {
    block_on(async {
        let g = Grammar::lark_plain(SUMS, sums_vocab()).unwrap();
        let ctx = toks(&["(1", "+", "10"]);
        g.logw_next(&ctx).await.unwrap();
        let before = g.cache_stats();
        assert_eq!(
            (before.hits, before.misses, before.tokens_advanced),
            (0, 1, 3)
        );
        // Another method on the kept context keeps its mask.
        assert_eq!(g.prefix(&ctx).await.unwrap(), 0.0);
        let mut longer = ctx.clone();
        longer.push(b")".to_vec());
        g.logw_next(&longer).await.unwrap();
        let after = g.cache_stats();
        assert_eq!(after.misses, before.misses + 1);
        assert_eq!(after.tokens_advanced, before.tokens_advanced + 1);
        // `)` was in the mask kept with "(1+10": fed without a check.
        assert_eq!(before.tokens_known_allowed, 0);
        assert_eq!(after.tokens_known_allowed, 1);
        // The same context again, in any method: a hit.
        assert_eq!(g.complete(&longer).await.unwrap(), 0.0);
        assert_eq!(g.cache_stats().hits, after.hits + 1);
        assert_eq!(g.cache_stats().len, 2);
        // A token the kept mask rules out is checked, and refused.
        let mut refused = longer.clone();
        refused.push(b"(".to_vec());
        assert_eq!(g.prefix(&refused).await.unwrap(), INF);
        assert_eq!(g.cache_stats().tokens_known_allowed, 1);
    });
}

#[test]
fn the_cache_keeps_at_most_its_capacity_and_dead_contexts_stay_dead() {
    block_on(async {
        let g = Grammar::lark_plain(SUMS, sums_vocab())
            .unwrap()
            .with_cache_capacity(2);
        for text in ["1", "1+", "1+1", "(1", "x"] {
            g.prefix(&cut_longest(text.as_bytes(), g.vocab()))
                .await
                .unwrap();
        }
        let stats = g.cache_stats();
        assert_eq!((stats.len, stats.capacity), (2, 2));
        // "x" is kept as dead; its extensions need no parser.
        assert_eq!(g.prefix(&toks(&["x", "1"])).await.unwrap(), INF);
        assert_eq!(g.cache_stats().tokens_advanced, stats.tokens_advanced);
        // Without a cache every call parses from the start, with the same answers.
        let uncached = g.clone().with_cache_capacity(0);
        let ctx = toks(&["(1", "+", "10", ")"]);
        assert_eq!(
            uncached.logw_next(&ctx).await.unwrap().as_slice(),
            g.logw_next(&ctx).await.unwrap().as_slice()
        );
        assert_eq!(uncached.cache_stats().len, 0);
    });
}

// ---- Ends, errors and recipes ----

/// `logw_next` is llguidance's mask as bits, never values: right at every
/// position for vocabularies that end inside and at the edges of its
/// 32-bit words and of our 64-bit ones.
#[test]
fn logw_next_is_a_mask_with_every_bit_in_place() {
    block_on(async {
        for n in [1, 30, 31, 32, 62, 63, 64, 65, 127, 200] {
            let tokens: Vec<Vec<u8>> = (0..n).map(|i| i.to_string().into_bytes()).collect();
            let g =
                Grammar::regex_plain("[13579][0-9]*", Vocab::new(tokens.clone()).unwrap()).unwrap();
            let start = g.logw_next(&[]).await.unwrap();
            let mask = start.as_mask().expect("a grammar answers with a mask");
            let odd = |t: &[u8]| b"13579".contains(&t[0]);
            let want: Vec<usize> = (0..n).filter(|&i| odd(&tokens[i])).collect();
            assert_eq!(mask.iter().collect::<Vec<_>>(), want, "{n} tokens");
            if n > 1 {
                let after = g.logw_next(&tokens[1..2]).await.unwrap();
                assert_eq!(after.as_mask(), Some(&Mask::all(n + 1)), "{n} tokens");
            }
        }
    });
}

#[test]
fn eos_is_allowed_exactly_when_complete_even_where_the_grammar_ends() {
    block_on(async {
        let g = Grammar::regex_plain("ab|abc", vocab(&["a", "b", "c", "ab"])).unwrap();
        let next = g.logw_next(&toks(&["ab"])).await.unwrap();
        assert_eq!(next.as_slice(), &[INF, INF, 0.0, INF, 0.0]);
        // After "abc" nothing may follow but EOS.
        let next = g.logw_next(&toks(&["ab", "c"])).await.unwrap();
        assert_eq!(next.as_slice(), &[INF, INF, INF, INF, 0.0]);
        assert_eq!(g.complete(&toks(&["ab", "c"])).await.unwrap(), 0.0);
        assert_eq!(g.prefix(&toks(&["ab", "c", "c"])).await.unwrap(), INF);
        // A live prefix that no token continues: every weight is zero.
        let g = Grammar::regex_plain("az", vocab(&["a", "b"])).unwrap();
        let next = g.logw_next(&toks(&["a"])).await.unwrap();
        assert_eq!(next.as_slice(), &[INF, INF, INF]);
    });
}

#[test]
fn malformed_sources_are_errors_that_name_the_place() {
    let v = vocab(&["a", "b"]);
    let lark = Grammar::lark_plain("start: \"a\"\nfoo: (\"b\"", v.clone()).unwrap_err();
    assert!(matches!(lark, PotentialError::InvalidInput(_)), "{lark}");
    assert!(
        lark.to_string().contains("Lark grammar") && lark.to_string().contains("2(10)"),
        "{lark}"
    );
    let schema = Grammar::new_plain(
        GrammarSource::JsonSchema("{\"type\": \"object\",\n \"properties\": 3}".into()),
        v.clone(),
    )
    .unwrap_err();
    assert!(
        matches!(schema, PotentialError::InvalidInput(_)),
        "{schema}"
    );
    assert!(schema.to_string().contains("properties"), "{schema}");
    let text = Grammar::new_plain(
        GrammarSource::JsonSchema("{\"type\":\n ]".into()),
        v.clone(),
    )
    .unwrap_err();
    assert!(text.to_string().contains("line 2 column 2"), "{text}");
    let re = Grammar::regex_plain("a(b", v.clone()).unwrap_err();
    assert!(matches!(re, PotentialError::InvalidInput(_)), "{re}");
    assert!(re.to_string().contains("regular expression"), "{re}");
    let empty =
        Grammar::regex_plain("a", Vocab::new([b"a".to_vec(), vec![]]).unwrap()).unwrap_err();
    assert!(
        empty
            .to_string()
            .contains("token 1 of the vocabulary is empty"),
        "{empty}"
    );
}

#[test]
fn bad_calls_are_errors() {
    block_on(async {
        let g = Grammar::regex_plain("ab", vocab(&["a", "b"])).unwrap();
        let outside = g.prefix(&toks(&["ab"])).await.unwrap_err();
        assert!(
            matches!(outside, PotentialError::InvalidInput(_)),
            "{outside}"
        );
        assert!(outside.to_string().contains("[97, 98]"), "{outside}");
        let dead = g.logw_next(&toks(&["b"])).await.unwrap_err();
        assert!(
            matches!(dead, PotentialError::ZeroWeightContext { .. }),
            "{dead}"
        );
        let empty = g.batch_logw_next(&[]).await.unwrap_err();
        assert!(matches!(empty, PotentialError::EmptyBatch { .. }));
    });
}

#[test]
fn batches_agree_with_single_calls_and_recipes_rebuild_the_grammar() {
    block_on(async {
        let g = Grammar::json_schema(&small_schema(), vocab(&["[", "]", ",", "1", "[1", "1]"]))
            .unwrap();
        let contexts = vec![
            toks(&["[1"]),
            toks(&[]),
            toks(&["[", "1", ","]),
            toks(&["[1"]),
        ];
        let batch = g.batch_logw_next(&contexts).await.unwrap();
        for (c, b) in contexts.iter().zip(&batch) {
            assert_eq!(g.logw_next(c).await.unwrap().as_slice(), b.as_slice());
        }
        assert_respawns(g.inner(), &contexts).await.unwrap();
    });
}

// ---- The schema the user wrote: references ----

/// Every single byte, so that any text is a context.
fn byte_vocab() -> Vocab<Vec<u8>> {
    Vocab::new((0..=255u8).map(|b| vec![b])).unwrap()
}

/// A JSON-schema grammar over single bytes.
fn schema_grammar(schema: serde_json::Value) -> Grammar {
    Grammar::json_schema_plain(&schema, byte_vocab()).unwrap()
}

/// Whether `text` is a whole document of `g`'s language.
fn accepts(g: &Grammar, text: &[u8]) -> bool {
    block_on(g.complete(&bytes_of(text))).unwrap() == 0.0
}

#[test]
fn a_ref_resolves_against_the_nearest_id() {
    // `#/$defs/inner` inside the resource `http://example.com/other.json`
    // is that resource's `inner` (a string), not the root's (an integer).
    let g = schema_grammar(serde_json::json!({
        "$defs": {"inner": {"type": "integer"}},
        "properties": {
            "foo": {
                "$id": "http://example.com/other.json",
                "$defs": {"inner": {"type": "string"}},
                "$ref": "#/$defs/inner"
            }
        }
    }));
    assert!(accepts(&g, br#"{"foo":"x"}"#));
    assert!(!accepts(&g, br#"{"foo":1}"#));
}

#[test]
fn anchors_and_escaped_pointers_resolve() {
    let g = schema_grammar(serde_json::json!({
        "$defs": {
            "n": {"$anchor": "num", "type": "integer"},
            "a/b": {"type": "boolean"},
            "c~d": {"type": "null"}
        },
        "type": "object",
        "properties": {
            "x": {"$ref": "#num"},
            "y": {"$ref": "#/$defs/a~1b"},
            "z": {"$ref": "#/$defs/c~0d"}
        },
        "additionalProperties": false
    }));
    assert!(accepts(&g, br#"{"x":1,"y":true,"z":null}"#));
    assert!(!accepts(&g, br#"{"x":"1"}"#));
    assert!(!accepts(&g, br#"{"y":null}"#));
    assert!(!accepts(&g, br#"{"z":true}"#));
}

#[test]
fn a_remote_ref_is_an_error_not_a_fetch() {
    let err = Grammar::json_schema_plain(
        &serde_json::json!({"$ref": "http://example.com/elsewhere.json"}),
        byte_vocab(),
    )
    .unwrap_err();
    assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("elsewhere.json"), "{err}");
}

// ---- The schema the user wrote: keys spelled with escapes ----

#[test]
fn a_key_spelled_with_an_escape_is_held_to_its_property() {
    let g = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}}
    }));
    assert!(accepts(&g, br#"{"a":1}"#));
    assert!(accepts(&g, br#"{"b":"y"}"#));
    assert!(!accepts(&g, br#"{"a":"y"}"#));
    // Escapes in keys are refused: "\u0061" is "a", and "y" is no integer.
    assert!(!accepts(&g, br#"{"\u0061":"y"}"#));
    assert!(!accepts(&g, br#"{"\u0062":"y"}"#));
}

#[test]
fn a_key_spelled_with_an_escape_is_held_to_its_pattern_property() {
    let g = schema_grammar(serde_json::json!({
        "type": "object",
        "patternProperties": {"^a$": {"type": "integer"}}
    }));
    assert!(accepts(&g, br#"{"a":1}"#));
    assert!(accepts(&g, br#"{"b":"y"}"#));
    assert!(!accepts(&g, br#"{"a":"y"}"#));
    assert!(!accepts(&g, br#"{"\u0061":"y"}"#));
}

#[test]
fn a_non_ascii_key_spelled_with_an_escape_is_held_to_its_property() {
    let g = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"é": {"type": "integer"}, "\n": {"type": "integer"}}
    }));
    assert!(accepts(&g, "{\"é\":1}".as_bytes()));
    assert!(accepts(&g, br#"{"\n":1}"#));
    assert!(!accepts(&g, "{\"é\":\"y\"}".as_bytes()));
    assert!(!accepts(&g, br#"{"\u00e9":"y"}"#));
    assert!(!accepts(&g, br#"{"\u00E9":"y"}"#));
    // A control character's other spellings.
    assert!(!accepts(&g, br#"{"\u000a":"y"}"#));
    assert!(!accepts(&g, br#"{"\u000A":"y"}"#));
}

#[test]
fn a_schema_cannot_turn_the_escapes_back_on() {
    for (key, value) in [
        ("json_allowed_escapes", serde_json::json!("nrbtf\"\\u")),
        ("json_allowed_escapes", serde_json::json!(true)),
        (
            "json_allow_general_unicode_escapes",
            serde_json::json!(true),
        ),
    ] {
        let err = Grammar::json_schema_plain(
            &serde_json::json!({"type": "object", "x-guidance": {key: value}}),
            byte_vocab(),
        )
        .unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        assert!(err.to_string().contains(key), "{err}");
    }
    // As strict or stricter is fine: here `\t` is refused too.
    let strict = schema_grammar(serde_json::json!({
        "type": "string",
        "x-guidance": {"json_allowed_escapes": "n\"\\", "json_allow_general_unicode_escapes": false}
    }));
    assert_language(&strict, &[br#""a\n\"""#], &[br#""\t""#, br#""\u0061""#]);
    let err = Grammar::json_schema_plain(
        &serde_json::json!({"type": "object", "x-guidance": 1}),
        byte_vocab(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("x-guidance"), "{err}");
}

// ---- The JSON language accepted (each point of `Grammar`'s docs) ----

/// Asserts which of `texts` `g` accepts: `yes` all, `no` none.
fn assert_language(g: &Grammar, yes: &[&[u8]], no: &[&[u8]]) {
    for text in yes {
        assert!(
            accepts(g, text),
            "refused {:?}",
            String::from_utf8_lossy(text)
        );
    }
    for text in no {
        assert!(
            !accepts(g, text),
            "accepted {:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn language_numbers() {
    // An integer is written as one: no fraction, no exponent.
    let int = schema_grammar(serde_json::json!({"type": "integer"}));
    assert_language(
        &int,
        &[b"0", b"-7", b"120", b"-0"],
        &[b"1.0", b"1e2", b"01", b"+1"],
    );
    // An unbounded number takes every JSON number form.
    let num = schema_grammar(serde_json::json!({"type": "number"}));
    assert_language(
        &num,
        &[b"0", b"-0", b"1.5", b"1e2", b"1E+2", b"-2.5e-3"],
        &[b"01", b".5", b"1.", b"+1", b"NaN"],
    );
    // With bounds: no exponent, and no -0.
    let bounded =
        schema_grammar(serde_json::json!({"type": "number", "minimum": 0, "maximum": 1000}));
    assert_language(
        &bounded,
        &[b"0", b"2.5", b"1000"],
        &[b"1e2", b"-0", b"1000.5", b"-1"],
    );
    let bounded = schema_grammar(serde_json::json!({"type": "integer", "minimum": 0}));
    assert_language(&bounded, &[b"0", b"12345678901"], &[b"-0", b"1e2", b"-1"]);
    let bounded = schema_grammar(serde_json::json!({"type": "integer", "maximum": 10}));
    assert_language(&bounded, &[b"-12", b"10"], &[b"11", b"1e1", b"-0"]);
}

#[test]
fn language_escapes() {
    let string = schema_grammar(serde_json::json!({"type": "string"}));
    assert_language(
        &string,
        &[
            br#""plain""#,
            "\"caf\u{e9} \u{1F600}\"".as_bytes(),
            br#""\" \\ \b \f \n \r \t""#,
        ],
        &[
            br#""\/""#,
            br#""\u0041""#,
            br#""\u00e9""#,
            br#""\ud83d\ude00""#,
            br#""\u0001""#,
            br#""\u000a""#,
            b"\"\x01\"",
            b"\"\x7f\"",
            b"\"\n\"",
            b"\"\xff\"",
        ],
    );
    // The same in keys, and in strings with a pattern.
    let keyed = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"p": {"type": "string", "pattern": "^[a-z\n]*$"}}
    }));
    assert_language(
        &keyed,
        &[br#"{"p":"a\n"}"#, br#"{"q\n":1}"#],
        &[
            br#"{"p":"\u0061"}"#,
            br#"{"\u0071":1}"#,
            br#"{"p":"\u000a"}"#,
        ],
    );
}

#[test]
fn language_format_is_checked() {
    let date = schema_grammar(serde_json::json!({"type": "string", "format": "date"}));
    assert_language(
        &date,
        &[br#""2024-02-29""#],
        &[br#""2024-02-30""#, br#""soon""#],
    );
    let unknown = Grammar::json_schema_plain(
        &serde_json::json!({"type": "string", "format": "shoe-size"}),
        byte_vocab(),
    )
    .unwrap_err();
    assert!(unknown.to_string().contains("shoe-size"), "{unknown}");
}

#[test]
fn language_key_order() {
    let g = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["b"]
    }));
    assert_language(
        &g,
        &[
            br#"{"a":1,"b":2}"#,
            br#"{"b":2}"#,
            br#"{"a":1,"b":2,"c":3}"#,
        ],
        &[br#"{"b":2,"a":1}"#, br#"{"c":3,"b":2}"#, br#"{"a":1}"#],
    );
    // Required names that `properties` lacks come after its own; pattern
    // properties after all declared ones.
    let g = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["z", "a"],
        "patternProperties": {"^x": {"type": "integer"}}
    }));
    assert_language(
        &g,
        &[br#"{"a":1,"z":2}"#, br#"{"a":1,"z":2,"x1":3,"y":4,"x2":5}"#],
        &[
            br#"{"z":2,"a":1}"#,
            br#"{"x1":3,"a":1,"z":2}"#,
            br#"{"a":1,"z":2,"x1":"s"}"#,
        ],
    );
}

#[test]
fn language_whitespace() {
    let g = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "array"}}
    }));
    assert_language(
        &g,
        &[br#"{"a":[1,2]}"#, b"{ \"a\" :\t[ 1 ,\r\n 2 ] }", b"{\n}"],
        &[b" {}", b"{} ", b"\n{}"],
    );
}

#[test]
fn language_duplicate_keys() {
    // A declared name is written once; the keys of additional properties
    // are not compared, and each counts toward minProperties.
    let g = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "minProperties": 3
    }));
    assert_language(
        &g,
        &[br#"{"a":1,"b":2,"c":3}"#, br#"{"a":1,"b":2,"b":3}"#],
        &[br#"{"a":1,"a":2,"b":3}"#, br#"{"a":1,"b":2}"#],
    );
    let g = schema_grammar(serde_json::json!({"type": "object", "maxProperties": 1}));
    assert_language(&g, &[br#"{"b":1}"#], &[br#"{"b":1,"b":2}"#]);
}

#[test]
fn language_unsatisfiable_schemas() {
    for schema in [
        serde_json::json!(false),
        serde_json::json!({"type": "integer", "minimum": 5, "maximum": 3}),
        serde_json::json!({"type": "object", "properties": {"a": false}, "required": ["a"]}),
    ] {
        let err = Grammar::json_schema_plain(&schema, byte_vocab()).unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        assert!(
            err.to_string().contains("Unsatisfiable schema"),
            "{schema}: {err}"
        );
    }
    // An optional property that nothing satisfies is left out.
    let g = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"a": false, "b": {"type": "null"}},
        "additionalProperties": false
    }));
    assert_language(&g, &[b"{}", br#"{"b":null}"#], &[br#"{"a":1}"#]);
    // `true` is every JSON document.
    let any = schema_grammar(serde_json::json!(true));
    assert_language(&any, &[b"1", br#"{"x":[null,"y"]}"#], &[b"nul"]);
}

#[test]
fn compact_whitespace_is_an_option_the_source_carries() {
    let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "array"}}});
    let source = GrammarSource::json_schema_with(&schema, JsonWhitespace::Compact);
    let compact = Grammar::new_plain(source.clone(), byte_vocab()).unwrap();
    assert_language(
        &compact,
        &[br#"{"a":[1,2]}"#],
        &[br#"{"a":[1, 2]}"#, b"{ }"],
    );
    // The recipe is the source: a rebuilt grammar is compact too.
    let rebuilt: Grammar = postcard::from_bytes(&postcard::to_stdvec(&compact).unwrap()).unwrap();
    assert_eq!(rebuilt.source(), &source);
    assert!(!accepts(&rebuilt, b"{ }"));
    // Free is the default, and a boolean schema carries the setting too.
    let free = GrammarSource::json_schema_with(&schema, JsonWhitespace::Free);
    let free = Grammar::new_plain(free, byte_vocab()).unwrap();
    assert_language(&free, &[br#"{"a":[1, 2]}"#, b"{ }"], &[]);
    let any = GrammarSource::json_schema_with(&serde_json::json!(true), JsonWhitespace::Compact);
    let any = Grammar::new_plain(any, byte_vocab()).unwrap();
    assert_language(&any, &[b"[1,{}]"], &[b"[1, {}]"]);
    // The schema's own llguidance options other than escapes are kept.
    let own = serde_json::json!({"type": "array", "x-guidance": {"item_separator": ", "}});
    let own = GrammarSource::json_schema_with(&own, JsonWhitespace::Compact);
    let own = Grammar::new_plain(own, byte_vocab()).unwrap();
    assert_language(&own, &[b"[1, 2]"], &[b"[1,2]"]);
}

#[test]
fn a_json_schema_inside_lark_needs_the_escape_setting_of_its_own() {
    let lark = |options: &str| {
        Grammar::lark_plain(
            &format!(
                r#"start: %json {{"type": "object", "properties": {{"a": {{"type": "integer"}}}}{options}}}"#
            ),
            byte_vocab(),
        )
        .unwrap()
    };
    // llguidance's own settings: the hole is open.
    assert_language(&lark(""), &[br#"{"\u0061":"y"}"#], &[br#"{"a":"y"}"#]);
    let closed = lark(r#", "x-guidance": {"json_allowed_escapes": "nrbtf\"\\"}"#);
    assert_language(&closed, &[br#"{"a":1}"#], &[br#"{"\u0061":"y"}"#]);
}

/// `oneOf` and `minProperties`/`maxProperties` as llguidance compiles
/// them: refused where it cannot enforce them exactly, and approximated
/// (a language larger or smaller than the schema's) where the schema's
/// `x-guidance` asks for it.
#[test]
fn language_one_of_and_property_counts() {
    let refused = |schema: serde_json::Value, says: &str| {
        let err = Grammar::json_schema_plain(&schema, byte_vocab()).unwrap_err();
        assert!(matches!(err, PotentialError::InvalidInput(_)), "{err}");
        assert!(err.to_string().contains(says), "{schema}: {err}");
    };
    // Branches that cannot both match: exact.
    let disjoint = schema_grammar(serde_json::json!({
        "oneOf": [{"type": "integer"}, {"type": "string"}]
    }));
    assert_language(&disjoint, &[b"1", br#""x""#], &[b"null"]);
    // Branches that may overlap: refused, or read as `anyOf` on request,
    // which accepts a document valid under both (invalid under `oneOf`).
    let overlapping = serde_json::json!({"oneOf": [{"type": "integer"}, {"type": "number"}]});
    refused(overlapping.clone(), "coerce_one_of");
    let mut coerced = overlapping;
    coerced["x-guidance"] = serde_json::json!({"coerce_one_of": true});
    assert_language(&schema_grammar(coerced), &[b"1", b"1.5"], &[b"null"]);
    // Property counts with optional declared properties: refused, or
    // counted wrong under `lenient`.
    let counted = serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "minProperties": 1
    });
    refused(counted.clone(), "min/maxProperties");
    let mut lenient = counted;
    lenient["x-guidance"] = serde_json::json!({"lenient": true});
    // Under `lenient` only the additional properties count: valid
    // documents whose properties are all declared ones are refused.
    assert_language(
        &schema_grammar(lenient),
        &[br#"{"x":1}"#, br#"{"a":1,"x":1}"#],
        &[b"{}", br#"{"a":1}"#, br#"{"a":1,"b":2}"#],
    );
    // With every declared property required, they are counted exactly.
    let required = schema_grammar(serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "minProperties": 2
    }));
    assert_language(&required, &[br#"{"a":1,"x":2}"#], &[br#"{"a":1}"#]);
}
