//! Prometheus metrics in the text exposition format, computed from the
//! store at scrape time, so every host sharing a store reports the same
//! totals and a restart loses none.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use rostersync_store::StoreMetrics;

use crate::AppState;
use crate::api::ApiResult;
use crate::auth::ApiCaller;

pub async fn metrics(State(state): State<AppState>, _: ApiCaller) -> ApiResult<impl IntoResponse> {
    let metrics = state.service.store().metrics().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&metrics),
    ))
}

/// Escapes a label value as the exposition format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub(crate) fn render(metrics: &StoreMetrics) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "rostersync_runs_total",
        "counter",
        "Runs recorded, by status.",
    );
    for (status, runs) in &metrics.runs_by_status {
        let _ = writeln!(
            out,
            "rostersync_runs_total{{status=\"{}\"}} {runs}",
            label(status)
        );
    }
    family(
        &mut out,
        "rostersync_records_total",
        "counter",
        "Records changed by runs, by kind and action.",
    );
    for (kind, action, records) in &metrics.records_by_action {
        let _ = writeln!(
            out,
            "rostersync_records_total{{kind=\"{}\",action=\"{}\"}} {records}",
            label(kind),
            label(action)
        );
    }
    family(
        &mut out,
        "rostersync_run_duration_seconds",
        "summary",
        "How long finished runs took, by status.",
    );
    for (status, runs, seconds) in &metrics.run_seconds {
        let status = label(status);
        let _ = writeln!(
            out,
            "rostersync_run_duration_seconds_sum{{status=\"{status}\"}} {seconds:.3}"
        );
        let _ = writeln!(
            out,
            "rostersync_run_duration_seconds_count{{status=\"{status}\"}} {runs}"
        );
    }
    family(
        &mut out,
        "rostersync_connector_errors_total",
        "counter",
        "Failed runs, by connector.",
    );
    for (connector, failures) in &metrics.failures_by_connector {
        let _ = writeln!(
            out,
            "rostersync_connector_errors_total{{connector=\"{}\"}} {failures}",
            label(connector)
        );
    }
    family(
        &mut out,
        "rostersync_holds_open",
        "gauge",
        "Holds waiting for an operator.",
    );
    let _ = writeln!(out, "rostersync_holds_open {}", metrics.holds_open);
    family(
        &mut out,
        "rostersync_runs_queued",
        "gauge",
        "Runs waiting for a worker.",
    );
    let _ = writeln!(out, "rostersync_runs_queued {}", metrics.queued);
    family(
        &mut out,
        "rostersync_runs_running",
        "gauge",
        "Runs in progress.",
    );
    let _ = writeln!(out, "rostersync_runs_running {}", metrics.running);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_declared_and_labels_are_escaped() {
        let text = render(&StoreMetrics {
            runs_by_status: vec![("succeeded".into(), 3), ("failed".into(), 1)],
            records_by_action: vec![("person".into(), "created".into(), 240)],
            run_seconds: vec![("succeeded".into(), 3, 4.5)],
            failures_by_connector: vec![("we\"ird".into(), 1)],
            holds_open: 2,
            queued: 0,
            running: 1,
        });
        assert!(
            text.contains("rostersync_runs_total{status=\"failed\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("rostersync_records_total{kind=\"person\",action=\"created\"} 240\n")
        );
        assert!(text.contains("rostersync_run_duration_seconds_sum{status=\"succeeded\"} 4.500\n"));
        assert!(text.contains("rostersync_connector_errors_total{connector=\"we\\\"ird\"} 1\n"));
        assert!(text.contains("rostersync_holds_open 2\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name.trim_end_matches("_sum").trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{name} has no TYPE line"
            );
        }
    }
}
