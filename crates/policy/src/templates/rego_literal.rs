//! Parameter values written as Rego literals, every string escaped to printable ASCII so that no value can end
//! its string (or line) and add Rego of its own.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Writes `params` as a Rego object, one parameter per line.
pub(super) fn write_rego_object(out: &mut String, params: &Map<String, Value>) {
    if params.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push_str("{\n");
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    for (index, key) in keys.iter().enumerate() {
        out.push('\t');
        write_rego_string(out, key);
        out.push_str(": ");
        write_rego_value(out, &params[key.as_str()]);
        out.push_str(if index + 1 < keys.len() { ",\n" } else { "\n" });
    }
    out.push('}');
}

/// A JSON value as a Rego term (Rego's scalars and collections are JSON's), keys sorted.
fn write_rego_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_rego_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_rego_value(out, item);
            }
            out.push(']');
        }
        Value::Object(entries) => {
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_rego_string(out, key);
                out.push_str(": ");
                write_rego_value(out, &entries[key.as_str()]);
            }
            out.push('}');
        }
    }
}

/// A string literal holding only printable ASCII: `"` and `\` escaped, everything else as `\uXXXX` (UTF-16, as
/// in JSON). Nothing in it can end the string or the line, whatever the value.
fn write_rego_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_to_printable_ascii() {
        let mut out = String::new();
        write_rego_string(&mut out, "a\"b\\c\n\u{7f}é😀`");
        assert_eq!(out, r#""a\"b\\c\u000a\u007f\u00e9\ud83d\ude00`""#);
        // It is a JSON string too, meaning the same.
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), "a\"b\\c\n\u{7f}é😀`");
    }
}
