//! The native backend on webrtc-rs 0.21 (smol runtime, ring crypto, no tokio).
//!
//! Each connection runs in one task on webrtc-rs's runtime and carries out its commands in
//! order. Data channels are polled by one task each. Closing a connection (or dropping the
//! backend) closes the RTCPeerConnection explicitly, so no driver or socket outlives it.
//!
//! # Connecting fast
//!
//! With webrtc-rs defaults a link takes three 200 ms ticks from answer to open channels. The
//! ICE agent's check interval paces the first check, and webrtc-rs's connection driver only
//! sends some packets on its next wake-up: the DTLS client's first flight (made when ICE selects
//! a pair, sent at the next timeout handling), the SCTP `INIT` (made when DTLS completes) and
//! each channel's DCEP `OPEN` (made when SCTP comes up, while the driver handles events after
//! writing). With nothing else to do, that wake-up is the ICE agent's timer: up to 200 ms. This
//! backend removes each wait with public calls only:
//! - a short ICE check interval (10 ms by default) with more binding requests, so a failing
//!   pair is still given about 2 s, and peer-reflexive pairs selected without webrtc-rs's 1 s
//!   wait; both only matter while checking;
//! - a driver wake-up after each remote candidate, so its pair's first check leaves at once;
//! - on the DTLS client, when ICE connects, an inert remote candidate plus a wake-up, which
//!   makes the driver handle timeouts at once and send the `ClientHello` (see
//!   `hurry::flush_dtls_client`);
//! - from DTLS completion until SCTP is up and this side's channels are open, a wake-up after
//!   1 ms, then at doubling gaps of at most 16 ms (see `hurry::Nudge`).
//!
//! A wake-up is `set_configuration` with the unchanged configuration: it changes nothing and
//! sends nothing. Keepalives (1 s) and failure timeouts (3 s + 7 s) stay at real-network values;
//! see [`NativeConfig`]. Measured (`cargo run --release -p fast_rtc_bench -- join`): a joiner
//! has its channels open with 1, 4 and 8 members in 5.8, 8.0 and 11.3 ms on this project's
//! 2-core machine, against 0.6–1.2 s for matchbox on the same webrtc-rs in the same run.
//!
//! # Files
//!
//! - `config.rs`: [`NativeConfig`];
//! - `runtime.rs`: the UDP socket tuning wrapped around webrtc-rs's runtime (receive buffer,
//!   and a GSO batch cap below the kernel's UDP payload limit: see its docs);
//! - `hurry.rs`: the wake-ups above;
//! - `peer.rs`: one RTCPeerConnection as the shared connection task (`connection.rs`) drives it;
//! - `ws.rs`, `time.rs`: the signaling WebSocket and the shell's clock and timers;
//! - `audio.rs` (feature `voice`): voice ([`fast_rtc_swarm_core::media`]): the Opus tracks of a connection,
//!   the decoder of each remote track, and `AudioSender`, which encodes a track's frames once
//!   for every link.
//! - `tls.rs`: TLS for `wss://` signaling (rustls on ring, Mozilla's roots plus
//!   [`NativeConfig::tls_roots`]).

#[cfg(feature = "voice")]
mod audio;
mod config;
mod context;
mod hurry;
mod peer;
mod runtime;
pub(crate) mod time;
mod tls;
pub(crate) mod ws;

#[cfg(feature = "voice")]
pub use audio::AudioSender;
pub use config::NativeConfig;
pub(crate) use context::random_u64;

use crate::backend::{DynBackend, EventSender, NewConnection, TaskBackend};
use context::Context;
use fast_rtc_swarm_core::config::SwarmConfig;
use peer::NativePeer;
use runtime::SocketTuning;
use std::sync::Arc;
use webrtc::runtime::Runtime;

/// The native backend could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NativeError {
    /// webrtc-rs found no async runtime.
    #[error("webrtc-rs has no async runtime")]
    NoRuntime,
    /// An entry of [`NativeConfig::tls_roots`] is not a usable DER certificate.
    #[error("NativeConfig::tls_roots[{index}] is not a usable CA certificate (DER): {reason}")]
    TlsRoot {
        /// Its index in `tls_roots`.
        index: usize,
        /// What rustls said.
        reason: String,
    },
    /// The TLS client configuration could not be built.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// This build's backend, webrtc-rs (see the [module docs](self)), for `swarm`'s channels and
/// ICE servers, reporting to `events`. [`start`](crate::start) uses it; call it yourself to
/// wrap it in a backend of your own for [`start_with`](crate::start_with).
pub fn platform_backend(
    swarm: SwarmConfig,
    native: NativeConfig,
    events: EventSender,
) -> Result<DynBackend, NativeError> {
    let runtime = webrtc::runtime::default_runtime().ok_or(NativeError::NoRuntime)?;
    let runtime: Arc<dyn Runtime> = Arc::new(SocketTuning {
        inner: runtime,
        recv_buffer: native.udp_recv_buffer,
    });
    let context = Arc::new(Context {
        swarm,
        native,
        runtime,
        events: events.clone(),
    });
    let launch = move |new: NewConnection| {
        let task_context = context.clone();
        let task = async move {
            let (id, peer_context) = (new.id.clone(), task_context.clone());
            let (role, ice_servers) = (new.role, new.ice_servers.clone());
            let build = move || NativePeer::build(id, role, ice_servers, peer_context);
            crate::connection::run(new, build, &task_context.swarm, &task_context.events).await;
        };
        drop(context.runtime.spawn(Box::pin(task)));
    };
    Ok(Box::new(TaskBackend::new(Box::new(launch))))
}

/// The shell's hook into the platform's media. Natively there is none to keep: a track's
/// audio is encoded packets from the application ([`AudioSender`], [`crate::SwarmHandle::send_audio`])
/// and arrives decoded as [`SwarmEvent::Audio`](crate::SwarmEvent::Audio).
#[derive(Debug, Default)]
pub(crate) struct SwarmMedia;

/// What a connection task is given of its swarm's [`SwarmMedia`]: nothing natively.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MediaLink;

impl SwarmMedia {
    /// The media of a swarm started with [`crate::start`] on `config`.
    pub(crate) fn new(_config: &SwarmConfig) -> Self {
        SwarmMedia
    }

    /// The media of a swarm on a backend of the application's ([`crate::start_with`]).
    pub(crate) fn none() -> Self {
        SwarmMedia
    }

    /// What the backend's connections are given.
    pub(crate) fn link(&self) -> MediaLink {
        MediaLink
    }

    /// This member's track `track` is now in `state` (`None`: removed).
    pub(crate) fn track_changed(
        &self,
        _track: fast_rtc_swarm_core::TrackId,
        _state: Option<fast_rtc_swarm_core::TrackState>,
    ) {
    }

    /// The swarm told the application `event`.
    pub(crate) fn observe(&self, _event: &fast_rtc_swarm_core::SwarmEvent) {}

    /// The key of this swarm's media in the platform: natively none is kept (0).
    pub(crate) fn key(&self) -> u64 {
        0
    }
}

/// [`platform_backend`] for a swarm started with [`crate::start`], with its media.
pub(crate) fn backend_with_media(
    swarm: SwarmConfig,
    native: NativeConfig,
    events: EventSender,
    _media: MediaLink,
) -> Result<DynBackend, NativeError> {
    platform_backend(swarm, native, events)
}

/// Whether [`crate::SwarmHandle::send_audio`] sends encoded packets here (natively it does).
pub(crate) const SENDS_ENCODED_AUDIO: bool = true;

/// The public names every platform module offers (see [`crate::platform`]).
pub mod api {
    #[cfg(feature = "voice")]
    pub use crate::platform::native::AudioSender;
    pub use crate::platform::native::{NativeConfig, NativeError, platform_backend};

    /// The settings of this build's backend: [`NativeConfig`] (webrtc-rs).
    pub type BackendConfig = NativeConfig;
    /// Why this build's backend could not start.
    pub type BackendError = NativeError;
    /// The future that runs a swarm; spawn it on any executor (tokio, smol, Bevy's task pools).
    /// It finishes when the swarm is closed (after sending `close` to the server) or every
    /// [`SwarmHandle`](crate::SwarmHandle) is gone.
    pub type SwarmDriver =
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;
}

/// Signaling URL schemes the built-in client can use: plain WebSocket, and WebSocket over TLS
/// (rustls; the server's certificate is checked against Mozilla's roots plus
/// [`NativeConfig::tls_roots`]).
pub(crate) const SIGNALING_SCHEMES: &[&str] = &["ws://", "wss://"];

/// The signaling socket yields the server's WebSocket pings, so a silent socket can be told
/// from a quiet one ([`SwarmConfig::signaling_silence_timeout`]).
pub(crate) const SEES_PINGS: bool = true;
