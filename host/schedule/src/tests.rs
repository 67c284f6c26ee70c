use std::collections::HashSet;

use super::*;

fn schedule_for(connection_id: &str, toml_text: &str) -> Schedule {
    let config: ScheduleConfig = toml::from_str(toml_text).expect("the test config parses");
    Schedule::compile(connection_id, &config).expect("the test config compiles")
}

fn schedule(toml_text: &str) -> Schedule {
    schedule_for("north", toml_text)
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().expect("a test instant")
}

/// The next `count` starts after `after`, each found from the one before.
fn starts_after(schedule: &Schedule, after: &str, count: usize) -> Vec<DateTime<Utc>> {
    let mut starts = Vec::new();
    let mut cursor = utc(after);
    for _ in 0..count {
        cursor = schedule.next_run_after(cursor).expect("a next start");
        starts.push(cursor);
    }
    starts
}

fn instants(texts: &[&str]) -> Vec<DateTime<Utc>> {
    texts.iter().map(|text| utc(text)).collect()
}

#[test]
fn weekday_hourly_runs_end_at_friday_17_and_resume_at_monday_07() {
    let schedule = schedule(r#"runs = [{ cron = "0 7-17 * * MON-FRI" }]"#);
    // 2026-01-09 is a Friday.
    assert_eq!(
        starts_after(&schedule, "2026-01-09T15:30:00Z", 3),
        instants(&[
            "2026-01-09T16:00:00Z",
            "2026-01-09T17:00:00Z",
            "2026-01-12T07:00:00Z",
        ])
    );
}

#[test]
fn between_window_keeps_quarter_hourly_runs_inside_working_hours() {
    let schedule = schedule(r#"runs = [{ cron = "*/15 * * * *", between = "07:00-17:00" }]"#);
    assert_eq!(
        schedule.next_run_after(utc("2026-01-09T03:00:00Z")),
        Some(utc("2026-01-09T07:00:00Z"))
    );
    // The end is exclusive: 16:45 is the last start of the day.
    assert_eq!(
        starts_after(&schedule, "2026-01-09T16:40:00Z", 2),
        instants(&["2026-01-09T16:45:00Z", "2026-01-10T07:00:00Z"])
    );
    assert_eq!(
        schedule.last_due_at_or_before(utc("2026-01-10T06:59:59Z")),
        Some(utc("2026-01-09T16:45:00Z"))
    );
}

#[test]
fn between_window_that_ends_before_it_starts_runs_overnight() {
    let schedule = schedule(r#"runs = [{ cron = "0 * * * *", between = "22:00-02:00" }]"#);
    assert_eq!(
        starts_after(&schedule, "2026-01-08T12:00:00Z", 5),
        instants(&[
            "2026-01-08T22:00:00Z",
            "2026-01-08T23:00:00Z",
            "2026-01-09T00:00:00Z",
            "2026-01-09T01:00:00Z",
            "2026-01-09T22:00:00Z",
        ])
    );
    assert_eq!(
        schedule.last_due_at_or_before(utc("2026-01-09T12:00:00Z")),
        Some(utc("2026-01-09T01:00:00Z"))
    );
}

#[test]
fn nightly_and_weekday_hourly_runs_merge_in_time_order() {
    let schedule = schedule(
        r#"runs = [{ cron = "0 7-17 * * MON-FRI" }, { cron = "0 1 * * *" }, { cron = "0 17 * * FRI" }]"#,
    );
    // The hourly and Friday runs both start at 17:00: one start, not two.
    assert_eq!(
        starts_after(&schedule, "2026-01-09T16:30:00Z", 5),
        instants(&[
            "2026-01-09T17:00:00Z",
            "2026-01-10T01:00:00Z",
            "2026-01-11T01:00:00Z",
            "2026-01-12T01:00:00Z",
            "2026-01-12T07:00:00Z",
        ])
    );
}

#[test]
fn cron_fields_are_local_time_in_the_schedule_time_zone() {
    let schedule = schedule(
        r#"timezone = "Europe/London"
           runs = [{ cron = "0 1 * * *" }]"#,
    );
    // 01:00 BST is midnight UTC in summer; 01:00 GMT is 01:00 UTC in winter.
    assert_eq!(
        schedule.next_run_after(utc("2026-06-30T12:00:00Z")),
        Some(utc("2026-07-01T00:00:00Z"))
    );
    assert_eq!(
        schedule.next_run_after(utc("2026-01-14T12:00:00Z")),
        Some(utc("2026-01-15T01:00:00Z"))
    );
    assert_eq!(schedule.timezone(), Tz::Europe__London);
}

#[test]
fn a_start_in_the_spring_forward_gap_runs_at_the_first_instant_after_it() {
    let london = |cron: &str| {
        schedule(&format!(
            "timezone = \"Europe/London\"\nruns = [{{ cron = \"{cron}\" }}]"
        ))
    };
    // On 2026-03-29 the clocks go from 01:00 GMT to 02:00 BST (01:00 UTC).
    for cron in ["0 1 * * *", "30 1 * * *"] {
        assert_eq!(
            starts_after(&london(cron), "2026-03-28T12:00:00Z", 2)[0],
            utc("2026-03-29T01:00:00Z"),
            "{cron}"
        );
    }
    assert_eq!(
        starts_after(&london("30 1 * * *"), "2026-03-28T12:00:00Z", 2)[1],
        utc("2026-03-30T00:30:00Z")
    );
    // The four quarter hours inside the gap collapse into one start.
    let quarterly = london("*/15 * * * *");
    assert_eq!(
        starts_after(&quarterly, "2026-03-29T00:40:00Z", 4),
        instants(&[
            "2026-03-29T00:45:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T01:15:00Z",
            "2026-03-29T01:30:00Z",
        ])
    );
    assert_eq!(
        quarterly.last_due_at_or_before(utc("2026-03-29T01:10:00Z")),
        Some(utc("2026-03-29T01:00:00Z"))
    );
}

#[test]
fn a_wall_time_repeated_by_the_fall_back_runs_once_at_its_first_occurrence() {
    let london = |cron: &str| {
        schedule(&format!(
            "timezone = \"Europe/London\"\nruns = [{{ cron = \"{cron}\" }}]"
        ))
    };
    // On 2026-10-25 01:00-02:00 happens twice: 00:00-01:00 UTC as BST, then
    // 01:00-02:00 UTC as GMT.
    let nightly = london("30 1 * * *");
    assert_eq!(
        starts_after(&nightly, "2026-10-24T12:00:00Z", 2),
        instants(&["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"])
    );
    // From inside the second pass the first one is still the last due.
    assert_eq!(
        nightly.last_due_at_or_before(utc("2026-10-25T01:45:00Z")),
        Some(utc("2026-10-25T00:30:00Z"))
    );
    assert_eq!(
        nightly.next_run_after(utc("2026-10-25T01:10:00Z")),
        Some(utc("2026-10-26T01:30:00Z"))
    );
    let half_hourly = london("*/30 * * * *");
    assert_eq!(
        starts_after(&half_hourly, "2026-10-24T23:45:00Z", 4),
        instants(&[
            "2026-10-25T00:00:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T02:00:00Z",
            "2026-10-25T02:30:00Z",
        ])
    );
}

const SUMMER_BLACKOUT: &str = r#"
    timezone = "Europe/London"
    runs = [{ cron = "0 1 * * *" }]
    blackouts = [{ from = "2026-07-20", to = "2026-08-18", mode = "MODE", label = "summer" }]
"#;

#[test]
fn a_pause_blackout_skips_every_run_on_its_dates() {
    let schedule = schedule(&SUMMER_BLACKOUT.replace("MODE", "pause"));
    // 01:00 BST on 2026-07-19 is the last start before, 2026-08-19 the first after.
    assert_eq!(
        starts_after(&schedule, "2026-07-18T12:00:00Z", 2),
        instants(&["2026-07-19T00:00:00Z", "2026-08-19T00:00:00Z"])
    );
    assert_eq!(
        schedule.last_due_at_or_before(utc("2026-08-18T23:59:59Z")),
        Some(utc("2026-07-19T00:00:00Z"))
    );
    let blackout = schedule.blackout_at(utc("2026-08-01T12:00:00Z"));
    assert_eq!(blackout.map(|b| b.mode), Some(BlackoutMode::Pause));
}

#[test]
fn an_additions_only_blackout_keeps_runs_and_is_reported_on_local_dates() {
    let schedule = schedule(&SUMMER_BLACKOUT.replace("MODE", "additions-only"));
    assert_eq!(
        starts_after(&schedule, "2026-07-18T12:00:00Z", 2),
        instants(&["2026-07-19T00:00:00Z", "2026-07-20T00:00:00Z"])
    );
    let reported = |at: &str| {
        schedule
            .blackout_at(utc(at))
            .map(|b| (b.mode, b.label.clone()))
    };
    let summer = Some((BlackoutMode::AdditionsOnly, Some("summer".to_string())));
    // Local midnight BST is 23:00 UTC the evening before.
    assert_eq!(reported("2026-07-19T22:59:59Z"), None);
    assert_eq!(reported("2026-07-19T23:00:00Z"), summer);
    assert_eq!(reported("2026-08-18T22:59:59Z"), summer);
    assert_eq!(reported("2026-08-18T23:00:00Z"), None);
}

#[test]
fn overlapping_blackouts_report_the_pause() {
    let schedule = schedule(
        r#"runs = [{ cron = "0 1 * * *" }]
           blackouts = [
             { from = "2026-12-18", to = "2027-01-04", mode = "additions-only" },
             { from = "2026-12-24", to = "2026-12-26", mode = "pause", label = "christmas" },
           ]"#,
    );
    let mode_at = |at: &str| schedule.blackout_at(utc(at)).map(|b| b.mode);
    assert_eq!(
        mode_at("2026-12-20T12:00:00Z"),
        Some(BlackoutMode::AdditionsOnly)
    );
    assert_eq!(mode_at("2026-12-25T12:00:00Z"), Some(BlackoutMode::Pause));
    assert_eq!(
        starts_after(&schedule, "2026-12-22T12:00:00Z", 2),
        instants(&["2026-12-23T01:00:00Z", "2026-12-27T01:00:00Z"])
    );
}

const NIGHTLY_WITH_JITTER: &str = r#"
    jitter_seconds = 900
    runs = [{ cron = "0 1 * * *" }]
"#;

#[test]
fn jitter_is_deterministic_and_within_the_configured_span() {
    let first = schedule_for("north", NIGHTLY_WITH_JITTER);
    let again = schedule_for("north", NIGHTLY_WITH_JITTER);
    let mut night = utc("2026-01-01T01:00:00Z");
    for _ in 0..60 {
        let start = first.next_run_after(night - TimeDelta::hours(12)).unwrap();
        assert_eq!(
            again.next_run_after(night - TimeDelta::hours(12)),
            Some(start)
        );
        let offset = start - night;
        assert!(
            TimeDelta::zero() <= offset && offset < TimeDelta::seconds(900),
            "{start} is {offset} after {night}"
        );
        night += TimeDelta::days(1);
    }
}

#[test]
fn jitter_spreads_a_thousand_connections_over_the_window() {
    let night = utc("2026-01-15T01:00:00Z");
    let starts: HashSet<DateTime<Utc>> = (0..1000)
        .map(|n| {
            schedule_for(&format!("school-{n}"), NIGHTLY_WITH_JITTER)
                .next_run_after(utc("2026-01-14T12:00:00Z"))
                .unwrap()
        })
        .collect();
    assert!(starts.len() >= 100, "only {} distinct starts", starts.len());
    assert!(
        starts
            .iter()
            .all(|start| night <= *start && *start < night + TimeDelta::seconds(900))
    );
}

#[test]
fn jitter_never_yields_a_start_at_or_before_the_asked_time() {
    let night = utc("2026-01-15T01:00:00Z");
    let (schedule, start) = (0..)
        .map(|n| schedule_for(&format!("school-{n}"), NIGHTLY_WITH_JITTER))
        .map(|schedule| {
            let start = schedule
                .next_run_after(night - TimeDelta::hours(1))
                .unwrap();
            (schedule, start)
        })
        .find(|(_, start)| *start - night >= TimeDelta::seconds(2))
        .unwrap();
    // Past the un-jittered time but before the jittered one: still ahead.
    assert_eq!(
        schedule.next_run_after(night + TimeDelta::seconds(1)),
        Some(start)
    );
    assert_eq!(
        schedule.next_run_after(start - TimeDelta::seconds(1)),
        Some(start)
    );
    // At the jittered start itself it is past; the next night follows.
    let following = schedule.next_run_after(start).unwrap();
    assert!(following > night + TimeDelta::days(1) - TimeDelta::seconds(1));
    assert!(following < night + TimeDelta::days(1) + TimeDelta::seconds(900));
    assert_eq!(schedule.last_due_at_or_before(start), Some(start));
    assert!(
        schedule
            .last_due_at_or_before(start - TimeDelta::seconds(1))
            .unwrap()
            < night
    );
}

#[test]
fn last_due_finds_the_run_missed_during_a_three_hour_outage() {
    let hourly = schedule(r#"runs = [{ cron = "0 8-17 * * *" }]"#);
    // The host ran the 09:00 start, went down at 09:10 and came back at 12:10.
    let last_started = utc("2026-01-14T09:00:00Z");
    let due = hourly
        .last_due_at_or_before(utc("2026-01-14T12:10:00Z"))
        .unwrap();
    assert_eq!(due, utc("2026-01-14T12:00:00Z"));
    assert!(due > last_started);

    // Down from 00:30 to 03:30 over the nightly 01:00 start.
    let nightly = schedule(r#"runs = [{ cron = "0 1 * * *" }]"#);
    assert_eq!(
        nightly.last_due_at_or_before(utc("2026-01-14T03:30:00Z")),
        Some(utc("2026-01-14T01:00:00Z"))
    );
    // A due time is inclusive of the asked instant.
    assert_eq!(
        nightly.last_due_at_or_before(utc("2026-01-14T01:00:00Z")),
        Some(utc("2026-01-14T01:00:00Z"))
    );
}

#[test]
fn a_schedule_without_runs_never_runs() {
    let schedule = Schedule::compile("north", &ScheduleConfig::default()).unwrap();
    assert_eq!(schedule.next_run_after(utc("2026-01-14T12:00:00Z")), None);
    assert_eq!(
        schedule.last_due_at_or_before(utc("2026-01-14T12:00:00Z")),
        None
    );
    assert_eq!(schedule.describe(), "no scheduled runs (UTC)");
    assert_eq!(
        toml::from_str::<ScheduleConfig>("").unwrap(),
        ScheduleConfig::default()
    );
}

#[test]
fn searches_give_up_beyond_their_bounds() {
    // A pause over three years leaves nothing within the two-year look-ahead
    // or the 400-day look-back.
    let schedule = schedule(
        r#"runs = [{ cron = "0 1 * * *" }]
           blackouts = [{ from = "2026-01-01", to = "2028-12-31", mode = "pause" }]"#,
    );
    assert_eq!(schedule.next_run_after(utc("2026-01-01T00:00:00Z")), None);
    assert_eq!(
        schedule.last_due_at_or_before(utc("2028-06-01T00:00:00Z")),
        None
    );
    assert_eq!(
        schedule.last_due_at_or_before(utc("2026-06-01T00:00:00Z")),
        Some(utc("2025-12-31T01:00:00Z"))
    );
}

#[test]
fn describe_lists_the_runs_time_zone_and_jitter() {
    let schedule = schedule(
        r#"timezone = "Europe/London"
           jitter_seconds = 900
           runs = [
             { cron = "0 7-17 * * MON-FRI" },
             { cron = "*/15 * * * *", between = "07:00-24:00" },
             { cron = "0 1 * * *" },
           ]"#,
    );
    assert_eq!(
        schedule.describe(),
        "0 7-17 * * MON-FRI; */15 * * * * between 07:00-24:00; 0 1 * * * (Europe/London, jitter up to 15m)"
    );
    assert_eq!(short_duration(5400), "1h30m");
    assert_eq!(short_duration(45), "45s");
}

#[test]
fn six_field_expressions_take_seconds_first() {
    let schedule = schedule(r#"runs = [{ cron = "30 0 1 * * *" }]"#);
    assert_eq!(
        schedule.next_run_after(utc("2026-01-14T12:00:00Z")),
        Some(utc("2026-01-15T01:00:30Z"))
    );
}

/// A fixed pseudo-random walk over 2026, dense around both clock changes,
/// checking that each answer is the very next start: nothing lies strictly
/// between the asked time and the answer, and looking back from the answer
/// finds the answer itself.
#[test]
fn next_and_last_agree_with_each_other_over_many_instants() {
    let schedule = schedule(
        r#"timezone = "Europe/London"
           jitter_seconds = 600
           runs = [
             { cron = "0 7-17 * * MON-FRI" },
             { cron = "*/20 * * * *", between = "22:00-02:00" },
             { cron = "30 1 * * *" },
           ]
           blackouts = [{ from = "2026-05-01", to = "2026-05-03", mode = "pause" }]"#,
    );
    let year_start = utc("2026-01-01T00:00:00Z").timestamp();
    let clock_changes = [utc("2026-03-29T01:00:00Z"), utc("2026-10-25T01:00:00Z")];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for step in 0..500 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let asked = if step % 5 == 0 {
            let change = clock_changes[step / 5 % 2];
            change + TimeDelta::seconds((state >> 40) as i64 % 14_400 - 7_200)
        } else {
            DateTime::from_timestamp(year_start + (state >> 33) as i64 % 31_536_000, 0).unwrap()
        };
        let next = schedule.next_run_after(asked).unwrap();
        assert!(next > asked, "{next} is not after {asked}");
        assert_eq!(
            schedule.last_due_at_or_before(next),
            Some(next),
            "asked {asked}"
        );
        let just_before = schedule.last_due_at_or_before(next - TimeDelta::seconds(1));
        assert!(
            just_before.is_none_or(|start| start <= asked),
            "{just_before:?} lies between {asked} and {next}"
        );
    }
}
