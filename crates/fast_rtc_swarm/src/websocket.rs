//! The built-in WebSocket signaling client. The loop is the same
//! natively and in the browser; only the socket differs (`platform::ws`).
//!
//! The client connects to `URL?token=TOKEN` with TCP_NODELAY (a member writes several small
//! frames in a row; Nagle's algorithm would hold them for an ACK), joins, and pumps frames both
//! ways. If the socket drops (or, natively, hears nothing for
//! [`SwarmConfig::signaling_silence_timeout`]; it pings the server every
//! [`SwarmConfig::signaling_ping_interval`] so that a dead path shows), live peer links stay
//! up: the client reconnects with exponential backoff ([`ReconnectPolicy`](crate::ReconnectPolicy):
//! 250 ms doubling to 8 s) and resumes its session with the server's resume token
//! ([`fast_rtc_swarm_core::swarm#resuming-the-signaling-session`]): the same member, links
//! relayed and restarted as before. Where the server does not resume it, the client rejoins
//! under the same identity (the token's); the swarm parks fresh offers and the links re-form
//! underneath without the application seeing a close. The core decides when to
//! retry and when to give up ([`fast_rtc_swarm_core::lifecycle`]): a refused token, a full or forbidden room,
//! another session with this identity, or the retry budget spent end the swarm with a
//! [`FailReason`](crate::FailReason), reported as [`SwarmEvent::Signaling`](crate::SwarmEvent::Signaling).
//! Each attempt uses the latest token ([`SwarmHandle::set_token`]); after a refused token the
//! loop waits for a new one when the core says so ([`fast_rtc_swarm_core::lifecycle#tokens`]).

use crate::platform::SEES_PINGS;
use crate::platform::frame::{ConnectError, Frame};
use crate::platform::ws::{Socket, TlsConnector};
use crate::shared::{Shared, wait_signal};
use fast_rtc_protocol::{decode_server, encode};
use fast_rtc_swarm_core::lifecycle::{Next, Transport};
use futures_lite::future;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

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
/// when to try again ([`fast_rtc_swarm_core::lifecycle`]); this loop only waits and dials, with the latest
/// token ([`SwarmHandle::set_token`]).
pub(crate) async fn websocket_loop(shared: Arc<Shared>, url: String, tls: TlsConnector) {
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
        Ping,
    }
    // Only where pings are visible: a quiet room is otherwise indistinguishable from a dead
    // socket.
    let silence = shared
        .lock()
        .swarm
        .config()
        .signaling_silence_timeout
        .filter(|_| SEES_PINGS);
    // Ours to the server, so that a socket whose path died is found even when this member
    // has nothing to send (where pings can be sent).
    let ping_every = shared
        .lock()
        .swarm
        .config()
        .signaling_ping_interval
        .filter(|_| SEES_PINGS);
    let mut last_heard = shared.clock.now();
    let mut next_ping = ping_every.map(|every| last_heard + every);
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
        let ping = async {
            match next_ping {
                Some(at) => {
                    shared.clock.sleep_until(at).await;
                    PumpWake::Ping
                }
                None => future::pending().await,
            }
        };
        let wake = future::or(outgoing, future::or(incoming, future::or(silent, ping))).await;
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
            PumpWake::Ping => {
                if let Err(e) = ws.ping().await {
                    debug!(error = %e, "signaling socket error");
                    return PumpEnd::Lost(e);
                }
                next_ping = ping_every.map(|every| shared.clock.now() + every);
            }
        }
    }
}
