//! The swarm's decisions, without sockets, timers or WebRTC: [`SwarmCore`].
//!
//! This module contains no networking code and never reads a clock: the caller passes the time
//! in. The same [`SwarmCore`] drives the native (webrtc-rs) and the browser (web-sys) backends; only
//! the carrying-out of [`PeerCommand`]s differs.
//!
//! # Methods
//!
//! - inputs: [`SwarmCore::start`], [`SwarmCore::handle_signal`] (frames from the signaling server),
//!   [`SwarmCore::handle_peer`] (what a backend reports about one RTCPeerConnection),
//!   [`SwarmCore::handle_timeout`];
//! - commands from the application: [`SwarmCore::send`], [`SwarmCore::broadcast`],
//!   [`SwarmCore::close_peer`], [`SwarmCore::close`]; voice ([`crate::media`]):
//!   [`SwarmCore::add_track`], [`SwarmCore::mute_track`], [`SwarmCore::remove_track`],
//!   [`SwarmCore::send_audio`];
//! - outputs: [`SwarmCore::poll_output`] (signaling frames to send, peer commands to carry out,
//!   events for the application) and [`SwarmCore::poll_timeout`] (when to call `handle_timeout`).
//!
//! **Drain contract**: after every input or command, call [`SwarmCore::poll_output`] until it
//! returns `None`, then [`SwarmCore::poll_timeout`]. Time must never go backwards; a spurious
//! `handle_timeout` is a no-op.
//!
//! # Peers and links
//!
//! A *link* is one RTCPeerConnection, named by its connection id. The application sees *peers*:
//! remote members by `userId`. Usually a peer has one link. After a signaling reconnect a second
//! link to the same peer may form; when it opens, the older one is closed quietly, so the
//! application sees [`SwarmEvent::Open`] when a peer gets its first open link and
//! [`SwarmEvent::Close`] when it loses its last.
//!
//! A `leaveSwarm` for a link whose `fast` channel is open is not acted on: the link itself tells
//! whether the peer is there (a `@fast/{"type":"close"}`, the channel closing, ICE failing). This
//! keeps links up while a member's signaling socket reconnects.
//!
//! # ICE restarts
//!
//! An open link whose ICE connection is lost (`disconnected`, or `failed`: a player's network
//! changed, a NAT forgot its mapping, a TURN allocation was lost) is not closed when its
//! remote takes restarts (it advertises [`crate::sdp::RESTART_ATTRIBUTE`]; every member of
//! this crate does unless [`SwarmConfig::restore_timeout`] is zero). Both ends report
//! [`SwarmEvent::Interrupted`] (an end that had not noticed the loss yet, when the remote's
//! restart sets its ICE `checking`). The link's offerer restarts ICE
//! ([`PeerCommand::RestartIce`]: fresh credentials and candidates, gathered with the swarm's
//! current ICE servers, so with fresh TURN credentials too) and sends the new offer on
//! the link's own connection id through the signaling server, which relays it like any
//! signal of a live link; the answerer answers it on the same connection, so the DTLS
//! session, the SCTP association, the channels, the tracks and the peer all stay. Only the
//! offerer restarts (no glare); it restarts again every [`SwarmConfig::restart_interval`]
//! once the previous restart was answered (or its answer is given up for lost, twice the
//! interval after the restart: the offer or answer went down with a signaling socket that
//! died), until ICE is connected again
//! ([`SwarmEvent::Restored`]) or [`SwarmConfig::restore_timeout`] ran out (the link closes
//! with [`CloseReason::RestoreTimeout`]). Reliable data sent meanwhile waits in SCTP and
//! arrives in order after the restore. A peer that does not take restarts (the JavaScript
//! reference client) is closed when ICE fails, as before ([`CloseReason::IceFailed`]). So
//! is a remote the server said left the room (`leaveSwarm`), as soon as its path is lost:
//! with its signaling gone it could not answer a restart (a killed process is reported
//! closed within the ICE `disconnected` timeout, not the restore timeout).
//!
//! # Resuming the signaling session
//!
//! A network change that kills the peer path often kills the signaling socket too; a
//! rejoin would be a new member to the server, whose peers get `leaveSwarm` and could no
//! longer relay a restart. So, unless [`SwarmConfig::resume_session`] is off, `init` asks for
//! a resumable session (`resume: ""`) and keeps the token of each `joined`; after a lost
//! socket the next `init` presents it. If the server resumes the session (`joined` with
//! `resumed`), this member is the same member to everyone: its parked offers, its links
//! and their restarts go on, the frames the server kept for it follow, nothing is churned.
//! If not (the grace ran out, a server without resumption), it is the rejoin of before:
//! parked offers closed and made afresh, links re-formed. While the session is known lost
//! ([`SignalingState::Reconnecting`]) restarts wait (their offer would be discarded with the
//! old socket's queue) and go as soon as it is joined again. The built-in client also pings
//! the server every [`SwarmConfig::signaling_ping_interval`] so that a dead socket is
//! found while the links can still be restored (`fast_rtc_server`'s hub docs: "Resuming a
//! session").
//!
//! # Handshake retries
//!
//! A link that fails before its `fast` channel opens (the handshake timeout, ICE `failed`,
//! `fast` closing, a backend failure: a DTLS handshake that gave up under loss) is retried by its offerer while
//! both members remain: after [`SwarmConfig::retry_backoff`], doubling per attempt, it makes
//! a fresh connection and offer (a new connection id) and sends it as a `retry` frame naming
//! the peer, which the server pairs at once (an `accept` to the peer, `offerAccepted` back)
//! instead of parking it. The application is told nothing meanwhile: it sees the peer open
//! once, or, after [`SwarmConfig::handshake_retries`] retries, closed once with the last
//! failure's reason. A `leaveSwarm` for the failed link stops the retries (the peer is
//! reported closed, [`CloseReason::RemoteLeft`]). The answering end has nothing to do: a
//! retry reaches it as a new `accept`, which every client (the JS one too) answers.
//!
//! # Files
//!
//! [`SwarmCore`] is one state machine whose `impl` is split by concern: this file holds the
//! struct, its getters, `start`, `handle_timeout`, `close` and the output queue; [`io`] its
//! inputs and outputs; `link.rs` one link's state; `handshake.rs` signaling frames, the
//! descriptions a member advertises, a link opening and closing; `peer_events.rs` what a backend
//! reports ([`SwarmCore::handle_peer`]); `data.rs` sending, queueing and large messages;
//! `fast_channel.rs` the `@fast/` control messages it sends and acts on; `restart.rs` keeping
//! open links through ICE restarts; `retry.rs` retrying failed handshakes; `tracks.rs` voice.

mod data;
mod fast_channel;
mod handshake;
pub mod io;
mod kick;
mod link;
mod peer_events;
mod restart;
mod resume;
mod retry;
mod tracks;

pub use io::{
    CloseReason, Fanout, IceState, LinkOrigin, Payload, PeerCommand, PeerEvent, PeerFailure,
    PeerInfo, Role, SdpKind, SendError, SwarmEvent, SwarmFault, SwarmOutput,
};

use crate::config::{IceServer, SwarmConfig};
use crate::control::Control;
use crate::ice::IceSource;
use crate::lifecycle::{Lifecycle, Next, SignalingState, Transport};
use crate::media::TrackState;
use fast_rtc_protocol::{ClientMsg, ConnectionId, ResumeToken, UserId};
use link::{Link, LinkState};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tracing::debug;
use web_time::Instant;

/// A fast-rtc swarm member's state machine. See the [module docs](self).
#[derive(Debug)]
pub struct SwarmCore {
    config: SwarmConfig,
    id_prefix: String,
    next_id: u64,
    links: HashMap<ConnectionId, Link>,
    /// This member's audio tracks, by [`TrackId`] (`None`: not added).
    local_tracks: Vec<Option<TrackState>>,
    /// Peers whose last open link closed while a newer link to them was still connecting (a
    /// signaling reconnect's replacement, whose other end opened first): the application was
    /// not told, and the reason is kept in case the replacement fails too.
    handover: HashMap<UserId, CloseReason>,
    /// Peers whose link failed before opening and is being retried ([`retry`]).
    retries: HashMap<UserId, retry::Retry>,
    out: VecDeque<SwarmOutput>,
    lifecycle: Lifecycle,
    /// The signaling server's ICE servers: its latest `joined` or `iceServers` frame's list
    /// (`None` before the first `joined`, or when it hands out none); see [`crate::ice`].
    server_ice: Option<Vec<IceServer>>,
    /// The pre-made offers wait for `joined` ([`crate::ice::offers_wait_for_joined`]).
    offers_await_joined: bool,
    /// This member's identity, from the server's latest `joined` ([`kick`]).
    me: Option<UserId>,
    /// The signaling session's resume token, from the latest `joined` ([`resume`]).
    resume_token: Option<ResumeToken>,
    /// A rejoin that tries to resume: whether the parked offers are stale is known at
    /// `joined` (kept if it resumed, else closed and parked afresh).
    parked_await_joined: bool,
    started: bool,
    closed: bool,
}

impl SwarmCore {
    /// A swarm for `config`. `id_prefix` makes this member's connection ids unique in the room
    /// (the shell passes a random string; ids are `{prefix}-{n}`).
    pub fn new(config: SwarmConfig, id_prefix: impl Into<String>) -> Self {
        SwarmCore {
            id_prefix: id_prefix.into(),
            next_id: 0,
            links: HashMap::new(),
            local_tracks: vec![None; config.audio_tracks.len()],
            handover: HashMap::new(),
            retries: HashMap::new(),
            out: VecDeque::new(),
            lifecycle: Lifecycle::new(config.reconnect.clone(), config.token.clone()),
            server_ice: None,
            offers_await_joined: false,
            me: None,
            resume_token: None,
            parked_await_joined: false,
            config,
            started: false,
            closed: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// Whether [`SwarmCore::close`] was called (or the signaling session failed).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The STUN/TURN servers a connection created now would use, and where they come from
    /// (see [`crate::ice`] for the precedence).
    pub fn ice_source(&self) -> IceSource {
        crate::ice::choose(&self.config.ice_servers, self.server_ice.as_deref()).0
    }

    /// The STUN/TURN servers a connection created now uses ([`SwarmCore::ice_source`] says
    /// whose they are). Their `Debug` hides TURN credentials.
    pub fn ice_servers(&self) -> &[IceServer] {
        crate::ice::choose(&self.config.ice_servers, self.server_ice.as_deref()).1
    }

    /// The signaling session's state (see [`crate::lifecycle`]).
    pub fn signaling_state(&self) -> &SignalingState {
        self.lifecycle.state()
    }

    /// What the shell's signaling transport did; returns what it does next (retry after a
    /// backoff, or stop). A failure that ends the session (a refused token, the retry budget
    /// spent) closes the swarm.
    pub fn handle_transport(&mut self, now: Instant, event: Transport) -> Next {
        if self.closed {
            return Next::Stop;
        }
        let (next, change) = self.lifecycle.transport(now, event);
        self.signaling_changed(change);
        next
    }

    /// The shell's signaling token changed (or was first set); it expires in `expires_in`
    /// if that is known. Ends a wait for a token ([`Next::AwaitToken`]) and schedules the
    /// next [`TokenRequest::Expiring`](crate::TokenRequest::Expiring).
    pub fn token_changed(&mut self, now: Instant, expires_in: Option<Duration>) {
        if !self.closed {
            self.lifecycle.token_changed(now, expires_in);
        }
    }

    fn signaling_changed(&mut self, change: Option<SignalingState>) {
        if let Some(request) = self.lifecycle.take_request() {
            debug!(?request, "asking for a signaling token");
            self.event(SwarmEvent::TokenRequested(request));
        }
        let Some(state) = change else { return };
        let failed = state.is_failed();
        debug!(?state, "signaling state");
        self.event(SwarmEvent::Signaling(state));
        if failed {
            self.close();
        }
    }

    /// Peers with an open link, with the link carrying each.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut best: HashMap<&UserId, (&ConnectionId, &Link)> = HashMap::new();
        for (id, l) in &self.links {
            if l.state != LinkState::Open {
                continue;
            }
            let Some(user) = &l.remote else { continue };
            match best.get(user) {
                Some((_, b)) if b.opened_at >= l.opened_at => {}
                _ => {
                    best.insert(user, (id, l));
                }
            }
        }
        let mut peers: Vec<PeerInfo> = best
            .into_values()
            .filter_map(|(id, l)| l.info(id))
            .collect();
        peers.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        peers
    }

    /// Links in any state (parked offers included), for diagnostics and leak checks.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Links that are this member's unclaimed pre-made offers.
    pub fn parked_offers(&self) -> usize {
        self.links
            .values()
            .filter(|l| l.state == LinkState::Parked)
            .count()
    }

    /// The next output, in order; `None` when there is nothing to do.
    pub fn poll_output(&mut self) -> Option<SwarmOutput> {
        self.out.pop_front()
    }

    /// When [`SwarmCore::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let signaling_up = self.signaling_up();
        self.links
            .values()
            .flat_map(|l| {
                [
                    l.deadline,
                    l.next_ping,
                    l.outage.map(|o| o.due(signaling_up)),
                ]
            })
            .chain([self.lifecycle.poll_timeout(), self.next_retry()])
            .flatten()
            .min()
    }

    /// The last measured round-trip time to `peer`, if any.
    pub fn rtt(&self, peer: &UserId) -> Option<Duration> {
        self.link_to(peer)
            .and_then(|id| self.links.get(&id))
            .and_then(|l| l.rtt)
    }

    /// Joins the room: sends `init` and creates `peer_buffer` pre-made offers. Calling it again
    /// (after the signaling connection was re-established) sends `init` again and tops the
    /// pre-made offers up to `peer_buffer`.
    pub fn start(&mut self, _now: Instant) {
        if self.closed {
            return;
        }
        let change = self.lifecycle.started();
        self.signaling_changed(change);
        let resume = self.init_resume();
        let resuming = resume.as_ref().is_some_and(|t| !t.is_request());
        self.signal(ClientMsg::Init {
            user_id: None,
            room_id: self.config.room_id.clone(),
            resume,
        });
        if self.started {
            if resuming {
                // Kept if the server resumes the session (it kept them), else stale: `joined`
                // says which.
                self.parked_await_joined = true;
                self.offers_await_joined = true;
                return;
            }
            self.close_parked();
        }
        self.started = true;
        if crate::ice::offers_wait_for_joined(&self.config.ice_servers) {
            // Made on `joined`, with the servers it hands out (crate::ice).
            self.offers_await_joined = true;
        } else {
            self.top_up_offers();
        }
    }

    /// A rejoin: the server forgot the offers parked with our old socket, so they can never be
    /// claimed. Closes them (fresh ones are parked next).
    fn close_parked(&mut self) {
        let stale: Vec<ConnectionId> = self
            .links
            .iter()
            .filter(|(_, l)| l.state == LinkState::Parked)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.links.remove(&id);
            self.command(PeerCommand::Close { id });
        }
    }

    /// Parks pre-made offers until `peer_buffer` of them are parked.
    fn top_up_offers(&mut self) {
        let parked = self.parked_offers();
        for _ in parked..self.config.peer_buffer {
            self.create_offerer();
        }
    }

    fn fresh_id(&mut self) -> ConnectionId {
        self.next_id += 1;
        ConnectionId::new(format!("{}-{}", self.id_prefix, self.next_id))
    }

    fn create_offerer(&mut self) {
        let id = self.fresh_id();
        let ice_servers = self.ice_servers().to_vec();
        let link = Link::new(
            &self.config,
            Role::Offerer,
            LinkOrigin::Offered,
            ice_servers.clone(),
        );
        self.links.insert(id.clone(), link);
        self.command(PeerCommand::Create {
            id,
            role: Role::Offerer,
            ice_servers,
        });
    }

    fn signal(&mut self, msg: ClientMsg) {
        self.out.push_back(SwarmOutput::Signal(msg));
    }

    fn command(&mut self, cmd: PeerCommand) {
        self.out.push_back(SwarmOutput::Command(cmd));
    }

    fn event(&mut self, ev: SwarmEvent) {
        self.out.push_back(SwarmOutput::Event(ev));
    }

    fn unexpected(&mut self, what: String) {
        debug!(%what, "unexpected signal");
        self.event(SwarmEvent::Fault(SwarmFault::UnexpectedSignal(what)));
    }

    /// Closes links whose handshake took longer than [`SwarmConfig::handshake_timeout`], pings
    /// open links whose ping is due, restarts ICE on interrupted links and closes those whose
    /// [`SwarmConfig::restore_timeout`] ran out ([ICE restarts](self#ice-restarts)), asks for a
    /// token about to expire, and fails a wait for a token that has run out.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let change = self.lifecycle.handle_timeout(now);
        self.signaling_changed(change);
        if self.closed {
            return;
        }
        let interval = self.config.ping_interval;
        let mut pings = Vec::new();
        for (id, l) in &mut self.links {
            if l.next_ping.is_some_and(|t| t <= now) {
                // Sequence numbers never repeat on a link, so a late pong cannot match a newer
                // ping; an unanswered ping is replaced and the RTT measures the newest one.
                l.ping_seq += 1;
                let n = l.ping_seq;
                l.ping_sent = Some((n, now));
                l.next_ping = Some(now + interval);
                pings.push((id.clone(), n));
            }
        }
        for (id, n) in pings {
            self.send_control(&id, &Control::Ping(n));
        }
        let expired: Vec<ConnectionId> = self
            .links
            .iter()
            .filter(|(_, l)| l.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.link_failed(now, &id, CloseReason::HandshakeTimeout);
        }
        self.restarts_due(now);
        self.retries_due(now);
    }

    /// The open link to `peer` (the newest, if there are two).
    pub fn link_to(&self, peer: &UserId) -> Option<ConnectionId> {
        self.links
            .iter()
            .filter(|(_, l)| l.state == LinkState::Open && l.remote.as_ref() == Some(peer))
            .max_by_key(|(_, l)| l.opened_at)
            .map(|(id, _)| id.clone())
    }

    /// Closes every link to `peer`, telling it. Returns whether there was one.
    pub fn close_peer(&mut self, peer: &UserId) -> bool {
        let ids: Vec<ConnectionId> = self
            .links
            .iter()
            .filter(|(_, l)| l.remote.as_ref() == Some(peer))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            self.close_link(id, CloseReason::Local, true);
        }
        !ids.is_empty()
    }

    /// Leaves the room: tells the server (`close`), tells every peer, closes every connection.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        if let Some(state) = self.lifecycle.fail(crate::lifecycle::FailReason::Closed) {
            self.event(SwarmEvent::Signaling(state));
        }
        if self.started {
            self.signal(ClientMsg::Close);
        }
        self.retries.clear();
        let ids: Vec<ConnectionId> = self.links.keys().cloned().collect();
        for id in &ids {
            self.close_link(id, CloseReason::Local, true);
        }
        self.closed = true;
    }
}
