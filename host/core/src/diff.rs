//! The streaming diff: incoming batches are compared, by content hash,
//! against the hashes of what the connection last applied. Unchanged
//! records are dropped as they arrive, so only changes are held in memory
//! and unchanged records cost no writes.
//!
//! A read that completed yields removals (a full read reconciles: anything
//! stored but not read is gone, so a delete lost in transit is found again;
//! a delta read applies the connector's explicit removals). A read that
//! failed can only yield a change set without removals: the two ways out of
//! a [`Diff`] are [`Diff::complete`] and [`Diff::failed`], and only the
//! first computes removals.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rostersync_model::Record;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::entity::{ContentHash, EntityKey, EntityKind, identity, removal_identity};

type Id = (EntityKind, EntityKey);

/// The content hashes of what a connection last applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriorHashes {
    hashes: HashMap<Id, ContentHash>,
}

impl PriorHashes {
    pub fn insert(&mut self, kind: EntityKind, key: EntityKey, hash: ContentHash) {
        self.hashes.insert((kind, key), hash);
    }

    pub fn get(&self, kind: EntityKind, key: &str) -> Option<ContentHash> {
        self.hashes.get(&(kind, key.to_string())).copied()
    }

    /// How many objects of a kind the connection holds.
    pub fn population(&self, kind: EntityKind) -> usize {
        self.hashes.keys().filter(|(k, _)| *k == kind).count()
    }

    pub fn keys(&self, kind: EntityKind) -> impl Iterator<Item = &EntityKey> {
        self.hashes
            .keys()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, key)| key)
    }
}

/// Whether a read covers everything or only what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coverage {
    Full,
    Delta,
}

/// A diff in progress.
pub struct Diff {
    coverage: Coverage,
    prior: PriorHashes,
    /// Keys read so far, for reconciling a full read.
    seen: HashSet<Id>,
    upserts: BTreeMap<Id, (Record, ContentHash)>,
    removals: BTreeSet<Id>,
}

impl Diff {
    /// A diff for a full read: whatever is not read is gone.
    pub fn full(prior: PriorHashes) -> Self {
        Self::new(Coverage::Full, prior)
    }

    /// A diff for a delta read: only explicit removals remove.
    pub fn delta(prior: PriorHashes) -> Self {
        Self::new(Coverage::Delta, prior)
    }

    fn new(coverage: Coverage, prior: PriorHashes) -> Self {
        Self {
            coverage,
            prior,
            seen: HashSet::new(),
            upserts: BTreeMap::new(),
            removals: BTreeSet::new(),
        }
    }

    /// Takes one batch. Within a read, a later record for the same object
    /// replaces an earlier one, and a removal cancels an earlier record.
    pub fn add_batch(&mut self, batch: Vec<Record>) {
        for record in batch {
            if let Record::Removed(removal) = &record {
                let id = removal_identity(removal);
                self.upserts.remove(&id);
                self.seen.remove(&id);
                self.removals.insert(id);
                continue;
            }
            let id = identity(&record).expect("not a removal");
            self.removals.remove(&id);
            let hash = ContentHash::of(&record);
            if self.coverage == Coverage::Full {
                self.seen.insert(id.clone());
            }
            if self.prior.hashes.get(&id) == Some(&hash) {
                self.upserts.remove(&id);
            } else {
                self.upserts.insert(id, (record, hash));
            }
        }
    }

    /// Keeps an object as it was: it was read, but failed validation, so
    /// its stored version stays and it is neither updated nor removed.
    pub fn retain(&mut self, kind: EntityKind, key: EntityKey) {
        let id = (kind, key);
        self.upserts.remove(&id);
        self.removals.remove(&id);
        if self.coverage == Coverage::Full {
            self.seen.insert(id);
        }
    }

    /// The read completed: creates, updates and removals.
    pub fn complete(mut self) -> PendingChanges {
        let removals: Vec<Id> = match self.coverage {
            Coverage::Full => {
                let mut gone: Vec<Id> = self
                    .prior
                    .hashes
                    .keys()
                    .filter(|id| !self.seen.contains(*id))
                    .cloned()
                    .collect();
                gone.sort();
                gone
            }
            Coverage::Delta => std::mem::take(&mut self.removals)
                .into_iter()
                .filter(|id| self.prior.hashes.contains_key(id))
                .collect(),
        };
        self.pending(removals)
    }

    /// The read failed part-way: what it read may be created or updated,
    /// but nothing is removed, because absence proves nothing.
    pub fn failed(self) -> PendingChanges {
        self.pending(Vec::new())
    }

    fn pending(self, removals: Vec<Id>) -> PendingChanges {
        let mut creates = Vec::new();
        let mut changed = Vec::new();
        for (id, (record, hash)) in self.upserts {
            if self.prior.hashes.contains_key(&id) {
                changed.push((id, record, hash));
            } else {
                creates.push((record, hash));
            }
        }
        PendingChanges {
            creates,
            changed,
            removals,
            prior: self.prior,
        }
    }
}

/// A change set whose updates still need the old records, which the caller
/// loads (only for the keys that changed) to work out field-level changes.
pub struct PendingChanges {
    creates: Vec<(Record, ContentHash)>,
    changed: Vec<(Id, Record, ContentHash)>,
    removals: Vec<Id>,
    prior: PriorHashes,
}

impl PendingChanges {
    /// The hashes the diff compared against, which the holds need too;
    /// handed over rather than copied, as they can be millions.
    pub fn take_prior(&mut self) -> PriorHashes {
        std::mem::take(&mut self.prior)
    }

    /// The objects whose previous version is needed.
    pub fn keys_to_load(&self) -> impl Iterator<Item = (EntityKind, &EntityKey)> {
        self.changed.iter().map(|((kind, key), _, _)| (*kind, key))
    }

    /// The change set, given the previous versions of the changed objects.
    pub fn with_previous(self, previous: &HashMap<(EntityKind, EntityKey), Record>) -> ChangeSet {
        let updates = self
            .changed
            .into_iter()
            .map(|(id, record, hash)| {
                let fields = match previous.get(&id) {
                    Some(old) => field_changes(old, &record),
                    None => Vec::new(),
                };
                Update {
                    kind: id.0,
                    key: id.1,
                    record,
                    hash,
                    fields,
                }
            })
            .collect();
        ChangeSet {
            creates: self.creates,
            updates,
            removals: self.removals,
        }
    }
}

/// One field that changed, with its values as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub kind: EntityKind,
    pub key: EntityKey,
    pub record: Record,
    pub hash: ContentHash,
    pub fields: Vec<FieldChange>,
}

/// What a run would change, in a deterministic order (kind, then key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub creates: Vec<(Record, ContentHash)>,
    pub updates: Vec<Update>,
    pub removals: Vec<(EntityKind, EntityKey)>,
}

impl ChangeSet {
    /// A change set that creates each of `records`, with its content hash:
    /// what reading them into an empty store produces.
    pub fn creating(records: impl IntoIterator<Item = Record>) -> Self {
        Self {
            creates: records
                .into_iter()
                .map(|record| {
                    let hash = ContentHash::of(&record);
                    (record, hash)
                })
                .collect(),
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.updates.is_empty() && self.removals.is_empty()
    }

    pub fn creates_of(&self, kind: EntityKind) -> impl Iterator<Item = &Record> {
        self.creates
            .iter()
            .map(|(r, _)| r)
            .filter(move |r| identity(r).is_some_and(|(k, _)| k == kind))
    }

    pub fn updates_of(&self, kind: EntityKind) -> impl Iterator<Item = &Update> {
        self.updates.iter().filter(move |u| u.kind == kind)
    }

    pub fn removals_of(&self, kind: EntityKind) -> impl Iterator<Item = &EntityKey> {
        self.removals
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, key)| key)
    }

    /// The same change set without its removals, for a connection that
    /// applies creates and updates while removals wait for an operator.
    pub fn without_removals(&self) -> ChangeSet {
        ChangeSet {
            removals: Vec::new(),
            ..self.clone()
        }
    }
}

/// The top-level fields that differ between two versions of an object.
fn field_changes(old: &Record, new: &Record) -> Vec<FieldChange> {
    let fields = |record: &Record| match serde_json::to_value(record).expect("records serialise") {
        // Records serialise as `{"person": {...}}`; compare the inner object.
        Value::Object(outer) => match outer.into_iter().next() {
            Some((_, Value::Object(inner))) => inner,
            _ => Default::default(),
        },
        _ => Default::default(),
    };
    let (old, new) = (fields(old), fields(new));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (before, after) = (
                old.get(name).cloned().unwrap_or(Value::Null),
                new.get(name).cloned().unwrap_or(Value::Null),
            );
            (before != after).then(|| FieldChange {
                field: name.clone(),
                old: before,
                new: after,
            })
        })
        .collect()
}

/// A whole roster in memory: what tests, property tests and small tools
/// use in place of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    records: BTreeMap<(EntityKind, EntityKey), Record>,
}

impl Roster {
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Self {
        let mut roster = Roster::default();
        for record in records {
            if let Some(id) = identity(&record) {
                roster.records.insert(id, record);
            }
        }
        roster
    }

    pub fn hashes(&self) -> PriorHashes {
        let mut prior = PriorHashes::default();
        for ((kind, key), record) in &self.records {
            prior.insert(*kind, key.clone(), ContentHash::of(record));
        }
        prior
    }

    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    /// Everything the pending changes need from this roster.
    pub fn previous(&self, pending: &PendingChanges) -> HashMap<(EntityKind, EntityKey), Record> {
        pending
            .keys_to_load()
            .filter_map(|(kind, key)| {
                let id = (kind, key.clone());
                self.records.get(&id).map(|r| (id, r.clone()))
            })
            .collect()
    }

    pub fn apply(&mut self, changes: &ChangeSet) {
        for (record, _) in &changes.creates {
            let id = identity(record).expect("creates are objects");
            self.records.insert(id, record.clone());
        }
        for update in &changes.updates {
            self.records
                .insert((update.kind, update.key.clone()), update.record.clone());
        }
        for id in &changes.removals {
            self.records.remove(id);
        }
    }

    /// The change set from this roster to a full read of `batches`.
    pub fn diff_full(&self, batches: impl IntoIterator<Item = Vec<Record>>) -> ChangeSet {
        let mut diff = Diff::full(self.hashes());
        for batch in batches {
            diff.add_batch(batch);
        }
        let pending = diff.complete();
        let previous = self.previous(&pending);
        pending.with_previous(&previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostersync_model::{MembershipKey, Person, Removal, Role};

    fn pupil(id: &str, first: &str) -> Record {
        let mut p = Person::new(id, Role::Student);
        p.first_name = Some(first.into());
        Record::Person(p)
    }

    #[test]
    fn updates_name_the_fields_that_changed() {
        let before = Roster::from_records([pupil("S1", "Zoe"), pupil("S2", "Amir")]);
        let mut renamed = Person::new("S1", Role::Student);
        renamed.first_name = Some("Zoë".into());
        renamed.email = Some("zoe@school.example".into());
        let changes = before.diff_full([vec![Record::Person(renamed), pupil("S2", "Amir")]]);
        assert!(changes.creates.is_empty() && changes.removals.is_empty());
        let [update] = changes.updates.as_slice() else {
            panic!("expected one update, got {changes:?}");
        };
        assert_eq!(
            (update.kind, update.key.as_str()),
            (EntityKind::Person, "S1")
        );
        let fields: Vec<(&str, String, String)> = update
            .fields
            .iter()
            .map(|f| (f.field.as_str(), f.old.to_string(), f.new.to_string()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("email", "null".into(), "\"zoe@school.example\"".into()),
                ("first_name", "\"Zoe\"".into(), "\"Zoë\"".into()),
            ]
        );
    }

    #[test]
    fn a_full_read_reconciles_lost_removals() {
        let before = Roster::from_records([pupil("S1", "A"), pupil("S2", "B"), pupil("S3", "C")]);
        let changes = before.diff_full([vec![pupil("S1", "A")], vec![pupil("S3", "C")]]);
        assert_eq!(
            changes.removals,
            vec![(EntityKind::Person, "S2".to_string())]
        );
    }

    #[test]
    fn a_delta_removes_only_what_it_names_and_what_exists() {
        let before = Roster::from_records([pupil("S1", "A"), pupil("S2", "B")]);
        let mut diff = Diff::delta(before.hashes());
        diff.add_batch(vec![
            pupil("S3", "C"),
            Record::Removed(Removal::Person("S1".into())),
            Record::Removed(Removal::Person("never-synced".into())),
            Record::Removed(Removal::Membership(MembershipKey {
                group: "G".into(),
                person: "S2".into(),
            })),
        ]);
        let changes = diff.complete().with_previous(&HashMap::new());
        assert_eq!(
            changes.removals,
            vec![(EntityKind::Person, "S1".to_string())]
        );
        assert_eq!(
            changes.creates.len(),
            1,
            "S2 is untouched by a delta that does not mention it"
        );
    }

    #[test]
    fn a_later_record_in_the_same_read_wins() {
        let before = Roster::from_records([pupil("S1", "A")]);
        let mut diff = Diff::delta(before.hashes());
        diff.add_batch(vec![Record::Removed(Removal::Person("S1".into()))]);
        diff.add_batch(vec![pupil("S1", "A")]);
        assert!(diff.complete().with_previous(&HashMap::new()).is_empty());
    }
}
