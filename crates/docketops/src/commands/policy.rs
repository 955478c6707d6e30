//! `docketops policy`: try a Rego policy on an input document before the gateway runs it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use ledger_core::json::{self, Numbers};
use policy::{EmbeddedEngine, Outcome};

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
            if entry.kind != "policy.decided" {
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
        Outcome::Deny => "DENIED",
        Outcome::RequireApproval => "needs an APPROVAL",
    };
    eprintln!(
        "decision: {summary} ({}): {}",
        decision.outcome,
        decision.reasons.join("; ")
    );
    Ok(ExitCode::SUCCESS)
}
