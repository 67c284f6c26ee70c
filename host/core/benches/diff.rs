//! The pure diff at scale: 1M people, their groups and memberships, through
//! a first import, an unchanged resync and a 1 %-changed resync.
//! `cargo bench -p rostersync-core --bench diff` prints the figures.

use std::time::Instant;

use rostersync_core::{Diff, PriorHashes, Roster};
use rostersync_model::{Group, GroupKind, MemberRole, Membership, Person, Record, Role};

const PEOPLE: usize = 1_000_000;
const GROUP_SIZE: usize = 25;
const BATCH: usize = 5_000;

fn person(n: usize, edition: u32) -> Record {
    let mut p = Person::new(format!("P{n:07}"), Role::Student);
    p.first_name = Some(format!("First{n}"));
    p.last_name = Some(format!("Last{}", n % 997));
    p.email = Some(format!("p{n}.{edition}@school.example"));
    p.year_group = Some(format!("Y{}", n % 13));
    Record::Person(p)
}

/// People, one class per 25 of them, and a membership each: ~2.04M records.
fn snapshot(changed_every: Option<usize>) -> impl Iterator<Item = Vec<Record>> {
    let records = (0..PEOPLE).flat_map(move |n| {
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
            role: MemberRole::Student,
            start_date: None,
            end_date: None,
        }));
        out
    });
    let mut records = records.peekable();
    std::iter::from_fn(move || {
        let batch: Vec<Record> = records.by_ref().take(BATCH).collect();
        (!batch.is_empty()).then_some(batch)
    })
}

fn run(label: &str, prior: PriorHashes, changed_every: Option<usize>) -> usize {
    let started = Instant::now();
    let mut diff = Diff::full(prior);
    for batch in snapshot(changed_every) {
        diff.add_batch(batch);
    }
    let pending = diff.complete();
    let changes = pending.with_previous(&Default::default());
    let took = started.elapsed();
    let touched = changes.creates.len() + changes.updates.len() + changes.removals.len();
    println!(
        "{label:<28} {:>8.2} s   {touched:>9} changes",
        took.as_secs_f64()
    );
    touched
}

fn main() {
    println!(
        "{PEOPLE} people, {} classes, {PEOPLE} memberships, batches of {BATCH}",
        PEOPLE / GROUP_SIZE
    );
    let started = Instant::now();
    let generated: usize = snapshot(None).map(|batch| batch.len()).sum();
    println!(
        "{:<28} {:>8.2} s   {generated:>9} records (the baseline: making the read)",
        "generate only",
        started.elapsed().as_secs_f64()
    );
    run("first import", PriorHashes::default(), None);
    let roster = Roster::from_records(snapshot(None).flatten());
    let prior = roster.hashes();
    drop(roster);
    run("unchanged resync", prior.clone(), None);
    run("1 %-changed resync", prior, Some(100));
}
