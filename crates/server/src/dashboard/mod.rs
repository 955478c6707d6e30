//! The built-in web dashboard: server-rendered HTML (askama templates in `templates/`), no Node build.
//!
//! Pages: the ledger timeline (filters; new entries appear live with a small script, or on reload without
//! it), an action's whole chain with its dry-run diff, pending approvals with approve/reject, identities
//! with roles, scopes and a trust chart, verification with progress, and the export download. Every page
//! works without JavaScript; every form carries a CSRF token; responses carry a strict
//! Content-Security-Policy (no inline script or style) and are never cached.

mod pages;
mod session;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;
pub use session::{SESSION_COOKIE, Session, constant_time_eq};

/// Dashboard state shared by the handlers of one gateway process.
#[derive(Debug, Clone, Default)]
pub struct DashboardState {
    /// Set the `Secure` attribute on cookies (the gateway serves HTTPS).
    pub secure_cookies: bool,
    /// Verification runs started from the dashboard, by job id (kept in this process: a job's progress
    /// page must reach the replica that runs it).
    jobs: Arc<Mutex<HashMap<String, VerifyJob>>>,
}

impl DashboardState {
    /// A state with no verification jobs yet; `secure_cookies` when the gateway serves HTTPS.
    pub fn new(secure_cookies: bool) -> DashboardState {
        DashboardState {
            secure_cookies,
            jobs: Arc::default(),
        }
    }
}

/// A verification started from the dashboard.
#[derive(Debug, Clone)]
struct VerifyJob {
    started_by: String,
    checked: u64,
    total: u64,
    result: Option<Result<ledger_core::VerifyReport, String>>,
}

/// The dashboard's pages, sign-in and static files, at the site's root; every response carries the
/// security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/timeline", get(pages::timeline))
        .route("/timeline/rows", get(pages::timeline_rows))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/login/ldap", post(pages::ldap_login))
        .route("/login/oidc", get(pages::oidc_start))
        .route("/auth/oidc/callback", get(pages::oidc_callback))
        .route("/actions/{id}", get(pages::action))
        .route("/approvals", get(pages::approvals))
        .route("/approvals/{id}", post(pages::decide))
        .route("/identities", get(pages::identities))
        .route("/identities/{id}", get(pages::identity))
        .route("/safety", get(pages::safety))
        .route("/safety/freeze", post(pages::freeze))
        .route("/safety/freezes/{id}/lift", post(pages::lift))
        .route("/verify", get(pages::verify_form).post(pages::verify_start))
        .route("/verify/{job}", get(pages::verify_job))
        .route("/export", get(pages::export))
        .merge(pages::actions_list::routes())
        .merge(pages::identity_admin::routes())
        .route("/static/dashboard.css", get(stylesheet))
        .route("/static/dashboard.js", get(script))
        .layer(axum::middleware::map_response(security_headers))
}

/// No inline script or style, no framing, forms only to this origin; nothing cached.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: with it browsers send `Origin: null` on form posts, and the origin check needs it.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../static/dashboard.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../static/dashboard.js"),
    )
        .into_response()
}

fn now() -> String {
    gateway::now()
}

/// What a page handler can fail with: a redirect to sign in, or an error page with a fitting status.
#[derive(Debug)]
pub enum PageError {
    /// No valid session: redirects to `/login`.
    SignIn,
    /// An error page.
    Page {
        /// The response's status.
        status: StatusCode,
        /// What went wrong, shown on the page.
        message: String,
    },
}

impl PageError {
    fn forbidden(message: impl Into<String>) -> PageError {
        PageError::Page {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> PageError {
        PageError::Page {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> PageError {
        PageError::Page {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    fn internal(error: impl std::fmt::Display) -> PageError {
        tracing::error!(%error, "dashboard request failed");
        PageError::Page {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the gateway could not answer; see its log".into(),
        }
    }
}

impl From<gateway::GatewayError> for PageError {
    fn from(error: gateway::GatewayError) -> PageError {
        let api = crate::ApiError::from(error);
        PageError::Page {
            status: api.status,
            message: api.message,
        }
    }
}

impl From<storage::StorageError> for PageError {
    fn from(error: storage::StorageError) -> PageError {
        PageError::internal(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => Redirect::to("/login").into_response(),
            PageError::Page { status, message } => {
                let page = views::ErrorPage {
                    status: status.as_u16(),
                    reason: status.canonical_reason().unwrap_or("Error").to_owned(),
                    message,
                };
                (status, views::html(&page)).into_response()
            }
        }
    }
}
