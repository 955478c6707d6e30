//! Reads as the API server's `Table` (what `kubectl get` prints) and watches of a LIST, against the real
//! API server, as the impersonated reader account.

use std::time::{Duration, Instant};

use executor::WatchOptions;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::{World, action, all_mutate, context};

#[tokio::test]
async fn reads_as_tables_keep_secrets_withheld() {
    let world = World::new().await;
    let last_applied = json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"password": "hunter2"}});
    world
        .admin
        .apply(&json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "creds", "namespace": world.app, "annotations":
                {"kubectl.kubernetes.io/last-applied-configuration": last_applied.to_string()}},
            "stringData": {"password": "hunter2"}}))
        .await;
    for name in ["a", "b"] {
        world
            .admin
            .apply(
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": world.app},
                "data": {"k": "v"}}),
            )
            .await;
    }
    let executor = world.executor().await;
    let read = |value: Value| {
        let executor = &executor;
        async move { executor.read(&context(), &action(value), &all_mutate()).await.unwrap() }
    };

    let list = read(
        json!({"action_type": "LIST", "namespace": world.app, "resource_kind": "ConfigMap",
        "parameters": {"as_table": true}}),
    )
    .await;
    let table = list.object.expect("the Table");
    assert_eq!(
        (&table["kind"], &table["apiVersion"]),
        (&json!("Table"), &json!("meta.k8s.io/v1"))
    );
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Data", "Age"]);
    assert_eq!(list.items.map(|rows| rows.len()), Some(2), "the rows are counted");
    assert_eq!(table["rows"][0]["cells"][0], "a");

    let secret = read(
        json!({"action_type": "GET", "namespace": world.app, "resource_kind": "Secret",
        "resource_name": "creds", "parameters": {"as_table": true}}),
    )
    .await;
    assert!(secret.secret_data_withheld);
    let text = secret.object.expect("the Table").to_string();
    assert!(text.contains("creds") && !text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn a_watch_streams_changes_for_a_bounded_time() {
    let world = World::new().await;
    let executor = world.executor().await;
    let list = action(json!({"action_type": "LIST", "namespace": world.app, "resource_kind": "ConfigMap"}));
    let options = WatchOptions {
        timeout_seconds: Some(2),
        ..WatchOptions::default()
    };
    let started = Instant::now();
    let mut watch = executor
        .watch(&context(), &list, &all_mutate(), &options)
        .await
        .unwrap();
    assert_eq!(watch.lifetime, Duration::from_secs(2));
    world
        .admin
        .apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": world.app}}))
        .await;
    let mut events = Vec::new();
    while let Some(chunk) = watch.events.next().await {
        events.extend_from_slice(&chunk.unwrap());
    }
    let events = String::from_utf8(events).unwrap();
    assert!(events.contains("\"ADDED\"") && events.contains("\"new\""), "{events}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the watch ended: {:?}",
        started.elapsed()
    );

    // Secrets are never watched; nor is anything outside the scopes.
    let secrets = action(json!({"action_type": "LIST", "namespace": world.app, "resource_kind": "Secret"}));
    let refused = executor
        .watch(&context(), &secrets, &all_mutate(), &options)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "guardrail_denied");
    let elsewhere = action(json!({"action_type": "LIST", "namespace": world.other, "resource_kind": "ConfigMap"}));
    let scopes = vec![executor::Scope::new(&[&world.app], executor::Access::Read, &["*"])];
    let refused = executor
        .watch(&context(), &elsewhere, &scopes, &options)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "guardrail_denied", "{refused:?}");
}
