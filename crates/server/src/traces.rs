//! One span per HTTP request, for traces: a child of the caller's span when the request carries W3C Trace
//! Context (`traceparent`, `tracestate`), named `METHOD /route/{template}` once routed, with its status.
//! The gateway's own spans (the action's steps and ledger commits) are its children. Probes and metrics
//! scrapes get none: they would be most of the traces and tell nothing.

use axum::body::Body;
use axum::http::{Method, Request, Response};
use gateway::telemetry::TraceContext;
use tracing::field::Empty;

/// Paths polled by machines (liveness, readiness, Prometheus): not traced.
const UNTRACED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The request's span (the tracing layer enters it around everything the request does).
pub(crate) fn request_span(request: &Request<Body>) -> tracing::Span {
    if UNTRACED.contains(&request.uri().path()) {
        return tracing::Span::none();
    }
    let method = known_method(request.method());
    let span = tracing::info_span!(
        "http.request",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = Empty,
        http.response.status_code = Empty,
        url.path = request.uri().path(),
    );
    if let Some(context) = TraceContext::from_headers(request.headers()) {
        context.adopt(&span);
    }
    span
}

/// The method as OpenTelemetry's HTTP conventions name it: a standard one, else `_OTHER` (a client picks
/// the method: spans must not be named by whatever it sends).
pub(crate) fn known_method(method: &Method) -> &'static str {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ]
    .iter()
    .find(|known| *known == method)
    .map_or("_OTHER", |known| known.as_str())
}

/// Names the current request's span by its route template (a path would be unbounded); a request no route
/// matched keeps the method alone as its name, and no `http.route`.
pub(crate) fn name_by_route(method: &Method, route: Option<&str>) {
    let Some(route) = route else { return };
    let span = tracing::Span::current();
    gateway::telemetry::rename(&span, format!("{} {route}", known_method(method)));
    span.record("http.route", route);
}

/// Records the answer's status on the request's span (a server error marks the span as failed), and logs it
/// at debug level with the latency.
pub(crate) fn record_status<B>(response: &Response<B>, latency: std::time::Duration, span: &tracing::Span) {
    let status = response.status().as_u16();
    // As i64: the exporter keeps integers only when they are signed (other numbers become text).
    span.record("http.response.status_code", i64::from(status));
    if response.status().is_server_error() {
        span.record("otel.status_code", "error");
    }
    tracing::debug!(
        status,
        latency_ms = latency.as_millis() as u64,
        "finished processing request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_named_by_standard_methods_only() {
        assert_eq!(known_method(&Method::POST), "POST");
        assert_eq!(known_method(&Method::from_bytes(b"BREW").unwrap()), "_OTHER");
    }
}
