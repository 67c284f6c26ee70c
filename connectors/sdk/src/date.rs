//! Provider dates into the contract's `YYYY-MM-DD`.

use crate::SyncError;

/// The calendar date at the start of `text`, as `YYYY-MM-DD`: a bare ISO
/// 8601 date, or one followed by a time (`2012-10-05T00:00:00`,
/// `2012-10-05 08:30:00.000Z`), which providers send for date-only fields
/// too. `None` when it is not a real date, so the caller can name the field.
pub fn iso_date(text: &str) -> Option<String> {
    let text = text.trim();
    let (date, time) = (text.get(..10)?, text.get(10..)?);
    if !(time.is_empty() || time.starts_with(['T', ' '])) {
        return None;
    }
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(year, 4) && digits(month, 2) && digits(day, 2)) {
        return None;
    }
    let (year, month, day): (u32, u32, u32) =
        (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days_in_month).contains(&day).then(|| date.to_string())
}

/// An optional date field of record `id` from `endpoint`, as `YYYY-MM-DD`:
/// blank is absent, and anything that is not a date is a bad response
/// naming the endpoint, the record and the field.
pub fn date_field(
    endpoint: &str,
    id: u64,
    field: &str,
    value: Option<String>,
) -> Result<Option<String>, SyncError> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(text) => iso_date(&text).map(Some).ok_or_else(|| {
            SyncError::BadResponse(format!(
                "{endpoint}: record {id} has {field} {text:?}, which is not a date"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::iso_date;

    #[test]
    fn dates_and_date_times_become_dates() {
        assert_eq!(iso_date("2012-10-05").as_deref(), Some("2012-10-05"));
        assert_eq!(
            iso_date("2012-10-05T00:00:00").as_deref(),
            Some("2012-10-05")
        );
        assert_eq!(
            iso_date(" 2024-02-29 08:30:00.000Z").as_deref(),
            Some("2024-02-29")
        );
    }

    #[test]
    fn impossible_or_foreign_dates_are_refused() {
        for text in [
            "",
            "2023-02-29",
            "2012-13-01",
            "2012-04-31",
            "31/02/2012",
            "2012-1-5",
            "2012-10-05X",
            "20121005",
            "2012-10-0é",
        ] {
            assert_eq!(iso_date(text), None, "{text:?}");
        }
    }
}
