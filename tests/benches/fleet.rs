//! A trust's worth of schools on one schedule: 200 sandbox schools, one
//! connection each across the five HTTP providers, all due on the same
//! minute, under `serve`'s scheduler and workers. Prints how long the
//! fleet took, the records read per second, the most runs seen in flight
//! against the concurrency limit, the CPU the process spent against what
//! the machine's cores offered, the dashboard's response times meanwhile,
//! and peak memory.
//!
//! `cargo bench -p rostersync-tests --bench fleet` (FLEET_SCHOOLS,
//! FLEET_PUPILS and FLEET_CONCURRENCY override the defaults).

use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use rostersync_sandbox::Size;
use rostersync_schedule::{RunSpec, ScheduleConfig};
use rostersync_tests::host::{ADMIN_TOKEN, Host, HostSpec};

const PROVIDERS: [&str; 5] = ["wonde", "clever", "arbor", "xporter", "scholarpack"];

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds this process has spent, user and system.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let schools = setting("FLEET_SCHOOLS", 200);
    let pupils = setting("FLEET_PUPILS", 150);
    let concurrency = setting("FLEET_CONCURRENCY", 8);
    let connections = (0..schools)
        .map(|school| {
            (
                format!("school-{school:03}"),
                PROVIDERS[school % PROVIDERS.len()],
                school,
            )
        })
        .collect();
    let started = Instant::now();
    let host = Host::start(HostSpec {
        size: Size {
            schools,
            pupils_per_school: pupils,
        },
        connections,
        schedule: ScheduleConfig {
            runs: vec![RunSpec {
                cron: "* * * * *".into(),
                between: None,
            }],
            jitter_seconds: 20,
            ..ScheduleConfig::default()
        },
        concurrency,
        ..HostSpec::default()
    })
    .await;
    println!(
        "{schools} schools × {pupils} pupils, concurrency {concurrency}: sandbox and host up in {:.1} s; waiting for the minute ({}s)",
        started.elapsed().as_secs_f64(),
        60 - Utc::now().second()
    );

    let client = reqwest::Client::new();
    let mut max_running = 0i64;
    let mut page_times = Vec::new();
    let mut first_seen: Option<Instant> = None;
    let mut cpu_at_first = 0.0;
    loop {
        let metrics = host.store.metrics().await.unwrap();
        max_running = max_running.max(metrics.running);
        let ended: std::collections::BTreeSet<String> = host
            .store
            .recent_queue(None, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|run| !run.state.is_active())
            .map(|run| run.connection)
            .collect();
        if first_seen.is_none() && (metrics.running > 0 || !ended.is_empty()) {
            first_seen = Some(Instant::now());
            cpu_at_first = cpu_seconds();
        }
        let asked = Instant::now();
        let page = client
            .get(host.url("/"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert!(page.status().is_success());
        page.text().await.unwrap();
        if first_seen.is_some() {
            page_times.push(asked.elapsed());
        }
        if ended.len() >= schools {
            let took = first_seen.map_or(Duration::ZERO, |t| t.elapsed());
            page_times.sort();
            let statuses: Vec<String> = metrics
                .runs_by_status
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            println!(
                "all {schools} connections ran once in {:.1} s from the first start ({})",
                took.as_secs_f64(),
                statuses.join(", ")
            );
            let mut records = 0i64;
            for school in 0..schools {
                let connection = format!("school-{school:03}");
                records += host
                    .store
                    .run_history(&connection, 1)
                    .await
                    .unwrap()
                    .first()
                    .map_or(0, |run| run.records_read);
            }
            println!(
                "records read: {records}, {:.0} a second",
                records as f64 / took.as_secs_f64().max(0.001)
            );
            println!("most runs in flight: {max_running} (limit {concurrency})");
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let cpu = cpu_seconds() - cpu_at_first;
            println!(
                "CPU (this process: sandbox, host and server): {cpu:.1} s, {:.0} % of {cores} cores over the fleet's wall time",
                100.0 * cpu / (took.as_secs_f64().max(0.001) * cores as f64)
            );
            println!(
                "dashboard (/, {} loads while the fleet ran): median {:.0} ms, slowest {:.0} ms",
                page_times.len(),
                page_times
                    .get(page_times.len() / 2)
                    .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                page_times.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
            );
            println!(
                "peak memory (this process: sandbox, host and server): {:.0} MB",
                peak_memory_mb()
            );
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            panic!("the fleet did not finish within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
