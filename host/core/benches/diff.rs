//! The pure diff at scale: 1M people, their groups and memberships, through
//! a first import, an unchanged resync and a 1 %-changed resync.
//! `cargo bench -p rostersync-core --bench diff` prints the figures.

use std::time::Instant;

use rostersync_core::synthetic::{self, GROUP_SIZE};
use rostersync_core::{Diff, PriorHashes, Roster};
use rostersync_model::Record;

const PEOPLE: usize = 1_000_000;
const BATCH: usize = 5_000;

fn snapshot(changed_every: Option<usize>) -> impl Iterator<Item = Vec<Record>> {
    synthetic::roster(PEOPLE, BATCH, changed_every)
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
