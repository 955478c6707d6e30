//! Each action type on each kind it supports, against the real API server, through the whole
//! preview → execute → verify path, as the impersonated executor accounts.

use executor::{ActionType, Executor, ObservedIn, ResourceKind};
use serde_json::{Value, json};

use crate::support::{World, action, all_mutate, audit_events, context};

/// Manifests for every namespaced kind (the CronJob at the version the server serves).
async fn manifests(world: &World) -> Vec<(ResourceKind, Value)> {
    let ns = &world.app;
    let template = |app: &str| {
        json!({"metadata": {"labels": {"app": app}},
               "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}})
    };
    let job_template = json!({"metadata": {"labels": {"app": "job"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.example/app:1"}]}});
    let cronjob_version = world.admin.served_version("batch", "CronJob").await;
    vec![
        (
            ResourceKind::Deployment,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "deploy", "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "deploy"}}, "template": template("deploy")}}),
        ),
        (
            ResourceKind::StatefulSet,
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "stateful", "namespace": ns},
            "spec": {"replicas": 1, "serviceName": "stateful", "selector": {"matchLabels": {"app": "stateful"}}, "template": template("stateful")}}),
        ),
        (
            ResourceKind::DaemonSet,
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "daemon", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "daemon"}}, "template": template("daemon")}}),
        ),
        (
            ResourceKind::ReplicaSet,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "replicas", "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "replicas"}}, "template": template("replicas")}}),
        ),
        // No token controller runs here, so the Pod does not mount a service account token.
        (
            ResourceKind::Pod,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod", "namespace": ns},
            "spec": {"automountServiceAccountToken": false, "containers": [{"name": "main", "image": "registry.example/app:1"}]}}),
        ),
        (
            ResourceKind::Service,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": ns},
            "spec": {"selector": {"app": "deploy"}, "ports": [{"port": 80, "protocol": "TCP"}]}}),
        ),
        (
            ResourceKind::ConfigMap,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config", "namespace": ns},
            "data": {"mode": "fast"}}),
        ),
        (
            ResourceKind::Secret,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "secret", "namespace": ns},
            "stringData": {"password": "hunter2"}}),
        ),
        (
            ResourceKind::Job,
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job", "namespace": ns},
            "spec": {"template": job_template.clone()}}),
        ),
        (
            ResourceKind::CronJob,
            json!({"apiVersion": cronjob_version, "kind": "CronJob", "metadata": {"name": "cron", "namespace": ns},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": job_template}}}}),
        ),
    ]
}

/// Preview, execute and verify one mutation; every step must succeed.
async fn run(executor: &Executor, request: Value) -> executor::Verification {
    let action = action(request.clone());
    let ctx = context();
    let preview = executor
        .preview(&ctx, &action, &all_mutate())
        .await
        .unwrap_or_else(|e| panic!("preview of {request}: {e}"));
    assert!(preview.dry_run_status < 300, "{request}");
    let execution = executor
        .execute(&ctx, &preview)
        .await
        .unwrap_or_else(|e| panic!("execute of {request}: {e}"));
    assert!(execution.api_status < 300);
    let verification = executor.verify(&ctx, &preview).await;
    assert!(
        verification.passed,
        "verification of {request} failed: {verification:?}"
    );
    // The change's own answer settles the same checks as the read-back, except for a deletion (rollout
    // waiting is off here).
    match executor.verify_from_answer(&preview, &execution) {
        Some(answered) => {
            assert_eq!(answered.observed_in, ObservedIn::Answer);
            assert_eq!(verification.observed_in, ObservedIn::ReadBack);
            assert_eq!(
                (answered.passed, &answered.checks),
                (verification.passed, &verification.checks),
                "{request}"
            );
            assert_eq!(answered.observed_resource_version, execution.resource_version);
        }
        None => assert_eq!(action.action_type, ActionType::Delete, "{request}"),
    }
    verification
}

#[tokio::test]
async fn every_action_type_works_on_every_kind_that_supports_it() {
    let world = World::new().await;
    let executor = world.executor().await;
    let ns = world.app.clone();
    let fixtures = manifests(&world).await;
    assert_eq!(
        fixtures.len(),
        ResourceKind::ALL.iter().filter(|k| k.namespaced()).count()
    );

    // APPLY creates each object (server-side apply, field manager "docketops").
    for (kind, manifest) in &fixtures {
        run(
            &executor,
            json!({"action_type": "APPLY", "namespace": ns, "resource_kind": kind.as_str(),
                              "parameters": {"manifest": manifest}}),
        )
        .await;
    }
    let config = world
        .admin
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/config"))
        .await
        .unwrap();
    let managers: Vec<&str> = config["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["docketops"]);

    // GET and LIST each kind as the reader account.
    for (kind, manifest) in &fixtures {
        let name = manifest["metadata"]["name"].as_str().unwrap();
        let read = executor
            .read(
                &context(),
                &action(
                    json!({"action_type": "GET", "namespace": ns, "resource_kind": kind.as_str(),
                                              "resource_name": name}),
                ),
                &all_mutate(),
            )
            .await
            .unwrap();
        assert_eq!(read.object.as_ref().unwrap()["metadata"]["name"], name);
        assert!(read.executor_account.ends_with(&format!(":{}-reader", world.release)));
        assert!(read.object.unwrap()["metadata"].get("managedFields").is_none());
        let list = executor
            .read(
                &context(),
                &action(json!({"action_type": "LIST", "namespace": ns, "resource_kind": kind.as_str()})),
                &all_mutate(),
            )
            .await
            .unwrap();
        assert_eq!(list.items.unwrap().len(), 1, "{kind}");
    }
    // Namespaces and Nodes (cluster-scoped reads, as the cluster reader).
    let namespaces = executor
        .read(
            &context(),
            &action(json!({"action_type": "LIST", "resource_kind": "Namespace"})),
            &all_mutate(),
        )
        .await
        .unwrap();
    let listed: Vec<String> = namespaces
        .items
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(listed.contains(&ns), "{listed:?}");
    for hidden in ["kube-system", "kube-public", world.gateway_namespace.as_str()] {
        assert!(
            !listed.iter().any(|n| n == hidden),
            "{hidden} is listed: the guardrails keep it out of reach"
        );
    }
    let one = executor
        .read(
            &context(),
            &action(json!({"action_type": "GET", "resource_kind": "Namespace", "resource_name": ns})),
            &all_mutate(),
        )
        .await
        .unwrap();
    assert_eq!(one.object.unwrap()["metadata"]["name"], ns.as_str());
    let nodes = executor
        .read(
            &context(),
            &action(json!({"action_type": "LIST", "resource_kind": "Node"})),
            &all_mutate(),
        )
        .await
        .unwrap();
    assert_eq!(
        nodes.api_status, 200,
        "no kubelet, so no nodes, but the call is allowed"
    );

    let name_of = |kind: ResourceKind| {
        fixtures.iter().find(|(k, _)| *k == kind).unwrap().1["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for kind in ResourceKind::ALL.into_iter().filter(|k| k.namespaced()) {
        let name = name_of(kind);
        if kind.supports(ActionType::Scale) {
            let verified = run(
                &executor,
                json!({"action_type": "SCALE", "namespace": ns, "resource_kind": kind.as_str(),
                                                 "resource_name": name, "parameters": {"replicas": 3}}),
            )
            .await;
            assert_eq!(verified.checks[0].field, "/spec/replicas");
            assert_eq!(verified.checks[0].observed, json!(3));
        }
        if kind.supports(ActionType::Restart) {
            let verified = run(
                &executor,
                json!({"action_type": "RESTART", "namespace": ns, "resource_kind": kind.as_str(),
                                                 "resource_name": name}),
            )
            .await;
            assert!(verified.checks[0].field.ends_with("kubectl.kubernetes.io~1restartedAt"));
        }
        if kind.supports(ActionType::SetImage) {
            run(&executor, json!({"action_type": "SET_IMAGE", "namespace": ns, "resource_kind": kind.as_str(),
                                  "resource_name": name, "parameters": {"container": "main", "image": "registry.example/app:2"}}))
            .await;
            let path = fixtures
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, m)| crate::support::Admin::path_of(m))
                .unwrap();
            let live = world.admin.get(&format!("{}/{}", path.0, path.1)).await.unwrap();
            assert!(live.to_string().contains("registry.example/app:2"), "{kind}: {live}");
        }
        run(&executor, json!({"action_type": "PATCH", "namespace": ns, "resource_kind": kind.as_str(),
                              "resource_name": name, "parameters": {"patch": {"metadata": {"labels": {"patched": "yes"}}}}}))
        .await;
    }
    for kind in ResourceKind::ALL.into_iter().filter(|k| k.namespaced()) {
        let verified = run(
            &executor,
            json!({"action_type": "DELETE", "namespace": ns, "resource_kind": kind.as_str(),
                                             "resource_name": name_of(kind)}),
        )
        .await;
        assert_eq!(verified.checks[0].field, "deleted");
    }
    let left = world
        .admin
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/config"))
        .await;
    assert!(matches!(left, Err(kube::Error::Api(s)) if s.code == 404));
}

#[tokio::test]
async fn previews_show_the_dry_run_diff_and_change_nothing() {
    let world = World::new().await;
    let executor = world.executor().await;
    world.deployment("web", 2).await;
    let ctx = context();

    let scale = action(
        json!({"action_type": "SCALE", "namespace": world.app, "resource_kind": "Deployment",
                              "resource_name": "web", "parameters": {"replicas": 5}}),
    );
    let preview = executor.preview(&ctx, &scale, &all_mutate()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&preview.diff).unwrap(),
        json!([{"op": "replace", "path": "/spec/replicas", "from": 2, "to": 5}])
    );
    assert_eq!(
        preview.request.path,
        format!("/apis/apps/v1/namespaces/{}/deployments/web/scale", world.app)
    );
    let live = world.admin.get(&world.deployment_path("web")).await.unwrap();
    assert_eq!(live["spec"]["replicas"], 2, "a preview changes nothing");

    let set_image = action(
        json!({"action_type": "SET_IMAGE", "namespace": world.app, "resource_kind": "Deployment",
                                  "resource_name": "web", "parameters": {"container": "sidecar", "image": "registry.example/proxy:2.0"}}),
    );
    let preview = executor.preview(&ctx, &set_image, &all_mutate()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&preview.diff).unwrap(),
        json!([{"op": "replace", "path": "/spec/template/spec/containers/1/image",
                       "from": "registry.example/proxy:1.0", "to": "registry.example/proxy:2.0"}])
    );
    let live_after = world.admin.get(&world.deployment_path("web")).await.unwrap();
    assert_eq!(
        live_after["metadata"]["resourceVersion"],
        live["metadata"]["resourceVersion"]
    );

    // The preview and the execution are one request: the execution gives what the dry-run showed.
    executor.execute(&ctx, &preview).await.unwrap();
    let live = world.admin.get(&world.deployment_path("web")).await.unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][1]["image"],
        "registry.example/proxy:2.0"
    );
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:1.0"
    );
}

#[tokio::test]
async fn calls_carry_the_audit_id_and_impersonation_extras() {
    let world = World::new().await;
    let executor = world.executor().await;
    world.deployment("web", 1).await;
    let ctx = context();
    let scale = action(
        json!({"action_type": "SCALE", "namespace": world.app, "resource_kind": "Deployment",
                              "resource_name": "web", "parameters": {"replicas": 2}}),
    );
    let preview = executor.preview(&ctx, &scale, &all_mutate()).await.unwrap();
    executor.execute(&ctx, &preview).await.unwrap();

    let events = audit_events(&ctx.audit_id).await;
    let patch = events
        .iter()
        .find(|e| e["verb"] == "patch" && !e["requestURI"].as_str().unwrap().contains("dryRun"))
        .unwrap_or_else(|| panic!("no audit event of the scale with Audit-ID {}: {events:?}", ctx.audit_id));
    assert_eq!(
        patch["user"]["username"],
        format!(
            "system:serviceaccount:{}:{}-gateway",
            world.gateway_namespace, world.release
        )
    );
    assert_eq!(
        patch["impersonatedUser"]["username"],
        format!("system:serviceaccount:{}:{}-operator", world.app, world.release)
    );
    assert_eq!(
        patch["impersonatedUser"]["extra"]["docketops-identity"],
        json!([ctx.identity])
    );
    assert_eq!(
        patch["impersonatedUser"]["extra"]["docketops-action"],
        json!([ctx.action_id])
    );
    assert_eq!(patch["responseStatus"]["code"], 200);
    assert!(
        events
            .iter()
            .any(|e| e["requestURI"].as_str().unwrap().contains("dryRun=All")),
        "the dry-run is audited too"
    );
}

#[tokio::test]
async fn lists_page_with_continue_tokens_and_selectors() {
    let world = World::new().await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        world
            .admin
            .apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "namespace": world.app, "labels": {"tier": tier}}}))
            .await;
    }
    let executor = world.executor().await;
    let list = |parameters: Value| {
        action(
            json!({"action_type": "LIST", "namespace": world.app, "resource_kind": "ConfigMap", "parameters": parameters}),
        )
    };
    let names = |items: &[Value]| {
        items
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let first = executor
        .read(&context(), &list(json!({"limit": 2})), &all_mutate())
        .await
        .unwrap();
    assert_eq!(names(first.items.as_ref().unwrap()), ["a", "b"]);
    let token = first.continue_token.expect("a continue token");
    let second = executor
        .read(&context(), &list(json!({"limit": 2, "continue": token})), &all_mutate())
        .await
        .unwrap();
    assert_eq!(names(second.items.as_ref().unwrap()), ["c"]);
    assert_eq!(second.continue_token, None);

    let web = executor
        .read(&context(), &list(json!({"label_selector": "tier=web"})), &all_mutate())
        .await
        .unwrap();
    assert_eq!(names(web.items.as_ref().unwrap()), ["a", "b"]);
    // A malformed selector is the API server's 400, as a result.
    let err = executor
        .read(
            &context(),
            &list(json!({"label_selector": "tier in (web"})),
            &all_mutate(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_request", "{err:?}");
}
