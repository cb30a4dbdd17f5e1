//! Real WebRTC: closing, vanishing, first-moment sends, bulk transfer, late joiners.
#![cfg(not(target_arch = "wasm32"))] // native backend; the browser tests are tests/web.rs
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)]

mod support;

use fast_rtc_protocol::UserId;
use fast_rtc_swarm::{
    ChannelConfig, ChannelId, CloseReason, NativeConfig, Payload, SendError, SwarmConfig,
    SwarmEvent,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use support::*;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i}")).collect()
}

fn others(names: &[String], me: usize) -> Vec<String> {
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, n)| n.clone())
        .collect()
}

fn closes(events: &[SwarmEvent]) -> Vec<(UserId, CloseReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            SwarmEvent::Close { peer, reason } => Some((peer.user_id.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_seen_by_every_peer_and_leaves_no_connection_behind() {
    let server = server().await;
    let n = 4;
    let names = names(n);
    let members: Vec<_> = names
        .iter()
        .map(|x| member(&server, x, SwarmConfig::new("r")))
        .collect();
    for (i, m) in members.iter().enumerate() {
        wait_open(m, &others(&names, i), Duration::from_secs(30)).await;
    }
    let started = Instant::now();
    members[1].close();
    for (i, m) in members.iter().enumerate().filter(|(i, _)| *i != 1) {
        let events = collect_until(m, Duration::from_secs(10), |e| !closes(e).is_empty()).await;
        assert_eq!(
            closes(&events),
            vec![("m1".into(), CloseReason::Remote)],
            "member {i}"
        );
        assert_eq!(m.peers().len(), n - 2);
    }
    eprintln!("close seen by all peers after {:?}", started.elapsed());
    assert!(members[1].is_closed());
    assert_eq!(
        members[1].connection_count(),
        0,
        "the closed member keeps no connection"
    );
    // The others: their n-2 live links plus one parked offer, nothing leaked from m1's links.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in [0, 2, 3] {
        assert_eq!(members[i].connection_count(), n - 2 + 1, "member {i}");
    }
    server.shutdown().await.unwrap();
}

/// Sends on `fast` and on a reliable game channel the moment `Open` is reported, both ways on
/// every link: a reliable channel must lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_at_the_first_moment_arrive() {
    let server = server().await;
    let mut config = SwarmConfig::new("r");
    let events_ch = config.add_channel(ChannelConfig::reliable("events"));
    let n = 6;
    let names = names(n);
    let members: Vec<_> = names
        .iter()
        .map(|x| member(&server, x, config.clone()))
        .collect();
    let mut tasks = Vec::new();
    for (i, m) in members.into_iter().enumerate() {
        let expected = n - 1;
        tasks.push(tokio::spawn(async move {
            let mut got: BTreeMap<(UserId, ChannelId), usize> = BTreeMap::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while got.values().sum::<usize>() < expected * 2 {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(Some(ev)) = tokio::time::timeout(left, m.recv()).await else {
                    break;
                };
                match ev {
                    SwarmEvent::Open(p) => {
                        m.send(&p.user_id, ChannelId::FAST, format!("first from m{i}"))
                            .unwrap();
                        m.send(&p.user_id, events_ch, format!("first event from m{i}"))
                            .unwrap();
                    }
                    SwarmEvent::Data { from, channel, .. } => {
                        *got.entry((from, channel)).or_default() += 1
                    }
                    _ => {}
                }
            }
            (m, got)
        }));
    }
    let mut keep = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let (m, got) = t.await.unwrap();
        assert_eq!(got.len(), (n - 1) * 2, "member {i} got {got:?}");
        assert!(got.values().all(|c| *c == 1), "member {i} got {got:?}");
        keep.push(m);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_sequenced_messages_arrive_complete_and_in_order() {
    const N: u32 = 100_000;
    let server = server().await;
    let a = member(&server, "a", SwarmConfig::new("bulk"));
    let b = member(&server, "b", SwarmConfig::new("bulk"));
    wait_open(&a, &["b".into()], Duration::from_secs(30)).await;
    wait_open(&b, &["a".into()], Duration::from_secs(30)).await;
    let receiver = tokio::spawn(async move {
        let mut next = 0u32;
        while next < N {
            match tokio::time::timeout(Duration::from_secs(30), b.recv()).await {
                Ok(Some(SwarmEvent::Data {
                    payload: Payload::Binary(bytes),
                    ..
                })) => {
                    let seq = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                    assert_eq!(seq, next, "out of order or lost");
                    assert_eq!(bytes.len(), 100);
                    next += 1;
                }
                Ok(Some(_)) => {}
                other => panic!("stalled at {next}: {other:?}"),
            }
        }
        b
    });
    let started = Instant::now();
    let mut full = 0u64;
    let peer: UserId = "b".into();
    for seq in 0..N {
        let mut msg = seq.to_le_bytes().to_vec();
        msg.resize(100, 0xAB);
        loop {
            match a.send(&peer, ChannelId::FAST, msg.clone()) {
                Ok(()) => break,
                Err(SendError::Full) => {
                    full += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    let _b = receiver.await.unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "100k x 100 B reliable in {elapsed:?} ({:.0} msg/s), sender saw Full {full} times",
        f64::from(N) / elapsed.as_secs_f64()
    );
    server.shutdown().await.unwrap();
}

fn metric(addr: std::net::SocketAddr, line_prefix: &str) -> u64 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| {
            l.strip_prefix(line_prefix)
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

/// A joiner in a settled room of 4 connects through the members' pre-made offers: the server
/// hands out 4 parked offers and none made after the joiner arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_connects_through_premade_offers() {
    let server = server().await;
    let names = names(4);
    let members: Vec<_> = names
        .iter()
        .map(|x| member(&server, x, SwarmConfig::new("late")))
        .collect();
    for (i, m) in members.iter().enumerate() {
        wait_open(m, &others(&names, i), Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // every refill offer is parked
    let addr = server.local_addr();
    let (premade0, waiting0) = tokio::task::spawn_blocking(move || {
        (
            metric(addr, "fast_rtc_handouts_total{from=\"premade\"}"),
            metric(addr, "fast_rtc_handouts_total{from=\"waiting\"}"),
        )
    })
    .await
    .unwrap();
    let started = Instant::now();
    let late = member(&server, "late", SwarmConfig::new("late"));
    let events = wait_open(&late, &names, Duration::from_secs(30)).await;
    eprintln!(
        "late joiner connected to 4 members in {:?}",
        started.elapsed()
    );
    assert!(events.iter().all(
        |e| !matches!(e, SwarmEvent::Open(p) if p.origin != fast_rtc_swarm::LinkOrigin::Answered)
    ));
    let (premade1, waiting1) = tokio::task::spawn_blocking(move || {
        (
            metric(addr, "fast_rtc_handouts_total{from=\"premade\"}"),
            metric(addr, "fast_rtc_handouts_total{from=\"waiting\"}"),
        )
    })
    .await
    .unwrap();
    assert_eq!(premade1 - premade0, 4, "four parked offers handed out");
    assert_eq!(
        waiting1 - waiting0,
        0,
        "no offer had to be made after the joiner arrived"
    );
    drop(members);
    server.shutdown().await.unwrap();
}

/// Runs as a member in a child process when `FAST_RTC_CHILD_URL` is set (used by the test
/// below, which kills it). Ignored in normal runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: runs only as the child process of a_member_that_vanishes_is_reported_closed"]
async fn child_member() {
    let (Ok(url), Ok(token)) = (
        std::env::var("FAST_RTC_CHILD_URL"),
        std::env::var("FAST_RTC_CHILD_TOKEN"),
    ) else {
        panic!("run by a_member_that_vanishes_is_reported_closed only");
    };
    let signaling = fast_rtc_swarm::Signaling::WebSocket { url, token };
    let (h, driver) = fast_rtc_swarm::start(
        SwarmConfig::new("vanish"),
        NativeConfig::loopback(),
        signaling,
    )
    .unwrap();
    tokio::spawn(driver);
    loop {
        let _ = h.recv().await;
    }
}

/// A member whose process is killed (no `close`, no FIN on its peer links) is reported closed
/// by the others within the ICE timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_vanishes_is_reported_closed() {
    let server = server().await;
    let native = NativeConfig {
        ice_disconnected_timeout: Duration::from_secs(1),
        ice_failed_timeout: Duration::from_secs(2),
        ice_keepalive_interval: Duration::from_millis(300),
        ..NativeConfig::loopback()
    };
    let a = member_with(&server, "a", SwarmConfig::new("vanish"), native.clone());
    let b = member_with(&server, "b", SwarmConfig::new("vanish"), native);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_member", "--exact", "--ignored", "--nocapture"])
        .env("FAST_RTC_CHILD_URL", server.ws_url())
        .env("FAST_RTC_CHILD_TOKEN", token("ghost"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_open(&a, &["b".into(), "ghost".into()], Duration::from_secs(30)).await;
    wait_open(&b, &["a".into(), "ghost".into()], Duration::from_secs(30)).await;
    child.kill().unwrap(); // SIGKILL: no close, nothing sent
    child.wait().unwrap();
    let killed = Instant::now();
    for m in [&a, &b] {
        let events = collect_until(m, Duration::from_secs(15), |e| !closes(e).is_empty()).await;
        let c = closes(&events);
        assert_eq!(c.len(), 1, "{events:?}");
        assert_eq!(c[0].0, UserId::from("ghost"));
        assert!(
            matches!(c[0].1, CloseReason::IceFailed | CloseReason::ChannelClosed),
            "{:?}",
            c[0].1
        );
    }
    eprintln!(
        "vanished member reported closed after {:?}",
        killed.elapsed()
    );
    assert_eq!(a.peers().len(), 1);
    server.shutdown().await.unwrap();
}

/// A swarm whose server is unreachable sits in reconnect backoff; closing it ends its driver at
/// once rather than after the backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_during_reconnect_backoff_ends_the_driver_promptly() {
    init_tracing();
    let signaling = fast_rtc_swarm::Signaling::WebSocket {
        url: "ws://127.0.0.1:9/ws".into(),
        token: token("nobody"),
    };
    let (h, driver) =
        fast_rtc_swarm::start(SwarmConfig::new("r"), NativeConfig::loopback(), signaling).unwrap();
    let task = tokio::spawn(driver);
    tokio::time::sleep(Duration::from_millis(1200)).await; // a few failed attempts: backoff is 1 s or more now
    assert!(!h.signaling_connected());
    let closed_at = Instant::now();
    h.close();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("driver still running 2 s after close")
        .unwrap();
    assert!(
        closed_at.elapsed() < Duration::from_millis(500),
        "took {:?}",
        closed_at.elapsed()
    );
    assert_eq!(h.connection_count(), 0);
}
