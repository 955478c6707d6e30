use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use server::apikey::{self, KeyKind};

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Print a fresh, well-formed API key (for DOCKETOPS_BOOTSTRAP_ADMIN_KEY and scripts).
    Generate {
        #[arg(long, value_enum, default_value = "human")]
        kind: Kind,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Agent,
    Human,
}

pub fn run(command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeyCommand::Generate { kind } => {
            let kind = match kind {
                Kind::Agent => KeyKind::Agent,
                Kind::Human => KeyKind::Human,
            };
            println!("{}", apikey::generate(kind));
            Ok(ExitCode::SUCCESS)
        }
    }
}
