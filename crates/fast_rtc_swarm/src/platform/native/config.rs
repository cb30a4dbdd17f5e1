//! Settings of the native backend.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of the native backend.
#[derive(Clone, Debug)]
pub struct NativeConfig {
    /// Local UDP addresses to bind. `0.0.0.0:0` (the default) binds every interface except
    /// loopback; tests bind `127.0.0.1:0`, which also enables loopback candidates.
    pub udp_addrs: Vec<SocketAddr>,
    /// Interval between ICE connectivity checks while checking (webrtc-rs default: 200 ms).
    pub ice_check_interval: Duration,
    /// Binding requests per candidate pair before it fails (webrtc-rs default: 7). Keep
    /// `interval × requests` around 2 s so slow real-world paths still succeed.
    pub ice_max_binding_requests: u16,
    /// No traffic for this long: ICE `disconnected`.
    pub ice_disconnected_timeout: Duration,
    /// `disconnected` for this long: ICE `failed`, and the link closes.
    pub ice_failed_timeout: Duration,
    /// Keepalive interval on an idle connection. Below 200 ms it also shortens the handshake
    /// (see the module docs), at the cost of a keepalive that often for the link's whole life.
    pub ice_keepalive_interval: Duration,
    /// How long a peer-reflexive pair must wait before it may be selected (webrtc-rs default:
    /// 1 s). When a remote's connectivity check arrives before its trickled candidate, the pair
    /// is peer-reflexive; browsers select such pairs at once, and so does this default (0).
    pub ice_prflx_acceptance_wait: Duration,
    /// How long a relay (TURN) pair must wait before it may be selected (webrtc-rs default:
    /// 2 s, so that direct pairs can win first). Default 500 ms, the same as webrtc-rs's wait
    /// for a server-reflexive pair: a direct pair that works by then still wins (it has the
    /// higher priority), and behind symmetric NATs, where only the relay works, a join no
    /// longer pays 2 s for nothing. Under the relay-only policy there is no wait at all.
    pub ice_relay_acceptance_wait: Duration,
    /// Resolve remote `.local` (mDNS) candidates, as browsers send without flags. Off by default:
    /// it joins a multicast group, which fails where there is no multicast route; native peers
    /// still reach such browsers through peer-reflexive candidates.
    pub mdns: bool,
    /// Receive buffer asked of the kernel for each UDP socket (`SO_RCVBUF`; Linux caps it at
    /// `net.core.rmem_max`). webrtc-rs's SCTP sends in bursts; on a fast path a burst larger
    /// than the buffer is dropped and costs a retransmission timeout (about 1 s). `None` keeps
    /// the system default.
    pub udp_recv_buffer: Option<usize>,
    /// Extra CA certificates (DER) trusted for `wss://` signaling, besides Mozilla's roots
    /// (compiled in, from `webpki-roots`): a private or self-signed deployment's CA, a test's.
    /// Empty by default. A PEM file's certificates are the base64 between its `BEGIN`/`END`
    /// lines; an entry that is not a certificate makes [`start`](crate::start) fail.
    pub tls_roots: Vec<Vec<u8>>,
}

impl Default for NativeConfig {
    fn default() -> Self {
        NativeConfig {
            udp_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            ice_check_interval: Duration::from_millis(10),
            ice_max_binding_requests: 200,
            ice_disconnected_timeout: Duration::from_secs(3),
            ice_failed_timeout: Duration::from_secs(7),
            ice_keepalive_interval: Duration::from_secs(1),
            ice_prflx_acceptance_wait: Duration::ZERO,
            ice_relay_acceptance_wait: Duration::from_millis(500),
            mdns: false,
            udp_recv_buffer: Some(4 << 20),
            tls_roots: Vec::new(),
        }
    }
}

impl NativeConfig {
    /// Binds only `127.0.0.1` (tests, same-machine demos).
    pub fn loopback() -> Self {
        NativeConfig {
            udp_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            ..NativeConfig::default()
        }
    }

    /// Also trusts `ca` (a DER certificate) for `wss://` signaling: see
    /// [`tls_roots`](Self::tls_roots).
    pub fn with_tls_root(mut self, ca: impl Into<Vec<u8>>) -> Self {
        self.tls_roots.push(ca.into());
        self
    }
}
