use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio::io::BufWriter;

use super::progress_bar;
use crate::settings::DatabaseArgs;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The bundle file to write ("-" for standard output). Written to FILE.partial and renamed when
    /// complete, so a cut-short export never looks finished.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = args.database.connect_read_only().await?;
    let total = store.head().await?.map_or(0, |head| head.seq);
    if args.out.as_os_str() == "-" {
        let mut out = BufWriter::new(tokio::io::stdout());
        storage::write_bundle(&store, &mut out, |_| {}).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut partial = args.out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let bar = progress_bar(total, "exporting", args.quiet);
    let summary = storage::write_bundle(&store, &mut out, |written| bar.set_position(written)).await?;
    bar.finish_and_clear();
    out.into_inner().sync_all().await?;
    tokio::fs::rename(&partial, &args.out).await?;
    eprintln!(
        "exported {} entries to {}{}",
        summary.entries,
        args.out.display(),
        summary
            .head
            .map(|h| format!(" (head seq {} {})", h.seq, h.chain_hash))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
