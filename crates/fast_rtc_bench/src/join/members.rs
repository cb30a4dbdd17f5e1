//! Members of either library, for the join rows and the child scenarios.

use super::servers::GIVE_UP;
use crate::util::{issuer, token};
use fast_rtc_protocol::ConnectionId;
use fast_rtc_swarm::{NativeConfig, Signaling, SwarmConfig, SwarmEvent, SwarmHandle, start};
use matchbox_socket::{PeerState, WebRtcSocket};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// webrtc-rs's settings: every address in the namespace, loopback outside it.
pub fn native(in_netns: bool) -> NativeConfig {
    if in_netns {
        NativeConfig::default()
    } else {
        NativeConfig::loopback()
    }
}

/// A member of ours in `room`, signaling through `base`.
pub fn our_member(
    base: &str,
    user: &str,
    room: &str,
    config: SwarmConfig,
    native: NativeConfig,
) -> SwarmHandle {
    our_member_task(base, user, room, config, native).0
}

/// [`our_member`] and its driver's task, which ends once the swarm is closed and has told the
/// server (for members that leave and must know when they are gone).
pub fn our_member_task(
    base: &str,
    user: &str,
    room: &str,
    config: SwarmConfig,
    native: NativeConfig,
) -> (SwarmHandle, tokio::task::JoinHandle<()>) {
    let token = token(&issuer(), user, room);
    let signaling = Signaling::WebSocket {
        url: format!("{base}/ws"),
        token,
    };
    let (handle, driver) = start(config, native, signaling).unwrap();
    (handle, tokio::spawn(driver))
}

/// Waits until `h` has reported `n` opens; the time of the last one.
pub async fn our_opens(h: &SwarmHandle, n: usize, t0: Instant) -> Option<Duration> {
    our_opens_ids(h, n, t0).await.map(|(t, _)| t)
}

/// [`our_opens`], and the links that opened.
pub async fn our_opens_ids(
    h: &SwarmHandle,
    n: usize,
    t0: Instant,
) -> Option<(Duration, Vec<ConnectionId>)> {
    let mut open = Vec::new();
    let deadline = t0 + GIVE_UP;
    while open.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, h.recv()).await {
            Ok(Some(SwarmEvent::Open(peer))) => open.push(peer.id),
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
    Some((t0.elapsed(), open))
}

/// A matchbox member and the peers it has seen connect.
pub struct Mb {
    pub socket: WebRtcSocket,
    pub connected: HashSet<matchbox_socket::PeerId>,
}

/// A matchbox member in `room` with these channels.
pub fn mb_member(base: &str, room: &str, channels: &[matchbox_socket::ChannelConfig]) -> Mb {
    let mut builder = WebRtcSocket::builder(format!("{base}/{room}"));
    for c in channels {
        builder = builder.add_channel(*c);
    }
    let (socket, fut) = builder.build();
    tokio::spawn(fut);
    Mb {
        socket,
        connected: HashSet::new(),
    }
}

impl Mb {
    /// Applies the peer changes since the last call.
    pub fn poll(&mut self) {
        if let Ok(changes) = self.socket.try_update_peers() {
            for (peer, state) in changes {
                match state {
                    PeerState::Connected => {
                        self.connected.insert(peer);
                    }
                    PeerState::Disconnected => {
                        self.connected.remove(&peer);
                    }
                }
            }
        }
    }
}

/// Polls every millisecond until `m` has `n` connected peers.
pub async fn mb_connected(m: &mut Mb, n: usize, t0: Instant) -> Option<Duration> {
    loop {
        m.poll();
        if m.connected.len() >= n {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > GIVE_UP {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
