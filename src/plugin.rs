//! The plugin, its resource, component and systems.

use crate::diagnostics::{self, FastRtcDiagnostics};
use crate::messages::{FastRtcError, PeerClosed, PeerData, PeerOpened, SwarmError};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy::tasks::{IoTaskPool, TaskPool};
use fast_rtc_protocol::{ConnectionId, RoomId, UserId};
use fast_rtc_swarm::{
    BackendConfig, ChannelConfig, ChannelId, IceServer, IceState, Payload, SendError, Signaling,
    SwarmConfig, SwarmEvent, SwarmHandle, start,
};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Swarm events turned into messages per frame at most; the rest wait for the next frame (the
/// swarm pushes back on peers meanwhile).
pub const MAX_EVENTS_PER_FRAME: usize = 8192;
/// Messages queued for sending in one frame at most; past it, sends are refused with a
/// [`SwarmError`] message.
pub const MAX_OUTBOX: usize = 8192;

/// Adds a fast-rtc swarm to the app.
///
/// Build it with [`FastRtcPlugin::new`] and the `with_*` methods. Without
/// [`with_signaling`](FastRtcPlugin::with_signaling), nothing connects until
/// [`Swarm::connect`] is called (from a menu, say).
#[derive(Clone, Debug)]
pub struct FastRtcPlugin {
    /// The swarm's configuration (room, peer buffer, ICE servers, channels, timeouts).
    pub swarm: SwarmConfig,
    /// The backend's settings: [`NativeConfig`](fast_rtc_swarm::NativeConfig) natively (bind
    /// addresses, ICE pacing), [`WebConfig`](fast_rtc_swarm::BackendConfig) in the browser.
    pub backend: BackendConfig,
    /// Connect at startup to this URL with this token.
    pub signaling: Option<(String, String)>,
}

impl FastRtcPlugin {
    /// A plugin for `room` with the defaults of [`SwarmConfig::new`] and [`BackendConfig`].
    pub fn new(room: impl Into<RoomId>) -> Self {
        FastRtcPlugin {
            swarm: SwarmConfig::new(room),
            backend: BackendConfig::default(),
            signaling: None,
        }
    }

    /// Connects at startup to `url` (`ws://host:port/ws`) with `token`.
    pub fn with_signaling(mut self, url: impl Into<String>, token: impl Into<String>) -> Self {
        self.signaling = Some((url.into(), token.into()));
        self
    }

    /// Pre-made offers kept parked on the server (default 1).
    pub fn with_peer_buffer(mut self, n: usize) -> Self {
        self.swarm.peer_buffer = n;
        self
    }

    /// Adds a STUN or TURN server.
    pub fn with_ice_server(mut self, server: IceServer) -> Self {
        self.swarm.ice_servers.push(server);
        self
    }

    /// How long a handshake may take.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.swarm.handshake_timeout = timeout;
        self
    }

    /// The native backend's settings (use
    /// [`NativeConfig::loopback`](fast_rtc_swarm::NativeConfig::loopback) for same-machine play).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_native(mut self, native: fast_rtc_swarm::NativeConfig) -> Self {
        self.backend = native;
        self
    }

    /// This build's backend settings (see [`FastRtcPlugin::backend`]).
    pub fn with_backend(mut self, backend: BackendConfig) -> Self {
        self.backend = backend;
        self
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

/// The signaling connection's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignalingState {
    /// Not started, or closed.
    #[default]
    Disconnected,
    /// Connecting (or reconnecting; live peer links stay up meanwhile).
    Connecting,
    /// Joined.
    Connected,
}

/// A remote member with an open link. Spawned on open, despawned on close: attach your own
/// components (an avatar, a score) to it.
#[derive(Component, Debug, Clone)]
pub struct Peer {
    /// The remote member's identity.
    pub user_id: UserId,
    /// The connection id of the link.
    pub connection_id: ConnectionId,
    /// ICE connection state of the link.
    pub ice_state: IceState,
    /// Round-trip time of the link, measured every second by the swarm's ping on `fast` (`None`
    /// until the first pong, and for JS peers, which do not answer pings).
    pub rtt: Option<Duration>,
    /// Bytes received from this peer.
    pub bytes_in: u64,
    /// Bytes sent to this peer.
    pub bytes_out: u64,
}

/// One queued send.
pub(crate) struct Outgoing {
    pub(crate) to: Option<UserId>,
    pub(crate) channel: ChannelId,
    pub(crate) payload: Payload,
}

/// The swarm, as a resource.
#[derive(Resource)]
pub struct Swarm {
    config: SwarmConfig,
    backend: BackendConfig,
    handle: Option<SwarmHandle>,
    identity: Option<UserId>,
    state: SignalingState,
    peers: HashMap<UserId, Entity>,
    pub(crate) outbox: VecDeque<Outgoing>,
    /// Swarms replaced by a new `connect`: their peers' `Close` events are still to be read.
    retired: Vec<SwarmHandle>,
}

impl Swarm {
    fn new(config: SwarmConfig, backend: BackendConfig) -> Self {
        Swarm {
            config,
            backend,
            handle: None,
            identity: None,
            state: SignalingState::Disconnected,
            peers: HashMap::new(),
            outbox: VecDeque::new(),
            retired: Vec::new(),
        }
    }

    /// Joins the room through the signaling server at `url` with `token`. The swarm runs on
    /// Bevy's IO task pool. A swarm already running is closed first.
    pub fn connect(
        &mut self,
        url: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<(), FastRtcError> {
        self.disconnect();
        // The old swarm's peers get their PeerClosed (and despawn) in the next receive pass.
        self.retired.extend(self.handle.take());
        let token = token.into();
        self.identity = token_subject(&token);
        let signaling = Signaling::WebSocket {
            url: url.into(),
            token,
        };
        let (handle, driver) = start(self.config.clone(), self.backend.clone(), signaling)
            .map_err(|e| FastRtcError::Start(e.to_string()))?;
        // get_or_init: an app without TaskPoolPlugin gets a pool instead of a panic.
        IoTaskPool::get_or_init(TaskPool::new)
            .spawn(driver)
            .detach();
        self.handle = Some(handle);
        self.state = SignalingState::Connecting;
        Ok(())
    }

    /// Leaves the room: every peer is told and every link closed. Their `PeerClosed` messages
    /// arrive over the next frames.
    pub fn disconnect(&mut self) {
        if let Some(h) = &self.handle {
            h.close();
        }
        self.state = SignalingState::Disconnected;
    }

    /// The signaling connection's state.
    pub fn state(&self) -> SignalingState {
        self.state
    }

    /// This member's identity (the subject of its token), once connecting.
    pub fn identity(&self) -> Option<&UserId> {
        self.identity.as_ref()
    }

    /// The room.
    pub fn room(&self) -> &RoomId {
        &self.config.room_id
    }

    /// Connected peers and their entities.
    pub fn peers(&self) -> impl Iterator<Item = (&UserId, Entity)> {
        self.peers.iter().map(|(u, e)| (u, *e))
    }

    /// How many peers are connected.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The entity of `peer`, if connected.
    pub fn peer_entity(&self, peer: &UserId) -> Option<Entity> {
        self.peers.get(peer).copied()
    }

    /// The running swarm, for direct use.
    pub fn handle(&self) -> Option<&SwarmHandle> {
        self.handle.as_ref()
    }

    /// Queues raw bytes (or text) for `peer` (`None`: every peer) on `channel`, sent in
    /// [`FastRtcSystems::Send`].
    pub fn queue(
        &mut self,
        to: Option<UserId>,
        channel: ChannelId,
        payload: Payload,
    ) -> Result<(), SendError> {
        if self.outbox.len() >= MAX_OUTBOX {
            return Err(SendError::Full);
        }
        self.outbox.push_back(Outgoing {
            to,
            channel,
            payload,
        });
        Ok(())
    }
}

/// The `sub` claim of a JWT, read without verifying it (the server verifies): the identity a
/// member will have in the room, for display and for telling one's own messages apart. `None`
/// if `token` is not a JWT with a string `sub`.
pub fn token_subject(token: &str) -> Option<UserId> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(UserId::from)
}

impl Plugin for FastRtcPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Swarm::new(self.swarm.clone(), self.backend.clone()))
            .add_message::<PeerOpened>()
            .add_message::<PeerClosed>()
            .add_message::<PeerData>()
            .add_message::<SwarmError>()
            .configure_sets(
                PreUpdate,
                (FastRtcSystems::Receive, FastRtcSystems::Decode).chain(),
            )
            .configure_sets(PostUpdate, FastRtcSystems::Send)
            .add_systems(PreUpdate, receive.in_set(FastRtcSystems::Receive))
            .add_systems(
                PostUpdate,
                (send, diagnostics::measure)
                    .chain()
                    .in_set(FastRtcSystems::Send),
            );
        diagnostics::register(app);
        if let Some((url, token)) = self.signaling.clone() {
            app.add_systems(
                Startup,
                move |mut swarm: ResMut<Swarm>, mut errors: MessageWriter<SwarmError>| {
                    if let Err(error) = swarm.connect(url.clone(), token.clone()) {
                        errors.write(SwarmError { peer: None, error });
                    }
                },
            );
        }
    }
}

#[derive(SystemParam)]
struct Writers<'w> {
    opened: MessageWriter<'w, PeerOpened>,
    closed: MessageWriter<'w, PeerClosed>,
    data: MessageWriter<'w, PeerData>,
    errors: MessageWriter<'w, SwarmError>,
}

/// Turns swarm events into messages and peer entities.
fn receive(
    mut commands: Commands,
    mut swarm: ResMut<Swarm>,
    mut peers: Query<&mut Peer>,
    mut out: Writers,
    mut stats: ResMut<FastRtcDiagnostics>,
) {
    // A swarm replaced by `connect` was closed: its events are all queued already. Only its
    // closes matter (despawn the entities of its peers).
    let retired: Vec<SwarmEvent> = std::mem::take(&mut swarm.retired)
        .iter()
        .flat_map(|h| std::iter::from_fn(move || h.try_recv()))
        .filter(|e| matches!(e, SwarmEvent::Close { .. }))
        .collect();
    let current = swarm.handle.clone();
    if let Some(handle) = &current {
        swarm.state = if handle.is_closed() {
            SignalingState::Disconnected
        } else if handle.signaling_connected() {
            SignalingState::Connected
        } else {
            SignalingState::Connecting
        };
    }
    let mut retired = retired.into_iter();
    for _ in 0..MAX_EVENTS_PER_FRAME {
        let Some(event) = retired
            .next()
            .or_else(|| current.as_ref().and_then(|h| h.try_recv()))
        else {
            break;
        };
        match event {
            SwarmEvent::Open(info) => {
                let entity = commands
                    .spawn(Peer {
                        user_id: info.user_id.clone(),
                        connection_id: info.id.clone(),
                        ice_state: IceState::Connected,
                        rtt: None,
                        bytes_in: 0,
                        bytes_out: 0,
                    })
                    .id();
                swarm.peers.insert(info.user_id.clone(), entity);
                out.opened.write(PeerOpened {
                    peer: info.user_id,
                    entity,
                    connection_id: info.id,
                });
            }
            SwarmEvent::Close { peer, reason } => {
                if let Some(entity) = swarm.peers.remove(&peer.user_id) {
                    commands.entity(entity).despawn();
                    out.closed.write(PeerClosed {
                        peer: peer.user_id,
                        entity,
                        reason,
                    });
                }
            }
            SwarmEvent::Data {
                from,
                channel,
                payload,
                ..
            } => {
                let entity = swarm.peers.get(&from).copied();
                stats.bytes_in += payload.len() as u64;
                if let Some(mut p) = entity.and_then(|e| peers.get_mut(e).ok()) {
                    p.bytes_in += payload.len() as u64;
                }
                out.data.write(PeerData {
                    peer: from,
                    entity,
                    channel,
                    payload,
                });
            }
            SwarmEvent::Rtt { user_id, rtt, .. } => {
                if let Some(mut p) = swarm
                    .peers
                    .get(&user_id)
                    .and_then(|e| peers.get_mut(*e).ok())
                {
                    p.rtt = Some(rtt);
                }
            }
            SwarmEvent::Connection { user_id, state, .. } => {
                let entity = user_id.as_ref().and_then(|u| swarm.peers.get(u).copied());
                if let Some(mut p) = entity.and_then(|e| peers.get_mut(e).ok()) {
                    p.ice_state = state;
                }
            }
            SwarmEvent::Error(error) => {
                out.errors.write(SwarmError {
                    peer: None,
                    error: error.into(),
                });
            }
        }
    }
}

/// Sends what was queued this frame.
fn send(
    mut swarm: ResMut<Swarm>,
    mut peers: Query<&mut Peer>,
    mut errors: MessageWriter<SwarmError>,
    mut stats: ResMut<FastRtcDiagnostics>,
) {
    let Some(handle) = swarm.handle.clone() else {
        swarm.outbox.clear();
        return;
    };
    let outbox = std::mem::take(&mut swarm.outbox);
    for Outgoing {
        to,
        channel,
        payload,
    } in outbox
    {
        let targets: Vec<(UserId, Entity)> = match to {
            Some(peer) => match swarm.peers.get(&peer) {
                Some(e) => vec![(peer, *e)],
                None => {
                    errors.write(SwarmError {
                        peer: Some(peer.clone()),
                        error: SendError::NoSuchPeer(peer).into(),
                    });
                    continue;
                }
            },
            None => swarm.peers.iter().map(|(u, e)| (u.clone(), *e)).collect(),
        };
        for (peer, entity) in targets {
            let len = payload.len() as u64;
            match handle.send(&peer, channel, payload.clone()) {
                Ok(()) => {
                    stats.bytes_out += len;
                    if let Ok(mut p) = peers.get_mut(entity) {
                        p.bytes_out += len;
                    }
                }
                // An unreliable channel that is not open yet: game state is resent next tick.
                Err(SendError::NotOpen(_)) => {}
                Err(e) => {
                    errors.write(SwarmError {
                        peer: Some(peer),
                        error: e.into(),
                    });
                }
            }
        }
    }
}
