//! The Kubernetes objects kubectl expects back: the object itself (with its kind and API version, which the
//! pipeline's results may leave out), a `<Kind>List`, a `Scale`, and the `Status` of a deletion.

use domain::ActionType;
use serde_json::{Value, json};

use super::{Plan, ResourcePath};

/// The object to answer with: `object` with its kind and API version filled in, or a placeholder naming the
/// path's namespace when the action returned none.
pub fn object_answer(target: &ResourcePath, object: Option<Value>) -> Value {
    let object = object.unwrap_or_else(|| json!({"metadata": {"name": null, "namespace": target.namespace}}));
    with_kind(target, object)
}

/// A LIST's result as a `<Kind>List` (an empty list when the action returned no items); a `Table` (a read
/// `as_table`) as it is.
pub fn list_answer(target: &ResourcePath, result: Option<&Value>) -> Value {
    if let Some(table @ Value::Object(_)) = result {
        return table.clone();
    }
    let items: Vec<Value> = match result {
        Some(Value::Array(items)) => items.iter().map(|item| with_kind(target, item.clone())).collect(),
        _ => Vec::new(),
    };
    json!({"kind": format!("{}List", target.kind), "apiVersion": target.api_version, "metadata": {},
        "items": items})
}

/// The `Scale` after a SCALE to `replicas`: the object's metadata and current replicas when it was read back.
pub fn scale_answer(target: &ResourcePath, name: &str, replicas: u64, read_back: Option<&Value>) -> Value {
    let mut scale = json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": name, "namespace": target.namespace},
        "spec": {"replicas": replicas}, "status": {"replicas": replicas}});
    if let Some(object) = read_back {
        scale["metadata"] = object["metadata"].clone();
        scale["status"]["replicas"] = object.pointer("/status/replicas").cloned().unwrap_or(json!(0));
    }
    scale
}

/// The `Status` kubectl expects after deleting `name`.
pub fn deletion_answer(target: &ResourcePath, name: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "kind": target.kind.as_str().to_lowercase()}})
}

/// The dry-run object of a plan's last SET_IMAGE with the images of all of them: each container's dry run
/// started from the live object, so each shows only its own new image. Other plans leave it as it is.
pub fn with_planned_images(mut object: Value, plan: &Plan) -> Value {
    let Some(containers) = object
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        return object;
    };
    let images = plan
        .actions
        .iter()
        .filter(|action| action.action_type == ActionType::SetImage);
    for params in images.map(|action| &action.parameters) {
        if let Some(container) = containers.iter_mut().find(|c| c.get("name") == params.get("container"))
            && let Some(image) = params.get("image")
        {
            container["image"] = image.clone();
        }
    }
    object
}

fn with_kind(target: &ResourcePath, mut object: Value) -> Value {
    if let Some(fields) = object.as_object_mut() {
        fields.entry("kind").or_insert_with(|| json!(target.kind.as_str()));
        fields.entry("apiVersion").or_insert_with(|| json!(target.api_version));
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubectl::{plan_patch, plan_scale};

    fn target() -> ResourcePath {
        ResourcePath::parse("/apis/apps/v1/namespaces/web/deployments/api").unwrap()
    }

    #[test]
    fn objects_carry_their_kind_and_api_version() {
        let object = object_answer(&target(), Some(json!({"metadata": {"name": "api"}})));
        assert_eq!(
            (&object["kind"], &object["apiVersion"]),
            (&json!("Deployment"), &json!("apps/v1"))
        );
        let own = object_answer(&target(), Some(json!({"kind": "Status", "apiVersion": "v1"})));
        assert_eq!(own, json!({"kind": "Status", "apiVersion": "v1"}));
        let placeholder = object_answer(&target(), None);
        assert_eq!(placeholder["metadata"], json!({"name": null, "namespace": "web"}));
        assert_eq!(placeholder["kind"], "Deployment");
    }

    #[test]
    fn a_list_is_a_kind_list() {
        let list = list_answer(&target(), Some(&json!([{"metadata": {"name": "a"}}, "odd"])));
        assert_eq!(list["kind"], "DeploymentList");
        assert_eq!(list["items"][0]["apiVersion"], "apps/v1");
        assert_eq!(list["items"][1], "odd");
        assert_eq!(list_answer(&target(), None)["items"], json!([]));
        let table = json!({"kind": "Table", "rows": []});
        assert_eq!(list_answer(&target(), Some(&table)), table);
    }

    #[test]
    fn a_scale_shows_the_read_back_object() {
        let asked = scale_answer(&target(), "api", 5, None);
        assert_eq!(asked["metadata"], json!({"name": "api", "namespace": "web"}));
        assert_eq!(
            (&asked["spec"]["replicas"], &asked["status"]["replicas"]),
            (&json!(5), &json!(5))
        );
        let object = json!({"metadata": {"name": "api", "namespace": "web", "uid": "u1"}, "status": {"replicas": 3}});
        let read = scale_answer(&target(), "api", 5, Some(&object));
        assert_eq!(read["metadata"]["uid"], "u1");
        assert_eq!(
            (&read["spec"]["replicas"], &read["status"]["replicas"]),
            (&json!(5), &json!(3))
        );
        let fresh = scale_answer(&target(), "api", 5, Some(&json!({"metadata": {}})));
        assert_eq!(fresh["status"]["replicas"], 0);
    }

    #[test]
    fn a_deletion_is_a_success_status() {
        let status = deletion_answer(&target(), "api");
        assert_eq!(
            (&status["status"], &status["details"]),
            (&json!("Success"), &json!({"name": "api", "kind": "deployment"}))
        );
    }

    #[test]
    fn a_set_image_dry_run_shows_every_new_image() {
        let object = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:1"}, {"name": "side", "image": "side:1"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:2"}, {"name": "side", "image": "side:2"}]}}}});
        let plan = plan_patch(
            "api",
            "application/strategic-merge-patch+json",
            false,
            patch.to_string().as_bytes(),
        )
        .unwrap();
        let merged = with_planned_images(object.clone(), &plan);
        assert_eq!(merged["spec"]["template"]["spec"]["containers"][0]["image"], "web:2");
        assert_eq!(merged["spec"]["template"]["spec"]["containers"][1]["image"], "side:2");
        assert_eq!(with_planned_images(object.clone(), &plan_scale("api", 2)), object);
    }
}
