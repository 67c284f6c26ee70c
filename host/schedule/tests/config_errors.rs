//! Every mistake in a schedule table is reported in one sentence that names
//! the field and quotes the value, whether serde or the compiler finds it.

use rostersync_schedule::{Schedule, ScheduleConfig};

/// The message an operator sees for `toml_text`, from parsing or compiling.
fn error_for(toml_text: &str) -> String {
    match toml::from_str::<ScheduleConfig>(toml_text) {
        Ok(config) => match Schedule::compile("north", &config) {
            Ok(_) => panic!("{toml_text:?} should not compile"),
            Err(error) => error.to_string(),
        },
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_cron_value_out_of_range_names_the_run_field_and_number() {
    assert_eq!(
        error_for(r#"runs = [{ cron = "0 7 * * *" }, { cron = "0 25 * * *" }]"#),
        r#"runs[1].cron "0 25 * * *": hour 25 is out of range 0-23"#
    );
    assert_eq!(
        error_for(r#"runs = [{ cron = "*/5 7 1-32 * *" }]"#),
        r#"runs[0].cron "*/5 7 1-32 * *": day-of-month 32 is out of range 1-31"#
    );
}

#[test]
fn a_malformed_cron_names_the_field_at_fault() {
    assert_eq!(
        error_for(r#"runs = [{ cron = "0 7 * * FUNDAY" }]"#),
        r#"runs[0].cron "0 7 * * FUNDAY": the day-of-week field "FUNDAY" is not valid"#
    );
    assert_eq!(
        error_for(r#"runs = [{ cron = "0 7 * *" }]"#),
        r#"runs[0].cron "0 7 * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found 4"#
    );
    assert_eq!(
        error_for(r#"runs = [{ cron = "0 0 7 * * * 2027" }]"#),
        r#"runs[0].cron "0 0 7 * * * 2027": expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found 7"#
    );
}

#[test]
fn a_cron_that_can_never_fire_is_rejected() {
    assert_eq!(
        error_for(r#"runs = [{ cron = "0 0 30 2 *" }]"#),
        r#"runs[0].cron "0 0 30 2 *": it never matches a real date"#
    );
}

#[test]
fn a_bad_window_names_the_run_and_window() {
    assert_eq!(
        error_for(r#"runs = [{ cron = "0 * * * *", between = "7-17" }]"#),
        r#"runs[0].between "7-17": write the window as HH:MM-HH:MM"#
    );
    assert_eq!(
        error_for(r#"runs = [{ cron = "0 * * * *", between = "07:00-25:00" }]"#),
        r#"runs[0].between "07:00-25:00": write the window as HH:MM-HH:MM"#
    );
    assert_eq!(
        error_for(r#"runs = [{ cron = "0 * * * *", between = "07:00-07:00" }]"#),
        r#"runs[0].between "07:00-07:00": the window is empty: it starts and ends at 07:00"#
    );
}

#[test]
fn a_blackout_that_ends_before_it_starts_names_both_dates() {
    assert_eq!(
        error_for(r#"blackouts = [{ from = "2026-08-18", to = "2026-07-20", mode = "pause" }]"#),
        "blackouts[0]: from 2026-08-18 is after to 2026-07-20"
    );
}

#[test]
fn too_much_jitter_names_the_value_and_limit() {
    assert_eq!(
        error_for("jitter_seconds = 100000"),
        "jitter_seconds 100000: at most 86400 (one day) is allowed"
    );
}

#[test]
fn serde_errors_name_the_field_and_value() {
    let cases = [
        (r#"timezone = "Europe/Londn""#, ["timezone", "Europe/Londn"]),
        (r#"timezon = "Europe/London""#, ["timezon", "unknown field"]),
        (r#"jitter_seconds = -5"#, ["jitter_seconds", "-5"]),
        (
            r#"runs = [{ cron = "0 1 * * *", betwen = "07:00-17:00" }]"#,
            ["betwen", "unknown field"],
        ),
        (
            r#"blackouts = [{ from = "2026-07-20", to = "2026-08-18", mode = "paused" }]"#,
            ["mode", "paused"],
        ),
        (
            r#"blackouts = [{ from = "2026-13-01", to = "2026-08-18", mode = "pause" }]"#,
            ["from", "\"2026-13-01\" is not a date such as 2026-07-20"],
        ),
        (
            r#"blackouts = [{ from = "2026-07-20", to = 2026-08-18T10:00:00, mode = "pause" }]"#,
            [
                "to",
                "\"2026-08-18T10:00:00\" is not a date such as 2026-07-20",
            ],
        ),
    ];
    for (toml_text, expected) in cases {
        let message = error_for(toml_text);
        for part in expected {
            assert!(
                message.contains(part),
                "{part:?} is missing from {message:?}"
            );
        }
    }
}

#[test]
fn blackout_dates_may_be_bare_toml_dates() {
    assert_eq!(
        error_for(r#"blackouts = [{ from = 2026-08-18, to = 2026-07-20, mode = "pause" }]"#),
        "blackouts[0]: from 2026-08-18 is after to 2026-07-20"
    );
}
