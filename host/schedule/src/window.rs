//! The daily window a run may be limited to (`between = "07:00-17:00"`).

use std::fmt;

use chrono::{NaiveDateTime, NaiveTime, TimeDelta};

/// A daily range of local wall times: the start is inclusive, the end
/// exclusive. An end before the start wraps past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DailyWindow {
    start: NaiveTime,
    end: NaiveTime,
}

impl DailyWindow {
    /// Parses `"HH:MM-HH:MM"`, returning the reason when it cannot.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let format_hint = || "write the window as HH:MM-HH:MM".to_string();
        let (start, end) = text.split_once('-').ok_or_else(format_hint)?;
        let start = parse_time_of_day(start.trim(), false).ok_or_else(format_hint)?;
        let end_text = end.trim();
        let end = parse_time_of_day(end_text, true).ok_or_else(format_hint)?;
        // "00:00-24:00" is the whole day; any other equal pair is empty.
        if start == end && end_text != "24:00" {
            return Err(format!(
                "the window is empty: it starts and ends at {}",
                start.format("%H:%M")
            ));
        }
        Ok(Self { start, end })
    }

    pub(crate) fn contains(&self, time: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// The first moment the window is open after `outside`, a wall time at
    /// which it is shut.
    pub(crate) fn next_opening(&self, outside: NaiveDateTime) -> NaiveDateTime {
        let today = outside.date().and_time(self.start);
        if today > outside {
            today
        } else {
            today + TimeDelta::days(1)
        }
    }

    /// The last second the window is open before `outside`, a wall time at
    /// which it is shut.
    pub(crate) fn last_open_second(&self, outside: NaiveDateTime) -> NaiveDateTime {
        let today = outside.date().and_time(self.end) - TimeDelta::seconds(1);
        if today < outside {
            today
        } else {
            today - TimeDelta::days(1)
        }
    }
}

impl fmt::Display for DailyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = if self.end == NaiveTime::MIN {
            "24:00".to_string()
        } else {
            self.end.format("%H:%M").to_string()
        };
        write!(f, "{}-{end}", self.start.format("%H:%M"))
    }
}

/// Parses `HH:MM` strictly (two digits each), allowing `24:00` as an end.
fn parse_time_of_day(text: &str, is_end: bool) -> Option<NaiveTime> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    if is_end && hours == 24 && minutes == 0 {
        return Some(NaiveTime::MIN);
    }
    NaiveTime::from_hms_opt(hours, minutes, 0)
}
