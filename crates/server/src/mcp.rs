//! `/mcp`: the Model Context Protocol server (streamable HTTP) for agent hosts, from the `mcp` crate.
//!
//! Every request is authenticated here exactly like an API request (the same API keys, or ID tokens, and the
//! same identities, roles and scopes): a request without valid credentials gets 401 before it reaches MCP,
//! and the caller rides in the request's extensions to the tools, which run it through the gateway's pipeline.

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Router, middleware};

use crate::AppState;
use crate::auth::Authenticated;

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route_service("/mcp", mcp::http_service(state.pipeline.clone(), state.max_body_bytes))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
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
