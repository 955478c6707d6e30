//! The gateway's HTTP API with one API key, for `docketops mcp --url … --key …`: an agent host launches the
//! binary on its own machine and talks MCP over stdio, and every tool call becomes a request to a (remote)
//! gateway, which authenticates the key and runs the pipeline as it would for any API client.

use domain::ActionStatus;
use std::fmt;
use std::time::Duration;

use rmcp::model::Extensions;
use serde_json::Value;
use url::Url;

use crate::backend::{Backend, ToolError};
use gateway::telemetry::{TRACEPARENT, TRACESTATE, TraceContext};

/// Longer than any answer takes: an action runs its whole pipeline (rollout waits included, 120 s by default)
/// before the gateway answers, and a status wait is at most 60 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Tools on a gateway's HTTP API.
#[derive(Clone)]
pub struct Remote {
    http: reqwest::Client,
    /// The gateway's base URL, ending in `/`.
    base: Url,
    key: String,
}

/// Never shows the key.
impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base.as_str())
            .field("key", &"<hidden>")
            .finish()
    }
}

/// Why a remote backend cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL does not parse, is not http or https, or cannot be a base URL.
    #[error("the gateway URL {0:?} is not an http(s) URL")]
    Url(String),
    /// The CA certificate is not valid PEM.
    #[error("the CA certificate is not PEM: {0}")]
    Certificate(String),
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl Remote {
    /// A backend for the gateway at `url` (e.g. `https://docketops.example:8443`), calling it with `api_key`;
    /// `ca_pem` adds a CA certificate to trust (a gateway with a private CA).
    pub fn new(url: &str, api_key: &str, ca_pem: Option<&[u8]>) -> Result<Remote, RemoteError> {
        let mut base = Url::parse(url).map_err(|_| RemoteError::Url(url.to_owned()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(RemoteError::Url(url.to_owned()));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("docketops-mcp/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certificate =
                reqwest::Certificate::from_pem(pem).map_err(|e| RemoteError::Certificate(e.to_string()))?;
            builder = builder.add_root_certificate(certificate);
        }
        Ok(Remote {
            http: builder.build().map_err(|e| RemoteError::Client(e.to_string()))?,
            base,
            key: api_key.trim().to_owned(),
        })
    }

    /// `api/v1/<segments…>` under the base URL, each segment escaped.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the base URL can be a base")
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        url
    }

    async fn send(&self, caller: &Outgoing, request: reqwest::RequestBuilder) -> Result<Value, ToolError> {
        let mut request = request;
        if let Some(trace) = &caller.trace {
            request = request.header(TRACEPARENT, &trace.traceparent);
            if let Some(state) = &trace.tracestate {
                request = request.header(TRACESTATE, state);
            }
        }
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| ToolError::Unreachable {
                url: self.base.to_string(),
                message: e.without_url().to_string(),
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| ToolError::Unreachable {
            url: self.base.to_string(),
            message: e.without_url().to_string(),
        })?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if (200..300).contains(&status) {
            return body.ok_or_else(|| ToolError::Protocol {
                status,
                message: "the answer is not JSON".into(),
            });
        }
        match body.as_ref().and_then(|b| b.get("error")) {
            Some(error) => Err(ToolError::Gateway {
                status,
                code: error["code"].as_str().unwrap_or("error").to_owned(),
                message: error["message"].as_str().unwrap_or_default().to_owned(),
            }),
            None => Err(ToolError::Protocol {
                status,
                message: text.chars().take(200).collect(),
            }),
        }
    }
}

/// What a remote call sends besides the key: the trace it continues.
#[derive(Debug)]
pub struct Outgoing {
    /// This process's span when it exports traces, else the tool call's `_meta` context when it is valid.
    trace: Option<TraceContext>,
}

impl Backend for Remote {
    /// The remote gateway authenticates the key on every request; a call only carries its trace along.
    type Caller = Outgoing;

    fn caller(&self, extensions: &Extensions) -> Result<Outgoing, ToolError> {
        let trace = TraceContext::outgoing(&tracing::Span::current(), extensions.get::<TraceContext>());
        Ok(Outgoing { trace })
    }

    async fn submit(&self, caller: &Outgoing, request: Value) -> Result<Value, ToolError> {
        self.send(caller, self.http.post(self.url(&["actions"])).json(&request))
            .await
    }

    async fn action(&self, caller: &Outgoing, action_id: &str, wait: Option<Duration>) -> Result<Value, ToolError> {
        let mut url = self.url(&["actions", action_id]);
        if let Some(wait) = wait {
            url.query_pairs_mut().append_pair("wait", &wait.as_secs().to_string());
        }
        self.send(caller, self.http.get(url)).await
    }

    /// The gateway lists an operator's own actions only. (An identity that also holds the auditor role sees
    /// every requester's here: the API does not tell a key which identity it belongs to.)
    async fn pending_approvals(&self, caller: &Outgoing) -> Result<Value, ToolError> {
        let mut url = self.url(&["actions"]);
        url.query_pairs_mut()
            .append_pair("status", ActionStatus::PendingApproval.as_str())
            .append_pair("limit", "100");
        self.send(caller, self.http.get(url)).await
    }
}
