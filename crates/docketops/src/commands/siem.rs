//! `docketops siem`: the SIEM export (crates/siem) on the command line. See docs/siem.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use siem::{ExportConfig, Facility, Mode, SiemFormat, Sink, SinkOptions, SinkSpec};

use crate::settings::{ConfigFile, DatabaseArgs, LogArgs};

#[derive(Debug, Subcommand)]
pub enum SiemCommand {
    /// Stream ledger entries to a SIEM, resuming where the named export stopped.
    ///
    /// Each entry is sent whole (hashes, key id, signature), so the SIEM's copy stays verifiable
    /// (`docketops siem bundle`, then `docketops verify --bundle`). The export's position moves only
    /// after the sink acknowledged a batch: delivery is at-least-once, the entry id is the key to
    /// drop duplicates by. A receiver that is down is retried with backoff.
    Run(Box<RunArgs>),
    /// Show every named export's position and how far it is behind the ledger's head.
    Status {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move a named export's position, e.g. to send everything again to a SIEM that lost it.
    Reset {
        /// The export.
        #[arg(long)]
        name: String,
        /// The last entry that counts as delivered: the export resends from the next one [default: 0,
        /// everything].
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        to_seq: u64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Turn a SIEM's copy (received JSON lines, syslog lines or HEC events) into a bundle that
    /// `docketops verify --bundle` checks.
    ///
    /// Duplicates are dropped by entry id, entries ordered by seq, and the copy must hold every entry
    /// from seq 1 to its highest. Exit status: 0 written, 1 the copy is incomplete or holds two
    /// different entries for one seq, 2 usage or I/O error.
    Bundle {
        /// A file of received lines; repeat for several (rotated logs). Lines without an entry are skipped.
        #[arg(long = "from", value_name = "FILE", required = true)]
        sources: Vec<PathBuf>,
        /// The bundle to write (FILE.partial until complete).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// `[siem.exports.NAME]` of the config file: the settings of the export NAME (`siem run --name NAME`).
/// A flag wins over the file.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiemConfig {
    /// The exports by name.
    #[serde(default)]
    pub exports: std::collections::BTreeMap<String, SiemExportConfig>,
}

/// One export of `[siem.exports.NAME]`.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiemExportConfig {
    /// `--sink`.
    pub sink: Option<String>,
    /// `--format`: raw, ocsf or ecs.
    pub format: Option<SiemFormat>,
    /// `--hec-index`.
    pub hec_index: Option<String>,
    /// `--hec-source`.
    pub hec_source: Option<String>,
    /// `--hec-sourcetype`.
    pub hec_sourcetype: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where entries go: syslog://HOST:PORT (RFC 5424, octet-counted, TCP), syslog+tls://HOST:PORT,
    /// hec+https://HOST:PORT/services/collector/event (Splunk HEC; token in DOCKETOPS_HEC_TOKEN),
    /// file:PATH (JSON lines, fsynced) or stdout [default: `sink` of `[siem.exports.NAME]` in --config].
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,
    /// How each entry is written: raw (its export-bundle line), ocsf (an OCSF 1.3.0 API Activity event) or
    /// ecs (an Elastic Common Schema document); ocsf and ecs carry the whole entry too, so the copy stays
    /// verifiable [default: raw].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<SiemFormat>,
    /// HEC: the index of events [default: the collector's default index for the token].
    #[arg(long, value_name = "INDEX")]
    pub hec_index: Option<String>,
    /// HEC: the source of events [default: docketops].
    #[arg(long, value_name = "SOURCE")]
    pub hec_source: Option<String>,
    /// HEC: the sourcetype of events [default: docketops:ledger, docketops:ocsf or docketops:ecs, by format].
    #[arg(long, value_name = "SOURCETYPE")]
    pub hec_sourcetype: Option<String>,
    /// The export's name: its position is kept in the database under it. One exporter per name.
    #[arg(long)]
    pub name: String,
    /// Entries per write or request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Export up to the ledger's head and exit (cron, tests) instead of following new entries.
    #[arg(long, conflicts_with = "follow")]
    pub once: bool,
    /// Keep following new entries until stopped (SIGTERM, Ctrl-C); the default.
    #[arg(long)]
    pub follow: bool,
    /// Seconds between looks for new entries when caught up.
    #[arg(long, default_value = "1", value_name = "SECONDS", value_parser = seconds)]
    pub poll_interval: Duration,
    /// PEM CA certificates to trust for syslog+tls and hec+https, instead of the built-in roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM chain) for syslog+tls receivers that authenticate senders.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Syslog facility, by name (audit, auth, local0 … local7, …) or number.
    #[arg(long, default_value = "audit")]
    pub facility: String,
    /// The HOSTNAME of syslog messages and the host of HEC events [default: this machine's name].
    #[arg(long)]
    pub hostname: Option<String>,
    /// Syslog: seconds a written batch must stay on a healthy connection before it counts as delivered
    /// (plain syslog has no acknowledgement; what was not settled is resent after a reconnect).
    #[arg(long, default_value = "2", value_name = "SECONDS", value_parser = seconds)]
    pub settle: Duration,
    /// Longest wait between retries (the wait doubles from 0.5 s).
    #[arg(long, default_value = "30", value_name = "SECONDS", value_parser = seconds)]
    pub max_backoff: Duration,
    /// Stop with an error when deliveries have failed for this long [default: retry forever].
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub give_up_after: Option<Duration>,
    /// Do not apply database migrations (the export_cursors table must exist).
    #[arg(long)]
    pub no_migrate: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds"))
}

impl RunArgs {
    /// Fills what no flag gave from `[siem.exports.NAME]`.
    fn apply_export_config(&mut self, config: &ConfigFile) {
        let Some(export) = config.siem.as_ref().and_then(|siem| siem.exports.get(&self.name)) else {
            return;
        };
        let fill = |flag: &mut Option<String>, file: &Option<String>| {
            if flag.is_none() {
                flag.clone_from(file);
            }
        };
        // The file's HEC fields go with the file's sink: a --sink naming another one leaves them out.
        let files_sink = self.sink.is_none() || self.sink == export.sink;
        fill(&mut self.sink, &export.sink);
        if files_sink {
            fill(&mut self.hec_index, &export.hec_index);
            fill(&mut self.hec_source, &export.hec_source);
            fill(&mut self.hec_sourcetype, &export.hec_sourcetype);
        }
        self.format = self.format.or(export.format);
    }
}

impl SiemCommand {
    pub fn apply_config(&mut self, config: &ConfigFile, matches: &clap::ArgMatches) {
        match self {
            SiemCommand::Run(args) => {
                args.database.apply(config, matches);
                args.log.apply(config, matches);
                args.apply_export_config(config);
            }
            SiemCommand::Status { database, .. } | SiemCommand::Reset { database, .. } => {
                database.apply(config, matches)
            }
            SiemCommand::Bundle { .. } => {}
        }
    }
}

pub async fn run(command: SiemCommand) -> anyhow::Result<ExitCode> {
    match command {
        SiemCommand::Run(args) => export(*args).await,
        SiemCommand::Status { database, json } => status(database, json).await,
        SiemCommand::Reset { name, to_seq, database } => reset(&name, to_seq, database).await,
        SiemCommand::Bundle { sources, out } => bundle(sources, out).await,
    }
}

async fn export(args: RunArgs) -> anyhow::Result<ExitCode> {
    args.log.init();
    siem::validate_name(&args.name)?;
    let Some(sink) = &args.sink else {
        anyhow::bail!(
            "no sink for export {:?}: give --sink, or `sink` in [siem.exports.{}] of --config",
            args.name,
            args.name
        );
    };
    let spec: SinkSpec = sink.parse()?;
    let options = SinkOptions {
        ca_file: args.ca.clone(),
        client_identity: args.client_cert.clone().zip(args.client_key.clone()),
        hec_token: std::env::var("DOCKETOPS_HEC_TOKEN").ok(),
        hostname: args.hostname.clone().unwrap_or_else(siem::local_hostname),
        facility: args.facility.parse::<Facility>().map_err(anyhow::Error::msg)?,
        settle: args.settle,
        format: args.format.unwrap_or_default(),
        hec_index: args.hec_index.clone(),
        hec_source: args.hec_source.clone(),
        hec_sourcetype: args.hec_sourcetype.clone(),
        ..SinkOptions::default()
    };
    let mut sink = Sink::open(&spec, &options).await?;
    let store = args.database.connect_existing().await?;
    if !args.no_migrate {
        store.migrate().await.context("applying migrations")?;
    }
    let config = ExportConfig {
        name: args.name.clone(),
        batch: args.batch,
        mode: if args.once { Mode::Once } else { Mode::Follow },
        poll_interval: args.poll_interval,
        max_backoff: args.max_backoff,
        give_up_after: args.give_up_after,
    };
    tracing::info!(export = args.name.as_str(), sink = %spec, format = %options.format, database = %args.database.describe(), "SIEM export");
    let report = siem::run_export(&store, &mut sink, &config, super::shutdown_signal()).await;
    store.close().await;
    let report = report?;
    eprintln!(
        "export {}: delivered up to seq {} to {spec} (resumed after seq {}, {} retries)",
        report.name, report.position, report.resumed_after, report.retries
    );
    Ok(ExitCode::SUCCESS)
}

async fn status(database: DatabaseArgs, json: bool) -> anyhow::Result<ExitCode> {
    let store = database.connect_existing().await?;
    let head = store.head().await?.map_or(0, |entry| entry.seq as i64);
    let cursors = store
        .export_cursors()
        .await
        .context("reading export positions (was `docketops migrate` run?)")?;
    if json {
        let exports: Vec<_> = cursors
            .iter()
            .map(|c| {
                serde_json::json!({"name": c.name, "last_seq": c.last_seq, "last_entry_id": c.last_entry_id,
                                   "updated_at": c.updated_at, "behind": (head - c.last_seq).max(0)})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"head_seq": head, "exports": exports}))?
        );
    } else {
        println!("ledger head: seq {head}");
        if cursors.is_empty() {
            println!("no exports yet");
        }
        for c in &cursors {
            println!(
                "{}: delivered up to seq {}, {} behind, updated {}",
                c.name,
                c.last_seq,
                (head - c.last_seq).max(0),
                c.updated_at
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn reset(name: &str, to_seq: u64, database: DatabaseArgs) -> anyhow::Result<ExitCode> {
    siem::validate_name(name)?;
    let store = database.connect_existing().await?;
    store.migrate().await.context("applying migrations")?;
    let seq = i64::try_from(to_seq).context("--to-seq is too large")?;
    let entry_id = if seq == 0 {
        None
    } else {
        let entry = store
            .entries_after(seq - 1, 1)
            .await?
            .into_iter()
            .find(|entry| entry.seq == to_seq)
            .with_context(|| format!("the ledger has no entry at seq {to_seq}"))?;
        Some(entry.id)
    };
    store.set_export_cursor(name, seq, entry_id.as_deref()).await?;
    store.close().await;
    eprintln!("export {name} will send again from seq {}", to_seq + 1);
    Ok(ExitCode::SUCCESS)
}

async fn bundle(sources: Vec<PathBuf>, out: PathBuf) -> anyhow::Result<ExitCode> {
    let mut partial = out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = partial.clone();
    let result = tokio::task::spawn_blocking(move || siem::bundle::build_bundle_file(&sources, &written)).await?;
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            if error.is_invalid_copy() {
                eprintln!("error: {error}");
                return Ok(ExitCode::from(1));
            }
            return Err(error.into());
        }
    };
    std::fs::rename(&partial, &out).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "wrote {} entries to {}{} ({} duplicates dropped, {} lines without an entry skipped); check it with \
         `docketops verify --bundle {}`",
        summary.entries,
        out.display(),
        summary
            .head
            .map(|h| format!(" (head seq {} {})", h.seq, h.chain_hash))
            .unwrap_or_default(),
        summary.duplicates,
        summary.skipped_lines,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: SiemCommand,
    }

    fn run_args(args: &[&str], config: &ConfigFile) -> RunArgs {
        let matches = <Cli as clap::CommandFactory>::command().get_matches_from(args);
        let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        cli.command.apply_config(config, &matches);
        match cli.command {
            SiemCommand::Run(args) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_export_takes_its_settings_from_its_table_and_flags_win() {
        let config: ConfigFile = toml::from_str(
            r#"
            [siem.exports.soc]
            sink = "hec+https://splunk:8088"
            format = "ocsf"
            hec_index = "security"
            hec_sourcetype = "custom:st"
            "#,
        )
        .unwrap();
        let args = run_args(&["x", "run", "--name", "soc"], &config);
        assert_eq!(args.sink.as_deref(), Some("hec+https://splunk:8088"));
        assert_eq!(args.format, Some(SiemFormat::Ocsf));
        assert_eq!(args.hec_index.as_deref(), Some("security"));
        assert_eq!(args.hec_source, None);
        let args = run_args(
            &[
                "x",
                "run",
                "--name",
                "soc",
                "--format",
                "ecs",
                "--sink",
                "stdout",
                "--hec-index",
                "main",
            ],
            &config,
        );
        assert_eq!(args.format, Some(SiemFormat::Ecs));
        assert_eq!(args.sink.as_deref(), Some("stdout"));
        assert_eq!(args.hec_index.as_deref(), Some("main"));
        let other = run_args(&["x", "run", "--name", "archive"], &config);
        assert_eq!((other.sink, other.format), (None, None));
        assert!(toml::from_str::<ConfigFile>("[siem.exports.soc]\nformat = \"cef\"\n").is_err());
        assert!(toml::from_str::<ConfigFile>("[siem.exports.soc]\nindex = \"x\"\n").is_err());
    }
}
