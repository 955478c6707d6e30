//! One ledger entry as the timeline and the action page show it, with its signature checked.

use std::collections::HashMap;
use std::str::FromStr;

use ledger_core::{Entry, LedgerPublicKey};
use serde_json::Value;

use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::views::EntryView;

/// Public keys by key id, to check each shown entry's signature.
pub(super) async fn public_keys(state: &AppState) -> Result<HashMap<String, LedgerPublicKey>, PageError> {
    Ok(state
        .store
        .keys()
        .await?
        .into_iter()
        .filter_map(|record| {
            LedgerPublicKey::from_hex(&record.public_key)
                .ok()
                .map(|key| (record.key_id, key))
        })
        .collect())
}

fn signature_ok(keys: &HashMap<String, LedgerPublicKey>, entry: &Entry) -> bool {
    let (Some(key), Ok(chain_hash), Some(signature)) = (
        keys.get(&entry.key_id),
        ledger_core::Digest::from_str(&entry.chain_hash),
        ledger_core::keys::signature_from_hex(&entry.signature),
    ) else {
        return false;
    };
    key.verify(&chain_hash, &signature)
}

pub(super) fn entry_view(
    entry: &Entry,
    names: &HashMap<String, String>,
    keys: &HashMap<String, LedgerPublicKey>,
    action: Option<(&Option<String>, &Option<String>, &Option<String>)>,
) -> EntryView {
    let payload = serde_json::from_str::<Value>(&entry.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| entry.payload.clone());
    let text = |value: Option<&Option<String>>| value.and_then(|v| v.clone()).unwrap_or_default();
    EntryView {
        seq: entry.seq,
        id: entry.id.clone(),
        timestamp: entry.timestamp.clone(),
        relative: super::actions_list::relative(&entry.timestamp, time::OffsetDateTime::now_utc()),
        kind: entry.kind.clone(),
        actor: names.get(&entry.actor).cloned().unwrap_or_else(|| entry.actor.clone()),
        action_id: entry.action_id.clone(),
        namespace: text(action.map(|a| a.0)),
        status: text(action.map(|a| a.1)),
        risk: text(action.map(|a| a.2)),
        event_hash: entry.event_hash.clone(),
        chain_hash: entry.chain_hash.clone(),
        prev_chain_hash: entry.prev_chain_hash.clone(),
        key_id: entry.key_id.clone(),
        signature_ok: signature_ok(keys, entry),
        payload,
    }
}
