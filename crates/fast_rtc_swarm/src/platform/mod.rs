//! Everything that differs between a native build and a browser build, behind ONE `cfg`.
//!
//! Each platform module offers the same names: its backend ([`platform_backend`];
//! [`BackendConfig`] is its settings, [`BackendError`] why it could not start), the signaling WebSocket (`ws::Socket`), the
//! system clock and timers (`time`), randomness (`random_u64`), the signaling URL schemes it
//! can use, and the [`SwarmDriver`] future type (`Send` natively, a local future in the
//! browser). Nothing outside this module tests `target_arch`.
//!
//! - `native`: webrtc-rs (smol runtime, ring crypto), async-tungstenite, async-io;
//! - `web`: the page's `RTCPeerConnection` and `WebSocket` through web-sys, gloo timers.

pub(crate) mod frame;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(not(target_arch = "wasm32"))]
use native as this;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
use web as this;

pub use this::api::*;
pub(crate) use this::{SEES_PINGS, SIGNALING_SCHEMES, random_u64, time, ws};
