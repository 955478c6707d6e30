//! One span per HTTP request, for traces: a child of the caller's span when the request carries W3C Trace
//! Context (`traceparent`, `tracestate`), named `METHOD /route/{template}` once routed, with its status.
//! The gateway's own spans (the action's steps and ledger commits) are its children.

use axum::body::Body;
use axum::http::{Request, Response};
use gateway::telemetry::TraceContext;
use tracing::field::Empty;

/// The request's span (the tracing layer enters it around everything the request does).
pub(crate) fn request_span(request: &Request<Body>) -> tracing::Span {
    let span = tracing::info_span!(
        "http.request",
        otel.name = %request.method(),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %request.method(),
        http.route = Empty,
        http.response.status_code = Empty,
        url.path = request.uri().path(),
    );
    if let Some(context) = TraceContext::from_headers(request.headers()) {
        context.adopt(&span);
    }
    span
}

/// Names the current request's span by its route template (a path would be unbounded).
pub(crate) fn name_by_route(method: &str, route: &str) {
    let span = tracing::Span::current();
    gateway::telemetry::rename(&span, format!("{method} {route}"));
    span.record("http.route", route);
}

/// Records the answer's status on the request's span; a server error marks the span as failed.
pub(crate) fn record_status<B>(response: &Response<B>, _latency: std::time::Duration, span: &tracing::Span) {
    // As i64: the exporter keeps integers only when they are signed (other numbers become text).
    span.record("http.response.status_code", i64::from(response.status().as_u16()));
    if response.status().is_server_error() {
        span.record("otel.status_code", "error");
    }
}
