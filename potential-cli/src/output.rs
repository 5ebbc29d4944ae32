//! Writing a run: the distinct texts for people, one JSON object a
//! particle for scripts.

use std::io::{self, Write};

use potential_smc::Run;
use serde_json::json;

use crate::constraint::Constraint;

/// Writes the distinct texts of `run`, most probable first, one a line
/// (control characters escaped, so that a text with a newline stays one
/// line), each with its posterior probability, its number of particles
/// and its independent verdict (`valid`, `INVALID` and why, or `-` when
/// nothing checks it), then a summary. Returns whether every finished
/// text passed its check (true when none finished: nothing failed).
pub fn write_text(
    out: &mut impl Write,
    run: &Run<Vec<u8>>,
    constraint: &Constraint,
    max_tokens: usize,
) -> io::Result<bool> {
    let n = run.samples.len();
    let finished = run.samples.iter().filter(|s| s.finished).count();
    if finished == 0 {
        writeln!(
            out,
            "none of the {n} particles finished within {max_tokens} tokens (--max-tokens): no answer to show or check"
        )?;
        return Ok(true);
    }
    writeln!(
        out,
        "{finished} of {n} particles finished ({} resamplings; log marginal likelihood estimate {:.3}); the texts, most probable first:",
        run.resamples, run.log_ml
    )?;
    let mut all_valid = true;
    for text in run.text_posterior() {
        let verdict = constraint.check(&text.bytes);
        let label = match &verdict {
            Some(Ok(())) => "valid",
            Some(Err(_)) => "INVALID",
            None => "-",
        };
        writeln!(
            out,
            "  p={:.3} {:>4} {label:<7} {}",
            text.probability,
            format!("x{}", text.particles),
            one_line(&text.text)
        )?;
        if let Some(Err(why)) = verdict {
            writeln!(out, "    ^ {why}")?;
            all_valid = false;
        }
    }
    match constraint.checker() {
        Some(checker) => writeln!(
            out,
            "every answer satisfies {} (checked by {checker}): {}",
            constraint.description,
            if all_valid { "yes" } else { "NO" }
        )?,
        None if constraint.is_some() => writeln!(
            out,
            "the answers follow {} (no independent check: only the grammar itself reads Lark)",
            constraint.description
        )?,
        None => {}
    }
    Ok(all_valid)
}

/// Writes one JSON object a particle, a line, in the particles' order:
/// `text`, `weight` (its normalized posterior weight), `finished`, and
/// `valid` (the independent check of a finished text: `true`, `false`, or
/// `null` when nothing checks it or it did not finish). Returns whether
/// every finished text passed its check.
pub fn write_json(
    out: &mut impl Write,
    run: &Run<Vec<u8>>,
    constraint: &Constraint,
) -> io::Result<bool> {
    let mut all_valid = true;
    for (sample, weight) in run.samples.iter().zip(run.posterior()) {
        let valid = if sample.finished {
            constraint.check(&sample.bytes()).map(|v| v.is_ok())
        } else {
            None
        };
        all_valid &= valid != Some(false);
        let line = json!({
            "text": sample.text(),
            "weight": weight,
            "finished": sample.finished,
            "valid": valid,
        });
        writeln!(out, "{line}")?;
    }
    Ok(all_valid)
}

/// The text on one line: control characters (newlines, tabs) escaped as
/// Rust writes them.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use potential_smc::{Calls, Sample};

    use super::*;
    use crate::cli::{Cli, Command};

    /// The constraint of `potential generate --prompt x --regex RE`.
    fn regex(pattern: &str) -> Constraint {
        let cli =
            Cli::try_parse_from(["potential", "generate", "--prompt", "x", "--regex", pattern])
                .unwrap();
        let Command::Generate(args) = cli.command;
        Constraint::from_args(&args).unwrap()
    }

    /// A run of finished particles with these texts, of equal weight.
    fn run(texts: &[&str]) -> Run<Vec<u8>> {
        let samples = texts
            .iter()
            .map(|t| Sample {
                tokens: vec![t.as_bytes().to_vec()],
                log_weight: 0.0,
                finished: true,
            })
            .collect();
        Run {
            samples,
            log_ml: 0.0,
            ess: vec![],
            resamples: 0,
            calls: Calls::default(),
            draws: 0,
        }
    }

    #[test]
    fn an_answer_that_fails_its_check_is_reported_and_fails_the_run() {
        let digits = regex("[0-9]+");
        let mut out = Vec::new();
        assert!(!write_text(&mut out, &run(&["42", "abc"]), &digits, 8).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("INVALID abc") && text.contains("does not match"),
            "{text}"
        );
        assert!(text.contains(": NO"), "{text}");
        let mut out = Vec::new();
        assert!(!write_json(&mut out, &run(&["42", "abc"]), &digits).unwrap());
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            (lines[0]["valid"].clone(), lines[1]["valid"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(lines[0]["weight"], json!(0.5));
    }

    #[test]
    fn a_run_where_no_particle_finished_says_so_and_fails_nothing() {
        let mut unfinished = run(&["4"]);
        unfinished.samples[0].finished = false;
        unfinished.samples[0].log_weight = f64::NEG_INFINITY;
        let mut out = Vec::new();
        assert!(write_text(&mut out, &unfinished, &regex("[0-9]+"), 8).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("none of the 1 particles finished within 8 tokens"),
            "{text}"
        );
    }

    #[test]
    fn a_text_with_newlines_stays_one_line() {
        assert_eq!(one_line("{\n\t\"a\": 1}"), "{\\n\\t\"a\": 1}");
    }
}
