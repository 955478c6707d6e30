//! Setting a cluster up for the gateway, run by a cluster administrator with their own credentials
//! (the one place this crate calls Kubernetes without impersonating): `install` applies the RBAC of
//! `rbac` (and creates missing namespaces), `gateway_kubeconfig` issues a token for the gateway's
//! service account and wraps it in a kubeconfig, for running the gateway outside the cluster.

use base64::Engine;
use serde_json::{Value, json};

use crate::error::ExecError;
use crate::kube::KubeConnection;
use crate::rbac::Accounts;

const FIELD_MANAGER: &str = "docketops-install";

/// Server-side apply of one manifest as the caller; returns `Kind namespace/name`.
async fn apply(connection: &KubeConnection, manifest: &Value) -> Result<String, ExecError> {
    let text = |pointer: &str| manifest.pointer(pointer).and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) = (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(ExecError::client(format!("not a Kubernetes object: {manifest}")));
    };
    let root = if api_version.contains('/') { "apis" } else { "api" };
    // Every kind applied here has the regular plural `<kind>s`.
    let plural = format!("{}s", kind.to_lowercase());
    let path = match text("/metadata/namespace") {
        Some(ns) => format!("/{root}/{api_version}/namespaces/{ns}/{plural}/{name}"),
        None => format!("/{root}/{api_version}/{plural}/{name}"),
    };
    let request = http::Request::patch(format!("{path}?fieldManager={FIELD_MANAGER}&force=true"))
        .header(http::header::CONTENT_TYPE, "application/apply-patch+yaml")
        .body(serde_json::to_vec(manifest).expect("JSON"))
        .map_err(|e| ExecError::client(e.to_string()))?;
    connection.send_raw(request).await?;
    Ok(match text("/metadata/namespace") {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    })
}

/// Creates the gateway's and the governed namespaces if missing, then applies the executor's RBAC.
pub async fn install(
    connection: &KubeConnection,
    accounts: &Accounts,
    namespaces: &[String],
) -> Result<Vec<String>, ExecError> {
    let mut applied = Vec::new();
    for namespace in std::iter::once(&accounts.gateway_namespace).chain(namespaces) {
        let manifest = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        applied.push(apply(connection, &manifest).await?);
    }
    for manifest in accounts.manifests(namespaces) {
        applied.push(apply(connection, &manifest).await?);
    }
    Ok(applied)
}

/// A kubeconfig (as JSON, which is YAML) for the gateway's service account, with a token from the
/// TokenRequest API valid for `expiration_seconds`.
pub async fn gateway_kubeconfig(
    connection: &KubeConnection,
    accounts: &Accounts,
    expiration_seconds: u32,
) -> Result<Value, ExecError> {
    let gateway = accounts.gateway();
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": {"expirationSeconds": expiration_seconds}});
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{}/serviceaccounts/{}/token",
        gateway.namespace, gateway.name
    ))
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(serde_json::to_vec(&body).expect("JSON"))
    .map_err(|e| ExecError::client(e.to_string()))?;
    let answer = connection.send_raw(request).await?;
    let token = answer
        .body
        .pointer("/status/token")
        .and_then(Value::as_str)
        .ok_or_else(|| ExecError::client("the TokenRequest answer holds no token"))?;
    let mut cluster = json!({"server": connection.cluster_url});
    if !connection.root_certs.is_empty() {
        let pem: String = connection.root_certs.iter().map(|der| pem_certificate(der)).collect();
        cluster["certificate-authority-data"] = json!(base64::engine::general_purpose::STANDARD.encode(pem));
    }
    let user = gateway.name.clone();
    Ok(json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "cluster", "user": user}}],
        "current-context": user,
    }))
}

fn pem_certificate(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// `PATCH …/scale` with the caller's own credentials and no impersonation, dry-run or preconditions: the
/// plain call a client would make without the gateway, as the benchmarks' baseline. Returns the HTTP status.
pub async fn patch_scale_directly(
    connection: &KubeConnection,
    namespace: &str,
    deployment: &str,
    replicas: u32,
) -> Result<u16, ExecError> {
    crate::action::validate_namespace(namespace).map_err(ExecError::client)?;
    let request = http::Request::patch(format!(
        "/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale"
    ))
    .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
    .body(serde_json::to_vec(&json!({"spec": {"replicas": replicas}})).expect("JSON"))
    .map_err(|e| ExecError::client(e.to_string()))?;
    Ok(connection.send_raw(request).await?.status)
}
