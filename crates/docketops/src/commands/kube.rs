//! `docketops kube`: the executor's Kubernetes side. `rbac` prints the manifests that give the gateway
//! exactly the rights it needs; `check` proves, against a real cluster, that they are in place.

use domain::ActionType;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use executor::guardrails::Guardrails;
use executor::{
    Access, Action, ActionRequest, CallContext, Executor, ExecutorOptions, KubeConnection, KubeSource, Scope,
};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum KubeCommand {
    /// Print the RBAC manifests (a JSON `List`; `kubectl apply -f` takes it) for the gateway's service
    /// account and the executor accounts of each governed namespace.
    ///
    /// The gateway may only impersonate `<release>-reader` and `<release>-operator` in the governed
    /// namespaces and `<release>-cluster-reader` (Namespaces and Nodes); it has no rights of its own.
    Rbac {
        #[command(flatten)]
        accounts: AccountArgs,
        /// A namespace the gateway governs (repeat for several).
        #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE", required = true)]
        namespaces: Vec<String>,
    },
    /// As a cluster administrator (your own kubeconfig): create the gateway's and the governed namespaces
    /// if missing and apply the RBAC of `docketops kube rbac` (server-side apply), for clusters without kubectl.
    Install {
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        accounts: AccountArgs,
        #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE", required = true)]
        namespaces: Vec<String>,
    },
    /// As a cluster administrator: print a kubeconfig for the gateway's service account with a fresh token
    /// (TokenRequest), to run the gateway outside the cluster (`docketops serve --kubeconfig FILE`).
    GatewayKubeconfig {
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        accounts: AccountArgs,
        /// Token lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        expiration: u32,
    },
    /// Connect with the gateway's Kubernetes credentials and check that the executor accounts work:
    /// a LIST as the reader of each namespace, and of Namespaces as the cluster reader.
    ///
    /// Exit status: 0 all checks passed, 1 a check failed (the reason is printed), 2 usage or I/O error.
    Check {
        #[command(flatten)]
        kube: KubeArgs,
        #[command(flatten)]
        accounts: AccountArgs,
        /// A governed namespace to check (repeat for several).
        #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE", required = true)]
        namespaces: Vec<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct AccountArgs {
    /// Prefix of every account and role name (like a Helm release name).
    #[arg(long, env = "DOCKETOPS_KUBE_RELEASE", default_value = "docketops")]
    pub release: String,
    /// The namespace the gateway runs in (never governed).
    #[arg(long, env = "DOCKETOPS_GATEWAY_NAMESPACE", default_value = "docketops")]
    pub gateway_namespace: String,
}

/// Where the gateway's Kubernetes credentials come from.
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// Kubeconfig file (default: $KUBECONFIG, which may list several files, then ~/.kube/config, then the
    /// in-cluster account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its current context).
    #[arg(long, env = "DOCKETOPS_KUBE_CONTEXT", value_name = "NAME")]
    pub kube_context: Option<String>,
    /// Use the pod's service account, ignoring any kubeconfig.
    #[arg(long, conflicts_with_all = ["kubeconfig", "kube_context"])]
    pub in_cluster: bool,
    /// Limit for one Kubernetes API call, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub kube_timeout: u64,
}

impl KubeArgs {
    pub fn source(&self) -> KubeSource {
        if self.in_cluster {
            KubeSource::InCluster
        } else if self.kubeconfig.is_some() || self.kube_context.is_some() {
            KubeSource::Kubeconfig {
                path: self.kubeconfig.clone(),
                context: self.kube_context.clone(),
            }
        } else {
            KubeSource::Infer
        }
    }
}

/// Operator rights in kube-system or in the gateway's own namespace would undo the guardrails.
fn check_governable(accounts: &AccountArgs, namespaces: &[String]) -> anyhow::Result<()> {
    let guardrails = Guardrails {
        gateway_namespace: accounts.gateway_namespace.clone(),
        ..Guardrails::default()
    };
    for namespace in namespaces {
        executor::action::validate_namespace(namespace).map_err(|e| anyhow::anyhow!("--namespace: {e}"))?;
        guardrails
            .check_namespace(namespace)
            .map_err(|e| anyhow::anyhow!("--namespace {namespace}: {}; it cannot be governed", e.message))?;
    }
    Ok(())
}

fn accounts_of(args: AccountArgs) -> executor::Accounts {
    executor::Accounts {
        release: args.release,
        gateway_namespace: args.gateway_namespace,
    }
}

pub async fn run(command: KubeCommand) -> anyhow::Result<ExitCode> {
    match command {
        KubeCommand::Install {
            kube,
            accounts,
            namespaces,
        } => {
            check_governable(&accounts, &namespaces)?;
            let connection = KubeConnection::connect(&kube.source(), Duration::from_secs(kube.kube_timeout)).await?;
            for applied in executor::setup::install(&connection, &accounts_of(accounts), &namespaces).await? {
                println!("applied {applied}");
            }
            Ok(ExitCode::SUCCESS)
        }
        KubeCommand::GatewayKubeconfig {
            kube,
            accounts,
            expiration,
        } => {
            let connection = KubeConnection::connect(&kube.source(), Duration::from_secs(kube.kube_timeout)).await?;
            let config = executor::setup::gateway_kubeconfig(&connection, &accounts_of(accounts), expiration).await?;
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(ExitCode::SUCCESS)
        }
        KubeCommand::Rbac { accounts, namespaces } => {
            check_governable(&accounts, &namespaces)?;
            let accounts = executor::Accounts {
                release: accounts.release,
                gateway_namespace: accounts.gateway_namespace,
            };
            let list = json!({"apiVersion": "v1", "kind": "List", "items": accounts.manifests(&namespaces)});
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(ExitCode::SUCCESS)
        }
        KubeCommand::Check {
            kube,
            accounts,
            namespaces,
        } => check(kube, accounts, namespaces).await,
    }
}

async fn check(kube: KubeArgs, accounts: AccountArgs, namespaces: Vec<String>) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs(kube.kube_timeout);
    let connection = KubeConnection::connect(&kube.source(), timeout).await?;
    let guardrails = Guardrails {
        gateway_namespace: accounts.gateway_namespace.clone(),
        ..Guardrails::default()
    };
    let options = ExecutorOptions {
        call_timeout: timeout,
        ..ExecutorOptions::default()
    };
    let executor = Executor::new(connection, guardrails, &accounts.release, options);
    let context = CallContext {
        identity: "docketops-kube-check".into(),
        action_id: "kube-check".into(),
        audit_id: format!("kube-check-{}", std::process::id()),
    };
    let scopes = [Scope::new(&["*"], Access::Read, &["*"])];
    let mut probes: Vec<ActionRequest> = namespaces
        .iter()
        .map(|ns| list_request(Some(ns.clone()), "ConfigMap"))
        .collect();
    probes.push(list_request(None, "Namespace"));
    let mut failed = false;
    for request in probes {
        let action = Action::from_request(&request)?;
        let place = action.namespace.clone().unwrap_or_else(|| "cluster".into());
        match executor.read(&context, &action, &scopes).await {
            Ok(result) => println!("ok      {place}: LIST {} as {}", action.kind, result.executor_account),
            Err(error) => {
                failed = true;
                println!("failed  {place}: LIST {}: {error}", action.kind);
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn list_request(namespace: Option<String>, kind: &str) -> ActionRequest {
    ActionRequest {
        action_type: ActionType::List.as_str().into(),
        namespace,
        resource_kind: kind.into(),
        resource_name: None,
        parameters: serde_json::Map::from_iter([("limit".to_owned(), json!(1))]),
        justification: None,
        cluster: None,
        dry_run: false,
    }
}
