//! Names and manifests: what keeps every name safe inside a URL path and an APPLY aimed at its own object.

use serde_json::{Map, Value};

use super::kinds::ResourceKind;
use super::request::{InvalidAction, invalid};

/// An APPLY manifest must describe exactly the action's object; returns it (namespace filled in) and its name.
pub(crate) fn check_manifest(
    mut manifest: Map<String, Value>,
    kind: ResourceKind,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<(Map<String, Value>, String), InvalidAction> {
    let api_version = manifest
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("parameters.manifest.apiVersion", "the manifest needs an apiVersion"))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if !is_api_version(version) {
        return Err(invalid(
            "parameters.manifest.apiVersion",
            format!("{api_version:?} is not an API version (expected e.g. v1, apps/v1, batch/v1beta1)"),
        ));
    }
    if group != kind.group() {
        let expected = if kind.group().is_empty() {
            "v1".to_owned()
        } else {
            format!("{}/<version>", kind.group())
        };
        return Err(invalid(
            "parameters.manifest.apiVersion",
            format!("{api_version} is not an API version of {kind} (expected {expected})"),
        ));
    }
    match manifest.get("kind").and_then(Value::as_str) {
        Some(k) if k == kind.as_str() => {}
        other => {
            return Err(invalid(
                "parameters.manifest.kind",
                format!("the manifest's kind is {other:?}, the action's resource_kind is {kind}"),
            ));
        }
    }
    let metadata = manifest
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| invalid("parameters.manifest.metadata", "the manifest needs metadata"))?;
    let manifest_name = metadata.get("name").and_then(Value::as_str).map(str::to_owned);
    let name = match (name, manifest_name) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(
                "parameters.manifest.metadata.name",
                format!("the manifest names {b:?}, the action names {a:?}"),
            ));
        }
        (_, Some(n)) => n,
        (Some(n), None) => {
            metadata.insert("name".into(), Value::String(n.to_owned()));
            n.to_owned()
        }
        (None, None) => return Err(invalid("resource_name", "APPLY needs resource_name or metadata.name")),
    };
    check_object_name(&name).map_err(|m| invalid("parameters.manifest.metadata.name", m))?;
    match (metadata.get("namespace").and_then(Value::as_str), namespace) {
        (Some(m), Some(ns)) if m != ns => {
            return Err(invalid(
                "parameters.manifest.metadata.namespace",
                format!("the manifest's namespace is {m:?}, the action's namespace is {ns:?}"),
            ));
        }
        (_, Some(ns)) => {
            metadata.insert("namespace".into(), Value::String(ns.to_owned()));
        }
        (_, None) => {}
    }
    for field in [
        "uid",
        "resourceVersion",
        "managedFields",
        "creationTimestamp",
        "deletionTimestamp",
    ] {
        if metadata.contains_key(field) {
            return Err(invalid(
                format!("parameters.manifest.metadata.{field}"),
                format!("metadata.{field} is set by the API server; remove it from the manifest"),
            ));
        }
    }
    if manifest.contains_key("status") {
        return Err(invalid(
            "parameters.manifest.status",
            "status is written by controllers; remove it",
        ));
    }
    Ok((manifest, name))
}

/// `v1`, `v2beta1`, `v1alpha3`: the form of every Kubernetes API version (it also goes into URL paths).
pub(crate) fn is_api_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let rest = &rest[digits..];
    let tail = rest.strip_prefix("alpha").or_else(|| rest.strip_prefix("beta"));
    match tail {
        None => rest.is_empty(),
        Some(number) => !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Checks a namespace name (RFC 1123 label), e.g. for RBAC manifests.
pub fn validate_namespace(name: &str) -> Result<(), String> {
    check_dns_label(name)
}

/// RFC 1123 label: namespaces and container names.
pub(crate) fn check_dns_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
        ))
    }
}

/// RFC 1123 subdomain: object names. Also keeps every name safe inside a URL path.
pub(crate) fn check_object_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid Kubernetes object name: at most 253 characters of a-z, 0-9, '-' and '.'"
        ))
    }
}

/// A container image reference: no whitespace or control characters (the API server validates the rest).
pub(crate) fn check_image(image: &str) -> Result<(), String> {
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "{image:?} is not a valid image reference: it contains whitespace or control characters"
        ))
    } else {
        Ok(())
    }
}
