//! Whether a link's ICE gathering produced the relay candidate its configuration expects: the
//! decision behind [`SwarmFault::RelayUnavailable`].
//!
//! A TURN server that refuses the credentials (a 401 to every Allocate), cannot be reached, or
//! has a URL the WebRTC stack does not support gives no relay candidate, and webrtc-rs 0.21.1
//! tells the application nothing about it: it logs the failure and ends gathering (it never
//! raises an ICE candidate error). The core sees every local candidate a backend gathers and
//! the end of gathering, so it decides here, the same way for every backend: when gathering
//! ends on a link with no `typ relay` candidate while `turn:`/`turns:` servers are configured
//! or the policy is relay-only, that is a fault. The link is not closed for it: with the `All`
//! policy it may still connect directly, and with `Relay` its handshake timeout closes it.

use crate::config::{IceServer, IceTransportPolicy, SwarmConfig};
use crate::swarm::io::SwarmFault;
use fast_rtc_protocol::ConnectionId;

/// Whether `candidate` (an SDP `candidate:` attribute value, as gathered and signaled) is a
/// relay candidate (`typ relay`), i.e. allocated on a TURN server.
pub fn is_relay_candidate(candidate: &str) -> bool {
    let mut tokens = candidate.split_ascii_whitespace();
    while let Some(token) = tokens.next() {
        if token == "typ" {
            return tokens.next() == Some("relay");
        }
    }
    false
}

/// The `turn:` and `turns:` URLs of `servers`, in order (RFC 7065 schemes, any case).
pub fn turn_urls(servers: &[IceServer]) -> Vec<String> {
    servers
        .iter()
        .flat_map(|s| &s.urls)
        .filter(|url| {
            let scheme = url.split(':').next().unwrap_or_default();
            scheme.eq_ignore_ascii_case("turn") || scheme.eq_ignore_ascii_case("turns")
        })
        .cloned()
        .collect()
}

/// The fault to report when link `id`'s gathering has ended, `relay_gathered` saying whether
/// it produced a relay candidate; `None` when nothing was expected or one came. `ice_servers`
/// are the link's own ([`crate::ice`]).
pub(crate) fn gathering_fault(
    config: &SwarmConfig,
    ice_servers: &[IceServer],
    id: &ConnectionId,
    relay_gathered: bool,
) -> Option<SwarmFault> {
    if relay_gathered {
        return None;
    }
    let servers = turn_urls(ice_servers);
    let relay_only = config.ice_transport_policy == IceTransportPolicy::Relay;
    (relay_only || !servers.is_empty()).then(|| SwarmFault::RelayUnavailable {
        id: id.clone(),
        servers,
        relay_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_candidate_type() {
        assert!(is_relay_candidate(
            "candidate:1 1 udp 16777215 127.0.0.1 50000 typ relay raddr 127.0.0.1 rport 4000"
        ));
        assert!(!is_relay_candidate(
            "candidate:2 1 udp 2130706431 127.0.0.1 4000 typ host"
        ));
        assert!(!is_relay_candidate(
            "candidate:3 1 udp 1694498815 1.2.3.4 4000 typ srflx raddr 0.0.0.0 rport 0"
        ));
        assert!(!is_relay_candidate("relay"));
        assert!(!is_relay_candidate("candidate:4 1 udp 1 1.2.3.4 1 typ"));
    }

    #[test]
    fn only_turn_urls_expect_a_relay() {
        let servers = [
            IceServer::stun("stun:stun.example:3478"),
            IceServer {
                urls: vec![
                    "TURN:a.example:3478".into(),
                    "turns:b.example:5349?transport=tcp".into(),
                    "stun:c.example".into(),
                ],
                ..IceServer::default()
            },
        ];
        assert_eq!(
            turn_urls(&servers),
            ["TURN:a.example:3478", "turns:b.example:5349?transport=tcp"]
        );
    }

    #[test]
    fn decides_when_a_missing_relay_is_a_fault() {
        let id = ConnectionId::new("c-1");
        let mut config = SwarmConfig::new("room");
        // Host candidates only, nothing expected.
        assert_eq!(
            gathering_fault(&config, &config.ice_servers, &id, false),
            None
        );
        config
            .ice_servers
            .push(IceServer::stun("stun:127.0.0.1:3478"));
        assert_eq!(
            gathering_fault(&config, &config.ice_servers, &id, false),
            None
        );
        // Relay-only without any TURN server can never link.
        config.ice_transport_policy = IceTransportPolicy::Relay;
        assert_eq!(
            gathering_fault(&config, &config.ice_servers, &id, false),
            Some(SwarmFault::RelayUnavailable {
                id: id.clone(),
                servers: vec![],
                relay_only: true
            })
        );
        // A TURN server that gave nothing, under either policy.
        config
            .ice_servers
            .push(IceServer::turn("turn:127.0.0.1:3478", "u", "p"));
        config.ice_transport_policy = IceTransportPolicy::All;
        assert_eq!(
            gathering_fault(&config, &config.ice_servers, &id, false),
            Some(SwarmFault::RelayUnavailable {
                id: id.clone(),
                servers: vec!["turn:127.0.0.1:3478".into()],
                relay_only: false
            })
        );
        assert_eq!(
            gathering_fault(&config, &config.ice_servers, &id, true),
            None
        );
    }
}
