//! SIEM export: a durable, resumable stream of ledger entries to syslog (RFC 5424 over TCP or TLS,
//! octet-counted framing of RFC 6587), a Splunk HTTP Event Collector, or JSON lines (a file or stdout).
//!
//! Every message carries the whole entry exactly as an export bundle holds it (hashes, key id,
//! signature), so the SIEM's copy stays verifiable: [`bundle::build_bundle`] turns received lines back
//! into a bundle that `docketops verify --bundle` checks. The position of each named export lives in
//! the database (`export_cursors`) and moves only after the sink acknowledged a batch: delivery is
//! at-least-once, and the entry id (in every message) is the key to drop duplicates by. See
//! `docs/siem.md`.

#![warn(missing_docs)]

pub mod bundle;
mod export;
pub mod format;
pub mod hec;
mod lines;
mod sink;
pub mod syslog;

pub use export::{ExportConfig, ExportError, ExportReport, Mode, run_export, validate_name};
pub use format::{ActionTarget, SiemFormat, UnknownFormat};
pub use sink::{Position, Sink, SinkConfigError, SinkError, SinkOptions, SinkSpec};
pub use syslog::Facility;

/// This machine's host name (for the syslog HOSTNAME field and the HEC `host`), `-` if unknown.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "-".to_string())
}
