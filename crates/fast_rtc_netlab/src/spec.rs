//! What a lab is made of, as plain values: a link's one-way behaviour ([`LinkSpec`]) and the
//! NAT in front of a site ([`Nat`]).

use std::time::Duration;

/// What the WAN does to every packet going one way between two sites: it holds it for
/// `delay` (plus a uniform draw in `±jitter`, never below zero) and drops it with probability
/// `loss`. Packets of one direction of a link keep their order (jitter delays, it does not
/// reorder).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkSpec {
    /// One-way delay.
    pub delay: Duration,
    /// Each packet's delay is `delay` plus a uniform draw in `[-jitter, +jitter]`.
    pub jitter: Duration,
    /// Probability that a packet is dropped, in `[0, 1]`.
    pub loss: f64,
}

impl LinkSpec {
    /// No delay, no jitter, no loss.
    pub const IDEAL: LinkSpec = LinkSpec {
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        loss: 0.0,
    };

    /// A link with this one-way delay, no jitter, no loss.
    pub const fn delay(delay: Duration) -> LinkSpec {
        LinkSpec {
            delay,
            jitter: Duration::ZERO,
            loss: 0.0,
        }
    }

    /// The same link with this jitter.
    pub const fn with_jitter(mut self, jitter: Duration) -> LinkSpec {
        self.jitter = jitter;
        self
    }

    /// The same link with this loss probability (`0.03` for 3 %).
    pub const fn with_loss(mut self, loss: f64) -> LinkSpec {
        self.loss = loss;
        self
    }

    /// Whether `loss` is a probability (`[0, 1]`, not NaN).
    pub fn is_valid(&self) -> bool {
        (0.0..=1.0).contains(&self.loss)
    }
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec::IDEAL
    }
}

/// What stands between a site and the WAN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Nat {
    /// None: the site's own address is on the WAN (a server, a host with a public address).
    #[default]
    None,
    /// A cone NAT: nftables `masquerade`, which keeps a flow's source port when it can
    /// (endpoint-independent mapping; replies only from where the host sent to). A STUN
    /// server's answer (the server-reflexive address) is then what every peer sees.
    Cone,
    /// A symmetric NAT: nftables `masquerade fully-random`, a new random port for each
    /// destination. The address a STUN server sees is of no use to a peer: only a relay works
    /// when both ends are behind one.
    Symmetric,
}

impl Nat {
    /// The nftables statement of this NAT on the WAN side, if any.
    pub(crate) fn masquerade(self) -> Option<&'static str> {
        match self {
            Nat::None => None,
            Nat::Cone => Some("masquerade"),
            Nat::Symmetric => Some("masquerade fully-random"),
        }
    }

    /// The flags of an nftables `snat` that maps like [`masquerade`](Self::masquerade).
    pub(crate) fn snat_flags(self) -> &'static str {
        match self {
            Nat::Symmetric => "fully-random",
            Nat::None | Nat::Cone => "",
        }
    }
}
