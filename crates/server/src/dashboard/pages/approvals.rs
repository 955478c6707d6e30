//! Pending approvals, and an approver's decision on one.

use domain::EntryKind;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use gateway::{Role, Verdict};
use serde::Deserialize;
use serde_json::Value;

use super::action_page::{action_view, previewed, steps};
use super::{form_error, names, nav, same_origin, text_of};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, ApprovalsPage, PendingView};

pub async fn approvals(session: Session, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let listed = state.pipeline.pending_approvals(&session.caller).await?;
    let items = listed["approvals"].as_array().cloned().unwrap_or_default();
    let names = names(&state, items.iter().filter_map(|i| i["action"]["identity_id"].as_str())).await?;
    let mut pending = Vec::new();
    for item in &items {
        let action = action_view(&item["action"], &names);
        let entries = state.store.entries_of_action(&action.id).await?;
        let reasons = entries
            .iter()
            .rev()
            .find(|e| e.kind == EntryKind::PolicyDecided)
            .and_then(|e| serde_json::from_str::<Value>(&e.payload).ok())
            .map(|p| {
                let mut reasons: Vec<String> = p["reasons"].as_array().into_iter().flatten().map(text_of).collect();
                if let Some(gate) = p["trust_gate"]["reason"].as_str() {
                    reasons.push(gate.to_owned());
                }
                reasons.join("; ")
            })
            .unwrap_or_default();
        pending.push(PendingView {
            own: item["action"]["identity_id"] == session.caller.identity.id.as_str(),
            reasons,
            digest: text_of(&item["digest"]),
            approvals_required: item["approvals_required"].as_i64().unwrap_or(1),
            approval_groups: item["approval_groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text_of)
                .collect::<Vec<_>>()
                .join(", "),
            expires_at: text_of(&item["expires_at"]),
            diff: previewed(&steps(&entries)).rows,
            action,
        });
    }
    let page = ApprovalsPage {
        nav: nav(&session, "approvals"),
        pending,
    };
    Ok(views::html(&page))
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
    digest: String,
}

pub async fn decide(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<DecideForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    session.check_csrf(&form.csrf)?;
    let verdict = match form.decision.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        other => return Err(PageError::bad_request(format!("unknown decision {other:?}"))),
    };
    let comment = Some(form.comment.trim().to_owned()).filter(|c| !c.is_empty());
    // The digest the approver saw on the page: if the action changed since, the approval is refused.
    state
        .pipeline
        .decide_approval(&session.caller, &id, verdict, comment, Some(form.digest))
        .await?;
    // The action's page shows the result to those who may see it (auditors, the requester); an approver
    // who is neither goes back to the list.
    let next = if session.caller.identity.has_role(Role::Auditor) {
        format!("/actions/{id}")
    } else {
        "/approvals".to_owned()
    };
    Ok(Redirect::to(&next).into_response())
}
