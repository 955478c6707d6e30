//! Syslog: RFC 5424 messages, octet-counted (RFC 6587 §3.4.1) over TCP or TLS (RFC 5425).
//!
//! ```text
//! 342 <110>1 2026-01-01T00:00:01.250000Z gw-1 docketops - ledger.note [docketops@32473 seq="2" id="evt_…"] {"seq":2,…}
//! ```
//!
//! Plain syslog has no acknowledgement: a write that succeeded only reached the local kernel, and a
//! receiver that dies loses what it had not yet processed. So a batch counts as delivered only after it
//! has stayed on a healthy connection for the settle time: the receiver never sends anything, so
//! the connection's read side seeing an end or an error means it closed, and everything not yet
//! settled is sent again on the next connection. TCP_USER_TIMEOUT (below the settle time) turns bytes
//! the peer's TCP never acknowledged into a failed connection too.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_core::Entry;
use ledger_core::bundle::entry_line;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::sink::{Position, SinkConfigError, SinkError, SinkOptions};

/// The SD-ID of the structured data element: `docketops` at private enterprise number 32473, the
/// number RFC 5612 reserves for examples and documentation (a registered PEN would replace it).
pub const SD_ID: &str = "docketops@32473";
/// APP-NAME of every message.
pub const APP_NAME: &str = "docketops";
/// Severity 6, informational: entries are records, not alarms.
const SEVERITY_INFO: u8 = 6;

/// A syslog facility (RFC 5424 §6.2.1), by name or number 0–23.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(u8);

const FACILITY_NAMES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

impl Default for Facility {
    /// 13, "log audit": what the ledger is.
    fn default() -> Self {
        Facility(13)
    }
}

impl FromStr for Facility {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(i) = FACILITY_NAMES.iter().position(|name| *name == text) {
            return Ok(Facility(i as u8));
        }
        match text.parse::<u8>() {
            Ok(n) if n < 24 => Ok(Facility(n)),
            _ => Err(format!(
                "unknown syslog facility {text:?}: use a number 0-23 or one of {}",
                FACILITY_NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(FACILITY_NAMES[usize::from(self.0)])
    }
}

/// The RFC 5424 message of `entry`: the header, one SD element with `seq` and `id`, and the entry's
/// bundle line as MSG (UTF-8 JSON, without a BOM so that receivers keep it parseable).
pub fn message(entry: &Entry, hostname: &str, facility: Facility) -> String {
    message_with_body(entry, &entry_line(entry), hostname, facility)
}

/// The RFC 5424 message of `entry` with `body` as MSG (the entry's event in the sink's format).
pub fn message_with_body(entry: &Entry, body: &str, hostname: &str, facility: Facility) -> String {
    let line = body;
    let mut out = String::with_capacity(line.len() + 200);
    let pri = u16::from(facility.0) * 8 + u16::from(SEVERITY_INFO);
    out.push_str(&format!("<{pri}>1 "));
    out.push_str(&timestamp(&entry.timestamp));
    out.push(' ');
    out.push_str(&header_field(hostname, 255));
    out.push(' ');
    out.push_str(APP_NAME);
    out.push_str(" - ");
    out.push_str(&header_field(&entry.kind, 32));
    out.push_str(&format!(
        " [{SD_ID} seq=\"{}\" id=\"{}\"] ",
        entry.seq,
        sd_param_value(&entry.id)
    ));
    out.push_str(line);
    out
}

/// One octet-counted frame: `LEN SP MSG` (RFC 6587 §3.4.1), LEN counting the bytes of MSG.
pub fn frame(message: &str) -> String {
    format!("{} {message}", message.len())
}

/// The entry's own timestamp when it is a valid RFC 3339 time (written in UTC with microseconds, as
/// RFC 5424 allows), the NILVALUE otherwise.
fn timestamp(text: &str) -> String {
    match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        Ok(at) => ledger_core::entry::format_timestamp(at),
        Err(_) => "-".to_string(),
    }
}

/// A header field: printable US-ASCII without spaces (RFC 5424 PRINTUSASCII), at most `max` characters;
/// the NILVALUE when nothing is left.
fn header_field(text: &str, max: usize) -> String {
    let field: String = text.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if field.is_empty() { "-".to_string() } else { field }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped with a backslash (RFC 5424 §6.3.3).
pub fn sd_param_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// An open connection: the write half, and a task watching the read half for the receiver's close.
struct Connection {
    writer: WriteHalf<Box<dyn Stream>>,
    closed: Arc<Mutex<Option<String>>>,
    watcher: JoinHandle<()>,
}

impl Connection {
    fn closed(&self) -> Option<String> {
        self.closed
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// A syslog receiver over TCP or TLS.
pub struct SyslogSink {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    hostname: String,
    facility: Facility,
    settle: Duration,
    timeout: Duration,
    connection: Option<Connection>,
    /// The last entry of each batch written and not yet settled, with when it was written.
    unsettled: VecDeque<(Position, Instant)>,
}

impl fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyslogSink")
            .field("target", &self.target())
            .field("tls", &self.tls.is_some())
            .field("connected", &self.connection.is_some())
            .field("unsettled", &self.unsettled.len())
            .finish()
    }
}

impl SyslogSink {
    pub(crate) fn new(host: String, port: u16, tls: bool, options: &SinkOptions) -> Result<Self, SinkConfigError> {
        let tls = if tls {
            Some(Arc::new(tls_config(options)?))
        } else {
            None
        };
        Ok(SyslogSink {
            host,
            port,
            tls,
            hostname: options.hostname.clone(),
            facility: options.facility,
            settle: options.settle,
            timeout: options.timeout,
            connection: None,
            unsettled: VecDeque::new(),
        })
    }

    fn target(&self) -> String {
        let scheme = if self.tls.is_some() { "syslog+tls" } else { "syslog" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    async fn connect(&self) -> Result<Connection, SinkError> {
        let target = self.target();
        let failed = |error: std::io::Error| SinkError::Connect {
            target: target.clone(),
            error,
        };
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| failed(std::io::ErrorKind::TimedOut.into()))?
            .map_err(failed)?;
        tcp.set_nodelay(true).map_err(failed)?;
        let socket = socket2::SockRef::from(&tcp);
        socket
            .set_tcp_keepalive(
                &socket2::TcpKeepalive::new()
                    .with_time(Duration::from_secs(30))
                    .with_interval(Duration::from_secs(10)),
            )
            .map_err(failed)?;
        // Bytes the peer has not acknowledged within half the settle time fail the connection, so a batch
        // that settles on a live connection has at least reached the receiver's host.
        socket
            .set_tcp_user_timeout(Some((self.settle / 2).max(Duration::from_secs(1))))
            .map_err(failed)?;
        let stream: Box<dyn Stream> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| failed(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                let tls = tokio::time::timeout(self.timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| failed(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(failed)?;
                Box::new(tls)
            }
        };
        let (reader, writer) = tokio::io::split(stream);
        let closed = Arc::new(Mutex::new(None));
        let watcher = tokio::spawn(watch_for_close(reader, Arc::clone(&closed)));
        tracing::info!(sink = %target, "connected to the syslog receiver");
        Ok(Connection {
            writer,
            closed,
            watcher,
        })
    }

    /// Writes `messages` as the MSG of `entries`' syslog messages.
    pub(crate) async fn send(&mut self, entries: &[Entry], messages: &[String]) -> Result<(), SinkError> {
        if self.connection.is_none() {
            self.connection = Some(self.connect().await?);
        }
        let target = self.target();
        let connection = self.connection.as_mut().expect("connected above");
        if let Some(reason) = connection.closed() {
            return Err(SinkError::Disconnected { target, reason });
        }
        let mut buffer = String::with_capacity(entries.len() * 1024);
        for (entry, body) in entries.iter().zip(messages) {
            buffer.push_str(&frame(&message_with_body(entry, body, &self.hostname, self.facility)));
        }
        let written = async {
            connection.writer.write_all(buffer.as_bytes()).await?;
            connection.writer.flush().await
        };
        written.await.map_err(|error| SinkError::Io { target, error })?;
        let last = entries.last().expect("send is called with entries");
        self.unsettled.push_back((Position::of(last), Instant::now()));
        Ok(())
    }

    pub(crate) fn delivered(&mut self) -> Result<Option<Position>, SinkError> {
        let Some(connection) = &self.connection else {
            return Ok(None);
        };
        if let Some(reason) = connection.closed() {
            return Err(SinkError::Disconnected {
                target: self.target(),
                reason,
            });
        }
        let mut delivered = None;
        while let Some((_, written)) = self.unsettled.front()
            && written.elapsed() >= self.settle
        {
            delivered = self.unsettled.pop_front().map(|(position, _)| position);
        }
        Ok(delivered)
    }

    pub(crate) fn next_delivery_in(&self) -> Option<Duration> {
        self.unsettled
            .front()
            .map(|(_, written)| self.settle.saturating_sub(written.elapsed()))
    }

    pub(crate) fn reset(&mut self) {
        self.connection = None;
        self.unsettled.clear();
    }

    pub(crate) async fn close(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            let _ = tokio::time::timeout(self.timeout, connection.writer.shutdown()).await;
        }
        self.unsettled.clear();
    }
}

/// Syslog receivers send nothing back: anything but a pending read means the connection is over.
async fn watch_for_close(mut reader: ReadHalf<Box<dyn Stream>>, closed: Arc<Mutex<Option<String>>>) {
    let mut buffer = [0u8; 512];
    let reason = loop {
        match reader.read(&mut buffer).await {
            Ok(0) => break "the receiver closed the connection".to_string(),
            Ok(_) => continue,
            Err(error) => break error.to_string(),
        }
    };
    if let Ok(mut slot) = closed.lock() {
        *slot = Some(reason);
    }
}

/// The TLS client configuration: the CA file's certificates (or the built-in web roots), and a client
/// certificate when the receiver asks for one.
fn tls_config(options: &SinkOptions) -> Result<rustls::ClientConfig, SinkConfigError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(options.ca_file.as_deref())?);
    Ok(match &options.client_identity {
        None => builder.with_no_client_auth(),
        Some((cert_path, key_path)) => {
            let chain = read_certificates(cert_path)?;
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(|e| SinkConfigError::file(key_path, format!("not a PEM private key ({e})")))?;
            builder.with_client_auth_cert(chain, key)?
        }
    })
}

pub(crate) fn root_store(ca_file: Option<&std::path::Path>) -> Result<rustls::RootCertStore, SinkConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            for certificate in read_certificates(path)? {
                roots
                    .add(certificate)
                    .map_err(|e| SinkConfigError::file(path, format!("unusable CA certificate ({e})")))?;
            }
        }
    }
    Ok(roots)
}

pub(crate) fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, SinkConfigError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| SinkConfigError::file(path, format!("cannot read PEM certificates ({e})")))?;
    if certificates.is_empty() {
        return Err(SinkConfigError::file(path, "holds no PEM certificate"));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            seq: 7,
            id: "evt_0194a1b2c3d47e5f8a9b0c1d2e3f4a07".into(),
            timestamp: "2026-01-01T00:00:01.250000Z".into(),
            kind: "ledger.note".into(),
            actor: "usr_zoë".into(),
            action_id: None,
            payload: r#"{"text":"Grüße ] \" \\"}"#.into(),
            prev_chain_hash: "sha256:00".into(),
            event_hash: "sha256:01".into(),
            chain_hash: "sha256:02".into(),
            key_id: "ed25519:56475aa75463474c".into(),
            signature: "ab".into(),
        }
    }

    #[test]
    fn messages_follow_rfc_5424() {
        let message = message(&entry(), "gw-1", Facility::default());
        let expected_prefix = "<110>1 2026-01-01T00:00:01.250000Z gw-1 docketops - ledger.note \
                               [docketops@32473 seq=\"7\" id=\"evt_0194a1b2c3d47e5f8a9b0c1d2e3f4a07\"] ";
        assert!(message.starts_with(expected_prefix), "{message}");
        // The MSG is the bundle line, unchanged.
        assert_eq!(&message[expected_prefix.len()..], entry_line(&entry()));
        let framed = frame(&message);
        let (length, rest) = framed.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), rest.len(), "octets, not characters");
        assert!(rest.len() > rest.chars().count());
    }

    #[test]
    fn header_fields_and_sd_values_are_escaped_or_replaced() {
        assert_eq!(sd_param_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(header_field("two words", 255), "twowords");
        assert_eq!(header_field("", 255), "-");
        assert_eq!(header_field(&"k".repeat(40), 32).len(), 32);
        let mut odd = entry();
        odd.timestamp = "yesterday".into();
        odd.id = "evt_\"]".into();
        odd.kind = "x".repeat(64);
        let message = message(&odd, "host name é", "local0".parse().unwrap());
        assert!(
            message.starts_with(&format!(
                "<134>1 - hostname docketops - {} [docketops@32473 seq=\"7\" id=\"evt_\\\"\\]\"] {{",
                "x".repeat(32)
            )),
            "{message}"
        );
    }

    #[test]
    fn facilities_parse_by_name_or_number() {
        assert_eq!("audit".parse::<Facility>().unwrap(), Facility(13));
        assert_eq!("local7".parse::<Facility>().unwrap(), Facility(23));
        assert_eq!("4".parse::<Facility>().unwrap().to_string(), "auth");
        assert!("24".parse::<Facility>().is_err() && "local8".parse::<Facility>().is_err());
    }
}
