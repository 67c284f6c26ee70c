//! Provisioning targets as the API and the dashboard show them: each
//! configured target's status, one target's deliveries, what waits, its
//! holds and renames, and one account's trace from its source records
//! through every target ("why is this pupil not in app X?"). A target's
//! settings may hold secrets: no view carries them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rostersync_core::targets::{LedgerEntry, Rename, RenameStatus};
use rostersync_model::target::ObjectKind;
use rostersync_model::{EntityKind, Record};
use rostersync_store::{
    AccountRow, DeliveryRow, HoldStatus, IssueRow, PendingChange, TargetHoldRow, TargetStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::api::{ApiError, ApiResult, require_admin};
use crate::auth::{ApiCaller, Caller};

/// Deliveries a target's views list.
pub(crate) const DELIVERIES_SHOWN: i64 = 100;
/// Delivery lines a timeline shows per target.
const TIMELINE_DELIVERIES: i64 = 20;

/// A configured target and where it stands; never its settings.
#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    pub name: String,
    pub kind: &'static str,
    /// False: preview only, nothing is sent.
    pub enabled: bool,
    #[serde(flatten)]
    pub status: TargetStatus,
}

/// A change waiting to go, or refused.
#[derive(Debug, Clone, Serialize)]
pub struct PendingView {
    pub action: &'static str,
    pub external_id: String,
    /// The login or group name.
    pub label: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub refused_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl PendingView {
    fn of(change: PendingChange) -> Self {
        Self {
            action: change.item.action.as_str(),
            external_id: change.item.external_id,
            label: change.item.label,
            attempts: change.attempts,
            next_attempt_at: change.next_attempt_at,
            refused_at: change.refused_at,
            last_error: change.last_error,
        }
    }
}

/// One target with its recent deliveries (newest first), what waits, its
/// holds (newest first) and its renames.
#[derive(Debug, Clone, Serialize)]
pub struct TargetDetail {
    #[serde(flatten)]
    pub target: TargetView,
    pub deliveries: Vec<DeliveryRow>,
    pub pending: Vec<PendingView>,
    pub holds: Vec<TargetHoldRow>,
    pub renames: Vec<Rename>,
}

async fn view_of(
    state: &AppState,
    name: &str,
    kind: &'static str,
    enabled: bool,
) -> ApiResult<TargetView> {
    Ok(TargetView {
        name: name.to_string(),
        kind,
        enabled,
        status: state.service.store().target_status(name).await?,
    })
}

/// Every configured target's status, in configuration order.
pub(crate) async fn all_targets(state: &AppState) -> ApiResult<Vec<TargetView>> {
    let mut views = Vec::new();
    for config in state.service.targets().iter() {
        views.push(view_of(state, &config.name, config.kind.as_str(), config.enabled).await?);
    }
    Ok(views)
}

/// One configured target's status and everything waiting on it.
pub(crate) async fn target_detail(state: &AppState, name: &str) -> ApiResult<TargetDetail> {
    let targets = state.service.targets();
    let config = targets.iter().find(|t| t.name == name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("target {name:?} does not exist"),
        )
    })?;
    let store = state.service.store();
    Ok(TargetDetail {
        target: view_of(state, name, config.kind.as_str(), config.enabled).await?,
        deliveries: store.target_deliveries(name, DELIVERIES_SHOWN).await?,
        pending: store
            .target_changes(name)
            .await?
            .into_iter()
            .map(PendingView::of)
            .collect(),
        holds: store.target_holds(name).await?,
        renames: store.target_renames(name).await?,
    })
}

pub async fn targets(
    State(state): State<AppState>,
    _: ApiCaller,
) -> ApiResult<Json<Vec<TargetView>>> {
    Ok(Json(all_targets(&state).await?))
}

pub async fn target(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(name): Path<String>,
) -> ApiResult<Json<TargetDetail>> {
    Ok(Json(target_detail(&state, &name).await?))
}

/// The digest of the held changes an operator reviewed.
#[derive(Deserialize)]
pub struct ReviewedDigest {
    pub digest: String,
}

/// Releases a target's held mass suspension, naming the digest reviewed;
/// the audit log keeps who did it. The next delivery sends what it held.
pub(crate) async fn confirm(
    state: &AppState,
    caller: &Caller,
    name: &str,
    hold: i64,
    digest: &str,
) -> ApiResult<()> {
    require_admin(caller)?;
    let detail = target_detail(state, name).await?;
    if !detail.holds.iter().any(|h| h.id == hold) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("target {name:?} has no hold {hold}"),
        ));
    }
    state
        .service
        .store()
        .answer_target_hold(hold, digest, HoldStatus::Confirmed, &caller.name)
        .await?;
    Ok(())
}

pub async fn confirm_hold(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((name, hold)): Path<(String, i64)>,
    Json(reviewed): Json<ReviewedDigest>,
) -> ApiResult<Json<serde_json::Value>> {
    confirm(&state, &caller, &name, hold, &reviewed.digest).await?;
    Ok(Json(
        json!({ "target": name, "hold": hold, "digest": reviewed.digest, "status": "confirmed" }),
    ))
}

/// An operator's answer to a proposed change of login.
#[derive(Debug, Deserialize)]
pub struct RenameAnswer {
    /// The login proposed, as reviewed.
    pub to: String,
    /// `approve` or `reject`.
    pub answer: String,
}

/// Approves or rejects a pending rename of `external_id` on `name`,
/// audited: approved, the login changes on the next delivery; rejected,
/// it stays and the change is not asked about again.
pub(crate) async fn answer_rename(
    state: &AppState,
    caller: &Caller,
    name: &str,
    external_id: &str,
    answer: &RenameAnswer,
) -> ApiResult<RenameStatus> {
    require_admin(caller)?;
    target_detail(state, name).await?;
    let status = match answer.answer.as_str() {
        "approve" => RenameStatus::Approved,
        "reject" => RenameStatus::Rejected,
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("a rename is answered \"approve\" or \"reject\", not {other:?}"),
            ));
        }
    };
    let answered = state
        .service
        .store()
        .answer_target_rename(name, external_id, &answer.to, status, &caller.name)
        .await?;
    if !answered {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "no rename of {external_id} to {:?} is waiting on {name}",
                answer.to
            ),
        ));
    }
    Ok(status)
}

pub async fn rename(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((name, external_id)): Path<(String, String)>,
    Json(answer): Json<RenameAnswer>,
) -> ApiResult<Json<serde_json::Value>> {
    let status = answer_rename(&state, &caller, &name, &external_id, &answer).await?;
    Ok(Json(
        json!({ "target": name, "account": external_id, "to": answer.to, "status": status.as_str() }),
    ))
}

/// A source person linked to the account, as the roster holds them now.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub connection: String,
    pub source_id: String,
    /// False when the roster no longer holds the person (they left).
    pub in_roster: bool,
    pub name: Option<String>,
    pub mis_id: Option<String>,
    pub year_group: Option<String>,
    pub registration_group: Option<String>,
    pub leaving_date: Option<String>,
    /// What is wrong with the person at the source now.
    pub issues: Vec<IssueRow>,
}

/// Where the account stands in one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetTrace {
    pub target: String,
    pub enabled: bool,
    /// The answer to "why is this account (not) there?", in one sentence.
    pub verdict: String,
    /// The account's ledger entry: what the host delivered.
    pub ledger: Option<LedgerEntry>,
    /// The target's groups the account was delivered into, by name.
    pub groups: Vec<String>,
    pub pending: Vec<PendingView>,
    /// The account's delivery log lines, newest first.
    pub deliveries: Vec<DeliveryRow>,
}

/// One account (or a source person without one) from its source records
/// through every target.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// `None` for a source person no account is linked to.
    pub account: Option<AccountRow>,
    pub sources: Vec<SourceView>,
    pub targets: Vec<TargetTrace>,
}

fn join_name(parts: &[Option<&String>]) -> Option<String> {
    let words: Vec<&str> = parts.iter().flatten().map(|s| s.as_str()).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

async fn source_view(
    state: &AppState,
    connection: String,
    source_id: String,
) -> ApiResult<SourceView> {
    let store = state.service.store();
    let person = store
        .record(&connection, EntityKind::Person, &source_id)
        .await?
        .and_then(|r| match serde_json::from_str(&r.body) {
            Ok(Record::Person(person)) => Some(person),
            _ => None,
        });
    let issues = store
        .standing_issues(&connection)
        .await?
        .into_iter()
        .filter(|s| s.issue.source_id == source_id)
        .map(|s| s.issue)
        .collect();
    Ok(SourceView {
        in_roster: person.is_some(),
        name: person.as_ref().and_then(|p| {
            join_name(&[
                p.preferred_first_name.as_ref().or(p.first_name.as_ref()),
                p.last_name.as_ref(),
            ])
        }),
        mis_id: person.as_ref().and_then(|p| p.mis_id.clone()),
        year_group: person.as_ref().and_then(|p| p.year_group.clone()),
        registration_group: person.as_ref().and_then(|p| p.registration_group.clone()),
        leaving_date: person
            .as_ref()
            .and_then(|p| p.leaving_date.map(|d| d.to_string())),
        connection,
        source_id,
        issues,
    })
}

fn verdict(
    account: &AccountRow,
    served: bool,
    ledger: Option<&LedgerEntry>,
    pending: &[PendingView],
    enabled: bool,
) -> String {
    if let Some(refused) = pending.iter().find(|p| p.refused_at.is_some()) {
        return format!(
            "The target refused {} of this account: {}",
            refused.action,
            refused.last_error.as_deref().unwrap_or("no reason given")
        );
    }
    if let Some(waiting) = pending.first() {
        return match &waiting.last_error {
            Some(error) => format!("{} waits for a retry after: {error}", waiting.action),
            None if !enabled => format!("{} waits: the target is preview only", waiting.action),
            None => format!("{} waits for the next delivery", waiting.action),
        };
    }
    match ledger {
        Some(entry) => format!(
            "Delivered as {} ({}){}",
            entry.username.as_deref().unwrap_or(&account.id),
            entry.state.as_str(),
            entry
                .target_id
                .as_deref()
                .map_or(String::new(), |id| format!(", the target's id {id}"))
        ),
        None if !served => {
            "This target does not take this account: its connection or role is not one the target serves".into()
        }
        None => "Not delivered yet: no delivery has planned this account since it was made".into(),
    }
}

/// The account's trace, from its source records through every target.
pub(crate) async fn timeline(state: &AppState, id: &str) -> ApiResult<Timeline> {
    let store = state.service.store();
    let account = store.account(id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("account {id:?} does not exist"),
        )
    })?;
    let mut sources = Vec::new();
    for (connection, source_id) in store.links_to(id).await? {
        sources.push(source_view(state, connection, source_id).await?);
    }
    let role = serde_json::Value::String(account.role.clone());
    let mut targets = Vec::new();
    for config in state.service.targets().iter() {
        let name = &config.name;
        let ledger = store.target_object(name, ObjectKind::User, id).await?;
        let pending: Vec<PendingView> = store
            .target_changes(name)
            .await?
            .into_iter()
            .filter(|p| p.item.external_id == id)
            .map(PendingView::of)
            .collect();
        let served = sources.iter().any(|s| config.policy.serves(&s.connection))
            && config
                .policy
                .roles
                .iter()
                .any(|r| serde_json::to_value(r).is_ok_and(|r| r == role));
        targets.push(TargetTrace {
            target: name.clone(),
            enabled: config.enabled,
            verdict: verdict(&account, served, ledger.as_ref(), &pending, config.enabled),
            groups: store
                .target_groups_of(name, id)
                .await?
                .into_iter()
                .map(|g| g.username.unwrap_or(g.external_id))
                .collect(),
            deliveries: store
                .target_deliveries_of(name, id, TIMELINE_DELIVERIES)
                .await?,
            ledger,
            pending,
        });
    }
    Ok(Timeline {
        account: Some(account),
        sources,
        targets,
    })
}

/// A source person's trace: their account's when one is linked, else
/// the record, its issues and, per target, that nothing is delivered.
pub(crate) async fn person_timeline(
    state: &AppState,
    connection: &str,
    source_id: &str,
) -> ApiResult<Timeline> {
    let store = state.service.store();
    if let Some(account) = store.links(connection).await?.get(source_id) {
        return timeline(state, account).await;
    }
    let source = source_view(state, connection.to_string(), source_id.to_string()).await?;
    if !source.in_roster && source.issues.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("connection {connection:?} has no person {source_id:?}"),
        ));
    }
    let verdict = if source.issues.is_empty() {
        "No account is linked to this person, so no target gets them".to_string()
    } else {
        "No account is linked to this person, so no target gets them: see the issues at the source"
            .to_string()
    };
    let targets = state
        .service
        .targets()
        .iter()
        .map(|config| TargetTrace {
            target: config.name.clone(),
            enabled: config.enabled,
            verdict: verdict.clone(),
            ledger: None,
            groups: Vec::new(),
            pending: Vec::new(),
            deliveries: Vec::new(),
        })
        .collect();
    Ok(Timeline {
        account: None,
        sources: vec![source],
        targets,
    })
}

pub async fn person(
    State(state): State<AppState>,
    _: ApiCaller,
    Path((connection, source_id)): Path<(String, String)>,
) -> ApiResult<Json<Timeline>> {
    Ok(Json(
        person_timeline(&state, &connection, &source_id).await?,
    ))
}

pub async fn account_timeline(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Timeline>> {
    Ok(Json(timeline(&state, &id).await?))
}
