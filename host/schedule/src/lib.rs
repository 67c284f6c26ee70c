//! When a connection runs: cron schedules in a time zone, optional daily
//! windows, blackout date ranges and deterministic start jitter.
//!
//! This crate owns the schedule part of the config file
//! ([`ScheduleConfig`]) and the arithmetic over it ([`Schedule`]). It is
//! pure: it reads no clock and does no I/O, so every question takes the
//! time as an argument and the same question always gets the same answer.
//! The scheduler loop and run queue live elsewhere and call in here.
//!
//! # Daylight saving time
//!
//! Cron fields are local wall time in the schedule's time zone. Matching is
//! done on the wall clock, then each matching wall time is placed on the
//! UTC time line once:
//!
//! - A wall time that does not exist (the clocks spring forward past it)
//!   runs at the first instant after the gap. In Europe/London, `0 1 * * *`
//!   on 2026-03-29 runs at 02:00 BST (01:00 UTC). Several starts inside one
//!   gap collapse into that single instant, so a run is never lost and never
//!   doubled.
//! - A wall time that happens twice (the clocks fall back) runs once, at its
//!   first occurrence. In Europe/London, `30 1 * * *` on 2026-10-25 runs at
//!   01:30 BST (00:30 UTC) only; an interval such as `*/15 * * * *` likewise
//!   pauses during the repeated hour instead of running each quarter twice.
//!
//! croner matches the patterns, on naive wall times. Its own zone handling
//! is not used because it treats patterns differently by shape (a fixed
//! `30 1 * * *` moves out of a gap but `0,30 1 * * *` is dropped, and
//! intervals run twice in a repeated hour); here one rule covers every
//! pattern.
//!
//! # Blackouts and jitter
//!
//! A pause blackout skips a start when the local date of the un-jittered
//! start lies in it; jitter never moves a start into or out of a blackout.

mod config;
mod error;
mod window;

use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use sha2::{Digest, Sha256};

pub use config::{Blackout, BlackoutMode, RunSpec, ScheduleConfig};
pub use error::ScheduleError;

use window::DailyWindow;

/// How far ahead [`Schedule::next_run_after`] looks before giving up.
const LOOK_AHEAD: TimeDelta = TimeDelta::days(731);
/// How far back [`Schedule::last_due_at_or_before`] looks before giving up.
const LOOK_BACK: TimeDelta = TimeDelta::days(400);
/// The largest jitter accepted; more would spread one day's runs into the
/// next.
const MAX_JITTER_SECONDS: u32 = 86_400;
/// More than any daylight saving shift in the time zone database (the
/// largest is two hours), so a backward search that starts this far past the
/// wall time of an instant in a repeated hour still sees the whole hour.
const LARGEST_CLOCK_SHIFT: TimeDelta = TimeDelta::hours(3);

/// A schedule checked and ready to answer when the connection runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    connection_id: String,
    timezone: Tz,
    jitter_seconds: u32,
    runs: Vec<CompiledRun>,
    blackouts: Vec<Blackout>,
}

#[derive(Debug, Clone)]
struct CompiledRun {
    /// The expression as written, for [`Schedule::describe`]; croner keeps
    /// only a normalised form.
    expression: String,
    cron: Cron,
    window: Option<DailyWindow>,
}

impl Schedule {
    /// Checks `config` and prepares it for `connection_id`, whose id seeds
    /// the jitter.
    pub fn compile(connection_id: &str, config: &ScheduleConfig) -> Result<Self, ScheduleError> {
        if config.jitter_seconds > MAX_JITTER_SECONDS {
            return Err(ScheduleError::JitterTooLarge {
                value: config.jitter_seconds,
                max: MAX_JITTER_SECONDS,
            });
        }
        let runs = config
            .runs
            .iter()
            .enumerate()
            .map(|(index, run)| compile_run(index, run))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some((index, blackout)) = config
            .blackouts
            .iter()
            .enumerate()
            .find(|(_, blackout)| blackout.from > blackout.to)
        {
            return Err(ScheduleError::BlackoutOrder {
                index,
                from: blackout.from,
                to: blackout.to,
            });
        }
        Ok(Self {
            connection_id: connection_id.to_string(),
            timezone: config.timezone,
            jitter_seconds: config.jitter_seconds,
            runs,
            blackouts: config.blackouts.clone(),
        })
    }

    /// The time zone the schedule is written in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The earliest start strictly after `after`: over all runs, inside each
    /// run's window, jitter added, and skipping starts whose local date is in
    /// a [`BlackoutMode::Pause`] blackout (the un-jittered start's date
    /// decides). `None` when there are no runs or no start within two years.
    pub fn next_run_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A start at or before this cannot land after `after` even with the
        // largest jitter.
        let search_from = self.to_local(after.checked_sub_signed(self.jitter_span())?);
        let horizon = after
            .checked_add_signed(LOOK_AHEAD)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut earliest: Option<DateTime<Utc>> = None;
        for run in &self.runs {
            let mut cursor = search_from;
            let mut inclusive = false;
            while let Ok(local) = run.cron.find_next_occurrence(&cursor, inclusive) {
                let start = self.to_utc(local);
                // Jitter only delays, so a start past the best found cannot
                // beat it.
                if start > horizon || earliest.is_some_and(|best| start > best) {
                    break;
                }
                inclusive = true;
                if let Some(window) = run.window.filter(|w| !w.contains(local.time())) {
                    cursor = window.next_opening(local);
                    continue;
                }
                if let Some(pause) = self.pause_on(local.date()) {
                    match pause.to.succ_opt() {
                        Some(day_after) => cursor = day_after.and_time(NaiveTime::MIN),
                        None => break,
                    }
                    continue;
                }
                let jittered = start + self.jitter_for(start);
                if jittered > after && earliest.is_none_or(|best| jittered < best) {
                    earliest = Some(jittered);
                }
                cursor = local;
                inclusive = false;
            }
        }
        earliest
    }

    /// The latest start at or before `at`, by the same rules as
    /// [`Self::next_run_after`], looking back at most 400 days. After a
    /// restart, a result later than the connection's last run start means a
    /// run was missed while the host was down.
    pub fn last_due_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let floor = at
            .checked_sub_signed(LOOK_BACK)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let search_from = self
            .to_local(at)
            .checked_add_signed(LARGEST_CLOCK_SHIFT)
            .unwrap_or(NaiveDateTime::MAX);
        let mut latest: Option<DateTime<Utc>> = None;
        for run in &self.runs {
            let mut cursor = search_from;
            let mut inclusive = true;
            while let Ok(local) = run.cron.find_previous_occurrence(&cursor, inclusive) {
                let start = self.to_utc(local);
                // Even the largest jitter cannot lift a start this early past
                // the best found.
                if start < floor || latest.is_some_and(|best| start + self.jitter_span() <= best) {
                    break;
                }
                inclusive = true;
                if let Some(window) = run.window.filter(|w| !w.contains(local.time())) {
                    cursor = window.last_open_second(local);
                    continue;
                }
                if let Some(pause) = self.pause_on(local.date()) {
                    match pause.from.pred_opt() {
                        Some(day_before) => cursor = day_before.and_time(last_second_of_day()),
                        None => break,
                    }
                    continue;
                }
                let jittered = start + self.jitter_for(start);
                if jittered <= at && latest.is_none_or(|best| jittered > best) {
                    latest = Some(jittered);
                }
                cursor = local;
                inclusive = false;
            }
        }
        latest
    }

    /// The blackout covering the local date of `at`, if any. When blackouts
    /// overlap, a pause wins over additions-only, then the first listed.
    pub fn blackout_at(&self, at: DateTime<Utc>) -> Option<&Blackout> {
        self.blackout_on(self.to_local(at).date())
    }

    /// A one-line summary for the dashboard, such as
    /// `0 7-17 * * MON-FRI; 0 1 * * * (Europe/London, jitter up to 15m)`.
    pub fn describe(&self) -> String {
        let runs = if self.runs.is_empty() {
            "no scheduled runs".to_string()
        } else {
            self.runs
                .iter()
                .map(|run| match &run.window {
                    Some(window) => format!("{} between {window}", run.expression),
                    None => run.expression.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let jitter = if self.jitter_seconds > 0 {
            format!(", jitter up to {}", short_duration(self.jitter_seconds))
        } else {
            String::new()
        };
        format!("{runs} ({}{jitter})", self.timezone.name())
    }

    fn blackout_on(&self, date: NaiveDate) -> Option<&Blackout> {
        self.blackouts
            .iter()
            .filter(|blackout| blackout.contains(date))
            .min_by_key(|blackout| blackout.mode != BlackoutMode::Pause)
    }

    fn pause_on(&self, date: NaiveDate) -> Option<&Blackout> {
        self.blackout_on(date)
            .filter(|blackout| blackout.mode == BlackoutMode::Pause)
    }

    fn jitter_span(&self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.jitter_seconds))
    }

    /// A delay in `[0, jitter_seconds)` derived from the connection id and
    /// the un-jittered start alone, so every host computes the same start
    /// and connections sharing a cron spread out instead of arriving at a
    /// provider together.
    fn jitter_for(&self, start: DateTime<Utc>) -> TimeDelta {
        if self.jitter_seconds == 0 {
            return TimeDelta::zero();
        }
        let mut hasher = Sha256::new();
        // The length prefix keeps ids that share a prefix from colliding.
        hasher.update((self.connection_id.len() as u64).to_be_bytes());
        hasher.update(self.connection_id.as_bytes());
        hasher.update(start.timestamp().to_be_bytes());
        let digest = hasher.finalize();
        let mut leading = [0u8; 8];
        leading.copy_from_slice(&digest[..8]);
        let offset = u64::from_be_bytes(leading) % u64::from(self.jitter_seconds);
        TimeDelta::seconds(offset as i64)
    }

    fn to_local(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.timezone).naive_local()
    }

    /// Places a local wall time on the UTC time line by the daylight saving
    /// rules in the crate documentation.
    fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(instant) => instant.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => self.first_instant_at_or_after(local),
        }
    }

    /// The first instant whose wall time is at or after `local`, found by
    /// bisection. A day either side of `local` read as UTC brackets every
    /// real offset, and no zone changes its clocks twice within that span,
    /// so the wall time only rises across the range.
    fn first_instant_at_or_after(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let wall_time_reached = |seconds: i64| {
            DateTime::from_timestamp(seconds, 0)
                .is_some_and(|instant| self.to_local(instant) >= local)
        };
        let as_utc = local.and_utc().timestamp();
        let (mut before, mut reached) = (as_utc - 86_400, as_utc + 86_400);
        while reached - before > 1 {
            let middle = before + (reached - before) / 2;
            if wall_time_reached(middle) {
                reached = middle;
            } else {
                before = middle;
            }
        }
        DateTime::from_timestamp(reached, 0).unwrap_or(local.and_utc())
    }
}

fn compile_run(index: usize, run: &RunSpec) -> Result<CompiledRun, ScheduleError> {
    let cron_error = |reason: String| ScheduleError::Cron {
        index,
        cron: run.cron.clone(),
        reason,
    };
    // Five fields, or six with seconds first; croner's optional seventh
    // (year) field is not part of the config format.
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    let cron = parser
        .parse(&run.cron)
        .map_err(|error| cron_error(error::explain_cron_error(&run.cron, &error)))?;
    // A pattern such as `0 0 30 2 *` parses but would leave the connection
    // silently never running.
    if cron
        .find_next_occurrence(&DateTime::UNIX_EPOCH.naive_utc(), true)
        .is_err()
    {
        return Err(cron_error("it never matches a real date".to_string()));
    }
    let window = run
        .between
        .as_deref()
        .map(|between| {
            DailyWindow::parse(between).map_err(|reason| ScheduleError::Window {
                index,
                between: between.to_string(),
                reason,
            })
        })
        .transpose()?;
    Ok(CompiledRun {
        expression: run.cron.trim().to_string(),
        cron,
        window,
    })
}

fn last_second_of_day() -> NaiveTime {
    NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN)
}

/// `900` → `15m`, `5400` → `1h30m`, `45` → `45s`.
fn short_duration(seconds: u32) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    [(hours, "h"), (minutes, "m"), (seconds, "s")]
        .into_iter()
        .filter(|(amount, _)| *amount > 0)
        .map(|(amount, unit)| format!("{amount}{unit}"))
        .collect()
}

#[cfg(test)]
mod tests;
