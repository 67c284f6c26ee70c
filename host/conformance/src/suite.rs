//! The checks, in the spirit of Airbyte's acceptance tests:
//!
//! 1. `describe` is well formed;
//! 2. `check` succeeds with good settings;
//! 3. `check` answers `unauthorized` when every secret is wrong;
//! 4. a full snapshot completes;
//! 5. a second full snapshot yields the same records;
//! 6. a delta from the returned cursor completes, where the connector
//!    claims delta reads;
//! 7. no request left the allowed hosts.
//!
//! Each phase that talks to the provider has its own fixture file.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rostersync_model::{Capability, Mode, Record, SettingKind, SettingSpec, Settings, SyncError};
use rostersync_runtime::{Interceptor, Limits, Plugin, RunError, Sandbox, Violation};

use crate::fixtures::{Recorder, Redactions, Replayer, phase_path, placeholder};

/// Where the suite's HTTP goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// To the live provider; nothing recorded.
    Live,
    /// To the live provider, saving fixtures.
    Record,
    /// From the saved fixtures only; the network is never touched.
    Replay,
}

pub struct SuiteOptions {
    /// Settings for live and record runs. Replay reads the settings saved
    /// with the fixtures.
    pub settings: Option<Settings>,
    pub fixtures_dir: PathBuf,
    pub traffic: Traffic,
    pub limits: Limits,
}

/// The name of the settings file saved beside the fixtures.
pub const SETTINGS_FILE: &str = "settings.toml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

impl Outcome {
    /// Passed when nothing is wrong, else failed naming every problem.
    pub(crate) fn from_problems(problems: Vec<String>) -> Outcome {
        if problems.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed(problems.join("; "))
        }
    }

    /// Passed, or failed with the sentence.
    pub(crate) fn from_result(result: Result<(), String>) -> Outcome {
        result.map_or_else(Outcome::Failed, |()| Outcome::Passed)
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| !matches!(c.outcome, Outcome::Failed(_)))
    }

    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }

    pub(crate) fn push(&mut self, name: &'static str, outcome: Outcome) {
        self.checks.push(Check { name, outcome });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            match &check.outcome {
                Outcome::Passed => writeln!(f, "PASS  {}", check.name)?,
                Outcome::Failed(why) => writeln!(f, "FAIL  {}: {why}", check.name)?,
                Outcome::Skipped(why) => writeln!(f, "SKIP  {}: {why}", check.name)?,
            }
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .count();
        write!(
            f,
            "{} passed, {failed} failed",
            self.checks.len() - failed - self.skipped()
        )
    }
}

impl Report {
    fn skipped(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
            .count()
    }
}

/// One phase's interceptor, whichever the traffic mode.
enum Tap {
    Live,
    Record(Arc<Recorder>),
    Replay(Arc<Replayer>),
}

struct Suite {
    plugin: Arc<Plugin>,
    options: SuiteOptions,
    settings: Settings,
    redactions: Redactions,
    left_allowed_hosts: Vec<String>,
}

/// Runs every check against `plugin`.
pub async fn run_suite(plugin: Arc<Plugin>, options: SuiteOptions) -> anyhow::Result<Report> {
    let (settings, redactions) = suite_settings(&plugin, &options)?;
    let mut suite = Suite {
        plugin,
        options,
        settings,
        redactions,
        left_allowed_hosts: Vec::new(),
    };
    let mut report = Report::default();
    let info = &suite.plugin.info;
    report.push(
        "describe is well formed",
        Outcome::from_problems(describe_problems(
            &info.provider,
            &info.version,
            &info.settings,
        )),
    );

    let good = suite.settings.clone();
    let checked = suite
        .phase("check", |plugin, sandbox| async move {
            plugin
                .check(&sandbox, &good)
                .await
                .map(|_| ())
                .map_err(describe_error)
        })
        .await?;
    report.push("check succeeds with good settings", checked);

    let secrets: Vec<String> = suite
        .plugin
        .info
        .settings
        .iter()
        .filter(|s| s.kind == SettingKind::Secret)
        .map(|s| s.name.clone())
        .collect();
    if secrets.is_empty() {
        report.push(
            "check refuses bad credentials",
            Outcome::Skipped("the connector has no secret settings".into()),
        );
    } else {
        let mut bad = suite.settings.clone();
        for name in &secrets {
            bad.set(name.clone(), "invalid-credential");
        }
        let refused = suite
            .phase("check-unauthorized", |plugin, sandbox| async move {
                match plugin.check(&sandbox, &bad).await {
                    Err(RunError::Connector {
                        error: SyncError::Unauthorized(_),
                        ..
                    }) => Ok(()),
                    Ok(school) => Err(format!(
                        "check succeeded (school {:?}) with invalid credentials",
                        school.name
                    )),
                    Err(other) => Err(format!("expected `unauthorized`, got: {other}")),
                }
            })
            .await?;
        report.push("check refuses bad credentials", refused);
    }

    let (first, cursor) = suite.read("full-1", Mode::Full).await?;
    report.push(
        "a full snapshot completes",
        first
            .as_ref()
            .map_or_else(|e| Outcome::Failed(e.clone()), |_| Outcome::Passed),
    );
    let (second, _) = suite.read("full-2", Mode::Full).await?;
    report.push(
        "a second full snapshot yields the same records",
        match (&first, &second) {
            (Ok(a), Ok(b)) if a == b => Outcome::Passed,
            (Ok(a), Ok(b)) => Outcome::Failed(difference(a, b)),
            (Err(_), _) => Outcome::Skipped("the first full snapshot failed".into()),
            (_, Err(e)) => Outcome::Failed(e.clone()),
        },
    );

    let delta = if !suite.plugin.info.has(Capability::DeltaReads) {
        Outcome::Skipped("the connector does not claim delta reads".into())
    } else {
        match cursor {
            Some(cursor) => {
                let (read, _) = suite.read("delta", Mode::Delta(cursor)).await?;
                read.map_or_else(Outcome::Failed, |_| Outcome::Passed)
            }
            None => Outcome::Failed(
                "it claims delta reads but its full snapshot returned no cursor".into(),
            ),
        }
    };
    report.push("a delta from the returned cursor completes", delta);

    report.push(
        "no request left the allowed hosts",
        if suite.left_allowed_hosts.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed(suite.left_allowed_hosts.join("; "))
        },
    );
    Ok(report)
}

impl Suite {
    fn sandbox(&self, tap: &Tap) -> anyhow::Result<Sandbox> {
        let sandbox = Sandbox::for_connection(
            &self.plugin.info,
            &self.settings,
            &[],
            self.options.limits.clone(),
        )?;
        Ok(match tap {
            Tap::Live => sandbox,
            Tap::Record(r) => sandbox.with_interceptor(r.clone() as Arc<dyn Interceptor>),
            Tap::Replay(r) => sandbox.with_interceptor(r.clone() as Arc<dyn Interceptor>),
        })
    }

    fn tap(&self, phase: &str) -> anyhow::Result<Tap> {
        Ok(match self.options.traffic {
            Traffic::Live => Tap::Live,
            Traffic::Record => Tap::Record(Arc::new(Recorder::new(self.redactions.clone()))),
            Traffic::Replay => Tap::Replay(Arc::new(Replayer::load(&phase_path(
                &self.options.fixtures_dir,
                phase,
            ))?)),
        })
    }

    /// Runs one phase under its fixture, then settles the fixture: saves a
    /// recording, or fails on fixtures the phase never used.
    async fn phase<F, Fut>(&mut self, phase: &str, body: F) -> anyhow::Result<Outcome>
    where
        F: FnOnce(Arc<Plugin>, Sandbox) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let (outcome, _) = self
            .phase_with(phase, |plugin, sandbox| async move {
                body(plugin, sandbox).await.map(|()| ((), None))
            })
            .await?;
        Ok(Outcome::from_result(outcome))
    }

    async fn phase_with<T, F, Fut>(
        &mut self,
        phase: &str,
        body: F,
    ) -> anyhow::Result<(Result<T, String>, Option<String>)>
    where
        F: FnOnce(Arc<Plugin>, Sandbox) -> Fut,
        Fut: Future<Output = Result<(T, Option<String>), String>>,
    {
        let tap = self.tap(phase)?;
        let sandbox = self.sandbox(&tap)?;
        let result = body(self.plugin.clone(), sandbox).await;
        if let Err(message) = &result
            && message.contains("is not an allowed host")
        {
            self.left_allowed_hosts.push(format!("{phase}: {message}"));
        }
        let result = match (&tap, result) {
            (Tap::Record(recorder), result) => {
                recorder.save(&phase_path(&self.options.fixtures_dir, phase))?;
                result
            }
            (Tap::Replay(replayer), Ok(value)) => {
                let unused = replayer.unused();
                if unused.is_empty() {
                    Ok(value)
                } else {
                    Err(format!("fixtures never requested: {}", unused.join(", ")))
                }
            }
            (_, result) => result,
        };
        Ok(match result {
            Ok((value, cursor)) => (Ok(value), cursor),
            Err(e) => (Err(e), None),
        })
    }

    /// Reads a whole snapshot into a sorted set of records.
    async fn read(
        &mut self,
        phase: &str,
        mode: Mode,
    ) -> anyhow::Result<(Result<BTreeSet<String>, String>, Option<String>)> {
        let settings = self.settings.clone();
        self.phase_with(phase, |plugin, sandbox| async move {
            let mut snapshot = plugin
                .snapshot(&sandbox, &settings, mode)
                .await
                .map_err(describe_error)?;
            let mut records = BTreeSet::new();
            while let Some(batch) = snapshot.next_batch().await.map_err(describe_error)? {
                records.extend(batch.iter().map(canonical));
            }
            let cursor = snapshot.cursor().await.map_err(describe_error)?;
            Ok((records, cursor))
        })
        .await
    }
}

fn describe_error(error: RunError) -> String {
    match &error {
        RunError::Outbound {
            violation: Violation::Unrecorded(request),
            ..
        } => format!("no fixture for {request}; record fixtures again with --record"),
        _ => error.to_string(),
    }
}

fn canonical(record: &Record) -> String {
    serde_json::to_string(record).expect("records serialise")
}

fn difference(first: &BTreeSet<String>, second: &BTreeSet<String>) -> String {
    let only_first = first.difference(second).count();
    let only_second = second.difference(first).count();
    let example = first
        .symmetric_difference(second)
        .next()
        .map(|r| r.chars().take(200).collect::<String>())
        .unwrap_or_default();
    format!(
        "{only_first} records only in the first read, {only_second} only in the second, e.g. {example}"
    )
}

/// The settings to run with, and the secrets to keep out of fixtures.
fn suite_settings(
    plugin: &Plugin,
    options: &SuiteOptions,
) -> anyhow::Result<(Settings, Redactions)> {
    let saved = options.fixtures_dir.join(SETTINGS_FILE);
    let settings = match (&options.settings, options.traffic) {
        (Some(settings), _) => settings.clone(),
        (None, Traffic::Replay) => {
            let text = std::fs::read_to_string(&saved).map_err(|e| {
                anyhow::anyhow!("{}: cannot read the recorded settings ({e}); record fixtures with --record --settings FILE", saved.display())
            })?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", saved.display()))?
        }
        (None, _) => anyhow::bail!("live and recording runs need --settings FILE"),
    };
    let secrets: Vec<(String, String)> = plugin
        .info
        .settings
        .iter()
        .filter(|s| s.kind == SettingKind::Secret)
        .filter_map(|s| Some((settings.get(&s.name)?.to_string(), placeholder(&s.name))))
        .collect();
    if options.traffic == Traffic::Record {
        std::fs::create_dir_all(&options.fixtures_dir)?;
        let mut stored = settings.clone();
        for spec in plugin
            .info
            .settings
            .iter()
            .filter(|s| s.kind == SettingKind::Secret)
        {
            if stored.get(&spec.name).is_some() {
                stored.set(spec.name.clone(), placeholder(&spec.name));
            }
        }
        std::fs::write(&saved, toml::to_string(&stored)?)?;
    }
    Ok((settings, Redactions::new(secrets)))
}

/// What is wrong with a plugin's description of itself (a connector's or a
/// target's: the same rules for names, versions and settings).
pub(crate) fn describe_problems(
    provider: &str,
    version: &str,
    settings: &[SettingSpec],
) -> Vec<String> {
    let mut problems = Vec::new();
    if provider.trim().is_empty() {
        problems.push("the provider name is empty".to_string());
    }
    let semver = version.split('.').count() == 3
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !semver {
        problems.push(format!("the version {version:?} is not MAJOR.MINOR.PATCH"));
    }
    let mut names = BTreeSet::new();
    for spec in settings {
        if !names.insert(spec.name.as_str()) {
            problems.push(format!("the setting `{}` is declared twice", spec.name));
        }
        if spec.name.is_empty()
            || !spec
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            problems.push(format!(
                "the setting name {:?} is not kebab-case",
                spec.name
            ));
        }
        if spec.description.trim().is_empty() {
            problems.push(format!("the setting `{}` has no description", spec.name));
        }
        if spec.kind == SettingKind::Secret && spec.default_value.is_some() {
            problems.push(format!(
                "the secret setting `{}` has a default value",
                spec.name
            ));
        }
        if let (SettingKind::BaseUrl, Some(url)) = (spec.kind, &spec.default_value)
            && rostersync_runtime::AllowList::default()
                .allow_base_url(url)
                .is_err()
        {
            problems.push(format!(
                "the default of `{}`, {url:?}, is not a URL",
                spec.name
            ));
        }
    }
    problems
}
