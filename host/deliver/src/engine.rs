//! The engine for one target: plan, enqueue under idempotency keys,
//! deliver in batches through the `dyn Target` at least once, and record
//! every outcome.
//!
//! - Done or matched: the ledger takes the target's id and what was sent;
//!   the change leaves the queue; a new account's initial password goes
//!   to the report, once.
//! - Conflict: the login is noted as taken and the change is planned again
//!   with the next `{n}`.
//! - Retry-after: the change waits exactly as long as the target asked.
//! - Refused: recorded, and not sent again until the object changes (a new
//!   key supersedes it).
//! - A whole call rate limited or unavailable: every change of the batch
//!   waits, with exponential backoff and jitter (or the target's
//!   `Retry-After`), for as long as the engine's patience lasts; what is
//!   left waits in the store for the next delivery.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rostersync_core::targets::{
    Action, LedgerEntry, MassHold, Plan, PlanInput, PlannedItem, Rename, desired, plan,
};
use rostersync_model::SyncError;
use rostersync_model::target::{
    ChangeItem, ObjectKind, ObjectRef, Outcome, Target, TargetCapability, TargetChange,
};
use rostersync_store::{DeliveryOutcome, DeliveryWrite, PendingNext, Store, StoreError};
use tokio::time::Instant;

use crate::password::Password;
use crate::source::read_source;
use crate::{Backoff, DeliverError, RateLimit, TargetConfig};

/// Plans made in one delivery at most: each conflict costs one more.
const MAX_ROUNDS: usize = 10;

/// An initial password handed to the operator once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedPassword {
    pub external_id: String,
    pub username: String,
    pub password: Password,
}

/// One repair a reconcile made: which object, and what had drifted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Repair {
    pub object: String,
    pub drift: String,
}

/// What one delivery did.
#[derive(Debug, Default)]
pub struct DeliveryReport {
    /// Changes done, by action.
    pub done: BTreeMap<&'static str, usize>,
    /// Existing objects the target matched instead of making new ones.
    pub matched: usize,
    pub conflicts: usize,
    pub refused: usize,
    /// Changes the target asked to have again later.
    pub retries: usize,
    /// Whole calls that failed (unreachable, rate limited).
    pub failed_calls: usize,
    /// Why the last of them failed, in one sentence.
    pub last_failure: Option<String>,
    /// Ledger changes that needed nothing sent.
    pub local: usize,
    /// Changes still waiting (for a retry, or refused) when it ended.
    pub pending: usize,
    pub hold: Option<(i64, MassHold)>,
    pub renames: Vec<Rename>,
    /// Accounts no free login could be made for.
    pub unnamed: Vec<String>,
    pub passwords: Vec<IssuedPassword>,
    pub repairs: Vec<Repair>,
    /// The target is preview-only (`enabled = false`): nothing was sent.
    pub preview_only: bool,
}

impl DeliveryReport {
    /// Changes done of `action`.
    pub fn count(&self, action: Action) -> usize {
        self.done.get(action.as_str()).copied().unwrap_or(0)
    }
}

/// Delivers one target.
pub struct Engine<'a> {
    store: &'a Store,
    config: &'a TargetConfig,
    target: Arc<dyn Target>,
    backoff: Backoff,
    patience: Duration,
}

impl<'a> Engine<'a> {
    pub fn new(store: &'a Store, config: &'a TargetConfig, target: Arc<dyn Target>) -> Self {
        Self {
            store,
            config,
            target,
            backoff: Backoff::default(),
            patience: Duration::from_secs(300),
        }
    }

    /// How failed calls back off, and how long one delivery waits for
    /// retries before leaving them to the next.
    pub fn with_pacing(mut self, backoff: Backoff, patience: Duration) -> Self {
        self.backoff = backoff;
        self.patience = patience;
        self
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn stored<T>(&self, result: Result<T, StoreError>) -> Result<T, DeliverError> {
        result.map_err(|source| DeliverError::Store {
            target: self.name().into(),
            source,
        })
    }

    fn can(&self, capability: TargetCapability) -> bool {
        self.target.info().has(capability)
    }

    /// The plan as things stand; nothing is written or sent.
    pub async fn plan(&self) -> Result<Plan, DeliverError> {
        let policy = &self.config.policy;
        let source = read_source(self.store, self.name(), policy).await?;
        let capabilities = &self.target.info().capabilities;
        let desired = desired(policy, capabilities, &source);
        let ledger = self.stored(self.store.target_ledger(self.name()).await)?;
        let taken = self.stored(self.store.target_taken_names(self.name()).await)?;
        let renames = self.stored(self.store.target_renames(self.name()).await)?;
        let confirmed = self.stored(self.store.confirmed_target_holds(self.name()).await)?;
        Ok(plan(&PlanInput {
            target: self.name(),
            policy,
            capabilities,
            desired: &desired,
            ledger: &ledger,
            taken: &taken,
            renames: &renames,
            confirmed: &confirmed,
            now: Utc::now(),
        }))
    }

    /// Plans, enqueues and delivers what is due, until nothing is left or
    /// the engine's patience for retries runs out.
    pub async fn deliver(&self) -> Result<DeliveryReport, DeliverError> {
        let mut report = DeliveryReport::default();
        self.deliver_into(&mut report).await?;
        Ok(report)
    }

    pub(crate) async fn deliver_into(
        &self,
        report: &mut DeliveryReport,
    ) -> Result<(), DeliverError> {
        if !self.config.enabled {
            report.preview_only = true;
            return Ok(());
        }
        let deadline = Instant::now() + self.patience;
        let mut limit = RateLimit::new(self.config.rate_per_second);
        let mut failures = 0;
        let mut conflicted = false;
        for _ in 0..MAX_ROUNDS {
            let plan = self.plan().await?;
            self.settle(plan, report).await?;
            let (conflicts, done) = (report.conflicts, report.done.values().sum::<usize>());
            let deferred = self
                .send(report, &mut limit, &mut failures, deadline)
                .await?;
            conflicted = report.conflicts > conflicts;
            // Plan again after a conflict (the next login), or once members
            // left out for want of an account can now be added, as long as
            // the round got something done.
            let progressed = report.done.values().sum::<usize>() > done;
            if !(progressed && (deferred || conflicted)) {
                break;
            }
        }
        if conflicted {
            // The last round's conflicts were not sent again: their changes
            // stay queued (with the next login), so they are counted as
            // pending and shown, never dropped.
            let plan = self.plan().await?;
            self.settle(plan, report).await?;
        }
        report.pending = self
            .stored(self.store.target_changes(self.name()).await)?
            .len();
        Ok(())
    }

    /// Writes what a plan decides without sending: ledger-only changes,
    /// proposed renames, a hold; and enqueues its changes.
    async fn settle(&self, plan: Plan, report: &mut DeliveryReport) -> Result<(), DeliverError> {
        let name = self.name();
        if !plan.local.is_empty() {
            self.stored(self.store.put_target_objects(name, &plan.local).await)?;
            report.local += plan.local.len();
        }
        if !plan.renames.is_empty() {
            self.stored(self.store.propose_target_renames(name, &plan.renames).await)?;
            report.renames.extend(plan.renames);
        }
        if let Some(hold) = plan.hold {
            let id = self.stored(self.store.open_target_hold(name, &hold).await)?;
            tracing::warn!(
                target_name = name,
                hold = id,
                accounts = hold.suspend.len() + hold.delete.len(),
                "mass suspension held"
            );
            report.hold = Some((id, hold));
        }
        report.unnamed = plan.unnamed;
        self.stored(self.store.enqueue_target_changes(name, &plan.items).await)?;
        Ok(())
    }

    async fn send(
        &self,
        report: &mut DeliveryReport,
        limit: &mut RateLimit,
        failures: &mut u32,
        deadline: Instant,
    ) -> Result<bool, DeliverError> {
        let name = self.name();
        let mut deferred = false;
        loop {
            let due = self.stored(
                self.store
                    .due_target_changes(name, Utc::now(), self.config.batch_size as i64)
                    .await,
            )?;
            if due.is_empty() {
                let next = self.stored(self.store.next_target_attempt(name).await)?;
                let wait = next.map(|at| (at - Utc::now()).to_std().unwrap_or_default());
                match wait {
                    Some(wait) if Instant::now() + wait <= deadline => {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    _ => return Ok(deferred),
                }
            }
            let user_ids: HashMap<String, String> = self
                .stored(self.store.target_ledger(name).await)?
                .into_iter()
                .filter(|e| e.kind == ObjectKind::User)
                .filter_map(|e| Some((e.external_id, e.target_id?)))
                .collect();
            let mut batch = Vec::new();
            let mut items = Vec::new();
            // A batch holds one kind of object: members of a group are
            // sent once the batch making their accounts is recorded.
            let kind = due[0].item.after.kind;
            for pending in due.into_iter().take_while(|p| p.item.after.kind == kind) {
                let mut item = pending.item;
                let (complete, sendable) = resolve(&mut item, &user_ids);
                deferred |= !complete;
                if !sendable {
                    self.stored(self.store.drop_target_change(name, &item.item.key).await)?;
                    continue;
                }
                let mut change = item.item.clone();
                let password = self.password_for(&mut change);
                batch.push(change);
                items.push((item, password));
            }
            if batch.is_empty() {
                continue;
            }
            limit.take(batch.len()).await;
            match self.target.apply(batch).await {
                Ok(results) => {
                    *failures = 0;
                    let outcomes: HashMap<String, Outcome> =
                        results.into_iter().map(|r| (r.key, r.outcome)).collect();
                    for (item, password) in items {
                        let outcome = outcomes.get(&item.item.key).cloned();
                        self.settle_one(report, &item, outcome, password).await?;
                    }
                }
                Err(error @ (SyncError::RateLimited { .. } | SyncError::Unavailable(_))) => {
                    let retry_after = match &error {
                        SyncError::RateLimited {
                            retry_after_seconds,
                            ..
                        } => *retry_after_seconds,
                        _ => None,
                    };
                    let delay = self.backoff.delay(*failures, retry_after);
                    *failures += 1;
                    report.failed_calls += 1;
                    report.last_failure = Some(error.to_string());
                    tracing::warn!(target_name = name, %error, ?delay, "target call failed; backing off");
                    let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    for (item, _) in &items {
                        self.record(
                            item,
                            DeliveryOutcome::Failed,
                            None,
                            Some(error.to_string()),
                            None,
                            None,
                            PendingNext::RetryAt(at),
                        )
                        .await?;
                    }
                }
                Err(source) => {
                    return Err(DeliverError::Target {
                        target: name.into(),
                        source,
                    });
                }
            }
        }
    }

    /// A password for a create, when the target takes one.
    fn password_for(&self, change: &mut ChangeItem) -> Option<Password> {
        let TargetChange::CreateUser { user } = &mut change.change else {
            return None;
        };
        if !self.can(TargetCapability::Passwords) {
            return None;
        }
        let password = self.config.passwords.generate();
        user.initial_password = Some(password.reveal().to_string());
        Some(password)
    }

    async fn settle_one(
        &self,
        report: &mut DeliveryReport,
        item: &PlannedItem,
        outcome: Option<Outcome>,
        password: Option<Password>,
    ) -> Result<(), DeliverError> {
        let retry = |seconds: u32| Utc::now() + chrono::Duration::seconds(i64::from(seconds));
        match outcome {
            Some(outcome @ (Outcome::Done(_) | Outcome::Matched(_))) => {
                let (Outcome::Done(id) | Outcome::Matched(id)) = &outcome else {
                    unreachable!("matched above");
                };
                let matched = matches!(outcome, Outcome::Matched(_));
                let mut after = item.after.clone();
                if after.target_id.is_none()
                    || matches!(item.action, Action::CreateUser | Action::CreateGroup)
                {
                    after.target_id = Some(id.clone());
                }
                if item.action == Action::SuspendUser {
                    after.suspended_at = after.suspended_at.max(Some(Utc::now()));
                }
                let logged = if matched {
                    DeliveryOutcome::Matched
                } else {
                    DeliveryOutcome::Done
                };
                self.record(
                    item,
                    logged,
                    Some(id.clone()),
                    None,
                    Some(after),
                    None,
                    PendingNext::Remove,
                )
                .await?;
                if matched {
                    report.matched += 1;
                } else {
                    *report.done.entry(item.action.as_str()).or_default() += 1;
                    if let Some(password) = password {
                        report.passwords.push(IssuedPassword {
                            external_id: item.external_id.clone(),
                            username: item.label.clone(),
                            password,
                        });
                    }
                }
            }
            Some(Outcome::Conflict(reason)) => {
                report.conflicts += 1;
                let login = match &item.item.change {
                    TargetChange::CreateUser { user } | TargetChange::UpdateUser { user, .. } => {
                        Some(user.username.clone())
                    }
                    _ => None,
                };
                let next = if login.is_some() {
                    PendingNext::Remove
                } else {
                    PendingNext::Refused
                };
                self.record(
                    item,
                    DeliveryOutcome::Conflict,
                    None,
                    Some(reason),
                    None,
                    login,
                    next,
                )
                .await?;
            }
            Some(Outcome::RetryAfter { seconds, reason }) => {
                report.retries += 1;
                self.record(
                    item,
                    DeliveryOutcome::Retry,
                    None,
                    Some(reason),
                    None,
                    None,
                    PendingNext::RetryAt(retry(seconds)),
                )
                .await?;
            }
            Some(Outcome::Refused(reason)) => {
                report.refused += 1;
                tracing::warn!(target_name = self.name(), object = %item.external_id, %reason, "change refused");
                self.record(
                    item,
                    DeliveryOutcome::Refused,
                    None,
                    Some(reason),
                    None,
                    None,
                    PendingNext::Refused,
                )
                .await?;
            }
            None => {
                report.retries += 1;
                let at = Utc::now()
                    + chrono::Duration::from_std(self.backoff.delay(0, None)).unwrap_or_default();
                let reason =
                    "the target answered the batch without a result for this change".to_string();
                self.record(
                    item,
                    DeliveryOutcome::Retry,
                    None,
                    Some(reason),
                    None,
                    None,
                    PendingNext::RetryAt(at),
                )
                .await?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        item: &PlannedItem,
        outcome: DeliveryOutcome,
        target_id: Option<String>,
        error: Option<String>,
        ledger: Option<LedgerEntry>,
        taken: Option<String>,
        next: PendingNext,
    ) -> Result<(), DeliverError> {
        let write = DeliveryWrite {
            item,
            // `initial_password` is never serialised.
            sent: serde_json::to_string(&item.item.change).expect("changes serialise"),
            outcome,
            target_id,
            error,
            at: Utc::now(),
            ledger,
            taken,
            next,
        };
        self.stored(self.store.record_target_delivery(self.name(), &write).await)
    }

    /// Reads the target back, adopts what matches, repairs drift, then
    /// delivers.
    pub async fn reconcile(&self) -> Result<DeliveryReport, DeliverError> {
        if !self.can(TargetCapability::ReadBack) {
            return Err(DeliverError::NoReadBack {
                target: self.name().into(),
            });
        }
        let mut report = DeliveryReport::default();
        let policy = &self.config.policy;
        let source = read_source(self.store, self.name(), policy).await?;
        let desired = desired(policy, &self.target.info().capabilities, &source);
        let ledger = self.stored(self.store.target_ledger(self.name()).await)?;
        let held = crate::reconcile::read_all(self.target.as_ref())
            .await
            .map_err(|source| DeliverError::Target {
                target: self.name().into(),
                source,
            })?;
        let found = crate::reconcile::compare(policy, &desired, &ledger, &held, Utc::now());
        self.stored(
            self.store
                .put_target_objects(self.name(), &found.entries)
                .await,
        )?;
        for repair in &found.repairs {
            tracing::info!(target_name = self.name(), object = %repair.object, drift = %repair.drift, "repairing drift");
        }
        report.repairs = found.repairs;
        self.deliver_into(&mut report).await?;
        Ok(report)
    }
}

/// Fills in the target's ids of the users a change refers to, leaving out
/// those the target does not hold yet (the ledger entry it leaves says
/// so). Returns whether every reference was kept, and whether anything is
/// left to send.
fn resolve(item: &mut PlannedItem, user_ids: &HashMap<String, String>) -> (bool, bool) {
    let mut complete = true;
    let mut known = |refs: &mut Vec<ObjectRef>| {
        let before = refs.len();
        refs.retain_mut(|r| {
            if r.target_id.is_none() {
                r.target_id = user_ids.get(&r.external_id).cloned();
            }
            r.target_id.is_some()
        });
        complete &= refs.len() == before;
        refs.iter()
            .map(|r| r.external_id.clone())
            .collect::<Vec<_>>()
    };
    match &mut item.item.change {
        TargetChange::CreateGroup { group } | TargetChange::UpdateGroup { group, .. } => {
            item.after.members = known(&mut group.members);
            item.after.owners = known(&mut group.owners);
            (complete, true)
        }
        TargetChange::ChangeMembers { members } => {
            let planned: Vec<String> = members
                .add
                .iter()
                .chain(&members.add_owners)
                .map(|r| r.external_id.clone())
                .collect();
            let added = known(&mut members.add);
            let removed = known(&mut members.remove);
            let added_owners = known(&mut members.add_owners);
            let removed_owners = known(&mut members.remove_owners);
            let unsent: Vec<&String> = planned
                .iter()
                .filter(|id| !added.contains(id) && !added_owners.contains(id))
                .collect();
            item.after.members.retain(|id| !unsent.contains(&id));
            item.after.owners.retain(|id| !unsent.contains(&id));
            let sendable = !(added.is_empty()
                && removed.is_empty()
                && added_owners.is_empty()
                && removed_owners.is_empty());
            (complete, sendable)
        }
        _ => (true, true),
    }
}
