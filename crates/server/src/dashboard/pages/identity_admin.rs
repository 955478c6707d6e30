//! (being built)

use axum::Router;

use crate::AppState;

/// This module's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
