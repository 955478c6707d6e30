//! Reading a template's `# METADATA` block: the JSON object, and its parameter declarations turned into checked
//! [`Parameter`]s.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::names::is_name;
use super::schema::Schema;
use super::template::Parameter;

// The METADATA JSON, read strictly where a typo would silently change a template's meaning (the schema).
#[derive(Deserialize)]
pub(super) struct RawMetadata {
    pub(super) title: String,
    pub(super) description: String,
    #[serde(default)]
    pub(super) custom: RawCustom,
}

#[derive(Deserialize, Default)]
pub(super) struct RawCustom {
    #[serde(default)]
    pub(super) parameters: Option<RawParameters>,
    #[serde(default)]
    pub(super) example: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawParameters {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    properties: Properties,
    #[serde(default)]
    required: Vec<String>,
    additional_properties: Option<bool>,
}

/// The parameters in the order the template lists them (the order `show` prints them in); a JSON map would
/// sort them.
#[derive(Default)]
struct Properties(Vec<(String, RawSchema)>);

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Properties;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of parameter schemas")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
                let mut properties: Vec<(String, RawSchema)> = Vec::new();
                while let Some((name, schema)) = map.next_entry::<String, RawSchema>()? {
                    if properties.iter().any(|(seen, _)| *seen == name) {
                        return Err(serde::de::Error::custom(format!("parameter {name:?} is listed twice")));
                    }
                    properties.push((name, schema));
                }
                Ok(Properties(properties))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSchema {
    #[serde(rename = "type")]
    kind: String,
    description: Option<String>,
    default: Option<Value>,
    #[serde(rename = "enum")]
    choices: Option<Vec<String>>,
    minimum: Option<i64>,
    maximum: Option<i64>,
    items: Option<Box<RawSchema>>,
    min_items: Option<usize>,
    additional_properties: Option<Box<RawSchema>>,
}

impl RawSchema {
    /// `top`: whether this is a parameter (which may have a default and needs a description).
    fn into_schema(self, at: &str, top: bool) -> Result<Schema, String> {
        const TYPES: [&str; 5] = ["string", "integer", "boolean", "array", "object"];
        if !TYPES.contains(&self.kind.as_str()) {
            return Err(format!("{at}: unsupported type {:?} ({})", self.kind, TYPES.join(", ")));
        }
        let misplaced = |field: &str| Err(format!("{at}: \"{field}\" does not go with type {:?}", self.kind));
        if !top && self.default.is_some() {
            return Err(format!("{at}: only a parameter itself has a default"));
        }
        if top && self.description.as_deref().is_none_or(|text| text.trim().is_empty()) {
            return Err(format!("{at}: a parameter needs a description"));
        }
        if self.kind != "string" && self.choices.is_some() {
            return misplaced("enum");
        }
        if self.kind != "integer" && (self.minimum.is_some() || self.maximum.is_some()) {
            return misplaced("minimum/maximum");
        }
        if self.kind != "array" && (self.items.is_some() || self.min_items.is_some()) {
            return misplaced("items/minItems");
        }
        if self.kind != "object" && self.additional_properties.is_some() {
            return misplaced("additionalProperties");
        }
        Ok(match self.kind.as_str() {
            "string" => Schema::String { choices: self.choices },
            "integer" => Schema::Integer {
                minimum: self.minimum,
                maximum: self.maximum,
            },
            "boolean" => Schema::Boolean,
            "array" => {
                let items = self
                    .items
                    .ok_or_else(|| format!("{at}: an array needs \"items\""))?
                    .into_schema(&format!("{at}.items"), false)?;
                if matches!(items, Schema::Array { .. } | Schema::Object { .. }) {
                    return Err(format!("{at}: array items must be strings, integers or booleans"));
                }
                Schema::Array {
                    items: Box::new(items),
                    min_items: self.min_items.unwrap_or(0),
                }
            }
            "object" => {
                let values = self
                    .additional_properties
                    .ok_or_else(|| {
                        format!("{at}: an object needs \"additionalProperties\" (the schema of its values)")
                    })?
                    .into_schema(&format!("{at}.additionalProperties"), false)?;
                if matches!(values, Schema::Array { .. } | Schema::Object { .. }) {
                    return Err(format!("{at}: object values must be strings, integers or booleans"));
                }
                Schema::Object {
                    values: Box::new(values),
                }
            }
            other => return Err(format!("{at}: unsupported type {other:?}")),
        })
    }
}

/// The JSON text of the `# METADATA` comment block among `lines`.
pub(super) fn metadata_json(lines: &[&str]) -> Result<String, String> {
    let start = lines
        .iter()
        .position(|line| line.trim_end() == "# METADATA")
        .ok_or("it needs a `# METADATA` comment block (a JSON object) right before its package line")?;
    let block: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|line| line.starts_with('#'))
        .map(|line| {
            let text = &line[1..];
            text.strip_prefix(' ').unwrap_or(text)
        })
        .collect();
    Ok(block.join("\n"))
}

/// The declared parameters, each schema checked (and each default valid for it).
pub(super) fn parameters(raw: RawParameters) -> Result<Vec<Parameter>, String> {
    if raw.kind.as_deref().is_some_and(|kind| kind != "object") {
        return Err("custom.parameters must have type \"object\"".into());
    }
    if raw.additional_properties == Some(true) {
        return Err("custom.parameters: additionalProperties must be false (unknown parameters are refused)".into());
    }
    if let Some(unknown) = raw
        .required
        .iter()
        .find(|name| !raw.properties.0.iter().any(|(property, _)| property == *name))
    {
        return Err(format!(
            "custom.parameters.required names {unknown:?}, which is not a property"
        ));
    }
    let mut parameters = Vec::new();
    for (name, schema) in raw.properties.0 {
        if !is_name(&name, "_") {
            return Err(format!(
                "parameter {name:?}: names are lower-case letters, digits and _, starting with a letter"
            ));
        }
        let at = format!("custom.parameters.properties.{name}");
        let description = schema.description.clone().unwrap_or_default();
        let default = schema.default.clone();
        let required = raw.required.contains(&name);
        let schema = schema.into_schema(&at, true)?;
        if let Some(default) = &default {
            if required {
                return Err(format!("{at}: a required parameter has no default"));
            }
            schema.check(default, &format!("{at}.default"))?;
        }
        parameters.push(Parameter {
            name,
            description,
            required,
            default,
            schema,
        });
    }
    Ok(parameters)
}
