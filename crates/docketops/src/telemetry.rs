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

/// How long shutting down waits for the last spans to be sent.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// The layer that hands `tracing` spans to the exporter.
pub type TraceLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// What [`TraceArgs::start`] made of the configuration.
#[derive(Default)]
pub struct Started {
    /// The running exporter (shut it down at the end; dropping it does too, blocking).
    pub traces: Option<Traces>,
    /// The layer to install with the logs.
    pub layer: Option<TraceLayer>,
    /// Why export stayed off although the environment asked for it (to log once logging is up).
    pub warning: Option<String>,
}

/// A running exporter: shut it down before the process ends, so the last spans are sent.
#[derive(Debug)]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl TraceArgs {
    /// The exporter and its layer when export is configured (by the flag or the process's environment).
    pub fn start(&self) -> anyhow::Result<Started> {
        self.start_with(|name| std::env::var(name).ok())
    }

    /// [`TraceArgs::start`] reading the environment through `env`.
    fn start_with(&self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Started> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none")
        {
            return Ok(Started::default());
        }
        let from_environment =
            env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
        if self.otlp_endpoint.is_none() && !from_environment {
            return Ok(Started::default());
        }
        let protocol = ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]
            .into_iter()
            .find_map(|name| env(name).map(|value| (name, value)));
        if let Some((name, protocol)) = protocol.filter(|(_, p)| p != "http/protobuf") {
            let message = format!(
                "{name}={protocol} is not supported: traces are exported over OTLP/HTTP (http/protobuf, a \
                 collector's port 4318)"
            );
            // Asked for on the command line: an error. Only inherited from the environment: a warning.
            anyhow::ensure!(self.otlp_endpoint.is_none(), "--otlp-endpoint: {message}");
            return Ok(Started {
                warning: Some(format!("traces are not exported: {message}")),
                ..Started::default()
            });
        }
        // The URL as the standard base endpoint: the signal's path is added, as for OTEL_EXPORTER_OTLP_ENDPOINT.
        let endpoint = self.otlp_endpoint.as_deref().map(traces_url).transpose()?;
        let named = env("OTEL_SERVICE_NAME").is_some()
            || env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| v.contains("service.name="));
        // Built on a thread of its own: the blocking HTTP client may not be made or dropped on the runtime.
        let provider = std::thread::spawn(move || build_provider(endpoint, named))
            .join()
            .map_err(|_| anyhow::anyhow!("the OTLP exporter panicked while starting"))??;
        let filter = TRACED_TARGETS.iter().fold(Targets::new(), |targets, target| {
            targets.with_target(*target, LevelFilter::INFO)
        });
        // The spans carry what docs/tracing.md lists, not the source location and threads of each.
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("docketops"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(filter)
            .boxed();
        Ok(Started {
            traces: Some(Traces {
                provider: Some(provider),
            }),
            layer: Some(layer),
            warning: None,
        })
    }
}

impl Traces {
    /// Sends the spans still queued and stops the exporter (waits at most a few seconds, off the runtime).
    pub async fn shutdown(mut self) {
        let Some(provider) = self.provider.take() else { return };
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_WAIT)).await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the trace exporter did not shut down cleanly"),
            Err(error) => tracing::warn!(%error, "the trace exporter failed while shutting down"),
        }
    }
}

/// On a path that did not call [`Traces::shutdown`] (an error at start): still send what is queued.
impl Drop for Traces {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = std::thread::spawn(move || provider.shutdown_with_timeout(SHUTDOWN_WAIT)).join();
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

fn build_provider(endpoint: Option<String>, named: bool) -> anyhow::Result<SdkTracerProvider> {
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

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

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
        let off = TraceArgs::default().start_with(env(&[])).unwrap();
        assert!(off.traces.is_none() && off.layer.is_none() && off.warning.is_none());
        let args = TraceArgs {
            otlp_endpoint: Some("http://127.0.0.1:4318".into()),
        };
        let disabled = args.start_with(env(&[("OTEL_SDK_DISABLED", "true")])).unwrap();
        assert!(disabled.layer.is_none());
    }

    #[test]
    fn an_unsupported_protocol_is_an_error_when_asked_for_and_a_warning_when_inherited() {
        let grpc = [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")];
        let args = TraceArgs {
            otlp_endpoint: Some("http://127.0.0.1:4318".into()),
        };
        let error = args.start_with(env(&grpc)).err().unwrap().to_string();
        assert!(error.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "{error}");
        let inherited = [grpc[0], ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")];
        let started = TraceArgs::default().start_with(env(&inherited)).unwrap();
        assert!(started.layer.is_none());
        assert!(started.warning.unwrap().contains("not exported"));
    }
}
