//! An in-memory world for swarm cores: N [`Swarm`]s, the real signaling [`Hub`], a fake WebRTC
//! backend and a virtual clock. Nothing here opens a socket; every message is routed by
//! [`Net::drive`], with a configurable latency on both signaling and peer paths.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // picks the virtual clock's start

use fast_rtc_protocol::{ConnectionId, IceCandidate, ServerMsg, UserId};
use fast_rtc_server::Limits;
use fast_rtc_server::hub::{ConnId, Hub, Identity, Output, RoomGrant};
use fast_rtc_swarm_core::{
    ChannelId, IceState, Payload, PeerCommand, PeerEvent, PeerFailure, Role, SdpKind, SwarmConfig,
    SwarmCore, SwarmEvent, SwarmOutput,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

pub struct Member {
    pub user: UserId,
    pub swarm: SwarmCore,
    pub conn: ConnId,
    pub events: Vec<SwarmEvent>,
    pub signaling_up: bool,
}

/// Fake RTCPeerConnection state, per (member, connection id).
#[derive(Default, Debug)]
struct FakePc {
    role: Option<Role>,
    local_set: bool,
    remote_set: bool,
    closed: bool,
    open: bool,
}

enum Delivery {
    Signal(usize, ServerMsg),
    Peer(usize, ConnectionId, PeerEvent),
}

pub struct Net {
    pub now: Instant,
    pub hub: Hub,
    pub members: Vec<Member>,
    pcs: HashMap<(usize, ConnectionId), FakePc>,
    queue: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    next_conn: u64,
    /// One-way latency of the signaling path.
    pub signal_latency: Duration,
    /// One-way latency of the peer path (handshake and data).
    pub peer_latency: Duration,
    /// Extra time before a member's end of a new connection reports its channels open (one end
    /// of a link opening before the other, as on a loaded machine).
    pub open_delay: HashMap<usize, Duration>,
    /// Links (connection ids) whose handshake never completes.
    pub black_holes: HashSet<ConnectionId>,
    /// Whether no handshake completes at all (a path that loses every DTLS flight).
    pub black_hole_all: bool,
    /// Backend failures observed (a command the fake could not carry out).
    pub backend_errors: Vec<String>,
    /// Every command given to the backend, per member.
    pub commands: Vec<(usize, PeerCommand)>,
    /// Open links whose path is down ([`Net::interrupt`]): nothing crosses them, and only an
    /// ICE restart after [`Net::heal`] brings them back.
    pub cut: HashSet<ConnectionId>,
    /// Messages sent on a link while it was down, per link, in order: delivered when an ICE
    /// restart restores it (SCTP retransmits them).
    held: HashMap<ConnectionId, Vec<(usize, PeerEvent)>>,
}

impl Net {
    /// Alice, then Bob 50 ms later (claiming her pre-made offer), join with `config` and open
    /// their link within 200 ms: its id. Alice offered it.
    pub fn link_alice_and_bob(&mut self, config: SwarmConfig) -> ConnectionId {
        let a = self.join("alice", config.clone());
        self.run_for(Duration::from_millis(50));
        let b = self.join("bob", config);
        self.run_for(Duration::from_millis(200));
        assert_eq!(self.opens(a), vec![UserId::from("bob")]);
        assert_eq!(self.opens(b), vec![UserId::from("alice")]);
        self.members[a].swarm.link_to(&"bob".into()).unwrap()
    }

    /// How many ICE restarts member `member` was told to make.
    pub fn restarts(&self, member: usize) -> usize {
        self.commands
            .iter()
            .filter(|(m, c)| *m == member && matches!(c, PeerCommand::RestartIce { .. }))
            .count()
    }

    pub fn new() -> Self {
        Net {
            now: Instant::now(),
            hub: Hub::new(Limits::default()),
            members: Vec::new(),
            pcs: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            next_conn: 0,
            signal_latency: Duration::from_millis(5),
            peer_latency: Duration::from_millis(1),
            open_delay: HashMap::new(),
            black_holes: HashSet::new(),
            black_hole_all: false,
            backend_errors: Vec::new(),
            commands: Vec::new(),
            cut: HashSet::new(),
            held: HashMap::new(),
        }
    }

    /// Adds a member and starts it (connects to the hub, init, pre-made offers).
    pub fn join(&mut self, name: &str, config: SwarmConfig) -> usize {
        let i = self.members.len();
        let swarm = SwarmCore::new(config, name);
        self.members.push(Member {
            user: name.into(),
            swarm,
            conn: ConnId(0),
            events: Vec::new(),
            signaling_up: false,
        });
        self.connect_signaling(i);
        i
    }

    /// (Re)connects member `i`'s signaling socket and (re)starts its swarm.
    pub fn connect_signaling(&mut self, i: usize) {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        let identity = Identity {
            user_id: self.members[i].user.clone(),
            rooms: RoomGrant::Any,
        };
        self.hub.connect(self.now, conn, identity);
        self.members[i].conn = conn;
        self.members[i].signaling_up = true;
        self.members[i].swarm.start(self.now);
        self.flush(i);
    }

    /// Member `i`'s signaling socket is lost to a network change (the server sees an error or
    /// no pong, not an end: a resumable member is held).
    pub fn lose_signaling(&mut self, i: usize) {
        self.members[i].signaling_up = false;
        let conn = self.members[i].conn;
        self.hub.lost(self.now, conn);
        self.drain_hub();
    }

    /// Member `i`'s signaling socket drops (its peer links stay).
    pub fn drop_signaling(&mut self, i: usize) {
        self.members[i].signaling_up = false;
        let conn = self.members[i].conn;
        self.hub.disconnect(self.now, conn);
        self.drain_hub();
    }

    /// Member `i`'s process dies: signaling gone, every connection gone without a word.
    pub fn kill(&mut self, i: usize) {
        self.drop_signaling(i);
        let ids: Vec<ConnectionId> = self
            .pcs
            .keys()
            .filter(|(m, _)| *m == i)
            .map(|(_, id)| id.clone())
            .collect();
        for id in ids {
            self.fake_close(i, &id);
        }
        self.members[i].swarm = SwarmCore::new(SwarmConfig::new("dead"), "dead");
    }

    /// Link `id`'s path goes down (a network change): both ends see ICE `disconnected`.
    pub fn interrupt(&mut self, id: &ConnectionId) {
        self.cut.insert(id.clone());
        let ends: Vec<usize> = self
            .pcs
            .keys()
            .filter(|(_, cid)| cid == id)
            .map(|(m, _)| *m)
            .collect();
        for m in ends {
            let ev = PeerEvent::IceState(IceState::Disconnected);
            self.at(self.peer_latency, Delivery::Peer(m, id.clone(), ev));
        }
    }

    /// Link `id`'s path goes down, and only member `m`'s end notices it so far.
    pub fn interrupt_at(&mut self, m: usize, id: &ConnectionId) {
        self.cut.insert(id.clone());
        let ev = PeerEvent::IceState(IceState::Disconnected);
        self.at(self.peer_latency, Delivery::Peer(m, id.clone(), ev));
    }

    /// A path exists again for link `id`: its next ICE restart finds it.
    pub fn heal(&mut self, id: &ConnectionId) {
        self.cut.remove(id);
    }

    fn at(&mut self, delay: Duration, d: Delivery) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), d);
    }

    /// Routes everything member `i`'s swarm produced.
    pub fn flush(&mut self, i: usize) {
        while let Some(out) = self.members[i].swarm.poll_output() {
            match out {
                SwarmOutput::Signal(msg) => {
                    if self.members[i].signaling_up {
                        let conn = self.members[i].conn;
                        self.hub.handle_msg(self.now, conn, msg);
                        self.drain_hub();
                    }
                }
                SwarmOutput::Command(cmd) => {
                    self.commands.push((i, cmd.clone()));
                    self.backend(i, cmd);
                }
                SwarmOutput::Event(ev) => self.members[i].events.push(ev),
            }
        }
    }

    fn drain_hub(&mut self) {
        while let Some(out) = self.hub.poll() {
            if let Output::Send { to, msg } = out
                && let Some(m) = self
                    .members
                    .iter()
                    .position(|m| m.conn == to && m.signaling_up)
            {
                self.at(self.signal_latency, Delivery::Signal(m, msg));
            }
        }
    }

    fn other_end(&self, i: usize, id: &ConnectionId) -> Option<usize> {
        self.pcs
            .keys()
            .find(|(m, cid)| *m != i && cid == id)
            .map(|(m, _)| *m)
    }

    fn candidate(i: usize) -> IceCandidate {
        IceCandidate {
            candidate: format!("candidate:{i} 1 udp 1 127.0.0.1 {} typ host", 40000 + i),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }
    }

    /// A local description was set on member `i`'s connection `id`: report it, then one
    /// trickled candidate.
    fn describe(&mut self, i: usize, id: ConnectionId, kind: SdpKind) {
        let lat = self.peer_latency;
        let sdp = format!("{kind:?} from {i}");
        let desc = PeerEvent::LocalDescription { kind, sdp };
        self.at(lat, Delivery::Peer(i, id.clone(), desc));
        let candidate = PeerEvent::LocalCandidate(Some(Self::candidate(i)));
        self.at(lat, Delivery::Peer(i, id, candidate));
    }

    /// The fake WebRTC backend.
    fn backend(&mut self, i: usize, cmd: PeerCommand) {
        let lat = self.peer_latency;
        match cmd {
            PeerCommand::Create { id, role, .. } => {
                let pc = self.pcs.entry((i, id.clone())).or_default();
                pc.role = Some(role);
                if role == Role::Offerer {
                    pc.local_set = true;
                    self.describe(i, id.clone(), SdpKind::Offer);
                    self.at(lat, Delivery::Peer(i, id, PeerEvent::LocalCandidate(None)));
                }
            }
            PeerCommand::SetRemote { id, kind, .. } => {
                let Some(pc) = self.pcs.get_mut(&(i, id.clone())) else {
                    self.backend_errors
                        .push(format!("{i}: SetRemote on unknown {id}"));
                    return;
                };
                pc.remote_set = true;
                match kind {
                    SdpKind::Offer => {
                        if pc.open {
                            // A restart's offer on an open link: ICE checks afresh.
                            let ev = PeerEvent::IceState(IceState::Checking);
                            self.at(lat, Delivery::Peer(i, id.clone(), ev));
                        }
                        let Some(pc) = self.pcs.get_mut(&(i, id.clone())) else {
                            return;
                        };
                        pc.local_set = true;
                        self.describe(i, id.clone(), SdpKind::Answer);
                    }
                    SdpKind::Answer => {
                        // Both ends described: the connection comes up (ICE, DTLS, SCTP, DCEP).
                        if self.black_hole_all
                            || self.black_holes.contains(&id)
                            || self.cut.contains(&id)
                        {
                            return;
                        }
                        if pc.open {
                            // An ICE restart's answer on an open link with a path again: ICE
                            // connects; SCTP delivers what waited, in order.
                            let ends: Vec<usize> = self
                                .pcs
                                .keys()
                                .filter(|(_, cid)| *cid == id)
                                .map(|(m, _)| *m)
                                .collect();
                            for m in ends {
                                let ev = PeerEvent::IceState(IceState::Connected);
                                self.at(lat * 2, Delivery::Peer(m, id.clone(), ev));
                            }
                            for (m, ev) in self.held.remove(&id).unwrap_or_default() {
                                self.at(lat * 2, Delivery::Peer(m, id.clone(), ev));
                            }
                            return;
                        }
                        if let Some(j) = self.other_end(i, &id) {
                            for m in [i, j] {
                                self.pcs.get_mut(&(m, id.clone())).unwrap().open = true;
                                self.at(
                                    lat * 2,
                                    Delivery::Peer(
                                        m,
                                        id.clone(),
                                        PeerEvent::IceState(IceState::Connected),
                                    ),
                                );
                                let skew = self.open_delay.get(&m).copied().unwrap_or_default();
                                let ev = PeerEvent::ChannelOpen(ChannelId::FAST);
                                self.at(lat * 3 + skew, Delivery::Peer(m, id.clone(), ev));
                            }
                        }
                    }
                }
            }
            PeerCommand::OpenChannels { id } => {
                // The offerer's game channels open at both ends, with `fast` or after it.
                if let Some(j) = self.other_end(i, &id)
                    && self.pcs.get(&(i, id.clone())).is_some_and(|pc| pc.open)
                {
                    for m in [i, j] {
                        let channels = self.members[m].swarm.config().channels.len();
                        let skew = self.open_delay.get(&m).copied().unwrap_or_default();
                        for c in 1..=channels {
                            let ev = PeerEvent::ChannelOpen(ChannelId(c as u16));
                            self.at(lat * 3 + skew, Delivery::Peer(m, id.clone(), ev));
                        }
                    }
                }
            }
            PeerCommand::AddCandidate { id, .. } => match self.pcs.get(&(i, id.clone())) {
                Some(pc) if pc.remote_set => {}
                Some(_) => {
                    // What webrtc-rs does: add_ice_candidate fails before a remote description.
                    self.backend_errors
                        .push(format!("{i}: candidate before remote description on {id}"));
                    self.at(
                        lat,
                        Delivery::Peer(
                            i,
                            id,
                            PeerEvent::Failed(PeerFailure::Platform(
                                "candidate before description".into(),
                            )),
                        ),
                    );
                }
                None => self
                    .backend_errors
                    .push(format!("{i}: AddCandidate on unknown {id}")),
            },
            PeerCommand::Send {
                id,
                channel,
                payload,
            } => {
                let open = self
                    .pcs
                    .get(&(i, id.clone()))
                    .is_some_and(|pc| pc.open && !pc.closed);
                if !open {
                    self.backend_errors
                        .push(format!("{i}: send on a connection that is not open: {id}"));
                    return;
                }
                if let Some(j) = self.other_end(i, &id)
                    && self.pcs.get(&(j, id.clone())).is_some_and(|pc| !pc.closed)
                {
                    let ev = PeerEvent::Message { channel, payload };
                    if self.cut.contains(&id) {
                        self.held.entry(id).or_default().push((j, ev));
                    } else {
                        self.at(lat, Delivery::Peer(j, id, ev));
                    }
                }
            }
            // Audio is real-time and unordered with data: delivered at the link latency like
            // a message, to an open other end only (no codec here: bytes become samples).
            PeerCommand::SendAudio { id, track, packet } => {
                if let Some(j) = self.other_end(i, &id)
                    && self
                        .pcs
                        .get(&(j, id.clone()))
                        .is_some_and(|pc| pc.open && !pc.closed)
                {
                    let samples = packet.iter().map(|&b| i16::from(b)).collect();
                    self.at(
                        lat,
                        Delivery::Peer(j, id, PeerEvent::Audio { track, samples }),
                    );
                }
            }
            // A new offer with fresh credentials, answered on the same link.
            PeerCommand::RestartIce { id, .. } => {
                if self.pcs.get(&(i, id.clone())).is_some_and(|pc| pc.open) {
                    self.describe(i, id, SdpKind::Offer);
                } else {
                    self.backend_errors
                        .push(format!("{i}: ICE restart on a link that is not open: {id}"));
                }
            }
            PeerCommand::Close { id } => self.fake_close(i, &id),
        }
    }

    fn fake_close(&mut self, i: usize, id: &ConnectionId) {
        let was_open = match self.pcs.get_mut(&(i, id.clone())) {
            Some(pc) if !pc.closed => {
                pc.closed = true;
                pc.open
            }
            _ => return,
        };
        // SCTP tells the other end its channels closed.
        if was_open
            && let Some(j) = self.other_end(i, id)
            && self.pcs.get(&(j, id.clone())).is_some_and(|pc| !pc.closed)
        {
            self.at(
                self.peer_latency,
                Delivery::Peer(j, id.clone(), PeerEvent::ChannelClosed(ChannelId::FAST)),
            );
        }
    }

    /// Delivers everything due up to `until`, in time order; returns deliveries made.
    pub fn run_until(&mut self, until: Instant) -> usize {
        let mut n = 0;
        loop {
            let next_timer = self
                .members
                .iter()
                .filter_map(|m| m.swarm.poll_timeout())
                .min();
            let next_msg = self.queue.keys().next().map(|(t, _)| *t);
            let next = match (next_msg, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_msg == Some(next) {
                let key = *self.queue.keys().next().unwrap();
                let d = self.queue.remove(&key).unwrap();
                match d {
                    Delivery::Signal(m, msg) => {
                        if self.members[m].signaling_up {
                            self.members[m].swarm.handle_signal(self.now, msg);
                            self.flush(m);
                        }
                    }
                    Delivery::Peer(m, id, ev) => {
                        if self.pcs.get(&(m, id.clone())).is_some_and(|pc| !pc.closed) {
                            self.members[m].swarm.handle_peer(self.now, &id, ev);
                            self.flush(m);
                        }
                    }
                }
            } else {
                for m in 0..self.members.len() {
                    self.members[m].swarm.handle_timeout(self.now);
                    self.flush(m);
                }
            }
            n += 1;
            assert!(
                n < 1_000_000,
                "livelock: a million deliveries without going quiet"
            );
        }
        self.now = self.now.max(until);
        n
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    pub fn opens(&self, i: usize) -> Vec<UserId> {
        let mut v: Vec<UserId> = self.members[i]
            .events
            .iter()
            .filter_map(|e| match e {
                SwarmEvent::Open(p) => Some(p.user_id.clone()),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }

    pub fn closes(&self, i: usize) -> Vec<(UserId, fast_rtc_swarm_core::CloseReason)> {
        self.members[i]
            .events
            .iter()
            .filter_map(|e| match e {
                SwarmEvent::Close { peer, reason } => Some((peer.user_id.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn data(&self, i: usize) -> Vec<(UserId, ChannelId, Payload)> {
        self.members[i]
            .events
            .iter()
            .filter_map(|e| match e {
                SwarmEvent::Data {
                    from,
                    channel,
                    payload,
                    ..
                } => Some((from.clone(), *channel, payload.clone())),
                _ => None,
            })
            .collect()
    }

    /// Live (not closed) fake connections of member `i`.
    pub fn live_pcs(&self, i: usize) -> usize {
        self.pcs
            .iter()
            .filter(|((m, _), pc)| *m == i && !pc.closed)
            .count()
    }
}

/// A lone swarm "me" (no other member, no backend: its outputs are the test's to read) that
/// started and got `joined` at the returned time, with no ICE servers from the server.
pub fn joined(config: SwarmConfig) -> (SwarmCore, Instant) {
    let mut s = SwarmCore::new(config, "me");
    let now = Instant::now();
    s.start(now);
    s.handle_signal(
        now,
        ServerMsg::Joined {
            user_id: "me".into(),
            ice_servers: None,
            resume_token: None,
            resumed: false,
        },
    );
    (s, now)
}

/// [`joined`], then its pre-made offer (made at `joined`, since it has no ICE servers of its
/// own) claimed by "joiner": the offer's connection id. Outputs before the claim are read.
pub fn claimed_offer(config: SwarmConfig) -> (SwarmCore, ConnectionId, Instant) {
    let (mut s, now) = joined(config);
    let mut offer_id = None;
    while let Some(o) = s.poll_output() {
        if let SwarmOutput::Command(PeerCommand::Create { id, .. }) = o {
            offer_id = Some(id);
        }
    }
    let id = offer_id.expect("a pre-made offer");
    s.handle_signal(
        now,
        ServerMsg::OfferAccepted {
            id: id.clone(),
            user_id: "joiner".into(),
        },
    );
    (s, id, now)
}
