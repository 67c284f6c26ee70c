//! Both channels against real receivers on 127.0.0.1: a webhook receiver
//! (axum) that fails before it succeeds, and a real SMTP server (Python's
//! `aiosmtpd`, writing a maildir). Events come from a real store's outbox,
//! on SQLite and PostgreSQL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use rostersync_notify::{
    Channel, ChannelConfig, DELIVERY_HEADER, DeliveryReport, EVENT_HEADER, Notifier, RetryPolicy,
    SIGNATURE_HEADER, TIMESTAMP_HEADER, resolve_channels, verify_signature,
};
use rostersync_store::testing::on_both_backends;
use rostersync_store::{OutboxEvent, RunMode, RunRecord, Store, WriteSet};

const SECRET: &str = "webhook-signing-secret";

/// Writes a run that emitted `event` for connection `north`.
async fn emit(store: &Store, event: &str, detail: serde_json::Value) {
    store.ensure_connection("north", "wonde").await.unwrap();
    let mut writes = WriteSet::new(RunRecord::new(RunMode::Delta, "failed", Utc::now()));
    writes.outbox.push(OutboxEvent {
        idempotency_key: format!("north:{event}:{}", rand_key()),
        event: event.into(),
        payload: serde_json::json!({"connection": "north", "detail": detail}).to_string(),
    });
    store.apply("north", &writes).await.unwrap();
}

fn rand_key() -> u64 {
    Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(1),
        max_attempts: 3,
        ..RetryPolicy::default()
    }
}

fn channels(toml: &str, env: &[(&str, &str)]) -> Vec<Channel> {
    #[derive(serde::Deserialize)]
    struct File {
        notifications: Vec<ChannelConfig>,
    }
    let file: File = toml::from_str(toml).unwrap();
    resolve_channels(&file.notifications, |name| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

/// What the receiver got, and the statuses it answers with, in turn (200
/// once they run out).
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(HeaderMap, Bytes)>>,
    answers: Mutex<Vec<StatusCode>>,
}

async fn receiver(answers: Vec<StatusCode>) -> (Arc<Receiver>, String) {
    let state = Arc::new(Receiver {
        answers: Mutex::new(answers),
        ..Receiver::default()
    });
    let handler_state = Arc::clone(&state);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = Arc::clone(&handler_state);
            async move {
                state.got.lock().unwrap().push((headers, body));
                let mut answers = state.answers.lock().unwrap();
                let status = if answers.is_empty() {
                    StatusCode::OK
                } else {
                    answers.remove(0)
                };
                (status, [("retry-after", "0")]).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, url)
}

fn webhook_channel(url: &str) -> Vec<Channel> {
    channels(
        &format!(
            "[[notifications]]\nkind = \"webhook\"\nname = \"ops-hook\"\nurl = \"{url}\"\nsecret_env = \"HOOK_SECRET\"\n"
        ),
        &[("HOOK_SECRET", SECRET)],
    )
}

#[tokio::test]
async fn a_webhook_is_signed_retried_after_a_5xx_with_the_same_delivery_key_and_sent_once() {
    on_both_backends(|store, _| async move {
        let store = Arc::new(store);
        let (receiver, url) = receiver(vec![StatusCode::SERVICE_UNAVAILABLE]).await;
        let notifier = Notifier::new(Arc::clone(&store), webhook_channel(&url))
            .unwrap()
            .with_retry_policy(fast_retries());
        emit(
            &store,
            "run.failed",
            serde_json::json!({"error": "the provider answered 503"}),
        )
        .await;
        // Record events are not notifications: a channel never sees them.
        emit(&store, "person.created", serde_json::json!({})).await;

        let first = notifier.deliver_due(Utc::now()).await.unwrap();
        assert_eq!(
            first,
            DeliveryReport {
                delivered: 0,
                retrying: 1,
                gave_up: 0
            }
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = notifier.deliver_due(Utc::now()).await.unwrap();
        assert_eq!(
            second,
            DeliveryReport {
                delivered: 1,
                retrying: 0,
                gave_up: 0
            }
        );
        let third = notifier.deliver_due(Utc::now()).await.unwrap();
        assert_eq!(
            third,
            DeliveryReport::default(),
            "a delivered event is not sent again"
        );

        let got = receiver.got.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "one failed attempt and one delivery");
        let key = |headers: &HeaderMap| headers[DELIVERY_HEADER].to_str().unwrap().to_string();
        assert_eq!(
            key(&got[0].0),
            key(&got[1].0),
            "a retry carries the same delivery key"
        );
        for (headers, body) in &got {
            assert_eq!(headers[EVENT_HEADER], "run.failed");
            let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
            let sent = headers[TIMESTAMP_HEADER].to_str().unwrap();
            let now = Utc::now().timestamp();
            assert!(
                verify_signature(SECRET.as_bytes(), sent, body, signature, now),
                "signed over the send time and the exact body"
            );
            assert!(!verify_signature(
                b"another-secret",
                sent,
                body,
                signature,
                now
            ));
            assert!(
                !verify_signature(SECRET.as_bytes(), sent, body, signature, now + 3600),
                "replayed an hour later, it is refused"
            );
        }
        let body: serde_json::Value = serde_json::from_slice(&got[1].1).unwrap();
        assert_eq!(body["event"], "run.failed");
        assert_eq!(body["connection"], "north");
        assert_eq!(body["detail"]["error"], "the provider answered 503");

        let deliveries = store.recent_notification_deliveries(10).await.unwrap();
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].attempts, 2);
        assert_eq!(deliveries[0].channel, "ops-hook");
        assert!(deliveries[0].last_error.as_deref().unwrap().contains("503"));
        assert!(deliveries[0].delivered_at.is_some());
    })
    .await;
}

#[tokio::test]
async fn a_webhook_that_refuses_is_given_up_at_once_and_one_that_keeps_failing_after_the_last_attempt()
 {
    on_both_backends(|store, _| async move {
        let store = Arc::new(store);
        let (refusing, url) = receiver(vec![StatusCode::NOT_FOUND]).await;
        let notifier = Notifier::new(Arc::clone(&store), webhook_channel(&url))
            .unwrap()
            .with_retry_policy(fast_retries());
        emit(
            &store,
            "run.held",
            serde_json::json!({"reasons": ["too many removals"]}),
        )
        .await;
        let report = notifier.deliver_due(Utc::now()).await.unwrap();
        assert_eq!(report.gave_up, 1, "a 404 will not change by asking again");
        assert_eq!(
            notifier.deliver_due(Utc::now()).await.unwrap(),
            DeliveryReport::default()
        );
        assert_eq!(refusing.got.lock().unwrap().len(), 1);

        let (failing, url) = receiver(vec![StatusCode::BAD_GATEWAY; 10]).await;
        let notifier = Notifier::new(
            Arc::clone(&store),
            webhook_channel(&url)
                .into_iter()
                .map(|mut c| {
                    c.name = "flaky-hook".into();
                    c
                })
                .collect(),
        )
        .unwrap()
        .with_retry_policy(fast_retries());
        let mut reports = Vec::new();
        for _ in 0..5 {
            reports.push(notifier.deliver_due(Utc::now()).await.unwrap());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            failing.got.lock().unwrap().len(),
            3,
            "max_attempts bounds the tries: {reports:?}"
        );
        assert_eq!(reports.iter().map(|r| r.gave_up).sum::<usize>(), 1);
    })
    .await;
}

/// A handler for aiosmtpd that writes each message it accepts as JSON
/// (envelope recipients, decoded headers and body), so the test reads
/// what a mail client would show.
const CAPTURE_HANDLER: &str = r#"
import email, email.policy, json, os, pathlib

class Capture:
    @classmethod
    def from_cli(cls, parser, *args):
        return cls(*args)

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.count += 1
        final = self.folder / f"{self.count:04}.json"
        partial = final.with_suffix(".part")
        partial.write_text(json.dumps({
            "rcpt_to": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "body": message.get_content(),
        }))
        os.replace(partial, final)
        return "250 Message accepted for delivery"
"#;

/// Python's aiosmtpd on a free port with the capture handler; stopped
/// when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn smtp_server() -> SmtpServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("capture.py"), CAPTURE_HANDLER).unwrap();
    std::fs::create_dir(dir.path().join("mail")).unwrap();
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "capture.Capture",
        ])
        .arg(dir.path().join("mail"))
        .env("PYTHONPATH", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut server = SmtpServer { child, port, dir };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return server;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(server.child.stderr.as_mut().unwrap(), &mut stderr)
                .unwrap();
            panic!(
                "aiosmtpd exited ({status}); is it installed (python3 -m pip install aiosmtpd)? {stderr}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("aiosmtpd did not listen on port {port} within 10 s");
}

/// The messages the server has accepted, in order.
fn received(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("mail"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
        .collect()
}

fn email_channel(port: u16) -> Vec<Channel> {
    channels(
        &format!(
            "[[notifications]]\nkind = \"email\"\nname = \"it-team\"\nevents = [\"run.held\", \"connection.disconnected\"]\n\
             smtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"rostersync <rostersync@school.example>\"\n\
             to = [\"it@school.example\", \"head@school.example\"]\n"
        ),
        &[],
    )
}

#[tokio::test]
async fn an_email_reaches_a_real_smtp_server_for_the_events_its_channel_takes() {
    let server = Arc::new(smtp_server().await);
    on_both_backends(move |store, _| {
        let server = Arc::clone(&server);
        async move {
            let store = Arc::new(store);
            let before = received(server.dir.path()).len();
            let notifier = Notifier::new(Arc::clone(&store), email_channel(server.port)).unwrap();
            emit(
                &store,
                "run.held",
                serde_json::json!({"reasons": ["the run would remove 20 of 60 people (33%)"]}),
            )
            .await;
            // Not one this channel takes.
            emit(&store, "run.failed", serde_json::json!({"error": "boom"})).await;
            let report = notifier.deliver_due(Utc::now()).await.unwrap();
            assert_eq!(
                report,
                DeliveryReport {
                    delivered: 1,
                    retrying: 0,
                    gave_up: 0
                }
            );
            let messages = received(server.dir.path());
            assert_eq!(messages.len(), before + 1, "one message, for the held run");
            let message = messages.last().unwrap();
            assert_eq!(
                message["rcpt_to"],
                serde_json::json!(["it@school.example", "head@school.example"])
            );
            assert_eq!(message["from"], "rostersync <rostersync@school.example>");
            assert_eq!(
                message["subject"],
                "[rostersync] north: sync held — the run would remove 20 of 60 people (33%)"
            );
            let body = message["body"].as_str().unwrap();
            assert!(
                body.contains("Connection: north") && body.contains("rostersync holds list"),
                "{body}"
            );
            assert_eq!(
                notifier.deliver_due(Utc::now()).await.unwrap(),
                DeliveryReport::default()
            );
        }
    })
    .await;
}

#[tokio::test]
async fn an_smtp_server_that_is_down_is_retried_later() {
    on_both_backends(|store, _| async move {
        let store = Arc::new(store);
        let notifier = Notifier::new(Arc::clone(&store), email_channel(free_port())).unwrap();
        emit(
            &store,
            "connection.disconnected",
            serde_json::json!({"consecutive_failures": 3}),
        )
        .await;
        let report = notifier.deliver_due(Utc::now()).await.unwrap();
        assert_eq!(
            report,
            DeliveryReport {
                delivered: 0,
                retrying: 1,
                gave_up: 0
            }
        );
        let deliveries = store.recent_notification_deliveries(10).await.unwrap();
        assert!(
            deliveries[0].next_attempt_at.unwrap() > Utc::now(),
            "{deliveries:?}"
        );
        assert_eq!(
            notifier.deliver_due(Utc::now()).await.unwrap(),
            DeliveryReport::default(),
            "nothing is due before the backoff ends"
        );
    })
    .await;
}
