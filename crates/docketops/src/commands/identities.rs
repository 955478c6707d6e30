//! `docketops identities`: manage identities from the command line, on the gateway's database (as an
//! administrator with access to it and to the signing key). Every change is a ledger entry with the actor
//! `cli:<user>`, exactly as through the API.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use gateway::{Directory, IdentityKind, IdentityStatus, NewIdentity};
use storage::{AppendConfig, Ledger};

use crate::keyfile;
use crate::settings::{DatabaseArgs, LogArgs, SigningKeyArgs};

#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// Create an identity and print its API key (shown once).
    ///
    /// Example: docketops identities create --name ci-bot --kind agent --role operator --scope 'mutate:staging:Deployment'
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// admin, operator, approver or auditor (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// access:namespaces:kinds, lists comma-separated, e.g. mutate:staging:Deployment or read:*:* (repeat).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A group it is in, e.g. sre (repeat for several): two-person rules by group count its approvals
        /// for these groups.
        #[arg(long = "group")]
        groups: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List identities (JSON lines).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Suspend an identity: its keys stop working until it is reactivated.
    Suspend {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Reactivate a suspended identity.
    Reactivate {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke an identity and all its keys, for good.
    Revoke {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Agent,
    Human,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub key: SigningKeyArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl IdentitiesCommand {
    fn store_args(&mut self) -> &mut StoreArgs {
        match self {
            IdentitiesCommand::Create { store, .. }
            | IdentitiesCommand::List { store }
            | IdentitiesCommand::Suspend { store, .. }
            | IdentitiesCommand::Reactivate { store, .. }
            | IdentitiesCommand::Revoke { store, .. } => store,
        }
    }

    pub fn apply_config(&mut self, config: &crate::settings::ConfigFile, matches: &clap::ArgMatches) {
        let store = self.store_args();
        store.database.apply(config, matches);
        store.key.apply(config, matches);
        store.log.apply(config, matches);
    }
}

/// The directory over the gateway's database, with a ledger writer using its signing key.
async fn directory(args: &StoreArgs) -> anyhow::Result<Directory> {
    args.log.init();
    let store = args.database.connect().await?;
    store.migrate().await?;
    let (key, key_lock) = keyfile::load_or_generate(&keyfile::source(&args.database, &args.key), &store).await?;
    let ledger = Ledger::start(store.clone(), key, AppendConfig::default());
    ledger.initialize().await?;
    drop(key_lock);
    Ok(Directory::new(store, ledger))
}

fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

pub async fn run(mut command: IdentitiesCommand) -> anyhow::Result<ExitCode> {
    let directory = directory(command.store_args()).await?;
    match command {
        IdentitiesCommand::Create {
            name,
            kind,
            roles,
            scopes,
            groups,
            ..
        } => {
            let scopes = scopes
                .iter()
                .map(|s| gateway::Scope::parse_short(s).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let kind = match kind {
                Kind::Agent => IdentityKind::Agent,
                Kind::Human => IdentityKind::Human,
            };
            let (identity, key) = directory
                .create(
                    &actor(),
                    NewIdentity {
                        name,
                        kind,
                        roles,
                        scopes,
                        groups,
                    },
                )
                .await?;
            println!("{}", serde_json::to_string(&identity)?);
            eprintln!("API key (shown once, store it now):");
            println!("{}", key.api_key);
        }
        IdentitiesCommand::List { .. } => {
            // Page by page: memory stays flat however many identities there are.
            let mut after: Option<String> = None;
            loop {
                let page = directory.list(after.as_deref(), 1000).await?;
                for identity in &page {
                    println!("{}", serde_json::to_string(identity)?);
                }
                match page.last() {
                    Some(last) if page.len() == 1000 => after = Some(last.id.clone()),
                    _ => break,
                }
            }
        }
        IdentitiesCommand::Suspend { id, reason, .. } => {
            let (identity, entry) = directory
                .set_status(&actor(), &id, IdentityStatus::Suspended, reason)
                .await?;
            println!("{} suspended (ledger entry {})", identity.id, entry.id);
        }
        IdentitiesCommand::Reactivate { id, reason, .. } => {
            let (identity, entry) = directory
                .set_status(&actor(), &id, IdentityStatus::Active, reason)
                .await?;
            println!("{} reactivated (ledger entry {})", identity.id, entry.id);
        }
        IdentitiesCommand::Revoke { id, reason, .. } => {
            let (identity, entry) = directory
                .set_status(&actor(), &id, IdentityStatus::Revoked, reason)
                .await?;
            println!("{} revoked with its keys (ledger entry {})", identity.id, entry.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
