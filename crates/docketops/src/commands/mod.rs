pub mod apikey;
pub mod audit;
pub mod export;
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
