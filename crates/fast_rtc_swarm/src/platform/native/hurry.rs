//! The wake-ups that take webrtc-rs 0.21's timer ticks off the join path (see the
//! [backend's docs](super)). Each is a public call that changes nothing else.

use crate::platform::time::now;
use fast_rtc_protocol::ConnectionId;
use rtc::peer_connection::transport::RTCSctpTransportState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;
use webrtc::data_channel::{DataChannel, RTCDataChannelState};
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit};

/// First and longest gap between two driver wake-ups while local channels are opening.
const NUDGE_FIRST: Duration = Duration::from_millis(1);
pub(crate) const NUDGE_MAX: Duration = Duration::from_millis(16);
/// Nudging stops this long after DTLS completed, open or not (webrtc-rs's own timer remains).
const NUDGE_FOR: Duration = Duration::from_secs(2);

/// Wakes webrtc-rs's connection driver while SCTP and this side's channels open.
///
/// webrtc-rs 0.21's driver writes, then handles internal events, then sleeps until a packet, a
/// call from the application or its next timer (up to 200 ms away once ICE is connected). The
/// SCTP `INIT` (made when DTLS completes) and the DCEP `OPEN` of every locally created channel
/// (made when the association comes up) are produced while handling events, so each can sit
/// until that next wake-up: a 200 ms stall on either side.
/// Any call into the connection wakes the driver, so from DTLS completion until the channels
/// are open the task makes one cheap call (`set_configuration` with the unchanged
/// configuration) after 1 ms, then at doubling gaps of at most 16 ms. On a path with a real
/// round trip the wait for `COOKIE-ECHO` is at most prolonged by one gap.
pub(crate) struct Nudge {
    pub(crate) at: Instant,
    gap: Duration,
    until: Instant,
}

impl Nudge {
    pub(crate) fn start() -> Self {
        let now = now();
        Nudge {
            at: now + NUDGE_FIRST,
            gap: NUDGE_FIRST,
            until: now + NUDGE_FOR,
        }
    }

    /// The next wake-up, or `None` when nudging is over.
    pub(crate) fn next(self) -> Option<Self> {
        let gap = (self.gap * 2).min(NUDGE_MAX);
        let at = self.at + gap;
        (at < self.until).then_some(Nudge { at, gap, ..self })
    }
}

/// A remote host candidate of the address family this connection does not bind, at a
/// documentation address (RFC 3849 / RFC 5737) on the discard port, so that no local candidate
/// can pair with it: adding it creates no pair and sends nothing. `None` when both families
/// are bound (then the DTLS client waits for the ICE agent's tick).
pub(crate) fn inert_candidate(udp_addrs: &[SocketAddr]) -> Option<&'static str> {
    let v4 = udp_addrs.iter().any(SocketAddr::is_ipv4);
    let v6 = udp_addrs.iter().any(SocketAddr::is_ipv6);
    match (v4, v6) {
        (true, false) => Some("candidate:fastrtcflush 1 udp 1 2001:db8::1 9 typ host"),
        (false, true) => Some("candidate:fastrtcflush 1 udp 1 192.0.2.1 9 typ host"),
        _ => None,
    }
}

/// Sends the DTLS client's first flight now instead of at the ICE agent's next tick.
///
/// When ICE selects a pair, webrtc-rs 0.21 starts the DTLS client, whose `ClientHello` is then
/// only handed to the socket by the connection's next timeout handling: up to one ICE check
/// interval later (10 ms here; 200 ms with webrtc-rs defaults). A new remote candidate makes
/// the ICE agent ask for an immediate timeout, and a wake-up makes the driver see it. The
/// candidate is [`inert_candidate`], so nothing else changes (it is visible in stats as a
/// remote candidate of this connection).
pub(crate) async fn flush_dtls_client(
    id: &ConnectionId,
    pc: &dyn PeerConnection,
    udp_addrs: &[SocketAddr],
) {
    let Some(candidate) = inert_candidate(udp_addrs) else {
        return;
    };
    let inert = RTCIceCandidateInit {
        candidate: candidate.to_owned(),
        ..Default::default()
    };
    match pc.add_ice_candidate(inert).await {
        Ok(()) => {
            wake_driver(id, pc).await;
        }
        Err(e) => debug!(%id, error = %e, "could not hurry the DTLS client"),
    }
}

/// Wakes webrtc-rs's connection driver: one pass of its loop writes what is queued and
/// handles what is due. `set_configuration` with the unchanged configuration is the cheapest
/// public call that reaches the driver; it changes nothing. False if the connection is gone.
pub(crate) async fn wake_driver(id: &ConnectionId, pc: &dyn PeerConnection) -> bool {
    let configuration = pc.get_configuration().await;
    match pc.set_configuration(configuration).await {
        Ok(()) => true,
        Err(e) => {
            debug!(%id, error = %e, "driver wake failed");
            false
        }
    }
}

/// Whether the SCTP association is up and every channel this side holds is open.
pub(crate) async fn settled(pc: &dyn PeerConnection, channels: &[Arc<dyn DataChannel>]) -> bool {
    let Some(sctp) = pc.sctp().await else {
        return false;
    };
    if !matches!(sctp.state().await, Ok(RTCSctpTransportState::Connected)) {
        return false;
    }
    for dc in channels {
        if !matches!(dc.ready_state().await, Ok(RTCDataChannelState::Open)) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inert_candidate_is_of_the_family_not_bound() {
        let v4: SocketAddr = "0.0.0.0:0".parse().unwrap_or_else(|_| unreachable!());
        let v6: SocketAddr = "[::]:0".parse().unwrap_or_else(|_| unreachable!());
        assert!(inert_candidate(&[v4]).is_some_and(|c| c.contains("2001:db8::1")));
        assert!(inert_candidate(&[v6]).is_some_and(|c| c.contains("192.0.2.1")));
        assert_eq!(inert_candidate(&[v4, v6]), None);
    }

    #[test]
    fn nudges_double_up_to_the_cap_and_stop() {
        let mut n = Some(Nudge::start());
        let mut gaps = Vec::new();
        let mut last = n.as_ref().map(|n| n.at);
        while let Some(next) = n.and_then(Nudge::next) {
            if let Some(prev) = last {
                gaps.push(next.at - prev);
            }
            last = Some(next.at);
            n = Some(next);
        }
        let ms = |m| Duration::from_millis(m);
        assert_eq!(&gaps[..5], &[ms(2), ms(4), ms(8), ms(16), ms(16)]);
        assert!(gaps.iter().all(|g| *g <= NUDGE_MAX));
        // About 2 s of nudges at most 16 ms apart, then none.
        assert!((120..=130).contains(&gaps.len()), "{}", gaps.len());
    }
}
