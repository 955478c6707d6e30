//! Every way an execution can fail, as a clear result with a stable code (never a panic).

use crate::guardrails::GuardrailViolation;

/// Why an executor call failed; [`code`](Self::code) names the case stably.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// Refused before any Kubernetes call.
    #[error(transparent)]
    Guardrail(#[from] GuardrailViolation),
    /// The action does not fit the live object (e.g. no container of that name).
    #[error("{0}")]
    Target(String),
    /// The API server answered with an error status.
    #[error("the Kubernetes API answered {status} {reason}: {message}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The `reason` of the API's `Status`, e.g. `Conflict`.
        reason: String,
        /// The API server's explanation.
        message: String,
    },
    /// No answer within the call timeout.
    #[error("the Kubernetes API did not answer within {seconds} s")]
    Timeout {
        /// The call timeout, in seconds.
        seconds: u64,
    },
    /// Connection refused, DNS, TLS: the API server could not be reached.
    #[error("cannot reach the Kubernetes API: {message}")]
    Unreachable {
        /// What failed, with its causes.
        message: String,
    },
    /// A configuration or client problem (bad kubeconfig, unexpected response body).
    #[error("{message}")]
    Client {
        /// What went wrong.
        message: String,
    },
}

/// The serializable form of an error, as the ledger records it (the domain's).
pub use domain::payload::ErrorReport;

impl ExecError {
    /// Stable code: `guardrail_denied`, `target_mismatch`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `invalid`, `bad_request`, `api_error`, `timeout`, `unreachable`, `client_error`.
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::Guardrail(_) => "guardrail_denied",
            ExecError::Target(_) => "target_mismatch",
            ExecError::Api { status, .. } => match status {
                400 => "bad_request",
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                409 => "conflict",
                422 => "invalid",
                _ => "api_error",
            },
            ExecError::Timeout { .. } => "timeout",
            ExecError::Unreachable { .. } => "unreachable",
            ExecError::Client { .. } => "client_error",
        }
    }

    /// The API server's status code, if it answered.
    pub fn api_status(&self) -> Option<u16> {
        match self {
            ExecError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error as the ledger records it.
    pub fn report(&self) -> ErrorReport {
        ErrorReport {
            code: self.code().to_owned(),
            status: self.api_status(),
            rule: match self {
                ExecError::Guardrail(v) => Some(v.rule.to_owned()),
                _ => None,
            },
            message: self.to_string(),
        }
    }

    pub(crate) fn client(message: impl Into<String>) -> Self {
        ExecError::Client {
            message: message.into(),
        }
    }

    /// Maps a kube client error; connection failures are told apart from answers.
    pub(crate) fn from_kube(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => ExecError::Api {
                status: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => ExecError::Unreachable {
                message: error_chain(&error),
            },
            other => ExecError::client(error_chain(&other)),
        }
    }
}

/// The error and its sources on one line ("connection refused" is usually at the bottom).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
