//! The target conformance suite: what every provisioning target must do
//! before it is trusted with a school's accounts, run against a real
//! endpoint, either the Example App API served here on 127.0.0.1
//! ([`crate::example_app`]) or a live system the operator names (a SCIM
//! service).
//!
//! 1. `describe` is well formed (name, version, settings, capabilities);
//! 2. `check` succeeds with good settings;
//! 3. `check` answers `unauthorized` when every configured secret is wrong;
//! 4. a scripted delivery applies in four batches: users created, a group
//!    created with members, its members changed and an account suspended,
//!    the account enabled, everything deleted; one result per change, in
//!    order, under its key, each `done` or `matched`;
//! 5. every batch sent again under the same keys answers the same ids and
//!    changes nothing;
//! 6. after each batch the endpoint holds what was sent (read from the
//!    served endpoint, or through `read` on a live one);
//! 7. `read` pages through everything, where the target declares
//!    read-back;
//! 8. no request left the allowed hosts.
//!
//! Objects carry a tag unique to the run, so a live system's own objects
//! are never touched, and the last batch deletes what the run made.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rostersync_model::target::{
    ChangeItem, ChangeResult, HeldObject, MemberChange, ObjectKind, ObjectRef, Outcome as Applied,
    Target, TargetCapability, TargetChange, TargetGroup, TargetGroupKind, TargetRole, TargetUser,
};
use rostersync_model::{SettingKind, Settings, SyncError};
use rostersync_runtime::{Limits, Sandbox, TargetComponent, TargetPlugin};

use crate::example_app::ExampleApp;
use crate::suite::{Outcome, Report, describe_problems};

/// What the suite's target talks to.
pub enum TargetEndpoint {
    /// The Example App API (`connectors/target-template`'s README), served
    /// on 127.0.0.1 for the run; the target's `base-url` and `api-token`
    /// point at it.
    ExampleApp,
    /// A live system these settings reach.
    Live(Settings),
}

pub struct TargetSuiteOptions {
    pub endpoint: TargetEndpoint,
    pub limits: Limits,
}

/// The most pages one read may take before the suite calls it a loop.
const MAX_PAGES: usize = 10_000;

/// A number different on every run, for names no live system holds yet.
pub(crate) fn run_tag_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id())
}

/// Who holds what, by the host's external ids, for the run's objects only.
#[derive(Debug, Default, PartialEq, Eq)]
struct Holdings {
    /// Whether each account is active.
    users: BTreeMap<String, bool>,
    /// Each group's members.
    groups: BTreeMap<String, BTreeSet<String>>,
    /// Run objects the system holds more than once.
    twice: BTreeSet<String>,
}

/// Where the suite reads what the endpoint holds.
enum Witness {
    Served(ExampleApp),
    ReadBack,
    None,
}

/// The scripted delivery's four stages.
const STAGES: [&str; 4] = ["create", "change", "enable", "delete"];

struct Script {
    tag: String,
    groups: bool,
    suspend: bool,
}

impl Script {
    fn id(&self, what: &str) -> String {
        format!("conformance-{}-{what}", self.tag)
    }

    fn user(&self, what: &str, given: &str, role: TargetRole) -> TargetUser {
        let username = format!("{given}.{}", self.tag).to_lowercase();
        TargetUser {
            external_id: self.id(what),
            email: Some(format!("{username}@conformance.example")),
            username,
            given_name: Some(given.into()),
            family_name: Some("Conformance".into()),
            display_name: format!("{given} Conformance"),
            role,
            active: true,
            container: None,
            initial_password: None,
            attributes: Vec::new(),
        }
    }

    fn users(&self) -> [TargetUser; 3] {
        [
            self.user("pupil-1", "Ada", TargetRole::Student),
            self.user("pupil-2", "Ben", TargetRole::Student),
            self.user("teacher", "Cleo", TargetRole::Staff),
        ]
    }

    /// The changes of one stage, given the target ids learnt so far.
    fn stage(&self, stage: &str, ids: &BTreeMap<String, String>) -> Vec<ChangeItem> {
        let at = |what: &str| ObjectRef {
            external_id: self.id(what),
            target_id: ids.get(&self.id(what)).cloned(),
        };
        let group = "group";
        let mut changes = Vec::new();
        match stage {
            "create" => {
                for user in self.users() {
                    changes.push(TargetChange::CreateUser { user });
                }
                if self.groups {
                    changes.push(TargetChange::CreateGroup {
                        group: TargetGroup {
                            external_id: self.id(group),
                            name: format!("Conformance {} 7A", self.tag),
                            kind: TargetGroupKind::Class,
                            description: None,
                            container: None,
                            members: vec![at("pupil-1"), at("pupil-2")],
                            owners: Vec::new(),
                            attributes: Vec::new(),
                        },
                    });
                }
            }
            "change" => {
                if self.groups {
                    changes.push(TargetChange::ChangeMembers {
                        members: MemberChange {
                            group: at(group),
                            add: vec![at("teacher")],
                            remove: vec![at("pupil-2")],
                            add_owners: Vec::new(),
                            remove_owners: Vec::new(),
                        },
                    });
                }
                if self.suspend {
                    changes.push(TargetChange::SuspendUser {
                        object: at("pupil-2"),
                    });
                }
            }
            "enable" => {
                if self.suspend {
                    changes.push(TargetChange::EnableUser {
                        object: at("pupil-2"),
                    });
                }
            }
            _ => {
                if self.groups {
                    changes.push(TargetChange::DeleteGroup { object: at(group) });
                }
                for user in ["pupil-1", "pupil-2", "teacher"] {
                    changes.push(TargetChange::DeleteUser { object: at(user) });
                }
            }
        }
        changes
            .into_iter()
            .enumerate()
            .map(|(n, change)| ChangeItem {
                key: format!("{}-{stage}-{n}", self.tag),
                change,
            })
            .collect()
    }

    /// What the endpoint should hold after `stage`.
    fn expected(&self, stage: &str) -> Holdings {
        let mut holdings = Holdings::default();
        if stage == "delete" {
            return holdings;
        }
        for user in ["pupil-1", "pupil-2", "teacher"] {
            holdings.users.insert(self.id(user), true);
        }
        if stage == "change" && self.suspend {
            holdings.users.insert(self.id("pupil-2"), false);
        }
        if self.groups {
            let members = if stage == "create" {
                ["pupil-1", "pupil-2"]
            } else {
                ["pupil-1", "teacher"]
            };
            holdings.groups.insert(
                self.id("group"),
                members.iter().map(|m| self.id(m)).collect(),
            );
        }
        holdings
    }
}

struct Suite {
    component: Arc<TargetComponent>,
    settings: Settings,
    limits: Limits,
    witness: Witness,
    left_allowed_hosts: Vec<String>,
}

/// Runs every check against `component`.
pub async fn run_target_suite(
    component: Arc<TargetComponent>,
    options: TargetSuiteOptions,
) -> anyhow::Result<Report> {
    let read_back = component.info.has(TargetCapability::ReadBack);
    let (settings, witness) = match options.endpoint {
        TargetEndpoint::ExampleApp => {
            let app = ExampleApp::serve().await?;
            (app.settings(), Witness::Served(app))
        }
        TargetEndpoint::Live(settings) if read_back => (settings, Witness::ReadBack),
        TargetEndpoint::Live(settings) => (settings, Witness::None),
    };
    let mut suite = Suite {
        component,
        settings,
        limits: options.limits,
        witness,
        left_allowed_hosts: Vec::new(),
    };
    let mut report = Report::default();
    let info = suite.component.info.clone();
    let mut problems = describe_problems(&info.provider, &info.version, &info.settings);
    let mut declared = BTreeSet::new();
    for capability in &info.capabilities {
        if !declared.insert(format!("{capability:?}")) {
            problems.push(format!("the capability {capability:?} is declared twice"));
        }
    }
    if info.has(TargetCapability::GroupOwners) && !info.has(TargetCapability::Groups) {
        problems.push("it declares group owners without groups".into());
    }
    report.push("describe is well formed", Outcome::from_problems(problems));

    let target = suite.plugin(&suite.settings)?;
    let checked = target.check().await.map(|_| ()).map_err(|e| suite.seen(e));
    report.push(
        "check succeeds with good settings",
        Outcome::from_result(checked),
    );
    report.push(
        "check refuses bad credentials",
        suite.bad_credentials().await?,
    );

    let script = Script {
        tag: format!("{:08x}", run_tag_seed() as u32),
        groups: info.has(TargetCapability::Groups),
        suspend: info.has(TargetCapability::Suspend),
    };
    let mut ids = BTreeMap::new();
    let mut applied: Vec<Outcome> = Vec::new();
    let mut repeats = Vec::new();
    let mut holdings = Vec::new();
    let mut paging = Outcome::Skipped("the target does not declare read-back".into());
    for stage in STAGES {
        if applied.iter().any(|o| !matches!(o, Outcome::Passed)) {
            applied.push(Outcome::Skipped("an earlier batch failed".into()));
            continue;
        }
        let batch = script.stage(stage, &ids);
        let first = suite.apply(&target, &batch).await;
        let Ok(first) = first else {
            applied.push(Outcome::from_result(first.map(|_| ())));
            continue;
        };
        applied.push(Outcome::Passed);
        for (item, id) in batch.iter().zip(&first) {
            if let Some(external_id) = created(&item.change) {
                ids.insert(external_id, id.clone());
            }
        }
        let before = suite.holdings(&target, &script.tag).await;
        if let Err(problem) = suite.apply(&target, &batch).await.and_then(|again| {
            if again == first {
                Ok(())
            } else {
                Err(format!(
                    "the same changes answered {again:?}, not {first:?}"
                ))
            }
        }) {
            repeats.push(format!("{stage}: {problem}"));
        }
        let after = suite.holdings(&target, &script.tag).await;
        match (before, after) {
            (Some(Ok(before)), Some(Ok(after))) => {
                if before != after {
                    repeats.push(format!(
                        "{stage}: the endpoint held {before:?}, then {after:?}"
                    ));
                }
                let expected = script.expected(stage);
                if after != expected {
                    holdings.push(format!(
                        "after `{stage}` it held {after:?}, not {expected:?}"
                    ));
                }
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => holdings.push(format!("{stage}: {e}")),
            _ => {}
        }
        if stage == "create" && read_back {
            paging = Outcome::from_result(suite.paging(&target).await);
        }
    }
    let names = [
        "users and a group are created, one result per change",
        "members change and an account is suspended, one result per change",
        "the account is enabled, one result per change",
        "everything is deleted, one result per change",
    ];
    for (name, outcome) in names.into_iter().zip(applied) {
        report.push(name, outcome);
    }
    report.push(
        "every batch sent again under the same keys is harmless",
        Outcome::from_problems(repeats),
    );
    report.push(
        "the endpoint holds what was sent",
        match suite.witness {
            Witness::None => Outcome::Skipped(
                "a live system without read-back cannot be looked at from here".into(),
            ),
            _ => Outcome::from_problems(holdings),
        },
    );
    report.push("read pages through what the system holds", paging);
    report.push(
        "no request left the allowed hosts",
        Outcome::from_problems(std::mem::take(&mut suite.left_allowed_hosts)),
    );
    Ok(report)
}

/// The external id a change creates, if it creates one.
fn created(change: &TargetChange) -> Option<String> {
    match change {
        TargetChange::CreateUser { user } => Some(user.external_id.clone()),
        TargetChange::CreateGroup { group } => Some(group.external_id.clone()),
        _ => None,
    }
}

impl Suite {
    fn plugin(&self, settings: &Settings) -> anyhow::Result<TargetPlugin> {
        let sandbox =
            Sandbox::for_target(&self.component.info, settings, &[], self.limits.clone())?;
        Ok(TargetPlugin::new(
            self.component.clone(),
            settings,
            sandbox,
        )?)
    }

    /// The error in one sentence, noting a request outside the allowed
    /// hosts.
    fn seen(&mut self, error: SyncError) -> String {
        let message = error.to_string();
        if message.contains("is not an allowed host") {
            self.left_allowed_hosts.push(message.clone());
        }
        message
    }

    async fn bad_credentials(&mut self) -> anyhow::Result<Outcome> {
        let secrets: Vec<String> = self
            .component
            .info
            .settings
            .iter()
            .filter(|s| s.kind == SettingKind::Secret && self.settings.get(&s.name).is_some())
            .map(|s| s.name.clone())
            .collect();
        if secrets.is_empty() {
            return Ok(Outcome::Skipped(
                "no secret is configured for this endpoint".into(),
            ));
        }
        let mut bad = self.settings.clone();
        for name in secrets {
            bad.set(name, "invalid-credential");
        }
        Ok(match self.plugin(&bad)?.check().await {
            Err(SyncError::Unauthorized(_)) => Outcome::Passed,
            Ok(reached) => Outcome::Failed(format!(
                "check succeeded ({reached}) with invalid credentials"
            )),
            Err(other) => Outcome::Failed(format!(
                "expected `unauthorized`, got: {}",
                self.seen(other)
            )),
        })
    }

    /// Applies `batch`; the target id of every change, or what was wrong.
    async fn apply(
        &mut self,
        target: &TargetPlugin,
        batch: &[ChangeItem],
    ) -> Result<Vec<String>, String> {
        let results = target
            .apply(batch.to_vec())
            .await
            .map_err(|e| self.seen(e))?;
        one_applied_result_each(batch, &results)
    }

    /// What the endpoint holds of this run's objects, when it can be seen.
    async fn holdings(
        &mut self,
        target: &TargetPlugin,
        tag: &str,
    ) -> Option<Result<Holdings, String>> {
        let ours = |external_id: &str| external_id.starts_with(&format!("conformance-{tag}-"));
        match &self.witness {
            Witness::None => None,
            Witness::Served(app) => {
                let users = app.users();
                Some(Ok(Holdings {
                    users: users
                        .iter()
                        .filter(|(id, _)| ours(id))
                        .map(|(id, u)| (id.clone(), u.active))
                        .collect(),
                    groups: app
                        .groups()
                        .into_iter()
                        .filter(|(id, _)| ours(id))
                        .map(|(id, g)| (id, g.members))
                        .collect(),
                    twice: BTreeSet::new(),
                }))
            }
            Witness::ReadBack => Some(self.read_holdings(target, &ours).await),
        }
    }

    async fn read_holdings(
        &mut self,
        target: &TargetPlugin,
        ours: &impl Fn(&str) -> bool,
    ) -> Result<Holdings, String> {
        let mut holdings = Holdings::default();
        let mut external = BTreeMap::new();
        for object in self.read_all(target, ObjectKind::User).await? {
            if let HeldObject::User(user) = object
                && let Some(id) = user.external_id.filter(|id| ours(id))
            {
                if holdings.users.insert(id.clone(), user.active).is_some() {
                    holdings.twice.insert(id.clone());
                }
                external.insert(user.target_id, id);
            }
        }
        if !self.component.info.has(TargetCapability::Groups) {
            return Ok(holdings);
        }
        for object in self.read_all(target, ObjectKind::Group).await? {
            if let HeldObject::Group(group) = object
                && let Some(id) = group.external_id.filter(|id| ours(id))
            {
                let members = group
                    .members
                    .iter()
                    .map(|m| external.get(m).cloned().unwrap_or_else(|| m.clone()))
                    .collect();
                if holdings.groups.insert(id.clone(), members).is_some() {
                    holdings.twice.insert(id);
                }
            }
        }
        Ok(holdings)
    }

    /// Every object of `kind`, page after page.
    async fn read_all(
        &mut self,
        target: &TargetPlugin,
        kind: ObjectKind,
    ) -> Result<Vec<HeldObject>, String> {
        let mut objects = Vec::new();
        let mut cursors = BTreeSet::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let page = target
                .read(kind, cursor.clone())
                .await
                .map_err(|e| self.seen(e))?;
            objects.extend(page.objects);
            match page.next {
                None => return Ok(objects),
                Some(next) if !cursors.insert(next.clone()) => {
                    return Err(format!("reading {kind:?}s, the cursor {next:?} came back"));
                }
                next => cursor = next,
            }
        }
        Err(format!(
            "reading {kind:?}s took more than {MAX_PAGES} pages"
        ))
    }

    /// Reads users and groups to the end: no object twice, every object
    /// with a target id.
    async fn paging(&mut self, target: &TargetPlugin) -> Result<(), String> {
        for kind in [ObjectKind::User, ObjectKind::Group] {
            if kind == ObjectKind::Group && !self.component.info.has(TargetCapability::Groups) {
                continue;
            }
            let mut seen = BTreeSet::new();
            for object in self.read_all(target, kind).await? {
                let id = match &object {
                    HeldObject::User(u) => &u.target_id,
                    HeldObject::Group(g) => &g.target_id,
                };
                if id.is_empty() {
                    return Err(format!("a {kind:?} was read without a target id"));
                }
                if !seen.insert(id.clone()) {
                    return Err(format!("the {kind:?} {id} was read twice across pages"));
                }
            }
        }
        Ok(())
    }
}

/// One result per change, in order, under its key, each applied: the
/// target id of each.
fn one_applied_result_each(
    batch: &[ChangeItem],
    results: &[ChangeResult],
) -> Result<Vec<String>, String> {
    if results.len() != batch.len() {
        return Err(format!(
            "{} changes answered with {} results",
            batch.len(),
            results.len()
        ));
    }
    batch
        .iter()
        .zip(results)
        .map(|(item, result)| {
            if result.key != item.key {
                return Err(format!(
                    "the change {} was answered under the key {}",
                    item.key, result.key
                ));
            }
            match &result.outcome {
                Applied::Done(id) | Applied::Matched(id) => Ok(id.clone()),
                other => Err(format!("the change {} answered {other:?}", item.key)),
            }
        })
        .collect()
}
