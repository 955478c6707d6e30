//! A client of an external OPA server's Data API (`POST /v1/data/<path>`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::decision::{self, Decision, PolicyError};

/// The answer of `POST /v1/data/<path>?provenance=true&strict-builtin-errors=true`; fields OPA may add are
/// ignored.
#[derive(Debug, Deserialize)]
struct DataResponse {
    /// Absent when the path is undefined for this input.
    result: Option<Value>,
    /// Present when OPA's decision logging is enabled.
    decision_id: Option<String>,
    provenance: Option<Provenance>,
}

#[derive(Debug, Deserialize)]
struct Provenance {
    #[serde(default)]
    bundles: BTreeMap<String, BundleRevision>,
}

#[derive(Debug, Deserialize)]
struct BundleRevision {
    revision: Option<String>,
}

/// Asks an OPA server for decisions.
///
/// The decision's `policy` is the package of the rule at `path` (`docketops/policy/decision` →
/// `docketops.policy`). Its `revision` is the configured one ([`OpaClient::with_revision`]) if any;
/// otherwise `opa:<bundle>=<revision>,…` from the bundle revisions OPA reports with
/// `provenance=true`, sorted by bundle name; or plain `opa` when OPA reports none (policies loaded
/// with `opa run` from files): configure a revision then, so the ledger says which policy decided.
#[derive(Debug, Clone)]
pub struct OpaClient {
    base_url: String,
    path: String,
    timeout: Duration,
    revision: Option<String>,
    url: reqwest::Url,
    http: reqwest::Client,
}

impl OpaClient {
    /// `base_url` like `http://127.0.0.1:8181`, `path` like `docketops/policy/decision`; `timeout`
    /// bounds a whole request (connect, send, answer).
    pub fn new(base_url: &str, path: &str, timeout: Duration) -> Result<OpaClient, PolicyError> {
        let base = base_url.trim_end_matches('/');
        let path = path.trim_matches('/');
        if path.is_empty() || path.split('/').any(str::is_empty) {
            return Err(PolicyError::Config(format!("invalid OPA decision path {path:?}")));
        }
        let mut url = reqwest::Url::parse(&format!("{base}/v1/data/{path}"))
            .map_err(|error| PolicyError::Config(format!("invalid OPA URL {base_url:?}: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PolicyError::Config(format!(
                "OPA URL {base_url:?} must be http or https"
            )));
        }
        // A builtin that fails (`to_number("x")`) is an evaluation error, as in the embedded engine, not an
        // undefined expression (OPA's default), so that a policy error fails closed with either engine.
        url.set_query(Some("provenance=true&strict-builtin-errors=true"));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|error| PolicyError::Config(format!("cannot build the HTTP client: {error}")))?;
        Ok(OpaClient {
            base_url: base.to_string(),
            path: path.to_string(),
            timeout,
            revision: None,
            url,
            http,
        })
    }

    /// Records this revision (e.g. a git commit of the policy repository) in every decision.
    pub fn with_revision(mut self, revision: impl Into<String>) -> OpaClient {
        self.revision = Some(revision.into());
        self
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The decision path under `/v1/data/`, without leading or trailing slashes.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The bound on one whole request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The policy id: the package holding the rule at `path`.
    pub fn policy_id(&self) -> String {
        match self.path.rsplit_once('/') {
            Some((package, _rule)) => package.replace('/', "."),
            None => self.path.clone(),
        }
    }

    /// Asks OPA for a decision on `input` (`POST /v1/data/<path>?provenance=true&strict-builtin-errors=true`).
    /// A builtin error in the policy is then OPA's 500 with the error, a [`PolicyError::Unavailable`] here,
    /// as it is an evaluation error in the embedded engine: both fail closed.
    pub async fn decide(&self, input: &Value) -> Result<Decision, PolicyError> {
        let input_sha256 = decision::input_sha256(input)?;
        let server = format!("OPA at {}", self.base_url);
        let response = self
            .http
            .post(self.url.clone())
            .json(&json!({ "input": input }))
            .send()
            .await
            .map_err(|error| self.unavailable(&server, &error))?;
        let status = response.status();
        if !status.is_success() {
            // OPA explains errors as {"code", "message"}; pass its words on, shortened.
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(500).collect();
            return Err(PolicyError::Unavailable(format!(
                "{server} answered {status} for /v1/data/{}: {}",
                self.path,
                body.trim()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| self.unavailable(&server, &error))?;
        let answer: DataResponse = serde_json::from_slice(&body)
            .map_err(|error| PolicyError::Malformed(format!("{server} sent an unreadable answer: {error}")))?;
        let Some(result) = answer.result else {
            return Err(PolicyError::Undefined);
        };
        let result = decision::parse_result(&result)?;
        Ok(Decision {
            outcome: result.outcome,
            reasons: result.reasons,
            approvals: result.approvals,
            approval_groups: result.approval_groups,
            policy: self.policy_id(),
            revision: self.revision_from(answer.provenance.as_ref()),
            decision_id: answer.decision_id.unwrap_or_else(decision::new_decision_id),
            input_sha256,
            engine: "opa".to_string(),
        })
    }

    fn revision_from(&self, provenance: Option<&Provenance>) -> String {
        if let Some(revision) = &self.revision {
            return revision.clone();
        }
        let bundles: Vec<String> = provenance
            .map(|provenance| {
                provenance
                    .bundles
                    .iter()
                    .filter_map(|(name, bundle)| bundle.revision.as_ref().map(|revision| format!("{name}={revision}")))
                    .collect()
            })
            .unwrap_or_default();
        if bundles.is_empty() {
            "opa".to_string()
        } else {
            format!("opa:{}", bundles.join(","))
        }
    }

    fn unavailable(&self, server: &str, error: &reqwest::Error) -> PolicyError {
        let what = if error.is_timeout() {
            format!("{server} did not answer within {:?}", self.timeout)
        } else if error.is_connect() {
            format!("cannot connect to {server}")
        } else {
            format!("request to {server} failed")
        };
        PolicyError::Unavailable(format!("{what}: {}", error_chain(error)))
    }
}

/// reqwest's own message is terse ("error sending request"); the causes say what happened.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
