//! The serde form of an [`Llm`], which is its spawn recipe.

use std::path::{Path, PathBuf};

use potential_core::Registered;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Llm, LlmOptions};

/// The serde form, which is the spawn recipe: the model's path and the
/// options (the prompt among them). A worker opens the file itself; the
/// weights never cross a socket.
#[derive(Serialize)]
struct RecipeRef<'a> {
    path: &'a Path,
    options: &'a LlmOptions,
}

#[derive(Deserialize)]
struct RecipeOwned {
    path: PathBuf,
    options: LlmOptions,
}

impl Serialize for Llm {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        RecipeRef {
            path: &self.model.path,
            options: &self.run.options,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Llm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let recipe = RecipeOwned::deserialize(deserializer)?;
        Llm::open_plain(&recipe.path, recipe.options).map_err(serde::de::Error::custom)
    }
}

impl Registered for Llm {}
potential_core::register!(Llm);
