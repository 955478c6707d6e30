//! A deterministic corpus of policy inputs in the gateway's shape (crates/gateway/src/pipeline/judge.rs builds
//! them): every field the shipped policy and templates read, varied with a fixed-seed generator, so that the
//! same inputs come back on every run and a mismatch can be replayed. A few inputs lack a field the gateway
//! always sends (time, action type, risk level) or a justification.

use serde_json::{Value, json};

/// SplitMix64: tiny, fixed, good enough to spread choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Some of `items` (each with the given chance), in order.
    pub fn some_of(&mut self, items: &[&str], percent: u64) -> Vec<String> {
        items
            .iter()
            .filter(|_| self.chance(percent))
            .map(|item| item.to_string())
            .collect()
    }
}

const ACTION_TYPES: &[&str] = &[
    "GET",
    "LIST",
    "SCALE",
    "RESTART",
    "SET_IMAGE",
    "PATCH",
    "APPLY",
    "DELETE",
];
const NAMESPACES: &[&str] = &[
    "staging",
    "production",
    "prod",
    "prod-eu",
    "production-b",
    "dev",
    "kube-system",
    "team-a",
];
const KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Pod",
    "Job",
    "CronJob",
    "Service",
    "ConfigMap",
    "Secret",
];
const IMAGES: &[&str] = &[
    "ghcr.io/acme/app:1.2",
    "ghcr.io/acme",
    "ghcr.io/acme-evil/app:1",
    "GHCR.io/Acme/App:2",
    "registry.example.com/team/api@sha256:0123abcd",
    "registry.example.com:5000/x:1",
    "nginx:1.27",
    "redis",
    "library/redis:7",
    "docker.io/library/nginx:latest",
    "bitnami/redis:7",
    "localhost:5000/dev/app",
    "localhost/app",
    "quay.io/org/tool:3",
];
const AGENT_NAMES: &[&str] = &["ci-bot", "report-bot", "deploy-bot", "agt_0123456789abcdef"];
const HUMAN_NAMES: &[&str] = &["alice", "bob", "carol"];

/// `count` inputs from `seed`.
pub fn inputs(seed: u64, count: usize) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    (0..count).map(|index| input(&mut rng, index)).collect()
}

fn input(rng: &mut Rng, index: usize) -> Value {
    let action_type = *rng.pick(ACTION_TYPES);
    let read = matches!(action_type, "GET" | "LIST");
    let kind = *rng.pick(KINDS);
    let mut document = json!({
        "identity": identity(rng),
        "action": {
            "action_id": format!("act_{index:08}"),
            "cluster": if rng.chance(80) { json!("default") } else { json!("eu-west") },
            "action_type": action_type,
            "namespace": *rng.pick(NAMESPACES),
            "resource_kind": kind,
            "resource_name": *rng.pick(&["web-api", "worker", "db", "logs-agent"]),
            "parameters": parameters(rng, action_type, kind),
            "justification": justification(rng),
        },
        "risk": risk(rng),
        "preview": if read { Value::Null } else { preview(rng) },
        "time": time(rng),
    });
    // The gateway always sends a time; an older ledger entry replayed might not.
    if rng.chance(2) {
        document.as_object_mut().expect("object").remove("time");
    }
    leave_out_fields(rng, &mut document);
    document
}

/// The gateway always sends an action type and a risk level, and a justification when it has one; a policy must
/// still decide without them, fail-safe, and alike in both engines (a negated membership test on a missing field
/// is undefined in OPA, true in regorus: the shipped policies negate helper rules instead).
fn leave_out_fields(rng: &mut Rng, document: &mut Value) {
    for (object, field) in [
        ("action", "action_type"),
        ("risk", "level"),
        ("action", "justification"),
    ] {
        if rng.chance(4) {
            document[object].as_object_mut().expect("object").remove(field);
        }
    }
}

fn identity(rng: &mut Rng) -> Value {
    let agent = rng.chance(60);
    let (id, name) = if agent {
        let name = *rng.pick(AGENT_NAMES);
        let id = if name.starts_with("agt_") {
            name.to_string()
        } else {
            format!("agt_{:04}", rng.below(20))
        };
        (id, name)
    } else {
        (format!("usr_{:04}", rng.below(20)), *rng.pick(HUMAN_NAMES))
    };
    let access = if rng.chance(30) { "read" } else { "mutate" };
    json!({
        "id": id,
        "name": name,
        "kind": if agent { "agent" } else { "human" },
        "roles": rng.some_of(&["operator", "viewer", "approver", "admin"], 40),
        "scopes": [{"namespaces": rng.some_of(&["staging", "prod-*", "*"], 50), "access": access,
                    "kinds": rng.some_of(&["Deployment", "Pod", "*"], 50)}],
        "groups": rng.some_of(&["platform", "sre", "security"], 30),
        "trust_score": rng.below(120),
        "trust_stale": rng.chance(10),
    })
}

fn justification(rng: &mut Rng) -> Value {
    match rng.below(5) {
        0 | 1 => Value::Null,
        2 => json!(*rng.pick(&["", "   ", "\t\n"])),
        _ => json!(*rng.pick(&["ticket 42", "load test", "incident INC-7: roll back", "décommission ✓"])),
    }
}

fn risk(rng: &mut Rng) -> Value {
    // The classifier's levels; "CRITICAL" stands for a level the policy does not know.
    let level = match rng.below(40) {
        0 => "CRITICAL",
        n if n < 14 => "LOW",
        n if n < 27 => "MEDIUM",
        _ => "HIGH",
    };
    json!({"level": level, "rules": rng.some_of(&["baseline", "delete", "production-namespace", "scale-to-zero"], 30)})
}

fn time(rng: &mut Rng) -> Value {
    // 2026-11-23 is a Monday: a week and a day, every hour, in the formats RFC 3339 allows.
    let day = 23 + rng.below(8);
    let (hour, minute, second) = (rng.below(24), rng.below(60), rng.below(60));
    let zone = *rng.pick(&["Z", "Z", ".5Z", ".999999Z", "+05:00", "-08:00", "+00:00"]);
    json!(format!("2026-11-{day:02}T{hour:02}:{minute:02}:{second:02}{zone}"))
}

fn preview(rng: &mut Rng) -> Value {
    let from = rng.below(10);
    json!({"diff": [{"op": "replace", "path": "/spec/replicas", "from": from, "to": from + rng.below(5)}],
           "live": {"spec": {"replicas": from}}})
}

fn parameters(rng: &mut Rng, action_type: &str, kind: &str) -> Value {
    match action_type {
        "SCALE" => json!({"replicas": replicas(rng)}),
        "SET_IMAGE" => json!({"container": "app", "image": *rng.pick(IMAGES)}),
        "APPLY" => json!({"manifest": manifest(rng, kind), "force": rng.chance(20)}),
        "PATCH" => json!({"patch": patch(rng, kind)}),
        "DELETE" if rng.chance(50) => json!({"propagation_policy": *rng.pick(&["Background", "Foreground", "Orphan"])}),
        "LIST" if rng.chance(50) => json!({"label_selector": "app=web", "limit": 50}),
        _ => json!({}),
    }
}

fn replicas(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => json!(0),
        1 => json!(rng.below(100) + 50),
        _ => json!(rng.below(25)),
    }
}

fn manifest(rng: &mut Rng, kind: &str) -> Value {
    let mut spec = workload_spec(rng, kind);
    if rng.chance(70) && spec.is_object() && kind != "Pod" {
        spec["replicas"] = match rng.below(12) {
            0 => json!("5"), // a manifest is the caller's: not always a number
            _ => replicas(rng),
        };
    }
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web-api", "labels": {"app": "web"}},
           "spec": spec})
}

fn patch(rng: &mut Rng, kind: &str) -> Value {
    match rng.below(4) {
        0 => json!({"metadata": {"labels": {"team": "a"}}}),
        1 => json!({"spec": {"replicas": replicas(rng)}}),
        _ => json!({"spec": workload_spec(rng, kind)}),
    }
}

/// A kind's spec holding a pod spec where Kubernetes keeps it (Pod: spec; CronJob: jobTemplate; workloads:
/// template).
fn workload_spec(rng: &mut Rng, kind: &str) -> Value {
    let pod = pod_spec(rng);
    match kind {
        "Pod" => pod,
        "CronJob" => json!({"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}}),
        "ConfigMap" | "Secret" | "Service" => json!({"ports": [{"port": 80}]}),
        _ => json!({"template": {"metadata": {"labels": {"app": "web"}}, "spec": pod}}),
    }
}

fn pod_spec(rng: &mut Rng) -> Value {
    let count = 1 + rng.below(2);
    let mut spec = json!({"containers": containers(rng, count)});
    if rng.chance(25) {
        spec["initContainers"] = containers(rng, 1);
    }
    if rng.chance(5) {
        spec["ephemeralContainers"] = containers(rng, 1);
    }
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if rng.chance(6) {
            spec[field] = json!(rng.chance(70));
        }
    }
    if rng.chance(20) {
        let source = if rng.chance(50) {
            json!({"hostPath": {"path": "/var/log"}})
        } else {
            json!({"emptyDir": {}})
        };
        let mut volume = json!({"name": "logs"});
        volume
            .as_object_mut()
            .expect("object")
            .extend(source.as_object().expect("object").clone());
        spec["volumes"] = json!([volume]);
    }
    spec
}

fn containers(rng: &mut Rng, count: u64) -> Value {
    let list: Vec<Value> = (0..count).map(|n| container(rng, n)).collect();
    json!(list)
}

fn container(rng: &mut Rng, n: u64) -> Value {
    let mut container = json!({"name": format!("c{n}"), "image": *rng.pick(IMAGES)});
    if rng.chance(10) {
        container.as_object_mut().expect("object").remove("name");
    }
    if rng.chance(35) {
        let mut context = serde_json::Map::new();
        if rng.chance(30) {
            context.insert("privileged".into(), json!(rng.chance(60)));
        }
        if rng.chance(30) {
            context.insert("allowPrivilegeEscalation".into(), json!(rng.chance(60)));
        }
        if rng.chance(40) {
            let add = rng.some_of(&["NET_ADMIN", "SYS_ADMIN", "cap_sys_admin", "ALL", "CHOWN"], 35);
            context.insert("capabilities".into(), json!({"add": add}));
        }
        container["securityContext"] = Value::Object(context);
    }
    container
}
