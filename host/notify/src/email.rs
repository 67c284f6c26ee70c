//! Email notifications: a plain-text message per event, sent through the
//! channel's SMTP relay.

use lettre::message::header::ContentType;
use lettre::{AsyncTransport, Message};

use crate::config::EmailTarget;
use crate::delivery::Failure;
use crate::message::Notification;

/// Sends `notification` to every recipient of the target, once.
pub(crate) async fn send(target: &EmailTarget, notification: &Notification) -> Result<(), Failure> {
    let mut message = Message::builder()
        .from(target.from.clone())
        .subject(notification.email_subject())
        .header(ContentType::TEXT_PLAIN);
    for recipient in &target.to {
        message = message.to(recipient.clone());
    }
    let message = message
        .body(notification.email_body())
        .map_err(|error| Failure::GiveUp {
            reason: format!("cannot compose the message: {error}"),
        })?;
    match target.transport.send(message).await {
        Ok(_) => Ok(()),
        // A 5xx reply (a refused recipient, rejected credentials) will
        // not change by asking again.
        Err(error) if error.is_permanent() => Err(Failure::GiveUp {
            reason: format!("the SMTP server refused the message: {error}"),
        }),
        Err(error) => Err(Failure::Retry {
            reason: format!(
                "cannot send through {}: {error}",
                rostersync_store::redacted_url(target.smtp_url.as_str())
            ),
            retry_after: None,
        }),
    }
}
