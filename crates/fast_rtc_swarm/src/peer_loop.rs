//! The peer loop: feeds what the backend reports about its connections, and the core's
//! timeouts, into the [`SwarmCore`](fast_rtc_swarm_core::SwarmCore) until the swarm is closed.
//! It runs beside the signaling loop ([`crate::websocket`]) in the driver future, and decides
//! nothing.

use crate::backend::EventReceiver;
use crate::shared::{MAX_PENDING_EVENTS, Shared};
use fast_rtc_protocol::ConnectionId;
use fast_rtc_swarm_core::PeerEvent;
use futures_lite::future;
use std::sync::Arc;

/// Feeds backend events and timeouts into the swarm until it is closed. Runs beside the
/// signaling loop in the driver future.
pub(crate) async fn peer_loop(shared: Arc<Shared>, events: EventReceiver) {
    loop {
        let listener = shared.changed.listen();
        let (deadline, room, closed) = {
            let inner = shared.lock();
            (
                inner.swarm.poll_timeout(),
                inner.events.len() < MAX_PENDING_EVENTS,
                inner.swarm.is_closed(),
            )
        };
        if closed {
            return;
        }
        // A due deadline first: `future::or` below prefers peer events, which under a steady
        // stream of them would otherwise starve timeouts and pings.
        if deadline.is_some_and(|at| at <= shared.clock.now()) {
            shared.with_swarm(|s, now| s.handle_timeout(now));
            continue;
        }
        enum DriverWake {
            Peer(Option<(ConnectionId, PeerEvent)>),
            Timer,
            Changed,
        }
        let peer = async {
            if room {
                DriverWake::Peer(events.recv().await.ok())
            } else {
                future::pending().await
            }
        };
        let timer = async {
            match deadline {
                Some(at) => {
                    shared.clock.sleep_until(at).await;
                    DriverWake::Timer
                }
                None => future::pending().await,
            }
        };
        let changed = async {
            listener.await;
            DriverWake::Changed
        };
        match future::or(peer, future::or(timer, changed)).await {
            DriverWake::Peer(Some((id, ev))) => {
                shared.with_swarm(|s, now| s.handle_peer(now, &id, ev))
            }
            DriverWake::Peer(None) => return,
            DriverWake::Timer => shared.with_swarm(|s, now| s.handle_timeout(now)),
            DriverWake::Changed => {}
        }
    }
}
