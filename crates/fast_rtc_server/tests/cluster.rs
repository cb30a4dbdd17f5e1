//! Cluster mode over a real Redis (or Valkey): several server instances on random loopback
//! ports share rooms; real WebSocket clients spread over them.
//!
//! Each test starts its own `redis-server` (or `valkey-server`) on a free loopback port. They are
//! `#[ignore]`d in a plain `cargo test` because they need that binary; `scripts/redis-test.sh`
//! installs it and runs them with `--ignored`, and there a missing server fails them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic
#![allow(clippy::disallowed_methods)] // tests read the clock for tokens and deadlines

mod cluster_support;
mod http;

use cluster_support::*;
use fast_rtc_protocol::{ClientMsg, ServerMsg, decode_server, encode};
use fast_rtc_server::{
    IceConfig, JwtAuthenticator, Secret, Server, ServerConfig, ServerHandle, TokenIssuer,
    TurnConfig, TurnSecret,
};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    me: String,
    offers: usize,
}

impl Client {
    async fn connect(url: &str, sub: &str, room: &str) -> Client {
        let url = format!("{url}?token={}", token(sub, room));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client {
            ws,
            me: sub.into(),
            offers: 0,
        }
    }

    async fn send(&mut self, msg: &ClientMsg) {
        self.ws.send(Message::text(encode(msg))).await.unwrap();
    }

    async fn offer(&mut self) {
        self.offers += 1;
        let id = format!("{}-{}", self.me, self.offers);
        self.send(&ClientMsg::Offer {
            sdp: format!("sdp-{id}"),
            id: id.into(),
        })
        .await;
    }

    async fn init(&mut self, room: &str) {
        self.send(&ClientMsg::Init {
            user_id: None,
            room_id: room.into(),
            resume: None,
        })
        .await;
    }

    /// The next protocol frame; `Err` with the close code when the server closes.
    async fn next(&mut self) -> Result<ServerMsg, Option<CloseCode>> {
        loop {
            let frame = tokio::time::timeout(STEP, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: nothing within {STEP:?}", self.me));
            match frame {
                Some(Ok(Message::Text(t))) => return Ok(decode_server(t.as_str()).unwrap()),
                Some(Ok(Message::Close(c))) => return Err(c.map(|c| c.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Plays an honest member until it has `links` links: parks an offer, joins, answers every
    /// `accept` and refills on `offerRequest`, at least until `joined`. Returns the peers it
    /// answered (it was the joiner).
    async fn join_until(&mut self, room: &str, links: usize) -> Vec<String> {
        self.offer().await;
        self.init(room).await;
        let mut answered = Vec::new();
        let mut n = 0;
        let mut joined = false;
        while n < links || !joined {
            match self.next().await {
                Ok(ServerMsg::Joined { .. }) => joined = true,
                Ok(ServerMsg::Accept { id, user_id, .. }) => {
                    self.send(&ClientMsg::Answer {
                        id,
                        sdp: "ans".into(),
                    })
                    .await;
                    answered.push(user_id.to_string());
                    n += 1;
                }
                Ok(ServerMsg::OfferAccepted { .. }) => n += 1,
                Ok(ServerMsg::OfferRequest) => self.offer().await,
                Ok(ServerMsg::Answer { .. } | ServerMsg::Candidate { .. }) => {}
                other => panic!("{}: unexpected {other:?}", self.me),
            }
        }
        answered
    }

    /// Reads (and answers refill requests) until the server closes the socket.
    async fn until_closed(&mut self) -> Option<CloseCode> {
        loop {
            match self.next().await {
                Ok(ServerMsg::OfferRequest) => self.offer().await,
                Ok(_) => {}
                Err(code) => return code,
            }
        }
    }
}

/// Counts links per unordered pair from the joiners' `accept`s.
fn pairs(accepts: impl IntoIterator<Item = (String, String)>) -> HashMap<(String, String), usize> {
    let mut pairs = HashMap::new();
    for (a, b) in accepts {
        let key = if a < b { (a, b) } else { (b, a) };
        *pairs.entry(key).or_default() += 1;
    }
    pairs
}

/// 12 members over 3 instances, released together by a barrier: exactly one link per pair, and
/// exactly one instance holds the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn concurrent_joins_over_three_instances_make_one_link_per_pair() {
    const N: usize = 12;
    let redis = start_redis();
    let servers = [
        instance(&redis).await,
        instance(&redis).await,
        instance(&redis).await,
    ];
    let urls: Vec<String> = servers.iter().map(ServerHandle::ws_url).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let url = urls[i % 3].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("m{i:02}");
            let mut c = Client::connect(&url, &me, "race").await;
            barrier.wait().await;
            let answered = c.join_until("race", N - 1).await;
            (
                answered
                    .into_iter()
                    .map(|a| (a, me.clone()))
                    .collect::<Vec<_>>(),
                c,
            )
        }));
    }
    let mut accepts = Vec::new();
    let mut clients = Vec::new();
    for t in tasks {
        let (a, c) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap();
        accepts.extend(a);
        clients.push(c);
    }
    let pairs = pairs(accepts);
    assert_eq!(pairs.len(), N * (N - 1) / 2, "every pair linked");
    assert!(
        pairs.values().all(|n| *n == 1),
        "no pair linked twice: {pairs:?}"
    );
    let refs: Vec<&ServerHandle> = servers.iter().collect();
    let (_, snap) = owner_snapshot(&refs, "race", N).await;
    assert_eq!(snap.members.len(), N);
    drop(clients);
}

/// Frames are relayed between members on different instances, both ways, in order; a `close`
/// gives the other member `leaveSwarm`; a frame refused by the owner's hub comes back as the
/// same `signal_error` as in single-process mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn relays_cross_instances_in_order() {
    let redis = start_redis();
    let (a_srv, b_srv) = (instance(&redis).await, instance(&redis).await);
    let mut alice = Client::connect(&a_srv.ws_url(), "alice", "r").await;
    alice.join_until("r", 0).await;
    let mut bob = Client::connect(&b_srv.ws_url(), "bob", "r").await;
    let mut bob_task = tokio::spawn(async move {
        let answered = bob.join_until("r", 1).await;
        (answered, bob)
    });
    // Alice: offerAccepted for her parked offer, then the refill request.
    let link = loop {
        match alice.next().await.unwrap() {
            ServerMsg::OfferAccepted { id, user_id } => {
                assert_eq!(user_id.as_str(), "bob");
                break id;
            }
            ServerMsg::Joined { .. } => {}
            other => panic!("alice: {other:?}"),
        }
    };
    let (answered, mut bob) = (&mut bob_task).await.unwrap();
    assert_eq!(answered, ["alice"]);
    // 50 candidates from Bob reach Alice in order, after Bob's answer.
    for n in 0..50u32 {
        bob.ws
            .send(Message::text(format!(
                r#"{{"type":"candidate","id":"{}","candidate":{{"candidate":"c{n}","sdpMid":"0","sdpMLineIndex":0}}}}"#,
                link.as_str()
            )))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 51 {
        match alice.next().await.unwrap() {
            ServerMsg::OfferRequest => alice.offer().await,
            ServerMsg::Answer { id, .. } => {
                assert_eq!(id, link);
                seen.push("answer".to_owned());
            }
            ServerMsg::Candidate { id, candidate } => {
                assert_eq!(id, link);
                seen.push(candidate.unwrap().candidate);
            }
            other => panic!("alice: {other:?}"),
        }
    }
    let want: Vec<String> = std::iter::once("answer".to_owned())
        .chain((0..50).map(|n| format!("c{n}")))
        .collect();
    assert_eq!(seen, want);
    // A refused frame: an answer for a link that is not Bob's.
    bob.send(&ClientMsg::Answer {
        id: "nobody-1".into(),
        sdp: "x".into(),
    })
    .await;
    match bob.next().await.unwrap() {
        ServerMsg::SignalError { code, .. } => {
            assert_eq!(code, fast_rtc_protocol::ErrorCode::UnknownLink)
        }
        other => panic!("bob: {other:?}"),
    }
    // Bob leaves; Alice hears of it.
    bob.send(&ClientMsg::Close).await;
    loop {
        match alice.next().await.unwrap() {
            ServerMsg::LeaveSwarm { id } => {
                assert_eq!(id, link);
                break;
            }
            ServerMsg::OfferRequest => alice.offer().await,
            other => panic!("alice: {other:?}"),
        }
    }
}

/// The room's owner (the real binary) is killed with SIGKILL: within the lease time the members
/// on the other instances are sent to reconnect (1012), rejoin, and the room works again on a
/// surviving instance, with exactly one link per pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn killed_owner_hands_the_room_over() {
    let redis = start_redis();
    let mut owner = start_binary(&redis);
    let (b_srv, c_srv) = (instance(&redis).await, instance(&redis).await);
    // The first joiner's instance takes the room.
    let mut a = Client::connect(owner.url(), "a", "lobby").await;
    a.join_until("lobby", 0).await;
    let mut b = Client::connect(&b_srv.ws_url(), "b", "lobby").await;
    let mut c = Client::connect(&c_srv.ws_url(), "c", "lobby").await;
    let (rb, rc) = tokio::join!(
        async {
            let x = b.join_until("lobby", 1).await;
            (x, b)
        },
        async {
            let x = c.join_until("lobby", 0).await;
            (x, c)
        }
    );
    let ((_, mut b), (_, mut c)) = (rb, rc);
    assert!(
        b_srv.room(&"lobby".into()).await.is_none() && c_srv.room(&"lobby".into()).await.is_none(),
        "the room is held by the binary, not by b's or c's instance"
    );

    owner.kill();
    drop(a);
    let (cb, cc) = tokio::join!(b.until_closed(), c.until_closed());
    assert_eq!(cb, Some(CloseCode::Restart), "b is sent to reconnect");
    assert_eq!(cc, Some(CloseCode::Restart), "c is sent to reconnect");

    // They reconnect to their instances and join again: one of them takes the room.
    let mut b = Client::connect(&b_srv.ws_url(), "b", "lobby").await;
    let mut c = Client::connect(&c_srv.ws_url(), "c", "lobby").await;
    let (ab, ac) = tokio::join!(b.join_until("lobby", 1), c.join_until("lobby", 1));
    let pairs = pairs(
        ab.into_iter()
            .map(|x| (x, "b".to_owned()))
            .chain(ac.into_iter().map(|x| (x, "c".to_owned()))),
    );
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert!(pairs.values().all(|n| *n == 1), "{pairs:?}");
    owner_snapshot(&[&b_srv, &c_srv], "lobby", 2).await;
}

/// Redis goes away mid-room: members are sent to reconnect (1012), joins meanwhile are refused
/// with 1013, and once Redis is back (same port) the room forms again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn redis_restart_closes_rooms_and_they_recover() {
    let mut redis = start_redis();
    let port = redis.port();
    let (a_srv, b_srv) = (instance(&redis).await, instance(&redis).await);
    let mut a = Client::connect(&a_srv.ws_url(), "a", "r").await;
    a.join_until("r", 0).await;
    let mut b = Client::connect(&b_srv.ws_url(), "b", "r").await;
    let (_, ab) = tokio::join!(a.join_until_more(1), b.join_until("r", 1));
    assert_eq!(ab, ["a"]);

    redis.kill();
    let (ca, cb) = tokio::join!(a.until_closed(), b.until_closed());
    assert_eq!(ca, Some(CloseCode::Restart));
    assert_eq!(cb, Some(CloseCode::Restart));
    // While Redis is down a join cannot be routed: "try again later".
    let mut early = Client::connect(&a_srv.ws_url(), "a", "r").await;
    early.init("r").await;
    assert_eq!(early.until_closed().await, Some(CloseCode::Again));

    let redis = fast_rtc_testkit::redis::Redis::start_on(port).unwrap_or_else(|e| panic!("{e}"));
    // The instances reconnect by themselves (backoff at most 2 s); members retry like clients do.
    let mut joined = None;
    for _ in 0..40 {
        let mut a = Client::connect(&a_srv.ws_url(), "a", "r").await;
        a.init("r").await;
        match a.next().await {
            Ok(ServerMsg::Joined { .. }) => {
                joined = Some(a);
                break;
            }
            Ok(other) => panic!("{other:?}"),
            Err(code) => assert_eq!(code, Some(CloseCode::Again)),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut a = joined.expect("a joins again once Redis is back");
    a.offer().await;
    let mut b = loop {
        let mut b = Client::connect(&b_srv.ws_url(), "b", "r").await;
        b.offer().await;
        b.init("r").await;
        match b.next().await {
            Ok(ServerMsg::Joined { .. }) => break b,
            Ok(other) => panic!("{other:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let (aa, ab) = tokio::join!(a.join_until_more(1), b.join_until_more(1));
    assert_eq!(aa.len() + ab.len(), 1, "one link: {aa:?} {ab:?}");
    owner_snapshot(&[&a_srv, &b_srv], "r", 2).await;
    drop(redis);
}

impl Client {
    /// Like [`Client::join_until`] for a member already in the room: reads until `links` more
    /// links, returning the peers it answered.
    async fn join_until_more(&mut self, links: usize) -> Vec<String> {
        let mut answered = Vec::new();
        let mut n = 0;
        while n < links {
            match self.next().await {
                Ok(ServerMsg::Accept { id, user_id, .. }) => {
                    self.send(&ClientMsg::Answer {
                        id,
                        sdp: "ans".into(),
                    })
                    .await;
                    answered.push(user_id.to_string());
                    n += 1;
                }
                Ok(ServerMsg::OfferAccepted { .. }) => n += 1,
                Ok(ServerMsg::OfferRequest) => self.offer().await,
                Ok(_) => {}
                Err(code) => panic!("{}: closed {code:?}", self.me),
            }
        }
        answered
    }
}

/// `GET path` on `addr`: the status and the body.
async fn http_get(addr: std::net::SocketAddr, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || http::get(addr, path, STEP))
        .await
        .unwrap()
}

/// The value of the metric line `name` (exactly, labels included) in `addr`'s /metrics.
async fn metric(addr: std::net::SocketAddr, name: &str) -> Option<i64> {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    body.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Polls until every instance in `addrs` reports `want` for metric `name`.
async fn wait_metric(addrs: &[std::net::SocketAddr], name: &str, want: i64) {
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen.clear();
        for a in addrs {
            seen.push(metric(*a, name).await);
        }
        if seen.iter().all(|v| *v == Some(want)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name}: want {want} on every instance, saw {seen:?}");
}

/// `/metrics` of every instance has `fast_rtc_cluster_rooms`, the rooms of the whole cluster,
/// beside its own `fast_rtc_rooms`: three rooms owned by three instances (one the binary) are
/// counted 3 everywhere while each instance counts the 1 it owns; the binary killed with SIGKILL,
/// its room leaves the count once its lease expires (it could not remove it itself); a room
/// whose members left leaves it when its owner releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn cluster_room_count_in_metrics() {
    const CLUSTER_ROOMS: &str = "fast_rtc_cluster_rooms";
    let redis = start_redis();
    let mut bin = start_binary(&redis);
    let (s1, s2) = (instance(&redis).await, instance(&redis).await);
    let bin_addr = bin.addr();
    let all = [s1.local_addr(), s2.local_addr(), bin_addr];
    wait_metric(&all, CLUSTER_ROOMS, 0).await;

    // One room per instance, taken by its first joiner; a second member of r1 on s2.
    let mut m1 = Client::connect(&s1.ws_url(), "m1", "*").await;
    m1.join_until("r1", 0).await;
    let mut m2 = Client::connect(&s2.ws_url(), "m2", "*").await;
    m2.join_until("r2", 0).await;
    let mut m3 = Client::connect(bin.url(), "m3", "*").await;
    m3.join_until("r3", 0).await;
    let mut m1b = Client::connect(&s2.ws_url(), "m1b", "*").await;
    m1b.join_until("r1", 1).await;
    wait_metric(&all, CLUSTER_ROOMS, 3).await;
    // The per-instance gauges count the rooms each owns.
    for a in all {
        assert_eq!(metric(a, "fast_rtc_rooms").await, Some(1), "{a}");
    }

    // The binary dies with its lease held: r3 drops out of the count when the lease expires.
    bin.kill();
    drop(m3);
    wait_metric(&all[..2], CLUSTER_ROOMS, 2).await;

    // r2's only member leaves: its owner releases it (after a lease time empty).
    m2.send(&ClientMsg::Close).await;
    wait_metric(&all[..2], CLUSTER_ROOMS, 1).await;
    assert_eq!(metric(s2.local_addr(), "fast_rtc_rooms").await, Some(0));
    assert_eq!(metric(s1.local_addr(), "fast_rtc_rooms").await, Some(1));
    drop((m1, m1b));
}

/// Auth and limits behave in cluster mode as in single-process mode: a missing or forged token
/// gets HTTP 401 before the upgrade on any instance (counted in that instance's
/// `fast_rtc_refused_total`); a token for another room gets `room_not_allowed`; a room at its
/// member limit (2, its members on two instances) refuses a third member on a third instance with
/// `room_full` and keeps that socket usable: it then joins another room. The refusal is counted by
/// the room's owner (`fast_rtc_signal_errors_total{code="room_full"}`), which runs the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn auth_and_limits_in_cluster_mode() {
    use fast_rtc_protocol::ErrorCode;
    let redis = start_redis();
    let limited = || async {
        let mut config = cluster_config(&redis);
        config.limits.max_members_per_room = 2;
        Server::new(config, JwtAuthenticator::new(&Secret::new(SECRET).unwrap()))
            .spawn("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    };
    let servers = [limited().await, limited().await, limited().await];

    // Tokens.
    let status = http::ws_status;
    let forged =
        TokenIssuer::new(&Secret::new("another-secret-another-secret-another-secret").unwrap())
            .issue("mallory", "*", Duration::from_secs(600), SystemTime::now())
            .unwrap();
    for s in &servers {
        let base = s.ws_url();
        assert_eq!(status(base.clone()).await, 401, "missing token");
        assert_eq!(
            status(format!("{base}?token={forged}")).await,
            401,
            "forged"
        );
        assert_eq!(
            status(format!("{base}?token={}", token("ok", "*"))).await,
            101,
            "valid"
        );
        assert_eq!(
            metric(
                s.local_addr(),
                "fast_rtc_refused_total{reason=\"missing_token\"}"
            )
            .await,
            Some(1)
        );
        assert_eq!(
            metric(
                s.local_addr(),
                "fast_rtc_refused_total{reason=\"bad_token\"}"
            )
            .await,
            Some(1)
        );
    }

    // A token for another room.
    let mut x = Client::connect(&servers[1].ws_url(), "x", "only-this").await;
    x.init("elsewhere").await;
    match x.next().await {
        Ok(ServerMsg::SignalError { code, .. }) => assert_eq!(code, ErrorCode::RoomNotAllowed),
        other => panic!("x: {other:?}"),
    }

    // Two members fill the room from two instances; a third, on the third instance, is refused.
    let mut a = Client::connect(&servers[0].ws_url(), "a", "*").await;
    a.join_until("full", 0).await;
    let mut b = Client::connect(&servers[1].ws_url(), "b", "*").await;
    b.join_until("full", 1).await;
    let mut c = Client::connect(&servers[2].ws_url(), "c", "*").await;
    c.offer().await;
    c.init("full").await;
    match c.next().await {
        Ok(ServerMsg::SignalError { code, .. }) => assert_eq!(code, ErrorCode::RoomFull),
        other => panic!("c: {other:?}"),
    }
    let owner = servers[0].local_addr();
    wait_metric(
        &[owner],
        "fast_rtc_signal_errors_total{code=\"room_full\"}",
        1,
    )
    .await;
    // The socket stays usable: it joins another room, owned by another instance, and links
    // with the member there.
    let mut d = Client::connect(&servers[1].ws_url(), "d", "*").await;
    d.join_until("other", 0).await;
    c.init("other").await;
    let linked = c.join_until_more(1).await;
    assert_eq!(linked, ["d"]);
    drop((a, b, d, x));
}

/// Each instance mints the ICE credentials of the members connected to it: a member on an
/// instance that does not own the room gets `joined` (forwarded from the owner) with its own
/// instance's servers and credentials for its identity, and fresh ones from that instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server or valkey-server: run scripts/redis-test.sh"]
async fn ice_servers_are_minted_by_the_members_own_instance() {
    let redis = start_redis();
    let with_turn = |url: &str| ServerConfig {
        ice: IceConfig {
            turn: Some(TurnConfig {
                urls: vec![url.to_owned()],
                secret: TurnSecret::new("cluster-turn-secret").unwrap(),
                ttl: Duration::from_secs(2),
            }),
            ..IceConfig::default()
        },
        ..cluster_config(&redis)
    };
    let a_srv = instance_with(with_turn("turn:a.test:3478")).await;
    let b_srv = instance_with(with_turn("turn:b.test:3478")).await;
    let mut alice = Client::connect(&a_srv.ws_url(), "alice", "r").await;
    alice.offer().await;
    alice.init("r").await;
    // Alice's instance owns the room: her `joined` comes from it.
    match alice.next().await {
        Ok(ServerMsg::Joined {
            ice_servers: Some(servers),
            ..
        }) => {
            assert_eq!(servers[0].urls, ["turn:a.test:3478"]);
            assert!(servers[0].username.ends_with(":alice"), "{servers:?}");
        }
        other => panic!("alice: {other:?}"),
    }
    let mut bob = Client::connect(&b_srv.ws_url(), "bob", "r").await;
    bob.init("r").await;
    let mut fresh = 0;
    let mut joined = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fresh < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob: joined {joined}, fresh {fresh}"
        );
        match bob.next().await {
            Ok(ServerMsg::Joined {
                ice_servers: Some(servers),
                user_id,
                ..
            }) => {
                assert_eq!(user_id.as_str(), "bob");
                assert_eq!(
                    servers[0].urls,
                    ["turn:b.test:3478"],
                    "minted by bob's instance"
                );
                assert!(servers[0].username.ends_with(":bob"), "{servers:?}");
                let want = fast_rtc_server::ice::turn_credential(
                    &TurnSecret::new("cluster-turn-secret").unwrap(),
                    &servers[0].username,
                );
                assert_eq!(servers[0].credential, want);
                joined = true;
            }
            Ok(ServerMsg::IceServers { ice_servers }) => {
                assert!(joined, "fresh servers before joined");
                assert_eq!(ice_servers[0].urls, ["turn:b.test:3478"]);
                assert!(ice_servers[0].username.ends_with(":bob"));
                fresh += 1;
            }
            Ok(ServerMsg::Joined {
                ice_servers: None, ..
            }) => panic!("bob's joined has no iceServers"),
            Ok(_) => {}
            Err(code) => panic!("bob closed: {code:?}"),
        }
    }
    drop((alice, bob));
}
