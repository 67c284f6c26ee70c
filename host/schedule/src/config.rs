//! The `[connections.schedule]` table as it is written in the config file.

use std::fmt;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// When a connection runs unattended, as configured.
///
/// Nothing here is checked beyond its type: [`crate::Schedule::compile`]
/// parses the cron expressions and windows and checks the blackouts.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The IANA time zone the cron fields, windows and blackout dates are
    /// written in.
    pub timezone: Tz,
    /// Each start is delayed by a fixed offset in `[0, jitter_seconds)` so
    /// that many connections with the same cron do not start together.
    pub jitter_seconds: u32,
    /// The cron runs; the connection starts at the earliest of them.
    pub runs: Vec<RunSpec>,
    /// Date ranges in which runs are skipped or restricted.
    pub blackouts: Vec<Blackout>,
}

impl Default for ScheduleConfig {
    /// No runs, UTC, no jitter and no blackouts: the connection only runs
    /// when an operator asks.
    fn default() -> Self {
        Self {
            timezone: Tz::UTC,
            jitter_seconds: 0,
            runs: Vec::new(),
            blackouts: Vec::new(),
        }
    }
}

/// One cron run, optionally limited to a daily window.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Five fields (minute hour day-of-month month day-of-week), or six with
    /// a leading seconds field, in local wall time.
    pub cron: String,
    /// `"HH:MM-HH:MM"` in local time: the start is inclusive, the end
    /// exclusive. A window whose end is before its start runs overnight, and
    /// `24:00` may end a window at midnight.
    #[serde(default)]
    pub between: Option<String>,
}

/// A range of local dates in which runs are skipped or restricted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    /// The first local date of the blackout.
    #[serde(deserialize_with = "local_date")]
    pub from: NaiveDate,
    /// The last local date of the blackout (inclusive).
    #[serde(deserialize_with = "local_date")]
    pub to: NaiveDate,
    pub mode: BlackoutMode,
    /// A name for operators, such as `"summer"`.
    #[serde(default)]
    pub label: Option<String>,
}

impl Blackout {
    /// Whether `date` falls within the blackout, both ends included.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from <= date && date <= self.to
    }
}

/// What a blackout does to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlackoutMode {
    /// Scheduled runs are skipped on these dates.
    Pause,
    /// Scheduled runs go ahead, but the sync applies only creates and
    /// updates; removals wait for an operator.
    AdditionsOnly,
}

/// Reads a `YYYY-MM-DD` date written either as a string or as a bare TOML
/// date (`from = 2026-07-20`). The toml crate hands a bare date to serde as
/// a one-entry map holding its text, which chrono's own reader refuses.
fn local_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    struct LocalDate;

    impl<'de> Visitor<'de> for LocalDate {
        type Value = NaiveDate;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a date such as 2026-07-20")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<NaiveDate, E> {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| E::custom(format!("{text:?} is not a date such as 2026-07-20")))
        }

        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<NaiveDate, M::Error> {
            match map.next_entry::<de::IgnoredAny, String>()? {
                Some((_, text)) => self.visit_str(&text),
                None => Err(de::Error::invalid_length(0, &self)),
            }
        }
    }

    deserializer.deserialize_any(LocalDate)
}
