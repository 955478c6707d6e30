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

mod library;
mod metadata;
mod names;
mod rego_literal;
mod render;
mod schema;
mod template;

use std::path::PathBuf;

pub use library::Library;
pub use names::check_instance;
pub use render::Rendered;
pub use schema::{Schema, value_to_text};
pub use template::{Parameter, Template};

/// The package under which rendered templates live; the default policy collects from its children.
pub const TEMPLATES_PACKAGE: &str = "docketops.templates";

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
