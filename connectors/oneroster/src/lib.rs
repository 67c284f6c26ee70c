//! OneRoster 1.1 and 1.2 CSV drop-folder connector: pupils on roll, staff,
//! contacts, classes, enrollments and pupil–contact links from the zips a
//! school's MIS drops into the connection's folder (mounted read-only at
//! `/drop`). Each drop's `manifest.csv` says which version it is.
//!
//! One setting, `school-ids`: when a drop's `orgs.csv` holds several orgs
//! of type `school` (a trust's export), the `sourcedId`s of those this
//! connection reads, comma-separated. Without it, a drop with several
//! schools is refused rather than merged into one.
//!
//! Which drops a read takes ([`folder`] orders them by arrival; each
//! zip's `manifest.csv` says whether it is a bulk or a delta drop):
//!
//! - A full read takes the newest bulk drop alone: a bulk drop is the
//!   whole truth, and anything older is superseded by it. Its cursor names
//!   that drop, so delta drops already in the folder that arrived after it
//!   are read by the next delta read.
//! - A delta read takes every drop that arrived after the one its cursor
//!   names, oldest first, and its cursor names the newest of them (or stays
//!   as it was when nothing new has arrived). Each must be a delta drop: a
//!   bulk drop says nothing about what was removed, so one arriving after
//!   the last read fails the delta read, asking for a full read.
//!
//! Each drop is unpacked and checked whole before its records go out in
//! batches ([`roster`]), so a truncated zip, a missing file or a missing
//! column ends the read with an error naming the file, never with a short
//! read. Tables: [`archive`].

mod archive;
mod folder;
mod roster;

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;

use rostersync_connector_sdk::*;

use crate::archive::{Archive, Table};
use crate::folder::{DropFile, Mark};
use crate::roster::Schools;

const SCHOOL_IDS: &str = "school-ids";

struct OneRosterCsv;

impl Connector for OneRosterCsv {
    type Snapshot = Reader;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new(
            "OneRoster CSV",
            env!("CARGO_PKG_VERSION"),
            "Pupils on roll, staff, contacts, classes and enrollments from the OneRoster 1.1 or 1.2 CSV zips a school drops in a folder.",
        )
        .setting(SettingSpec::text(
            SCHOOL_IDS,
            "When a drop holds several schools: the sourcedIds of the orgs this connection reads, comma-separated.",
            false,
            None,
        ))
        .capability(Capability::DropFolder)
        .capability(Capability::DeltaReads)
        .capability(Capability::Contacts)
    }

    /// Names the school from `orgs.csv` of the newest drop that has one
    /// (delta drops usually leave it out).
    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        let drops = folder::drops(&drop_folder())?;
        if drops.is_empty() {
            return Err(nothing_dropped());
        }
        let wanted = wanted_schools(settings);
        for drop in drops.iter().rev() {
            let mut archive = open(drop)?;
            // A delta's orgs.csv may hold no rows.
            if let Some((_, orgs)) = archive.delivered("orgs", &["sourcedId", "name", "type"])?
                && orgs.rows().next().is_some()
            {
                let schools = chosen_schools(&orgs, wanted.as_ref())?;
                return school(&orgs, &archive, schools.as_ref());
            }
        }
        Err(SyncError::BadResponse(format!(
            "none of the {} drops in the folder has orgs.csv, which names the school",
            drops.len()
        )))
    }

    fn snapshot(settings: Settings, mode: Mode) -> Reader {
        Reader {
            wanted: wanted_schools(&settings),
            mode,
            read: None,
            batches_done: 0,
            records_done: 0,
        }
    }
}

fn nothing_dropped() -> SyncError {
    SyncError::Unavailable("the drop folder holds no OneRoster zip yet".into())
}

fn open(drop: &DropFile) -> Result<Archive<File>, SyncError> {
    let file = File::open(&drop.path).map_err(|e| {
        SyncError::BadResponse(format!("{}: the drop cannot be read: {e}", drop.name()))
    })?;
    Archive::open(drop.name(), file)
}

/// The `school-ids` setting's org ids, if set.
fn wanted_schools(settings: &Settings) -> Option<BTreeSet<String>> {
    settings.get(SCHOOL_IDS).map(|ids| {
        ids.split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// The orgs of type `school` in `orgs.csv`.
fn schools_in(orgs: &Table) -> Result<Vec<String>, SyncError> {
    let mut schools = Vec::new();
    for row in orgs.rows() {
        if row.required("type")?.eq_ignore_ascii_case("school") {
            schools.push(row.required("sourcedId")?.to_string());
        }
    }
    Ok(schools)
}

/// Which schools a drop's rows are kept for: those `school-ids` names
/// (each must be a school of the drop), all when the drop holds one, and
/// an error asking for the setting when it holds several.
fn chosen_schools(orgs: &Table, wanted: Option<&BTreeSet<String>>) -> Result<Schools, SyncError> {
    let schools = schools_in(orgs)?;
    match wanted {
        Some(wanted) => match wanted.iter().find(|id| !schools.contains(id)) {
            Some(unknown) => Err(SyncError::BadSettings(format!(
                "the setting `{SCHOOL_IDS}` names {unknown:?}, which {} does not list as a school (it lists {})",
                orgs.source(),
                schools.join(", ")
            ))),
            None => Ok(Some(wanted.clone())),
        },
        None if schools.len() > 1 => Err(SyncError::BadSettings(format!(
            "{} lists {} schools ({}); set `{SCHOOL_IDS}` to the ones this connection reads",
            orgs.source(),
            schools.len(),
            schools.join(", ")
        ))),
        None => Ok(None),
    }
}

/// The first org of type `school` the connection reads.
fn school(
    orgs: &Table,
    archive: &Archive<File>,
    schools: Option<&BTreeSet<String>>,
) -> Result<SchoolInfo, SyncError> {
    for row in orgs.rows() {
        let id = row.required("sourcedId")?;
        if !row.required("type")?.eq_ignore_ascii_case("school")
            || schools.is_some_and(|ids| !ids.contains(id))
        {
            continue;
        }
        let mut details = vec![Attribute {
            name: "drop".into(),
            value: archive.name().into(),
        }];
        if let Some(identifier) = row.get("identifier") {
            details.push(Attribute {
                name: "identifier".into(),
                value: identifier.into(),
            });
        }
        if let Some(system) = archive.property("source.systemName") {
            details.push(Attribute {
                name: "source".into(),
                value: system.into(),
            });
        }
        return Ok(SchoolInfo {
            id: id.into(),
            name: row.required("name")?.into(),
            details,
        });
    }
    Err(SyncError::BadResponse(format!(
        "{}: no org has type school",
        orgs.source()
    )))
}

struct Reader {
    /// The `school-ids` setting.
    wanted: Option<BTreeSet<String>>,
    mode: Mode,
    read: Option<Read>,
    batches_done: u32,
    records_done: u64,
}

/// A read whose drops are unpacked and checked.
struct Read {
    /// Batches not yet handed out.
    pending: VecDeque<Vec<RosterRecord>>,
    /// The cursor once every batch is out.
    reached: String,
}

impl Snapshot for Reader {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        let read = match &mut self.read {
            Some(read) => read,
            None => self.read.insert(read(&self.mode, self.wanted.as_ref())?),
        };
        let Some(batch) = read.pending.pop_front() else {
            return Ok(None);
        };
        self.batches_done += 1;
        self.records_done += batch.len() as u64;
        let total = self.batches_done + read.pending.len() as u32;
        log::progress(self.batches_done, Some(total), self.records_done);
        Ok(Some(batch))
    }

    fn cursor(&self) -> Option<String> {
        self.read
            .as_ref()
            .filter(|read| read.pending.is_empty())
            .map(|read| read.reached.clone())
    }
}

/// Which schools of `archive` a read keeps: chosen from its `orgs.csv`
/// when it has one, else those `school-ids` names (or all).
fn schools_of(
    archive: &mut Archive<File>,
    wanted: Option<&BTreeSet<String>>,
) -> Result<Schools, SyncError> {
    match archive.optional("orgs", &["sourcedId", "type"]) {
        Some((_, orgs)) => chosen_schools(&orgs, wanted),
        None => Ok(wanted.cloned()),
    }
}

/// The batches a read takes, and the cursor it reaches.
fn read(mode: &Mode, wanted: Option<&BTreeSet<String>>) -> Result<Read, SyncError> {
    let drops = folder::drops(&drop_folder())?;
    match mode {
        Mode::Full => {
            for drop in drops.iter().rev() {
                let mut archive = open(drop)?;
                if !archive.is_delta() {
                    log::info("reading a bulk drop", &[("drop", drop.name())]);
                    let schools = schools_of(&mut archive, wanted)?;
                    return Ok(Read {
                        pending: roster::read_drop(&mut archive, &schools)?.into(),
                        reached: drop.mark.cursor(),
                    });
                }
            }
            // Delta drops with no bulk drop before them cannot be read in
            // full, however often the read is tried: the school's export
            // must send a bulk drop first.
            Err(if drops.is_empty() {
                nothing_dropped()
            } else {
                SyncError::BadSettings(
                    "the drop folder holds only delta drops; a full read needs a bulk drop, so the export must send one".into(),
                )
            })
        }
        Mode::Delta(cursor) => {
            let since = Mark::from_cursor(cursor)?;
            let mut read = Read {
                pending: VecDeque::new(),
                reached: cursor.clone(),
            };
            for drop in drops.iter().filter(|drop| drop.mark > since) {
                let mut archive = open(drop)?;
                if !archive.is_delta() {
                    return Err(SyncError::BadResponse(format!(
                        "{}: a bulk drop arrived after the last read, and a bulk drop does not say what was removed since; run a full read",
                        drop.name()
                    )));
                }
                log::info("reading a delta drop", &[("drop", drop.name())]);
                let schools = schools_of(&mut archive, wanted)?;
                read.pending
                    .extend(roster::read_drop(&mut archive, &schools)?);
                read.reached = drop.mark.cursor();
            }
            Ok(read)
        }
    }
}

export_connector!(OneRosterCsv);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_drop_folder_connector_with_deltas() {
        let info = OneRosterCsv::describe();
        assert_eq!(info.provider, "OneRoster CSV");
        let names: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [SCHOOL_IDS], "the folder is the connection's");
        assert_eq!(
            info.capabilities,
            [
                Capability::DropFolder,
                Capability::DeltaReads,
                Capability::Contacts
            ]
        );
    }
}
