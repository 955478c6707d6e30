//! Message formats. `raw` sends each entry as its export-bundle line (the default); `ocsf` and `ecs` send
//! an event of a standard schema (OCSF API Activity, Elastic Common Schema) that maps the entry's meaning
//! onto the schema's fields and carries the whole entry, as its bundle line in a string, so that a copy in
//! any format rebuilds into a verifiable bundle ([`crate::bundle`]). The mapping is documented in
//! `docs/siem.md`.

mod ecs;
mod facts;
mod ocsf;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use domain::{ActionType, EntryKind};
use ledger_core::Entry;
use ledger_core::bundle::entry_line;
use serde_json::Value;

pub use ecs::ECS_VERSION;
pub use ocsf::{OCSF_CLASS_UID, OCSF_VERSION};

/// The product name in OCSF `metadata.product` and ECS `observer.product`.
pub const PRODUCT: &str = "DocketOps Ledger";

/// The member that holds the entry's bundle line: `unmapped.docketops.entry` (OCSF) or
/// `docketops.entry` (ECS).
pub const ENTRY_FIELD: &str = "entry";

/// OCSF `metadata.log_name` and ECS `event.dataset`.
pub const LOG_NAME: &str = "docketops.ledger";

/// How a sink writes each entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiemFormat {
    /// The entry's export-bundle line, as it is (docs/ledger-format.md §5.2).
    #[default]
    Raw,
    /// An OCSF API Activity event (class 6003) of OCSF [`OCSF_VERSION`].
    Ocsf,
    /// An Elastic Common Schema document of ECS [`ECS_VERSION`].
    Ecs,
}

impl SiemFormat {
    /// Every format.
    pub const ALL: [SiemFormat; 3] = [SiemFormat::Raw, SiemFormat::Ocsf, SiemFormat::Ecs];

    /// The format as options spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            SiemFormat::Raw => "raw",
            SiemFormat::Ocsf => "ocsf",
            SiemFormat::Ecs => "ecs",
        }
    }

    /// The HEC `sourcetype` of events in this format, unless a sink sets its own.
    pub const fn default_sourcetype(self) -> &'static str {
        match self {
            SiemFormat::Raw => "docketops:ledger",
            SiemFormat::Ocsf => "docketops:ocsf",
            SiemFormat::Ecs => "docketops:ecs",
        }
    }
}

impl fmt::Display for SiemFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is none of `raw`, `ocsf` and `ecs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SIEM format {0:?}: use raw, ocsf or ecs")]
pub struct UnknownFormat(pub String);

impl FromStr for SiemFormat {
    type Err = UnknownFormat;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SiemFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == text)
            .ok_or_else(|| UnknownFormat(text.to_string()))
    }
}

/// What an action is about, from its `action.requested` entry (or its row in `actions` when that entry
/// was delivered before the export resumed): the other entries of an action do not repeat it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionTarget {
    /// The action type, if it is one this release knows.
    pub action_type: Option<ActionType>,
    /// The Kubernetes kind, as the request spells it.
    pub resource_kind: Option<String>,
    /// The object's name (none for a list).
    pub resource_name: Option<String>,
    /// The object's namespace (none for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// The configured cluster the action is for.
    pub cluster: Option<String>,
    /// The requester's identity id.
    pub requester_id: Option<String>,
    /// The requester's name.
    pub requester_name: Option<String>,
}

fn text(value: &Value, name: &str) -> Option<String> {
    value.get(name)?.as_str().map(str::to_string)
}

impl ActionTarget {
    /// The target an `action.requested` payload names.
    pub fn from_requested(payload: &Value) -> ActionTarget {
        let request = payload.get("request").unwrap_or(&Value::Null);
        ActionTarget {
            action_type: request
                .get("action_type")
                .and_then(Value::as_str)
                .and_then(ActionType::parse),
            resource_kind: text(request, "resource_kind"),
            resource_name: text(request, "resource_name"),
            namespace: text(request, "namespace"),
            cluster: text(payload, "cluster").or_else(|| text(request, "cluster")),
            requester_id: payload.get("identity").and_then(|identity| text(identity, "id")),
            requester_name: payload.get("identity").and_then(|identity| text(identity, "name")),
        }
    }

    /// The target an action's stored row names.
    pub fn from_row(row: &storage::ActionRow) -> ActionTarget {
        ActionTarget {
            action_type: ActionType::parse(&row.action_type),
            resource_kind: Some(row.resource_kind.clone()),
            resource_name: row.resource_name.clone(),
            namespace: row.namespace.clone(),
            cluster: row.cluster.clone(),
            requester_id: Some(row.identity_id.clone()),
            requester_name: None,
        }
    }
}

/// Targets kept at most; past this the memory is cleared (a resumed export looks targets up again).
const MAX_TARGETS: usize = 20_000;

/// Turns entries into messages of one format, remembering the targets of the actions it has seen.
#[derive(Debug, Default)]
pub struct Formatter {
    format: SiemFormat,
    targets: HashMap<String, ActionTarget>,
}

impl Formatter {
    /// A formatter for `format`.
    pub fn new(format: SiemFormat) -> Formatter {
        Formatter {
            format,
            targets: HashMap::new(),
        }
    }

    /// The format it writes.
    pub fn format(&self) -> SiemFormat {
        self.format
    }

    /// The action ids among `entries` whose target is unknown and whose `action.requested` entry is not in
    /// `entries` either: look them up and [`remember`](Self::remember) them before formatting. Always empty
    /// for `raw`. The memory is emptied here, before a batch, when the batch could overfill it, so that
    /// no target is forgotten between its lookup and its use.
    pub fn unknown_actions(&mut self, entries: &[Entry]) -> Vec<String> {
        if self.format == SiemFormat::Raw {
            return Vec::new();
        }
        if self.targets.len() + entries.len() > MAX_TARGETS {
            self.targets.clear();
        }
        let requested: Vec<&str> = entries
            .iter()
            .filter(|entry| EntryKind::parse(&entry.kind) == Some(EntryKind::ActionRequested))
            .filter_map(|entry| entry.action_id.as_deref())
            .collect();
        let mut unknown: Vec<String> = entries
            .iter()
            .filter_map(|entry| entry.action_id.as_deref())
            .filter(|id| !self.targets.contains_key(*id) && !requested.contains(id))
            .map(str::to_string)
            .collect();
        unknown.sort();
        unknown.dedup();
        unknown
    }

    /// Remembers what action `action_id` is about.
    pub fn remember(&mut self, action_id: String, target: ActionTarget) {
        self.targets.insert(action_id, target);
    }

    /// The message for `entry`: one line of JSON.
    pub fn message(&mut self, entry: &Entry) -> String {
        if self.format == SiemFormat::Raw {
            return entry_line(entry);
        }
        let payload = entry.payload_value().unwrap_or(Value::Null);
        if let (Some(EntryKind::ActionRequested), Some(id)) = (EntryKind::parse(&entry.kind), &entry.action_id) {
            self.remember(id.clone(), ActionTarget::from_requested(&payload));
        }
        let target = entry.action_id.as_ref().and_then(|id| self.targets.get(id));
        let facts = facts::Facts::of(entry, &payload, target);
        let event = match self.format {
            SiemFormat::Ocsf => ocsf::event(&facts),
            SiemFormat::Ecs | SiemFormat::Raw => ecs::event(&facts),
        };
        event.to_string()
    }
}

/// The ledger's own fields of an entry (OCSF `unmapped.docketops`, ECS `docketops`), with the whole entry
/// as its bundle line in [`ENTRY_FIELD`]: a string survives a SIEM that re-serializes JSON byte for byte,
/// an object would not (its payload's member order is part of what is signed).
fn ledger_fields(facts: &facts::Facts<'_>) -> Value {
    let entry = facts.entry;
    let mut fields = serde_json::json!({
        "seq": entry.seq,
        "id": entry.id,
        "timestamp": entry.timestamp,
        "kind": entry.kind,
        "actor": entry.actor,
        "action_id": entry.action_id,
        "prev_chain_hash": entry.prev_chain_hash,
        "event_hash": entry.event_hash,
        "chain_hash": entry.chain_hash,
        "key_id": entry.key_id,
        "signature": entry.signature,
    });
    if let Some(action_type) = facts.target.and_then(|t| t.action_type) {
        fields["action_type"] = Value::from(action_type.as_str());
    }
    fields[ENTRY_FIELD] = Value::from(entry_line(entry));
    fields
}

/// One line for people: `policy.decided by agt_…: SCALE Deployment staging/web-api (cluster prod)`.
fn summary(facts: &facts::Facts<'_>) -> String {
    let entry = facts.entry;
    let mut text = format!("{} by {}", entry.kind, entry.actor);
    if let Some(target) = facts.target {
        let action_type = target.action_type.map_or("?", ActionType::as_str);
        text.push_str(&format!(
            ": {action_type} {}",
            target.resource_kind.as_deref().unwrap_or("?")
        ));
        match (&target.namespace, &target.resource_name) {
            (Some(namespace), Some(name)) => text.push_str(&format!(" {namespace}/{name}")),
            (None, Some(name)) => text.push_str(&format!(" {name}")),
            (Some(namespace), None) => text.push_str(&format!(" in {namespace}")),
            (None, None) => {}
        }
    }
    if let Some(cluster) = &facts.cluster {
        text.push_str(&format!(" (cluster {cluster})"));
    }
    if let Some(detail) = &facts.detail {
        text.push_str(&format!(": {detail}"));
    }
    text
}

#[cfg(test)]
mod tests;
