//! Signed webhooks: the POST a receiver gets, its HMAC-SHA256 signature
//! over the exact body bytes, and the check receivers run on it.

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
/// `sha256=` and the lowercase hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Rostersync-Signature";

/// How long a receiver may take to answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length")
}

/// The `X-Rostersync-Signature` value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (an `X-Rostersync-Signature` value) signs `body` with
/// `secret`, compared in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(signature) = header
        .strip_prefix("sha256=")
        .and_then(|hex_digits| hex::decode(hex_digits).ok())
    else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// Posts `notification` to the target once.
pub(crate) async fn send(
    client: &reqwest::Client,
    target: &WebhookTarget,
    notification: &Notification,
) -> Result<(), Failure> {
    let body = notification.webhook_body();
    let response = client
        .post(target.url.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, &notification.event)
        .header(DELIVERY_HEADER, &notification.idempotency_key)
        .header(
            SIGNATURE_HEADER,
            sign(target.secret.expose().as_bytes(), &body),
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
    fn a_signature_verifies_only_with_its_secret_and_body() {
        let header = sign(b"s3cret", b"{\"id\":1}");
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), "sha256=".len() + 64);
        assert_eq!(header, header.to_lowercase());
        assert!(verify_signature(b"s3cret", b"{\"id\":1}", &header));
        assert!(!verify_signature(b"other", b"{\"id\":1}", &header));
        assert!(!verify_signature(b"s3cret", b"{\"id\":2}", &header));
        assert!(!verify_signature(
            b"s3cret",
            b"{\"id\":1}",
            &header["sha256=".len()..]
        ));
        assert!(!verify_signature(b"s3cret", b"{\"id\":1}", "sha256=zz"));
    }
}
