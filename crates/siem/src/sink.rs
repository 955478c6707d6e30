//! Where entries go: the sink URL, its options, and the [`Sink`] that sends batches and says which of
//! them the receiver has acknowledged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ledger_core::Entry;

use crate::format::{ActionTarget, Formatter, SiemFormat};
use crate::hec::HecSink;
use crate::lines::LinesSink;
use crate::syslog::{Facility, SyslogSink};

/// A parsed `--sink` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// `syslog://HOST:PORT` (plain TCP) or `syslog+tls://HOST:PORT`.
    Syslog {
        /// The receiver's host name or IP address (an IPv6 address without brackets).
        host: String,
        /// The receiver's TCP port.
        port: u16,
        /// `syslog+tls`: TLS over the TCP connection.
        tls: bool,
    },
    /// `hec+https://HOST:PORT/services/collector/event` (or `hec+http://` for a collector on loopback).
    Hec {
        /// The collector's endpoint without the `hec+` prefix (`/services/collector/event` when the URL
        /// names no path).
        url: url::Url,
    },
    /// `file:PATH`: JSON lines appended to a file.
    File(PathBuf),
    /// `stdout` (or `-`): JSON lines on standard output.
    Stdout,
}

const SINK_FORMS: &str = "use syslog://HOST:PORT, syslog+tls://HOST:PORT, \
                          hec+https://HOST:PORT/services/collector/event, file:PATH or stdout";

impl FromStr for SinkSpec {
    type Err = SinkConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| SinkConfigError::Invalid {
            sink: text.to_string(),
            message: format!("{why}; {SINK_FORMS}"),
        };
        if text == "stdout" || text == "-" {
            return Ok(SinkSpec::Stdout);
        }
        if let Some(path) = text.strip_prefix("file:") {
            // file:///abs/path, file:/abs/path and file:relative/path all name a path.
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(invalid("the file sink needs a path"));
            }
            return Ok(SinkSpec::File(PathBuf::from(path)));
        }
        let Some((scheme, _)) = text.split_once("://") else {
            return Err(invalid("unknown sink"));
        };
        match scheme {
            "syslog" | "syslog+tls" => {
                let url = url::Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
                let host = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| invalid("no host"))?;
                let port = url.port().ok_or_else(|| invalid("no port"))?;
                if !matches!(url.path(), "" | "/") || url.query().is_some() || !url.username().is_empty() {
                    return Err(invalid("a syslog sink is only HOST:PORT"));
                }
                // IPv6 literals come bracketed; the socket wants them bare.
                let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
                Ok(SinkSpec::Syslog {
                    host,
                    port,
                    tls: scheme == "syslog+tls",
                })
            }
            "hec+https" | "hec+http" => {
                let mut url = url::Url::parse(&text["hec+".len()..]).map_err(|e| invalid(&e.to_string()))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("no host"));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(invalid("the HEC token goes in DOCKETOPS_HEC_TOKEN, not in the URL"));
                }
                if matches!(url.path(), "" | "/") {
                    url.set_path("/services/collector/event");
                }
                Ok(SinkSpec::Hec { url })
            }
            _ => Err(invalid(&format!("unknown scheme {scheme:?}"))),
        }
    }
}

impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::Syslog { host, port, tls } => {
                let scheme = if *tls { "syslog+tls" } else { "syslog" };
                if host.contains(':') {
                    write!(f, "{scheme}://[{host}]:{port}")
                } else {
                    write!(f, "{scheme}://{host}:{port}")
                }
            }
            SinkSpec::Hec { url } => write!(f, "hec+{url}"),
            SinkSpec::File(path) => write!(f, "file:{}", path.display()),
            SinkSpec::Stdout => f.write_str("stdout"),
        }
    }
}

/// Settings of a sink besides its URL.
#[derive(Clone)]
pub struct SinkOptions {
    /// PEM CA certificates to trust instead of the built-in roots (syslog+tls, hec+https).
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key, both PEM (syslog+tls receivers that authenticate senders).
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// The HEC token (`Authorization: Splunk TOKEN`).
    pub hec_token: Option<String>,
    /// HOSTNAME of syslog messages and `host` of HEC events.
    pub hostname: String,
    /// The facility of syslog messages (default 13, log audit).
    pub facility: Facility,
    /// Syslog only: how long a written batch must stay on a healthy connection before it counts as
    /// delivered (plain syslog has no acknowledgement; see docs/siem.md).
    pub settle: Duration,
    /// Connecting and each HTTP request give up after this long.
    pub timeout: Duration,
    /// How each entry is written: its bundle line (`raw`), an OCSF event or an ECS document.
    pub format: SiemFormat,
    /// HEC: the `index` of events (None: the collector's default index for the token).
    pub hec_index: Option<String>,
    /// HEC: the `source` of events (None: `docketops`).
    pub hec_source: Option<String>,
    /// HEC: the `sourcetype` of events (None: the format's, see [`SiemFormat::default_sourcetype`]).
    pub hec_sourcetype: Option<String>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            ca_file: None,
            client_identity: None,
            hec_token: None,
            hostname: crate::local_hostname(),
            facility: Facility::default(),
            settle: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            format: SiemFormat::Raw,
            hec_index: None,
            hec_source: None,
            hec_sourcetype: None,
        }
    }
}

impl fmt::Debug for SinkOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkOptions")
            .field("ca_file", &self.ca_file)
            .field("client_identity", &self.client_identity)
            .field("hec_token", &self.hec_token.as_ref().map(|_| "<redacted>"))
            .field("hostname", &self.hostname)
            .field("facility", &self.facility)
            .field("settle", &self.settle)
            .field("timeout", &self.timeout)
            .field("format", &self.format)
            .field("hec_index", &self.hec_index)
            .field("hec_source", &self.hec_source)
            .field("hec_sourcetype", &self.hec_sourcetype)
            .finish()
    }
}

/// The last entry of a delivered batch: where the export's cursor may move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The entry's seq.
    pub seq: u64,
    /// The entry's id, stored with the cursor to notice a ledger replaced under the export.
    pub entry_id: String,
}

impl Position {
    pub(crate) fn of(entry: &Entry) -> Position {
        Position {
            seq: entry.seq,
            entry_id: entry.id.clone(),
        }
    }
}

/// A destination of entries. `send` writes a batch; `delivered` says how far the receiver has
/// acknowledged (at once for files, stdout and HEC; after the settle time for syslog).
#[derive(Debug)]
pub struct Sink {
    target: Target,
    formatter: Formatter,
}

#[derive(Debug)]
enum Target {
    /// Syslog over TCP or TLS: a batch counts as delivered once it stayed on a healthy connection for the
    /// settle time.
    Syslog(SyslogSink),
    /// A Splunk HTTP Event Collector: a batch counts as delivered once the collector answered 2xx.
    Hec(HecSink),
    /// JSON lines to a file (delivered once synced to disk) or to standard output (once flushed).
    Lines(LinesSink),
}

impl Sink {
    /// Checks the configuration (certificates, token, file) without contacting the receiver: a receiver
    /// that is down at start is retried like one that goes down later.
    pub async fn open(spec: &SinkSpec, options: &SinkOptions) -> Result<Sink, SinkConfigError> {
        if options.client_identity.is_some() && !matches!(spec, SinkSpec::Syslog { tls: true, .. }) {
            return Err(SinkConfigError::Invalid {
                sink: spec.to_string(),
                message: "a client certificate is only used by syslog+tls".into(),
            });
        }
        let hec_only = [&options.hec_index, &options.hec_source, &options.hec_sourcetype];
        if hec_only.iter().any(|field| field.is_some()) && !matches!(spec, SinkSpec::Hec { .. }) {
            return Err(SinkConfigError::Invalid {
                sink: spec.to_string(),
                message: "the HEC index, source and sourcetype are only used by hec+https and hec+http".into(),
            });
        }
        let target = match spec {
            SinkSpec::Syslog { host, port, tls } => {
                Target::Syslog(SyslogSink::new(host.clone(), *port, *tls, options)?)
            }
            SinkSpec::Hec { url } => Target::Hec(HecSink::new(url.clone(), options)?),
            SinkSpec::File(path) => Target::Lines(LinesSink::file(path).await?),
            SinkSpec::Stdout => Target::Lines(LinesSink::stdout()),
        };
        Ok(Sink {
            target,
            formatter: Formatter::new(options.format),
        })
    }

    /// The format the sink writes.
    pub fn format(&self) -> SiemFormat {
        self.formatter.format()
    }

    /// The actions of `entries` whose target the sink does not know (their `action.requested` entry went
    /// out before this run): look them up and [`remember`](Self::remember) them before sending. Always
    /// empty for the raw format.
    pub fn unknown_actions(&mut self, entries: &[Entry]) -> Vec<String> {
        self.formatter.unknown_actions(entries)
    }

    /// Remembers what action `action_id` is about (for the ocsf and ecs formats).
    pub fn remember(&mut self, action_id: String, target: ActionTarget) {
        self.formatter.remember(action_id, target);
    }

    /// Sends `entries` (consecutive, in seq order). An error leaves the sink to be [`reset`](Self::reset).
    pub async fn send(&mut self, entries: &[Entry]) -> Result<(), SinkError> {
        if entries.is_empty() {
            return Ok(());
        }
        let messages: Vec<String> = entries.iter().map(|entry| self.formatter.message(entry)).collect();
        match &mut self.target {
            Target::Syslog(sink) => sink.send(entries, &messages).await,
            Target::Hec(sink) => sink.send(entries, &messages).await,
            Target::Lines(sink) => sink.send(entries, &messages).await,
        }
    }

    /// The last entry the receiver has acknowledged since the previous call, if that moved. An error
    /// means entries sent since the last acknowledgement may be lost: reset and resend them.
    pub fn delivered(&mut self) -> Result<Option<Position>, SinkError> {
        match &mut self.target {
            Target::Syslog(sink) => sink.delivered(),
            Target::Hec(sink) => Ok(sink.delivered()),
            Target::Lines(sink) => Ok(sink.delivered()),
        }
    }

    /// How long until a sent batch may count as delivered (syslog's settle time); None when nothing waits.
    pub fn next_delivery_in(&self) -> Option<Duration> {
        match &self.target {
            Target::Syslog(sink) => sink.next_delivery_in(),
            Target::Hec(_) | Target::Lines(_) => None,
        }
    }

    /// Forgets what was sent and not acknowledged and drops the connection: the caller resends from its
    /// cursor.
    pub fn reset(&mut self) {
        match &mut self.target {
            Target::Syslog(sink) => sink.reset(),
            Target::Hec(sink) => sink.reset(),
            Target::Lines(sink) => sink.reset(),
        }
    }

    /// Ends the connection cleanly (TLS close_notify, TCP FIN).
    pub async fn close(&mut self) {
        if let Target::Syslog(sink) = &mut self.target {
            sink.close().await;
        }
    }
}

/// A sink that cannot be used as configured: fix the command line (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SinkConfigError {
    /// The sink URL is not one of the accepted forms, or an option does not fit the sink (a client
    /// certificate for anything but syslog+tls).
    #[error("invalid sink {sink:?}: {message}")]
    Invalid {
        /// The sink as given.
        sink: String,
        /// What is wrong with it.
        message: String,
    },
    /// An HEC sink has no token: [`SinkOptions::hec_token`] is missing or blank.
    #[error("the HEC sink needs its token in the environment variable DOCKETOPS_HEC_TOKEN")]
    MissingToken,
    /// A file the sink needs cannot be used: the CA file, the client certificate or key, or the output
    /// file of a `file:` sink.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// rustls refused the TLS settings (e.g. a client key it cannot use).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The HEC sink's HTTP client cannot be built; the message holds the causes too.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// An error and its causes on one line (for errors whose message leaves the causes out).
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

impl From<rustls::Error> for SinkConfigError {
    fn from(error: rustls::Error) -> Self {
        SinkConfigError::Tls(error.to_string())
    }
}

impl From<reqwest::Error> for SinkConfigError {
    fn from(error: reqwest::Error) -> Self {
        SinkConfigError::Http(with_causes(&error))
    }
}

impl SinkConfigError {
    pub(crate) fn file(path: &Path, message: impl fmt::Display) -> SinkConfigError {
        SinkConfigError::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// A failed send or a lost connection. Transient errors are retried with backoff; the others end the
/// export.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Connecting to a syslog receiver (TCP, then the TLS handshake) failed or timed out. Transient.
    #[error("cannot connect to {target}: {error}")]
    Connect {
        /// The receiver, as its sink URL.
        target: String,
        /// Why the connection failed.
        error: std::io::Error,
    },
    /// Writing a batch failed: to a syslog connection, or opening, writing or syncing the output file.
    /// Transient.
    #[error("sending to {target} failed: {error}")]
    Io {
        /// The receiver, as its sink URL (`file:PATH` for a file).
        target: String,
        /// Why the write failed.
        error: std::io::Error,
    },
    /// The syslog receiver closed the connection or it failed; what had not settled is sent again.
    /// Transient.
    #[error("the connection to {target} was lost: {reason}")]
    Disconnected {
        /// The receiver, as its sink URL.
        target: String,
        /// What the connection's read side saw (an end, or an error).
        reason: String,
    },
    /// The HEC collector answered with a status other than 2xx. Transient only for 408, 429 and 5xx.
    #[error("{target} answered HTTP {status}: {body}")]
    Http {
        /// The collector's URL.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body (at most 300 characters).
        body: String,
    },
    /// The HEC request got no answer (connection, TLS or timeout). Transient.
    /// `error` holds the whole chain of causes: reqwest's own message leaves out the connection's.
    #[error("request to {target} failed: {error}")]
    Request {
        /// The collector's URL.
        target: String,
        /// The error and its causes, on one line.
        error: String,
    },
    /// Writing to standard output failed (a closed pipe). Not transient.
    #[error("standard output is closed: {0}")]
    Stdout(std::io::Error),
}

impl SinkError {
    /// Whether retrying may help: network trouble, a receiver that is down or busy (HTTP 429, 5xx),
    /// a full disk. HTTP 4xx (a bad token, a refused event) and a closed stdout do not heal.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Connect { .. }
            | SinkError::Io { .. }
            | SinkError::Disconnected { .. }
            | SinkError::Request { .. } => true,
            SinkError::Http { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            SinkError::Stdout(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_urls_parse() {
        let parse = |s: &str| s.parse::<SinkSpec>();
        assert_eq!(
            parse("syslog://collector.example:514").unwrap(),
            SinkSpec::Syslog {
                host: "collector.example".into(),
                port: 514,
                tls: false
            }
        );
        assert_eq!(
            parse("syslog+tls://[::1]:6514").unwrap(),
            SinkSpec::Syslog {
                host: "::1".into(),
                port: 6514,
                tls: true
            }
        );
        assert_eq!(
            parse("syslog+tls://[::1]:6514").unwrap().to_string(),
            "syslog+tls://[::1]:6514"
        );
        let SinkSpec::Hec { url } = parse("hec+https://splunk:8088").unwrap() else {
            panic!()
        };
        assert_eq!(url.as_str(), "https://splunk:8088/services/collector/event");
        let SinkSpec::Hec { url } = parse("hec+http://127.0.0.1:9/services/collector/event").unwrap() else {
            panic!()
        };
        assert_eq!(url.as_str(), "http://127.0.0.1:9/services/collector/event");
        assert_eq!(
            parse("file:/var/log/x.jsonl").unwrap(),
            SinkSpec::File("/var/log/x.jsonl".into())
        );
        assert_eq!(
            parse("file:///var/log/x.jsonl").unwrap(),
            SinkSpec::File("/var/log/x.jsonl".into())
        );
        assert_eq!(parse("file:out.jsonl").unwrap(), SinkSpec::File("out.jsonl".into()));
        assert_eq!(parse("stdout").unwrap(), SinkSpec::Stdout);
        for bad in [
            "syslog://host",
            "syslog://:514",
            "syslog://host:514/path",
            "udp://host:514",
            "host:514",
            "file:",
            "hec+https://user:token@splunk:8088",
            "syslog://host:99999",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains("syslog://HOST:PORT"), "{bad}: {error}");
        }
    }

    #[test]
    fn only_network_trouble_and_busy_receivers_are_retried() {
        let http = |status| SinkError::Http {
            target: "t".into(),
            status,
            body: String::new(),
        };
        assert!(http(503).is_transient() && http(500).is_transient() && http(429).is_transient());
        assert!(!http(400).is_transient() && !http(401).is_transient() && !http(403).is_transient());
        assert!(!SinkError::Stdout(std::io::ErrorKind::BrokenPipe.into()).is_transient());
    }
}
