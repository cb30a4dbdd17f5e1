//! The server over the wire: real WebSocket clients against a real server on a random loopback
//! port, and the real `fast-rtc-server` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

mod http;
mod running;

use running::{SECRET, issuer, start, token_for as token};

use fast_rtc_protocol::{ClientMsg, ErrorCode, ServerMsg, decode_server, encode};
use fast_rtc_server::{
    Claims, Limits, RoomSnapshot, Secret, ServerConfig, ServerHandle, TokenIssuer,
};
use fast_rtc_testkit::server_bin::{self, ServerProcess};
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const STEP: Duration = Duration::from_secs(10);

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Whether `recv` passes over `joined` acknowledgements (all tests but the one about it).
    skip_joined: bool,
}

impl Client {
    async fn connect(server: &ServerHandle, sub: &str, room: &str) -> Client {
        let url = format!("{}?token={}", server.ws_url(), token(sub, room));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client {
            ws,
            skip_joined: true,
        }
    }

    async fn text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    async fn send(&mut self, msg: &ClientMsg) {
        self.text(&encode(msg)).await;
    }

    async fn init(&mut self, room: &str) {
        self.send(&ClientMsg::Init {
            user_id: None,
            room_id: room.into(),
            resume: None,
        })
        .await;
    }

    async fn offer(&mut self, id: &str) {
        self.send(&ClientMsg::Offer {
            id: id.into(),
            sdp: format!("sdp-{id}"),
        })
        .await;
    }

    async fn answer(&mut self, id: &str) {
        self.send(&ClientMsg::Answer {
            id: id.into(),
            sdp: format!("ans-{id}"),
        })
        .await;
    }

    /// The next protocol frame (pings are answered by tungstenite while reading).
    async fn recv(&mut self) -> ServerMsg {
        self.try_recv(STEP).await.expect("no frame within 10 s")
    }

    async fn try_recv(&mut self, wait: Duration) -> Option<ServerMsg> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match frame.unwrap() {
                Message::Text(t) => match decode_server(t.as_str()).unwrap() {
                    // A join's acknowledgement: `joined_is_the_first_frame_of_a_join` checks it.
                    ServerMsg::Joined { .. } if self.skip_joined => continue,
                    msg => return Some(msg),
                },
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            }
        }
    }

    async fn expect_error(&mut self, code: ErrorCode) {
        match self.recv().await {
            ServerMsg::SignalError { code: c, .. } if c == code => {}
            other => panic!("expected {code}, got {other:?}"),
        }
    }

    async fn expect_silence(&mut self) {
        if let Some(m) = self.try_recv(Duration::from_millis(300)).await {
            panic!("expected nothing, got {m:?}");
        }
    }

    /// Reads until the server closes; returns the close code.
    async fn closed(&mut self) -> Option<CloseCode> {
        loop {
            match tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("not closed within 10 s")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}

#[tokio::test]
async fn joined_is_the_first_frame_of_a_join() {
    let server = start(ServerConfig::default()).await;
    let mut alice = Client::connect(&server, "alice", "r").await;
    alice.skip_joined = false;
    alice.init("r").await;
    assert_eq!(
        alice.recv().await,
        ServerMsg::Joined {
            user_id: "alice".into(),
            ice_servers: None,
            resume_token: None,
            resumed: false,
        },
        "an empty room acknowledges the join under the token's identity"
    );
    alice.offer("a1").await;
    let mut bob = Client::connect(&server, "bob", "r").await;
    bob.skip_joined = false;
    bob.init("r").await;
    assert_eq!(
        bob.recv().await,
        ServerMsg::Joined {
            user_id: "bob".into(),
            ice_servers: None,
            resume_token: None,
            resumed: false,
        }
    );
    assert!(matches!(bob.recv().await, ServerMsg::Accept { .. }));
    // A refused init is not acknowledged.
    let mut carol = Client::connect(&server, "carol", "r").await;
    carol.skip_joined = false;
    carol.init("other").await;
    carol.expect_error(ErrorCode::RoomNotAllowed).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn alice_bob_carol_over_the_wire() {
    let server = start(ServerConfig::default()).await;
    let mut alice = Client::connect(&server, "alice", "r").await;
    alice.init("r").await;
    alice.offer("a1").await;

    let mut bob = Client::connect(&server, "bob", "*").await;
    // Like the JS client: the pre-made offer may arrive before init.
    bob.offer("b1").await;
    bob.init("r").await;
    match bob.recv().await {
        ServerMsg::Accept {
            id,
            user_id,
            signals,
        } => {
            assert_eq!(
                (id.as_str(), user_id.as_str(), signals.len()),
                ("a1", "alice", 1)
            );
        }
        other => panic!("{other:?}"),
    }
    // Alice's offer and Bob's init travel on two sockets: if Bob's init is applied first, Bob waits
    // on Alice's list and her offer goes straight to him. Either way she hears both, once.
    let heard = [alice.recv().await, alice.recv().await];
    assert!(
        heard.contains(&ServerMsg::OfferAccepted {
            id: "a1".into(),
            user_id: "bob".into()
        }),
        "{heard:?}"
    );
    assert!(heard.contains(&ServerMsg::OfferRequest), "{heard:?}");
    bob.answer("a1").await;
    assert_eq!(
        alice.recv().await,
        ServerMsg::Answer {
            id: "a1".into(),
            sdp: "ans-a1".into()
        }
    );
    alice
        .send(&ClientMsg::Candidate {
            id: "a1".into(),
            candidate: None,
        })
        .await;
    assert_eq!(
        bob.recv().await,
        ServerMsg::Candidate {
            id: "a1".into(),
            candidate: None
        }
    );
    alice.offer("a2").await;

    let mut carol = Client::connect(&server, "carol", "r").await;
    carol.init("r").await;
    let mut from = HashSet::new();
    for _ in 0..2 {
        match carol.recv().await {
            ServerMsg::Accept { id, user_id, .. } => {
                from.insert((id.to_string(), user_id.to_string()));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        from,
        HashSet::from([("a2".into(), "alice".into()), ("b1".into(), "bob".into())])
    );

    // Carol leaves by closing her socket: both get leaveSwarm for their link with her.
    drop(carol);
    let mut alice_left = None;
    while alice_left.is_none() {
        if let ServerMsg::LeaveSwarm { id } = alice.recv().await {
            alice_left = Some(id);
        }
    }
    assert_eq!(alice_left.unwrap().as_str(), "a2");
    loop {
        if let ServerMsg::LeaveSwarm { id } = bob.recv().await {
            assert_eq!(id.as_str(), "b1");
            break;
        }
    }
    server.shutdown().await.unwrap();
}

/// 20 members started at once (a barrier releases them together): exactly one `accept` per pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_joins_make_one_link_per_pair() {
    const N: usize = 20;
    let server = Arc::new(start(ServerConfig::default()).await);
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let server = server.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("m{i:02}");
            let mut c = Client::connect(&server, &me, "race").await;
            barrier.wait().await;
            let mut n = 0;
            c.offer(&format!("{me}-{n}")).await;
            c.init("race").await;
            let mut accepts = Vec::new(); // (offerer, joiner) as seen by the joiner
            let mut links = 0;
            while links < N - 1 {
                match c.recv().await {
                    ServerMsg::Accept { id, user_id, .. } => {
                        c.answer(id.as_str()).await;
                        accepts.push((user_id.to_string(), me.clone()));
                        links += 1;
                    }
                    ServerMsg::OfferAccepted { .. } => links += 1,
                    ServerMsg::OfferRequest => {
                        n += 1;
                        c.offer(&format!("{me}-{n}")).await;
                    }
                    ServerMsg::Answer { .. } | ServerMsg::Candidate { .. } => {}
                    other => panic!("{me}: unexpected {other:?}"),
                }
            }
            (accepts, c)
        }));
    }
    let mut pairs: HashMap<(String, String), usize> = HashMap::new();
    let mut clients = Vec::new();
    for t in tasks {
        let (accepts, c) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap();
        clients.push(c);
        for (a, b) in accepts {
            let key = if a < b { (a, b) } else { (b, a) };
            *pairs.entry(key).or_default() += 1;
        }
    }
    assert_eq!(pairs.len(), N * (N - 1) / 2, "every pair linked");
    assert!(
        pairs.values().all(|n| *n == 1),
        "no pair linked twice: {pairs:?}"
    );
    drop(clients);
}

#[tokio::test]
async fn bad_missing_forged_and_expired_tokens_get_401_before_upgrade() {
    let server = start(ServerConfig::default()).await;
    let status = http::ws_status;
    let base = server.ws_url();
    assert_eq!(status(base.clone()).await, 401, "missing");
    assert_eq!(status(format!("{base}?token=")).await, 401, "empty");
    assert_eq!(
        status(format!("{base}?token=not.a.jwt")).await,
        401,
        "garbage"
    );
    let forged =
        TokenIssuer::new(&Secret::new("another-secret-another-secret-another-secret").unwrap())
            .issue("mallory", "*", Duration::from_secs(600), SystemTime::now())
            .unwrap();
    assert_eq!(
        status(format!("{base}?token={forged}")).await,
        401,
        "forged"
    );
    let past = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let expired = issuer()
        .issue_claims(&Claims {
            sub: "late".into(),
            room: "*".into(),
            exp: past,
        })
        .unwrap();
    assert_eq!(
        status(format!("{base}?token={expired}")).await,
        401,
        "expired"
    );
    // A token without the room claim is not a fast-rtc token.
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let no_room = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"sub": "x", "exp": past + 7200}),
        &key,
    )
    .unwrap();
    assert_eq!(
        status(format!("{base}?token={no_room}")).await,
        401,
        "no room claim"
    );
    // The alg=none trick.
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        "eyJzdWIiOiJ4Iiwicm9vbSI6IioiLCJleHAiOjk5OTk5OTk5OTl9"
    );
    assert_eq!(
        status(format!("{base}?token={unsigned}")).await,
        401,
        "alg none"
    );
    assert_eq!(
        status(format!("{base}?token={}", token("ok", "*"))).await,
        101,
        "valid"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_room_the_token_does_not_grant_is_refused() {
    let server = start(ServerConfig::default()).await;
    let mut c = Client::connect(&server, "alice", "lobby").await;
    c.init("secret-room").await;
    c.expect_error(ErrorCode::RoomNotAllowed).await;
    c.init("lobby").await;
    c.expect_silence().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn relaying_across_rooms_or_into_other_links_is_impossible() {
    let server = start(ServerConfig::default()).await;
    let mut alice = Client::connect(&server, "alice", "*").await;
    alice.init("r").await;
    alice.offer("a1").await;
    let mut bob = Client::connect(&server, "bob", "*").await;
    bob.init("r").await;
    assert!(matches!(bob.recv().await, ServerMsg::Accept { .. }));
    alice.recv().await;
    alice.recv().await;

    // Mallory in another room names their link.
    let mut mallory = Client::connect(&server, "mallory", "*").await;
    mallory.init("x").await;
    mallory.answer("a1").await;
    mallory.expect_error(ErrorCode::UnknownLink).await;
    mallory
        .send(&ClientMsg::Candidate {
            id: "a1".into(),
            candidate: None,
        })
        .await;
    // Carol in the same room, not an end of a1.
    let mut carol = Client::connect(&server, "carol", "*").await;
    carol.init("r").await;
    // Neither has an offer ready: Carol waits on both, and receives nothing yet.
    carol.answer("a1").await;
    carol.expect_error(ErrorCode::UnknownLink).await;
    carol
        .send(&ClientMsg::Candidate {
            id: "a1".into(),
            candidate: None,
        })
        .await;
    carol.expect_error(ErrorCode::UnknownLink).await;
    carol.offer("a1").await;
    carol.expect_error(ErrorCode::IdInUse).await;
    // Alice and Bob saw none of it (only Carol's join requests).
    for c in [&mut alice, &mut bob] {
        while let Some(m) = c.try_recv(Duration::from_millis(300)).await {
            assert_eq!(m, ServerMsg::OfferRequest);
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_bad_frame_gets_its_code_and_the_socket_stays_usable() {
    let limits = Limits {
        max_frame_bytes: 4096,
        frames_per_second: 5,
        frame_burst: 40,
        ..Limits::default()
    };
    let server = start(ServerConfig {
        limits,
        ..ServerConfig::default()
    })
    .await;
    let mut host = Client::connect(&server, "host", "*").await;
    host.init("r").await;
    host.offer("h1").await;

    let mut c = Client::connect(&server, "c", "*").await;
    let cases: &[(&str, ErrorCode)] = &[
        ("", ErrorCode::Malformed),
        ("{not json", ErrorCode::Malformed),
        ("[1,2,3]", ErrorCode::Malformed),
        (r#"{"type":"offer","id":"x"}"#, ErrorCode::Malformed),
        (r#"{"type":"teleport"}"#, ErrorCode::UnknownType),
        (
            r#"{"type":"accept","id":"h1","userId":"host","signals":[]}"#,
            ErrorCode::ForbiddenType,
        ),
        (
            r#"{"type":"leaveSwarm","id":"h1"}"#,
            ErrorCode::ForbiddenType,
        ),
        (
            r#"{"type":"signal_error","message":"x"}"#,
            ErrorCode::ForbiddenType,
        ),
        (
            r#"{"type":"offer","id":"","sdp":"s"}"#,
            ErrorCode::InvalidField,
        ),
    ];
    for (text, code) in cases {
        c.text(text).await;
        c.expect_error(*code).await;
    }
    c.text(&format!(
        r#"{{"type":"offer","id":"big","sdp":"{}"}}"#,
        "x".repeat(5000)
    ))
    .await;
    c.expect_error(ErrorCode::FrameTooLarge).await;
    c.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    c.expect_error(ErrorCode::Malformed).await;
    c.init("r").await;
    assert!(
        matches!(c.recv().await, ServerMsg::Accept { .. }),
        "still usable after 11 bad frames"
    );
    c.init("r").await;
    c.expect_error(ErrorCode::AlreadyJoined).await;
    c.answer("nope").await;
    c.expect_error(ErrorCode::UnknownLink).await;

    // Flood: one rate_limited, the rest dropped silently, then usable again once the rate falls.
    for _ in 0..60 {
        c.text(r#"{"type":"answer","id":"h1","sdp":"s"}"#).await;
    }
    let mut answers = 0;
    let mut limited = 0;
    while let Some(m) = c.try_recv(Duration::from_millis(300)).await {
        match m {
            ServerMsg::SignalError {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    while let Some(m) = host.try_recv(Duration::from_millis(300)).await {
        if matches!(m, ServerMsg::Answer { .. }) {
            answers += 1;
        }
    }
    assert_eq!(limited, 1);
    assert!((20..60).contains(&answers), "{answers} answers relayed");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.answer("h1").await;
    assert!(matches!(host.recv().await, ServerMsg::Answer { .. }));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_socket_that_stops_answering_pings_is_dropped_and_its_links_closed() {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let server = start(config).await;
    let mut alice = Client::connect(&server, "alice", "*").await;
    alice.init("r").await;
    alice.offer("a1").await;
    let mut bob = Client::connect(&server, "bob", "*").await;
    bob.init("r").await;
    assert!(matches!(bob.recv().await, ServerMsg::Accept { .. }));
    // Bob's process hangs: the socket stays open but nothing reads it, so no pong is sent.
    let hung = bob;
    let started = std::time::Instant::now();
    loop {
        if let ServerMsg::LeaveSwarm { id } = alice.recv().await {
            assert_eq!(id.as_str(), "a1");
            break;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(hung);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_second_session_replaces_the_first() {
    let server = start(ServerConfig::default()).await;
    let mut first = Client::connect(&server, "alice", "*").await;
    first.init("r").await;
    let mut second = Client::connect(&server, "alice", "*").await;
    second.init("r").await;
    first.expect_error(ErrorCode::DuplicateIdentity).await;
    assert_eq!(first.closed().await, Some(CloseCode::Normal));
    second.expect_silence().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_going_away() {
    let server = start(ServerConfig::default()).await;
    let mut a = Client::connect(&server, "a", "*").await;
    a.init("r").await;
    let mut b = Client::connect(&server, "b", "*").await;
    let stop = tokio::spawn(server.shutdown());
    assert_eq!(a.closed().await, Some(CloseCode::Away));
    assert_eq!(b.closed().await, Some(CloseCode::Away));
    stop.await.unwrap().unwrap();
}

/// Polls [`ServerHandle::room`] until `done` holds for the snapshot (frames travel on their own
/// sockets, so the owner task may not have applied them yet).
async fn room_until(
    server: &ServerHandle,
    room: &str,
    done: impl Fn(&RoomSnapshot) -> bool,
) -> RoomSnapshot {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Some(snapshot) = server.room(&room.into()).await
            && done(&snapshot)
        {
            return snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "room {room} never got there"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `ServerHandle::room` reads each member's parked offers, debts and links as the hub holds
/// them, and changes nothing (the soak bench's leak check relies on it).
#[tokio::test]
async fn the_handle_reads_each_members_parked_offers() {
    let server = start(ServerConfig::default()).await;
    assert_eq!(
        server.room(&"r".into()).await,
        None,
        "nobody in the room yet"
    );
    let mut alice = Client::connect(&server, "alice", "r").await;
    alice.init("r").await;
    alice.offer("a1").await;
    alice.offer("a2").await;
    let snap = room_until(&server, "r", |s| {
        s.members
            .first()
            .is_some_and(|m| m.pending_offers.len() == 2)
    })
    .await;
    assert_eq!(snap.members.len(), 1);
    assert_eq!(snap.members[0].user_id.as_str(), "alice");

    let mut bob = Client::connect(&server, "bob", "r").await;
    bob.init("r").await;
    assert!(matches!(bob.recv().await, ServerMsg::Accept { .. }));
    // Alice hears offerAccepted and offerRequest once Bob's join is applied.
    alice.recv().await;
    alice.recv().await;
    let snap = server.room(&"r".into()).await.unwrap();
    let parked: Vec<(&str, Vec<&str>)> = snap
        .members
        .iter()
        .map(|m| {
            (
                m.user_id.as_str(),
                m.pending_offers.iter().map(|id| id.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(parked, [("alice", vec!["a2"]), ("bob", vec![])]);
    assert_eq!(snap.members[0].links, [("a1".into(), "bob".into())]);
    assert!(snap.members.iter().all(|m| m.owes.is_empty()));
    // Read-only: a second read is the same.
    assert_eq!(server.room(&"r".into()).await, Some(snap));

    drop(bob);
    let snap = room_until(&server, "r", |s| s.members.len() == 1).await;
    assert!(snap.members[0].links.is_empty());
    assert_eq!(snap.members[0].pending_offers, ["a2".into()]);
    drop(alice);
    let deadline = tokio::time::Instant::now() + STEP;
    while server.room(&"r".into()).await.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "alice never left");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.shutdown().await.unwrap();
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    http::get(addr, path, STEP)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics() {
    let server = start(ServerConfig::default()).await;
    let addr = server.local_addr();
    let mut a = Client::connect(&server, "a", "*").await;
    a.init("r").await;
    a.text("garbage").await;
    a.expect_error(ErrorCode::Malformed).await;
    let mut b = Client::connect(&server, "b", "*").await;
    b.init("r").await;
    a.recv().await; // offerRequest: both joins are applied
    let _ = tokio_tungstenite::connect_async(server.ws_url()).await; // refused: no token

    let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/healthz"))
        .await
        .unwrap();
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    for line in [
        "fast_rtc_members 2",
        "fast_rtc_rooms 1",
        "fast_rtc_connections 2",
        "fast_rtc_joins_total 2",
        "fast_rtc_signal_errors_total{code=\"malformed\"} 1",
        "fast_rtc_refused_total{reason=\"missing_token\"} 1",
        "fast_rtc_handouts_total{from=\"premade\"} 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in:\n{body}"
        );
    }
    server.shutdown().await.unwrap();
}

/// The real binary: no secret → refuses to start; `token` mints what `serve` accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_to_run_without_a_secret_and_serves_with_one() {
    let bin = server_bin::path().unwrap();
    let out = std::process::Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("FAST_RTC_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no secret") && err.contains("FAST_RTC_SECRET"),
        "{err}"
    );
    let out = std::process::Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("FAST_RTC_SECRET", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));

    let dir = std::env::temp_dir().join(format!("fast-rtc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let out = std::process::Command::new(&bin)
        .args([
            "token",
            "--sub",
            "cli-user",
            "--room",
            "cli-room",
            "--ttl",
            "60",
            "--secret-file",
        ])
        .arg(&secret_file)
        .env_remove("FAST_RTC_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let minted = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let mut child = ServerProcess::spawn(
        std::process::Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("FAST_RTC_SECRET", SECRET)
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    let url = child.url().to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?token={minted}"))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"init","roomId":"elsewhere"}"#))
        .await
        .unwrap();
    let reply = tokio::time::timeout(STEP, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reply = decode_server(reply.to_text().unwrap()).unwrap();
    assert!(
        matches!(
            reply,
            ServerMsg::SignalError {
                code: ErrorCode::RoomNotAllowed,
                ..
            }
        ),
        "{reply:?}"
    );
    ws.send(Message::text(r#"{"type":"init","roomId":"cli-room"}"#))
        .await
        .unwrap();

    // SIGTERM: graceful shutdown, the socket is closed with 1001, the process exits 0.
    let killed = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let closed = loop {
        match tokio::time::timeout(STEP, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(f))) => break f.map(|f| f.code),
            Some(Ok(_)) => continue,
            _ => break None,
        }
    };
    assert_eq!(closed, Some(CloseCode::Away));
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `name` parks offer `v1`, then a flooder joins and claims it: the two are linked by `v1`.
async fn linked_pair(server: &ServerHandle, name: &str) -> (Client, Client) {
    let mut target = Client::connect(server, name, "*").await;
    target.init("r").await;
    target.offer("v1").await;
    // The flooder must find `v1` parked: the two sockets' frames race to the server otherwise
    // (a flooder alone in the room gets an offerRequest instead of an accept).
    let parked = |room: Option<RoomSnapshot>| {
        room.is_some_and(|r| r.members.iter().any(|m| m.pending_offers == ["v1".into()]))
    };
    let deadline = tokio::time::Instant::now() + STEP;
    while !parked(server.room(&"r".into()).await) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "v1 was never parked"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut flooder = Client::connect(server, "flooder", "*").await;
    flooder.init("r").await;
    assert!(matches!(flooder.recv().await, ServerMsg::Accept { .. }));
    (target, flooder)
}

/// A ~60 KB candidate for link `v1`: relayed, it fills a socket's buffers fast.
fn big_candidate_frame() -> String {
    let big = fast_rtc_protocol::IceCandidate {
        candidate: "x".repeat(60_000),
        sdp_mid: None,
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    encode(&ClientMsg::Candidate {
        id: "v1".into(),
        candidate: Some(big),
    })
}

/// A client that stops reading cannot grow the server's memory: once its bounded queue is full
/// the server drops it, and its peers get `leaveSwarm`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_dropped_when_its_queue_fills() {
    let limits = Limits {
        frames_per_second: 100_000,
        frame_burst: 100_000,
        bytes_per_second: u32::MAX,
        byte_burst: u32::MAX,
        ..Limits::default()
    };
    let config = ServerConfig {
        limits,
        outbound_queue: 64,
        ..ServerConfig::default()
    };
    let server = start(config).await;
    let (victim, mut flooder) = linked_pair(&server, "victim").await;
    // The victim never reads again. The flooder relays ~60 KB candidates on their link until the
    // loopback socket buffers fill and the victim's queue overflows.
    let frame = big_candidate_frame();
    let mut left = None;
    'flood: for i in 0..2000 {
        flooder.text(&frame).await;
        // The flooder reads what it gets: once the victim is gone, its candidates for `v1` are
        // refused (`queue_full` past the parked-bytes budget), one error each.
        while i % 20 == 0
            && let Some(msg) = flooder.try_recv(Duration::from_millis(1)).await
        {
            if let ServerMsg::LeaveSwarm { id } = msg {
                left = Some(id);
                break 'flood;
            }
        }
    }
    let left = match left {
        Some(id) => id,
        None => loop {
            if let ServerMsg::LeaveSwarm { id } = flooder.recv().await {
                break id;
            }
        },
    };
    assert_eq!(left.as_str(), "v1");
    let addr = server.local_addr();
    let (_, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .unwrap();
    assert!(
        body.lines()
            .any(|l| l == "fast_rtc_dropped_total{reason=\"slow_consumer\"} 1"),
        "{body}"
    );
    drop(victim);
    server.shutdown().await.unwrap();
}

/// The same flood, at default limits, against a client that keeps reading: the flooder is
/// rate-limited by bytes, and the reader is not dropped. (Without the byte limit a member could
/// get any other member disconnected by flooding it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_and_a_reading_client_survives_it() {
    let config = ServerConfig {
        outbound_queue: 64,
        ..ServerConfig::default()
    };
    let server = start(config).await;
    let (mut reader, mut flooder) = linked_pair(&server, "reader").await;
    let reading = tokio::spawn(async move {
        let mut candidates = 0;
        while let Some(m) = reader.try_recv(Duration::from_millis(1500)).await {
            if let ServerMsg::Candidate { .. } = m {
                candidates += 1;
            }
        }
        (reader, candidates)
    });
    let frame = big_candidate_frame();
    for _ in 0..300 {
        flooder.text(&frame).await;
    }
    let (_reader, candidates) = reading.await.unwrap();
    let mut limited = false;
    while let Some(m) = flooder.try_recv(Duration::from_millis(300)).await {
        assert!(
            !matches!(m, ServerMsg::LeaveSwarm { .. }),
            "the reading client was dropped"
        );
        limited |= matches!(
            m,
            ServerMsg::SignalError {
                code: ErrorCode::RateLimited,
                ..
            }
        );
    }
    assert!(limited, "the flooder was not rate-limited");
    // The 1 MiB byte burst admits ~17 of the 60 KB frames, plus what the rate refills meanwhile.
    assert!((10..300).contains(&candidates), "{candidates} relayed");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_server_ends_an_overdue_wait_by_its_own_timer() {
    // A member that never sends an offer: the joiner waiting on it is linked the other way
    // once the (short, here) wait limit passes, with no frame from anyone to trigger it.
    let limits = Limits {
        max_offer_wait: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = start(ServerConfig {
        limits,
        ..ServerConfig::default()
    })
    .await;
    let mut alice = Client::connect(&server, "alice", "r").await;
    alice.init("r").await;
    let mut bob = Client::connect(&server, "bob", "r").await;
    bob.init("r").await;
    bob.offer("b1").await;
    assert_eq!(alice.recv().await, ServerMsg::OfferRequest);
    alice.expect_error(ErrorCode::OfferOverdue).await;
    match alice.recv().await {
        ServerMsg::Accept { id, user_id, .. } => {
            assert_eq!((id.as_str(), user_id.as_str()), ("b1", "bob"));
        }
        other => panic!("expected bob's offer, got {other:?}"),
    }
    assert_eq!(
        bob.recv().await,
        ServerMsg::OfferAccepted {
            id: "b1".into(),
            user_id: "alice".into()
        }
    );
}
