//! The settings every JSON schema is compiled with, given to llguidance in
//! the schema's own `x-guidance` object (the only way its JSON compiler
//! takes options).

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

/// The compile options that decide escapes: ours, not a schema's.
const ESCAPE_OPTIONS: [&str; 2] = ["json_allowed_escapes", "json_allow_general_unicode_escapes"];

/// `schema` with our compile options in its `x-guidance` object (where the
/// schema's own options, other than escapes, are kept).
///
/// A boolean schema is wrapped (`{"allOf": [b]}`, the same language) to
/// carry them. A schema whose `x-guidance` sets the escapes is an error:
/// those settings would reopen the hole that [`ESCAPES`] closes.
pub(super) fn prepare(schema: Value) -> Result<Value, String> {
    let mut schema = match schema {
        Value::Bool(_) => Value::Object(Map::from_iter([(
            "allOf".to_string(),
            Value::Array(vec![schema]),
        )])),
        other => other,
    };
    // A schema that is neither an object nor a boolean is llguidance's to
    // refuse, with its own message.
    let Some(root) = schema.as_object_mut() else {
        return Ok(schema);
    };
    let options = root
        .entry(OPTIONS_KEY)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| format!("\"{OPTIONS_KEY}\" must be an object of llguidance options"))?;
    if let Some(key) = ESCAPE_OPTIONS.iter().find(|k| options.contains_key(**k)) {
        return Err(format!(
            "\"{OPTIONS_KEY}\".{key} is not accepted: with \\u escapes an object key \
             can spell a declared property name another way and escape its schema"
        ));
    }
    options.insert(ESCAPE_OPTIONS[0].to_string(), ESCAPES.into());
    Ok(schema)
}
