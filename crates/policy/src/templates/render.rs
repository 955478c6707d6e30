//! Rendering a template: its text with the instance's package and the validated `params`, proven to load next
//! to the default policy and to read the parameters back unchanged.

use std::fmt::Write as _;

use domain::ActionType;
use serde_json::{Map, Value, json};

use super::names::check_instance;
use super::rego_literal::write_rego_object;
use super::template::{Template, package_line};
use super::{TEMPLATES_PACKAGE, TemplateError};
use crate::engine::{DEFAULT_POLICY, EmbeddedEngine};

/// A rendered template: a self-contained `.rego` file.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The template's name.
    pub template: String,
    /// The instance name: the last segment of the package `docketops.templates.<instance>`.
    pub instance: String,
    /// The validated parameters with defaults filled in, as the policy sees them in `params`.
    pub params: Map<String, Value>,
    /// The `.rego` file's text.
    pub text: String,
}

impl Template {
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
        let lines: Vec<&str> = self.source().lines().collect();
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
        "action": {"action_type": ActionType::Scale.as_str(), "namespace": "default", "resource_kind": "Deployment",
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
