//! An action and its whole chain of entries, with the newest dry-run diff.

use domain::ActionStatus;
use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Html;
use ledger_core::Entry;
use serde_json::Value;

use super::entries::{entry_view, public_keys};
use super::{names, nav, text_of};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, ActionPage, ActionView, DiffRow, EntryView};

pub(super) fn action_view(action: &Value, names: &HashMap<String, String>) -> ActionView {
    let field = |name: &str| text_of(&action[name]);
    let requester = field("identity_id");
    ActionView {
        id: field("action_id"),
        summary: format!(
            "{} {} {}{}/{}",
            field("action_type"),
            field("resource_kind"),
            action["cluster"].as_str().map(|c| format!("{c}:")).unwrap_or_default(),
            field("namespace"),
            field("resource_name")
        ),
        requester: names.get(&requester).cloned().unwrap_or(requester),
        status: field("status"),
        risk: field("risk"),
        created_at: field("created_at"),
        updated_at: field("updated_at"),
    }
}

/// The newest dry-run diff recorded among `entries` (approval requests and executions carry one).
pub(super) fn latest_diff(entries: &[Entry]) -> Vec<DiffRow> {
    entries
        .iter()
        .rev()
        .filter_map(|entry| serde_json::from_str::<Value>(&entry.payload).ok())
        .find_map(|payload| payload.get("diff").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .map(|change| DiffRow {
            op: text_of(&change["op"]),
            path: Some(text_of(&change["path"]))
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "(the whole object)".into()),
            from: text_of(&change["from"]),
            to: text_of(&change["to"]),
        })
        .collect()
}

pub async fn action(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    // The pipeline checks who may see the action; the entries are then read as stored.
    let found = state.pipeline.get(&session.caller, &id, None).await?;
    let entries = state.store.entries_of_action(&id).await?;
    let requester = found["action"]["identity_id"].as_str().unwrap_or_default();
    let names = names(&state, entries.iter().map(|e| e.actor.as_str()).chain([requester])).await?;
    let keys = public_keys(&state).await?;
    let views: Vec<EntryView> = entries.iter().map(|e| entry_view(e, &names, &keys, None)).collect();
    let action = action_view(&found["action"], &names);
    let page = ActionPage {
        nav: nav(&session, "timeline"),
        waiting: action.status == ActionStatus::Running || action.status == ActionStatus::Executing,
        action,
        all_signatures_ok: views.iter().all(|v| v.signature_ok),
        diff: latest_diff(&entries),
        entries: views,
    };
    Ok(views::html(&page))
}
