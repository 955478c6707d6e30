//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, generated from the request and response types
//! (utoipa). The operations are declared here, beside each other, rather than on the handlers; a test holds
//! every declared path to a real route.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API's OpenAPI document; `ApiDoc::openapi()` builds it.
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
        tlog_checkpoint_note, tlog_tile, tlog_checkpoint, tlog_checkpoints, tlog_inclusion, tlog_consistency,
        tlog_receipt, tlog_status,
        list_approvals, approve_action, reject_action,
        audit_events,
        healthz, readyz, metrics,
    ),
    components(schemas(
        gateway::ActionRequest, gateway::Scope, gateway::Access,
        gateway::ActionResponse, gateway::DecisionView,
        gateway::Identity, gateway::IdentityKind, gateway::Role, gateway::IdentityStatus, gateway::NewIdentity,
        gateway::KeyInfo, gateway::IssuedKey, ErrorBody, ErrorDetail, domain::ActionStatus, ApprovalStatus,
    )),
    modifiers(&BearerAuth, &Rejections),
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

/// The answers every operation of a kind can give, added to each operation that does not name them itself:
/// 401 where a credential is needed, 400 where there are parameters or a body, 404 where the path names
/// something, 413 and 415 where there is a body. All with the one error schema.
struct Rejections;

impl Modify for Rejections {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_rejections(operation);
            }
        }
    }
}

fn add_rejections(operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::ParameterIn;
    let parameters: Vec<&utoipa::openapi::path::Parameter> = operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            utoipa::openapi::RefOr::T(p) => Some(p),
            utoipa::openapi::RefOr::Ref(_) => None,
        })
        .collect();
    let in_path = parameters.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let has_body = operation.request_body.is_some();
    // `security(())` (an empty requirement) marks the operations anyone may call.
    let open = operation.security.as_ref().is_some_and(|s| {
        serde_json::to_value(s).is_ok_and(|v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|r| r == &serde_json::json!({})))
        })
    });
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description).into());
    };
    if !open {
        add("401", "Missing, malformed, unknown, revoked or suspended credential");
    }
    if !parameters.is_empty() || has_body {
        add("400", "A parameter or the body is not valid");
    }
    if in_path {
        add("404", "No such object");
    }
    if has_body {
        add("413", "The body is over the size limit");
        add("415", "The body is not sent as application/json");
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The `status` filter of `GET /api/v1/approvals`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
enum ApprovalStatus {
    #[schema(rename = "pending")]
    Pending,
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
    /// Stable code, e.g. `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `unavailable`.
    code: String,
    message: String,
}

/// `GET /api/v1/openapi.json`: the document as JSON.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

// The operations. The bodies are never called: these functions only carry the declarations. 401, 400, 404,
// 413 and 415 are added by `Rejections` where they apply; each names its own 403, 409 and 503.

#[utoipa::path(post, path = "/api/v1/actions", tag = "actions", request_body = gateway::ActionRequest,
    description = "Runs an action through guardrails, risk, policy, execution and verification. HTTP 200 for \
        every decided action, whatever the decision (see `status`).",
    responses(
        (status = 200, description = "Decided (COMPLETED, DENIED, PENDING_APPROVAL, FAILED; PREVIEWED for a dry run)", body = gateway::ActionResponse),
        (status = 400, description = "Not a valid action, or not JSON at all (recorded as action.rejected)", body = ErrorBody),
        (status = 413, description = "The body is over the size limit, or the request could not be recorded whole (recorded as action.rejected)", body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for another request", body = ErrorBody),
        (status = 403, description = "The identity lacks the operator role", body = ErrorBody),
        (status = 503, description = "No Kubernetes cluster configured", body = ErrorBody)))]
#[allow(dead_code)]
fn submit_action() {}

#[utoipa::path(get, path = "/api/v1/actions/{id}", tag = "actions",
    description = "The action, its status and every ledger entry that belongs to it (auditors: any action; \
        operators: their own; anyone else's is 404).",
    params(("id" = String, Path, description = "act_…"),
           ("wait" = Option<u64>, Query, minimum = 0, maximum = 60,
            description = "Long poll: seconds (at most 60) to wait for a final status")),
    responses((status = 200, description = "{action, entries}")))]
#[allow(dead_code)]
fn get_action() {}

#[utoipa::path(get, path = "/api/v1/actions", tag = "actions",
    description = "Newest first (operators: their own; auditors: all). Pass `next_before` as `before` for the \
        next page (null at the end).",
    params(("status" = Option<domain::ActionStatus>, Query), ("namespace" = Option<String>, Query),
           ("identity" = Option<String>, Query),
           ("before" = Option<String>, Query, description = "The id of the last action of the previous page (empty: from the newest)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{actions: [...], next_before}"),
              (status = 404, description = "`before` names no action the caller may see", body = ErrorBody)))]
#[allow(dead_code)]
fn list_actions() {}

#[utoipa::path(post, path = "/api/v1/identities", tag = "identities", request_body = gateway::NewIdentity,
    description = "Admin. Creates an identity and its first API key, shown only in this response.",
    responses((status = 201, description = "{identity, api_key, key, ledger_entry_id}"),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "Name taken", body = ErrorBody)))]
#[allow(dead_code)]
fn create_identity() {}

#[utoipa::path(get, path = "/api/v1/identities", tag = "identities",
    description = "Admin. A page of identities in creation order; pass `next_after` as `after` for the next \
        page (null at the end).",
    params(("after" = Option<String>, Query, description = "The id of the last identity of the previous page (empty: from the start)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{identities: [Identity], next_after}"),
              (status = 400, description = "A limit out of range", body = ErrorBody),
              (status = 404, description = "`after` names no identity", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody)))]
#[allow(dead_code)]
fn list_identities() {}

#[utoipa::path(get, path = "/api/v1/identities/{id}", tag = "identities",
    description = "Admin, or the identity itself. `keys` holds its first 100 keys (all of them: `…/keys`). With the identity's trust score (kept beside the ledger, \
                   recomputable with `docketops trust --bundle`) and one page of the entries that moved it, \
                   newest first; `trust.next_before_seq` (null on the last page) is the next page's `before_seq`. \
                   `trust.as_of_seq`: the score counts every entry up to this seq.",
    params(("id" = String, Path),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Trust changes per page: 1–200, default 50"),
           ("before_seq" = Option<u64>, Query, description = "Only trust changes of entries before this seq")),
    responses((status = 200, description = "{identity, keys, trust_score, trust: {identity_id, score, as_of_seq, \
                                            changes_total, changes: [{seq, entry_id, action_id, kind, delta, score}], next_before_seq}}"),
              (status = 400, description = "limit out of range, or an unknown parameter", body = ErrorBody),
              (status = 403, description = "Neither an admin nor this identity", body = ErrorBody)))]
#[allow(dead_code)]
fn get_identity() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/suspend", tag = "identities",
    description = "Admin (not on itself). Optional body {\"reason\": \"…\"}.", params(("id" = String, Path)),
    request_body(content = Option<Reason>, description = "Optional"),
    responses((status = 200, description = "{identity, ledger_entry_id}"),
              (status = 403, description = "Not an admin, or the admin itself", body = ErrorBody),
              (status = 409, description = "Not active", body = ErrorBody)))]
#[allow(dead_code)]
fn suspend_identity() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/reactivate", tag = "identities",
    description = "Admin. A suspended identity only.", params(("id" = String, Path)),
    request_body(content = Option<Reason>, description = "Optional"),
    responses((status = 200, description = "{identity, ledger_entry_id}"),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "Not suspended", body = ErrorBody)))]
#[allow(dead_code)]
fn reactivate_identity() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/revoke", tag = "identities",
    description = "Admin (not on itself). For good, with every key.", params(("id" = String, Path)),
    request_body(content = Option<Reason>, description = "Optional"),
    responses((status = 200, description = "{identity, ledger_entry_id}"),
              (status = 403, description = "Not an admin, or the admin itself", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
#[allow(dead_code)]
fn revoke_identity() {}

#[utoipa::path(get, path = "/api/v1/identities/{id}/keys", tag = "identities",
    description = "Admin. A page of the identity's keys in creation order; pass `next_after` as `after` for the \
        next page (null at the end).",
    params(("id" = String, Path),
           ("after" = Option<String>, Query, description = "The id of the last key of the previous page (empty: from the start)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{keys: [KeyInfo], next_after}"),
              (status = 400, description = "A limit out of range", body = ErrorBody),
              (status = 404, description = "No such identity, or `after` names no key of it", body = ErrorBody),
              (status = 403, description = "Not an admin", body = ErrorBody)))]
#[allow(dead_code)]
fn list_keys() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/keys", tag = "identities", params(("id" = String, Path)),
    description = "Admin. An additional key, shown once.",
    responses((status = 201, body = gateway::IssuedKey),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "The identity is revoked", body = ErrorBody)))]
#[allow(dead_code)]
fn issue_key() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/keys/{key_id}/rotate", tag = "identities",
    params(("id" = String, Path), ("key_id" = String, Path)),
    description = "Admin. A new key replaces the old one, which stops working at once.",
    responses((status = 201, body = gateway::IssuedKey),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "The key or identity is not active", body = ErrorBody)))]
#[allow(dead_code)]
fn rotate_key() {}

#[utoipa::path(post, path = "/api/v1/identities/{id}/keys/{key_id}/revoke", tag = "identities",
    params(("id" = String, Path), ("key_id" = String, Path)), description = "Admin.",
    responses((status = 200, description = "{key, ledger_entry_id}"),
              (status = 403, description = "Not an admin", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
#[allow(dead_code)]
fn revoke_key() {}

#[utoipa::path(get, path = "/api/v1/ledger/verify", tag = "ledger",
    description = "Auditor. Verifies every hash, link and signature (docs/ledger-format.md).",
    params(("strict" = Option<bool>, Query)),
    responses((status = 200, description = "{valid, entries_checked, head, first_invalid, keys}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn verify_ledger() {}

#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "ledger", description = "Auditor.",
    params(("after_seq" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64,
            description = "Entries after this seq (default 0: from the start)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{entries, next_after_seq}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn list_entries() {}

#[utoipa::path(get, path = "/api/v1/ledger/entries/{id}", tag = "ledger", description = "Auditor.",
    params(("id" = String, Path, pattern = "^evt_", max_length = 64, description = "evt_…")),
    responses((status = 200, description = "An entry"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn get_entry() {}

#[utoipa::path(get, path = "/api/v1/ledger/export", tag = "ledger",
    description = "Auditor. The offline bundle (JSON lines) that `docketops verify --bundle` checks.",
    responses((status = 200, description = "The bundle", content_type = "application/jsonl"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn export_ledger() {}

#[utoipa::path(get, path = "/api/v1/ledger/keys", tag = "ledger", description = "Auditor. Public signing keys.",
    responses((status = 200, description = "{keys, signing_key_id}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn ledger_keys() {}

#[utoipa::path(get, path = "/checkpoint", tag = "transparency",
    description = "Auditor, or anyone when the log is public. The latest checkpoint (C2SP tlog-checkpoint) as a \
        signed note with its witness cosignatures (docs/transparency.md).",
    responses((status = 200, description = "The signed note", content_type = "text/plain"),
              (status = 404, description = "No checkpoint yet", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn tlog_checkpoint_note() {}

#[utoipa::path(get, path = "/tile/{path}", tag = "transparency",
    description = "Auditor, or anyone when public. C2SP tlog-tiles: `tile/<L>/<N>[.p/<W>]` hash tiles and \
        `tile/entries/<N>[.p/<W>]` entry bundles (each leaf: a u16 length and the entry's 32-byte chain hash). \
        Immutable once served.",
    params(("path" = String, Path, description = "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`")),
    responses((status = 200, description = "Tile bytes", content_type = "application/octet-stream"),
              (status = 404, description = "Not a tile path, or not in the log yet", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn tlog_tile() {}

#[utoipa::path(get, path = "/api/v1/ledger/checkpoint", tag = "transparency",
    description = "Auditor, or anyone when public. The latest checkpoint (or that of exactly `size` entries) as \
        JSON, with the log's verifier keys and the cosignatures.",
    params(("size" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64, description = "A stored checkpoint's size")),
    responses((status = 200, description = "{origin, size, root_hash, note, key_id, created_at, verifier_keys, cosignatures}"),
              (status = 404, description = "No checkpoint (of that size) yet", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn tlog_checkpoint() {}

#[utoipa::path(get, path = "/api/v1/ledger/checkpoints", tag = "transparency",
    description = "Auditor, or anyone when public. Every signed checkpoint, largest first.",
    params(("before" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64, description = "Sizes below this (a page's next_before)"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, description = "{checkpoints, next_before}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn tlog_checkpoints() {}

#[utoipa::path(get, path = "/api/v1/ledger/proofs/inclusion", tag = "transparency",
    description = "Auditor, or anyone when public. The RFC 6962 audit path of an entry (by id or seq) in the \
        tree of `size` entries (default: the latest checkpoint's).",
    params(("entry" = Option<String>, Query, description = "evt_…"),
           ("seq" = Option<u64>, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_i64, description = "Instead of entry (both: the same entry)"),
           ("size" = Option<u64>, Query, minimum = 0, maximum = 9_223_372_036_854_775_807_i64)),
    responses((status = 200, description = "{entry_id, seq, leaf_index, tree_size, chain_hash, leaf_hash, root_hash, proof}"),
              (status = 404, description = "No such entry, or no tree of that size yet", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn tlog_inclusion() {}

#[utoipa::path(get, path = "/api/v1/ledger/proofs/consistency", tag = "transparency",
    description = "Auditor, or anyone when public. The RFC 6962 proof that the tree of `to` entries (default: the \
        latest checkpoint's) extends the tree of `from` entries.",
    params(("from" = u64, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_i64), ("to" = Option<u64>, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_i64)),
    responses((status = 200, description = "{from, to, from_root, to_root, proof}"),
              (status = 404, description = "No tree of that size yet, or `from` above `to`", body = ErrorBody),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn tlog_consistency() {}

#[utoipa::path(get, path = "/api/v1/ledger/receipts/{id}", tag = "transparency",
    description = "The auditor, or the identity whose action the entry belongs to (or that wrote it). The entry's receipt, a C2SP \
        tlog-proof file that `docketops verify --receipt` checks offline; 404 `not_yet_covered` until a \
        checkpoint covers the entry (about a second; `wait` long-polls).",
    params(("id" = String, Path, description = "evt_…"),
           ("wait" = Option<u64>, Query, minimum = 0, maximum = 60, description = "Seconds to wait for a checkpoint")),
    responses((status = 200, description = "The receipt", content_type = "text/x.tlog-proof")))]
#[allow(dead_code)]
fn tlog_receipt() {}

#[utoipa::path(get, path = "/api/v1/ledger/transparency", tag = "transparency",
    description = "Auditor, or anyone when public. Tree size, latest and cosigned checkpoints, each witness's lag.",
    responses((status = 200, description = "{origin, tree_size, checkpoint_size, cosigned_size, quorum, witnesses}"),
              (status = 403, description = "Not an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn tlog_status() {}

#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals",
    description = "Approvers and auditors. Actions waiting for an approval, oldest first, with the digest an \
        approval binds to and when they expire.",
    params(("status" = Option<ApprovalStatus>, Query, description = "pending (the only value)")),
    responses((status = 200, description = "{approvals: [...]}"),
              (status = 403, description = "Neither an approver nor an auditor", body = ErrorBody)))]
#[allow(dead_code)]
fn list_approvals() {}

#[utoipa::path(post, path = "/api/v1/approvals/{action_id}/approve", tag = "approvals",
    description = "Approver (never the requester). The action and its target must still be what was previewed; \
        once enough approvals name the current digest, the action executes exactly once. Optional body \
        {\"comment\": \"…\", \"digest\": \"…\"}. Refusals are recorded as approval.refused.",
    params(("action_id" = String, Path)),
    request_body(content = Option<Decision>, description = "Optional"),
    responses((status = 200, body = gateway::ActionResponse),
              (status = 403, description = "Not an approver, or the requester", body = ErrorBody),
              (status = 409, description = "Not pending, expired, already decided, or the target changed", body = ErrorBody),
              (status = 503, description = "The action's cluster is not configured", body = ErrorBody)))]
#[allow(dead_code)]
fn approve_action() {}

#[utoipa::path(post, path = "/api/v1/approvals/{action_id}/reject", tag = "approvals",
    description = "Approver (never the requester). The action becomes REJECTED.", params(("action_id" = String, Path)),
    request_body(content = Option<Decision>, description = "Optional"),
    responses((status = 200, body = gateway::ActionResponse),
              (status = 403, description = "Not an approver, or the requester", body = ErrorBody),
              (status = 409, description = "Not pending, expired or already decided", body = ErrorBody),
              (status = 503, description = "The action's cluster is not configured", body = ErrorBody)))]
#[allow(dead_code)]
fn reject_action() {}

#[utoipa::path(post, path = "/api/v1/audit/events", tag = "audit",
    description = "The API server's audit webhook backend: an audit.k8s.io/v1 EventList. Changes in governed \
        namespaces by anyone but the gateway's executors are recorded once each as audit.bypass_detected. \
        Authenticate with the --audit-webhook-token or an auditor's API key.",
    params(("cluster" = Option<String>, Query, description = "which cluster sends (default: the default cluster)"),
           ("timeout" = Option<String>, Query, description = "The API server's request timeout; ignored")),
    request_body = EventList,
    responses((status = 200, description = "{events, bypasses_recorded, bypasses_already_recorded}"),
              (status = 400, description = "Not an EventList, or an unknown cluster", body = ErrorBody),
              (status = 403, description = "An API key that is not an auditor's", body = ErrorBody),
              (status = 503, description = "No Kubernetes cluster configured", body = ErrorBody)))]
#[allow(dead_code)]
fn audit_events() {}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200)))]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200), (status = 503, description = "The database is not reachable", body = ErrorBody)))]
#[allow(dead_code)]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format")))]
#[allow(dead_code)]
fn metrics() {}

/// The optional body of suspend, reactivate and revoke.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Reason {
    reason: Option<String>,
}

/// The optional body of approve and reject.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Decision {
    comment: Option<String>,
    /// The digest the approver reviewed (from `GET /api/v1/approvals`).
    digest: Option<String>,
}

/// An `audit.k8s.io/v1` EventList (the fields the gateway reads; the rest is ignored).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct EventList {
    #[schema(pattern = "^EventList$")]
    kind: String,
    #[schema(value_type = Option<String>)]
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    items: Vec<AuditEvent>,
}

/// One audit event: its id and user are required.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AuditEvent {
    #[serde(rename = "auditID")]
    audit_id: String,
    user: AuditUser,
    #[schema(nullable = false)]
    verb: Option<String>,
    #[schema(nullable = false)]
    stage: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AuditUser {
    #[schema(nullable = false)]
    username: Option<String>,
    #[schema(nullable = false)]
    groups: Option<Vec<String>>,
}
