//! `kubectl get <kind> -A`: a LIST across all namespaces. Every action names its namespace, so the proxy lists
//! each namespace the caller's read scopes name, one LIST action each, and answers with the objects of all of
//! them. Scope patterns (`*`, `team-*`) are expanded against the namespaces the caller may list (a LIST of
//! Namespaces, itself an action); a caller who may not list Namespaces gets the namespaces its scopes name
//! exactly.

use domain::{Access, ResourceKind, Scope};
use serde_json::{Value, json};

use super::{Refusal, ResourcePath};

/// The most namespaces one `-A` request lists (each is an action of its own).
pub const MAX_NAMESPACES: usize = 100;

/// The caller's scopes on `cluster` that let it read `kind` somewhere.
fn reading<'a>(scopes: &'a [Scope], cluster: &'a str, kind: ResourceKind) -> impl Iterator<Item = &'a Scope> {
    scopes.iter().filter(move |scope| {
        scope.covers_cluster(cluster) && scope.kinds.iter().any(|k| k == "*" || k == kind.as_str())
    })
}

/// Whether answering needs the list of namespaces: a read scope with a pattern, and the right to list them.
pub fn needs_namespace_list(scopes: &[Scope], cluster: &str, kind: ResourceKind) -> bool {
    let patterns = reading(scopes, cluster, kind).any(|scope| scope.namespaces.iter().any(|n| n.contains('*')));
    let may_list = scopes
        .iter()
        .any(|scope| scope.covers_cluster(cluster) && scope.permits(Access::Read, None, ResourceKind::Namespace));
    patterns && may_list
}

/// The namespaces to list `kind` in, sorted: those the read scopes name exactly, and those of `known` (the
/// namespaces the caller listed) a read scope matches. Refused when there are none or too many.
pub fn namespaces_in_scope(
    scopes: &[Scope],
    cluster: &str,
    kind: ResourceKind,
    known: &[String],
) -> Result<Vec<String>, Refusal> {
    let mut names: Vec<String> = reading(scopes, cluster, kind)
        .flat_map(|scope| scope.namespaces.iter())
        .filter(|name| !name.contains('*'))
        .cloned()
        .collect();
    let covered = |name: &&String| {
        scopes
            .iter()
            .any(|scope| scope.covers_cluster(cluster) && scope.permits(Access::Read, Some(name), kind))
    };
    names.extend(known.iter().filter(covered).cloned());
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(Refusal::forbidden(format!(
            "DocketOps: no read scope of yours names a namespace for {kind} (list one namespace with -n)"
        )));
    }
    if names.len() > MAX_NAMESPACES {
        return Err(Refusal::forbidden(format!(
            "DocketOps: your scopes cover {} namespaces for {kind}; -A lists at most {MAX_NAMESPACES} (use -n)",
            names.len()
        )));
    }
    Ok(names)
}

/// The names of the namespaces a LIST of Namespaces returned (objects, or a `Table`'s rows).
pub fn namespace_names(result: Option<&Value>) -> Vec<String> {
    let objects: Vec<&Value> = match result {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(table) => table
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| rows.iter().filter_map(|row| row.get("object")).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    objects
        .into_iter()
        .filter_map(|object| object.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Whether one namespace's LIST result is only its first page: a `Table` naming a continue token, or (the
/// objects, whose token the read does not carry) a full page of `limit` objects.
pub fn is_cut_off(result: Option<&Value>, limit: u64) -> bool {
    match result {
        Some(Value::Array(objects)) => objects.len() as u64 >= limit,
        Some(table) => table
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty()),
        None => false,
    }
}

/// The HTTP `Warning` (`299 - "…"`, which kubectl prints) of a `get -A` whose answer holds only the first
/// page of some namespaces' objects; `None` when none was cut off.
pub fn cut_off_warning(namespaces: &[String]) -> Option<String> {
    let first = namespaces.first()?;
    let message = format!(
        "DocketOps: get -A shows only the first page of objects in namespace(s) {}; to see all of them, list \
         each namespace on its own: kubectl get -n {first} ...",
        namespaces.join(", ")
    );
    // A warning's text is a quoted string: no quotes or backslashes inside.
    let message: String = message.chars().filter(|c| *c != '"' && *c != '\\').collect();
    Some(format!("299 - \"{message}\""))
}

/// One answer for all the namespaces' LIST results: their `Table`s' rows in one `Table` (the first's
/// columns), or their objects in one `<Kind>List`.
pub fn merged_answer(target: &ResourcePath, results: Vec<Option<Value>>) -> Value {
    let mut tables = Vec::new();
    let mut items = Vec::new();
    for result in results.into_iter().flatten() {
        match result {
            Value::Array(objects) => items.extend(objects),
            table => tables.push(table),
        }
    }
    let mut tables = tables.into_iter();
    let Some(mut first) = tables.next() else {
        return super::list_answer(target, Some(&Value::Array(items)));
    };
    let mut rows = match first.get_mut("rows").map(Value::take) {
        Some(Value::Array(rows)) => rows,
        _ => Vec::new(),
    };
    for mut table in tables {
        if let Some(Value::Array(more)) = table.get_mut("rows").map(Value::take) {
            rows.extend(more);
        }
    }
    first["rows"] = Value::Array(rows);
    // One answer of all of them: there is no single resourceVersion or next page to name.
    first["metadata"] = json!({});
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(short: &[&str]) -> Vec<Scope> {
        short.iter().map(|s| Scope::parse_short(s).unwrap()).collect()
    }

    #[test]
    fn the_namespaces_are_the_ones_the_read_scopes_name() {
        let mine = scopes(&[
            "mutate:a:Deployment",
            "read:b,c:*",
            "read:d:ConfigMap",
            "read:e:*:other",
        ]);
        let kind = ResourceKind::Deployment;
        assert!(!needs_namespace_list(&mine, "default", kind));
        assert_eq!(
            namespaces_in_scope(&mine, "default", kind, &[]).unwrap(),
            ["a", "b", "c"]
        );
        let none = namespaces_in_scope(&scopes(&["read:d:ConfigMap"]), "default", kind, &[]).unwrap_err();
        assert_eq!(none.code, 403);
        let patterns = scopes(&["read:team-*:*", "read:*:Namespace"]);
        assert!(needs_namespace_list(&patterns, "default", kind));
        let known = ["team-a".to_owned(), "other".to_owned(), "team-b".to_owned()];
        assert_eq!(
            namespaces_in_scope(&patterns, "default", kind, &known).unwrap(),
            ["team-a", "team-b"]
        );
        // Without the right to list Namespaces a pattern names nothing it could expand.
        assert!(!needs_namespace_list(&scopes(&["read:team-*:*"]), "default", kind));
    }

    #[test]
    fn cut_off_namespaces_are_named() {
        let table = json!({"kind": "Table", "metadata": {"continue": "abc"}, "rows": []});
        assert!(is_cut_off(Some(&table), 500));
        assert!(!is_cut_off(Some(&json!({"kind": "Table", "metadata": {}})), 500));
        assert!(is_cut_off(Some(&json!([{}, {}])), 2));
        assert!(!is_cut_off(Some(&json!([{}])), 2));
        assert!(!is_cut_off(None, 2));
        assert_eq!(cut_off_warning(&[]), None);
        let warning = cut_off_warning(&["a".to_owned(), "b".to_owned()]).unwrap();
        assert!(warning.starts_with("299 - \"") && warning.ends_with('"'), "{warning}");
        assert!(
            warning.contains("a, b") && warning.contains("kubectl get -n a"),
            "{warning}"
        );
    }

    #[test]
    fn answers_are_merged() {
        let target = ResourcePath::parse("/apis/apps/v1/deployments").unwrap();
        let table = |name: &str| {
            json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "9"},
                "columnDefinitions": [{"name": "Name"}], "rows": [{"cells": [name]}]})
        };
        let merged = merged_answer(&target, vec![Some(table("x")), None, Some(table("y"))]);
        assert_eq!(merged["rows"], json!([{"cells": ["x"]}, {"cells": ["y"]}]));
        assert_eq!((&merged["kind"], &merged["metadata"]), (&json!("Table"), &json!({})));
        let list = merged_answer(
            &target,
            vec![
                Some(json!([{"metadata": {"name": "x"}}])),
                Some(json!([{"metadata": {"name": "y"}}])),
            ],
        );
        assert_eq!(list["kind"], "DeploymentList");
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        assert_eq!(namespace_names(Some(&json!([{"metadata": {"name": "a"}}]))), ["a"]);
        let namespaces = json!({"rows": [{"object": {"metadata": {"name": "b"}}}]});
        assert_eq!(namespace_names(Some(&namespaces)), ["b"]);
    }
}
