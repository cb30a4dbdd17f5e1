//! How a swarm is started: [`start`] on this build's backend, [`start_with`] on any backend
//! and clock, with the built-in WebSocket signaling client or a transport of your own
//! ([`Signaling`]).

use crate::backend::{DynBackend, EVENT_QUEUE, EventSender};
use crate::clock::Clock;
use crate::handle::SwarmHandle;
use crate::peer_loop::peer_loop;
use crate::platform::ws::TlsConnector;
use crate::platform::{BackendConfig, BackendError, SIGNALING_SCHEMES, SwarmDriver};
use crate::platform::{SwarmMedia, backend_with_media, random_u64};
use crate::shared::Shared;
use crate::websocket::websocket_loop;
use fast_rtc_swarm_core::{SwarmConfig, SwarmCore};
use futures_lite::future;

/// How the swarm reaches the signaling server. `Debug` prints the token as `<redacted>`.
#[derive(Clone)]
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

impl std::fmt::Debug for Signaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signaling::WebSocket { url, .. } => f
                .debug_struct("WebSocket")
                .field("url", url)
                .field("token", &"<redacted>")
                .finish(),
            Signaling::External => f.write_str("External"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::Signaling;

    #[test]
    fn debug_hides_the_token() {
        let s = Signaling::WebSocket {
            url: "ws://127.0.0.1:8787/ws".into(),
            token: "eyJhbGciOiJIUzI1NiJ9.secret-part".into(),
        };
        let text = format!("{s:?}");
        assert!(
            text.contains("127.0.0.1:8787") && text.contains("<redacted>"),
            "{text}"
        );
        assert!(!text.contains("secret-part"), "{text}");
    }
}
