//! `docketops policy`: try a Rego policy on an input document before the gateway runs it, print the shipped
//! policy, and list, show and render policy templates.

use domain::{ActionStatus, EntryKind};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ledger_core::json::{self, Numbers};
use policy::templates::{Library, Template, value_to_text};
use policy::{DEFAULT_POLICY, EmbeddedEngine, Outcome};
use serde_json::{Map, Value};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate a policy (embedded Rego) on an input document and print the decision as JSON.
    ///
    /// The input has the shape the gateway sends (identity, action, risk, preview, time); see the
    /// comment at the top of the shipped policy. Its `input_sha256` is what
    /// `docketops ledger canonicalize --hash` prints for the same file.
    ///
    /// Exit status: 0 when the policy decided (allow, deny or require_approval alike), 2 when it could
    /// not (unreadable files, a Rego error, an undefined or malformed decision).
    Test {
        /// The input document (JSON); `-` reads standard input.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// A .rego file (repeat for several); they replace the shipped default policy.
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
    },
    /// Re-evaluate a candidate policy against every policy input recorded in the ledger (the
    /// `policy.decided` entries) and report where it would have decided differently: the effect of a new
    /// policy, or of switching from `ledger` to `enforce` mode, before it is live.
    ///
    /// Exit status: 0 no decision would change, 1 some would (they are listed), 2 usage or I/O error.
    Replay {
        #[command(flatten)]
        database: crate::settings::DatabaseArgs,
        /// A .rego file of the candidate (repeat for several); default: the shipped policy.
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// Print every replayed decision, not only the changed ones.
        #[arg(long)]
        all: bool,
    },
    /// Print the shipped default policy (package docketops.policy), e.g. `> default.rego`.
    ///
    /// To read it, to start a custom policy from it, or to load it next to rendered templates:
    /// `serve --policy default.rego --policy rendered.rego` (`--policy` files replace the default).
    Default,
    /// Policy templates: parameterized rules to add to the default policy (list, show, render)
    ///
    /// Shipped: no deletes in namespaces, change windows, max replicas, two approvals
    /// for HIGH, read-only agents, no privileged pods, an image registry allowlist.
    /// A rendered template is a .rego file loaded next to the default policy; it can
    /// only add reasons to deny an action or to ask for (more) approvals, never allow
    /// what the default policy would not. The workflow:
    ///
    ///   docketops policy templates list
    ///   docketops policy templates show no-deletes-in-namespaces
    ///   docketops policy templates render no-deletes-in-namespaces \
    ///       --set 'namespaces=production,prod-*' --out no-deletes.rego
    ///   docketops policy default > default.rego
    ///   docketops policy test --input input.json \
    ///       --policy default.rego --policy no-deletes.rego
    ///   docketops serve --policy default.rego --policy no-deletes.rego
    ///
    /// A custom template is a .rego file in the same format: pass its path as NAME,
    /// or a directory of them with --templates-dir. See docs/policy-templates.md.
    #[command(verbatim_doc_comment)]
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// List the templates: name, title and parameters (* marks the required ones).
    List {
        #[command(flatten)]
        source: TemplateSource,
    },
    /// Describe a template: what it does, its parameters (type, default, meaning) and an example; --rego
    /// prints its Rego source instead.
    Show {
        /// A template name (see `list`) or the path of a template file (.rego).
        name: String,
        /// Print the template's Rego source (with its METADATA block).
        #[arg(long)]
        rego: bool,
        #[command(flatten)]
        source: TemplateSource,
    },
    /// Render a template with parameters into a self-contained .rego file (package
    /// docketops.templates.<instance>), after checking the parameters against its schema and loading the result
    /// next to the default policy.
    ///
    /// Values by type: strings as they are; numbers; true or false; lists as a,b,c or JSON (["a,b", "c"]);
    /// objects as JSON ({"staging": 5}). --set wins over --params-file. Render a template several times with
    /// different --instance names to use it with different parameters.
    ///
    /// Exit status: 0 rendered, 2 unknown template, invalid parameters or a template that does not load.
    Render {
        /// A template name (see `list`) or the path of a template file (.rego).
        name: String,
        /// A parameter, e.g. --set 'namespaces=production,prod-*' (repeat for several).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// A JSON object of parameters, e.g. {"namespaces": ["production"]}.
        #[arg(long, value_name = "FILE")]
        params_file: Option<PathBuf>,
        /// The instance name: the last part of the package, unique among loaded templates (lower-case letters,
        /// digits and _). Default: the template name with _ for -.
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Write the rendered policy to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        source: TemplateSource,
    },
}

/// Where templates come from besides the shipped ones.
#[derive(Debug, Args)]
pub struct TemplateSource {
    /// A directory of custom templates (*.rego), added to the shipped ones (repeat for several).
    #[arg(long, value_name = "DIR")]
    templates_dir: Vec<PathBuf>,
}

impl PolicyCommand {
    pub fn apply_config(&mut self, config: &crate::settings::ConfigFile, matches: &clap::ArgMatches) {
        if let PolicyCommand::Replay { database, .. } = self {
            database.apply(config, matches);
        }
    }
}

pub async fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Test { input, policies } => test(&input, &policies),
        PolicyCommand::Replay {
            database,
            policies,
            all,
        } => replay(&database, &policies, all).await,
        PolicyCommand::Default => {
            print!("{DEFAULT_POLICY}");
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Templates { command } => templates(command),
    }
}

fn templates(command: TemplatesCommand) -> anyhow::Result<ExitCode> {
    match command {
        TemplatesCommand::List { source } => {
            let library = source.library()?;
            let width = library.templates().iter().map(|t| t.name.len()).max().unwrap_or(0);
            let title_width = library.templates().iter().map(|t| t.title.len()).max().unwrap_or(0);
            for template in library.templates() {
                let parameters: Vec<String> = template
                    .parameters
                    .iter()
                    .map(|p| format!("{}{}", p.name, if p.required { "*" } else { "" }))
                    .collect();
                println!(
                    "{:width$}  {:title_width$}  {}",
                    template.name,
                    template.title,
                    parameters.join(", ")
                );
            }
            eprintln!("`docketops policy templates show NAME` describes one.");
        }
        TemplatesCommand::Show { name, rego, source } => {
            let library = source.library()?;
            let template = find(&library, &name)?;
            if rego {
                print!("{}", template.source());
            } else {
                print!("{}", describe(&template, &name));
            }
        }
        TemplatesCommand::Render {
            name,
            set,
            params_file,
            instance,
            out,
            source,
        } => {
            let library = source.library()?;
            let template = find(&library, &name)?;
            let given = parameters(&template, params_file.as_deref(), &set)?;
            let rendered = template.render(&given, instance.as_deref())?;
            match out {
                None => print!("{}", rendered.text),
                Some(path) => {
                    std::fs::write(&path, &rendered.text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "wrote {} (template {}, package docketops.templates.{}); load it next to the default policy:\n  \
                         docketops policy default > default.rego\n  \
                         docketops serve --policy default.rego --policy {}",
                        path.display(),
                        rendered.template,
                        rendered.instance,
                        path.display()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl TemplateSource {
    fn library(&self) -> anyhow::Result<Library> {
        let mut library = Library::shipped()?;
        for dir in &self.templates_dir {
            library.add_dir(dir)?;
        }
        Ok(library)
    }
}

/// A template by name, or from a file when `name` is a path.
fn find(library: &Library, name: &str) -> anyhow::Result<Template> {
    if name.ends_with(".rego") || name.contains(std::path::MAIN_SEPARATOR) {
        return Ok(Template::from_file(Path::new(name))?);
    }
    Ok(library.find(name)?.clone())
}

/// The parameters from `--params-file`, then `--set` (which wins).
fn parameters(template: &Template, params_file: Option<&Path>, set: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut given = match params_file {
        None => Map::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            match json::parse(&text, Numbers::Any).with_context(|| format!("{} is not valid JSON", path.display()))? {
                Value::Object(map) => map,
                _ => bail!("{} must hold a JSON object of parameters", path.display()),
            }
        }
    };
    let mut seen = Vec::new();
    for assignment in set {
        let (key, value) = template.parse_assignment(assignment)?;
        if seen.contains(&key) {
            bail!("--set {key}=… is given twice (a list is one value: --set {key}=a,b)");
        }
        seen.push(key.clone());
        given.insert(key, value);
    }
    Ok(given)
}

/// What `templates show` prints.
fn describe(template: &Template, name: &str) -> String {
    let mut text = format!("{}: {}\n", template.name, template.title);
    if template.origin != "shipped" {
        text.push_str(&format!("(from {})\n", template.origin));
    }
    text.push('\n');
    text.push_str(&wrap(&template.description, ""));
    text.push_str("\nParameters:\n");
    if template.parameters.is_empty() {
        text.push_str("  none\n");
    }
    for parameter in &template.parameters {
        let mut line = format!("  {}: {}", parameter.name, parameter.schema.describe());
        if parameter.required {
            line.push_str("; required");
        } else if let Some(default) = &parameter.default {
            line.push_str(&format!("; default {default}"));
        } else {
            line.push_str("; optional");
        }
        text.push_str(&line);
        text.push('\n');
        text.push_str(&wrap(&parameter.description, "      "));
    }
    let mut command = format!("docketops policy templates render {}", shell_word(name));
    for parameter in &template.parameters {
        if let Some(value) = template.example.get(&parameter.name) {
            let assignment = format!("{}={}", parameter.name, value_to_text(value));
            command.push_str(&format!(" --set {}", shell_word(&assignment)));
        }
    }
    text.push_str(&format!(
        "\nExample:\n  {command}\n\nLoad the result next to the default policy: docketops serve --policy \
         default.rego --policy rendered.rego\n"
    ));
    text
}

/// `text` in lines of at most about 100 characters, each starting with `indent`.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > 100 {
            out.push_str(&format!("{indent}{line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{indent}{line}\n"));
    }
    out
}

/// `word` quoted for a POSIX shell when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,:/=@+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

async fn replay(database: &crate::settings::DatabaseArgs, policies: &[PathBuf], all: bool) -> anyhow::Result<ExitCode> {
    let engine = if policies.is_empty() {
        EmbeddedEngine::default_policy()
    } else {
        EmbeddedEngine::from_files(policies)
    }?;
    let store = database.connect().await?;
    let mut pages = store.scan(storage::PAGE_SIZE, None);
    let (mut replayed, mut changed, mut failed) = (0u64, 0u64, 0u64);
    while let Some(page) = pages.recv().await {
        for entry in page? {
            if entry.kind != EntryKind::PolicyDecided {
                continue;
            }
            let payload: serde_json::Value = serde_json::from_str(&entry.payload)?;
            let Some(input) = payload.get("input") else { continue };
            replayed += 1;
            let recorded = payload["outcome"].as_str().unwrap_or("?");
            let action = entry.action_id.as_deref().unwrap_or("-");
            match engine.decide(input) {
                Ok(decision) if decision.outcome.as_str() == recorded => {
                    if all {
                        println!("same     {action}  {recorded}");
                    }
                }
                Ok(decision) => {
                    changed += 1;
                    println!(
                        "changed  {action}  {recorded} -> {}  ({})",
                        decision.outcome.as_str(),
                        decision.reasons.join("; ")
                    );
                }
                Err(error) => {
                    failed += 1;
                    println!("error    {action}  {recorded} -> {error}");
                }
            }
        }
    }
    println!(
        "replayed {replayed} decisions with {}: {changed} would change, {failed} could not be evaluated (fail closed in enforce mode)",
        engine.revision()
    );
    Ok(if changed + failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn test(input: &Path, policies: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let stdin = input.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_string()
    } else {
        input.display().to_string()
    };
    let text = if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        text
    } else {
        std::fs::read_to_string(input).with_context(|| format!("cannot read {name}"))?
    };
    // Strict parsing (no duplicate keys), as the ledger reads documents: the hash is then unambiguous.
    let document = json::parse(&text, Numbers::Any).with_context(|| format!("{name} is not valid JSON"))?;
    let engine = if policies.is_empty() {
        EmbeddedEngine::default_policy()
    } else {
        EmbeddedEngine::from_files(policies)
    }?;
    let decision = engine.decide(&document)?;
    println!("{}", serde_json::to_string_pretty(&decision)?);
    let summary = match decision.outcome {
        Outcome::Allow => "allowed",
        Outcome::Deny => ActionStatus::Denied.as_str(),
        Outcome::RequireApproval => "needs an APPROVAL",
    };
    eprintln!(
        "decision: {summary} ({}): {}",
        decision.outcome,
        decision.reasons.join("; ")
    );
    Ok(ExitCode::SUCCESS)
}
