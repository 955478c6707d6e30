//! The parameter schema: the JSON-Schema subset a template declares for its parameters, the check of a value
//! against it, its description for people, and the `--set` text form of values.

use serde_json::Value;

/// What values a parameter (or an element of one) takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// A string, optionally one of fixed choices.
    String {
        /// `enum`: the only values allowed, if any.
        choices: Option<Vec<String>>,
    },
    /// A whole number, optionally bounded.
    Integer {
        /// The least value allowed, if any.
        minimum: Option<i64>,
        /// The greatest value allowed, if any.
        maximum: Option<i64>,
    },
    /// `true` or `false`.
    Boolean,
    /// A list of strings, whole numbers or booleans.
    Array {
        /// The schema of every item.
        items: Box<Schema>,
        /// The fewest items allowed.
        min_items: usize,
    },
    /// An object with free keys (e.g. namespace names) and values of one schema.
    Object {
        /// The schema of every value.
        values: Box<Schema>,
    },
}

impl Schema {
    /// Checks `value`; the message names the place (`at`) that is wrong.
    pub fn check(&self, value: &Value, at: &str) -> Result<(), String> {
        match (self, value) {
            (Schema::String { choices }, Value::String(text)) => match choices {
                Some(choices) if !choices.contains(text) => {
                    Err(format!("{at}: {text:?} is not one of {}", choices.join(", ")))
                }
                _ => Ok(()),
            },
            (Schema::Integer { minimum, maximum }, Value::Number(number)) => {
                let Some(n) = number.as_i64() else {
                    return Err(format!("{at}: expected a whole number, got {number}"));
                };
                if let Some(min) = minimum.filter(|min| n < *min) {
                    return Err(format!("{at}: {n} is less than the minimum {min}"));
                }
                if let Some(max) = maximum.filter(|max| n > *max) {
                    return Err(format!("{at}: {n} is more than the maximum {max}"));
                }
                Ok(())
            }
            (Schema::Boolean, Value::Bool(_)) => Ok(()),
            (Schema::Array { items, min_items }, Value::Array(values)) => {
                if values.len() < *min_items {
                    return Err(format!("{at}: needs at least {min_items} item(s)"));
                }
                for (index, item) in values.iter().enumerate() {
                    items.check(item, &format!("{at}[{index}]"))?;
                }
                Ok(())
            }
            (Schema::Object { values }, Value::Object(entries)) => {
                for (key, item) in entries {
                    values.check(item, &format!("{at}[{key:?}]"))?;
                }
                Ok(())
            }
            (_, other) => Err(format!("{at}: expected {}, got {}", self.describe(), json_kind(other))),
        }
    }

    /// E.g. `array of strings`, `integer (0 to 23)`, `string (deny or require_approval)`.
    pub fn describe(&self) -> String {
        match self {
            Schema::String { choices: None } => "a string".into(),
            Schema::String { choices: Some(choices) } => format!("a string ({})", choices.join(" | ")),
            Schema::Integer { minimum, maximum } => match (minimum, maximum) {
                (Some(min), Some(max)) => format!("a whole number ({min} to {max})"),
                (Some(min), None) => format!("a whole number (at least {min})"),
                (None, Some(max)) => format!("a whole number (at most {max})"),
                (None, None) => "a whole number".into(),
            },
            Schema::Boolean => "true or false".into(),
            Schema::Array { items, min_items } => {
                let at_least = if *min_items > 0 {
                    format!(", at least {min_items}")
                } else {
                    String::new()
                };
                format!("a list of {}{at_least}", plural(items))
            }
            Schema::Object { values } => format!("an object of {}", plural(values)),
        }
    }

    /// Reads a `--set key=value` text: strings as they are, numbers, `true`/`false`, lists as
    /// `a,b,c` or JSON (`["a,b"]`), objects as JSON.
    pub fn value_from_text(&self, text: &str, at: &str) -> Result<Value, String> {
        let json = |text: &str| {
            serde_json::from_str::<Value>(text).map_err(|error| format!("{at}: {text:?} is not valid JSON: {error}"))
        };
        match self {
            Schema::String { .. } => Ok(Value::String(text.to_owned())),
            Schema::Integer { .. } => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("{at}: expected a whole number, got {text:?}")),
            Schema::Boolean => match text.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(format!("{at}: expected true or false, got {text:?}")),
            },
            Schema::Array { items, .. } => {
                if text.trim_start().starts_with('[') {
                    return json(text);
                }
                if text.trim().is_empty() {
                    return Ok(Value::Array(Vec::new()));
                }
                text.split(',')
                    .map(|item| items.value_from_text(item.trim(), at))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            Schema::Object { .. } => json(text),
        }
    }
}

fn plural(schema: &Schema) -> &'static str {
    match schema {
        Schema::String { .. } => "strings",
        Schema::Integer { .. } => "whole numbers",
        Schema::Boolean => "booleans",
        Schema::Array { .. } => "lists",
        Schema::Object { .. } => "objects",
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The text `--set` takes for `value` (the inverse of [`Schema::value_from_text`]), for examples: lists as
/// `a,b` when that reads back the same, else JSON.
pub fn value_to_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items)
            if items.iter().all(|item| {
                item.as_str()
                    .is_some_and(|s| !s.is_empty() && s.trim() == s && !s.contains(',') && !s.starts_with('['))
                    || item.is_i64()
            }) =>
        {
            items.iter().map(value_to_text).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn set_texts_read_by_type() {
        let strings = Schema::Array {
            items: Box::new(Schema::String { choices: None }),
            min_items: 0,
        };
        assert_eq!(strings.value_from_text("a, b", "x").unwrap(), json!(["a", "b"]));
        assert_eq!(strings.value_from_text("[\"a,b\"]", "x").unwrap(), json!(["a,b"]));
        assert_eq!(strings.value_from_text("", "x").unwrap(), json!([]));
        let integers = Schema::Array {
            items: Box::new(Schema::Integer {
                minimum: None,
                maximum: None,
            }),
            min_items: 0,
        };
        assert_eq!(integers.value_from_text("1,2", "x").unwrap(), json!([1, 2]));
        assert!(integers.value_from_text("1,two", "x").is_err());
        assert!(Schema::Boolean.value_from_text("yes", "x").is_err());
        for value in [
            json!(["a", "b"]),
            json!(["a,b"]),
            json!([" a"]),
            json!(["[a"]),
            json!([]),
            json!([1, 2]),
            json!({"a": 1}),
            json!("x y"),
        ] {
            let schema = match &value {
                Value::Array(items) if items.first().is_some_and(Value::is_i64) => &integers,
                Value::Array(_) => &strings,
                Value::Object(_) => &Schema::Object {
                    values: Box::new(Schema::Integer {
                        minimum: None,
                        maximum: None,
                    }),
                },
                _ => &Schema::String { choices: None },
            };
            assert_eq!(schema.value_from_text(&value_to_text(&value), "x").unwrap(), value);
        }
    }
}
