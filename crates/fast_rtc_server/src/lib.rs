//! The fast-rtc signaling server.
//!
//! Members of a fast-rtc swarm meet through this server. It keeps each member's pre-made offers
//! ("chunks") and hands one from every member to a joiner in a single round trip
//! (the "pay-it-forward" protocol; `docs/protocol.md` in the repository describes it).
//!
//! The crate has two layers, the pure state machine and the async shell around it, plus optional
//! scale-out:
//!
//! - [`hub`]: the pure state machine. Every socket and every room, frames in → frames out, time
//!   passed in, no IO. Use it directly to embed the protocol in another transport or to test.
//! - [`server`]: a thin axum/tokio shell: authenticated WebSocket endpoint, ping/pong, bounded
//!   queues, `/healthz`, `/metrics`, graceful shutdown, and optional TLS ([`tls`]: `wss://`
//!   without a proxy).
//! - [`cluster`]: optional scale-out. Several instances share rooms over Redis (Valkey); each
//!   room's hub runs on one owner instance, elected with a lease.
//!
//! # Module map
//!
//! Imports go one way, down this list's arrows; no file imports back from a file that imports it.
//!
//! - `main.rs`: the `fast-rtc-server` binary (`serve`, `token`), on the public API only.
//! - [`server`]: routes and socket tasks → [`admin`], `accept`, `owner` (single process) or
//!   `cluster::node` (cluster), [`auth`], [`admission`], [`tls`], [`metrics`], [`hub`],
//!   [`limits`], [`ice`], [`stun`], [`ClusterConfig`].
//! - [`admin`]: the admin API's routes (a second listener) → `owner`'s events, [`auth`]'s
//!   secret, [`metrics`].
//! - `accept`: the accept loop, every connection until its WebSocket upgrade (TLS handshake and
//!   header deadlines, the pre-authentication cap) → [`admission`], [`tls`], [`metrics`],
//!   [`limits`].
//! - `owner`: the single-process owner task, the only task that touches the [`Hub`]; the
//!   `Event`s socket tasks send it, the `Outbound` frames it queues for them, and `now()`, the
//!   server's one clock read. Used by [`server`] and by `cluster::node` alike → `queue`,
//!   [`hub`], [`metrics`].
//! - `queue`: the queue from the owner task to one socket task, bounded in frames and bytes.
//! - [`cluster`]: `node` (the cluster owner task → `owner`'s events, [`cluster::router`],
//!   [`cluster::bus`], [`cluster::lease`]), [`cluster::wire`], [`cluster::error`].
//! - [`ice`]: the STUN/TURN servers handed to each member, TURN credentials minted for it.
//! - [`stun`]: the built-in STUN server (UDP) → [`metrics`].
//! - [`auth`]: who may connect ([`Authenticator`], JWTs) → [`hub`]'s identity types.
//! - [`metrics`]: the Prometheus registry → [`hub`]'s statistics.
//! - [`tls`]: the TLS listener.
//! - [`hub`]: the room state machine → [`limits`].
//! - [`admission`]: pure bookkeeping of pending connections and sockets per identity and per
//!   source.
//! - [`limits`]: the protocol limits.
//!
//! Authentication is always on: the shell admits a socket only with a token its
//! [`Authenticator`] accepts. The built-in [`JwtAuthenticator`] verifies HS256 JWTs whose `sub` is
//! the member's identity and whose `room` is the room granted (`*` for any).
//!
//! ```no_run
//! use fast_rtc_server::{JwtAuthenticator, Secret, Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::new(std::env::var("FAST_RTC_SECRET")?)?;
//! let server = Server::new(ServerConfig::default(), JwtAuthenticator::new(&secret));
//! let handle = server.spawn("127.0.0.1:8787".parse()?).await?;
//! println!("signaling at {}", handle.ws_url());
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod accept;
pub mod admin;
pub mod admission;
pub mod auth;
pub mod cluster;
pub mod hub;
pub mod ice;
pub mod limits;
pub mod metrics;
mod owner;
mod queue;
pub mod server;
pub mod stun;
pub mod tls;

pub use admin::AdminConfig;
pub use auth::{
    AuthError, Authenticator, Claims, JwtAuthenticator, Secret, SecretError, TokenIssuer,
};
pub use cluster::{ClusterConfig, ClusterError};
pub use hub::{ConnId, Hub, Identity, MemberSnapshot, Output, RoomGrant, RoomSnapshot};
pub use ice::{IceConfig, IceConfigError, StunAdvertise, StunListen, TurnConfig, TurnSecret};
pub use limits::{ConnectionLimits, Limits};
pub use server::{CLOSE_KICKED, Server, ServerConfig, ServerHandle};
pub use tls::{TlsConfig, TlsError};
