//! Which STUN and TURN servers a new connection uses: the application's, the signaling
//! server's, or none. The decision is here, the same for every backend; a backend only
//! carries out the list each [`PeerCommand::Create`](crate::PeerCommand::Create) carries.
//!
//! # Precedence
//!
//! 1. **The application's own** [`SwarmConfig::ice_servers`](crate::SwarmConfig::ice_servers),
//!    when that list is not empty: it is used as it is, for every connection, and the servers
//!    the signaling server hands out are ignored (a game with its own TURN service keeps it).
//! 2. Otherwise **the signaling server's**: the `iceServers` of its `joined` frame (STUN
//!    servers, and TURN servers with credentials it minted for this member), replaced by every
//!    later `iceServers` frame, which the server sends before the TURN credentials it minted
//!    expire. A connection uses the list current when it is created; connections made
//!    earlier keep theirs (and their TURN allocation: coturn checks credentials when an
//!    allocation is made, not when it is refreshed).
//! 3. Otherwise **none**: host candidates only (a LAN, loopback).
//!
//! Because the server's list only arrives with `joined`, a swarm without servers of its own
//! makes its pre-made offers once it has joined ([`offers_wait_for_joined`]), not at
//! [`SwarmCore::start`](crate::SwarmCore::start): an offer parked on the server has gathered
//! its candidates already, and one gathered without STUN or TURN would be useless to a joiner
//! behind another NAT. This costs the member's own pre-made offers one signaling round trip,
//! never a joiner's join (a joiner answers the members' offers, which arrive after `joined`).

use crate::config::IceServer;

/// Where the servers of a new connection come from ([`choose`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IceSource {
    /// The application's [`SwarmConfig::ice_servers`](crate::SwarmConfig::ice_servers).
    Application,
    /// The signaling server's latest `joined` or `iceServers` frame.
    SignalingServer,
    /// Neither has any: host candidates only.
    None,
}

/// The servers a connection created now uses, and where they come from: `app` (the
/// application's configuration) when it is not empty, else `server` (the signaling server's
/// latest list, `None` before `joined` or when it hands out none) when that is not empty,
/// else none. See the [module docs](self).
pub fn choose<'a>(
    app: &'a [IceServer],
    server: Option<&'a [IceServer]>,
) -> (IceSource, &'a [IceServer]) {
    if !app.is_empty() {
        return (IceSource::Application, app);
    }
    match server {
        Some(list) if !list.is_empty() => (IceSource::SignalingServer, list),
        _ => (IceSource::None, &[]),
    }
}

/// Whether a swarm whose application configured `app` makes its pre-made offers only after
/// `joined` (so that they carry the signaling server's servers), instead of at `start`.
pub fn offers_wait_for_joined(app: &[IceServer]) -> bool {
    app.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_list_wins_over_the_server() {
        let app = [IceServer::turn("turn:app.example:3478", "u", "p")];
        let server = [IceServer::stun("stun:server.example:3478")];
        assert_eq!(
            choose(&app, Some(&server)),
            (IceSource::Application, &app[..])
        );
        assert_eq!(choose(&app, None), (IceSource::Application, &app[..]));
        assert!(!offers_wait_for_joined(&app));
    }

    #[test]
    fn without_an_application_list_the_server_list_is_used() {
        let server = [
            IceServer::stun("stun:server.example:3478"),
            IceServer::turn("turn:server.example:3478", "1:me", "c"),
        ];
        assert_eq!(
            choose(&[], Some(&server)),
            (IceSource::SignalingServer, &server[..])
        );
        assert!(offers_wait_for_joined(&[]));
    }

    #[test]
    fn with_neither_host_candidates_only() {
        assert_eq!(choose(&[], None), (IceSource::None, &[][..]));
        assert_eq!(choose(&[], Some(&[])), (IceSource::None, &[][..]));
    }
}
