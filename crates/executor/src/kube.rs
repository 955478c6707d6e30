//! The connection to one Kubernetes API server: configuration, discovery of served versions, and the one
//! place requests are sent, with impersonation and audit headers added to each.
//!
//! Objects are handled as JSON (`serde_json::Value`) with API versions discovered from the server, not as
//! compiled-in types: the same binary then works against every supported Kubernetes version (CronJob is
//! `batch/v1beta1` on 1.20 and `batch/v1` from 1.21, for example).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::action::ResourceKind;
use crate::error::ExecError;
use crate::rbac::{EXTRA_ACTION, EXTRA_IDENTITY, ServiceAccountRef};

/// Where the Kubernetes credentials come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KubeSource {
    /// `KUBECONFIG` / `~/.kube/config`, else the in-cluster service account (kube's inference order).
    #[default]
    Infer,
    /// A kubeconfig file (or the default one) with an optional context.
    Kubeconfig {
        /// The file; `None` for the default one (`KUBECONFIG` or `~/.kube/config`).
        path: Option<PathBuf>,
        /// The context to use; `None` for the file's current context.
        context: Option<String>,
    },
    /// The pod's service account.
    InCluster,
}

/// Who a call is for: the ledger ties the API server's audit events to its entries through these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The identity that asked (`agt_…`/`usr_…`), sent as impersonation extra `docketops-identity`.
    pub identity: String,
    /// The action (`act_…`), sent as impersonation extra `docketops-action`.
    pub action_id: String,
    /// The ledger entry id this call belongs to, sent as `Audit-ID`.
    pub audit_id: String,
}

/// A response the API server accepted, with its HTTP status.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
}

/// A client of one Kubernetes API server with the gateway's own credentials: calls on objects impersonate an
/// executor account (discovery does not), and each kind's served API version is discovered once and cached.
pub struct KubeConnection {
    client: kube::Client,
    call_timeout: Duration,
    resources: Mutex<HashMap<ResourceKind, ResourcePath>>,
    /// The API server's URL and trusted CA certificates (DER), for kubeconfigs `setup` writes.
    pub(crate) cluster_url: String,
    pub(crate) root_certs: Vec<Vec<u8>>,
}

/// The URL path of a kind's collection in one namespace, e.g. `/apis/apps/v1/namespaces/web/deployments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    pub api_version: String,
    plural: &'static str,
}

impl ResourcePath {
    /// A kind's path at an API version, without discovery (a fake cluster's previews).
    #[cfg(feature = "fake")]
    pub(crate) fn unresolved(kind: ResourceKind, api_version: &str) -> ResourcePath {
        ResourcePath {
            api_version: api_version.to_owned(),
            plural: kind.plural(),
        }
    }

    pub fn collection(&self, namespace: Option<&str>) -> String {
        let root = if self.api_version.contains('/') { "apis" } else { "api" };
        match namespace {
            Some(ns) => format!("/{root}/{}/namespaces/{ns}/{}", self.api_version, self.plural),
            None => format!("/{root}/{}/{}", self.api_version, self.plural),
        }
    }

    pub fn request(&self, namespace: Option<&str>) -> kube::core::Request {
        kube::core::Request::new(self.collection(namespace))
    }
}

impl std::fmt::Debug for KubeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeConnection")
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl KubeConnection {
    /// Loads the configuration from `source` and builds a client (no request is made yet).
    pub async fn connect(source: &KubeSource, call_timeout: Duration) -> Result<Self, ExecError> {
        let config = match source {
            KubeSource::Infer => kube::Config::infer()
                .await
                .map_err(|e| ExecError::client(format!("no Kubernetes configuration found: {e}")))?,
            KubeSource::InCluster => {
                kube::Config::incluster().map_err(|e| ExecError::client(format!("not running in a cluster: {e}")))?
            }
            KubeSource::Kubeconfig { path, context } => {
                let options = KubeConfigOptions {
                    context: context.clone(),
                    ..KubeConfigOptions::default()
                };
                let result = match path {
                    Some(path) => {
                        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                            ExecError::client(format!("cannot read kubeconfig {}: {e}", path.display()))
                        })?;
                        kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
                    }
                    None => kube::Config::from_kubeconfig(&options).await,
                };
                result.map_err(|e| ExecError::client(format!("kubeconfig: {e}")))?
            }
        };
        Self::from_config(config, call_timeout)
    }

    /// A connection from a loaded configuration. Any impersonation it sets is dropped (each call adds its
    /// own), and `call_timeout` also bounds connecting.
    pub fn from_config(mut config: kube::Config, call_timeout: Duration) -> Result<Self, ExecError> {
        // Impersonation is added per call; a kubeconfig's own `as:` would stack under it and confuse RBAC.
        config.auth_info.impersonate = None;
        config.auth_info.impersonate_groups = None;
        config.connect_timeout = Some(call_timeout);
        let cluster_url = config.cluster_url.to_string().trim_end_matches('/').to_owned();
        let root_certs = config.root_cert.clone().unwrap_or_default();
        let client =
            kube::Client::try_from(config).map_err(|e| ExecError::client(format!("Kubernetes client: {e}")))?;
        Ok(Self {
            client,
            call_timeout,
            resources: Mutex::new(HashMap::new()),
            cluster_url,
            root_certs,
        })
    }

    /// The served API version of `kind`, found by discovery once and cached (most stable version first).
    pub(crate) async fn resource(&self, kind: ResourceKind) -> Result<ResourcePath, ExecError> {
        if let Some(found) = self.resources.lock().expect("resource cache").get(&kind) {
            return Ok(found.clone());
        }
        let group = tokio::time::timeout(self.call_timeout, kube::discovery::group(&self.client, kind.group()))
            .await
            .map_err(|_| self.timeout())?
            .map_err(|e| self.deadline_as_timeout(ExecError::from_kube(e)))?;
        let (resource, _) = group
            .resources_by_stability()
            .into_iter()
            .find(|(resource, _)| resource.kind == kind.as_str())
            .ok_or_else(|| ExecError::client(format!("the API server does not serve {kind}")))?;
        let found = ResourcePath {
            api_version: resource.api_version,
            plural: kind.plural(),
        };
        self.resources
            .lock()
            .expect("resource cache")
            .insert(kind, found.clone());
        Ok(found)
    }

    /// A path for an explicit API version (APPLY sends the manifest's own version).
    pub(crate) fn resource_at(&self, kind: ResourceKind, api_version: &str) -> ResourcePath {
        ResourcePath {
            api_version: api_version.to_owned(),
            plural: kind.plural(),
        }
    }

    /// The client's own connect deadline (as long as the call timeout) means slow, not refused.
    fn deadline_as_timeout(&self, error: ExecError) -> ExecError {
        match error {
            ExecError::Unreachable { message } if message.contains("deadline has elapsed") => self.timeout(),
            other => other,
        }
    }

    fn timeout(&self) -> ExecError {
        ExecError::Timeout {
            seconds: self.call_timeout.as_secs(),
        }
    }

    /// Sends `request` as `account`, with `Audit-ID` and the impersonation extras of `context`.
    pub(crate) async fn send(
        &self,
        mut request: http::Request<Vec<u8>>,
        account: &ServiceAccountRef,
        context: &CallContext,
    ) -> Result<Answer, ExecError> {
        impersonate(&mut request, account, context)?;
        self.send_raw(request).await
    }

    /// Sends `request` as [`send`](Self::send) does and answers as soon as the response's head is in (within the
    /// call timeout): its status, content type and the body as it streams (a watch). An error status is read
    /// whole and answered as [`ExecError::Api`].
    pub(crate) async fn open_stream(
        &self,
        mut request: http::Request<Vec<u8>>,
        account: &ServiceAccountRef,
        context: &CallContext,
    ) -> Result<(u16, Option<String>, kube::client::Body), ExecError> {
        impersonate(&mut request, account, context)?;
        let response = tokio::time::timeout(
            self.call_timeout,
            self.client.send(request.map(kube::client::Body::from)),
        )
        .await
        .map_err(|_| self.timeout())?
        .map_err(|e| self.deadline_as_timeout(ExecError::from_kube(e)))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body();
        if (200..300).contains(&status) {
            return Ok((status, content_type, body));
        }
        let bytes = tokio::time::timeout(self.call_timeout, body.collect_bytes())
            .await
            .map_err(|_| self.timeout())?
            .map_err(ExecError::from_kube)?;
        let status_body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = |key: &str| {
            status_body
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Err(ExecError::Api {
            status,
            reason: text("reason"),
            message: text("message"),
        })
    }

    /// A discovery or OpenAPI document (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`, `/version`,
    /// `/openapi/v2`, `/openapi/v3[/…]`), fetched with the gateway's own credentials and returned as is:
    /// `(status, body, content type)`. Any other path is refused without a call (the kubectl proxy's only
    /// pass-through; everything else goes through the pipeline).
    pub async fn discovery(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<(u16, Vec<u8>, Option<String>), ExecError> {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or("").split('/').collect();
        let valid = segments
            .iter()
            // Names only: a segment starts with a letter or digit, so `.` and `..` never reach the API server.
            .all(|s| {
                s.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            });
        let allowed = valid
            && match segments.as_slice() {
                ["api" | "apis" | "version"] | ["api", _] | ["apis", _, _] | ["openapi", "v2"] => true,
                ["openapi", "v3", rest @ ..] => rest.len() <= 3,
                _ => false,
            };
        if !allowed {
            return Err(ExecError::client(format!("{path} is not a discovery or OpenAPI path")));
        }
        let mut builder = http::Request::get(path);
        if let Some(accept) = accept {
            builder = builder.header(http::header::ACCEPT, accept);
        }
        let request = builder.body(Vec::new()).map_err(|e| ExecError::client(e.to_string()))?;
        let call = async {
            let response = self
                .client
                .send(request.map(kube::client::Body::from))
                .await
                .map_err(ExecError::from_kube)?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response
                .into_body()
                .collect_bytes()
                .await
                .map_err(ExecError::from_kube)?;
            Ok::<_, ExecError>((status, bytes.to_vec(), content_type))
        };
        tokio::time::timeout(self.call_timeout, call)
            .await
            .map_err(|_| self.timeout())?
            .map_err(|e| self.deadline_as_timeout(e))
    }

    /// Sends with the gateway's own credentials (tests and discovery only need this).
    pub(crate) async fn send_raw(&self, request: http::Request<Vec<u8>>) -> Result<Answer, ExecError> {
        let call = async {
            let response = self
                .client
                .send(request.map(kube::client::Body::from))
                .await
                .map_err(ExecError::from_kube)?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect_bytes()
                .await
                .map_err(ExecError::from_kube)?;
            Ok::<_, ExecError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.call_timeout, call)
            .await
            .map_err(|_| self.timeout())?
            .map_err(|e| self.deadline_as_timeout(e))?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ExecError::client(format!(
                    "the API server answered {status} with a body that is not JSON: {e}"
                ))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(Answer { status, body });
        }
        let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        Err(ExecError::Api {
            status,
            reason: text("reason"),
            message: text("message"),
        })
    }
}

/// Adds the impersonation of `account`, the identity and action extras and `Audit-ID` of `context`.
fn impersonate(
    request: &mut http::Request<Vec<u8>>,
    account: &ServiceAccountRef,
    context: &CallContext,
) -> Result<(), ExecError> {
    let headers = request.headers_mut();
    let value = |text: &str, what: &str| {
        HeaderValue::from_str(text)
            .map_err(|_| ExecError::client(format!("{what} {text:?} cannot be sent in a header")))
    };
    headers.insert(
        HeaderName::from_static("impersonate-user"),
        value(&account.username(), "account")?,
    );
    headers.insert(
        HeaderName::from_bytes(format!("impersonate-extra-{EXTRA_IDENTITY}").as_bytes()).expect("header name"),
        value(&context.identity, "identity")?,
    );
    headers.insert(
        HeaderName::from_bytes(format!("impersonate-extra-{EXTRA_ACTION}").as_bytes()).expect("header name"),
        value(&context.action_id, "action id")?,
    );
    headers.insert(
        HeaderName::from_static("audit-id"),
        value(&context.audit_id, "audit id")?,
    );
    Ok(())
}
