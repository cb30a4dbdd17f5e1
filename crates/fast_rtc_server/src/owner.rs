//! The single-process owner task: the only task that touches the [`Hub`], and the messages
//! between it and the socket tasks.
//!
//! The socket tasks of [`server`](crate::server) send [`Event`]s (a socket opened, a frame
//! arrived, a socket closed, a metrics or snapshot request) over one bounded channel; the owner
//! task applies each to the hub, then hands the hub's outputs to the sockets' queues as
//! [`Outbound`] frames. It makes no protocol decision of its own beyond dropping sockets that
//! cannot keep up. In cluster mode, [`cluster`](crate::cluster)'s node task takes its place and
//! speaks the same [`Event`]s and [`Outbound`]s. [`now`] is the server's only clock read.

use crate::hub::{ConnId, Hub, Identity, Output, RoomSnapshot, SocketCloseReason};
use crate::metrics::Metrics;
use crate::queue::{SocketTx, Weighed};
use fast_rtc_protocol::{RoomId, ServerMsg, UserId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

/// The server's one clock read; the [`Hub`] gets time only from here (through the owner task,
/// single-process or [cluster](crate::cluster)).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// The server's one wall-clock read: the expiry stamped into the TURN credentials it mints
/// ([`crate::ice`]).
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// Events from socket tasks (and the metrics route) to the owner task.
pub(crate) enum Event {
    Connected {
        conn: ConnId,
        identity: Identity,
        tx: SocketTx<Outbound>,
    },
    Text {
        conn: ConnId,
        text: axum::extract::ws::Utf8Bytes,
    },
    Binary {
        conn: ConnId,
        len: usize,
    },
    Disconnected {
        conn: ConnId,
        /// Lost (no pong, a write that failed or timed out) rather than ended (a close frame,
        /// the end of the stream, a read error): [`Hub::lost`] instead of
        /// [`Hub::disconnect`].
        abrupt: bool,
    },
    SyncMetrics(oneshot::Sender<()>),
    /// [`ServerHandle::room`](crate::ServerHandle::room).
    Snapshot {
        room: RoomId,
        reply: oneshot::Sender<Option<RoomSnapshot>>,
    },
    /// The admin API's kick ([`crate::admin`]): `revoke` is called with the kicked socket
    /// before its close is queued, so its token is refused before the client can reconnect.
    Kick {
        room: RoomId,
        user: UserId,
        reason: String,
        revoke: Box<dyn FnOnce(ConnId) + Send>,
        reply: oneshot::Sender<KickOutcome>,
    },
}

/// What became of a kick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KickOutcome {
    /// The member was removed and its socket is closing.
    Kicked,
    /// Nobody of that identity is in that room.
    NotInRoom,
    /// Cluster mode: not supported yet.
    Unsupported,
}

/// What the owner task queues for one socket.
pub(crate) enum Outbound {
    Msg(ServerMsg),
    Close(SocketCloseReason),
    /// Close with this code and reason (cluster mode: the room moved, or Redis is down).
    CloseWith(u16, &'static str),
}

impl Weighed for Outbound {
    /// A frame's encoded size; closing costs nothing.
    fn bytes(&self) -> usize {
        match self {
            Outbound::Msg(msg) => crate::hub::encoded_bytes(msg),
            Outbound::Close(_) | Outbound::CloseWith(..) => 0,
        }
    }
}

/// The only task that touches the hub: applies each event, then drains the hub's outputs.
pub(crate) async fn run(mut events: mpsc::Receiver<Event>, mut hub: Hub, metrics: Arc<Metrics>) {
    let mut sockets: HashMap<ConnId, SocketTx<Outbound>> = HashMap::new();
    // A wait for an offer ends at most a tenth of its limit late (0.5 s of 5 s by default).
    let tick = (hub.limits().max_offer_wait / 10).max(Duration::from_millis(10));
    let mut timeouts = tokio::time::interval(tick);
    timeouts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The next event, or the tick that ends overdue waits for offers. Checked on a tick,
        // not after every event: finding the hub's next deadline scans every waiting list.
        let event = tokio::select! {
            event = events.recv() => event,
            _ = timeouts.tick() => {
                let now = now();
                hub.handle_timeout(now);
                drain(&mut hub, &mut sockets, &metrics, now);
                continue;
            }
        };
        let now = now();
        let Some(event) = event else {
            return; // every sender is gone: the server is shutting down
        };
        match event {
            Event::Connected { conn, identity, tx } => {
                sockets.insert(conn, tx);
                hub.connect(now, conn, identity);
            }
            Event::Text { conn, text } => hub.handle_text(now, conn, text.as_str()),
            Event::Binary { conn, len } => hub.handle_binary(now, conn, len),
            Event::Disconnected { conn, abrupt } => {
                sockets.remove(&conn);
                if abrupt {
                    hub.lost(now, conn);
                } else {
                    hub.disconnect(now, conn);
                }
            }
            Event::SyncMetrics(done) => {
                metrics.sync(&hub);
                let _ = done.send(());
            }
            Event::Snapshot { room, reply } => {
                let _ = reply.send(hub.room(&room));
            }
            Event::Kick {
                room,
                user,
                reason,
                revoke,
                reply,
            } => {
                let outcome = match hub.kick(now, &room, &user, &reason) {
                    Some(conn) => {
                        revoke(conn);
                        KickOutcome::Kicked
                    }
                    None => KickOutcome::NotInRoom,
                };
                let _ = reply.send(outcome);
            }
        }
        drain(&mut hub, &mut sockets, &metrics, now);
    }
}

/// Hands everything the hub produced to the sockets' queues.
fn drain(
    hub: &mut Hub,
    sockets: &mut HashMap<ConnId, SocketTx<Outbound>>,
    metrics: &Metrics,
    now: Instant,
) {
    while let Some(output) = hub.poll() {
        match output {
            Output::Send { to, msg } => {
                let Some(tx) = sockets.get(&to) else { continue };
                if let Err(e) = tx.try_send(Outbound::Msg(msg)) {
                    // Full (the client does not read) or closed (its task is ending): either
                    // way the socket goes, and its member leaves the room.
                    if matches!(e, mpsc::error::TrySendError::Full(_)) {
                        warn!(conn = to.0, "outbound queue full: dropping the socket");
                        metrics.drop_socket("slow_consumer");
                    }
                    sockets.remove(&to);
                    hub.disconnect(now, to);
                }
            }
            Output::Close { conn, reason } => {
                if let Some(tx) = sockets.remove(&conn) {
                    let _ = tx.try_send(Outbound::Close(reason));
                }
            }
        }
    }
}

/// A resume token ([`Hub::enable_resumption`]): 128 random bits from rand's thread generator
/// (a CSPRNG seeded by the OS), as hex.
pub(crate) fn random_resume_token() -> fast_rtc_protocol::ResumeToken {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    fast_rtc_protocol::ResumeToken::new(hex)
}
