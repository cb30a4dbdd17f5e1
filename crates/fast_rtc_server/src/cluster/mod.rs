//! Cluster mode: one room served by several server instances that share a Redis (or Valkey).
//!
//! Off by default; [`crate::ServerConfig::cluster`] (`fast-rtc-server serve --redis URL`) turns
//! it on. Without it the server is one process holding every room, as before.
//!
//! # Design
//!
//! **One owner per room.** The room's [`Hub`](crate::Hub) runs on exactly one instance at a time,
//! its *owner*, so a room is still one state machine that handles one input at a time: joins are
//! serialized and every pair of members gets exactly one link, as in single-process mode. The
//! owner is whoever holds the room's lease, the Redis key [`wire::owner_key`] holding the
//! owner's instance id (random per process). The first instance that routes a join into a room
//! nobody owns takes it (`GET`, else `SET … PX lease`, in one Lua script, [`lease`]). The owner
//! renews its leases every third of the lease time ([`ClusterConfig::lease`], 5 s by default)
//! with a compare-and-extend script, and releases a room that stayed empty for a lease time.
//! The same scripts keep a sorted set of the leased rooms ([`wire::rooms_key`]), which gives
//! `/metrics` its cluster-wide room count (`fast_rtc_cluster_rooms`).
//!
//! **Routing.** Every instance runs a [`router::Router`] for its own sockets: a pure state
//! machine that knows which room each socket is joining or in and holds the frames a socket sends
//! before its `init` and while its join is answered. Frames go to the owner of the socket's room:
//! straight into the local hub when that is this instance, else published as
//! [`wire::Envelope`]s on the owner's Redis pub/sub channel ([`wire::instance_channel`], one per
//! instance). The owner's hub numbers remote sockets like local ones; its outputs go back to the
//! member's instance on that instance's channel, which hands them to the socket. Redis keeps the
//! order of the messages one connection publishes to one channel, and each instance publishes
//! over one connection, so each socket's frames stay in order both ways ([`bus`]).
//!
//! **Losing an owner.** An owner that dies (`kill -9`, a crash, a partition) stops renewing;
//! its leases expire after at most the lease time. Every instance checks, on the same tick, that
//! the rooms its sockets are in still have the owner it routed them to. When the owner changed
//! or is gone, it closes those sockets with close code 1012 ("service restart"). Clients
//! reconnect (the Rust swarm does so by itself, with backoff), `init` again, and the join takes
//! the room afresh on some instance. This is the same path as a restart of a single server: the
//! members keep their peer-to-peer links, and the Rust swarm replaces each old link with the one
//! of the new session quietly, so every pair ends with exactly one link. Nothing of a room's
//! state is kept in Redis: the hub's state is soft (parked offers and waiting lists), and the
//! members rebuild it by joining again.
//!
//! **Safety of the lease.** An owner that cannot renew (Redis unreachable) gives a room up once
//! two thirds of the lease time have passed since its last renewal, before the lease can
//! expire, so two instances never run one room's hub at once (assuming clocks that run at the
//! same rate). A frame that reaches an instance that no longer owns the room is answered with a
//! reroute, which closes the socket the same way.
//!
//! **Losing Redis.** Pub/sub delivers at most once: what was published while a connection was
//! down is lost. So any loss of the connection (the subscription ends, a publish or lease
//! command fails) drops every room the instance owns or routes to, with their sockets closed
//! (1012) as above, and the [`bus`] reconnects with backoff. While Redis is unreachable a join
//! cannot be routed: its socket is closed with 1013 ("try again later"), and the client retries.
//! Sockets keep their authentication and ping handling throughout; only rooms need Redis.
//!
//! # Layout
//!
//! - [`wire`]: the envelopes between instances and the Redis names;
//! - [`router`]: the pure routing state machine of one instance's sockets;
//! - [`lease`]: taking, renewing, releasing and reading room leases;
//! - [`bus`]: the Redis connection task (subscription, publishing, reconnecting);
//! - `node`: the task that ties them to the hub (the cluster counterpart of the single-process
//!   owner task in `owner.rs`, with the same events in and frames out);
//! - [`error`]: the errors, [`ClusterError`].

pub mod bus;
pub mod error;
pub mod lease;
pub(crate) mod node;
pub mod router;
pub mod wire;

pub use error::ClusterError;

use std::time::Duration;

/// How an instance joins a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The Redis (or Valkey) URL, e.g. `redis://127.0.0.1:6379/0`.
    pub redis_url: String,
    /// How long a room's lease lasts without renewal: the longest a room stays unusable after
    /// its owner dies. Renewed every third of it.
    pub lease: Duration,
    /// How long any Redis command may take before it counts as failed.
    pub redis_timeout: Duration,
}

impl ClusterConfig {
    /// A cluster over `redis_url` with a 5 s lease and a 1 s command timeout.
    pub fn new(redis_url: impl Into<String>) -> Self {
        ClusterConfig {
            redis_url: redis_url.into(),
            lease: Duration::from_secs(5),
            redis_timeout: Duration::from_secs(1),
        }
    }

    /// The Redis client for the URL (no connection is made yet).
    pub fn client(&self) -> Result<redis::Client, ClusterError> {
        redis::Client::open(self.redis_url.as_str()).map_err(|source| ClusterError::Url {
            url: self.redis_url.clone(),
            source,
        })
    }
}
