//! `docketops budget`: an identity's own blast-radius budget from a terminal, through a gateway's API with a
//! person's admin key: the same checks and `budget.set` entries as `PUT`/`DELETE
//! /api/v1/identities/{id}/budget`. `show` prints its own limits and the configured ones that apply, with
//! their usage.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::api::{ApiClient, GatewayArgs};

/// Set, show or clear an identity's own budget.
#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Give an identity limits of its own (replacing any it had); they apply besides the configured budgets,
    /// and the strictest wins.
    ///
    /// Examples:
    ///   docketops budget set --identity agt_0193… --window 600 --mutations 10 --deletes 2 --reason "new agent"
    ///   docketops budget set --identity agt_0193… --window 600 --deletes 2 \
    ///       --limit window=86400,mutations=200 --reason "incident 42"
    Set(SetArgs),
    /// Show an identity's own limits and the configured ones that apply, with their usage now.
    Show(ShowArgs),
    /// Remove an identity's own limits: the configured budgets alone apply again.
    Clear(ClearArgs),
}

/// `docketops budget set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The identity (agt_…, usr_…).
    #[arg(long)]
    pub identity: String,
    /// The window of the limit given by --mutations, --deletes, --objects and --replicas, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub window: Option<u64>,
    /// At most this many mutations within the window.
    #[arg(long, requires = "window")]
    pub mutations: Option<i64>,
    /// At most this many deletes within the window.
    #[arg(long, requires = "window")]
    pub deletes: Option<i64>,
    /// At most this many distinct objects changed within the window.
    #[arg(long, requires = "window")]
    pub objects: Option<i64>,
    /// At most this much replica change (absolute, added up) within the window.
    #[arg(long, requires = "window")]
    pub replicas: Option<i64>,
    /// A further limit, e.g. `window=86400,mutations=200,deletes=10` (repeatable).
    #[arg(long = "limit", value_name = "window=S,COUNTER=N,…")]
    pub limits: Vec<String>,
    /// Why (recorded in the ledger).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// `docketops budget show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The identity (agt_…, usr_…).
    #[arg(long)]
    pub identity: String,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// `docketops budget clear`.
#[derive(Debug, Args)]
pub struct ClearArgs {
    /// The identity (agt_…, usr_…).
    #[arg(long)]
    pub identity: String,
    /// Why (recorded in the ledger).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

impl SetArgs {
    /// The limits as the API spells them: the one of the flags, then each `--limit`.
    fn limits(&self) -> anyhow::Result<Vec<Value>> {
        let mut limits = Vec::new();
        if let Some(window) = self.window {
            let mut limit = Map::new();
            limit.insert("window_seconds".into(), json!(window));
            let counters = [
                ("mutations", self.mutations),
                ("deletes", self.deletes),
                ("objects", self.objects),
                ("replicas", self.replicas),
            ];
            for (name, value) in counters {
                if let Some(value) = value {
                    limit.insert(name.into(), json!(value));
                }
            }
            limits.push(Value::Object(limit));
        }
        for text in &self.limits {
            limits.push(parse_limit(text)?);
        }
        if limits.is_empty() {
            bail!("give a limit: --window with --mutations, --deletes, --objects or --replicas, or --limit");
        }
        Ok(limits)
    }
}

/// `window=600,mutations=10` as the API's limit (the gateway checks the values).
fn parse_limit(text: &str) -> anyhow::Result<Value> {
    let mut limit = Map::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--limit {text:?}: expected NAME=NUMBER pairs"))?;
        let name = match name.trim() {
            "window" | "window_seconds" => "window_seconds",
            name @ ("mutations" | "deletes" | "objects" | "replicas") => name,
            other => bail!("--limit {text:?}: {other:?} is none of window, mutations, deletes, objects, replicas"),
        };
        let value: i64 = value
            .trim()
            .parse()
            .with_context(|| format!("--limit {text:?}: {name} is not a whole number"))?;
        limit.insert(name.into(), json!(value));
    }
    if !limit.contains_key("window_seconds") {
        bail!("--limit {text:?}: needs window=SECONDS");
    }
    Ok(Value::Object(limit))
}

pub async fn run(command: BudgetCommand) -> anyhow::Result<ExitCode> {
    let answer = match command {
        BudgetCommand::Set(args) => {
            let body = json!({"limits": args.limits()?, "reason": args.reason});
            let client = client(&args.gateway, &args.identity)?;
            client.send(reqwest::Method::PUT, Some(body)).await?
        }
        BudgetCommand::Show(args) => {
            let client = client(&args.gateway, &args.identity)?;
            client.send(reqwest::Method::GET, None).await?
        }
        BudgetCommand::Clear(args) => {
            let client = client(&args.gateway, &args.identity)?;
            let body = json!({"reason": args.reason});
            client.send(reqwest::Method::DELETE, Some(body)).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}

/// `/api/v1/identities/{id}/budget` of one gateway, with one key.
fn client(args: &GatewayArgs, identity: &str) -> anyhow::Result<ApiClient> {
    if identity.is_empty() || !identity.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        bail!("--identity {identity:?} is not an identity id (agt_…, usr_…)");
    }
    ApiClient::new(args, &format!("/api/v1/identities/{identity}/budget"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_flags_and_each_limit_option() {
        assert_eq!(
            parse_limit("window=86400, mutations=200,deletes=0").unwrap(),
            json!({"window_seconds": 86400, "mutations": 200, "deletes": 0})
        );
        assert!(parse_limit("mutations=5").is_err(), "a window is needed");
        assert!(parse_limit("window=5,per=identity").is_err());
        assert!(parse_limit("window=5,mutations=ten").is_err());
    }
}
