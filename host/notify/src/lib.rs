//! Operator notifications: when a run is held or fails, or a connection
//! disconnects or recovers, each configured channel (a signed webhook, an
//! email list) hears about it, with retries and per-channel bookkeeping in
//! the store.
//!
//! The events come from the store's outbox, written in the same
//! transaction as the run that caused them; this crate only reads them
//! and records, per channel, what it delivered.

mod config;
mod delivery;
mod email;
mod message;
mod webhook;

pub use config::{
    Channel, ChannelConfig, ConfigError, EmailConfig, EmailTarget, NotificationEvent, Secret,
    Target, WebhookConfig, WebhookTarget, resolve_channels,
};
pub use delivery::{ClientError, DeliveryReport, Notifier, RetryPolicy};
pub use message::Notification;
pub use webhook::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, TOLERANCE, sign,
    verify_signature,
};
