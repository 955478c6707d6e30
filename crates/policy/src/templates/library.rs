//! The template catalogue: the templates shipped with DocketOps and any custom ones, by name.

use std::path::{Path, PathBuf};

use super::{Template, TemplateError};

/// The templates shipped with DocketOps (`templates/<name>.rego`).
const SHIPPED: &[(&str, &str)] = &[
    ("change-window", include_str!("../../templates/change-window.rego")),
    (
        "image-registry-allowlist",
        include_str!("../../templates/image-registry-allowlist.rego"),
    ),
    ("max-replicas", include_str!("../../templates/max-replicas.rego")),
    (
        "no-deletes-in-namespaces",
        include_str!("../../templates/no-deletes-in-namespaces.rego"),
    ),
    (
        "no-privileged-pods",
        include_str!("../../templates/no-privileged-pods.rego"),
    ),
    (
        "read-only-agents",
        include_str!("../../templates/read-only-agents.rego"),
    ),
    (
        "two-approvals-for-high",
        include_str!("../../templates/two-approvals-for-high.rego"),
    ),
];

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

    /// Every template, sorted by name.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// The template named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|template| template.name == name)
    }

    /// A template by name.
    pub fn find(&self, name: &str) -> Result<&Template, TemplateError> {
        self.get(name).ok_or_else(|| TemplateError::Unknown(name.to_owned()))
    }
}
