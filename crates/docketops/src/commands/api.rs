//! A client for one resource of a gateway's API, with one key: what the CLI's commands that act through a
//! gateway (`freeze`, `unfreeze`, `budget`) share. An error answer becomes an error with the gateway's message.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

/// Where the gateway is and who calls it (`docketops freeze`, `unfreeze`, `budget` and `mcp`).
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The gateway's base URL, e.g. https://docketops.example:8443.
    #[arg(long, env = "DOCKETOPS_URL", value_name = "URL")]
    pub url: String,
    /// The API key to call it with: a person's admin key for freeze, unfreeze and budget, an agent's operator
    /// key for mcp. The environment variable keeps it off the command line, which other local users can see.
    #[arg(long, env = "DOCKETOPS_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub key: String,
    /// A CA certificate (PEM) to trust for the gateway's TLS certificate (a private CA).
    #[arg(long, env = "DOCKETOPS_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// One resource of a gateway's API (e.g. `/api/v1/freeze`), with one key.
pub struct ApiClient {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl ApiClient {
    /// A client for `path` (starting with `/`) of the gateway `args` names, trusting its CA certificate.
    pub fn new(args: &GatewayArgs, path: &str) -> anyhow::Result<ApiClient> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if let Some(file) = &args.ca_cert {
            let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(ApiClient {
            http: builder.build()?,
            url: format!("{}{path}", args.url.trim_end_matches('/')),
            key: args.key.clone(),
        })
    }

    /// The answer's JSON; an error answer becomes an error with the gateway's message.
    pub async fn send(&self, method: reqwest::Method, body: Option<Value>) -> anyhow::Result<Value> {
        self.send_to(method, "", body).await
    }

    /// [`ApiClient::send`] to a path below the resource (`below` starts with `/`).
    pub async fn send_to(&self, method: reqwest::Method, below: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{below}", self.url);
        let mut request = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let answer: Value = response.json().await.context("the gateway's answer is not JSON")?;
        if !status.is_success() {
            let message = answer["error"]["message"].as_str().unwrap_or("no message");
            bail!("the gateway answered {status}: {message}");
        }
        Ok(answer)
    }
}
