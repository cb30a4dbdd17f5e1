//! Prometheus metrics (OpenMetrics text format, served at `/metrics`).

use crate::hub::{Hub, Stats};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

/// Label naming a `signal_error` code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The error code, as on the wire.
    pub code: String,
}

/// Label naming where a handed-out offer came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FromLabel {
    /// `premade` (a member's parked offer) or `waiting` (made after the joiner arrived).
    pub from: String,
}

/// Label naming why a socket was refused or dropped by the shell.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The reason.
    pub reason: String,
}

/// The server's metrics. Counters that the [`Hub`] keeps are copied in when `/metrics` is
/// scraped ([`Metrics::sync`]), so frames cost nothing extra; the shell's own counters are
/// updated as things happen.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    members: Gauge,
    rooms: Gauge,
    connections: Gauge,
    frames_in: Counter,
    frames_out: Counter,
    joins: Counter,
    leaves: Counter,
    replaced: Counter,
    held: Counter,
    resumed: Counter,
    handouts: Family<FromLabel, Counter>,
    errors: Family<CodeLabel, Counter>,
    /// Upgrade requests refused (by reason: `missing_token`, `bad_token`, `expired_token`,
    /// `server_full`).
    pub refused: Family<ReasonLabel, Counter>,
    /// Sockets dropped by the shell (by reason: `ping_timeout`, `slow_consumer`,
    /// `write_timeout`, `transport_error`).
    pub dropped: Family<ReasonLabel, Counter>,
    /// Packets at the built-in STUN server (by result: `answered`, `malformed`,
    /// `rate_limited`, `ignored`).
    pub stun: Family<ReasonLabel, Counter>,
    /// Cluster mode only: rooms with a live lease over the whole cluster.
    cluster_rooms: Option<Gauge>,
    last: Mutex<Stats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `fast_rtc` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fast_rtc");
        let m = Metrics {
            members: Gauge::default(),
            rooms: Gauge::default(),
            connections: Gauge::default(),
            frames_in: Counter::default(),
            frames_out: Counter::default(),
            joins: Counter::default(),
            leaves: Counter::default(),
            replaced: Counter::default(),
            held: Counter::default(),
            resumed: Counter::default(),
            handouts: Family::default(),
            errors: Family::default(),
            refused: Family::default(),
            dropped: Family::default(),
            stun: Family::default(),
            cluster_rooms: None,
            last: Mutex::new(Stats::default()),
            registry: Registry::default(),
        };
        registry.register("members", "Members in all rooms", m.members.clone());
        registry.register("rooms", "Rooms with at least one member", m.rooms.clone());
        registry.register(
            "connections",
            "Open signaling sockets",
            m.connections.clone(),
        );
        registry.register(
            "frames_in",
            "Frames received from clients",
            m.frames_in.clone(),
        );
        registry.register("frames_out", "Frames sent to clients", m.frames_out.clone());
        registry.register("joins", "Successful joins", m.joins.clone());
        registry.register("leaves", "Members that left a room", m.leaves.clone());
        registry.register(
            "replaced",
            "Sessions replaced by a newer one with the same identity",
            m.replaced.clone(),
        );
        registry.register(
            "held",
            "Members whose socket was lost, held for a resume",
            m.held.clone(),
        );
        registry.register(
            "resumed",
            "Held members whose session a new socket resumed",
            m.resumed.clone(),
        );
        registry.register(
            "handouts",
            "Offers handed to joiners, by origin: premade (one round trip) or waiting",
            m.handouts.clone(),
        );
        registry.register(
            "signal_errors",
            "signal_error frames sent, by code",
            m.errors.clone(),
        );
        registry.register(
            "refused",
            "WebSocket upgrades refused, by reason",
            m.refused.clone(),
        );
        registry.register(
            "dropped",
            "Sockets dropped by the server, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "stun_packets",
            "Packets at the built-in STUN server, by result",
            m.stun.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The metrics of an instance in cluster mode: [`Metrics::new`]'s (per instance) plus the
    /// gauge `fast_rtc_cluster_rooms`, the rooms with a live lease over the whole cluster.
    pub fn for_cluster() -> Self {
        let mut m = Self::new();
        let gauge = Gauge::default();
        m.registry.register(
            "cluster_rooms",
            "Rooms with a live owner lease over the whole cluster (read from Redis every third of the lease time)",
            gauge.clone(),
        );
        m.cluster_rooms = Some(gauge);
        m
    }

    /// Sets the cluster-wide room count (cluster mode; ignored otherwise).
    pub fn set_cluster_rooms(&self, n: u64) {
        if let Some(g) = &self.cluster_rooms {
            g.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts a refused upgrade.
    pub fn refuse(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a dropped socket.
    pub fn drop_socket(&self, reason: &str) {
        self.dropped
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a packet at the built-in STUN server.
    pub fn stun_packet(&self, result: &str) {
        self.stun
            .get_or_create(&ReasonLabel {
                reason: result.to_owned(),
            })
            .inc();
    }

    /// Copies the hub's gauges and the growth of its counters since the last call.
    pub fn sync(&self, hub: &Hub) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = hub.stats();
        self.frames_in.inc_by(now.frames_in - last.frames_in);
        self.frames_out.inc_by(now.frames_out - last.frames_out);
        self.joins.inc_by(now.joins - last.joins);
        self.leaves.inc_by(now.leaves - last.leaves);
        self.replaced.inc_by(now.replaced - last.replaced);
        self.held.inc_by(now.held - last.held);
        self.resumed.inc_by(now.resumed - last.resumed);
        let from = |f: &str| FromLabel { from: f.to_owned() };
        self.handouts
            .get_or_create(&from("premade"))
            .inc_by(now.handouts_premade - last.handouts_premade);
        self.handouts
            .get_or_create(&from("waiting"))
            .inc_by(now.handouts_waiting - last.handouts_waiting);
        for (code, n) in &now.errors {
            let before = last.errors.get(code).copied().unwrap_or(0);
            self.errors
                .get_or_create(&CodeLabel {
                    code: code.as_str().to_owned(),
                })
                .inc_by(n - before);
        }
        *last = now.clone();
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.members.set(gauge(hub.member_count()));
        self.rooms.set(gauge(hub.room_count()));
        self.connections.set(gauge(hub.connection_count()));
    }

    /// Sets the open-sockets gauge (in cluster mode the hub also counts other instances'
    /// sockets in the rooms it owns; the gauge counts this instance's).
    pub fn set_connections(&self, n: usize) {
        self.connections.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The metrics in OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut buf = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut buf, &self.registry);
        buf
    }
}
