//! The relay rows of `join`: joins of ours through a real coturn with relay-only members, beside
//! the same joins direct, interleaved in one run; each link's selected candidate pair is checked.
//!
//! The TURN server is either started here (`--coturn`: Debian's `turnserver` on the address the
//! members bind, a user made for the run; inside the namespace when the bench runs in one) or
//! given (`--turn URL --turn-user U --turn-credential C`, reachable from where the bench runs).
//! Both the relay joins and their direct twins bind that one address (the namespace's
//! `10.203.0.1`, or `127.0.0.1` with `--no-netns`), so the only difference between the two is
//! the ICE servers and the relay-only policy. matchbox is not in these rows.
//!
//! The route is read from the native backend's `selected candidate pair` tracing event (its
//! `id`, `local` and `remote` fields, by `fast_rtc_testkit::routes::RouteLayer`): every link of a relay join must show
//! `local=relay remote=relay` at both ends, every direct one no relay end.

use super::members::{our_member, our_opens_ids};
use super::servers::Servers;
use crate::util::median;
use fast_rtc_protocol::ConnectionId;
use fast_rtc_swarm::{IceServer, IceTransportPolicy, NativeConfig, SwarmConfig};
use fast_rtc_testkit::coturn::Coturn;
use fast_rtc_testkit::routes::{self, Route};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A TURN server and the credentials of one user.
#[derive(Clone, Debug)]
pub struct Turn {
    pub url: String,
    pub user: String,
    pub credential: String,
}

/// Starts Debian's coturn (`turnserver`) for the run on a free port of `ip`, with a user and a
/// credential made for the run: the server (killed on drop) and how to reach it.
pub fn start_coturn(ip: IpAddr) -> (Coturn, Turn) {
    let user = "bench";
    // A credential made for the run (std's randomly keyed hasher: no extra crate).
    let credential = format!(
        "c{:016x}",
        std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::process::id()
        )
    );
    let coturn = Coturn::start(ip, user, &credential)
        .unwrap_or_else(|e| panic!("{e} (scripts/bench-relay.sh installs coturn)"));
    let turn = Turn {
        url: coturn.url().to_owned(),
        user: user.into(),
        credential,
    };
    (coturn, turn)
}

/// The selected pairs recorded for `ids`, waiting up to 2 s for two (both ends) per link.
async fn routes_of(ids: &[ConnectionId]) -> Vec<Route> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    routes::wait_for(&ids, 2 * ids.len(), Duration::from_secs(2)).await
}

/// How one link's two ends were routed.
#[derive(Serialize, Clone, Copy, Default, Debug)]
pub struct RouteCount {
    /// Ends whose selected pair was relay to relay.
    pub relay: usize,
    /// Ends with no relay candidate in the selected pair.
    pub direct: usize,
    /// Ends with one relay end, or not reported.
    pub other: usize,
}

impl RouteCount {
    fn add(&mut self, routes: &[Route], expected_ends: usize) {
        let mut seen = 0;
        for route in routes {
            seen += 1;
            if route.is_relay() {
                self.relay += 1;
            } else if route.is_direct() {
                self.direct += 1;
            } else {
                self.other += 1;
            }
        }
        self.other += expected_ends.saturating_sub(seen);
    }
}

/// One relay row: N members, the same joins direct and relay-only through TURN.
#[derive(Serialize, Clone)]
pub struct RelayRow {
    pub members: usize,
    pub direct_p50_ms: Option<f64>,
    pub direct_p90_ms: Option<f64>,
    pub direct_failed: usize,
    pub direct_routes: RouteCount,
    pub relay_p50_ms: Option<f64>,
    pub relay_p90_ms: Option<f64>,
    pub relay_failed: usize,
    pub relay_routes: RouteCount,
}

/// The address the relay rows' members bind and coturn listens on.
pub fn bench_ip(in_netns: bool) -> IpAddr {
    if in_netns {
        super::net::netns_ip()
    } else {
        IpAddr::from([127, 0, 0, 1])
    }
}

fn config(room: &str, turn: Option<&Turn>) -> SwarmConfig {
    let mut config = SwarmConfig::new(room);
    if let Some(t) = turn {
        config
            .ice_servers
            .push(IceServer::turn(&t.url, &t.user, &t.credential));
        config.ice_transport_policy = IceTransportPolicy::Relay;
    }
    config
}

/// A join of `n`-member room `room`, relay-only through `turn` when given: the time and the
/// joiner's links.
async fn join(
    s: &Servers,
    n: usize,
    room: &str,
    turn: Option<&Turn>,
    native: &NativeConfig,
) -> Option<(Duration, Vec<ConnectionId>)> {
    let mut present = Vec::new();
    let mut ok = true;
    for i in 0..n {
        let m = our_member(
            &s.ours_url,
            &format!("p{i}"),
            room,
            config(room, turn),
            native.clone(),
        );
        let opened = our_opens_ids(&m, i, Instant::now()).await;
        present.push(m);
        if opened.is_none() {
            ok = false;
            break;
        }
    }
    let mut result = None;
    if ok {
        // Let every member's refill offer (and its TURN allocation) reach the server.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        let joiner = our_member(
            &s.ours_url,
            "joiner",
            room,
            config(room, turn),
            native.clone(),
        );
        result = our_opens_ids(&joiner, n, t0).await;
        joiner.close();
    }
    for m in &present {
        m.close();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    result
}

fn p90(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() * 9).div_ceil(10)).saturating_sub(1)]
}

/// Runs the relay rows: for each N, `runs` direct joins and `runs` relay joins, alternating.
pub(super) async fn rows(
    s: &Servers,
    turn: &Turn,
    members: &[usize],
    runs: usize,
    in_netns: bool,
    room: &mut usize,
) -> Vec<RelayRow> {
    let ip = bench_ip(in_netns);
    let native = NativeConfig {
        udp_addrs: vec![SocketAddr::new(ip, 0)],
        ..NativeConfig::default()
    };
    let mut out = Vec::new();
    for &n in members {
        let (mut direct, mut relay) = (Vec::new(), Vec::new());
        let mut row = RelayRow {
            members: n,
            direct_p50_ms: None,
            direct_p90_ms: None,
            direct_failed: 0,
            direct_routes: RouteCount::default(),
            relay_p50_ms: None,
            relay_p90_ms: None,
            relay_failed: 0,
            relay_routes: RouteCount::default(),
        };
        for _ in 0..runs {
            for through in [None, Some(turn)] {
                *room += 1;
                let name = format!("r{room}");
                let (times, failed, routes) = if through.is_some() {
                    (&mut relay, &mut row.relay_failed, &mut row.relay_routes)
                } else {
                    (&mut direct, &mut row.direct_failed, &mut row.direct_routes)
                };
                match join(s, n, &name, through, &native).await {
                    Some((t, ids)) => {
                        times.push(t.as_secs_f64() * 1e3);
                        routes.add(&routes_of(&ids).await, 2 * ids.len());
                    }
                    None => *failed += 1,
                }
            }
        }
        if !direct.is_empty() {
            row.direct_p50_ms = Some(median(direct.clone()));
            row.direct_p90_ms = Some(p90(direct));
        }
        if !relay.is_empty() {
            row.relay_p50_ms = Some(median(relay.clone()));
            row.relay_p90_ms = Some(p90(relay));
        }
        out.push(row);
    }
    out
}
