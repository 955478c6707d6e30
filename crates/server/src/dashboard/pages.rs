//! The dashboard's handlers: authenticate the session, ask the pipeline, directory or store (the same
//! calls and role checks as the JSON API), and render a template.

use domain::{ActionStatus, EntryKind};
use std::collections::HashMap;
use std::str::FromStr;

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use gateway::{Caller, Role, Verdict};
use ledger_core::{Entry, LedgerPublicKey};
use serde::Deserialize;
use serde_json::Value;
use storage::{SessionRow, TimelineFilter};

use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE, SESSION_HOURS, Session};
use super::views::{self, *};
use super::{PageError, VerifyJob, now};
use crate::AppState;

const RISKS: [&str; 3] = ["LOW", "MEDIUM", "HIGH"];
/// Entries per timeline page.
const PAGE: u32 = 50;
/// Longest filter value accepted (names, namespaces and kinds are far shorter).
const MAX_FILTER: usize = 256;

fn nav(session: &Session, active: &'static str) -> Nav {
    let identity = &session.caller.identity;
    Nav {
        name: identity.name.clone(),
        roles: identity.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        csrf: session.csrf.clone(),
        auditor: identity.has_role(Role::Auditor),
        approver: identity.has_role(Role::Approver),
        admin: identity.has_role(Role::Admin),
        active,
    }
}

/// POSTs must come from a page of this gateway: an `Origin` naming another host is refused (on top of
/// the CSRF token and SameSite cookies).
fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    if origin != "null" && origin_host == host {
        Ok(())
    } else {
        Err(PageError::forbidden("cross-site form submissions are refused"))
    }
}

fn form_error(rejection: FormRejection) -> PageError {
    PageError::bad_request(format!("the form could not be read: {}", rejection.body_text()))
}

// Sign-in and sign-out.

pub async fn login_form(State(state): State<AppState>) -> Response {
    login_page(&state, None, StatusCode::OK)
}

fn login_page(state: &AppState, error: Option<String>, status: StatusCode) -> Response {
    let token = session::random_token();
    let cookie = session::set_cookie(LOGIN_COOKIE, &token, 3600, state.dashboard.secure_cookies);
    let page = LoginPage {
        login_token: token,
        error,
        oidc: state.identity_providers.oidc.is_some(),
        ldap: state.identity_providers.ldap.is_some(),
    };
    (status, [(header::SET_COOKIE, cookie)], views::html(&page)).into_response()
}

/// The sign-in page again, when its form's token is missing or old.
fn form_expired(state: &AppState) -> Response {
    login_page(
        state,
        Some("the sign-in form expired; please try again".into()),
        StatusCode::FORBIDDEN,
    )
}

/// The sign-in page again, with why the sign-in was refused and its status (401, 403, 503…).
fn refused(state: &AppState, error: crate::ApiError) -> Response {
    tracing::info!(message = %error.message, "dashboard sign-in refused");
    login_page(state, Some(format!("sign-in refused: {}", error.message)), error.status)
}

/// Checks the sign-in form's double-submit token (there is no session yet to hold one).
fn check_login_token(headers: &HeaderMap, sent: &str) -> bool {
    let expected = session::cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    !expected.is_empty() && session::constant_time_eq(expected.as_bytes(), sent.as_bytes())
}

/// Starts a session for `principal` and sends the browser to the timeline.
async fn start_session(state: &AppState, principal: String) -> Result<Response, PageError> {
    let token = session::random_token();
    let expires_at = gateway::now_plus(std::time::Duration::from_secs(SESSION_HOURS as u64 * 3600));
    state
        .store
        .insert_session(&SessionRow {
            token_digest: session::digest(&token),
            principal,
            csrf_token: session::random_token(),
            created_at: now(),
            expires_at,
        })
        .await?;
    let secure = state.dashboard.secure_cookies;
    let mut response = Redirect::to("/").into_response();
    let headers = response.headers_mut();
    for cookie in [
        session::set_cookie(SESSION_COOKIE, &token, SESSION_HOURS * 3600, secure),
        session::set_cookie(LOGIN_COOKIE, "", 0, secure),
        // Cleared on the path it was set for.
        session::set_cookie(OIDC_COOKIE, "", 0, secure).replace("Path=/;", "Path=/auth/oidc;"),
    ] {
        headers.append(header::SET_COOKIE, cookie.parse().expect("cookie values are ASCII"));
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    api_key: String,
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    if !check_login_token(&headers, &form.csrf) {
        return Ok(form_expired(&state));
    }
    let key = form.api_key.trim();
    let caller = match state.directory.authenticate(key).await {
        Ok(caller) => caller,
        Err(error) => return Ok(refused(&state, crate::ApiError::from(error))),
    };
    tracing::info!(identity = %caller.identity.id, key = %caller.key_id, "dashboard sign-in");
    start_session(&state, format!("key:{}", gateway::apikey::digest(key))).await
}

#[derive(Debug, Deserialize)]
pub struct LdapForm {
    csrf: String,
    username: String,
    password: String,
}

/// Sign-in with a directory user name and password (LDAP bind as the user).
pub async fn ldap_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LdapForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    let Some(ldap) = state.identity_providers.ldap.clone() else {
        return Err(PageError::not_found("LDAP sign-in is not configured"));
    };
    if !check_login_token(&headers, &form.csrf) {
        return Ok(form_expired(&state));
    }
    let signed_in = match ldap.authenticate(&form.username, &form.password).await {
        Ok(user) => {
            let grants = ::auth::grants_for(&user.groups, &ldap.config().groups);
            state
                .directory
                .sign_in_external(&user, &grants)
                .await
                .map_err(crate::ApiError::from)
        }
        Err(error) => Err(crate::ApiError::from(error)),
    };
    match signed_in {
        Ok(caller) => {
            tracing::info!(identity = %caller.identity.id, "dashboard sign-in (LDAP)");
            start_session(&state, format!("identity:{}", caller.identity.id)).await
        }
        Err(error) => Ok(refused(&state, error)),
    }
}

/// Holds the OIDC `state` between the redirect to the provider and the callback (the rest is server-side).
const OIDC_COOKIE: &str = "dkt_oidc";

/// The callback URL: as configured, or this gateway's address as the browser used it.
fn oidc_redirect_url(state: &AppState, oidc: &::auth::OidcProvider, headers: &HeaderMap) -> Result<String, PageError> {
    if let Some(url) = &oidc.config().redirect_url {
        return Ok(url.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .ok_or_else(|| PageError::bad_request("no usable Host header; set redirect_url in [oidc]"))?;
    let scheme = if state.dashboard.secure_cookies {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{host}/auth/oidc/callback"))
}

/// Sends the browser to the provider (authorization-code flow with PKCE, state and nonce).
pub async fn oidc_start(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let Some(oidc) = state.identity_providers.oidc.clone() else {
        return Err(PageError::not_found("single sign-on is not configured"));
    };
    let redirect_url = oidc_redirect_url(&state, &oidc, &headers)?;
    let flow_state = session::random_token();
    let nonce = session::random_token();
    let pkce = ::auth::Pkce::new();
    state
        .store
        .insert_login(&storage::LoginRow {
            state_digest: session::digest(&flow_state),
            verifier: pkce.verifier.clone(),
            nonce: nonce.clone(),
            redirect_url: redirect_url.clone(),
            expires_at: gateway::now_plus(std::time::Duration::from_secs(600)),
        })
        .await?;
    let url = oidc
        .authorization_url(&redirect_url, &flow_state, &nonce, &pkce)
        .await
        .map_err(auth_page_error)?;
    // Lax, not Strict: the provider's redirect back is a cross-site navigation that must carry it.
    let secure = if state.dashboard.secure_cookies { "; Secure" } else { "" };
    let cookie = format!("{OIDC_COOKIE}={flow_state}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=600{secure}");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response())
}

fn auth_page_error(error: ::auth::AuthError) -> PageError {
    let api = crate::ApiError::from(error);
    PageError::Page {
        status: api.status,
        message: api.message,
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider sends the browser back here with a code: exchange it, validate the ID token, map the
/// groups, and start a session.
pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Some(oidc) = state.identity_providers.oidc.clone() else {
        return Err(PageError::not_found("single sign-on is not configured"));
    };
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    if let Some(error) = query.error {
        return Err(PageError::Page {
            status: StatusCode::UNAUTHORIZED,
            message: format!(
                "the identity provider refused the sign-in: {error} {}",
                query.error_description.unwrap_or_default()
            ),
        });
    }
    let (Some(code), Some(flow_state)) = (query.code, query.state) else {
        return Err(PageError::bad_request("the callback needs code and state"));
    };
    // The state must be the one this browser was given (no login CSRF), and is used once.
    let cookie_state = session::cookie(&headers, OIDC_COOKIE).unwrap_or_default();
    if cookie_state.is_empty() || !session::constant_time_eq(cookie_state.as_bytes(), flow_state.as_bytes()) {
        return Err(PageError::forbidden(
            "this sign-in was not started in this browser; start again from the sign-in page",
        ));
    }
    let Some(login) = state.store.take_login(&session::digest(&flow_state), &now()).await? else {
        return Err(PageError::forbidden(
            "this sign-in expired or was already used; start again from the sign-in page",
        ));
    };
    let id_token = oidc
        .exchange_code(&code, &login.redirect_url, &login.verifier)
        .await
        .map_err(auth_page_error)?;
    let user = oidc
        .validate(
            &id_token,
            std::slice::from_ref(&oidc.config().client_id),
            Some(&login.nonce),
        )
        .await
        .map_err(auth_page_error)?;
    let grants = ::auth::grants_for(&user.groups, &oidc.config().groups);
    let caller = state.directory.sign_in_external(&user, &grants).await?;
    tracing::info!(identity = %caller.identity.id, "dashboard sign-in (OpenID Connect)");
    start_session(&state, format!("identity:{}", caller.identity.id)).await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    session: Session,
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Form(form) = form.map_err(form_error)?;
    session.check_csrf(&form.csrf)?;
    if let Some(token) = session::cookie(&headers, SESSION_COOKIE) {
        state.store.delete_session(&session::digest(&token), &now()).await?;
    }
    let cookie = session::set_cookie(SESSION_COOKIE, "", 0, state.dashboard.secure_cookies);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

// The timeline.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    identity: Option<String>,
    namespace: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    risk: Option<String>,
    before: Option<i64>,
    after: Option<i64>,
}

impl TimelineQuery {
    fn filter(&self, caller: &Caller) -> Result<TimelineFilter, PageError> {
        let clean = |value: &Option<String>| -> Result<Option<String>, PageError> {
            match value.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(text) if text.len() > MAX_FILTER => Err(PageError::bad_request(format!(
                    "filter values are at most {MAX_FILTER} characters"
                ))),
                Some(text) => Ok(Some(text.to_owned())),
            }
        };
        // Auditors see the whole ledger; anyone else the entries of their own actions and their own acts.
        let identity = if caller.identity.has_role(Role::Auditor) {
            clean(&self.identity)?
        } else {
            Some(caller.identity.id.clone())
        };
        Ok(TimelineFilter {
            identity,
            namespace: clean(&self.namespace)?,
            kind: clean(&self.kind)?,
            status: clean(&self.status)?,
            risk: clean(&self.risk)?,
            before_seq: self.before,
            after_seq: self.after,
            // One more than a page: whether older entries exist.
            limit: PAGE + 1,
        })
    }

    /// The filter as a query string, for links that keep it.
    fn query_string(&self) -> String {
        let pairs = [
            ("identity", &self.identity),
            ("namespace", &self.namespace),
            ("kind", &self.kind),
            ("status", &self.status),
            ("risk", &self.risk),
        ];
        pairs
            .iter()
            .filter_map(|(name, value)| {
                value.as_deref().filter(|v| !v.trim().is_empty()).map(|v| {
                    format!(
                        "{name}={}",
                        url::form_urlencoded::byte_serialize(v.trim().as_bytes()).collect::<String>()
                    )
                })
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The names of the identities among `ids`, by id, to show names instead of ids (only those a page shows
/// are looked up: the number of identities does not matter).
async fn names<'a>(
    state: &AppState,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, String>, PageError> {
    let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
    Ok(state.directory.names(&ids).await?)
}

/// How many identities the timeline's identity filter offers (the first ones created, and the one chosen).
const IDENTITY_CHOICES: u32 = 500;

/// Identities per page of the identities page.
const IDENTITIES_PAGE: u32 = 100;

/// Public keys by key id, to check each shown entry's signature.
async fn public_keys(state: &AppState) -> Result<HashMap<String, LedgerPublicKey>, PageError> {
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

fn entry_view(
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

async fn timeline_entries(
    state: &AppState,
    caller: &Caller,
    query: &TimelineQuery,
) -> Result<Vec<EntryView>, PageError> {
    let filter = query.filter(caller)?;
    let found = state.store.timeline(&filter).await?;
    let names = names(state, found.iter().map(|t| t.entry.actor.as_str())).await?;
    let keys = public_keys(state).await?;
    Ok(found
        .iter()
        .map(|t| entry_view(&t.entry, &names, &keys, Some((&t.namespace, &t.status, &t.risk))))
        .collect())
}

pub async fn timeline(
    session: Session,
    State(state): State<AppState>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let mut rows = timeline_entries(&state, &session.caller, &query).await?;
    let has_older = query.after.is_none() && rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let newest = match query.before {
        // An older page: live updates start from the ledger's head, not from this page.
        Some(_) => state.store.head().await?.map_or(0, |e| e.seq),
        None => rows.first().map_or(0, |r| r.seq),
    };
    let older = has_older.then(|| rows.last().map(|r| r.seq)).flatten();
    let mut identities: Vec<(String, String)> = if session.caller.identity.has_role(Role::Auditor) {
        identity_choices(&state, query.identity.as_deref()).await?
    } else {
        Vec::new()
    };
    identities.sort_by(|a, b| a.1.cmp(&b.1));
    let page = TimelinePage {
        nav: nav(&session, "timeline"),
        filter: TimelineFilterView {
            identity: query.identity.clone().unwrap_or_default(),
            namespace: query.namespace.clone().unwrap_or_default(),
            kind: query.kind.clone().unwrap_or_default(),
            status: query.status.clone().unwrap_or_default(),
            risk: query.risk.clone().unwrap_or_default(),
        },
        rows,
        kinds: EntryKind::ALL.map(EntryKind::as_str).to_vec(),
        statuses: ActionStatus::ALL.map(ActionStatus::as_str).to_vec(),
        risks: RISKS.to_vec(),
        identities,
        query: query.query_string(),
        newest,
        older,
    };
    Ok(views::html(&page))
}

/// The identities the timeline's filter offers: the first [`IDENTITY_CHOICES`], and the one chosen.
async fn identity_choices(state: &AppState, chosen: Option<&str>) -> Result<Vec<(String, String)>, PageError> {
    let mut choices: Vec<(String, String)> = state
        .directory
        .list(None, IDENTITY_CHOICES)
        .await?
        .into_iter()
        .map(|identity| (identity.id, identity.name))
        .collect();
    if let Some(chosen) = chosen.filter(|id| !choices.iter().any(|(c, _)| c == id)) {
        choices.extend(names(state, [chosen]).await?);
    }
    Ok(choices)
}

/// New rows for the live timeline (`after` = the newest seq shown), oldest first, as HTML table rows.
pub async fn timeline_rows(
    session: Session,
    State(state): State<AppState>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    if query.after.is_none() {
        return Err(PageError::bad_request("after=<seq> is required"));
    }
    let rows = timeline_entries(&state, &session.caller, &query).await?;
    Ok(views::html(&TimelineRows { rows }))
}

// An action and its chain.

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn action_view(action: &Value, names: &HashMap<String, String>) -> ActionView {
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
fn latest_diff(entries: &[Entry]) -> Vec<DiffRow> {
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

// Approvals.

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
            expires_at: text_of(&item["expires_at"]),
            diff: latest_diff(&entries),
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

// Identities.

async fn identity_view(state: &AppState, identity: &gateway::Identity) -> Result<IdentityView, PageError> {
    let trust = state.pipeline.trust(&identity.id).await?;
    Ok(IdentityView {
        id: identity.id.clone(),
        name: identity.name.clone(),
        kind: identity.kind.as_str().to_owned(),
        roles: identity.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        scopes: identity
            .scopes
            .iter()
            .map(|scope| {
                format!(
                    "{} in {} (kinds: {})",
                    serde_json::to_value(scope.access)
                        .map(|v| text_of(&v))
                        .unwrap_or_default(),
                    scope.namespaces.join(", "),
                    scope.kinds.join(", ")
                )
            })
            .collect(),
        status: identity.status.as_str().to_owned(),
        trust_score: trust.score,
    })
}

fn require_admin_or_auditor(session: &Session) -> Result<(), PageError> {
    let identity = &session.caller.identity;
    if identity.has_role(Role::Admin) || identity.has_role(Role::Auditor) {
        Ok(())
    } else {
        Err(PageError::forbidden(format!(
            "{} needs the admin or auditor role to see identities",
            identity.name
        )))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitiesQuery {
    /// The last identity of the previous page.
    after: Option<String>,
}

pub async fn identities(
    session: Session,
    State(state): State<AppState>,
    query: Result<Query<IdentitiesQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    require_admin_or_auditor(&session)?;
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    let listed = state.directory.list(query.after.as_deref(), IDENTITIES_PAGE).await?;
    let mut identities = Vec::new();
    for identity in &listed {
        identities.push(identity_view(&state, identity).await?);
    }
    let next = (listed.len() == IDENTITIES_PAGE as usize)
        .then(|| listed.last().map(|i| i.id.clone()))
        .flatten();
    let page = IdentitiesPage {
        nav: nav(&session, "identities"),
        identities,
        next,
    };
    Ok(views::html(&page))
}

/// `?before_seq=N`: the page of trust changes before seq N (newest first).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPageQuery {
    before_seq: Option<u64>,
}

/// Trust changes per page (and points of the chart).
const TRUST_CHANGES_PER_PAGE: u32 = 50;

pub async fn identity(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<TrustPageQuery>, QueryRejection>,
) -> Result<Html<String>, PageError> {
    let Query(query) = query.map_err(|e| PageError::bad_request(e.body_text()))?;
    if session.caller.identity.id != id {
        require_admin_or_auditor(&session)?;
    }
    let identity = state.directory.get(&id).await?;
    let trust = state.pipeline.trust(&id).await?;
    let page = state
        .pipeline
        .trust_changes(&id, query.before_seq, TRUST_CHANGES_PER_PAGE)
        .await?;
    // Older changes exist when the page is full and does not start at the first change.
    let older = (page.len() == TRUST_CHANGES_PER_PAGE as usize)
        .then(|| page.last().map(|c| c.seq))
        .flatten();
    let shown: Vec<i64> = page.iter().rev().map(|c| c.score).collect();
    let chart = views::trust_chart(&shown, older.is_some(), trust.changes);
    let changes = page
        .iter()
        .map(|c| TrustChangeView {
            seq: c.seq,
            entry_id: c.entry_id.clone(),
            action_id: c.action_id.clone(),
            kind: c.kind.clone(),
            delta: format!("{:+}", c.delta),
            score: c.score,
        })
        .collect();
    let page = IdentityPage {
        nav: nav(&session, "identities"),
        identity: identity_view(&state, &identity).await?,
        changes,
        chart,
        older,
        newer: query.before_seq.is_some(),
        as_of_seq: trust.as_of_seq,
    };
    Ok(views::html(&page))
}

// Verification and export (auditors).

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
