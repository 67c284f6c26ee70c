//! Holds in the store's terms: the census and the earlier answers a
//! change set is weighed against, and the operator's answers to a hold,
//! part by part when its reasons are of several types: go ahead (apply the
//! revision reviewed, named by its digest, and remember what it accepts),
//! don't create (apply the rest, and remember what it declines), reject
//! (apply nothing); what a hold shows, and the CSV of the records its
//! revision would change, to decide with.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use rostersync_core::answers::{Progress, decide, declined_issue, progress};
use rostersync_core::holds::{Census, Population};
use rostersync_core::{
    Change, ChangeSet, Effect, EntityKind, HoldAnswer, HoldKind, HoldReason, PriorHashes, Refusal,
    RunHistory, Screening, check_holds,
};
use rostersync_model::{GroupKind, Record, Role};
use rostersync_store::{
    AuditEntry, CsvExport, HoldRevision, HoldRow, HoldStatus, HoldWrite, RunMode, RunRecord, Store,
    WriteSet,
};

use crate::provision::{self, Context, display_name, issue_row};
use crate::run::{RunStatus, notification, parse_stored};
use crate::{ConnectionConfig, SyncError};

/// Every reason to hold a completed read's change set, with the people its
/// contact holds name looked up where the change set did not carry them,
/// and what operators declined before.
pub(crate) async fn check(
    store: &Store,
    connection: &ConnectionConfig,
    changes: &ChangeSet,
    prior: &PriorHashes,
) -> Result<Screening, SyncError> {
    let id = connection.id.as_str();
    let history = RunHistory {
        verdicts: store.verdicts(id).await?,
        ..RunHistory::default()
    };
    let census = census(store, id, changes).await?;
    let mut screening = check_holds(changes, prior, &census, &history, &connection.holds);
    let reasons = &mut screening.reasons;
    let unnamed: HashSet<String> = reasons
        .iter()
        .flat_map(HoldReason::unnamed)
        .map(str::to_string)
        .collect();
    if !unnamed.is_empty() {
        let mut names: HashMap<String, String> = changed_records(changes)
            .filter_map(name_of)
            .filter(|(id, _)| unnamed.contains(id))
            .collect();
        let stored: Vec<String> = unnamed
            .into_iter()
            .filter(|id| !names.contains_key(id))
            .collect();
        names.extend(stored_names(store, id, EntityKind::Person, stored).await?);
        reasons.iter_mut().for_each(|r| r.name(&names));
    }
    Ok(screening)
}

/// The records a change set creates or updates.
fn changed_records(changes: &ChangeSet) -> impl Iterator<Item = &Record> {
    changes
        .creates
        .iter()
        .map(|(r, _)| r)
        .chain(changes.updates.iter().map(|u| &u.record))
}

/// The headcounts the removed and updated people and groups are weighed
/// against; read only for the kinds the change set removes or updates.
async fn census(store: &Store, id: &str, changes: &ChangeSet) -> Result<Census, SyncError> {
    let weighed = |kind| {
        changes.removals_of(kind).next().is_some() || changes.updates_of(kind).next().is_some()
    };
    let removed = |kind| {
        changes
            .removals_of(kind)
            .map(String::as_str)
            .collect::<Vec<_>>()
    };
    let mut census = Census::default();
    if weighed(EntityKind::Person) {
        census.people = store.headcount::<Role>(id).await?;
        census.removed_people = store
            .classes::<Role>(id, &removed(EntityKind::Person))
            .await?;
    }
    if weighed(EntityKind::Group) {
        census.groups = store.headcount::<GroupKind>(id).await?;
        census.removed_groups = store
            .classes::<GroupKind>(id, &removed(EntityKind::Group))
            .await?;
    }
    Ok(census)
}

/// The names of stored people or groups, by source id.
async fn stored_names(
    store: &Store,
    connection: &str,
    kind: EntityKind,
    ids: Vec<String>,
) -> Result<HashMap<String, String>, SyncError> {
    let mut names = HashMap::new();
    for stored in store.load(connection, kind, &ids).await? {
        if let Some((id, name)) = name_of(&parse_stored(&stored)?) {
            names.insert(id, name);
        }
    }
    Ok(names)
}

/// A person's or group's source id and name.
fn name_of(record: &Record) -> Option<(String, String)> {
    match record {
        Record::Person(p) => Some((p.id.clone(), display_name(p))),
        Record::Group(g) => Some((g.id.clone(), g.name.clone().unwrap_or_default())),
        _ => None,
    }
}

fn corrupt(hold: i64, error: impl ToString) -> SyncError {
    SyncError::Corrupt {
        what: format!("the change set of hold {hold}"),
        error: error.to_string(),
    }
}

/// The change set a hold's run kept.
async fn kept(store: &Store, hold: i64, run_id: i64) -> Result<ChangeSet, SyncError> {
    let body = store
        .kept_change_set(run_id)
        .await?
        .ok_or_else(|| corrupt(hold, "it is missing"))?;
    serde_json::from_str(&body).map_err(|e| corrupt(hold, e))
}

async fn open_hold(store: &Store, hold: i64) -> Result<HoldRow, SyncError> {
    let row = store.hold(hold).await?.ok_or(SyncError::NoSuchHold(hold))?;
    if row.status != HoldStatus::Open {
        return Err(Refusal::Answered(hold).into());
    }
    Ok(row)
}

/// An operator's answer to a hold, given after the confirmation step.
#[derive(Debug, Clone, Copy)]
pub struct Answering<'a> {
    pub answer: HoldAnswer,
    /// The digest of the revision reviewed (`holds show`, the page).
    pub revision: &'a str,
    pub by: &'a str,
    /// Why, in the operator's words; kept with the hold and in the audit.
    pub comment: Option<&'a str>,
}

/// What answering a hold did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Answered {
    /// The part is answered; the hold's next part waits for its answer.
    Next { kind: HoldKind },
    /// The kept change set (or the part not held) was applied as this run.
    Applied { run_id: i64 },
    /// Nothing was applied.
    Closed,
    /// The hold is closed: run the connection again now.
    RunAgain,
}

/// The longest comment kept; the rest is cut.
const COMMENT_LIMIT: usize = 2000;

fn comment_of(comment: Option<&str>) -> Option<String> {
    let comment = comment.map(str::trim).filter(|c| !c.is_empty())?;
    Some(comment.chars().take(COMMENT_LIMIT).collect())
}

/// Answers an open hold's waiting part with one of the answers its type
/// offers. Once every part is answered, or an answer that applies nothing
/// settles it, applies its current revision (all of it, or all but the
/// records of parts answered "Don't create"), or closes it having applied
/// nothing. Each answer, its comment and the confirmation go into the
/// audit. `revision` is the digest of the change set reviewed: if a later
/// run replaced it, nothing happens.
pub async fn answer_hold(
    store: &Store,
    connection: &ConnectionConfig,
    hold: i64,
    answering: Answering<'_>,
) -> Result<Answered, SyncError> {
    let row = open_hold(store, hold).await?;
    let answer = answering.answer;
    if row.kind != answer.kind() {
        return Err(Refusal::NotOffered {
            hold,
            answer: answer.as_str().to_string(),
            kind: row.kind.as_str().to_string(),
        }
        .into());
    }
    if row.digest != answering.revision {
        return Err(Refusal::RevisionNotCurrent {
            hold,
            reviewed: answering.revision.to_string(),
            current: row.digest,
        }
        .into());
    }
    let comment = comment_of(answering.comment);
    let part = match row.parts.len() {
        1 => String::new(),
        parts => format!(" to part {} of {parts}", row.answered_parts.len() + 1),
    };
    let said = match &comment {
        Some(comment) => format!(
            "answered {:?}{part} with the comment {comment:?}",
            answer.label()
        ),
        None => format!("answered {:?}{part} without a comment", answer.label()),
    };
    let answers: Vec<HoldAnswer> = row.answered_parts.iter().copied().chain([answer]).collect();
    let (action, next, applied) = match progress(&row.parts, &answers) {
        Progress::Settled(Effect::Apply | Effect::ApplyOthers) => {
            let run_id =
                apply_answer(store, connection, &row, answering, &answers, comment, &said).await?;
            return Ok(Answered::Applied { run_id });
        }
        Progress::Next(kind) => ("hold.part", Some(kind), format!("next: {}", kind.title())),
        Progress::Settled(Effect::Retry) => ("hold.retry", None, "nothing applied".into()),
        Progress::Settled(Effect::Discard) => ("hold.reject", None, "nothing applied".into()),
    };
    store
        .record_answer(
            hold,
            answering.revision,
            answer,
            comment.as_deref(),
            next,
            &AuditEntry {
                at: Utc::now(),
                actor: answering.by.to_string(),
                action: action.into(),
                connection: Some(row.connection.clone()),
                subject: format!("hold {hold}"),
                detail: format!(
                    "{said}, confirmed: revision {} ({}), held run {}, {applied}",
                    row.revision, row.digest, row.run_id
                ),
            },
        )
        .await?;
    Ok(match (next, answer.effect()) {
        (Some(kind), _) => Answered::Next { kind },
        (None, Effect::Retry) => Answered::RunAgain,
        (None, _) => Answered::Closed,
    })
}

/// The reasons a hold's revision stored; none for reasons written before
/// holds were typed.
fn typed_reasons(reasons: &str) -> Vec<HoldReason> {
    serde_json::from_str(reasons).unwrap_or_default()
}

/// Applies the hold's current revision as its own run, in one transaction
/// with the answers, what they accept and decline, and the audit record;
/// returns the run's id. Answers every part still waiting with its type's
/// go-ahead. `revision` is the digest of the change set the operator
/// reviewed: if a later run replaced it, nothing is applied.
pub async fn confirm_hold(
    store: &Store,
    connection: &ConnectionConfig,
    hold: i64,
    revision: &str,
    actor: &str,
) -> Result<i64, SyncError> {
    loop {
        let row = open_hold(store, hold).await?;
        let answering = Answering {
            answer: row.kind.go_ahead(),
            revision,
            by: actor,
            comment: None,
        };
        match answer_hold(store, connection, hold, answering).await? {
            Answered::Applied { run_id } => return Ok(run_id),
            Answered::Next { .. } => continue,
            Answered::Closed | Answered::RunAgain => {
                return Err(Refusal::NotOffered {
                    hold,
                    answer: "confirm".into(),
                    kind: row.kind.as_str().into(),
                }
                .into());
            }
        }
    }
}

/// Answers a hold with the answer of its type that applies nothing of
/// what it is about ("Reject", "Don't create", "I fixed it").
pub async fn reject_hold(
    store: &Store,
    connection: &ConnectionConfig,
    hold: i64,
    actor: &str,
) -> Result<Answered, SyncError> {
    let row = open_hold(store, hold).await?;
    let answering = Answering {
        answer: row.kind.stop(),
        revision: &row.digest,
        by: actor,
        comment: None,
    };
    answer_hold(store, connection, hold, answering).await
}

/// Forgets the contacts a hold's "Don't create" declined, so the next run
/// of its connection asks about them again; audited. Returns how many
/// were forgotten.
pub async fn reconsider_hold(store: &Store, hold: i64, actor: &str) -> Result<u64, SyncError> {
    let row = store.hold(hold).await?.ok_or(SyncError::NoSuchHold(hold))?;
    Ok(store
        .reconsider(
            hold,
            &AuditEntry {
                at: Utc::now(),
                actor: actor.to_string(),
                action: "hold.reconsider".into(),
                connection: Some(row.connection),
                subject: format!("hold {hold}"),
                detail: "forgot the contacts it declined; the next run asks about them again"
                    .into(),
            },
        )
        .await?)
}

async fn apply_answer(
    store: &Store,
    connection: &ConnectionConfig,
    row: &HoldRow,
    answering: Answering<'_>,
    answers: &[HoldAnswer],
    comment: Option<String>,
    said: &str,
) -> Result<i64, SyncError> {
    let hold = row.id;
    let revision = answering.revision;
    let actor = answering.by;
    let kept_changes = kept(store, hold, row.run_id).await?;
    let decided = decide(&typed_reasons(&row.reasons), answers);
    let size = |c: &ChangeSet| c.creates.len() + c.updates.len() + c.removals.len();
    let total = size(&kept_changes);
    let (changes, left_out) = kept_changes.without(&decided.withheld);
    let now = Utc::now();
    let run_token = format!("hold-{hold}-{revision}");
    let accounts = store.accounts().await?;
    let links = store.links(&row.connection).await?;
    let plan = provision::plan(
        &Context {
            connection: &row.connection,
            run_token: &run_token,
            accounts: &accounts,
            links: &links,
            policy: &connection.provisioning,
        },
        &changes,
        &[],
    );
    let mut issues = plan.issues;
    issues.extend(
        left_out
            .iter()
            .filter_map(|(_, record)| declined_issue(record)),
    );
    let mut run = RunRecord::new(RunMode::Full, RunStatus::Succeeded.as_str(), now);
    run.cursor = row.cursor.clone();
    let labels: Vec<String> = answers.iter().map(|a| format!("{:?}", a.label())).collect();
    run.message = Some(format!(
        "applied held run {} (hold {hold} revision {}, {revision}) on {} by {actor}",
        row.run_id,
        row.revision,
        labels.join(" then ")
    ));
    if !issues.is_empty() {
        run.status = RunStatus::SucceededWithIssues.as_str().into();
    }
    let mut writes = WriteSet::new(run);
    writes.upserts = plan.upserts;
    writes.removals = plan.removals;
    writes.accounts = plan.accounts;
    writes.links = plan.links;
    writes.changes = plan.changes;
    writes.outbox = plan.outbox;
    writes.outbox.push(notification(
        &run_token,
        "hold.confirmed",
        &row.connection,
        serde_json::json!({
            "hold": hold,
            "revision": revision,
            "by": actor,
            "answer": answering.answer.as_str(),
        }),
    ));
    writes.counts = plan.counts.rows();
    writes.issues = issues.iter().map(issue_row).collect();
    writes.hold = Some(HoldWrite::Answer {
        hold,
        answer: answering.answer,
        comment,
        by: actor.to_string(),
        digest: revision.to_string(),
        accepts: decided.accepts,
        declines: decided.declines,
    });
    let left_out = if left_out.is_empty() {
        String::new()
    } else {
        format!(", {} held records left out", total - size(&changes))
    };
    writes.audit.push(AuditEntry {
        at: now,
        actor: actor.to_string(),
        action: "hold.confirm".into(),
        connection: Some(row.connection.clone()),
        subject: format!("hold {hold}"),
        detail: format!(
            "{said}, confirmed: revision {} ({revision}): {} creates, {} updates, {} removals applied{left_out}",
            row.revision,
            changes.creates.len(),
            changes.updates.len(),
            changes.removals.len()
        ),
    });
    Ok(store.apply(&row.connection, &writes).await?)
}

/// What a hold shows an operator: its type and the answers it offers,
/// what to check, its current revision's reasons in words, a grouped
/// count of the records it is about, what its change set would do, and
/// every revision it has shown. The export of the same hold lists the
/// same records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HoldSummary {
    pub hold: HoldRow,
    /// The answers the hold's type offers, the one that goes ahead first.
    pub answers: Vec<AnswerView>,
    /// What to look at before answering.
    pub checks: Vec<&'static str>,
    /// The current revision's reasons; empty when its run tripped nothing
    /// itself and waits only because the hold was open.
    pub why: Vec<String>,
    /// The records the hold is about, counted by what would happen to
    /// them and grouped (`3 removals held: 3 students in Year 9`).
    pub held: Vec<String>,
    pub creates: usize,
    pub updates: usize,
    pub removals: usize,
    pub revisions: Vec<HoldRevision>,
}

/// One answer a hold offers, as a button or a CLI word shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnswerView {
    pub answer: HoldAnswer,
    pub label: &'static str,
    pub consequence: &'static str,
}

impl AnswerView {
    pub fn of(answer: HoldAnswer) -> Self {
        Self {
            answer,
            label: answer.label(),
            consequence: answer.consequence(),
        }
    }

    /// Every answer a hold of `kind` offers, in the order to show them.
    pub fn all(kind: HoldKind) -> Vec<Self> {
        kind.answers().iter().copied().map(Self::of).collect()
    }
}

/// A hold's reasons in words.
pub fn hold_reasons(reasons: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<HoldReason>>(reasons) {
        Ok(reasons) => reasons.iter().map(ToString::to_string).collect(),
        Err(_) => vec![format!("(recorded by an earlier version) {reasons}")],
    }
}

pub async fn hold_summary(store: &Store, hold: i64) -> Result<HoldSummary, SyncError> {
    let row = store.hold(hold).await?.ok_or(SyncError::NoSuchHold(hold))?;
    let changes = kept(store, hold, row.run_id).await?;
    let removed = removed_records(store, &row.connection, &changes).await?;
    let reasons = typed_reasons(&row.reasons);
    let held = grouped(&held_rows(&changes, &removed, &reasons));
    Ok(HoldSummary {
        answers: AnswerView::all(row.kind),
        checks: row.kind.checks().to_vec(),
        why: hold_reasons(&row.reasons),
        held,
        creates: changes.creates.len(),
        updates: changes.updates.len(),
        removals: changes.removals.len(),
        revisions: store.hold_revisions(hold).await?,
        hold: row,
    })
}

impl HoldSummary {
    /// The hold in one line, with where to see it:
    /// `3 removals held: 3 students in Year 9 — see ...`.
    pub fn headline(&self, see: &str) -> String {
        headline(self.hold.kind, &self.held, &self.why, see)
    }
}

/// A hold of `kind` in one line: its grouped records, or its first reason
/// when it is about no record (a lost connection).
pub(crate) fn headline(kind: HoldKind, held: &[String], why: &[String], see: &str) -> String {
    if kind == HoldKind::Disconnected || held.is_empty() {
        let why = why
            .first()
            .cloned()
            .unwrap_or_else(|| "waiting for an answer".into());
        format!("{}: {why} — see {see}", kind.title())
    } else {
        format!("{} — see {see}", held.join("; "))
    }
}

/// The grouped lines of a run's hold, from the change set it keeps and
/// its reasons: what the run's report and notification say.
pub(crate) async fn held_lines(
    store: &Store,
    connection: &str,
    changes: &ChangeSet,
    reasons: &[HoldReason],
) -> Result<Vec<String>, SyncError> {
    let removed = removed_records(store, connection, changes).await?;
    Ok(grouped(&held_rows(changes, &removed, reasons)))
}

/// The header of a hold's evidence export.
pub const HOLD_CSV_HEADER: [&str; 6] = [
    "Action",
    "Entity type",
    "Integration source id",
    "Entity name",
    "MIS id",
    "Changed fields",
];

/// One record a hold is about: what would happen to it, and the record
/// (for a removal, the stored one it removes, when there is one).
struct HeldRow<'a> {
    change: Change,
    kind: EntityKind,
    key: &'a str,
    record: Option<&'a Record>,
    fields: Vec<&'a str>,
}

type Removed = HashMap<(EntityKind, String), Record>;

/// The stored records a change set removes.
async fn removed_records(
    store: &Store,
    connection: &str,
    changes: &ChangeSet,
) -> Result<Removed, SyncError> {
    let mut removed = HashMap::new();
    for kind in EntityKind::ALL {
        let keys: Vec<String> = changes.removals_of(kind).cloned().collect();
        if keys.is_empty() {
            continue;
        }
        for stored in store.load(connection, kind, &keys).await? {
            removed.insert((kind, stored.key.clone()), parse_stored(&stored)?);
        }
    }
    Ok(removed)
}

/// The records of the change set `reasons` are about, creates, updates
/// then removals; every record when there is no typed reason (the
/// revision waits only because the hold was open, or was written before
/// holds were typed).
fn held_rows<'a>(
    changes: &'a ChangeSet,
    removed: &'a Removed,
    reasons: &[HoldReason],
) -> Vec<HeldRow<'a>> {
    let wanted = |change, record: Option<&Record>| {
        reasons.is_empty()
            || match record {
                Some(record) => reasons.iter().any(|r| r.concerns(change, record)),
                None => reasons.iter().any(HoldReason::is_about_removals),
            }
    };
    let mut rows = Vec::new();
    for (record, _) in &changes.creates {
        if wanted(Change::Create, Some(record)) {
            rows.push(HeldRow {
                change: Change::Create,
                kind: rostersync_core::entity::identity(record)
                    .map_or(EntityKind::Person, |(k, _)| k),
                key: "",
                record: Some(record),
                fields: Vec::new(),
            });
        }
    }
    for update in &changes.updates {
        if wanted(Change::Update, Some(&update.record)) {
            rows.push(HeldRow {
                change: Change::Update,
                kind: update.kind,
                key: &update.key,
                record: Some(&update.record),
                fields: update.fields.iter().map(|f| f.field.as_str()).collect(),
            });
        }
    }
    for (kind, key) in &changes.removals {
        let record = removed.get(&(*kind, key.clone()));
        if wanted(Change::Remove, record) {
            rows.push(HeldRow {
                change: Change::Remove,
                kind: *kind,
                key,
                record,
                fields: Vec::new(),
            });
        }
    }
    rows
}

/// One population's held records: how many, and how many by year group.
type Tally = (Option<Population>, usize, BTreeMap<String, usize>);

/// How many populations a grouped line names before "and N more".
const GROUPS_SHOWN: usize = 4;

/// The held records counted by what would happen to them, each count
/// split by population (students first), people by year group where a few
/// say it: `3 removals held: 3 students in Year 9`.
fn grouped(rows: &[HeldRow]) -> Vec<String> {
    let mut lines = Vec::new();
    for (change, one, many) in [
        (Change::Remove, "removal", "removals"),
        (Change::Create, "new record", "new records"),
        (Change::Update, "update", "updates"),
    ] {
        // By population in the order holds report them, then the kinds of
        // removals whose record is gone.
        let mut groups: BTreeMap<(usize, &str), Tally> = BTreeMap::new();
        let mut total = 0;
        for row in rows.iter().filter(|r| r.change == change) {
            total += 1;
            let population = row.record.and_then(Population::of);
            let order = population
                .and_then(|p| Population::ALL.iter().position(|q| *q == p))
                .unwrap_or(Population::ALL.len());
            let group = groups.entry((order, row.kind.as_str())).or_insert((
                population,
                0,
                BTreeMap::new(),
            ));
            group.1 += 1;
            if let Some(Record::Person(p)) = row.record
                && let Some(year) = p.year_group.as_deref().filter(|y| !y.trim().is_empty())
            {
                *group.2.entry(year.to_string()).or_default() += 1;
            }
        }
        if total == 0 {
            continue;
        }
        let mut parts: Vec<String> = groups
            .iter()
            .map(|((_, kind), (population, n, years))| {
                let noun = population.map_or(*kind, |p| p.noun(*n));
                let years = match years.iter().collect::<Vec<_>>().as_slice() {
                    [] => String::new(),
                    [(year, count)] if **count == *n => format!(" in {year}"),
                    few if few.len() <= 3 => {
                        let each: Vec<String> =
                            few.iter().map(|(y, c)| format!("{c} in {y}")).collect();
                        format!(" ({})", each.join(", "))
                    }
                    many => format!(" in {} year groups", many.len()),
                };
                format!("{n} {noun}{years}")
            })
            .collect();
        if parts.len() > GROUPS_SHOWN {
            let rest: usize = groups.values().skip(GROUPS_SHOWN).map(|g| g.1).sum();
            parts.truncate(GROUPS_SHOWN);
            parts.push(format!("{rest} more"));
        }
        let noun = if total == 1 { one } else { many };
        lines.push(format!("{total} {noun} held: {}", parts.join(", ")));
    }
    lines
}

/// The records a hold's revision is about, one row each, as CSV: the
/// current revision, or an earlier one by its digest. Only the records
/// the revision's reasons name (the removed students of a removals hold,
/// the contacts of a contacts hold), not the rest of the change set. A
/// first line names the hold, revision and digest; a confirmation names
/// the same digest. Removals are named from the stored record, which a
/// held run has not touched; memberships and relationships by the people
/// and groups at either end.
pub async fn export_hold_csv(
    store: &Store,
    hold: i64,
    revision: Option<&str>,
) -> Result<String, SyncError> {
    let row = store.hold(hold).await?.ok_or(SyncError::NoSuchHold(hold))?;
    let (number, run_id, digest, reasons) = match revision {
        None => (
            row.revision,
            row.run_id,
            row.digest.clone(),
            row.reasons.clone(),
        ),
        Some(digest) => {
            let shown = store.hold_revisions(hold).await?;
            let found = shown
                .into_iter()
                .find(|r| r.digest == digest)
                .ok_or_else(|| SyncError::NoSuchRevision {
                    hold,
                    revision: digest.to_string(),
                })?;
            (found.revision, found.run_id, found.digest, found.reasons)
        }
    };
    let changes = kept(store, hold, run_id).await?;
    let removed = removed_records(store, &row.connection, &changes).await?;
    let names = evidence_names(store, &row.connection, &changes, &removed).await?;
    let mut out = format!(
        "# hold {hold} on {} revision {number} digest {digest}\n",
        row.connection
    );
    let mut csv = CsvExport::new(&HOLD_CSV_HEADER);
    for held in held_rows(&changes, &removed, &typed_reasons(&reasons)) {
        let action = match held.change {
            Change::Create => "create",
            Change::Update => "update",
            Change::Remove => "remove",
        };
        let (kind, id, name, mis_id) = match held.record {
            Some(record) => described(record, &names),
            None => (
                held.kind.as_str(),
                held.key.replace('\u{1f}', " / "),
                String::new(),
                String::new(),
            ),
        };
        csv.row(&[action, kind, &id, &name, &mis_id, &held.fields.join(" ")]);
    }
    out.push_str(&csv.finish());
    Ok(out)
}

/// Names of every person and group the evidence mentions: from the change
/// set, the removed records, then the store.
async fn evidence_names(
    store: &Store,
    connection: &str,
    changes: &ChangeSet,
    removed: &Removed,
) -> Result<HashMap<String, String>, SyncError> {
    let records: Vec<&Record> = changed_records(changes).chain(removed.values()).collect();
    let mut names: HashMap<String, String> = records.iter().filter_map(|r| name_of(r)).collect();
    let mut wanted: HashMap<EntityKind, HashSet<String>> = HashMap::new();
    for record in &records {
        let ends = match record {
            Record::Membership(m) => [
                (EntityKind::Group, &m.group),
                (EntityKind::Person, &m.person),
            ],
            Record::Relationship(r) => [
                (EntityKind::Person, &r.student),
                (EntityKind::Person, &r.contact),
            ],
            _ => continue,
        };
        for (kind, id) in ends {
            if !names.contains_key(id) {
                wanted.entry(kind).or_default().insert(id.clone());
            }
        }
    }
    for (kind, ids) in wanted {
        names.extend(stored_names(store, connection, kind, ids.into_iter().collect()).await?);
    }
    Ok(names)
}

/// Entity type, source id, name and MIS id, as the issues export names
/// them; a membership or relationship by the names at either end.
fn described(
    record: &Record,
    names: &HashMap<String, String>,
) -> (&'static str, String, String, String) {
    let name = |id: &String| names.get(id).cloned().unwrap_or_else(|| id.clone());
    match record {
        Record::Person(p) => (
            "person",
            p.id.clone(),
            display_name(p),
            p.mis_id.clone().unwrap_or_default(),
        ),
        Record::Group(g) => (
            "group",
            g.id.clone(),
            g.name.clone().unwrap_or_default(),
            String::new(),
        ),
        Record::Membership(m) => (
            "membership",
            format!("{} / {}", m.group, m.person),
            format!("{} in {}", name(&m.person), name(&m.group)),
            String::new(),
        ),
        Record::Relationship(r) => {
            let relationship = r.relationship.as_deref().unwrap_or("contact");
            (
                "relationship",
                format!("{} / {}", r.student, r.contact),
                format!(
                    "{} ({relationship}, {} contact) of {}",
                    name(&r.contact),
                    format!("{:?}", r.contact_type).to_lowercase(),
                    name(&r.student)
                ),
                String::new(),
            )
        }
        Record::Removed(_) => ("removal", String::new(), String::new(), String::new()),
    }
}
