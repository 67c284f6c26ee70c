//! Properties of the diff that must hold for any rosters:
//! applying diff(A, B) to A gives B; diff(A, A) is empty; how the read is
//! cut into batches, and in what order they arrive, changes nothing; a
//! failed read never removes anything.

use proptest::prelude::*;
use rostersync_core::{Diff, Roster};
use rostersync_model::{
    ContactType, Group, GroupKind, MemberRole, Membership, Person, Record, Relationship, Role,
};

/// A roster over a small id space, so that two generated rosters share
/// many objects (some equal, some changed) and differ in others.
fn roster() -> impl Strategy<Value = Vec<Record>> {
    let person = (
        0..40u32,
        prop::sample::select(vec!["Zoë", "Siobhán", "Amir", "Nguyễn"]),
        any::<bool>(),
    )
        .prop_map(|(n, name, has_email)| {
            let mut p = Person::new(
                format!("P{n}"),
                if n % 5 == 0 {
                    Role::Staff
                } else {
                    Role::Student
                },
            );
            p.first_name = Some(name.to_string());
            p.email = has_email.then(|| format!("p{n}@school.example"));
            Record::Person(p)
        });
    let group = (0..6u32, any::<bool>()).prop_map(|(n, named)| {
        Record::Group(Group {
            id: format!("G{n}"),
            kind: GroupKind::Class,
            name: named.then(|| format!("Class {n}")),
            code: None,
            subject: None,
            year_group: None,
            active: true,
            parent: None,
        })
    });
    let membership = (0..6u32, 0..40u32).prop_map(|(g, p)| {
        Record::Membership(Membership {
            group: format!("G{g}"),
            person: format!("P{p}"),
            role: MemberRole::Student,
            start_date: None,
            end_date: None,
        })
    });
    let relationship = (
        0..40u32,
        0..40u32,
        prop::sample::select(vec![ContactType::Primary, ContactType::Emergency]),
    )
        .prop_map(|(s, c, contact_type)| {
            Record::Relationship(Relationship {
                student: format!("P{s}"),
                contact: format!("C{c}"),
                contact_type,
                relationship: Some("Mother".into()),
                priority: Some(1),
                parental_responsibility: true,
            })
        });
    prop::collection::vec(prop_oneof![person, group, membership, relationship], 0..80)
        // One record per object, as a read delivers.
        .prop_map(|records| Roster::from_records(records).records().cloned().collect())
}

fn batches(records: &[Record], size: usize) -> Vec<Vec<Record>> {
    records
        .chunks(size.max(1))
        .map(<[Record]>::to_vec)
        .collect()
}

proptest! {
    #[test]
    fn applying_the_diff_from_a_to_b_gives_b(a in roster(), b in roster(), size in 1usize..30) {
        let mut state = Roster::from_records(a);
        let changes = state.diff_full(batches(&b, size));
        state.apply(&changes);
        prop_assert_eq!(state, Roster::from_records(b));
    }

    #[test]
    fn a_roster_diffed_against_itself_changes_nothing(a in roster(), size in 1usize..30) {
        let state = Roster::from_records(a.clone());
        prop_assert!(state.diff_full(batches(&a, size)).is_empty());
    }

    #[test]
    fn batch_size_and_order_do_not_change_the_result(
        a in roster(),
        b in roster(),
        size in 1usize..30,
        other_size in 1usize..30,
        seed in any::<u64>(),
    ) {
        let state = Roster::from_records(a);
        let in_order = state.diff_full(batches(&b, size));
        let mut shuffled = batches(&b, other_size);
        // A deterministic shuffle from the seed.
        let len = shuffled.len();
        for i in (1..len).rev() {
            shuffled.swap(i, (seed.wrapping_mul(i as u64 + 1) % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(in_order, state.diff_full(shuffled));
    }

    #[test]
    fn a_failed_read_never_removes(a in roster(), b in roster(), read_before_failure in 0usize..80) {
        let state = Roster::from_records(a);
        let mut diff = Diff::full(state.hashes());
        diff.add_batch(b.into_iter().take(read_before_failure).collect());
        let pending = diff.failed();
        let changes = pending.with_previous(&Default::default());
        prop_assert!(changes.removals.is_empty());
    }
}
