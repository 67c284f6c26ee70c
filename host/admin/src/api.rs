//! The JSON API: everything the command line does, for scripts and for
//! the dashboard's live views. Reads need any token; anything that changes
//! state (runs, holds, accounts) needs an admin token and is audited under
//! the token's name.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rostersync_core::{HoldAnswer, HoldReason, Refusal};
use rostersync_service::{ConnectionView, ServiceError};
use rostersync_store::{
    AccountRow, AuditEntry, Enqueued, HoldRow, IssueRow, NotificationDelivery, QueuedRun, RunMode,
    RunSummary, Stamps, StoreError,
};
use rostersync_sync::{
    AcceptError, Accepted, AnswerView, Answered, Answering, ConnectionConfig, PluginView, Progress,
    SyncError, accept_in_service, plugin_views,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

use crate::AppState;
use crate::auth::{ApiCaller, Caller};

/// A failed request: its status and one sentence saying why.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, &self.message)
    }
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} does not exist"))
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let status = match refusal {
            Refusal::Answered(_) | Refusal::RevisionNotCurrent { .. } => StatusCode::CONFLICT,
            Refusal::NotOffered { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, refusal.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Refused(refusal) => refusal.into(),
            other => {
                tracing::error!(error = %other, "the store failed under an admin request");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        let status = match &error {
            SyncError::NoSuchHold(_)
            | SyncError::NoSuchAccount(_)
            | SyncError::NoSuchRevision { .. } => StatusCode::NOT_FOUND,
            SyncError::Refused(refusal) => {
                return refusal.clone().into();
            }
            SyncError::NotThisConnections { .. } => StatusCode::CONFLICT,
            SyncError::Store(_) | SyncError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

impl From<AcceptError> for ApiError {
    fn from(error: AcceptError) -> Self {
        match error {
            AcceptError::NotInService(_) => Self::new(StatusCode::NOT_FOUND, error.to_string()),
            AcceptError::NotReviewed { .. } => Self::new(StatusCode::CONFLICT, error.to_string()),
            AcceptError::Sync(error) => error.into(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::NoSuchConnection(id) => Self::not_found(format!("connection {id:?}")),
            ServiceError::Store(error) => error.into(),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Refuses a read-only caller with 403.
pub(crate) fn require_admin(caller: &Caller) -> ApiResult<()> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} is read-only; this needs an admin token",
                caller.name
            ),
        ))
    }
}

/// A queued or running run with its progress.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveRun {
    #[serde(flatten)]
    pub run: QueuedRun,
    pub live: Option<Progress>,
}

/// A connection as the status views show it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionStatus {
    #[serde(flatten)]
    pub connection: ConnectionView,
    pub last_changed: Option<DateTime<Utc>>,
    pub last_checked: Option<DateTime<Utc>>,
    pub last_run: Option<RunSummary>,
    pub active_run: Option<ActiveRun>,
    pub open_hold: Option<i64>,
}

/// A hold with its reasons in words, the answers its type offers and what
/// to check before answering.
#[derive(Debug, Clone, Serialize)]
pub struct HoldView {
    #[serde(flatten)]
    pub hold: HoldRow,
    pub why: Vec<String>,
    pub answers: Vec<AnswerView>,
    pub checks: Vec<&'static str>,
    /// The records the hold is about, counted and grouped; one hold's
    /// view only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

impl HoldView {
    pub(crate) fn of(hold: HoldRow) -> Self {
        let why = serde_json::from_str::<Vec<HoldReason>>(&hold.reasons)
            .map(|reasons| reasons.iter().map(ToString::to_string).collect())
            .unwrap_or_else(|_| vec![hold.reasons.clone()]);
        Self {
            answers: AnswerView::all(hold.kind),
            checks: hold.kind.checks().to_vec(),
            hold,
            why,
            held: Vec::new(),
        }
    }
}

pub(crate) async fn active_run(state: &AppState, run: QueuedRun) -> ApiResult<ActiveRun> {
    let live = if run.state.is_active() {
        state.service.progress(run.id).await?
    } else {
        None
    };
    Ok(ActiveRun { run, live })
}

pub(crate) async fn connection_status(
    state: &AppState,
    connection: ConnectionView,
) -> ApiResult<ConnectionStatus> {
    let store = state.service.store();
    let stamps = store.stamps(&connection.id).await?;
    let last_run = store
        .run_history(&connection.id, 1)
        .await?
        .into_iter()
        .next();
    let active = store.active_run(&connection.id).await?;
    let open_hold = store.open_hold(&connection.id).await?.map(|h| h.id);
    status_of(state, connection, stamps, last_run, active, open_hold).await
}

async fn status_of(
    state: &AppState,
    connection: ConnectionView,
    stamps: Stamps,
    last_run: Option<RunSummary>,
    active: Option<QueuedRun>,
    open_hold: Option<i64>,
) -> ApiResult<ConnectionStatus> {
    let active_run = match active {
        Some(run) => Some(active_run(state, run).await?),
        None => None,
    };
    Ok(ConnectionStatus {
        connection,
        last_changed: stamps.last_changed,
        last_checked: stamps.last_checked,
        last_run,
        active_run,
        open_hold,
    })
}

/// Every connection's status in a handful of queries, however many
/// connections there are, so the overview stays quick for a whole trust
/// while its runs write.
pub(crate) async fn all_connections(state: &AppState) -> ApiResult<Vec<ConnectionStatus>> {
    let store = state.service.store();
    let mut stamps = store.all_stamps().await?;
    let mut latest = store.latest_runs().await?;
    let mut active: HashMap<String, QueuedRun> = store
        .active_runs()
        .await?
        .into_iter()
        .map(|run| (run.connection.clone(), run))
        .collect();
    let open_holds: HashMap<String, i64> = store
        .holds(false)
        .await?
        .into_iter()
        .map(|hold| (hold.connection, hold.id))
        .collect();
    let mut statuses = Vec::new();
    for view in state.service.connections(Utc::now()) {
        let id = view.id.clone();
        statuses.push(
            status_of(
                state,
                view,
                stamps.remove(&id).unwrap_or_default(),
                latest.remove(&id),
                active.remove(&id),
                open_holds.get(&id).copied(),
            )
            .await?,
        );
    }
    Ok(statuses)
}

fn connection_view(state: &AppState, id: &str) -> ApiResult<ConnectionView> {
    state
        .service
        .connections(Utc::now())
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found(format!("connection {id:?}")))
}

pub async fn connections(
    State(state): State<AppState>,
    _: ApiCaller,
) -> ApiResult<Json<Vec<ConnectionStatus>>> {
    Ok(Json(all_connections(&state).await?))
}

pub async fn connection(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionStatus>> {
    let view = connection_view(&state, &id)?;
    Ok(Json(connection_status(&state, view).await?))
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

pub async fn history(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<String>,
    Query(limit): Query<Limit>,
) -> ApiResult<Json<Vec<RunSummary>>> {
    connection_view(&state, &id)?;
    let limit = limit.limit.unwrap_or(50).clamp(1, 1000);
    Ok(Json(state.service.store().run_history(&id, limit).await?))
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestedMode {
    #[default]
    Delta,
    Full,
}

impl RequestedMode {
    pub(crate) fn run_mode(self) -> RunMode {
        match self {
            Self::Delta => RunMode::Delta,
            Self::Full => RunMode::Full,
        }
    }
}

#[derive(Deserialize, Default)]
pub struct RunRequestBody {
    #[serde(default)]
    mode: RequestedMode,
}

#[derive(Serialize)]
pub struct RunRequested {
    /// False when the request joined a run already queued or running.
    queued: bool,
    run: ActiveRun,
}

pub(crate) async fn request_run(
    state: &AppState,
    caller: &Caller,
    id: &str,
    mode: RequestedMode,
) -> ApiResult<Enqueued> {
    require_admin(caller)?;
    Ok(state
        .service
        .request_run(id, mode.run_mode(), &caller.name)
        .await?)
}

pub async fn start_run(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    body: Option<Json<RunRequestBody>>,
) -> ApiResult<(StatusCode, Json<RunRequested>)> {
    let mode = body.map(|Json(b)| b.mode).unwrap_or_default();
    let enqueued = request_run(&state, &caller, &id, mode).await?;
    let queued = matches!(enqueued, Enqueued::Queued(_));
    let run = active_run(&state, enqueued.run().clone()).await?;
    Ok((StatusCode::ACCEPTED, Json(RunRequested { queued, run })))
}

pub async fn queue(State(state): State<AppState>, _: ApiCaller) -> ApiResult<Json<Vec<ActiveRun>>> {
    let mut runs = Vec::new();
    for run in state.service.store().active_runs().await? {
        runs.push(active_run(&state, run).await?);
    }
    Ok(Json(runs))
}

pub async fn queued(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Json<ActiveRun>> {
    let run = state
        .service
        .store()
        .queued_run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("queued run {id}")))?;
    Ok(Json(active_run(&state, run).await?))
}

pub async fn issues(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(run): Path<i64>,
) -> ApiResult<Json<Vec<IssueRow>>> {
    Ok(Json(state.service.store().run_issues(run).await?))
}

pub(crate) fn csv_download(file_name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A run's issues as a CSV download (the API's and the dashboard's).
pub(crate) async fn issues_export(state: &AppState, run: i64) -> ApiResult<Response> {
    let body = state.service.store().issues_csv(run).await?;
    Ok(csv_download(&format!("run-{run}-issues.csv"), body))
}

pub async fn issues_csv(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(run): Path<i64>,
) -> ApiResult<Response> {
    issues_export(&state, run).await
}

#[derive(Deserialize)]
pub struct HoldFilter {
    #[serde(default)]
    all: bool,
}

pub async fn holds(
    State(state): State<AppState>,
    _: ApiCaller,
    Query(filter): Query<HoldFilter>,
) -> ApiResult<Json<Vec<HoldView>>> {
    let holds = state.service.store().holds(filter.all).await?;
    Ok(Json(holds.into_iter().map(HoldView::of).collect()))
}

pub(crate) async fn find_hold(state: &AppState, id: i64) -> ApiResult<HoldView> {
    state
        .service
        .store()
        .hold(id)
        .await?
        .map(HoldView::of)
        .ok_or_else(|| ApiError::not_found(format!("hold {id}")))
}

/// One hold with the records it is about, counted and grouped.
pub(crate) async fn hold_detail(state: &AppState, id: i64) -> ApiResult<HoldView> {
    let mut view = find_hold(state, id).await?;
    view.held = rostersync_sync::hold_summary(state.service.store(), id)
        .await?
        .held;
    Ok(view)
}

pub async fn hold(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Json<HoldView>> {
    Ok(Json(hold_detail(&state, id).await?))
}

/// The records a hold would change as a CSV download (the API's and the
/// dashboard's).
pub(crate) async fn hold_export(state: &AppState, id: i64) -> ApiResult<Response> {
    let body = rostersync_sync::export_hold_csv(state.service.store(), id, None).await?;
    Ok(csv_download(&format!("hold-{id}.csv"), body))
}

pub async fn hold_csv(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    hold_export(&state, id).await
}

/// Which revision of a hold an operator confirms: the digest they reviewed.
#[derive(Deserialize)]
pub struct Reviewed {
    pub revision: String,
}

/// An answer to a hold, as the API and the dashboard's confirmation step
/// send it.
#[derive(Deserialize)]
pub struct AnswerBody {
    /// One of the answers the hold's type offers (`confirm-removals`,
    /// `reject`, `create-accounts`, `dont-create`, `apply-changes`,
    /// `fixed-it`).
    pub answer: String,
    /// The digest of the revision reviewed.
    pub revision: String,
    #[serde(default)]
    pub comment: Option<String>,
    /// The caller showed the answer's consequence and the operator agreed:
    /// the confirmation step. An answer without it changes nothing.
    #[serde(default)]
    pub confirmed: bool,
}

/// What answering did, and the run it queued for "I fixed it".
#[derive(Debug, Serialize)]
pub struct AnswerResult {
    pub hold: i64,
    pub answer: HoldAnswer,
    #[serde(flatten)]
    pub answered: Answered,
    pub queued_run: Option<i64>,
}

fn configured(state: &AppState, hold: &HoldRow) -> ApiResult<ConnectionConfig> {
    state.service.connection(&hold.connection).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "hold {} belongs to connection {:?}, which is no longer configured",
                hold.id, hold.connection
            ),
        )
    })
}

/// Answers a hold with one of its type's answers, once confirmed; "I
/// fixed it" queues a run of the connection.
pub(crate) async fn answer(
    state: &AppState,
    caller: &Caller,
    id: i64,
    body: &AnswerBody,
) -> ApiResult<AnswerResult> {
    require_admin(caller)?;
    let hold = find_hold(state, id).await?.hold;
    let answer = HoldAnswer::parse(hold.kind, &body.answer).ok_or_else(|| {
        let offered: Vec<&str> = hold.kind.answers().iter().map(|a| a.as_str()).collect();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "hold {id} is a {} hold; it offers {}, not {:?}",
                hold.kind,
                offered.join(" or "),
                body.answer
            ),
        )
    })?;
    if !body.confirmed {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            format!(
                "answering hold {id} {:?} needs \"confirmed\": true once the operator agreed to what it does: {}",
                answer.label(),
                answer.consequence()
            ),
        ));
    }
    let connection = configured(state, &hold)?;
    let answered = rostersync_sync::answer_hold(
        state.service.store(),
        &connection,
        id,
        Answering {
            answer,
            revision: &body.revision,
            by: &caller.name,
            comment: body.comment.as_deref(),
        },
    )
    .await?;
    let queued_run = if answered == Answered::RunAgain {
        let enqueued = state
            .service
            .request_run(&hold.connection, RunMode::Delta, &caller.name)
            .await?;
        Some(enqueued.run().id)
    } else {
        None
    };
    Ok(AnswerResult {
        hold: id,
        answer,
        answered,
        queued_run,
    })
}

pub async fn answer_hold(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
    Json(body): Json<AnswerBody>,
) -> ApiResult<Json<AnswerResult>> {
    Ok(Json(answer(&state, &caller, id, &body).await?))
}

/// Confirms a hold with its type's go-ahead answer: applies the kept
/// change set of the revision reviewed as a run of its own.
pub(crate) async fn confirm(
    state: &AppState,
    caller: &Caller,
    id: i64,
    revision: &str,
) -> ApiResult<i64> {
    require_admin(caller)?;
    let hold = find_hold(state, id).await?;
    let connection = configured(state, &hold.hold)?;
    Ok(rostersync_sync::confirm_hold(
        state.service.store(),
        &connection,
        id,
        revision,
        &caller.name,
    )
    .await?)
}

pub async fn confirm_hold(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
    Json(reviewed): Json<Reviewed>,
) -> ApiResult<Json<serde_json::Value>> {
    let run_id = confirm(&state, &caller, id, &reviewed.revision).await?;
    Ok(Json(
        json!({ "hold": id, "revision": reviewed.revision, "status": "confirmed", "run_id": run_id }),
    ))
}

/// Answers a hold with its type's answer that applies nothing of what it
/// is about.
pub async fn reject_hold(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&caller)?;
    let hold = find_hold(&state, id).await?.hold;
    let connection = configured(&state, &hold)?;
    let answered =
        rostersync_sync::reject_hold(state.service.store(), &connection, id, &caller.name).await?;
    let status = match answered {
        Answered::Next { .. } => "open",
        Answered::Applied { .. } => "confirmed",
        Answered::Closed | Answered::RunAgain => "rejected",
    };
    Ok(Json(
        json!({ "hold": id, "status": status, "answer": hold.kind.stop(), "answered": answered }),
    ))
}

/// Forgets the contacts a hold declined, so the next run asks again.
pub async fn reconsider_hold(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&caller)?;
    find_hold(&state, id).await?;
    let forgotten =
        rostersync_sync::reconsider_hold(state.service.store(), id, &caller.name).await?;
    Ok(Json(json!({ "hold": id, "forgotten": forgotten })))
}

pub async fn account(
    State(state): State<AppState>,
    _: ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<AccountRow>> {
    state
        .service
        .store()
        .account(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("account {id:?}")))
}

#[derive(Deserialize)]
pub struct AccountAction {
    /// The connection that provisioned the account.
    connection: String,
}

pub async fn delete_account(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Json(action): Json<AccountAction>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&caller)?;
    rostersync_sync::delete_account(state.service.store(), &action.connection, &id, &caller.name)
        .await?;
    Ok(account_done(&id, "deleted"))
}

pub async fn unlink_account(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Json(action): Json<AccountAction>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&caller)?;
    rostersync_sync::unlink_account(state.service.store(), &action.connection, &id, &caller.name)
        .await?;
    Ok(account_done(&id, "unlinked"))
}

fn account_done(id: &str, status: &str) -> Json<serde_json::Value> {
    Json(json!({ "account": id, "status": status }))
}

pub(crate) async fn plugin_list(state: &AppState) -> ApiResult<Vec<PluginView>> {
    Ok(plugin_views(state.service.store(), state.service.runtime()).await?)
}

pub async fn plugins(
    State(state): State<AppState>,
    _: ApiCaller,
) -> ApiResult<Json<Vec<PluginView>>> {
    Ok(Json(plugin_list(&state).await?))
}

/// The plugin file an operator reviewed, by its sha256.
#[derive(Debug, Deserialize)]
pub struct ReviewedPlugin {
    pub sha256: String,
}

/// Accepts the plugin in service under `name`, if it is still the one
/// reviewed: its connections run with it from now on.
pub(crate) async fn accept_plugin(
    state: &AppState,
    caller: &Caller,
    name: &str,
    reviewed: &str,
) -> ApiResult<serde_json::Value> {
    require_admin(caller)?;
    let (build, accepted) = accept_in_service(
        state.service.store(),
        state.service.runtime(),
        name,
        Some(reviewed),
        &caller.name,
    )
    .await?;
    Ok(json!({
        "plugin": build.connector,
        "sha256": build.sha256,
        "version": build.version,
        "already": accepted == Accepted::Already,
    }))
}

pub async fn accept_plugin_api(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    Json(reviewed): Json<ReviewedPlugin>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        accept_plugin(&state, &caller, &name, &reviewed.sha256).await?,
    ))
}

pub async fn audit(
    State(state): State<AppState>,
    _: ApiCaller,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    Ok(Json(state.service.store().audit_log().await?))
}

/// The latest notification deliveries, per channel, most recent first.
pub async fn notifications(
    State(state): State<AppState>,
    _: ApiCaller,
) -> ApiResult<Json<Vec<NotificationDelivery>>> {
    Ok(Json(
        state
            .service
            .store()
            .recent_notification_deliveries(NOTIFICATIONS_SHOWN)
            .await?,
    ))
}

/// Deliveries the notifications views list.
pub(crate) const NOTIFICATIONS_SHOWN: i64 = 100;

/// Up when the store answers and every worker is on duty and reaching
/// it; no token needed, so a load balancer can ask.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let health = state.service.health();
    if !health.is_healthy() {
        let why = health.store_error.unwrap_or_else(|| {
            format!(
                "{} of {} workers are taking runs",
                health.workers_on_duty, health.workers_configured
            )
        });
        return error_response_unavailable(&why);
    }
    match state.service.store().active_runs().await {
        Ok(_) => Json(json!({ "status": "ok" })).into_response(),
        Err(error) => error_response_unavailable(&error.to_string()),
    }
}

fn error_response_unavailable(message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "error": message })),
    )
        .into_response()
}
