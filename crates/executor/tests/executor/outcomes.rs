//! Outcome verification against the real API server, and API-server errors as clear results.

use std::time::Duration;

use executor::{ExecError, ExecutorOptions, KubeConnection, KubeSource};
use serde_json::json;

use crate::support::{World, action, all_mutate, context};

fn scale(world: &World, replicas: u32) -> executor::Action {
    action(
        json!({"action_type": "SCALE", "namespace": world.app, "resource_kind": "Deployment",
                  "resource_name": "web", "parameters": {"replicas": replicas}}),
    )
}

#[tokio::test]
async fn verification_fails_when_the_object_is_changed_behind_the_executors_back() {
    let world = World::new().await;
    world.deployment("web", 1).await;
    let executor = world.executor().await;
    let ctx = context();
    let preview = executor.preview(&ctx, &scale(&world, 3), &all_mutate()).await.unwrap();
    executor.execute(&ctx, &preview).await.unwrap();
    assert!(executor.verify(&ctx, &preview).await.passed);

    world
        .admin
        .merge_patch(&world.deployment_path("web"), &json!({"spec": {"replicas": 7}}))
        .await;
    let verification = executor.verify(&ctx, &preview).await;
    assert!(!verification.passed);
    let check = &verification.checks[0];
    assert_eq!(
        (check.field.as_str(), &check.expected, &check.observed),
        ("/spec/replicas", &json!(3), &json!(7))
    );

    // Deleted behind its back: the verification says the object is gone.
    let set_image = action(
        json!({"action_type": "SET_IMAGE", "namespace": world.app, "resource_kind": "Deployment",
                                  "resource_name": "web", "parameters": {"container": "web", "image": "registry.example/web:2"}}),
    );
    let preview = executor.preview(&ctx, &set_image, &all_mutate()).await.unwrap();
    executor.execute(&ctx, &preview).await.unwrap();
    let request = http::Request::delete(world.deployment_path("web"))
        .body(Vec::new())
        .unwrap();
    world.admin.client.request::<serde_json::Value>(request).await.unwrap();
    let verification = executor.verify(&ctx, &preview).await;
    assert!(!verification.passed);
    assert_eq!(verification.checks[0].field, "exists");
}

#[tokio::test]
async fn a_change_since_the_preview_is_a_conflict_and_changes_nothing() {
    let world = World::new().await;
    world.deployment("web", 1).await;
    let executor = world.executor().await;
    let ctx = context();
    for request in [
        json!({"action_type": "SCALE", "namespace": world.app, "resource_kind": "Deployment", "resource_name": "web",
               "parameters": {"replicas": 4}}),
        json!({"action_type": "SET_IMAGE", "namespace": world.app, "resource_kind": "Deployment", "resource_name": "web",
               "parameters": {"container": "web", "image": "registry.example/web:9"}}),
        json!({"action_type": "RESTART", "namespace": world.app, "resource_kind": "Deployment", "resource_name": "web"}),
        json!({"action_type": "PATCH", "namespace": world.app, "resource_kind": "Deployment", "resource_name": "web",
               "parameters": {"patch": {"metadata": {"labels": {"tier": "web"}}}}}),
        json!({"action_type": "DELETE", "namespace": world.app, "resource_kind": "Deployment", "resource_name": "web"}),
    ] {
        let preview = executor
            .preview(&ctx, &action(request.clone()), &all_mutate())
            .await
            .unwrap();
        // SCALE, RESTART and PATCH read and dry-run together; the change still carries the read's version.
        let live_version = preview.live.as_ref().map(|l| l.resource_version.clone()).unwrap();
        if request["action_type"] != "DELETE" {
            assert_eq!(
                preview.request.body["metadata"]["resourceVersion"],
                json!(live_version),
                "{request}"
            );
        }
        let changed = world
            .admin
            .merge_patch(
                &world.deployment_path("web"),
                &json!({"metadata": {"labels": {"drift": crate::support::suffix()}}}),
            )
            .await;
        let err = executor.execute(&ctx, &preview).await.unwrap_err();
        assert_eq!(err.code(), "conflict", "{request}: {err:?}");
        let live = world.admin.get(&world.deployment_path("web")).await.unwrap();
        assert_eq!(
            live["metadata"]["resourceVersion"], changed["metadata"]["resourceVersion"],
            "nothing changed"
        );
    }
}

#[tokio::test]
async fn rollouts_are_waited_for_and_a_stuck_one_fails_verification() {
    let world = World::new().await;
    world.deployment("web", 1).await;
    let options = ExecutorOptions {
        wait_for_rollout: true,
        verify_timeout: Duration::from_secs(2),
        ..World::options()
    };
    let executor = world.executor_with(world.guardrails(), options).await;
    let ctx = context();

    // No controller runs here, so nothing observes the new generation: the rollout times out.
    let preview = executor.preview(&ctx, &scale(&world, 2), &all_mutate()).await.unwrap();
    let execution = executor.execute(&ctx, &preview).await.unwrap();
    // The change's answer cannot tell how the rollout went: verification reads back.
    assert!(executor.verify_from_answer(&preview, &execution).is_none());
    let verification = executor.verify(&ctx, &preview).await;
    assert!(!verification.passed, "{verification:?}");
    let rollout = verification.rollout.unwrap();
    assert_eq!(rollout.state, "timed_out");
    assert!(verification.waited_ms >= 2000);
    assert!(verification.checks.iter().all(|c| c.passed), "the spec itself is right");

    // Play the controller: write the status the Deployment controller would write, while verify waits.
    let preview = executor.preview(&ctx, &scale(&world, 3), &all_mutate()).await.unwrap();
    executor.execute(&ctx, &preview).await.unwrap();
    let generation = world.admin.get(&world.deployment_path("web")).await.unwrap()["metadata"]["generation"].clone();
    let admin = world.admin.clone();
    let status_path = format!("{}/status", world.deployment_path("web"));
    let controller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        admin
            .merge_patch(
                &status_path,
                &json!({"status": {"observedGeneration": generation, "replicas": 3,
                "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}}),
            )
            .await;
    });
    let verification = executor.verify(&ctx, &preview).await;
    controller.await.unwrap();
    assert!(verification.passed, "{verification:?}");
    assert_eq!(verification.rollout.unwrap().state, "complete");
}

#[tokio::test]
async fn api_server_errors_become_clear_results() {
    let world = World::new().await;
    world.deployment("web", 1).await;
    let executor = world.executor().await;
    let ctx = context();

    // 404: the object does not exist.
    let missing = action(
        json!({"action_type": "DELETE", "namespace": world.app, "resource_kind": "Deployment", "resource_name": "nope"}),
    );
    let err = executor.preview(&ctx, &missing, &all_mutate()).await.unwrap_err();
    assert_eq!((err.code(), err.api_status()), ("not_found", Some(404)), "{err}");
    assert!(err.to_string().contains("\"nope\" not found"), "{err}");

    // 422: the API server rejects the object (the dry-run catches it; nothing is written).
    let invalid = action(
        json!({"action_type": "APPLY", "namespace": world.app, "resource_kind": "Deployment",
        "parameters": {"manifest": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "broken"},
                                    "spec": {"selector": {"matchLabels": {"a": "b"}},
                                             "template": {"metadata": {"labels": {"a": "other"}}, "spec": {"containers": []}}}}}}),
    );
    let err = executor.preview(&ctx, &invalid, &all_mutate()).await.unwrap_err();
    assert_eq!((err.code(), err.api_status()), ("invalid", Some(422)), "{err}");
    assert!(
        world
            .admin
            .get(&format!("/apis/apps/v1/namespaces/{}/deployments/broken", world.app))
            .await
            .is_err()
    );

    // The action does not fit the object: no such container.
    let no_container = action(
        json!({"action_type": "SET_IMAGE", "namespace": world.app, "resource_kind": "Deployment",
        "resource_name": "web", "parameters": {"container": "db", "image": "x:1"}}),
    );
    let err = executor.preview(&ctx, &no_container, &all_mutate()).await.unwrap_err();
    assert_eq!(err.code(), "target_mismatch");
    assert!(err.to_string().contains("containers: web, sidecar"), "{err}");

    // 401: a token the API server does not know.
    let env = crate::support::test_env();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.kubeconfig");
    std::fs::write(
        &bad,
        json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": env.server, "certificate-authority": env.ca_file}}],
        "users": [{"name": "u", "user": {"token": "not-a-token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"})
        .to_string(),
    )
    .unwrap();
    let connection = KubeConnection::connect(
        &KubeSource::Kubeconfig {
            path: Some(bad),
            context: None,
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let unauthorized = executor::Executor::new(connection, world.guardrails(), &world.release, World::options());
    let get = action(
        json!({"action_type": "GET", "namespace": world.app, "resource_kind": "Deployment", "resource_name": "web"}),
    );
    let err = unauthorized.read(&ctx, &get, &all_mutate()).await.unwrap_err();
    assert_eq!(err.code(), "unauthorized", "{err:?}");

    // Connection refused: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = executor_at(&world, &format!("https://127.0.0.1:{port}"), Duration::from_secs(5))
        .await
        .read(&ctx, &get, &all_mutate())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unreachable", "{err:?}");
    assert!(matches!(err, ExecError::Unreachable { .. }));

    // Timeout: a server that accepts the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let err = executor_at(&world, &format!("https://127.0.0.1:{port}"), Duration::from_secs(1))
        .await
        .read(&ctx, &get, &all_mutate())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "timeout", "{err:?}");
    hold.abort();
}

async fn executor_at(world: &World, server: &str, timeout: Duration) -> executor::Executor {
    let env = crate::support::test_env();
    let mut config = kube::Config::new(server.parse().unwrap());
    config.root_cert = Some(vec![pem_to_der(&std::fs::read_to_string(env.ca_file).unwrap())]);
    let connection = KubeConnection::from_config(config, timeout).unwrap();
    let options = ExecutorOptions {
        call_timeout: timeout,
        ..World::options()
    };
    executor::Executor::new(connection, world.guardrails(), &world.release, options)
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}
