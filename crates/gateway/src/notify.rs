//! The approval notification hook: when an action starts waiting for an approval, the gateway POSTs a JSON
//! document to a configured URL (chat bridge, pager, ticket system). Best effort: one attempt with a 5 s
//! limit, in the background; a failure is logged and never delays or changes the action (the ledger, not the
//! hook, is the record).
//!
//! Payload:
//! ```json
//! {"event": "approval.requested", "action_id": "act_…", "ledger_entry_id": "evt_…",
//!  "requester": {"id": "agt_…", "name": "ci-bot"},
//!  "action": {"action_type": "DELETE", "namespace": "staging", "resource_kind": "Deployment", "resource_name": "web-api"},
//!  "risk": "HIGH", "reasons": ["…"], "digest": "sha256:…", "expires_at": "…",
//!  "approve": "/api/v1/approvals/act_…/approve", "reject": "/api/v1/approvals/act_…/reject"}
//! ```

use std::time::Duration;

use serde_json::Value;

use crate::GatewayError;

/// The configured hook: where notifications go, and the client that sends them.
#[derive(Debug, Clone)]
pub struct ApprovalWebhook {
    url: String,
    client: reqwest::Client,
}

impl ApprovalWebhook {
    /// A hook that POSTs to `url`; `BadRequest` unless it is an `http://` or `https://` URL.
    pub fn new(url: &str) -> Result<Self, GatewayError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(GatewayError::BadRequest(format!(
                "approval webhook {url:?} must be an http(s) URL"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| GatewayError::BadRequest(format!("approval webhook: {e}")))?;
        Ok(Self {
            url: url.to_owned(),
            client,
        })
    }

    /// Sends `payload` in the background.
    pub fn send(&self, payload: Value) {
        let (client, url) = (self.client.clone(), self.url.clone());
        tokio::spawn(async move {
            match client.post(&url).json(&payload).send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(%url, status = %response.status(), "approval webhook refused the notification")
                }
                Err(error) => tracing::warn!(%url, %error, "approval webhook unreachable"),
            }
        });
    }
}
