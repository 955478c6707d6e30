use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use server::apikey;
use storage::{AppendConfig, Ledger, Store};

use super::background;
use crate::keyfile;
use crate::settings::{DatabaseArgs, LogArgs, SigningKeyArgs};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "DOCKETOPS_LISTEN",
        default_value = "127.0.0.1:8443",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub key: SigningKeyArgs,
    /// TLS certificate chain (PEM); with --tls-key the gateway speaks HTTPS.
    #[arg(long, env = "DOCKETOPS_TLS_CERT", requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "DOCKETOPS_TLS_KEY", requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Do not apply database migrations at start (run `docketops migrate` yourself).
    #[arg(long)]
    pub no_migrate: bool,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub traces: crate::telemetry::TraceArgs,
    #[command(flatten)]
    pub kube: crate::commands::kube::KubeArgs,
    #[command(flatten)]
    pub accounts: crate::commands::kube::AccountArgs,
    /// Policy mode: `enforce` (a deny stops the action; an undefined or failed decision denies) or
    /// `ledger` (decisions are only recorded, as what policy would have done).
    #[arg(long, env = "DOCKETOPS_POLICY_MODE", default_value = "enforce", value_parser = ["enforce", "ledger"])]
    pub policy_mode: String,
    /// Rego files replacing the shipped default policy (repeat for several; package docketops.policy,
    /// rule `decision`).
    #[arg(long = "policy", value_name = "FILE", conflicts_with = "opa_url")]
    pub policies: Vec<PathBuf>,
    /// Rego files added to the shipped default policy, e.g. rendered policy templates (repeatable).
    #[arg(long = "policy-add", value_name = "FILE", conflicts_with_all = ["opa_url", "policies"])]
    pub policy_add: Vec<PathBuf>,
    /// An external OPA server instead of the embedded engine, e.g. http://127.0.0.1:8181.
    #[arg(long, env = "DOCKETOPS_OPA_URL", value_name = "URL")]
    pub opa_url: Option<String>,
    /// How long outcome verification waits for a rollout (observedGeneration, updated and available
    /// replicas), in seconds; 0 checks the spec only.
    #[arg(
        long,
        env = "DOCKETOPS_ROLLOUT_TIMEOUT",
        default_value_t = 120,
        value_name = "SECONDS"
    )]
    pub rollout_timeout: u64,
    /// A URL the gateway POSTs a JSON notification to when an action starts waiting for an approval
    /// (payload: docs/gateway.md).
    #[arg(long, env = "DOCKETOPS_APPROVAL_WEBHOOK", value_name = "URL")]
    pub approval_webhook: Option<String>,
    /// How long an action may wait for its approvals, in seconds, before it expires.
    #[arg(
        long,
        env = "DOCKETOPS_APPROVAL_WINDOW",
        default_value_t = 3600,
        value_name = "SECONDS"
    )]
    pub approval_window: u64,
    /// How long this gateway may miss heartbeats (it sends one every third of this) before another gateway on
    /// the same database recovers its unfinished actions; after a crash, the restarted gateway recovers
    /// them once this has passed.
    #[arg(long, env = "DOCKETOPS_INSTANCE_LEASE", default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub instance_lease: u64,
    /// The bearer token the API servers' audit webhook presents at POST /api/v1/audit/events (an auditor's
    /// API key works too).
    #[arg(
        long,
        env = "DOCKETOPS_AUDIT_WEBHOOK_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub audit_webhook_token: Option<String>,
    /// The longest a read-only watch through the kubectl proxy (`kubectl get -w`, `rollout status`) stays
    /// open, in seconds (1 to 3600: an open watch is not checked again for a suspension or a revoked key);
    /// a client's shorter `timeoutSeconds` wins.
    #[arg(long, env = "DOCKETOPS_MAX_WATCH", default_value_t = 300, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub max_watch: u64,
    /// The largest request body accepted (bigger ones get 413).
    #[arg(long, env = "DOCKETOPS_MAX_BODY_BYTES", default_value_t = server::DEFAULT_MAX_BODY_BYTES, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// The cluster an action without `cluster` goes to (needed with several `[clusters.NAME]`).
    #[arg(long, env = "DOCKETOPS_DEFAULT_CLUSTER", value_name = "NAME")]
    pub default_cluster: Option<String>,
    /// OpenID Connect sign-in (config file `[oidc]` only; DOCKETOPS_OIDC_CLIENT_SECRET overrides its secret).
    #[arg(skip)]
    pub oidc: Option<auth::OidcConfig>,
    /// LDAP sign-in (config file `[ldap]` only).
    #[arg(skip)]
    pub ldap: Option<auth::LdapConfig>,
    /// Several governed clusters (config file `[clusters.NAME]` only).
    #[arg(skip)]
    pub clusters: std::collections::BTreeMap<String, crate::settings::ClusterConfig>,
    /// Guardrails (config file `[guardrails]` only).
    #[arg(skip)]
    pub guardrails: Option<executor::Guardrails>,
    /// Risk rules (config file `[risk]` only; default: the shipped rules).
    #[arg(skip)]
    pub risk: Option<policy::RiskConfig>,
    /// Trust gates (config file `[trust]` only; default: none).
    #[arg(skip)]
    pub trust: Option<gateway::TrustGates>,
    /// Who besides admins may freeze (config file `[freeze]` only; default: admins only).
    #[arg(skip)]
    pub freeze: Option<gateway::FreezeSettings>,
    /// Circuit breakers and blast-radius budgets (config file `[breakers]`, `[budgets]` only; default: none).
    #[arg(skip)]
    pub breakers: Option<gateway::Breakers>,
    #[arg(skip)]
    pub budgets: Option<gateway::Budgets>,
    /// The transparency log's origin, the first line of every checkpoint and its signature's key name, e.g.
    /// `ledger.example.com/docketops`. Default: the origin stored at first start, else
    /// `docketops-ledger/<first 16 hex digits of entry 1's chain hash>`. Witnesses follow a log by origin:
    /// changing it later means re-configuring them.
    #[arg(long, env = "DOCKETOPS_LOG_ORIGIN", value_name = "ORIGIN")]
    pub log_origin: Option<String>,
    /// Serve the transparency log (checkpoint, tiles, proofs, receipts) without credentials; otherwise
    /// they need the auditor role (a public log is what lets anyone hold the operator to account).
    #[arg(long, env = "DOCKETOPS_PUBLIC_LOG")]
    pub public_log: bool,
    /// How often a new checkpoint is signed while entries arrive, in milliseconds.
    #[arg(long, env = "DOCKETOPS_CHECKPOINT_INTERVAL_MS", default_value_t = 1000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub checkpoint_interval_ms: u64,
    /// Witnesses (config file `[[witnesses]]` only).
    #[arg(skip)]
    pub witnesses: Vec<crate::settings::WitnessConfig>,
    /// Cosignatures a checkpoint needs to count as cosigned (default: a majority of the witnesses).
    #[arg(long, env = "DOCKETOPS_WITNESS_QUORUM", value_name = "N")]
    pub witness_quorum: Option<usize>,
    /// The decision's path on the OPA server.
    #[arg(
        long,
        env = "DOCKETOPS_OPA_PATH",
        default_value = "docketops/policy/decision",
        value_name = "PATH"
    )]
    pub opa_path: String,
}

impl ServeArgs {
    pub fn apply_config(&mut self, config: &crate::settings::ConfigFile, matches: &clap::ArgMatches) {
        use crate::settings::{fill, fill_option};
        fill(&mut self.listen, &config.listen, matches, "listen");
        self.database.apply(config, matches);
        self.key.apply(config, matches);
        self.log.apply(config, matches);
        fill_option(&mut self.tls_cert, &config.tls_cert, matches, "tls_cert");
        fill_option(&mut self.tls_key, &config.tls_key, matches, "tls_key");
        fill(&mut self.policy_mode, &config.policy_mode, matches, "policy_mode");
        fill(&mut self.policies, &config.policies, matches, "policies");
        fill_option(&mut self.opa_url, &config.opa_url, matches, "opa_url");
        fill(&mut self.opa_path, &config.opa_path, matches, "opa_path");
        fill_option(&mut self.kube.kubeconfig, &config.kubeconfig, matches, "kubeconfig");
        fill_option(
            &mut self.kube.kube_context,
            &config.kube_context,
            matches,
            "kube_context",
        );
        fill(&mut self.accounts.release, &config.release, matches, "release");
        fill(
            &mut self.accounts.gateway_namespace,
            &config.gateway_namespace,
            matches,
            "gateway_namespace",
        );
        fill(
            &mut self.rollout_timeout,
            &config.rollout_timeout,
            matches,
            "rollout_timeout",
        );
        fill(
            &mut self.max_body_bytes,
            &config.max_body_bytes,
            matches,
            "max_body_bytes",
        );
        fill_option(
            &mut self.default_cluster,
            &config.default_cluster,
            matches,
            "default_cluster",
        );
        self.clusters = config.clusters.clone().unwrap_or_default();
        self.oidc = config.oidc.clone();
        self.ldap = config.ldap.clone();
        self.guardrails = config.guardrails.clone();
        self.risk = config.risk.clone();
        self.trust = config.trust;
        self.freeze = config.freeze;
        self.breakers = config.breakers.clone();
        self.budgets = config.budgets.clone();
        fill(
            &mut self.instance_lease,
            &config.instance_lease,
            matches,
            "instance_lease",
        );
        fill(
            &mut self.approval_window,
            &config.approval_window,
            matches,
            "approval_window",
        );
        fill_option(
            &mut self.approval_webhook,
            &config.approval_webhook,
            matches,
            "approval_webhook",
        );
        fill_option(&mut self.log_origin, &config.log_origin, matches, "log_origin");
        fill_option(
            &mut self.traces.otlp_endpoint,
            &config.otlp_endpoint,
            matches,
            "otlp_endpoint",
        );
        fill(&mut self.public_log, &config.public_log, matches, "public_log");
        fill(
            &mut self.checkpoint_interval_ms,
            &config.checkpoint_interval_ms,
            matches,
            "checkpoint_interval_ms",
        );
        fill_option(
            &mut self.witness_quorum,
            &config.witness_quorum,
            matches,
            "witness_quorum",
        );
        self.witnesses = config.witnesses.clone().unwrap_or_default();
    }
}

/// The settings row holding the bootstrap admin key's digest.
const BOOTSTRAP_SETTING: &str = "bootstrap_admin_key_digest";

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let traces = args.traces.start()?;
    args.log.init_with_traces(traces.layer);
    if let Some(warning) = traces.warning {
        tracing::warn!("{warning}");
    }
    // Dropped on an early return too, which sends what is queued.
    let traces = traces.traces;
    let store = args.database.connect().await?;
    if !args.no_migrate {
        store.migrate().await.context("applying database migrations")?;
    }
    let (key, key_lock) = keyfile::load_or_generate(&keyfile::source(&args.database, &args.key), &store).await?;
    let signing_key = key.public_key();
    let checkpoint_key = ledger_core::LedgerSigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()?)?;
    let ledger = Ledger::start(store.clone(), key, AppendConfig::default());
    ledger.initialize().await.context("the ledger cannot be written")?;
    // The genesis entry (if any) names the key now: other processes may touch the key files again.
    drop(key_lock);
    let directory = gateway::Directory::new(store.clone(), ledger.clone());
    // Rows a crash left between insert and ledger entry were never effective; keep the tables tidy.
    let stale = gateway::now_minus(std::time::Duration::from_secs(300));
    let removed = store.remove_stale_unrecorded(&stale).await?;
    if removed > 0 {
        tracing::warn!(
            removed,
            "removed identity/key rows whose ledger entry was never written"
        );
    }
    bootstrap_admin(&store, &directory).await?;
    // Trust scores of entries written without them (an older release, another scoring version) before the
    // first action reads one; later ones by the periodic catch-up.
    if let Err(error) = super::trust::catch_up(&store).await {
        tracing::warn!(%error, "cannot bring the trust scores up to date; retrying every 30 s");
    }
    tokio::spawn(super::trust::catch_up_periodically(store.clone()));
    tokio::spawn(background::count_activity_periodically(store.clone()));
    let transparency = super::transparency::start(&args, &store, checkpoint_key).await?;
    let metrics = std::sync::Arc::new(gateway::Metrics::new(Some(ledger.clone())).with_budget_store(store.clone()));
    let pipeline = std::sync::Arc::new(pipeline(&args, &store, &ledger, &signing_key, metrics.clone()).await?);
    tokio::spawn(background::expire_approvals_periodically(
        pipeline.clone(),
        std::time::Duration::from_secs(args.approval_window),
    ));
    // The heartbeat first: this instance's new actions must never look orphaned.
    pipeline
        .heartbeat()
        .await
        .context("cannot register this gateway instance")?;
    tokio::spawn(background::heartbeat_periodically(pipeline.clone()));
    tokio::spawn(background::recover_periodically(pipeline.clone()));

    let state = server::AppState {
        store: store.clone(),
        ledger,
        signing_key,
        directory,
        pipeline,
        metrics,
        max_body_bytes: args.max_body_bytes,
        dashboard: server::dashboard::DashboardState::new(args.tls_cert.is_some()),
        identity_providers: identity_providers(&args)?,
        audit_webhook_token: args.audit_webhook_token.clone().filter(|t| !t.is_empty()),
        transparency,
    };
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(server::TlsFiles { cert, key }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener =
        std::net::TcpListener::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    // With port 0 the system picks one: log the real address (tests read it from here).
    let address = listener.local_addr()?;
    tracing::info!(
        database = %args.database.describe(),
        signing_key = %state.signing_key.key_id,
        "docketops gateway listening on {scheme}://{address}"
    );
    let owner = state.pipeline.owner().clone();
    server::serve(listener, server::router(state), tls, super::shutdown_signal())
        .await
        .with_context(|| format!("cannot serve on {address}"))?;
    // Actions keep running after their clients are gone: let them finish (or recovery takes them).
    let running = owner.running_tasks();
    if running > 0 {
        tracing::info!(running, "waiting for running actions to finish");
    }
    if !owner.drain(std::time::Duration::from_secs(60)).await {
        tracing::warn!("actions still running at shutdown; the next gateway will recover them");
    }
    store.close().await;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The action pipeline: the executor (if a Kubernetes configuration is found), the policy engine, the
/// shipped risk rules.
async fn pipeline(
    args: &ServeArgs,
    store: &Store,
    ledger: &Ledger,
    signing_key: &ledger_core::LedgerPublicKey,
    metrics: std::sync::Arc<gateway::Metrics>,
) -> anyhow::Result<gateway::Pipeline> {
    let clusters = clusters(args).await?;
    let engine = match &args.opa_url {
        Some(url) => policy::PolicyEngine::Opa(policy::OpaClient::new(
            url,
            &args.opa_path,
            std::time::Duration::from_secs(5),
        )?),
        None if !args.policy_add.is_empty() => {
            policy::PolicyEngine::Embedded(policy::EmbeddedEngine::default_policy_and_files(&args.policy_add)?)
        }
        None if args.policies.is_empty() => policy::PolicyEngine::Embedded(policy::EmbeddedEngine::default_policy()?),
        None => policy::PolicyEngine::Embedded(policy::EmbeddedEngine::from_files(&args.policies)?),
    };
    let mode = if args.policy_mode == "ledger" {
        gateway::PolicyMode::Ledger
    } else {
        gateway::PolicyMode::Enforce
    };
    tracing::info!(policy = %engine.describe(), mode = mode.as_str(), "policy engine ready");
    Ok(gateway::Pipeline::new(gateway::PipelineParts {
        store: store.clone(),
        ledger: ledger.clone(),
        signing_key: signing_key.clone(),
        clusters,
        policy: std::sync::Arc::new(engine),
        risk: args.risk.clone().unwrap_or_default(),
        mode,
        metrics,
        approval_window: std::time::Duration::from_secs(args.approval_window),
        trust_gates: args.trust.unwrap_or_default(),
        approval_webhook: args
            .approval_webhook
            .as_deref()
            .map(gateway::ApprovalWebhook::new)
            .transpose()?,
        instance_lease: std::time::Duration::from_secs(args.instance_lease),
        freeze: args.freeze.unwrap_or_default(),
        breakers: checked(args.breakers.clone().unwrap_or_default(), gateway::Breakers::validate)?,
        budgets: checked(args.budgets.clone().unwrap_or_default(), gateway::Budgets::validate)?,
    }))
}

/// The governed clusters: each `[clusters.NAME]` of the config file, or the one cluster of
/// `--kubeconfig`/`--kube-context` (or the inferred one) named `default`. Building a client makes no request,
/// so a cluster that is down at start fails only its own actions, later, with a clear error.
async fn clusters(args: &ServeArgs) -> anyhow::Result<gateway::Clusters> {
    let timeout = std::time::Duration::from_secs(args.kube.kube_timeout);
    let options = executor::ExecutorOptions {
        call_timeout: timeout,
        verify_timeout: std::time::Duration::from_secs(args.rollout_timeout.max(1)),
        wait_for_rollout: args.rollout_timeout > 0,
        max_watch: std::time::Duration::from_secs(args.max_watch),
        ..executor::ExecutorOptions::default()
    };
    let executor_for = |connection, name: &str, cluster: &crate::settings::ClusterConfig| {
        // The gateway's own namespace is always blocked, whatever the file says.
        let mut guardrails = cluster
            .guardrails
            .clone()
            .or_else(|| args.guardrails.clone())
            .unwrap_or_default();
        guardrails.gateway_namespace = cluster
            .gateway_namespace
            .clone()
            .unwrap_or_else(|| args.accounts.gateway_namespace.clone());
        let release = cluster.release.as_deref().unwrap_or(&args.accounts.release);
        std::sync::Arc::new(
            executor::Executor::new(connection, guardrails, release, options.clone()).with_cluster_name(name),
        )
    };
    if args.clusters.is_empty() {
        let name = args.default_cluster.as_deref().unwrap_or(executor::DEFAULT_CLUSTER);
        anyhow::ensure!(
            crate::settings::is_cluster_name(name),
            "--default-cluster {name:?}: a cluster name is lowercase letters, digits and '-'"
        );
        return Ok(
            match executor::KubeConnection::connect(&args.kube.source(), timeout).await {
                Ok(connection) => gateway::Clusters::single(executor_for(
                    connection,
                    name,
                    &crate::settings::ClusterConfig::default(),
                )),
                Err(error) => {
                    tracing::warn!(%error, "no Kubernetes cluster configured: actions will answer 503 until one is");
                    gateway::Clusters::none()
                }
            },
        );
    }
    anyhow::ensure!(
        args.kube.kubeconfig.is_none() && args.kube.kube_context.is_none() && !args.kube.in_cluster,
        "with [clusters.NAME] in the config file, name each cluster's kubeconfig there, not with --kubeconfig, \
         --kube-context or --in-cluster"
    );
    let mut executors: Vec<std::sync::Arc<dyn gateway::Cluster>> = Vec::new();
    for (name, cluster) in &args.clusters {
        let source = if cluster.in_cluster {
            executor::KubeSource::InCluster
        } else {
            executor::KubeSource::Kubeconfig {
                path: cluster.kubeconfig.clone(),
                context: cluster.context.clone(),
            }
        };
        let connection = executor::KubeConnection::connect(&source, timeout)
            .await
            .with_context(|| format!("cluster {name:?}"))?;
        executors.push(executor_for(connection, name, cluster));
        tracing::info!(cluster = %name, "cluster configured");
    }
    let default = match (&args.default_cluster, args.clusters.len()) {
        (Some(name), _) => name.clone(),
        (None, 1) => args.clusters.keys().next().cloned().unwrap_or_default(),
        (None, _) => anyhow::bail!(
            "several clusters are configured: name the one for actions without `cluster` with default_cluster"
        ),
    };
    gateway::Clusters::new(&default, executors).map_err(anyhow::Error::msg)
}

/// The OpenID Connect and LDAP providers of the config file; a mapping that names an unknown role is an
/// error here, at start, not a silent grant of nothing at sign-in.
fn identity_providers(args: &ServeArgs) -> anyhow::Result<server::IdentityProviders> {
    let check_roles = |what: &str, mappings: &[auth::GroupMapping]| -> anyhow::Result<()> {
        for mapping in mappings {
            for role in &mapping.roles {
                anyhow::ensure!(
                    gateway::Role::parse(role).is_some(),
                    "[{what}] group {:?}: unknown role {role:?} (roles: admin, operator, approver, auditor)",
                    mapping.group
                );
            }
            for scope in &mapping.scopes {
                scope
                    .validate()
                    .map_err(|e| anyhow::anyhow!("[{what}] group {:?}: {e}", mapping.group))?;
            }
        }
        Ok(())
    };
    let mut providers = server::IdentityProviders::default();
    if let Some(config) = &args.oidc {
        let mut config = config.clone();
        if let Ok(secret) = std::env::var("DOCKETOPS_OIDC_CLIENT_SECRET")
            && !secret.is_empty()
        {
            config.client_secret = Some(secret);
        }
        check_roles("oidc", &config.groups)?;
        tracing::info!(issuer = %config.issuer, client = %config.client_id, "OpenID Connect sign-in enabled");
        providers.oidc = Some(std::sync::Arc::new(auth::OidcProvider::new(config)?));
    }
    if let Some(config) = &args.ldap {
        check_roles("ldap", &config.groups)?;
        tracing::info!(url = %config.url, "LDAP sign-in enabled");
        providers.ldap = Some(std::sync::Arc::new(auth::LdapDirectory::new(config.clone())?));
    }
    Ok(providers)
}

/// The first admin: on a database without identities, an identity `bootstrap-admin` (roles admin and
/// auditor) is created with the key from DOCKETOPS_BOOTSTRAP_ADMIN_KEY, or with a generated key printed
/// once. Only the key's digest is stored (also in the `identity.created` entry).
async fn bootstrap_admin(store: &Store, directory: &gateway::Directory) -> anyhow::Result<()> {
    let given = std::env::var("DOCKETOPS_BOOTSTRAP_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if let Some(key) = &given {
        apikey::parse(key).context(
            "DOCKETOPS_BOOTSTRAP_ADMIN_KEY is not a DocketOps API key; make one with `docketops api-key generate --kind human`",
        )?;
    }
    // SPEC §6: only when no admin exists (identities made with `docketops identities` first do not count).
    if directory.admin_exists().await? {
        if given.is_some() {
            tracing::info!("DOCKETOPS_BOOTSTRAP_ADMIN_KEY not used: an admin exists already");
        }
        return Ok(());
    }
    // Several gateways may start on one fresh database at once: the first stored digest wins, and
    // every one of them creates the identity from that digest (the name is unique, so once).
    let digest = match store.setting(BOOTSTRAP_SETTING).await? {
        Some(digest) => digest,
        None => {
            let (key, generated) = match given {
                Some(key) => (key, false),
                None => (apikey::generate(apikey::KeyKind::Human), true),
            };
            // Printed before it is stored: a crash in between must not leave an admin key nobody has seen.
            if generated {
                println!("Bootstrap admin API key (shown once, store it now): {key}");
            }
            let digest = apikey::digest(&key);
            if !store.insert_setting_if_absent(BOOTSTRAP_SETTING, &digest).await? {
                if generated {
                    println!(
                        "(That key is not used: another gateway created the bootstrap admin key first; use its key.)"
                    );
                }
                store
                    .setting(BOOTSTRAP_SETTING)
                    .await?
                    .context("the bootstrap admin key vanished")?
            } else {
                digest
            }
        }
    };
    let admin = gateway::NewIdentity {
        name: "bootstrap-admin".into(),
        kind: gateway::IdentityKind::Human,
        roles: vec!["admin".into(), "auditor".into()],
        scopes: Vec::new(),
        groups: Vec::new(),
    };
    match directory.create_with_digest("system", admin, &digest, true).await {
        Ok((identity, _, _)) => tracing::info!(identity = %identity.id, "bootstrap admin identity created"),
        Err(gateway::GatewayError::Conflict(_)) => {}
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// A configuration part, refused with its own message when `validate` finds it wrong.
fn checked<T>(part: T, validate: impl Fn(&T) -> Result<(), String>) -> anyhow::Result<T> {
    validate(&part).map_err(|e| anyhow::anyhow!("config: {e}"))?;
    Ok(part)
}
