//! The accept loop: every connection until it is upgraded to a signaling socket, with its
//! deadlines and the pre-authentication cap.
//!
//! axum's `serve` sets no header-read deadline and bounds nothing before a request reaches a
//! route, so the shell accepts itself. Each accepted connection is admitted to the
//! [`PreAuthGate`] (which may name an older pending connection to evict, carried out here),
//! then runs in a task of its own: the TLS handshake (if any, within
//! [`TlsConfig::handshake_timeout`]), then HTTP/1.1 with hyper's header-read deadline
//! ([`ConnectionLimits::header_read_timeout`]), the whole bounded by the sum of both plus the
//! write timeout. The connection leaves the gate when its task ends: the WebSocket upgrade is
//! done (the socket then counts against the socket caps, see [`crate::server`]) or the
//! connection is closed. The accept loop itself never waits on a client.

use crate::admission::{PreAuthGate, Source};
use crate::limits::ConnectionLimits;
use crate::metrics::Metrics;
use crate::tls::{self, TlsConfig};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use tracing::{debug, error, info, warn};

/// The most bytes hyper buffers for one connection's request head (hyper's own minimum is
/// 8 KiB; a signaling request is a few hundred bytes plus the token).
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// What the accept loop needs.
pub(crate) struct Acceptor {
    pub(crate) app: Router,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) limits: ConnectionLimits,
    /// The longest one response write may take (the server's write timeout).
    pub(crate) write_timeout: Duration,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tracker: TaskTracker,
}

type Gate = Arc<Mutex<PreAuthGate<CancellationToken>>>;

impl Acceptor {
    /// Accepts until `stop` is cancelled, then drops every connection still pending (upgraded
    /// sockets close themselves on `stop`).
    pub(crate) async fn run(self, listener: TcpListener, stop: CancellationToken) {
        let gate: Gate = Arc::new(Mutex::new(PreAuthGate::new(
            self.limits.max_preauth,
            self.limits.max_preauth_per_source,
        )));
        let this = Arc::new(self);
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, addr) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, or the connection reset before it was accepted:
                    // wait a little rather than spin; pending connections time out meanwhile.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Signaling frames are small and latency-bound: without TCP_NODELAY, Nagle's
            // algorithm and delayed ACKs add up to ~80 ms to a join (measured by fast_rtc_bench).
            if let Err(e) = tcp.set_nodelay(true) {
                debug!(error = %e, "cannot set TCP_NODELAY");
            }
            let cancel = stop.child_token();
            let (id, evicted) = match gate.lock() {
                Ok(mut g) => g.admit(Source::of(addr.ip()), cancel.clone()),
                Err(_) => {
                    // A task panicked holding the gate: its counts cannot be trusted.
                    error!("the pre-authentication gate is poisoned: no longer accepting");
                    return;
                }
            };
            if let Some(evicted) = evicted {
                evicted.cancel();
                this.metrics.drop_socket("preauth_evicted");
            }
            let (this, gate) = (this.clone(), gate.clone());
            this.tracker.clone().spawn(async move {
                tokio::select! {
                    () = cancel.cancelled() => debug!(%addr, "pending connection evicted"),
                    () = this.connection(tcp, addr) => {}
                }
                if let Ok(mut g) = gate.lock() {
                    g.release(id);
                }
            });
        }
        if let Ok(mut g) = gate.lock() {
            for pending in g.drain() {
                pending.cancel();
            }
        }
        info!("stopped accepting");
    }

    /// One connection until it is upgraded or closed, within its deadlines.
    async fn connection(&self, tcp: TcpStream, addr: SocketAddr) {
        let handshake = self
            .tls
            .as_ref()
            .map_or(Duration::ZERO, |t| t.handshake_timeout);
        let deadline = handshake + self.limits.header_read_timeout + self.write_timeout;
        let served = tokio::time::timeout(deadline, async {
            match &self.tls {
                Some(tls) => match tls::handshake(tls, tcp, addr).await {
                    Some(stream) => self.http(stream, addr).await,
                    None => self.metrics.drop_socket("tls_handshake"),
                },
                None => self.http(tcp, addr).await,
            }
        })
        .await;
        if served.is_err() {
            debug!(%addr, "connection not upgraded within {deadline:?}: dropped");
            self.metrics.drop_socket("preauth_timeout");
        }
    }

    /// HTTP/1.1 on `io` with the header-read deadline, until the upgrade or the end.
    async fn http<IO>(&self, io: IO, addr: SocketAddr)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            let mut app = app.clone();
            async move { app.call(req).await }
        });
        let served = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(MAX_REQUEST_HEAD_BYTES)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
            .await;
        if let Err(e) = served {
            if e.is_timeout() {
                debug!(%addr, "no request headers within the deadline: dropped");
                self.metrics.drop_socket("header_timeout");
            } else {
                debug!(%addr, error = %e, "connection ended with an error");
            }
        }
    }
}
