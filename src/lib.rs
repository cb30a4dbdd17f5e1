//! # bevy_fast_rtc
//!
//! A Bevy-native port of the fast-rtc swarm: a full mesh of WebRTC peers whose members keep
//! pre-made offers parked on the signaling server, so a joiner connects to every member after ONE
//! signaling round trip.
//!
//! This package is the Bevy plugin. It is under construction: today the workspace ships the wire
//! protocol ([`protocol`], the `fast_rtc_protocol` crate) and the signaling server
//! (`fast_rtc_server`). The swarm core and the plugin follow; see the repository README.

#![forbid(unsafe_code)]

/// The wire types of the fast-rtc signaling protocol, re-exported from `fast_rtc_protocol`.
pub use fast_rtc_protocol as protocol;
