pub mod api;
pub mod apikey;
pub mod audit;
mod background;
pub mod budget;
pub mod export;
pub mod freeze;
pub mod identities;
pub mod keys;
pub mod kube;
pub mod ledger;
pub mod mcp;
pub mod policy;
pub mod seed;
pub mod serve;
pub mod siem;
pub mod transparency;
pub mod trust;
pub mod verify;
mod verify_tlog;
pub mod witness;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on stderr; invisible when stderr is not a terminal (CI, pipes) or when `quiet`.
pub fn progress_bar(total: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {human_pos}/{human_len} entries ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Resolves on Ctrl-C or SIGTERM (Kubernetes stopping a pod or sidecar), for a graceful shutdown.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
