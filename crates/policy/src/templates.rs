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

/// Why a template cannot be read, parsed, given its parameters or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No template in the library has this name.
    #[error("unknown template {0:?} (`docketops policy templates list` shows them)")]
    Unknown(String),
    /// The template's text is not a valid template: its name, package line, METADATA block or parameter
    /// schema, or an example that does not fit the schema.
    #[error("template {name}: {message}")]
    Invalid {
        /// The template's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A template file or directory cannot be read, or a file name does not end in `.rego`.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why it cannot be read.
        message: String,
    },
    /// A template with this name is already in the library.
    #[error("template {0} is given twice")]
    Duplicate(String),
    /// A parameter is given that the template does not declare.
    #[error("template {template} has no parameter {parameter:?}; its parameters: {known}")]
    UnknownParameter {
        /// The template's name.
        template: String,
        /// The parameter given.
        parameter: String,
        /// The template's parameters, comma-separated (`none` when it has none).
        known: String,
    },
    /// A required parameter is not given.
    #[error("template {template} needs the parameter {parameter:?} ({description})")]
    MissingParameter {
        /// The template's name.
        template: String,
        /// The parameter's name.
        parameter: String,
        /// What values it takes (its schema, described).
        description: String,
    },
    /// A parameter's value does not fit its schema, or a `--set` text is not `KEY=VALUE` of the parameter's
    /// type.
    #[error("invalid parameter {message}")]
    InvalidParameter {
        /// The parameter's name (the whole `--set` text when it has no `=`).
        parameter: String,
        /// What is wrong, naming the place.
        message: String,
    },
    /// An instance name is not a lower-case identifier of at most 63 characters, or is a Rego keyword.
    #[error(
        "invalid instance name {0:?}: use lower-case letters, digits and _, starting with a letter (at most 63), \
         and not a Rego keyword"
    )]
    InvalidInstance(String),
    /// The rendered text does not load or evaluate next to the default policy, or does not read its
    /// parameters back unchanged.
    #[error("the rendered template does not work next to the default policy: {0}")]
    Render(String),
}
