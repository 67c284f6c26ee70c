//! Signed webhooks: the POST a receiver gets, its HMAC-SHA256 signature
//! over the send time and the exact body bytes (`TIMESTAMP.BODY`, the
//! timestamp in its own header), and the check receivers run on it: a
//! delivery captured and replayed later is refused once it is older than
//! [`TOLERANCE`].

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use sha2::Sha256;

use crate::config::WebhookTarget;
use crate::delivery::Failure;
use crate::message::Notification;

pub const EVENT_HEADER: &str = "X-Rostersync-Event";
/// The outbox idempotency key: the same on every retry of one event.
pub const DELIVERY_HEADER: &str = "X-Rostersync-Delivery";
/// `sha256=` and the lowercase hex HMAC-SHA256 of `TIMESTAMP.BODY`.
pub const SIGNATURE_HEADER: &str = "X-Rostersync-Signature";
/// When the attempt was signed, in Unix seconds; every retry is signed
/// afresh.
pub const TIMESTAMP_HEADER: &str = "X-Rostersync-Timestamp";
/// How far a signed timestamp may be from the receiver's clock.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// How long a receiver may take to answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length")
}

fn signed(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = mac(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Rostersync-Signature` value for `body` sent at `timestamp`
/// (Unix seconds, as in `X-Rostersync-Timestamp`).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mac = signed(secret, &timestamp.to_string(), body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `signature` (an `X-Rostersync-Signature` value) signs `body`
/// sent at `timestamp` (the `X-Rostersync-Timestamp` value) with `secret`,
/// compared in constant time, and the timestamp is within [`TOLERANCE`] of
/// `now` (Unix seconds).
pub fn verify_signature(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> bool {
    let Ok(sent) = timestamp.parse::<i64>() else {
        return false;
    };
    if sent.abs_diff(now) > TOLERANCE.as_secs() {
        return false;
    }
    let Some(signature) = signature
        .strip_prefix("sha256=")
        .and_then(|hex_digits| hex::decode(hex_digits).ok())
    else {
        return false;
    };
    signed(secret, timestamp, body)
        .verify_slice(&signature)
        .is_ok()
}

/// Posts `notification` to the target once.
pub(crate) async fn send(
    client: &reqwest::Client,
    target: &WebhookTarget,
    notification: &Notification,
) -> Result<(), Failure> {
    let body = notification.webhook_body();
    let timestamp = chrono::Utc::now().timestamp();
    let response = client
        .post(target.url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, &notification.event)
        .header(DELIVERY_HEADER, &notification.idempotency_key)
        .header(TIMESTAMP_HEADER, timestamp)
        .header(
            SIGNATURE_HEADER,
            sign(target.secret.expose().as_bytes(), timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|error| Failure::Retry {
            // Without the URL: reqwest's message repeats it, and a
            // receiver's URL may carry a token.
            reason: format!("cannot reach the receiver: {}", error.without_url()),
            retry_after: None,
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let reason = format!("the receiver answered {status}");
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Err(Failure::Retry {
            reason,
            retry_after: retry_after(response.headers()),
        })
    } else {
        Err(Failure::GiveUp { reason })
    }
}

/// `Retry-After` in seconds; an HTTP date falls back to the backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_secret_body_and_a_fresh_timestamp() {
        let body = b"{\"id\":1}";
        let sent = 1_767_225_600; // 2026-01-01T00:00:00Z
        let header = sign(b"s3cret", sent, body);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), "sha256=".len() + 64);
        assert_eq!(header, header.to_lowercase());
        let at = sent.to_string();
        assert!(verify_signature(b"s3cret", &at, body, &header, sent + 299));
        assert!(!verify_signature(b"other", &at, body, &header, sent));
        assert!(!verify_signature(
            b"s3cret",
            &at,
            b"{\"id\":2}",
            &header,
            sent
        ));
        assert!(
            !verify_signature(b"s3cret", &(sent + 1).to_string(), body, &header, sent),
            "the timestamp is signed too"
        );
        assert!(
            !verify_signature(b"s3cret", &at, body, &header, sent + 301),
            "a replay six minutes later is refused"
        );
        assert!(!verify_signature(b"s3cret", &at, body, &header[7..], sent));
        assert!(!verify_signature(b"s3cret", &at, body, "sha256=zz", sent));
        assert!(!verify_signature(b"s3cret", "soon", body, &header, sent));
    }
}
