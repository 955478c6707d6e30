//! The DocketOps HTTP API.
//!
//! Architecture invariant: this is the only crate that speaks HTTP. Handlers hold no business logic
//! of their own: they authenticate, call the storage crate (reads, the appender, verification) and
//! render JSON. Every error leaves as `{"error": {"code", "message"}}` with a fitting status.
#![warn(missing_docs)]

pub use gateway::apikey;
mod actions;
mod approvals;
mod audit;
mod auth;
mod body;
mod budgets;
pub mod dashboard;
mod error;
mod freeze;
mod identities;
mod kubeproxy;
mod mcp;
pub mod openapi;
mod routes;
mod traces;
mod transparency;
pub mod witness;

use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use ledger_core::LedgerPublicKey;
use storage::{Ledger, Store};

pub use auth::Authenticated;
pub use error::ApiError;

/// Request bodies larger than this are refused with 413, unless configured otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database: the ledger's entries and what is kept beside them (actions, identities, sessions).
    pub store: Store,
    /// The ledger writer: every change is appended through it.
    pub ledger: Ledger,
    /// The key this gateway signs with; verification requires the chain to contain it.
    pub signing_key: LedgerPublicKey,
    /// Identities and API keys: authentication and the identity routes.
    pub directory: gateway::Directory,
    /// The governed action pipeline.
    pub pipeline: std::sync::Arc<gateway::Pipeline>,
    /// Prometheus metrics, served at `/metrics`.
    pub metrics: std::sync::Arc<gateway::Metrics>,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// The web dashboard's cookie setting and verification jobs.
    pub dashboard: dashboard::DashboardState,
    /// Sign-in for people through OpenID Connect and LDAP (API keys need none of this).
    pub identity_providers: IdentityProviders,
    /// The bearer token the API servers' audit webhooks present (`POST /api/v1/audit/events`).
    pub audit_webhook_token: Option<String>,
    /// The transparency log: checkpoints, witnesses, receipts.
    pub transparency: std::sync::Arc<gateway::Transparency>,
}

/// The identity providers this gateway trusts, if any.
#[derive(Debug, Clone, Default)]
pub struct IdentityProviders {
    /// The OpenID Connect provider: bearer tokens and the dashboard's single sign-on.
    pub oidc: Option<std::sync::Arc<::auth::OidcProvider>>,
    /// The LDAP directory: the dashboard's sign-in with a user name and password.
    pub ldap: Option<std::sync::Arc<::auth::LdapDirectory>>,
}

/// TLS certificate and key in PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate, with its chain.
    pub cert: PathBuf,
    /// The certificate's private key.
    pub key: PathBuf,
}

/// Every route of the gateway over `state`: `/api/v1`, health, metrics, MCP, the kubectl proxy, the
/// dashboard and the transparency log's checkpoint and tiles; errors render as JSON.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Serves `router` on `listener` (HTTPS when `tls` is given) until `shutdown` resolves; in-flight
/// requests get up to 30 s to finish.
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let on_shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_shutdown.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    let app = router.into_make_service();
    match tls {
        Some(files) => {
            // Name the crypto provider: when more than one is compiled in (a dependency may enable
            // ring next to aws-lc-rs), rustls will not choose one itself.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key).await?;
            axum_server::from_tcp_rustls(listener, config)
                .handle(handle)
                .serve(app)
                .await
        }
        None => axum_server::from_tcp(listener).handle(handle).serve(app).await,
    }
}
