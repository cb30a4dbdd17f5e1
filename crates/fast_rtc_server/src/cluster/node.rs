//! The cluster-mode owner task: the [`Router`] for this instance's sockets, the [`Hub`] of the
//! rooms this instance owns, and the Redis side ([`bus`](super::bus), [`lease`](super::lease)).
//!
//! It takes the place of the single-process owner task (`owner.rs`) and, like it, is the only
//! task that touches the hub. Socket events go through the router; its forwards go to the local
//! hub when this instance owns the room, or are published to the owner's channel. Envelopes read
//! from this instance's channel are inputs for the rooms it owns (from other instances' sockets)
//! or frames for its own sockets. The hub's outputs go to local sockets directly, and to other
//! instances' sockets as envelopes.

use super::ClusterConfig;
use super::bus::{self, BusEvent, Publisher};
use super::error::ClusterError;
use super::lease::Leases;
use super::router::{Action, Router};
use super::wire::{self, Envelope, Input, MemberOutput, instance_channel};
use crate::hub::{ConnId, Hub, Identity, Output, RoomGrant, SocketCloseReason};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::owner::{Event, KickOutcome, Outbound, now};
use crate::queue::SocketTx;
use fast_rtc_protocol::{RoomId, ServerMsg, decode_server, encode};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// WebSocket close code "service restart": the room moved; the client reconnects and rejoins.
pub(crate) const CLOSE_REROUTE: u16 = 1012;
/// WebSocket close code "try again later": Redis is unreachable, no room can be joined now.
pub(crate) const CLOSE_UNAVAILABLE: u16 = 1013;

/// A room this instance owns.
struct Owned {
    /// When the lease was last taken or renewed (the time just before the command was sent).
    renewed: Instant,
    /// Since when nobody is in the room.
    empty_since: Option<Instant>,
}

/// Where a hub connection's socket is.
struct Peer {
    instance: String,
    conn: u64,
    room: RoomId,
}

struct Node {
    me: String,
    config: ClusterConfig,
    hub: Hub,
    router: Router,
    metrics: Arc<Metrics>,
    sockets: HashMap<ConnId, SocketTx<Outbound>>,
    /// Redis, while connected.
    leases: Option<Leases>,
    publisher: Option<Publisher>,
    reset: Arc<tokio::sync::Notify>,
    /// The owner of every room a local socket is joining or in.
    routes: HashMap<RoomId, String>,
    owned: HashMap<RoomId, Owned>,
    /// Hub connection of each (instance, socket) in an owned room, and back.
    hub_conns: HashMap<(String, u64), ConnId>,
    peers: HashMap<ConnId, Peer>,
    next_hub_conn: u64,
    /// Router actions still to carry out.
    pending: VecDeque<Action>,
    /// Envelopes still to publish, to these instances.
    outbox: VecDeque<(String, Envelope)>,
}

/// Runs the node until every socket task and the server are gone.
pub(crate) async fn run(
    mut events: mpsc::Receiver<Event>,
    limits: Limits,
    metrics: Arc<Metrics>,
    config: ClusterConfig,
    client: redis::Client,
) {
    let me = format!("{:016x}", rand::random::<u64>());
    info!(instance = %me, "cluster mode: rooms are shared over Redis");
    let stop = CancellationToken::new();
    let bus::Bus {
        events: mut bus_events,
        reset,
    } = bus::spawn(client, me.clone(), config.redis_timeout, stop.clone());
    let _stop_bus = stop.drop_guard();
    let mut node = Node {
        me,
        hub: Hub::new(limits.clone()),
        router: Router::new(limits),
        metrics,
        sockets: HashMap::new(),
        leases: None,
        publisher: None,
        reset,
        routes: HashMap::new(),
        owned: HashMap::new(),
        hub_conns: HashMap::new(),
        peers: HashMap::new(),
        next_hub_conn: 1,
        pending: VecDeque::new(),
        outbox: VecDeque::new(),
        config,
    };
    let tick = (node.hub.limits().max_offer_wait / 10).max(Duration::from_millis(10));
    let mut timeouts = tokio::time::interval(tick);
    timeouts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leases = tokio::time::interval((node.config.lease / 3).max(Duration::from_millis(10)));
    leases.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                node.socket_event(event);
            }
            bus = bus_events.recv() => {
                let Some(bus) = bus else { return };
                node.bus_event(bus).await;
            }
            _ = timeouts.tick() => {
                node.hub.handle_timeout(now());
                node.drain();
            }
            _ = leases.tick() => node.lease_tick().await,
        }
        node.process().await;
        node.flush().await;
    }
}

impl Node {
    fn socket_event(&mut self, event: Event) {
        match event {
            Event::Connected { conn, identity, tx } => {
                self.sockets.insert(conn, tx);
                self.router.connect(conn, identity);
            }
            Event::Text { conn, text } => {
                let actions = self.router.text(conn, text.as_str().to_owned());
                self.pending.extend(actions);
            }
            Event::Binary { conn, len } => {
                let actions = self.router.binary(conn, len);
                self.pending.extend(actions);
            }
            Event::Disconnected { conn, .. } => {
                self.sockets.remove(&conn);
                let actions = self.router.disconnect(conn);
                self.pending.extend(actions);
            }
            Event::SyncMetrics(done) => {
                self.metrics.sync(&self.hub);
                self.metrics.set_connections(self.sockets.len());
                let _ = done.send(());
            }
            Event::Snapshot { room, reply } => {
                let _ = reply.send(self.hub.room(&room));
            }
            Event::Kick { reply, .. } => {
                warn!("kick is not supported in cluster mode yet");
                let _ = reply.send(KickOutcome::Unsupported);
            }
        }
    }

    async fn bus_event(&mut self, event: BusEvent) {
        match event {
            BusEvent::Up {
                commands,
                publisher,
            } => {
                self.leases = Some(Leases::new(
                    commands,
                    self.me.clone(),
                    self.config.lease,
                    self.config.redis_timeout,
                ));
                self.publisher = Some(publisher);
            }
            BusEvent::Message(payload) => match wire::decode(&payload) {
                Ok(Envelope::ToOwner {
                    room,
                    from,
                    conn,
                    input,
                }) => {
                    self.owner_input(&room, &from, conn, input);
                    self.drain();
                }
                Ok(Envelope::ToMember { conn, output }) => self.member_output(ConnId(conn), output),
                Err(e) => {
                    warn!(error = %e, "ignoring a message on the instance channel that is not an envelope")
                }
            },
            BusEvent::Down(e) => self.lost_redis(&e).await,
        }
    }

    /// Redis is gone, or a command or publish failed: what other instances sent meanwhile may be
    /// lost, so every room this instance owns or routes to is dropped, and their members are
    /// sent to reconnect (they keep their peer links and join again once Redis is back).
    async fn lost_redis(&mut self, why: &ClusterError) {
        self.leases = None;
        self.publisher = None;
        let owned: Vec<RoomId> = self.owned.keys().cloned().collect();
        let routed: Vec<RoomId> = self.routes.keys().cloned().collect();
        if !owned.is_empty() || !routed.is_empty() {
            error!(error = %why, owned = owned.len(), routed = routed.len(),
                "lost Redis: dropping rooms; their members reconnect and rejoin when it is back");
        }
        for room in owned {
            self.drop_owned(&room).await;
        }
        for room in routed {
            self.evict(&room);
        }
    }

    /// Carries out the router's actions.
    async fn process(&mut self) {
        // Sockets whose join could not be routed: their later actions are dropped.
        let mut failed: HashSet<ConnId> = HashSet::new();
        while let Some(action) = self.pending.pop_front() {
            match action {
                Action::Reply { conn, msg } => self.send_local(conn, msg),
                Action::Forward { room, conn, input } => {
                    if failed.contains(&conn) {
                        continue;
                    }
                    let owner = match self.routes.get(&room) {
                        Some(owner) => owner.clone(),
                        None if matches!(input, Input::Connect { .. }) => {
                            match self.resolve(&room).await {
                                Ok(owner) => owner,
                                Err(e) => {
                                    warn!(conn = conn.0, %room, error = %e, "cannot route a join: closing the socket (1013)");
                                    failed.insert(conn);
                                    self.router.disconnect(conn);
                                    self.close_local(
                                        conn,
                                        Outbound::CloseWith(
                                            CLOSE_UNAVAILABLE,
                                            "signaling unavailable: try again later",
                                        ),
                                    );
                                    continue;
                                }
                            }
                        }
                        // The room was evicted meanwhile; its sockets are closed.
                        None => continue,
                    };
                    if owner == self.me {
                        let me = self.me.clone();
                        self.owner_input(&room, &me, conn.0, input);
                        self.drain();
                    } else {
                        let envelope = Envelope::ToOwner {
                            room,
                            from: self.me.clone(),
                            conn: conn.0,
                            input,
                        };
                        self.outbox.push_back((owner, envelope));
                    }
                }
            }
        }
    }

    /// The owner of `room`, taking it if nobody owns it; remembered in `routes`.
    async fn resolve(&mut self, room: &RoomId) -> Result<String, ClusterError> {
        let leases = self.leases.as_mut().ok_or(ClusterError::Disconnected)?;
        let asked = now();
        let owner = match leases.owner_or_take(room).await {
            Ok(owner) => owner,
            Err(e) => {
                self.reset.notify_one();
                return Err(e);
            }
        };
        if owner == self.me {
            self.owned.entry(room.clone()).or_insert(Owned {
                renewed: asked,
                empty_since: None,
            });
            info!(%room, "took the room");
        }
        self.routes.insert(room.clone(), owner.clone());
        Ok(owner)
    }

    /// Publishes the outbox, in order.
    async fn flush(&mut self) {
        while let Some((instance, envelope)) = self.outbox.pop_front() {
            let Some(publisher) = &self.publisher else {
                // Disconnected: the rooms were dropped and their sockets closed.
                self.outbox.clear();
                return;
            };
            if publisher
                .publish(instance_channel(&instance), wire::encode(&envelope))
                .await
                .is_err()
            {
                self.publisher = None;
            }
        }
    }

    /// An input for a room this instance should own, from socket `conn` of `from`.
    fn owner_input(&mut self, room: &RoomId, from: &str, conn: u64, input: Input) {
        let key = (from.to_owned(), conn);
        let at = now();
        let hub_conn = self.hub_conns.get(&key).copied();
        match (input, hub_conn) {
            (Input::Connect { user, grant }, None) => {
                if !self.owned.contains_key(room) {
                    debug!(%room, from, conn, "a join for a room this instance does not own");
                    self.tell_member(from, conn, MemberOutput::Reroute);
                    return;
                }
                let id = ConnId(self.next_hub_conn);
                self.next_hub_conn += 1;
                self.hub_conns.insert(key, id);
                self.peers.insert(
                    id,
                    Peer {
                        instance: from.to_owned(),
                        conn,
                        room: room.clone(),
                    },
                );
                let rooms = grant.map_or(RoomGrant::Any, RoomGrant::Only);
                self.hub.connect(
                    at,
                    id,
                    Identity {
                        user_id: user,
                        rooms,
                    },
                );
            }
            (Input::Connect { .. }, Some(_)) => {
                warn!(%room, from, conn, "a second join from one socket; ignored");
            }
            (Input::Text { text }, Some(id)) => self.hub.handle_text(at, id, &text),
            (Input::Binary { len }, Some(id)) => self.hub.handle_binary(at, id, len),
            (Input::Disconnect, Some(id)) => {
                self.hub_conns.remove(&key);
                self.peers.remove(&id);
                self.hub.disconnect(at, id);
            }
            (Input::Disconnect, None) => {}
            // A frame for a socket this instance does not know: the room was dropped here.
            (Input::Text { .. } | Input::Binary { .. }, None) => {
                self.tell_member(from, conn, MemberOutput::Reroute);
            }
        }
    }

    /// Sends `output` to socket `conn` of `instance` (this one or another).
    fn tell_member(&mut self, instance: &str, conn: u64, output: MemberOutput) {
        if instance == self.me {
            self.member_output(ConnId(conn), output);
        } else {
            let envelope = Envelope::ToMember { conn, output };
            self.outbox.push_back((instance.to_owned(), envelope));
        }
    }
}

impl Node {
    /// Hands everything the hub produced to local sockets and to the outbox.
    fn drain(&mut self) {
        while let Some(output) = self.hub.poll() {
            match output {
                Output::Send { to, msg } => {
                    let Some(peer) = self.peers.get(&to) else {
                        continue;
                    };
                    if peer.instance == self.me {
                        let conn = ConnId(peer.conn);
                        self.deliver_local(conn, msg);
                    } else {
                        let envelope = Envelope::ToMember {
                            conn: peer.conn,
                            output: MemberOutput::Send { text: encode(&msg) },
                        };
                        self.outbox.push_back((peer.instance.clone(), envelope));
                    }
                }
                Output::Close { conn, reason } => {
                    // The hub has forgotten the socket already.
                    let Some(peer) = self.peers.remove(&conn) else {
                        continue;
                    };
                    self.hub_conns.remove(&(peer.instance.clone(), peer.conn));
                    let output = match reason {
                        // The cluster's hubs never enable resumption: no `Resumed` comes.
                        SocketCloseReason::Replaced | SocketCloseReason::Resumed => {
                            MemberOutput::Replaced
                        }
                        // Never produced here: the node answers kicks `Unsupported` and never
                        // calls `Hub::kick`. Closing is what matters if it ever is.
                        SocketCloseReason::Kicked => MemberOutput::Replaced,
                    };
                    let instance = peer.instance;
                    self.tell_member(&instance, peer.conn, output);
                }
            }
        }
    }

    /// What a room's owner asks of local socket `conn`.
    fn member_output(&mut self, conn: ConnId, output: MemberOutput) {
        match output {
            MemberOutput::Send { text } => match decode_server(&text) {
                Ok(msg) => self.deliver_local(conn, msg),
                Err(e) => {
                    warn!(conn = conn.0, error = %e, "dropping an undecodable frame from a room's owner")
                }
            },
            MemberOutput::Replaced => {
                self.close_local(conn, Outbound::Close(SocketCloseReason::Replaced));
            }
            MemberOutput::Reroute => {
                // The owner lost the room: every local member of it must rejoin.
                match self.router.room_of(conn).cloned() {
                    Some(room) => self.evict(&room),
                    None => self.close_local(conn, reroute()),
                }
            }
        }
    }

    /// A frame from a room's owner for local socket `conn`: the router sees it, then the socket.
    fn deliver_local(&mut self, conn: ConnId, msg: ServerMsg) {
        let actions = self.router.delivered(conn, &msg);
        self.pending.extend(actions);
        self.send_local(conn, msg);
    }

    fn send_local(&mut self, conn: ConnId, msg: ServerMsg) {
        let Some(tx) = self.sockets.get(&conn) else {
            return;
        };
        if let Err(e) = tx.try_send(Outbound::Msg(msg)) {
            // Full (the client does not read) or closed (its task is ending): the socket goes,
            // and its member leaves the room.
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                warn!(conn = conn.0, "outbound queue full: dropping the socket");
                self.metrics.drop_socket("slow_consumer");
            }
            self.sockets.remove(&conn);
            let actions = self.router.disconnect(conn);
            self.pending.extend(actions);
        }
    }

    fn close_local(&mut self, conn: ConnId, why: Outbound) {
        if let Some(tx) = self.sockets.remove(&conn) {
            let _ = tx.try_send(why);
        }
    }

    /// The owner of `room` is lost (as seen from this instance): its local sockets are closed
    /// with 1012 and their clients reconnect and join again.
    fn evict(&mut self, room: &RoomId) {
        self.routes.remove(room);
        let conns = self.router.evict(room);
        if !conns.is_empty() {
            info!(%room, sockets = conns.len(), "the room's owner is gone: its members here reconnect");
        }
        for conn in conns {
            self.close_local(conn, reroute());
        }
    }

    /// Gives up an owned room: its hub state is discarded, every member (here or elsewhere) is
    /// sent to reconnect, and the lease is released if it is still ours.
    async fn drop_owned(&mut self, room: &RoomId) {
        if self.owned.remove(room).is_none() {
            return;
        }
        let at = now();
        let gone: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| &p.room == room)
            .map(|(c, _)| *c)
            .collect();
        for id in gone {
            self.hub.disconnect(at, id);
            if let Some(peer) = self.peers.remove(&id) {
                self.hub_conns.remove(&(peer.instance.clone(), peer.conn));
                if peer.instance != self.me {
                    let envelope = Envelope::ToMember {
                        conn: peer.conn,
                        output: MemberOutput::Reroute,
                    };
                    self.outbox.push_back((peer.instance, envelope));
                }
            }
        }
        // The leaves were only for members that are being sent away.
        while self.hub.poll().is_some() {}
        self.evict(room);
        if let Some(leases) = self.leases.as_mut()
            && let Err(e) = leases.release(room).await
        {
            debug!(%room, error = %e, "cannot release the lease; it expires by itself");
        }
        info!(%room, "dropped the room");
    }

    /// Renews the leases of owned rooms, releases rooms empty for a lease time, and checks that
    /// the rooms local sockets are in still have the owner they were routed to.
    async fn lease_tick(&mut self) {
        let Some(mut leases) = self.leases.clone() else {
            return;
        };
        let at = now();
        let lease = self.config.lease;
        // Renew.
        let owned: Vec<RoomId> = self.owned.keys().cloned().collect();
        match leases.renew(&owned).await {
            Ok(held) => {
                for (room, held) in owned.iter().zip(held) {
                    if held {
                        if let Some(o) = self.owned.get_mut(room) {
                            o.renewed = at;
                        }
                    } else {
                        warn!(%room, "the room's lease was taken over or expired: dropping it");
                        self.drop_owned(room).await;
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot renew the rooms' leases");
                // Give a room up before its lease can have expired, so two owners never overlap.
                let stale: Vec<RoomId> = self
                    .owned
                    .iter()
                    .filter(|(_, o)| at.saturating_duration_since(o.renewed) >= lease * 2 / 3)
                    .map(|(r, _)| r.clone())
                    .collect();
                for room in stale {
                    self.drop_owned(&room).await;
                }
                self.reset.notify_one();
                return;
            }
        }
        // Release rooms that stayed empty.
        let mut empty = Vec::new();
        for (room, o) in &mut self.owned {
            if self.hub.room(room).is_some() || !self.router.members_of(room).is_empty() {
                o.empty_since = None;
            } else {
                let since = *o.empty_since.get_or_insert(at);
                if at.saturating_duration_since(since) >= lease {
                    empty.push(room.clone());
                }
            }
        }
        for room in empty {
            self.drop_owned(&room).await;
        }
        // Forget routes nobody here uses; check the owners of the others.
        let router = &self.router;
        let owned = &self.owned;
        self.routes
            .retain(|room, _| owned.contains_key(room) || !router.members_of(room).is_empty());
        let remote: Vec<(RoomId, String)> = self
            .routes
            .iter()
            .filter(|(_, o)| **o != self.me)
            .map(|(r, o)| (r.clone(), o.clone()))
            .collect();
        let rooms: Vec<RoomId> = remote.iter().map(|(r, _)| r.clone()).collect();
        match leases.owners(&rooms).await {
            Ok(now_owners) => {
                for ((room, was), now_owner) in remote.into_iter().zip(now_owners) {
                    if now_owner.as_deref() != Some(was.as_str()) {
                        self.evict(&room);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot check the owners of rooms");
                self.reset.notify_one();
                return;
            }
        }
        // The cluster-wide room count, for /metrics.
        match leases.room_count().await {
            Ok(n) => self.metrics.set_cluster_rooms(n),
            Err(e) => {
                warn!(error = %e, "cannot count the cluster's rooms");
                self.reset.notify_one();
            }
        }
    }
}

fn reroute() -> Outbound {
    Outbound::CloseWith(CLOSE_REROUTE, "room moved to another instance: reconnect")
}
