//! Policy templates: parameterized Rego files that add rules to the shipped policy.
//!
//! A template is one `.rego` file:
//! - a `# METADATA` comment block (OPA's annotation syntax) holding a JSON object with `title`,
//!   `description` and `custom.parameters`, a JSON-Schema-like description of its parameters (and an optional
//!   `custom.example`, example parameters);
//! - `package docketops.templates.<name>`, which rendering replaces by `docketops.templates.<instance>`;
//! - rules that read their parameters from `params` (which the template must not define: rendering adds it)
//!   and contribute to the partial sets `deny_reasons`, `approval_reasons` and `approval_counts`. The shipped
//!   default policy collects these sets from every `data.docketops.templates.<instance>` package.
//!
//! Each rendering is its own package, so two templates, or one template twice with different parameters
//! (and instance names), load together without their helper rules meeting.
//!
//! The METADATA block is JSON rather than YAML: JSON is valid YAML, so OPA reads the same block as
//! annotations, and DocketOps needs no YAML parser (serde_yaml is deprecated and none is in the workspace).
//!
//! Rendering validates the parameters against the schema, writes them as one Rego constant `params` in
//! which every string is escaped to printable ASCII (a value can never end its string and add Rego), loads
//! the result next to the default policy, and reads `params` back through the engine to prove that the
//! policy sees exactly the validated values.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::engine::{DEFAULT_POLICY, EmbeddedEngine};

/// The package under which rendered templates live; the default policy collects from its children.
pub const TEMPLATES_PACKAGE: &str = "docketops.templates";

/// The templates shipped with DocketOps (`templates/<name>.rego`).
const SHIPPED: &[(&str, &str)] = &[
    ("change-window", include_str!("../templates/change-window.rego")),
    (
        "image-registry-allowlist",
        include_str!("../templates/image-registry-allowlist.rego"),
    ),
    ("max-replicas", include_str!("../templates/max-replicas.rego")),
    (
        "no-deletes-in-namespaces",
        include_str!("../templates/no-deletes-in-namespaces.rego"),
    ),
    (
        "no-privileged-pods",
        include_str!("../templates/no-privileged-pods.rego"),
    ),
    ("read-only-agents", include_str!("../templates/read-only-agents.rego")),
    (
        "two-approvals-for-high",
        include_str!("../templates/two-approvals-for-high.rego"),
    ),
];

/// Words Rego reserves: not usable as an instance name (a package path segment).
const REGO_KEYWORDS: &[&str] = &[
    "as", "contains", "data", "default", "else", "every", "false", "if", "import", "in", "input", "not", "null",
    "package", "some", "true", "with",
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown template {0:?} (`docketops policy templates list` shows them)")]
    Unknown(String),
    #[error("template {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("template {0} is given twice")]
    Duplicate(String),
    #[error("template {template} has no parameter {parameter:?}; its parameters: {known}")]
    UnknownParameter {
        template: String,
        parameter: String,
        known: String,
    },
    #[error("template {template} needs the parameter {parameter:?} ({description})")]
    MissingParameter {
        template: String,
        parameter: String,
        description: String,
    },
    #[error("invalid parameter {message}")]
    InvalidParameter { parameter: String, message: String },
    #[error(
        "invalid instance name {0:?}: use lower-case letters, digits and _, starting with a letter (at most 63), \
         and not a Rego keyword"
    )]
    InvalidInstance(String),
    #[error("the rendered template does not work next to the default policy: {0}")]
    Render(String),
}

/// What values a parameter (or an element of one) takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    String {
        /// `enum`: the only values allowed, if any.
        choices: Option<Vec<String>>,
    },
    Integer {
        minimum: Option<i64>,
        maximum: Option<i64>,
    },
    Boolean,
    Array {
        items: Box<Schema>,
        min_items: usize,
    },
    /// An object with free keys (e.g. namespace names) and values of one schema.
    Object {
        values: Box<Schema>,
    },
}

/// One parameter of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub description: String,
    pub required: bool,
    /// Used when the parameter is not given; optional parameters without a default are left out of `params`.
    pub default: Option<Value>,
    pub schema: Schema,
}

/// A parsed, checked template.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub title: String,
    pub description: String,
    /// In the order the template lists them.
    pub parameters: Vec<Parameter>,
    /// Example parameters (`custom.example`), valid for the schema; rendered by the tests.
    pub example: Map<String, Value>,
    /// `shipped` or the file it was read from.
    pub origin: String,
    source: String,
}

/// A rendered template: a self-contained `.rego` file.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub template: String,
    pub instance: String,
    /// The validated parameters with defaults filled in, as the policy sees them in `params`.
    pub params: Map<String, Value>,
    pub text: String,
}

// The METADATA JSON, read strictly where a typo would silently change a template's meaning (the schema).
#[derive(Deserialize)]
struct RawMetadata {
    title: String,
    description: String,
    #[serde(default)]
    custom: RawCustom,
}

#[derive(Deserialize, Default)]
struct RawCustom {
    #[serde(default)]
    parameters: Option<RawParameters>,
    #[serde(default)]
    example: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawParameters {
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

/// A name: lower-case letters, digits and the characters of `separators`, starting with a letter, at most 63.
fn is_name(text: &str, separators: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || separators.contains(c))
        && text.len() <= 63
}

/// Checks an instance name (the last segment of the rendered package).
pub fn check_instance(instance: &str) -> Result<(), TemplateError> {
    if is_name(instance, "_") && !REGO_KEYWORDS.contains(&instance) {
        Ok(())
    } else {
        Err(TemplateError::InvalidInstance(instance.to_owned()))
    }
}

impl Template {
    /// Reads a template from its text; `name` is its file name without `.rego`.
    pub fn parse(name: &str, source: &str, origin: &str) -> Result<Template, TemplateError> {
        let invalid = |message: String| TemplateError::Invalid {
            name: name.to_owned(),
            message,
        };
        if !is_name(name, "-_") {
            return Err(invalid(
                "a template name (its file name without .rego) is lower-case letters, digits and - or _, \
                 starting with a letter"
                    .into(),
            ));
        }
        let lines: Vec<&str> = source.lines().collect();
        let package = package_line(&lines).map_err(invalid)?;
        let metadata = metadata_json(&lines[..package]).map_err(invalid)?;
        let raw: RawMetadata = serde_json::from_str(&metadata).map_err(|error| {
            invalid(format!(
                "the METADATA block must be a JSON object with \"title\", \"description\" and \
                 \"custom\": {{\"parameters\": …}} (JSON is valid YAML, so OPA reads it too): {error}"
            ))
        })?;
        if let Some(line) = lines.iter().find(|line| defines_params(line)) {
            return Err(invalid(format!(
                "it must not define `params` (rendering adds it): {:?}",
                line.trim()
            )));
        }
        let parameters = match raw.custom.parameters {
            None => Vec::new(),
            Some(raw) => parameters(raw).map_err(invalid)?,
        };
        let template = Template {
            name: name.to_owned(),
            title: raw.title,
            description: raw.description,
            parameters,
            example: raw.custom.example,
            origin: origin.to_owned(),
            source: source.to_owned(),
        };
        template
            .validate(&template.example)
            .map_err(|error| invalid(format!("custom.example: {error}")))?;
        Ok(template)
    }

    /// Reads a template file; its name is the file name without `.rego`.
    pub fn from_file(path: &Path) -> Result<Template, TemplateError> {
        let read = |message: String| TemplateError::Read {
            path: path.to_owned(),
            message,
        };
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".rego"))
            .ok_or_else(|| read("a template file name ends in .rego".into()))?;
        let source = std::fs::read_to_string(path).map_err(|error| read(error.to_string()))?;
        Template::parse(name, &source, &path.display().to_string())
    }

    /// The template's text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `sha256:<hex>` of the template's text, named in every rendering.
    pub fn digest(&self) -> String {
        crate::decision::sha256_hex(self.source.as_bytes())
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|parameter| parameter.name == name)
    }

    /// The instance name used when none is given: the template name with `_` for `-`.
    pub fn default_instance(&self) -> String {
        self.name.replace('-', "_")
    }

    /// Reads one `key=value` (as `--set` gives it) into the parameter's type.
    pub fn parse_assignment(&self, assignment: &str) -> Result<(String, Value), TemplateError> {
        let Some((key, text)) = assignment.split_once('=') else {
            return Err(TemplateError::InvalidParameter {
                parameter: assignment.to_owned(),
                message: format!("{assignment:?}: expected KEY=VALUE"),
            });
        };
        let key = key.trim();
        let parameter = self.parameter(key).ok_or_else(|| self.unknown(key))?;
        let value = parameter
            .schema
            .value_from_text(text, key)
            .map_err(|message| TemplateError::InvalidParameter {
                parameter: key.to_owned(),
                message,
            })?;
        Ok((key.to_owned(), value))
    }

    fn unknown(&self, parameter: &str) -> TemplateError {
        let known: Vec<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
        TemplateError::UnknownParameter {
            template: self.name.clone(),
            parameter: parameter.to_owned(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        }
    }

    /// Checks `given` against the schema: no unknown parameter, every required one, each of its type. Returns
    /// the parameters with the defaults of those not given.
    pub fn validate(&self, given: &Map<String, Value>) -> Result<Map<String, Value>, TemplateError> {
        if let Some(unknown) = given.keys().find(|key| self.parameter(key).is_none()) {
            return Err(self.unknown(unknown));
        }
        let mut params = Map::new();
        for parameter in &self.parameters {
            let value = match (given.get(&parameter.name), &parameter.default) {
                (Some(value), _) => value.clone(),
                (None, Some(default)) => default.clone(),
                (None, None) if parameter.required => {
                    return Err(TemplateError::MissingParameter {
                        template: self.name.clone(),
                        parameter: parameter.name.clone(),
                        description: parameter.schema.describe(),
                    });
                }
                (None, None) => continue,
            };
            parameter
                .schema
                .check(&value, &parameter.name)
                .map_err(|message| TemplateError::InvalidParameter {
                    parameter: parameter.name.clone(),
                    message,
                })?;
            params.insert(parameter.name.clone(), value);
        }
        Ok(params)
    }

    /// Renders the template with `given` parameters as package `docketops.templates.<instance>` (default: the
    /// template name with `_` for `-`), and proves the result loads next to the default policy and reads its
    /// parameters back unchanged.
    pub fn render(&self, given: &Map<String, Value>, instance: Option<&str>) -> Result<Rendered, TemplateError> {
        let params = self.validate(given)?;
        let instance = instance.map_or_else(|| self.default_instance(), str::to_owned);
        check_instance(&instance)?;
        let text = self.render_text(&params, &instance);
        check_rendered(&text, &instance, &params)?;
        Ok(Rendered {
            template: self.name.clone(),
            instance,
            params,
            text,
        })
    }

    fn render_text(&self, params: &Map<String, Value>, instance: &str) -> String {
        let lines: Vec<&str> = self.source.lines().collect();
        // Found when the template was parsed.
        let package = package_line(&lines).unwrap_or(0);
        let insert_after = lines[package + 1..]
            .iter()
            .take_while(|line| {
                let line = line.trim();
                line.is_empty() || line.starts_with('#') || line.starts_with("import ")
            })
            .enumerate()
            .filter(|(_, line)| line.trim().starts_with("import "))
            .last()
            .map_or(package, |(offset, _)| package + 1 + offset);

        let mut text = String::new();
        // Only checked names go into comments: a parameter value there could start a new line of Rego.
        let _ = writeln!(
            text,
            "# Rendered by `docketops policy templates render` from template {} ({}) as instance {instance}.",
            self.name,
            self.digest()
        );
        text.push_str(
            "# Load it next to the shipped policy (`docketops policy default > default.rego`):\n\
             #     docketops serve --policy default.rego --policy THIS_FILE.rego\n\
             # Change the parameters by rendering again, not by editing `params`.\n\n",
        );
        for (index, line) in lines.iter().enumerate() {
            if index == package {
                let _ = writeln!(text, "package {TEMPLATES_PACKAGE}.{instance}");
            } else {
                text.push_str(line);
                text.push('\n');
            }
            if index == insert_after {
                text.push_str("\n# The parameters, checked against the schema above.\nparams := ");
                write_rego_object(&mut text, params);
                text.push('\n');
            }
        }
        text
    }
}

/// Loads `text` with the default policy (the way `serve` will) and evaluates `params` through the engine: it
/// must be exactly what was validated. A template that does not compile, or a value the literal would not
/// carry faithfully, fails here rather than in the gateway.
fn check_rendered(text: &str, instance: &str, params: &Map<String, Value>) -> Result<(), TemplateError> {
    let render = |message: String| TemplateError::Render(message);
    let file = format!("{instance}.rego");
    let engine = EmbeddedEngine::from_sources(vec![
        ("default.rego".into(), DEFAULT_POLICY.into()),
        (file.clone(), text.into()),
    ])
    .map_err(|error| render(error.to_string()))?;
    // One evaluation: a template whose rules fail at run time (a builtin on the wrong type) fails here.
    let sample = json!({
        "identity": {"id": "agt_render_check", "name": "render-check", "kind": "agent", "roles": ["operator"],
                     "scopes": [], "trust_score": 0},
        "action": {"action_type": "SCALE", "namespace": "default", "resource_kind": "Deployment",
                   "resource_name": "render-check", "parameters": {"replicas": 1}, "justification": "render check"},
        "risk": {"level": "MEDIUM", "rules": ["baseline"]},
        "preview": {"diff": []},
        "time": "2026-01-05T10:00:00Z",
    });
    engine.decide(&sample).map_err(|error| render(error.to_string()))?;

    let mut alone = regorus::Engine::new();
    alone
        .add_policy(file, text.into())
        .map_err(|error| render(format!("{error:#}")))?;
    let value = alone
        .eval_rule(format!("data.{TEMPLATES_PACKAGE}.{instance}.params"))
        .map_err(|error| render(format!("{error:#}")))?;
    let read_back = serde_json::to_value(&value).map_err(|error| render(error.to_string()))?;
    if read_back != Value::Object(params.clone()) {
        return Err(render(format!(
            "the policy reads the parameters as {read_back}, not as given ({})",
            Value::Object(params.clone())
        )));
    }
    Ok(())
}

/// The index of the one `package docketops.templates.<name>` line.
fn package_line(lines: &[&str]) -> Result<usize, String> {
    let packages: Vec<usize> = (0..lines.len())
        .filter(|&index| lines[index].trim_start().starts_with("package "))
        .collect();
    let [index] = packages[..] else {
        return Err(format!(
            "expected one `package {TEMPLATES_PACKAGE}.<name>` line, found {}",
            packages.len()
        ));
    };
    let name = lines[index]
        .trim()
        .strip_prefix("package ")
        .and_then(|path| path.trim().strip_prefix(TEMPLATES_PACKAGE))
        .and_then(|rest| rest.strip_prefix('.'));
    match name {
        Some(name) if is_name(name, "_") => Ok(index),
        _ => Err(format!(
            "the package must be {TEMPLATES_PACKAGE}.<name> (rendering sets <name> to the instance), not {:?}",
            lines[index].trim()
        )),
    }
}

/// The JSON text of the `# METADATA` comment block among `lines`.
fn metadata_json(lines: &[&str]) -> Result<String, String> {
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

/// Whether a line is a rule head defining `params` at the top level.
fn defines_params(line: &str) -> bool {
    line.strip_prefix("params")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', ':', '=', '[', '.', '{']))
}

fn parameters(raw: RawParameters) -> Result<Vec<Parameter>, String> {
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

/// Writes `params` as a Rego object, one parameter per line.
fn write_rego_object(out: &mut String, params: &Map<String, Value>) {
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

/// The shipped templates and any custom ones, by name.
#[derive(Debug, Clone)]
pub struct Library {
    templates: Vec<Template>,
}

impl Library {
    /// The templates shipped with DocketOps (the tests parse and render every one).
    pub fn shipped() -> Result<Library, TemplateError> {
        let templates = SHIPPED
            .iter()
            .map(|(name, source)| Template::parse(name, source, "shipped"))
            .collect::<Result<_, _>>()?;
        Ok(Library { templates })
    }

    /// Adds a custom template; its name must be new.
    pub fn add(&mut self, template: Template) -> Result<(), TemplateError> {
        if self.get(&template.name).is_some() {
            return Err(TemplateError::Duplicate(template.name));
        }
        self.templates.push(template);
        self.templates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    }

    /// Adds every `*.rego` file of `dir`.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), TemplateError> {
        let read = |message: String| TemplateError::Read {
            path: dir.to_owned(),
            message,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|error| read(error.to_string()))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .map_err(|error| read(error.to_string()))?;
        paths.retain(|path| path.extension().is_some_and(|ext| ext == "rego"));
        paths.sort();
        for path in paths {
            self.add(Template::from_file(&path)?)?;
        }
        Ok(())
    }

    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|template| template.name == name)
    }

    /// A template by name.
    pub fn find(&self, name: &str) -> Result<&Template, TemplateError> {
        self.get(name).ok_or_else(|| TemplateError::Unknown(name.to_owned()))
    }
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

    #[test]
    fn instance_names() {
        for good in ["a", "prod_deletes", "x1"] {
            check_instance(good).unwrap();
        }
        for bad in ["", "A", "1a", "a-b", "a.b", "a\nb", "if", "default", &"a".repeat(64)] {
            assert!(check_instance(bad).is_err(), "{bad:?}");
        }
    }
}
