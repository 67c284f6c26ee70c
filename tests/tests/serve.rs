//! The host end to end: the admin API over a running service with a real
//! connector reading the sandbox. Authentication and scopes, "Refresh
//! now" joining a queued run, holds answered over the API, restart
//! recovery, metrics, health and the OpenAPI document, and the signed
//! webhook an operator gets when a run fails or is held.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use rostersync_notify::{
    ChannelConfig, SIGNATURE_HEADER, TIMESTAMP_HEADER, resolve_channels, verify_signature,
};
use rostersync_sandbox::{Mutation, Provider};
use rostersync_store::{QueueState, RunAsk, RunMode};
use rostersync_tests::host::{ADMIN_TOKEN, Host, HostSpec, READ_TOKEN};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(host: &Host, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = client().get(host.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn post(host: &Host, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(host.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Asks for a run of north now, as an admin: the API's answer.
async fn run_now(host: &Host, mode: &str) -> (StatusCode, Value) {
    post(
        host,
        "/api/v1/connections/north/runs",
        ADMIN_TOKEN,
        json!({ "mode": mode }),
    )
    .await
}

#[tokio::test]
async fn no_token_or_a_wrong_one_is_refused_and_a_read_only_token_cannot_change_anything() {
    let host = Host::start(HostSpec {
        start: false,
        ..HostSpec::default()
    })
    .await;
    let (status, body) = get(&host, "/api/v1/connections", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body.contains("Bearer"),
        "the refusal says how to authenticate: {body}"
    );
    let (status, _) = get(
        &host,
        "/api/v1/connections",
        Some("not-the-token-at-all-000"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = get(&host, "/api/v1/connections", Some(READ_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let connections: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(connections[0]["id"], "north");

    for (path, body) in [
        ("/api/v1/connections/north/runs", json!({"mode": "delta"})),
        (
            "/api/v1/holds/1/confirm",
            json!({"revision": "0000000000000000"}),
        ),
        ("/api/v1/holds/1/reject", json!({})),
        (
            "/api/v1/accounts/acc_x/delete",
            json!({"connection": "north"}),
        ),
    ] {
        let (status, answer) = post(&host, path, READ_TOKEN, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            answer["error"].as_str().unwrap().contains("read-only"),
            "{path}: {answer}"
        );
    }
    assert!(
        host.store.active_runs().await.unwrap().is_empty(),
        "nothing was queued"
    );
    // The dashboard sends visitors without a session to the login page.
    let page = client().get(host.url("/")).send().await.unwrap();
    assert!(page.url().path().ends_with("/login"), "{}", page.url());
}

#[tokio::test]
async fn refresh_now_joins_a_queued_run_and_the_run_reports_progress_then_its_outcome() {
    let mut host = Host::start(HostSpec {
        start: false,
        ..HostSpec::default()
    })
    .await;
    let (status, first) = run_now(&host, "delta").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first["queued"], true);
    let (_, second) = run_now(&host, "full").await;
    assert_eq!(second["queued"], false, "a second request joins the first");
    assert_eq!(second["run"]["id"], first["run"]["id"]);
    assert_eq!(
        second["run"]["mode"], "full",
        "the queued delta became the full run asked for"
    );
    let (_, queue) = get(&host, "/api/v1/queue", Some(READ_TOKEN)).await;
    assert_eq!(
        serde_json::from_str::<Value>(&queue)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    host.run();
    host.succeeded("north").await;
    let id = first["run"]["id"].as_i64().unwrap();
    let (_, ended) = get(&host, &format!("/api/v1/queue/{id}"), Some(READ_TOKEN)).await;
    let ended: Value = serde_json::from_str(&ended).unwrap();
    assert_eq!(ended["state"], "finished");
    assert_eq!(ended["requested_by"], "ops");
    let run_id = ended["run_id"]
        .as_i64()
        .expect("the queue row links the run it wrote");
    let (_, history) = get(&host, "/api/v1/connections/north/runs", Some(READ_TOKEN)).await;
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history[0]["id"], run_id);
    assert_eq!(history[0]["mode"], "full");
    assert!(
        history[0]["records_read"].as_i64().unwrap() > 60,
        "{history}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_mass_removal_is_held_exported_and_confirmed_over_the_api() {
    let host = Host::start(HostSpec::default()).await;
    run_now(&host, "full").await;
    host.succeeded("north").await;
    for _ in 0..20 {
        host.sandbox
            .mutate(0, Mutation::RemovePupil { pupil: None })
            .unwrap();
    }
    run_now(&host, "full").await;
    assert_eq!(host.settled("north").await, "held");

    let (_, holds) = get(&host, "/api/v1/holds", Some(READ_TOKEN)).await;
    let holds: Value = serde_json::from_str(&holds).unwrap();
    let hold = holds[0]["id"].as_i64().unwrap();
    assert!(
        holds[0]["why"][0]
            .as_str()
            .unwrap()
            .contains("would remove"),
        "{holds}"
    );
    let (status, csv) = get(
        &host,
        &format!("/api/v1/holds/{hold}/export.csv"),
        Some(READ_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.lines().count() > 20,
        "one evidence row per affected record: {csv}"
    );

    let revision = holds[0]["digest"].as_str().unwrap();
    assert!(csv.starts_with(&format!(
        "# hold {hold} on north revision 1 digest {revision}"
    )));
    let (status, stale) = post(
        &host,
        &format!("/api/v1/holds/{hold}/confirm"),
        ADMIN_TOKEN,
        json!({"revision": "0000000000000000"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "not the revision shown: {stale}"
    );
    let (status, confirmed) = post(
        &host,
        &format!("/api/v1/holds/{hold}/confirm"),
        ADMIN_TOKEN,
        json!({"revision": revision}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert!(confirmed["run_id"].as_i64().is_some());
    let (status, again) = post(
        &host,
        &format!("/api/v1/holds/{hold}/confirm"),
        ADMIN_TOKEN,
        json!({"revision": revision}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a hold is answered once: {again}"
    );
    let (_, audit) = get(&host, "/api/v1/audit", Some(READ_TOKEN)).await;
    assert!(
        audit.contains("\"actor\":\"ops\"") && audit.contains("hold.confirm"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_run_whose_process_died_is_failed_once_its_lease_runs_out_and_a_live_one_is_left_alone() {
    let mut host = Host::start(HostSpec {
        start: false,
        connections: vec![("north".into(), "wonde", 0), ("south".into(), "wonde", 0)],
        ..HostSpec::default()
    })
    .await;
    let ask = |connection: &str| RunAsk {
        connection: connection.into(),
        mode: RunMode::Full,
        reason: "schedule".into(),
        requested_by: "scheduler".into(),
        additions_only: false,
    };
    // A process that died mid-run left north's row running; another host,
    // alive, is running south's and keeps its heartbeat fresh.
    let now = chrono::Utc::now();
    host.store.enqueue_run(&ask("north"), now).await.unwrap();
    let died = host.store.claim_next_run(now).await.unwrap().unwrap();
    host.store.enqueue_run(&ask("south"), now).await.unwrap();
    let alive = host.store.claim_next_run(now).await.unwrap().unwrap().id;
    let store = std::sync::Arc::clone(&host.store);
    let heartbeat = tokio::spawn(async move {
        loop {
            store
                .heartbeat_run(alive, chrono::Utc::now())
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });

    host.run();
    let mut settled = None;
    for _ in 0..200 {
        let row = host.store.queued_run(died.id).await.unwrap().unwrap();
        if !row.state.is_active() {
            settled = Some(row);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let settled = settled.expect("the host settles the run whose heartbeat stopped");
    assert_eq!(settled.state, QueueState::Failed);
    assert!(
        settled
            .message
            .unwrap()
            .contains("nothing of it was applied")
    );
    assert!(
        host.store.run_history("north", 5).await.unwrap().is_empty(),
        "nothing was applied"
    );
    // The settling freed north: a new request queues and runs.
    run_now(&host, "delta").await;
    host.succeeded("north").await;

    let south = host.store.queued_run(alive).await.unwrap().unwrap();
    assert_eq!(
        south.state,
        QueueState::Running,
        "a run with a live heartbeat is not settled"
    );
    heartbeat.abort();
    host.stop().await;
}

#[tokio::test]
async fn health_metrics_and_every_documented_path_answer() {
    let host = Host::start(HostSpec::default()).await;
    run_now(&host, "full").await;
    host.succeeded("north").await;

    let (status, health) = get(&host, "/healthz", None).await;
    assert_eq!(
        (status, health.as_str()),
        (StatusCode::OK, r#"{"status":"ok"}"#)
    );
    let (status, _) = get(&host, "/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "metrics need a token too");
    let (_, metrics) = get(&host, "/metrics", Some(READ_TOKEN)).await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("rostersync_runs_total{status=\"succeeded") && l.ends_with("} 1")
        ),
        "one successful run: {metrics}"
    );
    assert!(
        metrics.contains("rostersync_records_total{kind=\"person\",action=\"create\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("rostersync_holds_open 0\n"), "{metrics}");

    let (status, document) = get(&host, "/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let document: Value = serde_json::from_str(&document).unwrap();
    let run_id = host.store.run_history("north", 1).await.unwrap()[0].id;
    let queue_id = host.store.recent_queue(Some("north"), 1).await.unwrap()[0].id;
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{paths:?}");
    for (path, operations) in paths {
        if operations.get("get").is_none()
            || path.contains("/holds/{id}")
            || path.contains("/accounts/{id}")
            || path.contains("/targets/{name}")
            || path.contains("{source_id}")
        {
            continue;
        }
        let id = if path.starts_with("/api/v1/connections") {
            "north".to_string()
        } else if path.starts_with("/api/v1/queue") {
            queue_id.to_string()
        } else {
            run_id.to_string()
        };
        let (status, body) = get(&host, &path.replace("{id}", &id), Some(READ_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "GET {path} answers: {body}");
    }
}

/// A webhook receiver on 127.0.0.1: each body with whether its signature
/// verified.
async fn webhook_receiver(secret: &'static str) -> (Arc<Mutex<Vec<(Value, bool)>>>, String) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = Arc::clone(&seen);
                async move {
                    let header = |name| headers.get(name).and_then(|h| h.to_str().ok());
                    let signed = header(SIGNATURE_HEADER)
                        .zip(header(TIMESTAMP_HEADER))
                        .is_some_and(|(signature, sent)| {
                            let now = chrono::Utc::now().timestamp();
                            verify_signature(secret.as_bytes(), sent, &body, signature, now)
                        });
                    seen.lock()
                        .unwrap()
                        .push((serde_json::from_slice(&body).unwrap(), signed));
                    StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let url = format!("http://{}/hook", rostersync_tests::serve(app).await);
    (got, url)
}

/// Waits up to 30 s for the receiver to have an event named `event`.
async fn wait_for_event(got: &Mutex<Vec<(Value, bool)>>, event: &str) -> (Value, bool) {
    for _ in 0..300 {
        if let Some(found) = got
            .lock()
            .unwrap()
            .iter()
            .find(|(body, _)| body["event"] == event)
        {
            return found.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no {event} notification arrived: {:?}", got.lock().unwrap());
}

#[tokio::test]
async fn the_operator_hears_by_signed_webhook_when_a_run_fails_and_when_one_is_held() {
    let (got, url) = webhook_receiver("hook-secret-for-the-suite").await;
    let configs: Vec<ChannelConfig> = serde_json::from_value(json!([
        {"kind": "webhook", "name": "ops", "url": url, "secret_env": "HOOK_SECRET"}
    ]))
    .unwrap();
    let channels =
        resolve_channels(&configs, |_| Some("hook-secret-for-the-suite".into())).unwrap();
    let host = Host::start(HostSpec {
        notifications: channels,
        ..HostSpec::default()
    })
    .await;
    run_now(&host, "full").await;
    host.succeeded("north").await;

    host.sandbox.revoke_credentials(Provider::Wonde, 0);
    run_now(&host, "delta").await;
    assert_eq!(host.settled("north").await, "failed");
    let (failed, signed) = wait_for_event(&got, "run.failed").await;
    assert!(signed, "the body is signed with the channel's secret");
    assert_eq!(failed["connection"], "north");
    assert!(
        failed["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("refused the credentials"),
        "the failure says why: {failed}"
    );

    host.sandbox.restore_credentials(Provider::Wonde, 0);
    for _ in 0..20 {
        host.sandbox
            .mutate(0, Mutation::RemovePupil { pupil: None })
            .unwrap();
    }
    run_now(&host, "full").await;
    assert_eq!(host.settled("north").await, "held");
    let (held, signed) = wait_for_event(&got, "run.held").await;
    assert!(signed);
    assert!(
        held["detail"].to_string().contains("would remove"),
        "{held}"
    );
    // Both deliveries reach the store (the receiver may answer before the
    // notifier records it).
    let mut deliveries = Value::Null;
    for _ in 0..100 {
        let (status, body) = get(&host, "/api/v1/notifications", Some(READ_TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
        deliveries = serde_json::from_str(&body).unwrap();
        if deliveries
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "delivered")
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1 && d["channel"] == "ops"),
        "{deliveries:?}"
    );
}
