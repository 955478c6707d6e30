//! `/mcp`: the Model Context Protocol server (streamable HTTP) for agent hosts, from the `mcp` crate.
//!
//! Every request is authenticated here exactly like an API request (the same API keys, or ID tokens, and the
//! same identities, roles and scopes): a request without valid credentials gets 401 before it reaches MCP,
//! and the caller rides in the request's extensions to the tools, which run it through the gateway's pipeline.
//! Bodies are checked before they reach MCP, and every refusal is a JSON-RPC error object (rmcp's own are
//! plain text, which JSON-RPC clients cannot read).

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, middleware};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Authenticated;

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route_service("/mcp", mcp::http_service(state.pipeline.clone(), state.max_body_bytes))
        .route_layer(middleware::from_fn(json_rpc_errors))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
}

/// JSON-RPC error codes (JSON-RPC 2.0 §5.1).
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INTERNAL_ERROR: i64 = -32603;

fn json_rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

/// A POST body must be one JSON-RPC message: 400 Parse error for text that is not JSON, 400 Invalid Request
/// for JSON that is not a message. Errors MCP itself answers in plain text become JSON-RPC errors too.
async fn json_rpc_errors(request: Request, next: Next) -> Response {
    let request = if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        // The router's body limit is around this body: over it, reading fails.
        let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
            return json_rpc_error(StatusCode::PAYLOAD_TOO_LARGE, INVALID_REQUEST, "Request body too large");
        };
        if crate::body::require_json(&parts.headers).is_err() {
            let message = "Invalid Request: Content-Type must be application/json";
            return json_rpc_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, INVALID_REQUEST, message);
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Err(_) => return json_rpc_error(StatusCode::BAD_REQUEST, PARSE_ERROR, "Parse error"),
            Ok(message) if !mcp::is_client_message(&message) => {
                return json_rpc_error(StatusCode::BAD_REQUEST, INVALID_REQUEST, "Invalid Request");
            }
            Ok(_) => Request::from_parts(parts, Body::from(bytes)),
        }
    } else {
        request
    };
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if response.status().as_u16() < 400 || is_json {
        return response;
    }
    let status = response.status();
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let code = if status.is_server_error() {
        INTERNAL_ERROR
    } else {
        INVALID_REQUEST
    };
    let mut wrapped = json_rpc_error(status, code, String::from_utf8_lossy(&text).trim());
    if let Some(allow) = allow {
        wrapped.headers_mut().insert(header::ALLOW, allow);
    }
    wrapped
}

/// 401 without valid credentials; otherwise the caller goes along in the request's extensions.
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(Authenticated(caller)) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(error) => error.into_response(),
    }
}
