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
}

pub async fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Test { input, policies } => test(&input, &policies),
    }
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
