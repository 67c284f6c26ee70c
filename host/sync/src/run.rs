//! One run of one connection: read, validate, diff, keep links to stored
//! ends only, provision, check the holds and whether validation left out
//! too much of a role, then apply, hold, apply only what is not
//! destructive (an incomplete run) or only report, with its history row,
//! issues, standing issues, change log and outbox events in the same
//! transaction.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use rostersync_core::answers::declined_issue;
use rostersync_core::entity::{identity, removal_identity};
use rostersync_core::integrity::{self, shown_key};
use rostersync_core::{
    Census, ChangeSet, ContentHash, Diff, EntityKey, EntityKind, HoldKind, HoldReason, Issue,
    PriorHashes, RunHistory, Tally, Validator, check_holds, shortfalls,
};
use rostersync_model::{Mode, Person, Record, Role};
use rostersync_runtime::RunError;
use rostersync_store::{
    HoldWrite, Lease, Notification, OutboxEvent, RunMode, RunRecord, StandingWrite, Store,
    StoredRecord, WriteSet,
};
use serde_json::json;

use crate::holds;
use crate::progress::{Observer, Phase, Progress};
use crate::provision::{self, Context, Counts, issue_row, role_name};
use crate::source::{OpenSource, RecordSource, is_unreachable};
use crate::trust;
use crate::{ConnectionConfig, SyncError};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRequest {
    /// A delta resumes from the last applied cursor; without one, or for a
    /// connector without delta reads, the run is full.
    pub mode: RunMode,
    /// The whole pipeline, the change set and the holds it would trip,
    /// reported and kept; nothing applied.
    pub dry_run: bool,
    /// A full re-run that also offers every stored person without an
    /// account to provisioning again.
    pub forced: bool,
    /// The school's date, for the validation windows.
    pub today: NaiveDate,
    /// In a blackout that lets additions through: creates and updates
    /// apply, removals wait in a hold for an operator.
    pub additions_only: bool,
    /// The queue run this is, when it was claimed from the queue: its
    /// writes commit only while its lease holds.
    pub lease: Option<Lease>,
}

impl RunRequest {
    pub fn new(mode: RunMode, today: NaiveDate) -> Self {
        Self {
            mode,
            dry_run: false,
            forced: false,
            today,
            additions_only: false,
            lease: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Succeeded,
    SucceededWithIssues,
    /// Validation left out more than the connection allows of a role: what
    /// is valid was created and updated, nothing was removed.
    Incomplete,
    Held,
    Failed,
    DryRun,
}

impl RunStatus {
    const ALL: [Self; 6] = [
        Self::Succeeded,
        Self::SucceededWithIssues,
        Self::Incomplete,
        Self::Held,
        Self::Failed,
        Self::DryRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::SucceededWithIssues => "succeeded-with-issues",
            Self::Incomplete => "incomplete",
            Self::Held => "held",
            Self::Failed => "failed",
            Self::DryRun => "dry-run",
        }
    }

    /// A status as the history stores it.
    pub fn parse(status: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == status)
    }
}

/// One role's people: how many the run read, how many validation left
/// out, and how many active accounts the connection links after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RoleCount {
    pub role: Role,
    pub read: usize,
    pub left_out: usize,
    pub accounts: i64,
}

/// What a dry run found, as a script reads it from the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRunVerdict {
    Clean,
    ChangesPending,
    WouldHold,
}

/// What a run did, for the CLI, the demo and the dashboard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub connection: String,
    pub run_id: i64,
    pub status: RunStatus,
    pub mode: &'static str,
    pub records_read: u64,
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
    pub issues: usize,
    /// Per role: read, left out, active accounts.
    pub roles: Vec<RoleCount>,
    /// Why the run is (or would be) incomplete, one line per rule.
    pub incomplete: Vec<String>,
    /// Why the run was (or would be) held.
    pub holds: Vec<String>,
    /// The records a held run waits on, counted and grouped
    /// (`3 removals held: 3 students in Year 9`).
    pub held: Vec<String>,
    /// The open hold the run waits on.
    pub hold: Option<i64>,
    /// Why the run failed.
    pub error: Option<String>,
    #[serde(with = "millis")]
    pub elapsed: Duration,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u128(d.as_millis())
    }
}

impl RunReport {
    pub fn dry_run_verdict(&self) -> DryRunVerdict {
        if !self.holds.is_empty() {
            DryRunVerdict::WouldHold
        } else if self.created + self.updated + self.removed > 0 {
            DryRunVerdict::ChangesPending
        } else {
            DryRunVerdict::Clean
        }
    }
}

/// What a complete read produced.
struct Read {
    changes: ChangeSet,
    prior: PriorHashes,
    issues: Vec<Issue>,
    tally: Tally,
    /// A delta's records, as issues name them: whose standing issues this
    /// run settles. `None` for a full read, which settles them all.
    settled: Option<Vec<String>>,
    records_read: u64,
    cursor: Option<String>,
}

/// Runs one connection once. A failed read, a held change set and a dry
/// run are outcomes in the report; only a store failure is an error.
pub async fn run<S: OpenSource>(
    store: &Store,
    connection: &ConnectionConfig,
    source: &S,
    request: RunRequest,
) -> Result<RunReport, SyncError> {
    run_observed(store, connection, source, request, &|_| {}).await
}

/// [`run`], telling `observer` how far it has got.
pub async fn run_observed<S: OpenSource>(
    store: &Store,
    connection: &ConnectionConfig,
    source: &S,
    request: RunRequest,
    observer: Observer<'_>,
) -> Result<RunReport, SyncError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let id = connection.id.as_str();
    store.ensure_connection(id, source.connector()).await?;
    let cursor = match request.mode {
        RunMode::Delta if source.reads_deltas() && !request.forced => store.last_cursor(id).await?,
        _ => None,
    };
    let (mode, run_mode) = match cursor {
        Some(cursor) => (Mode::Delta(cursor), RunMode::Delta),
        None => (Mode::Full, RunMode::Full),
    };
    let mut run = RunRecord::new(run_mode, RunStatus::Failed.as_str(), started_at);
    run.dry_run = request.dry_run;
    let mut report = RunReport {
        connection: id.to_string(),
        run_id: 0,
        status: RunStatus::Failed,
        mode: if run_mode == RunMode::Full {
            "full"
        } else {
            "delta"
        },
        records_read: 0,
        created: 0,
        updated: 0,
        removed: 0,
        issues: 0,
        roles: Vec::new(),
        incomplete: Vec::new(),
        holds: Vec::new(),
        held: Vec::new(),
        hold: None,
        error: None,
        elapsed: Duration::ZERO,
    };
    let run_token = format!(
        "{id}:{}",
        started_at.timestamp_nanos_opt().unwrap_or_default()
    );

    let mut progress = Progress::default();
    if run_mode == RunMode::Full {
        progress.estimated_total = store
            .run_history(id, 20)
            .await?
            .iter()
            .find(|run| run.mode == "full" && run.status != RunStatus::Failed.as_str())
            .map(|run| run.records_read as u64);
    }
    observer(&progress);
    let refused = match source.build() {
        Some(build) => trust::vouch(store, &build).await?,
        None => None,
    };
    let outcome = match refused {
        Some(refused) => Err((refused, 0)),
        None => {
            read(
                store,
                connection,
                source,
                mode,
                request.today,
                &mut progress,
                observer,
            )
            .await?
        }
    };
    let mut read = match outcome {
        Ok(read) => read,
        Err((error, records_read)) => {
            let (mut writes, holds) =
                failed_run(store, connection, run, &run_token, &error, records_read).await?;
            writes.lease = request.lease;
            report.records_read = records_read;
            report.error = writes.run.message.clone();
            report.holds = holds;
            report.run_id = store.apply(id, &writes).await?;
            report.elapsed = clock.elapsed();
            tracing::warn!(connection = id, %error, "run failed");
            return Ok(report);
        }
    };
    run.records_read = read.records_read as i64;
    report.records_read = read.records_read;
    report.incomplete = shortfalls(&read.tally, &connection.validation)
        .iter()
        .map(ToString::to_string)
        .collect();

    progress.phase = Phase::Checking;
    observer(&progress);
    let screening = holds::check(store, connection, &read.changes, &read.prior).await?;
    let mut reasons = screening.reasons;
    if !screening.declined.is_empty() {
        let (changes, declined) = read.changes.without(&screening.declined);
        read.changes = changes;
        read.issues.extend(
            declined
                .iter()
                .filter_map(|(_, record)| declined_issue(record)),
        );
    }
    report.created = read.changes.creates.len();
    report.updated = read.changes.updates.len();
    report.removed = read.changes.removals.len();
    if request.additions_only && !read.changes.removals.is_empty() {
        reasons.push(HoldReason::RemovalsInBlackout {
            removals: read.changes.removals.len(),
        });
    }
    let open_hold = store.open_hold(id).await?;
    let recovered = store.consecutive_unreachable(id).await? >= connection.holds.disconnected_after;
    // Accounts and links only matter when people change: an unchanged
    // resync of a million people should not read a million accounts.
    let people_change = request.forced
        || read.changes.creates_of(EntityKind::Person).next().is_some()
        || read.changes.updates_of(EntityKind::Person).next().is_some()
        || read
            .changes
            .removals_of(EntityKind::Person)
            .next()
            .is_some();
    let (accounts, links) = if people_change {
        (store.accounts().await?, store.links(id).await?)
    } else {
        Default::default()
    };
    let reconsider = if request.forced {
        unlinked_people(store, id, &links, &read.changes).await?
    } else {
        Vec::new()
    };
    let context = Context {
        connection: id,
        run_token: &run_token,
        accounts: &accounts,
        links: &links,
        policy: &connection.provisioning,
    };

    let mut writes;
    let mut issues = read.issues;
    let standing = match read.settled {
        None => StandingWrite::Replace,
        Some(settled) => StandingWrite::Amend { settled },
    };
    if request.dry_run {
        let plan = provision::plan(&context, &read.changes, &reconsider);
        issues.extend(plan.issues);
        writes = WriteSet::new(run);
        writes.run.status = RunStatus::DryRun.as_str().into();
        writes.counts = plan.counts.rows();
        writes.kept_change_set = Some(to_json(&read.changes));
        report.status = RunStatus::DryRun;
        report.holds = reasons.iter().map(ToString::to_string).collect();
        if let Some(hold) = &open_hold {
            report
                .holds
                .push(format!("hold {} is still waiting for an answer", hold.id));
        }
    } else if reasons.is_empty() && open_hold.is_none() {
        // An incomplete run applies nothing destructive: no removals, and
        // no cursor, so the next delta reads the same changes again.
        let incomplete = !report.incomplete.is_empty();
        let applied = if incomplete {
            report.removed = 0;
            read.changes.without_removals()
        } else {
            read.changes
        };
        let plan = provision::plan(&context, &applied, &reconsider);
        issues.extend(plan.issues);
        writes = WriteSet::new(run);
        writes.upserts = plan.upserts;
        writes.removals = plan.removals;
        writes.accounts = plan.accounts;
        writes.links = plan.links;
        writes.changes = plan.changes;
        writes.outbox = plan.outbox;
        writes.counts = plan.counts.rows();
        if recovered {
            writes.outbox.push(notification(
                &run_token,
                Notification::ConnectionRecovered.as_str(),
                id,
                json!({}),
            ));
        }
        report.status = if incomplete {
            writes.run.message = Some(report.incomplete.join("; "));
            writes.outbox.push(notification(
                &run_token,
                Notification::RunIncomplete.as_str(),
                id,
                json!({"shortfalls": report.incomplete}),
            ));
            RunStatus::Incomplete
        } else {
            writes.run.cursor = read.cursor;
            if issues.is_empty() {
                RunStatus::Succeeded
            } else {
                RunStatus::SucceededWithIssues
            }
        };
        writes.run.status = report.status.as_str().into();
    } else {
        let only_removals = reasons.iter().all(HoldReason::is_about_removals)
            && open_hold.is_none()
            && (connection.holds.apply_while_removals_held || request.additions_only);
        // The removals wait; creates and updates go ahead, if the
        // connection says so.
        let (applied, kept) = if only_removals {
            let kept = ChangeSet {
                removals: read.changes.removals.clone(),
                ..ChangeSet::default()
            };
            (read.changes.without_removals(), kept)
        } else {
            (ChangeSet::default(), read.changes)
        };
        let plan = provision::plan(&context, &applied, &reconsider);
        issues.extend(plan.issues);
        let (held_rows, held_counts) = provision::held(&kept);
        writes = WriteSet::new(run);
        writes.upserts = plan.upserts;
        writes.accounts = plan.accounts;
        writes.links = plan.links;
        writes.changes = plan.changes;
        writes.changes.extend(held_rows);
        writes.outbox = plan.outbox;
        let mut counts = plan.counts.rows();
        counts.extend(held_counts.rows());
        writes.counts = counts;
        let mut why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        if let Some(hold) = &open_hold {
            why.push(format!(
                "hold {} opened {} is still waiting for an answer",
                hold.id,
                hold.opened_at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        // This run's own reasons, even when it waits only on the open
        // hold: a revision shows what its own change set tripped.
        let reasons_json = to_json(&reasons);
        let held = holds::held_lines(store, id, &kept, &reasons).await?;
        writes.run.status = RunStatus::Held.as_str().into();
        writes.run.message = Some(why.join("; "));
        writes.kept_change_set = Some(to_json(&kept));
        writes.hold = Some(HoldWrite::Open {
            reasons: reasons_json,
            cursor: read.cursor,
            kind: HoldKind::of(&reasons),
        });
        if open_hold.is_none() {
            let kind = HoldKind::of(&reasons).unwrap_or(HoldKind::Changes);
            writes.outbox.push(notification(
                &run_token,
                "run.held",
                id,
                json!({
                    "reasons": why,
                    "kind": kind.as_str(),
                    "held": held,
                    "summary": holds::headline(kind, &held, &why, "Holds on the dashboard, or `rostersync holds list`"),
                }),
            ));
        }
        report.status = RunStatus::Held;
        report.holds = why;
        report.held = held;
    }
    report.issues = issues.len();
    writes.issues = issues.iter().map(issue_row).collect();
    if !request.dry_run {
        writes.standing = Some(standing);
    }
    writes.counts.extend(role_counts(&read.tally));
    writes.run.finished_at = Utc::now();
    writes.lease = request.lease;
    progress.phase = Phase::Applying;
    observer(&progress);
    report.run_id = store.apply(id, &writes).await?;
    if report.status == RunStatus::Held {
        report.hold = store.open_hold(id).await?.map(|h| h.id);
    }
    let accounts = store
        .accounts_by_role()
        .await?
        .remove(id)
        .unwrap_or_default();
    report.roles = [Role::Student, Role::Staff, Role::Contact]
        .into_iter()
        .map(|role| RoleCount {
            role,
            read: read.tally.read.get(&role).copied().unwrap_or_default(),
            left_out: read.tally.left_out_of(role),
            accounts: accounts.get(role_name(role)).copied().unwrap_or_default(),
        })
        .collect();
    report.elapsed = clock.elapsed();
    tracing::info!(
        connection = id,
        status = report.status.as_str(),
        read = report.records_read,
        incomplete = report.incomplete.join("; "),
        created = report.created,
        updated = report.updated,
        removed = report.removed,
        "run finished"
    );
    Ok(report)
}

/// Reads the snapshot through the validator into the diff. The outer
/// error is the store's; the inner one is the read's, with how many
/// records had been read.
async fn read<S: OpenSource>(
    store: &Store,
    connection: &ConnectionConfig,
    source: &S,
    mode: Mode,
    today: NaiveDate,
    progress: &mut Progress,
    observer: Observer<'_>,
) -> Result<Result<Read, (RunError, u64)>, SyncError> {
    let id = connection.id.as_str();
    let prior = prior_hashes(store, id).await?;
    let groups = store
        .records_of(id, EntityKind::Group)
        .await?
        .iter()
        .map(parse_stored)
        .filter_map(|record| match record {
            Ok(Record::Group(group)) => Some(Ok(group)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut validator = Validator::new(connection.validation.clone(), today, groups);
    let mut diff = match mode {
        Mode::Full => Diff::full(prior),
        Mode::Delta(_) => Diff::delta(prior),
    };
    let mut issues = Vec::new();
    let mut records_read = 0u64;
    let mut settled = matches!(mode, Mode::Delta(_)).then(Vec::new);
    let mut take = |checked: rostersync_core::Checked, diff: &mut Diff| {
        for (kind, key) in checked.retained {
            diff.retain(kind, key);
        }
        diff.add_batch(checked.records);
        issues.extend(checked.issues);
    };
    let outcome: Result<Option<String>, RunError> = async {
        let mut snapshot = source.open(mode.clone()).await?;
        progress.phase = Phase::Reading;
        observer(progress);
        while let Some(batch) = snapshot.next_batch().await? {
            records_read += batch.len() as u64;
            progress.batches += 1;
            progress.records_read = records_read;
            if let Some((done, total)) = snapshot.pages() {
                progress.pages_done = done;
                progress.pages_total = total;
            }
            observer(progress);
            if let Some(settled) = &mut settled {
                settled.extend(batch.iter().map(|record| {
                    let (_, key) = match record {
                        Record::Removed(removal) => removal_identity(removal),
                        other => identity(other).expect("objects have an identity"),
                    };
                    shown_key(&key)
                }));
            }
            take(validator.check_batch(batch), &mut diff);
        }
        snapshot.cursor().await
    }
    .await;
    let cursor = match outcome {
        Ok(cursor) => cursor,
        // Nothing of a failed read is applied: absence proves nothing, and
        // half a roster is not a roster.
        Err(error) => return Ok(Err((error, records_read))),
    };
    let (rest, tally) = validator.finish();
    take(rest, &mut diff);
    let mut pending = diff.complete();
    let prior = pending.take_prior();
    let mut wanted: HashMap<EntityKind, Vec<EntityKey>> = HashMap::new();
    for (kind, key) in pending.keys_to_load() {
        wanted.entry(kind).or_default().push(key.clone());
    }
    let mut previous = HashMap::new();
    for (kind, keys) in wanted {
        for stored in store.load(id, kind, &keys).await? {
            let record = parse_stored(&stored)?;
            previous.insert((kind, stored.key), record);
        }
    }
    let (changes, dangling) = integrity::check(pending.with_previous(&previous), &prior, &issues);
    issues.extend(dangling);
    Ok(Ok(Read {
        changes,
        prior,
        issues,
        tally,
        settled,
        records_read,
        cursor,
    }))
}

/// The run row of a failed read, and the disconnected hold (with its
/// reasons in words) once the provider has been unreachable on enough runs
/// in a row.
async fn failed_run(
    store: &Store,
    connection: &ConnectionConfig,
    mut run: RunRecord,
    run_token: &str,
    error: &RunError,
    records_read: u64,
) -> Result<(WriteSet, Vec<String>), SyncError> {
    let id = connection.id.as_str();
    run.unreachable = is_unreachable(error);
    run.records_read = records_read as i64;
    run.message = Some(error.to_string());
    run.finished_at = Utc::now();
    let mut counts = Counts::default();
    counts.add("run", "failed");
    let dry_run = run.dry_run;
    let mut writes = WriteSet::new(run);
    writes.counts = counts.rows();
    if dry_run {
        return Ok((writes, Vec::new()));
    }
    let mut held = Vec::new();
    writes.outbox.push(notification(
        run_token,
        "run.failed",
        id,
        json!({"error": error.to_string()}),
    ));
    if writes.run.unreachable {
        let failures = store.consecutive_unreachable(id).await? + 1;
        let reasons = check_holds(
            &ChangeSet::default(),
            &PriorHashes::default(),
            &Census::default(),
            &RunHistory {
                consecutive_connection_failures: failures,
                ..RunHistory::default()
            },
            &connection.holds,
        )
        .reasons;
        // Notify on the run that crosses the line, not on every one after.
        if failures == connection.holds.disconnected_after && store.open_hold(id).await?.is_none() {
            held = reasons.iter().map(ToString::to_string).collect();
            writes.kept_change_set = Some(to_json(&ChangeSet::default()));
            writes.hold = Some(HoldWrite::Open {
                reasons: to_json(&reasons),
                cursor: None,
                kind: HoldKind::of(&reasons),
            });
            writes.outbox.push(notification(
                run_token,
                "connection.disconnected",
                id,
                json!({"consecutive_failures": failures, "error": error.to_string()}),
            ));
        }
    }
    Ok((writes, held))
}

/// The run's people per role as history counts: `student read`,
/// `student left-out`, ...
fn role_counts(tally: &Tally) -> Vec<rostersync_store::Count> {
    let mut counts = Counts::default();
    for (&role, &read) in &tally.read {
        counts.add_n(role_name(role), "read", read as i64);
        let left_out = tally.left_out_of(role);
        if left_out > 0 {
            counts.add_n(role_name(role), "left-out", left_out as i64);
        }
    }
    counts.rows()
}

pub(crate) fn notification(
    run_token: &str,
    event: &str,
    connection: &str,
    detail: serde_json::Value,
) -> OutboxEvent {
    OutboxEvent {
        idempotency_key: format!("{run_token}:{event}"),
        event: event.into(),
        payload: json!({"connection": connection, "detail": detail}).to_string(),
    }
}

async fn prior_hashes(store: &Store, connection: &str) -> Result<PriorHashes, SyncError> {
    let mut prior = PriorHashes::default();
    for kind in EntityKind::ALL {
        for (key, hash) in store.content_hashes(connection, kind).await? {
            let hash: [u8; 16] = hash.try_into().map_err(|_| SyncError::Corrupt {
                what: format!("the content hash of {} {key:?}", kind.as_str()),
                error: "it is not 16 bytes".into(),
            })?;
            prior.insert(kind, key, ContentHash(hash));
        }
    }
    Ok(prior)
}

/// Stored people without an account (and not in this run's change set),
/// for a forced run to offer to provisioning again.
async fn unlinked_people(
    store: &Store,
    connection: &str,
    links: &HashMap<String, String>,
    changes: &ChangeSet,
) -> Result<Vec<Person>, SyncError> {
    let removed: HashSet<&EntityKey> = changes.removals_of(EntityKind::Person).collect();
    let changed: HashSet<EntityKey> = changes
        .creates
        .iter()
        .map(|(r, _)| r)
        .chain(changes.updates.iter().map(|u| &u.record))
        .filter_map(identity)
        .map(|(_, key)| key)
        .collect();
    let mut people = Vec::new();
    for stored in store.records_of(connection, EntityKind::Person).await? {
        if links.contains_key(&stored.key)
            || removed.contains(&stored.key)
            || changed.contains(&stored.key)
        {
            continue;
        }
        if let Record::Person(person) = parse_stored(&stored)? {
            people.push(person);
        }
    }
    Ok(people)
}

pub(crate) fn parse_stored(stored: &StoredRecord) -> Result<Record, SyncError> {
    serde_json::from_str(&stored.body).map_err(|e| SyncError::Corrupt {
        what: format!("{} {:?}", stored.kind.as_str(), stored.key),
        error: e.to_string(),
    })
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("change sets and hold reasons serialise")
}
