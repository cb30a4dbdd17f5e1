//! A thin wrapper of webrtc-rs's runtime that tunes each UDP socket before webrtc-rs wraps it,
//! and caps its UDP GSO batches below the kernel's payload limit.
//!
//! # The GSO cap
//!
//! webrtc-rs 0.21.1 batches runs of equal-size datagrams into one UDP GSO `sendmsg` of up to
//! `MAX_GSO_BATCH_BYTES` = 65,535 bytes (`peer_connection/transport/mod.rs`). Linux refuses a
//! GSO send whose total exceeds the UDP payload limit, 65,507 bytes over IPv4, with `EMSGSIZE`
//! ("Message too long"), and webrtc-rs logs it and drops the whole batch. SCTP retransmits the
//! same run batched the same way, so a link that hits a total between the two numbers (about
//! 54 full-size packets, i.e. a ~64 KB message with the congestion window open) stalls for
//! good. This wrapper reports a segment limit of [`MAX_GSO_SEGMENTS`], so a batch of
//! datagrams up to 1,500 bytes (webrtc-rs's are about 1,200) stays at or below 64,500 bytes.

use std::future::Future;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tracing::debug;
use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Runtime, Transmit};

/// Datagrams per UDP GSO batch at most: 43 × 1,500 bytes = 64,500, below the 65,507-byte UDP
/// payload limit of IPv4 (see the module docs).
pub(crate) const MAX_GSO_SEGMENTS: usize = 65_507 / 1_500;

/// webrtc-rs's runtime with two changes to each UDP socket: it gets the configured receive
/// buffer ([`NativeConfig::udp_recv_buffer`](crate::NativeConfig::udp_recv_buffer)) before
/// webrtc-rs wraps it, and the wrapped socket caps GSO batches (see the module docs).
/// Everything else delegates.
#[derive(Debug)]
pub(crate) struct SocketTuning {
    pub(crate) inner: Arc<dyn Runtime>,
    /// `SO_RCVBUF` to ask for, if any.
    pub(crate) recv_buffer: Option<usize>,
}

impl Runtime for SocketTuning {
    fn spawn(
        &self,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn webrtc::runtime::JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn webrtc::runtime::JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> std::io::Result<Arc<dyn webrtc::runtime::AsyncUdpSocket>> {
        if let Some(bytes) = self.recv_buffer
            && let Err(e) = socket2::SockRef::from(&socket).set_recv_buffer_size(bytes)
        {
            debug!(error = %e, "could not set the UDP receive buffer");
        }
        let inner = self.inner.wrap_udp_socket(socket)?;
        Ok(Arc::new(GsoCap(inner)))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Arc<dyn webrtc::runtime::AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<
        Box<
            dyn Future<Output = std::io::Result<Arc<dyn webrtc::runtime::AsyncTcpStream>>>
                + Send
                + 'a,
        >,
    > {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> std::time::Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn webrtc::runtime::AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// A UDP socket whose GSO segment limit is at most [`MAX_GSO_SEGMENTS`]; everything else
/// delegates.
#[derive(Debug)]
struct GsoCap(Arc<dyn AsyncUdpSocket>);

impl AsyncUdpSocket for GsoCap {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        transmit: &Transmit<'_>,
    ) -> Poll<std::io::Result<usize>> {
        self.0.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<std::io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn max_gso_segments(&self) -> usize {
        self.0.max_gso_segments().min(MAX_GSO_SEGMENTS)
    }

    fn max_gro_segments(&self) -> usize {
        self.0.max_gro_segments()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const _: () = assert!(MAX_GSO_SEGMENTS * 1_500 <= 65_507);

    /// One GSO send of `segments` datagrams of `size` bytes from `socket` to itself.
    fn gso_send(
        socket: &dyn AsyncUdpSocket,
        segments: usize,
        size: usize,
    ) -> std::io::Result<usize> {
        let contents = vec![0u8; segments * size];
        let transmit = Transmit {
            destination: socket.local_addr()?,
            ecn: None,
            contents: &contents,
            segment_size: Some(size),
            src_ip: None,
        };
        futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            socket.poll_send(cx, &transmit)
        }))
    }

    #[test]
    fn gso_batches_are_capped_below_the_udp_payload_limit() {
        let runtime = webrtc::runtime::default_runtime().unwrap();
        let tuning = SocketTuning {
            inner: runtime.clone(),
            recv_buffer: None,
        };
        let wrap = |r: &dyn Runtime| {
            let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            r.wrap_udp_socket(std_socket).unwrap()
        };
        let plain = wrap(runtime.as_ref());
        if plain.max_gso_segments() <= 1 {
            eprintln!("no UDP GSO on this kernel: nothing to cap");
            return;
        }
        // The upstream cause: webrtc-rs's own limits (65,535 bytes, 64 segments) allow both
        // batches, and the kernel takes only the one within the UDP payload limit.
        assert_eq!(gso_send(plain.as_ref(), 54, 1_213).unwrap(), 65_502);
        assert!(
            gso_send(plain.as_ref(), 52, 1_260).is_err(),
            "65,520 bytes in one GSO send"
        );
        // The cap: what the wrapped socket allows, at the largest datagram webrtc-rs makes, the
        // kernel takes.
        let capped = wrap(&tuning);
        let n = capped.max_gso_segments();
        assert!((2..=MAX_GSO_SEGMENTS).contains(&n), "{n}");
        assert_eq!(gso_send(capped.as_ref(), n, 1_500).unwrap(), n * 1_500);
    }
}
