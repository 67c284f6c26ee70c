//! The operator's answers to a hold: confirm (apply the held change set,
//! or for a contacts hold accept those contacts), reject (apply nothing),
//! and the CSV of the records a hold would change, to decide with.

use std::collections::HashMap;

use chrono::Utc;
use rostersync_core::{ChangeSet, EntityKind};
use rostersync_model::Record;
use rostersync_store::{
    AuditEntry, CsvExport, HoldRow, HoldStatus, HoldWrite, RunMode, RunRecord, Store, StoreError,
    WriteSet,
};

use crate::provision::{self, Context, issue_row};
use crate::run::{RunStatus, notification, parse_stored};
use crate::{ConnectionConfig, SyncError};

async fn open_hold(store: &Store, hold: i64) -> Result<(HoldRow, ChangeSet), SyncError> {
    let row = store.hold(hold).await?.ok_or(SyncError::NoSuchHold(hold))?;
    if row.status != HoldStatus::Open {
        return Err(SyncError::HoldAnswered(hold));
    }
    let body = store
        .kept_change_set(row.run_id)
        .await?
        .ok_or_else(|| SyncError::Corrupt {
            what: format!("the change set of hold {hold}"),
            error: "it is missing".into(),
        })?;
    let changes = serde_json::from_str(&body).map_err(|e| SyncError::Corrupt {
        what: format!("the change set of hold {hold}"),
        error: e.to_string(),
    })?;
    Ok((row, changes))
}

fn answered(error: StoreError) -> SyncError {
    match error {
        StoreError::HoldNotOpen(hold) => SyncError::HoldAnswered(hold),
        other => other.into(),
    }
}

/// Applies a held change set as its own run, in one transaction with the
/// answer and its audit record; returns the run's id.
pub async fn confirm_hold(
    store: &Store,
    connection: &ConnectionConfig,
    hold: i64,
    actor: &str,
) -> Result<i64, SyncError> {
    let (row, changes) = open_hold(store, hold).await?;
    let now = Utc::now();
    let run_token = format!("hold-{hold}");
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
        "applied held run {} on confirmation by {actor}",
        row.run_id
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
        serde_json::json!({"hold": hold, "by": actor}),
    ));
    writes.counts = plan.counts.rows();
    writes.issues = plan.issues.iter().map(issue_row).collect();
    writes.hold = Some(HoldWrite::Answer {
        hold,
        status: HoldStatus::Confirmed,
        by: actor.to_string(),
    });
    writes.audit.push(AuditEntry {
        at: now,
        actor: actor.to_string(),
        action: "hold.confirm".into(),
        connection: Some(row.connection.clone()),
        subject: format!("hold {hold}"),
        detail: format!(
            "{} creates, {} updates, {} removals applied",
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
    let (row, _) = open_hold(store, hold).await?;
    store
        .reject_hold(
            hold,
            &AuditEntry {
                at: Utc::now(),
                actor: actor.to_string(),
                action: "hold.reject".into(),
                connection: Some(row.connection),
                subject: format!("hold {hold}"),
                detail: format!("held run {} discarded", row.run_id),
            },
        )
        .await
        .map_err(answered)
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

/// The records a hold would change, one row each, as CSV. Removals are
/// named from the stored record, which a held run has not touched.
pub async fn export_hold_csv(store: &Store, hold: i64) -> Result<String, SyncError> {
    let row = store.hold(hold).await?.ok_or(SyncError::NoSuchHold(hold))?;
    let body = store.kept_change_set(row.run_id).await?.unwrap_or_default();
    let changes: ChangeSet = serde_json::from_str(&body).unwrap_or_default();
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
    let mut csv = CsvExport::new(&HOLD_CSV_HEADER);
    let mut write = |fields: [&str; 6]| csv.row(&fields);
    for (record, _) in &changes.creates {
        let (kind, id, name, mis_id) = described(record);
        write(["create", kind, &id, &name, &mis_id, ""]);
    }
    for update in &changes.updates {
        let (kind, id, name, mis_id) = described(&update.record);
        let fields: Vec<&str> = update.fields.iter().map(|f| f.field.as_str()).collect();
        write(["update", kind, &id, &name, &mis_id, &fields.join(" ")]);
    }
    for (kind, key) in &changes.removals {
        let (kind, id, name, mis_id) = match removed.get(&(*kind, key.clone())) {
            Some(record) => described(record),
            None => (
                kind.as_str(),
                key.replace('\u{1f}', " / "),
                String::new(),
                String::new(),
            ),
        };
        write(["remove", kind, &id, &name, &mis_id, ""]);
    }
    Ok(csv.finish())
}

/// Entity type, source id, name and MIS id, as the issues export names them.
fn described(record: &Record) -> (&'static str, String, String, String) {
    match record {
        Record::Person(p) => (
            "person",
            p.id.clone(),
            [p.first_name.as_deref(), p.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
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
            String::new(),
            String::new(),
        ),
        Record::Relationship(r) => (
            "relationship",
            format!("{} / {}", r.student, r.contact),
            String::new(),
            String::new(),
        ),
        Record::Removed(_) => ("removal", String::new(), String::new(), String::new()),
    }
}
