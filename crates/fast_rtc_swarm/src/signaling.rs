//! The built-in WebSocket signaling client, and how a swarm is started. The loop is the same
//! natively and in the browser; only the socket differs (`platform::ws`).
//!
//! The client connects to `URL?token=TOKEN` with TCP_NODELAY (a member writes several small
//! frames in a row; Nagle's algorithm would hold them for an ACK), joins, and pumps frames both
//! ways. If the socket drops (or, natively, hears nothing for
//! [`SwarmConfig::signaling_silence_timeout`]), live peer links stay up: the client reconnects
//! with exponential backoff ([`ReconnectPolicy`](crate::ReconnectPolicy): 250 ms doubling to
//! 8 s) and rejoins under the same identity (the token's); the swarm parks fresh offers and the
//! links re-form underneath without the application seeing a close. The core decides when to
//! retry and when to give up ([`crate::lifecycle`]): a refused token, a full or forbidden room,
//! another session with this identity, or the retry budget spent end the swarm with a
//! [`FailReason`](crate::FailReason), reported as [`SwarmEvent::Signaling`](crate::SwarmEvent::Signaling).
//! Each attempt uses the latest token ([`SwarmHandle::set_token`]); after a refused token the
//! loop waits for a new one when the core says so ([`crate::lifecycle#tokens`]).

use crate::backend::{DynBackend, EVENT_QUEUE, EventSender};
use crate::clock::Clock;
use crate::config::SwarmConfig;
use crate::driver::{Shared, SwarmHandle, peer_loop, wait_signal};
use crate::lifecycle::{Next, Transport};
use crate::platform::frame::{ConnectError, Frame};
use crate::platform::ws::{Socket, TlsConnector};
use crate::platform::{BackendConfig, BackendError, SEES_PINGS, SIGNALING_SCHEMES, SwarmDriver};
use crate::platform::{SwarmMedia, backend_with_media, random_u64};
use crate::sans_io::SwarmCore;
use fast_rtc_protocol::{decode_server, encode};
use futures_lite::future;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// How the swarm reaches the signaling server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Signaling {
    /// The built-in WebSocket client: `url` (`ws://host:port/ws`) and the member's token.
    WebSocket {
        /// The server's WebSocket URL, without the token.
        url: String,
        /// The member's token (sent as the `token` query parameter).
        token: String,
    },
    /// Bring your own transport: read frames to send with
    /// [`SwarmHandle::next_signal`] and feed the server's frames to
    /// [`SwarmHandle::dispatch`]. The swarm joins at once.
    External,
}

/// The swarm could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// This build's backend could not start (no async runtime natively, no `RTCPeerConnection`
    /// in the browser).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The signaling URL's scheme is not one this build can use.
    #[error("bad signaling URL {url:?}: expected one of {schemes:?}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// The schemes this build can use.
        schemes: &'static [&'static str],
    },
}

/// Starts a swarm on this build's backend ([`BackendConfig`]: webrtc-rs natively, the
/// browser's `RTCPeerConnection` on wasm). Returns its handle and the driver to spawn.
///
/// ```no_run
/// use fast_rtc_swarm::{start, NativeConfig, Signaling, SwarmConfig, SwarmEvent, ChannelId};
///
/// # async fn run(token: String) -> Result<(), Box<dyn std::error::Error>> {
/// let signaling = Signaling::WebSocket { url: "ws://127.0.0.1:8787/ws".into(), token };
/// let (swarm, driver) = start(SwarmConfig::new("lobby"), NativeConfig::default(), signaling)?;
/// std::thread::spawn(move || futures_lite::future::block_on(driver));
/// while let Some(event) = swarm.recv().await {
///     if let SwarmEvent::Open(peer) = event {
///         swarm.send(&peer.user_id, ChannelId::FAST, "hello")?;
///     }
/// }
/// # Ok(()) }
/// ```
///
/// Bring your own signaling transport:
///
/// ```no_run
/// use fast_rtc_swarm::{start, NativeConfig, Signaling, SwarmConfig};
/// use fast_rtc_protocol::{decode_server, encode};
///
/// # async fn run(mut my_transport_send: impl FnMut(String), incoming: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
/// let (swarm, driver) = start(SwarmConfig::new("lobby"), NativeConfig::default(), Signaling::External)?;
/// std::thread::spawn(move || futures_lite::future::block_on(driver));
/// // frames the swarm wants sent (init, offers, candidates, answers, close)
/// while let Some(frame) = swarm.try_next_signal() {
///     my_transport_send(encode(&frame));
/// }
/// // frames the server sent
/// for text in incoming {
///     swarm.dispatch(decode_server(&text)?);
/// }
/// # Ok(()) }
/// ```
pub fn start(
    config: SwarmConfig,
    backend: BackendConfig,
    signaling: Signaling,
) -> Result<(SwarmHandle, SwarmDriver), StartError> {
    let tls = TlsConnector::from_config(&backend)?;
    // The platform's media of this swarm (the browser's audio sources and playback), shared
    // by its handle and its backend's connections.
    let media = SwarmMedia::new(&config);
    let link = media.link();
    start_inner(
        config,
        signaling,
        Clock::System,
        tls,
        media,
        |config, events| Ok(backend_with_media(config, backend, events, link)?),
    )
}

/// Starts a swarm on a backend of your choice, with a [`Clock`] of your choice: `backend` is
/// called once with the swarm's configuration and the queue the backend reports to.
///
/// This is how a test runs a swarm without sockets and without waiting on real time:
///
/// ```
/// use fast_rtc_swarm::memory::MemoryNet;
/// use fast_rtc_swarm::{start_with, Clock, ManualClock, Signaling, SwarmConfig};
///
/// let net = MemoryNet::new();
/// let clock = ManualClock::new();
/// let (swarm, driver) = start_with(
///     SwarmConfig::new("lobby"),
///     Signaling::External,
///     Clock::Manual(clock.clone()),
///     |config, events| Ok(Box::new(net.backend(config, events))),
/// )?;
/// # drop((swarm, driver));
/// # Ok::<(), fast_rtc_swarm::StartError>(())
/// ```
///
/// A `wss://` server's certificate is checked against the platform's built-in roots only
/// (natively Mozilla's; [`start`] also trusts `NativeConfig::tls_roots`).
pub fn start_with(
    config: SwarmConfig,
    signaling: Signaling,
    clock: Clock,
    backend: impl FnOnce(SwarmConfig, EventSender) -> Result<DynBackend, StartError>,
) -> Result<(SwarmHandle, SwarmDriver), StartError> {
    start_inner(
        config,
        signaling,
        clock,
        TlsConnector::roots_only()?,
        SwarmMedia::none(),
        backend,
    )
}

/// [`start_with`] with the TLS connector of the signaling socket.
fn start_inner(
    config: SwarmConfig,
    signaling: Signaling,
    clock: Clock,
    tls: TlsConnector,
    media: SwarmMedia,
    backend: impl FnOnce(SwarmConfig, EventSender) -> Result<DynBackend, StartError>,
) -> Result<(SwarmHandle, SwarmDriver), StartError> {
    if let Signaling::WebSocket { url, .. } = &signaling
        && !SIGNALING_SCHEMES.iter().any(|s| url.starts_with(s))
    {
        return Err(StartError::BadUrl {
            url: url.clone(),
            schemes: SIGNALING_SCHEMES,
        });
    }
    let (events_tx, events_rx) = async_channel::bounded(EVENT_QUEUE);
    let backend = backend(config.clone(), events_tx)?;
    // Makes this member's connection ids unique in the room.
    let prefix = format!("{:016x}", random_u64());
    let shared = Shared::new(SwarmCore::new(config, prefix), backend, clock, media);
    let handle = SwarmHandle::new(shared.clone());
    let driver: SwarmDriver = match signaling {
        Signaling::External => {
            shared.with_swarm(|s, now| s.start(now));
            Box::pin(peer_loop(shared, events_rx))
        }
        Signaling::WebSocket { url, token } => {
            shared.set_token(token);
            let peers = peer_loop(shared.clone(), events_rx);
            let signals = websocket_loop(shared, url, tls);
            Box::pin(async move {
                // The signaling loop ends after sending `close`; the peer loop when closed.
                future::zip(peers, signals).await;
            })
        }
    };
    Ok((handle, driver))
}

/// How long one connection attempt (TCP and WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes once the swarm is closed.
async fn until_closed(shared: &Shared) {
    loop {
        let listener = shared.changed.listen();
        if shared.lock().swarm.is_closed() {
            return;
        }
        listener.await;
    }
}

/// Completes once the token was set again after `version`, or the swarm is closed.
async fn until_new_token(shared: &Shared, version: u64) {
    loop {
        let listener = shared.changed.listen();
        {
            let inner = shared.lock();
            if inner.token_version != version || inner.swarm.is_closed() {
                return;
            }
        }
        listener.await;
    }
}

/// Connects, pumps, and reports every attempt and loss to the core, which decides whether and
/// when to try again ([`crate::lifecycle`]); this loop only waits and dials, with the latest
/// token ([`SwarmHandle::set_token`]).
async fn websocket_loop(shared: Arc<Shared>, url: String, tls: TlsConnector) {
    loop {
        if shared.with_swarm(|s, now| s.handle_transport(now, Transport::Connecting)) == Next::Stop
        {
            return;
        }
        let (token, version) = {
            let inner = shared.lock();
            (inner.token.clone(), inner.token_version)
        };
        // Bounded, and abandoned if the swarm is closed meanwhile.
        let attempt = async { Some(Socket::connect(&url, &token, &tls).await) };
        let timeout = async {
            shared.clock.sleep(CONNECT_TIMEOUT).await;
            Some(Err(ConnectError::Failed(format!(
                "no answer within {CONNECT_TIMEOUT:?}"
            ))))
        };
        let closed = async {
            until_closed(&shared).await;
            None
        };
        let report = match future::or(attempt, future::or(timeout, closed)).await {
            Some(Ok(mut ws)) => {
                info!("signaling connected");
                // A fresh session: what was queued for the old one is void; (re)join.
                {
                    let mut inner = shared.lock();
                    inner.clear_signals();
                    inner.signaling_up = true;
                }
                shared.with_swarm(|s, now| s.start(now));
                let end = pump(&shared, &mut ws).await;
                shared.lock().signaling_up = false;
                match end {
                    PumpEnd::Closed => {
                        ws.close().await;
                        return;
                    }
                    PumpEnd::Lost(why) => {
                        warn!(%why, "signaling connection lost; peer links stay up while reconnecting");
                        Transport::Lost(why)
                    }
                }
            }
            Some(Err(ConnectError::Unauthorized)) => {
                warn!("the signaling server refused the token");
                Transport::Unauthorized
            }
            Some(Err(ConnectError::Failed(e))) => {
                warn!(error = %e, "signaling connection failed");
                Transport::AttemptFailed(e)
            }
            None => return,
        };
        match shared.with_swarm(|s, now| s.handle_transport(now, report)) {
            Next::Stop => return,
            Next::Proceed => {}
            Next::AwaitToken => {
                debug!("signaling: waiting for a new token");
                until_new_token(&shared, version).await;
            }
            Next::RetryAfter(wait) => {
                debug!("signaling: retrying in {wait:?}");
                // Wait out the backoff, unless the swarm is closed meanwhile.
                future::or(shared.clock.sleep(wait), until_closed(&shared)).await;
            }
        }
    }
}

/// Why [`pump`] returned.
enum PumpEnd {
    /// The swarm was closed and its `close` frame sent.
    Closed,
    /// The socket failed, ended or fell silent.
    Lost(String),
}

/// Moves frames until the socket fails or falls silent, or the swarm is closed and its
/// `close` frame was sent.
async fn pump(shared: &Shared, ws: &mut Socket) -> PumpEnd {
    enum PumpWake {
        Outgoing,
        Incoming(Option<Result<Frame, String>>),
        Silent(Duration),
    }
    // Only where pings are visible: a quiet room is otherwise indistinguishable from a dead
    // socket.
    let silence = shared
        .lock()
        .swarm
        .config()
        .signaling_silence_timeout
        .filter(|_| SEES_PINGS);
    let mut last_heard = shared.clock.now();
    loop {
        // Send everything queued first.
        loop {
            let (msg, closed) = {
                let mut inner = shared.lock();
                (inner.take_signal(), inner.swarm.is_closed())
            };
            match msg {
                Some(msg) => {
                    if let Err(e) = ws.feed(encode(&msg)).await {
                        debug!(error = %e, "signaling socket error");
                        return PumpEnd::Lost(e);
                    }
                }
                None => {
                    if let Err(e) = ws.flush().await {
                        debug!(error = %e, "signaling socket error");
                        return PumpEnd::Lost(e);
                    }
                    if closed {
                        return PumpEnd::Closed;
                    }
                    break;
                }
            }
        }
        let outgoing = async {
            wait_signal(shared).await;
            PumpWake::Outgoing
        };
        let incoming = async { PumpWake::Incoming(ws.next().await) };
        let silent = async {
            match silence {
                Some(limit) => {
                    shared.clock.sleep_until(last_heard + limit).await;
                    PumpWake::Silent(limit)
                }
                None => future::pending().await,
            }
        };
        let wake = future::or(outgoing, future::or(incoming, silent)).await;
        if matches!(wake, PumpWake::Incoming(Some(Ok(_)))) {
            last_heard = shared.clock.now();
        }
        match wake {
            PumpWake::Outgoing => {}
            PumpWake::Incoming(Some(Ok(Frame::Text(text)))) => match decode_server(&text) {
                Ok(msg) => shared.with_swarm(|s, now| s.handle_signal(now, msg)),
                Err(e) => warn!(error = %e, "undecodable frame from the signaling server"),
            },
            PumpWake::Incoming(Some(Ok(Frame::Closed(reason)))) => {
                debug!(%reason, "signaling server closed the socket");
                return PumpEnd::Lost(format!("the server closed the socket: {reason}"));
            }
            PumpWake::Incoming(Some(Ok(Frame::Other))) => {}
            PumpWake::Incoming(Some(Err(e))) => {
                debug!(error = %e, "signaling socket error");
                return PumpEnd::Lost(e);
            }
            PumpWake::Incoming(None) => return PumpEnd::Lost("the socket ended".into()),
            PumpWake::Silent(limit) => {
                return PumpEnd::Lost(format!("nothing from the server for {limit:?}"));
            }
        }
    }
}
