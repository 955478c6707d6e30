//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`, generated from the request and response types
//! (utoipa). Each operation is declared on its handler (`#[utoipa::path]`) and routed with utoipa-axum's
//! `routes!`, so a route and its operation cannot drift apart; here are what the operations share: the info,
//! the components, the security and the rejections every operation of a kind can answer.
//!
//! The handlers' own notes are `//` comments, not doc comments: utoipa would make a doc comment the operation's
//! summary.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's shared part: info, components, security. Its operations come from the routes (see
/// [`document`]); `/tile/{path}` alone is listed here (see `transparency::static_routes`).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "DocketOps Ledger",
        description = "A governance gateway for AI agents acting on Kubernetes. Every step of every action is a \
            hash-chained, Ed25519-signed ledger entry. Authenticate with `Authorization: Bearer dkt_…`.",
    ),
    paths(crate::transparency::tile),
    components(schemas(
        gateway::ActionRequest, gateway::Scope, gateway::Access,
        gateway::ActionResponse, gateway::DecisionView,
        gateway::Identity, gateway::IdentityKind, gateway::Role, gateway::IdentityStatus, gateway::NewIdentity,
        gateway::KeyInfo, gateway::IssuedKey, ErrorBody, ErrorDetail, domain::ActionStatus, ApprovalStatus,
        gateway::Freeze,
    )),
    modifiers(&BearerAuth, &Rejections),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The whole document served at `/api/v1/openapi.json`: [`ApiDoc`] with the operation of every documented
/// route.
pub fn document() -> utoipa::openapi::OpenApi {
    complete(crate::routes::documented().into_openapi())
}

/// Adds the rejections to the operations the routes brought: `ApiDoc`'s modifiers ran before they were merged.
pub(crate) fn complete(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    Rejections.modify(&mut document);
    document
}

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
pub(crate) enum ApprovalStatus {
    #[schema(rename = "pending")]
    Pending,
}

/// Every error: `{"error": {"code", "message"}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
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

/// The optional body of suspend, reactivate and revoke.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct Reason {
    reason: Option<String>,
}

/// The optional body of approve and reject.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct Decision {
    comment: Option<String>,
    /// The digest the approver reviewed (from `GET /api/v1/approvals`).
    digest: Option<String>,
}

/// An `audit.k8s.io/v1` EventList (the fields the gateway reads; the rest is ignored).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct EventList {
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
