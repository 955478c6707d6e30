//! An action and its whole chain of entries, with the dry-run diff wherever a preview was recorded and why
//! the action ended as it did, in plain words.

mod explain;
mod preview;

pub use explain::Reason;
pub use preview::{Previewed, previewed};

use domain::ActionStatus;
use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Html;
use ledger_core::Entry;
use serde_json::Value;

use super::actions_list::{When, when};
use super::entries::{entry_view, public_keys};
use super::{names, nav, text_of};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, ActionPage, ActionView, EntryView};
use explain::explain;
use time::OffsetDateTime;

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

/// One entry as the explanation and the preview read it: its kind, who wrote it (a name when known) and its
/// payload.
#[derive(Debug, Clone)]
pub struct Step<'a> {
    /// The entry's kind as stored.
    pub kind: &'a str,
    /// Its actor, as the page names it.
    pub actor: &'a str,
    /// Its payload (`null` if it does not parse).
    pub payload: Value,
}

/// The steps of stored entries (their actors as ids).
pub(super) fn steps(entries: &[Entry]) -> Vec<Step<'_>> {
    entries
        .iter()
        .map(|e| Step {
            kind: &e.kind,
            actor: &e.actor,
            payload: serde_json::from_str(&e.payload).unwrap_or_default(),
        })
        .collect()
}

/// The preview, and why the action ended so, as the action's page shows them (read from the entries shown).
impl ActionPage {
    fn steps(&self) -> Vec<Step<'_>> {
        self.entries
            .iter()
            .map(|e| Step {
                kind: &e.kind,
                actor: &e.actor,
                payload: serde_json::from_str(&e.payload).unwrap_or_default(),
            })
            .collect()
    }

    /// Whether a preview was made, and a diff too large for an entry (the diff's rows are `diff`).
    pub fn preview(&self) -> Previewed {
        previewed(&self.steps())
    }

    /// Why the action ended as it did, in plain words.
    pub fn reasons(&self) -> Vec<Reason> {
        explain(&self.steps())
    }

    /// When it was created, relative to now.
    pub fn created(&self) -> When {
        when(&self.action.created_at, OffsetDateTime::now_utc())
    }
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
        nav: nav(&session, "actions"),
        waiting: action.status == ActionStatus::Running || action.status == ActionStatus::Executing,
        action,
        all_signatures_ok: views.iter().all(|v| v.signature_ok),
        diff: previewed(&steps(&entries)).rows,
        entries: views,
    };
    Ok(views::html(&page))
}
