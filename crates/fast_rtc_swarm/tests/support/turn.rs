//! Configurations and checks of the TURN tests (`e2e_turn.rs`, `e2e_server_ice.rs`,
//! `e2e_restart.rs`).

use fast_rtc_swarm::{IceServer, IceTransportPolicy, SwarmConfig, SwarmEvent, SwarmFault};

/// A member of `room` that takes relay candidates only, through `turn_url` with the long-term
/// credentials `user`/`credential`.
pub fn relay_only(room: &str, turn_url: &str, user: &str, credential: &str) -> SwarmConfig {
    let mut config = SwarmConfig::new(room);
    config
        .ice_servers
        .push(IceServer::turn(turn_url, user, credential));
    config.ice_transport_policy = IceTransportPolicy::Relay;
    config
}

/// The `RelayUnavailable` fault `event` is, if it is one.
pub fn relay_fault(event: &SwarmEvent) -> Option<&SwarmFault> {
    match event {
        SwarmEvent::Fault(f @ SwarmFault::RelayUnavailable { .. }) => Some(f),
        _ => None,
    }
}
