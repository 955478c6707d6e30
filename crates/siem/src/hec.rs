//! Splunk HTTP Event Collector: a batch is one POST of concatenated events, acknowledged by HTTP 200.
//!
//! ```text
//! {"time":1767225601.250000,"host":"gw-1","source":"docketops","sourcetype":"docketops:ledger","event":{…entry…}}
//! ```

use std::fmt;
use std::time::Duration;

use ledger_core::Entry;
use ledger_core::bundle::entry_line;

use crate::sink::{Position, SinkConfigError, SinkError, SinkOptions};

pub const SOURCETYPE: &str = "docketops:ledger";
pub const SOURCE: &str = "docketops";

/// One HEC event: the entry's bundle line as `event`, its timestamp as `time` (epoch seconds with
/// microseconds; left out when the entry's timestamp does not parse, and Splunk uses the arrival time).
pub fn event(entry: &Entry, host: &str) -> String {
    let line = entry_line(entry);
    let mut out = String::with_capacity(line.len() + 160);
    out.push('{');
    if let Ok(at) = time::OffsetDateTime::parse(&entry.timestamp, &time::format_description::well_known::Rfc3339)
        && at.unix_timestamp() >= 0
    {
        out.push_str(&format!("\"time\":{}.{:06},", at.unix_timestamp(), at.microsecond()));
    }
    out.push_str("\"host\":");
    out.push_str(&serde_json::Value::from(host).to_string());
    out.push_str(&format!(
        ",\"source\":\"{SOURCE}\",\"sourcetype\":\"{SOURCETYPE}\",\"event\":"
    ));
    out.push_str(&line);
    out.push('}');
    out
}

/// An HTTP Event Collector endpoint.
pub struct HecSink {
    client: reqwest::Client,
    url: url::Url,
    authorization: String,
    host: String,
    sent: Option<Position>,
}

impl fmt::Debug for HecSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HecSink").field("url", &self.url.as_str()).finish()
    }
}

impl HecSink {
    pub(crate) fn new(url: url::Url, options: &SinkOptions) -> Result<Self, SinkConfigError> {
        let token = options
            .hec_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(SinkConfigError::MissingToken)?;
        let mut builder = reqwest::Client::builder()
            // A redirect would turn the POST into something else; a collector answers directly.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.timeout)
            .timeout(options.timeout.max(Duration::from_secs(30)));
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|e| SinkConfigError::file(path, e))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SinkConfigError::file(path, format!("cannot read PEM certificates ({e})")))?;
            if certificates.is_empty() {
                return Err(SinkConfigError::file(path, "holds no PEM certificate"));
            }
            // The CA file replaces the built-in roots, as for syslog+tls.
            builder = builder.tls_built_in_root_certs(false);
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(HecSink {
            client: builder.build()?,
            url,
            authorization: format!("Splunk {token}"),
            host: options.hostname.clone(),
            sent: None,
        })
    }

    pub(crate) async fn send(&mut self, entries: &[Entry]) -> Result<(), SinkError> {
        let target = self.url.to_string();
        let mut body = String::with_capacity(entries.len() * 1200);
        for entry in entries {
            body.push_str(&event(entry, &self.host));
            body.push('\n');
        }
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| SinkError::Request {
                target: target.clone(),
                error: crate::sink::with_causes(&error),
            })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let body: String = text.chars().take(300).collect();
            return Err(SinkError::Http {
                target,
                status: status.as_u16(),
                body,
            });
        }
        self.sent = entries.last().map(Position::of);
        Ok(())
    }

    pub(crate) fn delivered(&mut self) -> Option<Position> {
        self.sent.take()
    }

    pub(crate) fn reset(&mut self) {
        self.sent = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_entry_and_its_time() {
        let entry = Entry {
            seq: 2,
            id: "evt_2".into(),
            timestamp: "2026-01-01T00:00:01.250000Z".into(),
            kind: "ledger.note".into(),
            actor: "cli".into(),
            action_id: None,
            payload: r#"{"b":1,"a":2}"#.into(),
            prev_chain_hash: "p".into(),
            event_hash: "e".into(),
            chain_hash: "c".into(),
            key_id: "k".into(),
            signature: "s".into(),
        };
        let text = event(&entry, "gw \"1\"");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["time"].as_f64().unwrap(), 1767225601.25);
        assert!(text.starts_with("{\"time\":1767225601.250000,"), "{text}");
        assert_eq!(value["host"], "gw \"1\"");
        assert_eq!(value["sourcetype"], SOURCETYPE);
        // The payload's text is kept byte for byte (member order included).
        assert!(text.ends_with(&format!("\"event\":{}}}", entry_line(&entry))));
        let mut undated = entry.clone();
        undated.timestamp = "never".into();
        assert!(event(&undated, "h").starts_with("{\"host\":"));
    }
}
