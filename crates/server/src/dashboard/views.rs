//! What the templates show: plain strings and flags, prepared by the handlers in `pages`.

use askama::Template;
use axum::response::Html;

/// Renders a page; a template error (a bug) becomes a plain error text rather than a panic.
pub fn html(page: &impl Template) -> Html<String> {
    Html(page.render().unwrap_or_else(|error| {
        tracing::error!(%error, "a dashboard template failed to render");
        "the page could not be rendered; see the gateway's log".to_owned()
    }))
}

/// The navigation bar: who is signed in and what they may open.
#[derive(Debug, Clone)]
pub struct Nav {
    pub name: String,
    pub roles: String,
    pub csrf: String,
    pub auditor: bool,
    pub approver: bool,
    pub admin: bool,
    /// Which page is open (its link is marked `aria-current`).
    pub active: &'static str,
}

#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub login_token: String,
    pub error: Option<String>,
    /// Offer single sign-on (OpenID Connect).
    pub oidc: bool,
    /// Offer the directory (LDAP) user name and password form.
    pub ldap: bool,
}

#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub reason: String,
    pub message: String,
}

/// One ledger entry as the timeline and the action page show it.
#[derive(Debug, Clone)]
pub struct EntryView {
    pub seq: u64,
    pub id: String,
    pub timestamp: String,
    /// When, in words (`3 min ago`); the exact time is on hover.
    pub relative: String,
    pub kind: String,
    pub actor: String,
    pub action_id: Option<String>,
    pub namespace: String,
    pub status: String,
    pub risk: String,
    pub event_hash: String,
    pub chain_hash: String,
    pub prev_chain_hash: String,
    pub key_id: String,
    pub signature_ok: bool,
    /// The payload, indented.
    pub payload: String,
}

#[derive(Debug, Clone, Default)]
pub struct TimelineFilterView {
    pub identity: String,
    pub namespace: String,
    pub kind: String,
    pub status: String,
    pub risk: String,
}

#[derive(Debug, Template)]
#[template(path = "timeline.html")]
pub struct TimelinePage {
    pub nav: Nav,
    pub filter: TimelineFilterView,
    pub rows: Vec<EntryView>,
    pub kinds: Vec<&'static str>,
    pub statuses: Vec<&'static str>,
    pub risks: Vec<&'static str>,
    /// (id, name) of every identity, for the identity filter.
    pub identities: Vec<(String, String)>,
    /// The filter as a query string (without `?`), for the live update and paging links.
    pub query: String,
    pub newest: u64,
    pub older: Option<u64>,
}

#[derive(Debug, Template)]
#[template(path = "timeline_rows.html")]
pub struct TimelineRows {
    pub rows: Vec<EntryView>,
}

#[derive(Debug, Clone)]
pub struct DiffRow {
    pub op: String,
    pub path: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone)]
pub struct ActionView {
    pub id: String,
    pub summary: String,
    pub requester: String,
    pub status: String,
    pub risk: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Template)]
#[template(path = "action.html")]
pub struct ActionPage {
    pub nav: Nav,
    pub action: ActionView,
    pub entries: Vec<EntryView>,
    pub diff: Vec<DiffRow>,
    pub all_signatures_ok: bool,
    pub waiting: bool,
}

#[derive(Debug, Clone)]
pub struct PendingView {
    pub action: ActionView,
    pub reasons: String,
    pub digest: String,
    pub approvals_required: i64,
    /// Groups that must each give one of the approvals, comma-separated (empty: any approvers).
    pub approval_groups: String,
    pub expires_at: String,
    pub diff: Vec<DiffRow>,
    /// The signed-in user asked for this action (they cannot decide it).
    pub own: bool,
}

#[derive(Debug, Template)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    pub nav: Nav,
    pub pending: Vec<PendingView>,
}

/// The kill switch's page.
#[derive(Debug, Template)]
#[template(path = "safety.html")]
pub struct SafetyPage {
    pub nav: Nav,
    pub freezes: Vec<FreezeView>,
    /// The signed-in identity may freeze (and so see the form).
    pub may_freeze: bool,
    /// … and lift (a person who may freeze; never an agent).
    pub may_lift: bool,
}

/// An active freeze, as the page shows it.
#[derive(Debug, Clone)]
pub struct FreezeView {
    pub id: String,
    pub scope: String,
    pub reason: String,
    pub frozen_by: String,
    pub frozen_at: String,
}

#[derive(Debug, Clone)]
pub struct IdentityView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub roles: String,
    pub scopes: Vec<String>,
    /// Its groups, comma-separated.
    pub groups: String,
    pub status: String,
    pub trust_score: i64,
    /// The score's move over the last 24 hours (`+5`, `−3`, `±0`; the list shows it), and its CSS class.
    pub trust_trend: String,
    pub trend_class: &'static str,
}

#[derive(Debug, Template)]
#[template(path = "identities.html")]
pub struct IdentitiesPage {
    pub nav: Nav,
    pub identities: Vec<IdentityView>,
    /// The last identity shown, when more may follow (the next page starts after it).
    pub next: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TrustChangeView {
    pub seq: u64,
    pub entry_id: String,
    pub action_id: String,
    pub kind: String,
    pub delta: String,
    pub score: i64,
}

/// The trust history as an SVG polyline (no script, no inline style: CSP allows it).
#[derive(Debug, Clone)]
pub struct TrustChart {
    pub points: String,
    pub width: u32,
    pub height: u32,
    pub description: String,
}

#[derive(Debug, Template)]
#[template(path = "identity.html")]
pub struct IdentityPage {
    pub nav: Nav,
    pub identity: IdentityView,
    /// One page of changes, newest first.
    pub changes: Vec<TrustChangeView>,
    pub chart: TrustChart,
    /// `before_seq` of the next (older) page, if any.
    pub older: Option<u64>,
    /// Whether newer changes exist than this page's.
    pub newer: bool,
    /// The score counts every entry up to this seq.
    pub as_of_seq: u64,
}

#[derive(Debug, Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    pub nav: Nav,
    /// The transparency log: origin, sizes, witnesses and their lag.
    pub log: gateway::transparency::TransparencyStatus,
    /// The latest checkpoint with the quorum of cosignatures, as its signed note (empty: none yet).
    pub cosigned_note: String,
}

#[derive(Debug, Template)]
#[template(path = "verify_job.html")]
pub struct VerifyJobPage {
    pub nav: Nav,
    pub checked: u64,
    pub total: u64,
    pub percent: u64,
    pub done: bool,
    pub valid: bool,
    pub error: Option<String>,
    pub head: String,
    pub first_invalid: Option<String>,
    pub keys: Vec<String>,
}

/// The points of a trust chart: score (0–100) after each change, left to right. Without `earlier`
/// changes before them the line starts at 0 (a new identity's score); `total` is every change's count.
pub fn trust_chart(scores: &[i64], earlier: bool, total: u64) -> TrustChart {
    let (width, height) = (600u32, 120u32);
    let mut values = if earlier { Vec::new() } else { vec![0i64] };
    values.extend_from_slice(scores);
    let step = f64::from(width) / (values.len().max(2) - 1) as f64;
    let points = values
        .iter()
        .enumerate()
        .map(|(i, score)| {
            let x = i as f64 * step;
            let y = f64::from(height) - (score.clamp(&0, &100) * i64::from(height) / 100) as f64;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let description = match (scores.first(), scores.last()) {
        (_, None) => "no trust changes yet; the score is 0".to_owned(),
        (Some(first), Some(last)) if earlier => {
            format!("{} of {total} changes, from {first} to {last}", scores.len())
        }
        (_, Some(last)) => format!("{} changes, from 0 to {last}", scores.len()),
    };
    TrustChart {
        points,
        width,
        height,
        description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_chart_spans_the_width_and_clamps_scores() {
        let chart = trust_chart(&[50, 120], false, 2);
        assert_eq!(chart.points, "0.0,120.0 300.0,60.0 600.0,0.0");
        assert_eq!(trust_chart(&[], false, 0).points, "0.0,120.0");
        // A page that does not start at the first change starts at its own first score.
        let page = trust_chart(&[50, 100], true, 80);
        assert_eq!(page.points, "0.0,60.0 600.0,0.0");
        assert_eq!(page.description, "2 of 80 changes, from 50 to 100");
    }

    #[test]
    fn templates_escape_what_users_typed() {
        let page = ErrorPage {
            status: 400,
            reason: "Bad Request".into(),
            message: "<script>alert(1)</script>".into(),
        };
        let text = page.render().unwrap();
        assert!(!text.contains("<script>alert"), "{text}");
        assert!(
            text.contains("&#60;script&#62;") || text.contains("&lt;script&gt;"),
            "{text}"
        );
    }
}
