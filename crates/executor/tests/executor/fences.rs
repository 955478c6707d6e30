//! The two fences: guardrails refuse before any Kubernetes call, and when a test turns the guardrails off,
//! Kubernetes RBAC still refuses, because the gateway can only act as the executor accounts.

use executor::guardrails::Guardrails;
use executor::{ExecError, Scope};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

use crate::support::{World, action, all_mutate, audit_events, context};

fn scale(namespace: &str) -> executor::Action {
    action(
        json!({"action_type": "SCALE", "namespace": namespace, "resource_kind": "Deployment",
                  "resource_name": "web", "parameters": {"replicas": 4}}),
    )
}

/// Proves a context made no API call: a later call's audit event is there, the refused one's is not.
async fn assert_never_reached_the_api(world: &World, executor: &executor::Executor, refused: &executor::CallContext) {
    let marker = context();
    let probe = action(json!({"action_type": "LIST", "namespace": world.app, "resource_kind": "ConfigMap"}));
    executor.read(&marker, &probe, &all_mutate()).await.unwrap();
    assert!(
        !audit_events(&marker.audit_id).await.is_empty(),
        "the marker call is in the audit log"
    );
    let text = std::fs::read_to_string(crate::support::test_env().audit_log).unwrap();
    assert!(
        !text.contains(&refused.audit_id),
        "a refused action reached the API server"
    );
}

#[tokio::test]
async fn blocked_and_ungoverned_namespaces_are_refused_before_any_call() {
    let world = World::new().await;
    world.deployment("web", 1).await;
    let guardrails = Guardrails {
        allowed_namespaces: vec![world.app.clone()],
        ..world.guardrails()
    };
    let executor = world.executor_with(guardrails, World::options()).await;

    for (namespace, rule) in [
        ("kube-system", "namespace_blocked"),
        (world.gateway_namespace.as_str(), "namespace_blocked"),
        (world.other.as_str(), "namespace_not_allowed"),
    ] {
        let ctx = context();
        let err = executor
            .preview(&ctx, &scale(namespace), &all_mutate())
            .await
            .unwrap_err();
        let ExecError::Guardrail(violation) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(violation.rule, rule, "{namespace}");
        assert_eq!(err.code(), "guardrail_denied");
        assert_never_reached_the_api(&world, &executor, &ctx).await;
    }
}

#[tokio::test]
async fn a_read_scope_cannot_mutate() {
    let world = World::new().await;
    world.deployment("web", 1).await;
    let executor = world.executor().await;
    let read_only = [Scope::parse_short(&format!("read:{}:*", world.app)).unwrap()];

    let ctx = context();
    let err = executor
        .preview(&ctx, &scale(&world.app), &read_only)
        .await
        .unwrap_err();
    assert!(matches!(&err, ExecError::Guardrail(v) if v.rule == "scope"), "{err:?}");
    assert_never_reached_the_api(&world, &executor, &ctx).await;
    // Reading is fine with the same scope.
    let get = action(
        json!({"action_type": "GET", "namespace": world.app, "resource_kind": "Deployment", "resource_name": "web"}),
    );
    executor.read(&context(), &get, &read_only).await.unwrap();

    // RBAC, with the guardrail out of the way: the reader account cannot patch.
    let reader = format!("system:serviceaccount:{}:{}-reader", world.app, world.release);
    let err = patch_as(&world, &reader, &world.app).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err:?}");
    // ...while the operator account can: the 403 above is about the account, not the request.
    let operator = format!("system:serviceaccount:{}:{}-operator", world.app, world.release);
    patch_as(&world, &operator, &world.app).await.unwrap();
}

#[tokio::test]
async fn with_the_guardrails_off_rbac_still_refuses() {
    let world = World::new().await;
    world.deployment("web", 1).await;
    // What a buggy guardrail would let through: every namespace, every kind.
    let open = Guardrails {
        blocked_namespaces: Vec::new(),
        gateway_namespace: "not-the-gateway".into(),
        ..Guardrails::default()
    };
    let executor = world.executor_with(open, World::options()).await;
    for namespace in ["kube-system", world.other.as_str()] {
        world
            .admin
            .apply(&crate::support::deployment_manifest(
                namespace,
                &format!("web-{}", world.release),
                1,
            ))
            .await;
        let action = action(
            json!({"action_type": "SCALE", "namespace": namespace, "resource_kind": "Deployment",
                                   "resource_name": format!("web-{}", world.release), "parameters": {"replicas": 0}}),
        );
        let err = executor.preview(&context(), &action, &all_mutate()).await.unwrap_err();
        assert_eq!(err.api_status(), Some(403), "{namespace}: {err:?}");
        assert_eq!(err.code(), "forbidden");
        assert!(err.to_string().contains("impersonate"), "{err}");
    }
    // The gateway's own account has no rights on objects, only impersonation.
    let gateway = format!(
        "system:serviceaccount:{}:{}-gateway",
        world.gateway_namespace, world.release
    );
    let err = patch_as_gateway_itself(&world).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403 && s.message.contains(&gateway)),
        "{err:?}"
    );
    // Clean up the kube-system fixture.
    let api: Api<DynamicObject> = Api::namespaced_with(world.admin.client.clone(), "kube-system", &deployments());
    api.delete(&format!("web-{}", world.release), &Default::default())
        .await
        .unwrap();
}

fn deployments() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment"),
        "deployments",
    )
}

async fn gateway_config(world: &World) -> kube::Config {
    let kubeconfig = kube::config::Kubeconfig::read_from(&world.gateway_kubeconfig).unwrap();
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap()
}

/// A merge patch of `web` sent with the gateway's token, impersonating `user` directly (no guardrails).
async fn patch_as(world: &World, user: &str, namespace: &str) -> Result<DynamicObject, kube::Error> {
    let mut config = gateway_config(world).await;
    config.auth_info.impersonate = Some(user.to_owned());
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &deployments());
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
    )
    .await
}

async fn patch_as_gateway_itself(world: &World) -> Result<DynamicObject, kube::Error> {
    let client = kube::Client::try_from(gateway_config(world).await).unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &world.app, &deployments());
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 9}})),
    )
    .await
}

#[tokio::test]
async fn secrets_are_read_as_metadata_unless_revealed() {
    let world = World::new().await;
    world
        .admin
        .apply(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": world.app},
                       "stringData": {"password": "hunter2"}}),
        )
        .await;
    let get =
        action(json!({"action_type": "GET", "namespace": world.app, "resource_kind": "Secret", "resource_name": "db"}));
    let list = action(json!({"action_type": "LIST", "namespace": world.app, "resource_kind": "Secret"}));
    let executor = world.executor().await;
    let read = executor.read(&context(), &get, &all_mutate()).await.unwrap();
    assert!(read.secret_data_withheld);
    let object = read.object.unwrap();
    assert_eq!(object["metadata"]["name"], "db");
    assert!(object.get("data").is_none(), "{object}");
    let listed = executor.read(&context(), &list, &all_mutate()).await.unwrap();
    assert!(
        !serde_json::to_string(&listed).unwrap().contains("aHVudGVyMg"),
        "base64 of the password leaked"
    );

    // A patch's preview shows that the value changes, never the value.
    let patch = action(
        json!({"action_type": "PATCH", "namespace": world.app, "resource_kind": "Secret", "resource_name": "db",
                              "parameters": {"patch": {"data": {"password": "bmV3LXBhc3N3b3Jk"}}}}),
    );
    let preview = executor.preview(&context(), &patch, &all_mutate()).await.unwrap();
    let text = serde_json::to_string(&preview).unwrap();
    assert!(
        !text.contains("bmV3LXBhc3N3b3Jk") && !text.contains("aHVudGVyMg"),
        "{text}"
    );
    assert!(
        preview
            .diff
            .iter()
            .any(|c| c.path == "/data/password" && c.op == "replace"),
        "{text}"
    );
    // The dry-run object (what a dry-run action answers with) is the Secret with its values redacted.
    assert_eq!(preview.dry_run_object["metadata"]["name"], "db", "{text}");
    assert_eq!(preview.dry_run_object["data"]["password"], "<redacted>", "{text}");

    let revealing = Guardrails {
        reveal_secret_data: true,
        ..world.guardrails()
    };
    let executor = world.executor_with(revealing, World::options()).await;
    let read = executor.read(&context(), &get, &all_mutate()).await.unwrap();
    assert_eq!(read.object.unwrap()["data"]["password"], "aHVudGVyMg==");
}
