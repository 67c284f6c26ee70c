//! The dashboard: server-rendered pages for a school's IT admin. Every
//! page reads the same views as the JSON API; the only script (served
//! from `/static/`, never inline) polls the running-jobs fragment so
//! progress moves without a reload. Every form that changes something is
//! built by [`post_form`], which carries the session's CSRF token.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use rostersync_core::targets::RenameStatus;
use rostersync_core::{HoldAnswer, HoldKind};
use rostersync_model::target::ObjectKind;
use rostersync_store::{DeliveryOutcome, DeliveryRow, DeliveryStatus, RunMode};
use rostersync_sync::RunStatus;
use serde::Deserialize;

use crate::AppState;
use crate::api::{
    self, ActiveRun, ApiError, ConnectionStatus, HoldView, RequestedMode, all_connections,
};
use crate::auth::{Caller, ClientIp, PageCaller};
use crate::targets::{self, PendingView, TargetView};

/// An error shown as a page, with a way back.
pub struct PageError(ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = bare_page(
            "Something went wrong",
            html! {
                h1 { "That did not work" }
                p.error { (self.0.message) }
                p { a href="/" { "Back to connections" } }
            },
        );
        (self.0.status, body).into_response()
    }
}

type PageResult = Result<Response, PageError>;

/// The `<head>` every page shares.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · rostersync" }
            link rel="stylesheet" href="/static/dashboard.css";
        }
    }
}

fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main { (body) } }
        }
    }
}

/// A form that POSTs to `action` with the session's CSRF token. Every
/// dashboard form that changes something is built with it; the
/// [`crate::csrf`] layer refuses one that is not.
pub(crate) fn post_form(caller: &Caller, action: &str, body: Markup) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name=(crate::csrf::FIELD) value=(caller.csrf.as_deref().unwrap_or_default());
            (body)
        }
    }
}

fn page(title: &str, caller: &Caller, body: Markup) -> Response {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header {
                    a href="/" { "rostersync" }
                    a href="/" { "Connections" }
                    a href="/holds" { "Holds" }
                    a href="/targets" { "Targets" }
                    a href="/plugins" { "Plugins" }
                    a href="/notifications" { "Notifications" }
                    span.who {
                        "Signed in as " (caller.name)
                        @if !caller.is_admin() { " (read-only)" }
                        " · "
                        (post_form(caller, "/logout", html! { button #sign-out type="submit" { "Sign out" } }))
                        " "
                        (post_form(caller, "/logout/everywhere", html! { button #sign-out-everywhere type="submit" { "Sign out everywhere" } }))
                    }
                }
                main { (body) }
                script src="/static/dashboard.js" {}
            }
        }
    }
    .into_response()
}

fn ago(at: Option<DateTime<Utc>>) -> Markup {
    let Some(at) = at else {
        return html! { span.muted { "never" } };
    };
    let seconds = (Utc::now() - at).num_seconds();
    let words = match seconds {
        s if s < 0 => in_words(-s, "in ", ""),
        s => in_words(s, "", " ago"),
    };
    html! { time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC")) { (words) } }
}

fn in_words(seconds: i64, before: &str, after: &str) -> String {
    let amount = match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    };
    format!("{before}{amount}{after}")
}

fn status_badge(status: &str) -> Markup {
    badge(status, status)
}

fn refresh_buttons(caller: &Caller, id: &str, busy: bool) -> Markup {
    let disabled = !caller.is_admin();
    let why = if disabled {
        "Needs an admin token"
    } else if busy {
        "A run is already queued or running; this joins it"
    } else {
        "Run now"
    };
    let action = format!("/connections/{id}/refresh");
    html! {
        (post_form(caller, &action, html! {
            input type="hidden" name="mode" value="delta";
            button.primary type="submit" disabled[disabled] title=(why) aria-label={"Refresh " (id) " now"} data-connection=(id) { "Refresh now" }
        }))
        " "
        (post_form(caller, &action, html! {
            input type="hidden" name="mode" value="full";
            button type="submit" disabled[disabled] title=(why) aria-label={"Full resync of " (id)} { "Full resync" }
        }))
    }
}

fn jobs_fragment(runs: &[ActiveRun]) -> Markup {
    html! {
        div data-active=(runs.len()) {
            @if runs.is_empty() {
                p.muted { "No runs are queued or running." }
            } @else {
                table {
                    tr { th { "Connection" } th { "Run" } th { "State" } th { "Progress" } th { "Asked for by" } th { "Since" } }
                    @for run in runs {
                        tr.job data-connection=(run.run.connection) {
                            td { a href={"/connections/" (run.run.connection)} { (run.run.connection) } }
                            td { (run.run.mode) @if run.run.additions_only { " (additions only)" } }
                            td { (status_badge(run.run.state.as_str())) }
                            td {
                                @if let Some(progress) = &run.live {
                                    @if let Some(done) = progress.fraction() {
                                        progress max="1000" value=((done * 1000.0).round() as u32) {} " "
                                    }
                                    span.progress { (progress.describe()) }
                                } @else { span.muted { "waiting for a worker" } }
                            }
                            td { (run.run.requested_by) " (" (run.run.reason) ")" }
                            td { (ago(run.run.started_at.or(Some(run.run.requested_at)))) }
                        }
                    }
                }
            }
        }
    }
}

async fn active_runs(state: &AppState) -> Result<Vec<ActiveRun>, ApiError> {
    let mut runs = Vec::new();
    for run in state.service.store().active_runs().await? {
        runs.push(api::active_run(state, run).await?);
    }
    Ok(runs)
}

/// A run's message as one row of the overview shows it: the first of
/// its reasons and how many more there are (the hold's or run's own page
/// lists them all), so a held run's row stays one line or two tall.
fn brief(message: &str) -> String {
    const MAX: usize = 160;
    let mut parts = message.split("; ");
    let first = parts.next().unwrap_or_default();
    let more = parts.count();
    let first = match first.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &first[..cut]),
        None => first.to_string(),
    };
    match more {
        0 => first,
        1 => format!("{first} (and 1 more reason)"),
        n => format!("{first} (and {n} more reasons)"),
    }
}

fn connection_row(caller: &Caller, c: &ConnectionStatus) -> Markup {
    html! {
        tr data-connection=(c.connection.id) {
            td { a href={"/connections/" (c.connection.id)} { strong { (c.connection.id) } } br; span.muted { (c.connection.connector) } }
            td.status {
                @match &c.last_run {
                    Some(run) => { (status_badge(&run.status)) @if let Some(message) = &run.message { br; span.muted.brief title=(message) { (brief(message)) } } }
                    None => span.muted { "not run yet" },
                }
                @if let Some(hold) = c.open_hold { br; a href={"/holds/" (hold)} { "Hold " (hold) " waits for you" } }
            }
            td data-label="Last changed" { (ago(c.last_changed)) }
            td data-label="Last checked" { (ago(c.last_checked)) }
            td data-label="Next run" {
                @match &c.connection.blackout {
                    Some(blackout) => { span.badge.held { (blackout) } br; }
                    None => {}
                }
                (ago(c.connection.next_run)) br; span.muted { (c.connection.schedule) }
            }
            td.actions { (refresh_buttons(caller, &c.connection.id, c.active_run.is_some())) }
        }
    }
}

pub async fn home(State(state): State<AppState>, PageCaller(caller): PageCaller) -> PageResult {
    let connections = all_connections(&state).await?;
    let jobs = active_runs(&state).await?;
    let open_holds = state.service.store().holds(false).await?.len();
    let held_targets: Vec<String> = targets::all_targets(&state)
        .await?
        .into_iter()
        .filter(|t| t.status.open_hold.is_some())
        .map(|t| t.name)
        .collect();
    Ok(page(
        "Connections",
        &caller,
        html! {
            h1 { "Connections" }
            @if open_holds > 0 {
                p.panel { a href="/holds" { (open_holds) " held run(s) wait for an answer." } }
            }
            @if !held_targets.is_empty() {
                p.panel #held-targets { a href="/targets" { "A mass suspension waits for your confirm on " (held_targets.join(", ")) "." } }
            }
            h2 { "Running jobs" }
            div #jobs aria-live="polite" aria-label="Running jobs" data-active=(jobs.len()) { (jobs_fragment(&jobs)) }
            h2 { "All connections" }
            @if connections.is_empty() {
                p.muted { "No connections are configured. Add them to the configuration file and restart." }
            } @else {
                table #connections .cards {
                    tr { th { "Connection" } th { "Last sync" } th { "Last changed" } th { "Last checked" } th { "Next run" } th {} }
                    @for c in &connections { (connection_row(&caller, c)) }
                }
            }
        },
    ))
}

pub async fn jobs(State(state): State<AppState>, PageCaller(_): PageCaller) -> PageResult {
    Ok(jobs_fragment(&active_runs(&state).await?).into_response())
}

pub async fn connection(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<String>,
) -> PageResult {
    let Some(view) = state
        .service
        .connections(Utc::now())
        .into_iter()
        .find(|c| c.id == id)
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("There is no connection named {id:?}."),
        )
        .into());
    };
    let status = api::connection_status(&state, view).await?;
    let runs = state.service.store().run_history(&id, 50).await?;
    let accounts = state
        .service
        .store()
        .accounts_by_role()
        .await?
        .remove(&id)
        .unwrap_or_default();
    let read = runs
        .iter()
        .find(|r| r.mode == RunMode::Full.as_str() && r.status != RunStatus::Failed.as_str());
    let counted = |role: &str, action: &str| {
        read.and_then(|r| {
            r.counts
                .iter()
                .find(|c| c.kind == role && c.action == action)
        })
        .map_or(0, |c| c.count)
    };
    let standing = state.service.store().standing_issues(&id).await?;
    Ok(page(
        &id,
        &caller,
        html! {
            h1 { (id) " " span.muted { "(" (status.connection.connector) ")" } }
            p {
                "Last changed " (ago(status.last_changed)) " · last checked " (ago(status.last_checked))
                " · next run " (ago(status.connection.next_run)) " · " span.muted { (status.connection.schedule) }
            }
            p { (refresh_buttons(&caller, &id, status.active_run.is_some())) }
            @if let Some(hold) = status.open_hold { p.panel { a href={"/holds/" (hold)} { "Hold " (hold) " waits for an answer." } } }
            h2 { "Accounts per role" }
            table #roles {
                tr { th { "Role" } th { "Active accounts" } th { "Read by the last full sync" } th { "Left out" } }
                @for role in ["student", "staff", "contact"] {
                    tr data-role=(role) {
                        td { (role) }
                        td.accounts { (accounts.get(role).copied().unwrap_or_default()) }
                        td.read { (counted(role, "read")) }
                        td { (counted(role, "left-out")) }
                    }
                }
            }
            h2 { "Standing issues (" (standing.len()) ")" }
            p.muted { "What is wrong at the source now, after the latest runs, and how to fix it there." }
            table #standing-issues {
                tr { th { "Type" } th { "Name" } th { "MIS id" } th { "Problem" } th { "Policy" } th { "How to fix" } }
                @for s in &standing {
                    tr {
                        td { (s.issue.entity_type) }
                        td {
                            @if ["Student", "Staff", "Contact"].contains(&s.issue.entity_type.as_str()) {
                                a href={"/connections/" (id) "/people/" (s.issue.source_id)} { (s.issue.entity_name) }
                            } @else { (s.issue.entity_name) }
                        }
                        td { (s.issue.mis_id) } td { (s.issue.message) } td { (s.issue.policy) } td { (s.issue.fix) }
                    }
                }
            }
            h2 { "Sync history" }
            table #history {
                tr { th { "Run" } th { "Started" } th { "Mode" } th { "Status" } th { "Read" } th { "Changes" } th { "Issues" } }
                @for run in &runs {
                    tr {
                        td { (run.id) }
                        td { (ago(Some(run.started_at))) }
                        td { (run.mode) @if run.dry_run { " (dry run)" } }
                        td { (status_badge(&run.status)) @if let Some(m) = &run.message { br; span.muted { (m) } } }
                        td { (run.records_read) }
                        td {
                            @for count in &run.counts { (count.count) " " (count.kind) " " (count.action) br; }
                        }
                        td { a href={"/runs/" (run.id) "/issues"} { "Issues" } }
                    }
                }
            }
        },
    ))
}

pub async fn issues(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(run): Path<i64>,
) -> PageResult {
    let issues = state.service.store().run_issues(run).await?;
    Ok(page(
        &format!("Issues of run {run}"),
        &caller,
        html! {
            h1 { "Issues of run " (run) }
            p { a #issues-csv href={"/runs/" (run) "/issues.csv"} download { "Download as CSV" } " (" (issues.len()) " issues)" }
            table {
                tr { th { "Type" } th { "Name" } th { "MIS id" } th { "Problem" } }
                @for issue in &issues {
                    tr { td { (issue.entity_type) } td { (issue.entity_name) } td { (issue.mis_id) } td { (issue.message) } }
                }
            }
        },
    ))
}

pub async fn holds(State(state): State<AppState>, PageCaller(caller): PageCaller) -> PageResult {
    let holds: Vec<HoldView> = state
        .service
        .store()
        .holds(true)
        .await?
        .into_iter()
        .map(HoldView::of)
        .collect();
    Ok(page(
        "Holds",
        &caller,
        html! {
            h1 { "Holds" }
            p.muted { "A run is held when it looks dangerous (many removals, many changes, a provider that stopped answering). Nothing it would change is applied until you confirm it." }
            table {
                tr { th { "Hold" } th { "Connection" } th { "Type" } th { "Why" } th { "Opened" } th { "Status" } }
                @for hold in &holds {
                    tr {
                        td { a href={"/holds/" (hold.hold.id)} { "Hold " (hold.hold.id) } }
                        td { (hold.hold.connection) }
                        td { (hold.hold.kind.title()) }
                        td { @for why in &hold.why { (why) br; } }
                        td { (ago(Some(hold.hold.opened_at))) }
                        td {
                            (status_badge(hold.hold.status.as_str()))
                            @if let Some(answer) = hold.hold.answer { " " span.muted { (answer.label()) } }
                        }
                    }
                }
            }
        },
    ))
}

pub async fn hold(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<i64>,
) -> PageResult {
    let hold = api::hold_detail(&state, id).await?;
    let open = hold.hold.status == rostersync_store::HoldStatus::Open;
    let disabled = !caller.is_admin();
    Ok(page(
        &format!("Hold {id}"),
        &caller,
        html! {
            h1 { "Hold " (id) ": " (hold.hold.connection) }
            div.panel {
                @if hold.hold.parts.len() > 1 {
                    p #parts { "Held in " (hold.hold.parts.len()) " parts, answered one at a time: "
                        @for (n, part) in hold.hold.parts.iter().enumerate() {
                            @if n > 0 { ", " }
                            (part.title().to_lowercase())
                            @if let Some(answer) = hold.hold.answered_parts.get(n) { " (“" (answer.label()) "”)" }
                        }
                        "." }
                    @if open { p #kind { strong { "Part " (hold.hold.answered_parts.len() + 1) ": " (hold.hold.kind.title()) } } }
                } @else {
                    p #kind { strong { (hold.hold.kind.title()) } }
                }
                @if !hold.held.is_empty() {
                    ul #held { @for line in &hold.held { li { (line) } } }
                }
                p { strong { "Why this run was held:" } }
                ul #reasons { @for why in &hold.why { li { (why) } } }
                @if hold.hold.kind != HoldKind::Disconnected {
                    p { a #evidence href={"/holds/" (id) "/evidence.csv"} download { "Download the records this hold is about (CSV)" } }
                }
                p.muted { "Opened " (ago(Some(hold.hold.opened_at))) "; revision " (hold.hold.revision) " from run " (hold.hold.run_id) ", digest " code #revision { (hold.hold.digest) } "." }
            }
            @if open {
                h2 { "What to check" }
                ul #checks { @for check in &hold.checks { li { (check) } } }
                h2 { "Your answer" }
                ul.answers {
                    @for answer in &hold.answers {
                        li {
                            @if disabled {
                                button type="button" disabled { (answer.label) }
                            } @else {
                                a.button id={"answer-" (answer.answer.as_str())} href={"/holds/" (id) "/answer/" (answer.answer.as_str()) "?revision=" (hold.hold.digest)} { (answer.label) }
                            }
                            " " span.muted { (answer.consequence) }
                        }
                    }
                }
                @if disabled { p.muted { "Answering a hold needs an admin token." } }
            } @else {
                p #answer { "This hold was " (hold.hold.status.as_str())
                    @if let Some(answer) = hold.hold.answer { " (“" (answer.label()) "”)" }
                    @if let Some(by) = &hold.hold.answered_by { " by " (by) }
                    " " (ago(hold.hold.answered_at)) "." }
                @if let Some(comment) = &hold.hold.comment { blockquote #comment { (comment) } }
                @if declined(&hold.hold) && !disabled {
                    (post_form(&caller, &format!("/holds/{id}/reconsider"), html! {
                        button #reconsider type="submit" { "Ask about these contacts again" }
                        " " span.muted { "Forgets this “Don't create”: the next run holds these contacts again." }
                    }))
                }
            }
        },
    ))
}

/// Whether a hold was answered "Don't create", on its last part or an
/// earlier one.
fn declined(hold: &rostersync_store::HoldRow) -> bool {
    hold.answer
        .iter()
        .chain(&hold.answered_parts)
        .any(|a| a.effect() == rostersync_core::Effect::ApplyOthers)
}

/// Forgets the contacts a hold declined; back to the hold's page.
pub async fn reconsider(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<i64>,
) -> PageResult {
    crate::api::require_admin(&caller)?;
    api::find_hold(&state, id).await?;
    rostersync_sync::reconsider_hold(state.service.store(), id, &caller.name).await?;
    Ok(Redirect::to(&format!("/holds/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct RevisionQuery {
    revision: Option<String>,
}

/// The confirmation step: what an answer does, a box for a comment, and
/// the button that gives it.
pub async fn answer_page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path((id, word)): Path<(i64, String)>,
    Query(query): Query<RevisionQuery>,
) -> PageResult {
    let hold = api::find_hold(&state, id).await?.hold;
    let answer = HoldAnswer::parse(hold.kind, &word).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "hold {id} is a {} hold and offers no answer {word:?}",
                hold.kind
            ),
        )
    })?;
    let revision = query.revision.unwrap_or_else(|| hold.digest.clone());
    let disabled = !caller.is_admin() || hold.status != rostersync_store::HoldStatus::Open;
    Ok(page(
        &format!("Hold {id}: {}", answer.label()),
        &caller,
        html! {
            h1 { "Hold " (id) ": " (answer.label()) "?" }
            div.panel {
                p #consequence { (answer.consequence()) }
                p.muted { "Connection " (hold.connection) ", revision " (hold.revision) " (" code { (revision) } ")." }
            }
            (post_form(&caller, &format!("/holds/{id}/answer"), html! {
                input type="hidden" name="answer" value=(answer.as_str());
                input type="hidden" name="revision" value=(revision);
                input type="hidden" name="confirmed" value="true";
                p {
                    label for="comment" { "Comment (optional, kept in the audit log)" }
                    br;
                    textarea #comment name="comment" rows="3" maxlength="2000" {}
                }
                p {
                    button.primary #confirm type="submit" disabled[disabled] { "Yes, " (answer.label().to_lowercase()) }
                    " "
                    a #cancel href={"/holds/" (id)} { "Cancel" }
                }
            }))
        },
    ))
}

pub async fn answer(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<i64>,
    Form(body): Form<api::AnswerBody>,
) -> PageResult {
    let answered = api::answer(&state, &caller, id, &body).await?;
    let to = match answered.queued_run {
        Some(_) => "/".to_string(),
        None => format!("/holds/{id}"),
    };
    Ok(Redirect::to(&to).into_response())
}

fn badge(class: &str, text: &str) -> Markup {
    html! { span class={"badge " (class)} { (text) } }
}

fn outcome_badge(outcome: DeliveryOutcome) -> Markup {
    let class = match outcome {
        DeliveryOutcome::Done | DeliveryOutcome::Matched => "succeeded",
        DeliveryOutcome::Conflict | DeliveryOutcome::Retry => "held",
        DeliveryOutcome::Refused | DeliveryOutcome::Failed => "failed",
    };
    badge(class, outcome.as_str())
}

fn sending(enabled: bool) -> &'static str {
    if enabled {
        "delivering"
    } else {
        "preview only"
    }
}

fn target_row(t: &TargetView) -> Markup {
    let s = &t.status;
    html! {
        tr data-target=(t.name) {
            td { a href={"/targets/" (t.name)} { strong { (t.name) } } br; span.muted { (t.kind) " · " (sending(t.enabled)) } }
            td.waiting data-label="Waiting" { (s.waiting) }
            td.refused data-label="Refused" { (s.refused) }
            td data-label="Last delivery" {
                @match &s.last_delivery {
                    Some(d) => { (ago(Some(d.at))) " " (d.action.as_str()) " " (outcome_badge(d.outcome)) }
                    None => span.muted { "never" },
                }
            }
            td.pass data-label="Last pass" {
                @match (&s.last_pass, s.pass_failure()) {
                    (_, Some((at, error))) => { (badge("failed", "failed")) " " (ago(Some(at))) br; span.error { (error) } }
                    (Some(pass), None) => { (badge("succeeded", "delivered")) " " (ago(Some(pass.at))) }
                    (None, None) => span.muted { "not yet" },
                }
            }
            td data-label="Hold" {
                @if let Some(hold) = &s.open_hold {
                    a href={"/targets/" (t.name) "#hold"} { "Hold " (hold.id) " waits for you" }
                } @else { span.muted { "none" } }
            }
        }
    }
}

pub async fn targets(State(state): State<AppState>, PageCaller(caller): PageCaller) -> PageResult {
    let targets = targets::all_targets(&state).await?;
    Ok(page(
        "Targets",
        &caller,
        html! {
            h1 { "Targets" }
            p.muted { "Where accounts and classes are provisioned. Changes are delivered after each run; a target that fails is retried and never holds up the others." }
            @if targets.is_empty() {
                p.muted { "No targets are configured. Add [[targets]] to the configuration file and restart." }
            } @else {
                table #targets .cards {
                    tr { th { "Target" } th { "Waiting" } th { "Refused" } th { "Last delivery" } th { "Last unattended pass" } th { "Hold" } }
                    @for t in &targets { (target_row(t)) }
                }
            }
        },
    ))
}

fn pending_table(id: Option<&str>, pending: &[PendingView]) -> Markup {
    html! {
        table id=[id] {
            tr { th { "Change" } th { "Object" } th { "Attempts" } th { "State" } th { "Last error" } }
            @for p in pending {
                tr {
                    td { (p.action) }
                    td { (p.label) br; span.muted { (p.external_id) } }
                    td { (p.attempts) }
                    td {
                        @if p.refused_at.is_some() { (badge("failed", "refused")) " " (ago(p.refused_at)) }
                        @else if p.next_attempt_at.is_some() { (badge("held", "retry")) " " (ago(p.next_attempt_at)) }
                        @else { (badge("queued", "next delivery")) }
                    }
                    td { (p.last_error.as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

fn delivery_table(deliveries: &[DeliveryRow], link: bool) -> Markup {
    html! {
        table.deliveries {
            tr { th { "When" } th { "Change" } th { "Object" } th { "Target's id" } th { "Outcome" } th { "Error" } }
            @for d in deliveries {
                tr data-object=(d.external_id) {
                    td { (ago(Some(d.at))) }
                    td { (d.action.as_str()) }
                    td {
                        @if link && d.kind == ObjectKind::User {
                            a href={"/accounts/" (d.external_id)} { (d.external_id) }
                        } @else { (d.external_id) }
                    }
                    td { code { (d.target_id.as_deref().unwrap_or("-")) } }
                    td { (outcome_badge(d.outcome)) }
                    td { (d.error.as_deref().unwrap_or("")) }
                }
            }
        }
    }
}

pub async fn target(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(name): Path<String>,
) -> PageResult {
    let detail = targets::target_detail(&state, &name).await?;
    let t = &detail.target;
    let open = t.status.open_hold.as_ref();
    let renames: Vec<_> = detail
        .renames
        .iter()
        .filter(|r| r.status == RenameStatus::Pending || r.status == RenameStatus::Approved)
        .collect();
    let disabled = !caller.is_admin();
    Ok(page(
        &name,
        &caller,
        html! {
            h1 { (name) " " span.muted { "(" (t.kind) ", " (sending(t.enabled)) ")" } }
            table #target-status .cards {
                tr { th { "Target" } th { "Waiting" } th { "Refused" } th { "Last delivery" } th { "Last unattended pass" } th { "Hold" } }
                (target_row(t))
            }
            @if let Some(hold) = open {
                h2 #hold { "Held mass suspension" }
                div.panel #target-hold {
                    p { "Hold " (hold.id) " withholds " strong { (hold.hold.suspend.len()) " suspensions" } " and " strong { (hold.hold.delete.len()) " deletions" } " of " (hold.hold.population) " accounts; opened " (ago(Some(hold.opened_at))) "." }
                    @if !hold.hold.suspend.is_empty() {
                        p { "Would be suspended:" }
                        ul #held-suspend { @for who in &hold.hold.suspend { li { (who) } } }
                    }
                    @if !hold.hold.delete.is_empty() {
                        p { "Would be deleted:" }
                        ul #held-delete { @for who in &hold.hold.delete { li { (who) } } }
                    }
                    p.muted { "Digest reviewed: " code #target-digest { (hold.hold.digest) } ". Check the list against the school's leavers before confirming; the next delivery then sends it." }
                    (post_form(&caller, &format!("/targets/{name}/holds/{}/confirm", hold.id), html! {
                        input type="hidden" name="digest" value=(hold.hold.digest);
                        button.primary #confirm-target-hold type="submit" disabled[disabled] { "Confirm these suspensions" }
                    }))
                    @if disabled { p.muted { "Confirming needs an admin token." } }
                }
            }
            h2 { "What waits (" (detail.pending.len()) ")" }
            @if detail.pending.is_empty() { p.muted { "Nothing waits." } }
            @else { (pending_table(Some("pending"), &detail.pending)) }
            @if !renames.is_empty() {
                h2 { "Renames waiting for approval (" (renames.len()) ")" }
                p.muted { "A login never changes without an operator. Approved, it changes on the next delivery; rejected, it stays and is not asked about again (also " code { "rostersync targets approve-rename|reject-rename" } ")." }
                table #renames {
                    tr { th { "Account" } th { "From" } th { "To" } th { "Status" } }
                    @for r in &renames {
                        tr {
                            td { a href={"/accounts/" (r.external_id)} { (r.external_id) } }
                            td { (r.from) } td { (r.to) } td { (r.status.as_str()) }
                        }
                        @if r.status == RenameStatus::Pending && caller.is_admin() {
                            tr.answers {
                                td colspan="4" {
                                    @for (answer, label) in [("approve", "Approve"), ("reject", "Keep the login")] {
                                        (post_form(&caller, &format!("/targets/{name}/renames/{}", r.external_id), html! {
                                            input type="hidden" name="to" value=(r.to);
                                            input type="hidden" name="answer" value=(answer);
                                            button type="submit" id={(answer) "-rename-" (r.external_id)} aria-label={(label) ": " (r.from) " to " (r.to)} { (label) }
                                        }))
                                        " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Recent deliveries" }
            @if detail.deliveries.is_empty() { p.muted { "Nothing was delivered yet." } }
            @else { div #deliveries { (delivery_table(&detail.deliveries, true)) } }
            @let answered: Vec<_> = detail.holds.iter().filter(|h| h.status != rostersync_store::HoldStatus::Open).collect();
            @if !answered.is_empty() {
                h2 { "Earlier holds" }
                table #target-holds {
                    tr { th { "Hold" } th { "Suspensions" } th { "Deletions" } th { "Status" } th { "By" } th { "When" } }
                    @for h in &answered {
                        tr { td { (h.id) } td { (h.hold.suspend.len()) } td { (h.hold.delete.len()) } td { (status_badge(h.status.as_str())) } td { (h.answered_by.as_deref().unwrap_or("")) } td { (ago(h.answered_at)) } }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct DigestForm {
    digest: String,
}

pub async fn confirm_target_hold(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path((name, id)): Path<(String, i64)>,
    Form(form): Form<DigestForm>,
) -> PageResult {
    targets::confirm(&state, &caller, &name, id, &form.digest).await?;
    Ok(Redirect::to(&format!("/targets/{name}")).into_response())
}

/// Approves or rejects a rename from the target's page.
pub async fn answer_rename(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path((name, account)): Path<(String, String)>,
    Form(answer): Form<targets::RenameAnswer>,
) -> PageResult {
    targets::answer_rename(&state, &caller, &name, &account, &answer).await?;
    Ok(Redirect::to(&format!("/targets/{name}")).into_response())
}

/// One account's trace: its source records, what is wrong with them, the
/// account, and where it stands in every target.
pub async fn account(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<String>,
) -> PageResult {
    Ok(timeline_page(
        &caller,
        &targets::timeline(&state, &id).await?,
    ))
}

/// A source person's timeline: their account's page when one is linked.
pub async fn person(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path((connection, source_id)): Path<(String, String)>,
) -> PageResult {
    let timeline = targets::person_timeline(&state, &connection, &source_id).await?;
    if let Some(account) = &timeline.account {
        return Ok(Redirect::to(&format!("/accounts/{}", account.id)).into_response());
    }
    Ok(timeline_page(&caller, &timeline))
}

fn timeline_page(caller: &Caller, timeline: &targets::Timeline) -> Response {
    let title = match (&timeline.account, timeline.sources.first()) {
        (Some(a), _) => a.display_name.clone(),
        (None, Some(s)) => s.name.clone().unwrap_or_else(|| s.source_id.clone()),
        (None, None) => "Timeline".into(),
    };
    page(
        &title,
        caller,
        html! {
            @match &timeline.account {
                Some(a) => {
                    h1 { (a.display_name) " " span.muted { "(" (a.role) ")" } }
                    div.panel #account {
                        p { "Account " code { (a.id) } " · " (status_badge(a.status.as_str())) }
                        p.muted {
                            "Login " (a.username.as_deref().unwrap_or("-")) " · email " (a.email.as_deref().unwrap_or("-"))
                            " · MIS id " (a.mis_id.as_deref().unwrap_or("-"))
                            @if let Some(by) = &a.created_by { " · made by " (by) }
                        }
                    }
                }
                None => {
                    h1 { (title) }
                    div.panel #account { p { (badge("failed", "no account")) " No account is linked to this person." } }
                }
            }
            h2 { "Source records" }
            @if timeline.sources.is_empty() { p.muted { "No connection links a source person to this account." } }
            @for s in &timeline.sources {
                div.panel.source data-connection=(s.connection) {
                    p {
                        a href={"/connections/" (s.connection)} { (s.connection) } " · source id " code { (s.source_id) }
                        @if s.in_roster { " · " (badge("succeeded", "in the roster")) }
                        @else { " · " (badge("failed", "no longer in the roster")) }
                    }
                    @if s.in_roster {
                        p.muted {
                            (s.name.as_deref().unwrap_or("(no name)"))
                            @if let Some(year) = &s.year_group { " · year " (year) }
                            @if let Some(reg) = &s.registration_group { " · registration " (reg) }
                            @if let Some(left) = &s.leaving_date { " · leaves " (left) }
                        }
                    }
                    @if s.issues.is_empty() { p.muted { "No standing issues." } }
                    @else {
                        ul.issues { @for i in &s.issues { li { strong { (i.message) } " " span.muted { (i.fix) } } } }
                    }
                }
            }
            h2 { "Targets" }
            @if timeline.targets.is_empty() { p.muted { "No targets are configured." } }
            @for t in &timeline.targets {
                div.panel.trace data-target=(t.target) {
                    h3 { a href={"/targets/" (t.target)} { (t.target) } @if !t.enabled { " " span.muted { "(preview only)" } } }
                    p.verdict { (t.verdict) }
                    @if let Some(entry) = &t.ledger {
                        p.ledger {
                            "Ledger: " (status_badge(entry.state.as_str())) " as " (entry.username.as_deref().unwrap_or("-"))
                            @if let Some(email) = &entry.email { " · " (email) }
                            " · target id " code { (entry.target_id.as_deref().unwrap_or("-")) }
                            @if let Some(at) = entry.suspended_at { " · suspended " (ago(Some(at))) }
                        }
                    }
                    @if !t.groups.is_empty() { p.muted { "In groups: " (t.groups.join(", ")) } }
                    @if !t.pending.is_empty() { (pending_table(None, &t.pending)) }
                    @if t.deliveries.is_empty() { p.muted { "No deliveries of this account." } }
                    @else { (delivery_table(&t.deliveries, false)) }
                }
            }
        },
    )
}

pub async fn plugins(State(state): State<AppState>, PageCaller(caller): PageCaller) -> PageResult {
    let plugins = api::plugin_list(&state).await?;
    Ok(page(
        "Plugins",
        &caller,
        html! {
            h1 { "Plugins" }
            p.muted { "Connector files in " (state.service.runtime().plugin_dir().display()) ". Drop a new .wasm file there and it is loaded; a broken file never replaces a working one. A file that replaces an accepted one runs with its connections' secrets only once an admin accepts it." }
            table #plugins {
                tr { th { "Name" } th { "Provider" } th { "Version" } th { "Contract" } th { "Status" } }
                @for view in &plugins {
                    @let p = &view.summary;
                    tr id={"plugin-" (p.name)} {
                        td { (p.name) }
                        td { (p.provider.as_deref().unwrap_or("-")) }
                        td { (p.version.as_deref().unwrap_or("-")) }
                        td { (p.wit.as_deref().unwrap_or("-")) }
                        td {
                            @if view.awaiting_acceptance {
                                (badge("held", "replaced")) " Its connections wait until it is accepted"
                                @if let Some(accepted) = &view.accepted {
                                    " (accepted: version " (accepted.version) ", sha256 " code { (accepted.sha256.get(..12).unwrap_or(&accepted.sha256)) } "…; in the folder: sha256 " code { (p.sha256.as_deref().and_then(|s| s.get(..12)).unwrap_or("-")) } "…)."
                                }
                                @if caller.is_admin() {
                                    @if let Some(sha256) = &p.sha256 {
                                        " " (post_form(&caller, &format!("/plugins/{}/accept", p.name), html! {
                                            input type="hidden" name="sha256" value=(sha256);
                                            button.primary type="submit" aria-label={"Accept the new " (p.name) " plugin"} { "Accept" }
                                        }))
                                    }
                                }
                            } @else {
                                @if p.in_service { (status_badge("succeeded")) " " } (p.status)
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Accepts a replaced plugin, as reviewed on the plugins page.
pub async fn accept_plugin(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(name): Path<String>,
    Form(reviewed): Form<api::ReviewedPlugin>,
) -> PageResult {
    api::accept_plugin(&state, &caller, &name, &reviewed.sha256).await?;
    Ok(Redirect::to("/plugins").into_response())
}

pub async fn notifications(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
) -> PageResult {
    let deliveries = state
        .service
        .store()
        .recent_notification_deliveries(api::NOTIFICATIONS_SHOWN)
        .await?;
    Ok(page(
        "Notifications",
        &caller,
        html! {
            h1 { "Notifications" }
            p.muted { "Who was told when a run was held or failed, or a connection lost or regained its provider. A failed delivery is tried again with growing waits." }
            @if deliveries.is_empty() {
                p.muted { "Nothing has been sent yet." }
            } @else {
                table id="notifications" {
                    tr { th { "Event" } th { "Connection" } th { "Channel" } th { "Status" } th { "Attempts" } th { "Last error" } th { "When" } }
                    @for d in &deliveries {
                        tr {
                            td { (d.event) }
                            td { a href={"/connections/" (d.connection)} { (d.connection) } }
                            td { (d.channel) }
                            td {
                                @match d.status {
                                    DeliveryStatus::Delivered => { (status_badge("succeeded")) " delivered" }
                                    DeliveryStatus::Retrying => { (status_badge("held")) " retrying " (ago(d.next_attempt_at)) }
                                    DeliveryStatus::GaveUp => { (status_badge("failed")) " gave up" }
                                }
                            }
                            td { (d.attempts) }
                            td { (d.last_error.as_deref().unwrap_or("")) }
                            td { (ago(Some(d.updated_at))) }
                        }
                    }
                }
            }
        },
    ))
}

/// The run's issues as CSV, for the page's download link.
pub async fn issues_csv(
    State(state): State<AppState>,
    PageCaller(_): PageCaller,
    Path(run): Path<i64>,
) -> PageResult {
    Ok(api::issues_export(&state, run).await?)
}

/// The records a hold would change as CSV, for the page's evidence link.
pub async fn hold_csv(
    State(state): State<AppState>,
    PageCaller(_): PageCaller,
    Path(id): Path<i64>,
) -> PageResult {
    Ok(api::hold_export(&state, id).await?)
}

#[derive(Deserialize)]
pub struct ModeForm {
    mode: RequestedMode,
}

pub async fn refresh(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<String>,
    Form(form): Form<ModeForm>,
) -> PageResult {
    api::request_run(&state, &caller, &id, form.mode).await?;
    Ok(Redirect::to("/").into_response())
}

fn login_page(failed: bool) -> Markup {
    bare_page(
        "Sign in",
        html! {
            h1 { "rostersync" }
            div.panel {
                form method="post" action="/login" {
                    p { label for="token" { "Admin token" } }
                    p { input #token type="password" name="token" autocomplete="current-password" size="48" autofocus; }
                    @if failed { p.error #login-error { "That token is not valid." } }
                    p { button.primary type="submit" { "Sign in" } }
                }
                p.muted { "The tokens are in the [admin] section of the configuration file, each read from an environment variable." }
            }
        },
    )
}

pub async fn login_form() -> Markup {
    login_page(false)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(form): Form<LoginForm>,
) -> Response {
    match state.gate.authenticate(ip, form.token.trim()) {
        Ok((caller, token)) => {
            let session = state
                .gate
                .sessions
                .start(caller, token, std::time::Instant::now());
            (
                [(header::SET_COOKIE, state.gate.set_cookie(&session))],
                Redirect::to("/"),
            )
                .into_response()
        }
        Err(refusal) => {
            refusal.respond((StatusCode::UNAUTHORIZED, login_page(true)).into_response())
        }
    }
}

/// Ends this browser's session.
pub async fn logout(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, _) = request.into_parts();
    if let Some(cookie) = state.gate.cookie(&parts) {
        state.gate.sessions.end(cookie);
    }
    signed_out(&state)
}

/// Ends every session started with the same token, on every browser.
pub async fn logout_everywhere(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if let Some(session) = state.gate.session(&parts) {
        state.gate.sessions.end_all_of(&session.token);
    }
    signed_out(&state)
}

fn signed_out(state: &AppState) -> Response {
    (
        [(header::SET_COOKIE, state.gate.clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::brief;

    #[test]
    fn a_long_message_is_cut_to_its_first_reason_and_a_count() {
        assert_eq!(brief("provider unavailable"), "provider unavailable");
        assert_eq!(
            brief("30 removals (12%); 45 contacts over the limit; 3 unknown types"),
            "30 removals (12%) (and 2 more reasons)"
        );
        let long = "x".repeat(500);
        assert_eq!(brief(&long).chars().count(), 161);
    }
}
