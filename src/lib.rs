//! Etahoiva hub: remote home-care video and telecare gateway.
//!
//! The binary (`src/main.rs`) parses the command line and calls into this
//! library; tests build a [`startup::Hub`] directly or run the binary.

rust_i18n::i18n!("locales", fallback = "en");

pub mod alerts;
pub mod api;
pub mod auth;
pub mod bench;
pub mod calls;
pub mod cli;
pub mod demo;
pub mod devices;
pub mod i18n;
pub mod relay;
pub mod schedule;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;
