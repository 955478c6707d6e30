//! The mapping, entry kind by entry kind.

use domain::{ActionType, EntryKind};
use ledger_core::Entry;
use ledger_core::bundle::{entry_line, parse_entry_line};
use serde_json::{Value, json};

use super::*;

fn entry(seq: u64, kind: EntryKind, actor: &str, payload: Value) -> Entry {
    Entry {
        seq,
        id: format!("evt_{seq}"),
        timestamp: "2026-01-01T00:00:01.250000Z".into(),
        kind: kind.as_str().into(),
        actor: actor.into(),
        action_id: kind.is_action_step().then(|| "act_1".to_string()),
        payload: payload.to_string(),
        prev_chain_hash: "sha256:00".into(),
        event_hash: format!("sha256:e{seq}"),
        chain_hash: format!("sha256:c{seq}"),
        key_id: "ed25519:k".into(),
        signature: "sig".into(),
    }
}

fn requested(action_type: ActionType) -> Entry {
    let request = json!({"action_type": action_type.as_str(), "namespace": "staging", "resource_kind": "Deployment",
                         "resource_name": "web-api", "parameters": {"replicas": 5}});
    let payload = json!({"identity": {"id": "agt_1", "name": "ci-bot", "kind": "agent"}, "key_id": "key_1",
                         "request": request, "request_sha256": "sha256:00", "justification": null, "cluster": "prod-eu"});
    entry(1, EntryKind::ActionRequested, "agt_1", payload)
}

/// The OCSF and ECS events of `entries`, formatted in order by one formatter each.
fn events(entries: &[Entry]) -> Vec<(Value, Value)> {
    let mut ocsf = Formatter::new(SiemFormat::Ocsf);
    let mut ecs = Formatter::new(SiemFormat::Ecs);
    entries
        .iter()
        .map(|e| {
            let parse = |text: String| serde_json::from_str::<Value>(&text).unwrap();
            (parse(ocsf.message(e)), parse(ecs.message(e)))
        })
        .collect()
}

#[test]
fn formats_parse_by_name_and_raw_is_the_default() {
    for format in SiemFormat::ALL {
        assert_eq!(format.as_str().parse::<SiemFormat>().unwrap(), format);
        assert_eq!(format.to_string(), format.as_str());
    }
    assert_eq!(SiemFormat::default(), SiemFormat::Raw);
    assert!(
        "OCSF"
            .parse::<SiemFormat>()
            .unwrap_err()
            .to_string()
            .contains("raw, ocsf or ecs")
    );
    let e = requested(ActionType::Scale);
    assert_eq!(Formatter::new(SiemFormat::Raw).message(&e), entry_line(&e));
}

#[test]
fn an_action_maps_its_type_object_and_outcomes() {
    let entries = vec![
        requested(ActionType::Scale),
        entry(
            2,
            EntryKind::RiskClassified,
            "agt_1",
            json!({"level": "HIGH", "cluster": "prod-eu"}),
        ),
        entry(
            3,
            EntryKind::PolicyDecided,
            "agt_1",
            json!({"outcome": "deny", "reasons": ["no", "never"]}),
        ),
        entry(
            4,
            EntryKind::ActionExecuted,
            "agt_1",
            json!({"execution": {"api_status": 200}}),
        ),
        entry(5, EntryKind::OutcomeVerified, "agt_1", json!({"passed": false})),
        entry(6, EntryKind::ApprovalGranted, "usr_2", json!({"approver": "usr_2"})),
    ];
    let events = events(&entries);
    let (ocsf, ecs) = &events[0];
    assert_eq!(ocsf["class_uid"], 6003);
    assert_eq!(ocsf["category_uid"], 6);
    assert_eq!(
        (ocsf["activity_id"].clone(), ocsf["type_uid"].clone()),
        (json!(3), json!(600303))
    );
    assert_eq!(ocsf["status_id"], 99, "a request waits for its decision");
    assert_eq!(ocsf["api"]["operation"], "SCALE");
    assert_eq!(ocsf["api"]["request"]["uid"], "act_1");
    assert_eq!(
        ocsf["actor"]["user"],
        json!({"uid": "agt_1", "name": "ci-bot", "type_id": 99, "type": "Agent"})
    );
    assert_eq!(
        ocsf["resources"],
        json!([{"type": "Deployment", "name": "web-api", "namespace": "staging",
                "data": {"cluster": "prod-eu", "api_version": "apps/v1"}}])
    );
    assert_eq!(ocsf["metadata"]["version"], OCSF_VERSION);
    assert_eq!(ocsf["metadata"]["product"]["name"], PRODUCT);
    assert_eq!(ocsf["metadata"]["uid"], "evt_1");
    assert_eq!(ocsf["time"], 1767225601250i64);
    assert_eq!(ecs["event"]["outcome"], "unknown");
    assert_eq!(
        ecs["orchestrator"]["resource"],
        json!({"type": "Deployment", "name": "web-api"})
    );
    assert_eq!(ecs["orchestrator"]["cluster"]["name"], "prod-eu");
    assert_eq!(ecs["user"], json!({"id": "agt_1", "name": "ci-bot"}));

    // Later entries know the action from its request.
    let (risk, _) = &events[1];
    assert_eq!(
        (risk["severity_id"].clone(), risk["api"]["operation"].clone()),
        (json!(4), json!("SCALE"))
    );
    assert_eq!(risk["actor"]["user"]["name"], "ci-bot");
    let (deny, deny_ecs) = &events[2];
    assert_eq!(
        (deny["status_id"].clone(), deny["status_detail"].clone()),
        (json!(2), json!("no; never"))
    );
    assert_eq!(deny_ecs["event"]["type"], json!(["change", "denied"]));
    assert_eq!(deny_ecs["event"]["reason"], "no; never");
    let (executed, executed_ecs) = &events[3];
    assert_eq!(
        (executed["status_id"].clone(), executed["status_code"].clone()),
        (json!(1), json!("200"))
    );
    assert_eq!(executed_ecs["http"]["response"]["status_code"], 200);
    assert_eq!(executed_ecs["event"]["outcome"], "success");
    let (verified, verified_ecs) = &events[4];
    assert_eq!(verified["status_id"], 2);
    assert_eq!(verified_ecs["event"]["type"], json!(["change", "error"]));
    let (granted, granted_ecs) = &events[5];
    assert_eq!(
        granted["actor"]["user"],
        json!({"uid": "usr_2", "type_id": 1, "type": "User"})
    );
    assert_eq!(granted_ecs["event"]["type"], json!(["change", "allowed"]));
}

#[test]
fn activities_follow_the_action_type_or_the_kind() {
    let expect = [
        (ActionType::Get, 2),
        (ActionType::List, 2),
        (ActionType::Delete, 4),
        (ActionType::Apply, 3),
    ];
    for (action_type, activity_id) in expect {
        let (ocsf, _) = &events(&[requested(action_type)])[0];
        assert_eq!(ocsf["activity_id"], activity_id, "{action_type:?}");
    }
    let kinds = [
        (EntryKind::IdentityCreated, 1, "iam", "creation"),
        (EntryKind::KeyRevoked, 4, "iam", "deletion"),
        (EntryKind::FreezeEnabled, 3, "configuration", "change"),
        (EntryKind::LedgerNote, 99, "configuration", "info"),
    ];
    for (kind, activity_id, category, event_type) in kinds {
        let (ocsf, ecs) = &events(&[entry(9, kind, "cli:admin", json!({}))])[0];
        assert_eq!(ocsf["activity_id"], activity_id, "{kind}");
        assert_eq!(ocsf["api"]["operation"], kind.as_str());
        assert_eq!(
            ocsf["api"]["request"]["uid"], "evt_9",
            "no action: the entry is the request"
        );
        assert_eq!(ocsf["actor"]["user"]["type_id"], 2, "an operator on the CLI");
        assert!(ocsf.get("resources").is_none());
        assert_eq!(ecs["event"]["category"], json!([category]));
        assert_eq!(ecs["event"]["type"], json!([event_type]));
        assert!(ecs.get("orchestrator").is_none());
    }
    // A step whose action is unknown (its request was never seen nor looked up).
    let (ocsf, _) = &events(&[entry(3, EntryKind::RiskClassified, "system", json!({"level": "LOW"}))])[0];
    assert_eq!(
        (ocsf["activity_id"].clone(), ocsf["severity_id"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(ocsf["actor"]["user"]["type_id"], 3);
}

#[test]
fn every_event_carries_the_entry_whole() {
    let entries = [
        requested(ActionType::Scale),
        entry(2, EntryKind::LedgerNote, "cli", json!({"b": 1, "a": 2})),
    ];
    for (ocsf, ecs) in events(&entries) {
        for fields in [&ocsf["unmapped"]["docketops"], &ecs["docketops"]] {
            let line = fields[ENTRY_FIELD].as_str().unwrap();
            let back = parse_entry_line(line).unwrap();
            assert_eq!(line, entry_line(&back), "the bundle line, byte for byte");
            assert_eq!(fields["seq"], back.seq);
            assert_eq!(fields["chain_hash"], back.chain_hash.as_str());
            assert_eq!(fields["signature"], back.signature.as_str());
            assert_eq!(fields["key_id"], back.key_id.as_str());
        }
        assert_eq!(
            ocsf["observables"][0]["value"],
            ocsf["unmapped"]["docketops"]["chain_hash"]
        );
        assert_eq!(ecs["event"]["id"], ecs["docketops"]["id"]);
    }
}

#[test]
fn targets_of_earlier_actions_are_looked_up_once() {
    let mut formatter = Formatter::new(SiemFormat::Ecs);
    let later = entry(2, EntryKind::PolicyDecided, "agt_1", json!({"outcome": "allow"}));
    assert_eq!(
        formatter.unknown_actions(std::slice::from_ref(&later)),
        vec!["act_1".to_string()]
    );
    assert!(
        formatter
            .unknown_actions(&[requested(ActionType::Scale), later.clone()])
            .is_empty()
    );
    assert!(
        Formatter::new(SiemFormat::Raw)
            .unknown_actions(std::slice::from_ref(&later))
            .is_empty()
    );
    let target = ActionTarget {
        action_type: Some(ActionType::Restart),
        resource_kind: Some("StatefulSet".into()),
        resource_name: Some("db".into()),
        namespace: Some("data".into()),
        cluster: Some("default".into()),
        requester_id: None,
        requester_name: None,
    };
    formatter.remember("act_1".into(), target);
    assert!(formatter.unknown_actions(std::slice::from_ref(&later)).is_empty());
    let ecs: Value = serde_json::from_str(&formatter.message(&later)).unwrap();
    assert_eq!(ecs["orchestrator"]["resource"]["name"], "db");
    assert_eq!(ecs["orchestrator"]["api_version"], "apps/v1");
    assert_eq!(ecs["docketops"]["action_type"], "RESTART");
    assert_eq!(ecs["event"]["type"], json!(["change", "allowed"]));
}

#[test]
fn a_deny_in_ledger_mode_is_not_a_failure() {
    let decided = |mode: &str| {
        entry(
            2,
            EntryKind::PolicyDecided,
            "agt_1",
            json!({"outcome": "deny", "mode": mode, "reasons": ["no"]}),
        )
    };
    let events = events(&[requested(ActionType::Scale), decided("ledger"), decided("enforce")]);
    assert_eq!(
        events[1].0["status_id"],
        json!(1),
        "recorded, not enforced: the action went ahead"
    );
    assert_eq!(events[2].0["status_id"], json!(2));
}
