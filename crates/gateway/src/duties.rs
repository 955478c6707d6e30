//! Separation of duties: an approver must not decide on an action whose requester could have acted as
//! that approver. The requester could, if it created the approver (directly or through identities it
//! created), or issued or rotated a key the approver holds now, or any mix of these links (it created an
//! admin that issued the approver's key). The walk goes upward from the approver over those links
//! (`Store::controllers_of`), visits each identity once, and gives up (refusing) past a bound.

use std::collections::HashSet;

use storage::{Controller, Store};

use crate::GatewayError;

/// The most identities the walk visits; a longer lineage is refused rather than half-checked.
pub const MAX_LINEAGE: usize = 256;

/// An identity the walk reached, and the link that reached it: the index of the identity it controls and
/// the key it issued (`None`: it created that identity).
struct Reached {
    label: String,
    link: Option<(usize, Option<String>)>,
}

/// `Some(why)` if `requester_id` could have acted as the identity `approver_id`; `None` if it is independent.
pub async fn could_act_as(
    store: &Store,
    requester_id: &str,
    approver_id: &str,
) -> Result<Option<String>, GatewayError> {
    controlled(store, approver_id, |actor| actor == requester_id).await
}

/// `Some(why)` if an agent could act as the identity `id`: it created it (or an identity up its lineage), or
/// issued a key it holds. What a person an agent controls does, the agent could have done.
pub async fn controlled_by_agent(store: &Store, id: &str) -> Result<Option<String>, GatewayError> {
    let agent = format!("{}_", domain::IdentityKind::Agent.id_prefix());
    controlled(store, id, |actor| actor.starts_with(&agent)).await
}

/// The walk upward from `approver_id` to the first controller `is_requester` accepts (the messages name the
/// start "the approver" and the one found "the requester").
async fn controlled(
    store: &Store,
    approver_id: &str,
    is_requester: impl Fn(&str) -> bool,
) -> Result<Option<String>, GatewayError> {
    let mut reached = vec![Reached {
        label: "the approver".into(),
        link: None,
    }];
    let mut ids = vec![approver_id.to_owned()];
    let mut seen = HashSet::from([approver_id.to_owned()]);
    let mut next = 0;
    while next < ids.len() {
        for controller in store.controllers_of(&ids[next]).await? {
            if is_requester(&controller.actor) {
                return Ok(Some(explain(&reached, next, &controller)));
            }
            // Actors that are not identities (`system`, `cli:…`) control nothing further up.
            let Some(name) = controller.name else { continue };
            if seen.insert(controller.actor.clone()) {
                if ids.len() >= MAX_LINEAGE {
                    return Ok(Some(format!(
                        "the approver's lineage has more than {MAX_LINEAGE} identities and was not fully checked"
                    )));
                }
                ids.push(controller.actor);
                reached.push(Reached {
                    label: name,
                    link: Some((next, controller.key_id)),
                });
            }
        }
        next += 1;
    }
    Ok(None)
}

/// The chain from the approver up to the requester, e.g. "the approver was created by admin-2; admin-2
/// holds key key_… issued by the requester".
fn explain(reached: &[Reached], top: usize, last: &Controller) -> String {
    let link = |holder: &str, key: &Option<String>, by: &str| match key {
        None => format!("{holder} was created by {by}"),
        Some(key) => format!("{holder} holds key {key} issued by {by}"),
    };
    let mut steps = vec![link(&reached[top].label, &last.key_id, "the requester")];
    let mut at = top;
    while let Some((below, key)) = &reached[at].link {
        steps.push(link(&reached[*below].label, key, &reached[at].label));
        at = *below;
    }
    steps.reverse();
    steps.join("; ")
}
