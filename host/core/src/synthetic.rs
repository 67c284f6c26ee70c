//! Synthetic rosters at scale, for the benchmarks: people (staff, so every
//! record passes the default validation), one class per 25 of them and a
//! membership each, about 2.04 records per person, in batches.

use rostersync_model::{Date, Group, GroupKind, MemberRole, Membership, Person, Record, Role};

pub const GROUP_SIZE: usize = 25;

fn person(n: usize, edition: u32) -> Record {
    let mut p = Person::new(format!("P{n:07}"), Role::Staff);
    p.first_name = Some(format!("First{n}"));
    p.last_name = Some(format!("Last{}", n % 997));
    p.email = Some(format!("p{n}.{edition}@school.example"));
    p.start_date = Date::from_ymd_opt(2020, 9, 1);
    Record::Person(p)
}

/// A full read of `people` people in batches of `batch`; with
/// `changed_every`, every n-th person's email differs from the base roster.
pub fn roster(
    people: usize,
    batch: usize,
    changed_every: Option<usize>,
) -> impl Iterator<Item = Vec<Record>> {
    let records = (0..people).flat_map(move |n| {
        let edition = u32::from(changed_every.is_some_and(|every| n % every == 0));
        let mut out = vec![person(n, edition)];
        let group = format!("C{:06}", n / GROUP_SIZE);
        if n % GROUP_SIZE == 0 {
            out.push(Record::Group(Group {
                id: group.clone(),
                kind: GroupKind::Class,
                name: Some(format!("Class {group}")),
                code: None,
                subject: Some("Maths".into()),
                year_group: None,
                active: true,
                parent: None,
            }));
        }
        out.push(Record::Membership(Membership {
            group,
            person: format!("P{n:07}"),
            role: MemberRole::Teacher,
            start_date: None,
            end_date: None,
        }));
        out
    });
    let mut records = records.peekable();
    std::iter::from_fn(move || {
        let next: Vec<Record> = records.by_ref().take(batch).collect();
        (!next.is_empty()).then_some(next)
    })
}
