//! A parsed, checked template: reading it from its text or file, and checking given parameters against its
//! schema.

use std::path::Path;

use serde_json::{Map, Value};

use super::metadata::{RawMetadata, metadata_json, parameters};
use super::names::is_name;
use super::schema::Schema;
use super::{TEMPLATES_PACKAGE, TemplateError};

/// One parameter of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The parameter's name, its key in `params`.
    pub name: String,
    /// What it means, from the METADATA block.
    pub description: String,
    /// Whether it must be given (a required parameter has no default).
    pub required: bool,
    /// Used when the parameter is not given; optional parameters without a default are left out of `params`.
    pub default: Option<Value>,
    /// The values it takes.
    pub schema: Schema,
}

/// A parsed, checked template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The file name without `.rego`.
    pub name: String,
    /// The title, from the METADATA block.
    pub title: String,
    /// What the template does, from the METADATA block.
    pub description: String,
    /// In the order the template lists them.
    pub parameters: Vec<Parameter>,
    /// Example parameters (`custom.example`), valid for the schema; rendered by the tests.
    pub example: Map<String, Value>,
    /// `shipped` or the file it was read from.
    pub origin: String,
    source: String,
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

    /// The parameter named `name`, if the template declares one.
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
}

/// The index of the one `package docketops.templates.<name>` line.
pub(super) fn package_line(lines: &[&str]) -> Result<usize, String> {
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

/// Whether a line is a rule head defining `params` at the top level.
fn defines_params(line: &str) -> bool {
    line.strip_prefix("params")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', ':', '=', '[', '.', '{']))
}
