//! Which remote ICE candidates a link takes: the decision behind
//! [`SwarmFault::CandidateRefused`](crate::swarm::SwarmFault::CandidateRefused).
//!
//! Every candidate a remote signals makes the local ICE agent send connectivity checks (STUN
//! binding requests, retransmitted) to the address it names. Without a bound, one member of a
//! room could make every other member send checks to a third party (a reflection attack), or
//! make them hold thousands of candidate pairs. So each link admits, per remote description
//! (an ICE restart starts a new count, with the remote's new credentials):
//!
//! - at most [`SwarmConfig::max_remote_candidates`] candidates in all (those in the session
//!   description and those trickled, counted together; refused ones count too, so a flood
//!   costs one fault, not one per line);
//! - at most [`SwarmConfig::max_candidates_per_address`] at any one address: a real peer has a
//!   few per address (UDP and TCP, a TURN server's relays), never hundreds of ports;
//! - none that cannot be a peer: an unspecified (`0.0.0.0`, `::`), multicast or broadcast
//!   address. Names (a browser's mDNS `*.local` hosts) are admitted and counted by name.
//!
//! The checks any one address can get from a link are then bounded by the per-address cap
//! times the link's local candidates, at the ICE agent's pacing and retransmission limits.
//! Candidates whose address cannot be read are left for the WebRTC stack to refuse (they count
//! toward the total). The end of candidates (`None`) is always admitted.

use crate::config::SwarmConfig;
use std::net::IpAddr;

/// Why a remote candidate was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The address is `0.0.0.0` or `::`: no peer is there.
    #[error("unspecified address {0}")]
    Unspecified(IpAddr),
    /// A multicast address: checks would go to a whole group.
    #[error("multicast address {0}")]
    Multicast(IpAddr),
    /// The IPv4 broadcast address.
    #[error("broadcast address {0}")]
    Broadcast(IpAddr),
    /// The link already took its [`SwarmConfig::max_remote_candidates`] for this description.
    #[error("more than {0} remote candidates")]
    TooMany(usize),
    /// [`SwarmConfig::max_candidates_per_address`] candidates at this address already.
    #[error("more than {max} remote candidates at {address}")]
    TooManyAtAddress {
        /// The address (an IP, or a name).
        address: String,
        /// The cap.
        max: usize,
    },
}

/// The connection address of a candidate (an SDP `candidate:` attribute value, with or without
/// `a=`): its fifth field, after the foundation, component, transport and priority, before the
/// port and `typ`. `None` if the line is too short.
pub fn connection_address(candidate: &str) -> Option<&str> {
    candidate.split_ascii_whitespace().nth(4)
}

/// Why an address cannot be a peer's, if it cannot.
fn unusable(address: &str) -> Option<Refusal> {
    let ip: IpAddr = address.parse().ok()?;
    if ip.is_unspecified() {
        Some(Refusal::Unspecified(ip))
    } else if ip.is_multicast() {
        Some(Refusal::Multicast(ip))
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        Some(Refusal::Broadcast(ip))
    } else {
        None
    }
}

/// What one link admitted from its remote since the remote's last description.
#[derive(Debug, Default)]
pub struct RemoteCandidates {
    /// Candidates seen (admitted or refused).
    seen: usize,
    /// How many were admitted at each address (at most `max_remote_candidates` entries).
    per_address: Vec<(String, usize)>,
    /// Whether [`Refusal::TooMany`] was reported already (reported once per description).
    full_reported: bool,
}

impl RemoteCandidates {
    /// A new count: the remote described itself again (a new offer or answer: an ICE restart
    /// brings fresh credentials and candidates).
    pub fn reset(&mut self) {
        *self = RemoteCandidates::default();
    }

    /// Whether the link takes `candidate`. A refusal to report is `Err(Some(_))`;
    /// `Err(None)` is a refusal past the total cap that was reported already.
    pub fn admit(&mut self, candidate: &str, config: &SwarmConfig) -> Result<(), Option<Refusal>> {
        self.seen = self.seen.saturating_add(1);
        if self.seen > config.max_remote_candidates {
            if self.full_reported {
                return Err(None);
            }
            self.full_reported = true;
            return Err(Some(Refusal::TooMany(config.max_remote_candidates)));
        }
        let Some(address) = connection_address(candidate) else {
            return Ok(());
        };
        if let Some(refusal) = unusable(address) {
            return Err(Some(refusal));
        }
        let key = address.to_ascii_lowercase();
        let max = config.max_candidates_per_address;
        match self.per_address.iter_mut().find(|(a, _)| *a == key) {
            Some((_, n)) if *n >= max => Err(Some(Refusal::TooManyAtAddress { address: key, max })),
            Some((_, n)) => {
                *n += 1;
                Ok(())
            }
            None if max == 0 => Err(Some(Refusal::TooManyAtAddress { address: key, max })),
            None => {
                self.per_address.push((key, 1));
                Ok(())
            }
        }
    }

    /// `sdp` without the `a=candidate:` lines this count does not admit, and the refusals to
    /// report. Other lines are kept as they are.
    pub fn filter_sdp(&mut self, sdp: &str, config: &SwarmConfig) -> (String, Vec<Refusal>) {
        let mut kept = String::with_capacity(sdp.len());
        let mut refused = Vec::new();
        for line in sdp.split_inclusive('\n') {
            let value = line.trim_end_matches(['\r', '\n']);
            if let Some(candidate) = value.strip_prefix("a=")
                && candidate.starts_with("candidate:")
                && let Err(why) = self.admit(candidate, config)
            {
                refused.extend(why);
                continue;
            }
            kept.push_str(line);
        }
        (kept, refused)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config(total: usize, per_address: usize) -> SwarmConfig {
        SwarmConfig {
            max_remote_candidates: total,
            max_candidates_per_address: per_address,
            ..SwarmConfig::new("r")
        }
    }

    fn udp(address: &str, port: u16) -> String {
        format!("candidate:1 1 udp 2130706431 {address} {port} typ host")
    }

    #[test]
    fn addresses_that_cannot_be_a_peer_are_refused() {
        let config = config(64, 8);
        let mut count = RemoteCandidates::default();
        for (address, want) in [
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.251", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
        ] {
            let why = count
                .admit(&udp(address, 5000), &config)
                .unwrap_err()
                .unwrap();
            assert!(why.to_string().starts_with(want), "{address}: {why}");
        }
        for address in ["192.168.1.2", "10.77.0.3", "2001:db8::1", "4e1f-ab.local"] {
            assert_eq!(
                count.admit(&udp(address, 5000), &config),
                Ok(()),
                "{address}"
            );
        }
        // Unreadable lines are the WebRTC stack's to refuse.
        assert_eq!(count.admit("candidate:garbage", &config), Ok(()));
    }

    #[test]
    fn one_address_takes_at_most_its_cap() {
        let config = config(64, 3);
        let mut count = RemoteCandidates::default();
        for port in 1..=3 {
            assert_eq!(count.admit(&udp("203.0.113.9", port), &config), Ok(()));
        }
        assert_eq!(
            count.admit(&udp("203.0.113.9", 4), &config),
            Err(Some(Refusal::TooManyAtAddress {
                address: "203.0.113.9".into(),
                max: 3
            }))
        );
        // Names count case-insensitively; other addresses are unaffected.
        assert_eq!(count.admit(&udp("198.51.100.1", 1), &config), Ok(()));
    }

    #[test]
    fn the_total_cap_is_reported_once_and_a_new_description_resets_it() {
        let config = config(4, 8);
        let mut count = RemoteCandidates::default();
        for i in 0..4 {
            assert_eq!(
                count.admit(&udp(&format!("10.0.0.{i}"), 1), &config),
                Ok(())
            );
        }
        assert_eq!(
            count.admit(&udp("10.0.0.9", 1), &config),
            Err(Some(Refusal::TooMany(4)))
        );
        for _ in 0..1000 {
            assert_eq!(count.admit(&udp("10.0.0.9", 1), &config), Err(None));
        }
        count.reset();
        assert_eq!(count.admit(&udp("10.0.0.9", 1), &config), Ok(()));
    }

    #[test]
    fn a_description_keeps_only_the_candidates_it_may() {
        let config = config(64, 2);
        let mut count = RemoteCandidates::default();
        let sdp = format!(
            "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
             a={}\r\na={}\r\na={}\r\na={}\r\na=end-of-candidates\r\n",
            udp("10.0.0.1", 1),
            udp("0.0.0.0", 2),
            udp("10.0.0.1", 3),
            udp("10.0.0.1", 4),
        );
        let (kept, refused) = count.filter_sdp(&sdp, &config);
        assert_eq!(
            kept,
            format!(
                "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
                 a={}\r\na={}\r\na=end-of-candidates\r\n",
                udp("10.0.0.1", 1),
                udp("10.0.0.1", 3),
            )
        );
        assert_eq!(refused.len(), 2, "{refused:?}");
        // The trickled ones count with the description's.
        assert!(count.admit(&udp("10.0.0.1", 5), &config).is_err());
    }
}
