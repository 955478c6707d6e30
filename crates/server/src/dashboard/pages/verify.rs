//! For auditors: verifying the whole ledger (a background job with a progress page) and the export download.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use gateway::Role;

use super::{CsrfForm, form_error, nav, same_origin};
use crate::AppState;
use crate::dashboard::session::{self, Session};
use crate::dashboard::views::{self, VerifyJobPage, VerifyPage};
use crate::dashboard::{PageError, VerifyJob};

fn require_auditor(session: &Session) -> Result<(), PageError> {
    session.caller.require(Role::Auditor).map_err(PageError::from)?;
    Ok(())
}

pub async fn verify_form(session: Session, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    require_auditor(&session)?;
    let log = state.transparency.status().await.map_err(PageError::internal)?;
    let cosigned_note = match state
        .store
        .checkpoint_at(log.cosigned_size)
        .await
        .map_err(PageError::internal)?
    {
        Some(row) if log.cosigned_size > 0 => state
            .transparency
            .cosigned_note(&row)
            .await
            .map_err(PageError::internal)?,
        _ => String::new(),
    };
    Ok(views::html(&VerifyPage {
        nav: nav(&session, "verify"),
        log,
        cosigned_note,
    }))
}

/// Most verification jobs kept per process; the oldest finished ones go first.
const MAX_JOBS: usize = 32;

pub async fn verify_start(
    session: Session,
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    require_auditor(&session)?;
    let Form(form) = form.map_err(form_error)?;
    session.check_csrf(&form.csrf)?;
    let total = state.store.head().await?.map_or(0, |e| e.seq);
    let job_id = session::random_token()[..24].to_owned();
    {
        let mut jobs = state.dashboard.jobs.lock().expect("jobs lock");
        if jobs.len() >= MAX_JOBS
            && let Some(done) = jobs.iter().find(|(_, j)| j.result.is_some()).map(|(k, _)| k.clone())
        {
            jobs.remove(&done);
        }
        jobs.insert(
            job_id.clone(),
            VerifyJob {
                started_by: session.caller.identity.id.clone(),
                checked: 0,
                total,
                result: None,
            },
        );
    }
    tracing::info!(identity = %session.caller.identity.id, job = %job_id, "dashboard verification started");
    let jobs = state.dashboard.jobs.clone();
    let id = job_id.clone();
    let started_by = session.caller.identity.id.clone();
    tokio::spawn(async move {
        let options = ledger_core::VerifyOptions {
            required_key: Some(state.signing_key.clone()),
            ..ledger_core::VerifyOptions::default()
        };
        let progress_jobs = jobs.clone();
        let progress_id = id.clone();
        let result = storage::verify_ledger(&state.store, options, move |checked| {
            if let Some(job) = progress_jobs.lock().expect("jobs lock").get_mut(&progress_id) {
                job.checked = checked;
            }
        })
        .await
        .map_err(|e| e.to_string());
        if let Ok(report) = &result {
            let record = storage::VerificationRecord::of(report, &started_by, &super::super::now());
            if let Err(error) = state.store.record_verification(&record).await {
                tracing::warn!(%error, "the dashboard's verification could not be recorded");
            }
        }
        if let Some(job) = jobs.lock().expect("jobs lock").get_mut(&id) {
            if let Ok(report) = &result {
                job.checked = report.entries_checked;
                job.total = job.total.max(report.entries_checked);
            }
            job.result = Some(result);
        }
    });
    Ok(Redirect::to(&format!("/verify/{job_id}")).into_response())
}

pub async fn verify_job(
    session: Session,
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Html<String>, PageError> {
    require_auditor(&session)?;
    let job = state
        .dashboard
        .jobs
        .lock()
        .expect("jobs lock")
        .get(&job_id)
        .cloned()
        .filter(|job| job.started_by == session.caller.identity.id)
        .ok_or_else(|| {
            PageError::not_found("no such verification here (it may have run on another gateway replica)")
        })?;
    let percent = (job.checked * 100).checked_div(job.total).unwrap_or(100).min(100);
    let mut page = VerifyJobPage {
        nav: nav(&session, "verify"),
        checked: job.checked,
        total: job.total,
        percent,
        done: job.result.is_some(),
        valid: false,
        error: None,
        head: String::new(),
        first_invalid: None,
        keys: Vec::new(),
    };
    match job.result {
        None => {}
        Some(Err(error)) => page.error = Some(error),
        Some(Ok(report)) => {
            page.valid = report.valid;
            page.head = report
                .head
                .map(|h| format!("seq {} chain hash {}", h.seq, h.chain_hash))
                .unwrap_or_default();
            page.first_invalid = report
                .first_invalid
                .map(|i| format!("First invalid entry: seq {} ({:?}): {}", i.seq, i.reason, i.message));
            page.keys = report
                .keys
                .iter()
                .map(|k| {
                    format!(
                        "{} from seq {} ({} entries)",
                        k.info.key_id, k.introduced_seq, k.entries_signed
                    )
                })
                .collect();
        }
    }
    Ok(views::html(&page))
}

pub async fn export(session: Session, State(state): State<AppState>) -> Result<Response, PageError> {
    require_auditor(&session)?;
    Ok(crate::routes::export_bundle(state))
}
