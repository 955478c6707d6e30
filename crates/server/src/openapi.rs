//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, generated from the request and response types
//! (utoipa). The operations are declared here, beside each other, rather than on the handlers; a test holds
//! every declared path to a real route.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "DocketOps Ledger",
        description = "A governance gateway for AI agents acting on Kubernetes. Every step of every action is a \
            hash-chained, Ed25519-signed ledger entry. Authenticate with `Authorization: Bearer dkt_…`.",
    ),
    paths(
        submit_action, get_action, list_actions,
        create_identity, list_identities, get_identity, suspend_identity, reactivate_identity, revoke_identity,
        list_keys, issue_key, rotate_key, revoke_key,
        verify_ledger, list_entries, get_entry, export_ledger, ledger_keys,
        list_approvals, approve_action, reject_action,
        audit_events,
        healthz, readyz, metrics,
    ),
    components(schemas(
        gateway::ActionRequest, gateway::Scope, gateway::Access,
        gateway::ActionResponse, gateway::DecisionView,
        gateway::Identity, gateway::IdentityKind, gateway::Role, gateway::Status, gateway::NewIdentity,
        gateway::KeyInfo, gateway::IssuedKey, ErrorBody, ErrorDetail,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("dkt_<agent|human>_<key>")
                        .build(),
                ),
            );
        }
    }
}

/// Every error: `{"error": {"code", "message"}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// Stable code, e.g. `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `payload_too_large`.
    code: String,
    message: String,
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

// The operations. The bodies are never called: these functions only carry the declarations.

#[utoipa::path(post, path = "/api/v1/actions", tag = "actions", request_body = gateway::ActionRequest,
    description = "Runs an action through guardrails, risk, policy, execution and verification. HTTP 200 for \
        every decided action, whatever the decision (see `status`).",
    responses(
        (status = 200, description = "Decided (COMPLETED, DENIED, PENDING_APPROVAL, FAILED; PREVIEWED for a dry run)", body = gateway::ActionResponse),
        (status = 400, description = "Not a valid action (recorded as action.rejected)", body = ErrorBody),
        (status = 401, description = "Missing, malformed, unknown, revoked or suspended key", body = ErrorBody),
        (status = 403, description = "The identity lacks the operator role", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 503, description = "No Kubernetes cluster configured", body = ErrorBody)))]
#[allow(dead_code)]
fn submit_action() {}

#[utoipa::path(get, path = "/api/v1/actions/{id}", tag = "actions",
    description = "The action, its status and every ledger entry that belongs to it (auditors: any action; \
        operators: their own).",
    params(("id" = String, Path, description = "act_…"),
           ("wait" = Option<u64>, Query, description = "Long poll: seconds (≤ 60) to wait for a final status")),
    responses((status = 200, description = "{action, entries}"), (status = 404, body = ErrorBody)))]
#[allow(dead_code)]
fn get_action() {}

#[utoipa::path(get, path = "/api/v1/actions", tag = "actions", description = "Newest first.",
    params(("status" = Option<String>, Query), ("namespace" = Option<String>, Query),
           ("identity" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1–1000, default 100")),
    responses((status = 200, description = "{actions: [...]}")))]
#[allow(dead_code)]
fn list_actions() {}

#[utoipa::path(post, path = "/api/v1/identities", tag = "identities", request_body = gateway::NewIdentity,
    description = "Admin. Creates an identity and its first API key, shown only in this response.",
    responses((status = 201, description = "{identity, api_key, key, ledger_entry_id}"),
              (status = 400, body = ErrorBody), (status = 409, description = "Name taken", body = ErrorBody)))]
#[allow(dead_code)]
fn create_identity() {}

#[utoipa::path(get, path = "/api/v1/identities", tag = "identities", description = "Admin.",
    responses((status = 200, description = "{identities: [Identity]}")))]
#[allow(dead_code)]
fn list_identities() {}

#[utoipa::path(get, path = "/api/v1/identities/{id}", tag = "identities",
    description = "Admin, or the identity itself.", params(("id" = String, Path)),
    responses((status = 200, description = "{identity, keys}"), (status = 404, body = ErrorBody)))]
#[allow(dead_code)]
fn get_identity() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/suspend", tag = "identities",
    description = "Admin. Optional body {\"reason\": \"…\"}.", params(("id" = String, Path)),
    responses((status = 200, description = "{identity, ledger_entry_id}"), (status = 409, body = ErrorBody)))]
#[allow(dead_code)]
fn suspend_identity() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/reactivate", tag = "identities",
    description = "Admin. A suspended identity only.", params(("id" = String, Path)),
    responses((status = 200, description = "{identity, ledger_entry_id}"), (status = 409, body = ErrorBody)))]
#[allow(dead_code)]
fn reactivate_identity() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/revoke", tag = "identities",
    description = "Admin. For good, with every key.", params(("id" = String, Path)),
    responses((status = 200, description = "{identity, ledger_entry_id}"), (status = 409, body = ErrorBody)))]
#[allow(dead_code)]
fn revoke_identity() {}

#[utoipa::path(get, path = "/api/v1/identities/{id}/keys", tag = "identities", params(("id" = String, Path)),
    responses((status = 200, description = "{keys: [KeyInfo]}")))]
#[allow(dead_code)]
fn list_keys() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/keys", tag = "identities", params(("id" = String, Path)),
    description = "Admin. An additional key, shown once.", responses((status = 201, body = gateway::IssuedKey)))]
#[allow(dead_code)]
fn issue_key() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/keys/{key_id}/rotate", tag = "identities",
    params(("id" = String, Path), ("key_id" = String, Path)),
    description = "Admin. A new key replaces the old one, which stops working at once.",
    responses((status = 201, body = gateway::IssuedKey), (status = 409, body = ErrorBody)))]
#[allow(dead_code)]
fn rotate_key() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/keys/{key_id}/revoke", tag = "identities",
    params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 200, description = "{key, ledger_entry_id}"), (status = 409, body = ErrorBody)))]
#[allow(dead_code)]
fn revoke_key() {}

#[utoipa::path(get, path = "/api/v1/ledger/verify", tag = "ledger",
    description = "Auditor. Verifies every hash, link and signature (docs/ledger-format.md).",
    params(("strict" = Option<bool>, Query)),
    responses((status = 200, description = "{valid, entries_checked, head, first_invalid, keys}")))]
#[allow(dead_code)]
fn verify_ledger() {}

#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "ledger", description = "Auditor.",
    params(("after_seq" = Option<u64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "{entries, next_after_seq}")))]
#[allow(dead_code)]
fn list_entries() {}

#[utoipa::path(get, path = "/api/v1/ledger/entries/{id}", tag = "ledger", description = "Auditor.",
    params(("id" = String, Path)), responses((status = 200, description = "An entry"), (status = 404, body = ErrorBody)))]
#[allow(dead_code)]
fn get_entry() {}

#[utoipa::path(get, path = "/api/v1/ledger/export", tag = "ledger",
    description = "Auditor. The offline bundle (JSON lines) that `docketops verify --bundle` checks.",
    responses((status = 200, description = "application/jsonl")))]
#[allow(dead_code)]
fn export_ledger() {}

#[utoipa::path(get, path = "/api/v1/ledger/keys", tag = "ledger", description = "Auditor. Public signing keys.",
    responses((status = 200, description = "{keys, signing_key_id}")))]
#[allow(dead_code)]
fn ledger_keys() {}

#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals",
    description = "Approvers and auditors. Actions waiting for an approval, oldest first, with the digest an \
        approval binds to and when they expire.",
    params(("status" = Option<String>, Query, description = "pending (the only value)")),
    responses((status = 200, description = "{approvals: [...]}")))]
#[allow(dead_code)]
fn list_approvals() {}

#[utoipa::path(post, path = "/api/v1/approvals/{action_id}/approve", tag = "approvals",
    description = "Approver (never the requester). The action and its target must still be what was previewed; \
        once enough approvals name the current digest, the action executes exactly once. Optional body \
        {\"comment\": \"…\"}. Refusals are recorded as approval.refused.",
    params(("action_id" = String, Path)),
    responses((status = 200, body = gateway::ActionResponse), (status = 403, body = ErrorBody),
              (status = 409, description = "Not pending, expired, already decided, or the target changed", body = ErrorBody)))]
#[allow(dead_code)]
fn approve_action() {}

#[utoipa::path(post, path = "/api/v1/approvals/{action_id}/reject", tag = "approvals",
    description = "Approver (never the requester). The action becomes REJECTED.", params(("action_id" = String, Path)),
    responses((status = 200, body = gateway::ActionResponse), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[allow(dead_code)]
fn reject_action() {}

#[utoipa::path(post, path = "/api/v1/audit/events", tag = "audit",
    description = "The API server's audit webhook backend: an audit.k8s.io/v1 EventList. Changes in governed \
        namespaces by anyone but the gateway's executors are recorded once each as audit.bypass_detected. \
        Authenticate with the --audit-webhook-token or an auditor's API key.",
    params(("cluster" = Option<String>, Query, description = "which cluster sends (default: the default cluster)")),
    responses((status = 200, description = "{events, bypasses_recorded, bypasses_already_recorded}"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
#[allow(dead_code)]
fn audit_events() {}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200)))]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()), responses((status = 200), (status = 503)))]
#[allow(dead_code)]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format")))]
#[allow(dead_code)]
fn metrics() {}
