//! The embedded Rego engine (regorus): the default, zero-setup policy engine.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use serde::Deserialize;
use serde_json::Value;

use crate::decision::{self, DEFAULT_POLICY_ID, Decision, ENTRY_POINT, PolicyError};

/// The policy shipped with DocketOps (`policies/default.rego`).
pub const DEFAULT_POLICY: &str = include_str!("../policies/default.rego");

/// A policy taking longer than this is broken (the default one takes tens of microseconds); it fails
/// with an evaluation error instead of holding a worker thread.
pub const EVALUATION_TIME_LIMIT: Duration = Duration::from_millis(500);

/// The package that must hold the entry rule, as regorus names it.
const ENTRY_PACKAGE: &str = "data.docketops.policy";
const ENTRY_RULE: &str = "decision";
/// Rendered policy templates (see [`crate::templates`]): one package, and one file, per instance.
const TEMPLATE_PACKAGE_PREFIX: &str = "data.docketops.templates.";

/// Rego policies evaluated in process.
///
/// Loading parses and analyzes the policies once; each [`EmbeddedEngine::decide`] evaluates on a clone
/// of that prepared engine. A clone shares the analyzed policy (reference counted) and costs far less
/// than the evaluation itself, so concurrent callers neither wait on a lock nor re-parse anything.
#[derive(Clone)]
pub struct EmbeddedEngine {
    /// `None` when no source defines the entry rule: every decision is then undefined, as with OPA.
    /// (An `Arc`: the engine is large, and clones of `EmbeddedEngine` can share it.)
    prepared: Option<Arc<regorus::Engine>>,
    revision: String,
    names: Vec<String>,
}

impl std::fmt::Debug for EmbeddedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedEngine")
            .field("sources", &self.names)
            .field("revision", &self.revision)
            .field("has_entry_point", &self.prepared.is_some())
            .finish()
    }
}

impl EmbeddedEngine {
    /// The shipped default policy.
    pub fn default_policy() -> Result<EmbeddedEngine, PolicyError> {
        EmbeddedEngine::from_sources(vec![("default.rego".to_string(), DEFAULT_POLICY.to_string())])
    }

    /// User policy files; they replace the default policy.
    pub fn from_files(paths: &[PathBuf]) -> Result<EmbeddedEngine, PolicyError> {
        EmbeddedEngine::from_sources(read_files(paths)?)
    }

    /// The shipped default policy and files that extend it, such as rendered policy templates
    /// ([`crate::templates`]): the same as `from_files` with the default policy's text as the first file, and
    /// the same revision.
    pub fn default_policy_and_files(paths: &[PathBuf]) -> Result<EmbeddedEngine, PolicyError> {
        let mut sources = vec![("default.rego".to_string(), DEFAULT_POLICY.to_string())];
        sources.extend(read_files(paths)?);
        EmbeddedEngine::from_sources(sources)
    }

    /// Policies from `(name, text)` pairs; the name appears in error messages only.
    pub fn from_sources(sources: Vec<(String, String)>) -> Result<EmbeddedEngine, PolicyError> {
        if sources.is_empty() {
            return Err(PolicyError::Load("no policy files given".into()));
        }
        let revision = revision_of(&sources)?;
        let mut engine = regorus::Engine::new();
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: EVALUATION_TIME_LIMIT,
            check_interval: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
        });
        let mut names = Vec::with_capacity(sources.len());
        let mut entry_declared = false;
        let mut template_packages: Vec<(String, String)> = Vec::new();
        for (name, text) in sources {
            if names.contains(&name) {
                return Err(PolicyError::Load(format!("{name} is given twice")));
            }
            let package = engine
                .add_policy(name.clone(), text)
                .map_err(|error| PolicyError::Load(message(error)))?;
            // Each rendered template instance is one file; two with the same package would only conflict at
            // the first decision (every action denied), so refuse them now.
            if package.starts_with(TEMPLATE_PACKAGE_PREFIX) {
                if let Some((_, first)) = template_packages.iter().find(|(seen, _)| *seen == package) {
                    return Err(PolicyError::Load(format!(
                        "{first} and {name} are both {}: render each template instance with its own --instance",
                        package.trim_start_matches("data.")
                    )));
                }
                template_packages.push((package.clone(), name.clone()));
            }
            if package == ENTRY_PACKAGE {
                entry_declared |= engine
                    .has_declared_rule_rooted_at(&name, ENTRY_RULE)
                    .map_err(|error| PolicyError::Load(format!("{name}: {}", message(error))))?;
            }
            names.push(name);
        }
        // Compiling runs the analysis (unsafe variables, imports) now rather than on the first action,
        // and leaves `engine` prepared, so its clones start evaluating at once. It also finds an entry
        // rule declared in another form (`package docketops` with `policy.decision := …`).
        let compiled = engine.compile_with_entrypoint(&ENTRY_POINT.into());
        let prepared = match compiled {
            Ok(_) => Some(Arc::new(engine)),
            Err(error) if entry_declared => return Err(PolicyError::Load(message(error))),
            // Regorus refuses to compile a rule nobody declares; OPA calls it undefined. Keep OPA's
            // meaning: such a policy loads, and every decision fails as undefined.
            Err(_) => None,
        };
        Ok(EmbeddedEngine {
            prepared,
            revision,
            names,
        })
    }

    /// `sha256:<hex>` of the RFC 8785 canonical JSON of the list of policy texts, sorted (file names
    /// and load order do not change what a policy decides, so they do not change its revision).
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The names of the loaded policy sources.
    pub fn sources(&self) -> &[String] {
        &self.names
    }

    /// Evaluates `data.docketops.policy.decision` for `input`.
    pub fn decide(&self, input: &Value) -> Result<Decision, PolicyError> {
        let input_sha256 = decision::input_sha256(input)?;
        let result = self.evaluate(input)?;
        let result = decision::parse_result(&result)?;
        Ok(Decision {
            outcome: result.outcome,
            reasons: result.reasons,
            approvals: result.approvals,
            approval_groups: result.approval_groups,
            policy: DEFAULT_POLICY_ID.to_string(),
            revision: self.revision.clone(),
            decision_id: decision::new_decision_id(),
            input_sha256,
            engine: "embedded".to_string(),
        })
    }

    /// The raw value of the entry rule as JSON; [`PolicyError::Undefined`] when it has none. (The test
    /// OPA server serves this.)
    pub fn evaluate(&self, input: &Value) -> Result<Value, PolicyError> {
        let Some(prepared) = &self.prepared else {
            return Err(PolicyError::Undefined);
        };
        let input = regorus::Value::deserialize(input)
            .map_err(|error| PolicyError::Evaluation(format!("the input cannot be converted: {error}")))?;
        let mut engine = regorus::Engine::clone(prepared);
        engine.set_input(input);
        let result = engine
            .eval_rule(ENTRY_POINT.to_string())
            .map_err(|error| PolicyError::Evaluation(message(error)))?;
        if result == regorus::Value::Undefined {
            return Err(PolicyError::Undefined);
        }
        // Sets become lists here, as in OPA's JSON.
        serde_json::to_value(&result)
            .map_err(|error| PolicyError::Malformed(format!("the result is not representable as JSON: {error}")))
    }
}

fn read_files(paths: &[PathBuf]) -> Result<Vec<(String, String)>, PolicyError> {
    paths
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|text| (path.display().to_string(), text))
                .map_err(|error| PolicyError::Load(format!("cannot read {}: {error}", path.display())))
        })
        .collect()
}

/// Regorus errors (anyhow) with their causes; parse errors start with a line break before the snippet.
fn message(error: impl std::fmt::Display) -> String {
    format!("{error:#}").trim().to_string()
}

fn revision_of(sources: &[(String, String)]) -> Result<String, PolicyError> {
    let mut texts: Vec<&str> = sources.iter().map(|(_, text)| text.as_str()).collect();
    texts.sort_unstable();
    let canonical = serde_json_canonicalizer::to_vec(&texts)
        .map_err(|error| PolicyError::Load(format!("cannot hash the policy sources: {error}")))?;
    Ok(decision::sha256_hex(&canonical))
}

/// The policy engine the gateway is configured with.
#[derive(Debug, Clone)]
pub enum PolicyEngine {
    /// Rego evaluated in process (the default).
    Embedded(EmbeddedEngine),
    /// An external OPA server.
    Opa(crate::opa::OpaClient),
}

impl PolicyEngine {
    /// Asks the configured engine for a decision on `input`.
    pub async fn decide(&self, input: &Value) -> Result<Decision, PolicyError> {
        match self {
            // Tens of microseconds, bounded by EVALUATION_TIME_LIMIT: cheaper inline than on a blocking thread.
            PolicyEngine::Embedded(engine) => engine.decide(input),
            PolicyEngine::Opa(client) => client.decide(input).await,
        }
    }

    /// One line for logs and the startup banner.
    pub fn describe(&self) -> String {
        match self {
            PolicyEngine::Embedded(engine) => format!(
                "embedded Rego ({}; revision {})",
                engine.sources().join(", "),
                engine.revision()
            ),
            PolicyEngine::Opa(client) => format!(
                "OPA at {} (POST /v1/data/{}, timeout {:?})",
                client.base_url(),
                client.path(),
                client.timeout()
            ),
        }
    }
}
