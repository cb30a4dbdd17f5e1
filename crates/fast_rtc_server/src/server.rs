//! The async shell around [`Hub`]: axum routes, one task per socket, one owner task.
//!
//! Socket tasks only move frames: they forward what arrives to the owner task over a bounded
//! channel and write what the owner queues for them. The owner task (`owner.rs`, or in cluster
//! mode [`cluster`](crate::cluster)'s node task) is the only one that touches the [`Hub`]; it
//! makes no protocol decisions of its own beyond dropping sockets that cannot keep up. Routes:
//!
//! - `GET /ws?token=…` — the signaling WebSocket. The token is checked before the upgrade
//!   (HTTP 401 if missing, invalid or expired; 429 when its identity or its source address
//!   already holds its most sockets, [`ConnectionLimits`]; 503 when the server is at its
//!   connection limit). A socket that has not joined a room within
//!   [`ConnectionLimits::init_timeout`] is closed (1008 `init_timeout`).
//! - `GET /healthz` — `ok`.
//! - `GET /metrics` — Prometheus metrics in OpenMetrics text format.
//!
//! Connections are accepted by the shell's own loop (`accept.rs`): before the upgrade each one
//! has a TLS-handshake and a header-read deadline and counts against the pre-authentication cap
//! ([`ConnectionLimits::max_preauth`]).
//!
//! An embedding program can also read one room's state through [`ServerHandle::room`] (a
//! [`RoomSnapshot`]: each member's parked offers, waiting joiners and links), e.g. for leak
//! checks; like `/metrics`, it asks the owner task, which copies it from the [`Hub`].

use crate::accept::Acceptor;
use crate::admin::{AdminConfig, AdminState};
use crate::admission::{Revocations, SocketCaps, Source, TokenKey};
use crate::auth::{AuthError, Authenticator};
use crate::cluster::ClusterConfig;
use crate::hub::{ConnId, Hub, Identity, RoomSnapshot, SocketCloseReason};
use crate::ice::{IceConfig, IceIssuer};
use crate::limits::ConnectionLimits;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::owner::{self, Event, Outbound, now};
use crate::queue;
use crate::tls::TlsConfig;
use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fast_rtc_protocol::{RoomId, ServerMsg, encode};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// WebSocket close code for "going away" (server shutdown), RFC 6455 §7.4.1.
const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code for "policy violation" (a client that does not read its frames).
const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code for "normal closure".
const CLOSE_NORMAL: u16 = 1000;
/// WebSocket close code for a member an operator removed (the admin API's kick): this
/// project's, in the private range 4000-4999.
pub const CLOSE_KICKED: u16 = 4001;
/// How long a kicked member's token stays revoked when its [`Authenticator`] cannot tell when
/// it expires.
const UNKNOWN_EXPIRY_REVOCATION: Duration = Duration::from_secs(24 * 3600);
/// Read buffer per socket; larger frames are read in several chunks.
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Frames written to one socket per flush at most, when several are queued.
const WRITE_BATCH: usize = 64;
/// Events queued for the owner task at most. Bounded: socket tasks wait when the owner is
/// behind, which slows their reads.
const EVENT_QUEUE: usize = 4096;

/// How the server runs, beyond the protocol [`Limits`].
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Protocol limits enforced by the hub.
    pub limits: Limits,
    /// Bounds on connections before authentication and on sockets after it (deadlines,
    /// caps per identity and per source, bytes queued per socket).
    pub connections: ConnectionLimits,
    /// How often the server pings each socket. A socket that has sent nothing (no pong, no
    /// frame) for two intervals is dropped, and its member leaves the room.
    pub ping_interval: Duration,
    /// Open sockets at most; further upgrades get HTTP 503.
    pub max_connections: usize,
    /// Frames queued for one socket at most. A socket that falls this far behind is dropped
    /// (close code 1008) rather than letting its queue grow.
    pub outbound_queue: usize,
    /// How long one write to a socket may take before the socket is dropped.
    pub write_timeout: Duration,
    /// Serve TLS (`wss://`) with this certificate and key; `None` (the default) serves plain
    /// `ws://`, e.g. behind a TLS proxy.
    pub tls: Option<TlsConfig>,
    /// Share rooms with other instances over Redis ([`crate::cluster`]); `None` (the default)
    /// holds every room in this process.
    pub cluster: Option<ClusterConfig>,
    /// Serve the admin API ([`crate::admin`]: `/metrics`, `/healthz`, `POST /kick`) on a
    /// listener of its own with its own bearer secret; `/metrics` then leaves the signaling
    /// listener. `None` (the default): no admin API, `/metrics` on the signaling listener.
    pub admin: Option<AdminConfig>,
    /// The STUN/TURN servers handed to each member in `joined` (and refreshed before minted
    /// TURN credentials expire), and the built-in STUN server ([`crate::ice`],
    /// [`crate::stun`]). The default hands out none. In cluster mode each instance mints for
    /// the members connected to it.
    pub ice: IceConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            connections: ConnectionLimits::default(),
            ping_interval: Duration::from_secs(15),
            max_connections: 10_000,
            outbound_queue: 1024,
            write_timeout: Duration::from_secs(10),
            tls: None,
            cluster: None,
            admin: None,
            ice: IceConfig::default(),
        }
    }
}

/// A signaling server: configuration plus an [`Authenticator`].
pub struct Server<A> {
    config: ServerConfig,
    auth: A,
    /// The built-in STUN server's socket, bound by the caller ([`Server::with_stun_socket`]).
    stun_socket: Option<std::net::UdpSocket>,
    /// The admin listener, bound by the caller ([`Server::with_admin_listener`]).
    admin_listener: Option<std::net::TcpListener>,
}

/// A server running on the current tokio runtime, from [`Server::spawn`].
pub struct ServerHandle {
    addr: SocketAddr,
    /// Whether it serves TLS.
    secure: bool,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    /// Where the built-in STUN server answers, if it runs.
    stun_addr: Option<SocketAddr>,
    /// Where the admin API listens, if it runs.
    admin_addr: Option<SocketAddr>,
    /// The owner task's inbox, weak so that the handle does not keep the owner alive.
    events: mpsc::WeakSender<Event>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The UDP address the built-in STUN server answers on
    /// ([`IceConfig::stun_listen`](crate::ice::IceConfig::stun_listen)), if it runs.
    pub fn stun_addr(&self) -> Option<SocketAddr> {
        self.stun_addr
    }

    /// The address of the admin API ([`ServerConfig::admin`]), if it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The signaling WebSocket URL, without the token: `ws://ADDR/ws`, or `wss://ADDR/ws` with
    /// [`ServerConfig::tls`].
    pub fn ws_url(&self) -> String {
        let scheme = if self.secure { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// A copy of `room`'s state as the server holds it now (members in join order, each with its
    /// parked offers, the joiners it owes an offer and its links), or `None` if nobody is in
    /// the room or the server has stopped. Read-only: it changes nothing in the room, and it
    /// waits behind the frames already queued for the owner task.
    pub async fn room(&self, room: &RoomId) -> Option<RoomSnapshot> {
        let events = self.events.upgrade()?;
        let (reply, answer) = oneshot::channel();
        events
            .send(Event::Snapshot {
                room: room.clone(),
                reply,
            })
            .await
            .ok()?;
        answer.await.ok().flatten()
    }

    /// Stops accepting, closes every socket with code 1001 and waits for the server to finish.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.stop.cancel();
        self.task
            .await
            .map_err(|e| std::io::Error::other(format!("server task failed: {e}")))?
    }
}

struct Shared<A> {
    config: ServerConfig,
    auth: A,
    events: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
    ice: IceIssuer,
    slots: Arc<Semaphore>,
    /// Open sockets per identity and per source.
    caps: Mutex<SocketCaps>,
    /// The token each open socket connected with, and until when it is valid: what a kick
    /// revokes.
    tokens: Mutex<HashMap<ConnId, (TokenKey, SystemTime)>>,
    /// Tokens of kicked members, refused until they expire.
    revoked: Mutex<Revocations>,
    next_conn: AtomicU64,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl<A: Authenticator> Server<A> {
    /// A server with `config` that admits whoever `auth` accepts.
    pub fn new(config: ServerConfig, auth: A) -> Self {
        Server {
            config,
            auth,
            stun_socket: None,
            admin_listener: None,
        }
    }

    /// Runs the built-in STUN server on `socket` (bound by the caller, e.g. to print its
    /// address before serving) instead of binding
    /// [`StunListen::addr`](crate::ice::StunListen::addr). Only used when
    /// [`IceConfig::stun_listen`](crate::ice::IceConfig::stun_listen) is set.
    pub fn with_stun_socket(mut self, socket: std::net::UdpSocket) -> Self {
        self.stun_socket = Some(socket);
        self
    }

    /// Serves the admin API on `listener` (bound by the caller, e.g. to print its address
    /// before serving) instead of binding [`AdminConfig::listen`]. Only used when
    /// [`ServerConfig::admin`] is set.
    pub fn with_admin_listener(mut self, listener: std::net::TcpListener) -> Self {
        self.admin_listener = Some(listener);
        self
    }

    /// Binds `addr` and runs the server on the current tokio runtime until
    /// [`ServerHandle::shutdown`].
    pub async fn spawn(mut self, addr: SocketAddr) -> std::io::Result<ServerHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        if let (Some(stun), None) = (&self.config.ice.stun_listen, &self.stun_socket) {
            self.stun_socket = Some(std::net::UdpSocket::bind(stun.addr)?);
        }
        let stun_addr = match &self.stun_socket {
            Some(socket) if self.config.ice.stun_listen.is_some() => Some(socket.local_addr()?),
            _ => None,
        };
        if let (Some(admin), None) = (&self.config.admin, &self.admin_listener) {
            self.admin_listener = Some(std::net::TcpListener::bind(admin.listen)?);
        }
        let admin_addr = match &self.admin_listener {
            Some(l) if self.config.admin.is_some() => Some(l.local_addr()?),
            _ => None,
        };
        let secure = self.config.tls.is_some();
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let weak = events.downgrade();
        let task = tokio::spawn(self.serve_on(
            listener,
            async move { signal.cancelled().await },
            (events, events_rx),
        ));
        Ok(ServerHandle {
            addr,
            secure,
            stop,
            task,
            stun_addr,
            admin_addr,
            events: weak,
        })
    }

    /// Serves on `listener` until `shutdown` completes, then closes every socket with code 1001
    /// ("going away") and returns once they are closed (at most 5 s later). With
    /// [`ServerConfig::tls`], every connection is TLS.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_on(listener, shutdown, mpsc::channel(EVENT_QUEUE))
            .await
    }

    /// [`Server::serve`] with the owner task's inbox made by the caller.
    async fn serve_on(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        (events, events_rx): (mpsc::Sender<Event>, mpsc::Receiver<Event>),
    ) -> std::io::Result<()> {
        let stop = CancellationToken::new();
        let tls = self.config.tls.clone();
        self.config
            .ice
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let metrics = Arc::new(if self.config.cluster.is_some() {
            Metrics::for_cluster()
        } else {
            Metrics::new()
        });
        let tracker = TaskTracker::new();
        match &self.config.cluster {
            Some(cluster) => {
                let client = cluster
                    .client()
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                tracker.spawn(crate::cluster::node::run(
                    events_rx,
                    self.config.limits.clone(),
                    metrics.clone(),
                    cluster.clone(),
                    client,
                ));
            }
            None => {
                // One hub owns every room here: members that ask may resume their session
                // (the cluster's owners do not offer it).
                let mut hub = Hub::new(self.config.limits.clone());
                hub.enable_resumption(owner::random_resume_token);
                tracker.spawn(owner::run(events_rx, hub, metrics.clone()));
            }
        }

        let stun_port = match &self.config.ice.stun_listen {
            Some(stun) => {
                let socket = match self.stun_socket {
                    Some(socket) => socket,
                    None => std::net::UdpSocket::bind(stun.addr)?,
                };
                socket.set_nonblocking(true)?;
                let socket = tokio::net::UdpSocket::from_std(socket)?;
                let port = socket.local_addr()?.port();
                tracker.spawn(crate::stun::run(
                    socket,
                    stun.rate_per_second,
                    stun.burst,
                    metrics.clone(),
                    stop.clone(),
                ));
                Some(port)
            }
            None => None,
        };
        let ice = IceIssuer::new(&self.config.ice, stun_port);
        let connection_limits = self.config.connections.clone();
        let write_timeout = self.config.write_timeout;
        let accept_metrics = metrics.clone();
        let shared = Arc::new(Shared {
            ice,
            slots: Arc::new(Semaphore::new(self.config.max_connections)),
            caps: Mutex::new(SocketCaps::new(
                connection_limits.max_sockets_per_identity,
                connection_limits.max_sockets_per_source,
            )),
            tokens: Mutex::new(HashMap::new()),
            revoked: Mutex::new(Revocations::default()),
            config: self.config,
            auth: self.auth,
            events,
            metrics,
            next_conn: AtomicU64::new(1),
            stop: stop.clone(),
            tracker: tracker.clone(),
        });
        let admin = match shared.config.admin.clone() {
            Some(config) => {
                let listener = match self.admin_listener {
                    Some(listener) => listener,
                    None => std::net::TcpListener::bind(config.listen)?,
                };
                listener.set_nonblocking(true)?;
                let listener = TcpListener::from_std(listener)?;
                if let Ok(addr) = listener.local_addr() {
                    info!(%addr, "admin API listening");
                }
                let revoker = shared.clone();
                let app = crate::admin::router(AdminState {
                    secret: config.secret,
                    events: shared.events.clone(),
                    metrics: shared.metrics.clone(),
                    revoke: Arc::new(move |conn| revoke_token(&revoker, conn)),
                });
                Some((app, listener))
            }
            None => None,
        };
        let mut app = Router::new()
            .route("/ws", get(ws_route::<A>))
            .route("/healthz", get(|| async { "ok" }));
        // With an admin listener, the metrics are served there only.
        if admin.is_none() {
            app = app.route("/metrics", get(metrics_route::<A>));
        }
        let app = app.with_state(shared);
        if let Some((app, listener)) = admin {
            let acceptor = Acceptor {
                app,
                tls: None,
                limits: connection_limits.clone(),
                write_timeout,
                metrics: accept_metrics.clone(),
                tracker: tracker.clone(),
            };
            tracker.spawn(acceptor.run(listener, stop.clone()));
        }

        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "fast-rtc signaling server listening");
        }
        let graceful = stop.clone();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                () = graceful.cancelled() => {}
            }
            info!("shutting down: closing every socket");
            graceful.cancel();
        };
        let acceptor = Acceptor {
            app,
            tls,
            limits: connection_limits,
            write_timeout,
            metrics: accept_metrics,
            tracker: tracker.clone(),
        };
        tokio::join!(acceptor.run(listener, stop.clone()), shutdown);
        let result = Ok(());
        stop.cancel();
        tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
            .await
            .is_err()
        {
            warn!("sockets still open 5 s after shutdown; exiting anyway");
        }
        result
    }
}

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
}

async fn ws_route<A: Authenticator>(
    State(shared): State<Arc<Shared<A>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let identity = match &query.token {
        None => Err(AuthError::Missing),
        Some(token) => shared.auth.authenticate(token).await,
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(e) => {
            shared.metrics.refuse(match e {
                AuthError::Missing => "missing_token",
                AuthError::Expired => "expired_token",
                _ => "bad_token",
            });
            debug!(error = %e, "refused upgrade");
            return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    // A token accepted above is present.
    let token = query.token.as_deref().unwrap_or_default();
    let key = TokenKey::of(token);
    let revoked = shared
        .revoked
        .lock()
        .map(|r| r.is_revoked(&key, owner::wall_clock()))
        .unwrap_or(true);
    if revoked {
        shared.metrics.refuse("revoked_token");
        debug!(user = %identity.user_id, "refused upgrade: revoked token");
        return (
            StatusCode::UNAUTHORIZED,
            "this token was revoked: its member was removed by an operator",
        )
            .into_response();
    }
    let expires = shared
        .auth
        .expiry(token)
        .unwrap_or_else(|| owner::wall_clock() + UNKNOWN_EXPIRY_REVOCATION);
    let source = Source::of(peer.ip());
    let capped = match shared.caps.lock() {
        Ok(mut caps) => caps.open(&identity.user_id, source),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if let Err(refusal) = capped {
        shared.metrics.refuse(refusal.as_str());
        debug!(user = %identity.user_id, %peer, error = %refusal, "refused upgrade");
        return (StatusCode::TOO_MANY_REQUESTS, refusal.to_string()).into_response();
    }
    // Counted from here: released when the socket task ends, or if the upgrade never happens.
    let capped = CapGuard {
        shared: shared.clone(),
        user: identity.user_id.clone(),
        source,
    };
    let Ok(slot) = shared.slots.clone().try_acquire_owned() else {
        shared.metrics.refuse("server_full");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "server is at its connection limit",
        )
            .into_response();
    };
    let conn = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    // The host the member used, to name the built-in STUN server after it (crate::ice).
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let max = shared.config.limits.transport_max_bytes();
    let task_shared = shared.clone();
    // Frames are small: a small read buffer (tungstenite's default is 128 KiB per socket), eager
    // writes, and a write buffer that holds any two frames the server sends.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(shared.config.limits.write_buffer_bytes())
        .on_upgrade(move |socket| {
            let tracker = task_shared.tracker.clone();
            tracker.track_future(async move {
                if let Ok(mut tokens) = task_shared.tokens.lock() {
                    tokens.insert(conn, (key, expires));
                }
                socket_task(socket, conn, identity, host, &task_shared).await;
                if let Ok(mut tokens) = task_shared.tokens.lock() {
                    tokens.remove(&conn);
                }
                drop(slot);
                drop(capped);
            })
        })
}

/// Revokes the token socket `conn` connected with, until it expires (a kick).
fn revoke_token<A>(shared: &Shared<A>, conn: ConnId) {
    let Some((key, until)) = shared
        .tokens
        .lock()
        .ok()
        .and_then(|t| t.get(&conn).copied())
    else {
        return;
    };
    if let Ok(mut revoked) = shared.revoked.lock() {
        revoked.revoke(key, until, owner::wall_clock());
    }
}

/// One socket counted in [`Shared::caps`]; uncounted when dropped.
struct CapGuard<A> {
    shared: Arc<Shared<A>>,
    user: fast_rtc_protocol::UserId,
    source: Source,
}

impl<A> Drop for CapGuard<A> {
    fn drop(&mut self) {
        if let Ok(mut caps) = self.shared.caps.lock() {
            caps.close(&self.user, self.source);
        }
    }
}

async fn metrics_route<A: Authenticator>(State(shared): State<Arc<Shared<A>>>) -> Response {
    crate::admin::metrics_text(&shared.events, &shared.metrics).await
}

/// Moves frames between one socket and the owner task; decides nothing about the protocol.
/// It adds the member's ICE servers to its `joined` frame, minted here ([`IceIssuer`]) so that
/// in cluster mode the instance the member is connected to mints them, and after `joined`
/// sends fresh ones every [`IceIssuer::refresh_every`].
async fn socket_task<A>(
    socket: WebSocket,
    conn: ConnId,
    identity: Identity,
    host: Option<String>,
    shared: &Shared<A>,
) {
    let config = &shared.config;
    let user = identity.user_id.clone();
    let (tx, mut rx) = queue::channel(config.outbound_queue, config.connections.max_queued_bytes);
    debug!(conn = conn.0, user = %identity.user_id, "socket open");
    if shared
        .events
        .send(Event::Connected { conn, identity, tx })
        .await
        .is_err()
    {
        return;
    }
    let (mut sink, mut stream) = socket.split();
    let period = config.ping_interval.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::from_std(now() + period), period);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = now();
    // Whether the socket was lost (no pong, a write that failed or timed out: a path that
    // died) rather than ended (a close frame, the end of the stream or a read error, which is
    // what a killed client's kernel causes): a resumable member is held only then
    // (crate::hub#resuming-a-session).
    let mut abrupt = false;
    // When to send fresh ICE servers (armed by `joined`, with TURN only).
    let mut ice_refresh: Option<tokio::time::Instant> = None;
    // The socket must join a room (`joined` written) by then, or it is closed.
    let mut init_deadline = Some(tokio::time::Instant::from_std(
        now() + config.connections.init_timeout,
    ));

    let close: Option<(u16, &str)> = loop {
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => break Some((CLOSE_GOING_AWAY, "server shutting down")),
            out = rx.recv() => {
                // Write what is queued (up to a batch) with one flush.
                let mut batch = Vec::new();
                let mut next = out;
                let mut then_close = None;
                loop {
                    match next {
                        Some(Outbound::Msg(ServerMsg::Joined { user_id, resume_token, resumed, .. })) => {
                            init_deadline = None;
                            let ice_servers =
                                shared.ice.servers_for(&user, host.as_deref(), owner::wall_clock());
                            ice_refresh = shared
                                .ice
                                .refresh_every()
                                .map(|every| tokio::time::Instant::from_std(now() + every));
                            let msg = ServerMsg::Joined { user_id, ice_servers, resume_token, resumed };
                            batch.push(Message::Text(encode(&msg).into()));
                        }
                        Some(Outbound::Msg(msg)) => batch.push(Message::Text(encode(&msg).into())),
                        Some(Outbound::Close(SocketCloseReason::Replaced)) => {
                            then_close = Some(Some((CLOSE_NORMAL, "duplicate_identity")));
                            break;
                        }
                        Some(Outbound::Close(SocketCloseReason::Kicked)) => {
                            then_close = Some(Some((CLOSE_KICKED, "kicked")));
                            break;
                        }
                        Some(Outbound::Close(SocketCloseReason::Resumed)) => {
                            then_close = Some(Some((CLOSE_NORMAL, "resumed")));
                            break;
                        }
                        Some(Outbound::CloseWith(code, reason)) => {
                            then_close = Some(Some((code, reason)));
                            break;
                        }
                        // The owner dropped this socket because its queue was full.
                        None => {
                            then_close = Some(Some((CLOSE_POLICY, "too slow: frames were not read")));
                            break;
                        }
                    }
                    if batch.len() >= WRITE_BATCH {
                        break;
                    }
                    match rx.try_recv() {
                        Some(out) => next = Some(out),
                        None => break,
                    }
                }
                let mut frames = futures_util::stream::iter(batch.into_iter().map(Ok));
                match tokio::time::timeout(config.write_timeout, sink.send_all(&mut frames)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        abrupt = true;
                        break None;
                    }
                    Err(_) => {
                        shared.metrics.drop_socket("write_timeout");
                        abrupt = true;
                        break None;
                    }
                }
                if let Some(close) = then_close {
                    break close;
                }
            }
            frame = stream.next() => {
                last_heard = now();
                let event = match frame {
                    Some(Ok(Message::Text(text))) => Event::Text { conn, text },
                    Some(Ok(Message::Binary(bytes))) => Event::Binary { conn, len: bytes.len() },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(e)) => {
                        // Not `abrupt`: a killed client's kernel ends its socket with a FIN
                        // (an end without a closing handshake, an error here) or a reset:
                        // it leaves at once, as before.
                        debug!(conn = conn.0, error = %e, "socket error");
                        shared.metrics.drop_socket("transport_error");
                        break None;
                    }
                };
                if shared.events.send(event).await.is_err() {
                    break Some((CLOSE_GOING_AWAY, "server shutting down"));
                }
            }
            () = tokio::time::sleep_until(ice_refresh.unwrap_or_else(|| tokio::time::Instant::from_std(now()))), if ice_refresh.is_some() => {
                ice_refresh = shared
                    .ice
                    .refresh_every()
                    .map(|every| tokio::time::Instant::from_std(now() + every));
                let Some(ice_servers) =
                    shared.ice.servers_for(&user, host.as_deref(), owner::wall_clock())
                else {
                    continue;
                };
                let fresh = Message::Text(encode(&ServerMsg::IceServers { ice_servers }).into());
                debug!(conn = conn.0, "fresh ICE servers sent");
                let sent = tokio::time::timeout(config.write_timeout, sink.send(fresh)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    abrupt = true;
                    break None;
                }
            }
            () = tokio::time::sleep_until(init_deadline.unwrap_or_else(|| tokio::time::Instant::from_std(now()))), if init_deadline.is_some() => {
                debug!(conn = conn.0, "no room joined within the init timeout: closing the socket");
                shared.metrics.drop_socket("init_timeout");
                break Some((CLOSE_POLICY, "init_timeout: send init right after connecting"));
            }
            _ = ping.tick() => {
                if now().saturating_duration_since(last_heard) >= period * 2 {
                    info!(conn = conn.0, "no pong for two ping intervals: dropping the socket");
                    shared.metrics.drop_socket("ping_timeout");
                    abrupt = true;
                    break None;
                }
                let pinged = tokio::time::timeout(config.write_timeout, sink.send(Message::Ping(Default::default()))).await;
                if !matches!(pinged, Ok(Ok(()))) {
                    abrupt = true;
                    break None;
                }
            }
        }
    };
    // The member leaves first; the closing handshake must not delay the others' `leaveSwarm`.
    let _ = shared
        .events
        .send(Event::Disconnected { conn, abrupt })
        .await;
    let closing = async {
        match close {
            Some((code, reason)) => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
            }
            // The client closed, or the socket failed: flush tungstenite's close reply, if any.
            None => {
                let _ = sink.close().await;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
    debug!(conn = conn.0, "socket closed");
}
