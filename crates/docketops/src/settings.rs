//! Options shared by several commands, each with its environment variable (SPEC §6).

use std::path::{Path, PathBuf};

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
    /// A SQLite database's directory must be writable (SQLite creates its -wal and -shm files there).
    pub async fn connect(&self) -> anyhow::Result<Store> {
        if self.database_url.is_none() {
            create_private_dir(&self.data_dir)?;
        }
        if let Some(path) = sqlite_path(&self.url()) {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            check_writable(dir)?;
        }
        Store::connect(&self.url())
            .await
            .with_context(|| format!("cannot open the ledger database {}", self.describe()))
    }

    /// Connects to an existing ledger for reading: a missing SQLite file is an error, not a new ledger.
    pub async fn connect_existing(&self) -> anyhow::Result<Store> {
        self.check_exists()?;
        Store::connect(&self.url())
            .await
            .with_context(|| format!("cannot open the ledger database {}", self.describe()))
    }

    /// Connects to an existing ledger that is only read (`verify`, `export`): nothing is created, migrated
    /// or checkpointed, so a ledger on a read-only file system or a copy of one works.
    pub async fn connect_read_only(&self) -> anyhow::Result<Store> {
        self.check_exists()?;
        Store::connect_read_only(&self.url())
            .await
            .with_context(|| format!("cannot open the ledger database {} for reading", self.describe()))
    }

    fn check_exists(&self) -> anyhow::Result<()> {
        if let Some(path) = sqlite_path(&self.url()) {
            anyhow::ensure!(
                path.exists(),
                "no ledger database at {} (set --data-dir or --database-url)",
                path.display()
            );
        }
        Ok(())
    }
}

/// The file of a `sqlite://PATH[?options]` URL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("sqlite://")?;
    Some(PathBuf::from(path.split('?').next().unwrap_or(path)))
}

/// Creates and removes a file in `dir`: a read-only mount or directory fails here, with a message that
/// says so, instead of as SQLite's "(code: 14) unable to open database file".
fn check_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(format!(".docketops-write-check-{}", std::process::id()));
    match std::fs::File::create_new(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => anyhow::bail!(
            "the data directory {} is read-only ({e}): the gateway writes its ledger there; make it writable \
             (`docketops verify` and `docketops export` only read, and work on a read-only directory)",
            dir.display()
        ),
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
        self.init_with_traces(None);
    }

    /// Logs as [`LogArgs::init`], and spans to `traces` too when given (each layer filters on its own: the
    /// log level does not decide which spans are exported).
    pub fn init_with_traces(&self, traces: Option<crate::telemetry::TraceLayer>) {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr);
        let logs = match self.log_format.as_str() {
            "json" => logs.json().with_filter(filter).boxed(),
            _ => logs.with_filter(filter).boxed(),
        };
        let layers: Vec<crate::telemetry::TraceLayer> = std::iter::once(logs).chain(traces).collect();
        let _ = tracing_subscriber::registry().with(layers).try_init();
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

/// The config file (`--config FILE` / `DOCKETOPS_CONFIG`): the same settings as the flags, for
/// deployments that prefer a file (a ConfigMap). A flag or environment variable wins over the file,
/// the file over the built-in default.
///
/// ```toml
/// listen = "0.0.0.0:8443"
/// data_dir = "/var/lib/docketops"
/// database_url = "postgres://docketops@db/docketops"
/// signing_key_file = "/etc/docketops/signing-key.pem"
/// tls_cert = "/etc/docketops/tls.crt"
/// tls_key = "/etc/docketops/tls.key"
/// log_format = "json"
/// ```
///
/// `serve` also reads the gateway's settings (see `docs/configuration.md` and `docketops.example.toml`):
/// policy, Kubernetes, limits, and the `[guardrails]` and `[risk]` tables, which only the file can set.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<std::net::SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub signing_key_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub log_format: Option<String>,
    pub policy_mode: Option<String>,
    pub policies: Option<Vec<PathBuf>>,
    pub opa_url: Option<String>,
    pub opa_path: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub kube_context: Option<String>,
    pub release: Option<String>,
    pub gateway_namespace: Option<String>,
    pub rollout_timeout: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub guardrails: Option<executor::Guardrails>,
    pub risk: Option<policy::RiskConfig>,
    pub trust: Option<gateway::TrustGates>,
    pub freeze: Option<gateway::FreezeSettings>,
    pub breakers: Option<gateway::Breakers>,
    pub budgets: Option<gateway::Budgets>,
    pub approval_window: Option<u64>,
    pub instance_lease: Option<u64>,
    pub approval_webhook: Option<String>,
    pub default_cluster: Option<String>,
    /// Several clusters by name (`[clusters.NAME]`); without it the gateway governs the one cluster of
    /// `kubeconfig`/`kube_context` (or the inferred one), named `default`.
    pub clusters: Option<std::collections::BTreeMap<String, ClusterConfig>>,
    /// Single sign-on for people (dashboard and API bearer tokens).
    pub oidc: Option<auth::OidcConfig>,
    /// Directory sign-in for people (dashboard).
    pub ldap: Option<auth::LdapConfig>,
    /// The transparency log's origin (default: the one stored at first start, else derived from entry 1).
    pub log_origin: Option<String>,
    /// Serve the log's checkpoint, tiles and proofs without credentials.
    pub public_log: Option<bool>,
    pub checkpoint_interval_ms: Option<u64>,
    /// Witnesses asked to cosign each checkpoint (`[[witnesses]]`).
    pub witnesses: Option<Vec<WitnessConfig>>,
    /// Cosignatures a checkpoint needs to count as cosigned (default: a majority of the witnesses).
    pub witness_quorum: Option<usize>,
    /// Export traces over OTLP/HTTP to this collector base URL (`--otlp-endpoint`).
    pub otlp_endpoint: Option<String>,
    /// The SIEM exports' settings (`[siem.exports.NAME]`, read by `docketops siem run --name NAME`).
    pub siem: Option<crate::commands::siem::SiemConfig>,
}

/// One witness of `[[witnesses]]`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's submission prefix; the gateway POSTs to `{url}/add-checkpoint`.
    pub url: String,
    /// Its verifier key, `<name>+<hex id>+<base64 key>` (what `docketops witness keygen` printed).
    pub key: String,
}

/// One governed cluster of `[clusters.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current context).
    pub context: Option<String>,
    /// Use the pod's service account (the cluster the gateway runs in).
    #[serde(default)]
    pub in_cluster: bool,
    /// The executor accounts' release name on this cluster (default: `release`).
    pub release: Option<String>,
    /// The gateway's namespace on this cluster, always blocked (default: `gateway_namespace`).
    pub gateway_namespace: Option<String>,
    /// Guardrails for this cluster (default: the top-level `[guardrails]`).
    pub guardrails: Option<executor::Guardrails>,
}

impl ConfigFile {
    pub fn load(path: &std::path::Path) -> anyhow::Result<ConfigFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
        let config: ConfigFile =
            toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
        if let Some(mode) = &config.policy_mode {
            anyhow::ensure!(
                ["enforce", "ledger"].contains(&mode.as_str()),
                "config policy_mode must be enforce or ledger"
            );
        }
        if let Some(risk) = &config.risk {
            risk.validate().context("config [risk]")?;
        }
        if let Some(clusters) = &config.clusters {
            anyhow::ensure!(
                config.kubeconfig.is_none() && config.kube_context.is_none(),
                "config: use either [clusters.NAME] tables or kubeconfig/kube_context, not both"
            );
            for (name, cluster) in clusters {
                anyhow::ensure!(
                    is_cluster_name(name),
                    "config [clusters.{name}]: a cluster name is lowercase letters, digits and '-' (at most 63)"
                );
                anyhow::ensure!(
                    !(cluster.in_cluster && (cluster.kubeconfig.is_some() || cluster.context.is_some())),
                    "config [clusters.{name}]: in_cluster excludes kubeconfig and context"
                );
            }
        }
        if let Some(format) = &config.log_format {
            anyhow::ensure!(
                ["text", "json"].contains(&format.as_str()),
                "config log_format must be text or json"
            );
        }
        Ok(config)
    }
}

/// A cluster name: an RFC 1123 label, so it reads well in entries, metrics and scopes.
pub fn is_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether the argument `id` was given on the command line or in the environment (so the config file
/// must not override it).
pub fn given(matches: &clap::ArgMatches, id: &str) -> bool {
    // `value_source` insists on known ids; `ids()` lists those present (given or defaulted).
    matches.ids().any(|i| i.as_str() == id)
        && matches!(
            matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        )
}

/// Sets `target` from the config file's value unless the flag or its variable was given.
pub fn fill<T: Clone>(target: &mut T, from_file: &Option<T>, matches: &clap::ArgMatches, id: &str) {
    if let Some(value) = from_file
        && !given(matches, id)
    {
        *target = value.clone();
    }
}

/// [`fill`] for optional settings.
pub fn fill_option<T: Clone>(target: &mut Option<T>, from_file: &Option<T>, matches: &clap::ArgMatches, id: &str) {
    if from_file.is_some() && !given(matches, id) {
        *target = from_file.clone();
    }
}

impl DatabaseArgs {
    pub fn apply(&mut self, config: &ConfigFile, matches: &clap::ArgMatches) {
        fill(&mut self.data_dir, &config.data_dir, matches, "data_dir");
        fill_option(&mut self.database_url, &config.database_url, matches, "database_url");
    }
}

impl SigningKeyArgs {
    pub fn apply(&mut self, config: &ConfigFile, matches: &clap::ArgMatches) {
        fill_option(
            &mut self.signing_key_file,
            &config.signing_key_file,
            matches,
            "signing_key_file",
        );
    }
}

impl LogArgs {
    pub fn apply(&mut self, config: &ConfigFile, matches: &clap::ArgMatches) {
        fill(&mut self.log_format, &config.log_format, matches, "log_format");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_config_file_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docketops.example.toml");
        let config = super::ConfigFile::load(&path).unwrap();
        assert_eq!(config.policy_mode.as_deref(), Some("enforce"));
        let risk = config.risk.unwrap();
        assert_eq!(risk.rules.len(), 7);
        let mut shipped = policy::RiskConfig::default();
        shipped.rules.push(risk.rules[6].clone());
        assert_eq!(risk, shipped, "the example repeats the shipped rules");
        let guardrails = config.guardrails.unwrap();
        assert_eq!(guardrails.kinds[&executor::ActionType::Delete].len(), 3);
    }
}
