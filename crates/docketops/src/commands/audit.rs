//! `docketops audit reconcile`: the API server's audit log against the ledger, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use storage::{AppendConfig, Ledger};

use crate::keyfile;
use crate::settings::{DatabaseArgs, LogArgs, SigningKeyArgs};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an API server audit log against the ledger, both ways: every gateway execution must be in the
    /// log (matched by its Audit-ID), and every change in a governed namespace by anyone but the gateway's
    /// executors is reported as a bypass. Exit 0: clean; 1: bypasses or unmatched executions; 2: error.
    ///
    /// The log is the API server's JSON-lines audit log (--audit-log-path, level Metadata or more). With
    /// --record, each bypass is appended to the ledger as audit.bypass_detected (once: re-running records
    /// nothing twice).
    Reconcile(ReconcileArgs),
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The API server's audit log file.
    #[arg(long, value_name = "FILE")]
    pub audit_log: PathBuf,
    /// Which configured cluster the log belongs to.
    #[arg(long, default_value = executor::DEFAULT_CLUSTER, value_name = "NAME")]
    pub cluster: String,
    #[command(flatten)]
    pub accounts: crate::commands::kube::AccountArgs,
    /// Append each bypass to the ledger (needs the signing key).
    #[arg(long)]
    pub record: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub key: SigningKeyArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Guardrails (config file `[guardrails]`): which namespaces are governed.
    #[arg(skip)]
    pub guardrails: Option<executor::Guardrails>,
    /// The config file's clusters: a cluster's own release, gateway namespace and guardrails win.
    #[arg(skip)]
    pub clusters: std::collections::BTreeMap<String, crate::settings::ClusterConfig>,
    #[arg(skip)]
    pub default_cluster: Option<String>,
}

impl AuditCommand {
    pub fn apply_config(&mut self, config: &crate::settings::ConfigFile, matches: &clap::ArgMatches) {
        let AuditCommand::Reconcile(args) = self;
        args.database.apply(config, matches);
        args.key.apply(config, matches);
        args.log.apply(config, matches);
        crate::settings::fill(&mut args.accounts.release, &config.release, matches, "release");
        crate::settings::fill(
            &mut args.accounts.gateway_namespace,
            &config.gateway_namespace,
            matches,
            "gateway_namespace",
        );
        args.guardrails = config.guardrails.clone();
        args.clusters = config.clusters.clone().unwrap_or_default();
        args.default_cluster = config.default_cluster.clone();
    }
}

pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Reconcile(args) = command;
    args.log.init();
    let text = std::fs::read_to_string(&args.audit_log)
        .with_context(|| format!("cannot read the audit log {}", args.audit_log.display()))?;
    let (events, unreadable) = gateway::audit::parse_log(&text);
    if unreadable > 0 {
        tracing::warn!(unreadable, "audit log lines that are not audit events were skipped");
    }
    // The same settings `serve` uses for this cluster.
    let cluster = match (args.clusters.is_empty(), args.clusters.get(&args.cluster)) {
        (true, _) => crate::settings::ClusterConfig::default(),
        (false, Some(cluster)) => cluster.clone(),
        (false, None) => anyhow::bail!(
            "--cluster {:?} is not one of the configured clusters ({})",
            args.cluster,
            args.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    let gateway_namespace = cluster
        .gateway_namespace
        .clone()
        .unwrap_or_else(|| args.accounts.gateway_namespace.clone());
    let mut guardrails = cluster
        .guardrails
        .clone()
        .or_else(|| args.guardrails.clone())
        .unwrap_or_default();
    guardrails.gateway_namespace = gateway_namespace.clone();
    let accounts = executor::Accounts {
        release: cluster.release.clone().unwrap_or_else(|| args.accounts.release.clone()),
        gateway_namespace,
    };
    let policy = gateway::audit::AuditPolicy::new(&args.cluster, accounts, guardrails);
    let store = args.database.connect().await?;
    store.migrate().await?;
    // Entries recorded before clusters had names belong to the default cluster.
    let default_cluster = args.default_cluster.as_deref().unwrap_or(executor::DEFAULT_CLUSTER);
    let executions = gateway::audit::executions(&store, default_cluster).await?;
    let report = gateway::audit::reconcile(&policy, &events, &executions);
    let recorded = if args.record {
        let (key, key_lock) = keyfile::load_or_generate(&keyfile::source(&args.database, &args.key), &store).await?;
        let ledger = Ledger::start(store.clone(), key, AppendConfig::default());
        ledger.initialize().await?;
        drop(key_lock);
        Some(gateway::audit::record_bypasses(&store, &ledger, &policy, &events).await?)
    } else {
        None
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"reconciliation": report, "recorded": recorded}))?
        );
    } else {
        println!(
            "cluster {}: {} audit events; {} of {} executions in the log's time range matched ({} before the log)",
            report.cluster,
            report.events_read,
            report.executions_matched,
            report.executions_checked,
            report.executions_before_log
        );
        for execution in &report.unmatched_executions {
            println!(
                "UNMATCHED  {} (Audit-ID {}, executed {})",
                execution.action_id, execution.audit_id, execution.executed_at
            );
        }
        for event in &report.bypasses {
            let object = event.object_ref.clone();
            println!(
                "BYPASS     {} {} {}/{} by {} at {} (audit id {})",
                event.verb,
                object.as_ref().and_then(|o| o.resource.clone()).unwrap_or_default(),
                object.as_ref().and_then(|o| o.namespace.clone()).unwrap_or_default(),
                object.as_ref().and_then(|o| o.name.clone()).unwrap_or_default(),
                event.user.username,
                event.stage_timestamp.clone().unwrap_or_default(),
                event.audit_id
            );
        }
        if let Some(recorded) = &recorded {
            println!(
                "recorded {} bypasses in the ledger ({} were recorded before)",
                recorded.bypasses_recorded, recorded.bypasses_already_recorded
            );
        }
    }
    store.close().await;
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
