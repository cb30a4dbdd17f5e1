//! Everything that differs between a native build and a browser build, behind ONE `cfg`.
//!
//! Each platform module offers the same names: its backend ([`platform_backend`];
//! [`BackendConfig`] is its settings, [`BackendError`] why it could not start), the signaling WebSocket (`ws::Socket`), the
//! system clock and timers (`time`), randomness (`random_u64`), the signaling URL schemes it
//! can use, and the [`SwarmDriver`] future type (`Send` natively, a local future in the
//! browser). Media: `SwarmMedia`, the shell's hook into what the platform keeps of a swarm's
//! audio (nothing natively; the browser's sources, senders and playback), and whether
//! `send_audio` takes encoded packets there (`SENDS_ENCODED_AUDIO`). Nothing outside this module tests `target_arch`.
//!
//! - `native`: webrtc-rs (smol runtime, ring crypto), async-tungstenite, async-io;
//! - `web`: the page's `RTCPeerConnection` and `WebSocket` through web-sys, gloo timers.

pub mod access;
pub(crate) mod frame;
pub(crate) mod time;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(not(target_arch = "wasm32"))]
use native as this;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
use web as this;

pub use access::SwarmAccess;
pub use this::api::*;
pub(crate) use this::{
    SEES_PINGS, SENDS_ENCODED_AUDIO, SIGNALING_SCHEMES, SwarmMedia, backend_with_media, random_u64,
    ws,
};
