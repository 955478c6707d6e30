//! The ocsf and ecs formats on real ledger entries: a history seeded through the real appender (requests,
//! risk, policy decisions allowing and denying, approvals granted, denied and expired, executions,
//! verifications, failures) exported to files as OCSF and ECS. Every OCSF event is checked against the
//! OCSF schema by an independent validator (PyPI's `ocsf-json-schema` and `jsonschema`, from
//! scripts/ensure-ocsf-validator, or the python in DOCKETOPS_OCSF_PYTHON), which must also refuse a broken
//! event; the documented ECS and HEC fields are compared with the entries; and the received copies rebuild
//! into bundles the core verifier accepts, while a tampered copy is refused.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use domain::{ActionType, EntryKind};
use ledger_core::bundle::{BundleHeader, entry_line, parse_entry_line};
use ledger_core::{Entry, LedgerSigningKey, VerifyOptions};
use serde_json::Value;
use siem::format::{ECS_VERSION, OCSF_CLASS_UID, OCSF_VERSION};
use siem::hec::{HecFields, event as hec_event};
use siem::{ExportConfig, Mode, SiemFormat, Sink, SinkOptions, SinkSpec};
use storage::seed::{SeedConfig, seed_history};
use storage::{AppendConfig, Ledger, Store};

/// The python of the OCSF validator's venv.
fn ocsf_python() -> String {
    if let Ok(python) = std::env::var("DOCKETOPS_OCSF_PYTHON") {
        return python;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-ocsf-validator");
    let out = Command::new(script).output().unwrap();
    assert!(
        out.status.success(),
        "scripts/ensure-ocsf-validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// Validates every line of `path` as an OCSF API Activity event: whether all are valid, how many were
/// checked, and the errors of each invalid line.
fn validate_ocsf(path: &Path) -> (bool, usize, Vec<(u64, Vec<String>)>) {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ocsf/validate.py");
    let out = Command::new(ocsf_python())
        .arg(program)
        .args([OCSF_VERSION, &OCSF_CLASS_UID.to_string()])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the validator failed: {stderr}"
    );
    let reports: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .collect();
    let invalid = reports
        .iter()
        .filter(|report| !report["errors"].as_array().unwrap().is_empty())
        .map(|report| {
            let errors = report["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.to_string())
                .collect();
            (report["line"].as_u64().unwrap(), errors)
        })
        .collect();
    (out.status.success(), reports.len(), invalid)
}

struct History {
    store: Store,
    dir: tempfile::TempDir,
    entries: Vec<Entry>,
}

/// A ledger on a SQLite file with a seeded history of `actions` actions.
async fn history(actions: u64) -> History {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("ledger.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ledger = Ledger::start(store.clone(), LedgerSigningKey::generate(), AppendConfig::default());
    ledger.initialize().await.unwrap();
    let config = SeedConfig {
        chunk_actions: 16,
        ..SeedConfig::new(actions)
    };
    seed_history(&store, &ledger, &config, &|_| {}).await.unwrap();
    let head = store.head().await.unwrap().unwrap().seq;
    let entries = store.entries_after(0, head as u32).await.unwrap();
    assert_eq!(entries.len() as u64, head);
    History { store, dir, entries }
}

impl History {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Exports everything (after `from`) to a file in `format`; the file's lines.
    async fn export(&self, name: &str, format: SiemFormat, from: u64) -> Vec<String> {
        if from > 0 {
            let at = &self.entries[from as usize - 1];
            self.store
                .set_export_cursor(name, from as i64, Some(&at.id))
                .await
                .unwrap();
        }
        let path = self.path(&format!("{name}.jsonl"));
        let options = SinkOptions {
            format,
            ..SinkOptions::default()
        };
        let mut sink = Sink::open(&SinkSpec::File(path.clone()), &options).await.unwrap();
        let config = ExportConfig {
            name: name.to_string(),
            batch: 7,
            mode: Mode::Once,
            poll_interval: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            give_up_after: None,
        };
        siem::run_export(&self.store, &mut sink, &config, std::future::pending())
            .await
            .unwrap();
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Each action's request: (action type, kind, name, namespace).
    fn requests(&self) -> HashMap<String, Value> {
        self.entries
            .iter()
            .filter(|e| EntryKind::parse(&e.kind) == Some(EntryKind::ActionRequested))
            .map(|e| {
                (
                    e.action_id.clone().unwrap(),
                    e.payload_value().unwrap()["request"].clone(),
                )
            })
            .collect()
    }
}

fn kinds(entries: &[Entry]) -> BTreeSet<EntryKind> {
    entries.iter().filter_map(|e| EntryKind::parse(&e.kind)).collect()
}

/// Rebuilds a bundle from `lines` and verifies it with the core verifier; the number of entries checked.
fn rebuild_and_verify(dir: &Path, lines: &[String]) -> Result<u64, String> {
    let copy = dir.join("copy.log");
    // The SIEM's view: newest first, every third twice.
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate().rev() {
        text.push_str(&format!("{line}\n"));
        if i % 3 == 0 {
            text.push_str(&format!("{line}\n"));
        }
    }
    std::fs::write(&copy, text).unwrap();
    let bundle_path = dir.join("copy-bundle.jsonl");
    siem::bundle::build_bundle_file(&[copy], &bundle_path).map_err(|e| e.to_string())?;
    let bundle = std::fs::read_to_string(&bundle_path).unwrap();
    let mut bundle_lines = bundle.lines();
    let header = BundleHeader::parse(bundle_lines.next().unwrap()).unwrap();
    let entries: Vec<_> = bundle_lines.map(|line| parse_entry_line(line).unwrap()).collect();
    let head = header.head.unwrap();
    let options = VerifyOptions {
        expected_head: Some((head.seq, head.chain_hash)),
        ..VerifyOptions::default()
    };
    let report = ledger_core::verify::verify_entries(&entries, options);
    if report.valid {
        Ok(report.entries_checked)
    } else {
        Err(format!("{:?}", report.first_invalid))
    }
}

#[tokio::test]
async fn ocsf_events_of_every_kind_validate_against_the_schema_and_rebuild_the_ledger() {
    let history = history(150).await;
    let expected = [
        EntryKind::ActionRequested,
        EntryKind::RiskClassified,
        EntryKind::PolicyDecided,
        EntryKind::ApprovalRequested,
        EntryKind::ApprovalGranted,
        EntryKind::ApprovalDenied,
        EntryKind::ActionExecuted,
        EntryKind::OutcomeVerified,
        EntryKind::ActionFailed,
        EntryKind::IdentityCreated,
        EntryKind::LedgerInitialized,
    ];
    let present = kinds(&history.entries);
    assert!(
        expected.iter().all(|k| present.contains(k)),
        "seeded kinds: {present:?}"
    );
    let lines = history.export("ocsf", SiemFormat::Ocsf, 0).await;
    assert_eq!(lines.len(), history.entries.len());

    let (valid, checked, invalid) = validate_ocsf(&history.path("ocsf.jsonl"));
    assert!(valid && invalid.is_empty(), "invalid OCSF events: {invalid:?}");
    assert_eq!(checked, lines.len());

    let requests = history.requests();
    let mut denied = 0;
    for (line, entry) in lines.iter().zip(&history.entries) {
        let event: Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["class_uid"], OCSF_CLASS_UID);
        assert_eq!(
            event["type_uid"],
            event["class_uid"].as_u64().unwrap() * 100 + event["activity_id"].as_u64().unwrap()
        );
        assert_eq!(event["metadata"]["uid"], entry.id.as_str());
        assert_eq!(event["metadata"]["version"], OCSF_VERSION);
        assert_eq!(event["actor"]["user"]["uid"], entry.actor.as_str());
        assert_eq!(event["unmapped"]["docketops"]["entry"], entry_line(entry).as_str());
        assert_eq!(event["unmapped"]["docketops"]["chain_hash"], entry.chain_hash.as_str());
        let payload = entry.payload_value().unwrap();
        let Some(action_id) = &entry.action_id else {
            assert!(event.get("resources").is_none());
            continue;
        };
        let request = &requests[action_id];
        assert_eq!(event["api"]["operation"], request["action_type"], "{line}");
        assert_eq!(event["api"]["request"]["uid"], action_id.as_str());
        let resource = &event["resources"][0];
        assert_eq!(resource["type"], request["resource_kind"]);
        assert_eq!(resource["name"], request["resource_name"]);
        assert_eq!(resource["namespace"], request["namespace"]);
        assert_eq!(resource["data"]["cluster"], payload["cluster"]);
        let read = ActionType::parse(request["action_type"].as_str().unwrap()).is_some_and(|t| !t.is_mutation());
        assert_eq!(event["activity_id"] == 2, read, "{line}");
        if EntryKind::parse(&entry.kind) == Some(EntryKind::PolicyDecided) && payload["outcome"] == "deny" {
            assert_eq!(event["status_id"], 2, "{line}");
            denied += 1;
        }
    }
    assert!(denied > 0, "the history holds denied actions");

    // The validator is not a rubber stamp: events without a class, with an unknown activity or without the
    // mandatory src_endpoint are refused.
    let broken = history.path("broken.jsonl");
    let first: Value = serde_json::from_str(&lines[1]).unwrap();
    let mut variants = Vec::new();
    for (field, value) in [
        ("class_uid", None),
        ("activity_id", Some(Value::from(7))),
        ("src_endpoint", None),
    ] {
        let mut event = first.clone();
        match value {
            Some(value) => event[field] = value,
            None => drop(event.as_object_mut().unwrap().remove(field)),
        }
        variants.push(event.to_string());
    }
    variants.push(first.to_string());
    std::fs::write(&broken, variants.join("\n")).unwrap();
    let (valid, checked, invalid) = validate_ocsf(&broken);
    assert!(!valid && checked == 4);
    assert_eq!(
        invalid.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{invalid:?}"
    );
    assert!(invalid[0].1.iter().any(|e| e.contains("class_uid")), "{invalid:?}");

    // The received copy rebuilds into a bundle that verifies; an altered entry inside an event does not.
    let checked = rebuild_and_verify(history.dir.path(), &lines).unwrap();
    assert_eq!(checked, history.entries.len() as u64);
    let victim = lines
        .iter()
        .position(|l| l.contains("\\\"replicas\\\":"))
        .expect("a scale request");
    let mut tampered = lines.clone();
    tampered[victim] = tampered[victim].replacen("\\\"replicas\\\":", "\\\"replicas\\\":9", 1);
    assert_ne!(tampered[victim], lines[victim]);
    let refused = rebuild_and_verify(history.dir.path(), &tampered).unwrap_err();
    assert!(refused.contains(&format!("seq: {}", victim + 1)), "{refused}");
    history.store.close().await;
}

#[tokio::test]
async fn ecs_documents_and_hec_events_carry_the_documented_fields() {
    let history = history(30).await;
    let lines = history.export("ecs", SiemFormat::Ecs, 0).await;
    assert_eq!(lines.len(), history.entries.len());
    let requests = history.requests();
    for (line, entry) in lines.iter().zip(&history.entries) {
        let doc: Value = serde_json::from_str(line).unwrap();
        assert_eq!(doc["@timestamp"], entry.timestamp.as_str());
        assert_eq!(doc["ecs"]["version"], ECS_VERSION);
        let event = &doc["event"];
        assert_eq!(event["kind"], "event");
        assert_eq!(event["action"], entry.kind.as_str());
        assert_eq!(event["id"], entry.id.as_str());
        assert_eq!(event["dataset"], "docketops.ledger");
        assert!(event["category"].as_array().is_some_and(|c| !c.is_empty()), "{line}");
        assert!(event["type"].as_array().is_some_and(|t| !t.is_empty()), "{line}");
        let payload = entry.payload_value().unwrap();
        let failed = match EntryKind::parse(&entry.kind) {
            Some(EntryKind::PolicyDecided) => payload["outcome"] == "deny",
            Some(EntryKind::OutcomeVerified) => payload["passed"] == false,
            Some(EntryKind::ApprovalDenied | EntryKind::ApprovalExpired | EntryKind::ActionFailed) => true,
            _ => false,
        };
        assert_eq!(event["outcome"] == "failure", failed, "{line}");
        assert_eq!(doc["user"]["id"], entry.actor.as_str());
        assert_eq!(doc["docketops"]["entry"], entry_line(entry).as_str());
        assert_eq!(doc["docketops"]["seq"], entry.seq);
        assert_eq!(doc["docketops"]["signature"], entry.signature.as_str());
        let Some(action_id) = &entry.action_id else { continue };
        let request = &requests[action_id];
        let orchestrator = &doc["orchestrator"];
        assert_eq!(orchestrator["type"], "kubernetes");
        assert_eq!(orchestrator["namespace"], request["namespace"]);
        assert_eq!(orchestrator["resource"]["type"], request["resource_kind"]);
        assert_eq!(orchestrator["resource"]["name"], request["resource_name"]);
        assert_eq!(orchestrator["cluster"]["name"], payload["cluster"]);
        let group = match request["resource_kind"].as_str().unwrap() {
            "ConfigMap" => "v1",
            "Job" => "batch/v1",
            _ => "apps/v1",
        };
        assert_eq!(orchestrator["api_version"], group, "{line}");
    }
    assert_eq!(
        rebuild_and_verify(history.dir.path(), &lines).unwrap(),
        history.entries.len() as u64
    );

    // An export resumed in the middle of an action names its object too (from the action's row).
    let middle = history
        .entries
        .iter()
        .position(|e| EntryKind::parse(&e.kind) == Some(EntryKind::RiskClassified))
        .unwrap() as u64;
    let late = history.export("ecs-late", SiemFormat::Ecs, middle).await;
    assert_eq!(
        late,
        lines[middle as usize..].to_vec(),
        "the same documents as an export from the start"
    );

    // HEC: the OCSF events wrapped with time, host, source, sourcetype and index.
    let ocsf = history.export("ocsf-hec", SiemFormat::Ocsf, 0).await;
    let options = SinkOptions {
        format: SiemFormat::Ocsf,
        hostname: "gw-1".into(),
        hec_index: Some("security".into()),
        hec_source: Some("docketops:eu".into()),
        ..SinkOptions::default()
    };
    let fields = HecFields::of(&options);
    let mut wrapped = Vec::new();
    for (line, entry) in ocsf.iter().zip(&history.entries) {
        let text = hec_event(entry, line, &fields);
        let hec: Value = serde_json::from_str(&text).unwrap();
        let at = time::OffsetDateTime::parse(&entry.timestamp, &time::format_description::well_known::Rfc3339).unwrap();
        let time = format!("{{\"time\":{}.{:06},", at.unix_timestamp(), at.microsecond());
        assert!(text.starts_with(&time), "{text}");
        assert_eq!(hec["host"], "gw-1");
        assert_eq!(hec["source"], "docketops:eu");
        assert_eq!(hec["sourcetype"], SiemFormat::Ocsf.default_sourcetype());
        assert_eq!(hec["index"], "security");
        assert_eq!(hec["event"], serde_json::from_str::<Value>(line).unwrap());
        wrapped.push(text);
    }
    assert_eq!(
        rebuild_and_verify(history.dir.path(), &wrapped).unwrap(),
        history.entries.len() as u64
    );
    history.store.close().await;
}
