//! Splunk HTTP Event Collector: a batch is one POST of concatenated events, acknowledged by HTTP 200.
//!
//! ```text
//! {"time":1767225601.250000,"host":"gw-1","source":"docketops","sourcetype":"docketops:ledger","event":{…entry…}}
//! ```

use std::fmt;
use std::time::Duration;

use ledger_core::Entry;

use crate::sink::{Position, SinkConfigError, SinkError, SinkOptions};

/// The default `source` of events.
pub const SOURCE: &str = "docketops";

/// The metadata of each event besides its time: where it comes from and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecFields {
    /// `host`: this machine's name (`--hostname`).
    pub host: String,
    /// `source` (default `docketops`).
    pub source: String,
    /// `sourcetype` (default: the format's, e.g. `docketops:ledger` for raw).
    pub sourcetype: String,
    /// `index`; left out when None (the collector's default index for the token).
    pub index: Option<String>,
}

impl HecFields {
    /// The fields `options` give, with the defaults.
    pub fn of(options: &SinkOptions) -> HecFields {
        HecFields {
            host: options.hostname.clone(),
            source: options.hec_source.clone().unwrap_or_else(|| SOURCE.to_string()),
            sourcetype: options
                .hec_sourcetype
                .clone()
                .unwrap_or_else(|| options.format.default_sourcetype().to_string()),
            index: options.hec_index.clone(),
        }
    }
}

/// One HEC event: `body` (the entry's bundle line or its event in the sink's format) as `event`, the
/// entry's timestamp as `time` (epoch seconds with microseconds; left out when the entry's timestamp does
/// not parse, and Splunk uses the arrival time), then `host`, `source`, `sourcetype` and `index`.
pub fn event(entry: &Entry, body: &str, fields: &HecFields) -> String {
    let text = |value: &str| serde_json::Value::from(value).to_string();
    let mut out = String::with_capacity(body.len() + 200);
    out.push('{');
    if let Ok(at) = time::OffsetDateTime::parse(&entry.timestamp, &time::format_description::well_known::Rfc3339)
        && at.unix_timestamp() >= 0
    {
        out.push_str(&format!("\"time\":{}.{:06},", at.unix_timestamp(), at.microsecond()));
    }
    out.push_str(&format!(
        "\"host\":{},\"source\":{},\"sourcetype\":{},",
        text(&fields.host),
        text(&fields.source),
        text(&fields.sourcetype)
    ));
    if let Some(index) = &fields.index {
        out.push_str(&format!("\"index\":{},", text(index)));
    }
    out.push_str("\"event\":");
    out.push_str(body);
    out.push('}');
    out
}

/// An HTTP Event Collector endpoint.
pub struct HecSink {
    client: reqwest::Client,
    url: url::Url,
    authorization: String,
    fields: HecFields,
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
            fields: HecFields::of(options),
            sent: None,
        })
    }

    /// POSTs `messages` (those of `entries`) as one batch of events.
    pub(crate) async fn send(&mut self, entries: &[Entry], messages: &[String]) -> Result<(), SinkError> {
        let target = self.url.to_string();
        let mut body = String::with_capacity(messages.iter().map(|m| m.len() + 200).sum());
        for (entry, message) in entries.iter().zip(messages) {
            body.push_str(&event(entry, message, &self.fields));
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
    use ledger_core::bundle::entry_line;

    fn entry() -> Entry {
        Entry {
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
        }
    }

    #[test]
    fn events_carry_the_entry_and_its_time() {
        let entry = entry();
        let options = SinkOptions {
            hostname: "gw \"1\"".into(),
            ..SinkOptions::default()
        };
        let fields = HecFields::of(&options);
        let text = event(&entry, &entry_line(&entry), &fields);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["time"].as_f64().unwrap(), 1767225601.25);
        assert!(text.starts_with("{\"time\":1767225601.250000,"), "{text}");
        assert_eq!(value["host"], "gw \"1\"");
        assert_eq!(value["source"], SOURCE);
        assert_eq!(value["sourcetype"], "docketops:ledger");
        assert!(value.get("index").is_none(), "{text}");
        // The payload's text is kept byte for byte (member order included).
        assert!(text.ends_with(&format!("\"event\":{}}}", entry_line(&entry))));
        let mut undated = entry.clone();
        undated.timestamp = "never".into();
        assert!(event(&undated, "{}", &fields).starts_with("{\"host\":"));
    }

    #[test]
    fn fields_are_settable_and_the_sourcetype_follows_the_format() {
        let ocsf = SinkOptions {
            format: crate::SiemFormat::Ocsf,
            ..SinkOptions::default()
        };
        assert_eq!(HecFields::of(&ocsf).sourcetype, "docketops:ocsf");
        let set = SinkOptions {
            format: crate::SiemFormat::Ecs,
            hec_index: Some("security".into()),
            hec_source: Some("gw-eu".into()),
            hec_sourcetype: Some("custom:st".into()),
            ..SinkOptions::default()
        };
        let fields = HecFields::of(&set);
        let value: serde_json::Value = serde_json::from_str(&event(&entry(), "{\"a\":1}", &fields)).unwrap();
        assert_eq!(value["index"], "security");
        assert_eq!(value["source"], "gw-eu");
        assert_eq!(value["sourcetype"], "custom:st");
        assert_eq!(value["event"], serde_json::json!({"a": 1}));
    }
}
