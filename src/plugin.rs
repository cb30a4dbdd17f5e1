//! The plugin: its settings and what it adds to the app.

use crate::backend::{BackendFactory, SwarmBackend};
use crate::diagnostics;
use crate::messages::{
    PeerClosed, PeerConnectionChanged, PeerData, PeerOpened, SignalingChanged, SwarmError,
    TokenRequested,
};
use crate::session::Swarm;
use crate::systems;
use crate::voice::{PeerAudio, PeerTrack};
use bevy::prelude::*;
use fast_rtc_protocol::RoomId;
use fast_rtc_swarm::{
    BackendConfig, ChannelConfig, ChannelId, IceServer, IceTransportPolicy, ReconnectPolicy,
    Signaling, SwarmConfig, TokenPolicy,
};
use std::time::Duration;

/// Adds a fast-rtc swarm to the app.
///
/// Build it with [`FastRtcPlugin::new`] and the `with_*` methods; every knob of the swarm's
/// [`SwarmConfig`] is reachable, the common ones through their own builder and the rest through
/// [`with_swarm_config`](FastRtcPlugin::with_swarm_config). Without
/// [`with_signaling`](FastRtcPlugin::with_signaling), nothing connects until
/// [`Swarm::connect`] is called (from a menu, say).
#[derive(Clone, Debug)]
pub struct FastRtcPlugin {
    /// The swarm's configuration (room, peer buffer, ICE servers, channels, timeouts).
    swarm: SwarmConfig,
    /// The backend: this build's WebRTC backend with its settings, or one of your own with its
    /// clock.
    backend: SwarmBackend,
    /// Connect at startup over this signaling.
    signaling: Option<Signaling>,
}

impl FastRtcPlugin {
    /// A plugin for `room` with the defaults of [`SwarmConfig::new`] and [`BackendConfig`].
    pub fn new(room: impl Into<RoomId>) -> Self {
        FastRtcPlugin {
            swarm: SwarmConfig::new(room),
            backend: SwarmBackend::default(),
            signaling: None,
        }
    }

    /// The swarm's configuration as built so far.
    pub fn swarm_config(&self) -> &SwarmConfig {
        &self.swarm
    }

    /// Replaces the whole swarm configuration (room included) with `config`: for the knobs
    /// without a builder of their own (`max_pending_candidates`, `max_queued_messages`,
    /// `sctp_message_size`, `signaling_silence_timeout`, ...). Channels and audio tracks
    /// declared before are replaced too: call it first, then
    /// [`add_channel`](FastRtcPlugin::add_channel).
    pub fn with_swarm_config(mut self, config: SwarmConfig) -> Self {
        self.swarm = config;
        self
    }

    /// Connects at startup to `url` (`ws://host:port/ws`) with `token`.
    pub fn with_signaling(mut self, url: impl Into<String>, token: impl Into<String>) -> Self {
        self.signaling = Some(Signaling::WebSocket {
            url: url.into(),
            token: token.into(),
        });
        self
    }

    /// Connects at startup with your own signaling transport ([`Signaling::External`]): pump
    /// frames between [`Swarm::handle`] and your server.
    pub fn with_external_signaling(mut self) -> Self {
        self.signaling = Some(Signaling::External);
        self
    }

    /// Runs the swarm on a backend of your own, e.g. [`BackendFactory::memory`] for tests that
    /// need no WebRTC and no sockets. The factory carries the clock the swarm's shell reads
    /// (a [`ManualClock`](fast_rtc_swarm::ManualClock) in tests).
    pub fn with_custom_backend(mut self, factory: BackendFactory) -> Self {
        self.backend = SwarmBackend::Custom(factory);
        self
    }

    /// Pre-made offers kept parked on the server (default 1).
    pub fn with_peer_buffer(mut self, n: usize) -> Self {
        self.swarm.peer_buffer = n;
        self
    }

    /// Adds a STUN or TURN server. Without any, the swarm uses the servers its signaling server
    /// hands out (`serve --stun-listen`, `--turn`); with any, only the application's are used
    /// (`fast_rtc_swarm_core::ice`).
    pub fn with_ice_server(mut self, server: IceServer) -> Self {
        self.swarm.ice_servers.push(server);
        self
    }

    /// Adds STUN and TURN servers (after any already added).
    pub fn with_ice_servers(mut self, servers: impl IntoIterator<Item = IceServer>) -> Self {
        self.swarm.ice_servers.extend(servers);
        self
    }

    /// Which ICE candidates may be used: [`IceTransportPolicy::Relay`] links only through the
    /// TURN servers (members never see each other's addresses); the default is `All`.
    pub fn with_ice_transport_policy(mut self, policy: IceTransportPolicy) -> Self {
        self.swarm.ice_transport_policy = policy;
        self
    }

    /// How long a handshake may take.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.swarm.handshake_timeout = timeout;
        self
    }

    /// The largest message a send accepts, and a peer may send (default 16 MiB; see
    /// [`SwarmConfig::max_message_size`]).
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.swarm.max_message_size = bytes;
        self
    }

    /// How often each open link is pinged to measure its round-trip time (zero: never).
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.swarm.ping_interval = interval;
        self
    }

    /// How the built-in signaling client retries, and when it gives up.
    pub fn with_reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.swarm.reconnect = policy;
        self
    }

    /// When the built-in signaling client asks for a fresh token
    /// ([`TokenRequested`](crate::TokenRequested)).
    pub fn with_token_policy(mut self, policy: TokenPolicy) -> Self {
        self.swarm.token = policy;
        self
    }

    /// The native backend's settings (use
    /// [`NativeConfig::loopback`](fast_rtc_swarm::NativeConfig::loopback) for same-machine play).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_native(mut self, native: fast_rtc_swarm::NativeConfig) -> Self {
        self.backend = SwarmBackend::Platform(native);
        self
    }

    /// This build's backend settings ([`NativeConfig`](fast_rtc_swarm::NativeConfig)
    /// natively: bind addresses, ICE pacing; `WebConfig` in the browser).
    pub fn with_backend(mut self, backend: BackendConfig) -> Self {
        self.backend = SwarmBackend::Platform(backend);
        self
    }

    /// Declares an audio track and returns its id ([`crate::voice`]; every member declares the
    /// same tracks in the same order).
    pub fn add_audio_track(&mut self, name: impl Into<String>) -> fast_rtc_swarm::TrackId {
        self.swarm.add_audio_track(name)
    }

    /// Adds a game channel and returns its id (pass it to
    /// [`add_swarm_message`](crate::AppSwarmExt::add_swarm_message)).
    pub fn add_channel(&mut self, channel: ChannelConfig) -> ChannelId {
        self.swarm.add_channel(channel)
    }
}

/// The plugin's systems, public so yours can be ordered around them.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum FastRtcSystems {
    /// `PreUpdate`: swarm events become messages, peer entities are spawned and despawned.
    Receive,
    /// `PreUpdate`, after `Receive`: typed channels are decoded into `FromPeer<T>`.
    Decode,
    /// `PostUpdate`: everything queued this frame is sent.
    Send,
}

impl Plugin for FastRtcPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Swarm::new(self.swarm.clone(), self.backend.clone()))
            .add_message::<PeerOpened>()
            .add_message::<PeerClosed>()
            .add_message::<PeerConnectionChanged>()
            .add_message::<PeerData>()
            .add_message::<SwarmError>()
            .add_message::<SignalingChanged>()
            .add_message::<TokenRequested>()
            .add_message::<PeerTrack>()
            .add_message::<PeerAudio>()
            .configure_sets(
                PreUpdate,
                (FastRtcSystems::Receive, FastRtcSystems::Decode).chain(),
            )
            .configure_sets(PostUpdate, FastRtcSystems::Send)
            .add_systems(PreUpdate, systems::receive.in_set(FastRtcSystems::Receive))
            .add_systems(
                PostUpdate,
                (systems::send, diagnostics::measure)
                    .chain()
                    .in_set(FastRtcSystems::Send),
            );
        diagnostics::register(app);
        #[cfg(target_arch = "wasm32")]
        app.add_systems(
            PostUpdate,
            crate::voice::browser_volume.in_set(FastRtcSystems::Send),
        );
        if let Some(signaling) = self.signaling.clone() {
            app.add_systems(
                Startup,
                move |mut swarm: ResMut<Swarm>, mut errors: MessageWriter<SwarmError>| {
                    if let Err(error) = swarm.connect_with(signaling.clone()) {
                        errors.write(SwarmError { peer: None, error });
                    }
                },
            );
        }
    }
}
