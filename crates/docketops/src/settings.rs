//! Options shared by several commands, each with its environment variable (SPEC §6).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use storage::Store;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Directory for the SQLite database and the signing key.
    #[arg(
        long,
        env = "DOCKETOPS_DATA_DIR",
        default_value = "./docketops-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: the SQLite file
    /// ledger.db in the data directory].
    #[arg(long, env = "DOCKETOPS_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    pub fn url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("ledger.db").display()),
        }
    }

    /// The URL without a password, for messages.
    pub fn describe(&self) -> String {
        storage::redact(&self.url())
    }

    /// Connects, creating the data directory (mode 0700) when the default SQLite file lives there.
    pub async fn connect(&self) -> anyhow::Result<Store> {
        if self.database_url.is_none() {
            create_private_dir(&self.data_dir)?;
        }
        Store::connect(&self.url())
            .await
            .with_context(|| format!("cannot open the ledger database {}", self.describe()))
    }

    /// Connects to an existing ledger for reading: a missing SQLite file is an error, not a new ledger.
    pub async fn connect_existing(&self) -> anyhow::Result<Store> {
        let url = self.url();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            anyhow::ensure!(
                std::path::Path::new(path).exists(),
                "no ledger database at {path} (set --data-dir or --database-url)"
            );
        }
        Store::connect(&url)
            .await
            .with_context(|| format!("cannot open the ledger database {}", self.describe()))
    }
}

#[derive(Debug, Clone, Args)]
pub struct SigningKeyArgs {
    /// The Ed25519 signing key, PKCS#8 PEM [default: DIR/signing-key.pem, generated on first start].
    #[arg(long, env = "DOCKETOPS_SIGNING_KEY_FILE", value_name = "FILE")]
    pub signing_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format on stderr: text or json.
    #[arg(long, env = "DOCKETOPS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl LogArgs {
    /// Structured logs on stderr; the level comes from RUST_LOG (default info).
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr);
        let _ = if self.log_format == "json" {
            builder.json().try_init()
        } else {
            builder.try_init()
        };
    }
}

pub fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    Ok(())
}
