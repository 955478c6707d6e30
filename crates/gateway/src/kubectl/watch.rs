//! `?watch=true` (`kubectl get -w`, `kubectl rollout status`): a LIST action like any read (the pipeline
//! decides and records it, justified as `kubectl watch`), then the API server's event stream of the same
//! objects through the executor, for a bounded time. This module reads the watch's own query parameters.

use std::collections::HashMap;

use executor::WatchOptions;

use super::{Plan, plan_list};

/// Whether the request is a watch (`watch=true` or `watch=1`, as the API server reads it).
pub fn is_watch(query: &HashMap<String, String>) -> bool {
    query.get("watch").is_some_and(|w| w == "true" || w == "1")
}

/// The LIST a watch is recorded as: the watch's selectors, as a `Table` when kubectl asks for one.
pub fn plan_watch(query: &HashMap<String, String>, table: bool) -> Plan {
    let mut plan = plan_list(query, table);
    plan.verb = "watch";
    for action in &mut plan.actions {
        // A watch has no pages: the recorded read is the state it starts from.
        action.parameters.remove("limit");
        action.parameters.remove("continue");
    }
    plan
}

/// The watch's `resourceVersion`, `timeoutSeconds` and `allowWatchBookmarks`.
pub fn watch_options(query: &HashMap<String, String>) -> WatchOptions {
    WatchOptions {
        resource_version: query.get("resourceVersion").filter(|v| !v.is_empty()).cloned(),
        timeout_seconds: query.get("timeoutSeconds").and_then(|t| t.parse().ok()),
        bookmarks: query.get("allowWatchBookmarks").is_some_and(|b| b == "true"),
    }
}

#[cfg(test)]
mod tests {
    use domain::ActionType;
    use serde_json::{Value, json};

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_watch_is_a_list_with_its_own_options() {
        let asked = query(&[
            ("watch", "true"),
            ("fieldSelector", "metadata.name=api"),
            ("resourceVersion", "42"),
            ("timeoutSeconds", "30"),
            ("limit", "500"),
            ("allowWatchBookmarks", "true"),
        ]);
        assert!(is_watch(&asked) && is_watch(&query(&[("watch", "1")])));
        assert!(!is_watch(&query(&[("watch", "false")])) && !is_watch(&HashMap::new()));
        let plan = plan_watch(&asked, true);
        assert_eq!((plan.verb, plan.actions[0].action_type), ("watch", ActionType::List));
        assert_eq!(
            Value::Object(plan.actions[0].parameters.clone()),
            json!({"field_selector": "metadata.name=api", "as_table": true})
        );
        let options = watch_options(&asked);
        assert_eq!(
            (
                options.resource_version.as_deref(),
                options.timeout_seconds,
                options.bookmarks
            ),
            (Some("42"), Some(30), true)
        );
        assert_eq!(
            watch_options(&query(&[("resourceVersion", "")])),
            WatchOptions::default()
        );
    }
}
