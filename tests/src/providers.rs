//! Running the provider connectors, as built components, against the
//! provider sandbox: start both, read a snapshot to the end, and compare
//! what came back with what the sandbox's generator made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rostersync_core::entity::{EntityKey, identity, removal_identity};
use rostersync_model::{EntityKind, MemberRole, Membership, Mode, Record, Settings, SyncError};
use rostersync_runtime::{AllowedHost, Limits, Plugin, RunError, Sandbox, Snapshot};
use rostersync_sandbox::generator::{Student, World};
use rostersync_sandbox::{Mutation, MutationOutcome, SandboxConfig, SandboxHandle, Size};

use crate::runtime_with;

/// A connector loaded from its built component, beside a running provider
/// sandbox. Dropping it stops neither; the test's end does.
pub struct Bench {
    pub plugin: Arc<Plugin>,
    pub sandbox: SandboxHandle,
    _plugin_dir: tempfile::TempDir,
}

/// The provider sandbox at its default seed and a small size, and the named
/// workspace connector loaded.
pub async fn bench(connector: &str) -> Bench {
    bench_sized(
        connector,
        Size {
            schools: 2,
            pupils_per_school: 120,
        },
    )
    .await
}

pub async fn bench_sized(connector: &str, size: Size) -> Bench {
    crate::init_logs();
    let (dir, runtime) = runtime_with(&[connector]).await;
    let plugin = runtime
        .plugin(connector)
        .unwrap_or_else(|| panic!("the {connector} connector loads"));
    let sandbox = rostersync_sandbox::Sandbox::start(SandboxConfig {
        size,
        ..SandboxConfig::default()
    })
    .await
    .expect("the provider sandbox starts");
    Bench {
        plugin,
        sandbox,
        _plugin_dir: dir,
    }
}

/// Everything one snapshot produced.
#[derive(Debug, Default)]
pub struct Read {
    pub records: Vec<Record>,
    pub cursor: Option<String>,
}

impl Read {
    pub fn counts(&self) -> BTreeMap<EntityKind, usize> {
        rostersync_sandbox::expected::counts(&self.records)
    }

    /// The object with this kind and key (compound keys as
    /// [`key`] makes them), if the read produced it.
    pub fn find(&self, kind: EntityKind, key: &str) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| identity(r).is_some_and(|(k, id)| k == kind && id == key))
    }

    /// The kinds and keys of the explicit removals the read produced.
    pub fn removals(&self) -> Vec<(EntityKind, EntityKey)> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Removed(removal) => Some(removal_identity(removal)),
                _ => None,
            })
            .collect()
    }
}

/// How a connection reaches its provider in a test.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub settings: Settings,
    /// Allowed hosts beyond the connector's base-URL settings.
    pub extra_hosts: Vec<AllowedHost>,
    /// The connection's drop folder, for file-based connectors.
    pub drop_folder: Option<PathBuf>,
}

impl Connection {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    pub fn with_drop_folder(mut self, folder: &Path) -> Self {
        self.drop_folder = Some(folder.to_path_buf());
        self
    }
}

/// What [`Bench::change_pupils`] did to school 0: the four changes every
/// delta suite checks.
pub struct PupilChanges {
    pub before: World,
    pub after: World,
    pub added: MutationOutcome,
    pub edited: u64,
    pub removed: u64,
    pub removal: MutationOutcome,
    pub moved: u64,
    pub move_: MutationOutcome,
    /// The removed pupil's contacts, as they were before.
    pub removed_contacts: Vec<u64>,
}

impl Bench {
    /// In school 0: adds a pupil, then edits, removes and moves the
    /// first, second and third live pupils that `eligible` picks after
    /// skipping `skip` of them.
    pub fn change_pupils(&self, eligible: impl Fn(&Student) -> bool, skip: usize) -> PupilChanges {
        let before = self.sandbox.world();
        let picked: Vec<u64> = before.schools[0]
            .live_students()
            .filter(|s| eligible(s))
            .skip(skip)
            .take(3)
            .map(|s| s.uid)
            .collect();
        let [edited, removed, moved] = picked[..] else {
            panic!("school 0 has fewer than {} eligible pupils", skip + 3);
        };
        let removed_contacts = before.schools[0]
            .contacts_of(removed)
            .iter()
            .map(|(c, _)| c.uid)
            .collect();
        let mutate = |mutation| self.sandbox.mutate(0, mutation).expect("school 0 exists");
        let added = mutate(Mutation::AddPupil);
        mutate(Mutation::EditPupil {
            pupil: Some(edited),
        });
        let removal = mutate(Mutation::RemovePupil {
            pupil: Some(removed),
        });
        let move_ = mutate(Mutation::MovePupil { pupil: Some(moved) });
        PupilChanges {
            after: self.sandbox.world(),
            before,
            added,
            edited,
            removed,
            removal,
            moved,
            move_,
            removed_contacts,
        }
    }

    /// Opens a snapshot under default limits, to pull batches by hand.
    pub async fn open(&self, connection: &Connection, mode: Mode) -> Result<Snapshot, RunError> {
        let mut sandbox = Sandbox::for_connection(
            &self.plugin.info,
            &connection.settings,
            &connection.extra_hosts,
            Limits::default(),
        )
        .expect("the connection's base URLs are valid");
        if let Some(folder) = &connection.drop_folder {
            sandbox = sandbox.with_drop_folder(folder);
        }
        self.plugin
            .snapshot(&sandbox, &connection.settings, mode)
            .await
    }

    /// Reads one snapshot to the end under default limits.
    pub async fn read(&self, connection: &Connection, mode: Mode) -> Result<Read, RunError> {
        let mut snapshot = self.open(connection, mode).await?;
        let mut read = Read::default();
        while let Some(batch) = snapshot.next_batch().await? {
            read.records.extend(batch);
        }
        read.cursor = snapshot.cursor().await?;
        Ok(read)
    }

    /// A connection to `school` in the sandbox, with the settings the
    /// sandbox names for this connector.
    pub fn sandbox_connection(&self, school: usize) -> Connection {
        Connection::new(self.sandbox.connector_settings(&self.plugin.name, school))
    }

    /// A full read that must succeed.
    pub async fn full_read(&self, connection: &Connection) -> Read {
        self.read(connection, Mode::Full)
            .await
            .expect("a full read")
    }

    /// The connector's typed error a full read must end with.
    pub async fn failure(&self, connection: &Connection) -> SyncError {
        match self.read(connection, Mode::Full).await {
            Err(RunError::Connector { connector, error }) => {
                assert_eq!(connector, self.plugin.name);
                error
            }
            Err(other) => panic!("expected a connector error, got {other}"),
            Ok(read) => panic!("expected a failure, read {} records", read.records.len()),
        }
    }

    /// Reads with an allow-list built as if every base-URL setting named a
    /// host the connection does not use, so every request the connector
    /// makes goes to a host it may not call.
    pub async fn read_outside_allow_list(&self, connection: &Connection) -> Result<Read, RunError> {
        let elsewhere = self
            .plugin
            .info
            .settings
            .iter()
            .filter(|spec| spec.kind == rostersync_model::SettingKind::BaseUrl)
            .fold(connection.settings.clone(), |settings, spec| {
                settings.with(&spec.name, "http://192.0.2.10/not-the-provider")
            });
        let sandbox =
            Sandbox::for_connection(&self.plugin.info, &elsewhere, &[], Limits::default())
                .expect("the allow-list parses");
        let mut snapshot = self
            .plugin
            .snapshot(&sandbox, &connection.settings, Mode::Full)
            .await?;
        let mut read = Read::default();
        while let Some(batch) = snapshot.next_batch().await? {
            read.records.extend(batch);
        }
        Ok(read)
    }

    /// "Test connection" for these settings.
    pub async fn check(
        &self,
        connection: &Connection,
    ) -> Result<rostersync_model::SchoolInfo, RunError> {
        let sandbox = Sandbox::for_connection(
            &self.plugin.info,
            &connection.settings,
            &connection.extra_hosts,
            Limits::default(),
        )
        .expect("the connection's base URLs are valid");
        self.plugin.check(&sandbox, &connection.settings).await
    }
}

/// Asserts that `got` holds exactly the `expected` records, kind by kind
/// and key by key, comparing fields but not free attributes (connectors
/// may add what they like there). The message names the first difference.
/// A membership as a provider states it: no dates.
pub fn member(group: &str, person: &str, role: MemberRole) -> Record {
    Record::Membership(Membership {
        group: group.into(),
        person: person.into(),
        role,
        start_date: None,
        end_date: None,
    })
}

pub fn assert_same_records(got: &[Record], expected: &[Record]) {
    let index = |records: &[Record]| -> BTreeMap<(EntityKind, EntityKey), Record> {
        records
            .iter()
            .filter_map(|r| Some((identity(r)?, without_attributes(r.clone()))))
            .collect()
    };
    let (got_index, expected_index) = (index(got), index(expected));
    assert_eq!(
        rostersync_sandbox::expected::counts(got),
        rostersync_sandbox::expected::counts(expected),
        "record counts per kind differ"
    );
    for (key, want) in &expected_index {
        match got_index.get(key) {
            None => panic!("the connector did not produce {key:?}: expected {want:?}"),
            Some(have) => assert_eq!(have, want, "{key:?} differs"),
        }
    }
    let objects = got.iter().filter(|r| identity(r).is_some()).count();
    assert_eq!(got_index.len(), objects, "the read produced duplicate keys");
}

fn without_attributes(record: Record) -> Record {
    match record {
        Record::Person(mut person) => {
            person.attributes.clear();
            Record::Person(person)
        }
        other => other,
    }
}

/// The key the core gives a membership or relationship: both parts joined
/// by the unit separator.
pub fn key(first: &str, second: &str) -> EntityKey {
    format!("{first}\u{1f}{second}")
}
