//! The server under attack, over the wire: for each bound, the attack's effect is refused and an
//! honest member is unaffected. A real server on a random loopback port; attackers connect from
//! other loopback addresses (127.0.0.2 and up), which Linux routes to `lo` without setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

mod http;
mod running;

use fast_rtc_protocol::{ClientMsg, ErrorCode, IceCandidate, ServerMsg, decode_server, encode};
use fast_rtc_server::{ConnectionLimits, Limits, ServerConfig, ServerHandle};
use futures_util::{SinkExt, StreamExt};
use running::{start, token};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const STEP: Duration = Duration::from_secs(10);

/// A TCP connection to `server` from loopback address `from` (e.g. 127.0.0.2).
async fn tcp_from(from: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

type Ws = WebSocketStream<TcpStream>;

/// A signaling socket of `sub` from `from`, or the HTTP status that refused it.
async fn ws_from(server: &ServerHandle, from: Ipv4Addr, sub: &str) -> Result<Ws, u16> {
    let tcp = tcp_from(from, server.local_addr()).await;
    let url = format!("{}?token={}", server.ws_url(), token(sub));
    match tokio_tungstenite::client_async(url, tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

async fn send(ws: &mut Ws, msg: &ClientMsg) {
    ws.send(Message::text(encode(msg))).await.unwrap();
}

async fn init(ws: &mut Ws, room: &str) {
    send(
        ws,
        &ClientMsg::Init {
            user_id: None,
            room_id: room.into(),
            resume: None,
        },
    )
    .await;
}

/// The next protocol frame.
async fn recv(ws: &mut Ws) -> ServerMsg {
    loop {
        let frame = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("no frame within 10 s")
            .expect("socket ended")
            .unwrap();
        match frame {
            Message::Text(t) => return decode_server(t.as_str()).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

/// Reads until the server closes; the close code.
async fn closed(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(STEP, ws.next())
            .await
            .expect("not closed within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// An honest member joins `room` from 127.0.0.1 and is acknowledged: how long it took.
async fn honest_join(server: &ServerHandle, sub: &str, room: &str) -> (Ws, Duration) {
    let started = Instant::now();
    let mut ws = ws_from(server, Ipv4Addr::LOCALHOST, sub)
        .await
        .unwrap_or_else(|status| panic!("honest {sub} refused: HTTP {status}"));
    init(&mut ws, room).await;
    assert!(matches!(recv(&mut ws).await, ServerMsg::Joined { .. }));
    (ws, started.elapsed())
}

/// Whether the server closed `tcp` (EOF or reset) within `wait`.
async fn closed_by_server(tcp: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. a 408 response before the close
        }
    }
}

/// Slowloris: 2,000 connections that never finish their headers, from 40 addresses. The server
/// holds at most `max_preauth` of them (evicting the attacker's oldest), and an honest member
/// still joins at once; a stalled connection is dropped at the header deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_never_keep_an_honest_member_out() {
    let server = start(ServerConfig {
        connections: ConnectionLimits {
            max_preauth: 256,
            max_preauth_per_source: 64,
            header_read_timeout: Duration::from_secs(3),
            ..ConnectionLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let (_quiet, quiet) = honest_join(&server, "quiet", "q").await;

    let mut stalled = Vec::new();
    for i in 0..2000u32 {
        let from = Ipv4Addr::new(127, 0, 0, 2 + (i % 40) as u8);
        let mut tcp = tcp_from(from, server.local_addr()).await;
        tcp.write_all(b"GET /ws?token=").await.unwrap();
        stalled.push(tcp);
    }
    let (mut honest, under_attack) = honest_join(&server, "honest", "r").await;
    eprintln!(
        "honest join: {:.1} ms quiet, {:.1} ms after 2,000 stalled connections",
        quiet.as_secs_f64() * 1e3,
        under_attack.as_secs_f64() * 1e3
    );
    assert!(under_attack < Duration::from_secs(1), "{under_attack:?}");
    // The oldest stalled connections were evicted at once; the server held at most 256.
    assert!(closed_by_server(&mut stalled[0], Duration::from_millis(500)).await);
    let body = tokio::task::spawn_blocking({
        let addr = server.local_addr();
        move || http::get(addr, "/metrics", STEP).1
    })
    .await
    .unwrap();
    let evicted: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("fast_rtc_dropped_total{reason=\"preauth_evicted\"} "))
        .expect("no eviction counted")
        .parse()
        .unwrap();
    // 2,000 stalled + the honest join and the scrape; at most 256 (+ the two) left pending.
    assert!(evicted >= 2000 - 256, "{evicted} evicted");
    // The newest stalled connections are dropped at the header deadline (3 s).
    let last = stalled.last_mut().unwrap();
    assert!(!closed_by_server(last, Duration::from_millis(1000)).await);
    assert!(closed_by_server(last, Duration::from_secs(4)).await);
    // The honest member is still in: another member gets its offer request.
    let (_other, _) = honest_join(&server, "other", "r").await;
    assert!(matches!(recv(&mut honest).await, ServerMsg::OfferRequest));
    server.shutdown().await.unwrap();
}

/// One token cannot fill the server: its N+1th socket is refused (HTTP 429) while another
/// identity joins; closing one of its sockets frees a place.
#[tokio::test]
async fn one_identity_holds_at_most_its_socket_cap() {
    let server = start(ServerConfig {
        connections: ConnectionLimits {
            max_sockets_per_identity: 3,
            ..ConnectionLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            ws_from(&server, Ipv4Addr::LOCALHOST, "mallory")
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        ws_from(&server, Ipv4Addr::LOCALHOST, "mallory").await.err(),
        Some(429)
    );
    let (_alice, _) = honest_join(&server, "alice", "r").await;
    let mut first = held.remove(0);
    first.close(None).await.unwrap();
    let _ = closed(&mut first).await;
    let deadline = Instant::now() + STEP;
    loop {
        match ws_from(&server, Ipv4Addr::LOCALHOST, "mallory").await {
            Ok(_) => break,
            Err(429) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(status) => panic!("HTTP {status}"),
        }
    }
    server.shutdown().await.unwrap();
}

/// One source address holds at most its cap of sockets, whatever the identities; another
/// address is unaffected.
#[tokio::test]
async fn one_address_holds_at_most_its_socket_cap() {
    let server = start(ServerConfig {
        connections: ConnectionLimits {
            max_sockets_per_source: 4,
            ..ConnectionLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(ws_from(&server, attacker, &format!("m{i}")).await.unwrap());
    }
    assert_eq!(ws_from(&server, attacker, "m4").await.err(), Some(429));
    let (_alice, _) = honest_join(&server, "alice", "r").await;
    server.shutdown().await.unwrap();
}

/// A socket that never sends `init` is closed (1008) at the init deadline; a member that joined
/// stays.
#[tokio::test]
async fn a_socket_that_never_joins_is_closed_at_the_init_deadline() {
    let server = start(ServerConfig {
        connections: ConnectionLimits {
            init_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let (mut alice, _) = honest_join(&server, "alice", "r").await;
    let started = Instant::now();
    let mut idle = ws_from(&server, Ipv4Addr::LOCALHOST, "idle").await.unwrap();
    assert_eq!(closed(&mut idle).await, Some(CloseCode::Policy));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_bob, _) = honest_join(&server, "bob", "r").await;
    assert!(matches!(recv(&mut alice).await, ServerMsg::OfferRequest));
    server.shutdown().await.unwrap();
}

/// The attack of the issue: a member parks an offer and tries to grow it with 63 candidates of
/// ~60 KB (which made the joiner's `accept` larger than its socket's write buffer, dropping
/// the joiner). The member is told `queue_full`; the joiner gets an `accept` within
/// `max_chunk_bytes` and stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_park_is_refused_and_the_joiner_still_joins() {
    let limits = Limits {
        frames_per_second: 100_000,
        frame_burst: 100_000,
        bytes_per_second: u32::MAX,
        byte_burst: u32::MAX,
        ..Limits::default()
    };
    let max = limits.max_chunk_bytes;
    let server = start(ServerConfig {
        limits,
        ..ServerConfig::default()
    })
    .await;
    let (mut mallory, _) = honest_join(&server, "mallory", "r").await;
    send(
        &mut mallory,
        &ClientMsg::Offer {
            id: "m1".into(),
            sdp: "v=0".into(),
        },
    )
    .await;
    let big = Some(IceCandidate {
        candidate: "x".repeat(60_000),
        sdp_mid: None,
        sdp_m_line_index: Some(0),
        username_fragment: None,
    });
    for _ in 0..63 {
        send(
            &mut mallory,
            &ClientMsg::Candidate {
                id: "m1".into(),
                candidate: big.clone(),
            },
        )
        .await;
    }
    // The first candidate fits; every other one is refused with a clear error.
    for _ in 0..62 {
        match recv(&mut mallory).await {
            ServerMsg::SignalError { code, message } => {
                assert_eq!(code, ErrorCode::QueueFull, "{message}");
                assert!(message.contains("bytes"), "{message}");
            }
            other => panic!("expected queue_full, got {other:?}"),
        }
    }
    let (mut joiner, _) = honest_join(&server, "joiner", "r").await;
    let frame = loop {
        let frame = tokio::time::timeout(STEP, joiner.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = frame {
            break t;
        }
    };
    assert!(frame.len() < max + 1024, "accept of {} bytes", frame.len());
    match decode_server(frame.as_str()).unwrap() {
        ServerMsg::Accept { id, signals, .. } => {
            assert_eq!(id.as_str(), "m1");
            assert_eq!(signals.len(), 2);
        }
        other => panic!("expected accept, got {other:?}"),
    }
    // The joiner's socket is still usable: it answers, and mallory gets the answer.
    send(
        &mut joiner,
        &ClientMsg::Answer {
            id: "m1".into(),
            sdp: "ans".into(),
        },
    )
    .await;
    loop {
        match recv(&mut mallory).await {
            ServerMsg::Answer { id, .. } => {
                assert_eq!(id.as_str(), "m1");
                break;
            }
            ServerMsg::OfferAccepted { .. } | ServerMsg::OfferRequest => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    server.shutdown().await.unwrap();
}

/// Init/close churn is refused past the join burst (`rate_limited`), so members get no more
/// offer requests from it; another identity joins meanwhile.
#[tokio::test]
async fn join_churn_is_refused_past_the_join_rate() {
    let server = start(ServerConfig {
        limits: Limits {
            join_burst: 5,
            joins_per_minute: 6,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let (mut host, _) = honest_join(&server, "host", "r").await;
    let mut churner = ws_from(&server, Ipv4Addr::LOCALHOST, "churner")
        .await
        .unwrap();
    let mut refused = 0;
    for _ in 0..20 {
        init(&mut churner, "r").await;
        match recv(&mut churner).await {
            ServerMsg::Joined { .. } => send(&mut churner, &ClientMsg::Close).await,
            ServerMsg::SignalError {
                code: ErrorCode::RateLimited,
                ..
            } => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(refused, 15);
    let (_other, _) = honest_join(&server, "other", "r").await;
    // The host was asked for at most one offer per admitted join (5) plus the other's.
    let mut requests = 0;
    while let Ok(Some(Ok(Message::Text(t)))) =
        tokio::time::timeout(Duration::from_millis(300), host.next()).await
    {
        if matches!(decode_server(t.as_str()).unwrap(), ServerMsg::OfferRequest) {
            requests += 1;
        }
    }
    assert!((1..=6).contains(&requests), "{requests} offer requests");
    server.shutdown().await.unwrap();
}

/// The header deadline also holds for a plain HTTP client that never finishes its request:
/// dropped at `header_read_timeout`, while `/healthz` keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_headers_is_dropped_at_the_header_deadline() {
    let server = start(ServerConfig {
        connections: ConnectionLimits {
            header_read_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let mut slow = tcp_from(Ipv4Addr::new(127, 0, 0, 2), server.local_addr()).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(closed_by_server(&mut slow, STEP).await);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    let addr = server.local_addr();
    let (status, body) = tokio::task::spawn_blocking(move || http::get(addr, "/healthz", STEP))
        .await
        .unwrap();
    assert_eq!((status, body.trim()), (200, "ok"));
    server.shutdown().await.unwrap();
}

/// A member that stops reading is dropped once the frames queued for it pass
/// `max_queued_bytes`, long before the frame bound (here 100,000 frames); the member flooding
/// it keeps its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_dropped_when_its_queue_passes_its_byte_budget() {
    let server = start(ServerConfig {
        limits: Limits {
            frames_per_second: 100_000,
            frame_burst: 100_000,
            bytes_per_second: u32::MAX,
            byte_burst: u32::MAX,
            ..Limits::default()
        },
        outbound_queue: 100_000,
        connections: ConnectionLimits {
            max_queued_bytes: 512 * 1024,
            ..ConnectionLimits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let (mut victim, _) = honest_join(&server, "victim", "r").await;
    send(
        &mut victim,
        &ClientMsg::Offer {
            id: "v1".into(),
            sdp: "v=0".into(),
        },
    )
    .await;
    let deadline = Instant::now() + STEP;
    while server
        .room(&"r".into())
        .await
        .is_none_or(|r| r.members[0].pending_offers.is_empty())
    {
        assert!(Instant::now() < deadline, "v1 never parked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (mut flooder, _) = honest_join(&server, "flooder", "r").await;
    assert!(matches!(recv(&mut flooder).await, ServerMsg::Accept { .. }));
    // The victim never reads again; the flooder relays ~60 KB candidates on link v1.
    let frame = encode(&ClientMsg::Candidate {
        id: "v1".into(),
        candidate: Some(IceCandidate {
            candidate: "x".repeat(60_000),
            sdp_mid: None,
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }),
    });
    let mut sent = 0;
    let left = 'flood: loop {
        assert!(sent < 5_000, "the victim was never dropped");
        for _ in 0..20 {
            flooder.send(Message::text(frame.clone())).await.unwrap();
            sent += 1;
        }
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(1), flooder.next()).await
            && let ServerMsg::LeaveSwarm { id } = decode_server(t.as_str()).unwrap()
        {
            break 'flood id;
        }
    };
    assert_eq!(left.as_str(), "v1");
    eprintln!("victim dropped after {sent} frames of 60 KB");
    let addr = server.local_addr();
    let body = tokio::task::spawn_blocking(move || http::get(addr, "/metrics", STEP).1)
        .await
        .unwrap();
    assert!(
        body.lines()
            .any(|l| l == "fast_rtc_dropped_total{reason=\"slow_consumer\"} 1"),
        "{body}"
    );
    // The flooder's socket is fine: another member joins and it is asked for an offer.
    let (_other, _) = honest_join(&server, "other", "r").await;
    loop {
        if matches!(recv(&mut flooder).await, ServerMsg::OfferRequest) {
            break;
        }
    }
    drop(victim);
    server.shutdown().await.unwrap();
}
