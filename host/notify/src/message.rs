//! What a notification says: the webhook's JSON body, and the email's
//! one-line subject and plain-text body, from an outbox event's payload.
//! A payload with missing or unexpected detail still renders, with less
//! said, because an operator should hear about a failure even when its
//! detail is odd.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

/// The longest subject summary before it is cut, so mail clients show it.
const SUMMARY_LIMIT: usize = 120;

/// An outbox notification event, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The outbox row's id.
    pub id: i64,
    /// Stable across retries: receivers dedupe on it.
    pub idempotency_key: String,
    pub event: String,
    pub connection: String,
    pub detail: Value,
    pub occurred_at: DateTime<Utc>,
}

impl Notification {
    /// Reads the outbox payload (`{"connection", "detail"}`); the outbox
    /// row's own connection wins over the payload's.
    pub fn from_outbox(
        id: i64,
        idempotency_key: String,
        event: String,
        connection: String,
        payload: &str,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        let detail = serde_json::from_str::<Value>(payload)
            .ok()
            .and_then(|mut payload| payload.get_mut("detail").map(Value::take))
            .filter(|detail| !detail.is_null())
            .unwrap_or_else(|| Value::Object(Default::default()));
        Self {
            id,
            idempotency_key,
            event,
            connection,
            detail,
            occurred_at,
        }
    }

    fn occurred_at_rfc3339(&self) -> String {
        self.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// The webhook body, in a fixed field order.
    pub fn webhook_body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            id: i64,
            event: &'a str,
            connection: &'a str,
            detail: &'a Value,
            occurred_at: String,
        }
        serde_json::to_vec(&Body {
            id: self.id,
            event: &self.event,
            connection: &self.connection,
            detail: &self.detail,
            occurred_at: self.occurred_at_rfc3339(),
        })
        .expect("a JSON value always serialises")
    }

    /// E.g. `[rostersync] north-primary: sync held — 240 removals need confirming`.
    pub fn email_subject(&self) -> String {
        let headline = match self.event.as_str() {
            "run.held" => "sync held",
            "run.failed" => "sync failed",
            "run.incomplete" => "sync incomplete",
            "connection.disconnected" => "connection lost",
            "connection.recovered" => "connection recovered",
            other => other,
        };
        let subject = match self.summary() {
            Some(summary) => format!("[rostersync] {}: {headline} — {summary}", self.connection),
            None => format!("[rostersync] {}: {headline}", self.connection),
        };
        one_line(&subject)
    }

    /// The detail's gist, when it has one.
    fn summary(&self) -> Option<String> {
        let text = |field: &str| {
            self.detail
                .get(field)
                .and_then(Value::as_str)
                .filter(|text| !text.trim().is_empty())
        };
        let summary = match self.event.as_str() {
            // A held run's grouped one-liner, when the run wrote one.
            "run.held" if text("summary").is_some() => text("summary")?.to_string(),
            event @ ("run.held" | "run.incomplete") => {
                let list = if event == "run.held" {
                    "reasons"
                } else {
                    "shortfalls"
                };
                let reasons: Vec<&str> = self
                    .detail
                    .get(list)
                    .and_then(Value::as_array)
                    .map(|reasons| reasons.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match reasons.as_slice() {
                    [] => return None,
                    [only] => only.to_string(),
                    [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
                }
            }
            "run.failed" => text("error")?.to_string(),
            "connection.disconnected" => {
                match self
                    .detail
                    .get("consecutive_failures")
                    .and_then(Value::as_u64)
                {
                    Some(failures) => {
                        format!("{failures} runs in a row could not reach the provider")
                    }
                    None => text("error")?.to_string(),
                }
            }
            _ => return None,
        };
        Some(truncate(&summary, SUMMARY_LIMIT))
    }

    /// What the operator should do next.
    fn advice(&self) -> String {
        let connection = &self.connection;
        match self.event.as_str() {
            "run.held" => format!(
                "Review the held changes on the dashboard or with `rostersync holds list`, then answer the hold (confirm or reject removals, create the held contacts or not); {connection} does not sync until you do."
            ),
            "run.failed" => format!(
                "See the run and its message on the dashboard or with `rostersync history {connection}`; the next scheduled run tries again."
            ),
            "run.incomplete" => format!(
                "See what is wrong with `rostersync issues {connection}` or on the dashboard, and fix it at the source or relax the named policy; nothing was removed meanwhile."
            ),
            "connection.disconnected" => format!(
                "Check {connection}'s credentials, its allowed hosts and the provider's status, then answer the hold \"I fixed it\" on the dashboard or with `rostersync holds answer HOLD fixed-it`; it syncs again at once."
            ),
            "connection.recovered" => {
                format!("Nothing to do: {connection} reaches its provider again.")
            }
            _ => "See the dashboard for details.".to_string(),
        }
    }

    /// The plain-text email body.
    pub fn email_body(&self) -> String {
        let detail =
            serde_json::to_string_pretty(&self.detail).expect("a JSON value always serialises");
        format!(
            "Event:      {}\nConnection: {}\nTime:       {}\n\n{}\n\nDetail:\n{detail}\n",
            self.event,
            self.connection,
            self.occurred_at_rfc3339(),
            self.advice(),
        )
    }
}

/// Newlines and other control characters would break a header.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notification(event: &str, detail: Value) -> Notification {
        Notification::from_outbox(
            7,
            "run-1:event".into(),
            event.into(),
            "north-primary".into(),
            &json!({"connection": "north-primary", "detail": detail}).to_string(),
            DateTime::parse_from_rfc3339("2025-03-04T05:06:07Z")
                .unwrap()
                .into(),
        )
    }

    #[test]
    fn subjects_summarise_each_event_in_one_line() {
        let held = notification(
            "run.held",
            json!({"reasons": ["240 removals need confirming"]}),
        );
        assert_eq!(
            held.email_subject(),
            "[rostersync] north-primary: sync held — 240 removals need confirming"
        );
        let grouped = notification(
            "run.held",
            json!({"reasons": ["this run would remove 3 of 20 students (15 %)"], "summary": "3 removals held: 3 students in Year 9 — see Holds on the dashboard"}),
        );
        assert_eq!(
            grouped.email_subject(),
            "[rostersync] north-primary: sync held — 3 removals held: 3 students in Year 9 — see Holds on the dashboard"
        );
        let held_twice = notification("run.held", json!({"reasons": ["a", "b", "c"]}));
        assert_eq!(
            held_twice.email_subject(),
            "[rostersync] north-primary: sync held — a (and 2 more)"
        );
        let failed = notification("run.failed", json!({"error": "bad\ncredentials"}));
        assert_eq!(
            failed.email_subject(),
            "[rostersync] north-primary: sync failed — bad credentials"
        );
        let lost = notification(
            "connection.disconnected",
            json!({"consecutive_failures": 3}),
        );
        assert_eq!(
            lost.email_subject(),
            "[rostersync] north-primary: connection lost — 3 runs in a row could not reach the provider"
        );
    }

    #[test]
    fn missing_or_odd_detail_still_renders() {
        let held = notification("run.held", json!({"reasons": 5}));
        assert_eq!(
            held.email_subject(),
            "[rostersync] north-primary: sync held"
        );
        let failed = notification("run.failed", Value::Null);
        assert_eq!(
            failed.email_subject(),
            "[rostersync] north-primary: sync failed"
        );
        let broken = Notification::from_outbox(
            1,
            "k".into(),
            "run.failed".into(),
            "south".into(),
            "not json",
            Utc::now(),
        );
        assert_eq!(broken.detail, json!({}));
        assert!(broken.email_body().contains("rostersync history south"));
        let long = notification("run.failed", json!({"error": "x".repeat(500)}));
        assert!(long.email_subject().chars().count() < 200);
    }

    #[test]
    fn the_webhook_body_carries_the_event_and_an_rfc3339_time() {
        let body: Value =
            serde_json::from_slice(&notification("connection.recovered", json!({})).webhook_body())
                .unwrap();
        assert_eq!(
            body,
            json!({"id": 7, "event": "connection.recovered", "connection": "north-primary",
                   "detail": {}, "occurred_at": "2025-03-04T05:06:07Z"})
        );
    }
}
