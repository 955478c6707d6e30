//! OpenTelemetry traces, exported over OTLP/HTTP (protobuf) to a collector — off unless configured.
//!
//! The gateway's spans are `tracing` spans (an HTTP request, an MCP tool call, an action and each of its
//! steps and ledger commits); `tracing-opentelemetry` turns them into OpenTelemetry spans, which the SDK
//! batches on a thread of its own and `opentelemetry-otlp` posts to `{endpoint}/v1/traces`. The standard
//! `OTEL_*` variables apply: `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (either also
//! turns export on), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER` (default: follow the caller's sampled flag, else sample all), `OTEL_BSP_*`, and
//! `OTEL_SDK_DISABLED=true` turns it off.

use anyhow::Context as _;
use clap::Args;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};

/// The crates whose spans are exported (the libraries below them make their own spans at debug or trace).
const TRACED_TARGETS: [&str; 7] = ["docketops", "gateway", "server", "mcp", "executor", "storage", "policy"];

/// Where traces go.
#[derive(Debug, Clone, Default, Args)]
pub struct TraceArgs {
    /// Export traces over OTLP/HTTP (protobuf) to this collector, e.g. http://otel-collector:4318 (spans are
    /// posted to URL/v1/traces). Off unless this, OTEL_EXPORTER_OTLP_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. A request's W3C `traceparent` (HTTP header, or MCP
    /// `params._meta`) becomes the parent of its spans.
    #[arg(long, env = "DOCKETOPS_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

/// A running exporter: shut it down before the process ends, so the last spans are sent.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

/// The layer that hands `tracing` spans to the exporter.
pub type TraceLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

impl TraceArgs {
    /// The exporter and its layer, or none when export is not configured.
    pub fn start(&self) -> anyhow::Result<Option<(Traces, TraceLayer)>> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none")
        {
            return Ok(None);
        }
        let configured = self.otlp_endpoint.is_some()
            || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
        if !configured {
            return Ok(None);
        }
        let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(protocol) = protocol.filter(|p| p != "http/protobuf") {
            anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: the gateway exports OTLP over HTTP \
                 (http/protobuf, a collector's port 4318)"
            );
        }
        // The URL as the standard base endpoint: the signal's path is added, as for OTEL_EXPORTER_OTLP_ENDPOINT.
        let endpoint = match &self.otlp_endpoint {
            Some(base) => Some(traces_url(base)?),
            None => None,
        };
        // Built on a thread of its own: the blocking HTTP client may not be made or dropped on the runtime.
        let provider = std::thread::spawn(move || build_provider(endpoint))
            .join()
            .map_err(|_| anyhow::anyhow!("the OTLP exporter panicked while starting"))??;
        let filter = TRACED_TARGETS.iter().fold(Targets::new(), |targets, target| {
            targets.with_target(*target, LevelFilter::INFO)
        });
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("docketops"))
            .with_filter(filter)
            .boxed();
        Ok(Some((Traces { provider }, layer)))
    }
}

impl Traces {
    /// Sends the spans still queued and stops the exporter (waits at most a few seconds).
    pub fn shutdown(self) {
        let provider = self.provider;
        let stopped = std::thread::spawn(move || provider.shutdown_with_timeout(std::time::Duration::from_secs(5)));
        match stopped.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the trace exporter did not shut down cleanly"),
            Err(_) => tracing::warn!("the trace exporter panicked while shutting down"),
        }
    }
}

/// `{base}/v1/traces`: the OTLP/HTTP path of traces under a collector's base URL.
fn traces_url(base: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(base).with_context(|| format!("--otlp-endpoint {base:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "--otlp-endpoint {base:?} must be an http or https URL (OTLP over HTTP)"
    );
    Ok(format!("{}/v1/traces", base.trim_end_matches('/')))
}

fn build_provider(endpoint: Option<String>) -> anyhow::Result<SdkTracerProvider> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(endpoint) = endpoint {
        exporter = exporter.with_endpoint(endpoint);
    }
    let exporter = exporter.build().context("cannot start the OTLP trace exporter")?;
    let mut resource = opentelemetry_sdk::Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    // The standard variables name the service when set; otherwise it is `docketops`.
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    if !named {
        resource = resource.with_service_name("docketops");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_a_base_url_under_which_traces_go_to_v1_traces() {
        assert_eq!(
            traces_url("http://collector:4318").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://c.example/otlp/").unwrap(),
            "https://c.example/otlp/v1/traces"
        );
        assert!(traces_url("collector:4318").is_err());
        assert!(traces_url("grpc://collector:4317").is_err());
    }

    #[test]
    fn nothing_is_exported_unless_configured() {
        // The test process sets none of the OTEL_* variables.
        assert!(TraceArgs::default().start().unwrap().is_none());
    }
}
