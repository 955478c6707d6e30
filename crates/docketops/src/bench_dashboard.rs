//! `docketops bench-dashboard`: how long the dashboard's pages take on a running gateway, measured as a browser
//! loads them (signed in through the sign-in form, whole HTML responses). `scripts/bench-dashboard` seeds a
//! ledger of about a million entries first (issue 18: each page under 200 ms there).
//!
//! Pages are loaded one after another (a person's clicks, not a load test), each `--runs` times after one
//! unmeasured load; an action's and an identity's own page are those the API lists first (the newest action,
//! the first identity created).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use domain::{ActionStatus, EntryKind};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct BenchDashboardArgs {
    /// The gateway, e.g. http://127.0.0.1:8443.
    #[arg(long)]
    pub url: String,
    /// A key of an identity with the admin and auditor roles (an auditor sees the whole ledger, so each page
    /// shows the most; listing identities needs an admin).
    #[arg(long, env = "DOCKETOPS_BENCH_KEY")]
    pub key: String,
    /// Loads of each page measured.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Fail when a page's 95th percentile reaches this many milliseconds.
    #[arg(long, default_value_t = 200)]
    pub limit_ms: u64,
    /// More pages to measure besides the default ones (a path with its query, e.g. `/timeline?kind=action.failed`).
    #[arg(long = "page")]
    pub pages: Vec<String>,
}

/// One page's load times.
struct Timed {
    path: String,
    times: Vec<Duration>,
    bytes: usize,
}

impl Timed {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

pub async fn run(args: BenchDashboardArgs) -> anyhow::Result<ExitCode> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = args.url.trim_end_matches('/').to_owned();
    let pages = pages(&http, &url, &args).await?;
    let session = sign_in(&http, &url, &args.key).await?;
    overview_counted(&http, &url, &session).await?;
    println!(
        "dashboard page times, {} loads each, one at a time (signed in as an admin and auditor)",
        args.runs
    );
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>10}",
        "page", "p50 ms", "p95 ms", "max ms", "bytes"
    );
    let mut slow = Vec::new();
    for path in pages {
        let timed = measure(&http, &url, &session, &path, args.runs).await?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (p50, p95) = (timed.percentile(50.0), timed.percentile(95.0));
        let max = timed.times.iter().max().copied().unwrap_or_default();
        println!(
            "{:<48} {:>9.2} {:>9.2} {:>9.2} {:>10}",
            timed.path,
            ms(p50),
            ms(p95),
            ms(max),
            timed.bytes
        );
        if p95 >= Duration::from_millis(args.limit_ms) {
            slow.push(timed.path);
        }
    }
    if slow.is_empty() {
        println!("every page's p95 is under {} ms (target met)", args.limit_ms);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "p95 at or over {} ms (target not met): {}",
            args.limit_ms,
            slow.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The pages to measure: the lists, their common filters, the newest action's and first identity's pages,
/// and `--page`s.
async fn pages(http: &reqwest::Client, url: &str, args: &BenchDashboardArgs) -> anyhow::Result<Vec<String>> {
    let first = |list: &'static str, field: &'static str| async move {
        let body: Value = http
            .get(format!("{url}/api/v1/{list}?limit=1"))
            .bearer_auth(&args.key)
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("listing {list} (a key with the admin and auditor roles is needed)"))?
            .json()
            .await?;
        let id = body[list][0][field].as_str().map(str::to_owned);
        id.with_context(|| format!("no {list} to measure: seed some first (scripts/bench-dashboard does)"))
    };
    let action = first("actions", "action_id").await?;
    let identity = first("identities", "id").await?;
    let mut pages: Vec<String> = vec![
        "/".into(),
        "/timeline".into(),
        format!("/timeline?kind={}", EntryKind::PolicyDecided.as_str()),
        "/actions".into(),
        format!("/actions?status={}", ActionStatus::Denied.as_str()),
        "/identities".into(),
        "/approvals".into(),
    ];
    pages.push(format!("/actions/{action}"));
    pages.push(format!("/identities/{identity}"));
    pages.extend(args.pages.iter().cloned());
    Ok(pages)
}

/// Waits until the overview's counts have caught up with the ledger (the gateway folds them in the
/// background, from the first entry on a ledger it has not counted yet), and says how long that took.
async fn overview_counted(http: &reqwest::Client, url: &str, session: &str) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut waited = false;
    loop {
        let page = http
            .get(format!("{url}/"))
            .header(reqwest::header::COOKIE, session)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        if !page.contains("id=\"catching-up\"") {
            break;
        }
        if !waited {
            eprintln!("waiting for the overview's counts to catch up with the ledger…");
            waited = true;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the overview's counts did not catch up in 30 min"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if waited {
        println!(
            "overview counts caught up after waiting {:.1} s more",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Signs in as a browser does: the sign-in form's token and cookie, then the form posted with the key.
/// Answers the `Cookie` header of the session.
async fn sign_in(http: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<String> {
    let form = http.get(format!("{url}/login")).send().await?.error_for_status()?;
    let login_cookie = cookies(form.headers());
    let html = form.text().await?;
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the sign-in page has no form token")?
        .to_owned();
    let signed_in = http
        .post(format!("{url}/login"))
        .header("Origin", url)
        .header("Cookie", login_cookie)
        .form(&[("csrf", token.as_str()), ("api_key", key)])
        .send()
        .await?;
    let session = cookies(signed_in.headers());
    if !signed_in.status().is_redirection() || !session.contains("dkt_session=") {
        bail!("sign-in refused ({}): is the key valid?", signed_in.status());
    }
    Ok(session)
}

/// The `name=value` pairs a response sets, as one `Cookie` header.
fn cookies(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Loads `path` once unmeasured, then `runs` times measured (the whole body read).
async fn measure(http: &reqwest::Client, url: &str, session: &str, path: &str, runs: usize) -> anyhow::Result<Timed> {
    let mut timed = Timed {
        path: path.to_owned(),
        times: Vec::with_capacity(runs),
        bytes: 0,
    };
    for run in 0..=runs {
        let started = Instant::now();
        let response = http
            .get(format!("{url}{path}"))
            .header("Cookie", session)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        let took = started.elapsed();
        ensure!(status.is_success(), "{path}: {status}");
        if run > 0 {
            timed.times.push(took);
            timed.bytes = body.len();
        }
    }
    Ok(timed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_by_rank() {
        let timed = Timed {
            path: "/".into(),
            times: (1..=20).rev().map(Duration::from_millis).collect(),
            bytes: 0,
        };
        assert_eq!(timed.percentile(50.0), Duration::from_millis(10));
        assert_eq!(timed.percentile(95.0), Duration::from_millis(19));
        assert_eq!(timed.percentile(100.0), Duration::from_millis(20));
    }
}
