//! The landing page: what agents are doing. How actions ended per hour over the last day (a stacked bar
//! chart), the day's and the hour's totals, pending approvals, and the ledger's head and last verification
//! for everyone signed in; for auditors also the denials by reason, the most active identities with their
//! trust and its trend, and bypasses; the kill switch for those who may freeze.
//!
//! Constant cost: the counts come from the activity tables (`storage::activity`, folded off the request
//! path), read by hour ranges; the trust trend is two indexed lookups per identity shown.

mod chart;

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use gateway::Role;
use ledger_core::activity::{DenialSource, Tally};
use storage::{ActivitySummary, hours_before};
use time::OffsetDateTime;

use super::actions_list::relative;
use super::{names, nav};
use crate::AppState;
use crate::dashboard::PageError;
use crate::dashboard::session::Session;
use crate::dashboard::views::{self, FreezeView, Nav};
use chart::{HourlyChart, STACKED, hourly_chart};

/// Hours the chart and the day's totals cover (this hour and the 23 before it).
const HOURS: i64 = 24;
/// Identities and denial causes listed.
const TOP: u32 = 8;

/// A total of one tally, in the last hour and the last day.
#[derive(Debug, Clone)]
pub struct TotalView {
    pub words: &'static str,
    pub class: String,
    pub hour: u64,
    pub day: u64,
}

#[derive(Debug, Clone)]
pub struct RequesterView {
    pub id: String,
    pub name: String,
    pub actions: u64,
    pub trust: i64,
    /// The score's move over the day, e.g. `+5`, `−3`, `±0`.
    pub trend: String,
    pub trend_class: &'static str,
}

#[derive(Debug, Clone)]
pub struct DenialView {
    pub source: &'static str,
    pub reason: String,
    pub count: u64,
}

/// The ledger's newest entry and its last verification.
#[derive(Debug, Clone, Default)]
pub struct LedgerView {
    pub head_seq: u64,
    pub head_hash: String,
    pub head_at: String,
    pub head_relative: String,
    /// E.g. `valid: 1,039,899 entries, 2 h ago by alice`; empty when never verified here.
    pub verified: String,
    pub verified_ok: bool,
    pub never_verified: bool,
}

#[derive(Debug, Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub nav: Nav,
    pub chart: HourlyChart,
    pub legend: Vec<(String, &'static str)>,
    pub totals: Vec<TotalView>,
    pub requested_hour: u64,
    pub requested_day: u64,
    pub pending: u64,
    pub oldest_pending: String,
    pub full: bool,
    pub requesters: Vec<RequesterView>,
    pub denials: Vec<DenialView>,
    pub bypasses: u64,
    pub ledger: LedgerView,
    /// `Counting: 40% of the ledger` while the counts catch up; empty when current.
    pub catching_up: String,
    pub freezes: Vec<FreezeView>,
    pub may_freeze: bool,
}

pub async fn overview(session: Session, State(state): State<AppState>) -> Result<Html<String>, PageError> {
    let now = OffsetDateTime::now_utc();
    let this_hour = super::super::now().get(..13).unwrap_or_default().to_owned();
    let hour_names: Vec<String> = (0..HOURS)
        .rev()
        .filter_map(|back| hours_before(&this_hour, back))
        .collect();
    let since = hour_names.first().cloned().unwrap_or_default();
    let summary = state.store.activity_since(&since, TOP).await?;
    let full = session.caller.identity.has_role(Role::Auditor);
    let sum = |tally: Tally, from: &str| {
        summary
            .hours
            .iter()
            .filter(|c| c.tally == tally && c.hour.as_str() >= from)
            .map(|c| c.count)
            .sum::<u64>()
    };
    let (pending, oldest) = state.store.pending_approvals_summary().await?;
    let page = OverviewPage {
        nav: nav(&session, "overview"),
        chart: hourly_chart(&hour_names, &summary.hours),
        legend: STACKED
            .iter()
            .map(|(tally, words)| (format!("t-{}", tally.as_str()), *words))
            .collect(),
        totals: STACKED
            .iter()
            .chain(&[(Tally::AwaitingApproval, "held for approval")])
            .map(|(tally, words)| TotalView {
                words,
                class: format!("t-{}", tally.as_str()),
                hour: sum(*tally, &this_hour),
                day: sum(*tally, &since),
            })
            .collect(),
        requested_hour: sum(Tally::Requested, &this_hour),
        requested_day: sum(Tally::Requested, &since),
        pending,
        oldest_pending: oldest.map(|at| relative(&at, now)).unwrap_or_default(),
        requesters: match full {
            true => requesters(&state, &summary, &since).await?,
            false => Vec::new(),
        },
        denials: match full {
            true => denials(&summary),
            false => Vec::new(),
        },
        bypasses: sum(Tally::Bypass, &since),
        full,
        ledger: ledger(&state, now).await?,
        catching_up: catching_up(&summary),
        may_freeze: state.pipeline.may_freeze(&session.caller).is_ok(),
        freezes: super::safety::freeze_views(&state).await?,
    };
    Ok(views::html(&page))
}

/// The most active identities of the day, with their score now and its move since the day's first entry.
async fn requesters(state: &AppState, summary: &ActivitySummary, since: &str) -> Result<Vec<RequesterView>, PageError> {
    let ids: Vec<&str> = summary.requesters.iter().map(|r| r.key.as_str()).collect();
    let names = names(state, ids).await?;
    let day_start = state.store.first_seq_since(since).await?;
    let mut views = Vec::with_capacity(summary.requesters.len());
    for ranked in &summary.requesters {
        let id = &ranked.key;
        let now = state.store.trust_score(id).await?.score;
        let (trend, trend_class) = trust_trend(state, id, now, day_start).await?;
        views.push(RequesterView {
            name: names.get(id).cloned().unwrap_or_else(|| id.clone()),
            id: id.clone(),
            actions: ranked.count,
            trust: now,
            trend,
            trend_class,
        });
    }
    Ok(views)
}

/// The first entry of the last 24 hours (where a day's trend starts), if the counts have one.
pub(super) async fn day_start(state: &AppState) -> Result<Option<u64>, PageError> {
    let this_hour = super::super::now().get(..13).unwrap_or_default().to_owned();
    let since = hours_before(&this_hour, HOURS - 1).unwrap_or(this_hour);
    Ok(state.store.first_seq_since(&since).await?)
}

/// How an identity's score `now` moved since entry `day_start` (`+5`, `−3`, `±0`), with its CSS class.
pub(super) async fn trust_trend(
    state: &AppState,
    id: &str,
    now: i64,
    day_start: Option<u64>,
) -> Result<(String, &'static str), PageError> {
    let before = match day_start {
        Some(seq) => state.store.trust_score_before(id, seq).await?,
        None => now,
    };
    Ok(match now - before {
        0 => ("±0".to_owned(), "flat"),
        up if up > 0 => (format!("+{up}"), "ok"),
        down => (format!("−{}", down.unsigned_abs()), "bad"),
    })
}

fn denials(summary: &ActivitySummary) -> Vec<DenialView> {
    summary
        .denials
        .iter()
        .map(|ranked| DenialView {
            source: match ranked.key.0 {
                DenialSource::Policy => "Policy",
                DenialSource::Guardrail => "Guardrail",
                DenialSource::Budget => "Budget",
                DenialSource::Freeze => "Freeze",
                DenialSource::InvalidRequest => "Invalid request",
            },
            reason: ranked.key.1.clone(),
            count: ranked.count,
        })
        .collect()
}

async fn ledger(state: &AppState, now: OffsetDateTime) -> Result<LedgerView, PageError> {
    let mut view = LedgerView::default();
    if let Some(head) = state.store.head().await? {
        view.head_seq = head.seq;
        view.head_hash = head.chain_hash.chars().take(24).collect();
        view.head_relative = relative(&head.timestamp, now);
        view.head_at = head.timestamp;
    }
    match state.store.last_verification().await? {
        Some(last) => {
            let what = match (last.valid, last.first_invalid_seq) {
                (true, _) => format!("valid: {} entries", last.entries_checked),
                (false, Some(seq)) => format!(
                    "INVALID at seq {seq} ({} entries verified before it)",
                    last.entries_checked
                ),
                (false, None) => format!("INVALID ({} entries verified)", last.entries_checked),
            };
            let by = names(state, [last.by.as_str()])
                .await?
                .remove(&last.by)
                .unwrap_or(last.by);
            view.verified = format!("{what}, {} by {by}", relative(&last.at, now));
            view.verified_ok = last.valid;
        }
        None => view.never_verified = true,
    }
    Ok(view)
}

fn catching_up(summary: &ActivitySummary) -> String {
    let progress = summary.progress;
    if progress.folded_seq >= progress.head_seq {
        return String::new();
    }
    let percent = progress.folded_seq.saturating_mul(100) / progress.head_seq.max(1);
    format!(
        "Counting the ledger: {} of {} entries ({percent}%); the counts below are not complete yet.",
        progress.folded_seq, progress.head_seq
    )
}
