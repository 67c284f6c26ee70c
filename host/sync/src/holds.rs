//! Holds in the store's terms: the census and the earlier answers a
//! change set is weighed against, and the operator's answers to a hold:
//! confirm (apply the revision reviewed, named by its digest, and remember
//! what it accepts), reject (apply nothing), what a hold shows, and the CSV
//! of the records its revision would change, to decide with.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use rostersync_core::holds::Census;
use rostersync_core::{ChangeSet, EntityKind, HoldReason, PriorHashes, RunHistory, check_holds};
use rostersync_model::{GroupKind, Record, Role};
use rostersync_store::{
    AuditEntry, CsvExport, HoldRevision, HoldRow, HoldStatus, HoldWrite, RunMode, RunRecord, Store,
    StoreError, WriteSet,
};

use crate::provision::{self, Context, display_name, issue_row};
use crate::run::{RunStatus, notification, parse_stored};
use crate::{ConnectionConfig, SyncError};

/// Every reason to hold a completed read's change set, with the people its
/// contact holds name looked up where the change set did not carry them.
pub(crate) async fn check(
    store: &Store,
    connection: &ConnectionConfig,
    changes: &ChangeSet,
    prior: &PriorHashes,
) -> Result<Vec<HoldReason>, SyncError> {
    let id = connection.id.as_str();
    let history = RunHistory {
        accepted: store.acceptances(id).await?,
        ..RunHistory::default()
    };
    let census = census(store, id, changes).await?;
    let mut reasons = check_holds(changes, prior, &census, &history, &connection.holds);
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
    Ok(reasons)
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
        return Err(SyncError::HoldAnswered(hold));
    }
    Ok(row)
}

fn answered(error: StoreError) -> SyncError {
    match error {
        StoreError::HoldNotOpen(hold) => SyncError::HoldAnswered(hold),
        StoreError::RevisionNotCurrent {
            hold,
            reviewed,
            current,
        } => SyncError::RevisionNotCurrent {
            hold,
            reviewed,
            current,
        },
        other => other.into(),
    }
}

/// Applies the hold's current revision as its own run, in one transaction
/// with the answer, what it accepts and its audit record; returns the
/// run's id. `revision` is the digest of the change set the operator
/// reviewed: if a later run replaced it, nothing is applied.
pub async fn confirm_hold(
    store: &Store,
    connection: &ConnectionConfig,
    hold: i64,
    revision: &str,
    actor: &str,
) -> Result<i64, SyncError> {
    let row = open_hold(store, hold).await?;
    if row.digest != revision {
        return Err(SyncError::RevisionNotCurrent {
            hold,
            reviewed: revision.to_string(),
            current: row.digest,
        });
    }
    let changes = kept(store, hold, row.run_id).await?;
    let accepts = match serde_json::from_str::<Vec<HoldReason>>(&row.reasons) {
        Ok(reasons) => reasons.iter().flat_map(HoldReason::acceptances).collect(),
        // Reasons written before holds were typed accept nothing.
        Err(_) => Vec::new(),
    };
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
    let mut run = RunRecord::new(RunMode::Full, RunStatus::Succeeded.as_str(), now);
    run.cursor = row.cursor.clone();
    run.message = Some(format!(
        "applied held run {} (hold {hold} revision {}, {revision}) on confirmation by {actor}",
        row.run_id, row.revision
    ));
    if !plan.issues.is_empty() {
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
        serde_json::json!({"hold": hold, "revision": revision, "by": actor}),
    ));
    writes.counts = plan.counts.rows();
    writes.issues = plan.issues.iter().map(issue_row).collect();
    writes.hold = Some(HoldWrite::Answer {
        hold,
        status: HoldStatus::Confirmed,
        by: actor.to_string(),
        digest: revision.to_string(),
        accepts,
    });
    writes.audit.push(AuditEntry {
        at: now,
        actor: actor.to_string(),
        action: "hold.confirm".into(),
        connection: Some(row.connection.clone()),
        subject: format!("hold {hold}"),
        detail: format!(
            "revision {} ({revision}): {} creates, {} updates, {} removals applied",
            row.revision,
            changes.creates.len(),
            changes.updates.len(),
            changes.removals.len()
        ),
    });
    store
        .apply(&row.connection, &writes)
        .await
        .map_err(answered)
}

/// Answers a hold with no: nothing is applied. The next run reads afresh
/// and holds again if the source still looks dangerous.
pub async fn reject_hold(store: &Store, hold: i64, actor: &str) -> Result<(), SyncError> {
    let row = open_hold(store, hold).await?;
    store
        .reject_hold(
            hold,
            &AuditEntry {
                at: Utc::now(),
                actor: actor.to_string(),
                action: "hold.reject".into(),
                connection: Some(row.connection),
                subject: format!("hold {hold}"),
                detail: format!(
                    "revision {} ({}), held run {}, discarded",
                    row.revision, row.digest, row.run_id
                ),
            },
        )
        .await
        .map_err(answered)
}

/// What a hold shows an operator: its current revision's reasons in words
/// and what its change set would do, and every revision it has shown.
/// The export of the same hold describes the same change set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HoldSummary {
    pub hold: HoldRow,
    /// The current revision's reasons; empty when its run tripped nothing
    /// itself and waits only because the hold was open.
    pub why: Vec<String>,
    pub creates: usize,
    pub updates: usize,
    pub removals: usize,
    pub revisions: Vec<HoldRevision>,
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
    Ok(HoldSummary {
        why: hold_reasons(&row.reasons),
        creates: changes.creates.len(),
        updates: changes.updates.len(),
        removals: changes.removals.len(),
        revisions: store.hold_revisions(hold).await?,
        hold: row,
    })
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

/// The records a hold's revision would change, one row each, as CSV: the
/// current revision, or an earlier one by its digest. A first line names
/// the hold, revision and digest; a confirmation names the same digest.
/// Removals are named from the stored record, which a held run has not
/// touched; memberships and relationships by the people and groups at
/// either end.
pub async fn export_hold_csv(
    store: &Store,
    hold: i64,
    revision: Option<&str>,
) -> Result<String, SyncError> {
    let row = store.hold(hold).await?.ok_or(SyncError::NoSuchHold(hold))?;
    let (number, run_id, digest) = match revision {
        None => (row.revision, row.run_id, row.digest.clone()),
        Some(digest) => {
            let shown = store.hold_revisions(hold).await?;
            let found = shown
                .into_iter()
                .find(|r| r.digest == digest)
                .ok_or_else(|| SyncError::NoSuchRevision {
                    hold,
                    revision: digest.to_string(),
                })?;
            (found.revision, found.run_id, found.digest)
        }
    };
    let changes = kept(store, hold, run_id).await?;
    let mut removed: HashMap<(EntityKind, String), Record> = HashMap::new();
    for kind in EntityKind::ALL {
        let keys: Vec<String> = changes.removals_of(kind).cloned().collect();
        if keys.is_empty() {
            continue;
        }
        for stored in store.load(&row.connection, kind, &keys).await? {
            removed.insert((kind, stored.key.clone()), parse_stored(&stored)?);
        }
    }
    let names = evidence_names(store, &row.connection, &changes, &removed).await?;
    let mut out = format!(
        "# hold {hold} on {} revision {number} digest {digest}\n",
        row.connection
    );
    let mut csv = CsvExport::new(&HOLD_CSV_HEADER);
    let mut write = |fields: [&str; 6]| csv.row(&fields);
    for (record, _) in &changes.creates {
        let (kind, id, name, mis_id) = described(record, &names);
        write(["create", kind, &id, &name, &mis_id, ""]);
    }
    for update in &changes.updates {
        let (kind, id, name, mis_id) = described(&update.record, &names);
        let fields: Vec<&str> = update.fields.iter().map(|f| f.field.as_str()).collect();
        write(["update", kind, &id, &name, &mis_id, &fields.join(" ")]);
    }
    for (kind, key) in &changes.removals {
        let (kind, id, name, mis_id) = match removed.get(&(*kind, key.clone())) {
            Some(record) => described(record, &names),
            None => (
                kind.as_str(),
                key.replace('\u{1f}', " / "),
                String::new(),
                String::new(),
            ),
        };
        write(["remove", kind, &id, &name, &mis_id, ""]);
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
    removed: &HashMap<(EntityKind, String), Record>,
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
