//! Tracing across process boundaries: the W3C Trace Context a caller sends (`traceparent` and `tracestate`,
//! as HTTP headers or as MCP `params._meta` keys) becomes the parent of the gateway's spans, so an agent's
//! trace continues through guardrails, preview, policy, execution, verification and each ledger commit.
//!
//! The gateway's spans are plain `tracing` spans; the binary exports them over OTLP when it is configured to
//! (`tracing-opentelemetry` bridges them). Without that, adopting a parent and reading a span's context do
//! nothing, and the spans cost what any disabled or log-only span costs.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and MCP `_meta` key) that names the caller's trace and span (W3C Trace Context).
pub const TRACEPARENT: &str = "traceparent";
/// The header (and MCP `_meta` key) with vendor-specific trace state (W3C Trace Context).
pub const TRACESTATE: &str = "tracestate";
/// The longest `tracestate` kept (W3C Trace Context: 32 entries, and a propagated one may be cut to 512
/// characters); a longer one is dropped, not copied into every span.
const MAX_TRACESTATE: usize = 512;

/// A caller's W3C Trace Context, as received: validated when adopted (a malformed `traceparent` starts a new
/// trace, as the W3C recommendation says), and re-written by OpenTelemetry when sent on
/// ([`TraceContext::outgoing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// `version-traceid-parentid-flags`, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
    pub traceparent: String,
    /// Vendor-specific entries (kept up to 512 characters).
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context in HTTP headers, if they carry a `traceparent` that is text.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<TraceContext> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Some(TraceContext {
            traceparent: text(TRACEPARENT)?,
            tracestate: text(TRACESTATE),
        })
    }

    /// The context in an MCP request's `_meta` object, if it carries a `traceparent` string.
    pub fn from_meta(meta: &serde_json::Map<String, serde_json::Value>) -> Option<TraceContext> {
        let text = |name: &str| meta.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Some(TraceContext {
            traceparent: text(TRACEPARENT)?,
            tracestate: text(TRACESTATE),
        })
    }

    /// Makes the caller's span the parent of `span` (which must not have been entered yet). A malformed
    /// `traceparent` is ignored: `span` then starts a trace of its own.
    pub fn adopt(&self, span: &tracing::Span) {
        if let Some(parent) = self.parsed() {
            // Fails only when no OpenTelemetry layer is installed: nothing is exported then anyway.
            let _ = span.set_parent(parent);
        }
    }

    /// Whether `traceparent` is a valid W3C trace parent (a malformed one names no trace).
    pub fn is_valid(&self) -> bool {
        self.parsed().is_some()
    }

    /// The context as OpenTelemetry reads it, if `traceparent` is valid (a `tracestate` too long is dropped).
    fn parsed(&self) -> Option<opentelemetry::Context> {
        let mut carrier = HashMap::from([(TRACEPARENT.to_owned(), self.traceparent.clone())]);
        if let Some(state) = self.tracestate.as_ref().filter(|s| s.len() <= MAX_TRACESTATE) {
            carrier.insert(TRACESTATE.to_owned(), state.clone());
        }
        let parsed = TraceContextPropagator::new().extract(&carrier);
        parsed.span().span_context().is_valid().then_some(parsed)
    }

    /// What to send on to another service from inside `span`: its own context when this process exports
    /// spans, otherwise `received` as OpenTelemetry re-writes it (so the trace still continues past a process
    /// that exports none); nothing for a malformed one, which would only make the next request fail.
    pub fn outgoing(span: &tracing::Span, received: Option<&TraceContext>) -> Option<TraceContext> {
        let own = span.context();
        let context = match own.span().span_context().is_valid() {
            true => own,
            false => received?.parsed()?,
        };
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        Some(TraceContext {
            traceparent: carrier.remove(TRACEPARENT)?,
            tracestate: carrier.remove(TRACESTATE).filter(|s| !s.is_empty()),
        })
    }
}

/// Renames `span` in the exported trace (a span's `otel.name` field is read only while it has not started;
/// an HTTP request's span learns its route template only after routing). Nothing without an exporter.
pub fn rename(span: &tracing::Span, name: String) {
    span.context().span().update_name(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_context_from_headers_and_meta() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(TraceContext::from_headers(&headers), None);
        headers.insert(
            TRACEPARENT,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        headers.insert(TRACESTATE, "vendor=1".parse().unwrap());
        let context = TraceContext::from_headers(&headers).unwrap();
        assert_eq!(context.tracestate.as_deref(), Some("vendor=1"));
        let meta = serde_json::json!({"traceparent": context.traceparent, "progressToken": 1});
        let from_meta = TraceContext::from_meta(meta.as_object().unwrap()).unwrap();
        assert_eq!(from_meta.traceparent, context.traceparent);
        assert_eq!(from_meta.tracestate, None);
        assert_eq!(TraceContext::from_meta(&serde_json::Map::new()), None);
        let not_text = serde_json::json!({"traceparent": 7});
        assert_eq!(TraceContext::from_meta(not_text.as_object().unwrap()), None);
    }

    #[test]
    fn without_an_exporter_the_received_context_is_sent_on_when_valid() {
        let received = TraceContext {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            tracestate: Some("vendor=1".into()),
        };
        let span = tracing::info_span!("test");
        received.adopt(&span);
        assert_eq!(TraceContext::outgoing(&span, Some(&received)), Some(received.clone()));
        assert_eq!(TraceContext::outgoing(&span, None), None);
        // Malformed, or with a line break (which no HTTP header may carry): not sent on.
        for traceparent in [
            "00-not-a-trace-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nx: y",
        ] {
            let bad = TraceContext {
                traceparent: traceparent.into(),
                tracestate: None,
            };
            assert_eq!(TraceContext::outgoing(&span, Some(&bad)), None, "{traceparent}");
        }
        // A tracestate over the W3C size is dropped, the trace kept.
        let long = TraceContext {
            tracestate: Some(format!("vendor={}", "x".repeat(600))),
            ..received.clone()
        };
        let sent = TraceContext::outgoing(&span, Some(&long)).unwrap();
        assert_eq!(
            (sent.traceparent.as_str(), sent.tracestate),
            (received.traceparent.as_str(), None)
        );
    }
}
