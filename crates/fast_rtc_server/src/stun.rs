//! The server's own STUN server (`serve --stun-listen ADDR`): it answers RFC 8489 Binding
//! requests on UDP with the sender's address as seen from here (XOR-MAPPED-ADDRESS, then
//! FINGERPRINT), which is all a member behind a cone NAT needs to learn its public address
//! (a server-reflexive ICE candidate). It is no TURN server and never relays anything.
//!
//! Messages are parsed and built by `rtc-stun`, webrtc-rs's sans-IO STUN codec (the same
//! crate and version the swarm's WebRTC stack uses). [`answer`] decides what to send for one
//! datagram and never panics: a packet that is not a well-formed STUN message (or whose
//! FINGERPRINT is wrong) is a [`StunError`], counted and dropped; indications, responses and
//! other methods are ignored; a Binding request with a comprehension-required attribute gets
//! a 420 error response naming it (RFC 8489 §6.3.1: this server understands none).
//!
//! Each source gets a bounded rate ([`RateTable`]): a token bucket per source address,
//! held in a fixed table of [`RATE_SLOTS`] slots indexed by a keyed hash of the address, so
//! the table's memory never grows, whatever the number of sources. Sources that share a slot
//! share its budget; the hash key is random per process, so a sender cannot pick addresses
//! that collide with a given member's.

use crate::metrics::Metrics;
use rtc_stun::attributes::AttrType;
use rtc_stun::error_code::{CODE_UNKNOWN_ATTRIBUTE, ErrorCodeAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::message::{
    BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS, Message, Setter, TransactionId,
};
use rtc_stun::uattrs::UnknownAttributes;
use rtc_stun::xoraddr::XorMappedAddress;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Slots of the rate table: its memory is fixed (about 24 bytes a slot).
pub const RATE_SLOTS: usize = 4096;

/// The largest datagram read; a Binding request is 20 to a few hundred bytes.
const MAX_DATAGRAM: usize = 1500;

/// Why a datagram got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    /// Not a well-formed STUN message.
    #[error("not a STUN message: {0}")]
    Malformed(String),
    /// It carries a FINGERPRINT that does not match its bytes.
    #[error("wrong FINGERPRINT")]
    Fingerprint,
    /// The response could not be built (a bug, never the sender's doing).
    #[error("cannot build the response: {0}")]
    Build(String),
}

/// The response to send for `packet` from `from`, `Ok(None)` when nothing is to be answered
/// (an indication, a response, another method). See the [module docs](self).
pub fn answer(packet: &[u8], from: SocketAddr) -> Result<Option<Vec<u8>>, StunError> {
    let mut request = Message::new();
    request
        .unmarshal_binary(packet)
        .map_err(|e| StunError::Malformed(e.to_string()))?;
    if request.typ != BINDING_REQUEST {
        return Ok(None);
    }
    if request.contains(rtc_stun::attributes::ATTR_FINGERPRINT)
        && FINGERPRINT.check(&request).is_err()
    {
        return Err(StunError::Fingerprint);
    }
    let unknown: Vec<AttrType> = request
        .attributes
        .0
        .iter()
        .map(|a| a.typ)
        .filter(|t| t.required())
        .collect();
    let id = TransactionId(request.transaction_id.0);
    let mut response = Message::new();
    let built = if unknown.is_empty() {
        let mapped = XorMappedAddress {
            ip: from.ip(),
            port: from.port(),
        };
        let setters: [Box<dyn Setter>; 4] = [
            Box::new(BINDING_SUCCESS),
            Box::new(id),
            Box::new(mapped),
            Box::new(FINGERPRINT),
        ];
        response.build(&setters)
    } else {
        let setters: [Box<dyn Setter>; 5] = [
            Box::new(BINDING_ERROR),
            Box::new(id),
            Box::new(ErrorCodeAttribute {
                code: CODE_UNKNOWN_ATTRIBUTE,
                reason: b"Unknown Attribute".to_vec(),
            }),
            Box::new(UnknownAttributes(unknown)),
            Box::new(FINGERPRINT),
        ];
        response.build(&setters)
    };
    built.map_err(|e| StunError::Build(e.to_string()))?;
    Ok(Some(response.raw))
}

/// A token bucket per source address, in a table of fixed size ([`RATE_SLOTS`]); see the
/// [module docs](self). Time is passed in.
#[derive(Debug)]
pub struct RateTable {
    slots: Vec<Bucket>,
    hasher: RandomState,
    rate_per_second: f64,
    burst: f64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl RateTable {
    /// `rate_per_second` sustained and `burst` at once per source (each at least 1), in
    /// `slots` slots (at least 1).
    pub fn new(rate_per_second: u32, burst: u32, slots: usize) -> Self {
        let burst = f64::from(burst.max(1));
        RateTable {
            slots: vec![
                Bucket {
                    tokens: burst,
                    last: None,
                };
                slots.max(1)
            ],
            hasher: RandomState::new(),
            rate_per_second: f64::from(rate_per_second.max(1)),
            burst,
        }
    }

    /// The number of slots (fixed).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Whether `source` may be answered at `now` (and takes a token if so).
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        let len = self.slots.len();
        let index = usize::try_from(self.hasher.hash_one(source)).unwrap_or_default() % len;
        let (rate, burst) = (self.rate_per_second, self.burst);
        let Some(bucket) = self.slots.get_mut(index) else {
            return false;
        };
        if let Some(last) = bucket.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        }
        bucket.last = Some(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Answers Binding requests on `socket` until `stop`; see the [module docs](self).
pub(crate) async fn run(
    socket: UdpSocket,
    rate_per_second: u32,
    burst: u32,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    if let Ok(addr) = socket.local_addr() {
        info!(%addr, "STUN server listening (udp)");
    }
    let mut rates = RateTable::new(rate_per_second, burst, RATE_SLOTS);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = tokio::select! {
            () = stop.cancelled() => return,
            got = socket.recv_from(&mut buf) => match got {
                Ok(got) => got,
                Err(e) => {
                    // ICMP errors of earlier sends surface here on some systems; go on,
                    // but never spin on a broken socket.
                    debug!(error = %e, "STUN socket receive error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if !rates.allow(from.ip(), crate::owner::now()) {
            metrics.stun_packet("rate_limited");
            continue;
        }
        let Some(packet) = buf.get(..len) else {
            continue;
        };
        match answer(packet, from) {
            Ok(Some(response)) => {
                metrics.stun_packet("answered");
                if let Err(e) = socket.send_to(&response, from).await {
                    debug!(error = %e, %from, "cannot send a STUN response");
                }
            }
            Ok(None) => metrics.stun_packet("ignored"),
            Err(StunError::Build(e)) => warn!(error = %e, "cannot build a STUN response"),
            Err(e) => {
                metrics.stun_packet("malformed");
                debug!(error = %e, %from, "dropped a STUN packet");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::message::{CLASS_SUCCESS_RESPONSE, Getter};

    fn binding_request(extra: Option<(AttrType, &[u8])>) -> Vec<u8> {
        let mut m = Message::new();
        m.build(&[Box::new(BINDING_REQUEST), Box::new(TransactionId::new())])
            .unwrap();
        if let Some((t, v)) = extra {
            m.add(t, v);
        }
        FINGERPRINT.add_to(&mut m).unwrap();
        m.raw
    }

    #[test]
    fn a_binding_request_gets_the_senders_address() {
        let from: SocketAddr = "203.0.113.7:40123".parse().unwrap();
        let request = binding_request(None);
        let raw = answer(&request, from).unwrap().unwrap();
        let mut response = Message::new();
        response.unmarshal_binary(&raw).unwrap();
        assert_eq!(response.typ, BINDING_SUCCESS);
        assert_eq!(response.typ.class, CLASS_SUCCESS_RESPONSE);
        assert_eq!(response.transaction_id.0, request[8..20]);
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&response).unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
        FINGERPRINT.check(&response).unwrap();
        // IPv6 too.
        let from6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let mut response = Message::new();
        response
            .unmarshal_binary(&answer(&request, from6).unwrap().unwrap())
            .unwrap();
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&response).unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from6);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(answer(b"", from).is_err());
        assert!(answer(b"hello, world, not stun", from).is_err());
        let mut bad_length = binding_request(None);
        bad_length[3] = 0xff;
        assert!(answer(&bad_length, from).is_err());
        let mut bad_fingerprint = binding_request(None);
        let last = bad_fingerprint.len() - 1;
        bad_fingerprint[last] ^= 1;
        assert!(matches!(
            answer(&bad_fingerprint, from),
            Err(StunError::Fingerprint)
        ));
        // Every prefix and every single-byte change of a valid request.
        let valid = binding_request(Some((rtc_stun::attributes::ATTR_SOFTWARE, b"x")));
        for n in 0..valid.len() {
            let _ = answer(&valid[..n], from);
            for flip in [0x01, 0x80, 0xff] {
                let mut m = valid.clone();
                m[n] ^= flip;
                let _ = answer(&m, from);
            }
        }
        // Random bytes behind a valid header.
        let mut seed = 0x9e37_79b9_u32;
        for len in 0..300usize {
            let mut m = valid[..20].to_vec();
            m[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                m.push(seed.to_le_bytes()[0]);
            }
            let _ = answer(&m, from);
        }
    }

    proptest::proptest! {
        /// Any datagram, and any body behind a Binding request's header: an answer, nothing,
        /// or an error, never a panic.
        #[test]
        fn any_datagram_is_handled_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            claimed in proptest::prelude::any::<u16>(),
        ) {
            let from: SocketAddr = "192.0.2.1:3478".parse().unwrap();
            let _ = answer(&bytes, from);
            let mut m = vec![0x00, 0x01];
            m.extend_from_slice(&claimed.to_be_bytes());
            m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            m.extend_from_slice(b"transaction!");
            m.extend_from_slice(&bytes);
            let _ = answer(&m, from);
        }
    }

    #[test]
    fn only_binding_requests_are_answered() {
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut indication = Message::new();
        indication
            .build(&[
                Box::new(rtc_stun::message::MessageType::new(
                    rtc_stun::message::METHOD_BINDING,
                    rtc_stun::message::CLASS_INDICATION,
                )),
                Box::new(TransactionId::new()),
            ])
            .unwrap();
        assert!(answer(&indication.raw, from).unwrap().is_none());
        let response = answer(&binding_request(None), from).unwrap().unwrap();
        assert!(answer(&response, from).unwrap().is_none());
    }

    #[test]
    fn a_comprehension_required_attribute_gets_420() {
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let request = binding_request(Some((AttrType(0x0042), b"abcd")));
        let mut response = Message::new();
        response
            .unmarshal_binary(&answer(&request, from).unwrap().unwrap())
            .unwrap();
        assert_eq!(response.typ, BINDING_ERROR);
        let mut code = ErrorCodeAttribute::default();
        code.get_from(&response).unwrap();
        assert_eq!(code.code.0, CODE_UNKNOWN_ATTRIBUTE.0);
        let mut unknown = UnknownAttributes(Vec::new());
        unknown.get_from(&response).unwrap();
        assert_eq!(unknown.0, [AttrType(0x0042)]);
        // An optional one (SOFTWARE) is fine.
        let request = binding_request(Some((rtc_stun::attributes::ATTR_SOFTWARE, b"x")));
        let mut response = Message::new();
        response
            .unmarshal_binary(&answer(&request, from).unwrap().unwrap())
            .unwrap();
        assert_eq!(response.typ, BINDING_SUCCESS);
    }

    #[test]
    fn the_rate_is_bounded_per_source_and_refills() {
        let t0 = crate::owner::now();
        let mut rates = RateTable::new(10, 5, RATE_SLOTS);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let allowed = (0..50).filter(|_| rates.allow(a, t0)).count();
        assert_eq!(allowed, 5, "the burst");
        // 10 per second: 100 ms gives one more, one second gives the burst back (not more).
        assert!(rates.allow(a, t0 + Duration::from_millis(100)));
        assert!(!rates.allow(a, t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(10);
        assert_eq!((0..50).filter(|_| rates.allow(a, later)).count(), 5);
        // The table never grows, however many sources there are.
        for i in 0..100_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            rates.allow(ip, later);
        }
        assert_eq!(rates.slots(), RATE_SLOTS);
    }
}
