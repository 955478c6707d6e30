//! Reading fields of Kubernetes objects held as JSON: strings by pointer, containers by name.

use serde_json::Value;

use crate::action::ResourceKind;

/// JSON pointer of the container named `name` (containers first, then initContainers).
pub(crate) fn container_pointer(kind: ResourceKind, object: &Value, name: &str) -> Option<String> {
    let spec = kind.pod_spec()?.pointer();
    ["containers", "initContainers"].into_iter().find_map(|list| {
        let items = object.pointer(&format!("{spec}/{list}"))?.as_array()?;
        let index = items
            .iter()
            .position(|c| c.get("name").and_then(Value::as_str) == Some(name))?;
        Some(format!("{spec}/{list}/{index}"))
    })
}

pub(crate) fn container_names(kind: ResourceKind, object: &Value) -> Vec<String> {
    let Some(spec) = kind.pod_spec() else { return Vec::new() };
    ["containers", "initContainers"]
        .into_iter()
        .filter_map(|list| {
            object
                .pointer(&format!("{}/{list}", spec.pointer()))?
                .as_array()
                .cloned()
        })
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

pub(crate) fn str_at(object: &Value, pointer: &str) -> Option<String> {
    object.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn containers_are_found_by_name_in_every_pod_spec_shape() {
        let deploy = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                                          "initContainers": [{"name": "init"}]}}}});
        assert_eq!(
            container_pointer(ResourceKind::Deployment, &deploy, "b").unwrap(),
            "/spec/template/spec/containers/1"
        );
        assert_eq!(
            container_pointer(ResourceKind::Deployment, &deploy, "init").unwrap(),
            "/spec/template/spec/initContainers/0"
        );
        assert_eq!(container_pointer(ResourceKind::Deployment, &deploy, "c"), None);
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}}}});
        assert_eq!(
            container_pointer(ResourceKind::CronJob, &cron, "x").unwrap(),
            "/spec/jobTemplate/spec/template/spec/containers/0"
        );
        assert_eq!(container_names(ResourceKind::Deployment, &deploy), ["a", "b", "init"]);
    }
}
