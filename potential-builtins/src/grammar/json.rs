//! The settings a JSON schema is compiled with (the escapes, always; the
//! white space, as the user chooses), given to llguidance in the schema's
//! own `x-guidance` object: the only way its JSON compiler takes options,
//! and one that the schema text, hence the recipe, carries.

use serde_json::{Map, Value};

/// The schema key that carries llguidance's compile options.
const OPTIONS_KEY: &str = "x-guidance";

/// The escapes allowed after `\` in strings: the short ones, never `\u`.
///
/// llguidance keeps an object's property names apart by their spelling:
/// the key of an additional property is any JSON string that is not
/// spelled like a declared name, and with `\u` allowed such a key may
/// spell a declared name another way (`"\u0061"` for `"a"`, `"\u00e9"` for
/// `"é"`, `"\u000A"` for `"\n"`) and so escape that property's schema.
/// Without `\u` every string has one spelling, and a key is held to the
/// schema of the property it names. llguidance has one setting for keys
/// and values alike, so values lose `\u` too: where it allowed them (the
/// control characters) the short escapes remain for `\b \f \n \r \t`.
const ESCAPES: &str = "nrbtf\"\\";

/// llguidance's compile option that lists the escapes allowed.
const ALLOWED_ESCAPES: &str = "json_allowed_escapes";
/// llguidance's compile option that allows `\u` for every character.
const GENERAL_UNICODE_ESCAPES: &str = "json_allow_general_unicode_escapes";

/// How white space may lay out a JSON document of a [`Grammar`](super::Grammar)
/// built from a schema (see [`GrammarSource::json_schema_with`](super::GrammarSource::json_schema_with)).
///
/// Either way there is none before or after the document's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonWhitespace {
    /// Any run of spaces, tabs, line feeds and carriage returns between
    /// two tokens of the document (llguidance's default).
    #[default]
    Free,
    /// None at all: `{"a":[1,2]}`. A language model then spends no
    /// tokens on layout.
    Compact,
}

/// `schema` written with `whitespace` in its `x-guidance` object.
pub(super) fn with_whitespace(schema: &Value, whitespace: JsonWhitespace) -> String {
    let mut schema = carrier(schema.clone());
    // A schema that cannot carry the setting (not an object, or an
    // `x-guidance` that is not one) is refused when it is compiled, by
    // `prepare` or llguidance, with a message that says why.
    if let Ok(Some(options)) = options_of(&mut schema) {
        options.insert(
            "whitespace_flexible".to_string(),
            Value::Bool(whitespace == JsonWhitespace::Free),
        );
    }
    schema.to_string()
}

/// A schema that can carry options: a boolean schema is wrapped as
/// `{"allOf": [b]}`, the same language; others are kept.
fn carrier(schema: Value) -> Value {
    match schema {
        Value::Bool(_) => Value::Object(Map::from_iter([(
            "allOf".to_string(),
            Value::Array(vec![schema]),
        )])),
        other => other,
    }
}

/// The `x-guidance` object of `schema`, made if missing; `None` for a
/// schema that is not an object (llguidance's to refuse, with its own
/// message).
fn options_of(schema: &mut Value) -> Result<Option<&mut Map<String, Value>>, String> {
    let Some(root) = schema.as_object_mut() else {
        return Ok(None);
    };
    root.entry(OPTIONS_KEY)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .map(Some)
        .ok_or_else(|| format!("\"{OPTIONS_KEY}\" must be an object of llguidance options"))
}

/// `schema` with our compile options in its `x-guidance` object, where
/// the schema's own options are kept.
///
/// A schema may set the escapes itself only as strictly as [`ESCAPES`]
/// (no `\u`: fewer escapes still give each string one spelling); a
/// setting that allows `\u` would reopen the hole, and is an error.
pub(super) fn prepare(schema: Value) -> Result<Value, String> {
    let mut schema = carrier(schema);
    let Some(options) = options_of(&mut schema)? else {
        return Ok(schema);
    };
    let strict = |key: &str, value: &Value| match key {
        ALLOWED_ESCAPES => value.as_str().is_some_and(|e| !e.contains('u')),
        _ => value == &Value::Bool(false),
    };
    for key in [ALLOWED_ESCAPES, GENERAL_UNICODE_ESCAPES] {
        if let Some(value) = options.get(key)
            && !strict(key, value)
        {
            return Err(format!(
                "\"{OPTIONS_KEY}\".{key} = {value} is not accepted: the escapes may not \
                 include \\u, with which an object key can spell a declared property name \
                 another way and escape its schema"
            ));
        }
    }
    options
        .entry(ALLOWED_ESCAPES)
        .or_insert_with(|| ESCAPES.into());
    Ok(schema)
}
