//! Chat templates: how a system and a user message become a prompt that
//! opens the model's turn.

use std::path::Path;

use crate::error::LoadError;
use crate::model::{Family, read_content};

/// The turn format of a model, read from its file: the file's own
/// `tokenizer.chat_template` when it has one (recognized by its markers),
/// else the family's (Gemma 3's files from `gguf-my-repo` carry none).
///
/// ```
/// use potential_llm::ChatTemplate;
/// assert_eq!(
///     ChatTemplate::Gemma.prompt("Be brief.", "Hi"),
///     "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
/// );
/// assert_eq!(ChatTemplate::ChatMl.prompt("", "Hi"), potential_llm::chat_prompt("", "Hi"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatTemplate {
    /// `<|im_start|>role\n...<|im_end|>\n` (SmolLM2's).
    ChatMl,
    /// `<start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n`; a
    /// system message opens the user's turn (Gemma has no system role).
    /// The beginning-of-sequence token is added by the `Llm`, and
    /// `<end_of_turn>` counts as EOS.
    Gemma,
}

impl ChatTemplate {
    /// The template of a GGUF file (its header only is read).
    pub fn of_file(path: impl AsRef<Path>) -> Result<ChatTemplate, LoadError> {
        let (content, _) = read_content(path.as_ref())?;
        let own = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok());
        if let Some(t) = own {
            if t.contains("<start_of_turn>") {
                return Ok(ChatTemplate::Gemma);
            }
            if t.contains("<|im_start|>") {
                return Ok(ChatTemplate::ChatMl);
            }
        }
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| {
                LoadError::Invalid("metadata key `general.architecture` is missing".into())
            })?;
        Ok(match Family::from_architecture(arch)? {
            Family::Gemma3 => ChatTemplate::Gemma,
            Family::Llama => ChatTemplate::ChatMl,
        })
    }

    /// The prompt of an optional system message and the user's message,
    /// ending where the model's answer begins.
    pub fn prompt(self, system: &str, user: &str) -> String {
        match self {
            ChatTemplate::ChatMl => crate::chat_prompt(system, user),
            ChatTemplate::Gemma => {
                let system = if system.is_empty() {
                    String::new()
                } else {
                    format!("{system}\n\n")
                };
                format!("<start_of_turn>user\n{system}{user}<end_of_turn>\n<start_of_turn>model\n")
            }
        }
    }
}
