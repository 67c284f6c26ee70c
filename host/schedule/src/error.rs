//! Why a schedule does not compile, phrased for the person editing the file.

use std::str::FromStr;

use chrono::NaiveDate;
use croner::Cron;
use thiserror::Error;

/// A schedule that cannot be compiled. Each message is one sentence that
/// starts with the field path inside the schedule table and quotes the bad
/// value; the caller prefixes the file and connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    #[error("runs[{index}].cron {cron:?}: {reason}")]
    Cron {
        index: usize,
        cron: String,
        reason: String,
    },
    #[error("runs[{index}].between {between:?}: {reason}")]
    Window {
        index: usize,
        between: String,
        reason: String,
    },
    #[error("blackouts[{index}]: from {from} is after to {to}")]
    BlackoutOrder {
        index: usize,
        from: NaiveDate,
        to: NaiveDate,
    },
    #[error("jitter_seconds {value}: at most {max} (one day) is allowed")]
    JitterTooLarge { value: u32, max: u32 },
}

const FIVE_FIELDS: [Field; 5] = [
    Field::new("minute", 0, 59),
    Field::new("hour", 0, 23),
    Field::new("day-of-month", 1, 31),
    Field::new("month", 1, 12),
    Field::new("day-of-week", 0, 7),
];
const SECOND: Field = Field::new("second", 0, 59);

/// One position of a cron expression and the numbers it accepts.
#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
}

impl Field {
    const fn new(name: &'static str, min: u32, max: u32) -> Self {
        Self { name, min, max }
    }
}

/// Explains why croner rejected `expression`, naming the field at fault.
///
/// croner reports positions rather than field names, so each field is
/// parsed again on its own, with every other field a wildcard, to find the
/// first one it rejects.
pub(crate) fn explain_cron_error(
    expression: &str,
    croner_error: &croner::errors::CronError,
) -> String {
    let parts: Vec<&str> = expression.split_whitespace().collect();
    let fields: Vec<Field> = match parts.len() {
        5 => FIVE_FIELDS.to_vec(),
        6 => std::iter::once(SECOND).chain(FIVE_FIELDS).collect(),
        1 if expression.trim_start().starts_with('@') => {
            return "use one of @hourly, @daily, @weekly, @monthly or @yearly".to_string();
        }
        found => {
            return format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found {found}"
            );
        }
    };
    for (position, field) in fields.iter().enumerate() {
        let probe: Vec<&str> = (0..parts.len())
            .map(|other| {
                if other == position {
                    parts[position]
                } else {
                    "*"
                }
            })
            .collect();
        if Cron::from_str(&probe.join(" ")).is_err() {
            return explain_field(*field, parts[position]);
        }
    }
    croner_error.to_string()
}

/// Names a number outside the field's range when there is one, since that
/// is the usual mistake; otherwise says the field as a whole is not valid.
fn explain_field(field: Field, text: &str) -> String {
    let mut previous = None;
    for token in text.split_inclusive(|c: char| !c.is_ascii_digit()) {
        let digits = token.trim_end_matches(|c: char| !c.is_ascii_digit());
        // Step sizes (`*/5`) and nth-weekday counts (`MON#2`) have ranges of
        // their own, so only plain values are checked against the field's.
        let is_value = !matches!(previous, Some('/' | '#'));
        if is_value
            && let Ok(value) = digits.parse::<u32>()
            && !(field.min..=field.max).contains(&value)
        {
            return format!(
                "{} {value} is out of range {}-{}",
                field.name, field.min, field.max
            );
        }
        previous = token.chars().last().filter(|c| !c.is_ascii_digit());
    }
    format!("the {} field {text:?} is not valid", field.name)
}
