//! The harness of the native <-> JS reference-client test (`tests/js_native_interop.rs`): JS
//! members in pages of a headless Chromium or Firefox (or both), native members as `echo_peer` processes, one
//! log of everything they report.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // the harness reads the clock to time events

pub mod browser;
pub mod events;
pub mod native;
pub mod page;
pub mod room;
