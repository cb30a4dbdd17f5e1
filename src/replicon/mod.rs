//! Replication with [bevy_replicon](https://docs.rs/bevy_replicon/0.44) over the swarm
//! (feature `replicon`; bevy_replicon 0.44, the newest line on Bevy 0.19): a messaging
//! backend that makes the mesh a listen server. One member, the **host**, runs replicon's
//! server and simulates; every other member runs replicon's client, connected over its link
//! to the host.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use bevy::state::app::StatesPlugin;
//! use bevy_fast_rtc::prelude::*;
//! use bevy_fast_rtc::replicon::{FastRtcRepliconPlugin, ReplicationHost};
//! use bevy_replicon::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Component, Serialize, Deserialize)]
//! struct Score(u32);
//!
//! App::new()
//!     .add_plugins((MinimalPlugins, StatesPlugin))
//!     .add_plugins(FastRtcPlugin::new("lobby").with_signaling("ws://127.0.0.1:8787/ws", "TOKEN"))
//!     .add_plugins((RepliconPlugins, FastRtcRepliconPlugin::default()))
//!     .replicate::<Score>()
//!     .add_systems(Update, |host: Res<ReplicationHost>, mut commands: Commands, mut done: Local<bool>| {
//!         // Only the host spawns replicated entities; the clients receive them.
//!         if host.is_host() && !*done {
//!             commands.spawn((Replicated, Score(0)));
//!             *done = true;
//!         }
//!     })
//!     .run();
//! ```
//!
//! # The host
//!
//! Every member picks the host the same way, from what its swarm already knows, with no
//! message of its own ([`HostRule`]): by default the smallest identity among itself and its
//! open peers ([`HostRule::LowestId`]); in a full mesh every member sees the same set. A member
//! decides only once it has been in the room for [`ReplicationHost::settle`] (1.5 s by default),
//! so the links of its join have opened; until then it has no host. An app that knows better
//! (a lobby's creator) sets [`HostRule::Fixed`] on every member.
//!
//! Limits of `LowestId`: a member that joins later with a smaller identity becomes the host
//! (a migration to a member that holds only what it received so far: see below). Give
//! identities that sort by arrival (or use `Fixed`) when members join a running game. The rule
//! assumes a full mesh: a member that lost its link to the host while the others kept theirs
//! (a partial partition, a [`Swarm::kick`](crate::Swarm::kick)) picks another host and stays
//! unserved until the mesh is whole again. Read [`ReplicationHost`] (`is_host`) and the
//! [`HostChanged`] message to know who simulates.
//!
//! # Host migration
//!
//! When the host leaves (or its link closes), every survivor picks the next host by the same
//! rule, and the match goes on:
//!
//! - each survivor signs every replicated entity it holds with the old host's entity id for
//!   it (replicon's `Signature`, a hash every survivor computes alike); the next host's
//!   server sends the signatures with its first replication, so each client maps the new
//!   host's entities onto the ones it already has: the same entities, their components
//!   overwritten with the new host's last values, no despawn, no respawn, no duplicate;
//! - the new host makes what it received `Replicated` and runs replicon's server; the others
//!   reconnect their replicon client to it (`ClientState` goes `Disconnected` for one frame);
//! - a client despawns, after the new host's first replication, the carried-over entities the
//!   new host did not have (the old host's last spawns that reached some members only);
//! - [`HostChanged`] `{ old, new, is_host }` tells the game, which rebuilds its server-only
//!   state on the new host.
//!
//! What a game must make replicable to survive a migration: everything the next host needs to
//! simulate on (components registered with `replicate`); resources, server-only components,
//! timers and the old host's pending events are not carried over, and neither are entities
//! replicated to some clients only (visibility). Changes the old host made in its last moments
//! and did not get to the new host are lost (the new host's values win everywhere). The
//! replicon tick restarts on the new host. Measured on loopback (`tests/replicon.rs`, 3
//! members, 10 runs): the new host serves its client 25 to 56 ms after the old one leaves the
//! room (median 31 ms), and its first change reaches the client 10 to 40 ms later (median
//! 18 ms). A host whose process dies without leaving is noticed when
//! its links close (ICE failure, then the swarm's `restore_timeout`, 20 s by default).
//!
//! # The backend contract, as carried out here
//!
//! - **Channels**: three swarm channels are declared at build
//!   ([`SwarmChannels`]): replicon's `Ordered` on a reliable ordered channel, `Unordered` on a
//!   second reliable one (the swarm has no reliable unordered delivery: its large messages are
//!   split into parts that must arrive in order), `Unreliable` on an unreliable one. Each
//!   message carries a one-byte header: its direction and replicon's channel id (at most 128
//!   channels each way); so no message is empty. Every member must add the plugins in the
//!   same order (the swarm's channels are matched by position).
//! - **Messages**: frames read from [`PeerData`](crate::PeerData) go into `ServerMessages`
//!   (host, from a client) or `ClientMessages` (client, from its host) in
//!   [`FastRtcRepliconSystems::Receive`] (in replicon's `ReceivePackets` sets); sent messages
//!   are queued on the swarm in [`FastRtcRepliconSystems::Send`] (in `SendPackets`), and go
//!   out in the same frame. Frames from anyone else are dropped.
//! - **Clients**: on the host, one entity per open peer with `ConnectedClient`, a
//!   [`NetworkId`](bevy_replicon::shared::backend::connected_client::NetworkId) derived from
//!   the identity ([`network_id`]) and [`SwarmClient`] naming the peer. It is a separate entity
//!   from the peer's [`Peer`](crate::Peer) entity because replicon despawns its clients when
//!   the server stops.
//! - **States**: `ServerState::Running` on the host, `Stopped` elsewhere;
//!   `ClientState::Connected` on the others while their host is linked, through
//!   `Disconnected` for a frame when the host changes.
//! - **`DisconnectRequest`**: after the frame's sends, the peer's link is closed
//!   ([`Swarm::kick`](crate::Swarm::kick)) and its client entity despawned.
//! - **Stats**: `ClientStats` / `ConnectedClientStats` from the peer's RTT (the swarm's ping)
//!   and its byte counters (rates over one-second windows); packet loss is not measured.
//!
//! The files: `host.rs` ([`HostRule`], pure), `wire.rs` (the header, pure), `role.rs` (the
//! host, replicon's states and migration), `clients.rs` (client entities, stats,
//! disconnects), `transport.rs` (messages in and out; client messages that reach a member
//! before it takes the host's role are held, [`MAX_EARLY_MESSAGES`] per peer, and delivered
//! once it does), `plugin.rs` ([`FastRtcRepliconPlugin`]).

mod clients;
mod host;
mod plugin;
mod role;
mod transport;
mod wire;

pub use clients::{SwarmClient, UNRELIABLE_PACKET_SIZE, network_id};
pub use host::HostRule;
pub use plugin::{FastRtcRepliconPlugin, FastRtcRepliconSystems};
pub use role::{DEFAULT_SETTLE, HostChanged, ReplicationHost};
pub use transport::{MAX_EARLY_MESSAGES, SwarmChannels};
pub use wire::MAX_CHANNELS;

/// The bevy_replicon this backend is built for (use it to keep the versions in step).
pub use bevy_replicon;
