//! `etahoiva-edge`: the agent on the home terminal.

rust_i18n::i18n!("locales", fallback = "en");

pub mod agent;
pub mod alarm;
pub mod backoff;
pub mod calls;
pub mod inputs;
pub mod kiosk;
pub mod link;
pub mod media;
pub mod notices;
pub mod outbox;
pub mod schedule;
pub mod state_file;
pub mod tls;
