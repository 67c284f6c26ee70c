//! A plan as people read it before provisioning is switched on: a table
//! for the terminal and a CSV for a spreadsheet (through the store's one
//! neutralising writer), with the changes a hold withholds listed apart.

use std::collections::BTreeMap;

use rostersync_core::targets::{Action, Plan, PlannedItem};
use rostersync_model::target::TargetChange;
use rostersync_store::CsvExport;

pub const PREVIEW_HEADER: [&str; 5] = ["Action", "External id", "Name", "Email", "Detail"];

fn row(item: &PlannedItem) -> [String; 5] {
    let (email, detail) = match &item.item.change {
        TargetChange::CreateUser { user } | TargetChange::UpdateUser { user, .. } => (
            user.email.clone().unwrap_or_default(),
            user.container.clone().unwrap_or_default(),
        ),
        TargetChange::CreateGroup { group } | TargetChange::UpdateGroup { group, .. } => (
            String::new(),
            format!(
                "{} members, {} owners",
                group.members.len(),
                group.owners.len()
            ),
        ),
        TargetChange::ChangeMembers { members } => (
            String::new(),
            format!(
                "+{} -{} members, +{} -{} owners",
                members.add.len(),
                members.remove.len(),
                members.add_owners.len(),
                members.remove_owners.len()
            ),
        ),
        _ => (String::new(), String::new()),
    };
    [
        item.action.as_str().to_string(),
        item.external_id.clone(),
        item.label.clone(),
        email,
        detail,
    ]
}

/// Every row: the plan's changes, then what a hold withholds.
fn rows(plan: &Plan) -> Vec<[String; 5]> {
    let mut rows: Vec<[String; 5]> = plan.items.iter().map(row).collect();
    if let Some(hold) = &plan.hold {
        for (action, lines) in [
            (Action::SuspendUser, &hold.suspend),
            (Action::DeleteUser, &hold.delete),
        ] {
            for line in lines {
                rows.push([
                    format!("{} (held)", action.as_str()),
                    String::new(),
                    line.clone(),
                    String::new(),
                    format!("waits for a confirm of hold {}", hold.digest),
                ]);
            }
        }
    }
    for rename in &plan.renames {
        rows.push([
            "rename (awaits approval)".into(),
            rename.external_id.clone(),
            rename.from.clone(),
            rename.to_email.clone().unwrap_or_default(),
            format!("to {}", rename.to),
        ]);
    }
    rows
}

/// How many changes of each action.
pub fn summary(plan: &Plan) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for item in &plan.items {
        *counts.entry(item.action.as_str()).or_default() += 1;
    }
    counts
}

/// The plan as a CSV.
pub fn csv(plan: &Plan) -> String {
    let mut csv = CsvExport::new(&PREVIEW_HEADER);
    for row in rows(plan) {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        csv.row(&cells);
    }
    csv.finish()
}

/// The plan as an aligned table.
pub fn table(plan: &Plan) -> String {
    let rows = rows(plan);
    let mut widths = PREVIEW_HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(PREVIEW_HEADER.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
