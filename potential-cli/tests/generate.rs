//! End-to-end tests of `potential generate`: the built binary run on
//! SmolLM2 with a JSON schema, a Lark grammar and a regular expression
//! (each answer checked here, by hand), and on bad input (each error
//! checked). The runs that need the model are skipped, saying so, when it
//! was not fetched, unless `POTENTIAL_REQUIRE_MODEL=1` (set by CI) makes
//! that a failure. Few particles and tokens: each run takes seconds.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the command with `args`. One candle thread: the tests run in
/// parallel, and candle's spin-waiting pool of one thread per core in
/// each of them would fight over the cores.
fn potential(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_potential"))
        .args(args)
        .env("CANDLE_NUM_THREADS", "1")
        .output()
        .expect("the binary runs")
}

/// Whether SmolLM2 is there; when it is not, says so and the test ends
/// (or fails, under `POTENTIAL_REQUIRE_MODEL=1`).
fn have_model(test: &str) -> bool {
    potential_llm::testing::model_or_skip(test, potential_llm::smollm2_path()).is_some()
}

/// A file of the test's own, with `contents`.
fn file(name: &str, contents: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("potential-cli-{name}"));
    std::fs::write(&path, contents).expect("the test's file is written");
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The particles of a `--format json` run, checked for their form: every
/// line one object with the four keys, the weights summing to 1.
fn particles(output: &Output, n: usize) -> Vec<Value> {
    assert!(
        output.status.success(),
        "status {:?}, stderr: {}",
        output.status,
        text(&output.stderr)
    );
    let lines: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect();
    assert_eq!(lines.len(), n, "one line a particle");
    let total: f64 = lines.iter().map(|p| p["weight"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "the weights sum to {total}");
    for p in &lines {
        assert!(p["text"].is_string() && p["finished"].is_boolean(), "{p}");
        assert!(p["valid"].is_boolean() || p["valid"].is_null(), "{p}");
    }
    lines
}

/// The finished particles' texts (at least one must have finished).
fn finished(particles: &[Value]) -> Vec<&Value> {
    let done: Vec<&Value> = particles.iter().filter(|p| p["finished"] == true).collect();
    assert!(!done.is_empty(), "no particle finished: {particles:?}");
    done
}

#[test]
fn json_schema_answers_are_json_valid_under_the_schema() {
    if !have_model("json_schema_answers_are_json_valid_under_the_schema") {
        return;
    }
    let schema = file(
        "legs.json",
        r#"{"type": "object", "properties": {"legs": {"type": "integer", "minimum": 0, "maximum": 99}},
            "required": ["legs"], "additionalProperties": false}"#,
    );
    let output = potential(&[
        "generate",
        "--prompt",
        "How many legs does a spider have? Answer as JSON with the key \"legs\".",
        "--json-schema",
        schema.to_str().unwrap(),
        "--particles",
        "4",
        "--max-tokens",
        "16",
        "--format",
        "json",
    ]);
    for p in finished(&particles(&output, 4)) {
        // Checked here by hand, not by the command's validator.
        let answer: Value = serde_json::from_str(p["text"].as_str().unwrap()).expect("JSON");
        let object = answer.as_object().expect("an object");
        assert_eq!(object.len(), 1, "{answer}");
        let legs = object["legs"].as_u64().expect("an integer");
        assert!(legs <= 99, "{answer}");
        assert_eq!(p["valid"], true, "{p}");
    }
}

#[test]
fn lark_answers_are_sentences_of_the_grammar_under_awrs_in_workers() {
    if !have_model("lark_answers_are_sentences_of_the_grammar_under_awrs_in_workers") {
        return;
    }
    let grammar = file(
        "yes-no.lark",
        "start: answer \".\"\nanswer: \"yes\" | \"no\"\n",
    );
    let output = potential(&[
        "generate",
        "--prompt",
        "Is the sky blue? Answer yes or no.",
        "--lark",
        grammar.to_str().unwrap(),
        "--sampler",
        "awrs",
        "--workers",
        "2",
        "--particles",
        "4",
        "--max-tokens",
        "8",
        "--format",
        "json",
    ]);
    for p in finished(&particles(&output, 4)) {
        assert!(
            ["yes.", "no."].contains(&p["text"].as_str().unwrap()),
            "{p}"
        );
        // Nothing but the grammar reads Lark: no independent verdict.
        assert_eq!(p["valid"], Value::Null, "{p}");
    }
}

#[test]
fn regex_answers_match_the_pattern_under_the_direct_sampler() {
    if !have_model("regex_answers_match_the_pattern_under_the_direct_sampler") {
        return;
    }
    // A sentence: the direct sampler draws from the model alone and the
    // pattern only kills particles, so it must be one the model writes.
    let output = potential(&[
        "generate",
        "--prompt",
        "How many legs does a spider have? Answer in one short sentence.",
        "--regex",
        "[A-Z][a-z ]+[0-9a-z ]+\\.",
        "--sampler",
        "direct",
        "--no-autobatch",
        "--particles",
        "8",
        "--max-tokens",
        "16",
        "--seed",
        "2",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    // The text format: "  p=0.333   x2 valid   A spider has 8 legs." a distinct text.
    let answers: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  p="))
        .map(|l| {
            let (verdict, answer) = l.split_at(l.find(" valid   ").expect("a valid answer") + 1);
            assert!(verdict.contains('x'), "{l}");
            answer.strip_prefix("valid   ").unwrap()
        })
        .collect();
    assert!(!answers.is_empty(), "{stdout}");
    for answer in answers {
        // Checked by hand: [A-Z], then [a-z ] and [0-9a-z ], then a full stop.
        let bytes = answer.as_bytes();
        assert!(bytes[0].is_ascii_uppercase(), "{answer:?}");
        assert!(answer.ends_with('.') && bytes.len() >= 4, "{answer:?}");
        let middle = &bytes[1..bytes.len() - 1];
        assert!(
            middle
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b' '),
            "{answer:?}"
        );
    }
    assert!(
        stdout.contains("checked by a DFA") && stdout.ends_with(": yes\n"),
        "{stdout}"
    );
}

#[test]
fn plain_and_autobatched_with_workers_give_the_same_particles() {
    if !have_model("plain_and_autobatched_with_workers_give_the_same_particles") {
        return;
    }
    let run = |how: &[&str]| {
        let mut args = vec![
            "generate",
            "--prompt",
            "How many legs does a spider have? Answer with a number.",
            "--regex",
            "[1-9][0-9]?",
            "--particles",
            "4",
            "--max-tokens",
            "4",
            "--format",
            "json",
        ];
        args.extend_from_slice(how);
        particles(&potential(&args), 4)
    };
    let (plain, both) = (run(&["--no-autobatch"]), run(&["--workers", "2"]));
    finished(&plain);
    // Each particle draws from its own seeded stream: the same texts, and
    // the same weights up to the last bits of a batched forward pass.
    for (a, b) in plain.iter().zip(&both) {
        assert_eq!(
            (&a["text"], &a["finished"], &a["valid"]),
            (&b["text"], &b["finished"], &b["valid"])
        );
        let (x, y) = (a["weight"].as_f64().unwrap(), b["weight"].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-9, "{x} against {y}");
    }
}

/// Runs the command expecting a usage error: status 2, nothing on
/// standard output, no panic, and a message that contains each of `says`.
fn usage_error(args: &[&str], says: &[&str]) {
    let output = potential(args);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{args:?}: {}",
        text(&output.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for s in says {
        assert!(
            stderr.contains(s),
            "{args:?}: {stderr:?} does not say {s:?}"
        );
    }
}

#[test]
fn a_schema_that_does_not_compile_is_named_with_its_position() {
    let not_json = file(
        "not-json.json",
        "{\"type\": \"object\",\n \"properties\": }",
    );
    let path = not_json.to_str().unwrap();
    usage_error(
        &["generate", "--prompt", "x", "--json-schema", path],
        &["--json-schema", path, "not JSON", "line 2 column"],
    );
    let bad_type = file("bad-type.json", r#"{"properties": {"year": {"type": 12}}}"#);
    usage_error(
        &[
            "generate",
            "--prompt",
            "x",
            "--json-schema",
            bad_type.to_str().unwrap(),
        ],
        &["not a valid JSON schema", "/properties/year/type"],
    );
    usage_error(
        &[
            "generate",
            "--prompt",
            "x",
            "--json-schema",
            "no-such-schema.json",
        ],
        &["no-such-schema.json", "cannot read it"],
    );
}

#[test]
fn a_grammar_or_pattern_that_does_not_compile_is_named_with_its_position() {
    let lark = file("bad.lark", "start: answer\nanswer: \"yes\" | nope\n");
    usage_error(
        &[
            "generate",
            "--prompt",
            "x",
            "--lark",
            lark.to_str().unwrap(),
        ],
        &["--lark", "unknown name", "nope", "2("],
    );
    usage_error(
        &["generate", "--prompt", "x", "--regex", "a(b"],
        &["--regex", "unclosed group"],
    );
}

#[test]
fn a_model_that_is_not_a_gguf_file_is_a_usage_error() {
    let not_gguf = file("not-a-model.gguf", "hello, I am text");
    let path = not_gguf.to_str().unwrap();
    usage_error(
        &["generate", "--prompt", "x", "--model", path],
        &["--model", path, "not a GGUF model file"],
    );
    // A name this command does not know.
    usage_error(
        &["generate", "--prompt", "x", "--model", "gemma4"],
        &[
            "--model gemma4",
            "expected `smollm2`, `gemma3` or the path of a GGUF file",
        ],
    );
}

#[test]
fn a_prompt_that_is_empty_or_leaves_no_room_is_a_usage_error() {
    usage_error(&["generate", "--prompt", ""], &["--prompt is empty"]);
    if !have_model("a_prompt_that_is_empty_or_leaves_no_room_is_a_usage_error") {
        return;
    }
    // 9,000 words: more tokens than SmolLM2's context of 8,192.
    let long = "word ".repeat(9000);
    usage_error(
        &["generate", "--prompt", &long],
        &["--prompt", "fill the context length of 8192"],
    );
    usage_error(
        &["generate", "--prompt", "hi", "--max-tokens", "8190"],
        &["--prompt takes", "room for", "--max-tokens asks for 8190"],
    );
}

#[test]
fn conflicting_or_meaningless_flags_are_usage_errors() {
    usage_error(
        &[
            "generate", "--prompt", "x", "--regex", "a", "--lark", "g.lark",
        ],
        &["cannot be used with"],
    );
    usage_error(
        &["generate", "--prompt", "x", "--raw", "--system", "s"],
        &["cannot be used with"],
    );
    usage_error(
        &["generate", "--prompt", "x", "--sampler", "awrs"],
        &["--sampler awrs needs a constraint"],
    );
    usage_error(
        &["generate", "--prompt", "x", "--workers", "2"],
        &["--workers", "there is no constraint"],
    );
    usage_error(
        &["generate", "--prompt", "x", "--particles", "0"],
        &["at least 1"],
    );
    usage_error(
        &["generate", "--prompt", "x", "--ess-threshold", "2"],
        &["between 0 and 1"],
    );
    usage_error(&["generate"], &["--prompt"]);
}
